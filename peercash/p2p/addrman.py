"""The address manager: every peer address we have heard of, kept so that no one source can fill
it, and the choice of whom to connect to next.

Layer L2 (``peercash.p2p``). Sees nothing of the chain: only ``NetAddress``/``TimedAddress`` and
network groups. Callers: the ``addr``/``addrv2``/``getaddr`` handling (``add``, ``get_addr``),
connection management (``select``, ``select_outbound``, ``attempt``, ``good``, ``connected``,
``select_tried_collision``/``resolve_collisions``), and the node, which loads ``peers.dat`` at
start and saves it periodically and at shutdown.

Error contract: nothing here raises on peer-supplied data; unroutable or unknown addresses are
ignored. ``load`` never fails on a bad file: it sets the file aside, logs why, and starts empty.
Concurrency: not thread-safe; use it from the event loop thread only.

How it works (the design is Bitcoin Core's ``AddrMan``, our own code):

* Two tables of buckets, each bucket 64 slots. *New* (1,024 buckets) holds addresses we were
  told about and have not connected to; *tried* (256 buckets) those we have connected to.
* Where an address goes is a keyed hash (double SHA-256, first 8 bytes little-endian) of a
  secret 256-bit key — chosen at random once and kept in ``peers.dat`` — and network groups
  (``peercash.p2p.netgroup``). Addresses told to us by one source group fall into at most 64 new
  buckets, so one source cannot own more than 64 × 64 of the 65,536 new slots; the addresses of
  one group fall into at most 8 tried buckets. An address can be in up to 8 new buckets (told by
  several sources), each further copy half as likely to be made as the one before.
* A new address that lands on an occupied slot replaces the occupant only if that one is
  "terrible" or has copies elsewhere. Moving an address to tried (``good``) when its tried slot is
  taken does not evict: the pair is remembered so that the node can test the old one first
  (test-before-evict, ``select_tried_collision``, then ``resolve_collisions``).
* ``select`` picks new or tried with even odds, then random slots, accepting an entry with a
  probability that falls with recent and failed attempts, and rises with every refusal.

Times are integer UNIX seconds from the injected ``clock``; randomness comes from the injected
``random.Random``, so tests are deterministic.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import struct
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Protocol

from peercash.atomicfile import write_atomic
from peercash.p2p.netaddress import NetAddress, Network, TimedAddress
from peercash.p2p.netgroup import CLASS_OF_NETWORK, net_class, network_group

log = logging.getLogger(__name__)

# --- Table geometry and policy (Core: src/addrman_impl.h and src/addrman.cpp) -----------------

NEW_BUCKET_COUNT = 1024  # ADDRMAN_NEW_BUCKET_COUNT (1 << 10)
TRIED_BUCKET_COUNT = 256  # ADDRMAN_TRIED_BUCKET_COUNT (1 << 8)
BUCKET_SIZE = 64  # ADDRMAN_BUCKET_SIZE (1 << 6)
TRIED_BUCKETS_PER_GROUP = 8  # ADDRMAN_TRIED_BUCKETS_PER_GROUP
NEW_BUCKETS_PER_SOURCE_GROUP = 64  # ADDRMAN_NEW_BUCKETS_PER_SOURCE_GROUP
NEW_BUCKETS_PER_ADDRESS = 8  # ADDRMAN_NEW_BUCKETS_PER_ADDRESS
HORIZON = 30 * 86400  # ADDRMAN_HORIZON: older than this is terrible
RETRIES = 3  # ADDRMAN_RETRIES: failed attempts, never a success, is terrible
MAX_FAILURES = 10  # ADDRMAN_MAX_FAILURES ...
MIN_FAIL = 7 * 86400  # ADDRMAN_MIN_FAIL: ... with no success in this long is terrible
REPLACEMENT = 4 * 3600  # ADDRMAN_REPLACEMENT: a tried entry this fresh is never evicted
SET_TRIED_COLLISION_SIZE = 10  # ADDRMAN_SET_TRIED_COLLISION_SIZE
TEST_WINDOW = 40 * 60  # ADDRMAN_TEST_WINDOW: evict anyway if the test took longer
CONNECTED_UPDATE_INTERVAL = 20 * 60  # Connected_(): refresh the time at most this often

# getaddr answers (Core: src/net_processing.cpp)
MAX_ADDR_TO_SEND = 1000  # MAX_ADDR_TO_SEND: at most this many in one addr message
MAX_PCT_ADDR_TO_SEND = 23  # MAX_PCT_ADDR_TO_SEND: at most this share of the table per getaddr

# select_outbound (Core: CConnman::ThreadOpenConnections in src/net.cpp)
OUTBOUND_MAX_TRIES = 100
OUTBOUND_RECENT_TRY = 10 * 60
OUTBOUND_RECENT_TRY_TRIES = 30
OUTBOUND_PORT_TRIES = 50

# The file name the node uses, in the network's data directory.
PEERS_FILE_NAME = "peers.dat"

_NEW_SLOTS = NEW_BUCKET_COUNT * BUCKET_SIZE
_TRIED_SLOTS = TRIED_BUCKET_COUNT * BUCKET_SIZE

# --- Keyed bucket placement -----------------------------------------------------------------
#
# The hash inputs are Core's, serialized as Core serializes them (a byte vector carries a
# one-byte compact-size length; the modulus of a hash is 8 bytes little-endian; a bucket number 4
# bytes little-endian), so the same key puts an address where Core would: the tests check Core's
# published values.


def _vec(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _cheap_hash(data: bytes) -> int:
    return int.from_bytes(sha256(sha256(data).digest()).digest()[:8], "little")


def service_key(addr: NetAddress) -> bytes:
    """Core's ``CService::GetKey``: the address bytes (in the 16-byte v1 form for IPv4 and Tor v2,
    as they are otherwise), then the port big-endian. Distinguishes ports."""
    if addr.network is Network.TORV3 or addr.network is Network.I2P:
        raw = addr.addr
    else:
        raw = addr.to_v1_bytes()
    return raw + addr.port.to_bytes(2, "big")


def _tried_bucket(key: bytes, skey: bytes, group: bytes) -> int:
    h1 = _cheap_hash(key + _vec(skey))
    h2 = _cheap_hash(key + _vec(group) + (h1 % TRIED_BUCKETS_PER_GROUP).to_bytes(8, "little"))
    return h2 % TRIED_BUCKET_COUNT


def _new_bucket(key: bytes, group: bytes, source_group: bytes) -> int:
    h1 = _cheap_hash(key + _vec(group) + _vec(source_group))
    h2 = _cheap_hash(
        key + _vec(source_group) + (h1 % NEW_BUCKETS_PER_SOURCE_GROUP).to_bytes(8, "little")
    )
    return h2 % NEW_BUCKET_COUNT


def _bucket_position(key: bytes, skey: bytes, is_new: bool, bucket: int) -> int:
    tag = b"N" if is_new else b"K"
    return _cheap_hash(key + tag + bucket.to_bytes(4, "little") + _vec(skey)) % BUCKET_SIZE


def tried_bucket(key: bytes, addr: NetAddress) -> int:
    """The tried bucket of ``addr``: one of 8 per group, picked by the address and port."""
    return _tried_bucket(key, service_key(addr), network_group(addr))


def new_bucket(key: bytes, addr: NetAddress, source: NetAddress) -> int:
    """The new bucket of ``addr`` as told by ``source``: one of 64 per source group, picked by the
    address's group (so all of one group from one source group share a bucket; ports do not
    matter)."""
    return _new_bucket(key, network_group(addr), network_group(source))


def bucket_position(key: bytes, addr: NetAddress, is_new: bool, bucket: int) -> int:
    """The slot of ``addr`` within ``bucket`` of the new (``is_new``) or tried table."""
    return _bucket_position(key, service_key(addr), is_new, bucket)


# --- Entries --------------------------------------------------------------------------------


class _Stats(Protocol):
    @property
    def time(self) -> int: ...
    @property
    def last_try(self) -> int: ...
    @property
    def last_success(self) -> int: ...
    @property
    def attempts(self) -> int: ...


def is_terrible(info: _Stats, now: int) -> bool:
    """Core's ``AddrInfo::IsTerrible``: bad enough to be overwritten and never gossiped.

    Never if tried in the last minute; else yes if its time is more than 10 minutes in the future,
    older than 30 days, tried 3 times without ever a success, or failed 10 times with no success
    in the last 7 days.
    """
    if now - info.last_try <= 60:
        return False
    if info.time > now + 10 * 60:
        return True
    if now - info.time > HORIZON:
        return True
    if info.last_success == 0 and info.attempts >= RETRIES:
        return True
    return now - info.last_success > MIN_FAIL and info.attempts >= MAX_FAILURES


def chance(info: _Stats, now: int) -> float:
    """Core's ``AddrInfo::GetChance``: the relative odds ``select`` accepts this entry — 1/100 if
    tried in the last 10 minutes, times 0.66 per failed attempt (counting at most 8)."""
    c = 1.0
    if max(now - info.last_try, 0) < 10 * 60:
        c *= 0.01
    return c * 0.66 ** min(info.attempts, 8)


@dataclass(slots=True, eq=False)
class _Entry:
    address: NetAddress
    time: int
    services: int
    source: NetAddress
    last_success: int = 0
    attempts: int = 0
    last_try: int = 0  # in the file too (Core keeps it in memory only)
    last_count_attempt: int = 0  # memory only
    in_tried: bool = False
    new_buckets: list[int] = field(default_factory=list)  # new buckets holding it (ref count)
    random_pos: int = -1
    # Cached hash inputs.
    skey: bytes = b""
    group: bytes = b""
    source_group: bytes = b""

    def timed(self) -> TimedAddress:
        return TimedAddress(time=self.time, services=self.services, address=self.address)


@dataclass(frozen=True, slots=True)
class AddrInfo:
    """A snapshot of one entry: what we know of an address, and where it sits.

    ``slots`` is ``((bucket, position),)`` in the tried table when ``in_tried``, else one pair per
    new bucket holding it (1 to 8), in the order the copies were made.
    """

    address: NetAddress
    time: int
    services: int
    source: NetAddress
    last_success: int
    last_try: int
    attempts: int
    in_tried: bool
    slots: tuple[tuple[int, int], ...]


class AddrManFileError(ValueError):
    """``peers.dat`` is unusable (the message says why)."""


# --- The manager ----------------------------------------------------------------------------


class AddrMan:
    """New and tried tables of peer addresses (see the module docstring)."""

    def __init__(
        self,
        key: bytes | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if key is None:
            key = secrets.token_bytes(32)
        if len(key) != 32:
            raise ValueError("addrman key must be 32 bytes")
        self._key = bytes(key)
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._entries: dict[NetAddress, _Entry] = {}
        self._random: list[_Entry] = []
        self._new: list[_Entry | None] = [None] * _NEW_SLOTS
        self._tried: list[_Entry | None] = [None] * _TRIED_SLOTS
        self._new_fill = [0] * NEW_BUCKET_COUNT
        self._tried_fill = [0] * TRIED_BUCKET_COUNT
        self._n_new = 0
        self._n_tried = 0
        self._net_counts: dict[Network, list[int]] = {}  # network -> [new, tried]
        self._last_good = 1  # "never" is strictly older than any count attempt (Core)
        self._tried_collisions: dict[_Entry, None] = {}  # an ordered set, at most 10

    # --- sizes and lookups

    @property
    def key(self) -> bytes:
        """The secret bucketing key (persisted in ``peers.dat``)."""
        return self._key

    def __len__(self) -> int:
        return len(self._random)

    def size(self, network: Network | None = None, in_new: bool | None = None) -> int:
        """How many entries, optionally of one network and/or only new (True) or tried (False)."""
        if network is None:
            if in_new is None:
                return len(self._random)
            return self._n_new if in_new else self._n_tried
        counts = self._net_counts.get(network)
        if counts is None:
            return 0
        if in_new is None:
            return counts[0] + counts[1]
        return counts[0] if in_new else counts[1]

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, NetAddress) and addr in self._entries

    def info(self, addr: NetAddress) -> AddrInfo | None:
        """What we know of ``addr`` (same address and port), or None."""
        e = self._entries.get(addr)
        return None if e is None else self._snapshot(e)

    def infos(self) -> list[AddrInfo]:
        """Every entry, in the manager's internal random order (which ``save`` keeps)."""
        return [self._snapshot(e) for e in self._random]

    def is_terrible(self, addr: NetAddress) -> bool:
        """Whether the entry for ``addr`` is terrible now (False if there is none)."""
        e = self._entries.get(addr)
        return e is not None and is_terrible(e, self._now())

    @property
    def tried_collisions(self) -> list[NetAddress]:
        """Addresses waiting to enter tried until the occupant of their slot has been tested."""
        return [e.address for e in self._tried_collisions]

    # --- updates

    def add(self, addrs: Iterable[TimedAddress], source: NetAddress, time_penalty: int = 0) -> int:
        """Add addresses that ``source`` told us about; returns how many took a new slot.

        ``time_penalty`` (seconds) is taken off the advertised times unless an address is the
        source's own; the node uses 2 hours for relayed ``addr``/``addrv2`` (Core does the same).
        Unroutable addresses are ignored.
        """
        now = self._now()
        source_group = network_group(source)
        added = 0
        for ta in addrs:
            if self._add_one(ta, source, source_group, time_penalty, now):
                added += 1
        if added:
            log.debug(
                "added %d addresses from %s: %d new, %d tried",
                added,
                source,
                self._n_new,
                self._n_tried,
            )
        return added

    def good(self, addr: NetAddress, time: int | None = None) -> bool:
        """We completed a connection to ``addr``: mark success and move it to tried.

        Returns True if it moved. If its tried slot is taken, it stays in new and the pair is
        remembered for test-before-evict (``select_tried_collision``, ``resolve_collisions``).
        The advertised time is not touched, so it does not reveal whom we are connected to.
        """
        now = self._now() if time is None else time
        self._last_good = now  # even for an unknown address: we are online (Core does the same)
        e = self._entries.get(addr)
        return e is not None and self._good(e, now, test_before_evict=True)

    def attempt(self, addr: NetAddress, count_failure: bool, time: int | None = None) -> None:
        """We tried to connect to ``addr``. ``count_failure`` counts it as a failed attempt, at
        most once between two successes anywhere (so our own outage does not ruin every entry)."""
        e = self._entries.get(addr)
        if e is None:
            return
        now = self._now() if time is None else time
        e.last_try = now
        if count_failure and e.last_count_attempt < self._last_good:
            e.last_count_attempt = now
            e.attempts += 1

    def connected(self, addr: NetAddress, time: int | None = None) -> None:
        """A connection to ``addr`` is ending or alive: refresh its time (at most every 20
        minutes, Core's granularity, so the time gossiped about it leaks little)."""
        e = self._entries.get(addr)
        if e is None:
            return
        now = self._now() if time is None else time
        if now - e.time > CONNECTED_UPDATE_INTERVAL:
            e.time = now

    def set_services(self, addr: NetAddress, services: int) -> None:
        """Record the services ``addr`` announced in its version message."""
        e = self._entries.get(addr)
        if e is not None:
            e.services = services

    # --- choosing

    def select(
        self, new_only: bool = False, networks: Collection[Network] | None = None
    ) -> tuple[TimedAddress, int] | None:
        """A random address to connect to, with its last try time; None if there is none.

        New or tried with even odds (unless only one has candidates, or ``new_only``), then
        random slots until one is accepted with probability ``chance() × 1.2^refusals``.
        ``networks`` limits the choice to those networks (None or empty: all).
        """
        if not self._random:
            return None
        nets = frozenset(networks) if networks else None
        if nets is None:
            new_count, tried_count = self._n_new, self._n_tried
        else:
            new_count = sum(self.size(n, in_new=True) for n in nets)
            tried_count = sum(self.size(n, in_new=False) for n in nets)
        if new_only and new_count == 0:
            return None
        if new_count + tried_count == 0:
            return None
        if new_only or tried_count == 0:
            search_tried = False
        elif new_count == 0:
            search_tried = True
        else:
            search_tried = self._rng.getrandbits(1) == 1
        table, fill = (
            (self._tried, self._tried_fill) if search_tried else (self._new, self._new_fill)
        )
        bucket_count = len(fill)
        now = self._now()
        rng = self._rng
        factor = 1.0
        while True:
            bucket = rng.randrange(bucket_count)
            start = rng.randrange(BUCKET_SIZE)
            if fill[bucket] == 0:
                continue
            base = bucket * BUCKET_SIZE
            found: _Entry | None = None
            for i in range(BUCKET_SIZE):
                e = table[base + (start + i) % BUCKET_SIZE]
                if e is not None and (nets is None or e.address.network in nets):
                    found = e
                    break
            if found is None:
                continue
            if rng.getrandbits(30) < factor * chance(found, now) * (1 << 30):
                return found.timed(), found.last_try
            factor *= 1.2

    def get_addr(
        self,
        max_addresses: int = 2500,
        max_pct: int = MAX_PCT_ADDR_TO_SEND,
        network: Network | None = None,
        filtered: bool = True,
    ) -> list[TimedAddress]:
        """A random sample for a ``getaddr`` answer: at most ``max_pct`` percent of all entries
        (0: no share limit) and at most ``max_addresses`` (0: no limit), skipping terrible entries
        (unless ``filtered`` is False) and, if ``network`` is given, other networks (judged as
        Core judges them: an IPv6 address carrying IPv4 counts as IPv4).

        The node answers ``getaddr`` with ``max_addresses=MAX_ADDR_TO_SEND``.
        """
        total = len(self._random)
        wanted = total
        if max_pct:
            wanted = min(max_pct, 100) * wanted // 100
        if max_addresses:
            wanted = min(wanted, max_addresses)
        want_class = None if network is None else CLASS_OF_NETWORK[network]
        now = self._now()
        out: list[TimedAddress] = []
        for n in range(total):
            if len(out) >= wanted:
                break
            self._swap_random(n, self._rng.randrange(total - n) + n)
            e = self._random[n]
            if want_class is not None and net_class(e.address) != want_class:
                continue
            if filtered and is_terrible(e, now):
                continue
            out.append(e.timed())
        return out

    # --- test-before-evict

    def select_tried_collision(self) -> tuple[TimedAddress, int] | None:
        """The tried occupant standing in the way of a random waiting collision, with its last
        try: the node makes a short (feeler) connection to it and reports ``good``/``attempt``.
        None if nothing waits."""
        if not self._tried_collisions:
            return None
        waiting = list(self._tried_collisions)
        e = waiting[self._rng.randrange(len(waiting))]
        if self._entries.get(e.address) is not e:
            del self._tried_collisions[e]
            return None
        old = self._tried[self._tried_slot(e)]
        if old is None or old is e:
            return None
        return old.timed(), old.last_try

    def resolve_collisions(self) -> None:
        """Settle waiting collisions (Core's ``ResolveCollisions``): the newcomer replaces the
        occupant if the occupant failed a test (tried over a minute ago, within 4 hours, no
        success since) or the test has not happened within 40 minutes of the newcomer's success;
        it gives up if the occupant succeeded in the last 4 hours."""
        now = self._now()
        for e in list(self._tried_collisions):
            settled = False
            if self._entries.get(e.address) is not e or e.in_tried:
                settled = True
            else:
                old = self._tried[self._tried_slot(e)]
                if old is None:
                    self._good(e, now, test_before_evict=False)
                    settled = True
                elif now - old.last_success < REPLACEMENT:
                    settled = True
                elif now - old.last_try < REPLACEMENT:
                    if now - old.last_try > 60:
                        log.debug("replacing %s with %s in tried", old.address, e.address)
                        self._good(e, now, test_before_evict=False)
                        settled = True
                elif now - e.last_success > TEST_WINDOW:
                    log.debug(
                        "unable to test; replacing %s with %s in tried anyway",
                        old.address,
                        e.address,
                    )
                    self._good(e, now, test_before_evict=False)
                    settled = True
            if settled:
                self._tried_collisions.pop(e, None)

    # --- persistence

    def serialize(self) -> bytes:
        """The ``peers.dat`` bytes (the format is described above ``FILE_MAGIC``)."""
        return _encode(self)

    @classmethod
    def deserialize(
        cls,
        data: bytes,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> AddrMan:
        """Rebuild a manager from ``serialize()`` bytes; ``AddrManFileError`` if they are bad."""
        return _decode(data, rng, clock)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``peers.dat`` atomically: a temporary file in the same directory, fsynced, then
        renamed over ``path`` (and the directory fsynced), so a crash leaves the old or the new
        file, never a torn one. Raises ``OSError`` if the directory cannot be written."""
        write_atomic(Path(path), self.serialize())

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> AddrMan:
        """The manager saved at ``path``; a fresh empty one if there is no file; and if the file
        is unreadable or corrupt, a fresh one after moving the file aside (``peers.dat.bad``, or
        ``.bad.1``, ``.bad.2``… so that nothing is overwritten) with a warning saying why."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return cls(rng=rng, clock=clock)
        except OSError as exc:
            log.warning("cannot read %s (%s); starting with an empty address book", p, exc)
            return cls(rng=rng, clock=clock)
        try:
            am = _decode(data, rng, clock)
        except (ValueError, struct.error) as exc:  # AddrManFileError, or a bug: never fatal
            aside = _set_aside(p)
            where = f"moved to {aside.name}" if aside is not None else "could not be moved aside"
            log.warning(
                "%s is corrupt (%s); %s, starting with an empty address book", p, exc, where
            )
            return cls(rng=rng, clock=clock)
        log.debug(
            "loaded %d addresses from %s (%d new, %d tried)", len(am), p, am._n_new, am._n_tried
        )
        return am

    # --- consistency

    def check(self) -> None:
        """Verify every internal invariant (Core's ``CheckAddrman``); ``AssertionError`` if one
        fails. For tests and after loading; O(table size)."""
        problem = self._find_inconsistency()
        if problem is not None:
            raise AssertionError(f"addrman inconsistent: {problem}")

    # --- internals

    def _now(self) -> int:
        return int(self._clock())

    def _snapshot(self, e: _Entry) -> AddrInfo:
        if e.in_tried:
            slot = self._tried_slot(e)
            slots: tuple[tuple[int, int], ...] = (divmod(slot, BUCKET_SIZE),)
        else:
            slots = tuple((b, self._new_position(e, b)) for b in e.new_buckets)
        return AddrInfo(
            address=e.address,
            time=e.time,
            services=e.services,
            source=e.source,
            last_success=e.last_success,
            last_try=e.last_try,
            attempts=e.attempts,
            in_tried=e.in_tried,
            slots=slots,
        )

    def _make_entry(
        self, ta: TimedAddress, source: NetAddress, source_group: bytes | None = None
    ) -> _Entry:
        a = ta.address
        return _Entry(
            address=a,
            time=ta.time,
            services=ta.services,
            source=source,
            skey=service_key(a),
            group=network_group(a),
            source_group=network_group(source) if source_group is None else source_group,
        )

    def _counts(self, network: Network) -> list[int]:
        c = self._net_counts.get(network)
        if c is None:
            c = self._net_counts[network] = [0, 0]
        return c

    def _register(self, e: _Entry) -> None:
        self._entries[e.address] = e
        e.random_pos = len(self._random)
        self._random.append(e)

    def _insert(self, e: _Entry) -> None:
        """Register a new-table entry (not yet in any bucket)."""
        self._register(e)
        self._n_new += 1
        self._counts(e.address.network)[0] += 1

    def _delete(self, e: _Entry) -> None:
        """Forget an entry that is in no bucket of either table."""
        assert not e.in_tried and not e.new_buckets
        self._swap_random(e.random_pos, len(self._random) - 1)
        self._random.pop()
        del self._entries[e.address]
        self._n_new -= 1
        self._counts(e.address.network)[0] -= 1

    def _swap_random(self, i: int, j: int) -> None:
        if i == j:
            return
        r = self._random
        r[i], r[j] = r[j], r[i]
        r[i].random_pos = i
        r[j].random_pos = j

    def _new_position(self, e: _Entry, bucket: int) -> int:
        return _bucket_position(self._key, e.skey, True, bucket)

    def _tried_slot(self, e: _Entry) -> int:
        bucket = _tried_bucket(self._key, e.skey, e.group)
        return bucket * BUCKET_SIZE + _bucket_position(self._key, e.skey, False, bucket)

    def _put_new(self, e: _Entry, bucket: int, pos: int) -> None:
        self._new[bucket * BUCKET_SIZE + pos] = e
        self._new_fill[bucket] += 1
        e.new_buckets.append(bucket)

    def _clear_new(self, bucket: int, pos: int) -> None:
        """Empty a new slot; its occupant is forgotten if that was its last copy."""
        slot = bucket * BUCKET_SIZE + pos
        e = self._new[slot]
        if e is None:
            return
        self._new[slot] = None
        self._new_fill[bucket] -= 1
        e.new_buckets.remove(bucket)
        if not e.new_buckets:
            self._delete(e)

    def _add_one(
        self, ta: TimedAddress, source: NetAddress, source_group: bytes, penalty: int, now: int
    ) -> bool:
        addr = ta.address
        if not addr.is_routable():
            return False
        if addr.network == source.network and addr.addr == source.addr:
            penalty = 0  # a peer announcing itself (any port)
        e = self._entries.get(addr)
        if e is not None:
            # Refresh the time now and then: hourly for addresses seen in the last day.
            interval = 3600 if now - ta.time < 86400 else 86400
            if e.time < ta.time - interval - penalty:
                e.time = max(0, ta.time - penalty)
            e.services |= ta.services
            if ta.time <= e.time:
                return False  # nothing new
            if e.in_tried:
                return False
            refs = len(e.new_buckets)
            if refs == NEW_BUCKETS_PER_ADDRESS:
                return False
            if refs > 0 and self._rng.randrange(1 << refs) != 0:
                return False  # each further copy is half as likely as the last
        else:
            e = self._make_entry(ta, source, source_group)
            e.time = max(0, ta.time - penalty)
            self._insert(e)
        bucket = _new_bucket(self._key, e.group, source_group)
        pos = self._new_position(e, bucket)
        occupant = self._new[bucket * BUCKET_SIZE + pos]
        if occupant is e:
            return False
        take = occupant is None or (
            is_terrible(occupant, now) or (len(occupant.new_buckets) > 1 and not e.new_buckets)
        )
        if take:
            self._clear_new(bucket, pos)
            self._put_new(e, bucket, pos)
        elif not e.new_buckets:
            self._delete(e)
        return take

    def _good(self, e: _Entry, now: int, test_before_evict: bool) -> bool:
        self._last_good = now
        e.last_success = now
        e.last_try = now
        e.attempts = 0
        if e.in_tried or not e.new_buckets:
            return False
        slot = self._tried_slot(e)
        occupant = self._tried[slot]
        if test_before_evict and occupant is not None:
            if len(self._tried_collisions) < SET_TRIED_COLLISION_SIZE:
                self._tried_collisions[e] = None
            log.debug(
                "collision with %s moving %s to tried (%d waiting)",
                occupant.address,
                e.address,
                len(self._tried_collisions),
            )
            return False
        self._make_tried(e, slot)
        return True

    def _make_tried(self, e: _Entry, slot: int) -> None:
        for bucket in e.new_buckets:
            pos = self._new_position(e, bucket)
            self._new[bucket * BUCKET_SIZE + pos] = None
            self._new_fill[bucket] -= 1
        e.new_buckets.clear()
        self._n_new -= 1
        self._counts(e.address.network)[0] -= 1
        bucket = slot // BUCKET_SIZE
        old = self._tried[slot]
        if old is not None:
            # Evict the occupant back to new (into its primary source's bucket).
            old.in_tried = False
            self._tried[slot] = None
            self._tried_fill[bucket] -= 1
            self._n_tried -= 1
            self._counts(old.address.network)[1] -= 1
            ub = _new_bucket(self._key, old.group, old.source_group)
            up = self._new_position(old, ub)
            self._clear_new(ub, up)
            self._put_new(old, ub, up)
            self._n_new += 1
            self._counts(old.address.network)[0] += 1
            log.debug("moved %s from tried to new[%d][%d]", old.address, ub, up)
        self._tried[slot] = e
        self._tried_fill[bucket] += 1
        self._n_tried += 1
        self._counts(e.address.network)[1] += 1
        e.in_tried = True

    def _find_inconsistency(self) -> str | None:
        if len(self._random) != self._n_new + self._n_tried:
            return "size differs from new + tried"
        if len(self._entries) != len(self._random):
            return "index and random order differ in size"
        new_refs: dict[int, int] = {}
        n_new = n_tried = 0
        counts: dict[Network, list[int]] = {}
        for i, e in enumerate(self._random):
            if e.random_pos != i:
                return f"random position of {e.address}"
            if self._entries.get(e.address) is not e:
                return f"index entry of {e.address}"
            c = counts.setdefault(e.address.network, [0, 0])
            if e.in_tried:
                if e.new_buckets:
                    return f"{e.address} is in both tables"
                if e.last_success == 0:
                    return f"{e.address} is tried without a success"
                if self._tried[self._tried_slot(e)] is not e:
                    return f"{e.address} is not at its tried slot"
                n_tried += 1
                c[1] += 1
            else:
                if not 1 <= len(e.new_buckets) <= NEW_BUCKETS_PER_ADDRESS:
                    return f"{e.address} has {len(e.new_buckets)} new copies"
                if len(set(e.new_buckets)) != len(e.new_buckets):
                    return f"{e.address} is twice in one bucket"
                for b in e.new_buckets:
                    if self._new[b * BUCKET_SIZE + self._new_position(e, b)] is not e:
                        return f"{e.address} is not at its slot in new bucket {b}"
                new_refs[id(e)] = len(e.new_buckets)
                n_new += 1
                c[0] += 1
        if (n_new, n_tried) != (self._n_new, self._n_tried):
            return "new/tried counts"
        if {n: c for n, c in self._net_counts.items() if c != [0, 0]} != counts:
            return "per-network counts"
        for slot, held in enumerate(self._new):
            if held is not None:
                left = new_refs.get(id(held), 0)
                if left == 0:
                    return f"stray entry in new slot {slot}"
                new_refs[id(held)] = left - 1
        if any(new_refs.values()):
            return "new copies not all in the table"
        for bucket in range(NEW_BUCKET_COUNT):
            base = bucket * BUCKET_SIZE
            filled = sum(1 for x in self._new[base : base + BUCKET_SIZE] if x is not None)
            if filled != self._new_fill[bucket]:
                return f"fill count of new bucket {bucket}"
        tried_seen = 0
        for bucket in range(TRIED_BUCKET_COUNT):
            base = bucket * BUCKET_SIZE
            filled = 0
            for x in self._tried[base : base + BUCKET_SIZE]:
                if x is not None:
                    if not x.in_tried or self._entries.get(x.address) is not x:
                        return f"stray entry in tried bucket {bucket}"
                    filled += 1
            if filled != self._tried_fill[bucket]:
                return f"fill count of tried bucket {bucket}"
            tried_seen += filled
        if tried_seen != self._n_tried:
            return "tried table holds a different number of entries"
        return None


# --- File format ------------------------------------------------------------------------------
#
# peers.dat, all integers little-endian unless said otherwise:
#
#   magic      8 bytes   b"PCADDRMN"
#   version    u8        1
#   key        32 bytes  the bucketing secret
#   count      u32       number of entries (at most the slots of both tables)
#   entries    count ×   in the manager's random order:
#     address    network u8, length u8, bytes, port u16 big-endian   (BIP155 ids and lengths)
#     time       i64     advertised time
#     services   u64
#     source     as address
#     last_success i64, last_try i64, attempts u32
#     table      u8      0 new, 1 tried
#     (new only) copies u8 (1..8), then copies × new bucket u16 — the slot in each bucket, and a
#                tried entry's bucket and slot, follow from the key and the address
#   checksum   32 bytes  SHA-256 of every byte before it
#
# Loading checks the magic, then the version, then the checksum, then the structure; any
# failure makes the whole file corrupt. Entries whose address is no longer valid, or whose slot
# is taken by an earlier entry, are dropped (as Core does).

FILE_MAGIC = b"PCADDRMN"
FILE_VERSION = 1

_STATS = struct.Struct("<qQ")  # time, services
_HISTORY = struct.Struct("<qqI")  # last_success, last_try, attempts
_HEADER_LEN = len(FILE_MAGIC) + 1 + 32 + 4
_CHECKSUM_LEN = 32


def _encode_address(a: NetAddress) -> bytes:
    return bytes([int(a.network), len(a.addr)]) + a.addr + a.port.to_bytes(2, "big")


def _encode(am: AddrMan) -> bytes:
    parts = [FILE_MAGIC, bytes([FILE_VERSION]), am._key, struct.pack("<I", len(am._random))]
    for e in am._random:
        parts.append(_encode_address(e.address))
        parts.append(_STATS.pack(e.time, e.services))
        parts.append(_encode_address(e.source))
        parts.append(_HISTORY.pack(e.last_success, e.last_try, e.attempts))
        if e.in_tried:
            parts.append(b"\x01")
        else:
            parts.append(bytes([0, len(e.new_buckets)]))
            parts.append(struct.pack(f"<{len(e.new_buckets)}H", *e.new_buckets))
    body = b"".join(parts)
    return body + sha256(body).digest()


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise AddrManFileError("truncated entry data")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def unpack(self, s: struct.Struct) -> tuple[int, ...]:
        return s.unpack(self.take(s.size))

    def address(self) -> NetAddress:
        net_id, length = self.u8(), self.u8()
        raw = self.take(length)
        port = int.from_bytes(self.take(2), "big")
        try:
            return NetAddress(Network(net_id), raw, port)
        except ValueError as exc:
            raise AddrManFileError(f"bad address: {exc}") from None


def _decode(data: bytes, rng: random.Random | None, clock: Callable[[], float]) -> AddrMan:
    if not data:
        raise AddrManFileError("file is empty")
    if len(data) < len(FILE_MAGIC) or data[: len(FILE_MAGIC)] != FILE_MAGIC:
        raise AddrManFileError("wrong magic (not a peercash address file)")
    if len(data) < len(FILE_MAGIC) + 1:
        raise AddrManFileError("truncated header")
    version = data[len(FILE_MAGIC)]
    if version != FILE_VERSION:
        raise AddrManFileError(
            f"unsupported version {version} (this software reads {FILE_VERSION})"
        )
    if len(data) < _HEADER_LEN + _CHECKSUM_LEN:
        raise AddrManFileError(f"truncated ({len(data)} bytes)")
    body_end = len(data) - _CHECKSUM_LEN
    if sha256(data[:body_end]).digest() != data[body_end:]:
        raise AddrManFileError("checksum mismatch")
    key = data[len(FILE_MAGIC) + 1 : len(FILE_MAGIC) + 33]
    (count,) = struct.unpack_from("<I", data, len(FILE_MAGIC) + 33)
    if count > _NEW_SLOTS + _TRIED_SLOTS:
        raise AddrManFileError(f"{count} entries is more than the tables hold")
    am = AddrMan(key=key, rng=rng, clock=clock)
    try:
        _decode_entries(am, _Reader(data, _HEADER_LEN, body_end), count)
    except AddrManFileError:
        raise
    except (ValueError, struct.error) as exc:
        raise AddrManFileError(f"bad entry: {exc}") from None
    problem = am._find_inconsistency()
    if problem is not None:  # pragma: no cover - the checks above should make this impossible
        raise AddrManFileError(f"inconsistent: {problem}")
    return am


def _decode_entries(am: AddrMan, r: _Reader, count: int) -> None:
    lost = 0
    seen: set[NetAddress] = set()
    for _ in range(count):
        addr = r.address()
        t, services = r.unpack(_STATS)
        source = r.address()
        last_success, last_try, attempts = r.unpack(_HISTORY)
        table = r.u8()
        if table == 0:
            copies = r.u8()
            if not 1 <= copies <= NEW_BUCKETS_PER_ADDRESS:
                raise AddrManFileError(f"new entry with {copies} copies")
            buckets = struct.unpack(f"<{copies}H", r.take(2 * copies))
            if any(b >= NEW_BUCKET_COUNT for b in buckets) or len(set(buckets)) != copies:
                raise AddrManFileError("bad new bucket list")
        elif table == 1:
            buckets = ()
        else:
            raise AddrManFileError(f"unknown table {table}")
        if addr in seen:
            raise AddrManFileError(f"{addr} appears twice")
        seen.add(addr)
        if not addr.is_valid():
            lost += 1
            continue
        e = am._make_entry(TimedAddress(time=t, services=services, address=addr), source)
        e.last_success, e.last_try, e.attempts = last_success, last_try, attempts
        if table == 1:
            slot = am._tried_slot(e)
            if am._tried[slot] is not None or last_success == 0:
                lost += 1
                continue
            am._register(e)
            am._tried[slot] = e
            am._tried_fill[slot // BUCKET_SIZE] += 1
            am._n_tried += 1
            am._counts(addr.network)[1] += 1
            e.in_tried = True
        else:
            free = [b for b in buckets if am._new[b * BUCKET_SIZE + am._new_position(e, b)] is None]
            if not free:
                lost += 1
                continue
            am._insert(e)
            for b in free:
                am._put_new(e, b, am._new_position(e, b))
    if r.pos != r.end:
        raise AddrManFileError(f"{r.end - r.pos} bytes after the last entry")
    if lost:
        log.info("addrman dropped %d addresses from the file (invalid or colliding)", lost)


def _set_aside(path: Path) -> Path | None:
    """Rename a bad file to ``<name>.bad`` (or ``.bad.N``, never overwriting); None if that fails."""
    for n in range(1000):
        aside = path.with_name(path.name + (".bad" if n == 0 else f".bad.{n}"))
        if aside.exists():
            continue
        try:
            os.replace(path, aside)
        except OSError as exc:
            log.warning("cannot move %s aside: %s", path, exc)
            return None
        return aside
    return None


# --- Outbound choice --------------------------------------------------------------------------


def select_outbound(
    addrman: AddrMan,
    connected_groups: Collection[bytes],
    *,
    networks: Collection[Network] | None = None,
    default_port: int | None = None,
    required_services: int = 0,
    own_addresses: Collection[NetAddress] = (),
    now: int | None = None,
    max_tries: int = OUTBOUND_MAX_TRIES,
) -> TimedAddress | None:
    """An address for a new outbound connection, as Core's ``ThreadOpenConnections`` picks one:
    up to 100 ``select`` draws, skipping an address whose network group is already among our
    outbound peers (``connected_groups``, built with ``netgroup.outbound_group`` so Tor, I2P and
    CJDNS peers occupy none), one tried in the last 10 minutes (for the first 29 draws), one
    without ``required_services``, and one on a port other than ``default_port`` when that is
    given (for the first 49 draws). None if nothing qualifies, or a draw is invalid, loopback or
    one of ``own_addresses`` (then, as in Core, the caller waits and tries again later).

    Left to the caller (connection management), as in Core: anchors, feelers (which use
    ``select_tried_collision`` and ``select(new_only=True)``), addresses we are already connected
    to, and ``addnode`` peers.
    """
    when = addrman._now() if now is None else now
    groups = (
        connected_groups
        if isinstance(connected_groups, (set, frozenset))
        else set(connected_groups)
    )
    for tries in range(1, max_tries + 1):
        picked = addrman.select(False, networks)
        if picked is None:
            return None
        ta, last_try = picked
        a = ta.address
        if network_group(a) in groups:
            continue
        if not a.is_valid() or a.is_local() or a in own_addresses:
            return None
        if when - last_try < OUTBOUND_RECENT_TRY and tries < OUTBOUND_RECENT_TRY_TRIES:
            continue
        if ta.services & required_services != required_services:
            continue
        if default_port is not None and a.port != default_port and tries < OUTBOUND_PORT_TRIES:
            continue
        return ta
    return None
