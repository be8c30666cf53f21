"""The Core-compatible RPC methods, called as plain functions on a real regtest chain state.

A small stand-in facade carries the chain; 110 blocks are mined to the P2WSH of OP_TRUE with
``generatetoaddress``, then read back every way and checked against each other, against Core's
field names and against the vectors in ``tests/data``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.chain.chainstate import ChainState
from peercash.consensus.hashing import hash160, sha256
from peercash.consensus.params import MAIN, REGTEST, TESTNET, NetworkParams
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxOut
from peercash.mining.builder import P2WSH_OP_TRUE, spend_op_true_p2wsh
from peercash.rpc import blockchain as bc
from peercash.rpc import (
    methods,  # noqa: F401  (registers everything)
    mining,
    util,
)
from peercash.rpc import rawtransactions as raw
from peercash.rpc.registry import (
    REGISTRY,
    RPC_DATABASE_ERROR,
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RPC_VERIFY_ERROR,
    RpcError,
    bind_params,
)

ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
G = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
G2 = bytes.fromhex("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
NOW = 1_700_000_000
DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass
class Config:
    txindex: bool = False


@dataclass
class Node:
    """The facade as the methods see it (``rpc.context.ChainNode``)."""

    chain: ChainState
    params: NetworkParams
    config: Config
    network: str
    datadir: Path
    start_time: float
    txindex: Any = None
    mempool: Any = None
    clock: list[float] = field(default_factory=lambda: [float(NOW)])


def make_node(datadir: Path, params: NetworkParams = REGTEST) -> Node:
    clock = [float(NOW)]
    chain = ChainState(params, datadir, clock=lambda: clock[0])
    return Node(chain, params, Config(), params.name, datadir, float(NOW), clock=clock)


@pytest.fixture
def node(tmp_path: Path) -> Any:
    n = make_node(tmp_path / "regtest")
    hashes = mining.generatetoaddress(n, 110, ADDRESS)
    assert len(hashes) == 110
    n.hashes = hashes  # type: ignore[attr-defined]
    yield n
    n.chain.close()


def rpc_error(code: int, f: Any, *args: Any, match: str | None = None) -> RpcError:
    with pytest.raises(RpcError) as info:
        f(*args)
    assert info.value.code == code, info.value.message
    if match is not None:
        assert match in info.value.message, info.value.message
    return info.value


def as_json(value: Any) -> Any:
    """What a client sees: Decimals written as Core writes amounts."""

    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(format(o, "f"))
        raise TypeError(type(o))

    return json.loads(json.dumps(value, default=default))


def spend_coinbase(n: Any, height: int, data: bytes = b"peercash") -> Tx:
    """Spend the P2WSH(OP_TRUE) coinbase output at ``height``: 1 BTC to the same script, the
    rest minus a 10,000 sat fee back, plus an OP_RETURN."""
    cb = bc.getblock(n, n.hashes[height - 1], 2)["tx"][0]
    value = int(Decimal(str(cb["vout"][0]["value"])) * 100_000_000)
    prevout = OutPoint(bytes.fromhex(cb["txid"])[::-1], 0)
    outputs = [
        TxOut(100_000_000, P2WSH_OP_TRUE),
        TxOut(value - 100_000_000 - 10_000, P2WSH_OP_TRUE),
        TxOut(0, b"\x6a" + bytes((len(data),)) + data),
    ]
    return spend_op_true_p2wsh(prevout, outputs)


# -- the registry ----------------------------------------------------------------------------


def test_every_method_is_registered() -> None:
    expected = {
        "getblockchaininfo", "getblockcount", "getbestblockhash", "getblockhash", "getblock",
        "getblockheader", "getchaintips", "getdifficulty", "gettxout", "gettxoutsetinfo",
        "getblockstats", "getchaintxstats", "getdeploymentinfo", "verifychain",
        "invalidateblock", "reconsiderblock", "preciousblock", "waitfornewblock",
        "waitforblockheight", "waitforblock", "getindexinfo", "getrawtransaction",
        "decoderawtransaction", "decodescript", "createrawtransaction", "validateaddress",
        "generatetoaddress", "generatetodescriptor", "generateblock",
    }  # fmt: skip
    assert expected <= set(REGISTRY.methods)
    m = REGISTRY.methods["getblock"]
    assert bind_params(m, ["00" * 32]) == ["00" * 32, 1]
    assert bind_params(m, {"blockhash": "ab" * 32, "verbosity": 2}) == ["ab" * 32, 2]


# -- chain queries -----------------------------------------------------------------------------


def test_counts_hashes_and_headers_agree(node: Any) -> None:
    hashes = node.hashes
    assert bc.getblockcount(node) == 110
    assert bc.getbestblockhash(node) == hashes[-1]
    for height in (1, 50, 110):
        assert bc.getblockhash(node, height) == hashes[height - 1]
    genesis = Block.parse(REGTEST.genesis)
    assert bc.getblockhash(node, 0) == genesis.hash_hex

    for height in (0, 1, 55, 110):
        h = bc.getblockhash(node, height)
        header = bc.getblockheader(node, h)
        assert list(header) == [
            "hash", "confirmations", "height", "version", "versionHex", "merkleroot", "time",
            "mediantime", "nonce", "bits", "target", "difficulty", "chainwork", "nTx",
        ] + (["previousblockhash"] if height else []) + (["nextblockhash"] if height < 110 else [])  # fmt: skip
        assert header["hash"] == h
        assert header["height"] == height
        assert header["confirmations"] == 111 - height
        assert header["bits"] == "207fffff"
        assert header["target"] == "7fffff" + "0" * 58
        assert header["difficulty"] == pytest.approx(4.656542373906925e-10)
        assert int(header["chainwork"], 16) == 2 * (height + 1)
        assert header["nTx"] == 1
        assert header["versionHex"] == f"{header['version']:08x}"
        raw_header = bc.getblockheader(node, h, False)
        parsed = Header.parse(bytes.fromhex(raw_header))
        assert parsed.hash_hex == h
        assert parsed.time == header["time"]
        if height:
            assert header["previousblockhash"] == bc.getblockhash(node, height - 1)
        if height < 110:
            assert header["nextblockhash"] == bc.getblockhash(node, height + 1)
        # getblock verbosity 1 carries the same header fields.
        block = bc.getblock(node, h)
        assert {k: block[k] for k in header} == header

    # Mined blocks: time is at least MTP + 1 and not before the clock; MTP is monotonic.
    tip = bc.getblockheader(node, node.hashes[-1])
    assert tip["time"] >= NOW
    assert tip["mediantime"] <= tip["time"]


def test_getblock_verbosity_levels(node: Any) -> None:
    h = node.hashes[9]
    hex0 = bc.getblock(node, h, 0)
    block = Block.from_hex(hex0)
    assert block.hash_hex == h
    assert bc.getblock(node, h, False) == hex0
    v1 = bc.getblock(node, h, 1)
    assert bc.getblock(node, h, True) == v1
    assert v1["tx"] == [block.txs[0].txid_hex]
    assert v1["size"] == len(bytes.fromhex(hex0))
    assert v1["strippedsize"] == len(block.serialize_legacy())
    assert v1["weight"] == v1["strippedsize"] * 3 + v1["size"]
    v2 = bc.getblock(node, h, 2)
    cb = v2["tx"][0]
    assert cb["txid"] == block.txs[0].txid_hex
    assert cb["hex"] == block.txs[0].serialize().hex()
    assert "fee" not in cb  # coinbase: no undo data
    assert cb["vin"][0]["coinbase"].startswith("5a")  # BIP34: OP_10 for height 10
    assert cb["vin"][0]["txinwitness"] == ["00" * 32]  # the witness reserved value
    assert cb["vout"][0]["value"] == Decimal("50.00000000")
    assert cb["vout"][0]["scriptPubKey"]["address"] == ADDRESS
    assert cb["vout"][1]["scriptPubKey"]["type"] == "nulldata"
    assert cb["vout"][1]["scriptPubKey"]["asm"].startswith("OP_RETURN aa21a9ed")
    assert cb["vout"][1]["scriptPubKey"]["desc"].startswith("raw(6a24aa21a9ed")
    assert bc.getblock(node, h, 3) == v2  # no inputs, so no prevouts to add
    assert bc.getblock(node, h, 7) == v2  # Core treats every level above 3 as 3
    assert bc.getblock(node, h, -1) == hex0  # ... and every level below 1 as 0


def test_spend_read_back_every_way(node: Any) -> None:
    tx = spend_coinbase(node, 1)
    tip_before = bc.getblockcount(node)
    result = mining.generateblock(node, ADDRESS, [tx.serialize().hex()])
    assert bc.getbestblockhash(node) == result["hash"]
    assert bc.getblockcount(node) == tip_before + 1
    h = result["hash"]

    v3 = bc.getblock(node, h, 3)
    assert [t["txid"] for t in v3["tx"]] == [v3["tx"][0]["txid"], tx.txid_hex]
    spend = v3["tx"][1]
    assert spend["fee"] == Decimal("0.00010000")
    assert spend["vin"][0]["prevout"] == {
        "generated": True,
        "height": 1,
        "value": Decimal("50.00000000"),
        "scriptPubKey": util.script_to_json(P2WSH_OP_TRUE, REGTEST),
    }
    assert spend["vin"][0]["txinwitness"] == ["51"]
    assert spend["vin"][0]["scriptSig"] == {"asm": "", "hex": ""}
    v2 = bc.getblock(node, h, 2)
    assert "prevout" not in v2["tx"][1]["vin"][0]
    assert v2["tx"][1]["fee"] == Decimal("0.00010000")
    # The coinbase claims the fee.
    assert v2["tx"][0]["vout"][0]["value"] == Decimal("50.00010000")

    # Decoding the raw transaction gives the same as the block's view, without hex/fee.
    decoded = raw.decoderawtransaction(node, tx.serialize().hex())
    assert decoded == {k: v for k, v in v2["tx"][1].items() if k not in ("hex", "fee")}
    assert list(decoded) == [
        "txid", "hash", "version", "size", "vsize", "weight", "locktime", "vin", "vout",
    ]  # fmt: skip
    assert decoded["hash"] != decoded["txid"]  # it has a witness
    assert decoded["vout"][2]["scriptPubKey"]["asm"] == "OP_RETURN " + b"peercash".hex()

    # gettxout: the spent coin is gone, the new ones are there.
    cb1 = bc.getblock(node, node.hashes[0], 1)["tx"][0]
    assert bc.gettxout(node, cb1, 0) is None
    out = bc.gettxout(node, tx.txid_hex, 0)
    assert out == {
        "bestblock": h,
        "confirmations": 1,
        "value": Decimal("1.00000000"),
        "scriptPubKey": util.script_to_json(P2WSH_OP_TRUE, REGTEST),
        "coinbase": False,
    }
    assert bc.gettxout(node, tx.txid_hex, 2) is None  # OP_RETURN: never in the UTXO set
    assert bc.gettxout(node, tx.txid_hex, 3) is None

    # getrawtransaction: by block hash (Core without -txindex); not without one.
    assert raw.getrawtransaction(node, tx.txid_hex, 0, h) == tx.serialize().hex()
    r1 = raw.getrawtransaction(node, tx.txid_hex, True, h)
    assert r1["in_active_chain"] is True
    assert r1["blockhash"] == h
    assert r1["confirmations"] == 1
    assert r1["time"] == r1["blocktime"] == v3["time"]
    assert r1["hex"] == tx.serialize().hex()
    assert "fee" not in r1
    r2 = raw.getrawtransaction(node, tx.txid_hex, 2, h)
    assert r2["fee"] == Decimal("0.00010000")
    assert r2["vin"][0]["prevout"] == spend["vin"][0]["prevout"]
    rpc_error(
        RPC_INVALID_ADDRESS_OR_KEY,
        raw.getrawtransaction,
        node,
        tx.txid_hex,
        match="No such mempool transaction. Use -txindex or provide a block hash to enable "
        "blockchain transaction queries. Use gettransaction for wallet transactions.",
    )
    rpc_error(
        RPC_INVALID_ADDRESS_OR_KEY,
        raw.getrawtransaction,
        node,
        tx.txid_hex,
        0,
        node.hashes[5],
        match="No such transaction found in the provided block",
    )

    # getblockstats agrees with what we built.
    stats = bc.getblockstats(node, bc.getblockcount(node))
    assert stats["txs"] == 2
    assert stats["ins"] == 1
    assert stats["outs"] == 5  # coinbase 2 + spend 3
    assert stats["totalfee"] == stats["minfee"] == stats["maxfee"] == stats["medianfee"] == 10_000
    assert stats["total_out"] == 50 * 100_000_000 - 10_000
    assert stats["subsidy"] == 50 * 100_000_000
    assert stats["swtxs"] == 1
    assert stats["total_size"] == stats["swtotal_size"] == tx.total_size()
    assert stats["total_weight"] == tx.weight()
    assert stats["avgfeerate"] == 10_000 * 4 // tx.weight()
    assert stats["feerate_percentiles"] == [stats["avgfeerate"]] * 5
    assert stats["utxo_increase"] == 5 - 1
    assert stats["utxo_increase_actual"] == 3 - 1  # the two OP_RETURNs never enter the set
    assert bc.getblockstats(node, h, ["txs", "minfee"]) == {"minfee": 10_000, "txs": 2}
    assert bc.getblockstats(node, h) == stats

    # getchaintxstats counts it.
    txstats = bc.getchaintxstats(node)
    assert txstats["txcount"] == 1 + 111 + 1
    assert txstats["window_final_block_hash"] == h

    # gettxoutsetinfo: one coinbase output spent, three outputs added.
    info = bc.gettxoutsetinfo(node)
    assert info["txouts"] == 111 - 1 + 2
    assert info["transactions"] == 111 - 1 + 1
    assert info["total_amount"] == Decimal("5550.00000000")  # 111 subsidies, fees are not new

    # Level 3 and 4 verification walk back over the spend and forward again.
    assert bc.verifychain(node, 4, 0) is True


def test_txindex_path(node: Any) -> None:
    tx = spend_coinbase(node, 2)
    h = mining.generateblock(node, ADDRESS, [tx.serialize().hex()])["hash"]

    class TxIndex:
        synced = True

        def __init__(self, chain: ChainState) -> None:
            self.map: dict[bytes, bytes] = {}
            for e in chain.chain:
                for t in chain.read_block(e).txs:
                    self.map[t.txid] = e.hash
            self.best_block_height = chain.height

        def lookup(self, txid: bytes) -> tuple[bytes] | None:
            found = self.map.get(txid)
            return (found,) if found is not None else None

    assert bc.getindexinfo(node) == {}
    node.txindex = TxIndex(node.chain)
    node.config.txindex = True
    got = raw.getrawtransaction(node, tx.txid_hex, 1)
    assert got["blockhash"] == h
    assert "in_active_chain" not in got
    assert bc.getindexinfo(node) == {"txindex": {"synced": True, "best_block_height": 111}}
    assert bc.getindexinfo(node, "txindex") == bc.getindexinfo(node)
    assert bc.getindexinfo(node, "coinstatsindex") == {}
    rpc_error(
        RPC_INVALID_ADDRESS_OR_KEY,
        raw.getrawtransaction,
        node,
        "11" * 32,
        match="No such mempool or blockchain transaction. Use gettransaction for wallet",
    )


def test_utxo_set_info(node: Any) -> None:
    a = bc.gettxoutsetinfo(node)
    assert list(a) == [
        "height", "bestblock", "txouts", "bogosize", "hash_serialized_3", "total_amount",
        "transactions", "disk_size",
    ]  # fmt: skip
    assert a["height"] == 110
    assert a["bestblock"] == node.hashes[-1]
    assert a["txouts"] == 110  # the genesis coinbase is not in the set
    assert a["transactions"] == 110
    assert a["total_amount"] == Decimal("5500.00000000")
    assert a["bogosize"] == 110 * (50 + len(P2WSH_OP_TRUE))
    m = bc.gettxoutsetinfo(node, "muhash")
    assert "hash_serialized_3" not in m and len(m["muhash"]) == 64
    n = bc.gettxoutsetinfo(node, "none")
    assert "muhash" not in n and "hash_serialized_3" not in n
    assert {k: a[k] for k in ("txouts", "total_amount")} == {k: n[k] for k in ("txouts", "total_amount")}  # fmt: skip
    # Same answer as the offline ``chaininfo`` figures (same hasher, different reader).
    from peercash.tools.chaintools import chain_info

    node.chain.flush()
    # gettxout agrees with the set, coin by coin, for a few coinbases.
    for height in (1, 100, 110):
        txid = bc.getblock(node, node.hashes[height - 1])["tx"][0]
        out = bc.gettxout(node, txid, 0, False)
        assert out is not None
        assert out["confirmations"] == 111 - height
        assert out["coinbase"] is True
        assert out["value"] == Decimal("50.00000000")
        assert out["scriptPubKey"]["address"] == ADDRESS
    assert callable(chain_info)
    rpc_error(RPC_INVALID_PARAMETER, bc.gettxoutsetinfo, node, "sha1", match="'sha1' is not a valid hash_type")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, bc.gettxoutsetinfo, node, "muhash", 5, match="coinstatsindex")


def test_chain_tips_invalidate_reconsider(node: Any) -> None:
    assert bc.getchaintips(node) == [
        {"height": 110, "hash": node.hashes[-1], "branchlen": 0, "status": "active"}
    ]
    target = node.hashes[99]  # height 100
    assert bc.invalidateblock(node, target) is None
    assert bc.getblockcount(node) == 99
    assert bc.getbestblockhash(node) == node.hashes[98]
    tips = bc.getchaintips(node)
    assert tips == [
        {"height": 110, "hash": node.hashes[-1], "branchlen": 11, "status": "invalid"},
        {"height": 99, "hash": node.hashes[98], "branchlen": 0, "status": "active"},
    ]
    header = bc.getblockheader(node, target)
    assert header["confirmations"] == -1
    assert "nextblockhash" not in header
    assert bc.getblock(node, node.hashes[98])["confirmations"] == 1

    # A fork from height 99 while the old branch is invalid (paying elsewhere: the same block
    # as the invalidated one would be refused as a duplicate of an invalid block).
    fork = mining.generatetodescriptor(node, 2, "raw(51)")
    tips = {t["hash"]: t for t in bc.getchaintips(node)}
    assert tips[fork[-1]]["status"] == "active"
    assert tips[node.hashes[-1]]["status"] == "invalid"

    assert bc.reconsiderblock(node, target) is None
    assert bc.getbestblockhash(node) == node.hashes[-1]
    tips = bc.getchaintips(node)
    assert tips[0] == {"height": 110, "hash": node.hashes[-1], "branchlen": 0, "status": "active"}
    assert tips[1] == {"height": 101, "hash": fork[-1], "branchlen": 2, "status": "valid-fork"}
    assert bc.preciousblock(node, node.hashes[-1]) is None
    assert bc.verifychain(node, 4, 20) is True
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.invalidateblock, node, "22" * 32, match="Block not found")  # fmt: skip
    rpc_error(RPC_DATABASE_ERROR, bc.invalidateblock, node, bc.getblockhash(node, 0))


def test_blockchain_info_and_deployments(node: Any) -> None:
    info = bc.getblockchaininfo(node)
    assert list(info) == [
        "chain", "blocks", "headers", "bestblockhash", "bits", "target", "difficulty", "time",
        "mediantime", "verificationprogress", "initialblockdownload", "chainwork",
        "size_on_disk", "pruned", "warnings",
    ]  # fmt: skip
    assert info["chain"] == "regtest"
    assert info["blocks"] == info["headers"] == 110
    assert info["bestblockhash"] == node.hashes[-1]
    assert info["verificationprogress"] == 1.0
    assert info["initialblockdownload"] is False
    assert info["size_on_disk"] > 110 * 200
    assert info["pruned"] is False and info["warnings"] == []
    assert bc.getdifficulty(node) == info["difficulty"]
    node.clock[0] = NOW + 2 * 24 * 3600  # the tip is now two days old: IBD again
    assert bc.getblockchaininfo(node)["initialblockdownload"] is True

    dep = bc.getdeploymentinfo(node)
    assert dep["hash"] == node.hashes[-1] and dep["height"] == 110
    d = dep["deployments"]
    assert list(d) == ["bip34", "bip66", "bip65", "csv", "segwit", "testdummy", "taproot"]
    assert d["segwit"] == {"type": "buried", "active": True, "height": 0}
    assert d["bip34"] == {"type": "buried", "active": True, "height": 1}
    assert d["taproot"] == {
        "type": "bip9",
        "height": 0,
        "active": True,
        "bip9": {
            "start_time": -1,
            "timeout": 9223372036854775807,
            "min_activation_height": 0,
            "status": "active",
            "since": 0,
            "status_next": "active",
        },
    }
    assert d["testdummy"]["bip9"]["status"] == "defined"
    assert d["testdummy"]["active"] is False
    at_genesis = bc.getdeploymentinfo(node, bc.getblockhash(node, 0))["deployments"]
    assert at_genesis["bip34"]["active"] is True  # active for the block after genesis

    # Past the first 144-block period testdummy (start time 0) is signalling.
    node.clock[0] = NOW
    mining.generatetoaddress(node, 40, ADDRESS)
    td = bc.getdeploymentinfo(node)["deployments"]["testdummy"]["bip9"]
    assert td["status"] == "started" and td["since"] == 144
    assert td["bit"] == 28
    # Our miner signals for it (Core's ComputeBlockVersion) from block 144 on.
    assert td["statistics"] == {
        "period": 144, "elapsed": 7, "count": 7, "threshold": 108, "possible": True,
    }  # fmt: skip
    assert td["signalling"] == "#######"
    assert bc.getblockheader(node, bc.getbestblockhash(node))["versionHex"] == "30000000"


def test_verifychain_levels(node: Any) -> None:
    for level in range(5):
        assert bc.verifychain(node, level) is True
        assert bc.verifychain(node, level, 0) is True
    assert bc.verifychain(node) is True
    assert bc.verifychain(node, 9, 1000) is True  # clamped like Core


def test_wait_methods(node: Any) -> None:
    async def run() -> None:
        start = bc.getbestblockhash(node)
        # Times out at the current tip.
        got = await bc.waitfornewblock(node, 20)
        assert got == {"hash": start, "height": 110}
        got = await bc.waitforblockheight(node, 200, 20)
        assert got["height"] == 110
        # Returns at once when the height is already reached.
        assert (await bc.waitforblockheight(node, 5))["height"] == 110

        loop = asyncio.get_running_loop()
        waiter = asyncio.ensure_future(bc.waitforblockheight(node, 112, 5000))
        new_block = asyncio.ensure_future(bc.waitfornewblock(node, 5000))
        await asyncio.sleep(0.01)
        loop.call_soon(mining.generatetoaddress, node, 2, ADDRESS)
        first = await new_block
        assert first["height"] == 112  # both blocks connect in the same call
        assert (await waiter)["height"] == 112
        tip = bc.getbestblockhash(node)
        assert (await bc.waitforblock(node, tip, 10))["hash"] == tip
        assert node.chain.events.tip_changed == []  # listeners removed
        with pytest.raises(RpcError) as info:
            await bc.waitfornewblock(node, -1)
        assert info.value.code == RPC_MISC_ERROR and info.value.message == "Negative timeout"

    asyncio.run(run())


# -- raw transactions --------------------------------------------------------------------------


def test_decode_coinbase(node: Any) -> None:
    block_hex = bc.getblock(node, node.hashes[0], 0)
    coinbase = Block.from_hex(block_hex).txs[0]
    decoded = raw.decoderawtransaction(node, coinbase.serialize().hex())
    assert decoded["vin"] == [
        {"coinbase": "5100", "txinwitness": ["00" * 32], "sequence": 0xFFFFFFFF}
    ]
    assert decoded["txid"] == coinbase.txid_hex
    assert decoded["vsize"] == (decoded["weight"] + 3) // 4
    assert decoded["size"] == len(coinbase.serialize())
    assert as_json(decoded)["vout"][0]["value"] == 50.0
    # iswitness=false cannot read the witness serialization
    rpc_error(RPC_DESERIALIZATION_ERROR, raw.decoderawtransaction, node, coinbase.serialize().hex(), False)  # fmt: skip
    legacy = coinbase.serialize_legacy().hex()
    assert raw.decoderawtransaction(node, legacy, False)["txid"] == coinbase.txid_hex


def test_createrawtransaction_round_trip(node: Any) -> None:
    txid = "ab" * 32
    hexed = raw.createrawtransaction(
        node,
        [{"txid": txid, "vout": 3}, {"txid": "cd" * 32, "vout": 0, "sequence": 7}],
        [{ADDRESS: 1.5}, {"data": "00ff"}, {"mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r": "0.00000001"}],
        500,
    )
    d = raw.decoderawtransaction(node, hexed)
    assert d["version"] == 2 and d["locktime"] == 500
    assert d["vin"][0] == {
        "txid": txid,
        "vout": 3,
        "scriptSig": {"asm": "", "hex": ""},
        "sequence": 0xFFFFFFFD,
    }
    assert d["vin"][1]["sequence"] == 7
    assert [o["value"] for o in d["vout"]] == [
        Decimal("1.50000000"),
        Decimal("0E-8"),
        Decimal("1E-8"),
    ]
    assert format(d["vout"][1]["value"], "f") == "0.00000000"
    assert d["vout"][0]["scriptPubKey"]["address"] == ADDRESS
    assert d["vout"][1]["scriptPubKey"] == {
        "asm": "OP_RETURN -32512",  # short pushes print as script numbers
        "desc": util.add_checksum("raw(6a0200ff)"),
        "hex": "6a0200ff",
        "type": "nulldata",
    }
    assert d["vout"][2]["scriptPubKey"]["type"] == "pubkeyhash"
    # Sequence defaults: not replaceable, with a lock time: MAX_SEQUENCE_NONFINAL.
    d2 = raw.decoderawtransaction(
        node, raw.createrawtransaction(node, [{"txid": txid, "vout": 0}], {ADDRESS: 1}, 1, False)
    )
    assert d2["vin"][0]["sequence"] == 0xFFFFFFFE
    d3 = raw.decoderawtransaction(
        node, raw.createrawtransaction(node, [{"txid": txid, "vout": 0}], {ADDRESS: 1}, 0, False)
    )
    assert d3["vin"][0]["sequence"] == 0xFFFFFFFF
    # No inputs: the legacy form of a 0-input transaction decodes too.
    empty = raw.createrawtransaction(node, [], {"data": "ff"})
    assert raw.decoderawtransaction(node, empty)["vin"] == []

    ins = [{"txid": txid, "vout": 0}]
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, raw.createrawtransaction, node, ins, {"bc1qxyz": 1}, match="Invalid Bitcoin address: bc1qxyz")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, raw.createrawtransaction, node, ins, [{ADDRESS: 1}, {ADDRESS: 2}], match="Invalid parameter, duplicated address: " + ADDRESS)  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, raw.createrawtransaction, node, ins, [{"data": "00"}, {"data": "01"}], match="duplicate key: data")  # fmt: skip
    rpc_error(RPC_TYPE_ERROR, raw.createrawtransaction, node, ins, {ADDRESS: "1.000000001"}, match="Invalid amount")  # fmt: skip
    rpc_error(RPC_TYPE_ERROR, raw.createrawtransaction, node, ins, {ADDRESS: -1}, match="Amount out of range")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, raw.createrawtransaction, node, [{"txid": txid}], {ADDRESS: 1}, match="missing vout key")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, raw.createrawtransaction, node, [{"txid": txid, "vout": -1}], {ADDRESS: 1}, match="vout cannot be negative")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, raw.createrawtransaction, node, [{"txid": "zz", "vout": 0}], {ADDRESS: 1}, match="txid must be of length 64")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, raw.createrawtransaction, node, ins, {ADDRESS: 1}, -1, match="locktime out of range")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, raw.createrawtransaction, node, [{"txid": txid, "vout": 0, "sequence": 0xFFFFFFFF}], {ADDRESS: 1}, 0, True, match="contradict replaceable")  # fmt: skip


def test_decodescript_templates(node: Any) -> None:
    p = REGTEST
    h = hash160(G)
    # P2PKH
    spk = b"\x76\xa9\x14" + h + b"\x88\xac"
    d = raw.decodescript(node, spk.hex())
    p2wpkh = b"\x00\x14" + h
    assert d == {
        "asm": f"OP_DUP OP_HASH160 {h.hex()} OP_EQUALVERIFY OP_CHECKSIG",
        "desc": util.add_checksum("addr(mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r)"),
        "address": "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r",
        "type": "pubkeyhash",
        "p2sh": util.script_address(b"\xa9\x14" + hash160(spk) + b"\x87", p),
        "segwit": {
            "asm": f"0 {h.hex()}",
            "desc": util.add_checksum("addr(bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080)"),
            "hex": p2wpkh.hex(),
            "address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
            "type": "witness_v0_keyhash",
            "p2sh-segwit": util.script_address(b"\xa9\x14" + hash160(p2wpkh) + b"\x87", p),
        },
    }
    # P2SH: cannot be wrapped again.
    p2sh = b"\xa9\x14" + h + b"\x87"
    d = raw.decodescript(node, p2sh.hex())
    assert d["type"] == "scripthash" and "p2sh" not in d and "segwit" not in d
    assert d["address"].startswith("2")
    # P2WPKH: a P2SH wrapper, no segwit one.
    d = raw.decodescript(node, p2wpkh.hex())
    assert d["type"] == "witness_v0_keyhash"
    assert d["address"] == "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    assert "p2sh" in d and "segwit" not in d
    # P2TR: neither; the descriptor is rawtr() of the output key.
    p2tr = b"\x51\x20" + G[1:]
    d = raw.decodescript(node, p2tr.hex())
    assert d["type"] == "witness_v1_taproot"
    assert d["desc"] == util.add_checksum(f"rawtr({G[1:].hex()})")
    assert d["address"].startswith("bcrt1p")
    assert "p2sh" not in d and "segwit" not in d
    # 1-of-2 multisig: no address of its own; P2WSH wrapper described as wsh(multi(...)).
    ms = b"\x51\x21" + G + b"\x21" + G2 + b"\x52\xae"
    d = raw.decodescript(node, ms.hex())
    assert d["type"] == "multisig"
    assert "address" not in d
    assert d["asm"] == f"1 {G.hex()} {G2.hex()} 2 OP_CHECKMULTISIG"
    assert d["desc"] == util.add_checksum(f"multi(1,{G.hex()},{G2.hex()})")
    wsh = b"\x00\x20" + sha256(ms)
    assert d["segwit"]["hex"] == wsh.hex()
    assert d["segwit"]["type"] == "witness_v0_scripthash"
    assert d["segwit"]["desc"] == util.add_checksum(f"wsh(multi(1,{G.hex()},{G2.hex()}))")
    # P2PK: pk() descriptor, no address, P2WPKH wrapper.
    d = raw.decodescript(node, (b"\x21" + G + b"\xac").hex())
    assert d["type"] == "pubkey" and "address" not in d
    assert d["desc"] == "pk(0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798)#gn28ywm7"  # fmt: skip
    assert d["segwit"]["type"] == "witness_v0_keyhash"
    # OP_RETURN: nothing to wrap; empty script: nonstandard, wrappable.
    assert set(raw.decodescript(node, "6a00")) == {"asm", "desc", "type"}
    empty = raw.decodescript(node, "")
    assert empty["type"] == "nonstandard" and empty["asm"] == ""
    assert empty["desc"] == util.add_checksum("raw()")
    rpc_error(RPC_INVALID_PARAMETER, raw.decodescript, node, "zz", match="argument must be hexadecimal string (not 'zz')")  # fmt: skip


# -- util --------------------------------------------------------------------------------------


def test_validateaddress(node: Any) -> None:
    v = util.validateaddress(node, ADDRESS)
    assert v == {
        "isvalid": True,
        "address": ADDRESS,
        "scriptPubKey": P2WSH_OP_TRUE.hex(),
        "isscript": True,
        "iswitness": True,
        "witness_version": 0,
        "witness_program": P2WSH_OP_TRUE[2:].hex(),
    }
    assert util.validateaddress(node, ADDRESS.upper())["address"] == ADDRESS
    assert util.validateaddress(node, "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r") == {
        "isvalid": True,
        "address": "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r",
        "scriptPubKey": "76a914" + hash160(G).hex() + "88ac",
        "isscript": False,
        "iswitness": False,
    }
    bad = util.validateaddress(node, ADDRESS[:-1] + "x")
    assert bad["isvalid"] is False and bad["error"] == "Invalid Bech32 checksum"
    assert util.validateaddress(node, "asfah14i8fajz0123f") == {
        "isvalid": False,
        "error_locations": [],
        "error": "Invalid or unsupported Segwit (Bech32) or Base58 encoding.",
    }
    assert util.validateaddress(node, "x")["error"] == (
        "Invalid checksum or length of Base58 address (P2PKH or P2SH)"
    )
    mainnet = util.validateaddress(node, "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH")
    assert mainnet["isvalid"] is False
    assert mainnet["error"] == "Invalid or unsupported Base58-encoded address."


def test_key_io_vectors() -> None:
    """Core's key_io vectors: every address decodes to its script on its own network."""
    networks = {"main": MAIN, "testnet4": TESTNET, "signet": TESTNET, "regtest": REGTEST}
    valid = json.loads((DATA / "core" / "key_io_valid.json").read_text())
    checked = 0
    for text, script_hex, meta in valid:
        if meta.get("isPrivkey"):
            continue
        params = networks[meta["chain"]]
        dest = util.decode_destination(text, params)
        assert isinstance(dest, util.Destination), (text, dest)
        assert dest.script.hex() == script_hex
        assert util.script_address(dest.script, params) == text.lower() if text.lower().startswith(params.bech32_hrp) else True  # fmt: skip
        checked += 1
    assert checked > 30
    invalid = json.loads((DATA / "core" / "key_io_invalid.json").read_text())
    for (text,) in invalid:
        for params in (MAIN, TESTNET, REGTEST):
            assert isinstance(util.decode_destination(text, params), util.AddressFailure), text


