"""Descriptors against the test vectors of BIPs 380–387 and 389 (extracted into
tests/data/bips/descriptors by tests/tools/extract_bip_descriptor_vectors.py) and the scriptPubKey
part of the BIP341 wallet vectors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.address import script_to_address
from peercash.consensus.params import MAIN
from peercash.wallet.descriptor import (
    Context,
    DescriptorError,
    KeyExpression,
    ScriptExpression,
    parse_descriptor,
)
from peercash.wallet.descriptor.scripts import TRExpr

DATA = Path(__file__).resolve().parents[2] / "data"
BIPS = DATA / "bips" / "descriptors"


def _bip(number: int) -> Any:
    return json.loads((BIPS / f"bip-0{number}.json").read_text())


# BIP380's checksum cases, by description: the error Core gives (None: valid).
CHECKSUM_CASES = {
    "Valid checksum": None,
    "No checksum": None,
    "Missing checksum": "Expected 8 character checksum, not 0 characters",
    "Too long checksum (9 chars)": "Expected 8 character checksum, not 9 characters",
    "Too short checksum (7 chars)": "Expected 8 character checksum, not 7 characters",
    "Error in payload": "Provided checksum '89f8spxm' does not match computed checksum 'xj8ljs75'",
    "Error in checksum": "Multiple '#' symbols",
    "Invalid characters in payload": "Invalid characters in payload",
}

# BIP380's invalid key expressions (inside pk()), by position: Core's message.
KEY_ERRORS = [
    "pk(): Key path value '*' is not a valid uint32",
    "pk(): Key path value '' is not a valid uint32",
    "pk(): Fingerprint is not 4 bytes (7 characters instead of 8 characters)",
    "pk(): Fingerprint is not 4 bytes (9 characters instead of 8 characters)",
    "pk(): Key path value '0f' is not a valid uint32",
    "pk(): Key path value '-0' is not a valid uint32",
    "pk(): Key path value '0H' is not a valid uint32",
    "pk(): Key path value '3H' is not a valid uint32",
    "pk(): key 'L4rK1yDtCWekvXuE6oXD9jCYfFNV2cWRpVuPLBcCU2z8TrisoyY1' is not valid",
    "pk(): key 'L4rK1yDtCWekvXuE6oXD9jCYfFNV2cWRpVuPLBcCU2z8TrisoyY1' is not valid",
    "pk(): Key path value 2147483648 is out of range",
    "pk(): Key path value '1aa' is not a valid uint32",
    "pk(): Multiple ']' characters found for a single pubkey",
    "pk(): Key origin start '[ character expected but not found, got 'a' instead",
    "pk(): Fingerprint 'gaaaaaaa' is not hex",
    "pk(): No key provided",
]


def test_bip380_checksums_and_key_expressions() -> None:
    data = _bip(380)
    checksum = [c for c in data["valid"] if c["description"] in CHECKSUM_CASES]
    keys = [c for c in data["valid"] if c["description"] not in CHECKSUM_CASES]
    for case in checksum:
        expected = CHECKSUM_CASES[case["description"]]
        if expected is None:
            (desc,) = parse_descriptor(case["descriptor"], MAIN)
            assert desc.to_string() == "raw(deadbeef)#89f8spxm"
        else:
            with pytest.raises(DescriptorError) as failure:
                parse_descriptor(case["descriptor"], MAIN)
            assert str(failure.value) == expected
    for case in keys:
        (desc,) = parse_descriptor(f"pk({case['descriptor']})", MAIN)
        (key,) = desc.keys
        # Hardened steps below an xpub cannot be derived without the private key.
        if "xpub" in case["descriptor"] and "h/" in case["descriptor"].split("]")[-1]:
            with pytest.raises(DescriptorError, match="Cannot derive script"):
                desc.script_pubkeys(0)
        else:
            assert len(desc.script_pubkeys(0)[0]) in (35, 67)
        assert key.is_range is case["descriptor"].endswith(("*", "*h"))
    for case, expected in zip(data["invalid"], KEY_ERRORS, strict=True):
        with pytest.raises(DescriptorError) as failure:
            parse_descriptor(f"pk({case['descriptor']})", MAIN)
        assert str(failure.value) == expected, case["description"]
    assert (len(checksum), len(keys), len(data["invalid"])) == (8, 21, 16)


# Core's messages for the invalid descriptors of BIPs 381–387 and 389, in file order.
INVALID = {
    381: [
        "pk(): key 'pk(03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd)' is not valid",
        "pkh(): key 'pk(03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd)' is not valid",
        "A function is needed within P2SH",
        "Can only have sh() at top level",
    ],
    382: [
        *["wpkh(): Uncompressed keys are not allowed"] * 4,
        *["pk(): Uncompressed keys are not allowed"] * 2,
        "Can only have wpkh() at top level or inside sh()",
        *["Can only have wsh() at top level or inside sh()"] * 2,
        "wpkh(): key 'wsh(pkh(03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd))' "
        "is not valid",
        "A function is needed within P2WSH",
    ],
    383: [
        "P2SH script is too large, 547 bytes is larger than 520 bytes",
        "Multi threshold 'a' is not valid",
        "Multisig threshold cannot be 0, must be at least 1",
        "Multisig threshold cannot be larger than the number of keys; threshold is 3 but only 2 "
        "keys specified",
    ],
    384: [
        "Can only have combo() at top level",
        "Can only have combo() at top level",
        "combo(): key 'pkh(03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd)' "
        "is not valid",
    ],
    385: [
        "Raw script is not hex",
        "Address is not valid",
        "Can only have raw() at top level",
        "Can only have raw() at top level",
        "Can only have addr() at top level",
        "Can only have addr() at top level",
    ],
    386: [
        "tr(): Uncompressed keys are not allowed",
        "tr(): Uncompressed keys are not allowed",
        "Can only have tr at top level",
        "Can only have tr at top level",
    ],
    387: [
        *["Can only have multi_a/sortedmulti_a inside tr()"] * 3,
        "Multi threshold 'a' is not valid",
        "Multisig threshold cannot be 0, must be at least 1",
        # The BIP's "threshold larger than keys" case also holds an uncompressed key, which
        # Core reports first.
        *["Multi: Uncompressed keys are not allowed"] * 2,
    ],
    389: [
        "pkh(): Multiple multipath key path specifiers found",
        "pkh(): Key path value '<0;1>' specifies multipath in a section where multipath is not "
        "allowed",
        "tr(): Multipath subscripts have mismatched lengths",
        "multi(): Multipath derivation paths have mismatched lengths",
        "wpkh(): Multipath key path specifiers must have at least two items",
        "wpkh(): Key path value '0>' is not a valid uint32",
        "wpkh(): Key path value '<0' is not a valid uint32",
        "wpkh(): Key path value '' is not a valid uint32",
    ],
}


@pytest.mark.parametrize("number", [381, 382, 383, 384, 385, 386, 387])
def test_script_vectors(number: int) -> None:
    data = _bip(number)
    for case in data["valid"]:
        # BIP386's tr() cases have a pkh() leaf: miniscript (the parser's default hook).
        hook = number == 386
        (desc,) = parse_descriptor(case["descriptor"], MAIN, miniscript=hook)
        if case["children"]:  # BIP384's ranged combo: every script of each position
            got = [[s.hex() for s in desc.script_pubkeys(i)] for i in range(len(case["children"]))]
            assert got == case["children"]
        elif not case["items"]:
            # BIP386's pkh() leaf (miniscript) lists no script; it must at least expand.
            assert len(desc.script_pubkeys(0)) == 1 and number == 386
            assert "pkh(" in desc.to_string()
        elif desc.is_range:  # positions 0, 1, 2
            got = [desc.script_pubkeys(i)[0].hex() for i in range(len(case["items"]))]
            assert got == case["items"], case["descriptor"]
        else:  # all scripts of position 0 (several only for combo)
            assert [s.hex() for s in desc.script_pubkeys(0)] == case["items"], case["descriptor"]
        # The private string parses back to the same scripts; so does the public one, unless
        # a hardened step then lacks its private key.
        (again,) = parse_descriptor(desc.to_string(private=True), MAIN, miniscript=hook)
        assert again.script_pubkeys(0) == desc.script_pubkeys(0)
        (public,) = parse_descriptor(desc.to_string(), MAIN, miniscript=hook)
        try:
            assert public.script_pubkeys(0) == desc.script_pubkeys(0)
        except DescriptorError as error:
            assert str(error) == "Cannot derive script without private keys"
            assert desc.has_private_keys and not public.has_private_keys
    errors = INVALID[number]
    for case, expected in zip(data["invalid"], errors, strict=True):
        with pytest.raises(DescriptorError) as failure:
            parse_descriptor(case["descriptor"], MAIN)
        assert str(failure.value) == expected, case["description"]
    counts = {381: 17, 382: 12, 383: 9, 384: 4, 385: 4, 386: 6, 387: 6}
    assert len(data["valid"]) == counts[number]


def test_bip389_multipath() -> None:
    data = _bip(389)
    for case in data["valid"]:
        descs = parse_descriptor(case["descriptor"], MAIN)
        assert [d.to_string(private=True, checksum=False) for d in descs] == case["items"]
        assert len(descs) == len(case["items"]) >= 2
    for case, expected in zip(data["invalid"], INVALID[389], strict=True):
        with pytest.raises(DescriptorError) as failure:
            parse_descriptor(case["descriptor"], MAIN)
        assert str(failure.value) == expected, case["description"]
    assert (len(data["valid"]), len(data["invalid"])) == (6, 8)


# -- BIP341 wallet vectors: scriptPubKey construction ----------------------------------------

BIP341 = json.loads((DATA / "core" / "bip341_wallet_vectors.json").read_text())["scriptPubKey"]


def _raw_leaf(
    text: str, ctx: Context, parse_key: Callable[[str], list[KeyExpression]]
) -> list[ScriptExpression] | None:
    """A test-only leaf ``rawleaf(HEX)``: any tapscript, to express the BIP341 trees."""
    if not (text.startswith("rawleaf(") and text.endswith(")")):
        return None
    script = bytes.fromhex(text[8:-1])

    class RawLeaf(ScriptExpression):
        name = "rawleaf"

        def to_string(self, private: bool = False) -> str:
            return f"rawleaf({script.hex()})"

        def expand(self, pos: int = 0) -> list[bytes]:
            return [script]

    return [RawLeaf()]


def _leaf_text(leaf: dict[str, Any]) -> str | None:
    if leaf["leafVersion"] != 0xC0:
        return None  # descriptors only write tapscript (0xc0) leaves
    script = bytes.fromhex(leaf["script"])
    if len(script) == 34 and script[0] == 32 and script[-1] == 0xAC:
        return f"pk({script[1:33].hex()})"
    return f"rawleaf({script.hex()})"


def _tree_text(tree: Any) -> str | None:
    if isinstance(tree, dict):
        return _leaf_text(tree)
    left, right = (_tree_text(t) for t in tree)
    return None if left is None or right is None else "{" + left + "," + right + "}"


def test_bip341_script_pubkeys() -> None:
    checked = 0
    for case in BIP341:
        given, expected = case["given"], case["expected"]
        tree = given["scriptTree"]
        text = f"tr({given['internalPubkey']}"
        if tree is not None:
            tree_text = _tree_text(tree)
            if tree_text is None:
                continue
            text += "," + tree_text
        text += ")"
        (desc,) = parse_descriptor(text, MAIN, miniscript=_raw_leaf)
        assert isinstance(desc.expr, TRExpr)
        output = desc.expr.taproot(0)
        intermediary = case["intermediary"]
        assert output.tweak.hex() == intermediary["tweak"]
        assert output.output_key.hex() == intermediary["tweakedPubkey"]
        assert [h.hex() for h in output.leaf_hashes] == intermediary.get("leafHashes", [])
        assert [c.hex() for c in output.control_blocks] == expected.get(
            "scriptPathControlBlocks", []
        )
        (spk,) = desc.script_pubkeys(0)
        assert spk.hex() == expected["scriptPubKey"]
        assert desc.addresses(0) == [expected["bip350Address"]]
        assert script_to_address(spk, MAIN) == expected["bip350Address"]
        assert desc.expand(0).taproot == output
        checked += 1
    # One of the seven has a leaf of version 0xfa, which no descriptor can write.
    assert (len(BIP341), checked) == (7, 6)
