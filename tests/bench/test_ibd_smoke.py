"""Smoke test of ``bench/ibd.py``: import, sync from one and from three peers, and (when bcoin is
already installed on this machine) bcoin syncing from peercash and from bcoin, on the small
``--quick`` chain — which still crosses bcoin's segwit activation (height 432), so bcoin checks
blocks with witnesses. No timing is asserted: a benchmark never fails CI on a slow run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from framework.bcoin import bcoin_installed

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ibd.py"

KEYS = {
    "blocks",
    "txs",
    "inputs_by_kind",
    "import_s",
    "import_blocks_per_s",
    "sync_1peer_s",
    "sync_1peer_blocks_per_s",
    "sync_1peer_peak_rss_mb",
    "sync_1peer_vmhwm_main_mb",
    "sync_3peer_s",
    "sync_3peer_blocks_per_s",
    "sync_3peer_peers",
    "sync_vs_import",
    "sync_3peer_vs_import",
    "sync_vs_import_cpu",
    "goals",
}
BCOIN_KEYS = {
    "bcoin_sync_s",
    "bcoin_blocks_per_s",
    "bcoin_from_peercash_s",
    "bcoin_peak_rss_mb",
    "peercash_vs_bcoin",
}


@pytest.mark.slow
def test_ibd_quick(tmp_path: Path) -> None:
    with_bcoin = bcoin_installed()
    cmd = [sys.executable, str(BENCH), "--quick", "--repeat", "1", "--timeout", "240",
           "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    if not with_bcoin:
        cmd.append("--no-bcoin")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    keys = KEYS | BCOIN_KEYS if with_bcoin else KEYS
    assert not keys - result.keys(), keys - result.keys()
    assert result["benchmark"] == "ibd"
    assert result["blocks"] == 480
    assert result["witness_from"] == 432
    assert result["txs"] > result["blocks"]
    assert result["sync_3peer_peers"] == 3
    assert result["sync_1peer_processes"] == 2  # the node and its one script worker (--par 1)
    # Witness spends come after bcoin's segwit activation, so every input type is there.
    assert all(n > 0 for n in result["inputs_by_kind"].values())
    for key in ("import_s", "sync_1peer_s", "sync_3peer_s", "sync_1peer_peak_rss_mb"):
        assert result[key] > 0
    if with_bcoin:
        assert result["bcoin_sync_s"] > 0 and result["peercash_vs_bcoin"] > 0
