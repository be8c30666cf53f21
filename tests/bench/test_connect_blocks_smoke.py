"""Smoke test of ``bench/connect_blocks.py``: it runs end to end and prints its JSON.

No timing is asserted (a benchmark never fails CI on a slow run); the small ``--quick`` chain is
generated into a temporary cache so the generator is exercised too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "connect_blocks.py"

KEYS = {
    "blocks",
    "txs",
    "inputs",
    "inputs_by_kind",
    "signatures",
    "floor_coincurve_s",
    "import_s",
    "import_single_core_s",
    "blocks_per_s",
    "txs_per_s",
    "inputs_per_s",
    "peak_rss_mb",
    "ratio_import_to_floor",
    "ratio_import_single_core_to_floor",
}


@pytest.mark.slow
def test_connect_blocks_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--cache-dir", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert not KEYS - result.keys(), KEYS - result.keys()
    assert result["benchmark"] == "connect_blocks"
    assert result["blocks"] == 300
    assert result["txs"] > result["blocks"]
    assert result["inputs"] > 0
    assert result["signatures"] >= result["inputs"]
    # Every input type is there in roughly equal shares.
    kinds = result["inputs_by_kind"]
    assert set(kinds) == {"p2pkh", "p2wpkh", "p2sh_multisig", "p2tr_key", "p2tr_script"}
    assert min(kinds.values()) > result["inputs"] // 10
    for key in ("floor_coincurve_s", "import_s", "import_single_core_s", "peak_rss_mb"):
        assert result[key] > 0
