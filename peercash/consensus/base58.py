"""Base58 and base58check: the text form of legacy addresses, WIF keys and BIP32 extended keys.

Layer 0 (consensus). Pure functions. Decoders raise only ``DecodeError`` subclasses:
``EncodingError`` for a character outside the alphabet, ``OversizeError`` for text longer than the
caller allows (checked before any big-integer work), ``ChecksumError`` for a bad base58check
checksum. Whitespace is not skipped: callers strip their own input.
"""

from __future__ import annotations

from .errors import ChecksumError, EncodingError, OversizeError
from .hashing import hash256

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
"""Digits 0..57. No 0, O, I or l, which are easy to confuse when copied by hand."""

CHECKSUM_SIZE = 4

_DIGIT = {char: value for value, char in enumerate(ALPHABET)}


def b58encode(data: bytes) -> str:
    """Base58 of ``data`` read as a big-endian number; each leading zero byte becomes a '1'."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(ALPHABET[digit])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str, max_size: int | None = None) -> bytes:
    """The bytes whose base58 is ``text``; each leading '1' becomes a zero byte.

    ``max_size`` bounds the result. Each output byte needs at least one character, so text longer
    than ``2 * max_size`` is refused before decoding: a huge string costs us nothing.
    """
    if max_size is not None and len(text) > 2 * max_size:
        raise OversizeError(f"base58 text of {len(text)} characters exceeds {max_size} bytes")
    number = 0
    for position, char in enumerate(text):
        digit = _DIGIT.get(char)
        if digit is None:
            raise EncodingError(f"invalid base58 character {char!r} at position {position}")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    result = b"\x00" * zeros + body
    if max_size is not None and len(result) > max_size:
        raise OversizeError(f"base58 data of {len(result)} bytes exceeds {max_size} bytes")
    return result


def b58encode_check(payload: bytes) -> str:
    """Base58 of ``payload`` followed by the first 4 bytes of its hash256, to catch typos."""
    return b58encode(payload + hash256(payload)[:CHECKSUM_SIZE])


def b58decode_check(text: str, max_size: int | None = None) -> bytes:
    """The payload of base58check ``text`` (checksum verified and removed).

    ``max_size`` bounds the payload, not counting the 4 checksum bytes.
    """
    raw = b58decode(text, None if max_size is None else max_size + CHECKSUM_SIZE)
    if len(raw) < CHECKSUM_SIZE:
        raise EncodingError(f"base58check data of {len(raw)} bytes is too short for a checksum")
    payload, checksum = raw[:-CHECKSUM_SIZE], raw[-CHECKSUM_SIZE:]
    if hash256(payload)[:CHECKSUM_SIZE] != checksum:
        raise ChecksumError("base58check checksum mismatch")
    return payload
