"""Cluster linearisation: the order in which a group of dependent transactions is best mined.

Layer 2 (mempool), pure: no I/O, no clock, no randomness, no imports beyond the standard library.
The pool keeps a :class:`ClusterSet` of its transactions; block building, eviction and
replacement (RBF) read chunk feerates from it. Everything here is deterministic: the same inputs
(including the same iteration budgets) give the same linearisations on every run and machine.

Error contract: malformed graphs (an unknown parent, a cycle, a non-positive size) raise
``ValueError``; adding a transaction that breaks the cluster limits raises
:class:`ClusterLimitError` (check first with :meth:`ClusterSet.check_add`). Nothing else raises.
Concurrency contract: none of this is thread-safe; the pool owns its :class:`ClusterSet` and
calls it from one thread.

The model is Bitcoin Core's cluster mempool (Core 31: ``txgraph``, ``cluster_linearize``; sipa's
Delving Bitcoin notes "How to linearize your cluster" and "Merging incomparable
linearizations"). A *cluster* is a connected set of transactions under the spends-from relation.
A *linearisation* is a topological order of it; cutting it greedily into *chunks* of
non-increasing feerate gives its *feerate diagram* (cumulative fee against cumulative size). A
linearisation is *optimal* when no other has a diagram that is higher anywhere.

How we linearise (our own formulation of the published ideas):

* Repeatedly take the highest-feerate topologically closed subset of what is left; doing so
  gives an optimal diagram. That subset is found by a branch-and-bound search over "include
  tx (and its ancestors)" / "exclude tx (and its descendants)" decisions, bounded by the best
  feerate reachable when topology is ignored (add remaining transactions by individual feerate
  while they raise it). The search starts from the best ancestor set, so with a small budget it
  degrades to Core's old ancestor-set-feerate order and every extra iteration can only help.
* Clusters of up to :data:`EXACT_SEARCH_MAX_TXS` transactions get a budget large enough to
  finish (the result is optimal and says so); larger ones get :data:`DEFAULT_ITERATIONS`.
* The result is merged with any previous linearisation of the cluster (so re-linearising never
  makes it worse) and tidied by :func:`post_linearize` (which makes every chunk connected).
"""

from __future__ import annotations

import enum
import heapq
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = [
    "DEFAULT_CLUSTER_COUNT_LIMIT",
    "DEFAULT_CLUSTER_SIZE_LIMIT_VB",
    "DEFAULT_ITERATIONS",
    "EXACT_SEARCH_ITERATIONS",
    "EXACT_SEARCH_MAX_TXS",
    "Chunk",
    "ClusterLimitError",
    "ClusterSet",
    "DepGraph",
    "DiagramOrder",
    "FeeFrac",
    "LimitCheck",
    "Linearization",
    "ancestor_linearize",
    "chunk",
    "chunk_feerates",
    "compare_diagrams",
    "feerate_diagram",
    "is_topological",
    "linearize",
    "linearize_detailed",
    "merge_linearizations",
    "post_linearize",
]

DEFAULT_CLUSTER_COUNT_LIMIT = 64
"""Policy: most transactions in one cluster (Core's ``-limitclustercount``, default 64)."""
DEFAULT_CLUSTER_SIZE_LIMIT_VB = 101_000
"""Policy: most virtual bytes in one cluster (Core's ``-limitclustersize``, 101 kvB)."""
EXACT_SEARCH_MAX_TXS = 18
"""Clusters up to this size are searched to the end (optimal result)."""
EXACT_SEARCH_ITERATIONS = 1 << 20
"""The budget small clusters get: far more than any 18-transaction search has needed."""
DEFAULT_ITERATIONS = 160
"""Search steps granted to a larger cluster: keeps a 64-transaction cluster in a few ms."""


class FeeFrac:
    """A fee and a size, compared as the feerate fee/size exactly (by cross-multiplication).

    The total order is Core's: a higher feerate is greater; at equal feerate the smaller size is
    greater (so sorting best-first puts small chunks of a tied feerate first). ``FeeFrac(0, 0)``
    is the empty set: it compares greater than everything and is the identity of ``+``. Use
    :meth:`feerate_gt` / :meth:`feerate_lt` when only the feerate matters.
    """

    __slots__ = ("fee", "size")

    def __init__(self, fee: int = 0, size: int = 0) -> None:
        self.fee = fee
        self.size = size

    def __repr__(self) -> str:
        return f"FeeFrac({self.fee}, {self.size})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeeFrac):
            return NotImplemented
        return self.fee == other.fee and self.size == other.size

    def __hash__(self) -> int:
        return hash((self.fee, self.size))

    def _cmp(self, other: FeeFrac) -> int:
        left, right = self.fee * other.size, other.fee * self.size
        if left != right:
            return 1 if left > right else -1
        if self.size != other.size:
            return 1 if self.size < other.size else -1
        return 0

    def __lt__(self, other: FeeFrac) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: FeeFrac) -> bool:
        return self._cmp(other) <= 0

    def __gt__(self, other: FeeFrac) -> bool:
        return self._cmp(other) > 0

    def __ge__(self, other: FeeFrac) -> bool:
        return self._cmp(other) >= 0

    def __add__(self, other: FeeFrac) -> FeeFrac:
        return FeeFrac(self.fee + other.fee, self.size + other.size)

    def __sub__(self, other: FeeFrac) -> FeeFrac:
        return FeeFrac(self.fee - other.fee, self.size - other.size)

    def __bool__(self) -> bool:
        return self.fee != 0 or self.size != 0

    def feerate_gt(self, other: FeeFrac) -> bool:
        """Strictly higher feerate, sizes ignored (Core's ``>>``)."""
        return self.fee * other.size > other.fee * self.size

    def feerate_lt(self, other: FeeFrac) -> bool:
        """Strictly lower feerate, sizes ignored (Core's ``<<``)."""
        return self.fee * other.size < other.fee * self.size

    def feerate_cmp(self, other: FeeFrac) -> int:
        """-1, 0 or 1 by feerate alone."""
        left, right = self.fee * other.size, other.fee * self.size
        return (left > right) - (left < right)


class Chunk(NamedTuple):
    """Consecutive transactions of a linearisation mined together, and their summed fee/size."""

    indices: tuple[int, ...]
    feerate: FeeFrac


class DiagramOrder(enum.Enum):
    """How one feerate diagram compares with another (a partial order)."""

    BETTER = "better"
    WORSE = "worse"
    EQUAL = "equal"
    INCOMPARABLE = "incomparable"


