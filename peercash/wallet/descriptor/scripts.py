"""Script expressions (BIP381–387): what each descriptor function builds from its keys.

Every expression is an immutable :class:`ScriptExpression`. ``expand(pos)`` gives the scripts it
stands for at range position ``pos``: for a top-level descriptor these are scriptPubKeys; for an
expression inside ``sh()``/``wsh()`` or a ``tr()`` leaf, the one script its parent commits to.

Miniscript (BIP379) lives in :mod:`peercash.wallet.miniscript`: its
``MiniscriptExpr`` subclasses :class:`ScriptExpression` (``name``, ``keys``, ``to_string``,
``expand`` for its one script) and its hook is what :func:`~peercash.wallet.descriptor.parse_descriptor`
uses by default; ``wsh()`` and ``tr()`` leaves accept any ``ScriptExpression``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from ...consensus.address import p2pkh_script, p2sh_script, script_to_address, witness_script
from ...consensus.hashing import hash160, sha256
from ...consensus.params import NetworkParams
from ...consensus.script.opcodes import Op
from ...consensus.script.script import push_data, push_int
from ...consensus.script.taproot import TapLeaf, TaprootOutput, taproot_output
from .keys import KeyExpression

__all__ = [
    "MAX_PUBKEYS_PER_MULTISIG",
    "MAX_PUBKEYS_PER_MULTI_A",
    "AddrExpr",
    "ComboExpr",
    "MultiAExpr",
    "MultiExpr",
    "PKExpr",
    "PKHExpr",
    "RawExpr",
    "RawTRExpr",
    "SHExpr",
    "ScriptExpression",
    "TRExpr",
    "TapTree",
    "WPKHExpr",
    "WSHExpr",
]

MAX_PUBKEYS_PER_MULTISIG = 20
"""Consensus: keys an OP_CHECKMULTISIG may take."""
MAX_PUBKEYS_PER_MULTI_A = 999
"""Policy-derived limit of ``multi_a`` keys (Core: a standard tapscript's stack limit)."""


class ScriptExpression(ABC):
    """One descriptor function applied to keys and/or sub-expressions."""

    __slots__ = ()

    name: str
    """The function name: ``pk``, ``wsh``, ``tr``…"""

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        """The key expressions directly inside this expression."""
        return ()

    @property
    def subs(self) -> tuple[ScriptExpression, ...]:
        """The script expressions directly inside (for ``tr()``, its leaves, left to right)."""
        return ()

    def walk(self) -> Iterator[ScriptExpression]:
        """This expression and every expression inside it, depth first."""
        yield self
        for sub in self.subs:
            yield from sub.walk()

    def all_keys(self) -> Iterator[KeyExpression]:
        """Every key expression in this expression and below, in text order."""
        for expr in self.walk():
            yield from expr.keys

    @property
    def is_range(self) -> bool:
        return any(key.is_range for key in self.all_keys())

    @property
    def is_solvable(self) -> bool:
        """Whether a wallet knows how to spend it given the keys (False for ``addr``/``raw``)."""
        return all(sub.is_solvable for sub in self.subs)

    @abstractmethod
    def to_string(self, private: bool = False) -> str:
        """Canonical text without checksum."""

    @abstractmethod
    def expand(self, pos: int = 0) -> list[bytes]:
        """The scripts at position ``pos`` (a sub-expression gives exactly one)."""

    def _args(self, private: bool) -> str:
        return ",".join(key.to_string(private) for key in self.keys)


# -- single-key expressions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PKExpr(ScriptExpression):
    """``pk(KEY)``: ``<key> OP_CHECKSIG`` (an x-only key inside ``tr()``)."""

    key: KeyExpression
    xonly: bool = False
    name = "pk"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return (self.key,)

    def to_string(self, private: bool = False) -> str:
        return f"pk({self.key.to_string(private)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        pub = self.key.pubkey(pos)
        return [push_data(pub[1:] if self.xonly else pub) + bytes((Op.OP_CHECKSIG,))]


@dataclass(frozen=True, slots=True)
class PKHExpr(ScriptExpression):
    """``pkh(KEY)``: P2PKH."""

    key: KeyExpression
    name = "pkh"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return (self.key,)

    def to_string(self, private: bool = False) -> str:
        return f"pkh({self.key.to_string(private)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        return [p2pkh_script(hash160(self.key.pubkey(pos)))]


@dataclass(frozen=True, slots=True)
class WPKHExpr(ScriptExpression):
    """``wpkh(KEY)``: P2WPKH (compressed keys only)."""

    key: KeyExpression
    name = "wpkh"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return (self.key,)

    def to_string(self, private: bool = False) -> str:
        return f"wpkh({self.key.to_string(private)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        return [witness_script(0, hash160(self.key.pubkey(pos)))]


@dataclass(frozen=True, slots=True)
class ComboExpr(ScriptExpression):
    """``combo(KEY)``: P2PK and P2PKH, plus P2WPKH and P2SH-P2WPKH for a compressed key."""

    key: KeyExpression
    name = "combo"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return (self.key,)

    def to_string(self, private: bool = False) -> str:
        return f"combo({self.key.to_string(private)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        pub = self.key.pubkey(pos)
        key_hash = hash160(pub)
        scripts = [push_data(pub) + bytes((Op.OP_CHECKSIG,)), p2pkh_script(key_hash)]
        if len(pub) == 33:
            p2wpkh = witness_script(0, key_hash)
            scripts += [p2wpkh, p2sh_script(hash160(p2wpkh))]
        return scripts


@dataclass(frozen=True, slots=True)
class RawTRExpr(ScriptExpression):
    """``rawtr(KEY)``: a taproot output whose output key is KEY itself (no tweak)."""

    key: KeyExpression
    name = "rawtr"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return (self.key,)

    def to_string(self, private: bool = False) -> str:
        return f"rawtr({self.key.to_string(private)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        return [witness_script(1, self.key.pubkey(pos)[1:])]


# -- multisig ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MultiExpr(ScriptExpression):
    """``multi(k,KEY,…)`` / ``sortedmulti``: ``k <keys> n OP_CHECKMULTISIG``."""

    threshold: int
    key_list: tuple[KeyExpression, ...]
    sorted: bool = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return "sortedmulti" if self.sorted else "multi"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return self.key_list

    def to_string(self, private: bool = False) -> str:
        return f"{self.name}({self.threshold},{self._args(private)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        pubs = [key.pubkey(pos) for key in self.key_list]
        if self.sorted:
            pubs.sort()
        body = b"".join(push_data(pub) for pub in pubs)
        return [
            push_int(self.threshold) + body + push_int(len(pubs)) + bytes((Op.OP_CHECKMULTISIG,))
        ]


@dataclass(frozen=True, slots=True)
class MultiAExpr(ScriptExpression):
    """``multi_a(k,KEY,…)`` / ``sortedmulti_a`` (tapscript, BIP387):
    ``<k1> CHECKSIG <k2> CHECKSIGADD … <kn> CHECKSIGADD k NUMEQUAL``."""

    threshold: int
    key_list: tuple[KeyExpression, ...]
    sorted: bool = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return "sortedmulti_a" if self.sorted else "multi_a"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return self.key_list

    def to_string(self, private: bool = False) -> str:
        return f"{self.name}({self.threshold},{self._args(private)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        xonly = [key.pubkey(pos)[1:] for key in self.key_list]
        if self.sorted:
            xonly.sort()
        parts = []
        for i, key in enumerate(xonly):
            parts.append(push_data(key))
            parts.append(bytes((Op.OP_CHECKSIG if i == 0 else Op.OP_CHECKSIGADD,)))
        parts.append(push_int(self.threshold))
        parts.append(bytes((Op.OP_NUMEQUAL,)))
        return [b"".join(parts)]


# -- wrappers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SHExpr(ScriptExpression):
    """``sh(SCRIPT)``: P2SH of the inner script (its redeem script)."""

    sub: ScriptExpression
    name = "sh"

    @property
    def subs(self) -> tuple[ScriptExpression, ...]:
        return (self.sub,)

    def to_string(self, private: bool = False) -> str:
        return f"sh({self.sub.to_string(private)})"

    def redeem_script(self, pos: int = 0) -> bytes:
        (script,) = self.sub.expand(pos)
        return script

    def expand(self, pos: int = 0) -> list[bytes]:
        return [p2sh_script(hash160(self.redeem_script(pos)))]


@dataclass(frozen=True, slots=True)
class WSHExpr(ScriptExpression):
    """``wsh(SCRIPT)``: P2WSH of the inner script (its witness script)."""

    sub: ScriptExpression
    name = "wsh"

    @property
    def subs(self) -> tuple[ScriptExpression, ...]:
        return (self.sub,)

    def to_string(self, private: bool = False) -> str:
        return f"wsh({self.sub.to_string(private)})"

    def witness_script(self, pos: int = 0) -> bytes:
        (script,) = self.sub.expand(pos)
        return script

    def expand(self, pos: int = 0) -> list[bytes]:
        return [witness_script(0, sha256(self.witness_script(pos)))]


TapTree: TypeAlias = "ScriptExpression | tuple[TapTree, TapTree]"
"""A ``tr()`` script tree: a leaf expression, or a pair ``(left, right)`` written ``{A,B}``."""


def _tree_string(tree: TapTree, private: bool) -> str:
    if isinstance(tree, tuple):
        return "{" + _tree_string(tree[0], private) + "," + _tree_string(tree[1], private) + "}"
    return tree.to_string(private)


def _tree_leaves(tree: TapTree) -> Iterator[ScriptExpression]:
    if isinstance(tree, tuple):
        yield from _tree_leaves(tree[0])
        yield from _tree_leaves(tree[1])
    else:
        yield tree


def _tree_for_taproot(tree: TapTree, pos: int) -> object:
    if isinstance(tree, tuple):
        return [_tree_for_taproot(tree[0], pos), _tree_for_taproot(tree[1], pos)]
    (script,) = tree.expand(pos)
    return TapLeaf(script)


@dataclass(frozen=True, slots=True)
class TRExpr(ScriptExpression):
    """``tr(KEY)`` or ``tr(KEY,TREE)``: a taproot output, BIP341-tweaked from the internal key."""

    internal: KeyExpression
    tree: TapTree | None = None
    name = "tr"

    @property
    def keys(self) -> tuple[KeyExpression, ...]:
        return (self.internal,)

    @property
    def subs(self) -> tuple[ScriptExpression, ...]:
        return () if self.tree is None else tuple(_tree_leaves(self.tree))

    def to_string(self, private: bool = False) -> str:
        key = self.internal.to_string(private)
        if self.tree is None:
            return f"tr({key})"
        return f"tr({key},{_tree_string(self.tree, private)})"

    def taproot(self, pos: int = 0) -> TaprootOutput:
        """The output at ``pos``: tweak, output key, leaves and their control blocks."""
        internal = self.internal.pubkey(pos)[1:]
        tree = None if self.tree is None else _tree_for_taproot(self.tree, pos)
        return taproot_output(internal, tree)  # type: ignore[arg-type]

    def expand(self, pos: int = 0) -> list[bytes]:
        return [self.taproot(pos).script_pubkey]


# -- scripts given outright --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddrExpr(ScriptExpression):
    """``addr(ADDRESS)``: the script an address stands for (not solvable)."""

    script: bytes
    params: NetworkParams
    name = "addr"

    @property
    def is_solvable(self) -> bool:
        return False

    def to_string(self, private: bool = False) -> str:
        return f"addr({script_to_address(self.script, self.params)})"

    def expand(self, pos: int = 0) -> list[bytes]:
        return [self.script]


@dataclass(frozen=True, slots=True)
class RawExpr(ScriptExpression):
    """``raw(HEX)``: a script given as bytes (not solvable)."""

    script: bytes
    name = "raw"

    @property
    def is_solvable(self) -> bool:
        return False

    def to_string(self, private: bool = False) -> str:
        return f"raw({self.script.hex()})"

    def expand(self, pos: int = 0) -> list[bytes]:
        return [self.script]


def leaves_of(tree: TapTree | None) -> Sequence[ScriptExpression]:
    """The leaves of a script tree, left to right."""
    return () if tree is None else tuple(_tree_leaves(tree))
