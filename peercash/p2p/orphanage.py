"""The orphan pool: transactions that spend outputs we do not know yet, kept while we fetch
their parents.

Layer L2 (``peercash.p2p``). Pure bookkeeping over ``peercash.consensus.primitives.Tx``; peers
are integer ids; no I/O, no clock, no mempool. The relay code adds a transaction the mempool
rejected for missing inputs, asks for the children of a transaction the mempool accepted (to
retry them) or rejected for a low fee (to try the pair as a one-parent-one-child package), and
drops what a block confirmed or conflicted and what a disconnected peer gave us. Nothing raises
for peer input: a transaction too large to keep, or a repeat, is simply not added (the call
says so). Not thread-safe: one instance belongs to the event loop.

The design is Bitcoin Core 30's ``TxOrphanage`` (src/node/txorphanage.h; release note 31829),
written anew:

* An orphan is kept once per wtxid, with its *announcers*: every peer that sent it or, for
  resolving it, announced it. Each (wtxid, peer) pair is an *announcement*; an orphan stays as
  long as it has one.
* Each announcement costs its peer the transaction's weight (the memory measure) and a
  *latency score* of ``1 + inputs // 10`` (the work erasing it costs). The pool's totals count
  every orphan's weight once and every announcement's score (the inputs part once per orphan).
* Limits, checked after every change: the total latency score may not exceed
  :data:`DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE` (3,000), and the total weight may not exceed
  :data:`DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER` (404,000) times the number of peers with an
  announcement. So each peer has a reserved share (the weight, and the score divided by the
  number of peers) that no other peer can take from it.
* When over a limit, the peer with the highest *DoS score* — the larger of its weight over its
  reserve and its latency score over its share, compared as exact fractions — loses its oldest
  announcements (those not queued for reconsideration first) until it no longer leads or the
  pool fits; then the next worst peer, and so on. Ties go against the higher peer id.
* Transactions heavier than :data:`MAX_STANDARD_TX_WEIGHT` are never kept.
* There is no expiry: Core 30 removed the 20-minute orphan expiry together with the old limit of
  100 orphans evicted at random (``-maxorphantx``), since the per-peer limits bound the pool.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from fractions import Fraction

from peercash.consensus.primitives import Block, OutPoint, Tx

__all__ = [
    "DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE",
    "DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER",
    "MAX_STANDARD_TX_WEIGHT",
    "OrphanInfo",
    "TxOrphanage",
    "latency_score",
]

MAX_STANDARD_TX_WEIGHT = 400_000
"""Policy: the heaviest transaction we relay (Core's ``MAX_STANDARD_TX_WEIGHT``); heavier
orphans are not kept."""
DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE = 3000
"""Core 30's cap on the pool's total latency score (``DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE``)."""
DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER = 404_000
"""Weight of orphans each announcing peer is allowed (Core 30's reserved usage per peer: one
maximal standard transaction plus some)."""


def latency_score(tx: Tx) -> int:
    """One for the announcement, plus one for every full ten inputs (index entries to clean)."""
    return 1 + len(tx.inputs) // 10


@dataclass(frozen=True, slots=True)
class OrphanInfo:
    """One orphan and the peers that announced it (for RPC ``getorphantxs``)."""

    tx: Tx
    announcers: frozenset[int]


class _Announcement:
    __slots__ = ("peer", "reconsider", "seq", "tx", "usage", "wtxid")

    def __init__(self, tx: Tx, peer: int, seq: int, usage: int) -> None:
        self.tx = tx
        self.wtxid = tx.wtxid
        self.peer = peer
        self.seq = seq  # the order announcements entered the pool
        self.usage = usage  # the transaction's weight
        self.reconsider = False  # in the peer's work set: to be retried against the mempool


class _PeerUsage:
    __slots__ = ("announcements", "latency", "usage", "work")

    def __init__(self) -> None:
        self.announcements: dict[bytes, _Announcement] = {}  # wtxid -> this peer's announcement
        self.work: dict[bytes, _Announcement] = {}  # those with reconsider set
        self.usage = 0
        self.latency = 0


# A DoS score in Core's fraction order: first by value, then (equal values) the smaller
# denominator ranks higher.
_Score = tuple[Fraction, int]


def _fraction_rank(numerator: int, denominator: int) -> _Score:
    return Fraction(numerator, denominator), -denominator


_ONE: _Score = _fraction_rank(1, 1)


class TxOrphanage:
    """Core 30's orphan pool (see the module docstring for the rules and limits)."""

    def __init__(
        self,
        max_global_latency_score: int = DEFAULT_MAX_ORPHANAGE_LATENCY_SCORE,
        reserved_peer_usage: int = DEFAULT_RESERVED_ORPHAN_WEIGHT_PER_PEER,
    ) -> None:
        if max_global_latency_score <= 0 or reserved_peer_usage <= 0:
            raise ValueError("orphanage limits must be positive")
        self.max_global_latency_score = max_global_latency_score
        self.reserved_peer_usage = reserved_peer_usage
        self._by_wtxid: dict[bytes, dict[int, _Announcement]] = {}  # insertion = arrival order
        self._peers: dict[int, _PeerUsage] = {}
        self._by_outpoint: dict[OutPoint, set[bytes]] = {}  # spent outpoint -> orphan wtxids
        self._by_parent: dict[bytes, dict[bytes, None]] = {}  # parent txid -> orphan wtxids
        self._reconsiderable: set[bytes] = set()  # wtxids with an announcement in a work set
        self._announcements = 0
        self._unique_usage = 0
        self._unique_input_scores = 0  # sum over orphans of latency_score - 1
        self._next_seq = 0

    # -- sizes and limits ------------------------------------------------------------------------

    def size(self) -> int:
        """Orphans kept (unique by wtxid)."""
        return len(self._by_wtxid)

    def count_announcements(self) -> int:
        return self._announcements

    def total_usage(self) -> int:
        """Weight of all orphans, each counted once however many peers announced it."""
        return self._unique_usage

    def total_latency_score(self) -> int:
        return self._unique_input_scores + self._announcements

    def usage_by_peer(self, peer: int) -> int:
        """Weight of the orphans ``peer`` announced (shared orphans count for every announcer)."""
        info = self._peers.get(peer)
        return 0 if info is None else info.usage

    def announcements_from_peer(self, peer: int) -> int:
        info = self._peers.get(peer)
        return 0 if info is None else len(info.announcements)

    def latency_score_from_peer(self, peer: int) -> int:
        info = self._peers.get(peer)
        return 0 if info is None else info.latency

    def peers(self) -> list[int]:
        """Peers with at least one announcement."""
        return list(self._peers)

    def max_peer_latency_score(self) -> int:
        """Each peer's share of the latency score. Never below one: Core's connection limits
        keep its share positive, but a small test limit with many peers must not divide by 0."""
        return max(self.max_global_latency_score // max(len(self._peers), 1), 1)

    def max_global_usage(self) -> int:
        return self.reserved_peer_usage * max(len(self._peers), 1)

    def needs_trim(self) -> bool:
        return (
            self.total_latency_score() > self.max_global_latency_score
            or self._unique_usage > self.max_global_usage()
        )

    def dos_score(self, peer: int) -> tuple[Fraction, int]:
        """``peer``'s DoS score with the current limits, as (value, -denominator)."""
        info = self._peers.get(peer) or _PeerUsage()
        return self._dos_score(info, self.max_peer_latency_score(), self.reserved_peer_usage)

    @staticmethod
    def _dos_score(info: _PeerUsage, max_latency: int, max_usage: int) -> _Score:
        return max(_fraction_rank(info.latency, max_latency), _fraction_rank(info.usage, max_usage))

    # -- lookups ---------------------------------------------------------------------------------

    def have_tx(self, wtxid: bytes) -> bool:
        return wtxid in self._by_wtxid

    def have_tx_from_peer(self, wtxid: bytes, peer: int) -> bool:
        anns = self._by_wtxid.get(wtxid)
        return anns is not None and peer in anns

    def get_tx(self, wtxid: bytes) -> Tx | None:
        anns = self._by_wtxid.get(wtxid)
        return None if anns is None else next(iter(anns.values())).tx

    def announcers(self, wtxid: bytes) -> frozenset[int]:
        return frozenset(self._by_wtxid.get(wtxid, ()))

    def get_parent_txids(self, wtxid: bytes) -> list[bytes] | None:
        """The distinct txids an orphan spends from, sorted; None if it is not here."""
        tx = self.get_tx(wtxid)
        return None if tx is None else sorted({i.prevout.txid for i in tx.inputs})

    def get_orphan_transactions(self) -> list[OrphanInfo]:
        return [
            OrphanInfo(next(iter(anns.values())).tx, frozenset(anns))
            for anns in self._by_wtxid.values()
        ]

    # -- adding ----------------------------------------------------------------------------------

    def add_tx(self, tx: Tx, peer: int) -> bool:
        """Keep ``tx`` as an orphan announced by ``peer``. True only if the orphan is new; a known
        orphan from a new peer gains that announcer (and False is returned). A transaction
        heavier than the standard limit is not kept. The pool is trimmed afterwards, which can
        evict this very orphan."""
        weight = tx.weight()
        if weight > MAX_STANDARD_TX_WEIGHT:
            return False
        wtxid = tx.wtxid
        anns = self._by_wtxid.get(wtxid)
        brand_new = anns is None
        if anns is not None and peer in anns:
            return False
        if anns is None:
            anns = self._by_wtxid[wtxid] = {}
            for txin in tx.inputs:
                self._by_outpoint.setdefault(txin.prevout, set()).add(wtxid)
                self._by_parent.setdefault(txin.prevout.txid, {})[wtxid] = None
            self._unique_usage += weight
            self._unique_input_scores += latency_score(tx) - 1
        self._add_announcement(anns, tx, peer, weight)
        self._limit()
        return brand_new

    def add_announcer(self, wtxid: bytes, peer: int) -> bool:
        """Record ``peer`` as another announcer of a kept orphan. False if the orphan is unknown
        or ``peer`` already announced it."""
        anns = self._by_wtxid.get(wtxid)
        if anns is None or peer in anns:
            return False
        first = next(iter(anns.values()))
        self._add_announcement(anns, first.tx, peer, first.usage)
        self._limit()
        return True

    def _add_announcement(
        self, anns: dict[int, _Announcement], tx: Tx, peer: int, usage: int
    ) -> None:
        ann = _Announcement(tx, peer, self._next_seq, usage)
        self._next_seq += 1
        anns[peer] = ann
        info = self._peers.get(peer)
        if info is None:
            info = self._peers[peer] = _PeerUsage()
        info.announcements[ann.wtxid] = ann
        info.usage += usage
        info.latency += latency_score(tx)
        self._announcements += 1

    # -- erasing ---------------------------------------------------------------------------------

    def _erase_announcement(self, ann: _Announcement) -> None:
        info = self._peers[ann.peer]
        del info.announcements[ann.wtxid]
        info.usage -= ann.usage
        info.latency -= latency_score(ann.tx)
        if ann.reconsider:
            del info.work[ann.wtxid]
            self._reconsiderable.discard(ann.wtxid)
        if not info.announcements:
            del self._peers[ann.peer]
        self._announcements -= 1
        anns = self._by_wtxid[ann.wtxid]
        del anns[ann.peer]
        if anns:
            return
        # The last announcement of this orphan: the orphan goes.
        del self._by_wtxid[ann.wtxid]
        self._unique_usage -= ann.usage
        self._unique_input_scores -= latency_score(ann.tx) - 1
        for txin in ann.tx.inputs:
            spenders = self._by_outpoint.get(txin.prevout)
            if spenders is not None:
                spenders.discard(ann.wtxid)
                if not spenders:
                    del self._by_outpoint[txin.prevout]
            children = self._by_parent.get(txin.prevout.txid)
            if children is not None:
                children.pop(ann.wtxid, None)
                if not children:
                    del self._by_parent[txin.prevout.txid]

    def _erase_orphan(self, wtxid: bytes) -> bool:
        anns = self._by_wtxid.get(wtxid)
        if anns is None:
            return False
        for ann in list(anns.values()):
            self._erase_announcement(ann)
        return True

    def erase_tx(self, wtxid: bytes) -> bool:
        """Drop an orphan with all its announcements (it was accepted, or proved invalid)."""
        erased = self._erase_orphan(wtxid)
        self._limit()  # fewer peers can mean a lower weight limit
        return erased

    def erase_for_peer(self, peer: int) -> int:
        """Drop ``peer``'s announcements (it disconnected); orphans others announced stay.
        Returns how many announcements went."""
        info = self._peers.get(peer)
        if info is None:
            return 0
        anns = list(info.announcements.values())
        for ann in anns:
            self._erase_announcement(ann)
        self._limit()
        return len(anns)

    def erase_for_block(self, block: Block) -> set[bytes]:
        """Drop the orphans that spend an output a transaction of ``block`` spends: those it
        includes and those it conflicts with. Returns their wtxids."""
        doomed: set[bytes] = set()
        if self._by_wtxid:
            for tx in block.txs:
                for txin in tx.inputs:
                    spenders = self._by_outpoint.get(txin.prevout)
                    if spenders:
                        doomed |= spenders
            for wtxid in doomed:
                self._erase_orphan(wtxid)
            self._limit()
        return doomed

    # -- trimming --------------------------------------------------------------------------------

    def _limit(self) -> None:
        """Evict announcements of the worst peers until the pool is within its limits."""
        if not self.needs_trim():
            return
        # The limits used while trimming are fixed at the start, as Core does, even if a peer
        # loses its last announcement along the way.
        max_latency = self.max_peer_latency_score()
        max_usage = self.reserved_peer_usage
        # A max-heap of (score, peer id) over peers scoring above one (only they can be over).
        heap: list[tuple[Fraction, int, int]] = []
        for peer, info in self._peers.items():
            score = self._dos_score(info, max_latency, max_usage)
            if score[0] > 1:
                heap.append((-score[0], -score[1], -peer))
        heapq.heapify(heap)
        while heap:
            _, _, neg_peer = heapq.heappop(heap)
            worst = -neg_peer
            threshold = (-heap[0][0], -heap[0][1]) if heap else _ONE
            info = self._peers[worst]
            # Oldest first, announcements not queued for reconsideration before queued ones.
            victims = sorted(info.announcements.values(), key=lambda a: (a.reconsider, a.seq))
            for ann in victims:
                if not self.needs_trim():
                    break
                self._erase_announcement(ann)
                if worst not in self._peers:
                    break
                if self._dos_score(info, max_latency, max_usage) <= threshold:
                    break
            if not self.needs_trim():
                return
            if worst in self._peers:
                score = self._dos_score(info, max_latency, max_usage)
                heapq.heappush(heap, (-score[0], -score[1], -worst))
        # Unreachable while the limits hold their promise (an over-limit pool always has a peer
        # scoring above one); kept as a guard against looping.

    # -- reconsidering children ------------------------------------------------------------------

    def add_children_to_work_set(self, parent: Tx, rng: random.Random) -> list[tuple[bytes, int]]:
        """``parent`` entered the mempool: queue each orphan spending one of its outputs for
        reconsideration, with one announcer picked at random (so no single peer can stall it
        by disconnecting). Returns (wtxid, peer) for each orphan queued."""
        queued: list[tuple[bytes, int]] = []
        txid = parent.txid
        for index in range(len(parent.outputs)):
            spenders = self._by_outpoint.get(OutPoint(txid, index))
            if not spenders:
                continue
            for wtxid in sorted(spenders):
                if wtxid in self._reconsiderable:
                    continue
                anns = list(self._by_wtxid[wtxid].values())
                ann = anns[rng.randrange(len(anns))]
                ann.reconsider = True
                self._peers[ann.peer].work[wtxid] = ann
                self._reconsiderable.add(wtxid)
                queued.append((wtxid, ann.peer))
        return queued

    def have_tx_to_reconsider(self, peer: int) -> bool:
        info = self._peers.get(peer)
        return info is not None and bool(info.work)

    def get_tx_to_reconsider(self, peer: int) -> Tx | None:
        """Take the oldest orphan from ``peer``'s work set (it stays in the pool), or None."""
        info = self._peers.get(peer)
        if info is None or not info.work:
            return None
        ann = min(info.work.values(), key=lambda a: a.seq)
        ann.reconsider = False
        del info.work[ann.wtxid]
        self._reconsiderable.discard(ann.wtxid)
        return ann.tx

    def children_from_peer(self, parent_txid: bytes, peer: int) -> list[Tx]:
        """Orphans spending from ``parent_txid`` that ``peer`` announced: queued ones first, then
        newest first (for 1p1c package tries with the peer that sent the parent)."""
        info = self._peers.get(peer)
        children = self._by_parent.get(parent_txid)
        if info is None or not children:
            return []
        anns = [info.announcements[w] for w in children if w in info.announcements]
        anns.sort(key=lambda a: (a.reconsider, a.seq), reverse=True)
        return [a.tx for a in anns]

    def get_children(self, parent_txid: bytes, prefer_peer: int | None = None) -> list[Tx]:
        """Every orphan spending from ``parent_txid``, once each: those ``prefer_peer``
        announced first (in :meth:`children_from_peer` order), then the rest, newest first."""
        children = self._by_parent.get(parent_txid)
        if not children:
            return []
        first = [] if prefer_peer is None else self.children_from_peer(parent_txid, prefer_peer)
        seen = {tx.wtxid for tx in first}
        rest = [
            max(self._by_wtxid[w].values(), key=lambda a: a.seq) for w in children if w not in seen
        ]
        rest.sort(key=lambda a: a.seq, reverse=True)
        return first + [a.tx for a in rest]

    # -- checking --------------------------------------------------------------------------------

    def sanity_check(self) -> None:
        """Recompute every total and index from the announcements; AssertionError on a mismatch."""
        peers: dict[int, tuple[int, int, int, int]] = {}
        usage = inputs = count = 0
        outpoints: dict[OutPoint, set[bytes]] = {}
        parents: dict[bytes, set[bytes]] = {}
        reconsiderable: set[bytes] = set()
        for wtxid, anns in self._by_wtxid.items():
            _check(bool(anns), "orphan without announcers")
            tx = next(iter(anns.values())).tx
            usage += tx.weight()
            inputs += latency_score(tx) - 1
            for txin in tx.inputs:
                outpoints.setdefault(txin.prevout, set()).add(wtxid)
                parents.setdefault(txin.prevout.txid, set()).add(wtxid)
            queued = 0
            for peer, ann in anns.items():
                _check(ann.peer == peer and ann.wtxid == wtxid and ann.tx is tx, "index")
                _check(self._peers[peer].announcements.get(wtxid) is ann, "peer index")
                _check(ann.reconsider == (wtxid in self._peers[peer].work), "work set")
                queued += ann.reconsider
                n, u, lat, w = peers.get(peer, (0, 0, 0, 0))
                peers[peer] = (n + 1, u + ann.usage, lat + latency_score(tx), w + ann.reconsider)
                count += 1
            _check(queued <= 1, "an orphan queued for more than one peer")
            if queued:
                reconsiderable.add(wtxid)
        _check(count == self._announcements, "announcement count")
        _check(usage == self._unique_usage, "total usage")
        _check(inputs == self._unique_input_scores, "latency score of inputs")
        _check(set(peers) == set(self._peers), "peers without announcements are kept")
        for peer, (n, u, lat, w) in peers.items():
            info = self._peers[peer]
            _check(
                (len(info.announcements), info.usage, info.latency, len(info.work))
                == (n, u, lat, w),
                f"per-peer totals of peer {peer}",
            )
        _check(reconsiderable == self._reconsiderable, "reconsiderable set")
        _check(outpoints == self._by_outpoint, "outpoint index")
        _check(parents == {k: set(v) for k, v in self._by_parent.items()}, "parent index")
        _check(sum(i.usage for i in self._peers.values()) >= usage, "per-peer usage sum")
        _check(not self.needs_trim(), "over the limits")


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
