"""The template fast paths give exactly the general interpreter's answer, error included."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peercash.consensus.crypto import pubkey_from_secret, sign_ecdsa, sign_schnorr
from peercash.consensus.hashing import hash160
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.flags import VerifyFlags
from peercash.consensus.script.interpreter import (
    TransactionChecker,
    verify_script,
    verify_script_general,
)
from peercash.consensus.script.script import push_data
from peercash.consensus.script.sighash import (
    PrecomputedTxData,
    legacy_sighash,
    segwit_v0_sighash,
    taproot_sighash,
)
from peercash.consensus.script.taproot import tweak_private_key, tweak_public_key
from peercash.tools.conformance import fill_flags
from peercash.tools.vectors import BLOCKS_WITH_PREVOUTS, load_block

SECRET = hashlib.sha256(b"peercash fast path").digest()
PUBKEY = pubkey_from_secret(SECRET)
PUBKEY_FULL = pubkey_from_secret(SECRET, compressed=False)


# Flag sets Core allows (CLEANSTACK needs WITNESS, WITNESS needs P2SH).
def _valid_flags(bits: int) -> int:
    """A flag set Core allows from any bits below 1 << 21 (each flag is one of those bits)."""
    return fill_flags(bits)


def _both(tx: Tx, index: int, spent: list[TxOut], flags: int) -> None:
    txdata = PrecomputedTxData(tx, spent)
    txin = tx.inputs[index]
    spk = spent[index].script_pubkey
    checker = TransactionChecker(tx, index, spent[index].value, txdata)
    fast = verify_script(txin.script_sig, spk, txin.witness, flags, checker)
    general = verify_script_general(txin.script_sig, spk, txin.witness, flags, checker)
    assert fast is general, (fast, general, tx.serialize().hex(), flags)


def test_real_blocks_fast_equals_general() -> None:
    for name, flags in BLOCKS_WITH_PREVOUTS.items():
        _, spends = load_block(name)
        for spend in spends[::7]:
            for i in range(len(spend.tx.inputs)):
                _both(spend.tx, i, list(spend.spent), int(flags))
                # And with every policy flag on, which the fast path must also honour.
                _both(spend.tx, i, list(spend.spent), _valid_flags((1 << 21) - 1))


def _spend(script_pubkey: bytes, amount: int = 50_000) -> tuple[Tx, list[TxOut]]:
    spent = [TxOut(amount, script_pubkey)]
    tx = Tx(
        2,
        [TxIn(OutPoint(b"\x01" * 32, 0), b"", 0xFFFFFFFE)],
        [TxOut(amount - 1000, b"\x00\x14" + b"\x02" * 20)],
        0,
    )
    return tx, spent


def _with_input(tx: Tx, script_sig: bytes, witness: list[bytes]) -> Tx:
    old = tx.inputs[0]
    return Tx(tx.version, [TxIn(old.prevout, script_sig, old.sequence, witness)], tx.outputs)


def _p2wpkh(pubkey: bytes, hash_type: int) -> tuple[Tx, list[TxOut]]:
    spk = b"\x00\x14" + hash160(pubkey)
    tx, spent = _spend(spk)
    code = b"\x76\xa9\x14" + hash160(pubkey) + b"\x88\xac"
    msg = segwit_v0_sighash(code, tx, 0, hash_type, spent[0].value, PrecomputedTxData(tx, spent))
    sig = sign_ecdsa(SECRET, msg) + bytes([hash_type & 0xFF])
    return _with_input(tx, b"", [sig, pubkey]), spent


def _p2pkh(pubkey: bytes, hash_type: int) -> tuple[Tx, list[TxOut]]:
    spk = b"\x76\xa9\x14" + hash160(pubkey) + b"\x88\xac"
    tx, spent = _spend(spk)
    msg = legacy_sighash(spk, tx, 0, hash_type)
    sig = sign_ecdsa(SECRET, msg) + bytes([hash_type & 0xFF])
    return _with_input(tx, push_data(sig) + push_data(pubkey), []), spent


def _p2tr(hash_type: int) -> tuple[Tx, list[TxOut]]:
    xonly = PUBKEY[1:]
    output_key, _ = tweak_public_key(xonly, None)
    tx, spent = _spend(b"\x51\x20" + output_key)
    msg = taproot_sighash(tx, 0, hash_type, PrecomputedTxData(tx, spent), 0, None)
    assert msg is not None
    sig = sign_schnorr(tweak_private_key(SECRET, None), msg, b"\x00" * 32)
    if hash_type:
        sig += bytes([hash_type])
    return _with_input(tx, b"", [sig]), spent


def test_valid_templates_pass_both_ways() -> None:
    flags = _valid_flags((1 << 21) - 1)
    for tx, spent in (_p2wpkh(PUBKEY, 1), _p2pkh(PUBKEY, 1), _p2pkh(PUBKEY_FULL, 1), _p2tr(0)):
        txin = tx.inputs[0]
        checker = TransactionChecker(tx, 0, spent[0].value, PrecomputedTxData(tx, spent))
        result = verify_script(
            txin.script_sig, spent[0].script_pubkey, txin.witness, flags, checker
        )
        assert result.value == "OK"
        _both(tx, 0, spent, flags)


_mutation = st.tuples(
    st.sampled_from(["sig", "pubkey", "script_sig", "witness", "spk", "none"]),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=255),
)


def _mutate(tx: Tx, spent: list[TxOut], kind: str, pos: int, byte: int) -> tuple[Tx, list[TxOut]]:
    txin = tx.inputs[0]
    witness = list(txin.witness)
    script_sig = txin.script_sig
    spk = spent[0].script_pubkey

    def flip(data: bytes) -> bytes:
        if not data:
            return bytes([byte])
        b = bytearray(data)
        b[pos % len(b)] = byte
        return bytes(b)

    if kind == "sig" and witness:
        witness[0] = flip(witness[0])
    elif kind == "pubkey" and len(witness) > 1:
        witness[1] = flip(witness[1])
    elif kind == "script_sig":
        script_sig = flip(script_sig) if pos % 3 else script_sig + bytes([byte])
    elif kind == "witness":
        witness = witness[: pos % (len(witness) + 1)] if pos % 2 else [*witness, bytes([byte])]
    elif kind == "spk":
        spk = flip(spk)
    return _with_input(tx, script_sig, witness), [TxOut(spent[0].value, spk)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=st.sampled_from(["p2wpkh", "p2wpkh-full", "p2pkh", "p2pkh-full", "p2tr"]),
    hash_type=st.sampled_from([0, 1, 2, 3, 0x81, 0x83, 0x41, 4]),
    mutations=st.lists(_mutation, max_size=2),
    flag_bits=st.integers(min_value=0, max_value=(1 << 21) - 1),
)
def test_mutated_templates_fast_equals_general(
    template: str, hash_type: int, mutations: list[tuple[str, int, int]], flag_bits: int
) -> None:
    if template == "p2tr":
        tx, spent = _p2tr(hash_type if hash_type in (0, 1, 2, 3, 0x81, 0x83) else 0)
    elif template.startswith("p2wpkh"):
        tx, spent = _p2wpkh(PUBKEY_FULL if template.endswith("full") else PUBKEY, hash_type or 1)
    else:
        tx, spent = _p2pkh(PUBKEY_FULL if template.endswith("full") else PUBKEY, hash_type or 1)
    for kind, pos, byte in mutations:
        tx, spent = _mutate(tx, spent, kind, pos, byte)
    _both(tx, 0, spent, _valid_flags(flag_bits))


def test_all_zero_program_is_eval_false_both_ways() -> None:
    tx, spent = _spend(b"\x00\x14" + b"\x00" * 20)
    tx = _with_input(tx, b"", [b"\x01", PUBKEY])
    _both(tx, 0, spent, _valid_flags(0) | VerifyFlags.P2SH | VerifyFlags.WITNESS)
