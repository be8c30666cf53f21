"""The cluster mempool on a real node process (Core 31 rules, issue #11): replacement and each
of its refusals with Core's exact reasons through sendrawtransaction and testmempoolaccept, the
cluster count limit, getmempoolcluster, and eviction of the worst chunk from a full 5 MB pool
with the rolling minimum fee raised, enforced, then decaying after a block.

Coins are coinbases mined to P2WSH(OP_TRUE), spent with the witness [OP_TRUE].
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from framework.util import wait_until

from peercash.consensus.primitives import OutPoint, Tx, TxOut
from peercash.mining.builder import P2WSH_OP_TRUE, spend_op_true_p2wsh
from peercash.tools.nodeproc import NodeProcess, RpcCallError

ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"  # P2WSH(OP_TRUE)
COIN = 100_000_000
DIAGRAM = "insufficient feerate: does not improve feerate diagram"

pytestmark = pytest.mark.slow


def coinbases(node: NodeProcess, hashes: list[str]) -> list[tuple[OutPoint, int]]:
    """The P2WSH(OP_TRUE) output of each block's coinbase, with its value in satoshis."""
    out = []
    for h in hashes:
        cb = node.call("getblock", h, 2)["tx"][0]
        value = int(Decimal(str(cb["vout"][0]["value"])) * COIN)
        out.append((OutPoint(bytes.fromhex(cb["txid"])[::-1], 0), value))
    return out


def pay(prevout: OutPoint, value: int, fee: int, n_outputs: int = 1) -> Tx:
    """Spend ``prevout`` (worth ``value``) into ``n_outputs`` P2WSH(OP_TRUE) outputs, ``fee``
    left over."""
    each = (value - fee) // n_outputs
    outs = [TxOut(each, P2WSH_OP_TRUE) for _ in range(n_outputs - 1)]
    outs.append(TxOut(value - fee - each * (n_outputs - 1), P2WSH_OP_TRUE))
    return spend_op_true_p2wsh(prevout, outs)


def send(node: NodeProcess, tx: Tx) -> str:
    txid: str = node.call("sendrawtransaction", tx.serialize().hex())
    assert txid == tx.txid_hex
    return txid


def refused(node: NodeProcess, tx: Tx) -> str:
    """sendrawtransaction's -26 message for ``tx``."""
    with pytest.raises(RpcCallError) as info:
        node.call("sendrawtransaction", tx.serialize().hex())
    assert info.value.code == -26, info.value.message
    return info.value.message


