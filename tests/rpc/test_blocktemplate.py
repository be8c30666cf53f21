"""getblocktemplate, getmininginfo, getnetworkhashps and the generate methods with a mempool.

The methods are called as plain functions on a real regtest chain state through a small
stand-in facade (as ``test_methods.py`` does), with a stand-in mempool that hands out chunks and
drops what a connected block confirms. Long polls run on a second thread; the tests wait for
them with generous deadlines but assert nothing about timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.chain.chainstate import ChainState
from peercash.chain.index import BlockIndexEntry
from peercash.chain.locking import ChainLock
from peercash.consensus.params import MAIN, REGTEST, SIGNET, NetworkParams
from peercash.consensus.primitives import Block, OutPoint, Tx, TxOut
from peercash.mining.assembler import Chunk, TemplateTx, template_tx
from peercash.mining.builder import (
    P2WSH_OP_TRUE,
    assemble_block,
    coinbase_tx,
    solve,
    spend_op_true_p2wsh,
)
from peercash.rpc import blocktemplate as gbt
from peercash.rpc import mining
from peercash.rpc.registry import (
    REGISTRY,
    RPC_CLIENT_IN_INITIAL_DOWNLOAD,
    RPC_CLIENT_NOT_CONNECTED,
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RpcError,
)

ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
NOW = 1_700_000_000
SEGWIT = {"rules": ["segwit"]}
REGTEST_DIFFICULTY = 4.6565423739069247e-10
"""0x207fffff's difficulty as a double (Core prints it to 16 digits: 4.656542373906925e-10)."""
EMPTY_COMMITMENT = "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"


@dataclass
class Config:
    txindex: bool = False
    blockmintxfee: int | None = None


class FakePool:
    """A mempool as far as mining sees it: chunks in the order given, a counter, ``get``,
    ``len``; transactions a connected block confirms are dropped, as the real pool does."""

    def __init__(self, chain: ChainState) -> None:
        self.chunks: list[list[TemplateTx]] = []
        self.counter = 0
        chain.events.block_connected.append(self._connected)

    def add(self, *txs: TemplateTx) -> None:
        self.chunks.append(list(txs))
        self.counter += 1

    def _connected(self, block: Block, _entry: BlockIndexEntry) -> None:
        mined = {tx.txid for tx in block.txs}
        self.chunks = [c for c in self.chunks if not any(t.tx.txid in mined for t in c)]
        self.counter += 1

    def chunks_by_feerate(self) -> Iterable[Chunk]:
        return list(self.chunks)

    def transactions_updated(self) -> int:
        return self.counter

    def get(self, txid: bytes) -> Tx | None:
        for c in self.chunks:
            for t in c:
                if t.tx.txid == txid:
                    return t.tx
        return None

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)


class FakeConnman:
    def __init__(self, peers: int) -> None:
        self._peers = [type("P", (), {"is_closing": False})() for _ in range(peers)]

    def run_threadsafe(self, f: Any) -> Any:
        return f()

    def peers(self) -> list[Any]:
        return self._peers


@dataclass
class Node:
    chain: ChainState
    params: NetworkParams
    config: Config
    network: str
    datadir: Path
    start_time: float
    clock: list[float]
    mempool: Any = None
    connman: Any = None
    shutting_down: bool = False
    chain_lock: ChainLock = field(default_factory=ChainLock)


def make_node(datadir: Path, params: NetworkParams = REGTEST, config: Config | None = None) -> Node:
    clock = [float(NOW)]
    chain = ChainState(params, datadir, clock=lambda: clock[0])
    return Node(chain, params, config or Config(), params.name, datadir, float(NOW), clock)


@pytest.fixture
def node(tmp_path: Path) -> Any:
    n = make_node(tmp_path / "regtest")
    n.mempool = FakePool(n.chain)
    hashes = mining.generatetoaddress(n, 110, ADDRESS)
    assert len(hashes) == 110
    yield n
    n.chain.close()


def rpc_error(code: int, f: Any, *args: Any, match: str | None = None) -> RpcError:
    with pytest.raises(RpcError) as info:
        f(*args)
    assert info.value.code == code, info.value.message
    if match is not None:
        assert info.value.message == match, info.value.message
    return info.value


