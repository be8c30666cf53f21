"""Signature hashes: Core's sighash.json, BIP143's worked examples, BIP341 structure, linearity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.crypto import verify_ecdsa
from peercash.consensus.hashing import sha256, tagged_hash
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script import sighash as sighash_mod
from peercash.consensus.script.sighash import (
    SIGHASH_ALL,
    SIGHASH_ANYONECANPAY,
    SIGHASH_NONE,
    SIGHASH_SINGLE,
    PrecomputedTxData,
    legacy_sighash,
    segwit_v0_sighash,
    taproot_sighash,
)
from peercash.consensus.serialize import compact_size, pack_u32

DATA = Path(__file__).resolve().parents[1] / "data"
ONE = (1).to_bytes(32, "little")


def _load_sighash_cases() -> list[list[Any]]:
    rows = json.loads((DATA / "core" / "sighash.json").read_text())
    return [row for row in rows if len(row) == 5]


SIGHASH_CASES = _load_sighash_cases()


def test_sighash_json_has_500_cases() -> None:
    assert len(SIGHASH_CASES) == 500


@pytest.mark.parametrize("case", SIGHASH_CASES, ids=[f"case{i}" for i in range(500)])
def test_core_sighash_json(case: list[Any]) -> None:
    raw_tx, script_hex, index, hash_type, expected_display = case
    tx = Tx.from_hex(raw_tx)
    script = bytes.fromhex(script_hex)
    got = legacy_sighash(script, tx, index, hash_type)
    assert got[::-1].hex() == expected_display
    # The cached path gives the same answer.
    assert legacy_sighash(script, tx, index, hash_type, cache=PrecomputedTxData(tx)) == got


# -- legacy quirks ----------------------------------------------------------------------------


def _tx(n_in: int, n_out: int, script_sig: bytes = b"") -> Tx:
    inputs = [
        TxIn(OutPoint(sha256(b"prev%d" % i), i % 3), script_sig, 0xFFFFFFFF - i)
        for i in range(n_in)
    ]
    outputs = [TxOut(1000 * (i + 1), b"\x51" * (i % 5 + 1)) for i in range(n_out)]
    return Tx(2, inputs, outputs, 17)


@pytest.mark.parametrize("hash_type", [SIGHASH_SINGLE, SIGHASH_SINGLE | SIGHASH_ANYONECANPAY])
def test_legacy_single_without_matching_output_is_one(hash_type: int) -> None:
    tx = _tx(3, 1)
    script = bytes.fromhex("76a914" + "11" * 20 + "88ac")
    assert legacy_sighash(script, tx, 1, hash_type) == ONE
    assert legacy_sighash(script, tx, 2, hash_type) == ONE
    assert legacy_sighash(script, tx, 0, hash_type) != ONE
    # Only the low five bits decide SINGLE: 0x43 is SINGLE as well.
    assert legacy_sighash(script, tx, 1, 0x43) == ONE
    # Other hash types are fine past the outputs.
    assert legacy_sighash(script, tx, 1, SIGHASH_ALL) != ONE


def test_legacy_index_past_inputs_is_one() -> None:
    tx = _tx(2, 2)
    assert legacy_sighash(b"\x51", tx, 2, SIGHASH_ALL) == ONE
    assert legacy_sighash(b"\x51", tx, 7, SIGHASH_NONE) == ONE


def _reference_legacy(script_code: bytes, tx: Tx, index: int, hash_type: int) -> bytes:
    """A deliberately plain rebuild of the legacy serialization for scripts without
    OP_CODESEPARATOR, to cross-check the cached fast path."""
    base = hash_type & 0x1F
    acp = bool(hash_type & 0x80)
    parts = [pack_u32(tx.version)]
    chosen = [index] if acp else list(range(len(tx.inputs)))
    parts.append(compact_size(len(chosen)))
    for i in chosen:
        txin = tx.inputs[i]
        script = script_code if i == index else b""
        seq = txin.sequence
        if i != index and base in (SIGHASH_NONE, SIGHASH_SINGLE):
            seq = 0
        parts.append(TxIn(txin.prevout, script, seq).serialize())
    if base == SIGHASH_NONE:
        outs: list[TxOut] = []
    elif base == SIGHASH_SINGLE:
        outs = [TxOut(-1, b"")] * index + [tx.outputs[index]]
    else:
        outs = list(tx.outputs)
    parts.append(compact_size(len(outs)))
    parts.extend(o.serialize() for o in outs)
    parts.append(pack_u32(tx.locktime))
    parts.append(pack_u32(hash_type & 0xFFFFFFFF))
    return hashlib.sha256(hashlib.sha256(b"".join(parts)).digest()).digest()


@pytest.mark.parametrize("hash_type", [1, 2, 3, 0x81, 0x82, 0x83, 0, 4, 0x41, -1, -0x7FFFFFFF])
def test_legacy_cached_path_matches_plain_serialization(hash_type: int) -> None:
    tx = _tx(5, 4, script_sig=b"\x01\x02")
    script = bytes.fromhex("76a914" + "22" * 20 + "88ac")
    cache = PrecomputedTxData(tx)
    for index in range(4):
        expected = _reference_legacy(script, tx, index, hash_type)
        assert legacy_sighash(script, tx, index, hash_type, cache=cache) == expected
        assert legacy_sighash(script, tx, index, hash_type) == expected


def test_legacy_removes_only_real_codeseparators() -> None:
    tx = _tx(1, 1)
    # OP_1 OP_CODESEPARATOR PUSH(ab ab) OP_CODESEPARATOR OP_2: only the two real separators go.
    script = bytes.fromhex("51ab02abab" + "ab52")
    stripped = bytes.fromhex("5102abab52")
    assert legacy_sighash(script, tx, 0, 1) == _reference_legacy(stripped, tx, 0, 1)
    # 0xab inside PUSHDATA1 / PUSHDATA2 payloads is data too.
    script = bytes.fromhex("4c02abab" + "4d0100ab" + "ab")
    stripped = bytes.fromhex("4c02abab" + "4d0100ab")
    assert legacy_sighash(script, tx, 0, 1) == _reference_legacy(stripped, tx, 0, 1)


def test_legacy_truncated_push_quirk() -> None:
    """Core declares the length of the whole script (minus separators) but writes only up to
    where reading the truncated push stopped: after its opcode and length bytes."""
    tx = _tx(1, 1)
    script = bytes.fromhex("ab51" + "4c05aabb")  # CODESEP, OP_1, PUSHDATA1 of 5 with 2 bytes
    serialized = sighash_mod._legacy_script_code(script)
    assert serialized == bytes([5]) + bytes.fromhex("51" + "4c05")
    script = bytes.fromhex("514d01")  # PUSHDATA2 missing a length byte: stops after 0x4d
    assert sighash_mod._legacy_script_code(script) == bytes([3]) + bytes.fromhex("514d")
    # A complete script is written whole.
    assert sighash_mod._legacy_script_code(b"\x51\x02ab") == b"\x04\x51\x02ab"
    # The hash covers exactly that: declared length 3, two script bytes. The preimage below is
    # written out by hand from _tx(1, 1), not produced by any serializer of ours.
    preimage = b"".join(
        [
            bytes.fromhex("02000000"),  # version 2
            bytes.fromhex("01"),  # one input
            hashlib.sha256(b"prev0").digest(),  # its prevout: txid sha256("prev0") ...
            bytes.fromhex("00000000"),  # ... output 0
            bytes.fromhex("03514d"),  # script code: declared length 3, bytes 51 4d only
            bytes.fromhex("ffffffff"),  # sequence
            bytes.fromhex("01e8030000000000000151"),  # one output: 1000 sat, OP_1
            bytes.fromhex("11000000"),  # locktime 17
            bytes.fromhex("01000000"),  # hash type SIGHASH_ALL
        ]
    )
    expected = hashlib.sha256(hashlib.sha256(preimage).digest()).digest()
    assert legacy_sighash(script, tx, 0, 1) == expected
    assert legacy_sighash(script, tx, 0, 1, cache=PrecomputedTxData(tx)) == expected
    # Writing the whole script (three bytes, as a complete script would be) gives another hash.
    assert _reference_legacy(b"\x51\x4d\x01", tx, 0, 1) != expected


# -- BIP143 worked examples ---------------------------------------------------------------------


def _p2pkh_code(h160: str) -> bytes:
    return bytes.fromhex("76a914" + h160 + "88ac")


def test_bip143_native_p2wpkh() -> None:
    tx = Tx.from_hex(
        "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
        "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206"
        "000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42db"
        "ee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
    )
    cache = PrecomputedTxData(tx)
    assert cache.hash_prevouts.hex() == (
        "96b827c8483d4e9b96712b6713a7b68d6e8003a781feba36c31143470b4efd37"
    )
    assert cache.hash_sequence.hex() == (
        "52b0a642eea2fb7ae638c36f6252b6750293dbe574a806984b8e4d8548339a3b"
    )
    assert cache.hash_outputs.hex() == (
        "863ef3e1a92afbfdb97f31ad0fc7683ee943e9abcf2501590ff8f6551f47e5e5"
    )
    code = _p2pkh_code("1d0f172a0ecb48aee1be1f2687d2963ae33f71a1")
    digest = segwit_v0_sighash(code, tx, 1, SIGHASH_ALL, 600_000_000, cache)
    assert digest.hex() == "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
    pub = bytes.fromhex("025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357")
    sig = bytes.fromhex(
        "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c45183315"
        "61406f90300e8f3358f51928d43c212a8caed02de67eebee"
    )
    assert verify_ecdsa(pub, sig, digest)


def test_bip143_p2sh_p2wpkh() -> None:
    tx = Tx.from_hex(
        "0100000001db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a54770100000000feffffff"
        "02b8b4eb0b000000001976a914a457b684d7f0d539a46a45bbc043f35b59d0d96388ac0008af2f000000001976a9"
        "14fd270b1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac92040000"
    )
    cache = PrecomputedTxData(tx)
    assert cache.hash_prevouts.hex() == (
        "b0287b4a252ac05af83d2dcef00ba313af78a3e9c329afa216eb3aa2a7b4613a"
    )
    assert cache.hash_sequence.hex() == (
        "18606b350cd8bf565266bc352f0caddcf01e8fa789dd8a15386327cf8cabe198"
    )
    assert cache.hash_outputs.hex() == (
        "de984f44532e2173ca0d64314fcefe6d30da6f8cf27bafa706da61df8a226c83"
    )
    code = _p2pkh_code("79091972186c449eb1ded22b78e40d009bdf0089")
    digest = segwit_v0_sighash(code, tx, 0, SIGHASH_ALL, 1_000_000_000, cache)
    assert digest.hex() == "64f3b0f4dd2bb3aa1ce8566d220cc74dda9df97d8490cc81d89d735c92e59fb6"
    pub = bytes.fromhex("03ad1d8e89212f0b92c74d23bb710c00662ad1470198ac48c43f7d6f93a2a26873")
    sig = bytes.fromhex(
        "3044022047ac8e878352d3ebbde1c94ce3a10d057c24175747116f8288e5d794d12d482f0220217f36a485cae903"
        "c713331d877c1f64677e3622ad4010726870540656fe9dcb"
    )
    assert verify_ecdsa(pub, sig, digest)


def test_bip143_p2wsh_codeseparator_and_single_out_of_range() -> None:
    tx = Tx.from_hex(
        "0100000002fe3dc9208094f3ffd12645477b3dc56f60ec4fa8e6f5d67c565d1c6b9216b36e0000000000ffffffff"
        "0815cf020f013ed6cf91d29f4202e8a58726b1ac6c79da47c23d1bee0a6925f80000000000ffffffff0100f2052a"
        "010000001976a914a30741f8145e5acadf23f751864167f32e0963f788ac00000000"
    )
    cache = PrecomputedTxData(tx)
    assert cache.hash_prevouts.hex() == (
        "ef546acf4a020de3898d1b8956176bb507e6211b5ed3619cd08b6ea7e2a09d41"
    )
    amount = 4_900_000_000
    # Before the OP_CODESEPARATOR executes, it stays in the scriptCode.
    full = bytes.fromhex(
        "21026dccc749adc2a9d0d89497ac511f760f45c47dc5ed9cf352a58ac706453880aeadab210255a9626aebf5e29c"
        "0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465ac"
    )
    digest = segwit_v0_sighash(full, tx, 1, SIGHASH_SINGLE, amount, cache)
    assert digest.hex() == "82dde6e4f1e94d02c2b7ad03d2115d691f48d064e9d52f58194a6637e4194391"
    assert verify_ecdsa(
        bytes.fromhex("026dccc749adc2a9d0d89497ac511f760f45c47dc5ed9cf352a58ac706453880ae"),
        bytes.fromhex(
            "3044022027dc95ad6b740fe5129e7e62a75dd00f291a2aeb1200b84b09d9e3789406b6c002201a9ecd315dd6"
            "a0e632ab20bbb98948bc0c6fb204f2c286963bb48517a7058e27"
        ),
        digest,
    )
    # After it, everything up to and including it is gone.
    tail = bytes.fromhex("210255a9626aebf5e29c0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465ac")
    digest = segwit_v0_sighash(tail, tx, 1, SIGHASH_SINGLE, amount, cache)
    assert digest.hex() == "fef7bd749cce710c5c052bd796df1af0d935e59cea63736268bcbe2d2134fc47"
    assert verify_ecdsa(
        bytes.fromhex("0255a9626aebf5e29c0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465"),
        bytes.fromhex(
            "304402200de66acf4527789bfda55fc5459e214fa6083f936b430a762c629656216805ac0220396f550692cd"
            "347171cbc1ef1f51e15282e837bb2b30860dc77c8f78bc8501e5"
        ),
        digest,
    )


def test_bip143_p2wsh_single_anyonecanpay() -> None:
    tx = Tx.from_hex(
        "0100000002e9b542c5176808107ff1df906f46bb1f2583b16112b95ee5380665ba7fcfc0010000000000ffffffff"
        "80e68831516392fcd100d186b3c2c7b95c80b53c77e77c35ba03a66b429a2a1b0000000000ffffffff0280969800"
        "000000001976a914de4b231626ef508c9a74a8517e6783c0546d6b2888ac80969800000000001976a9146648a8cd"
        "4531e1ec47f35916de8e259237294d1e88ac00000000"
    )
    cache = PrecomputedTxData(tx)
    amount = 16_777_215
    hash_type = SIGHASH_SINGLE | SIGHASH_ANYONECANPAY
    pub = bytes.fromhex("0392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98")
    # Input 0: the OP_CODESEPARATOR is not executed, so nothing is removed.
    code0 = bytes.fromhex(
        "0063ab68210392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98ac"
    )
    digest0 = segwit_v0_sighash(code0, tx, 0, hash_type, amount, cache)
    assert digest0.hex() == "e9071e75e25b8a1e298a72f0d2e9f4f95a0f5cdf86a533cda597eb402ed13b3a"
    sig0 = bytes.fromhex(
        "3045022100f6a10b8604e6dc910194b79ccfc93e1bc0ec7c03453caaa8987f7d6c3413566002206216229ede9b4d"
        "6ec2d325be245c5b508ff0339bf1794078e20bfe0babc7ffe6"
    )
    assert verify_ecdsa(pub, sig0, digest0)
    # Input 1: everything up to the executed OP_CODESEPARATOR is removed.
    code1 = bytes.fromhex(
        "68210392972e2eb617b2388771abe27235fd5ac44af8e61693261550447a4c3e39da98ac"
    )
    digest1 = segwit_v0_sighash(code1, tx, 1, hash_type, amount, cache)
    assert digest1.hex() == "cd72f1f1a433ee9df816857fad88d8ebd97e09a75cd481583eb841c330275e54"
    sig1 = bytes.fromhex(
        "30440220032521802a76ad7bf74d0e2c218b72cf0cbc867066e2e53db905ba37f130397e02207709e2188ed7f08f"
        "4c952d9d13986da504502b8c3be59617e043552f506c46ff"
    )
    assert verify_ecdsa(pub, sig1, digest1)
    # SINGLE|ANYONECANPAY does not commit to the input index: swapping the pairs keeps the hash.
    swapped = Tx(
        tx.version, (tx.inputs[1], tx.inputs[0]), (tx.outputs[1], tx.outputs[0]), tx.locktime
    )
    swapped_cache = PrecomputedTxData(swapped)
    assert segwit_v0_sighash(code1, swapped, 0, hash_type, amount, swapped_cache) == digest1
    assert segwit_v0_sighash(code0, swapped, 1, hash_type, amount, swapped_cache) == digest0


P2SH_P2WSH_SCRIPT = bytes.fromhex(
    "56210307b8ae49ac90a048e9b53357a2354b3334e9c8bee813ecb98e99a7e07e8c3ba32103b28f0c28bfab54554ae8"
    "c658ac5c3e0ce6e79ad336331f78c428dd43eea8449b21034b8113d703413d57761b8b9781957b8c0ac1dfe69f4925"
    "80ca4195f50376ba4a21033400f6afecb833092a9a21cfdf1ed1376e58c5d1f47de74683123987e967a8f42103a6d4"
    "8b1131e94ba04d9737d61acdaa1322008af9602b3b14862c07a1789aac162102d8b661b0b3302ee2f162b09e07a55a"
    "d5dfbe673a9f01d9f0c19617681024306b56ae"
)


@pytest.mark.parametrize(
    ("hash_type", "expected", "pub", "sig"),
    [
        (
            0x01,
            "185c0be5263dce5b4bb50a047973c1b6272bfbd0103a89444597dc40b248ee7c",
            "0307b8ae49ac90a048e9b53357a2354b3334e9c8bee813ecb98e99a7e07e8c3ba3",
            "304402206ac44d672dac41f9b00e28f4df20c52eeb087207e8d758d76d92c6fab3b73e2b0220367750dbbe1929"
            "0069cba53d096f44530e4f98acaa594810388cf7409a1870ce",
        ),
        (
            0x02,
            "e9733bc60ea13c95c6527066bb975a2ff29a925e80aa14c213f686cbae5d2f36",
            "03b28f0c28bfab54554ae8c658ac5c3e0ce6e79ad336331f78c428dd43eea8449b",
            "3044022068c7946a43232757cbdf9176f009a928e1cd9a1a8c212f15c1e11ac9f2925d9002205b75f937ff2f9f"
            "3c1246e547e54f62e027f64eefa2695578cc6432cdabce2715",
        ),
        (
            0x03,
            "1e1f1c303dc025bd664acb72e583e933fae4cff9148bf78c157d1e8f78530aea",
            "034b8113d703413d57761b8b9781957b8c0ac1dfe69f492580ca4195f50376ba4a",
            "3044022059ebf56d98010a932cf8ecfec54c48e6139ed6adb0728c09cbe1e4fa0915302e022007cd986c8fa870"
            "ff5d2b3a89139c9fe7e499259875357e20fcbb15571c767954",
        ),
        (
            0x81,
            "2a67f03e63a6a422125878b40b82da593be8d4efaafe88ee528af6e5a9955c6e",
            "033400f6afecb833092a9a21cfdf1ed1376e58c5d1f47de74683123987e967a8f4",
            "3045022100fbefd94bd0a488d50b79102b5dad4ab6ced30c4069f1eaa69a4b5a763414067e02203156c6a5c9cf"
            "88f91265f5a942e96213afae16d83321c8b31bb342142a14d163",
        ),
        (
            0x82,
            "781ba15f3779d5542ce8ecb5c18716733a5ee42a6f51488ec96154934e2c890a",
            "03a6d48b1131e94ba04d9737d61acdaa1322008af9602b3b14862c07a1789aac16",
            "3045022100a5263ea0553ba89221984bd7f0b13613db16e7a70c549a86de0cc0444141a407022005c360ef0ae5"
            "a5d4f9f2f87a56c1546cc8268cab08c73501d6b3be2e1e1a8a08",
        ),
        (
            0x83,
            "511e8e52ed574121fc1b654970395502128263f62662e076dc6baf05c2e6a99b",
            "02d8b661b0b3302ee2f162b09e07a55ad5dfbe673a9f01d9f0c19617681024306b",
            "30440220525406a1482936d5a21888260dc165497a90a15669636d8edca6b9fe490d309c022032af0c646a34a4"
            "4d1f4576bf6a4a74b67940f8faa84c7df9abe12a01a11e2b47",
        ),
    ],
)
def test_bip143_p2sh_p2wsh_all_hash_types(
    hash_type: int, expected: str, pub: str, sig: str
) -> None:
    tx = Tx.from_hex(
        "010000000136641869ca081e70f394c6948e8af409e18b619df2ed74aa106c1ca29787b96e0100000000ffffffff"
        "0200e9a435000000001976a914389ffce9cd9ae88dcc0631e88a821ffdbe9bfe2688acc0832f05000000001976a9"
        "147480a33f950689af511e6e84c138dbbd3c3ee41588ac00000000"
    )
    cache = PrecomputedTxData(tx)
    assert cache.hash_prevouts.hex() == (
        "74afdc312af5183c4198a40ca3c1a275b485496dd3929bca388c4b5e31f7aaa0"
    )
    assert cache.hash_sequence.hex() == (
        "3bb13029ce7b1f559ef5e747fcac439f1455a2ec7c5f09b72290795e70665044"
    )
    assert cache.hash_outputs.hex() == (
        "bc4d309071414bed932f98832b27b4d76dad7e6c1346f487a8fdbb8eb90307cc"
    )
    digest = segwit_v0_sighash(P2SH_P2WSH_SCRIPT, tx, 0, hash_type, 987_654_321, cache)
    assert digest.hex() == expected
    assert verify_ecdsa(bytes.fromhex(pub), bytes.fromhex(sig), digest)


def test_bip143_no_find_and_delete() -> None:
    tx = Tx.from_hex(
        "010000000169c12106097dc2e0526493ef67f21269fe888ef05c7a3a5dacab38e1ac8387f14c1d000000ffffffff"
        "0101000000000000000000000000"
    )
    cache = PrecomputedTxData(tx)
    code = bytes.fromhex(
        "ad4830450220487fb382c4974de3f7d834c1b617fe15860828c7f96454490edd6d891556dcc9022100baf95feb48"
        "f845d5bfc9882eb6aeefa1bc3790e39f59eaa46ff7f15ae626c53e01"
    )
    digest = segwit_v0_sighash(code, tx, 0, SIGHASH_ALL, 200_000, cache)
    assert digest.hex() == "71c9cd9b2869b9c70b01b1f0360c148f42dee72297db312638df136f43311f23"
    assert cache.hash_outputs.hex() == (
        "e5d196bfb21caca9dbd654cafb3b4dc0c4882c8927d2eb300d9539dd0b934228"
    )
    pub = bytes.fromhex("02a9781d66b61fb5a7ef00ac5ad5bc6ffc78be7b44a566e3c87870e1079368df4c")
    assert verify_ecdsa(pub, code[2:-1], digest)


# -- BIP341 structure -------------------------------------------------------------------------


def _spent(n: int) -> list[TxOut]:
    return [TxOut(5000 + i, b"\x51\x20" + sha256(b"spk%d" % i)) for i in range(n)]


@pytest.mark.parametrize("hash_type", [4, 0x80, 0x84, 0xFF, 0x40, 0x41, 0x100, 0x101, -1])
def test_taproot_undefined_hash_types_fail(hash_type: int) -> None:
    tx = _tx(2, 2)
    cache = PrecomputedTxData(tx, _spent(2))
    assert taproot_sighash(tx, 0, hash_type, cache, 0, None) is None


def test_taproot_single_without_matching_output_fails() -> None:
    tx = _tx(3, 1)
    cache = PrecomputedTxData(tx, _spent(3))
    assert taproot_sighash(tx, 0, SIGHASH_SINGLE, cache, 0, None) is not None
    assert taproot_sighash(tx, 1, SIGHASH_SINGLE, cache, 0, None) is None
    assert taproot_sighash(tx, 2, 0x83, cache, 0, None) is None
    assert taproot_sighash(tx, 2, SIGHASH_ALL, cache, 0, None) is not None


def test_taproot_needs_spent_outputs() -> None:
    tx = _tx(1, 1)
    with pytest.raises(ValueError):
        taproot_sighash(tx, 0, 0, PrecomputedTxData(tx), 0, None)
    with pytest.raises(ValueError):
        PrecomputedTxData(tx, _spent(2))


def _bip341_sigmsg(
    tx: Tx,
    index: int,
    hash_type: int,
    spent: list[TxOut],
    ext_flag: int,
    annex: bytes | None,
    leaf: bytes | None,
    codesep: int,
) -> bytes:
    """SigMsg spelled out field by field from BIP341/BIP342's lists, as plainly as possible."""

    def sha(b: bytes) -> bytes:
        return hashlib.sha256(b).digest()

    out_type = 1 if hash_type == 0 else hash_type & 3
    acp = hash_type & 0x80
    msg = bytes([0, hash_type]) + tx.version.to_bytes(4, "little")
    msg += tx.locktime.to_bytes(4, "little")
    if not acp:
        msg += sha(b"".join(i.prevout.serialize() for i in tx.inputs))
        msg += sha(b"".join(o.value.to_bytes(8, "little") for o in spent))
        msg += sha(b"".join(compact_size(len(o.script_pubkey)) + o.script_pubkey for o in spent))
        msg += sha(b"".join(i.sequence.to_bytes(4, "little") for i in tx.inputs))
    if out_type == 1:
        msg += sha(b"".join(o.serialize() for o in tx.outputs))
    msg += bytes([ext_flag * 2 + (1 if annex is not None else 0)])
    if acp:
        txin = tx.inputs[index]
        msg += txin.prevout.serialize() + spent[index].serialize()
        msg += txin.sequence.to_bytes(4, "little")
    else:
        msg += index.to_bytes(4, "little")
    if annex is not None:
        msg += sha(compact_size(len(annex)) + annex)
    if out_type == 3:
        msg += sha(tx.outputs[index].serialize())
    if ext_flag == 1:
        assert leaf is not None
        msg += leaf + b"\x00" + codesep.to_bytes(4, "little")
    return msg


