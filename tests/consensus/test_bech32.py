"""Bech32/bech32m against the test vectors published in BIP173 and BIP350.

The strings are copied from the two BIPs (bitcoin/bips ``bip-0173.mediawiki`` and
``bip-0350.mediawiki``, section "Test vectors").
"""

from __future__ import annotations

import pytest

from peercash.consensus.bech32 import (
    Encoding,
    bech32_decode,
    bech32_encode,
    convert_bits,
    decode_segwit_address,
    encode_segwit_address,
)
from peercash.consensus.errors import ChecksumError, DecodeError, EncodingError

VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

INVALID_BECH32 = [
    "\x201nwldj5",  # HRP character out of range
    "\x7f1axkwrx",  # HRP character out of range
    "\x801eym55h",  # HRP character out of range
    # overall max length exceeded
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
    "pzry9x0s0muk",  # no separator character
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with uppercase form of HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
]

VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]

INVALID_BECH32M = [
    "\x201xj0phk",  # HRP character out of range
    "\x7f1g6xzxy",  # HRP character out of range
    "\x801vctc34",  # HRP character out of range
    # overall max length exceeded
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",  # no separator character
    "1qyrz8wqd2c9m",  # empty HRP
    "y1b0jsk6g",  # invalid data character
    "lt1igcx5c0",  # invalid data character
    "in1muywd",  # too short checksum
    "mm1crxm3i",  # invalid character in checksum
    "au1s5cgom",  # invalid character in checksum
    "M1VUXWEZ",  # checksum calculated with uppercase form of HRP
    "16plkw9",  # empty HRP
    "1p2gdwpf",  # empty HRP
]

# BIP350's list (it supersedes BIP173's, whose v1+ examples use bech32 and are now invalid).
VALID_ADDRESSES = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]

INVALID_ADDRESSES_BIP350 = [
    # invalid human-readable part
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
    # invalid checksum (bech32 instead of bech32m)
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    # invalid checksum (bech32m instead of bech32)
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    # invalid character in checksum
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    # invalid witness version
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    # invalid program length (1 byte)
    "bc1pw5dgrnzv",
    # invalid program length (41 bytes)
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    # invalid program length for witness version 0 (per BIP141)
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    # mixed case
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    # zero padding of more than 4 bits
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    # non-zero padding in 8-to-5 conversion
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
    # empty data section
    "bc1gmk9yu",
]

INVALID_ADDRESSES_BIP173 = [
    "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",  # invalid human-readable part
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # invalid checksum
    "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",  # invalid witness version
    "bc1rw5uspcuh",  # invalid program length
    # invalid program length
    "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # invalid program length for witness version 0
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",  # mixed case
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",  # zero padding of more than 4 bits
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",  # non-zero padding
    "bc1gmk9yu",  # empty data section
]

# BIP173's valid v1+ addresses use bech32; BIP350 makes them invalid.
BIP173_V1_PLUS = [
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
    "BC1SW50QA3JX3S",
    "bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj",
]


def _script(version: int, program: bytes) -> bytes:
    return bytes([0 if version == 0 else 0x50 + version, len(program)]) + program


def _round_trip(text: str, expected: Encoding) -> None:
    hrp, data, encoding = bech32_decode(text)
    assert encoding is expected
    assert bech32_encode(hrp, data, encoding) == text.lower()


@pytest.mark.parametrize("text", VALID_BECH32)
def test_valid_bech32(text: str) -> None:
    _round_trip(text, Encoding.BECH32)


@pytest.mark.parametrize("text", VALID_BECH32M)
def test_valid_bech32m(text: str) -> None:
    _round_trip(text, Encoding.BECH32M)


@pytest.mark.parametrize("text", INVALID_BECH32 + INVALID_BECH32M)
def test_invalid_strings(text: str) -> None:
    with pytest.raises(DecodeError):
        bech32_decode(text)


@pytest.mark.parametrize("text", ["A1G7SGD8", "M1VUXWEZ"])
def test_checksum_over_upper_case_hrp_is_a_checksum_error(text: str) -> None:
    with pytest.raises(ChecksumError):
        bech32_decode(text)


def test_mixed_case_rejected() -> None:
    with pytest.raises(EncodingError, match="mixes"):
        bech32_decode("A12uEL5L")


def test_length_limit() -> None:
    hrp = "a" * 83
    assert len(bech32_encode(hrp, [], Encoding.BECH32)) == 90
    with pytest.raises(ValueError):
        bech32_encode(hrp, [0], Encoding.BECH32)


@pytest.mark.parametrize(("address", "script_hex"), VALID_ADDRESSES)
def test_valid_segwit_address(address: str, script_hex: str) -> None:
    hrp = address[:2].lower()
    version, program = decode_segwit_address(hrp, address)
    assert _script(version, program).hex() == script_hex
    assert encode_segwit_address(hrp, version, program) == address.lower()


@pytest.mark.parametrize(
    "address", INVALID_ADDRESSES_BIP350 + INVALID_ADDRESSES_BIP173 + BIP173_V1_PLUS
)
@pytest.mark.parametrize("hrp", ["bc", "tb"])
def test_invalid_segwit_address(hrp: str, address: str) -> None:
    with pytest.raises(DecodeError):
        decode_segwit_address(hrp, address)


@pytest.mark.parametrize("address", BIP173_V1_PLUS)
def test_v1_plus_with_bech32_is_checksum_error(address: str) -> None:
    with pytest.raises(ChecksumError, match="bech32m"):
        decode_segwit_address("bc", address)


def test_wrong_hrp_rejected() -> None:
    with pytest.raises(EncodingError, match="hrp"):
        decode_segwit_address("tb", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


@pytest.mark.parametrize(
    ("version", "program"),
    [(17, b"\x00" * 20), (-1, b"\x00" * 20), (0, b"\x00" * 21), (1, b"\x00"), (2, b"\x00" * 41)],
)
def test_encode_segwit_rejects_invalid_programs(version: int, program: bytes) -> None:
    with pytest.raises(ValueError):
        encode_segwit_address("bc", version, program)


def test_convert_bits_round_trip() -> None:
    data = bytes(range(256))
    five = convert_bits(data, 8, 5, True)
    assert bytes(convert_bits(five, 5, 8, False)) == data


def test_convert_bits_rejects_out_of_range_values() -> None:
    with pytest.raises(EncodingError):
        convert_bits([32], 5, 8, False)
