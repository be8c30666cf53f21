"""Which peer's next message the event loop handles: the one that has had the least of it.

Layer L2 (p2p); used by :mod:`peercash.p2p.peer` (every peer of one connection manager shares
one scheduler). Core's ``ThreadMessageHandler`` goes round the peers handling one message of each
in turn; that is fair by count, and a peer whose messages are dear (50,000-entry ``inv`` after
50,000-entry ``inv``) still takes nearly all the time while an honest peer's ``getheaders`` waits
a whole round behind them. Here a single task delivers one message at a time, always from the
ready peer that has had the least loop time so far (start-time fair queueing over the seconds
each message took to handle): a peer whose messages are cheap is served as soon as one arrives,
and a flood only takes what is left. A peer that was idle starts level with the others, so idling
earns no credit. Between two messages the task yields, so sockets and timers run.

Concurrency: the event loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["MessageScheduler", "Schedulable"]

log = logging.getLogger(__name__)


class Schedulable(Protocol):
    """What the scheduler needs of a peer."""

    id: int

    def process_one(self) -> bool:
        """Handle the next queued message; True if another can be handled now."""
        ...

    def process_failed(self, error: Exception) -> None:
        """``process_one`` raised: a bug in a handler, which must not stop the others."""
        ...


class MessageScheduler:
    """One task delivering the ready peers' messages, least-served peer first."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._ready: dict[Schedulable, float] = {}  # peer -> its service so far
        self._served: dict[int, float] = {}  # the service of peers not ready now
        self._now = 0.0  # the virtual time: the service of the peer served last
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._current: Schedulable | None = None  # the peer whose message is being handled
        self._current_ready = False
        self._current_gone = False
        self.delivered = 0

    def ready(self, peer: Schedulable) -> None:
        """``peer`` has a message that may be handled now (idempotent). A peer that is held
        need not be taken out: ``process_one`` then handles nothing and returns False."""
        if peer is self._current:
            self._current_ready = True
            return
        if peer in self._ready:
            return
        self._ready[peer] = max(self._served.pop(peer.id, 0.0), self._now)
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="p2p-messages")
        assert self._wake is not None
        self._wake.set()

    def forget(self, peer: Schedulable) -> None:
        """``peer`` is gone: drop it and what is kept of it."""
        self._ready.pop(peer, None)
        self._served.pop(peer.id, None)
        if peer is self._current:
            self._current_gone = True

    async def close(self) -> None:
        """Stop delivering (the connection manager is shutting down)."""
        task, self._task = self._task, None
        self._ready.clear()
        self._served.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        clock = self._clock
        while True:
            ready = self._ready
            if not ready:
                wake.clear()
                await wake.wait()
                continue
            peer = min(ready, key=ready.__getitem__)
            served = ready.pop(peer)
            self._now = served
            self._current, self._current_ready, self._current_gone = peer, False, False
            started = clock()
            try:
                more = peer.process_one()
            except Exception as e:
                more = False
                peer.process_failed(e)
            served += clock() - started
            self._current = None
            self.delivered += 1
            if self._current_gone:
                pass
            elif more or self._current_ready:
                ready[peer] = served
            else:
                self._served[peer.id] = served
            await asyncio.sleep(0)
