"""P2SH multisig and tapscript ``<key> OP_CHECKSIG`` spends: the fast paths match the general
interpreter on valid spends and on many ways of breaking them, under random flag sets."""

from __future__ import annotations

import functools
import hashlib

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
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import MANDATORY_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import (
    TransactionChecker,
    verify_script,
    verify_script_general,
)
from peercash.consensus.script.script import push_data
from peercash.consensus.script.sighash import (
    PrecomputedTxData,
    legacy_sighash,
    taproot_sighash,
)
from peercash.consensus.script.taproot import TapLeaf, tapleaf_hash, taproot_output
from peercash.tools.conformance import fill_flags

SECRETS = [hashlib.sha256(b"peercash multisig %d" % i).digest() for i in range(16)]
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _valid_flags(bits: int, mandatory: bool) -> int:
    """A flag set Core allows from any bits below 1 << 21 (each flag is one of those bits)."""
    return fill_flags(bits | (int(MANDATORY_SCRIPT_VERIFY_FLAGS) if mandatory else 0))


_flags = st.builds(_valid_flags, st.integers(min_value=0, max_value=(1 << 21) - 1), st.booleans())


def _outcome(
    tx: Tx, spent: list[TxOut], flags: int, record: bool = False
) -> ScriptError | type[ValueError]:
    """The common answer of both paths (asserting they agree)."""
    txin = tx.inputs[0]
    spk = spent[0].script_pubkey
    results: list[ScriptError | type[ValueError]] = []
    for verify in (verify_script, verify_script_general):
        checker = TransactionChecker(tx, 0, spent[0].value, PrecomputedTxData(tx, spent))
        try:
            results.append(verify(txin.script_sig, spk, txin.witness, flags, checker))
        except ValueError:
            results.append(ValueError)
    assert results[0] is results[1], (results, tx.serialize().hex(), spk.hex(), hex(flags))
    if record:
        event(getattr(results[0], "name", "ValueError"))
    return results[0]


def _spending(spk: bytes, n_inputs: int = 2) -> tuple[Tx, list[TxOut]]:
    """A transaction whose input 0 spends ``spk`` (input 1, when there, something else)."""
    inputs = [TxIn(OutPoint(bytes([i + 1]) * 32, i), b"", 0xFFFFFFFD) for i in range(n_inputs)]
    outputs = [TxOut(40_000, b"\x00\x14" + b"\x07" * 20), TxOut(5_000, b"\x51")]
    spent = [TxOut(50_000, spk)] + [TxOut(20_000, b"\x51")] * (n_inputs - 1)
    return Tx(2, inputs, outputs, 0), spent


def _replace_input(tx: Tx, script_sig: bytes, witness: list[bytes]) -> Tx:
    old = tx.inputs[0]
    inputs = [TxIn(old.prevout, script_sig, old.sequence, witness), *tx.inputs[1:]]
    return Tx(tx.version, inputs, tx.outputs, tx.locktime)


