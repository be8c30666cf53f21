"""The loop's message scheduler: the ready peer with the least service goes first."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from peercash.p2p.scheduler import MessageScheduler

STEP = 2**-7
"""A cost that sums exactly in binary floating point, so ties are ties."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakePeer:
    """Queued messages are costs (seconds of the fake clock); handling one records it."""

    def __init__(self, peer_id: int, clock: Clock, log: list[str], name: str) -> None:
        self.id = peer_id
        self.clock = clock
        self.log = log
        self.name = name
        self.queue: deque[float] = deque()
        self.held = False
        self.failures: list[Exception] = []
        self.on_process: object = None

    def process_one(self) -> bool:
        if self.held or not self.queue:
            return False
        cost = self.queue.popleft()
        if cost < 0:
            raise RuntimeError("handler bug")
        self.clock.now += cost
        self.log.append(self.name)
        if callable(self.on_process):
            self.on_process()
        return bool(self.queue) and not self.held

    def process_failed(self, error: Exception) -> None:
        self.failures.append(error)


async def drain(s: MessageScheduler, peers: list[FakePeer]) -> None:
    for _ in range(10_000):
        await asyncio.sleep(0)
        if all(not p.queue or p.held for p in peers):
            return
    raise AssertionError("the scheduler did not drain the queues")


def test_a_cheap_peer_is_served_between_a_flooders_messages() -> None:
    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        flood = [FakePeer(i, clock, log, f"flood{i}") for i in range(3)]
        honest = FakePeer(9, clock, log, "honest")
        for p in flood:
            p.queue.extend([0.03] * 20)
            s.ready(p)
        await asyncio.sleep(0)  # the first flood message is handled
        await asyncio.sleep(0)
        honest.queue.extend([0.0001] * 5)
        s.ready(honest)
        await drain(s, [*flood, honest])
        assert len(log) == 65 and s.delivered == 65
        first = log.index("honest")
        # It waits for at most the message under way and the flooders' first turns (they are
        # level with it when it arrives); then its five go one after another.
        assert first <= 3, log[:10]
        assert log[first : first + 5] == ["honest"] * 5
        # The flooders share the rest by turns.
        rest = [x for x in log if x != "honest"]
        assert rest[:6] == ["flood0", "flood1", "flood2"] * 2

    asyncio.run(main())


def test_service_is_shared_by_time_not_by_message_count() -> None:
    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        dear = FakePeer(1, clock, log, "dear")
        cheap = FakePeer(2, clock, log, "cheap")
        dear.queue.extend([0.010] * 50)
        cheap.queue.extend([0.001] * 500)
        s.ready(dear)
        s.ready(cheap)
        for _ in range(110):
            await asyncio.sleep(0)
        window = log[:110]
        spent_dear = window.count("dear") * 0.010
        spent_cheap = window.count("cheap") * 0.001
        assert abs(spent_dear - spent_cheap) <= 0.010 + 1e-9, (spent_dear, spent_cheap)
        await drain(s, [dear, cheap])
        assert len(log) == 550
        await s.close()

    asyncio.run(main())


def test_an_idle_peer_earns_no_credit() -> None:
    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        busy = FakePeer(1, clock, log, "busy")
        late = FakePeer(2, clock, log, "late")
        busy.queue.extend([STEP] * 30)
        s.ready(busy)
        for _ in range(20):
            await asyncio.sleep(0)
        assert log == ["busy"] * 20
        late.queue.extend([STEP] * 10)
        s.ready(late)
        await drain(s, [busy, late])
        tail = log[20:]
        # Alternating from here (it starts level with "busy", not 20 steps ahead of it).
        assert tail[:20].count("late") == 10 and tail[:20].count("busy") == 10
        assert all(tail[i] != tail[i + 1] for i in range(1, 18)), tail

    asyncio.run(main())


def test_a_held_peer_is_skipped_until_it_is_ready_again() -> None:
    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        a = FakePeer(1, clock, log, "a")
        b = FakePeer(2, clock, log, "b")
        a.queue.extend([0.01] * 3)
        b.queue.extend([0.01] * 3)

        def hold_a() -> None:
            a.held = True

        a.on_process = hold_a
        s.ready(a)
        s.ready(b)
        await drain(s, [a, b])
        assert log.count("a") == 1 and log.count("b") == 3
        a.held = False
        a.on_process = None
        s.ready(a)
        await drain(s, [a, b])
        assert log.count("a") == 3

    asyncio.run(main())


def test_ready_while_its_message_is_handled_keeps_the_peer_scheduled() -> None:
    """A handler that releases its own peer (resume_processing inside process_one) must not
    lose the peer's turn nor its accounting."""

    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        a = FakePeer(1, clock, log, "a")
        a.queue.extend([0.01, 0.01])

        def release() -> None:
            a.held = False
            s.ready(a)  # as Peer.resume_processing does

        a.on_process = release
        a.process_one_orig = a.process_one  # type: ignore[attr-defined]

        def once_then_hold() -> bool:
            more = a.process_one_orig()  # type: ignore[attr-defined]
            return False if a.queue else more  # claims nothing more, but said ready()

        a.process_one = once_then_hold  # type: ignore[method-assign]
        s.ready(a)
        await drain(s, [a])
        assert log == ["a", "a"]

    asyncio.run(main())


def test_a_failing_handler_is_reported_and_the_others_go_on() -> None:
    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        bad = FakePeer(1, clock, log, "bad")
        good = FakePeer(2, clock, log, "good")
        bad.queue.extend([-1.0, 0.01])
        good.queue.extend([0.01] * 3)
        s.ready(bad)
        s.ready(good)
        await drain(s, [good])
        assert len(bad.failures) == 1 and isinstance(bad.failures[0], RuntimeError)
        assert log.count("good") == 3

    asyncio.run(main())


def test_forget_drops_a_peer_and_close_stops_the_task() -> None:
    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        a = FakePeer(1, clock, log, "a")
        b = FakePeer(2, clock, log, "b")
        a.queue.extend([0.01] * 5)
        b.queue.extend([0.01] * 5)
        s.ready(a)
        s.ready(b)
        s.forget(a)
        await drain(s, [b])
        assert "a" not in log and log == ["b"] * 5
        await s.close()
        b.queue.append(0.01)
        await asyncio.sleep(0)
        assert log == ["b"] * 5

    asyncio.run(main())


@pytest.mark.parametrize("n", [1, 2, 50])
def test_every_message_is_delivered_once_in_each_peers_order(n: int) -> None:
    async def main() -> None:
        clock, log = Clock(), []
        s = MessageScheduler(clock)
        peers = [FakePeer(i, clock, log, f"p{i}") for i in range(n)]
        for i, p in enumerate(peers):
            p.queue.extend([0.001 * (1 + i % 5)] * 7)
            s.ready(p)
        await drain(s, peers)
        assert sorted(log) == sorted(f"p{i}" for i in range(n) for _ in range(7))
        assert s.delivered == 7 * n

    asyncio.run(main())
