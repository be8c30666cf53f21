"""Fee estimation from the confirmation times this node observed: Bitcoin Core's block policy
estimator (``src/policy/fees/block_policy_estimator.cpp``), behind ``estimatesmartfee`` and
``estimaterawfee``.

Layer 2 (mempool). Who calls it: :mod:`peercash.mempool.feefeed`, from the pool's listeners,
when a transaction enters the pool (:meth:`BlockPolicyEstimator.process_transaction`) or leaves
it for any reason other than being mined (:meth:`~BlockPolicyEstimator.remove_tx`: replaced,
conflicted, evicted, expired), and when the node tells it a block connected
(:meth:`~BlockPolicyEstimator.process_block` with the pool transactions it confirmed); the node
at start-up (:meth:`~BlockPolicyEstimator.load`), hourly (:meth:`~BlockPolicyEstimator.to_bytes`)
and at shutdown (:meth:`~BlockPolicyEstimator.flush`); the RPC layer (``rpc.fees``), through
:meth:`~BlockPolicyEstimator.estimate_smart_fee`, :meth:`~BlockPolicyEstimator.estimate_raw_fees`
and the JSON shapers :func:`smart_fee_json` / :func:`raw_fee_json`, or whole (argument checks
included) through :func:`estimatesmartfee` / :func:`estimaterawfee`. It knows transactions only
as a txid, the chain height when they entered and their feerate, so it imports nothing of the
chain.

Error contract: estimates never raise; a target or threshold outside what can be answered gives
a result carrying Core's error string. :meth:`~BlockPolicyEstimator.load` never raises for a
missing, unreadable, corrupt, wrong-version or stale file: it logs a warning and returns an empty
estimator, as Core does. :meth:`~BlockPolicyEstimator.save` raises ``OSError``.
:meth:`~BlockPolicyEstimator.from_bytes` raises :class:`FeeEstimatesFileError` with the reason.

Concurrency contract: not thread-safe; one owner (the mempool's lock or the event loop) makes
every call. Deterministic: no clock is read (callers pass ``now``), no randomness (the
:class:`FeeFilterRounder` takes its random source from the caller).

How it works. Feerates are grouped into exponentially spaced buckets (100 sat/kvB upwards in
steps of 5 %, up to 10^7, then one open-ended bucket). Three *horizons* keep, per bucket,
exponentially decaying counts of transactions seen confirmed, of those confirmed within each
number of periods (a period is ``scale`` blocks) and of those that left the pool unconfirmed
after each number of periods:

==========  ======  =====  =======  ===========  ==================================
horizon     decay   scale  periods  max target   half-life
==========  ======  =====  =======  ===========  ==================================
short       0.962   1      12       12 blocks    18 blocks (about 3 hours)
medium      0.9952  2      24       48 blocks    144 blocks (about a day)
long        0.99931 24     42       1008 blocks  1008 blocks (about a week)
==========  ======  =====  =======  ===========  ==================================

Transactions still in the pool are counted too, by entry height, so that a feerate whose
transactions wait long is not mistaken for a good one. An estimate for a target walks the buckets
from the highest feerate down, grouping neighbours until a group holds enough data, and keeps
going while the share of the group confirmed within the target stays at or above the threshold;
the answer is the average feerate of the bucket holding the median transaction of the last
passing group. ``estimatesmartfee`` takes the largest of three such estimates (60 % within
target/2, 85 % within target, 95 % within 2 × target), each from the shortest horizon that tracks
its target; the conservative mode also requires 95 % within 2 × target on the longer horizons.

Float arithmetic is done in the same order as Core's, so the same inputs give Core's numbers,
bit for bit (Python floats are IEEE doubles). Where Core's unsigned arithmetic wraps (looking back
further than the chain is high, below height 1008), we wrap the same way.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import math
import os
import struct
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from peercash.atomicfile import write_atomic

__all__ = [
    "DEFAULT_ACCEPT_STALE_FEE_ESTIMATES",
    "DOUBLE_SUCCESS_PCT",
    "FEE_ESTIMATES_FILENAME",
    "FEE_FLUSH_INTERVAL",
    "FEE_SPACING",
    "FILE_MAGIC",
    "FILE_VERSION",
    "HALF_SUCCESS_PCT",
    "INF_FEERATE",
    "INVALID_ESTIMATE_MODE",
    "INVALID_THRESHOLD",
    "MAX_BUCKET_FEERATE",
    "MAX_FILE_AGE",
    "MIN_BUCKET_FEERATE",
    "OLDEST_ESTIMATE_HISTORY",
    "RAW_FEE_ERROR",
    "SMART_FEE_ERROR",
    "SUCCESS_PCT",
    "SUFFICIENT_FEETXS",
    "SUFFICIENT_TXS_SHORT",
    "BlockPolicyEstimator",
    "BucketStats",
    "EstimationResult",
    "FeeEstimateMode",
    "FeeEstimatesFileError",
    "FeeFilterRounder",
    "FeeParamError",
    "FeeReason",
    "Horizon",
    "RawFeeEstimate",
    "SmartFeeEstimate",
    "bucket_boundaries",
    "conf_target_error",
    "estimaterawfee",
    "estimatesmartfee",
    "fee_mode_from_string",
    "fee_per_kvb",
    "raw_fee_json",
    "smart_fee_json",
]

log = logging.getLogger("peercash.mempool.fees")

# -- constants (Core's policy values, src/policy/fees/block_policy_estimator.h) ----------------

MIN_BUCKET_FEERATE = 100.0
"""Lowest bucket boundary, sat/kvB (``MIN_BUCKET_FEERATE = 100``, Core's minimum relay feerate
since 29.1/30.0; feerates at or below it share the first bucket)."""
MAX_BUCKET_FEERATE = 1e7
"""Highest finite bucket boundary, sat/kvB (``MAX_BUCKET_FEERATE = 1e7``)."""
FEE_SPACING = 1.05
"""Each bucket boundary is the previous one times this (``FEE_SPACING = 1.05``)."""
INF_FEERATE = 1e99
"""Upper bound of the last, open-ended bucket (``INF_FEERATE = 1e99``)."""

HALF_SUCCESS_PCT = 0.6
"""``estimatesmartfee``: share required within half the target (``HALF_SUCCESS_PCT``)."""
SUCCESS_PCT = 0.85
"""``estimatesmartfee``: share required within the target (``SUCCESS_PCT``)."""
DOUBLE_SUCCESS_PCT = 0.95
"""``estimatesmartfee``: share required within twice the target (``DOUBLE_SUCCESS_PCT``); also
``estimaterawfee``'s default threshold."""
SUFFICIENT_FEETXS = 0.1
"""Transactions per block a bucket group needs, on average, to be judged (medium and long)."""
SUFFICIENT_TXS_SHORT = 0.5
"""The same for the short horizon, which remembers fewer blocks."""
OLDEST_ESTIMATE_HISTORY = 6 * 1008
"""Saved history older than this many blocks no longer extends the usable targets."""

