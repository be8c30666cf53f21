"""Cluster linearisation speed and quality, against Core's old ancestor-set order in the same run.

Linearises random 64-transaction clusters (Core's cluster limit) of several shapes with the
default budget, and in the same run the same clusters with the plain ancestor-set-feerate order
(the floor: what the pre-cluster mempool did), reporting the median, 95th percentile and worst
time of each and their ratio. Quality: the share of clusters whose default-budget diagram equals
the one found with a 1,000x larger budget, and the share where it beats the ancestor-set order.
Pool figures: ``ClusterSet.add`` per transaction (independent transactions, 25-long chains,
64-transaction random trees) and a full best-first chunk walk of a pool of 50,000 transactions.

Each timing is the best of ``--repeat`` runs of the same cluster (the machine is shared).
Prints one JSON object. Usage: ``python bench/cluster.py [--clusters N] [--repeat R] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peercash.mempool.cluster import (
    DEFAULT_ITERATIONS,
    ClusterSet,
    DepGraph,
    DiagramOrder,
    ancestor_linearize,
    chunk,
    compare_diagrams,
    feerate_diagram,
    linearize_detailed,
)


def random_cluster(rng: random.Random, n: int) -> DepGraph:
    """A connected DAG: every transaction after the first spends one to three earlier ones
    (nearby ones more often), with fees of 0-50 sat/vB and sizes of 100-2,000 vB."""
    spec: list[tuple[int, int, list[int]]] = []
    shape = rng.choice(["wide", "deep", "mixed"])
    for i in range(n):
        size = rng.randint(100, 2_000)
        fee = rng.randint(0, 50) * size
        if i == 0:
            spec.append((fee, size, []))
            continue
        if shape == "deep":
            lo = max(0, i - 3)
        elif shape == "wide":
            lo = 0
        else:
            lo = max(0, i - 10)
        parents = sorted(set(rng.randint(lo, i - 1) for _ in range(rng.randint(1, 3))))
        spec.append((fee, size, parents))
    return DepGraph(spec)


def best_time(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def summary_ms(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered) * 1e3, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1e3, 3),
        "max_ms": round(ordered[-1] * 1e3, 3),
    }


def pool_add_us(build: Callable[[ClusterSet[int]], int]) -> float:
    cs: ClusterSet[int] = ClusterSet()
    start = time.perf_counter()
    count = build(cs)
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=60, help="random 64-tx clusters")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cluster, best kept")
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    args = parser.parse_args()
    clusters = 4 if args.quick else args.clusters
    pool_txs = 2_000 if args.quick else 50_000
    rng = random.Random(20260)

    graphs = [random_cluster(rng, 64) for _ in range(clusters)]
    ours: list[float] = []
    floor: list[float] = []
    optimal = same_as_big_budget = beats_greedy = 0
    for g in graphs:
        ours.append(best_time(lambda g=g: linearize_detailed(g), args.repeat))
        floor.append(best_time(lambda g=g: ancestor_linearize(g), args.repeat))
        result = linearize_detailed(g)
        optimal += result.optimal
        ours_diagram = feerate_diagram(chunk(g, result.order))
        big = linearize_detailed(g, max_iterations=DEFAULT_ITERATIONS * 1_000)
        if (
            compare_diagrams(ours_diagram, feerate_diagram(chunk(g, big.order)))
            is DiagramOrder.EQUAL
        ):
            same_as_big_budget += 1
        greedy = feerate_diagram(chunk(g, ancestor_linearize(g)))
        if compare_diagrams(ours_diagram, greedy) is DiagramOrder.BETTER:
            beats_greedy += 1

    def independent(cs: ClusterSet[int]) -> int:
        for i in range(pool_txs // 10):
            cs.add(i, 1_000 + i % 977, 150 + i % 71)
        return pool_txs // 10

    def chains(cs: ClusterSet[int]) -> int:
        total = (pool_txs // 10 // 25) * 25
        for i in range(total):
            cs.add(i, 1_000 + (i * 7919) % 5_000, 150 + i % 71, [i - 1] if i % 25 else [])
        return total

    def trees(cs: ClusterSet[int]) -> int:
        tree_rng = random.Random(7)
        total = max(64, (pool_txs // 50 // 64) * 64)
        for i in range(total):
            base = i - i % 64
            parents = (
                sorted(set(tree_rng.randint(base, i - 1) for _ in range(tree_rng.randint(1, 2))))
                if i % 64
                else []
            )
            cs.add(i, tree_rng.randint(0, 40) * 200, 200, parents)
        return total

    big_pool: ClusterSet[int] = ClusterSet()
    for i in range(pool_txs):
        big_pool.add(i, 1_000 + (i * 7919) % 20_000, 150 + i % 200, [i - 1] if i % 5 else [])
    start = time.perf_counter()
    walked = sum(len(keys) for _, keys in big_pool.iter_chunks_best_first())
    walk_s = time.perf_counter() - start
    assert walked == pool_txs

    ours_ms = summary_ms(ours)
    floor_ms = summary_ms(floor)
    print(
        json.dumps(
            {
                "clusters": clusters,
                "cluster_txs": 64,
                "iterations_budget": DEFAULT_ITERATIONS,
                "linearize_64": ours_ms,
                "floor_ancestor_sets_64": floor_ms,
                "ratio_median_vs_floor": round(ours_ms["median_ms"] / floor_ms["median_ms"], 2),
                "proven_optimal_share": round(optimal / clusters, 3),
                "equal_to_1000x_budget_share": round(same_as_big_budget / clusters, 3),
                "better_than_ancestor_sets_share": round(beats_greedy / clusters, 3),
                "pool_add_us": {
                    "independent": round(pool_add_us(independent), 1),
                    "chains_25": round(pool_add_us(chains), 1),
                    "trees_64": round(pool_add_us(trees), 1),
                },
                "pool_walk_best_first_s": round(walk_s, 4),
                "pool_walk_txs": pool_txs,
                "goal_linearize_64_max_ms": 10,
            }
        )
    )


if __name__ == "__main__":
    main()