def _bits(mask: int) -> list[int]:
    """The indices of the set bits of ``mask``, lowest first."""
    if mask.bit_count() > 6:  # dense: reading the binary text is faster than peeling bits
        return [i for i, c in enumerate(bin(mask)[:1:-1]) if c == "1"]
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class DepGraph:
    """A cluster (or any set) of transactions as a DAG over indices ``0..n-1``, with bitsets.

    ``parents[i]``/``children[i]`` are int bitmasks of the direct dependencies;
    ``ancestors[i]``/``descendants[i]`` include ``i`` itself. Built once per (re)linearisation;
    immutable afterwards.
    """

    __slots__ = ("ancestors", "children", "descendants", "fees", "n", "parents", "sizes")

    def __init__(self, txs: Sequence[tuple[int, int, Iterable[int]]]) -> None:
        """``txs[i] = (fee, size, parent indices)``; raises ``ValueError`` on a bad graph."""
        n = len(txs)
        self.n = n
        self.fees = [int(fee) for fee, _, _ in txs]
        self.sizes = [int(size) for _, size, _ in txs]
        parents = [0] * n
        children = [0] * n
        for i, (_, size, pars) in enumerate(txs):
            if size <= 0:
                raise ValueError(f"transaction {i} has size {size}")
            for p in pars:
                if not 0 <= p < n or p == i:
                    raise ValueError(f"transaction {i} has bad parent {p}")
                parents[i] |= 1 << p
                children[p] |= 1 << i
        self.parents = parents
        self.children = children
        ancestors = [0] * n
        topo: list[int] = []  # parents before children
        state = [0] * n  # 0: not seen, 1: on the walk, 2: ancestors known
        for root in range(n):
            if state[root]:
                continue
            state[root] = 1
            walk = [(root, iter(_bits(parents[root])))]
            while walk:
                node, todo = walk[-1]
                for p in todo:
                    if state[p] == 1:
                        raise ValueError("dependency cycle")
                    if state[p] == 0:
                        state[p] = 1
                        walk.append((p, iter(_bits(parents[p]))))
                        break
                else:
                    walk.pop()
                    mask = 1 << node
                    for p in _bits(parents[node]):
                        mask |= ancestors[p]
                    ancestors[node] = mask
                    state[node] = 2
                    topo.append(node)
        self.ancestors = ancestors
        descendants = [0] * n
        for i in reversed(topo):
            mask = 1 << i
            for c in _bits(children[i]):
                mask |= descendants[c]
            descendants[i] = mask
        self.descendants = descendants

    @property
    def all_mask(self) -> int:
        return (1 << self.n) - 1

    def feerate_of(self, mask: int) -> FeeFrac:
        fee = size = 0
        for i in _bits(mask):
            fee += self.fees[i]
            size += self.sizes[i]
        return FeeFrac(fee, size)

    def is_connected(self, mask: int | None = None) -> bool:
        """Whether the transactions of ``mask`` (default: all) form one connected component."""
        mask = self.all_mask if mask is None else mask
        if not mask:
            return True
        low = mask & -mask
        seen, frontier = low, low
        while frontier:
            reach = 0
            for i in _bits(frontier):
                reach |= self.parents[i] | self.children[i]
            frontier = reach & mask & ~seen
            seen |= frontier
        return seen == mask


def is_topological(graph: DepGraph, order: Sequence[int]) -> bool:
    """Whether ``order`` lists every transaction once, each after all its parents."""
    if len(order) != graph.n or set(order) != set(range(graph.n)):
        return False
    seen = 0
    for i in order:
        if graph.parents[i] & ~seen:
            return False
        seen |= 1 << i
    return True


def chunk_feerates(feerates: Iterable[FeeFrac]) -> list[tuple[int, FeeFrac]]:
    """Chunk a sequence of feerates: ``(count, summed FeeFrac)`` per chunk, feerates
    non-increasing. A later group joins the one before it while its feerate is strictly higher
    (Core's ``ChunkLinearization``: equal-feerate chunks stay apart)."""
    stack: list[tuple[int, int, int]] = []  # (count, fee, size)
    for fr in feerates:
        count, fee, size = 1, fr.fee, fr.size
        while stack and fee * stack[-1][2] > stack[-1][1] * size:
            c, f, s = stack.pop()
            count, fee, size = count + c, fee + f, size + s
        stack.append((count, fee, size))
    return [(c, FeeFrac(f, s)) for c, f, s in stack]


def chunk(graph: DepGraph, linearization: Sequence[int]) -> list[Chunk]:
    """Cut a linearisation into chunks of non-increasing feerate."""
    fees, sizes = graph.fees, graph.sizes
    out: list[Chunk] = []
    start = 0
    for count, rate in chunk_feerates(FeeFrac(fees[i], sizes[i]) for i in linearization):
        out.append(Chunk(tuple(linearization[start : start + count]), rate))
        start += count
    return out


def feerate_diagram(chunks: Iterable[Chunk | FeeFrac]) -> list[tuple[int, int]]:
    """The cumulative ``(size, fee)`` points of a chunking, starting at ``(0, 0)``."""
    points = [(0, 0)]
    size = fee = 0
    for c in chunks:
        rate = c.feerate if isinstance(c, Chunk) else c
        if rate.size <= 0:
            raise ValueError("a chunk must have a positive size")
        size += rate.size
        fee += rate.fee
        points.append((size, fee))
    return points


def _side(point: tuple[int, int], diagram: Sequence[tuple[int, int]], xs: Sequence[int]) -> int:
    """+1 if ``point`` lies above the diagram's curve, -1 below, 0 on it. The curve is linear
    between its points and flat after the last one."""
    x, y = point
    k = bisect_right(xs, x) - 1
    if k >= len(diagram) - 1:
        y_curve = diagram[-1][1]
        return (y > y_curve) - (y < y_curve)
    (x0, y0), (x1, y1) = diagram[k], diagram[k + 1]
    left = y * (x1 - x0)
    right = y0 * (x1 - x0) + (y1 - y0) * (x - x0)
    return (left > right) - (left < right)


