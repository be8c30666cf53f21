"""JSON-RPC under load: many concurrent clients against a real node while it mines, and the floor.

Starts ``peercash node --network regtest`` in a scratch directory, mines ``--premine`` blocks,
then runs ``--clients`` concurrent aiohttp clients for ``--duration`` seconds, each calling
``getblockheader`` and ``getblock`` (alternately, on random blocks of the active chain) while
another task mines a block with ``generatetoaddress`` every ``--mine-interval`` seconds. In the
same run, the same clients hit a bare aiohttp server (a separate process) that answers every POST
with a constant JSON-RPC reply: the floor for "HTTP + JSON in Python" on this machine.

Then, on the same node, the cheap-call phase (issue #9: RPC never stalls the node): a few
clients call ``getblockcount`` for ``--cheap-duration`` seconds, first alone, then while heavy
calls run (a loop of 5,000-call ``getblock … 2`` batches and a loop of 200-block
``generatetoaddress``). The ratio of the cheap call's p99 with and without the heavy calls shows
what the heavy calls cost everyone else.

Prints one JSON object: latency p50/p99 (ms), requests/s and errors for both, the ratios
node/floor, and the cheap-call figures. Usage: ``python bench/rpc.py [--clients 200]
[--duration 10] [--cheap-duration 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from peercash.tools.nodeproc import NodeProcess, free_port

ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

FLOOR_SERVER = """
import sys
from aiohttp import web
REPLY = b'{"result":0,"error":null,"id":1}\\n'
async def handle(request):
    await request.read()
    return web.Response(body=REPLY, content_type="application/json")
