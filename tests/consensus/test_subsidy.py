"""The block subsidy (Core's subsidy_tests.cpp)."""

from __future__ import annotations

import dataclasses

import pytest

from peercash.consensus.params import MAIN, REGTEST, TESTNET4, NetworkParams
from peercash.consensus.primitives import MAX_MONEY
from peercash.consensus.subsidy import INITIAL_SUBSIDY, block_subsidy

COIN = 100_000_000


def custom(interval: int) -> NetworkParams:
    return dataclasses.replace(MAIN, subsidy_halving_interval=interval)


@pytest.mark.parametrize(
    "params", [MAIN, REGTEST, custom(150), custom(1000)], ids=["main", "regtest", "150", "1000"]
)
def test_halvings(params: NetworkParams) -> None:
    # Core's TestBlockSubsidyHalvings: each halving exactly halves, and 64 halvings give zero.
    interval = params.subsidy_halving_interval
    previous = INITIAL_SUBSIDY * 2
    for halvings in range(64):
        subsidy = block_subsidy(halvings * interval, params)
        assert subsidy <= INITIAL_SUBSIDY
        assert subsidy == previous // 2
        # Constant within the halving period.
        assert block_subsidy(halvings * interval + interval - 1, params) == subsidy
        previous = subsidy
    assert block_subsidy(64 * interval, params) == 0
    assert block_subsidy(1000 * interval, params) == 0


def test_mainnet_schedule() -> None:
    assert block_subsidy(0, MAIN) == 50 * COIN
    assert block_subsidy(209_999, MAIN) == 50 * COIN
    assert block_subsidy(210_000, MAIN) == 25 * COIN
    assert block_subsidy(420_000, MAIN) == 1_250_000_000
    assert block_subsidy(840_000, MAIN) == 312_500_000
    # The last satoshi-paying halving is the 32nd.
    assert block_subsidy(32 * 210_000, MAIN) == 1
    assert block_subsidy(33 * 210_000, MAIN) == 0
    assert block_subsidy(0, TESTNET4) == 50 * COIN


def test_regtest_halves_every_150_blocks() -> None:
    assert block_subsidy(149, REGTEST) == 50 * COIN
    assert block_subsidy(150, REGTEST) == 25 * COIN
    assert block_subsidy(300, REGTEST) == 1_250_000_000


def test_total_supply_just_under_21_million() -> None:
    # Core's subsidy_limit_test: sampling every 1000th block (the interval is a multiple of it).
    total = 0
    for height in range(0, 14_000_000, 1000):
        subsidy = block_subsidy(height, MAIN)
        assert subsidy <= 50 * COIN
        total += subsidy * 1000
        assert 0 <= total <= MAX_MONEY
    assert total == 2_099_999_997_690_000
    # The same, summed exactly per halving period.
    exact = sum(block_subsidy(h * 210_000, MAIN) * 210_000 for h in range(64))
    assert exact == total < 21_000_000 * COIN


def test_negative_height_rejected() -> None:
    with pytest.raises(ValueError):
        block_subsidy(-1, MAIN)
