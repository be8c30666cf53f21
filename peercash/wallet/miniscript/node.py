"""A miniscript expression tree: its type, resource use, script and text.

A :class:`Node` is immutable and knows its context (P2WSH or tapscript), because the context
changes key sizes, which fragments exist (``multi`` vs ``multi_a``), one typing rule (``d:`` is
``u`` under tapscript, where MINIMALIF is consensus) and the resource limits.

Sizes follow BIP379's accounting: ``ops`` counts non-push opcodes on the worst satisfying path
(P2WSH's 201 limit), ``stack_size`` the witness elements a satisfaction needs (excluding the
script), ``max_satisfaction_size`` their serialized bytes (each with its length prefix, as fee
estimation wants it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ...consensus.hashing import hash160
from ...consensus.script.opcodes import Op
from ...consensus.script.script import push_data, push_int
from ..descriptor.errors import DescriptorError
from ..descriptor.keys import KeyExpression
from .types import Type, combine_type, leaf_type, sanitize, wrapper_type

__all__ = [
    "MAX_OPS_PER_SCRIPT",
    "MAX_STANDARD_P2WSH_SCRIPT_SIZE",
    "MAX_STANDARD_P2WSH_STACK_ITEMS",
    "MAX_TAPSCRIPT_SCRIPT_SIZE",
    "MsContext",
    "Node",
]

MAX_OPS_PER_SCRIPT = 201
"""Consensus (P2WSH): non-push opcodes a script may execute."""
MAX_STANDARD_P2WSH_SCRIPT_SIZE = 3600
"""Policy: the largest standard witness script."""
MAX_STANDARD_P2WSH_STACK_ITEMS = 100
"""Policy: witness elements a standard P2WSH spend may carry (besides the script)."""
MAX_STACK_SIZE = 1000
"""Consensus: stack plus altstack elements."""
MAX_TAPSCRIPT_SCRIPT_SIZE = 327_860
"""Core's bound for a tapscript leaf: what still fits a standard transaction with the largest
satisfaction (400,000 weight less 2,000 for the body and 70,135 for a maximal witness and control
block), less its own compact size."""

HASH_FRAGMENTS = {"sha256": 32, "hash256": 32, "ripemd160": 20, "hash160": 20}
WRAPPERS = frozenset("ascdvjn")
_COMBINATORS = frozenset(("and_v", "and_b", "or_b", "or_c", "or_d", "or_i", "andor", "thresh"))


_TEMPLATES: dict[str, tuple[int | str, ...]] = {
    "a": (Op.OP_TOALTSTACK, "x", Op.OP_FROMALTSTACK),
    "d": (Op.OP_DUP, Op.OP_IF, "x", Op.OP_ENDIF),
    "j": (Op.OP_SIZE, Op.OP_0NOTEQUAL, Op.OP_IF, "x", Op.OP_ENDIF),
    "n": ("x", Op.OP_0NOTEQUAL),
    "and_b": ("x", "y", Op.OP_BOOLAND),
    "or_b": ("x", "y", Op.OP_BOOLOR),
    "or_c": ("x", Op.OP_NOTIF, "y", Op.OP_ENDIF),
    "or_d": ("x", Op.OP_IFDUP, Op.OP_NOTIF, "y", Op.OP_ENDIF),
    "or_i": (Op.OP_IF, "x", Op.OP_ELSE, "y", Op.OP_ENDIF),
    "andor": ("x", Op.OP_NOTIF, "z", Op.OP_ELSE, "y", Op.OP_ENDIF),
}
"""The scripts of the fragments whose VERIFY form is a trailing OP_VERIFY: opcodes, and the
sub-expressions x, y, z in place."""


class MsContext(enum.Enum):
    """The script context of a miniscript (Core's ``MiniscriptContext``)."""

    P2WSH = "p2wsh"
    TAPSCRIPT = "tapscript"


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


_Pair = tuple[int | None, int | None]
"""(satisfaction, dissatisfaction) of a size measure; None where it does not exist."""


_Exec = tuple[int, int] | None
"""(netdiff, exec) of one execution path; None where the path does not exist."""
_PUSH: _Exec = (-1, 0)
_POP: _Exec = (1, 1)
"""An opcode that takes one element more than it leaves (IF, VERIFY, EQUAL, CHECKSIG, ADD…)."""
_NOP: _Exec = (0, 0)
"""An opcode that leaves the height as it was (hashes, 0NOTEQUAL, SWAP, TOALTSTACK, CSV)."""


def _seq(*parts: _Exec) -> _Exec:
    """Run ``parts`` one after another."""
    net, top = 0, 0
    for part in parts:
        if part is None:
            return None
        net_b, top_b = part
        net, top = net + net_b, max(top_b, net_b + top)
    return net, top


def _alt(a: _Exec, b: _Exec) -> _Exec:
    """Either path: the worst of both."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a[0], b[0]), max(a[1], b[1])


def _thresh_pairs(pairs: list[_Pair], k: int) -> _Pair:
    """Best-case combination over thresh's sub-expressions: k satisfied, the rest dissatisfied."""
    sats: list[int | None] = [0]
    for sat, dsat in pairs:
        nxt: list[int | None] = [_add(sats[0], dsat)]
        for j in range(1, len(sats)):
            nxt.append(_max(_add(sats[j], dsat), _add(sats[j - 1], sat)))
        nxt.append(_add(sats[-1], sat))
        sats = nxt
    return sats[k], sats[0]


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One miniscript fragment with its arguments.

    ``fragment`` is the fragment name (``pk_k``, ``and_v``…) or a wrapper letter (``a``…``n``);
    ``k`` the number argument (timelock, threshold); ``keys`` its key expressions; ``data`` a hash
    (or, for a ``pk_h`` decoded from a script whose key is unknown, the key hash).
    """

    fragment: str
    ctx: MsContext
    subs: tuple[Node, ...] = ()
    keys: tuple[KeyExpression, ...] = ()
    k: int = 0
    data: bytes = b""
    type: Type = field(init=False)
    _ops: tuple[int, int | None, int | None] = field(init=False, repr=False)
    _stack: _Pair = field(init=False, repr=False)
    _wit: _Pair = field(init=False, repr=False)
    _exec: tuple[_Exec, _Exec] = field(init=False, repr=False)
    script_size: int = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "type", self._compute_type())
        set_(self, "_ops", self._compute_ops())
        set_(self, "_stack", self._compute_stack())
        set_(self, "_wit", self._compute_wit())
        set_(self, "_exec", self._compute_exec())
        set_(self, "script_size", self._compute_size())

    # -- context ---------------------------------------------------------------------------

    @property
    def is_tapscript(self) -> bool:
        return self.ctx is MsContext.TAPSCRIPT

    def _key_bytes(self, key: KeyExpression, pos: int) -> bytes:
        pub = key.pubkey(pos)
        return pub[1:] if self.is_tapscript else pub

    # -- type ------------------------------------------------------------------------------

    def _compute_type(self) -> Type:
        f = self.fragment
        if f in WRAPPERS:
            return sanitize(wrapper_type(f, self.subs[0].type, self.is_tapscript))
        if f in _COMBINATORS:
            subs = [s.type for s in self.subs]
            if f == "thresh" and not 1 <= self.k <= len(subs):
                return Type(0)
            return sanitize(combine_type(f, subs, self.k))
        if f in ("older", "after") and not 1 <= self.k < 0x8000_0000:
            return Type(0)
        if f in ("multi", "multi_a") and not 1 <= self.k <= len(self.keys):
            return Type(0)
        return sanitize(leaf_type(f, self.k))

    # -- resource use ------------------------------------------------------------------------

    def _compute_size(self) -> int:
        """Script bytes, from the subs' sizes (what :meth:`script` writes; the tests check it)."""
        f, subs = self.fragment, self.subs
        key = 1 + (32 if self.is_tapscript else 33)
        if f in ("0", "1"):
            return 1
        if f == "pk_k":
            return key
        if f == "pk_h":
            return 24  # DUP HASH160 <20 bytes> EQUALVERIFY
        if f in ("older", "after"):
            return len(push_int(self.k)) + 1
        if f in HASH_FRAGMENTS:
            return 7 + HASH_FRAGMENTS[f]  # SIZE <32> EQUALVERIFY op <hash> EQUAL
        if f == "multi":
            return len(push_int(self.k)) + key * len(self.keys) + len(push_int(len(self.keys))) + 1
        if f == "multi_a":
            return (key + 1) * len(self.keys) + len(push_int(self.k)) + 1
        total = sum(sub.script_size for sub in subs)
        if f == "thresh":
            return total + len(subs) - 1 + len(push_int(self.k)) + 1
        if f == "v":
            return total + (1 if subs[0].type << "x" else 0)
        if f in _TEMPLATES:
            return total + sum(not isinstance(item, str) for item in _TEMPLATES[f])
        return total + {"s": 1, "c": 1, "and_v": 0}[f]

    def _compute_ops(self) -> tuple[int, int | None, int | None]:
        """(opcodes in the script, extra executed on the worst satisfaction, … dissatisfaction)."""
        f, subs = self.fragment, self.subs
        if f in ("pk_k", "multi_a") or f in ("0", "1"):
            if f == "multi_a":
                return len(self.keys) + 1, 0, 0
            return 0, (None if f == "0" else 0), (None if f == "1" else 0)
        if f == "pk_h":
            return 3, 0, 0
        if f in ("older", "after"):
            return 1, 0, None
        if f in HASH_FRAGMENTS:
            return 4, 0, None
        if f == "multi":
            return 1, len(self.keys), len(self.keys)
        if f == "thresh":
            count = sum(s._ops[0] + 1 for s in subs)
            sat, dsat = _thresh_pairs([(s._ops[1], s._ops[2]) for s in subs], self.k)
            return count, sat, dsat
        if f in WRAPPERS:
            c, sat, dsat = subs[0]._ops
            if f in "scn":
                return c + 1, sat, dsat
            if f == "a":
                return c + 2, sat, dsat
            if f == "d":
                return c + 3, sat, 0
            if f == "j":
                return c + 4, sat, 0
            return c + (1 if subs[0].type << "x" else 0), sat, None  # else merged: *VERIFY
        x = subs[0]._ops
        y = subs[1]._ops
        if f == "and_v":
            return x[0] + y[0], _add(x[1], y[1]), None
        if f == "and_b":
            return 1 + x[0] + y[0], _add(x[1], y[1]), _add(x[2], y[2])
        if f == "or_b":
            sat = _max(_add(x[1], y[2]), _add(x[2], y[1]))
            return 1 + x[0] + y[0], sat, _add(x[2], y[2])
        if f == "or_d":
            return 3 + x[0] + y[0], _max(x[1], _add(y[1], x[2])), _add(y[2], x[2])
        if f == "or_c":
            return 2 + x[0] + y[0], _max(x[1], _add(y[1], x[2])), None
        if f == "or_i":
            return 3 + x[0] + y[0], _max(x[1], y[1]), _max(x[2], y[2])
        z = subs[2]._ops  # andor
        sat = _max(_add(y[1], x[1]), _add(x[2], z[1]))
        return 3 + x[0] + y[0] + z[0], sat, _add(x[2], z[2])

    def _compute_stack(self) -> _Pair:
        """Witness elements of the largest (satisfaction, dissatisfaction)."""
        f, subs = self.fragment, self.subs
        if f == "0":
            return None, 0
        if f in ("1", "older", "after"):
            return 0, None
        if f == "pk_k":
            return 1, 1
        if f == "pk_h":
            return 2, 2
        if f in HASH_FRAGMENTS:
            return 1, None
        if f == "multi":
            return self.k + 1, self.k + 1
        if f == "multi_a":
            return len(self.keys), len(self.keys)
        return self._combine_pairs([s._stack for s in subs], 1, 1)

    def _compute_wit(self) -> _Pair:
        """Serialized witness bytes of the largest (satisfaction, dissatisfaction)."""
        f, subs = self.fragment, self.subs
        sig = 1 + 65 if self.is_tapscript else 1 + 72
        pub = 1 + 32 if self.is_tapscript else 1 + 33
        if f == "0":
            return None, 0
        if f in ("1", "older", "after"):
            return 0, None
        if f == "pk_k":
            return sig, 1
        if f == "pk_h":
            return sig + pub, 1 + pub
        if f in HASH_FRAGMENTS:
            return 1 + 32, None
        if f == "multi":
            return self.k * sig + 1, self.k + 1
        if f == "multi_a":
            return self.k * sig + len(self.keys) - self.k, len(self.keys)
        return self._combine_pairs([s._wit for s in subs], 2, 1)

    def _combine_pairs(self, p: list[_Pair], one: int, zero: int) -> _Pair:
        """The thresh, wrapper and and/or/andor rules shared by stack counts and witness bytes;
        ``one``/``zero`` are the cost of pushing 1 or 0 (one element each, or 2 and 1 bytes)."""
        f = self.fragment
        if f == "thresh":
            return _thresh_pairs(p, self.k)
        if f in WRAPPERS:
            sat, dsat = p[0]
            if f in "ansc":
                return sat, dsat
            if f == "d":
                return _add(sat, one), zero
            if f == "v":
                return sat, None
            return sat, zero  # j
        (xs, xd), (ys, yd) = p[0], p[1]
        if f == "and_v":
            return _add(xs, ys), None
        if f == "and_b":
            return _add(xs, ys), _add(xd, yd)
        if f == "or_b":
            return _max(_add(xd, ys), _add(xs, yd)), _add(xd, yd)
        if f == "or_c":
            return _max(xs, _add(xd, ys)), None
        if f == "or_d":
            return _max(xs, _add(xd, ys)), _add(xd, yd)
        if f == "or_i":
            return _max(_add(xs, one), _add(ys, zero)), _max(_add(xd, one), _add(yd, zero))
        zs, zd = p[2]  # andor
        return _max(_add(xs, ys), _add(xd, zs)), _add(xd, zd)

    def _compute_exec(self) -> tuple[_Exec, _Exec]:
        """(satisfaction, dissatisfaction) as (netdiff, exec): how much higher the stack (with
        the altstack) is at the start, witness included, than at the end, and how much higher
        than the end it gets while running. Sequences compose with :func:`_seq`, choices with
        :func:`_alt`."""
        f, subs = self.fragment, self.subs
        if f == "0":
            return None, _PUSH
        if f == "1":
            return _PUSH, None
        if f == "pk_k":
            return _PUSH, _PUSH
        if f == "pk_h":
            pkh = _seq(_PUSH, _NOP, _PUSH, (2, 2))  # DUP HASH160 <h> EQUALVERIFY
            return pkh, pkh
        if f in ("older", "after"):
            return _seq(_PUSH, _NOP), None
        if f in HASH_FRAGMENTS:
            # SIZE 32 EQUALVERIFY H <h> EQUAL; the (malleable) dissatisfaction is not counted.
            return _seq(_PUSH, _PUSH, (2, 2), _NOP, _PUSH, _POP), None
        if f == "multi":
            n, k = len(self.keys), self.k
            info = _seq(*([_PUSH] * (n + 2)), (n + k + 2, n + k + 2))
            return info, info
        if f == "multi_a":
            parts: list[_Exec] = [_PUSH, _POP]
            for _ in self.keys[1:]:
                parts += [_PUSH, (2, 2)]
            info = _seq(*parts, _PUSH, _POP)
            return info, info
        if f == "thresh":
            sats: list[_Exec] = [(0, 0)]
            for i, sub in enumerate(subs):
                add = _POP if i else (0, 0)
                sat, dsat = sub._exec
                nxt = [_seq(sats[0], dsat, add)]
                for j in range(1, len(sats)):
                    nxt.append(_seq(_alt(_seq(sats[j], dsat), _seq(sats[j - 1], sat)), add))
                nxt.append(_seq(sats[-1], sat, add))
                sats = nxt
            return _seq(sats[self.k], _PUSH, _POP), _seq(sats[0], _PUSH, _POP)
        xs, xd = subs[0]._exec
        if f in ("a", "s", "n"):
            return xs, xd
        if f == "c":
            return _seq(xs, _POP), _seq(xd, _POP)
        if f == "d":
            return _seq(_PUSH, _POP, xs), _seq(_PUSH, _POP)
        if f == "v":
            return _seq(xs, _POP), None
        if f == "j":
            return _seq(_PUSH, _NOP, _POP, xs), _seq(_PUSH, _NOP, _POP)
        ys, yd = subs[1]._exec
        if f == "and_v":
            return _seq(xs, ys), _seq(xs, yd)
        if f == "and_b":
            return _seq(xs, ys, _POP), _seq(xd, yd, _POP)
        if f == "or_b":
            return _seq(_alt(_seq(xd, ys), _seq(xs, yd)), _POP), _seq(xd, yd, _POP)
        if f == "or_c":
            return _alt(_seq(xs, _POP), _seq(xd, _POP, ys)), None
        if f == "or_d":
            sat = _alt(_seq(xs, _PUSH, _POP), _seq(xd, _NOP, _POP, ys))
            return sat, _seq(xd, _NOP, _POP, yd)
        if f == "or_i":
            return _alt(_seq(_POP, xs), _seq(_POP, ys)), _alt(_seq(_POP, xd), _seq(_POP, yd))
        zs, zd = subs[2]._exec  # andor: X NOTIF Z ELSE Y ENDIF
        return _alt(_seq(xs, _POP, ys), _seq(xd, _POP, zs)), _seq(xd, _POP, zd)

    # -- the public measures -------------------------------------------------------------------

    @property
    def ops(self) -> int | None:
        """Non-push opcodes executed by the worst satisfaction (None: not satisfiable)."""
        count, sat, _ = self._ops
        return None if sat is None else count + sat

    @property
    def stack_size(self) -> int | None:
        """Witness elements of the largest satisfaction (without the script)."""
        return self._stack[0]

    def max_satisfaction_size(self) -> int | None:
        """Bytes of the largest satisfaction's witness elements, each with its size prefix
        (Core's ``GetWitnessSize``; add the script and, for tapscript, the control block)."""
        return self._wit[0]

    def max_witness_size(self, control_block_size: int = 0) -> int | None:
        """Serialized bytes (= weight units) of the whole largest witness: element count,
        satisfaction, the script and, for a tapscript leaf, a control block of the given size."""
        wit, elems = self._wit[0], self._stack[0]
        if wit is None or elems is None:
            return None
        items = elems + 1 + (1 if control_block_size else 0)
        total = _compact_size(items) + wit + _compact_size(self.script_size) + self.script_size
        if control_block_size:
            total += _compact_size(control_block_size) + control_block_size
        return total

    @property
    def exec_stack_size(self) -> int | None:
        """The most elements (stack and altstack) the largest satisfaction reaches while the
        script runs (Core's ``GetExecStackSize``; tapscript's 1000-element limit)."""
        sat = self._exec[0]
        if sat is None:
            return None
        return sat[1] + (0 if self.type << "V" else 1)

    def max_satisfaction_elems(self) -> int | None:
        """Witness elements of the largest satisfaction (as ``stack_size``)."""
        return self._stack[0]

    def check_ops_limit(self) -> bool:
        if self.is_tapscript:
            return True
        ops = self.ops
        return ops is None or ops <= MAX_OPS_PER_SCRIPT

    def check_stack_size(self) -> bool:
        stack = self.stack_size
        if stack is None:
            return True
        if self.is_tapscript:
            exec_size = self.exec_stack_size
            return exec_size is None or exec_size <= MAX_STACK_SIZE
        return stack <= MAX_STANDARD_P2WSH_STACK_ITEMS

    @property
    def is_valid(self) -> bool:
        limit = MAX_TAPSCRIPT_SCRIPT_SIZE if self.is_tapscript else MAX_STANDARD_P2WSH_SCRIPT_SIZE
        return int(self.type) != 0 and self.script_size <= limit

    def is_valid_top_level(self) -> bool:
        return self.is_valid and self.type << "B"

    def is_non_malleable(self) -> bool:
        return self.type << "m"

    def needs_signature(self) -> bool:
        return self.type << "s"

    def check_timelocks_mix(self) -> bool:
        return self.type << "k"

    def check_duplicate_keys(self) -> bool:
        seen: set[str] = set()
        for node in self.walk():
            for key in node.keys:
                text = key.to_string()
                if text in seen:
                    return False
                seen.add(text)
        return True

    def valid_satisfactions(self) -> bool:
        return self.is_valid and self.check_ops_limit() and self.check_stack_size()

    def is_sane_subexpression(self) -> bool:
        return (
            self.valid_satisfactions()
            and self.is_non_malleable()
            and self.check_timelocks_mix()
            and self.check_duplicate_keys()
        )

    def is_sane(self) -> bool:
        """BIP379 sanity: valid at the top, non-malleable, needs a signature, no timelock mix, no
        repeated key, and within the resource limits."""
        return self.is_valid_top_level() and self.is_sane_subexpression() and self.needs_signature()

    def is_satisfiable(self) -> bool:
        """Whether any satisfaction exists at all (``0`` and its combinations have none)."""
        f = self.fragment
        if f == "0":
            return False
        if f in ("and_v", "and_b"):
            return all(s.is_satisfiable() for s in self.subs)
        if f in ("or_b", "or_c", "or_d", "or_i"):
            return any(s.is_satisfiable() for s in self.subs)
        if f == "andor":
            x, y, z = self.subs
            return (x.is_satisfiable() and y.is_satisfiable()) or z.is_satisfiable()
        if f == "thresh":
            return sum(s.is_satisfiable() for s in self.subs) >= self.k
        if self.subs:
            return self.subs[0].is_satisfiable()
        return True

    def find_insane_sub(self) -> Node | None:
        """The deepest sub-expression (leaves first) that is not sane as a sub-expression."""
        for sub in self.subs:
            found = sub.find_insane_sub()
            if found is not None:
                return found
        return None if self.is_sane_subexpression() else self

    def walk(self) -> Iterator[Node]:
        yield self
        for sub in self.subs:
            yield from sub.walk()

    def all_keys(self) -> Iterator[KeyExpression]:
        for node in self.walk():
            yield from node.keys

    # -- script ----------------------------------------------------------------------------------

    def script(self, pos: int = 0) -> bytes:
        """The script with every key derived at range position ``pos``."""
        return self._build(lambda key: self._key_bytes(key, pos), lambda key: self._hash(key, pos))

    def _hash(self, key: KeyExpression, pos: int) -> bytes:
        return hash160(self._key_bytes(key, pos))

    def _build(
        self,
        key_bytes: Callable[[KeyExpression], bytes],
        key_hash: Callable[[KeyExpression], bytes],
    ) -> bytes:
        parts: list[bytes] = []
        self._emit(parts, key_bytes, key_hash, verify=False)
        return b"".join(parts)

    def _emit(
        self,
        out: list[bytes],
        kb: Callable[[KeyExpression], bytes],
        kh: Callable[[KeyExpression], bytes],
        verify: bool,
    ) -> None:
        """Append this node's script; ``verify`` asks for the VERIFY form of the last opcode."""
        f, subs = self.fragment, self.subs

        def op(*codes: int) -> None:
            out.append(bytes(codes))

        def last(plain: int, verified: int) -> None:
            op(verified if verify else plain)

        if f == "0":
            op(Op.OP_0)
        elif f == "1":
            op(Op.OP_1)
        elif f == "pk_k":
            out.append(push_data(kb(self.keys[0])))
        elif f == "pk_h":
            digest = kh(self.keys[0]) if self.keys else self.data
            op(Op.OP_DUP, Op.OP_HASH160)
            out.append(push_data(digest))
            op(Op.OP_EQUALVERIFY)
        elif f in ("older", "after"):
            out.append(push_int(self.k))
            op(Op.OP_CHECKSEQUENCEVERIFY if f == "older" else Op.OP_CHECKLOCKTIMEVERIFY)
        elif f in HASH_FRAGMENTS:
            hash_op = {
                "sha256": Op.OP_SHA256,
                "hash256": Op.OP_HASH256,
                "ripemd160": Op.OP_RIPEMD160,
                "hash160": Op.OP_HASH160,
            }[f]
            op(Op.OP_SIZE)
            out.append(push_int(32))
            op(Op.OP_EQUALVERIFY, hash_op)
            out.append(push_data(self.data))
            last(Op.OP_EQUAL, Op.OP_EQUALVERIFY)
        elif f == "multi":
            out.append(push_int(self.k))
            for key in self.keys:
                out.append(push_data(kb(key)))
            out.append(push_int(len(self.keys)))
            last(Op.OP_CHECKMULTISIG, Op.OP_CHECKMULTISIGVERIFY)
        elif f == "multi_a":
            for i, key in enumerate(self.keys):
                out.append(push_data(kb(key)))
                op(Op.OP_CHECKSIG if i == 0 else Op.OP_CHECKSIGADD)
            out.append(push_int(self.k))
            last(Op.OP_NUMEQUAL, Op.OP_NUMEQUALVERIFY)
        elif f in _TEMPLATES:
            for item in _TEMPLATES[f]:
                if isinstance(item, str):
                    subs["xyz".index(item)]._emit(out, kb, kh, False)
                else:
                    op(item)
        elif f == "s":
            op(Op.OP_SWAP)
            subs[0]._emit(out, kb, kh, verify)
        elif f == "c":
            subs[0]._emit(out, kb, kh, False)
            last(Op.OP_CHECKSIG, Op.OP_CHECKSIGVERIFY)
        elif f == "v":
            sub = subs[0]
            # Without the x property the sub ends in an opcode with a VERIFY form, used instead.
            sub._emit(out, kb, kh, not sub.type << "x")
            if sub.type << "x":
                op(Op.OP_VERIFY)
        elif f == "and_v":
            subs[0]._emit(out, kb, kh, False)
            subs[1]._emit(out, kb, kh, verify)
        elif f == "thresh":
            for i, sub in enumerate(subs):
                sub._emit(out, kb, kh, False)
                if i:
                    op(Op.OP_ADD)
            out.append(push_int(self.k))
            last(Op.OP_EQUAL, Op.OP_EQUALVERIFY)
        else:  # pragma: no cover - the parser builds nothing else
            raise AssertionError(f)

    # -- satisfaction ----------------------------------------------------------------------------

    def satisfy(
        self,
        sign: Callable[[bytes], bytes | None],
        preimages: Mapping[bytes, bytes] | None = None,
        sequence: int | None = None,
        locktime: int | None = None,
        pos: int = 0,
        nonmalleable: bool = True,
    ) -> list[bytes] | None:
        """The smallest witness (bottom first, without the script) for what is available, or
        None. ``sign(key)`` gets the key bytes as the script has them; ``sequence``/``locktime``
        are the spending input's nSequence and the transaction's nLockTime."""
        from .satisfy import Satisfier, satisfy

        satisfier = Satisfier(sign, preimages or {}, sequence, locktime)
        return satisfy(self, satisfier, pos, nonmalleable)

    # -- text ------------------------------------------------------------------------------------

    def to_string(self, private: bool = False) -> str:
        """Canonical miniscript text (Core's ``ToString``), keys public or, with ``private``,
        with their private form where known."""
        return self._text(private, wrapped=False)

    def __str__(self) -> str:
        return self.to_string()

    def _key_text(self, key: KeyExpression, private: bool) -> str:
        return key.to_string(private)

    def _text(self, private: bool, wrapped: bool) -> str:
        f, subs = self.fragment, self.subs
        # Wrappers (including the t:, l: and u: sugars) print as a letter before the sub.
        if f in WRAPPERS:
            if f == "c" and subs[0].fragment in ("pk_k", "pk_h") and subs[0].keys:
                name = "pk" if subs[0].fragment == "pk_k" else "pkh"
                inner = f"{name}({self._key_text(subs[0].keys[0], private)})"
                return (":" if wrapped else "") + inner
            return f + subs[0]._text(private, wrapped=True)
        if f == "and_v" and subs[1].fragment == "1":
            return "t" + subs[0]._text(private, wrapped=True)
        if f == "or_i" and subs[0].fragment == "0":
            return "l" + subs[1]._text(private, wrapped=True)
        if f == "or_i" and subs[1].fragment == "0":
            return "u" + subs[0]._text(private, wrapped=True)
        prefix = ":" if wrapped else ""
        if f in ("0", "1"):
            return prefix + f
        if f in ("pk_k", "pk_h"):
            if not self.keys:
                raise DescriptorError(f"pk_h key with hash {self.data.hex()} is unknown")
            return f"{prefix}{f}({self._key_text(self.keys[0], private)})"
        if f in ("older", "after"):
            return f"{prefix}{f}({self.k})"
        if f in HASH_FRAGMENTS:
            return f"{prefix}{f}({self.data.hex()})"
        if f in ("multi", "multi_a"):
            keys = ",".join(self._key_text(k, private) for k in self.keys)
            return f"{prefix}{f}({self.k},{keys})"
        if f == "andor" and subs[2].fragment == "0":
            return f"{prefix}and_n({subs[0]._text(private, False)},{subs[1]._text(private, False)})"
        args = ",".join(s._text(private, False) for s in subs)
        if f == "thresh":
            return f"{prefix}thresh({self.k},{args})"
        return f"{prefix}{f}({args})"


class NodeBuilder:
    """What the text parser and the script decoder share: making nodes in their context."""

    ctx: MsContext

    def node(
        self,
        fragment: str,
        *subs: Node,
        keys: tuple[KeyExpression, ...] = (),
        k: int = 0,
        data: bytes = b"",
    ) -> Node:
        return Node(fragment, self.ctx, tuple(subs), keys, k, data)


def _compact_size(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5
