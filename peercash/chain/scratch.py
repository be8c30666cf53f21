"""A scratch view of the chain state for checking a block without changing anything:
``verifychain``'s deep levels and the miner's ``TestBlockValidity`` connect blocks into it.

Layer L1 (chain). ``CoinsOverlay`` is shaped like the parts of ``CoinsCache`` that
``BlockValidator.connect_block`` uses (get, spend, add); spends and creations stay in it and
reads fall through to the chain state's cache and database. ``ScratchChain`` is what the
validator reads of its chain, with the coins replaced by an overlay. Same concurrency as the
chain state: under the chain lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peercash.consensus.contextual import SpentCoin

from .coins import coin_key

if TYPE_CHECKING:
    from .chainstate import ChainState
    from .index import BlockIndexEntry

__all__ = ["CoinsOverlay", "ScratchChain"]


class CoinsOverlay:
    """Spends and creations over the chain's UTXO set; nothing reaches the real set."""

    def __init__(self, chain: ChainState) -> None:
        self._chain = chain
        self._map: dict[bytes, SpentCoin | None] = {}

    def get(self, key: bytes) -> SpentCoin | None:
        if key in self._map:
            return self._map[key]
        return self._chain.get_coin(key[:32], int.from_bytes(key[32:], "big"))

    def have(self, key: bytes) -> bool:
        return self.get(key) is not None

    def any_unspent(self, txid: bytes, n_outputs: int) -> bool:
        """BIP30's question (``CoinsCache.any_unspent``), asked output by output."""
        return any(self.get(coin_key(txid, i)) is not None for i in range(n_outputs))

    def spend(self, key: bytes) -> SpentCoin | None:
        coin = self.get(key)
        self._map[key] = None
        return coin

    def add(self, key: bytes, coin: SpentCoin, possible_overwrite: bool = False) -> None:
        self._map[key] = coin


class ScratchChain:
    """What ``BlockValidator`` reads from its chain, with the coins replaced by ``coins``."""

    def __init__(self, chain: ChainState, coins: CoinsOverlay | None = None) -> None:
        self._real = chain
        self.params = chain.params
        self.coins = coins if coins is not None else CoinsOverlay(chain)
        self.index = chain.index
        self.best_header = chain.best_header
        self.pool = chain.pool
        self.chain = chain.chain

    def contains(self, e: BlockIndexEntry) -> bool:
        return self._real.contains(e)
