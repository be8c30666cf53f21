"""Peer permissions: ``-whitelist=[permissions@]<IP|CIDR>`` and ``-whitebind=[permissions@]addr:port``
(Bitcoin Core's ``net_permissions``).

Layer L2 (``peercash.p2p``). Pure: parsing and set arithmetic, no I/O. The connection manager
gives every peer its flags when it connects (a ``-whitebind`` listener's, plus those of every
``-whitelist`` range holding the peer's address, for its direction); the rest of the node reads
``peer.permissions`` with :func:`has_permission`.

The names, as Core spells them (``getpeerinfo``'s ``permissions`` lists them in this order):

* ``bloomfilter`` (or ``bloom``): BIP37 filters (we offer none; only shown);
* ``noban``: never discouraged, banned or evicted, and transaction announcements go out at
  once instead of at the Poisson trickle times; implies ``download``;
* ``forcerelay``: transactions from this peer are relayed again even when already in our pool;
  we send it no ``feefilter``; implies ``relay``;
* ``relay``: its transactions are accepted in ``-blocksonly`` mode, and its announcements are
  not limited (count, in-flight delay);
* ``mempool``: it may send ``mempool`` (BIP35);
* ``download``: it may download even past an upload target, and gets headers while our chain
  has too little work;
* ``addr``: its addresses are not rate-limited;
* ``all``: every one of them.

A value without ``@`` grants Core's *implicit* permissions: ``noban``, ``mempool`` (hence
``download``), plus ``relay`` unless ``-whitelistrelay=0`` and ``forcerelay`` with
``-whitelistforcerelay``. ``in`` and ``out`` (whitelist only) choose the direction a range
applies to; ``in`` is the default. Errors are :class:`PermissionParseError` with Core's message.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntFlag

from .banman import SubNet
from .netaddress import NetAddress

__all__ = [
    "NetPermissions",
    "PermissionParseError",
    "Permissions",
    "Whitebind",
    "Whitelist",
    "has_permission",
    "parse_whitebind",
    "parse_whitelist",
    "permission_names",
    "resolve_implicit",
]


class NetPermissions(IntFlag):
    """Core's ``NetPermissionFlags`` (the same bits: ``noban`` includes ``download``,
    ``forcerelay`` includes ``relay``)."""

    NONE = 0
    BLOOMFILTER = 1 << 1
    RELAY = 1 << 3
    FORCERELAY = (1 << 2) | (1 << 3)
    DOWNLOAD = 1 << 6
    NOBAN = (1 << 4) | (1 << 6)
    MEMPOOL = 1 << 5
    ADDR = 1 << 7
    IMPLICIT = 1 << 31
    """Not a permission: "the caller applies the implicit ones" (a value without ``@``)."""
    ALL = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7)


_BY_NAME = {
    "bloomfilter": NetPermissions.BLOOMFILTER,
    "bloom": NetPermissions.BLOOMFILTER,
    "noban": NetPermissions.NOBAN,
    "forcerelay": NetPermissions.FORCERELAY,
    "mempool": NetPermissions.MEMPOOL,
    "download": NetPermissions.DOWNLOAD,
    "all": NetPermissions.ALL,
    "relay": NetPermissions.RELAY,
    "addr": NetPermissions.ADDR,
}
_SHOWN = (
    ("bloomfilter", NetPermissions.BLOOMFILTER),
    ("noban", NetPermissions.NOBAN),
    ("forcerelay", NetPermissions.FORCERELAY),
    ("relay", NetPermissions.RELAY),
    ("mempool", NetPermissions.MEMPOOL),
    ("download", NetPermissions.DOWNLOAD),
    ("addr", NetPermissions.ADDR),
)


class PermissionParseError(ValueError):
    """A ``-whitelist`` or ``-whitebind`` value Core refuses; the message is Core's."""


def has_permission(flags: int, wanted: NetPermissions) -> bool:
    """Core's ``HasFlag``: every bit of ``wanted`` is set (``noban`` needs ``download`` too)."""
    return int(flags) & int(wanted) == int(wanted)


def permission_names(flags: int) -> list[str]:
    """``getpeerinfo``'s ``permissions`` (Core's ``NetPermissions::ToStrings``)."""
    return [name for name, f in _SHOWN if has_permission(flags, f)]


