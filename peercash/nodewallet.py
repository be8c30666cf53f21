"""The wallet's ``NodeClient`` over this node's chain, mempool and events (``node.py`` builds it).

Same layer as ``node.py`` (it knows the chain state, the mempool and the wallet). Chain and
mempool events arrive on whichever thread changed the chain, with the chain lock held: they are
only queued here, and one notification thread delivers them to the wallets in order (each wallet
takes its own lock), so validation never waits for wallet I/O. Reads (``tip``, ``read_block``…)
take the chain lock for just that read.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import Block, Tx
from peercash.wallet.interfaces import ChainListener

if TYPE_CHECKING:
    from peercash.chain.chainstate import ChainState
    from peercash.chain.index import BlockIndexEntry
    from peercash.mempool.pool import MemPool

log = logging.getLogger("peercash.wallet")

_STOP = object()


class NodeChainClient:
    """``wallet.interfaces.NodeClient`` for one running node."""

    def __init__(
        self,
        chain: ChainState,
        mempool: MemPool | None,
        chain_lock: Any,
        *,
        is_ibd: Callable[[], bool] | None = None,
        fee_estimator: Any = None,
    ) -> None:
        self.chain = chain
        self.mempool = mempool
        self.chain_lock = chain_lock
        self._is_ibd = is_ibd
        self.fee_estimator = fee_estimator
        self.listeners: list[ChainListener] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="wallet-notify", daemon=True)
        self._thread.start()
        events = chain.events
        events.block_connected.append(self._on_connected)
        events.block_disconnected.append(self._on_disconnected)
        if mempool is not None:
            mempool.on_added.append(lambda entry: self._queue.put(("added", entry.tx)))
            mempool.on_removed.append(lambda tx, why: self._queue.put(("removed", tx, str(why))))

    # -- notifications --------------------------------------------------------------------

    def _on_connected(self, block: Block, entry: BlockIndexEntry) -> None:
        self._queue.put(("connected", block, entry.height))

    def _on_disconnected(self, block: Block, entry: BlockIndexEntry) -> None:
        self._queue.put(("disconnected", block, entry.height))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            kind, *args = item
            for listener in list(self.listeners):
                try:
                    if kind == "connected":
                        listener.block_connected(*args)
                    elif kind == "disconnected":
                        listener.block_disconnected(*args)
                    elif kind == "added":
                        listener.transaction_added(*args)
                    else:
                        listener.transaction_removed(*args)
                except Exception:
                    log.exception("wallet notification %s failed", kind)

    def sync(self) -> None:
        done = threading.Event()
        self._queue.put(done)
        done.wait()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def subscribe(self, listener: ChainListener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: ChainListener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    # -- reads ----------------------------------------------------------------------------

    @property
    def params(self) -> NetworkParams:
        return self.chain.params

    def tip(self) -> tuple[int, bytes]:
        with self.chain_lock:
            tip = self.chain.tip
            return tip.height, tip.hash

    def block_hash(self, height: int) -> bytes | None:
        with self.chain_lock:
            entry = self.chain.entry_at(height)
            return None if entry is None else entry.hash

    def read_block(self, height: int) -> Block | None:
        with self.chain_lock:
            entry = self.chain.entry_at(height)
            return None if entry is None else self.chain.read_block(entry)

    def first_block_at_or_after(self, timestamp: int) -> int | None:
        with self.chain_lock:
            for height in range(self.chain.height + 1):
                entry = self.chain.entry_at(height)
                if entry is not None and entry.header.time >= timestamp:
                    return height
        return None

    def is_initial_block_download(self) -> bool:
        return self._is_ibd() if self._is_ibd is not None else False

    def in_mempool(self, txid: bytes) -> bool:
        if self.mempool is None:
            return False
        with self.chain_lock:
            return self.mempool.contains(txid)

    def broadcast(self, tx: Tx, max_fee_rate: int) -> str | None:
        if self.mempool is None:
            return "mempool disabled"
        with self.chain_lock:
            result = self.mempool.accept(tx)
            if result.reject_reason is None:
                self.mempool.add_unbroadcast(tx.txid)  # announced until a peer asks for it
        return result.reject_reason

    def estimate_fee(self, target: int, mode: str) -> int | None:
        if self.fee_estimator is None:
            return None
        with self.chain_lock:
            estimate = self.fee_estimator.estimate_smart_fee(target, mode == "conservative")
        rate = getattr(estimate, "feerate", None)
        return int(rate) if rate is not None and rate > 0 else None
