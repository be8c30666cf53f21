"""Key expressions (BIP380, BIP389): the keys inside a descriptor and how they derive.

A key expression is a hex public key (compressed, uncompressed where the context allows, or
x-only inside ``tr()``), a WIF private key, or an extended key (``xpub``/``xprv``, ``tpub``/``tprv``)
with a derivation path that may end in ``/*`` or ``/*'`` (ranged) and may hold one multipath step
``<a;b;…>``. Any of them may carry an origin ``[fingerprint/path]``.

:func:`parse_key` turns the text into one :class:`KeyExpression` per multipath branch. Parsing
follows Bitcoin Core's ``ParsePubkey`` (``src/script/descriptor.cpp``), including its error
messages and its rule for which hardened marker (``'`` or ``h``) the canonical string uses: the
marker of the last hardened step read, origin first, then the wildcard, then the key path.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache

from coincurve import PublicKey

from ...consensus.address import decode_wif, encode_wif
from ...consensus.crypto import pubkey_from_secret
from ...consensus.errors import DecodeError
from ...consensus.hashing import hash160
from ...consensus.params import NetworkParams
from ..bip32 import HARDENED, Bip32Error, ExtendedKey, format_path
from .errors import DescriptorError

__all__ = [
    "BIP32Key",
    "ConstKey",
    "Context",
    "Derive",
    "KeyExpression",
    "KeyOrigin",
    "OriginKey",
    "parse_key",
]


class Context(enum.Enum):
    """Where an expression sits, which decides what it may contain (Core's ParseScriptContext)."""

    TOP = "top"
    P2SH = "p2sh"
    P2WPKH = "p2wpkh"
    P2WSH = "p2wsh"
    P2TR = "p2tr"


class Derive(enum.Enum):
    """Whether an extended key expression is ranged, and how its last step derives."""

    NONE = "none"
    UNHARDENED = "unhardened"
    HARDENED = "hardened"


@dataclass(frozen=True, slots=True)
class KeyOrigin:
    """Where a derived public key comes from: master fingerprint and full path (PSBT's form)."""

    fingerprint: bytes
    path: tuple[int, ...]


CANNOT_DERIVE = "Cannot derive script without private keys"


class KeyExpression(ABC):
    """One key of a descriptor; ``pubkey(pos)`` is the key at range position ``pos``."""

    __slots__ = ()

    @property
    @abstractmethod
    def is_range(self) -> bool:
        """Whether the key changes with the position (ends in ``/*`` or ``/*'``)."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Bytes of the public keys it gives (33, or 65 for an uncompressed key)."""

    @property
    @abstractmethod
    def has_private_key(self) -> bool:
        """Whether the private key (WIF or xprv) was given."""

    @abstractmethod
    def pubkey(self, pos: int = 0) -> bytes:
        """The public key at ``pos`` (33 or 65 bytes; taproot contexts use only its x).

        Raises :class:`DescriptorError` when a hardened step needs a private key that is absent.
        """

    @abstractmethod
    def secret(self, pos: int = 0) -> bytes | None:
        """The 32-byte private key at ``pos``, or None when only the public key is known."""

    @abstractmethod
    def origin(self, pos: int = 0) -> KeyOrigin:
        """Fingerprint and path of the key at ``pos`` (Core's ``KeyOriginInfo``)."""

    @abstractmethod
    def to_string(self, private: bool = False) -> str:
        """The canonical text; ``private`` puts the WIF or xprv where it is known."""


@dataclass(frozen=True, slots=True)
class ConstKey(KeyExpression):
    """A single public key given as hex or WIF. ``xonly`` keys print as 32 bytes of hex."""

    key: bytes
    xonly: bool
    params: NetworkParams
    private: bytes | None = None

    @property
    def is_range(self) -> bool:
        return False

    @property
    def size(self) -> int:
        return len(self.key)

    @property
    def has_private_key(self) -> bool:
        return self.private is not None

    def pubkey(self, pos: int = 0) -> bytes:
        return self.key

    def secret(self, pos: int = 0) -> bytes | None:
        return self.private

    def origin(self, pos: int = 0) -> KeyOrigin:
        return KeyOrigin(hash160(self.key)[:4], ())

    def to_string(self, private: bool = False) -> str:
        if private and self.private is not None:
            return encode_wif(self.private, len(self.key) == 33, self.params)
        return self.key[1:].hex() if self.xonly else self.key.hex()


@lru_cache(maxsize=4096)
def _derive(root: ExtendedKey, path: tuple[int, ...]) -> ExtendedKey:
    """``root`` followed along ``path`` (memoized: ranged keys re-derive the same parent)."""
    if not path:
        return root
    return _derive(root, path[:-1]).child(path[-1])


@dataclass(frozen=True, slots=True)
class BIP32Key(KeyExpression):
    """An extended key, a path below it and, if ranged, how the position is appended."""

    root: ExtendedKey
    path: tuple[int, ...]
    derive: Derive
    apostrophe: bool
    params: NetworkParams

    @property
    def is_range(self) -> bool:
        return self.derive is not Derive.NONE

    @property
    def size(self) -> int:
        return 33

    @property
    def has_private_key(self) -> bool:
        return self.root.secret is not None

    @property
    def is_hardened(self) -> bool:
        """Whether some step needs the private key."""
        return self.derive is Derive.HARDENED or any(i & HARDENED for i in self.path)

    def full_path(self, pos: int) -> tuple[int, ...]:
        """The path from the root to the key at ``pos``."""
        if self.derive is Derive.UNHARDENED:
            return (*self.path, pos)
        if self.derive is Derive.HARDENED:
            return (*self.path, pos | HARDENED)
        return self.path

    def extended(self, pos: int = 0) -> ExtendedKey:
        """The extended key at ``pos`` (private if the root is)."""
        if self.is_range and not 0 <= pos < HARDENED:
            raise DescriptorError(f"range position {pos} is not in 0..2^31-1")
        if self.is_hardened and self.root.secret is None:
            raise DescriptorError(CANNOT_DERIVE)
        path = self.full_path(pos)
        try:
            if self.is_range:
                return _derive(self.root, path[:-1]).child(path[-1])
            return _derive(self.root, path)
        except Bip32Error as error:
            raise DescriptorError(f"Cannot derive key at position {pos}: {error}") from None

    def pubkey(self, pos: int = 0) -> bytes:
        return self.extended(pos).pubkey

    def secret(self, pos: int = 0) -> bytes | None:
        if self.root.secret is None:
            return None
        return self.extended(pos).secret

    def origin(self, pos: int = 0) -> KeyOrigin:
        return KeyOrigin(self.root.fingerprint, self.full_path(pos))

    def to_string(self, private: bool = False) -> str:
        root = self.root if private else self.root.neuter()
        text = root.to_string(self.params) + format_path(self.path, self.apostrophe, prefix="")
        if self.derive is Derive.UNHARDENED:
            text += "/*"
        elif self.derive is Derive.HARDENED:
            text += "/*'" if self.apostrophe else "/*h"
        return text


@dataclass(frozen=True, slots=True)
class OriginKey(KeyExpression):
    """A key with its origin ``[fingerprint/path]`` written in front of it."""

    fingerprint: bytes
    origin_path: tuple[int, ...]
    apostrophe: bool
    inner: KeyExpression

    @property
    def is_range(self) -> bool:
        return self.inner.is_range

    @property
    def size(self) -> int:
        return self.inner.size

    @property
    def has_private_key(self) -> bool:
        return self.inner.has_private_key

    def pubkey(self, pos: int = 0) -> bytes:
        return self.inner.pubkey(pos)

    def secret(self, pos: int = 0) -> bytes | None:
        return self.inner.secret(pos)

    def origin(self, pos: int = 0) -> KeyOrigin:
        inner = self.inner.origin(pos)
        return KeyOrigin(self.fingerprint, (*self.origin_path, *inner.path))

    def to_string(self, private: bool = False) -> str:
        path = format_path(self.origin_path, self.apostrophe, prefix="")
        return f"[{self.fingerprint.hex()}{path}]{self.inner.to_string(private)}"


# -- parsing -----------------------------------------------------------------------------------

_HEX = frozenset("0123456789abcdefABCDEF")
_SPACE = frozenset(" \f\n\r\t\v")


def is_hex(text: str) -> bool:
    """Core's ``IsHex``: a non-empty, even number of hex digits."""
    return bool(text) and len(text) % 2 == 0 and all(c in _HEX for c in text)


def _to_uint32(text: str) -> int | None:
    """Core's ``ToIntegral<uint32_t>``: ASCII digits only, no sign, no spaces, no overflow."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= 0xFFFF_FFFF else None


class _Marker:
    """The hardened marker most recently read (Core's ``apostrophe`` out-parameter)."""

    __slots__ = ("apostrophe",)

    def __init__(self) -> None:
        self.apostrophe = False


def _path_element(elem: str, marker: _Marker) -> int:
    hardened = False
    if elem and elem[-1] in "'h":
        marker.apostrophe = elem[-1] == "'"
        elem = elem[:-1]
        hardened = True
    value = _to_uint32(elem)
    if value is None:
        raise DescriptorError(f"Key path value '{elem}' is not a valid uint32")
    if value > 0x7FFF_FFFF:
        raise DescriptorError(f"Key path value {value} is out of range")
    return value | HARDENED if hardened else value


def _parse_path(elems: list[str], marker: _Marker, allow_multipath: bool) -> list[tuple[int, ...]]:
    """The paths written by ``elems`` (one per multipath branch)."""
    path: list[int] = []
    slot: int | None = None
    values: list[int] = []
    for elem in elems:
        if elem.startswith("<") and elem.endswith(">") and elem:
            if not allow_multipath:
                raise DescriptorError(
                    f"Key path value '{elem}' specifies multipath in a section where "
                    "multipath is not allowed"
                )
            if slot is not None:
                raise DescriptorError("Multiple multipath key path specifiers found")
            nums = elem[1:-1].split(";")
            if len(nums) < 2:
                raise DescriptorError("Multipath key path specifiers must have at least two items")
            for num in nums:
                value = _path_element(num, marker)
                if value in values:
                    raise DescriptorError(
                        f"Duplicated key path value {value} in multipath specifier"
                    )
                values.append(value)
            slot = len(path)
            path.append(0)
        else:
            path.append(_path_element(elem, marker))
    if slot is None:
        return [tuple(path)]
    return [(*path[:slot], v, *path[slot + 1 :]) for v in values]


def _hex_key(text: str, ctx: Context, params: NetworkParams) -> ConstKey:
    data = bytes.fromhex(text)
    expected = {2: 33, 3: 33, 4: 65, 6: 65, 7: 65}.get(data[0]) if data else None
    if expected == len(data):
        if data[0] in (6, 7):
            raise DescriptorError("Hybrid public keys are not allowed")
        if _on_curve(data):
            if ctx in (Context.TOP, Context.P2SH) or len(data) == 33:
                return ConstKey(data, False, params)
            raise DescriptorError("Uncompressed keys are not allowed")
    elif len(data) == 32 and ctx is Context.P2TR and _on_curve(b"\x02" + data):
        return ConstKey(b"\x02" + data, True, params)
    raise DescriptorError(f"Pubkey '{text}' is invalid")


def _on_curve(data: bytes) -> bool:
    try:
        PublicKey(data)
    except (ValueError, TypeError):
        return False
    return True


def _extended(text: str, params: NetworkParams) -> ExtendedKey | None:
    try:
        return ExtendedKey.parse(text, params)
    except Bip32Error:
        return None


def _parse_inner(
    text: str, ctx: Context, params: NetworkParams, marker: _Marker
) -> list[KeyExpression]:
    split = text.split("/")
    head = split[0]
    if not head:
        raise DescriptorError("No key provided")
    if head[0] in _SPACE or head[-1] in _SPACE:
        raise DescriptorError(f"Key '{head}' is invalid due to whitespace")
    if len(split) == 1:
        if is_hex(head):
            return [_hex_key(head, ctx, params)]
        try:
            secret, compressed = decode_wif(head, params)
        except DecodeError:
            pass
        else:
            if not compressed and ctx not in (Context.TOP, Context.P2SH):
                raise DescriptorError("Uncompressed keys are not allowed")
            pub = pubkey_from_secret(secret, compressed)
            return [ConstKey(pub, ctx is Context.P2TR, params, secret)]
    root = _extended(head, params)
    if root is None:
        raise DescriptorError(f"key '{head}' is not valid")
    elems = split[1:]
    derive = Derive.NONE
    if elems and elems[-1] == "*":
        elems.pop()
        derive = Derive.UNHARDENED
    elif elems and elems[-1] in ("*'", "*h"):
        marker.apostrophe = elems[-1] == "*'"
        elems.pop()
        derive = Derive.HARDENED
    paths = _parse_path(elems, marker, allow_multipath=True)
    return [BIP32Key(root, path, derive, marker.apostrophe, params) for path in paths]


def parse_key(text: str, ctx: Context, params: NetworkParams) -> list[KeyExpression]:
    """Parse a key expression in context ``ctx``: one key per multipath branch (usually one).

    Raises :class:`DescriptorError` with Core's message for the first problem found.
    """
    parts = text.split("]")
    if len(parts) > 2:
        raise DescriptorError("Multiple ']' characters found for a single pubkey")
    marker = _Marker()
    if len(parts) == 1:
        return _parse_inner(text, ctx, params, marker)
    origin_text, key_text = parts
    if not origin_text or origin_text[0] != "[":
        found = origin_text[0] if origin_text else "]"
        raise DescriptorError(
            f"Key origin start '[ character expected but not found, got '{found}' instead"
        )
    elems = origin_text[1:].split("/")
    if len(elems[0]) != 8:
        raise DescriptorError(
            f"Fingerprint is not 4 bytes ({len(elems[0])} characters instead of 8 characters)"
        )
    if not is_hex(elems[0]):
        raise DescriptorError(f"Fingerprint '{elems[0]}' is not hex")
    fingerprint = bytes.fromhex(elems[0])
    (origin_path,) = _parse_path(elems[1:], marker, allow_multipath=False)
    inner = _parse_inner(key_text, ctx, params, marker)
    return [OriginKey(fingerprint, origin_path, marker.apostrophe, key) for key in inner]
