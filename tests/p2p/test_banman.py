"""The ban manager: subnets, expiry, Core's banlist.json format across restarts, a corrupt file set
aside, and bounded discouragement."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from peercash.p2p.banman import BanMan, SubNet
from peercash.p2p.netaddress import NetAddress

ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_subnets_parse_and_match() -> None:
    assert str(SubNet.parse("1.2.3.4")) == "1.2.3.4/32"
    assert str(SubNet.parse("1.2.3.77/24")) == "1.2.3.0/24"
    assert str(SubNet.parse("1.2.3.4/255.255.0.0")) == "1.2.0.0/16"
    assert str(SubNet.parse("2001:db8::1/32")) == "2001:db8::/32"
    assert str(SubNet.parse("::ffff:10.0.0.1")) == "10.0.0.1/32"
    assert str(SubNet.parse(ONION)) == ONION
    net = SubNet.parse("10.1.0.0/16")
    assert net.contains(NetAddress.ipv4("10.1.200.3", 8333))
    assert not net.contains(NetAddress.ipv4("10.2.0.1", 8333))
    assert not net.contains(NetAddress.parse("[2001:db8::1]:8333", 0))
    assert SubNet.parse(ONION).contains(NetAddress.parse(ONION + ":8333", 0))
    for bad in ("", "1.2.3", "1.2.3.4/33", "example.com", "abc.onion"):
        with pytest.raises(ValueError):
            SubNet.parse(bad)


def test_bans_expire_and_persist_in_cores_format(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "banlist.json"
    bans = BanMan(path, clock=clock)
    a = NetAddress.ipv4("5.6.7.8", 8333)
    assert bans.ban(SubNet.parse("5.6.0.0/16"), until=int(clock.now) + 100, reason="test")
    assert bans.ban(a)  # default: 24 hours
    assert not bans.ban(a, until=int(clock.now) + 10)  # never shortened
    assert bans.is_banned(NetAddress.ipv4("5.6.1.1", 1))
    doc = json.loads(path.read_text())
    assert sorted(doc) == ["banned_nets"]
    first = doc["banned_nets"][0]
    assert first == {
        "version": 1,
        "ban_created": 1_700_000_000,
        "banned_until": 1_700_000_100,
        "address": "5.6.0.0/16",
        "reason": "test",
    }
    again = BanMan(path, clock=clock)
    assert [str(e.subnet) for e in again.list()] == ["5.6.0.0/16", "5.6.7.8/32"]
    clock.now += 101
    assert [str(e.subnet) for e in again.list()] == ["5.6.7.8/32"]
    assert not again.is_banned(NetAddress.ipv4("5.6.1.1", 1))
    assert again.is_banned(a)
    assert again.unban(a) and not again.unban(a)
    assert again.list() == []
    assert json.loads(path.read_text()) == {"banned_nets": []}
    again.ban(SubNet.parse("1.0.0.0/8"))
    again.clear()
    assert BanMan(path, clock=clock).list() == []


def test_a_corrupt_banlist_is_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "banlist.json"
    path.write_text('{"banned_nets": [{"address": "not an address"}]}')
    with caplog.at_level(logging.WARNING):
        bans = BanMan(path)
    assert bans.list() == []
    assert (tmp_path / "banlist.json.bad").exists() and not path.exists()
    assert "unusable" in caplog.text
    path.write_text("{not json")
    BanMan(path)
    assert (tmp_path / "banlist.json.bad.1").exists()


def test_discouragement_is_bounded_and_not_persisted(tmp_path: Path) -> None:
    bans = BanMan(tmp_path / "banlist.json", discouraged_capacity=3)
    addrs = [NetAddress.ipv4(f"7.0.0.{i}", 8333) for i in range(5)]
    for a in addrs:
        bans.discourage(a)
    assert [bans.is_discouraged(a) for a in addrs] == [False, False, True, True, True]
    assert bans.is_discouraged(NetAddress.ipv4("7.0.0.4", 1))  # any port
    assert not bans.is_banned(addrs[4])
    assert not (tmp_path / "banlist.json").exists()