def coinbase_at(n: Node, height: int) -> Tx:
    entry = n.chain.entry_at(height)
    assert entry is not None
    return n.chain.read_block(entry).txs[0]


def spend(n: Node, height: int, fee: int, outputs: int = 1) -> Tx:
    cb = coinbase_at(n, height)
    value = cb.outputs[0].value - fee
    outs = [TxOut(value // outputs, P2WSH_OP_TRUE) for _ in range(outputs - 1)]
    outs.append(TxOut(value - (value // outputs) * (outputs - 1), P2WSH_OP_TRUE))
    return spend_op_true_p2wsh(OutPoint(cb.txid, 0), outs)


def test_methods_are_registered() -> None:
    for name in ("getblocktemplate", "getmininginfo", "getnetworkhashps", "submitblock"):
        assert name in REGISTRY.methods
    assert REGISTRY.methods["getblocktemplate"].lock is False  # takes the lock itself


# -- getblocktemplate -------------------------------------------------------------------------


def test_template_on_an_empty_pool(node: Any) -> None:
    t = gbt.getblocktemplate(node, SEGWIT)
    tip = node.chain.tip
    assert list(t) == [
        "capabilities", "version", "rules", "vbavailable", "vbrequired", "previousblockhash",
        "transactions", "coinbaseaux", "coinbasevalue", "longpollid", "target", "mintime",
        "mutable", "noncerange", "sigoplimit", "sizelimit", "weightlimit", "curtime", "bits",
        "height", "default_witness_commitment",
    ]  # fmt: skip
    assert t["capabilities"] == ["proposal"]
    assert t["version"] == 0x20000000
    assert t["rules"] == ["csv", "!segwit", "taproot"]
    assert t["vbavailable"] == {} and t["vbrequired"] == 0
    assert t["previousblockhash"] == tip.header.hash_hex
    assert t["transactions"] == [] and t["coinbaseaux"] == {}
    assert t["coinbasevalue"] == 5_000_000_000
    assert t["longpollid"] == tip.header.hash_hex + "110"  # the pool counter: 110 blocks seen
    assert t["target"] == "7fffff" + "0" * 58
    assert t["mintime"] == tip.median_time_past() + 1
    assert t["mutable"] == ["time", "transactions", "prevblock"]
    assert t["noncerange"] == "00000000ffffffff"
    assert (t["sigoplimit"], t["sizelimit"], t["weightlimit"]) == (80_000, 4_000_000, 4_000_000)
    assert t["curtime"] == max(NOW, tip.median_time_past() + 1)
    assert t["bits"] == "207fffff" and t["height"] == 111
    assert t["default_witness_commitment"] == EMPTY_COMMITMENT


def test_template_errors(node: Any) -> None:
    segwit_msg = (
        'getblocktemplate must be called with the segwit rule set (call with {"rules": ["segwit"]})'
    )
    rpc_error(RPC_INVALID_PARAMETER, gbt.getblocktemplate, node, {}, match=segwit_msg)
    rpc_error(RPC_INVALID_PARAMETER, gbt.getblocktemplate, node, {"rules": ["csv"]}, match=segwit_msg)  # fmt: skip
    rpc_error(RPC_TYPE_ERROR, gbt.getblocktemplate, node, {"rules": ["segwit", 7]}, match="JSON value of type number is not of expected type string")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, gbt.getblocktemplate, node, {"mode": 5}, match="Invalid mode")
    rpc_error(RPC_INVALID_PARAMETER, gbt.getblocktemplate, node, {"mode": "work", "rules": ["segwit"]}, match="Invalid mode")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, gbt.getblocktemplate, node, {"rules": ["segwit"], "longpollid": "abc"}, match="longpollid must be of length 64 (not 3, for 'abc')")  # fmt: skip
    # Regtest is a test chain: no peers and IBD do not matter.
    assert node.connman is None
    assert gbt.getblocktemplate(node, SEGWIT)["height"] == 111


def test_mainnet_needs_peers_and_a_synced_chain(tmp_path: Path) -> None:
    n = make_node(tmp_path / "main", MAIN)
    try:
        rpc_error(-31, gbt.getblocktemplate, n, SEGWIT, match="Error: Peer-to-peer functionality missing or disabled")  # fmt: skip
        n.connman = FakeConnman(0)
        rpc_error(RPC_CLIENT_NOT_CONNECTED, gbt.getblocktemplate, n, SEGWIT, match="peercash is not connected!")  # fmt: skip
        n.connman = FakeConnman(2)
        rpc_error(RPC_CLIENT_IN_INITIAL_DOWNLOAD, gbt.getblocktemplate, n, SEGWIT, match="peercash is in initial sync and waiting for blocks...")  # fmt: skip
        n.is_initial_block_download = lambda: False  # type: ignore[attr-defined]
        t = gbt.getblocktemplate(n, SEGWIT)
        # Height 1 on mainnet: segwit not active, so Core's pre-segwit shape.
        assert t["rules"] == ["csv"]
        assert (t["sigoplimit"], t["sizelimit"]) == (20_000, 1_000_000)
        assert "weightlimit" not in t and "default_witness_commitment" not in t
        assert t["coinbasevalue"] == 5_000_000_000 and t["bits"] == "1d00ffff"
    finally:
        n.chain.close()


def test_signet_needs_the_signet_rule(tmp_path: Path) -> None:
    n = make_node(tmp_path / "signet", SIGNET)
    try:
        rpc_error(RPC_INVALID_PARAMETER, gbt.getblocktemplate, n, SEGWIT, match='getblocktemplate must be called with the signet rule set (call with {"rules": ["segwit", "signet"]})')  # fmt: skip
        t = gbt.getblocktemplate(n, {"rules": ["segwit", "signet"]})
        assert t["rules"][:3] == ["csv", "!segwit", "!signet"]
        assert t["signet_challenge"] == SIGNET.signet_challenge.hex()  # type: ignore[union-attr]
        assert list(t)[-2:] == ["signet_challenge", "default_witness_commitment"]
    finally:
        n.chain.close()


def test_template_with_pool_transactions_is_mined_by_an_external_miner(node: Any) -> None:
    pool: FakePool = node.mempool
    parent = spend(node, 1, 0, 2)  # zero fee: in only with its child (one chunk)
    child = spend_op_true_p2wsh(
        OutPoint(parent.txid, 1), [TxOut(parent.outputs[1].value - 30_000, P2WSH_OP_TRUE)]
    )
    grandchild = spend_op_true_p2wsh(
        OutPoint(child.txid, 0), [TxOut(child.outputs[0].value - 4_000, P2WSH_OP_TRUE)]
    )
    lone = spend(node, 2, 6_000)
    pool.add(template_tx(parent, 0), template_tx(child, 30_000))
    pool.add(template_tx(lone, 6_000))
    pool.add(template_tx(grandchild, 4_000))
    node.clock[0] += 10  # the cached template is older than 5 s: rebuilt with the pool
    t = gbt.getblocktemplate(node, SEGWIT)
    txs = t["transactions"]
    assert [e["txid"] for e in txs] == [x.txid_hex for x in (parent, child, lone, grandchild)]
    assert [e["depends"] for e in txs] == [[], [1], [], [2]]
    assert [e["fee"] for e in txs] == [0, 30_000, 6_000, 4_000]
    assert [e["sigops"] for e in txs] == [0, 0, 0, 0]
    assert [e["weight"] for e in txs] == [x.weight() for x in (parent, child, lone, grandchild)]
    assert [e["hash"] for e in txs] == [x.wtxid_hex for x in (parent, child, lone, grandchild)]
    assert txs[0]["data"] == parent.serialize().hex()
    assert t["coinbasevalue"] == 5_000_000_000 + 40_000
    assert t["longpollid"] == t["previousblockhash"] + str(pool.counter)

    # Build the block as a miner would from the template alone.
    coinbase = coinbase_tx(t["height"], [TxOut(t["coinbasevalue"], P2WSH_OP_TRUE)])
    block = assemble_block(
        bytes.fromhex(t["previousblockhash"])[::-1],
        t["curtime"],
        int(t["bits"], 16),
        coinbase,
        [Tx.from_hex(e["data"]) for e in txs],
        version=t["version"],
        witness_commitment=True,
    )
    assert block.txs[0].outputs[-1].script_pubkey.hex() == t["default_witness_commitment"]
    # BIP23: the unsolved block, proposed, is valid.
    assert gbt.getblocktemplate(node, {"mode": "proposal", "data": block.serialize().hex()}) is None
    solved = solve(block)
    assert mining.submitblock(node, solved.serialize().hex()) is None
    assert node.chain.tip.hash == solved.hash
    assert len(pool) == 0
    assert gbt.getblocktemplate(node, {"mode": "proposal", "data": solved.serialize().hex()}) == "duplicate"  # fmt: skip


def test_template_is_cached_for_five_seconds_of_pool_changes(node: Any) -> None:
    pool: FakePool = node.mempool
    first = gbt.getblocktemplate(node, SEGWIT)
    lone = spend(node, 3, 2_000)
    pool.add(template_tx(lone, 2_000))
    node.clock[0] += 5  # not more than five seconds: the cached template stands
    again = gbt.getblocktemplate(node, SEGWIT)
    assert again["transactions"] == [] and again["longpollid"] == first["longpollid"]
    assert again["curtime"] == max(first["curtime"], NOW + 5)  # the time is still updated
    node.clock[0] += 1
    fresh = gbt.getblocktemplate(node, SEGWIT)
    assert [e["txid"] for e in fresh["transactions"]] == [lone.txid_hex]
    assert fresh["longpollid"] == fresh["previousblockhash"] + str(pool.counter)
    # A new tip rebuilds at once.
    [h] = mining.generatetoaddress(node, 1, ADDRESS)
    after = gbt.getblocktemplate(node, SEGWIT)
    assert after["previousblockhash"] == h and after["transactions"] == []


def test_proposals(node: Any) -> None:
    t = gbt.getblocktemplate(node, SEGWIT)
    coinbase = coinbase_tx(t["height"], [TxOut(t["coinbasevalue"], P2WSH_OP_TRUE)])
    prev = bytes.fromhex(t["previousblockhash"])[::-1]
    args = (prev, t["curtime"], int(t["bits"], 16), coinbase)
    good = assemble_block(*args, version=t["version"], witness_commitment=True)

    def propose(block: Block) -> Any:
        return gbt.getblocktemplate(node, {"mode": "proposal", "data": block.serialize().hex()})

    assert propose(good) is None
    h = good.header
    bad_root = Block(type(h)(h.version, h.prev_hash, b"\x01" * 32, h.time, h.bits, 0), good.txs)
    assert propose(bad_root) == "bad-txnmrklroot"
    greedy = coinbase_tx(t["height"], [TxOut(t["coinbasevalue"] + 1, P2WSH_OP_TRUE)])
    assert propose(assemble_block(prev, *args[1:3], greedy, witness_commitment=True)) == "bad-cb-amount"  # fmt: skip
    # No witness data at all: the commitment is optional; a witness without it is not.
    bare = coinbase_tx(t["height"], [TxOut(t["coinbasevalue"], P2WSH_OP_TRUE)], witness=False)
    no_commitment = assemble_block(*args[:3], bare, version=t["version"], witness_commitment=False)
    assert propose(no_commitment) is None
    nonce_only = assemble_block(*args, version=t["version"], witness_commitment=False)
    assert propose(nonce_only) == "unexpected-witness"
    genesis = node.chain.entry_at(0).hash
    stale = assemble_block(genesis, *args[1:], version=t["version"], witness_commitment=True)
    assert propose(stale) == "inconclusive-not-best-prevblk"
    tip_block = node.chain.read_block(node.chain.tip)
    assert propose(tip_block) == "duplicate"
    rpc_error(RPC_TYPE_ERROR, gbt.getblocktemplate, node, {"mode": "proposal"}, match="Missing data String key for proposal")  # fmt: skip
    rpc_error(RPC_DESERIALIZATION_ERROR, gbt.getblocktemplate, node, {"mode": "proposal", "data": "00"}, match="Block decode failed")  # fmt: skip
    rpc_error(RPC_DESERIALIZATION_ERROR, gbt.getblocktemplate, node, {"mode": "proposal", "data": "zz"}, match="Block decode failed")  # fmt: skip
    # Proposals were only checked: the chain did not move.
    assert node.chain.height == 110


def test_parse_counter() -> None:
    cases = {
        "": 0, "17": 17, " 42 ": 42, "+5": 5, "+-5": 0, "12abc": 12, "abc": 0,
        "-1": 0xFFFFFFFF, "4294967296": 0, "99999999999999999999999": 0xFFFFFFFF,
    }  # fmt: skip
    for text, want in cases.items():
        assert gbt.parse_counter(text) == want, text
    assert len(cases) == 10


# -- long polling -------------------------------------------------------------------------------


def run_in_thread(f: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = f(*args)
        except RpcError as e:
            out["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_long_poll_for_another_tip_returns_at_once(node: Any) -> None:
    genesis = node.chain.entry_at(0).header.hash_hex
    t = gbt.getblocktemplate(node, {"rules": ["segwit"], "longpollid": genesis + "0"})
    assert t["previousblockhash"] == node.chain.tip.header.hash_hex


def test_long_poll_ends_when_a_block_arrives(node: Any) -> None:
    first = gbt.getblocktemplate(node, SEGWIT)
    state = mining.mining_state(node)
    state.longpoll_first_check = 3600.0  # only a new tip can end the wait
    request = {"rules": ["segwit"], "longpollid": first["longpollid"]}
    thread, out = run_in_thread(gbt.getblocktemplate, node, request)
    thread.join(0.3)
    assert thread.is_alive()  # still waiting (nothing changed)
    # Mining takes the chain lock: the waiting call does not hold it.
    [h] = mining.generatetoaddress(node, 1, ADDRESS)
    thread.join(60)
    assert not thread.is_alive()
    assert out["result"]["previousblockhash"] == h
    assert out["result"]["height"] == 112


def test_long_poll_ends_when_the_pool_changes(node: Any) -> None:
    first = gbt.getblocktemplate(node, SEGWIT)
    state = mining.mining_state(node)
    state.longpoll_first_check = 0.05
    state.longpoll_next_check = 0.05
    pool: FakePool = node.mempool
    request = {"rules": ["segwit"], "longpollid": first["longpollid"]}
    thread, out = run_in_thread(gbt.getblocktemplate, node, request)
    thread.join(0.3)
    assert thread.is_alive()  # the counter has not moved: it keeps looking
    node.clock[0] += 10
    pool.add(template_tx(spend(node, 4, 3_000), 3_000))
    thread.join(60)
    assert not thread.is_alive()
    assert len(out["result"]["transactions"]) == 1
    assert out["result"]["longpollid"] != first["longpollid"]


def test_long_poll_ends_on_shutdown(node: Any) -> None:
    first = gbt.getblocktemplate(node, SEGWIT)
    mining.mining_state(node).longpoll_first_check = 3600.0
    request = {"rules": ["segwit"], "longpollid": first["longpollid"]}
    thread, out = run_in_thread(gbt.getblocktemplate, node, request)
    thread.join(0.2)
    node.shutting_down = True
    thread.join(60)
    assert not thread.is_alive()
    assert out["error"].code == RPC_CLIENT_NOT_CONNECTED and out["error"].message == "Shutting down"
    assert node.chain.events.tip_changed == []  # the waiter unsubscribed


# -- generate with a pool, getmininginfo, getnetworkhashps -------------------------------------


def test_generate_mines_the_pool(node: Any) -> None:
    pool: FakePool = node.mempool
    a = spend(node, 5, 7_000)
    b = spend(node, 6, 1_000)
    pool.add(template_tx(a, 7_000))
    pool.add(template_tx(b, 1_000))
    [h] = mining.generatetoaddress(node, 1, ADDRESS)
    block = node.chain.read_block(node.chain.tip)
    assert block.hash_hex == h
    assert [tx.txid for tx in block.txs[1:]] == [a.txid, b.txid]
    assert block.txs[0].outputs[0].value == 5_000_000_000 + 8_000
    assert len(pool) == 0
    info = mining.getmininginfo(node)
    assert info["currentblocktx"] == 2
    assert info["currentblockweight"] == 8000 + a.weight() + b.weight()
    # generateblock takes pool transactions by txid and pays their fees.
    c = spend(node, 7, 2_500)
    pool.add(template_tx(c, 2_500))
    res = mining.generateblock(node, ADDRESS, [c.txid_hex])
    block = node.chain.read_block(node.chain.tip)
    assert block.hash_hex == res["hash"] and block.txs[1].txid == c.txid
    assert block.txs[0].outputs[0].value == 5_000_000_000 + 2_500


def test_generateblock_checks_validity_first(node: Any) -> None:
    cb = coinbase_at(node, 8)
    bad = Tx(2, [type(cb.inputs[0])(OutPoint(cb.txid, 0), b"", 0xFFFFFFFE, (b"\x00",))], [TxOut(1000, P2WSH_OP_TRUE)], 0)  # fmt: skip
    err = rpc_error(-25, mining.generateblock, node, ADDRESS, [bad.serialize().hex()], False)
    assert err.message.startswith("TestBlockValidity failed: mandatory-script-verify-flag-failed")
    assert node.chain.height == 110


def test_getmininginfo(node: Any) -> None:
    info = mining.getmininginfo(node)
    tip = node.chain.tip
    assert list(info) == [
        "blocks", "currentblockweight", "currentblocktx", "bits", "difficulty", "target",
        "networkhashps", "pooledtx", "blockmintxfee", "chain", "next", "warnings",
    ]  # fmt: skip
    assert info["blocks"] == 110
    assert info["currentblockweight"] == 8000 and info["currentblocktx"] == 0
    assert info["bits"] == "207fffff" and info["difficulty"] == REGTEST_DIFFICULTY
    assert info["target"] == "7fffff" + "0" * 58
    assert info["networkhashps"] == mining.getnetworkhashps(node)
    assert info["pooledtx"] == 0
    assert info["blockmintxfee"] == Decimal("0.00000001")
    assert format(info["blockmintxfee"], "f") == "0.00000001"  # as the JSON encoder writes it
    assert info["chain"] == "regtest"
    assert info["next"] == {
        "height": 111, "bits": "207fffff", "difficulty": REGTEST_DIFFICULTY,
        "target": "7fffff" + "0" * 58,
    }  # fmt: skip
    assert info["warnings"] == []
    assert tip.height == 110


def test_getmininginfo_before_any_block_and_configured(tmp_path: Path) -> None:
    n = make_node(tmp_path / "fresh", config=Config(blockmintxfee=1000))
    try:
        info = mining.getmininginfo(n)
        assert "currentblockweight" not in info and "currentblocktx" not in info
        assert info["blocks"] == 0 and info["networkhashps"] == 0
        assert format(info["blockmintxfee"], "f") == "0.00001000"
    finally:
        n.chain.close()


def test_getnetworkhashps(node: Any) -> None:
    chain = node.chain
    times = [chain.entry_at(h).header.time for h in range(111)]
    # Every regtest block is worth 2 hashes (target 2**255 - 2**232 ... + 1 rounds to 2).
    assert chain.tip.chain_work - chain.entry_at(0).chain_work == 220
    # 120 blocks asked for, 110 exist: from genesis (2011) to the tip.
    assert mining.getnetworkhashps(node) == 220 / (max(times) - min(times))
    assert mining.getnetworkhashps(node, -1) == 220 / (max(times) - min(times))  # 110 % 144 + 1
    span = max(times[45:51]) - min(times[45:51])  # block 50 and the 5 before it
    assert span > 0
    assert mining.getnetworkhashps(node, 5, 50) == 10 / span
    assert mining.getnetworkhashps(node, 10, 0) == 0
    rpc_error(RPC_INVALID_PARAMETER, mining.getnetworkhashps, node, 0, match="Invalid nblocks. Must be a positive number or -1.")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, mining.getnetworkhashps, node, -2, match="Invalid nblocks. Must be a positive number or -1.")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, mining.getnetworkhashps, node, 10, 111, match="Block does not exist at specified height")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, mining.getnetworkhashps, node, 10, -2, match="Block does not exist at specified height")  # fmt: skip


def test_broken_template_is_an_error(node: Any) -> None:
    """A pool handing out a transaction whose input does not exist: Core's createNewBlock fails
    its TestBlockValidity with a runtime error (-1)."""
    pool: FakePool = node.mempool
    ghost = spend_op_true_p2wsh(OutPoint(b"\x44" * 32, 0), [TxOut(1000, P2WSH_OP_TRUE)])
    pool.add(template_tx(ghost, 1000))
    node.clock[0] += 10
    err = rpc_error(RPC_MISC_ERROR, gbt.getblocktemplate, node, SEGWIT)
    assert err.message.startswith("TestBlockValidity failed: bad-txns-inputs-missingorspent")
