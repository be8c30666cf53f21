"""Taproot construction and key-path signing against the BIP341 wallet vectors, and the taproot
constants against data: the vectors' control blocks and Core's generated spends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.crypto import sign_schnorr, verify_schnorr, xonly_from_secret
from peercash.consensus.hashing import tagged_hash
from peercash.consensus.primitives import Tx, TxOut
from peercash.consensus.script import interpreter
from peercash.consensus.script.sighash import PrecomputedTxData, taproot_sighash
from peercash.consensus.script.taproot import (
    ANNEX_TAG,
    TAPROOT_CONTROL_BASE_SIZE,
    TAPROOT_CONTROL_MAX_NODE_COUNT,
    TAPROOT_CONTROL_NODE_SIZE,
    TAPROOT_LEAF_MASK,
    TAPROOT_LEAF_TAPSCRIPT,
    TapLeaf,
    compute_taproot_merkle_root,
    tapbranch_hash,
    tapleaf_hash,
    taproot_output,
    taptweak_hash,
    tweak_private_key,
    tweak_public_key,
    verify_taproot_commitment,
)
from peercash.tools.conformance import run_suite, summarize

CORE = Path(__file__).resolve().parents[1] / "data" / "core"
VECTORS = json.loads((CORE / "bip341_wallet_vectors.json").read_text())
SPK_CASES: list[dict[str, Any]] = VECTORS["scriptPubKey"]
KEY_PATH: dict[str, Any] = VECTORS["keyPathSpending"][0]


def _hex_or_none(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _leaves(tree: Any) -> list[dict[str, Any]]:
    """The vector tree's leaves, depth first, left to right."""
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [tree]
    return [leaf for sub in tree for leaf in _leaves(sub)]


def _depths(tree: Any, depth: int = 0) -> list[int]:
    """Each leaf's depth in the vector's tree, in the order of ``_leaves``."""
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [depth]
    return [d for sub in tree for d in _depths(sub, depth + 1)]


def test_control_blocks_of_the_vectors_fit_the_constants() -> None:
    """Every control block BIP341 publishes: the leaf version under TAPROOT_LEAF_MASK and the
    parity bit outside it, then the internal key (TAPROOT_CONTROL_BASE_SIZE bytes so far), then
    one TAPROOT_CONTROL_NODE_SIZE hash per level of the leaf in the vector's tree."""
    seen = 0
    for case in SPK_CASES:
        tree = case["given"]["scriptTree"]
        controls = [bytes.fromhex(c) for c in case["expected"].get("scriptPathControlBlocks", [])]
        assert len(controls) == len(_leaves(tree))
        for leaf, depth, control in zip(_leaves(tree), _depths(tree), controls):
            assert len(control) == TAPROOT_CONTROL_BASE_SIZE + depth * TAPROOT_CONTROL_NODE_SIZE
            assert control[1:TAPROOT_CONTROL_BASE_SIZE].hex() == case["given"]["internalPubkey"]
            assert control[0] & TAPROOT_LEAF_MASK == leaf["leafVersion"]
            assert control[0] & ~TAPROOT_LEAF_MASK in (0, 1)
            seen += 1
    assert seen == 12  # leaves in the seven trees: 0, 1, 1, 2, 2, 3, 3 (depths 0 to 2)
    versions = {
        leaf["leafVersion"] for case in SPK_CASES for leaf in _leaves(case["given"]["scriptTree"])
    }
    assert TAPROOT_LEAF_TAPSCRIPT in versions and len(versions) == 2


def test_the_interpreter_uses_the_same_constants() -> None:
    assert interpreter.ANNEX_TAG == ANNEX_TAG
    assert interpreter.TAPROOT_LEAF_MASK == TAPROOT_LEAF_MASK
    assert interpreter.TAPROOT_LEAF_TAPSCRIPT == TAPROOT_LEAF_TAPSCRIPT
    assert interpreter.TAPROOT_CONTROL_BASE_SIZE == TAPROOT_CONTROL_BASE_SIZE
    assert interpreter.TAPROOT_CONTROL_NODE_SIZE == TAPROOT_CONTROL_NODE_SIZE
    assert interpreter.TAPROOT_CONTROL_MAX_SIZE == (
        TAPROOT_CONTROL_BASE_SIZE + TAPROOT_CONTROL_NODE_SIZE * TAPROOT_CONTROL_MAX_NODE_COUNT
    )


def _has_annex(spend: dict[str, Any]) -> bool:
    witness = spend["witness"]
    return len(witness) >= 2 and witness[-1][:2] == f"{ANNEX_TAG:02x}"


