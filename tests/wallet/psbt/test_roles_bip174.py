"""BIP174's role walk-through: each role reproduces the BIP's PSBT byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peercash.consensus.address import decode_wif
from peercash.consensus.crypto import pubkey_from_secret
from peercash.consensus.params import TESTNET
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.wallet.bip32 import ExtendedKey, parse_path
from peercash.wallet.descriptor import KeyOrigin
from peercash.wallet.psbt import Psbt, PsbtError, roles
from peercash.wallet.signer import sign_psbt

DATA = json.loads((Path(__file__).parents[2] / "data/psbt/bip174_roles.json").read_text())


def _provider() -> roles.Provider:
    master = ExtendedKey.parse(DATA["master_tprv"], TESTNET)
    provider = roles.Provider()
    for script in DATA["updater"]["redeem_scripts"] + DATA["updater"]["witness_scripts"]:
        provider.add_script(bytes.fromhex(script))
    for pub, path in DATA["updater"]["keys"]:
        steps = parse_path(path)
        assert master.derive(steps).pubkey == bytes.fromhex(pub)
        provider.origins[bytes.fromhex(pub)] = KeyOrigin(master.fingerprint, steps)
    return provider


def _created() -> Psbt:
    c = DATA["creator"]
    ins = [TxIn(OutPoint(bytes.fromhex(t)[::-1], n), b"", 0xFFFFFFFF) for t, n in c["inputs"]]
    outs = [TxOut(round(float(a) * 100_000_000), bytes.fromhex(s)) for s, a in c["outputs"]]
    return roles.create(ins, outs)


def _updated() -> Psbt:
    psbt = _created()
    txs = [Tx.from_hex(t) for t in DATA["updater"]["prev_txs"]]
    roles.update(psbt, _provider(), txs)
    return psbt


def _keys(wifs: list[str]) -> dict[bytes, bytes]:
    out = {}
    for wif in wifs:
        secret, compressed = decode_wif(wif, TESTNET)
        out[pubkey_from_secret(secret, compressed)] = secret
    return out


def test_creator() -> None:
    assert _created().to_base64() == DATA["creator"]["psbt"]


def test_updater() -> None:
    assert _updated().to_base64() == DATA["updater"]["psbt"]


def test_updater_sighash_all() -> None:
    psbt = Psbt.from_base64(DATA["updater"]["psbt"])
    for inp in psbt.inputs:
        inp.sighash_type = 1
    assert psbt.to_base64() == DATA["updater_sighash_all"]


@pytest.mark.parametrize("signer", ["signer1", "signer2"])
def test_signers(signer: str) -> None:
    psbt = Psbt.from_base64(DATA["updater_sighash_all"])
    sign_psbt(psbt, _keys(DATA[signer]["keys"]))
    assert psbt.to_base64() == DATA[signer]["psbt"]


def test_combiner() -> None:
    a = Psbt.from_base64(DATA["signer1"]["psbt"])
    b = Psbt.from_base64(DATA["signer2"]["psbt"])
    assert roles.combine([a, b]).to_base64() == DATA["combiner"]
    assert roles.combine([b, a]).to_base64() == DATA["combiner"]


def test_finalizer_and_extractor() -> None:
    psbt = Psbt.from_base64(DATA["combiner"])
    assert roles.finalize(psbt) is True
    assert psbt.to_base64() == DATA["finalizer"]
    assert roles.extract(psbt).serialize().hex() == DATA["extractor_tx"]


def test_combiner_orders_unknown_keys() -> None:
    u = DATA["unknown_combine"]
    a, b = (Psbt.from_base64(u[k]) for k in ("a", "b"))
    assert roles.combine([a, b]).to_base64() == u["combined"]


def test_combiner_refuses_other_transactions() -> None:
    with pytest.raises(PsbtError, match=r"^PSBTs not compatible \(different transactions\)$"):
        roles.combine([_created(), Psbt.from_base64(DATA["unknown_combine"]["a"])])


def test_extract_refuses_incomplete() -> None:
    with pytest.raises(PsbtError, match=r"^PSBT is not complete$"):
        roles.extract(Psbt.from_base64(DATA["combiner"]))
