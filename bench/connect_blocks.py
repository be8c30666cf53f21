"""Block import (full validation, UTXO updates, disk writes) against bare signature verification.

Builds — once, then from the cache under ``bench/.cache/`` — a deterministic regtest chain (see
``bench/chaingen.py``: by default 5,000 blocks and about 206,000 transactions spending P2PKH,
P2WPKH, P2SH 2-of-3 multisig, P2TR key path and P2TR script path outputs in roughly equal shares),
then in the same run:

* the floor: verifies every signature the chain contains with bare ``coincurve`` on one core
  (``PublicKey(pub).verify(der, msg, hasher=None)``, ``PublicKeyXOnly(x).verify(sig, msg)``);
* ours: ``peercash import FILE --network regtest --datadir <fresh> --assumevalid 0 --par 1``
  (floor and import alternate for ``--repeat`` rounds, 3 by default; the round with the median
  ratio is reported, every round's ratio in ``ratio_rounds``)
  (one extra script-check process; the importing process checks too, so two cores are busy),
  timed from process start to exit, with the peak RSS of its process tree (the sum of ``VmRSS``
  over the process and its descendants, sampled every 50 ms);
* the same with ``--par 0`` (one core);
* ``peercash chaininfo`` on each datadir, to check the tip is the chain's tip.

Prints one JSON object; ``ratio_import_to_floor`` (``--par 1``) is the figure to watch. Goal:
ratio <= 1.3 and peak RSS <= 1.5 GB at the default ``--dbcache``.

Usage: ``python bench/connect_blocks.py [--blocks N] [--txs-per-block T] [--quick] [--keep]
[--repeat R] [--profile N]``. ``--profile N`` also runs the import of the first N blocks under cProfile
(``--par 0``) and prints the 25 functions with the most own time to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import coincurve
from chaingen import SIG_ECDSA, ChainSpec, ensure_chain, load_sigs

from peercash.consensus.params import REGTEST

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
QUICK = ChainSpec(blocks=300, txs_per_block=10, seed_outputs_per_coinbase=50)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _peercash_cmd() -> list[str]:
    """The ``peercash`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "peercash"
    if script.exists():
        return [str(script)]
    found = shutil.which("peercash")
    if found is None:
        raise SystemExit("cannot find the peercash command; install the package first")
    return [found]


# -- the floor --------------------------------------------------------------------------------


def floor(sigs: list[tuple[int, bytes, bytes, bytes]]) -> tuple[float, float, int]:
    """Wall and CPU seconds for bare coincurve to verify every signature (one core), and how
    many failed."""
    public_key = coincurve.PublicKey
    xonly_key = coincurve.PublicKeyXOnly
    failed = 0
    cpu = time.process_time()
    start = time.perf_counter()
    for kind, pub, sig, msg in sigs:
        if kind == SIG_ECDSA:
            ok = public_key(pub).verify(sig, msg, hasher=None)
        else:
            ok = xonly_key(pub).verify(sig, msg)
        if not ok:
            failed += 1
    return time.perf_counter() - start, time.process_time() - cpu, failed


# -- memory of a process tree -----------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.peak_main_kb = 0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _descendants(self.pid)
            self.max_processes = max(self.max_processes, len(pids))
            self.peak_kb = max(self.peak_kb, sum(_status_kb(p, "VmRSS:") for p in pids))
            self.peak_main_kb = max(self.peak_main_kb, _status_kb(self.pid, "VmHWM:"))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# -- ours -------------------------------------------------------------------------------------


def run_import(
    blocks_file: Path, datadir: Path, par: int, dbcache: int | None, prefix: Sequence[str] = ()
) -> dict[str, Any]:
    """Run ``peercash import`` in a subprocess; wall time, peak memory and its own timing."""
    cmd = [*prefix, *_peercash_cmd(), "import", str(blocks_file), "--network", "regtest",
           "--datadir", str(datadir), "--assumevalid", "0", "--par", str(par)]  # fmt: skip
    if dbcache is not None:
        cmd += ["--dbcache", str(dbcache)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    mem.stop()
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}):\n{stdout}\n{stderr[-3000:]}")
    m = re.search(r"imported (\d+) blocks in ([0-9.]+)s", stdout)
    return {
        "wall_s": wall,
        # CPU of the process and its waited-for descendants (the script-check workers).
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "reported_s": float(m.group(2)) if m else None,
        "peak_rss_mb": mem.peak_kb / 1024,
        "peak_rss_main_mb": mem.peak_main_kb / 1024,
        "processes": mem.max_processes,
    }


def chain_info(datadir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [*_peercash_cmd(), "chaininfo", "--network", "regtest", "--datadir", str(datadir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def _check_tip(datadir: Path, meta: dict[str, Any]) -> None:
    info = chain_info(datadir)
    if info["height"] != meta["tip_height"] or info["bestblock"] != meta["tip"]:
        raise SystemExit(
            f"import ended at height {info['height']} ({info['bestblock']}), "
            f"expected {meta['tip_height']} ({meta['tip']})"
        )


def write_prefix(blocks_file: Path, out: Path, n: int) -> None:
    """Copy the first ``n`` block records of a ``[magic][len][block]`` file."""
    with blocks_file.open("rb") as src, out.open("wb") as dst:
        for _ in range(n):
            head = src.read(8)
            if len(head) < 8:
                break
            (size,) = struct.unpack("<I", head[4:])
            dst.write(head + src.read(size))


def profile(blocks_file: Path, n: int, workdir: Path, cache: Path) -> Path:
    """cProfile the import of the first ``n`` blocks (``--par 0``); top 25 by own time to stderr."""
    import pstats

    prefix = workdir / f"prefix{n}.dat"
    write_prefix(blocks_file, prefix, n)
    prof = cache / f"import-prefix{n}.prof"
    datadir = workdir / "profile"
    res = run_import(prefix, datadir, 0, None, [sys.executable, "-m", "cProfile", "-o", str(prof)])
    _log(f"profiled import of {n} blocks: {res['wall_s']:.1f}s wall under cProfile")
    stats = pstats.Stats(str(prof), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    return prof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=ChainSpec.blocks)
    parser.add_argument("--txs-per-block", type=int, default=ChainSpec.txs_per_block)
    parser.add_argument("--seed", type=int, default=ChainSpec.seed)
    parser.add_argument("--quick", action="store_true", help="a small chain, for smoke tests")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--gen-workers", type=int, default=2, help="signing processes")
    parser.add_argument("--dbcache", type=int, default=None, help="MB (default: the node's)")
    parser.add_argument("--par", type=int, default=1, help="extra script-check processes")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of floor + import")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also cProfile the import of the first N blocks (--par 0)")  # fmt: skip
    args = parser.parse_args()

    if args.quick:
        spec = QUICK
    elif args.blocks <= REGTEST.coinbase_maturity:
        parser.error(f"--blocks must exceed the coinbase maturity ({REGTEST.coinbase_maturity})")
    else:
        spec = ChainSpec(blocks=args.blocks, txs_per_block=args.txs_per_block, seed=args.seed)
    chain_dir, meta, generated = ensure_chain(spec, args.cache_dir, args.gen_workers, _log)
    blocks_file = chain_dir / "blocks.dat"
    _log(f"chain: {chain_dir} ({'generated' if generated else 'cached'})")

    sigs = load_sigs(chain_dir / "sigs.bin")
    if len(sigs) != meta["signatures"]:
        raise SystemExit(f"sigs.bin holds {len(sigs)} records, meta says {meta['signatures']}")
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="peercash-bench-connect-"))
    # Floor and import alternate, and each round gives a ratio: load that comes and goes on a
    # shared machine then hits both sides of a round alike. The median round is reported.
    rounds: list[tuple[float, float, dict[str, Any]]] = []
    try:
        for k in range(args.repeat):
            _log(f"round {k + 1}: floor, verifying {len(sigs)} signatures with bare coincurve")
            floor_s, floor_cpu_s, floor_failed = floor(sigs)
            if floor_failed:
                raise SystemExit(f"{floor_failed} recorded signatures do not verify")
            _log(f"round {k + 1}: import --par {args.par} into {workdir / 'par'}")
            shutil.rmtree(workdir / "par", ignore_errors=True)
            par = run_import(blocks_file, workdir / "par", args.par, args.dbcache)
            _check_tip(workdir / "par", meta)
            rounds.append((floor_s, floor_cpu_s, par))
        del sigs
        rounds.sort(key=lambda r: r[2]["wall_s"] / r[0])
        floor_s, floor_cpu_s, par = rounds[len(rounds) // 2]
        _log(f"import --par 0 into {workdir / 'single'}")
        single = run_import(blocks_file, workdir / "single", 0, args.dbcache)
        _check_tip(workdir / "single", meta)
        prof = profile(blocks_file, args.profile, workdir, args.cache_dir) if args.profile else None
    finally:
        if args.keep:
            _log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    blocks, txs, inputs = meta["blocks"], meta["txs_including_coinbase"], meta["inputs"]
    t = par["wall_s"]
    result: dict[str, Any] = {
        "benchmark": "connect_blocks",
        "chain": chain_dir.name,
        "blocks": blocks,
        "txs": txs,
        "non_coinbase_txs": meta["txs"],
        "inputs": inputs,
        "inputs_by_kind": meta["inputs_by_kind"],
        "signatures": meta["signatures"],
        "ecdsa_signatures": meta["ecdsa_signatures"],
        "schnorr_signatures": meta["schnorr_signatures"],
        "chain_file_mb": round(blocks_file.stat().st_size / 2**20, 1),
        "generation_s": meta["generation_s"],
        "generated_now": generated,
        "floor_coincurve_s": round(floor_s, 3),
        "floor_cpu_s": round(floor_cpu_s, 3),
        "par": args.par,
        "import_s": round(t, 3),
        "import_reported_s": par["reported_s"],
        "import_cpu_s": round(par["cpu_s"], 3),
        "import_single_core_s": round(single["wall_s"], 3),
        "import_single_core_cpu_s": round(single["cpu_s"], 3),
        "blocks_per_s": round(blocks / t, 1),
        "txs_per_s": round(txs / t),
        "inputs_per_s": round(inputs / t),
        "floor_signatures_per_s": round(meta["signatures"] / floor_s),
        "peak_rss_mb": round(par["peak_rss_mb"], 1),
        "peak_rss_main_process_mb": round(par["peak_rss_main_mb"], 1),
        "peak_rss_single_core_mb": round(single["peak_rss_mb"], 1),
        "dbcache_mb": args.dbcache,
        "ratio_import_to_floor": round(t / floor_s, 3),
        "ratio_rounds": [round(r[2]["wall_s"] / r[0], 3) for r in rounds],
        "ratio_import_single_core_to_floor": round(single["wall_s"] / floor_s, 3),
        "parallel_speedup": round(single["wall_s"] / t, 3),
        # CPU seconds over the floor's: less sensitive to other load on a shared machine.
        "ratio_import_cpu_to_floor_cpu": round(par["cpu_s"] / floor_cpu_s, 3),
        "ratio_import_single_core_cpu_to_floor_cpu": round(single["cpu_s"] / floor_cpu_s, 3),
        # Other load on the machine (1-minute averages) before the floor and after the imports.
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
    }
    if prof is not None:
        result["profile"] = str(prof)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
