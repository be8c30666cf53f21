"""Signature-operation counting (legacy, P2SH and witness), as blocks are limited by it."""

from __future__ import annotations

from collections.abc import Sequence

from ..primitives import _SET, WITNESS_SCALE_FACTOR, Tx, TxOut
from .flags import VerifyFlags
from .script import MAX_PUBKEYS_PER_MULTISIG, is_p2sh, witness_program

MAX_BLOCK_SIGOPS_COST = 80_000
"""Consensus: the sigop-cost limit of a block (BIP141)."""

_P2SH = int(VerifyFlags.P2SH)
_WITNESS = int(VerifyFlags.WITNESS)
# Plain ints: ``int & IntFlag`` goes through enum's Python-level operators on every call.


def script_sigops(script: bytes, accurate: bool) -> int:
    """Core's GetSigOpCount: multisig counts its key count when ``accurate`` and known, else 20.

    Walks the opcodes inline (pushes are skipped by their length, a truncated push ends the
    walk as Core's GetOp does): it runs over every script of every block. The common output
    templates are answered before the walk.
    """
    end = len(script)
    if end == 25:
        if (
            script[0] == 0x76
            and script[1] == 0xA9
            and script[2] == 0x14
            and script[23] == 0x88
            and script[24] == 0xAC
        ):
            return 1  # P2PKH: DUP HASH160 <20> EQUALVERIFY CHECKSIG
    elif end >= 2:
        first = script[0]
        size = script[1]
        if size < 0x4C and size + 2 == end and (first == 0 or 0x4E < first < 0xAC or first > 0xAF):
            return 0  # one opcode that is no sigop, then one push to the end: witness programs
        if end == 23 and first == 0xA9 and size == 0x14 and script[22] == 0x87:
            return 0  # P2SH: HASH160 <20> EQUAL
    if (
        b"\xac" not in script
        and b"\xad" not in script
        and b"\xae" not in script
        and b"\xaf" not in script
    ):
        return 0  # no CHECKSIG-family byte anywhere, so none at an opcode position either
    n = 0
    last = 0xFF
    pos = 0
    while pos < end:
        op = script[pos]
        pos += 1
        if op <= 0x4E:
            if op < 0x4C:
                pos += op
            elif op == 0x4C:
                if pos + 1 > end:
                    break
                pos += 1 + script[pos]
            elif op == 0x4D:
                if pos + 2 > end:
                    break
                pos += 2 + (script[pos] | script[pos + 1] << 8)
            else:
                if pos + 4 > end:
                    break
                pos += 4 + int.from_bytes(script[pos : pos + 4], "little")
            if pos > end:
                break  # truncated push: GetOp fails and counting stops
        elif op == 0xAC or op == 0xAD:
            n += 1
        elif op == 0xAE or op == 0xAF:
            if accurate and 0x51 <= last <= 0x60:
                n += last - 0x50
            else:
                n += MAX_PUBKEYS_PER_MULTISIG
        last = op
    return n


def _last_push(script_sig: bytes) -> bytes | None:
    """The data of the last push of a push-only scriptSig; None when it is not push-only.

    An opcode walk like GetOp's (a truncated push is not push-only), slicing only the last push.
    """
    start = 0
    stop = 0
    pos = 0
    end = len(script_sig)
    while pos < end:
        op = script_sig[pos]
        pos += 1
        if op > 0x60:  # above OP_16
            return None
        if op <= 0x4E:
            if op < 0x4C:
                size = op
            elif op == 0x4C:
                if pos + 1 > end:
                    return None
                size = script_sig[pos]
                pos += 1
            elif op == 0x4D:
                if pos + 2 > end:
                    return None
                size = script_sig[pos] | script_sig[pos + 1] << 8
                pos += 2
            else:
                if pos + 4 > end:
                    return None
                size = int.from_bytes(script_sig[pos : pos + 4], "little")
                pos += 4
            if pos + size > end:
                return None
            start = pos
            pos += size
            stop = pos
        else:
            start = stop = pos  # OP_1NEGATE, OP_RESERVED, OP_1..OP_16 push no data here
    return script_sig[start:stop]