def _der(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        b = v.to_bytes(v.bit_length() // 8 + 1, "big").lstrip(b"\x00")
        if not b or b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes([len(b)]) + b

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def _high_s(sig: bytes) -> bytes:
    """The same signature with S replaced by its negation (valid, but high S); anything that
    does not look like DER is returned unchanged."""
    if len(sig) < 9 or sig[0] != 0x30 or 6 + sig[3] >= len(sig):
        return sig
    len_r = sig[3]
    r = int.from_bytes(sig[4 : 4 + len_r], "big")
    len_s = sig[5 + len_r]
    s = int.from_bytes(sig[6 + len_r : 6 + len_r + len_s], "big")
    return _der(r, (_ORDER - s) % _ORDER) + sig[-1:]


# -- P2SH multisig ---------------------------------------------------------------------------


def _redeem(m: int, keys: list[bytes]) -> bytes:
    return (
        bytes([0x50 + m]) + b"".join(push_data(k) for k in keys) + bytes([0x50 + len(keys), 0xAE])
    )


@functools.lru_cache(maxsize=256)
def _multisig(
    m: int, n: int, uncompressed: int, signers: tuple[int, ...], hash_type: int
) -> tuple[Tx, list[TxOut], tuple[bytes, ...], bytes, tuple[bytes, ...]]:
    """A valid spend: (tx, spent, keys, redeem, signatures in key order)."""
    keys = [pubkey_from_secret(SECRETS[i], not uncompressed >> i & 1) for i in range(n)]
    redeem = _redeem(m, keys)
    spk = b"\xa9\x14" + hash160(redeem) + b"\x87"
    tx, spent = _spending(spk)
    msg = legacy_sighash(redeem, tx, 0, hash_type)
    sigs = tuple(sign_ecdsa(SECRETS[i], msg) + bytes([hash_type]) for i in signers)
    script_sig = b"\x00" + b"".join(push_data(s) for s in sigs) + push_data(redeem)
    return _replace_input(tx, script_sig, []), spent, tuple(keys), redeem, sigs


_multisig_shape = st.integers(min_value=1, max_value=5).flatmap(
    lambda n: st.tuples(
        st.integers(min_value=1, max_value=n),
        st.just(n),
        st.integers(min_value=0, max_value=(1 << n) - 1),
    )
)

_MS_MUTATIONS = [
    "none",
    "swap",
    "dummy",
    "dummy_op1",
    "nonminimal_sig",
    "nonminimal_redeem",
    "extra_push",
    "drop_sig",
    "high_s",
    "hash_type",
    "empty_sig",
    "all_empty",
    "sig_is_key",
    "flip_script_sig",
    "flip_sig",
    "redeem_changed",
    "witness",
    "truncate",
]


def _ms_build(
    mutations: list[tuple[str, int, int]],
    tx: Tx,
    spent: list[TxOut],
    keys: tuple[bytes, ...],
    redeem: bytes,
    sigs: tuple[bytes, ...],
) -> tuple[Tx, list[TxOut]]:
    """Rebuild the spend from its parts with every mutation applied, in order."""
    s = list(sigs)
    dummy = b"\x00"
    prefix = b""
    witness: list[bytes] = []
    nonminimal: set[int] = set()
    nonminimal_redeem = False
    for kind, a, b in mutations:
        i = a % len(s) if s else 0
        if kind == "swap" and len(s) > 1:
            s[i], s[(i + 1) % len(s)] = s[(i + 1) % len(s)], s[i]
        elif kind == "dummy":
            dummy = push_data(bytes([b]))
        elif kind == "dummy_op1":
            dummy = b"\x51"
        elif kind == "extra_push":
            prefix += push_data(bytes([b]) * (a % 3))
        elif kind == "drop_sig" and s:
            del s[i]
        elif kind == "high_s" and s and len(s[i]) > 8 and s[i][0] == 0x30:
            s[i] = _high_s(s[i])
        elif kind == "hash_type" and s and s[i]:
            s[i] = s[i][:-1] + bytes([b])
        elif kind == "empty_sig" and s:
            s[i] = b""
        elif kind == "all_empty":
            s = [b""] * len(s)
        elif kind == "sig_is_key" and s:
            s[i] = keys[b % len(keys)]
        elif kind == "flip_sig" and s and s[i]:
            sig = bytearray(s[i])
            sig[b % len(sig)] ^= 1 << (a % 8)
            s[i] = bytes(sig)
        elif kind == "redeem_changed":
            r = bytearray(redeem)
            r[a % len(r)] = b
            redeem = bytes(r)
            spent = [TxOut(spent[0].value, b"\xa9\x14" + hash160(redeem) + b"\x87"), *spent[1:]]
        elif kind == "nonminimal_redeem":
            nonminimal_redeem = True
        elif kind == "witness":
            witness.append(bytes([b]) * (a % 2))
        elif kind == "nonminimal_sig" and s:
            nonminimal.add(i)
    pushes = [
        b"\x4c" + bytes([len(x)]) + x if k in nonminimal else push_data(x) for k, x in enumerate(s)
    ]
    if nonminimal_redeem:
        redeem_push = b"\x4d" + len(redeem).to_bytes(2, "little") + redeem
    else:
        redeem_push = push_data(redeem)
    script_sig = prefix + dummy + b"".join(pushes) + redeem_push
    for kind, a, b in mutations:
        if not script_sig:
            break
        if kind == "flip_script_sig":
            ss = bytearray(script_sig)
            ss[(a * 7 + b) % len(ss)] = b
            script_sig = bytes(ss)
        elif kind == "truncate":
            script_sig = script_sig[: (a * 11 + b) % len(script_sig)]
    return _replace_input(tx, script_sig, witness), spent


def test_multisig_valid_spends_pass() -> None:
    for m, n, uncompressed in ((1, 1, 1), (1, 2, 0), (2, 3, 2), (3, 3, 7), (2, 5, 0), (15, 15, 0)):
        signers = tuple(range(n - m, n))
        tx, spent, *_ = _multisig(m, n, uncompressed, signers, 1)
        for bits in (0, (1 << 21) - 1):
            assert _outcome(tx, spent, _valid_flags(bits, True)) is ScriptError.OK


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=_multisig_shape,
    signer_seed=st.integers(min_value=0, max_value=1 << 16),
    hash_type=st.sampled_from([1, 1, 2, 3, 0x81, 0x82, 0x83, 0x41, 0]),
    mutations=st.lists(
        st.tuples(
            st.sampled_from(_MS_MUTATIONS),
            st.integers(min_value=0, max_value=255),
            st.integers(min_value=0, max_value=255),
        ),
        min_size=1,
        max_size=3,
    ),
    flags=_flags,
)
def test_multisig_mutations_fast_equals_general(
    shape: tuple[int, int, int],
    signer_seed: int,
    hash_type: int,
    mutations: list[tuple[str, int, int]],
    flags: int,
) -> None:
    m, n, uncompressed = shape
    # Any m of the n keys, in key order (the only order that can pass).
    order = sorted(range(n), key=lambda k: hashlib.sha256(bytes([signer_seed & 0xFF, k])).digest())
    signers = tuple(sorted(order[:m]))
    tx, spent, keys, redeem, sigs = _multisig(m, n, uncompressed, signers, hash_type)
    tx, spent = _ms_build(mutations, tx, spent, keys, redeem, sigs)
    _outcome(tx, spent, flags, record=True)


def test_multisig_large_n_and_key_equal_to_signature() -> None:
    """n above 16 (a pushed number) and a signature that FindAndDelete would remove: both go to
    the general path, and still agree."""
    keys = [pubkey_from_secret(s) for s in SECRETS[:3]]
    tx, spent = _spending(b"")
    for redeem in (
        bytes([0x51]) + b"".join(push_data(k) for k in keys) + b"\x01\x03\xae",
        _redeem(1, keys),
    ):
        spk = b"\xa9\x14" + hash160(redeem) + b"\x87"
        spent = [TxOut(50_000, spk), *spent[1:]]
        for sig in (keys[0], keys[2], b"\x30\x06\x02\x01\x01\x02\x01\x01\x01"):
            script_sig = b"\x00" + push_data(sig) + push_data(redeem)
            spend = _replace_input(tx, script_sig, [])
            for bits in (0, 1 << 16, (1 << 21) - 1):
                _outcome(spend, spent, _valid_flags(bits, True))


# -- tapscript <key> OP_CHECKSIG ------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _tapscript(
    hash_type: int, annex: bytes | None, key_size: int
) -> tuple[Tx, list[TxOut], list[bytes]]:
    """A valid script-path spend of ``<key> OP_CHECKSIG`` with one sibling leaf (one path
    node); for ``key_size`` other than 32 the leaf is not the template (and not valid)."""
    xonly = xonly_from_secret(SECRETS[1])
    key = (xonly + b"\x02" * 40)[:key_size]
    script = push_data(key) + b"\xac"
    out = taproot_output(xonly_from_secret(SECRETS[0]), [TapLeaf(script), TapLeaf(b"\x51")])
    tx, spent = _spending(out.script_pubkey)
    control = out.control_block_for(script)
    leaf = tapleaf_hash(0xC0, script)
    msg = taproot_sighash(tx, 0, hash_type, PrecomputedTxData(tx, spent), 1, annex, leaf)
    sig = b""
    if msg is not None:
        sig = sign_schnorr(SECRETS[1], msg) + (bytes([hash_type]) if hash_type else b"")
    witness = [sig, script, control] + ([annex] if annex is not None else [])
    return _replace_input(tx, b"", witness), spent, witness


