"""The mempool as the block assembler's :class:`~peercash.mining.assembler.TemplateSource`: a
thin view of the pool's own cluster set (:attr:`peercash.mempool.pool.MemPool.clusters`, kept
linearised by the pool), served best chunk feerate first.

Layer L2 (mining); built by the RPC layer for a node that has a mempool. The pool keeps its
clusters in step with its entries and ``prioritisetransaction`` deltas, so a template costs the
chunk walk only. ``transactions_updated`` counts the pool's changes seen through its
``on_added``/``on_removed`` listeners.

Concurrency: like the pool, one thread at a time under the node's chain lock (the listeners run
where the pool changes, which holds it too).
"""

from __future__ import annotations

from collections.abc import Iterator

from peercash.consensus.primitives import Tx
from peercash.mempool.pool import MemPool, MempoolEntry, Removal

from .assembler import Chunk, TemplateTx

__all__ = ["PoolTemplateSource"]


class PoolTemplateSource:
    """Chunks of a :class:`MemPool`, read from the pool's cluster set."""

    def __init__(self, pool: MemPool) -> None:
        self.pool = pool
        self._updated = 0
        self._deltas = dict(pool.deltas)
        pool.on_added.append(self._on_added)
        pool.on_removed.append(self._on_removed)

    def close(self) -> None:
        if self._on_added in self.pool.on_added:
            self.pool.on_added.remove(self._on_added)
        if self._on_removed in self.pool.on_removed:
            self.pool.on_removed.remove(self._on_removed)

    def _on_added(self, entry: MempoolEntry) -> None:
        self._updated += 1

    def _on_removed(self, tx: Tx, reason: Removal) -> None:
        self._updated += 1

    def _sync_deltas(self) -> None:
        """A ``prioritisetransaction`` changes the order too (Core bumps its counter)."""
        if self.pool.deltas != self._deltas:
            self._deltas = dict(self.pool.deltas)
            self._updated += 1

    # -- TemplateSource -----------------------------------------------------------------------

    def chunks_by_feerate(self) -> Iterator[Chunk]:
        self._sync_deltas()
        entries = self.pool.entries
        for _, keys in self.pool.clusters.iter_chunks_best_first():
            chunk: list[TemplateTx] = []
            for txid in keys:
                e = entries[txid]
                chunk.append(TemplateTx(e.tx, e.fee, e.sigop_cost, e.weight, e.modified_fee))
            yield chunk

    def transactions_updated(self) -> int:
        self._sync_deltas()
        return self._updated
