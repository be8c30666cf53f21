"""One worker thread that shares itself fairly between peers.

Layer L2 (p2p); used by :mod:`peercash.p2p.sync` for the chain work its peers cause (headers,
blocks, ``getdata``, ``inv`` look-ups). A first-in-first-out queue lets a peer that sends a flood
of expensive requests delay everyone else's: an honest peer's ``getheaders`` waits behind every
50,000-entry ``inv`` before it. Here each peer (any hashable key) has its own queue, and the
worker always takes the next job of the peer that has had the least service so far, measured in
CPU seconds of this thread (start-time fair queueing, the idea behind Core's round-robin
``ProcessMessages`` with a cost instead of a count). A peer's own jobs keep their order; a peer
that was idle starts level with the busiest ones, so idling earns no credit.

Concurrency: :meth:`submit` and :meth:`shutdown` may be called from any thread; jobs run one at a
time on the worker thread; an exception a job raises is the job's own business (it is logged
and the worker goes on).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["FairWorker"]

log = logging.getLogger(__name__)


class _Flow:
    __slots__ = ("jobs", "served")

    def __init__(self, served: float) -> None:
        self.jobs: deque[Callable[[], None]] = deque()
        self.served = served
        """CPU seconds of service, counted from a common start (the virtual time)."""


class FairWorker:
    """A single worker thread serving per-key queues by least service first."""

    def __init__(self, name: str = "fair-worker", clock: Callable[[], float] = time.thread_time):
        self._clock = clock
        self._cond = threading.Condition()
        self._flows: dict[Hashable, _Flow] = {}
        self._active: dict[Hashable, _Flow] = {}
        self._now = 0.0  # the virtual time: the service of the flow served last
        self._closed = False
        self._name = name
        self._thread: threading.Thread | None = None  # started by the first job

    def submit(self, key: Hashable, job: Callable[[], None]) -> None:
        """Queue ``job`` behind ``key``'s earlier ones. Raises RuntimeError once shut down."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker is shut down")
            flow = self._flows.get(key)
            if flow is None:
                flow = self._flows[key] = _Flow(self._now)
            if not flow.jobs:
                flow.served = max(flow.served, self._now)
                self._active[key] = flow
            flow.jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def forget(self, key: Hashable) -> None:
        """Drop what is kept of an idle key (a disconnected peer); queued jobs still run."""
        with self._cond:
            flow = self._flows.get(key)
            if flow is not None and not flow.jobs:
                del self._flows[key]

    def pending(self) -> int:
        """Jobs queued and not yet started."""
        with self._cond:
            return sum(len(f.jobs) for f in self._active.values())

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """No more jobs; with ``cancel_futures`` the queued ones are dropped, otherwise they
        run; with ``wait``, return when the worker has finished."""
        with self._cond:
            self._closed = True
            if cancel_futures:
                for flow in self._active.values():
                    flow.jobs.clear()
                self._active.clear()
            self._cond.notify_all()
        t = self._thread
        if wait and t is not None and threading.current_thread() is not t:
            t.join()

    def _next(self) -> tuple[_Flow, Callable[[], None]] | None:
        with self._cond:
            while not self._active:
                if self._closed:
                    return None
                self._cond.wait()
            key = min(self._active, key=lambda k: self._active[k].served)
            flow = self._active[key]
            job = flow.jobs.popleft()
            if not flow.jobs:
                del self._active[key]
            self._now = flow.served
            return flow, job

    def _run(self) -> None:
        while (nxt := self._next()) is not None:
            flow, job = nxt
            started = self._clock()
            try:
                job()
            except Exception:  # the job's own error: it should have handled it
                log.exception("a queued job failed")
            cost = self._clock() - started
            with self._cond:
                flow.served += cost