_TS_MUTATIONS = [
    "none",
    "flip",
    "append",
    "drop",
    "prepend",
    "empty_sig",
    "hash_type_zero",
    "hash_type",
    "big_sig",
    "add_annex",
    "leaf_version",
    "script_sig",
    "control_extra",
]


def _ts_mutate(kind: str, a: int, b: int, tx: Tx, witness: list[bytes]) -> Tx:
    w = list(witness)
    script_sig = b""
    if kind == "flip":
        e = bytearray(w[a % len(w)] or b"\x00")
        e[b % len(e)] ^= 1 << (a % 8)
        w[a % len(w)] = bytes(e)
    elif kind == "append":
        w.append(bytes([b]) * (a % 3))
    elif kind == "prepend":
        w.insert(0, bytes([b]) * (a % 3))
    elif kind == "drop":
        del w[a % len(w)]
    elif kind == "empty_sig":
        w[0] = b""
    elif kind == "hash_type_zero":
        w[0] = w[0][:64] + b"\x00"
    elif kind == "hash_type":
        w[0] = w[0][:64] + bytes([b])
    elif kind == "big_sig":
        w[0] = (w[0] + bytes(521))[: 520 + a % 2]
    elif kind == "add_annex":
        w.append(b"\x50" + bytes([b]) * (a % 4))
    elif kind == "leaf_version" and len(w) > 2:
        c = bytearray(w[2])
        c[0] = (c[0] & 1) | (b & 0xFE)
        w[2] = bytes(c)
    elif kind == "script_sig":
        script_sig = bytes([a % 0x4C]) + bytes(a % 0x4C)
    elif kind == "control_extra" and len(w) > 2:
        w[2] = w[2] + bytes([b]) * (1 + a % 32)
    return _replace_input(tx, script_sig, w)


