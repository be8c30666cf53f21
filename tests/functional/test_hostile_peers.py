"""Hostile peers against a real node process (issue #10).

A ``peercash node`` on regtest with 300 blocks; raw peers (``framework.p2p.P2PConnection``) send
it every kind of bad input, and each case asserts the exact treatment it gets — dropped and the
connection kept, disconnected, or discouraged and disconnected — with the reason the node logs,
as Bitcoin Core's ``net.cpp``/``net_processing.cpp`` would treat it:

* framing (Core's ``V1Transport``): garbage and a wrong magic, and a length field over 4 MB,
  disconnect without discouragement; a bad checksum and a payload that does not decode are
  dropped, the connection kept;
* counts over the limits: ``inv``/``getdata`` of 50,001, ``headers`` of 2,001, ``addr`` of
  1,001 are misbehaviour (discouraged); a ``getheaders`` locator of 102 only disconnects;
* headers: bad proof of work, a non-continuous sequence and an invalid header are misbehaviour;
  headers that do not connect get a ``getheaders`` (at most one per two minutes, however many
  come) and no punishment; a short low-work chain is ignored (not stored, not punished);
* blocks: a mutated block, an invalid one (coinbase paying too much) and one whose parent is
  unknown are misbehaviour; the invalid one sent again is known invalid, which Core punishes
  from outbound peers only; 50,000 announcements of unknown blocks are no reason to request any;
* time: a handshake sent one byte a second, or never finished, is dropped at ``-peertimeout``;
  a peer that asks for many blocks and never reads stops being served (Core's ``fPauseSend``:
  no new work for it, nothing buffered past the limit) and is not disconnected for it.

Discouragement is only visible from an address that is not loopback: the node, as Core, never
discourages a local peer (it disconnects it). So the hostile peers connect from another of this
machine's addresses when it has one (``framework.p2p.local_address``); whether that address is
discouraged is then probed the way the node applies it: with one inbound slot left, a discouraged
address is refused and any other accepted. Without such an address the cases still run, from
loopback, and assert the local treatment.

The second test is the load: 50 hostile peers at once, each repeating one of these behaviours
for 20 seconds and reconnecting when dropped (half of them from the non-loopback address, which
is discouraged over and over, every misbehaviour dropping all its peers; half from loopback,
never discouraged), while an honest second node syncs the 300 blocks from scratch. The target
must stay alive and answer RPC, its memory must stay bounded (peak RSS from ``VmHWM`` and
samples), its event loop must not stall, and the honest sync must stay quick (the node serves
its peers' messages and chain work by the time they cost, so a flood takes only what is left);
the figures (RSS, loop lag, the honest sync's time with and without the load, what each
behaviour got) are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from framework.p2p import ConnectionClosed, P2PConnection, local_address, version_message
from framework.util import process_rss, tail, wait_until

from peercash.consensus.params import get_params
from peercash.consensus.pow import bits_to_target
from peercash.consensus.primitives import Block, Header, TxOut
from peercash.consensus.serialize import compact_size
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import P2WSH_OP_TRUE, assemble_block, coinbase_tx, solve
from peercash.p2p import messages as m
from peercash.p2p.codec import checksum
from peercash.tools.nodeproc import NodeProcess, RpcCallError

pytestmark = pytest.mark.slow

PARAMS = get_params("regtest")
MAGIC = PARAMS.magic
MAINNET_MAGIC = get_params("main").magic
ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
BITS = 0x207FFFFF
CHAIN = 300
PEERTIMEOUT = 3
MAXCONNECTIONS = 20
MAX_INBOUND = MAXCONNECTIONS - 8 - 2 - 1  # what the automatic outbound slots and a feeler leave
REMOTE = None if os.environ.get("PEERCASH_HOSTILE_LOOPBACK") else local_address()
"""Where the hostile peers connect from: a non-loopback address of this machine, or None (then
loopback; ``PEERCASH_HOSTILE_LOOPBACK=1`` forces that, to run the local treatment)."""


# -- building hostile payloads ---------------------------------------------------------------------


def wire(hex_hash: str) -> bytes:
    return bytes.fromhex(hex_hash)[::-1]


def grind(prev: bytes, t: int, *, valid: bool = True, tag: int = 0) -> Header:
    """A header on ``prev`` whose proof of work is valid (or, with ``valid`` false, is not)."""
    target = bits_to_target(BITS)[0]
    root = os.urandom(32) if tag == 0 else tag.to_bytes(32, "little")
    for nonce in range(1 << 32):
        h = Header(0x20000000, prev, root, t, BITS, nonce)
        if (int.from_bytes(h.hash, "little") <= target) == valid:
            return h
    raise AssertionError("no nonce")


def header_chain(n: int, prev: Header, *, tag: int = 1) -> list[Header]:
    out: list[Header] = []
    for _ in range(n):
        prev = grind(prev.hash, prev.time + 1, tag=tag)
        out.append(prev)
    return out


def over_count_payload(count: int, entry: bytes, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """A complete payload of ``count`` copies of ``entry`` (Core decodes it all, then counts)."""
    return prefix + compact_size(count) + entry * count + suffix


def inv_payload(n: int, kind: int = m.InvType.MSG_BLOCK) -> bytes:
    return compact_size(n) + b"".join(kind.to_bytes(4, "little") + os.urandom(32) for _ in range(n))


def block_on(prev: bytes, height: int, t: int, *, pay: int, bad_root: bool = False) -> Block:
    cb = coinbase_tx(height, [TxOut(pay, P2WSH_OP_TRUE)], extra=os.urandom(4))
    block = assemble_block(prev, t, BITS, cb, witness_commitment=True)
    if bad_root:
        h = block.header
        block = Block(Header(h.version, h.prev_hash, os.urandom(32), h.time, h.bits, 0), block.txs)
    return solve(block)


def addr_text(conn: P2PConnection) -> str:
    assert conn.local is not None
    host, port = conn.local
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- the node under attack -------------------------------------------------------------------------


class Target:
    """The node, its log, its chain, and the raw peers opened to it."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.log = node.net_datadir / "debug.log"
        self.conns: list[P2PConnection] = []
        self.log_mark: dict[int, int] = {}
        """Where debug.log ended when each connection was opened: what the node logs about it
        comes later (a local port may be reused, so earlier lines may name the same address)."""
        self.hashes: list[bytes] = []  # wire order, by height
        self.tip: dict[str, Any] = {}

    async def rpc(self, method: str, *params: Any) -> Any:
        return await asyncio.to_thread(self.node.call, method, *params)

    def load_chain(self) -> None:
        self.hashes = [wire(self.node.call("getblockhash", h)) for h in range(CHAIN + 1)]
        self.tip = self.node.call("getblockheader", self.hashes[-1][::-1].hex())

    async def open(
        self,
        *,
        local: bool = False,
        handshake: bool = True,
        settle: bool = False,
        keep: int = 10_000,
        **kw: Any,
    ) -> P2PConnection:
        """A raw peer from ``REMOTE`` (or loopback with ``local``), by default after a complete
        handshake; with ``settle`` the node's first ``getheaders`` is answered with an empty
        ``headers`` (we have nothing new), so its next one is not held back by the rate limit."""
        host = "127.0.0.1" if local or REMOTE is None else REMOTE
        conn = P2PConnection(MAGIC, keep=keep)
        self.log_mark[id(conn)] = self.log_size()
        await conn.connect(host, self.node.port, source=host, **kw)
        self.conns.append(conn)
        if handshake:
            await conn.handshake()
        if settle:
            await conn.wait_for(m.GetHeaders, 10)
            await conn.send(m.Headers(()))
            assert await conn.ping()
        return conn

    def close_all(self) -> None:
        for c in self.conns:
            c.close()
        self.conns.clear()

    # -- the log ---------------------------------------------------------------------------------

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: P2PConnection | None = None) -> str:
        """debug.log, or only what came after ``since`` was opened."""
        with open(self.log, "rb") as f:
            if since is not None:
                f.seek(self.log_mark.get(id(since), 0))
            return f.read().decode(errors="replace")

    async def wait_log(
        self, pattern: str, timeout: float = 10.0, since: P2PConnection | None = None
    ) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.log_text(since), re.M)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not in debug.log: {pattern}\n{tail(self.log, 30)}")
            await asyncio.sleep(0.1)

    # -- treatments --------------------------------------------------------------------------------

    async def disconnected(self, conn: P2PConnection, reason: str, timeout: float = 10.0) -> int:
        """The node closed ``conn`` and logged ``reason`` for it: returns the node's peer id."""
        assert await conn.wait_closed(timeout), f"{conn!r} was not disconnected ({reason})"
        a = re.escape(addr_text(conn))
        found = await self.wait_log(rf"disconnecting peer=(\d+) {a} \(inbound\): (.*)$", since=conn)
        assert found.group(2) == reason
        return int(found.group(1))

    async def dropped_only(self, conn: P2PConnection, reason: str) -> int:
        """Disconnected for ``reason``, and not as misbehaviour (so not discouraged)."""
        peer_id = await self.disconnected(conn, reason)
        assert not re.search(rf"Misbehaving: peer={peer_id} ", self.log_text(conn))
        return peer_id

    async def punished(self, conn: P2PConnection, reason: str, timeout: float = 10.0) -> int:
        """Core's ``Misbehaving``: disconnected, and discouraged unless it is local."""
        peer_id = await self.disconnected(conn, reason, timeout)
        a = re.escape(addr_text(conn))
        await self.wait_log(rf"Misbehaving: peer={peer_id} {a}: {re.escape(reason)}$", since=conn)
        if conn.local is not None and conn.local[0] == REMOTE:
            await self.wait_log(rf"Disconnecting and discouraging peer={peer_id}$", since=conn)
        else:
            await self.wait_log(
                rf"disconnecting but not discouraging local peer={peer_id}$", since=conn
            )
        return peer_id

    async def kept(self, conn: P2PConnection) -> None:
        """The connection still works (a ping is answered: everything before was processed) and
        was never punished."""
        assert await conn.ping(), f"{conn!r}: no pong"
        assert not conn.is_closed
        a = re.escape(addr_text(conn))
        assert not re.search(rf"Misbehaving: peer=\d+ {a}:", self.log_text(conn))

    async def peer_info(self, conn: P2PConnection) -> dict[str, Any]:
        a = addr_text(conn)
        for p in await self.rpc("getpeerinfo"):
            if p["addr"] == a:
                return dict(p)
        raise AssertionError(f"{a} is not a peer of the node")

    async def connections(self, n: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while (count := await self.rpc("getconnectioncount")) != n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} connections, {n} expected")
            await asyncio.sleep(0.05)

    async def remote_discouraged(self) -> bool:
        """Whether ``REMOTE`` is discouraged, probed as the node applies it: with one inbound
        slot left a discouraged address is refused, any other accepted."""
        assert REMOTE is not None
        self.close_all()
        await self.connections(0)
        fillers = [await self.open(local=True) for _ in range(MAX_INBOUND - 1)]
        await self.connections(MAX_INBOUND - 1)
        probe = P2PConnection(MAGIC)
        self.log_mark[id(probe)] = self.log_size()
        try:
            await probe.connect(REMOTE, self.node.port, source=REMOTE)
            await probe.send(version_message())
            try:
                await probe.wait_for(m.Verack, 5)
                refused = False
            except ConnectionClosed:
                refused = probe.counts["version"] == 0
                assert refused, "closed after the version: neither accepted nor refused"
        finally:
            probe.close()
            for f in fillers:
                f.close()
            self.conns.clear()
        await self.connections(0)
        if refused:
            await self.wait_log(
                rf"connection from {re.escape(REMOTE)}:\d+ dropped \(discouraged\)", since=probe
            )
        return refused


