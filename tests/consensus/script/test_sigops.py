"""Sigop counting: the inline opcode walk, its template shortcuts, the one-pass transaction cost
and the cached legacy count equal plain GetOp-based definitions; published block figures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.flags import VerifyFlags
from peercash.consensus.script.script import BadScript, get_op, is_p2sh, witness_program
from peercash.consensus.script.sigops import (
    _last_push,
    legacy_sigop_count,
    script_sigops,
    transaction_sigop_cost,
)
from peercash.tools.vectors import load_block


def _reference(script: bytes, accurate: bool) -> int:
    n, last, pos = 0, 0xFF, 0
    while pos < len(script):
        try:
            op, _, pos = get_op(script, pos)
        except BadScript:
            break
        if op in (0xAC, 0xAD):
            n += 1
        elif op in (0xAE, 0xAF):
            n += (last - 0x50) if accurate and 0x51 <= last <= 0x60 else 20
        last = op
    return n


_bytes = st.lists(
    st.one_of(
        st.sampled_from([0xAC, 0xAD, 0xAE, 0xAF, 0x51, 0x53, 0x60, 0x4C, 0x4D, 0x4E, 0x02, 0x00]),
        st.integers(0, 255),
    ),
    max_size=40,
).map(bytes)


@settings(max_examples=2000, deadline=None)
@given(_bytes, st.booleans())
def test_inline_walk_equals_getop_walk(script: bytes, accurate: bool) -> None:
    assert script_sigops(script, accurate) == _reference(script, accurate)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("block928816", 9109), ("block928828", 23236), ("block928831", 10035),
     ("block928848", 11319), ("block928849", 9137), ("block928927", 10015),
     ("block1087400", 1298)],
)  # fmt: skip
def test_published_block_sigop_costs(name: str, expected: int) -> None:
    """bcoin's published figures (P2SH and WITNESS flags, all transactions)."""
    block, spends = load_block(name)
    flags = VerifyFlags.P2SH | VerifyFlags.WITNESS
    total = transaction_sigop_cost(block.txs[0], [], flags)
    total += sum(transaction_sigop_cost(s.tx, s.spent, flags) for s in spends)
    assert total == expected


def test_block300025_sigops() -> None:
    block, spends = load_block("block300025")
    flags = VerifyFlags.P2SH | VerifyFlags.DERSIG
    total = transaction_sigop_cost(block.txs[0], [], flags)
    total += sum(transaction_sigop_cost(s.tx, s.spent, flags) for s in spends)
    assert total == 5284  # sigop cost, as SOURCES.md publishes it


# -- fast paths against plain definitions -------------------------------------------------------


@st.composite
def _template_like(draw: st.DrawFn) -> bytes:
    """Scripts shaped like (or one byte off) the templates ``script_sigops`` answers early."""
    body = draw(st.binary(min_size=0, max_size=40))
    kind = draw(st.sampled_from(["p2pkh", "p2sh", "one-push", "wrapped"]))
    if kind == "p2pkh":
        script = b"\x76\xa9\x14" + draw(st.binary(min_size=20, max_size=20)) + b"\x88\xac"
    elif kind == "p2sh":
        script = b"\xa9\x14" + draw(st.binary(min_size=20, max_size=20)) + b"\x87"
    elif kind == "one-push":
        first = draw(st.integers(0, 255))
        script = bytes([first, len(body)]) + body
    else:
        script = bytes([draw(st.sampled_from([0x00, 0x51, 0x60, 0x6A]))]) + body
    if script and draw(st.booleans()):
        buf = bytearray(script)
        buf[draw(st.integers(0, len(buf) - 1))] = draw(
            st.sampled_from([0x00, 0x14, 0x4C, 0x4E, 0x87, 0x88, 0xAC, 0xAE, 0xFF])
        )
        script = bytes(buf)
    return script


@settings(max_examples=3000, deadline=None)
@given(_template_like(), st.booleans())
def test_template_fast_paths_equal_getop_walk(script: bytes, accurate: bool) -> None:
    assert script_sigops(script, accurate) == _reference(script, accurate)


def _reference_last_push(script_sig: bytes) -> bytes | None:
    data = b""
    pos = 0
    while pos < len(script_sig):
        try:
            op, pushed, pos = get_op(script_sig, pos)
        except BadScript:
            return None
        if op > 0x60:
            return None
        data = pushed if pushed is not None else b""
    return data


_push_heavy = st.lists(
    st.one_of(
        st.binary(max_size=30).map(lambda d: bytes([len(d)]) + d),
        st.binary(max_size=30).map(lambda d: b"\x4c" + bytes([len(d)]) + d),
        st.binary(max_size=30).map(lambda d: b"\x4d" + len(d).to_bytes(2, "little") + d),
        st.binary(max_size=30).map(lambda d: b"\x4e" + len(d).to_bytes(4, "little") + d),
        st.sampled_from([b"\x00", b"\x4f", b"\x50", b"\x51", b"\x60", b"\x61", b"\xac"]),
        st.binary(max_size=3),
    ),
    max_size=5,
).map(lambda parts: b"".join(parts))


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_push_heavy, _bytes))
def test_last_push_equals_getop_walk(script_sig: bytes) -> None:
    assert _last_push(script_sig) == _reference_last_push(script_sig)


