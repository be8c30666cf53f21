"""The address manager: Core's published placement values, the anti-takeover bounds, the table
moves, selection, getaddr answers, persistence and outbound choice.

Deterministic: a fixed key, a seeded ``random.Random`` and a fake clock. Where a test reproduces
one of Core's ``addrman_tests.cpp`` cases it says so; those numbers come from Core's own run and
match because our bucket hashing is Core's.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from hashlib import sha256
from pathlib import Path

import pytest

from peercash.p2p.addrman import (
    BUCKET_SIZE,
    FILE_MAGIC,
    FILE_VERSION,
    HORIZON,
    NEW_BUCKET_COUNT,
    NEW_BUCKETS_PER_ADDRESS,
    PEERS_FILE_NAME,
    TRIED_BUCKET_COUNT,
    AddrMan,
    AddrManFileError,
    bucket_position,
    chance,
    new_bucket,
    select_outbound,
    tried_bucket,
)
from peercash.p2p.netaddress import NetAddress, Network, TimedAddress
from peercash.p2p.netgroup import network_group, outbound_group

NOW = 1_700_000_000
CORE_KEY = b"\x01" + bytes(31)  # Core's deterministic key, uint256{1}
KEY_A = sha256(b"peercash addrman test key A").digest()
KEY_B = sha256(b"peercash addrman test key B").digest()


def hash_writer_key(n: int) -> bytes:
    """Core's ``(HashWriter{} << n).GetHash()`` for an int ``n``."""
    return sha256(sha256(n.to_bytes(4, "little")).digest()).digest()


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


def ip(text: str, port: int = 8333) -> NetAddress:
    return NetAddress.parse(text, port)


def ta(text: str, port: int = 8333, time: int = NOW, services: int = 1) -> TimedAddress:
    return TimedAddress(time=time, services=services, address=ip(text, port))


def make(key: bytes = KEY_A, seed: int = 1, clock: Clock | None = None) -> AddrMan:
    return AddrMan(key=key, rng=random.Random(seed), clock=clock or Clock())


def slots_of(am: AddrMan, addr: NetAddress) -> tuple[tuple[int, int], ...]:
    info = am.info(addr)
    assert info is not None
    return info.slots


def new_buckets_used(am: AddrMan) -> set[int]:
    return {b for info in am.infos() if not info.in_tried for b, _ in info.slots}


def i2p(n: int) -> NetAddress:
    return NetAddress(Network.I2P, sha256(b"i2p%d" % n).digest(), 0)


def tor(n: int) -> NetAddress:
    return NetAddress(Network.TORV3, sha256(b"tor%d" % n).digest(), 8333)


# --- placement: Core's values ---------------------------------------------------------------


def test_core_tried_bucket_values() -> None:
    # Core: caddrinfo_get_tried_bucket_legacy
    k1, k2 = hash_writer_key(1), hash_writer_key(2)
    a1, a2 = ip("250.1.1.1", 8333), ip("250.1.1.1", 9999)
    assert tried_bucket(k1, a1) == 40
    assert tried_bucket(k1, a1) != tried_bucket(k2, a1)
    assert tried_bucket(k1, a1) != tried_bucket(k1, a2)  # the port counts in tried
    same_group = {tried_bucket(k1, ip(f"250.1.1.{i}", 0)) for i in range(255)}
    assert len(same_group) == 8  # one /16: never more than 8 tried buckets
    other_groups = {tried_bucket(k1, ip(f"250.{j}.1.1", 0)) for j in range(255)}
    assert len(other_groups) == 160


def test_core_new_bucket_values() -> None:
    # Core: caddrinfo_get_new_bucket_legacy
    k1, k2 = hash_writer_key(1), hash_writer_key(2)
    a1, a2 = ip("250.1.2.1", 8333), ip("250.1.2.1", 9999)
    src = ip("250.1.2.1", 0)
    assert new_bucket(k1, a1, src) == 786
    assert new_bucket(k1, a1, src) != new_bucket(k2, a1, src)
    assert new_bucket(k1, a1, src) == new_bucket(k1, a2, src)  # ports do not matter in new
    # One group from one source group: one bucket.
    assert (
        len({new_bucket(k1, ip(f"250.1.1.{i}", 0), ip(f"250.1.1.{i}", 0)) for i in range(255)}) == 1
    )
    # Any addresses from one source group: at most 64 buckets.
    many = {
        new_bucket(k1, ip(f"{250 + j // 255}.{j % 256}.1.1", 0), ip("251.4.1.1", 0))
        for j in range(4 * 255)
    }
    assert len(many) == 63  # at most 64: two of the 64 hashes share a bucket
    # One address from many source groups: more than 64.
    spread = {new_bucket(k1, ip("250.1.1.1", 0), ip(f"250.{p}.1.1", 0)) for p in range(255)}
    assert len(spread) > 64


def test_bucket_position_depends_on_table_bucket_and_port() -> None:
    a, b = ip("8.8.8.8", 8333), ip("8.8.8.8", 8334)
    assert [bucket_position(KEY_A, a, True, n) for n in range(4)] == [21, 17, 57, 18]
    assert [bucket_position(KEY_A, a, False, n) for n in range(4)] == [58, 61, 55, 40]
    assert [bucket_position(KEY_A, b, True, n) for n in range(4)] == [57, 54, 56, 57]
    # Spread like a random function of (table, bucket, address and port): about 1 in 64 agree.
    assert len({bucket_position(KEY_A, a, True, n) for n in range(200)}) == 60
    assert (
        sum(
            bucket_position(KEY_A, a, True, n) == bucket_position(KEY_A, a, False, n)
            for n in range(256)
        )
        == 1
    )
    assert (
        sum(
            bucket_position(KEY_A, a, True, n) == bucket_position(KEY_A, b, True, n)
            for n in range(1024)
        )
        == 16
    )


