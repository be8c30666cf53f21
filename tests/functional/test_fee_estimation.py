"""Fee estimation on a real node process (Core's ``feature_fee_estimation.py`` is the model).

A regtest chain is mined where every block confirms transactions of three known feerates on a
fixed schedule: 40 sat/vB in the next block, 12 sat/vB three blocks after they were sent, 3 sat/vB
eight blocks after. Each is a one-in one-out spend of a confirmed P2WSH(OP_TRUE) coin sent with
``sendrawtransaction``, and ``generateblock`` mines exactly the ones due. ``estimatesmartfee``
must find each class at the targets it meets, and match, number for number, an in-process
``BlockPolicyEstimator`` fed the same events (which also checks the wiring: what the node tracks,
at which heights and feerates). The estimates survive a restart (``fee_estimates.dat``); a
corrupt or stale file is skipped with a warning; ``-acceptstalefeeestimates`` takes a stale one;
``-blocksonly`` has no estimator.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from peercash.consensus.primitives import OutPoint, Tx, TxOut
from peercash.mempool.fees import FEE_ESTIMATES_FILENAME, BlockPolicyEstimator
from peercash.mempool.fees import estimaterawfee as model_rawfee
from peercash.mempool.fees import estimatesmartfee as model_smartfee
from peercash.mining.builder import P2WSH_OP_TRUE, spend_op_true_p2wsh
from peercash.rpc.jsonrpc import dumps
from peercash.tools.nodeproc import NodeProcess, RpcCallError

ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"  # P2WSH(OP_TRUE)
COIN = 100_000_000
CLASSES = ((40, 1), (12, 3), (3, 8))
"""(sat/vB, blocks from sending to confirmation)."""
PER_CLASS = 3  # transactions of each class sent before every block
ROUNDS = 40
TARGETS = range(1, 26)
NO_DATA = "Insufficient data or no feerate found"


def rpc(node: NodeProcess, method: str, *params: Any) -> Any:
    """A call whose numbers come back exactly as the node wrote them (``Decimal``)."""
    _status, body, _ = node.post({"method": method, "params": list(params), "id": 1})
    reply = json.loads(body, parse_float=Decimal)
    if reply.get("error"):
        raise RpcCallError(reply["error"]["code"], reply["error"]["message"])
    return reply["result"]


def as_node_writes(value: Any) -> Any:
    """A model result as the node's JSON carries it."""
    return json.loads(dumps(value), parse_float=Decimal)


def estimates(node: NodeProcess) -> dict[str, Any]:
    return {
        "economical": [rpc(node, "estimatesmartfee", t) for t in TARGETS],
        "conservative": [rpc(node, "estimatesmartfee", t, "conservative") for t in TARGETS],
        "raw": [rpc(node, "estimaterawfee", t) for t in (1, 2, 6, 12, 13, 48, 49)],
    }


def model_estimates(est: BlockPolicyEstimator) -> dict[str, Any]:
    # The pool's minimum is 0 and the relay minimum 100 sat/kvB here, as on the node.
    return as_node_writes(
        {
            "economical": [model_smartfee(est, t) for t in TARGETS],
            "conservative": [model_smartfee(est, t, "conservative") for t in TARGETS],
            "raw": [model_rawfee(est, t) for t in (1, 2, 6, 12, 13, 48, 49)],
        }
    )


def debug_log(node: NodeProcess) -> str:
    return (node.net_datadir / "debug.log").read_text(errors="replace")