def p2sh_sigops(script_pubkey: bytes, script_sig: bytes) -> int:
    """Core's GetSigOpCount(scriptSig): for P2SH, the accurate count of the redeem script."""
    if not is_p2sh(script_pubkey):
        return script_sigops(script_pubkey, True)
    redeem = _last_push(script_sig)
    if redeem is None:
        return 0
    return script_sigops(redeem, True)


def _witness_program_sigops(version: int, program: bytes, witness: Sequence[bytes]) -> int:
    if version == 0:
        if len(program) == 20:
            return 1
        if len(program) == 32 and witness:
            return script_sigops(witness[-1], True)
    return 0


def witness_sigops(
    script_sig: bytes, script_pubkey: bytes, witness: Sequence[bytes], flags: int
) -> int:
    """Core's CountWitnessSigOps (taproot spends count nothing here: they have a budget)."""
    if not flags & _WITNESS:
        return 0
    wp = witness_program(script_pubkey)
    if wp is not None:
        return _witness_program_sigops(wp[0], wp[1], witness)
    if is_p2sh(script_pubkey):
        redeem = _last_push(script_sig)
        if redeem is not None:
            wp = witness_program(redeem)
            if wp is not None:
                return _witness_program_sigops(wp[0], wp[1], witness)
    return 0


def _v0_sigops(script: bytes, witness: Sequence[bytes]) -> int:
    """Witness sigops of ``script`` as a (possibly nested) witness program: only version 0
    counts (a key hash is one CHECKSIG, a script hash counts its witness script)."""
    n = len(script)
    if n < 4 or n > 42 or script[0] != 0 or script[1] + 2 != n:
        return 0
    if n == 22:
        return 1
    if n == 34 and witness:
        return script_sigops(witness[-1], True)
    return 0


def legacy_sigop_count(tx: Tx) -> int:
    """Core's GetLegacySigOpCount: inaccurate counts over every scriptSig and scriptPubKey.

    Cached on the (immutable) transaction: block checks and the connect-time cost both ask.
    """
    n = tx._sigops
    if n >= 0:
        return n
    n = 0
    for txin in tx.inputs:
        script = txin.script_sig
        if script:  # segwit spends have none
            n += script_sigops(script, False)
    for txout in tx.outputs:
        n += script_sigops(txout.script_pubkey, False)
    _SET(tx, "_sigops", n)
    return n


def p2sh_sigop_count(tx: Tx, spent_outputs: Sequence[TxOut]) -> int:
    if tx.is_coinbase():
        return 0
    n = 0
    for txin, spent in zip(tx.inputs, spent_outputs, strict=True):
        if is_p2sh(spent.script_pubkey):
            n += p2sh_sigops(spent.script_pubkey, txin.script_sig)
    return n


def transaction_sigop_cost(tx: Tx, spent_outputs: Sequence[TxOut], flags: int) -> int:
    """Core's GetTransactionSigOpCost: legacy and P2SH counts weigh 4, witness counts 1.

    One pass over the inputs: a P2SH spend's redeem script is found once and serves both its
    P2SH count and (when it is a witness program) its witness count.
    """
    cost = legacy_sigop_count(tx) * WITNESS_SCALE_FACTOR
    if tx.is_coinbase():
        return cost
    inputs = tx.inputs
    if len(spent_outputs) != len(inputs):
        raise ValueError(f"{len(spent_outputs)} spent outputs for {len(inputs)} inputs")
    flags = int(flags)
    p2sh = flags & _P2SH
    witness = flags & _WITNESS
    if not p2sh and not witness:
        return cost
    for txin, spent in zip(inputs, spent_outputs):
        spk = spent.script_pubkey
        if len(spk) == 23 and spk[0] == 0xA9 and spk[1] == 0x14 and spk[22] == 0x87:
            redeem = _last_push(txin.script_sig)
            if redeem is not None:
                if p2sh:
                    cost += script_sigops(redeem, True) * WITNESS_SCALE_FACTOR
                if witness:
                    cost += _v0_sigops(redeem, txin.witness)
        elif witness:
            cost += _v0_sigops(spk, txin.witness)
    return cost
