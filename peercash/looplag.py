"""How late the node's event loop wakes: a small monitor behind the hidden ``getlooplag`` RPC.

Every socket of the node is served by one asyncio loop (``node.py``), so anything that holds it
— a handler doing chain work on the loop, a flood of messages processed without yielding —
delays every peer and every timer at once. :class:`LoopLagMonitor` measures that directly: a
task sleeps ``interval`` seconds (50 ms) again and again and records how much later than asked
it woke. The samples of the last ``window`` seconds are kept (a bounded deque); ``snapshot``
summarises them (max, median, 90th percentile).

Used only by ``node.py`` (which starts and stops it and hands it to the RPC layer as
``services.loop_lag``) and by ``rpc.control`` (``getlooplag``). It sees nothing else of the node.

Concurrency: the task runs on the loop thread; :meth:`LoopLagMonitor.snapshot` may be called
from any thread (RPC workers): the samples are guarded by a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_WINDOW", "LoopLagMonitor"]

DEFAULT_INTERVAL = 0.05
"""Seconds the monitor sleeps between two measurements."""
DEFAULT_WINDOW = 300.0
"""Seconds of samples kept."""


class LoopLagMonitor:
    """Measures the event loop's wake-up lag (see the module docstring)."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        window: float = DEFAULT_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0 or window <= 0:
            raise ValueError("interval and window must be positive")
        self.interval = interval
        self.window = window
        self._clock = clock
        # (when it woke, lag in seconds); at most one sample per interval is taken.
        self._samples: deque[tuple[float, float]] = deque(maxlen=int(window / interval) + 1)
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start measuring on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def record(self, woke: float, lag: float) -> None:
        """Add one sample (the task does this; tests may too)."""
        with self._lock:
            self._samples.append((woke, max(lag, 0.0)))

    async def _run(self) -> None:
        clock = self._clock
        while True:
            before = clock()
            await asyncio.sleep(self.interval)
            woke = clock()
            self.record(woke, woke - before - self.interval)

    def snapshot(self, seconds: float | None = None) -> dict[str, Any]:
        """The lag over the last ``seconds`` (the whole window by default), in milliseconds:
        ``max_ms``, ``median_ms``, ``p90_ms``, and the number of ``samples`` it is made of
        (zeros when there are none)."""
        span = self.window if seconds is None else min(max(seconds, 0.0), self.window)
        since = self._clock() - span
        with self._lock:
            lags = [lag for woke, lag in self._samples if woke >= since]
        if not lags:
            return {"max_ms": 0.0, "median_ms": 0.0, "p90_ms": 0.0, "samples": 0,
                    "interval_ms": self.interval * 1000}  # fmt: skip
        lags.sort()
        return {
            "max_ms": round(lags[-1] * 1000, 3),
            "median_ms": round(statistics.median(lags) * 1000, 3),
            "p90_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.9))] * 1000, 3),
            "samples": len(lags),
            "interval_ms": self.interval * 1000,
        }
