"""A real network of peercash processes on loopback (issue #10): 8 nodes in a sparse topology, a
block mined at any node reaches every node, a node killed with SIGKILL catches up after a
restart, and a network split in two heals onto the most-work chain.

The topology is fixed with ``--connect`` (no address gossip can add links), so the test knows
each node's distance in hops from the miner. The two links that join the halves go through a
small TCP relay in this process; the split is the relay dropping its connections and refusing
new ones, the heal is it forwarding again (the nodes' ``--connect`` loops reconnect by
themselves). Propagation times (median and worst, in hops and ms) are printed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import threading
import time
from collections import deque
from pathlib import Path

import pytest

from peercash.tools.nodeproc import NodeProcess, free_port

ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
# The other half pays elsewhere: two halves mining in the same second to the same address would
# otherwise make byte-identical blocks.
ADDRESS_B = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
N = 8
# Two rings of four with one chord each; 3-4 and 7-0 join the halves (through relays).
HALF_A = (0, 1, 2, 3)
HALF_B = (4, 5, 6, 7)
LOCAL_EDGES = [(0, 1), (1, 2), (2, 3), (0, 2), (4, 5), (5, 6), (6, 7), (4, 6)]
BRIDGES = [(3, 4), (7, 0)]

pytestmark = pytest.mark.slow


class Relay:
    """Forwards TCP connections from a loopback port to a target port until ``cut``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data or not self._open.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()

    def heal(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.cut()
        self._stop.set()
        self._server.close()
        self._thread.join(5)


def _hops(start: int) -> dict[int, int]:
    adj: dict[int, set[int]] = {i: set() for i in range(N)}
    for a, b in LOCAL_EDGES + BRIDGES:
        adj[a].add(b)
        adj[b].add(a)
    dist = {start: 0}
    queue = deque([start])
    while queue:
        x = queue.popleft()
        for y in adj[x]:
            if y not in dist:
                dist[y] = dist[x] + 1
                queue.append(y)
    return dist


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(what)


def _tips(nodes: list[NodeProcess]) -> list[str]:
    return [n.call("getbestblockhash") for n in nodes]


def test_eight_nodes_propagate_survive_a_kill_and_heal_a_split(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(N)]
    relays = {edge: Relay(ports[edge[1]]) for edge in BRIDGES}
    connects: dict[int, list[str]] = {i: [] for i in range(N)}
    for a, b in LOCAL_EDGES:
        connects[a].append(f"127.0.0.1:{ports[b]}")
    for (a, _b), relay in relays.items():
        connects[a].append(f"127.0.0.1:{relay.port}")
    nodes = [
        NodeProcess(
            tmp_path / f"n{i}",
            port=ports[i],
            extra_args=["--listen", *[f"--connect={c}" for c in connects[i]]],
        )
        for i in range(N)
    ]
    try:
        for n in nodes:
            n.start()
        # Every node has its topology peers: 2 or 3 each, never everyone.
        _wait(lambda: all(n.call("getconnectioncount") >= 2 for n in nodes), 30, "connections")
        assert max(n.call("getconnectioncount") for n in nodes) <= 3

        # Propagation: each node mines one block in turn; time until every node has it.
        samples: list[tuple[int, float]] = []  # (hops, ms)
        for miner in range(N):
            block = nodes[miner].call("generatetoaddress", 1, ADDRESS)[0]
            mined_at = time.monotonic()
            arrived: dict[int, float] = {}
            deadline = mined_at + 30
            while len(arrived) < N and time.monotonic() < deadline:
                for i, n in enumerate(nodes):
                    if i not in arrived and n.call("getbestblockhash") == block:
                        arrived[i] = (time.monotonic() - mined_at) * 1000
                time.sleep(0.01)
            assert len(arrived) == N, f"block from node {miner} reached only {sorted(arrived)}"
            hops = _hops(miner)
            samples += [(hops[i], ms) for i, ms in arrived.items() if i != miner]
        assert len(samples) == N * (N - 1)
        by_hops: dict[int, list[float]] = {}
        for h, ms in samples:
            by_hops.setdefault(h, []).append(ms)
        figures = {
            "median_ms": round(statistics.median(ms for _, ms in samples), 1),
            "worst_ms": round(max(ms for _, ms in samples), 1),
            "max_hops": max(h for h, _ in samples),
            "median_ms_by_hops": {
                h: round(statistics.median(v), 1) for h, v in sorted(by_hops.items())
            },
        }
        print("block propagation:", json.dumps(figures))
        assert figures["max_hops"] >= 3  # the topology really is sparse

        # A node killed with SIGKILL catches up after a restart.
        nodes[5].kill()
        nodes[0].call("generatetoaddress", 5, ADDRESS)
        tip = nodes[0].call("getbestblockhash")
        _wait(lambda: all(n.call("getbestblockhash") == tip for i, n in enumerate(nodes)
                          if i != 5), 30, "the others follow while node 5 is down")  # fmt: skip
        nodes[5].start()
        _wait(lambda: nodes[5].call("getbestblockhash") == tip, 30, "node 5 catches up")

        # Split in two: both halves mine; the longer side wins everywhere once healed.
        for relay in relays.values():
            relay.cut()
        base = nodes[0].call("getblockcount")
        nodes[1].call("generatetoaddress", 3, ADDRESS)
        nodes[6].call("generatetoaddress", 6, ADDRESS_B)
        tip_a = nodes[1].call("getbestblockhash")
        tip_b = nodes[6].call("getbestblockhash")
        _wait(lambda: all(nodes[i].call("getbestblockhash") == tip_a for i in HALF_A), 30,
              "half A converges")  # fmt: skip
        _wait(lambda: all(nodes[i].call("getbestblockhash") == tip_b for i in HALF_B), 30,
              "half B converges")  # fmt: skip
        assert nodes[0].call("getblockcount") == base + 3
        for relay in relays.values():
            relay.heal()
        _wait(lambda: set(_tips(nodes)) == {tip_b}, 90, "the split heals onto B's longer chain")
        assert all(n.call("getblockcount") == base + 6 for n in nodes)
        # Half A's blocks are now a side branch on its nodes.
        tips = nodes[0].call("getchaintips")
        assert any(t["hash"] == tip_a and t["status"] == "valid-fork" for t in tips), tips
    finally:
        for n in nodes:
            try:
                n.stop(30)
            except Exception:
                n.kill()
        for relay in relays.values():
            relay.close()
