"""Elliptic-curve signatures: the one module that talks to libsecp256k1.

Layer 0 (consensus). The script interpreter calls the verifiers; wallets, builders and tests call
the signers and key helpers. Everything goes through coincurve's cffi bindings to libsecp256k1
(``coincurve._libsecp256k1``); there is no curve arithmetic written in Python here.

Error contract: the verifiers never raise on hostile input (bad keys, bad encodings, wrong
lengths of signatures or keys all give ``False``); only a message of the wrong length for ECDSA, a
programming error, raises ``ValueError``. Signers and key helpers raise ``ValueError`` on an
invalid secret or tweak.

Concurrency: every function is pure. The one piece of state is a bounded cache of parsed public
keys, which memoizes a pure function and tolerates concurrent use (a lost update only costs a
re-parse); the shared libsecp256k1 context is only read, which libsecp256k1 allows from any
number of threads.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

__all__ = [
    "ecdsa_check_low_s",
    "parse_der_lax",
    "pubkey_from_secret",
    "sign_ecdsa",
    "sign_schnorr",
    "tweak_secret_xonly",
    "verify_ecdsa",
    "verify_schnorr",
    "xonly_from_secret",
    "xonly_tweak_add",
    "xonly_tweak_add_check",
]

_CTX = GLOBAL_CONTEXT.ctx
_NULL = ffi.NULL
_new = ffi.new

# Resolved once: the hot path should not look up C types or library symbols by name per call.
_PUBKEY_T = ffi.typeof("secp256k1_pubkey *")
_ECDSA_SIG_T = ffi.typeof("secp256k1_ecdsa_signature *")
_XONLY_T = ffi.typeof("secp256k1_xonly_pubkey *")
_ec_pubkey_parse = lib.secp256k1_ec_pubkey_parse
_ecdsa_parse_compact = lib.secp256k1_ecdsa_signature_parse_compact
_ecdsa_parse_der = lib.secp256k1_ecdsa_signature_parse_der
_ecdsa_normalize = lib.secp256k1_ecdsa_signature_normalize
_ecdsa_verify = lib.secp256k1_ecdsa_verify
_xonly_parse = lib.secp256k1_xonly_pubkey_parse
_xonly_tweak_add_check = lib.secp256k1_xonly_pubkey_tweak_add_check
_schnorr_verify = lib.secp256k1_schnorrsig_verify

_ZERO64 = bytes(64)
# Half the group order, big-endian: an S above this is "high" and gets normalized.
_HALF_ORDER = bytes.fromhex("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")
_COMPRESSED = lib.SECP256K1_EC_COMPRESSED
_UNCOMPRESSED = lib.SECP256K1_EC_UNCOMPRESSED

# ``secp256k1_ec_pubkey_parse`` accepts exactly these lengths and first bytes (06/07 are the
# "hybrid" encodings, which Core has always accepted in legacy and segwit v0 scripts).
_PUBKEY_PREFIXES_33 = frozenset((0x02, 0x03))
_PUBKEY_PREFIXES_65 = frozenset((0x04, 0x06, 0x07))

# The magic number that libsecp256k1 expects at the start of ``secp256k1_schnorrsig_extraparams``.
_SCHNORR_EXTRAPARAMS_MAGIC = b"\xda\x6f\xb3\x8c"


# -- ECDSA ------------------------------------------------------------------------------------

PUBKEY_CACHE_SIZE = 8192
"""How many parsed ECDSA public keys ``verify_ecdsa`` remembers (least recently used go first).

