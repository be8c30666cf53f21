"""Manual bans and discouragement: who may not connect to us, and who is the first to go.

Layer L2 (``peercash.p2p``). Callers: the connection manager (is an inbound address banned or
discouraged; discourage a misbehaving peer) and the ``setban``/``listbanned``/``clearbanned``
RPCs (through the connection manager's thread-safe calls).

Two mechanisms, as in Bitcoin Core (``src/banman.cpp``):

* **Bans** are manual: an address or a subnet, until a time. They are kept in
  ``<datadir>/banlist.json`` in Core's format (``{"banned_nets": [{"version": 1,
  "ban_created": …, "banned_until": …, "address": "1.2.3.0/24"}]}``; we add a ``reason`` key,
  which Core ignores), written atomically after every change. A file that cannot be read or
  parsed is moved aside (``banlist.json.bad``) with a warning and the node starts with no bans:
  a bad file is never fatal. Expired bans are dropped whenever the list is looked at. A banned
  address cannot connect to us at all.
* **Discouragement** is automatic and forgetful: a misbehaving peer's address goes into a
  bounded, in-memory set (the 50,000 most recent, like Core's rolling bloom filter but exact).
  A discouraged address may still connect inbound while slots are free, and such a peer is the
  first evicted when they are not. Nothing of it is persisted.

Subnets: IPv4 and IPv6 (and CJDNS, which is IPv6 in ``fc00::/8``) take a prefix length or, for
IPv4, a netmask; an address on another network (Tor, I2P) is banned exactly. Text follows Core:
``1.2.3.4/32``, ``1.2.3.0/24``, ``2001:db8::/32``, and an onion name without a suffix.

Error contract: ``SubNet.parse`` raises ``ValueError`` for text that is no address or subnet.
Concurrency: not thread-safe; used from the event loop thread only.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peercash.atomicfile import write_atomic
from peercash.p2p.netaddress import NetAddress, NetAddressError, Network

__all__ = [
    "BANLIST_FILE",
    "DEFAULT_BAN_TIME",
    "DISCOURAGED_CAPACITY",
    "BanEntry",
    "BanMan",
    "SubNet",
]

log = logging.getLogger(__name__)

BANLIST_FILE = "banlist.json"
DEFAULT_BAN_TIME = 24 * 60 * 60
"""Seconds a ban lasts when no time is given (Core's ``-bantime`` default)."""
DISCOURAGED_CAPACITY = 50_000
"""Addresses remembered as discouraged (Core's rolling filter holds 50,000)."""
BAN_ENTRY_VERSION = 1
_JSON_KEY = "banned_nets"

_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _no_port(addr: NetAddress) -> NetAddress:
    return NetAddress(addr.network, addr.addr, 0)


@dataclass(frozen=True, slots=True)
class SubNet:
    """An IP network (``ip`` set), or one address on a non-IP network (``exact`` set)."""

    ip: _IPNetwork | None = None
    exact: NetAddress | None = None

    def __post_init__(self) -> None:
        if (self.ip is None) == (self.exact is None):
            raise ValueError("a subnet is an IP network or one address")

    @classmethod
    def parse(cls, text: str) -> SubNet:
        """``1.2.3.4``, ``1.2.3.0/24``, ``1.2.3.0/255.255.255.0``, ``2001:db8::/32``, ``::1``,
        a v3 onion or an I2P name. ``ValueError`` otherwise."""
        t = text.strip()
        if not t:
            raise ValueError("empty subnet")
        lowered = t.lower()
        if lowered.endswith(".onion") or lowered.endswith(".b32.i2p"):
            try:
                return cls(exact=_no_port(NetAddress.parse(t, 0)))
            except NetAddressError as e:
                raise ValueError(str(e)) from None
        try:
            net = ipaddress.ip_network(t.strip("[]"), strict=False)
        except ValueError:
            raise ValueError(f"invalid IP/subnet {text!r}") from None
        if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped:
            # ::ffff:a.b.c.d/n is an IPv4 subnet (we store IPv4 addresses as IPv4).
            mapped = net.network_address.ipv4_mapped
            prefix = max(net.prefixlen - 96, 0)
            net = ipaddress.ip_network(f"{mapped}/{prefix}", strict=False)
        return cls(ip=net)

    @classmethod
    def single(cls, addr: NetAddress) -> SubNet:
        """The subnet holding exactly ``addr`` (any port)."""
        if addr.network is Network.IPV4:
            return cls(ip=ipaddress.IPv4Network((addr.addr, 32)))
        if addr.network in (Network.IPV6, Network.CJDNS):
            return cls(ip=ipaddress.IPv6Network((addr.addr, 128)))
        return cls(exact=_no_port(addr))

    def contains(self, addr: NetAddress) -> bool:
        """Whether ``addr`` (its port is ignored) lies in this subnet."""
        if self.exact is not None:
            return addr.network == self.exact.network and addr.addr == self.exact.addr
        assert self.ip is not None
        if addr.network is Network.IPV4:
            return self.ip.version == 4 and ipaddress.IPv4Address(addr.addr) in self.ip
        if addr.network in (Network.IPV6, Network.CJDNS):
            return self.ip.version == 6 and ipaddress.IPv6Address(addr.addr) in self.ip
        return False

    def __str__(self) -> str:
        if self.exact is not None:
            return self.exact.host
        assert self.ip is not None
        return self.ip.with_prefixlen

    def sort_key(self) -> tuple[int, bytes, int]:
        """Address order (IPv4 before IPv6 before the rest), as Core's ban map is ordered."""
        if self.exact is not None:
            return (10 + int(self.exact.network), self.exact.addr, 0)
        assert self.ip is not None
        return (self.ip.version, self.ip.network_address.packed, self.ip.prefixlen)

    @property
    def is_single(self) -> bool:
        return self.exact is not None or (
            self.ip is not None and self.ip.prefixlen == self.ip.max_prefixlen
        )


@dataclass(frozen=True, slots=True)
class BanEntry:
    """One ban: the subnet, when it was made, until when it holds (UNIX seconds), and why."""

    subnet: SubNet
    created: int
    until: int
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": BAN_ENTRY_VERSION,
            "ban_created": self.created,
            "banned_until": self.until,
            "address": str(self.subnet),
            "reason": self.reason,
        }


