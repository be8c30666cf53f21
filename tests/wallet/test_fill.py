"""The wallet's PSBT filler and signer: default wallets, multisig between wallets, miniscript
timelocks and preimages, tapscript leaves, and raw transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from peercash.consensus.address import address_to_script
from peercash.consensus.hashing import sha256
from peercash.consensus.params import get_params
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import verify_input
from peercash.wallet.bip32 import ExtendedKey
from peercash.wallet.descriptor import add_checksum
from peercash.wallet.fill import INCOMPLETE, fill_psbt, sign_transaction
from peercash.wallet.psbt import Psbt, roles
from peercash.wallet.wallet import Wallet

from .chainsim import SimNode

P = get_params("regtest")
ELSEWHERE = b"\x00\x14" + b"\x99" * 20
KEYS = [ExtendedKey.from_seed(bytes([n]) * 32) for n in (1, 2, 3)]
XPRV = [k.to_string(P) for k in KEYS]
XPUB = [k.neuter().to_string(P) for k in KEYS]


def make(tmp_path: Path, node: SimNode | None, name: str, **kw: object) -> Wallet:
    wallet = Wallet.create(name, tmp_path / name / "wallet.dat", P, keypool=5, **kw)  # type: ignore[arg-type]
    if node is not None:
        wallet.attach(node)
    return wallet


def imported(tmp_path: Path, node: SimNode | None, name: str, text: str) -> Wallet:
    watch_only = "prv" not in text
    wallet = make(tmp_path, node, name, blank=not watch_only, disable_private_keys=watch_only)
    wallet.import_descriptor(add_checksum(text), timestamp=0, range_=(0, 4))
    return wallet


def fund(node: SimNode, scripts: list[bytes], value: int = 100_000) -> Tx:
    tx = Tx(2, [TxIn(OutPoint(b"\x07" * 32, 0))], [TxOut(value, s) for s in scripts])
    node.mine([tx])
    return tx


def spending(funding: Tx, sequence: int = 0xFFFFFFFD, fee: int = 1_000) -> Psbt:
    ins = [TxIn(OutPoint(funding.txid, n), b"", sequence) for n in range(len(funding.outputs))]
    total = sum(o.value for o in funding.outputs)
    return roles.create(ins, [TxOut(total - fee, ELSEWHERE)])


def verify_all(tx: Tx, spent: list[TxOut]) -> list[ScriptError]:
    return [verify_input(tx, k, spent, STANDARD_SCRIPT_VERIFY_FLAGS) for k in range(len(spent))]


def test_default_wallet_signs_its_four_address_types(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, "w", entropy=b"\x11" * 32)
    types = ("legacy", "p2sh-segwit", "bech32", "bech32m")
    scripts = [address_to_script(wallet.get_new_address("", t), P) for t in types]
    funding = fund(node, scripts)
    psbt = spending(funding)
    psbt, complete = fill_psbt(wallet, psbt, finalize=False)
    assert complete
    assert all(i.non_witness_utxo is not None for i in psbt.inputs)
    assert [i.witness_utxo is not None for i in psbt.inputs] == [False, True, True, True]
    assert [len(i.bip32_derivs) for i in psbt.inputs] == [1, 1, 1, 0]
    assert len(psbt.inputs[3].tap_bip32_derivs) == 1
    assert psbt.inputs[3].tap_key_sig is not None
    assert roles.finalize(psbt)
    tx = roles.extract(psbt)
    assert verify_all(tx, list(funding.outputs)) == [ScriptError.OK] * 4


def test_without_signing_or_origins(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, "w", entropy=b"\x12" * 32)
    funding = fund(node, [address_to_script(wallet.get_new_address(), P)])
    psbt, complete = fill_psbt(wallet, spending(funding), sign=False)
    assert not complete
    assert psbt.inputs[0].partial_sigs == {}
    assert len(psbt.inputs[0].bip32_derivs) == 1
    psbt, complete = fill_psbt(wallet, spending(funding), sign=False, bip32derivs=False)
    assert not complete and psbt.inputs[0].bip32_derivs == {}
    psbt, complete = fill_psbt(wallet, spending(funding))
    assert complete and psbt.inputs[0].is_final


def test_two_of_three_multisig_between_three_wallets(tmp_path: Path) -> None:
    node = SimNode(P)
    keys = ",".join(f"{x}/0/*" for x in XPUB)
    watch = imported(tmp_path, node, "watch", f"wsh(sortedmulti(2,{keys}))")
    signers = []
    for n in range(3):
        mine = ",".join(f"{XPRV[k] if k == n else XPUB[k]}/0/*" for k in range(3))
        signers.append(imported(tmp_path, None, f"s{n}", f"wsh(sortedmulti(2,{mine}))"))
    spk = watch.keys.descriptor_at(next(iter(watch.keys.scripts.values()))).script_pubkeys(0)[0]
    funding = fund(node, [spk])
    psbt, complete = fill_psbt(watch, spending(funding), sign=False)
    assert not complete
    assert psbt.inputs[0].witness_script is not None and len(psbt.inputs[0].bip32_derivs) == 3
    text = psbt.to_base64()
    b, complete_b = fill_psbt(signers[1], Psbt.from_base64(text))
    assert not complete_b and len(b.inputs[0].partial_sigs) == 1
    c, complete_c = fill_psbt(signers[2], Psbt.from_base64(text))
    assert not complete_c
    both = roles.combine([b, c])
    assert roles.finalize(both)
    assert verify_all(roles.extract(both), list(funding.outputs)) == [ScriptError.OK]
    # in turn: the second signer completes and finalizes
    chained, complete = fill_psbt(signers[0], Psbt.from_base64(b.to_base64()))
    assert complete and chained.inputs[0].is_final


TIMELOCKED = "wsh(or_d(pk({a}/0/*),and_v(v:pk({b}/0/*),older(10))))"


@pytest.mark.parametrize(("sequence", "complete"), [(9, False), (10, True)])
def test_miniscript_timelocked_path(tmp_path: Path, sequence: int, complete: bool) -> None:
    node = SimNode(P)
    watch = imported(tmp_path, node, "watch", TIMELOCKED.format(a=XPUB[0], b=XPUB[1]))
    b_only = imported(tmp_path, None, "b", TIMELOCKED.format(a=XPUB[0], b=XPRV[1]))
    spk = next(s for s, i in watch.keys.scripts.items() if i.position == 0)
    funding = fund(node, [spk])
    psbt, _ = fill_psbt(watch, spending(funding, sequence), sign=False)
    signed, done = fill_psbt(b_only, Psbt.from_base64(psbt.to_base64()))
    assert done is complete
    assert signed.inputs[0].is_final is complete
    if complete:
        tx = roles.extract(signed)
        assert len(tx.inputs[0].witness) == 3  # sig(B), empty (pk(A) dissatisfied), script
        assert verify_all(tx, list(funding.outputs)) == [ScriptError.OK]


def test_miniscript_key_path_needs_no_timelock(tmp_path: Path) -> None:
    node = SimNode(P)
    a_only = imported(tmp_path, node, "a", TIMELOCKED.format(a=XPRV[0], b=XPUB[1]))
    spk = next(s for s, i in a_only.keys.scripts.items() if i.position == 2)
    funding = fund(node, [spk])
    signed, done = fill_psbt(a_only, spending(funding, 0xFFFFFFFF))
    assert done
    assert verify_all(roles.extract(signed), list(funding.outputs)) == [ScriptError.OK]


def test_miniscript_hash_preimage_from_the_psbt(tmp_path: Path) -> None:
    node = SimNode(P)
    secret = b"\x42" * 32
    digest = sha256(secret)
    wallet = imported(
        tmp_path, node, "w", f"wsh(and_v(v:pk({XPRV[0]}/0/*),sha256({digest.hex()})))"
    )
    spk = next(s for s, i in wallet.keys.scripts.items() if i.position == 0)
    funding = fund(node, [spk])
    psbt, done = fill_psbt(wallet, spending(funding))
    assert not done
    psbt = spending(funding)
    psbt.inputs[0].preimages[(0x0B, digest)] = secret  # PSBT_IN_SHA256
    psbt, done = fill_psbt(wallet, psbt)
    assert done
    assert verify_all(roles.extract(psbt), list(funding.outputs)) == [ScriptError.OK]


def test_tapscript_miniscript_leaf(tmp_path: Path) -> None:
    node = SimNode(P)
    text = "tr({i}/0/*,{{pk({a}/0/*),and_v(v:pk({b}/0/*),older(5))}})"
    watch = imported(tmp_path, node, "watch", text.format(i=XPUB[2], a=XPUB[0], b=XPUB[1]))
    b_only = imported(tmp_path, None, "b", text.format(i=XPUB[2], a=XPUB[0], b=XPRV[1]))
    spk = next(s for s, i in watch.keys.scripts.items() if i.position == 1)
    funding = fund(node, [spk])
    psbt, _ = fill_psbt(watch, spending(funding, 5), sign=False)
    inp = psbt.inputs[0]
    assert inp.tap_internal_key is not None and inp.tap_merkle_root is not None
    assert len(inp.tap_leaf_scripts) == 2 and len(inp.tap_bip32_derivs) == 3
    signed, done = fill_psbt(b_only, Psbt.from_base64(psbt.to_base64()))
    assert done
    assert verify_all(roles.extract(signed), list(funding.outputs)) == [ScriptError.OK]
    # paying back to the wallet: the output gets its internal key, tree and origins
    back = roles.create([TxIn(OutPoint(funding.txid, 0), b"", 5)], [TxOut(99_000, spk)])
    back, _ = fill_psbt(watch, back, sign=False)
    out = back.outputs[0]
    assert out.tap_internal_key == inp.tap_internal_key
    assert out.tap_tree is not None and [leaf.depth for leaf in out.tap_tree] == [1, 1]
    assert {leaf.script for leaf in out.tap_tree} == {s for s, _ in inp.tap_leaf_scripts.values()}
    assert len(out.tap_bip32_derivs) == 3
    assert Psbt.from_base64(back.to_base64()).outputs[0].tap_tree == out.tap_tree


def test_sign_transaction_reports_inputs_it_cannot_sign(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, "w", entropy=b"\x13" * 32)
    funding = fund(node, [address_to_script(wallet.get_new_address(), P), ELSEWHERE])
    tx = spending(funding).compute_unsigned_tx()
    signed, errors = sign_transaction(wallet, tx, list(funding.outputs))
    assert [(e.index, e.error) for e in errors] == [(1, INCOMPLETE)]
    assert len(signed.inputs[0].witness) == 2 and signed.inputs[1].witness == ()
    assert verify_input(signed, 0, list(funding.outputs), STANDARD_SCRIPT_VERIFY_FLAGS) == (
        ScriptError.OK
    )
    one = Tx(tx.version, tx.inputs[:1], tx.outputs, tx.locktime)
    signed, errors = sign_transaction(wallet, one, list(funding.outputs[:1]))
    assert errors == []


def test_sign_transaction_legacy_and_nested_segwit(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, "w", entropy=b"\x14" * 32)
    types = ("legacy", "p2sh-segwit", "bech32m")
    funding = fund(node, [address_to_script(wallet.get_new_address("", t), P) for t in types])
    tx = spending(funding).compute_unsigned_tx()
    signed, errors = sign_transaction(wallet, tx, list(funding.outputs))
    assert errors == []
    assert [len(i.script_sig) > 0 for i in signed.inputs] == [True, True, False]
    assert [len(i.witness) for i in signed.inputs] == [0, 2, 1]
    assert verify_all(signed, list(funding.outputs)) == [ScriptError.OK] * 3
    # without the spent outputs: the wallet's own transactions give them
    again, errors = sign_transaction(wallet, tx, [None, None, None])
    assert errors == [] and again == signed
    stranger = Tx(2, [*tx.inputs, TxIn(OutPoint(b"\x44" * 32, 0))], tx.outputs)
    _, errors = sign_transaction(wallet, stranger, [None] * 4)
    # the taproot input too: BIP341 signs every spent output, and one is unknown
    assert [(e.index, e.error) for e in errors] == [
        (2, INCOMPLETE),
        (3, "Input not found or already spent"),
    ]


def test_own_key_in_a_foreign_script_found_through_the_psbts_paths(tmp_path: Path) -> None:
    node = SimNode(P)
    text = f"wsh(multi(1,{XPUB[0]}/0/*,{XPUB[1]}/0/*))"
    watch = imported(tmp_path, node, "watch", text)
    single = imported(tmp_path, None, "single", f"wpkh({XPRV[0]}/0/*)")
    spk = next(s for s, i in watch.keys.scripts.items() if i.position == 3)
    funding = fund(node, [spk])
    psbt, _ = fill_psbt(watch, spending(funding), sign=False)
    signed, done = fill_psbt(single, Psbt.from_base64(psbt.to_base64()))
    assert done
    assert verify_all(roles.extract(signed), list(funding.outputs)) == [ScriptError.OK]
    # without paths to go by, the wallet does not scan its whole keypool for the key
    bare, _ = fill_psbt(watch, spending(funding), sign=False, bip32derivs=False)
    _, done = fill_psbt(single, bare)
    assert not done


def test_an_encrypted_wallet_signs_only_when_unlocked(tmp_path: Path) -> None:
    """The seam between encryption and signing: a locked wallet's fill raises WalletLocked and
    changes nothing of the PSBT; unlocked, its sealed keys sign all four address types."""
    import os

    from peercash.wallet.crypter import WalletLocked
    from peercash.wallet.encryption import encrypt_wallet, lock_wallet, unlock_wallet

    node = SimNode(P)
    wallet = make(tmp_path, node, "w", entropy=b"\x12" * 32)
    encrypt_wallet(wallet, "correct horse", os.urandom, log2_n=10)
    types = ("legacy", "p2sh-segwit", "bech32", "bech32m")
    scripts = [address_to_script(wallet.get_new_address("", t), P) for t in types]
    funding = fund(node, scripts)
    psbt = spending(funding)
    before = psbt.serialize()
    with pytest.raises(WalletLocked):
        fill_psbt(wallet, psbt)
    assert psbt.serialize() == before
    unsigned, complete = fill_psbt(wallet, spending(funding), sign=False)
    assert not complete and all(i.non_witness_utxo is not None for i in unsigned.inputs)
    unlock_wallet(wallet, "correct horse", 60)
    psbt, complete = fill_psbt(wallet, psbt)
    assert complete
    tx = roles.extract(psbt)
    assert verify_all(tx, list(funding.outputs)) == [ScriptError.OK] * 4
    lock_wallet(wallet)
    with pytest.raises(WalletLocked):
        wallet.signing_keys()
