"""Parsing descriptor text into script expressions, and the top-level :class:`Descriptor`.

The grammar and its error messages follow Bitcoin Core's ``ParseScript``: an expression is read up
to the next ``,``, ``)`` or ``}`` outside brackets; ``name(…)`` must match exactly; each function
checks where it may appear (``wpkh`` not inside ``wsh``, ``combo`` only at the top, …) and its own
limits (multisig key counts, the 520-byte P2SH redeem script, 128 levels of taproot tree).
A multipath key (``<0;1>``) makes the parse return one descriptor per branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ...consensus.address import address_to_script, script_to_address
from ...consensus.errors import DecodeError
from ...consensus.params import NetworkParams
from ...consensus.script.taproot import TAPROOT_CONTROL_MAX_NODE_COUNT, TaprootOutput
from .checksum import add_checksum, split_checksum
from .errors import DescriptorError, MiniscriptError
from .keys import Context, KeyExpression, KeyOrigin, is_hex, parse_key
from .scripts import (
    MAX_PUBKEYS_PER_MULTI_A,
    MAX_PUBKEYS_PER_MULTISIG,
    AddrExpr,
    ComboExpr,
    MultiAExpr,
    MultiExpr,
    PKExpr,
    PKHExpr,
    RawExpr,
    RawTRExpr,
    ScriptExpression,
    SHExpr,
    TapTree,
    TRExpr,
    WPKHExpr,
    WSHExpr,
)

__all__ = ["Descriptor", "MiniscriptHook", "descriptor_info", "parse_descriptor"]

MAX_SCRIPT_ELEMENT_SIZE = 520
"""Consensus: the largest push, so the largest P2SH redeem script."""


class MiniscriptHook(Protocol):
    """What a miniscript parser plugs in as (BIP379, inside ``wsh()`` and ``tr()`` leaves).

    Called with the expression text when no built-in function matches, the context, and a
    function that parses a key expression in that context (returning one key per multipath
    branch). Returns None when the text is not miniscript, otherwise one expression per multipath
    branch; raises :class:`MiniscriptError` for miniscript that is invalid or not sane (and a
    plain :class:`DescriptorError` for a bad key).
    """

    def __call__(
        self, text: str, ctx: Context, parse_key: Callable[[str], list[KeyExpression]]
    ) -> list[ScriptExpression] | None: ...


# -- Core's little span parsers, on (text, position) ------------------------------------------


def _expr(text: str) -> tuple[str, str]:
    """(the expression at the front of ``text``, the rest): up to a top-level ``,``/``)``/``}``."""
    level = 0
    for i, char in enumerate(text):
        if char in "({":
            level += 1
        elif level and char in ")}":
            level -= 1
        elif level == 0 and char in ",)}":
            return text[:i], text[i:]
    return text, ""


def _func(name: str, expr: str) -> str | None:
    """The argument text if ``expr`` is ``name(…)``, else None."""
    if len(expr) >= len(name) + 2 and expr.startswith(name + "(") and expr.endswith(")"):
        return expr[len(name) + 1 : -1]
    return None


def _to_uint32(text: str) -> int | None:
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= 0xFFFF_FFFF else None


@dataclass(slots=True)
class _Parser:
    params: NetworkParams
    miniscript: MiniscriptHook | None

    def keys(self, text: str, ctx: Context, prefix: str) -> list[KeyExpression]:
        try:
            return parse_key(text, ctx, self.params)
        except DescriptorError as error:
            raise DescriptorError(f"{prefix}{error}") from None

    def script(self, text: str, ctx: Context) -> tuple[list[ScriptExpression], str]:
        """Parse the expression at the front of ``text``: (expressions, rest of ``text``)."""
        expr, rest = _expr(text)
        return self._script(expr, ctx), rest

    def _script(self, expr: str, ctx: Context) -> list[ScriptExpression]:
        top = ctx is Context.TOP
        legacy = ctx in (Context.TOP, Context.P2SH, Context.P2WSH)
        if (arg := _func("pk", expr)) is not None:
            xonly = ctx is Context.P2TR
            return [PKExpr(k, xonly) for k in self.keys(arg, ctx, "pk(): ")]
        if legacy and (arg := _func("pkh", expr)) is not None:
            return [PKHExpr(k) for k in self.keys(arg, ctx, "pkh(): ")]
        if (arg := _func("combo", expr)) is not None:
            if not top:
                raise DescriptorError("Can only have combo() at top level")
            return [ComboExpr(k) for k in self.keys(arg, ctx, "combo(): ")]
        for name, tap, sort in (
            ("multi", False, False),
            ("sortedmulti", False, True),
            ("multi_a", True, False),
            ("sortedmulti_a", True, True),
        ):
            if (arg := _func(name, expr)) is not None:
                if tap and ctx is not Context.P2TR:
                    raise DescriptorError("Can only have multi_a/sortedmulti_a inside tr()")
                if not tap and not legacy:
                    raise DescriptorError(
                        "Can only have multi/sortedmulti at top level, in sh(), or in wsh()"
                    )
                return self._multi(arg, ctx, tap, sort)
        if (arg := _func("wpkh", expr)) is not None:
            if ctx not in (Context.TOP, Context.P2SH):
                raise DescriptorError("Can only have wpkh() at top level or inside sh()")
            return [WPKHExpr(k) for k in self.keys(arg, Context.P2WPKH, "wpkh(): ")]
        if (arg := _func("sh", expr)) is not None:
            if not top:
                raise DescriptorError("Can only have sh() at top level")
            subs, rest = self.script(arg, Context.P2SH)
            if rest:
                raise DescriptorError("")
            return [SHExpr(sub) for sub in subs]
        if (arg := _func("wsh", expr)) is not None:
            if ctx not in (Context.TOP, Context.P2SH):
                raise DescriptorError("Can only have wsh() at top level or inside sh()")
            subs, rest = self.script(arg, Context.P2WSH)
            if rest:
                raise DescriptorError("")
            return [WSHExpr(sub) for sub in subs]
        if (arg := _func("addr", expr)) is not None:
            if not top:
                raise DescriptorError("Can only have addr() at top level")
            try:
                script = address_to_script(arg, self.params)
            except (DecodeError, ValueError):
                raise DescriptorError("Address is not valid") from None
            return [AddrExpr(script, self.params)]
        if (arg := _func("tr", expr)) is not None:
            if not top:
                raise DescriptorError("Can only have tr at top level")
            return self._tr(arg)
        if (arg := _func("rawtr", expr)) is not None:
            if not top:
                raise DescriptorError("Can only have rawtr at top level")
            key_text, rest = _expr(arg)
            if rest:
                raise DescriptorError("rawtr(): only one key expected.")
            return [RawTRExpr(k) for k in self.keys(key_text, Context.P2TR, "rawtr(): ")]
        if (arg := _func("raw", expr)) is not None:
            if not top:
                raise DescriptorError("Can only have raw() at top level")
            if not is_hex(arg):
                raise DescriptorError("Raw script is not hex")
            return [RawExpr(bytes.fromhex(arg))]
        if self.miniscript is not None:
            mini_ctx = ctx if ctx in (Context.P2WSH, Context.P2TR) else Context.P2WSH
            outside = ctx not in (Context.P2WSH, Context.P2TR)
            try:
                found = self.miniscript(expr, mini_ctx, lambda t: self.keys(t, mini_ctx, ""))
            except MiniscriptError:
                if not outside:
                    raise
                found = []  # it is miniscript: where it stands is the first problem (Core's order)
            if found is not None:
                if outside:
                    raise DescriptorError("Miniscript expressions can only be used in wsh or tr.")
                return found
        if ctx is Context.P2SH:
            raise DescriptorError("A function is needed within P2SH")
        if ctx is Context.P2WSH:
            raise DescriptorError("A function is needed within P2WSH")
        raise DescriptorError(f"'{expr}' is not a valid descriptor function")

    def _multi(self, arg: str, ctx: Context, tap: bool, sort: bool) -> list[ScriptExpression]:
        threshold_text, rest = _expr(arg)
        threshold = _to_uint32(threshold_text)
        if threshold is None:
            raise DescriptorError(f"Multi threshold '{threshold_text}' is not valid")
        providers: list[list[KeyExpression]] = []
        script_size = 0
        while rest:
            if rest[0] != ",":
                raise DescriptorError(f"Multi: expected ',', got '{rest[0]}'")
            key_text, rest = _expr(rest[1:])
            keys = self.keys(key_text, ctx, "Multi: ")
            script_size += keys[0].size + 1
            providers.append(keys)
        count = len(providers)
        if not tap and not 1 <= count <= MAX_PUBKEYS_PER_MULTISIG:
            raise DescriptorError(
                f"Cannot have {count} keys in multisig; must have between 1 and "
                f"{MAX_PUBKEYS_PER_MULTISIG} keys, inclusive"
            )
        if tap and not 1 <= count <= MAX_PUBKEYS_PER_MULTI_A:
            raise DescriptorError(
                f"Cannot have {count} keys in multi_a; must have between 1 and "
                f"{MAX_PUBKEYS_PER_MULTI_A} keys, inclusive"
            )
        if threshold < 1:
            raise DescriptorError(f"Multisig threshold cannot be {threshold}, must be at least 1")
        if threshold > count:
            raise DescriptorError(
                "Multisig threshold cannot be larger than the number of keys; threshold is "
                f"{threshold} but only {count} keys specified"
            )
        if ctx is Context.TOP and count > 3:
            raise DescriptorError(
                f"Cannot have {count} pubkeys in bare multisig; only at most 3 pubkeys"
            )
        if ctx is Context.P2SH and script_size + 3 > MAX_SCRIPT_ELEMENT_SIZE:
            raise DescriptorError(
                f"P2SH script is too large, {script_size + 3} bytes is larger than "
                f"{MAX_SCRIPT_ELEMENT_SIZE} bytes"
            )
        branches = _branches(
            providers, "multi(): Multipath derivation paths have mismatched lengths"
        )
        cls = MultiAExpr if tap else MultiExpr
        return [cls(threshold, tuple(keys), sort) for keys in branches]

    def _tr(self, arg: str) -> list[ScriptExpression]:
        key_text, rest = _expr(arg)
        internal = self.keys(key_text, Context.P2TR, "tr(): ")
        leaves: list[list[ScriptExpression]] = []
        depths: list[int] = []
        if rest:
            if rest[0] != ",":
                raise DescriptorError(f"tr: expected ',', got '{rest[0]}'")
            rest = rest[1:]
            branches: list[bool] = []  # False: in a left branch; True: in a right one
            while True:
                while rest.startswith("{"):
                    rest = rest[1:]
                    branches.append(False)
                    if len(branches) > TAPROOT_CONTROL_MAX_NODE_COUNT:
                        raise DescriptorError(
                            f"tr() supports at most {TAPROOT_CONTROL_MAX_NODE_COUNT} nesting levels"
                        )
                leaf, rest = self.script(rest, Context.P2TR)
                leaves.append(leaf)
                depths.append(len(branches))
                while branches and branches[-1]:
                    if not rest.startswith("}"):
                        raise DescriptorError("tr(): expected '}' after script expression")
                    rest = rest[1:]
                    branches.pop()
                if branches and not branches[-1]:
                    if not rest.startswith(","):
                        raise DescriptorError("tr(): expected ',' after script expression")
                    rest = rest[1:]
                    branches[-1] = True
                if not branches:
                    break
            if rest:
                raise DescriptorError("tr(): expected ')' after script expression")
        width = max([len(internal), *(len(leaf) for leaf in leaves)])
        for leaf in leaves:
            if len(leaf) not in (1, width):
                raise DescriptorError("tr(): Multipath subscripts have mismatched lengths")
        if len(internal) not in (1, width):
            raise DescriptorError(
                "tr(): Multipath internal key mismatches multipath subscripts lengths"
            )
        result: list[ScriptExpression] = []
        for i in range(width):
            key = internal[i if len(internal) > 1 else 0]
            picked = [leaf[i if len(leaf) > 1 else 0] for leaf in leaves]
            tree = _build_tree(picked, depths) if picked else None
            result.append(TRExpr(key, tree))
        return result


def _branches(providers: list[list[KeyExpression]], error: str) -> list[list[KeyExpression]]:
    """Line up multipath keys: every list has length 1 or the longest length."""
    width = max(len(keys) for keys in providers)
    for keys in providers:
        if len(keys) not in (1, width):
            raise DescriptorError(error)
    return [[keys[i if len(keys) > 1 else 0] for keys in providers] for i in range(width)]


def _build_tree(leaves: Sequence[ScriptExpression], depths: Sequence[int]) -> TapTree:
    """The tree whose leaves, left to right, sit at ``depths`` (the parse guarantees a valid
    shape: each leaf closes the branches it completes)."""
    stack: list[tuple[int, TapTree]] = []
    for leaf, depth in zip(leaves, depths):
        node: TapTree = leaf
        while stack and stack[-1][0] == depth:
            _, left = stack.pop()
            node = (left, node)
            depth -= 1
        stack.append((depth, node))
    if len(stack) != 1 or stack[0][0] != 0:
        raise DescriptorError("invalid taproot tree shape")
    return stack[0][1]


# -- the top level -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expansion:
    """Everything a descriptor gives at one position, for wallets, PSBT and signing.

    ``pubkeys`` maps each public key (33 or 65 bytes as derived; taproot keys as derived, use the
    x coordinate) to its origin; ``secrets`` the keys whose private key is known. ``redeem_script``
    and ``witness_script`` are set for ``sh()``/``wsh()`` descriptors, ``taproot`` for ``tr()``.
    """

    script_pubkeys: tuple[bytes, ...]
    pubkeys: dict[bytes, KeyOrigin]
    secrets: dict[bytes, bytes]
    redeem_script: bytes | None
    witness_script: bytes | None
    taproot: TaprootOutput | None


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A parsed output descriptor for one network (after multipath expansion, one branch)."""

    expr: ScriptExpression
    params: NetworkParams

    @property
    def is_range(self) -> bool:
        return self.expr.is_range

    @property
    def is_solvable(self) -> bool:
        return self.expr.is_solvable

    @property
    def has_private_keys(self) -> bool:
        """Whether any private key was given (Core's getdescriptorinfo ``hasprivatekeys``)."""
        return any(key.has_private_key for key in self.expr.all_keys())

    @property
    def has_all_private_keys(self) -> bool:
        """Whether every key is private, so :meth:`to_string` ``private`` hides nothing."""
        return all(key.has_private_key for key in self.expr.all_keys())

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return tuple(self.expr.all_keys())

    def to_string(self, private: bool = False, checksum: bool = True) -> str:
        """The canonical text (Core's ``ToString``/``ToPrivateString``) with its ``#checksum``.

        ``private`` writes WIF/xprv for every key whose private key is known (others stay public).
        """
        text = self.expr.to_string(private)
        return add_checksum(text) if checksum else text

    def __str__(self) -> str:
        return self.to_string()

    def script_pubkeys(self, pos: int = 0) -> list[bytes]:
        """The scriptPubKeys at range position ``pos`` (several only for ``combo``)."""
        return self.expr.expand(pos)

    def addresses(self, pos: int = 0) -> list[str]:
        """The addresses at ``pos``, as Core's ``deriveaddresses`` gives them.

        ``combo``'s P2PK output has no address and is skipped; any other script without one
        raises ``Descriptor does not have a corresponding address``.
        """
        scripts = self.script_pubkeys(pos)
        result = []
        for script in scripts:
            address = script_to_address(script, self.params)
            if address is None:
                if len(scripts) > 1 and _is_p2pk(script):
                    continue
                raise DescriptorError("Descriptor does not have a corresponding address")
            result.append(address)
        return result

    def expand(self, pos: int = 0) -> Expansion:
        """scriptPubKeys plus the keys, origins and inner scripts behind them at ``pos``."""
        pubkeys: dict[bytes, KeyOrigin] = {}
        secrets: dict[bytes, bytes] = {}
        for key in self.expr.all_keys():
            pub = key.pubkey(pos)
            pubkeys[pub] = key.origin(pos)
            secret = key.secret(pos)
            if secret is not None:
                secrets[pub] = secret
        expr = self.expr
        redeem = expr.redeem_script(pos) if isinstance(expr, SHExpr) else None
        inner = expr.sub if isinstance(expr, SHExpr) else expr
        witness = inner.witness_script(pos) if isinstance(inner, WSHExpr) else None
        taproot = expr.taproot(pos) if isinstance(expr, TRExpr) else None
        return Expansion(tuple(expr.expand(pos)), pubkeys, secrets, redeem, witness, taproot)


