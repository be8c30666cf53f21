"""The chain lock (Core's ``cs_main``): whoever reads or changes the chain state holds it.

Layer 1. ``ChainState`` itself is not thread-safe; the node creates one ``ChainLock`` and every
thread that touches the chain (RPC workers, the flush timer, shutdown, later block download)
takes it first.

Why not ``threading.RLock``: a thread that releases a plain lock and takes it again at once
(a long ``generatetoaddress`` between two blocks, a batch between two calls) keeps winning it,
because the woken waiter still has to get the GIL before it can grab the lock. This lock hands
itself to the longest waiter on release, so a cheap call waits for at most one step of a long
one. It is re-entrant.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class ChainLock:
    """A re-entrant lock that is granted first come, first served."""

    __slots__ = ("_count", "_mutex", "_owner", "_waiters")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._count = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._count += 1
                return
            if self._owner is None and not self._waiters:
                self._owner = me
                self._count = 1
                return
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append((me, gate))
        gate.acquire()  # released by the thread that hands the lock to us
        # The releaser already made us the owner.

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("ChainLock released by a thread that does not hold it")
            self._count -= 1
            if self._count:
                return
            if self._waiters:
                owner, gate = self._waiters.popleft()
                self._owner = owner
                self._count = 1
                gate.release()
            else:
                self._owner = None

    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock."""
        return len(self._waiters)

    def __enter__(self) -> ChainLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
