"""Core's transaction request tracker: exact behaviour of each operation, Core's download delays,
and a comparison with a naive model of the specification (the idea of Core's txrequest fuzz
test) under random operation sequences."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.p2p.txrequest import (
    GETDATA_TX_INTERVAL,
    MAX_PEER_TX_ANNOUNCEMENTS,
    MAX_PEER_TX_REQUEST_IN_FLIGHT,
    NONPREF_PEER_TX_DELAY,
    OVERLOADED_PEER_TX_DELAY,
    TXID_RELAY_DELAY,
    AnnouncementState,
    GenTxid,
    TxRequestTracker,
    accepts_announcement,
    announcement_reqtime,
)

S = AnnouncementState
T0 = 1_000.0
H1, H2, H3 = (bytes([i]) * 32 for i in (1, 2, 3))
W1, W2, W3 = GenTxid.wtxid(H1), GenTxid.wtxid(H2), GenTxid.wtxid(H3)


def tracker() -> TxRequestTracker:
    return TxRequestTracker(salt=b"\x00" * 16)


def test_constants_are_cores() -> None:
    # src/node/txdownloadman.h (Core 28 to 31)
    assert MAX_PEER_TX_ANNOUNCEMENTS == 5000
    assert MAX_PEER_TX_REQUEST_IN_FLIGHT == 100
    assert (TXID_RELAY_DELAY, NONPREF_PEER_TX_DELAY, OVERLOADED_PEER_TX_DELAY) == (2.0, 2.0, 2.0)
    assert GETDATA_TX_INTERVAL == 60.0


def test_gentxid_kinds() -> None:
    assert GenTxid.txid(H1) == GenTxid(False, H1)
    assert GenTxid.wtxid(H1) == GenTxid(True, H1)
    assert GenTxid.txid(H1) != GenTxid.wtxid(H1)


def test_one_announcement_life() -> None:
    t = tracker()
    t.received_inv(7, W1, preferred=True, reqtime=T0 + 1)
    assert (t.size(), t.count(7), t.count_candidates(7), t.count_in_flight(7)) == (1, 1, 1, 0)
    assert t.state_of(7, H1) is S.CANDIDATE_DELAYED
    assert t.get_requestable(7, T0) == ([], [])  # reqtime not reached
    assert t.state_of(7, H1) is S.CANDIDATE_DELAYED
    assert t.get_requestable(7, T0 + 1) == ([W1], [])  # reached exactly
    assert t.state_of(7, H1) is S.CANDIDATE_BEST
    t.requested_tx(7, H1, T0 + 61)
    assert t.state_of(7, H1) is S.REQUESTED
    assert (t.count(7), t.count_candidates(7), t.count_in_flight(7)) == (1, 0, 1)
    assert t.get_requestable(7, T0 + 2) == ([], [])  # asked already
    t.received_response(7, H1)  # the only announcer answered: the txhash is forgotten
    assert (t.size(), t.count(7), t.state_of(7, H1)) == (0, 0, None)
    t.sanity_check()


def test_a_repeat_announcement_changes_nothing_even_by_the_other_hash_kind() -> None:
    t = tracker()
    t.received_inv(1, GenTxid.txid(H1), preferred=False, reqtime=T0 + 5)
    t.received_inv(1, GenTxid.wtxid(H1), preferred=True, reqtime=T0)
    t.received_inv(1, GenTxid.txid(H1), preferred=True, reqtime=T0)
    assert (t.size(), t.count(1)) == (1, 1)
    assert t.get_requestable(1, T0) == ([], [])  # the first one's reqtime still holds
    assert t.get_requestable(1, T0 + 5) == ([GenTxid.txid(H1)], [])  # and its hash kind


def test_preferred_peer_wins_over_non_preferred() -> None:
    for order in ((1, 2), (2, 1)):
        t = tracker()
        for peer in order:
            t.received_inv(peer, W1, preferred=(peer == 2), reqtime=T0)
        assert t.get_requestable(1, T0) == ([], [])
        assert t.get_requestable(2, T0) == ([W1], [])
        assert (t.state_of(1, H1), t.state_of(2, H1)) == (S.CANDIDATE_READY, S.CANDIDATE_BEST)
        t.sanity_check()


def test_among_equals_the_higher_salted_priority_wins() -> None:
    peers = list(range(10))
    checked = 0
    for salt in (b"a", b"b", b"c"):
        t = TxRequestTracker(salt=salt)
        for p in peers:
            t.received_inv(p, W1, preferred=False, reqtime=T0)
        expected = max(peers, key=lambda p: t.compute_priority(H1, p, False))
        for p in peers:
            got, _ = t.get_requestable(p, T0)
            assert got == ([W1] if p == expected else [])
            checked += 1
    assert checked == 30


def test_priority_puts_preferred_above_every_non_preferred() -> None:
    t = tracker()
    for p in range(50):
        pref = t.compute_priority(H1, p, True)
        nonpref = t.compute_priority(H1, p, False)
        assert pref >> 63 == 1 and nonpref >> 63 == 0
        assert pref & ((1 << 63) - 1) == nonpref
    other = TxRequestTracker(salt=b"another salt")
    assert [t.compute_priority(H1, p, False) for p in range(8)] != [
        other.compute_priority(H1, p, False) for p in range(8)
    ]


def test_first_preferred_announcer_is_asked_and_keeps_the_request() -> None:
    t = tracker()
    t.received_inv(5, W1, preferred=True, reqtime=T0)
    assert t.get_requestable(5, T0) == ([W1], [])
    t.requested_tx(5, H1, T0 + GETDATA_TX_INTERVAL)
    for p in range(6, 20):  # later preferred announcers, whatever their priority
        t.received_inv(p, W1, preferred=True, reqtime=T0 + 1)
        assert t.get_requestable(p, T0 + 1) == ([], [])
    assert t.count_in_flight(5) == 1
    assert t.get_candidate_peers(H1) == list(range(5, 20))
    t.sanity_check()


def test_expiry_hands_the_request_to_the_next_announcer() -> None:
    t = tracker()
    t.received_inv(1, W1, preferred=True, reqtime=T0)
    t.received_inv(2, W1, preferred=False, reqtime=T0 + 2)
    assert t.get_requestable(1, T0) == ([W1], [])
    t.requested_tx(1, H1, T0 + 60)
    assert t.get_requestable(2, T0 + 59.9) == ([], [])
    got, expired = t.get_requestable(2, T0 + 60)  # expiry reached exactly
    assert (got, expired) == ([W1], [(1, W1)])
    assert t.state_of(1, H1) is S.COMPLETED
    assert (t.count(1), t.count_candidates(1), t.count_in_flight(1)) == (1, 0, 0)
    t.requested_tx(2, H1, T0 + 120)
    got, expired = t.get_requestable(1, T0 + 120)  # peer 2 fails too: nothing left to try
    assert (got, expired) == ([], [(2, W1)])
    assert t.size() == 0
    # Forgotten entirely, so an announcement now starts afresh, even from peer 1.
    t.received_inv(1, W1, preferred=True, reqtime=T0 + 121)
    assert t.get_requestable(1, T0 + 121) == ([W1], [])


def test_notfound_moves_on_at_once_and_never_asks_the_same_peer_again() -> None:
    t = tracker()
    t.received_inv(1, W1, preferred=True, reqtime=T0)
    t.received_inv(2, W1, preferred=True, reqtime=T0)
    first = t.get_requestable(1, T0)[0] or t.get_requestable(2, T0)[0]
    assert first == [W1]
    asked = 1 if t.state_of(1, H1) is S.CANDIDATE_BEST else 2
    other = 3 - asked
    t.requested_tx(asked, H1, T0 + 60)
    t.received_response(asked, H1)  # notfound
    assert t.state_of(asked, H1) is S.COMPLETED
    assert t.state_of(other, H1) is S.CANDIDATE_BEST
    t.received_inv(asked, W1, preferred=True, reqtime=T0)  # a re-announcement is ignored
    assert t.get_requestable(asked, T0 + 1) == ([], [])
    assert t.get_requestable(other, T0 + 1) == ([W1], [])


def test_requestable_in_announcement_order() -> None:
    t = tracker()
    t.received_inv(1, W3, preferred=True, reqtime=T0 + 3)  # announced first, ready last
    t.received_inv(1, W1, preferred=True, reqtime=T0 + 2)
    t.received_inv(1, W2, preferred=True, reqtime=T0 + 1)
    assert t.get_requestable(1, T0 + 3) == ([W3, W1, W2], [])


def test_disconnect_passes_the_request_on_and_cleans_up() -> None:
    t = tracker()
    t.received_inv(1, W1, preferred=True, reqtime=T0)
    t.received_inv(1, W2, preferred=True, reqtime=T0)
    t.received_inv(2, W1, preferred=False, reqtime=T0)
    assert t.get_requestable(1, T0) == ([W1, W2], [])
    t.requested_tx(1, H1, T0 + 60)
    t.disconnected_peer(1)
    assert (t.count(1), t.size()) == (0, 1)
    assert t.get_requestable(2, T0 + 1) == ([W1], [])
    t.disconnected_peer(2)
    t.disconnected_peer(2)  # twice is harmless
    assert t.size() == 0
    t.sanity_check()


def test_forget_tx_hash_drops_every_announcement() -> None:
    t = tracker()
    for p in range(4):
        t.received_inv(p, W1, preferred=True, reqtime=T0)
        t.received_inv(p, W2, preferred=True, reqtime=T0)
    t.get_requestable(0, T0)
    t.requested_tx(0, H1, T0 + 60)
    t.forget_tx_hash(H1)
    t.forget_tx_hash(H3)  # unknown: nothing happens
    assert t.size() == 4
    assert [t.count(p) for p in range(4)] == [1, 1, 1, 1]
    assert t.count_in_flight(0) == 0
    assert t.get_candidate_peers(H1) == []
    t.sanity_check()


def test_clock_going_back_delays_ready_candidates_again() -> None:
    t = tracker()
    t.received_inv(1, W1, preferred=True, reqtime=T0 + 10)
    t.received_inv(2, W1, preferred=False, reqtime=T0 + 5)
    assert t.get_requestable(1, T0 + 10) == ([W1], [])
    assert t.get_requestable(1, T0 + 7) == ([], [])  # back before peer 1's reqtime
    assert t.state_of(1, H1) is S.CANDIDATE_DELAYED
    assert t.state_of(2, H1) is S.CANDIDATE_BEST
    t.post_get_requestable_check(T0 + 7)
    assert t.get_requestable(2, T0 + 7) == ([W1], [])
    assert t.get_requestable(1, T0 + 10) == ([W1], [])  # forward again
    t.sanity_check()


def test_requesting_outside_the_advice() -> None:
    t = tracker()
    t.received_inv(1, W1, preferred=True, reqtime=T0)
    t.received_inv(2, W1, preferred=False, reqtime=T0 + 100)
    assert t.get_requestable(1, T0) == ([W1], [])
    t.requested_tx(2, H1, T0 + 60)  # peer 2 is still delayed: allowed, peer 1 steps back
    assert (t.state_of(1, H1), t.state_of(2, H1)) == (S.CANDIDATE_READY, S.REQUESTED)
    t.requested_tx(1, H1, T0 + 60)  # and back: the earlier request is given up
    assert (t.state_of(1, H1), t.state_of(2, H1)) == (S.REQUESTED, S.COMPLETED)
    t.requested_tx(2, H1, T0 + 70)  # a completed announcement cannot be requested
    t.requested_tx(3, H1, T0 + 70)  # nor an unknown one
    assert (t.state_of(2, H1), t.count_in_flight(1), t.count_in_flight(2)) == (S.COMPLETED, 1, 0)
    t.sanity_check()


def test_response_from_a_candidate_that_was_not_asked() -> None:
    t = tracker()
    t.received_inv(1, W1, preferred=True, reqtime=T0)
    t.received_inv(2, W1, preferred=True, reqtime=T0)
    t.received_response(2, H1)
    assert t.state_of(2, H1) is S.COMPLETED
    assert t.get_requestable(1, T0) == ([W1], [])
    t.received_response(9, H1)  # unknown peer: nothing happens
    assert t.size() == 2


def test_download_delays() -> None:
    def reqtime(**kw: object) -> float:
        args: dict[str, object] = {
            "preferred": True,
            "is_wtxid": True,
            "wtxid_relay_peers": 0,
            "in_flight": 0,
        }
        args.update(kw)
        return announcement_reqtime(T0, **args)

    assert reqtime() == T0
    assert reqtime(preferred=False) == T0 + 2
    assert reqtime(is_wtxid=False) == T0  # no wtxid peers: a txid is not delayed
    assert reqtime(is_wtxid=False, wtxid_relay_peers=1) == T0 + 2
    assert reqtime(in_flight=99) == T0
    assert reqtime(in_flight=100) == T0 + 2
    assert reqtime(in_flight=100, relay_permission=True) == T0
    assert reqtime(preferred=False, is_wtxid=False, wtxid_relay_peers=3, in_flight=150) == T0 + 6
    assert accepts_announcement(4999, relay_permission=False)
    assert not accepts_announcement(5000, relay_permission=False)
    assert accepts_announcement(5000, relay_permission=True)


# -- a naive model of the specification ---------------------------------------------------------


@dataclass
class _ModelAnn:
    state: str  # "candidate", "requested", "completed"
    time: float
    preferred: bool
    seq: int
    is_wtxid: bool


class NaiveModel:
    """The tracker's rules computed from scratch each time, from a flat table."""

    def __init__(self, priority: TxRequestTracker) -> None:
        self.anns: dict[tuple[int, bytes], _ModelAnn] = {}
        self.seq = 0
        self.priority = priority

    def cleanup(self) -> None:
        for h in {h for _, h in self.anns}:
            group = [a for (_, hh), a in self.anns.items() if hh == h]
            if all(a.state == "completed" for a in group):
                for key in [k for k in self.anns if k[1] == h]:
                    del self.anns[key]

    def received_inv(self, peer: int, g: GenTxid, preferred: bool, reqtime: float) -> None:
        if (peer, g.hash) not in self.anns:
            self.anns[(peer, g.hash)] = _ModelAnn("candidate", reqtime, preferred, self.seq, g[0])
            self.seq += 1

    def requested_tx(self, peer: int, h: bytes, expiry: float) -> None:
        ann = self.anns.get((peer, h))
        if ann is None or ann.state != "candidate":
            return
        for (_, hh), other in self.anns.items():
            if hh == h and other.state == "requested":
                other.state = "completed"
        ann.state, ann.time = "requested", expiry

    def received_response(self, peer: int, h: bytes) -> None:
        ann = self.anns.get((peer, h))
        if ann is not None:
            ann.state = "completed"
        self.cleanup()

    def disconnected_peer(self, peer: int) -> None:
        for key in [k for k in self.anns if k[0] == peer]:
            del self.anns[key]
        self.cleanup()

    def forget_tx_hash(self, h: bytes) -> None:
        for key in [k for k in self.anns if k[1] == h]:
            del self.anns[key]

    def get_requestable(
        self, peer: int, now: float
    ) -> tuple[list[GenTxid], list[tuple[int, GenTxid]]]:
        expired = []
        for (p, h), ann in sorted(self.anns.items(), key=lambda kv: kv[1].time):
            if ann.state == "requested" and ann.time <= now:
                ann.state = "completed"
                expired.append((p, GenTxid(ann.is_wtxid, h)))
        self.cleanup()
        chosen = []
        for h in {h for _, h in self.anns}:
            group = {p: a for (p, hh), a in self.anns.items() if hh == h}
            if any(a.state == "requested" for a in group.values()):
                continue
            ready = [p for p, a in group.items() if a.state == "candidate" and a.time <= now]
            if not ready:
                continue
            best = max(
                ready, key=lambda p: (self.priority.compute_priority(h, p, group[p].preferred), -p)
            )
            if best == peer:
                chosen.append((group[peer].seq, GenTxid(group[peer].is_wtxid, h)))
        return [g for _, g in sorted(chosen)], expired

    def counts(self, peer: int) -> tuple[int, int, int]:
        mine = [a for (p, _), a in self.anns.items() if p == peer]
        return (
            len(mine),
            sum(a.state == "candidate" for a in mine),
            sum(a.state == "requested" for a in mine),
        )


