"""Transactions, headers and blocks: immutable, slotted, with cached hashes.

Each type has one decoder (``parse``/``from_reader``) and one encoder (``serialize``). Hashes are
``bytes`` in wire (internal) order; ``*_hex`` properties give the reversed display form that RPC and
explorers show.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import DecodeError, NonCanonicalError, OversizeError, TruncatedError
from .hashing import hash256
from .serialize import (
    MAX_SIZE,
    Reader,
    compact_size,
    pack_i32,
    pack_u32,
    pack_u64,
)

WITNESS_SCALE_FACTOR = 4
"""Consensus: a non-witness byte weighs four times a witness byte (BIP141)."""

MAX_BLOCK_WEIGHT = 4_000_000
"""Consensus: the weight limit of a block (BIP141)."""

MAX_MONEY = 21_000_000 * 100_000_000
"""Consensus: no amount may exceed the total supply, in satoshis."""

NULL_HASH = b"\x00" * 32

SEQUENCE_FINAL = 0xFFFFFFFF
"""Consensus: an input with this sequence neither enables nLockTime nor carries a BIP68 lock."""
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
"""Consensus (BIP68): when set, the input's sequence is not a relative lock time."""
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
"""Consensus (BIP68): when set, the relative lock is in units of 512 seconds, else in blocks."""
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF
"""Consensus (BIP68): the bits of the sequence that hold the relative lock value."""
SEQUENCE_LOCKTIME_GRANULARITY = 9
"""Consensus (BIP68): time-based relative locks count in units of ``1 << 9`` = 512 seconds."""

_MIN_TXIN_SIZE = 41  # 36 outpoint + 1 script length + 4 sequence
_MIN_TXOUT_SIZE = 9  # 8 value + 1 script length
_MIN_TX_SIZE = 10  # version + 2 empty counts + locktime
_SET = object.__setattr__


def hex_bytes(text: str) -> bytes:
    """Hex text to bytes, failing with ``DecodeError`` like every other decoder."""
    try:
        return bytes.fromhex(text.strip())
    except ValueError as e:
        raise DecodeError(f"not hex: {e}") from None


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable")


class OutPoint:
    """A reference to an output: the txid (wire order) and the output's index."""

    __slots__ = ("index", "txid")
    txid: bytes
    index: int

    def __init__(self, txid: bytes, index: int) -> None:
        _set_op_txid(self, txid)
        _set_op_index(self, index)

    __setattr__ = _frozen_setattr

    def serialize(self) -> bytes:
        return self.txid + pack_u32(self.index)

    def is_null(self) -> bool:
        return self.index == 0xFFFFFFFF and self.txid == NULL_HASH

    @property
    def txid_hex(self) -> str:
        return self.txid[::-1].hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutPoint) and self.txid == other.txid and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.txid, self.index))

    def __repr__(self) -> str:
        return f"OutPoint({self.txid_hex}:{self.index})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (OutPoint, (self.txid, self.index))


class TxIn:
    """A transaction input; its witness stack travels with it, as in Core."""

    __slots__ = ("prevout", "script_sig", "sequence", "witness")
    prevout: OutPoint
    script_sig: bytes
    sequence: int
    witness: tuple[bytes, ...]

    def __init__(
        self,
        prevout: OutPoint,
        script_sig: bytes = b"",
        sequence: int = 0xFFFFFFFF,
        witness: Sequence[bytes] = (),
    ) -> None:
        _set_in_prevout(self, prevout)
        _set_in_script_sig(self, script_sig)
        _set_in_sequence(self, sequence)
        _set_in_witness(self, tuple(witness))

    __setattr__ = _frozen_setattr

    def serialize(self) -> bytes:
        s = self.script_sig
        return self.prevout.serialize() + compact_size(len(s)) + s + pack_u32(self.sequence)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TxIn)
            and self.prevout == other.prevout
            and self.script_sig == other.script_sig
            and self.sequence == other.sequence
            and self.witness == other.witness
        )

    def __hash__(self) -> int:
        return hash((self.prevout, self.script_sig, self.sequence, self.witness))

    def __repr__(self) -> str:
        return f"TxIn({self.prevout!r}, {self.script_sig.hex()}, {self.sequence:#x})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (TxIn, (self.prevout, self.script_sig, self.sequence, self.witness))


