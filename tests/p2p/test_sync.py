"""The sync manager end to end: real chain states in temporary directories, sync managers on one
event loop, linked by the in-memory transport of ``synctools`` (every message encoded and decoded
again), with scripted peers for the misbehaving ones and a hand-moved clock for the timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peercash.chain.index import FAILED_MASK, FAILED_VALID, HAVE_DATA
from peercash.consensus.errors import RuleError
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import (
    P2WSH_OP_TRUE,
    assemble_block,
    coinbase_tx,
    solve,
    spend_op_true_p2wsh,
)
from peercash.p2p import messages as m
from peercash.p2p import sync as sync_module
from peercash.p2p.sync import HEADERS_RESPONSE_TIME, build_locator
from peercash.rpc import blockchain as bc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synctools import (
    GENESIS,
    NOW,
    REGTEST_WORK,
    HeaderServer,
    Recorder,
    SyncNode,
    connect,
    copy_chain,
    grind_header,
    header_chain,
    mine_template,
    wait_for,
)

CHAIN_LENGTH = 300


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regtest datadir with 300 blocks (mined once; each test copies it)."""
    return mine_template(tmp_path_factory.mktemp("template") / "a", CHAIN_LENGTH)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[SyncNode]]:
    made: list[SyncNode] = []
    yield made
    for n in made:
        n.close()


def node_from(nodes: list[SyncNode], path: Path, **kw: Any) -> SyncNode:
    n = SyncNode(path, **kw)
    nodes.append(n)
    return n


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def hashes_of(msgs: list[Any]) -> list[bytes]:
    out: list[bytes] = []
    for msg in msgs:
        if isinstance(msg, m.Headers):
            out += [h.hash for h in msg.headers]
        elif isinstance(msg, m.Inv | m.GetData):
            out += [i.hash for i in msg.items]
    return out


# -- sync, relay and serving -------------------------------------------------------------------


def test_sync_relay_and_a_third_node(template: Path, tmp_path: Path, nodes: list[SyncNode]) -> None:
    async def main() -> None:
        a = node_from(nodes, copy_chain(template, tmp_path / "a"))
        b = node_from(nodes, tmp_path / "b")
        assert a.sync.is_initial_block_download() is False
        assert b.sync.is_initial_block_download() is True
        a_tip = a.tip
        assert a_tip[0] == CHAIN_LENGTH

        # The loop's lag while B validates 300 blocks.
        lag = [0.0]
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                lag[0] = max(lag[0], time.perf_counter() - t - 0.005)

        probing = asyncio.create_task(probe())
        start = time.perf_counter()
        b_to_a, a_to_b = connect(b, a)
        await wait_for(lambda: b.tip == a_tip, 60, "B to sync")
        synced = time.perf_counter() - start
        stop.set()
        await probing
        print(
            f"B synced {CHAIN_LENGTH} blocks in {synced:.2f} s; max loop lag {lag[0] * 1000:.0f} ms"
        )
        assert lag[0] < 1.0
        assert b.sync.is_initial_block_download() is False
        await b.sync.idle()
        assert b.sync.peer_stats(b_to_a.id) == {
            "synced_headers": 300, "synced_blocks": 300, "presynced_headers": -1, "inflight": [],
        }  # fmt: skip
        assert b.sync.peer_stats(12345) == {}
        # B asked A for headers from genesis, then for blocks 1..300, 16 at a time at most.
        first = b_to_a.sent[0]
        assert isinstance(first, m.GetHeaders) and first.locator == (GENESIS.hash,)
        requested = hashes_of(b_to_a.sent_of(m.GetData))
        assert requested == [a.chain.chain[h].hash for h in range(1, 301)]
        assert all(len(x.items) <= 16 for x in b_to_a.sent_of(m.GetData))
        assert {x.items[0].type for x in b_to_a.sent_of(m.GetData)} == {m.InvType.MSG_WITNESS_BLOCK}
        # After its headers sync, B asked A for header announcements (Core's sendheaders); A
        # knows no block of B's, so it does not ask (yet), as Core.
        assert len(b_to_a.sent_of(m.SendHeaders)) == 1 and a_to_b.prefers_headers
        assert a_to_b.sent_of(m.SendHeaders) == [] and not b_to_a.prefers_headers
        # RPC sees the end of IBD.
        info = bc.getblockchaininfo(b.facade)
        assert info["blocks"] == info["headers"] == 300
        assert info["initialblockdownload"] is False and info["verificationprogress"] == 1.0

        # A third, fresh node syncs from B (B answers getheaders and getdata from its chain).
        c = node_from(nodes, tmp_path / "c")
        c_to_b, b_to_c = connect(c, b)
        await wait_for(lambda: c.tip == a_tip, 60, "C to sync from B")
        await c.sync.idle()
        assert c.sync.peer_stats(c_to_b.id)["synced_blocks"] == 300

        # A mines one more: A announces it to B with a header (B asked for sendheaders), B
        # fetches it and relays it to C, and not back to A.
        before_a = len(a_to_b.sent)
        before_b = len(b_to_a.sent)
        new = await asyncio.to_thread(a.mine, 1)
        await wait_for(lambda: b.tip[0] == 301 and c.tip[0] == 301, 30, "block 301 to reach C")
        assert a.tip == b.tip == c.tip and b.tip[1].hex() == bytes.fromhex(new[0])[::-1].hex()
        announced = a_to_b.sent[before_a:]
        assert [type(x) for x in announced[:1]] == [m.Headers]
        assert hashes_of(announced[:1]) == [b.tip[1]]
        relayed = [
            x for x in b_to_c.sent if isinstance(x, m.Headers) and b.tip[1] in hashes_of([x])
        ]
        assert len(relayed) == 1 and len(relayed[0].headers) == 1
        # B sent A only the getdata for the new block: no announcement back.
        assert [type(x) for x in b_to_a.sent[before_b:]] == [m.GetData]
        assert hashes_of(b_to_a.sent[before_b:]) == [b.tip[1]]

    run(main())


