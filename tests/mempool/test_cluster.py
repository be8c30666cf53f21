"""Cluster linearisation: FeeFrac order, chunking, diagrams, the linearisers and the ClusterSet.

Hand-made clusters have their optimal linearisations worked out in the comments; the properties
compare against brute force (every topological order, or every closed subset) on small graphs.
"""

from __future__ import annotations

import random
from fractions import Fraction
from itertools import pairwise, permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.mempool.cluster import (
    DEFAULT_CLUSTER_COUNT_LIMIT,
    DEFAULT_CLUSTER_SIZE_LIMIT_VB,
    Chunk,
    ClusterLimitError,
    ClusterSet,
    DepGraph,
    DiagramOrder,
    FeeFrac,
    LimitCheck,
    _float_order_is_exact,
    ancestor_linearize,
    chunk,
    chunk_feerates,
    compare_diagrams,
    feerate_diagram,
    is_topological,
    linearize,
    linearize_detailed,
    merge_linearizations,
    post_linearize,
)

NOT_WORSE = (DiagramOrder.BETTER, DiagramOrder.EQUAL)


def diagram(graph: DepGraph, order: list[int]) -> list[tuple[int, int]]:
    return feerate_diagram(chunk(graph, order))


def compare_orders(graph: DepGraph, a: list[int], b: list[int]) -> DiagramOrder:
    return compare_diagrams(diagram(graph, a), diagram(graph, b))


def topological_orders(graph: DepGraph) -> list[list[int]]:
    out: list[list[int]] = []

    def extend(order: list[int], done: int) -> None:
        if len(order) == graph.n:
            out.append(list(order))
            return
        for i in range(graph.n):
            if not done >> i & 1 and not graph.parents[i] & ~done:
                order.append(i)
                extend(order, done | 1 << i)
                order.pop()

    extend([], 0)
    return out


def best_subsets_diagram(graph: DepGraph) -> list[tuple[int, int]]:
    """The optimal diagram by brute force over subsets: repeatedly the best closed subset."""
    remaining = graph.all_mask
    rates: list[FeeFrac] = []
    while remaining:
        best: FeeFrac | None = None
        best_mask = 0
        sub = remaining
        while sub:  # every non-empty subset of remaining
            closed = all(
                graph.ancestors[i] & remaining & ~sub == 0 for i in range(graph.n) if sub >> i & 1
            )
            if closed:
                rate = graph.feerate_of(sub)
                if best is None or rate.feerate_gt(best):
                    best, best_mask = rate, sub
            sub = (sub - 1) & remaining
        assert best is not None
        rates.append(best)
        remaining &= ~best_mask
    return feerate_diagram(rates)