@contextlib.contextmanager
def target_node(datadir: Path, *extra: str) -> Any:
    node = NodeProcess(
        datadir,
        extra_args=["--connect=0", "--listen", f"--peertimeout={PEERTIMEOUT}", *extra],
    )
    try:
        node.start()
        node.call("generatetoaddress", CHAIN, ADDRESS)
        yield node
    except BaseException:
        print(tail(node.net_datadir / "debug.log", 60))
        raise
    finally:
        try:
            node.stop(30)
        except Exception:
            node.kill()


def run(t: Target, body: Callable[[Target], Awaitable[None]], timeout: float) -> None:
    """``body(t)`` on a fresh loop, within ``timeout`` seconds; every raw peer it opened is
    closed at the end, whatever happens. A second before the timeout, where each task waits is
    printed (a hang shows which behaviour is stuck, and on what)."""

    async def watchdog() -> None:
        await asyncio.sleep(timeout - 1)
        print(f"\nstill running after {timeout - 1:g}s; the tasks:")
        for task in asyncio.all_tasks():
            chain, coro = [], task.get_coro()
            while coro is not None and hasattr(coro, "cr_frame"):
                if coro.cr_frame is not None:
                    chain.append(f"{coro.cr_code.co_name}:{coro.cr_frame.f_lineno}")
                coro = coro.cr_await
            print(f"  {task.get_name()}: {' > '.join(chain)}")

    async def bounded() -> None:
        dog = asyncio.create_task(watchdog())
        try:
            async with asyncio.timeout(timeout):
                await body(t)
        finally:
            dog.cancel()
            t.close_all()
            await asyncio.sleep(0)

    asyncio.run(bounded())