def test_getheaders_getblocks_and_getdata_answered(
    template: Path, tmp_path: Path, nodes: list[SyncNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        a = node_from(nodes, copy_chain(template, tmp_path / "a"))
        r = Recorder()
        connect(r, a)
        await wait_for(lambda: r.peer is not None)
        peer = r.peer
        assert peer is not None
        chain = [a.chain.chain[h] for h in range(301)]

        async def ask(msg: m.Message, kind: type[m.Message], count: int = 1) -> list[Any]:
            before = len(r.of(kind))
            peer.send(msg)
            await wait_for(lambda: len(r.of(kind)) >= before + count, 10, f"{kind.__name__}")
            await a.sync.idle()
            return r.of(kind)[before:]

        zero = bytes(32)
        [h] = await ask(m.GetHeaders(m.PROTOCOL_VERSION, (GENESIS.hash,), zero), m.Headers)
        assert [x.hash for x in h.headers] == [e.hash for e in chain[1:]]
        [h] = await ask(m.GetHeaders(70016, (GENESIS.hash,), chain[10].hash), m.Headers)
        assert [x.hash for x in h.headers] == [e.hash for e in chain[1:11]]
        [h] = await ask(m.GetHeaders(70016, (), chain[5].hash), m.Headers)  # no locator
        assert [x.hash for x in h.headers] == [chain[5].hash]
        [h] = await ask(m.GetHeaders(70016, (b"\x11" * 32, chain[100].hash), zero), m.Headers)
        assert [x.hash for x in h.headers] == [e.hash for e in chain[101:]]
        [h] = await ask(m.GetHeaders(70016, (chain[300].hash,), zero), m.Headers)
        assert h.headers == ()  # the peer has our tip

        [inv] = await ask(m.GetBlocks(70016, (chain[0].hash,), chain[250].hash), m.Inv)
        assert [i.hash for i in inv.items] == [e.hash for e in chain[1:250]]
        assert {i.type for i in inv.items} == {m.InvType.MSG_BLOCK}
        monkeypatch.setattr(sync_module, "MAX_BLOCKS_TO_INV", 100)
        [inv] = await ask(m.GetBlocks(70016, (chain[0].hash,), zero), m.Inv)
        assert [i.hash for i in inv.items] == [e.hash for e in chain[1:101]]

        block5 = a.block_at(5)
        assert block5.serialize() != block5.serialize_legacy()  # it has a witness
        got = await ask(
            m.GetData(
                (
                    m.InvItem(m.InvType.MSG_BLOCK, chain[5].hash),
                    m.InvItem(m.InvType.MSG_WITNESS_BLOCK, chain[5].hash),
                    m.InvItem(m.InvType.MSG_WITNESS_BLOCK, b"\x22" * 32),
                    m.InvItem(m.InvType.MSG_WITNESS_TX, b"\x33" * 32),
                    m.InvItem(m.InvType.MSG_WITNESS_BLOCK, chain[100].hash),  # continuation
                )
            ),
            m.BlockMsg,
            3,
        )
        assert got[0].block.serialize() == block5.serialize_legacy()
        assert got[1].block.serialize() == block5.serialize()
        assert got[2].block.hash == chain[100].hash
        notfound = r.of(m.NotFound)
        assert [(i.type, i.hash) for x in notfound for i in x.items] == [
            (m.InvType.MSG_WITNESS_BLOCK, b"\x22" * 32),
            (m.InvType.MSG_WITNESS_TX, b"\x33" * 32),
        ]
        # Asking for the last block of a cut-short getblocks answer prompts an inv of the tip.
        assert [i.hash for i in r.of(m.Inv)[-1].items] == [chain[300].hash]

    run(main())


def test_a_peer_is_held_while_its_getdata_is_served(
    template: Path, tmp_path: Path, nodes: list[SyncNode]
) -> None:
    """Core's ProcessMessages takes no further message from a peer until its getdata is served
    ("prevents m_getdata_requests to grow unbounded"): the sync holds the peer's processing
    from the request until the last block went out, so a peer that floods getdata (and maybe
    never reads) cannot make the queue grow past one request."""

    async def main() -> None:
        a = node_from(nodes, copy_chain(template, tmp_path / "a"))
        r = Recorder()
        connect(r, a)
        await wait_for(lambda: r.peer is not None)
        at_a = next(iter(a.sync._peers.values())).peer
        holds: list[str] = []
        at_a.pause_processing = lambda: holds.append("pause")  # type: ignore[attr-defined]
        at_a.resume_processing = lambda: holds.append("resume")  # type: ignore[attr-defined]
        chain = [a.chain.chain[h] for h in range(301)]
        peer = r.peer
        assert peer is not None
        # Only transactions: answered at once with a notfound, nothing to hold.
        peer.send(m.GetData((m.InvItem(m.InvType.MSG_WITNESS_TX, b"\x33" * 32),)))
        await wait_for(lambda: len(r.of(m.NotFound)) == 1)
        assert holds == []
        # Blocks: held from the request until the last of them is sent.
        items = tuple(m.InvItem(m.InvType.MSG_WITNESS_BLOCK, e.hash) for e in chain[1:41])
        a.sync.on_message(at_a, m.GetData(items))  # as the transport delivers it
        state = a.sync._peers[at_a.id]
        # The first batch is being read; the rest wait in the queue.
        assert holds == ["pause"] and state.paused_getdata and len(state.getdata) == 40 - 16
        await wait_for(lambda: len(r.of(m.BlockMsg)) == 40, 10, "the blocks")
        await a.sync.idle()
        assert holds == ["pause", "resume"] and not state.paused_getdata
        assert [x.block.hash for x in r.of(m.BlockMsg)] == [e.hash for e in chain[1:41]]
        # One block: held while it is read too (Core answers it before reading on).
        a.sync.on_message(at_a, m.GetData(items[:1]))
        assert holds[-1] == "pause" and state.serving and not state.getdata
        await wait_for(lambda: len(r.of(m.BlockMsg)) == 41, 10, "one more block")
        await a.sync.idle()
        assert holds == ["pause", "resume", "pause", "resume"]

    run(main())


def test_queued_getdata_messages_are_served_together_within_the_send_room(
    template: Path, tmp_path: Path, nodes: list[SyncNode]
) -> None:
    """A syncing peer asks for one block each time one arrives, so getdata messages wait
    behind the one being served. The sync takes them out of the peer's queue
    (``take_queued``) and reads their blocks in one go on the validation thread, as many as
    the peer's send buffer has room for; with no room, one block a read. Either way every
    block goes out once, in the order asked."""

    async def main() -> None:
        a = node_from(nodes, copy_chain(template, tmp_path / "a"))
        r = Recorder()
        connect(r, a)
        await wait_for(lambda: r.peer is not None)
        at_a = next(iter(a.sync._peers.values())).peer
        chain = [a.chain.chain[h] for h in range(301)]
        pending: list[m.GetData] = []

        def take_queued(command: bytes) -> m.Message | None:
            return pending.pop(0) if command == b"getdata" and pending else None

        at_a.take_queued = take_queued  # type: ignore[attr-defined]
        jobs = [0]
        submit = a.sync._submit

        def counting_submit(*args: Any) -> None:
            jobs[0] += 1
            submit(*args)

        a.sync._submit = counting_submit  # type: ignore[method-assign]

        def ask(first: int, n: int) -> None:
            msgs = [m.GetData((m.InvItem(m.InvType.MSG_WITNESS_BLOCK, chain[h].hash),))
                    for h in range(first, first + n)]  # fmt: skip
            pending.extend(msgs[1:])
            a.sync.on_message(at_a, msgs[0])

        ask(1, 10)  # ten getdata messages of one block: one read
        await wait_for(lambda: len(r.of(m.BlockMsg)) == 10, 10, "ten blocks")
        await a.sync.idle()
        assert jobs[0] == 1 and not pending
        # No room in the send buffer: one block per read, still all of them, in order.
        at_a.send_pause = 1  # type: ignore[attr-defined]
        at_a.send_buffer_size = 1  # type: ignore[attr-defined]
        ask(11, 5)
        await wait_for(lambda: len(r.of(m.BlockMsg)) == 15, 10, "five more")
        await a.sync.idle()
        assert jobs[0] == 1 + 5
        assert [x.block.hash for x in r.of(m.BlockMsg)] == [e.hash for e in chain[1:16]]

    run(main())


def _block(prev: Block | Header, height: int, *, extra: int = 0, time_: int | None = None,
           tag: int = 0, txs: tuple[Tx, ...] = ()) -> Block:  # fmt: skip
    header = prev.header if isinstance(prev, Block) else prev
    cb = coinbase_tx(height, [TxOut(block_subsidy(height, REGTEST) + extra, P2WSH_OP_TRUE)],
                     extra=tag.to_bytes(4, "little"))  # fmt: skip
    t = header.time + 600 if time_ is None else time_
    return solve(assemble_block(header.hash, t, 0x207FFFFF, cb, txs, witness_commitment=True))


def _chain_of_blocks(n: int, tag: int = 0) -> list[Block]:
    out = [GENESIS]
    for h in range(1, n + 1):
        out.append(_block(out[-1], h, tag=tag))
    return out


def test_misbehaving_peers_are_reported_with_cores_reasons(
    tmp_path: Path, nodes: list[SyncNode]
) -> None:
    async def main() -> None:
        b = node_from(nodes, tmp_path / "b")
        good = _chain_of_blocks(3)
        bad = _block(good[3], 4, extra=1)  # the coinbase claims a satoshi too much
        blocks = [*good, bad]
        server = HeaderServer([x.header for x in blocks[1:]], {x.hash: x for x in blocks})
        b_to_s, _ = connect(b, server)
        await wait_for(lambda: b_to_s.closed, 20, "the peer with the invalid block to go")
        await b.sync.idle()
        assert b.tip[0] == 3
        limit = block_subsidy(4, REGTEST)
        reason = f"bad-cb-amount, coinbase pays too much (actual={limit + 1} vs limit={limit})"
        assert b.connman.misbehaved == [(b_to_s.id, reason)]

        async def one(headers: list[Header], *, inbound: bool = False,
                      blocks: dict[bytes, Block] | None = None) -> tuple[Any, ...]:  # fmt: skip
            """A peer that sends ``headers`` unasked; what the connection manager was told."""
            r = Recorder()
            before = len(b.connman.misbehaved)
            if inbound:
                at_r, _ = connect(r, b)
            else:
                _, at_r = connect(b, r)
            await wait_for(lambda: r.peer is not None)
            at_r.send(m.Headers(tuple(headers)))
            for _ in range(5):
                await asyncio.sleep(0.02)
                await b.sync.idle()
            if blocks is not None:
                for x in blocks.values():
                    at_r.send(m.BlockMsg(x))
                for _ in range(5):
                    await asyncio.sleep(0.02)
                    await b.sync.idle()
            return tuple(reason for _, reason in b.connman.misbehaved[before:])

        tip = good[3].header
        # A header whose hash does not meet its own target.
        h = grind_header(tip.hash, tip.time + 600)
        nonce = next(n for n in range(1 << 32) if int.from_bytes(
            Header(h.version, h.prev_hash, h.merkle_root, h.time, h.bits, n).hash, "little"
        ) > (1 << 255))  # fmt: skip
        weak = Header(h.version, h.prev_hash, h.merkle_root, h.time, h.bits, nonce)
        assert await one([weak]) == ("header with invalid proof of work",)
        # Headers that do not follow each other.
        two = header_chain(2, start=tip, tag=5)
        assert await one([two[1], two[0]]) == ("non-continuous headers sequence",)
        # A header with the wrong difficulty (regtest's is fixed): invalid.
        harder = grind_header(tip.hash, tip.time + 600, bits=0x1F7FFFFF)
        assert await one([harder]) == ("invalid header received",)
        # A header too far in the future: perhaps our clock is wrong; not punished.
        future = grind_header(tip.hash, NOW + 3 * 3600)
        assert await one([future]) == ()
        # The invalid block's header again: a known-invalid block, punished from an outbound
        # peer only (Core's BLOCK_CACHED_INVALID).
        assert await one([bad.header], inbound=True) == ()
        assert await one([bad.header]) == ("invalid header received",)
        # A block whose transactions do not match its (valid) header: "mutated block"; the header
        # stays valid, so the real block is still accepted afterwards.
        real = _block(good[3], 4, tag=9)
        other = _block(good[3], 4, tag=10)
        mutated = Block(real.header, other.txs)
        assert await one([real.header], blocks={real.hash: mutated}) == ("mutated block",)
        assert await one([], blocks={real.hash: real}) == ()
        await wait_for(lambda: b.tip == (4, real.hash), 10, "the real block 4")
        # A block whose parent we do not know (Core: BLOCK_MISSING_PREV, punished).
        orphan = _block(_block(real, 5, tag=11), 6, tag=11)
        assert await one([], blocks={orphan.hash: orphan}) == ("prev-blk-not-found",)

    run(main())


def test_a_block_found_invalid_elsewhere_is_not_blamed_on_who_sends_it_again(
    template: Path, tmp_path: Path, nodes: list[SyncNode]
) -> None:
    """A block that failed outside the sync (``submitblock`` on an RPC thread) is no peer's
    doing. A peer that sends it afterwards gets it treated as known invalid (Core's
    BLOCK_CACHED_INVALID: no punishment from an inbound peer), and a later unit of the sync that
    looks at the chain's last error must not take that old failure for news and blame whoever
    sent the block last (found by the functional hostile-peer load test)."""

    async def main() -> None:
        a = node_from(nodes, copy_chain(template, tmp_path / "a"))
        tip = a.block_at(300)
        bad = _block(tip, 301, extra=1)
        with a.lock:  # as submitblock does, on another thread
            with contextlib.suppress(RuleError):
                a.chain.accept_block(bad)
            entry = a.chain.index.get(bad.hash)
            assert entry is not None and entry.status & FAILED_MASK
        x, y = Recorder(), Recorder()
        connect(x, a)
        connect(y, a)
        await wait_for(lambda: x.peer is not None and y.peer is not None)
        assert x.peer is not None and y.peer is not None
        x.peer.send(m.BlockMsg(bad))
        await asyncio.sleep(0.05)
        await a.sync.idle()
        good = _block(tip, 301, tag=3)
        y.peer.send(m.BlockMsg(good))
        await wait_for(lambda: a.tip == (301, good.hash), 10, "the good block")
        await a.sync.idle()
        assert a.connman.misbehaved == []
        assert not x.peer.closed

    run(main())


def test_unconnecting_headers_get_a_getheaders_and_no_punishment(
    tmp_path: Path, nodes: list[SyncNode]
) -> None:
    async def main() -> None:
        b = node_from(nodes, tmp_path / "b")
        r = Recorder()
        b_to_r, r_to_b = connect(b, r)
        await wait_for(lambda: len(r.of(m.GetHeaders)) == 1, 5, "the initial getheaders")
        r_to_b.send(m.Headers(()))  # nothing to give: our request is answered
        chain = header_chain(4)
        for i in range(20):
            r_to_b.send(m.Headers((chain[3],)))  # its parent is unknown to B
            await asyncio.sleep(0.01)
            await b.sync.idle()
            if i == 9:
                b.mono[0] += HEADERS_RESPONSE_TIME + 1  # a new getheaders is allowed
        asks = r.of(m.GetHeaders)
        assert len(asks) == 3  # the initial one, then one per two minutes
        assert asks[1].locator == asks[2].locator == (GENESIS.hash,)  # from our best header
        assert b.connman.misbehaved == [] and not b_to_r.closed
        assert b.sync.downloader.last_unknown(b_to_r.id) == chain[3].hash
        # The headers that connect it arrive: the announced block is now known to be the
        # peer's best.
        r_to_b.send(m.Headers(tuple(chain)))
        await wait_for(lambda: b.sync.peer_stats(b_to_r.id).get("synced_headers") == 4, 5)

    run(main())


def test_stalling_peer_replaced_and_disconnected(
    template: Path, tmp_path: Path, nodes: list[SyncNode]
) -> None:
    async def main() -> None:
        mono = [1000.0]
        a = node_from(nodes, copy_chain(template, tmp_path / "a"), mono=mono)
        b = node_from(nodes, tmp_path / "b", mono=mono, window=64)
        headers = [a.chain.chain[h].header for h in range(1, 301)]
        staller = HeaderServer(headers)  # serves headers, never blocks
        b_to_s, _ = connect(b, staller)
        await wait_for(lambda: len(staller.getdata) == 16, 10, "requests to the staller")
        b_to_a, _ = connect(b, a)
        # B fetches 17..64 from A; then the 64-block window cannot move: the staller holds its
        # first block.
        await wait_for(lambda: b.tip[0] == 0 and _stored(b) == 48, 10, "17..64 from A")
        await asyncio.sleep(0.1)
        assert not b_to_s.closed
        mono[0] += 2.1  # past the 2 s stalling timeout
        await wait_for(lambda: b_to_s.closed, 5, "the staller to be dropped")
        assert b_to_s.disconnect_reason == "Peer is stalling block download"
        await wait_for(lambda: b.tip == a.tip, 30, "B to sync from A")
        assert staller.getdata == [e.hash for e in a.chain.chain[1:17]]
        asked_a = hashes_of(b_to_a.sent_of(m.GetData))
        assert sorted(asked_a) == sorted(e.hash for e in a.chain.chain[1:301])
        assert asked_a[48:64] == [e.hash for e in a.chain.chain[1:17]]  # re-requested first
        assert b.connman.misbehaved == []
        # The stalling timeout doubled, then shrank back as blocks connected.
        assert b.sync.downloader.stalling_timeout == 2.0

    run(main())


def _stored(n: SyncNode) -> int:
    with n.lock:
        return sum(1 for e in n.chain.index.entries.values() if e.status & HAVE_DATA) - 1


def test_block_download_timeout(template: Path, tmp_path: Path, nodes: list[SyncNode]) -> None:
    async def main() -> None:
        mono = [1000.0]
        a = node_from(nodes, copy_chain(template, tmp_path / "a"), mono=mono)
        b = node_from(nodes, tmp_path / "b", mono=mono)
        staller = HeaderServer([a.chain.chain[h].header for h in range(1, 301)])
        b_to_s, _ = connect(b, staller)
        await wait_for(lambda: len(staller.getdata) == 16, 10, "requests to the staller")
        connect(b, a)
        await wait_for(lambda: _stored(b) == 284, 10, "17..300 from A")
        mono[0] += 600  # one block interval: not yet
        await asyncio.sleep(0.1)
        assert not b_to_s.closed
        mono[0] += 1
        await wait_for(lambda: b_to_s.closed, 5, "the slow peer to be dropped")
        first = a.chain.chain[1].header.hash_hex
        assert b_to_s.disconnect_reason == f"Timeout downloading block {first}"
        await wait_for(lambda: b.tip == a.tip, 30, "B to sync from A")

    run(main())


def test_low_work_headers_are_not_stored(tmp_path: Path, nodes: list[SyncNode]) -> None:
    params = dataclasses.replace(REGTEST, min_chain_work=10**9)

    async def main() -> None:
        b = node_from(nodes, tmp_path / "b", params=params, rng=random.Random(7))
        r7 = random.Random(7)
        r7.randbytes(16)  # the salt, then the commitment offset, as the sync manager draws them
        offset = r7.randrange(275)
        n_bits = sum(1 for h in range(1, 20_001) if h % 275 == offset)
        server = HeaderServer(header_chain(20_000))
        presynced: list[int] = []
        memory: list[int] = []

        def watch(peer: Any, msg: m.GetHeaders) -> None:
            state = b.sync._peers[next(iter(b.sync._peers))]
            hs = state.headers_sync
            memory.append(hs.memory_usage() if hs is not None else 0)
            presynced.append(b.sync.peer_stats(state.peer.id)["presynced_headers"])

        server.on_getheaders = watch
        b_to_s, _ = connect(b, server)
        await wait_for(lambda: len(server.getheaders) == 11, 30, "the presync to end")
        await wait_for(lambda: b.sync._peers[b_to_s.id].headers_sync is None, 5)
        await b.sync.idle()
        assert presynced == [-1, *range(2000, 20_001, 2000)]
        assert max(memory) == (n_bits + 7) // 8  # bytes: one bit per 275 headers, no headers
        with b.lock:
            assert len(b.chain.index.entries) == 1  # only the genesis block
        assert b.connman.misbehaved == [] and not b_to_s.closed
        # A short low-work chain is ignored at once. (Until the best header is recent, the
        # initial headers sync runs with one peer at a time, as in Core: drop the first one.)
        b_to_s.disconnect("done")
        short = HeaderServer(header_chain(500, tag=3))
        b_to_short, _ = connect(b, short)
        await wait_for(lambda: len(short.getheaders) >= 1, 5)
        for _ in range(5):
            await asyncio.sleep(0.02)
            await b.sync.idle()
        assert b.sync._peers[b_to_short.id].headers_sync is None
        with b.lock:
            assert len(b.chain.index.entries) == 1
        # With less than the minimum work ourselves, we answer getheaders with nothing.
        r = Recorder()
        connect(r, b)
        await wait_for(lambda: r.peer is not None)
        assert r.peer is not None
        r.peer.send(m.GetHeaders(70016, (GENESIS.hash,), bytes(32)))
        await wait_for(lambda: len(r.of(m.Headers)) == 1, 5)
        assert r.of(m.Headers)[0].headers == ()

    run(main())


def test_enough_work_goes_through_the_presync(tmp_path: Path, nodes: list[SyncNode]) -> None:
    params = dataclasses.replace(REGTEST, min_chain_work=2501 * REGTEST_WORK)

    async def main() -> None:
        b = node_from(nodes, tmp_path / "b", params=params)
        headers = header_chain(3000)
        server = HeaderServer(headers)
        b_to_s, _ = connect(b, server)
        await wait_for(lambda: len(server.getheaders) == 4, 10, "presync and redownload")
        await wait_for(lambda: b.sync.peer_stats(b_to_s.id)["synced_headers"] == 3000, 10)
        await b.sync.idle()
        g, h2000 = GENESIS.hash, headers[1999].hash
        assert [x.locator for x in server.getheaders] == [(g,), (h2000, g), (g, g), (h2000, g)]
        with b.lock:
            assert len(b.chain.index.entries) == 3001
            assert b.chain.best_header is not None and b.chain.best_header.height == 3000
        # Headers only: RPC shows the branch as such, and the sync as far from done.
        tips = bc.getchaintips(b.facade)
        assert tips == [
            {"height": 3000, "hash": headers[-1].hash_hex, "branchlen": 3000,
             "status": "headers-only"},
            {"height": 0, "hash": GENESIS.hash_hex, "branchlen": 0, "status": "active"},
        ]  # fmt: skip
        info = bc.getblockchaininfo(b.facade)
        assert (info["blocks"], info["headers"]) == (0, 3000)
        assert info["initialblockdownload"] is True and info["verificationprogress"] == 0.0
        assert b.connman.misbehaved == []

    run(main())


def test_locator() -> None:
    chain = header_chain(30)
    hashes = [GENESIS.hash] + [h.hash for h in chain]

    class E:
        def __init__(self, height: int) -> None:
            self.height = height
            self.hash = hashes[height]

    loc = build_locator(E(30), lambda e, h: E(h))  # type: ignore[arg-type, return-value]
    heights = [hashes.index(x) for x in loc]
    assert heights == [*range(30, 18, -1), 17, 13, 5, 0]


def _old_chain_with_a_spend(valid: bool) -> list[Block]:
    """110 blocks of 2011 (so a node syncing them is in IBD throughout), a block spending the
    first coinbase (with a witness that fails when ``valid`` is false), four more on top."""
    blocks = _chain_of_blocks(110, tag=7)
    cb = blocks[1].txs[0]
    out = [TxOut(cb.outputs[0].value - 10_000, P2WSH_OP_TRUE)]
    spend = spend_op_true_p2wsh(OutPoint(cb.txid, 0), out)
    if not valid:  # a witness script that is not the one the output commits to
        spend = Tx(2, [TxIn(OutPoint(cb.txid, 0), b"", 0xFFFFFFFE, (b"\x52",))], out, 0)
    blocks.append(_block(blocks[-1], 111, tag=7, txs=(spend,)))
    for h in range(112, 116):
        blocks.append(_block(blocks[-1], h, tag=7))
    return blocks


@pytest.mark.parametrize("valid", [True, False])
def test_ibd_checks_scripts_in_the_pool_while_later_blocks_connect(
    valid: bool, tmp_path: Path, nodes: list[SyncNode]
) -> None:
    async def main() -> None:
        b = node_from(nodes, tmp_path / "b", script_workers=1)
        pool = b.chain.pool
        assert pool is not None and b.chain.defer_scripts  # in IBD, with a worker pool
        submitted: list[int] = []
        real_submit = pool.submit

        def counting_submit(txs: Any, *args: Any) -> Any:
            submitted.append(len(txs))
            return real_submit(txs, *args)

        pool.submit = counting_submit  # type: ignore[method-assign]
        blocks = _old_chain_with_a_spend(valid)
        server = HeaderServer([x.header for x in blocks[1:]], {x.hash: x for x in blocks})
        b_to_s, _ = connect(b, server)
        if not valid:
            await wait_for(lambda: bool(b.connman.misbehaved), 30, "the bad block's sender")
            await b.sync.idle()
            [(who, reason)] = b.connman.misbehaved
            assert who == b_to_s.id
            assert reason.startswith("mandatory-script-verify-flag-failed, ")
            assert submitted == [1]  # its one spending transaction went to the pool
            with b.lock:
                b.chain.settle()
                assert b.chain.height == 110  # undone, with what connected on top of it
                assert b.chain.index.entries[blocks[111].hash].status & FAILED_VALID
            return
        await wait_for(lambda: b.tip == (115, blocks[115].hash), 30, "the old chain")
        assert submitted == [1]
        assert b.sync.is_initial_block_download() and b.chain.defer_scripts
        # A block of today ends IBD: scripts are checked in line again, the pending ones settle.
        today = _block(blocks[-1], 116, tag=7, time_=NOW)
        server.headers.append(today.header)
        assert server.blocks is not None
        server.blocks[today.hash] = today
        server.peers[0].send(m.Headers((today.header,)))
        await wait_for(lambda: b.tip == (116, today.hash), 10, "the block of today")
        await b.sync.idle()
        assert not b.sync.is_initial_block_download() and not b.chain.defer_scripts
        assert b.connman.misbehaved == []

    run(main())


def test_inv_announcements_for_peers_without_sendheaders(
    template: Path, tmp_path: Path, nodes: list[SyncNode]
) -> None:
    async def main() -> None:
        a = node_from(nodes, copy_chain(template, tmp_path / "a"))
        b = node_from(nodes, tmp_path / "b")
        b_to_a, a_to_b = connect(b, a, version=70011)  # before BIP130: no sendheaders
        await wait_for(lambda: b.tip == a.tip, 30, "B to sync")
        await b.sync.idle()
        assert b_to_a.sent_of(m.SendHeaders) == [] and not a_to_b.prefers_headers
        before_a, before_b = len(a_to_b.sent), len(b_to_a.sent)
        await asyncio.to_thread(a.mine, 1)
        await wait_for(lambda: b.tip == a.tip, 10, "block 301 to B")
        tip = a.tip[1]
        # A announces with an inv; B asks for the headers up to it, then for the block.
        [inv, headers, block] = a_to_b.sent[before_a:]
        assert isinstance(inv, m.Inv) and [(i.type, i.hash) for i in inv.items] == [
            (m.InvType.MSG_BLOCK, tip)
        ]
        assert isinstance(headers, m.Headers) and hashes_of([headers]) == [tip]
        assert block.command == b"block"
        getheaders, getdata = b_to_a.sent[before_b:]
        assert isinstance(getheaders, m.GetHeaders)
        assert getheaders.locator[0] == a.chain.chain[300].hash
        assert isinstance(getdata, m.GetData) and hashes_of([getdata]) == [tip]

    run(main())
