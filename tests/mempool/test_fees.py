"""Fee estimation (``mempool.fees``): synthetic chains where transactions at known feerates
confirm after known delays, fed through the estimator's events, and the estimates it gives for
each target and horizon, down to the bucket ranges; decay; the two ``estimatesmartfee`` modes;
the file; Core's JSON shapes.

One scenario is Core's own (``src/test/policyestimator_tests.cpp``, ``BlockPolicyEstimates``:
ten feerates, higher ones mined more often), rebuilt here from its description with the same
checks. Bucket bounds are recomputed here from Core's published constants (100 sat/kvB, ×1.05,
up to 10^7).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.mempool.fees import (
    FEE_ESTIMATES_FILENAME,
    FILE_MAGIC,
    INF_FEERATE,
    INVALID_ESTIMATE_MODE,
    RAW_FEE_ERROR,
    SMART_FEE_ERROR,
    BlockPolicyEstimator,
    BucketStats,
    FeeEstimateMode,
    FeeEstimatesFileError,
    FeeFilterRounder,
    FeeParamError,
    FeeReason,
    Horizon,
    bucket_boundaries,
    conf_target_error,
    estimaterawfee,
    estimatesmartfee,
    fee_mode_from_string,
    fee_per_kvb,
    raw_fee_json,
    smart_fee_json,
)
from peercash.rpc.jsonrpc import dumps

# -- helpers -------------------------------------------------------------------------------------


def expected_bounds() -> list[float]:
    """Core's bucket bounds from its constants, computed independently of the module."""
    out = []
    b = 100.0
    while b <= 1e7:
        out.append(b)
        b *= 1.05
    return [*out, 1e99]


BOUNDS = expected_bounds()


def bucket_of(feerate: float) -> tuple[float, float]:
    """(bound below, bound above) of the bucket holding ``feerate``."""
    for i, b in enumerate(BOUNDS):
        if feerate <= b:
            return (BOUNDS[i - 1] if i else 0.0, b)
    raise AssertionError("unreachable")


class Chain:
    """Drives an estimator like a node would: each block, new transactions enter at the tip
    height, and the block at the next height mines those whose delay has come."""

    def __init__(self, est: BlockPolicyEstimator | None = None, start: int = 0) -> None:
        self.est = est or BlockPolicyEstimator()
        self.height = start
        self.serial = 0
        self.due: dict[int, list[bytes]] = {}
        if start:
            self.est.process_block(start, [])

    def txid(self) -> bytes:
        self.serial += 1
        return self.serial.to_bytes(32, "little")

    def add(self, feerate: int, delay: int | None, count: int = 1) -> list[bytes]:
        """``count`` transactions at ``feerate`` entering now, mined ``delay`` blocks later
        (never, if ``delay`` is None)."""
        out = []
        for _ in range(count):
            t = self.txid()
            assert self.est.process_transaction(t, feerate, self.height)
            if delay is not None:
                self.due.setdefault(self.height + delay, []).append(t)
            out.append(t)
        return out

    def mine(self, extra: Iterable[bytes] = ()) -> int:
        self.height += 1
        txids = [*self.due.pop(self.height, []), *extra]
        return self.est.process_block(self.height, txids)


# Four feerate classes (sat/kvB, blocks to confirm, transactions per block).
CLASSES = [(50_000, 1, 3), (20_000, 2, 3), (10_000, 5, 3), (2_000, 20, 3)]


def steady_chain(blocks: int = 300, classes: list[tuple[int, int, int]] = CLASSES) -> Chain:
    c = Chain(start=1)
    for _ in range(blocks - 1):
        for feerate, delay, n in classes:
            c.add(feerate, delay, n)
        c.mine()
    for feerate, delay, n in classes:
        c.add(feerate, delay, n)
    return c


@pytest.fixture(scope="module")
def steady() -> BlockPolicyEstimator:
    return steady_chain().est


# -- constants and buckets -------------------------------------------------------------------


def test_bucket_bounds_are_cores() -> None:
    b = bucket_boundaries()
    assert list(b) == BOUNDS
    assert len(b) == 237
    assert b[:3] == (100.0, 105.0, 110.25)
    assert b[-2] == pytest.approx(9538614.152175432, rel=1e-15)
    assert b[-2] * 1.05 > 1e7
    assert b[-1] == INF_FEERATE == 1e99
    assert all(x < y for x, y in itertools.pairwise(b))
    assert bucket_of(20_000) == (
        pytest.approx(19428.724927013107),
        pytest.approx(20400.161173363762),
    )


@given(st.integers(min_value=0, max_value=10**10))
def test_every_feerate_lands_in_the_bucket_whose_range_holds_it(feerate: int) -> None:
    est = BlockPolicyEstimator()
    est.process_transaction(b"\x01" * 32, feerate, 0)
    # The one unconfirmed tx shows as the failing range's in-mempool count; the range is the
    # whole table (nothing had enough data), so read the bucket from the state instead.
    row = est.state()["stats"]["short"]["unconfirmed"][0]
    (index,) = [i for i, n in enumerate(row) if n]
    assert row[index] == 1
    low = BOUNDS[index - 1] if index else -math.inf
    assert low < feerate <= BOUNDS[index]


