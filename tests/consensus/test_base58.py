"""Base58 and base58check against Bitcoin Core's ``base58_encode_decode.json`` (see SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peercash.consensus.base58 import b58decode, b58decode_check, b58encode, b58encode_check
from peercash.consensus.errors import ChecksumError, DecodeError, EncodingError, OversizeError

DATA = Path(__file__).resolve().parents[1] / "data"
ROWS: list[list[str]] = json.loads((DATA / "core" / "base58_encode_decode.json").read_text())


def test_vector_count() -> None:
    assert len(ROWS) == 21


@pytest.mark.parametrize(("hex_data", "text"), ROWS, ids=[r[1][:16] or "empty" for r in ROWS])
def test_encode(hex_data: str, text: str) -> None:
    assert b58encode(bytes.fromhex(hex_data)) == text


@pytest.mark.parametrize(("hex_data", "text"), ROWS, ids=[r[1][:16] or "empty" for r in ROWS])
def test_decode(hex_data: str, text: str) -> None:
    assert b58decode(text) == bytes.fromhex(hex_data)


@pytest.mark.parametrize(
    "text", ["0", "O", "I", "l", "3SEo3LWLoPntC ", " 3SEo", "3SE\u00e9", "\x00"]
)
def test_decode_rejects_characters_outside_alphabet(text: str) -> None:
    with pytest.raises(EncodingError):
        b58decode(text)


def test_decode_max_size() -> None:
    assert b58decode("1111", max_size=4) == b"\x00" * 4
    with pytest.raises(OversizeError):
        b58decode("11111", max_size=4)
    with pytest.raises(OversizeError):
        b58decode("z" * 1000, max_size=10)


@pytest.mark.parametrize(
    "payload", [b"", b"\x00", b"\x00\x00\x01", bytes(range(256)), b"\x80" + b"\xff" * 32]
)
def test_check_round_trip(payload: bytes) -> None:
    text = b58encode_check(payload)
    assert b58decode_check(text) == payload


def test_check_known_value() -> None:
    # Mainnet P2PKH of hash160 a31c06bd...0717, from key_io_valid.json.
    payload = bytes.fromhex("00a31c06bd463e3923bc1aadbde48b16976c080717")
    assert b58encode_check(payload) == "1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo"


def test_check_detects_a_changed_character() -> None:
    text = "1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo"
    altered = text[:10] + ("5" if text[10] != "5" else "6") + text[11:]
    with pytest.raises(ChecksumError):
        b58decode_check(altered)


def test_check_detects_a_changed_checksum_byte() -> None:
    raw = bytearray(b58decode(b58encode_check(b"hello")))
    raw[-1] ^= 1
    with pytest.raises(ChecksumError):
        b58decode_check(b58encode(bytes(raw)))


@pytest.mark.parametrize("text", ["", "1", "111", "2g"])
def test_check_rejects_too_short(text: str) -> None:
    with pytest.raises(DecodeError):
        b58decode_check(text)


def test_check_max_size_counts_payload_only() -> None:
    text = b58encode_check(b"\x01" * 21)
    assert b58decode_check(text, max_size=21) == b"\x01" * 21
    with pytest.raises(OversizeError):
        b58decode_check(text, max_size=20)
