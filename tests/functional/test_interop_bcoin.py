"""Interop with bcoin 1.0.2, a real independent node (issue #10).

One bcoin chain is built (``make_chain_with_txs``: 520 blocks carrying bcoin-wallet payments,
segwit active from 432, witness spends after it), then, in order, on that chain:

1. a fresh peercash node syncs the whole chain from bcoin and ends on its tip, with the same
   UTXO set figures and byte-identical blocks;
2. bcoin mines blocks with payments while connected and peercash follows (bcoin announces
   them with ``headers``: we ask for that with ``sendheaders``);
3. peercash mines and bcoin follows (our blocks, version and BIP34 coinbase, are valid to bcoin);
4. a fresh bcoin connected only to peercash syncs the whole chain from it (bcoin's ``getblocks``);
5. a split (``setnetworkactive false`` on both sides, bcoin's emulated), both sides mine, the
   network comes back: first bcoin's branch is longer and peercash reorganises onto it, then
   ours is and bcoin reorganises onto ours. bcoin syncs only from peers it dialled, so for that
   round it dials peercash too (see the step).

The steps build on each other's state (and the chain costs half a minute of bcoin's wallet), so
they are one test calling a function per step: separate tests would be spread over xdist's
workers, each building the chain (xdist's ``loadgroup`` cannot keep them together under pytest
9.2, which ignores the node id it rewrites). Every process is stopped by the fixture, also on
failure, and a failing step prints the tails of the logs (peercash's ``debug.log`` with
``-debug=net``, bcoin's console log).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from framework.bcoin import (
    BcoinInstallError,
    BcoinNode,
    ChainStats,
    ensure_bcoin,
    make_chain_with_txs,
    to_bcoin_address,
)
from framework.util import tail, wait_until

from peercash.tools.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

BLOCKS = 520
TXS_PER_BLOCK = 2
BCOIN_LOG_LEVEL = "info"  # "debug" logs every P2P exchange (each getdata, inv and orphan)
# Where peercash's blocks pay: P2WPKH and P2WSH (Core regtest form; bcoin gets the same script).
PEERCASH_PAY = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
PEERCASH_PAY_B = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"


@dataclass
class World:
    bcoin: BcoinNode
    peercash: NodeProcess
    hashes: list[str]
    stats: ChainStats
    tmp: Path
    bcoin_dir: Path
    times: dict[str, float] = field(default_factory=dict)

    @property
    def debug_log(self) -> Path:
        return self.peercash.net_datadir / "debug.log"

    @contextlib.contextmanager
    def logs_on_failure(self, *extra: BcoinNode) -> Iterator[None]:
        try:
            yield
        except BaseException:
            print(f"--- peercash debug.log tail ({self.debug_log}) ---", file=sys.stderr)
            print(tail(self.debug_log, 60), file=sys.stderr)
            for b in (self.bcoin, *extra):
                print(f"--- {b.name} log tail ({b.log_path}) ---", file=sys.stderr)
                print(b.log_tail(40), file=sys.stderr)
            raise


def peercash_node(datadir: Path, *args: str) -> NodeProcess:
    return NodeProcess(datadir, extra_args=["--listen", "--debug=net", *args])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    try:
        bcoin_dir = ensure_bcoin()
    except BcoinInstallError as e:
        pytest.fail(str(e))
    tmp = tmp_path
    with contextlib.ExitStack() as stack:
        bcoin = stack.enter_context(
            BcoinNode(
                tmp / "bcoin-a", install_dir=bcoin_dir, name="bcoin-a", log_level=BCOIN_LOG_LEVEL
            )
        )
        stats = ChainStats()
        t = time.monotonic()
        hashes = make_chain_with_txs(bcoin, BLOCKS, TXS_PER_BLOCK, stats=stats)
        made = time.monotonic() - t
        print(
            f"\nbcoin-a mined {BLOCKS} blocks with {len(stats.txids)} wallet payments "
            f"({len(stats.witness_spends)} witness spends, segwit from {stats.segwit_height}) "
            f"in {made:.1f}s"
        )
        peercash = stack.enter_context(
            peercash_node(tmp / "peercash", f"--connect=127.0.0.1:{bcoin.port}")
        )
        w = World(bcoin, peercash, hashes, stats, tmp, bcoin_dir, times={"make_chain": made})
        yield w
        print("interop timings (s):", {k: round(v, 1) for k, v in w.times.items()})


def tip(node: NodeProcess) -> str:
    return str(node.call("getbestblockhash"))


def utxo_figures(info: dict[str, Any]) -> tuple[str, int, int, Decimal]:
    """What both nodes' ``gettxoutsetinfo`` report alike: tip, height, outputs, their value."""
    amount = Decimal(str(info["total_amount"]))
    return str(info["bestblock"]), int(info["height"]), int(info["txouts"]), amount


