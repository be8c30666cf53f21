"""Package acceptance (a child with its unconfirmed parents), ephemeral dust, persistence."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooltools import NON_FINAL, OP_TRUE_SCRIPT, P2WSH_OP_TRUE, Harness, out, value_of

from peercash.consensus.primitives import Tx, TxIn, TxOut
from peercash.mempool.chainview import ChainStateView
from peercash.mempool.policy import ANCHOR_SCRIPT
from peercash.mempool.pool import MEMPOOL_DUMP_MAGIC, MemPool, TxResult


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "chain")
    yield harness
    harness.close()


def test_one_parent_one_child_with_zero_fee_truc_parent(h: Harness) -> None:
    parent = h.spend([h.coin()], fee=0, version=3)
    alone = h.pool.accept(parent)
    assert (alone.reject_reason, alone.result) == ("min relay fee not met", TxResult.RECONSIDERABLE)
    child = h.spend([out(parent)], fee=5_000, version=3)
    res = h.pool.accept_package([parent, child])
    assert res.success and res.package_msg == "success"
    assert set(h.pool.txids()) == {parent.txid, child.txid}
    rate = 5_000 * 1000 // (parent.vsize() + child.vsize())
    for tx in (parent, child):
        r = res.results[tx.wtxid]
        assert r.allowed and r.effective_feerate == rate
        assert r.effective_includes == [parent.wtxid, child.wtxid]
    assert res.results[parent.wtxid].fee == 0
    assert h.added == [parent.txid, child.txid]  # announced once the package is in


def test_non_truc_parent_below_min_relay_fee_cannot_be_carried(h: Harness) -> None:
    parent = h.spend([h.coin()], fee=0)
    child = h.spend([out(parent)], fee=50_000)
    res = h.pool.accept_package([parent, child])
    assert res.package_msg == "transaction failed"
    assert res.results[parent.wtxid].reject_reason == "min relay fee not met"
    assert res.results[parent.wtxid].result is TxResult.MEMPOOL_POLICY
    assert len(h.pool) == 0 and h.added == [] and h.removed == []


def test_package_child_fee_too_low_for_both(h: Harness) -> None:
    parent = h.spend([h.coin()], fee=0, version=3)
    child = h.spend([out(parent)], fee=1, version=3)
    res = h.pool.accept_package([parent, child])
    assert res.package_msg == "transaction failed"
    assert res.results[child.wtxid].reject_reason == "min relay fee not met"
    assert res.results[child.wtxid].result is TxResult.RECONSIDERABLE
    assert len(h.pool) == 0 and h.added == []


def test_package_parent_already_in_pool(h: Harness) -> None:
    parent = h.spend([h.coin()])
    assert h.pool.accept(parent).allowed
    child = h.spend([out(parent)])
    res = h.pool.accept_package([parent, child])
    assert res.success
    assert res.results[parent.wtxid].already_in_pool
    assert res.results[child.wtxid].allowed and not res.results[child.wtxid].already_in_pool


def test_package_test_accept_judges_each_alone_and_keeps_nothing(h: Harness) -> None:
    parent = h.spend([h.coin()], fee=1_000)
    child = h.spend([out(parent)], fee=2_000)
    res = h.pool.accept_package([parent, child], test_accept=True)
    assert res.success and len(h.pool) == 0 and h.added == [] and h.removed == []
    assert [res.results[t.wtxid].fee for t in (parent, child)] == [1_000, 2_000]
    zero = h.spend([h.coin()], fee=0, version=3)
    payer = h.spend([out(zero)], fee=50_000, version=3)
    res = h.pool.accept_package([zero, payer], test_accept=True)
    assert res.package_msg == "transaction failed"  # no package feerate in testmempoolaccept
    r = res.results[zero.wtxid]
    assert (r.reject_reason, r.result) == ("min relay fee not met", TxResult.RECONSIDERABLE)
    assert payer.wtxid not in res.results and len(h.pool) == 0


def test_parent_accepted_alone_stays_when_child_fails(h: Harness) -> None:
    parent = h.spend([h.coin()])
    bad_child = h.spend([out(parent)], version=4)
    res = h.pool.accept_package([parent, bad_child])
    assert res.package_msg == "transaction failed"
    assert res.results[parent.wtxid].allowed
    assert res.results[bad_child.wtxid].reject_reason == "version"
    assert h.pool.txids() == [parent.txid] and h.added == [parent.txid]


def test_package_shapes(h: Harness) -> None:
    coin = h.coin()
    parent = h.split(coin, 2)
    child = h.spend([out(parent, 0), out(parent, 1)])
    assert h.pool.accept_package([child, parent]).package_msg == "package-not-sorted"
    twin = h.spend([coin], fee=20_000)
    assert h.pool.accept_package([parent, twin]).package_msg == "conflict-in-package"
    stranger = h.spend([h.coin()])
    assert h.pool.accept_package([stranger, child]).package_msg == (
        "package-not-child-with-parents"
    )
    assert h.pool.accept_package([parent] * 26).package_msg == "package-too-many-transactions"
    assert h.pool.accept_package([parent, parent]).package_msg == "package-contains-duplicates"
    assert len(h.pool) == 0


def test_ephemeral_dust_spent_by_the_child(h: Harness) -> None:
    coin = h.coin()
    total = value_of(h, coin)
    parent = h.spend([coin], [TxOut(0, ANCHOR_SCRIPT), TxOut(total, P2WSH_OP_TRUE)], version=3)
    child = Tx(
        3,
        [
            TxIn(out(parent, 0), b"", NON_FINAL),
            TxIn(out(parent, 1), b"", NON_FINAL, (OP_TRUE_SCRIPT,)),
        ],
        [TxOut(total - 20_000, P2WSH_OP_TRUE)],
    )
    res = h.pool.accept_package([parent, child])
    assert res.success, {k.hex(): v.reject_details for k, v in res.results.items()}
    assert set(h.pool.txids()) == {parent.txid, child.txid}


def test_ephemeral_dust_left_unspent(h: Harness) -> None:
    coin = h.coin()
    total = value_of(h, coin)
    parent = h.spend([coin], [TxOut(0, ANCHOR_SCRIPT), TxOut(total, P2WSH_OP_TRUE)], version=3)
    child = h.spend([out(parent, 1)], fee=20_000, version=3)
    res = h.pool.accept_package([parent, child])
    assert res.package_msg == "transaction failed"
    r = res.results[child.wtxid]
    assert (r.reject_reason, r.result) == ("missing-ephemeral-spends", TxResult.MEMPOOL_POLICY)
    assert len(h.pool) == 0


def test_dust_with_fee_refused(h: Harness) -> None:
    coin = h.coin()
    total = value_of(h, coin)
    tx = h.spend([coin], [TxOut(0, ANCHOR_SCRIPT), TxOut(total - 1_000, P2WSH_OP_TRUE)], version=3)
    r = h.pool.accept(tx)
    assert (r.reject_reason, r.debug) == ("dust", "tx with dust output must be 0-fee")
    assert r.result is TxResult.NOT_STANDARD


# -- persistence --------------------------------------------------------------------------------


def test_save_and_load(h: Harness, tmp_path: Path) -> None:
    a = h.spend([h.coin()])
    b = h.spend([out(a)])
    c = h.spend([h.coin()], fee=0)
    assert h.pool.accept(a).allowed
    h.now += 60
    assert h.pool.accept(b).allowed
    h.pool.prioritise(b.txid, 700)
    h.pool.prioritise(c.txid, 5_000)  # not in the pool: its delta is kept too
    path = tmp_path / "mempool.dat"
    assert h.pool.save(path) == 2
    assert not (tmp_path / "mempool.dat.new").exists()
    assert path.read_bytes().startswith(MEMPOOL_DUMP_MAGIC)

    fresh = MemPool(ChainStateView(h.builder.chain), clock=lambda: h.now)
    assert not fresh.loaded
    assert fresh.load(path) == 2
    assert fresh.loaded
    assert fresh.txids() == [a.txid, b.txid]
    assert fresh.entry_info(a.txid)["time"] == int(h.now) - 60
    assert fresh.entry_info(b.txid)["fees"]["modified"] == 10_700  # type: ignore[index]
    assert fresh.prioritised()[c.txid] == (5_000, False)
    assert fresh.accept(c).allowed  # its delta lifts it over the minimum relay fee


def test_load_skips_expired(h: Harness, tmp_path: Path) -> None:
    assert h.pool.accept(h.spend([h.coin()])).allowed
    path = tmp_path / "mempool.dat"
    h.pool.save(path)
    h.now += 336 * 3600 + 1
    fresh = MemPool(ChainStateView(h.builder.chain), clock=lambda: h.now)
    assert fresh.load(path) == 0 and len(fresh) == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "version"])
def test_damaged_file_is_skipped_with_a_warning(
    h: Harness, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert h.pool.accept(h.spend([h.coin()])).allowed
    path = tmp_path / "mempool.dat"
    h.pool.save(path)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        del data[-40:]
    elif damage == "magic":
        data[0:4] = b"XXXX"
    else:
        import hashlib

        data[8] = 9  # version 9, with a checksum that matches
        data[-32:] = hashlib.sha256(bytes(data[:-32])).digest()
    path.write_bytes(bytes(data))
    fresh = MemPool(ChainStateView(h.builder.chain), clock=lambda: h.now)
    with caplog.at_level(logging.WARNING, logger="peercash.mempool"):
        assert fresh.load(path) == 0
    assert fresh.loaded and len(fresh) == 0
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.WARNING
    assert str(path) in caplog.records[0].getMessage()


def test_missing_file_is_an_empty_pool(h: Harness, tmp_path: Path) -> None:
    assert h.pool.load(tmp_path / "absent.dat") == 0
    assert h.pool.loaded
