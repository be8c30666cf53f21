"""A SOCKS5 client (RFC 1928, with RFC 1929 username/password): how a node reaches peers through
a proxy — Tor's SOCKS port for ``.onion`` peers, as Core's ``-proxy``.

Layer L2 (``peercash.p2p``); asyncio sockets only. The connection manager calls
:func:`socks5_connect` and hands the returned socket to the event loop as a peer connection.

The destination always travels as a domain name (address type 3), even when it is an IP address
in text, as Core does: the proxy resolves it, so a ``.onion`` name works and no DNS lookup
leaks from us. With ``randomize_credentials`` (Core's ``-proxyrandomize``, on by default) we offer
username/password authentication with fresh random credentials on every connection, which makes
Tor put each connection on its own circuit; a proxy that wants no authentication may choose that
instead.

Every read is bounded (we read exactly what the protocol says, at most 255 + 6 bytes at a time)
and the whole exchange has one deadline. Errors are typed: :class:`Socks5ProxyUnreachable` (the
proxy itself), :class:`Socks5ProtocolError` (it does not speak SOCKS5 properly),
:class:`Socks5AuthError` (it refused our method or credentials), :class:`Socks5ReplyError` (it
reached no destination; ``code`` holds the reply code, e.g. 5 "connection refused"), all
subclasses of :class:`Socks5Error` (an ``OSError``), and ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct

__all__ = [
    "REPLY_MESSAGES",
    "Socks5AuthError",
    "Socks5Error",
    "Socks5ProtocolError",
    "Socks5ProxyUnreachable",
    "Socks5ReplyError",
    "socks5_connect",
]

SOCKS_VERSION = 0x05
METHOD_NO_AUTH = 0x00
METHOD_USER_PASS = 0x02
METHOD_NONE_ACCEPTABLE = 0xFF
AUTH_VERSION = 0x01
CMD_CONNECT = 0x01
ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04

REPLY_MESSAGES: dict[int, str] = {
    0x01: "general failure",
    0x02: "connection not allowed",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
    # Tor's extended errors (proposal 304), for onion services.
    0xF0: "onion service descriptor can not be found",
    0xF1: "onion service descriptor is invalid",
    0xF2: "onion service introduction failed",
    0xF3: "onion service rendezvous failed",
    0xF4: "onion service missing client authorization",
    0xF5: "onion service wrong client authorization",
    0xF6: "onion service invalid address",
    0xF7: "onion service introduction timed out",
}


class Socks5Error(OSError):
    """Any failure to reach a destination through the proxy."""


class Socks5ProxyUnreachable(Socks5Error):
    """The proxy itself could not be reached."""


class Socks5ProtocolError(Socks5Error):
    """The proxy answered something that is not SOCKS5 (or closed the connection early)."""


class Socks5AuthError(Socks5Error):
    """The proxy accepted none of our methods, or refused our credentials."""


class Socks5ReplyError(Socks5Error):
    """The proxy could not connect to the destination; ``code`` is its reply code."""

    def __init__(self, code: int, destination: str) -> None:
        self.code = code
        self.reason = REPLY_MESSAGES.get(code, f"unknown error 0x{code:02x}")
        super().__init__(f"proxy could not connect to {destination}: {self.reason}")


async def _read_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await loop.sock_recv(sock, n - len(buf))
        if not chunk:
            raise Socks5ProtocolError("proxy closed the connection during the SOCKS5 handshake")
        buf += chunk
    return bytes(buf)


def _random_credentials() -> tuple[str, str]:
    return secrets.token_hex(8), secrets.token_hex(8)


async def socks5_connect(
    proxy_host: str,
    proxy_port: int,
    dest_host: str,
    dest_port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    randomize_credentials: bool = False,
    timeout: float = 5.0,
) -> socket.socket:
    """A non-blocking socket connected through the proxy to ``dest_host:dest_port`` (the proxy
    resolves the name). ``username``/``password`` are sent if the proxy asks for them; with
    ``randomize_credentials`` and no username, random ones are offered. Raises the errors in the
    module docstring; the socket is closed on any failure."""
    if not 0 < dest_port <= 0xFFFF:
        raise ValueError(f"bad destination port {dest_port}")
    name = dest_host.encode("idna") if not dest_host.isascii() else dest_host.encode()
    if not 0 < len(name) <= 255:
        raise ValueError(f"destination name of {len(name)} bytes (1..255)")
    if username is None and randomize_credentials:
        username, password = _random_credentials()
    if username is not None:
        user_b, pass_b = username.encode(), (password or "").encode()
        if not 0 < len(user_b) <= 255 or len(pass_b) > 255:
            raise ValueError("SOCKS5 credentials are 1..255 and 0..255 bytes")
    loop = asyncio.get_running_loop()
    destination = f"{dest_host}:{dest_port}"
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                infos = await loop.getaddrinfo(
                    proxy_host, proxy_port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except OSError as e:
                raise Socks5ProxyUnreachable(f"cannot resolve proxy {proxy_host}: {e}") from e
            last: OSError | None = None
            for family, type_, proto, _, sockaddr in infos:
                candidate = socket.socket(family, type_, proto)
                candidate.setblocking(False)
                try:
                    await loop.sock_connect(candidate, sockaddr)
                except OSError as e:
                    candidate.close()
                    last = e
                    continue
                sock = candidate
                break
            if sock is None:
                raise Socks5ProxyUnreachable(
                    f"cannot connect to proxy {proxy_host}:{proxy_port}: {last}"
                )
            methods = [METHOD_NO_AUTH] if username is None else [METHOD_NO_AUTH, METHOD_USER_PASS]
            await loop.sock_sendall(sock, bytes([SOCKS_VERSION, len(methods), *methods]))
            version, method = await _read_exact(loop, sock, 2)
            if version != SOCKS_VERSION:
                raise Socks5ProtocolError(f"proxy speaks SOCKS version {version}, not 5")
            if method == METHOD_USER_PASS and username is not None:
                await loop.sock_sendall(
                    sock,
                    bytes([AUTH_VERSION, len(user_b)]) + user_b + bytes([len(pass_b)]) + pass_b,
                )
                auth_version, status = await _read_exact(loop, sock, 2)
                if auth_version != AUTH_VERSION:
                    raise Socks5ProtocolError(f"bad authentication reply version {auth_version}")
                if status != 0:
                    raise Socks5AuthError("proxy refused the username and password")
            elif method == METHOD_NONE_ACCEPTABLE:
                raise Socks5AuthError("proxy accepts none of our authentication methods")
            elif method != METHOD_NO_AUTH:
                raise Socks5ProtocolError(f"proxy chose a method we did not offer: {method}")
            request = bytes([SOCKS_VERSION, CMD_CONNECT, 0x00, ATYP_DOMAIN, len(name)]) + name
            await loop.sock_sendall(sock, request + struct.pack(">H", dest_port))
            version, reply, reserved, atyp = await _read_exact(loop, sock, 4)
            if version != SOCKS_VERSION:
                raise Socks5ProtocolError(f"proxy replied with version {version}, not 5")
            if reply != 0:
                raise Socks5ReplyError(reply, destination)
            if reserved != 0:
                raise Socks5ProtocolError("malformed proxy reply (reserved byte not 0)")
            if atyp == ATYP_IPV4:
                await _read_exact(loop, sock, 4 + 2)
            elif atyp == ATYP_IPV6:
                await _read_exact(loop, sock, 16 + 2)
            elif atyp == ATYP_DOMAIN:
                (length,) = await _read_exact(loop, sock, 1)
                await _read_exact(loop, sock, length + 2)
            else:
                raise Socks5ProtocolError(f"malformed proxy reply (address type {atyp})")
            return sock
    except BaseException:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        raise
