"""Helpers for the in-process connection tests: a manager on loopback, a recording handler, and
waiting for a condition with a deadline. Every manager started here is stopped by the context
manager, also when the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from peercash.consensus.params import get_params
from peercash.p2p.addrman import AddrMan
from peercash.p2p.banman import BanMan
from peercash.p2p.connman import ConnectionManager, ConnOptions
from peercash.p2p.messages import Message
from peercash.p2p.peer import Peer, PeerTimeouts

REGTEST = get_params("regtest")
MAGIC = REGTEST.magic
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def until(pred: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


class Recorder:
    """A ``MessageHandler`` that remembers what it was told."""

    def __init__(self) -> None:
        self.connected: list[Peer] = []
        self.messages: list[tuple[Peer, Message]] = []
        self.disconnected: list[Peer] = []

    def on_peer_connected(self, peer: Peer) -> None:
        self.connected.append(peer)

    def on_message(self, peer: Peer, msg: Message) -> None:
        self.messages.append((peer, msg))

    def on_peer_disconnected(self, peer: Peer) -> None:
        self.disconnected.append(peer)


def options(**kw: Any) -> ConnOptions:
    base: dict[str, Any] = {
        "port": 0,
        "connect": ("0",),  # no automatic outbound connections: only loopback in tests
        "binds": ("127.0.0.1",),
        "dnsseed": False,
        "fixedseeds": False,
        "tick_interval": 0.05,
        "open_interval": 0.05,
        "addnode_interval": 0.2,
        "discourage_local": True,
        "stop_timeout": 2.0,
    }
    base.update(kw)
    return ConnOptions(**base)


@contextlib.asynccontextmanager
async def manager(
    handler: Recorder | None = None,
    banman: BanMan | None = None,
    addrman: AddrMan | None = None,
    **kw: Any,
) -> AsyncIterator[ConnectionManager]:
    cm = ConnectionManager(
        REGTEST,
        options(**kw),
        addrman if addrman is not None else AddrMan(),
        banman if banman is not None else BanMan(),
        handler if handler is not None else Recorder(),
    )
    await cm.start()
    try:
        yield cm
    finally:
        await cm.stop()


def short_timeouts(**kw: float) -> PeerTimeouts:
    return PeerTimeouts(**kw)
