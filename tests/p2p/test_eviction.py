"""Inbound eviction as a pure function: every protection rule, the preference for discouraged
peers, and the choice of the biggest network group's newest member."""

from __future__ import annotations

import random
from dataclasses import replace

from peercash.p2p.eviction import EvictionCandidate, select_peer_to_evict
from peercash.p2p.netaddress import Network


def cand(i: int, **kw: object) -> EvictionCandidate:
    base: dict[str, object] = {
        "id": i,
        "connected": 1000.0 + i,  # higher id: connected later
        "min_ping": 1.0,
        "last_block_time": 0.0,
        "last_tx_time": 0.0,
        "relevant_services": False,
        "relay_txs": True,
        "keyed_net_group": 7,
    }
    base.update(kw)
    return EvictionCandidate(**base)  # type: ignore[arg-type]


def test_nothing_to_evict() -> None:
    assert select_peer_to_evict([]) is None
    # Few candidates are all protected (4 by network group alone).
    assert select_peer_to_evict([cand(i, keyed_net_group=i) for i in range(4)]) is None
    # With no distinguishing traits, 20 are protected by the first five rules; then half of the
    # rest by uptime: 21 candidates leave one.
    assert select_peer_to_evict([cand(i) for i in range(20)]) is None
    assert select_peer_to_evict([cand(i) for i in range(21)]) is not None


def test_the_newest_of_the_biggest_group_goes() -> None:
    # 40 peers: 30 in group 1, 10 in group 2; all alike otherwise.
    cands = [cand(i, keyed_net_group=1 if i < 30 else 2, min_ping=5.0) for i in range(40)]
    # Protected: 36-39 (highest keyed group), 28-35 (last 8 by the equal pings), 0-3 (tx rule's
    # oldest), 4-7 (block rule's oldest), 8-17 (half of the remaining 20 by uptime). Left: 18-27,
    # all in group 1; the newest goes.
    assert select_peer_to_evict(cands) == 27


def test_protected_traits_survive() -> None:
    rng = random.Random(1)
    cands = [cand(i, keyed_net_group=rng.randrange(3), min_ping=10.0 + i) for i in range(60)]
    # Special peers: lowest ping, recent transactions, recent blocks, longest connected.
    cands[50] = replace(cands[50], min_ping=0.001)
    cands[51] = replace(cands[51], last_tx_time=5000.0)
    cands[52] = replace(cands[52], last_block_time=5000.0)
    cands[53] = replace(cands[53], connected=1.0)
    for _ in range(60):
        victim = select_peer_to_evict(cands)
        assert victim is not None
        assert victim not in (50, 51, 52, 53)
        cands = [c for c in cands if c.id != victim]
        if len(cands) <= 21:
            break


def test_block_relay_only_peers_that_relay_blocks_are_protected() -> None:
    cands = [cand(i, min_ping=10.0 + i) for i in range(40)]
    # 8 block-relay-only peers with recent blocks: more than the 4 of the plain block rule.
    for i in range(30, 38):
        cands[i] = replace(cands[i], relay_txs=False, relevant_services=True,
                           last_block_time=100.0 + i)  # fmt: skip
    seen = set()
    for _ in range(30):
        victim = select_peer_to_evict(cands)
        if victim is None:
            break
        seen.add(victim)
        cands = [c for c in cands if c.id != victim]
    assert not seen & set(range(30, 38))


def test_discouraged_peers_go_first() -> None:
    cands = [cand(i, min_ping=10.0 + i) for i in range(40)]
    # Unprotected are 26-35 (36-39 by group, 0-7 by ping, 8-15 by the tx and block rules'
    # oldest, 16-25 by uptime); the newest, 35, would go.
    assert select_peer_to_evict(cands) == 35
    cands[30] = replace(cands[30], prefer_evict=True)
    assert select_peer_to_evict(cands) == 30
    # Protection comes first: a discouraged peer with the lowest ping stays.
    cands[30] = replace(cands[30], prefer_evict=False)
    cands[3] = replace(cands[3], prefer_evict=True)
    assert select_peer_to_evict(cands) == 35


def test_disadvantaged_networks_keep_some_protection() -> None:
    # 30 IPv4 peers and 4 Tor peers, the Tor peers young and slow: without the network rule
    # they would be the first to go.
    cands = [cand(i, min_ping=1.0, connected=100.0 + i) for i in range(30)]
    cands += [
        cand(
            30 + i, min_ping=9.0, connected=10_000.0 + i, network=Network.TORV3, keyed_net_group=99
        )
        for i in range(4)
    ]
    evicted = []
    pool = list(cands)
    for _ in range(5):
        victim = select_peer_to_evict(pool)
        assert victim is not None
        evicted.append(victim)
        pool = [c for c in pool if c.id != victim]
    # Some Tor peers are protected by the network share; the biggest group (IPv4) is evicted.
    assert all(v < 30 for v in evicted)
