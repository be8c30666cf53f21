"""Contextual block rules: each reject code from a minimal case, Core's order, real blocks, and the
real blocks' fees recomputed from their spent coins."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.contextual import (
    BIP34_IMPLIES_BIP30_LIMIT,
    MAX_TIMEWARP,
    SEQUENCE_FINAL,
    SEQUENCE_LOCKTIME_DISABLE_FLAG,
    SEQUENCE_LOCKTIME_TYPE_FLAG,
    SpentCoin,
    bip30_enforced,
    calculate_sequence_locks,
    check_bip30,
    check_coinbase_amount,
    check_tx_inputs,
    check_witness_malleation,
    contextual_check_block,
    contextual_check_block_header,
    evaluate_sequence_locks,
    is_bip30_repeat,
    is_bip30_unspendable,
    is_final_tx,
    money_range,
)
from peercash.consensus.errors import RuleError
from peercash.consensus.merkle import (
    compute_witness_commitment,
    merkle_root,
    witness_commitment_script,
    witness_merkle_root,
)
from peercash.consensus.primitives import (
    MAX_BLOCK_WEIGHT,
    MAX_MONEY,
    NULL_HASH,
    Block,
    Header,
    OutPoint,
    Tx,
    TxIn,
    TxOut,
)
from peercash.consensus.script.script import LOCKTIME_THRESHOLD, push_int

DATA = Path(__file__).resolve().parents[1] / "data"
BLOCKS = DATA / "bcoin" / "blocks"

NULL = OutPoint(NULL_HASH, 0xFFFFFFFF)
NONCE = b"\x00" * 32
P2WPKH = b"\x00\x14" + b"\x77" * 20


def op(i: int, index: int = 0) -> OutPoint:
    return OutPoint(i.to_bytes(32, "little"), index)


def wire(display: str) -> bytes:
    return bytes.fromhex(display)[::-1]


def rule(fn: Callable[..., object], *args: Any, **kwargs: Any) -> RuleError:
    with pytest.raises(RuleError) as info:
        fn(*args, **kwargs)
    return info.value


# -- ContextualCheckBlockHeader ----------------------------------------------------------------

BITS = 0x1D00FFFF
PREV_TIME = 1_700_000_000
MTP = PREV_TIME - 3000
NOW = PREV_TIME + 600
MAX_FUTURE = 2 * 60 * 60


def hdr(time: int = PREV_TIME + 1, version: int = 0x20000000, bits: int = BITS) -> Header:
    return Header(version, b"\x11" * 32, b"\x22" * 32, time, bits, 0)


def header_kwargs(**over: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "prev_height": 1000,
        "expected_bits": BITS,
        "median_time_past": MTP,
        "adjusted_time": NOW,
        "max_future_block_time": MAX_FUTURE,
        "bip34_active": True,
        "bip66_active": True,
        "bip65_active": True,
        "prev_time": PREV_TIME,
    }
    kwargs.update(over)
    return kwargs


def header_code(header: Header, **over: Any) -> RuleError:
    return rule(contextual_check_block_header, header, **header_kwargs(**over))


def test_header_passes() -> None:
    contextual_check_block_header(hdr(), **header_kwargs())
    contextual_check_block_header(hdr(MTP + 1), **header_kwargs())
    contextual_check_block_header(hdr(NOW + MAX_FUTURE), **header_kwargs())


def test_bad_diffbits() -> None:
    err = header_code(hdr(bits=BITS + 1))
    assert (err.code, err.ban_score) == ("bad-diffbits", 100)


def test_time_too_old() -> None:
    err = header_code(hdr(MTP))
    assert (err.code, err.ban_score) == ("time-too-old", 100)
    assert header_code(hdr(MTP - 1)).code == "time-too-old"


def test_time_too_new_is_not_punished() -> None:
    err = header_code(hdr(NOW + MAX_FUTURE + 1))
    assert (err.code, err.ban_score) == ("time-too-new", 0)


def test_timewarp_bip94() -> None:
    retarget = {"prev_height": 2015, "enforce_bip94": True}
    early = hdr(PREV_TIME - MAX_TIMEWARP - 1)
    mtp = {"median_time_past": early.time - 1}
    err = header_code(early, **retarget, **mtp)
    assert (err.code, err.ban_score) == ("time-timewarp-attack", 100)
    # Exactly MAX_TIMEWARP before the parent is allowed.
    contextual_check_block_header(hdr(PREV_TIME - MAX_TIMEWARP), **header_kwargs(**retarget, **mtp))
    # Only on retarget heights, and only where the network enforces BIP94.
    contextual_check_block_header(
        early, **header_kwargs(prev_height=2016, enforce_bip94=True, **mtp)
    )
    contextual_check_block_header(early, **header_kwargs(prev_height=2015, **mtp))
    # The interval is a parameter (regtest's is 144 in Core).
    err = header_code(
        early, prev_height=143, enforce_bip94=True, difficulty_adjustment_interval=144, **mtp
    )
    assert err.code == "time-timewarp-attack"
    with pytest.raises(ValueError):
        contextual_check_block_header(early, **header_kwargs(prev_time=None, **retarget, **mtp))


@pytest.mark.parametrize(
    ("version", "active", "code"),
    [
        (1, {"bip66_active": False, "bip65_active": False}, "bad-version(0x00000001)"),
        (2, {"bip65_active": False}, "bad-version(0x00000002)"),
        (3, {}, "bad-version(0x00000003)"),
        (0, {"bip66_active": False, "bip65_active": False}, "bad-version(0x00000000)"),
        (-1, {"bip66_active": False, "bip65_active": False}, "bad-version(0xffffffff)"),
        (-0x7FFFFFFF - 1, {}, "bad-version(0x80000000)"),
    ],
)
def test_bad_version(version: int, active: dict[str, bool], code: str) -> None:
    err = header_code(hdr(version=version), **active)
    assert (err.code, err.ban_score) == (code, 100)


def test_versions_allowed_before_activation() -> None:
    off = {"bip34_active": False, "bip66_active": False, "bip65_active": False}
    for version in (-1, 0, 1, 2, 3):
        contextual_check_block_header(hdr(version=version), **header_kwargs(**off))
    contextual_check_block_header(hdr(version=2), **header_kwargs(**{**off, "bip34_active": True}))
    contextual_check_block_header(hdr(version=3), **header_kwargs(bip65_active=False))
    contextual_check_block_header(hdr(version=4), **header_kwargs())


def test_header_order() -> None:
    # bits, then too-old, then timewarp, then too-new, then version.
    assert header_code(hdr(MTP, version=1, bits=1)).code == "bad-diffbits"
    assert header_code(hdr(MTP, version=1)).code == "time-too-old"
    early = hdr(PREV_TIME - MAX_TIMEWARP - 1, version=1)
    err = header_code(early, median_time_past=0, prev_height=2015, enforce_bip94=True)
    assert err.code == "time-timewarp-attack"
    assert header_code(hdr(NOW + MAX_FUTURE + 1, version=1)).code == "time-too-new"


# -- IsFinalTx ---------------------------------------------------------------------------------


def locked_tx(locktime: int, sequences: tuple[int, ...] = (0,)) -> Tx:
    return Tx(
        2, [TxIn(op(i + 1), b"", s) for i, s in enumerate(sequences)], [TxOut(1, b"")], locktime
    )


def test_is_final_tx() -> None:
    assert is_final_tx(locked_tx(0), 0, 0)
    # Height lock times: satisfied strictly below the block height.
    assert is_final_tx(locked_tx(99), 100, 0)
    assert not is_final_tx(locked_tx(100), 100, 0)
    assert not is_final_tx(locked_tx(LOCKTIME_THRESHOLD - 1), 100, 2**40)
    # Time lock times: compared with the time given, not the height.
    assert is_final_tx(locked_tx(LOCKTIME_THRESHOLD), 0, LOCKTIME_THRESHOLD + 1)
    assert not is_final_tx(locked_tx(LOCKTIME_THRESHOLD + 5), 10**9, LOCKTIME_THRESHOLD + 5)
    # All sequences final: the lock time is ignored.
    assert is_final_tx(locked_tx(100, (SEQUENCE_FINAL, SEQUENCE_FINAL)), 100, 0)
    assert not is_final_tx(locked_tx(100, (SEQUENCE_FINAL, SEQUENCE_FINAL - 1)), 100, 0)


# -- ContextualCheckBlock ----------------------------------------------------------------------


def coinbase(
    height: int,
    outputs: tuple[TxOut, ...] = (TxOut(50, b"\x51"),),
    witness: tuple[bytes, ...] = (),
    extra: bytes = b"\x00",
) -> Tx:
    return Tx(1, [TxIn(NULL, push_int(height) + extra, SEQUENCE_FINAL, witness)], outputs)


def segwit_spend(i: int, witness: tuple[bytes, ...] = (b"\x30" * 71, b"\x02" * 33)) -> Tx:
    return Tx(2, [TxIn(op(i), b"", SEQUENCE_FINAL, witness)], [TxOut(1, P2WPKH)])


def make_block(txs: list[Tx], time: int = PREV_TIME + 1) -> Block:
    root, _ = merkle_root([tx.txid for tx in txs])
    return Block(Header(0x20000000, b"\x11" * 32, root, time, 0x207FFFFF, 0), txs)


def committed(
    height: int, others: list[Tx], nonce: bytes = NONCE, commitments: int = 1
) -> list[Tx]:
    """A coinbase committing to ``others``' witnesses (as the last of ``commitments`` outputs)."""
    draft = make_block([coinbase(height), *others])
    root, _ = witness_merkle_root(draft)
    script = witness_commitment_script(compute_witness_commitment(root, nonce))
    outputs = (TxOut(50, b"\x51"), *([TxOut(0, script)] * commitments))
    return [coinbase(height, outputs, (nonce,)), *others]