def test_highest_targets_and_fee_per_kvb() -> None:
    est = BlockPolicyEstimator()
    assert [est.highest_target_tracked(h) for h in Horizon] == [12, 48, 1008]
    assert fee_per_kvb(2000, 189) == 10582  # 2,000,000 / 189 rounded down
    assert fee_per_kvb(141, 141) == 1000
    assert fee_per_kvb(5, 0) == 0


# -- tracking ------------------------------------------------------------------------------------


def test_only_transactions_entering_at_the_processed_tip_are_tracked() -> None:
    est = BlockPolicyEstimator()
    assert est.process_block(5, []) == 0
    assert est.best_seen_height == 5
    assert est.process_transaction(b"a" * 32, 1000, 4) is False  # behind the estimator
    assert est.process_transaction(b"b" * 32, 1000, 6) is False  # ahead of it
    assert est.process_transaction(b"c" * 32, 1000, 5, valid_for_estimation=False) is False
    assert est.untracked_since_block == 1
    assert est.process_transaction(b"d" * 32, 1000, 5) is True
    assert est.process_transaction(b"d" * 32, 1000, 5) is False  # already tracked
    assert est.tracked_count == 1
    assert est.remove_tx(b"c" * 32) is False
    assert est.remove_tx(b"d" * 32) is True
    assert est.tracked_count == 0
    # A block at or below the best height (reorg, side chain) changes nothing.
    before = est.state()
    assert est.process_block(5, [b"d" * 32]) == 0
    assert est.process_block(3, []) == 0
    assert est.state() == before


def test_a_block_counts_only_tracked_transactions_and_sets_the_first_recorded_height() -> None:
    c = Chain(start=10)
    mine_me = c.add(1000, None, 2)
    assert c.mine([b"z" * 32]) == 0  # nothing tracked in it
    assert c.est.first_recorded_height == 0
    assert c.mine(mine_me) == 2
    assert c.est.first_recorded_height == 12
    assert c.est.block_span() == 0
    c.mine()
    assert c.est.block_span() == 1


def test_leaving_unmined_counts_as_a_failure_per_whole_period_waited() -> None:
    c = Chain(start=100)
    (t,) = c.add(5000, None)
    for _ in range(5):
        c.mine()
    assert c.est.remove_tx(t)
    st_ = c.est.state()["stats"]
    col = bucket_index(5000)
    # waited 5 blocks: short (scale 1) fails periods 1..5, medium (scale 2) periods 1..2,
    # long (scale 24) none.
    assert [r[col] for r in st_["short"]["failed"]] == [1.0] * 5 + [0.0] * 7
    assert [r[col] for r in st_["medium"]["failed"]] == [1.0] * 2 + [0.0] * 22
    assert all(r[col] == 0.0 for r in st_["long"]["failed"])
    # and it no longer shows as unconfirmed anywhere
    for s in st_.values():
        assert sum(map(sum, s["unconfirmed"])) + sum(s["old_unconfirmed"]) == 0


def bucket_index(feerate: float) -> int:
    return next(i for i, b in enumerate(BOUNDS) if feerate <= b)


def test_flush_unconfirmed_records_every_tracked_tx_as_left_unmined() -> None:
    c = Chain(start=50)
    c.add(3000, None, 4)
    c.mine()
    c.mine()
    assert c.est.flush_unconfirmed() == 4
    assert c.est.tracked_count == 0
    col = bucket_index(3000)
    assert [r[col] for r in c.est.state()["stats"]["short"]["failed"][:3]] == [4.0, 4.0, 0.0]


# -- convergence on a synthetic chain ----------------------------------------------------------


@pytest.mark.parametrize(
    ("horizon", "expected"),
    [
        # Short (scale 1): the cheapest class whose delay is within the target.
        (Horizon.SHORT, {1: 50_000, 2: 20_000, 4: 20_000, 5: 10_000, 12: 10_000}),
        # Medium (scale 2): a target counts whole 2-block periods, so target 1 is judged on
        # confirmations within 2 blocks (20,000 passes) and 19 on those within 20.
        (Horizon.MEDIUM, {1: 20_000, 4: 20_000, 5: 10_000, 18: 10_000, 19: 2_000, 48: 2_000}),
        # Long (scale 24): confirmations within 24 blocks; at target 1 the 2,000 class fails
        # only because 57 of its transactions have waited 1 block or more (58/(764+57) < 95%).
        (Horizon.LONG, {1: 10_000, 24: 2_000, 25: 2_000, 1008: 2_000}),
    ],
)
def test_raw_estimates_converge_to_the_class_that_confirms_in_time(
    steady: BlockPolicyEstimator, horizon: Horizon, expected: dict[int, int]
) -> None:
    got = {t: steady.estimate_raw_fee(t, 0.95, horizon).feerate for t in expected}
    assert got == expected