MAX_FILE_AGE = 60 * 3600
"""Seconds: a saved file older than 60 hours is not used (``MAX_FILE_AGE{60h}``); the age is
counted in whole hours, as Core's ``duration_cast<hours>`` does."""
DEFAULT_ACCEPT_STALE_FEE_ESTIMATES = False
"""Core's ``-acceptstalefeeestimates`` default (regtest-only option in Core)."""
FEE_FLUSH_INTERVAL = 3600
"""Seconds between periodic saves (``FEE_FLUSH_INTERVAL{1h}``)."""
FEE_ESTIMATES_FILENAME = "fee_estimates.dat"
"""Core's file name in the data directory."""

SMART_FEE_ERROR = "Insufficient data or no feerate found"
"""``estimatesmartfee``'s error string."""
RAW_FEE_ERROR = "Insufficient data or no feerate found which meets threshold"
"""``estimaterawfee``'s per-horizon error string."""
INVALID_THRESHOLD = "Invalid threshold"
"""``estimaterawfee``'s message (RPC_INVALID_PARAMETER) for a threshold outside 0..1."""
INVALID_ESTIMATE_MODE = (
    'Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative"'
)
"""Core's ``InvalidEstimateModeErrorMessage()`` (RPC_INVALID_PARAMETER)."""

_U32 = 1 << 32


class Horizon(enum.Enum):
    """The three histories, by Core's names (``StringForFeeEstimateHorizon``)."""

    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


@dataclass(frozen=True)
class _HorizonSpec:
    periods: int
    scale: int
    decay: float
    sufficient: float


_SPECS: dict[Horizon, _HorizonSpec] = {
    Horizon.SHORT: _HorizonSpec(12, 1, 0.962, SUFFICIENT_TXS_SHORT),
    Horizon.MEDIUM: _HorizonSpec(24, 2, 0.9952, SUFFICIENT_FEETXS),
    Horizon.LONG: _HorizonSpec(42, 24, 0.99931, SUFFICIENT_FEETXS),
}
# Core writes and reads the histories in this order (feeStats, shortStats, longStats).
_FILE_ORDER = (Horizon.MEDIUM, Horizon.SHORT, Horizon.LONG)


class FeeReason(enum.Enum):
    """Which of ``estimatesmartfee``'s sub-estimates decided the answer (``StringForFeeReason``)."""

    NONE = "None"
    HALF_ESTIMATE = "Half Target 60% Threshold"
    FULL_ESTIMATE = "Target 85% Threshold"
    DOUBLE_ESTIMATE = "Double Target 95% Threshold"
    CONSERVATIVE = "Conservative Double Target longer horizon"


class FeeEstimateMode(enum.Enum):
    """``estimate_mode`` values; ``unset`` means the default, economical (Core 28+)."""

    UNSET = "unset"
    ECONOMICAL = "economical"
    CONSERVATIVE = "conservative"


def fee_mode_from_string(text: str) -> FeeEstimateMode | None:
    """The mode named ``text``, case-insensitively (Core's ``FeeModeFromString``); ``None`` if it
    names none (the RPC then raises RPC_INVALID_PARAMETER with :data:`INVALID_ESTIMATE_MODE`)."""
    wanted = text.upper()
    for mode in FeeEstimateMode:
        if mode.value.upper() == wanted:
            return mode
    return None


def conf_target_error(conf_target: int, max_target: int) -> str | None:
    """Core's ``ParseConfirmTarget`` message (RPC_INVALID_PARAMETER) for a target outside
    ``1..max_target``, else ``None``. ``max_target`` is
    ``highest_target_tracked(Horizon.LONG)`` (1008)."""
    if conf_target < 1 or conf_target > max_target:
        return f"Invalid conf_target, must be between 1 and {max_target}"
    return None


def fee_per_kvb(fee: int, vsize: int) -> int:
    """A transaction's feerate in sat/kvB as Core's ``CFeeRate(fee, vsize).GetFeePerK()``
    computes it (rounded down). Pass the base fee, not one changed by ``prioritisetransaction``."""
    if vsize <= 0 or fee < 0:
        return 0
    return fee * 1000 // vsize


def bucket_boundaries() -> tuple[float, ...]:
    """Upper bounds (inclusive) of the feerate buckets, sat/kvB: 100, 105, 110.25, … ≤ 10^7,
    then :data:`INF_FEERATE`. A feerate belongs to the first bucket whose bound is ≥ it."""
    out: list[float] = []
    boundary = MIN_BUCKET_FEERATE
    while boundary <= MAX_BUCKET_FEERATE:
        out.append(boundary)
        boundary *= FEE_SPACING
    out.append(INF_FEERATE)
    return tuple(out)


_BUCKETS = bucket_boundaries()