def test_replacement_rules_and_cluster_limit(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "n") as node:
        node.start()
        coins = coinbases(node, node.call("generatetoaddress", 110, ADDRESS)[:8])
        (coin, value), *rest = coins

        # A replacement paying more in fee and feerate replaces the original and its child.
        original = pay(coin, value, 10_000)
        child = pay(OutPoint(original.txid, 0), value - 10_000, 10_000)
        send(node, original)
        send(node, child)
        better = pay(coin, value, 40_000)
        send(node, better)
        assert node.call("getrawmempool") == [better.txid_hex]

        # Rule 3: no less than the fees replaced (40,000 sat).
        cheaper = spend_op_true_p2wsh(coin, [TxOut(value - 39_000, P2WSH_OP_TRUE)], 0xFFFFFFFD)
        assert refused(node, cheaper) == (
            f"insufficient fee, rejecting replacement {cheaper.txid_hex}, less fees than "
            "conflicting txs; 0.00039 < 0.0004"
        )
        # Rule 4: the extra pays for the replacement's own relay at 0.1 sat/vB.
        bump = spend_op_true_p2wsh(coin, [TxOut(value - 40_001, P2WSH_OP_TRUE)], 0xFFFFFFFD)
        need = -(-100 * bump.vsize() // 1000)
        assert refused(node, bump) == (
            f"insufficient fee, rejecting replacement {bump.txid_hex}, not enough additional "
            f"fees to relay; 0.00000001 < 0.{need:08d}".rstrip("0")
        )
        # The feerate diagram: more fee, but a lower feerate spread over 60 outputs.
        wide = pay(coin, value, 40_000 + 4_000, n_outputs=60)
        assert wide.vsize() > 2_000
        assert refused(node, wide) == f"replacement-failed, {DIAGRAM}"
        [result] = node.call("testmempoolaccept", [wide.serialize().hex()])
        assert result["allowed"] is False
        assert (result["reject-reason"], result["reject-details"]) == (
            "replacement-failed",
            f"replacement-failed, {DIAGRAM}",
        )
        assert node.call("getrawmempool") == [better.txid_hex]

        # Rule 5 counts clusters: 101 separate spends cannot all be replaced at once.
        (fan_coin, fan_value) = rest[0]
        fan = pay(fan_coin, fan_value, 50_000, n_outputs=101)
        send(node, fan)
        node.call("generatetoaddress", 1, ADDRESS)
        for i in range(101):
            send(node, pay(OutPoint(fan.txid, i), fan.outputs[i].value, 1_000))
        assert node.call("getmempoolinfo")["size"] == 101
        greedy = Tx(
            2,
            [spend_op_true_p2wsh(OutPoint(fan.txid, i), []).inputs[0] for i in range(101)],
            [TxOut(sum(o.value for o in fan.outputs) - 200_000, P2WSH_OP_TRUE)],
            0,
        )
        assert refused(node, greedy) == (
            f"too many potential replacements, rejecting replacement {greedy.txid_hex}; too "
            "many conflicting clusters (101 > 100)"
        )

        # Cluster count limit: a chain of 64 enters, the 65th is refused.
        (chain_coin, chain_value) = rest[1]
        prev, left, chain = chain_coin, chain_value, []
        for _ in range(64):
            tx = pay(prev, left, 1_000)
            send(node, tx)
            chain.append(tx)
            prev, left = OutPoint(tx.txid, 0), left - 1_000
        assert refused(node, pay(prev, left, 1_000)) == "too-large-cluster"
        cluster = node.call("getmempoolcluster", chain[10].txid_hex)
        assert cluster["txcount"] == 64
        assert cluster["clusterweight"] == sum(t.weight() for t in chain)
        assert [t for c in cluster["chunks"] for t in c["txs"]] == [t.txid_hex for t in chain]
        entry = node.call("getmempoolentry", chain[0].txid_hex)
        assert entry["descendantcount"] == 64 and "chunkweight" in entry
        info = node.call("getmempoolinfo")
        assert (info["limitclustercount"], info["limitclustersize"]) == (64, 101_000)


def test_a_full_pool_evicts_its_worst_chunk_and_raises_the_minimum_fee(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "n", extra_args=["--maxmempool", "5"]) as node:
        node.start()
        hashes = node.call("generatetoaddress", 145, ADDRESS)
        coins = coinbases(node, hashes[:45])
        info = node.call("getmempoolinfo")
        assert info["maxmempool"] == 5_000_000
        assert Decimal(str(info["mempoolminfee"])) == Decimal("0.00000100")
        # Big transactions of about 43 kvB, each its own cluster; the first pays least.
        sent: list[Tx] = []
        fees: list[int] = []
        evicted: set[str] = set()
        for n, (coin, value) in enumerate(coins):
            draft = pay(coin, value, 0, n_outputs=1_000)
            rate = 100_000 if n == 0 else 200_000 + 1_000 * n  # sat/kvB
            fees.append(rate * draft.vsize() // 1000)
            tx = pay(coin, value, fees[-1], n_outputs=1_000)
            assert tx.vsize() == draft.vsize()
            send(node, tx)
            sent.append(tx)
            in_pool = set(node.call("getrawmempool"))
            evicted = {t.txid_hex for t in sent} - in_pool
            if evicted:
                break
        assert evicted == {sent[0].txid_hex}, "the worst chunk (lowest feerate) leaves first"
        info = node.call("getmempoolinfo")
        assert info["usage"] <= 5_000_000 and info["size"] == len(sent) - 1
        worst = sent[0]
        bumped = fees[0] * 1000 // -(-worst.weight() // 4) + 100  # chunk feerate + incremental
        assert Decimal(str(info["mempoolminfee"])) == Decimal(bumped).scaleb(-8)
        # Below the new minimum: refused, reconsiderable (a package could pay for it).
        (coin, value) = coins[len(sent)]
        low = pay(coin, value, 1_000)  # about 10 sat/vB: above the relay floor, below the new one
        reject_fee = -(-bumped * low.vsize() // 1000)
        assert reject_fee > 1_000
        assert refused(node, low) == f"mempool min fee not met, 1000 < {reject_fee}"
        # A block takes most of the pool; then the rolling minimum decays (more than 10 s on).
        node.call("generatetoaddress", 1, ADDRESS)

        def decayed() -> Any:
            now = Decimal(str(node.call("getmempoolinfo")["mempoolminfee"]))
            return now < Decimal(bumped).scaleb(-8)

        wait_until(decayed, timeout=40, interval=0.5, what="the rolling minimum fee to decay")
