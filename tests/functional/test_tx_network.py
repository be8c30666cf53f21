"""Transactions and compact blocks across a real network (issue #11): five peercash nodes and
one bcoin node, real processes on loopback.

The peercash nodes form a ring with one chord (0→1→2→3→4→0 and 0→2, each arrow a ``--connect``)
and node 3 also dials bcoin. bcoin mines the first 450 blocks (its segwit is a BIP9 deployment
that its own miner signals: active from 432), paying P2WSH(OP_TRUE), and the peercash nodes sync
them; every later block is mined by a peercash node. Coins are those coinbases, spent with the
witness ``[OP_TRUE]``.

One test, in steps that build on each other's state (the network costs some seconds to build):

a. a transaction sent to each peercash node in turn, and one sent to bcoin, reach every mempool
   (bcoin's too); a block mined on one node holds them and every node, bcoin included, ends on
   its tip with an empty mempool;
b. compact blocks: 200 transactions spread over the nodes reach every pool, a block of them is
   mined, and every other peercash node rebuilds it from its pool without a round trip
   (``getcompactblockstats``); then a block with a transaction only the miner has (zero fee,
   never relayed, mined with ``generateblock``) is completed with ``getblocktxn`` everywhere;
c. double spends sent at the same moment to two distant nodes: when one pays much more, it wins
   in every mempool (full RBF) and in the block; with equal fees each node keeps the one it saw
   first, and after a block every node agrees;
d. a burst of 500 transactions: how long until every pool has them, and the event loop's lag
   meanwhile (``getlooplag``);
e. the whole network restarted without ``--whitelist``: relay still works, at Core's trickle
   delays (the runs above use ``noban``, as Core's functional tests do, for speed).

Figures (propagation times, the share rebuilt without ``getblocktxn``, loop lag) are printed.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from framework.bcoin import BcoinInstallError, BcoinNode, ensure_bcoin
from framework.util import tail, wait_until

from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.mining.builder import OP_TRUE_SCRIPT, P2WSH_OP_TRUE
from peercash.tools.nodeproc import NodeProcess, RpcCallError

pytestmark = pytest.mark.slow

N = 5
EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2))
"""Who dials whom: a ring and a chord."""
BCOIN_PEER = 3
"""The peercash node that dials bcoin."""
BCOIN_BLOCKS = 450
PAY = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"  # P2WSH(OP_TRUE)
NOBAN = "--whitelist=noban,in,out@127.0.0.1"
FEE = 10_000
COMPACT_TXS = 200
BURST_TXS = 500
NON_FINAL = 0xFFFFFFFD


# -- coins and transactions ------------------------------------------------------------------


@dataclass
class Coin:
    outpoint: OutPoint
    value: int


def spend(coins: list[Coin], outputs: list[int] | None = None, fee: int = FEE) -> Tx:
    """Spend P2WSH(OP_TRUE) coins into P2WSH(OP_TRUE) outputs (all the value less ``fee`` in
    one output unless ``outputs`` gives the values)."""
    total = sum(c.value for c in coins)
    values = outputs if outputs is not None else [total - fee]
    assert sum(values) == total - fee
    inputs = [TxIn(c.outpoint, b"", NON_FINAL, (OP_TRUE_SCRIPT,)) for c in coins]
    return Tx(2, inputs, [TxOut(v, P2WSH_OP_TRUE) for v in values], 0)


def outputs_of(tx: Tx) -> list[Coin]:
    return [Coin(OutPoint(tx.txid, i), o.value) for i, o in enumerate(tx.outputs)]


# -- the network -----------------------------------------------------------------------------


@dataclass
class Net:
    nodes: list[NodeProcess]
    bcoin: BcoinNode
    coins: list[Coin]
    figures: dict[str, Any] = field(default_factory=dict)

    def all_pools(self) -> list[set[str]]:
        pools = [set(n.call("getrawmempool")) for n in self.nodes]
        return [*pools, set(self.bcoin.rpc("getrawmempool"))]

    def take(self, n: int) -> list[Coin]:
        taken, self.coins = self.coins[:n], self.coins[n:]
        assert len(taken) == n, "out of coins"
        return taken

    def wait_in_every_pool(self, txids: set[str], timeout: float, what: str) -> float:
        """Until every pool (bcoin's too) has ``txids``; returns the seconds it took."""
        t = time.monotonic()
        wait_until(lambda: all(txids <= p for p in self.all_pools()), timeout, 0.05, what)
        return time.monotonic() - t

    def wait_same_tip(self, block_hash: str, timeout: float = 30.0) -> None:
        def same() -> bool:
            tips = [n.call("getbestblockhash") for n in self.nodes]
            return tips == [block_hash] * N and self.bcoin.getbestblockhash() == block_hash

        wait_until(same, timeout, 0.05, f"every node on {block_hash}")

    def mine(self, i: int) -> str:
        [h] = self.nodes[i].call("generatetoaddress", 1, PAY)
        self.wait_same_tip(h)
        return str(h)

    def stats(self) -> list[dict[str, Any]]:
        return [n.call("getcompactblockstats") for n in self.nodes]

    @contextlib.contextmanager
    def logs_on_failure(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            for i, n in enumerate(self.nodes):
                with contextlib.suppress(Exception):
                    info = n.call("getblockchaininfo")
                    peers = [
                        (p["id"], p["inbound"], p["synced_headers"], p["synced_blocks"])
                        for p in n.call("getpeerinfo")
                    ]
                    print(
                        f"node {i}: {info['blocks']}/{info['headers']} peers {peers}",
                        file=sys.stderr,
                    )
                print(f"--- node {i} debug.log tail ---", file=sys.stderr)
                print(tail(n.net_datadir / "debug.log", 30), file=sys.stderr)
            print(f"--- bcoin log tail ---\n{self.bcoin.log_tail(30)}", file=sys.stderr)
            raise


def node_args(i: int, nodes: list[NodeProcess], bcoin: BcoinNode, *extra: str) -> list[str]:
    args = ["--listen", "--debug=net", "--debug=mempool", *extra]
    args += [f"--connect=127.0.0.1:{nodes[b].port}" for a, b in EDGES if a == i]
    if i == BCOIN_PEER:
        args.append(f"--connect=127.0.0.1:{bcoin.port}")
    return args


def expected_peers(i: int) -> int:
    return sum(1 for a, b in EDGES if i in (a, b)) + (i == BCOIN_PEER)


def wait_connected(net: Net) -> None:
    def linked() -> bool:
        for i, n in enumerate(net.nodes):
            peers = n.call("getpeerinfo")
            if len([p for p in peers if p["version"]]) != expected_peers(i):
                return False
        return True

    wait_until(linked, 60, 0.1, "the mesh to connect")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    try:
        bcoin_dir = ensure_bcoin()
    except BcoinInstallError as e:
        pytest.fail(str(e))
    with contextlib.ExitStack() as stack:
        bcoin = stack.enter_context(
            BcoinNode(tmp_path / "bcoin", install_dir=bcoin_dir, wallet=False)
        )
        # One block before the nodes connect: bcoin never answers a getheaders it has nothing
        # for (Core sends an empty headers message), and a node that picked it for its initial
        # headers sync would then hold back further getheaders to it for Core's two minutes.
        hashes = bcoin.mine(1, P2WSH_OP_TRUE)
        nodes = [NodeProcess(tmp_path / f"p{i}") for i in range(N)]
        for i, n in enumerate(nodes):
            n.extra_args = node_args(i, nodes, bcoin, NOBAN)
            stack.enter_context(n)
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready()
        net = Net(nodes, bcoin, [])
        with net.logs_on_failure():
            # The mesh first, then the blocks: every block is announced as on a live network.
            # Mined before the nodes connect, the chain would reach a node only through the
            # one peer it picked for its initial headers sync, and a node that picked a peer
            # still at genesis waits out Core's 15-minute headers-sync timeout.
            wait_connected(net)
            while len(hashes) < BCOIN_BLOCKS:
                hashes += bcoin.mine(min(150, BCOIN_BLOCKS - len(hashes)), P2WSH_OP_TRUE)
            assert bcoin.segwit_status() == "active"
            wait_until(
                lambda: all(n.call("getbestblockhash") == hashes[-1] for n in nodes),
                300,  # 5 nodes and bcoin on 2 cores shared with the rest of the suite
                0.2,
                "the peercash nodes to sync bcoin's chain",
            )
            # The mature coinbases (bcoin's coinbase pays P2WSH(OP_TRUE) in output 0).
            for h in range(1, BCOIN_BLOCKS - 100):
                cb = nodes[0].call("getblock", hashes[h - 1], 2)["tx"][0]
                value = round(float(cb["vout"][0]["value"]) * 100_000_000)
                net.coins.append(Coin(OutPoint(bytes.fromhex(cb["txid"])[::-1], 0), value))
        yield net
        print("\ntx network figures:", net.figures)


def send(node: NodeProcess | BcoinNode, tx: Tx) -> str:
    raw = tx.serialize().hex()
    if isinstance(node, BcoinNode):
        return str(node.rpc("sendrawtransaction", raw))
    return str(node.call("sendrawtransaction", raw))


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls from as many threads, released together; a refusal is returned (the
    other transaction may have got there first)."""
    barrier = threading.Barrier(len(calls))

    def run(f: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return f()
        except RpcCallError as e:
            return e

    with ThreadPoolExecutor(len(calls)) as ex:
        return list(ex.map(run, calls))


# -- the steps -------------------------------------------------------------------------------


def a_transactions_reach_every_pool_and_are_mined(net: Net) -> None:
    nodes = net.nodes
    for i, p in enumerate(nodes):
        peers = p.call("getpeerinfo")
        assert all(x["permissions"] == ["noban", "download"] for x in peers if "peercash" in
                   x["subver"]), (i, [x["permissions"] for x in peers])  # fmt: skip
    times = []
    txids: set[str] = set()
    # Node 0 gets the split for step d: 500 outputs (confirmed in this step's block).
    [big] = net.take(1)
    burst_values = [(big.value - 100_000) // BURST_TXS] * BURST_TXS
    burst_values[0] += big.value - 100_000 - sum(burst_values)
    split = spend([big], burst_values, fee=100_000)
    for i, p in enumerate(nodes):
        tx = split if i == 0 else spend(net.take(1))
        t = time.monotonic()
        txid = send(p, tx)
        assert txid == tx.txid_hex
        txids.add(txid)
        net.wait_in_every_pool({txid}, 20, f"the tx sent to node {i} everywhere")
        times.append(time.monotonic() - t)
    tx = spend(net.take(1))
    t = time.monotonic()
    assert send(net.bcoin, tx) == tx.txid_hex
    net.wait_in_every_pool({tx.txid_hex}, 20, "the tx sent to bcoin everywhere")
    times.append(time.monotonic() - t)
    txids.add(tx.txid_hex)
    net.figures["a_seconds_to_every_pool_noban"] = [round(x, 2) for x in times]
    block_hash = net.mine(1)
    block = nodes[1].call("getblock", block_hash, 1)
    assert set(block["tx"][1:]) == txids
    assert set(net.bcoin.rpc("getblock", block_hash)["tx"][1:]) == txids
    wait_until(lambda: not any(net.all_pools()), 20, 0.05, "every mempool empty")
    net.figures["burst_coins"] = outputs_of(split)


def b_compact_blocks_are_rebuilt_from_the_pool(net: Net) -> None:
    nodes = net.nodes
    before = net.stats()
    txs = [spend(net.take(1)) for _ in range(COMPACT_TXS)]
    t = time.monotonic()
    for k, tx in enumerate(txs):
        send(nodes[k % N], tx)
    net.wait_in_every_pool({tx.txid_hex for tx in txs}, 60, "200 txs in every pool")
    net.figures["b_seconds_200_txs_sent_and_in_every_pool"] = round(time.monotonic() - t, 2)
    block_hash = net.mine(0)
    assert len(nodes[0].call("getblock", block_hash, 1)["tx"]) == COMPACT_TXS + 1
    after = net.stats()
    assert after[0] == before[0]  # the miner rebuilt nothing
    for i in range(1, N):
        d = {k: after[i][k] - before[i][k] for k in ("reconstructed", "roundtrip", "fallback")}
        assert d == {"reconstructed": 1, "roundtrip": 0, "fallback": 0}, (i, d)
        assert after[i]["txs"]["mempool"] - before[i]["txs"]["mempool"] == COMPACT_TXS, i
        assert after[i]["txs"]["requested"] == before[i]["txs"]["requested"], i
    rebuilt = sum(after[i]["reconstructed"] - before[i]["reconstructed"] for i in range(1, N))
    net.figures["b_share_without_getblocktxn"] = f"{rebuilt}/{N - 1}"
    wait_until(lambda: not any(net.all_pools()), 20, 0.05, "every mempool empty")

    # A transaction only the miner has: no fee, never relayed (the others would refuse it, and
    # one they had refused over P2P would sit in their extra pool for compact blocks, as in
    # Core): the miner puts it in a block with generateblock.
    before = after
    [lonely_coin] = net.take(1)
    lonely = spend([lonely_coin], fee=0)
    others = [spend(net.take(1)) for _ in range(10)]
    for k, tx in enumerate(others):
        send(nodes[k % N], tx)
    net.wait_in_every_pool({tx.txid_hex for tx in others}, 30, "10 more txs in every pool")
    with pytest.raises(RpcCallError) as e:
        nodes[1].call("sendrawtransaction", lonely.serialize().hex())
    assert (e.value.code, e.value.message.split(",")[0]) == (-26, "min relay fee not met")
    block_hash = nodes[0].call(
        "generateblock", PAY, [lonely.serialize().hex(), *(tx.txid_hex for tx in others)]
    )["hash"]
    net.wait_same_tip(block_hash)
    assert lonely.txid_hex in nodes[0].call("getblock", block_hash, 1)["tx"]
    after = net.stats()
    for i in range(1, N):
        d = {k: after[i][k] - before[i][k] for k in ("reconstructed", "roundtrip", "fallback")}
        # Two peers may both send the block while the first getblocktxn is out.
        assert d["reconstructed"] == 0 and d["fallback"] == 0 and d["roundtrip"] >= 1, (i, d)
        requested = after[i]["txs"]["requested"] - before[i]["txs"]["requested"]
        assert requested == d["roundtrip"], (i, requested, d)
    net.figures["b_roundtrip_blocks"] = [
        after[i]["roundtrip"] - before[i]["roundtrip"] for i in range(1, N)
    ]
    wait_until(lambda: not any(net.all_pools()), 20, 0.05, "every mempool empty")


def c_double_spends_end_with_one_winner(net: Net) -> None:
    nodes = net.nodes
    # One pays much more: full RBF makes it win wherever the cheap one came first.
    [coin] = net.take(1)
    cheap = spend([coin], fee=2_000)
    dear = spend([coin], fee=50_000)
    at_once([lambda: send(nodes[1], cheap), lambda: send(nodes[3], dear)])
    net.wait_in_every_pool({dear.txid_hex}, 30, "the dearer double spend everywhere")
    assert not any(cheap.txid_hex in p for p in net.all_pools())
    block_hash = net.mine(4)
    assert nodes[2].call("getblock", block_hash, 1)["tx"][1:] == [dear.txid_hex]
    wait_until(lambda: not any(net.all_pools()), 20, 0.05, "every mempool empty")

    # Equal fees: each node keeps the one it saw first; the block decides for everyone.
    [coin] = net.take(1)
    left = spend([coin], fee=5_000)
    right = spend([coin], [coin.value - 5_000 - 1_000, 1_000], fee=5_000)
    pair = {left.txid_hex, right.txid_hex}
    sent = at_once([lambda: send(nodes[1], left), lambda: send(nodes[4], right)])

    def settled() -> list[set[str]] | None:
        pools = net.all_pools()
        return pools if all(len(p & pair) == 1 for p in pools) else None

    pools = wait_until(settled, 30, 0.05, "one of the pair in every pool")
    if sent == [left.txid_hex, right.txid_hex]:  # both taken where they were sent
        assert left.txid_hex in pools[1] and right.txid_hex in pools[4]
    net.figures["c_equal_fee_split"] = [sorted(p & pair)[0][:8] for p in pools]
    block_hash = net.mine(0)
    winner = nodes[0].call("getblock", block_hash, 1)["tx"][1:]
    assert len(winner) == 1 and winner[0] in pair and winner[0] in pools[0]
    for i, n in enumerate(nodes):
        assert n.call("getrawtransaction", winner[0], True, block_hash)["txid"] == winner[0], i
    wait_until(lambda: not any(net.all_pools()), 20, 0.05, "every mempool empty")


def d_a_burst_of_500(net: Net) -> None:
    nodes = net.nodes
    coins: list[Coin] = net.figures.pop("burst_coins")
    txs = [spend([c], fee=FEE) for c in coins]
    for n in nodes:
        n.call("getlooplag")  # the monitor runs; the window below is what we report
    t = time.monotonic()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda k: send(nodes[k % N], txs[k]), range(BURST_TXS)))
    sent = time.monotonic() - t
    took = net.wait_in_every_pool({tx.txid_hex for tx in txs}, 120, "500 txs in every pool")
    window = time.monotonic() - t + 1
    lags = [n.call("getlooplag", window) for n in nodes]
    net.figures["d_burst_500"] = {
        "send_s": round(sent, 2),
        "every_pool_s": round(sent + took, 2),
        "loop_lag_max_ms": [round(x["max_ms"], 1) for x in lags],
        "loop_lag_p90_ms": [round(x["p90_ms"], 1) for x in lags],
    }
    net.mine(2)
    wait_until(lambda: not any(net.all_pools()), 30, 0.05, "every mempool empty")


def e_relay_without_noban(net: Net) -> None:
    nodes = net.nodes
    for n in nodes:
        n.stop()
    for i, n in enumerate(nodes):
        n.extra_args = node_args(i, nodes, net.bcoin)
        n.start(wait=False)
    for n in nodes:
        n.wait_ready()
    wait_connected(net)
    for n in nodes:
        assert all(p["permissions"] == [] for p in n.call("getpeerinfo"))
    times = []
    for i in (2, 4):
        tx = spend(net.take(1))
        t = time.monotonic()
        send(nodes[i], tx)
        net.wait_in_every_pool({tx.txid_hex}, 60, f"a trickled tx from node {i} everywhere")
        times.append(round(time.monotonic() - t, 2))
    net.figures["e_seconds_to_every_pool_trickle"] = times
    net.mine(3)


def test_transactions_and_compact_blocks_across_a_network(net: Net) -> None:
    with net.logs_on_failure():
        a_transactions_reach_every_pool_and_are_mined(net)
        b_compact_blocks_are_rebuilt_from_the_pool(net)
        c_double_spends_end_with_one_winner(net)
        d_a_burst_of_500(net)
        e_relay_without_noban(net)
