"""Headers-first initial block download, block relay, and serving the chain to peers.

Layer 2: the one module that sees peers and the chain together. :class:`SyncManager` is the
``MessageHandler`` the connection manager calls (``on_peer_connected`` after the handshake,
``on_message``, ``on_peer_disconnected``) on the event loop thread. It follows Bitcoin Core's
``net_processing.cpp`` (``ProcessHeadersMessage``, ``FindNextBlocksToDownload``, ``SendMessages``,
the ``getheaders``/``getblocks``/``getdata`` handlers, ``UpdatedBlockTip``); the per-peer header
pre-sync is :mod:`.headersync`, the download schedule :mod:`.blocksync`.

Threads. The event loop must stay responsive, so no chain work runs on it:

* every unit of chain work — a batch of headers to accept, a block to validate, a ``getheaders``
  or ``getblocks`` to answer, a stored block to read for a peer — runs on one dedicated
  *validation thread* (a one-worker executor, so units run one at a time, in the order they
  were queued), holding the chain lock (``services.chain_lock``) for that unit only, so RPC
  calls get the chain between two blocks. Its result comes back to the loop
  (``call_soon_threadsafe``), which sends the replies.
* the chain's events (tip changed, block connected) fire on whichever thread changed the chain
  (the validation thread, or an RPC thread mining a block); the listeners only note what they
  need and hand it to the loop.
* the loop keeps the per-peer state and the download schedule. It reads the block index
  entries it was handed (their hash, header, height, parent and chain work never change; their
  status flags it reads as hints) and a mirror of the best header chain for fast ancestor
  look-ups; it never looks anything up in the chain state itself.

During initial block download, when the chain has script-check workers, a block's scripts are
checked in the pool while the next blocks connect (``chain.defer_scripts``, as ``peercash
import`` does); they are settled whenever the download goes idle, and for good when IBD ends.
:meth:`SyncManager.is_initial_block_download` and :meth:`SyncManager.peer_stats` may be called
from any thread.

Back-pressure: a block is taken off the peer's in-flight list when it arrives (so stall and
timeout checks see the peer's real speed) and counts as "being validated" until its unit ends;
while 32 blocks wait, no new blocks are requested and the peers delivering them are held
(``peer.pause_processing``) until half are done. Serving blocks waits while a peer's send buffer
is full (``peer.sending_paused``), and a peer's further messages wait until its ``getdata`` is
served (as Core), so a peer holds at most one request of 50,000 entries.

Where we differ from Core, knowingly: a ``getdata`` for a block we do not have gets a
``notfound`` (Core stays silent; it ignores ``notfound`` for blocks itself).

Compact blocks (BIP152, :mod:`.compact`): the last three peers that gave us a new tip are asked
to announce with ``cmpctblock`` (high bandwidth), and we do so to peers that asked us; the one
new block on our tip, announced by headers, is asked for as ``MSG_CMPCT_BLOCK`` from a peer that
sent ``sendcmpct`` (low bandwidth, Core's direct fetch), and such a request for a block within
five of our tip is answered with a ``cmpctblock``. A compact block is rebuilt on the validation
thread from the pool and the extra transactions, the rest asked with ``getblocktxn``; counts are
in ``compact_stats`` and ``compact_tx_stats`` (the hidden ``getcompactblockstats`` RPC).

Punishment follows Core's ``MaybePunishNodeForBlock``: an invalid header or block,
non-continuous or bad-proof-of-work headers and a mutated block make the connection manager's
``misbehaving`` disconnect and discourage the peer; a block too far in the future (our clock may
be wrong) is not punished; a known-invalid block only from an outbound peer. Headers that do not
connect to anything we know are answered with a ``getheaders`` from our best header, at most one
per two minutes, and never punished (Core since it dropped
``MAX_NUM_UNCONNECTING_HEADERS_MSGS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from peercash.chain.index import FAILED_MASK, HAVE_DATA, VALID_SCRIPTS, BlockIndexEntry
from peercash.consensus import deployments
from peercash.consensus.checks import BLOCK_MUTATED_CODES
from peercash.consensus.errors import RuleError
from peercash.consensus.pow import block_work, check_proof_of_work
from peercash.consensus.primitives import Block, Header, Tx

from . import messages as m
from .blocksync import MAX_BLOCKS_IN_TRANSIT_PER_PEER, BlockDownloader
from .compact import (
    MAX_BLOCKTXN_DEPTH,
    MAX_CMPCTBLOCK_DEPTH,
    MAX_HIGH_BANDWIDTH_PEERS,
    CompactBlockError,
    ExtraTransactions,
    HeaderAndShortIDs,
    InvalidCompactBlock,
    PartiallyDownloadedBlock,
    block_transactions,
)
from .fairqueue import FairWorker
from .headersync import (
    ChainStart,
    HeadersSyncParams,
    HeadersSyncState,
    SyncPhase,
    claimed_work,
    headers_sync_params,
)
from .permissions import NetPermissions, has_permission

if TYPE_CHECKING:
    from peercash.chain.chainstate import ChainState
    from peercash.chain.locking import ChainLock

    from .txrelay import TxRelay

__all__ = [
    "HEADERS_DOWNLOAD_TIMEOUT_BASE",
    "HEADERS_DOWNLOAD_TIMEOUT_PER_HEADER",
    "HEADERS_RESPONSE_TIME",
    "MAX_BLOCKS_TO_ANNOUNCE",
    "MAX_BLOCKS_TO_INV",
    "MAX_TIP_AGE",
    "STALE_RELAY_AGE_LIMIT",
    "Misbehaviour",
    "SyncManager",
    "SyncPeer",
    "build_locator",
]

log = logging.getLogger("peercash.p2p.sync")

# -- constants (Core: src/net_processing.cpp unless said otherwise) --------------------------------

HEADERS_RESPONSE_TIME = 120.0
"""Seconds to wait for the answer to a ``getheaders`` before sending another
(``HEADERS_RESPONSE_TIME{2min}``)."""
HEADERS_DOWNLOAD_TIMEOUT_BASE = 15 * 60.0
"""The initial headers sync may take this long (``HEADERS_DOWNLOAD_TIMEOUT_BASE = 15min``) ..."""
HEADERS_DOWNLOAD_TIMEOUT_PER_HEADER = 0.001
"""... plus this per expected header (``HEADERS_DOWNLOAD_TIMEOUT_PER_HEADER = 1ms``)."""
MAX_BLOCKS_TO_ANNOUNCE = 8
"""At most this many headers in a block announcement (``MAX_BLOCKS_TO_ANNOUNCE = 8``)."""
MAX_BLOCKS_TO_INV = 500
"""Blocks in the ``inv`` answering a ``getblocks`` (``int nLimit = 500;``)."""
STALE_RELAY_AGE_LIMIT = 30 * 24 * 60 * 60
"""Blocks off the active chain are served only this close to the best header
(``STALE_RELAY_AGE_LIMIT``, a month), against fingerprinting."""
MAX_TIP_AGE = 24 * 60 * 60
"""Initial block download lasts until the tip is younger than this (src/validation.h
``DEFAULT_MAX_TIP_AGE``, 24 hours) and has the minimum chain work."""
MIN_BLOCKS_TO_KEEP = 288
"""An unrequested block further than this above our tip is not stored (src/validation.h)."""
ANTI_DOS_TIP_BUFFER = 144
"""Headers forking this many blocks below our tip skip the pre-sync
(``GetAntiDoSWorkThreshold``)."""
DEFAULT_VALIDATION_BACKLOG = 32
"""No new block requests while this many received blocks wait for the validation thread
(ours: the loop keeps reading sockets while validation runs, so this is the back-pressure)."""
DEFAULT_TICK_INTERVAL = 0.5
"""Seconds between the periodic checks (stalls, timeouts, new requests)."""
_MAX_QUEUED_HEADERS = 8  # headers messages of a peer waiting before we hold its others
_MAX_BLOCK_SOURCES = 4096  # blocks whose sender we remember (to punish a later failure)
_NEVER = -1.0e18


# -- what the sync manager needs of peers and of the connection manager ---------------------------


class SyncPeer(Protocol):
    """One connection, as ``p2p.peer.Peer`` presents it (after the handshake)."""

    @property
    def id(self) -> int: ...

    @property
    def inbound(self) -> bool: ...

    @property
    def conn_type(self) -> object: ...

    @property
    def services(self) -> int: ...

    @property
    def start_height(self) -> int: ...

    @property
    def prefers_headers(self) -> bool: ...

    @property
    def their_version(self) -> object: ...

    def send(self, msg: m.Message) -> None: ...

    def disconnect(self, reason: str) -> None: ...


P = TypeVar("P", bound=SyncPeer)
P_contra = TypeVar("P_contra", bound=SyncPeer, contravariant=True)


class Misbehaviour(Protocol[P_contra]):
    """The part of the connection manager sync calls: Core's ``Misbehaving`` (disconnect and
    discourage)."""

    def misbehaving(self, peer: P_contra, reason: str) -> None: ...


def _conn_name(peer: SyncPeer) -> str:
    t = peer.conn_type
    return str(getattr(t, "name", t))


def _protocol_version(peer: SyncPeer) -> int:
    """The version both sides speak (``Peer.common_version``), else the peer's own."""
    common = getattr(peer, "common_version", 0)
    if isinstance(common, int) and common > 0:
        return common
    v = peer.their_version
    if isinstance(v, int):
        return v
    return int(getattr(v, "version", 0) or 0)


