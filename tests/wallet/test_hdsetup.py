"""Default descriptors of a new wallet: Core's eight, with the BIPs' published addresses."""

from __future__ import annotations

import json
from pathlib import Path

from peercash.consensus.params import get_params
from peercash.wallet.bip32 import ExtendedKey
from peercash.wallet.descriptor import parse_one
from peercash.wallet.hdsetup import coin_type, default_descriptors, master_from_mnemonic

DATA = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "wallet" / "default_addresses.json").read_text()
)
MAIN = get_params("main")
REGTEST = get_params("regtest")


def test_published_addresses_of_the_abandon_mnemonic() -> None:
    master = master_from_mnemonic(DATA["mnemonic"], DATA["passphrase"])
    assert master.fingerprint.hex() == DATA["master_fingerprint"]
    by_kind = {(d.output_type, d.internal): d for d in default_descriptors(master, MAIN)}
    checked = 0
    for v in DATA["vectors"]:
        desc = parse_one(by_kind[(v["type"], v["internal"])].text, MAIN)
        assert desc.addresses(v["index"]) == [v["address"]]
        checked += 1
    assert checked == 7


def test_eight_descriptors_in_cores_order_and_shape() -> None:
    master = ExtendedKey.from_seed(bytes(range(32)))
    fp = master.fingerprint.hex()
    descs = default_descriptors(master, REGTEST)
    assert [(d.output_type, d.internal) for d in descs] == [
        ("legacy", False), ("legacy", True), ("p2sh-segwit", False), ("p2sh-segwit", True),
        ("bech32", False), ("bech32", True), ("bech32m", False), ("bech32m", True),
    ]  # fmt: skip
    prefixes = ["pkh(", "pkh(", "sh(wpkh(", "sh(wpkh(", "wpkh(", "wpkh(", "tr(", "tr("]
    purposes = [44, 44, 49, 49, 84, 84, 86, 86]
    for d, prefix, purpose in zip(descs, prefixes, purposes, strict=True):
        assert d.text.startswith(f"{prefix}[{fp}/{purpose}h/1h/0h]tprv")
        assert f"/{int(d.internal)}/*)" in d.text
        parsed = parse_one(d.text, REGTEST)
        assert parsed.is_range and parsed.has_all_private_keys


def test_coin_type_is_zero_only_on_mainnet() -> None:
    assert coin_type(MAIN) == 0
    assert [coin_type(get_params(n)) for n in ("testnet", "testnet4", "signet", "regtest")] == [
        1, 1, 1, 1
    ]  # fmt: skip
