"""Addresses and WIF keys against Bitcoin Core's ``key_io_valid.json`` / ``key_io_invalid.json``.

Formats are described in ``tests/data/SOURCES.md`` (section "core/key_io_valid.json").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.address import (
    address_to_script,
    decode_wif,
    encode_wif,
    script_to_address,
)
from peercash.consensus.errors import AddressError, DecodeError
from peercash.consensus.params import (
    MAIN,
    NETWORKS,
    REGTEST,
    SIGNET,
    TESTNET,
    TESTNET4,
    NetworkParams,
    get_params,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "core"
VALID: list[list[Any]] = json.loads((DATA / "key_io_valid.json").read_text())
INVALID: list[list[str]] = json.loads((DATA / "key_io_invalid.json").read_text())

# Core's chain names in the vectors, mapped to our network keys.
CHAIN_TO_NETWORK = {
    "main": "main",
    "testnet4": "testnet4",
    "signet": "signet",
    "regtest": "regtest",
}

ADDRESS_ROWS = [row for row in VALID if not row[2]["isPrivkey"]]
KEY_ROWS = [row for row in VALID if row[2]["isPrivkey"]]
ALL_NETWORKS = list(NETWORKS.values())


def _params(meta: dict[str, Any]) -> NetworkParams:
    return get_params(CHAIN_TO_NETWORK[meta["chain"]])


def test_vector_counts() -> None:
    assert len(VALID) == 70
    assert len(ADDRESS_ROWS) == 54
    assert len(KEY_ROWS) == 16
    assert len(INVALID) == 70


@pytest.mark.parametrize(
    ("text", "script_hex", "meta"), ADDRESS_ROWS, ids=[r[0] for r in ADDRESS_ROWS]
)
def test_valid_address(text: str, script_hex: str, meta: dict[str, Any]) -> None:
    params = _params(meta)
    script = bytes.fromhex(script_hex)
    assert address_to_script(text, params) == script
    assert script_to_address(script, params) == text
    if meta.get("tryCaseFlip"):
        flipped = text.swapcase()
        assert address_to_script(flipped, params) == script
    # An address is never also a private key.
    with pytest.raises(DecodeError):
        decode_wif(text, params)


@pytest.mark.parametrize(("text", "secret_hex", "meta"), KEY_ROWS, ids=[r[0] for r in KEY_ROWS])
def test_valid_private_key(text: str, secret_hex: str, meta: dict[str, Any]) -> None:
    params = _params(meta)
    secret, compressed = decode_wif(text, params)
    assert secret.hex() == secret_hex
    assert compressed is meta["isCompressed"]
    assert encode_wif(secret, compressed, params) == text
    # A private key is never also an address.
    with pytest.raises(DecodeError):
        address_to_script(text, params)


@pytest.mark.parametrize("params", ALL_NETWORKS, ids=[p.name for p in ALL_NETWORKS])
@pytest.mark.parametrize("text", [row[0] for row in INVALID])
def test_invalid_string_is_not_an_address(text: str, params: NetworkParams) -> None:
    with pytest.raises(DecodeError):
        address_to_script(text, params)


@pytest.mark.parametrize("params", ALL_NETWORKS, ids=[p.name for p in ALL_NETWORKS])
@pytest.mark.parametrize("text", [row[0] for row in INVALID])
def test_invalid_string_is_not_a_private_key(text: str, params: NetworkParams) -> None:
    with pytest.raises(DecodeError):
        decode_wif(text, params)


def test_mainnet_address_rejected_on_test_networks() -> None:
    with pytest.raises(AddressError, match="version byte"):
        address_to_script("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo", TESTNET4)
    with pytest.raises(AddressError, match="hrp"):
        address_to_script("bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv", REGTEST)
    with pytest.raises(AddressError, match="hrp"):
        address_to_script("bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9", MAIN)


def test_testnet_key_rejected_on_main() -> None:
    with pytest.raises(AddressError, match="WIF version byte"):
        decode_wif("cV83kKisF3RQSvXbUCm9ox3kaz5JjEUBWcx8tNydfGJcyeUxuH47", MAIN)


def test_wif_rejects_out_of_range_secrets() -> None:
    from peercash.consensus.address import SECP256K1_ORDER
    from peercash.consensus.base58 import b58encode_check

    for number in (0, SECP256K1_ORDER, 2**256 - 1):
        text = b58encode_check(b"\x80" + number.to_bytes(32, "big") + b"\x01")
        with pytest.raises(AddressError):
            decode_wif(text, MAIN)
        with pytest.raises(ValueError):
            encode_wif(number.to_bytes(32, "big"), True, MAIN)


def test_wif_rejects_bad_compression_flag() -> None:
    from peercash.consensus.base58 import b58encode_check

    text = b58encode_check(b"\x80" + b"\x11" * 32 + b"\x02")
    with pytest.raises(AddressError, match="compression flag"):
        decode_wif(text, MAIN)


@pytest.mark.parametrize(
    "script_hex",
    [
        "",
        "6a0401020304",  # OP_RETURN
        "51",  # OP_TRUE
        "0015" + "00" * 21,  # v0 program of 21 bytes has no address
        "0001ff",  # program of 1 byte
        "5129" + "00" * 41,  # program of 41 bytes
        "4f0200ff",  # OP_1NEGATE is not a witness version
        "76a914" + "00" * 20 + "88ad",  # P2PKH with OP_CHECKSIGVERIFY
        "a914" + "00" * 20 + "88",  # P2SH with OP_EQUALVERIFY
        "0014" + "00" * 19,  # push length does not match
    ],
)
def test_scripts_without_address(script_hex: str) -> None:
    assert script_to_address(bytes.fromhex(script_hex), MAIN) is None


def test_network_table() -> None:
    assert list(NETWORKS) == ["main", "testnet", "testnet4", "signet", "regtest"]
    assert [p.bech32_hrp for p in NETWORKS.values()] == ["bc", "tb", "tb", "tb", "bcrt"]
    assert TESTNET.magic == bytes.fromhex("0b110907")
    assert SIGNET.magic == bytes.fromhex("0a03cf40")
    assert get_params("regtest") is REGTEST
    with pytest.raises(KeyError, match="unknown network 'mainnet'"):
        get_params("mainnet")


def test_signet_magic_derives_from_its_challenge() -> None:
    from peercash.consensus.hashing import hash256

    challenge = bytes.fromhex(
        "512103ad5e0edad18cb1f0fc0d28a3d4f1f3e445640337489abb10404f2d1e086be430210359ef5021964f"
        "e22d6f8e05b2463c9540ce96883fe3b278760f048f5189f2e6c452ae"
    )
    assert hash256(bytes([len(challenge)]) + challenge)[:4] == SIGNET.magic
