"""Transaction relay: announcements in and out, requests, orphans, ``tx`` and ``getdata`` for
transactions, ``feefilter`` and ``mempool`` (Core's ``net_processing`` transaction paths and its
``TxDownloadManager``).

Layer L2 (p2p). Sees peers and the mempool; the :class:`~peercash.p2p.sync.SyncManager` hands it
the transaction messages and its periodic tick. What it does, as Core does it:

* ``inv`` of transactions: by wtxid from peers that sent ``wtxidrelay``, by txid from the
  others (the other kind is ignored); not during initial block download; nothing we have or
  recently rejected or saw confirmed; at most 5,000 tracked per peer. Requests go through the
  :class:`~peercash.p2p.txrequest.TxRequestTracker`: outbound peers first, one request per
  transaction at a time, another announcer asked when a request times out (60 s).
* ``tx``: offered to the pool on the validation thread (under the chain lock, fair between
  peers). Accepted: the orphans waiting for it are reconsidered. Missing inputs: kept in the
  :class:`~peercash.p2p.orphanage.TxOrphanage` and its parents asked of the same peer, unless a
  parent was rejected. Rejected for a fee that a child could pay (``RECONSIDERABLE``): tried as
  a one-parent-one-child package with an orphan child of the same peer. Broke a consensus rule:
  the sender is misbehaving. A block-relay-only peer that sends one is disconnected.
* Announcing: every transaction the pool accepts (from a peer, an orphan, a package or the RPC)
  is queued for every peer that relays transactions and does not know it; the queue is sent at
  Poisson-distributed times (2 s mean to outbound peers, 5 s to inbound ones), at most 70 at
  a time plus 5 per 1,000 waiting (1,000 at most), oldest first (so parents go before
  children), and only those paying at least the peer's ``feefilter``.
* ``getdata`` of transactions: served from the pool when the transaction was announced to that
  peer or has been in the pool for two minutes; ``notfound`` otherwise.
* ``feefilter``: ours (the pool's minimum fee, or the maximum during IBD) goes out at Poisson
  times with a 10-minute mean (not to ``forcerelay`` peers, nor in ``-blocksonly`` mode).
* ``mempool``: answered with an ``inv`` of the whole pool for a peer with the ``mempool``
  permission, ignored from a ``noban`` one, else by disconnecting (Core, without bloom filters).
* Permissions (``peer.permissions``, :mod:`.permissions`): ``noban`` peers are preferred for
  requests and get announcements without the trickle delay; ``relay`` lifts the announcement
  limits and, with ``ignore_incoming_txs`` (``-blocksonly``), is what lets a peer send us
  transactions at all; ``forcerelay`` announces again what such a peer sends that we have.

Concurrency: the event loop thread only; pool calls go through ``submit`` (the validation
thread, chain lock held) — also the reads that serve ``getdata`` and ``mempool``; the pool's
``on_added`` listener, called there, hops to the loop.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from peercash.consensus.primitives import MAX_MONEY, Block, Tx
from peercash.mempool.fees import FeeFilterRounder
from peercash.mempool.policy import DEFAULT_MIN_RELAY_TX_FEE
from peercash.mempool.pool import AcceptResult, MemPool, MempoolEntry, PackageResult, TxResult

from . import messages as m
from .orphanage import TxOrphanage
from .permissions import NetPermissions, has_permission
from .txrequest import (
    GETDATA_TX_INTERVAL,
    MAX_PEER_TX_REQUEST_IN_FLIGHT,
    GenTxid,
    TxRequestTracker,
    accepts_announcement,
    announcement_reqtime,
)

__all__ = ["TxRelay"]

log = logging.getLogger("peercash.p2p.txrelay")

INBOUND_INVENTORY_BROADCAST_INTERVAL = 5.0
"""Mean seconds between announcements to an inbound peer (Core's net_processing)."""
OUTBOUND_INVENTORY_BROADCAST_INTERVAL = 2.0
INVENTORY_BROADCAST_PER_SECOND = 14
INVENTORY_BROADCAST_TARGET = INVENTORY_BROADCAST_PER_SECOND * int(
    INBOUND_INVENTORY_BROADCAST_INTERVAL
)
"""Announcements per trickle, plus 5 per 1,000 queued (Core's ``broadcast_max``)."""
INVENTORY_BROADCAST_MAX = 1000
UNCONDITIONAL_RELAY_DELAY = 120.0
"""A transaction this long in the pool may be given to anyone who asks."""
AVG_FEEFILTER_BROADCAST_INTERVAL = 600.0
MAX_GETDATA_SZ = 1000
"""Items per ``getdata`` we send (Core's ``MAX_GETDATA_SZ``)."""
KNOWN_INVENTORY_MAX = 50_000
"""Hashes remembered as known to a peer (Core's per-peer inventory filter)."""
RECENT_REJECTS_MAX = 120_000
RECENT_CONFIRMED_MAX = 48_000
UNBROADCAST_INTERVAL = 600.0
UNBROADCAST_JITTER = 300.0
"""Core reattempts the initial broadcast of the unbroadcast set every 10 to 15 minutes."""
_EXTRA_TX_MAX_USAGE = 100_000
"""Bigger transactions are not kept for compact blocks (Core's ``RecursiveDynamicUsage`` limit)."""
ANNOUNCED_MAX = 3500
"""Recent announcements to a peer that it may ask for at once (Core's ``INVENTORY_MAX_RECENT_RELAY``)."""
TX_RELAY_VERSION = 70013
"""The version from which ``feefilter`` is understood (BIP133)."""


class _Rolling:
    """A bounded set that forgets its oldest members (Core's rolling Bloom filters, exact)."""

    __slots__ = ("_items", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: OrderedDict[bytes, None] = OrderedDict()

    def add(self, h: bytes) -> None:
        items = self._items
        if h in items:
            return
        items[h] = None
        if len(items) > self._limit:
            items.popitem(last=False)

    def __contains__(self, h: object) -> bool:
        return h in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()


class RelayPeer(Protocol):
    """What the relay needs of a peer (``peercash.p2p.peer.Peer`` has it)."""

    @property
    def id(self) -> int: ...

    @property
    def inbound(self) -> bool: ...

    @property
    def conn_type(self) -> Any: ...

    def send(self, msg: m.Message) -> None: ...

    def disconnect(self, reason: str) -> None: ...


P = TypeVar("P", bound=RelayPeer)
Submit = Callable[..., None]
"""``submit(key, work, done[, failed])``: ``work()`` on the validation thread with the chain
lock, then ``done(result)`` (or ``failed()`` when it raised) on the loop."""


@dataclass(eq=False)
class _PeerTx:
    peer: Any
    wtxid_relay: bool
    relays: bool
    preferred: bool
    known: _Rolling = field(default_factory=lambda: _Rolling(KNOWN_INVENTORY_MAX))
    announced: _Rolling = field(default_factory=lambda: _Rolling(ANNOUNCED_MAX))
    queue: OrderedDict[bytes, bytes] = field(default_factory=OrderedDict)
    """wtxid -> txid of transactions to announce."""
    next_inv: float = 0.0
    next_feefilter: float = 0.0
    sent_feefilter: int = -1
    reconsidering: bool = False
    permissions: int = 0
    send_mempool: bool = False
    """It asked with ``mempool`` (and may): announce the whole pool at its next trickle."""
    last_mempool_req: float = 0.0
    """Wall time of the last ``mempool`` answered: what was in the pool then may be asked for."""

    def has(self, flag: NetPermissions) -> bool:
        return has_permission(self.permissions, flag)


def _block_relay_only(peer: Any) -> bool:
    t = getattr(peer, "conn_type", None)
    return str(getattr(t, "name", t)) in ("BLOCK_RELAY", "FEELER")


def _version(peer: Any) -> int:
    common = getattr(peer, "common_version", 0)
    if isinstance(common, int) and common > 0:
        return common
    v = getattr(peer, "their_version", 0)
    return v if isinstance(v, int) else int(getattr(v, "version", 0) or 0)


class TxRelay:
    """The transaction side of the sync (one per node)."""

    def __init__(
        self,
        pool: MemPool,
        submit: Submit,
        *,
        call_soon_threadsafe: Callable[..., None],
        misbehaving: Callable[[Any, str], None],
        is_ibd: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        inbound_interval: float = INBOUND_INVENTORY_BROADCAST_INTERVAL,
        outbound_interval: float = OUTBOUND_INVENTORY_BROADCAST_INTERVAL,
        ignore_incoming_txs: bool = False,
    ) -> None:
        self.pool = pool
        self._submit = submit
        self._call_soon = call_soon_threadsafe
        self._misbehaving = misbehaving
        self._is_ibd = is_ibd
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.inbound_interval = inbound_interval
        self.outbound_interval = outbound_interval
        self.ignore_incoming_txs = ignore_incoming_txs
        """``-blocksonly``: only peers with the ``relay`` permission may send transactions."""
        self._flush_scheduled = False
        self.tracker = TxRequestTracker()
        self.orphans = TxOrphanage()
        self.recent_rejects = _Rolling(RECENT_REJECTS_MAX)
        self.recent_rejects_reconsiderable = _Rolling(RECENT_REJECTS_MAX)
        self.recent_confirmed = _Rolling(RECENT_CONFIRMED_MAX)
        self._peers: dict[int, _PeerTx] = {}
        self._next_inbound_inv = 0.0
        self._next_rebroadcast = self._clock() + self._rebroadcast_delay()
        self._feerates: dict[bytes, int] = {}
        """sat/kvB (modified fee) of the transactions waiting to be announced."""
        self._closed = False
        self.fee_filter_rounder = FeeFilterRounder(
            DEFAULT_MIN_RELAY_TX_FEE, lambda: self._rng.getrandbits(32)
        )
        """Core builds its rounder from the default minimum relay fee (100 sat/kvB)."""
        self._max_filter = self.fee_filter_rounder.round(MAX_MONEY)
        self.keep_for_compact: Callable[[Tx], None] | None = None
        """Where replaced, orphaned and rejected transactions go for rebuilding compact blocks
        (the sync manager's ``ExtraTransactions``: Core's ``AddToCompactExtraTransactions``)."""
        pool.on_added.append(self._added_listener)

    def close(self) -> None:
        self._closed = True
        if self._added_listener in self.pool.on_added:
            self.pool.on_added.remove(self._added_listener)

    # -- peers ------------------------------------------------------------------------------

    def add_peer(self, peer: Any) -> None:
        relays = bool(getattr(peer, "relay", True)) and not _block_relay_only(peer)
        permissions = int(getattr(peer, "permissions", 0) or 0)
        s = _PeerTx(
            peer,
            wtxid_relay=bool(getattr(peer, "wtxid_relay", False)),
            relays=relays,
            # Core's fPreferredDownload: outbound, or with the noban permission.
            preferred=not peer.inbound or has_permission(permissions, NetPermissions.NOBAN),
            permissions=permissions,
        )
        now = self._clock()
        s.next_inv = now + self._poisson(self.outbound_interval if not peer.inbound else 0.5)
        s.next_feefilter = now + self._rng.uniform(0.0, 1.0)
        self._peers[peer.id] = s

    def remove_peer(self, peer: Any) -> None:
        self._peers.pop(peer.id, None)
        self.tracker.disconnected_peer(peer.id)
        self.orphans.erase_for_peer(peer.id)

    def _poisson(self, mean: float) -> float:
        return -math.log1p(-self._rng.random()) * mean

    # -- have we got it? -------------------------------------------------------------------------

    def _already_have(self, gtxid: GenTxid) -> bool:
        h = gtxid.hash
        pool = self.pool
        if gtxid.is_wtxid:
            if self.orphans.have_tx(h) or pool.contains_wtxid(h):
                return True
        elif pool.contains(h):
            return True
        return (
            h in self.recent_rejects
            or h in self.recent_rejects_reconsiderable
            or h in self.recent_confirmed
        )

    # -- messages in ------------------------------------------------------------------------------

    def on_inv(self, peer: Any, msg: m.Inv) -> None:
        s = self._peers.get(peer.id)
        if s is None:
            return
        wtxid = s.wtxid_relay
        hashes = msg.hashes(m.InvType.MSG_WTX if wtxid else m.InvType.MSG_TX)
        if not hashes:
            return
        if self._rejects_incoming(s):
            why = "transaction inv sent in violation of protocol"
            log.debug("peer=%d: %s, disconnecting", peer.id, why)
            peer.disconnect(why)
            return
        ibd = self._is_ibd()
        now = self._clock()
        wtxid_peers = sum(1 for p in self._peers.values() if p.wtxid_relay)
        relay_perm = s.has(NetPermissions.RELAY)
        due = False
        for h in hashes:
            s.known.add(h)
            g = GenTxid(wtxid, h)
            if ibd or self._already_have(g):
                continue
            if not accepts_announcement(self.tracker.count(peer.id), relay_perm):
                continue
            reqtime = announcement_reqtime(
                now,
                preferred=s.preferred,
                is_wtxid=wtxid,
                wtxid_relay_peers=wtxid_peers,
                in_flight=self.tracker.count_in_flight(peer.id),
                relay_permission=relay_perm,
            )
            self.tracker.received_inv(peer.id, g, s.preferred, reqtime)
            due = due or reqtime <= now
        if due:
            # Core sends the getdata in the same pass (SendMessages follows ProcessMessages).
            self._request(peer.id, s, now)

    def _rejects_incoming(self, s: _PeerTx) -> bool:
        """Core's ``RejectIncomingTxs``: block-relay-only and feeler peers never send us
        transactions; in ``-blocksonly`` mode only peers with the ``relay`` permission may."""
        if not s.relays:
            return True
        return self.ignore_incoming_txs and not s.has(NetPermissions.RELAY)

    def on_notfound(self, peer: Any, msg: m.NotFound) -> None:
        for item in msg.items:
            if item.type in (m.InvType.MSG_TX, m.InvType.MSG_WITNESS_TX, m.InvType.MSG_WTX):
                self.tracker.received_response(peer.id, item.hash)

    def on_mempool(self, peer: Any) -> None:
        """Core's ``mempool``: we offer no bloom filters, so only a peer with the ``mempool``
        permission is answered (the whole pool, announced at its next trickle); another is
        disconnected unless it has ``noban``."""
        s = self._peers.get(peer.id)
        permissions = s.permissions if s is not None else int(getattr(peer, "permissions", 0))
        if not has_permission(permissions, NetPermissions.MEMPOOL):
            if not has_permission(permissions, NetPermissions.NOBAN):
                why = "mempool request with bloom filters disabled"
                log.debug("peer=%d: %s, disconnecting", peer.id, why)
                peer.disconnect(why)
            return
        if s is not None and s.relays:
            s.send_mempool = True

    def on_tx(self, peer: Any, tx: Tx) -> None:
        s = self._peers.get(peer.id)
        if s is None:
            return
        if self._rejects_incoming(s):
            why = "transaction sent in violation of protocol"
            log.debug("peer=%d: %s, disconnecting", peer.id, why)
            peer.disconnect(why)
            return
        txid, wtxid = tx.txid, tx.wtxid
        s.known.add(wtxid)
        s.known.add(txid)
        self.tracker.received_response(peer.id, txid)
        if wtxid != txid:
            self.tracker.received_response(peer.id, wtxid)
        if self._is_ibd():
            return  # nothing to check it against yet (Core)
        if self.pool.contains_wtxid(wtxid) or self.orphans.have_tx(wtxid):
            self.orphans.add_announcer(wtxid, peer.id)
            if s.has(NetPermissions.FORCERELAY):
                self._force_relay(peer.id, tx)
            return
        if wtxid in self.recent_rejects or wtxid in self.recent_confirmed:
            if s.has(NetPermissions.FORCERELAY):
                log.info("Not relaying non-mempool transaction %s (wtxid=%s) from forcerelay "
                         "peer=%d", tx.txid_hex, wtxid[::-1].hex(), peer.id)  # fmt: skip
            return
        if wtxid in self.recent_rejects_reconsiderable:
            self._try_package_with_children(peer.id, tx)
            return
        self._offer(peer.id, tx)

    def _force_relay(self, peer_id: int, tx: Tx) -> None:
        """Core's ``forcerelay``: announce again a transaction we already have, to every peer
        that does not know it (a gateway for nodes behind this one)."""
        pool = self.pool
        txid, wtxid = tx.txid, tx.wtxid

        def work() -> int | None:
            e = pool.entry(txid)
            return None if e is None else e.modified_fee * 1000 // max(e.vsize, 1)

        def done(feerate: int | None) -> None:
            if feerate is None:
                log.info("Not relaying non-mempool transaction %s (wtxid=%s) from forcerelay "
                         "peer=%d", tx.txid_hex, wtxid[::-1].hex(), peer_id)  # fmt: skip
                return
            log.info("Force relaying tx %s (wtxid=%s) from peer=%d", tx.txid_hex,
                     wtxid[::-1].hex(), peer_id)  # fmt: skip
            self._queue_announcement(wtxid, txid, feerate)

        self._submit(peer_id, work, done)

    def _offer(self, peer_id: int, tx: Tx) -> None:
        pool = self.pool

        def work() -> AcceptResult:
            return pool.accept(tx)

        self._submit(peer_id, work, lambda r: self._accepted(peer_id, tx, r))

    def _accepted(self, peer_id: int, tx: Tx, r: AcceptResult) -> None:
        if self._closed:
            return
        txid, wtxid = tx.txid, tx.wtxid
        if r.allowed:
            log.debug("AcceptToMemoryPool: peer=%d accepted %s", peer_id, tx.txid_hex)
            for replaced in r.replaced:
                self._extra(replaced)
            self._forget(tx)
            self.orphans.erase_tx(wtxid)
            for _, announcer in self.orphans.add_children_to_work_set(tx, self._rng):
                self._reconsider(announcer)
            return
        if r.missing_inputs:
            self._orphan(peer_id, tx)
            return
        log.debug("peer=%d: %s was not accepted: %s", peer_id, tx.txid_hex, r.reject_details)
        self._forget(tx)
        self.orphans.erase_tx(wtxid)
        if r.result is TxResult.RECONSIDERABLE:
            self.recent_rejects_reconsiderable.add(wtxid)
            self._try_package_with_children(peer_id, tx)
        elif r.result is not TxResult.WITNESS_STRIPPED:
            self.recent_rejects.add(wtxid)
            if not tx.has_witness():
                self.recent_rejects.add(txid)
            self._extra(tx)  # a miner with another policy may still mine it
        if r.result is TxResult.CONSENSUS:
            s = self._peers.get(peer_id)
            if s is not None:
                self._misbehaving(s.peer, f"invalid transaction: {r.reject_details}")

    def _extra(self, tx: Tx) -> None:
        """Keep ``tx`` for compact blocks unless it is big (Core skips a memory use of 100,000
        bytes or more; ours is estimated, as the pool does, at twice the serialized size)."""
        if self.keep_for_compact is not None and tx.total_size() * 2 < _EXTRA_TX_MAX_USAGE:
            self.keep_for_compact(tx)

    def _forget(self, tx: Tx) -> None:
        self.tracker.forget_tx_hash(tx.txid)
        if tx.wtxid != tx.txid:
            self.tracker.forget_tx_hash(tx.wtxid)

    def _orphan(self, peer_id: int, tx: Tx) -> None:
        parents = list(dict.fromkeys(txin.prevout.txid for txin in tx.inputs))
        if any(p in self.recent_rejects for p in parents):
            # A parent we refused: the orphan can never be accepted (Core: fRejectedParents).
            log.debug("peer=%d: orphan %s has a rejected parent", peer_id, tx.txid_hex)
            self.recent_rejects.add(tx.wtxid)
            self._forget(tx)
            return
        s = self._peers.get(peer_id)
        now = self._clock()
        if s is not None:
            for parent in parents:
                g = GenTxid.txid(parent)
                if self._already_have(g):
                    continue
                self.tracker.received_inv(peer_id, g, s.preferred, now)
        self.orphans.add_tx(tx, peer_id)
        self._extra(tx)
        self._forget(tx)
        log.debug("stored orphan tx %s from peer=%d (%d orphans)", tx.txid_hex, peer_id,
                  self.orphans.size())  # fmt: skip

    def _reconsider(self, peer_id: int) -> None:
        """Offer the peer's orphans whose parents arrived, one at a time (Core processes one
        per turn of the peer)."""
        s = self._peers.get(peer_id)
        if s is not None and s.reconsidering:
            return
        tx = self.orphans.get_tx_to_reconsider(peer_id)
        if tx is None:
            return
        if s is not None:
            s.reconsidering = True
        pool = self.pool

        def done(r: AcceptResult) -> None:
            if s is not None:
                s.reconsidering = False
            if r.missing_inputs:
                pass  # still waiting for another parent: it stays in the orphanage
            else:
                self._accepted(peer_id, tx, r)
            self._reconsider(peer_id)

        self._submit(peer_id, lambda: pool.accept(tx), done)

    def _try_package_with_children(self, peer_id: int, parent: Tx) -> None:
        """A parent refused for its fee alone: try it with an orphan child from the same peer
        (Core's opportunistic one-parent-one-child package)."""
        children = self.orphans.children_from_peer(parent.txid, peer_id)
        if not children:
            return
        child = children[0]
        pool = self.pool

        def done(r: PackageResult) -> None:
            if self._closed:
                return
            if r.success:
                log.debug("package of %s and %s accepted from peer=%d",
                          parent.txid_hex, child.txid_hex, peer_id)  # fmt: skip
                for tx in (parent, child):
                    self._forget(tx)
                    self.orphans.erase_tx(tx.wtxid)
                for _, announcer in self.orphans.add_children_to_work_set(child, self._rng):
                    self._reconsider(announcer)
            else:
                log.debug("package of %s and %s refused: %s",
                          parent.txid_hex, child.txid_hex, r.package_msg)  # fmt: skip

        self._submit(peer_id, lambda: pool.accept_package([parent, child]), done)

    # -- getdata ----------------------------------------------------------------------------------

    _TX_TYPES = frozenset({m.InvType.MSG_TX, m.InvType.MSG_WITNESS_TX, m.InvType.MSG_WTX})

    def serve(
        self,
        peer: Any,
        items: Iterable[m.InvItem],
        done: Callable[[list[m.InvItem]], None],
    ) -> None:
        """Send the asked-for transactions we may give this peer, then ``done(missing)`` on the
        loop with what we did not (for the ``notfound``). The pool is read on the validation
        thread, under the chain lock (it is not thread-safe: that thread changes it)."""
        wanted = list(items)
        pool = self.pool

        def work() -> list[tuple[m.InvItem, Tx | None, float]]:
            found: list[tuple[m.InvItem, Tx | None, float]] = []
            for item in wanted:
                if item.type not in self._TX_TYPES:
                    found.append((item, None, 0.0))
                    continue
                txid = pool.by_wtxid.get(item.hash) if item.type == m.InvType.MSG_WTX else item.hash
                entry = pool.entry(txid) if txid is not None else None
                found.append((item, entry.tx if entry else None, entry.time if entry else 0.0))
            return found

        def send(found: list[tuple[m.InvItem, Tx | None, float]]) -> None:
            s = self._peers.get(peer.id)
            missing: list[m.InvItem] = []
            recent = time.time() - UNCONDITIONAL_RELAY_DELAY
            for item, tx, added in found:
                if tx is None or s is None:
                    missing.append(item)
                    continue
                if item.hash not in s.announced and added > recent and added > s.last_mempool_req:
                    missing.append(item)
                    continue
                if item.type == m.InvType.MSG_TX:
                    peer.send(_RawTx(tx.serialize_legacy()))
                else:
                    peer.send(m.TxMsg(tx))
                s.known.add(tx.wtxid)
                pool.remove_unbroadcast(tx.txid)  # Core: a peer has it now (a set discard)
            done(missing)

        def failed() -> None:
            done(wanted)

        self._submit(peer.id, work, send, failed)

    # -- chain events (on the loop) ---------------------------------------------------------------

    def on_block(self, block: Block) -> None:
        self.orphans.erase_for_block(block)
        for tx in block.txs:
            self._forget(tx)
            self.recent_confirmed.add(tx.wtxid)
            self.recent_confirmed.add(tx.txid)

    def on_tip(self) -> None:
        # Core forgets recent rejections when the tip changes: they may be valid now.
        self.recent_rejects.clear()
        self.recent_rejects_reconsiderable.clear()

    # -- the pool's listener (validation thread) -----------------------------------------------

    def _added_listener(self, entry: MempoolEntry) -> None:
        tx = entry.tx
        feerate = entry.modified_fee * 1000 // max(entry.vsize, 1)
        self._call_soon(self._queue_announcement, tx.wtxid, tx.txid, feerate)

    def _queue_announcement(self, wtxid: bytes, txid: bytes, feerate: int) -> None:
        noban = False
        for s in self._peers.values():
            if not s.relays:
                continue
            h = wtxid if s.wtxid_relay else txid
            if h in s.known:
                continue
            s.queue[wtxid] = txid
            noban = noban or s.has(NetPermissions.NOBAN)
        self._feerates[wtxid] = feerate
        if noban and not self._flush_scheduled:
            # Core sends to noban peers without the trickle delay, at its next pass over the
            # peer; ours is after the callbacks already queued on the loop (a burst of
            # accepted transactions goes out in one inv).
            self._flush_scheduled = True
            self._call_soon(self._flush_noban)

    def _flush_noban(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        for s in list(self._peers.values()):
            if s.has(NetPermissions.NOBAN):
                self._announce(s)

    # -- the tick (loop) -------------------------------------------------------------------------

    def _rebroadcast_delay(self) -> float:
        """Core's ``ReattemptInitialBroadcast`` period: 10 minutes plus up to 5 more."""
        return UNBROADCAST_INTERVAL + self._rng.uniform(0, UNBROADCAST_JITTER)

    def reattempt_initial_broadcast(self) -> None:
        """Announce again every transaction of the unbroadcast set that is still in the pool
        (submitted here, never asked for by a peer) to the peers that do not know it (those
        connected since, as Core's ``RelayTransaction``), and forget the ones that left it."""
        pool = self.pool

        def work() -> list[tuple[bytes, bytes, int]]:
            again: list[tuple[bytes, bytes, int]] = []
            for txid in list(pool.unbroadcast):
                e = pool.entry(txid)
                if e is None:
                    pool.remove_unbroadcast(txid)
                else:
                    again.append((e.tx.wtxid, txid, e.modified_fee * 1000 // max(e.vsize, 1)))
            return again

        def done(again: list[tuple[bytes, bytes, int]]) -> None:
            for wtxid, txid, feerate in again:
                self._queue_announcement(wtxid, txid, feerate)

        self._submit(None, work, done)

    def tick(self) -> None:
        now = self._clock()
        ibd = self._is_ibd()
        if now >= self._next_rebroadcast:
            self._next_rebroadcast = now + self._rebroadcast_delay()
            self.reattempt_initial_broadcast()
        for pid, s in list(self._peers.items()):
            self._request(pid, s, now)
            # Core's fSendTrickle: at the peer's Poisson time, or at every pass for noban.
            trickle = s.has(NetPermissions.NOBAN)
            if now >= s.next_inv:
                trickle = True
                if s.peer.inbound:
                    if now >= self._next_inbound_inv:
                        self._next_inbound_inv = now + self._poisson(self.inbound_interval)
                    s.next_inv = self._next_inbound_inv
                else:
                    s.next_inv = now + self._poisson(self.outbound_interval)
            if trickle:
                if s.send_mempool:
                    self._send_mempool(s)
                self._announce(s)
            if not ibd and s.sent_feefilter == self._max_filter:
                # Out of initial block download: replace the "send me nothing" at once (Core
                # resets the timer when it sent MAX_MONEY and left IBD).
                s.next_feefilter = min(s.next_feefilter, now)
            if (
                now >= s.next_feefilter
                and s.relays
                and _version(s.peer) >= TX_RELAY_VERSION
                and not s.has(NetPermissions.FORCERELAY)  # it should not filter what we send
                and not self.ignore_incoming_txs
            ):
                s.next_feefilter = now + self._poisson(AVG_FEEFILTER_BROADCAST_INTERVAL)
                self._send_feefilter(s, ibd)
        live = {w for s in self._peers.values() for w in s.queue}
        for w in [w for w in self._feerates if w not in live]:
            del self._feerates[w]

    def _request(self, pid: int, s: _PeerTx, now: float) -> None:
        wanted, expired = self.tracker.get_requestable(pid, now)
        for peer_id, g in expired:
            log.debug("timeout of in-flight %s %s from peer=%d",
                      "wtx" if g.is_wtxid else "tx", g.hash[::-1].hex(), peer_id)  # fmt: skip
        items: list[m.InvItem] = []
        for g in wanted:
            if self._already_have(g):
                self.tracker.forget_tx_hash(g.hash)
                continue
            if self.tracker.count_in_flight(pid) >= MAX_PEER_TX_REQUEST_IN_FLIGHT:
                break
            kind = m.InvType.MSG_WTX if g.is_wtxid else m.InvType.MSG_WITNESS_TX
            items.append(m.InvItem(kind, g.hash))
            self.tracker.requested_tx(pid, g.hash, now + GETDATA_TX_INTERVAL)
        for i in range(0, len(items), MAX_GETDATA_SZ):
            s.peer.send(m.GetData(tuple(items[i : i + MAX_GETDATA_SZ])))

    def _announce(self, s: _PeerTx) -> None:
        if not s.queue:
            return
        limit = min(
            INVENTORY_BROADCAST_MAX,
            INVENTORY_BROADCAST_TARGET + len(s.queue) // 1000 * 5,
        )
        fee_filter = int(getattr(s.peer, "fee_filter", 0) or 0)
        pool = self.pool
        items: list[m.InvItem] = []
        while s.queue and len(items) < limit:
            wtxid, txid = s.queue.popitem(last=False)
            if not pool.contains_wtxid(wtxid):
                continue
            if self._feerates.get(wtxid, 0) < fee_filter:
                continue
            h = wtxid if s.wtxid_relay else txid
            if h in s.known:
                continue
            kind = m.InvType.MSG_WTX if s.wtxid_relay else m.InvType.MSG_TX
            items.append(m.InvItem(kind, h))
            s.known.add(h)
            s.announced.add(h)
        if items:
            s.peer.send(m.Inv(tuple(items)))

    def _send_mempool(self, s: _PeerTx) -> None:
        """Answer a ``mempool`` (Core's ``m_send_mempool``): an ``inv`` of every pool
        transaction paying at least the peer's ``feefilter`` that it does not know; what was in
        the pool then may be asked for at once."""
        s.send_mempool = False
        pool = self.pool

        def work() -> tuple[float, list[tuple[bytes, bytes, int]]]:
            listed = [
                (e.tx.wtxid, e.txid, e.modified_fee * 1000 // max(e.vsize, 1))
                for e in pool.entries.values()
            ]
            return time.time(), listed

        def done(r: tuple[float, list[tuple[bytes, bytes, int]]]) -> None:
            if s.peer.id not in self._peers:
                return
            s.last_mempool_req, listed = r
            fee_filter = int(getattr(s.peer, "fee_filter", 0) or 0)
            kind = m.InvType.MSG_WTX if s.wtxid_relay else m.InvType.MSG_TX
            items: list[m.InvItem] = []
            for wtxid, txid, feerate in listed:
                s.queue.pop(wtxid, None)
                h = wtxid if s.wtxid_relay else txid
                if feerate < fee_filter or h in s.known:
                    continue
                s.known.add(h)
                items.append(m.InvItem(kind, h))
            for i in range(0, len(items), m.MAX_INV_SZ):
                s.peer.send(m.Inv(tuple(items[i : i + m.MAX_INV_SZ])))

        self._submit(s.peer.id, work, done)

    def _send_feefilter(self, s: _PeerTx, ibd: bool) -> None:
        if ibd:
            # Nothing to relay yet: ask for nothing (Core rounds MAX_MONEY: the top bucket).
            if s.sent_feefilter != self._max_filter:
                s.sent_feefilter = self._max_filter
                s.peer.send(m.FeeFilter(self._max_filter))
            return
        pool = self.pool
        rounder = self.fee_filter_rounder

        def work() -> int:
            # At least the minimum relay fee, whatever the rounding.
            return max(rounder.round(pool.min_fee()), pool.min_relay_fee)

        def done(rate: int) -> None:
            if rate != s.sent_feefilter and s.peer.id in self._peers:
                s.sent_feefilter = rate
                s.peer.send(m.FeeFilter(rate))

        self._submit(None, work, done)


class _RawTx(m.Message):
    """A ``tx`` message from bytes already serialized (without witness, for ``MSG_TX``)."""

    __slots__ = ("_payload",)
    command = b"tx"

    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def encode(self) -> bytes:
        return self._payload

    @classmethod
    def decode(cls, payload: bytes) -> _RawTx:
        return cls(payload)
