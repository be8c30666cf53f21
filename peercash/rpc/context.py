"""What the RPC methods of this package need from the node: small ``Protocol`` definitions.

Layer 4. The methods in ``blockchain``, ``rawtransactions``, ``mining`` and ``util`` take the node
facade (``NodeServices``, built by ``node.py``) as their first argument, but they are written
against these protocols only, so that tests can pass a tiny stand-in and mypy can check both
sides without either importing the other.

Optional parts are looked up with ``getattr`` (see ``optional_txindex`` and ``optional_mempool``):
a node without a transaction index or a mempool simply has no such attribute, or has it set to
``None``.

Byte order: every hash crossing these interfaces is ``bytes`` in wire (internal) order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from peercash.chain.chainstate import ChainState
from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import OutPoint, Tx


class NodeConfig(Protocol):
    """The part of the node's configuration the methods read."""

    @property
    def txindex(self) -> bool: ...


@runtime_checkable
class TxIndex(Protocol):
    """An optional transaction index: ``lookup(txid)`` gives a tuple whose first item is the hash
    of the block holding the transaction (both wire order), or None when it is not indexed.

    ``synced`` and ``best_block_height`` are read by ``getindexinfo`` when present."""

    def lookup(self, txid: bytes) -> tuple[Any, ...] | None: ...


@runtime_checkable
class Mempool(Protocol):
    """An optional mempool, as far as these methods look into it."""

    def get(self, txid: bytes) -> Tx | None: ...


class ChainNode(Protocol):
    """The node facade as the blockchain, raw-transaction, mining and util methods use it."""

    @property
    def chain(self) -> ChainState: ...

    @property
    def params(self) -> NetworkParams: ...

    @property
    def config(self) -> NodeConfig: ...

    @property
    def network(self) -> str: ...

    @property
    def datadir(self) -> Path: ...

    @property
    def start_time(self) -> float: ...


def optional_txindex(node: ChainNode) -> TxIndex | None:
    """The node's transaction index, when it has one (``node.txindex``) and it is enabled."""
    index = getattr(node, "txindex", None)
    if index is None or not isinstance(index, TxIndex):
        return None
    return index


def optional_mempool(node: ChainNode) -> Mempool | None:
    """The node's mempool (``node.mempool``), when it has one."""
    pool = getattr(node, "mempool", None)
    if pool is None or not isinstance(pool, Mempool):
        return None
    return pool


def mempool_spends(pool: Mempool, outpoint: OutPoint) -> bool:
    """Whether a mempool transaction spends ``outpoint`` (``pool.is_spent``, or the txid
    ``pool.spender`` names, whichever it has)."""
    is_spent = getattr(pool, "is_spent", None)
    if callable(is_spent):
        return bool(is_spent(outpoint))
    spender = getattr(pool, "spender", None)
    return spender(outpoint) is not None if callable(spender) else False