def _can_serve_blocks(peer: SyncPeer) -> bool:
    return bool(peer.services & (m.NODE_NETWORK | m.NODE_NETWORK_LIMITED))


def _is_limited(peer: SyncPeer) -> bool:
    s = peer.services
    return not s & m.NODE_NETWORK and bool(s & m.NODE_NETWORK_LIMITED)


def _state_text(err: RuleError) -> str:
    """Core's ``BlockValidationState::ToString``: the reject reason, then the debug message."""
    return f"{err.code}, {err.reason}" if err.reason else err.code


def build_locator(
    entry: BlockIndexEntry, ancestor: Callable[[BlockIndexEntry, int], BlockIndexEntry]
) -> tuple[bytes, ...]:
    """A block locator from ``entry`` (Core's ``LocatorEntries``): the last eleven blocks, then
    exponentially further apart, ending with the genesis block."""
    hashes: list[bytes] = []
    step = 1
    e = entry
    while True:
        hashes.append(e.hash)
        if e.height == 0:
            break
        e = ancestor(e, max(e.height - step, 0))
        if len(hashes) > 10:
            step *= 2
    return tuple(hashes)


_InvResult = tuple[dict[bytes, BlockIndexEntry], BlockIndexEntry | None, list[bytes],
                   BlockIndexEntry]  # fmt: skip
"""What ``_on_inv`` finds: the known blocks by hash, the most-work one, the last unknown
hashes (last first), and the best header."""
_INV_UNKNOWN_KEPT = 16
"""Unknown hashes of an ``inv`` handed back to the loop (the last ones), of which the last one
not in flight triggers a ``getheaders``."""
_GETDATA_BATCH = 16
"""Blocks read for a peer in one go on the validation thread (when its send buffer has room)."""
_GETDATA_BATCH_BYTES = 1_000_000
"""The room assumed in a peer's send buffer when it does not say (test doubles)."""


class _RawBlock(m.Message):
    """A ``block`` message from bytes already in wire form (a stored block, as read)."""

    __slots__ = ("payload",)
    command: ClassVar[bytes] = b"block"

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def encode(self) -> bytes:
        return self.payload


class _RawCmpctBlock(_RawBlock):
    """A ``cmpctblock`` message encoded on the validation thread."""

    __slots__ = ()
    command: ClassVar[bytes] = b"cmpctblock"


DIRECT_FETCH_SPACINGS = 20
"""Core's ``CanDirectFetch``: our tip is less than 20 block intervals old."""


# -- per-peer state and unit results ------------------------------------------------------------


@dataclass(slots=True)
class _PeerState(Generic[P]):
    peer: P
    preferred: bool
    sync_started: bool = False
    headers_sync: HeadersSyncState | None = None
    last_getheaders: float = _NEVER
    headers_sync_timeout: float = 0.0
    best_header_sent: BlockIndexEntry | None = None
    sent_sendheaders: bool = False
    got_sendheaders: bool = False
    inv_triggered_sync: bool = False
    continuation: bytes | None = None
    headers_busy: bool = False
    headers_queue: deque[tuple[Header, ...]] = field(default_factory=deque)
    paused_headers: bool = False
    paused_blocks: bool = False
    getdata: deque[m.InvItem] = field(default_factory=deque)
    serving: bool = False
    paused_getdata: bool = False
    partial: PartiallyDownloadedBlock | None = None
    """A compact block waiting for the ``blocktxn`` we asked for."""


@dataclass(slots=True)
class _HeadersResult:
    kind: str  # "ok", "unconnecting", "low-work", "invalid"
    last: BlockIndexEntry | None = None
    received_new: bool = False
    error: RuleError | None = None
    start: ChainStart | None = None
    threshold: int = 0
    best: BlockIndexEntry | None = None
    resolved: dict[int, BlockIndexEntry] = field(default_factory=dict)


@dataclass(slots=True)
class _BlockResult:
    kind: str  # "ok", "invalid", "missing-prev", "ignored", "settled"
    entry: BlockIndexEntry | None = None
    new: bool = False  # the block was stored now (not had before)
    error: RuleError | None = None
    failures: list[tuple[BlockIndexEntry, RuleError]] = field(default_factory=list)
    best: BlockIndexEntry | None = None
    tip: BlockIndexEntry | None = None


T = TypeVar("T")


