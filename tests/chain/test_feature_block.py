"""Block scenarios in the spirit of Core's feature_block.py: each test builds regtest chains on a
fresh ``ChainState`` and checks the exact reject code, where the tip is, and the UTXO set.

Codes raised by ``accept_block`` come from the context-free and contextual checks; failures found
while connecting (inputs, scripts, amounts, BIP30, BIP68, sigop cost) leave the block stored but
failed, with ``chain.last_error`` naming it. ``ChainBuilder.reject`` checks whichever applies.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peercash.chain.index import FAILED_CHILD, FAILED_MASK, FAILED_VALID, HAVE_DATA
from peercash.consensus.crypto import pubkey_from_secret, sign_ecdsa
from peercash.consensus.errors import RuleError
from peercash.consensus.hashing import sha256
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import (
    MAX_BLOCK_WEIGHT,
    MAX_MONEY,
    Block,
    OutPoint,
    Tx,
    TxIn,
    TxOut,
)
from peercash.consensus.script.script import push_data, push_int
from peercash.consensus.script.sighash import (
    PrecomputedTxData,
    legacy_sighash,
    segwit_v0_sighash,
)
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import (
    NULL_OUTPOINT,
    OP_TRUE_SCRIPT,
    P2WSH_OP_TRUE,
    coinbase_tx,
    p2pkh_script,
    p2tr_script,
    p2wpkh_script,
    sign_inputs,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blocktools import (
    DEFAULT_FEE,
    FINAL,
    NON_FINAL,
    OP_CHECKLOCKTIMEVERIFY,
    OP_CHECKMULTISIG,
    OP_CHECKSEQUENCEVERIFY,
    OP_CHECKSIG,
    OP_DROP,
    SPACING,
    ChainBuilder,
    op_return,
    p2sh_script,
    p2wsh_script,
    sign_taproot_keypath,
    unsolve,
    with_txs,
)

MANDATORY = "mandatory-script-verify-flag-failed"
MISSING = "bad-txns-inputs-missingorspent"
MAX_FUTURE = 2 * 60 * 60
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31  # BIP68
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22  # BIP68: units of 512 seconds

SECRET_A = sha256(b"peercash feature_block key A")
SECRET_B = sha256(b"peercash feature_block key B")
SECRET_C = sha256(b"peercash feature_block key C")
PUB_A = pubkey_from_secret(SECRET_A)
PUB_B = pubkey_from_secret(SECRET_B)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(params=["inline", "deferred"])
def make_node(tmp_path: Path, request: Any) -> Iterator[Callable[..., ChainBuilder]]:
    """Build a ``ChainBuilder``; keyword arguments replace regtest parameters. Every scenario
    runs twice: scripts checked while connecting, and checked afterwards in a worker process
    (block import's pipeline, which must undo a block whose scripts fail)."""
    made: list[ChainBuilder] = []
    deferred = request.param == "deferred"

    def make(**changes: Any) -> ChainBuilder:
        params = dataclasses.replace(REGTEST, **changes) if changes else REGTEST
        node = ChainBuilder(tmp_path / f"node{len(made)}", params, deferred=deferred)
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()


@pytest.fixture
def node(make_node: Callable[..., ChainBuilder]) -> ChainBuilder:
    return make_node()


@pytest.fixture
def funded(node: ChainBuilder) -> ChainBuilder:
    """110 blocks: the next block (111) may spend the coinbases of blocks 1..11."""
    node.mine(110)
    assert node.chain.height == 110
    return node


# -- small helpers ----------------------------------------------------------------------------


def mtp(node: ChainBuilder, block: Block) -> int:
    """Median time past of ``block``, computed from the blocks we built (not the index)."""
    times = []
    b = block
    for _ in range(11):
        times.append(b.header.time)
        if b.hash == node.genesis.hash:
            break
        b = node.blocks[b.header.prev_hash]
    return sorted(times)[len(times) // 2]


def tip_block(node: ChainBuilder) -> Block:
    return node.blocks[node.tip.hash]


def bare_spend(
    node: ChainBuilder,
    prevout: OutPoint,
    *,
    script_sig: bytes = b"",
    sequence: int = NON_FINAL,
    version: int = 2,
    locktime: int = 0,
    fee: int = DEFAULT_FEE,
) -> Tx:
    """Spend a bare (non-template) output with the given scriptSig into P2WSH(OP_TRUE)."""
    value = node.outputs[prevout].value
    return Tx(
        version,
        [TxIn(prevout, script_sig, sequence)],
        [TxOut(value - fee, P2WSH_OP_TRUE)],
        locktime,
    )


def cltv_script(n: int) -> bytes:
    return push_int(n) + bytes((OP_CHECKLOCKTIMEVERIFY, OP_DROP)) + OP_TRUE_SCRIPT


def csv_script(n: int) -> bytes:
    return push_int(n) + bytes((OP_CHECKSEQUENCEVERIFY, OP_DROP)) + OP_TRUE_SCRIPT


def pad_der(sig: bytes) -> bytes:
    """A DER signature with one needless zero byte in front of R: valid under the lax rules
    Core always applied, invalid under BIP66's strict DER."""
    assert sig[0] == 0x30 and sig[2] == 0x02
    r_len = sig[3]
    r = sig[4 : 4 + r_len]
    rest = sig[4 + r_len :]
    body = bytes((0x02, r_len + 1, 0x00)) + r + rest
    return bytes((0x30, len(body))) + body


def sign_p2pk(tx: Tx, index: int, spk: bytes, secret: bytes, *, strict: bool = True) -> Tx:
    msg = legacy_sighash(spk, tx, index, 1)
    der = sign_ecdsa(secret, msg)
    if not strict:
        der = pad_der(der)
    inputs = list(tx.inputs)
    old = inputs[index]
    inputs[index] = TxIn(old.prevout, push_data(der + b"\x01"), old.sequence)
    return Tx(tx.version, inputs, tx.outputs, tx.locktime)


def fund_and_mine(
    node: ChainBuilder, cb_height: int, scripts: list[bytes], value: int = 100_000_000
) -> list[OutPoint]:
    """Mine one block whose only transaction pays ``value`` to each script."""
    tx, outs = node.fund(node.coinbase_out(cb_height), scripts, value)
    node.submit(node.new_block(txs=[tx]))
    return outs


# -- sanity -----------------------------------------------------------------------------------


def test_replaced_params_keep_the_genesis() -> None:
    moved = dataclasses.replace(REGTEST, csv_height=500, bip34_height=10**6, segwit_height=7)
    assert moved.genesis_hash == REGTEST.genesis_hash
    assert (moved.csv_height, moved.bip34_height, moved.segwit_height) == (500, 10**6, 7)


def test_mining_extends_the_tip_and_pays_the_coinbase(funded: ChainBuilder) -> None:
    chain = funded.chain
    assert chain.tip.hash == funded.block_at(110).hash
    assert [e.height for e in chain.chain] == list(range(111))
    coin = chain.get_coin(funded.coinbase_out(5).txid, 0)
    assert coin is not None and coin.coinbase and coin.height == 5
    assert coin.txout == TxOut(block_subsidy(5, REGTEST), P2WSH_OP_TRUE)
    # The genesis coinbase is never spendable.
    assert chain.get_coin(funded.genesis.txs[0].txid, 0) is None


# -- coinbase ---------------------------------------------------------------------------------


def test_coinbase_claiming_one_satoshi_too_much(funded: ChainBuilder) -> None:
    tx = funded.spend([funded.coinbase_out(1)], fee=12_345)
    funded.reject(funded.new_block(txs=[tx], reward_delta=1), "bad-cb-amount", connect=True)
    # Subsidy plus fees exactly is fine.
    good = funded.new_block(txs=[tx])
    funded.submit(good)
    coin = funded.chain.get_coin(good.txs[0].txid, 0)
    assert coin is not None and coin.txout.value == block_subsidy(111, REGTEST) + 12_345


def test_coinbase_may_claim_less_than_allowed(funded: ChainBuilder) -> None:
    funded.submit(funded.new_block(reward_delta=-block_subsidy(111, REGTEST)))


def test_subsidy_halves_at_the_interval(node: ChainBuilder) -> None:
    interval = REGTEST.subsidy_halving_interval
    node.mine(interval - 1)
    old, new = block_subsidy(interval - 1, REGTEST), block_subsidy(interval, REGTEST)
    assert new * 2 == old
    node.reject(node.new_block(reward_delta=old - new), "bad-cb-amount", connect=True)
    node.submit(node.new_block())


def test_immature_coinbase_spend(funded: ChainBuilder) -> None:
    # Block 111 may spend the coinbase of block 11 (depth 100) but not of block 12 (depth 99).
    premature = funded.spend([funded.coinbase_out(12)])
    funded.reject(
        funded.new_block(txs=[premature]), "bad-txns-premature-spend-of-coinbase", connect=True
    )
    funded.submit(funded.new_block(txs=[funded.spend([funded.coinbase_out(11)])]))
    # One block later the coinbase of block 12 has matured.
    funded.submit(funded.new_block(txs=[premature]))
    assert not funded.has_coin(funded.coinbase_out(12))


def test_coinbase_missing(funded: ChainBuilder) -> None:
    tx = funded.spend([funded.coinbase_out(1)])
    funded.reject(funded.new_block(coinbase=tx), "bad-cb-missing")


def test_two_coinbases(funded: ChainBuilder) -> None:
    second = coinbase_tx(111, [TxOut(1, P2WSH_OP_TRUE)], extra=b"second", witness=False)
    funded.reject(funded.new_block(txs=[second]), "bad-cb-multiple")


@pytest.mark.parametrize(
    ("length", "code"), [(1, "bad-cb-length"), (101, "bad-cb-length"), (2, None), (100, None)]
)
def test_coinbase_script_length(funded: ChainBuilder, length: int, code: str | None) -> None:
    script_sig = push_int(111)
    script_sig = (script_sig + b"\x00" * length)[:length]
    cb = Tx(2, [TxIn(NULL_OUTPOINT, script_sig)], [TxOut(1, P2WSH_OP_TRUE)])
    block = funded.new_block(coinbase=cb)
    if code is None:
        funded.submit(block)
    else:
        funded.reject(block, code)


def test_bip34_height_in_coinbase(funded: ChainBuilder) -> None:
    funded.reject(funded.new_block(cb_height=112), "bad-cb-height")
    funded.reject(funded.new_block(cb_height=110), "bad-cb-height")
    funded.submit(funded.new_block())


def test_bip34_activation_boundary(make_node: Callable[..., ChainBuilder]) -> None:
    node = make_node(bip34_height=5)
    node.mine(3)
    node.submit(node.new_block(cb_height=1000))  # height 4: not enforced yet
    node.reject(node.new_block(cb_height=1000), "bad-cb-height")  # height 5
    node.submit(node.new_block())


# -- merkle root and mutation -------------------------------------------------------------------


def test_duplicated_transactions_keep_the_merkle_root(funded: ChainBuilder) -> None:
    """CVE-2012-2459: [cb, a, b, b] has the root of [cb, a, b]; the mutated copy is refused
    without marking the header invalid, so the genuine block is accepted afterwards."""
    a = funded.spend([funded.coinbase_out(1)])
    b = funded.spend([funded.coinbase_out(2)])
    genuine = funded.new_block(txs=[a, b])
    mutated = with_txs(genuine, [*genuine.txs, b])
    assert mutated.hash == genuine.hash
    funded.reject(mutated, "bad-txns-duplicate")
    assert not funded.entry(genuine).status & FAILED_MASK
    funded.submit(genuine)


def test_merkle_root_mismatch(funded: ChainBuilder) -> None:
    a = funded.spend([funded.coinbase_out(1)])
    genuine = funded.new_block(txs=[a])
    other = funded.spend([funded.coinbase_out(1)], fee=DEFAULT_FEE + 1)
    funded.reject(with_txs(genuine, [genuine.txs[0], other]), "bad-txnmrklroot")
    funded.reject(with_txs(genuine, [genuine.txs[0]]), "bad-txnmrklroot")
    funded.submit(genuine)


# -- size, weight and sigops ----------------------------------------------------------------------


def _sized_block(node: ChainBuilder, coin: OutPoint, target: int, measure: str) -> Block:
    """A block spending ``coin`` into one OP_RETURN output (or a taproot annex) grown until the
    block's serialized size or weight is exactly ``target``."""
    n = 1000
    for _ in range(6):
        if measure == "size":
            tx = node.spend([coin], [TxOut(0, op_return(bytes(n)))])
            block = node.new_block(txs=[tx])
            got = len(block.serialize())
        else:
            spent = node.outputs[coin]
            tx = Tx(2, [TxIn(coin, b"", NON_FINAL)], [TxOut(spent.value - 1000, P2WSH_OP_TRUE)])
            tx = sign_taproot_keypath(tx, 0, [spent], SECRET_C, annex=b"\x50" + bytes(n))
            block = node.new_block(txs=[tx])
            got = block.weight()
        if got == target:
            return block
        n += target - got
    raise AssertionError(f"could not hit {measure} {target}")


def test_block_size_limit(funded: ChainBuilder) -> None:
    (coin,) = fund_and_mine(funded, 1, [OP_TRUE_SCRIPT])
    limit = MAX_BLOCK_WEIGHT // 4
    too_big = _sized_block(funded, coin, limit + 1, "size")
    assert not too_big.txs[1].has_witness()
    funded.reject(too_big, "bad-blk-length")
    exact = _sized_block(funded, coin, limit, "size")
    assert exact.weight() == MAX_BLOCK_WEIGHT
    funded.submit(exact)


def test_block_size_limit_counts_all_transactions(funded: ChainBuilder) -> None:
    # Each transaction alone is within limits; together they are not.
    txs = [
        funded.spend([funded.coinbase_out(h)], [TxOut(0, op_return(bytes(500_000)))])
        for h in (1, 2)
    ]
    funded.reject(funded.new_block(txs=txs), "bad-blk-length")


def test_block_weight_limit(funded: ChainBuilder) -> None:
    """A taproot key-path spend with a large annex: the legacy size is small, the weight is not."""
    (coin,) = fund_and_mine(funded, 1, [p2tr_script(SECRET_C)])
    too_heavy = _sized_block(funded, coin, MAX_BLOCK_WEIGHT + 1, "weight")
    assert len(too_heavy.serialize_legacy()) < 1000
    funded.reject(too_heavy, "bad-blk-weight")
    exact = _sized_block(funded, coin, MAX_BLOCK_WEIGHT, "weight")
    funded.submit(exact)
    assert not funded.has_coin(coin)


def test_legacy_sigops_limit(funded: ChainBuilder) -> None:
    coin = funded.coinbase_out(1)
    value = funded.outputs[coin].value - DEFAULT_FEE
    checksigs = [TxOut(0, bytes((OP_CHECKSIG,)) * 10_000) for _ in range(2)]
    over = funded.spend(
        [coin], [*checksigs, TxOut(0, bytes((OP_CHECKSIG,))), TxOut(value, P2WSH_OP_TRUE)]
    )
    funded.reject(funded.new_block(txs=[over]), "bad-blk-sigops")
    # 20,000 legacy sigops cost exactly MAX_BLOCK_SIGOPS_COST: allowed.
    exact = funded.spend([coin], [*checksigs, TxOut(value, P2WSH_OP_TRUE)])
    funded.submit(funded.new_block(txs=[exact]))


def test_legacy_sigops_in_the_coinbase_count(funded: ChainBuilder) -> None:
    block = funded.new_block(cb_script=bytes((OP_CHECKSIG,)) * 20_001)
    funded.reject(block, "bad-blk-sigops")


def test_p2sh_sigops_are_counted_when_connecting(funded: ChainBuilder) -> None:
    redeem = bytes((OP_CHECKMULTISIG,)) * 520  # 20 sigops each: 10,400, cost 41,600 per input
    outs = fund_and_mine(funded, 1, [p2sh_script(redeem)] * 2)
    value = 2 * funded.outputs[outs[0]].value - DEFAULT_FEE
    both = Tx(
        2,
        [TxIn(o, push_data(redeem), NON_FINAL) for o in outs],
        [TxOut(value, P2WSH_OP_TRUE)],
    )
    funded.reject(funded.new_block(txs=[both]), "bad-blk-sigops", connect=True)
    # One such input is within the budget, so the script runs (and fails).
    one = Tx(2, [TxIn(outs[0], push_data(redeem), NON_FINAL)], [TxOut(1000, P2WSH_OP_TRUE)])
    funded.reject(
        funded.new_block(txs=[one]), MANDATORY, connect=True, reason="INVALID_STACK_OPERATION"
    )


@pytest.mark.parametrize(
    ("count", "code", "reason"),
    [(4001, "bad-blk-sigops", None), (4000, MANDATORY, "INVALID_STACK_OPERATION")],
)
def test_witness_sigops_are_counted_when_connecting(
    funded: ChainBuilder, count: int, code: str, reason: str | None
) -> None:
    """A P2WSH script's sigops cost 1 each: 4,001 multisigs (80,020) are over the block limit;
    4,000 (80,000) are not, so the script runs (and fails on its first, stackless opcode)."""
    wscript = bytes((OP_CHECKMULTISIG,)) * count
    (coin,) = fund_and_mine(funded, 1, [p2wsh_script(wscript)])
    tx = Tx(2, [TxIn(coin, b"", NON_FINAL, (wscript,))], [TxOut(1000, P2WSH_OP_TRUE)])
    funded.reject(funded.new_block(txs=[tx]), code, connect=True, reason=reason)


# -- BIP30 and transaction replays --------------------------------------------------------------


def test_bip30_duplicate_coinbase(make_node: Callable[..., ChainBuilder]) -> None:
    node = make_node(bip34_height=10**6)
    node.mine(110)
    first = node.block_at(1).txs[0]
    assert first.outputs[0].value == block_subsidy(111, node.params)
    # Repeating the coinbase of block 1 while its output is unspent overwrites it: refused.
    node.reject(node.new_block(coinbase=first), "bad-txns-BIP30", connect=True)
    # Once the first copy is spent, the same coinbase may appear again.
    node.submit(node.new_block(txs=[node.spend([OutPoint(first.txid, 0)])]))
    assert not node.has_coin(OutPoint(first.txid, 0))
    node.submit(node.new_block(coinbase=first))
    coin = node.chain.get_coin(first.txid, 0)
    assert coin is not None and coin.height == 112


def test_replayed_transaction_is_a_bip30_violation(funded: ChainBuilder) -> None:
    a = funded.spend([funded.coinbase_out(1)])
    funded.submit(funded.new_block(txs=[a]))
    # a's output is unspent: including a again would overwrite it (checked before the inputs).
    funded.reject(funded.new_block(txs=[a]), "bad-txns-BIP30", connect=True)
    # Spend a's output; now a replay only fails because its input is gone.
    funded.submit(funded.new_block(txs=[funded.spend([OutPoint(a.txid, 0)])]))
    funded.reject(funded.new_block(txs=[a]), MISSING, connect=True)


# -- inputs -----------------------------------------------------------------------------------


def test_double_spend_within_a_block(funded: ChainBuilder) -> None:
    coin = funded.coinbase_out(1)
    a = funded.spend([coin])
    b = funded.spend([coin], fee=2 * DEFAULT_FEE)
    funded.reject(funded.new_block(txs=[a, b]), MISSING, connect=True)
    assert funded.has_coin(coin)


def test_same_transaction_twice_in_a_block(funded: ChainBuilder) -> None:
    # [cb, a, a] is not a merkle mutation (a is not paired with itself), but a spends twice.
    a = funded.spend([funded.coinbase_out(1)])
    funded.reject(funded.new_block(txs=[a, a]), MISSING, connect=True)


def test_double_spend_across_blocks(funded: ChainBuilder) -> None:
    coin = funded.coinbase_out(1)
    funded.submit(funded.new_block(txs=[funded.spend([coin])]))
    funded.reject(
        funded.new_block(txs=[funded.spend([coin], fee=2 * DEFAULT_FEE)]), MISSING, connect=True
    )


def test_duplicate_input_in_one_transaction(funded: ChainBuilder) -> None:
    coin = funded.coinbase_out(1)
    tx = funded.spend([coin, coin])
    funded.reject(funded.new_block(txs=[tx]), "bad-txns-inputs-duplicate")


def test_spending_an_output_created_later_in_the_block(funded: ChainBuilder) -> None:
    a = funded.spend([funded.coinbase_out(1)])
    b = funded.spend([OutPoint(a.txid, 0)])
    funded.reject(funded.new_block(txs=[b, a]), MISSING, connect=True)
    # In the right order a chain of spends within one block is fine.
    funded.submit(funded.new_block(txs=[a, b]))
    assert not funded.has_coin(OutPoint(a.txid, 0))
    assert funded.has_coin(OutPoint(b.txid, 0))
    assert not funded.has_coin(funded.coinbase_out(1))


def test_spending_a_missing_output(funded: ChainBuilder) -> None:
    ghost = OutPoint(sha256(b"no such transaction"), 0)
    tx = funded.spend([ghost], [TxOut(1000, P2WSH_OP_TRUE)])
    funded.reject(funded.new_block(txs=[tx]), MISSING, connect=True)


def test_outputs_exceed_inputs(funded: ChainBuilder) -> None:
    coin = funded.coinbase_out(1)
    value = funded.outputs[coin].value
    tx = funded.spend([coin], [TxOut(value + 1, P2WSH_OP_TRUE)])
    funded.reject(funded.new_block(txs=[tx]), "bad-txns-in-belowout", connect=True)
    funded.submit(funded.new_block(txs=[funded.spend([coin], [TxOut(value, P2WSH_OP_TRUE)])]))


@pytest.mark.parametrize(
    ("code", "shape"),
    [
        ("bad-txns-vin-empty", "no-inputs"),
        ("bad-txns-vout-empty", "no-outputs"),
        ("bad-txns-vout-negative", "negative"),
        ("bad-txns-vout-toolarge", "too-large"),
        ("bad-txns-txouttotal-toolarge", "total-too-large"),
        ("bad-txns-prevout-null", "null-prevout"),
    ],
)
def test_context_free_transaction_rules(funded: ChainBuilder, code: str, shape: str) -> None:
    coin = funded.coinbase_out(1)
    out = [TxOut(1000, P2WSH_OP_TRUE)]
    if shape == "no-inputs":
        tx = Tx(2, [], out)
    elif shape == "no-outputs":
        tx = funded.spend([coin], [])
    elif shape == "negative":
        tx = funded.spend([coin], [TxOut(-1, P2WSH_OP_TRUE), *out])
    elif shape == "too-large":
        tx = funded.spend([coin], [TxOut(MAX_MONEY + 1, P2WSH_OP_TRUE)])
    elif shape == "total-too-large":
        tx = funded.spend([coin], [TxOut(MAX_MONEY, P2WSH_OP_TRUE)] * 2)
    else:
        tx = Tx(2, [TxIn(coin, b"", NON_FINAL, (OP_TRUE_SCRIPT,)), TxIn(NULL_OUTPOINT)], out)
    funded.reject(funded.new_block(txs=[tx]), code)


# -- header: time, bits, proof of work, version -------------------------------------------------


def test_time_must_be_after_median_time_past(funded: ChainBuilder) -> None:
    median = mtp(funded, tip_block(funded))
    assert median == funded.tip.median_time_past()
    funded.reject(funded.new_block(time=median), "time-too-old")
    funded.submit(funded.new_block(time=median + 1))
    # The tip's own time may be well above the median: going back below it is fine.
    assert funded.tip.header.time < funded.blocks[funded.tip.header.prev_hash].header.time


def test_time_too_far_in_the_future(funded: ChainBuilder) -> None:
    now = funded.now
    edge = funded.new_block(time=now + MAX_FUTURE)
    funded.submit(edge)
    ahead = funded.new_block(time=now + MAX_FUTURE + 1)
    err = funded.reject(ahead, "time-too-new")
    assert err.ban_score == 0
    # Not marked invalid: once the clock catches up the same block is accepted.
    assert funded.chain.index.get(ahead.hash) is None
    funded.now += 1
    funded.submit(ahead)


def test_wrong_difficulty_bits(funded: ChainBuilder) -> None:
    funded.reject(funded.new_block(bits=0x207FFFFE), "bad-diffbits")
    funded.reject(funded.new_block(bits=0x1F7FFFFF), "bad-diffbits")


def test_proof_of_work_not_met(funded: ChainBuilder) -> None:
    block = unsolve(funded.new_block())
    funded.reject(block, "high-hash")
    assert funded.chain.index.get(block.hash) is None
    # Bits easier than the network's limit can never be met.
    funded.reject(funded.new_block(bits=0x217FFFFF, solved=False), "high-hash")


@pytest.mark.parametrize(
    ("height", "version", "code"),
    [
        (1, 1, None),
        (2, 1, "bad-version(0x00000001)"),
        (2, 2, None),
        (4, 2, "bad-version(0x00000002)"),
        (4, 3, None),
        (6, 3, "bad-version(0x00000003)"),
        (6, 4, None),
        (6, -1, "bad-version(0xffffffff)"),
        (6, 0x20000000, None),
    ],
)
def test_old_block_versions_after_activation(
    make_node: Callable[..., ChainBuilder], height: int, version: int, code: str | None
) -> None:
    node = make_node(bip34_height=2, bip66_height=4, bip65_height=6)
    node.mine(height - 1)
    block = node.new_block(version=version)
    if code is None:
        node.submit(block)
    else:
        node.reject(block, code)


# -- witness commitment -------------------------------------------------------------------------


def test_witness_commitment_mismatch(funded: ChainBuilder) -> None:
    a = funded.spend([funded.coinbase_out(1)])
    genuine = funded.new_block(txs=[a])
    # Same txid, different wtxid: the header still matches, the commitment does not.
    altered = Tx(
        a.version,
        [TxIn(a.inputs[0].prevout, b"", a.inputs[0].sequence, (b"\x01", OP_TRUE_SCRIPT))],
        a.outputs,
        a.locktime,
    )
    assert altered.txid == a.txid and altered.wtxid != a.wtxid
    mutated = with_txs(genuine, [genuine.txs[0], altered])
    assert mutated.hash == genuine.hash
    funded.reject(mutated, "bad-witness-merkle-match")
    funded.submit(genuine)


@pytest.mark.parametrize("stack", [(bytes(33),), (bytes(31),), (bytes(32), bytes(32)), ()])
def test_witness_nonce_size(funded: ChainBuilder, stack: tuple[bytes, ...]) -> None:
    genuine = funded.new_block(txs=[funded.spend([funded.coinbase_out(1)])])
    cb = genuine.txs[0]
    cb_in = cb.inputs[0]
    bad_in = TxIn(cb_in.prevout, cb_in.script_sig, cb_in.sequence, stack)
    bad_cb = Tx(cb.version, [bad_in], cb.outputs, cb.locktime)
    assert bad_cb.txid == cb.txid
    funded.reject(with_txs(genuine, [bad_cb, *genuine.txs[1:]]), "bad-witness-nonce-size")
    funded.submit(genuine)


def test_witness_without_commitment(funded: ChainBuilder) -> None:
    a = funded.spend([funded.coinbase_out(1)])
    funded.reject(funded.new_block(txs=[a], witness_commitment=False), "unexpected-witness")
    funded.submit(funded.new_block(txs=[a]))


def test_segwit_activation_boundary(make_node: Callable[..., ChainBuilder]) -> None:
    node = make_node(segwit_height=112)
    node.mine(110)
    spend = node.spend([node.coinbase_out(1)])
    # Height 111: witness data is not allowed yet, commitment or not.
    node.reject(node.new_block(txs=[spend]), "unexpected-witness")
    node.reject(node.new_block(txs=[spend], witness_commitment=False), "unexpected-witness")
    node.submit(node.new_block())
    node.submit(node.new_block(txs=[spend]))  # height 112


# -- signatures: legacy, segwit v0, taproot ---------------------------------------------------------


def test_signed_spends_of_every_template(funded: ChainBuilder) -> None:
    scripts = [p2wpkh_script(PUB_A), p2pkh_script(PUB_B), p2tr_script(SECRET_C)]
    outs = fund_and_mine(funded, 1, scripts)
    spent = [funded.outputs[o] for o in outs]
    total = sum(o.value for o in spent)
    tx = Tx(2, [TxIn(o, b"", NON_FINAL) for o in outs], [TxOut(total - 5000, P2WSH_OP_TRUE)])
    tx = sign_inputs(tx, spent, [SECRET_A, SECRET_B, SECRET_C])
    funded.submit(funded.new_block(txs=[tx]))
    assert not any(funded.has_coin(o) for o in outs)
    assert funded.has_coin(OutPoint(tx.txid, 0))


def test_taproot_key_path_with_a_bad_signature(funded: ChainBuilder) -> None:
    (coin,) = fund_and_mine(funded, 1, [p2tr_script(SECRET_C)])
    spent = funded.outputs[coin]
    tx = Tx(2, [TxIn(coin, b"", NON_FINAL)], [TxOut(spent.value - 5000, P2WSH_OP_TRUE)])
    good = sign_inputs(tx, [spent], [SECRET_C])
    sig = bytearray(good.inputs[0].witness[0])
    sig[10] ^= 1
    bad = Tx(2, [TxIn(coin, b"", NON_FINAL, (bytes(sig),))], tx.outputs)
    funded.reject(funded.new_block(txs=[bad]), MANDATORY, connect=True, reason="SCHNORR_SIG")
    # Signed by the wrong key.
    wrong = sign_taproot_keypath(tx, 0, [spent], SECRET_A)
    funded.reject(funded.new_block(txs=[wrong]), MANDATORY, connect=True, reason="SCHNORR_SIG")
    funded.submit(funded.new_block(txs=[good]))


def test_p2wpkh_signed_with_the_wrong_key(funded: ChainBuilder) -> None:
    (coin,) = fund_and_mine(funded, 1, [p2wpkh_script(PUB_A)])
    spent = funded.outputs[coin]
    tx = Tx(2, [TxIn(coin, b"", NON_FINAL)], [TxOut(spent.value - 5000, P2WSH_OP_TRUE)])
    txdata = PrecomputedTxData(tx, [spent])

    def with_witness(*items: bytes) -> Tx:
        return Tx(2, [TxIn(coin, b"", NON_FINAL, items)], tx.outputs)

    # B's signature over A's sighash, presented with A's key: the signature check fails.
    msg_a = segwit_v0_sighash(p2pkh_script(PUB_A), tx, 0, 1, spent.value, txdata)
    sig_b = sign_ecdsa(SECRET_B, msg_a) + b"\x01"
    funded.reject(
        funded.new_block(txs=[with_witness(sig_b, PUB_A)]),
        MANDATORY,
        connect=True,
        reason="EVAL_FALSE",
    )
    # B's key: its hash is not the one committed to.
    msg_b = segwit_v0_sighash(p2pkh_script(PUB_B), tx, 0, 1, spent.value, txdata)
    sig_b2 = sign_ecdsa(SECRET_B, msg_b) + b"\x01"
    funded.reject(
        funded.new_block(txs=[with_witness(sig_b2, PUB_B)]),
        MANDATORY,
        connect=True,
        reason="EQUALVERIFY",
    )
    funded.submit(funded.new_block(txs=[sign_inputs(tx, [spent], [SECRET_A])]))


def test_p2wsh_spend_without_witness_fails(funded: ChainBuilder) -> None:
    coin = funded.coinbase_out(1)
    tx = bare_spend(funded, coin)  # P2WSH(OP_TRUE) with an empty witness
    funded.reject(
        funded.new_block(txs=[tx]), MANDATORY, connect=True, reason="WITNESS_PROGRAM_WITNESS_EMPTY"
    )


# -- BIP65 / BIP66 --------------------------------------------------------------------------------


def test_bip65_checklocktimeverify_activation(make_node: Callable[..., ChainBuilder]) -> None:
    node = make_node(bip65_height=113)
    node.mine(110)
    outs = fund_and_mine(node, 1, [cltv_script(100)] * 2)  # height 111
    # Height 112: CLTV is still a NOP, so a locktime below 100 does not matter.
    node.submit(node.new_block(txs=[bare_spend(node, outs[0], locktime=99)]))
    # Height 113: enforced.
    node.reject(
        node.new_block(txs=[bare_spend(node, outs[1], locktime=99)]),
        MANDATORY,
        connect=True,
        reason="UNSATISFIED_LOCKTIME",
    )
    node.reject(
        node.new_block(txs=[bare_spend(node, outs[1], locktime=100, sequence=FINAL)]),
        MANDATORY,
        connect=True,
        reason="UNSATISFIED_LOCKTIME",
    )
    node.submit(node.new_block(txs=[bare_spend(node, outs[1], locktime=100)]))


def test_bip66_strict_der_activation(make_node: Callable[..., ChainBuilder]) -> None:
    node = make_node(bip66_height=113)
    node.mine(110)
    p2pk = push_data(PUB_A) + bytes((OP_CHECKSIG,))
    outs = fund_and_mine(node, 1, [p2pk] * 2)  # height 111
    lax = sign_p2pk(bare_spend(node, outs[0]), 0, p2pk, SECRET_A, strict=False)
    node.submit(node.new_block(txs=[lax]))  # height 112: padded DER still verifies
    lax = sign_p2pk(bare_spend(node, outs[1]), 0, p2pk, SECRET_A, strict=False)
    node.reject(node.new_block(txs=[lax]), MANDATORY, connect=True, reason="SIG_DER")  # at 113
    strict = sign_p2pk(bare_spend(node, outs[1]), 0, p2pk, SECRET_A)
    node.submit(node.new_block(txs=[strict]))


# -- BIP68 / BIP112 / BIP113 ----------------------------------------------------------------------


def test_bip68_relative_height_lock(funded: ChainBuilder) -> None:
    # The coinbase of block 1 spent in block 111 with a lock of n blocks needs 1 + n <= 111.
    locked = funded.spend([funded.coinbase_out(1)], sequence=111)
    funded.reject(funded.new_block(txs=[locked]), "bad-txns-nonfinal", connect=True)
    txs = [
        funded.spend([funded.coinbase_out(1)], sequence=110),
        # The disable flag turns the lock off; so does a version 1 transaction.
        funded.spend([funded.coinbase_out(2)], sequence=SEQUENCE_LOCKTIME_DISABLE_FLAG | 500),
        funded.spend([funded.coinbase_out(3)], sequence=500, version=1),
    ]
    funded.submit(funded.new_block(txs=txs))


def test_bip68_relative_time_lock(funded: ChainBuilder) -> None:
    # A time lock counts from the median time past of the block before the coin's block.
    coin_height = 4
    start = mtp(funded, funded.block_at(coin_height - 1))
    prev_mtp = mtp(funded, tip_block(funded))
    units = (prev_mtp - start) // 512  # the largest lock with start + units*512 - 1 < prev_mtp
    assert 0 < units < 0xFFFF
    coin = funded.coinbase_out(coin_height)
    too_long = funded.spend([coin], sequence=SEQUENCE_LOCKTIME_TYPE_FLAG | (units + 1))
    funded.reject(funded.new_block(txs=[too_long]), "bad-txns-nonfinal", connect=True)
    ok = funded.spend([coin], sequence=SEQUENCE_LOCKTIME_TYPE_FLAG | units)
    funded.submit(funded.new_block(txs=[ok]))


def test_bip112_checksequenceverify(funded: ChainBuilder) -> None:
    outs = fund_and_mine(funded, 1, [csv_script(2)] * 2)  # height 111
    # Height 112, sequence 1: BIP68 is satisfied (111 + 1 - 1 < 112) but CSV wants 2.
    funded.reject(
        funded.new_block(txs=[bare_spend(funded, outs[0], sequence=1)]),
        MANDATORY,
        connect=True,
        reason="UNSATISFIED_LOCKTIME",
    )
    # Sequence 2 satisfies the script, but BIP68 now locks the input until height 113.
    funded.reject(
        funded.new_block(txs=[bare_spend(funded, outs[0], sequence=2)]),
        "bad-txns-nonfinal",
        connect=True,
    )
    funded.mine(1)
    # Height 113: a version 1 transaction cannot satisfy CSV; sequence 1 still cannot either.
    funded.reject(
        funded.new_block(txs=[bare_spend(funded, outs[0], sequence=2, version=1)]),
        MANDATORY,
        connect=True,
        reason="UNSATISFIED_LOCKTIME",
    )
    funded.reject(
        funded.new_block(txs=[bare_spend(funded, outs[0], sequence=1)]),
        MANDATORY,
        connect=True,
        reason="UNSATISFIED_LOCKTIME",
    )
    funded.submit(funded.new_block(txs=[bare_spend(funded, outs[0], sequence=2)]))


def test_bip113_locktime_against_median_time_past(funded: ChainBuilder) -> None:
    median = mtp(funded, tip_block(funded))
    coin = funded.coinbase_out(1)
    at_median = funded.spend([coin], locktime=median)
    block = funded.new_block(txs=[at_median])
    assert block.header.time > median  # the block's own time would allow it
    funded.reject(block, "bad-txns-nonfinal")
    # A locktime far ahead is non-final, unless every input's sequence is final.
    funded.reject(
        funded.new_block(txs=[funded.spend([coin], locktime=median + 10**6)]), "bad-txns-nonfinal"
    )
    final = funded.spend([coin], locktime=median + 10**6, sequence=FINAL)
    funded.submit(funded.new_block(txs=[final]))
    coin2 = funded.coinbase_out(2)
    funded.submit(funded.new_block(txs=[funded.spend([coin2], locktime=median - 1)]))


def test_absolute_height_locktime(funded: ChainBuilder) -> None:
    coin = funded.coinbase_out(1)
    funded.reject(funded.new_block(txs=[funded.spend([coin], locktime=111)]), "bad-txns-nonfinal")
    funded.submit(funded.new_block(txs=[funded.spend([coin], locktime=110)]))


def test_csv_rules_before_activation(make_node: Callable[..., ChainBuilder]) -> None:
    """With CSV (BIP68/112/113) at height 500, none of the three applies yet."""
    node = make_node(csv_height=500)
    node.mine(110)
    outs = fund_and_mine(node, 2, [csv_script(5)])  # height 111
    tip = tip_block(node)
    median = mtp(node, tip)
    txs = [
        # BIP68: a relative lock of 1000 blocks is not enforced.
        node.spend([node.coinbase_out(1)], sequence=1000),
        # BIP112: CSV is a NOP.
        bare_spend(node, outs[0], sequence=1),
        # BIP113: the locktime is compared with the block's time, not the median time past.
        node.spend([node.coinbase_out(3)], locktime=median),
    ]
    node.submit(node.new_block(txs=txs))
    # ...and with the block's time, a locktime equal to it is still non-final.
    t = tip_block(node).header.time + SPACING
    late = node.spend([node.coinbase_out(4)], locktime=t)
    node.reject(node.new_block(txs=[late], time=t), "bad-txns-nonfinal")
    node.submit(node.new_block(txs=[late], time=t + 1))


# -- forks, reorganisations, invalidation -----------------------------------------------------------


def test_reorg_one_deep_and_back(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    cb1, cb2 = funded.coinbase_out(1), funded.coinbase_out(2)
    a_tx = funded.spend([cb1])
    a1 = funded.new_block(base, [a_tx])
    funded.submit(a1)
    # An equal-work sibling is stored but does not take over (first seen wins).
    b_tx = funded.spend([cb2])
    b1 = funded.new_block(base, [b_tx])
    funded.submit(b1, becomes_tip=False)
    assert funded.entry(b1).status & HAVE_DATA
    x, y = OutPoint(a_tx.txid, 0), OutPoint(b_tx.txid, 0)
    assert funded.has_coin(x) and not funded.has_coin(y)

    b2 = funded.new_block(b1)
    funded.submit(b2)
    assert funded.chain.height == 112
    assert not funded.has_coin(x) and funded.has_coin(cb1)  # a's spend undone
    assert funded.has_coin(y) and not funded.has_coin(cb2)
    assert not funded.has_coin(OutPoint(a1.txs[0].txid, 0))

    a2 = funded.new_block(a1)
    funded.submit(a2, becomes_tip=False)
    a3 = funded.new_block(a2)
    funded.submit(a3)
    assert [e.hash for e in funded.chain.chain[111:]] == [a1.hash, a2.hash, a3.hash]
    assert funded.has_coin(x) and not funded.has_coin(cb1)
    assert not funded.has_coin(y) and funded.has_coin(cb2)
    assert not funded.has_coin(OutPoint(b1.txs[0].txid, 0))
    assert funded.has_coin(OutPoint(a1.txs[0].txid, 0))


def test_reorg_ten_deep_and_back(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    cb3, cb4 = funded.coinbase_out(3), funded.coinbase_out(4)
    z_tx = funded.spend([cb3])
    main: list[Block] = []
    parent = base
    for i in range(10):
        b = funded.new_block(parent, [z_tx] if i == 4 else [])
        funded.submit(b)
        main.append(b)
        parent = b
    z = OutPoint(z_tx.txid, 0)
    assert funded.has_coin(z)

    w_tx = funded.spend([cb4])
    fork: list[Block] = []
    parent = base
    for i in range(11):
        b = funded.new_block(parent, [w_tx] if i == 7 else [])
        funded.submit(b, becomes_tip=(i == 10))
        fork.append(b)
        parent = b
    w = OutPoint(w_tx.txid, 0)
    assert funded.chain.height == 121 and funded.tip.hash == fork[-1].hash
    assert not funded.has_coin(z) and funded.has_coin(cb3)
    assert funded.has_coin(w) and not funded.has_coin(cb4)
    assert not any(funded.has_coin(OutPoint(b.txs[0].txid, 0)) for b in main)

    # Back again: the old branch grows to 11 blocks (a tie: no switch), then 12.
    (m11,) = funded.mine(1, main[-1], becomes_tip=False)
    funded.mine(1, m11)
    assert funded.chain.height == 122
    assert [e.hash for e in funded.chain.chain[111:121]] == [b.hash for b in main]
    assert funded.has_coin(z) and not funded.has_coin(cb3)
    assert not funded.has_coin(w) and funded.has_coin(cb4)
    assert not any(funded.has_coin(OutPoint(b.txs[0].txid, 0)) for b in fork)
    assert all(funded.has_coin(OutPoint(b.txs[0].txid, 0)) for b in main)


def test_invalid_block_deep_in_a_fork(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    main = funded.mine(3)  # 111..113
    cb1 = funded.coinbase_out(1)
    f1 = funded.new_block(base, [funded.spend([cb1])])
    f2 = funded.new_block(f1, reward_delta=1)  # invalid, found only when connecting
    f3 = funded.new_block(f2)
    f4 = funded.new_block(f3)
    for b in (f1, f2, f3):
        funded.submit(b, becomes_tip=False)  # not more work than the main chain
    # f4 makes the fork heavier: connecting it fails at f2 and the chain goes back.
    funded.reject(f4, "bad-cb-amount", connect=True, failed=f2)
    assert funded.tip.hash == main[-1].hash
    assert funded.has_coin(cb1)  # f1's spend was undone
    assert not funded.entry(f1).status & FAILED_MASK
    assert funded.entry(f2).status & FAILED_VALID
    assert funded.entry(f3).status & FAILED_CHILD
    assert funded.entry(f4).status & FAILED_CHILD
    # Children of a failed block are refused outright; so is the failed block itself.
    funded.reject(funded.new_block(f4), "bad-prevblk")
    funded.reject(f2, "duplicate-invalid")
    # The valid part of the fork can still grow into the best chain.
    (g2,) = funded.mine(1, f1, becomes_tip=False)
    (g3,) = funded.mine(1, g2, becomes_tip=False)  # a tie with the main chain
    (g4,) = funded.mine(1, g3)
    assert [e.hash for e in funded.chain.chain[111:]] == [f1.hash, g2.hash, g3.hash, g4.hash]
    assert not funded.has_coin(cb1)


def test_invalidate_and_reconsider_the_active_chain(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    cb1 = funded.coinbase_out(1)
    tx = funded.spend([cb1])
    blocks = [funded.new_block(txs=[tx])]
    funded.submit(blocks[0])
    blocks += funded.mine(4)  # 111..115
    funded.chain.invalidate_block(blocks[2].hash)  # 113
    assert funded.tip.hash == blocks[1].hash
    assert funded.entry(blocks[2]).status & FAILED_VALID
    assert all(funded.entry(b).status & FAILED_CHILD for b in blocks[3:])
    # A new block on 112 becomes the tip, the invalidated branch notwithstanding.
    alt = funded.new_block(blocks[1])
    funded.submit(alt)
    funded.chain.reconsider_block(blocks[2].hash)
    assert funded.tip.hash == blocks[-1].hash
    assert not any(funded.entry(b).status & FAILED_MASK for b in blocks)
    assert funded.has_coin(OutPoint(tx.txid, 0)) and not funded.has_coin(cb1)
    # Invalidating the block that spent cb1 (an ancestor of alt too) gives the coin back.
    funded.chain.invalidate_block(blocks[0].hash)
    assert funded.tip.hash == base.hash
    assert funded.entry(alt).status & FAILED_CHILD
    assert funded.has_coin(cb1) and not funded.has_coin(OutPoint(tx.txid, 0))


def test_fork_becomes_active_after_reconsider(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    main = funded.mine(2)
    fork = funded.mine(3, base, becomes_tip=None)
    assert funded.tip.hash == fork[-1].hash
    funded.chain.invalidate_block(fork[0].hash)
    assert funded.tip.hash == main[-1].hash
    # While invalid, extending the fork is refused.
    funded.reject(funded.new_block(fork[-1]), "bad-prevblk")
    funded.chain.reconsider_block(fork[1].hash)  # clears its ancestors too
    assert funded.tip.hash == fork[-1].hash
    assert not funded.entry(fork[0]).status & FAILED_MASK


def test_precious_block_among_equal_work_tips(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    (a,) = funded.mine(1)
    (b,) = funded.mine(1, base, becomes_tip=False)
    funded.chain.precious_block(b.hash)
    assert funded.tip.hash == b.hash
    funded.chain.precious_block(a.hash)
    assert funded.tip.hash == a.hash
    # A precious block with less work than the tip changes nothing.
    funded.chain.precious_block(base.hash)
    assert funded.tip.hash == a.hash
    # More work always wins.
    (c,) = funded.mine(1, b)
    assert funded.tip.hash == c.hash


def test_orphan_blocks_wait_for_their_parent(funded: ChainBuilder) -> None:
    p1 = funded.new_block()
    p2 = funded.new_block(p1)
    p3 = funded.new_block(p2)
    tip = funded.tip
    assert funded.chain.accept_block(p3) is None
    assert funded.chain.accept_block(p2) is None
    assert funded.tip is tip
    # A block with bad proof of work is refused even as an orphan.
    funded.reject(unsolve(funded.new_block(p3)), "high-hash")
    funded.submit(p1, becomes_tip=None)
    assert funded.tip.hash == p3.hash and funded.chain.height == 113


def test_header_with_unknown_parent(funded: ChainBuilder) -> None:
    orphan = funded.new_block(funded.new_block())
    with pytest.raises(RuleError) as info:
        funded.chain.accept_header(orphan.header)
    assert info.value.code == "prev-blk-not-found"


def test_fork_spending_a_coin_of_the_other_branch(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    a_tx = funded.spend([funded.coinbase_out(1)])
    funded.submit(funded.new_block(base, [a_tx]))
    funded.mine(1)
    # The fork spends a's output, which does not exist on the fork's own chain.
    f1 = funded.new_block(base)
    f2 = funded.new_block(f1, [funded.spend([OutPoint(a_tx.txid, 0)])])
    f3 = funded.new_block(f2)
    funded.submit(f1, becomes_tip=False)
    funded.submit(f2, becomes_tip=False)
    funded.reject(f3, MISSING, connect=True, failed=f2)
    assert funded.has_coin(OutPoint(a_tx.txid, 0))


def test_events_on_connect_and_reorg(funded: ChainBuilder) -> None:
    log: list[tuple[str, object]] = []
    events = funded.chain.events
    events.block_connected.append(lambda b, e: log.append(("connected", b.hash)))
    events.block_disconnected.append(lambda b, e: log.append(("disconnected", b.hash)))
    events.tip_changed.append(lambda e: log.append(("tip", e.hash)))
    events.transactions_disconnected.append(lambda txs: log.append(("txs", [t.txid for t in txs])))
    base = tip_block(funded)
    t1 = funded.spend([funded.coinbase_out(1)])
    t2 = funded.spend([OutPoint(t1.txid, 0)])
    a1 = funded.new_block(base, [t1, t2])
    funded.submit(a1)
    assert log == [("connected", a1.hash), ("tip", a1.hash)]

    log.clear()
    b1 = funded.new_block(base)
    funded.submit(b1, becomes_tip=False)
    assert log == []  # stored only
    b2 = funded.new_block(b1)
    funded.submit(b2)
    kinds = [k for k, _ in log]
    assert log[0] == ("disconnected", a1.hash)
    assert [v for k, v in log if k == "connected"] == [b1.hash, b2.hash]
    assert kinds.index("disconnected") < kinds.index("connected")
    # The disconnected block's transactions (not its coinbase) are handed back, in order.
    assert [v for k, v in log if k == "txs"] == [[t1.txid, t2.txid]]
    assert log[-1] == ("tip", b2.hash)

    # Invalidating b2 leaves b1 and a1 with equal work: a1 was received first, so it is back.
    log.clear()
    funded.chain.invalidate_block(b2.hash)
    assert [v for k, v in log if k == "disconnected"] == [b2.hash, b1.hash]
    assert [v for k, v in log if k == "connected"] == [a1.hash]
    assert log[-1] == ("tip", a1.hash)
    assert funded.tip.hash == a1.hash


def test_restart_keeps_tip_and_coins(funded: ChainBuilder) -> None:
    cb1 = funded.coinbase_out(1)
    tx = funded.spend([cb1])
    block = funded.new_block(txs=[tx])
    funded.submit(block)
    tip_hash = funded.tip.hash
    chain = funded.reopen()
    assert chain.tip.hash == tip_hash and chain.height == 111
    assert funded.has_coin(OutPoint(tx.txid, 0)) and not funded.has_coin(cb1)
    assert chain.read_block(chain.tip) == block
    # The reopened chain keeps validating, and undoes pre-restart blocks in a reorg.
    funded.reject(funded.new_block(txs=[funded.spend([cb1], fee=1)]), MISSING, connect=True)
    (f1,) = funded.mine(1, funded.block_at(110), becomes_tip=False)
    funded.mine(1, f1)
    assert funded.has_coin(cb1) and not funded.has_coin(OutPoint(tx.txid, 0))


def test_restart_keeps_invalidation(funded: ChainBuilder) -> None:
    (a,) = funded.mine(1)
    funded.chain.invalidate_block(a.hash)
    assert funded.chain.height == 110
    chain = funded.reopen()
    assert chain.height == 110
    assert funded.entry(a).status & FAILED_VALID
    funded.reject(a, "duplicate-invalid")


def test_invalid_fork_block_one_deep_returns_to_the_first_seen_tip(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    (a1,) = funded.mine(1)
    f1 = funded.new_block(base)
    funded.submit(f1, becomes_tip=False)
    # f2 fails after f1 was connected in a1's place: f1 and a1 tie, and a1 was seen first.
    funded.reject(funded.new_block(f1, reward_delta=1), "bad-cb-amount", connect=True)
    assert funded.tip.hash == a1.hash
    assert not funded.entry(f1).status & FAILED_MASK


def test_reconsidering_an_invalid_fork_fails_again(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    main = funded.mine(2)
    f1 = funded.new_block(base)
    f2 = funded.new_block(f1, txs=[funded.spend([funded.coinbase_out(1)], sequence=500)])
    funded.submit(f1, becomes_tip=False)
    funded.submit(f2, becomes_tip=False)
    funded.reject(funded.new_block(f2), "bad-txns-nonfinal", connect=True, failed=f2)
    # reconsider_block clears the marks; connecting finds the same fault again.
    funded.chain.last_error = None
    funded.chain.reconsider_block(f1.hash)
    assert funded.chain.last_error is not None
    assert funded.chain.last_error[1].code == "bad-txns-nonfinal"
    assert funded.tip.hash == main[-1].hash
    # The marks survive a restart.
    funded.reopen()
    assert funded.tip.hash == main[-1].hash
    assert funded.entry(f2).status & FAILED_VALID
    funded.reject(f2, "duplicate-invalid")


def test_resubmitting_a_connected_block_is_harmless(funded: ChainBuilder) -> None:
    block = funded.block_at(100)
    tip = funded.tip
    assert funded.chain.accept_block(block) is funded.entry(block)
    assert funded.tip is tip


def test_coinbase_locktime_must_be_final(funded: ChainBuilder) -> None:
    def coinbase_locked_at(locktime: int) -> Tx:
        cb = coinbase_tx(111, [TxOut(1, P2WSH_OP_TRUE)], witness=False, sequence=0)
        return Tx(cb.version, cb.inputs, cb.outputs, locktime)

    funded.reject(funded.new_block(coinbase=coinbase_locked_at(111)), "bad-txns-nonfinal")
    funded.submit(funded.new_block(coinbase=coinbase_locked_at(110)))


def test_bip68_lock_on_an_output_of_the_same_block(funded: ChainBuilder) -> None:
    parent = funded.spend([funded.coinbase_out(1)])
    locked = funded.spend([OutPoint(parent.txid, 0)], sequence=1)
    funded.reject(funded.new_block(txs=[parent, locked]), "bad-txns-nonfinal", connect=True)
    unlocked = funded.spend([OutPoint(parent.txid, 0)], sequence=0)
    funded.submit(funded.new_block(txs=[parent, unlocked]))


def test_reorg_with_a_transaction_in_both_branches(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    t = funded.spend([funded.coinbase_out(1)])
    (a1,) = [funded.new_block(base, [t])]
    funded.submit(a1)
    funded.chain.flush()  # t's output now lives in the database, not only in the cache
    b1 = funded.new_block(base, [t])
    funded.submit(b1, becomes_tip=False)
    funded.mine(1, b1)
    out = OutPoint(t.txid, 0)
    coin = funded.chain.get_coin(out.txid, out.index)
    assert coin is not None and coin.height == 111
    assert not funded.has_coin(funded.coinbase_out(1))
    # The output is spendable exactly once on the new chain.
    funded.submit(funded.new_block(txs=[funded.spend([out])]))
    funded.reject(funded.new_block(txs=[funded.spend([out], fee=1)]), MISSING, connect=True)


# -- regressions: bugs this suite found ------------------------------------------------------


def test_reorg_does_not_resurrect_an_output_spent_in_its_own_block(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    t = funded.spend([funded.coinbase_out(1)])
    funded.submit(funded.new_block(base, [t]))
    funded.chain.flush()  # t:0 is written to the UTXO database
    out = OutPoint(t.txid, 0)
    # The fork carries t again and spends its output in the same block.
    b1 = funded.new_block(base, [t, funded.spend([out])])
    funded.submit(b1, becomes_tip=False)
    funded.mine(1, b1)
    assert not funded.has_coin(out), "t:0 was spent in b1 but is back in the UTXO set"
    funded.reject(funded.new_block(txs=[funded.spend([out], fee=1)]), MISSING, connect=True)


def test_restart_keeps_the_tip_among_equal_work_tips(funded: ChainBuilder) -> None:
    base = tip_block(funded)
    x, y = funded.new_block(base), funded.new_block(base)
    first, second = (x, y) if x.hash > y.hash else (y, x)  # the active tip sorts last
    funded.submit(first)
    funded.submit(second, becomes_tip=False)
    funded.reopen()
    assert funded.tip.hash == first.hash