class TxOut:
    """A transaction output: an amount in satoshis and the script that locks it."""

    __slots__ = ("script_pubkey", "value")
    value: int
    script_pubkey: bytes

    def __init__(self, value: int, script_pubkey: bytes) -> None:
        _set_out_value(self, value)
        _set_out_script_pubkey(self, script_pubkey)

    __setattr__ = _frozen_setattr

    def serialize(self) -> bytes:
        s = self.script_pubkey
        return pack_u64(self.value & 0xFFFFFFFFFFFFFFFF) + compact_size(len(s)) + s

    @classmethod
    def from_reader(cls, r: Reader) -> TxOut:
        value = r.i64()
        return cls(value, r.var_bytes())

    @classmethod
    def parse(cls, data: bytes) -> TxOut:
        r = Reader(data)
        out = cls.from_reader(r)
        r.expect_end()
        return out

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TxOut)
            and self.value == other.value
            and self.script_pubkey == other.script_pubkey
        )

    def __hash__(self) -> int:
        return hash((self.value, self.script_pubkey))

    def __repr__(self) -> str:
        return f"TxOut({self.value}, {self.script_pubkey.hex()})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (TxOut, (self.value, self.script_pubkey))


# The slots' own setters: they store a field without going through the refusing __setattr__,
# and cost a third of ``object.__setattr__`` with a name (object construction is most of decoding).
_new = object.__new__


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


_set_op_txid = _slot_setter(OutPoint, "txid")
_set_op_index = _slot_setter(OutPoint, "index")
_set_in_prevout = _slot_setter(TxIn, "prevout")
_set_in_script_sig = _slot_setter(TxIn, "script_sig")
_set_in_sequence = _slot_setter(TxIn, "sequence")
_set_in_witness = _slot_setter(TxIn, "witness")
_set_out_value = _slot_setter(TxOut, "value")
_set_out_script_pubkey = _slot_setter(TxOut, "script_pubkey")


