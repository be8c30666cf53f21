"""BIP32 against BIP32's own test vectors 1–5 and bcoin's derivation case, plus path parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peercash.consensus.params import MAIN, REGTEST, TESTNET
from peercash.wallet.bip32 import (
    HARDENED,
    DerivationError,
    ExtendedKey,
    ExtendedKeyDecodeError,
    PathError,
    format_path,
    parse_path,
)

DATA = Path(__file__).resolve().parents[1] / "data"
BIP32 = json.loads((DATA / "bips" / "bip-0032-vectors.json").read_text())
HD = json.loads((DATA / "bcoin" / "hd.json").read_text())


def test_bip32_vectors_1_to_4() -> None:
    checked = 0
    for vector in BIP32["vectors"]:
        master = ExtendedKey.from_seed(bytes.fromhex(vector["seed"]))
        for row in vector["chains"]:
            key = master.derive(row["chain"])
            assert key.to_string(MAIN) == row["prv"], (vector["name"], row["chain"])
            assert key.neuter().to_string(MAIN) == row["pub"], (vector["name"], row["chain"])
            # Parsing gives back the same key, and text round-trips.
            assert ExtendedKey.parse(row["prv"], MAIN) == key
            assert ExtendedKey.parse(row["pub"], MAIN) == key.neuter()
            assert key.depth == len(parse_path(row["chain"]))
            checked += 1
    assert checked == 17  # 6 + 6 + 2 + 3 chains


def test_public_derivation_matches_private_for_normal_steps() -> None:
    # Vector 1 m/0h/1/2h/2/1000000000: from the xpub at m/0h/1/2h, the last two steps are normal.
    vector = BIP32["vectors"][0]
    master = ExtendedKey.from_seed(bytes.fromhex(vector["seed"]))
    xpub = master.derive("m/0h/1/2h").neuter()
    assert xpub.derive([2, 1000000000]).to_string(MAIN) == vector["chains"][5]["pub"]
    with pytest.raises(DerivationError, match="hardened derivation needs the private key"):
        xpub.child(HARDENED)


# BIP32 test vector 5: every key must be rejected on mainnet.
def test_bip32_vector_5_invalid_keys() -> None:
    reasons = {
        "pubkey version / prvkey mismatch": "public key is not a valid compressed point",
        "prvkey version / pubkey mismatch": "private extended key's key data must start 00",
        "invalid pubkey prefix 04": "public key is not a valid compressed point",
        "invalid prvkey prefix 04": "private extended key's key data must start 00",
        "invalid pubkey prefix 01": "public key is not a valid compressed point",
        "invalid prvkey prefix 01": "private extended key's key data must start 00",
        "zero depth with non-zero parent fingerprint": "non-zero parent fingerprint",
        "zero depth with non-zero index": "non-zero child number",
        "unknown extended key version": "is not an extended key version of main",
        "private key 0 not in 1..n-1": "private key is not in 1..n-1",
        "private key n not in 1..n-1": "private key is not in 1..n-1",
        "invalid pubkey 020000000000000000000000000000000000000000000000000000000000000007": (
            "public key is not a valid compressed point"
        ),
        "invalid checksum": "checksum mismatch",
    }
    for case in BIP32["invalid"]:
        with pytest.raises(ExtendedKeyDecodeError, match=reasons[case["reason"]]):
            ExtendedKey.parse(case["key"], MAIN)
    assert len(BIP32["invalid"]) == 16


def test_network_versions() -> None:
    master = ExtendedKey.from_seed(bytes.fromhex(BIP32["vectors"][0]["seed"]))
    tprv = master.to_string(TESTNET)
    assert tprv.startswith("tprv") and master.neuter().to_string(REGTEST).startswith("tpub")
    assert ExtendedKey.parse(tprv, REGTEST) == master
    with pytest.raises(ExtendedKeyDecodeError, match="not an extended key version of main"):
        ExtendedKey.parse(tprv, MAIN)
    with pytest.raises(ExtendedKeyDecodeError, match="not an extended key version of testnet"):
        ExtendedKey.parse(master.to_string(MAIN), TESTNET)


def test_bcoin_mnemonic_derivation_case() -> None:
    master = ExtendedKey.from_seed(bytes.fromhex(HD["seed"]))
    assert master.to_string(MAIN) == HD["master_priv"]
    assert master.neuter().to_string(MAIN) == HD["master_pub"]
    # bcoin's test derives m/0, the public m/1 (child2), m/1, m/2, m/2/0 and m/2/1.
    cases = {
        "child1": (0,),
        "child3": (1,),
        "child4": (2,),
        "child5": (2, 0),
        "child6": (2, 1),
    }
    for name, path in cases.items():
        key = master.derive(path)
        assert key.to_string(MAIN) == HD[f"{name}_priv"], name
        assert key.neuter().to_string(MAIN) == HD[f"{name}_pub"], name
    assert master.neuter().child(1).to_string(MAIN) == HD["child2_pub"]
    # A master key whose secret starts with zero bytes keeps them through the text form.
    zero = ExtendedKey.parse(HD["zero_priv"], MAIN)
    assert zero.secret is not None and zero.secret[:2] == b"\x00\x00"
    assert zero.to_string(MAIN) == HD["zero_priv"]


def test_fingerprints_and_fields() -> None:
    master = ExtendedKey.from_seed(bytes.fromhex(BIP32["vectors"][0]["seed"]))
    assert master.fingerprint.hex() == "3442193e"  # BIP32 vector 1's master fingerprint
    child = master.derive("m/0'")
    assert child.parent_fingerprint == master.fingerprint
    assert child.child_number == HARDENED and child.is_hardened and child.depth == 1
    assert child.neuter().fingerprint == child.fingerprint
    assert master.parent_fingerprint == bytes(4) and master.child_number == 0


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("m", ()),
        ("m/84'/1'/0'/0/5", (84 | HARDENED, 1 | HARDENED, HARDENED, 0, 5)),
        ("m/84h/1h/0h/0/5", (84 | HARDENED, 1 | HARDENED, HARDENED, 0, 5)),
        ("0/1h", (0, 1 | HARDENED)),
        ("m/2147483647'", (0xFFFF_FFFF,)),
    ],
)
def test_parse_path(text: str, path: tuple[int, ...]) -> None:
    assert parse_path(text) == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a number"),
        ("m/", "is not a number"),
        ("m/2147483648", "out of range"),
        ("m/1H", "is not a number"),
        ("m/-1", "is not a number"),
        ("m/+1", "is not a number"),
        ("m/1/m", "is not a number"),
        ("m/ 1", "is not a number"),
    ],
)
def test_parse_path_rejects(text: str, message: str) -> None:
    with pytest.raises(PathError, match=message):
        parse_path(text)


def test_format_path() -> None:
    path = (84 | HARDENED, 1 | HARDENED, HARDENED, 0, 5)
    assert format_path(path) == "m/84h/1h/0h/0/5"
    assert format_path(path, apostrophe=True, prefix="") == "/84'/1'/0'/0/5"
    assert format_path(()) == "m"


@given(st.lists(st.integers(0, 0xFFFF_FFFF), max_size=8), st.booleans())
def test_path_round_trip(path: list[int], apostrophe: bool) -> None:
    assert parse_path(format_path(path, apostrophe)) == tuple(path)


@given(st.binary(min_size=16, max_size=64), st.lists(st.integers(0, 0xFFFF_FFFF), max_size=3))
def test_serialize_round_trip(seed: bytes, path: list[int]) -> None:
    key = ExtendedKey.from_seed(seed).derive(path)
    for params in (MAIN, TESTNET):
        assert ExtendedKey.parse(key.to_string(params), params) == key
        assert ExtendedKey.parse(key.neuter().to_string(params), params) == key.neuter()
    # The public child of the public parent is the public part of the private child.
    if not key.is_hardened and path:
        parent = ExtendedKey.from_seed(seed).derive(path[:-1])
        assert parent.neuter().child(path[-1]) == key.neuter()


def test_wrong_lengths_rejected() -> None:
    with pytest.raises(ExtendedKeyDecodeError, match="is 78 bytes, not 77"):
        ExtendedKey.deserialize(bytes(77), MAIN)
    with pytest.raises(ExtendedKeyDecodeError, match="not base58check"):
        ExtendedKey.parse("xpub0OIl", MAIN)
