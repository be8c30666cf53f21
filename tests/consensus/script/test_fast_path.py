"""The template fast paths give exactly the general interpreter's answer, error included.

``verify_script`` first tries ``_verify_fast`` (native witness programs with an empty scriptSig,
P2PKH by two pushes, P2SH multisig), and inside the witness program the tapscript
``<key> OP_CHECKSIG`` shortcut; ``verify_script_general`` runs everything through ``eval_script``.
Each comparison below also counts the ``eval_script`` runs on each side, so that a comparison is
known to have set a fast path against the interpreter and not a function against itself.
"""

from __future__ import annotations

import hashlib
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from peercash.consensus.crypto import (
    pubkey_from_secret,
    sign_ecdsa,
    sign_schnorr,
    xonly_from_secret,
)
from peercash.consensus.hashing import hash160
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script import interpreter
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import MANDATORY_SCRIPT_VERIFY_FLAGS, VerifyFlags
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
from peercash.consensus.script.taproot import (
    TapLeaf,
    tapleaf_hash,
    taproot_output,
    tweak_private_key,
    tweak_public_key,
)
from peercash.tools.conformance import fill_flags
from peercash.tools.vectors import BLOCKS_WITH_PREVOUTS, load_block

SECRET = hashlib.sha256(b"peercash fast path").digest()
PUBKEY = pubkey_from_secret(SECRET)
PUBKEY_FULL = pubkey_from_secret(SECRET, compressed=False)


# Flag sets Core allows (CLEANSTACK needs WITNESS, WITNESS needs P2SH).
def _valid_flags(bits: int) -> int:
    """A flag set Core allows from any bits below 1 << 21 (each flag is one of those bits)."""
    return fill_flags(bits)


class _Counting:
    """``eval_script`` that counts its runs, patched into the interpreter module."""

    def __init__(self) -> None:
        self.runs = 0
        self.real = interpreter.eval_script

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.runs += 1
        self.real(*args, **kwargs)


def _both(
    tx: Tx, index: int, spent: list[TxOut], flags: int, txdata: PrecomputedTxData | None = None
) -> bool:
    """Assert both paths give the same answer; True when the fast side answered without running
    the interpreter at all (a fast path did the work), while the general side did run it."""
    if txdata is None:
        txdata = PrecomputedTxData(tx, spent)
    txin = tx.inputs[index]
    spk = spent[index].script_pubkey
    checker = TransactionChecker(tx, index, spent[index].value, txdata)
    counting = _Counting()
    with mock.patch.object(interpreter, "eval_script", counting):
        fast = verify_script(txin.script_sig, spk, txin.witness, flags, checker)
        fast_runs = counting.runs
        general = verify_script_general(txin.script_sig, spk, txin.witness, flags, checker)
        general_runs = counting.runs - fast_runs
    assert fast is general, (fast, general, tx.serialize().hex(), flags)
    return fast_runs == 0 and general_runs > 0


# Inputs of each block, as tests/data/SOURCES.md counts them (the prevout count equals the
# non-coinbase input count).
_BLOCK_INPUTS = {
    "block300025": 1427,
    "block928816": 8692,
    "block928828": 1972,
    "block928831": 9984,
    "block928848": 11215,
    "block928849": 8594,
    "block928927": 9983,
    "block1087400": 205,
}


def _is_p2wpkh_or_p2pkh(spk: bytes) -> bool:
    return (len(spk) == 22 and spk[:2] == b"\x00\x14") or (
        len(spk) == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac"
    )


def test_real_blocks_fast_equals_general() -> None:
    """Every input of every block, with the block's flags and with every policy flag on (which
    the fast path must also honour)."""
    assert set(_BLOCK_INPUTS) == set(BLOCKS_WITH_PREVOUTS)
    all_flags = _valid_flags((1 << 21) - 1)
    for name, flags in BLOCKS_WITH_PREVOUTS.items():
        _, spends = load_block(name)
        compared = fast = templates = 0
        for spend in spends:
            spent = list(spend.spent)
            txdata = PrecomputedTxData(spend.tx, spent)
            for i in range(len(spend.tx.inputs)):
                templates += _is_p2wpkh_or_p2pkh(spent[i].script_pubkey)
                for f in (int(flags), all_flags):
                    fast += _both(spend.tx, i, spent, f, txdata)
                    compared += 1
        assert compared == 2 * _BLOCK_INPUTS[name], name
        # Every P2WPKH and P2PKH input was answered by the fast path under both flag sets.
        assert templates > 0 and fast >= 2 * templates, (name, fast, templates)


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
    """A key-path spend: ``_verify_fast`` answers it without evaluating the scriptPubKey."""
    xonly = PUBKEY[1:]
    output_key, _ = tweak_public_key(xonly, None)
    tx, spent = _spend(b"\x51\x20" + output_key)
    msg = taproot_sighash(tx, 0, hash_type, PrecomputedTxData(tx, spent), 0, None)
    assert msg is not None
    sig = sign_schnorr(tweak_private_key(SECRET, None), msg, b"\x00" * 32)
    if hash_type:
        sig += bytes([hash_type])
    return _with_input(tx, b"", [sig]), spent


