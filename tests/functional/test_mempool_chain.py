"""The mempool of a real ``peercash node`` following its chain and surviving restarts: blocks
disconnected by ``invalidateblock`` return their transactions (and ``reconsiderblock`` takes
them again), a spend of a coinbase that a reorg makes immature leaves, and the pool with its
``prioritisetransaction`` deltas and unbroadcast marks comes back from ``mempool.dat`` after a
restart; a damaged file is skipped with a warning, and ``-persistmempool=0`` neither loads nor
saves it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from framework.coins import COINBASE_MATURITY, OP_TRUE_ADDRESS, NodeCoins, out

from peercash.tools.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

QUIET = ["--connect=0", "--listen"]


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("chain"), extra_args=QUIET) as n:
        n.start()
        yield n


@pytest.fixture(scope="module")
def coins(node: NodeProcess) -> NodeCoins:
    c = NodeCoins(node)
    c.mine(120)
    return c


def test_invalidated_blocks_return_their_transactions(node: NodeProcess, coins: NodeCoins) -> None:
    parent = coins.spend([coins.coin()], fee=3_000)
    child = coins.spend([out(parent)], fee=3_000)
    other = coins.spend([coins.coin()], fee=3_000)
    for tx in (parent, child, other):
        coins.send(tx)
    [first] = coins.mine(1)
    [second] = coins.mine(1)  # empty
    assert node.call("getblock", first)["tx"][1:] == [parent.txid_hex, child.txid_hex,
                                                      other.txid_hex]  # fmt: skip
    assert node.call("getrawmempool") == []
    node.call("invalidateblock", first)  # disconnects both blocks
    assert node.call("getbestblockhash") == node.call("getblockheader", first)["previousblockhash"]
    pool = node.call("getrawmempool", True)
    assert set(pool) == {parent.txid_hex, child.txid_hex, other.txid_hex}
    assert pool[child.txid_hex]["depends"] == [parent.txid_hex]
    assert as_json(pool[parent.txid_hex]["fees"])["descendant"] == Decimal("0.00006")
    node.call("reconsiderblock", first)
    assert node.call("getbestblockhash") == second
    assert node.call("getrawmempool") == []


def test_a_reorg_drops_a_spend_of_a_coinbase_made_immature(
    node: NodeProcess, coins: NodeCoins
) -> None:
    empty = node.call("generateblock", OP_TRUE_ADDRESS, [])["hash"]
    coins.record_block(empty)
    tip = coins.height
    # The coinbase that just became mature for the next block (depth 100).
    [coin] = [p for h, p in coins.coinbases if h == tip + 1 - COINBASE_MATURITY]
    spend = coins.spend([coin])
    keep = coins.spend([coins.coin()])
    coins.send(spend)
    coins.send(keep)
    node.call("invalidateblock", empty)
    assert coins.height == tip - 1
    # One block less: the coinbase is at depth 99 for the next block; the spend left the pool.
    assert node.call("getrawmempool") == [keep.txid_hex]
    [r] = node.call("testmempoolaccept", [spend.serialize().hex()])
    assert r["reject-reason"] == "bad-txns-premature-spend-of-coinbase"
    node.call("reconsiderblock", empty)
    assert coins.height == tip
    coins.mine(1)
    assert node.call("getrawmempool") == []


def test_the_pool_survives_a_restart(tmp_path: Path) -> None:
    n = NodeProcess(tmp_path / "persist", extra_args=QUIET)
    with n:
        n.start()
        c = NodeCoins(n)
        c.mine(105)
        parent = c.spend([c.coin()], fee=2_000)
        child = c.spend([out(parent)], fee=2_000)
        lone = c.spend([c.coin()], fee=5_000)
        for tx in (parent, child, lone):
            c.send(tx)
        assert n.call("prioritisetransaction", parent.txid_hex, None, 7_000) is True
        absent = "ab" * 32
        assert n.call("prioritisetransaction", absent, 0, -1_500) is True
        before = n.call("getrawmempool", True)
        saved = n.call("savemempool")
        path = n.net_datadir / "mempool.dat"
        assert saved == {"filename": str(path)} and path.stat().st_size > 0
        n.stop()

        n.start()
        # Core's order: fewer ancestors first, then the higher (modified) feerate.
        assert n.call("getrawmempool") == [parent.txid_hex, lone.txid_hex, child.txid_hex]
        after = n.call("getrawmempool", True)
        for txid, entry in before.items():
            assert entry == after[txid], txid
        assert as_json(after[parent.txid_hex]["fees"])["modified"] == Decimal("0.00009")
        assert n.call("getprioritisedtransactions") == {
            parent.txid_hex: {"fee_delta": 7_000, "in_mempool": True, "modified_fee": 9_000},
            absent: {"fee_delta": -1_500, "in_mempool": False},
        }
        info = n.call("getmempoolinfo")
        assert (info["loaded"], info["size"], info["unbroadcastcount"]) == (True, 3, 3)
        assert "Loaded 3 mempool transactions" in (n.net_datadir / "debug.log").read_text()
        n.stop()

        # A damaged file: the node starts with an empty pool and says why.
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        n.start()
        assert n.call("getrawmempool") == []
        assert n.call("getmempoolinfo")["loaded"] is True
        log = (n.net_datadir / "debug.log").read_text()
        assert f"mempool file {path} fails its checksum: skipped" in log
        c.send(lone)
        n.stop()

    # -persistmempool=0 (in the config file, Core's form): not loaded, not saved.
    saved_bytes = path.read_bytes()
    (n.datadir / "peercash.conf").write_text("persistmempool=0\n")
    with n:
        n.start()
        assert n.call("getrawmempool") == []
        c.send(parent)
        n.stop()
    assert path.read_bytes() == saved_bytes