@pytest.mark.parametrize("hash_type", [0, 1, 2, 3, 0x81, 0x82, 0x83])
@pytest.mark.parametrize("ext_flag", [0, 1])
@pytest.mark.parametrize("annex", [None, b"\x50", b"\x50" + b"\x07" * 300])
def test_taproot_matches_spelled_out_sigmsg(
    hash_type: int, ext_flag: int, annex: bytes | None
) -> None:
    tx = _tx(4, 4)
    spent = _spent(4)
    cache = PrecomputedTxData(tx, spent)
    leaf = sha256(b"leaf") if ext_flag else None
    codesep = 7 if ext_flag else 0xFFFFFFFF
    for index in range(4):
        got = taproot_sighash(tx, index, hash_type, cache, ext_flag, annex, leaf, codesep)
        msg = _bip341_sigmsg(tx, index, hash_type, spent, ext_flag, annex, leaf, codesep)
        assert got == tagged_hash("TapSighash", msg)


def test_taproot_annex_memo_follows_content() -> None:
    tx = _tx(2, 2)
    cache = PrecomputedTxData(tx, _spent(2))
    a = taproot_sighash(tx, 0, 0, cache, 0, b"\x50\x01")
    b = taproot_sighash(tx, 0, 0, cache, 0, b"\x50\x02")
    assert a != b
    assert taproot_sighash(tx, 0, 0, cache, 0, b"\x50\x01") == a
    assert taproot_sighash(tx, 0, 0, PrecomputedTxData(tx, _spent(2)), 0, b"\x50\x01") == a