def test_raw_estimate_reports_cores_bucket_ranges(steady: BlockPolicyEstimator) -> None:
    # Target 2 on the short horizon: 50,000's group is everything from its bucket up (passes),
    # the next group from there down to 20,000's bucket passes and is the answer; the next one,
    # down to 10,000's bucket, fails (none of it confirmed within 2 blocks).
    raw = steady.estimate_raw_fee(2, 0.95, Horizon.SHORT)
    assert raw.feerate == 20_000
    assert raw.errors == ()
    res = raw.result
    assert (res.decay, res.scale) == (0.962, 1)
    assert (res.pass_bucket.start, res.pass_bucket.end) == (
        bucket_of(20_000)[0],
        bucket_of(50_000)[0],
    )
    assert (res.fail_bucket.start, res.fail_bucket.end) == (
        bucket_of(10_000)[0],
        bucket_of(20_000)[0],
    )
    assert res.pass_bucket.within_target == res.pass_bucket.total_confirmed
    assert res.pass_bucket.in_mempool == 0 and res.pass_bucket.left_mempool == 0
    assert res.fail_bucket.within_target == 0
    # 10,000's transactions that have waited 2..4 blocks: 3 per block.
    assert res.fail_bucket.in_mempool == 9
    # Decayed count of 3 txs a block over 295 confirmed blocks: 3 * (1 - d^295) / (1 - d)
    assert res.fail_bucket.total_confirmed == pytest.approx(3 * (1 - 0.962**295) / 0.038)

    top = steady.estimate_raw_fee(1, 0.95, Horizon.SHORT)
    assert (top.result.pass_bucket.start, top.result.pass_bucket.end) == (
        bucket_of(50_000)[0],
        1e99,
    )


def test_smart_estimates_for_each_target(steady: BlockPolicyEstimator) -> None:
    # 300 blocks, first confirmations at height 2: usable targets up to (300 - 2) // 2 = 149.
    assert steady.max_usable_estimate() == 149
    got = {t: steady.estimate_smart_fee(t) for t in (1, 2, 3, 4, 9, 10, 37, 40, 149, 1008)}
    assert {t: (e.feerate, e.blocks) for t, e in got.items()} == {
        1: (50_000, 2),  # target 1 is answered for 2
        2: (50_000, 2),  # 60% within 1 block: only 50,000
        3: (50_000, 3),
        4: (20_000, 4),  # 60% within 2
        9: (20_000, 9),  # 60% within 4
        10: (10_000, 10),  # 60% within 5
        37: (10_000, 37),  # 60% within 18 (medium horizon at 18: 10,000)
        40: (2_000, 40),  # 60% within 20
        149: (2_000, 149),
        1008: (2_000, 149),  # clamped to what the data supports
    }
    assert all(e.errors == () for e in got.values())
    assert got[4].reason is FeeReason.HALF_ESTIMATE
    assert got[4].desired_target == 4 and got[1008].desired_target == 1008
    assert got[4].best_height == 300
    # Steady fees: both modes agree.
    assert [steady.estimate_smart_fee(t, True).feerate for t in (2, 4, 10, 40)] == [
        50_000,
        20_000,
        10_000,
        2_000,
    ]


def test_cores_block_policy_estimates_scenario() -> None:
    """Core's ``BlockPolicyEstimates`` unit test: 10 feerates, 4 txs each a block; the highest
    is mined every block, the next in 9 of 10 blocks, … the lowest in 1 of 10. ``estimateFee(i)``
    is the medium horizon at 95 %. Same checks, same tolerance (100 sat/kvB)."""
    est = BlockPolicyEstimator()
    vsize = 189  # Core's template: one input with a 128-byte scriptSig, one empty output
    base_rate = fee_per_kvb(2000, vsize)
    fee_rates = [fee_per_kvb(2000 * (j + 1), vsize) for j in range(10)]
    delta = 100
    pending: list[list[bytes]] = [[] for _ in range(10)]
    serial = 0

    def estimate_fee(target: int) -> int:
        if target <= 1:
            return 0
        return est.estimate_raw_fee(target, 0.95, Horizon.MEDIUM).feerate or 0

    def add_all(height: int) -> list[bytes]:
        nonlocal serial
        added = []
        for j in range(10):
            for _ in range(4):
                serial += 1
                t = serial.to_bytes(32, "big")
                est.process_transaction(t, fee_rates[j], height)
                pending[j].append(t)
                added.append(t)
        return added

    blocknum = 0
    while blocknum < 200:
        add_all(blocknum)
        block: list[bytes] = []
        for h in range(blocknum % 10 + 1):
            block += pending[9 - h]
            pending[9 - h] = []
        blocknum += 1
        est.process_block(blocknum, block)
        if blocknum == 3:
            assert estimate_fee(1) == 0
            assert 9 * base_rate - delta < estimate_fee(2) < 9 * base_rate + delta
    orig = [estimate_fee(i) for i in range(1, 49)]
    checked = 0
    for i in range(1, 10):
        if i > 2:
            assert orig[i - 1] <= orig[i - 2]
        if i % 2 == 0:
            mult = 11 - i
            assert mult * base_rate - delta < orig[i - 1] < mult * base_rate + delta
            checked += 1
    assert checked == 4

    while blocknum < 250:  # 50 empty blocks: the estimates hold
        blocknum += 1
        est.process_block(blocknum, [])
    assert estimate_fee(1) == 0
    for i in range(2, 10):
        assert orig[i - 1] - delta < estimate_fee(i) < orig[i - 1] + delta

    while blocknum < 265:  # 15 blocks of transactions that are not mined: estimates rise
        add_all(blocknum)
        blocknum += 1
        est.process_block(blocknum, [])
    for i in range(1, 10):
        assert estimate_fee(i) == 0 or estimate_fee(i) > orig[i - 1] - delta

    everything = [t for row in pending for t in row]
    assert est.process_block(266, everything) == len(everything)
    assert estimate_fee(1) == 0
    for i in range(2, 10):
        assert estimate_fee(i) == 0 or estimate_fee(i) > orig[i - 1] - delta

    while blocknum < 665:  # 400 blocks that mine everything at once: estimates fall
        block = add_all(blocknum)  # the first of these enters at 265, behind: not tracked
        blocknum += 1
        est.process_block(blocknum, block)
    assert estimate_fee(1) == 0
    for i in range(2, 9):
        assert estimate_fee(i) < orig[i - 1] - delta


