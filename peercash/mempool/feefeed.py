"""What feeds the fee estimator: the pool's additions and removals and the blocks the chain
connects, turned into :class:`~peercash.mempool.fees.BlockPolicyEstimator` calls as Core's
validation interface delivers them (``TransactionAddedToMempool``,
``TransactionRemovedFromMempool``, ``MempoolTransactionsRemovedForBlock``).

Layer 2 (mempool). ``node.py`` builds one :class:`FeeEstimatorFeed` per pool (none with
``-blocksonly``, as Core builds no estimator then), calls :meth:`FeeEstimatorFeed.block_connected`
right after ``MemPool.remove_for_block`` and wraps ``MemPool.add_after_reorg`` in
:meth:`FeeEstimatorFeed.returning_disconnected`.

What counts (Core's ``validForFeeEstimation``): a transaction entering the pool is tracked only
if it was not returned from a disconnected block (those bypass the pool's fee limits), was not
submitted in a package (``submitpackage``, package relay), has no parent in the pool, and the
node is current (``is_current``: not in initial block download, a tip at most three hours old,
no more than one block behind the best header). The estimator itself also skips a transaction
that entered at a height other than the last block it processed. A transaction leaving the pool
for any reason but a block (replaced, conflicted, evicted, expired, removed by a reorg) is a
failure to confirm if it waited a whole period; the ones a block confirmed are collected as they
leave and handed to the estimator with the block's height.

Error contract: nothing here raises for a transaction or a block.

Concurrency contract: the pool's; every call (the listeners, :meth:`block_connected`, the
estimator's queries) is made with the node's chain lock held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from peercash.consensus.primitives import Tx

from .fees import BlockPolicyEstimator, fee_per_kvb
from .pool import MemPool, MempoolEntry, Removal

__all__ = ["MAX_FEE_ESTIMATION_TIP_AGE", "FeeEstimatorFeed"]

log = logging.getLogger("peercash.mempool.fees")

MAX_FEE_ESTIMATION_TIP_AGE = 3 * 60 * 60
"""Seconds: with an older tip the node is not current for fee estimation (Core's
``MAX_FEE_ESTIMATION_TIP_AGE``)."""


class FeeEstimatorFeed:
    """Subscribes ``estimator`` to ``pool``; ``is_current`` is asked at each addition."""

    def __init__(
        self,
        estimator: BlockPolicyEstimator,
        pool: MemPool,
        is_current: Callable[[], bool],
    ) -> None:
        self.estimator = estimator
        self.pool = pool
        self.is_current = is_current
        self._mined: list[bytes] = []
        self._returning = 0
        pool.on_added.append(self._on_added)
        pool.on_removed.append(self._on_removed)

    def close(self) -> None:
        """Stop listening to the pool (idempotent)."""
        if self._on_added in self.pool.on_added:
            self.pool.on_added.remove(self._on_added)
        if self._on_removed in self.pool.on_removed:
            self.pool.on_removed.remove(self._on_removed)

    # -- the pool's events

    def _on_added(self, entry: MempoolEntry) -> None:
        valid = (
            not self._returning
            and not self.pool.adding_package
            and not entry.parents
            and self.is_current()
        )
        # The base fee: prioritisation changes what miners are asked to do, not what it paid.
        self.estimator.process_transaction(
            entry.txid, fee_per_kvb(entry.fee, entry.vsize), entry.height, valid
        )

    def _on_removed(self, tx: Tx, reason: Removal) -> None:
        if reason is Removal.BLOCK:
            self._mined.append(tx.txid)
        else:
            self.estimator.remove_tx(tx.txid)

    # -- the node's events

    def block_connected(self, height: int) -> int:
        """The block at ``height`` joined the best chain and the pool has removed what it
        confirmed: give the estimator the block and those transactions. Returns how many
        tracked transactions it confirmed."""
        mined, self._mined = self._mined, []
        return self.estimator.process_block(height, mined)

    @contextmanager
    def returning_disconnected(self) -> Iterator[None]:
        """Transactions added meanwhile come from disconnected blocks: not tracked."""
        self._returning += 1
        try:
            yield
        finally:
            self._returning -= 1