def assert_same_utxo_set(p: NodeProcess, b: BcoinNode) -> None:
    ours = utxo_figures(p.call("gettxoutsetinfo", "none"))
    assert ours == utxo_figures(b.rpc("gettxoutsetinfo"))
    assert ours[0] == tip(p)


def wait_peer_count(node: NodeProcess, n: int, timeout: float = 20.0) -> None:
    wait_until(lambda: node.call("getconnectioncount") == n, timeout, what=f"{n} peers")


def peercash_syncs_the_whole_chain_from_bcoin(world: World) -> None:
    b, p = world.bcoin, world.peercash
    with world.logs_on_failure():
        t = time.monotonic()
        p.start()
        wait_until(lambda: tip(p) == world.hashes[-1], 120, 0.2, "peercash to sync bcoin's chain")
        took = time.monotonic() - t
        world.times["peercash_sync"] = took
        print(f"peercash synced {BLOCKS} blocks from bcoin in {took:.1f}s ({BLOCKS / took:.0f}/s)")
        assert p.call("getblockcount") == b.getblockcount() == BLOCKS
        assert tip(p) == b.getbestblockhash()

        # The peer as each side sees it: bcoin speaks 70015, peercash dialled it (manual).
        [peer] = p.call("getpeerinfo")
        assert peer["version"] == 70015 and "bcoin" in peer["subver"]
        assert peer["connection_type"] == "manual"
        assert peer["synced_headers"] == peer["synced_blocks"] == BLOCKS
        [bpeer] = b.peers()
        assert bpeer["inbound"] and "peercash" in bpeer["subver"]

        # Same chain: hashes at every height, byte-identical blocks (witnesses included).
        assert [p.call("getblockhash", h) for h in range(1, BLOCKS + 1)] == world.hashes
        segwit = world.stats.segwit_height or 432
        for h in (1, 101, 102, segwit - 1, segwit, segwit + 1, BLOCKS - 1, BLOCKS):
            bh = world.hashes[h - 1]
            ours = p.call("getblock", bh, 0)
            assert ours == b.getblock_raw(bh).hex(), h
            assert p.call("getblock", bh, 1)["nTx"] == len(b.rpc("getblock", bh)["tx"]), h
        last = p.call("getblock", world.hashes[-1], 2)
        assert any("txinwitness" in vin for tx in last["tx"][1:] for vin in tx["vin"])

        # Same UTXO set: bcoin's gettxoutsetinfo counts unspent outputs and their value.
        ours = p.call("gettxoutsetinfo", "none")
        theirs = b.rpc("gettxoutsetinfo")
        print(f"utxo set: peercash {ours}, bcoin {theirs}")
        assert ours["bestblock"] == theirs["bestblock"] == world.hashes[-1]
        assert ours["height"] == theirs["height"] == BLOCKS
        assert utxo_figures(ours) == utxo_figures(theirs)
        # bcoin's "transactions" is every transaction in the chain, genesis included.
        assert p.call("getchaintxstats")["txcount"] == theirs["transactions"]
        assert theirs["transactions"] == 1 + BLOCKS + len(world.stats.txids)


