"""Which block to fetch from which peer: the moving download window, per-peer in-flight limits,
stall detection, the block download timeout.

Layer 2. Pure scheduling logic: it knows blocks only as nodes of a header tree (a hash, a height,
a parent, chain work and whether the block's data is already stored, read through functions the
caller passes in) and peers only by id; time comes from an injected clock. It sends nothing: the
sync manager asks it what to request, tells it what arrived, and acts on what it reports (a peer
to disconnect). Not thread-safe: one instance belongs to the event loop.

The algorithm is Core's (src/net_processing.cpp, ``FindNextBlocksToDownload``/``FindNextBlocks``,
``BlockRequested``/``RemoveBlockRequest`` and the stall and timeout checks of ``SendMessages``):

* For each peer we keep the best block it is known to have and the last block we both have
  (``last_common``). Blocks are fetched from ``last_common`` up the peer's chain, at most
  :data:`BLOCK_DOWNLOAD_WINDOW` beyond it, at most :data:`MAX_BLOCKS_IN_TRANSIT_PER_PEER` at a
  time from one peer, and each block from one peer at a time.
* When a peer could fetch nothing, but could if the window were one block larger, the peer
  holding the first in-flight block of the window is *stalling* us; if it still stalls after
  the stalling timeout (:data:`BLOCK_STALLING_TIMEOUT_DEFAULT`, doubled at every such disconnect
  up to :data:`BLOCK_STALLING_TIMEOUT_MAX`, decaying back by 15% a connected block), it is to be
  disconnected, and its blocks are then fetched from others.
* A peer whose oldest in-flight block has been on its way longer than
  ``block_interval * (1 + 0.5 * other downloading peers)`` is to be disconnected as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

__all__ = [
    "BLOCK_DOWNLOAD_TIMEOUT_BASE",
    "BLOCK_DOWNLOAD_TIMEOUT_PER_PEER",
    "BLOCK_DOWNLOAD_WINDOW",
    "BLOCK_STALLING_TIMEOUT_DEFAULT",
    "BLOCK_STALLING_TIMEOUT_MAX",
    "MAX_BLOCKS_IN_TRANSIT_PER_PEER",
    "NODE_NETWORK_LIMITED_MIN_BLOCKS",
    "BlockDownloader",
    "BlockNode",
    "HeaderChain",
]

BLOCK_DOWNLOAD_WINDOW = 1024
"""How far beyond the last block we share with a peer we fetch (``static const unsigned int
BLOCK_DOWNLOAD_WINDOW = 1024;``)."""
MAX_BLOCKS_IN_TRANSIT_PER_PEER = 16
"""Blocks requested from one peer at a time (``static const int MAX_BLOCKS_IN_TRANSIT_PER_PEER =
16;``)."""
BLOCK_STALLING_TIMEOUT_DEFAULT = 2.0
"""Seconds a peer may stall the window before it is disconnected (``BLOCK_STALLING_TIMEOUT_DEFAULT
{2s}``)."""
BLOCK_STALLING_TIMEOUT_MAX = 64.0
"""The stalling timeout doubles at each stall disconnect up to this (``BLOCK_STALLING_TIMEOUT_MAX
{64s}``)."""
BLOCK_DOWNLOAD_TIMEOUT_BASE = 1.0
"""Block download timeout, in block intervals (``BLOCK_DOWNLOAD_TIMEOUT_BASE = 1``)."""
BLOCK_DOWNLOAD_TIMEOUT_PER_PEER = 0.5
"""Added per other peer we download from (``BLOCK_DOWNLOAD_TIMEOUT_PER_PEER = 0.5``)."""
NODE_NETWORK_LIMITED_MIN_BLOCKS = 288
"""A NODE_NETWORK_LIMITED peer serves at least the last 288 blocks (BIP159; Core's
``NODE_NETWORK_LIMITED_MIN_BLOCKS``)."""
_STALLING_DECAY = 0.85  # Core's BlockConnected: the doubled timeout shrinks back 15% a block
_LOOKAHEAD = 128  # FindNextBlocks reads this many successors at a time


class BlockNode(Protocol):
    """What the scheduler reads of a header directly; the rest through the caller's functions."""

    @property
    def hash(self) -> bytes: ...

    @property
    def height(self) -> int: ...


N = TypeVar("N", bound=BlockNode)


