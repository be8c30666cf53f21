"""Merkle roots, the mutated flag, branches, witness commitments and BIP37 partial trees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.errors import DecodeError
from peercash.consensus.hashing import hash256
from peercash.consensus.merkle import (
    NULL_HASH,
    build_partial_merkle_tree,
    compute_witness_commitment,
    merkle_branch,
    merkle_root,
    merkle_root_from_branch,
    partial_merkle_root,
    witness_commitment_index,
    witness_commitment_script,
    witness_merkle_root,
)
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut


def h(i: int) -> bytes:
    return hash256(i.to_bytes(4, "little"))


def H(a: bytes, b: bytes) -> bytes:
    return hash256(a + b)


def test_small_trees() -> None:
    a, b, c = h(1), h(2), h(3)
    assert merkle_root([]) == (NULL_HASH, False)
    assert merkle_root([a]) == (a, False)
    assert merkle_root([a, b]) == (H(a, b), False)
    assert merkle_root([a, b, c]) == (H(H(a, b), H(c, c)), False)


def test_mutation_flag() -> None:
    a, b, c = h(1), h(2), h(3)
    assert merkle_root([a, a]) == (H(a, a), True)
    # The odd one out is duplicated without counting as a mutation...
    assert merkle_root([a, b, c])[1] is False
    # ...but the same list written out in full is one.
    assert merkle_root([a, b, c, c]) == (merkle_root([a, b, c])[0], True)
    assert merkle_root([a, a, b])[1] is True
    # Equal nodes one level up.
    assert merkle_root([a, b, a, b])[1] is True
    assert merkle_root([a, b, b, a])[1] is False


@pytest.mark.parametrize("n", [*range(1, 18), 33, 100])
def test_branches(n: int) -> None:
    hashes = [h(i) for i in range(n)]
    root, _ = merkle_root(hashes)
    for index in range(n):
        branch = merkle_branch(hashes, index)
        assert len(branch) == (n - 1).bit_length()
        assert merkle_root_from_branch(hashes[index], branch, index) == root
    with pytest.raises(IndexError):
        merkle_branch(hashes, n)


def coinbase_with(scripts: list[bytes], nonce: bytes | None = None) -> Tx:
    witness = (nonce,) if nonce is not None else ()
    txin = TxIn(OutPoint(NULL_HASH, 0xFFFFFFFF), b"\x01\x01", 0xFFFFFFFF, witness)
    return Tx(1, [txin], [TxOut(0, s) for s in scripts])


def test_witness_commitment_index_picks_last_valid() -> None:
    good = witness_commitment_script(b"\x11" * 32)
    good2 = witness_commitment_script(b"\x22" * 32) + b"extra"
    short = good[:37]
    wrong_tag = bytes.fromhex("6a24aa21a9ee") + b"\x00" * 32
    header = Header(1, NULL_HASH, NULL_HASH, 0, 0, 0)
    cases = [
        ([], None),
        ([b"\x51"], None),
        ([short, wrong_tag], None),
        ([good], 0),
        ([good, b"\x51"], 0),
        ([good, good2, short], 1),
        ([good2, wrong_tag, good], 2),
    ]
    for scripts, expected in cases:
        block = Block(header, [coinbase_with(scripts)])
        assert witness_commitment_index(block) == expected, scripts
    assert witness_commitment_index(Block(header, [])) is None


def test_witness_commitment_roundtrip() -> None:
    nonce = b"\x00" * 32
    spend = Tx(2, [TxIn(OutPoint(h(9), 0), b"", 0, [b"\x01", b"\x02"])], [TxOut(1, b"\x51")])
    # Build the coinbase once to learn the root (the coinbase's wtxid does not enter it).
    draft = Block(Header(1, NULL_HASH, NULL_HASH, 0, 0, 0), [coinbase_with([], nonce), spend])
    root, mutated = witness_merkle_root(draft)
    assert root == H(NULL_HASH, spend.wtxid)
    assert not mutated
    commitment = compute_witness_commitment(root, nonce)
    assert commitment == hash256(root + nonce)
    cb = coinbase_with([b"\x51", witness_commitment_script(commitment)], nonce)
    block = Block(draft.header, [cb, spend])
    index = witness_commitment_index(block)
    assert index == 1
    assert block.txs[0].outputs[index].script_pubkey[6:] == commitment
    with pytest.raises(ValueError):
        compute_witness_commitment(root, b"short")
    with pytest.raises(ValueError):
        witness_commitment_script(b"short")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 64, 100])
def test_partial_tree_roundtrip(n: int) -> None:
    txids = [h(i) for i in range(n)]
    root, _ = merkle_root(txids)
    patterns = [
        [False] * n,
        [True] * n,
        [i == 0 for i in range(n)],
        [i == n - 1 for i in range(n)],
        [i % 3 == 1 for i in range(n)],
    ]
    for matched in patterns:
        hashes, flags = build_partial_merkle_tree(txids, matched)
        got_root, matches = partial_merkle_root(n, hashes, flags)
        assert got_root == root
        assert matches == [(i, txids[i]) for i in range(n) if matched[i]]


def test_partial_tree_rejects_malformed() -> None:
    txids = [h(i) for i in range(7)]
    matched = [i in (2, 5) for i in range(7)]
    hashes, flags = build_partial_merkle_tree(txids, matched)
    partial_merkle_root(7, hashes, flags)
    bad = [
        (0, [], b"\x00"),  # no transactions
        (1_000_000, hashes, flags),  # more than a block can hold
        (2, hashes, flags),  # more hashes than transactions
        (7, hashes, b""),  # fewer flag bits than hashes
        (7, hashes, flags + b"\x00"),  # an unused flag byte
        (7, [*hashes, h(99)], flags),  # an unused hash
        (7, hashes[:-1], flags),  # runs out of hashes
        (7, hashes, b"\xff" * len(flags)),  # flag bits describe another shape
    ]
    for total, hs, fl in bad:
        with pytest.raises(DecodeError):
            partial_merkle_root(total, hs, fl)


def test_partial_tree_rejects_equal_children() -> None:
    # Two leaves, both matched and equal: the CVE-2012-2459 shape.
    a = h(1)
    with pytest.raises(DecodeError, match="mutated"):
        partial_merkle_root(2, [a, a], b"\x07")
    # The odd leaf of three is paired with itself legitimately.
    txids = [h(1), h(2), h(3)]
    hashes, flags = build_partial_merkle_tree(txids, [False, False, True])
    assert partial_merkle_root(3, hashes, flags) == (merkle_root(txids)[0], [(2, txids[2])])


def test_build_partial_tree_arguments() -> None:
    with pytest.raises(ValueError):
        build_partial_merkle_tree([], [])
    with pytest.raises(ValueError):
        build_partial_merkle_tree([h(1)], [])


def _plain_merkle_root(hashes: list[bytes]) -> tuple[bytes, bool]:
    """Core's ComputeMerkleRoot, pair by pair."""
    if not hashes:
        return b"\x00" * 32, False
    level, mutated = list(hashes), False
    while len(level) > 1:
        for i in range(0, len(level) - 1, 2):
            mutated = mutated or level[i] == level[i + 1]
        if len(level) % 2:
            level.append(level[-1])
        level = [hash256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0], mutated


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([bytes([i]) * 32 for i in range(4)]), max_size=12))
def test_merkle_root_equals_plain_definition(hashes: list[bytes]) -> None:
    assert merkle_root(hashes) == _plain_merkle_root(hashes)
