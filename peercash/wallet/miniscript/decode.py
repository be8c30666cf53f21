"""Script → miniscript (what Core's ``FromScript`` does), for P2WSH and tapscript.

Miniscript scripts are decided by their last opcode, so the decoder reads backwards. A
"single" expression is one fragment with its wrappers; a sequence of them is an ``and_v``
chain, which only forms where a branch starts (script start, ``IF``/``NOTIF``/``ELSE``,
``TOALTSTACK``, ``SWAP``): the left operands of ``and_b``/``or_*``/``andor``/``thresh`` are single
expressions, which is why a decoded tree can group ``and_v`` differently from the text it was
written from while giving the same script. Pushes must be minimal; ``VERIFY`` after an opcode
that has a VERIFY form is rejected (miniscript never writes it).
"""

from __future__ import annotations

from collections.abc import Mapping

from coincurve import PublicKey

from ...consensus.params import MAIN, NetworkParams
from ...consensus.script.interpreter import check_minimal_push
from ...consensus.script.opcodes import Op
from ...consensus.script.script import BadScript, iter_ops, push_int
from ..descriptor.keys import ConstKey, KeyExpression
from .node import HASH_FRAGMENTS, MsContext, Node, NodeBuilder

__all__ = ["decode_script"]

_Token = tuple[int, bytes | None]
_BOUNDARY = frozenset((Op.OP_IF, Op.OP_NOTIF, Op.OP_ELSE, Op.OP_TOALTSTACK, Op.OP_SWAP))
_VERIFY_FORMS: dict[int, int] = {
    Op.OP_CHECKSIGVERIFY: Op.OP_CHECKSIG,
    Op.OP_CHECKMULTISIGVERIFY: Op.OP_CHECKMULTISIG,
    Op.OP_EQUALVERIFY: Op.OP_EQUAL,
    Op.OP_NUMEQUALVERIFY: Op.OP_NUMEQUAL,
}
_HASH_OPS: dict[int, str] = {
    Op.OP_SHA256: "sha256",
    Op.OP_HASH256: "hash256",
    Op.OP_RIPEMD160: "ripemd160",
    Op.OP_HASH160: "hash160",
}


class _Fail(Exception):
    pass


