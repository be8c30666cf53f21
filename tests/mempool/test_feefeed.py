"""The fee estimator's feed: which pool transactions it tracks (Core's ``validForFeeEstimation``),
what their leaving counts as, and the blocks that confirm them.

A real pool over a regtest chain (``pooltools.Harness``); every block goes through
``remove_for_block`` and then :meth:`FeeEstimatorFeed.block_connected`, as ``node.py`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooltools import Harness, out

from peercash.consensus.primitives import Block, Tx
from peercash.mempool.feefeed import FeeEstimatorFeed
from peercash.mempool.fees import BlockPolicyEstimator, Horizon, bucket_boundaries, fee_per_kvb
from peercash.mempool.pool import Removal

BUCKETS = bucket_boundaries()


@dataclass
class Fed:
    h: Harness
    est: BlockPolicyEstimator
    feed: FeeEstimatorFeed
    current: list[bool]

    def mine(self, txs: list[Tx] | tuple[Tx, ...] = ()) -> Block:
        block = self.h.mine(list(txs))
        self.feed.block_connected(self.h.tip_height)
        return block

    def stats(self, horizon: Horizon = Horizon.SHORT) -> dict[str, list[float]]:
        return self.est.state()["stats"][horizon.value]  # type: ignore[no-any-return]


@pytest.fixture
def f(tmp_path: Path) -> Iterator[Fed]:
    h = Harness(tmp_path / "chain")
    est = BlockPolicyEstimator()
    current = [True]
    feed = FeeEstimatorFeed(est, h.pool, lambda: current[0])
    fed = Fed(h, est, feed, current)
    # A new estimator tracks nothing until it has seen a block (its height must match the
    # pool's): here it catches up with the chain's tip.
    assert feed.block_connected(h.tip_height) == 0
    assert est.best_seen_height == h.tip_height == 130
    yield fed
    h.close()


def bucket_of(tx: Tx, fee: int) -> int:
    rate = fee_per_kvb(fee, tx.vsize())
    return next(i for i, b in enumerate(BUCKETS) if b >= rate)


def test_a_lone_transaction_is_tracked_then_confirmed(f: Fed) -> None:
    tx = f.h.spend([f.h.coin()], fee=20_000)
    assert f.h.pool.accept(tx).allowed
    rate = 20_000 * 1000 // tx.vsize()
    b = bucket_of(tx, 20_000)
    assert f.est.state()["tracked"] == {tx.txid: (130, b, float(rate))}
    assert f.est.tracked_since_block == 1 and f.est.untracked_since_block == 0
    # Another block first: it waits one block more.
    f.mine()
    assert f.est.is_tracked(tx.txid)
    f.mine([tx])
    assert not f.est.is_tracked(tx.txid) and f.est.tracked_count == 0
    short = f.stats()
    # Confirmed in 2 blocks: counted within 2 periods and more, not within 1.
    assert short["confirmed"][0][b] == 0.0 and short["confirmed"][1][b] == 1.0
    assert short["tx_count"][b] == 1.0 and short["feerate_sum"][b] == float(rate)
    assert all(v == 0.0 for row in short["failed"] for v in row)
    assert f.est.first_recorded_height == 132
    f.est.check()


def test_untracked_transactions(f: Fed) -> None:
    h = f.h
    # A child of an in-pool parent: the parent is tracked, the child is not.
    parent = h.spend([h.coin()])
    child = h.spend([out(parent)])
    assert h.pool.accept(parent).allowed and h.pool.accept(child).allowed
    assert f.est.is_tracked(parent.txid) and not f.est.is_tracked(child.txid)
    # Submitted in a package, even a transaction that passes alone: not tracked.
    pkg_parent = h.spend([h.coin()], fee=0, version=3)
    pkg_child = h.spend([out(pkg_parent)], fee=5_000, version=3)
    assert h.pool.accept_package([pkg_parent, pkg_child]).success
    lone = h.spend([h.coin()])
    assert h.pool.accept_package([lone]).success
    assert not h.pool.adding_package
    # The node not current (initial block download, an old tip, behind the headers).
    f.current[0] = False
    behind = h.spend([h.coin()])
    assert h.pool.accept(behind).allowed
    f.current[0] = True
    for tx in (pkg_parent, pkg_child, lone, behind):
        assert h.pool.contains(tx.txid) and not f.est.is_tracked(tx.txid)
    assert (f.est.tracked_since_block, f.est.untracked_since_block) == (1, 5)
    assert f.est.tracked_count == 1
    f.est.check()


def test_a_transaction_from_a_disconnected_block_is_not_tracked(f: Fed) -> None:
    h = f.h
    tx = h.spend([h.coin()])
    block = f.mine([tx])  # mined without passing the pool
    returned: list[Tx] = []
    h.builder.chain.events.transactions_disconnected.append(returned.extend)
    h.builder.chain.invalidate_block(block.hash)
    assert returned == [tx]
    # While the chain is below the estimator's height nothing is tracked (nor counted): Core
    # ignores transactions while out of step with the chain.
    assert (f.est.best_seen_height, h.tip_height) == (131, 130)
    early = h.spend([h.coin()])
    assert h.pool.accept(early).allowed and not f.est.is_tracked(early.txid)
    assert f.est.untracked_since_block == 0
    f.mine()  # a new 131: a height already seen, ignored
    assert f.est.best_seen_height == 131
    f.mine()  # 132: in step again
    # The node returns the disconnected transactions once the new tip is announced: at the
    # estimator's height now, yet not tracked, as they bypassed the pool's fee limits.
    with f.feed.returning_disconnected():
        h.pool.add_after_reorg(returned)
    assert h.pool.contains(tx.txid) and not f.est.is_tracked(tx.txid)
    assert (f.est.tracked_since_block, f.est.untracked_since_block) == (0, 1)
    again = h.spend([h.coin()])
    assert h.pool.accept(again).allowed and f.est.is_tracked(again.txid)
    assert (f.est.tracked_since_block, f.est.untracked_since_block) == (1, 1)


def test_leaving_the_pool_unmined_counts_as_a_failure_after_a_whole_period(f: Fed) -> None:
    h = f.h
    coin = h.coin()
    old = h.spend([coin], fee=10_000)
    quick = h.spend([h.coin()], fee=10_000)
    assert h.pool.accept(old).allowed and h.pool.accept(quick).allowed
    b = bucket_of(old, 10_000)
    assert bucket_of(quick, 10_000) == b
    # Replaced at once: no period waited, no failure.
    quick_rbf = h.spend([quick.inputs[0].prevout], fee=30_000, version=1)
    assert h.pool.accept(quick_rbf).allowed
    assert not f.est.is_tracked(quick.txid) and f.est.is_tracked(quick_rbf.txid)
    assert all(v == 0.0 for row in f.stats()["failed"] for v in row)
    for _ in range(3):
        f.mine()
    # Replaced after 3 blocks: a failure within 1, 2 and 3 blocks on the short horizon
    # (scale 1), within 1 period (2 blocks) on the medium one, none on the long (24 blocks).
    replacement = h.spend([coin], fee=30_000, version=1)
    h.removed.clear()
    assert h.pool.accept(replacement).allowed
    assert h.removed == [(old.txid, Removal.REPLACED)]
    short, medium, long = (f.stats(x) for x in Horizon)
    assert [row[b] for row in short["failed"][:4]] == [1.0, 1.0, 1.0, 0.0]
    assert [row[b] for row in medium["failed"][:2]] == [1.0, 0.0]
    assert all(v == 0.0 for row in long["failed"] for v in row)
    f.est.check()


def test_a_block_conflict_fails_before_the_block_counts(f: Fed) -> None:
    h = f.h
    coin = h.coin()
    loser = h.spend([coin], fee=10_000)
    assert h.pool.accept(loser).allowed
    b = bucket_of(loser, 10_000)
    f.mine()
    winner = h.spend([coin], fee=20_000, version=1)
    f.mine([winner])  # conflicts the pool's spend: removed with the old height (1 block waited)
    short = f.stats()
    # One failure after 1 block; the block's own decay came after it (Core's order: conflicts
    # leave inside removeForBlock, before the estimator processes the block).
    assert short["failed"][0][b] == pytest.approx(0.962, abs=0, rel=1e-15)
    assert short["failed"][1][b] == 0.0
    assert f.est.tracked_count == 0


def test_expiry_and_eviction_are_failures_too(f: Fed) -> None:
    h = f.h
    tx = h.spend([h.coin()], fee=10_000)
    assert h.pool.accept(tx).allowed
    b = bucket_of(tx, 10_000)
    f.mine()
    f.mine()
    assert h.pool.expire(h.now + h.pool.expiry_seconds + 1) == 1
    assert [row[b] for row in f.stats()["failed"][:3]] == [1.0, 1.0, 0.0]
    assert f.est.tracked_count == 0


def test_prioritisation_does_not_change_the_recorded_feerate(f: Fed) -> None:
    h = f.h
    tx = h.spend([h.coin()], fee=1_000)
    h.pool.prioritise(tx.txid, 1_000_000)
    assert h.pool.accept(tx).allowed
    (_, _, rate) = f.est.state()["tracked"][tx.txid]
    assert rate == float(1_000 * 1000 // tx.vsize())


def test_close_stops_the_feed(f: Fed) -> None:
    f.feed.close()
    f.feed.close()  # idempotent
    tx = f.h.spend([f.h.coin()])
    assert f.h.pool.accept(tx).allowed
    assert f.est.tracked_count == 0 and f.est.untracked_since_block == 0
