"""RPC never stalls the node (issue #9): the chain lock hands itself over in order, the work
queue is bounded (503 when full), batches are bounded, numeric arguments are range-checked as
Core checks them, and regtest mining never produces a block the node would refuse.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from peercash.chain.locking import ChainLock
from peercash.config import Config
from peercash.consensus.params import get_params
from peercash.rpc import control, jsonrpc, methods, mining  # noqa: F401  (registers the methods)
from peercash.rpc.registry import REGISTRY, RPC_MISC_ERROR, RPC_VERIFY_ERROR, RpcError, bind_params
from peercash.rpc.services import NodeServices
from peercash.rpc.workqueue import WorkQueue, WorkQueueFull

from .test_methods import ADDRESS, NOW, make_node

# -- the chain lock -----------------------------------------------------------------------------


def test_chain_lock_is_reentrant_and_owned() -> None:
    lock = ChainLock()
    with lock, lock:
        assert lock.held()
    assert not lock.held()
    with pytest.raises(RuntimeError):
        lock.release()


def test_chain_lock_hands_over_to_a_waiter_before_the_holder_retakes_it() -> None:
    """A thread that takes the lock again and again never gets it back while another thread
    was already waiting when it let go (a plain lock lets the busy thread win for long
    stretches). The busy thread checks this itself, inside the lock, with no timing."""
    lock = ChainLock()
    grants = [0]  # times the other thread got the lock
    checked = [0]
    violations = [0]
    stop = threading.Event()

    def busy() -> None:
        expected: int | None = None  # grants seen when a waiter was queued behind us
        while not stop.is_set():
            with lock:
                if expected is not None:
                    checked[0] += 1
                    if grants[0] == expected:
                        violations[0] += 1
                expected = grants[0] if lock.waiting else None
                sum(range(200))

    t = threading.Thread(target=busy)
    t.start()
    try:
        for _ in range(300):
            with lock:
                grants[0] += 1
            time.sleep(0.0002)
    finally:
        stop.set()
        t.join()
    assert grants[0] == 300
    assert checked[0] >= 3  # the busy thread really did see waiters
    assert violations[0] == 0


# -- the work queue -----------------------------------------------------------------------------


def test_work_queue_refuses_beyond_threads_plus_depth() -> None:
    async def scenario() -> tuple[list[str], int]:
        queue = WorkQueue(threads=1, depth=2)
        gate = threading.Event()
        running = [queue.run(gate.wait) for _ in range(3)]  # one runs, two wait
        tasks = [asyncio.ensure_future(c) for c in running]
        await asyncio.sleep(0.05)
        outcomes = []
        try:
            await queue.run(lambda: None)
        except WorkQueueFull:
            outcomes.append("full")
        gate.set()
        await asyncio.gather(*tasks)
        outcomes.append(str(await queue.run(lambda: "ran")))
        queue.close()
        return outcomes, queue.refused

    outcomes, refused = asyncio.run(scenario())
    assert outcomes == ["full", "ran"]
    assert refused == 1


# -- batches ------------------------------------------------------------------------------------


def _services() -> NodeServices:
    s = NodeServices(get_params("regtest"), Config(network="regtest"), Path("/nonexistent"),
                     request_stop=lambda: None)  # fmt: skip
    s.set_warmup(None)
    return s


def test_batch_reply_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonrpc, "MAX_BATCH_REPLY_BYTES", 1000)
    batch = [{"method": "echo", "params": ["x" * 200], "id": i} for i in range(10)]
    status, body = jsonrpc.handle_body_sync(_services(), json.dumps(batch).encode())
    assert status == 200 and body is not None
    replies = json.loads(body)
    assert len(replies) == 10
    ran = [r for r in replies if r["error"] is None]
    refused = [r for r in replies if r["error"] is not None]
    # Each answer is ~230 bytes: the fifth takes the total past 1,000, the rest are not run.
    assert len(ran) == 5 and [r["id"] for r in ran] == [0, 1, 2, 3, 4]
    assert len(refused) == 5
    assert {r["error"]["code"] for r in refused} == {-7}
    assert refused[0]["error"]["message"].startswith("Batch reply is over 0 MiB: request 5")


def test_batch_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonrpc, "MAX_BATCH_REQUESTS", 5)
    batch = [{"method": "uptime", "id": i} for i in range(6)]
    status, body = jsonrpc.handle_body_sync(_services(), json.dumps(batch).encode())
    assert status == 400 and body is not None
    assert json.loads(body)["error"] == {
        "code": -32600,
        "message": "Batch of 6 requests is over the limit of 5",
    }
    status, body = jsonrpc.handle_body_sync(_services(), json.dumps(batch[:5]).encode())
    assert status == 200 and body is not None and len(json.loads(body)) == 5


# -- range checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ([1e12, ADDRESS], False),
        ([2**31, ADDRESS], False),
        ([-(2**31) - 1, ADDRESS], False),
        ([2**31 - 1, ADDRESS], True),
        ([1, ADDRESS, 2**31], False),
        ([1, ADDRESS, 1e12], False),
        ([1, ADDRESS, 2**31 - 1], True),
    ],
)
def test_generate_counts_are_int32_as_core_reads_them(params: list[Any], ok: bool) -> None:
    method = REGISTRY.methods["generatetoaddress"]
    if ok:
        assert len(bind_params(method, params)) == 3
        return
    with pytest.raises(RpcError) as e:
        bind_params(method, params)
    assert (e.value.code, e.value.message) == (RPC_MISC_ERROR, "JSON integer out of range")


def test_other_integers_are_int64_checked() -> None:
    method = REGISTRY.methods["getblockhash"]
    with pytest.raises(RpcError) as e:
        bind_params(method, [2**63])
    assert (e.value.code, e.value.message) == (RPC_MISC_ERROR, "JSON integer out of range")


# -- mining stays within what the node accepts -------------------------------------------------


def test_mining_stops_before_a_block_the_node_would_reject(tmp_path: Path) -> None:
    node = make_node(tmp_path / "regtest")
    try:
        node.clock[0] = float(NOW + 8000)  # blocks made while the clock was ahead…
        assert len(mining.generatetoaddress(node, 12, ADDRESS)) == 12
        node.clock[0] = float(NOW)  # …and now it is back: the next block would be too new
        height = node.chain.height
        with pytest.raises(RpcError) as e:
            mining.generatetoaddress(node, 5, ADDRESS)
        assert e.value.code == RPC_MISC_ERROR
        assert "more than the 7200 s a block may be" in e.value.message
        assert node.chain.height == height  # nothing was mined
        with pytest.raises(RpcError) as e:
            mining.generateblock(node, ADDRESS, [])
        # generateblock checks its block as Core's does (TestBlockValidity).
        assert e.value.code == RPC_VERIFY_ERROR
        assert e.value.message == (
            "TestBlockValidity failed: time-too-new, block timestamp too far in the future"
        )
        node.clock[0] = float(NOW + 1000)  # within two hours of the tip again: mining resumes
        assert len(mining.generatetoaddress(node, 1, ADDRESS)) == 1
    finally:
        node.chain.close()
