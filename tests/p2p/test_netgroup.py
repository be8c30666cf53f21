"""Network groups: Core's ``netbase_getgroup`` values (src/test/netbase_tests.cpp, no ASMap) and
the rules for the networks those vectors do not cover."""

from __future__ import annotations

import pytest

from peercash.p2p.netaddress import NetAddress, Network
from peercash.p2p.netgroup import (
    CLASS_CJDNS,
    CLASS_I2P,
    CLASS_IPV4,
    CLASS_IPV6,
    CLASS_ONION,
    CLASS_UNROUTABLE,
    is_privacy_network,
    net_class,
    network_group,
    outbound_group,
)


def ip(text: str, port: int = 8333) -> NetAddress:
    return NetAddress.parse(text, port)


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("127.0.0.1", [0]),  # local -> unroutable
        ("10.0.0.1", [0]),  # RFC 1918
        ("169.254.1.1", [0]),  # RFC 3927
        ("1.2.3.4", [CLASS_IPV4, 1, 2]),
        ("::FFFF:0:102:304", [CLASS_IPV4, 1, 2]),  # RFC 6145
        ("64:FF9B::102:304", [CLASS_IPV4, 1, 2]),  # RFC 6052
        ("2002:102:304:9999:9999:9999:9999:9999", [CLASS_IPV4, 1, 2]),  # RFC 3964 (6to4)
        ("2001:0:9999:9999:9999:9999:FEFD:FCFB", [CLASS_IPV4, 1, 2]),  # RFC 4380 (Teredo)
        ("2001:470:abcd:9999:9999:9999:9999:9999", [CLASS_IPV6, 32, 1, 4, 112, 175]),  # he.net
        ("2001:2001:9999:9999:9999:9999:9999:9999", [CLASS_IPV6, 32, 1, 32, 1]),
    ],
)
def test_core_getgroup_vectors(text: str, group: list[int]) -> None:
    assert network_group(ip(text)) == bytes(group)


def test_ipv4_is_grouped_by_16_and_port_plays_no_part() -> None:
    assert network_group(ip("8.8.4.4")) == network_group(ip("8.8.200.1", 1)) == b"\x01\x08\x08"
    assert network_group(ip("8.9.4.4")) == b"\x01\x08\x09"
    # An IPv4-mapped IPv6 address is parsed as IPv4, so it shares the IPv4 group.
    assert network_group(ip("::ffff:8.8.4.4")) == b"\x01\x08\x08"


def test_local_and_unroutable_share_one_group() -> None:
    unroutable = [
        "127.0.0.1",
        "0.1.2.3",
        "::1",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",
        "198.18.0.1",
        "192.0.2.1",
        "fe80::1",
        "fc00::1",  # unique local (IPv6, not CJDNS)
        "2001:10::1",  # ORCHID
        "0.0.0.0",  # not even valid
        "2001:db8::1",  # documentation: not valid
    ]
    for text in unroutable:
        assert network_group(ip(text)) == b"\x00", text
        assert net_class(ip(text)) == CLASS_UNROUTABLE, text
    # An embedded private IPv4 address behind a routable 6to4 prefix is still grouped by the
    # IPv4 /16, as Core does (the IPv6 address is what must be routable).
    assert network_group(ip("2002:0a00:0001::1")) == b"\x01\x0a\x00"


def test_ipv6_32_and_he_net_36() -> None:
    a = network_group(ip("2a01:4f8:1:2::1"))
    assert a == bytes([CLASS_IPV6, 0x2A, 0x01, 0x04, 0xF8])
    assert network_group(ip("2a01:4f8:ffff::1")) == a
    assert network_group(ip("2a01:4f9::1")) != a
    # he.net: the 5th byte's first nibble counts, the rest is set to ones.
    assert network_group(ip("2001:470:a000::1")) == bytes(
        [CLASS_IPV6, 0x20, 0x01, 0x04, 0x70, 0xAF]
    )
    assert network_group(ip("2001:470:afff::1")) == network_group(ip("2001:470:a000::1"))
    assert network_group(ip("2001:470:b000::1")) != network_group(ip("2001:470:a000::1"))


def test_tor_i2p_cjdns_groups() -> None:
    key = bytes(range(0x5A, 0x5A + 32))
    tor = NetAddress(Network.TORV3, key, 8333)
    assert network_group(tor) == bytes([CLASS_ONION, 0x5F])  # first 4 bits, then ones
    i2p = NetAddress(Network.I2P, bytes([0xA3]) + key[1:], 0)
    assert network_group(i2p) == bytes([CLASS_I2P, 0xAF])
    cjdns = NetAddress(Network.CJDNS, bytes.fromhex("fc3a" + "11" * 14), 8333)
    assert network_group(cjdns) == bytes([CLASS_CJDNS, 0xFC, 0x3F])  # the 4 bits after fc
    # Parsing a v3 onion name gives the same group as its key.
    onion = NetAddress.parse(str(tor), 8333)
    assert network_group(onion) == network_group(tor)
    # Tor v2 is never valid, so never routable.
    assert network_group(NetAddress(Network.TORV2, bytes(range(1, 11)), 8333)) == b"\x00"


def test_groups_of_distinct_classes_never_collide() -> None:
    tor = NetAddress(Network.TORV3, bytes([0x08]) + bytes(31), 0)
    v4 = ip("8.8.8.8")
    assert network_group(tor)[1:] == b"\x0f"
    assert network_group(v4)[0] != network_group(tor)[0]


def test_net_class() -> None:
    assert net_class(ip("1.2.3.4")) == CLASS_IPV4
    assert net_class(ip("2002:102:304::1")) == CLASS_IPV4  # carries IPv4
    assert net_class(ip("2a01::1")) == CLASS_IPV6
    assert net_class(NetAddress(Network.I2P, bytes(32), 0)) == CLASS_I2P


def test_outbound_group_ignores_privacy_networks() -> None:
    tor = NetAddress(Network.TORV3, bytes(32), 0)
    cjdns = NetAddress(Network.CJDNS, bytes.fromhex("fc" + "00" * 15), 0)
    i2p = NetAddress(Network.I2P, bytes(32), 0)
    for a in (tor, cjdns, i2p):
        assert is_privacy_network(a)
        assert outbound_group(a) is None
    assert not is_privacy_network(ip("1.2.3.4"))
    assert outbound_group(ip("1.2.3.4")) == b"\x01\x01\x02"