@st.composite
def graphs(draw: st.DrawFn, max_txs: int = 8, min_txs: int = 1) -> DepGraph:
    """A random DAG, its indices shuffled so that index order is not always topological."""
    n = draw(st.integers(min_txs, max_txs))
    density = draw(st.sampled_from([0.0, 0.15, 0.3, 0.6, 1.0]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    perm = list(range(n))
    rng.shuffle(perm)
    fees = [draw(st.integers(-200, 10_000)) for _ in range(n)]
    sizes = [draw(st.integers(1, 1_000)) for _ in range(n)]
    spec: list[tuple[int, int, list[int]]] = [(0, 0, [])] * n
    for i in range(n):
        parents = [perm[j] for j in range(i) if rng.random() < density]
        spec[perm[i]] = (fees[i], sizes[i], parents)
    return DepGraph(spec)


def random_graph(rng: random.Random, n: int, density: float) -> DepGraph:
    return DepGraph(
        [
            (
                rng.randint(0, 10_000),
                rng.randint(60, 1_000),
                [j for j in range(i) if rng.random() < density],
            )
            for i in range(n)
        ]
    )


# -- FeeFrac -----------------------------------------------------------------------------------


def test_feefrac_orders_by_feerate_then_smaller_size() -> None:
    assert FeeFrac(2, 1) > FeeFrac(1, 1)
    assert FeeFrac(1000, 300) < FeeFrac(1001, 300)
    # Same feerate: the smaller size is the greater (Core's operator<=>).
    assert FeeFrac(1, 1) > FeeFrac(2, 2)
    assert FeeFrac(2, 2) < FeeFrac(1, 1)
    assert not FeeFrac(1, 1).feerate_gt(FeeFrac(2, 2))
    assert not FeeFrac(1, 1).feerate_lt(FeeFrac(2, 2))
    assert FeeFrac(1, 1).feerate_cmp(FeeFrac(2, 2)) == 0
    assert FeeFrac(3, 2).feerate_gt(FeeFrac(1, 1))
    assert FeeFrac(-1, 10).feerate_lt(FeeFrac(0, 10))
    # The empty FeeFrac compares greater than any non-empty one.
    assert FeeFrac(0, 0) > FeeFrac(10**9, 1)
    assert FeeFrac(1, 1) == FeeFrac(1, 1) and FeeFrac(1, 1) != FeeFrac(2, 2)
    assert FeeFrac(3, 4) + FeeFrac(5, 6) == FeeFrac(8, 10)
    assert FeeFrac(8, 10) - FeeFrac(5, 6) == FeeFrac(3, 4)
    assert not FeeFrac() and FeeFrac(0, 1)
    assert sorted([FeeFrac(1, 2), FeeFrac(2, 2), FeeFrac(2, 4), FeeFrac(5, 3)], reverse=True) == [
        FeeFrac(5, 3),
        FeeFrac(2, 2),
        FeeFrac(1, 2),
        FeeFrac(2, 4),
    ]


@given(
    st.integers(-(10**15), 10**15),
    st.integers(1, 10**7),
    st.integers(-(10**15), 10**15),
    st.integers(1, 10**7),
)
def test_feefrac_order_matches_exact_fractions(fa: int, sa: int, fb: int, sb: int) -> None:
    a, b = FeeFrac(fa, sa), FeeFrac(fb, sb)
    key_a, key_b = (Fraction(fa, sa), -sa), (Fraction(fb, sb), -sb)
    assert (a < b) == (key_a < key_b)
    assert (a > b) == (key_a > key_b)
    assert (a <= b) == (key_a <= key_b)
    assert (a >= b) == (key_a >= key_b)
    assert a.feerate_gt(b) == (Fraction(fa, sa) > Fraction(fb, sb))
    assert a.feerate_lt(b) == (Fraction(fa, sa) < Fraction(fb, sb))


# -- DepGraph ----------------------------------------------------------------------------------


def test_depgraph_closures() -> None:
    # 0 -> 1 -> 3, 0 -> 2 -> 3, 4 alone
    g = DepGraph([(1, 1, []), (1, 1, [0]), (1, 1, [0]), (1, 1, [1, 2]), (1, 1, [])])
    assert g.ancestors == [0b00001, 0b00011, 0b00101, 0b01111, 0b10000]
    assert g.descendants == [0b01111, 0b01010, 0b01100, 0b01000, 0b10000]
    assert g.children == [0b00110, 0b01000, 0b01000, 0, 0]
    assert g.is_connected(0b01111) and not g.is_connected()
    assert g.feerate_of(0b10011) == FeeFrac(3, 3)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([(1, 1, [1]), (1, 1, [0])], "dependency cycle"),
        ([(1, 1, [0])], "bad parent 0"),
        ([(1, 1, [5])], "bad parent 5"),
        ([(1, 0, [])], "has size 0"),
    ],
)
def test_depgraph_rejects_bad_graphs(spec: list[tuple[int, int, list[int]]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DepGraph(spec)


# -- chunking and diagrams ---------------------------------------------------------------------


def test_chunking_merges_only_strictly_better_followers() -> None:
    rates = [FeeFrac(1, 1), FeeFrac(1, 1), FeeFrac(0, 2), FeeFrac(6, 1), FeeFrac(1, 4)]
    # (0,2) then (6,1): 6/1 > 0/2 -> (6,3) = 2 > 1 -> merges with the second (1,1) -> (7,4)
    # = 1.75 > 1 -> merges with the first -> (8,5); (1,4) stays. Equal feerates stay apart:
    assert chunk_feerates(rates) == [(4, FeeFrac(8, 5)), (1, FeeFrac(1, 4))]
    assert chunk_feerates([FeeFrac(5, 5), FeeFrac(1, 1)]) == [
        (1, FeeFrac(5, 5)),
        (1, FeeFrac(1, 1)),
    ]
    assert chunk_feerates([]) == []


def test_diagram_points() -> None:
    assert feerate_diagram([FeeFrac(10, 2), FeeFrac(3, 3)]) == [(0, 0), (2, 10), (5, 13)]
    with pytest.raises(ValueError):
        feerate_diagram([FeeFrac(1, 0)])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([FeeFrac(10, 2)], [FeeFrac(10, 2)], DiagramOrder.EQUAL),
        # Splitting a chunk into two of the same feerate does not change the diagram.
        ([FeeFrac(10, 2)], [FeeFrac(5, 1), FeeFrac(5, 1)], DiagramOrder.EQUAL),
        ([FeeFrac(11, 2)], [FeeFrac(10, 2)], DiagramOrder.BETTER),
        ([FeeFrac(10, 2)], [FeeFrac(11, 2)], DiagramOrder.WORSE),
        # More fee further right: the shorter diagram stays flat after its end.
        ([FeeFrac(10, 2), FeeFrac(1, 1)], [FeeFrac(10, 2)], DiagramOrder.BETTER),
        # Same total, fee earlier is better.
        ([FeeFrac(8, 1), FeeFrac(2, 1)], [FeeFrac(10, 2)], DiagramOrder.BETTER),
        # Higher at first, lower in the end: incomparable.
        ([FeeFrac(10, 1), FeeFrac(0, 3)], [FeeFrac(12, 4)], DiagramOrder.INCOMPARABLE),
        ([FeeFrac(12, 4)], [FeeFrac(10, 1), FeeFrac(0, 3)], DiagramOrder.INCOMPARABLE),
        # A point exactly on the other's line: equal there, better at the end.
        (
            [FeeFrac(5, 1), FeeFrac(5, 1), FeeFrac(1, 1)],
            [FeeFrac(10, 2), FeeFrac(0, 1)],
            DiagramOrder.BETTER,
        ),
        # Below between the other's points although its own points are on or above them.
        (
            [FeeFrac(5, 1), FeeFrac(6, 2)],
            [FeeFrac(10, 2), FeeFrac(0, 1)],
            DiagramOrder.INCOMPARABLE,
        ),
        ([], [], DiagramOrder.EQUAL),
        ([FeeFrac(1, 10)], [], DiagramOrder.BETTER),
        ([FeeFrac(-1, 10)], [], DiagramOrder.WORSE),
    ],
)
def test_compare_diagrams_cases(a: list[FeeFrac], b: list[FeeFrac], expected: DiagramOrder) -> None:
    assert compare_diagrams(feerate_diagram(a), feerate_diagram(b)) is expected


