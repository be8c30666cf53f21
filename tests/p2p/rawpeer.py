"""A peer that plays the protocol byte by byte, for tests: it can send anything, well-formed or
not, and reads what the node answers with our own codec.

Async (asyncio streams), so it runs beside an in-process ``ConnectionManager`` on the same loop;
tests against real node processes run it under ``asyncio.run``. Load it with ``sys.path`` (pytest
runs with ``--import-mode=importlib``)::

    sys.path.insert(0, str(Path(__file__).parent))
    from rawpeer import RawPeer
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
import time

from peercash.p2p import messages as m
from peercash.p2p.codec import HEADER_SIZE, Frame, FrameDecoder, checksum, encode_frame
from peercash.p2p.netaddress import NetAddress

LOCALHOST = NetAddress.ipv4("127.0.0.1", 0)


def frame_bytes(
    magic: bytes,
    command: bytes,
    payload: bytes,
    *,
    length: int | None = None,
    check: bytes | None = None,
) -> bytes:
    """A v1 frame with optionally wrong ``length`` or checksum ``check``."""
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
    user_agent: str = "/rawpeer:0.1/",
) -> m.Version:
    return m.Version(
        version=version,
        services=services,
        timestamp=int(time.time()),
        addr_recv=m.NULL_VERSION_ADDRESS,
        addr_from=m.NULL_VERSION_ADDRESS,
        nonce=secrets.randbits(64) if nonce is None else nonce,
        user_agent=user_agent,
        start_height=start_height,
        relay=relay,
    )


class RawPeer:
    """One TCP connection to a node, driven by the test."""

    def __init__(self, magic: bytes) -> None:
        self.magic = magic
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._decoder = FrameDecoder(magic)
        self._frames: list[Frame] = []
        self.received: list[m.Message] = []
        self.their_version: m.Version | None = None

    async def connect(self, host: str, port: int, *, rcvbuf: int | None = None) -> RawPeer:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        self.reader, self.writer = await asyncio.open_connection(sock=sock)
        return self

    @classmethod
    def from_streams(
        cls, magic: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> RawPeer:
        peer = cls(magic)
        peer.reader, peer.writer = reader, writer
        return peer

    # -- sending --------------------------------------------------------------------------

    async def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, msg: m.Message) -> None:
        await self.send_raw(encode_frame(self.magic, msg.command, msg.encode()))

    async def send_frame(self, command: bytes, payload: bytes, **kw: object) -> None:
        await self.send_raw(frame_bytes(self.magic, command, payload, **kw))  # type: ignore[arg-type]

    # -- receiving ------------------------------------------------------------------------

    async def recv_frame(self, timeout: float = 5.0) -> Frame | None:
        """The next frame, or None when the node closed the connection."""
        assert self.reader is not None
        async with asyncio.timeout(timeout):
            while not self._frames:
                data = await self.reader.read(65536)
                if not data:
                    return None
                self._frames.extend(self._decoder.feed(data))
        return self._frames.pop(0)

    async def recv(self, timeout: float = 5.0) -> m.Message | None:
        """The next message we know (unknown ones are skipped), or None at EOF."""
        while True:
            frame = await self.recv_frame(timeout)
            if frame is None:
                return None
            msg = m.decode_message(frame.command, frame.payload)
            if msg is not None:
                self.received.append(msg)
                return msg

    async def wait_for(self, cls: type[m.Message], timeout: float = 5.0) -> m.Message:
        """Skip messages until one of ``cls`` (``AssertionError`` at EOF)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.recv(max(deadline - time.monotonic(), 0.01))
            if msg is None:
                raise AssertionError(f"connection closed while waiting for {cls.__name__}")
            if isinstance(msg, cls):
                return msg

    async def closed(self, timeout: float = 5.0) -> bool:
        """Read and discard until the node closes the connection; False if it did not within
        ``timeout`` seconds."""
        assert self.reader is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        data = await self.reader.read(65536)
                    except ConnectionError:
                        return True
                    if not data:
                        return True
        except TimeoutError:
            return False

    # -- protocol -------------------------------------------------------------------------

    async def handshake(
        self, version: m.Version | None = None, timeout: float = 5.0, *, features: bool = True
    ) -> m.Version:
        """Send ``version`` (ours by default) and, with ``features``, ``wtxidrelay`` and
        ``sendaddrv2``; wait for the node's version and verack and answer with verack. Returns
        the node's version."""
        v = version or version_message()
        await self.send(v)
        if features:
            await self.send(m.WtxidRelay())
            await self.send(m.SendAddrV2())
        theirs = await self.wait_for(m.Version, timeout)
        assert isinstance(theirs, m.Version)
        self.their_version = theirs
        await self.wait_for(m.Verack, timeout)
        await self.send(m.Verack())
        return theirs

    async def answer_handshake(self, version: m.Version | None = None) -> m.Version:
        """For a connection the node opened: wait for its version, answer version + verack,
        then wait for its verack."""
        theirs = await self.wait_for(m.Version)
        assert isinstance(theirs, m.Version)
        self.their_version = theirs
        await self.send(version or version_message())
        await self.send(m.Verack())
        await self.wait_for(m.Verack)
        return theirs

    async def ping(self, timeout: float = 5.0) -> bool:
        """Send a ping and wait for its pong: True when it came (the connection works and
        everything sent before was processed)."""
        nonce = secrets.randbits(63) + 1
        await self.send(m.Ping(nonce))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                msg = await self.recv(left)
            except TimeoutError:
                return False
            if msg is None:
                return False
            if isinstance(msg, m.Pong) and msg.nonce == nonce:
                return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


HEADER = HEADER_SIZE
