"""The PSBT and descriptor RPCs, in process against a small regtest chain."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from peercash.consensus.address import encode_wif
from peercash.consensus.crypto import pubkey_from_secret
from peercash.consensus.hashing import hash160
from peercash.consensus.params import MAIN, REGTEST, TESTNET
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import verify_input
from peercash.mining.builder import P2WSH_OP_TRUE
from peercash.rpc import psbt as rp
from peercash.rpc.client import CONVERT_PARAMS
from peercash.rpc.registry import (
    REGISTRY,
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
)
from peercash.wallet.psbt import Psbt, roles

from .test_methods import ADDRESS, make_node, node, rpc_error  # noqa: F401

DATA = Path(__file__).resolve().parents[1] / "data"
ROLES = json.loads((DATA / "psbt" / "bip174_roles.json").read_text())


class _Params:
    def __init__(self, params: Any) -> None:
        self.params = params


MAINNET = _Params(MAIN)
TESTNET_NODE = _Params(TESTNET)


def test_methods_registered_with_cli_conversions() -> None:
    names = {
        "createpsbt", "decodepsbt", "combinepsbt", "finalizepsbt", "analyzepsbt",
        "utxoupdatepsbt", "joinpsbts", "converttopsbt", "descriptorprocesspsbt",
        "getdescriptorinfo", "deriveaddresses", "createmultisig",
    }  # fmt: skip
    assert names <= set(REGISTRY.methods)
    for entry in [
        ("combinepsbt", 0, "txs"),
        ("joinpsbts", 0, "txs"),
        ("finalizepsbt", 1, "extract"),
        ("utxoupdatepsbt", 1, "descriptors"),
        ("descriptorprocesspsbt", 1, "descriptors"),
        ("descriptorprocesspsbt", 3, "bip32derivs"),
        ("descriptorprocesspsbt", 4, "finalize"),
        ("converttopsbt", 1, "permitsigdata"),
    ]:
        assert entry in CONVERT_PARAMS


def test_createpsbt_is_the_bip174_creator() -> None:
    c = ROLES["creator"]
    inputs = [{"txid": t, "vout": n, "sequence": 0xFFFFFFFF} for t, n in c["inputs"]]
    outputs = [{rp.script_address(bytes.fromhex(s), TESTNET): Decimal(a)} for s, a in c["outputs"]]
    assert rp.createpsbt(TESTNET_NODE, inputs, outputs) == c["psbt"]  # type: ignore[arg-type]
    v2 = Psbt.from_base64(rp.createpsbt(TESTNET_NODE, inputs, outputs, 0, None, 2, 2))  # type: ignore[arg-type]
    assert v2.version == 2 and v2.compute_unsigned_tx() == Psbt.from_base64(c["psbt"]).tx


def test_combine_finalize_extract_the_bip174_way() -> None:
    n = TESTNET_NODE
    combined = rp.combinepsbt(n, [ROLES["signer1"]["psbt"], ROLES["signer2"]["psbt"]])  # type: ignore[arg-type]
    assert combined == ROLES["combiner"]
    assert rp.finalizepsbt(n, combined, False) == {"psbt": ROLES["finalizer"], "complete": True}  # type: ignore[arg-type]
    assert rp.finalizepsbt(n, combined) == {"hex": ROLES["extractor_tx"], "complete": True}  # type: ignore[arg-type]
    partial = rp.finalizepsbt(n, ROLES["signer1"]["psbt"])  # type: ignore[arg-type]
    assert partial == {"psbt": ROLES["signer1"]["psbt"], "complete": False}
    rpc_error(RPC_INVALID_PARAMETER, rp.combinepsbt, n, [], match="Parameter 'txs' cannot be empty")
    other = ROLES["unknown_combine"]["a"]
    rpc_error(
        RPC_INVALID_PARAMETER, rp.combinepsbt, n, [combined, other],
        match="PSBTs not compatible (different transactions)",
    )  # fmt: skip


def test_decodepsbt_fields() -> None:
    n = TESTNET_NODE
    d = rp.decodepsbt(n, ROLES["signer1"]["psbt"])  # type: ignore[arg-type]
    assert list(d) == [
        "tx", "global_xpubs", "psbt_version", "proprietary", "unknown", "inputs", "outputs", "fee",
    ]  # fmt: skip
    assert d["psbt_version"] == 0 and d["global_xpubs"] == [] and d["unknown"] == {}
    unsigned = Psbt.from_base64(ROLES["creator"]["psbt"]).tx
    assert unsigned is not None and d["tx"]["txid"] == unsigned.txid_hex
    first, second = d["inputs"]
    assert list(first) == [
        "non_witness_utxo", "partial_signatures", "sighash", "redeem_script", "bip32_derivs",
    ]  # fmt: skip
    assert first["sighash"] == "ALL"
    assert first["redeem_script"]["type"] == "multisig"
    assert first["bip32_derivs"][0]["path"] == "m/0h/0h/0h"
    assert first["bip32_derivs"][0]["master_fingerprint"] == "d90c6a4f"
    assert second["witness_utxo"]["amount"] == Decimal("2.00000000")
    assert second["witness_script"]["type"] == "multisig"
    # 1.5 + 1 BTC in, 1.4999 + 1 out
    assert d["fee"] == Decimal("0.00010000")
    done = rp.decodepsbt(n, ROLES["finalizer"])  # type: ignore[arg-type]
    assert list(done["inputs"][1]) == ["witness_utxo", "final_scriptSig", "final_scriptwitness"]
    rpc_error(RPC_DESERIALIZATION_ERROR, rp.decodepsbt, n, "cHNidP8=", match="TX decode failed")
    err = rpc_error(RPC_DESERIALIZATION_ERROR, rp.decodepsbt, n, "AAAA")
    assert err.message == "TX decode failed Invalid PSBT magic bytes"


def test_decodepsbt_taproot_and_v2() -> None:
    n = TESTNET_NODE
    cases = json.loads((DATA / "psbt" / "bip371_cases.json").read_text())["cases"]
    valid = [c for c in cases if c["section"] == "valid"]
    d = rp.decodepsbt(n, valid[5]["base64"])  # type: ignore[arg-type]
    inp = d["inputs"][0]
    assert len(inp["taproot_scripts"]) == 3 and len(inp["taproot_script_path_sigs"]) == 3
    assert {"taproot_internal_key", "taproot_merkle_root", "taproot_bip32_derivs"} <= set(inp)
    tree = rp.decodepsbt(n, valid[4]["base64"])["outputs"][0]["taproot_tree"]  # type: ignore[arg-type]
    assert [leaf["depth"] for leaf in tree] == [2, 2, 1]
    v2cases = json.loads((DATA / "psbt" / "bip370_cases.json").read_text())["cases"]
    v2 = rp.decodepsbt(n, [c for c in v2cases if c["section"] == "valid"][-1]["base64"])  # type: ignore[arg-type]
    assert v2["psbt_version"] == 2 and v2["input_count"] == 1 and v2["output_count"] == 2
    assert "previous_txid" in v2["inputs"][0] and "amount" in v2["outputs"][0]


def test_analyzepsbt_bip174_steps() -> None:
    n = TESTNET_NODE
    created = rp.analyzepsbt(n, ROLES["creator"]["psbt"])  # type: ignore[arg-type]
    assert created["next"] == "updater" and "fee" not in created
    assert created["inputs"][0] == {"has_utxo": False, "is_final": False, "next": "updater"}
    updated = rp.analyzepsbt(n, ROLES["updater_sighash_all"])  # type: ignore[arg-type]
    assert updated["next"] == "signer"
    assert updated["fee"] == Decimal("0.00010000")
    keys = [bytes.fromhex(k) for k, _ in ROLES["updater"]["keys"]]
    assert updated["inputs"][0]["missing"] == {"signatures": [hash160(k).hex() for k in keys[:2]]}
    assert updated["inputs"][1]["missing"] == {"signatures": [hash160(k).hex() for k in keys[2:4]]}
    combined = rp.analyzepsbt(n, ROLES["combiner"])  # type: ignore[arg-type]
    assert combined["next"] == "finalizer" and "estimated_vsize" in combined
    final = rp.analyzepsbt(n, ROLES["finalizer"])  # type: ignore[arg-type]
    assert final["next"] == "extractor"
    tx = Tx.from_hex(ROLES["extractor_tx"])
    assert final["estimated_vsize"] == tx.vsize()
    assert final["estimated_feerate"] == (
        Decimal(10_000 * 1000 // tx.vsize()) / 100_000_000
    ).quantize(Decimal("0.00000001"))


def test_converttopsbt_and_joinpsbts() -> None:
    n = TESTNET_NODE
    tx = Tx.from_hex(ROLES["extractor_tx"])
    rpc_error(
        RPC_DESERIALIZATION_ERROR, rp.converttopsbt, n, tx.serialize().hex(),
        match="Inputs must not have scriptSigs and scriptWitnesses",
    )  # fmt: skip
    assert rp.converttopsbt(n, tx.serialize().hex(), True) == ROLES["creator"]["psbt"]  # type: ignore[arg-type]
    rpc_error(RPC_DESERIALIZATION_ERROR, rp.converttopsbt, n, "zz", match="TX decode failed")
    a = roles.create([TxIn(OutPoint(b"\x01" * 32, 0))], [TxOut(1, b"\x51")]).to_base64()
    b = roles.create([TxIn(OutPoint(b"\x02" * 32, 1))], [TxOut(2, b"\x52"), TxOut(3, b"\x53")])
    joined = Psbt.from_base64(rp.joinpsbts(n, [a, b.to_base64()]))  # type: ignore[arg-type]
    assert joined.tx is not None
    assert {i.prevout for i in joined.tx.inputs} == {
        OutPoint(b"\x01" * 32, 0),
        OutPoint(b"\x02" * 32, 1),
    }
    assert sorted(o.value for o in joined.tx.outputs) == [1, 2, 3]
    rpc_error(RPC_INVALID_PARAMETER, rp.joinpsbts, n, [a], match="At least two PSBTs are required")
    rpc_error(RPC_INVALID_PARAMETER, rp.joinpsbts, n, [a, a], match="exists in multiple PSBTs")


SECRET = bytes(range(1, 33))
PUB = pubkey_from_secret(SECRET)


def _funded(spk: bytes, value: int = 100_000) -> tuple[Psbt, TxOut]:
    utxo = TxOut(value, spk)
    psbt = roles.create([TxIn(OutPoint(b"\x09" * 32, 0))], [TxOut(value - 1000, P2WSH_OP_TRUE)])
    psbt.inputs[0].witness_utxo = utxo
    return psbt, utxo


def _verifies(hex_tx: str, utxo: TxOut) -> bool:
    tx = Tx.from_hex(hex_tx)
    return verify_input(tx, 0, [utxo], STANDARD_SCRIPT_VERIFY_FLAGS) is ScriptError.OK


def test_descriptorprocesspsbt_signs_wpkh_and_tr() -> None:
    n = _Params(REGTEST)
    wif = encode_wif(SECRET, True, REGTEST)
    psbt, utxo = _funded(b"\x00\x14" + hash160(PUB))
    result = rp.descriptorprocesspsbt(n, psbt.to_base64(), [f"wpkh({wif})"])  # type: ignore[arg-type]
    assert result["complete"] is True and _verifies(result["hex"], utxo)
    # taproot key path from a ranged xprv descriptor, position 3
    from peercash.wallet.bip32 import ExtendedKey
    from peercash.wallet.descriptor import parse_one

    xprv = ExtendedKey.from_seed(b"\x07" * 32).to_string(REGTEST)
    desc = parse_one(f"tr({xprv}/86h/1h/0h/0/*)", REGTEST)
    spk = desc.script_pubkeys(3)[0]
    psbt, utxo = _funded(spk)
    unsigned = psbt.to_base64()
    short = rp.descriptorprocesspsbt(n, unsigned, [{"desc": desc.to_string(True), "range": 2}])  # type: ignore[arg-type]
    assert short["complete"] is False and "hex" not in short
    result = rp.descriptorprocesspsbt(
        n, unsigned, [{"desc": desc.to_string(True), "range": [0, 5]}]
    )  # type: ignore[arg-type]
    assert result["complete"] is True and _verifies(result["hex"], utxo)
    signed_only = rp.descriptorprocesspsbt(
        n, unsigned, [{"desc": desc.to_string(True), "range": [3, 3]}], "ALL", True, False
    )  # type: ignore[arg-type]
    assert signed_only["complete"] is False
    d = rp.decodepsbt(n, signed_only["psbt"])  # type: ignore[arg-type]
    assert len(bytes.fromhex(d["inputs"][0]["taproot_key_path_sig"])) == 65
    assert d["inputs"][0]["taproot_bip32_derivs"][0]["path"] == "m/86h/1h/0h/0/3"
    rpc_error(RPC_INVALID_PARAMETER, rp.descriptorprocesspsbt, n, unsigned, [], "EVERYTHING",
              match="'EVERYTHING' is not a valid sighash parameter.")  # fmt: skip


def test_utxoupdatepsbt_from_the_utxo_set(node: Any) -> None:  # noqa: F811
    from peercash.rpc import blockchain as bc

    cb = bc.getblock(node, node.hashes[0], 2)["tx"][0]
    prevout = {"txid": cb["txid"], "vout": 0}
    created = rp.createpsbt(node, [prevout], [{ADDRESS: Decimal("1")}])
    assert "witness_utxo" not in rp.decodepsbt(node, created)["inputs"][0]
    updated = rp.utxoupdatepsbt(node, created)
    decoded = rp.decodepsbt(node, updated)
    assert decoded["inputs"][0]["witness_utxo"]["scriptPubKey"]["hex"] == P2WSH_OP_TRUE.hex()
    assert decoded["fee"] == Decimal(str(cb["vout"][0]["value"])) - Decimal("1")
    missing = rp.createpsbt(node, [{"txid": "ab" * 32, "vout": 0}], [{ADDRESS: Decimal("1")}])
    assert rp.utxoupdatepsbt(node, missing) == missing
    # descriptors add what the updater knows about the outputs too
    from peercash.wallet.bip32 import ExtendedKey

    xpub = ExtendedKey.from_seed(b"\x04" * 32).neuter().to_string(REGTEST)
    desc = rp.getdescriptorinfo(node, f"wpkh({xpub}/0/*)")["descriptor"]
    address = rp.deriveaddresses(node, desc, [2, 2])[0]
    to_desc = rp.createpsbt(node, [prevout], [{address: Decimal("1")}])
    updated = rp.utxoupdatepsbt(node, to_desc, [{"desc": desc, "range": 3}])
    derivs = rp.decodepsbt(node, updated)["outputs"][0]["bip32_derivs"]
    assert [d["path"] for d in derivs] == ["m/0/2"]
    rpc_error(RPC_INVALID_PARAMETER, rp.utxoupdatepsbt, node, to_desc, [{"desc": desc, "range": [3, 1]}],
              match="Range specified as [begin,end] must not have begin after end")  # fmt: skip


def test_getdescriptorinfo_and_deriveaddresses() -> None:
    n = MAINNET
    desc = "wsh(multi(2,03a0434d9e47f3c86235477c7b1ae6ae5d3442d49b1943c2b752a68e2a47e247c7,03774ae7f858a9411e5ef4246b70c65aac5649980be5c17891bbec17895da008cb,03d01115d548e7561b15c38f004d734633687cf4419620095bc5b0f47070afe85a))"
    info = rp.getdescriptorinfo(n, desc)  # type: ignore[arg-type]
    assert info == {
        "descriptor": desc + "#en3tu306",
        "checksum": "en3tu306",
        "isrange": False,
        "issolvable": True,
        "hasprivatekeys": False,
    }
    assert rp.deriveaddresses(n, desc + "#en3tu306") == [  # type: ignore[arg-type]
        "bc1qwu7hp9vckakyuw6htsy244qxtztrlyez4l7qlrpg68v6drgvj39qn4zazc"
    ]
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, rp.deriveaddresses, n, desc, match="Missing checksum")
    rpc_error(RPC_INVALID_PARAMETER, rp.deriveaddresses, n, desc + "#en3tu306", 2,
              match="Range should not be specified for an un-ranged descriptor")  # fmt: skip
    # BIP32 test vector 1's master key: wpkh(xpub/0/*) at 0..2
    xpub = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
    ranged = rp.getdescriptorinfo(n, f"wpkh({xpub}/0/*)")  # type: ignore[arg-type]
    assert ranged["isrange"] is True
    addrs = rp.deriveaddresses(n, ranged["descriptor"], [0, 2])  # type: ignore[arg-type]
    assert len(addrs) == 3 and len(set(addrs)) == 3 and all(a.startswith("bc1q") for a in addrs)
    assert rp.deriveaddresses(n, ranged["descriptor"], 1) == addrs[:2]  # type: ignore[arg-type]
    rpc_error(RPC_INVALID_PARAMETER, rp.deriveaddresses, n, ranged["descriptor"],
              match="Range must be specified for a ranged descriptor")  # fmt: skip


def test_createmultisig() -> None:
    keys = [
        "022f01e5e15cca351daff3843fb70f3c2f0a1bdd05e5af888a67784ef3e10a2a01",
        "03acd484e2f0c7f65309ad178a9f559abde09796974c57e714c35f110dfc27ccbe",
    ]
    legacy = rp.createmultisig(MAINNET, 2, keys)  # type: ignore[arg-type]
    assert legacy["address"] == "3GtEB3yg3r5de2cDJG48SkQwxfxJumKQdN"
    assert legacy["descriptor"] == f"sh(multi(2,{keys[0]},{keys[1]}))#y9zthqta"
    assert legacy["redeemScript"] == "52" + "21" + keys[0] + "21" + keys[1] + "52ae"
    bech32 = rp.createmultisig(MAINNET, 2, keys, "bech32")  # type: ignore[arg-type]
    assert bech32["address"].startswith("bc1q") and bech32["descriptor"].startswith("wsh(multi(2,")
    nested = rp.createmultisig(MAINNET, 1, keys, "p2sh-segwit")  # type: ignore[arg-type]
    assert nested["address"].startswith("3") and nested["descriptor"].startswith("sh(wsh(")
    rpc_error(RPC_INVALID_PARAMETER, rp.createmultisig, MAINNET, 3, keys,
              match="not enough keys supplied (got 2 keys, but need at least 3 to redeem)")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, rp.createmultisig, MAINNET, 0, keys,
              match="a multisignature address must require at least one key to redeem")  # fmt: skip
    rpc_error(
        RPC_INVALID_ADDRESS_OR_KEY,
        rp.createmultisig,
        MAINNET,
        1,
        ["zz"],
        match="must be a hex string",
    )
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, rp.createmultisig, MAINNET, 1, keys, "bech32m",
              match="createmultisig cannot create bech32m multisig addresses")  # fmt: skip
    uncompressed = pubkey_from_secret(SECRET, compressed=False).hex()
    warned = rp.createmultisig(MAINNET, 1, [uncompressed], "bech32")  # type: ignore[arg-type]
    assert warned["address"].startswith("3") and len(warned["warnings"]) == 1


def test_decodepsbt_base64_of_every_valid_vector_works() -> None:
    checked = 0
    for name in ("bip174_cases", "bip370_cases", "bip371_cases"):
        for case in json.loads((DATA / "psbt" / f"{name}.json").read_text())["cases"]:
            if case["section"] == "invalid":
                continue
            if case["section"] == "locktime:none":
                rpc_error(RPC_DESERIALIZATION_ERROR, rp.decodepsbt, TESTNET_NODE, case["base64"])
            else:
                assert rp.decodepsbt(TESTNET_NODE, case["base64"])["inputs"] is not None  # type: ignore[arg-type]
            checked += 1
    assert checked == 43