def compare_diagrams(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> DiagramOrder:
    """Compare two feerate diagrams: BETTER when ``a`` is nowhere below ``b`` and above it
    somewhere, WORSE the reverse, EQUAL, or INCOMPARABLE when each is above the other somewhere.
    RBF's rule is that the replacement's diagram must be BETTER."""
    xs_a = [x for x, _ in a]
    xs_b = [x for x, _ in b]
    a_above = b_above = False
    for p in a[1:]:
        s = _side(p, b, xs_b)
        a_above |= s > 0
        b_above |= s < 0
    for p in b[1:]:
        s = _side(p, a, xs_a)
        b_above |= s > 0
        a_above |= s < 0
    if a_above and b_above:
        return DiagramOrder.INCOMPARABLE
    if a_above:
        return DiagramOrder.BETTER
    if b_above:
        return DiagramOrder.WORSE
    return DiagramOrder.EQUAL


@dataclass(frozen=True, slots=True)
class Linearization:
    """A linearisation, whether it is proven optimal, and the search steps it took."""

    order: list[int]
    optimal: bool
    iterations: int


class _AncestorSets:
    """Fee and size of every remaining transaction's ancestor set within what remains, kept up to
    date as sets are taken out (each removal touches only the descendants of what left)."""

    __slots__ = ("fee", "graph", "remaining", "size")

    def __init__(self, graph: DepGraph, remaining: int) -> None:
        self.graph = graph
        self.remaining = remaining
        self.fee = [0] * graph.n
        self.size = [0] * graph.n
        fees, sizes = graph.fees, graph.sizes
        for i in _bits(remaining):
            f = s = 0
            for a in _bits(graph.ancestors[i] & remaining):
                f += fees[a]
                s += sizes[a]
            self.fee[i], self.size[i] = f, s

    def best(self) -> tuple[int, int, int]:
        """(mask, fee, size) of the best ancestor set (Core's order; ties to the lowest index)."""
        best_i, best_f, best_s = -1, 0, 0
        for i in _bits(self.remaining):
            f, s = self.fee[i], self.size[i]
            if best_i < 0:
                best_i, best_f, best_s = i, f, s
                continue
            left, right = f * best_s, best_f * s
            if left > right or (left == right and s < best_s):
                best_i, best_f, best_s = i, f, s
        return self.graph.ancestors[best_i] & self.remaining, best_f, best_s

    def take(self, mask: int) -> None:
        graph, fees, sizes = self.graph, self.graph.fees, self.graph.sizes
        self.remaining &= ~mask
        for r in _bits(mask):
            for d in _bits(graph.descendants[r] & self.remaining):
                self.fee[d] -= fees[r]
                self.size[d] -= sizes[r]


def _search_best_set(
    graph: DepGraph,
    remaining: int,
    start: tuple[int, int, int],
    by_rate: Sequence[int],
    budget: int,
) -> tuple[int, int, int, int, bool]:
    """The highest-feerate topologically closed subset of ``remaining`` that the budget finds,
    starting from ``start`` = (mask, fee, size). Returns (mask, fee, size, steps, finished);
    when ``finished`` the set is the best there is."""
    fees, sizes, anc, desc = graph.fees, graph.sizes, graph.ancestors, graph.descendants
    best_m, best_f, best_s = start
    stack: list[tuple[int, int, int, int]] = [(0, 0, 0, remaining)]
    steps = 0
    while stack:
        if steps >= budget:
            return best_m, best_f, best_s, steps, False
        steps += 1
        inc, f, s, und = stack.pop()
        # Bound: the best feerate any superset of inc within inc|und could reach, topology
        # ignored: add undecided transactions by decreasing feerate while they raise it.
        pf, ps, pot, first = f, s, 0, -1
        for t in by_rate:
            if und >> t & 1:
                if ps == 0 or fees[t] * ps > pf * sizes[t]:
                    pf += fees[t]
                    ps += sizes[t]
                    pot |= 1 << t
                    if first < 0:
                        first = t
                else:
                    break
        if first < 0 or pf * best_s <= best_f * ps:
            continue  # nothing here can beat the best so far
        closure = inc | pot
        need = 0
        for t in _bits(pot):
            need |= anc[t]
        if need & remaining & ~closure == 0:
            best_m, best_f, best_s = closure, pf, ps  # the bound is reachable: best of branch
            continue
        # Branch on the best undecided transaction: exclude it (and its descendants) ...
        und_out = und & ~desc[first]
        if und_out:
            stack.append((inc, f, s, und_out))
        # ... or include it (and its ancestors); explored first.
        added = anc[first] & remaining & ~inc
        nf, ns = f, s
        for t in _bits(added):
            nf += fees[t]
            ns += sizes[t]
        new_inc = inc | added
        if nf * best_s > best_f * ns:
            best_m, best_f, best_s = new_inc, nf, ns
        und_in = und & ~new_inc
        if und_in:
            stack.append((new_inc, nf, ns, und_in))
    return best_m, best_f, best_s, steps, True


def _topo_within(graph: DepGraph, mask: int) -> list[int]:
    """The members of ``mask`` in a topological order (fewest ancestors first, then index)."""
    anc = graph.ancestors
    return sorted(_bits(mask), key=lambda i: ((anc[i] & mask).bit_count(), i))


def ancestor_linearize(graph: DepGraph) -> list[int]:
    """Core's pre-cluster order: repeatedly the remaining transaction with the best ancestor-set
    feerate, with its remaining ancestors."""
    sets = _AncestorSets(graph, graph.all_mask)
    order: list[int] = []
    while sets.remaining:
        mask, _, _ = sets.best()
        order.extend(_topo_within(graph, mask))
        sets.take(mask)
    return order


def _search_linearize(graph: DepGraph, budget: int) -> Linearization:
    fees, sizes = graph.fees, graph.sizes
    # Decreasing individual feerate, ties to the smaller size, then the lower index.
    by_rate = sorted(
        range(graph.n),
        key=lambda i: (_RateKey(fees[i], sizes[i]), i),
    )
    sets = _AncestorSets(graph, graph.all_mask)
    order: list[int] = []
    optimal = True
    used = 0
    while sets.remaining:
        start = sets.best()
        if used < budget:
            mask, _, _, steps, finished = _search_best_set(
                graph, sets.remaining, start, by_rate, budget - used
            )
            used += steps
            optimal &= finished
        else:
            mask = start[0]
            optimal = False
        order.extend(_topo_within(graph, mask))
        sets.take(mask)
    return Linearization(order, optimal, used)


class _RateKey:
    """Sort key: best FeeFrac first (higher feerate, then smaller size)."""

    __slots__ = ("fee", "size")

    def __init__(self, fee: int, size: int) -> None:
        self.fee = fee
        self.size = size

    def __lt__(self, other: _RateKey) -> bool:
        left, right = self.fee * other.size, other.fee * self.size
        if left != right:
            return left > right
        return self.size < other.size

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _RateKey)
            and self.fee * other.size == other.fee * self.size
            and self.size == other.size
        )

    __hash__ = None  # type: ignore[assignment]