def resolve_implicit(flags: int, *, whitelist_relay: bool, whitelist_forcerelay: bool) -> int:
    """Replace the implicit marker by what it stands for (Core's
    ``AddWhitelistPermissionFlags``): ``noban`` and ``mempool``, ``relay`` with
    ``-whitelistrelay`` (on by default), ``forcerelay`` with ``-whitelistforcerelay``."""
    if not flags & NetPermissions.IMPLICIT:
        return flags
    out = flags & ~NetPermissions.IMPLICIT
    if whitelist_forcerelay:
        out |= NetPermissions.FORCERELAY
    if whitelist_relay:
        out |= NetPermissions.RELAY
    return int(out | NetPermissions.MEMPOOL | NetPermissions.NOBAN)


def _parse_flags(text: str, *, allow_out: bool) -> tuple[int, bool, bool, str]:
    """``perm1,perm2@rest`` -> (flags, inbound, outbound, rest) (Core's
    ``TryParsePermissionFlags``)."""
    at = text.find("@")
    inbound = outbound = False
    if at < 0:
        flags = int(NetPermissions.IMPLICIT)
        rest = text
    else:
        flags = 0
        for name in text[:at].split(","):
            if name in _BY_NAME:
                flags |= _BY_NAME[name]
            elif name == "in":
                inbound = True
            elif name == "out":
                if not allow_out:
                    raise PermissionParseError(
                        'whitebind may only be used for incoming connections ("out" was passed)'
                    )
                outbound = True
            elif name:
                raise PermissionParseError(f"Invalid P2P permission: '{name}'")
        rest = text[at + 1 :]
    if not inbound and not outbound:
        inbound = True  # by default a range applies to incoming connections
    elif flags == 0:
        raise PermissionParseError(f"Only direction was set, no permissions: '{text}'")
    return flags, inbound, outbound, rest


@dataclass(frozen=True, slots=True)
class Whitelist:
    """One ``-whitelist`` value: a range, its flags, and the directions it applies to."""

    subnet: SubNet
    flags: int
    inbound: bool
    outbound: bool


@dataclass(frozen=True, slots=True)
class Whitebind:
    """One ``-whitebind`` value: where to listen, and the flags of who connects there."""

    host: str
    port: int
    flags: int


def parse_whitelist(text: str) -> Whitelist:
    flags, inbound, outbound, net = _parse_flags(text, allow_out=True)
    try:
        subnet = SubNet.parse(net)
        if subnet.ip is None:
            raise ValueError(net)
    except ValueError:
        raise PermissionParseError(f"Invalid netmask specified in -whitelist: '{net}'") from None
    return Whitelist(subnet, flags, inbound, outbound)


def parse_whitebind(text: str) -> Whitebind:
    flags, _, _, where = _parse_flags(text, allow_out=False)
    host, port_text = where, ""
    if where.startswith("["):
        end = where.find("]")
        if end > 0:
            host, rest = where[1:end], where[end + 1 :]
            port_text = rest[1:] if rest.startswith(":") else rest
    elif where.count(":") == 1:
        host, port_text = where.split(":")
    try:
        ipaddress.ip_address(host)  # numeric only: Core looks it up without DNS
        if port_text and (not port_text.isdigit() or int(port_text) > 0xFFFF):
            raise ValueError(port_text)
    except ValueError:
        raise PermissionParseError(f"Cannot resolve -whitebind address: '{where}'") from None
    port = int(port_text) if port_text else 0
    if port == 0:
        raise PermissionParseError(f"Need to specify a port with -whitebind: '{where}'")
    return Whitebind(host, port, flags)


@dataclass(frozen=True)
class Permissions:
    """The node's ranges and how implicit permissions resolve: what a peer gets."""

    whitelist: tuple[Whitelist, ...] = ()
    whitelist_relay: bool = True
    whitelist_forcerelay: bool = False

    @classmethod
    def parse(
        cls,
        values: tuple[str, ...] | list[str],
        *,
        whitelist_relay: bool = True,
        whitelist_forcerelay: bool = False,
    ) -> Permissions:
        """From ``-whitelist`` values; the first bad one raises :class:`PermissionParseError`."""
        return cls(tuple(parse_whitelist(v) for v in values), whitelist_relay,
                   whitelist_forcerelay)  # fmt: skip

    def for_peer(self, address: NetAddress, *, inbound: bool, bind_flags: int = 0) -> int:
        """The flags of a peer at ``address``: its listener's (inbound) plus every matching
        range for its direction, implicit ones resolved."""
        flags = bind_flags if inbound else 0
        for w in self.whitelist:
            if (w.inbound if inbound else w.outbound) and w.subnet.contains(address):
                flags |= w.flags
        return resolve_implicit(
            flags,
            whitelist_relay=self.whitelist_relay,
            whitelist_forcerelay=self.whitelist_forcerelay,
        )
