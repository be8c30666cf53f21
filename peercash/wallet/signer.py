"""Signing PSBT inputs, and producing their final scriptSig/witness (Core's ``ProduceSignature``).

Layer 3 (wallet), pure: keys come from the caller (a mapping or a callback from public key to
secret), signing uses ``peercash.consensus.crypto`` (libsecp256k1) and the message hashes
``peercash.consensus.script.sighash``; RFC6979 and BIP340 nonces are deterministic, so the same
input gives the same signature.

Script types solved: P2PK, P2PKH, bare and P2SH/P2WSH/P2SH-P2WSH ``multi``, P2WPKH, P2SH-P2WPKH,
taproot key path (BIP341 tweak of the internal key) and script path (``pk`` and ``multi_a``
leaves). Any other script goes to the optional :class:`Satisfier` (the miniscript package plugs in
there).

* :func:`sign_psbt` adds partial signatures (ECDSA, taproot key/script) for every input it can.
* :func:`solve_input` is the shared engine: given what an input holds (and maybe keys), it builds
  its scriptSig and witness and reports what is missing; the finalizer and ``analyze`` use it.

Error contract: :class:`PsbtError` (from :mod:`peercash.wallet.psbt`) for a sighash that conflicts
with the input's; a script the signer cannot handle is not an error, it stays unsigned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..consensus import crypto
from ..consensus.hashing import hash160, sha256
from ..consensus.primitives import Tx, TxOut
from ..consensus.script.opcodes import Op
from ..consensus.script.script import BadScript, iter_ops, push_data, witness_program
from ..consensus.script.sighash import (
    SIGHASH_ALL,
    SIGHASH_ANYONECANPAY,
    SIGHASH_DEFAULT,
    SIGHASH_NONE,
    SIGHASH_SINGLE,
    PrecomputedTxData,
    legacy_sighash,
    segwit_v0_sighash,
    taproot_sighash,
)
from ..consensus.script.taproot import TAPROOT_LEAF_TAPSCRIPT, tapleaf_hash, taptweak_hash
from .psbt.errors import PsbtError
from .psbt.model import (
    MODIFIABLE_INPUTS,
    MODIFIABLE_OUTPUTS,
    MODIFIABLE_SIGHASH_SINGLE,
    Psbt,
    PsbtInput,
)

__all__ = [
    "KeySource",
    "Satisfier",
    "Solution",
    "TxCache",
    "sign_psbt",
    "solve_input",
    "update_modifiable",
]

KeySource = Mapping[bytes, bytes] | Callable[[bytes], bytes | None]
"""Secret keys by public key (33 or 65 bytes; taproot keys also by their 32-byte x-only form)."""

SIGVERSION_BASE = 0
SIGVERSION_WITNESS_V0 = 1
SIGVERSION_TAPSCRIPT = 3

DUMMY_ECDSA_SIG = b"\x30" + b"\x00" * 70 + b"\x01"
"""A 72-byte stand-in (the largest DER signature plus its hash type) for size estimates."""


class Satisfier(Protocol):
    """A hook for scripts beyond the standard templates (for instance miniscript).

    ``satisfy`` gets the script, its signature version (0 base/P2SH, 1 witness v0, 3 tapscript),
    a function that returns a signature for a public key (ECDSA: 33/65-byte key; tapscript: 32-byte
    x-only key), or None, and the input's hash preimages (hash → preimage). It returns the stack
    that satisfies the script (without the script itself), or None.
    """

    def satisfy(
        self,
        script: bytes,
        sigversion: int,
        signature: Callable[[bytes], bytes | None],
        preimages: Mapping[bytes, bytes],
    ) -> list[bytes] | None: ...


@dataclass(slots=True)
class Solution:
    """What :func:`solve_input` found for one input."""

    complete: bool = False
    script_sig: bytes = b""
    witness: tuple[bytes, ...] = ()
    is_witness: bool = False
    missing_pubkeys: list[bytes] = field(default_factory=list)
    """hash160s of public keys we need and do not know."""
    missing_sigs: list[bytes] = field(default_factory=list)
    """hash160s of keys whose signature is missing."""
    missing_redeem_script: bytes | None = None
    """hash160 of the missing redeem script."""
    missing_witness_script: bytes | None = None
    """sha256 of the missing witness script."""
    error: str | None = None
    signed_hash_types: list[int] = field(default_factory=list)
    """The hash type of each signature this call added."""


# -- script templates ----------------------------------------------------------------------------


def _ops(script: bytes) -> list[tuple[int, bytes | None]] | None:
    try:
        return [(op, data) for op, data, _ in iter_ops(script)]
    except BadScript:
        return None


def _small_int(op: int) -> int | None:
    if op == Op.OP_0:
        return 0
    if Op.OP_1 <= op <= Op.OP_16:
        return op - (Op.OP_1 - 1)
    return None


def match_multisig(script: bytes) -> tuple[int, list[bytes]] | None:
    """(m, keys) of ``m <keys> n OP_CHECKMULTISIG``."""
    ops = _ops(script)
    if not ops or len(ops) < 4 or ops[-1][0] != Op.OP_CHECKMULTISIG:
        return None
    m, n = _small_int(ops[0][0]), _small_int(ops[-2][0])
    keys = [d for _, d in ops[1:-2]]
    if m is None or n is None or n != len(keys) or not 1 <= m <= n:
        return None
    if any(k is None or len(k) not in (33, 65) for k in keys):
        return None
    return m, [bytes(k) for k in keys if k is not None]


def match_multi_a(script: bytes) -> tuple[int, list[bytes]] | None:
    """(m, x-only keys) of ``<k1> CHECKSIG <k2> CHECKSIGADD … <m> NUMEQUAL`` (BIP387)."""
    ops = _ops(script)
    if not ops or len(ops) < 4 or len(ops) % 2 or ops[-1][0] != Op.OP_NUMEQUAL:
        return None
    keys = []
    for k in range(0, len(ops) - 2, 2):
        data = ops[k][1]
        want = Op.OP_CHECKSIG if k == 0 else Op.OP_CHECKSIGADD
        if data is None or len(data) != 32 or ops[k + 1][0] != want:
            return None
        keys.append(bytes(data))
    op, data = ops[-2]
    m = _small_int(op)
    if m is None and data is not None and 0 < len(data) <= 4:
        m = int.from_bytes(data, "little")
    if m is None or not 1 <= m <= len(keys):
        return None
    return m, keys


def _is_p2pk(script: bytes) -> bytes | None:
    n = len(script)
    if n in (35, 67) and script[0] == n - 2 and script[-1] == Op.OP_CHECKSIG:
        return script[1:-1]
    return None


def _is_p2pkh(script: bytes) -> bytes | None:
    if len(script) == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return script[3:23]
    return None


def _is_p2sh(script: bytes) -> bytes | None:
    if len(script) == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return script[2:22]
    return None


def _is_tap_pk(script: bytes) -> bytes | None:
    if len(script) == 34 and script[0] == 32 and script[33] == Op.OP_CHECKSIG:
        return script[1:33]
    return None


def p2pkh_script(h: bytes) -> bytes:
    return b"\x76\xa9\x14" + h + b"\x88\xac"


# -- signing context ---------------------------------------------------------------------------


def _lookup(keys: KeySource | None, pubkey: bytes) -> bytes | None:
    if keys is None:
        return None
    if callable(keys):
        return keys(pubkey)
    return keys.get(pubkey)


def _xonly_secret(keys: KeySource | None, xonly: bytes) -> bytes | None:
    for candidate in (xonly, b"\x02" + xonly, b"\x03" + xonly):
        secret = _lookup(keys, candidate)
        if secret is not None and crypto.xonly_from_secret(secret) == xonly:
            return secret
    return None


class TxCache:
    """The transaction-wide parts of signing (unsigned tx, spent outputs, sighash midstates),
    computed once and shared by the inputs of one pass over a PSBT whose transaction and UTXOs
    do not change meanwhile (signatures may be added)."""

    def __init__(self, psbt: Psbt) -> None:
        self.tx: Tx = psbt.compute_unsigned_tx()
        spent = [psbt.spent_output(k) for k in range(len(psbt.inputs))]
        self.all_spent: list[TxOut] | None = (
            [s for s in spent if s is not None] if all(s is not None for s in spent) else None
        )
        self._txdata: PrecomputedTxData | None = None

    @property
    def txdata(self) -> PrecomputedTxData:
        if self._txdata is None:
            self._txdata = PrecomputedTxData(self.tx, self.all_spent)
        return self._txdata


class _Context:
    """Everything one input's signing needs: the PSBT, keys, sighash and the tx-wide hashes."""

    def __init__(
        self,
        psbt: Psbt,
        index: int,
        keys: KeySource | None,
        sighash: int | None,
        dummy: bool,
        satisfier: Satisfier | None,
        cache: TxCache | None = None,
    ) -> None:
        self.psbt = psbt
        self.index = index
        self.inp: PsbtInput = psbt.inputs[index]
        self.keys = keys
        self.dummy = dummy
        self.satisfier = satisfier
        self.sighash = sighash
        self.cache = cache if cache is not None else TxCache(psbt)
        self.tx: Tx = self.cache.tx
        self.all_spent = self.cache.all_spent
        self.solution = Solution()
        self.amount = 0

    @property
    def txdata(self) -> PrecomputedTxData:
        return self.cache.txdata

    def find_pubkey(self, h: bytes) -> bytes | None:
        inp = self.inp
        for pub in list(inp.partial_sigs) + list(inp.bip32_derivs):
            if hash160(pub) == h:
                return pub
        if isinstance(self.keys, Mapping):
            for pub in self.keys:
                if len(pub) in (33, 65) and hash160(pub) == h:
                    return pub
        return None

    def ecdsa_sig(self, pubkey: bytes, script_code: bytes, sigversion: int) -> bytes | None:
        existing = self.inp.partial_sigs.get(pubkey)
        if existing is not None:
            return existing
        if self.dummy:
            return DUMMY_ECDSA_SIG
        secret = _lookup(self.keys, pubkey)
        if secret is None or crypto.pubkey_from_secret(secret, len(pubkey) == 33) != pubkey:
            self.solution.missing_sigs.append(hash160(pubkey))
            return None
        hash_type = self.hash_type(SIGHASH_ALL)
        if sigversion == SIGVERSION_BASE:
            msg = legacy_sighash(script_code, self.tx, self.index, hash_type)
        else:
            msg = segwit_v0_sighash(
                script_code, self.tx, self.index, hash_type, self.amount, self.txdata
            )
        sig = crypto.sign_ecdsa(secret, msg) + bytes((hash_type & 0xFF,))
        self.inp.partial_sigs[pubkey] = sig
        self.solution.signed_hash_types.append(hash_type)
        return sig

    def hash_type(self, default: int) -> int:
        if self.sighash is not None:
            return self.sighash
        if self.inp.sighash_type is not None:
            return self.inp.sighash_type
        return default

    def schnorr_sig(self, xonly: bytes, leaf_hash: bytes | None) -> bytes | None:
        inp = self.inp
        if leaf_hash is None:
            if inp.tap_key_sig is not None:
                return inp.tap_key_sig
        elif (xonly, leaf_hash) in inp.tap_script_sigs:
            return inp.tap_script_sigs[(xonly, leaf_hash)]
        hash_type = self.hash_type(SIGHASH_DEFAULT)
        if self.dummy:
            return b"\x00" * 64 + (bytes((hash_type,)) if hash_type != SIGHASH_DEFAULT else b"")
        if self.all_spent is None:
            return None
        if leaf_hash is None:
            # Key path: the internal key's secret, tweaked by the merkle root (BIP341).
            internal = inp.tap_internal_key
            secret = _xonly_secret(self.keys, internal) if internal is not None else None
            if secret is None:
                if internal:
                    # Core lists no taproot keys here; we list the internal key's id so that
                    # analyze says "signer" rather than "updater" for an unsigned key path.
                    self.solution.missing_sigs.append(hash160(internal))
                return None
            assert internal is not None
            secret = crypto.tweak_secret_xonly(secret, taptweak_hash(internal, inp.tap_merkle_root))
        else:
            secret = _xonly_secret(self.keys, xonly)
            if secret is None:
                return None
        msg = taproot_sighash(
            self.tx,
            self.index,
            hash_type,
            self.txdata,
            0 if leaf_hash is None else 1,
            None,
            leaf_hash,
        )
        if msg is None:
            return None
        sig = crypto.sign_schnorr(secret, msg)
        if hash_type != SIGHASH_DEFAULT:
            sig += bytes((hash_type,))
        if leaf_hash is None:
            inp.tap_key_sig = sig
        else:
            inp.tap_script_sigs[(xonly, leaf_hash)] = sig
        self.solution.signed_hash_types.append(hash_type)
        return sig


