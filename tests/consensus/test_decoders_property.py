"""Property tests of the wire decoders (DESIGN habit 2: strict, bounded parsing).

* Any bytes, and mutations of valid encodings, either decode or raise ``DecodeError``; nothing else.
* Whatever decodes is canonical: rebuilt from its fields, it encodes to exactly the input. Random
  bytes almost never decode as a transaction or a block, so this is checked on mutations of valid
  encodings (built by the strategies below), and each test counts the mutants that decoded and so
  reached the check, asserting a minimum.
* Valid objects round-trip exactly.
* A tiny message with a huge count or length fails at once, without allocating for it.
* Non-canonical compact sizes are rejected.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peercash.consensus.errors import (
    DecodeError,
    NonCanonicalError,
    OversizeError,
    TruncatedError,
)
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.serialize import MAX_SIZE, Reader, compact_size, pack_u32

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

u32 = st.integers(0, 2**32 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
hash32 = st.binary(min_size=32, max_size=32)
script = st.binary(max_size=40)

outpoints = st.builds(OutPoint, hash32, u32)
txouts = st.builds(TxOut, i64, script)


@st.composite
def txins(draw: st.DrawFn, witness: bool) -> TxIn:
    stack = draw(st.lists(st.binary(max_size=30), max_size=3)) if witness else []
    return TxIn(draw(outpoints), draw(script), draw(u32), stack)


@st.composite
def txs(draw: st.DrawFn) -> Tx:
    witness = draw(st.booleans())
    # At least one input: an empty input list with outputs reads as the BIP144 marker (as in Core).
    inputs = draw(st.lists(txins(witness), min_size=1, max_size=3))
    outputs = draw(st.lists(txouts, max_size=3))
    return Tx(draw(u32), inputs, outputs, draw(u32))


headers = st.builds(Header, i32, hash32, hash32, u32, u32, u32)
blocks = st.builds(Block, headers, st.lists(txs(), max_size=3))


def rebuild(obj: Any) -> Any:
    """The same object built from its fields alone, with no cached bytes."""
    if isinstance(obj, TxOut):
        return TxOut(obj.value, obj.script_pubkey)
    if isinstance(obj, Header):
        h = obj
        return Header(h.version, h.prev_hash, h.merkle_root, h.time, h.bits, h.nonce)
    if isinstance(obj, Tx):
        ins = [TxIn(OutPoint(i.prevout.txid, i.prevout.index), i.script_sig, i.sequence, i.witness)
               for i in obj.inputs]  # fmt: skip
        return Tx(obj.version, ins, [rebuild(o) for o in obj.outputs], obj.locktime)
    assert isinstance(obj, Block)
    return Block(rebuild(obj.header), [rebuild(tx) for tx in obj.txs])


def read_compact_size(data: bytes) -> int:
    r = Reader(data)
    n = r.compact_size()
    r.expect_end()
    return n


def compact_size_box(data: bytes) -> TxOut:
    # So that every decoder below has the same shape: anything with serialize().
    return TxOut(read_compact_size(data), b"")


DECODERS: dict[str, tuple[Callable[[bytes], Any], st.SearchStrategy[Any]]] = {
    "Tx": (Tx.parse, txs()),
    "Block": (Block.parse, blocks),
    "Header": (Header.parse, headers),
    "TxOut": (TxOut.parse, txouts),
}


def decode_or_none(parse: Callable[[bytes], Any], data: bytes) -> Any:
    """Decode ``data``; a ``DecodeError`` gives ``None``, any other exception fails the test."""
    try:
        return parse(data)
    except DecodeError:
        return None


def check_canonical(obj: Any, data: bytes) -> None:
    assert obj.serialize() == data
    again = rebuild(obj)
    assert again.serialize() == data
    if isinstance(obj, Tx):
        assert obj.serialize_legacy() == again.serialize_legacy()
        assert (obj.txid, obj.wtxid) == (again.txid, again.wtxid)
    if isinstance(obj, Block):
        assert [tx.txid for tx in obj.txs] == [tx.txid for tx in again.txs]


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "special"]))
        pos = draw(st.integers(0, len(buf)))
        if kind == "flip" and buf:
            pos = min(pos, len(buf) - 1)
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del buf[pos : pos + draw(st.integers(1, 8))]
        elif buf:
            # Bytes that steer decoders into their odd paths: marker, flag, wide compact sizes.
            pos = min(pos, len(buf) - 1)
            buf[pos] = draw(st.sampled_from([0x00, 0x01, 0x02, 0xFD, 0xFE, 0xFF]))
    return bytes(buf)


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_round_trip(name: str) -> None:
    parse, strategy = DECODERS[name]

    @SETTINGS
    @given(strategy)
    def run(obj: Any) -> None:
        data = obj.serialize()
        back = parse(data)
        assert back == obj
        assert back.serialize() == data
        check_canonical(back, data)

    run()


@SETTINGS
@given(txs())
def test_tx_round_trip_fields(tx: Tx) -> None:
    back = Tx.parse(tx.serialize())
    assert (back.version, back.inputs, back.outputs, back.locktime) == (
        tx.version,
        tx.inputs,
        tx.outputs,
        tx.locktime,
    )
    assert back.txid == tx.txid
    assert back.wtxid == tx.wtxid
    assert back.weight() == tx.weight()
    assert (back.txid == back.wtxid) is not tx.has_witness()


@SETTINGS
@given(st.integers(0, 2**64 - 1))
def test_compact_size_round_trip(n: int) -> None:
    data = compact_size(n)
    assert len(data) == 1 if n < 0xFD else 3 if n <= 0xFFFF else 5 if n <= 0xFFFFFFFF else 9
    r = Reader(data)
    assert r.compact_size(limit=2**64) == n
    r.expect_end()
    if n > MAX_SIZE:
        with pytest.raises(OversizeError):
            Reader(data).compact_size()


# -- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*sorted(DECODERS), "compact_size"])
def test_random_bytes(name: str) -> None:
    """Arbitrary bytes raise ``DecodeError`` or decode; nothing else. (They almost never decode,
    so the canonical check is ``test_mutated_encodings``'s job.)"""
    parse = DECODERS[name][0] if name != "compact_size" else compact_size_box

    @SETTINGS
    @given(st.binary(max_size=300))
    def run(data: bytes) -> None:
        obj = decode_or_none(parse, data)
        if obj is not None and name != "compact_size":
            check_canonical(obj, data)

    run()


MIN_MUTANTS = 15
"""Of ``SETTINGS.max_examples`` (150) mutated encodings, at least this many must differ from the
valid encoding, decode and so be checked as canonical, and at least this many must be rejected.
(Measured over runs: 26 to 68 decoded, 81 to 120 rejected, for each of the four decoders.)"""


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_mutated_encodings(name: str) -> None:
    parse, strategy = DECODERS[name]
    checked = rejected = 0

    @SETTINGS
    @given(strategy, st.data())
    def run(obj: Any, draw: st.DataObject) -> None:
        nonlocal checked, rejected
        original = obj.serialize()
        data = draw.draw(mutations(original))
        decoded = decode_or_none(parse, data)
        if decoded is None:
            rejected += 1
            return
        check_canonical(decoded, data)
        if data != original:  # a mutation that changed the bytes and still decodes
            checked += 1

    run()
    assert checked >= MIN_MUTANTS, (checked, rejected)
    assert rejected >= MIN_MUTANTS, (checked, rejected)


@SETTINGS
@given(st.integers(0, 2**64 - 1).map(compact_size).flatmap(mutations))
def test_mutated_compact_sizes(data: bytes) -> None:
    try:
        n = read_compact_size(data)
    except DecodeError:
        return
    assert compact_size(n) == data


def peak_allocation(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(DecodeError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


VERSION = pack_u32(2)
HEADER = bytes(80)
HUGE_COUNT_MESSAGES = {
    # 0xFFFFFFFF inputs in a 20-byte message: over the 32 MiB cap on any count.
    "tx inputs": (Tx.parse, VERSION + b"\xfe\xff\xff\xff\xff" + bytes(11)),
    # Just under the cap: allowed as a number, but the message cannot hold that many.
    "tx inputs under cap": (Tx.parse, VERSION + b"\xfe\xff\xff\xff\x01" + bytes(11)),
    "tx outputs": (
        Tx.parse,
        VERSION + b"\x01" + bytes(36) + b"\x00" + bytes(4) + b"\xfe\x00\x00\x00\x02" + bytes(4),
    ),
    "witness outputs": (Tx.parse, VERSION + b"\x00\x01\x00\xfe\x00\x00\x00\x02" + bytes(8)),
    "script length": (
        Tx.parse,
        VERSION + b"\x01" + bytes(36) + b"\xfe\x00\x00\x00\x02" + bytes(8),
    ),
    "witness items": (
        Tx.parse,
        VERSION + b"\x00\x01\x01" + bytes(36) + b"\x00" + bytes(4) + b"\x00" + b"\xfe\xff\xff\xff\x01",
    ),
    "witness item length": (
        Tx.parse,
        VERSION + b"\x00\x01\x01" + bytes(36) + b"\x00" + bytes(4) + b"\x00\x01\xfe\x00\x00\x00\x02",
    ),
    "txout script": (TxOut.parse, bytes(8) + b"\xff\x00\x00\x00\x00\x01\x00\x00\x00"),
    "block txs": (Block.parse, HEADER + b"\xfe\xff\xff\xff\xff" + bytes(11)),
    "block txs under cap": (Block.parse, HEADER + b"\xfe\x00\x09\x3d\x00" + bytes(11)),
    "compact size": (read_compact_size, b"\xff" + b"\xff" * 8),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HUGE_COUNT_MESSAGES))
def test_huge_count_costs_nothing(name: str) -> None:
    parse, data = HUGE_COUNT_MESSAGES[name]
    assert len(data) <= 100
    peak = peak_allocation(lambda: parse(data))
    assert peak < 64 * 1024, f"{name}: peak allocation {peak} bytes"


def test_huge_count_errors_are_specific() -> None:
    with pytest.raises(OversizeError):
        Tx.parse(HUGE_COUNT_MESSAGES["tx inputs"][1])
    with pytest.raises(TruncatedError):
        Tx.parse(HUGE_COUNT_MESSAGES["tx inputs under cap"][1])


NON_CANONICAL = [
    b"\xfd\x00\x00",
    b"\xfd\xfc\x00",
    b"\xfe\xff\xff\x00\x00",
    b"\xfe\x00\x00\x00\x00",
    b"\xff\xff\xff\xff\xff\x00\x00\x00\x00",
    b"\xff\x00\x00\x00\x00\x00\x00\x00\x00",
]


@pytest.mark.parametrize("data", NON_CANONICAL, ids=bytes.hex)
def test_non_canonical_compact_sizes(data: bytes) -> None:
    with pytest.raises(NonCanonicalError):
        Reader(data).compact_size(limit=2**64)


@SETTINGS
@given(st.integers(0, 0xFFFFFFFF), st.sampled_from([3, 5, 9]))
def test_wide_compact_size_forms(n: int, width: int) -> None:
    prefix = {3: b"\xfd", 5: b"\xfe", 9: b"\xff"}[width]
    if n >= 1 << (8 * (width - 1)):
        return
    data = prefix + n.to_bytes(width - 1, "little")
    if data == compact_size(n):
        assert Reader(data).compact_size(limit=2**64) == n
    else:
        with pytest.raises(NonCanonicalError):
            Reader(data).compact_size(limit=2**64)


def test_non_canonical_count_inside_a_tx() -> None:
    tx = Tx(1, [TxIn(OutPoint(bytes(32), 0))], [TxOut(0, b"")])
    raw = tx.serialize()
    assert raw[4] == 1
    with pytest.raises(NonCanonicalError):
        Tx.parse(raw[:4] + b"\xfd\x01\x00" + raw[5:])