def test_descriptor_vectors() -> None:
    """BIP380 checksums and single-key descriptors against Core's descriptor vectors."""
    assert util.descriptor_checksum("raw(deadbeef)") == "89f8spxm"
    valid = json.loads((DATA / "bcoin" / "descriptors" / "desc-valid.json").read_text())
    n = 0
    for entries in valid.values():
        for e in entries:
            body = e["input"].split("#")[0]
            assert util.descriptor_checksum(body) == e["checksum"], e["input"]
            n += 1
    assert n > 50
    networks = {"main": MAIN, "testnet": TESTNET, "regtest": REGTEST}
    addresses = json.loads((DATA / "bcoin" / "descriptors" / "desc-addresses.json").read_text())
    checked = 0
    for kind, entries in addresses.items():
        if kind == "pk":
            continue  # bcoin gives pk() a P2PKH address; Core gives it none
        for e in entries:
            text = e["input"]
            if "pub" in text or "prv" in text or "*" in text or "addresses" not in e:
                continue
            params = networks[e.get("network", "main")]
            script = util.parse_descriptor(text, params)
            want = e["addresses"]
            if kind == "combo":
                want = want[2:3] if len(want) == 4 else want[1:2]
            assert util.script_address(script, params) == want[0], text
            checked += 1
    assert checked > 15
    with pytest.raises(util.DescriptorError, match="does not match computed checksum"):
        util.parse_descriptor("raw(deadbeef)#89f8spxx", MAIN)


