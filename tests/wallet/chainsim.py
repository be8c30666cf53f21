"""An in-process chain for wallet tests: blocks built by the test, no proof of work, and a
``NodeClient`` over them that notifies listeners at once."""

from __future__ import annotations

from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.wallet.interfaces import ChainListener

NULL = OutPoint(b"\x00" * 32, 0xFFFFFFFF)


def coinbase(height: int, script: bytes, value: int = 50_0000_0000) -> Tx:
    return Tx(2, [TxIn(NULL, height.to_bytes(4, "little") + b"\x51")], [TxOut(value, script)])


def spend(prevouts: list[OutPoint], outputs: list[tuple[int, bytes]]) -> Tx:
    return Tx(2, [TxIn(p) for p in prevouts], [TxOut(v, s) for v, s in outputs])


class SimNode:
    """A chain of test-built blocks and a mempool set, speaking ``NodeClient``."""

    def __init__(self, params: NetworkParams) -> None:
        self._params = params
        self.blocks: list[Block] = []
        self.mempool: dict[bytes, Tx] = {}
        self.listeners: list[ChainListener] = []
        self.time = 1_700_000_000
        self.mine([])  # genesis-like block 0

    @property
    def params(self) -> NetworkParams:
        return self._params

    def mine(self, txs: list[Tx], to: bytes = b"\x51") -> Block:
        height = len(self.blocks)
        prev = self.blocks[-1].header.hash if self.blocks else b"\x00" * 32
        self.time += 600
        header = Header(
            4, prev, height.to_bytes(32, "little"), self.time, 0x207FFFFF, len(self.blocks)
        )
        block = Block(header, [coinbase(height, to), *txs])
        self.blocks.append(block)
        for tx in txs:
            self.mempool.pop(tx.txid, None)
        for listener in list(self.listeners):
            listener.block_connected(block, height)
        return block

    def disconnect(self) -> Block:
        block = self.blocks.pop()
        for listener in list(self.listeners):
            listener.block_disconnected(block, len(self.blocks))
        return block

    def add_to_mempool(self, tx: Tx) -> None:
        self.mempool[tx.txid] = tx
        for listener in list(self.listeners):
            listener.transaction_added(tx)

    def remove_from_mempool(self, tx: Tx) -> None:
        del self.mempool[tx.txid]
        for listener in list(self.listeners):
            listener.transaction_removed(tx, "expiry")

    # -- NodeClient -------------------------------------------------------------------------

    def tip(self) -> tuple[int, bytes]:
        return len(self.blocks) - 1, self.blocks[-1].header.hash

    def block_hash(self, height: int) -> bytes | None:
        return self.blocks[height].header.hash if 0 <= height < len(self.blocks) else None

    def read_block(self, height: int) -> Block | None:
        return self.blocks[height] if 0 <= height < len(self.blocks) else None

    def first_block_at_or_after(self, timestamp: int) -> int | None:
        for height, block in enumerate(self.blocks):
            if block.header.time >= timestamp:
                return height
        return None

    def is_initial_block_download(self) -> bool:
        return False

    def in_mempool(self, txid: bytes) -> bool:
        return txid in self.mempool

    def subscribe(self, listener: ChainListener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: ChainListener) -> None:
        self.listeners.remove(listener)

    def sync(self) -> None:
        pass

    def broadcast(self, tx: Tx, max_fee_rate: int) -> str | None:
        self.add_to_mempool(tx)
        return None

    def estimate_fee(self, target: int, mode: str) -> int | None:
        return None
