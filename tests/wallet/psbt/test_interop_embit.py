"""Interop with embit (PyPI, a separate implementation): each side signs, the other finalizes."""

from __future__ import annotations

import pytest

from peercash.consensus.primitives import Tx
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import verify_input
from peercash.wallet.psbt import Psbt, roles
from peercash.wallet.signer import sign_psbt

from .test_signer import FUNDING, KEYS, SECRETS, _psbt

embit_psbt = pytest.importorskip("embit.psbt")
embit_ec = pytest.importorskip("embit.ec")
embit_finalizer = pytest.importorskip("embit.finalizer")

# Script types both sides handle: embit's signer knows these from a bare private key.
SHARED = ["p2wpkh", "p2sh_p2wpkh", "p2wsh_multisig", "p2tr_key"]
SIGNERS = {2, 6, 7, 8, 4}


def _verify(tx: Tx) -> list[ScriptError]:
    spent = [FUNDING.outputs[i.prevout.index] for i in tx.inputs]
    return [verify_input(tx, k, spent, STANDARD_SCRIPT_VERIFY_FLAGS) for k in range(len(tx.inputs))]


def test_embit_signs_we_finalize() -> None:
    ours = _psbt(SHARED)
    theirs = embit_psbt.PSBT.from_string(ours.to_base64())
    added = sum(theirs.sign_with(embit_ec.PrivateKey(SECRETS[k])) for k in sorted(SIGNERS))
    assert added == 5  # one each for the single-key inputs, two for the 2-of-3
    back = Psbt.from_base64(theirs.to_string())
    assert roles.finalize(back) is True
    assert _verify(roles.extract(back)) == [ScriptError.OK] * 4


# embit's finalizer (by its own note "unreliable") has no taproot branch, so the reverse direction
# covers the ECDSA script types only.
FINALIZABLE_BY_EMBIT = ["p2pkh", "p2wpkh", "p2sh_p2wpkh", "p2wsh_multisig", "p2sh_p2wsh_multisig"]


def test_we_sign_embit_finalizes() -> None:
    ours = _psbt(FINALIZABLE_BY_EMBIT)
    assert all(s.complete for s in sign_psbt(ours, KEYS))
    theirs = embit_psbt.PSBT.from_string(ours.to_base64())
    final = embit_finalizer.finalize_psbt(theirs)
    assert final is not None
    tx = Tx.parse(final.serialize())
    assert _verify(tx) == [ScriptError.OK] * 5
    # and our own finalizer builds the same transaction
    assert roles.finalize(ours) and roles.extract(ours) == tx
