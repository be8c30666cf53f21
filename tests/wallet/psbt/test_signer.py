"""The signer and finalizer on every script type they support; our interpreter checks the result."""

from __future__ import annotations

import hashlib

import pytest

from peercash.consensus.crypto import pubkey_from_secret, xonly_from_secret
from peercash.consensus.hashing import hash160, sha256
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import verify_input
from peercash.consensus.script.script import push_int
from peercash.consensus.script.taproot import TapLeaf, taproot_output
from peercash.wallet.descriptor import KeyOrigin
from peercash.wallet.psbt import Psbt, PsbtError, roles
from peercash.wallet.signer import Solution, sign_psbt, solve_input


def _secret(n: int) -> bytes:
    return hashlib.sha256(b"peercash psbt test key %d" % n).digest()


SECRETS = [_secret(n) for n in range(12)]
PUBS = [pubkey_from_secret(s) for s in SECRETS]
XONLY = [xonly_from_secret(s) for s in SECRETS]
KEYS = {p: s for p, s in zip(PUBS, SECRETS)}
KEYS.update({x: s for x, s in zip(XONLY, SECRETS)})
UNCOMPRESSED = pubkey_from_secret(SECRETS[11], compressed=False)
KEYS[UNCOMPRESSED] = SECRETS[11]


def _multisig(m: int, keys: list[bytes]) -> bytes:
    return (
        push_int(m) + b"".join(bytes((len(k),)) + k for k in keys) + push_int(len(keys)) + b"\xae"
    )


def _p2sh(script: bytes) -> bytes:
    return b"\xa9\x14" + hash160(script) + b"\x87"


def _p2wsh(script: bytes) -> bytes:
    return b"\x00\x20" + sha256(script)


def _p2wpkh(pub: bytes) -> bytes:
    return b"\x00\x14" + hash160(pub)


