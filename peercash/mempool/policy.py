"""Bitcoin Core's default standardness policy: which valid transactions this node relays.

Policy, not consensus: every constant and check here is labelled so. A block may contain
transactions these rules refuse; the mempool (``peercash.mempool.pool``) applies them before a
transaction is admitted, in Core's order (``IsStandardTx``, ``AreInputsStandard``,
``IsWitnessStandard``, the sigop and fee limits, dust and ephemeral dust).

Layer 2 (mempool); imports only ``peercash.consensus``. Called by the pool and, for tests and
RPC helpers, directly.

Errors: a broken rule raises :class:`PolicyError`, a ``RuleError`` whose ``code`` is Core's exact
reject reason (``"dust"``, ``"scriptpubkey"``, ``"bad-txns-nonstandard-inputs"`` ...), whose
``reason`` is Core's debug text where it has one, and whose ban score is 0: a peer relaying a
non-standard transaction breaks no rule.

Pure functions and constants: no I/O, no clock, no state; safe from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from peercash.consensus.errors import RuleError
from peercash.consensus.primitives import WITNESS_SCALE_FACTOR, Tx, TxOut
from peercash.consensus.script.flags import (
    MANDATORY_SCRIPT_VERIFY_FLAGS,
    STANDARD_SCRIPT_VERIFY_FLAGS,
    VerifyFlags,
)
from peercash.consensus.script.script import BadScript, iter_ops
from peercash.consensus.script.sigops import MAX_BLOCK_SIGOPS_COST, script_sigops

# -- constants (policy) --------------------------------------------------------------------------

TX_MIN_STANDARD_VERSION = 1
"""Policy: the lowest standard transaction version."""
TX_MAX_STANDARD_VERSION = 3
"""Policy: the highest standard transaction version (3 is TRUC, BIP431)."""
TRUC_VERSION = 3
"""Policy: the version that opts a transaction into the TRUC topology rules."""

MAX_STANDARD_TX_WEIGHT = 400_000
"""Policy: the heaviest standard transaction (bounds sighash cost)."""
MIN_STANDARD_TX_NONWITNESS_SIZE = 65
"""Policy: the smallest standard witness-stripped size (a 64-byte tx could pass as a merkle node)."""
MAX_STANDARD_SCRIPTSIG_SIZE = 1650
"""Policy: the longest standard scriptSig (a 15-of-15 P2SH multisig with compressed keys)."""
MAX_P2SH_SIGOPS = 15
"""Policy: the most sigops a standard P2SH redeem script may have."""
MAX_STANDARD_TX_SIGOPS_COST = MAX_BLOCK_SIGOPS_COST // 5
"""Policy: the highest standard sigop cost of one transaction (16,000)."""
MAX_TX_LEGACY_SIGOPS = 2500
"""Policy (BIP54's proposed rule): the most non-witness sigops (scriptSig + spent scriptPubKey,
accurately counted) one standard transaction may have."""
DEFAULT_BYTES_PER_SIGOP = 20
"""Policy (``-bytespersigop``): each sigop counts as this many virtual bytes for fees and limits."""

MAX_STANDARD_P2WSH_STACK_ITEMS = 100
"""Policy: the most witness stack items (script excluded) of a standard P2WSH spend."""
MAX_STANDARD_P2WSH_STACK_ITEM_SIZE = 80
"""Policy: the largest witness stack item of a standard P2WSH spend."""
MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE = 80
"""Policy: the largest stack item of a standard tapscript spend."""
MAX_STANDARD_P2WSH_SCRIPT_SIZE = 3600
"""Policy: the longest standard P2WSH witness script."""

DUST_RELAY_TX_FEE = 3000
"""Policy (``-dustrelayfee``, sat/kvB): an output worth less than spending it costs at this rate
is dust."""
MAX_DUST_OUTPUTS_PER_TX = 1
"""Policy: a standard transaction may have one dust output (ephemeral dust, spent in the pool)."""
DEFAULT_MIN_RELAY_TX_FEE = 100
"""Policy (``-minrelaytxfee``, sat/kvB): the lowest feerate relayed (0.1 sat/vB)."""
DEFAULT_INCREMENTAL_RELAY_FEE = 100
"""Policy (``-incrementalrelayfee``, sat/kvB): what a replacement or a raised mempool minimum
must add per kvB."""

MAX_OP_RETURN_RELAY = MAX_STANDARD_TX_WEIGHT // WITNESS_SCALE_FACTOR
"""Policy (``-datacarriersize`` default, Core 30): total bytes of OP_RETURN scriptPubKeys in one
transaction (100,000: effectively the transaction size)."""
DEFAULT_ACCEPT_DATACARRIER = True
"""Policy (``-datacarrier``): OP_RETURN outputs are relayed."""
DEFAULT_PERMIT_BAREMULTISIG = True
"""Policy (``-permitbaremultisig``): bare multisig outputs (up to 3 keys) are standard."""

DEFAULT_MAX_MEMPOOL_SIZE_MB = 300
"""Policy (``-maxmempool``): the pool's memory budget, in MB."""
DEFAULT_MEMPOOL_EXPIRY_HOURS = 336
"""Policy (``-mempoolexpiry``): transactions older than this (two weeks) are dropped."""
ROLLING_FEE_HALFLIFE = 60 * 60 * 12
"""Policy: the half-life, in seconds, of the rolling minimum fee raised by trimming."""