def _best_prefix(
    graph: DepGraph, lin: Sequence[int], remaining: int, within: int
) -> tuple[int, int, int, int]:
    """The highest-feerate prefix of ``lin`` restricted to ``remaining & within``: (mask, fee,
    size, its length in restricted elements). The shortest wins a tie."""
    fees, sizes = graph.fees, graph.sizes
    allowed = remaining & within
    m = f = s = 0
    best = (0, 0, 0, 0)
    count = 0
    for i in lin:
        if allowed >> i & 1:
            m |= 1 << i
            f += fees[i]
            s += sizes[i]
            count += 1
            if best[2] == 0 or f * best[2] > best[1] * s:
                best = (m, f, s, count)
    return best


def merge_linearizations(graph: DepGraph, lin1: Sequence[int], lin2: Sequence[int]) -> list[int]:
    """A linearisation whose diagram is at least as good as both inputs' (sipa's merge: take
    the better first chunk of the two, then the best prefix of the other restricted to it)."""
    remaining = graph.all_mask
    out: list[int] = []
    everything = graph.all_mask
    while remaining:
        m1, f1, s1, _ = _best_prefix(graph, lin1, remaining, everything)
        m2, f2, s2, _ = _best_prefix(graph, lin2, remaining, everything)
        if f2 * s1 > f1 * s2:
            chosen, mine, other = (m2, f2, s2), lin2, lin1
        else:
            chosen, mine, other = (m1, f1, s1), lin1, lin2
        m3, f3, s3, _ = _best_prefix(graph, other, remaining, chosen[0])
        if s3 and f3 * chosen[2] > chosen[1] * s3:
            chosen, mine = (m3, f3, s3), other
        mask = chosen[0]
        out.extend(i for i in mine if mask >> i & 1)
        remaining &= ~mask
    return out


def _post_pass(
    order: Sequence[int],
    fees: Sequence[int],
    sizes: Sequence[int],
    deps: Sequence[int],
    better: Callable[[int, int, int, int], bool],
) -> list[int]:
    """One insertion pass: each new group moves ahead of groups it does not depend on while it
    is ``better``, and joins the one it depends on."""
    groups: list[list[int]] = []  # the transactions of each group, with parallel lists:
    g_mask: list[int] = []
    g_fee: list[int] = []
    g_size: list[int] = []
    g_deps: list[int] = []
    for t in order:
        mask, fee, size, dep, txs = 1 << t, fees[t], sizes[t], deps[t], [t]
        pos = len(groups)
        while pos > 0 and better(fee, size, g_fee[pos - 1], g_size[pos - 1]):
            prev = pos - 1
            if dep & g_mask[prev]:
                # Depends on it: merge (the earlier group's transactions first).
                txs = groups[prev] + txs
                mask |= g_mask[prev]
                fee += g_fee[prev]
                size += g_size[prev]
                dep = (dep | g_deps[prev]) & ~mask
                del groups[prev], g_mask[prev], g_fee[prev], g_size[prev], g_deps[prev]
            pos = prev
        groups.insert(pos, txs)
        g_mask.insert(pos, mask)
        g_fee.insert(pos, fee)
        g_size.insert(pos, size)
        g_deps.insert(pos, dep & ~mask)
    return [t for txs in groups for t in txs]


def post_linearize(graph: DepGraph, linearization: Sequence[int]) -> list[int]:
    """Tidy a linearisation without making its diagram worse: a forward pass lets better groups
    move ahead of groups they do not depend on, a backward pass lets worse groups sink below
    groups that do not depend on them. Afterwards related transactions sit together, which
    makes chunks connected (our formulation of Core's ``PostLinearize``)."""
    fees, sizes = graph.fees, graph.sizes
    forward = _post_pass(
        linearization, fees, sizes, graph.parents, lambda f, s, pf, ps: f * ps > pf * s
    )
    backward = _post_pass(
        list(reversed(forward)), fees, sizes, graph.children, lambda f, s, pf, ps: f * ps < pf * s
    )
    backward.reverse()
    return backward


def linearize_detailed(
    graph: DepGraph,
    *,
    max_iterations: int | None = None,
    old: Sequence[int] | None = None,
) -> Linearization:
    """Linearise ``graph``: optimal when the search finishes within ``max_iterations`` (default:
    :data:`EXACT_SEARCH_ITERATIONS` up to :data:`EXACT_SEARCH_MAX_TXS` transactions,
    :data:`DEFAULT_ITERATIONS` above), never worse than the ancestor-set order nor than ``old``
    (a previous topological linearisation of the same graph)."""
    if graph.n == 0:
        return Linearization([], True, 0)
    if max_iterations is None:
        max_iterations = (
            EXACT_SEARCH_ITERATIONS if graph.n <= EXACT_SEARCH_MAX_TXS else DEFAULT_ITERATIONS
        )
    result = _search_linearize(graph, max_iterations)
    order = result.order
    if not result.optimal:
        # Each step began at the best ancestor set, but that alone does not order the whole
        # diagram above the ancestor-set linearisation: the merge does.
        order = merge_linearizations(graph, order, ancestor_linearize(graph))
    if old is not None:
        if not is_topological(graph, old):
            raise ValueError("old linearisation is not a topological order of the graph")
        order = merge_linearizations(graph, order, old)
    order = post_linearize(graph, order)
    return Linearization(order, result.optimal, result.iterations)


def linearize(graph: DepGraph, *, max_iterations: int | None = None) -> list[int]:
    """A topological order of ``graph`` with an optimal (small clusters) or near-optimal feerate
    diagram. Deterministic."""
    return linearize_detailed(graph, max_iterations=max_iterations).order


# --------------------------------------------------------------------------------------------
# The pool's view: many clusters, kept linearised as transactions come and go.

K = TypeVar("K", bound=Hashable)


class ClusterLimitError(ValueError):
    """Adding the transaction would make a cluster too large (count or virtual size)."""


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """The cluster a transaction would join: within limits or not, its size and count."""

    ok: bool
    count: int
    vsize: int


class _Cluster(Generic[K]):
    __slots__ = ("chunk_ends", "chunk_rates", "fee", "keys", "optimal", "seq", "size")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.keys: list[K] = []  # in linearisation order
        self.chunk_rates: list[FeeFrac] = []
        self.chunk_ends: list[int] = []  # exclusive end index in keys of each chunk
        self.fee = 0
        self.size = 0
        self.optimal = True

    def chunks(self) -> Iterator[tuple[FeeFrac, list[K]]]:
        start = 0
        for rate, end in zip(self.chunk_rates, self.chunk_ends):
            yield rate, self.keys[start:end]
            start = end


