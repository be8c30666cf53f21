"""The P2P messages: round trips of every message, public byte vectors, and every bound.

* Every message round-trips: ``decode(encode(m)) == m`` and ``encode(decode(b)) == b``.
* Any payload either decodes or raises ``MessageError`` wrapping a ``DecodeError``; nothing else.
* Each count limit: at the limit decodes, one over raises ``OversizeError`` before any item is
  read; a huge count in a few bytes costs nothing; truncation, trailing bytes and non-canonical
  compact sizes are refused with their own error type.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peercash.consensus.errors import (
    DecodeError,
    NonCanonicalError,
    OversizeError,
    TrailingBytesError,
    TruncatedError,
)
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.serialize import compact_size, pack_u32, pack_u64
from peercash.p2p import messages as m
from peercash.p2p.messages import (
    MESSAGE_TYPES,
    InvalidFieldError,
    InvItem,
    InvType,
    MessageError,
    decode_message,
)
from peercash.p2p.netaddress import NetAddress, NetAddressError, Network, TimedAddress

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p2ptools import FEWER, MESSAGES, SETTINGS

# -- constants ----------------------------------------------------------------------------------


def test_protocol_constants() -> None:
    assert (m.PROTOCOL_VERSION, m.MIN_PEER_PROTO_VERSION, m.INIT_PROTO_VERSION) == (
        70016,
        31800,
        209,
    )
    assert (
        m.BIP0031_VERSION,
        m.SENDHEADERS_VERSION,
        m.FEEFILTER_VERSION,
        m.SHORT_IDS_BLOCKS_VERSION,
        m.INVALID_CB_NO_BAN_VERSION,
        m.WTXID_RELAY_VERSION,
    ) == (60000, 70012, 70013, 70014, 70015, 70016)
    assert (
        m.NODE_NETWORK,
        m.NODE_BLOOM,
        m.NODE_WITNESS,
        m.NODE_COMPACT_FILTERS,
        m.NODE_NETWORK_LIMITED,
        m.NODE_P2P_V2,
    ) == (1, 4, 8, 64, 1024, 2048)
    assert m.local_services() == 1 | 8 | 1024 and m.local_services(pruned=True) == 8 | 1024
    assert (m.MAX_INV_SZ, m.MAX_HEADERS_RESULTS, m.MAX_ADDR_TO_SEND, m.MAX_LOCATOR_SZ) == (
        50_000,
        2_000,
        1_000,
        101,
    )
    assert (m.MAX_SUBVERSION_LENGTH, m.SHORTTXIDS_LENGTH, m.MAX_COMPACT_TX_INDEX) == (
        256,
        6,
        0xFFFF,
    )
    assert {t.name: t.value for t in InvType} == {
        "ERROR": 0,
        "MSG_TX": 1,
        "MSG_BLOCK": 2,
        "MSG_FILTERED_BLOCK": 3,
        "MSG_CMPCT_BLOCK": 4,
        "MSG_WTX": 5,
        "MSG_WITNESS_TX": 0x40000001,
        "MSG_WITNESS_BLOCK": 0x40000002,
        "MSG_FILTERED_WITNESS_BLOCK": 0x40000003,
    }


COMMANDS = {
    b"version": m.Version,
    b"verack": m.Verack,
    b"wtxidrelay": m.WtxidRelay,
    b"sendaddrv2": m.SendAddrV2,
    b"ping": m.Ping,
    b"pong": m.Pong,
    b"addr": m.Addr,
    b"addrv2": m.AddrV2,
    b"getaddr": m.GetAddr,
    b"inv": m.Inv,
    b"getdata": m.GetData,
    b"notfound": m.NotFound,
    b"getheaders": m.GetHeaders,
    b"headers": m.Headers,
    b"getblocks": m.GetBlocks,
    b"block": m.BlockMsg,
    b"tx": m.TxMsg,
    b"sendheaders": m.SendHeaders,
    b"mempool": m.MempoolMsg,
    b"feefilter": m.FeeFilter,
    b"sendcmpct": m.SendCmpct,
    b"cmpctblock": m.CmpctBlock,
    b"getblocktxn": m.GetBlockTxn,
    b"blocktxn": m.BlockTxn,
}


def test_registry() -> None:
    assert MESSAGE_TYPES == COMMANDS
    assert all(cls.command == command for command, cls in MESSAGE_TYPES.items())
    assert set(MESSAGES) == set(MESSAGE_TYPES)
    assert len(MESSAGE_TYPES) == 24


UNKNOWN = [
    (b"reject", b"\x02tx\x10\x15bad-txns-inputs-spent" + bytes(32)),
    (b"alert", b"\x00"),
    (b"filterload", b"\x00" * 9),
    (b"getcfilters", b""),
    (b"sendtxrcncl", bytes(12)),
    (b"merkleblock", b"junk"),
    (b"VERSION", bytes(100)),
    (b"", b""),
    (b"\x01\x02", b"\xff" * 9),
]


def test_unknown_commands_are_ignored() -> None:
    for command, payload in UNKNOWN:
        assert decode_message(command, payload) is None, command
    assert len(UNKNOWN) == 9


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(MESSAGES), ids=bytes.decode)
def test_round_trip(command: bytes) -> None:
    @FEWER
    @given(MESSAGES[command])
    def run(msg: Any) -> None:
        payload = msg.encode()
        back = decode_message(command, payload)
        assert type(back) is type(msg)
        assert back == msg
        assert back.encode() == payload
        assert type(msg).decode(payload) == msg

    run()


# A payload that decodes re-encodes to itself, except where the wire has two forms of one message:
# a version without its relay byte, an addrv2 with entries that are skipped.
NOT_CANONICAL = {b"version", b"addrv2"}


def check_decoded(command: bytes, payload: bytes) -> None:
    try:
        msg = decode_message(command, payload)
    except MessageError as e:
        assert e.command == command
        assert isinstance(e.error, DecodeError) and not isinstance(e.error, MessageError)
        assert e.__cause__ is e.error
        return
    assert msg is not None
    if command not in NOT_CANONICAL:
        assert msg.encode() == payload
    assert decode_message(command, msg.encode()) == msg


@pytest.mark.parametrize("command", sorted(MESSAGES), ids=bytes.decode)
def test_random_payloads(command: bytes) -> None:
    @SETTINGS
    @given(st.binary(max_size=200))
    def run(payload: bytes) -> None:
        check_decoded(command, payload)

    run()


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "special"]))
        pos = draw(st.integers(0, len(buf)))
        if kind == "flip" and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del buf[pos : pos + draw(st.integers(1, 8))]
        elif buf:
            buf[min(pos, len(buf) - 1)] = draw(st.sampled_from([0, 1, 2, 3, 4, 0xFD, 0xFE, 0xFF]))
    return bytes(buf)


@pytest.mark.parametrize("command", sorted(MESSAGES), ids=bytes.decode)
def test_mutated_payloads(command: bytes) -> None:
    @FEWER
    @given(MESSAGES[command].map(lambda msg: msg.encode()).flatmap(mutations))
    def run(payload: bytes) -> None:
        check_decoded(command, payload)

    run()


# -- public vectors -----------------------------------------------------------------------------

# The Bitcoin Developer Reference's example version message (a 0.9.3 node, protocol 70002).
DEV_REF_VERSION = bytes.fromhex(
    "72110100"  # protocol version 70002
    "0100000000000000"  # services: NODE_NETWORK
    "bc8f5e5400000000"  # time 1415483324
    "0100000000000000" "00000000000000000000ffffc61b6409" "208d"  # receiver 198.27.100.9:8333
    "0100000000000000" "00000000000000000000ffffcb0071c0" "208d"  # sender 203.0.113.192:8333
    "128035cbc97953f8"  # nonce
    "0f" "2f5361746f7368693a302e392e332f"  # "/Satoshi:0.9.3/"
    "cf050500"  # start height 329167
    "01"  # relay
)  # fmt: skip


def test_version_vector() -> None:
    v = decode_message(b"version", DEV_REF_VERSION)
    assert v == m.Version(
        version=70002,
        services=m.NODE_NETWORK,
        timestamp=1415483324,
        addr_recv=m.VersionAddress(1, NetAddress.parse("198.27.100.9", 8333)),
        addr_from=m.VersionAddress(1, NetAddress.parse("203.0.113.192", 8333)),
        nonce=0xF85379C9CB358012,
        user_agent="/Satoshi:0.9.3/",
        start_height=329167,
        relay=True,
    )
    assert v.encode() == DEV_REF_VERSION


def test_version_relay_byte() -> None:
    old = m.Version.decode(DEV_REF_VERSION[:-1])  # before 70001 there was no relay byte
    assert old.relay is True and old.encode() == DEV_REF_VERSION
    assert m.Version.decode(DEV_REF_VERSION[:-1] + b"\x00").relay is False
    with pytest.raises(InvalidFieldError):
        m.Version.decode(DEV_REF_VERSION[:-1] + b"\x02")
    with pytest.raises(TrailingBytesError):
        m.Version.decode(DEV_REF_VERSION + b"\x00")


def test_version_user_agent_limit() -> None:
    head, tail = DEV_REF_VERSION[:80], DEV_REF_VERSION[96:]
    assert head[-8:] == bytes.fromhex("128035cbc97953f8") and tail == bytes.fromhex("cf05050001")
    ok = m.Version.decode(head + compact_size(256) + b"a" * 256 + tail)
    assert len(ok.user_agent) == 256
    with pytest.raises(OversizeError):
        m.Version.decode(head + compact_size(257) + b"a" * 257 + tail)
    odd = m.Version.decode(head + b"\x03\xff\xfe\x00" + tail)  # not UTF-8: still round-trips
    assert odd.user_agent_bytes() == b"\xff\xfe\x00"
    assert odd.encode() == head + b"\x03\xff\xfe\x00" + tail


# Core's net_tests.cpp: fixture_addresses serialized as addr (v1) and addrv2.
CORE_ADDR_V1 = bytes.fromhex(
    "03"
    "61bc6649" "0000000000000000" "00000000000000000000000000000001" "0000"
    "79627683" "0100000000000000" "00000000000000000000000000000001" "00f1"
    "ffffffff" "4804000000000000" "00000000000000000000000000000001" "f1f2"
)  # fmt: skip
CORE_ADDR_V2 = bytes.fromhex(
    "03"
    "61bc6649" "00" "02" "10" "00000000000000000000000000000001" "0000"
    "79627683" "01" "02" "10" "00000000000000000000000000000001" "00f1"
    "ffffffff" "fd4804" "02" "10" "00000000000000000000000000000001" "f1f2"
)  # fmt: skip


def test_core_addr_vectors() -> None:
    local = bytes(15) + b"\x01"
    expected = (
        TimedAddress(0x4966BC61, m.NODE_NONE, NetAddress(Network.IPV6, local, 0)),
        TimedAddress(0x83766279, m.NODE_NETWORK, NetAddress(Network.IPV6, local, 0x00F1)),
        TimedAddress(
            0xFFFFFFFF,
            m.NODE_WITNESS | m.NODE_COMPACT_FILTERS | m.NODE_NETWORK_LIMITED,
            NetAddress(Network.IPV6, local, 0xF1F2),
        ),
    )
    v1 = decode_message(b"addr", CORE_ADDR_V1)
    v2 = decode_message(b"addrv2", CORE_ADDR_V2)
    assert isinstance(v1, m.Addr) and isinstance(v2, m.AddrV2)
    assert v1.addresses == expected == v2.addresses
    assert m.Addr(expected).encode() == CORE_ADDR_V1
    assert m.AddrV2(expected).encode() == CORE_ADDR_V2


def addrv2_entry(net_hex: str, services: bytes = b"\x01") -> bytes:
    return pack_u32(1) + services + bytes.fromhex(net_hex) + b"\x20\x8d"


def test_addrv2_skips_what_bip155_says_to_skip() -> None:
    ipv4 = addrv2_entry("010401020304")
    skipped = [
        addrv2_entry("aa0401020304"),  # unknown network
        addrv2_entry("ff00"),  # unknown network, empty address
        addrv2_entry("fffd0002" + "00" * 512),  # unknown network, the largest address allowed
        addrv2_entry("030af1f2f3f4f5f6f7f8f9fa"),  # Tor v2
        addrv2_entry("0308f1f2f3f4f5f6f7f8"),  # Tor v2 of another length: skipped too
        addrv2_entry("021000000000000000000000ffff01020304"),  # IPv4 inside IPv6
        addrv2_entry("0210fd87d87eeb430102030405060708090a"),  # Tor v2 inside IPv6
    ]
    payload = compact_size(len(skipped) + 2) + ipv4 + b"".join(skipped) + ipv4
    msg = m.AddrV2.decode(payload)
    assert [str(e.address) for e in msg.addresses] == ["1.2.3.4:8333", "1.2.3.4:8333"]
    assert len(skipped) == 7


def test_addrv2_errors() -> None:
    cases: list[tuple[bytes, type[DecodeError]]] = [
        (addrv2_entry("0105010203040a"), NetAddressError),  # IPv4 of 5 bytes
        (addrv2_entry("0410" + "00" * 16), NetAddressError),  # Tor v3 of 16 bytes
        (addrv2_entry("fffd0102" + "00" * 513), OversizeError),  # any network: 513 bytes
        (addrv2_entry("010401020304", b"\xfd\x01\x00"), NonCanonicalError),  # services
        (addrv2_entry("01040102"), TruncatedError),
    ]
    for entry, error in cases:
        with pytest.raises(MessageError) as info:
            decode_message(b"addrv2", b"\x01" + entry)
        assert type(info.value.error) is error
    assert len(cases) == 5
    big = m.AddrV2.decode(b"\x01" + addrv2_entry("010401020304", b"\xff" + b"\xff" * 8))
    assert big.addresses[0].services == 2**64 - 1


def test_addrv2_limit_counts_skipped_entries() -> None:
    unknown = addrv2_entry("aa00")
    assert m.AddrV2.decode(compact_size(1000) + unknown * 1000).addresses == ()
    with pytest.raises(OversizeError):
        m.AddrV2.decode(compact_size(1001) + unknown * 1001)


def test_headers_tx_count_must_be_zero() -> None:
    header = Header(1, bytes(32), bytes(32), 2, 3, 4).serialize()
    assert m.Headers.decode(b"\x01" + header + b"\x00").headers[0].nonce == 4
    with pytest.raises(InvalidFieldError):
        m.Headers.decode(b"\x01" + header + b"\x01")
    with pytest.raises(NonCanonicalError):
        m.Headers.decode(b"\x01" + header + b"\xfd\x00\x00")


def test_inventory_types() -> None:
    items = m.Inv.decode(
        b"\x03"
        + pack_u32(0x40000002)
        + bytes(32)
        + pack_u32(5)
        + bytes(32)
        + pack_u32(99)
        + bytes(32)
    ).items
    assert [item.type for item in items] == [InvType.MSG_WITNESS_BLOCK, InvType.MSG_WTX, 99]
    assert isinstance(items[0].type, InvType) and not isinstance(items[2].type, InvType)


_INV_TYPE_CHOICES = [1, 2, 3, 4, 5, 0x40000001, 0x40000002, 0x02000000, 0x0200, 99, 0]


@given(
    st.lists(
        st.tuples(st.sampled_from(_INV_TYPE_CHOICES), st.binary(min_size=32, max_size=32)),
        max_size=60,
    ),
    st.sampled_from(_INV_TYPE_CHOICES),
)
def test_decoded_inventory_is_lazy_and_equal_to_the_items_it_holds(
    entries: list[tuple[int, bytes]], want: int
) -> None:
    """Decoded entries stay wire bytes (``InvItems``); every view of them agrees with the
    items built one by one: iteration, indexing, equality and hashing against a tuple, the
    encoding, and ``hashes`` (whose all-of-one-type fast path and general path must give the
    same answer as filtering the items)."""
    built = tuple(m.InvItem(t, h) for t, h in entries)
    msg = m.Inv(built)
    decoded = m.Inv.decode(msg.encode())
    assert isinstance(decoded.items, m.InvItems)
    assert decoded == msg and msg == decoded and hash(decoded) == hash(msg)
    assert decoded.items == built and list(decoded.items) == list(built)
    assert len(decoded.items) == len(built)
    assert decoded.encode() == msg.encode()
    expected = [h for t, h in entries if t == want]
    assert decoded.hashes(want) == expected == msg.hashes(want)
    if built:
        assert decoded.items[0] == built[0] and decoded.items[-1] == built[-1]
        assert decoded.items[1:3] == built[1:3]
    # All of one type: the fast path.
    same = m.Inv.decode(m.Inv(tuple(m.InvItem(want, h) for _, h in entries)).encode())
    assert same.hashes(want) == [h for _, h in entries]
    other = 1 if want != 1 else 2
    assert same.hashes(other) == []


def test_a_full_inv_decodes_without_building_its_items() -> None:
    payload = compact_size(m.MAX_INV_SZ) + (pack_u32(2) + bytes(32)) * m.MAX_INV_SZ
    msg = m.Inv.decode(payload)
    assert isinstance(msg.items, m.InvItems) and msg.items._items is None
    assert len(msg.hashes(InvType.MSG_BLOCK)) == m.MAX_INV_SZ and msg.items._items is None
    assert msg.items[7].type == InvType.MSG_BLOCK and msg.items._items is not None
    with pytest.raises(ValueError):
        m.InvItems(bytes(35))


def test_feefilter_range() -> None:
    assert m.FeeFilter.decode(pack_u64(1000)).in_money_range
    assert not m.FeeFilter.decode(b"\xff" * 8).in_money_range  # -1 decodes; the peer ignores it
    assert m.FeeFilter(-1).feerate == -1
    assert not m.FeeFilter(21_000_000 * 100_000_000 + 1).in_money_range


def test_sendcmpct() -> None:
    assert m.SendCmpct.decode(b"\x01" + pack_u64(2)) == m.SendCmpct(True, m.CMPCTBLOCKS_VERSION)
    with pytest.raises(InvalidFieldError):
        m.SendCmpct.decode(b"\x02" + pack_u64(2))


# -- BIP152 structure ---------------------------------------------------------------------------

COINBASE = Tx(1, [TxIn(OutPoint(bytes(32), 0xFFFFFFFF), b"\x51\x51")], [TxOut(50, b"")])
HEADER = Header(0x20000000, bytes(32), bytes(range(32)), 1_700_000_000, 0x207FFFFF, 7)


def test_cmpctblock_wire_form() -> None:
    msg = m.CmpctBlock(
        HEADER,
        0x0102030405060708,
        (0x010203040506, 0xFFFFFFFFFFFF),
        (m.PrefilledTx(0, COINBASE), m.PrefilledTx(2, COINBASE), m.PrefilledTx(4, COINBASE)),
    )
    tx = COINBASE.serialize()
    expected = (
        HEADER.serialize()
        + bytes.fromhex("0807060504030201")  # nonce, little-endian
        + bytes.fromhex("02" "060504030201" "ffffffffffff")  # 6-byte short ids, little-endian
        + b"\x03" + b"\x00" + tx + b"\x01" + tx + b"\x01" + tx  # indexes 0, 2, 4 as differences
    )  # fmt: skip
    assert msg.encode() == expected
    assert m.CmpctBlock.decode(expected) == msg


def cmpct_payload(n_short: int, diffs: list[int]) -> bytes:
    parts = [HEADER.serialize(), pack_u64(0), compact_size(n_short), bytes(6 * n_short)]
    parts.append(compact_size(len(diffs)))
    for d in diffs:
        parts.append(compact_size(d) + COINBASE.serialize())
    return b"".join(parts)


def test_cmpctblock_bounds() -> None:
    assert len(m.CmpctBlock.decode(cmpct_payload(0, [0])).prefilled) == 1
    assert [p.index for p in m.CmpctBlock.decode(cmpct_payload(2, [0, 0, 0])).prefilled] == [
        0,
        1,
        2,
    ]
    assert [p.index for p in m.CmpctBlock.decode(cmpct_payload(2, [2])).prefilled] == [2]
    cases: list[tuple[bytes, type[DecodeError]]] = [
        (cmpct_payload(0, []), InvalidFieldError),  # describes no transaction
        (cmpct_payload(2, [3]), InvalidFieldError),  # index 3 > 2 short ids + 0 prefilled
        (cmpct_payload(0, [0, 1]), InvalidFieldError),  # index 2 > 0 + 1
        (cmpct_payload(1, [0x10000]), OversizeError),  # a difference over 16 bits
        (cmpct_payload(2, [0]) + b"\x00", TrailingBytesError),
        (cmpct_payload(2, [0])[:-1], TruncatedError),
        # 65,535 short ids and one prefilled transaction: over the 16-bit total, read no further
        (HEADER.serialize() + pack_u64(0) + b"\xfd\xff\xff" + bytes(6 * 0xFFFF) + b"\x01",
         OversizeError),
        (HEADER.serialize() + pack_u64(0) + b"\xfe\x00\x00\x01\x00", OversizeError),  # 65,536 ids
    ]  # fmt: skip
    for payload, error in cases:
        with pytest.raises(error):
            m.CmpctBlock.decode(payload)
    assert len(cases) == 8
    at_limit = HEADER.serialize() + pack_u64(0) + b"\xfd\xff\xff" + bytes(6 * 0xFFFF) + b"\x00"
    assert len(m.CmpctBlock.decode(at_limit).short_ids) == 0xFFFF


def test_getblocktxn_differential_indexes() -> None:
    msg = m.GetBlockTxn(bytes(32), (0, 1, 5, 0xFFFF))
    assert msg.encode() == bytes(32) + bytes.fromhex("04000003fdf9ff")
    assert m.GetBlockTxn.decode(msg.encode()) == msg
    with pytest.raises(InvalidFieldError):  # 65535 then one more: 65536 overflows 16 bits
        m.GetBlockTxn.decode(bytes(32) + bytes.fromhex("02fdffff00"))
    with pytest.raises(OversizeError):
        m.GetBlockTxn.decode(bytes(32) + bytes.fromhex("01fe00000100"))
    every = bytes(32) + b"\xfe\x00\x00\x01\x00" + bytes(0x10000)  # all 65,536 indexes
    assert m.GetBlockTxn.decode(every).indexes == tuple(range(0x10000))
    with pytest.raises(OversizeError):
        m.GetBlockTxn.decode(bytes(32) + b"\xfe\x01\x00\x01\x00" + bytes(0x10001))


# -- bounds: at the limit, one over, and a huge count in a few bytes ----------------------------

INV_ITEM = pack_u32(1) + bytes(32)
ADDR_ITEM = pack_u32(1) + pack_u64(1) + bytes(10) + b"\xff\xff" + b"\x01\x02\x03\x04" + b"\x20\x8d"
ADDRV2_ITEM = addrv2_entry("010401020304")
HEADER_ITEM = HEADER.serialize() + b"\x00"
HASH = bytes(range(32))
MIN_TX = bytes.fromhex("01000000000000000000")  # no inputs, no outputs: 10 bytes

# command → (limit, bytes before the count, one item, bytes after the items)
LIMITS: dict[bytes, tuple[int, bytes, bytes, bytes]] = {
    b"inv": (50_000, b"", INV_ITEM, b""),
    b"getdata": (50_000, b"", INV_ITEM, b""),
    b"notfound": (50_000, b"", INV_ITEM, b""),
    b"addr": (1_000, b"", ADDR_ITEM, b""),
    b"addrv2": (1_000, b"", ADDRV2_ITEM, b""),
    b"headers": (2_000, b"", HEADER_ITEM, b""),
    b"getheaders": (101, pack_u32(70016), HASH, HASH),
    b"getblocks": (101, pack_u32(70016), HASH, HASH),
    b"blocktxn": (65_536, HASH, MIN_TX, b""),
    b"getblocktxn": (65_536, HASH, b"\x00", b""),
}


@pytest.mark.parametrize("command", sorted(LIMITS), ids=bytes.decode)
def test_count_limits(command: bytes) -> None:
    limit, head, item, tail = LIMITS[command]
    at_limit = decode_message(command, head + compact_size(limit) + item * limit + tail)
    assert at_limit is not None
    with pytest.raises(MessageError) as info:
        decode_message(command, head + compact_size(limit + 1) + item * (limit + 1) + tail)
    assert type(info.value.error) is OversizeError
    # One over, with no items at all: refused from the count alone.
    with pytest.raises(MessageError) as info:
        decode_message(command, head + compact_size(limit + 1))
    assert type(info.value.error) is OversizeError
    # Within the limit, but the payload cannot hold that many: refused before reading them.
    with pytest.raises(MessageError) as info:
        decode_message(command, head + compact_size(limit) + item + tail)
    assert type(info.value.error) is TruncatedError


def test_count_limits_cover_every_list() -> None:
    assert len(LIMITS) == 10  # + cmpctblock's two counts and version's user agent, above


def peak_allocation(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(MessageError) as info:
            fn()
        assert type(info.value.error) in (OversizeError, TruncatedError)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


HUGE_COUNTS = [
    b"\xff" + (2**32).to_bytes(8, "little"),  # 2**32 items
    b"\xfe\xff\xff\xff\xff",  # 2**32 - 1
    b"\xfe\x00\x00\x00\x02",  # 32 MiB: the largest compact size the reader allows
    b"\xfe\xff\xff\xff\x01",  # just under it
]


@pytest.mark.parametrize(
    "command", [*sorted(LIMITS), b"cmpctblock", b"block", b"tx"], ids=bytes.decode
)
def test_huge_count_costs_nothing(command: bytes) -> None:
    head = {
        b"cmpctblock": HEADER.serialize() + pack_u64(0),
        b"block": HEADER.serialize(),
        b"tx": pack_u32(1),
    }.get(command, LIMITS.get(command, (0, b"", b"", b""))[1])
    for count in HUGE_COUNTS:
        payload = head + count + bytes(8)
        assert len(payload) <= 128
        peak = peak_allocation(lambda payload=payload: decode_message(command, payload))
        assert peak < 64 * 1024, f"{command!r}: peak allocation {peak} bytes"


# -- truncation, trailing bytes, non-canonical sizes on one sample of every message -------------


def sample_messages() -> dict[bytes, Any]:
    tx = Tx(2, [TxIn(OutPoint(HASH, 1), b"\x00\x14", 5, [b"\x01" * 3])], [TxOut(9, b"\x51")], 7)
    ipv4 = NetAddress.parse("1.2.3.4", 8333)
    onion = NetAddress.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion", 1)
    items = (InvItem(InvType.MSG_WTX, HASH), InvItem(InvType.MSG_WITNESS_BLOCK, bytes(32)))
    return {
        b"version": m.Version.decode(DEV_REF_VERSION),
        b"verack": m.Verack(),
        b"wtxidrelay": m.WtxidRelay(),
        b"sendaddrv2": m.SendAddrV2(),
        b"ping": m.Ping(0x0123456789ABCDEF),
        b"pong": m.Pong(1),
        b"addr": m.Addr((TimedAddress(1, 9, ipv4), TimedAddress(2, 1, ipv4))),
        b"addrv2": m.AddrV2((TimedAddress(1, 9, ipv4), TimedAddress(2, 1, onion))),
        b"getaddr": m.GetAddr(),
        b"inv": m.Inv(items),
        b"getdata": m.GetData(items),
        b"notfound": m.NotFound(items),
        b"getheaders": m.GetHeaders(70016, (HASH, bytes(32)), bytes(32)),
        b"headers": m.Headers((HEADER, HEADER)),
        b"getblocks": m.GetBlocks(70016, (HASH,), HASH),
        b"block": m.BlockMsg(Block(HEADER, [COINBASE, tx])),
        b"tx": m.TxMsg(tx),
        b"sendheaders": m.SendHeaders(),
        b"mempool": m.MempoolMsg(),
        b"feefilter": m.FeeFilter(1000),
        b"sendcmpct": m.SendCmpct(False, 2),
        b"cmpctblock": m.CmpctBlock(HEADER, 5, (1, 2), (m.PrefilledTx(0, COINBASE),)),
        b"getblocktxn": m.GetBlockTxn(HASH, (1, 3)),
        b"blocktxn": m.BlockTxn(HASH, (tx, COINBASE)),
    }


SAMPLES = sample_messages()
EMPTY = {b"verack", b"wtxidrelay", b"sendaddrv2", b"getaddr", b"sendheaders", b"mempool"}


def test_samples_round_trip() -> None:
    assert set(SAMPLES) == set(MESSAGE_TYPES)
    for command, msg in SAMPLES.items():
        assert msg.command == command
        assert decode_message(command, msg.encode()) == msg
        assert not hasattr(msg, "__dict__")  # slotted
        name = next(iter(msg.__dataclass_fields__), "x")
        with pytest.raises((AttributeError, TypeError)):
            setattr(msg, name, None)  # frozen
    assert {c for c, msg in SAMPLES.items() if msg.encode() == b""} == EMPTY


def test_every_truncation_is_refused() -> None:
    checked = 0
    for command, msg in SAMPLES.items():
        payload = msg.encode()
        for n in range(len(payload)):
            if command == b"version" and n == len(payload) - 1:
                continue  # a version without the relay byte is a valid (pre-70001) message
            with pytest.raises(MessageError) as info:
                decode_message(command, payload[:n])
            assert type(info.value.error) is TruncatedError, (command, n)
            checked += 1
    assert checked == sum(len(msg.encode()) for msg in SAMPLES.values()) - 1


def test_trailing_bytes_are_refused() -> None:
    for command, msg in SAMPLES.items():
        for extra in (b"\x00", b"\x01\x02"):
            with pytest.raises(MessageError) as info:
                decode_message(command, msg.encode() + extra)
            assert type(info.value.error) is TrailingBytesError, command
    assert len(SAMPLES) == 24


# command → offset of a one-byte compact size in the sample's payload
COMPACT_SIZE_AT = {
    b"version": 80,  # user agent length
    b"addr": 0,
    b"addrv2": 0,
    b"inv": 0,
    b"getdata": 0,
    b"notfound": 0,
    b"getheaders": 4,
    b"headers": 0,
    b"getblocks": 4,
    b"block": 80,  # transaction count
    b"tx": 4,  # input count
    b"cmpctblock": 88,  # short id count
    b"getblocktxn": 32,
    b"blocktxn": 32,
}


def test_non_canonical_compact_sizes_are_refused() -> None:
    for command, offset in COMPACT_SIZE_AT.items():
        payload = SAMPLES[command].encode()
        n = payload[offset]
        assert n < 0xFD
        for wide in (b"\xfd" + n.to_bytes(2, "little"), b"\xfe" + n.to_bytes(4, "little")):
            bad = payload[:offset] + wide + payload[offset + 1 :]
            with pytest.raises(MessageError) as info:
                decode_message(command, bad)
            assert type(info.value.error) is NonCanonicalError, command
    assert len(COMPACT_SIZE_AT) == 14


def test_message_error_carries_the_command() -> None:
    with pytest.raises(MessageError) as info:
        decode_message(b"ping", b"\x00")
    assert info.value.command == b"ping"
    assert isinstance(info.value.error, TruncatedError)
    assert str(info.value).startswith("ping: ")
    assert isinstance(info.value, DecodeError)


# -- building messages --------------------------------------------------------------------------


def test_construction_errors() -> None:
    ipv4 = NetAddress.parse("1.2.3.4", 1)
    onion = NetAddress.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion", 1)
    torv2 = NetAddress(Network.TORV2, bytes(10), 1)
    cjdns = NetAddress.parse("fc00::1", 1, cjdns=True)
    v = SAMPLES[b"version"]
    item = InvItem(1, HASH)
    builders: list[Callable[[], object]] = [
        lambda: m.Inv((item,) * 50_001),
        lambda: m.GetData((item,) * 50_001),
        lambda: m.NotFound([item]),  # type: ignore[arg-type]
        lambda: m.Addr((TimedAddress(1, 1, onion),)),
        lambda: m.Addr((TimedAddress(1, 1, cjdns),)),
        lambda: m.Addr((TimedAddress(1, 1, ipv4),) * 1001),
        lambda: m.AddrV2((TimedAddress(1, 1, torv2),)),
        lambda: m.Headers((HEADER,) * 2001),
        lambda: m.GetHeaders(1, (HASH,) * 102, HASH),
        lambda: m.GetBlocks(1, (b"short",), HASH),
        lambda: m.GetBlocks(-1, (), HASH),
        lambda: m.Ping(-1),
        lambda: m.Pong(2**64),
        lambda: m.Version(*[getattr(v, f) for f in v.__dataclass_fields__][:6], "x" * 257, 0, True),
        lambda: m.Version(*[getattr(v, f) for f in v.__dataclass_fields__][:8], 1),  # type: ignore[arg-type]
        lambda: m.Version(2**31, *[getattr(v, f) for f in v.__dataclass_fields__][1:]),
        lambda: m.VersionAddress(1, onion),
        lambda: m.FeeFilter(2**63),
        lambda: m.SendCmpct(1, 2),  # type: ignore[arg-type]
        lambda: m.GetBlockTxn(HASH, (2, 1)),
        lambda: m.GetBlockTxn(HASH, (1, 1)),
        lambda: m.GetBlockTxn(HASH, (0x10000,)),
        lambda: m.CmpctBlock(HEADER, 0, (), ()),
        lambda: m.CmpctBlock(HEADER, 0, (2**48,), ()),
        lambda: m.CmpctBlock(HEADER, 0, (1,), (m.PrefilledTx(2, COINBASE),)),
        lambda: m.CmpctBlock(
            HEADER, 0, (1,), (m.PrefilledTx(1, COINBASE), m.PrefilledTx(1, COINBASE))
        ),
        lambda: m.PrefilledTx(0x10000, COINBASE),
        lambda: InvItem(2**32, HASH),
        lambda: InvItem(1, HASH[:31]),
        lambda: m.BlockTxn(HASH, (MIN_TX,)),  # type: ignore[arg-type]
    ]
    for build in builders:
        with pytest.raises((ValueError, TypeError)):
            build()
    assert len(builders) == 30
