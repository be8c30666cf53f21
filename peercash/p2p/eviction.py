"""Which inbound peer to drop when a new one arrives and every inbound slot is taken.

Layer L2 (``peercash.p2p``); a pure function over :class:`EvictionCandidate` snapshots, no I/O,
no clock. The connection manager builds the candidates (inbound peers without the ``noban``
permission that are not already disconnecting) and calls :func:`select_peer_to_evict`.

The rules are Bitcoin Core's (``src/node/eviction.cpp``), written anew: an attacker who opens
many connections must not be able to push out the peers that are hard to fake. In order, these
are protected (taken out of the candidates):

1. 4 peers by network group, keyed with our secret (an attacker cannot predict which groups);
2. the 8 with the lowest minimum ping (cannot be faked without moving closer);
3. the 4 that most recently sent us a new transaction we accepted;
4. up to 8 block-relay peers (no transaction relay, but useful services) that most recently
   sent us a new block;
5. the 4 that most recently sent us a new block;
6. half of the rest by time connected, the longest first — of which up to half go first to
   peers on disadvantaged networks (Tor, I2P, CJDNS, localhost), whose latency the ping rule
   would otherwise punish.

Of what remains, if any peer is marked ``prefer_evict`` (discouraged) only those are considered;
then the network group with the most candidates is chosen (ties: the group whose newest member
connected last), and its newest member is evicted. None when every candidate is protected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from peercash.p2p.netaddress import Network

__all__ = ["EvictionCandidate", "select_peer_to_evict"]


@dataclass(frozen=True, slots=True)
class EvictionCandidate:
    """What eviction needs to know of one inbound peer. Times are UNIX seconds (0: never);
    ``min_ping`` is seconds (``inf`` when no pong came yet)."""

    id: int
    connected: float
    min_ping: float
    last_block_time: float
    last_tx_time: float
    relevant_services: bool
    relay_txs: bool
    keyed_net_group: int
    prefer_evict: bool = False
    is_local: bool = False
    network: Network = Network.IPV4
    bloom_filter: bool = False


_Key = Callable[[EvictionCandidate], Any]


def _protect(
    cands: list[EvictionCandidate],
    key: _Key,
    k: int,
    eligible: Callable[[EvictionCandidate], bool] | None = None,
) -> list[EvictionCandidate]:
    """Order ``cands`` by ``key`` (the most deserving last) and remove, among the last ``k``,
    those that are ``eligible`` (all when None). The order is kept for the next step."""
    ordered = sorted(cands, key=key)
    cut = max(len(ordered) - k, 0)
    tail = ordered[cut:]
    if eligible is not None:
        tail = [c for c in tail if not eligible(c)]
    else:
        tail = []
    return ordered[:cut] + tail


def _disadvantaged(is_local: bool, network: Network | None) -> Callable[[EvictionCandidate], bool]:
    if is_local:
        return lambda c: c.is_local
    if network is Network.TORV3:
        return lambda c: c.network in (Network.TORV2, Network.TORV3)
    return lambda c: c.network == network


def _protect_by_ratio(cands: list[EvictionCandidate]) -> list[EvictionCandidate]:
    """Step 6: protect half of ``cands`` by uptime, up to a quarter of them on disadvantaged
    networks first (networks with fewer candidates get the first turns)."""
    total_protect = len(cands) // 2
    # (name, match) in the order that breaks ties: CJDNS, I2P, localhost, onion.
    groups: list[tuple[Callable[[EvictionCandidate], bool], int]] = []
    for is_local, net in ((False, Network.CJDNS), (False, Network.I2P), (True, None),
                          (False, Network.TORV3)):  # fmt: skip
        match = _disadvantaged(is_local, net)
        groups.append((match, sum(1 for c in cands if match(c))))
    groups.sort(key=lambda g: g[1])  # stable: ties keep the order above
    counts = [n for _, n in groups]
    max_by_network = total_protect // 2
    protected = 0
    while protected < max_by_network:
        active = sum(1 for n in counts if n)
        if active == 0:
            break
        per_network = max((max_by_network - protected) // active, 1)
        progress = False
        for i, (match, _) in enumerate(groups):
            if counts[i] == 0:
                continue
            before = len(cands)

            def by_network_then_age(
                c: EvictionCandidate, match: Callable[[EvictionCandidate], bool] = match
            ) -> tuple[bool, float]:
                return (match(c), -c.connected)

            cands = _protect(cands, by_network_then_age, per_network, match)
            removed = before - len(cands)
            if removed:
                progress = True
                protected += removed
                if protected >= max_by_network:
                    break
                counts[i] -= removed
        if not progress:
            break
    return _protect(cands, lambda c: -c.connected, total_protect - protected)


def select_peer_to_evict(candidates: Sequence[EvictionCandidate]) -> int | None:
    """The id of the inbound peer to evict, or None (see the module docstring)."""
    cands = list(candidates)
    cands = _protect(cands, lambda c: c.keyed_net_group, 4)
    cands = _protect(cands, lambda c: -c.min_ping, 8)
    cands = _protect(
        cands, lambda c: (c.last_tx_time, c.relay_txs, not c.bloom_filter, -c.connected), 4
    )
    cands = _protect(
        cands,
        lambda c: (not c.relay_txs, c.last_block_time, c.relevant_services, -c.connected),
        8,
        lambda c: not c.relay_txs and c.relevant_services,
    )
    cands = _protect(cands, lambda c: (c.last_block_time, c.relevant_services, -c.connected), 4)
    cands = _protect_by_ratio(cands)
    if not cands:
        return None
    if any(c.prefer_evict for c in cands):
        cands = [c for c in cands if c.prefer_evict]
    # ``cands`` is ordered newest first now. Find the biggest group; ties go to the group whose
    # newest member is the newest.
    groups: dict[int, list[EvictionCandidate]] = {}
    for c in cands:
        groups.setdefault(c.keyed_net_group, []).append(c)
    best = max(groups.values(), key=lambda g: (len(g), g[0].connected))
    return best[0].id