def test_placement_is_stable_under_a_key_and_differs_with_another() -> None:
    addrs = [ta(f"{20 + i}.{i}.1.1") for i in range(40)]
    src = ip("5.6.7.8")

    def placed(key: bytes) -> dict[NetAddress, tuple[tuple[int, int], ...]]:
        am = make(key)
        am.add(addrs, src)
        am.check()
        return {i.address: i.slots for i in am.infos()}

    assert placed(KEY_A) == placed(KEY_A)
    a, b = placed(KEY_A), placed(KEY_B)
    common = a.keys() & b.keys()
    assert sum(1 for x in common if a[x] != b[x]) == len(common)


# --- Core's deterministic table scenarios ---------------------------------------------------


def test_core_new_collisions() -> None:
    # Core: addrman_new_collisions. The entries have Core's default time (100000000), so an
    # occupant of a colliding slot is terrible and gets replaced.
    am = make(CORE_KEY)
    src = ip("252.2.2.2", 0)
    for i in range(1, 23):
        assert am.add([ta(f"250.1.1.{i}", 0, time=100_000_000)], src) == 1
        assert len(am) == i
    assert am.add([ta("250.1.1.23", 0, time=100_000_000)], src) == 1
    assert len(am) == 22
    assert am.add([ta("250.1.1.24", 0, time=100_000_000)], src) == 1
    assert len(am) == 23
    am.check()


def test_core_tried_collisions() -> None:
    # Core: addrman_tried_collisions
    am = make(CORE_KEY)
    src = ip("252.2.2.2", 0)
    for i in range(1, 36):
        a = ip(f"250.1.1.{i}", 0)
        assert am.add([TimedAddress(100_000_000, 0, a)], src) == 1
        assert am.good(a)
    a36, a37 = ip("250.1.1.36", 0), ip("250.1.1.37", 0)
    assert am.add([TimedAddress(100_000_000, 0, a36)], src) == 1
    assert not am.good(a36)
    assert am.tried_collisions == [a36]
    assert am.add([TimedAddress(100_000_000, 0, a37)], src) == 1
    assert am.good(a37)
    assert (am.size(in_new=True), am.size(in_new=False)) == (1, 36)
    am.check()


def test_core_getaddr_counts() -> None:
    # Core: addrman_getaddr
    am = make(CORE_KEY)
    assert am.get_addr(0, 0) == []
    s1, s2 = ip("250.1.2.1", 0), ip("250.2.3.3", 0)
    am.add([ta("250.250.2.1"), ta("251.252.2.3"), ta("252.254.4.5")], s1)
    am.add([ta("250.251.2.2", 9999), ta("252.253.3.4")], s2)
    assert len(am.get_addr(0, 0)) == 5
    assert len(am.get_addr(2500, 23)) == 1  # 23% of 5, rounded down
    assert am.good(ip("250.250.2.1"))
    assert am.good(ip("250.251.2.2", 9999))
    assert len(am.get_addr(0, 0)) == 5
    assert len(am.get_addr(2500, 23)) == 1
    for i in range(1, 8 * 256):
        text = f"{i % 256}.{i >> 8}.1.23"
        am.add([ta(text, 0)], ip(text, 0))
        if i % 8 == 0:
            am.good(ip(text, 0))
    assert len(am) == 2006  # collisions and unroutable ones (0/8, 10/8, 127/8) are not kept
    assert len(am.get_addr(2500, 23)) == 2006 * 23 // 100 == 461
    am.check()


# --- bounds on what one source can do -------------------------------------------------------


def test_one_source_group_gives_an_address_one_bucket_and_many_give_at_most_8() -> None:
    am = make()
    a = ip("60.1.2.3")
    # Many sources inside one /16, with ever newer times: still one bucket.
    for i in range(50):
        am.add([TimedAddress(NOW - 10_000 + i * 100, 1, a)], ip(f"70.7.{i}.1"))
    assert len(slots_of(am, a)) == 1
    # Sources from many groups: copies are made, each half as likely, up to 8 — but only when
    # the advertised time moves on by less than the refresh interval (a refresh itself leaves
    # nothing new to record).
    spread_copies(am, a, NOW - 5000)
    assert len(slots_of(am, a)) == NEW_BUCKETS_PER_ADDRESS == 8
    assert len(am) == 1
    am.check()


def spread_copies(am: AddrMan, a: NetAddress, start: int, rounds: int = 600) -> None:
    for i in range(1, rounds):
        am.add([TimedAddress(start + i, 1, a)], ip(f"80.{i % 256}.{i >> 8}.1"))


def test_multiplicity_stays_one_when_time_does_not_increase() -> None:
    # Core: addrman_new_multiplicity (first half)
    am = make(CORE_KEY)
    addr = TimedAddress(NOW, 0, ip("253.3.3.3"))
    for i in range(1, 20):
        am.add([addr], ip(f"{i}.{i >> 8}.1.1", 0))
    assert len(slots_of(am, addr.address)) == 1


