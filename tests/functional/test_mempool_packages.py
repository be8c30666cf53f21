"""Transactions that depend on each other, on a real ``peercash node`` process: a child paying
for its low-fee parent in ``getblocktemplate`` and in the blocks the generate RPCs mine, the
TRUC (version 3) topology and size rules with Core's exact texts and sibling eviction, and
``submitpackage`` of a one-parent-one-child package with a zero-fee parent (also with ephemeral
dust), including Core's behaviour when part of a package fails.

One node for the module; coins from ``framework.coins``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from framework.coins import OP_TRUE_ADDRESS, NodeCoins, out, txhex

from peercash.consensus.primitives import Block, Tx, TxIn, TxOut
from peercash.tools.nodeproc import NodeProcess, RpcCallError
from peercash.tools.txbuild import NON_FINAL, P2WSH_OP_TRUE

pytestmark = pytest.mark.slow

COIN = 100_000_000
ANCHOR = bytes.fromhex("51024e73")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("pkg"), extra_args=["--connect=0", "--listen"]) as n:
        n.start()
        yield n


@pytest.fixture(scope="module")
def coins(node: NodeProcess) -> NodeCoins:
    c = NodeCoins(node)
    c.mine(125)
    return c


@pytest.fixture(autouse=True)
def empty_pool(node: NodeProcess, coins: NodeCoins) -> Iterator[None]:
    """Each test starts and ends with an empty pool (what it left is mined)."""
    assert node.call("getrawmempool") == []
    yield
    if node.call("getrawmempool"):
        coins.mine(1)


def btc(sats: int) -> Decimal:
    return Decimal(sats) / Decimal(COIN)


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


def rejected(node: NodeProcess, tx: Tx) -> tuple[int, str]:
    with pytest.raises(RpcCallError) as e:
        node.call("sendrawtransaction", txhex(tx))
    return e.value.code, e.value.message


def ids(tx: Tx) -> str:
    return f"{tx.txid_hex} (wtxid={tx.wtxid_hex})"


def block_txids(node: NodeProcess, block_hash: str) -> list[str]:
    return list(node.call("getblock", block_hash)["tx"])


# -- CPFP ------------------------------------------------------------------------------------


def test_a_child_pays_for_its_parent_in_the_template_and_the_block(
    node: NodeProcess, coins: NodeCoins
) -> None:
    parent = coins.spend([coins.coin()], fee=100)  # ~1 sat/vB
    child = coins.spend([out(parent)], fee=20_000)  # ~200 sat/vB
    middle = coins.spend([coins.coin()], fee=1_000)  # ~10 sat/vB: better than the parent alone
    for tx in (parent, middle, child):
        coins.send(tx)
    template = node.call("getblocktemplate", {"rules": ["segwit"]})
    order = [t["txid"] for t in template["transactions"]]
    assert order == [parent.txid_hex, child.txid_hex, middle.txid_hex]
    by_txid = {t["txid"]: t for t in template["transactions"]}
    assert by_txid[child.txid_hex]["depends"] == [1]  # 1-based index of the parent
    assert by_txid[parent.txid_hex]["fee"] == 100 and by_txid[child.txid_hex]["fee"] == 20_000
    assert template["coinbasevalue"] == 50 * COIN + 21_100

    [h] = coins.mine(1)
    assert block_txids(node, h)[1:] == order
    assert node.call("getrawmempool") == []


def test_generateblock_takes_pool_txids_and_raw_transactions(
    node: NodeProcess, coins: NodeCoins
) -> None:
    in_pool = coins.spend([coins.coin()])
    coins.send(in_pool)
    outside = coins.spend([coins.coin()])
    other = coins.spend([coins.coin()])
    coins.send(other)
    block = node.call("generateblock", OP_TRUE_ADDRESS, [in_pool.txid_hex, txhex(outside)])
    coins.record_block(block["hash"])
    assert block_txids(node, block["hash"])[1:] == [in_pool.txid_hex, outside.txid_hex]
    # Only what the block took left the pool.
    assert node.call("getrawmempool") == [other.txid_hex]
    missing = "11" * 32
    with pytest.raises(RpcCallError) as e:
        node.call("generateblock", OP_TRUE_ADDRESS, [missing])
    assert (e.value.code, e.value.message) == (-5, f"Transaction {missing} not in mempool.")


def test_a_block_with_a_conflicting_transaction_evicts_the_pools(
    node: NodeProcess, coins: NodeCoins
) -> None:
    coin = coins.coin()
    pooled = coins.spend([coin], fee=5_000)
    child = coins.spend([out(pooled)], fee=5_000)
    coins.send(pooled)
    coins.send(child)
    rival = coins.spend([coin], fee=1_000)  # spends the same coin, not in the pool
    block = node.call("generateblock", OP_TRUE_ADDRESS, [txhex(rival)])
    coins.record_block(block["hash"])
    assert node.call("getrawmempool") == []
    assert node.call("gettxspendingprevout", [{"txid": coin.txid_hex, "vout": coin.index}]) == [
        {"txid": coin.txid_hex, "vout": coin.index}
    ]


# -- TRUC ------------------------------------------------------------------------------------


def _wide(coins: NodeCoins, prevouts: list[Any], n: int, *, version: int, fee: int) -> Tx:
    total = sum(coins.value(p) for p in prevouts) - fee
    return coins.spend(prevouts, [TxOut(total // n, P2WSH_OP_TRUE) for _ in range(n)],
                       version=version, fee=fee)  # fmt: skip


def test_truc_topology_and_sizes(node: NodeProcess, coins: NodeCoins) -> None:
    checked = 0

    def truc_violation(tx: Tx, details: str) -> None:
        nonlocal checked
        assert rejected(node, tx) == (-26, f"TRUC-violation, {details}")
        [r] = node.call("testmempoolaccept", [txhex(tx)])
        assert (r["allowed"], r["reject-reason"]) == (False, "TRUC-violation")
        checked += 1

    parent = coins.split(coins.coin(), 3, version=3, fee=2_000)
    coins.send(parent)
    # A non-TRUC child of a TRUC parent, and a TRUC child of a non-TRUC parent.
    v2_child = coins.spend([out(parent, 0)], version=2)
    truc_violation(v2_child, f"non-version=3 tx {ids(v2_child)} cannot spend from version=3 tx "
                             f"{ids(parent)}")  # fmt: skip
    plain = coins.spend([coins.coin()])
    coins.send(plain)
    v3_of_v2 = coins.spend([out(plain)], version=3)
    truc_violation(v3_of_v2, f"version=3 tx {ids(v3_of_v2)} cannot spend from non-version=3 tx "
                             f"{ids(plain)}")  # fmt: skip
    # A TRUC child above 1,000 vB.
    big_child = _wide(coins, [out(parent, 0)], 30, version=3, fee=20_000)
    assert big_child.vsize() > 1_000
    truc_violation(big_child, f"version=3 child tx {ids(big_child)} is too big: "
                              f"{big_child.vsize()} > 1000 virtual bytes")  # fmt: skip
    # Any TRUC transaction above 10,000 vB.
    huge = _wide(coins, [coins.coin()], 240, version=3, fee=200_000)
    assert huge.vsize() > 10_000
    truc_violation(huge, f"version=3 tx {ids(huge)} is too big: {huge.vsize()} > 10000 virtual "
                         f"bytes")  # fmt: skip

    # One child is fine; a grandchild is not.
    child = coins.spend([out(parent, 0)], version=3, fee=2_000)
    coins.send(child)
    grandchild = coins.spend([out(child)], version=3)
    truc_violation(grandchild, f"tx {ids(grandchild)} would have too many ancestors")
    # A second child spending two outputs of the parent would be a sibling: it evicts the
    # first when it pays enough (sibling eviction)...
    sibling = coins.spend([out(parent, 1)], version=3, fee=10_000)
    assert coins.send(sibling) == sibling.txid_hex
    pool = set(node.call("getrawmempool"))
    assert child.txid_hex not in pool and {parent.txid_hex, sibling.txid_hex} <= pool
    # ...and is refused when it does not.
    cheap = coins.spend([out(parent, 2)], version=3, fee=1_000)
    code, message = rejected(node, cheap)
    assert code == -26
    assert message.startswith("insufficient fee (including sibling eviction), rejecting "
                              f"replacement {cheap.txid_hex}")  # fmt: skip
    # A sibling that also has another unconfirmed parent cannot evict: the descendant limit.
    assert checked == 5


# -- packages --------------------------------------------------------------------------------


def _tx_result(tx: Tx, fee: int, vsize: int, rate: int, includes: list[Tx]) -> dict[str, Any]:
    return {
        "txid": tx.txid_hex,
        "vsize": vsize,
        "fees": {
            "base": btc(fee),
            "effective-feerate": btc(rate),
            "effective-includes": [t.wtxid_hex for t in includes],
        },
    }


def test_a_zero_fee_truc_parent_with_its_child(node: NodeProcess, coins: NodeCoins) -> None:
    parent = coins.spend([coins.coin()], version=3, fee=0)
    child = coins.spend([out(parent)], version=3, fee=5_000)
    code, message = rejected(node, parent)
    assert (code, message) == (-26, f"min relay fee not met, 0 < {-(-parent.vsize() // 10)}")
    # A package that is not a child with its parents.
    with pytest.raises(RpcCallError) as e:
        node.call("submitpackage", [txhex(child), txhex(parent)])
    assert e.value.code == -25
    assert e.value.message == (
        "package topology disallowed. not child-with-parents or parents depend on each other."
    )
    result = node.call("submitpackage", [txhex(parent), txhex(child)])
    pv, cv = parent.vsize(), child.vsize()
    rate = 5_000 * 1000 // (pv + cv)
    assert as_json(result) == {
        "package_msg": "success",
        "tx-results": {
            parent.wtxid_hex: _tx_result(parent, 0, pv, rate, [parent, child]),
            child.wtxid_hex: _tx_result(child, 5_000, cv, rate, [parent, child]),
        },
        "replaced-transactions": [],
    }
    assert node.call("getrawmempool") == [parent.txid_hex, child.txid_hex]
    # Submitted again: both are already there (no effective feerate for pool entries).
    again = node.call("submitpackage", [txhex(parent), txhex(child)])
    assert as_json(again["tx-results"][child.wtxid_hex]) == {
        "txid": child.txid_hex,
        "vsize": cv,
        "fees": {"base": btc(5_000)},
    }
    [h] = coins.mine(1)
    assert block_txids(node, h)[1:] == [parent.txid_hex, child.txid_hex]


def test_ephemeral_dust_needs_its_spender(node: NodeProcess, coins: NodeCoins) -> None:
    coin = coins.coin()
    parent = coins.spend([coin], [TxOut(0, ANCHOR), TxOut(coins.value(coin), P2WSH_OP_TRUE)],
                         version=3, fee=0)  # fmt: skip
    # A child that leaves the dust unspent: the package fails on it.
    lazy = coins.spend([out(parent, 1)], version=3, fee=5_000)
    result = node.call("submitpackage", [txhex(parent), txhex(lazy)])
    assert result["package_msg"] == "transaction failed"
    assert result["tx-results"][lazy.wtxid_hex]["error"] == (
        f"missing-ephemeral-spends, tx {ids(lazy)} did not spend parent's ephemeral dust"
    )
    assert node.call("getrawmempool") == []
    # The anchor spent with an empty witness, and the parent's value: accepted together.
    child = Tx(3, [TxIn(out(parent, 0), b"", NON_FINAL), TxIn(out(parent, 1), b"", NON_FINAL,
               (b"\x51",))], [TxOut(coins.value(coin) - 5_000, P2WSH_OP_TRUE)], 0)  # fmt: skip
    result = node.call("submitpackage", [txhex(parent), txhex(child)])
    assert result["package_msg"] == "success", result
    assert set(node.call("getrawmempool")) == {parent.txid_hex, child.txid_hex}


def test_parents_valid_on_their_own_stay_when_the_package_fails(
    node: NodeProcess, coins: NodeCoins
) -> None:
    """Core's AcceptPackage: each transaction is tried alone first and kept if it passes; a
    hard failure of one stops the package evaluation but not the others' individual tries."""
    bad = Tx(2, [TxIn(coins.coin(), b"", NON_FINAL, (b"\x52",))],
             [TxOut(50 * COIN - 10_000, P2WSH_OP_TRUE)], 0)  # fmt: skip
    coins.book.record_tx(bad)
    good = coins.spend([coins.coin()], fee=2_000)
    child = coins.spend([out(bad), out(good)], fee=10_000)
    result = node.call("submitpackage", [txhex(bad), txhex(good), txhex(child)])
    assert result["package_msg"] == "transaction failed"
    res = result["tx-results"]
    assert res[bad.wtxid_hex]["error"].startswith(
        "mempool-script-verify-flag-failed (Witness program hash mismatch)"
    )
    assert as_json(res[good.wtxid_hex]) == _tx_result(good, 2_000, good.vsize(),
                                                      2_000_000 // good.vsize(), [good])  # fmt: skip
    assert res[child.wtxid_hex] == {
        "txid": child.txid_hex,
        "error": "bad-txns-inputs-missingorspent",
    }
    assert node.call("getrawmempool") == [good.txid_hex]


def test_package_helpers_build_real_blocks(coins: NodeCoins) -> None:
    """The coins helper parses what the node mined (a guard for the helpers themselves)."""
    height, prevout = coins.coinbases[-1]
    assert height == coins.height
    block = Block.parse(
        bytes.fromhex(coins.node.call("getblock", coins.node.call("getbestblockhash"), 0))
    )
    assert block.txs[0].txid == prevout.txid  # fmt: skip
