"""Network groups: the unit of "one operator could plausibly control all of these".

Layer L2 (``peercash.p2p``); pure functions over ``NetAddress``, no I/O, no state, safe from any
thread. Callers: the address manager (bucket placement) and connection management (one outbound
peer per group).

A group is a short byte string whose first byte is the address's *class* and whose rest is a
prefix of the address. Two addresses share a group when an attacker who holds one can cheaply
get the other: the same IPv4 /16, the same IPv6 /32 (/36 inside Hurricane Electric's tunnel-broker
/32, where one customer gets a /48), and so on. The rules are those of Bitcoin Core's
``NetGroupManager::GetGroup`` without an ASMap, so our groups are byte-for-byte Core's (which lets
us check our bucket placement against Core's published test values):

* local (loopback, ``0.0.0.0/8``) and every other unroutable address: the one group ``00``;
* IPv4, and routable IPv6 forms that carry an IPv4 address (SIIT ``::ffff:0:0:0/96``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``; an IPv4-mapped address is IPv4
  already, see ``netaddress``): the IPv4 /16, class ``01``;
* other IPv6: the /32 (or /36 for ``2001:470::/32``), class ``02``;
* Tor and I2P: the first 4 bits of the (random-looking) address, classes ``03`` and ``04``;
* CJDNS: the first 12 bits (the first byte is always ``fc``), class ``05``.

A partial last byte keeps its leading bits and has the rest set to 1, as Core does.
"""

from __future__ import annotations

from peercash.p2p.netaddress import NetAddress, Network

# The class byte opening each group: Core's ``enum Network`` values, which differ from the BIP155
# network ids of ``Network`` (Core has no separate Tor v2, and numbers I2P and CJDNS down by one).
CLASS_UNROUTABLE = 0
CLASS_IPV4 = 1
CLASS_IPV6 = 2
CLASS_ONION = 3
CLASS_I2P = 4
CLASS_CJDNS = 5

# The class byte of each network (Tor v2 and v3 share Core's one onion class).
CLASS_OF_NETWORK: dict[Network, int] = {
    Network.IPV4: CLASS_IPV4,
    Network.IPV6: CLASS_IPV6,
    Network.TORV2: CLASS_ONION,
    Network.TORV3: CLASS_ONION,
    Network.I2P: CLASS_I2P,
    Network.CJDNS: CLASS_CJDNS,
}


def net_class(addr: NetAddress) -> int:
    """Core's ``GetNetClass`` as a class byte: unroutable, IPv4 (also for an IPv6 address that
    carries one), or the address's own network."""
    cls = addr.network_class()
    return CLASS_UNROUTABLE if cls is None else CLASS_OF_NETWORK[cls]


def _prefix(data: bytes, bits: int) -> bytes:
    """The first ``bits`` bits of ``data``, a partial last byte padded with 1 bits (Core's way)."""
    whole, rest = divmod(bits, 8)
    out = data[:whole]
    if rest:
        out += bytes([data[whole] | ((1 << (8 - rest)) - 1)])
    return out


def network_group(addr: NetAddress) -> bytes:
    """The group of ``addr`` (see the module docstring); the port plays no part."""
    if addr.is_local() or not addr.is_routable():
        return bytes([CLASS_UNROUTABLE])
    ipv4 = addr.linked_ipv4()
    if ipv4 is not None:
        return bytes([CLASS_IPV4]) + ipv4[:2]
    network = addr.network
    if network in (Network.TORV2, Network.TORV3, Network.I2P):
        bits = 4
    elif network is Network.CJDNS:
        bits = 12
    elif addr.is_he_net():
        bits = 36
    else:
        bits = 32
    return bytes([CLASS_OF_NETWORK[network]]) + _prefix(addr.addr, bits)


def is_privacy_network(addr: NetAddress) -> bool:
    """Tor, I2P or CJDNS: their groups are random bits of a key, not a route or an operator."""
    return addr.network in (Network.TORV2, Network.TORV3, Network.I2P, Network.CJDNS)


def outbound_group(addr: NetAddress) -> bytes | None:
    """The group an outbound connection to ``addr`` occupies, or None for privacy networks.

    Core keeps its outbound IPv4/IPv6 peers in distinct groups but does not try for diversity on
    Tor, I2P and CJDNS (their groups say nothing about the route or the difficulty of getting
    many addresses), so those peers occupy no group.
    """
    if is_privacy_network(addr):
        return None
    return network_group(addr)