def _round_half_away(x: float) -> float:
    """C's ``round``: to nearest, halves away from zero. Exact: a float's Decimal is exact, and
    from 2^52 up every float is already a whole number."""
    if not math.isfinite(x) or abs(x) >= 2.0**52:
        return x
    return float(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _llround(x: float) -> int:
    """C's ``llround``."""
    return int(_round_half_away(x))


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketStats:
    """One range of buckets as an estimate judged it (Core's ``EstimatorBucket``). ``start`` is
    the bound of the bucket below the range (0 for the first), ``end`` the range's upper bound;
    -1 for both means no such range. Counts are decayed averages, hence floats."""

    start: float = -1.0
    end: float = -1.0
    within_target: float = 0.0
    total_confirmed: float = 0.0
    in_mempool: float = 0.0
    left_mempool: float = 0.0


@dataclass(frozen=True)
class EstimationResult:
    """The detail behind one estimate (Core's ``EstimationResult``): the lowest passing range,
    the highest failing one, and the horizon's decay and scale (0, 0 when nothing was asked)."""

    pass_bucket: BucketStats = field(default_factory=BucketStats)
    fail_bucket: BucketStats = field(default_factory=BucketStats)
    decay: float = 0.0
    scale: int = 0


@dataclass(frozen=True)
class RawFeeEstimate:
    """``estimaterawfee`` for one horizon: ``feerate`` in sat/kvB or ``None`` with ``errors``."""

    horizon: Horizon
    feerate: int | None
    result: EstimationResult
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmartFeeEstimate:
    """``estimatesmartfee``: ``feerate`` in sat/kvB (before the RPC raises it to the pool's and
    the relay minimum, see :func:`smart_fee_json`) or ``None`` with ``errors``; ``blocks`` is the
    target the answer is for (Core's ``returnedTarget``), ``reason`` which sub-estimate decided."""

    feerate: int | None
    blocks: int
    errors: tuple[str, ...] = ()
    reason: FeeReason = FeeReason.NONE
    result: EstimationResult = field(default_factory=EstimationResult)
    desired_target: int = 0
    best_height: int = 0


# -- one horizon's history ----------------------------------------------------------------------


class _ConfirmStats:
    """Decayed confirmation counts per bucket for one horizon, plus the unconfirmed transactions
    by entry height (a ring of ``max_confirms`` rows, and one row for anything older)."""

    __slots__ = (
        "buckets",
        "confirmed",
        "decay",
        "empty",
        "failed",
        "feerate_sum",
        "old_unconfirmed",
        "scale",
        "tx_count",
        "unconfirmed",
    )

    def __init__(self, buckets: tuple[float, ...], periods: int, decay: float, scale: int) -> None:
        n = len(buckets)
        self.buckets = buckets
        self.decay = decay
        self.scale = scale
        # confirmed[p][b]: transactions of bucket b confirmed within p + 1 periods.
        self.confirmed: list[list[float]] = [[0.0] * n for _ in range(periods)]
        # failed[p][b]: transactions of bucket b that left the pool unconfirmed after waiting
        # p + 1 periods or more.
        self.failed: list[list[float]] = [[0.0] * n for _ in range(periods)]
        self.tx_count: list[float] = [0.0] * n
        self.feerate_sum: list[float] = [0.0] * n
        self.unconfirmed: list[list[int]] = [[0] * n for _ in range(scale * periods)]
        self.old_unconfirmed: list[int] = [0] * n
        # True while every average is zero, so decaying them would change nothing (a node in
        # initial block download skips that work; the answers are Core's all the same).
        self.empty = True

    @property
    def max_confirms(self) -> int:
        return self.scale * len(self.confirmed)

    def bucket_index(self, feerate: float) -> int:
        return bisect_left(self.buckets, feerate)

    def new_block(self, height: int) -> None:
        """The row for ``height`` is reused: its entries become 'older than we track'; then every
        average decays by one block."""
        row = self.unconfirmed[height % len(self.unconfirmed)]
        if any(row):
            old = self.old_unconfirmed
            for b, count in enumerate(row):
                if count:
                    old[b] += count
                    row[b] = 0
        if self.empty:
            return
        d = self.decay
        for rows in (self.confirmed, self.failed):
            for i, r in enumerate(rows):
                rows[i] = [v * d for v in r]
        self.feerate_sum = [v * d for v in self.feerate_sum]
        self.tx_count = [v * d for v in self.tx_count]

    def record_confirmed(self, blocks_to_confirm: int, feerate: float) -> None:
        if blocks_to_confirm < 1:
            return
        b = self.bucket_index(feerate)
        self.empty = False
        first_period = (blocks_to_confirm + self.scale - 1) // self.scale
        for p in range(first_period - 1, len(self.confirmed)):
            self.confirmed[p][b] += 1
        self.tx_count[b] += 1
        self.feerate_sum[b] += feerate

    def add_unconfirmed(self, height: int, feerate: float) -> int:
        b = self.bucket_index(feerate)
        self.unconfirmed[height % len(self.unconfirmed)][b] += 1
        return b

    def remove_unconfirmed(
        self, entry_height: int, best_height: int, bucket: int, mined: bool
    ) -> None:
        blocks_ago = best_height - entry_height if best_height else 0
        if blocks_ago < 0:
            return  # cannot happen: entries are made at the best height
        ring = len(self.unconfirmed)
        if blocks_ago >= ring:
            if self.old_unconfirmed[bucket] > 0:
                self.old_unconfirmed[bucket] -= 1
        else:
            row = self.unconfirmed[entry_height % ring]
            if row[bucket] > 0:
                row[bucket] -= 1
        # Leaving unmined counts as a failure for every whole period it waited.
        if not mined and blocks_ago >= self.scale:
            self.empty = False
            for p in range(min(blocks_ago // self.scale, len(self.failed))):
                self.failed[p][bucket] += 1

    def _waiting_at_least(self, conf_target: int, best_height: int) -> list[int]:
        """Per bucket: unconfirmed transactions that have waited ``conf_target`` blocks or more.
        Rows are found by unsigned 32-bit subtraction, as in Core, so below height
        ``max_confirms`` some rows are visited more than once."""
        ring = len(self.unconfirmed)
        visits = [0] * ring
        for waited in range(conf_target, self.max_confirms):
            visits[((best_height - waited) % _U32) % ring] += 1
        totals = list(self.old_unconfirmed)
        for r, times in enumerate(visits):
            if times:
                row = self.unconfirmed[r]
                for b, count in enumerate(row):
                    if count:
                        totals[b] += times * count
        return totals

    def estimate_median(
        self, conf_target: int, sufficient: float, threshold: float, best_height: int
    ) -> tuple[float, EstimationResult]:
        """The feerate (sat/kvB, float) at which ``threshold`` of transactions confirmed within
        ``conf_target`` blocks, or -1; and the detail (Core's ``EstimateMedianVal``)."""
        buckets = self.buckets
        period = (conf_target + self.scale - 1) // self.scale
        confirmed = self.confirmed[period - 1]
        failed = self.failed[period - 1]
        tx_count = self.tx_count
        waiting = self._waiting_at_least(conf_target, best_height)
        needed = sufficient / (1 - self.decay)
        top = len(buckets) - 1

        within = 0.0  # confirmed within target, in the current group
        total = 0.0  # confirmed at all
        still_waiting = 0  # in the pool for at least the target
        gave_up = 0.0  # left the pool unconfirmed after the target
        group_count = 0.0  # data points gathered since the last judged group
        near = far = best_near = best_far = top
        found = False
        new_group = True
        passing = True
        passed = BucketStats()
        failed_range = BucketStats()

        for b in range(top, -1, -1):
            if new_group:
                near = b
                new_group = False
            far = b
            within += confirmed[b]
            group_count += tx_count[b]
            total += tx_count[b]
            gave_up += failed[b]
            still_waiting += waiting[b]
            if group_count < needed:
                continue  # not enough data yet: widen the group
            group_count = 0.0
            share = within / (total + gave_up + still_waiting)
            if share < threshold:
                if passing:
                    failed_range = self._range(near, far, within, total, still_waiting, gave_up)
                    passing = False
                continue
            # This group passes: remember it and start a new one below it.
            failed_range = BucketStats()
            found = True
            passing = True
            passed = BucketStats(-1.0, -1.0, within, total, still_waiting, gave_up)
            within = total = gave_up = 0.0
            still_waiting = 0
            best_near, best_far = near, far
            new_group = True

        median = -1.0
        low, high = min(best_near, best_far), max(best_near, best_far)
        in_range = 0.0
        for b in range(low, high + 1):
            in_range += tx_count[b]
        if found and in_range != 0:
            half = in_range / 2
            for b in range(low, high + 1):
                if tx_count[b] < half:
                    half -= tx_count[b]
                else:
                    median = self.feerate_sum[b] / tx_count[b]
                    break
            passed = BucketStats(
                buckets[low - 1] if low else 0.0,
                buckets[high],
                passed.within_target,
                passed.total_confirmed,
                passed.in_mempool,
                passed.left_mempool,
            )
        # Still passing but the lowest buckets never gathered enough data: report them as failing.
        if passing and not new_group:
            failed_range = self._range(near, far, within, total, still_waiting, gave_up)
        return median, EstimationResult(passed, failed_range, self.decay, self.scale)

    def _range(
        self, near: int, far: int, within: float, total: float, waiting: int, gave_up: float
    ) -> BucketStats:
        low, high = min(near, far), max(near, far)
        start = self.buckets[low - 1] if low else 0.0
        return BucketStats(start, self.buckets[high], within, total, waiting, gave_up)


# -- the estimator ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Tracked:
    height: int
    bucket: int
    feerate: float


class FeeEstimatesFileError(ValueError):
    """A fee estimates file that cannot be used, with the reason."""


class BlockPolicyEstimator:
    """Core's ``CBlockPolicyEstimator``: feed it pool and block events, ask it for estimates."""

    def __init__(self) -> None:
        self._buckets = _BUCKETS
        self._stats: dict[Horizon, _ConfirmStats] = {
            h: _ConfirmStats(self._buckets, s.periods, s.decay, s.scale) for h, s in _SPECS.items()
        }
        self._tracked: dict[bytes, _Tracked] = {}
        self.best_seen_height = 0
        self.first_recorded_height = 0
        self.historical_first = 0
        self.historical_best = 0
        self.tracked_since_block = 0
        self.untracked_since_block = 0

    # -- events

    def process_transaction(
        self,
        txid: bytes,
        feerate_sat_per_kvb: int | float,
        height: int,
        valid_for_estimation: bool = True,
    ) -> bool:
        """A transaction entered the pool while the chain tip was at ``height``. It is tracked
        only if ``height`` is the last block we processed (otherwise we are out of step with the
        chain) and ``valid_for_estimation``: the caller passes False for a transaction that
        entered during a reorg (bypassing limits), in a package, while the node is in initial
        block download, or that has a parent in the pool. Returns whether it is now tracked."""
        if txid in self._tracked:
            log.debug("fee estimator: %s is already tracked", txid[::-1].hex())
            return False
        if height != self.best_seen_height:
            return False
        if not valid_for_estimation:
            self.untracked_since_block += 1
            return False
        self.tracked_since_block += 1
        feerate = float(feerate_sat_per_kvb)
        bucket = -1
        for stats in self._stats.values():
            bucket = stats.add_unconfirmed(height, feerate)
        self._tracked[txid] = _Tracked(height, bucket, feerate)
        return True

    def remove_tx(self, txid: bytes) -> bool:
        """A transaction left the pool without being mined (replaced, conflicted by a block,
        evicted, expired). If it waited a whole period or more, it counts as a failure to
        confirm at its feerate. Returns whether it was tracked."""
        return self._remove(txid, mined=False)

    def _remove(self, txid: bytes, mined: bool) -> bool:
        entry = self._tracked.pop(txid, None)
        if entry is None:
            return False
        for stats in self._stats.values():
            stats.remove_unconfirmed(entry.height, self.best_seen_height, entry.bucket, mined)
        return True

    def process_block(self, height: int, mined_txids: Iterable[bytes]) -> int:
        """A block at ``height`` joined the best chain with these transactions (any txids: the
        ones not tracked are skipped). A height at or below one already processed (a reorg, a
        side chain) is ignored. Returns how many tracked transactions it confirmed."""
        if height <= self.best_seen_height:
            return 0
        # The best height moves first so that removals below compute waiting times from it.
        self.best_seen_height = height
        for stats in self._stats.values():
            stats.new_block(height)
        counted = 0
        for txid in mined_txids:
            entry = self._tracked.get(txid)
            if entry is None or not self._remove(txid, mined=True):
                continue
            blocks_to_confirm = height - entry.height
            if blocks_to_confirm <= 0:
                continue
            for stats in self._stats.values():
                stats.record_confirmed(blocks_to_confirm, entry.feerate)
            counted += 1
        if self.first_recorded_height == 0 and counted > 0:
            self.first_recorded_height = height
        log.debug(
            "fee estimator: block %d confirmed %d tracked txs; %d of %d new txs tracked since the"
            " last block; %d in the pool; max target %d",
            height,
            counted,
            self.tracked_since_block,
            self.tracked_since_block + self.untracked_since_block,
            len(self._tracked),
            self.max_usable_estimate(),
        )
        self.tracked_since_block = 0
        self.untracked_since_block = 0
        return counted

    def flush_unconfirmed(self) -> int:
        """Count every tracked transaction as having left the pool unconfirmed (Core does this at
        shutdown, before saving, since the pool's contents are not part of the file). Returns
        how many there were."""
        txids = sorted(self._tracked)
        for txid in txids:
            self._remove(txid, mined=False)
        return len(txids)

    @property
    def tracked_count(self) -> int:
        """Transactions currently tracked (in the pool and counted)."""
        return len(self._tracked)

    def is_tracked(self, txid: bytes) -> bool:
        return txid in self._tracked

    # -- spans

    def block_span(self) -> int:
        """Blocks of data recorded since this estimator started (or was loaded)."""
        if self.first_recorded_height == 0:
            return 0
        return self.best_seen_height - self.first_recorded_height

    def historical_block_span(self) -> int:
        """Blocks of data the loaded file represents, if it is recent enough to count."""
        if self.historical_first == 0:
            return 0
        if self.best_seen_height - self.historical_best > OLDEST_ESTIMATE_HISTORY:
            return 0
        return self.historical_best - self.historical_first

    def max_usable_estimate(self) -> int:
        """The highest target an estimate is given for: half the span of data, at most 1008."""
        span = max(self.block_span(), self.historical_block_span())
        return min(self._stats[Horizon.LONG].max_confirms, span // 2)

    def highest_target_tracked(self, horizon: Horizon) -> int:
        """12, 48 or 1008: the longest confirmation time ``horizon`` records."""
        return self._stats[horizon].max_confirms

    # -- estimates

    def estimate_raw_fee(
        self,
        conf_target: int,
        threshold: float = DOUBLE_SUCCESS_PCT,
        horizon: Horizon = Horizon.MEDIUM,
    ) -> RawFeeEstimate:
        """The feerate at which ``threshold`` of the transactions seen on ``horizon`` confirmed
        within ``conf_target`` blocks (Core's ``estimateRawFee``)."""
        stats = self._stats[horizon]
        if conf_target <= 0 or conf_target > stats.max_confirms or threshold > 1:
            return RawFeeEstimate(horizon, None, EstimationResult(), (RAW_FEE_ERROR,))
        median, result = stats.estimate_median(
            conf_target, _SPECS[horizon].sufficient, threshold, self.best_seen_height
        )
        if median < 0:
            return RawFeeEstimate(horizon, None, result, (RAW_FEE_ERROR,))
        return RawFeeEstimate(horizon, _llround(median), result)

    def estimate_raw_fees(
        self, conf_target: int, threshold: float = DOUBLE_SUCCESS_PCT
    ) -> list[RawFeeEstimate]:
        """``estimaterawfee``: one estimate per horizon that tracks ``conf_target``, short first.
        The caller checks the target (:func:`conf_target_error`) and that ``0 <= threshold <=
        1`` (else RPC_INVALID_PARAMETER, :data:`INVALID_THRESHOLD`)."""
        return [
            self.estimate_raw_fee(conf_target, threshold, h)
            for h in Horizon
            if conf_target <= self.highest_target_tracked(h)
        ]

    def _median(
        self, horizon: Horizon, conf_target: int, threshold: float
    ) -> tuple[float, EstimationResult]:
        return self._stats[horizon].estimate_median(
            conf_target, _SPECS[horizon].sufficient, threshold, self.best_seen_height
        )

    def _combined(
        self, conf_target: int, threshold: float, check_shorter: bool
    ) -> tuple[float, EstimationResult | None]:
        """The estimate from the shortest horizon tracking ``conf_target``; with
        ``check_shorter``, lowered to a shorter horizon's answer at its own longest target,
        which keeps estimates rising with the target."""
        short_max = self.highest_target_tracked(Horizon.SHORT)
        medium_max = self.highest_target_tracked(Horizon.MEDIUM)
        if not 1 <= conf_target <= self.highest_target_tracked(Horizon.LONG):
            return -1.0, None
        if conf_target <= short_max:
            horizon = Horizon.SHORT
        elif conf_target <= medium_max:
            horizon = Horizon.MEDIUM
        else:
            horizon = Horizon.LONG
        estimate, result = self._median(horizon, conf_target, threshold)
        if check_shorter:
            for shorter, limit in ((Horizon.MEDIUM, medium_max), (Horizon.SHORT, short_max)):
                if conf_target > limit:
                    other, other_result = self._median(shorter, limit, threshold)
                    if other > 0 and (estimate == -1 or other < estimate):
                        estimate, result = other, other_result
        return estimate, result

    def _conservative(self, double_target: int) -> tuple[float, EstimationResult | None]:
        """95 % within ``double_target`` also on the horizons longer than the one that tracks it."""
        estimate = -1.0
        result: EstimationResult | None = None
        if double_target <= self.highest_target_tracked(Horizon.SHORT):
            estimate, result = self._median(Horizon.MEDIUM, double_target, DOUBLE_SUCCESS_PCT)
        if double_target <= self.highest_target_tracked(Horizon.MEDIUM):
            longer, longer_result = self._median(Horizon.LONG, double_target, DOUBLE_SUCCESS_PCT)
            if longer > estimate:
                estimate, result = longer, longer_result
        return estimate, result

    def estimate_smart_fee(self, conf_target: int, conservative: bool = False) -> SmartFeeEstimate:
        """``estimatesmartfee`` before the RPC's minimums (Core's ``estimateSmartFee``). A target
        of 1 is answered for 2; a target beyond what the data supports (half its span) is
        answered for the highest one it supports, reported in ``blocks``. The economical mode
        (default) lets the shorter horizons lower the 2 × target estimate; the conservative one
        instead requires 95 % within 2 × target on the longer horizons as well."""
        desired = conf_target
        best = self.best_seen_height

        def failure(blocks: int) -> SmartFeeEstimate:
            return SmartFeeEstimate(
                None, blocks, (SMART_FEE_ERROR,), FeeReason.NONE, EstimationResult(), desired, best
            )

        if conf_target <= 0 or conf_target > self.highest_target_tracked(Horizon.LONG):
            return failure(conf_target)
        if conf_target == 1:
            conf_target = 2
        conf_target = min(conf_target, self.max_usable_estimate())
        if conf_target <= 1:
            return failure(conf_target)

        # The largest of: 60 % within half the target, 85 % within it, 95 % within twice it.
        median, result = self._combined(conf_target // 2, HALF_SUCCESS_PCT, True)
        reason = FeeReason.HALF_ESTIMATE
        estimate, est_result = self._combined(conf_target, SUCCESS_PCT, True)
        if estimate > median:
            median, result, reason = estimate, est_result, FeeReason.FULL_ESTIMATE
        estimate, est_result = self._combined(2 * conf_target, DOUBLE_SUCCESS_PCT, not conservative)
        if estimate > median:
            median, result, reason = estimate, est_result, FeeReason.DOUBLE_ESTIMATE
        if conservative or median == -1:
            estimate, est_result = self._conservative(2 * conf_target)
            if estimate > median:
                median, result, reason = estimate, est_result, FeeReason.CONSERVATIVE
        if median < 0:
            return failure(conf_target)
        return SmartFeeEstimate(
            _llround(median),
            conf_target,
            (),
            reason,
            result if result is not None else EstimationResult(),
            desired,
            best,
        )

    # -- persistence

    def to_bytes(self, now: float) -> bytes:
        """The file's bytes, stamped with ``now`` (Unix seconds). Format, little-endian:
        magic ``PCFEEST\\0``, u32 version, u64 time saved, u32 best seen height, u32 and u32 the
        block range the data covers, u32 bucket count and the bounds as f64, then per horizon
        (medium, short, long, as Core orders them) f64 decay, u32 scale, u32 periods, the
        feerate sums, the counts, the confirmed rows and the failed rows (f64 each); last, the
        SHA-256 of everything before it. Unconfirmed transactions are not saved (see
        :meth:`flush`)."""
        if self.block_span() > self.historical_block_span() // 2:
            first, last = self.first_recorded_height, self.best_seen_height
        else:
            first, last = self.historical_first, self.historical_best
        n = len(self._buckets)
        parts = [
            FILE_MAGIC,
            struct.pack(
                "<IQIIII", FILE_VERSION, max(0, int(now)), self.best_seen_height, first, last, n
            ),
            struct.pack(f"<{n}d", *self._buckets),
        ]
        for horizon in _FILE_ORDER:
            s = self._stats[horizon]
            parts.append(struct.pack("<dII", s.decay, s.scale, len(s.confirmed)))
            parts.append(struct.pack(f"<{n}d", *s.feerate_sum))
            parts.append(struct.pack(f"<{n}d", *s.tx_count))
            for row in (*s.confirmed, *s.failed):
                parts.append(struct.pack(f"<{n}d", *row))
        body = b"".join(parts)
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        now: float,
        accept_stale: bool = DEFAULT_ACCEPT_STALE_FEE_ESTIMATES,
    ) -> BlockPolicyEstimator:
        """An estimator restored from :meth:`to_bytes` output; :class:`FeeEstimatesFileError` if
        the bytes are corrupt, of another version, or older than :data:`MAX_FILE_AGE` at
        ``now`` (unless ``accept_stale``)."""
        return _decode(cls(), data, now, accept_stale)

    def save(self, path: str | os.PathLike[str], now: float) -> None:
        """Write the estimates to ``path`` atomically (a fsynced temporary file renamed over it),
        so a crash leaves the old file or the new one. Raises ``OSError``."""
        write_atomic(Path(path), self.to_bytes(now))
        log.info("Flushed fee estimates to %s.", Path(path).name)

    def flush(self, path: str | os.PathLike[str], now: float) -> None:
        """Shutdown: :meth:`flush_unconfirmed`, then :meth:`save` (Core's ``Flush``)."""
        self.flush_unconfirmed()
        self.save(path, now)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        now: float,
        accept_stale: bool = DEFAULT_ACCEPT_STALE_FEE_ESTIMATES,
    ) -> BlockPolicyEstimator:
        """The estimator saved at ``path``; an empty one, with a warning, if the file is missing
        (info only), unreadable, corrupt, of another version, or stale. As in Core, the age is
        the file's: its modification time, in whole hours (truncated), before ``now``; more
        than :data:`MAX_FILE_AGE` is stale unless ``accept_stale``."""
        p = Path(path)
        try:
            data = p.read_bytes()
            modified = p.stat().st_mtime
        except FileNotFoundError:
            log.info("%s is not found; continuing without saved fee estimates", p)
            return cls()
        except OSError as exc:
            log.warning("cannot read fee estimates from %s (%s); continuing without them", p, exc)
            return cls()
        age_hours = int((now - modified) / 3600)
        if age_hours * 3600 > MAX_FILE_AGE and not accept_stale:
            log.warning(
                "Fee estimation file %s too old (age=%d > %d hours) and will not be used to"
                " avoid serving stale estimates.",
                p,
                age_hours,
                MAX_FILE_AGE // 3600,
            )
            return cls()
        try:
            # The file's age was judged above, by its modification time, as Core judges it.
            return cls.from_bytes(data, now, accept_stale=True)
        except FeeEstimatesFileError as exc:
            log.warning("fee estimates in %s not used: %s", p, exc)
            return cls()

    # -- consistency and comparison (tests, and checking a round trip)

    def check(self) -> None:
        """Verify that every horizon counts each tracked transaction exactly once as
        unconfirmed; ``AssertionError`` if not. O(table size): for tests."""
        for horizon, stats in self._stats.items():
            waiting = sum(map(sum, stats.unconfirmed)) + sum(stats.old_unconfirmed)
            if waiting != len(self._tracked):
                raise AssertionError(
                    f"{horizon.value} horizon counts {waiting} unconfirmed, tracking "
                    f"{len(self._tracked)}"
                )

    def state(self) -> dict[str, Any]:
        """Everything that determines future estimates, as plain data."""
        return {
            "best_seen_height": self.best_seen_height,
            "first_recorded_height": self.first_recorded_height,
            "historical_first": self.historical_first,
            "historical_best": self.historical_best,
            "tracked": {
                t: (e.height, e.bucket, e.feerate) for t, e in sorted(self._tracked.items())
            },
            "stats": {
                h.value: {
                    "decay": s.decay,
                    "scale": s.scale,
                    "feerate_sum": list(s.feerate_sum),
                    "tx_count": list(s.tx_count),
                    "confirmed": [list(r) for r in s.confirmed],
                    "failed": [list(r) for r in s.failed],
                    "unconfirmed": [list(r) for r in s.unconfirmed],
                    "old_unconfirmed": list(s.old_unconfirmed),
                }
                for h, s in self._stats.items()
            },
        }


# -- the file -----------------------------------------------------------------------------------

FILE_MAGIC = b"PCFEEST\x00"
FILE_VERSION = 1
"""Bump when the format or the buckets change; other versions are ignored with a warning."""
_MAX_BUCKETS = 1000
_MAX_CONFIRMS = 6 * 24 * 7


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise FeeEstimatesFileError("truncated")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def floats(self, n: int) -> list[float]:
        values = list(self.take(f"<{n}d"))
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise FeeEstimatesFileError("a count or feerate is negative or not finite")
        return values


def _decode(
    est: BlockPolicyEstimator, data: bytes, now: float, accept_stale: bool
) -> BlockPolicyEstimator:
    header = len(FILE_MAGIC) + 4
    if len(data) < header + 32 or data[: len(FILE_MAGIC)] != FILE_MAGIC:
        raise FeeEstimatesFileError("not a fee estimates file")
    (version,) = struct.unpack_from("<I", data, len(FILE_MAGIC))
    if version > FILE_VERSION:
        raise FeeEstimatesFileError(f"file version ({version}) too high to be read")
    if version < FILE_VERSION:
        raise FeeEstimatesFileError(f"incompatible old fee estimation data (version {version})")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise FeeEstimatesFileError("checksum mismatch")
    r = _Reader(body)
    r.pos = header
    saved_at, best, first, last, n = r.take("<QIIII")
    age_hours = int((now - saved_at) / 3600)  # whole hours, truncated like duration_cast
    if age_hours * 3600 > MAX_FILE_AGE and not accept_stale:
        raise FeeEstimatesFileError(
            f"too old (age={age_hours} > {MAX_FILE_AGE // 3600} hours); not used to avoid"
            " serving stale estimates"
        )
    if first > last or last > best:
        raise FeeEstimatesFileError("historical block range for estimates is invalid")
    if not 1 < n <= _MAX_BUCKETS:
        raise FeeEstimatesFileError("must have between 2 and 1000 feerate buckets")
    if tuple(r.take(f"<{n}d")) != est._buckets:
        raise FeeEstimatesFileError("feerate buckets differ from this version's")
    loaded: dict[Horizon, _ConfirmStats] = {}
    for horizon in _FILE_ORDER:
        spec = _SPECS[horizon]
        decay, scale, periods = r.take("<dII")
        if not 0 < decay < 1:
            raise FeeEstimatesFileError("decay must be between 0 and 1 (non-inclusive)")
        if scale == 0:
            raise FeeEstimatesFileError("scale must be non-zero")
        if not 0 < scale * periods <= _MAX_CONFIRMS:
            raise FeeEstimatesFileError("must track between 1 and 1008 confirms")
        if (decay, scale, periods) != (spec.decay, spec.scale, spec.periods):
            raise FeeEstimatesFileError(f"{horizon.value} horizon differs from this version's")
        s = _ConfirmStats(est._buckets, periods, decay, scale)
        s.feerate_sum = r.floats(n)
        s.tx_count = r.floats(n)
        s.confirmed = [r.floats(n) for _ in range(periods)]
        s.failed = [r.floats(n) for _ in range(periods)]
        s.empty = False
        loaded[horizon] = s
    if r.pos != len(body):
        raise FeeEstimatesFileError("trailing bytes")
    est._stats = {h: loaded[h] for h in Horizon}
    est.best_seen_height = best
    est.historical_first = first
    est.historical_best = last
    return est


# -- JSON in Core's shape -----------------------------------------------------------------------


def _feerate_value(sat_per_kvb: int, sat_per_vb: bool) -> Decimal:
    """BTC/kvB with 8 decimals (``ValueFromAmount``), or sat/vB with 3."""
    return Decimal(int(sat_per_kvb)).scaleb(-3 if sat_per_vb else -8)


def _univalue_number(x: float) -> int | float | Decimal:
    """A double as Core's UniValue prints it (16 significant digits, ``%g`` style): an int when
    it prints without a point, a ``Decimal`` of that text otherwise, a float in exponent form."""
    text = format(x, ".16g")
    if "e" in text:
        return float(text)
    if "." not in text:
        return int(text)
    return Decimal(text)


def _c_round(x: float, scale: int = 1) -> int | float | Decimal:
    """``round(x * scale) / scale`` in C (halves away from zero), printed as UniValue does."""
    if scale == 1:
        return _univalue_number(_round_half_away(x))
    return _univalue_number(_round_half_away(x * scale) / scale)


def _bucket_json(b: BucketStats) -> dict[str, Any]:
    return {
        "startrange": _c_round(b.start),
        "endrange": _c_round(b.end),
        "withintarget": _c_round(b.within_target, 100),
        "totalconfirmed": _c_round(b.total_confirmed, 100),
        "inmempool": _c_round(b.in_mempool, 100),
        "leftmempool": _c_round(b.left_mempool, 100),
    }


def smart_fee_json(
    estimate: SmartFeeEstimate,
    min_mempool_feerate: int = 0,
    min_relay_feerate: int = 100,
    sat_per_vb: bool = False,
) -> dict[str, Any]:
    """``estimatesmartfee``'s result: ``{"feerate": BTC/kvB, "blocks": n}`` or
    ``{"errors": [...], "blocks": n}``. A found feerate is raised to the pool's current minimum
    and the minimum relay feerate (both sat/kvB), as Core's RPC does."""
    out: dict[str, Any] = {}
    if estimate.feerate is not None:
        rate = max(estimate.feerate, min_mempool_feerate, min_relay_feerate)
        out["feerate"] = _feerate_value(rate, sat_per_vb)
    else:
        out["errors"] = list(estimate.errors)
    out["blocks"] = estimate.blocks
    return out


def raw_fee_json(estimates: Iterable[RawFeeEstimate], sat_per_vb: bool = False) -> dict[str, Any]:
    """``estimaterawfee``'s result: per horizon, on success ``feerate``, ``decay``, ``scale``,
    ``pass`` and (when some range failed) ``fail``; on failure ``decay``, ``scale``, ``fail`` and
    ``errors``."""
    out: dict[str, Any] = {}
    for est in estimates:
        res = est.result
        entry: dict[str, Any] = {}
        if est.feerate is not None:
            entry["feerate"] = _feerate_value(est.feerate, sat_per_vb)
            entry["decay"] = _univalue_number(res.decay)
            entry["scale"] = res.scale
            entry["pass"] = _bucket_json(res.pass_bucket)
            if res.fail_bucket.start != -1:
                entry["fail"] = _bucket_json(res.fail_bucket)
        else:
            entry["decay"] = _univalue_number(res.decay)
            entry["scale"] = res.scale
            entry["fail"] = _bucket_json(res.fail_bucket)
            entry["errors"] = list(est.errors)
        out[est.horizon.value] = entry
    return out


class FeeParamError(ValueError):
    """An ``estimatesmartfee``/``estimaterawfee`` argument Core rejects; the message is Core's
    and the RPC error code RPC_INVALID_PARAMETER (:attr:`code`, -8)."""

    code = -8


def estimatesmartfee(
    estimator: BlockPolicyEstimator,
    conf_target: int,
    estimate_mode: str | None = None,
    *,
    min_mempool_feerate: int = 0,
    min_relay_feerate: int = 100,
    sat_per_vb: bool = False,
) -> dict[str, Any]:
    """The whole ``estimatesmartfee`` after argument types are checked: the target range, the
    mode (``None`` is the default, economical), the estimate and its JSON. Feerates sat/kvB.
    Raises :class:`FeeParamError`."""
    error = conf_target_error(conf_target, estimator.highest_target_tracked(Horizon.LONG))
    if error is not None:
        raise FeeParamError(error)
    conservative = False
    if estimate_mode is not None:
        mode = fee_mode_from_string(estimate_mode)
        if mode is None:
            raise FeeParamError(INVALID_ESTIMATE_MODE)
        conservative = mode is FeeEstimateMode.CONSERVATIVE
    estimate = estimator.estimate_smart_fee(conf_target, conservative)
    return smart_fee_json(estimate, min_mempool_feerate, min_relay_feerate, sat_per_vb)


def estimaterawfee(
    estimator: BlockPolicyEstimator,
    conf_target: int,
    threshold: float | None = None,
    *,
    sat_per_vb: bool = False,
) -> dict[str, Any]:
    """The whole ``estimaterawfee`` after argument types are checked (``threshold`` defaults to
    0.95 and must lie in 0..1). Raises :class:`FeeParamError`."""
    error = conf_target_error(conf_target, estimator.highest_target_tracked(Horizon.LONG))
    if error is not None:
        raise FeeParamError(error)
    limit = DOUBLE_SUCCESS_PCT if threshold is None else float(threshold)
    if not 0 <= limit <= 1:
        raise FeeParamError(INVALID_THRESHOLD)
    return raw_fee_json(estimator.estimate_raw_fees(conf_target, limit), sat_per_vb)


# -- feefilter rounding -------------------------------------------------------------------------


class FeeFilterRounder:
    """Rounds the feerate we announce in ``feefilter`` to a coarse set of values, usually down,
    so it leaks less about our pool (Core's ``FeeFilterRounder``: values 0 and from half the
    incremental relay feerate up to 10^7 in steps of 10 %). ``rand32`` is the caller's random
    source (a callable returning a 32-bit integer), so tests can fix it."""

    MAX_FILTER_FEERATE = 1e7
    FEE_FILTER_SPACING = 1.1

    def __init__(self, min_incremental_fee: int, rand32: Callable[[], int]) -> None:
        values = {0.0}
        boundary = float(max(1, min_incremental_fee // 2))
        while boundary <= self.MAX_FILTER_FEERATE:
            values.add(boundary)
            boundary *= self.FEE_FILTER_SPACING
        self._values = sorted(values)
        self._rand32 = rand32

    def round(self, current_min_fee: int) -> int:
        """The announced value for a pool minimum of ``current_min_fee`` sat/kvB: the smallest
        set value at or above it, but two times in three the one below it (always the one below
        when it is above the largest)."""
        i = bisect_left(self._values, current_min_fee)
        if i == len(self._values) or (i != 0 and self._rand32() % 3 != 0):
            i -= 1
        return int(self._values[i])