class SyncManager(Generic[P]):
    """Headers-first sync and block relay for one chain state, on the running event loop.

    ``chain`` and ``lock``: the chain state and its lock (the node's ``services.chain_lock``).
    ``connman``: who to report misbehaving peers to (set later with :meth:`set_connman` when
    the connection manager is built with this handler). ``clock``: monotonic seconds for the
    request timeouts and stall checks (the chain's own clock, ``chain.validator.clock``, is the
    wall time IBD and header ages are judged by). ``rng``: the source of the pre-sync's secret
    salts. ``window`` and the stalling timeout can be made smaller for tests.
    """

    def __init__(
        self,
        chain: ChainState,
        lock: ChainLock,
        connman: Misbehaviour[P] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        window: int | None = None,
        stalling_timeout: float | None = None,
        headers_sync: HeadersSyncParams | None = None,
        max_validation_backlog: int = DEFAULT_VALIDATION_BACKLOG,
        tick_interval: float = DEFAULT_TICK_INTERVAL,
    ) -> None:
        self.chain = chain
        self.lock = lock
        self.params = chain.params
        self.connman = connman
        self._clock = clock
        self._wall = chain.validator.clock
        self._rng = rng if rng is not None else random.Random()
        self._hs_params = (
            headers_sync if headers_sync is not None else headers_sync_params(self.params)
        )
        self._backlog_limit = max_validation_backlog
        self._tick_interval = tick_interval
        self._min_work = self.params.min_chain_work
        params = self.params
        kwargs: dict[str, Any] = {}
        if window is not None:
            kwargs["window"] = window
        if stalling_timeout is not None:
            kwargs["stalling_timeout"] = stalling_timeout
        self.downloader: BlockDownloader[BlockIndexEntry] = BlockDownloader(
            clock=clock,
            parent=lambda e: e.prev,
            work=lambda e: e.chain_work,
            has_data=lambda e: bool(e.status & HAVE_DATA),
            invalid=lambda e: bool(e.status & FAILED_MASK),
            busy=lambda e: e.hash in self._validating,
            needs_witness=lambda e: deployments.segwit_active(params, e.height),
            block_interval=float(params.pow_target_spacing),
            **kwargs,
        )
        self._peers: dict[int, _PeerState[P]] = {}
        self._n_sync_started = 0
        self._n_preferred = 0
        self._last_inv_sync_trigger: bytes | None = None
        self._block_sources: OrderedDict[bytes, int] = OrderedDict()
        self._validating: dict[bytes, int] = {}  # received blocks queued for validation
        self._settling = False
        self._unsettled = False  # blocks accepted since the last settle (deferred checks)
        self._pending_units = 0
        self._idle: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._executor = FairWorker("validation")
        self.relay: TxRelay | None = None
        # BIP152 compact blocks.
        self._hb_peers: list[int] = []
        """Peers asked to announce with ``cmpctblock`` (high bandwidth), latest last."""
        self._recent_block: Block | None = None
        self._extra_txs = ExtraTransactions()
        self._rebuilding: set[bytes] = set()
        """Compact blocks whose pool scan is queued or running: the same block from another
        peer meanwhile is not scanned twice."""
        self.compact_stats = {"reconstructed": 0, "roundtrip": 0, "fallback": 0}
        """Compact blocks rebuilt at once, after a ``getblocktxn``, or given up for the
        full block."""
        self.compact_tx_stats = {"prefilled": 0, "mempool": 0, "extra": 0, "requested": 0}
        """Where the transactions of the rebuilt compact blocks came from."""
        self._closed = False
        self._owns_defer = False
        # Chain-thread state (touched only with the chain lock held).
        self._seen_error: object = None
        self._listener_tip: BlockIndexEntry | None = None
        self._ibd = True
        with lock:
            tip = chain.tip
            best = chain.best_header or tip
            self._ibd_check(tip)
            if self._ibd and chain.pool is not None and not chain.defer_scripts:
                chain.defer_scripts = True
                self._owns_defer = True
            self._seen_error = chain.last_error
            self._listener_tip = tip
            chain.events.tip_changed.append(self._tip_listener)
            chain.events.block_connected.append(self._connected_listener)
        # Loop-side view of the chain.
        self._tip = tip
        self._best = best
        self.downloader.chain.set_tip(best if best.chain_work >= tip.chain_work else tip)

    # -- life cycle -----------------------------------------------------------------------------

    def set_connman(self, connman: Misbehaviour[P]) -> None:
        self.connman = connman

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to the event loop (the running one by default) and start the periodic checks."""
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        if self._tick_interval > 0:
            self._timer = self._loop.call_later(self._tick_interval, self._periodic)

    async def aclose(self) -> None:
        """:meth:`close` from the event loop, without blocking it."""
        if self._timer is not None:
            self._timer.cancel()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Stop: no more units; wait for the one running; settle deferred script checks. Any
        thread; blocks until the running unit ends (use :meth:`aclose` on the loop)."""
        if self._closed:
            return
        self._closed = True  # the periodic timer stops at its next run
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            events = self.chain.events
            with contextlib.suppress(ValueError):
                events.tip_changed.remove(self._tip_listener)
            with contextlib.suppress(ValueError):
                events.block_connected.remove(self._connected_listener)
            if self._owns_defer:
                self.chain.defer_scripts = False
                self._owns_defer = False
                self.chain.settle()

    async def idle(self) -> None:
        """Wait until no unit of chain work is queued or running (for tests and shutdown)."""
        while self._pending_units:
            assert self._idle is not None
            self._idle.clear()
            await self._idle.wait()

    def _periodic(self) -> None:
        if self._closed or self._loop is None:
            return
        try:
            self.tick()
        finally:
            self._timer = self._loop.call_later(self._tick_interval, self._periodic)

    # -- queries (any thread) ---------------------------------------------------------------------

    def is_initial_block_download(self) -> bool:
        """Core's ``IsInitialBlockDownload``: our tip has less than the minimum chain work or is
        more than 24 hours old (by the chain's clock). Once false it stays false."""
        return self._ibd

    def peer_stats(self, peer_id: int) -> dict[str, Any]:
        """What ``getpeerinfo`` shows of a peer's sync: ``synced_headers`` (the best block it is
        known to have, -1 for none), ``synced_blocks`` (the last block we both have),
        ``presynced_headers`` (the height its low-work pre-sync reached, -1 if none) and
        ``inflight`` (heights of the blocks requested from it). Empty for an unknown peer."""
        state = self._peers.get(peer_id)
        if state is None:
            return {}
        d = self.downloader
        best = d.best_known(peer_id)
        common = d.last_common(peer_id)
        hs = state.headers_sync
        return {
            "synced_headers": best.height if best is not None else -1,
            "synced_blocks": common.height if common is not None else -1,
            "presynced_headers": hs.presync_height if hs is not None else -1,
            "inflight": sorted(e.height for e in d.in_flight(peer_id)),
        }

    def _publish(self, state: _PeerState[P]) -> None:
        """Keep the peer's ``getpeerinfo`` fields current (``Peer.synced_headers`` …), when
        the peer object has them."""
        peer = state.peer
        if not hasattr(peer, "synced_headers"):
            return
        stats = self.peer_stats(peer.id)
        if not stats:
            return
        for name in ("synced_headers", "synced_blocks", "presynced_headers", "inflight"):
            setattr(peer, name, stats[name])

    # -- running chain work on the validation thread ------------------------------------------

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(fn, *args)

    def _submit(
        self,
        key: int | None,
        work: Callable[[], T],
        done: Callable[[T], None],
        failed: Callable[[], None] | None = None,
    ) -> None:
        """Run ``work`` with the chain lock on the validation thread, then ``done(result)`` on
        the loop (``failed()`` instead when ``work`` raised; the error is logged). ``key`` is
        the peer the work is for (None: the node's own): the thread serves peers fairly, by
        the CPU time their work took, so a flood from one delays no one else's."""
        if self._closed:
            return
        self._pending_units += 1

        def job() -> None:
            result: Any = None
            ok = False
            try:
                with self.lock:
                    result = work()
                ok = True
            except Exception:
                log.exception("chain work for the sync failed")
            self._call_soon(self._unit_done, done, failed, result, ok)

        try:
            self._executor.submit(key, job)
        except RuntimeError:  # shut down
            self._pending_units -= 1

    def _unit_done(
        self,
        done: Callable[[Any], None],
        failed: Callable[[], None] | None,
        result: Any,
        ok: bool,
    ) -> None:
        self._pending_units -= 1
        try:
            if ok:
                done(result)
            elif failed is not None:
                failed()
        finally:
            if not self._pending_units and self._idle is not None:
                self._idle.set()

    # -- chain-thread helpers (chain lock held) ---------------------------------------------------

    def _ibd_check(self, tip: BlockIndexEntry) -> bool:
        if not self._ibd:
            return False
        if tip.chain_work < self._min_work or tip.header.time < self._wall() - MAX_TIP_AGE:
            return True
        self._ibd = False
        log.info("Leaving InitialBlockDownload (latching to false)")
        return False

    def _chain_ancestor(self, e: BlockIndexEntry, height: int) -> BlockIndexEntry:
        chain = self.chain
        x = e
        while x.height > height and not chain.contains(x):
            assert x.prev is not None
            x = x.prev
        return chain.chain[height] if chain.contains(x) else x

    def _chain_locator(self, e: BlockIndexEntry) -> tuple[bytes, ...]:
        return build_locator(e, self._chain_ancestor)

    def _anti_dos_threshold(self) -> int:
        tip = self.chain.tip
        near_tip = tip.chain_work - min(ANTI_DOS_TIP_BUFFER * block_work(tip.header.bits),
                                        tip.chain_work)  # fmt: skip
        return max(near_tip, self._min_work)

    def _is_ancestor_of_best_or_tip(self, e: BlockIndexEntry | None) -> bool:
        if e is None:
            return False
        best = self.chain.best_header
        if (
            best is not None
            and best.height >= e.height
            and self._chain_ancestor(best, e.height) is e
        ):
            return True
        return self.chain.contains(e)

    def _new_failures(self) -> list[tuple[BlockIndexEntry, RuleError]]:
        """The block failure the chain recorded during this unit, if any (each unit first marks
        what was recorded before it as seen: a block that failed under an RPC call, say, is no
        peer's doing, whoever sends it to us later)."""
        err = self.chain.last_error
        if err is None or err is self._seen_error:
            return []
        self._seen_error = err
        return [err]

    def _fork_in_active_chain(self, locator: Sequence[bytes]) -> BlockIndexEntry:
        """Core's ``FindForkInGlobalIndex``: the first locator block on our active chain (or
        our tip, when the locator block is ahead of it on the same chain)."""
        chain = self.chain
        for h in locator:
            e = chain.index.get(h)
            if e is None:
                continue
            if chain.contains(e):
                return e
            if e.height > chain.height and e.ancestor(chain.height) is chain.tip:
                return chain.tip
        return chain.chain[0]

    def _block_request_allowed(self, e: BlockIndexEntry) -> bool:
        """Core's ``BlockRequestAllowed``: blocks of the active chain, or fully validated ones
        within a month of the best header (in time and in equivalent work)."""
        chain = self.chain
        if chain.contains(e):
            return True
        best = chain.best_header
        if best is None or not e.valid_to(VALID_SCRIPTS):
            return False
        if best.header.time - e.header.time >= STALE_RELAY_AGE_LIMIT:
            return False
        per_block = max(1, block_work(best.header.bits))
        equivalent = (best.chain_work - e.chain_work) * self.params.pow_target_spacing // per_block
        return abs(equivalent) < STALE_RELAY_AGE_LIMIT

    # -- chain event listeners (any chain thread, lock held) ---------------------------------------

    def _tip_listener(self, entry: BlockIndexEntry) -> None:
        old = self._listener_tip
        self._listener_tip = entry
        ibd = self._ibd_check(entry)
        new: list[BlockIndexEntry] = []
        if not ibd and old is not None:
            # The blocks new to the active chain, newest first, back to the fork with the old
            # tip or to 8 of them (Core's UpdatedBlockTip: a peer further behind syncs itself).
            a: BlockIndexEntry | None = old
            b: BlockIndexEntry | None = entry
            while b is not None and len(new) < MAX_BLOCKS_TO_ANNOUNCE:
                while a is not None and a.height > b.height:
                    a = a.prev
                if a is b:
                    break
                new.append(b)
                b = b.prev
            new.reverse()
        best = self.chain.best_header or entry
        self._call_soon(self._on_tip, entry, best, tuple(new), ibd)

    def _connected_listener(self, block: Block, entry: BlockIndexEntry) -> None:
        self._call_soon(self._on_connected, block)

    def _on_connected(self, block: Block) -> None:
        self.downloader.block_connected()
        self._recent_block = block
        if self.relay is not None:
            self.relay.on_block(block)

    # -- transaction relay ---------------------------------------------------------------------

    def set_relay(self, relay: TxRelay | None) -> None:
        """Hand transaction messages to ``relay`` (``None``: no mempool, as before)."""
        self.relay = relay
        if relay is not None:
            relay.keep_for_compact = self._extra_txs.add
            for state in self._peers.values():
                relay.add_peer(state.peer)

    def submit_chain_work(
        self,
        key: int | None,
        work: Callable[[], T],
        done: Callable[[T], None],
        failed: Callable[[], None] | None = None,
    ) -> None:
        """Run ``work`` on the validation thread with the chain lock (fair between peers by
        ``key``), then ``done(result)`` on the loop (``failed()`` if it raised): for the
        relay's pool calls."""
        self._submit(key, work, done, failed)

    def call_soon_threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        self._call_soon(fn, *args)

    # -- MessageHandler ------------------------------------------------------------------------

    def on_peer_connected(self, peer: P) -> None:
        if self._loop is None:
            self.start()
        preferred = (
            not peer.inbound and _conn_name(peer) != "ADDR_FETCH" and _can_serve_blocks(peer)
        )
        state = _PeerState(peer, preferred)
        self._peers[peer.id] = state
        self._n_preferred += preferred
        self.downloader.add_peer(
            peer.id,
            serves_witness=bool(peer.services & m.NODE_WITNESS),
            limited=_is_limited(peer),
        )
        self._maybe_start_headers_sync(state)
        if self.relay is not None:
            self.relay.add_peer(peer)
        if _protocol_version(peer) >= m.SHORT_IDS_BLOCKS_VERSION:
            # Low bandwidth: announce to us as you like (Core sends this to every such peer).
            peer.send(m.SendCmpct(False, m.CMPCTBLOCKS_VERSION))

    def on_peer_disconnected(self, peer: P) -> None:
        state = self._peers.pop(peer.id, None)
        if state is None:
            return
        self._n_sync_started -= state.sync_started
        self._n_preferred -= state.preferred
        released = self.downloader.remove_peer(peer.id)
        self._executor.forget(peer.id)
        if peer.id in self._hb_peers:
            self._hb_peers.remove(peer.id)
        if self.relay is not None:
            self.relay.remove_peer(peer)
        if released:
            log.debug("peer=%d left with %d blocks in flight", peer.id, len(released))
        self._schedule_all()

    def on_message(self, peer: P, msg: m.Message) -> None:
        state = self._peers.get(peer.id)
        if state is None:
            return
        if isinstance(msg, m.Headers):
            self._on_headers(state, msg.headers)
        elif isinstance(msg, m.BlockMsg):
            self._on_block(state, msg.block)
        elif isinstance(msg, m.Inv):
            self._on_inv(state, msg)
            if self.relay is not None:
                self.relay.on_inv(peer, msg)
        elif isinstance(msg, m.CmpctBlock):
            self._on_cmpctblock(state, msg)
        elif isinstance(msg, m.BlockTxn):
            self._on_blocktxn(state, msg)
        elif isinstance(msg, m.GetBlockTxn):
            self._on_getblocktxn(state, msg)
        elif isinstance(msg, m.TxMsg):
            if self.relay is not None:
                self.relay.on_tx(peer, msg.tx)
        elif isinstance(msg, m.NotFound):
            if self.relay is not None:
                self.relay.on_notfound(peer, msg)
        elif isinstance(msg, m.MempoolMsg):
            if self.relay is not None:
                self.relay.on_mempool(peer)
        elif isinstance(msg, m.GetHeaders):
            self._on_getheaders(state, msg)
        elif isinstance(msg, m.GetBlocks):
            self._on_getblocks(state, msg)
        elif isinstance(msg, m.GetData):
            state.getdata.extend(msg.items)
            self._serve_getdata(state)
            if (state.getdata or state.serving) and not state.paused_getdata:
                # Nothing more from this peer until its request is served (Core's
                # ProcessMessages: "this maintains the order of responses and prevents
                # m_getdata_requests to grow unbounded"): at most one getdata is queued.
                pause = getattr(state.peer, "pause_processing", None)
                if pause is not None:
                    pause()
                    state.paused_getdata = True
        elif isinstance(msg, m.SendHeaders):
            state.got_sendheaders = True

    # -- periodic checks -------------------------------------------------------------------------

    def tick(self) -> None:
        """The periodic checks of Core's ``SendMessages``: stalling and overdue peers are
        disconnected, a stuck initial headers sync is dropped, headers sync and block requests
        start where they can."""
        now = self._clock()
        if self.relay is not None:
            self.relay.tick()
        for state in list(self._peers.values()):
            peer = state.peer
            reason = self.downloader.check_peer(peer.id)
            if reason == "stalling":
                log.info("Peer is stalling block download, disconnecting peer=%d", peer.id)
                self._drop(state, "Peer is stalling block download")
                continue
            if reason == "timeout":
                oldest = self.downloader.oldest_in_flight(peer.id)
                what = oldest.header.hash_hex if oldest is not None else "?"
                log.info("Timeout downloading block %s, disconnecting peer=%d", what, peer.id)
                self._drop(state, f"Timeout downloading block {what}")
                continue
            if state.sync_started and state.headers_sync_timeout < float("inf"):
                if self._best.header.time <= self._wall() - MAX_TIP_AGE:
                    if (
                        now > state.headers_sync_timeout
                        and self._n_sync_started == 1
                        and self._n_preferred - state.preferred >= 1
                    ):
                        log.info("Timeout downloading headers, disconnecting peer=%d", peer.id)
                        self._drop(state, "Timeout downloading headers")
                        continue
                else:
                    state.headers_sync_timeout = float("inf")
            self._maybe_start_headers_sync(state)
            self._maybe_send_sendheaders(state)
            if state.getdata:
                self._serve_getdata(state)
        self._schedule_all()
        self._maybe_settle()

    # -- headers -----------------------------------------------------------------------------------

    def _locator(self, e: BlockIndexEntry) -> tuple[bytes, ...]:
        return build_locator(e, self.downloader.chain.ancestor)

    def _maybe_send_getheaders(self, state: _PeerState[P], locator: tuple[bytes, ...]) -> bool:
        """Core's ``MaybeSendGetHeaders``: not while an earlier one may still be answered."""
        now = self._clock()
        if now - state.last_getheaders <= HEADERS_RESPONSE_TIME:
            return False
        state.last_getheaders = now
        state.peer.send(m.GetHeaders(m.PROTOCOL_VERSION, locator, bytes(32)))
        return True

    def _maybe_start_headers_sync(self, state: _PeerState[P]) -> None:
        """Core starts the initial headers sync with one preferred peer, or with every peer once
        the best header is less than a day old."""
        peer = state.peer
        if state.sync_started or not _can_serve_blocks(peer):
            return
        best = self._best
        recent = best.header.time > self._wall() - MAX_TIP_AGE
        if not ((self._n_sync_started == 0 and self._sync_from(state)) or recent):
            return
        start = best.prev if best.prev is not None else best
        if self._maybe_send_getheaders(state, self._locator(start)):
            state.sync_started = True
            self._n_sync_started += 1
            behind = max(0.0, self._wall() - best.header.time) / self.params.pow_target_spacing
            state.headers_sync_timeout = (
                self._clock()
                + HEADERS_DOWNLOAD_TIMEOUT_BASE
                + HEADERS_DOWNLOAD_TIMEOUT_PER_HEADER * behind
            )

    def _maybe_send_sendheaders(self, state: _PeerState[P]) -> None:
        """Core's ``MaybeSendSendHeaders``: ask for header announcements once the peer has shown
        us a chain above the minimum chain work (after the initial headers sync)."""
        if state.sent_sendheaders or _protocol_version(state.peer) < m.SENDHEADERS_VERSION:
            return
        best = self.downloader.best_known(state.peer.id)
        if best is not None and best.chain_work > self._min_work:
            state.peer.send(m.SendHeaders())
            state.sent_sendheaders = True

    def _on_headers(self, state: _PeerState[P], headers: tuple[Header, ...]) -> None:
        if state.headers_busy:
            state.headers_queue.append(headers)
            if len(state.headers_queue) >= _MAX_QUEUED_HEADERS and not state.paused_headers:
                # Hold the peer's further messages until these are done (Core handles one
                # message of a peer at a time); a peer object without the control just queues.
                pause = getattr(state.peer, "pause_processing", None)
                if pause is not None:
                    pause()
                    state.paused_headers = True
            return
        self._process_headers(state, headers)

    def _headers_done(self, state: _PeerState[P]) -> None:
        state.headers_busy = False
        if state.headers_queue and state.peer.id in self._peers:
            self._process_headers(state, state.headers_queue.popleft())
        elif state.paused_headers:
            state.paused_headers = False
            resume = getattr(state.peer, "resume_processing", None)
            if resume is not None:
                resume()

    def _drop(self, state: _PeerState[P], reason: str) -> None:
        """Disconnect the peer and forget it now: its blocks in flight go to others at once (the
        connection manager's later ``on_peer_disconnected`` then finds nothing to do)."""
        state.peer.disconnect(reason)
        self.on_peer_disconnected(state.peer)

    def _punish(self, state: _PeerState[P], reason: str) -> None:
        """Core's ``Misbehaving``: the connection manager disconnects and discourages (not a
        manual peer: that one stays)."""
        peer = state.peer
        if self.connman is None:
            self._drop(state, reason)
            return
        self.connman.misbehaving(peer, reason)
        closing = getattr(peer, "is_closing", None)
        if closing is None:
            closing = getattr(peer, "closed", False)
        if closing:
            self.on_peer_disconnected(peer)

    def _punish_block_error(self, state: _PeerState[P], err: RuleError, message: str) -> None:
        """Core's ``MaybePunishNodeForBlock`` for a rejection of ours."""
        if err.code == "time-too-new":
            return  # BLOCK_TIME_FUTURE: our clock may be the wrong one
        if err.code == "duplicate-invalid" and state.peer.inbound:
            return  # BLOCK_CACHED_INVALID: only outbound peers are punished
        self._punish(state, message or _state_text(err))

    def _process_headers(self, state: _PeerState[P], headers: tuple[Header, ...]) -> None:
        """Core's ``ProcessHeadersMessage``."""
        peer = state.peer
        n = len(headers)
        if n == 0:
            # The peer has nothing more: stop any pre-sync and count our request answered.
            state.headers_sync = None
            state.last_getheaders = _NEVER
            return
        pow_limit = self.params.pow_limit
        if not all(check_proof_of_work(h.hash, h.bits, pow_limit) for h in headers):
            self._punish(state, "header with invalid proof of work")
            return
        if any(headers[i].prev_hash != headers[i - 1].hash for i in range(1, n)):
            self._punish(state, "non-continuous headers sequence")
            return
        full = n == m.MAX_HEADERS_RESULTS
        batch: Sequence[Header] = headers
        already_validated = False
        if state.headers_sync is not None:
            ok, batch = self._continue_low_work(state, headers, full)
            already_validated = ok
            if ok and not batch:
                return
        have_headers_sync = state.headers_sync is not None
        pending = {
            pid: h for pid in self._peers if (h := self.downloader.last_unknown(pid)) is not None
        }
        batch = tuple(batch)
        state.headers_busy = True

        def work() -> _HeadersResult:
            return self._headers_unit(batch, already_validated, pending)

        def done(r: _HeadersResult) -> None:
            try:
                if peer.id in self._peers:
                    self._headers_result(state, batch, r, n, full, have_headers_sync)
            finally:
                self._headers_done(state)

        self._submit(state.peer.id, work, done, lambda: self._headers_done(state))

    def _continue_low_work(
        self, state: _PeerState[P], headers: Sequence[Header], full: bool
    ) -> tuple[bool, Sequence[Header]]:
        """Core's ``IsContinuationOfLowWorkHeadersSync``: feed the pre-sync; returns whether it
        took the headers, and the headers now ready for the chain (or the same ones)."""
        hs = state.headers_sync
        assert hs is not None
        result = hs.process_next_headers(headers, full)
        if result.success:
            state.last_getheaders = _NEVER  # the batch answered our request
        if result.request_more:
            locator = hs.next_headers_request_locator()
            if locator:
                self._maybe_send_getheaders(state, locator)
        if hs.phase is SyncPhase.FINAL:
            state.headers_sync = None
        if result.success:
            return True, result.pow_validated_headers
        return False, headers

    def _headers_unit(
        self, headers: tuple[Header, ...], already_validated: bool, pending: dict[int, bytes]
    ) -> _HeadersResult:
        chain = self.chain
        start = chain.index.get(headers[0].prev_hash)
        if start is None:
            return _HeadersResult("unconnecting", best=chain.best_header or chain.tip)
        last_known = chain.index.get(headers[-1].hash)
        if not already_validated and not self._is_ancestor_of_best_or_tip(last_known):
            threshold = self._anti_dos_threshold()
            if start.chain_work + claimed_work(headers) < threshold:
                cs = ChainStart(
                    start.hash,
                    start.height,
                    start.chain_work,
                    start.header.bits,
                    start.median_time_past(),
                    self._chain_locator(start),
                )
                return _HeadersResult("low-work", start=cs, threshold=threshold)
        result = _HeadersResult("ok", received_new=last_known is None)
        for h in headers:
            try:
                result.last = chain.accept_header(h)
            except RuleError as err:
                result.kind = "invalid"
                result.error = err
                break
        result.best = chain.best_header or chain.tip
        for pid, unknown in pending.items():
            e = chain.index.get(unknown)
            if e is not None:
                result.resolved[pid] = e
        return result

    def _headers_result(
        self,
        state: _PeerState[P],
        headers: Sequence[Header],
        r: _HeadersResult,
        n: int,
        full: bool,
        have_headers_sync: bool,
    ) -> None:
        peer = state.peer
        d = self.downloader
        if r.kind == "unconnecting":
            # Core's HandleUnconnectingHeaders: perhaps a BIP130 announcement of a block whose
            # parent we lack; ask for what connects it, and remember the block.
            assert r.best is not None
            self._update_best(r.best)
            self._maybe_send_getheaders(state, self._locator(r.best))
            d.block_available(peer.id, None, headers[-1].hash)
            return
        # Headers that connect answer any request of ours.
        state.last_getheaders = _NEVER
        if r.kind == "low-work":
            assert r.start is not None
            if full:
                hs = HeadersSyncState(
                    peer.id,
                    self.params,
                    self._hs_params,
                    r.start,
                    r.threshold,
                    salt=self._rng.randbytes(16),
                    commit_offset=self._rng.randrange(self._hs_params.commitment_period),
                    now=int(self._wall()),
                )
                state.headers_sync = hs
                log.debug("peer=%d: low-work headers sync started at height %d", peer.id,
                          r.start.height)  # fmt: skip
                self._continue_low_work(state, headers, full)
            else:
                log.debug(
                    "Ignoring low-work chain (height=%d) from peer=%d", r.start.height + n, peer.id
                )
            return
        for pid, e in r.resolved.items():
            d.resolve_unknown(pid, e)
        if r.best is not None:
            self._update_best(r.best)
        if r.kind == "invalid":
            assert r.error is not None
            self._punish_block_error(state, r.error, "invalid header received")
            return
        last = r.last
        assert last is not None
        if full and not have_headers_sync:
            self._maybe_send_getheaders(state, self._locator(last))
        d.block_available(peer.id, last, last.hash)
        if self._ibd and not full:
            best = d.best_known(peer.id)
            if (
                best is not None
                and best.chain_work < self._min_work
                and _conn_name(peer) in ("OUTBOUND_FULL_RELAY", "BLOCK_RELAY")
            ):
                log.info("outbound peer headers chain has insufficient work, peer=%d", peer.id)
                self._drop(state, "outbound peer headers chain has insufficient work")
                return
        self._maybe_send_sendheaders(state)
        self._schedule_all()

    def _update_best(self, best: BlockIndexEntry) -> None:
        """The chain state's best header (as a unit or an event reported it): mirror its chain,
        or our tip's when that has more work (it may be a header the chain has not seen)."""
        if best is self._best and self.downloader.chain.contains(self._tip):
            return
        self._best = best
        top = best if best.chain_work >= self._tip.chain_work else self._tip
        self.downloader.chain.set_tip(top)

    # -- inv ---------------------------------------------------------------------------------------

    def _on_inv(self, state: _PeerState[P], msg: m.Inv) -> None:
        """Block announcements (Core's ``UpdateBlockAvailability`` for each, then one
        ``getheaders`` for the last unknown one). Up to 50,000 entries a message, so the work
        is reduced to what the result depends on: the most-work known block (the last of
        equals), whether the peer's earlier unknown block is among the known ones, and the
        last unknown blocks. The hashes are picked out and looked up on the validation thread;
        the loop sees only that."""
        if not msg.items:
            return
        peer = state.peer
        chain = self.chain

        def work() -> _InvResult:
            hashes = msg.hashes(m.InvType.MSG_BLOCK)
            found = list(map(chain.index.entries.get, hashes))
            known: dict[bytes, BlockIndexEntry] = {}
            best: BlockIndexEntry | None = None
            for h, e in zip(hashes, found, strict=True):
                if e is not None:
                    known[h] = e
                    if best is None or e.chain_work >= best.chain_work:
                        best = e
            # The unknown ones, last first (only the last few are ever looked at).
            unknown: list[bytes] = []
            for h, e in zip(reversed(hashes), reversed(found), strict=True):
                if e is None:
                    unknown.append(h)
                    if len(unknown) == _INV_UNKNOWN_KEPT:
                        break
            return known, best, unknown, chain.best_header or chain.tip

        def done(r: _InvResult) -> None:
            if peer.id not in self._peers:
                return
            known, best_announced, unknown, best = r
            self._update_best(best)
            d = self.downloader
            earlier = d.last_unknown(peer.id)
            if earlier is not None and earlier in known:
                d.block_available(peer.id, known[earlier], earlier)
            if best_announced is not None:
                d.block_available(peer.id, best_announced, best_announced.hash)
            if unknown:
                d.block_available(peer.id, None, unknown[0])
            last_unknown = next((h for h in unknown if not d.is_requested(h)), None)
            if last_unknown is None:
                return
            # Headers-first: ask for the headers leading to the announced block.
            if state.sync_started or (
                not state.inv_triggered_sync and last_unknown != self._last_inv_sync_trigger
            ):
                self._maybe_send_getheaders(state, self._locator(self._best))
                if not state.sync_started:
                    state.inv_triggered_sync = True
                    self._last_inv_sync_trigger = last_unknown

        self._submit(state.peer.id, work, done)

    # -- blocks ------------------------------------------------------------------------------------

    def _on_block(self, state: _PeerState[P], block: Block, *, force: bool = False) -> None:
        peer = state.peer
        h = block.hash
        d = self.downloader
        requested = force or d.is_requested(h)
        d.received(h, peer.id)
        self._block_sources[h] = peer.id
        self._block_sources.move_to_end(h)
        while len(self._block_sources) > _MAX_BLOCK_SOURCES:
            self._block_sources.popitem(last=False)
        self._validating[h] = self._validating.get(h, 0) + 1
        if len(self._validating) >= self._backlog_limit and not state.paused_blocks:
            # Validation is behind: hold this peer's further messages (blocks in flight stay
            # on the wire and in its bounded receive buffer) until the backlog halves.
            pause = getattr(peer, "pause_processing", None)
            if pause is not None:
                pause()
                state.paused_blocks = True
        self._schedule(state)

        def work() -> _BlockResult:
            return self._block_unit(block, requested)

        def release() -> None:
            left = self._validating.pop(h, 1) - 1
            if left:
                self._validating[h] = left
            if len(self._validating) <= self._backlog_limit // 2:
                self._resume_block_peers()

        def done(r: _BlockResult) -> None:
            release()
            self._block_result(peer.id, block, r)

        def failed() -> None:
            release()
            self._schedule_all()

        self._submit(state.peer.id, work, done, failed)

    def _resume_block_peers(self) -> None:
        for state in self._peers.values():
            if state.paused_blocks:
                state.paused_blocks = False
                resume = getattr(state.peer, "resume_processing", None)
                if resume is not None:
                    resume()

    def _block_unit(self, block: Block, requested: bool) -> _BlockResult:
        chain = self.chain
        self._seen_error = chain.last_error  # failures found outside our units: no peer's doing
        prev = chain.index.get(block.header.prev_hash)
        if prev is None:
            return _BlockResult("missing-prev")
        existing = chain.index.get(block.hash)
        if not requested:
            # Core's AcceptBlock for blocks we did not ask for: only new ones that would not
            # lose work against our tip, not too far ahead of it, and claiming enough work.
            tip = chain.tip
            if existing is not None and existing.status & HAVE_DATA:
                return _BlockResult("ignored", entry=existing)
            work = prev.chain_work + block_work(block.header.bits)
            if existing is None and work < self._anti_dos_threshold():
                return _BlockResult("ignored")
            if work < tip.chain_work or prev.height + 1 > tip.height + MIN_BLOCKS_TO_KEEP:
                return _BlockResult("ignored")
        result = _BlockResult("ok")
        had = existing is not None and bool(existing.status & HAVE_DATA)
        try:
            result.entry = chain.accept_block(block)
            result.new = not had and result.entry is not None
        except RuleError as err:
            result.kind = "invalid"
            result.error = err
        result.failures = self._new_failures()
        if not self._ibd_check(chain.tip) and self._owns_defer:
            # Out of IBD: check scripts in line again, and finish the deferred ones now.
            chain.defer_scripts = False
            self._owns_defer = False
            chain.settle()
            result.failures += self._new_failures()
        result.best = chain.best_header or chain.tip
        result.tip = chain.tip
        return result

    def _block_result(self, peer_id: int, block: Block, r: _BlockResult) -> None:
        d = self.downloader
        state = self._peers.get(peer_id)
        if r.kind == "missing-prev":
            d.received(block.hash, peer_id)
            if state is not None:
                self._punish(state, "prev-blk-not-found")
            return
        if r.kind == "invalid":
            assert r.error is not None
            d.received(block.hash, peer_id)
            if state is not None:
                if r.error.code in BLOCK_MUTATED_CODES:
                    self._punish(state, "mutated block")
                else:
                    self._punish_block_error(state, r.error, "")
        self._punish_failures(r.failures)
        if r.entry is not None:
            self._unsettled = True
            d.received(block.hash)  # stored: no one needs to send it any more
            if state is not None:
                d.block_available(peer_id, r.entry, r.entry.hash)
                if r.new and hasattr(state.peer, "last_block_time"):
                    state.peer.last_block_time = int(self._wall())  # for eviction
                if r.new and r.tip is not None and r.tip is r.entry:
                    self._maybe_high_bandwidth(state)
        if r.tip is not None:
            self._tip = r.tip
        if r.best is not None:
            self._update_best(r.best)
        self._schedule_all()
        self._maybe_settle()

    def _maybe_settle(self) -> None:
        """With script checks deferred, finish them once the download is idle (nothing in
        flight or waiting for validation): otherwise a block whose scripts fail would stay
        connected, and its sender unpunished, until the next blocks come."""
        if not (self._owns_defer and self._unsettled) or self._settling:
            return
        if self._validating or self.downloader.in_flight_count():
            return
        self._settling = True
        self._unsettled = False
        chain = self.chain

        def work() -> _BlockResult:
            self._seen_error = chain.last_error  # as in _block_unit
            chain.settle()
            return _BlockResult("settled", failures=self._new_failures(), tip=chain.tip,
                                best=chain.best_header or chain.tip)  # fmt: skip

        def done(r: _BlockResult) -> None:
            self._settling = False
            self._punish_failures(r.failures)
            if r.tip is not None:
                self._tip = r.tip
            if r.best is not None:
                self._update_best(r.best)
            self._schedule_all()

        def failed() -> None:
            self._settling = False
            self._unsettled = True

        self._submit(None, work, done, failed)

    def _punish_failures(self, failures: list[tuple[BlockIndexEntry, RuleError]]) -> None:
        """Blocks that failed once connected (their scripts, checked late): punish whoever
        sent them, if still connected."""
        for failed, err in failures:
            source = self._block_sources.pop(failed.hash, None)
            culprit = self._peers.get(source) if source is not None else None
            if culprit is not None:
                self._punish_block_error(culprit, err, "")

    # -- block download ----------------------------------------------------------------------------

    def _sync_from(self, state: _PeerState[P]) -> bool:
        """Core's ``sync_blocks_and_headers_from_peer``: preferred (outbound) peers, or any
        peer that serves blocks while no preferred peer does (or nothing is in flight)."""
        if state.preferred:
            return True
        peer = state.peer
        return (
            _can_serve_blocks(peer)
            and _conn_name(peer) != "ADDR_FETCH"
            and (self._n_preferred == 0 or self.downloader.in_flight_count() == 0)
        )

    def _schedule(self, state: _PeerState[P]) -> None:
        """Request what this peer can give us next (Core's ``getdata`` for blocks in
        ``SendMessages``), then publish its sync figures."""
        self._request_blocks(state)
        self._publish(state)

    def _request_blocks(self, state: _PeerState[P]) -> None:
        peer = state.peer
        if len(self._validating) >= self._backlog_limit or not _can_serve_blocks(peer):
            return
        if not ((self._sync_from(state) and not _is_limited(peer)) or not self._ibd):
            return
        if self.downloader.in_flight_count(peer.id) >= MAX_BLOCKS_IN_TRANSIT_PER_PEER:
            return
        blocks = self.downloader.next_blocks(peer.id, self._tip, self._min_work)
        if not blocks:
            return
        kind = (
            m.InvType.MSG_WITNESS_BLOCK if peer.services & m.NODE_WITNESS else m.InvType.MSG_BLOCK
        )
        if (
            len(blocks) == 1
            and not self._ibd
            and blocks[0].prev is self._tip
            and getattr(peer, "compact_blocks", None) is not None
            and self.downloader.in_flight_count() == 1
            and self.relay is not None
            and not self.relay.ignore_incoming_txs
        ):
            # Core's HeadersDirectFetchBlocks: the one new block on our tip, from a peer that
            # speaks BIP152, is asked for as a compact block (rebuilt from our pool).
            kind = m.InvType.MSG_CMPCT_BLOCK
        peer.send(m.GetData(tuple(m.InvItem(kind, e.hash) for e in blocks)))

    def _schedule_all(self) -> None:
        for state in list(self._peers.values()):
            self._schedule(state)

    # -- relay ---------------------------------------------------------------------------------------

    def _on_tip(
        self,
        tip: BlockIndexEntry,
        best: BlockIndexEntry,
        new: tuple[BlockIndexEntry, ...],
        ibd: bool,
    ) -> None:
        self._tip = tip
        self._update_best(best)
        if self.relay is not None:
            self.relay.on_tip()
        if ibd or not new:
            return
        for state in list(self._peers.values()):
            self._announce(state, new)

    def _peer_has_header(self, state: _PeerState[P], e: BlockIndexEntry) -> bool:
        """Core's ``PeerHasHeader``: the peer's best known block or the best header we sent it
        descends from ``e``."""
        chain = self.downloader.chain
        for x in (self.downloader.best_known(state.peer.id), state.best_header_sent):
            if x is not None and x.height >= e.height and chain.ancestor(x, e.height) is e:
                return True
        return False

    def _announce(self, state: _PeerState[P], new: tuple[BlockIndexEntry, ...]) -> None:
        """Announce new blocks of our active chain (Core's ``SendMessages``): the headers the
        peer lacks to those that asked with ``sendheaders``, else an ``inv`` of the tip; nothing
        to a peer that already has the tip (or sent it to us)."""
        peer = state.peer
        tip = new[-1]
        if self._block_sources.get(tip.hash) == peer.id:
            return
        recent = self._recent_block
        if (
            getattr(peer, "bip152_hb_from", False)
            and len(new) == 1
            and recent is not None
            and recent.hash == tip.hash
            and tip.prev is not None
            and self._peer_has_header(state, tip.prev)
            and not self._peer_has_header(state, tip)
        ):
            # High bandwidth: the block itself, as short ids (BIP152).
            nonce = random.getrandbits(64)
            peer.send(HeaderAndShortIDs.from_block(recent, nonce).message)
            state.best_header_sent = tip
            return
        prefers = peer.prefers_headers or state.got_sendheaders
        revert = not prefers
        headers: list[Header] = []
        best_index: BlockIndexEntry | None = None
        if not revert:
            found_start = False
            for e in new:
                if best_index is not None and e.prev is not best_index:
                    revert = True
                    break
                best_index = e
                if found_start:
                    headers.append(e.header)
                elif self._peer_has_header(state, e):
                    continue
                elif e.prev is None or self._peer_has_header(state, e.prev):
                    found_start = True
                    headers.append(e.header)
                else:
                    revert = True
                    break
        if not revert and headers:
            peer.send(m.Headers(tuple(headers)))
            state.best_header_sent = best_index
            return
        if revert and not self._peer_has_header(state, tip):
            peer.send(m.Inv((m.InvItem(m.InvType.MSG_BLOCK, tip.hash),)))

    # -- compact blocks (BIP152) -----------------------------------------------------------------

    def _maybe_high_bandwidth(self, state: _PeerState[P]) -> None:
        """A peer just gave us a new tip: ask it to send blocks as ``cmpctblock`` at once, as
        Core does for the last three such peers (the oldest is told to stop)."""
        peer = state.peer
        cmpct = getattr(peer, "compact_blocks", None)
        if cmpct is None or peer.id in self._hb_peers:
            if peer.id in self._hb_peers:
                self._hb_peers.remove(peer.id)
                self._hb_peers.append(peer.id)
            return
        if len(self._hb_peers) >= MAX_HIGH_BANDWIDTH_PEERS:
            old = self._peers.get(self._hb_peers.pop(0))
            if old is not None:
                old.peer.send(m.SendCmpct(False, m.CMPCTBLOCKS_VERSION))
                if hasattr(old.peer, "bip152_hb_to"):
                    old.peer.bip152_hb_to = False
        self._hb_peers.append(peer.id)
        peer.send(m.SendCmpct(True, m.CMPCTBLOCKS_VERSION))
        if hasattr(peer, "bip152_hb_to"):
            peer.bip152_hb_to = True

    def _on_cmpctblock(self, state: _PeerState[P], msg: m.CmpctBlock) -> None:
        """Rebuild the block from our pool; ask for what is missing; fall back to the full
        block when that fails. A block whose parent we lack goes the headers way."""
        header = msg.header
        prev = self.chain.index.get(header.prev_hash)
        if prev is None:
            self._on_headers(state, (header,))
            return
        known = self.chain.index.get(header.hash)
        if known is not None and known.status & HAVE_DATA:
            return
        if header.hash in self._rebuilding or header.hash in self._validating:
            return  # already on its way from another peer
        self._rebuilding.add(header.hash)
        partial = PartiallyDownloadedBlock()
        pool = self.relay.pool if self.relay is not None else None
        extra = list(self._extra_txs)

        # The short ids are keyed per block, so nothing can be prepared: the pool is scanned
        # on the validation thread, under the chain lock (the pool is not thread-safe, and a
        # scan of 50,000 entries would stall every peer if it ran on the loop).
        def work() -> tuple[tuple[int, ...], CompactBlockError | None]:
            candidates = ((e.tx.wtxid, e.tx) for e in pool.entries.values()) if pool else ()
            try:
                return partial.init(msg, candidates, extra), None
            except CompactBlockError as e:
                return (), e

        def done(r: tuple[tuple[int, ...], CompactBlockError | None]) -> None:
            missing, err = r
            if state.peer.id not in self._peers:
                self._rebuilding.discard(header.hash)
                return
            if isinstance(err, InvalidCompactBlock):
                self._rebuilding.discard(header.hash)
                self._punish(state, f"invalid compact block: {err.reason}")
                return
            if err is not None:
                log.debug("peer=%d: compact block %s: %s; asking for the block",
                          state.peer.id, header.hash_hex, err.reason)  # fmt: skip
                self._full_block_fallback(state, header.hash)
                return
            had = self.chain.index.get(header.hash)
            if had is not None and had.status & HAVE_DATA:
                return  # it came another way meanwhile
            if not missing:
                self._fill_partial(state, partial, ())
                return
            # Waiting for this peer's blocktxn: another peer's compact block of it may be
            # rebuilt meanwhile (Core allows three at a time), so a silent peer stalls nothing.
            self._rebuilding.discard(header.hash)
            state.partial = partial
            state.peer.send(partial.request())

        def failed() -> None:
            self._rebuilding.discard(header.hash)

        self._submit(state.peer.id, work, done, failed)

    def _fill_partial(
        self, state: _PeerState[P], partial: PartiallyDownloadedBlock, txs: Sequence[Tx]
    ) -> None:
        roundtrip = bool(txs)
        block_hash = partial.block_hash
        assert block_hash is not None  # initialised
        self._rebuilding.discard(block_hash)
        counts = (partial.prefilled_count, partial.mempool_count, partial.extra_count, len(txs))
        try:
            block = partial.fill(txs)
        except CompactBlockError as e:
            log.debug("peer=%d: compact block %s not rebuilt: %s", state.peer.id,
                      block_hash[::-1].hex(), e.reason)  # fmt: skip
            self._full_block_fallback(state, block_hash)
            return
        self.compact_stats["roundtrip" if roundtrip else "reconstructed"] += 1
        for key, n in zip(("prefilled", "mempool", "extra", "requested"), counts, strict=True):
            self.compact_tx_stats[key] += n
        log.debug("Successfully reconstructed block %s with %d txn prefilled, %d txn from "
                  "mempool (%d from extra pool) and %d txn requested", block.header.hash_hex,
                  counts[0], counts[1] + counts[2], counts[2], counts[3])  # fmt: skip
        self._on_block(state, block, force=True)

    def _full_block_fallback(self, state: _PeerState[P], block_hash: bytes) -> None:
        self._rebuilding.discard(block_hash)
        self.compact_stats["fallback"] += 1
        state.peer.send(m.GetData((m.InvItem(m.InvType.MSG_WITNESS_BLOCK, block_hash),)))

    def _on_blocktxn(self, state: _PeerState[P], msg: m.BlockTxn) -> None:
        partial = state.partial
        if partial is None or partial.block_hash != msg.block_hash:
            log.debug("peer=%d: unexpected blocktxn ignored", state.peer.id)
            return
        state.partial = None
        self._fill_partial(state, partial, msg.txs)

    def _on_getblocktxn(self, state: _PeerState[P], msg: m.GetBlockTxn) -> None:
        """Serve the transactions of a recent block (Core: within ``MAX_BLOCKTXN_DEPTH`` of
        the tip; deeper, the full block)."""
        chain = self.chain
        peer = state.peer

        def work() -> Block | None:
            e = chain.index.get(msg.block_hash)
            if e is None or not e.status & HAVE_DATA:
                return None
            return chain.read_block(e) if chain.height - e.height < MAX_BLOCKTXN_DEPTH else None

        def done(block: Block | None) -> None:
            if block is None:
                state.getdata.append(m.InvItem(m.InvType.MSG_WITNESS_BLOCK, msg.block_hash))
                self._serve_getdata(state)
                return
            try:
                peer.send(block_transactions(block, msg))
            except InvalidCompactBlock as e:
                self._punish(state, e.reason)

        self._submit(peer.id, work, done)

    # -- serving the chain -------------------------------------------------------------------------

    def _compact_servable(self, e: BlockIndexEntry) -> bool:
        """Core's answer to ``MSG_CMPCT_BLOCK`` (chain lock held): a compact block for one
        within ``MAX_CMPCTBLOCK_DEPTH`` of our tip while the tip is recent (``CanDirectFetch``);
        the full block otherwise (the peer's pool would not help)."""
        tip = self.chain.tip
        recent = (
            tip.header.time > self._wall() - DIRECT_FETCH_SPACINGS * self.params.pow_target_spacing
        )
        return recent and e.height >= tip.height - MAX_CMPCTBLOCK_DEPTH

    def _on_getheaders(self, state: _PeerState[P], msg: m.GetHeaders) -> None:
        """Answer from the active chain: up to 2,000 headers after the locator's fork point."""
        peer = state.peer
        chain = self.chain

        download = has_permission(getattr(peer, "permissions", 0), NetPermissions.DOWNLOAD)

        def work() -> tuple[list[Header], BlockIndexEntry | None] | None:
            if chain.tip.chain_work < self._min_work and not download:
                # Too little work to be useful: an empty answer (Core; not to a peer with
                # the download permission).
                return [], None
            if not msg.locator:
                e = chain.index.get(msg.hash_stop)
                if e is None or not self._block_request_allowed(e):
                    return None
                return [e.header], e
            fork = self._fork_in_active_chain(msg.locator)
            out: list[Header] = []
            last: BlockIndexEntry | None = None
            for height in range(fork.height + 1, chain.height + 1):
                last = chain.chain[height]
                out.append(last.header)
                if len(out) >= m.MAX_HEADERS_RESULTS or last.hash == msg.hash_stop:
                    break
            return out, last if last is not None else chain.tip

        def done(r: tuple[list[Header], BlockIndexEntry | None] | None) -> None:
            if r is None or peer.id not in self._peers:
                return
            headers, sent = r
            if sent is not None:
                state.best_header_sent = sent
            peer.send(m.Headers(tuple(headers)))

        self._submit(state.peer.id, work, done)

    def _on_getblocks(self, state: _PeerState[P], msg: m.GetBlocks) -> None:
        """Answer with an ``inv`` of up to 500 blocks of the active chain after the locator's
        fork point (not including ``hash_stop``); when the limit cut it short, asking for the
        last one prompts an ``inv`` of our tip (Core's continuation block)."""
        peer = state.peer
        chain = self.chain

        def work() -> tuple[list[bytes], bytes | None]:
            fork = self._fork_in_active_chain(msg.locator)
            out: list[bytes] = []
            for height in range(fork.height + 1, chain.height + 1):
                h = chain.chain[height].hash
                if h == msg.hash_stop:
                    break
                out.append(h)
                if len(out) >= MAX_BLOCKS_TO_INV:
                    return out, h
            return out, None

        def done(r: tuple[list[bytes], bytes | None]) -> None:
            if peer.id not in self._peers:
                return
            hashes, continuation = r
            if continuation is not None:
                state.continuation = continuation
            if hashes:
                items = tuple(m.InvItem(m.InvType.MSG_BLOCK, h) for h in hashes)
                peer.send(m.Inv(items))

        self._submit(state.peer.id, work, done)

    _BLOCK_TYPES = frozenset(
        {
            m.InvType.MSG_BLOCK,
            m.InvType.MSG_WITNESS_BLOCK,
            m.InvType.MSG_CMPCT_BLOCK,
            m.InvType.MSG_FILTERED_BLOCK,
            m.InvType.MSG_FILTERED_WITNESS_BLOCK,
        }
    )

    def _serve_getdata(self, state: _PeerState[P]) -> None:
        """Work through the peer's ``getdata`` queue (Core's ``ProcessGetData``): blocks are
        read on the validation thread, as many at a time as the peer's send buffer has room for
        (at least one; Core stops at ``fPauseSend``), so a busy loop costs one round trip per
        batch, not per block. What we do not have gets a ``notfound``. The peer's further
        messages are held until the queue is empty."""
        if state.serving:
            return
        peer = state.peer
        if getattr(peer, "sending_paused", False):
            return  # its send buffer is full: the next tick tries again (Core's fPauseSend)
        queue = state.getdata
        take = getattr(peer, "take_queued", None)
        while take is not None and len(queue) < _GETDATA_BATCH:
            # The peer's next getdata, already here: served with this one (in order), rather
            # than one loop round trip and one read of the chain each.
            more = take(b"getdata")
            if not isinstance(more, m.GetData):
                break
            queue.extend(more.items)
        notfound: list[m.InvItem] = []
        while queue and queue[0].type not in self._BLOCK_TYPES:
            notfound.append(queue.popleft())
        if notfound and self.relay is not None:
            # Transactions from the pool, read on the validation thread; the rest of the
            # queue waits for them (answers go out in the order asked).
            state.serving = True

            def served(missing: list[m.InvItem]) -> None:
                state.serving = False
                if peer.id not in self._peers:
                    return
                if missing:
                    peer.send(m.NotFound(tuple(missing[: m.MAX_INV_SZ])))
                self._serve_getdata(state)

            self.relay.serve(peer, notfound, served)
            return
        if notfound:
            peer.send(m.NotFound(tuple(notfound[: m.MAX_INV_SZ])))
        if not queue:
            if state.paused_getdata:
                state.paused_getdata = False
                resume = getattr(peer, "resume_processing", None)
                if resume is not None:
                    resume()
            return
        batch: list[m.InvItem] = []
        while queue and queue[0].type in self._BLOCK_TYPES and len(batch) < _GETDATA_BATCH:
            batch.append(queue.popleft())
        room = getattr(peer, "send_pause", _GETDATA_BATCH_BYTES) - getattr(
            peer, "send_buffer_size", 0
        )
        budget = max(room, 1)
        state.serving = True
        chain = self.chain

        def one(item: m.InvItem) -> tuple[_RawBlock | None, bool]:
            e = chain.index.get(item.hash)
            if e is None or not e.status & HAVE_DATA:
                return None, True
            if not self._block_request_allowed(e):
                return None, False
            if item.type in (m.InvType.MSG_FILTERED_BLOCK, m.InvType.MSG_FILTERED_WITNESS_BLOCK):
                return None, False  # no bloom filters: no answer (as Core)
            block = chain.read_block(e)
            if item.type == m.InvType.MSG_BLOCK:
                return _RawBlock(block.serialize_legacy()), False
            if item.type == m.InvType.MSG_CMPCT_BLOCK and self._compact_servable(e):
                cmpct = HeaderAndShortIDs.from_block(block, random.getrandbits(64))
                return _RawCmpctBlock(cmpct.message.encode()), False
            return _RawBlock(block.serialize()), False

        def work() -> tuple[list[tuple[m.InvItem, _RawBlock | None, bool]], bytes]:
            served: list[tuple[m.InvItem, _RawBlock | None, bool]] = []
            size = 0
            for item in batch:
                try:
                    payload, missing = one(item)
                except Exception:  # this item is dropped; the rest are served
                    log.exception("peer=%d: reading a requested block failed", peer.id)
                    payload, missing = None, False
                served.append((item, payload, missing))
                size += len(payload.payload) if payload is not None else 0
                if size >= budget:
                    break
            return served, chain.tip.hash

        def done(r: tuple[list[tuple[m.InvItem, _RawBlock | None, bool]], bytes]) -> None:
            state.serving = False
            if peer.id not in self._peers:
                return
            served, tip_hash = r
            for item, payload, missing in served:
                if payload is not None:
                    peer.send(payload)
                    if item.hash == state.continuation:
                        peer.send(m.Inv((m.InvItem(m.InvType.MSG_BLOCK, tip_hash),)))
                        state.continuation = None
                elif missing:
                    peer.send(m.NotFound((item,)))
            queue.extendleft(reversed(batch[len(served) :]))  # not read: next time, in order
            self._serve_getdata(state)

        def failed() -> None:
            state.serving = False  # this batch is dropped; go on with the rest (or release)
            if peer.id in self._peers:
                self._serve_getdata(state)

        self._submit(state.peer.id, work, done, failed)