def test_one_source_16_cannot_take_over_the_new_table() -> None:
    am = make()
    attacker = ip("77.88.1.1")
    fake = [ta(f"{20 + n // 256}.{n % 256}.{n % 7}.9") for n in range(40 * 256)]
    for k in range(0, len(fake), 1000):
        am.add(fake[k : k + 1000], attacker)
    used = new_buckets_used(am)
    assert len(used) == 62  # of the 64 buckets its source group may use (two hashes coincide)
    assert len(am) <= 64 * BUCKET_SIZE
    assert len(am) == 3664
    # The attacker holds 3,664 of the 65,536 new slots. Honest addresses from another source go
    # to that source's own buckets (here none of the attacker's); 5 of the 100 collide with
    # each other.
    honest = [ta(f"150.{n}.1.1") for n in range(100)]
    assert am.add(honest, ip("99.1.1.1")) == 95
    honest_buckets = {b for i in am.infos() if i.source == ip("99.1.1.1") for b, _ in i.slots}
    assert (len(honest_buckets), len(honest_buckets & used)) == (46, 0)
    am.check()


def test_one_16_holds_at_most_8_tried_buckets() -> None:
    am = make()
    src = ip("9.9.9.9")
    addrs = [ip(f"61.5.{n // 256}.{n % 256}") for n in range(1, 2000)]
    am.add([TimedAddress(NOW, 1, a) for a in addrs], src)
    for a in addrs:
        am.good(a)
    tried_buckets = {info.slots[0][0] for info in am.infos() if info.in_tried}
    assert len(tried_buckets) == 8
    assert am.size(in_new=False) <= 8 * BUCKET_SIZE
    am.check()


# --- add -------------------------------------------------------------------------------------


def test_add_basics() -> None:
    clock = Clock()
    am = make(clock=clock)
    src = ip("1.2.3.4")
    assert am.add([ta("10.0.0.1"), ta("127.0.0.1"), ta("192.168.1.1")], src) == 0  # unroutable
    assert am.add([ta("8.8.8.8")], src) == 1
    assert am.add([ta("8.8.8.8")], src) == 0  # known, nothing new
    assert am.add([ta("8.8.8.8", 8334)], src) == 1  # another port is another entry
    assert len(am) == 2
    assert ip("8.8.8.8") in am and ip("8.8.4.4") not in am
    am.check()


def test_add_time_penalty_and_self_announcement() -> None:
    am = make()
    src = ip("1.2.3.4", 8333)
    am.add([ta("8.8.8.8", time=NOW - 100)], src, time_penalty=7200)
    assert am.info(ip("8.8.8.8")).time == NOW - 100 - 7200  # type: ignore[union-attr]
    # A peer announcing its own address (any port) is not penalised.
    am.add([ta("1.2.3.4", 18333, time=NOW - 100)], src, time_penalty=7200)
    assert am.info(ip("1.2.3.4", 18333)).time == NOW - 100  # type: ignore[union-attr]
    # The penalty never takes a time below zero.
    am.add([ta("9.9.9.9", time=5)], src, time_penalty=7200)
    assert am.info(ip("9.9.9.9")).time == 0  # type: ignore[union-attr]


def test_add_refreshes_time_hourly_and_merges_services() -> None:
    am = make()
    src = ip("1.2.3.4")
    a = ip("8.8.8.8")
    am.add([TimedAddress(NOW - 5000, 1, a)], src)
    am.add([TimedAddress(NOW - 5000 + 3000, 8, a)], src)  # under an hour newer: time kept
    info = am.info(a)
    assert info is not None and info.time == NOW - 5000 and info.services == 9
    am.add([TimedAddress(NOW - 5000 + 3601, 0, a)], src)  # over an hour newer: refreshed
    assert am.info(a).time == NOW - 1399  # type: ignore[union-attr]
    # Addresses not seen in the last day are refreshed only daily.
    old = ip("9.9.9.9")
    am.add([TimedAddress(NOW - 10 * 86400, 0, old)], src)
    am.add([TimedAddress(NOW - 10 * 86400 + 80000, 0, old)], src)
    assert am.info(old).time == NOW - 10 * 86400  # type: ignore[union-attr]
    am.add([TimedAddress(NOW - 10 * 86400 + 86401, 0, old)], src)
    assert am.info(old).time == NOW - 10 * 86400 + 86401  # type: ignore[union-attr]


# --- good, attempt, connected ----------------------------------------------------------------


def test_good_moves_to_tried() -> None:
    clock = Clock()
    am = make(clock=clock)
    src = ip("1.2.3.4")
    a = ip("8.8.8.8")
    assert not am.good(a)  # unknown
    am.add([TimedAddress(NOW - 100, 1, a), ta("8.8.4.4")], src)
    assert (am.size(in_new=True), am.size(in_new=False)) == (2, 0)
    am.attempt(a, True, time=NOW - 50)
    clock.now = NOW + 10
    assert am.good(a)
    info = am.info(a)
    assert info is not None and info.in_tried
    assert (info.last_success, info.last_try, info.attempts) == (NOW + 10, NOW + 10, 0)
    assert info.time == NOW - 100  # not touched: would leak whom we are connected to
    assert info.slots == (
        (tried_bucket(KEY_A, a), bucket_position(KEY_A, a, False, tried_bucket(KEY_A, a))),
    )
    assert (am.size(in_new=True), am.size(in_new=False)) == (1, 1)
    assert (am.size(Network.IPV4, in_new=False), am.size(Network.IPV6)) == (1, 0)
    assert not am.good(a)  # already tried
    # A tried address is not put back in new by gossip.
    assert am.add([TimedAddress(NOW + 5000, 1, a)], ip("3.3.3.3")) == 0
    assert am.info(a).in_tried  # type: ignore[union-attr]
    am.check()