class _Decoder(NodeBuilder):
    def __init__(
        self,
        tokens: list[_Token],
        ctx: MsContext,
        params: NetworkParams,
        known: Mapping[bytes, KeyExpression],
    ) -> None:
        self.tokens = tokens
        self.ctx = ctx
        self.params = params
        self.known = known

    @property
    def tap(self) -> bool:
        return self.ctx is MsContext.TAPSCRIPT

    def tok(self, i: int) -> _Token:
        if i < 0:
            raise _Fail
        return self.tokens[i]

    def op_is(self, i: int, opcode: int) -> bool:
        return i >= 0 and self.tokens[i][1] is None and self.tokens[i][0] == opcode

    def expect(self, i: int, opcode: int) -> None:
        if not self.op_is(i, opcode):
            raise _Fail

    def number(self, i: int) -> int:
        opcode, data = self.tok(i)
        if data is None:
            if Op.OP_1 <= opcode <= Op.OP_16:
                return opcode - Op.OP_1 + 1
            raise _Fail
        if not data:
            return 0
        value = int.from_bytes(data, "little")
        if len(data) > 4 or data[-1] & 0x80 or push_int(value)[1:] != data:
            raise _Fail
        return value

    def key(self, data: bytes) -> KeyExpression:
        if data in self.known:
            return self.known[data]
        full = b"\x02" + data if self.tap else data
        if len(data) != (32 if self.tap else 33):
            raise _Fail
        try:
            PublicKey(full)
        except (ValueError, TypeError):
            raise _Fail from None
        return ConstKey(full, self.tap, self.params)

    def is_key_push(self, i: int) -> bool:
        data = self.tokens[i][1] if i >= 0 else None
        return data is not None and len(data) == (32 if self.tap else 33)

    # -- expressions -------------------------------------------------------------------------

    def bkv(self, end: int) -> tuple[Node, int]:
        """An expression ending before token ``end``, with any and_v chain before it."""
        node, start = self.single(end)
        if start > 0 and not (
            self.tokens[start - 1][1] is None and self.tokens[start - 1][0] in _BOUNDARY
        ):
            left, start = self.bkv(start)
            node = self.node("and_v", left, node)
        return node, start

    def w(self, end: int) -> tuple[Node, int]:
        """A W expression (``a:X`` or ``s:X``) ending before ``end``."""
        if self.op_is(end - 1, Op.OP_FROMALTSTACK):
            inner, start = self.bkv(end - 1)
            self.expect(start - 1, Op.OP_TOALTSTACK)
            return self.node("a", inner), start - 1
        inner, start = self.bkv(end)
        self.expect(start - 1, Op.OP_SWAP)
        return self.node("s", inner), start - 1

    def single(self, end: int, last: int | None = None) -> tuple[Node, int]:
        i = end - 1
        opcode, data = self.tok(i)
        if last is not None:
            opcode, data = last, None
        if data is not None:
            if not data and last is None:
                return self.node("0"), i
            if self.is_key_push(i):
                return self.node("pk_k", keys=(self.key(data),)), i
            raise _Fail
        if opcode == Op.OP_1:
            return self.node("1"), i
        if opcode in _VERIFY_FORMS:
            if opcode == Op.OP_EQUALVERIFY and self._is_pk_h(i):
                return self._pk_h(i)
            inner, start = self.single(end, _VERIFY_FORMS[opcode])
            return self.node("v", inner), start
        if opcode == Op.OP_VERIFY:
            prev = self.tok(i - 1)
            if prev[1] is None and prev[0] in _VERIFY_FORMS.values():
                raise _Fail  # non-minimal: should have been the VERIFY form
            inner, start = self.single(i)
            return self.node("v", inner), start
        if opcode == Op.OP_CHECKSIG:
            inner, start = self.single(i)
            return self.node("c", inner), start
        if opcode in (Op.OP_CHECKSEQUENCEVERIFY, Op.OP_CHECKLOCKTIMEVERIFY):
            k = self.number(i - 1)
            name = "older" if opcode == Op.OP_CHECKSEQUENCEVERIFY else "after"
            return self.node(name, k=k), i - 1
        if opcode == Op.OP_CHECKMULTISIG and not self.tap:
            n = self.number(i - 1)
            keys = []
            for j in range(i - 1 - n, i - 1):
                if not self.is_key_push(j):
                    raise _Fail
                keys.append(self.key(self.tokens[j][1] or b""))
            k = self.number(i - 2 - n)
            return self.node("multi", keys=tuple(keys), k=k), i - 2 - n
        if opcode == Op.OP_NUMEQUAL and self.tap:
            return self._multi_a(i)
        if opcode == Op.OP_EQUAL:
            return self._equal(i)
        if opcode == Op.OP_0NOTEQUAL:
            inner, start = self.single(i)
            return self.node("n", inner), start
        if opcode == Op.OP_FROMALTSTACK:
            raise _Fail  # a W expression where a B/V/K one is needed
        if opcode in (Op.OP_BOOLAND, Op.OP_BOOLOR):
            right, mid = self.w(i)
            left, start = self.single(mid)
            return self.node("and_b" if opcode == Op.OP_BOOLAND else "or_b", left, right), start
        if opcode == Op.OP_ENDIF:
            return self._endif(i)
        raise _Fail

    def _is_pk_h(self, i: int) -> bool:
        data = self.tokens[i - 1][1] if i >= 1 else None
        return (
            data is not None
            and len(data) == 20
            and self.op_is(i - 2, Op.OP_HASH160)
            and self.op_is(i - 3, Op.OP_DUP)
        )

    def _pk_h(self, i: int) -> tuple[Node, int]:
        digest = self.tokens[i - 1][1] or b""
        if digest in self.known:
            return self.node("pk_h", keys=(self.known[digest],)), i - 3
        return self.node("pk_h", data=digest), i - 3

    def _multi_a(self, i: int) -> tuple[Node, int]:
        k = self.number(i - 1)
        keys: list[KeyExpression] = []
        j = i - 2
        while self.op_is(j, Op.OP_CHECKSIGADD):
            if not self.is_key_push(j - 1):
                raise _Fail
            keys.append(self.key(self.tokens[j - 1][1] or b""))
            j -= 2
        self.expect(j, Op.OP_CHECKSIG)
        if not self.is_key_push(j - 1):
            raise _Fail
        keys.append(self.key(self.tokens[j - 1][1] or b""))
        keys.reverse()
        return self.node("multi_a", keys=tuple(keys), k=k), j - 1

    def _equal(self, i: int) -> tuple[Node, int]:
        _, prev_data = self.tok(i - 1)
        hash_op = self.tok(i - 2)
        if (
            prev_data is not None
            and hash_op[1] is None
            and hash_op[0] in _HASH_OPS
            and len(prev_data) == HASH_FRAGMENTS[_HASH_OPS[hash_op[0]]]
        ):
            self.expect(i - 3, Op.OP_EQUALVERIFY)
            if self.number(i - 4) != 32:
                raise _Fail
            self.expect(i - 5, Op.OP_SIZE)
            return self.node(_HASH_OPS[hash_op[0]], data=prev_data), i - 5
        k = self.number(i - 1)
        subs: list[Node] = []
        end = i - 1
        while self.op_is(end - 1, Op.OP_ADD):
            sub, end = self.w(end - 1)
            subs.append(sub)
        first, start = self.single(end)
        subs.append(first)
        subs.reverse()
        return self.node("thresh", *subs, k=k), start

    def _endif(self, i: int) -> tuple[Node, int]:
        second, start = self.bkv(i)
        opener = self.tok(start - 1)
        if opener[1] is not None:
            raise _Fail
        if opener[0] == Op.OP_IF:
            if self.op_is(start - 2, Op.OP_DUP):
                return self.node("d", second), start - 2
            if self.op_is(start - 2, Op.OP_0NOTEQUAL) and self.op_is(start - 3, Op.OP_SIZE):
                return self.node("j", second), start - 3
            raise _Fail
        if opener[0] == Op.OP_NOTIF:
            if self.op_is(start - 2, Op.OP_IFDUP):
                left, begin = self.single(start - 2)
                return self.node("or_d", left, second), begin
            left, begin = self.single(start - 1)
            return self.node("or_c", left, second), begin
        if opener[0] == Op.OP_ELSE:
            first, mid = self.bkv(start - 1)
            if self.op_is(mid - 1, Op.OP_IF):
                return self.node("or_i", first, second), mid - 1
            if self.op_is(mid - 1, Op.OP_NOTIF):
                cond, begin = self.single(mid - 1)
                return self.node("andor", cond, second, first), begin
        raise _Fail


def decode_script(
    script: bytes,
    ctx: MsContext,
    params: NetworkParams = MAIN,
    known_keys: Mapping[bytes, KeyExpression] | None = None,
) -> Node | None:
    """The miniscript whose script is ``script``, or None when there is none (or it is not
    valid at the top level). ``known_keys`` maps key bytes or key hashes (as they appear in the
    script) to key expressions; other keys become hex keys, and unknown ``pk_h`` hashes stay
    hashes (that tree has a script but no text)."""
    tokens: list[_Token] = []
    try:
        for opcode, data, _ in iter_ops(script):
            if data is not None and not check_minimal_push(data, opcode):
                return None
            if opcode == Op.OP_0:
                data = b""
            tokens.append((opcode, data))
    except BadScript:
        return None
    if not tokens:
        return None
    decoder = _Decoder(tokens, ctx, params, known_keys or {})
    try:
        node, start = decoder.bkv(len(tokens))
    except (_Fail, RecursionError):
        return None
    if start != 0 or not node.is_valid_top_level() or node.script_size != len(script):
        return None
    return node