_MIRROR = {
    DiagramOrder.BETTER: DiagramOrder.WORSE,
    DiagramOrder.WORSE: DiagramOrder.BETTER,
    DiagramOrder.EQUAL: DiagramOrder.EQUAL,
    DiagramOrder.INCOMPARABLE: DiagramOrder.INCOMPARABLE,
}
_chunk_lists = st.lists(
    st.builds(FeeFrac, st.integers(-50, 200), st.integers(1, 20)), min_size=0, max_size=6
).map(lambda rates: [rate for _, rate in chunk_feerates(rates)])


@settings(max_examples=400)
@given(_chunk_lists, _chunk_lists)
def test_compare_diagrams_is_antisymmetric(a: list[FeeFrac], b: list[FeeFrac]) -> None:
    da, db = feerate_diagram(a), feerate_diagram(b)
    assert compare_diagrams(db, da) is _MIRROR[compare_diagrams(da, db)]
    assert compare_diagrams(da, da) is DiagramOrder.EQUAL


# -- hand-made clusters ------------------------------------------------------------------------


def test_cpfp_parent_and_child_form_one_chunk() -> None:
    # A parent paying 1 sat/vB, its child 20 sat/vB: together 10.5 sat/vB, one chunk.
    g = DepGraph([(100, 100, []), (2_000, 100, [0])])
    order = linearize(g)
    assert order == [0, 1]
    assert chunk(g, order) == [Chunk((0, 1), FeeFrac(2_100, 200))]


def test_two_independent_chains_interleave_by_chunk_feerate() -> None:
    # Chain A: a0 1 sat/vB -> a1 10 sat/vB (chunk 5.5); chain B: b0 5 sat/vB -> b1 1 sat/vB.
    # Best order: {a0,a1} 5.5, then b0 5, then b1 1.
    a0, a1, b0, b1 = 0, 1, 2, 3
    g = DepGraph([(100, 100, []), (1_000, 100, [a0]), (500, 100, []), (100, 100, [b0])])
    order = linearize(g)
    assert order == [a0, a1, b0, b1]
    assert [c.feerate for c in chunk(g, order)] == [
        FeeFrac(1_100, 200),
        FeeFrac(500, 100),
        FeeFrac(100, 100),
    ]


def test_diamond_is_one_chunk_when_the_bottom_pays_for_all() -> None:
    # top (0 fee) -> left (2/vB), right (10/vB) -> bottom (50/vB): {t,r} 5, {t,l,r} 4,
    # everything 15.5: best is all four.
    g = DepGraph([(0, 100, []), (200, 100, [0]), (1_000, 100, [0]), (5_000, 100, [1, 2])])
    order = linearize(g)
    assert is_topological(g, order)
    assert chunk(g, order) == [Chunk(tuple(order), FeeFrac(6_200, 400))]
    assert order[0] == 0 and order[-1] == 3