class _Entry(Generic[K]):
    __slots__ = ("children", "cluster", "fee", "parents", "size")

    def __init__(self, fee: int, size: int, parents: set[K], cluster: _Cluster[K]) -> None:
        self.fee = fee
        self.size = size
        self.parents = parents
        self.children: set[K] = set()
        self.cluster = cluster


class _ChunkKey:
    """Order of chunks across clusters: higher feerate first, then the cluster that changed
    earlier, then the chunk's place in its cluster. Sizes do not break ties (unlike
    :class:`FeeFrac`'s order): within a cluster equal-feerate chunks must keep their
    linearisation order, or a child's chunk could come before its parent's."""

    __slots__ = ("fee", "pos", "seq", "size")

    def __init__(self, rate: FeeFrac, seq: int, pos: int) -> None:
        self.fee, self.size, self.seq, self.pos = rate.fee, rate.size, seq, pos

    def __lt__(self, other: _ChunkKey) -> bool:
        left, right = self.fee * other.size, other.fee * self.size
        if left != right:
            return left > right
        if self.seq != other.seq:
            return self.seq < other.seq
        return self.pos < other.pos


_FLOAT_EXACT_LIMIT = 1 << 51


def _float_order_is_exact(clusters: Sequence[_Cluster[Any]]) -> bool:
    """Whether ordering these chunks by ``fee / size`` as floats gives the exact order.

    Two different feerates a/b and c/d with sizes at most S differ by at least 1/S²; a float
    quotient is correctly rounded, so it is off by at most |a/b|·2⁻⁵³. While every |feerate| is
    below 2⁵¹/S² the two errors together stay under half that gap: unequal feerates keep their
    order and equal ones give the same float (then seq and pos decide, as in _ChunkKey)."""
    rates = [r for cluster in clusters for r in cluster.chunk_rates]
    if any(r.size <= 0 for r in rates):
        return False
    square = max((r.size for r in rates), default=0) ** 2
    return all(abs(r.fee) * square < _FLOAT_EXACT_LIMIT * r.size for r in rates)


class _WorstKey:
    """Order of chunks for eviction: lowest feerate first; at equal feerate the cluster that
    changed later, then the later chunk (the reverse of :class:`_ChunkKey`)."""

    __slots__ = ("fee", "pos", "seq", "size")

    def __init__(self, rate: FeeFrac, seq: int, pos: int) -> None:
        self.fee, self.size, self.seq, self.pos = rate.fee, rate.size, seq, pos

    def __lt__(self, other: _WorstKey) -> bool:
        left, right = self.fee * other.size, other.fee * self.size
        if left != right:
            return left < right
        if self.seq != other.seq:
            return self.seq > other.seq
        return self.pos > other.pos


