"""The descriptor checksum (BIP380): eight bech32 characters after ``#`` that catch typos.

Every group of three descriptor characters becomes four GF(32) symbols (each character's
position within its group of 32 in :data:`INPUT_CHARSET`, then one symbol for the three group
numbers), and a degree-8 BCH-style code over those symbols gives the checksum. Any single-symbol
error is detected, as is any error in up to 3 symbols for descriptors up to 49,154 characters.
"""

from __future__ import annotations

from .errors import DescriptorError

__all__ = [
    "CHECKSUM_CHARSET",
    "INPUT_CHARSET",
    "add_checksum",
    "descriptor_checksum",
    "split_checksum",
]

INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    'ijklmnopqrstuvwxyzABCDEFGH`#"\\ '
)
"""The characters a descriptor may contain, in the order that gives their symbol values."""

CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
"""The checksum's alphabet (bech32's)."""

_POSITION = {char: i for i, char in enumerate(INPUT_CHARSET)}

# The generator's coefficients times 1, 2, 4, 8 and 16 (BIP380), packed 5 bits per symbol.
_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _polymod(c: int, value: int) -> int:
    top = c >> 35
    c = ((c & 0x7_FFFF_FFFF) << 5) ^ value
    for bit, generator in enumerate(_GENERATOR):
        if top >> bit & 1:
            c ^= generator
    return c


def descriptor_checksum(text: str) -> str | None:
    """The 8-character checksum of ``text`` (without ``#``), or None if it has a character
    outside :data:`INPUT_CHARSET`."""
    c = 1
    groups = 0
    count = 0
    for char in text:
        position = _POSITION.get(char)
        if position is None:
            return None
        c = _polymod(c, position & 31)
        groups = groups * 3 + (position >> 5)
        count += 1
        if count == 3:
            c = _polymod(c, groups)
            groups = 0
            count = 0
    if count:
        c = _polymod(c, groups)
    for _ in range(8):
        c = _polymod(c, 0)
    c ^= 1
    return "".join(CHECKSUM_CHARSET[(c >> (5 * (7 - j))) & 31] for j in range(8))


def add_checksum(text: str) -> str:
    """``text#checksum``."""
    checksum = descriptor_checksum(text)
    if checksum is None:
        raise DescriptorError("Invalid characters in payload")
    return f"{text}#{checksum}"


def split_checksum(text: str, require: bool = False) -> tuple[str, str]:
    """(descriptor without checksum, its computed checksum), checking a ``#checksum`` if present.

    Raises :class:`DescriptorError` with Core's messages: more than one ``#``, a missing checksum
    when ``require``, a checksum not 8 characters long, characters outside the charset, or a
    checksum that does not match.
    """
    parts = text.split("#")
    if len(parts) > 2:
        raise DescriptorError("Multiple '#' symbols")
    if len(parts) == 1 and require:
        raise DescriptorError("Missing checksum")
    if len(parts) == 2 and len(parts[1]) != 8:
        raise DescriptorError(f"Expected 8 character checksum, not {len(parts[1])} characters")
    computed = descriptor_checksum(parts[0])
    if computed is None:
        raise DescriptorError("Invalid characters in payload")
    if len(parts) == 2 and parts[1] != computed:
        raise DescriptorError(
            f"Provided checksum '{parts[1]}' does not match computed checksum '{computed}'"
        )
    return parts[0], computed
