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


DIAGRAM = "insufficient feerate: does not improve feerate diagram"


def test_same_fee_same_size_fails_rule_4_before_the_diagram(h: Harness) -> None:
    coin = h.coin()
    original = h.spend([coin], fee=10_000)
    assert h.pool.accept(original).allowed
    same = h.spend([coin], fee=10_000, version=1)
    debug = rejected(h.pool.accept(same), "insufficient fee", TxResult.RECONSIDERABLE)
    need = -(-100 * same.vsize() // 1000)
    assert debug == (
        f"rejecting replacement {same.txid_hex}, not enough additional fees to relay; "
        f"0.00 < 0.{need:08d}".rstrip("0")
    )


def test_bigger_replacement_with_lower_feerate_fails_the_diagram(h: Harness) -> None:
    """Enough absolute fee (rules 3 and 4 pass) but a lower feerate: the new diagram is below
    the old one at the start and above it at the end, incomparable, so refused."""
    coin = h.coin()
    original = h.spend([coin], fee=10_000)
    assert h.pool.accept(original).allowed
    total = value_of(h, coin)
    outs = [TxOut((total - 20_000) // 60, P2WSH_OP_TRUE)] * 60
    big = h.spend([coin], outs, fee=total - sum(o.value for o in outs))
    assert big.vsize() > 2_000 and h.pool.entry(original.txid) is not None
    fee = total - sum(o.value for o in outs)
    assert fee >= 10_000 + -(-100 * big.vsize() // 1000)  # rules 3 and 4 hold
    assert fee * original.vsize() < 10_000 * big.vsize()  # a lower feerate
    r = h.pool.accept(big)
    assert rejected(r, "replacement-failed", TxResult.RECONSIDERABLE) == DIAGRAM
    assert r.reject_details == f"replacement-failed, {DIAGRAM}"
    assert h.pool.txids() == [original.txid]


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


def test_rule_5_counts_distinct_clusters(h: Harness) -> None:
    """Core 31: a replacement may conflict directly with at most 100 clusters."""
    fan = h.split(h.coin(), 101, fee=20_000)
    h.mine([fan])  # confirmed: each spend of it is a cluster of its own
    spends = [h.spend([out(fan, i)], fee=1_000) for i in range(101)]
    for tx in spends:
        assert h.pool.accept(tx).allowed
    assert h.pool.clusters.count_distinct_clusters([t.txid for t in spends]) == 101
    value = sum(value_of(h, out(fan, i)) for i in range(101))
    greedy = h.spend([out(fan, i) for i in range(101)], [TxOut(value - COIN, P2WSH_OP_TRUE)],
                     fee=COIN)  # fmt: skip
    debug = rejected(h.pool.accept(greedy), "too many potential replacements")
    assert debug == (
        f"rejecting replacement {greedy.txid_hex}; too many conflicting clusters (101 > 100)"
    )
    assert len(h.pool) == 101
    value = sum(value_of(h, out(fan, i)) for i in range(100))
    hundred = h.spend([out(fan, i) for i in range(100)], [TxOut(value - COIN, P2WSH_OP_TRUE)],
                      fee=COIN)  # fmt: skip
    r = h.pool.accept(hundred)
    assert r.allowed and len(r.replaced) == 100
    assert set(h.pool.txids()) == {hundred.txid, spends[100].txid}


def test_one_cluster_of_101_transactions_may_be_replaced(tmp_path: Path) -> None:
    """The pre-cluster rule 5 counted evictions (101 > 100 refused this); Core 31 counts the
    clusters the direct conflicts are in: here one."""
    h = Harness(tmp_path / "chain", cluster_limit=200)
    try:
        coin = h.coin()
        fan = h.split(coin, 100, fee=10_000)
        assert h.pool.accept(fan).allowed
        for i in range(100):
            assert h.pool.accept(h.spend([out(fan, i)], fee=1_000)).allowed
        replacement = h.spend([coin], fee=10 * COIN)
        r = h.pool.accept(replacement)
        assert r.allowed and len(r.replaced) == 101
        assert h.pool.txids() == [replacement.txid]
        assert sum(1 for _, why in h.removed if why is Removal.REPLACED) == 101
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


def test_replacement_may_add_unconfirmed_inputs(h: Harness) -> None:
    """Core 31 dropped "replacement-adds-unconfirmed": a new unconfirmed parent is judged by the
    diagram, which here improves (the parent pays well)."""
    coin = h.coin()
    original = h.spend([coin])
    assert h.pool.accept(original).allowed
    unrelated = h.spend([h.coin()])
    assert h.pool.accept(unrelated).allowed
    replacement = h.spend([coin, out(unrelated)], fee=10 * COIN)
    r = h.pool.accept(replacement)
    assert r.allowed and [t.txid for t in r.replaced] == [original.txid]
    assert h.pool.cluster(replacement.txid) == {unrelated.txid, replacement.txid}


def test_a_new_low_fee_parent_fails_the_diagram(h: Harness) -> None:
    """The replacement alone pays a higher feerate than what it replaces (the old rule 6
    passes) but must be mined with the cheap parent it adds: their chunk is worse."""
    coin = h.coin()
    original = h.spend([coin], fee=10_000)
    cheap = h.spend([h.coin()], fee=200)
    assert h.pool.accept(original).allowed and h.pool.accept(cheap).allowed
    replacement = h.spend([coin, out(cheap)], fee=20_000)
    assert 20_000 * original.vsize() > 10_000 * replacement.vsize()  # higher own feerate
    assert 20_200 * original.vsize() < 10_000 * (replacement.vsize() + cheap.vsize())
    r = h.pool.accept(replacement)
    assert rejected(r, "replacement-failed", TxResult.RECONSIDERABLE) == DIAGRAM
    assert set(h.pool.txids()) == {original.txid, cheap.txid}


def test_diagram_refuses_what_old_rule_6_allowed(h: Harness) -> None:
    """A cheap conflict carried by a high-fee child: the old rule compared feerates with the
    direct conflict only and passed; the replacement is big, so its diagram is worse than the
    parent-and-child chunk it evicts."""
    coin = h.coin()
    parent = h.spend([coin], fee=1_000)
    assert h.pool.accept(parent).allowed
    child = h.spend([out(parent)], fee=20_000)
    assert h.pool.accept(child).allowed
    assert h.pool.entry_info(parent.txid)["chunkweight"] == parent.weight() + child.weight()
    total = value_of(h, coin)
    outs = [TxOut(1_000_000, P2WSH_OP_TRUE)] * 25
    draft = h.spend([coin], [*outs, TxOut(total - 26_000_000, P2WSH_OP_TRUE)], fee=0)
    fee = 21_000 + -(-100 * draft.vsize() // 1000)  # rules 3 and 4 exactly met
    big = h.spend([coin], [*outs, TxOut(total - 25_000_000 - fee, P2WSH_OP_TRUE)], fee=fee)
    assert big.vsize() == draft.vsize()
    assert fee * parent.vsize() > 1_000 * big.vsize()  # old rule 6: higher than the conflict
    r = h.pool.accept(big)
    assert rejected(r, "replacement-failed", TxResult.RECONSIDERABLE) == DIAGRAM
    assert set(h.pool.txids()) == {parent.txid, child.txid}


def test_diagram_allows_what_old_rule_6_refused(h: Harness) -> None:
    """The conflict is a high-fee child mined with its cheap parent; the replacement pays a
    lower feerate than that child (old rule 6 refused) but leaves the parent alone and beats
    their chunk everywhere on the diagram."""
    cheap_parent = h.spend([h.coin()], fee=200)
    assert h.pool.accept(cheap_parent).allowed
    coin = h.coin()
    conflict = h.spend([out(cheap_parent), coin], fee=10_000)
    assert h.pool.accept(conflict).allowed
    outs = [TxOut(1_000_000, P2WSH_OP_TRUE)] * 3
    outs.append(TxOut(value_of(h, coin) - 3_000_000 - 10_300, P2WSH_OP_TRUE))
    replacement = h.spend([coin], outs, fee=10_300)
    # Old rule 6 refuses: a lower feerate than the transaction it directly replaces.
    assert 10_300 * conflict.vsize() < 10_000 * replacement.vsize()
    # ... but a higher one than the chunk that conflict was mined in.
    assert 10_300 * (cheap_parent.vsize() + conflict.vsize()) > 10_200 * replacement.vsize()
    r = h.pool.accept(replacement)
    assert r.allowed, r.reject_details
    assert [t.txid for t in r.replaced] == [conflict.txid]
    assert set(h.pool.txids()) == {cheap_parent.txid, replacement.txid}


def test_prioritisation_counts_in_replacement(h: Harness) -> None:
    coin = h.coin()
    original = h.spend([coin], fee=10_000)
    assert h.pool.accept(original).allowed
    h.pool.prioritise(original.txid, 50_000)
    bump = h.spend([coin], fee=40_000, version=1)
    debug = rejected(h.pool.accept(bump), "insufficient fee", TxResult.RECONSIDERABLE)
    assert debug == (
        f"rejecting replacement {bump.txid_hex}, less fees than conflicting txs; 0.0004 < 0.0006"
    )
    h.pool.prioritise(bump.txid, 30_000)
    assert h.pool.accept(bump).allowed


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
    assert rejected(h.pool.accept(cheap_sibling), reason, TxResult.RECONSIDERABLE) == (
        f"rejecting replacement {cheap_sibling.txid_hex}, not enough additional fees to relay; "
        "0.00 < 0.0000001"
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
