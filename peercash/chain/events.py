"""How the chain tells others what happened: listeners subscribe; the chain calls them in order.

Listeners run synchronously in the thread that changed the chain; they must not call back into
the chain state while being notified (queue the work instead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peercash.consensus.primitives import Block, Tx

if TYPE_CHECKING:
    from .index import BlockIndexEntry

BlockListener = Callable[[Block, "BlockIndexEntry"], None]
TipListener = Callable[["BlockIndexEntry"], None]
TxsListener = Callable[[list[Tx]], None]


@dataclass
class ChainEvents:
    """The chain's notifications: block connected/disconnected, tip changed, and the
    transactions a reorganisation took out of the chain (for the mempool to take back)."""

    block_connected: list[BlockListener] = field(default_factory=list)
    block_disconnected: list[BlockListener] = field(default_factory=list)
    tip_changed: list[TipListener] = field(default_factory=list)
    transactions_disconnected: list[TxsListener] = field(default_factory=list)

    def connected(self, block: Block, entry: BlockIndexEntry) -> None:
        for f in self.block_connected:
            f(block, entry)

    def disconnected(self, block: Block, entry: BlockIndexEntry) -> None:
        for f in self.block_disconnected:
            f(block, entry)

    def tip(self, entry: BlockIndexEntry) -> None:
        for f in self.tip_changed:
            f(entry)

    def txs_disconnected(self, txs: list[Tx]) -> None:
        for f in self.transactions_disconnected:
            f(txs)