# -- solving -------------------------------------------------------------------------------------


def _solve_script(ctx: _Context, script: bytes, sigversion: int) -> list[bytes] | None:
    """The stack that satisfies a non-wrapping script (pk, pkh, multi, or the satisfier's)."""
    pub = _is_p2pk(script)
    if pub is not None:
        sig = ctx.ecdsa_sig(pub, script, sigversion)
        return None if sig is None else [sig]
    h = _is_p2pkh(script)
    if h is not None:
        found = ctx.find_pubkey(h)
        if found is None:
            ctx.solution.missing_pubkeys.append(h)
            return None
        sig = ctx.ecdsa_sig(found, script, sigversion)
        return None if sig is None else [sig, found]
    multi = match_multisig(script)
    if multi is not None:
        m, keys = multi
        sigs: list[bytes] = []
        for key in keys:
            sig = ctx.ecdsa_sig(key, script, sigversion)
            if sig is not None and len(sigs) < m:
                sigs.append(sig)
        return [b"", *sigs] if len(sigs) >= m else None
    if ctx.satisfier is not None:
        preimages = {h: p for (_, h), p in ctx.inp.preimages.items()}
        return ctx.satisfier.satisfy(
            script, sigversion, lambda k: ctx.ecdsa_sig(k, script, sigversion), preimages
        )
    return None