# -- mining ------------------------------------------------------------------------------------


def test_generate_variants(node: Any) -> None:
    desc = util.add_checksum(f"addr({ADDRESS})")
    [h] = mining.generatetodescriptor(node, 1, desc)
    cb = bc.getblock(node, h, 2)["tx"][0]
    assert cb["vout"][0]["scriptPubKey"]["address"] == ADDRESS
    [h] = mining.generatetodescriptor(node, 1, f"pkh({G.hex()})")
    assert bc.getblock(node, h, 2)["tx"][0]["vout"][0]["scriptPubKey"]["type"] == "pubkeyhash"
    [h] = mining.generatetodescriptor(node, 1, f"wpkh({G.hex()})")
    spk = bc.getblock(node, h, 2)["tx"][0]["vout"][0]["scriptPubKey"]
    assert spk["address"] == "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    [h] = mining.generatetodescriptor(node, 1, f"tr({G.hex()})")
    spk = bc.getblock(node, h, 2)["tx"][0]["vout"][0]["scriptPubKey"]
    assert spk["type"] == "witness_v1_taproot"
    [h] = mining.generatetodescriptor(node, 1, "raw(51)")
    assert bc.getblock(node, h, 2)["tx"][0]["vout"][0]["scriptPubKey"]["hex"] == "51"
    assert bc.getblockcount(node) == 115
    assert mining.generatetoaddress(node, 0, ADDRESS) == []
    assert mining.generatetoaddress(node, 5, ADDRESS, 0) == []  # no tries left

    # generateblock without submitting: a valid block that is not connected.
    res = mining.generateblock(node, ADDRESS, [], False)
    block = Block.from_hex(res["hex"])
    assert block.hash_hex == res["hash"]
    assert bc.getblockcount(node) == 115
    assert block.header.prev_hash[::-1].hex() == bc.getbestblockhash(node)

    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, mining.generatetoaddress, node, 1, "nope", match="Error: Invalid address")  # fmt: skip
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, mining.generatetodescriptor, node, 1, "raw(51)#aaaaaaaa", match="does not match computed checksum")  # fmt: skip
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, mining.generatetodescriptor, node, 1, "wpkh(xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8)")  # fmt: skip
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, mining.generateblock, node, "nope", [], match="Error: Invalid address or descriptor")  # fmt: skip
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, mining.generateblock, node, ADDRESS, ["11" * 32], match="not in mempool")  # fmt: skip
    rpc_error(RPC_DESERIALIZATION_ERROR, mining.generateblock, node, ADDRESS, ["00"], match="Transaction decode failed for 00")  # fmt: skip
    # A spend of a coin that does not exist.
    bogus = spend_op_true_p2wsh(OutPoint(b"\x42" * 32, 0), [TxOut(1, P2WSH_OP_TRUE)])
    rpc_error(RPC_VERIFY_ERROR, mining.generateblock, node, ADDRESS, [bogus.serialize().hex()], match="bad-txns-inputs-missingorspent")  # fmt: skip
    assert bc.getblockcount(node) == 115