def peercash_follows_blocks_bcoin_mines(world: World) -> None:
    """New blocks with payments, announced by bcoin while connected, reach peercash."""
    b, p = world.bcoin, world.peercash
    with world.logs_on_failure():
        base = p.call("getblockcount")
        stats = ChainStats()
        t = time.monotonic()
        mined = make_chain_with_txs(b, 3, TXS_PER_BLOCK, seed=3, stats=stats)
        wait_until(lambda: tip(p) == mined[-1], 30, 0.05, "peercash to follow bcoin's blocks")
        world.times["peercash_follows"] = time.monotonic() - t
        assert [p.call("getblockhash", h) for h in range(base + 1, base + 4)] == mined
        assert p.call("getblock", mined[-1], 1)["tx"][1:] == stats.txids[-TXS_PER_BLOCK:]
        [peer] = p.call("getpeerinfo")
        print("peercash <- bcoin messages:", peer["bytesrecv_per_msg"])
        print("peercash -> bcoin messages:", peer["bytessent_per_msg"])
        world.hashes += mined


def bcoin_follows_blocks_peercash_mines(world: World) -> None:
    b, p = world.bcoin, world.peercash
    with world.logs_on_failure():
        base = p.call("getblockcount")
        t = time.monotonic()
        mined = p.call("generatetoaddress", 5, PEERCASH_PAY)
        b.wait_for_tip(mined[-1], timeout=30)
        world.times["bcoin_follows"] = time.monotonic() - t
        assert b.getblockcount() == p.call("getblockcount") == base + 5
        assert [b.getblockhash(h) for h in range(base + 1, base + 6)] == mined
        # bcoin accepted them as valid blocks: their coinbase pays our script, in its UTXO set.
        block = b.rpc("getblock", mined[0], True, True)
        assert block["height"] == base + 1
        # Versionbits top bits, no signals; BIP34: the coinbase starts with the height (bcoin
        # only checks it from its BIP34 height, far away on its regtest, but Core always does).
        assert block["version"] == 0x20000000
        height = (base + 1).to_bytes(2, "little")
        assert block["tx"][0]["vin"][0]["coinbase"].startswith((b"\x02" + height).hex())
        out = block["tx"][0]["vout"][0]["scriptPubKey"]
        assert to_bcoin_address(PEERCASH_PAY) in str(out.get("addresses") or out.get("address"))
        assert_same_utxo_set(p, b)
        world.hashes += mined


def fresh_bcoin_syncs_the_whole_chain_from_peercash_alone(world: World) -> None:
    p = world.peercash
    height = p.call("getblockcount")
    with (
        BcoinNode(
            world.tmp / "bcoin-b",
            install_dir=world.bcoin_dir,
            name="bcoin-b",
            wallet=False,
            log_level=BCOIN_LOG_LEVEL,
        ) as fresh,
        world.logs_on_failure(fresh),
    ):
        t = time.monotonic()
        fresh.add_peer("127.0.0.1", p.port)
        fresh.wait_for_tip(tip(p), timeout=90)
        took = time.monotonic() - t
        world.times["fresh_bcoin_sync"] = took
        print(
            f"bcoin-b synced {height} blocks from peercash in {took:.1f}s ({height / took:.0f}/s)"
        )
        assert fresh.getblockcount() == height
        assert [fresh.getblockhash(h) for h in range(1, height + 1)] == world.hashes
        # Its only peer was peercash, and the first bcoin never saw it.
        peers = fresh.peers()
        assert [x["addr"] for x in peers] == [f"127.0.0.1:{p.port}"], peers
        assert len(world.bcoin.peers()) == 1
        assert len(p.call("getpeerinfo")) == 2
        assert_same_utxo_set(p, fresh)
        fresh.remove_peer("127.0.0.1", p.port)
    wait_peer_count(p, 1)


def split(world: World) -> None:
    world.peercash.call("setnetworkactive", False)
    world.bcoin.set_network_active(False)
    wait_until(
        lambda: world.peercash.call("getconnectioncount") == 0 and not world.bcoin.peers(),
        20,
        what="the link to drop",
    )


def heal(world: World, *, bcoin_first: bool) -> None:
    """Network back on at both ends; the side that dials goes second (the other one listens)."""
    if bcoin_first:
        world.bcoin.set_network_active(True)  # lifts its bans: peercash dials it
        world.peercash.call("setnetworkactive", True)
    else:
        world.peercash.call("setnetworkactive", True)
        world.bcoin.set_network_active(True)  # re-adds peercash, which it dials


