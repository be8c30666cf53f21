"""Miniscript inside descriptors: the :class:`MiniscriptHook` and the expression it returns.

Follows Core's ``ParseScript`` for miniscript: an expression that parses as miniscript must be
sane and satisfiable, else the error names the first offending sub-expression (leaves first)
and why ("... is not sane: malleable witnesses exist", …).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..descriptor.errors import MiniscriptError
from ..descriptor.keys import Context, KeyExpression
from ..descriptor.scripts import ScriptExpression
from .node import MsContext, Node
from .parse import parse_tree

__all__ = ["MINISCRIPT_HOOK", "MiniscriptExpr", "miniscript_hook"]


@dataclass(frozen=True, slots=True)
class MiniscriptExpr(ScriptExpression):
    """A miniscript as a descriptor sub-expression (inside ``wsh()`` or a ``tr()`` leaf)."""

    node: Node
    name = "miniscript"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return tuple(self.node.all_keys())

    def to_string(self, private: bool = False) -> str:
        return self.node.to_string(private)

    def expand(self, pos: int = 0) -> list[bytes]:
        return [self.node.script(pos)]

    def max_satisfaction_size(self) -> int | None:
        """Bytes of the largest satisfaction's witness elements (without script or control
        block), as Core's ``MaxSatisfactionSize`` for fee estimation."""
        return self.node.max_satisfaction_size()


def _insane_message(node: Node) -> str:
    insane = node.find_insane_sub() or node
    text = insane.to_string()
    if not insane.is_valid:
        return f"{text} is invalid"
    if not node.is_sane():
        text += " is not sane"
        if not insane.is_non_malleable():
            return text + ": malleable witnesses exist"
        if insane is node and not insane.needs_signature():
            return text + ": witnesses without signature exist"
        if not insane.check_timelocks_mix():
            return text + ": contains mixes of timelocks expressed in blocks and seconds"
        if not insane.check_duplicate_keys():
            return text + ": contains duplicate public keys"
        if not insane.valid_satisfactions():
            return text + ": needs witnesses that may exceed resource limits"
        return text
    return text + " is not satisfiable"


def miniscript_hook(
    text: str, ctx: Context, parse_key: Callable[[str], list[KeyExpression]]
) -> list[ScriptExpression] | None:
    """The :class:`~peercash.wallet.descriptor.MiniscriptHook` for BIP379 miniscript."""
    ms_ctx = MsContext.TAPSCRIPT if ctx is Context.P2TR else MsContext.P2WSH
    trees = parse_tree(text, ms_ctx, parse_key)
    if trees is None:
        return None
    for node in trees:
        if not node.is_sane() or not node.is_satisfiable():
            raise MiniscriptError(_insane_message(node))
    return [MiniscriptExpr(node) for node in trees]


MINISCRIPT_HOOK = miniscript_hook