# -- decay ---------------------------------------------------------------------------------------


def test_history_decays_by_each_horizons_factor_per_block() -> None:
    c = steady_chain(120, [(8_000, 1, 2)])
    c.mine()  # the last transactions confirm; from now on, empty blocks only
    before = {h: c.est.estimate_raw_fee(1, 0.5, h).result.pass_bucket for h in Horizon}
    c.mine()
    after = {h: c.est.estimate_raw_fee(1, 0.5, h).result.pass_bucket for h in Horizon}
    for h, decay in ((Horizon.SHORT, 0.962), (Horizon.MEDIUM, 0.9952), (Horizon.LONG, 0.99931)):
        assert after[h].total_confirmed == pytest.approx(before[h].total_confirmed * decay)
        assert after[h].within_target == pytest.approx(before[h].within_target * decay)


def test_short_horizon_forgets_first_and_the_estimate_moves_to_longer_ones() -> None:
    c = steady_chain(120, [(8_000, 1, 2)])
    c.mine()
    # The short horizon needs 0.5 / (1 - 0.962) ≈ 13.16 decayed transactions in a group. Its
    # count is the same sum of decayed ones the estimator keeps; find when it drops below.
    count = 0.0
    for _ in range(120):  # confirmations at heights 2..121, 2 each: decay, then count them
        count = count * 0.962 + 1 + 1
    needed = 0.5 / (1 - 0.962)
    empty = 0
    while count >= needed:
        count *= 0.962
        empty += 1
    assert empty == 36  # ln((2 / 0.038) / 13.16) / -ln(0.962) ≈ 35.8
    for _ in range(empty - 1):
        c.mine()
    assert c.est.estimate_raw_fee(1, 0.95, Horizon.SHORT).feerate == 8_000
    c.mine()
    short = c.est.estimate_raw_fee(1, 0.95, Horizon.SHORT)
    assert short.feerate is None
    assert short.errors == (RAW_FEE_ERROR,)
    assert short.result.pass_bucket == BucketStats()
    assert (short.result.fail_bucket.start, short.result.fail_bucket.end) == (0.0, 1e99)
    # The medium horizon still remembers (half-life 144 blocks).
    assert c.est.estimate_raw_fee(1, 0.95, Horizon.MEDIUM).feerate == 8_000
    assert c.est.estimate_smart_fee(2).feerate == 8_000


def test_economical_follows_a_fee_drop_conservative_remembers() -> None:
    # 200 blocks where 40,000 confirms at once and 4,000 never does (it leaves the pool after
    # 30 blocks); then the fees drop: 120 blocks where 4,000 confirms at once too. The short
    # horizon (half-life 18 blocks) has forgotten the failures, the medium and long have not.
    c = Chain(start=1)
    stuck: list[tuple[int, bytes]] = []
    for _ in range(200):
        c.add(40_000, 1, 4)
        stuck += [(c.height, t) for t in c.add(4_000, None, 4)]
        c.mine()
        while stuck and stuck[0][0] <= c.height - 30:
            assert c.est.remove_tx(stuck.pop(0)[1])
    for _, t in stuck:
        assert c.est.remove_tx(t)
    for _ in range(120):
        c.add(40_000, 1, 4)
        c.add(4_000, 1, 4)
        c.mine()
    checked = 0
    for t in (2, 3, 4, 5, 6, 12):
        eco = c.est.estimate_smart_fee(t, conservative=False)
        cons = c.est.estimate_smart_fee(t, conservative=True)
        assert (eco.feerate, cons.feerate) == (4_000, 40_000), t
        # Up to target 6 the conservative check on the longer horizons decides; beyond, twice
        # the target is on the medium horizon already, where economical asks the short one.
        assert cons.reason is (FeeReason.CONSERVATIVE if t <= 6 else FeeReason.DOUBLE_ESTIMATE)
        assert eco.blocks == cons.blocks == t
        checked += 1
    assert checked == 6
    # At 24, twice the target is 48 blocks: the stuck transactions left after 30, too early to
    # count as failures at that target on any horizon, so both modes see only the fast ones.
    assert c.est.estimate_smart_fee(24, True).feerate == 4_000


