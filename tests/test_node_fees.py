"""The node's fee estimation wiring, in-process: ``-acceptstalefeeestimates``, when the node is
current for fee estimation (Core's ``IsCurrentForFeeEstimation``), the hourly and the shutdown
saves of ``fee_estimates.dat``. The whole path through a real process is
``tests/functional/test_fee_estimation.py``."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "chain"))

from blocktools import ChainBuilder

from peercash.config import ConfigError, load_config
from peercash.mempool.feefeed import MAX_FEE_ESTIMATION_TIP_AGE
from peercash.mempool.fees import FEE_ESTIMATES_FILENAME, BlockPolicyEstimator
from peercash.node import Node
from peercash.rpc.services import NodeServices


def test_acceptstalefeeestimates_is_regtest_only(tmp_path: Path) -> None:
    base = {"datadir": tmp_path}
    assert not load_config({**base, "network": "regtest"}).acceptstalefeeestimates
    cfg = load_config({**base, "network": "regtest", "acceptstalefeeestimates": True})
    assert cfg.acceptstalefeeestimates
    (tmp_path / "peercash.conf").write_text("[regtest]\nacceptstalefeeestimates=1\n")
    assert load_config({**base, "network": "regtest"}).acceptstalefeeestimates
    # Core's InitError, with Core's chain names (testnet is "test").
    for network, name in (("main", "main"), ("testnet", "test"), ("testnet4", "testnet4"),
                          ("signet", "signet")):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            load_config({**base, "network": network, "acceptstalefeeestimates": True})
        assert str(info.value) == f"acceptstalefeeestimates is not supported on {name} chain."


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[ChainBuilder]:
    b = ChainBuilder(tmp_path / "chain")
    b.mine(5)
    yield b
    b.close()


def node_over(tmp_path: Path, builder: ChainBuilder) -> Node:
    cfg = load_config({"datadir": tmp_path, "network": "regtest"})
    node = Node(cfg)
    node.chain = builder.chain
    node.services = NodeServices(node.params, cfg, node.datadir, request_stop=lambda: None)
    node.services.set_chain(builder.chain)
    return node


def test_current_for_fee_estimation(tmp_path: Path, builder: ChainBuilder) -> None:
    node = node_over(tmp_path, builder)
    services = node.services
    assert services is not None
    tip_time = builder.chain.tip.header.time
    ibd = [False]
    services.is_initial_block_download = lambda: ibd[0]
    builder.now = tip_time + MAX_FEE_ESTIMATION_TIP_AGE
    assert node._current_for_fee_estimation()
    # In initial block download: not current.
    ibd[0] = True
    assert not node._current_for_fee_estimation()
    ibd[0] = False
    # A tip older than three hours (by the chain's clock): not current.
    builder.now = tip_time + MAX_FEE_ESTIMATION_TIP_AGE + 1
    assert not node._current_for_fee_estimation()
    builder.now = tip_time + 60
    # One header ahead of the tip is still current; two are not.
    first = builder.new_block()
    builder.chain.accept_header(first.header)
    assert builder.chain.best_header is not None and builder.chain.best_header.height == 6
    assert node._current_for_fee_estimation()
    second = builder.new_block(first)
    builder.chain.accept_header(second.header)
    assert not node._current_for_fee_estimation()
    builder.submit(first)
    assert node._current_for_fee_estimation()
    # Without the sync manager's flag, initial block download is judged from the tip's age
    # (24 hours), and the three-hour rule still applies.
    services.is_initial_block_download = None
    assert node._current_for_fee_estimation()
    builder.now = builder.chain.tip.header.time + MAX_FEE_ESTIMATION_TIP_AGE + 1
    assert not node._current_for_fee_estimation()


def test_estimates_are_saved_hourly_and_at_shutdown(
    tmp_path: Path, builder: ChainBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    node = node_over(tmp_path, builder)
    node.datadir.mkdir(parents=True)
    path = node.datadir / FEE_ESTIMATES_FILENAME
    assert node.fee_flush_interval == 3600.0  # Core's FEE_FLUSH_INTERVAL
    est = BlockPolicyEstimator()
    est.process_block(10, [])
    assert est.process_transaction(b"\x01" * 32, 5_000, 10)
    node.fee_estimator = est

    async def run_saver(seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(node._save_fee_estimates_periodically(), seconds)

    node.fee_flush_interval = 0.05
    with caplog.at_level(logging.INFO, logger="peercash.node"):
        asyncio.run(run_saver(0.3))
    assert path.exists()
    assert "Flushed fee estimates to fee_estimates.dat." in caplog.text
    # The hourly save keeps what the pool holds tracked (only shutdown counts it as
    # unconfirmed) and the file restores the same history.
    assert est.tracked_count == 1
    saved = BlockPolicyEstimator.load(path, path.stat().st_mtime)
    assert saved.best_seen_height == 10 and saved.tracked_count == 0
    est.process_block(12, [])
    (_, bucket, _) = est.state()["tracked"][b"\x01" * 32]
    node._save_fee_estimates(shutdown=True)
    assert est.tracked_count == 0
    # Waited 2 blocks, then counted as having left unconfirmed: failures within 1 and 2 blocks
    # on the short horizon, and that is what the file holds.
    loaded = BlockPolicyEstimator.load(path, path.stat().st_mtime)
    assert loaded.best_seen_height == 12
    short = loaded.state()["stats"]["short"]
    assert [row[bucket] for row in short["failed"][:3]] == [1.0, 1.0, 0.0]
    for horizon, stats in est.state()["stats"].items():
        for key in ("feerate_sum", "tx_count", "confirmed", "failed"):
            assert loaded.state()["stats"][horizon][key] == stats[key], (horizon, key)
    # A failed write is logged, never raised.
    path.unlink()
    path.mkdir()
    with caplog.at_level(logging.WARNING, logger="peercash.node"):
        node._save_fee_estimates()
    assert "Failed to write fee estimates to" in caplog.text