def _solve_tapscript(ctx: _Context, script: bytes, leaf_hash: bytes) -> list[bytes] | None:
    key = _is_tap_pk(script)
    if key is not None:
        sig = ctx.schnorr_sig(key, leaf_hash)
        return None if sig is None else [sig]
    multi = match_multi_a(script)
    if multi is not None:
        m, keys = multi
        sigs: list[bytes] = []
        count = 0
        for key in keys:
            sig = ctx.schnorr_sig(key, leaf_hash)
            if sig is not None and count < m:
                sigs.append(sig)
                count += 1
            else:
                sigs.append(b"")
        return list(reversed(sigs)) if count >= m else None
    if ctx.satisfier is not None:
        preimages = {h: p for (_, h), p in ctx.inp.preimages.items()}
        return ctx.satisfier.satisfy(
            script, SIGVERSION_TAPSCRIPT, lambda k: ctx.schnorr_sig(k, leaf_hash), preimages
        )
    return None


def _solve_taproot(ctx: _Context) -> tuple[bytes, ...] | None:
    inp = ctx.inp
    if inp.tap_internal_key is not None or inp.tap_key_sig is not None:
        sig = ctx.schnorr_sig(inp.tap_internal_key or b"", None)
        if sig is not None:
            return (sig,)
    best: tuple[bytes, ...] | None = None
    for control, (script, version) in inp.tap_leaf_scripts.items():
        if version != TAPROOT_LEAF_TAPSCRIPT:
            continue
        stack = _solve_tapscript(ctx, script, tapleaf_hash(version, script))
        if stack is None:
            continue
        witness = (*stack, script, control)
        if best is None or _witness_size(witness) < _witness_size(best):
            best = witness
    return best


