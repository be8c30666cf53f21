"""Smoke test of ``bench/cluster.py --quick``: it runs and prints the JSON keys it promises. No
timing is asserted: a benchmark never fails CI on a slow run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cluster.py"


def test_cluster_bench_quick() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(out.stdout)
    assert figures["clusters"] == 4
    assert figures["cluster_txs"] == 64
    assert set(figures["linearize_64"]) == {"median_ms", "p95_ms", "max_ms"}
    assert set(figures["pool_add_us"]) == {"independent", "chains_25", "trees_64"}
    assert figures["pool_walk_txs"] == 2_000
    assert 0 <= figures["equal_to_1000x_budget_share"] <= 1