def test_good_with_several_new_copies_clears_them_all() -> None:
    am = make(seed=3)
    a = ip("60.1.2.3")
    am.add([TimedAddress(NOW - 10_000, 1, a)], ip("80.0.0.1"))
    spread_copies(am, a, NOW - 10_000)
    assert len(slots_of(am, a)) == 8
    assert am.good(a)
    assert len(new_buckets_used(am)) == 0
    am.check()


def test_attempt_counts_one_failure_between_successes() -> None:
    am = make()
    src = ip("1.2.3.4")
    a, b = ip("8.8.8.8"), ip("9.9.9.9")
    am.add([ta("8.8.8.8"), ta("9.9.9.9")], src)
    am.attempt(a, True, time=NOW + 1)
    am.attempt(a, True, time=NOW + 2)  # no success anywhere since the last counted one
    am.attempt(a, False, time=NOW + 3)  # not counted, but a try
    info = am.info(a)
    assert info is not None and (info.attempts, info.last_try) == (1, NOW + 3)
    am.good(b, time=NOW + 4)
    am.attempt(a, True, time=NOW + 5)
    assert am.info(a).attempts == 2  # type: ignore[union-attr]
    am.attempt(ip("7.7.7.7"), True)  # unknown: ignored


def test_connected_refreshes_time_every_20_minutes() -> None:
    am = make()
    a = ip("8.8.8.8")
    am.add([TimedAddress(NOW - 1000, 1, a)], ip("1.2.3.4"))
    am.connected(a, time=NOW)
    assert am.info(a).time == NOW - 1000  # type: ignore[union-attr]
    am.connected(a, time=NOW - 1000 + 1201)
    assert am.info(a).time == NOW + 201  # type: ignore[union-attr]


def test_set_services() -> None:
    am = make()
    a = ip("8.8.8.8")
    am.add([TimedAddress(NOW, 1, a)], ip("1.2.3.4"))
    am.set_services(a, 0x409)
    assert am.info(a).services == 0x409  # type: ignore[union-attr]


# --- test-before-evict -----------------------------------------------------------------------


def collide(am: AddrMan, clock: Clock) -> tuple[NetAddress, NetAddress]:
    """Fill tried from one source until a good() collides; returns (newcomer, occupant)."""
    src = ip("252.2.2.2", 0)
    for i in range(1, 256):
        a = ip(f"250.1.1.{i}", 0)
        am.add([TimedAddress(NOW, 1, a)], src)
        if not am.good(a):
            info = am.info(a)
            assert info is not None and not info.in_tried
            occupant = next(
                x.address
                for x in am.infos()
                if x.in_tried
                and x.slots[0]
                == (
                    tried_bucket(am.key, a),
                    bucket_position(am.key, a, False, tried_bucket(am.key, a)),
                )
            )
            return a, occupant
    raise AssertionError("no collision")


def test_tried_collision_keeps_the_occupant_and_names_it_for_a_test() -> None:
    clock = Clock()
    am = make(CORE_KEY, clock=clock)
    newcomer, occupant = collide(am, clock)
    assert newcomer == ip("250.1.1.36", 0)
    assert am.tried_collisions == [newcomer]
    picked = am.select_tried_collision()
    assert picked is not None and picked[0].address == occupant
    # The occupant succeeded just now: the newcomer gives up and stays in new.
    am.resolve_collisions()
    assert am.tried_collisions == []
    assert not am.info(newcomer).in_tried  # type: ignore[union-attr]
    assert am.info(occupant).in_tried  # type: ignore[union-attr]
    am.check()


def test_tried_collision_occupant_failing_its_test_is_evicted() -> None:
    clock = Clock()
    am = make(CORE_KEY, clock=clock)
    newcomer, occupant = collide(am, clock)
    clock.now = NOW + 5 * 3600  # the occupant's success is now over 4 hours old
    am.attempt(occupant, True, time=clock.now - 120)  # tested 2 minutes ago, no success
    am.resolve_collisions()
    assert am.tried_collisions == []
    assert am.info(newcomer).in_tried  # type: ignore[union-attr]
    old = am.info(occupant)
    assert old is not None and not old.in_tried and len(old.slots) == 1  # back in new
    am.check()


def test_tried_collision_waits_while_the_occupant_is_being_tested() -> None:
    clock = Clock()
    am = make(CORE_KEY, clock=clock)
    newcomer, occupant = collide(am, clock)
    clock.now = NOW + 5 * 3600
    am.attempt(occupant, True, time=clock.now - 30)  # a test under way (started under 1 min ago)
    am.resolve_collisions()
    assert am.tried_collisions == [newcomer]
    clock.now += 31  # now the test has had over a minute without a success
    am.resolve_collisions()
    assert am.tried_collisions == []
    assert am.info(newcomer).in_tried  # type: ignore[union-attr]
    am.check()


def test_tried_collision_evicts_untested_occupant_after_40_minutes() -> None:
    clock = Clock()
    am = make(CORE_KEY, clock=clock)
    newcomer, occupant = collide(am, clock)
    # Five hours on, the occupant has been neither reached nor tried since; the newcomer's
    # success is 10 minutes old: give the test time.
    clock.now = NOW + 5 * 3600
    assert not am.good(newcomer, time=clock.now - 600)
    am.resolve_collisions()
    assert am.tried_collisions == [newcomer]
    clock.now += 1800  # 40 minutes since the newcomer's success: still waiting
    am.resolve_collisions()
    assert am.tried_collisions == [newcomer]
    clock.now += 1  # over 40 minutes: evict without a test
    am.resolve_collisions()
    assert am.tried_collisions == []
    assert am.info(newcomer).in_tried  # type: ignore[union-attr]
    assert not am.info(occupant).in_tried  # type: ignore[union-attr]
    am.check()