def test_diamond_with_a_poor_bottom_leaves_it_last() -> None:
    # top 0 fee, left 1/vB, right 30/vB, bottom 2/vB: {t,r} 15 first, then l 1? No: {l,b}
    # = 1.5 > l alone, so the second chunk is {l, b} at 1.5.
    g = DepGraph([(0, 100, []), (100, 100, [0]), (3_000, 100, [0]), (200, 100, [1, 2])])
    order = linearize(g)
    assert order == [0, 2, 1, 3]
    assert [c.feerate for c in chunk(g, order)] == [FeeFrac(3_000, 200), FeeFrac(300, 200)]


def test_search_beats_ancestor_sets_where_the_sibling_is_better() -> None:
    # tx0 600/100 alone; tx1 100/300 has children tx2 500/100 and tx4 500/100; tx3 200/100
    # spends tx0 and tx2. Ancestor sets pick {1,2,3} (800/500 = 1.6 > {1,2} 1.5) and leave one
    # chunk {1,2,3,4} of 1300/600; the optimum takes {1,2,4} (1100/500 = 2.2) and then {3} (2).
    g = DepGraph(
        [(600, 100, []), (100, 300, []), (500, 100, [1]), (200, 100, [0, 2]), (500, 100, [1])]
    )
    greedy = ancestor_linearize(g)
    assert greedy == [0, 1, 2, 3, 4]
    assert [c.feerate for c in chunk(g, greedy)] == [FeeFrac(600, 100), FeeFrac(1_300, 600)]
    result = linearize_detailed(g)
    assert result.optimal
    assert result.order == [0, 1, 2, 4, 3]
    assert [c.feerate for c in chunk(g, result.order)] == [
        FeeFrac(600, 100),
        FeeFrac(1_100, 500),
        FeeFrac(200, 100),
    ]
    assert compare_orders(g, result.order, greedy) is DiagramOrder.BETTER


def test_empty_and_single() -> None:
    assert linearize(DepGraph([])) == []
    assert linearize_detailed(DepGraph([(5, 10, [])])).order == [0]
    assert chunk(DepGraph([(5, 10, [])]), [0]) == [Chunk((0,), FeeFrac(5, 10))]


def test_old_linearization_must_be_topological() -> None:
    g = DepGraph([(1, 1, []), (1, 1, [0])])
    with pytest.raises(ValueError, match="not a topological order"):
        linearize_detailed(g, old=[1, 0])


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(graphs(max_txs=6))
def test_optimal_equals_brute_force_over_all_topological_orders(g: DepGraph) -> None:
    result = linearize_detailed(g)
    assert result.optimal
    assert is_topological(g, result.order)
    ours = diagram(g, result.order)
    orders = topological_orders(g)
    for order in orders:
        assert compare_diagrams(ours, diagram(g, order)) in NOT_WORSE, order
    assert len(orders) >= 1


def test_optimal_equals_brute_force_over_all_orders_of_eight() -> None:
    rng = random.Random(8)
    checked = 0
    for density in (0.15, 0.3, 0.5):
        for _ in range(3):
            g = random_graph(rng, 8, density)
            ours = diagram(g, linearize(g))
            for order in topological_orders(g):
                assert compare_diagrams(ours, diagram(g, order)) in NOT_WORSE
                checked += 1
    assert checked > 9 * 8  # many orders per graph, not one


@settings(max_examples=300, deadline=None)
@given(graphs(max_txs=8))
def test_optimal_diagram_equals_best_subset_brute_force(g: DepGraph) -> None:
    result = linearize_detailed(g)
    assert result.optimal
    assert compare_diagrams(diagram(g, result.order), best_subsets_diagram(g)) is DiagramOrder.EQUAL


@settings(max_examples=200, deadline=None)
@given(graphs(max_txs=20))
def test_linearize_is_topological_with_nonincreasing_chunks_and_beats_greedy(g: DepGraph) -> None:
    order = linearize(g)
    assert is_topological(g, order)
    chunks = chunk(g, order)
    assert sorted(i for c in chunks for i in c.indices) == list(range(g.n))
    for earlier, later in pairwise(chunks):
        assert not later.feerate.feerate_gt(earlier.feerate)
    assert compare_orders(g, order, ancestor_linearize(g)) in NOT_WORSE
    assert linearize(g) == order  # deterministic


