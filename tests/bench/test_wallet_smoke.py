"""Smoke test of ``bench/wallet.py --quick``: it signs a 20-input spend through the wallet's
fill/sign path and rescans 60 blocks from a real block store, and prints the JSON keys it
promises. No timing is asserted: a benchmark never fails CI on a slow run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "wallet.py"


@pytest.mark.slow
def test_wallet_bench_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["benchmark"] == "wallet"
    assert (result["sign_inputs"], result["rescan_blocks"]) == (20, 60)
    # 59 paying blocks, 58 of them also spending the previous block's wallet coin
    assert result["rescan_wallet_txs"] == 59 + 58
    assert min(result[k] for k in ("sign_s", "sign_floor_s", "rescan_s", "rescan_floor_s")) > 0
    assert result["sign_ratio_to_floor"] == result["sign_floor_s"] / result["sign_s"]
    assert result["rescan_ratio_to_floor"] == result["rescan_floor_s"] / result["rescan_s"]