def test_economical_falls_back_to_the_longer_horizons_when_the_short_one_has_nothing() -> None:
    c = Chain(start=1)
    for _ in range(30):
        c.add(6_000, 1, 2)
        c.mine()
    for _ in range(60):
        c.mine()
    assert c.est.estimate_raw_fee(2, 0.6, Horizon.SHORT).feerate is None  # decayed below 13.2
    eco = c.est.estimate_smart_fee(2)
    assert (eco.feerate, eco.blocks, eco.reason) == (6_000, 2, FeeReason.CONSERVATIVE)
    assert eco.result.decay == 0.9952  # the medium horizon's answer: 4 blocks at 95 %
    assert c.est.estimate_raw_fee(4, 0.95, Horizon.LONG).feerate is None  # 60 txs < 145 needed


# -- errors --------------------------------------------------------------------------------------


def test_no_data_gives_cores_errors() -> None:
    est = BlockPolicyEstimator()
    e = est.estimate_smart_fee(6)
    assert (e.feerate, e.blocks, e.errors) == (None, 0, (SMART_FEE_ERROR,))
    assert smart_fee_json(e) == {"errors": ["Insufficient data or no feerate found"], "blocks": 0}
    for bad in (0, -3, 1009):
        e = est.estimate_smart_fee(bad)
        assert (e.feerate, e.blocks, e.errors) == (None, bad, (SMART_FEE_ERROR,))
    raw = est.estimate_raw_fees(6)
    assert [r.horizon for r in raw] == [Horizon.SHORT, Horizon.MEDIUM, Horizon.LONG]
    assert [r.horizon for r in est.estimate_raw_fees(13)] == [Horizon.MEDIUM, Horizon.LONG]
    assert [r.horizon for r in est.estimate_raw_fees(49)] == [Horizon.LONG]
    empty_fail = {
        "startrange": 0,
        "endrange": 1e99,
        "withintarget": 0,
        "totalconfirmed": 0,
        "inmempool": 0,
        "leftmempool": 0,
    }
    assert raw_fee_json(raw) == {
        "short": {
            "decay": Decimal("0.962"),
            "scale": 1,
            "fail": empty_fail,
            "errors": [RAW_FEE_ERROR],
        },
        "medium": {
            "decay": Decimal("0.9952"),
            "scale": 2,
            "fail": empty_fail,
            "errors": [RAW_FEE_ERROR],
        },
        "long": {
            "decay": Decimal("0.99931"),
            "scale": 24,
            "fail": empty_fail,
            "errors": [RAW_FEE_ERROR],
        },
    }
    assert dumps(raw_fee_json(raw[:1])) == (
        '{"short":{"decay":0.962,"scale":1,"fail":{"startrange":0,"endrange":1e+99,'
        '"withintarget":0,"totalconfirmed":0,"inmempool":0,"leftmempool":0},'
        '"errors":["Insufficient data or no feerate found which meets threshold"]}}'
    )
    # A target the horizon does not track, or a threshold above 1: nothing was computed.
    for raw1 in (
        est.estimate_raw_fee(13, 0.95, Horizon.SHORT),
        est.estimate_raw_fee(0, 0.95, Horizon.LONG),
        est.estimate_raw_fee(2, 1.01, Horizon.MEDIUM),
    ):
        assert raw1.feerate is None
        assert (raw1.result.decay, raw1.result.scale) == (0.0, 0)


def test_rpc_argument_helpers() -> None:
    assert conf_target_error(1, 1008) is None
    assert conf_target_error(1008, 1008) is None
    assert conf_target_error(0, 1008) == "Invalid conf_target, must be between 1 and 1008"
    assert conf_target_error(1009, 1008) == "Invalid conf_target, must be between 1 and 1008"
    assert fee_mode_from_string("ECONOMICAL") is FeeEstimateMode.ECONOMICAL
    assert fee_mode_from_string("Conservative") is FeeEstimateMode.CONSERVATIVE
    assert fee_mode_from_string("unset") is FeeEstimateMode.UNSET
    assert fee_mode_from_string("fast") is None
    assert INVALID_ESTIMATE_MODE == (
        'Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative"'
    )