# -- linearity ----------------------------------------------------------------------------------


class _CountingSha256:
    """Wraps hashlib.sha256 and counts every byte fed to any instance."""

    total = 0

    def __init__(self, data: bytes = b"") -> None:
        self._h = hashlib.sha256(data)
        _CountingSha256.total += len(data)

    def update(self, data: bytes) -> None:
        _CountingSha256.total += len(memoryview(data).cast("B"))
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()

    def copy(self) -> _CountingSha256:
        """A copy of the state: nothing is hashed again."""
        twin = _CountingSha256.__new__(_CountingSha256)
        twin._h = self._h.copy()
        return twin


def _big_tx(n: int) -> tuple[Tx, list[TxOut]]:
    inputs = [TxIn(OutPoint(sha256(b"%d" % i), i & 7), b"", 0xFFFFFFFD) for i in range(n)]
    outputs = [TxOut(1000 + i, b"\x00\x14" + sha256(b"o%d" % i)[:20]) for i in range(n)]
    return Tx(2, inputs, outputs, 0), _spent(n)


def _bytes_hashed_for_all_inputs(
    monkeypatch: pytest.MonkeyPatch, n: int, shared_cache: bool
) -> int:
    tx, spent = _big_tx(n)
    code = bytes.fromhex("76a914" + "33" * 20 + "88ac")
    monkeypatch.setattr(sighash_mod, "_sha256", _CountingSha256)
    _CountingSha256.total = 0
    cache = PrecomputedTxData(tx, spent)
    for i in range(n):
        c = cache if shared_cache else PrecomputedTxData(tx, spent)
        for ht in (SIGHASH_ALL, SIGHASH_SINGLE, SIGHASH_NONE | SIGHASH_ANYONECANPAY):
            segwit_v0_sighash(code, tx, i, ht, 1000, c)
        for ht in (0, SIGHASH_SINGLE, 0x81):
            taproot_sighash(tx, i, ht, c, 0, None)
            taproot_sighash(tx, i, ht, c, 1, b"\x50\x01", b"\x11" * 32, 3)
    monkeypatch.undo()
    return _CountingSha256.total


