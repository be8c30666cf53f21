"""Initial block download over P2P: a fresh node syncing from one and from three peercash peers,
against ``peercash import`` of the same blocks and against bcoin syncing from bcoin.

The chain (built once, then read from the cache under ``~/.cache/peercash-bench/``) is a
deterministic regtest chain from ``bench/chaingen.py`` — by default 2,000 blocks of 20
transactions spending P2PKH, P2WPKH, P2SH 2-of-3 multisig and P2TR (key and script path) outputs —
made so that bcoin 1.0.2 accepts it: every header signals segwit (version ``0x20000002``), whose
BIP9 deployment on bcoin's regtest then activates at height 432, and no block below that height
carries witness data (its coinbase has no witness commitment, its transactions spend only P2PKH
and P2SH multisig outputs); block times start in 2017, as bcoin enables P2SH (without which it
cannot check witness programs) only for blocks after ``BIP16_TIME`` (2012-04-01) and Core's
regtest genesis block is of 2011. bcoin's BIP66/BIP65 (from 1251/1351) hold for every block
(strict DER signatures, version >= 4); taproot outputs are anyone-can-spend to bcoin, and a block
is checked against consensus rules only, so our P2TR spends are valid to it. The tip stays
more than a day old, so the syncing node is in initial block download throughout.

In one run, for each ``--par`` (extra script-check processes; 1 by default):

* the floor: ``peercash import FILE --network regtest --assumevalid 0 --par N`` into a fresh
  data directory, timed from process start to exit (its final UTXO flush included; the syncing
  node's shutdown flush is reported apart, as ``stop_s``);
* one peer: that data directory, copied, serves as a ``peercash node``; a fresh ``peercash node
  --connect`` to it (``--assumevalid 0 --par N``) is timed from process start until its tip is
  the chain's tip (polled over RPC every 0.1 s); its peak RSS is the largest sampled sum of VmRSS
  over the node and its script workers (every 50 ms), and VmHWM of each, read at the tip;
* three peers: the same with three source nodes (three copies, three processes).

The three steps are repeated ``--repeat`` times (3 by default), alternating, so that load which
comes and goes hits import and sync alike: each round gives its own ratios, and the medians (of
the times, and of the per-round ratios) are reported. CPU seconds (the node and its workers, from
``/proc``; and those the source nodes spent serving) are reported too: on a shared machine they
are steadier than wall times.

Then, once, bcoin (``--memory=true``, bcoin's own defaults otherwise, worker processes on as
for ``--par``): a bcoin node syncs the chain from a peercash source node (timed too), and a
fresh bcoin syncing from that bcoin only is the figure to compare with. As installed by the test
framework (a plain ``npm install``, which runs no install scripts), bcoin has none of its native
modules: it verifies signatures with its pure-JavaScript secp256k1 (``bcoin_native_secp256k1``
says so), which makes it much slower on a chain full of signatures than on empty blocks.

Every node of a run is on this machine: the source nodes' serving shares the two cores with the
syncing node. Prints one JSON object; ``sync_vs_import`` (one peer, ``--par 1``; goal <= 1.5)
and ``peercash_vs_bcoin`` (blocks/s, one peer each; goal >= 10) are the figures to watch.

Usage: ``python bench/ibd.py [--blocks N] [--txs-per-block T] [--par 1[,0]] [--quick]
[--no-bcoin] [--keep]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "functional"))

from chaingen import ChainSpec, ensure_chain
from connect_blocks import TreeMemory, _check_tip, _descendants, _status_kb, run_import
from framework.bcoin import BcoinNode, ensure_bcoin

from peercash.consensus.params import REGTEST
from peercash.tools.nodeproc import NodeProcess

CACHE_DIR = Path.home() / ".cache" / "peercash-bench"
BCOIN_SEGWIT_HEIGHT = 432
"""The first block of bcoin's regtest with segwit active, when every block signals bit 1."""
SEGWIT_SIGNAL_VERSION = 0x20000002
START_TIME = 1_500_000_000
"""2017-07-14: after bcoin's BIP16_TIME, and long enough ago to keep the tip old."""
DEFAULT_BLOCKS = 2_000
DEFAULT_TXS = 20
QUICK = ChainSpec(
    blocks=480,
    txs_per_block=4,
    seed_outputs_per_coinbase=20,
    witness_from=BCOIN_SEGWIT_HEIGHT,
    block_version=SEGWIT_SIGNAL_VERSION,
    start_time=START_TIME,
)
POLL = 0.1
STALL = 90.0
"""Seconds without a new block after which a sync is given up (and the run fails)."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bcoin_spec(blocks: int, txs_per_block: int, seed: int = 1) -> ChainSpec:
    return ChainSpec(
        blocks=blocks,
        txs_per_block=txs_per_block,
        seed=seed,
        witness_from=BCOIN_SEGWIT_HEIGHT,
        block_version=SEGWIT_SIGNAL_VERSION,
        start_time=START_TIME,
    )


# -- peercash nodes -------------------------------------------------------------------------


@contextlib.contextmanager
def source_nodes(imported: Path, workdir: Path, n: int) -> Iterator[list[NodeProcess]]:
    """``n`` listening nodes, each on its own copy of the imported data directory."""
    nodes: list[NodeProcess] = []
    try:
        for k in range(n):
            d = workdir / f"source{k}"
            if not d.exists():
                shutil.copytree(imported, d)
            node = NodeProcess(
                d,
                extra_args=["--bind", "127.0.0.1", "--par", "0", "--no-dnsseed",
                            "--no-fixedseeds"],
            )  # fmt: skip
            nodes.append(node)
            node.start()
        yield nodes
    finally:
        for node in nodes:
            try:
                node.stop(30)
            except Exception:
                node.kill()


def wait_for_height(
    count: Callable[[], int],
    failed: Callable[[], str | None],
    height: int,
    start: float,
    timeout: float,
    what: str,
) -> tuple[float, float | None]:
    """Poll ``count()`` until it reaches ``height``: (seconds since ``start``, seconds until
    ``count`` first answered). Exits when ``failed()`` says why, after ``timeout`` seconds, or
    after ``STALL`` seconds without progress (errors of ``count`` are "not yet")."""
    first: float | None = None
    best, last_progress = -1, time.perf_counter()
    while True:
        why = failed()
        if why is not None:
            raise SystemExit(f"{what}: {why}")
        now = time.perf_counter()
        try:
            n = count()
        except Exception:
            n = -1
        else:
            if first is None:
                first = now - start
            if n >= height:
                return time.perf_counter() - start, first
        if n > best:
            best, last_progress = n, now
        if now - start > timeout or now - last_progress > STALL:
            raise SystemExit(f"{what}: at height {best} after {now - start:.0f}s "
                             f"({now - last_progress:.0f}s without a new block)")  # fmt: skip
        time.sleep(POLL)


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants so far."""
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _tree_hwm_kb(pid: int) -> tuple[int, int]:
    """VmHWM of ``pid`` and the sum of VmHWM over it and its descendants (kB)."""
    pids = _descendants(pid)
    return _status_kb(pid, "VmHWM:"), sum(_status_kb(p, "VmHWM:") for p in pids)


