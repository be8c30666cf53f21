"""Per-peer address gossip rules: how many ``addr``/``addrv2`` entries a peer may feed us, and
answering ``getaddr`` once per connection.

Layer L2 (``peercash.p2p``); pure bookkeeping with the time passed in, no I/O. One instance of
each class per connection, used by the peer/sync layer from the event loop thread.

What the caller does with an incoming ``addr``/``addrv2`` (Core's ``ProcessMessage`` for ADDR):
reject a message of more than ``MAX_ADDR_TO_SEND`` entries as misbehaviour; shuffle the entries;
``n = limiter.allow(len(entries), now)`` and keep the first ``n`` (the rest are dropped and
counted); give entries with an implausible time (at or before 100000000, or more than 10 minutes
ahead) a time 5 days ago; then ``addrman.add(kept, source=peer_address, time_penalty=2 * 3600)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from peercash.p2p.addrman import MAX_ADDR_TO_SEND, MAX_PCT_ADDR_TO_SEND

__all__ = [
    "INITIAL_ADDR_TOKENS",
    "MAX_ADDR_PROCESSING_TOKEN_BUCKET",
    "MAX_ADDR_RATE_PER_SECOND",
    "MAX_ADDR_TO_SEND",
    "MAX_PCT_ADDR_TO_SEND",
    "AddrRateLimiter",
    "GetAddrOnce",
]

# Core: src/net_processing.cpp (MAX_ADDR_TO_SEND = 1000 is in addrman)
MAX_ADDR_RATE_PER_SECOND = 0.1  # MAX_ADDR_RATE_PER_SECOND: the sustained rate we process
MAX_ADDR_PROCESSING_TOKEN_BUCKET = MAX_ADDR_TO_SEND  # MAX_ADDR_PROCESSING_TOKEN_BUCKET: the cap
INITIAL_ADDR_TOKENS = 1.0  # Peer::m_addr_token_bucket starts at 1: a peer may announce itself


class AddrRateLimiter:
    """Core's per-peer token bucket for address processing.

    Tokens accrue at 0.1 a second up to 1,000 (accrual is skipped while the bucket is full, and
    stops at the cap); each processed address spends one; when fewer than one token is left, the
    remaining addresses of the message are dropped (and counted in ``rate_limited``). Sending the
    peer a ``getaddr`` grants 1,000 more tokens on top, beyond the cap, for its answer.
    A peer with the ``addr`` permission (``exempt``) still spends tokens but is never limited.
    """

    __slots__ = ("exempt", "processed", "rate_limited", "timestamp", "tokens")

    def __init__(self, now: float, exempt: bool = False) -> None:
        self.tokens: float = INITIAL_ADDR_TOKENS
        self.timestamp: float = now  # last accrual (Core: m_addr_token_timestamp, set at connect)
        self.exempt = exempt
        self.processed = 0  # addresses let through so far
        self.rate_limited = 0  # addresses dropped so far (Core: m_addr_rate_limited)

    def on_getaddr_sent(self) -> None:
        """We sent this peer ``getaddr``: accept a full answer (Core adds MAX_ADDR_TO_SEND)."""
        self.tokens += MAX_ADDR_TO_SEND

    def _accrue(self, now: float) -> None:
        if self.tokens < MAX_ADDR_PROCESSING_TOKEN_BUCKET:
            elapsed = max(now - self.timestamp, 0.0)
            self.tokens = min(
                self.tokens + elapsed * MAX_ADDR_RATE_PER_SECOND,
                float(MAX_ADDR_PROCESSING_TOKEN_BUCKET),
            )
        self.timestamp = now

    def allow(self, n_addresses: int, now: float) -> int:
        """Of a message of ``n_addresses`` entries received at ``now``, how many to process (the
        first that many, after the caller's shuffle)."""
        self._accrue(now)
        # Core spends one token per address while at least one is left. Subtracting whole numbers
        # from a float below 2**53 is exact, so spending k at once is the same as k times one.
        affordable = int(self.tokens) if self.tokens >= 1.0 else 0
        spent = min(n_addresses, affordable)
        self.tokens -= spent
        allowed = n_addresses if self.exempt else spent
        self.processed += allowed
        self.rate_limited += n_addresses - allowed
        return allowed


@dataclass(slots=True)
class GetAddrOnce:
    """Whether to answer a peer's ``getaddr`` (Core's rules).

    Only inbound peers are answered: an attacker who can make us connect out could otherwise
    plant addresses and read them back to fingerprint us. And only the first request of a
    connection is answered, which bounds the work and stops "addr stamping" of INV announcements;
    later requests are ignored (not misbehaviour). The answer is
    ``addrman.get_addr(MAX_ADDR_TO_SEND, MAX_PCT_ADDR_TO_SEND)``.
    """

    inbound: bool
    answered: bool = False

    def should_answer(self) -> bool:
        """True the first time for an inbound peer (and marks it answered); False otherwise."""
        if not self.inbound or self.answered:
            return False
        self.answered = True
        return True