PEERS = 4
HASHES = [bytes([i]) * 32 for i in range(1, 6)]

_op = st.one_of(
    st.tuples(
        st.just("inv"),
        st.integers(0, PEERS - 1),
        st.integers(0, 4),
        st.booleans(),
        st.booleans(),
        st.integers(-3, 6),
    ),
    st.tuples(st.just("request"), st.integers(0, PEERS - 1), st.integers(0, 4), st.integers(0, 8)),
    st.tuples(st.just("response"), st.integers(0, PEERS - 1), st.integers(0, 4)),
    st.tuples(st.just("disconnect"), st.integers(0, PEERS - 1)),
    st.tuples(st.just("forget"), st.integers(0, 4)),
    st.tuples(st.just("get"), st.integers(0, PEERS - 1), st.integers(-2, 6)),
)


def run_ops(ops: list[tuple[object, ...]], t: TxRequestTracker, m: NaiveModel) -> dict[str, int]:
    """Apply ``ops`` to both, comparing every result and count; return what was exercised."""
    now = 0.0
    seen = {"requested": 0, "expired": 0, "ops": 0}
    for op in ops:
        kind = op[0]
        if kind == "inv":
            _, peer, hi, wtx, pref, dt = op
            g = GenTxid(bool(wtx), HASHES[hi])
            t.received_inv(peer, g, bool(pref), now + dt)
            m.received_inv(peer, g, bool(pref), now + dt)
        elif kind == "request":
            _, peer, hi, dt = op
            t.requested_tx(peer, HASHES[hi], now + dt)
            m.requested_tx(peer, HASHES[hi], now + dt)
        elif kind == "response":
            _, peer, hi = op
            t.received_response(peer, HASHES[hi])
            m.received_response(peer, HASHES[hi])
        elif kind == "disconnect":
            t.disconnected_peer(op[1])
            m.disconnected_peer(op[1])
        elif kind == "forget":
            t.forget_tx_hash(HASHES[op[1]])
            m.forget_tx_hash(HASHES[op[1]])
        else:
            _, peer, dt = op
            now += dt
            got = t.get_requestable(peer, now)
            want = m.get_requestable(peer, now)
            assert got[0] == want[0]
            assert sorted(got[1]) == sorted(want[1])
            t.post_get_requestable_check(now)
            seen["expired"] += len(got[1])
            for g in got[0]:  # request what we are told, as the relay code does
                t.requested_tx(peer, g.hash, now + 3)
                m.requested_tx(peer, g.hash, now + 3)
                seen["requested"] += 1
        seen["ops"] += 1
        t.sanity_check()
        assert t.size() == len(m.anns)
        for p in range(PEERS):
            count, candidates, in_flight = m.counts(p)
            assert (t.count(p), t.count_candidates(p), t.count_in_flight(p)) == (
                count,
                candidates,
                in_flight,
            )
        for h in HASHES:
            want_peers = sorted(
                (a.seq, p) for (p, hh), a in m.anns.items() if hh == h and a.state != "completed"
            )
            assert t.get_candidate_peers(h) == [p for _, p in want_peers]
    for p in range(PEERS):
        t.disconnected_peer(p)
    assert t.size() == 0
    t.sanity_check()
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=60), st.binary(min_size=1, max_size=8))
def test_tracker_matches_the_naive_model(ops: list[tuple[object, ...]], salt: bytes) -> None:
    t = TxRequestTracker(salt=salt)
    run_ops(ops, t, NaiveModel(t))