@settings(max_examples=200, deadline=None)
@given(graphs(max_txs=12), st.integers(0, 6))
def test_small_budget_is_never_worse_than_greedy(g: DepGraph, budget: int) -> None:
    result = linearize_detailed(g, max_iterations=budget)
    assert is_topological(g, result.order)
    assert result.iterations <= budget
    assert compare_orders(g, result.order, ancestor_linearize(g)) in NOT_WORSE
    full = linearize_detailed(g)
    assert compare_orders(g, full.order, result.order) in NOT_WORSE


@settings(max_examples=200, deadline=None)
@given(graphs(max_txs=10), st.randoms(use_true_random=False))
def test_merge_is_not_worse_than_either_input(g: DepGraph, rnd: random.Random) -> None:
    orders = topological_orders(g) if g.n <= 6 else [ancestor_linearize(g), linearize(g)]
    a, b = rnd.choice(orders), rnd.choice(orders)
    merged = merge_linearizations(g, a, b)
    assert is_topological(g, merged)
    assert compare_orders(g, merged, a) in NOT_WORSE
    assert compare_orders(g, merged, b) in NOT_WORSE


@settings(max_examples=300, deadline=None)
@given(graphs(max_txs=9), st.randoms(use_true_random=False))
def test_post_linearize_keeps_or_improves_and_makes_chunks_connected(
    g: DepGraph, rnd: random.Random
) -> None:
    # A random topological order (not only good ones).
    order: list[int] = []
    done = 0
    while len(order) < g.n:
        ready = [i for i in range(g.n) if not done >> i & 1 and not g.parents[i] & ~done]
        pick = rnd.choice(ready)
        order.append(pick)
        done |= 1 << pick
    tidy = post_linearize(g, order)
    assert is_topological(g, tidy)
    assert compare_orders(g, tidy, order) in NOT_WORSE
    for c in chunk(g, tidy):
        mask = sum(1 << i for i in c.indices)
        assert g.is_connected(mask), (order, tidy, c)


def test_sixty_four_transaction_clusters() -> None:
    rng = random.Random(64)
    checked = 0
    for density in (0.03, 0.06, 0.1, 0.3):
        for _ in range(3):
            g = random_graph(rng, 64, density)
            result = linearize_detailed(g)
            assert is_topological(g, result.order)
            assert compare_orders(g, result.order, ancestor_linearize(g)) in NOT_WORSE
            assert linearize_detailed(g) == result
            bigger = linearize_detailed(g, max_iterations=20_000)
            assert compare_orders(g, bigger.order, result.order) in NOT_WORSE
            checked += 1
    assert checked == 12


def test_a_64_chain_is_kept_in_order() -> None:
    g = DepGraph([(100 * (i % 7), 100, [i - 1] if i else []) for i in range(64)])
    result = linearize_detailed(g)
    assert result.order == list(range(64))


# -- ClusterSet --------------------------------------------------------------------------------


def test_clusterset_cpfp_and_block_order() -> None:
    cs: ClusterSet[str] = ClusterSet()
    cs.add("parent", 100, 100)
    cs.add("other", 1_500, 100)
    cs.add("child", 2_000, 100, ["parent"])
    assert len(cs) == 3 and "child" in cs and "nope" not in cs
    assert cs.cluster_of("parent") == ["parent", "child"]
    assert cs.cluster_of("other") == ["other"]
    assert cs.chunk_feerate("parent") == FeeFrac(2_100, 200)
    assert cs.chunk_feerate("child") == FeeFrac(2_100, 200)
    assert list(cs.iter_chunks_best_first()) == [
        (FeeFrac(1_500, 100), ["other"]),
        (FeeFrac(2_100, 200), ["parent", "child"]),
    ]
    assert list(cs.iter_chunks_worst_first()) == [
        (FeeFrac(2_100, 200), ["parent", "child"]),
        (FeeFrac(1_500, 100), ["other"]),
    ]
    assert cs.ancestors("child") == {"parent"} and cs.descendants("parent") == {"child"}
    assert cs.parents("child") == {"parent"} and cs.children("parent") == {"child"}
    assert cs.is_optimal()


def test_clusterset_chunks_in_a_cluster_stay_in_order_across_clusters() -> None:
    cs: ClusterSet[int] = ClusterSet()
    cs.add(1, 1_000, 100)  # 10/vB
    cs.add(2, 100, 100, [1])  # 1/vB after it
    cs.add(3, 500, 100)  # 5/vB
    assert [keys for _, keys in cs.iter_chunks_best_first()] == [[1], [3], [2]]
    assert [keys for _, keys in cs.iter_chunks_worst_first()] == [[2], [3], [1]]