def _witness_size(items: Sequence[bytes]) -> int:
    return sum(len(x) + (1 if len(x) < 0xFD else 3) for x in items)


def solve_input(
    psbt: Psbt,
    index: int,
    keys: KeySource | None = None,
    sighash: int | None = None,
    *,
    dummy: bool = False,
    satisfier: Satisfier | None = None,
    cache: TxCache | None = None,
) -> Solution:
    """Sign what ``keys`` can and build input ``index``'s scriptSig and witness.

    New signatures are stored in the input. With ``dummy`` every missing signature is a
    maximum-size stand-in (for size estimates) and the input is not changed. ``cache`` shares
    the transaction-wide work between the inputs of one pass.
    """
    inp = psbt.inputs[index]
    spent = psbt.spent_output(index)
    ctx = _Context(psbt, index, keys, sighash, dummy, satisfier, cache)
    sol = ctx.solution
    if spent is None:
        sol.error = "Input has no UTXO"
        return sol
    if inp.sighash_type is not None and sighash is not None and inp.sighash_type != sighash:
        raise PsbtError("Specified sighash value does not match value stored in PSBT")
    ctx.amount = spent.value
    witness_only = inp.non_witness_utxo is None
    spk = spent.script_pubkey
    script_sig: list[bytes] = []
    witness: tuple[bytes, ...] | None = None

    redeem_hash = _is_p2sh(spk)
    inner = spk
    if redeem_hash is not None:
        redeem = inp.redeem_script
        if redeem is None or hash160(redeem) != redeem_hash:
            if redeem is not None:
                sol.error = "redeemScript does not match the scriptPubKey"
            sol.missing_redeem_script = redeem_hash
            return sol
        inner = redeem
    program = witness_program(inner)
    if program is not None:
        version, prog = program
        if version == 0 and len(prog) == 20:
            found = ctx.find_pubkey(prog)
            if found is None:
                sol.missing_pubkeys.append(prog)
            else:
                sig = ctx.ecdsa_sig(found, p2pkh_script(prog), SIGVERSION_WITNESS_V0)
                if sig is not None:
                    witness = (sig, found)
        elif version == 0 and len(prog) == 32:
            ws = inp.witness_script
            if ws is None or sha256(ws) != prog:
                if ws is not None:
                    sol.error = "witnessScript does not match the scriptPubKey or redeemScript"
                sol.missing_witness_script = prog
                return sol
            stack = _solve_script(ctx, ws, SIGVERSION_WITNESS_V0)
            if stack is not None:
                witness = (*stack, ws)
        elif version == 1 and len(prog) == 32 and redeem_hash is None:
            witness = _solve_taproot(ctx)
        else:
            sol.error = "Unknown witness program"
            return sol
        sol.is_witness = True
        if redeem_hash is not None:
            script_sig = [inner]
        sol.complete = witness is not None
    else:
        if witness_only and not dummy:
            # BIP174's signer check: a witness UTXO alone cannot prove the amount of a legacy
            # input, so nothing is signed for it.
            sol.error = "A witness UTXO was provided for a non-witness input"
            return sol
        stack = _solve_script(ctx, inner, SIGVERSION_BASE)
        if stack is not None:
            script_sig = stack + ([inner] if redeem_hash is not None else [])
            sol.complete = True
    if sol.complete:
        sol.script_sig = b"".join(_push(x) for x in script_sig)
        sol.witness = witness or ()
    return sol