def test_long_horizon_below_height_1008_counts_waiting_rows_as_core_does() -> None:
    """Core finds the rows of transactions that waited ``n`` blocks by unsigned subtraction
    ``(height - n) % rows``; below the ring's length the index wraps modulo 2^32 and some
    rows are counted twice. One tx entered at height 1, tip at 10, target 1."""
    c = Chain(start=1)
    c.add(1000, None)
    for _ in range(9):
        c.mine()
    inmem = {r.horizon: r.result.fail_bucket.in_mempool for r in c.est.estimate_raw_fees(1, 0.95)}
    # short: 2^32 % 12 = 4, row 1 is reached once; medium: 2^32 % 48 = 16, twice (waited 9
    # and 25); long: 2^32 % 1008 = 256, twice (waited 9 and 265).
    assert inmem == {Horizon.SHORT: 1, Horizon.MEDIUM: 2, Horizon.LONG: 2}


# -- JSON ---------------------------------------------------------------------------------------


def test_smart_fee_json_applies_the_minimums_and_units(steady: BlockPolicyEstimator) -> None:
    e = steady.estimate_smart_fee(10)
    assert dumps(smart_fee_json(e)) == '{"feerate":0.00010000,"blocks":10}'
    assert smart_fee_json(e, min_mempool_feerate=12_345) == {
        "feerate": Decimal("0.00012345"),
        "blocks": 10,
    }
    assert smart_fee_json(e, min_relay_feerate=20_000)["feerate"] == Decimal("0.00020000")
    assert dumps(smart_fee_json(e, sat_per_vb=True)) == '{"feerate":10.000,"blocks":10}'


def test_raw_fee_json_shape_on_success(steady: BlockPolicyEstimator) -> None:
    out = raw_fee_json(steady.estimate_raw_fees(2, 0.95))
    assert list(out) == ["short", "medium", "long"]
    short = out["short"]
    assert list(short) == ["feerate", "decay", "scale", "pass", "fail"]
    assert short["feerate"] == Decimal("0.00020000")
    assert short["pass"]["startrange"] == 19429  # round(19428.72…)
    assert short["pass"]["endrange"] == 49095  # round(49095.42…)
    assert short["fail"]["startrange"] == 9813
    assert short["fail"]["inmempool"] == 9
    # counts are rounded to 2 decimals, and printed as Core's UniValue prints doubles
    within = short["pass"]["withintarget"]
    assert isinstance(within, Decimal) and within.as_tuple().exponent >= -2
    text = dumps(out)
    assert '"decay":0.962,"scale":1,' in text and '"decay":0.99931,"scale":24,' in text
    # Every range passing (all data in the lowest bucket): no "fail" member.
    one = BlockPolicyEstimator()
    c = Chain(one, start=1)
    for _ in range(40):
        c.add(100, 1, 2)
        c.mine()
    only = raw_fee_json([one.estimate_raw_fee(1, 0.95, Horizon.SHORT)])["short"]
    assert list(only) == ["feerate", "decay", "scale", "pass"]
    assert only["feerate"] == Decimal("0.00000100")
    assert (only["pass"]["startrange"], only["pass"]["endrange"]) == (0, 1e99)


def test_numbers_are_rounded_and_printed_as_cores_univalue() -> None:
    from peercash.mempool.fees import _c_round, _llround, _univalue_number

    assert _llround(2.5) == 3 and _llround(3.5) == 4 and _llround(2.4999) == 2  # not banker's
    assert _c_round(0.125, 100) == Decimal("0.13")  # round(12.5) / 100, halves away from zero
    assert _c_round(19428.5) == 19429
    assert _c_round(-1.0) == -1
    assert _c_round(1e99) == 1e99
    assert dumps([_univalue_number(x) for x in (0.962, 10400.0, 1e99, 13.16, 0.1 + 0.2)]) == (
        "[0.962,10400,1e+99,13.16,0.3]"  # %.16g, as Core's UniValue writes doubles
    )


def test_whole_rpc_calls(steady: BlockPolicyEstimator) -> None:
    assert estimatesmartfee(steady, 10) == {"feerate": Decimal("0.00010000"), "blocks": 10}
    assert estimatesmartfee(steady, 10, "CONSERVATIVE", min_relay_feerate=11_000) == {
        "feerate": Decimal("0.00011000"),
        "blocks": 10,
    }
    assert estimatesmartfee(steady, 10, "unset") == estimatesmartfee(steady, 10, "economical")
    raw = estimaterawfee(steady, 13)
    assert list(raw) == ["medium", "long"]
    assert raw["medium"]["feerate"] == Decimal("0.00010000")
    assert estimaterawfee(steady, 13, 0.95) == raw
    failures = []
    for call in (
        lambda: estimatesmartfee(steady, 0),
        lambda: estimatesmartfee(steady, 1009),
        lambda: estimatesmartfee(steady, 2, "fast"),
        lambda: estimaterawfee(steady, 1009),
        lambda: estimaterawfee(steady, 2, 1.5),
        lambda: estimaterawfee(steady, 2, -0.1),
    ):
        with pytest.raises(FeeParamError) as info:
            call()
        assert info.value.code == -8
        failures.append(str(info.value))
    assert failures == [
        "Invalid conf_target, must be between 1 and 1008",
        "Invalid conf_target, must be between 1 and 1008",
        INVALID_ESTIMATE_MODE,
        "Invalid conf_target, must be between 1 and 1008",
        "Invalid threshold",
        "Invalid threshold",
    ]