class Tx:
    """A transaction. ``version`` is unsigned 32-bit (as Core now stores it), ``locktime`` too.

    Serialization and hashes are computed once and cached; when parsed, the exact input bytes are
    kept so that hashing never re-serializes.
    """

    __slots__ = (
        "_coinbase",
        "_raw",
        "_raw_nowit",
        "_sigops",
        "_txid",
        "_wtxid",
        "inputs",
        "locktime",
        "outputs",
        "version",
    )
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int
    _raw: bytes | None
    _raw_nowit: bytes | None
    _txid: bytes | None
    _wtxid: bytes | None
    _coinbase: bool
    _sigops: int
    """Core's legacy sigop count, -1 until ``script.sigops.legacy_sigop_count`` caches it here
    (block checks and the connect-time sigop cost both need it)."""

    def __init__(
        self,
        version: int,
        inputs: Iterable[TxIn],
        outputs: Iterable[TxOut],
        locktime: int = 0,
    ) -> None:
        ins = tuple(inputs)
        _SET(self, "version", version)
        _SET(self, "inputs", ins)
        _SET(self, "outputs", tuple(outputs))
        _SET(self, "locktime", locktime)
        _SET(self, "_raw", None)
        _SET(self, "_raw_nowit", None)
        _SET(self, "_txid", None)
        _SET(self, "_wtxid", None)
        _SET(self, "_coinbase", len(ins) == 1 and ins[0].prevout.is_null())
        _SET(self, "_sigops", -1)

    __setattr__ = _frozen_setattr

    # -- decoding -----------------------------------------------------------------------------

    @classmethod
    def from_reader(cls, r: Reader, allow_witness: bool = True) -> Tx:
        """Decode one transaction at the reader's position (BIP144 witness form accepted)."""
        tx, r.pos = _parse_tx(r.data, r.pos, r.end, allow_witness)
        return tx

    @classmethod
    def parse(cls, data: bytes) -> Tx:
        """Decode exactly one transaction; trailing bytes are an error."""
        r = Reader(data)
        tx = cls.from_reader(r)
        r.expect_end()
        return tx

    @classmethod
    def from_hex(cls, text: str) -> Tx:
        return cls.parse(hex_bytes(text))

    # -- encoding -----------------------------------------------------------------------------

    def has_witness(self) -> bool:
        raw = self._raw
        if raw is not None and raw is self._raw_nowit:
            return False  # decoded (or encoded) without the BIP144 form: no witness anywhere
        return any(txin.witness for txin in self.inputs)

    def serialize_legacy(self) -> bytes:
        """The serialization without witness data, which the txid commits to."""
        raw = self._raw_nowit
        if raw is None:
            parts = [pack_u32(self.version), compact_size(len(self.inputs))]
            parts.extend(txin.serialize() for txin in self.inputs)
            parts.append(compact_size(len(self.outputs)))
            parts.extend(txout.serialize() for txout in self.outputs)
            parts.append(pack_u32(self.locktime))
            raw = b"".join(parts)
            _SET(self, "_raw_nowit", raw)
        return raw

    def serialize(self) -> bytes:
        """The full serialization: BIP144 form when any input has a witness."""
        raw = self._raw
        if raw is None:
            if not self.has_witness():
                raw = self.serialize_legacy()
            else:
                parts = [pack_u32(self.version), b"\x00\x01", compact_size(len(self.inputs))]
                parts.extend(txin.serialize() for txin in self.inputs)
                parts.append(compact_size(len(self.outputs)))
                parts.extend(txout.serialize() for txout in self.outputs)
                for txin in self.inputs:
                    parts.append(compact_size(len(txin.witness)))
                    for item in txin.witness:
                        parts.append(compact_size(len(item)))
                        parts.append(item)
                parts.append(pack_u32(self.locktime))
                raw = b"".join(parts)
            _SET(self, "_raw", raw)
        return raw

    # -- hashes and sizes -----------------------------------------------------------------------

    @property
    def txid(self) -> bytes:
        h = self._txid
        if h is None:
            h = hash256(self.serialize_legacy())
            _SET(self, "_txid", h)
        return h

    @property
    def wtxid(self) -> bytes:
        h = self._wtxid
        if h is None:
            h = hash256(self.serialize()) if self.has_witness() else self.txid
            _SET(self, "_wtxid", h)
        return h

    @property
    def txid_hex(self) -> str:
        return self.txid[::-1].hex()

    @property
    def wtxid_hex(self) -> str:
        return self.wtxid[::-1].hex()

    def base_size(self) -> int:
        return len(self.serialize_legacy())

    def total_size(self) -> int:
        return len(self.serialize())

    def weight(self) -> int:
        return self.base_size() * (WITNESS_SCALE_FACTOR - 1) + self.total_size()

    def vsize(self) -> int:
        return (self.weight() + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR

    def is_coinbase(self) -> bool:
        """One input spending the null outpoint; decided once, when the transaction is built."""
        return self._coinbase

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tx) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(self.wtxid)

    def __repr__(self) -> str:
        return f"Tx({self.txid_hex}, {len(self.inputs)} in, {len(self.outputs)} out)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Tx.parse, (self.serialize(),))


