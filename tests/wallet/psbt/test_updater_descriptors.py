"""The updater and signer fed from descriptors (``Descriptor.expand(i)``)."""

from __future__ import annotations

from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import verify_input
from peercash.wallet.bip32 import ExtendedKey
from peercash.wallet.descriptor import parse_one
from peercash.wallet.psbt import Psbt, roles
from peercash.wallet.signer import sign_psbt

A = ExtendedKey.from_seed(b"\x01" * 32)
B = ExtendedKey.from_seed(b"\x02" * 32)
C = ExtendedKey.from_seed(b"\x03" * 32)


def _xprv(k: ExtendedKey) -> str:
    return k.to_string(REGTEST)


def _xpub(k: ExtendedKey) -> str:
    return k.neuter().to_string(REGTEST)


def _spend(descriptor: str, pos: int) -> tuple[Psbt, TxOut, dict[bytes, bytes]]:
    desc = parse_one(descriptor, REGTEST)
    exp = desc.expand(pos)
    utxo = TxOut(50_000, exp.script_pubkeys[0])
    funding = Tx(2, [TxIn(OutPoint(b"\x05" * 32, 0))], [utxo])
    psbt = roles.create([TxIn(OutPoint(funding.txid, 0))], [TxOut(49_000, exp.script_pubkeys[0])])
    provider = roles.Provider()
    provider.add_expansion(exp)
    roles.update(psbt, provider, [funding])
    secrets = dict(exp.secrets)
    secrets.update({pub[1:]: s for pub, s in exp.secrets.items() if len(pub) == 33})
    return psbt, utxo, secrets


def _verify(psbt: Psbt, utxo: TxOut) -> ScriptError:
    tx = roles.extract(psbt)
    return verify_input(tx, 0, [utxo], STANDARD_SCRIPT_VERIFY_FLAGS)


def test_wsh_multi_from_xprvs() -> None:
    text = f"wsh(multi(2,{_xprv(A)}/0/*,{_xpub(B)}/0/*,{_xprv(C)}/0/*))"
    psbt, utxo, secrets = _spend(text, 5)
    inp, out = psbt.inputs[0], psbt.outputs[0]
    assert inp.witness_utxo == utxo and inp.non_witness_utxo is None
    assert inp.witness_script is not None and len(inp.bip32_derivs) == 3
    assert sorted(o.path for o in inp.bip32_derivs.values()) == [(0, 5)] * 3
    assert {o.fingerprint for o in inp.bip32_derivs.values()} == {
        A.fingerprint,
        B.fingerprint,
        C.fingerprint,
    }
    assert out.witness_script == inp.witness_script and len(out.bip32_derivs) == 3
    assert len(secrets) == 4  # two private keys, each by 33-byte and x-only form
    sign_psbt(psbt, secrets)
    assert len(psbt.inputs[0].partial_sigs) == 2
    assert roles.finalize(psbt) and _verify(psbt, utxo) is ScriptError.OK


def test_tr_with_script_tree_from_xprvs() -> None:
    internal = f"{_xpub(A)}/86/0/*"  # no private key: only the script path can sign
    text = f"tr({internal},{{pk({_xprv(B)}/1/*),multi_a(1,{_xpub(C)}/2/*,{_xprv(A)}/3/*)}})"
    psbt, utxo, secrets = _spend(text, 2)
    inp = psbt.inputs[0]
    assert inp.tap_internal_key is not None and inp.tap_merkle_root is not None
    assert len(inp.tap_leaf_scripts) == 2
    paths = sorted(o.path for _, o in inp.tap_bip32_derivs.values())
    assert paths == sorted([(86, 0, 2), (1, 2), (2, 2), (3, 2)])
    leaf_counts = sorted(len(h) for h, _ in inp.tap_bip32_derivs.values())
    assert leaf_counts == [0, 1, 1, 1]  # the internal key is in no leaf
    assert psbt.outputs[0].tap_internal_key == inp.tap_internal_key
    sign_psbt(psbt, secrets)
    assert inp.tap_key_sig is None and len(inp.tap_script_sigs) == 2
    assert roles.finalize(psbt) and _verify(psbt, utxo) is ScriptError.OK
