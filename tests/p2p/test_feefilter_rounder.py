"""The ``feefilter`` the relay sends is rounded as Core rounds it (``FeeFilterRounder``).

Figures from Bitcoin Core: ``src/test/policyestimator_tests.cpp`` (``FeeRounder``: with a
1,000 sat/kvB minimum, 1,000 rounds to 974 or 1,071, negatives to 0, MAX_MONEY to 9,170,997) and
``test/functional/p2p_ibd_txrelay.py`` (the filter sent during IBD is MAX_MONEY rounded:
9,170,997 with the old 1,000 sat/kvB default; ours, from Core 30's 100 sat/kvB, is 9,936,506)."""

from __future__ import annotations

import random

from peercash.consensus.primitives import MAX_MONEY
from peercash.mempool.fees import FeeFilterRounder
from peercash.mempool.pool import MemPool


def test_rounding_as_core() -> None:
    rng = random.Random(7)
    r = FeeFilterRounder(1000, lambda: rng.getrandbits(32))
    seen = [r.round(1000) for _ in range(300)]
    assert set(seen) == {974, 1071}
    assert 60 < seen.count(1071) < 140  # the bucket above a third of the time
    assert r.round(0) == 0 and r.round(-1) == 0
    assert r.round(MAX_MONEY) == 9_170_997


def test_the_relay_rounds_with_the_default_minimum_relay_fee() -> None:
    from peercash.p2p.txrelay import TxRelay

    relay = TxRelay(
        MemPool(_NoChain()),  # type: ignore[arg-type]
        lambda *a: None,
        call_soon_threadsafe=lambda *a: None,
        misbehaving=lambda *a: None,
        is_ibd=lambda: False,
        rng=random.Random(1),
    )
    assert relay._max_filter == 9_936_506  # what a node in IBD sends
    assert {relay.fee_filter_rounder.round(100) for _ in range(100)} == {97, 107}


class _NoChain:
    tip_height = 0
    tip_hash = b"\0" * 32
    coinbase_maturity = 100