class ClusterSet(Generic[K]):
    """The pool's transactions grouped into clusters, each kept linearised and chunked.

    Keys are the pool's own (a txid, an entry id). ``parents`` of a transaction are the keys of
    the in-pool transactions it spends. A transaction must be added after its parents, and a
    transaction is removed with its descendants or after them (the pool decides which; removing
    one whose children stay leaves them in place, parents missing, as after a block connects
    the parent).
    """

    def __init__(
        self,
        *,
        max_count: int = DEFAULT_CLUSTER_COUNT_LIMIT,
        max_vsize: int = DEFAULT_CLUSTER_SIZE_LIMIT_VB,
        max_iterations: int | None = None,
    ) -> None:
        self.max_count = max_count
        self.max_vsize = max_vsize
        self.max_iterations = max_iterations
        self._entries: dict[K, _Entry[K]] = {}
        self._next_seq = 0

    # -- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def clusters(self) -> list[list[K]]:
        """Every cluster's keys in linearisation order, oldest cluster first."""
        seen: dict[int, _Cluster[K]] = {}
        for entry in self._entries.values():
            seen.setdefault(entry.cluster.seq, entry.cluster)
        return [list(seen[s].keys) for s in sorted(seen)]

    def cluster_of(self, key: K) -> list[K]:
        """The keys of ``key``'s cluster in linearisation order."""
        return list(self._entries[key].cluster.keys)

    def cluster_chunks(self, key: K) -> list[tuple[FeeFrac, list[K]]]:
        """The chunks of ``key``'s cluster, best first."""
        return list(self._entries[key].cluster.chunks())

    def chunk_feerate(self, key: K) -> FeeFrac:
        """The fee and size of the chunk ``key`` is in: its mining score."""
        cluster = self._entries[key].cluster
        pos = cluster.keys.index(key)
        return cluster.chunk_rates[bisect_right(cluster.chunk_ends, pos)]

    def is_optimal(self, key: K | None = None) -> bool:
        """Whether ``key``'s cluster (default: every cluster) is proven optimally linearised."""
        if key is not None:
            return self._entries[key].cluster.optimal
        return all(e.cluster.optimal for e in self._entries.values())

    def fee_and_size(self, key: K) -> tuple[int, int]:
        entry = self._entries[key]
        return entry.fee, entry.size

    def parents(self, key: K) -> set[K]:
        return set(self._entries[key].parents)

    def children(self, key: K) -> set[K]:
        return set(self._entries[key].children)

    def ancestors(self, key: K) -> set[K]:
        """In-pool ancestors of ``key``, without ``key``."""
        return self._walk(key, lambda e: e.parents)

    def descendants(self, key: K) -> set[K]:
        """In-pool descendants of ``key``, without ``key``."""
        return self._walk(key, lambda e: e.children)

    def _walk(self, key: K, step: Callable[[_Entry[K]], set[K]]) -> set[K]:
        out: set[K] = set()
        todo = list(step(self._entries[key]))
        while todo:
            k = todo.pop()
            if k not in out:
                out.add(k)
                todo.extend(step(self._entries[k]))
        return out

    def check_add(self, vsize: int, parents: Iterable[K]) -> LimitCheck:
        """Whether a new transaction of ``vsize`` spending ``parents`` keeps its cluster within
        the limits, and the count and size that cluster would have."""
        clusters = {id(c): c for c in (self._entries[p].cluster for p in set(parents))}
        count = 1 + sum(len(c.keys) for c in clusters.values())
        size = vsize + sum(c.size for c in clusters.values())
        return LimitCheck(count <= self.max_count and size <= self.max_vsize, count, size)

    def count_distinct_clusters(self, keys: Iterable[K]) -> int:
        """How many different clusters ``keys`` (all present) belong to (Core's
        ``CountDistinctClusters``, what RBF's rule 5 counts)."""
        return len({self._entries[k].cluster.seq for k in keys})

    def check_change(
        self, remove: Iterable[K], add: Sequence[tuple[K, int, Iterable[K]]]
    ) -> LimitCheck:
        """Whether removing ``remove`` and then adding ``add`` = ``(key, size, parents)`` (in
        topological order; parents in the set or earlier in ``add``) keeps every cluster within
        the limits. Only the clusters touched are examined (those of the removed keys and of
        the parents), so a replacement pays for what it touches. ``count``/``vsize`` are those
        of the largest cluster that would form. Nothing is changed."""
        gone = set(remove)
        touched: dict[int, _Cluster[K]] = {}
        for k in gone:
            cluster = self._entries[k].cluster
            touched[cluster.seq] = cluster
        for _, _, pars in add:
            for p in pars:
                entry = self._entries.get(p)
                if entry is not None:
                    touched[entry.cluster.seq] = entry.cluster
        up: dict[K, K] = {}
        weight: dict[K, tuple[int, int]] = {}

        def find(node: K) -> K:
            while up[node] != node:
                up[node] = up[up[node]]
                node = up[node]
            return node

        def union(a: K, b: K) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                up[rb] = ra
                (ca, sa), (cb, sb) = weight[ra], weight[rb]
                weight[ra] = (ca + cb, sa + sb)

        for cluster in touched.values():
            for k in cluster.keys:
                if k not in gone:
                    up[k], weight[k] = k, (1, self._entries[k].size)
        for k in list(up):
            for p in self._entries[k].parents:
                if p in up:
                    union(p, k)
        for key, size, pars in add:
            if key in up or key in self._entries:
                raise ValueError(f"{key!r} is already in the cluster set")
            up[key], weight[key] = key, (1, size)
            for p in pars:
                if p not in up:
                    if p in self._entries and p not in gone:
                        raise ValueError(f"parent {p!r} is outside the touched clusters")
                    if p in gone:
                        continue  # a parent being removed adds no dependency
                    raise ValueError(f"unknown parent {p!r}")
                union(p, key)
        roots = [weight[n] for n in up if find(n) == n]
        ok = all(c <= self.max_count and s <= self.max_vsize for c, s in roots)
        count, size = max(roots, default=(0, 0))
        return LimitCheck(ok, count, size)

    def check_add_package(self, txs: Sequence[tuple[K, int, Iterable[K]]]) -> LimitCheck:
        """Like :meth:`check_add` for several new transactions ``(key, vsize, parents)``, whose
        parents may be in the pool or earlier in the list; ``ok`` only if every cluster that
        would form is within the limits, ``count``/``vsize`` those of the largest."""
        # Union-find over new keys and existing clusters (by sequence number).
        up: dict[object, object] = {}
        weight: dict[object, tuple[int, int]] = {}

        def find(node: object) -> object:
            while up[node] != node:
                up[node] = up[up[node]]
                node = up[node]
            return node

        def union(a: object, b: object) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                up[rb] = ra
                (ca, sa), (cb, sb) = weight[ra], weight[rb]
                weight[ra] = (ca + cb, sa + sb)

        for key, vsize, pars in txs:
            node: object = ("new", key)
            up[node], weight[node] = node, (1, vsize)
            for p in pars:
                if p in self._entries:
                    cluster = self._entries[p].cluster
                    other: object = ("cluster", cluster.seq)
                    if other not in up:
                        up[other], weight[other] = other, (len(cluster.keys), cluster.size)
                else:
                    other = ("new", p)
                    if other not in up:
                        raise ValueError(f"unknown parent {p!r}")
                union(node, other)
        roots = [weight[n] for n in up if find(n) == n]
        ok = all(c <= self.max_count and s <= self.max_vsize for c, s in roots)
        count, size = max(roots, default=(0, 0))
        return LimitCheck(ok, count, size)

    # -- block building and eviction ----------------------------------------------------------

    def iter_chunks_best_first(self) -> Iterator[tuple[FeeFrac, list[K]]]:
        """Every chunk of every cluster, highest feerate first (for block building). Within a
        cluster chunks come in linearisation order, so parents precede children. Lazy: a
        builder that stops early pays little more than a heap of the clusters.

        The heap is keyed by the float feerate where that gives exactly the order of
        :class:`_ChunkKey` (see :func:`_float_order_is_exact`): tuples compare in C, which
        makes a 50,000-transaction template several times cheaper to order."""
        clusters = self._unique_clusters()
        if _float_order_is_exact(clusters):
            return self._iter_best_first_float(clusters)
        return self._iter_best_first_exact(clusters)

    def _iter_best_first_float(
        self, clusters: list[_Cluster[K]]
    ) -> Iterator[tuple[FeeFrac, list[K]]]:
        heap: list[tuple[float, int, int, int, _Cluster[K]]] = []
        for n, cluster in enumerate(clusters):
            r = cluster.chunk_rates[0]
            heap.append((-r.fee / r.size, cluster.seq, 0, n, cluster))
        heapq.heapify(heap)
        while heap:
            _, seq, pos, n, cluster = heap[0]
            rates = cluster.chunk_rates
            start = cluster.chunk_ends[pos - 1] if pos else 0
            chunk_keys = cluster.keys[start : cluster.chunk_ends[pos]]
            if pos + 1 < len(rates):
                r = rates[pos + 1]
                heapq.heapreplace(heap, (-r.fee / r.size, seq, pos + 1, n, cluster))
            else:
                heapq.heappop(heap)
            yield rates[pos], chunk_keys

    def _iter_best_first_exact(
        self, clusters: list[_Cluster[K]]
    ) -> Iterator[tuple[FeeFrac, list[K]]]:
        heap: list[tuple[_ChunkKey, int, _Cluster[K]]] = []
        for n, cluster in enumerate(clusters):
            heap.append((_ChunkKey(cluster.chunk_rates[0], cluster.seq, 0), n, cluster))
        heapq.heapify(heap)
        while heap:
            key, n, cluster = heap[0]
            pos = key.pos
            start = cluster.chunk_ends[pos - 1] if pos else 0
            chunk_keys = cluster.keys[start : cluster.chunk_ends[pos]]
            if pos + 1 < len(cluster.chunk_rates):
                heapq.heapreplace(
                    heap,
                    (_ChunkKey(cluster.chunk_rates[pos + 1], cluster.seq, pos + 1), n, cluster),
                )
            else:
                heapq.heappop(heap)
            yield cluster.chunk_rates[pos], chunk_keys

    def iter_chunks_worst_first(self) -> Iterator[tuple[FeeFrac, list[K]]]:
        """Every chunk, lowest feerate first (for eviction: the worst chunk of a cluster is its
        last, so removing it never strands a child)."""
        entries: list[tuple[_ChunkKey, _Cluster[K]]] = []
        for cluster in self._unique_clusters():
            for pos, rate in enumerate(cluster.chunk_rates):
                entries.append((_ChunkKey(rate, cluster.seq, pos), cluster))
        entries.sort(key=lambda e: e[0], reverse=True)
        for key, cluster in entries:
            start = cluster.chunk_ends[key.pos - 1] if key.pos else 0
            yield cluster.chunk_rates[key.pos], cluster.keys[start : cluster.chunk_ends[key.pos]]

    def iter_evictable_chunks(self) -> Iterator[tuple[FeeFrac, list[K]]]:
        """The worst chunk, then the next worst, and so on, while the caller removes what it is
        given (Core's ``GetWorstMainChunk`` in a loop, for ``TrimToSize``): after each yield
        the clusters the caller changed are looked at again, so a cluster that split or was
        re-linearised offers its new worst chunk. The worst chunk of a cluster is its last, so
        removing it never strands a child. Costs one pass over the clusters, then a heap step
        per chunk."""
        heap: list[tuple[_WorstKey, int, _Cluster[K]]] = []
        tie = 0
        for cluster in self._unique_clusters():
            tie += 1
            pos = len(cluster.chunk_rates) - 1
            heap.append((_WorstKey(cluster.chunk_rates[pos], cluster.seq, pos), tie, cluster))
        heapq.heapify(heap)
        while heap:
            key, _, cluster = heapq.heappop(heap)
            if not self._is_live(cluster) or key.pos >= len(cluster.chunk_rates):
                continue
            pos = key.pos
            start = cluster.chunk_ends[pos - 1] if pos else 0
            chunk_keys = cluster.keys[start : cluster.chunk_ends[pos]]
            members = list(cluster.keys)
            yield cluster.chunk_rates[pos], list(chunk_keys)
            if self._is_live(cluster) and cluster.keys == members:
                # Nothing was removed: offer the chunk before it next time.
                if pos > 0:
                    tie += 1
                    heapq.heappush(
                        heap,
                        (
                            _WorstKey(cluster.chunk_rates[pos - 1], cluster.seq, pos - 1),
                            tie,
                            cluster,
                        ),
                    )
                continue
            seen: set[int] = set()
            for k in members:
                entry = self._entries.get(k)
                if entry is None or entry.cluster.seq in seen:
                    continue
                seen.add(entry.cluster.seq)
                successor = entry.cluster
                last = len(successor.chunk_rates) - 1
                tie += 1
                heapq.heappush(
                    heap,
                    (_WorstKey(successor.chunk_rates[last], successor.seq, last), tie, successor),
                )

    def _is_live(self, cluster: _Cluster[K]) -> bool:
        if not cluster.keys:
            return False
        entry = self._entries.get(cluster.keys[0])
        return entry is not None and entry.cluster is cluster

    def _unique_clusters(self) -> list[_Cluster[K]]:
        seen = {entry.cluster.seq: entry.cluster for entry in self._entries.values()}
        return [seen[s] for s in sorted(seen)]

    # -- changes ------------------------------------------------------------------------------

    def add(self, key: K, fee: int, vsize: int, parents: Iterable[K] = ()) -> None:
        """Add a transaction whose in-pool parents are ``parents`` (all present), merging their
        clusters, and re-linearise the result. Raises :class:`ClusterLimitError` beyond the
        limits and ``ValueError`` for a known key, an unknown parent or a non-positive size."""
        if key in self._entries:
            raise ValueError(f"{key!r} is already in the cluster set")
        pars = set(parents)
        for p in pars:
            if p not in self._entries:
                raise ValueError(f"unknown parent {p!r}")
        if vsize <= 0:
            raise ValueError("vsize must be positive")
        check = self.check_add(vsize, pars)
        if not check.ok:
            raise ClusterLimitError(
                f"cluster would have {check.count} transactions of {check.vsize} vB"
            )
        joined = {id(c): c for c in (self._entries[p].cluster for p in pars)}
        if len(joined) == 1 and self._append(key, fee, vsize, pars, next(iter(joined.values()))):
            return
        # Seed: the old clusters' chunks interleaved by feerate (they are independent), then the
        # new transaction; the linearisation will not be worse than this.
        chunks: list[tuple[_ChunkKey, list[K]]] = []
        for cluster in joined.values():
            for pos, (rate, ks) in enumerate(cluster.chunks()):
                chunks.append((_ChunkKey(rate, cluster.seq, pos), ks))
        chunks.sort(key=lambda c: c[0])
        seed = [k for _, ks in chunks for k in ks]
        seed.append(key)
        new_cluster: _Cluster[K] = _Cluster(self._take_seq())
        entry = _Entry(fee, vsize, pars, new_cluster)
        self._entries[key] = entry
        for p in pars:
            self._entries[p].children.add(key)
        self._relinearize(new_cluster, seed)

    def _append(self, key: K, fee: int, vsize: int, pars: set[K], cluster: _Cluster[K]) -> bool:
        """The common case of a new transaction joining one optimally linearised cluster: put
        it last (it has no children, so that is topological) and re-chunk the tail. The result
        is still optimal when the new transaction forms a chunk of its own (its feerate is not
        above the last chunk's: the diagram gains a last segment no steeper than the others)
        or when every transaction of the chunks it merges into is its ancestor (no order could
        mine it sooner). Otherwise (False) the caller re-linearises the cluster."""
        if not cluster.optimal:
            return False
        rates = list(cluster.chunk_rates)
        ends = list(cluster.chunk_ends)
        merged_fee, merged_size = fee, vsize
        start = len(cluster.keys)
        while rates and merged_fee * rates[-1].size > rates[-1].fee * merged_size:
            last = rates.pop()
            ends.pop()
            merged_fee += last.fee
            merged_size += last.size
            start = ends[-1] if ends else 0
        if start < len(cluster.keys):
            ancestors: set[K] = set(pars)
            todo = list(pars)
            while todo:
                for p in self._entries[todo.pop()].parents:
                    if p not in ancestors:
                        ancestors.add(p)
                        todo.append(p)
            if any(k not in ancestors for k in cluster.keys[start:]):
                return False
        grown: _Cluster[K] = _Cluster(self._take_seq())
        grown.keys = [*cluster.keys, key]
        rates.append(FeeFrac(merged_fee, merged_size))
        ends.append(len(grown.keys))
        grown.chunk_rates = rates
        grown.chunk_ends = ends
        grown.fee = cluster.fee + fee
        grown.size = cluster.size + vsize
        grown.optimal = True
        self._entries[key] = _Entry(fee, vsize, pars, grown)
        for p in pars:
            self._entries[p].children.add(key)
        for k in cluster.keys:
            self._entries[k].cluster = grown
        return True

    def remove(self, key: K) -> None:
        """Remove a transaction; its cluster may split in several, each re-linearised."""
        entry = self._entries.pop(key)
        for p in entry.parents:
            self._entries[p].children.discard(key)
        for c in entry.children:
            self._entries[c].parents.discard(key)
        old_order = [k for k in entry.cluster.keys if k != key]
        self._split(old_order)

    def remove_many(self, keys: Iterable[K]) -> None:
        """Remove several transactions, re-linearising each affected cluster once."""
        gone = set(keys)
        affected: dict[int, _Cluster[K]] = {}
        for key in gone:
            entry = self._entries[key]
            affected[entry.cluster.seq] = entry.cluster
        for key in gone:
            entry = self._entries.pop(key)
            for p in entry.parents:
                if p not in gone:
                    self._entries[p].children.discard(key)
            for c in entry.children:
                if c not in gone:
                    self._entries[c].parents.discard(key)
        for seq in sorted(affected):
            self._split([k for k in affected[seq].keys if k not in gone])

    def set_fee(self, key: K, fee: int) -> None:
        """Change a transaction's (modified) fee, e.g. for ``prioritisetransaction``."""
        entry = self._entries[key]
        entry.fee = fee
        self._relinearize(entry.cluster, list(entry.cluster.keys))

    def relinearize(self, key: K, max_iterations: int) -> bool:
        """Spend up to ``max_iterations`` more on ``key``'s cluster; returns whether it is now
        proven optimal."""
        cluster = self._entries[key].cluster
        self._relinearize(cluster, list(cluster.keys), max_iterations)
        return cluster.optimal

    def _take_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

    def _split(self, old_order: list[K]) -> None:
        """Rebuild the connected components of ``old_order``'s keys as new clusters, each seeded
        with its part of the old order."""
        unassigned = set(old_order)
        for start in old_order:
            if start not in unassigned:
                continue
            component = {start}
            todo = [start]
            while todo:
                e = self._entries[todo.pop()]
                for k in (*e.parents, *e.children):
                    if k in unassigned and k not in component:
                        component.add(k)
                        todo.append(k)
            unassigned -= component
            cluster: _Cluster[K] = _Cluster(self._take_seq())
            self._relinearize(cluster, [k for k in old_order if k in component])

    def _relinearize(
        self, cluster: _Cluster[K], seed: list[K], max_iterations: int | None = None
    ) -> None:
        """Linearise ``seed``'s keys (a topological order of a whole cluster) into ``cluster``."""
        if len(seed) == 1:  # the common case: a transaction with no relatives in the pool
            entry = self._entries[seed[0]]
            cluster.keys = seed
            cluster.chunk_rates = [FeeFrac(entry.fee, entry.size)]
            cluster.chunk_ends = [1]
            cluster.fee, cluster.size, cluster.optimal = entry.fee, entry.size, True
            entry.cluster = cluster
            return
        index = {k: i for i, k in enumerate(seed)}
        entries = [self._entries[k] for k in seed]
        graph = DepGraph([(e.fee, e.size, [index[p] for p in e.parents]) for e in entries])
        result = linearize_detailed(
            graph,
            max_iterations=self.max_iterations if max_iterations is None else max_iterations,
            old=list(range(len(seed))),
        )
        cluster.keys = [seed[i] for i in result.order]
        cluster.chunk_rates = []
        cluster.chunk_ends = []
        end = 0
        for count, rate in chunk_feerates(
            FeeFrac(graph.fees[i], graph.sizes[i]) for i in result.order
        ):
            end += count
            cluster.chunk_rates.append(rate)
            cluster.chunk_ends.append(end)
        cluster.fee = sum(graph.fees)
        cluster.size = sum(graph.sizes)
        cluster.optimal = result.optimal
        for e in entries:
            e.cluster = cluster

    # -- replacement --------------------------------------------------------------------------

    def diagrams_for_replacement(
        self,
        remove: Iterable[K],
        add: Sequence[tuple[K, int, int, Iterable[K]]],
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The feerate diagrams (old, new) of the clusters a replacement touches: removing
        ``remove`` (the conflicts and their descendants) and adding ``add`` = ``(key, fee, vsize,
        parents)`` in topological order. Nothing is changed. RBF requires
        ``compare_diagrams(new, old) is DiagramOrder.BETTER``."""
        gone = set(remove)
        touched: dict[int, _Cluster[K]] = {}
        for k in gone:
            touched[self._entries[k].cluster.seq] = self._entries[k].cluster
        new_keys = [k for k, _, _, _ in add]
        for _, _, _, pars in add:
            for p in pars:
                if p in self._entries:
                    touched[self._entries[p].cluster.seq] = self._entries[p].cluster
        old_rates: list[FeeFrac] = []
        kept: list[K] = []
        for seq in sorted(touched):
            old_rates.extend(touched[seq].chunk_rates)
            kept.extend(k for k in touched[seq].keys if k not in gone)
        old_rates.sort(key=lambda r: _RateKey(r.fee, r.size))
        nodes = kept + new_keys
        index = {k: i for i, k in enumerate(nodes)}
        spec: list[tuple[int, int, list[int]]] = []
        for k in kept:
            e = self._entries[k]
            spec.append((e.fee, e.size, [index[p] for p in e.parents if p in index]))
        for _, fee, vsize, pars in add:
            spec.append((fee, vsize, [index[p] for p in pars if p in index]))
        new_rates: list[FeeFrac] = []
        if spec:
            graph = DepGraph(spec)
            order = linearize_detailed(graph, max_iterations=self.max_iterations).order
            new_rates = [
                rate
                for _, rate in chunk_feerates(FeeFrac(graph.fees[i], graph.sizes[i]) for i in order)
            ]
            new_rates.sort(key=lambda r: _RateKey(r.fee, r.size))
        return feerate_diagram(old_rates), feerate_diagram(new_rates)