# -- one case at a time ------------------------------------------------------------------------------


async def framing_cases(t: Target) -> None:
    # Garbage before any handshake: the first bytes are no magic. Disconnected, not punished.
    c = await t.open(handshake=False)
    await c.send_raw(b"GET / HTTP/1.1\r\nHost: peercash\r\n\r\n")
    await t.dropped_only(c, "header error: wrong network magic 47455420")

    # A frame with another network's magic after the handshake: the same.
    c = await t.open()
    await c.send_frame(b"ping", bytes(8), magic=MAINNET_MAGIC)
    await t.dropped_only(c, "header error: wrong network magic f9beb4d9")

    # A length field over 4,000,000: disconnected at the header, before any payload.
    c = await t.open()
    await c.send_frame(b"block", b"", length=4_000_001)
    await t.dropped_only(c, "header error: b'block' declares 4000001 bytes, over 4000000")

    # A bad checksum: the message is dropped, the connection kept (a ping after it is answered).
    c = await t.open()
    await c.send_frame(b"ping", bytes(8), check=b"\xde\xad\xbe\xef")
    await t.kept(c)
    info = await t.peer_info(c)
    assert info["bytesrecv_per_msg"]["*other*"] == 24 + 8
    await t.wait_log(r"wrong checksum \(ping, 8 bytes\); message dropped")

    # Truncated payloads in whole frames: dropped, connection kept (Core catches the
    # deserialization error and carries on).
    await c.send_frame(b"ping", bytes(4))
    headers = m.Headers(tuple(header_chain(2, Header.parse(PARAMS.genesis[:80])))).encode()
    await c.send_frame(b"headers", b"\x05" + headers[1:])  # says 5, holds 2
    await c.send_frame(b"version", b"\x01\x00")  # a second version, truncated
    await t.kept(c)
    info = await t.peer_info(c)
    assert [(e["reason"], e["action"]) for e in info["misbehavior_history"]] == [
        ("malformed ping message (4 bytes): need 8 bytes at offset 0, have 4", "dropped"),
        (
            "malformed headers message (163 bytes): count 5 needs at least 405 bytes, have 162",
            "dropped",
        ),
        ("malformed version message (2 bytes): need 4 bytes at offset 0, have 2", "dropped"),
    ]
    # A frame cut short on the wire: the node holds the part (at most the declared length) and
    # waits; the rest completes it.
    whole = m.Ping(7)
    frame = b"".join([MAGIC, b"ping".ljust(12, b"\x00"), (8).to_bytes(4, "little")])
    raw = frame + checksum(whole.encode()) + whole.encode()
    await c.send_raw(raw[:30])
    await asyncio.sleep(0.3)
    assert not c.is_closed
    await c.send_raw(raw[30:])
    assert (await c.wait_for(m.Pong)).nonce == 7
    c.close()