def test_long_random_runs_match_the_model_and_exercise_every_path() -> None:
    totals = {"requested": 0, "expired": 0, "ops": 0}
    for seed in range(20):
        rng = random.Random(seed)
        ops: list[tuple[object, ...]] = []
        for _ in range(300):
            r = rng.random()
            if r < 0.4:
                ops.append(
                    (
                        "inv",
                        rng.randrange(PEERS),
                        rng.randrange(5),
                        rng.random() < 0.5,
                        rng.random() < 0.5,
                        rng.randint(-3, 6),
                    )
                )
            elif r < 0.5:
                ops.append(("request", rng.randrange(PEERS), rng.randrange(5), rng.randint(0, 8)))
            elif r < 0.6:
                ops.append(("response", rng.randrange(PEERS), rng.randrange(5)))
            elif r < 0.63:
                ops.append(("disconnect", rng.randrange(PEERS)))
            elif r < 0.66:
                ops.append(("forget", rng.randrange(5)))
            else:
                ops.append(("get", rng.randrange(PEERS), rng.randint(-2, 6)))
        t = TxRequestTracker(salt=seed.to_bytes(2, "little"))
        seen = run_ops(ops, t, NaiveModel(t))
        for k in totals:
            totals[k] += seen[k]
    assert totals["ops"] == 20 * 300
    assert totals["requested"] > 200  # the comparison covered real request traffic
    assert totals["expired"] > 50  # and timeouts


def test_many_announcements_stay_cheap_and_consistent() -> None:
    t = tracker()
    n = 2000
    for p in range(10):
        for i in range(n):
            t.received_inv(p, GenTxid.wtxid(i.to_bytes(32, "little")), p < 3, T0 + (i % 7))
    assert t.size() == 10 * n
    requested = [0] * 10
    expired_total = 0
    for step in range(2):
        now = T0 + 10 + step * (GETDATA_TX_INTERVAL + 1)
        for p in range(10):
            got, expired = t.get_requestable(p, now)
            expired_total += len(expired)
            for g in got[:MAX_PEER_TX_REQUEST_IN_FLIGHT]:
                t.requested_tx(p, g.hash, now + GETDATA_TX_INTERVAL)
                requested[p] += 1
        t.sanity_check()
    # Only preferred peers are asked while a preferred announcer is left; every first request
    # timed out at the second step and went to another preferred peer.
    assert requested == [200, 200, 200, 0, 0, 0, 0, 0, 0, 0]
    assert expired_total == 300
    assert [t.count_in_flight(p) for p in range(10)] == [100, 100, 100] + [0] * 7
    for p in range(10):
        t.disconnected_peer(p)
    assert t.size() == 0
