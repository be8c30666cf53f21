"""BIP32 hierarchical deterministic keys: extended keys, child derivation, paths, base58 forms.

Layer 3 (wallet), pure. An :class:`ExtendedKey` is immutable; deriving returns a new one. Curve
arithmetic goes through coincurve (libsecp256k1) and ``peercash.consensus.crypto``.

Error contract: everything raises a :class:`Bip32Error` (a ``ValueError``):
:class:`ExtendedKeyDecodeError` (also a ``DecodeError``) for text that is not a valid extended key
of the network asked for, :class:`PathError` for a malformed derivation path, and
:class:`DerivationError` for the (probability below 2^-127) child index that has no valid key,
which BIP32 says to skip. Core does not skip either: it reports the failure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coincurve import PublicKey

from ..consensus.address import SECP256K1_ORDER
from ..consensus.base58 import b58decode_check, b58encode_check
from ..consensus.crypto import pubkey_from_secret
from ..consensus.errors import DecodeError
from ..consensus.hashing import hash160
from ..consensus.params import NetworkParams

__all__ = [
    "HARDENED",
    "Bip32Error",
    "DerivationError",
    "ExtendedKey",
    "ExtendedKeyDecodeError",
    "PathError",
    "format_path",
    "parse_path",
]

HARDENED = 0x8000_0000
"""Child numbers from 2^31 up are hardened: derived from the parent's private key only."""

EXTENDED_KEY_SIZE = 78
"""Bytes in a serialized extended key: version, depth, parent fingerprint, child, chain, key."""

_MASTER_HMAC_KEY = b"Bitcoin seed"


class Bip32Error(ValueError):
    """The root of this module's errors."""


class ExtendedKeyDecodeError(Bip32Error, DecodeError):
    """Text that is not a valid extended key (of the network asked for)."""


class PathError(Bip32Error):
    """A derivation path that does not parse, or a child number out of range."""


class DerivationError(Bip32Error):
    """A child index whose key would be invalid (BIP32: proceed with the next index)."""