async def count_cases(t: Target, *, punish: bool) -> None:
    """Counts over the limits. ``punish``: the misbehaving ones (else the locator only)."""
    if not punish:
        # A locator of 102 hashes: Core disconnects (no misbehaviour).
        c = await t.open()
        payload = over_count_payload(102, os.urandom(32), (70016).to_bytes(4, "little"), bytes(32))
        await c.send_frame(b"getheaders", payload)
        await t.dropped_only(c, "getheaders locator size 102 > 101")
        return
    c = await t.open()
    await c.send_frame(b"inv", inv_payload(50_001))
    await t.punished(c, "inv message size = 50001")
    c = await t.open()
    await c.send_frame(b"getdata", inv_payload(50_001, m.InvType.MSG_WITNESS_BLOCK))
    await t.punished(c, "getdata message size = 50001")
    c = await t.open()
    header = grind(t.hashes[-1], t.tip["time"] + 1).serialize() + b"\x00"
    await c.send_frame(b"headers", over_count_payload(2_001, header))
    await t.punished(c, "headers message size = 2001")
    c = await t.open()
    entry = int(time.time()).to_bytes(4, "little") + (9).to_bytes(8, "little")
    entry += bytes(10) + b"\xff\xff" + bytes([10, 1, 2, 3]) + (8333).to_bytes(2, "big")
    await c.send_frame(b"addr", over_count_payload(1_001, entry))
    await t.punished(c, "addr message size = 1001")


async def header_cases(t: Target, *, punish: bool) -> None:
    tip_hash, tip_time = t.hashes[-1], t.tip["time"]
    if punish:
        c = await t.open()
        await c.send(m.Headers((grind(tip_hash, tip_time + 1, valid=False),)))
        await t.punished(c, "header with invalid proof of work")
        c = await t.open()
        a, b = grind(tip_hash, tip_time + 1), grind(tip_hash, tip_time + 2)
        await c.send(m.Headers((a, b)))  # b does not follow a
        await t.punished(c, "non-continuous headers sequence")
        c = await t.open()
        old = grind(tip_hash, t.tip["mediantime"] - 1)  # time-too-old: not after the MTP
        await c.send(m.Headers((old,)))
        await t.punished(c, "invalid header received")
        return

    # Headers that do not connect: a getheaders from our best header, no punishment ...
    c = await t.open(settle=True)
    await c.send(m.Headers((grind(os.urandom(32), tip_time + 1),)))
    gh = await c.wait_for(m.GetHeaders, 10)
    assert gh.locator[0] == tip_hash
    # ... and a flood of 200 more gets no more than that one (one per two minutes), and costs
    # nothing either.
    for _ in range(200):
        await c.send(m.Headers((grind(os.urandom(32), tip_time + 1),)))
    await t.kept(c)
    assert c.counts["getheaders"] == 2  # the one at the start of the sync, then the answer
    # Answering it makes the next unconnecting header worth another getheaders.
    await c.send(m.Headers(()))
    await c.send(m.Headers((grind(os.urandom(32), tip_time + 1),)))
    # 30 s: behind the 200 queued headers on a loaded 2-core CI machine (10 s timed out once).
    await c.wait_for(m.GetHeaders, 30)
    await t.kept(c)
    c.close()

    # A low-work chain: 50 headers forking at genesis, less work than the anti-DoS threshold
    # (our tip's work less 144 blocks'): ignored, not stored, not punished. (On regtest a full
    # batch of 2,000 always has more work than our 300 blocks, so the pre-sync of a long
    # low-work chain cannot be shown here; tests/p2p/test_headersync.py covers it.)
    genesis = Header.parse(PARAMS.genesis[:80])
    low = header_chain(50, genesis, tag=7)
    c = await t.open(settle=True)
    await c.send(m.Headers(tuple(low)))
    await t.kept(c)
    peer_id = (await t.peer_info(c))["id"]
    await t.wait_log(rf"Ignoring low-work chain \(height=50\) from peer={peer_id}$")
    with pytest.raises(RpcCallError) as e:
        await t.rpc("getblockheader", low[-1].hash_hex)
    assert e.value.code == -5
    c.close()


