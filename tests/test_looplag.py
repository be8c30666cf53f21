"""The event-loop lag monitor and the hidden ``getlooplag`` RPC."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from peercash.config import Config
from peercash.consensus.params import get_params
from peercash.looplag import LoopLagMonitor
from peercash.rpc.control import getlooplag
from peercash.rpc.registry import REGISTRY, RpcError
from peercash.rpc.services import NodeServices


def test_snapshot_summarises_the_window() -> None:
    now = [1000.0]
    mon = LoopLagMonitor(interval=0.05, window=10.0, clock=lambda: now[0])
    assert mon.snapshot() == {"max_ms": 0.0, "median_ms": 0.0, "p90_ms": 0.0, "samples": 0,
                              "interval_ms": 50.0}  # fmt: skip
    for i, lag in enumerate([0.001, 0.002, 0.003, 0.100, 0.004]):
        mon.record(995.0 + i, lag)
    s = mon.snapshot()
    assert (s["max_ms"], s["median_ms"], s["samples"]) == (100.0, 3.0, 5)
    # Only the last two seconds: the samples at 998 and 999.
    s = mon.snapshot(2.0)
    assert (s["max_ms"], s["median_ms"], s["samples"]) == (100.0, 52.0, 2)
    # Older than the window: gone; negative lags count as zero.
    now[0] = 1008.5
    mon.record(1008.5, -0.01)
    s = mon.snapshot()
    assert (s["max_ms"], s["samples"]) == (4.0, 2)


def test_the_deque_is_bounded() -> None:
    mon = LoopLagMonitor(interval=0.05, window=1.0)
    for i in range(1000):
        mon.record(time.monotonic(), i / 1000)
    assert mon.snapshot()["samples"] == 21


def test_the_task_sees_a_blocked_loop() -> None:
    async def body() -> dict[str, float]:
        mon = LoopLagMonitor(interval=0.01, window=5.0)
        mon.start()
        mon.start()  # idempotent
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # the loop is held
        await asyncio.sleep(0.05)
        await mon.stop()
        return mon.snapshot()

    s = asyncio.run(body())
    assert s["samples"] >= 3
    assert 150 <= s["max_ms"] < 1000
    assert s["median_ms"] < s["max_ms"]


def test_getlooplag_rpc() -> None:
    method = REGISTRY.methods["getlooplag"]
    assert method.category == "hidden" and method.lock is False
    services = NodeServices(get_params("regtest"), Config(network="regtest"), Path("/x"),
                            request_stop=lambda: None)  # fmt: skip
    with pytest.raises(RpcError, match="not monitored"):
        getlooplag(services, None)
    mon = LoopLagMonitor()
    mon.record(time.monotonic(), 0.002)
    services.loop_lag = mon
    assert getlooplag(services, None)["max_ms"] == 2.0
    assert getlooplag(services, 30.0)["samples"] == 1
    with pytest.raises(RpcError, match="positive"):
        getlooplag(services, 0)
