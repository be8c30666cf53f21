"""Descriptor rules one at a time: contexts, limits, key forms, hardened markers, trees, the
expansion data, Core's key_io vectors through addr()/pk(), and the miniscript hook."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from peercash.consensus.address import encode_wif
from peercash.consensus.crypto import pubkey_from_secret, xonly_from_secret
from peercash.consensus.hashing import hash160
from peercash.consensus.params import MAIN, NETWORKS, REGTEST, TESTNET4
from peercash.wallet.bip32 import HARDENED, ExtendedKey
from peercash.wallet.descriptor import (
    Context,
    DescriptorError,
    KeyExpression,
    KeyOrigin,
    ScriptExpression,
    descriptor_info,
    parse_descriptor,
    parse_one,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "core"
XPRV = (
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU"
    "3TGtRBeJgk33yuGBxrMPHi"
)  # BIP32 test vector 1, m
MASTER = ExtendedKey.parse(XPRV, MAIN)
XPUB = MASTER.neuter().to_string(MAIN)
K1 = "03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd"
U1 = (
    "04a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd"
    "5b8dec5235a0fa8722476c7709c02559e3aa73aa03918ba2d492eea75abea235"
)


def _error(text: str, **kwargs: object) -> str:
    with pytest.raises(DescriptorError) as failure:
        parse_descriptor(text, MAIN, **kwargs)  # type: ignore[arg-type]
    return str(failure.value)


def _keys(n: int, xonly: bool = False) -> list[str]:
    secrets = [(i + 1).to_bytes(32, "big") for i in range(n)]
    if xonly:
        return [xonly_from_secret(s).hex() for s in secrets]
    return [pubkey_from_secret(s).hex() for s in secrets]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # The marker of the last hardened step read wins: origin, then wildcard, then key path.
        (f"pkh([d34db33f/44'/0'/0']{XPUB}/1)", f"pkh([d34db33f/44'/0'/0']{XPUB}/1)"),
        (f"pkh([d34db33f/44h/0'/0h]{XPUB}/1)", f"pkh([d34db33f/44h/0h/0h]{XPUB}/1)"),
        (f"pkh({XPRV}/1'/2h)", f"pkh({XPUB}/1h/2h)"),
        (f"pkh({XPRV}/1h/2'/*h)", f"pkh({XPUB}/1'/2'/*')"),
        (f"pkh({XPRV}/1/*')", f"pkh({XPUB}/1/*')"),
        (f"pkh([deadbeef/1h]{XPRV}/2/*')", f"pkh([deadbeef/1']{XPUB}/2/*')"),
    ],
)
def test_hardened_marker(text: str, canonical: str) -> None:
    assert parse_one(text, MAIN).to_string(checksum=False) == canonical


def test_multisig_limits() -> None:
    keys = _keys(21)
    assert parse_one(f"wsh(multi(20,{','.join(keys[:20])}))", MAIN).is_solvable
    assert _error(f"wsh(multi(1,{','.join(keys)}))") == (
        "Cannot have 21 keys in multisig; must have between 1 and 20 keys, inclusive"
    )
    # sh(): 15 compressed keys make a 513-byte redeem script, 16 make 547 (limit 520).
    assert parse_one(f"sh(multi(1,{','.join(keys[:15])}))", MAIN)
    assert _error(f"sh(sortedmulti(1,{','.join(keys[:16])}))") == (
        "P2SH script is too large, 547 bytes is larger than 520 bytes"
    )
    assert parse_one(f"multi(3,{','.join(keys[:3])})", MAIN)
    assert _error(f"multi(1,{','.join(keys[:4])})") == (
        "Cannot have 4 pubkeys in bare multisig; only at most 3 pubkeys"
    )
    assert _error(f"multi(1,{keys[0]},)") == "Multi: No key provided"
    assert _error("wsh(multi(1))") == (
        "Cannot have 0 keys in multisig; must have between 1 and 20 keys, inclusive"
    )
    assert _error(f"multi(+1,{keys[0]})") == "Multi threshold '+1' is not valid"
    assert _error(f"multi(4294967296,{keys[0]})") == "Multi threshold '4294967296' is not valid"


def test_multisig_scripts() -> None:
    a, b = _keys(2)
    script = parse_one(f"multi(1,{b},{a})", MAIN).script_pubkeys(0)[0]
    assert script.hex() == f"5121{b}21{a}52ae"
    sorted_script = parse_one(f"sortedmulti(1,{b},{a})", MAIN).script_pubkeys(0)[0]
    first, second = sorted((a, b))
    assert sorted_script.hex() == f"5121{first}21{second}52ae"
    # Thresholds above 16 are pushed as script numbers.
    keys = _keys(17)
    witness = parse_one(f"wsh(multi(17,{','.join(keys)}))", MAIN).expand(0).witness_script
    assert witness is not None and witness[:2] == b"\x01\x11" and witness[-3:] == b"\x01\x11\xae"


def test_multi_a() -> None:
    keys = _keys(3, xonly=True)
    internal = _keys(1, xonly=True)[0]
    desc = parse_one(f"tr({internal},sortedmulti_a(2,{keys[2]},{keys[0]},{keys[1]}))", MAIN)
    leaf = desc.expand(0).taproot
    assert leaf is not None
    ordered = sorted(keys)
    assert leaf.leaves[0].script.hex() == (
        f"20{ordered[0]}ac20{ordered[1]}ba20{ordered[2]}ba52" + "9c"
    )
    many = _keys(1000, xonly=True)
    assert parse_one(f"tr({internal},multi_a(999,{','.join(many[:999])}))", MAIN)
    assert _error(f"tr({internal},multi_a(1,{','.join(many)}))") == (
        "Cannot have 1000 keys in multi_a; must have between 1 and 999 keys, inclusive"
    )
    assert _error(f"tr({internal},multi(1,{keys[0]}))") == (
        "Can only have multi/sortedmulti at top level, in sh(), or in wsh()"
    )


def test_key_forms_and_contexts() -> None:
    xonly = K1[2:]
    assert _error(f"pk({xonly})") == f"pk(): Pubkey '{xonly}' is invalid"
    (tr,) = parse_descriptor(f"tr({xonly})", MAIN)
    assert tr.to_string(checksum=False) == f"tr({xonly})"
    # A WIF key in tr() prints as its x-only public key, and as the WIF when private.
    wif = encode_wif((1).to_bytes(32, "big"), True, MAIN)
    (tr_wif,) = parse_descriptor(f"tr({wif})", MAIN)
    assert (
        tr_wif.to_string(checksum=False)
        == f"tr({xonly_from_secret((1).to_bytes(32, 'big')).hex()})"
    )
    assert tr_wif.to_string(private=True, checksum=False) == f"tr({wif})"
    # Uncompressed keys: only at the top and in sh().
    assert parse_one(f"sh(pk({U1}))", MAIN)
    assert _error(f"wsh(pk({U1}))") == "pk(): Uncompressed keys are not allowed"
    assert _error(f"tr({U1})") == "tr(): Uncompressed keys are not allowed"
    hybrid = "06" + U1[2:]
    assert _error(f"pk({hybrid})") == "pk(): Hybrid public keys are not allowed"
    assert _error(f"pk( {K1})") == f"pk(): Key ' {K1}' is invalid due to whitespace"
    assert _error(f"pk({K1.upper()[:-2]})") == f"pk(): Pubkey '{K1.upper()[:-2]}' is invalid"
    # Upper-case hex is accepted and printed in lower case.
    assert parse_one(f"pk({K1.upper()})", MAIN).to_string(checksum=False) == f"pk({K1})"
    assert _error(f"rawtr({xonly},{xonly})") == "rawtr(): only one key expected."
    assert parse_one(f"rawtr({xonly})", MAIN).script_pubkeys(0)[0].hex() == f"5120{xonly}"
    assert _error(f"pk({K1}))") == ""  # Core's (empty) message for trailing text
    assert _error(f"sh(pk({K1}),pk({K1}))") == ""
    assert _error(f"addr({K1})") == "Address is not valid"
    assert _error(f"sh(wpkh({U1}))") == "wpkh(): Uncompressed keys are not allowed"
    # A regtest tpub is not a mainnet key.
    tpub = MASTER.neuter().to_string(REGTEST)
    assert _error(f"pkh({tpub})") == f"pkh(): key '{tpub}' is not valid"
    assert parse_one(f"pkh({tpub})", REGTEST)


def test_combo_scripts() -> None:
    h = hash160(bytes.fromhex(K1)).hex()
    p2wpkh_hash = hash160(bytes.fromhex("0014" + h)).hex()
    assert [s.hex() for s in parse_one(f"combo({K1})", MAIN).script_pubkeys(0)] == [
        f"21{K1}ac",
        f"76a914{h}88ac",
        f"0014{h}",
        f"a914{p2wpkh_hash}87",
    ]
    # An uncompressed key has no segwit forms; its P2PK has no address, so one address is left.
    uncompressed = parse_one(f"combo({U1})", MAIN)
    assert [s.hex()[:4] for s in uncompressed.script_pubkeys(0)] == ["4104", "76a9"]
    assert len(uncompressed.addresses(0)) == 1


def test_taproot_trees() -> None:
    keys = _keys(4, xonly=True)
    text = f"tr({keys[0]},{{pk({keys[1]}),{{pk({keys[2]}),pk({keys[3]})}}}})"
    desc = parse_one(text, MAIN)
    assert desc.to_string(checksum=False) == text
    taproot = desc.expand(0).taproot
    assert taproot is not None and len(taproot.leaves) == 3
    # Control block lengths follow the depths 1, 2, 2.
    assert [len(c) for c in taproot.control_blocks] == [33 + 32, 33 + 64, 33 + 64]
    assert _error(f"tr({keys[0]},{{pk({keys[1]})}})") == (
        "tr(): expected ',' after script expression"
    )
    assert _error(f"tr({keys[0]},{{pk({keys[1]}),pk({keys[2]}),pk({keys[3]})}})") == (
        "tr(): expected '}' after script expression"
    )
    assert _error(f"tr({keys[0]},pk({keys[1]}),pk({keys[2]}))") == (
        "tr(): expected ')' after script expression"
    )
    assert _error(f"tr({keys[0]};pk({keys[1]}))") == (
        f"tr(): key '{keys[0]};pk({keys[1]})' is not valid"
    )
    assert _error(f"tr({keys[0]},)") == "'' is not a valid descriptor function"
    deep = f"tr({keys[0]}," + "{" * 129 + f"pk({keys[1]})"
    assert _error(deep) == "tr() supports at most 128 nesting levels"
    leaf = f"pk({keys[1]})"
    nested = leaf
    for _ in range(128):
        nested = "{" + nested + "," + leaf + "}"
    deepest = parse_one(f"tr({keys[0]},{nested})", MAIN).expand(0).taproot
    assert deepest is not None and max(len(c) for c in deepest.control_blocks) == 33 + 32 * 128
    assert _error(f"wsh(pk({keys[1]}))") == f"pk(): Pubkey '{keys[1]}' is invalid"


def test_ranged_derivation_and_expansion() -> None:
    text = f"wsh(multi(1,[deadbeef/48h]{XPUB}/0/*,{K1}))"
    desc = parse_one(text, MAIN)
    assert desc.is_range and desc.is_solvable and not desc.has_private_keys
    expansion = desc.expand(5)
    child = MASTER.derive([0, 5]).pubkey
    assert expansion.pubkeys[child] == KeyOrigin(bytes.fromhex("deadbeef"), (48 | HARDENED, 0, 5))
    assert expansion.pubkeys[bytes.fromhex(K1)] == KeyOrigin(hash160(bytes.fromhex(K1))[:4], ())
    assert expansion.secrets == {}
    assert expansion.witness_script is not None and child.hex() in expansion.witness_script.hex()
    assert expansion.redeem_script is None and expansion.taproot is None
    assert desc.script_pubkeys(5) != desc.script_pubkeys(6)
    with pytest.raises(DescriptorError, match="range position 2147483648"):
        desc.script_pubkeys(HARDENED)
    # Private: secrets come out too, and the hardened path derives.
    priv = parse_one(f"sh(wpkh({XPRV}/1h/*h))", MAIN)
    exp = priv.expand(2)
    key = MASTER.derive([1 | HARDENED, 2 | HARDENED])
    assert exp.secrets == {key.pubkey: key.secret}
    assert exp.redeem_script == b"\x00\x14" + hash160(key.pubkey)
    assert exp.pubkeys[key.pubkey] == KeyOrigin(MASTER.fingerprint, (1 | HARDENED, 2 | HARDENED))
    # Without the xprv, a hardened step cannot be derived.
    public = parse_one(priv.to_string(), MAIN)
    with pytest.raises(DescriptorError, match="Cannot derive script without private keys"):
        public.script_pubkeys(0)


def test_descriptor_info_and_checksums() -> None:
    info = descriptor_info(f"wpkh({XPRV}/<0;1>/*)", MAIN)
    assert info.descriptor == f"wpkh({XPUB}/0/*)#" + info.descriptor.split("#")[1]
    assert info.multipath_expansion == (
        parse_one(f"wpkh({XPUB}/0/*)", MAIN).to_string(),
        parse_one(f"wpkh({XPUB}/1/*)", MAIN).to_string(),
    )
    assert info.has_private_keys and info.is_range and info.is_solvable
    assert not descriptor_info("raw(00)", MAIN).is_solvable
    assert _error("raw(deadbeef)", require_checksum=True) == "Missing checksum"
    with pytest.raises(DescriptorError, match="Multipath descriptors are not allowed here"):
        parse_one(f"wpkh({XPUB}/<0;1>)", MAIN)


# -- Core's key_io vectors through addr() and pk() --------------------------------------------

KEY_IO_VALID = json.loads((DATA / "key_io_valid.json").read_text())
KEY_IO_INVALID = json.loads((DATA / "key_io_invalid.json").read_text())


def test_key_io_valid_through_descriptors() -> None:
    addresses = keys = 0
    for text, payload, meta in KEY_IO_VALID:
        params = NETWORKS[meta["chain"]]
        if meta["isPrivkey"]:
            desc = parse_one(f"pk({text})", params)
            (key,) = desc.keys
            assert key.secret(0) == bytes.fromhex(payload)
            assert desc.to_string(private=True, checksum=False) == f"pk({text})"
            assert len(key.pubkey(0)) == (33 if meta["isCompressed"] else 65)
            keys += 1
        else:
            desc = parse_one(f"addr({text})", params)
            assert desc.script_pubkeys(0) == [bytes.fromhex(payload)]
            # The canonical form is the address as Core encodes it (lower-case bech32).
            canonical = text.lower() if text.lower().startswith(params.bech32_hrp) else text
            assert desc.to_string(checksum=False) == f"addr({canonical})"
            assert not desc.is_solvable
            addresses += 1
    assert (addresses, keys) == (54, 16)


def test_key_io_invalid_through_descriptors() -> None:
    rejected = 0
    for (text,) in KEY_IO_INVALID:
        for params in NETWORKS.values():
            with pytest.raises(DescriptorError) as failure:
                parse_descriptor(f"addr({text})", params)
            assert str(failure.value) == "Address is not valid"
            with pytest.raises(DescriptorError):
                parse_descriptor(f"pk({text})", params)
            rejected += 1
    assert rejected == 70 * len(NETWORKS)
    assert TESTNET4.name in NETWORKS


# -- the miniscript hook ----------------------------------------------------------------------


def _older_hook(
    text: str, ctx: Context, parse_key: Callable[[str], list[KeyExpression]]
) -> list[ScriptExpression] | None:
    """A toy miniscript: ``after_pk(N,KEY)`` = ``<N> OP_CHECKLOCKTIMEVERIFY OP_DROP <key> OP_CHECKSIG``."""
    if not (text.startswith("after_pk(") and text.endswith(")")):
        return None
    number, _, key_text = text[9:-1].partition(",")
    keys = parse_key(key_text)

    class AfterPK(ScriptExpression):
        name = "after_pk"

        def __init__(self, key: KeyExpression) -> None:
            self.key = key

        @property
        def keys(self) -> tuple[KeyExpression, ...]:
            return (self.key,)

        def to_string(self, private: bool = False) -> str:
            return f"after_pk({number},{self.key.to_string(private)})"

        def expand(self, pos: int = 0) -> list[bytes]:
            pub = self.key.pubkey(pos)
            pub = pub[1:] if ctx is Context.P2TR else pub
            return [bytes((1, int(number))) + b"\xb1\x75" + bytes((len(pub),)) + pub + b"\xac"]

    return [AfterPK(k) for k in keys]


def test_miniscript_hook() -> None:
    text = f"wsh(after_pk(100,{XPUB}/<0;1>/*))"
    descs = parse_descriptor(text, MAIN, miniscript=_older_hook)
    assert [d.to_string(checksum=False) for d in descs] == [
        f"wsh(after_pk(100,{XPUB}/0/*))",
        f"wsh(after_pk(100,{XPUB}/1/*))",
    ]
    assert descs[0].is_range and descs[0].expand(3).witness_script is not None
    key = MASTER.derive([0, 3]).pubkey
    assert descs[0].expand(3).witness_script == b"\x01\x64\xb1\x75\x21" + key + b"\xac"
    xonly = _keys(1, xonly=True)[0]
    (tr,) = parse_descriptor(f"tr({xonly},after_pk(7,{xonly}))", MAIN, miniscript=_older_hook)
    assert tr.expand(0).taproot is not None
    assert _error(f"after_pk(1,{K1})", miniscript=_older_hook) == (
        "Miniscript expressions can only be used in wsh or tr."
    )
    assert _error(f"sh(after_pk(1,{K1}))", miniscript=_older_hook) == (
        "Miniscript expressions can only be used in wsh or tr."
    )
    # Key errors inside miniscript carry the key parser's message.
    assert _error(f"wsh(after_pk(1,{U1}))", miniscript=_older_hook) == (
        "Uncompressed keys are not allowed"
    )
    # Without the hook, the same text is not a descriptor.
    assert _error(f"wsh(after_pk(1,{K1}))") == "A function is needed within P2WSH"
