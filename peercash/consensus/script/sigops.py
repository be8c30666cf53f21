"""Signature-operation counting (legacy, P2SH and witness), as blocks are limited by it."""

from __future__ import annotations

from collections.abc import Sequence

from ..primitives import WITNESS_SCALE_FACTOR, Tx, TxOut
from .flags import VerifyFlags
from .opcodes import Op
from .script import MAX_PUBKEYS_PER_MULTISIG, BadScript, get_op, is_p2sh, witness_program

MAX_BLOCK_SIGOPS_COST = 80_000
"""Consensus: the sigop-cost limit of a block (BIP141)."""

_CHECKSIGS = (Op.OP_CHECKSIG, Op.OP_CHECKSIGVERIFY)
_CHECKMULTISIGS = (Op.OP_CHECKMULTISIG, Op.OP_CHECKMULTISIGVERIFY)


def script_sigops(script: bytes, accurate: bool) -> int:
    """Core's GetSigOpCount: multisig counts its key count when ``accurate`` and known, else 20.

    Walks the opcodes inline (pushes are skipped by their length, a truncated push ends the
    walk as Core's GetOp does): it runs over every script of every block.
    """
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
    end = len(script)
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
    """The data of the last push of a push-only scriptSig; None when it is not push-only."""
    data = b""
    pos = 0
    end = len(script_sig)
    while pos < end:
        try:
            opcode, pushed, pos = get_op(script_sig, pos)
        except BadScript:
            return None
        if opcode > Op.OP_16:
            return None
        data = pushed if pushed is not None else b""
    return data


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
    if not flags & VerifyFlags.WITNESS:
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


def legacy_sigop_count(tx: Tx) -> int:
    """Core's GetLegacySigOpCount: inaccurate counts over every scriptSig and scriptPubKey."""
    n = 0
    for txin in tx.inputs:
        n += script_sigops(txin.script_sig, False)
    for txout in tx.outputs:
        n += script_sigops(txout.script_pubkey, False)
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
    """Core's GetTransactionSigOpCost: legacy and P2SH counts weigh 4, witness counts 1."""
    cost = legacy_sigop_count(tx) * WITNESS_SCALE_FACTOR
    if tx.is_coinbase():
        return cost
    if flags & VerifyFlags.P2SH:
        cost += p2sh_sigop_count(tx, spent_outputs) * WITNESS_SCALE_FACTOR
    for txin, spent in zip(tx.inputs, spent_outputs, strict=True):
        cost += witness_sigops(txin.script_sig, spent.script_pubkey, txin.witness, flags)
    return cost