def test_tried_collisions_are_capped_at_10() -> None:
    clock = Clock()
    am = make(CORE_KEY, clock=clock)
    src = ip("252.2.2.2", 0)
    waiting = 0
    for i in range(1, 256):
        for j in range(1, 5):
            a = ip(f"250.1.{j}.{i}", 0)
            am.add([TimedAddress(NOW, 1, a)], src)
            if a in am and not am.good(a):
                waiting += 1
    assert waiting > 10
    assert len(am.tried_collisions) == 10
    am.check()


# --- select ----------------------------------------------------------------------------------


def test_select_empty_new_only_and_tried() -> None:
    # Core: addrman_select
    am = make(CORE_KEY)
    assert am.select() is None and am.select(new_only=True) is None
    a1 = ip("250.1.1.1")
    am.add([TimedAddress(NOW, 0, a1)], ip("252.2.2.2", 0))
    assert am.select(new_only=True) == (TimedAddress(NOW, 0, a1), 0)
    assert am.select()[0].address == a1  # type: ignore[index]
    assert am.good(a1)
    assert am.select(new_only=True) is None
    picked = am.select()
    assert picked is not None and picked[0].address == a1 and picked[1] == NOW
    a2, a3, a4 = ip("250.3.1.1"), ip("250.3.2.2", 9999), ip("250.3.3.3", 9999)
    am.add([TimedAddress(NOW, 0, a2)], a2)
    assert am.select(new_only=True)[0].address == a2  # type: ignore[index]
    am.add([TimedAddress(NOW, 0, a3)], a2)
    am.add([TimedAddress(NOW, 0, a4)], ip("250.4.1.1"))
    for text, port, src in (
        ("250.4.4.4", 8333, a3),
        ("250.4.5.5", 7777, a3),
        ("250.4.6.6", 8333, ip("250.1.1.3")),
    ):
        a = ip(text, port)
        am.add([TimedAddress(NOW, 0, a)], src)
        assert am.good(a)
    assert len(am) == 7
    # Select pulls from new and tried, whatever the port.
    ports = {am.select()[0].address.port for _ in range(20)}  # type: ignore[index]
    assert ports == {8333, 9999, 7777}


def test_select_returns_both_tables_with_even_odds() -> None:
    clock = Clock(NOW + 3600)
    am = make(clock=clock)
    new = [ip(f"{30 + i}.1.1.1") for i in range(20)]
    tried = [ip(f"{90 + i}.1.1.1") for i in range(20)]
    am.add([TimedAddress(NOW, 1, a) for a in new + tried], ip("5.5.5.5"))
    for a in tried:
        assert am.good(a, time=NOW)
    counts = {"new": 0, "tried": 0}
    for _ in range(400):
        picked = am.select()
        assert picked is not None
        counts["tried" if picked[0].address in tried else "new"] += 1
    assert counts == {"new": 206, "tried": 194}


def test_select_deprioritises_recent_and_failed_attempts() -> None:
    clock = Clock()
    am = make(clock=clock)
    fresh, recent, failing = ip("31.1.1.1"), ip("32.1.1.1"), ip("33.1.1.1")
    am.add([TimedAddress(NOW, 1, a) for a in (fresh, recent, failing)], ip("5.5.5.5"))
    am.attempt(recent, False, time=NOW - 60)
    for k in range(6):
        am.good(ip("34.1.1.1"), time=NOW - 5000 + 2 * k)  # let each failure count
        am.attempt(failing, True, time=NOW - 5000 + 2 * k + 1)
    assert am.info(failing).attempts == 6  # type: ignore[union-attr]
    picks: dict[NetAddress, int] = {fresh: 0, recent: 0, failing: 0}
    for _ in range(600):
        picked = am.select(new_only=True)
        assert picked is not None
        picks[picked[0].address] += 1
    assert picks == {fresh: 523, recent: 8, failing: 69}


def test_chance_values() -> None:
    class S:
        def __init__(self, last_try: int, attempts: int) -> None:
            self.time, self.last_try, self.last_success, self.attempts = NOW, last_try, 0, attempts

    assert chance(S(0, 0), NOW) == 1.0
    assert chance(S(NOW - 599, 0), NOW) == pytest.approx(0.01)
    assert chance(S(NOW - 600, 0), NOW) == 1.0
    assert chance(S(NOW + 100, 0), NOW) == pytest.approx(0.01)  # a future try counts as now
    assert chance(S(0, 3), NOW) == pytest.approx(0.66**3)
    assert chance(S(0, 20), NOW) == pytest.approx(0.66**8)  # at most 8 failures count


def test_select_by_network() -> None:
    # Core: addrman_select_by_network
    am = make(CORE_KEY)
    assert am.select(True, {Network.IPV4}) is None
    a1 = ip("250.1.1.1")
    src = ip("252.2.2.2", 0)
    am.add([TimedAddress(NOW, 0, a1)], src)
    assert am.select(True, {Network.IPV4})[0].address == a1  # type: ignore[index]
    assert am.select(False, {Network.IPV4})[0].address == a1  # type: ignore[index]
    for net in (Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS):
        assert am.select(False, {net}) is None
    p1 = NetAddress.parse("udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.i2p", 0)
    assert am.add([TimedAddress(NOW, 0, p1)], src) == 1
    assert am.select(True, {Network.I2P})[0].address == p1  # type: ignore[index]
    assert am.select(False, {Network.IPV4})[0].address == a1  # type: ignore[index]
    assert am.select(False, {Network.IPV4, Network.I2P}) is not None
    assert am.select(False, {Network.IPV6, Network.TORV3, Network.CJDNS}) is None
    assert am.good(p1)
    assert am.select(True, {Network.I2P}) is None
    assert am.select(False, {Network.I2P})[0].address == p1  # type: ignore[index]
    p2 = NetAddress.parse("c4gfnttsuwqomiygupdqqqyy5y5emnk5c73hrfvatri67prd7vyq.b32.i2p", 0)
    assert am.add([TimedAddress(NOW, 0, p2)], src) == 1
    assert am.select(True, {Network.I2P})[0].address == p2  # type: ignore[index]
    seen = {am.select(False, {Network.I2P})[0].address for _ in range(40)}  # type: ignore[index]
    assert seen == {p1, p2}
    assert (am.size(Network.I2P), am.size(Network.I2P, True), am.size(Network.I2P, False)) == (
        2,
        1,
        1,
    )


