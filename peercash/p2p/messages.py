"""The P2P messages: one immutable, slotted class per message, one ``encode``/``decode`` pair each.

Protocol version 70016 (Core's ``PROTOCOL_VERSION``), and every message a 70015 peer (bcoin)
sends. ``decode_message(command, payload)`` looks the command up in :data:`MESSAGE_TYPES` and
returns the message, or ``None`` for a command we do not know — unknown messages are ignored, as
Core ignores them. That includes ``reject`` (BIP61, removed from Core in 0.20: we parse nothing
of it), ``alert``, the BIP37 filter messages and BIP157's; nothing here refuses them.

Decoding is strict and bounded (DESIGN habit 2): every count is checked against its limit and
against what is left of the payload before anything is allocated for it; compact sizes must be
canonical; trailing bytes are an error; each field must be in its type's range on encode and on
decode. A payload never exceeds the framing limit (``codec.MAX_PROTOCOL_MESSAGE_LENGTH``, 4 MB),
which the codec enforces before a payload is buffered. Errors from ``decode`` are
``DecodeError`` subclasses; ``decode_message`` wraps them in :class:`MessageError`, which carries
the command. Building a message from out-of-range fields raises ``ValueError``.

Limits are Bitcoin Core's (each constant names where it comes from). Where we are stricter than
Core, we say so: Core leaves bytes after the end of any message unread, ignores the transaction
count after each header in ``headers``, reads any non-zero byte as ``true``, and only logs a
``pong`` too short for its nonce; we refuse trailing bytes, require a zero count and a 0 or 1
byte, and require the nonce. (No implementation we know sends otherwise.)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, overload

from peercash.consensus.errors import DecodeError
from peercash.consensus.primitives import MAX_MONEY, Block, Header, Tx
from peercash.consensus.serialize import (
    Reader,
    compact_size,
    pack_i32,
    pack_i64,
    pack_u32,
    pack_u64,
)

from .netaddress import NetAddress, Network, TimedAddress

# -- protocol versions (Core: src/node/protocol_version.h) ----------------------------------------

PROTOCOL_VERSION = 70016
"""The version we speak (``static const int PROTOCOL_VERSION = 70016;``)."""
INIT_PROTO_VERSION = 209
"""The version messages are serialized with until the handshake settles one (Core's)."""
MIN_PEER_PROTO_VERSION = 31800
"""Disconnect peers older than this (``static const int MIN_PEER_PROTO_VERSION = 31800;``)."""
BIP0031_VERSION = 60000
"""``pong`` exists for versions after this one (BIP31)."""
SENDHEADERS_VERSION = 70012
"""``sendheaders`` and header announcements start with this version (BIP130)."""
FEEFILTER_VERSION = 70013
"""``feefilter`` starts with this version (BIP133)."""
SHORT_IDS_BLOCKS_VERSION = 70014
"""Compact blocks start with this version (BIP152)."""
INVALID_CB_NO_BAN_VERSION = 70015
"""Peers at or above this version are not banned for an invalid compact block."""
WTXID_RELAY_VERSION = 70016
"""``wtxidrelay`` starts with this version (BIP339)."""

# -- service bits (Core: src/protocol.h, enum ServiceFlags) ----------------------------------------

NODE_NONE = 0
NODE_NETWORK = 1 << 0
"""Serves the whole block chain (unpruned)."""
NODE_BLOOM = 1 << 2
"""Serves BIP37 bloom-filtered connections."""
NODE_WITNESS = 1 << 3
"""Serves blocks and transactions with witness data (BIP144)."""
NODE_COMPACT_FILTERS = 1 << 6
"""Serves BIP157/158 compact block filters."""
NODE_NETWORK_LIMITED = 1 << 10
"""Serves at least the last 288 blocks (BIP159): what a pruned node advertises."""
NODE_P2P_V2 = 1 << 11
"""Speaks the BIP324 encrypted transport."""


def local_services(*, pruned: bool = False) -> int:
    """The services a node like ours advertises in ``version``, as Core chooses them: witness
    data and at least the last 288 blocks always (NODE_WITNESS | NODE_NETWORK_LIMITED), the whole
    chain unless pruned (NODE_NETWORK). No NODE_BLOOM, no compact filters, no BIP324 (yet)."""
    services = NODE_WITNESS | NODE_NETWORK_LIMITED
    return services if pruned else services | NODE_NETWORK


# -- limits -------------------------------------------------------------------------------------

MAX_INV_SZ = 50_000
"""Entries in an ``inv``/``getdata`` (src/net_processing.cpp: ``static const unsigned int
MAX_INV_SZ = 50000;``). We apply it to ``notfound`` too: Core never sends more."""
MAX_HEADERS_RESULTS = 2_000
"""Headers in one ``headers`` message (src/net_processing.h: ``static const unsigned int
MAX_HEADERS_RESULTS = 2000;``)."""
MAX_ADDR_TO_SEND = 1_000
"""Entries in an ``addr``/``addrv2`` (src/net_processing.cpp: ``static constexpr size_t
MAX_ADDR_TO_SEND{1000};``, the bound ``ProcessMessage`` checks both messages against)."""
MAX_LOCATOR_SZ = 101
"""Hashes in a ``getheaders``/``getblocks`` locator (src/net_processing.cpp: ``static const
unsigned int MAX_LOCATOR_SZ = 101;``; Core disconnects a peer that sends more)."""
MAX_SUBVERSION_LENGTH = 256
"""Bytes of ``version``'s user agent (src/net.h: ``static const unsigned int
MAX_SUBVERSION_LENGTH = 256;``, read with ``LIMITED_STRING``)."""
SHORTTXIDS_LENGTH = 6
"""Bytes of a BIP152 short transaction id (src/blockencodings.h)."""
MAX_COMPACT_TX_INDEX = 0xFFFF
"""BIP152 transaction indexes are 16-bit: a compact block describes at most 65,535
transactions (src/blockencodings.h: "indexes overflowed 16 bits", DifferenceFormatter's
"differential value overflow")."""
CMPCTBLOCKS_VERSION = 2
"""The compact-block version ``sendcmpct`` negotiates for segwit (src/net_processing.cpp)."""

_MIN_TX_SIZE = 10  # version + two empty counts + lock time
_U64_MAX = 0xFFFFFFFFFFFFFFFF


class MessageError(DecodeError):
    """A payload that does not decode as the message its command names.

    ``command`` is the command (bytes, without NUL padding); ``error`` is the underlying
    ``DecodeError`` (``TruncatedError``, ``TrailingBytesError``, ``NonCanonicalError``,
    ``OversizeError``, :class:`InvalidFieldError`, ``NetAddressError``), also ``__cause__``.
    """

    def __init__(self, command: bytes, error: DecodeError) -> None:
        super().__init__(f"{command.decode('ascii', 'replace')}: {error}")
        self.command = command
        self.error = error


class InvalidFieldError(DecodeError):
    """A field encoded correctly but holding a value the protocol forbids (a boolean byte other
    than 0 or 1, a transaction count after a header, a compact-block index out of place)."""


# -- field checks for building messages (ValueError: a programming error) ----------------------


def _check_range(name: str, value: object, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} out of range [{lo}, {hi}]: {value!r}")


def _check_hash(name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")


def _check_count(name: str, items: Sequence[object], limit: int) -> None:
    if not isinstance(items, tuple | InvItems):
        raise TypeError(f"{name} must be a tuple")
    if len(items) > limit:
        raise ValueError(f"{len(items)} {name}, more than {limit}")


def _read_bool(r: Reader) -> bool:
    b = r.u8()
    if b > 1:
        raise InvalidFieldError(f"boolean byte {b}, not 0 or 1")
    return b == 1


def _read_hash(r: Reader) -> bytes:
    return r.read(32)


# -- the base -----------------------------------------------------------------------------------


class Message:
    """A P2P message: ``command`` names it on the wire, ``encode`` gives its payload and
    ``decode`` reads exactly one payload (raising ``DecodeError`` subclasses)."""

    __slots__ = ()
    command: ClassVar[bytes]

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        raise NotImplementedError


class _EmptyMessage(Message):
    """A message whose payload is empty; any byte in it is an error."""

    __slots__ = ()

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        Reader(payload).expect_end()
        return cls()


# -- handshake ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionAddress:
    """An address in ``version``: services, then the v1 address and port (26 bytes, no time).

    Only IPv4 and IPv6 fit (and Tor v2 as OnionCat, CJDNS as IPv6); for a peer on another network
    send :data:`NULL_VERSION_ADDRESS`, as Core sends an empty ``CService``.
    """

    services: int
    address: NetAddress

    def __post_init__(self) -> None:
        _check_range("services", self.services, 0, _U64_MAX)
        if self.address.network not in (Network.IPV4, Network.IPV6, Network.TORV2):
            raise ValueError(f"{self.address.network.name} has no form in a version message")

    def encode(self) -> bytes:
        return pack_u64(self.services) + self.address.serialize_v1()

    @classmethod
    def read(cls, r: Reader) -> Self:
        services = r.u64()
        return cls(services, NetAddress.read_v1(r))


NULL_VERSION_ADDRESS = VersionAddress(NODE_NONE, NetAddress(Network.IPV6, bytes(16), 0))
"""No services, ``[::]:0``: what to put in ``version`` when the address has no v1 form."""


@dataclass(frozen=True, slots=True)
class Version(Message):
    """``version``: the first message each side sends.

    Fields in wire order: protocol ``version`` (int32), ``services`` (uint64), ``timestamp``
    (int64, unix seconds), ``addr_recv`` (the address the sender sees us at), ``addr_from`` (the
    sender's, which Core ignores), ``nonce`` (uint64, detects connections to ourselves),
    ``user_agent`` (at most 256 bytes; kept as text with undecodable bytes escaped, so any
    bytes round-trip), ``start_height`` (int32) and ``relay`` (BIP37: whether to announce
    transactions before a filter is loaded).

    The relay byte is absent in versions before 70001; such a message decodes with
    ``relay=True``, as in Core (and re-encodes with the byte). Everything before it is required
    (Core also accepts a message cut off after ``addr_recv``; no peer of version 209 or later
    sends one).
    """

    command: ClassVar[bytes] = b"version"
    version: int
    services: int
    timestamp: int
    addr_recv: VersionAddress
    addr_from: VersionAddress
    nonce: int
    user_agent: str
    start_height: int
    relay: bool = True

    def __post_init__(self) -> None:
        _check_range("version", self.version, -(2**31), 2**31 - 1)
        _check_range("services", self.services, 0, _U64_MAX)
        _check_range("timestamp", self.timestamp, -(2**63), 2**63 - 1)
        _check_range("nonce", self.nonce, 0, _U64_MAX)
        _check_range("start_height", self.start_height, -(2**31), 2**31 - 1)
        if len(self.user_agent_bytes()) > MAX_SUBVERSION_LENGTH:
            raise ValueError(f"user agent over {MAX_SUBVERSION_LENGTH} bytes")
        if not isinstance(self.relay, bool):
            raise ValueError("relay must be a bool")

    def user_agent_bytes(self) -> bytes:
        return self.user_agent.encode("utf-8", "surrogateescape")

    def encode(self) -> bytes:
        ua = self.user_agent_bytes()
        return b"".join(
            (
                pack_i32(self.version),
                pack_u64(self.services),
                pack_i64(self.timestamp),
                self.addr_recv.encode(),
                self.addr_from.encode(),
                pack_u64(self.nonce),
                compact_size(len(ua)),
                ua,
                pack_i32(self.start_height),
                b"\x01" if self.relay else b"\x00",
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        version = r.i32()
        services = r.u64()
        timestamp = r.i64()
        addr_recv = VersionAddress.read(r)
        addr_from = VersionAddress.read(r)
        nonce = r.u64()
        ua = r.var_bytes(MAX_SUBVERSION_LENGTH)
        start_height = r.i32()
        relay = _read_bool(r) if r.remaining() else True
        r.expect_end()
        user_agent = ua.decode("utf-8", "surrogateescape")
        return cls(
            version,
            services,
            timestamp,
            addr_recv,
            addr_from,
            nonce,
            user_agent,
            start_height,
            relay,
        )


@dataclass(frozen=True, slots=True)
class Verack(_EmptyMessage):
    """``verack``: the handshake is done on the sender's side."""

    command: ClassVar[bytes] = b"verack"


@dataclass(frozen=True, slots=True)
class WtxidRelay(_EmptyMessage):
    """``wtxidrelay`` (BIP339): announce transactions by wtxid. Sent between ``version`` and
    ``verack``, and only to peers of version 70016 or later."""

    command: ClassVar[bytes] = b"wtxidrelay"


@dataclass(frozen=True, slots=True)
class SendAddrV2(_EmptyMessage):
    """``sendaddrv2`` (BIP155): send addresses as ``addrv2``. Sent between ``version`` and
    ``verack``."""

    command: ClassVar[bytes] = b"sendaddrv2"


@dataclass(frozen=True, slots=True)
class Ping(Message):
    """``ping`` with its 64-bit nonce (BIP31), which the ``pong`` echoes."""

    command: ClassVar[bytes] = b"ping"
    nonce: int

    def __post_init__(self) -> None:
        _check_range("nonce", self.nonce, 0, _U64_MAX)

    def encode(self) -> bytes:
        return pack_u64(self.nonce)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        nonce = r.u64()
        r.expect_end()
        return cls(nonce)


@dataclass(frozen=True, slots=True)
class Pong(Message):
    """``pong``: the nonce of the ``ping`` it answers."""

    command: ClassVar[bytes] = b"pong"
    nonce: int

    def __post_init__(self) -> None:
        _check_range("nonce", self.nonce, 0, _U64_MAX)

    def encode(self) -> bytes:
        return pack_u64(self.nonce)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        nonce = r.u64()
        r.expect_end()
        return cls(nonce)


# -- addresses ------------------------------------------------------------------------------------

_ADDR_V1_ENTRY = 30  # time 4 + services 8 + address 16 + port 2
_ADDR_V2_MIN_ENTRY = 9  # time 4 + services 1 + network 1 + length 1 + port 2


@dataclass(frozen=True, slots=True)
class Addr(Message):
    """``addr``: up to 1,000 timed addresses in the 16-byte legacy form.

    Every 16 bytes decode to an address (IPv4-mapped to IPv4, OnionCat to Tor v2, the rest IPv6),
    so the message round-trips exactly; whether an address is worth keeping is the address
    manager's question (``is_valid``/``is_routable``). Only IPv4, IPv6 and Tor v2 entries can be
    built: Tor v3 and I2P have no v1 form, and CJDNS would come back as IPv6.
    """

    command: ClassVar[bytes] = b"addr"
    addresses: tuple[TimedAddress, ...]

    def __post_init__(self) -> None:
        _check_count("addresses", self.addresses, MAX_ADDR_TO_SEND)
        for entry in self.addresses:
            if entry.address.network not in (Network.IPV4, Network.IPV6, Network.TORV2):
                raise ValueError(f"{entry.address.network.name} addresses need addrv2")

    def encode(self) -> bytes:
        parts = [compact_size(len(self.addresses))]
        for entry in self.addresses:
            parts.append(pack_u32(entry.time) + pack_u64(entry.services))
            parts.append(entry.address.serialize_v1())
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        n = r.count(_ADDR_V1_ENTRY, MAX_ADDR_TO_SEND)
        entries = []
        for _ in range(n):
            time = r.u32()
            services = r.u64()
            entries.append(TimedAddress(time, services, NetAddress.read_v1(r)))
        r.expect_end()
        return cls(tuple(entries))


@dataclass(frozen=True, slots=True)
class AddrV2(Message):
    """``addrv2`` (BIP155): up to 1,000 timed addresses on any network.

    Services are a compact size (any 64-bit value). Entries on unknown networks, Tor v2 entries
    and IPv6 entries that hold IPv4-mapped or OnionCat addresses are skipped while decoding (as
    BIP155 asks and Core does), so ``addresses`` may be shorter than the count on the wire, which
    is what the 1,000 limit applies to. A known network with the wrong length, or any address
    over 512 bytes, is an error. Tor v2 entries cannot be built.
    """

    command: ClassVar[bytes] = b"addrv2"
    addresses: tuple[TimedAddress, ...]

    def __post_init__(self) -> None:
        _check_count("addresses", self.addresses, MAX_ADDR_TO_SEND)
        for entry in self.addresses:
            if entry.address.network is Network.TORV2:
                raise ValueError("Tor v2 addresses are no longer relayed")

    def encode(self) -> bytes:
        parts = [compact_size(len(self.addresses))]
        for entry in self.addresses:
            parts.append(pack_u32(entry.time) + compact_size(entry.services))
            parts.append(entry.address.serialize_v2())
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        n = r.count(_ADDR_V2_MIN_ENTRY, MAX_ADDR_TO_SEND)
        entries = []
        for _ in range(n):
            time = r.u32()
            services = r.compact_size(_U64_MAX)
            address = NetAddress.read_v2(r)
            if address is not None:
                entries.append(TimedAddress(time, services, address))
        r.expect_end()
        return cls(tuple(entries))


@dataclass(frozen=True, slots=True)
class GetAddr(_EmptyMessage):
    """``getaddr``: ask for addresses (answered with ``addr``/``addrv2``)."""

    command: ClassVar[bytes] = b"getaddr"


# -- inventory ------------------------------------------------------------------------------------

MSG_WITNESS_FLAG = 1 << 30
"""Set in an inventory type to ask for the witness serialization (BIP144)."""


class InvType(IntEnum):
    """Inventory types (Core: src/protocol.h, ``enum GetDataMsg``)."""

    ERROR = 0
    MSG_TX = 1
    MSG_BLOCK = 2
    MSG_FILTERED_BLOCK = 3
    MSG_CMPCT_BLOCK = 4
    MSG_WTX = 5
    MSG_WITNESS_TX = MSG_TX | MSG_WITNESS_FLAG
    MSG_WITNESS_BLOCK = MSG_BLOCK | MSG_WITNESS_FLAG
    MSG_FILTERED_WITNESS_BLOCK = MSG_FILTERED_BLOCK | MSG_WITNESS_FLAG


_INV_TYPES = {t.value: t for t in InvType}
_INV_ENTRY = struct.Struct("<I32s")


@dataclass(frozen=True, slots=True)
class InvItem:
    """One inventory entry: a type (uint32; an :class:`InvType` when it is one we know, the
    plain number otherwise — Core ignores unknown types rather than failing) and a hash in wire
    order."""

    type: int
    hash: bytes

    SIZE: ClassVar[int] = 36

    def __post_init__(self) -> None:
        _check_range("type", self.type, 0, 0xFFFFFFFF)
        _check_hash("hash", self.hash)

    def encode(self) -> bytes:
        return pack_u32(self.type) + self.hash

    @classmethod
    def read(cls, r: Reader) -> Self:
        t = r.u32()
        return cls(_INV_TYPES.get(t, t), r.read(32))


class InvItems(Sequence[InvItem]):
    """The entries of a decoded ``inv``/``getdata``/``notfound``, kept as their wire bytes.

    A peer may send 50,000 entries a message, message after message; building 50,000 objects
    each time would make a flood of them the dearest thing the event loop does. Entries are
    built only when someone looks at them (once, then kept), and :meth:`hashes` picks out the
    hashes of one type from the bytes directly. Equal to any sequence of the same items."""

    __slots__ = ("_items", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) % InvItem.SIZE:
            raise ValueError("inventory bytes must be a whole number of entries")
        self._raw = raw
        self._items: tuple[InvItem, ...] | None = None

    @property
    def raw(self) -> bytes:
        """The entries as sent (without the count)."""
        return self._raw

    def __len__(self) -> int:
        return len(self._raw) // InvItem.SIZE

    def _all(self) -> tuple[InvItem, ...]:
        if self._items is None:
            # Fields cannot be out of range: built without __post_init__, at a fifth of the cost.
            new = object.__new__
            set_field = object.__setattr__
            items = []
            for t, h in _INV_ENTRY.iter_unpack(self._raw):
                item = new(InvItem)
                set_field(item, "type", _INV_TYPES.get(t, t))
                set_field(item, "hash", h)
                items.append(item)
            self._items = tuple(items)
        return self._items

    @overload
    def __getitem__(self, index: int) -> InvItem: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[InvItem, ...]: ...
    def __getitem__(self, index: int | slice) -> InvItem | tuple[InvItem, ...]:
        return self._all()[index]

    def __iter__(self) -> Iterator[InvItem]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InvItems):
            return self._raw == other._raw
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"InvItems({len(self)} entries)"

    def hashes(self, inv_type: int) -> list[bytes]:
        """The hashes of the entries of type ``inv_type``, in order."""
        raw, size = self._raw, InvItem.SIZE
        n = len(raw) // size
        want = pack_u32(inv_type)
        if all(raw[k::size].count(want[k]) == n for k in range(4)):
            return [raw[i : i + 32] for i in range(4, len(raw), size)]
        out = []
        firsts = raw[0::size]
        i = firsts.find(want[0])
        while i != -1:
            at = i * size
            if raw[at : at + 4] == want:
                out.append(raw[at + 4 : at + size])
            i = firsts.find(want[0], i + 1)
        return out


class _InvMessage(Message):
    __slots__ = ()
    items: Sequence[InvItem]

    def __post_init__(self) -> None:
        _check_count("inventory items", self.items, MAX_INV_SZ)
        if isinstance(self.items, InvItems):
            return  # decoded: every entry is well formed
        for item in self.items:
            if not isinstance(item, InvItem):
                raise TypeError("items must be InvItem")

    def encode(self) -> bytes:
        if isinstance(self.items, InvItems):
            return compact_size(len(self.items)) + self.items.raw
        return compact_size(len(self.items)) + b"".join(item.encode() for item in self.items)

    def hashes(self, inv_type: int) -> list[bytes]:
        """The hashes of the entries of type ``inv_type`` (fast for decoded messages)."""
        if isinstance(self.items, InvItems):
            return self.items.hashes(inv_type)
        return [i.hash for i in self.items if i.type == inv_type]

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        # Every subclass is a dataclass whose one field is ``items``.
        r = Reader(payload)
        n = r.count(InvItem.SIZE, MAX_INV_SZ)
        raw = r.read(n * InvItem.SIZE)
        r.expect_end()
        return cls(InvItems(raw))  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class Inv(_InvMessage):
    """``inv``: announces up to 50,000 objects."""

    command: ClassVar[bytes] = b"inv"
    items: Sequence[InvItem]


@dataclass(frozen=True, slots=True)
class GetData(_InvMessage):
    """``getdata``: asks for up to 50,000 objects."""

    command: ClassVar[bytes] = b"getdata"
    items: Sequence[InvItem]


@dataclass(frozen=True, slots=True)
class NotFound(_InvMessage):
    """``notfound``: the objects of a ``getdata`` the peer does not have (at most 50,000)."""

    command: ClassVar[bytes] = b"notfound"
    items: Sequence[InvItem]


# -- headers and blocks ---------------------------------------------------------------------------


class _LocatorMessage(Message):
    """``getheaders``/``getblocks``: a (dummy) version, a block locator and a stop hash."""

    __slots__ = ()
    version: int
    locator: tuple[bytes, ...]
    hash_stop: bytes

    def __post_init__(self) -> None:
        _check_range("version", self.version, 0, 0xFFFFFFFF)
        _check_count("locator hashes", self.locator, MAX_LOCATOR_SZ)
        for h in self.locator:
            _check_hash("locator hash", h)
        _check_hash("hash_stop", self.hash_stop)

    def encode(self) -> bytes:
        return b"".join(
            (
                pack_u32(self.version),
                compact_size(len(self.locator)),
                *self.locator,
                self.hash_stop,
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        version = r.u32()
        n = r.count(32, MAX_LOCATOR_SZ)
        locator = tuple(_read_hash(r) for _ in range(n))
        hash_stop = _read_hash(r)
        r.expect_end()
        # Both subclasses are dataclasses of exactly these three fields.
        return cls(version, locator, hash_stop)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class GetHeaders(_LocatorMessage):
    """``getheaders``: up to 2,000 headers after the first locator hash we know, up to
    ``hash_stop`` (all zeros: as many as fit). At most 101 locator hashes. ``version`` is a
    dummy that Core fills with its protocol version and ignores."""

    command: ClassVar[bytes] = b"getheaders"
    version: int
    locator: tuple[bytes, ...]
    hash_stop: bytes


@dataclass(frozen=True, slots=True)
class GetBlocks(_LocatorMessage):
    """``getblocks``: like ``getheaders``, answered with an ``inv`` of up to 500 blocks."""

    command: ClassVar[bytes] = b"getblocks"
    version: int
    locator: tuple[bytes, ...]
    hash_stop: bytes


@dataclass(frozen=True, slots=True)
class Headers(Message):
    """``headers``: up to 2,000 block headers, each followed by a transaction count of 0 (Core
    reads and ignores that count; we require it to be 0, as btcd does)."""

    command: ClassVar[bytes] = b"headers"
    headers: tuple[Header, ...]

    def __post_init__(self) -> None:
        _check_count("headers", self.headers, MAX_HEADERS_RESULTS)
        for h in self.headers:
            if not isinstance(h, Header):
                raise TypeError("headers must be Header")

    def encode(self) -> bytes:
        parts = [compact_size(len(self.headers))]
        parts.extend(h.serialize() + b"\x00" for h in self.headers)
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        n = r.count(Header.SIZE + 1, MAX_HEADERS_RESULTS)
        headers = []
        for _ in range(n):
            headers.append(Header.parse(r.read(Header.SIZE)))
            tx_count = r.compact_size()
            if tx_count:
                raise InvalidFieldError(f"header followed by a transaction count of {tx_count}")
        r.expect_end()
        return cls(tuple(headers))


@dataclass(frozen=True, slots=True)
class BlockMsg(Message):
    """``block``: one block, witness serialization included."""

    command: ClassVar[bytes] = b"block"
    block: Block

    def encode(self) -> bytes:
        return self.block.serialize()

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls(Block.parse(payload))


@dataclass(frozen=True, slots=True)
class TxMsg(Message):
    """``tx``: one transaction, witness serialization included."""

    command: ClassVar[bytes] = b"tx"
    tx: Tx

    def encode(self) -> bytes:
        return self.tx.serialize()

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls(Tx.parse(payload))


@dataclass(frozen=True, slots=True)
class SendHeaders(_EmptyMessage):
    """``sendheaders`` (BIP130): announce new blocks with ``headers`` rather than ``inv``."""

    command: ClassVar[bytes] = b"sendheaders"


@dataclass(frozen=True, slots=True)
class MempoolMsg(_EmptyMessage):
    """``mempool`` (BIP35): ask for the peer's mempool as ``inv`` messages."""

    command: ClassVar[bytes] = b"mempool"


@dataclass(frozen=True, slots=True)
class FeeFilter(Message):
    """``feefilter`` (BIP133): do not announce transactions paying less than ``feerate``
    satoshis per 1,000 virtual bytes. Any int64 decodes; Core ignores a value outside
    ``0‥MAX_MONEY`` (``in_money_range``), which is the peer layer's call."""

    command: ClassVar[bytes] = b"feefilter"
    feerate: int

    def __post_init__(self) -> None:
        _check_range("feerate", self.feerate, -(2**63), 2**63 - 1)

    @property
    def in_money_range(self) -> bool:
        return 0 <= self.feerate <= MAX_MONEY

    def encode(self) -> bytes:
        return pack_i64(self.feerate)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        feerate = r.i64()
        r.expect_end()
        return cls(feerate)


# -- compact blocks (BIP152: structure only; reconstruction is compact.py's) ---------------------


@dataclass(frozen=True, slots=True)
class SendCmpct(Message):
    """``sendcmpct``: whether to announce new blocks as ``cmpctblock`` (high bandwidth), and the
    compact-block version (2 for segwit; other versions are ignored by the peer layer)."""

    command: ClassVar[bytes] = b"sendcmpct"
    announce: bool
    version: int

    def __post_init__(self) -> None:
        if not isinstance(self.announce, bool):
            raise ValueError("announce must be a bool")
        _check_range("version", self.version, 0, _U64_MAX)

    def encode(self) -> bytes:
        return (b"\x01" if self.announce else b"\x00") + pack_u64(self.version)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        announce = _read_bool(r)
        version = r.u64()
        r.expect_end()
        return cls(announce, version)


@dataclass(frozen=True, slots=True)
class PrefilledTx:
    """A transaction sent whole in a ``cmpctblock``, with its position in the block.

    ``index`` is absolute here; on the wire each is the difference from the previous one minus 1
    (BIP152's differential encoding)."""

    index: int
    tx: Tx

    def __post_init__(self) -> None:
        _check_range("index", self.index, 0, MAX_COMPACT_TX_INDEX)
        if not isinstance(self.tx, Tx):
            raise TypeError("tx must be a Tx")


@dataclass(frozen=True, slots=True)
class CmpctBlock(Message):
    """``cmpctblock`` (BIP152 ``HeaderAndShortIDs``): a header, the nonce of the short-id key,
    6-byte short ids (kept as ints below 2**48) and prefilled transactions.

    Bounds, checked before allocating: short ids plus prefilled transactions at most 65,535
    (Core: "indexes overflowed 16 bits"); prefilled indexes strictly increasing, each below
    65,536 and each no further than the short ids and earlier prefilled transactions can reach
    (Core's ``PartiallyDownloadedBlock::InitData`` treats the last two, and an empty message, as
    invalid: we refuse them while decoding, as a message that describes no block).
    """

    command: ClassVar[bytes] = b"cmpctblock"
    header: Header
    nonce: int
    short_ids: tuple[int, ...]
    prefilled: tuple[PrefilledTx, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.header, Header):
            raise TypeError("header must be a Header")
        _check_range("nonce", self.nonce, 0, _U64_MAX)
        _check_count("short ids", self.short_ids, MAX_COMPACT_TX_INDEX)
        _check_count("prefilled", self.prefilled, MAX_COMPACT_TX_INDEX - len(self.short_ids))
        for sid in self.short_ids:
            _check_range("short id", sid, 0, (1 << 48) - 1)
        if not self.short_ids and not self.prefilled:
            raise ValueError("a compact block describes at least one transaction")
        last = -1
        for i, p in enumerate(self.prefilled):
            if p.index <= last or p.index > len(self.short_ids) + i:
                raise ValueError(f"prefilled index {p.index} out of place")
            last = p.index

    def encode(self) -> bytes:
        parts = [
            self.header.serialize(),
            pack_u64(self.nonce),
            compact_size(len(self.short_ids)),
            b"".join(sid.to_bytes(SHORTTXIDS_LENGTH, "little") for sid in self.short_ids),
            compact_size(len(self.prefilled)),
        ]
        last = -1
        for p in self.prefilled:
            parts.append(compact_size(p.index - last - 1))
            parts.append(p.tx.serialize())
            last = p.index
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        header = Header.from_reader(r)
        nonce = r.u64()
        n_short = r.count(SHORTTXIDS_LENGTH, MAX_COMPACT_TX_INDEX)
        raw = r.read(n_short * SHORTTXIDS_LENGTH)
        short_ids = tuple(
            int.from_bytes(raw[i : i + SHORTTXIDS_LENGTH], "little")
            for i in range(0, len(raw), SHORTTXIDS_LENGTH)
        )
        n_pre = r.count(1 + _MIN_TX_SIZE, MAX_COMPACT_TX_INDEX - n_short)
        if n_short == 0 and n_pre == 0:
            raise InvalidFieldError("compact block with no transactions")
        prefilled = []
        last = -1
        for i in range(n_pre):
            index = last + 1 + r.compact_size(MAX_COMPACT_TX_INDEX)
            if index > MAX_COMPACT_TX_INDEX or index > n_short + i:
                raise InvalidFieldError(f"prefilled transaction index {index} out of range")
            prefilled.append(PrefilledTx(index, Tx.from_reader(r)))
            last = index
        r.expect_end()
        return cls(header, nonce, short_ids, tuple(prefilled))


def _read_indexes(r: Reader) -> tuple[int, ...]:
    """BIP152's differentially encoded indexes: each read value is the gap after the last + 1."""
    n = r.count(1, MAX_COMPACT_TX_INDEX + 1)
    indexes = []
    last = -1
    for _ in range(n):
        index = last + 1 + r.compact_size(MAX_COMPACT_TX_INDEX)
        if index > MAX_COMPACT_TX_INDEX:
            raise InvalidFieldError(f"transaction index {index} overflows 16 bits")
        indexes.append(index)
        last = index
    return tuple(indexes)


@dataclass(frozen=True, slots=True)
class GetBlockTxn(Message):
    """``getblocktxn`` (BIP152 ``BlockTransactionsRequest``): the block hash and the indexes of
    the transactions wanted — absolute here, strictly increasing, each below 65,536; on the wire
    differentially encoded."""

    command: ClassVar[bytes] = b"getblocktxn"
    block_hash: bytes
    indexes: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_hash("block_hash", self.block_hash)
        _check_count("indexes", self.indexes, MAX_COMPACT_TX_INDEX + 1)
        last = -1
        for index in self.indexes:
            _check_range("index", index, last + 1, MAX_COMPACT_TX_INDEX)
            last = index

    def encode(self) -> bytes:
        parts = [self.block_hash, compact_size(len(self.indexes))]
        last = -1
        for index in self.indexes:
            parts.append(compact_size(index - last - 1))
            last = index
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        block_hash = _read_hash(r)
        indexes = _read_indexes(r)
        r.expect_end()
        return cls(block_hash, indexes)


@dataclass(frozen=True, slots=True)
class BlockTxn(Message):
    """``blocktxn`` (BIP152 ``BlockTransactions``): the block hash and the transactions a
    ``getblocktxn`` asked for, in its order (at most 65,536, as indexes are 16-bit)."""

    command: ClassVar[bytes] = b"blocktxn"
    block_hash: bytes
    txs: tuple[Tx, ...]

    def __post_init__(self) -> None:
        _check_hash("block_hash", self.block_hash)
        _check_count("transactions", self.txs, MAX_COMPACT_TX_INDEX + 1)
        for tx in self.txs:
            if not isinstance(tx, Tx):
                raise TypeError("txs must be Tx")

    def encode(self) -> bytes:
        parts = [self.block_hash, compact_size(len(self.txs))]
        parts.extend(tx.serialize() for tx in self.txs)
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        block_hash = _read_hash(r)
        n = r.count(_MIN_TX_SIZE, MAX_COMPACT_TX_INDEX + 1)
        txs = tuple(Tx.from_reader(r) for _ in range(n))
        r.expect_end()
        return cls(block_hash, txs)


# -- the registry -------------------------------------------------------------------------------


def _registry(classes: Iterable[type[Message]]) -> dict[bytes, type[Message]]:
    table: dict[bytes, type[Message]] = {}
    for cls in classes:
        if cls.command in table:  # pragma: no cover - a typo caught at import
            raise AssertionError(f"two classes for {cls.command!r}")
        table[cls.command] = cls
    return table


MESSAGE_TYPES: dict[bytes, type[Message]] = _registry(
    (
        Version,
        Verack,
        WtxidRelay,
        SendAddrV2,
        Ping,
        Pong,
        Addr,
        AddrV2,
        GetAddr,
        Inv,
        GetData,
        NotFound,
        GetHeaders,
        Headers,
        GetBlocks,
        BlockMsg,
        TxMsg,
        SendHeaders,
        MempoolMsg,
        FeeFilter,
        SendCmpct,
        CmpctBlock,
        GetBlockTxn,
        BlockTxn,
    )
)
"""Command → message class, for every message we decode. Anything else is ignored."""


def decode_message(command: bytes, payload: bytes) -> Message | None:
    """The message ``payload`` holds, or ``None`` when ``command`` is not one we know.

    Raises :class:`MessageError` (the command, and the underlying ``DecodeError``) when the
    payload does not decode.
    """
    cls = MESSAGE_TYPES.get(command)
    if cls is None:
        return None
    try:
        return cls.decode(payload)
    except DecodeError as e:
        raise MessageError(command, e) from e