def _is_p2pk(script: bytes) -> bool:
    return len(script) in (35, 67) and script[0] == len(script) - 2 and script[-1] == 0xAC


def parse_descriptor(
    text: str,
    params: NetworkParams,
    *,
    require_checksum: bool = False,
    miniscript: MiniscriptHook | bool = True,
) -> list[Descriptor]:
    """Parse ``text`` for the network ``params``: one :class:`Descriptor` per multipath branch.

    A ``#checksum`` is verified when present (required when ``require_checksum``). Raises
    :class:`DescriptorError` with Core's message for the first problem found. ``miniscript``
    True (the default) parses BIP379 miniscript in ``wsh()`` and ``tr()`` leaves with
    :mod:`peercash.wallet.miniscript`; False turns it off; or pass another hook.
    """
    body, _ = split_checksum(text, require_checksum)
    hook: MiniscriptHook | None
    if miniscript is True:
        from ..miniscript.descriptor import MINISCRIPT_HOOK  # imported late: it imports us

        hook = MINISCRIPT_HOOK
    else:
        hook = miniscript or None
    parser = _Parser(params, hook)
    exprs, rest = parser.script(body, Context.TOP)
    if rest:
        raise DescriptorError("")
    return [Descriptor(expr, params) for expr in exprs]


def parse_one(text: str, params: NetworkParams, **kwargs: object) -> Descriptor:
    """Parse a descriptor that must not be multipath."""
    descs = parse_descriptor(text, params, **kwargs)  # type: ignore[arg-type]
    if len(descs) != 1:
        raise DescriptorError("Multipath descriptors are not allowed here")
    return descs[0]


@dataclass(frozen=True, slots=True)
class DescriptorInfo:
    """What Core's ``getdescriptorinfo`` reports."""

    descriptor: str
    checksum: str
    is_range: bool
    is_solvable: bool
    has_private_keys: bool
    multipath_expansion: tuple[str, ...]


def descriptor_info(text: str, params: NetworkParams) -> DescriptorInfo:
    """Core's ``getdescriptorinfo``: canonical public form, the input's checksum, and flags."""
    descs = parse_descriptor(text, params)
    _, checksum = split_checksum(text)
    first = descs[0]
    expansion: Iterable[str] = (d.to_string() for d in descs) if len(descs) > 1 else ()
    return DescriptorInfo(
        descriptor=first.to_string(),
        checksum=checksum,
        is_range=first.is_range,
        is_solvable=first.is_solvable,
        has_private_keys=any(d.has_private_keys for d in descs),
        multipath_expansion=tuple(expansion),
    )
