"""One peer connection: the handshake, bounded send and receive buffers, ping, timeouts, counters.

Layer L2 (``peercash.p2p``). Sees bytes and messages only (``codec``, ``messages``), never the
chain. The connection manager (``connman``) creates every :class:`Peer`, owns its life and
implements :class:`PeerOwner`, through which the peer reports what happened; the sync layer sees
peers through the manager's :class:`~peercash.p2p.connman.MessageHandler`.

**Concurrency.** A ``Peer`` is an ``asyncio.Protocol``: everything about it runs on the event loop
thread, and none of it is thread-safe. ``send`` never blocks: it frames the message and hands it
to the transport, whose buffer holds what the kernel has not taken yet.

**Back-pressure, both ways.**

* *Send*: when the transport holds more than ``send_pause`` unsent bytes (a fifth of the hard
  limit, 1 MB by default — Core's ``-maxsendbuffer``), :attr:`Peer.sending_paused` is true and
  the peer's *incoming* messages are no longer delivered (as Core stops processing a peer whose
  send buffer is full), so a peer that asks for data but does not read it stops getting more.
  Past ``max_send_buffer`` bytes (5 MB by default) the peer is disconnected: it is not reading,
  and we never buffer for it without bound.
* *Receive*: ``data_received`` only frames (the codec's ``FrameDecoder``, which holds at most one
  message) and queues; the connection manager's :class:`~peercash.p2p.scheduler.MessageScheduler`
  delivers each peer's queued messages in order, one at a time, from the peer that has had the
  least of the loop's time (so a flood of costly messages cannot delay an honest peer's cheap
  ones). When the queue holds
  more than ``max_receive_buffer`` bytes, reading from the socket stops until half of it has
  been delivered, so TCP pushes back on the sender. The handler may hold delivery while it works
  on something for this peer (:meth:`Peer.pause_processing` / :meth:`Peer.resume_processing`).

**What the peer does itself** (Core's ``net_processing`` rules, checked message by message):
``version`` (services, minimum version, self-connection, the answers: our ``version`` for
inbound peers, ``wtxidrelay`` and ``sendaddrv2`` when the peer's version is at least 70016, then
``verack``), ``verack``, ``wtxidrelay``/``sendaddrv2`` (only between version and verack; after
it the peer is disconnected), ``ping``→``pong``, ``pong`` (round-trip time), and the bookkeeping
of ``sendheaders``, ``feefilter`` and ``sendcmpct``. Messages before ``version`` are ignored, a
second ``version`` is ignored, messages other than these before ``verack`` are ignored, unknown
commands are ignored. A fatal framing error (wrong magic, a length over the limit) closes the
connection without discouraging the peer, as Core does; what a bad frame or an undecodable
payload costs is in :func:`malformed_verdict`. Everything else, after the handshake, goes to the owner.

**Timeouts** (:class:`PeerTimeouts`, checked by the owner's timer through
:meth:`Peer.check_timeouts`), Core's ``InactivityCheck`` and ping rules: after ``handshake``
seconds (``-peertimeout``, 60) a peer that has not exchanged bytes both ways, whose handshake is
not done, or that sent or received nothing for ``inactivity`` seconds (20 minutes) is
disconnected; a ping goes out every ``ping_interval`` (2 minutes) and no pong within
``ping_timeout`` (20 minutes) disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from peercash.consensus.errors import DecodeError
from peercash.consensus.serialize import Reader
from peercash.p2p.codec import (
    HEADER_SIZE,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    Frame,
    FrameDecoder,
    FramingError,
    encode_frame,
)
from peercash.p2p.messages import (
    CMPCTBLOCKS_VERSION,
    MAX_ADDR_TO_SEND,
    MAX_HEADERS_RESULTS,
    MAX_INV_SZ,
    MAX_LOCATOR_SZ,
    MESSAGE_TYPES,
    MIN_PEER_PROTO_VERSION,
    NODE_NETWORK,
    NODE_NETWORK_LIMITED,
    NODE_WITNESS,
    PROTOCOL_VERSION,
    WTXID_RELAY_VERSION,
    FeeFilter,
    Message,
    MessageError,
    Ping,
    Pong,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    Verack,
    Version,
    WtxidRelay,
    decode_message,
)
from peercash.p2p.netaddress import NetAddress
from peercash.p2p.scheduler import MessageScheduler

if TYPE_CHECKING:
    from peercash.p2p.addrrelay import AddrRateLimiter, GetAddrOnce

__all__ = [
    "DEFAULT_MAX_RECEIVE_BUFFER",
    "DEFAULT_MAX_SEND_BUFFER",
    "OTHER_MSG",
    "ConnType",
    "Peer",
    "PeerOwner",
    "PeerTimeouts",
    "has_desirable_services",
    "malformed_verdict",
    "sanitize_user_agent",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_SEND_BUFFER = 5_000_000
"""Unsent bytes after which a peer is disconnected (it holds the largest message, 4 MB)."""
DEFAULT_MAX_RECEIVE_BUFFER = 5_000_000
"""Received, framed bytes waiting for delivery after which we stop reading (Core's
``-maxreceivebuffer`` default, 5,000 KB)."""
OTHER_MSG = "*other*"
"""Where bytes of unknown or dropped messages are counted (Core's ``NET_MESSAGE_TYPE_OTHER``)."""
MAX_HISTORY = 32
"""Misbehaviour and protocol notes kept per peer (for ``getpeerinfo``)."""
_READ_LIMIT_HEADROOM = HEADER_SIZE


class ConnType(Enum):
    """Why a connection exists (Core's ``ConnectionType``); the value is Core's name for
    ``getpeerinfo``'s ``connection_type``."""

    OUTBOUND_FULL_RELAY = "outbound-full-relay"
    BLOCK_RELAY = "block-relay-only"
    MANUAL = "manual"
    FEELER = "feeler"
    ADDR_FETCH = "addr-fetch"
    INBOUND = "inbound"

    @property
    def inbound(self) -> bool:
        return self is ConnType.INBOUND

    @property
    def expects_services(self) -> bool:
        """Whether the peer must offer blocks with witnesses (Core's ``ExpectServicesFromConn``:
        automatic outbound connections; manual ones and feelers are taken as they are)."""
        return self in (ConnType.OUTBOUND_FULL_RELAY, ConnType.BLOCK_RELAY, ConnType.ADDR_FETCH)

    @property
    def relays_addresses(self) -> bool:
        """Whether we take part in address relay with such a peer (Core: not with
        block-relay-only peers)."""
        return self is not ConnType.BLOCK_RELAY


@dataclass(frozen=True, slots=True)
class PeerTimeouts:
    """Seconds; Core's defaults. Tests shorten them."""

    handshake: float = 60.0
    """``-peertimeout``: time to complete the handshake; inactivity checks start after it."""
    ping_interval: float = 120.0
    """A ping every this often (Core's ``PING_INTERVAL``)."""
    ping_timeout: float = 20 * 60.0
    """No pong this long after a ping disconnects (Core's ``TIMEOUT_INTERVAL``)."""
    inactivity: float = 20 * 60.0
    """Nothing sent, or nothing received, for this long disconnects (``TIMEOUT_INTERVAL``)."""


def has_desirable_services(services: int) -> bool:
    """Blocks with witnesses: ``NODE_WITNESS`` and ``NODE_NETWORK`` or ``NODE_NETWORK_LIMITED``
    (Core's ``HasAllDesirableServiceFlags``, taking a pruned peer as good enough)."""
    return bool(services & NODE_WITNESS) and bool(services & (NODE_NETWORK | NODE_NETWORK_LIMITED))


def _expected_services(services: int) -> int:
    if services & NODE_NETWORK_LIMITED:
        return NODE_NETWORK_LIMITED | NODE_WITNESS
    return NODE_NETWORK | NODE_WITNESS


_SAFE_UA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;-_/:?@()")


def sanitize_user_agent(text: str) -> str:
    """Core's ``SanitizeString``: only letters, digits, space and ``.,;-_/:?@()`` are kept."""
    return "".join(c for c in text if c in _SAFE_UA)


# -- malformed input ------------------------------------------------------------------------------

Verdict = Literal["misbehaving", "disconnect", "drop"]

# Messages whose count Core checks after decoding, and what exceeding it costs (the decoder
# refuses the count already; we find it again to give Core's treatment and reason).
_COUNTED: dict[bytes, tuple[int, int, Verdict]] = {
    # command: (offset of the count, limit, verdict)
    b"addr": (0, MAX_ADDR_TO_SEND, "misbehaving"),
    b"addrv2": (0, MAX_ADDR_TO_SEND, "misbehaving"),
    b"inv": (0, MAX_INV_SZ, "misbehaving"),
    b"getdata": (0, MAX_INV_SZ, "misbehaving"),
    b"headers": (0, MAX_HEADERS_RESULTS, "misbehaving"),
    b"getheaders": (4, MAX_LOCATOR_SZ, "disconnect"),
    b"getblocks": (4, MAX_LOCATOR_SZ, "disconnect"),
}


def malformed_verdict(command: bytes, payload: bytes) -> tuple[Verdict, str]:
    """What to do with a known ``command`` whose ``payload`` does not decode, and the reason.

    As Core's ``ProcessMessage``: a count over its limit in ``addr``/``addrv2`` (1,000),
    ``inv``/``getdata`` (50,000) or ``headers`` (2,000) is misbehaviour (``"addr message size =
    1001"``: the peer is discouraged and disconnected); a locator of more than 101 hashes in
    ``getheaders``/``getblocks`` disconnects (``"getheaders locator size 102 > 101"``); any other
    payload that does not decode — truncated, trailing bytes, a bad field — is dropped and the
    connection kept (Core catches the deserialization exception and carries on)."""
    name = command.decode("ascii", "replace")
    spec = _COUNTED.get(command)
    if spec is not None:
        offset, limit, verdict = spec
        try:
            r = Reader(payload[offset:])
            count = r.compact_size(0xFFFFFFFFFFFFFFFF)
        except DecodeError:
            count = -1
        if count > limit:
            if verdict == "disconnect":
                return verdict, f"{name} locator size {count} > {limit}"
            return verdict, f"{name} message size = {count}"
    return "drop", f"malformed {name} message ({len(payload)} bytes)"


# -- the owner ------------------------------------------------------------------------------------


class PeerOwner(Protocol):
    """What a peer tells its owner (the connection manager), always on the event loop thread."""

    def our_version(self, peer: Peer) -> Version:
        """The ``version`` message to send this peer."""
        ...

    def check_version(self, peer: Peer, version: Version) -> str | None:
        """A reason to refuse the peer's ``version`` (a connection to ourselves), or None."""
        ...

    def peer_version(self, peer: Peer) -> None:
        """The peer's ``version`` was accepted and answered (``verack`` sent)."""
        ...

    def peer_connected(self, peer: Peer) -> None:
        """The handshake is done: the peer sent ``verack``."""
        ...

    def peer_message(self, peer: Peer, msg: Message) -> None:
        """A message after the handshake that the peer does not handle itself."""
        ...

    def peer_misbehaving(self, peer: Peer, reason: str, *, fatal: bool) -> None:
        """The peer broke a rule: discourage and disconnect it (Core's ``Misbehaving``). With
        ``fatal`` the connection cannot go on (the byte stream is lost) whatever the peer's
        permissions."""
        ...

    def peer_closed(self, peer: Peer) -> None:
        """The connection is gone (after ``disconnect`` or because the other side closed)."""
        ...


@dataclass(slots=True)
class HistoryEntry:
    """One note in a peer's misbehaviour history (``getpeerinfo``'s ``misbehavior_history``)."""

    time: int
    reason: str
    action: str

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "reason": self.reason, "action": self.action}