async def block_cases(t: Target) -> None:
    tip_hash, tip_time = t.hashes[-1], t.tip["time"]
    height = CHAIN + 1
    subsidy = block_subsidy(height, PARAMS)
    c = await t.open()
    await c.send(m.BlockMsg(block_on(tip_hash, height, tip_time + 1, pay=subsidy, bad_root=True)))
    await t.punished(c, "mutated block")
    c = await t.open()
    invalid = m.BlockMsg(block_on(tip_hash, height, tip_time + 1, pay=subsidy + 1))
    await c.send(invalid)
    found = await t.wait_log(r"Misbehaving: peer=\d+ \S+: (bad-cb-amount.*)$", since=c)
    await t.punished(c, found.group(1))
    # The same block again, now known invalid: Core punishes only outbound peers for that
    # (BLOCK_CACHED_INVALID); an inbound one keeps its connection.
    c = await t.open()
    await c.send(invalid)
    await t.kept(c)
    c.close()
    c = await t.open()
    await c.send(m.BlockMsg(block_on(os.urandom(32), height, tip_time + 1, pay=subsidy)))
    await t.punished(c, "prev-blk-not-found")
    assert await t.rpc("getblockcount") == CHAIN
    assert await t.rpc("getbestblockhash") == tip_hash[::-1].hex()


async def inv_flood_case(t: Target) -> None:
    """50,000 announcements of unknown blocks, five times: no block is requested (headers
    first: one getheaders), nothing in flight, no punishment."""
    c = await t.open(settle=True)
    for _ in range(5):
        await c.send_frame(b"inv", inv_payload(50_000))
    await t.kept(c)
    info = await t.peer_info(c)
    assert info["inflight"] == [] and c.counts["getdata"] == 0
    assert c.counts["getheaders"] == 2  # the sync's first, then one for the announcements
    c.close()


async def slow_cases(t: Target) -> None:
    """A handshake one byte a second, and one never finished: dropped at -peertimeout."""
    slow = await t.open(handshake=False)
    version = version_message()
    data = m.Version.command.ljust(12, b"\x00")
    payload = version.encode()
    frame = MAGIC + data + len(payload).to_bytes(4, "little") + checksum(payload) + payload
    half = await t.open(handshake=False)
    await half.send(version)
    await half.wait_for(m.Verack)  # the node answered; we never send our verack
    sent = await slow.send_slowly(frame, 1.0)
    assert sent < len(frame)
    await t.dropped_only(
        slow, f"socket no message in first {PEERTIMEOUT} seconds, never sent to peer"
    )
    await t.dropped_only(half, "version handshake timeout")
    for conn in (slow, half):
        assert conn.lifetime is not None and PEERTIMEOUT <= conn.lifetime < PEERTIMEOUT + 3