def test_clusterset_equal_feerate_chunks_older_cluster_first() -> None:
    cs: ClusterSet[str] = ClusterSet()
    cs.add("big", 2_000, 200)
    cs.add("small", 1_000, 100)
    cs.add("small2", 1_000, 100)
    assert [keys for _, keys in cs.iter_chunks_best_first()] == [["big"], ["small"], ["small2"]]
    assert [keys for _, keys in cs.iter_chunks_worst_first()] == [["small2"], ["small"], ["big"]]


def test_clusterset_equal_feerate_chunks_of_one_cluster_keep_their_order() -> None:
    # a0 then a1 at the same feerate: two chunks, the second smaller. Ordering chunks by FeeFrac
    # (smaller size first at equal feerate) would put the child's chunk before its parent's.
    cs: ClusterSet[str] = ClusterSet()
    cs.add("a0", 200, 200)
    cs.add("a1", 100, 100, ["a0"])
    assert cs.cluster_chunks("a0") == [(FeeFrac(200, 200), ["a0"]), (FeeFrac(100, 100), ["a1"])]
    assert [keys for _, keys in cs.iter_chunks_best_first()] == [["a0"], ["a1"]]
    assert [keys for _, keys in cs.iter_chunks_worst_first()] == [["a1"], ["a0"]]
    # Merging this cluster with another through a new child keeps a topological seed.
    cs.add("b", 50, 100)
    cs.add("c", 10, 100, ["a1", "b"])
    order = cs.cluster_of("c")
    assert order.index("a0") < order.index("a1") < order.index("c")
    assert order.index("b") < order.index("c")
    assert cs.cluster_chunks("c") == [
        (FeeFrac(200, 200), ["a0"]),
        (FeeFrac(100, 100), ["a1"]),
        (FeeFrac(50, 100), ["b"]),
        (FeeFrac(10, 100), ["c"]),
    ]


def test_clusterset_limits() -> None:
    cs: ClusterSet[int] = ClusterSet(max_count=3, max_vsize=1_000)
    cs.add(0, 10, 100)
    cs.add(1, 10, 100, [0])
    cs.add(2, 10, 100, [1])
    assert cs.check_add(100, [2]) == LimitCheck(False, 4, 400)
    with pytest.raises(ClusterLimitError, match="4 transactions of 400 vB"):
        cs.add(3, 10, 100, [2])
    assert 3 not in cs
    cs.add(10, 10, 900)
    assert cs.check_add(100, [10]) == LimitCheck(True, 2, 1_000)
    assert cs.check_add(101, [10]) == LimitCheck(False, 2, 1_001)
    # Merging two clusters: counts and sizes add up.
    assert cs.check_add(1, [0, 10]) == LimitCheck(False, 5, 1_201)
    assert cs.check_add(1, []) == LimitCheck(True, 1, 1)


def test_clusterset_default_limits_are_cores() -> None:
    assert DEFAULT_CLUSTER_COUNT_LIMIT == 64
    assert DEFAULT_CLUSTER_SIZE_LIMIT_VB == 101_000
    cs: ClusterSet[int] = ClusterSet()
    for i in range(64):
        cs.add(i, 1_000, 100, [i - 1] if i else [])
    assert cs.check_add(100, [63]) == LimitCheck(False, 65, 6_500)
    cs.add(100, 0, 101_000 - 6_400)
    assert cs.check_add(1, [100]) == LimitCheck(True, 2, 94_601)
    assert cs.check_add(1, [100, 63]) == LimitCheck(False, 66, 101_001)


def test_clusterset_package_limits() -> None:
    cs: ClusterSet[str] = ClusterSet(max_count=4, max_vsize=10_000)
    cs.add("a", 1, 100)
    cs.add("b", 1, 100, ["a"])
    assert cs.check_add_package([("p", 200, ["b"]), ("c", 300, ["p"])]) == LimitCheck(True, 4, 700)
    assert cs.check_add_package(
        [("p", 200, ["b"]), ("c", 300, ["p"]), ("d", 1, ["c"])]
    ) == LimitCheck(False, 5, 701)
    # Two separate new clusters: the largest is reported.
    assert cs.check_add_package([("x", 50, []), ("y", 60, ["x"]), ("z", 70, ["a"])]) == LimitCheck(
        True, 3, 270
    )
    with pytest.raises(ValueError, match="unknown parent"):
        cs.check_add_package([("q", 1, ["missing"])])