def _push(item: bytes) -> bytes:
    return b"\x00" if not item else push_data(item)


def sign_psbt(
    psbt: Psbt,
    keys: KeySource,
    sighash: int | None = None,
    *,
    satisfier: Satisfier | None = None,
) -> list[Solution]:
    """Add every signature ``keys`` allow to the inputs that are not final; one Solution each.

    ``sighash`` None uses each input's PSBT_IN_SIGHASH_TYPE, else SIGHASH_ALL (ECDSA) and
    SIGHASH_DEFAULT (taproot).
    """
    results = []
    cache = TxCache(psbt)
    for index, inp in enumerate(psbt.inputs):
        if inp.is_final:
            results.append(Solution(complete=True))
            continue
        results.append(solve_input(psbt, index, keys, sighash, satisfier=satisfier, cache=cache))
    if psbt.version == 2 and psbt.tx_modifiable is not None:
        update_modifiable(psbt, [t for r in results for t in r.signed_hash_types])
    return results


def update_modifiable(psbt: Psbt, hash_types: Sequence[int]) -> None:
    """BIP370's signer rule: a signature without ANYONECANPAY freezes the inputs, one without
    NONE freezes the outputs, and SIGHASH_SINGLE sets the Has SIGHASH_SINGLE flag."""
    flags = psbt.tx_modifiable or 0
    for hash_type in hash_types:
        base = SIGHASH_ALL if hash_type == SIGHASH_DEFAULT else hash_type & 0x1F
        if not hash_type & SIGHASH_ANYONECANPAY:
            flags &= ~MODIFIABLE_INPUTS
        if base != SIGHASH_NONE:
            flags &= ~MODIFIABLE_OUTPUTS
        if base == SIGHASH_SINGLE:
            flags |= MODIFIABLE_SIGHASH_SINGLE
    psbt.tx_modifiable = flags