def block_kwargs(**over: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "height": 500,
        "lock_time_cutoff": PREV_TIME,
        "bip34_active": True,
        "segwit_active": True,
    }
    kwargs.update(over)
    return kwargs


def block_code(block: Block, **over: Any) -> RuleError:
    err = rule(contextual_check_block, block, **block_kwargs(**over))
    assert err.ban_score == 100
    return err


def test_block_passes() -> None:
    contextual_check_block(make_block([coinbase(500)]), **block_kwargs())
    contextual_check_block(make_block(committed(500, [segwit_spend(1)])), **block_kwargs())
    # Segwit active but no commitment and no witness anywhere: fine.
    contextual_check_block(make_block([coinbase(500), locked_tx(0)]), **block_kwargs())


def test_nonfinal() -> None:
    block = make_block([coinbase(500), locked_tx(500)])
    assert block_code(block).code == "bad-txns-nonfinal"
    contextual_check_block(make_block([coinbase(500), locked_tx(499)]), **block_kwargs())
    timed = make_block([coinbase(500), locked_tx(PREV_TIME)])
    assert block_code(timed).code == "bad-txns-nonfinal"
    contextual_check_block(timed, **block_kwargs(lock_time_cutoff=PREV_TIME + 1))
    # The coinbase is checked too (its sequence is final here, so its lock time is ignored).
    cb = Tx(1, [TxIn(NULL, push_int(500) + b"\x00", 0)], [TxOut(1, b"")], 600)
    assert block_code(make_block([cb])).code == "bad-txns-nonfinal"


