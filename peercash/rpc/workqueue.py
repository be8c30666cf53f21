"""The RPC work queue: HTTP requests are served by a fixed set of worker threads, not on the
event loop (Core's ``-rpcthreads`` and ``-rpcworkqueue``).

The event loop only reads requests and writes replies, so a long or CPU-heavy call never keeps
other clients (or, later, peers) waiting for the loop. At most ``threads`` requests run at once;
at most ``depth`` more wait for a thread; a request beyond that is refused at once and the
server answers HTTP 503 "Work queue depth exceeded", as Core does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_RPC_THREADS = 16  # Core's DEFAULT_HTTP_THREADS (v29)
DEFAULT_RPC_WORKQUEUE = 64  # Core's DEFAULT_HTTP_WORKQUEUE (v29)


class WorkQueueFull(Exception):
    """The queue already holds ``depth`` requests waiting for a thread."""


class WorkQueue:
    """Bounded admission in front of a thread pool."""

    def __init__(
        self, threads: int = DEFAULT_RPC_THREADS, depth: int = DEFAULT_RPC_WORKQUEUE
    ) -> None:
        if threads < 1 or depth < 1:
            raise ValueError("threads and depth must be at least 1")
        self.threads = threads
        self.depth = depth
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="rpc-worker")
        self._mutex = threading.Lock()
        self._waiting = 0  # admitted, not yet picked up by a thread
        self._running = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on a worker thread; raises ``WorkQueueFull`` when the queue is
        full (nothing is run then)."""
        with self._mutex:
            # Requests that will find a free thread at once never count against the depth.
            if self._waiting + self._running >= self.threads + self.depth:
                self.refused += 1
                raise WorkQueueFull()
            self._waiting += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, func, args)

    def _call(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._mutex:
            self._waiting -= 1
            self._running += 1
        try:
            return func(*args)
        finally:
            with self._mutex:
                self._running -= 1

    def close(self, wait: bool = True) -> None:
        """Stop taking work; with ``wait``, return once running requests have finished."""
        self._executor.shutdown(wait=wait, cancel_futures=True)
