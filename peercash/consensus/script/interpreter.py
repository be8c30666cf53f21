"""The script interpreter: Bitcoin Core's EvalScript / VerifyScript, rule for rule.

Opcodes are dispatched through a table of small functions (``_OPS``); pushes and the flow-control
opcodes, which run even in unexecuted branches, are handled in the main loop. A failure anywhere
raises ``ScriptFailure`` carrying the ``ScriptError`` Core would report; ``verify_script`` turns
that into its return value. Signature checks go through a checker object so that the same engine
serves transactions, tests and (later) signing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256 as _sha256

from ..crypto import verify_ecdsa, verify_schnorr
from ..hashing import hash160, hash256, ripemd160, sha1, sha256
from ..primitives import (
    SEQUENCE_FINAL,
    SEQUENCE_LOCKTIME_DISABLE_FLAG,
    SEQUENCE_LOCKTIME_MASK,
    SEQUENCE_LOCKTIME_TYPE_FLAG,
    Tx,
    TxOut,
)
from ..serialize import compact_size
from .errors import ScriptError, ScriptFailure
from .flags import VerifyFlags
from .opcodes import DISABLED_OPCODES, Op, is_op_success
from .script import (
    LOCKTIME_THRESHOLD,
    MAX_OPS_PER_SCRIPT,
    MAX_PUBKEYS_PER_MULTISIG,
    MAX_SCRIPT_ELEMENT_SIZE,
    MAX_SCRIPT_SIZE,
    MAX_STACK_SIZE,
    BadScript,
    decode_num,
    encode_num,
    find_and_delete,
    get_op,
    is_minimal_num,
    is_p2sh,
    is_push_only,
    push_data,
    witness_program,
)
from .sighash import (
    PrecomputedTxData,
    legacy_sighash,
    legacy_sighash_serialized,
    segwit_v0_sighash,
    taproot_sighash,
)
from .taproot import tapleaf_hash, verify_taproot_commitment

# Signature versions (Core's SigVersion).
SIGVERSION_BASE = 0
SIGVERSION_WITNESS_V0 = 1
SIGVERSION_TAPROOT = 2
SIGVERSION_TAPSCRIPT = 3

VALIDATION_WEIGHT_PER_SIGOP_PASSED = 50
"""Consensus (BIP342): budget each executed signature check consumes."""
VALIDATION_WEIGHT_OFFSET = 50
"""Consensus (BIP342): budget granted on top of the witness size."""


ANNEX_TAG = 0x50
TAPROOT_LEAF_MASK = 0xFE
TAPROOT_LEAF_TAPSCRIPT = 0xC0
TAPROOT_CONTROL_BASE_SIZE = 33
TAPROOT_CONTROL_NODE_SIZE = 32
TAPROOT_CONTROL_MAX_SIZE = TAPROOT_CONTROL_BASE_SIZE + TAPROOT_CONTROL_NODE_SIZE * 128
_PAY_TO_ANCHOR_PROGRAM = bytes.fromhex("4e73")

_P2SH = int(VerifyFlags.P2SH)
_STRICTENC = int(VerifyFlags.STRICTENC)
_DERSIG = int(VerifyFlags.DERSIG)
_LOW_S = int(VerifyFlags.LOW_S)
_NULLDUMMY = int(VerifyFlags.NULLDUMMY)
_SIGPUSHONLY = int(VerifyFlags.SIGPUSHONLY)
_MINIMALDATA = int(VerifyFlags.MINIMALDATA)
_DISCOURAGE_NOPS = int(VerifyFlags.DISCOURAGE_UPGRADABLE_NOPS)
_CLEANSTACK = int(VerifyFlags.CLEANSTACK)
_CLTV = int(VerifyFlags.CHECKLOCKTIMEVERIFY)
_CSV = int(VerifyFlags.CHECKSEQUENCEVERIFY)
_WITNESS = int(VerifyFlags.WITNESS)
_DISCOURAGE_WITNESS_PROGRAM = int(VerifyFlags.DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM)
_MINIMALIF = int(VerifyFlags.MINIMALIF)
_NULLFAIL = int(VerifyFlags.NULLFAIL)
_WITNESS_PUBKEYTYPE = int(VerifyFlags.WITNESS_PUBKEYTYPE)
_CONST_SCRIPTCODE = int(VerifyFlags.CONST_SCRIPTCODE)
_TAPROOT = int(VerifyFlags.TAPROOT)
_DISCOURAGE_TAPROOT_VERSION = int(VerifyFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION)
_DISCOURAGE_OP_SUCCESS = int(VerifyFlags.DISCOURAGE_OP_SUCCESS)
_DISCOURAGE_PUBKEYTYPE = int(VerifyFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE)

_TRUE = b"\x01"
_FALSE = b""

_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = _SECP256K1_ORDER // 2


class ExecutionData:
    """Per-input data the taproot rules thread through execution (Core's ScriptExecutionData)."""

    __slots__ = ("annex", "codesep_pos", "tapleaf_hash", "validation_weight_left")

    def __init__(self) -> None:
        self.codesep_pos = 0xFFFFFFFF
        self.annex: bytes | None = None
        self.tapleaf_hash: bytes | None = None
        self.validation_weight_left = 0


# -- signature checkers -----------------------------------------------------------------------


class BaseSignatureChecker:
    """A checker that has no transaction: every signature and lock-time check fails."""

    def check_ecdsa(self, sig: bytes, pubkey: bytes, script_code: bytes, sigversion: int) -> bool:
        return False

    def check_ecdsa_plain(self, sig: bytes, pubkey: bytes, script_code: bytes) -> bool:
        """``check_ecdsa`` for SigVersion BASE and a script code known to be whole opcodes without
        OP_CODESEPARATOR (the templates' scripts), which lets the hash skip re-reading it."""
        return self.check_ecdsa(sig, pubkey, script_code, SIGVERSION_BASE)

    def check_schnorr(
        self, sig: bytes, pubkey: bytes, sigversion: int, execdata: ExecutionData
    ) -> None:
        """Raise ``ScriptFailure`` unless the Schnorr signature is valid."""
        raise ScriptFailure(ScriptError.SCHNORR_SIG)

    def check_locktime(self, locktime: int) -> bool:
        return False

    def check_sequence(self, sequence: int) -> bool:
        return False


class TransactionChecker(BaseSignatureChecker):
    """Checks signatures and lock times against input ``index`` of ``tx`` (amount in satoshis)."""

    __slots__ = ("_memo", "amount", "index", "tx", "txdata")

    def __init__(
        self, tx: Tx, index: int, amount: int, txdata: PrecomputedTxData | None = None
    ) -> None:
        self.tx = tx
        self.index = index
        self.amount = amount
        self.txdata = txdata if txdata is not None else PrecomputedTxData(tx)
        # The last ECDSA message: (hash type, sigversion, script code, hash). The signatures of a
        # multisig input usually share all three, so they share one hash.
        self._memo: tuple[int, int, bytes, bytes] | None = None

    # The libsecp256k1 calls, as class attributes so a subclass can observe them (benchmarks).
    verify_ecdsa = staticmethod(verify_ecdsa)
    verify_schnorr = staticmethod(verify_schnorr)

    def _remembered(self, hash_type: int, sigversion: int, script_code: bytes) -> bytes | None:
        """The ECDSA message last computed, if it was for these hash type, version and code."""
        memo = self._memo
        if (
            memo is not None
            and memo[0] == hash_type
            and memo[1] == sigversion
            and (memo[2] is script_code or memo[2] == script_code)
        ):
            return memo[3]
        return None

    def check_ecdsa(self, sig: bytes, pubkey: bytes, script_code: bytes, sigversion: int) -> bool:
        if not pubkey_size_valid(pubkey) or not sig:
            return False
        hash_type = sig[-1]
        msg = self._remembered(hash_type, sigversion, script_code)
        if msg is None:
            if sigversion == SIGVERSION_WITNESS_V0:
                msg = segwit_v0_sighash(
                    script_code, self.tx, self.index, hash_type, self.amount, self.txdata
                )
            else:
                msg = legacy_sighash(script_code, self.tx, self.index, hash_type, self.txdata)
            self._memo = (hash_type, sigversion, script_code, msg)
        return self.verify_ecdsa(pubkey, sig[:-1], msg)

    def check_ecdsa_plain(self, sig: bytes, pubkey: bytes, script_code: bytes) -> bool:
        if not pubkey_size_valid(pubkey) or not sig:
            return False
        hash_type = sig[-1]
        msg = self._remembered(hash_type, SIGVERSION_BASE, script_code)
        if msg is None:
            n = len(script_code)
            code = (bytes((n,)) if n < 0xFD else compact_size(n)) + script_code
            msg = legacy_sighash_serialized(code, self.tx, self.index, hash_type, self.txdata)
            self._memo = (hash_type, SIGVERSION_BASE, script_code, msg)
        return self.verify_ecdsa(pubkey, sig[:-1], msg)

    def check_schnorr(
        self, sig: bytes, pubkey: bytes, sigversion: int, execdata: ExecutionData
    ) -> None:
        n = len(sig)
        if n != 64 and n != 65:
            raise ScriptFailure(ScriptError.SCHNORR_SIG_SIZE)
        hash_type = 0
        if n == 65:
            hash_type = sig[64]
            if hash_type == 0:
                raise ScriptFailure(ScriptError.SCHNORR_SIG_HASHTYPE)
            sig = sig[:64]
        tapscript = sigversion == SIGVERSION_TAPSCRIPT
        msg = taproot_sighash(
            self.tx,
            self.index,
            hash_type,
            self.txdata,
            1 if tapscript else 0,
            execdata.annex,
            execdata.tapleaf_hash if tapscript else None,
            execdata.codesep_pos,
        )
        if msg is None:
            raise ScriptFailure(ScriptError.SCHNORR_SIG_HASHTYPE)
        if not self.verify_schnorr(pubkey, sig, msg):
            raise ScriptFailure(ScriptError.SCHNORR_SIG)

    def check_locktime(self, locktime: int) -> bool:
        tx_locktime = self.tx.locktime
        if (tx_locktime < LOCKTIME_THRESHOLD) != (locktime < LOCKTIME_THRESHOLD):
            return False
        if locktime > tx_locktime:
            return False
        # A final input disables the transaction's lock time, and with it this check.
        return self.tx.inputs[self.index].sequence != SEQUENCE_FINAL

    def check_sequence(self, sequence: int) -> bool:
        tx_sequence = self.tx.inputs[self.index].sequence
        if self.tx.version < 2:
            return False
        if tx_sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            return False
        mask = SEQUENCE_LOCKTIME_TYPE_FLAG | SEQUENCE_LOCKTIME_MASK
        tx_masked = tx_sequence & mask
        op_masked = sequence & mask
        if (tx_masked < SEQUENCE_LOCKTIME_TYPE_FLAG) != (op_masked < SEQUENCE_LOCKTIME_TYPE_FLAG):
            return False
        return op_masked <= tx_masked


# -- encoding checks (BIP62/66, STRICTENC) ---------------------------------------------------------


def pubkey_size_valid(pubkey: bytes) -> bool:
    """Core's CPubKey::IsValid: the length the header byte announces."""
    n = len(pubkey)
    if not n:
        return False
    h = pubkey[0]
    if h == 2 or h == 3:
        return n == 33
    if h == 4 or h == 6 or h == 7:
        return n == 65
    return False


def is_valid_signature_encoding(sig: bytes) -> bool:
    """BIP66 strict DER (with the trailing hash-type byte)."""
    n = len(sig)
    if n < 9 or n > 73:
        return False
    if sig[0] != 0x30 or sig[1] != n - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= n:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != n:
        return False
    if sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    return not (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80)


def _is_low_s(sig: bytes) -> bool:
    """For a strictly DER-encoded signature: S is at most half the group order.

    Overflowing R or S makes libsecp256k1's lax parser yield a zero signature, which counts as
    low, exactly as Core's CheckLowS behaves.
    """
    len_r = sig[3]
    r = int.from_bytes(sig[4 : 4 + len_r], "big")
    len_s = sig[5 + len_r]
    s = int.from_bytes(sig[6 + len_r : 6 + len_r + len_s], "big")
    if r >= _SECP256K1_ORDER or s >= _SECP256K1_ORDER:
        return True
    return s <= _HALF_ORDER


def check_signature_encoding(sig: bytes, flags: int) -> None:
    if not sig:
        return  # the empty signature is a compact, always-invalid signature
    if flags & (_DERSIG | _LOW_S | _STRICTENC) and not is_valid_signature_encoding(sig):
        raise ScriptFailure(ScriptError.SIG_DER)
    if flags & _LOW_S and not _is_low_s(sig):
        raise ScriptFailure(ScriptError.SIG_HIGH_S)
    if flags & _STRICTENC:
        base = sig[-1] & ~0x80
        if base < 1 or base > 3:
            raise ScriptFailure(ScriptError.SIG_HASHTYPE)


def check_pubkey_encoding(pubkey: bytes, flags: int, sigversion: int) -> None:
    if flags & _STRICTENC:
        n = len(pubkey)
        ok = n >= 33 and (
            (pubkey[0] == 4 and n == 65) or ((pubkey[0] == 2 or pubkey[0] == 3) and n == 33)
        )
        if not ok:
            raise ScriptFailure(ScriptError.PUBKEYTYPE)
    if (
        flags & _WITNESS_PUBKEYTYPE
        and sigversion == SIGVERSION_WITNESS_V0
        and not (len(pubkey) == 33 and pubkey[0] in (2, 3))
    ):
        raise ScriptFailure(ScriptError.WITNESS_PUBKEYTYPE)


def check_minimal_push(data: bytes, opcode: int) -> bool:
    n = len(data)
    if n == 0:
        return opcode == Op.OP_0
    if n == 1 and 1 <= data[0] <= 16:
        return False
    if n == 1 and data[0] == 0x81:
        return False
    if n <= 75:
        return opcode == n
    if n <= 255:
        return opcode == Op.OP_PUSHDATA1
    if n <= 65535:
        return opcode == Op.OP_PUSHDATA2
    return True


def cast_to_bool(v: bytes) -> bool:
    """Any non-zero byte is true, except a sign bit alone in the last byte (negative zero)."""
    if not v:
        return False
    if v[-1] & 0x7F:
        return True
    return any(v[:-1])


# -- the evaluator ------------------------------------------------------------------------------


class _State:
    """What one EvalScript call works on; handlers read and mutate it."""

    __slots__ = (
        "altstack",
        "begincode",
        "checker",
        "execdata",
        "flags",
        "minimal",
        "op_count",
        "script",
        "sigversion",
        "stack",
    )

    def __init__(
        self,
        stack: list[bytes],
        script: bytes,
        flags: int,
        checker: BaseSignatureChecker,
        sigversion: int,
        execdata: ExecutionData,
    ) -> None:
        self.stack = stack
        self.altstack: list[bytes] = []
        self.script = script
        self.flags = flags
        self.checker = checker
        self.sigversion = sigversion
        self.execdata = execdata
        self.minimal = bool(flags & _MINIMALDATA)
        self.op_count = 0
        self.begincode = 0


def _num(st: _State, v: bytes, max_size: int = 4) -> int:
    """Core's CScriptNum constructor: a bounded, optionally minimal, script number."""
    if len(v) > max_size:
        raise ScriptFailure(ScriptError.SCRIPTNUM)
    if st.minimal and not is_minimal_num(v):
        raise ScriptFailure(ScriptError.SCRIPTNUM)
    return decode_num(v)


def _need(st: _State, n: int) -> list[bytes]:
    stack = st.stack
    if len(stack) < n:
        raise ScriptFailure(ScriptError.INVALID_STACK_OPERATION)
    return stack


Handler = Callable[[_State, int], None]


def _op_bad(st: _State, opcode: int) -> None:
    raise ScriptFailure(ScriptError.BAD_OPCODE)


def _op_small_int(st: _State, opcode: int) -> None:
    st.stack.append(encode_num(opcode - (Op.OP_1 - 1)))


def _op_nop(st: _State, opcode: int) -> None:
    pass


def _op_upgradable_nop(st: _State, opcode: int) -> None:
    if st.flags & _DISCOURAGE_NOPS:
        raise ScriptFailure(ScriptError.DISCOURAGE_UPGRADABLE_NOPS)


def _lock_operand(st: _State) -> int:
    """The top of the stack as a lock time or sequence: up to 5 bytes, never negative."""
    value = _num(st, _need(st, 1)[-1], 5)
    if value < 0:
        raise ScriptFailure(ScriptError.NEGATIVE_LOCKTIME)
    return value


def _op_cltv(st: _State, opcode: int) -> None:
    if not st.flags & _CLTV:
        return  # not enabled: a plain NOP (never discouraged, as in Core)
    locktime = _lock_operand(st)
    if not st.checker.check_locktime(locktime):
        raise ScriptFailure(ScriptError.UNSATISFIED_LOCKTIME)


def _op_csv(st: _State, opcode: int) -> None:
    if not st.flags & _CSV:
        return  # not enabled: a plain NOP (never discouraged, as in Core)
    sequence = _lock_operand(st)
    if sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG:
        return  # reserved for future soft forks: behaves as a NOP
    if not st.checker.check_sequence(sequence):
        raise ScriptFailure(ScriptError.UNSATISFIED_LOCKTIME)


def _op_verify(st: _State, opcode: int) -> None:
    stack = _need(st, 1)
    if not cast_to_bool(stack[-1]):
        raise ScriptFailure(ScriptError.VERIFY)
    stack.pop()


def _op_return(st: _State, opcode: int) -> None:
    raise ScriptFailure(ScriptError.OP_RETURN)


def _op_toaltstack(st: _State, opcode: int) -> None:
    stack = _need(st, 1)
    st.altstack.append(stack.pop())


def _op_fromaltstack(st: _State, opcode: int) -> None:
    if not st.altstack:
        raise ScriptFailure(ScriptError.INVALID_ALTSTACK_OPERATION)
    st.stack.append(st.altstack.pop())


def _op_2drop(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    del stack[-2:]


def _op_2dup(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    stack.extend(stack[-2:])


def _op_3dup(st: _State, opcode: int) -> None:
    stack = _need(st, 3)
    stack.extend(stack[-3:])


def _op_2over(st: _State, opcode: int) -> None:
    stack = _need(st, 4)
    stack.extend(stack[-4:-2])


def _op_2rot(st: _State, opcode: int) -> None:
    stack = _need(st, 6)
    pair = stack[-6:-4]
    del stack[-6:-4]
    stack.extend(pair)


def _op_2swap(st: _State, opcode: int) -> None:
    stack = _need(st, 4)
    stack[-4:] = stack[-2:] + stack[-4:-2]


def _op_ifdup(st: _State, opcode: int) -> None:
    stack = _need(st, 1)
    if cast_to_bool(stack[-1]):
        stack.append(stack[-1])


def _op_depth(st: _State, opcode: int) -> None:
    st.stack.append(encode_num(len(st.stack)))


def _op_drop(st: _State, opcode: int) -> None:
    _need(st, 1).pop()


def _op_dup(st: _State, opcode: int) -> None:
    stack = _need(st, 1)
    stack.append(stack[-1])


def _op_nip(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    del stack[-2]


def _op_over(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    stack.append(stack[-2])


def _op_pick_roll(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    n = _num(st, stack[-1])
    stack.pop()
    if n < 0 or n >= len(stack):
        raise ScriptFailure(ScriptError.INVALID_STACK_OPERATION)
    v = stack[-n - 1]
    if opcode == Op.OP_ROLL:
        del stack[-n - 1]
    stack.append(v)


def _op_rot(st: _State, opcode: int) -> None:
    stack = _need(st, 3)
    stack.append(stack.pop(-3))


def _op_swap(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    stack[-1], stack[-2] = stack[-2], stack[-1]


def _op_tuck(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    stack.insert(-2, stack[-1])


def _op_size(st: _State, opcode: int) -> None:
    stack = _need(st, 1)
    stack.append(encode_num(len(stack[-1])))


def _op_equal(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    equal = stack[-1] == stack[-2]
    del stack[-2:]
    if opcode == Op.OP_EQUALVERIFY:
        if not equal:
            raise ScriptFailure(ScriptError.EQUALVERIFY)
    else:
        stack.append(_TRUE if equal else _FALSE)


def _op_unary_num(st: _State, opcode: int) -> None:
    stack = _need(st, 1)
    n = _num(st, stack[-1])
    if opcode == Op.OP_1ADD:
        n += 1
    elif opcode == Op.OP_1SUB:
        n -= 1
    elif opcode == Op.OP_NEGATE:
        n = -n
    elif opcode == Op.OP_ABS:
        n = abs(n)
    elif opcode == Op.OP_NOT:
        n = int(n == 0)
    else:  # OP_0NOTEQUAL
        n = int(n != 0)
    stack[-1] = encode_num(n)


def _op_binary_num(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    a = _num(st, stack[-2])
    b = _num(st, stack[-1])
    if opcode == Op.OP_ADD:
        r = a + b
    elif opcode == Op.OP_SUB:
        r = a - b
    elif opcode == Op.OP_BOOLAND:
        r = int(a != 0 and b != 0)
    elif opcode == Op.OP_BOOLOR:
        r = int(a != 0 or b != 0)
    elif opcode == Op.OP_NUMEQUAL or opcode == Op.OP_NUMEQUALVERIFY:
        r = int(a == b)
    elif opcode == Op.OP_NUMNOTEQUAL:
        r = int(a != b)
    elif opcode == Op.OP_LESSTHAN:
        r = int(a < b)
    elif opcode == Op.OP_GREATERTHAN:
        r = int(a > b)
    elif opcode == Op.OP_LESSTHANOREQUAL:
        r = int(a <= b)
    elif opcode == Op.OP_GREATERTHANOREQUAL:
        r = int(a >= b)
    elif opcode == Op.OP_MIN:
        r = min(a, b)
    else:  # OP_MAX
        r = max(a, b)
    del stack[-2:]
    if opcode == Op.OP_NUMEQUALVERIFY:
        if not r:
            raise ScriptFailure(ScriptError.NUMEQUALVERIFY)
    else:
        stack.append(encode_num(r))


def _op_within(st: _State, opcode: int) -> None:
    stack = _need(st, 3)
    x = _num(st, stack[-3])
    lo = _num(st, stack[-2])
    hi = _num(st, stack[-1])
    del stack[-3:]
    stack.append(_TRUE if lo <= x < hi else _FALSE)


_HASHES: dict[int, Callable[[bytes], bytes]] = {
    Op.OP_RIPEMD160: ripemd160,
    Op.OP_SHA1: sha1,
    Op.OP_SHA256: sha256,
    Op.OP_HASH160: hash160,
    Op.OP_HASH256: hash256,
}


def _op_hash(st: _State, opcode: int) -> None:
    stack = _need(st, 1)
    stack[-1] = _HASHES[opcode](stack[-1])


def _op_codeseparator(st: _State, opcode: int) -> None:
    # ``begincode`` was set by the main loop (it knows where the next opcode starts).
    pass


def _eval_checksig(st: _State, sig: bytes, pubkey: bytes) -> bool:
    """One signature check, pre-tapscript or tapscript; raises on rule failures."""
    flags = st.flags
    sigversion = st.sigversion
    if sigversion == SIGVERSION_TAPSCRIPT:
        success = len(sig) > 0
        execdata = st.execdata
        if success:
            execdata.validation_weight_left -= VALIDATION_WEIGHT_PER_SIGOP_PASSED
            if execdata.validation_weight_left < 0:
                raise ScriptFailure(ScriptError.TAPSCRIPT_VALIDATION_WEIGHT)
        n = len(pubkey)
        if n == 0:
            raise ScriptFailure(ScriptError.TAPSCRIPT_EMPTY_PUBKEY)
        if n == 32:
            if success:
                st.checker.check_schnorr(sig, pubkey, sigversion, execdata)
        elif flags & _DISCOURAGE_PUBKEYTYPE:
            raise ScriptFailure(ScriptError.DISCOURAGE_UPGRADABLE_PUBKEYTYPE)
        return success
    script_code = st.script[st.begincode :]
    if sigversion == SIGVERSION_BASE:
        # Core deletes ``<sig>`` even when empty (a lone OP_0), visible under CONST_SCRIPTCODE.
        script_code, found = find_and_delete(script_code, push_data(sig))
        if found and flags & _CONST_SCRIPTCODE:
            raise ScriptFailure(ScriptError.SIG_FINDANDDELETE)
    check_signature_encoding(sig, flags)
    check_pubkey_encoding(pubkey, flags, sigversion)
    ok = st.checker.check_ecdsa(sig, pubkey, script_code, sigversion)
    if not ok and flags & _NULLFAIL and sig:
        raise ScriptFailure(ScriptError.SIG_NULLFAIL)
    return ok


def _op_checksig(st: _State, opcode: int) -> None:
    stack = _need(st, 2)
    ok = _eval_checksig(st, stack[-2], stack[-1])
    del stack[-2:]
    if opcode == Op.OP_CHECKSIGVERIFY:
        if not ok:
            raise ScriptFailure(ScriptError.CHECKSIGVERIFY)
    else:
        stack.append(_TRUE if ok else _FALSE)


def _op_checksigadd(st: _State, opcode: int) -> None:
    if st.sigversion != SIGVERSION_TAPSCRIPT:
        raise ScriptFailure(ScriptError.BAD_OPCODE)
    stack = _need(st, 3)
    n = _num(st, stack[-2])
    ok = _eval_checksig(st, stack[-3], stack[-1])
    del stack[-3:]
    stack.append(encode_num(n + 1 if ok else n))


def _op_checkmultisig(st: _State, opcode: int) -> None:
    if st.sigversion == SIGVERSION_TAPSCRIPT:
        raise ScriptFailure(ScriptError.TAPSCRIPT_CHECKMULTISIG)
    stack = st.stack
    flags = st.flags
    i = 1
    if len(stack) < i:
        raise ScriptFailure(ScriptError.INVALID_STACK_OPERATION)
    n_keys = _num(st, stack[-i])
    if n_keys < 0 or n_keys > MAX_PUBKEYS_PER_MULTISIG:
        raise ScriptFailure(ScriptError.PUBKEY_COUNT)
    st.op_count += n_keys
    if st.op_count > MAX_OPS_PER_SCRIPT:
        raise ScriptFailure(ScriptError.OP_COUNT)
    i += 1
    ikey = i
    # Position of the last non-signature item, for NULLFAIL's clean-up check.
    ikey2 = n_keys + 2
    i += n_keys
    if len(stack) < i:
        raise ScriptFailure(ScriptError.INVALID_STACK_OPERATION)
    n_sigs = _num(st, stack[-i])
    if n_sigs < 0 or n_sigs > n_keys:
        raise ScriptFailure(ScriptError.SIG_COUNT)
    i += 1
    isig = i
    i += n_sigs
    if len(stack) < i:
        raise ScriptFailure(ScriptError.INVALID_STACK_OPERATION)

    script_code = st.script[st.begincode :]
    if st.sigversion == SIGVERSION_BASE:
        for k in range(n_sigs):
            script_code, found = find_and_delete(script_code, push_data(stack[-isig - k]))
            if found and flags & _CONST_SCRIPTCODE:
                raise ScriptFailure(ScriptError.SIG_FINDANDDELETE)

    success = True
    checker = st.checker
    sigversion = st.sigversion
    while success and n_sigs > 0:
        sig = stack[-isig]
        pubkey = stack[-ikey]
        # The order of these encoding checks is observable with STRICTENC (see script tests).
        check_signature_encoding(sig, flags)
        check_pubkey_encoding(pubkey, flags, sigversion)
        if checker.check_ecdsa(sig, pubkey, script_code, sigversion):
            isig += 1
            n_sigs -= 1
        ikey += 1
        n_keys -= 1
        # More signatures left than keys: too many have failed already.
        if n_sigs > n_keys:
            success = False

    while i > 1:
        i -= 1
        if not success and flags & _NULLFAIL and not ikey2 and stack[-1]:
            raise ScriptFailure(ScriptError.SIG_NULLFAIL)
        if ikey2 > 0:
            ikey2 -= 1
        stack.pop()
    # The historical off-by-one: one extra element is consumed, which NULLDUMMY pins to empty.
    if not stack:
        raise ScriptFailure(ScriptError.INVALID_STACK_OPERATION)
    if flags & _NULLDUMMY and stack[-1]:
        raise ScriptFailure(ScriptError.SIG_NULLDUMMY)
    stack.pop()
    if opcode == Op.OP_CHECKMULTISIGVERIFY:
        if not success:
            raise ScriptFailure(ScriptError.CHECKMULTISIGVERIFY)
    else:
        stack.append(_TRUE if success else _FALSE)


def _build_table() -> list[Handler]:
    table: list[Handler] = [_op_bad] * 256
    table[Op.OP_1NEGATE] = _op_small_int
    for op in range(Op.OP_1, Op.OP_16 + 1):
        table[op] = _op_small_int
    table[Op.OP_NOP] = _op_nop
    for op in (Op.OP_NOP1, *range(Op.OP_NOP4, Op.OP_NOP10 + 1)):
        table[op] = _op_upgradable_nop
    table[Op.OP_CHECKLOCKTIMEVERIFY] = _op_cltv
    table[Op.OP_CHECKSEQUENCEVERIFY] = _op_csv
    table[Op.OP_VERIFY] = _op_verify
    table[Op.OP_RETURN] = _op_return
    table[Op.OP_TOALTSTACK] = _op_toaltstack
    table[Op.OP_FROMALTSTACK] = _op_fromaltstack
    table[Op.OP_2DROP] = _op_2drop
    table[Op.OP_2DUP] = _op_2dup
    table[Op.OP_3DUP] = _op_3dup
    table[Op.OP_2OVER] = _op_2over
    table[Op.OP_2ROT] = _op_2rot
    table[Op.OP_2SWAP] = _op_2swap
    table[Op.OP_IFDUP] = _op_ifdup
    table[Op.OP_DEPTH] = _op_depth
    table[Op.OP_DROP] = _op_drop
    table[Op.OP_DUP] = _op_dup
    table[Op.OP_NIP] = _op_nip
    table[Op.OP_OVER] = _op_over
    table[Op.OP_PICK] = _op_pick_roll
    table[Op.OP_ROLL] = _op_pick_roll
    table[Op.OP_ROT] = _op_rot
    table[Op.OP_SWAP] = _op_swap
    table[Op.OP_TUCK] = _op_tuck
    table[Op.OP_SIZE] = _op_size
    table[Op.OP_EQUAL] = _op_equal
    table[Op.OP_EQUALVERIFY] = _op_equal
    for op in (Op.OP_1ADD, Op.OP_1SUB, Op.OP_NEGATE, Op.OP_ABS, Op.OP_NOT, Op.OP_0NOTEQUAL):
        table[op] = _op_unary_num
    for op in (
        Op.OP_ADD,
        Op.OP_SUB,
        Op.OP_BOOLAND,
        Op.OP_BOOLOR,
        Op.OP_NUMEQUAL,
        Op.OP_NUMEQUALVERIFY,
        Op.OP_NUMNOTEQUAL,
        Op.OP_LESSTHAN,
        Op.OP_GREATERTHAN,
        Op.OP_LESSTHANOREQUAL,
        Op.OP_GREATERTHANOREQUAL,
        Op.OP_MIN,
        Op.OP_MAX,
    ):
        table[op] = _op_binary_num
    table[Op.OP_WITHIN] = _op_within
    for op in _HASHES:
        table[op] = _op_hash
    table[Op.OP_CODESEPARATOR] = _op_codeseparator
    table[Op.OP_CHECKSIG] = _op_checksig
    table[Op.OP_CHECKSIGVERIFY] = _op_checksig
    table[Op.OP_CHECKMULTISIG] = _op_checkmultisig
    table[Op.OP_CHECKMULTISIGVERIFY] = _op_checkmultisig
    table[Op.OP_CHECKSIGADD] = _op_checksigadd
    return table


_OPS: tuple[Handler, ...] = tuple(_build_table())
_IS_DISABLED = tuple(op in DISABLED_OPCODES for op in range(256))


def eval_script(
    stack: list[bytes],
    script: bytes,
    flags: int,
    checker: BaseSignatureChecker,
    sigversion: int,
    execdata: ExecutionData | None = None,
) -> None:
    """Run ``script`` on ``stack`` (mutated in place); raise ``ScriptFailure`` on any failure."""
    if execdata is None:
        execdata = ExecutionData()
    legacy = sigversion == SIGVERSION_BASE or sigversion == SIGVERSION_WITNESS_V0
    if legacy and len(script) > MAX_SCRIPT_SIZE:
        raise ScriptFailure(ScriptError.SCRIPT_SIZE)
    st = _State(stack, script, flags, checker, sigversion, execdata)
    execdata.codesep_pos = 0xFFFFFFFF
    minimal = st.minimal
    const_scriptcode = bool(flags & _CONST_SCRIPTCODE) and sigversion == SIGVERSION_BASE
    ops = _OPS
    is_disabled = _IS_DISABLED
    altstack = st.altstack
    cond: list[bool] = []
    false_count = 0
    pos = 0
    end = len(script)
    opcode_pos = -1
    try:
        while pos < end:
            opcode_pos += 1
            executing = false_count == 0
            opcode = script[pos]
            if opcode <= Op.OP_PUSHDATA4:
                try:
                    opcode, data, pos = get_op(script, pos)
                except BadScript:
                    raise ScriptFailure(ScriptError.BAD_OPCODE) from None
                assert data is not None
                if len(data) > MAX_SCRIPT_ELEMENT_SIZE:
                    raise ScriptFailure(ScriptError.PUSH_SIZE)
                if executing:
                    if minimal and not check_minimal_push(data, opcode):
                        raise ScriptFailure(ScriptError.MINIMALDATA)
                    stack.append(data)
                    if len(stack) + len(altstack) > MAX_STACK_SIZE:
                        raise ScriptFailure(ScriptError.STACK_SIZE)
                continue
            pos += 1
            if legacy and opcode > Op.OP_16:
                st.op_count += 1
                if st.op_count > MAX_OPS_PER_SCRIPT:
                    raise ScriptFailure(ScriptError.OP_COUNT)
            if is_disabled[opcode]:
                raise ScriptFailure(ScriptError.DISABLED_OPCODE)
            if opcode == Op.OP_CODESEPARATOR and const_scriptcode:
                raise ScriptFailure(ScriptError.OP_CODESEPARATOR)
            if Op.OP_IF <= opcode <= Op.OP_ENDIF:
                if opcode == Op.OP_IF or opcode == Op.OP_NOTIF:
                    value = False
                    if executing:
                        if not stack:
                            raise ScriptFailure(ScriptError.INVALID_STACK_OPERATION)
                        top = stack[-1]
                        if sigversion == SIGVERSION_TAPSCRIPT:
                            if len(top) > 1 or (len(top) == 1 and top[0] != 1):
                                raise ScriptFailure(ScriptError.TAPSCRIPT_MINIMALIF)
                        elif (
                            sigversion == SIGVERSION_WITNESS_V0
                            and flags & _MINIMALIF
                            and (len(top) > 1 or (len(top) == 1 and top[0] != 1))
                        ):
                            raise ScriptFailure(ScriptError.MINIMALIF)
                        value = cast_to_bool(top)
                        if opcode == Op.OP_NOTIF:
                            value = not value
                        stack.pop()
                    cond.append(value)
                    if not value:
                        false_count += 1
                elif opcode == Op.OP_ELSE:
                    if not cond:
                        raise ScriptFailure(ScriptError.UNBALANCED_CONDITIONAL)
                    if cond[-1]:
                        false_count += 1
                    else:
                        false_count -= 1
                    cond[-1] = not cond[-1]
                elif opcode == Op.OP_ENDIF:
                    if not cond:
                        raise ScriptFailure(ScriptError.UNBALANCED_CONDITIONAL)
                    if not cond.pop():
                        false_count -= 1
                else:  # OP_VERIF / OP_VERNOTIF fail even when not executed
                    raise ScriptFailure(ScriptError.BAD_OPCODE)
            elif executing:
                if opcode == Op.OP_CODESEPARATOR:
                    st.begincode = pos
                    execdata.codesep_pos = opcode_pos
                else:
                    ops[opcode](st, opcode)
            else:
                continue
            if len(stack) + len(altstack) > MAX_STACK_SIZE:
                raise ScriptFailure(ScriptError.STACK_SIZE)
    except (IndexError, ValueError):  # pragma: no cover - defensive, Core's catch (...)
        raise ScriptFailure(ScriptError.UNKNOWN_ERROR) from None
    if cond:
        raise ScriptFailure(ScriptError.UNBALANCED_CONDITIONAL)


# -- witness programs and the top level ----------------------------------------------------------


def _execute_witness_script(
    stack: list[bytes],
    script: bytes,
    flags: int,
    sigversion: int,
    checker: BaseSignatureChecker,
    execdata: ExecutionData,
) -> None:
    if sigversion == SIGVERSION_TAPSCRIPT:
        # OP_SUCCESSx anywhere makes the script succeed, before any other rule is looked at.
        pos = 0
        end = len(script)
        while pos < end:
            try:
                opcode, _, pos = get_op(script, pos)
            except BadScript:
                raise ScriptFailure(ScriptError.BAD_OPCODE) from None
            if is_op_success(opcode):
                if flags & _DISCOURAGE_OP_SUCCESS:
                    raise ScriptFailure(ScriptError.DISCOURAGE_OP_SUCCESS)
                return
        if len(stack) > MAX_STACK_SIZE:
            raise ScriptFailure(ScriptError.STACK_SIZE)
    for item in stack:
        if len(item) > MAX_SCRIPT_ELEMENT_SIZE:
            raise ScriptFailure(ScriptError.PUSH_SIZE)
    eval_script(stack, script, flags, checker, sigversion, execdata)
    if len(stack) != 1:
        raise ScriptFailure(ScriptError.CLEANSTACK)
    if not cast_to_bool(stack[-1]):
        raise ScriptFailure(ScriptError.EVAL_FALSE)


def _witness_stack_size(witness: Sequence[bytes]) -> int:
    size = len(compact_size(len(witness)))
    for item in witness:
        size += len(compact_size(len(item))) + len(item)
    return size


def _verify_witness_program(
    witness: Sequence[bytes],
    version: int,
    program: bytes,
    flags: int,
    checker: BaseSignatureChecker,
    is_p2sh: bool,
    fast: bool = True,
) -> None:
    """Core's VerifyWitnessProgram; ``fast`` False runs even the templates through
    ``eval_script`` (the reference the tests compare the fast paths with)."""
    if version == 0:
        if len(program) == 32:
            if not witness:
                raise ScriptFailure(ScriptError.WITNESS_PROGRAM_WITNESS_EMPTY)
            script = witness[-1]
            if _sha256(script).digest() != program:
                raise ScriptFailure(ScriptError.WITNESS_PROGRAM_MISMATCH)
            _execute_witness_script(
                list(witness[:-1]), script, flags, SIGVERSION_WITNESS_V0, checker, ExecutionData()
            )
            return
        if len(program) == 20:
            if len(witness) != 2:
                raise ScriptFailure(ScriptError.WITNESS_PROGRAM_MISMATCH)
            if not fast:
                script = b"\x76\xa9\x14" + program + b"\x88\xac"
                _execute_witness_script(
                    list(witness), script, flags, SIGVERSION_WITNESS_V0, checker, ExecutionData()
                )
                return
            _p2pkh_template(
                witness[0], witness[1], program, flags, checker, SIGVERSION_WITNESS_V0, True
            )
            return
        raise ScriptFailure(ScriptError.WITNESS_PROGRAM_WRONG_LENGTH)
    if version == 1 and len(program) == 32 and not is_p2sh:
        if not flags & _TAPROOT:
            return
        n = len(witness)
        if n == 0:
            raise ScriptFailure(ScriptError.WITNESS_PROGRAM_WITNESS_EMPTY)
        execdata = ExecutionData()
        if n >= 2 and witness[-1] and witness[-1][0] == ANNEX_TAG:
            execdata.annex = witness[-1]
            n -= 1
        if n == 1:
            checker.check_schnorr(witness[0], program, SIGVERSION_TAPROOT, execdata)
            return
        control = witness[n - 1]
        script = witness[n - 2]
        size = len(control)
        if (
            size < TAPROOT_CONTROL_BASE_SIZE
            or size > TAPROOT_CONTROL_MAX_SIZE
            or (size - TAPROOT_CONTROL_BASE_SIZE) % TAPROOT_CONTROL_NODE_SIZE
        ):
            raise ScriptFailure(ScriptError.TAPROOT_WRONG_CONTROL_SIZE)
        leaf_version = control[0] & TAPROOT_LEAF_MASK
        leaf = tapleaf_hash(leaf_version, script)
        if not verify_taproot_commitment(control, program, leaf):
            raise ScriptFailure(ScriptError.WITNESS_PROGRAM_MISMATCH)
        execdata.tapleaf_hash = leaf
        if leaf_version == TAPROOT_LEAF_TAPSCRIPT:
            if fast and n == 3 and len(script) == 34 and script[0] == 0x20 and script[33] == 0xAC:
                # ``<xonly key> OP_CHECKSIG`` on a one-element stack: no OP_SUCCESS, no limit
                # that can be reached, and a budget of at least the 50 one signature uses.
                sig = witness[0]
                if len(sig) > MAX_SCRIPT_ELEMENT_SIZE:
                    raise ScriptFailure(ScriptError.PUSH_SIZE)
                if not sig:
                    raise ScriptFailure(ScriptError.EVAL_FALSE)
                checker.check_schnorr(sig, script[1:33], SIGVERSION_TAPSCRIPT, execdata)
                return
            execdata.validation_weight_left = (
                _witness_stack_size(witness) + VALIDATION_WEIGHT_OFFSET
            )
            _execute_witness_script(
                list(witness[: n - 2]), script, flags, SIGVERSION_TAPSCRIPT, checker, execdata
            )
            return
        if flags & _DISCOURAGE_TAPROOT_VERSION:
            raise ScriptFailure(ScriptError.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION)
        return
    if not is_p2sh and version == 1 and program == _PAY_TO_ANCHOR_PROGRAM:
        return  # pay-to-anchor: anyone can spend, and not discouraged
    if flags & _DISCOURAGE_WITNESS_PROGRAM:
        raise ScriptFailure(ScriptError.DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM)
    # Other versions and sizes stay spendable by anyone until a soft fork gives them meaning.


def _p2pkh_template(
    sig: bytes,
    pubkey: bytes,
    key_hash: bytes,
    flags: int,
    checker: BaseSignatureChecker,
    sigversion: int,
    witness: bool,
) -> None:
    """``OP_DUP OP_HASH160 <key_hash> OP_EQUALVERIFY OP_CHECKSIG`` run on the stack [sig, pubkey].

    The general interpreter gives the same result on that script (tests compare the two); this
    skips only the opcode dispatch. For P2WPKH (``witness``) it also applies the witness-script
    rules: element size limit before execution, clean stack and truthiness after.
    """
    if witness and (len(sig) > MAX_SCRIPT_ELEMENT_SIZE or len(pubkey) > MAX_SCRIPT_ELEMENT_SIZE):
        raise ScriptFailure(ScriptError.PUSH_SIZE)
    if hash160(pubkey) != key_hash:
        raise ScriptFailure(ScriptError.EQUALVERIFY)
    script_code = b"\x76\xa9\x14" + key_hash + b"\x88\xac"
    if sigversion == SIGVERSION_BASE:
        # The push of a signature of 25 bytes or more is longer than the script; whatever is
        # deleted, the rest is still whole opcodes without OP_CODESEPARATOR.
        if len(sig) < 25:
            script_code, found = find_and_delete(script_code, push_data(sig))
            if found and flags & _CONST_SCRIPTCODE:
                raise ScriptFailure(ScriptError.SIG_FINDANDDELETE)
        check_signature_encoding(sig, flags)
        check_pubkey_encoding(pubkey, flags, sigversion)
        ok = checker.check_ecdsa_plain(sig, pubkey, script_code)
    else:
        check_signature_encoding(sig, flags)
        check_pubkey_encoding(pubkey, flags, sigversion)
        ok = checker.check_ecdsa(sig, pubkey, script_code, sigversion)
    if not ok:
        if flags & _NULLFAIL and sig:
            raise ScriptFailure(ScriptError.SIG_NULLFAIL)
        raise ScriptFailure(ScriptError.EVAL_FALSE)


def _two_pushes(script_sig: bytes, minimal: bool) -> tuple[bytes, bytes] | None:
    """The two elements a scriptSig of exactly two valid pushes leaves, else None."""
    try:
        op1, first, pos = get_op(script_sig, 0)
        op2, second, pos = get_op(script_sig, pos)
    except BadScript:
        return None
    if pos != len(script_sig) or first is None or second is None:
        return None
    if len(first) > MAX_SCRIPT_ELEMENT_SIZE or len(second) > MAX_SCRIPT_ELEMENT_SIZE:
        return None
    if minimal and not (check_minimal_push(first, op1) and check_minimal_push(second, op2)):
        return None
    return first, second


def _data_pushes(script: bytes, minimal: bool, limit: int) -> list[bytes] | None:
    """The elements a scriptSig of data pushes leaves, or None when the general path might do
    anything else with it.

    None for any other opcode (small-integer opcodes included), a truncated push, an element over
    the size limit, a non-minimal push under MINIMALDATA, more than ``limit`` elements or a script
    over the size limit: the caller then leaves the spend to the general interpreter.
    """
    end = len(script)
    if end > MAX_SCRIPT_SIZE:
        return None
    out: list[bytes] = []
    pos = 0
    while pos < end:
        op = script[pos]
        if op < 0x4C:
            start = pos + 1
            stop = start + op
            if minimal and op == 1 and stop <= end:
                b = script[start]
                if 1 <= b <= 16 or b == 0x81:
                    return None
        elif op == 0x4C:
            if pos + 2 > end:
                return None
            start = pos + 2
            stop = start + script[pos + 1]
            if minimal and stop - start < 0x4C:
                return None
        elif op == 0x4D:
            if pos + 3 > end:
                return None
            start = pos + 3
            stop = start + (script[pos + 1] | script[pos + 2] << 8)
            if stop - start > MAX_SCRIPT_ELEMENT_SIZE or (minimal and stop - start <= 0xFF):
                return None
        else:
            return None
        if stop > end or len(out) == limit:
            return None
        out.append(script[start:stop])
        pos = stop
    return out


def _multisig_keys(redeem: bytes) -> tuple[int, list[bytes]] | None:
    """(m, keys) for ``OP_m <33- or 65-byte key>... OP_n OP_CHECKMULTISIG`` with 1 <= m <= n <= 16,
    else None."""
    size = len(redeem)
    if size < 37 or redeem[-1] != 0xAE:
        return None
    m = redeem[0] - 0x50
    n = redeem[-2] - 0x50
    if not 1 <= m <= n <= 16:
        return None
    keys: list[bytes] = []
    pos = 1
    end = size - 2
    while pos < end:
        length = redeem[pos]
        if length != 33 and length != 65:
            return None
        pos += 1
        keys.append(redeem[pos : pos + length])
        pos += length
    if pos != end or len(keys) != n:
        return None
    return m, keys


def _p2sh_multisig(
    script_sig: bytes,
    script_pubkey: bytes,
    flags: int,
    checker: BaseSignatureChecker,
) -> bool:
    """P2SH spends of bare m-of-n CHECKMULTISIG by ``<dummy> <sig>... <redeem>``, without the
    general interpreter; False (nothing checked) when the spend does not fit that template.

    What the general path does on that input, in its order: the scriptSig only pushes (so
    SIGPUSHONLY, sizes and MINIMALDATA are settled by ``_data_pushes``), the scriptPubKey
    compares the redeem script's hash, then CHECKMULTISIG matches signatures to keys from the
    last of each, stops early once too few keys remain, and applies NULLFAIL, then NULLDUMMY. The
    stack is clean by construction (exactly m + 1 elements below the redeem script), no limit on
    opcodes or stack size can be reached, and the redeem script is not a witness program.
    """
    items = _data_pushes(script_sig, bool(flags & _MINIMALDATA), 18)
    if items is None or len(items) < 2:
        return False
    redeem = items[-1]
    parsed = _multisig_keys(redeem)
    if parsed is None:
        return False
    m, keys = parsed
    if len(items) != m + 2:
        return False
    # FindAndDelete of each signature's push from the script code: in this template a push can
    # only match at a key, so a signature equal to a key is left to the general path.
    for k in range(1, m + 1):
        sig = items[k]
        if (len(sig) == 33 or len(sig) == 65) and sig in keys:
            return False
    if hash160(redeem) != script_pubkey[2:22]:
        raise ScriptFailure(ScriptError.EVAL_FALSE)
    n_sigs = m
    n_keys = len(keys)
    isig = m  # items[1 .. m] are the signatures; the last is tried first
    ikey = n_keys - 1
    success = True
    check_ecdsa = checker.check_ecdsa_plain
    while n_sigs:
        sig = items[isig]
        pubkey = keys[ikey]
        check_signature_encoding(sig, flags)
        check_pubkey_encoding(pubkey, flags, SIGVERSION_BASE)
        if check_ecdsa(sig, pubkey, redeem):
            isig -= 1
            n_sigs -= 1
        ikey -= 1
        n_keys -= 1
        if n_sigs > n_keys:
            success = False
            break
    if not success and flags & _NULLFAIL and any(items[1 : m + 1]):
        raise ScriptFailure(ScriptError.SIG_NULLFAIL)
    if flags & _NULLDUMMY and items[0]:
        raise ScriptFailure(ScriptError.SIG_NULLDUMMY)
    if not success:
        raise ScriptFailure(ScriptError.EVAL_FALSE)
    if flags & _CLEANSTACK and not flags & _WITNESS:
        raise ValueError("CLEANSTACK requires P2SH and WITNESS")
    return True


def _is_p2pkh(script: bytes) -> bool:
    return (
        len(script) == 25
        and script[0] == 0x76
        and script[1] == 0xA9
        and script[2] == 0x14
        and script[23] == 0x88
        and script[24] == 0xAC
    )


def _verify_fast(
    script_sig: bytes,
    script_pubkey: bytes,
    witness: Sequence[bytes],
    flags: int,
    checker: BaseSignatureChecker,
) -> bool:
    """Standard templates without the general interpreter; False when the template does not fit.

    Covers native witness programs with an empty scriptSig (evaluating the scriptPubKey then only
    pushes the version and the program) and P2PKH spent by two pushes.
    """
    if not flags & _P2SH:
        return False
    if not script_sig and flags & _WITNESS:
        n = len(script_pubkey)
        # witness_program(), for the two common shapes first
        if n == 34 and script_pubkey[0] == 0x51 and script_pubkey[1] == 0x20:
            version = 1
            program = script_pubkey[2:]
        elif n == 22 and script_pubkey[0] == 0 and script_pubkey[1] == 0x14:
            version = 0
            program = script_pubkey[2:]
        else:
            wp = witness_program(script_pubkey)
            if wp is None:
                return False
            version, program = wp
        if not cast_to_bool(program):
            raise ScriptFailure(ScriptError.EVAL_FALSE)
        _verify_witness_program(witness, version, program, flags, checker, False)
        return True
    if _is_p2pkh(script_pubkey) and not witness:
        pushes = _two_pushes(script_sig, bool(flags & _MINIMALDATA))
        if pushes is None:
            return False
        _p2pkh_template(
            pushes[0], pushes[1], script_pubkey[3:23], flags, checker, SIGVERSION_BASE, False
        )
        if flags & _CLEANSTACK and not flags & _WITNESS:
            raise ValueError("CLEANSTACK requires P2SH and WITNESS")
        return True
    if (
        len(script_pubkey) == 23
        and script_pubkey[0] == 0xA9
        and script_pubkey[1] == 0x14
        and script_pubkey[22] == 0x87
        and not witness
    ):
        return _p2sh_multisig(script_sig, script_pubkey, flags, checker)
    return False


def _verify(
    script_sig: bytes,
    script_pubkey: bytes,
    witness: Sequence[bytes],
    flags: int,
    checker: BaseSignatureChecker,
    fast: bool = True,
) -> None:
    if flags & _SIGPUSHONLY and not is_push_only(script_sig):
        raise ScriptFailure(ScriptError.SIG_PUSHONLY)
    stack: list[bytes] = []
    eval_script(stack, script_sig, flags, checker, SIGVERSION_BASE)
    stack_copy = list(stack) if flags & _P2SH else []
    eval_script(stack, script_pubkey, flags, checker, SIGVERSION_BASE)
    if not stack or not cast_to_bool(stack[-1]):
        raise ScriptFailure(ScriptError.EVAL_FALSE)

    had_witness = False
    if flags & _WITNESS:
        wp = witness_program(script_pubkey)
        if wp is not None:
            had_witness = True
            if script_sig:
                raise ScriptFailure(ScriptError.WITNESS_MALLEATED)
            _verify_witness_program(witness, wp[0], wp[1], flags, checker, False, fast)
            del stack[1:]

    if flags & _P2SH and is_p2sh(script_pubkey):
        if not is_push_only(script_sig):
            raise ScriptFailure(ScriptError.SIG_PUSHONLY)
        stack = stack_copy
        redeem = stack.pop()
        eval_script(stack, redeem, flags, checker, SIGVERSION_BASE)
        if not stack or not cast_to_bool(stack[-1]):
            raise ScriptFailure(ScriptError.EVAL_FALSE)
        if flags & _WITNESS:
            wp = witness_program(redeem)
            if wp is not None:
                had_witness = True
                if script_sig != push_data(redeem):
                    raise ScriptFailure(ScriptError.WITNESS_MALLEATED_P2SH)
                _verify_witness_program(witness, wp[0], wp[1], flags, checker, True, fast)
                del stack[1:]

    if flags & _CLEANSTACK:
        if not flags & _P2SH or not flags & _WITNESS:
            raise ValueError("CLEANSTACK requires P2SH and WITNESS")
        if len(stack) != 1:
            raise ScriptFailure(ScriptError.CLEANSTACK)
    if flags & _WITNESS:
        if not flags & _P2SH:
            raise ValueError("WITNESS requires P2SH")
        if not had_witness and witness:
            raise ScriptFailure(ScriptError.WITNESS_UNEXPECTED)


def verify_script_general(
    script_sig: bytes,
    script_pubkey: bytes,
    witness: Sequence[bytes],
    flags: int,
    checker: BaseSignatureChecker,
) -> ScriptError:
    """``verify_script`` without the template fast paths: the reference the tests compare with."""
    flags = int(flags)
    try:
        _verify(script_sig, script_pubkey, witness, flags, checker, False)
    except ScriptFailure as failure:
        return failure.error
    return ScriptError.OK


def verify_script(
    script_sig: bytes,
    script_pubkey: bytes,
    witness: Sequence[bytes],
    flags: int,
    checker: BaseSignatureChecker,
) -> ScriptError:
    """Core's VerifyScript: ``ScriptError.OK`` when the spend is valid, else why it is not.

    Raises ``ValueError`` for flag combinations Core forbids (CLEANSTACK without P2SH and
    WITNESS, WITNESS without P2SH).
    """
    flags = int(flags)
    try:
        if not _verify_fast(script_sig, script_pubkey, witness, flags, checker):
            _verify(script_sig, script_pubkey, witness, flags, checker)
    except ScriptFailure as failure:
        return failure.error
    return ScriptError.OK


def verify_input(
    tx: Tx,
    index: int,
    spent_outputs: Sequence[TxOut],
    flags: int,
    txdata: PrecomputedTxData | None = None,
) -> ScriptError:
    """Verify input ``index`` of ``tx`` given every output it spends (in input order)."""
    if txdata is None:
        txdata = PrecomputedTxData(tx, spent_outputs)
    spent = spent_outputs[index]
    txin = tx.inputs[index]
    checker = TransactionChecker(tx, index, spent.value, txdata)
    # verify_script, inlined: this runs once per input of every block.
    flags = int(flags)
    script_sig = txin.script_sig
    script_pubkey = spent.script_pubkey
    witness = txin.witness
    try:
        if not _verify_fast(script_sig, script_pubkey, witness, flags, checker):
            _verify(script_sig, script_pubkey, witness, flags, checker)
    except ScriptFailure as failure:
        return failure.error
    return ScriptError.OK