MULTI = _multisig(2, PUBS[3:6])
WPKH_NESTED = _p2wpkh(PUBS[6])
MULTI_W = _multisig(2, [PUBS[7], PUBS[8], PUBS[0]])
PK_LEAF = TapLeaf(b"\x20" + XONLY[9] + b"\xac")
MULTI_A = TapLeaf(
    b"\x20" + XONLY[1] + b"\xac\x20" + XONLY[2] + b"\xba\x20" + XONLY[10] + b"\xba\x52\x9c"
)
NUMS = bytes.fromhex("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
TR_KEY = taproot_output(XONLY[4], None)
TR_TREE_KEYPATH = taproot_output(XONLY[5], [PK_LEAF, MULTI_A])
TR_SCRIPT = taproot_output(NUMS, [PK_LEAF, MULTI_A])

SCRIPTS = {
    "p2pk": PUBS[0].__len__().to_bytes(1, "big") + PUBS[0] + b"\xac",
    "p2pk_uncompressed": b"\x41" + UNCOMPRESSED + b"\xac",
    "p2pkh": b"\x76\xa9\x14" + hash160(PUBS[1]) + b"\x88\xac",
    "p2sh_multisig": _p2sh(MULTI),
    "bare_multisig": MULTI,
    "p2wpkh": _p2wpkh(PUBS[2]),
    "p2sh_p2wpkh": _p2sh(WPKH_NESTED),
    "p2wsh_multisig": _p2wsh(MULTI_W),
    "p2sh_p2wsh_multisig": _p2sh(_p2wsh(MULTI_W)),
    "p2tr_key": TR_KEY.script_pubkey,
    "p2tr_key_with_tree": TR_TREE_KEYPATH.script_pubkey,
    "p2tr_script": TR_SCRIPT.script_pubkey,
}
NAMES = list(SCRIPTS)
FUNDING = Tx(
    2,
    [TxIn(OutPoint(b"\x11" * 32, 0))],
    [TxOut(100_000 + k, s) for k, s in enumerate(SCRIPTS.values())],
)


def _provider() -> roles.Provider:
    provider = roles.Provider()
    for script in (MULTI, WPKH_NESTED, MULTI_W, _p2wsh(MULTI_W)):
        provider.add_script(script)
    for tr in (TR_KEY, TR_TREE_KEYPATH, TR_SCRIPT):
        provider.taproot[tr.output_key] = tr
    for k, pub in enumerate(PUBS):
        provider.origins[pub] = KeyOrigin(b"\xde\xad\xbe\xef", (0x80000000, k))
        provider.origins[XONLY[k]] = KeyOrigin(b"\xde\xad\xbe\xef", (0x80000001, k))
    return provider


def _psbt(names: list[str], version: int = 0) -> Psbt:
    ins = [TxIn(OutPoint(FUNDING.txid, NAMES.index(n)), b"", 0xFFFFFFFD) for n in names]
    outs = [TxOut(50_000, _p2wpkh(PUBS[0])), TxOut(40_000, SCRIPTS["p2tr_key"])]
    psbt = roles.create(ins, outs, psbt_version=version)
    roles.update(psbt, _provider(), [FUNDING])
    return psbt


def _verify_all(psbt: Psbt) -> list[ScriptError]:
    tx = roles.extract(psbt)
    spent = [FUNDING.outputs[i.prevout.index] for i in tx.inputs]
    return [verify_input(tx, k, spent, STANDARD_SCRIPT_VERIFY_FLAGS) for k in range(len(tx.inputs))]


@pytest.mark.parametrize("version", [0, 2])
def test_every_script_type_signs_finalizes_and_verifies(version: int) -> None:
    psbt = _psbt(NAMES, version)
    solutions = sign_psbt(psbt, KEYS)
    assert [s.complete for s in solutions] == [True] * len(NAMES)
    assert roles.finalize(psbt) is True
    assert _verify_all(psbt) == [ScriptError.OK] * len(NAMES) == [ScriptError.OK] * 12


def test_signatures_land_where_bip174_and_bip371_put_them() -> None:
    psbt = _psbt(NAMES)
    sign_psbt(psbt, KEYS)
    by = dict(zip(NAMES, psbt.inputs))
    assert list(by["p2pkh"].partial_sigs) == [PUBS[1]]
    assert set(by["p2sh_multisig"].partial_sigs) == set(PUBS[3:6])
    assert by["p2tr_key"].tap_key_sig is not None and len(by["p2tr_key"].tap_key_sig) == 64
    assert by["p2tr_key_with_tree"].tap_key_sig is not None
    script = by["p2tr_script"]
    assert script.tap_key_sig is None
    assert {k for k, _ in script.tap_script_sigs} == {XONLY[9], XONLY[1], XONLY[2], XONLY[10]}
    assert script.tap_internal_key == NUMS and script.tap_merkle_root == TR_SCRIPT.merkle_root


def test_taproot_script_path_picks_the_smaller_leaf() -> None:
    psbt = _psbt(["p2tr_script"])
    sign_psbt(psbt, KEYS)
    assert roles.finalize(psbt)
    witness = psbt.inputs[0].final_script_witness
    assert witness is not None and len(witness) == 3 and witness[1] == PK_LEAF.script
    assert _verify_all(psbt) == [ScriptError.OK]


def test_multi_a_with_only_two_keys() -> None:
    psbt = _psbt(["p2tr_script"])
    keys = {XONLY[1]: SECRETS[1], XONLY[10]: SECRETS[10]}
    sign_psbt(psbt, keys)
    assert roles.finalize(psbt)
    witness = psbt.inputs[0].final_script_witness
    assert witness is not None and witness[3] == MULTI_A.script
    assert witness[1] == b""  # the key without a signature gets an empty push
    assert _verify_all(psbt) == [ScriptError.OK]


@pytest.mark.parametrize("hash_type", [0x01, 0x02, 0x03, 0x81, 0x82, 0x83])
def test_sighash_types_verify(hash_type: int) -> None:
    # Taproot first: BIP341 has no signature for SIGHASH_SINGLE without a matching output.
    names = ["p2tr_key", "p2tr_script", "p2pkh", "p2wpkh", "p2wsh_multisig"]
    psbt = _psbt(names)
    sign_psbt(psbt, KEYS, hash_type)
    assert psbt.inputs[2].partial_sigs[PUBS[1]][-1] == hash_type
    key_sig = psbt.inputs[0].tap_key_sig
    assert key_sig is not None and len(key_sig) == 65 and key_sig[-1] == hash_type
    assert roles.finalize(psbt)
    assert _verify_all(psbt) == [ScriptError.OK] * 5


def test_stored_sighash_is_used_and_a_conflict_refused() -> None:
    psbt = _psbt(["p2wpkh"])
    psbt.inputs[0].sighash_type = 0x83
    sign_psbt(psbt, KEYS)
    assert psbt.inputs[0].partial_sigs[PUBS[2]][-1] == 0x83
    with pytest.raises(
        PsbtError, match=r"^Specified sighash value does not match value stored in PSBT$"
    ):
        sign_psbt(_psbt_with_sighash(), KEYS, 0x01)


def _psbt_with_sighash() -> Psbt:
    psbt = _psbt(["p2wpkh"])
    psbt.inputs[0].sighash_type = 0x02
    return psbt


def test_partial_multisig_is_not_final_and_analyze_says_signer() -> None:
    psbt = _psbt(["p2wsh_multisig"])
    sign_psbt(psbt, {PUBS[7]: SECRETS[7]})
    assert roles.finalize(psbt) is False
    analysis = roles.analyze(psbt)
    assert analysis.next == "signer"
    assert analysis.inputs[0].missing_sigs == [hash160(PUBS[8]), hash160(PUBS[0])]
    sign_psbt(psbt, {PUBS[0]: SECRETS[0]})
    assert roles.analyze(psbt).next == "finalizer"
    assert roles.finalize(psbt) and _verify_all(psbt) == [ScriptError.OK]
    assert roles.analyze(psbt).next == "extractor"


def test_witness_utxo_alone_does_not_sign_a_legacy_input() -> None:
    psbt = _psbt(["p2pkh"])
    inp = psbt.inputs[0]
    inp.witness_utxo, inp.non_witness_utxo = FUNDING.outputs[NAMES.index("p2pkh")], None
    (solution,) = sign_psbt(psbt, KEYS)
    assert solution.complete is False and inp.partial_sigs == {}


def test_analyze_fee_and_size_estimate() -> None:
    psbt = _psbt(["p2wpkh", "p2tr_key"])
    analysis = roles.analyze(psbt)
    spent = (
        FUNDING.outputs[NAMES.index("p2wpkh")].value
        + FUNDING.outputs[NAMES.index("p2tr_key")].value
    )
    assert analysis.fee == spent - 90_000
    assert analysis.next == "signer"
    sign_psbt(psbt, KEYS)
    roles.finalize(psbt)
    real = roles.extract(psbt).vsize()
    assert analysis.estimated_vsize is not None
    # The estimate uses 72-byte ECDSA signatures; a real one is 71 or 72 bytes.
    assert real <= analysis.estimated_vsize <= real + 1
    assert analysis.estimated_feerate == analysis.fee * 1000 // analysis.estimated_vsize


def test_analyze_without_utxo_is_updater() -> None:
    psbt = roles.create([TxIn(OutPoint(b"\x22" * 32, 0))], [TxOut(1, b"\x51")])
    analysis = roles.analyze(psbt)
    assert analysis.next == "updater" and analysis.fee is None
    assert analysis.inputs[0].has_utxo is False


def test_analyze_missing_pubkey_is_updater() -> None:
    psbt = roles.create([TxIn(OutPoint(FUNDING.txid, NAMES.index("p2wpkh")))], [TxOut(1, b"\x51")])
    roles.update(psbt, roles.Provider(), [FUNDING])
    analysis = roles.analyze(psbt)
    assert analysis.next == "updater" and analysis.estimated_vsize is None
    assert analysis.inputs[0].missing_pubkeys == [hash160(PUBS[2])]


def test_analyze_missing_redeem_script() -> None:
    psbt = roles.create(
        [TxIn(OutPoint(FUNDING.txid, NAMES.index("p2sh_multisig")))], [TxOut(1, b"\x51")]
    )
    roles.update(psbt, roles.Provider(), [FUNDING])
    analysis = roles.analyze(psbt)
    assert analysis.next == "updater"
    assert analysis.inputs[0].missing_redeem_script == hash160(MULTI)


class _OpTrueSatisfier:
    """A stand-in for the miniscript satisfier: satisfies ``OP_1`` with an empty stack."""

    calls = 0

    def satisfy(
        self, script: bytes, sigversion: int, signature: object, preimages: object
    ) -> list[bytes] | None:
        self.calls += 1
        return [] if script == b"\x51" else None


def test_satisfier_hook_finalizes_a_non_template_witness_script() -> None:
    funding = Tx(2, [TxIn(OutPoint(b"\x33" * 32, 0))], [TxOut(5000, _p2wsh(b"\x51"))])
    psbt = roles.create([TxIn(OutPoint(funding.txid, 0))], [TxOut(4000, b"\x51")])
    provider = roles.Provider()
    provider.add_script(b"\x51")
    roles.update(psbt, provider, [funding])
    assert roles.finalize(psbt) is False
    hook = _OpTrueSatisfier()
    assert roles.finalize(psbt, hook) is True and hook.calls == 1
    assert psbt.inputs[0].final_script_witness == (b"\x51",)


def test_solution_reports_missing_pubkey() -> None:
    funding = Tx(2, [TxIn(OutPoint(b"\x44" * 32, 0))], [TxOut(5000, SCRIPTS["p2wpkh"])])
    psbt = roles.create([TxIn(OutPoint(funding.txid, 0))], [TxOut(4000, b"\x51")])
    roles.update(psbt, roles.Provider(), [funding])
    solution = solve_input(psbt, 0)
    assert isinstance(solution, Solution) and solution.missing_pubkeys == [hash160(PUBS[2])]


def test_keys_from_a_callback() -> None:
    asked: list[bytes] = []

    def lookup(pub: bytes) -> bytes | None:
        asked.append(pub)
        return KEYS.get(pub)

    psbt = _psbt(["p2wpkh", "p2tr_key"])
    assert [s.complete for s in sign_psbt(psbt, lookup)] == [True, True]
    assert PUBS[2] in asked and XONLY[4] in asked
    assert roles.finalize(psbt) and _verify_all(psbt) == [ScriptError.OK] * 2


def test_bip370_constructor_and_signer_flags() -> None:
    from peercash.wallet.psbt import (
        MODIFIABLE_INPUTS,
        MODIFIABLE_OUTPUTS,
        MODIFIABLE_SIGHASH_SINGLE,
        PsbtInput,
        PsbtOutput,
    )

    psbt = roles.create([], [], psbt_version=2)
    psbt.tx_modifiable = MODIFIABLE_INPUTS | MODIFIABLE_OUTPUTS
    for name in ("p2wpkh", "p2tr_key"):
        n = NAMES.index(name)
        roles.add_input(psbt, PsbtInput(previous_txid=FUNDING.txid, output_index=n))
    roles.add_output(psbt, PsbtOutput(amount=100_000, script=_p2wpkh(PUBS[1])))
    roles.add_output(psbt, PsbtOutput(amount=90_000, script=_p2wpkh(PUBS[3])))
    with pytest.raises(PsbtError, match=r"^An added output needs its amount and script$"):
        roles.add_output(psbt, PsbtOutput(amount=1))
    late = PsbtInput(previous_txid=b"\x66" * 32, output_index=0, height_locktime=100)
    mixed = PsbtInput(previous_txid=b"\x67" * 32, output_index=0, time_locktime=1_700_000_000)
    roles.add_input(psbt, late)
    with pytest.raises(PsbtError, match=r"^The input's lock time is not compatible with the PSBT$"):
        roles.add_input(psbt, mixed)
    assert len(psbt.inputs) == 3 and psbt.compute_locktime() == 100
    psbt.inputs.pop()
    roles.update(psbt, _provider(), [FUNDING])
    # ALL|ANYONECANPAY: the inputs stay open, the outputs close
    sign_psbt(psbt, {PUBS[2]: SECRETS[2]}, 0x81)
    assert psbt.tx_modifiable == MODIFIABLE_INPUTS
    # SINGLE|ANYONECANPAY on the taproot input adds the Has SIGHASH_SINGLE flag
    sign_psbt(psbt, KEYS, 0x83)
    assert psbt.tx_modifiable == MODIFIABLE_INPUTS | MODIFIABLE_SIGHASH_SINGLE
    with pytest.raises(PsbtError, match=r"^The PSBT's outputs are not modifiable$"):
        roles.add_output(psbt, PsbtOutput(amount=1, script=b"\x51"))


def test_lookup_fills_segwit_utxos_only() -> None:
    outs = {OutPoint(FUNDING.txid, k): FUNDING.outputs[k] for k in range(len(NAMES))}
    names = ["p2pkh", "p2wpkh", "p2sh_p2wpkh", "p2tr_key"]
    ins = [TxIn(OutPoint(FUNDING.txid, NAMES.index(n))) for n in names]
    psbt = roles.create(ins, [TxOut(1, b"\x51")])
    roles.update(psbt, _provider(), lookup=outs.get)
    assert [i.witness_utxo is not None for i in psbt.inputs] == [False, True, True, True]
    assert psbt.inputs[2].redeem_script == WPKH_NESTED