@pytest.mark.parametrize(
    "height", [1, 5, 16, 17, 127, 128, 255, 256, 32767, 32768, 227_931, 840_000]
)
def test_coinbase_height(height: int) -> None:
    contextual_check_block(make_block([coinbase(height)]), **block_kwargs(height=height))
    # The exact prefix Core's CScript() << height writes, then anything.
    contextual_check_block(make_block([coinbase(height, extra=b"")]), **block_kwargs(height=height))
    err = block_code(make_block([coinbase(height + 1)]), height=height)
    assert err.code == "bad-cb-height"


def test_coinbase_height_encodings() -> None:
    # Small heights are OP_N, like Core's CScript() << n; a push of the number is not accepted.
    assert push_int(5) == b"\x55"
    wrong = Tx(1, [TxIn(NULL, b"\x01\x05\x00")], [TxOut(1, b"")])
    assert block_code(make_block([wrong]), height=5).code == "bad-cb-height"
    # 128 needs a sign byte: 02 80 00; without it, it would read as -0.
    assert push_int(128) == b"\x02\x80\x00"
    wrong = Tx(1, [TxIn(NULL, b"\x01\x80\x00")], [TxOut(1, b"")])
    assert block_code(make_block([wrong]), height=128).code == "bad-cb-height"
    # A scriptSig shorter than the expected push.
    short = Tx(1, [TxIn(NULL, b"\x03\x5b\x7a")], [TxOut(1, b"")])
    assert block_code(make_block([short]), height=0x037A5B).code == "bad-cb-height"
    # Before BIP34 anything goes.
    contextual_check_block(make_block([wrong]), **block_kwargs(height=128, bip34_active=False))


