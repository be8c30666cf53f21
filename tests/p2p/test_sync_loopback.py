"""The sync manager behind real connection managers on loopback: a fresh node syncs a mined chain
over TCP, gets the next block announced, and answers pings while a block validates."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from peercash.chain.chainstate import ChainState
from peercash.chain.locking import ChainLock
from peercash.consensus.params import REGTEST
from peercash.mining.builder import P2WSH_OP_TRUE
from peercash.p2p.addrman import AddrMan
from peercash.p2p.banman import BanMan
from peercash.p2p.connman import ConnectionManager
from peercash.p2p.peer import ConnType, Peer
from peercash.p2p.sync import SyncManager
from peercash.rpc import mining

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conntools import MAGIC, options, until
from framework.p2p import P2PConnection
from synctools import NOW, Facade, copy_chain, mine_template


class Node:
    """A chain state, its sync manager and a connection manager listening on loopback."""

    def __init__(self, datadir: Path) -> None:
        self.clock = [float(NOW)]
        self.chain = ChainState(REGTEST, datadir, clock=lambda: self.clock[0])
        self.lock = ChainLock()
        self.cm = ConnectionManager(REGTEST, options(), AddrMan(), BanMan(),
                                    best_height=lambda: self.chain.height)  # fmt: skip
        self.sync: SyncManager[Peer] = SyncManager(self.chain, self.lock, self.cm)
        self.cm.set_handler(self.sync)
        self.facade = Facade(self.chain, REGTEST, self.lock, datadir)

    async def start(self) -> None:
        self.sync.start()
        await self.cm.start()

    async def stop(self) -> None:
        await self.cm.stop()
        await asyncio.to_thread(self.sync.close)
        self.chain.close()

    @property
    def tip(self) -> tuple[int, bytes]:
        with self.lock:
            return self.chain.height, self.chain.tip.hash


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mine_template(tmp_path_factory.mktemp("template") / "a", 200)


def test_sync_and_relay_over_tcp(template: Path, tmp_path: Path) -> None:
    async def main() -> None:
        a = Node(copy_chain(template, tmp_path / "a"))
        b = Node(tmp_path / "b")
        await a.start()
        await b.start()
        try:
            peer = await b.cm.connect_to(
                f"127.0.0.1:{a.cm.listen_port}", ConnType.OUTBOUND_FULL_RELAY
            )
            await until(lambda: b.tip == a.tip, 30, "B to sync over TCP")
            await b.sync.idle()
            assert b.sync.is_initial_block_download() is False
            # The figures getpeerinfo shows, kept on the peer object.
            await until(lambda: peer.synced_blocks == 200, 5)
            assert (peer.synced_headers, peer.presynced_headers, peer.inflight) == (200, -1, [])
            assert peer.last_block_time == NOW
            assert peer.bytes_recv_per_msg["block"] > 200 * 200
            # A mines a block: B hears of it (headers: B sent sendheaders) and fetches it.
            await asyncio.to_thread(mining.generate_blocks, a.facade, P2WSH_OP_TRUE, 1, 10**6)
            await until(lambda: b.tip == a.tip and b.tip[0] == 201, 10, "block 201 to B")
            [a_side] = a.cm.peers()
            assert a_side.prefers_headers and a_side.bytes_sent_per_msg["headers"] > 0
        finally:
            await b.stop()
            await a.stop()

    asyncio.run(main())


def test_pings_answered_while_a_block_validates(template: Path, tmp_path: Path) -> None:
    async def main() -> None:
        a = Node(copy_chain(template, tmp_path / "a"))
        b = Node(tmp_path / "b")
        await a.start()
        await b.start()
        slow = asyncio.Event()
        loop = asyncio.get_running_loop()
        real_accept = b.chain.accept_block

        def accept_slowly(block: Any, **kw: Any) -> Any:
            # A stand-in for a large block: hold the chain lock on the validation thread for
            # a second (the first block only).
            if not slow.is_set():
                loop.call_soon_threadsafe(slow.set)
                time.sleep(1.0)
            return real_accept(block, **kw)

        b.chain.accept_block = accept_slowly  # type: ignore[method-assign]
        rp = P2PConnection(MAGIC)
        try:
            await b.cm.connect_to(f"127.0.0.1:{a.cm.listen_port}", ConnType.OUTBOUND_FULL_RELAY)
            await rp.connect("127.0.0.1", b.cm.listen_port or 0)
            await rp.handshake(timeout=5.0)
            await asyncio.wait_for(slow.wait(), 10)
            started = time.perf_counter()
            assert await rp.ping(5.0)
            answered = time.perf_counter() - started
            print(f"pong after {answered * 1000:.0f} ms while a block validated")
            assert answered < 0.5
            assert b.chain.height == 0  # still validating (read without the lock it holds)
            await until(lambda: b.tip == a.tip, 30, "B to sync")
        finally:
            rp.close()
            await b.stop()
            await a.stop()

    asyncio.run(main())
