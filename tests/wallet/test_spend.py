"""Creating, signing, committing and bumping the wallet's own transactions on the in-process
chain: exact fees, change rules, fee subtraction, locktime and sequences, Core's errors."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from peercash.consensus.address import address_to_script
from peercash.consensus.params import get_params
from peercash.consensus.primitives import OutPoint, Tx, TxOut
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import verify_input
from peercash.consensus.script.script import witness_program
from peercash.wallet.coinselection import FeeRate
from peercash.wallet.feebumper import BumpError, BumpInvalidParameter, bump_fee, commit_bump
from peercash.wallet.spend import (
    SEQUENCE_NONFINAL,
    SEQUENCE_RBF,
    CoinControl,
    FundsError,
    Recipient,
    Resubmitter,
    SpendError,
    anti_fee_sniping_locktime,
    commit_transaction,
    create_transaction,
    dummy_signed,
    input_vsize,
    resubmit_wallet_transactions,
)
from peercash.wallet.txrecord import INACTIVE, MEMPOOL
from peercash.wallet.wallet import Wallet

from .chainsim import SimNode

P = get_params("regtest")
COIN = 100_000_000
P2WPKH_ELSEWHERE = b"\x00\x14" + b"\x99" * 20
P2TR_ELSEWHERE = b"\x51\x20" + b"\x77" * 32
P2PKH_ELSEWHERE = b"\x76\xa9\x14" + b"\x55" * 20 + b"\x88\xac"
TYPES = ("legacy", "p2sh-segwit", "bech32", "bech32m")


class RbfSimNode(SimNode):
    """A SimNode whose mempool drops the transactions a newcomer conflicts with."""

    def broadcast(self, tx: Tx, max_fee_rate: int) -> str | None:
        spent = {i.prevout for i in tx.inputs}
        for other in list(self.mempool.values()):
            if spent & {i.prevout for i in other.inputs}:
                self.remove_from_mempool(other)
        return super().broadcast(tx, max_fee_rate)


def setup(tmp_path: Path, types: tuple[str, ...] = ("bech32",)) -> tuple[RbfSimNode, Wallet]:
    node = RbfSimNode(P)
    wallet = Wallet.create("w", tmp_path / "w" / "wallet.dat", P, keypool=20, entropy=bytes(32))
    wallet.attach(node)
    wallet.clock = lambda: node.time  # the tip is current (anti-fee-sniping needs it)
    for t in types:
        node.mine([], to=address_to_script(wallet.get_new_address(output_type=t), P))
    for _ in range(100):
        node.mine([])
    return node, wallet


def rate(sat_per_vb: int) -> CoinControl:
    return CoinControl(fee_rate=FeeRate.from_sat_per_vb(sat_per_vb))


def verify(wallet: Wallet, tx: Tx) -> None:
    spent = [wallet.txs[i.prevout.txid].tx.outputs[i.prevout.index] for i in tx.inputs]
    results = [
        verify_input(tx, k, spent, STANDARD_SCRIPT_VERIFY_FLAGS) for k in range(len(tx.inputs))
    ]
    assert [r.name for r in results] == ["OK"] * len(tx.inputs)


def test_input_sizes_per_type(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path, ())
    sizes = {}
    for t in TYPES:
        script = address_to_script(wallet.get_new_address(output_type=t), P)
        sizes[t] = input_vsize(wallet, TxOut(1, script))
    # Core's maximum signed input sizes (72-byte signatures; taproot 64-byte).
    assert sizes == {"legacy": 149, "p2sh-segwit": 91, "bech32": 68, "bech32m": 58}


def test_exact_fee_at_fee_rate_and_valid_signatures(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(10), random.Random(1))
    tx = ct.tx
    assert len(tx.inputs) == 1 and len(tx.outputs) == 2
    # 10 (version, counts, locktime) + 0.5 (segwit marker) + 68 (input) + 2 × 31 (outputs)
    assert dummy_signed(wallet, tx, ct.spent).vsize() == 141
    assert ct.fee == 1410
    assert 50 * COIN - sum(o.value for o in tx.outputs) == 1410
    assert tx.vsize() <= 141
    assert tx.version == 2
    verify(wallet, tx)


def test_every_input_type_signs(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path, TYPES)
    ct = create_transaction(
        wallet, [Recipient(P2WPKH_ELSEWHERE, 190 * COIN)], rate(3), random.Random(5)
    )
    assert len(ct.tx.inputs) == 4
    assert ct.fee == FeeRate(3000).fee(dummy_signed(wallet, ct.tx, ct.spent).vsize())
    verify(wallet, ct.tx)


P2SH_ELSEWHERE = b"\xa9\x14" + b"\x44" * 20 + b"\x87"
P2WSH_ELSEWHERE = b"\x00\x20" + b"\x33" * 32


def _kind(script: bytes) -> str:
    program = witness_program(script)
    if program is not None:
        return {1: "bech32m", 0: "bech32"}[program[0]]
    return "p2sh-segwit" if script[0] == 0xA9 else "legacy"


@pytest.mark.parametrize(
    ("recipients", "kind"),
    [
        ([P2TR_ELSEWHERE], "bech32m"),
        ([P2WPKH_ELSEWHERE], "bech32"),
        ([P2SH_ELSEWHERE], "p2sh-segwit"),
        ([P2PKH_ELSEWHERE], "legacy"),
        ([P2WSH_ELSEWHERE], "bech32m"),  # no match: taproot change
        ([P2PKH_ELSEWHERE, P2WPKH_ELSEWHERE], "bech32"),  # P2WPKH before P2PKH
        ([P2WPKH_ELSEWHERE, P2TR_ELSEWHERE], "bech32m"),
    ],
)
def test_change_type_follows_core(tmp_path: Path, recipients: list[bytes], kind: str) -> None:
    _, wallet = setup(tmp_path)
    payees = [Recipient(r, COIN) for r in recipients]
    ct = create_transaction(wallet, payees, rate(1), random.Random(2))
    change = ct.tx.outputs[ct.change_pos].script_pubkey
    assert _kind(change) == kind
    assert wallet.keys.is_mine(change) is not None and wallet.is_change_script(change)


def test_change_type_option_and_position(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    cc = rate(1)
    cc.change_type, cc.change_position = "legacy", 0
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc, random.Random(2))
    assert ct.change_pos == 0
    assert ct.tx.outputs[0].script_pubkey[:3] == b"\x76\xa9\x14"
    cc = rate(1)
    cc.change_position = 2
    with pytest.raises(SpendError, match=r"^Transaction change output index out of range$"):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc, random.Random(2))


def test_change_position_is_random(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    seen = {
        create_transaction(
            wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1), random.Random(seed)
        ).change_pos
        for seed in range(12)
    }
    assert seen == {0, 1}


def test_change_script_reserved_only_when_kept(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    row = wallet.keys.active("bech32", True)
    assert row is not None
    before = row.next_index
    create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1), random.Random(1))
    row = wallet.keys.active("bech32", True)
    assert row is not None and row.next_index == before + 1


def test_subtract_fee_from_amount(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    ct = create_transaction(
        wallet, [Recipient(P2WPKH_ELSEWHERE, 50 * COIN, True)], rate(2), random.Random(1)
    )
    assert ct.change_pos == -1 and len(ct.tx.outputs) == 1
    # 10.5 + 68 + 31 = 109.5 → 110 vB at 2 sat/vB
    assert ct.fee == 220
    assert ct.tx.outputs[0].value == 50 * COIN - 220


def test_subtract_fee_split_between_recipients(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    recipients = [Recipient(P2WPKH_ELSEWHERE, COIN, True), Recipient(P2PKH_ELSEWHERE, COIN, True)]
    ct = create_transaction(wallet, recipients, rate(3), random.Random(1))
    values = [o.value for n, o in enumerate(ct.tx.outputs) if n != ct.change_pos]
    reductions = sorted(COIN - v for v in values)
    assert sum(reductions) == ct.fee and reductions[1] - reductions[0] == ct.fee % 2
    verify(wallet, ct.tx)


def test_dust_change_is_dropped(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    # 110 vB without change at 1 sat/vB; leave 200 sat over: too little for a change output.
    ct = create_transaction(
        wallet, [Recipient(P2WPKH_ELSEWHERE, 50 * COIN - 310)], rate(1), random.Random(1)
    )
    assert ct.change_pos == -1 and len(ct.tx.outputs) == 1
    assert ct.fee == 310


def test_anti_fee_sniping_locktime(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    tip = node.tip()[0]
    locktimes = [
        create_transaction(
            wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1), random.Random(seed)
        ).tx.locktime
        for seed in range(60)
    ]
    assert all(tip - 99 <= t <= tip for t in locktimes)
    assert locktimes.count(tip) >= 40 and any(t < tip for t in locktimes)
    assert anti_fee_sniping_locktime(500, False, random.Random(1)) == 0
    node.time += 8 * 3600  # the tip is now 8 hours old: no longer current
    assert create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1)).tx.locktime == 0
    draws = [anti_fee_sniping_locktime(500, True, random.Random(s)) for s in range(1000)]
    assert min(draws) >= 401 and max(draws) == 500 and 50 < sum(d < 500 for d in draws) < 150


def test_sequences(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1))
    assert [i.sequence for i in ct.tx.inputs] == [SEQUENCE_RBF] == [0xFFFFFFFD]
    cc = rate(1)
    cc.replaceable = False
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc)
    assert [i.sequence for i in ct.tx.inputs] == [SEQUENCE_NONFINAL] == [0xFFFFFFFE]


def test_insufficient_funds(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    with pytest.raises(FundsError, match=r"^Insufficient funds$"):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, 50 * COIN)], rate(1))


def test_max_tx_fee(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    wallet.fee_policy = dataclasses.replace(wallet.fee_policy, max_tx_fee=1000)
    with pytest.raises(
        SpendError, match=r"^Fee exceeds maximum configured by user \(e.g. -maxtxfee, maxfeerate\)$"
    ):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(10))


def test_fee_estimation_failed_and_fallback(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    with pytest.raises(
        SpendError,
        match=r"^Fee estimation failed. Fallbackfee is disabled. Wait a few blocks or enable "
        r"-fallbackfee.$",
    ):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)])
    wallet.fee_policy = dataclasses.replace(wallet.fee_policy, fallback_fee=20_000)
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], None, random.Random(1))
    assert ct.fee_rate == FeeRate(20_000) and ct.fee == 2820


def test_fee_rate_below_minimum(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    cc = CoinControl(fee_rate=FeeRate(99))
    with pytest.raises(
        SpendError,
        match=r"^Fee rate \(0.099 sat/vB\) is lower than the minimum fee rate setting "
        r"\(0.100 sat/vB\)$",
    ):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc)


def test_no_recipients_and_negative_amounts(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    with pytest.raises(SpendError, match=r"^Transaction must have at least one recipient$"):
        create_transaction(wallet, [], rate(1))
    with pytest.raises(SpendError, match=r"^Transaction amounts must not be negative$"):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, -1)], rate(1))
    with pytest.raises(SpendError, match=r"^Transaction amount too small$"):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, 200)], rate(1))


def test_commit_spends_inputs_and_keeps_comment(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1))
    assert commit_transaction(wallet, ct.tx, comment="rent") is None
    assert ct.tx.txid in node.mempool
    wtx = wallet.txs[ct.tx.txid]
    assert wtx.state == MEMPOOL and wtx.comment == "rent"
    assert wallet.is_spent(ct.tx.inputs[0].prevout)
    assert wallet.balance().trusted == 49 * COIN - ct.fee
    node.mine([ct.tx])
    assert wallet.balance().trusted == 49 * COIN - ct.fee


def test_commit_keeps_a_refused_transaction(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1))
    node.broadcast = lambda tx, max_fee_rate: "min relay fee not met"  # type: ignore[method-assign]
    assert commit_transaction(wallet, ct.tx) == "min relay fee not met"
    assert wallet.txs[ct.tx.txid].state == INACTIVE
    assert wallet.is_spent(ct.tx.inputs[0].prevout)


def test_preselected_inputs_only(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path, ("bech32", "bech32m"))
    coins = sorted(wallet.coins(), key=lambda c: c.txout.script_pubkey[0])
    cc = rate(1)
    cc.inputs, cc.add_inputs = [coins[1].outpoint], False
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc)
    assert [i.prevout for i in ct.tx.inputs] == [coins[1].outpoint]
    cc = rate(1)
    cc.inputs, cc.add_inputs = [coins[1].outpoint], False
    with pytest.raises(SpendError, match=r"^The preselected coins total amount does not cover"):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, 60 * COIN)], cc)
    cc = rate(1)
    cc.inputs = [OutPoint(b"\x01" * 32, 0)]
    with pytest.raises(
        SpendError, match=r"^Not found pre-selected input COutPoint\(0101010101, 0\)$"
    ):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc)


def test_lock_unspents(tmp_path: Path) -> None:
    _, wallet = setup(tmp_path)
    cc = rate(1)
    cc.lock_unspents, cc.sign = True, False
    ct = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc)
    assert wallet.locked == {ct.tx.inputs[0].prevout}
    with pytest.raises(FundsError):
        create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(1))


def _paid(node: RbfSimNode, wallet: Wallet, sat_per_vb: int = 2) -> Tx:
    ct = create_transaction(
        wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], rate(sat_per_vb), random.Random(3)
    )
    commit_transaction(wallet, ct.tx)
    return ct.tx


def test_bumpfee_raises_fee_by_at_least_the_incremental_fee(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    original = _paid(node, wallet)
    bump = bump_fee(wallet, original.txid, rng=random.Random(4))
    size = dummy_signed(
        wallet, bump.tx, [wallet.txs[original.inputs[0].prevout.txid].tx.outputs[0]]
    ).vsize()
    assert bump.old_fee == 282
    # Old rate (282 / 141 = 2 sat/vB) + Core's wallet incremental 5 sat/vB = 7 sat/vB.
    assert bump.new_fee == FeeRate(7000).fee(size) == 987
    assert bump.new_fee >= bump.old_fee + FeeRate(100).fee(size)
    assert {i.prevout for i in bump.tx.inputs} == {i.prevout for i in original.inputs}
    recipients = [o for o in bump.tx.outputs if o.script_pubkey == P2WPKH_ELSEWHERE]
    assert [o.value for o in recipients] == [COIN]
    verify(wallet, bump.tx)
    new_txid = commit_bump(wallet, original.txid, bump)
    assert wallet.txs[original.txid].replaced_by == new_txid
    assert wallet.txs[original.txid].state == INACTIVE
    assert original.txid not in node.mempool and new_txid in node.mempool
    assert wallet.balance().trusted == 49 * COIN - 987
    with pytest.raises(BumpError, match=r"^Cannot bump transaction .* which was already bumped by"):
        bump_fee(wallet, original.txid)


def test_bumpfee_user_rate_must_pay_incremental_fee(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    original = _paid(node, wallet)
    with pytest.raises(
        BumpInvalidParameter,
        match=r"^Insufficient total fee 0.00000282 BTC, must be at least 0.00000297 BTC "
        r"\(oldFee 0.00000282 BTC \+ incrementalFee 0.00000015 BTC\)$",
    ):
        bump_fee(wallet, original.txid, fee_rate=FeeRate(2000))
    bump = bump_fee(wallet, original.txid, fee_rate=FeeRate(2200), rng=random.Random(1))
    assert bump.new_fee == 311 and bump.psbt is None


def test_bumpfee_preconditions(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    with pytest.raises(ValueError, match=r"^Invalid or non-wallet transaction id$"):
        bump_fee(wallet, b"\x02" * 32)
    original = _paid(node, wallet)
    node.mine([original])
    with pytest.raises(
        BumpError, match=r"^Transaction has been mined, or is conflicted with a mined transaction$"
    ):
        bump_fee(wallet, original.txid)
    cc = rate(1)
    cc.replaceable = False
    final = create_transaction(wallet, [Recipient(P2WPKH_ELSEWHERE, COIN)], cc)
    commit_transaction(wallet, final.tx)
    with pytest.raises(BumpError, match=r"^Transaction is not BIP 125 replaceable$"):
        bump_fee(wallet, final.tx.txid)


def test_psbtbumpfee_gives_unsigned_psbt(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    original = _paid(node, wallet)
    bump = bump_fee(wallet, original.txid, sign=False, rng=random.Random(4))
    assert bump.psbt is not None and not bump.tx.inputs[0].witness
    assert bump.psbt.inputs[0].witness_utxo is not None
    assert len(bump.psbt.inputs[0].bip32_derivs) == 1


def test_resubmission(tmp_path: Path) -> None:
    node, wallet = setup(tmp_path)
    now = [wallet.clock()]
    wallet.clock = lambda: now[0]
    tx = _paid(node, wallet)
    node.mempool.clear()
    assert resubmit_wallet_transactions(wallet) == []  # younger than 5 minutes
    now[0] += 301
    assert resubmit_wallet_transactions(wallet) == [tx.txid]
    assert tx.txid in node.mempool
    node.mempool.clear()
    r = Resubmitter(lambda: [wallet], low=10, high=20, clock=lambda: now[0], rng=random.Random(1))
    assert r.tick() == 0
    now[0] += 20
    assert r.tick() == 1 and tx.txid in node.mempool
    assert r.tick() == 0 and 10 <= r.next_at - now[0] <= 20
    node.mine([tx])
    now[0] += 20
    assert r.tick() == 0  # confirmed: nothing left to resubmit
