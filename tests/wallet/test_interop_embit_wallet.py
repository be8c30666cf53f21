"""Interop with embit (PyPI, a separate implementation) at the wallet level: the addresses our
descriptors derive equal embit's, and a PSBT our wallet fills is signed by embit from its HD key
(through the BIP32 origins we add) and finalized by us, and the reverse."""

from __future__ import annotations

from pathlib import Path

import pytest

from peercash.consensus.params import get_params
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import verify_input
from peercash.wallet.bip32 import ExtendedKey
from peercash.wallet.descriptor import add_checksum, parse_one
from peercash.wallet.fill import fill_psbt
from peercash.wallet.psbt import Psbt, roles
from peercash.wallet.wallet import Wallet

from .chainsim import SimNode

embit_descriptor = pytest.importorskip("embit.descriptor")
embit_bip32 = pytest.importorskip("embit.bip32")
embit_psbt = pytest.importorskip("embit.psbt")
embit_finalizer = pytest.importorskip("embit.finalizer")
embit_networks = pytest.importorskip("embit.networks")

P = get_params("regtest")
ROOT = ExtendedKey.from_seed(b"\x5a" * 32)
COSIGNERS = [ExtendedKey.from_seed(bytes([n]) * 32) for n in (0x61, 0x62)]
N = 20


def _xpub(k: ExtendedKey) -> str:
    return k.neuter().to_string(P)


DESCRIPTORS = [
    f"pkh({_xpub(ROOT)}/0/*)",
    f"sh(wpkh({_xpub(ROOT)}/1/*))",
    f"wpkh({_xpub(ROOT)}/0/*)",
    f"tr({_xpub(ROOT)}/0/*)",
    f"wsh(sortedmulti(2,{_xpub(ROOT)}/0/*,{_xpub(COSIGNERS[0])}/0/*,{_xpub(COSIGNERS[1])}/0/*))",
    f"wsh(multi(1,{_xpub(COSIGNERS[1])}/7/*,{_xpub(ROOT)}/7/*))",
]


def test_addresses_equal_embits() -> None:
    net = embit_networks.NETWORKS["regtest"]
    checked = 0
    for text in DESCRIPTORS:
        ours = parse_one(text, P)
        theirs = embit_descriptor.Descriptor.from_string(text)
        for i in range(N):
            assert ours.addresses(i) == [theirs.derive(i).address(net)], (text, i)
            checked += 1
    assert checked == len(DESCRIPTORS) * N == 120


def _wallet(tmp_path: Path, node: SimNode, text: str) -> Wallet:
    wallet = Wallet.create("w", tmp_path / "w" / "wallet.dat", P, keypool=5, blank=True)
    wallet.attach(node)
    wallet.import_descriptor(add_checksum(text), timestamp=0, range_=(0, 4))
    return wallet


PRIVATE = [
    f"wpkh({ROOT.to_string(P)}/0/*)",
    f"sh(wpkh({ROOT.to_string(P)}/1/*))",
    f"wsh(multi(1,{_xpub(COSIGNERS[1])}/7/*,{ROOT.to_string(P)}/7/*))",
]


def _funded(tmp_path: Path, text: str) -> tuple[Wallet, Psbt, TxOut]:
    node = SimNode(P)
    wallet = _wallet(tmp_path, node, text)
    spk = next(s for s, i in wallet.keys.scripts.items() if i.position == 3)
    funding = Tx(2, [TxIn(OutPoint(b"\x03" * 32, 0))], [TxOut(70_000, spk)])
    node.mine([funding])
    psbt = roles.create([TxIn(OutPoint(funding.txid, 0))], [TxOut(69_000, spk)])
    return wallet, psbt, funding.outputs[0]


@pytest.mark.parametrize("text", [*PRIVATE, f"tr({ROOT.to_string(P)}/0/*)"])
def test_wallet_psbt_signed_by_embit_finalized_by_us(tmp_path: Path, text: str) -> None:
    wallet, psbt, spent = _funded(tmp_path, text)
    filled, complete = fill_psbt(wallet, psbt, sign=False)
    assert not complete
    theirs = embit_psbt.PSBT.from_string(filled.to_base64())
    root = embit_bip32.HDKey.from_string(ROOT.to_string(P))
    assert theirs.sign_with(root) == 1
    back = Psbt.from_base64(theirs.to_string())
    assert roles.finalize(back)
    tx = roles.extract(back)
    assert verify_input(tx, 0, [spent], STANDARD_SCRIPT_VERIFY_FLAGS) == ScriptError.OK


# embit's finalizer has no taproot branch: the reverse direction is ECDSA only.
@pytest.mark.parametrize("text", PRIVATE)
def test_wallet_signs_embit_finalizes(tmp_path: Path, text: str) -> None:
    wallet, psbt, spent = _funded(tmp_path, text)
    signed, complete = fill_psbt(wallet, psbt, finalize=False)
    assert complete and not signed.inputs[0].is_final
    final = embit_finalizer.finalize_psbt(embit_psbt.PSBT.from_string(signed.to_base64()))
    assert final is not None
    tx = Tx.parse(final.serialize())
    assert verify_input(tx, 0, [spent], STANDARD_SCRIPT_VERIFY_FLAGS) == ScriptError.OK
    assert roles.finalize(signed) and roles.extract(signed) == tx
