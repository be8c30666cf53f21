"""Taproot commitments (BIP341): leaf and branch hashes, tweaks, control blocks, script trees.

Layer 0 (consensus). The interpreter calls ``tapleaf_hash`` and ``verify_taproot_commitment`` for
script-path spends; wallets, builders and tests use the key tweaks and ``taproot_output``. The
curve operations go through ``peercash.consensus.crypto`` (libsecp256k1).

Error contract: ``verify_taproot_commitment`` answers False for anything malformed. The builders
and tweak helpers raise ``ValueError`` on bad keys, trees or leaf versions.

Concurrency: pure functions and immutable results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..crypto import (
    tweak_secret_xonly,
    xonly_from_secret,
    xonly_tweak_add,
    xonly_tweak_add_check,
)
from ..hashing import tagged_hash
from ..serialize import compact_size

__all__ = [
    "ANNEX_TAG",
    "TAPROOT_CONTROL_BASE_SIZE",
    "TAPROOT_CONTROL_MAX_NODE_COUNT",
    "TAPROOT_CONTROL_MAX_SIZE",
    "TAPROOT_CONTROL_NODE_SIZE",
    "TAPROOT_LEAF_MASK",
    "TAPROOT_LEAF_TAPSCRIPT",
    "TapLeaf",
    "TaprootOutput",
    "compute_taproot_merkle_root",
    "tapbranch_hash",
    "tapleaf_hash",
    "taproot_output",
    "taptweak_hash",
    "tweak_private_key",
    "tweak_public_key",
    "verify_taproot_commitment",
]

TAPROOT_LEAF_MASK = 0xFE
"""Consensus: the control block's first byte, masked, is the leaf version (low bit: parity)."""
TAPROOT_LEAF_TAPSCRIPT = 0xC0
"""Consensus: the leaf version of BIP342 tapscript."""
TAPROOT_CONTROL_BASE_SIZE = 33
"""Consensus: leaf version/parity byte plus the 32-byte internal key."""
TAPROOT_CONTROL_NODE_SIZE = 32
TAPROOT_CONTROL_MAX_NODE_COUNT = 128
TAPROOT_CONTROL_MAX_SIZE = (
    TAPROOT_CONTROL_BASE_SIZE + TAPROOT_CONTROL_NODE_SIZE * TAPROOT_CONTROL_MAX_NODE_COUNT
)
ANNEX_TAG = 0x50
"""Consensus: a last witness element starting with this byte (with 2+ elements) is the annex."""


# -- hashes ------------------------------------------------------------------------------------

_sha256 = hashlib.sha256


def _tag(name: str) -> bytes:
    """The 64-byte prefix of a BIP340 tagged hash (the tag's SHA-256, twice)."""
    h = _sha256(name.encode()).digest()
    return h + h


# Script-path spends hash all three for every input: the prefixes are spelled out once here
# (the same values ``tagged_hash`` computes).
_TAPLEAF = _tag("TapLeaf")
_TAPBRANCH = _tag("TapBranch")
_TAPTWEAK = _tag("TapTweak")


def tapleaf_hash(leaf_version: int, script: bytes) -> bytes:
    """``TapLeaf`` tagged hash of the leaf version and the length-prefixed script."""
    n = len(script)
    size = bytes((n,)) if n < 0xFD else compact_size(n)
    return _sha256(b"".join((_TAPLEAF, bytes((leaf_version,)), size, script))).digest()


def tapbranch_hash(a: bytes, b: bytes) -> bytes:
    """``TapBranch`` tagged hash of two child hashes, smaller first (so order does not matter)."""
    return _sha256(_TAPBRANCH + a + b if a < b else _TAPBRANCH + b + a).digest()


def taptweak_hash(internal_xonly: bytes, merkle_root: bytes | None) -> bytes:
    """``TapTweak`` tagged hash of the internal key and the script tree's root (if any)."""
    if merkle_root is None:
        return tagged_hash("TapTweak", internal_xonly)
    return _sha256(_TAPTWEAK + internal_xonly + merkle_root).digest()


def _control_size_ok(size: int) -> bool:
    return (
        TAPROOT_CONTROL_BASE_SIZE <= size <= TAPROOT_CONTROL_MAX_SIZE
        and (size - TAPROOT_CONTROL_BASE_SIZE) % TAPROOT_CONTROL_NODE_SIZE == 0
    )


def compute_taproot_merkle_root(control_block: bytes, tapleaf_hash: bytes) -> bytes:
    """Climb from a leaf hash to the root along the control block's path."""
    size = len(control_block)
    if not _control_size_ok(size):
        raise ValueError(f"a control block cannot be {size} bytes long")
    node = tapleaf_hash
    for pos in range(TAPROOT_CONTROL_BASE_SIZE, size, TAPROOT_CONTROL_NODE_SIZE):
        sibling = control_block[pos : pos + TAPROOT_CONTROL_NODE_SIZE]
        # tapbranch_hash, inlined: one per path node of every script-path spend
        node = _sha256(
            _TAPBRANCH + node + sibling if node < sibling else _TAPBRANCH + sibling + node
        ).digest()
    return node


def verify_taproot_commitment(control_block: bytes, program: bytes, tapleaf_hash: bytes) -> bool:
    """Whether the 32-byte witness ``program`` commits to the leaf through ``control_block``.

    The output key must be the control block's internal key tweaked with the root of the path,
    with the Y parity in the control block's low bit (Core's ``VerifyTaprootCommitment``).
    """
    size = len(control_block)
    if len(program) != 32 or not _control_size_ok(size):
        return False
    internal = control_block[1:TAPROOT_CONTROL_BASE_SIZE]
    root = compute_taproot_merkle_root(control_block, tapleaf_hash)
    tweak = _sha256(_TAPTWEAK + internal + root).digest()
    return xonly_tweak_add_check(internal, tweak, program, control_block[0] & 1)