def test_precomputed_data_makes_segwit_and_taproot_hashing_linear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = _bytes_hashed_for_all_inputs(monkeypatch, 1000, shared_cache=True)
    large = _bytes_hashed_for_all_inputs(monkeypatch, 2000, shared_cache=True)
    # Twice the inputs, twice the bytes (not four times).
    assert large <= 2.1 * small
    # And a small constant per input: the 2,000-input transaction is ~120 kB (~80 kB of inputs
    # and outputs, ~40 kB of spent outputs), hashed a few times over in total, plus
    # a few hundred bytes per signature hash.
    tx, _ = _big_tx(2000)
    assert large < 4 * len(tx.serialize()) + 2000 * 9 * 400


def test_linearity_check_detects_quadratic_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The counter is sensitive enough: without a shared cache the growth is quadratic."""
    small = _bytes_hashed_for_all_inputs(monkeypatch, 250, shared_cache=False)
    large = _bytes_hashed_for_all_inputs(monkeypatch, 500, shared_cache=False)
    assert large > 3.5 * small


def _all_parts(cache: PrecomputedTxData) -> list[bytes]:
    return [
        cache.sha_prevouts,
        cache.sha_amounts,
        cache.sha_scriptpubkeys,
        cache.sha_sequences,
        cache.sha_outputs,
        cache.hash_prevouts,
        cache.hash_sequence,
        cache.hash_outputs,
    ]


def test_precomputed_fields_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tx, spent = _big_tx(50)
    cache = PrecomputedTxData(tx, spent)
    first = _all_parts(cache)
    monkeypatch.setattr(sighash_mod, "_sha256", _CountingSha256)
    _CountingSha256.total = 0
    assert _all_parts(cache) == first
    assert _CountingSha256.total == 0  # every part, BIP143's double hashes included, is memoized


def test_legacy_prefix_states_give_the_same_hash_in_any_order() -> None:
    """The legacy hash reuses SHA-256 states across inputs; order of calls must not matter."""
    import random

    tx, _ = _big_tx(60)
    code = bytes.fromhex("76a914" + "44" * 20 + "88ac")
    expected = {
        (i, ht): legacy_sighash(code, tx, i, ht)
        for i in range(60)
        for ht in (SIGHASH_ALL, SIGHASH_NONE, SIGHASH_SINGLE, SIGHASH_ALL | SIGHASH_ANYONECANPAY)
    }
    keys = list(expected)
    random.Random(3).shuffle(keys)
    cache = PrecomputedTxData(tx)
    for i, ht in keys + sorted(keys):
        assert legacy_sighash(code, tx, i, ht, cache=cache) == expected[(i, ht)]