def each_side_reorganises_onto_the_others_longer_branch(world: World) -> None:
    b, p = world.bcoin, world.peercash
    with world.logs_on_failure():
        base = p.call("getblockcount")
        assert tip(p) == b.getbestblockhash()

        # bcoin's branch is longer (and carries wallet payments): peercash reorganises.
        t = time.monotonic()
        split(world)
        ours = p.call("generatetoaddress", 2, PEERCASH_PAY_B)
        branch = ChainStats()
        theirs = make_chain_with_txs(b, 4, TXS_PER_BLOCK, seed=2, stats=branch)
        assert p.call("getblockcount") == base + 2 and b.getblockcount() == base + 4
        heal(world, bcoin_first=True)
        wait_until(lambda: tip(p) == theirs[-1], 60, 0.1, "peercash to reorganise onto bcoin's")
        world.times["peercash_reorg"] = time.monotonic() - t
        assert p.call("getblockcount") == b.getblockcount() == base + 4
        assert [p.call("getblockhash", h) for h in range(base + 1, base + 5)] == theirs
        assert b.getbestblockhash() == theirs[-1]
        tips = {x["hash"]: x for x in p.call("getchaintips")}
        assert tips[theirs[-1]]["status"] == "active" and tips[theirs[-1]]["height"] == base + 4
        assert tips[ours[-1]] == {
            "height": base + 2,
            "hash": ours[-1],
            "branchlen": 2,
            "status": "valid-fork",
        }
        # bcoin's wallet payments are confirmed on peercash, in the blocks bcoin put them in.
        assert len(branch.txids) == 4 * TXS_PER_BLOCK
        for i, block_hash in enumerate(theirs):
            for txid in branch.txids[i * TXS_PER_BLOCK : (i + 1) * TXS_PER_BLOCK]:
                tx = p.call("getrawtransaction", txid, True, block_hash)
                assert tx["txid"] == txid and tx["in_active_chain"] is True
        assert_same_utxo_set(p, b)

        # Now ours is longer: bcoin reorganises onto peercash's branch. bcoin syncs only from
        # peers it dialled (its "loader"), and learns of other peers' blocks only from their
        # announcements, which name new tips, not ones mined while the link was down: so, as
        # in a real network, bcoin dials peercash too (and peercash still dials bcoin).
        b.add_peer("127.0.0.1", p.port)
        wait_until(
            lambda: any(not x["inbound"] for x in b.peers()) and p.call("getconnectioncount") == 2,
            20,
            what="bcoin to dial peercash",
        )
        t = time.monotonic()
        base = p.call("getblockcount")
        split(world)
        ours = p.call("generatetoaddress", 3, PEERCASH_PAY)
        theirs = b.mine(1)
        assert b.getblockcount() == base + 1
        heal(world, bcoin_first=False)
        b.wait_for_tip(ours[-1], timeout=60)
        world.times["bcoin_reorg"] = time.monotonic() - t
        assert b.getblockcount() == p.call("getblockcount") == base + 3
        assert [b.getblockhash(h) for h in range(base + 1, base + 4)] == ours
        assert tip(p) == ours[-1]
        btips = {x["hash"]: x for x in b.rpc("getchaintips")}
        assert btips[ours[-1]]["status"] == "active", btips
        assert theirs[0] in btips and btips[theirs[0]]["status"] != "active", btips
        assert btips[theirs[0]]["height"] == base + 1
        assert_same_utxo_set(p, b)


def test_interop_with_bcoin(world: World) -> None:
    """The steps in order, on one chain and one pair of processes (see the module docstring)."""
    peercash_syncs_the_whole_chain_from_bcoin(world)
    peercash_follows_blocks_bcoin_mines(world)
    bcoin_follows_blocks_peercash_mines(world)
    fresh_bcoin_syncs_the_whole_chain_from_peercash_alone(world)
    each_side_reorganises_onto_the_others_longer_branch(world)