def test_clusterset_remove_splits_clusters() -> None:
    cs: ClusterSet[str] = ClusterSet()
    cs.add("p", 0, 100)
    cs.add("c1", 1_000, 100, ["p"])
    cs.add("c2", 3_000, 100, ["p"])
    assert cs.cluster_of("c1") == ["p", "c2", "c1"]
    cs.remove("p")  # as when a block confirms p
    assert cs.clusters() == [["c1"], ["c2"]] or sorted(cs.clusters()) == [["c1"], ["c2"]]
    assert cs.parents("c1") == set()
    assert cs.chunk_feerate("c2") == FeeFrac(3_000, 100)
    assert [keys for _, keys in cs.iter_chunks_best_first()] == [["c2"], ["c1"]]


def test_clusterset_remove_many_and_set_fee() -> None:
    cs: ClusterSet[int] = ClusterSet()
    cs.add(0, 100, 100)
    cs.add(1, 100, 100, [0])
    cs.add(2, 100, 100, [1])
    cs.add(3, 5_000, 100, [0])
    assert cs.cluster_of(0) == [0, 3, 1, 2]
    assert cs.chunk_feerate(1) == FeeFrac(100, 100)  # equal-feerate chunks stay apart
    cs.set_fee(2, 10_000)  # prioritisetransaction on the grandchild: it now pulls 1 along
    assert cs.chunk_feerate(1) == FeeFrac(15_200, 400)
    assert cs.fee_and_size(2) == (10_000, 100)
    cs.remove_many([2, 3])
    assert cs.clusters() == [[0, 1]]
    assert cs.chunk_feerate(0) == FeeFrac(100, 100)
    cs.remove_many([0, 1])
    assert len(cs) == 0 and cs.clusters() == []
    assert list(cs.iter_chunks_best_first()) == []


def test_clusterset_add_errors() -> None:
    cs: ClusterSet[int] = ClusterSet()
    cs.add(0, 1, 1)
    with pytest.raises(ValueError, match="already in"):
        cs.add(0, 1, 1)
    with pytest.raises(ValueError, match="unknown parent"):
        cs.add(1, 1, 1, [7])
    with pytest.raises(ValueError, match="vsize must be positive"):
        cs.add(1, 1, 0)
    assert len(cs) == 1


def test_clusterset_replacement_diagrams() -> None:
    cs: ClusterSet[str] = ClusterSet()
    cs.add("a", 1_000, 100)
    cs.add("a_child", 500, 100, ["a"])
    cs.add("unrelated", 10, 100)
    old, new = cs.diagrams_for_replacement(["a", "a_child"], [("b", 2_000, 150, [])])
    assert old == [(0, 0), (100, 1_000), (200, 1_500)]
    assert new == [(0, 0), (150, 2_000)]
    assert compare_diagrams(new, old) is DiagramOrder.BETTER
    old, new = cs.diagrams_for_replacement(["a", "a_child"], [("b", 1_400, 200, [])])
    assert compare_diagrams(new, old) is DiagramOrder.WORSE
    # Replacing only the child with one paying more, spending the same parent.
    old, new = cs.diagrams_for_replacement(["a_child"], [("c", 900, 100, ["a"])])
    assert new == [(0, 0), (100, 1_000), (200, 1_900)]
    assert compare_diagrams(new, old) is DiagramOrder.BETTER
    assert cs.cluster_of("a") == ["a", "a_child"]  # nothing changed


_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "add", "remove", "fee"]),
        st.integers(0, 10_000),
        st.sampled_from([100, 200, 300, 57, 391]),
        st.integers(0, 2**16),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=120, deadline=None)
