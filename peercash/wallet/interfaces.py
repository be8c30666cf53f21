"""What the wallet sees of the node: the narrow ``NodeClient`` protocol (Core's
``interfaces::Chain``) and the ``ChainListener`` the node calls back.

Layer 3 (wallet). ``node.py`` implements ``NodeClient`` over the chain state, mempool and
events; tests pass a small in-process stand-in. The node delivers notifications on one queue
thread, in order, never while validation waits for the wallet; ``sync`` waits until everything
queued so far has been delivered (Core's ``SyncWithValidationInterfaceQueue``).

Byte order: hashes are ``bytes`` in wire (internal) order.
"""

from __future__ import annotations

from typing import Protocol

from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import Block, Tx


class ChainListener(Protocol):
    """Notifications a wallet receives (Core's ``CValidationInterface`` subset)."""

    def block_connected(self, block: Block, height: int) -> None: ...

    def block_disconnected(self, block: Block, height: int) -> None: ...

    def transaction_added(self, tx: Tx) -> None: ...

    def transaction_removed(self, tx: Tx, reason: str) -> None: ...


class NodeClient(Protocol):
    """The node, as far as a wallet may use it."""

    @property
    def params(self) -> NetworkParams: ...

    def tip(self) -> tuple[int, bytes]:
        """(height, hash) of the active chain's tip."""
        ...

    def block_hash(self, height: int) -> bytes | None:
        """The active chain's block at ``height``, None above the tip."""
        ...

    def read_block(self, height: int) -> Block | None: ...

    def first_block_at_or_after(self, timestamp: int) -> int | None:
        """The lowest height whose block time is at least ``timestamp`` (Core's
        ``findFirstBlockWithTimeAndHeight``), None when there is none."""
        ...

    def is_initial_block_download(self) -> bool: ...

    def in_mempool(self, txid: bytes) -> bool: ...

    def subscribe(self, listener: ChainListener) -> None: ...

    def unsubscribe(self, listener: ChainListener) -> None: ...

    def sync(self) -> None:
        """Return once every notification queued so far has been delivered."""
        ...

    def broadcast(self, tx: Tx, max_fee_rate: int) -> str | None:
        """Submit ``tx`` to the mempool and relay it; the reject reason, or None when accepted.
        ``max_fee_rate`` in sat/kvB (0: no limit)."""
        ...

    def estimate_fee(self, target: int, mode: str) -> int | None:
        """A fee rate in sat/kvB for confirmation within ``target`` blocks, None if unknown."""
        ...
