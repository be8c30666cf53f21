"""Smoke test of ``bench/mempool.py --quick``: it generates its small signed set into a temporary
cache, accepts every transaction, builds templates and relays across two real nodes, and prints
the JSON keys it promises. No timing is asserted: a benchmark never fails CI on a slow run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "mempool.py"

KEYS = {
    "txs",
    "chain_txs",
    "max_chain_depth",
    "inputs_by_kind",
    "signatures",
    "floor_s",
    "floor_tx_per_s",
    "accept_s",
    "accept_tx_per_s",
    "accept_ratio_to_floor",
    "accept_ratio_rounds",
    "gbt_pool_txs",
    "gbt_s",
    "gbt_rounds_s",
    "gbt_first_call_s",
    "gbt_selected_txs",
    "relay_trickle",
}


@pytest.mark.slow
def test_mempool_bench_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--cache-dir", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert not KEYS - result.keys(), KEYS - result.keys()
    assert result["benchmark"] == "mempool"
    assert result["generated_now"] is True
    assert result["txs"] == 1_500
    # Chains reach the planned depth, and about half of the transactions are chain links.
    assert result["max_chain_depth"] == 25
    assert 0.3 < result["chain_txs"] / result["txs"] < 0.7
    kinds = result["inputs_by_kind"]
    assert set(kinds) == {"p2pkh", "p2wpkh", "p2tr_key"}
    assert min(kinds.values()) > result["inputs"] // 10
    assert result["signatures"] == result["inputs"]
    assert len(result["accept_ratio_rounds"]) == 1
    assert result["gbt_pool_txs"] == 3_000
    assert len(result["gbt_rounds_s"]) == 2
    # The quick pool fits one block whole.
    assert result["gbt_selected_txs"] == 3_000
    relay = result["relay_trickle"]
    assert (relay["nodes"], relay["hops"], relay["txs"]) == (2, 1, 2)
    assert len(relay["rounds_s"]) == 2 and len(relay["median_arrival_by_hops_s"]) == 1
    for key in ("floor_s", "accept_s", "gbt_s", "gbt_first_call_s"):
        assert result[key] > 0
    assert relay["worst_s"] >= relay["median_s"] > 0
