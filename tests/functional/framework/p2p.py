"""A raw P2P peer for functional tests: it speaks bytes to any node's P2P port.

``P2PConnection`` is one TCP connection, driven by the test on an asyncio loop (run the test
body under ``asyncio.run``; call blocking RPCs with ``asyncio.to_thread``). It does not care
what is at the other end — a ``NodeProcess``, a bcoin node, an in-process manager — and it keeps
no protocol state it was not told to: the test chooses every field of the handshake, may break
it (a version only, nothing at all, one byte a second), and may send anything:

* well-formed messages (``send(msg)``, framed with ``peercash.p2p.codec.encode_frame``),
* frames with a chosen command, payload, length field, checksum or magic (``send_frame``),
* raw bytes (``send_raw``), or bytes trickled slowly (``send_slowly``).

What the node sends is framed with our own ``FrameDecoder`` and kept (up to ``keep`` frames;
``counts`` and ``bytes_received`` count everything). ``recv``/``wait_for`` read messages with a
timeout (``received`` lists every message they decoded, in order, also those ``wait_for``
passed over); ``ping`` proves the node processed everything sent before (it answers in order).
``stop_reading()`` stops taking bytes from the socket (with a small ``rcvbuf`` the node's send
buffer fills: a peer that never reads). How and when the node ended the connection is recorded:
``is_closed`` (``is_closing`` already while the transport shuts), ``wait_closed(timeout)``,
``closed_at`` (monotonic), ``lifetime`` (seconds since the TCP connection stood), ``close_how``
(``"eof"``: the node closed it; ``"reset"``: it aborted it with data unread; ``"local"``: we
did) and ``close_error``.

A connection the node opens (to an outbound or ``addnode`` peer) is served by a test listener:
``P2PConnection.listen(serve, host, port)`` is an ``asyncio.Server`` that hands each accepted
connection to ``serve`` (a coroutine function, run as a task); ``answer_handshake`` plays the
answering side of the handshake.

``source`` binds the local end to an address before connecting, so a test can appear to the
node as a non-loopback peer (see ``local_address()``): the node treats loopback peers as local
and never discourages them (Core's rule), so tests of discouragement connect from another of
the machine's own addresses.

Helpers: ``version_message`` (a ``version`` with chosen fields), ``frame_bytes`` (a frame with a
wrong length or checksum), ``local_address`` (a non-loopback address of this machine, if any).

Nothing here sends traffic past this machine: connections go to the address the test names.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from peercash.consensus.params import get_params
from peercash.p2p import messages as m
from peercash.p2p.codec import Frame, FrameDecoder, FramingError, checksum, encode_frame

__all__ = [
    "REGTEST_MAGIC",
    "ConnectionClosed",
    "P2PConnection",
    "frame_bytes",
    "local_address",
    "version_message",
]

REGTEST_MAGIC = get_params("regtest").magic
M = TypeVar("M", bound=m.Message)
Serve = Callable[["P2PConnection"], Coroutine[Any, Any, None]]
"""What ``P2PConnection.listen`` runs for each connection it accepts."""


class ConnectionClosed(ConnectionError):
    """The connection is closed (by the node or by us) and cannot send or receive more."""


_serving: set[asyncio.Task[None]] = set()
"""The running ``serve`` tasks of ``P2PConnection.listen`` (the loop keeps only weak references)."""


def frame_bytes(
    magic: bytes,
    command: bytes,
    payload: bytes,
    *,
    length: int | None = None,
    check: bytes | None = None,
) -> bytes:
    """A v1 frame; ``length`` and ``check`` replace the true length field and checksum."""
    n = len(payload) if length is None else length
    c = checksum(payload) if check is None else check
    return struct.pack("<4s12sI4s", magic, command, n, c) + payload


def version_message(
    *,
    nonce: int | None = None,
    version: int = m.PROTOCOL_VERSION,
    services: int = m.NODE_NETWORK | m.NODE_WITNESS,
    start_height: int = 0,
    relay: bool = True,
    user_agent: str = "/p2pconn:0.1/",
    timestamp: int | None = None,
) -> m.Version:
    """A ``version`` message with the given fields (a random nonce, the current time)."""
    return m.Version(
        version=version,
        services=services,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        addr_recv=m.NULL_VERSION_ADDRESS,
        addr_from=m.NULL_VERSION_ADDRESS,
        nonce=secrets.randbits(64) if nonce is None else nonce,
        user_agent=user_agent,
        start_height=start_height,
        relay=relay,
    )


def local_address(family: int = socket.AF_INET) -> str | None:
    """A non-loopback address of this machine that a socket can bind to, or None.

    Found through the routing table (a UDP socket ``connect`` sends nothing), then the host
    name; each candidate is checked by binding to it."""
    candidates: list[str] = []
    probe = "192.0.2.1" if family == socket.AF_INET else "2001:db8::1"  # documentation ranges
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((probe, 9))
        candidates.append(str(s.getsockname()[0]))
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM):
            candidates.append(str(info[4][0]))
    for host in candidates:
        if host.startswith("127.") or host in ("::1", "0.0.0.0", "::") or "%" in host:
            continue
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return host
    return None


class P2PConnection(asyncio.Protocol):
    """One raw connection to a node's P2P port (see the module docstring)."""

    def __init__(self, magic: bytes = REGTEST_MAGIC, *, name: str = "", keep: int = 10_000):
        self.magic = magic
        self.name = name
        self.keep = keep
        self.decoder = FrameDecoder(magic)
        self.frames: deque[Frame] = deque()
        """Frames received and not read yet (at most ``keep``: older ones are dropped)."""
        self.counts: Counter[str] = Counter()
        """Frames received by command (every one, read or not)."""
        self.bytes_received = 0
        self.bytes_sent = 0
        self.framing_error: FramingError | None = None
        self.received: list[m.Message] = []
        """Every message ``recv`` decoded, in order (also those ``wait_for`` passed over)."""
        self.their_version: m.Version | None = None
        self.local: tuple[str, int] | None = None
        """Our end of the connection (host, port): the node knows us by it."""
        self.connected_at: float | None = None
        self.closed_at: float | None = None
        self.close_how: str | None = None
        self.close_error: BaseException | None = None
        self._transport: asyncio.Transport | None = None
        self._arrived = asyncio.Event()
        self._closed = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reading = True
        self._serve: Serve | None = None

    def __repr__(self) -> str:
        state = f"closed ({self.close_how})" if self.is_closed else "open"
        return f"P2PConnection({self.name or self.local}, {state})"

    # -- connecting -----------------------------------------------------------------------------

    async def connect(
        self,
        host: str,
        port: int,
        *,
        source: str | None = None,
        rcvbuf: int | None = None,
        timeout: float = 10.0,
    ) -> P2PConnection:
        """Open the TCP connection (from ``source`` when given; with a receive buffer of
        ``rcvbuf`` bytes when given, set before connecting so the window stays small)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source is not None:
                sock.bind((source, 0))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (host, port))
            await loop.create_connection(lambda: self, sock=sock)
        except BaseException:
            sock.close()
            raise
        return self

    @classmethod
    async def listen(
        cls,
        serve: Serve,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        magic: bytes = REGTEST_MAGIC,
        keep: int = 10_000,
    ) -> asyncio.Server:
        """A listener for connections the node opens: each accepted one is a ``P2PConnection``
        handed to ``serve``, run as a task of its own (when it raises, the connection is closed
        and the loop's exception handler told). ``sockets[0].getsockname()`` has the port;
        ``close()`` the server when done (connections it accepted stay open)."""

        def accepted() -> P2PConnection:
            conn = cls(magic, keep=keep)
            conn._serve = serve
            return conn

        return await asyncio.get_running_loop().create_server(accepted, host, port)

    def _start_serving(self, serve: Serve) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(serve(self))
        _serving.add(task)

        def done(task: asyncio.Task[None]) -> None:
            _serving.discard(task)
            if not task.cancelled() and (exc := task.exception()) is not None:
                self.close()
                loop.call_exception_handler(
                    {"message": f"{self!r}: serve failed", "exception": exc, "protocol": self}
                )

        task.add_done_callback(done)

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    @property
    def is_closing(self) -> bool:
        """Closed, or on its way (the transport is closing: nothing more can be sent)."""
        t = self._transport
        return self.is_closed or t is None or t.is_closing()

    @property
    def lifetime(self) -> float | None:
        """Seconds from the TCP connection to its end (None while it is open)."""
        if self.closed_at is None or self.connected_at is None:
            return None
        return self.closed_at - self.connected_at

    def close(self) -> None:
        """Close our end (idempotent); unsent bytes are dropped."""
        t = self._transport
        if t is not None and not self.is_closed:
            if self.close_how is None:
                self.close_how = "local"
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                t.abort()

    async def __aenter__(self) -> P2PConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.connected_at = time.monotonic()
        name = transport.get_extra_info("sockname")
        if isinstance(name, tuple):
            self.local = (str(name[0]), int(name[1]))
        if self._serve is not None:
            self._start_serving(self._serve)

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if self.framing_error is not None:
            return
        try:
            frames = self.decoder.feed(data)
        except FramingError as e:
            self.framing_error = e
            frames = list(e.frames)
        for f in frames:
            self.counts[f.command.decode("ascii", "replace")] += 1
            self.frames.append(f)
            if len(self.frames) > self.keep:
                self.frames.popleft()
        if frames:
            self._arrived.set()

    def eof_received(self) -> bool | None:
        if self.close_how is None:
            self.close_how = "eof"
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_at = time.monotonic()
        if self.close_how is None:
            self.close_how = "reset" if isinstance(exc, ConnectionResetError) else "eof"
        self.close_error = exc
        self._closed.set()
        self._arrived.set()
        self._can_write.set()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- sending --------------------------------------------------------------------------------

    async def send_raw(self, data: bytes, *, drain: bool = True) -> None:
        """Send bytes as they are; with ``drain`` wait while the kernel will not take more.
        Raises ``ConnectionClosed`` once the connection is gone."""
        t = self._transport
        if t is None or self.is_closed or t.is_closing():
            raise ConnectionClosed(f"{self!r}: cannot send")
        t.write(data)
        self.bytes_sent += len(data)
        if drain:
            await self._can_write.wait()
            if self.is_closed:
                raise ConnectionClosed(f"{self!r}: closed while sending")

    async def send(self, msg: m.Message, *, drain: bool = True) -> None:
        """Send a well-formed message."""
        await self.send_raw(encode_frame(self.magic, msg.command, msg.encode()), drain=drain)

    async def send_frame(
        self,
        command: bytes,
        payload: bytes,
        *,
        magic: bytes | None = None,
        length: int | None = None,
        check: bytes | None = None,
        drain: bool = True,
    ) -> None:
        """Send a frame with the given command and payload, and optionally a wrong magic,
        length field or checksum."""
        data = frame_bytes(magic or self.magic, command, payload, length=length, check=check)
        await self.send_raw(data, drain=drain)

    async def send_slowly(self, data: bytes, interval: float, chunk: int = 1) -> int:
        """Send ``data`` ``chunk`` bytes at a time, ``interval`` seconds apart; stops when the
        connection closes. Returns how many bytes went out."""
        sent = 0
        for i in range(0, len(data), chunk):
            if self.is_closed:
                break
            try:
                await self.send_raw(data[i : i + chunk])
            except ConnectionClosed:
                break
            sent += len(data[i : i + chunk])
            if i + chunk < len(data):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await self._closed.wait()
        return sent

    # -- receiving ------------------------------------------------------------------------------

    def stop_reading(self) -> None:
        """Take no more bytes from the socket: the kernel's buffers fill, then the node's."""
        if self._transport is not None and self._reading and not self.is_closed:
            self._transport.pause_reading()
            self._reading = False

    def resume_reading(self) -> None:
        if self._transport is not None and not self._reading and not self.is_closed:
            self._transport.resume_reading()
            self._reading = True

    async def recv_frame(self, timeout: float = 5.0) -> Frame | None:
        """The next frame, or None when the connection closed with none left; raises
        ``TimeoutError`` when none came in ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not self.frames:
                if self.is_closed:
                    return None
                self._arrived.clear()
                await self._arrived.wait()
        return self.frames.popleft()

    async def recv(self, timeout: float = 5.0) -> m.Message | None:
        """The next message we can decode (unknown commands and bad payloads are skipped), or
        None at the end of the connection."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv_frame(max(deadline - time.monotonic(), 0.001))
            if frame is None:
                return None
            try:
                msg = m.decode_message(frame.command, frame.payload)
            except m.MessageError:
                continue
            if msg is not None:
                self.received.append(msg)
                return msg

    async def wait_for(
        self,
        cls: type[M],
        timeout: float = 5.0,
        where: Callable[[M], bool] = lambda msg: True,
    ) -> M:
        """Read messages until one of type ``cls`` for which ``where`` holds (the others are
        dropped). ``TimeoutError`` after ``timeout`` seconds, ``ConnectionClosed`` if the
        connection ends first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self!r}: no {cls.__name__} within {timeout:g}s")
            msg = await self.recv(left)
            if msg is None:
                raise ConnectionClosed(f"{self!r}: closed while waiting for {cls.__name__}")
            if isinstance(msg, cls) and where(msg):
                return msg

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        """Whether the node closed the connection within ``timeout`` seconds (what it sends
        meanwhile is still framed and kept)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._closed.wait()
        return self.is_closed

    def drain_frames(self) -> list[Frame]:
        """Every frame received and not read yet (they are removed)."""
        out = list(self.frames)
        self.frames.clear()
        return out

    # -- the protocol ---------------------------------------------------------------------------

    async def handshake(
        self,
        version: m.Version | None = None,
        *,
        features: bool = True,
        verack: bool = True,
        timeout: float = 10.0,
    ) -> m.Version:
        """Send ``version`` (``version_message()`` by default) and, with ``features``,
        ``wtxidrelay`` and ``sendaddrv2``; wait for the node's ``version`` and ``verack``; with
        ``verack`` answer it. Returns the node's version."""
        await self.send(version or version_message())
        if features:
            await self.send(m.WtxidRelay())
            await self.send(m.SendAddrV2())
        theirs = await self.wait_for(m.Version, timeout)
        self.their_version = theirs
        await self.wait_for(m.Verack, timeout)
        if verack:
            await self.send(m.Verack())
        return theirs

    async def answer_handshake(
        self, version: m.Version | None = None, *, timeout: float = 10.0
    ) -> m.Version:
        """The answering side, for a connection the node opened (see ``listen``): wait for the
        node's ``version``, answer ``version`` (``version_message()`` by default) and ``verack``,
        then wait for the node's ``verack``. Returns the node's version."""
        theirs = await self.wait_for(m.Version, timeout)
        self.their_version = theirs
        await self.send(version or version_message())
        await self.send(m.Verack())
        await self.wait_for(m.Verack, timeout)
        return theirs

    async def ping(self, timeout: float = 10.0) -> bool:
        """Send a ping and wait for its pong: True when it came, so the node processed all we
        sent before; False on a timeout or when the connection closed."""
        nonce = secrets.randbits(63) + 1
        try:
            await self.send(m.Ping(nonce))
            await self.wait_for(m.Pong, timeout, lambda p: p.nonce == nonce)
        except (TimeoutError, ConnectionClosed):
            return False
        return True
