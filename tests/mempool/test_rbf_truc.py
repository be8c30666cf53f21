"""Full replace-by-fee (Core's rules, no signalling) and TRUC (version 3) topology rules."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooltools import COIN, P2WSH_OP_TRUE, Harness, out, value_of

from peercash.consensus.primitives import TxOut
from peercash.mempool.pool import AcceptResult, Removal, TxResult


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "chain")
    yield harness
    harness.close()


def rejected(r: AcceptResult, reason: str, kind: TxResult = TxResult.MEMPOOL_POLICY) -> str:
    assert not r.allowed
    assert r.reject_reason == reason, r.reject_details
    assert r.result is kind
    return r.debug


# -- replacement ------------------------------------------------------------------------------


def test_replacement_without_signalling(h: Harness) -> None:
    coin = h.coin()
    original = h.spend([coin], fee=10_000, sequence=0xFFFFFFFF)  # no BIP125 signal
    child = h.spend([out(original)])
    assert h.pool.accept(original).allowed and h.pool.accept(child).allowed
    better = h.spend([coin], fee=40_000, sequence=0xFFFFFFFF)
    r = h.pool.accept(better)
    assert r.allowed
    assert {t.txid for t in r.replaced} == {original.txid, child.txid}
    assert h.pool.txids() == [better.txid]
    assert {(original.txid, Removal.REPLACED), (child.txid, Removal.REPLACED)} <= set(h.removed)


def test_replacement_disallowed(h: Harness) -> None:
    coin = h.coin()
    assert h.pool.accept(h.spend([coin])).allowed
    r = h.pool.accept(h.spend([coin], fee=50_000), allow_replacement=False)
    rejected(r, "bip125-replacement-disallowed")


def test_replacement_needs_higher_feerate(h: Harness) -> None:
    coin = h.coin()
    original = h.spend([coin], fee=10_000)
    assert h.pool.accept(original).allowed
    same = h.spend([coin], fee=10_000, version=1)
    debug = rejected(h.pool.accept(same), "insufficient fee", TxResult.RECONSIDERABLE)
    rate = 10_000 * 1000 // original.vsize()
    shown = f"0.{rate:08d} BTC/kvB"
    assert debug == (
        f"rejecting replacement {same.txid_hex}; new feerate {shown} <= old feerate {shown}"
    )


def test_replacement_needs_more_absolute_fee(h: Harness) -> None:
    coin = h.coin()
    total = value_of(h, coin)
    big = h.spend(
        [coin], [TxOut((total - 10_000) // 3, P2WSH_OP_TRUE)] * 3, fee=10_000 + (total - 10_000) % 3
    )
    assert h.pool.accept(big).allowed
    small = h.spend([coin], fee=9_900)  # one output: a higher feerate, a lower fee
    assert 9_900 * big.vsize() > h.pool.entry(big.txid).fee * small.vsize()  # type: ignore[union-attr]
    debug = rejected(h.pool.accept(small), "insufficient fee", TxResult.RECONSIDERABLE)
    assert debug == (
        f"rejecting replacement {small.txid_hex}, less fees than conflicting txs; "
        f"0.000099 < {h.pool.entry(big.txid).fee / COIN:.8f}".rstrip("0")  # type: ignore[union-attr]
    )


def test_replacement_must_pay_its_own_relay(h: Harness) -> None:
    coin = h.coin()
    assert h.pool.accept(h.spend([coin], fee=10_000)).allowed
    bump = h.spend([coin], fee=10_001, version=1)
    debug = rejected(h.pool.accept(bump), "insufficient fee", TxResult.RECONSIDERABLE)
    need = -(-100 * bump.vsize() // 1000)
    assert debug == (
        f"rejecting replacement {bump.txid_hex}, not enough additional fees to relay; "
        f"0.00000001 < 0.{need:08d}".rstrip("0")
    )
    enough = h.spend([coin], fee=10_000 + need, version=1)
    assert h.pool.accept(enough).allowed


def test_too_many_potential_replacements(tmp_path: Path) -> None:
    h = Harness(tmp_path / "chain", cluster_limit=200)
    try:
        coin = h.coin()
        fan = h.split(coin, 100, fee=10_000)
        assert h.pool.accept(fan).allowed
        for i in range(100):
            assert h.pool.accept(h.spend([out(fan, i)], fee=1_000)).allowed
        replacement = h.spend([coin], fee=10 * COIN)
        debug = rejected(h.pool.accept(replacement), "too many potential replacements")
        assert debug == (
            f"rejecting replacement {replacement.txid_hex}; too many potential replacements "
            "(101 > 100)\n"
        )
    finally:
        h.close()


def test_spends_conflicting_tx(h: Harness) -> None:
    coin = h.coin()
    a = h.split(coin, 2)
    assert h.pool.accept(a).allowed
    b = h.spend([out(a, 0)])
    assert h.pool.accept(b).allowed
    # Replaces a (spends its coin) while spending b's output: b would be evicted.
    bad = h.spend([coin, out(b)], fee=10 * COIN)
    r = h.pool.accept(bad)
    debug = rejected(r, "bad-txns-spends-conflicting-tx", TxResult.CONSENSUS)
    assert debug == f"{bad.txid_hex} spends conflicting transaction {a.txid_hex}"


def test_replacement_adds_unconfirmed(h: Harness) -> None:
    coin = h.coin()
    assert h.pool.accept(h.spend([coin])).allowed
    unrelated = h.spend([h.coin()])
    assert h.pool.accept(unrelated).allowed
    replacement = h.spend([coin, out(unrelated)], fee=10 * COIN)
    debug = rejected(h.pool.accept(replacement), "replacement-adds-unconfirmed")
    assert debug == f"replacement {replacement.txid_hex} adds unconfirmed input, idx 1"


# -- TRUC ---------------------------------------------------------------------------------------


def test_truc_too_big(h: Harness) -> None:
    coin = h.coin()
    outs = [TxOut(1_000, P2WSH_OP_TRUE)] * 240  # 43-byte outputs: > 10,000 vB
    tx = h.spend([coin], outs, fee=COIN, version=3)
    assert tx.vsize() > 10_000
    debug = rejected(h.pool.accept(tx), "TRUC-violation")
    assert debug == (
        f"version=3 tx {tx.txid_hex} (wtxid={tx.wtxid_hex}) is too big: {tx.vsize()} > 10000 "
        "virtual bytes"
    )
    assert h.pool.accept(h.spend([coin], outs[:200], fee=COIN, version=3)).allowed


def test_truc_child_too_big(h: Harness) -> None:
    parent = h.spend([h.coin()], version=3)
    assert h.pool.accept(parent).allowed
    child = h.spend([out(parent)], [TxOut(1_000, P2WSH_OP_TRUE)] * 30, fee=COIN, version=3)
    assert child.vsize() > 1_000
    debug = rejected(h.pool.accept(child), "TRUC-violation")
    assert debug == (
        f"version=3 child tx {child.txid_hex} (wtxid={child.wtxid_hex}) is too big: "
        f"{child.vsize()} > 1000 virtual bytes"
    )


def test_truc_and_non_truc_do_not_mix(h: Harness) -> None:
    v3 = h.spend([h.coin()], version=3)
    v2 = h.spend([h.coin()], version=2)
    assert h.pool.accept(v3).allowed and h.pool.accept(v2).allowed
    v2_child = h.spend([out(v3)], version=2)
    debug = rejected(h.pool.accept(v2_child), "TRUC-violation")
    assert debug == (
        f"non-version=3 tx {v2_child.txid_hex} (wtxid={v2_child.wtxid_hex}) cannot spend from "
        f"version=3 tx {v3.txid_hex} (wtxid={v3.wtxid_hex})"
    )
    v3_child = h.spend([out(v2)], version=3)
    debug = rejected(h.pool.accept(v3_child), "TRUC-violation")
    assert debug == (
        f"version=3 tx {v3_child.txid_hex} (wtxid={v3_child.wtxid_hex}) cannot spend from "
        f"non-version=3 tx {v2.txid_hex} (wtxid={v2.wtxid_hex})"
    )


def test_truc_one_unconfirmed_ancestor(h: Harness) -> None:
    a = h.spend([h.coin()], version=3)
    b = h.spend([out(a)], version=3)
    assert h.pool.accept(a).allowed and h.pool.accept(b).allowed
    c = h.spend([out(b)], version=3)
    debug = rejected(h.pool.accept(c), "TRUC-violation")
    assert debug == f"tx {c.txid_hex} (wtxid={c.wtxid_hex}) would have too many ancestors"


def test_truc_sibling_eviction(h: Harness) -> None:
    parent = h.split(h.coin(), 2, version=3)
    assert h.pool.accept(parent).allowed
    first = h.spend([out(parent, 0)], fee=1_000, version=3)
    assert h.pool.accept(first).allowed
    cheap_sibling = h.spend([out(parent, 1)], fee=1_000, version=3)
    reason = "insufficient fee (including sibling eviction)"
    assert rejected(h.pool.accept(cheap_sibling), reason, TxResult.RECONSIDERABLE).startswith(
        f"rejecting replacement {cheap_sibling.txid_hex}; new feerate"
    )
    sibling = h.spend([out(parent, 1)], fee=5_000, version=3)
    r = h.pool.accept(sibling)
    assert r.allowed
    assert [t.txid for t in r.replaced] == [first.txid]
    assert set(h.pool.txids()) == {parent.txid, sibling.txid}


def test_truc_sibling_eviction_by_a_child_spending_two_outputs(h: Harness) -> None:
    parent = h.split(h.coin(), 3, version=3)
    assert h.pool.accept(parent).allowed
    first = h.spend([out(parent, 0)], fee=1_000, version=3)
    assert h.pool.accept(first).allowed
    both = h.spend([out(parent, 1), out(parent, 2)], fee=50_000, version=3)
    r = h.pool.accept(both)
    assert r.allowed and [t.txid for t in r.replaced] == [first.txid]
    assert h.pool.entry_info(parent.txid)["spentby"] == [both.txid_hex]
