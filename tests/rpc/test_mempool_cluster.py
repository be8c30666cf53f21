"""Core 31's cluster fields over RPC: getmempoolcluster, chunkweight and fees.chunk in
getmempoolentry / verbose getrawmempool, and getmempoolinfo's cluster limits and "optimal"."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mempool"))

from pooltools import Harness, out

from peercash.rpc import mempool as rpc
from peercash.rpc.registry import REGISTRY, RPC_INVALID_ADDRESS_OR_KEY, RpcError


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "chain")
    yield harness
    harness.close()


def node_of(h: Harness) -> Any:
    return SimpleNamespace(mempool=h.pool)


def sats(amount: Decimal) -> int:
    return int(amount * 100_000_000)


def test_getmempoolcluster_lists_chunks_in_mining_order(h: Harness) -> None:
    parent = h.spend([h.coin()], fee=300)  # cheap
    child = h.spend([out(parent)], fee=30_000)  # pays for it
    tail = h.spend([out(child)], fee=1_000)  # below the pair's feerate: a chunk of its own
    for tx in (parent, child, tail):
        assert h.pool.accept(tx).allowed
    node = node_of(h)
    want = {
        "clusterweight": parent.weight() + child.weight() + tail.weight(),
        "txcount": 3,
        "chunks": [
            {
                "chunkfee": Decimal("0.00030300"),
                "chunkweight": parent.weight() + child.weight(),
                "txs": [parent.txid_hex, child.txid_hex],
            },
            {"chunkfee": Decimal("0.00001000"), "chunkweight": tail.weight(),
             "txs": [tail.txid_hex]},
        ],
    }  # fmt: skip
    for tx in (parent, child, tail):  # any member names the same cluster
        assert rpc.getmempoolcluster(node, tx.txid_hex) == want
    assert list(want) == list(rpc.getmempoolcluster(node, parent.txid_hex))
    with pytest.raises(RpcError) as info:
        rpc.getmempoolcluster(node, "11" * 32)
    assert (info.value.code, info.value.message) == (
        RPC_INVALID_ADDRESS_OR_KEY,
        "Transaction not in mempool",
    )
    assert "getmempoolcluster" in REGISTRY.methods


def test_entry_has_chunk_fields_in_core_order(h: Harness) -> None:
    parent = h.spend([h.coin()], fee=300)
    child = h.spend([out(parent)], fee=30_000)
    assert h.pool.accept(parent).allowed and h.pool.accept(child).allowed
    node = node_of(h)
    e = rpc.getmempoolentry(node, parent.txid_hex)
    assert list(e) == [
        "vsize", "weight", "time", "height", "descendantcount", "descendantsize",
        "ancestorcount", "ancestorsize", "chunkweight", "wtxid", "fees", "depends", "spentby",
        "bip125-replaceable", "unbroadcast",
    ]  # fmt: skip
    assert list(e["fees"]) == ["base", "modified", "ancestor", "descendant", "chunk"]
    pair_weight = parent.weight() + child.weight()
    assert e["chunkweight"] == pair_weight and sats(e["fees"]["chunk"]) == 30_300
    assert sats(e["fees"]["base"]) == 300
    verbose = rpc.getrawmempool(node, True)
    for tx in (parent, child):
        assert verbose[tx.txid_hex]["chunkweight"] == pair_weight
        assert sats(verbose[tx.txid_hex]["fees"]["chunk"]) == 30_300
    # Prioritising the parent past its child splits the chunk.
    rpc.prioritisetransaction(node, parent.txid_hex, None, 1_000_000)
    e = rpc.getmempoolentry(node, parent.txid_hex)
    assert e["chunkweight"] == parent.weight()
    assert sats(e["fees"]["chunk"]) == 1_000_300 and sats(e["fees"]["base"]) == 300
    c = rpc.getmempoolentry(node, child.txid_hex)
    assert (c["chunkweight"], sats(c["fees"]["chunk"])) == (child.weight(), 30_000)


def test_getmempoolinfo_reports_cluster_limits(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", cluster_limit=10, cluster_size_limit_kvb=50)
    try:
        info = rpc.getmempoolinfo(node_of(h))
        assert list(info)[-5:] == [
            "permitbaremultisig",
            "maxdatacarriersize",
            "limitclustercount",
            "limitclustersize",
            "optimal",
        ]
        assert (info["limitclustercount"], info["limitclustersize"], info["optimal"]) == (
            10,
            50_000,
            True,
        )
        assert h.pool.clusters.max_count == 10 and h.pool.clusters.max_vsize == 200_000
    finally:
        h.close()