_TAP_INTERNAL = hashlib.sha256(b"peercash fast path internal").digest()


def _p2tr_script(hash_type: int) -> tuple[Tx, list[TxOut]]:
    """A script-path spend of the one-leaf tree ``<key> OP_CHECKSIG``: the fast side takes the
    tapscript shortcut, the general side runs the leaf through the interpreter."""
    xonly = PUBKEY[1:]
    leaf_script = push_data(xonly) + b"\xac"
    out = taproot_output(xonly_from_secret(_TAP_INTERNAL), TapLeaf(leaf_script))
    tx, spent = _spend(out.script_pubkey)
    leaf = tapleaf_hash(0xC0, leaf_script)
    msg = taproot_sighash(tx, 0, hash_type, PrecomputedTxData(tx, spent), 1, None, leaf)
    assert msg is not None
    sig = sign_schnorr(SECRET, msg, b"\x00" * 32)
    if hash_type:
        sig += bytes([hash_type])
    return _with_input(tx, b"", [sig, leaf_script, out.control_block_for(leaf_script)]), spent


def test_valid_templates_pass_both_ways() -> None:
    flags = _valid_flags((1 << 21) - 1)
    spends = [
        _p2wpkh(PUBKEY, 1),
        _p2pkh(PUBKEY, 1),
        _p2pkh(PUBKEY_FULL, 1),
        _p2tr(0),
        _p2tr(0x83),
        _p2tr_script(0),
        _p2tr_script(0x81),
    ]
    for tx, spent in spends:
        txin = tx.inputs[0]
        checker = TransactionChecker(tx, 0, spent[0].value, PrecomputedTxData(tx, spent))
        result = verify_script(
            txin.script_sig, spent[0].script_pubkey, txin.witness, flags, checker
        )
        assert result is ScriptError.OK
        # The fast side answered without the interpreter: this compared two different paths.
        assert _both(tx, 0, spent, flags), spent[0].script_pubkey.hex()


def test_tapscript_shortcut_is_what_the_fast_side_takes() -> None:
    """With the shortcut the leaf is never evaluated; without it (``verify_script_general``) it
    is, and a wrong signature gives the same error either way."""
    tx, spent = _p2tr_script(0)
    assert _both(tx, 0, spent, int(VerifyFlags.P2SH | VerifyFlags.WITNESS | VerifyFlags.TAPROOT))
    sig, leaf_script, control = tx.inputs[0].witness
    bad = _with_input(tx, b"", [bytes([sig[0] ^ 1]) + sig[1:], leaf_script, control])
    flags = _valid_flags((1 << 21) - 1)
    assert _both(bad, 0, spent, flags)
    checker = TransactionChecker(bad, 0, spent[0].value, PrecomputedTxData(bad, spent))
    got = verify_script(b"", spent[0].script_pubkey, bad.inputs[0].witness, flags, checker)
    assert got is ScriptError.SCHNORR_SIG


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
    template=st.sampled_from(
        ["p2wpkh", "p2wpkh-full", "p2pkh", "p2pkh-full", "p2tr", "p2tr-script"]
    ),
    hash_type=st.sampled_from([0, 1, 2, 3, 0x81, 0x83, 0x41, 4]),
    mutations=st.lists(_mutation, max_size=2),
    flag_bits=st.integers(min_value=0, max_value=(1 << 21) - 1),
    consensus=st.booleans(),
)
def test_mutated_templates_fast_equals_general(
    template: str,
    hash_type: int,
    mutations: list[tuple[str, int, int]],
    flag_bits: int,
    consensus: bool,
) -> None:
    """Random bits alone rarely hold P2SH, WITNESS and TAPROOT together, which every fast path
    needs; half the examples add all the consensus flags to them."""
    if template.startswith("p2tr"):
        build = _p2tr_script if template == "p2tr-script" else _p2tr
        tx, spent = build(hash_type if hash_type in (0, 1, 2, 3, 0x81, 0x83) else 0)
    elif template.startswith("p2wpkh"):
        tx, spent = _p2wpkh(PUBKEY_FULL if template.endswith("full") else PUBKEY, hash_type or 1)
    else:
        tx, spent = _p2pkh(PUBKEY_FULL if template.endswith("full") else PUBKEY, hash_type or 1)
    for kind, pos, byte in mutations:
        tx, spent = _mutate(tx, spent, kind, pos, byte)
    if consensus:
        flag_bits |= int(MANDATORY_SCRIPT_VERIFY_FLAGS)
    event("fast path" if _both(tx, 0, spent, _valid_flags(flag_bits)) else "interpreter")


def test_all_zero_program_is_eval_false_both_ways() -> None:
    tx, spent = _spend(b"\x00\x14" + b"\x00" * 20)
    tx = _with_input(tx, b"", [b"\x01", PUBKEY])
    _both(tx, 0, spent, _valid_flags(0) | VerifyFlags.P2SH | VerifyFlags.WITNESS)