def test_tapscript_valid_spends_pass() -> None:
    for hash_type in (0, 1, 2, 3, 0x81, 0x82, 0x83):
        for annex in (None, b"\x50", b"\x50\x01\x02"):
            tx, spent, _ = _tapscript(hash_type, annex, 32)
            for bits in (0, (1 << 21) - 1):
                assert _outcome(tx, spent, _valid_flags(bits, True)) is ScriptError.OK


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hash_type=st.sampled_from([0, 0, 1, 2, 3, 0x81, 0x82, 0x83]),
    annex=st.sampled_from([None, None, b"\x50", b"\x50\xff\x00"]),
    key_size=st.sampled_from([32, 32, 32, 33, 31, 0, 1]),
    mutations=st.lists(
        st.tuples(
            st.sampled_from(_TS_MUTATIONS),
            st.integers(min_value=0, max_value=255),
            st.integers(min_value=0, max_value=255),
        ),
        min_size=1,
        max_size=2,
    ),
    flags=_flags,
)
def test_tapscript_mutations_fast_equals_general(
    hash_type: int,
    annex: bytes | None,
    key_size: int,
    mutations: list[tuple[str, int, int]],
    flags: int,
) -> None:
    tx, spent, witness = _tapscript(hash_type, annex, key_size)
    for kind, a, b in mutations:
        tx = _ts_mutate(kind, a, b, tx, witness)
        witness = list(tx.inputs[0].witness)
        if not witness:
            break
    _outcome(tx, spent, flags, record=True)