# -- key tweaks --------------------------------------------------------------------------------


def tweak_public_key(internal_xonly: bytes, merkle_root: bytes | None) -> tuple[bytes, int]:
    """The output key ``Q = P + H_TapTweak(P || root)·G``: (x-only Q, parity of Q's Y)."""
    return xonly_tweak_add(internal_xonly, taptweak_hash(internal_xonly, merkle_root))


def tweak_private_key(secret32: bytes, merkle_root: bytes | None) -> bytes:
    """The secret for the output key of ``tweak_public_key`` (BIP341's ``taproot_tweak_seckey``)."""
    internal = xonly_from_secret(secret32)
    return tweak_secret_xonly(secret32, taptweak_hash(internal, merkle_root))


# -- script trees ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TapLeaf:
    """One script of a taproot tree."""

    script: bytes
    leaf_version: int = TAPROOT_LEAF_TAPSCRIPT

    @property
    def hash(self) -> bytes:
        return tapleaf_hash(self.leaf_version, self.script)


TapTree: TypeAlias = "TapLeaf | Mapping[str, Any] | Sequence[TapTree] | None"
"""A script tree: None (key path only), a leaf, or a pair ``[left, right]`` of trees.

A leaf is a ``TapLeaf`` or a mapping in the BIP341 wallet vectors' form,
``{"script": hex, "leafVersion": int}`` (other keys ignored).
"""


@dataclass(frozen=True, slots=True)
class TaprootOutput:
    """A taproot output built from an internal key and a script tree.

    ``leaves``, ``leaf_hashes`` and ``control_blocks`` run through the tree's leaves depth first,
    left to right (the order of the BIP341 wallet vectors).
    """

    internal_key: bytes
    merkle_root: bytes | None
    tweak: bytes
    output_key: bytes
    parity: int
    leaves: tuple[TapLeaf, ...]
    leaf_hashes: tuple[bytes, ...]
    control_blocks: tuple[bytes, ...]

    @property
    def script_pubkey(self) -> bytes:
        return b"\x51\x20" + self.output_key

    def control_block_for(self, script: bytes, leaf_version: int = TAPROOT_LEAF_TAPSCRIPT) -> bytes:
        """The control block of the first leaf with this script and version."""
        for leaf, control in zip(self.leaves, self.control_blocks):
            if leaf.script == script and leaf.leaf_version == leaf_version:
                return control
        raise KeyError("no such leaf in the tree")


def _as_leaf(node: Any) -> TapLeaf | None:
    if isinstance(node, TapLeaf):
        leaf = node
    elif isinstance(node, Mapping):
        script = node["script"]
        if isinstance(script, str):
            script = bytes.fromhex(script)
        leaf = TapLeaf(bytes(script), int(node.get("leafVersion", TAPROOT_LEAF_TAPSCRIPT)))
    else:
        return None
    v = leaf.leaf_version
    if not 0 <= v <= 0xFF or v & ~TAPROOT_LEAF_MASK or v == ANNEX_TAG:
        raise ValueError(f"invalid leaf version {v:#x}")
    return leaf


def _walk(node: Any, depth: int, out: list[tuple[TapLeaf, bytes, list[bytes]]]) -> bytes:
    """Hash a subtree, appending (leaf, leaf hash, path so far) for each of its leaves.

    Each leaf's path lists the sibling hashes from the leaf upwards, so a subtree's sibling is
    appended to the paths of every leaf under it.
    """
    leaf = _as_leaf(node)
    if leaf is not None:
        h = leaf.hash
        out.append((leaf, h, []))
        return h
    if isinstance(node, (str, bytes)) or not isinstance(node, Sequence) or len(node) != 2:
        raise ValueError("a taproot tree branch is a pair [left, right]")
    if depth >= TAPROOT_CONTROL_MAX_NODE_COUNT:
        raise ValueError("taproot tree deeper than 128 levels")
    first = len(out)
    left = _walk(node[0], depth + 1, out)
    middle = len(out)
    right = _walk(node[1], depth + 1, out)
    for i in range(first, middle):
        out[i][2].append(right)
    for i in range(middle, len(out)):
        out[i][2].append(left)
    return tapbranch_hash(left, right)


def taproot_output(internal_xonly: bytes, tree: TapTree) -> TaprootOutput:
    """Build the output for ``internal_xonly`` and ``tree`` as BIP341's construction does."""
    if len(internal_xonly) != 32:
        raise ValueError("an internal key is 32 bytes")
    entries: list[tuple[TapLeaf, bytes, list[bytes]]] = []
    root = None if tree is None else _walk(tree, 0, entries)
    tweak = taptweak_hash(internal_xonly, root)
    output_key, parity = xonly_tweak_add(internal_xonly, tweak)
    return TaprootOutput(
        internal_key=bytes(internal_xonly),
        merkle_root=root,
        tweak=tweak,
        output_key=output_key,
        parity=parity,
        leaves=tuple(leaf for leaf, _, _ in entries),
        leaf_hashes=tuple(h for _, h, _ in entries),
        control_blocks=tuple(
            bytes((leaf.leaf_version | parity,)) + internal_xonly + b"".join(path)
            for leaf, _, path in entries
        ),
    )