def _hmac512(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    digest = hmac.new(key, data, hashlib.sha512).digest()
    return digest[:32], digest[32:]


def _valid_point(pubkey: bytes) -> bool:
    try:
        PublicKey(pubkey)
    except (ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class ExtendedKey:
    """A BIP32 extended key: a key, its chain code and where it sits in the tree.

    ``pubkey`` is always the 33-byte compressed public key; ``secret`` is the 32-byte private key
    for an extended private key and None for an extended public key. ``parent_fingerprint`` is
    the first 4 bytes of the parent's hash160 (zero for a master key); ``child_number`` includes
    the hardened bit.
    """

    depth: int
    parent_fingerprint: bytes
    child_number: int
    chain_code: bytes
    pubkey: bytes
    secret: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.depth <= 0xFF:
            raise Bip32Error(f"depth {self.depth} is not in 0..255")
        if len(self.parent_fingerprint) != 4 or len(self.chain_code) != 32:
            raise Bip32Error("a fingerprint is 4 bytes and a chain code 32 bytes")
        if not 0 <= self.child_number <= 0xFFFF_FFFF:
            raise Bip32Error(f"child number {self.child_number} is not a 32-bit number")
        if len(self.pubkey) != 33:
            raise Bip32Error("an extended key's public key is 33 bytes (compressed)")

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_seed(cls, seed: bytes) -> ExtendedKey:
        """The master key of ``seed`` (BIP32: HMAC-SHA512 keyed with "Bitcoin seed").

        BIP32 asks for 16 to 64 bytes of seed; like Core, any length is accepted here.
        """
        il, ir = _hmac512(_MASTER_HMAC_KEY, bytes(seed))
        if not 0 < int.from_bytes(il, "big") < SECP256K1_ORDER:
            raise DerivationError("this seed gives an invalid master key")
        return cls(0, bytes(4), 0, ir, pubkey_from_secret(il), il)

    @classmethod
    def from_secret(cls, secret: bytes, chain_code: bytes) -> ExtendedKey:
        """A depth-0 extended private key from a raw secret and chain code."""
        return cls(0, bytes(4), 0, chain_code, pubkey_from_secret(secret), secret)

    # -- properties ----------------------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        return self.secret is not None

    @property
    def identifier(self) -> bytes:
        """hash160 of the public key: the key's 20-byte identifier."""
        return hash160(self.pubkey)

    @property
    def fingerprint(self) -> bytes:
        """The first 4 bytes of the identifier (what a child's ``parent_fingerprint`` holds)."""
        return self.identifier[:4]

    @property
    def is_hardened(self) -> bool:
        """Whether this key was reached by a hardened step."""
        return self.child_number >= HARDENED

    def neuter(self) -> ExtendedKey:
        """The extended public key of this key (itself if already public)."""
        if self.secret is None:
            return self
        return ExtendedKey(
            self.depth, self.parent_fingerprint, self.child_number, self.chain_code, self.pubkey
        )

    # -- derivation ----------------------------------------------------------------------------

    def child(self, index: int) -> ExtendedKey:
        """The child at ``index`` (CKDpriv for a private key, CKDpub for a public one).

        Hardened indexes (>= 2^31) need the private key.
        """
        if not 0 <= index <= 0xFFFF_FFFF:
            raise PathError(f"child number {index} is not a 32-bit number")
        if self.depth == 0xFF:
            raise DerivationError("cannot derive below depth 255")
        index_bytes = index.to_bytes(4, "big")
        if index >= HARDENED:
            if self.secret is None:
                raise DerivationError("hardened derivation needs the private key")
            il, ir = _hmac512(self.chain_code, b"\x00" + self.secret + index_bytes)
        else:
            il, ir = _hmac512(self.chain_code, self.pubkey + index_bytes)
        tweak = int.from_bytes(il, "big")
        if tweak >= SECP256K1_ORDER:
            raise DerivationError(f"child {index} is invalid (I_L >= n)")
        if self.secret is not None:
            k = (tweak + int.from_bytes(self.secret, "big")) % SECP256K1_ORDER
            if k == 0:
                raise DerivationError(f"child {index} is invalid (key is zero)")
            secret = k.to_bytes(32, "big")
            return ExtendedKey(
                self.depth + 1,
                self.fingerprint,
                index,
                ir,
                pubkey_from_secret(secret),
                secret,
            )
        try:
            point = PublicKey(self.pubkey).add(il)
        except ValueError:
            raise DerivationError(f"child {index} is invalid (point at infinity)") from None
        return ExtendedKey(self.depth + 1, self.fingerprint, index, ir, point.format(True))

    def derive(self, path: str | Iterable[int]) -> ExtendedKey:
        """Follow a path: a string like ``m/84'/1'/0'/0/5`` or a sequence of child numbers."""
        steps = parse_path(path) if isinstance(path, str) else tuple(path)
        key = self
        for index in steps:
            key = key.child(index)
        return key

    # -- text form -----------------------------------------------------------------------------

    def serialize(self, params: NetworkParams) -> bytes:
        """The 78-byte serialization with ``params``' xprv/xpub (tprv/tpub) version."""
        if self.secret is not None:
            version, key = params.ext_secret_prefix, b"\x00" + self.secret
        else:
            version, key = params.ext_public_prefix, self.pubkey
        return b"".join(
            (
                version,
                bytes((self.depth,)),
                self.parent_fingerprint,
                self.child_number.to_bytes(4, "big"),
                self.chain_code,
                key,
            )
        )

    def to_string(self, params: NetworkParams) -> str:
        """Base58check text: ``xprv…``/``xpub…`` on mainnet, ``tprv…``/``tpub…`` on test networks."""
        return b58encode_check(self.serialize(params))

    @classmethod
    def deserialize(cls, data: bytes, params: NetworkParams) -> ExtendedKey:
        """Parse the 78-byte form, checking it the way BIP32's test vector 5 asks."""
        if len(data) != EXTENDED_KEY_SIZE:
            raise ExtendedKeyDecodeError(
                f"an extended key is {EXTENDED_KEY_SIZE} bytes, not {len(data)}"
            )
        version = data[0:4]
        depth = data[4]
        parent = data[5:9]
        child = int.from_bytes(data[9:13], "big")
        chain = data[13:45]
        key = data[45:78]
        if depth == 0 and parent != bytes(4):
            raise ExtendedKeyDecodeError("a depth-0 key has a non-zero parent fingerprint")
        if depth == 0 and child != 0:
            raise ExtendedKeyDecodeError("a depth-0 key has a non-zero child number")
        if version == params.ext_secret_prefix:
            if key[0] != 0:
                raise ExtendedKeyDecodeError("a private extended key's key data must start 00")
            secret = key[1:]
            if not 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
                raise ExtendedKeyDecodeError("private key is not in 1..n-1")
            return cls(depth, parent, child, chain, pubkey_from_secret(secret), secret)
        if version == params.ext_public_prefix:
            if key[0] not in (2, 3) or not _valid_point(key):
                raise ExtendedKeyDecodeError("public key is not a valid compressed point")
            return cls(depth, parent, child, chain, key)
        raise ExtendedKeyDecodeError(
            f"version {version.hex()} is not an extended key version of {params.name}"
        )

    @classmethod
    def parse(cls, text: str, params: NetworkParams) -> ExtendedKey:
        """Parse base58check ``xprv``/``xpub`` (``tprv``/``tpub``) text for the network ``params``."""
        try:
            data = b58decode_check(text, max_size=EXTENDED_KEY_SIZE)
        except DecodeError as error:
            raise ExtendedKeyDecodeError(f"not base58check extended key text: {error}") from None
        return cls.deserialize(data, params)


def parse_path(text: str) -> tuple[int, ...]:
    """Child numbers of a path such as ``m/84'/1'/0'/0/5`` (``'`` or ``h`` mark hardened steps).

    The leading ``m`` is optional; ``m`` alone is the empty path. Each step is a decimal number
    below 2^31, digits only (no sign, no spaces).
    """
    parts = text.split("/")
    if parts and parts[0] == "m":
        parts = parts[1:]
    return tuple(_parse_step(part) for part in parts)


def _parse_step(part: str) -> int:
    hardened = part.endswith(("'", "h"))
    digits = part[:-1] if hardened else part
    if not digits or not digits.isascii() or not digits.isdigit():
        raise PathError(f"path step {part!r} is not a number")
    value = int(digits)
    if value >= HARDENED:
        raise PathError(f"path step {value} is out of range (must be below 2^31)")
    return value | HARDENED if hardened else value


def format_path(path: Sequence[int], apostrophe: bool = False, prefix: str = "m") -> str:
    """``m/84h/1h/0h/0/5`` (``'`` instead of ``h`` if ``apostrophe``); ``prefix=""`` gives
    ``/84h/1h/0h/0/5``, the form descriptors use."""
    mark = "'" if apostrophe else "h"
    steps = [str(i & ~HARDENED) + mark if i & HARDENED else str(i) for i in path]
    return prefix + "".join("/" + s for s in steps)