def _reference_witness_sigops(script_sig: bytes, spk: bytes, witness: tuple[bytes, ...]) -> int:
    """Core's CountWitnessSigOps, from the script helpers alone."""
    wp = witness_program(spk)
    if wp is None and is_p2sh(spk):
        redeem = _reference_last_push(script_sig)
        wp = None if redeem is None else witness_program(redeem)
    if wp is None or wp[0] != 0:
        return 0
    if len(wp[1]) == 20:
        return 1
    if len(wp[1]) == 32 and witness:
        return _reference(witness[-1], True)
    return 0


def _reference_cost(tx: Tx, spent: list[TxOut], flags: int) -> int:
    """Core's GetTransactionSigOpCost, spelled out without the one-pass fusion or caches."""
    legacy = sum(_reference(i.script_sig, False) for i in tx.inputs)
    legacy += sum(_reference(o.script_pubkey, False) for o in tx.outputs)
    cost = legacy * 4
    if tx.is_coinbase():
        return cost
    for txin, out in zip(tx.inputs, spent, strict=True):
        if flags & VerifyFlags.P2SH and is_p2sh(out.script_pubkey):
            redeem = _reference_last_push(txin.script_sig)
            if redeem is not None:
                cost += _reference(redeem, True) * 4
        if flags & VerifyFlags.WITNESS:
            cost += _reference_witness_sigops(txin.script_sig, out.script_pubkey, txin.witness)
    return cost


_MULTISIG = b"\x52" + b"\x21" + b"\x02" * 33 + b"\x21" + b"\x03" * 33 + b"\x52\xae"
_spks = st.one_of(
    _template_like(),
    st.sampled_from(
        [
            b"\xa9\x14" + b"\x11" * 20 + b"\x87",
            b"\x00\x14" + b"\x22" * 20,
            b"\x00\x20" + b"\x33" * 32,
            b"\x51\x20" + b"\x44" * 32,
            _MULTISIG,
        ]
    ),
    _bytes,
)
_script_sigs = st.one_of(
    st.just(b""),
    _push_heavy,
    st.sampled_from([b"\x16\x00\x14" + b"\x55" * 20, b"\x22\x00\x20" + b"\x66" * 32]),
    st.sampled_from([_MULTISIG, b"\x00\x01\x01\x4c" + bytes([len(_MULTISIG)]) + _MULTISIG]),
    _bytes,
)
_witnesses = st.lists(st.one_of(_bytes, st.just(_MULTISIG)), max_size=3).map(tuple)


@st.composite
def _spends(draw: st.DrawFn) -> tuple[Tx, list[TxOut], int]:
    n = draw(st.integers(1, 4))
    ins = [
        TxIn(OutPoint(bytes([i + 1]) * 32, i), draw(_script_sigs), 0, draw(_witnesses))
        for i in range(n)
    ]
    outs = [TxOut(1, draw(_spks)) for _ in range(draw(st.integers(1, 3)))]
    spent = [TxOut(1, draw(_spks)) for _ in range(n)]
    flags = draw(st.sampled_from([0, VerifyFlags.P2SH, VerifyFlags.WITNESS]))
    if draw(st.booleans()):
        flags = VerifyFlags.P2SH | VerifyFlags.WITNESS
    return Tx(2, ins, outs), spent, int(flags)


@settings(max_examples=1500, deadline=None)
@given(_spends())
def test_transaction_sigop_cost_equals_plain_definition(case: tuple[Tx, list[TxOut], int]) -> None:
    tx, spent, flags = case
    expected = _reference_cost(tx, spent, flags)
    assert transaction_sigop_cost(tx, spent, flags) == expected
    # Again, now with the legacy count cached on the transaction, and with an IntFlag.
    assert transaction_sigop_cost(tx, spent, VerifyFlags(flags)) == expected


@settings(max_examples=500, deadline=None)
@given(_spends())
def test_legacy_count_is_cached_unchanged(case: tuple[Tx, list[TxOut], int]) -> None:
    tx = case[0]
    first = legacy_sigop_count(tx)
    assert first == sum(_reference(i.script_sig, False) for i in tx.inputs) + sum(
        _reference(o.script_pubkey, False) for o in tx.outputs
    )
    assert legacy_sigop_count(tx) == first
    assert legacy_sigop_count(Tx.parse(tx.serialize())) == first


def test_coinbase_costs_only_legacy() -> None:
    cb = Tx(1, [TxIn(OutPoint(b"\x00" * 32, 0xFFFFFFFF), b"\x01\xac")], [TxOut(1, b"\xac")])
    assert cb.is_coinbase()
    assert transaction_sigop_cost(cb, [], int(VerifyFlags.P2SH | VerifyFlags.WITNESS)) == 4


def test_spent_outputs_must_match_inputs() -> None:
    tx = Tx(2, [TxIn(OutPoint(b"\x01" * 32, 0))], [TxOut(1, b"\x51")])
    with pytest.raises(ValueError):
        transaction_sigop_cost(tx, [], int(VerifyFlags.WITNESS))
