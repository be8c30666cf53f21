"""Hash functions of the protocol. SHA-256 comes from hashlib at C speed.

RIPEMD-160 needs OpenSSL's legacy provider, which some systems lack; we detect that once at import
and fall back to pycryptodome's implementation rather than a hand-written one.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

_sha256 = hashlib.sha256


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


def hash256(data: bytes) -> bytes:
    """Double SHA-256: txids, block hashes, checksums (wire byte order)."""
    return _sha256(_sha256(data).digest()).digest()


def _pick_ripemd160() -> Callable[[bytes], bytes]:
    try:
        hashlib.new("ripemd160", b"")
    except ValueError:  # pragma: no cover - depends on the OpenSSL build
        from Crypto.Hash import RIPEMD160  # type: ignore[import-not-found,import-untyped,unused-ignore]

        def ripemd(data: bytes) -> bytes:
            return bytes(RIPEMD160.new(data).digest())

        return ripemd

    # Copying a ready object is twice as fast as hashlib.new(), which looks the name up each time.
    blank = hashlib.new("ripemd160")

    def ripemd_hashlib(data: bytes) -> bytes:
        h = blank.copy()
        h.update(data)
        return h.digest()

    return ripemd_hashlib


ripemd160 = _pick_ripemd160()
_ripemd160 = ripemd160


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: public key and script hashes."""
    return _ripemd160(_sha256(data).digest())


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


@functools.lru_cache(maxsize=64)
def _tag_prefix(tag: str) -> bytes:
    tag_hash = _sha256(tag.encode()).digest()
    return tag_hash + tag_hash


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || data)."""
    return _sha256(_tag_prefix(tag) + data).digest()


def tagged_hasher(tag: str) -> hashlib._Hash:
    """A SHA-256 object already fed the tag prefix, for incremental tagged hashing."""
    return _sha256(_tag_prefix(tag))