def test_witness_nonce_size() -> None:
    for nonce_stack in [(), (NONCE, NONCE), (b"\x00" * 31,), (b"\x00" * 33,)]:
        txs = committed(500, [segwit_spend(1)])
        cb = txs[0]
        txs[0] = Tx(
            1, [TxIn(NULL, cb.inputs[0].script_sig, SEQUENCE_FINAL, nonce_stack)], cb.outputs
        )
        assert block_code(make_block(txs)).code == "bad-witness-nonce-size"


def test_witness_merkle_match() -> None:
    txs = committed(500, [segwit_spend(1)])
    txs[1] = segwit_spend(1, (b"\x30" * 70, b"\x02" * 33))  # same txid, other witness
    block = make_block(txs)
    assert block.txs[1].txid == committed(500, [segwit_spend(1)])[1].txid
    assert block_code(block).code == "bad-witness-merkle-match"
    # A different reserved value breaks the commitment too.
    txs = committed(500, [segwit_spend(1)])
    cb = txs[0]
    txs[0] = Tx(
        1, [TxIn(NULL, cb.inputs[0].script_sig, SEQUENCE_FINAL, (b"\x01" * 32,))], cb.outputs
    )
    assert block_code(make_block(txs)).code == "bad-witness-merkle-match"


def test_last_commitment_counts() -> None:
    txs = committed(500, [segwit_spend(1)], commitments=2)
    contextual_check_block(make_block(txs), **block_kwargs())
    cb = txs[0]
    wrong = TxOut(0, witness_commitment_script(b"\x55" * 32))
    first_good = Tx(1, cb.inputs, (*cb.outputs[:2], wrong))
    assert block_code(make_block([first_good, txs[1]])).code == "bad-witness-merkle-match"
    last_good = Tx(1, cb.inputs, (cb.outputs[0], wrong, cb.outputs[2]))
    contextual_check_block(make_block([last_good, txs[1]]), **block_kwargs())


def test_unexpected_witness() -> None:
    # No commitment, a witness: rejected whether or not segwit is active.
    block = make_block([coinbase(500), segwit_spend(1)])
    assert block_code(block).code == "unexpected-witness"
    assert block_code(block, segwit_active=False).code == "unexpected-witness"
    # Before segwit, even a committed witness is unexpected (the coinbase's own counts).
    committed_block = make_block(committed(500, [segwit_spend(1)]))
    assert block_code(committed_block, segwit_active=False).code == "unexpected-witness"
    only_cb = make_block(committed(500, []))
    contextual_check_block(only_cb, **block_kwargs())
    assert block_code(only_cb, segwit_active=False).code == "unexpected-witness"
    # check_witness_malleation on its own.
    check_witness_malleation(committed_block, True)
    with pytest.raises(RuleError, match="unexpected-witness"):
        check_witness_malleation(committed_block, False)


def test_block_weight() -> None:
    heavy = segwit_spend(1, (b"\x00" * (MAX_BLOCK_WEIGHT - 1000),))
    block = make_block(committed(500, [heavy]))
    assert block.weight() > MAX_BLOCK_WEIGHT
    assert block_code(block).code == "bad-blk-weight"
    lighter = segwit_spend(1, (b"\x00" * (MAX_BLOCK_WEIGHT - 2000),))
    block = make_block(committed(500, [lighter]))
    assert block.weight() <= MAX_BLOCK_WEIGHT
    contextual_check_block(block, **block_kwargs())