async def never_reads_case(t: Target) -> dict[str, float]:
    """Asks for 1,000,000 blocks (20 getdata of 50,000) and reads nothing. The node serves until
    the send buffer passes its pause mark, then neither serves nor reads more of this peer:
    what it sends and what it holds stay bounded, and the peer is not disconnected for it (Core
    only drops it after 20 minutes without progress)."""
    pid = t.node.proc.pid if t.node.proc is not None else 0
    rss_before = process_rss(pid)
    c = await t.open(rcvbuf=4096)
    c.stop_reading()
    hashes = t.hashes[1:]
    items = b"".join((m.InvType.MSG_WITNESS_BLOCK).to_bytes(4, "little") + h for h in hashes)
    per = 50_000
    payload = compact_size(per) + (items * (per // len(hashes) + 1))[: per * 36]
    for _ in range(20):
        await c.send_frame(b"getdata", payload, drain=False)
    # The node serves until the send buffer passes its pause mark, then stops: wait until what
    # it sent has not moved for 1.5 s.
    sent: list[int] = []
    deadline = time.monotonic() + 20
    while len(sent) < 4 or len(set(sent[-4:])) > 1:
        assert time.monotonic() < deadline, f"still sending: {sent}"
        sent.append((await t.peer_info(c))["bytessent"])
        await asyncio.sleep(0.5)
    rss_after = process_rss(pid)
    assert not c.is_closed
    block_size = len(bytes.fromhex(await t.rpc("getblock", hashes[-1][::-1].hex(), 0)))
    assert sent[-1] < 10_000_000 < 1_000_000 * block_size
    growth = (rss_after - rss_before) / 1e6
    assert growth < 60, f"RSS grew by {growth:.1f} MB for one peer that never reads"
    c.close()
    return {"sent_mb": sent[-1] / 1e6, "rss_growth_mb": growth}


async def all_cases(t: Target) -> None:
    t.load_chain()
    # Treatments that are not misbehaviour: the address must end up not discouraged.
    await framing_cases(t)
    await count_cases(t, punish=False)
    await header_cases(t, punish=False)
    await inv_flood_case(t)
    await slow_cases(t)
    figures = await never_reads_case(t)
    print(f"\nnever-reading peer: {figures['sent_mb']:.2f} MB sent to it, node RSS "
          f"{figures['rss_growth_mb']:+.1f} MB")  # fmt: skip
    if REMOTE is not None:
        assert not await t.remote_discouraged()
    # A local peer that misbehaves is disconnected, not discouraged (Core's IsLocal rule).
    c = await t.open(local=True)
    await c.send_frame(b"inv", inv_payload(50_001))
    await t.punished(c, "inv message size = 50001")
    # Misbehaviour: from here on the address is discouraged, yet still accepted while there
    # are free inbound slots (each case connects again).
    await count_cases(t, punish=True)
    if REMOTE is not None:
        assert await t.remote_discouraged()
    await header_cases(t, punish=True)
    await block_cases(t)
    assert await t.rpc("getblockcount") == CHAIN


def test_each_hostile_peer_gets_cores_treatment(tmp_path: Path) -> None:
    with target_node(
        tmp_path / "target", f"--maxconnections={MAXCONNECTIONS}", "--debug=net"
    ) as node:
        run(Target(node), all_cases, 150)
        assert node.proc is not None and node.proc.poll() is None


# -- the load: 50 hostile peers at once, and an honest node syncing ---------------------------------

HOSTILE = 50
DURATION = 20.0
HONEST_DEADLINE = 60.0
RSS_BOUND = 150 * 1024 * 1024
LAG_MEDIAN_BOUND_MS = 100.0
"""Measured here: a median of about 2 ms (p90 8-10 ms, max 30-55 ms) with this load, against
40-170 ms before the node shared its loop and validation thread by cost (the message scheduler
and the fair worker) and stopped building 50,000 objects per ``inv``. Loose on purpose: CI runs
other tests beside this one."""
LAG_MAX_BOUND_MS = 2_000.0
HONEST_SYNC_BOUND_S = 10.0
"""The honest node's sync under the load, start-up excluded: measured 0.3-0.6 s here (0.05 s
alone), against 6-19 s before the same changes."""
PATIENCE = 30.0
"""Seconds a hostile peer waits for an answer or a disconnection (CI machines are busy)."""


class Load:
    """Prebuilt payloads and per-behaviour figures of the load."""

    def __init__(self, t: Target) -> None:
        self.t = t
        self.until = 0.0
        tip_hash, tip_time = t.hashes[-1], t.tip["time"]
        height = CHAIN + 1
        genesis = Header.parse(PARAMS.genesis[:80])
        self.inv_50001 = inv_payload(50_001)
        self.inv_floods = [inv_payload(50_000) for _ in range(3)]
        self.headers_2001 = over_count_payload(
            2_001, grind(tip_hash, tip_time + 1).serialize() + b"\x00"
        )
        self.unconnecting = [grind(os.urandom(32), tip_time + 1) for _ in range(100)]
        self.low_work_msg = m.Headers(tuple(header_chain(50, genesis, tag=9)))
        self.bad_pow_msg = m.Headers((grind(tip_hash, tip_time + 1, valid=False),))
        self.subsidy = block_subsidy(height, PARAMS)
        self.known_invalid = m.BlockMsg(self.bad_block())
        items = b"".join((m.InvType.MSG_WITNESS_BLOCK).to_bytes(4, "little") + h
                         for h in t.hashes[1:])  # fmt: skip
        self.getdata_chain = compact_size(CHAIN) + items
        self.getdata_50000 = compact_size(50_000) + (items * 200)[: 50_000 * 36]
        version = version_message().encode()
        self.version_frame = (
            MAGIC + b"version".ljust(12, b"\x00") + len(version).to_bytes(4, "little")
            + checksum(version) + version
        )  # fmt: skip
        self.stats: dict[str, dict[str, int]] = {}

    def bad_block(self, *, mutated: bool = False) -> Block:
        """A new block on our tip: its coinbase pays a satoshi too much, or (``mutated``) its
        merkle root does not match its transactions."""
        tip_hash, t = self.t.hashes[-1], self.t.tip["time"] + 1
        if mutated:
            return block_on(tip_hash, CHAIN + 1, t, pay=self.subsidy, bad_root=True)
        return block_on(tip_hash, CHAIN + 1, t, pay=self.subsidy + 1)

    def note(self, name: str, key: str, n: int = 1) -> None:
        s = self.stats.setdefault(name, {})
        s[key] = s.get(key, 0) + n

    def left(self) -> float:
        return self.until - time.monotonic()

    # -- behaviours: one connection each; they return when it ends or the time is up --------------

    async def garbage(self, c: P2PConnection) -> None:
        await c.send_raw(os.urandom(64))
        await c.wait_closed(PATIENCE)

    async def bad_magic(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        await c.send_frame(b"ping", bytes(8), magic=MAINNET_MAGIC)
        await c.wait_closed(PATIENCE)

    async def oversized(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        await c.send_frame(b"block", b"", length=4_000_001)
        await c.wait_closed(PATIENCE)

    async def bad_checksums(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        while self.left() > 0:
            for _ in range(50):
                await c.send_frame(b"ping", bytes(8), check=b"\0\0\0\0")
            await self.ping(c, "bad_checksums")

    async def truncated(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        while self.left() > 0:
            for _ in range(20):
                await c.send_frame(b"ping", bytes(3))
                await c.send_frame(b"headers", b"\x05" + bytes(100))
                await c.send_frame(b"inv", b"\x03" + bytes(40))
            await self.ping(c, "truncated")

    async def inv_too_many(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        await c.send_frame(b"inv", self.inv_50001)
        await c.wait_closed(PATIENCE)

    async def headers_too_many(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        await c.send_frame(b"headers", self.headers_2001)
        await c.wait_closed(PATIENCE)

    async def unconnecting_flood(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        while self.left() > 0:
            for h in self.unconnecting:
                await c.send(m.Headers((h,)))
            await self.ping(c, "unconnecting_flood")

    async def low_work(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        while self.left() > 0:
            for _ in range(5):
                await c.send(self.low_work_msg)
            await self.ping(c, "low_work")

    async def inv_flood(self, c: P2PConnection) -> None:
        """50,000 announcements of unknown blocks, again and again, as fast as the node takes
        them (a ping after each: one such message waits at the node at a time)."""
        await c.handshake(timeout=PATIENCE)
        while self.left() > 0:
            for payload in self.inv_floods:
                await c.send_frame(b"inv", payload)
                await self.ping(c, "inv_flood")
            c.drain_frames()

    async def slow_handshake(self, c: P2PConnection) -> None:
        await c.send_slowly(self.version_frame, 1.0)

    async def never_reads(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        c.stop_reading()
        for _ in range(5):
            await c.send_frame(b"getdata", self.getdata_50000, drain=False)
        await c.wait_closed(max(self.left(), 0.1))

    async def invalid_block(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        await c.send(m.BlockMsg(self.bad_block(mutated=random.random() < 0.5)))
        await c.wait_closed(PATIENCE)

    async def known_invalid_block(self, c: P2PConnection) -> None:
        """The same invalid block again and again: cached as invalid, not punished inbound."""
        await c.handshake(timeout=PATIENCE)
        while self.left() > 0:
            await c.send(self.known_invalid)
            await self.ping(c, "known_invalid_block")

    async def bad_pow(self, c: P2PConnection) -> None:
        await c.handshake(timeout=PATIENCE)
        await c.send(self.bad_pow_msg)
        await c.wait_closed(PATIENCE)

    async def leech(self, c: P2PConnection) -> None:
        """Asks for the whole chain again and again, and reads it (heavy, but honest)."""
        await c.handshake(timeout=PATIENCE)
        while self.left() > 0:
            want = c.counts["block"] + CHAIN
            await c.send_frame(b"getdata", self.getdata_chain)
            while c.counts["block"] < want and not c.is_closed:
                await asyncio.sleep(0.05)
                c.drain_frames()
            self.note("leech", "blocks", CHAIN)

    async def ping(self, c: P2PConnection, name: str) -> None:
        ok = await c.ping(PATIENCE)
        self.note(name, "pongs" if ok else "no_pong")
        if not ok and not c.is_closing:
            raise TimeoutError("no pong")

    BEHAVIOURS = (
        ("garbage", False), ("bad_magic", False), ("oversized", False),
        ("bad_checksums", True), ("truncated", True), ("inv_too_many", False),
        ("headers_too_many", False), ("unconnecting_flood", True), ("low_work", True),
        ("inv_flood", True), ("slow_handshake", False), ("never_reads", True),
        ("invalid_block", False), ("bad_pow", False), ("leech", True),
        ("known_invalid_block", True),
    )  # fmt: skip
    """(behaviour, whether the node keeps the connection: else it drops it, every time)."""

    async def worker(self, i: int) -> None:
        name, kept = self.BEHAVIOURS[i % len(self.BEHAVIOURS)]
        # The workers of one behaviour alternate between loopback and the other address.
        local = REMOTE is None or (i // len(self.BEHAVIOURS)) % 2 == 1
        behaviour: Callable[[P2PConnection], Awaitable[None]] = getattr(self, name)
        await asyncio.sleep(i * 0.02)
        while self.left() > 0:
            host = "127.0.0.1" if local else REMOTE
            assert host is not None
            c = P2PConnection(MAGIC, keep=200)
            opts: dict[str, Any] = {"rcvbuf": 4096} if name == "never_reads" else {}
            try:
                await c.connect(host, self.t.node.port, source=host, **opts)
                self.note(name, "sessions")
                await behaviour(c)
            except (ConnectionError, TimeoutError, OSError) as e:
                if not isinstance(e, ConnectionClosed | ConnectionResetError):
                    where = [f"{f.name}:{f.lineno}" for f in traceback.extract_tb(e.__traceback__)
                             if f.filename.endswith(("p2p.py", "test_hostile_peers.py"))]  # fmt: skip
                    at = time.monotonic() - self.until + DURATION
                    self.note(name, f"error {type(e).__name__} at {at:.1f}s in {where[-2:]}: "
                              f"{c.local} got {dict(c.counts)}")  # fmt: skip
            finally:
                if c.is_closed and c.close_how != "local":
                    self.note(name, "dropped by node" if kept and local else "dropped")
                self.note(name, "bytes", c.bytes_sent)
                c.close()
            await asyncio.sleep(0.05)


async def load_case(t: Target, honest_dir: Path, figures: dict[str, Any]) -> None:
    t.load_chain()
    node = t.node
    assert node.proc is not None
    pid = node.proc.pid

    def honest_sync(datadir: Path) -> float:
        """Seconds from starting a fresh node (``--connect`` to the target) to its having our
        tip. Runs in a thread of its own: the test's event loop is busy with the load."""
        honest = NodeProcess(
            datadir, extra_args=[f"--connect=127.0.0.1:{node.port}", "--no-listen"]
        )
        with honest:
            started = time.monotonic()
            honest.start()
            ready = time.monotonic()
            wait_until(lambda: honest.call("getblockcount") == CHAIN, HONEST_DEADLINE, 0.05,
                       "the honest node's sync")  # fmt: skip
            took = time.monotonic() - started
            figures[f"{datadir.name}_startup_s"] = ready - started
            assert honest.call("getbestblockhash") == t.hashes[-1][::-1].hex()
            return took

    figures["sync_alone_s"] = await asyncio.to_thread(honest_sync, honest_dir / "alone")
    await asyncio.sleep(0.5)
    figures["rss_before"] = process_rss(pid)
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart VmHWM from here
    load = Load(t)
    figures["stats"] = load.stats
    # Make the repeated invalid block known as invalid before the load starts.
    result = await t.rpc("submitblock", load.known_invalid.block.serialize().hex())
    assert result is not None and "bad-cb-amount" in result, result
    samples: list[int] = []

    async def sample() -> None:
        while True:
            samples.append(process_rss(pid))
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    load.until = time.monotonic() + DURATION
    workers = [asyncio.create_task(load.worker(i)) for i in range(HOSTILE)]
    try:
        await asyncio.sleep(2.0)  # the load is on
        figures["sync_loaded_s"] = await asyncio.to_thread(honest_sync, honest_dir / "loaded")
        assert await t.rpc("getblockcount") == CHAIN
        await asyncio.gather(*workers)
        figures["lag"] = await t.rpc("getlooplag", DURATION)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    figures["rss_peak_samples"] = max(samples)
    figures["rss_samples"] = len(samples)
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    figures["rss_hwm"] = int(hwm.group(1)) * 1024 if hwm else max(samples)
    await t.connections(0, 30)
    await asyncio.sleep(1.0)
    figures["rss_after"] = process_rss(pid)
    assert node.proc.poll() is None, "the node died"
    assert await t.rpc("getblockcount") == CHAIN


def print_figures(figures: dict[str, Any]) -> None:
    mb = 1024 * 1024
    where = f"from {REMOTE} and loopback" if REMOTE else "from loopback"
    print(f"\n{HOSTILE} hostile peers for {DURATION:g}s ({where}):")
    if "rss_after" in figures:
        peak = max(figures["rss_hwm"], figures["rss_peak_samples"])
        print(f"  target RSS: before {figures['rss_before'] / mb:.1f} MB, peak {peak / mb:.1f} MB "
              f"(VmHWM {figures['rss_hwm'] / mb:.1f}, {figures['rss_samples']} samples), "
              f"after {figures['rss_after'] / mb:.1f} MB")  # fmt: skip
    if "lag" in figures:
        lag = figures["lag"]
        print(f"  loop lag: median {lag['median_ms']:.1f} ms, p90 {lag['p90_ms']:.1f} ms, "
              f"max {lag['max_ms']:.1f} ms over {lag['samples']} samples")  # fmt: skip
    alone, loaded = figures.get("sync_alone_s"), figures.get("sync_loaded_s")
    print(f"  honest sync of {CHAIN} blocks: {alone and f'{alone:.2f}'}s alone, "
          f"{loaded and f'{loaded:.2f}'}s under the load")  # fmt: skip
    up_alone, up_loaded = figures.get("alone_startup_s"), figures.get("loaded_startup_s")
    print(f"    of which the honest node's start-up: {up_alone and f'{up_alone:.2f}'}s alone, "
          f"{up_loaded and f'{up_loaded:.2f}'}s under the load")  # fmt: skip
    for name, s in sorted(figures.get("stats", {}).items()):
        print(f"  {name:20} {s}")


def test_fifty_hostile_peers_while_an_honest_node_syncs(tmp_path: Path) -> None:
    figures: dict[str, Any] = {}
    with target_node(tmp_path / "target") as node:
        try:
            run(Target(node), lambda t: load_case(t, tmp_path, figures), 110)
        finally:
            print_figures(figures)
    lag = figures["lag"]
    before, peak = figures["rss_before"], max(figures["rss_hwm"], figures["rss_peak_samples"])
    assert peak - before < RSS_BOUND, f"RSS grew by {(peak - before) / 2**20:.0f} MB"
    assert lag["samples"] > 0 and lag["median_ms"] < LAG_MEDIAN_BOUND_MS
    assert lag["max_ms"] < LAG_MAX_BOUND_MS
    assert figures["sync_loaded_s"] < HONEST_DEADLINE
    syncing = figures["sync_loaded_s"] - figures["loaded_startup_s"]
    assert syncing < HONEST_SYNC_BOUND_S, f"the honest sync took {syncing:.1f}s under the load"
    stats = figures["stats"]
    for name, kept in Load.BEHAVIOURS:
        s = stats.get(name, {})
        assert s.get("sessions", 0) >= 1, f"{name} never ran"
        assert not [k for k in s if k.startswith("error")], f"{name}: {s}"
        if kept:
            # A loopback peer is never discouraged, so nothing ends its connection.
            assert s.get("dropped by node", 0) == 0, f"{name}: {s}"
        else:
            # A few sessions end before their drop is seen (a reset racing the read); the node
            # now serves several hundred of them in 20 s, so allow 5% of them and two more.
            assert s.get("dropped", 0) >= s["sessions"] - 2 - s["sessions"] // 20, f"{name}: {s}"