def test_core_spends_that_depend_on_the_constants(tmp_path: Path) -> None:
    """Spends made by Core's feature_taproot.py (core/script_assets_test.json) where the constants
    decide the outcome: control blocks of 33 to 4,129 bytes (a leaf 128 levels deep, the most
    TAPROOT_CONTROL_MAX_NODE_COUNT allows) and ones padded or truncated to a wrong size
    (``spendpath/*``), spends carrying an annex, and leaves of every unknown version, valid
    whatever they hold (``unkver/*``: the version bits under TAPROOT_LEAF_MASK are not
    TAPROOT_LEAF_TAPSCRIPT). All must pass, under every consensus flag set Core tries."""
    cases = json.loads((CORE / "script_assets_test.json").read_text())
    chosen = [
        case
        for case in cases
        if case["comment"].startswith(("spendpath/", "unkver/"))
        or any(_has_annex(case[k]) for k in ("success", "failure") if k in case)
    ]
    groups = {
        "spendpath": sum(c["comment"].startswith("spendpath/") for c in chosen),
        "unkver": sum(c["comment"].startswith("unkver/") for c in chosen),
        "annex": sum(_has_annex(c["success"]) for c in chosen),
    }
    assert groups == {"spendpath": 10, "unkver": 756, "annex": 58}, groups
    control_sizes = {
        len(c["success"]["witness"][-1]) // 2
        for c in chosen
        if c["comment"].startswith("spendpath")
    }
    assert control_sizes == {33, 33 + 32 * 128}
    path = tmp_path / "assets.json"
    path.write_text(json.dumps(chosen))
    results = run_suite("script-assets", path)
    assert summarize(results) == f"{len(chosen)} passed, 0 failed", [
        (r.description, r.expected, r.got, r.detail) for r in results if not r.passed
    ][:5]


def test_vector_counts() -> None:
    assert len(SPK_CASES) == 7
    assert len(KEY_PATH["inputSpending"]) == 7