def test_block_order() -> None:
    # nonfinal before cb-height
    block = make_block([coinbase(7), locked_tx(500)])
    assert block_code(block).code == "bad-txns-nonfinal"
    # cb-height before witness checks
    block = make_block([coinbase(7), segwit_spend(1)])
    assert block_code(block).code == "bad-cb-height"
    # witness malleation before weight: an overweight coinbase witness reads as malleation.
    txs = committed(500, [segwit_spend(1)])
    cb = txs[0]
    stuffed = (b"\x00" * MAX_BLOCK_WEIGHT,)
    txs[0] = Tx(1, [TxIn(NULL, cb.inputs[0].script_sig, SEQUENCE_FINAL, stuffed)], cb.outputs)
    block = make_block(txs)
    assert block.weight() > MAX_BLOCK_WEIGHT
    assert block_code(block).code == "bad-witness-nonce-size"


# -- BIP68 sequence locks ----------------------------------------------------------------------


def seq_tx(*sequences: int, version: int = 2) -> Tx:
    return Tx(version, [TxIn(op(i + 1), b"", s) for i, s in enumerate(sequences)], [TxOut(1, b"")])


class MtpChain:
    """A chain whose block at height h has median time past 1000 * h; records the heights asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def __call__(self, height: int) -> int:
        self.asked.append(height)
        return 1000 * height


def test_sequence_locks_not_enforced() -> None:
    tx = seq_tx(10)
    assert calculate_sequence_locks(tx, False, [100], 200, MtpChain()) == (-1, -1)
    assert calculate_sequence_locks(seq_tx(10, version=1), True, [100], 200, MtpChain()) == (-1, -1)
    # Version is unsigned: 0xffffffff is "at least 2".
    assert calculate_sequence_locks(
        seq_tx(10, version=0xFFFFFFFF), True, [100], 200, MtpChain()
    ) == (
        109,
        -1,
    )
    disabled = seq_tx(SEQUENCE_LOCKTIME_DISABLE_FLAG | 10, SEQUENCE_FINAL)
    assert calculate_sequence_locks(disabled, True, [100, 100], 200, MtpChain()) == (-1, -1)


def test_height_locks() -> None:
    lock = calculate_sequence_locks(seq_tx(10), True, [100], 200, MtpChain())
    assert lock == (109, -1)
    assert evaluate_sequence_locks(110, 10**9, lock)
    assert not evaluate_sequence_locks(109, 10**9, lock)
    # The largest constraint wins; zero means "any block after the coin's".
    lock = calculate_sequence_locks(seq_tx(10, 20, 0), True, [100, 95, 150], 200, MtpChain())
    assert lock == (149, -1)
    # Only the low 16 bits count.
    assert calculate_sequence_locks(seq_tx(0x003F0001), True, [100], 200, MtpChain()) == (100, -1)


def test_time_locks_use_mtp_before_the_coin() -> None:
    mtp = MtpChain()
    lock = calculate_sequence_locks(seq_tx(SEQUENCE_LOCKTIME_TYPE_FLAG | 3), True, [100], 200, mtp)
    # Measured from the MTP of block 99 (the one before the coin's block), in 512 s units.
    assert mtp.asked == [99]
    assert lock == (-1, 99_000 + 3 * 512 - 1)
    assert evaluate_sequence_locks(200, 99_000 + 3 * 512, lock)
    assert not evaluate_sequence_locks(200, 99_000 + 3 * 512 - 1, lock)
    # A coin from the genesis block (or height 0) asks for height 0, not -1.
    mtp = MtpChain()
    calculate_sequence_locks(seq_tx(SEQUENCE_LOCKTIME_TYPE_FLAG | 1), True, [0], 200, mtp)
    assert mtp.asked == [0]
    # Mixed: both constraints are kept.
    tx = seq_tx(SEQUENCE_LOCKTIME_TYPE_FLAG | 1, 5)
    assert calculate_sequence_locks(tx, True, [50, 60], 200, MtpChain()) == (64, 49_000 + 511)


def test_sequence_lock_arguments() -> None:
    with pytest.raises(ValueError):
        calculate_sequence_locks(seq_tx(1, 2), True, [1], 200, MtpChain())
    with pytest.raises(ValueError):
        calculate_sequence_locks(seq_tx(1), True, [201], 200, MtpChain())


# -- CheckTxInputs and the coinbase amount -----------------------------------------------------


def coin(value: int, height: int = 10, coinbase: bool = False) -> SpentCoin:
    return SpentCoin(TxOut(value, b"\x51"), height, coinbase)


def pay(*values: int, n_inputs: int = 1) -> Tx:
    return Tx(2, [TxIn(op(i + 1)) for i in range(n_inputs)], [TxOut(v, b"") for v in values])


def inputs_code(tx: Tx, spent: list[SpentCoin | None], height: int = 1000) -> str:
    err = rule(check_tx_inputs, tx, spent, height, 100)
    assert err.ban_score == 100
    return err.code


def test_spent_coin_is_frozen_and_slotted() -> None:
    c = coin(5)
    with pytest.raises(AttributeError):
        c.height = 3  # type: ignore[misc]
    assert not hasattr(c, "__dict__")
    assert c == coin(5)


def test_fee() -> None:
    assert check_tx_inputs(pay(70, 20), [coin(100)], 1000, 100) == 10
    assert check_tx_inputs(pay(100, n_inputs=2), [coin(60), coin(40)], 1000, 100) == 0
    assert check_tx_inputs(pay(0), [coin(MAX_MONEY)], 1000, 100) == MAX_MONEY


def test_missing_inputs() -> None:
    assert inputs_code(pay(1), [None]) == "bad-txns-inputs-missingorspent"
    # Every input is looked up before anything else is checked.
    spent: list[SpentCoin | None] = [coin(5, height=999, coinbase=True), None]
    assert inputs_code(pay(1, n_inputs=2), spent) == "bad-txns-inputs-missingorspent"


def test_coinbase_maturity() -> None:
    young = coin(100, height=901, coinbase=True)
    assert inputs_code(pay(1), [young]) == "bad-txns-premature-spend-of-coinbase"
    assert check_tx_inputs(pay(1), [coin(100, height=900, coinbase=True)], 1000, 100) == 99
    assert check_tx_inputs(pay(1), [coin(100, height=999)], 1000, 100) == 99
    # A different maturity (a parameter, not a constant).
    assert check_tx_inputs(pay(1), [young], 1000, 99) == 99


def test_input_values_out_of_range() -> None:
    assert inputs_code(pay(1), [coin(MAX_MONEY + 1)]) == "bad-txns-inputvalues-outofrange"
    assert inputs_code(pay(1), [coin(-1)]) == "bad-txns-inputvalues-outofrange"
    spent: list[SpentCoin | None] = [coin(MAX_MONEY), coin(1)]
    assert inputs_code(pay(1, n_inputs=2), spent) == "bad-txns-inputvalues-outofrange"


def test_in_below_out() -> None:
    assert inputs_code(pay(101), [coin(100)]) == "bad-txns-in-belowout"
    assert inputs_code(pay(60, 41, n_inputs=2), [coin(50), coin(50)]) == "bad-txns-in-belowout"


def test_fee_out_of_range() -> None:
    # Only reachable with outputs check_transaction would refuse (a negative amount).
    assert inputs_code(pay(-1), [coin(MAX_MONEY)]) == "bad-txns-fee-outofrange"


def test_inputs_order() -> None:
    # Per input: maturity, then range; so the first bad input decides.
    young = coin(5, height=999, coinbase=True)
    huge = coin(MAX_MONEY + 1)
    assert inputs_code(pay(1, n_inputs=2), [young, huge]) == "bad-txns-premature-spend-of-coinbase"
    assert inputs_code(pay(1, n_inputs=2), [huge, young]) == "bad-txns-inputvalues-outofrange"
    # Range before in-below-out.
    assert inputs_code(pay(MAX_MONEY + 5), [huge]) == "bad-txns-inputvalues-outofrange"


def test_check_tx_inputs_arguments() -> None:
    with pytest.raises(ValueError):
        check_tx_inputs(pay(1, n_inputs=2), [coin(5)], 1000, 100)
    with pytest.raises(ValueError):
        check_tx_inputs(coinbase(5), [coin(5)], 1000, 100)


def test_coinbase_amount() -> None:
    cb = coinbase(5, (TxOut(30, b""), TxOut(20, b"")))
    check_coinbase_amount(cb, fees=10, subsidy=40)
    check_coinbase_amount(cb, fees=11, subsidy=40)
    err = rule(check_coinbase_amount, cb, 9, 40)
    assert (err.code, err.ban_score) == ("bad-cb-amount", 100)


def test_money_range() -> None:
    assert money_range(0) and money_range(MAX_MONEY)
    assert not money_range(-1) and not money_range(MAX_MONEY + 1)


# -- BIP30 -------------------------------------------------------------------------------------

MAIN_BIP34_HEIGHT = 227_931
MAIN_BIP34_HASH = wire("000000000000024b89b42a942fe0d9fea3bb44ab7bd1b19115dd6a759c0808b8")
REPEAT_91842 = wire("00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec")
REPEAT_91880 = wire("00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721")


def main_bip30(
    height: int, block_hash: bytes = b"\x01" * 32, ancestor: bytes | None = None
) -> bool:
    return bip30_enforced(
        height,
        block_hash,
        bip34_height=MAIN_BIP34_HEIGHT,
        bip34_hash=MAIN_BIP34_HASH,
        bip34_ancestor_hash=ancestor,
    )


def test_bip30_exceptions() -> None:
    assert is_bip30_repeat(91842, REPEAT_91842)
    assert is_bip30_repeat(91880, REPEAT_91880)
    assert not is_bip30_repeat(91880, REPEAT_91842)
    assert not is_bip30_repeat(91842, REPEAT_91842[::-1])  # display order is not wire order
    assert is_bip30_unspendable(
        91722, wire("00000000000271a2dc26e7667f8419f2e15416dc6955e5a6c6cdf3f2574dd08e")
    )
    assert is_bip30_unspendable(
        91812, wire("00000000000af0aed4792b1acee3d966af36cf5def14935db8de83d6f9306f2f")
    )
    assert not is_bip30_unspendable(91842, REPEAT_91842)
    assert not main_bip30(91842, REPEAT_91842)
    assert not main_bip30(91880, REPEAT_91880)
    assert main_bip30(91842)


def test_bip30_and_bip34() -> None:
    # Below BIP34 it always applies.
    assert main_bip30(100_000)
    assert main_bip30(
        MAIN_BIP34_HEIGHT, ancestor=MAIN_BIP34_HASH
    )  # no ancestor *at* that height yet
    # Above it, skipped only on the chain through BIP34's block.
    assert not main_bip30(MAIN_BIP34_HEIGHT + 1, ancestor=MAIN_BIP34_HASH)
    assert not main_bip30(800_000, ancestor=MAIN_BIP34_HASH)
    assert main_bip30(800_000, ancestor=b"\x02" * 32)
    assert main_bip30(800_000, ancestor=None)
    # A network without a BIP34 hash (regtest) always checks.
    assert bip30_enforced(
        800_000, b"\x01" * 32, bip34_height=1, bip34_hash=None, bip34_ancestor_hash=b"\x02" * 32
    )
    # From 1,983,702 on, pre-BIP34 coinbases could repeat: checked again.
    assert main_bip30(BIP34_IMPLIES_BIP30_LIMIT - 1, ancestor=MAIN_BIP34_HASH) is False
    assert main_bip30(BIP34_IMPLIES_BIP30_LIMIT, ancestor=MAIN_BIP34_HASH)


@pytest.mark.parametrize("existing", [None, (0, 0), (1, 0), (1, 1), (1, 2), (2, 0)])
def test_check_bip30(existing: tuple[int, int] | None) -> None:
    """Fails exactly when some output of the block's transactions is already unspent, and asks
    once per transaction for all of its outputs."""
    block = make_block([coinbase(5), pay(1, 2)])
    unspent = set()
    if existing is not None:
        tx_index, vout = existing  # (2, 0): another transaction's coin, not in this block
        unspent.add(OutPoint(block.txs[tx_index % 2].txid, vout + 7 * (tx_index // 2)))
    clashes = [
        tx for tx in block.txs for i in range(len(tx.outputs)) if OutPoint(tx.txid, i) in unspent
    ]
    asked: list[tuple[bytes, int]] = []

    def any_unspent(txid: bytes, n: int) -> bool:
        asked.append((txid, n))
        return any(OutPoint(txid, i) in unspent for i in range(n))

    if not clashes:
        check_bip30(block, any_unspent)
        assert asked == [(tx.txid, len(tx.outputs)) for tx in block.txs]
        return
    err = rule(check_bip30, block, any_unspent)
    assert (err.code, err.ban_score) == ("bad-txns-BIP30", 100)
    assert clashes[0].txid_hex in err.reason


# -- real blocks -------------------------------------------------------------------------------

BIP34_HEIGHT = {"main": 227_931, "testnet3": 21_111}
SEGWIT_HEIGHT = {"main": 481_824, "testnet3": 834_624}
BTCD_BLOCKS = {  # tests/data/SOURCES.md: mainnet, heights from their BIP34 coinbases
    "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk": 574_200,
    "block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk": 540_107,
}
INDEX = json.loads((BLOCKS / "index.json").read_text())


def _real_cases() -> list[tuple[Path, str, int]]:
    cases = [(BLOCKS / row["file"], row["network"], row["height"]) for row in INDEX]
    cases += [(DATA / "btcd" / "blocks" / name, "main", h) for name, h in BTCD_BLOCKS.items()]
    return cases


@pytest.mark.parametrize(("path", "network", "height"), _real_cases(), ids=lambda v: str(v)[-24:])
def test_real_blocks_pass_contextual_checks(path: Path, network: str, height: int) -> None:
    block = Block.parse(path.read_bytes())
    kwargs: dict[str, Any] = {
        "height": height,
        # The parent's median time past is not shipped; the block's own time bounds it from above.
        "lock_time_cutoff": block.header.time,
        "bip34_active": height >= BIP34_HEIGHT[network],
        "segwit_active": height >= SEGWIT_HEIGHT[network],
    }
    contextual_check_block(block, **kwargs)
    if kwargs["bip34_active"]:
        with pytest.raises(RuleError, match="bad-cb-height"):
            contextual_check_block(block, **{**kwargs, "height": height + 1})
    if any(tx.has_witness() for tx in block.txs):
        assert kwargs["segwit_active"]
        with pytest.raises(RuleError, match="unexpected-witness"):
            contextual_check_block(block, **{**kwargs, "segwit_active": False})


WITH_PREVOUTS = [row for row in INDEX if "prevouts_file" in row]


def test_fixture_list() -> None:
    assert len(WITH_PREVOUTS) == 8


@pytest.mark.parametrize("row", WITH_PREVOUTS, ids=lambda r: r["file"])
def test_real_block_fees(row: dict[str, Any]) -> None:
    block = Block.parse((BLOCKS / row["file"]).read_bytes())
    prevouts = json.loads((BLOCKS / row["prevouts_file"]).read_text())
    height = row["height"]
    pos = 0
    fees = 0
    for tx in block.txs[1:]:
        spent: list[SpentCoin | None] = []
        for txin in tx.inputs:
            p = prevouts[pos]
            pos += 1
            assert (wire(p["txid"]), p["vout"]) == (txin.prevout.txid, txin.prevout.index)
            out = TxOut(int(p["value"]), bytes.fromhex(p["script_pubkey"]))
            spent.append(SpentCoin(out, p["height"] or 0, bool(p["coinbase"])))
        fees += check_tx_inputs(tx, spent, height, 100)
    assert pos == len(prevouts)
    assert fees == row["fees"]

    subsidy = (50 * 100_000_000) >> (height // 210_000)
    assert subsidy == row["subsidy"]
    coinbase_tx = block.txs[0]
    check_coinbase_amount(coinbase_tx, fees, subsidy)
    # The block pays exactly its reward: one satoshi more is too much.
    first = coinbase_tx.outputs[0]
    greedy = Tx(
        coinbase_tx.version,
        coinbase_tx.inputs,
        (TxOut(first.value + 1, first.script_pubkey), *coinbase_tx.outputs[1:]),
        coinbase_tx.locktime,
    )
    with pytest.raises(RuleError, match="bad-cb-amount"):
        check_coinbase_amount(greedy, fees, subsidy)
