"""Transactions from a raw P2P peer into a real node's mempool: an orphan that arrives before
its parent (the node asks us for the parent, then takes both), a one-parent-one-child package
whose zero-fee parent comes in through the orphan path, and the unbroadcast mark of an RPC
submission cleared once a peer has asked for it.

One node for the module; the peer is ``framework.p2p.P2PConnection`` (inbound to the node,
wtxid relay), driven under ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from framework.coins import NodeCoins, out
from framework.p2p import P2PConnection

from peercash.consensus.primitives import Tx
from peercash.p2p import messages as m
from peercash.tools.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

WITNESS_TX = int(m.InvType.MSG_WITNESS_TX)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("p2p"), extra_args=["--connect=0", "--listen"]) as n:
        n.start()
        yield n


@pytest.fixture(scope="module")
def coins(node: NodeProcess) -> NodeCoins:
    c = NodeCoins(node)
    c.mine(110)  # recent blocks: the node is out of initial block download
    return c


async def rpc(node: NodeProcess, method: str, *params: Any) -> Any:
    return await asyncio.to_thread(node.call, method, *params)


async def pool_has(node: NodeProcess, txids: set[str], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not txids <= set(await rpc(node, "getrawmempool")):
            await asyncio.sleep(0.1)


async def peer(node: NodeProcess) -> P2PConnection:
    conn = await P2PConnection(name="mempool").connect("127.0.0.1", node.port)
    await conn.handshake()
    # The pong proves the node took our verack: from now on it relays to us (a transaction
    # accepted before that is never announced to this peer, as in Core).
    assert await conn.ping()
    return conn


async def orphan_then_parent(node: NodeProcess, parent: Tx, child: Tx) -> m.GetData:
    """Send ``child`` first, wait for the node's getdata of ``parent``, answer it."""
    async with await peer(node) as conn:
        await conn.send(m.TxMsg(child))
        # The parent is asked for by txid (its wtxid is unknown), as a witness transaction.
        request = await conn.wait_for(
            m.GetData, 20.0, lambda g: any(i.hash == parent.txid for i in g.items)
        )
        assert child.txid_hex not in await rpc(node, "getrawmempool")
        await conn.send(m.TxMsg(parent))
        await pool_has(node, {parent.txid_hex, child.txid_hex})
        assert await conn.ping()
    return request


def test_an_orphan_waits_for_its_parent(node: NodeProcess, coins: NodeCoins) -> None:
    parent = coins.spend([coins.coin()], fee=2_000)
    child = coins.spend([out(parent)], fee=2_000)
    request = asyncio.run(orphan_then_parent(node, parent, child))
    assert [(i.type, i.hash) for i in request.items] == [(WITNESS_TX, parent.txid)]
    assert node.call("getrawmempool") == [parent.txid_hex, child.txid_hex]
    # From a peer: nothing to rebroadcast.
    assert node.call("getmempoolentry", parent.txid_hex)["unbroadcast"] is False
    coins.mine(1)


def test_a_zero_fee_parent_through_the_orphan_path(node: NodeProcess, coins: NodeCoins) -> None:
    """1p1c relay: the TRUC parent alone is below the minimum relay fee; the orphan child from
    the same peer pays for both."""
    parent = coins.spend([coins.coin()], version=3, fee=0)
    child = coins.spend([out(parent)], version=3, fee=5_000)
    [r] = node.call("testmempoolaccept", [parent.serialize().hex()])
    assert r["reject-reason"] == "min relay fee not met"
    asyncio.run(orphan_then_parent(node, parent, child))
    entry = node.call("getmempoolentry", child.txid_hex)
    assert entry["depends"] == [parent.txid_hex]
    [h] = coins.mine(1)
    assert node.call("getblock", h)["tx"][1:] == [parent.txid_hex, child.txid_hex]


def test_unbroadcast_until_a_peer_asks(node: NodeProcess, coins: NodeCoins) -> None:
    tx = coins.spend([coins.coin()])

    async def run() -> None:
        async with await peer(node) as conn:
            await rpc(node, "sendrawtransaction", tx.serialize().hex())
            entry = await rpc(node, "getmempoolentry", tx.txid_hex)
            assert entry["unbroadcast"] is True
            inv = await conn.wait_for(m.Inv, 30.0, lambda i: any(x.hash == tx.wtxid
                                                                 for x in i.items))  # fmt: skip
            assert [x.type for x in inv.items if x.hash == tx.wtxid] == [int(m.InvType.MSG_WTX)]
            await conn.send(m.GetData((m.InvItem(int(m.InvType.MSG_WTX), tx.wtxid),)))
            got = await conn.wait_for(m.TxMsg, 10.0)
            assert got.tx.wtxid == tx.wtxid
            entry = await rpc(node, "getmempoolentry", tx.txid_hex)
            assert entry["unbroadcast"] is False
            assert (await rpc(node, "getmempoolinfo"))["unbroadcastcount"] == 0

    asyncio.run(run())
    coins.mine(1)
