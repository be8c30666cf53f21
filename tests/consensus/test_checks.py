"""Core's CheckTransaction: each reject code, and Core's tx_valid / tx_invalid vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.checks import check_transaction
from peercash.consensus.errors import RuleError
from peercash.consensus.primitives import MAX_MONEY, NULL_HASH, OutPoint, Tx, TxIn, TxOut

CORE = Path(__file__).resolve().parents[1] / "data" / "core"

NULL = OutPoint(NULL_HASH, 0xFFFFFFFF)


def op(i: int, index: int = 0) -> OutPoint:
    return OutPoint(bytes([i]) * 32, index)


def spend(*prevouts: OutPoint, outputs: tuple[TxOut, ...] = (TxOut(1, b"\x51"),)) -> Tx:
    return Tx(2, [TxIn(p, b"") for p in prevouts], outputs)


def coinbase(script_sig: bytes) -> Tx:
    return Tx(1, [TxIn(NULL, script_sig)], [TxOut(50, b"\x51")])


def reject_code(tx: Tx) -> str:
    with pytest.raises(RuleError) as info:
        check_transaction(tx)
    assert info.value.ban_score == 100
    return info.value.code


def test_valid_shapes_pass() -> None:
    check_transaction(spend(op(1)))
    check_transaction(spend(op(1), op(1, 1), op(2)))
    check_transaction(spend(op(1), outputs=(TxOut(MAX_MONEY, b""),)))
    check_transaction(spend(op(1), outputs=(TxOut(0, b""), TxOut(0, b""))))
    check_transaction(coinbase(b"\x01\x01"))
    check_transaction(coinbase(b"\x51" * 100))
    # A null txid with a non-null index is not a null prevout.
    check_transaction(spend(OutPoint(NULL_HASH, 0)))
    check_transaction(spend(OutPoint(NULL_HASH, 0), op(1)))


def test_vin_vout_empty() -> None:
    assert reject_code(Tx(1, [], [TxOut(1, b"")])) == "bad-txns-vin-empty"
    assert reject_code(Tx(1, [TxIn(op(1))], [])) == "bad-txns-vout-empty"
    assert reject_code(Tx(1, [], [])) == "bad-txns-vin-empty"


def test_oversize_counts_legacy_bytes_only() -> None:
    # 1,000,000 legacy bytes is the most allowed (times 4 = MAX_BLOCK_WEIGHT).
    base = spend(op(1), outputs=(TxOut(0, b""),)).base_size()
    fill = 1_000_000 - base - 4  # the script length grows from 1 to 5 bytes
    at_limit = spend(op(1), outputs=(TxOut(0, b"\x6a" * fill),))
    assert at_limit.base_size() == 1_000_000
    check_transaction(at_limit)
    over = spend(op(1), outputs=(TxOut(0, b"\x6a" * (fill + 1)),))
    assert reject_code(over) == "bad-txns-oversize"
    # A big witness does not count: it has not been checked for malleability yet.
    heavy = Tx(2, [TxIn(op(1), b"", 0, [b"\x00" * 2_000_000])], [TxOut(0, b"")])
    check_transaction(heavy)


def test_output_amounts() -> None:
    assert reject_code(spend(op(1), outputs=(TxOut(-1, b""),))) == "bad-txns-vout-negative"
    assert reject_code(spend(op(1), outputs=(TxOut(MAX_MONEY + 1, b""),))) == (
        "bad-txns-vout-toolarge"
    )
    two = (TxOut(MAX_MONEY, b""), TxOut(1, b""))
    assert reject_code(spend(op(1), outputs=two)) == "bad-txns-txouttotal-toolarge"
    # Checked output by output, in order: the negative one after an overflow is not reached.
    order = (TxOut(MAX_MONEY, b""), TxOut(MAX_MONEY, b""), TxOut(-1, b""))
    assert reject_code(spend(op(1), outputs=order)) == "bad-txns-txouttotal-toolarge"
    # The full int64 range parses; the check still catches it.
    assert reject_code(spend(op(1), outputs=(TxOut(-(2**63), b""),))) == "bad-txns-vout-negative"


def test_duplicate_inputs() -> None:
    assert reject_code(spend(op(1), op(1))) == "bad-txns-inputs-duplicate"
    assert reject_code(spend(op(1), op(2), op(3), op(2))) == "bad-txns-inputs-duplicate"
    # Duplicates are found before null prevouts, and two nulls are duplicates.
    assert reject_code(spend(NULL, NULL)) == "bad-txns-inputs-duplicate"
    assert reject_code(spend(NULL, op(1), op(1))) == "bad-txns-inputs-duplicate"
    # Amounts are checked before inputs.
    bad_both = spend(op(1), op(1), outputs=(TxOut(-1, b""),))
    assert reject_code(bad_both) == "bad-txns-vout-negative"


def test_coinbase_length() -> None:
    assert reject_code(coinbase(b"")) == "bad-cb-length"
    assert reject_code(coinbase(b"\x51")) == "bad-cb-length"
    assert reject_code(coinbase(b"\x51" * 101)) == "bad-cb-length"


def test_prevout_null() -> None:
    assert reject_code(spend(NULL, op(1))) == "bad-txns-prevout-null"
    assert reject_code(spend(op(1), NULL)) == "bad-txns-prevout-null"
    assert reject_code(spend(op(1), op(2), NULL)) == "bad-txns-prevout-null"


def load_vectors(name: str) -> list[list[Any]]:
    entries = json.loads((CORE / name).read_text())
    return [e for e in entries if isinstance(e[0], list)]


TX_VALID = load_vectors("tx_valid.json")
TX_INVALID = load_vectors("tx_invalid.json")
BADTX = [e for e in TX_INVALID if e[2] == "BADTX"]

# Core's tx_invalid BADTX cases, in file order, and the reason each must be rejected with.
BADTX_CODES = [
    "bad-txns-vout-empty",
    "bad-txns-vout-negative",
    "bad-txns-vout-toolarge",
    "bad-txns-txouttotal-toolarge",
    "bad-txns-inputs-duplicate",
    "bad-cb-length",
    "bad-cb-length",
    "bad-txns-prevout-null",
    "bad-txns-prevout-null",
]


def test_vector_counts() -> None:
    assert len(TX_VALID) == 121
    assert len(TX_INVALID) == 93
    assert len(BADTX) == 9


@pytest.mark.parametrize(("entry", "code"), list(zip(BADTX, BADTX_CODES, strict=True)))
def test_tx_invalid_badtx(entry: list[Any], code: str) -> None:
    tx = Tx.from_hex(entry[1])
    assert tx.serialize().hex() == entry[1]
    assert reject_code(tx) == code


def test_tx_invalid_others_pass_check_transaction() -> None:
    # Core's harness requires that only BADTX cases fail CheckTransaction; the others fail later
    # (scripts, locktimes), so they must pass here.
    for entry in TX_INVALID:
        if entry[2] != "BADTX":
            check_transaction(Tx.from_hex(entry[1]))


@pytest.mark.parametrize("index", range(len(TX_VALID)))
def test_tx_valid(index: int) -> None:
    entry = TX_VALID[index]
    tx = Tx.from_hex(entry[1])
    assert tx.serialize().hex() == entry[1]
    check_transaction(tx)


# -- the quick paths against Core's loop ---------------------------------------------------------


def _plain_reject(tx: Tx) -> str | None:
    """CheckTransaction's rules, in Core's order and words, without any shortcut."""
    if not tx.inputs:
        return "bad-txns-vin-empty"
    if not tx.outputs:
        return "bad-txns-vout-empty"
    if len(tx.serialize_legacy()) * 4 > 4_000_000:
        return "bad-txns-oversize"
    total = 0
    for out in tx.outputs:
        if out.value < 0:
            return "bad-txns-vout-negative"
        if out.value > MAX_MONEY:
            return "bad-txns-vout-toolarge"
        total += out.value
        if total > MAX_MONEY:
            return "bad-txns-txouttotal-toolarge"
    prevouts = [txin.prevout for txin in tx.inputs]
    if len(set(prevouts)) != len(prevouts):
        return "bad-txns-inputs-duplicate"
    if len(prevouts) == 1 and prevouts[0].is_null():
        size = len(tx.inputs[0].script_sig)
        return None if 2 <= size <= 100 else "bad-cb-length"
    if any(p.is_null() for p in prevouts):
        return "bad-txns-prevout-null"
    return None


_values = st.one_of(
    st.integers(-2, 2),
    st.integers(0, MAX_MONEY),
    st.sampled_from([MAX_MONEY, MAX_MONEY + 1, MAX_MONEY // 2, MAX_MONEY // 2 + 1, -(2**63)]),
    st.integers(-(2**63), 2**63 - 1),
)
_prevouts = st.one_of(
    st.just(NULL),
    st.builds(op, st.integers(0, 2), st.sampled_from([0, 1, 0xFFFFFFFF])),
    st.builds(OutPoint, st.just(NULL_HASH), st.integers(0, 2)),
)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(_prevouts, max_size=4),
    st.lists(_values, max_size=4),
    st.binary(max_size=3).map(lambda b: b * 40),
)
def test_check_transaction_equals_plain_rules(
    prevouts: list[OutPoint], values: list[int], script_sig: bytes
) -> None:
    tx = Tx(2, [TxIn(p, script_sig) for p in prevouts], [TxOut(v, b"") for v in values])
    expected = _plain_reject(tx)
    if expected is None:
        check_transaction(tx)
    else:
        assert reject_code(tx) == expected