def test_generate_only_on_regtest(tmp_path: Path) -> None:
    main = make_node(tmp_path / "main", MAIN)
    try:
        rpc_error(RPC_METHOD_NOT_FOUND, mining.generatetoaddress, main, 1, "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", match="This method can only be used on regtest")  # fmt: skip
        rpc_error(RPC_METHOD_NOT_FOUND, mining.generateblock, main, "raw(51)", [])
        rpc_error(RPC_METHOD_NOT_FOUND, mining.generatetodescriptor, main, 1, "raw(51)")
        info = bc.getblockchaininfo(main)
        assert info["chain"] == "main" and info["blocks"] == 0
        assert info["initialblockdownload"] is True
        assert bc.getblockheader(main, bc.getbestblockhash(main))["difficulty"] == 1.0
        deps = bc.getdeploymentinfo(main)["deployments"]
        assert "testdummy" not in deps  # never active on mainnet: Core leaves it out
        assert deps["segwit"] == {"type": "buried", "active": False, "height": 481824}
    finally:
        main.chain.close()


# -- errors ------------------------------------------------------------------------------------


def test_error_codes(node: Any) -> None:
    unknown = "33" * 32
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.getblock, node, unknown, match="Block not found")
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.getblockheader, node, unknown, match="Block not found")  # fmt: skip
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.getdeploymentinfo, node, unknown)
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.getchaintxstats, node, None, unknown)
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.reconsiderblock, node, unknown)
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.preciousblock, node, unknown)
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, raw.getrawtransaction, node, "44" * 32, 0, unknown, match="Block hash not found")  # fmt: skip
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, bc.getblockstats, node, unknown, match="Block not found")  # fmt: skip
    genesis_cb = Block.parse(REGTEST.genesis).txs[0].txid_hex
    rpc_error(RPC_INVALID_ADDRESS_OR_KEY, raw.getrawtransaction, node, genesis_cb, match="genesis block coinbase")  # fmt: skip

    rpc_error(RPC_INVALID_PARAMETER, bc.getblockhash, node, -1, match="Block height out of range")
    rpc_error(RPC_INVALID_PARAMETER, bc.getblockhash, node, 111, match="Block height out of range")
    rpc_error(RPC_INVALID_PARAMETER, bc.getblockstats, node, 111, match="Target block height 111 after current tip 110")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, bc.getblockstats, node, -1, match="Target block height -1 is negative")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, bc.getblockstats, node, 5, ["nosuch"], match="Invalid selected statistic 'nosuch'")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, bc.getblock, node, "abc", match="blockhash must be of length 64 (not 3, for 'abc')")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, bc.getblock, node, "zz" * 32, match="blockhash must be hexadecimal string")  # fmt: skip
    rpc_error(RPC_INVALID_PARAMETER, bc.getchaintxstats, node, 110, match="Invalid block count")
    rpc_error(RPC_INVALID_PARAMETER, bc.getchaintxstats, node, -1, match="Invalid block count")
    rpc_error(RPC_INVALID_PARAMETER, bc.gettxout, node, "55", 0, match="txid must be of length 64")  # fmt: skip
    rpc_error(RPC_TYPE_ERROR, bc.getblock, node, node.hashes[0], "two")
    rpc_error(RPC_TYPE_ERROR, raw.getrawtransaction, node, "44" * 32, "one")

    rpc_error(RPC_DESERIALIZATION_ERROR, raw.decoderawtransaction, node, "zz", match="TX decode failed")  # fmt: skip
    rpc_error(RPC_DESERIALIZATION_ERROR, raw.decoderawtransaction, node, "0200", match="TX decode failed")  # fmt: skip
    rpc_error(RPC_DESERIALIZATION_ERROR, raw.decoderawtransaction, node, "abc", match="TX decode failed")  # fmt: skip

    # Through the registry's parameter binding, as the server calls them.
    m = REGISTRY.methods["getblockhash"]
    with pytest.raises(RpcError) as info:
        bind_params(m, ["x"])
    assert info.value.code == RPC_TYPE_ERROR