Parsing a compressed key costs a square root, about an eighth of a verification; keys recur a lot
(38% of the signatures in mainnet block 300,025 use a key already seen in that block, 96% in
testnet block 928,849). The cache only memoizes a pure function: it never changes an answer.
"""

# An OrderedDict, not a dict: evicting the oldest entry of a plain dict that is forever popped
# and re-inserted means skipping its deleted slots (microseconds per miss); popitem is O(1).
_pubkey_cache: OrderedDict[bytes, Any] = OrderedDict()


def _parsed_pubkey(pubkey: bytes) -> Any:
    """The libsecp256k1 form of a serialized key, or None if it does not parse (not cached)."""
    cache = _pubkey_cache
    pk = cache.get(pubkey)
    if pk is not None:
        # Another thread may have evicted it meanwhile: then it simply stays out.
        with contextlib.suppress(KeyError):
            cache.move_to_end(pubkey)  # the most recently used
        return pk
    pk = _new(_PUBKEY_T)
    if not _ec_pubkey_parse(_CTX, pk, pubkey, len(pubkey)):
        return None
    cache[pubkey] = pk
    if len(cache) > PUBKEY_CACHE_SIZE:
        with contextlib.suppress(KeyError):
            cache.popitem(last=False)
    return pk


def _lax_der_integer(sig: bytes, pos: int) -> tuple[int, int] | None:
    """Read one INTEGER header of a loosely-encoded DER signature at ``pos``.

    Returns ``(start, length)`` of the integer's content, or None when even the lax rules fail.
    Long-form lengths may carry any number of leading zero bytes but at most three significant
    bytes, as in Core.
    """
    end = len(sig)
    if pos >= end or sig[pos] != 0x02:
        return None
    pos += 1
    if pos >= end:
        return None
    first = sig[pos]
    pos += 1
    if first & 0x80:
        n_len = first & 0x7F
        if n_len > end - pos:
            return None
        while n_len and sig[pos] == 0:
            pos += 1
            n_len -= 1
        if n_len >= 4:
            return None
        length = int.from_bytes(sig[pos : pos + n_len], "big")
        pos += n_len
    else:
        length = first
    if length > end - pos:
        return None
    return pos, length


def parse_der_lax(sig: bytes) -> bytes | None:
    """Core's permissive DER reading of an ECDSA signature, as the 64-byte compact ``r || s``.

    This is the reading ``CPubKey::Verify`` has always applied (its ``ecdsa_signature_parse_der_lax``):
    it tolerates negative integers, excess zero padding, over-long length descriptors and garbage
    after the signature, because blocks from before BIP66 contain all of those. Returns None when
    the bytes are not a signature even by these rules. An ``r`` or ``s`` wider than 32 bytes gives
    the all-zero signature, which never verifies; so does a value at or above the group order,
    once ``secp256k1_ecdsa_signature_parse_compact`` has looked at it.
    """
    end = len(sig)
    if end == 0 or sig[0] != 0x30:
        return None
    if end == 1:
        return None
    # Fast path for the usual shape (short-form lengths throughout); the same reading as below.
    # An integer of at most 32 bytes is simply left-padded (its own leading zeros included).
    if end >= 8 and sig[2] == 0x02 and not sig[1] & 0x80:
        r_len = sig[3]
        s_tag = 4 + r_len
        if r_len < 0x80 and s_tag + 2 <= end and sig[s_tag] == 0x02:
            s_len = sig[s_tag + 1]
            s_end = s_tag + 2 + s_len
            if s_len < 0x80 and s_end <= end:
                r = sig[4:s_tag]
                if r_len != 32:
                    if r_len > 32:
                        r = r.lstrip(b"\x00")
                        if len(r) > 32:
                            return _ZERO64
                    r = bytes(32 - len(r)) + r
                s = sig[s_tag + 2 : s_end]
                if s_len != 32:
                    if s_len > 32:
                        s = s.lstrip(b"\x00")
                        if len(s) > 32:
                            return _ZERO64
                    s = bytes(32 - len(s)) + s
                return r + s
    pos = 2
    seq_len = sig[1]
    if seq_len & 0x80:
        # The sequence length itself is never checked: just skip its long-form bytes.
        skip = seq_len & 0x7F
        if skip > end - pos:
            return None
        pos += skip
    r_hdr = _lax_der_integer(sig, pos)
    if r_hdr is None:
        return None
    r_pos, r_len = r_hdr
    s_hdr = _lax_der_integer(sig, r_pos + r_len)
    if s_hdr is None:
        return None
    s_pos, s_len = s_hdr
    r = sig[r_pos : r_pos + r_len].lstrip(b"\x00")
    s = sig[s_pos : s_pos + s_len].lstrip(b"\x00")
    if len(r) > 32 or len(s) > 32:
        return _ZERO64
    return bytes(32 - len(r)) + r + bytes(32 - len(s)) + s


def _load_signature(sig_der: bytes) -> object | None:
    """Lax-parse a DER signature into a ``secp256k1_ecdsa_signature``, as Core does."""
    compact = parse_der_lax(sig_der)
    if compact is None:
        return None
    sig: object = _new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_signature_parse_compact(_CTX, sig, compact):
        # r or s at or above the group order: Core substitutes the (never valid) zero signature.
        lib.secp256k1_ecdsa_signature_parse_compact(_CTX, sig, _ZERO64)
    return sig


def verify_ecdsa(pubkey: bytes, sig_der: bytes, msg32: bytes) -> bool:
    """Check an ECDSA signature the way Core's ``CPubKey::Verify`` does.

    ``pubkey`` must be a 33-byte compressed key (02/03) or a 65-byte uncompressed or hybrid key
    (04/06/07) that lies on the curve. ``sig_der`` is read with the lax DER rules of
    ``parse_der_lax`` (no sighash byte). A high-S signature is normalized to low S before checking,
    because consensus has never required low S (that is the LOW_S policy flag's business).
    """
    if len(msg32) != 32:
        raise ValueError("an ECDSA message hash is 32 bytes")
    n = len(pubkey)
    if n == 33:
        if pubkey[0] not in _PUBKEY_PREFIXES_33:
            return False
    elif n == 65:
        if pubkey[0] not in _PUBKEY_PREFIXES_65:
            return False
    else:
        return False
    ctx = _CTX
    sig = _new(_ECDSA_SIG_T)
    # Strict DER with positive integers (every signature since BIP66) parses in C, where
    # libsecp256k1 reads it exactly as the lax rules would (an out-of-range R or S becomes zero
    # and fails to verify). A negative-looking integer, which Core reads as unsigned, and every
    # looser encoding take the lax reading.
    n_sig = len(sig_der)
    if not (
        n_sig >= 8
        and sig_der[1] < 0x80
        and sig_der[3] < 0x80
        and 6 + sig_der[3] < n_sig
        and not sig_der[4] & 0x80
        and not sig_der[6 + sig_der[3]] & 0x80
        and _ecdsa_parse_der(ctx, sig, sig_der, n_sig)
    ):
        compact = parse_der_lax(sig_der)
        if compact is None:
            return False
        if not _ecdsa_parse_compact(ctx, sig, compact):
            return False  # r or s >= n: Core's zero signature, which never verifies
    pk = _parsed_pubkey(pubkey)
    if pk is None:
        return False
    # libsecp256k1 verifies low-S signatures only; Core normalizes first.
    _ecdsa_normalize(ctx, sig, sig)
    return bool(_ecdsa_verify(ctx, sig, msg32, pk))


def ecdsa_check_low_s(sig_der: bytes) -> bool:
    """Core's ``CPubKey::CheckLowS``: the lax-parsed signature's S is at most half the order.

    False when the bytes do not lax-parse at all. (The LOW_S policy flag uses this after the
    strict DER check, so in practice the input is strict DER.)
    """
    sig = _load_signature(sig_der)
    if sig is None:
        return False
    return not lib.secp256k1_ecdsa_signature_normalize(_CTX, _NULL, sig)


def sign_ecdsa(secret32: bytes, msg32: bytes) -> bytes:
    """Sign a 32-byte hash with RFC6979 nonces; returns a strict-DER, low-S signature."""
    if len(secret32) != 32 or len(msg32) != 32:
        raise ValueError("a secret key and a message hash are 32 bytes each")
    ctx = _CTX
    sig = _new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_sign(ctx, sig, msg32, secret32, _NULL, _NULL):
        raise ValueError("invalid secret key")
    out = _new("unsigned char[72]")
    out_len = _new("size_t *", 72)
    lib.secp256k1_ecdsa_signature_serialize_der(ctx, out, out_len, sig)
    return bytes(ffi.buffer(out, out_len[0]))


# -- Schnorr (BIP340) ------------------------------------------------------------------------


def verify_schnorr(xonly32: bytes, sig64: bytes, msg: bytes) -> bool:
    """BIP340 verification of a 64-byte signature over a message of any length."""
    if len(xonly32) != 32 or len(sig64) != 64:
        return False
    ctx = _CTX
    pk = _new(_XONLY_T)
    if not _xonly_parse(ctx, pk, xonly32):
        return False
    return bool(_schnorr_verify(ctx, sig64, msg, len(msg), pk))


def _keypair(secret32: bytes) -> object:
    if len(secret32) != 32:
        raise ValueError("a secret key is 32 bytes")
    keypair = _new("secp256k1_keypair *")
    if not lib.secp256k1_keypair_create(_CTX, keypair, secret32):
        raise ValueError("invalid secret key")
    return keypair


def sign_schnorr(secret32: bytes, msg: bytes, aux32: bytes | None = None) -> bytes:
    """BIP340 signature over ``msg`` (any length) with auxiliary randomness ``aux32``.

    ``aux32`` None signs deterministically, exactly as 32 zero bytes would (libsecp256k1 uses the
    precomputed hash of zero aux data; the BIP341 wallet vectors are signed that way). Callers that
    want BIP340's protection against side channels pass 32 fresh random bytes; this module never
    draws randomness itself.
    """
    if aux32 is not None and len(aux32) != 32:
        raise ValueError("aux_rand is 32 bytes")
    keypair = _keypair(secret32)
    aux = _NULL if aux32 is None else aux32
    sig = _new("unsigned char[64]")
    if len(msg) == 32:
        ok = lib.secp256k1_schnorrsig_sign32(_CTX, sig, msg, keypair, aux)
    else:
        params = _new("secp256k1_schnorrsig_extraparams *")
        ffi.memmove(params.magic, _SCHNORR_EXTRAPARAMS_MAGIC, 4)
        params.noncefp = _NULL  # libsecp256k1's BIP340 nonce function
        # Keep the aux buffer alive for the duration of the call.
        aux_buf = _NULL if aux32 is None else _new("unsigned char[32]", aux32)
        params.ndata = aux_buf
        ok = lib.secp256k1_schnorrsig_sign_custom(_CTX, sig, msg, len(msg), keypair, params)
    if not ok:
        raise ValueError("signing failed")
    return bytes(ffi.buffer(sig, 64))


# -- keys ------------------------------------------------------------------------------------


def pubkey_from_secret(secret32: bytes, compressed: bool = True) -> bytes:
    """The public key of a secret, serialized in 33 (compressed) or 65 bytes."""
    if len(secret32) != 32:
        raise ValueError("a secret key is 32 bytes")
    ctx = _CTX
    pk = _new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_create(ctx, pk, secret32):
        raise ValueError("invalid secret key")
    size = 33 if compressed else 65
    out = _new("unsigned char[65]")
    out_len = _new("size_t *", size)
    lib.secp256k1_ec_pubkey_serialize(
        ctx, out, out_len, pk, _COMPRESSED if compressed else _UNCOMPRESSED
    )
    return bytes(ffi.buffer(out, out_len[0]))


def _xonly_bytes(xonly: object) -> bytes:
    out = _new("unsigned char[32]")
    lib.secp256k1_xonly_pubkey_serialize(_CTX, out, xonly)
    return bytes(ffi.buffer(out, 32))


def xonly_from_secret(secret32: bytes) -> bytes:
    """The 32-byte x-only (BIP340) public key of a secret."""
    keypair = _keypair(secret32)
    xonly = _new("secp256k1_xonly_pubkey *")
    lib.secp256k1_keypair_xonly_pub(_CTX, xonly, _NULL, keypair)
    return _xonly_bytes(xonly)


def xonly_tweak_add(xonly32: bytes, tweak32: bytes) -> tuple[bytes, int]:
    """``P + t·G`` for the even-Y point ``P`` of an x-only key: returns (x-only result, Y parity).

    Raises ValueError when the key is not on the curve or the tweak is not below the order (or
    the result is the point at infinity).
    """
    if len(xonly32) != 32 or len(tweak32) != 32:
        raise ValueError("an x-only key and a tweak are 32 bytes each")
    ctx = _CTX
    internal = _new("secp256k1_xonly_pubkey *")
    if not lib.secp256k1_xonly_pubkey_parse(ctx, internal, xonly32):
        raise ValueError("not an x-only public key")
    full = _new("secp256k1_pubkey *")
    if not lib.secp256k1_xonly_pubkey_tweak_add(ctx, full, internal, tweak32):
        raise ValueError("invalid tweak")
    out = _new("secp256k1_xonly_pubkey *")
    parity = _new("int *")
    lib.secp256k1_xonly_pubkey_from_pubkey(ctx, out, parity, full)
    return _xonly_bytes(out), int(parity[0])


def xonly_tweak_add_check(internal32: bytes, tweak32: bytes, output32: bytes, parity: int) -> bool:
    """Whether ``output32`` with Y parity ``parity`` is ``internal + tweak·G`` (BIP341 commitment).

    False (never an exception) when the internal key is not on the curve or the tweak overflows.
    """
    if len(internal32) != 32 or len(tweak32) != 32 or len(output32) != 32:
        return False
    internal = _new(_XONLY_T)
    if not _xonly_parse(_CTX, internal, internal32):
        return False
    return bool(_xonly_tweak_add_check(_CTX, output32, parity & 1, internal, tweak32))


def tweak_secret_xonly(secret32: bytes, tweak32: bytes) -> bytes:
    """The secret of ``xonly_tweak_add`` applied to the secret's own x-only key.

    The secret is first negated when its public key has an odd Y (x-only keys stand for the even-Y
    point), then the tweak is added, as BIP341's ``taproot_tweak_seckey``.
    """
    if len(tweak32) != 32:
        raise ValueError("a tweak is 32 bytes")
    keypair = _keypair(secret32)
    if not lib.secp256k1_keypair_xonly_tweak_add(_CTX, keypair, tweak32):
        raise ValueError("invalid tweak")
    out = _new("unsigned char[32]")
    lib.secp256k1_keypair_sec(_CTX, out, keypair)
    return bytes(ffi.buffer(out, 32))