_set_tx_version = _slot_setter(Tx, "version")
_set_tx_inputs = _slot_setter(Tx, "inputs")
_set_tx_outputs = _slot_setter(Tx, "outputs")
_set_tx_locktime = _slot_setter(Tx, "locktime")
_set_tx_raw = _slot_setter(Tx, "_raw")
_set_tx_raw_nowit = _slot_setter(Tx, "_raw_nowit")
_set_tx_txid = _slot_setter(Tx, "_txid")
_set_tx_wtxid = _slot_setter(Tx, "_wtxid")
_set_tx_coinbase = _slot_setter(Tx, "_coinbase")
_set_tx_sigops = _slot_setter(Tx, "_sigops")

_OUTPOINT_ST = struct.Struct("<32sI")
_unpack_outpoint = _OUTPOINT_ST.unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from
_unpack_i64 = struct.Struct("<q").unpack_from
_unpack_u16 = struct.Struct("<H").unpack_from
_unpack_u64 = struct.Struct("<Q").unpack_from


def _size_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A canonical compact size at ``pos`` (at most MAX_SIZE): (value, position after it)."""
    if pos >= end:
        raise TruncatedError(f"need 1 byte at offset {pos}")
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        if pos + 3 > end:
            raise TruncatedError(f"truncated compact size at offset {pos}")
        n = _unpack_u16(data, pos + 1)[0]
        if n < 0xFD:
            raise NonCanonicalError("non-canonical compact size")
        return n, pos + 3
    if first == 0xFE:
        if pos + 5 > end:
            raise TruncatedError(f"truncated compact size at offset {pos}")
        n = _unpack_u32(data, pos + 1)[0]
        if n <= 0xFFFF:
            raise NonCanonicalError("non-canonical compact size")
    else:
        if pos + 9 > end:
            raise TruncatedError(f"truncated compact size at offset {pos}")
        n = _unpack_u64(data, pos + 1)[0]
        if n <= 0xFFFFFFFF:
            raise NonCanonicalError("non-canonical compact size")
    if n > MAX_SIZE:
        raise OversizeError(f"size {n} exceeds limit {MAX_SIZE}")
    return n, pos + (5 if first == 0xFE else 9)


def _count_at(data: bytes, pos: int, end: int, min_item: int) -> tuple[int, int]:
    n, pos = _size_at(data, pos, end)
    if n * min_item > end - pos:
        raise TruncatedError(f"count {n} needs at least {n * min_item} bytes, have {end - pos}")
    return n, pos


def _too_few(n: int, pos: int, end: int) -> TruncatedError:
    return TruncatedError(f"count {n} needs at least {n} bytes, have {end - pos}")


def _parse_tx(data: bytes, pos: int, end: int, allow_witness: bool) -> tuple[Tx, int]:
    """The transaction decoder, written over (bytes, offset) for speed: it runs per input.

    Objects are built with the slots' setters rather than ``__init__``, and one-byte script and
    witness sizes (nearly all of them) are read inline; the bounds checks and errors are those
    of :func:`_size_at` and :func:`_count_at`.
    """
    start = pos
    if pos + 4 > end:
        raise TruncatedError("truncated transaction version")
    version = _unpack_u32(data, pos)[0]
    pos += 4
    counts_start = pos
    n_in, pos = _count_at(data, pos, end, _MIN_TXIN_SIZE)
    has_witness = False
    if n_in == 0 and allow_witness:
        # Either an empty input list or the BIP144 marker (0x00) followed by the flag.
        if pos >= end:
            raise TruncatedError("truncated transaction")
        flag = data[pos]
        if flag:
            if flag != 1:
                raise DecodeError(f"unknown transaction serialization flag {flag}")
            has_witness = True
            pos += 1
            counts_start = pos
            n_in, pos = _count_at(data, pos, end, _MIN_TXIN_SIZE)
    new = _new
    inputs: list[TxIn] = []
    append = inputs.append
    for _ in range(n_in):
        if pos + 37 > end:
            raise TruncatedError("truncated transaction input")
        txid, index = _unpack_outpoint(data, pos)
        pos += 36
        n = data[pos]
        if n < 0xFD:
            pos += 1
        else:
            n, pos = _size_at(data, pos, end)
        script_end = pos + n
        if script_end + 4 > end:
            raise TruncatedError("truncated transaction input")
        prevout = new(OutPoint)
        _set_op_txid(prevout, txid)
        _set_op_index(prevout, index)
        txin = new(TxIn)
        _set_in_prevout(txin, prevout)
        _set_in_script_sig(txin, data[pos:script_end])
        _set_in_sequence(txin, _unpack_u32(data, script_end)[0])
        _set_in_witness(txin, ())
        append(txin)
        pos = script_end + 4
    n_out, pos = _count_at(data, pos, end, _MIN_TXOUT_SIZE)
    outputs: list[TxOut] = []
    append_out = outputs.append
    for _ in range(n_out):
        if pos + 9 > end:
            raise TruncatedError("truncated transaction output")
        value = _unpack_i64(data, pos)[0]
        pos += 8
        n = data[pos]
        if n < 0xFD:
            pos += 1
        else:
            n, pos = _size_at(data, pos, end)
        script_end = pos + n
        if script_end > end:
            raise TruncatedError("truncated transaction output")
        txout = new(TxOut)
        _set_out_value(txout, value)
        _set_out_script_pubkey(txout, data[pos:script_end])
        append_out(txout)
        pos = script_end
    body_end = pos
    if has_witness:
        any_witness = False
        for txin in inputs:
            if pos >= end:
                raise TruncatedError(f"need 1 byte at offset {pos}")
            n_items = data[pos]
            if n_items < 0xFD:
                pos += 1
                if n_items > end - pos:
                    raise _too_few(n_items, pos, end)
            else:
                n_items, pos = _count_at(data, pos, end, 1)
            if n_items:
                any_witness = True
                items = []
                for _ in range(n_items):
                    if pos >= end:
                        raise TruncatedError(f"need 1 byte at offset {pos}")
                    n = data[pos]
                    if n < 0xFD:
                        pos += 1
                    else:
                        n, pos = _size_at(data, pos, end)
                    item_end = pos + n
                    if item_end > end:
                        raise TruncatedError("truncated witness item")
                    items.append(data[pos:item_end])
                    pos = item_end
                # Not yet shared with anyone: filling the slot in place is safe.
                _set_in_witness(txin, tuple(items))
        if not any_witness:
            # Core refuses the extended form when it carries no witness at all.
            raise DecodeError("superfluous witness record")
    if pos + 4 > end:
        raise TruncatedError("truncated transaction lock time")
    locktime = _unpack_u32(data, pos)[0]
    pos += 4
    raw = data[start:pos]
    if has_witness:
        legacy = data[start : start + 4] + data[counts_start:body_end] + data[pos - 4 : pos]
    else:
        legacy = raw
    coinbase = False
    if n_in == 1:
        first = inputs[0].prevout
        coinbase = first.index == 0xFFFFFFFF and first.txid == NULL_HASH
    tx = new(Tx)
    _set_tx_version(tx, version)
    _set_tx_inputs(tx, tuple(inputs))
    _set_tx_outputs(tx, tuple(outputs))
    _set_tx_locktime(tx, locktime)
    _set_tx_raw(tx, raw)
    _set_tx_raw_nowit(tx, legacy)
    _set_tx_txid(tx, None)
    _set_tx_wtxid(tx, None)
    _set_tx_coinbase(tx, coinbase)
    _set_tx_sigops(tx, -1)
    return tx, pos


class Header:
    """An 80-byte block header. ``version`` is signed 32-bit, as in Core."""

    __slots__ = ("_hash", "bits", "merkle_root", "nonce", "prev_hash", "time", "version")
    version: int
    prev_hash: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int
    _hash: bytes | None

    SIZE = 80

    def __init__(
        self, version: int, prev_hash: bytes, merkle_root: bytes, time: int, bits: int, nonce: int
    ) -> None:
        _SET(self, "version", version)
        _SET(self, "prev_hash", prev_hash)
        _SET(self, "merkle_root", merkle_root)
        _SET(self, "time", time)
        _SET(self, "bits", bits)
        _SET(self, "nonce", nonce)
        _SET(self, "_hash", None)

    __setattr__ = _frozen_setattr

    @classmethod
    def from_reader(cls, r: Reader) -> Header:
        raw = r.read(80)
        header = cls.parse(raw)
        return header

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        if len(raw) != 80:
            raise DecodeError(f"a header is 80 bytes, got {len(raw)}")
        r = Reader(raw)
        header = cls(r.i32(), r.read(32), r.read(32), r.u32(), r.u32(), r.u32())
        _SET(header, "_hash", hash256(raw))
        return header

    def serialize(self) -> bytes:
        return (
            pack_i32(self.version)
            + self.prev_hash
            + self.merkle_root
            + pack_u32(self.time)
            + pack_u32(self.bits)
            + pack_u32(self.nonce)
        )

    @property
    def hash(self) -> bytes:
        h = self._hash
        if h is None:
            h = hash256(self.serialize())
            _SET(self, "_hash", h)
        return h

    @property
    def hash_hex(self) -> str:
        return self.hash[::-1].hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Header) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"Header({self.hash_hex})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Header.parse, (self.serialize(),))


MAX_BLOCK_SERIALIZED_SIZE = 4_000_000
"""Consensus: no block serializes to more bytes than its weight limit allows."""


class Block:
    """A header and its transactions."""

    __slots__ = ("_raw", "header", "txs")
    header: Header
    txs: tuple[Tx, ...]
    _raw: bytes | None

    def __init__(self, header: Header, txs: Iterable[Tx]) -> None:
        _SET(self, "header", header)
        _SET(self, "txs", tuple(txs))
        _SET(self, "_raw", None)

    __setattr__ = _frozen_setattr

    @classmethod
    def from_reader(cls, r: Reader) -> Block:
        start = r.pos
        header = Header.from_reader(r)
        n = r.count(_MIN_TX_SIZE, MAX_BLOCK_SERIALIZED_SIZE)
        data = r.data
        pos = r.pos
        end = r.end
        txs = []
        for _ in range(n):
            tx, pos = _parse_tx(data, pos, end, True)
            txs.append(tx)
        r.pos = pos
        block = cls(header, txs)
        _SET(block, "_raw", data[start:pos])
        return block

    @classmethod
    def parse(cls, data: bytes) -> Block:
        if len(data) > MAX_SIZE:
            raise DecodeError(f"block of {len(data)} bytes exceeds the message size limit")
        r = Reader(data)
        block = cls.from_reader(r)
        r.expect_end()
        return block

    @classmethod
    def from_hex(cls, text: str) -> Block:
        return cls.parse(hex_bytes(text))

    def serialize(self) -> bytes:
        raw = self._raw
        if raw is None:
            parts = [self.header.serialize(), compact_size(len(self.txs))]
            parts.extend(tx.serialize() for tx in self.txs)
            raw = b"".join(parts)
            _SET(self, "_raw", raw)
        return raw

    def serialize_legacy(self) -> bytes:
        parts = [self.header.serialize(), compact_size(len(self.txs))]
        parts.extend(tx.serialize_legacy() for tx in self.txs)
        return b"".join(parts)

    def base_size(self) -> int:
        """``len(serialize_legacy())``, added up from the transactions' cached encodings."""
        txs = self.txs
        size = Header.SIZE + len(compact_size(len(txs)))
        for tx in txs:
            size += tx.base_size()
        return size

    def total_size(self) -> int:
        return len(self.serialize())

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def hash_hex(self) -> str:
        return self.header.hash_hex

    def weight(self) -> int:
        return self.base_size() * (WITNESS_SCALE_FACTOR - 1) + self.total_size()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Block) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"Block({self.hash_hex}, {len(self.txs)} txs)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Block.parse, (self.serialize(),))
