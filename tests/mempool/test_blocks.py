"""Block connection, reorgs, expiry, the size limit and the rolling minimum fee."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooltools import COIN, P2WSH_OP_TRUE, Harness, out

from peercash.consensus.primitives import Tx, TxOut
from peercash.mempool.chainview import ChainStateView
from peercash.mempool.pool import MemPool, Removal, TxResult


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "chain")
    yield harness
    harness.close()


def test_block_removes_mined_and_conflicting(h: Harness) -> None:
    mined = h.spend([h.coin()])
    child = h.spend([out(mined)])
    coin = h.coin()
    loser = h.spend([coin], fee=10_000)
    loser_child = h.spend([out(loser)])
    for tx in (mined, child, loser, loser_child):
        assert h.pool.accept(tx).allowed
    winner = h.spend([coin], fee=20_000, version=1)  # a different spend of the same coin
    h.removed.clear()
    h.mine([mined, winner])
    assert h.pool.txids() == [child.txid]
    assert h.pool.entry_info(child.txid)["depends"] == []  # its parent is confirmed now
    assert (mined.txid, Removal.BLOCK) in h.removed
    assert {(loser.txid, Removal.CONFLICT), (loser_child.txid, Removal.CONFLICT)} <= set(h.removed)
    assert len(h.removed) == 3
    assert h.pool.spender(coin_outpoint := loser.inputs[0].prevout) is None, coin_outpoint


def test_reorg_returns_transactions(h: Harness) -> None:
    a = h.spend([h.coin()])
    b = h.spend([out(a)])
    assert h.pool.accept(a).allowed and h.pool.accept(b).allowed
    block = h.mine([a])
    assert h.pool.txids() == [b.txid]
    returned: list[list[Tx]] = []
    h.builder.chain.events.transactions_disconnected.append(returned.append)
    h.builder.chain.invalidate_block(block.hash)
    assert returned == [[a]]
    h.pool.add_after_reorg(returned[0])
    assert set(h.pool.txids()) == {a.txid, b.txid}
    assert h.pool.entry_info(b.txid)["depends"] == [a.txid_hex]  # relinked to its parent
    assert h.pool.ancestors(b.txid) == {a.txid}


def test_reorg_drops_what_no_longer_fits(h: Harness) -> None:
    # Spends the youngest coinbase that is mature for the next block: one block lower, it is not.
    young = h.builder.coinbase_out(h.tip_height - 99)
    spend_young = h.spend([young])
    child = h.spend([out(spend_young)])
    assert h.pool.accept(spend_young).allowed and h.pool.accept(child).allowed
    h.removed.clear()
    tip = h.builder.chain.tip
    h.builder.chain.invalidate_block(tip.hash)
    h.pool.add_after_reorg([])
    assert len(h.pool) == 0
    assert set(h.removed) == {(spend_young.txid, Removal.REORG), (child.txid, Removal.REORG)}


def test_reorg_drops_invalid_disconnected_tx_descendants(h: Harness) -> None:
    a = h.spend([h.coin()])
    block = h.mine([a])
    child = h.spend([out(a)])
    assert h.pool.accept(child).allowed
    h.builder.chain.invalidate_block(block.hash)
    # The returned tx no longer fits (say it were refused): its pool child cannot stay.
    h.pool.add_after_reorg([])
    assert len(h.pool) == 0
    assert h.removed[-1] == (child.txid, Removal.REORG)


def test_expiry_after_336_hours(h: Harness) -> None:
    old = h.spend([h.coin()])
    old_child = h.spend([out(old)])
    assert h.pool.accept(old).allowed and h.pool.accept(old_child).allowed
    h.now += 3600
    fresh = h.spend([h.coin()])
    assert h.pool.accept(fresh).allowed
    h.now += 336 * 3600 - 3600
    assert h.pool.expire() == 0  # exactly two weeks old: kept
    h.now += 1
    assert h.pool.expire() == 2
    assert h.pool.txids() == [fresh.txid]
    assert {(old.txid, Removal.EXPIRY), (old_child.txid, Removal.EXPIRY)} <= set(h.removed)


def test_size_limit_evicts_lowest_feerate_package_and_raises_min_fee(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", max_size_bytes=10**9)
    try:
        cheap = h.spend([h.coin()], fee=1_000)
        cheap_child = h.spend([out(cheap)], fee=1_000)
        rich = h.spend([h.coin()], fee=50_000)
        for tx in (cheap, cheap_child, rich):
            assert h.pool.accept(tx).allowed
        usage_rich = h.pool.entry(rich.txid).usage  # type: ignore[union-attr]
        evicted = h.pool.trim_to_size(usage_rich)
        assert set(evicted) == {cheap.txid, cheap_child.txid}
        assert h.pool.txids() == [rich.txid]
        assert (cheap.txid, Removal.SIZELIMIT) in h.removed
        pkg_rate = 2_000 * 1000 // (cheap.vsize() + cheap_child.vsize())
        assert h.pool.min_fee() == pkg_rate + 100
        assert h.pool.info()["mempoolminfee"] == pkg_rate + 100
        low = h.spend([h.coin()], fee=900)
        r = h.pool.accept(low)
        assert r.reject_reason == "mempool min fee not met"
        assert r.result is TxResult.RECONSIDERABLE
        assert r.debug == f"900 < {-(-(pkg_rate + 100) * low.vsize() // 1000)}"
    finally:
        h.close()


def test_rolling_min_fee_decays_after_a_block(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", max_size_bytes=10**9)
    try:
        tx = h.spend([h.coin()], fee=10_000)
        assert h.pool.accept(tx).allowed
        h.pool.trim_to_size(0)
        start = h.pool.min_fee()
        assert start == 10_000 * 1000 // tx.vsize() + 100
        h.now += 3 * 3600
        assert h.pool.min_fee() == start  # no block yet: no decay
        h.mine()
        h.now += 3 * 3600  # the pool is empty (below a quarter full): the half-life is 3 hours
        assert h.pool.min_fee() == round(start / 2)
        h.now += 3 * 3600 * 20
        assert h.pool.min_fee() == 0  # below half the incremental relay fee: reset
    finally:
        h.close()


def test_accept_reports_mempool_full(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", max_size_bytes=1)
    try:
        r = h.pool.accept(h.spend([h.coin()]))
        assert (r.reject_reason, r.result) == ("mempool full", TxResult.MEMPOOL_POLICY)
        assert len(h.pool) == 0
    finally:
        h.close()


def test_block_with_unrelated_transactions_keeps_pool(h: Harness) -> None:
    kept = h.spend([h.coin()])
    assert h.pool.accept(kept).allowed
    other = h.spend([h.coin()], [TxOut(COIN, P2WSH_OP_TRUE)])
    h.mine([other])
    assert h.pool.txids() == [kept.txid]


def test_trimming_spares_a_parent_its_child_pays_for(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", max_size_bytes=10**9)
    try:
        parent = h.spend([h.coin()], fee=1_000)
        child = h.spend([out(parent)], fee=30_000)
        middling = h.spend([h.coin()], fee=5_000)
        rich = h.spend([h.coin()], fee=8_000)
        for tx in (parent, child, middling, rich):
            assert h.pool.accept(tx).allowed
        keep = sum(h.pool.entry(t.txid).usage for t in (parent, child, rich))  # type: ignore[union-attr]
        assert h.pool.trim_to_size(keep) == [middling.txid]
        assert set(h.pool.txids()) == {parent.txid, child.txid, rich.txid}
        keep = sum(h.pool.entry(t.txid).usage for t in (parent, child))  # type: ignore[union-attr]
        # The parent is scored by its package (31,000 sat over both), above rich's own rate.
        assert h.pool.trim_to_size(keep) == [rich.txid]
    finally:
        h.close()


def test_save_orders_a_reorged_parent_before_its_child(h: Harness, tmp_path: Path) -> None:
    a = h.spend([h.coin()])
    block = h.mine([a])
    child = h.spend([out(a)])
    assert h.pool.accept(child).allowed
    h.builder.chain.invalidate_block(block.hash)
    h.pool.add_after_reorg([a])
    assert h.pool.txids() == [child.txid, a.txid]  # entry order: the child came first
    path = tmp_path / "mempool.dat"
    h.pool.save(path)
    fresh = MemPool(ChainStateView(h.builder.chain), clock=lambda: h.now)
    assert fresh.load(path) == 2