@dataclass(slots=True)
class _Counters:
    bytes_sent: int = 0
    bytes_recv: int = 0
    sent_per_msg: dict[str, int] = field(default_factory=dict)
    recv_per_msg: dict[str, int] = field(default_factory=dict)


def _msg_name(command: bytes) -> str:
    return command.decode("ascii") if command in MESSAGE_TYPES else OTHER_MSG


class Peer(asyncio.Protocol):
    """One connection (see the module docstring). Created by the connection manager; the sync
    layer reads its attributes and calls :meth:`send`, :meth:`disconnect` and the processing
    controls, on the event loop thread only.

    Attributes set by the handshake: ``their_version`` (the ``Version`` message, None until it
    came), ``services``, ``start_height``, ``user_agent`` (sanitized), ``relay`` (the version's
    relay flag), ``common_version``, ``time_offset`` (their clock minus ours, seconds),
    ``addr_local`` (how the peer sees us, from its version). From later messages:
    ``prefers_headers`` (``sendheaders``), ``wtxid_relay``, ``addrv2``, ``fee_filter``
    (satoshis per 1,000 vbytes), ``compact_blocks`` (the last ``sendcmpct`` of version 2),
    ``ping_time``/``min_ping`` (seconds, None before the first pong). Counters: ``bytes_sent``,
    ``bytes_recv``, ``bytes_sent_per_msg``, ``bytes_recv_per_msg`` (header included; unknown or
    dropped messages under ``"*other*"``), ``connected_time``, ``last_send``, ``last_recv``.
    The sync layer keeps ``last_block_time``, ``last_tx_time`` (UNIX seconds of the last new block
    or transaction from the peer, used by eviction), ``bip152_hb_to``, ``synced_headers``,
    ``synced_blocks``, ``presynced_headers`` and ``inflight`` up to date for ``getpeerinfo``.
    """

    def __init__(
        self,
        *,
        peer_id: int,
        address: NetAddress,
        conn_type: ConnType,
        owner: PeerOwner,
        magic: bytes,
        addr_name: str | None = None,
        timeouts: PeerTimeouts = PeerTimeouts(),
        max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER,
        max_receive_buffer: int = DEFAULT_MAX_RECEIVE_BUFFER,
        clock: Callable[[], float] = time.time,
        nonce: int | None = None,
        scheduler: MessageScheduler | None = None,
    ) -> None:
        self.id = peer_id
        self.address = address
        self.addr_name = addr_name if addr_name is not None else str(address)
        self.conn_type = conn_type
        self.inbound = conn_type.inbound
        self._owner = owner
        self._magic = magic
        self.timeouts = timeouts
        self.max_send_buffer = max_send_buffer
        self.send_pause = max(1, max_send_buffer // 5)
        self.max_receive_buffer = max_receive_buffer
        self._clock = clock
        self.local_nonce = nonce if nonce is not None else secrets.randbits(64)
        # handshake
        self.their_version: Version | None = None
        self.version_sent = False
        self.handshake_done = False
        self.services = 0
        self.start_height = -1
        self.user_agent = ""
        self.relay = False
        self.common_version = 0
        self.time_offset = 0
        self.addr_local: str | None = None
        self.addr_bind: str | None = None
        # negotiated features
        self.prefers_headers = False
        self.wtxid_relay = False
        self.addrv2 = False
        self.fee_filter = 0
        self.compact_blocks: SendCmpct | None = None
        self.bip152_hb_from = False
        # kept by the sync layer
        self.bip152_hb_to = False
        self.last_block_time = 0
        self.last_tx_time = 0
        self.synced_headers = -1
        self.synced_blocks = -1
        self.presynced_headers = -1
        self.inflight: list[int] = []
        # address relay (kept by the connection manager)
        self.addr_relay_enabled = False
        self.addr_limiter: AddrRateLimiter | None = None
        self.getaddr_once: GetAddrOnce | None = None
        self.getaddr_sent = False
        self.prefer_evict = False
        """Discouraged when it connected: the first candidate for eviction."""
        self.permissions = 0
        """``NetPermissions`` flags (``-whitelist``/``-whitebind``), set by the connection
        manager when the peer is created."""
        # ping
        self.ping_time: float | None = None
        self.min_ping: float | None = None
        self._ping_nonce = 0
        self._ping_start = 0.0
        self._ping_queued = False
        # counters and times
        self._counters = _Counters()
        now = clock()
        self.connected_time = now
        self.last_send = 0.0
        self.last_recv = 0.0
        self._send_progress = now
        self._last_buffer_size = 0
        # state
        self.history: deque[HistoryEntry] = deque(maxlen=MAX_HISTORY)
        self.disconnect_reason: str | None = None
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder(magic, MAX_PROTOCOL_MESSAGE_LENGTH)
        self._queue: deque[Frame] = deque()
        self._queued_bytes = 0
        self._flood_paused = False
        self._send_paused = False
        self._processing_holds = 0
        self._scheduler = scheduler if scheduler is not None else MessageScheduler()
        self._closed_event = asyncio.Event()

    # -- identity and counters ------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"Peer(id={self.id}, {self.addr_name}, {self.conn_type.value})"

    @property
    def outbound(self) -> bool:
        return not self.inbound

    @property
    def bytes_sent(self) -> int:
        return self._counters.bytes_sent

    @property
    def bytes_recv(self) -> int:
        return self._counters.bytes_recv

    @property
    def bytes_sent_per_msg(self) -> dict[str, int]:
        return dict(self._counters.sent_per_msg)

    @property
    def bytes_recv_per_msg(self) -> dict[str, int]:
        return dict(self._counters.recv_per_msg)

    @property
    def relays_txs(self) -> bool:
        """Whether we announce transactions to this peer (its relay flag, and not a
        block-relay-only or feeler connection)."""
        return self.relay and self.conn_type not in (ConnType.BLOCK_RELAY, ConnType.FEELER)

    @property
    def ping_wait(self) -> float | None:
        """Seconds the outstanding ping has waited, or None."""
        return self._clock() - self._ping_start if self._ping_nonce else None

    @property
    def send_buffer_size(self) -> int:
        """Bytes handed to the transport that the kernel has not taken yet."""
        t = self._transport
        return t.get_write_buffer_size() if t is not None and not t.is_closing() else 0

    @property
    def sending_paused(self) -> bool:
        """True while more than ``send_pause`` bytes wait to be sent: the sync layer should hold
        further large answers (blocks) until it clears (Core's ``fPauseSend``)."""
        return self._send_paused

    @property
    def is_closing(self) -> bool:
        return self.disconnect_reason is not None or self.closed

    def note(self, reason: str, action: str) -> None:
        """Add to the peer's history (and the log)."""
        self.history.append(HistoryEntry(int(self._clock()), reason, action))

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    # -- sending --------------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        """Frame ``msg`` and queue it for sending; never blocks. A peer whose unsent bytes pass
        ``max_send_buffer`` is disconnected. Does nothing once the peer is closing."""
        t = self._transport
        if t is None or self.is_closing or t.is_closing():
            return
        data = encode_frame(self._magic, msg.command, msg.encode())
        name = _msg_name(msg.command)
        c = self._counters
        c.bytes_sent += len(data)
        c.sent_per_msg[name] = c.sent_per_msg.get(name, 0) + len(data)
        self.last_send = self._clock()
        t.write(data)
        pending = t.get_write_buffer_size()
        if pending > self.max_send_buffer:
            self.disconnect(
                f"send buffer full: {pending} bytes unsent, limit {self.max_send_buffer} "
                "(peer is not reading)"
            )

    def disconnect(self, reason: str, *, flush: bool = False) -> None:
        """Close the connection and record why; ``flush`` sends what is queued first (for a
        clean shutdown). Idempotent: the first reason is the one kept."""
        if self.is_closing:
            return
        self.disconnect_reason = reason
        log.info("disconnecting peer=%d %s (%s): %s", self.id, self.addr_name,
                 self.conn_type.value, reason)  # fmt: skip
        t = self._transport
        if t is None:
            self._finish_close()
        elif flush:
            t.close()
        else:
            t.abort()

    def abort(self) -> None:
        """Drop the connection at once, discarding what is queued (after a graceful
        ``disconnect(flush=True)`` that did not finish in time)."""
        if self.disconnect_reason is None:
            self.disconnect_reason = "aborted"
        t = self._transport
        if t is not None:
            t.abort()
        else:
            self._finish_close()

    # -- handler controls -----------------------------------------------------------------------

    def pause_processing(self) -> None:
        """Hold delivery of this peer's messages (nested: each call needs a resume). While held,
        what arrives queues up to ``max_receive_buffer``, then reading stops."""
        self._processing_holds += 1

    def resume_processing(self) -> None:
        if self._processing_holds > 0:
            self._processing_holds -= 1
        if self._processing_holds == 0 and self._queue and not self._held():
            self._scheduler.ready(self)

    def request_ping(self) -> None:
        """Send a ping now (the ``ping`` RPC); it replaces an outstanding one, as in Core."""
        self._ping_queued = True
        if self.handshake_done:
            self._send_ping()

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.is_closing:
            # Disconnected while its socket was still being wrapped (the discouragement of its
            # address reaches every peer there, this one too): close the socket now, or it would
            # live on unread and never time out.
            transport.abort()
            return
        self._transport = transport
        transport.set_write_buffer_limits(high=self.send_pause, low=self.send_pause // 2)
        sockname = transport.get_extra_info("sockname")
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            host = str(sockname[0])
            self.addr_bind = f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"
        if self.outbound:
            self._send_version()

    def data_received(self, data: bytes) -> None:
        if self.is_closing:
            return
        self.last_recv = self._clock()
        self._counters.bytes_recv += len(data)
        try:
            frames = self._decoder.feed(data)
        except FramingError as e:
            for f in e.frames:
                self._count_recv(f)
            # The byte stream is lost: close the connection. Not misbehaviour (no
            # discouragement): Core's CConnman only closes the socket when V1Transport rejects a
            # header (net.cpp, ReceiveMsgBytes failing -> CloseSocketDisconnect).
            reason = f"header error: {e}"
            self.note(reason, "disconnected")
            self.disconnect(reason)
            return
        for f in frames:
            self._count_recv(f)
            self._queue.append(f)
            self._queued_bytes += len(f.payload) + HEADER_SIZE
        if frames and not self._held():
            self._scheduler.ready(self)
        if self._queued_bytes > self.max_receive_buffer and not self._flood_paused:
            t = self._transport
            if t is not None:
                t.pause_reading()
                self._flood_paused = True

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def pause_writing(self) -> None:
        self._send_paused = True

    def resume_writing(self) -> None:
        self._send_paused = False
        self._send_progress = self._clock()
        if self._queue and not self._held() and not self.is_closing:
            self._scheduler.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.disconnect_reason is None:
            why = "connection closed by peer" if exc is None else f"connection lost: {exc}"
            self.disconnect_reason = why
            log.debug("peer=%d %s: %s", self.id, self.addr_name, why)
        self._finish_close()

    def _finish_close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._scheduler.forget(self)
        self._queue.clear()
        self._queued_bytes = 0
        self._closed_event.set()
        self._owner.peer_closed(self)

    # -- receiving ------------------------------------------------------------------------------

    def _count_recv(self, frame: Frame) -> None:
        name = _msg_name(frame.command) if frame.ok else OTHER_MSG
        c = self._counters
        size = len(frame.payload) + HEADER_SIZE
        c.recv_per_msg[name] = c.recv_per_msg.get(name, 0) + size

    def _held(self) -> bool:
        return self._processing_holds > 0 or self._send_paused

    def process_one(self) -> bool:
        """Handle the next queued message (called by the scheduler, which picks the peer);
        True if another can be handled now."""
        if self.is_closing or not self._queue or self._held():
            return False
        self._process(self._pop_frame())
        return bool(self._queue) and not self._held() and not self.is_closing

    def take_queued(self, command: bytes) -> Message | None:
        """The next queued message, taken out of turn, if it is a well-formed ``command`` and
        the handshake is done; else None and the queue is left as it is. For a handler that
        holds this peer while it serves a request and can serve the next one of the same kind
        with it (``getdata`` after ``getdata``: one read of the chain for both, in order)."""
        if self.is_closing or not self._queue or not self.handshake_done:
            return None
        frame = self._queue[0]
        if frame.command != command or not frame.ok:
            return None
        try:
            msg = decode_message(frame.command, frame.payload)
        except MessageError:
            return None  # left for process_one, which judges it
        if msg is None:
            return None
        self._pop_frame()
        return msg

    def _pop_frame(self) -> Frame:
        frame = self._queue.popleft()
        self._queued_bytes -= len(frame.payload) + HEADER_SIZE
        if self._flood_paused and self._queued_bytes <= self.max_receive_buffer // 2:
            self._flood_paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()
        return frame

    def process_failed(self, error: Exception) -> None:
        """A handler raised: a bug, which must not stop the loop or the other peers."""
        log.exception("peer=%d: error while handling a message", self.id)
        self.disconnect(f"internal error while handling a message: {type(error).__name__}: {error}")

    def _process(self, frame: Frame) -> None:
        cmd = frame.command
        name = cmd.decode("ascii", "replace")
        if not frame.checksum_ok:
            log.debug("peer=%d: wrong checksum (%s, %d bytes); message dropped",
                      self.id, name, len(frame.payload))  # fmt: skip
            return
        if not frame.command_ok:
            log.debug("peer=%d: invalid message type %r; message dropped", self.id, cmd)
            return
        try:
            msg = decode_message(cmd, frame.payload)
        except MessageError as e:
            verdict, reason = malformed_verdict(cmd, frame.payload)
            if verdict == "misbehaving":
                self._owner.peer_misbehaving(self, reason, fatal=False)
            elif verdict == "disconnect":
                self.note(reason, "disconnected")
                self.disconnect(reason)
            else:
                self.note(f"{reason}: {e.error}", "dropped")
                log.debug("peer=%d: %s: %s; dropped", self.id, reason, e.error)
            return
        if msg is None:
            log.debug("peer=%d: unknown message type %r ignored", self.id, name)
            return
        self._on_message(msg)

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Version):
            if self.their_version is not None:
                log.debug("peer=%d: redundant version message ignored", self.id)
                return
            self._on_version(msg)
            return
        if self.their_version is None:
            log.debug("peer=%d: non-version message before version handshake: %s ignored",
                      self.id, msg.command.decode())  # fmt: skip
            return
        if isinstance(msg, Verack):
            if self.handshake_done:
                log.debug("peer=%d: ignoring redundant verack message", self.id)
                return
            self.handshake_done = True
            log.info("new %s peer connected: peer=%d %s, version %d, blocks=%d",
                     self.conn_type.value, self.id, self.addr_name, self.common_version,
                     self.start_height)  # fmt: skip
            self._owner.peer_connected(self)
            return
        if isinstance(msg, SendHeaders):
            self.prefers_headers = True
            if self.handshake_done:
                self._owner.peer_message(self, msg)
            return
        if isinstance(msg, SendCmpct):
            if msg.version == CMPCTBLOCKS_VERSION:
                self.compact_blocks = msg
                self.bip152_hb_from = msg.announce
            if self.handshake_done:
                self._owner.peer_message(self, msg)
            return
        if isinstance(msg, WtxidRelay):
            if self.handshake_done:
                self.note("wtxidrelay received after verack", "disconnected")
                self.disconnect("wtxidrelay received after verack")
                return
            if self.common_version >= WTXID_RELAY_VERSION:
                self.wtxid_relay = True
            return
        if isinstance(msg, SendAddrV2):
            if self.handshake_done:
                self.note("sendaddrv2 received after verack", "disconnected")
                self.disconnect("sendaddrv2 received after verack")
                return
            self.addrv2 = True
            return
        if not self.handshake_done:
            log.debug("peer=%d: unsupported message %s prior to verack ignored",
                      self.id, msg.command.decode())  # fmt: skip
            return
        if isinstance(msg, Ping):
            self.send(Pong(msg.nonce))
            return
        if isinstance(msg, Pong):
            self._on_pong(msg.nonce)
            return
        if isinstance(msg, FeeFilter) and msg.in_money_range:
            self.fee_filter = msg.feerate
        self._owner.peer_message(self, msg)

    # -- handshake ------------------------------------------------------------------------------

    def _send_version(self) -> None:
        if not self.version_sent:
            self.version_sent = True
            self.send(self._owner.our_version(self))

    def _on_version(self, v: Version) -> None:
        if self.conn_type.expects_services and not has_desirable_services(v.services):
            reason = (
                f"peer does not offer the expected services ({v.services:08x} offered, "
                f"{_expected_services(v.services):08x} expected)"
            )
            self.note(reason, "disconnected")
            self.disconnect(reason)
            return
        if v.version < MIN_PEER_PROTO_VERSION:
            reason = f"peer using obsolete version {v.version}"
            self.note(reason, "disconnected")
            self.disconnect(reason)
            return
        refusal = self._owner.check_version(self, v)
        if refusal is not None:
            self.disconnect(refusal)
            return
        self.their_version = v
        self.services = v.services
        self.start_height = v.start_height
        self.user_agent = sanitize_user_agent(v.user_agent)
        self.relay = v.relay
        self.common_version = min(v.version, PROTOCOL_VERSION)
        self.time_offset = max(v.timestamp, 0) - int(self._clock())
        if v.addr_recv.address.is_routable():
            self.addr_local = str(v.addr_recv.address)
        if self.inbound:
            self._send_version()
        if self.common_version >= WTXID_RELAY_VERSION:
            self.send(WtxidRelay())
            self.send(SendAddrV2())
        self.send(Verack())
        log.debug("peer=%d: version %d, %s, blocks=%d, relay=%s", self.id, v.version,
                  self.user_agent, v.start_height, v.relay)  # fmt: skip
        self._owner.peer_version(self)

    # -- ping and timeouts ----------------------------------------------------------------------

    def _send_ping(self) -> None:
        nonce = 0
        while nonce == 0:
            nonce = secrets.randbits(64)
        self._ping_queued = False
        self._ping_nonce = nonce
        self._ping_start = self._clock()
        self.send(Ping(nonce))

    def _on_pong(self, nonce: int) -> None:
        problem = None
        if self._ping_nonce == 0:
            problem = "unsolicited pong without ping"
        elif nonce == self._ping_nonce:
            rtt = max(self._clock() - self._ping_start, 0.0)
            self.ping_time = rtt
            self.min_ping = rtt if self.min_ping is None else min(self.min_ping, rtt)
            self._ping_nonce = 0
        elif nonce == 0:
            problem = "nonce zero"
            self._ping_nonce = 0
        else:
            problem = "nonce mismatch"
        if problem is not None:
            log.debug("pong peer=%d: %s, %x expected, %x received", self.id, problem,
                      self._ping_nonce, nonce)  # fmt: skip

    def check_timeouts(self, now: float) -> None:
        """Disconnect for the timeouts of :class:`PeerTimeouts`, and send a ping when due.
        Called by the owner's timer (about once a second)."""
        if self.is_closing or self._transport is None:
            return
        size = self.send_buffer_size
        if size == 0 or size < self._last_buffer_size:
            self._send_progress = now
        self._last_buffer_size = size
        t = self.timeouts
        if now - self.connected_time > t.handshake:
            reason = self._inactivity(now)
            if reason is not None:
                self.disconnect(reason)
                return
        if not self.handshake_done:
            return
        if self._ping_nonce and now - self._ping_start > t.ping_timeout:
            self.disconnect(f"ping timeout: {now - self._ping_start:.3f}s")
            return
        if self._ping_queued or (
            self._ping_nonce == 0 and now - self._ping_start > t.ping_interval
        ):
            self._send_ping()

    def _inactivity(self, now: float) -> str | None:
        t = self.timeouts
        if not self.last_recv or not self.last_send:
            never = ""
            if not self.last_recv:
                never += ", never received from peer"
            if not self.last_send:
                never += ", never sent to peer"
            return f"socket no message in first {t.handshake:g} seconds{never}"
        if now - self._send_progress > t.inactivity:
            return f"socket sending timeout: {now - self._send_progress:.0f}s"
        if now - self.last_recv > t.inactivity:
            return f"socket receive timeout: {now - self.last_recv:.0f}s"
        if not self.handshake_done:
            return "version handshake timeout"
        return None