def test_select_special_only_new_has_the_network() -> None:
    # Core: addrman_select_special — the one IPv4 address is in new, so new is searched even
    # though tried has entries.
    for seed in range(5):
        am = make(KEY_B, seed=seed)
        src = ip("252.2.2.2", 0)
        p = i2p(1)
        am.add([TimedAddress(NOW, 0, p)], src)
        assert am.good(p)
        a = ip("250.1.1.3")
        am.add([TimedAddress(NOW, 0, a)], src)
        assert am.select(False, {Network.IPV4})[0].address == a  # type: ignore[index]


# --- terrible entries and getaddr ------------------------------------------------------------


def test_is_terrible_rules() -> None:
    clock = Clock()
    am = make(clock=clock)
    src = ip("1.2.3.4")

    def entry(text: str, time: int) -> NetAddress:
        a = ip(text)
        am.add([TimedAddress(time, 1, a)], src)
        assert a in am
        return a

    ok = entry("31.0.0.1", NOW - 100)
    future = entry("32.0.0.1", NOW + 601)
    near_future = entry("33.0.0.1", NOW + 600)
    too_old = entry("34.0.0.1", NOW - HORIZON - 1)
    just_in_time = entry("35.0.0.1", NOW - HORIZON)
    assert [am.is_terrible(a) for a in (ok, future, near_future, too_old, just_in_time)] == [
        False,
        True,
        False,
        True,
        False,
    ]
    # Three failures, never a success.
    never = entry("36.0.0.1", NOW)
    for k in range(3):
        am.good(ip("31.0.0.1"), time=NOW - 500 + 2 * k)  # a success elsewhere: each failure counts
        am.attempt(never, True, time=NOW - 500 + 2 * k + 1)
        assert am.is_terrible(never) == (k == 2)
    # Tried in the last minute: never terrible, whatever else.
    am.attempt(too_old, False, time=NOW - 60)
    assert not am.is_terrible(too_old)
    clock.now += 1
    assert am.is_terrible(too_old)
    # Ten failures with no success in the last week (after an old success).
    flaky = entry("37.0.0.1", NOW)
    am.good(flaky, time=NOW - 8 * 86400)
    for k in range(10):
        am.good(ip("38.0.0.1"), time=NOW - 7 * 86400 + 2 * k)  # unknown, but we were online
        am.attempt(flaky, True, time=NOW - 7 * 86400 + 2 * k + 1)
        assert am.is_terrible(flaky) == (k == 9)
    assert not am.is_terrible(ip("39.0.0.1"))  # unknown


def test_get_addr_excludes_terrible_and_keeps_to_23_percent() -> None:
    clock = Clock()
    am = make(clock=clock)
    good = [ta(f"{40 + i // 200}.{i % 200}.0.1") for i in range(800)]
    stale = [ta(f"{60 + i // 200}.{i % 200}.0.1", time=NOW - HORIZON - 5) for i in range(200)]
    for k in range(0, 800, 100):
        am.add(good[k : k + 100], ip(f"5.{k // 100}.1.1"))
    am.add(stale, ip("6.6.6.6"))
    total = len(am)
    kept_stale = sum(1 for i in am.infos() if i.time < NOW - HORIZON)
    assert (total, kept_stale) == (982, 194)  # a few lost to collisions in new
    answer = am.get_addr(2500, 23)
    assert len(answer) == total * 23 // 100 == 225
    assert all(a.time >= NOW - HORIZON for a in answer)
    assert len({a.address for a in answer}) == len(answer)
    assert len(am.get_addr(0, 0)) == 788  # every entry but the terrible ones
    assert len(am.get_addr(0, 0, filtered=False)) == 982
    assert len(am.get_addr(100, 23)) == 100  # the caller's cap (the node uses 1000)
    assert len(am.get_addr(0, 150)) == 788  # a share over 100% is 100%


def test_get_addr_by_network() -> None:
    am = make()
    src = ip("5.5.5.5")
    am.add([ta(f"{40 + i}.1.1.1") for i in range(30)], src)
    am.add([ta(f"2a01:{i:x}::1") for i in range(1, 21)], src)
    am.add([ta("2002:0808:0808::1")], src)  # 6to4: judged as IPv4
    am.add([TimedAddress(NOW, 1, tor(i)) for i in range(10)], src)
    assert (am.size(Network.IPV4), am.size(Network.IPV6), am.size(Network.TORV3)) == (30, 21, 10)
    v4 = am.get_addr(0, 0, Network.IPV4)
    assert len(v4) == 31
    assert {a.address.network for a in v4} == {Network.IPV4, Network.IPV6}
    assert len(am.get_addr(0, 0, Network.IPV6)) == 20
    assert len(am.get_addr(0, 0, Network.TORV3)) == 10
    assert len(am.get_addr(0, 0, Network.CJDNS)) == 0


