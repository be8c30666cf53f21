"""Peer addresses: BIP155 wire forms, text forms, and Core's classification rules.

The vectors marked "Core" are facts from Bitcoin Core's src/test/net_tests.cpp and
src/test/netbase_tests.cpp (what Core decodes, prints and classifies), re-checked here against our
own implementation; where we differ on purpose the case says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peercash.consensus.errors import DecodeError, OversizeError, TruncatedError
from peercash.consensus.serialize import Reader
from peercash.p2p.netaddress import (
    ADDRESS_LENGTHS,
    MAX_ADDRV2_SIZE,
    NetAddress,
    NetAddressError,
    Network,
    TimedAddress,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p2ptools import SETTINGS, V2_NETWORKS, net_addresses

TORV3_TEXT = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
TORV3_KEY = "79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f"
TORV3_TEXT_2 = "kpgvmscirrdqpekbqjsvw5teanhatztpp2gl6eee4zkowvwfxwenqaid.onion"
TORV3_KEY_2 = "53cd5648488c4707914182655b7664034e09e66f7e8cbf1084e654eb56c5bd88"
I2P_TEXT = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"
I2P_HASH = "a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87"


def parse(text: str, port: int = 8333) -> NetAddress:
    return NetAddress.parse(text, port)


# -- networks -----------------------------------------------------------------------------------


def test_network_ids_and_lengths() -> None:
    expected = {
        Network.IPV4: (1, 4),
        Network.IPV6: (2, 16),
        Network.TORV2: (3, 10),
        Network.TORV3: (4, 32),
        Network.I2P: (5, 32),
        Network.CJDNS: (6, 16),
    }
    assert {n: (int(n), n.address_length) for n in Network} == expected
    assert dict(ADDRESS_LENGTHS) == {n: length for n, (_, length) in expected.items()}
    assert MAX_ADDRV2_SIZE == 512


# -- BIP155 decoding: Core's cnetaddr_unserialize_v2 vectors ------------------------------------

PORT = "208d"  # Core's vectors are addresses alone; an addrv2 entry carries the port after them

V2_VECTORS: list[tuple[str, str, object]] = [
    ("valid IPv4", "01" "04" "01020304", (Network.IPV4, "1.2.3.4")),
    ("IPv4 cut short", "01" "04" "0102", TruncatedError),
    ("IPv4 bogus length", "01" "05" "01020304", NetAddressError),
    ("IPv4 length 513", "01" "fd0102" "01020304", OversizeError),
    ("valid IPv6", "02" "10" "0102030405060708090a0b0c0d0e0f10",
     (Network.IPV6, "102:304:506:708:90a:b0c:d0e:f10")),
    # Core reads this prefix as its internal (name) network; we have none, so it stays IPv6.
    ("IPv6 with Core's internal prefix", "02" "10" "fd6b88c08724ca978112ca1bbdcafac2",
     (Network.IPV6, "fd6b:88c0:8724:ca97:8112:ca1b:bdca:fac2")),
    ("IPv6 bogus length", "02" "04" "00", NetAddressError),
    ("IPv6 holding IPv4", "02" "10" "00000000000000000000ffff01020304", None),
    ("IPv6 holding Tor v2", "02" "10" "fd87d87eeb430102030405060708090a", None),
    ("Tor v2", "03" "0a" "f1f2f3f4f5f6f7f8f9fa", None),
    ("valid Tor v3", "04" "20" + TORV3_KEY, (Network.TORV3, TORV3_TEXT)),
    ("Tor v3 bogus length", "04" "00" "00", NetAddressError),
    ("valid I2P", "05" "20" + I2P_HASH, (Network.I2P, I2P_TEXT)),
    ("I2P bogus length", "05" "03" "00", NetAddressError),
    ("valid CJDNS", "06" "10" "fc000001000200030004000500060007",
     (Network.CJDNS, "fc00:1:2:3:4:5:6:7")),
    ("CJDNS wrong prefix", "06" "10" "aa000001000200030004000500060007",
     (Network.CJDNS, "aa00:1:2:3:4:5:6:7")),
    ("CJDNS bogus length", "06" "01" "00", NetAddressError),
    ("unknown network, length MAX_SIZE", "aa" "fe00000002" "01020304050607", OversizeError),
    ("unknown network, length 4", "aa" "04" "01020304", None),
    ("unknown network, length 0", "aa" "00", None),
]  # fmt: skip


def test_bip155_vectors() -> None:
    checked = 0
    for name, hex_addr, expected in V2_VECTORS:
        data = bytes.fromhex(hex_addr + PORT)
        if isinstance(expected, type):
            with pytest.raises(expected):
                NetAddress.read_v2(Reader(data))
        else:
            r = Reader(data)
            got = NetAddress.read_v2(r)
            r.expect_end()
            if expected is None:
                assert got is None, name
            else:
                assert isinstance(expected, tuple)
                assert got is not None, name
                assert (got.network, got.host, got.port) == (*expected, 8333), name
                assert got.serialize_v2() == data, name
        checked += 1
    assert checked == 20


def test_bip155_validity_of_decoded_addresses() -> None:
    valid = {name: NetAddress.read_v2(Reader(bytes.fromhex(h + PORT))) for name, h, e in V2_VECTORS
             if isinstance(e, tuple)}  # fmt: skip
    assert {name for name, a in valid.items() if a is not None and a.is_valid()} == {
        "valid IPv4",
        "valid IPv6",
        "IPv6 with Core's internal prefix",
        "valid Tor v3",
        "valid I2P",
        "valid CJDNS",
    }


def test_bip155_wrong_length_is_checked_before_reading_the_address() -> None:
    # A declared length of 500 on a known network fails on the length, not for want of bytes.
    with pytest.raises(NetAddressError, match="length 500"):
        NetAddress.read_v2(Reader(bytes.fromhex("01fdf401")))


# -- serialization: Core's cnetaddr_serialize_v1/v2 ----------------------------------------------


def test_serialize_vectors() -> None:
    ipv4 = parse("1.2.3.4")
    ipv6 = parse("1a1b:2a2b:3a3b:4a4b:5a5b:6a6b:7a7b:8a8b")
    assert ipv4.to_v1_bytes().hex() == "00000000000000000000ffff01020304"
    assert ipv6.to_v1_bytes().hex() == "1a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b"
    assert ipv4.serialize_v2().hex() == "010401020304" + "208d"
    assert ipv6.serialize_v2().hex() == "02101a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b" + "208d"
    tor = parse(TORV3_TEXT_2)
    assert tor.serialize_v2().hex() == "0420" + TORV3_KEY_2 + "208d"
    # Core writes 16 zero bytes for an address v1 cannot carry; we refuse to.
    with pytest.raises(ValueError):
        tor.to_v1_bytes()
    with pytest.raises(ValueError):
        parse(I2P_TEXT).to_v1_bytes()
    assert ipv4.serialize_v1().hex() == "00000000000000000000ffff01020304" + "208d"


@SETTINGS
@given(st.binary(min_size=16, max_size=16), st.integers(0, 0xFFFF))
def test_v1_form_is_one_to_one(b16: bytes, port: int) -> None:
    a = NetAddress.from_v1_bytes(b16, port)
    assert a.to_v1_bytes() == b16
    assert NetAddress.read_v1(Reader(a.serialize_v1())) == a
    if b16.startswith(bytes(10) + b"\xff\xff"):
        assert a.network is Network.IPV4
    elif b16.startswith(bytes.fromhex("fd87d87eeb43")):
        assert a.network is Network.TORV2 and not a.is_valid()
    else:
        assert a.network is Network.IPV6


@SETTINGS
@given(net_addresses(V2_NETWORKS))
def test_v2_form_round_trips(a: NetAddress) -> None:
    r = Reader(a.serialize_v2())
    assert NetAddress.read_v2(r) == a
    r.expect_end()


def test_v1_compatibility() -> None:
    cases = {
        parse("1.2.3.4"): True,
        parse("::1"): True,
        parse(TORV3_TEXT): False,
        parse(I2P_TEXT): False,
        NetAddress.parse("fc00::1", 1, cjdns=True): False,
    }
    assert {a: a.is_addr_v1_compatible() for a in cases} == cases
    # CJDNS still has its 16 bytes for callers that send it as IPv6.
    assert NetAddress.parse("fc00::1", 1, cjdns=True).to_v1_bytes() == parse("fc00::1").addr
    assert NetAddress.from_v1_bytes(bytes.fromhex("fd87d87eeb43") + bytes(10), 1).to_v1_bytes() == (
        bytes.fromhex("fd87d87eeb43") + bytes(10)
    )


def test_from_v1_bytes_length() -> None:
    for n in (0, 4, 15, 17):
        with pytest.raises(NetAddressError):
            NetAddress.from_v1_bytes(bytes(n), 1)


# -- text ---------------------------------------------------------------------------------------


PARSE_CASES: list[tuple[str, str]] = [
    # Core's netbase_lookupnumeric, with default port 65535
    ("127.0.0.1", "127.0.0.1:65535"),
    ("127.0.0.1:8333", "127.0.0.1:8333"),
    ("::ffff:127.0.0.1", "127.0.0.1:65535"),
    ("::", "[::]:65535"),
    ("[::]:8333", "[::]:8333"),
    ("[127.0.0.1]", "127.0.0.1:65535"),
    ("[fd6c:88c0:8724:1:2:3:4:5]", "[fd6c:88c0:8724:1:2:3:4:5]:65535"),
    # Core's embedded_test and netbase_splithost
    ("::FFFF:0102:0304", "1.2.3.4:65535"),
    ("[::ffff:127.0.0.1]:8333", "127.0.0.1:8333"),
    ("::8333", "[::8333]:65535"),
    ("1.2.3.4:65535", "1.2.3.4:65535"),
    ("::1", "[::1]:65535"),
    ("[::1]:1", "[::1]:1"),
    (TORV3_TEXT, TORV3_TEXT + ":65535"),
    (TORV3_TEXT.upper(), TORV3_TEXT + ":65535"),
    (TORV3_TEXT + ":9050", TORV3_TEXT + ":9050"),
    ("UDHDrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.I2P",
     "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.i2p:65535"),
    (I2P_TEXT + ":1", I2P_TEXT + ":1"),
]  # fmt: skip


def test_parse_and_print() -> None:
    for text, shown in PARSE_CASES:
        a = NetAddress.parse(text, 65535)
        assert str(a) == shown, text
        assert NetAddress.parse(shown, 1) == a, text
    assert len(PARSE_CASES) == 18


def test_parse_networks() -> None:
    assert parse("1.2.3.4").network is Network.IPV4
    assert parse("1.2.3.4").addr == b"\x01\x02\x03\x04"
    assert parse("[::1]:1").network is Network.IPV6
    assert parse(TORV3_TEXT).addr.hex() == TORV3_KEY
    assert parse(I2P_TEXT).addr.hex() == I2P_HASH
    assert parse("fc00::1").network is Network.IPV6  # CJDNS only when asked for
    cjdns = NetAddress.parse("[fc00:1:2:3:4:5:6:7]:8333", 1, cjdns=True)
    assert (cjdns.network, str(cjdns)) == (Network.CJDNS, "[fc00:1:2:3:4:5:6:7]:8333")
    assert NetAddress.parse("fd00::1", 1, cjdns=True).network is Network.IPV6  # not fc00::/8
    assert parse("fc00::1").as_cjdns() == NetAddress.parse("fc00::1", 8333, cjdns=True)
    assert parse("1.2.3.4").as_cjdns() == parse("1.2.3.4")


BAD_TEXT = [
    # Core: TORv2, wrong checksum, wrong version, NUL inside, bogus length, bad base32
    "6hzph5hv6337r6p2.onion",
    "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscsad.onion",
    "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscrye.onion",
    "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd\0wtf.onion",
    "mfrggzak.onion",
    "mf*g zak.onion",
    # Core: I2P padded, over-padded, NUL inside, 56 characters, bad base32
    "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jn=.b32.i2p",
    "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna=.b32.i2p",
    "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v\0wtf.b32.i2p",
    "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscsad.b32.i2p",
    "tp*szydbh4dp.b32.i2p",
    # I2P whose last character carries bits past the 32 bytes
    "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jnb.b32.i2p",
    # Core's netbase_splithost: ports out of range or malformed, no host
    "127.0.0.1:65536",
    "127.0.0.1:0",
    "127.0.0.1:",
    "127.0.0.1:1/2",
    "127.0.0.1:1E2",
    ":8333",
    "[]:8333",
    "",
    ":-1",
    "[::1]x",
    "[::1",
    # not addresses we take: names, zone ids, non-canonical IPv4, garbage
    "totally bogus",
    "www.bitcoincore.org",
    "www.bitcoincore.org:8333",
    "fe80::1%32",
    "01.2.3.4",
    "1.2.3",
    "256.0.0.1",
    "1:2:3:4:5:6:7:8:9",
    " 1.2.3.4",
    "1.2.3.4\n",
    "1.2.3.\u0664",
]


def test_bad_text() -> None:
    for text in BAD_TEXT:
        with pytest.raises(NetAddressError):
            NetAddress.parse(text, 8333)
    assert len(BAD_TEXT) == 34


# Core's cnetaddr_tostring_canonical_ipv6 (RFC 5952), verbatim pairs.
CANONICAL_IPV6 = {
    "0000:0000:0000:0000:0000:0000:0000:0000": "::",
    "000:0000:000:00:0:00:000:0000": "::",
    "000:000:000:000:000:000:000:000": "::",
    "00:00:00:00:00:00:00:00": "::",
    "0:0:0:0:0:0:0:0": "::",
    "0:0:0:0:0:0:0:1": "::1",
    "2001:0:0:1:0:0:0:1": "2001:0:0:1::1",
    "2001:0db8:0:0:1:0:0:1": "2001:db8::1:0:0:1",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334": "2001:db8:85a3::8a2e:370:7334",
    "2001:0db8::0001": "2001:db8::1",
    "2001:0db8::0001:0000": "2001:db8::1:0",
    "2001:0db8::1:0:0:1": "2001:db8::1:0:0:1",
    "2001:db8:0000:0:1::1": "2001:db8::1:0:0:1",
    "2001:db8:0000:1:1:1:1:1": "2001:db8:0:1:1:1:1:1",
    "2001:db8:0:0:0:0:2:1": "2001:db8::2:1",
    "2001:db8:0:0:0::1": "2001:db8::1",
    "2001:db8:0:0:1:0:0:1": "2001:db8::1:0:0:1",
    "2001:db8:0:0:1::1": "2001:db8::1:0:0:1",
    "2001:DB8:0:0:1::1": "2001:db8::1:0:0:1",
    "2001:db8:0:0::1": "2001:db8::1",
    "2001:db8:0:0:aaaa::1": "2001:db8::aaaa:0:0:1",
    "2001:db8:0:1:1:1:1:1": "2001:db8:0:1:1:1:1:1",
    "2001:db8:0::1": "2001:db8::1",
    "2001:db8:85a3:0:0:8a2e:370:7334": "2001:db8:85a3::8a2e:370:7334",
    "2001:db8::0:1": "2001:db8::1",
    "2001:db8::0:1:0:0:1": "2001:db8::1:0:0:1",
    "2001:DB8::1": "2001:db8::1",
    "2001:db8::1": "2001:db8::1",
    "2001:db8::1:0:0:1": "2001:db8::1:0:0:1",
    "2001:db8::1:1:1:1:1": "2001:db8:0:1:1:1:1:1",
    "2001:db8::aaaa:0:0:1": "2001:db8::aaaa:0:0:1",
    "2001:db8:aaaa:bbbb:cccc:dddd:0:1": "2001:db8:aaaa:bbbb:cccc:dddd:0:1",
    "2001:db8:aaaa:bbbb:cccc:dddd::1": "2001:db8:aaaa:bbbb:cccc:dddd:0:1",
    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:0001": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1",
    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:001": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1",
    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:01": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1",
    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1",
    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa",
    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:AAAA": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa",
    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:AaAa": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa",
}


def test_canonical_ipv6_text() -> None:
    for text, canonical in CANONICAL_IPV6.items():
        a = parse(text)
        assert a.network is Network.IPV6
        assert a.host == canonical, text
    assert len(CANONICAL_IPV6) == 40


@SETTINGS
@given(
    net_addresses((Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS)),
)
def test_text_round_trips(a: NetAddress) -> None:
    if a.port == 0:
        a = NetAddress(a.network, a.addr, 1)
    back = NetAddress.parse(str(a), 9, cjdns=a.network is Network.CJDNS)
    if a.network is Network.CJDNS and a.addr[0] != 0xFC:
        assert back == NetAddress(Network.IPV6, a.addr, a.port)  # only fc00::/8 reads as CJDNS
    else:
        assert back == a
    assert NetAddress.parse(a.host, a.port, cjdns=back.network is Network.CJDNS) == back


@SETTINGS
@given(st.text(max_size=70))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        a = NetAddress.parse(text, 8333)
    except NetAddressError:
        return
    assert isinstance(a, NetAddress)


# -- classification: Core's netbase_properties and the RFC ranges -------------------------------


def test_core_netbase_properties() -> None:
    true_cases = [
        ("127.0.0.1", NetAddress.is_ipv4),
        ("::FFFF:192.168.1.1", NetAddress.is_ipv4),
        ("::1", NetAddress.is_ipv6),
        ("10.0.0.1", NetAddress.is_rfc1918),
        ("192.168.1.1", NetAddress.is_rfc1918),
        ("172.31.255.255", NetAddress.is_rfc1918),
        ("198.18.0.0", NetAddress.is_rfc2544),
        ("198.19.255.255", NetAddress.is_rfc2544),
        ("2001:0DB8::", NetAddress.is_rfc3849),
        ("3FFF::", NetAddress.is_rfc9637),
        ("3FFF:0FFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", NetAddress.is_rfc9637),
        ("169.254.1.1", NetAddress.is_rfc3927),
        ("2002::1", NetAddress.is_rfc3964),
        ("FC00::", NetAddress.is_rfc4193),
        ("2001::2", NetAddress.is_rfc4380),
        ("2001:10::", NetAddress.is_rfc4843),
        ("2001:20::", NetAddress.is_rfc7343),
        ("FE80::", NetAddress.is_rfc4862),
        ("64:FF9B::", NetAddress.is_rfc6052),
        (TORV3_TEXT, NetAddress.is_tor),
        ("127.0.0.1", NetAddress.is_local),
        ("::1", NetAddress.is_local),
        ("8.8.8.8", NetAddress.is_routable),
        ("2001::1", NetAddress.is_routable),
        ("127.0.0.1", NetAddress.is_valid),
    ]
    for text, predicate in true_cases:
        assert predicate(parse(text)), (text, predicate.__name__)
    assert not parse("3FFF:1000::").is_rfc9637()
    assert not parse("3FFF::").is_valid()
    assert len(true_cases) == 25


# address → (valid, routable, local)
REACHABILITY: dict[str, tuple[bool, bool, bool]] = {
    "8.8.8.8": (True, True, False),
    "1.2.3.4": (True, True, False),
    "0.0.0.0": (False, False, True),
    "0.1.2.3": (True, False, True),
    "255.255.255.255": (False, False, False),
    "127.0.0.1": (True, False, True),
    "127.255.255.254": (True, False, True),
    "10.1.2.3": (True, False, False),
    "172.15.255.255": (True, True, False),
    "172.16.0.0": (True, False, False),
    "172.31.255.255": (True, False, False),
    "172.32.0.0": (True, True, False),
    "192.168.0.1": (True, False, False),
    "192.169.0.1": (True, True, False),
    "198.17.255.255": (True, True, False),
    "198.18.0.1": (True, False, False),
    "198.19.255.255": (True, False, False),
    "198.20.0.0": (True, True, False),
    "169.254.3.4": (True, False, False),
    "100.63.255.255": (True, True, False),
    "100.64.0.0": (True, False, False),
    "100.127.255.255": (True, False, False),
    "100.128.0.0": (True, True, False),
    "192.0.2.1": (True, False, False),
    "198.51.100.7": (True, False, False),
    "203.0.113.200": (True, False, False),
    "203.0.114.1": (True, True, False),
    "::": (False, False, False),
    "::1": (True, False, True),
    "::2": (True, True, False),
    "2001:db8::1": (False, False, False),
    "3fff:fff::1": (False, False, False),
    "3fff:1000::1": (True, True, False),
    "fe80::1": (True, False, False),
    "fe80:0:0:1::1": (True, True, False),
    "fc00::1": (True, False, False),
    "fdff::1": (True, False, False),
    "fe00::1": (True, True, False),
    "2001:10::1": (True, False, False),
    "2001:1f::1": (True, False, False),
    "2001:20::1": (True, False, False),
    "2001:2f::1": (True, False, False),
    "2001:30::1": (True, True, False),
    "2001::1": (True, True, False),
    "2002:102:304::1": (True, True, False),
    "2606:4700::1111": (True, True, False),
    TORV3_TEXT: (True, True, False),
    I2P_TEXT: (True, True, False),
}


def test_reachability() -> None:
    got = {
        t: (a.is_valid(), a.is_routable(), a.is_local()) for t in REACHABILITY for a in [parse(t)]
    }
    assert got == REACHABILITY
    assert len(REACHABILITY) == 48


def test_special_networks_validity() -> None:
    cjdns = NetAddress.parse("fc00:1:2:3:4:5:6:7", 1, cjdns=True)
    assert (cjdns.is_valid(), cjdns.is_routable(), cjdns.is_rfc4193()) == (True, True, False)
    off_prefix = NetAddress(Network.CJDNS, bytes.fromhex("aa00" + "00" * 14), 1)
    assert (off_prefix.is_valid(), off_prefix.is_routable()) == (False, False)
    torv2 = NetAddress(Network.TORV2, bytes(range(10)), 1)
    assert (torv2.is_tor(), torv2.is_valid(), torv2.is_routable()) == (True, False, False)
    assert str(torv2) == "aaaqeayeaudaocaj.onion:1"  # 16 characters, as v2 names were


def test_network_class_and_linked_ipv4() -> None:
    cases: dict[str, tuple[Network | None, str | None]] = {
        # Core's netbase_getgroup inputs: each of these groups by the IPv4 address 1.2.x.x
        "1.2.3.4": (Network.IPV4, "01020304"),
        "::FFFF:0:102:304": (Network.IPV4, "01020304"),  # RFC 6145
        "64:FF9B::102:304": (Network.IPV4, "01020304"),  # RFC 6052
        "2002:102:304:9999:9999:9999:9999:9999": (Network.IPV4, "01020304"),  # 6to4
        "2001:0:9999:9999:9999:9999:FEFD:FCFB": (Network.IPV4, "01020304"),  # Teredo
        "2001:470:abcd:9999:9999:9999:9999:9999": (Network.IPV6, None),  # he.net
        "2001:2001:9999:9999:9999:9999:9999:9999": (Network.IPV6, None),
        "127.0.0.1": (None, None),
        "10.0.0.1": (None, None),
        "169.254.1.1": (None, None),
        "fc00::1": (None, None),
        TORV3_TEXT: (Network.TORV3, None),
        I2P_TEXT: (Network.I2P, None),
    }
    for text, (cls, linked) in cases.items():
        a = parse(text)
        assert a.network_class() == cls, text
        got = a.linked_ipv4()
        assert (got.hex() if got is not None else None) == linked, text
        assert a.has_linked_ipv4() is (linked is not None)
    assert parse("2001:470:abcd::1").is_he_net()
    assert NetAddress.parse("fc00::1", 1, cjdns=True).network_class() == Network.CJDNS
    assert len(cases) == 13


# -- construction -------------------------------------------------------------------------------


def test_construction_errors() -> None:
    bad: list[tuple[object, object, object, type[Exception]]] = [
        (Network.IPV4, bytes(3), 1, ValueError),
        (Network.IPV6, bytes(4), 1, ValueError),
        (Network.TORV2, bytes(16), 1, ValueError),
        (Network.TORV3, bytes(31), 1, ValueError),
        (Network.I2P, bytes(33), 1, ValueError),
        (Network.CJDNS, bytes(32), 1, ValueError),
        (Network.IPV4, bytes(4), -1, ValueError),
        (Network.IPV4, bytes(4), 65536, ValueError),
        (Network.IPV4, bytes(4), 1.0, ValueError),
        (Network.IPV6, bytes(10) + b"\xff\xff" + bytes(4), 1, ValueError),
        (Network.IPV6, bytes.fromhex("fd87d87eeb43") + bytes(10), 1, ValueError),
        (7, bytes(4), 1, ValueError),
        (Network.IPV4, bytearray(4), 1, TypeError),
    ]
    for network, addr, port, error in bad:
        with pytest.raises(error):
            NetAddress(network, addr, port)  # type: ignore[arg-type]
    assert len(bad) == 13
    assert NetAddress(1, bytes(4), 1).network is Network.IPV4  # type: ignore[arg-type]
    assert not issubclass(ValueError, DecodeError)  # a programming error, not a peer's


def test_addresses_are_values() -> None:
    a, b = parse("1.2.3.4:1"), parse("1.2.3.4:2")
    assert a < b and hash(a) == hash(parse("1.2.3.4:1")) and len({a, b, parse("1.2.3.4:1")}) == 2
    assert repr(a) == "NetAddress(IPV4, 1.2.3.4:1)"
    with pytest.raises(AttributeError):
        a.port = 3  # type: ignore[misc]
    assert NetAddress.ipv4("5.6.7.8", 9) == parse("5.6.7.8:9")


def test_timed_address_ranges() -> None:
    ok = TimedAddress(0xFFFFFFFF, 2**64 - 1, parse("1.2.3.4"))
    assert ok.time == 0xFFFFFFFF
    for time, services in ((-1, 0), (2**32, 0), (0, -1), (0, 2**64)):
        with pytest.raises(ValueError):
            TimedAddress(time, services, parse("1.2.3.4"))
