"""Core's per-peer address rate limit (token bucket) and the once-per-connection getaddr rule."""

from __future__ import annotations

from peercash.p2p.addrrelay import (
    MAX_ADDR_PROCESSING_TOKEN_BUCKET,
    MAX_ADDR_RATE_PER_SECOND,
    MAX_ADDR_TO_SEND,
    AddrRateLimiter,
    GetAddrOnce,
)

T0 = 1_700_000_000.0


def test_constants_are_cores() -> None:
    assert (MAX_ADDR_TO_SEND, MAX_ADDR_RATE_PER_SECOND, MAX_ADDR_PROCESSING_TOKEN_BUCKET) == (
        1000,
        0.1,
        1000,
    )


def test_a_new_peer_may_send_one_address() -> None:
    lim = AddrRateLimiter(now=T0)
    assert lim.tokens == 1.0
    assert lim.allow(5, T0) == 1
    assert lim.tokens == 0.0
    assert lim.allow(5, T0) == 0
    assert (lim.processed, lim.rate_limited) == (1, 9)


def test_tokens_accrue_at_a_tenth_per_second() -> None:
    lim = AddrRateLimiter(now=T0)
    lim.allow(1, T0)  # spend the first token
    assert lim.allow(3, T0 + 9) == 0  # 0.9 tokens: not enough for one
    assert lim.tokens == 9 * 0.1
    assert lim.allow(3, T0 + 10) == 1  # 0.9 + 0.1 = 1.0
    assert lim.tokens == 9 * 0.1 + 1 * 0.1 - 1
    lim = AddrRateLimiter(now=T0)
    assert lim.allow(10, T0 + 25) == 3  # 1 + 2.5 tokens
    assert lim.tokens == 1.0 + 25 * 0.1 - 3 == 0.5
    assert lim.allow(10, T0 + 30) == 1  # 0.5 + 0.5
    assert lim.tokens == 0.0
    assert (lim.processed, lim.rate_limited) == (4, 16)


def test_tokens_stop_at_the_cap_and_time_never_runs_backwards() -> None:
    lim = AddrRateLimiter(now=T0)
    assert lim.allow(0, T0 + 1_000_000) == 0
    assert lim.tokens == 1000.0
    assert lim.allow(1500, T0 + 1_000_000) == 1000
    assert lim.tokens == 0.0
    assert lim.rate_limited == 500
    assert lim.allow(10, T0 + 500_000) == 0  # a clock step backwards accrues nothing
    assert lim.tokens == 0.0 and lim.timestamp == T0 + 500_000
    assert lim.allow(10, T0 + 500_010) == 1


def test_getaddr_grants_a_full_answer_beyond_the_cap() -> None:
    lim = AddrRateLimiter(now=T0)
    lim.on_getaddr_sent()
    assert lim.tokens == 1001.0
    assert lim.allow(1000, T0 + 1) == 1000  # no accrual while at or over the cap
    assert lim.tokens == 1.0
    assert lim.allow(2, T0 + 1) == 1
    # Over the cap, time passes without accrual, but the timestamp moves on.
    lim = AddrRateLimiter(now=T0)
    lim.on_getaddr_sent()
    lim.on_getaddr_sent()
    assert lim.allow(0, T0 + 3600) == 0
    assert (lim.tokens, lim.timestamp) == (2001.0, T0 + 3600)
    assert lim.allow(1995, T0 + 3600) == 1995
    assert lim.tokens == 6.0
    assert lim.allow(0, T0 + 3610) == 0
    assert lim.tokens == 7.0  # below the cap again: accrual resumes from the last timestamp


def test_exempt_peers_spend_tokens_but_are_never_limited() -> None:
    lim = AddrRateLimiter(now=T0, exempt=True)
    assert lim.allow(50, T0) == 50
    assert lim.tokens == 0.0
    assert (lim.processed, lim.rate_limited) == (50, 0)


def test_getaddr_is_answered_once_and_only_for_inbound_peers() -> None:
    inbound = GetAddrOnce(inbound=True)
    assert inbound.should_answer()
    assert not inbound.should_answer()
    assert not inbound.should_answer()
    outbound = GetAddrOnce(inbound=False)
    assert not outbound.should_answer()