# --- persistence -----------------------------------------------------------------------------


def rich_manager(rng: random.Random, clock: Clock) -> AddrMan:
    am = AddrMan(key=KEY_A, rng=rng, clock=clock)
    for k in range(30):
        am.add(
            [ta(f"{20 + k}.{j}.1.1", time=NOW - j * 600) for j in range(40)], ip(f"7.{k}.1.1"), 7200
        )
    am.add([TimedAddress(NOW, 1, tor(i)) for i in range(20)], ip("8.1.1.1"))
    am.add([TimedAddress(NOW, 9, i2p(i)) for i in range(20)], ip("8.2.1.1"))
    am.add([ta(f"2a01:{i:x}::1", 18444) for i in range(1, 40)], ip("8.3.1.1"))
    multi = ip("99.1.1.1")
    for i in range(1, 300):
        am.add(
            [TimedAddress(NOW - 10**6 + i * 3000, 1, multi)],
            ip(f"{100 + i % 100}.{i % 256}.{i // 256}.1"),
        )
    for info in am.infos()[::7]:
        am.good(info.address, time=NOW - 50)
    for info in am.infos()[::5]:
        am.attempt(info.address, True, time=NOW - 30)
    return am


def test_save_load_round_trip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rng = random.Random(5)
    am = rich_manager(rng, clock)
    am.check()
    assert len(slots_of(am, ip("99.1.1.1"))) > 1
    assert am.size(in_new=False) > 100
    path = tmp_path / PEERS_FILE_NAME
    am.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [PEERS_FILE_NAME]  # no temp file left
    with caplog.at_level(logging.WARNING):
        loaded = AddrMan.load(path, rng=random.Random(11), clock=clock)
    assert caplog.records == []
    loaded.check()
    assert loaded.key == am.key == KEY_A
    assert len(loaded) == len(am)
    assert loaded.infos() == am.infos()
    for net in Network:
        assert (loaded.size(net, True), loaded.size(net, False)) == (
            am.size(net, True),
            am.size(net, False),
        )
    rng.seed(11)
    assert [loaded.select() for _ in range(50)] == [am.select() for _ in range(50)]
    assert loaded.get_addr(1000, 23) == am.get_addr(1000, 23)
    assert loaded.serialize() == am.serialize()
    # Saving again over the old file works, and gives the same bytes.
    loaded.save(path)
    assert path.read_bytes() == am.serialize()


def test_file_layout(tmp_path: Path) -> None:
    am = make()
    a = ip("8.8.8.8")
    am.add([TimedAddress(NOW, 1, a)], ip("1.2.3.4"))
    data = am.serialize()
    assert data[:8] == FILE_MAGIC and data[8] == FILE_VERSION and data[9:41] == KEY_A
    assert data[41:45] == (1).to_bytes(4, "little")
    assert data[-32:] == sha256(data[:-32]).digest()
    entry = data[45:-32]
    assert entry[:8] == bytes([1, 4, 8, 8, 8, 8]) + (8333).to_bytes(2, "big")
    assert len(entry) == 8 + 16 + 8 + 20 + 1 + 1 + 2
    (bucket,) = slots_of(am, a)
    assert entry[-4:] == bytes([0, 1]) + bucket[0].to_bytes(2, "little")
    assert len(AddrMan(key=KEY_A).serialize()) == 45 + 32


