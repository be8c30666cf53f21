"""The BIP174/370/371 vectors: every invalid PSBT is refused, every valid one round-trips."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from peercash.wallet.psbt import Psbt, PsbtError
from peercash.wallet.psbt.model import TapTreeLeaf

DATA = Path(__file__).parents[2] / "data/psbt"


def _cases(name: str) -> list[dict[str, str]]:
    cases: list[dict[str, str]] = json.loads((DATA / f"{name}.json").read_text())["cases"]
    return cases


ALL = [(name, c) for name in ("bip174_cases", "bip370_cases", "bip371_cases") for c in _cases(name)]
INVALID = [c for _, c in ALL if c["section"] == "invalid"]
PARSEABLE = [c for _, c in ALL if c["section"] != "invalid"]

# The first error each invalid vector meets: Bitcoin Core's message (src/psbt.h, master).
EXPECTED_ERRORS = [
    "Invalid PSBT magic bytes",
    "Outputs provided does not match the number of outputs in transaction.",
    "Unsigned tx does not have empty scriptSigs and scriptWitnesses.",
    "No unsigned transaction was provided",
    'Duplicate Key, input key "00" already provided',
    "Size of key was not 1 for the type Global Unsigned TX",
    "Size of key was not 1 for the type Input Witness UTXO",
    "Size of key was not the expected size for the type partial signature pubkey",
    "Size of key was not 1 for the type Input redeemScript",
    "Size of key was not 1 for the type Input witnessScript",
    "Size of key was not the expected size for the type BIP32 keypath",
    "Size of key was not 1 for the type Input Non-witness UTXO",
    "Size of key was not 1 for the type Input Final scriptSig",
    "Size of key was not 1 for the type Input Final scriptWitness",
    "Size of key was not the expected size for the type BIP32 keypath",
    "Size of key was not 1 for the type Input Sighash Type",
    "Size of key was not 1 for the type Output redeemScript",
    "Size of key was not 1 for the type Output witnessScript",
    "Truncated transaction output",
    "Size of value was not the stated size",
    "PSBT_GLOBAL_TX_VERSION is required in PSBTv2",
    "PSBT_GLOBAL_TX_VERSION is not allowed in PSBTv0",
    "PSBT_GLOBAL_FALLBACK_LOCKTIME is not allowed in PSBTv0",
    "PSBT_GLOBAL_INPUT_COUNT is not allowed in PSBTv0",
    "PSBT_GLOBAL_OUTPUT_COUNT is not allowed in PSBTv0",
    "PSBT_GLOBAL_TX_MODIFIABLE is not allowed in PSBTv0",
    "Previous txid is not allowed in PSBTv0",
    "Previous output's index is not allowed in PSBTv0",
    "Sequence is not allowed in PSBTv0",
    "Required time based locktime is not allowed in PSBTv0",
    "Required height based locktime is not allowed in PSBTv0",
    "Output amount is not allowed in PSBTv0",
    "Output script is not allowed in PSBTv0",
    "PSBT_GLOBAL_UNSIGNED_TX is not allowed in PSBTv2",
    "PSBT_GLOBAL_INPUT_COUNT is required in PSBTv2",
    "PSBT_GLOBAL_OUTPUT_COUNT is required in PSBTv2",
    "PSBT_GLOBAL_TX_VERSION is required in PSBTv2",
    "Previous TXID is required in PSBTv2",
    "Previous output's index is required in PSBTv2",
    "Output amount is required in PSBTv2",
    "Output script is required in PSBTv2",
    "Required time based locktime is invalid (less than 500000000)",
    "Required height based locktime is invalid (greater than or equal to 500000000)",
    "Required height based locktime is invalid (0)",
    "Size of value was not the stated size",
    "Input Taproot key path signature is shorter than 64 bytes",
    "Input Taproot key path signature is longer than 65 bytes",
    "Size of key was not 33 for the type Input Taproot BIP32 Keypath",
    "Size of value was not the stated size",
    "Size of key was not 33 for the type Output Taproot BIP32 Keypath",
    "Size of key was not 65 for the type Input Taproot Script Path Signature",
    "Input Taproot script path signature is longer than 65 bytes",
    "Input Taproot script path signature is shorter than 64 bytes",
    "Input Taproot leaf script key's control block size is not valid",
    "Input Taproot leaf script key's control block size is not valid",
]


def test_vector_counts() -> None:
    assert len(INVALID) == 20 + 24 + 11
    assert len(PARSEABLE) == 14 + 23 + 6
    assert len(EXPECTED_ERRORS) == len(INVALID)


@pytest.mark.parametrize(
    ("case", "message"), list(zip(INVALID, EXPECTED_ERRORS)), ids=lambda c: str(c)[:60]
)
def test_invalid_vectors_fail(case: dict[str, str], message: str) -> None:
    with pytest.raises(PsbtError) as info:
        Psbt.from_base64(case["base64"])
    assert str(info.value) == message


@pytest.mark.parametrize("case", PARSEABLE, ids=lambda c: c["case"][:60])
def test_valid_vectors_round_trip(case: dict[str, str]) -> None:
    raw = base64.b64decode(case["base64"])
    psbt = Psbt.parse(raw)
    assert psbt.serialize() == raw
    assert Psbt.parse(psbt.serialize()) == psbt


def _v370(section: str) -> list[dict[str, str]]:
    return [c for c in _cases("bip370_cases") if c["section"] == section]


def test_bip370_locktime_determination() -> None:
    checked = 0
    for section in ("locktime:0", "locktime:10000", "locktime:1657048460", "locktime:none"):
        expected = None if section.endswith("none") else int(section.split(":")[1])
        for case in _v370(section):
            psbt = Psbt.from_base64(case["base64"])
            assert psbt.compute_locktime() == expected, case["case"]
            checked += 1
    assert checked == 9


def test_bip370_unsigned_tx_of_a_v2_psbt() -> None:
    psbt = Psbt.from_base64(_v370("valid")[-1]["base64"])  # "with all PSBTv2 fields"
    tx = psbt.compute_unsigned_tx()
    assert psbt.version == 2 and tx.version == psbt.tx_version
    assert [i.prevout.txid for i in tx.inputs] == [i.previous_txid for i in psbt.inputs]
    assert [(o.value, o.script_pubkey) for o in tx.outputs] == [
        (o.amount, o.script) for o in psbt.outputs
    ]
    assert tx.inputs[0].sequence == psbt.inputs[0].sequence


def test_bip370_modifiable_flags() -> None:
    flags = [Psbt.from_base64(c["base64"]).tx_modifiable for c in _v370("valid")]
    assert flags == [None, None, None, None, 1, 2, 4, 8, 3, 5, 6, 7, 255, 7]


def test_bip371_fields() -> None:
    valid = [c for c in _cases("bip371_cases") if c["section"] == "valid"]
    key_only = Psbt.from_base64(valid[1]["base64"])
    assert key_only.inputs[0].tap_internal_key is not None
    assert key_only.inputs[0].tap_key_sig is not None and len(key_only.inputs[0].tap_key_sig) == 64
    out_tree = Psbt.from_base64(valid[4]["base64"])
    tree = out_tree.outputs[0].tap_tree
    assert tree is not None and all(isinstance(leaf, TapTreeLeaf) for leaf in tree)
    assert [leaf.depth for leaf in tree] == [2, 2, 1]
    script_path = Psbt.from_base64(valid[5]["base64"])
    inp = script_path.inputs[0]
    assert len(inp.tap_leaf_scripts) == 3 and len(inp.tap_script_sigs) == 3
    assert inp.tap_merkle_root is not None


def test_unknown_and_proprietary_are_kept() -> None:
    case = next(c for c in _cases("bip174_cases") if c["case"].startswith("PSBT with unknown"))
    psbt = Psbt.from_base64(case["base64"])
    assert psbt.inputs[0].unknown
    assert psbt.to_base64() == case["base64"]
    psbt.proprietary[b"\xfc\x05peerc\x00"] = b"\x01"
    again = Psbt.parse(psbt.serialize())
    assert again.proprietary == {b"\xfc\x05peerc\x00": b"\x01"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"psbt", "Invalid PSBT magic bytes"),
        (b"psbt\xff", "Separator is missing at the end of the global map"),
        (b"psbt\xff\x00", "No unsigned transaction was provided"),
        (b"psbt\xff\x01\xfb\x04\x03\x00\x00\x00\x00", "Unsupported version number"),
        (b"psbt\xff\x01\xfb\x04\x01\x00\x00\x00\x00", "There is no PSBT version 1"),
    ],
)
def test_small_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(PsbtError) as info:
        Psbt.parse(raw)
    assert str(info.value) == message


def test_trailing_bytes_refused() -> None:
    case = _cases("bip174_cases")[20]
    with pytest.raises(PsbtError, match=r"^extra data after PSBT$"):
        Psbt.parse(base64.b64decode(case["base64"]) + b"\x00")


def test_bad_base64() -> None:
    with pytest.raises(PsbtError, match=r"^invalid base64$"):
        Psbt.from_base64("not base64!")


def test_truncations_and_byte_flips_only_raise_psbt_error() -> None:
    """Every prefix and every single-byte change of two vectors parses or fails with PsbtError."""
    samples = [PARSEABLE[4]["base64"], _v370("valid")[-1]["base64"]]
    tried = 0
    for text in samples:
        raw = base64.b64decode(text)
        variants = [raw[:n] for n in range(len(raw))]
        variants += [raw[:k] + bytes((raw[k] ^ 0xFF,)) + raw[k + 1 :] for k in range(len(raw))]
        for data in variants:
            try:
                psbt = Psbt.parse(data)
            except PsbtError:
                pass
            else:
                assert Psbt.parse(psbt.serialize()) == psbt
            tried += 1
    assert tried == 2 * sum(len(base64.b64decode(t)) for t in samples)