@pytest.mark.parametrize("case", SPK_CASES, ids=[f"spk{i}" for i in range(len(SPK_CASES))])
def test_script_pubkey_vectors(case: dict[str, Any]) -> None:
    given, inter, expected = case["given"], case["intermediary"], case["expected"]
    internal = bytes.fromhex(given["internalPubkey"])
    tree = given["scriptTree"]
    leaves = _leaves(tree)

    # The primitives one by one.
    leaf_hashes = [
        tapleaf_hash(leaf["leafVersion"], bytes.fromhex(leaf["script"])) for leaf in leaves
    ]
    assert [h.hex() for h in leaf_hashes] == inter.get("leafHashes", [])
    merkle_root = _hex_or_none(inter["merkleRoot"])
    assert taptweak_hash(internal, merkle_root).hex() == inter["tweak"]
    output_key, parity = tweak_public_key(internal, merkle_root)
    assert output_key.hex() == inter["tweakedPubkey"]

    # The builder in one go.
    out = taproot_output(internal, tree)
    assert out.merkle_root == merkle_root
    assert out.tweak.hex() == inter["tweak"]
    assert out.output_key == output_key
    assert out.parity == parity
    assert out.script_pubkey.hex() == expected["scriptPubKey"]
    assert list(out.leaf_hashes) == leaf_hashes
    controls = expected.get("scriptPathControlBlocks", [])
    assert [c.hex() for c in out.control_blocks] == controls

    # Every control block proves its leaf, and no single flipped bit survives.
    for leaf, leaf_hash, control_hex in zip(leaves, leaf_hashes, controls):
        control = bytes.fromhex(control_hex)
        assert control[0] & TAPROOT_LEAF_MASK == leaf["leafVersion"]
        assert control[0] & 1 == parity
        assert compute_taproot_merkle_root(control, leaf_hash) == merkle_root
        assert verify_taproot_commitment(control, output_key, leaf_hash)
        assert out.control_block_for(bytes.fromhex(leaf["script"]), leaf["leafVersion"]) == control
        for bit in [0, 8, 9, 100, 8 * 32 + 7, *range(8 * 33, 8 * len(control), 61)]:
            flipped = bytearray(control)
            flipped[bit // 8] ^= 1 << (bit % 8)
            assert not verify_taproot_commitment(bytes(flipped), output_key, leaf_hash), bit
        # Nor a different leaf, nor a different output key.
        other_leaf = tapleaf_hash(leaf["leafVersion"], bytes.fromhex(leaf["script"]) + b"\x51")
        assert not verify_taproot_commitment(control, output_key, other_leaf)
        wrong_key = bytes([output_key[0] ^ 1]) + output_key[1:]
        assert not verify_taproot_commitment(control, wrong_key, leaf_hash)


def test_tree_builder_accepts_tapleaf_objects() -> None:
    case = SPK_CASES[5]
    tree = case["given"]["scriptTree"]

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            return TapLeaf(bytes.fromhex(node["script"]), node["leafVersion"])
        return tuple(convert(n) for n in node)

    internal = bytes.fromhex(case["given"]["internalPubkey"])
    assert taproot_output(internal, convert(tree)) == taproot_output(internal, tree)


def test_tree_builder_rejects_bad_input() -> None:
    internal = bytes.fromhex(SPK_CASES[0]["given"]["internalPubkey"])
    with pytest.raises(ValueError):
        taproot_output(internal, [TapLeaf(b"\x51")])  # a branch needs two children
    with pytest.raises(ValueError):
        taproot_output(internal, TapLeaf(b"\x51", 0xC1))  # odd leaf version
    with pytest.raises(ValueError):
        taproot_output(internal, TapLeaf(b"\x51", ANNEX_TAG))
    with pytest.raises(ValueError):
        taproot_output(internal[:31], None)
    deep: Any = TapLeaf(b"\x51")
    for _ in range(128):
        deep = [deep, TapLeaf(b"\x52")]
    assert len(taproot_output(internal, deep).control_blocks[0]) == 33 + 32 * 128
    with pytest.raises(ValueError):
        taproot_output(internal, [deep, TapLeaf(b"\x53")])


def test_commitment_rejects_malformed_sizes() -> None:
    case = SPK_CASES[3]
    control = bytes.fromhex(case["expected"]["scriptPathControlBlocks"][0])
    program = bytes.fromhex(case["intermediary"]["tweakedPubkey"])
    leaf = bytes.fromhex(case["intermediary"]["leafHashes"][0])
    assert verify_taproot_commitment(control, program, leaf)
    assert not verify_taproot_commitment(control[:-1], program, leaf)
    assert not verify_taproot_commitment(control + b"\x00", program, leaf)
    assert not verify_taproot_commitment(control[:32], program, leaf)
    assert not verify_taproot_commitment(control, program[:31], leaf)
    with pytest.raises(ValueError):
        compute_taproot_merkle_root(control[:-1], leaf)


def test_tapbranch_is_order_independent() -> None:
    a, b = bytes(range(32)), bytes(range(1, 33))
    assert tapbranch_hash(a, b) == tapbranch_hash(b, a) == tagged_hash("TapBranch", a + b)


# -- key-path spending ------------------------------------------------------------------------


def _key_path_setup() -> tuple[Tx, list[TxOut], PrecomputedTxData]:
    given = KEY_PATH["given"]
    tx = Tx.from_hex(given["rawUnsignedTx"])
    spent = [TxOut(u["amountSats"], bytes.fromhex(u["scriptPubKey"])) for u in given["utxosSpent"]]
    return tx, spent, PrecomputedTxData(tx, spent)


def test_key_path_intermediary_hashes() -> None:
    _, _, cache = _key_path_setup()
    inter = KEY_PATH["intermediary"]
    assert cache.sha_amounts.hex() == inter["hashAmounts"]
    assert cache.sha_outputs.hex() == inter["hashOutputs"]
    assert cache.sha_prevouts.hex() == inter["hashPrevouts"]
    assert cache.sha_scriptpubkeys.hex() == inter["hashScriptPubkeys"]
    assert cache.sha_sequences.hex() == inter["hashSequences"]


@pytest.mark.parametrize(
    "spend",
    KEY_PATH["inputSpending"],
    ids=[f"input{s['given']['txinIndex']}" for s in KEY_PATH["inputSpending"]],
)
def test_key_path_input(spend: dict[str, Any]) -> None:
    tx, spent, cache = _key_path_setup()
    given, inter = spend["given"], spend["intermediary"]
    index = given["txinIndex"]
    hash_type = given["hashType"]
    secret = bytes.fromhex(given["internalPrivkey"])
    merkle_root = _hex_or_none(given["merkleRoot"])

    internal = xonly_from_secret(secret)
    assert internal.hex() == inter["internalPubkey"]
    assert taptweak_hash(internal, merkle_root).hex() == inter["tweak"]
    tweaked_secret = tweak_private_key(secret, merkle_root)
    assert tweaked_secret.hex() == inter["tweakedPrivkey"]
    output_key = spent[index].script_pubkey[2:]
    assert xonly_from_secret(tweaked_secret) == output_key
    assert tweak_public_key(internal, merkle_root)[0] == output_key

    digest = taproot_sighash(tx, index, hash_type, cache, 0, None)
    assert digest is not None
    assert digest.hex() == inter["sigHash"]
    assert tagged_hash("TapSighash", bytes.fromhex(inter["sigMsg"])) == digest

    (witness_hex,) = spend["expected"]["witness"]
    witness = bytes.fromhex(witness_hex)
    expected_sig = witness[:64]
    assert witness[64:] == (b"" if hash_type == 0 else bytes([hash_type]))
    assert verify_schnorr(output_key, expected_sig, digest)
    # The vectors are signed with aux_rand = 32 zero bytes.
    assert sign_schnorr(tweaked_secret, digest, bytes(32)) == expected_sig
    assert sign_schnorr(tweaked_secret, digest) == expected_sig


def test_key_path_fully_signed_tx() -> None:
    tx, _, _ = _key_path_setup()
    signed = Tx.from_hex(KEY_PATH["auxiliary"]["fullySignedTx"])
    # Same spends and outputs (input 2 is a P2PKH spend, so the scriptSigs and txid differ).
    assert [i.prevout for i in signed.inputs] == [i.prevout for i in tx.inputs]
    assert signed.outputs == tx.outputs
    for spend in KEY_PATH["inputSpending"]:
        index = spend["given"]["txinIndex"]
        expected = tuple(bytes.fromhex(w) for w in spend["expected"]["witness"])
        assert signed.inputs[index].witness == expected