def test_missing_file_gives_a_fresh_manager(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        am = AddrMan.load(tmp_path / PEERS_FILE_NAME)
    assert len(am) == 0 and len(am.key) == 32
    assert caplog.records == []
    assert AddrMan.load(tmp_path / "other.dat").key != am.key  # a random key each time


def _reseal(body: bytes) -> bytes:
    return body + sha256(body).digest()


def _corruptions(good: bytes) -> Iterable[tuple[str, bytes, str]]:
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    yield "flipped byte", bytes(flipped), "checksum mismatch"
    yield "truncated", good[:-100], "checksum mismatch"
    yield "truncated header", good[:20], "truncated (20 bytes)"
    yield "wrong magic", b"XXADDRMN" + good[8:], "wrong magic"
    yield "empty", b"", "file is empty"
    v2 = bytearray(good[:-32])
    v2[8] = 2
    yield "unknown version", _reseal(bytes(v2)), "unsupported version 2"
    yield "trailing bytes", _reseal(good[:-32] + b"\x00"), "1 bytes after the last entry"
    yield "short body", _reseal(good[:-40]), "truncated entry data"
    net = bytearray(good[:-32])
    assert net[45] == Network.IPV4  # the first entry's address
    net[45] = 9
    yield "unknown network", _reseal(bytes(net)), "bad address"
    negative = bytearray(good[:-32])
    negative[53:61] = (-5).to_bytes(8, "little", signed=True)  # its time
    yield "bad time", _reseal(bytes(negative)), "bad entry: time out of range"
    count = bytearray(good[:-32])
    count[41:45] = (10**6).to_bytes(4, "little")
    yield "huge count", _reseal(bytes(count)), "1000000 entries is more than the tables hold"


CORRUPTIONS = [
    "flipped byte",
    "truncated",
    "truncated header",
    "wrong magic",
    "empty",
    "unknown version",
    "trailing bytes",
    "short body",
    "unknown network",
    "bad time",
    "huge count",
]


def test_every_corruption_is_listed() -> None:
    good = rich_manager(random.Random(1), Clock()).serialize()
    assert [c[0] for c in _corruptions(good)] == CORRUPTIONS


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_corrupt_file_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    am = rich_manager(random.Random(1), Clock())
    good = am.serialize()
    _, data, reason = next(c for c in _corruptions(good) if c[0] == case)
    path = tmp_path / PEERS_FILE_NAME
    path.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="peercash.p2p.addrman"):
        fresh = AddrMan.load(path, rng=random.Random(1), clock=Clock())
    assert len(fresh) == 0 and fresh.key != am.key
    assert not path.exists()
    assert (tmp_path / "peers.dat.bad").read_bytes() == data
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert reason in record.getMessage()
    assert "peers.dat.bad" in record.getMessage()
    with pytest.raises(AddrManFileError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        AddrMan.deserialize(data)


def test_set_aside_never_overwrites(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / PEERS_FILE_NAME
    for n in range(3):
        path.write_bytes(b"junk %d" % n)
        with caplog.at_level(logging.WARNING):
            AddrMan.load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "peers.dat.bad",
        "peers.dat.bad.1",
        "peers.dat.bad.2",
    ]
    assert (tmp_path / "peers.dat.bad.2").read_bytes() == b"junk 2"
    # The fresh manager saves over the set-aside path as usual.
    make().save(path)
    assert AddrMan.load(path).key == KEY_A


def test_unreadable_file_is_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / PEERS_FILE_NAME
    path.mkdir()  # reading a directory fails with an OSError other than "not found"
    with caplog.at_level(logging.WARNING):
        am = AddrMan.load(path)
    assert len(am) == 0
    assert "cannot read" in caplog.records[0].getMessage()


def test_entries_no_longer_valid_are_dropped_on_load() -> None:
    # Core: remove_invalid. Rewrite an address to 0.0.0.0 (invalid) and reseal the checksum.
    am = make()
    am.add([ta("5.5.5.5"), ta("6.6.6.6")], ip("1.2.3.4"))
    data = am.serialize()
    body = data[:-32].replace(bytes([1, 4, 6, 6, 6, 6]), bytes([1, 4, 0, 0, 0, 0]))
    loaded = AddrMan.deserialize(_reseal(body))
    assert [i.address for i in loaded.infos()] == [ip("5.5.5.5")]
    loaded.check()


# --- outbound choice --------------------------------------------------------------------------


def grouped_manager(groups: int, per_group: int, clock: Clock) -> AddrMan:
    am = make(clock=clock)
    for g in range(groups):
        am.add([ta(f"{30 + g}.{g}.{k}.1") for k in range(per_group)], ip(f"7.{g}.1.1"))
    assert len(am) == groups * per_group
    return am


def test_select_outbound_never_repeats_a_group_while_another_is_free() -> None:
    clock = Clock()
    am = grouped_manager(8, 5, clock)
    connected: set[bytes] = set()
    for _ in range(8):
        picked = select_outbound(am, connected)
        assert picked is not None
        group = outbound_group(picked.address)
        assert group is not None and group not in connected
        connected.add(group)
    assert len(connected) == 8
    assert select_outbound(am, connected) is None  # every group taken: 100 draws, then give up


def count_selects(am: AddrMan, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = am.select

    def counting(new_only: bool = False, networks: object = None) -> object:
        calls[0] += 1
        return real(new_only, networks)  # type: ignore[arg-type]

    monkeypatch.setattr(am, "select", counting)
    return calls


def test_select_outbound_skips_recently_tried_for_29_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    am = make(clock=clock)
    a = ip("8.8.8.8")
    am.add([TimedAddress(NOW, 1, a)], ip("1.2.3.4"))
    am.attempt(a, False, time=NOW - 599)
    calls = count_selects(am, monkeypatch)
    assert select_outbound(am, set()) == TimedAddress(NOW, 1, a)
    assert calls[0] == 30
    am.attempt(a, False, time=NOW - 600)
    calls[0] = 0
    assert select_outbound(am, set()) is not None and calls[0] == 1


def test_select_outbound_prefers_the_default_port_for_49_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    am = make()
    am.add([ta("8.8.8.8", 18333)], ip("1.2.3.4"))
    calls = count_selects(am, monkeypatch)
    picked = select_outbound(am, set(), default_port=8333)
    assert picked is not None and picked.address.port == 18333 and calls[0] == 50
    calls[0] = 0
    assert select_outbound(am, set(), default_port=18333) is not None and calls[0] == 1


def test_select_outbound_requires_services_and_gives_up_after_100(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    am = make()
    am.add([ta("8.8.8.8", services=1)], ip("1.2.3.4"))
    calls = count_selects(am, monkeypatch)
    assert select_outbound(am, set(), required_services=1 | 8) is None
    assert calls[0] == 100
    assert select_outbound(am, set(), required_services=1) is not None
    assert select_outbound(make(), set()) is None  # empty


def test_select_outbound_privacy_networks_have_no_group_limit() -> None:
    am = make()
    am.add([TimedAddress(NOW, 1, tor(i)) for i in range(6)], ip("1.2.3.4"))
    connected: set[bytes] = set()
    picks = []
    for _ in range(6):
        picked = select_outbound(am, connected, networks={Network.TORV3})
        assert picked is not None
        picks.append(picked.address)
        group = outbound_group(picked.address)
        assert group is None
    assert len(picks) == 6  # Tor peers never block each other
    assert network_group(picks[0])[0] == 3


def test_geometry_constants() -> None:
    assert (NEW_BUCKET_COUNT, TRIED_BUCKET_COUNT, BUCKET_SIZE) == (1024, 256, 64)
