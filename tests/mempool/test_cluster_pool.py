"""The pool on its cluster set (Core 31): clusters follow the entries, eviction takes the worst
chunk, a reorg that grows a cluster past the limits trims it, templates read the pool's own
chunks, and package RBF is judged by the feerate diagram."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooltools import COIN, P2WSH_OP_TRUE, Harness, out, value_of

from peercash.consensus.primitives import TxOut
from peercash.mempool.pool import Removal, TxResult


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "chain", max_size_bytes=10**9)
    yield harness
    harness.close()


def usage(h: Harness, *txs: object) -> int:
    return sum(h.pool.entries[t.txid].usage for t in txs)  # type: ignore[attr-defined]


def test_eviction_takes_the_worst_chunk_and_keeps_the_rest_of_its_cluster(h: Harness) -> None:
    parent = h.spend([h.coin()], fee=1_000)
    child = h.spend([out(parent)], fee=30_000)  # parent and child: one chunk
    rest = value_of(h, out(child)) - 19_000 - 2_000
    tail = h.spend([out(child)], [TxOut(1_000, P2WSH_OP_TRUE)] * 19 + [TxOut(rest, P2WSH_OP_TRUE)])
    assert h.builder.outputs[out(child)].value - sum(o.value for o in tail.outputs) == 2_000
    other = h.spend([h.coin()], fee=5_000)
    for tx in (parent, child, tail, other):
        assert h.pool.accept(tx).allowed
    chunks = h.pool.clusters.cluster_chunks(parent.txid)
    assert [keys for _, keys in chunks] == [[parent.txid, child.txid], [tail.txid]]
    assert h.pool.trim_to_size(usage(h, parent, child, other)) == [tail.txid]
    assert (tail.txid, Removal.SIZELIMIT) in h.removed
    tail_rate = 2_000 * 1000 // -(-tail.weight() // 4)
    assert h.pool.min_fee() == tail_rate + 100
    assert set(h.pool.txids()) == {parent.txid, child.txid, other.txid}
    # Next worst: other (5,000 sat) is below the parent-and-child chunk (31,000 sat).
    assert h.pool.trim_to_size(usage(h, parent, child)) == [other.txid]
    # Then the whole chunk goes at once, and the rolling fee is that chunk's feerate.
    assert h.pool.trim_to_size(0) == [parent.txid, child.txid]
    pair = 31_000 * 1000 // -(-(parent.weight() + child.weight()) // 4)
    assert h.pool.min_fee() == pair + 100 and len(h.pool) == 0


def test_a_reorg_that_grows_a_cluster_past_the_limit_trims_it(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", cluster_limit=3)
    try:
        a = h.spend([h.coin()])
        block = h.mine([a])
        b = h.spend([out(a)])
        c = h.spend([out(b)])
        d = h.spend([out(c)])
        for tx in (b, c, d):
            assert h.pool.accept(tx).allowed
        h.builder.chain.invalidate_block(block.hash)
        h.pool.add_after_reorg([a])  # a, b, c, d would be four in a cluster of at most three
        assert set(h.pool.txids()) == {a.txid, b.txid, c.txid}
        assert (d.txid, Removal.SIZELIMIT) in h.removed
        assert h.pool.clusters.cluster_of(a.txid) == [a.txid, b.txid, c.txid]
        assert h.pool.entry_info(b.txid)["depends"] == [a.txid_hex]
    finally:
        h.close()


def test_cluster_size_limit_in_adjusted_weight(tmp_path: Path) -> None:
    """-limitclustersize counts sigop-adjusted weight against kvB times 4000."""
    h = Harness(tmp_path / "chain", cluster_size_limit_kvb=1)
    try:
        parent = h.split(h.coin(), 10)  # about 500 vB
        assert h.pool.accept(parent).allowed
        w = h.pool.entries[parent.txid].adjusted_weight
        assert w == parent.weight() and 1_600 < w < 4_000
        room = 4_000 - w
        small = h.spend([out(parent, 0)])
        assert small.weight() <= room and h.pool.accept(small).allowed
        room -= small.weight()
        big = h.spend([out(parent, 1)], [TxOut(1_000, P2WSH_OP_TRUE)] * 12)  # the rest is fee
        assert big.weight() > room
        r = h.pool.accept(big)
        assert (r.reject_reason, r.debug, r.result) == (
            "too-large-cluster",
            "",
            TxResult.MEMPOOL_POLICY,
        )
    finally:
        h.close()


def test_replacement_may_not_grow_a_cluster_past_the_limit(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", cluster_limit=3)
    try:
        fan = h.split(h.coin(), 3)
        first = h.spend([out(fan, 0)])
        second = h.spend([out(fan, 1)])
        for tx in (fan, first, second):
            assert h.pool.accept(tx).allowed
        coin = h.coin()
        original = h.spend([coin])
        assert h.pool.accept(original).allowed
        # Replaces original but joins fan's full cluster through fan's third output.
        joiner = h.spend([coin, out(fan, 2)], fee=10 * COIN)
        r = h.pool.accept(joiner)
        assert (r.reject_reason, r.result) == ("too-large-cluster", TxResult.MEMPOOL_POLICY)
        # Replacing one of fan's children instead keeps the cluster at three.
        swap = h.spend([out(fan, 1), out(fan, 2)], fee=50_000)
        r = h.pool.accept(swap)
        assert r.allowed and [t.txid for t in r.replaced] == [second.txid]
        assert h.pool.cluster(fan.txid) == {fan.txid, first.txid, swap.txid}
    finally:
        h.close()


# -- package RBF -------------------------------------------------------------------------------


def package(h: Harness, coin: object, parent_fee: int, child_fee: int) -> tuple:  # type: ignore[type-arg]
    parent = h.spend([coin], fee=parent_fee)  # type: ignore[list-item]
    child = h.spend([out(parent)], fee=child_fee)
    return parent, child


def test_package_rbf_replaces_by_the_diagram(h: Harness) -> None:
    coin = h.coin()
    first = h.spend([coin], fee=5_000)
    assert h.pool.accept(first).allowed
    parent, child = package(h, coin, 1_000, 40_000)
    alone = h.pool.accept(parent)
    assert (alone.reject_reason, alone.result) == ("insufficient fee", TxResult.RECONSIDERABLE)
    res = h.pool.accept_package([parent, child])
    assert res.package_msg == "success", res.package_msg
    assert set(h.pool.txids()) == {parent.txid, child.txid}
    assert [t.txid for t in res.replaced] == [first.txid]
    assert (first.txid, Removal.REPLACED) in h.removed
    rate = 41_000 * 1000 // (parent.vsize() + child.vsize())
    for tx in (parent, child):
        r = res.results[tx.wtxid]
        assert r.allowed and r.effective_feerate == rate
        assert r.effective_includes == [parent.wtxid, child.wtxid]


def test_package_rbf_failures(h: Harness) -> None:
    coin = h.coin()
    first_parent, first_child = package(h, coin, 1_000, 30_000)
    assert h.pool.accept_package([first_parent, first_child]).success
    # Fewer fees than the package it would replace.
    parent, child = package(h, coin, 1_100, 29_000)
    res = h.pool.accept_package([parent, child])
    assert res.package_msg == (
        "package RBF failed: insufficient anti-DoS fees, rejecting replacement "
        f"{child.txid_hex}, less fees than conflicting txs; 0.000301 < 0.00031"
    )
    # The child must raise the package above the parent's own feerate.
    parent, child = package(h, coin, 20_000, 12_000)  # the parent alone pays too little
    assert h.pool.accept(parent).reject_reason == "insufficient fee"
    res = h.pool.accept_package([parent, child])
    prate = 20_000 * 1000 // parent.vsize()
    pkg = 32_000 * 1000 // (parent.vsize() + child.vsize())
    assert res.package_msg == (
        "package RBF failed: package feerate is less than or equal to parent feerate, "
        f"package feerate 0.{pkg:08d} BTC/kvB <= parent feerate is 0.{prate:08d} BTC/kvB"
    )
    # More fees, but spread over a big child: the diagram is not better.
    parent = h.spend([coin], fee=500)
    rest = value_of(h, out(parent)) - 79 * 10_000 - 33_000
    child = h.spend(
        [out(parent)], [TxOut(10_000, P2WSH_OP_TRUE)] * 79 + [TxOut(rest, P2WSH_OP_TRUE)]
    )
    res = h.pool.accept_package([parent, child])
    assert res.package_msg == (
        "package RBF failed: insufficient feerate: does not improve feerate diagram"
    )
    assert set(h.pool.txids()) == {first_parent.txid, first_child.txid}
    # A parent with a pool parent of its own may not replace as a package.
    base = h.spend([h.coin()], [TxOut(COIN, P2WSH_OP_TRUE)] * 2)
    assert h.pool.accept(base).allowed
    target = h.spend([out(base, 0)], fee=5_000)
    assert h.pool.accept(target).allowed
    p2 = h.spend([out(base, 0)], fee=1_000)
    c2 = h.spend([out(p2)], fee=50_000)
    res = h.pool.accept_package([p2, c2])
    assert res.package_msg == "package RBF failed: new transaction cannot have mempool ancestors"
    assert target.txid in h.pool.entries and value_of(h, out(base, 1)) == COIN
