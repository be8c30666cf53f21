"""One wallet transaction and where it stands (Core's ``CWalletTx`` and its ``TxState``).

Layer 3 (wallet), pure. States: ``confirmed`` (block hash/height/position), ``mempool``,
``inactive`` (unconfirmed, not in the pool), ``abandoned`` (inactive, given up by the user) and
``conflicted`` (a confirmed transaction spends the same coin; depth counts from that block).
"""

from __future__ import annotations

from dataclasses import dataclass

from peercash.consensus.primitives import Tx

from .db import TxRow

CONFIRMED = "confirmed"
MEMPOOL = "mempool"
INACTIVE = "inactive"
ABANDONED = "abandoned"
CONFLICTED = "conflicted"


@dataclass(slots=True)
class WalletTx:
    """A transaction that pays us or spends our coins, with its current state."""

    tx: Tx
    state: str
    time_received: int
    time_smart: int
    order_pos: int
    block_hash: bytes | None = None
    block_height: int | None = None
    block_pos: int | None = None
    block_time: int | None = None
    conflict_hash: bytes | None = None
    conflict_height: int | None = None
    replaced_by: bytes | None = None
    comment: str = ""

    def depth(self, tip_height: int) -> int:
        """Core's ``GetTxDepthInMainChain``: >0 confirmed, <0 conflicted, 0 otherwise."""
        if self.state == CONFIRMED and self.block_height is not None:
            return tip_height - self.block_height + 1
        if self.state == CONFLICTED and self.conflict_height is not None:
            return -(tip_height - self.conflict_height + 1)
        return 0

    def blocks_to_maturity(self, tip_height: int, maturity: int) -> int:
        if not self.tx.is_coinbase():
            return 0
        return max(0, maturity + 1 - self.depth(tip_height))

    def set_confirmed(self, block_hash: bytes, height: int, pos: int, block_time: int) -> None:
        self.state = CONFIRMED
        self.block_hash, self.block_height, self.block_pos = block_hash, height, pos
        self.block_time = block_time
        self.conflict_hash = self.conflict_height = None

    def set_unconfirmed(self, state: str) -> None:
        self.state = state
        self.block_hash = self.block_height = self.block_pos = self.block_time = None
        self.conflict_hash = self.conflict_height = None

    def to_row(self) -> TxRow:
        return TxRow(
            self.tx.txid,
            self.tx.serialize(),
            self.state,
            self.block_hash,
            self.block_height,
            self.block_pos,
            self.time_received,
            self.order_pos,
            self.conflict_hash,
            self.conflict_height,
            self.replaced_by,
            self.comment,
            self.block_time,
            self.time_smart,
        )

    @classmethod
    def from_row(cls, row: TxRow) -> WalletTx:
        return cls(
            Tx.parse(row.raw),
            row.state,
            row.time_received,
            row.time_smart if row.time_smart is not None else row.time_received,
            row.order_pos,
            row.block_hash,
            row.block_height,
            row.block_pos,
            row.block_time,
            row.conflict_hash,
            row.conflict_height,
            row.replaced_by,
            row.comment,
        )
