"""Hypothesis strategies for the p2p tests: addresses and one valid message of every kind.

Load it from a test module with ``sys.path`` (pytest runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.p2p import messages as m
from peercash.p2p.netaddress import NetAddress, Network, TimedAddress

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEWER = settings(SETTINGS, max_examples=40)
"""For the per-message properties, which run 24 times over."""

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
hash32 = st.binary(min_size=32, max_size=32)

_MAPPED = bytes(10) + b"\xff\xff"
_ONIONCAT = bytes.fromhex("fd87d87eeb43")


def _addr_bytes(network: Network) -> st.SearchStrategy[bytes]:
    n = network.address_length
    raw = st.binary(min_size=n, max_size=n)
    if network is Network.IPV6:
        # Mostly arbitrary, sometimes in the special ranges the predicates look at.
        prefixes = st.sampled_from(
            [b"", b"\x20\x01", b"\x20\x02", b"\xfe\x80", b"\xfc", b"\x00\x64\xff\x9b", b"\x3f\xff"]
        )
        raw = st.tuples(prefixes, raw).map(lambda t: (t[0] + t[1])[:16])
        return raw.filter(lambda b: not b.startswith(_MAPPED) and not b.startswith(_ONIONCAT))
    return raw


def net_addresses(networks: tuple[Network, ...] = tuple(Network)) -> st.SearchStrategy[NetAddress]:
    return st.sampled_from(networks).flatmap(
        lambda net: st.builds(NetAddress, st.just(net), _addr_bytes(net), u16)
    )


def timed_addresses(networks: tuple[Network, ...]) -> st.SearchStrategy[TimedAddress]:
    return st.builds(TimedAddress, u32, u64, net_addresses(networks))


V1_NETWORKS = (Network.IPV4, Network.IPV6, Network.TORV2)
V2_NETWORKS = (Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS)

# -- consensus objects ----------------------------------------------------------------------------

script = st.binary(max_size=40)
txouts = st.builds(TxOut, i64, script)


@st.composite
def txs(draw: st.DrawFn) -> Tx:
    witness = draw(st.booleans())
    inputs = [
        TxIn(
            OutPoint(draw(hash32), draw(u32)),
            draw(script),
            draw(u32),
            draw(st.lists(st.binary(max_size=20), max_size=2)) if witness else [],
        )
        for _ in range(draw(st.integers(1, 2)))
    ]
    return Tx(draw(u32), inputs, draw(st.lists(txouts, max_size=2)), draw(u32))


headers = st.builds(Header, i32, hash32, hash32, u32, u32, u32)
blocks = st.builds(Block, headers, st.lists(txs(), max_size=3))

# -- messages -----------------------------------------------------------------------------------

version_addresses = st.builds(m.VersionAddress, u64, net_addresses(V1_NETWORKS))
user_agents = st.binary(max_size=m.MAX_SUBVERSION_LENGTH).map(
    lambda b: b.decode("utf-8", "surrogateescape")
)
inv_types = st.one_of(st.sampled_from(list(m.InvType)), u32)
inv_items = st.builds(m.InvItem, inv_types, hash32)


@st.composite
def cmpct_blocks(draw: st.DrawFn) -> m.CmpctBlock:
    short_ids = draw(st.lists(st.integers(0, 2**48 - 1), max_size=8))
    n_pre = draw(st.integers(0 if short_ids else 1, 3))
    prefilled = []
    last = -1
    for i in range(n_pre):
        index = draw(st.integers(last + 1, len(short_ids) + i))
        prefilled.append(m.PrefilledTx(index, draw(txs())))
        last = index
    return m.CmpctBlock(draw(headers), draw(u64), tuple(short_ids), tuple(prefilled))


increasing_indexes = st.lists(st.integers(0, m.MAX_COMPACT_TX_INDEX), unique=True, max_size=12).map(
    lambda xs: tuple(sorted(xs))
)

MESSAGES: dict[bytes, st.SearchStrategy[Any]] = {
    b"version": st.builds(
        m.Version,
        i32,
        u64,
        i64,
        version_addresses,
        version_addresses,
        u64,
        user_agents,
        i32,
        st.booleans(),
    ),
    b"verack": st.just(m.Verack()),
    b"wtxidrelay": st.just(m.WtxidRelay()),
    b"sendaddrv2": st.just(m.SendAddrV2()),
    b"ping": st.builds(m.Ping, u64),
    b"pong": st.builds(m.Pong, u64),
    b"addr": st.lists(timed_addresses(V1_NETWORKS), max_size=6).map(lambda xs: m.Addr(tuple(xs))),
    b"addrv2": st.lists(timed_addresses(V2_NETWORKS), max_size=6).map(
        lambda xs: m.AddrV2(tuple(xs))
    ),
    b"getaddr": st.just(m.GetAddr()),
    b"inv": st.lists(inv_items, max_size=6).map(lambda xs: m.Inv(tuple(xs))),
    b"getdata": st.lists(inv_items, max_size=6).map(lambda xs: m.GetData(tuple(xs))),
    b"notfound": st.lists(inv_items, max_size=6).map(lambda xs: m.NotFound(tuple(xs))),
    b"getheaders": st.builds(m.GetHeaders, u32, st.lists(hash32, max_size=5).map(tuple), hash32),
    b"getblocks": st.builds(m.GetBlocks, u32, st.lists(hash32, max_size=5).map(tuple), hash32),
    b"headers": st.lists(headers, max_size=5).map(lambda xs: m.Headers(tuple(xs))),
    b"block": st.builds(m.BlockMsg, blocks),
    b"tx": st.builds(m.TxMsg, txs()),
    b"sendheaders": st.just(m.SendHeaders()),
    b"mempool": st.just(m.MempoolMsg()),
    b"feefilter": st.builds(m.FeeFilter, i64),
    b"sendcmpct": st.builds(m.SendCmpct, st.booleans(), u64),
    b"cmpctblock": cmpct_blocks(),
    b"getblocktxn": st.builds(m.GetBlockTxn, hash32, increasing_indexes),
    b"blocktxn": st.builds(m.BlockTxn, hash32, st.lists(txs(), max_size=3).map(tuple)),
}
