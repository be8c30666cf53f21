"""Which transaction to request from which peer, and when: the announcement tracker.

Layer L2 (``peercash.p2p``). Pure bookkeeping: peers are integer ids, transactions are 32-byte
hashes (wire order), time is a float of seconds that the caller passes in; no I/O, no clock, no
mempool. The relay code (``p2p/txrelay``) feeds it what peers announce (``inv``), asks it what
to put in the next ``getdata`` for a peer, and tells it what came back (``tx``/``notfound``).
Nothing here raises for bad input from peers: unknown peers or hashes are ignored, as Core does.
Not thread-safe: one instance belongs to the event loop.

The semantics are those of Bitcoin Core's ``TxRequestTracker`` (src/txrequest.h), written anew:

* An *announcement* is one (peer, txhash) pair, with the hash kind (txid or wtxid, BIP339),
  whether the peer is *preferred* (outbound, in practice), and the earliest time it may be
  requested (``reqtime``). Its state is CANDIDATE_DELAYED (reqtime still ahead),
  CANDIDATE_READY, CANDIDATE_BEST (the one we would request now), REQUESTED (with an expiry) or
  COMPLETED (answered, failed or timed out: kept only so we never ask that peer again).
* At most one announcement per txhash is REQUESTED or CANDIDATE_BEST at any time, so one
  transaction is fetched from one peer at a time. The best candidate is one from a preferred
  peer if there is any ready one, then the highest salted-hash priority of (txhash, peer): the
  salt is random per tracker, so a peer cannot predict or bias which announcer we pick. A ready
  announcement becomes best at once when there is none, and stays selected once requested, so
  with the caller asking right after each announcement, a transaction is requested from the
  first preferred peer that announces it (the caller gives preferred peers no delay).
* A txhash for which only COMPLETED announcements remain is forgotten entirely, so a later
  announcement starts afresh; while any other announcement is alive, a peer is never asked
  twice for the same txhash.
* ``get_requestable`` first moves time: requests whose expiry has passed become COMPLETED (and
  are reported), delayed candidates whose reqtime has come become ready; if the clock went
  backwards, ready candidates whose reqtime is now ahead are delayed again (rare: it costs one
  pass over the ready candidates). It returns the peer's best candidates in announcement order,
  so dependent transactions announced together are requested parent first.

Also here: the delays and limits Core's transaction download code (src/node/txdownloadman.h,
``AddTxAnnouncement``/``GetRequestsToSend``) applies around the tracker, as constants and two
small functions the relay code calls.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections.abc import Iterator
from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "GETDATA_TX_INTERVAL",
    "MAX_PEER_TX_ANNOUNCEMENTS",
    "MAX_PEER_TX_REQUEST_IN_FLIGHT",
    "NONPREF_PEER_TX_DELAY",
    "OVERLOADED_PEER_TX_DELAY",
    "TXID_RELAY_DELAY",
    "AnnouncementState",
    "GenTxid",
    "TxRequestTracker",
    "accepts_announcement",
    "announcement_reqtime",
]

# Policy constants of Core's transaction download (src/node/txdownloadman.h, Core 28-31).
MAX_PEER_TX_REQUEST_IN_FLIGHT = 100
"""Requests in flight to one peer beyond which its new announcements wait
:data:`OVERLOADED_PEER_TX_DELAY` (a soft limit)."""
MAX_PEER_TX_ANNOUNCEMENTS = 5000
"""Announcements tracked per peer; more are dropped (unless the peer has the relay
permission). Bounds the memory a peer can make us spend on announcements."""
TXID_RELAY_DELAY = 2.0
"""Seconds a txid announcement waits while some peer relays by wtxid (BIP339), so the wtxid
announcement of the same transaction usually wins."""
NONPREF_PEER_TX_DELAY = 2.0
"""Seconds an announcement from a non-preferred (inbound) peer waits, giving outbound peers
the first chance."""
OVERLOADED_PEER_TX_DELAY = 2.0
"""Seconds added for a peer with :data:`MAX_PEER_TX_REQUEST_IN_FLIGHT` requests in flight."""
GETDATA_TX_INTERVAL = 60.0
"""Seconds we wait for a requested transaction before asking another announcer."""


class GenTxid(NamedTuple):
    """A txid or a wtxid, as announced (Core's ``GenTxid``): the hash in wire order and its kind."""

    is_wtxid: bool
    hash: bytes

    @classmethod
    def txid(cls, h: bytes) -> GenTxid:
        return cls(False, h)

    @classmethod
    def wtxid(cls, h: bytes) -> GenTxid:
        return cls(True, h)


class AnnouncementState(IntEnum):
    """Where an announcement is in its life (see the module docstring)."""

    CANDIDATE_DELAYED = 0
    CANDIDATE_READY = 1
    CANDIDATE_BEST = 2
    REQUESTED = 3
    COMPLETED = 4


_DELAYED = AnnouncementState.CANDIDATE_DELAYED
_READY = AnnouncementState.CANDIDATE_READY
_BEST = AnnouncementState.CANDIDATE_BEST
_REQUESTED = AnnouncementState.REQUESTED
_COMPLETED = AnnouncementState.COMPLETED
_SELECTED = (_BEST, _REQUESTED)  # at most one per txhash
_WAITING = (_DELAYED, _REQUESTED)  # waiting for a time to pass: reqtime or expiry
_HEAP_SLACK = 64  # stale heap entries tolerated beyond the live ones before a rebuild


class _Announcement:
    __slots__ = (
        "alive",
        "epoch",
        "is_wtxid",
        "peer",
        "preferred",
        "priority",
        "seq",
        "state",
        "time",
        "txhash",
    )

    def __init__(
        self,
        peer: int,
        txhash: bytes,
        is_wtxid: bool,
        preferred: bool,
        reqtime: float,
        seq: int,
        priority: int,
    ) -> None:
        self.peer = peer
        self.txhash = txhash
        self.is_wtxid = is_wtxid
        self.preferred = preferred
        self.time = reqtime  # reqtime while a candidate, expiry while REQUESTED
        self.seq = seq  # announcement order
        self.priority = priority
        self.state = _DELAYED
        self.alive = True
        self.epoch = 0  # bumped when it starts or stops waiting: older heap entries are stale

    def gtxid(self) -> GenTxid:
        return GenTxid(self.is_wtxid, self.txhash)


class _TxHashEntry:
    """Every announcement of one txhash, the selected one and how many are not COMPLETED."""

    __slots__ = ("active", "by_peer", "selected")

    def __init__(self) -> None:
        self.by_peer: dict[int, _Announcement] = {}
        self.selected: _Announcement | None = None  # the CANDIDATE_BEST or REQUESTED one
        self.active = 0  # announcements not COMPLETED


class _PeerEntry:
    """One peer's announcements, its best candidates and its state counts."""

    __slots__ = ("best", "by_txhash", "completed", "requested")

    def __init__(self) -> None:
        self.by_txhash: dict[bytes, _Announcement] = {}
        self.best: dict[bytes, _Announcement] = {}  # the peer's CANDIDATE_BEST announcements
        self.requested = 0
        self.completed = 0


class TxRequestTracker:
    """Core's transaction request scheduler: see the module docstring for the rules.

    ``salt`` keys the priority hash; by default it is random (``os.urandom``); pass bytes (up to
    64) for a reproducible tracker in tests.
    """

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = os.urandom(32) if salt is None else salt
        self._txhashes: dict[bytes, _TxHashEntry] = {}
        self._peers: dict[int, _PeerEntry] = {}
        self._size = 0
        self._next_seq = 0
        # Announcements waiting for their time (reqtime or expiry): a lazy min-heap of
        # (time, push order, epoch, announcement); an entry is stale once the announcement died
        # or its epoch moved on.
        self._waiting: list[tuple[float, int, int, _Announcement]] = []
        self._waiting_live = 0
        self._pushes = 0
        self._ready_count = 0  # CANDIDATE_READY + CANDIDATE_BEST announcements
        # Every ready candidate's reqtime is at or before the ``now`` of the last time step, so
        # only a clock going back below it can require delaying candidates again.
        self._last_now = float("-inf")

    # -- priority --------------------------------------------------------------------------------

    def compute_priority(self, txhash: bytes, peer: int, preferred: bool) -> int:
        """The selection priority: preferred peers first, then a salted hash of txhash and peer."""
        digest = hashlib.blake2b(
            txhash + peer.to_bytes(8, "little", signed=True), digest_size=8, key=self._salt
        ).digest()
        return (int(preferred) << 63) | (int.from_bytes(digest, "little") >> 1)

    # -- internal state changes ------------------------------------------------------------------

    def _push_waiting(self, ann: _Announcement) -> None:
        ann.epoch += 1
        self._pushes += 1
        heapq.heappush(self._waiting, (ann.time, self._pushes, ann.epoch, ann))
        if len(self._waiting) > 2 * self._waiting_live + _HEAP_SLACK:
            self._waiting = [e for e in self._waiting if e[3].alive and e[2] == e[3].epoch]
            heapq.heapify(self._waiting)

    def _set_state(self, ann: _Announcement, new: AnnouncementState) -> None:
        """Move ``ann`` to ``new``, keeping every count and index in step."""
        old = ann.state
        if old == new:
            return
        peer = self._peers[ann.peer]
        entry = self._txhashes[ann.txhash]
        if old == _BEST:
            del peer.best[ann.txhash]
        elif old == _REQUESTED:
            peer.requested -= 1
        elif old == _COMPLETED:
            peer.completed -= 1
            entry.active += 1
        if old in _SELECTED and entry.selected is ann:
            entry.selected = None
        if old in _WAITING:
            self._waiting_live -= 1
            ann.epoch += 1  # its heap entry is stale from now on
        if old in (_READY, _BEST):
            self._ready_count -= 1
        ann.state = new
        if new == _BEST:
            peer.best[ann.txhash] = ann
        elif new == _REQUESTED:
            peer.requested += 1
        elif new == _COMPLETED:
            peer.completed += 1
            entry.active -= 1
        if new in _SELECTED:
            entry.selected = ann
        if new in (_READY, _BEST):
            self._ready_count += 1
        if new in _WAITING:
            self._waiting_live += 1
            self._push_waiting(ann)

    def _erase(self, ann: _Announcement) -> None:
        self._set_state(ann, _COMPLETED)  # settles the counts; the announcement then goes
        ann.alive = False
        peer = self._peers[ann.peer]
        del peer.by_txhash[ann.txhash]
        peer.completed -= 1
        if not peer.by_txhash:
            del self._peers[ann.peer]
        entry = self._txhashes[ann.txhash]
        del entry.by_peer[ann.peer]
        if not entry.by_peer:
            del self._txhashes[ann.txhash]
        self._size -= 1

    def _best_ready(self, entry: _TxHashEntry, exclude: _Announcement) -> _Announcement | None:
        ready = [a for a in entry.by_peer.values() if a.state == _READY and a is not exclude]
        return max(ready, key=_rank) if ready else None

    def _promote_ready(self, ann: _Announcement) -> None:
        """A delayed candidate's time has come: ready, and best if it beats the current best."""
        self._set_state(ann, _READY)
        entry = self._txhashes[ann.txhash]
        current = entry.selected
        if current is None:
            self._set_state(ann, _BEST)
        elif current.state == _BEST and _rank(ann) > _rank(current):
            self._set_state(current, _READY)
            self._set_state(ann, _BEST)

    def _change_and_reselect(self, ann: _Announcement, new: AnnouncementState) -> None:
        """Move ``ann`` to COMPLETED or CANDIDATE_DELAYED; if it was selected, select the next."""
        entry = self._txhashes[ann.txhash]
        successor = self._best_ready(entry, ann) if ann.state in _SELECTED else None
        self._set_state(ann, new)
        if successor is not None:
            self._set_state(successor, _BEST)

    def _make_completed(self, ann: _Announcement) -> bool:
        """Complete ``ann``; forget its txhash if nothing else is pending. True if ``ann`` lives."""
        if ann.state == _COMPLETED:
            return True
        entry = self._txhashes[ann.txhash]
        if entry.active == 1:
            for other in list(entry.by_peer.values()):
                self._erase(other)
            return False
        self._change_and_reselect(ann, _COMPLETED)
        return True

    def _set_time_point(self, now: float, expired: list[tuple[int, GenTxid]]) -> None:
        while self._waiting and self._waiting[0][0] <= now:
            _, _, epoch, ann = heapq.heappop(self._waiting)
            if not ann.alive or epoch != ann.epoch:
                continue
            if ann.state == _DELAYED:
                self._promote_ready(ann)
            elif ann.state == _REQUESTED:
                expired.append((ann.peer, ann.gtxid()))
                self._make_completed(ann)
        if now < self._last_now and self._ready_count:
            # The clock went backwards: candidates whose reqtime is ahead again wait again.
            for ann in [a for a in self._iter_announcements() if a.state in (_READY, _BEST)]:
                if ann.alive and ann.time > now:
                    self._change_and_reselect(ann, _DELAYED)
        self._last_now = now

    def _iter_announcements(self) -> Iterator[_Announcement]:
        for entry in self._txhashes.values():
            yield from entry.by_peer.values()

    # -- operations ------------------------------------------------------------------------------

    def received_inv(self, peer: int, gtxid: GenTxid, preferred: bool, reqtime: float) -> None:
        """Track that ``peer`` announced ``gtxid``; a repeat (by either hash kind) changes nothing."""
        txhash = gtxid.hash
        peer_entry = self._peers.get(peer)
        if peer_entry is not None and txhash in peer_entry.by_txhash:
            return
        if peer_entry is None:
            peer_entry = self._peers[peer] = _PeerEntry()
        entry = self._txhashes.get(txhash)
        if entry is None:
            entry = self._txhashes[txhash] = _TxHashEntry()
        ann = _Announcement(
            peer,
            txhash,
            gtxid.is_wtxid,
            preferred,
            reqtime,
            self._next_seq,
            self.compute_priority(txhash, peer, preferred),
        )
        self._next_seq += 1
        peer_entry.by_txhash[txhash] = ann
        entry.by_peer[peer] = ann
        entry.active += 1
        self._size += 1
        self._waiting_live += 1
        self._push_waiting(ann)

    def disconnected_peer(self, peer: int) -> None:
        """Forget everything ``peer`` announced, handing its requests to the other announcers."""
        peer_entry = self._peers.get(peer)
        if peer_entry is None:
            return
        for ann in list(peer_entry.by_txhash.values()):
            if ann.alive and self._make_completed(ann):
                self._erase(ann)

    def forget_tx_hash(self, txhash: bytes) -> None:
        """Drop every announcement of ``txhash`` (we have the transaction, or no longer want it)."""
        entry = self._txhashes.get(txhash)
        if entry is None:
            return
        for ann in list(entry.by_peer.values()):
            self._erase(ann)

    def get_requestable(
        self, peer: int, now: float
    ) -> tuple[list[GenTxid], list[tuple[int, GenTxid]]]:
        """Move time to ``now``; return what to request from ``peer`` (announcement order) and
        the requests of any peer that expired at this step, as (peer, gtxid)."""
        expired: list[tuple[int, GenTxid]] = []
        self._set_time_point(now, expired)
        peer_entry = self._peers.get(peer)
        if peer_entry is None:
            return [], expired
        best = sorted(peer_entry.best.values(), key=lambda a: a.seq)
        return [a.gtxid() for a in best], expired

    def requested_tx(self, peer: int, txhash: bytes, expiry: float) -> None:
        """We sent ``peer`` a request for ``txhash``, to be answered by ``expiry``.

        Only a candidate can be requested; if another announcement of the txhash was selected
        (the caller asked outside ``get_requestable``'s advice), a best one steps back and a
        requested one is given up as COMPLETED.
        """
        peer_entry = self._peers.get(peer)
        ann = peer_entry.by_txhash.get(txhash) if peer_entry is not None else None
        if ann is None or ann.state not in (_DELAYED, _READY, _BEST):
            return
        if ann.state != _BEST:
            other = self._txhashes[txhash].selected
            if other is not None:
                self._set_state(other, _READY if other.state == _BEST else _COMPLETED)
        ann.time = expiry
        self._set_state(ann, _REQUESTED)

    def received_response(self, peer: int, txhash: bytes) -> None:
        """``peer`` answered about ``txhash`` (the transaction or ``notfound``): it is done."""
        peer_entry = self._peers.get(peer)
        ann = peer_entry.by_txhash.get(txhash) if peer_entry is not None else None
        if ann is not None:
            self._make_completed(ann)

    # -- inspection ------------------------------------------------------------------------------

    def count(self, peer: int) -> int:
        """Announcements tracked for ``peer``, in any state."""
        peer_entry = self._peers.get(peer)
        return 0 if peer_entry is None else len(peer_entry.by_txhash)

    def count_in_flight(self, peer: int) -> int:
        """REQUESTED announcements of ``peer``."""
        peer_entry = self._peers.get(peer)
        return 0 if peer_entry is None else peer_entry.requested

    def count_candidates(self, peer: int) -> int:
        """CANDIDATE_* announcements of ``peer``."""
        peer_entry = self._peers.get(peer)
        if peer_entry is None:
            return 0
        return len(peer_entry.by_txhash) - peer_entry.requested - peer_entry.completed

    def size(self) -> int:
        """Announcements tracked across all peers and txhashes."""
        return self._size

    def get_candidate_peers(self, txhash: bytes) -> list[int]:
        """Peers with a not-COMPLETED announcement of ``txhash`` (in announcement order)."""
        entry = self._txhashes.get(txhash)
        if entry is None:
            return []
        anns = sorted(entry.by_peer.values(), key=lambda a: a.seq)
        return [a.peer for a in anns if a.state != _COMPLETED]

    def state_of(self, peer: int, txhash: bytes) -> AnnouncementState | None:
        """The state of ``peer``'s announcement of ``txhash``, or None (for tests and logs)."""
        peer_entry = self._peers.get(peer)
        ann = peer_entry.by_txhash.get(txhash) if peer_entry is not None else None
        return None if ann is None else ann.state

    def sanity_check(self) -> None:
        """Recompute every count and check the invariants; raise AssertionError on a mismatch."""
        total = 0
        per_peer: dict[int, tuple[int, int, int, int]] = {}
        for txhash, entry in self._txhashes.items():
            states = [a.state for a in entry.by_peer.values()]
            _check(bool(states), "empty txhash entry")
            _check(any(s != _COMPLETED for s in states), "txhash with only COMPLETED left")
            n_selected = sum(1 for s in states if s in _SELECTED)
            _check(n_selected <= 1, "more than one selected announcement for a txhash")
            if _READY in states:
                _check(n_selected == 1, "ready candidates but none selected")
            sel = entry.selected
            _check(
                (sel is None) == (n_selected == 0) and (sel is None or sel.state in _SELECTED),
                "selected pointer out of step",
            )
            if sel is not None and sel.state == _BEST:
                for a in entry.by_peer.values():
                    if a.state == _READY:
                        _check(a.priority <= sel.priority, "a ready candidate beats the best")
            _check(entry.active == sum(1 for s in states if s != _COMPLETED), "active count")
            for peer, ann in entry.by_peer.items():
                _check(ann.peer == peer and ann.txhash == txhash and ann.alive, "index mismatch")
                _check(self._peers[peer].by_txhash.get(txhash) is ann, "peer index mismatch")
                n, r, c, b = per_peer.get(peer, (0, 0, 0, 0))
                per_peer[peer] = (
                    n + 1,
                    r + (ann.state == _REQUESTED),
                    c + (ann.state == _COMPLETED),
                    b + (ann.state == _BEST),
                )
                total += 1
        _check(total == self._size, "size")
        _check(set(per_peer) == set(self._peers), "peers without announcements are kept")
        for peer, (n, r, c, b) in per_peer.items():
            p = self._peers[peer]
            _check(
                (len(p.by_txhash), p.requested, p.completed, len(p.best)) == (n, r, c, b),
                f"per-peer counts of peer {peer}",
            )

    def post_get_requestable_check(self, now: float) -> None:
        """Right after ``get_requestable(…, now)``: nothing waits for a past time and no ready
        candidate has a future reqtime."""
        for ann in self._iter_announcements():
            if ann.state in _WAITING:
                _check(ann.time > now, "a waiting announcement's time has passed")
            elif ann.state in (_READY, _BEST):
                _check(ann.time <= now, "a ready candidate's reqtime is ahead")


def _rank(ann: _Announcement) -> tuple[int, int]:
    """Higher is better: the priority, then (should two hashes ever tie) the lower peer id."""
    return ann.priority, -ann.peer


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def accepts_announcement(tracked: int, relay_permission: bool) -> bool:
    """Whether to track one more announcement from a peer that has ``tracked`` already."""
    return relay_permission or tracked < MAX_PEER_TX_ANNOUNCEMENTS


def announcement_reqtime(
    now: float,
    *,
    preferred: bool,
    is_wtxid: bool,
    wtxid_relay_peers: int,
    in_flight: int,
    relay_permission: bool = False,
) -> float:
    """When an announcement made at ``now`` may first be requested, as Core decides it: later
    for a non-preferred peer, for a txid announcement while any peer relays by wtxid, and for a
    peer with too many requests in flight (unless it has the relay permission)."""
    delay = 0.0
    if not preferred:
        delay += NONPREF_PEER_TX_DELAY
    if not is_wtxid and wtxid_relay_peers > 0:
        delay += TXID_RELAY_DELAY
    if not relay_permission and in_flight >= MAX_PEER_TX_REQUEST_IN_FLIGHT:
        delay += OVERLOADED_PEER_TX_DELAY
    return now + delay