app = web.Application()
app.router.add_post("/", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


async def _load(
    url: str,
    auth: str,
    clients: int,
    duration: float,
    make_request: Any,
    background: Any = None,
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    error_samples: list[str] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:
        stop_at = time.perf_counter() + duration

        async def client(n: int) -> None:
            nonlocal errors
            rng = random.Random(n)
            while time.perf_counter() < stop_at:
                body = make_request(rng)
                t = time.perf_counter()
                try:
                    async with s.post(url, data=body) as r:
                        data = await r.read()
                        ok = r.status == 200 and json.loads(data).get("error") is None
                        if not ok and len(error_samples) < 3:
                            error_samples.append(f"{r.status}: {data[:200]!r}")
                except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                    ok = False
                    if len(error_samples) < 3:
                        error_samples.append(repr(e))
                latencies.append(time.perf_counter() - t)
                if not ok:
                    errors += 1

        started = time.perf_counter()
        tasks = [asyncio.create_task(client(i)) for i in range(clients)]
        side = asyncio.create_task(background(s)) if background else None
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        extra = await side if side else None
    result: dict[str, Any] = {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
    }
    if error_samples:
        result["error_samples"] = error_samples
    if extra:
        result.update(extra)
    return result


async def bench_node(node: NodeProcess, args: argparse.Namespace) -> dict[str, Any]:
    hashes: list[str] = [
        node.call("getblockhash", h) for h in range(node.call("getblockcount") + 1)
    ]
    methods = ["getblockheader", "getblock"]

    def make_request(rng: random.Random) -> bytes:
        method = methods[rng.randrange(2)]
        return json.dumps({"method": method, "params": [rng.choice(hashes)], "id": 1}).encode()

    async def miner(s: aiohttp.ClientSession) -> dict[str, Any]:
        mined = 0
        mine_latencies: list[float] = []
        stop_at = time.perf_counter() + args.duration
        while time.perf_counter() < stop_at:
            await asyncio.sleep(args.mine_interval)
            body = json.dumps({"method": "generatetoaddress", "params": [1, ADDRESS], "id": 1})
            t = time.perf_counter()
            async with s.post(node.url, data=body) as r:
                reply = json.loads(await r.read())
            mine_latencies.append(time.perf_counter() - t)
            if reply.get("error") is None:
                mined += 1
                hashes.extend(reply["result"])
        return {
            "blocks_mined": mined,
            "mine_call_p50_ms": round(_percentile(mine_latencies, 0.5) * 1000, 2),
        }

    background = miner if args.mine_interval > 0 else None
    return await _load(node.url, node.auth_header(), args.clients, args.duration, make_request,
                       background)  # fmt: skip


async def bench_cheap(node: NodeProcess, args: argparse.Namespace, heavy: bool) -> dict[str, Any]:
    """``getblockcount`` from a few clients, alone or while heavy calls run."""
    hashes = [node.call("getblockhash", h) for h in range(min(100, node.call("getblockcount")))]
    body = json.dumps({"method": "getblockcount", "id": 1}).encode()
    heavy_done = {"batches": 0, "batch_calls": 0, "blocks_mined": 0}

    async def heavy_calls(s: aiohttp.ClientSession) -> dict[str, Any]:
        stop_at = time.perf_counter() + args.cheap_duration

        async def batches() -> None:
            batch = [{"method": "getblock", "params": [hashes[i % len(hashes)], 2], "id": i}
                     for i in range(5000)]  # fmt: skip
            payload = json.dumps(batch)
            while time.perf_counter() < stop_at:
                async with s.post(node.url, data=payload) as r:
                    await r.read()
                heavy_done["batches"] += 1
                heavy_done["batch_calls"] += len(batch)

        async def generate() -> None:
            payload = json.dumps({"method": "generatetoaddress", "params": [200, ADDRESS]})
            while time.perf_counter() < stop_at:
                async with s.post(node.url, data=payload) as r:
                    reply = json.loads(await r.read())
                if reply.get("error") is None:
                    heavy_done["blocks_mined"] += len(reply["result"])

        await asyncio.gather(batches(), generate())
        return dict(heavy_done)

    return await _load(node.url, node.auth_header(), args.cheap_clients, args.cheap_duration,
                       lambda rng: body, heavy_calls if heavy else None)  # fmt: skip


async def bench_floor(port: int, args: argparse.Namespace) -> dict[str, Any]:
    body = json.dumps({"method": "getblockheader", "params": ["00" * 32], "id": 1}).encode()
    auth = "Basic " + base64.b64encode(b"u:p").decode()
    return await _load(f"http://127.0.0.1:{port}/", auth, args.clients, args.duration,
                       lambda rng: body)  # fmt: skip


def _wait_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"floor server on port {port} did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--premine", type=int, default=110)
    p.add_argument("--mine-interval", type=float, default=0.25, help="seconds; 0: no mining")
    p.add_argument("--cheap-duration", type=float, default=10.0, help="0: skip that phase")
    p.add_argument("--cheap-clients", type=int, default=4)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="peercash-bench-rpc-") as tmp:
        node = NodeProcess(Path(tmp))
        node.start()
        try:
            node.call("generatetoaddress", args.premine, ADDRESS)
            node_result = asyncio.run(bench_node(node, args))
            height = node.call("getblockcount")
            cheap: dict[str, Any] = {}
            if args.cheap_duration > 0:
                cheap["alone"] = asyncio.run(bench_cheap(node, args, heavy=False))
                cheap["with_heavy_calls"] = asyncio.run(bench_cheap(node, args, heavy=True))
        finally:
            node.stop()

    port = free_port()
    floor_proc = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, str(port)])
    try:
        _wait_port(port)
        floor_result = asyncio.run(bench_floor(port, args))
    finally:
        floor_proc.terminate()
        floor_proc.wait(30)

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 2) if b else None

    print(json.dumps({
        "bench": "rpc",
        "clients": args.clients,
        "duration_s": args.duration,
        "methods": ["getblockheader", "getblock"],
        "mining": args.mine_interval > 0,
        "final_height": height,
        "node": node_result,
        "floor": {"what": "bare aiohttp server answering a constant JSON-RPC reply", **floor_result},
        "ratio_p99": ratio(node_result["p99_ms"], floor_result["p99_ms"]),
        "ratio_p50": ratio(node_result["p50_ms"], floor_result["p50_ms"]),
        "ratio_rps": ratio(floor_result["requests_per_s"], node_result["requests_per_s"]),
        "cheap_call": cheap and {
            "method": "getblockcount",
            **cheap,
            "ratio_p99_heavy_vs_alone": ratio(cheap["with_heavy_calls"]["p99_ms"],
                                              cheap["alone"]["p99_ms"]),
            "ratio_p50_heavy_vs_alone": ratio(cheap["with_heavy_calls"]["p50_ms"],
                                              cheap["alone"]["p50_ms"]),
        },
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