DEFAULT_CLUSTER_LIMIT = 64
"""Policy (Core 31's ``-limitclustercount``): the most transactions in one cluster."""
DEFAULT_CLUSTER_SIZE_LIMIT_KVB = 101
"""Policy (Core 31's ``-limitclustersize``): the largest cluster, in kvB."""
MAX_REPLACEMENT_CANDIDATES = 100
"""Policy (RBF rule 5): the most transactions one replacement may evict."""

TRUC_MAX_VSIZE = 10_000
"""Policy (BIP431): the largest TRUC transaction, in vB (sigop-adjusted)."""
TRUC_CHILD_MAX_VSIZE = 1_000
"""Policy (BIP431): the largest TRUC transaction with an unconfirmed parent, in vB."""
TRUC_ANCESTOR_LIMIT = 2
"""Policy (BIP431): a TRUC transaction and its unconfirmed ancestors, at most."""
TRUC_DESCENDANT_LIMIT = 2
"""Policy (BIP431): a TRUC transaction and its unconfirmed descendants, at most."""

STANDARD_NOT_MANDATORY_VERIFY_FLAGS = VerifyFlags(
    STANDARD_SCRIPT_VERIFY_FLAGS & ~MANDATORY_SCRIPT_VERIFY_FLAGS
)
"""Policy: the script flags the mempool adds to the consensus ones."""

ANCHOR_SCRIPT = bytes.fromhex("51024e73")
"""The pay-to-anchor output script (``OP_1 <0x4e73>``), standard and keyless."""


class PolicyError(RuleError):
    """A standardness (policy) rule was broken: ``code`` is Core's reject reason."""

    def __init__(self, code: str, reason: str = "") -> None:
        super().__init__(code, reason, 0)


# -- fees ----------------------------------------------------------------------------------------


