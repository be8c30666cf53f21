"""The validation thread's fair queue: a flood from one key does not delay another's jobs."""

from __future__ import annotations

import threading

import pytest

from peercash.p2p.fairqueue import FairWorker


class FakeClock:
    """Service is what the jobs say they cost, not real CPU time: the order is then exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_all(worker: FairWorker, gate: threading.Event) -> None:
    gate.set()
    worker.shutdown(wait=True)


def test_one_key_keeps_its_order() -> None:
    worker = FairWorker(clock=FakeClock())
    order: list[int] = []
    for i in range(100):
        worker.submit("a", lambda i=i: order.append(i))
    worker.shutdown(wait=True)
    assert order == list(range(100))


def test_a_cheap_key_is_served_before_a_flooders_backlog() -> None:
    clock = FakeClock()
    worker = FairWorker(clock=clock)
    gate = threading.Event()
    order: list[str] = []

    def job(name: str, cost: float) -> None:
        gate.wait()
        clock.now += cost
        order.append(name)

    # The flooder queues 50 expensive jobs first; the honest key then queues 5 cheap ones.
    for i in range(50):
        worker.submit("flood", lambda i=i: job(f"flood{i}", 0.02))
    for i in range(5):
        worker.submit("honest", lambda i=i: job(f"honest{i}", 0.0001))
    run_all(worker, gate)
    assert len(order) == 55
    # The first flood job was already running; after it, every honest job comes before the
    # next flood job (the honest key has had less service), in its own order.
    assert order[:7] == ["flood0", "honest0", "honest1", "honest2", "honest3", "honest4", "flood1"]
    assert order[7:] == [f"flood{i}" for i in range(2, 50)]


def test_service_is_shared_by_cost_not_by_count() -> None:
    """Two busy keys, one with jobs ten times dearer: each gets about half the time."""
    clock = FakeClock()
    worker = FairWorker(clock=clock)
    gate = threading.Event()
    spent = {"dear": 0.0, "cheap": 0.0}
    timeline: list[str] = []

    def job(name: str, cost: float) -> None:
        gate.wait()
        clock.now += cost
        spent[name] += cost
        timeline.append(name)

    for _ in range(100):
        worker.submit("dear", lambda: job("dear", 0.01))
    for _ in range(1000):
        worker.submit("cheap", lambda: job("cheap", 0.001))
    run_all(worker, gate)
    # In the first 110 jobs (about 0.55 s of work while both keys are busy) the two keys'
    # service differs by at most one dear job.
    first = timeline[:110]
    dear, cheap = first.count("dear") * 0.01, first.count("cheap") * 0.001
    assert abs(dear - cheap) <= 0.01 + 1e-9, (dear, cheap)
    assert len(timeline) == 1100


def test_an_idle_key_earns_no_credit() -> None:
    """A key that was idle while another was served starts level with it, not ahead by all
    the time it was idle."""
    clock = FakeClock()
    worker = FairWorker(clock=clock)
    gate = threading.Event()
    order: list[str] = []

    def job(name: str, cost: float) -> None:
        gate.wait()
        clock.now += cost
        order.append(name)

    gate.set()
    done = threading.Event()
    for _ in range(20):
        worker.submit("busy", lambda: job("busy", 0.01))
    worker.submit("busy", done.set)
    assert done.wait(5)
    # "busy" has 0.2 s of service; "late" arrives now. Both queue 4 jobs of equal cost, but
    # gated so they are all queued before any runs.
    gate.clear()
    for _ in range(4):
        worker.submit("busy", lambda: job("busy", 0.01))
    for _ in range(4):
        worker.submit("late", lambda: job("late", 0.01))
    run_all(worker, gate)
    tail = order[20:]
    assert sorted(tail) == ["busy"] * 4 + ["late"] * 4
    # Alternating (give or take the first), not all four "late" jobs first.
    assert tail[:4].count("late") <= 3 and tail[:4].count("busy") >= 1


def test_a_failing_job_does_not_stop_the_worker() -> None:
    worker = FairWorker(clock=FakeClock())
    ran: list[int] = []

    def bad() -> None:
        raise ValueError("boom")

    worker.submit(1, bad)
    worker.submit(1, lambda: ran.append(1))
    worker.shutdown(wait=True)
    assert ran == [1]


def test_shutdown_refuses_new_jobs_and_can_drop_queued_ones() -> None:
    worker = FairWorker(clock=FakeClock())
    gate = threading.Event()
    ran: list[int] = []
    worker.submit("a", gate.wait)
    for i in range(10):
        worker.submit("a", lambda i=i: ran.append(i))
    assert worker.pending() >= 10
    threading.Timer(0.05, gate.set).start()
    worker.shutdown(wait=True, cancel_futures=True)
    assert ran == []
    with pytest.raises(RuntimeError):
        worker.submit("a", lambda: None)


def test_forget_drops_only_idle_keys() -> None:
    worker = FairWorker(clock=FakeClock())
    gate = threading.Event()
    ran: list[str] = []
    worker.submit("x", gate.wait)
    worker.submit("x", lambda: ran.append("x"))
    worker.forget("x")  # still has a queued job: kept
    gate.set()
    worker.shutdown(wait=True)
    assert ran == ["x"]