# -- persistence ---------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def _stamp(path: Path, when: float = NOW) -> Path:
    """Set the file's modification time: its age is judged by it, as in Core."""
    os.utime(path, (when, when))
    return path


def test_save_and_load_round_trip(tmp_path: Path, steady: BlockPolicyEstimator) -> None:
    path = tmp_path / FEE_ESTIMATES_FILENAME
    steady.save(path, NOW)
    assert [p.name for p in tmp_path.iterdir()] == [FEE_ESTIMATES_FILENAME]  # no temp left
    data = path.read_bytes()
    assert data.startswith(FILE_MAGIC)
    loaded = BlockPolicyEstimator.load(_stamp(path), NOW + 3600)
    assert loaded.best_seen_height == 300
    assert (loaded.historical_first, loaded.historical_best) == (2, 300)
    assert loaded.max_usable_estimate() == 149
    assert loaded.first_recorded_height == 0 and loaded.tracked_count == 0
    s1, s2 = steady.state()["stats"], loaded.state()["stats"]
    for h in ("short", "medium", "long"):
        for key in ("decay", "scale", "feerate_sum", "tx_count", "confirmed", "failed"):
            assert s1[h][key] == s2[h][key], (h, key)
    # The pool is not saved (only the history); here the waiting transactions change no answer.
    for t in (2, 4, 10, 40, 149):
        assert loaded.estimate_smart_fee(t).feerate == steady.estimate_smart_fee(t).feerate
    # Saving what was loaded gives the same bytes: the data range is carried as history.
    assert loaded.to_bytes(NOW) == data
    assert BlockPolicyEstimator.from_bytes(data, NOW).to_bytes(NOW) == data


def test_loaded_estimator_continues_like_the_original(tmp_path: Path) -> None:
    a = steady_chain(100).est
    a.flush_unconfirmed()
    path = tmp_path / "f.dat"
    a.flush(path, NOW)  # flush again is harmless: nothing is tracked
    b = BlockPolicyEstimator.load(_stamp(path), NOW)
    ca, cb = Chain(a, 0), Chain(b, 0)
    ca.height = cb.height = 100
    for _ in range(30):
        for c in (ca, cb):
            c.add(9_000, 2, 2)
            c.mine()
    for t in (2, 5, 20, 48):
        assert a.estimate_smart_fee(t) == b.estimate_smart_fee(t)
        assert a.estimate_smart_fee(t, True) == b.estimate_smart_fee(t, True)
    # The usable span differs as in Core: the original counts from its first confirmation
    # (height 2), the loaded one from the saved range (2..100, 98 blocks) until its own span
    # (from its first confirmation, 102) grows longer.
    assert (a.max_usable_estimate(), b.max_usable_estimate()) == ((130 - 2) // 2, 98 // 2)
    assert (a.estimate_smart_fee(60).blocks, b.estimate_smart_fee(60).blocks) == (60, 49)
    for h in Horizon:
        assert a.estimate_raw_fee(3, 0.85, h) == b.estimate_raw_fee(3, 0.85, h)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum mismatch"),
        (lambda d: d[:100] + bytes([d[100] ^ 0x40]) + d[101:], "checksum mismatch"),
        (lambda d: d[: len(d) // 2], "checksum mismatch"),
        (lambda d: b"", "not a fee estimates file"),
        (lambda d: b"XXXXXXXX" + d[8:], "not a fee estimates file"),
        (lambda d: d[:8] + (2).to_bytes(4, "little") + d[12:], "file version (2) too high"),
        (lambda d: d[:8] + (0).to_bytes(4, "little") + d[12:], "incompatible old fee"),
    ],
)
def test_corrupt_or_foreign_files_are_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mangle, reason: str
) -> None:
    data = steady_chain(60).est.to_bytes(NOW)
    bad = mangle(data)
    with pytest.raises(FeeEstimatesFileError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        BlockPolicyEstimator.from_bytes(bad, NOW)
    path = tmp_path / FEE_ESTIMATES_FILENAME
    path.write_bytes(bad)
    with caplog.at_level(logging.WARNING, logger="peercash.mempool.fees"):
        est = BlockPolicyEstimator.load(_stamp(path), NOW)
    assert est.best_seen_height == 0 and est.max_usable_estimate() == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert reason in record.getMessage()


def test_a_well_signed_file_with_bad_contents_is_rejected() -> None:
    import hashlib
    import struct

    data = steady_chain(30).est.to_bytes(NOW)
    body = bytearray(data[:-32])
    # the medium horizon's decay is the first f64 after the header and the buckets
    offset = 8 + 4 + struct.calcsize("<QIIII") + 237 * 8
    assert struct.unpack_from("<d", body, offset) == (0.9952,)
    struct.pack_into("<d", body, offset, 1.5)
    resigned = bytes(body) + hashlib.sha256(body).digest()
    with pytest.raises(FeeEstimatesFileError, match="decay must be between 0 and 1"):
        BlockPolicyEstimator.from_bytes(resigned, NOW)
    struct.pack_into("<d", body, offset, 0.5)
    resigned = bytes(body) + hashlib.sha256(body).digest()
    with pytest.raises(FeeEstimatesFileError, match="medium horizon differs"):
        BlockPolicyEstimator.from_bytes(resigned, NOW)
    body = bytearray(data[:-32]) + b"\0"
    with pytest.raises(FeeEstimatesFileError, match="trailing bytes"):
        BlockPolicyEstimator.from_bytes(bytes(body) + hashlib.sha256(body).digest(), NOW)


def test_a_file_older_than_60_hours_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / FEE_ESTIMATES_FILENAME
    steady_chain(60).est.save(path, NOW)
    _stamp(path)
    # Age in whole hours, truncated: 60 h 59 min is still 60 hours, accepted.
    assert BlockPolicyEstimator.load(path, NOW + 60 * 3600 + 59 * 60).best_seen_height == 60
    with caplog.at_level(logging.WARNING, logger="peercash.mempool.fees"):
        stale = BlockPolicyEstimator.load(path, NOW + 61 * 3600)
    assert stale.best_seen_height == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == (
        f"Fee estimation file {path} too old (age=61 > 60 hours) and will not be used to avoid"
        " serving stale estimates."
    )
    assert BlockPolicyEstimator.load(path, NOW + 1e6, accept_stale=True).best_seen_height == 60
    # The age is the file's modification time (Core's), not the time written inside it: a file
    # saved long ago but touched since is used, one saved now but dated back is not.
    _stamp(path, NOW + 1e6 - 3600)
    assert BlockPolicyEstimator.load(path, NOW + 1e6).best_seen_height == 60
    steady_chain(60).est.save(path, NOW + 1e6)
    _stamp(path, NOW + 1e6 - 61 * 3600)
    assert BlockPolicyEstimator.load(path, NOW + 1e6).best_seen_height == 0


def test_a_failed_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / FEE_ESTIMATES_FILENAME
    old = steady_chain(20).est
    old.save(path, NOW)
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        steady_chain(40).est.save(path, NOW)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [FEE_ESTIMATES_FILENAME]


def test_a_missing_file_is_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="peercash.mempool.fees"):
        est = BlockPolicyEstimator.load(tmp_path / "absent.dat", NOW)
    assert est.best_seen_height == 0
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    with pytest.raises(OSError):
        est.save(tmp_path / "no" / "such" / "dir.dat", NOW)


