"""A mempool on a real regtest ``ChainState`` for the pool tests.

Coins are coinbases mined to P2WSH(OP_TRUE) and spent with the witness ``[0x51]`` (the
``ChainBuilder`` of tests/chain). Load it with ``sys.path`` (pytest runs with
``--import-mode=importlib``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))

from blocktools import NON_FINAL, ChainBuilder

from peercash.consensus.primitives import Block, OutPoint, Tx, TxIn, TxOut
from peercash.mempool.chainview import ChainStateView
from peercash.mempool.pool import MemPool, MempoolEntry, Removal
from peercash.mining.builder import OP_TRUE_SCRIPT, P2WSH_OP_TRUE

__all__ = ["NON_FINAL", "OP_TRUE_SCRIPT", "P2WSH_OP_TRUE", "Harness"]

COIN = 100_000_000


class Harness:
    """A chain of ``blocks`` regtest blocks, a pool over it, and what the pool announced."""

    def __init__(self, folder: Path, blocks: int = 130, **pool_options: object) -> None:
        self.builder = ChainBuilder(folder)
        self.builder.mine(blocks)
        self.now = float(self.builder.now)
        self.view = ChainStateView(self.builder.chain)
        self.pool = MemPool(self.view, clock=lambda: self.now, **pool_options)  # type: ignore[arg-type]
        self.added: list[bytes] = []
        self.removed: list[tuple[bytes, Removal]] = []
        self.pool.on_added.append(self._on_added)
        self.pool.on_removed.append(self._on_removed)
        self._next_coin = 1

    def _on_added(self, e: MempoolEntry) -> None:
        self.added.append(e.txid)

    def _on_removed(self, tx: Tx, reason: Removal) -> None:
        self.removed.append((tx.txid, reason))

    def close(self) -> None:
        self.builder.close()

    @property
    def tip_height(self) -> int:
        return self.builder.chain.height

    def coin(self) -> OutPoint:
        """A fresh mature coinbase output (50 BTC to P2WSH(OP_TRUE))."""
        height = self._next_coin
        self._next_coin += 1
        assert self.tip_height + 1 - height >= 100, "no mature coinbase left"
        return self.builder.coinbase_out(height)

    def spend(
        self,
        prevouts: Sequence[OutPoint],
        outputs: Sequence[TxOut] | None = None,
        *,
        fee: int = 10_000,
        version: int = 2,
        sequence: int = NON_FINAL,
        locktime: int = 0,
    ) -> Tx:
        return self.builder.spend(
            prevouts, outputs, fee=fee, version=version, sequence=sequence, locktime=locktime
        )

    def split(self, prevout: OutPoint, n: int, *, fee: int = 10_000, version: int = 2) -> Tx:
        """Spend ``prevout`` into ``n`` equal P2WSH(OP_TRUE) outputs."""
        return self.builder.book.split(prevout, n, fee=fee, version=version)

    def raw_spend(
        self,
        prevout: OutPoint,
        witness: tuple[bytes, ...],
        outputs: Sequence[TxOut],
        *,
        script_sig: bytes = b"",
        version: int = 2,
    ) -> Tx:
        tx = Tx(version, [TxIn(prevout, script_sig, NON_FINAL, witness)], outputs, 0)
        self.builder.record_tx(tx)
        return tx

    def mine(self, txs: Sequence[Tx] = ()) -> Block:
        """Mine ``txs`` into the next block and tell the pool, as the node will."""
        block = self.builder.new_block(txs=txs)
        self.builder.submit(block)
        self.pool.remove_for_block(block)
        return block


def out(tx: Tx, index: int = 0) -> OutPoint:
    return OutPoint(tx.txid, index)


def value_of(h: Harness, prevout: OutPoint) -> int:
    return h.builder.outputs[prevout].value
