"""MuHash3072: the rolling, order-independent hash of a set that Bitcoin Core's
``gettxoutsetinfo muhash`` and coinstatsindex report for the UTXO set.

Layer 0 (consensus, pure): callable from anywhere; no I/O, clock or randomness. Errors: only
``deserialize`` raises (``DecodeError``). A ``MuHash3072`` is a small mutable accumulator, unlike
the frozen primitives: share one between threads only with your own lock.

How it works. Every element (any byte string) is mapped to a number modulo the prime
``P = 2**3072 - 1103717``: its SHA-256 keys ChaCha20 (96-bit nonce zero, block counter zero), and
the first 384 bytes of keystream, read little-endian, are the number. A set is the product of its
elements' numbers mod ``P``, so the order of insertion does not matter and removal is division.
As in Core the running value is kept as a fraction, numerator / denominator: ``insert`` multiplies
the numerator and ``remove`` the denominator, each a single modular multiplication, and the one
expensive modular inverse is left to ``finalize``. The digest is the single SHA-256 of the value
``numerator / denominator mod P`` written as 384 bytes little-endian.

The arithmetic is Python's own big integers; ChaCha20 comes from the ``cryptography`` package.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from .errors import DecodeError

BYTE_SIZE = 384
"""Bytes in one number modulo ``MODULUS`` (3072 bits)."""

PRIME_DIFF = 1103717
MODULUS = (1 << 3072) - PRIME_DIFF
"""2**3072 - 1103717, the largest 3072-bit safe prime."""

SERIALIZED_SIZE = 2 * BYTE_SIZE
"""``serialize()`` writes the numerator then the denominator, 384 bytes little-endian each."""

_MASK = (1 << 3072) - 1
_ZERO_BLOCK = bytes(BYTE_SIZE)
# cryptography's ChaCha20 takes OpenSSL's 16-byte IV: a 32-bit little-endian block counter
# followed by the 96-bit RFC 8439 nonce. All zero is counter 0, nonce 0, as Core uses.
_ZERO_IV = bytes(16)
_sha256 = hashlib.sha256
_from_le = int.from_bytes


def _reduce(x: int) -> int:
    """``x mod MODULUS`` for 0 <= x < 2**6144, using 2**3072 = PRIME_DIFF (mod MODULUS).

    Two folds bring x below 2**3072 + 2**43 < 2 * MODULUS; one subtraction finishes. This is
    about three times faster than ``x % MODULUS`` for a product of two reduced values.
    """
    x = (x & _MASK) + (x >> 3072) * PRIME_DIFF
    x = (x & _MASK) + (x >> 3072) * PRIME_DIFF
    return x - MODULUS if x >= MODULUS else x


def element_bytes(data: bytes) -> bytes:
    """The 384 bytes of ChaCha20 keystream that stand for ``data`` (Core's ``ToNum3072`` input)."""
    key = _sha256(data).digest()
    encryptor = Cipher(algorithms.ChaCha20(key, _ZERO_IV), mode=None).encryptor()
    return encryptor.update(_ZERO_BLOCK)


def element(data: bytes) -> int:
    """The number modulo ``MODULUS`` that stands for ``data`` in a set."""
    n = _from_le(element_bytes(data), "little")
    # A keystream at or above the modulus has probability about 2**-3052; reduce it all the same.
    return n - MODULUS if n >= MODULUS else n


class MuHash3072:
    """A set of byte strings, hashed so that insertions and removals commute.

    ``MuHash3072()`` is the empty set; ``MuHash3072(data)`` the set holding only ``data``.
    ``insert``/``remove`` and ``combine``/``divide`` (also ``*=`` and ``/=``) return ``self``
    so that calls chain, as in Core. Like Core, inserting twice or removing what was never
    inserted is not detected: the hash is of a multiset with possibly negative counts.
    """

    __slots__ = ("_den", "_num")
    _num: int
    _den: int

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # mutable: not hashable

    def __init__(self, data: bytes | None = None) -> None:
        self._num = 1 if data is None else element(data)
        self._den = 1

    def insert(self, data: bytes) -> MuHash3072:
        """Add ``data`` to the set: one multiplication into the numerator."""
        self._num = _reduce(self._num * element(data))
        return self

    def remove(self, data: bytes) -> MuHash3072:
        """Take ``data`` out of the set: one multiplication into the denominator."""
        self._den = _reduce(self._den * element(data))
        return self

    def combine(self, other: MuHash3072) -> MuHash3072:
        """Become the union of this set and ``other`` (Core's ``operator*=``)."""
        self._num = _reduce(self._num * other._num)
        self._den = _reduce(self._den * other._den)
        return self

    def divide(self, other: MuHash3072) -> MuHash3072:
        """Become this set less ``other`` (Core's ``operator/=``)."""
        num = _reduce(self._num * other._den)
        self._den = _reduce(self._den * other._num)
        self._num = num
        return self

    def __imul__(self, other: MuHash3072) -> MuHash3072:
        return self.combine(other)

    def __itruediv__(self, other: MuHash3072) -> MuHash3072:
        return self.divide(other)

    def copy(self) -> MuHash3072:
        clone = MuHash3072.__new__(MuHash3072)
        clone._num = self._num
        clone._den = self._den
        return clone

    def finalize(self) -> bytes:
        """The 32-byte digest (wire order): SHA-256 of numerator / denominator mod P, 384 bytes LE.

        Like Core's ``Finalize`` this folds the denominator into the numerator (the set is
        unchanged, only its representation), so a second call skips the inverse.
        """
        if self._den != 1:
            self._num = _reduce(self._num * pow(self._den, -1, MODULUS))
            self._den = 1
        return _sha256(self._num.to_bytes(BYTE_SIZE, "little")).digest()

    def serialize(self) -> bytes:
        """The running state, 768 bytes: numerator then denominator, each 384 bytes LE (as Core)."""
        return self._num.to_bytes(BYTE_SIZE, "little") + self._den.to_bytes(BYTE_SIZE, "little")

    @classmethod
    def deserialize(cls, data: bytes) -> MuHash3072:
        """The state that ``serialize`` wrote.

        Like Core, numbers at or above the modulus are accepted and reduced. A denominator of
        zero modulo P (which no sequence of operations produces) is refused with ``DecodeError``.
        """
        if len(data) != SERIALIZED_SIZE:
            raise DecodeError(f"a MuHash3072 state is {SERIALIZED_SIZE} bytes, got {len(data)}")
        num = _from_le(data[:BYTE_SIZE], "little") % MODULUS
        den = _from_le(data[BYTE_SIZE:], "little") % MODULUS
        if den == 0:
            raise DecodeError("MuHash3072 denominator is zero modulo the prime")
        obj = cls.__new__(cls)
        obj._num = num
        obj._den = den
        return obj

    def __eq__(self, other: object) -> bool:
        """Whether both represent the same set (fractions compared by cross-multiplication)."""
        if not isinstance(other, MuHash3072):
            return NotImplemented
        return _reduce(self._num * other._den) == _reduce(other._num * self._den)

    def __repr__(self) -> str:
        return f"MuHash3072({self.copy().finalize()[::-1].hex()})"
