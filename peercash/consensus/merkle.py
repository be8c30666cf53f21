"""Merkle trees of transaction hashes: block roots, witness commitments, branches, BIP37 trees.

Consensus. All hashes are ``bytes`` in wire (internal) order. A level with an odd number of nodes
pairs its last node with itself; that rule is what makes CVE-2012-2459 possible (two different
transaction lists with the same root), so :func:`merkle_root` also reports Core's ``mutated`` flag,
which block validation must treat as an invalid block.

Pure functions: no I/O, no state. Malformed BIP37 partial trees raise ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256 as _sha256
from operator import eq

from .errors import DecodeError
from .hashing import hash256
from .primitives import Block

NULL_HASH = b"\x00" * 32

WITNESS_COMMITMENT_HEADER = bytes.fromhex("6a24aa21a9ed")
"""Consensus: OP_RETURN, push 36, then the BIP141 tag ``aa21a9ed`` that marks the commitment."""

MINIMUM_WITNESS_COMMITMENT = 38
"""Consensus: a commitment output script is at least the 6-byte header plus the 32-byte hash."""

MIN_TRANSACTION_WEIGHT = 4 * 60
"""Consensus: the lightest possible transaction, used to bound a partial tree's leaf count."""

_MAX_BLOCK_WEIGHT = 4_000_000


def _next_level(level: list[bytes]) -> list[bytes]:
    """Hash pairs of one level into the next; an odd last node is paired with itself.

    Double SHA-256 is spelled out inline: a call to ``hash256`` per node costs a third more.
    """
    if len(level) & 1:
        level.append(level[-1])
    sha = _sha256
    pairs = iter(level)
    return [sha(sha(left + right).digest()).digest() for left, right in zip(pairs, pairs)]


def merkle_root(hashes: Sequence[bytes]) -> tuple[bytes, bool]:
    """The merkle root of ``hashes`` and whether the list is *mutated*.

    ``mutated`` is true when, at any level, a node and its right-hand partner are equal before the
    odd-one-out duplication: such a list has the same root as a shorter one (CVE-2012-2459). An
    empty list has the all-zero root.
    """
    if not hashes:
        return NULL_HASH, False
    level = list(hashes)
    mutated = False
    while len(level) > 1:
        if not mutated:
            # Left and right nodes of each full pair (the odd last node has no partner yet).
            mutated = any(map(eq, level[0::2], level[1::2]))
        level = _next_level(level)
    return level[0], mutated


def block_merkle_root(block: Block) -> tuple[bytes, bool]:
    """The root over the block's txids, as the header commits to, and the mutated flag."""
    return merkle_root([tx.txid for tx in block.txs])


def witness_merkle_root(block: Block) -> tuple[bytes, bool]:
    """The root over the block's wtxids, with the coinbase's taken as 32 zero bytes (BIP141)."""
    hashes = [tx.wtxid for tx in block.txs]
    if hashes:
        hashes[0] = NULL_HASH
    return merkle_root(hashes)


def witness_commitment_index(block: Block) -> int | None:
    """Index of the coinbase output holding the witness commitment, or ``None``.

    As Core's ``GetWitnessCommitmentIndex``: the *last* output whose script is at least 38 bytes
    and starts with ``6a24aa21a9ed``.
    """
    if not block.txs:
        return None
    found: int | None = None
    for i, out in enumerate(block.txs[0].outputs):
        script = out.script_pubkey
        if len(script) >= MINIMUM_WITNESS_COMMITMENT and script.startswith(
            WITNESS_COMMITMENT_HEADER
        ):
            found = i
    return found


def compute_witness_commitment(witness_root: bytes, nonce32: bytes) -> bytes:
    """The 32-byte commitment: double SHA-256 of the witness root and the coinbase's nonce."""
    if len(witness_root) != 32 or len(nonce32) != 32:
        raise ValueError("witness root and nonce are 32 bytes each")
    return hash256(witness_root + nonce32)


def witness_commitment_script(commitment: bytes) -> bytes:
    """The coinbase output script that carries ``commitment``."""
    if len(commitment) != 32:
        raise ValueError("a witness commitment is 32 bytes")
    return WITNESS_COMMITMENT_HEADER + commitment


# -- branches ----------------------------------------------------------------------------------


def merkle_branch(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to (not including) the root."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} out of range for {len(hashes)} hashes")
    branch: list[bytes] = []
    level = list(hashes)
    while len(level) > 1:
        sibling = index ^ 1
        branch.append(level[sibling] if sibling < len(level) else level[index])
        level = _next_level(level)
        index >>= 1
    return branch