# -- determinism and invariants -----------------------------------------------------------------


def test_same_events_same_bytes_and_estimates() -> None:
    a, b = steady_chain(150).est, steady_chain(150).est
    assert a.to_bytes(NOW) == b.to_bytes(NOW)
    assert a.state() == b.state()
    assert [a.estimate_smart_fee(t) for t in range(1, 80)] == [
        b.estimate_smart_fee(t) for t in range(1, 80)
    ]


events = st.lists(
    st.one_of(
        st.tuples(st.just("tx"), st.integers(0, 40), st.integers(0, 2_000_000)),
        st.tuples(st.just("block"), st.lists(st.integers(0, 40), max_size=8)),
        st.tuples(st.just("remove"), st.integers(0, 40)),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(events)
def test_random_events_keep_the_books_and_survive_a_round_trip(ops: list) -> None:
    est = BlockPolicyEstimator()
    height = 0
    for op in ops:
        if op[0] == "tx":
            est.process_transaction(op[1].to_bytes(32, "big"), op[2], height)
        elif op[0] == "block":
            height += 1
            est.process_block(height, [i.to_bytes(32, "big") for i in op[1]])
        else:
            est.remove_tx(op[1].to_bytes(32, "big"))
        est.check()
    for t in (1, 2, 12, 48, 1008):
        for conservative in (False, True):
            smart = est.estimate_smart_fee(t, conservative)
            assert (smart.feerate is None) == (smart.errors == (SMART_FEE_ERROR,))
            assert smart.blocks <= max(t, 2)
            dumps(smart_fee_json(smart))
        dumps(raw_fee_json(est.estimate_raw_fees(t, 0.5)))
    data = est.to_bytes(NOW)
    again = BlockPolicyEstimator.from_bytes(data, NOW)
    assert again.to_bytes(NOW) == data


# -- feefilter rounding --------------------------------------------------------------------------


def test_fee_filter_rounder() -> None:
    draws = iter([0, 1, 2, 3])
    r = FeeFilterRounder(100, lambda: next(draws))
    values = r._values
    assert values[:3] == [0.0, 50.0, 55.00000000000001]
    assert values[-1] <= 1e7 < values[-1] * 1.1
    assert r.round(50) == 50  # draw 0: 0 % 3 == 0, keep the value at or above
    assert r.round(50) == 0  # draw 1: the one below
    assert r.round(56) == 55  # draw 2
    assert r.round(0) == 0  # already the lowest: no draw
    assert r.round(10**9) == int(values[-1])  # above every value: the largest, no draw
    assert next(draws) == 3
