"""Core 30's orphan pool: each method's exact behaviour, the latency-score and reserved-weight
limits with DoS-score eviction, work sets and 1p1c children, and hypothesis invariants (bounded
memory, per-peer accounting matching the totals, peers within their reserve never evicted)."""

from __future__ import annotations

import random
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.p2p.orphanage import (
    DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE,
    DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER,
    MAX_STANDARD_TX_WEIGHT,
    OrphanInfo,
    TxOrphanage,
    latency_score,
)

_serial = iter(range(1, 1 << 40))


def parent_txid(i: int) -> bytes:
    return bytes([i % 256]) * 31 + bytes([i // 256])


def orphan(*prevouts: OutPoint, pad: int = 0, witness: bool = False, tag: int | None = None) -> Tx:
    """A transaction spending ``prevouts``, unique by a serial number in its output script;
    ``pad`` adds bytes to that script (4 weight units each)."""
    n = next(_serial) if tag is None else tag
    script = b"\x6a" + n.to_bytes(6, "little") + b"\x00" * pad
    wit = (b"\x01",) if witness else ()
    return Tx(2, [TxIn(p, b"", 0xFFFFFFFF, wit) for p in prevouts], [TxOut(0, script)])


def of_weight(weight: int, *prevouts: OutPoint) -> Tx:
    """A transaction of exactly ``weight`` (a multiple of 4, no witness)."""
    base = orphan(*prevouts, tag=0)
    pad = (weight - base.weight()) // 4
    tx = orphan(*prevouts, pad=pad)
    # Growing the script across a compact-size boundary costs bytes: correct once.
    tx = orphan(*prevouts, pad=pad - (tx.weight() - weight) // 4)
    assert tx.weight() == weight
    return tx


def block_of(*txs: Tx) -> Block:
    return Block(Header(4, b"\x00" * 32, b"\x00" * 32, 0, 0x207FFFFF, 0), txs)


def op(i: int, index: int = 0) -> OutPoint:
    return OutPoint(parent_txid(i), index)


def test_constants_are_cores() -> None:
    # src/policy/policy.h and src/node/txorphanage.h (Core 30)
    assert MAX_STANDARD_TX_WEIGHT == 400_000
    assert DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE == 3000
    assert DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER == 404_000
    pool = TxOrphanage()
    assert (pool.max_global_latency_score, pool.reserved_peer_usage) == (3000, 404_000)
    assert (pool.max_peer_latency_score(), pool.max_global_usage()) == (3000, 404_000)


def test_latency_score_counts_every_ten_inputs() -> None:
    got = [latency_score(orphan(*(op(1, i) for i in range(n)))) for n in (1, 9, 10, 19, 20, 25)]
    assert got == [1, 1, 2, 2, 3, 3]


def test_add_then_the_same_from_another_peer() -> None:
    pool = TxOrphanage()
    tx = orphan(op(1), op(2, 3))
    w = tx.weight()
    assert pool.add_tx(tx, 1) is True
    assert (pool.size(), pool.count_announcements(), pool.total_usage()) == (1, 1, w)
    assert (pool.usage_by_peer(1), pool.announcements_from_peer(1)) == (w, 1)
    assert (pool.total_latency_score(), pool.latency_score_from_peer(1)) == (1, 1)
    assert pool.have_tx(tx.wtxid) and pool.have_tx_from_peer(tx.wtxid, 1)
    assert not pool.have_tx(tx.txid + b"x")
    assert pool.get_tx(tx.wtxid) is tx
    assert pool.add_tx(tx, 1) is False  # the same announcement: nothing changes
    assert pool.count_announcements() == 1
    assert pool.add_tx(tx, 2) is False  # not a new orphan, but a new announcer
    assert (pool.size(), pool.count_announcements(), pool.total_usage()) == (1, 2, w)
    assert (pool.usage_by_peer(1), pool.usage_by_peer(2)) == (w, w)
    assert pool.total_latency_score() == 2
    assert pool.announcers(tx.wtxid) == frozenset({1, 2})
    assert pool.get_orphan_transactions() == [OrphanInfo(tx, frozenset({1, 2}))]
    assert pool.get_parent_txids(tx.wtxid) == sorted([parent_txid(1), parent_txid(2)])
    assert pool.get_parent_txids(b"\x07" * 32) is None
    pool.sanity_check()


def test_the_weight_limit_of_a_single_orphan() -> None:
    pool = TxOrphanage()
    too_heavy = of_weight(MAX_STANDARD_TX_WEIGHT + 4, op(1))
    assert pool.add_tx(too_heavy, 1) is False
    assert (pool.size(), pool.count_announcements(), pool.peers()) == (0, 0, [])
    heaviest = of_weight(MAX_STANDARD_TX_WEIGHT, op(1))
    assert pool.add_tx(heaviest, 1) is True
    assert pool.total_usage() == 400_000


def test_same_txid_different_witness_are_two_orphans() -> None:
    pool = TxOrphanage()
    plain = orphan(op(1), tag=77)
    with_witness = orphan(op(1), tag=77, witness=True)
    assert plain.txid == with_witness.txid and plain.wtxid != with_witness.wtxid
    assert pool.add_tx(plain, 1) and pool.add_tx(with_witness, 1)
    assert pool.size() == 2
    pool.sanity_check()


def test_add_announcer() -> None:
    pool = TxOrphanage()
    tx = orphan(op(1))
    assert pool.add_announcer(tx.wtxid, 1) is False  # unknown: we lack the transaction
    assert pool.peers() == []
    pool.add_tx(tx, 1)
    assert pool.add_announcer(tx.wtxid, 1) is False  # already its announcer
    assert pool.add_announcer(tx.wtxid, 2) is True
    assert pool.add_announcer(tx.wtxid, 2) is False
    assert pool.announcers(tx.wtxid) == frozenset({1, 2})
    assert pool.count_announcements() == 2
    pool.sanity_check()


def test_erase_tx_takes_every_announcement() -> None:
    pool = TxOrphanage()
    a, b = orphan(op(1)), orphan(op(2))
    pool.add_tx(a, 1)
    pool.add_tx(a, 2)
    pool.add_tx(b, 2)
    assert pool.erase_tx(a.wtxid) is True
    assert pool.erase_tx(a.wtxid) is False
    assert (pool.size(), pool.count_announcements(), pool.peers()) == (1, 1, [2])
    assert pool.usage_by_peer(1) == 0 and pool.usage_by_peer(2) == b.weight()
    assert pool.get_children(parent_txid(1)) == []
    pool.sanity_check()


def test_erase_for_peer_keeps_orphans_others_announced() -> None:
    pool = TxOrphanage()
    shared, mine, theirs = orphan(op(1)), orphan(op(2)), orphan(op(3))
    pool.add_tx(shared, 1)
    pool.add_tx(mine, 1)
    pool.add_tx(shared, 2)
    pool.add_tx(theirs, 2)
    assert pool.erase_for_peer(1) == 2
    assert pool.erase_for_peer(1) == 0
    assert not pool.have_tx(mine.wtxid)
    assert pool.announcers(shared.wtxid) == frozenset({2})
    assert (pool.size(), pool.count_announcements(), pool.peers()) == (2, 2, [2])
    pool.sanity_check()


def test_erase_for_block_takes_included_and_conflicting_orphans() -> None:
    pool = TxOrphanage()
    included = orphan(op(1), op(2))
    conflicted = orphan(op(3), op(4, 1))  # its second input is spent by the block
    unrelated = orphan(op(4, 0))
    for i, tx in enumerate((included, conflicted, unrelated)):
        pool.add_tx(tx, i)
    erased = pool.erase_for_block(block_of(orphan(op(9)), included, orphan(op(4, 1))))
    assert erased == {included.wtxid, conflicted.wtxid}
    assert pool.get_orphan_transactions() == [OrphanInfo(unrelated, frozenset({2}))]
    assert pool.erase_for_block(block_of(orphan(op(8)))) == set()
    pool.sanity_check()


def test_the_latency_limit_evicts_the_flooding_peers_oldest() -> None:
    pool = TxOrphanage(max_global_latency_score=10)
    txs = [orphan(op(i)) for i in range(12)]
    for tx in txs[:10]:
        assert pool.add_tx(tx, 1) is True
    assert pool.size() == 10  # exactly at the limit: nothing goes
    assert pool.add_tx(txs[10], 1) is True  # added, then the oldest evicted
    assert [o.tx for o in pool.get_orphan_transactions()] == txs[1:11]
    pool.add_tx(txs[11], 1)
    assert [o.tx for o in pool.get_orphan_transactions()] == txs[2:12]
    pool.sanity_check()


def test_a_peer_within_its_share_keeps_its_orphans_while_another_floods() -> None:
    pool = TxOrphanage(max_global_latency_score=20)
    honest = [orphan(op(100 + i)) for i in range(5)]
    for tx in honest:
        pool.add_tx(tx, 2)
    flood = [orphan(op(i)) for i in range(40)]
    for tx in flood:
        pool.add_tx(tx, 1)
        pool.sanity_check()
    assert all(pool.have_tx_from_peer(tx.wtxid, 2) for tx in honest)
    assert pool.total_latency_score() == 20
    assert pool.announcements_from_peer(1) == 15
    assert [t for t in flood if pool.have_tx(t.wtxid)] == flood[25:]  # its newest survive


def test_a_many_input_orphan_costs_more_latency() -> None:
    pool = TxOrphanage(max_global_latency_score=10)
    wide = orphan(*(op(1, i) for i in range(30)))  # score 4
    pool.add_tx(wide, 1)
    assert (pool.total_latency_score(), pool.latency_score_from_peer(1)) == (4, 4)
    pool.add_tx(wide, 2)  # a second announcement costs the full score to that peer...
    assert pool.latency_score_from_peer(2) == 4
    assert pool.total_latency_score() == 5  # ...but the inputs count once in the total
    pool.sanity_check()


def test_the_weight_limit_is_the_reserve_times_the_peers() -> None:
    pool = TxOrphanage()
    heavy = [of_weight(100_000, op(i)) for i in range(6)]
    for tx in heavy[:4]:
        pool.add_tx(tx, 1)
    assert pool.total_usage() == 400_000  # within one reserve of 404,000
    pool.add_tx(heavy[4], 1)
    assert pool.total_usage() == 400_000
    assert not pool.have_tx(heavy[0].wtxid) and pool.have_tx(heavy[4].wtxid)
    # A second peer doubles the limit, so its orphans and more of the first's fit.
    pool.add_tx(orphan(op(50)), 2)
    assert pool.max_global_usage() == 808_000
    pool.add_tx(heavy[5], 1)
    assert pool.usage_by_peer(1) == 500_000
    pool.sanity_check()


def test_losing_a_peer_lowers_the_limit_and_trims() -> None:
    pool = TxOrphanage()
    small = orphan(op(99))
    pool.add_tx(small, 2)
    heavy = [of_weight(100_000, op(i)) for i in range(6)]
    for tx in heavy:
        pool.add_tx(tx, 1)
    assert pool.usage_by_peer(1) == 600_000  # over its reserve, but the pool fits 808,000
    assert pool.erase_for_peer(2) == 1
    assert pool.max_global_usage() == 404_000
    assert [o.tx for o in pool.get_orphan_transactions()] == heavy[2:]
    pool.sanity_check()


def test_dos_score_is_the_larger_ratio_exactly() -> None:
    pool = TxOrphanage(max_global_latency_score=300)
    pool.add_tx(of_weight(202_000, op(1)), 1)  # half the reserve; 1/300 of the score
    assert pool.dos_score(1) == (Fraction(1, 2), -404_000)
    for i in range(200):
        pool.add_tx(orphan(op(10 + i)), 1)
    assert pool.dos_score(1) == (Fraction(201, 300), -300)
    assert pool.dos_score(5) == (Fraction(0), -300)  # an unknown peer scores nothing


def test_ties_go_against_the_higher_peer_id() -> None:
    pool = TxOrphanage(max_global_latency_score=4)
    a = [orphan(op(i)) for i in range(2)]
    b = [orphan(op(10 + i)) for i in range(2)]
    pool.add_tx(a[0], 3)
    pool.add_tx(b[0], 7)
    pool.add_tx(a[1], 3)
    pool.add_tx(b[1], 7)
    assert pool.total_latency_score() == 4
    pool.add_announcer(a[0].wtxid, 9)  # a third peer: shares of 4 // 3 = 1 each
    # Peers 3 and 7 both score 2/1: the higher id (7) loses its oldest, which is enough.
    assert not pool.have_tx(b[0].wtxid)
    assert pool.have_tx(b[1].wtxid)
    assert pool.total_latency_score() == 4
    assert pool.announcements_from_peer(7) == 1 and pool.announcements_from_peer(3) == 2
    pool.sanity_check()


def test_trimming_moves_on_when_the_worst_peer_is_no_longer_the_worst() -> None:
    pool = TxOrphanage(max_global_latency_score=12)
    pool.add_tx(orphan(op(99)), 3)
    p2 = [orphan(op(20 + i)) for i in range(6)]
    p1 = [orphan(op(10 + i)) for i in range(4)]
    for tx in p2:
        pool.add_tx(tx, 2)
    for tx in p1:
        pool.add_tx(tx, 1)
    assert pool.total_latency_score() == 11 and pool.max_peer_latency_score() == 4
    big = orphan(*(op(50, i) for i in range(40)))  # latency score 5
    pool.add_tx(big, 1)  # 16 > 12: peer 1 (9/4) trims down to peer 2's 6/4, then peer 2 goes
    assert [t for t in p1 if pool.have_tx(t.wtxid)] == p1[3:]
    assert [t for t in p2 if pool.have_tx(t.wtxid)] == p2[1:]
    assert pool.have_tx(big.wtxid)
    assert [pool.latency_score_from_peer(p) for p in (1, 2, 3)] == [6, 5, 1]
    pool.sanity_check()


def test_queued_announcements_are_evicted_after_the_others() -> None:
    pool = TxOrphanage(max_global_latency_score=3)
    parent = orphan(op(1))
    child = orphan(OutPoint(parent.txid, 0))
    later = [orphan(op(5 + i)) for i in range(2)]
    pool.add_tx(child, 1)
    pool.add_tx(later[0], 1)
    pool.add_tx(later[1], 1)
    assert pool.add_children_to_work_set(parent, random.Random(1)) == [(child.wtxid, 1)]
    pool.add_tx(orphan(op(9)), 1)  # over the limit: the oldest unqueued one goes, not child
    assert pool.have_tx(child.wtxid) and not pool.have_tx(later[0].wtxid)
    pool.sanity_check()


def test_work_set_and_reconsideration() -> None:
    pool = TxOrphanage()
    parent = Tx(2, [TxIn(op(1))], [TxOut(1, b"\x51"), TxOut(2, b"\x51")])
    c0 = orphan(OutPoint(parent.txid, 0))
    c1 = orphan(OutPoint(parent.txid, 1), op(7))
    both = orphan(OutPoint(parent.txid, 0), OutPoint(parent.txid, 1))
    other = orphan(OutPoint(parent.txid, 5))  # an output the parent does not have
    for tx in (c0, c1, both, other):
        pool.add_tx(tx, 4)
    pool.add_tx(c1, 6)
    assert not pool.have_tx_to_reconsider(4)
    queued = pool.add_children_to_work_set(parent, random.Random(3))
    assert sorted(w for w, _ in queued) == sorted([c0.wtxid, c1.wtxid, both.wtxid])
    assert len(queued) == 3  # `both` spends two outputs but is queued once
    who = dict(queued)
    assert who[c0.wtxid] == 4 and who[both.wtxid] == 4 and who[c1.wtxid] in (4, 6)
    assert pool.add_children_to_work_set(parent, random.Random(3)) == []  # already queued
    pool.sanity_check()
    taken = []
    for peer in (4, 6):
        while (tx := pool.get_tx_to_reconsider(peer)) is not None:
            taken.append(tx)
    assert sorted(t.wtxid for t in taken) == sorted([c0.wtxid, c1.wtxid, both.wtxid])
    mine = [t for t in taken if who[t.wtxid] == 4]
    assert mine == [t for t in (c0, c1, both) if who[t.wtxid] == 4]  # oldest first
    assert pool.size() == 4  # reconsidering leaves them in the pool
    assert not pool.have_tx_to_reconsider(4) and not pool.have_tx_to_reconsider(6)
    assert len(pool.add_children_to_work_set(parent, random.Random(3))) == 3  # queued again
    pool.sanity_check()


def test_the_random_announcer_choice_covers_every_announcer() -> None:
    parent = orphan(op(1))
    child = orphan(OutPoint(parent.txid, 0))
    picked = set()
    for seed in range(40):
        pool = TxOrphanage()
        for peer in (1, 2, 3):
            pool.add_tx(child, peer)
        [(wtxid, peer)] = pool.add_children_to_work_set(parent, random.Random(seed))
        assert wtxid == child.wtxid
        assert pool.have_tx_to_reconsider(peer)
        picked.add(peer)
    assert picked == {1, 2, 3}


def test_children_from_the_same_peer_queued_first_then_newest() -> None:
    pool = TxOrphanage()
    parent = orphan(op(1))
    kids = [orphan(OutPoint(parent.txid, 0), op(20 + i)) for i in range(4)]
    for kid in kids:
        pool.add_tx(kid, 1)
    pool.add_tx(orphan(op(30)), 1)  # not a child
    pool.add_tx(kids[3], 2)
    foreign = orphan(OutPoint(parent.txid, 1))
    pool.add_tx(foreign, 2)
    assert pool.children_from_peer(parent.txid, 1) == kids[::-1]
    assert pool.children_from_peer(parent.txid, 2) == [foreign, kids[3]]
    assert pool.children_from_peer(parent.txid, 3) == []
    assert pool.children_from_peer(b"\x05" * 32, 1) == []
    # get_children: the preferred peer's children first, then the rest, newest announcement first
    assert pool.get_children(parent.txid, prefer_peer=2) == [foreign, kids[3], *kids[2::-1]]
    assert pool.get_children(parent.txid, prefer_peer=1) == [*kids[::-1], foreign]
    assert pool.get_children(parent.txid) == [foreign, kids[3], *kids[2::-1]]
    assert pool.get_children(b"\x05" * 32, prefer_peer=1) == []
    queued = dict(pool.add_children_to_work_set(parent, random.Random(0)))
    assert sorted(queued) == sorted(k.wtxid for k in kids)  # foreign spends no real output
    # Queued ones first (newest first), then the unqueued ones (newest first).
    mine_queued = [k for k in kids[::-1] if queued[k.wtxid] == 1]
    mine_unqueued = [k for k in kids[::-1] if queued[k.wtxid] != 1]
    assert pool.children_from_peer(parent.txid, 1) == mine_queued + mine_unqueued
    assert len(mine_queued) >= 3


def test_limits_must_be_positive() -> None:
    for args in ((0, 1), (1, 0)):
        try:
            TxOrphanage(*args)
        except ValueError as e:
            assert str(e) == "orphanage limits must be positive"
        else:
            raise AssertionError("accepted a zero limit")


# -- invariants under random operations ---------------------------------------------------------

PARENTS = [Tx(2, [TxIn(op(200 + i))], [TxOut(1, b"\x51")] * 3) for i in range(6)]


def _pool_txs() -> list[Tx]:
    """24 orphans of 1, 2 or 12 inputs and three sizes, spending outputs of PARENTS (so work
    sets fill) and of unknown transactions, often the same ones (so blocks conflict)."""
    txs = []
    for n in range(24):
        rng = random.Random(n)
        prevouts = {
            OutPoint(PARENTS[rng.randrange(6)].txid, rng.randrange(3))
            if rng.random() < 0.5
            else op(rng.randrange(6), rng.randrange(3))
            for _ in range(rng.choice((1, 2, 12)))
        }
        ordered = sorted(prevouts, key=lambda o: (o.txid, o.index))
        txs.append(orphan(*ordered, pad=rng.choice((0, 300, 900))))
    return txs


POOL_TXS = _pool_txs()

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 23), st.integers(0, 4)),
        st.tuples(st.just("announce"), st.integers(0, 23), st.integers(0, 4)),
        st.tuples(st.just("erase"), st.integers(0, 23)),
        st.tuples(st.just("peer"), st.integers(0, 4)),
        st.tuples(st.just("block"), st.lists(st.integers(0, 23), max_size=3)),
        st.tuples(st.just("work"), st.integers(0, 5), st.integers(0, 1000)),
        st.tuples(st.just("take"), st.integers(0, 4)),
    ),
    max_size=50,
)