def _set_aside(path: Path) -> Path | None:
    for n in range(100):
        aside = path.with_name(path.name + (".bad" if n == 0 else f".bad.{n}"))
        if aside.exists():
            continue
        try:
            os.replace(path, aside)
        except OSError:
            return None
        return aside
    return None


class BanMan:
    """Bans (persisted in ``path`` when given) and discouragement (memory only)."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        default_ban_time: int = DEFAULT_BAN_TIME,
        discouraged_capacity: int = DISCOURAGED_CAPACITY,
    ) -> None:
        self.path = path
        self._clock = clock
        self.default_ban_time = default_ban_time
        self._bans: dict[SubNet, BanEntry] = {}
        self._discouraged: OrderedDict[tuple[Network, bytes], None] = OrderedDict()
        self._capacity = discouraged_capacity
        if path is not None:
            self._load(path)

    def _now(self) -> int:
        return int(self._clock())

    # -- bans -----------------------------------------------------------------------------------

    def ban(self, subnet: SubNet | NetAddress, until: int | None = None, reason: str = "") -> bool:
        """Ban ``subnet`` until ``until`` (UNIX seconds; default: now + the default ban time).
        An existing ban of the same subnet is only ever lengthened. Returns whether anything
        changed (and was saved)."""
        sub = subnet if isinstance(subnet, SubNet) else SubNet.single(subnet)
        now = self._now()
        end = now + self.default_ban_time if until is None else int(until)
        old = self._bans.get(sub)
        if old is not None and old.until >= end:
            return False
        self._bans[sub] = BanEntry(sub, now, end, reason)
        log.info("banned %s until %d%s", sub, end, f" ({reason})" if reason else "")
        self._save()
        return True

    def unban(self, subnet: SubNet | NetAddress) -> bool:
        """Lift the ban of exactly ``subnet``; False if there was none."""
        sub = subnet if isinstance(subnet, SubNet) else SubNet.single(subnet)
        self._sweep()
        if self._bans.pop(sub, None) is None:
            return False
        log.info("unbanned %s", sub)
        self._save()
        return True

    def clear(self) -> None:
        """Lift every ban (discouragement is kept, as Core's ``clearbanned`` keeps it)."""
        self._bans.clear()
        self._save()

    def is_banned(self, addr: NetAddress) -> bool:
        now = self._now()
        return any(e.until > now and e.subnet.contains(addr) for e in self._bans.values())

    def is_subnet_banned(self, subnet: SubNet) -> bool:
        self._sweep()
        return subnet in self._bans

    def list(self) -> list[BanEntry]:
        """Current bans in address order (as Core lists them)."""
        self._sweep()
        return sorted(self._bans.values(), key=lambda e: e.subnet.sort_key())

    def _sweep(self) -> None:
        now = self._now()
        expired = [s for s, e in self._bans.items() if e.until <= now]
        for s in expired:
            del self._bans[s]
            log.debug("ban of %s expired", s)
        if expired:
            self._save()

    # -- discouragement -------------------------------------------------------------------------

    def discourage(self, addr: NetAddress) -> None:
        key = (addr.network, addr.addr)
        self._discouraged[key] = None
        self._discouraged.move_to_end(key)
        while len(self._discouraged) > self._capacity:
            self._discouraged.popitem(last=False)

    def is_discouraged(self, addr: NetAddress) -> bool:
        return (addr.network, addr.addr) in self._discouraged

    def clear_discouraged(self) -> None:
        self._discouraged.clear()

    # -- persistence ----------------------------------------------------------------------------

    def _save(self) -> None:
        if self.path is None:
            return
        doc = {_JSON_KEY: [e.to_json() for e in self._bans.values()]}
        try:
            write_atomic(self.path, (json.dumps(doc, indent=4) + "\n").encode())
        except OSError as e:
            log.warning("cannot write %s: %s", self.path, e)

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as e:
            self._bad_file(path, str(e))
            return
        try:
            doc = json.loads(text)
            entries = doc[_JSON_KEY]
            if not isinstance(entries, list):
                raise ValueError(f"{_JSON_KEY} is not a list")
            loaded: dict[SubNet, BanEntry] = {}
            for item in entries:
                sub = SubNet.parse(str(item["address"]))
                created, until = item["ban_created"], item["banned_until"]
                if not isinstance(created, int) or not isinstance(until, int):
                    raise ValueError("ban times must be integers")
                loaded[sub] = BanEntry(sub, created, until, str(item.get("reason", "")))
        except (ValueError, KeyError, TypeError) as e:
            self._bad_file(path, str(e))
            return
        self._bans = loaded
        log.debug("loaded %d bans from %s", len(loaded), path)
        self._sweep()

    def _bad_file(self, path: Path, why: str) -> None:
        aside = _set_aside(path)
        where = f"moved to {aside.name}" if aside is not None else "could not be moved aside"
        log.warning("%s is unusable (%s); %s, starting with no bans", path, why, where)
