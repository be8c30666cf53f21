"""SOCKS5: typed errors against a scripted proxy, and real connections to a peercash listener
through Debian's ``microsocks`` on loopback (by IP and by the name ``localhost``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conntools import Recorder, manager, run, until

from peercash.p2p.peer import ConnType
from peercash.p2p.socks5 import (
    Socks5AuthError,
    Socks5ProtocolError,
    Socks5ProxyUnreachable,
    Socks5ReplyError,
    socks5_connect,
)

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def scripted_proxy(script: Script) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_typed_errors_from_a_scripted_proxy() -> None:
    async def refuse(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readexactly(3)  # 05 01 00
        w.write(b"\x05\x00")
        head = await r.readexactly(5)
        await r.readexactly(head[4] + 2)
        w.write(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
        await w.drain()
        w.close()

    async def not_socks(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read(10)
        w.write(b"HTTP/1.1 400 Bad Request\r\n")
        await w.drain()
        w.close()

    async def wants_password(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        n = (await r.readexactly(2))[1]
        methods = await r.readexactly(n)
        if 2 not in methods:
            w.write(b"\x05\xff")
        else:
            w.write(b"\x05\x02")
            await w.drain()
            ulen = (await r.readexactly(2))[1]
            user = await r.readexactly(ulen)
            plen = (await r.readexactly(1))[0]
            password = await r.readexactly(plen)
            w.write(b"\x01\x00" if (user, password) == (b"u", b"p") else b"\x01\x01")
            await w.drain()
            if (user, password) == (b"u", b"p"):
                head = await r.readexactly(5)
                await r.readexactly(head[4] + 2)
                w.write(b"\x05\x00\x00\x03\x04abcd\x00\x50")  # a domain-name bound address
        await w.drain()
        w.close()

    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        w.close()

    async def body() -> None:
        server, port = await scripted_proxy(refuse)
        with pytest.raises(Socks5ReplyError) as e:
            await socks5_connect("127.0.0.1", port, "127.0.0.1", 1)
        assert e.value.code == 5 and e.value.reason == "connection refused"
        assert str(e.value) == "proxy could not connect to 127.0.0.1:1: connection refused"
        server.close()

        server, port = await scripted_proxy(not_socks)
        with pytest.raises(Socks5ProtocolError, match="SOCKS version 72"):
            await socks5_connect("127.0.0.1", port, "example.onion", 8333)
        server.close()

        server, port = await scripted_proxy(wants_password)
        with pytest.raises(Socks5AuthError, match="none of our authentication methods"):
            await socks5_connect("127.0.0.1", port, "peer", 8333)
        with pytest.raises(Socks5AuthError, match="refused the username and password"):
            await socks5_connect("127.0.0.1", port, "peer", 8333, username="u", password="x")
        sock = await socks5_connect("127.0.0.1", port, "peer", 8333, username="u", password="p")
        sock.close()
        server.close()

        server, port = await scripted_proxy(silent)
        with pytest.raises(TimeoutError):
            await socks5_connect("127.0.0.1", port, "peer", 8333, timeout=0.2)
        server.close()

        with pytest.raises(Socks5ProxyUnreachable):
            await socks5_connect("127.0.0.1", free_port(), "peer", 8333)

    run(body())


@pytest.fixture
def microsocks() -> Iterator[int]:
    exe = shutil.which("microsocks")
    if exe is None:
        pytest.skip("microsocks is not installed (Debian package microsocks; .ci/run installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-i", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("microsocks did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def test_connect_through_microsocks(microsocks: int) -> None:
    async def body() -> None:
        target = Recorder()
        async with manager(target) as listener:
            port = listener.listen_port
            async with manager(proxy=f"127.0.0.1:{microsocks}") as client:
                by_ip = await client.connect_to(f"127.0.0.1:{port}", ConnType.MANUAL)
                by_name = await client.connect_to(f"localhost:{port}", ConnType.MANUAL)
                await until(lambda: by_ip.handshake_done and by_name.handshake_done)
                assert by_name.addr_name == f"localhost:{port}"
                await until(lambda: len(target.connected) == 2)
                # The listener sees both connections coming from the proxy.
                assert {p.address.host for p in target.connected} == {"127.0.0.1"}
                assert client.reachable(client.peers()[0].address.network)
                # Nothing listens there: the proxy says so, as a typed error.
                dead = free_port()
                with pytest.raises(Socks5ReplyError) as e:
                    await client.connect_to(f"127.0.0.1:{dead}", ConnType.MANUAL)
                assert e.value.code == 5
                assert (
                    str(e.value)
                    == f"proxy could not connect to 127.0.0.1:{dead}: connection refused"
                )

    run(body())
