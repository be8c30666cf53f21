"""Peer addresses on every BIP155 network, their text and wire forms, and Core's address classes.

A :class:`NetAddress` is one network (a BIP155 network id), the address bytes of that network and
a port. Each address has exactly one representation: an IPv4 address is never stored as an
IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) and a legacy Tor v2 address never as an OnionCat
IPv6 address (``fd87:d87e:eb43::/48``); the constructors that read the 16-byte legacy form
(:meth:`NetAddress.from_v1_bytes`, :meth:`NetAddress.parse`) convert those to the proper network.

Wire forms:

* v1 (``addr``, ``version``): 16 bytes (IPv6, IPv4-mapped for IPv4) then the port, big-endian.
  TORv3 and I2P have no v1 form; CJDNS travels as the IPv6 address it is (fc00::/8).
* v2 (BIP155 ``addrv2``): network id (1 byte), compact-size length, address bytes, port
  (big-endian). Unknown network ids and Tor v2 are skipped, as BIP155 and Core do; a known
  network with the wrong length is an error.

The classification predicates (``is_rfc1918`` … ``is_routable``) follow Bitcoin Core's
``CNetAddr`` (src/netaddress.cpp) rule for rule. Everything here is pure and immutable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Self

from peercash.consensus.errors import DecodeError, OversizeError
from peercash.consensus.serialize import Reader, compact_size

__all__ = [
    "ADDRESS_LENGTHS",
    "MAX_ADDRV2_SIZE",
    "NetAddress",
    "NetAddressError",
    "Network",
    "TimedAddress",
]


class Network(IntEnum):
    """The BIP155 network ids. (Core's own ``Network`` enum numbers them differently.)"""

    IPV4 = 1
    IPV6 = 2
    TORV2 = 3
    TORV3 = 4
    I2P = 5
    CJDNS = 6

    @property
    def address_length(self) -> int:
        """The length of this network's addresses in bytes (BIP155)."""
        return ADDRESS_LENGTHS[self]


ADDRESS_LENGTHS: Mapping[Network, int] = MappingProxyType(
    {
        Network.IPV4: 4,
        Network.IPV6: 16,
        Network.TORV2: 10,
        Network.TORV3: 32,
        Network.I2P: 32,
        Network.CJDNS: 16,
    }
)
"""BIP155's address length per network id (Core: ``ADDR_IPV4_SIZE`` … ``ADDR_CJDNS_SIZE``)."""

MAX_ADDRV2_SIZE = 512
"""BIP155: no addrv2 address is longer than this, whatever its network (Core:
``CNetAddr::MAX_ADDRV2_SIZE = 512`` in src/netaddress.h)."""

_IPV4_IN_IPV6_PREFIX = bytes(10) + b"\xff\xff"
_ONIONCAT_PREFIX = bytes.fromhex("fd87d87eeb43")  # Tor v2 carried as IPv6 (OnionCat)
_LOCALHOST6 = bytes(15) + b"\x01"
_TORV3_VERSION = b"\x03"
_TORV3_CHECKSUM_TAG = b".onion checksum"
_BASE32 = re.compile(r"[a-z2-7]+\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_PORT_BE = struct.Struct(">H")


class NetAddressError(DecodeError):
    """Text or bytes that are not an address of a network we know, or not a valid one."""


def _torv3_checksum(pubkey: bytes) -> bytes:
    """The 2-byte checksum of a v3 onion address (Tor's rend-spec-v3, "Encoding onion addresses")."""
    return hashlib.sha3_256(_TORV3_CHECKSUM_TAG + pubkey + _TORV3_VERSION).digest()[:2]


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _b32decode(label: str, n_bytes: int) -> bytes:
    """Unpadded lowercase base32 of exactly ``n_bytes``, its unused trailing bits zero."""
    if not _BASE32.match(label):
        raise NetAddressError(f"not base32: {label!r}")
    try:
        data = base64.b32decode(label.upper() + "=" * (-len(label) % 8))
    except binascii.Error as e:  # pragma: no cover - the pattern and the padding rule it out
        raise NetAddressError(f"not base32: {e}") from None
    if len(data) != n_bytes or _b32encode(data) != label:
        raise NetAddressError(f"base32 label {label!r} is not {n_bytes} bytes")
    return data


@dataclass(frozen=True, slots=True, order=True, repr=False)
class NetAddress:
    """An address on one network and a port. Immutable, hashable, ordered (network, addr, port).

    ``addr`` holds the network's own bytes: 4 for IPv4, 16 for IPv6 and CJDNS, 10 for Tor v2, 32
    for Tor v3 (the ed25519 public key) and I2P (the SHA-256 of the destination). Constructing one
    with the wrong length, a port outside 0‥65535, or an IPv6 address that has a canonical form on
    another network (IPv4-mapped, OnionCat) raises ``ValueError``.
    """

    network: Network
    addr: bytes
    port: int

    def __post_init__(self) -> None:
        network = self.network
        if not isinstance(network, Network):
            network = Network(network)  # raises ValueError for an unknown id
            object.__setattr__(self, "network", network)
        if not isinstance(self.addr, bytes):
            raise TypeError(f"addr must be bytes, not {type(self.addr).__name__}")
        if len(self.addr) != ADDRESS_LENGTHS[network]:
            raise ValueError(
                f"{network.name} address must be {ADDRESS_LENGTHS[network]} bytes, "
                f"got {len(self.addr)}"
            )
        if not isinstance(self.port, int) or not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port out of range: {self.port!r}")
        if network is Network.IPV6 and (
            self.addr.startswith(_IPV4_IN_IPV6_PREFIX) or self.addr.startswith(_ONIONCAT_PREFIX)
        ):
            raise ValueError("IPv4-mapped and OnionCat addresses belong to IPV4 and TORV2")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def ipv4(cls, text: str, port: int) -> Self:
        """A dotted-quad IPv4 address (a convenience for tests and configuration)."""
        return cls(Network.IPV4, ipaddress.IPv4Address(text).packed, port)

    @classmethod
    def from_v1_bytes(cls, b16: bytes, port: int) -> Self:
        """The address a 16-byte legacy (``addr``/``version``) field describes.

        IPv4-mapped IPv6 becomes IPv4 and OnionCat becomes Tor v2, as Core's
        ``CNetAddr::SetLegacyIPv6`` does; every other value is IPv6. The mapping is one to one,
        so ``to_v1_bytes`` gives the same 16 bytes back.
        """
        if len(b16) != 16:
            raise NetAddressError(f"a v1 address is 16 bytes, got {len(b16)}")
        b16 = bytes(b16)
        if b16.startswith(_IPV4_IN_IPV6_PREFIX):
            return cls(Network.IPV4, b16[12:], port)
        if b16.startswith(_ONIONCAT_PREFIX):
            return cls(Network.TORV2, b16[6:], port)
        return cls(Network.IPV6, b16, port)

    @classmethod
    def parse(cls, text: str, default_port: int, *, cjdns: bool = False) -> Self:
        """Parse ``host``, ``host:port`` or ``[ipv6]:port``; ``default_port`` when none is given.

        Hosts: dotted-quad IPv4, IPv6 (bare, or in brackets when a port follows), a v3 onion
        (56 base32 characters whose version byte is 3 and whose checksum matches) and an I2P
        ``.b32.i2p`` name (52 base32 characters). Base32 and the suffixes are case-insensitive.
        CJDNS addresses are written as IPv6 in fc00::/8: with ``cjdns=True`` such an address is
        taken as CJDNS, otherwise as IPv6 (Core flips them only when CJDNS is reachable). DNS
        names, Tor v2 names, zone ids and explicit ports outside 1‥65535 raise
        :class:`NetAddressError`.
        """
        if not text or not text.isascii() or not text.isprintable() or " " in text:
            raise NetAddressError(f"not an address: {text!r}")
        host, port = _split_host_port(text, default_port)
        lower = host.lower()
        if lower.endswith(".onion"):
            return cls._parse_onion(lower[: -len(".onion")], port)
        if lower.endswith(".b32.i2p"):
            addr = _b32decode(lower[: -len(".b32.i2p")], 32)
            return cls(Network.I2P, addr, port)
        if ":" in host:
            if "%" in host:
                raise NetAddressError(f"zone ids are not supported: {text!r}")
            try:
                packed = ipaddress.IPv6Address(host).packed
            except ValueError:
                raise NetAddressError(f"not an IPv6 address: {host!r}") from None
            address = cls.from_v1_bytes(packed, port)
            if cjdns and address.network is Network.IPV6 and packed[0] == 0xFC:
                return cls(Network.CJDNS, packed, port)
            return address
        try:
            return cls(Network.IPV4, ipaddress.IPv4Address(host).packed, port)
        except ValueError:
            raise NetAddressError(f"not an address: {text!r}") from None

    @classmethod
    def _parse_onion(cls, label: str, port: int) -> Self:
        if len(label) == 16:
            raise NetAddressError("Tor v2 onion addresses are no longer supported")
        if len(label) != 56:
            raise NetAddressError(f"a v3 onion name has 56 characters, got {len(label)}")
        raw = _b32decode(label, 35)
        pubkey, checksum, version = raw[:32], raw[32:34], raw[34:]
        if version != _TORV3_VERSION:
            raise NetAddressError(f"unknown onion address version {version[0]}")
        if checksum != _torv3_checksum(pubkey):
            raise NetAddressError("onion address checksum mismatch")
        return cls(Network.TORV3, pubkey, port)

    # -- wire forms -----------------------------------------------------------------------------

    def is_addr_v1_compatible(self) -> bool:
        """Whether Core would put this address in a v1 ``addr`` message (IPv4 and IPv6 only).

        :meth:`to_v1_bytes` also encodes CJDNS (as its fc00::/8 IPv6 bytes) and Tor v2 (as
        OnionCat), but relaying code should ask this first, as Core's ``IsAddrV1Compatible``.
        """
        return self.network is Network.IPV4 or self.network is Network.IPV6

    def to_v1_bytes(self) -> bytes:
        """The 16-byte legacy form; ``ValueError`` for TORv3 and I2P, which it cannot carry."""
        network = self.network
        if network is Network.IPV4:
            return _IPV4_IN_IPV6_PREFIX + self.addr
        if network is Network.IPV6 or network is Network.CJDNS:
            return self.addr
        if network is Network.TORV2:
            return _ONIONCAT_PREFIX + self.addr
        raise ValueError(f"{network.name} addresses have no v1 (16-byte) form")

    def serialize_v1(self) -> bytes:
        """The v1 wire form: 16 address bytes and the big-endian port (26 bytes with services)."""
        return self.to_v1_bytes() + _PORT_BE.pack(self.port)

    @classmethod
    def read_v1(cls, r: Reader) -> Self:
        b16 = r.read(16)
        return cls.from_v1_bytes(b16, _PORT_BE.unpack(r.read(2))[0])

    def serialize_v2(self) -> bytes:
        """The BIP155 form: network id, compact-size length, address, big-endian port."""
        return (
            bytes((self.network,))
            + compact_size(len(self.addr))
            + self.addr
            + _PORT_BE.pack(self.port)
        )

    @classmethod
    def read_v2(cls, r: Reader) -> Self | None:
        """Read one BIP155 address and port; ``None`` for one that must be skipped.

        Skipped, as Core ignores them: unknown network ids (any length up to 512), Tor v2 (no
        longer supported), and IPv6 payloads that are really IPv4-mapped or OnionCat addresses.
        Errors: a length over 512 (``OversizeError``), a known network with the wrong length
        (:class:`NetAddressError`), truncation.
        """
        net_id = r.u8()
        try:
            size = r.compact_size(MAX_ADDRV2_SIZE)
        except OversizeError as e:
            raise OversizeError(f"BIP155 address too long: {e}") from None
        try:
            network: Network | None = Network(net_id)
        except ValueError:
            network = None  # a network from the future: BIP155 says to skip it
        if network is Network.TORV2:
            network = None  # no longer supported: skipped, as Core does
        if network is not None and size != ADDRESS_LENGTHS[network]:
            raise NetAddressError(
                f"BIP155 {network.name} address with length {size} "
                f"(should be {ADDRESS_LENGTHS[network]})"
            )
        addr = r.read(size)
        port = _PORT_BE.unpack(r.read(2))[0]
        if network is None:
            return None
        if network is Network.IPV6 and (
            addr.startswith(_IPV4_IN_IPV6_PREFIX) or addr.startswith(_ONIONCAT_PREFIX)
        ):
            return None
        return cls(network, addr, port)

    # -- text -----------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address without the port: dotted quad, RFC 5952 IPv6, ``….onion``, ``….b32.i2p``."""
        network = self.network
        if network is Network.IPV4:
            return ".".join(str(b) for b in self.addr)
        if network is Network.IPV6 or network is Network.CJDNS:
            return ipaddress.IPv6Address(self.addr).compressed
        if network is Network.TORV3:
            return _b32encode(self.addr + _torv3_checksum(self.addr) + _TORV3_VERSION) + ".onion"
        if network is Network.TORV2:
            return _b32encode(self.addr) + ".onion"
        return _b32encode(self.addr) + ".b32.i2p"

    def __str__(self) -> str:
        if self.network is Network.IPV6 or self.network is Network.CJDNS:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"NetAddress({self.network.name}, {self})"

    # -- networks -------------------------------------------------------------------------------

    def is_ipv4(self) -> bool:
        return self.network is Network.IPV4

    def is_ipv6(self) -> bool:
        """IPv6 proper: not CJDNS, not an IPv4-mapped address (that is IPv4 here)."""
        return self.network is Network.IPV6

    def is_tor(self) -> bool:
        """A Tor onion service (v3; v2 is recognised but never valid)."""
        return self.network is Network.TORV3 or self.network is Network.TORV2

    def is_i2p(self) -> bool:
        return self.network is Network.I2P

    def is_cjdns(self) -> bool:
        return self.network is Network.CJDNS

    def as_cjdns(self) -> NetAddress:
        """This IPv6 address taken as a CJDNS one (Core's ``MaybeFlipIPv6toCJDNS``, when CJDNS is
        reachable and the address is in fc00::/8); any other address unchanged."""
        if self.network is Network.IPV6 and self.addr[0] == 0xFC:
            return NetAddress(Network.CJDNS, self.addr, self.port)
        return self

    # -- Core's special ranges (src/netaddress.cpp, CNetAddr::IsRFC*) -----------------------------

    def is_rfc1918(self) -> bool:
        """IPv4 private networks: 10/8, 192.168/16, 172.16/12."""
        a = self.addr
        return self.network is Network.IPV4 and (
            a[0] == 10 or (a[0] == 192 and a[1] == 168) or (a[0] == 172 and 16 <= a[1] <= 31)
        )

    def is_rfc2544(self) -> bool:
        """IPv4 inter-network benchmarking: 198.18.0.0/15."""
        a = self.addr
        return self.network is Network.IPV4 and a[0] == 198 and a[1] in (18, 19)

    def is_rfc3927(self) -> bool:
        """IPv4 link-local autoconfiguration: 169.254/16."""
        return self.network is Network.IPV4 and self.addr[:2] == b"\xa9\xfe"

    def is_rfc6598(self) -> bool:
        """IPv4 carrier-grade NAT: 100.64.0.0/10."""
        a = self.addr
        return self.network is Network.IPV4 and a[0] == 100 and 64 <= a[1] <= 127

    def is_rfc5737(self) -> bool:
        """IPv4 documentation: 192.0.2/24, 198.51.100/24, 203.0.113/24."""
        return self.network is Network.IPV4 and self.addr[:3] in (
            b"\xc0\x00\x02",
            b"\xc6\x33\x64",
            b"\xcb\x00\x71",
        )

    def is_rfc3849(self) -> bool:
        """IPv6 documentation: 2001:db8::/32."""
        return self.network is Network.IPV6 and self.addr[:4] == b"\x20\x01\x0d\xb8"

    def is_rfc9637(self) -> bool:
        """IPv6 documentation, the second range: 3fff::/20."""
        a = self.addr
        return self.network is Network.IPV6 and a[:2] == b"\x3f\xff" and (a[2] & 0xF0) == 0

    def is_rfc3964(self) -> bool:
        """IPv6 6to4 tunnelling: 2002::/16."""
        return self.network is Network.IPV6 and self.addr[:2] == b"\x20\x02"

    def is_rfc6052(self) -> bool:
        """IPv6 well-known prefix for IPv4-embedded addresses: 64:ff9b::/96."""
        return self.network is Network.IPV6 and self.addr[:12] == b"\x00\x64\xff\x9b" + bytes(8)

    def is_rfc4380(self) -> bool:
        """IPv6 Teredo tunnelling: 2001::/32."""
        return self.network is Network.IPV6 and self.addr[:4] == b"\x20\x01\x00\x00"

    def is_rfc4862(self) -> bool:
        """IPv6 link-local autoconfiguration: fe80::/64."""
        return self.network is Network.IPV6 and self.addr[:8] == b"\xfe\x80" + bytes(6)

    def is_rfc4193(self) -> bool:
        """IPv6 unique local: fc00::/7 (CJDNS addresses are on their own network, not this)."""
        return self.network is Network.IPV6 and (self.addr[0] & 0xFE) == 0xFC

    def is_rfc6145(self) -> bool:
        """IPv6 IPv4-translated: ::ffff:0:0:0/96."""
        return self.network is Network.IPV6 and self.addr[:12] == bytes(8) + b"\xff\xff\x00\x00"

    def is_rfc4843(self) -> bool:
        """IPv6 ORCHID: 2001:10::/28."""
        a = self.addr
        return self.network is Network.IPV6 and a[:3] == b"\x20\x01\x00" and (a[3] & 0xF0) == 0x10

    def is_rfc7343(self) -> bool:
        """IPv6 ORCHIDv2: 2001:20::/28."""
        a = self.addr
        return self.network is Network.IPV6 and a[:3] == b"\x20\x01\x00" and (a[3] & 0xF0) == 0x20

    def is_he_net(self) -> bool:
        """Hurricane Electric's IPv6 tunnel broker range, 2001:470::/32 (Core groups it by /36)."""
        return self.network is Network.IPV6 and self.addr[:4] == b"\x20\x01\x04\x70"

    # -- validity and reachability --------------------------------------------------------------

    def is_local(self) -> bool:
        """Loopback: IPv4 127/8 and 0/8, IPv6 ::1."""
        if self.network is Network.IPV4:
            return self.addr[0] in (127, 0)
        return self.network is Network.IPV6 and self.addr == _LOCALHOST6

    def is_valid(self) -> bool:
        """Whether this could be a real host (Core's ``IsValid``); routable or not.

        Invalid: IPv6 ``::``, IPv6 documentation (2001:db8::/32, 3fff::/20), IPv4 0.0.0.0 and
        255.255.255.255, CJDNS outside fc00::/8, and every Tor v2 address.
        """
        network = self.network
        if network is Network.IPV4:
            return self.addr not in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff")
        if network is Network.IPV6:
            return self.addr != bytes(16) and not (self.is_rfc3849() or self.is_rfc9637())
        if network is Network.CJDNS:
            return self.addr[0] == 0xFC
        return network is not Network.TORV2

    def is_routable(self) -> bool:
        """Valid and publicly reachable (Core's ``IsRoutable``): not private, link-local,
        shared, documentation, benchmarking, unique-local, ORCHID or loopback."""
        return self.is_valid() and not (
            self.is_rfc1918()
            or self.is_rfc2544()
            or self.is_rfc3927()
            or self.is_rfc4862()
            or self.is_rfc6598()
            or self.is_rfc5737()
            or self.is_rfc4193()
            or self.is_rfc4843()
            or self.is_rfc7343()
            or self.is_local()
        )

    def has_linked_ipv4(self) -> bool:
        """A routable IPv4 address, or an IPv6 one that embeds an IPv4 address (6to4, Teredo,
        RFC 6052, RFC 6145): Core's ``HasLinkedIPv4``."""
        return self.is_routable() and (
            self.network is Network.IPV4
            or self.is_rfc6145()
            or self.is_rfc6052()
            or self.is_rfc3964()
            or self.is_rfc4380()
        )

    def linked_ipv4(self) -> bytes | None:
        """The 4 bytes of the IPv4 address behind this one (Core's ``GetLinkedIPv4``), or None."""
        if not self.has_linked_ipv4():
            return None
        a = self.addr
        if self.network is Network.IPV4:
            return a
        if self.is_rfc6052() or self.is_rfc6145():
            return a[12:]
        if self.is_rfc3964():
            return a[2:6]
        return bytes(b ^ 0xFF for b in a[12:])  # Teredo stores the client address inverted

    def network_class(self) -> Network | None:
        """Core's ``GetNetClass``: None when not routable, IPV4 when an IPv4 address is linked,
        else the network. Address groups and reachability are built on it."""
        if not self.is_routable():
            return None
        if self.has_linked_ipv4():
            return Network.IPV4
        return self.network


def _split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """Split ``host[:port]`` / ``[host]:port``; a bare IPv6 address (two or more colons) has no port.

    As Core's ``SplitHostPort``: any host may be bracketed, and an explicit port must be 1‥65535.
    """
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise NetAddressError(f"unclosed bracket: {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise NetAddressError(f"junk after the address: {text!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    if port_text is None:
        return host, default_port
    if not _PORT.match(port_text) or not 0 < int(port_text) <= 0xFFFF:
        raise NetAddressError(f"bad port: {port_text!r}")  # 0 too, as Core's SplitHostPort
    if not host:
        raise NetAddressError(f"no host: {text!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class TimedAddress:
    """One entry of an ``addr``/``addrv2`` message: when the address was last seen (unix time,
    32 bits), the services it advertised (64 bits), and the address."""

    time: int
    services: int
    address: NetAddress

    def __post_init__(self) -> None:
        if not 0 <= self.time <= 0xFFFFFFFF:
            raise ValueError(f"time out of range: {self.time}")
        if not 0 <= self.services <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"services out of range: {self.services}")