def merkle_root_from_branch(leaf: bytes, branch: Sequence[bytes], index: int) -> bytes:
    """Fold ``branch`` onto ``leaf``: bit *k* of ``index`` says whether the leaf is on the right."""
    node = leaf
    for sibling in branch:
        node = hash256(sibling + node) if index & 1 else hash256(node + sibling)
        index >>= 1
    return node


# -- BIP37 partial merkle trees ----------------------------------------------------------------


def _tree_width(total: int, height: int) -> int:
    return (total + (1 << height) - 1) >> height


def partial_merkle_root(
    total: int, hashes: Sequence[bytes], flags: bytes
) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Evaluate a BIP37 partial merkle tree (as in a ``merkleblock`` message).

    Returns the root and the matched leaves as ``(position, txid)`` pairs in tree order. Raises
    ``DecodeError`` when the tree is malformed: too many leaves or hashes, not enough flag bits,
    unused hashes or flag bytes, or a node whose two children are equal (CVE-2012-2459).
    """
    if total == 0:
        raise DecodeError("partial merkle tree with no transactions")
    if total > _MAX_BLOCK_WEIGHT // MIN_TRANSACTION_WEIGHT:
        raise DecodeError(f"partial merkle tree claims {total} transactions")
    if len(hashes) > total:
        raise DecodeError("more hashes than transactions in partial merkle tree")
    n_bits = len(flags) * 8
    if n_bits < len(hashes):
        raise DecodeError("fewer flag bits than hashes in partial merkle tree")
    height = 0
    while _tree_width(total, height) > 1:
        height += 1

    bits_used = 0
    hashes_used = 0
    matches: list[tuple[int, bytes]] = []

    def walk(h: int, pos: int) -> bytes:
        nonlocal bits_used, hashes_used
        if bits_used >= n_bits:
            raise DecodeError("partial merkle tree ran out of flag bits")
        parent_of_match = (flags[bits_used >> 3] >> (bits_used & 7)) & 1
        bits_used += 1
        if h == 0 or not parent_of_match:
            if hashes_used >= len(hashes):
                raise DecodeError("partial merkle tree ran out of hashes")
            node = hashes[hashes_used]
            hashes_used += 1
            if h == 0 and parent_of_match:
                matches.append((pos, node))
            return node
        left = walk(h - 1, pos * 2)
        if pos * 2 + 1 < _tree_width(total, h - 1):
            right = walk(h - 1, pos * 2 + 1)
            if right == left:
                raise DecodeError("partial merkle tree has two equal children (mutated)")
        else:
            right = left
        return hash256(left + right)

    root = walk(height, 0)
    if (bits_used + 7) // 8 != len(flags):
        raise DecodeError("partial merkle tree has unused flag bytes")
    if hashes_used != len(hashes):
        raise DecodeError("partial merkle tree has unused hashes")
    return root, matches


def build_partial_merkle_tree(
    txids: Sequence[bytes], matched: Sequence[bool]
) -> tuple[list[bytes], bytes]:
    """The BIP37 ``(hashes, flags)`` proving which of ``txids`` are ``matched`` (one flag each).

    The inverse of :func:`partial_merkle_root`: depth first, a node gets flag 1 when a matched
    leaf lies below it; a node with flag 0, or a leaf, contributes its hash.
    """
    total = len(txids)
    if total == 0 or len(matched) != total:
        raise ValueError("need one match flag per txid, and at least one txid")
    levels = [list(txids)]
    while len(levels[-1]) > 1:
        levels.append(_next_level(list(levels[-1])))
    height = len(levels) - 1
    # covered[h][pos]: whether any matched leaf lies under node (h, pos).
    covered = [list(matched)]
    for h in range(1, height + 1):
        below = covered[-1]
        covered.append(
            [
                below[2 * p] or (2 * p + 1 < len(below) and below[2 * p + 1])
                for p in range(len(levels[h]))
            ]
        )

    hashes: list[bytes] = []
    bits: list[bool] = []

    def walk(h: int, pos: int) -> None:
        flag = covered[h][pos]
        bits.append(flag)
        if h == 0 or not flag:
            hashes.append(levels[h][pos])
            return
        walk(h - 1, pos * 2)
        if pos * 2 + 1 < len(levels[h - 1]):
            walk(h - 1, pos * 2 + 1)

    walk(height, 0)
    flags = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            flags[i >> 3] |= 1 << (i & 7)
    return hashes, bytes(flags)
