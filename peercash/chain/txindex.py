"""The optional transaction index (``-txindex``): txid → the block that holds it, for
``getrawtransaction`` on any confirmed transaction.

It lives in its own LMDB database (``indexes/txindex/``), follows the chain through its events
(connect adds, disconnect removes) and records the block it is synced to, so after a restart it
only catches up on what it missed.
"""

from __future__ import annotations

from pathlib import Path

from peercash.consensus.primitives import Block

from .chainstate import ChainState
from .index import BlockIndexEntry
from .lmdbutil import open_env

_BEST = b"best_block"


class TxIndex:
    def __init__(self, folder: Path, map_size: int = 1 << 36) -> None:
        self.path = folder
        self.env = open_env(folder, "transaction index", map_size=map_size, max_dbs=2)
        self._txs = self.env.open_db(b"txs")
        self._meta = self.env.open_db(b"meta")
        self.synced = False
        self.best_block_height = -1
        self._chain: ChainState | None = None

    def lookup(self, txid: bytes) -> tuple[bytes] | None:
        """(hash of the block holding ``txid``,) or None."""
        with self.env.begin(db=self._txs) as txn:
            value = txn.get(txid)
        return (bytes(value),) if value is not None else None

    def best_block(self) -> bytes | None:
        with self.env.begin(db=self._meta) as txn:
            value = txn.get(_BEST)
        return bytes(value) if value is not None else None

    def _write(self, block_hash: bytes, txids: list[bytes], add: bool, new_best: bytes) -> None:
        with self.env.begin(write=True) as txn:
            for txid in txids:
                if add:
                    txn.put(txid, block_hash, db=self._txs)
                else:
                    txn.delete(txid, db=self._txs)
            txn.put(_BEST, new_best, db=self._meta)

    def attach(self, chain: ChainState) -> None:
        """Catch up with the active chain, then follow its events."""
        best = self.best_block()
        entry = chain.index.get(best) if best is not None else None
        # Unwind what is no longer on the active chain (a reorg while we were away).
        while entry is not None and not chain.contains(entry):
            block = chain.read_block(entry)
            assert entry.prev is not None
            self._write(entry.hash, [tx.txid for tx in block.txs], False, entry.prev.hash)
            entry = entry.prev
        start = entry.height + 1 if entry is not None else 0
        for height in range(start, chain.height + 1):
            e = chain.chain[height]
            self._connected(e, [tx.txid for tx in chain.read_block(e).txs])
        self._chain = chain
        chain.events.block_connected.append(self._on_connect)
        chain.events.block_disconnected.append(self._on_disconnect)
        self.synced = True

    def _on_connect(self, block: Block, e: BlockIndexEntry) -> None:
        self._connected(e, [tx.txid for tx in block.txs])

    def _on_disconnect(self, block: Block, e: BlockIndexEntry) -> None:
        self._disconnected(e, [tx.txid for tx in block.txs])

    def _connected(self, e: BlockIndexEntry, txids: list[bytes]) -> None:
        self._write(e.hash, txids, True, e.hash)
        self.best_block_height = e.height

    def _disconnected(self, e: BlockIndexEntry, txids: list[bytes]) -> None:
        assert e.prev is not None
        self._write(e.hash, txids, False, e.prev.hash)
        self.best_block_height = e.height - 1

    def close(self) -> None:
        """Stop following the chain and close the database."""
        if self._chain is not None:
            self._chain.events.block_connected.remove(self._on_connect)
            self._chain.events.block_disconnected.remove(self._on_disconnect)
            self._chain = None
        self.env.close()