def sync_peercash(
    sources: Sequence[NodeProcess], datadir: Path, par: int, meta: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """A fresh node connecting only to ``sources``: seconds from start until the chain's tip."""
    connect = [a for s in sources for a in ("--connect", f"127.0.0.1:{s.port}")]
    node = NodeProcess(
        datadir,
        extra_args=[*connect, "--no-listen", "--assumevalid", "0", "--par", str(par)],
    )
    tip, height = meta["tip"], meta["tip_height"]
    start = time.perf_counter()
    node.start(wait=False)
    assert node.proc is not None
    proc = node.proc
    mem = TreeMemory(proc.pid)
    source_pids = [src.proc.pid for src in sources if src.proc is not None]
    source_cpu = [tree_cpu_s(pid) for pid in source_pids]

    def failed() -> str | None:
        if proc.poll() is None:
            return None
        _, err = proc.communicate()
        return f"exited with {proc.returncode}:\n{err.decode(errors='replace')[-3000:]}"

    try:
        wall, ready_s = wait_for_height(
            lambda: int(node.call("getblockcount")), failed, height, start, timeout,
            f"peercash syncing from {len(sources)} peer(s) ({datadir})",
        )  # fmt: skip
        best = node.call("getbestblockhash")
        if best != tip:
            raise SystemExit(f"synced to {best}, expected {tip}")
        cpu_s = tree_cpu_s(proc.pid)
        source_cpu_s = sum(tree_cpu_s(pid) - c for pid, c in zip(source_pids, source_cpu))
        hwm_main_kb, hwm_sum_kb = _tree_hwm_kb(proc.pid)
        mem.stop()
        peers = node.call("getpeerinfo")
        stop_start = time.perf_counter()
        node.stop(120)
        stop_s = time.perf_counter() - stop_start
    finally:
        mem.stop()
        node.kill()
    return {
        "wall_s": wall,
        "rpc_ready_s": ready_s,
        "cpu_s": cpu_s,
        "source_cpu_s": source_cpu_s,
        "stop_s": stop_s,
        "peers": len(peers),
        "bytes_received": sum(int(p.get("bytesrecv", 0)) for p in peers),
        "peak_rss_mb": mem.peak_kb / 1024,
        "vmhwm_main_mb": hwm_main_kb / 1024,
        "vmhwm_sum_mb": hwm_sum_kb / 1024,
        "processes": mem.max_processes,
    }


# -- bcoin ----------------------------------------------------------------------------------


def _bcoin_wait_tip(node: BcoinNode, meta: dict[str, Any], start: float, timeout: float) -> float:
    def failed() -> str | None:
        return None if node.running else f"exited:\n{node.log_tail()}"

    try:
        wall, _ = wait_for_height(
            node.getblockcount, failed, meta["tip_height"], start, timeout, node.name
        )
    except SystemExit as e:
        raise SystemExit(f"{e}\n{node.log_tail()}") from None
    best = node.getbestblockhash()
    if best != meta["tip"]:
        raise SystemExit(f"{node.name} synced to {best}, expected {meta['tip']}")
    return wall


def bcoin_native_secp256k1(install: Path) -> bool:
    """Whether bcoin's secp256k1 binding was compiled; without it bcrypto verifies signatures in
    JavaScript (npm runs no install scripts it has not been told to allow, so a plain
    ``npm install`` builds none of bcoin's native modules)."""
    release = install / "node_modules" / "secp256k1" / "build" / "Release"
    return any(release.glob("*.node"))


def sync_bcoin(
    source: NodeProcess, workdir: Path, meta: dict[str, Any], workers: bool, timeout: float
) -> dict[str, Any]:
    """bcoin A syncs from ``source`` (peercash); a fresh bcoin B syncs from A only."""
    install = ensure_bcoin()
    common = ["--max-outbound=1", "--log-level=warning"]
    a = BcoinNode(workdir / "bcoin-a", wallet=False, workers=workers, name="bcoin-a",
                  extra_args=[*common, f"--only=127.0.0.1:{source.port}"])  # fmt: skip
    with contextlib.ExitStack() as stack:
        start = time.perf_counter()
        a.start()
        stack.callback(a.kill)
        from_peercash_s = _bcoin_wait_tip(a, meta, start, timeout)
        _log(f"bcoin-a synced from peercash in {from_peercash_s:.1f}s")
        b = BcoinNode(workdir / "bcoin-b", wallet=False, workers=workers, name="bcoin-b",
                      extra_args=[*common, f"--only={a.host}:{a.port}"])  # fmt: skip
        start = time.perf_counter()
        b.start()
        stack.callback(b.kill)
        mem = TreeMemory(b.pid)
        try:
            wall = _bcoin_wait_tip(b, meta, start, timeout)
        finally:
            mem.stop()
        b.stop()
        a.stop()
    return {
        "native_secp256k1": bcoin_native_secp256k1(install),
        "from_peercash_s": from_peercash_s,
        "wall_s": wall,
        "peak_rss_mb": mem.peak_kb / 1024,
        "processes": mem.max_processes,
    }


# -- the run --------------------------------------------------------------------------------


def peercash_round(
    blocks_file: Path, w: Path, par: int, meta: dict[str, Any], timeout: float, label: str
) -> dict[str, Any]:
    """Import into ``w/imported``, then sync a fresh node from one and from three copies."""
    imported = w / "imported"
    imp = run_import(blocks_file, imported, par, None)
    _check_tip(imported, meta)
    _log(f"{label}: import {imp['wall_s']:.1f}s")
    with source_nodes(imported, w, 1) as sources:
        one = sync_peercash(sources, w / "sync1", par, meta, timeout)
    _log(f"{label}: one peer {one['wall_s']:.1f}s")
    with source_nodes(imported, w, 3) as sources:
        three = sync_peercash(sources, w / "sync3", par, meta, timeout)
    _log(f"{label}: three peers {three['wall_s']:.1f}s")
    return {"import": imp, "one": one, "three": three}


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=DEFAULT_BLOCKS)
    parser.add_argument("--txs-per-block", type=int, default=DEFAULT_TXS)
    parser.add_argument("--seed", type=int, default=ChainSpec.seed)
    parser.add_argument("--quick", action="store_true", help="a small chain, for smoke tests")
    parser.add_argument("--par", default="1",
                        help="extra script-check processes, comma-separated (first: the ratios)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of import + syncs (medians are reported)")  # fmt: skip
    parser.add_argument("--no-bcoin", action="store_true", help="skip the bcoin part")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--gen-workers", type=int, default=2, help="signing processes")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per sync")
    args = parser.parse_args()
    pars = [int(p) for p in args.par.split(",")]

    if args.quick:
        spec = QUICK
    elif args.blocks <= REGTEST.coinbase_maturity:
        parser.error(f"--blocks must exceed the coinbase maturity ({REGTEST.coinbase_maturity})")
    else:
        spec = bcoin_spec(args.blocks, args.txs_per_block, args.seed)
    chain_dir, meta, generated = ensure_chain(spec, args.cache_dir, args.gen_workers, _log)
    blocks_file = chain_dir / "blocks.dat"
    _log(f"chain: {chain_dir} ({'generated' if generated else 'cached'})")
    height = meta["tip_height"]
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="peercash-bench-ibd-"))
    runs: dict[int, list[dict[str, Any]]] = {}
    bcoin: dict[str, Any] | None = None
    try:
        for par in pars:
            runs[par] = []
            for k in range(args.repeat):
                w = workdir / f"par{par}-round{k}"
                w.mkdir()
                runs[par].append(peercash_round(blocks_file, w, par, meta, args.timeout,
                                                f"--par {par}, round {k + 1}"))  # fmt: skip
                if not args.no_bcoin and bcoin is None:
                    with source_nodes(w / "imported", w, 1) as sources:
                        _log("bcoin: syncing from peercash, then from bcoin")
                        bcoin = sync_bcoin(sources[0], w, meta, pars[0] > 0, args.timeout)
                    _log(f"bcoin: from bcoin {bcoin['wall_s']:.1f}s")
                if not args.keep:
                    shutil.rmtree(w, ignore_errors=True)
    finally:
        if args.keep:
            _log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    def figures(par: int) -> dict[str, Any]:
        rounds = runs[par]

        def med(part: str, key: str, nd: int = 3) -> float | None:
            return _r(statistics.median(r[part][key] for r in rounds), nd)

        def ratios(part: str, key: str = "wall_s") -> list[float]:
            return sorted(round(r[part][key] / r["import"][key], 3) for r in rounds)

        one_s = statistics.median(r["one"]["wall_s"] for r in rounds)
        three_s = statistics.median(r["three"]["wall_s"] for r in rounds)
        return {
            "import_s": med("import", "wall_s"),
            "import_blocks_per_s": _r(height / statistics.median(r["import"]["wall_s"]
                                                                 for r in rounds), 1),
            "import_cpu_s": med("import", "cpu_s"),
            "import_peak_rss_mb": med("import", "peak_rss_mb", 1),
            "sync_1peer_s": _r(one_s),
            "sync_1peer_blocks_per_s": _r(height / one_s, 1),
            "sync_1peer_rpc_ready_s": med("one", "rpc_ready_s"),
            "sync_1peer_cpu_s": med("one", "cpu_s"),
            "sync_1peer_source_cpu_s": med("one", "source_cpu_s"),
            "sync_1peer_stop_s": med("one", "stop_s"),
            "sync_1peer_peak_rss_mb": med("one", "peak_rss_mb", 1),
            "sync_1peer_vmhwm_main_mb": med("one", "vmhwm_main_mb", 1),
            "sync_1peer_vmhwm_sum_mb": med("one", "vmhwm_sum_mb", 1),
            "sync_1peer_processes": max(r["one"]["processes"] for r in rounds),
            "sync_3peer_s": _r(three_s),
            "sync_3peer_blocks_per_s": _r(height / three_s, 1),
            "sync_3peer_peers": min(r["three"]["peers"] for r in rounds),
            "sync_3peer_cpu_s": med("three", "cpu_s"),
            "sync_3peer_sources_cpu_s": med("three", "source_cpu_s"),
            "sync_3peer_peak_rss_mb": med("three", "peak_rss_mb", 1),
            "sync_3peer_vmhwm_main_mb": med("three", "vmhwm_main_mb", 1),
            "sync_3peer_vmhwm_sum_mb": med("three", "vmhwm_sum_mb", 1),
            # Each round's sync over the same round's import, then the median round.
            "sync_vs_import": _r(statistics.median(ratios("one"))),
            "sync_vs_import_rounds": ratios("one"),
            "sync_3peer_vs_import": _r(statistics.median(ratios("three"))),
            "sync_3peer_vs_import_rounds": ratios("three"),
            # CPU seconds (node and script workers) over the import's: less sensitive to
            # other load on a shared machine.
            "sync_vs_import_cpu": _r(statistics.median(ratios("one", "cpu_s"))),
            "sync_3peer_vs_import_cpu": _r(statistics.median(ratios("three", "cpu_s"))),
        }  # fmt: skip

    main_par = pars[0]
    main_figures = figures(main_par)
    result: dict[str, Any] = {
        "benchmark": "ibd",
        "chain": chain_dir.name,
        "blocks": height,
        "txs": meta["txs_including_coinbase"],
        "inputs": meta["inputs"],
        "inputs_by_kind": meta["inputs_by_kind"],
        "signatures": meta["signatures"],
        "chain_file_mb": round(blocks_file.stat().st_size / 2**20, 1),
        "witness_from": spec.witness_from,
        "generated_now": generated,
        "par": main_par,
        "repeat": args.repeat,
        **main_figures,
    }
    if bcoin is not None:
        bcoin_bps = height / bcoin["wall_s"]
        result.update({
            "bcoin_workers": main_par > 0,
            "bcoin_native_secp256k1": bcoin["native_secp256k1"],
            "bcoin_sync_s": _r(bcoin["wall_s"]),
            "bcoin_blocks_per_s": _r(bcoin_bps, 1),
            "bcoin_peak_rss_mb": _r(bcoin["peak_rss_mb"], 1),
            "bcoin_from_peercash_s": _r(bcoin["from_peercash_s"]),
            "bcoin_from_peercash_blocks_per_s": _r(height / bcoin["from_peercash_s"], 1),
            "peercash_vs_bcoin": _r(main_figures["sync_1peer_blocks_per_s"] / bcoin_bps),
            "peercash_3peer_vs_bcoin": _r(main_figures["sync_3peer_blocks_per_s"] / bcoin_bps),
        })  # fmt: skip
    for par in pars[1:]:
        result[f"par{par}"] = figures(par)
    result.update({
        "goals": {"sync_vs_import": "<= 1.5", "peercash_vs_bcoin": ">= 10"},
        "cpus": os.cpu_count(),
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
        "notes": "all nodes on one machine; source nodes share the cores with the syncing node; "
        "bcoin keeps its chain in memory (--memory=true)",
    })  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
