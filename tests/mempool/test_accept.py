"""Acceptance on a real regtest chain: Core's PreChecks order and reject strings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooltools import COIN, OP_TRUE_SCRIPT, P2WSH_OP_TRUE, Harness, out

from peercash.consensus.hashing import sha256
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.mempool.policy import fee_for
from peercash.mempool.pool import AcceptResult, TxResult
from peercash.mining.builder import coinbase_tx


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "chain")
    yield harness
    harness.close()


def rejected(r: AcceptResult, reason: str, kind: TxResult) -> None:
    assert not r.allowed
    assert r.reject_reason == reason, r.reject_details
    assert r.result is kind


def p2wsh(script: bytes) -> bytes:
    return b"\x00\x20" + sha256(script)


def test_accept_valid_spend(h: Harness) -> None:
    tx = h.spend([h.coin()], fee=12_345)
    r = h.pool.accept(tx)
    assert r.allowed and r.result is TxResult.VALID
    assert (r.fee, r.vsize) == (12_345, tx.vsize())
    assert r.effective_feerate == 12_345 * 1000 // tx.vsize()
    assert h.pool.contains(tx.txid) and h.pool.contains_wtxid(tx.wtxid)
    assert h.pool.get(tx.txid) is tx
    assert h.added == [tx.txid]
    info = h.pool.info()
    assert (info["size"], info["bytes"], info["total_fee"]) == (1, tx.vsize(), 12_345)
    assert (info["minrelaytxfee"], info["incrementalrelayfee"], info["mempoolminfee"]) == (
        100,
        100,
        100,
    )
    assert info["fullrbf"] is True and info["maxmempool"] == 300_000_000
    e = h.pool.entry_info(tx.txid)
    assert e["vsize"] == tx.vsize() and e["weight"] == tx.weight()
    assert e["height"] == h.tip_height and e["time"] == int(h.now)
    assert e["fees"] == {
        "base": 12_345,
        "modified": 12_345,
        "ancestor": 12_345,
        "descendant": 12_345,
        "chunk": 12_345,
    }
    assert e["chunkweight"] == tx.weight()  # alone, its own chunk; few sigops: plain weight
    assert (info["limitclustercount"], info["limitclustersize"], info["optimal"]) == (
        64,
        101_000,
        True,
    )
    assert (e["ancestorcount"], e["descendantcount"], e["depends"], e["spentby"]) == (1, 1, [], [])
    assert h.pool.spender(tx.inputs[0].prevout) == tx.txid


def test_test_accept_changes_nothing(h: Harness) -> None:
    tx = h.spend([h.coin()])
    r = h.pool.accept(tx, test_accept=True)
    assert r.allowed and r.fee == 10_000
    assert len(h.pool) == 0 and h.added == []


def test_chain_of_unconfirmed(h: Harness) -> None:
    a = h.spend([h.coin()])
    b = h.spend([out(a)])
    c = h.spend([out(b)])
    for tx in (a, b, c):
        assert h.pool.accept(tx).allowed
    assert h.pool.ancestors(c.txid) == {a.txid, b.txid}
    assert h.pool.descendants(a.txid) == {b.txid, c.txid}
    e = h.pool.entry_info(b.txid)
    assert e["depends"] == [a.txid_hex] and e["spentby"] == [c.txid_hex]
    assert (e["ancestorcount"], e["descendantcount"]) == (2, 2)
    assert e["fees"]["ancestor"] == 20_000 and e["fees"]["descendant"] == 20_000  # type: ignore[index]


def test_already_in_mempool_and_same_nonwitness_data(h: Harness) -> None:
    tx = h.spend([h.coin()])
    assert h.pool.accept(tx).allowed
    r = h.pool.accept(tx)
    rejected(r, "txn-already-in-mempool", TxResult.CONFLICT)
    assert r.already_in_pool
    txin = tx.inputs[0]
    other_witness = Tx(
        tx.version, [TxIn(txin.prevout, b"", txin.sequence, (b"", OP_TRUE_SCRIPT))], tx.outputs
    )
    assert other_witness.txid == tx.txid and other_witness.wtxid != tx.wtxid
    rejected(h.pool.accept(other_witness), "txn-same-nonwitness-data-in-mempool", TxResult.CONFLICT)


def test_coinbase_refused(h: Harness) -> None:
    cb = coinbase_tx(h.tip_height + 1, [TxOut(50 * COIN, P2WSH_OP_TRUE)], extra=b"x")
    rejected(h.pool.accept(cb), "coinbase", TxResult.CONSENSUS)


def test_context_free_failure_keeps_consensus_code(h: Harness) -> None:
    coin = h.coin()
    dup = Tx(2, [TxIn(coin, b"", 0, (OP_TRUE_SCRIPT,))] * 2, [TxOut(1000, P2WSH_OP_TRUE)])
    rejected(h.pool.accept(dup), "bad-txns-inputs-duplicate", TxResult.CONSENSUS)


def test_standardness_through_the_pool(h: Harness) -> None:
    coin = h.coin()
    rejected(h.pool.accept(h.spend([coin], version=4)), "version", TxResult.NOT_STANDARD)
    two_dust = [TxOut(1, P2WSH_OP_TRUE), TxOut(2, P2WSH_OP_TRUE), TxOut(COIN, P2WSH_OP_TRUE)]
    rejected(h.pool.accept(h.spend([coin], two_dust)), "dust", TxResult.NOT_STANDARD)
    bad_spk = [TxOut(COIN, b"\x76")]
    rejected(h.pool.accept(h.spend([coin], bad_spk)), "scriptpubkey", TxResult.NOT_STANDARD)
    assert len(h.pool) == 0


def test_non_final(h: Harness) -> None:
    tip = h.tip_height
    rejected(
        h.pool.accept(h.spend([h.coin()], locktime=tip + 1)), "non-final", TxResult.PREMATURE_SPEND
    )
    assert h.pool.accept(h.spend([h.coin()], locktime=tip)).allowed  # anti-fee-sniping value
    final_anyway = h.spend([h.coin()], locktime=tip + 50, sequence=0xFFFFFFFF)
    assert h.pool.accept(final_anyway).allowed


def test_missing_inputs_is_an_orphan_candidate(h: Harness) -> None:
    parent = h.spend([h.coin()])
    child = h.spend([out(parent)])
    r = h.pool.accept(child)
    rejected(r, "bad-txns-inputs-missingorspent", TxResult.MISSING_INPUTS)
    assert r.missing_inputs
    assert h.pool.accept(parent).allowed
    assert h.pool.accept(child).allowed
    bad_index = h.spend([OutPoint(parent.txid, 5)], [TxOut(1_000, P2WSH_OP_TRUE)])
    rejected(h.pool.accept(bad_index), "bad-txns-inputs-missingorspent", TxResult.MISSING_INPUTS)


def test_txn_already_known(h: Harness) -> None:
    tx = h.spend([h.coin()])
    h.mine([tx])
    rejected(h.pool.accept(tx), "txn-already-known", TxResult.CONFLICT)


def test_bip68_relative_lock(h: Harness) -> None:
    funding = h.spend([h.coin()])
    h.mine([funding])
    locked = h.spend([out(funding)], sequence=2)  # needs 2 confirmations; it has 1 in the next
    rejected(h.pool.accept(locked), "non-BIP68-final", TxResult.PREMATURE_SPEND)
    h.mine()
    assert h.pool.accept(locked).allowed
    child = h.spend([out(locked)], sequence=1)  # its parent is unconfirmed
    rejected(h.pool.accept(child), "non-BIP68-final", TxResult.PREMATURE_SPEND)
    v1 = h.spend([out(locked)], sequence=1, version=1)  # BIP68 needs version 2
    assert h.pool.accept(v1).allowed


def test_premature_coinbase_spend(h: Harness) -> None:
    young = h.builder.coinbase_out(h.tip_height - 98)  # 99 deep in the next block
    r = h.pool.accept(h.spend([young]))
    rejected(r, "bad-txns-premature-spend-of-coinbase", TxResult.PREMATURE_SPEND)
    assert "tried to spend coinbase at depth 99" in r.debug
    mature = h.builder.coinbase_out(h.tip_height - 99)
    assert h.pool.accept(h.spend([mature])).allowed


def test_outputs_above_inputs(h: Harness) -> None:
    tx = h.spend([h.coin()], [TxOut(51 * COIN, P2WSH_OP_TRUE)])
    rejected(h.pool.accept(tx), "bad-txns-in-belowout", TxResult.CONSENSUS)


def test_min_relay_fee(h: Harness) -> None:
    coin = h.coin()
    probe = h.spend([coin], fee=0)
    need = fee_for(100, probe.vsize())
    r = h.pool.accept(probe)
    rejected(r, "min relay fee not met", TxResult.MEMPOOL_POLICY)
    assert r.debug == f"0 < {need}"
    rejected(h.pool.accept(h.spend([coin], fee=need - 1)), "min relay fee not met",
             TxResult.MEMPOOL_POLICY)  # fmt: skip
    assert h.pool.accept(h.spend([coin], fee=need)).allowed


def test_bypass_limits_skips_fee_floor(h: Harness) -> None:
    assert h.pool.accept(h.spend([h.coin()], fee=0), bypass_limits=True).allowed


def test_inputs_not_standard(h: Harness) -> None:
    bare = h.spend([h.coin()], [TxOut(COIN, OP_TRUE_SCRIPT)])  # bare OP_TRUE: fine in a block
    h.mine([bare])
    r = h.pool.accept(h.spend([out(bare)]))
    rejected(r, "bad-txns-nonstandard-inputs", TxResult.INPUTS_NOT_STANDARD)
    assert r.debug == "input 0: script-unknown"


def test_witness_not_standard(h: Harness) -> None:
    tx = h.raw_spend(h.coin(), (b"\x01" * 81, OP_TRUE_SCRIPT), [TxOut(COIN, P2WSH_OP_TRUE)])
    r = h.pool.accept(tx)
    rejected(r, "bad-witness-nonstandard", TxResult.WITNESS_MUTATED)


def test_too_many_sigops(h: Harness) -> None:
    one_of_one = b"\x51\x21" + b"\x02" + b"\x11" * 32 + b"\x51\xae"  # 20 sigops (80 cost) each
    outs = [TxOut(1000, one_of_one)] * 201
    r = h.pool.accept(h.spend([h.coin()], outs, fee=1_000_000))
    rejected(r, "bad-txns-too-many-sigops", TxResult.NOT_STANDARD)
    assert r.debug == "16080"


def test_sigops_raise_the_virtual_size(h: Harness) -> None:
    one_of_one = b"\x51\x21" + b"\x02" + b"\x11" * 32 + b"\x51\xae"
    tx = h.spend([h.coin()], [TxOut(1000, one_of_one)] * 150, fee=1_000_000)
    r = h.pool.accept(tx)
    assert r.allowed
    assert r.vsize == 150 * 80 * 20 // 4  # sigop cost 12,000 at 20 bytes per sigop
    assert r.vsize > tx.vsize()
    assert h.pool.entry_info(tx.txid)["vsize"] == 60_000


def test_script_failure_consensus_rule(h: Harness) -> None:
    # Core 30 reports every mempool script failure alike, as not standard.
    tx = h.raw_spend(h.coin(), (b"\x52",), [TxOut(COIN, P2WSH_OP_TRUE)])  # wrong script
    r = h.pool.accept(tx)
    rejected(r, "mempool-script-verify-flag-failed (Witness program hash mismatch)",
             TxResult.NOT_STANDARD)  # fmt: skip
    assert r.debug.startswith(f"input 0 of {tx.txid_hex} (wtxid {tx.wtxid_hex}), spending ")


def test_script_failure_policy_only(h: Harness) -> None:
    nop_script = b"\xb9\x51"  # OP_NOP10 OP_1: valid, but upgradable NOPs are discouraged
    funding = h.spend([h.coin()], [TxOut(COIN, p2wsh(nop_script))])
    assert h.pool.accept(funding).allowed
    tx = h.raw_spend(out(funding), (nop_script,), [TxOut(COIN - 10_000, P2WSH_OP_TRUE)])
    r = h.pool.accept(tx)
    rejected(r, "mempool-script-verify-flag-failed (NOPx reserved for soft-fork upgrades)",
             TxResult.NOT_STANDARD)  # fmt: skip
    assert not h.pool.contains(tx.txid)


def test_prioritise_before_and_after(h: Harness) -> None:
    zero = h.spend([h.coin()], fee=0)
    rejected(h.pool.accept(zero), "min relay fee not met", TxResult.MEMPOOL_POLICY)
    h.pool.prioritise(zero.txid, 1_000)
    assert h.pool.prioritised() == {zero.txid: (1_000, False)}
    assert h.pool.accept(zero).allowed
    fees = h.pool.entry_info(zero.txid)["fees"]
    assert fees == {
        "base": 0,
        "modified": 1_000,
        "ancestor": 1_000,
        "descendant": 1_000,
        "chunk": 1_000,
    }
    h.pool.prioritise(zero.txid, 500)
    assert h.pool.entry_info(zero.txid)["fees"]["modified"] == 1_500  # type: ignore[index]
    assert h.pool.entry_info(zero.txid)["fees"]["chunk"] == 1_500  # type: ignore[index]
    assert h.pool.clusters.fee_and_size(zero.txid) == (1_500, zero.weight())
    assert h.pool.prioritised() == {zero.txid: (1_500, True)}
    h.pool.prioritise(zero.txid, -1_500)
    assert h.pool.prioritised() == {}


def test_cluster_count_limit(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", cluster_limit=5)
    try:
        prev = h.coin()
        chain = []
        for _ in range(5):
            tx = h.spend([prev], fee=1_000)
            assert h.pool.accept(tx).allowed
            chain.append(tx)
            prev = out(tx)
        r = h.pool.accept(h.spend([prev], fee=1_000))
        rejected(r, "too-large-cluster", TxResult.MEMPOOL_POLICY)
        assert len(h.pool) == 5
    finally:
        h.close()


def test_default_cluster_limit_is_64(h: Harness) -> None:
    prev = h.coin()
    for _ in range(64):
        tx = h.spend([prev], fee=1_000)
        assert h.pool.accept(tx).allowed
        prev = out(tx)
    rejected(h.pool.accept(h.spend([prev], fee=1_000)), "too-large-cluster",
             TxResult.MEMPOOL_POLICY)  # fmt: skip
    assert len(h.pool) == 64


def test_witness_stripped(h: Harness) -> None:
    stripped = Tx(2, [TxIn(h.coin(), b"", 0xFFFFFFFE)], [TxOut(COIN, P2WSH_OP_TRUE)])
    r = h.pool.accept(stripped)
    rejected(r, "mempool-script-verify-flag-failed (Witness program was passed an empty witness)",
             TxResult.WITNESS_STRIPPED)  # fmt: skip


def test_script_failure_reports_the_failing_input(h: Harness) -> None:
    first, second = h.coin(), h.coin()
    tx = Tx(
        2,
        [
            TxIn(first, b"", 0xFFFFFFFE, (OP_TRUE_SCRIPT,)),
            TxIn(second, b"", 0xFFFFFFFE, (b"\x52",)),
        ],
        [TxOut(COIN, P2WSH_OP_TRUE)],
    )
    r = h.pool.accept(tx)
    assert r.reject_reason == "mempool-script-verify-flag-failed (Witness program hash mismatch)"
    assert r.debug == (
        f"input 1 of {tx.txid_hex} (wtxid {tx.wtxid_hex}), spending {second.txid_hex}:0"
    )


def test_bip68_time_lock(h: Harness) -> None:
    funding = h.spend([h.coin()])
    h.mine([funding])
    units = 10  # 10 * 512 s past the median time of the block before the coin's
    locked = h.spend([out(funding)], sequence=(1 << 22) | units)
    rejected(h.pool.accept(locked), "non-BIP68-final", TxResult.PREMATURE_SPEND)
    chain = h.builder.chain
    coin_mtp = chain.chain[chain.height - 1].median_time_past()
    mined = 0
    while chain.tip.median_time_past() < coin_mtp + units * 512:
        assert not h.pool.accept(locked, test_accept=True).allowed
        h.mine()
        mined += 1
    assert mined == 8  # the tip MTP was already 600 s past the coin's: 8 more blocks
    assert h.pool.accept(locked).allowed