@given(_ops)
def test_clusterset_model(ops: list[tuple[str, int, int, int]]) -> None:
    """Against a plain model: clusters are the connected components, each linearised
    topologically, chunked consistently, and optimal (these clusters are small)."""
    cs: ClusterSet[int] = ClusterSet(max_count=12, max_vsize=3_000)
    model: dict[int, tuple[int, int, set[int]]] = {}
    next_key = 0
    for op, raw_fee, size, pick in ops:
        keys = sorted(model)
        # A third of the fees are whole sat/vB, so equal-feerate chunks are common.
        fee = size * (raw_fee % 7) if raw_fee % 3 == 0 else raw_fee
        if op == "add":
            rng = random.Random(pick)
            parents = {k for k in keys if rng.random() < 0.2}
            check = cs.check_add(size, parents)
            if check.ok:
                cs.add(next_key, fee, size, parents)
                model[next_key] = (fee, size, parents)
            else:
                with pytest.raises(ClusterLimitError):
                    cs.add(next_key, fee, size, parents)
            next_key += 1
        elif op == "remove" and keys:
            gone = keys[pick % len(keys)]
            cs.remove(gone)
            del model[gone]
            for _, _, pars in model.values():
                pars.discard(gone)
        elif op == "fee" and keys:
            key = keys[pick % len(keys)]
            cs.set_fee(key, fee)
            model[key] = (fee, model[key][1], model[key][2])
    assert len(cs) == len(model)
    # The model's connected components.
    components: list[set[int]] = []
    todo = set(model)
    while todo:
        comp = {todo.pop()}
        frontier = list(comp)
        while frontier:
            k = frontier.pop()
            linked = model[k][2] | {c for c, (_, _, pars) in model.items() if k in pars}
            for other in linked - comp:
                comp.add(other)
                frontier.append(other)
        todo -= comp
        components.append(comp)
    clusters = cs.clusters()
    assert sorted(sorted(c) for c in clusters) == sorted(sorted(c) for c in components)
    for keys in clusters:
        index = {k: i for i, k in enumerate(keys)}
        g = DepGraph([(model[k][0], model[k][1], [index[p] for p in model[k][2]]) for k in keys])
        identity = list(range(len(keys)))
        assert is_topological(g, identity)
        got = cs.cluster_chunks(keys[0])
        assert [rate for rate, _ in got] == [c.feerate for c in chunk(g, identity)]
        assert [k for _, ks in got for k in ks] == keys
        assert sum(model[k][1] for k in keys) <= 3_000 and len(keys) <= 12
        assert compare_orders(g, identity, linearize(g)) is DiagramOrder.EQUAL
        for k in keys:
            assert cs.chunk_feerate(k) in [rate for rate, ks in got if k in ks]
    # Block order: chunk feerates non-increasing overall; parents before children.
    seen: set[int] = set()
    last: FeeFrac | None = None
    for rate, ks in cs.iter_chunks_best_first():
        assert last is None or not rate.feerate_gt(last)
        last = rate
        for k in ks:
            assert model[k][2] <= seen | set(ks[: ks.index(k)])
            seen.add(k)
    assert seen == set(model)
    worst = list(cs.iter_chunks_worst_first())
    assert [ks for _, ks in worst] == [ks for _, ks in reversed(list(cs.iter_chunks_best_first()))]
    # The float-keyed fast path gives exactly the exact path's order.
    clusters = cs._unique_clusters()
    assert list(cs._iter_best_first_float(clusters)) == list(cs._iter_best_first_exact(clusters))


def test_block_order_fast_path_is_exact_on_near_ties_and_falls_back_on_huge_fees() -> None:
    """Feerates that differ by the least possible amount (1/(b*d)) keep their order in the
    float-keyed path; beyond its bound (a huge prioritised fee) the exact path is used."""
    cs: ClusterSet[str] = ClusterSet(max_count=64, max_vsize=101_000)
    # 1_000_001/100_000 and 999_989/99_999 lie within 1e-4 of 10/1 on either side.
    cs.add("a", 1_000_001, 100_000)
    cs.add("b", 999_989, 99_999)
    cs.add("c", 10, 1)
    cs.add("d", 20, 2)  # equal to c: the earlier cluster first
    clusters = cs._unique_clusters()
    assert _float_order_is_exact(clusters)
    fast = [ks for _, ks in cs._iter_best_first_float(clusters)]
    assert fast == [ks for _, ks in cs._iter_best_first_exact(clusters)]
    assert fast == [["a"], ["c"], ["d"], ["b"]]
    cs.add("e", 1 << 40, 100)
    assert not _float_order_is_exact(cs._unique_clusters())
    assert [ks for _, ks in cs.iter_chunks_best_first()] == [["e"], ["a"], ["c"], ["d"], ["b"]]


def test_permutations_do_not_change_the_optimal_diagram() -> None:
    base = [(600, 100, []), (100, 300, []), (500, 100, [1]), (200, 100, [0, 2]), (500, 100, [1])]
    reference = diagram(DepGraph(base), linearize(DepGraph(base)))
    checked = 0
    for perm in permutations(range(5)):
        where = {old: new for new, old in enumerate(perm)}
        spec: list[tuple[int, int, list[int]]] = [(0, 1, [])] * 5
        for old, (fee, size, parents) in enumerate(base):
            spec[where[old]] = (fee, size, [where[p] for p in parents])
        g = DepGraph(spec)
        assert compare_diagrams(diagram(g, linearize(g)), reference) is DiagramOrder.EQUAL
        checked += 1
    assert checked == 120
