"""The mempool as the block assembler's :class:`~peercash.mining.assembler.TemplateSource`: its
transactions grouped into clusters, each linearised and cut into chunks
(:class:`peercash.mempool.cluster.ClusterSet`), served best chunk feerate first.

Layer L2 (mining); built by the RPC layer for a node that has a mempool. The cluster set follows
the pool through its ``on_added``/``on_removed`` listeners, so a template costs the chunk walk
only; ``prioritisetransaction`` deltas are picked up when a template is asked for.

Concurrency: like the pool, one thread at a time under the node's chain lock (the listeners run
where the pool changes, which holds it too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from peercash.consensus.primitives import Tx
from peercash.mempool.cluster import ClusterSet
from peercash.mempool.pool import MemPool, MempoolEntry, Removal

from .assembler import Chunk, TemplateTx

__all__ = ["PoolTemplateSource"]

_NO_LIMIT = 1 << 62
"""The pool enforces its own cluster limits; here nothing may be refused."""


class PoolTemplateSource:
    """Chunks of a :class:`MemPool`, kept current as the pool changes."""

    def __init__(self, pool: MemPool) -> None:
        self.pool = pool
        self._clusters: ClusterSet[bytes] = ClusterSet(max_count=_NO_LIMIT, max_vsize=_NO_LIMIT)
        self._fees: dict[bytes, int] = {}
        self._updated = 0
        for entry in self._topological(pool.entries.values()):
            self._add(entry)
        pool.on_added.append(self._on_added)
        pool.on_removed.append(self._on_removed)

    def close(self) -> None:
        if self._on_added in self.pool.on_added:
            self.pool.on_added.remove(self._on_added)
        if self._on_removed in self.pool.on_removed:
            self.pool.on_removed.remove(self._on_removed)

    @staticmethod
    def _topological(entries: Iterable[MempoolEntry]) -> Iterator[MempoolEntry]:
        by_txid = {e.txid: e for e in entries}
        done: set[bytes] = set()
        for start in list(by_txid):
            stack = [start]
            while stack:
                txid = stack[-1]
                if txid in done:
                    stack.pop()
                    continue
                waiting = [p for p in by_txid[txid].parents if p in by_txid and p not in done]
                if waiting:
                    stack.extend(waiting)
                    continue
                done.add(txid)
                stack.pop()
                yield by_txid[txid]

    def _add(self, entry: MempoolEntry) -> None:
        txid = entry.txid
        if txid in self._clusters:
            return
        parents = [p for p in entry.parents if p in self._clusters]
        self._clusters.add(txid, entry.modified_fee, entry.vsize, parents)
        self._fees[txid] = entry.modified_fee
        self._updated += 1

    def _on_added(self, entry: MempoolEntry) -> None:
        self._add(entry)

    def _on_removed(self, tx: Tx, reason: Removal) -> None:
        txid = tx.txid
        if txid in self._clusters:
            self._clusters.remove(txid)
            self._fees.pop(txid, None)
        self._updated += 1

    def _sync_deltas(self) -> None:
        entries = self.pool.entries
        for txid, fee in list(self._fees.items()):
            e = entries.get(txid)
            if e is not None and e.modified_fee != fee:
                self._clusters.set_fee(txid, e.modified_fee)
                self._fees[txid] = e.modified_fee
                self._updated += 1

    # -- TemplateSource -----------------------------------------------------------------------

    def chunks_by_feerate(self) -> Iterator[Chunk]:
        self._sync_deltas()
        entries = self.pool.entries
        for _, keys in self._clusters.iter_chunks_best_first():
            chunk: list[TemplateTx] = []
            for txid in keys:
                e = entries[txid]
                chunk.append(TemplateTx(e.tx, e.fee, e.sigop_cost, e.weight, e.modified_fee))
            yield chunk

    def transactions_updated(self) -> int:
        return self._updated