class HeaderChain(Generic[N]):
    """A chain of headers indexed by height (the best header chain, mirrored), so that the
    ancestor of a block on it is found at once; ``ancestor`` walks parents off it."""

    __slots__ = ("_nodes", "_parent")

    def __init__(self, parent: Callable[[N], N | None]) -> None:
        self._parent = parent
        self._nodes: list[N] = []

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def tip(self) -> N | None:
        return self._nodes[-1] if self._nodes else None

    def set_tip(self, node: N) -> None:
        """Make ``node``'s chain this one: walk back from it to where it meets the chain."""
        nodes = self._nodes
        path: list[N] = []
        n: N | None = node
        while n is not None and not (n.height < len(nodes) and nodes[n.height] is n):
            path.append(n)
            n = self._parent(n)
        keep = 0 if n is None else n.height + 1
        del nodes[keep:]
        nodes.extend(reversed(path))

    def contains(self, node: N) -> bool:
        h = node.height
        return 0 <= h < len(self._nodes) and self._nodes[h] is node

    def at(self, height: int) -> N | None:
        return self._nodes[height] if 0 <= height < len(self._nodes) else None

    def ancestor(self, node: N, height: int) -> N:
        """The ancestor of ``node`` at ``height`` (``node`` itself at its own height)."""
        if height > node.height or height < 0:
            raise ValueError(f"no ancestor at height {height} of a block at {node.height}")
        n = node
        while n.height > height and not self.contains(n):
            p = self._parent(n)
            assert p is not None, "a block above the genesis block has a parent"
            n = p
        return self._nodes[height] if self.contains(n) else n

    def last_common_ancestor(self, a: N, b: N) -> N:
        """Core's ``LastCommonAncestor``."""
        if a.height > b.height:
            a = self.ancestor(a, b.height)
        elif b.height > a.height:
            b = self.ancestor(b, a.height)
        while a is not b:
            if self.contains(a) and self.contains(b):
                # Both on the chain at the same height but not the same: cannot happen.
                raise AssertionError("two nodes at one height of the chain")
            pa, pb = self._parent(a), self._parent(b)
            assert pa is not None and pb is not None, "every chain starts at the genesis block"
            a, b = pa, pb
        return a


@dataclass(slots=True)
class _PeerDownload(Generic[N]):
    serves_witness: bool
    limited: bool
    best_known: N | None = None
    last_unknown: bytes | None = None
    last_common: N | None = None
    in_flight: dict[bytes, N] = field(default_factory=dict)  # request order
    downloading_since: float = 0.0
    stalling_since: float = 0.0


