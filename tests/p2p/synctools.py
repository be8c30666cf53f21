"""Helpers for the sync tests: regtest header chains, an in-memory transport between sync
managers and scripted peers, and regtest nodes with mined chains.

Load it from a test module with ``sys.path`` (pytest runs with ``--import-mode=importlib``).

The transport plays the connection manager: a link between two endpoints makes one peer object on
each side (the dialling side's is outbound), delivers every message encoded and decoded again on
the loop (``call_soon``, so sends never re-enter the handler), marks ``prefers_headers`` on a
``sendheaders`` as the peer layer does, and disconnects both sides together. ``misbehaving``
records the reason and disconnects.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from peercash.chain.chainstate import ChainState
from peercash.chain.locking import ChainLock
from peercash.consensus.hashing import sha256
from peercash.consensus.params import REGTEST, NetworkParams
from peercash.consensus.pow import bits_to_target
from peercash.consensus.primitives import Block, Header
from peercash.mining.builder import P2WSH_OP_TRUE
from peercash.p2p import messages as m
from peercash.p2p.netaddress import NetAddress
from peercash.p2p.sync import SyncManager
from peercash.rpc import mining

REGTEST_BITS = 0x207FFFFF
NOW = 1_700_000_000
SERVICES = m.NODE_NETWORK | m.NODE_WITNESS
GENESIS = Block.parse(REGTEST.genesis)


# -- header chains -------------------------------------------------------------------------------


def grind_header(prev: bytes, time_: int, bits: int = REGTEST_BITS, tag: int = 0) -> Header:
    """A header on ``prev`` meeting its target (a merkle root made of ``tag`` and the time)."""
    target = bits_to_target(bits)[0]
    root = sha256(prev + tag.to_bytes(8, "little") + time_.to_bytes(8, "little"))
    for nonce in range(1 << 32):
        h = Header(0x20000000, prev, root, time_, bits, nonce)
        if int.from_bytes(h.hash, "little") <= target:
            return h
    raise AssertionError("no nonce")


def header_chain(n: int, *, start: Header = GENESIS.header, tag: int = 0, spacing: int = 600,
                 bits: int = REGTEST_BITS) -> list[Header]:  # fmt: skip
    """``n`` headers on ``start``, ``spacing`` seconds apart (a different ``tag``, a different
    chain)."""
    out: list[Header] = []
    prev = start
    for _ in range(n):
        prev = grind_header(prev.hash, prev.time + spacing, bits, tag)
        out.append(prev)
    return out


REGTEST_WORK = 2
"""The work of one regtest block at the easiest bits (2**256 // (target + 1))."""


# -- the transport ---------------------------------------------------------------------------------


class ConnType(Enum):
    OUTBOUND_FULL_RELAY = "outbound-full-relay"
    BLOCK_RELAY = "block-relay-only"
    MANUAL = "manual"
    FEELER = "feeler"
    ADDR_FETCH = "addr-fetch"
    INBOUND = "inbound"


class Endpoint:
    """Something a peer object delivers to: a sync manager or a scripted peer."""

    def on_peer_connected(self, peer: FakePeer) -> None: ...

    def on_message(self, peer: FakePeer, msg: m.Message) -> None: ...

    def on_peer_disconnected(self, peer: FakePeer) -> None: ...


_next_id = [0]


class FakePeer:
    """The peer object one side of a link holds for the other side (``SyncPeer``)."""

    def __init__(self, endpoint: Any, inbound: bool, services: int, version: int) -> None:
        _next_id[0] += 1
        self.id = _next_id[0]
        self.address = NetAddress.ipv4("127.0.0.1", 18444 + self.id)
        self.inbound = inbound
        self.conn_type = ConnType.INBOUND if inbound else ConnType.OUTBOUND_FULL_RELAY
        self.their_version = version
        self.services = services
        self.start_height = 0
        self.prefers_headers = False
        self.endpoint = endpoint
        self.remote: FakePeer | None = None
        self.sent: list[m.Message] = []
        self.received: list[m.Message] = []
        self.closed = False
        self.disconnect_reason: str | None = None
        self.drop: Callable[[m.Message], bool] = lambda msg: False
        """Messages arriving at this side for which this is true are dropped."""

    def send(self, msg: m.Message) -> None:
        if self.closed:
            return
        self.sent.append(msg)
        payload = msg.encode()
        remote = self.remote
        assert remote is not None
        asyncio.get_running_loop().call_soon(remote._receive, msg.command, payload)

    def _receive(self, command: bytes, payload: bytes) -> None:
        if self.closed:
            return
        msg = m.decode_message(command, payload)
        assert msg is not None, command
        if isinstance(msg, m.SendHeaders):
            self.prefers_headers = True
        if self.drop(msg):
            return
        self.received.append(msg)
        self.endpoint.on_message(self, msg)

    def disconnect(self, reason: str) -> None:
        if self.closed:
            return
        self.disconnect_reason = reason
        loop = asyncio.get_running_loop()
        for p in (self, self.remote):
            assert p is not None
            p.closed = True
            loop.call_soon(p.endpoint.on_peer_disconnected, p)

    def sent_of(self, kind: type[m.Message]) -> list[Any]:
        return [x for x in self.sent if isinstance(x, kind)]


def connect(
    dialer: Any, listener: Any, *, services: tuple[int, int] = (SERVICES, SERVICES),
    version: int = m.PROTOCOL_VERSION,
) -> tuple[FakePeer, FakePeer]:  # fmt: skip
    """Link two endpoints; returns (the dialler's peer for the listener, the listener's peer for
    the dialler). ``services``: what each side advertises (dialler's, listener's)."""
    at_dialer = FakePeer(dialer, False, services[1], version)
    at_listener = FakePeer(listener, True, services[0], version)
    at_dialer.remote, at_listener.remote = at_listener, at_dialer
    loop = asyncio.get_running_loop()
    loop.call_soon(dialer.on_peer_connected, at_dialer)
    loop.call_soon(listener.on_peer_connected, at_listener)
    return at_dialer, at_listener


@dataclass
class FakeConnman:
    """Records ``misbehaving`` and disconnects the peer, as Core now does."""

    misbehaved: list[tuple[int, str]] = field(default_factory=list)

    def misbehaving(self, peer: FakePeer, reason: str) -> None:
        self.misbehaved.append((peer.id, reason))
        peer.disconnect(f"misbehaving: {reason}")


# -- scripted peers --------------------------------------------------------------------------------


class HeaderServer(Endpoint):
    """A peer that answers ``getheaders`` from a list of headers (on the regtest genesis) and,
    when it has them, ``getdata`` from a dict of blocks; it records what it was asked."""

    def __init__(self, headers: list[Header], blocks: dict[bytes, Block] | None = None) -> None:
        self.headers = headers
        self.blocks = blocks
        self.height_of = {GENESIS.hash: 0} | {h.hash: i + 1 for i, h in enumerate(headers)}
        self.peers: list[FakePeer] = []
        self.getheaders: list[m.GetHeaders] = []
        self.getdata: list[bytes] = []
        self.on_getheaders: Callable[[FakePeer, m.GetHeaders], None] | None = None

    def on_peer_connected(self, peer: FakePeer) -> None:
        self.peers.append(peer)

    def answer(self, msg: m.GetHeaders) -> tuple[Header, ...]:
        start = 0
        for h in msg.locator:
            if h in self.height_of:
                start = self.height_of[h]
                break
        return tuple(self.headers[start : start + m.MAX_HEADERS_RESULTS])

    def on_message(self, peer: FakePeer, msg: m.Message) -> None:
        if isinstance(msg, m.GetHeaders):
            self.getheaders.append(msg)
            if self.on_getheaders is not None:
                self.on_getheaders(peer, msg)
            peer.send(m.Headers(self.answer(msg)))
        elif isinstance(msg, m.GetData):
            for item in msg.items:
                self.getdata.append(item.hash)
                if self.blocks is not None and item.hash in self.blocks:
                    peer.send(m.BlockMsg(self.blocks[item.hash]))

    def on_peer_disconnected(self, peer: FakePeer) -> None:
        pass


class Recorder(Endpoint):
    """A peer that only records what it is sent (a client we drive by hand)."""

    def __init__(self) -> None:
        self.peer: FakePeer | None = None
        self.messages: list[m.Message] = []

    def on_peer_connected(self, peer: FakePeer) -> None:
        self.peer = peer

    def on_message(self, peer: FakePeer, msg: m.Message) -> None:
        self.messages.append(msg)

    def of(self, kind: type[m.Message]) -> list[Any]:
        return [x for x in self.messages if isinstance(x, kind)]


# -- nodes -----------------------------------------------------------------------------------------


@dataclass
class Facade:
    """The RPC facade the mining and blockchain methods use (``rpc.context.ChainNode``)."""

    chain: ChainState
    params: NetworkParams
    chain_lock: ChainLock
    datadir: Path
    network: str = "regtest"
    start_time: float = float(NOW)
    config: Any = None
    txindex: Any = None
    mempool: Any = None
    is_initial_block_download: Any = None


class SyncNode:
    """A regtest chain state in ``datadir`` with a sync manager on the running loop."""

    def __init__(
        self, datadir: Path, *, params: NetworkParams = REGTEST, mono: list[float] | None = None,
        script_workers: int = 0, **sync_options: Any,
    ) -> None:  # fmt: skip
        self.clock = [float(NOW)]
        self.mono = mono if mono is not None else [1000.0]
        self.chain = ChainState(
            params, datadir, clock=lambda: self.clock[0], script_workers=script_workers
        )
        self.lock = ChainLock()
        self.connman = FakeConnman()
        sync_options.setdefault("tick_interval", 0.02)
        self.sync: SyncManager[FakePeer] = SyncManager(
            self.chain, self.lock, self.connman, clock=lambda: self.mono[0], **sync_options
        )
        self.sync.start()
        self.facade = Facade(self.chain, params, self.lock, datadir)
        self.facade.is_initial_block_download = self.sync.is_initial_block_download

    # the endpoint interface, delegated
    def on_peer_connected(self, peer: FakePeer) -> None:
        self.sync.on_peer_connected(peer)

    def on_message(self, peer: FakePeer, msg: m.Message) -> None:
        self.sync.on_message(peer, msg)

    def on_peer_disconnected(self, peer: FakePeer) -> None:
        self.sync.on_peer_disconnected(peer)

    @property
    def tip(self) -> tuple[int, bytes]:
        with self.lock:
            return self.chain.height, self.chain.tip.hash

    def mine(self, n: int) -> list[str]:
        """Mine ``n`` blocks (from any thread: it takes the chain lock per block)."""
        return mining.generate_blocks(self.facade, P2WSH_OP_TRUE, n, 1_000_000)

    def block_at(self, height: int) -> Block:
        with self.lock:
            return self.chain.read_block(self.chain.chain[height])

    def close(self) -> None:
        self.sync.close()
        self.chain.close()


def copy_chain(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def mine_template(datadir: Path, n: int) -> Path:
    """A closed regtest datadir with ``n`` blocks mined at ``NOW`` (to copy per test)."""
    clock = [float(NOW)]
    chain = ChainState(REGTEST, datadir, clock=lambda: clock[0])
    facade = Facade(chain, REGTEST, ChainLock(), datadir)
    try:
        mining.generate_blocks(facade, P2WSH_OP_TRUE, n, 1_000_000)
    finally:
        chain.close()
    return datadir


async def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Let the loop run until ``cond()`` holds (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.01)
