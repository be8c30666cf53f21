"""Bech32 (BIP173) and bech32m (BIP350): the text form of native segwit addresses.

Layer 0 (consensus). Pure functions. Decoders raise only ``DecodeError`` subclasses:
``EncodingError`` for malformed text (length, characters, mixed case, padding, witness rules) and
``ChecksumError`` when neither checksum variant matches, or the wrong one is used for the witness
version. Encoders raise ``ValueError`` on arguments no valid string could carry.

A string is a human-readable part (hrp), the separator '1' (the last one in the string), then
5-bit data characters of which the final six are a BCH checksum over the hrp and data.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from .errors import ChecksumError, EncodingError

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
"""The 32 data characters, ordered so that likely typos change few bits of the value."""

MAX_LENGTH = 90
"""BIP173's limit on a whole string; the checksum guarantees hold only up to about this length."""

CHECKSUM_LENGTH = 6

_CHAR_VALUE = {char: value for value, char in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Encoding(enum.Enum):
    """The checksum variant; each value is the constant the checksum residue must equal."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


def _polymod(values: Iterable[int]) -> int:
    """Remainder of the data polynomial modulo the BIP173 generator, over GF(32)."""
    residue = 1
    for value in values:
        top = residue >> 25
        residue = ((residue & 0x1FFFFFF) << 5) ^ value
        for bit, generator in enumerate(_GENERATOR):
            if (top >> bit) & 1:
                residue ^= generator
    return residue


def _hrp_values(hrp: str) -> list[int]:
    """The hrp as the checksum sees it: high bits of each character, a zero, then low bits."""
    codes = [ord(char) for char in hrp]
    return [code >> 5 for code in codes] + [0] + [code & 31 for code in codes]


def _check_printable(text: str) -> None:
    """Every character of a bech32 string must be printable US-ASCII (33..126)."""
    for char in text:
        if not 33 <= ord(char) <= 126:
            raise EncodingError(f"bech32 character {char!r} is out of range")


def bech32_encode(hrp: str, data: Sequence[int], encoding: Encoding) -> str:
    """The lower-case bech32 or bech32m string of ``hrp`` and 5-bit ``data`` values."""
    if not hrp:
        raise ValueError("bech32 hrp must not be empty")
    for char in hrp:
        if not 33 <= ord(char) <= 126:
            raise ValueError(f"bech32 hrp character {char!r} is out of range")
    if any(not 0 <= value < 32 for value in data):
        raise ValueError("bech32 data values must be 5-bit")
    length = len(hrp) + 1 + len(data) + CHECKSUM_LENGTH
    if length > MAX_LENGTH:
        raise ValueError(f"bech32 string of {length} characters exceeds {MAX_LENGTH}")
    hrp = hrp.lower()
    residue = _polymod([*_hrp_values(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ encoding.value
    checksum = [(residue >> (5 * (CHECKSUM_LENGTH - 1 - i))) & 31 for i in range(CHECKSUM_LENGTH)]
    return hrp + "1" + "".join(CHARSET[value] for value in [*data, *checksum])


def bech32_decode(text: str) -> tuple[str, list[int], Encoding]:
    """Split a bech32/bech32m string into (lower-case hrp, data values, variant).

    The checksum is removed from the data. Upper-case strings are accepted (QR codes use them);
    mixed case is not, since it is never produced by an encoder and hides typos.
    """
    if len(text) > MAX_LENGTH:
        raise EncodingError(f"bech32 string of {len(text)} characters exceeds {MAX_LENGTH}")
    _check_printable(text)
    lower = text.lower()
    if lower != text and text.upper() != text:
        raise EncodingError("bech32 string mixes upper and lower case")
    separator = lower.rfind("1")
    if separator < 0:
        raise EncodingError("bech32 string has no separator '1'")
    if separator == 0:
        raise EncodingError("bech32 string has an empty hrp")
    hrp, data_part = lower[:separator], lower[separator + 1 :]
    if len(data_part) < CHECKSUM_LENGTH:
        raise EncodingError("bech32 checksum is shorter than 6 characters")
    data: list[int] = []
    for char in data_part:
        value = _CHAR_VALUE.get(char)
        if value is None:
            raise EncodingError(f"invalid bech32 data character {char!r}")
        data.append(value)
    residue = _polymod([*_hrp_values(hrp), *data])
    for encoding in Encoding:
        if residue == encoding.value:
            return hrp, data[:-CHECKSUM_LENGTH], encoding
    raise ChecksumError("bech32 checksum mismatch (neither bech32 nor bech32m)")


def convert_bits(data: Iterable[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    """Regroup a big-endian bit string from ``from_bits``-wide to ``to_bits``-wide values.

    With ``pad`` the last group is zero-filled (encoding). Without it (decoding) the leftover
    bits must be fewer than ``from_bits`` and all zero, so each byte string has one encoding.
    """
    accumulator = 0
    bits = 0
    out: list[int] = []
    out_mask = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise EncodingError(f"value {value} does not fit in {from_bits} bits")
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & out_mask)
        accumulator &= (1 << bits) - 1
    if pad:
        if bits:
            out.append((accumulator << (to_bits - bits)) & out_mask)
    elif bits >= from_bits:
        raise EncodingError(f"more than {from_bits - 1} bits of padding")
    elif accumulator:
        raise EncodingError("non-zero padding bits")
    return out


def _check_witness(version: int, program_size: int) -> None:
    """BIP141/BIP173 limits on a witness program; raises ``EncodingError``."""
    if not 0 <= version <= 16:
        raise EncodingError(f"witness version {version} is not in 0..16")
    if not 2 <= program_size <= 40:
        raise EncodingError(f"witness program of {program_size} bytes is not 2..40 bytes")
    if version == 0 and program_size not in (20, 32):
        raise EncodingError(f"witness v0 program of {program_size} bytes is not 20 or 32 bytes")


def encode_segwit_address(hrp: str, version: int, program: bytes) -> str:
    """The address of a witness program: bech32 for version 0, bech32m for 1..16 (BIP350)."""
    try:
        _check_witness(version, len(program))
    except EncodingError as error:
        raise ValueError(str(error)) from None
    encoding = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    return bech32_encode(hrp, [version, *convert_bits(program, 8, 5, True)], encoding)


def decode_segwit_address(hrp: str, addr: str) -> tuple[int, bytes]:
    """(witness version, program) of segwit address ``addr``, which must use ``hrp``."""
    got_hrp, data, encoding = bech32_decode(addr)
    if got_hrp != hrp.lower():
        raise EncodingError(f"address hrp {got_hrp!r} is not the expected {hrp.lower()!r}")
    if not data:
        raise EncodingError("segwit address has an empty data section")
    version = data[0]
    program = bytes(convert_bits(data[1:], 5, 8, False))
    _check_witness(version, len(program))
    expected = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    if encoding is not expected:
        raise ChecksumError(
            f"witness v{version} address must use {expected.name.lower()}, "
            f"not {encoding.name.lower()}"
        )
    return version, program