def make_coins(node: NodeProcess, count: int) -> list[tuple[OutPoint, int]]:
    """``count`` confirmed coins from coinbases split by a block that never passed the pool
    (so the estimator never saw the splits)."""
    node.call("generatetoaddress", 110, ADDRESS)
    per_split = 100
    splits: list[Tx] = []
    for height in range(1, -(-count // per_split) + 1):
        block = node.call("getblock", node.call("getblockhash", height), 2)
        cb = block["tx"][0]
        value = round(Decimal(str(cb["vout"][0]["value"])) * COIN) - 10_000
        outs = [TxOut(value // per_split, P2WSH_OP_TRUE) for _ in range(per_split)]
        splits.append(spend_op_true_p2wsh(OutPoint(bytes.fromhex(cb["txid"])[::-1], 0), outs))
    node.call("generateblock", ADDRESS, [t.serialize().hex() for t in splits])
    coins = [(OutPoint(t.txid, i), o.value) for t in splits for i, o in enumerate(t.outputs)]
    return coins[:count]


def pay(coin: tuple[OutPoint, int], sat_per_vb: int) -> Tx:
    """A spend of ``coin`` paying exactly ``sat_per_vb`` (its feerate in sat/kvB is exact)."""
    draft = spend_op_true_p2wsh(coin[0], [TxOut(coin[1], P2WSH_OP_TRUE)])
    fee = sat_per_vb * draft.vsize()
    return spend_op_true_p2wsh(coin[0], [TxOut(coin[1] - fee, P2WSH_OP_TRUE)])


def run_schedule(node: NodeProcess, model: BlockPolicyEstimator) -> int:
    """Send and mine the rounds, feeding ``model`` what the node should see. Returns the
    number of transactions sent."""
    coins = iter(make_coins(node, ROUNDS * PER_CLASS * len(CLASSES)))
    tip = node.call("getblockcount")
    for h in range(1, tip + 1):
        model.process_block(h, [])
    due: dict[int, list[str]] = {}
    sent = 0
    for _ in range(ROUNDS):
        for rate, wait in CLASSES:
            for _ in range(PER_CLASS):
                tx = pay(next(coins), rate)
                assert node.call("sendrawtransaction", tx.serialize().hex()) == tx.txid_hex
                model.process_transaction(tx.txid, rate * 1000, tip, True)
                due.setdefault(tip + wait, []).append(tx.txid_hex)
                sent += 1
        tip += 1
        mined = due.pop(tip, [])
        node.call("generateblock", ADDRESS, mined)
        model.process_block(tip, [bytes.fromhex(t)[::-1] for t in mined])
    assert node.call("getblockcount") == tip
    return sent


def btc_kvb(sat_per_vb: int) -> Decimal:
    return Decimal(sat_per_vb * 1000).scaleb(-8).quantize(Decimal("0.00000001"))


def test_estimates_converge_on_the_known_feerates_and_survive_a_restart(tmp_path: Path) -> None:
    model = BlockPolicyEstimator()
    with NodeProcess(tmp_path / "n") as node:
        node.start()
        assert rpc(node, "estimatesmartfee", 2) == {"errors": [NO_DATA], "blocks": 0}
        # No range ever had enough data: the whole scale is the failing range, as in Core.
        empty_fail = {
            "startrange": 0,
            "endrange": Decimal("1e99"),
            "withintarget": 0,
            "totalconfirmed": 0,
            "inmempool": 0,
            "leftmempool": 0,
        }
        assert rpc(node, "estimaterawfee", 1) == {
            name: {
                "decay": Decimal(decay),
                "scale": scale,
                "fail": empty_fail,
                "errors": ["Insufficient data or no feerate found which meets threshold"],
            }
            for name, decay, scale in (
                ("short", "0.962", 1),
                ("medium", "0.9952", 2),
                ("long", "0.99931", 24),
            )
        }
        sent = run_schedule(node, model)
        assert sent == 360
        got = estimates(node)
        assert got == model_estimates(model)

        # Each feerate class is found at the targets it meets (Core's estimate is the largest of
        # 60 % within target/2, 85 % within target, 95 % within 2 × target). The data span is
        # 39 blocks (from the first confirmation), so targets stop at 19.
        econ = [(e["feerate"], e["blocks"]) for e in got["economical"]]
        assert econ[:5] == [(btc_kvb(40), b) for b in (2, 2, 3, 4, 5)]
        assert econ[5:15] == [(btc_kvb(12), b) for b in range(6, 16)]
        assert econ[15:] == [(btc_kvb(3), b) for b in (16, 17, 18, 19, 19, 19, 19, 19, 19, 19)]
        cons = got["conservative"]
        assert all(c["blocks"] == e["blocks"] for c, e in zip(cons, got["economical"], strict=True))
        assert all(
            c["feerate"] >= e["feerate"] for c, e in zip(cons, got["economical"], strict=True)
        )
        # The long horizon (95 % within 2 × target) has too little data below 40 sat/vB yet.
        assert {c["feerate"] for c in cons} == {btc_kvb(40)}

        # estimaterawfee: one entry per horizon tracking the target, in Core's shape.
        raw = dict(zip((1, 2, 6, 12, 13, 48, 49), got["raw"], strict=True))
        assert [list(raw[t]) for t in (1, 12, 13, 48, 49)] == [
            ["short", "medium", "long"],
            ["short", "medium", "long"],
            ["medium", "long"],
            ["medium", "long"],
            ["long"],
        ]
        short1 = raw[1]["short"]
        assert list(short1) == ["feerate", "decay", "scale", "pass", "fail"]
        assert (short1["feerate"], short1["decay"], short1["scale"]) == (
            btc_kvb(40),
            Decimal("0.962"),
            1,
        )
        assert list(short1["pass"]) == [
            "startrange", "endrange", "withintarget", "totalconfirmed", "inmempool", "leftmempool"
        ]  # fmt: skip
        # The 40 sat/vB bucket passes; the 12 sat/vB one below it fails, with the 6 txs of that
        # class sent in the last two rounds waiting in the pool.
        assert short1["pass"]["endrange"] == Decimal("1e99")
        assert short1["fail"]["inmempool"] == 6
        # The long horizon needs 145 decayed data points in a range: the 40 and 12 sat/vB
        # buckets pass together (median 40), the 3 sat/vB one lacks data and is shown failing.
        long1 = raw[1]["long"]
        assert (long1["feerate"], long1["scale"]) == (btc_kvb(40), 24)
        assert (long1["pass"]["startrange"], long1["fail"]["endrange"]) == (11928, 11928)
        assert long1["fail"]["startrange"] == 0
        # At 13 blocks the medium horizon finds the 3 sat/vB class.
        assert raw[13]["medium"]["feerate"] == btc_kvb(3)

        # Empty the pool (what still waits at shutdown would count as unconfirmed), then
        # restart: the saved estimates come back unchanged.
        waiting = node.call("getrawmempool")
        assert len(waiting) == PER_CLASS * (2 + 7)
        tip = node.call("getblockcount") + 1
        node.call("generateblock", ADDRESS, waiting)
        model.process_block(tip, [bytes.fromhex(t)[::-1] for t in waiting])
        before = estimates(node)
        assert before == model_estimates(model)
        node.stop()
        dat = node.net_datadir / FEE_ESTIMATES_FILENAME
        assert dat.stat().st_size > 0
        node.start()
        assert estimates(node) == before

        # A corrupt file: the node starts, says so, and has no estimates.
        node.stop()
        data = bytearray(dat.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dat.write_bytes(bytes(data))
        node.start()
        assert rpc(node, "estimatesmartfee", 2) == {"errors": [NO_DATA], "blocks": 0}
        assert f"fee estimates in {dat} not used: checksum mismatch" in debug_log(node)


def model_history() -> BlockPolicyEstimator:
    """An estimator fed the schedule of the test above in-process, as a saved file holds it."""
    est = BlockPolicyEstimator()
    for h in range(1, 112):
        est.process_block(h, [])
    tip, n = 111, 0
    due: dict[int, list[bytes]] = {}
    for _ in range(ROUNDS):
        for rate, wait in CLASSES:
            for _ in range(PER_CLASS):
                n += 1
                txid = n.to_bytes(32, "little")
                est.process_transaction(txid, rate * 1000, tip, True)
                due.setdefault(tip + wait, []).append(txid)
        tip += 1
        est.process_block(tip, due.pop(tip, []))
    return est


def test_stale_files_blocksonly_and_acceptstalefeeestimates(tmp_path: Path) -> None:
    now = time.time()
    history = model_history()
    data = history.to_bytes(now)
    expected = model_estimates(BlockPolicyEstimator.from_bytes(data, now))
    assert expected["economical"][0] == {"feerate": btc_kvb(40), "blocks": 2}
    node = NodeProcess(tmp_path / "n")
    dat = node.net_datadir / FEE_ESTIMATES_FILENAME
    dat.parent.mkdir(parents=True)

    def put_file(age_hours: float) -> None:
        dat.write_bytes(data)
        os.utime(dat, (now - age_hours * 3600, now - age_hours * 3600))

    # Older than 60 hours (by the file's modification time, as Core judges it): not used.
    put_file(61)
    with node:
        node.start()
        assert rpc(node, "estimatesmartfee", 1) == {"errors": [NO_DATA], "blocks": 0}
        assert (
            f"Fee estimation file {dat} too old (age=61 > 60 hours) and will not be used to avoid"
            " serving stale estimates." in debug_log(node)
        )
    # ... unless -acceptstalefeeestimates (regtest only).
    put_file(61)
    node.extra_args = ["--acceptstalefeeestimates"]
    with node:
        node.start()
        assert estimates(node) == expected
    # 60 h 30 min is 60 whole hours: still fresh.
    put_file(60.5)
    node.extra_args = []
    with node:
        node.start()
        assert estimates(node) == expected
    # -blocksonly: no estimator (Core builds none when it ignores incoming transactions), and
    # the file is left as it was.
    put_file(1)
    node.extra_args = ["--blocksonly"]
    with node:
        node.start()
        for call in (("estimatesmartfee", 2), ("estimaterawfee", 2)):
            try:
                rpc(node, *call)
            except RpcCallError as err:
                assert (err.code, err.message) == (-32603, "Fee estimation disabled")
            else:
                raise AssertionError(f"{call[0]} answered with -blocksonly")
        assert node.call("getmempoolinfo")["loaded"] is True
    assert dat.read_bytes() == data
