"""Coins on a real regtest node for functional tests: blocks mined to P2WSH(OP_TRUE) with
``generatetoaddress``, their coinbase outpoints read back with ``getblock``, and spends built by
``peercash.tools.txbuild.TxBook`` (the builder the in-process pool tests use too).

``NodeCoins(node).mine(n)`` mines ``n`` blocks and remembers their coinbases;
``coin()`` hands out the next mature, unused coinbase output (50 BTC on a fresh chain);
``spend``/``split`` build transactions (witness ``[OP_TRUE]``) without sending them;
``send(tx)`` is ``sendrawtransaction``; ``hex(tx)`` the serialization. Nothing here reads the
node's internals: only RPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peercash.consensus.address import script_to_address
from peercash.consensus.params import get_params
from peercash.consensus.primitives import Block, OutPoint, Tx, TxOut
from peercash.tools.nodeproc import NodeProcess
from peercash.tools.txbuild import DEFAULT_FEE, NON_FINAL, P2WSH_OP_TRUE, TxBook

__all__ = ["COINBASE_MATURITY", "OP_TRUE_ADDRESS", "NodeCoins", "out", "txhex"]

COINBASE_MATURITY = 100
_address = script_to_address(P2WSH_OP_TRUE, get_params("regtest"))
assert _address is not None
OP_TRUE_ADDRESS: str = _address
"""The regtest address of P2WSH(OP_TRUE)."""


def out(tx: Tx, index: int = 0) -> OutPoint:
    return OutPoint(tx.txid, index)


def txhex(tx: Tx) -> str:
    return tx.serialize().hex()


class NodeCoins:
    """The anyone-can-spend coins one node has mined, and spends of them."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.book = TxBook()
        self.coinbases: list[tuple[int, OutPoint]] = []
        """(height, outpoint) of every coinbase mined through ``mine``, oldest first."""
        self._used: set[OutPoint] = set()

    def mine(self, n: int = 1, address: str = OP_TRUE_ADDRESS) -> list[str]:
        """Mine ``n`` blocks (with the pool's transactions); returns their hashes."""
        hashes: list[str] = self.node.call("generatetoaddress", n, address)
        for h in hashes:
            self.record_block(h)
        return hashes

    def record_block(self, block_hash: str) -> Block:
        """Remember the outputs of a block mined some other way (``generateblock``...)."""
        header = self.node.call("getblockheader", block_hash)
        block = Block.parse(bytes.fromhex(self.node.call("getblock", block_hash, 0)))
        for tx in block.txs:
            self.book.record_tx(tx)
        cb = block.txs[0]
        if cb.outputs[0].script_pubkey == P2WSH_OP_TRUE:
            self.coinbases.append((int(header["height"]), OutPoint(cb.txid, 0)))
        return block

    @property
    def height(self) -> int:
        return int(self.node.call("getblockcount"))

    def coin(self) -> OutPoint:
        """The oldest coinbase output that is mature for the next block and not handed out yet."""
        next_height = self.height + 1
        for height, p in self.coinbases:
            if p in self._used:
                continue
            if next_height - height < COINBASE_MATURITY:
                break
            self._used.add(p)
            return p
        raise AssertionError("no mature coinbase left: mine more blocks")

    def value(self, prevout: OutPoint) -> int:
        return self.book.value(prevout)

    def spend(
        self,
        prevouts: Sequence[OutPoint],
        outputs: Sequence[TxOut] | None = None,
        *,
        fee: int = DEFAULT_FEE,
        sequence: int = NON_FINAL,
        version: int = 2,
        locktime: int = 0,
        script_pubkey: bytes = P2WSH_OP_TRUE,
    ) -> Tx:
        return self.book.spend(
            prevouts,
            outputs,
            fee=fee,
            sequence=sequence,
            version=version,
            locktime=locktime,
            script_pubkey=script_pubkey,
        )

    def split(self, prevout: OutPoint, n: int, *, fee: int = DEFAULT_FEE, version: int = 2) -> Tx:
        return self.book.split(prevout, n, fee=fee, version=version)

    def send(self, tx: Tx, *params: Any) -> str:
        """``sendrawtransaction``; returns the txid the node answered."""
        txid: str = self.node.call("sendrawtransaction", txhex(tx), *params)
        return txid

    def mempool(self) -> set[str]:
        return set(self.node.call("getrawmempool"))
