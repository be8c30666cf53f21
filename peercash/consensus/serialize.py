"""Bitcoin's wire encoding: little-endian integers, compact sizes, length-prefixed bytes.

Every read is bounded by what is left of the input, so a bogus length or count fails with a
``DecodeError`` before anything large is allocated.
"""

from __future__ import annotations

import struct

from .errors import NonCanonicalError, OversizeError, TrailingBytesError, TruncatedError

MAX_SIZE = 0x02000000
"""Core's cap on any compact size read from the wire (32 MiB)."""

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")

pack_u16 = _U16.pack
pack_u32 = _U32.pack
pack_i32 = _I32.pack
pack_u64 = _U64.pack
pack_i64 = _I64.pack


def compact_size(n: int) -> bytes:
    """Encode ``n`` in its canonical (shortest) compact-size form."""
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    return b"\xff" + _U64.pack(n)


def var_bytes(data: bytes) -> bytes:
    """Length-prefixed bytes."""
    return compact_size(len(data)) + data


class Reader:
    """A cursor over immutable bytes. Raises only ``DecodeError`` subclasses."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = bytes(data)
        self.pos = pos
        self.end = len(self.data)

    def remaining(self) -> int:
        return self.end - self.pos

    def read(self, n: int) -> bytes:
        pos = self.pos
        new = pos + n
        if n < 0 or new > self.end:
            raise TruncatedError(f"need {n} bytes at offset {pos}, have {self.end - pos}")
        self.pos = new
        return self.data[pos:new]

    def u8(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise TruncatedError(f"need 1 byte at offset {pos}")
        self.pos = pos + 1
        return self.data[pos]

    def _unpack(self, st: struct.Struct) -> int:
        pos = self.pos
        new = pos + st.size
        if new > self.end:
            raise TruncatedError(f"need {st.size} bytes at offset {pos}, have {self.end - pos}")
        self.pos = new
        value: int = st.unpack_from(self.data, pos)[0]
        return value

    def u16(self) -> int:
        return self._unpack(_U16)

    def u32(self) -> int:
        return self._unpack(_U32)

    def i32(self) -> int:
        return self._unpack(_I32)

    def u64(self) -> int:
        return self._unpack(_U64)

    def i64(self) -> int:
        return self._unpack(_I64)

    def compact_size(self, limit: int = MAX_SIZE) -> int:
        """Read a canonical compact size no larger than ``limit``."""
        first = self.u8()
        if first < 0xFD:
            n = first
        elif first == 0xFD:
            n = self._unpack(_U16)
            if n < 0xFD:
                raise NonCanonicalError("non-canonical compact size")
        elif first == 0xFE:
            n = self._unpack(_U32)
            if n <= 0xFFFF:
                raise NonCanonicalError("non-canonical compact size")
        else:
            n = self._unpack(_U64)
            if n <= 0xFFFFFFFF:
                raise NonCanonicalError("non-canonical compact size")
        if n > limit:
            raise OversizeError(f"size {n} exceeds limit {limit}")
        return n

    def count(self, min_item_size: int, limit: int = MAX_SIZE) -> int:
        """Read an element count; reject it when the rest of the input cannot hold that many."""
        n = self.compact_size(limit)
        if n * min_item_size > self.end - self.pos:
            raise TruncatedError(
                f"count {n} needs at least {n * min_item_size} bytes, have {self.end - self.pos}"
            )
        return n

    def var_bytes(self, limit: int = MAX_SIZE) -> bytes:
        return self.read(self.compact_size(limit))

    def expect_end(self) -> None:
        if self.pos != self.end:
            raise TrailingBytesError(f"{self.end - self.pos} trailing bytes at offset {self.pos}")