def fee_for(rate_sat_per_kvb: int, vsize: int) -> int:
    """Core's ``CFeeRate::GetFee``: the fee at this rate for ``vsize`` vbytes, rounded up."""
    if rate_sat_per_kvb == 0:
        return 0
    fee = -((-rate_sat_per_kvb * vsize) // 1000)
    if fee == 0 and vsize and rate_sat_per_kvb < 0:
        return -1
    return fee


def sigop_adjusted_vsize(
    weight: int, sigop_cost: int, bytes_per_sigop: int = DEFAULT_BYTES_PER_SIGOP
) -> int:
    """Core's ``GetVirtualTransactionSize``: the vsize, or the sigop cost priced at
    ``bytes_per_sigop`` per sigop when larger (policy: dense sigops pay for the block space they
    effectively use)."""
    return (
        max(weight, sigop_cost * bytes_per_sigop) + WITNESS_SCALE_FACTOR - 1
    ) // WITNESS_SCALE_FACTOR


# -- output scripts ------------------------------------------------------------------------------


class TxoutType(Enum):
    """Core's ``TxoutType``: what ``Solver`` makes of an output script."""

    NONSTANDARD = "nonstandard"
    PUBKEY = "pubkey"
    PUBKEYHASH = "pubkeyhash"
    SCRIPTHASH = "scripthash"
    MULTISIG = "multisig"
    NULL_DATA = "nulldata"
    ANCHOR = "anchor"
    WITNESS_V0_SCRIPTHASH = "witness_v0_scripthash"
    WITNESS_V0_KEYHASH = "witness_v0_keyhash"
    WITNESS_V1_TAPROOT = "witness_v1_taproot"
    WITNESS_UNKNOWN = "witness_unknown"


def _valid_pubkey_size(data: bytes) -> bool:
    """Core's ``CPubKey::ValidSize``: the header byte implies the length."""
    if not data:
        return False
    header = data[0]
    if header in (2, 3):
        return len(data) == 33
    if header in (4, 6, 7):
        return len(data) == 65
    return False


def _witness_program(script: bytes) -> tuple[int, bytes] | None:
    n = len(script)
    if n < 4 or n > 42:
        return None
    v = script[0]
    if v != 0 and not 0x51 <= v <= 0x60:
        return None
    if script[1] + 2 != n:
        return None
    return (0 if v == 0 else v - 0x50), script[2:]


def _is_push_only(script: bytes, start: int = 0) -> bool:
    """Core's ``IsPushOnly`` of ``script[start:]``: every opcode is a push or OP_1NEGATE,
    OP_RESERVED, OP_1..OP_16, and no push runs past the end.

    Walks the bytes inline, reading pushes as ``get_op`` does (every scriptSig is checked)."""
    pos = start
    end = len(script)
    while pos < end:
        op = script[pos]
        pos += 1
        if op < 0x4C:
            pos += op
        elif op <= 0x4E:
            if op == 0x4C:
                if pos + 1 > end:
                    return False
                pos += 1 + script[pos]
            elif op == 0x4D:
                if pos + 2 > end:
                    return False
                pos += 2 + (script[pos] | script[pos + 1] << 8)
            else:
                if pos + 4 > end:
                    return False
                pos += 4 + int.from_bytes(script[pos : pos + 4], "little")
        elif op > 0x60:
            return False
        if pos > end:
            return False
    return True


def _multisig(script: bytes) -> tuple[int, int] | None:
    """(required, keys) when ``script`` is Core's bare multisig template, else None."""
    if len(script) < 3 or script[-1] != 0xAE:
        return None
    try:
        ops = list(iter_ops(script))
    except BadScript:
        return None
    if len(ops) < 4:
        return None
    first, last_n = ops[0][0], ops[-2][0]
    if not (0x51 <= first <= 0x60 and 0x51 <= last_n <= 0x60):
        return None
    required = first - 0x50
    keys = ops[1:-2]
    for opcode, data, _ in keys:
        if data is None or opcode > 0x4E or not _valid_pubkey_size(data):
            return None
    n = last_n - 0x50
    if n != len(keys) or required > n:
        return None
    return required, n


def solver(script: bytes) -> tuple[TxoutType, tuple[int, int] | None]:
    """Core's ``Solver``, reduced to what policy needs: the output type, and for multisig the
    (required, keys) counts."""
    n = len(script)
    if n == 23 and script[0] == 0xA9 and script[1] == 0x14 and script[22] == 0x87:
        return TxoutType.SCRIPTHASH, None
    wp = _witness_program(script)
    if wp is not None:
        version, program = wp
        if version == 0 and len(program) == 20:
            return TxoutType.WITNESS_V0_KEYHASH, None
        if version == 0 and len(program) == 32:
            return TxoutType.WITNESS_V0_SCRIPTHASH, None
        if version == 1 and len(program) == 32:
            return TxoutType.WITNESS_V1_TAPROOT, None
        if script == ANCHOR_SCRIPT:
            return TxoutType.ANCHOR, None
        if version != 0:
            return TxoutType.WITNESS_UNKNOWN, None
        return TxoutType.NONSTANDARD, None
    if n >= 1 and script[0] == 0x6A and _is_push_only(script, 1):
        return TxoutType.NULL_DATA, None
    if (
        ((n == 35 and script[0] == 33) or (n == 67 and script[0] == 65))
        and script[-1] == 0xAC
        and _valid_pubkey_size(script[1:-1])
    ):
        return TxoutType.PUBKEY, None
    if (
        n == 25
        and script[0] == 0x76
        and script[1] == 0xA9
        and script[2] == 0x14
        and script[23] == 0x88
        and script[24] == 0xAC
    ):
        return TxoutType.PUBKEYHASH, None
    ms = _multisig(script)
    if ms is not None:
        return TxoutType.MULTISIG, ms
    return TxoutType.NONSTANDARD, None


def is_standard_script(script: bytes) -> tuple[bool, TxoutType]:
    """Core's ``IsStandard(scriptPubKey)``: known type, and bare multisig of 1..3 keys."""
    # The common templates first, by their exact bytes (what solver answers for them).
    n = len(script)
    if n == 22:
        if script[0] == 0 and script[1] == 0x14:
            return True, TxoutType.WITNESS_V0_KEYHASH
    elif n == 34:
        if script[1] == 0x20:
            if script[0] == 0x51:
                return True, TxoutType.WITNESS_V1_TAPROOT
            if script[0] == 0:
                return True, TxoutType.WITNESS_V0_SCRIPTHASH
    elif n == 25 and (
        script[0] == 0x76
        and script[1] == 0xA9
        and script[2] == 0x14
        and script[23] == 0x88
        and script[24] == 0xAC
    ):
        return True, TxoutType.PUBKEYHASH
    kind, ms = solver(script)
    if kind is TxoutType.NONSTANDARD:
        return False, kind
    if kind is TxoutType.MULTISIG:
        assert ms is not None
        required, n = ms
        if n < 1 or n > 3 or required < 1 or required > n:
            return False, kind
    return True, kind


# -- dust ----------------------------------------------------------------------------------------


def dust_threshold(txout: TxOut, dust_relay_fee: int = DUST_RELAY_TX_FEE) -> int:
    """Core's ``GetDustThreshold``: what spending ``txout`` costs at ``dust_relay_fee`` (sat/kvB).

    The output's own size plus a typical input spending it: 148 bytes for a legacy output, 67
    virtual bytes for a witness program (P2A included: 240 sat at the default rate). Unspendable
    (OP_RETURN or oversized) outputs have no threshold.
    """
    spk = txout.script_pubkey
    n = len(spk)
    if (n and spk[0] == 0x6A) or n > 10_000:
        return 0
    size = 8 + (1 if n < 0xFD else 3) + n  # the serialized output: value, compact size, script
    if 4 <= n <= 42 and spk[1] + 2 == n and (spk[0] == 0 or 0x51 <= spk[0] <= 0x60):
        size += 32 + 4 + 1 + 107 // WITNESS_SCALE_FACTOR + 4  # a witness program
    else:
        size += 32 + 4 + 1 + 107 + 4
    return fee_for(dust_relay_fee, size)


def is_dust(txout: TxOut, dust_relay_fee: int = DUST_RELAY_TX_FEE) -> bool:
    """Core's ``IsDust``: worth less than its dust threshold."""
    return txout.value < dust_threshold(txout, dust_relay_fee)


def dust_outputs(tx: Tx, dust_relay_fee: int = DUST_RELAY_TX_FEE) -> list[int]:
    """Core's ``GetDust``: the indexes of ``tx``'s dust outputs."""
    threshold = dust_threshold
    return [i for i, out in enumerate(tx.outputs) if out.value < threshold(out, dust_relay_fee)]


# -- the transaction on its own ------------------------------------------------------------------


def check_standard_tx(
    tx: Tx,
    *,
    max_datacarrier_bytes: int | None = MAX_OP_RETURN_RELAY,
    permit_bare_multisig: bool = DEFAULT_PERMIT_BAREMULTISIG,
    dust_relay_fee: int = DUST_RELAY_TX_FEE,
) -> None:
    """Core's ``IsStandardTx``; raises :class:`PolicyError`. ``max_datacarrier_bytes`` None is
    ``-datacarrier=0`` (no OP_RETURN output at all).

    In Core's order: version 1..3 ("version"); weight ("tx-size"); per input, scriptSig size
    ("scriptsig-size") and push-only ("scriptsig-not-pushonly"); per output, a standard script
    ("scriptpubkey"), the running OP_RETURN total ("datacarrier"), bare multisig when not
    permitted ("bare-multisig"); more than one dust output ("dust").
    """
    version = tx.version & 0xFFFFFFFF
    if version > TX_MAX_STANDARD_VERSION or version < TX_MIN_STANDARD_VERSION:
        raise PolicyError("version")
    weight = tx.weight()
    if weight > MAX_STANDARD_TX_WEIGHT:
        raise PolicyError("tx-size")
    for txin in tx.inputs:
        script_sig = txin.script_sig
        if not script_sig:
            continue  # segwit spends: nothing to check
        if len(script_sig) > MAX_STANDARD_SCRIPTSIG_SIZE:
            raise PolicyError("scriptsig-size")
        if not _is_push_only(script_sig):
            raise PolicyError("scriptsig-not-pushonly")
    datacarrier_left = max_datacarrier_bytes if max_datacarrier_bytes is not None else 0
    for out in tx.outputs:
        ok, kind = is_standard_script(out.script_pubkey)
        if not ok:
            raise PolicyError("scriptpubkey")
        if kind is TxoutType.NULL_DATA:
            size = len(out.script_pubkey)
            if size > datacarrier_left:
                raise PolicyError("datacarrier")
            datacarrier_left -= size
        elif kind is TxoutType.MULTISIG and not permit_bare_multisig:
            raise PolicyError("bare-multisig")
    if len(dust_outputs(tx, dust_relay_fee)) > MAX_DUST_OUTPUTS_PER_TX:
        raise PolicyError("dust")


def check_nonwitness_size(tx: Tx) -> None:
    """PreChecks' minimum: a witness-stripped size of at least 65 bytes ("tx-size-small")."""
    if tx.base_size() < MIN_STANDARD_TX_NONWITNESS_SIZE:
        raise PolicyError("tx-size-small")


# -- the transaction with the outputs it spends --------------------------------------------------


def _push_stack(script_sig: bytes) -> list[bytes] | None:
    """The stack a push-only scriptSig leaves (OP_n pushes its number), None if not push-only."""
    stack: list[bytes] = []
    try:
        for opcode, data, _ in iter_ops(script_sig):
            if data is not None:
                stack.append(data)
            elif opcode == 0x4F:
                stack.append(b"\x81")
            elif 0x51 <= opcode <= 0x60:
                stack.append(bytes((opcode - 0x50,)))
            elif opcode == 0x00:
                stack.append(b"")
            else:
                return None
    except BadScript:
        return None
    return stack


def _is_native_witness_v0_v1(spk: bytes) -> bool:
    """P2WPKH, P2WSH or P2TR by their exact bytes (``solver``'s three standard witness types)."""
    n = len(spk)
    if n == 22:
        return spk[0] == 0 and spk[1] == 0x14
    return n == 34 and spk[1] == 0x20 and (spk[0] == 0 or spk[0] == 0x51)


def _legacy_sigops_within_limit(tx: Tx, spent: Sequence[TxOut]) -> bool:
    """Core's ``CheckSigopsBIP54``: accurately counted scriptSig and spent-scriptPubKey sigops
    (the P2SH redeem script's for a P2SH spend) stay within ``MAX_TX_LEGACY_SIGOPS``."""
    sigops = 0
    for txin, prev in zip(tx.inputs, spent, strict=True):
        spk = prev.script_pubkey
        script_sig = txin.script_sig
        if not script_sig and _is_native_witness_v0_v1(spk):
            continue  # no scriptSig, and a version byte and one push: no sigops
        sigops += script_sigops(script_sig, True)
        if len(spk) == 23 and spk[0] == 0xA9 and spk[1] == 0x14 and spk[22] == 0x87:
            stack = _push_stack(txin.script_sig)
            if stack:
                sigops += script_sigops(stack[-1], True)
        else:
            sigops += script_sigops(spk, True)
        if sigops > MAX_TX_LEGACY_SIGOPS:
            return False
    return True


def check_inputs_standard(tx: Tx, spent: Sequence[TxOut]) -> None:
    """Core's ``AreInputsStandard`` ("bad-txns-nonstandard-inputs"): the legacy sigop limit, no
    spend of a non-standard script, and P2SH redeem scripts of at most 15 sigops."""
    if tx.is_coinbase():
        return
    if not _legacy_sigops_within_limit(tx, spent):
        raise PolicyError("bad-txns-nonstandard-inputs", "non-witness sigops exceed bip54 limit")
    for i, (txin, prev) in enumerate(zip(tx.inputs, spent, strict=True)):
        spk = prev.script_pubkey
        if _is_native_witness_v0_v1(spk):
            continue  # P2WPKH, P2WSH or P2TR: standard, and not P2SH
        kind, _ = solver(spk)
        if kind is TxoutType.NONSTANDARD:
            raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: script-unknown")
        if kind is TxoutType.WITNESS_UNKNOWN:
            raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: witness-unknown")
        if kind is TxoutType.SCRIPTHASH:
            stack = _push_stack(txin.script_sig)
            if not stack:
                raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: p2sh-no-redeem")
            if script_sigops(stack[-1], True) > MAX_P2SH_SIGOPS:
                raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: p2sh-sigops")


def check_witness_standard(tx: Tx, spent: Sequence[TxOut]) -> None:
    """Core's ``IsWitnessStandard`` ("bad-witness-nonstandard").

    Per input with a witness: not spending P2A; the spent script (or P2SH redeem script) is a
    witness program; P2WSH within the script size, item count and item size limits; a taproot
    spend without annex, with a control block on script paths and tapscript items of at most 80
    bytes.
    """
    if tx.is_coinbase():
        return
    for i, (txin, prev) in enumerate(zip(tx.inputs, spent, strict=True)):
        witness = txin.witness
        if not witness:
            continue
        script = prev.script_pubkey
        if len(script) == 22 and script[0] == 0 and script[1] == 0x14:
            continue  # P2WPKH: a witness program with no further limits here
        if script == ANCHOR_SCRIPT:
            raise PolicyError("bad-witness-nonstandard", f"input {i}: witness on an anchor")
        p2sh = False
        if len(script) == 23 and script[0] == 0xA9 and script[1] == 0x14 and script[22] == 0x87:
            stack = _push_stack(txin.script_sig)
            if not stack:
                raise PolicyError("bad-witness-nonstandard", f"input {i}: no redeem script")
            script = stack[-1]
            p2sh = True
        wp = _witness_program(script)
        if wp is None:
            raise PolicyError("bad-witness-nonstandard", f"input {i}: witness for non-witness")
        version, program = wp
        if version == 0 and len(program) == 32:
            if len(witness[-1]) > MAX_STANDARD_P2WSH_SCRIPT_SIZE:
                raise PolicyError("bad-witness-nonstandard", f"input {i}: witness script size")
            if len(witness) - 1 > MAX_STANDARD_P2WSH_STACK_ITEMS:
                raise PolicyError("bad-witness-nonstandard", f"input {i}: too many stack items")
            if any(len(item) > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE for item in witness[:-1]):
                raise PolicyError("bad-witness-nonstandard", f"input {i}: stack item size")
        if version == 1 and len(program) == 32 and not p2sh:
            if len(witness) >= 2 and witness[-1] and witness[-1][0] == 0x50:
                raise PolicyError("bad-witness-nonstandard", f"input {i}: annex")
            if len(witness) >= 2:
                control = witness[-1]
                if not control:
                    raise PolicyError("bad-witness-nonstandard", f"input {i}: empty control")
                if (control[0] & 0xFE) == 0xC0 and any(
                    len(item) > MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE for item in witness[:-2]
                ):
                    raise PolicyError("bad-witness-nonstandard", f"input {i}: tapscript item size")


def check_sigop_cost(sigop_cost: int) -> None:
    """PreChecks' sigop limit ("bad-txns-too-many-sigops")."""
    if sigop_cost > MAX_STANDARD_TX_SIGOPS_COST:
        raise PolicyError("bad-txns-too-many-sigops", str(sigop_cost))


def check_ephemeral_fee(
    tx: Tx, base_fee: int, modified_fee: int, dust_relay_fee: int = DUST_RELAY_TX_FEE
) -> None:
    """Core's ``PreCheckEphemeralTx``: a transaction with a dust output must pay no fee, so it is
    never mined without the child that spends the dust ("dust")."""
    if (base_fee != 0 or modified_fee != 0) and dust_outputs(tx, dust_relay_fee):
        raise PolicyError("dust", "tx with dust output must be 0-fee")


# -- script failure texts ------------------------------------------------------------------------

_SCRIPT_ERROR_TEXT = {
    "OK": "No error",
    "EVAL_FALSE": "Script evaluated without error but finished with a false/empty top stack element",
    "OP_RETURN": "OP_RETURN was encountered",
    "SCRIPT_SIZE": "Script is too big",
    "PUSH_SIZE": "Push value size limit exceeded",
    "OP_COUNT": "Operation limit exceeded",
    "STACK_SIZE": "Stack size limit exceeded",
    "SIG_COUNT": "Signature count negative or greater than pubkey count",
    "PUBKEY_COUNT": "Pubkey count negative or limit exceeded",
    "VERIFY": "Script failed an OP_VERIFY operation",
    "EQUALVERIFY": "Script failed an OP_EQUALVERIFY operation",
    "CHECKMULTISIGVERIFY": "Script failed an OP_CHECKMULTISIGVERIFY operation",
    "CHECKSIGVERIFY": "Script failed an OP_CHECKSIGVERIFY operation",
    "NUMEQUALVERIFY": "Script failed an OP_NUMEQUALVERIFY operation",
    "BAD_OPCODE": "Opcode missing or not understood",
    "DISABLED_OPCODE": "Attempted to use a disabled opcode",
    "INVALID_STACK_OPERATION": "Operation not valid with the current stack size",
    "INVALID_ALTSTACK_OPERATION": "Operation not valid with the current altstack size",
    "UNBALANCED_CONDITIONAL": "Invalid OP_IF construction",
    "NEGATIVE_LOCKTIME": "Negative locktime",
    "UNSATISFIED_LOCKTIME": "Locktime requirement not satisfied",
    "SIG_HASHTYPE": "Signature hash type missing or not understood",
    "SIG_DER": "Non-canonical DER signature",
    "MINIMALDATA": "Data push larger than necessary",
    "SIG_PUSHONLY": "Only push operators allowed in signatures",
    "SIG_HIGH_S": "Non-canonical signature: S value is unnecessarily high",
    "SIG_NULLDUMMY": "Dummy CHECKMULTISIG argument must be zero",
    "PUBKEYTYPE": "Public key is neither compressed or uncompressed",
    "CLEANSTACK": "Stack size must be exactly one after execution",
    "MINIMALIF": "OP_IF/NOTIF argument must be minimal",
    "NULLFAIL": "Signature must be zero for failed CHECK(MULTI)SIG operation",
    "DISCOURAGE_UPGRADABLE_NOPS": "NOPx reserved for soft-fork upgrades",
    "DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM": "Witness version reserved for soft-fork upgrades",
    "DISCOURAGE_UPGRADABLE_TAPROOT_VERSION": "Taproot version reserved for soft-fork upgrades",
    "DISCOURAGE_OP_SUCCESS": "OP_SUCCESSx reserved for soft-fork upgrades",
    "DISCOURAGE_UPGRADABLE_PUBKEYTYPE": "Public key version reserved for soft-fork upgrades",
    "WITNESS_PROGRAM_WRONG_LENGTH": "Witness program has incorrect length",
    "WITNESS_PROGRAM_WITNESS_EMPTY": "Witness program was passed an empty witness",
    "WITNESS_PROGRAM_MISMATCH": "Witness program hash mismatch",
    "WITNESS_MALLEATED": "Witness requires empty scriptSig",
    "WITNESS_MALLEATED_P2SH": "Witness requires only-redeemscript scriptSig",
    "WITNESS_UNEXPECTED": "Witness provided for non-witness script",
    "WITNESS_PUBKEYTYPE": "Using non-compressed keys in segwit",
    "SCHNORR_SIG_SIZE": "Invalid Schnorr signature size",
    "SCHNORR_SIG_HASHTYPE": "Invalid Schnorr signature hash type",
    "SCHNORR_SIG": "Invalid Schnorr signature",
    "TAPROOT_WRONG_CONTROL_SIZE": "Invalid Taproot control block size",
    "TAPSCRIPT_VALIDATION_WEIGHT": "Too much signature validation relative to witness weight",
    "TAPSCRIPT_CHECKMULTISIG": "OP_CHECKMULTISIG(VERIFY) is not available in tapscript",
    "TAPSCRIPT_MINIMALIF": "OP_IF/NOTIF argument must be minimal in tapscript",
    "TAPSCRIPT_EMPTY_PUBKEY": "Empty public key in tapscript",
    "OP_CODESEPARATOR": "Using OP_CODESEPARATOR in non-witness script",
    "SIG_FINDANDDELETE": "Signature is found in scriptCode",
}
# Core's ScriptErrorString texts (src/script/script_error.cpp), as its RPC reports them.


def script_error_text(name: str) -> str:
    """Core's ``ScriptErrorString`` for a ``ScriptError`` name ("unknown error" otherwise)."""
    return _SCRIPT_ERROR_TEXT.get(name, "unknown error")