class BlockDownloader(Generic[N]):
    """The block download schedule over every peer we may fetch blocks from.

    ``parent``/``work``/``has_data``/``invalid`` read a header's parent, chain work, whether its
    block is stored and whether it is known invalid; ``busy(node)`` says the block arrived and
    waits to be validated (it is neither fetched again nor yet counted as stored: Core validates
    a block as it reads it, we on another thread); ``needs_witness(node)`` says whether the
    block must come with its witness (segwit active at it), which peers without NODE_WITNESS
    cannot give. ``clock`` returns seconds (monotonic). ``block_interval`` is the network's
    target spacing, for the download timeout.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        parent: Callable[[N], N | None],
        work: Callable[[N], int],
        has_data: Callable[[N], bool],
        invalid: Callable[[N], bool] = lambda n: False,
        busy: Callable[[N], bool] = lambda n: False,
        needs_witness: Callable[[N], bool] = lambda n: False,
        block_interval: float = 600.0,
        window: int = BLOCK_DOWNLOAD_WINDOW,
        max_per_peer: int = MAX_BLOCKS_IN_TRANSIT_PER_PEER,
        stalling_timeout: float = BLOCK_STALLING_TIMEOUT_DEFAULT,
        stalling_timeout_max: float = BLOCK_STALLING_TIMEOUT_MAX,
    ) -> None:
        self._clock = clock
        self._parent = parent
        self._work = work
        self._has_data = has_data
        self._invalid = invalid
        self._busy = busy
        self._needs_witness = needs_witness
        self.block_interval = block_interval
        self.window = window
        self.max_per_peer = max_per_peer
        self.stalling_timeout_default = stalling_timeout
        self.stalling_timeout_max = stalling_timeout_max
        self.stalling_timeout = stalling_timeout
        self.chain: HeaderChain[N] = HeaderChain(parent)
        """The best header chain, for fast ancestor look-ups: keep it current with ``set_tip``."""
        self._peers: dict[int, _PeerDownload[N]] = {}
        self._in_flight: dict[bytes, int] = {}  # block hash -> the peer it is requested from
        self.peers_downloading_from = 0

    # -- peers -------------------------------------------------------------------------------

    def add_peer(self, peer_id: int, *, serves_witness: bool = True, limited: bool = False) -> None:
        """``limited``: the peer serves only recent blocks (NODE_NETWORK_LIMITED without
        NODE_NETWORK)."""
        self._peers[peer_id] = _PeerDownload(serves_witness, limited)

    def remove_peer(self, peer_id: int) -> list[N]:
        """Forget a peer; returns the blocks that were in flight from it (free to be fetched
        from another peer now)."""
        state = self._peers.pop(peer_id, None)
        if state is None:
            return []
        for h in state.in_flight:
            if self._in_flight.get(h) == peer_id:
                del self._in_flight[h]
        if state.in_flight:
            self.peers_downloading_from -= 1
        return list(state.in_flight.values())

    def __contains__(self, peer_id: int) -> bool:
        return peer_id in self._peers

    def best_known(self, peer_id: int) -> N | None:
        state = self._peers.get(peer_id)
        return state.best_known if state is not None else None

    def last_common(self, peer_id: int) -> N | None:
        state = self._peers.get(peer_id)
        return state.last_common if state is not None else None

    def last_unknown(self, peer_id: int) -> bytes | None:
        """The last block hash the peer announced that we did not know then."""
        state = self._peers.get(peer_id)
        return state.last_unknown if state is not None else None

    def peer_has(self, peer_id: int, node: N) -> bool:
        """Whether the peer's best known block has ``node`` as an ancestor (or is it)."""
        best = self.best_known(peer_id)
        return (
            best is not None
            and best.height >= node.height
            and (self.chain.ancestor(best, node.height) is node)
        )

    def block_available(self, peer_id: int, node: N | None, block_hash: bytes) -> None:
        """The peer has the block ``block_hash`` (Core's ``UpdateBlockAvailability``):
        ``node`` is its header when we know it, else None (then it is remembered by hash until
        :meth:`resolve_unknown` finds it)."""
        state = self._peers.get(peer_id)
        if state is None:
            return
        if node is None:
            state.last_unknown = block_hash
            return
        best = state.best_known
        if best is None or self._work(node) >= self._work(best):
            state.best_known = node
        if state.last_unknown == node.hash:
            state.last_unknown = None

    def resolve_unknown(self, peer_id: int, node: N) -> None:
        """The peer's last unknown block is now known as ``node`` (Core's
        ``ProcessBlockAvailability``)."""
        state = self._peers.get(peer_id)
        if state is None or state.last_unknown != node.hash:
            return
        state.last_unknown = None
        if state.best_known is None or self._work(node) >= self._work(state.best_known):
            state.best_known = node

    # -- in flight -------------------------------------------------------------------------------

    def is_requested(self, block_hash: bytes) -> bool:
        return block_hash in self._in_flight

    def requested_from(self, block_hash: bytes) -> int | None:
        return self._in_flight.get(block_hash)

    def in_flight(self, peer_id: int) -> list[N]:
        state = self._peers.get(peer_id)
        return list(state.in_flight.values()) if state is not None else []

    def in_flight_count(self, peer_id: int | None = None) -> int:
        if peer_id is None:
            return len(self._in_flight)
        state = self._peers.get(peer_id)
        return len(state.in_flight) if state is not None else 0

    def mark_requested(self, peer_id: int, node: N) -> bool:
        """Record that ``node``'s block was asked of the peer (Core's ``BlockRequested``);
        False when it already was, from that peer."""
        state = self._peers[peer_id]
        h = node.hash
        holder = self._in_flight.get(h)
        if holder == peer_id:
            return False
        if holder is not None:
            self.received(h, holder)  # one peer per block
        if not state.in_flight:
            state.downloading_since = self._clock()
            self.peers_downloading_from += 1
        state.in_flight[h] = node
        self._in_flight[h] = peer_id
        return True

    def received(self, block_hash: bytes, from_peer: int | None = None) -> bool:
        """The block arrived (or is no longer expected from ``from_peer``): Core's
        ``RemoveBlockRequest``. With ``from_peer``, only that peer's request is dropped.
        Returns whether a request was dropped."""
        holder = self._in_flight.get(block_hash)
        if holder is None or (from_peer is not None and holder != from_peer):
            return False
        del self._in_flight[block_hash]
        state = self._peers[holder]
        first = next(iter(state.in_flight))
        del state.in_flight[block_hash]
        if first == block_hash:
            # The oldest request was answered: time the next one from now.
            state.downloading_since = max(state.downloading_since, self._clock())
        if not state.in_flight:
            self.peers_downloading_from -= 1
        state.stalling_since = 0.0
        return True

    # -- what to fetch ---------------------------------------------------------------------------

    def next_blocks(
        self, peer_id: int, tip: N, minimum_chain_work: int, count: int | None = None
    ) -> list[N]:
        """Up to ``count`` (default: the peer's free in-flight slots) blocks to request from the
        peer, marked as requested, in height order (Core's ``FindNextBlocksToDownload`` and
        ``BlockRequested``). ``tip`` is our active chain's tip. When the peer gets nothing
        because the window is full of another peer's requests, that peer's stall timer starts."""
        state = self._peers.get(peer_id)
        if state is None:
            return []
        if count is None:
            count = self.max_per_peer - len(state.in_flight)
        if count <= 0:
            return []
        blocks, staller = self._find(peer_id, state, tip, minimum_chain_work, count)
        for n in blocks:
            self.mark_requested(peer_id, n)
        if not state.in_flight and staller is not None:
            s = self._peers.get(staller)
            if s is not None and s.stalling_since == 0.0:
                s.stalling_since = self._clock()
        return blocks

    def _find(
        self, peer_id: int, state: _PeerDownload[N], tip: N, min_work: int, count: int
    ) -> tuple[list[N], int | None]:
        best = state.best_known
        if best is None or self._work(best) < self._work(tip) or self._work(best) < min_work:
            return [], None  # nothing interesting
        chain = self.chain
        if state.last_common is None:
            # Guess the fork: our tip's ancestor at the peer's height (wrong guesses are fixed
            # just below).
            state.last_common = chain.ancestor(tip, min(best.height, tip.height))
        state.last_common = chain.last_common_ancestor(state.last_common, best)
        if state.last_common is best:
            return [], None
        window_end = state.last_common.height + self.window
        max_height = min(best.height, window_end + 1)
        walk = state.last_common
        waiting_for: int | None = None
        blocks: list[N] = []
        # Whether ``last_common`` may still move up: only over a run of stored blocks.
        common_run = True
        while walk.height < max_height:
            n_fetch = min(max_height - walk.height, max(count - len(blocks), _LOOKAHEAD))
            top = chain.ancestor(best, walk.height + n_fetch)
            batch = list(self._up_to(top, walk.height + 1))
            walk = top
            for n in batch:
                if self._invalid(n):
                    return blocks, None  # the peer's chain is invalid
                if self._needs_witness(n) and not state.serves_witness:
                    return blocks, None
                if self._has_data(n):
                    if common_run:
                        state.last_common = n
                    continue
                common_run = False
                if self._busy(n):
                    continue
                holder = self._in_flight.get(n.hash)
                if holder is not None:
                    if waiting_for is None:
                        waiting_for = holder
                    continue
                if n.height > window_end:
                    # The end of the window: were it one larger, we would fetch this.
                    if not blocks and waiting_for != peer_id:
                        return blocks, waiting_for
                    return blocks, None
                if state.limited and best.height - n.height >= NODE_NETWORK_LIMITED_MIN_BLOCKS - 2:
                    continue
                blocks.append(n)
                if len(blocks) == count:
                    return blocks, None
        return blocks, None

    def _up_to(self, top: N, low: int) -> Iterator[N]:
        """``top`` and its ancestors down to height ``low``, lowest first."""
        path: list[N] = []
        n: N | None = top
        while n is not None and n.height >= low:
            path.append(n)
            n = self._parent(n)
        return reversed(path)

    # -- timeouts ----------------------------------------------------------------------------

    def check_peer(self, peer_id: int) -> str | None:
        """Why the peer should be disconnected now, or None (Core's checks in
        ``SendMessages``): "stalling" (it held up the window past the stalling timeout, which
        then doubles) or "timeout" (its oldest request is overdue)."""
        state = self._peers.get(peer_id)
        if state is None:
            return None
        now = self._clock()
        timeout = self.stalling_timeout
        if state.stalling_since and state.stalling_since < now - timeout:
            self.stalling_timeout = min(2 * timeout, self.stalling_timeout_max)
            return "stalling"
        if state.in_flight:
            others = self.peers_downloading_from - 1
            allowed = self.block_interval * (
                BLOCK_DOWNLOAD_TIMEOUT_BASE + BLOCK_DOWNLOAD_TIMEOUT_PER_PEER * others
            )
            if now > state.downloading_since + allowed:
                return "timeout"
        return None

    def block_connected(self) -> None:
        """A block was connected: a raised stalling timeout shrinks back toward the default."""
        if self.stalling_timeout != self.stalling_timeout_default:
            self.stalling_timeout = max(
                float(int(self.stalling_timeout * _STALLING_DECAY)), self.stalling_timeout_default
            )

    def oldest_in_flight(self, peer_id: int) -> N | None:
        state = self._peers.get(peer_id)
        if state is None or not state.in_flight:
            return None
        return next(iter(state.in_flight.values()))
