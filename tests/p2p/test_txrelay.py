"""Transaction relay between in-process nodes (``SyncNode`` + a real ``MemPool`` + ``TxRelay``):
announcement and request across a line of nodes, orphans whose parent is asked of the same peer,
getdata answered from the pool (and refused for what was never announced), the protocol rules
for block-relay-only peers and ``mempool``, and no relay during initial block download."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synctools import (
    FakePeer,
    Recorder,
    SyncNode,
    connect,
    copy_chain,
    mine_template,
    wait_for,
)

from peercash.consensus.params import get_params
from peercash.consensus.primitives import Block, OutPoint, Tx, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mempool.chainview import ChainStateView
from peercash.mempool.pool import MemPool, Removal
from peercash.mining.builder import (
    P2WSH_OP_TRUE,
    assemble_block,
    coinbase_tx,
    solve,
    spend_op_true_p2wsh,
)
from peercash.p2p import messages as m
from peercash.p2p.compact import HeaderAndShortIDs
from peercash.p2p.peer import ConnType
from peercash.p2p.permissions import NetPermissions
from peercash.p2p.txrelay import TxRelay

CHAIN = 120
REGTEST = get_params("regtest")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mine_template(tmp_path_factory.mktemp("relaytemplate") / "a", CHAIN)


class RelayNode:
    """A sync node with a pool and a relay whose trickle intervals are short (tests only)."""

    def __init__(self, path: Path) -> None:
        self.node = SyncNode(path)
        self.pool = MemPool(ChainStateView(self.node.chain))
        # As node.py wires it: mined transactions leave the pool.
        self.node.chain.events.block_connected.append(lambda b, e: self.pool.remove_for_block(b))
        self.relay = TxRelay(
            self.pool,
            self.node.sync.submit_chain_work,
            call_soon_threadsafe=self.node.sync.call_soon_threadsafe,
            misbehaving=lambda peer, reason: self.node.connman.misbehaving(peer, reason),
            is_ibd=self.node.sync.is_initial_block_download,
            inbound_interval=0.05,
            outbound_interval=0.05,
        )
        self.node.sync.set_relay(self.relay)

    # the endpoint interface
    def on_peer_connected(self, peer: FakePeer) -> None:
        self.node.on_peer_connected(peer)

    def on_message(self, peer: FakePeer, msg: m.Message) -> None:
        self.node.on_message(peer, msg)

    def on_peer_disconnected(self, peer: FakePeer) -> None:
        self.node.on_peer_disconnected(peer)

    def accept(self, tx: Tx) -> Any:
        with self.node.lock:
            return self.pool.accept(tx)

    def close(self) -> None:
        self.relay.close()
        self.node.close()


@pytest.fixture
def made() -> Iterator[list[RelayNode]]:
    nodes: list[RelayNode] = []
    yield nodes
    for n in nodes:
        n.close()


def relay_node(made: list[RelayNode], template: Path, path: Path) -> RelayNode:
    n = RelayNode(copy_chain(template, path))
    made.append(n)
    return n


def coinbase_spend(n: RelayNode, height: int, fee: int = 10_000) -> Tx:
    cb = n.node.block_at(height).txs[0]
    return spend_op_true_p2wsh(
        OutPoint(cb.txid, 0), [TxOut(cb.outputs[0].value - fee, P2WSH_OP_TRUE)]
    )


def child_of(parent: Tx, fee: int = 10_000) -> Tx:
    return spend_op_true_p2wsh(
        OutPoint(parent.txid, 0), [TxOut(parent.outputs[0].value - fee, P2WSH_OP_TRUE)]
    )


def test_a_transaction_crosses_a_line_of_nodes(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        a, b, c = (relay_node(made, template, tmp_path / x) for x in "abc")
        connect(a, b)
        connect(b, c)
        await wait_for(lambda: len(b.node.sync._peers) == 2 and len(c.node.sync._peers) == 1)
        assert not a.node.sync.is_initial_block_download()
        tx = coinbase_spend(a, 1)
        assert a.accept(tx).allowed
        # a announces, b asks (after the delay for a non-preferred announcer), accepts and
        # passes it on to c the same way.
        await wait_for(lambda: c.pool.contains(tx.txid), 20, "the tx at c")
        assert b.pool.contains(tx.txid)
        # A child follows the same way, and nobody asks twice.
        child = child_of(tx)
        assert a.accept(child).allowed
        await wait_for(lambda: c.pool.contains(child.txid), 20, "the child at c")
        for n in (b, c):
            assert n.relay.tracker.size() == 0

    asyncio.run(main())


def test_an_orphan_waits_for_its_parent_asked_of_the_same_peer(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        r = Recorder()
        connect(r, b)  # r dialled b: at b, r is inbound (a non-preferred announcer)
        await wait_for(lambda: r.peer is not None and len(b.node.sync._peers) == 1)
        peer = r.peer
        assert peer is not None
        parent = coinbase_spend(b, 2)
        child = child_of(parent)
        peer.send(m.TxMsg(child))
        await wait_for(lambda: b.relay.orphans.size() == 1, 10, "the orphan")
        assert not b.pool.contains(child.txid)
        # b asks r for the parent, by txid (r does not relay by wtxid).
        await wait_for(lambda: any(i.hash == parent.txid for g in r.of(m.GetData)
                                   for i in g.items), 10, "the request for the parent")  # fmt: skip
        asked = [i for g in r.of(m.GetData) for i in g.items if i.hash == parent.txid]
        assert [i.type for i in asked] == [m.InvType.MSG_WITNESS_TX]
        peer.send(m.TxMsg(parent))
        await wait_for(lambda: b.pool.contains(child.txid), 10, "the child accepted")
        assert b.pool.contains(parent.txid) and b.relay.orphans.size() == 0

    asyncio.run(main())


def test_getdata_is_answered_only_for_what_was_announced(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        r = Recorder()
        connect(r, b)
        await wait_for(lambda: r.peer is not None and len(b.node.sync._peers) == 1)
        peer = r.peer
        assert peer is not None
        tx = coinbase_spend(b, 3)
        secret = coinbase_spend(b, 4)
        # Not announced yet, and fresh: a notfound, as Core answers.
        r_at_b = next(iter(b.node.sync._peers.values())).peer
        b.relay._peers[r_at_b.id].next_inv = float("inf")  # hold b's announcements
        assert b.accept(tx).allowed and b.accept(secret).allowed
        peer.send(m.GetData((m.InvItem(m.InvType.MSG_WITNESS_TX, tx.txid),)))
        await wait_for(lambda: len(r.of(m.NotFound)) == 1, 10, "the notfound")
        assert [i.hash for i in r.of(m.NotFound)[0].items] == [tx.txid]
        b.relay._peers[r_at_b.id].next_inv = 0.0
        await wait_for(lambda: len(r.of(m.Inv)) >= 1, 10, "the announcement")
        announced = {i.hash for x in r.of(m.Inv) for i in x.items}
        assert announced == {tx.txid, secret.txid}
        assert {i.type for x in r.of(m.Inv) for i in x.items} == {m.InvType.MSG_TX}
        peer.send(m.GetData((m.InvItem(m.InvType.MSG_WITNESS_TX, tx.txid),
                             m.InvItem(m.InvType.MSG_TX, secret.txid),
                             m.InvItem(m.InvType.MSG_WITNESS_TX, b"\x44" * 32))))  # fmt: skip
        await wait_for(lambda: len(r.of(m.TxMsg)) == 2 and len(r.of(m.NotFound)) == 2, 10)
        got = r.of(m.TxMsg)
        assert got[0].tx.txid == tx.txid and got[0].tx.has_witness()
        assert got[1].tx.txid == secret.txid and not got[1].tx.has_witness()  # MSG_TX: none
        assert [i.hash for i in r.of(m.NotFound)[1].items] == [b"\x44" * 32]

    asyncio.run(main())


def test_protocol_violations_disconnect(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        r = Recorder()
        _, at_b = connect(r, b)
        await wait_for(lambda: len(b.node.sync._peers) == 1)
        peer = r.peer
        assert peer is not None
        peer.send(m.MempoolMsg())
        await wait_for(lambda: at_b.closed, 5, "the disconnection")
        assert at_b.disconnect_reason == "mempool request with bloom filters disabled"
        # A block-relay-only peer may not send transactions.
        r2 = Recorder()
        _, at_b2 = connect(r2, b)
        at_b2.conn_type = ConnType.BLOCK_RELAY
        await wait_for(lambda: len(b.node.sync._peers) == 1 and r2.peer is not None)
        assert r2.peer is not None
        r2.peer.send(m.TxMsg(coinbase_spend(b, 5)))
        await wait_for(lambda: at_b2.closed, 5, "the second disconnection")
        assert at_b2.disconnect_reason == "transaction sent in violation of protocol"
        assert b.pool.txids() == []

    asyncio.run(main())


def test_an_invalid_transaction_is_misbehaviour_and_remembered(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        r = Recorder()
        connect(r, b)
        await wait_for(lambda: r.peer is not None and len(b.node.sync._peers) == 1)
        assert r.peer is not None
        good = coinbase_spend(b, 6)
        # Spends more than the coin holds: a consensus failure (bad-txns-in-belowout).
        cb = b.node.block_at(6).txs[0]
        bad = spend_op_true_p2wsh(
            OutPoint(cb.txid, 0), [TxOut(cb.outputs[0].value + 1, P2WSH_OP_TRUE)]
        )
        r.peer.send(m.TxMsg(bad))
        await wait_for(lambda: b.node.connman.misbehaved != [], 10, "the punishment")
        assert b.node.connman.misbehaved[0][1].startswith(
            "invalid transaction: bad-txns-in-belowout"
        )
        assert bad.wtxid in b.relay.recent_rejects
        assert not b.pool.contains(good.txid)

    asyncio.run(main())


def _block_with(n: RelayNode, txs: tuple[Tx, ...]) -> Block:
    tip = n.node.block_at(n.node.chain.height)
    height = n.node.chain.height + 1
    fees = 10_000 * len(txs)
    cb = coinbase_tx(height, [TxOut(block_subsidy(height, REGTEST) + fees, P2WSH_OP_TRUE)])
    return solve(assemble_block(tip.hash, tip.header.time + 1, 0x207FFFFF, cb, txs,
                                witness_commitment=True))  # fmt: skip


def test_compact_blocks_are_rebuilt_from_the_pool_or_completed_with_blocktxn(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        r = Recorder()
        connect(r, b)
        await wait_for(lambda: r.peer is not None and len(b.node.sync._peers) == 1)
        peer = r.peer
        assert peer is not None
        # b offers compact blocks (low bandwidth) to every peer.
        assert [x.announce for x in r.of(m.SendCmpct)] == [False]
        # All of the block's transactions in b's pool: rebuilt with no round trip.
        tx1, tx2 = coinbase_spend(b, 7), coinbase_spend(b, 8)
        assert b.accept(tx1).allowed and b.accept(tx2).allowed
        block = _block_with(b, (tx1, tx2))
        peer.send(HeaderAndShortIDs.from_block(block, 7).message)
        await wait_for(lambda: b.node.tip[1] == block.hash, 10, "the block connected")
        assert b.node.sync.compact_stats == {"reconstructed": 1, "roundtrip": 0, "fallback": 0}
        assert b.pool.txids() == []
        assert r.of(m.GetBlockTxn) == []
        # One transaction b has never seen: a getblocktxn for it, then the block.
        tx3, tx4 = coinbase_spend(b, 9), coinbase_spend(b, 10)
        assert b.accept(tx3).allowed
        block2 = _block_with(b, (tx3, tx4))
        peer.send(HeaderAndShortIDs.from_block(block2, 8).message)
        await wait_for(lambda: len(r.of(m.GetBlockTxn)) == 1, 10, "the getblocktxn")
        req = r.of(m.GetBlockTxn)[0]
        assert req.block_hash == block2.hash and req.indexes == (2,)
        peer.send(m.BlockTxn(block2.hash, (tx4,)))
        await wait_for(lambda: b.node.tip[1] == block2.hash, 10, "the second block")
        assert b.node.sync.compact_stats == {"reconstructed": 1, "roundtrip": 1, "fallback": 0}
        # b serves getblocktxn for a recent block.
        peer.send(m.GetBlockTxn(block2.hash, (1, 2)))
        await wait_for(lambda: len(r.of(m.BlockTxn)) == 1, 10, "the blocktxn")
        assert r.of(m.BlockTxn)[0].txs == (tx3, tx4)

    asyncio.run(main())


def test_replaced_rejected_and_orphan_transactions_rebuild_compact_blocks(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    """Core's ``vExtraTxnForCompact``: what a peer sent that is not in the pool — a replaced
    transaction, one refused by policy only (dust), an orphan — still fills a compact block;
    only the transaction b never saw is asked for."""

    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        r = Recorder()
        connect(r, b)
        await wait_for(lambda: r.peer is not None and len(b.node.sync._peers) == 1)
        peer = r.peer
        assert peer is not None
        replaced, replacement = coinbase_spend(b, 11), coinbase_spend(b, 11, fee=50_000)
        cb = b.node.block_at(12).txs[0]
        dust = spend_op_true_p2wsh(
            OutPoint(cb.txid, 0),
            [TxOut(cb.outputs[0].value - 10_100, P2WSH_OP_TRUE), TxOut(100, P2WSH_OP_TRUE)],
        )
        parent = coinbase_spend(b, 13)
        orphan = child_of(parent)
        peer.send(m.TxMsg(replaced))
        await wait_for(lambda: b.pool.contains(replaced.txid), 10, "the first spend")
        peer.send(m.TxMsg(replacement))
        await wait_for(lambda: b.pool.contains(replacement.txid), 10, "the replacement")
        peer.send(m.TxMsg(dust))
        await wait_for(lambda: dust.wtxid in b.relay.recent_rejects, 10, "the dust refusal")
        peer.send(m.TxMsg(orphan))
        await wait_for(lambda: b.relay.orphans.have_tx(orphan.wtxid), 10, "the orphan")
        kept = {wtxid for wtxid, _ in b.node.sync._extra_txs}
        assert kept == {replaced.wtxid, dust.wtxid, orphan.wtxid}
        block = _block_with(b, (replaced, dust, parent, orphan))
        peer.send(HeaderAndShortIDs.from_block(block, 9).message)
        await wait_for(lambda: len(r.of(m.GetBlockTxn)) == 1, 10, "the getblocktxn")
        assert r.of(m.GetBlockTxn)[0].indexes == (3,)  # the parent alone (0 is the coinbase)
        peer.send(m.BlockTxn(block.hash, (parent,)))
        await wait_for(lambda: b.node.tip[1] == block.hash, 10, "the block connected")
        assert b.node.sync.compact_stats == {"reconstructed": 0, "roundtrip": 1, "fallback": 0}
        assert not b.pool.contains(replacement.txid)  # the block's spend won

    asyncio.run(main())


def test_the_unbroadcast_set_is_announced_again(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    """Core's ``ReattemptInitialBroadcast``: a transaction submitted while no peer was there is
    announced to a peer that connects later once the period comes round, and one that left the
    pool leaves the set."""

    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        tx, gone = coinbase_spend(b, 14), coinbase_spend(b, 15)
        for t in (tx, gone):
            assert b.accept(t).allowed
            b.pool.add_unbroadcast(t.txid)
        with b.node.lock:
            b.pool.remove_recursive(gone.txid, Removal.EXPIRY)
        r = Recorder()
        connect(r, b)
        await wait_for(lambda: r.peer is not None and len(b.node.sync._peers) == 1)
        await asyncio.sleep(0.3)  # a few trickles: nothing was queued for the new peer
        assert [i.hash for inv in r.of(m.Inv) for i in inv.items] == []
        b.relay._next_rebroadcast = 0.0  # the period has come round
        await wait_for(lambda: r.of(m.Inv) != [], 10, "the announcement")
        announced = [i.hash for inv in r.of(m.Inv) for i in inv.items]
        assert tx.wtxid in announced or tx.txid in announced
        assert gone.wtxid not in announced and gone.txid not in announced
        assert b.relay._next_rebroadcast > 0.0
        with b.node.lock:
            assert gone.txid not in b.pool.unbroadcast

    asyncio.run(main())


# -- permissions (peer.permissions, set by the connection manager from -whitelist) ---------------


def _relay_state(n: RelayNode, peer: Any) -> Any:
    return n.relay._peers[peer.id]


def test_noban_peers_get_announcements_without_the_trickle(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        fast, slow = Recorder(), Recorder()
        _, at_fast = connect(fast, b)
        _, at_slow = connect(slow, b)
        at_fast.permissions = NetPermissions.NOBAN
        await wait_for(lambda: len(b.node.sync._peers) == 2 and len(b.relay._peers) == 2)
        for p in (at_fast, at_slow):
            _relay_state(b, p).next_inv = float("inf")  # no trickle time ever comes
        b.relay._next_inbound_inv = float("inf")
        assert _relay_state(b, at_fast).preferred and not _relay_state(b, at_slow).preferred
        tx = coinbase_spend(b, 11)
        assert b.accept(tx).allowed
        await wait_for(lambda: bool(fast.of(m.Inv)), 10, "the noban peer's inv")
        assert [i.hash for x in fast.of(m.Inv) for i in x.items] == [tx.txid]
        assert slow.of(m.Inv) == []
        assert list(_relay_state(b, at_slow).queue) == [tx.wtxid]  # waits for its trickle

    asyncio.run(main())


def test_mempool_is_answered_only_with_the_mempool_permission(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        txs = [coinbase_spend(b, h) for h in (12, 13)]
        for tx in txs:
            assert b.accept(tx).allowed
        # Connected after the transactions came: nothing is queued for them.
        r, quiet, plain = Recorder(), Recorder(), Recorder()
        _, at_r = connect(r, b)
        _, at_quiet = connect(quiet, b)
        _, at_plain = connect(plain, b)
        at_r.permissions = NetPermissions.MEMPOOL
        at_quiet.permissions = NetPermissions.NOBAN
        await wait_for(lambda: len(b.relay._peers) == 3 and r.peer and quiet.peer and plain.peer)
        assert r.peer is not None and quiet.peer is not None and plain.peer is not None
        r.peer.send(m.MempoolMsg())
        await wait_for(lambda: bool(r.of(m.Inv)), 10, "the pool's inv")
        assert sorted(i.hash for x in r.of(m.Inv) for i in x.items) == sorted(t.txid for t in txs)
        # Fresh and never announced otherwise, yet now they may be asked for.
        r.peer.send(m.GetData(tuple(m.InvItem(m.InvType.MSG_WITNESS_TX, t.txid) for t in txs)))
        await wait_for(lambda: len(r.of(m.TxMsg)) == 2, 10, "the transactions")
        assert r.of(m.NotFound) == []
        # noban without mempool: ignored; neither: disconnected (Core).
        quiet.peer.send(m.MempoolMsg())
        quiet.peer.send(m.GetData((m.InvItem(m.InvType.MSG_WITNESS_TX, txs[0].txid),)))
        await wait_for(lambda: bool(quiet.of(m.NotFound)), 10, "the notfound")
        assert not at_quiet.closed and quiet.of(m.Inv) == []
        plain.peer.send(m.MempoolMsg())
        await wait_for(lambda: at_plain.closed, 10, "the disconnection")
        assert at_plain.disconnect_reason == "mempool request with bloom filters disabled"

    asyncio.run(main())


def test_forcerelay_announces_again_what_we_already_have(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        old, forced = coinbase_spend(b, 14), coinbase_spend(b, 15)
        for tx in (old, forced):
            assert b.accept(tx).allowed
        watcher, plain, force = Recorder(), Recorder(), Recorder()
        connect(watcher, b)
        connect(plain, b)
        _, at_force = connect(force, b)
        at_force.permissions = NetPermissions.FORCERELAY
        await wait_for(lambda: len(b.relay._peers) == 3 and plain.peer and force.peer)
        assert plain.peer is not None and force.peer is not None
        plain.peer.send(m.TxMsg(old))  # already have it: nothing happens
        force.peer.send(m.TxMsg(forced))  # already have it: announced again
        await wait_for(lambda: bool(watcher.of(m.Inv)), 10, "the forced announcement")
        assert [i.hash for x in watcher.of(m.Inv) for i in x.items] == [forced.txid]

    asyncio.run(main())


def test_blocksonly_takes_transactions_only_from_relay_peers(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        b.relay.ignore_incoming_txs = True
        plain, relay = Recorder(), Recorder()
        _, at_plain = connect(plain, b)
        _, at_relay = connect(relay, b)
        at_relay.permissions = NetPermissions.RELAY
        await wait_for(lambda: len(b.relay._peers) == 2 and plain.peer and relay.peer)
        assert plain.peer is not None and relay.peer is not None
        tx, other = coinbase_spend(b, 16), coinbase_spend(b, 17)
        relay.peer.send(m.TxMsg(tx))
        await wait_for(lambda: b.pool.contains(tx.txid), 10, "the relay peer's tx")
        plain.peer.send(m.TxMsg(other))
        await wait_for(lambda: at_plain.closed, 10, "the disconnection")
        assert at_plain.disconnect_reason == "transaction sent in violation of protocol"
        assert not b.pool.contains(other.txid) and not at_relay.closed

    asyncio.run(main())


def test_a_new_block_announced_by_headers_is_fetched_and_served_compact(
    template: Path, tmp_path: Path, made: list[RelayNode]
) -> None:
    async def main() -> None:
        b = relay_node(made, template, tmp_path / "b")
        r = Recorder()
        _, at_b = connect(r, b)
        at_b.compact_blocks = m.SendCmpct(False, m.CMPCTBLOCKS_VERSION)  # r speaks BIP152
        await wait_for(lambda: r.peer is not None and len(b.node.sync._peers) == 1)
        peer = r.peer
        assert peer is not None
        tx = coinbase_spend(b, 18)
        assert b.accept(tx).allowed
        block = _block_with(b, (tx,))
        peer.send(m.Headers((block.header,)))
        await wait_for(lambda: any(i.hash == block.hash for g in r.of(m.GetData)
                                   for i in g.items), 10, "the request")  # fmt: skip
        [asked] = [i for g in r.of(m.GetData) for i in g.items if i.hash == block.hash]
        assert asked.type == m.InvType.MSG_CMPCT_BLOCK
        peer.send(HeaderAndShortIDs.from_block(block, 9).message)
        await wait_for(lambda: b.node.tip[1] == block.hash, 10, "the block connected")
        assert b.node.sync.compact_stats == {"reconstructed": 1, "roundtrip": 0, "fallback": 0}
        assert b.node.sync.compact_tx_stats == {"prefilled": 1, "mempool": 1, "extra": 0,
                                                "requested": 0}  # fmt: skip
        # Asked for as a compact block: the tip comes compact, an old block whole.
        old = b.node.block_at(b.node.chain.height - 6)
        peer.send(m.GetData((m.InvItem(m.InvType.MSG_CMPCT_BLOCK, block.hash),
                             m.InvItem(m.InvType.MSG_CMPCT_BLOCK, old.hash))))  # fmt: skip
        await wait_for(lambda: bool(r.of(m.CmpctBlock)) and bool(r.of(m.BlockMsg)), 10)
        [cmpct] = r.of(m.CmpctBlock)
        assert cmpct.header.hash == block.hash and len(cmpct.short_ids) == 1
        assert [x.block.hash for x in r.of(m.BlockMsg)] == [old.hash]

    asyncio.run(main())
