"""Miniscript text → :class:`~.node.Node` (BIP379 grammar, with its sugars).

Sugars: ``pk(K)`` = ``c:pk_k(K)``, ``pkh(K)`` = ``c:pk_h(K)``, ``and_n(X,Y)`` = ``andor(X,Y,0)``,
``t:X`` = ``and_v(X,1)``, ``l:X`` = ``or_i(0,X)``, ``u:X`` = ``or_i(X,0)``. Numbers are plain
decimal (no sign), hashes hex of the exact length. Keys are descriptor key expressions, parsed
by the function the caller passes (so origins, xpubs, ranges and multipath work); a multipath
key makes the parse give one tree per branch.

:func:`parse_tree` returns None for text that is not miniscript at all (the descriptor parser
then tries its other functions) and raises :class:`DescriptorError` for key errors.
"""

from __future__ import annotations

from collections.abc import Callable

from ..descriptor.errors import DescriptorError
from ..descriptor.keys import KeyExpression, is_hex
from .node import HASH_FRAGMENTS, MsContext, Node, NodeBuilder

__all__ = ["parse_tree"]

MAX_PUBKEYS_PER_MULTISIG = 20
MAX_PUBKEYS_PER_MULTI_A = 999
_WRAPPER_LETTERS = frozenset("asctdvjnlu")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

KeyParser = Callable[[str], list[KeyExpression]]


class _NotMiniscript(Exception):
    """The text does not parse as miniscript (not an error by itself in a descriptor)."""


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of ``text``; raises when brackets do not balance."""
    args: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _NotMiniscript
        elif char == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
    if depth:
        raise _NotMiniscript
    args.append(text[start:])
    return args


def _number(text: str) -> int:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 10:
        raise _NotMiniscript
    return int(text)


class _Parser(NodeBuilder):
    def __init__(self, ctx: MsContext, keys: KeyParser, branch: int) -> None:
        self.ctx = ctx
        self.parse_keys = keys
        self.branch = branch
        self.width = 1

    def key(self, text: str) -> KeyExpression:
        found = self.parse_keys(text)
        if len(found) > 1:
            if self.width not in (1, len(found)):
                raise DescriptorError("Multipath derivation paths have mismatched lengths")
            self.width = len(found)
            return found[self.branch]
        return found[0]

    def parse(self, text: str) -> Node:
        i = 0
        while i < len(text) and text[i] in _NAME_CHARS:
            i += 1
        name, rest = text[:i], text[i:]
        if rest.startswith(":"):
            if not name or any(c not in _WRAPPER_LETTERS for c in name):
                raise _NotMiniscript
            inner = self.parse(rest[1:])
            for letter in reversed(name):
                inner = self._wrap(letter, inner)
            return inner
        if not rest:
            if name in ("0", "1"):
                return self.node(name)
            raise _NotMiniscript
        if not (rest.startswith("(") and rest.endswith(")")):
            raise _NotMiniscript
        return self._fragment(name, rest[1:-1])

    def _wrap(self, letter: str, inner: Node) -> Node:
        if letter == "t":
            return self.node("and_v", inner, self.node("1"))
        if letter == "l":
            return self.node("or_i", self.node("0"), inner)
        if letter == "u":
            return self.node("or_i", inner, self.node("0"))
        return self.node(letter, inner)

    def _fragment(self, name: str, body: str) -> Node:
        tap = self.ctx is MsContext.TAPSCRIPT
        if name in ("pk", "pkh", "pk_k", "pk_h"):
            if "(" in body or "," in body:
                raise _NotMiniscript
            leaf = "pk_k" if name in ("pk", "pk_k") else "pk_h"
            node = self.node(leaf, keys=(self.key(body),))
            return self.node("c", node) if name in ("pk", "pkh") else node
        if name in ("older", "after"):
            k = _number(body)
            if not 1 <= k < 0x8000_0000:
                raise _NotMiniscript
            return self.node(name, k=k)
        if name in HASH_FRAGMENTS:
            if not is_hex(body) or len(body) != 2 * HASH_FRAGMENTS[name]:
                raise _NotMiniscript
            return self.node(name, data=bytes.fromhex(body))
        args = _split_args(body)
        if name in ("multi", "multi_a"):
            if (name == "multi") == tap:
                raise _NotMiniscript
            k = _number(args[0])
            keys = tuple(self.key(a) for a in args[1:])
            limit = MAX_PUBKEYS_PER_MULTI_A if tap else MAX_PUBKEYS_PER_MULTISIG
            if not keys or len(keys) > limit or not 1 <= k <= len(keys):
                raise _NotMiniscript
            return self.node(name, keys=keys, k=k)
        if name == "thresh":
            k = _number(args[0])
            subs = [self.parse(a) for a in args[1:]]
            if not subs or not 1 <= k <= len(subs):
                raise _NotMiniscript
            return self.node("thresh", *subs, k=k)
        arity = {"and_v": 2, "and_b": 2, "and_n": 2, "or_b": 2, "or_c": 2, "or_d": 2}
        arity |= {"or_i": 2, "andor": 3}
        if name not in arity or len(args) != arity[name]:
            raise _NotMiniscript
        subs = [self.parse(a) for a in args]
        if name == "and_n":
            return self.node("andor", subs[0], subs[1], self.node("0"))
        return self.node(name, *subs)


def parse_tree(text: str, ctx: MsContext, keys: KeyParser) -> list[Node] | None:
    """Parse ``text``: one tree per multipath branch, or None when it is not miniscript."""
    first = _Parser(ctx, keys, 0)
    try:
        trees = [first.parse(text)]
        for branch in range(1, first.width):
            trees.append(_Parser(ctx, keys, branch).parse(text))
    except _NotMiniscript:
        return None
    except RecursionError:
        raise DescriptorError("Miniscript expression is nested too deeply") from None
    return trees
