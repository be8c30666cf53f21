"""Miniscript (BIP379) for P2WSH and tapscript, as Bitcoin Core has it.

Layer 3 (wallet), pure: no I/O, no clock; signatures come from the caller's ``sign`` callback.

* :func:`parse_miniscript` (text, context) → :class:`Node`; :func:`from_script` decodes a script
  back into a :class:`Node`.
* :class:`Node`: ``.type`` (BIP379 type letters), ``.script(pos)``, ``.to_string(private)``,
  ``.satisfy(...)`` (the smallest non-malleable witness), ``.max_satisfaction_size()`` (witness
  elements' bytes, for fee estimation) and ``.max_witness_size()`` (the whole witness),
  ``.ops``, ``.stack_size``, ``.exec_stack_size``, ``.is_sane()`` and the checks behind it.
* :data:`MINISCRIPT_HOOK` plugs miniscript into :func:`peercash.wallet.descriptor.parse_descriptor`
  for ``wsh()`` and ``tr()`` leaves (it is the parser's default).

Error contract: :class:`~peercash.wallet.descriptor.DescriptorError` with Core's messages.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...consensus.params import MAIN, NetworkParams
from ..descriptor.errors import DescriptorError
from ..descriptor.keys import Context, KeyExpression, parse_key
from .decode import decode_script
from .descriptor import MINISCRIPT_HOOK, MiniscriptExpr, miniscript_hook
from .node import MsContext, Node
from .parse import parse_tree
from .satisfy import InputStack, Satisfier, satisfy
from .types import Type

__all__ = [
    "MINISCRIPT_HOOK",
    "InputStack",
    "MiniscriptExpr",
    "MsContext",
    "Node",
    "Satisfier",
    "Type",
    "from_script",
    "miniscript_hook",
    "parse_miniscript",
    "satisfy",
]


def _key_context(ctx: MsContext) -> Context:
    return Context.P2TR if ctx is MsContext.TAPSCRIPT else Context.P2WSH


def parse_miniscript(
    text: str, ctx: MsContext = MsContext.P2WSH, params: NetworkParams = MAIN
) -> Node:
    """Parse miniscript ``text`` in ``ctx`` (keys as descriptor key expressions for ``params``).

    The result may be invalid or insane (check ``is_valid_top_level()``/``is_sane()``); text that
    does not parse, or a multipath key, raises :class:`DescriptorError`.
    """
    trees = parse_tree(text, ctx, lambda t: parse_key(t, _key_context(ctx), params))
    if trees is None:
        raise DescriptorError(f"'{text}' is not a valid miniscript expression")
    if len(trees) != 1:
        raise DescriptorError("Multipath descriptors are not allowed here")
    return trees[0]


def from_script(
    script: bytes,
    ctx: MsContext = MsContext.P2WSH,
    params: NetworkParams = MAIN,
    known_keys: Mapping[bytes, KeyExpression] | None = None,
) -> Node:
    """The miniscript of ``script`` (Core's ``FromScript``); raises :class:`DescriptorError`
    when the script is not a valid miniscript. See :func:`.decode.decode_script` for
    ``known_keys``."""
    node = decode_script(script, ctx, params, known_keys)
    if node is None:
        raise DescriptorError("script is not a valid miniscript")
    return node