def check_bounds(pool: TxOrphanage) -> None:
    pool.sanity_check()  # totals recomputed from the announcements, and within the limits
    assert pool.total_latency_score() <= pool.max_global_latency_score
    assert pool.total_usage() <= pool.reserved_peer_usage * max(len(pool.peers()), 1)
    assert sum(pool.usage_by_peer(p) for p in pool.peers()) >= pool.total_usage()
    assert sum(pool.announcements_from_peer(p) for p in pool.peers()) == (
        pool.count_announcements()
    )
    assert pool.size() <= pool.count_announcements()


def protected_peers(pool: TxOrphanage, adder: int) -> list[int]:
    """Peers other than ``adder`` within their share under the limits of the coming trim."""
    n = len(set(pool.peers()) | {adder})
    max_latency = max(pool.max_global_latency_score // n, 1)
    return [
        p
        for p in pool.peers()
        if p != adder
        and pool.latency_score_from_peer(p) <= max_latency
        and pool.usage_by_peer(p) <= pool.reserved_peer_usage
    ]


def holdings(pool: TxOrphanage, peer: int) -> set[bytes]:
    return {o.tx.wtxid for o in pool.get_orphan_transactions() if peer in o.announcers}


def run(pool: TxOrphanage, ops: list[tuple[object, ...]]) -> dict[str, int]:
    seen = {"trims": 0, "protected": 0}
    for o in ops:
        kind = o[0]
        if kind in ("add", "announce"):
            _, i, peer = o
            tx = POOL_TXS[i]
            before = {p: holdings(pool, p) for p in protected_peers(pool, peer)}
            n_before = pool.count_announcements()
            known = pool.have_tx(tx.wtxid)
            new = not pool.have_tx_from_peer(tx.wtxid, peer) and (kind == "add" or known)
            if kind == "add":
                assert pool.add_tx(tx, peer) is (not known)
            else:
                assert pool.add_announcer(tx.wtxid, peer) is new
            for p, held in before.items():  # nobody within its share lost anything
                assert holdings(pool, p) == held
                seen["protected"] += 1
            if pool.count_announcements() < n_before + new:
                seen["trims"] += 1
        elif kind == "erase":
            pool.erase_tx(POOL_TXS[o[1]].wtxid)
        elif kind == "peer":
            pool.erase_for_peer(o[1])
            assert pool.announcements_from_peer(o[1]) == 0
        elif kind == "block":
            txs = [POOL_TXS[i] for i in o[1]]
            erased = pool.erase_for_block(block_of(*txs))
            spent = {i.prevout for tx in txs for i in tx.inputs}
            for info in pool.get_orphan_transactions():
                assert not spent & {i.prevout for i in info.tx.inputs}
            assert all(not pool.have_tx(w) for w in erased)
        elif kind == "work":
            pool.add_children_to_work_set(PARENTS[o[1]], random.Random(o[2]))
        else:
            tx = pool.get_tx_to_reconsider(o[1])
            assert tx is None or pool.have_tx_from_peer(tx.wtxid, o[1])
        check_bounds(pool)
    for p in pool.peers():
        pool.erase_for_peer(p)
    assert (pool.size(), pool.count_announcements(), pool.total_usage()) == (0, 0, 0)
    pool.sanity_check()
    return seen


@settings(max_examples=300, deadline=None)
@given(_ops, st.integers(4, 40), st.integers(3000, 12000))
def test_invariants_under_random_operations(
    ops: list[tuple[object, ...]], max_latency: int, reserve: int
) -> None:
    run(TxOrphanage(max_global_latency_score=max_latency, reserved_peer_usage=reserve), ops)


def test_seeded_random_runs_trim_and_protect() -> None:
    totals = {"trims": 0, "protected": 0}
    for seed in range(30):
        rng = random.Random(seed)
        ops: list[tuple[object, ...]] = []
        for _ in range(150):
            r = rng.random()
            if r < 0.55:
                ops.append(("add", rng.randrange(24), rng.randrange(5)))
            elif r < 0.7:
                ops.append(("announce", rng.randrange(24), rng.randrange(5)))
            elif r < 0.75:
                ops.append(("erase", rng.randrange(24)))
            elif r < 0.8:
                ops.append(("peer", rng.randrange(5)))
            elif r < 0.85:
                ops.append(("block", [rng.randrange(24) for _ in range(2)]))
            elif r < 0.93:
                ops.append(("work", rng.randrange(6), rng.randrange(1000)))
            else:
                ops.append(("take", rng.randrange(5)))
        seen = run(TxOrphanage(max_global_latency_score=12, reserved_peer_usage=6000), ops)
        for k in totals:
            totals[k] += seen[k]
    assert totals["trims"] > 50  # the limits were hit often
    assert totals["protected"] > 500  # and the protection was checked often
