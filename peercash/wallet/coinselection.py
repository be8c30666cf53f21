"""Coin selection: which of the wallet's coins fund a payment, and whether it gets change.

Layer 3 (wallet), pure: no I/O, no clock; the only randomness is a ``random.Random`` the caller
passes in (Knapsack and Single Random Draw shuffle, the change target is drawn at random). The
model follows Bitcoin Core's ``wallet/coinselection`` and ``wallet/spend``: coins are gathered into
:class:`OutputGroup` s, each algorithm (Branch-and-Bound, CoinGrinder, Knapsack, Single Random
Draw) proposes a :class:`SelectionResult`, and the one with the least *waste* wins (ties go to the
result that spends more inputs, consolidating while fees are cheap).

Amounts are integer satoshis; sizes are virtual bytes, weights weight units; feerates are
:class:`FeeRate` in sat per 1000 vbytes, as Core's ``CFeeRate``.

Error contract: :class:`CoinSelectionError` (a ``ValueError``) carrying Core's message;
:class:`InsufficientFunds` ("Insufficient funds") and :class:`MaxWeightExceeded` are the two
every algorithm may raise.

Concurrency: every value is immutable; the injected ``random.Random`` is the only shared state.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from peercash.consensus.primitives import WITNESS_SCALE_FACTOR
from peercash.mempool.policy import MAX_STANDARD_TX_WEIGHT

__all__ = [
    "CHANGE_LOWER",
    "CHANGE_UPPER",
    "DEFAULT_DISCARD_FEERATE",
    "DEFAULT_LONG_TERM_FEERATE",
    "OUTPUT_GROUP_MAX_ENTRIES",
    "TOTAL_TRIES",
    "Coin",
    "CoinEligibilityFilter",
    "CoinSelectionError",
    "CoinSelectionParams",
    "FeeRate",
    "Groups",
    "InsufficientFunds",
    "MaxFeeExceeded",
    "MaxWeightExceeded",
    "OutputGroup",
    "SelectionAlgorithm",
    "SelectionFilter",
    "SelectionResult",
    "approximate_best_subset",
    "attempt_selection",
    "automatic_coin_selection",
    "check_max_tx_fee",
    "choose_selection_result",
    "coin_grinder",
    "eligibility_filters",
    "generate_change_target",
    "group_outputs",
    "knapsack_solver",
    "select_coins",
    "select_coins_bnb",
    "select_coins_srd",
]

CHANGE_LOWER = 50_000
"""Lower bound of the random change target (sat)."""
CHANGE_UPPER = 1_000_000
"""Upper bound of the random change target (sat)."""
TOTAL_TRIES = 100_000
"""Search budget of Branch-and-Bound and CoinGrinder (nodes of the inclusion/omission tree)."""
DEFAULT_LONG_TERM_FEERATE_SAT_PER_KVB = 10_000
DEFAULT_DISCARD_FEERATE_SAT_PER_KVB = 10_000
OUTPUT_GROUP_MAX_ENTRIES = 100
"""With avoid-partial-spends, coins to one script are spent in groups of at most this many."""
MAX_MONEY = 21_000_000 * 100_000_000


class CoinSelectionError(ValueError):
    """No acceptable input set; the message is Bitcoin Core's."""


class InsufficientFunds(CoinSelectionError):
    """The eligible coins cannot pay the target (Core's empty error, shown as this text)."""

    def __init__(self, message: str = "Insufficient funds") -> None:
        super().__init__(message)


class MaxWeightExceeded(CoinSelectionError):
    """Enough value exists, but only in input sets heavier than the transaction may be."""

    def __init__(self) -> None:
        super().__init__(
            "The inputs size exceeds the maximum weight. Please try sending a smaller amount or "
            "manually consolidating your wallet's UTXOs"
        )


class MaxFeeExceeded(CoinSelectionError):
    """The fee is above the user's cap (``-maxtxfee``)."""

    def __init__(self) -> None:
        super().__init__("Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")


@dataclass(frozen=True, slots=True, order=True)
class FeeRate:
    """Satoshis per 1000 virtual bytes; fees round up, as ``CFeeRate::GetFee`` does."""

    sat_per_kvb: int

    @classmethod
    def from_sat_per_vb(cls, sat_per_vb: int) -> FeeRate:
        return cls(sat_per_vb * 1000)

    def fee(self, vbytes: int) -> int:
        """The fee for ``vbytes`` virtual bytes (ceiling of rate × size / 1000)."""
        if vbytes <= 0:
            return 0
        return -((-self.sat_per_kvb * vbytes) // 1000)


DEFAULT_LONG_TERM_FEERATE = FeeRate(DEFAULT_LONG_TERM_FEERATE_SAT_PER_KVB)
"""Core's ``-consolidatefeerate`` default, 10 sat/vB: what spending a coin later is assumed to cost."""
DEFAULT_DISCARD_FEERATE = FeeRate(DEFAULT_DISCARD_FEERATE_SAT_PER_KVB)
"""Core's ``-discardfee`` default: change worth less than its spend at this rate goes to fees."""


@dataclass(frozen=True, slots=True)
class Coin:
    """One spendable output as a candidate input (Core's ``COutput``).

    ``fee`` is the cost of spending it at the effective feerate (plus any ancestor bump fee),
    ``long_term_fee`` the cost at the long-term feerate; ``input_vbytes`` is -1 when unknown.
    """

    outpoint: Hashable
    value: int
    input_vbytes: int
    fee: int = 0
    long_term_fee: int = 0
    depth: int = 144
    from_me: bool = False
    ancestors: int = 0
    descendants: int = 0
    ancestor_bump_fee: int = 0
    script: bytes = b""
    output_type: str = ""

    @classmethod
    def priced(
        cls,
        outpoint: Hashable,
        value: int,
        input_vbytes: int,
        effective_feerate: FeeRate,
        long_term_feerate: FeeRate = DEFAULT_LONG_TERM_FEERATE,
        **kw: object,
    ) -> Coin:
        """A coin whose fees are its input size at the two feerates."""
        return cls(
            outpoint,
            value,
            input_vbytes,
            fee=effective_feerate.fee(input_vbytes),
            long_term_fee=long_term_feerate.fee(input_vbytes),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def effective_value(self) -> int:
        return self.value - self.fee

    @property
    def weight(self) -> int:
        return max(self.input_vbytes, 0) * WITNESS_SCALE_FACTOR


@dataclass(frozen=True, slots=True)
class CoinEligibilityFilter:
    """Which groups may be spent: confirmations for our own and others' coins, chain limits."""

    conf_mine: int
    conf_theirs: int
    max_ancestors: int
    max_descendants: int | None = None
    include_partial_groups: bool = False

    @property
    def descendant_limit(self) -> int:
        return self.max_ancestors if self.max_descendants is None else self.max_descendants


@dataclass(frozen=True, slots=True)
class OutputGroup:
    """Coins that are selected together (all outputs to one address, or a single coin)."""

    coins: tuple[Coin, ...]
    subtract_fee_outputs: bool = False
    value: int = field(init=False)
    effective_value: int = field(init=False)
    fee: int = field(init=False)
    long_term_fee: int = field(init=False)
    weight: int = field(init=False)
    depth: int = field(init=False)
    ancestors: int = field(init=False)
    descendants: int = field(init=False)
    from_me: bool = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "value", sum(c.value for c in self.coins))
        set_(self, "effective_value", sum(c.effective_value for c in self.coins))
        set_(self, "fee", sum(c.fee for c in self.coins))
        set_(self, "long_term_fee", sum(c.long_term_fee for c in self.coins))
        set_(self, "weight", sum(c.weight for c in self.coins))
        set_(self, "depth", min((c.depth for c in self.coins), default=999))
        # Ancestors add up (an overestimate when shared); descendants count from the top ancestor.
        set_(self, "ancestors", sum(c.ancestors for c in self.coins))
        set_(self, "descendants", max((c.descendants for c in self.coins), default=0))
        set_(self, "from_me", all(c.from_me for c in self.coins))

    @classmethod
    def single(cls, coin: Coin, subtract_fee_outputs: bool = False) -> OutputGroup:
        return cls((coin,), subtract_fee_outputs)

    @property
    def selection_amount(self) -> int:
        """What the group contributes: its value with SFFO, else its effective value."""
        return self.value if self.subtract_fee_outputs else self.effective_value

    def eligible(self, f: CoinEligibilityFilter) -> bool:
        need = f.conf_mine if self.from_me else f.conf_theirs
        return (
            self.depth >= need
            and self.ancestors <= f.max_ancestors
            and self.descendants <= f.descendant_limit
        )


@dataclass(frozen=True, slots=True)
class Groups:
    """Groups with positive selection amount (for BnB, CG, SRD) and all of them (Knapsack)."""

    positive: tuple[OutputGroup, ...] = ()
    mixed: tuple[OutputGroup, ...] = ()


class SelectionAlgorithm(Enum):
    BNB = "bnb"
    KNAPSACK = "knapsack"
    SRD = "srd"
    CG = "cg"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class SelectionResult:
    """The inputs chosen for ``target`` (payment plus non-input fees) and how they were found."""

    inputs: tuple[Coin, ...]
    target: int
    algorithm: SelectionAlgorithm
    use_effective: bool = True
    weight: int = 0
    waste: int | None = None
    completed: bool = True
    evaluated: int = 0
    bump_fee_discount: int = 0

    @classmethod
    def of(
        cls,
        groups: Iterable[OutputGroup],
        target: int,
        algorithm: SelectionAlgorithm,
        **kw: object,
    ) -> SelectionResult:
        groups = list(groups)
        coins = tuple(c for g in groups for c in g.coins)
        if len({c.outpoint for c in coins}) != len(coins):
            raise ValueError("a coin is selected twice")
        sffo = bool(groups) and groups[-1].subtract_fee_outputs
        return cls(
            coins,
            target,
            algorithm,
            use_effective=not sffo,
            weight=sum(g.weight for g in groups),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def selected_value(self) -> int:
        return sum(c.value for c in self.inputs)

    @property
    def selected_effective_value(self) -> int:
        return sum(c.effective_value for c in self.inputs) + self.bump_fee_discount

    @property
    def total_bump_fees(self) -> int:
        return sum(c.ancestor_bump_fee for c in self.inputs) - self.bump_fee_discount

    def change(self, min_viable_change: int, change_fee: int) -> int:
        """The change output's amount, or 0 when it would be below ``min_viable_change``
        (then the excess is left to fees). With SFFO the recipients pay every fee."""
        if self.use_effective:
            amount = self.selected_effective_value - self.target - change_fee
        else:
            amount = self.selected_value - self.target
        return 0 if amount < min_viable_change else amount

    def compute_waste(self, min_viable_change: int, change_cost: int, change_fee: int) -> int:
        """Core's waste metric: what spending these inputs now costs over spending them at the
        long-term feerate, plus the cost of change if there is change, else the excess given
        to fees."""
        if not self.inputs:
            raise ValueError("the waste of an empty selection is undefined")
        waste = sum(c.fee - c.long_term_fee for c in self.inputs) - self.bump_fee_discount
        if self.change(min_viable_change, change_fee):
            return waste + change_cost
        selected = self.selected_effective_value if self.use_effective else self.selected_value
        if selected < self.target:
            raise ValueError("the selection does not reach its target")
        return waste + selected - self.target

    def with_waste(
        self, min_viable_change: int, change_cost: int, change_fee: int
    ) -> SelectionResult:
        return replace(self, waste=self.compute_waste(min_viable_change, change_cost, change_fee))

    def better_than(self, other: SelectionResult) -> bool:
        """Less waste, or equal waste and more inputs (Core's ``operator<``)."""
        if self.waste is None or other.waste is None:
            raise ValueError("compare results only after their waste is computed")
        return self.waste < other.waste or (
            self.waste == other.waste and len(self.inputs) > len(other.inputs)
        )


@dataclass(frozen=True, slots=True)
class CoinSelectionParams:
    """Everything one selection needs to know about the transaction being built."""

    change_output_size: int
    change_spend_size: int
    min_change_target: int
    effective_feerate: FeeRate
    long_term_feerate: FeeRate = DEFAULT_LONG_TERM_FEERATE
    discard_feerate: FeeRate = DEFAULT_DISCARD_FEERATE
    tx_noinputs_size: int = 0
    avoid_partial_spends: bool = False
    subtract_fee_outputs: bool = False
    include_unsafe_inputs: bool = False
    max_tx_weight: int | None = None
    change_fee: int = 0
    cost_of_change: int = 0
    min_viable_change: int = 0

    @classmethod
    def for_transaction(
        cls,
        *,
        change_output_size: int,
        change_spend_size: int,
        effective_feerate: FeeRate,
        payment_value: int,
        rng: random.Random,
        change_is_witness: bool = True,
        long_term_feerate: FeeRate = DEFAULT_LONG_TERM_FEERATE,
        discard_feerate: FeeRate = DEFAULT_DISCARD_FEERATE,
        **kw: object,
    ) -> CoinSelectionParams:
        """Derive the change figures as Core's ``CreateTransactionInternal`` does: change fee at
        the effective rate, cost of change adds its spend at the discard rate, a random change
        target, and the smallest viable change (above dust and above the cost to spend it)."""
        change_fee = effective_feerate.fee(change_output_size)
        spend_fee = discard_feerate.fee(change_spend_size)
        # Dust: the output plus a typical input spending it (67 vB for witness, 148 else).
        dust = discard_feerate.fee(change_output_size + (67 if change_is_witness else 148))
        return cls(
            change_output_size=change_output_size,
            change_spend_size=change_spend_size,
            min_change_target=generate_change_target(payment_value, change_fee, rng),
            effective_feerate=effective_feerate,
            long_term_feerate=long_term_feerate,
            discard_feerate=discard_feerate,
            change_fee=change_fee,
            cost_of_change=spend_fee + change_fee,
            min_viable_change=max(spend_fee + 1, dust),
            **kw,  # type: ignore[arg-type]
        )

    def priced(self, outpoint: Hashable, value: int, input_vbytes: int, **kw: object) -> Coin:
        """A coin priced at these params' effective and long-term feerates."""
        return Coin.priced(
            outpoint, value, input_vbytes, self.effective_feerate, self.long_term_feerate, **kw
        )


def generate_change_target(payment_value: int, change_fee: int, rng: random.Random) -> int:
    """A random change budget so change amounts do not fingerprint the wallet: 50k sat for small
    payments, else uniform in [50k, min(2 × payment, 1M)), plus the change fee."""
    if payment_value <= CHANGE_LOWER // 2:
        return change_fee + CHANGE_LOWER
    upper = min(payment_value * 2, CHANGE_UPPER)
    return change_fee + rng.randrange(upper - CHANGE_LOWER) + CHANGE_LOWER


# --- Branch and Bound ------------------------------------------------------------------------


def _by_amount_then_waste(g: OutputGroup) -> tuple[int, int]:
    return (-g.selection_amount, g.fee - g.long_term_fee)


def select_coins_bnb(
    pool: Sequence[OutputGroup],
    selection_target: int,
    cost_of_change: int,
    max_selection_weight: int = MAX_STANDARD_TX_WEIGHT,
) -> SelectionResult:
    """Depth-first search for a changeless input set whose amount lies in
    [target, target + cost_of_change], keeping the least-waste one found in ``TOTAL_TRIES``.

    Inclusion branches are explored first over groups sorted by descending amount; a branch is
    cut when it overshoots the window, cannot reach the target with what is left, or (at high
    feerates) already wastes more than the best; an input equal in amount and fee to an omitted
    predecessor is not tried again."""
    available = 0
    for g in pool:
        if g.selection_amount <= 0:
            raise ValueError("Branch-and-Bound needs groups of positive amount")
        available += g.selection_amount
    if available < selection_target:
        raise InsufficientFunds
    utxos = sorted(pool, key=_by_amount_then_waste)
    feerate_high = utxos[0].fee > utxos[0].long_term_fee
    upper = selection_target + cost_of_change

    value = waste = weight = 0
    selection: list[int] = []
    best: list[int] = []
    best_waste = MAX_MONEY
    weight_exceeded = False
    index = 0
    for _ in range(TOTAL_TRIES):
        backtrack = False
        if (
            value + available < selection_target
            or value > upper
            or (waste > best_waste and feerate_high)
        ):
            backtrack = True
        elif weight > max_selection_weight:
            weight_exceeded = True
            backtrack = True
        elif value >= selection_target:
            if waste + value - selection_target <= best_waste:
                best = list(selection)
                best_waste = waste + value - selection_target
            backtrack = True

        if backtrack:
            if not selection:
                break
            # Return the omitted groups after the last inclusion to the lookahead, then omit it.
            index -= 1
            while index > selection[-1]:
                available += utxos[index].selection_amount
                index -= 1
            g = utxos[index]
            value -= g.selection_amount
            waste -= g.fee - g.long_term_fee
            weight -= g.weight
            selection.pop()
        else:
            g = utxos[index]
            available -= g.selection_amount
            prev = utxos[index - 1] if index else None
            if (
                not selection
                or selection[-1] == index - 1
                or prev is None
                or g.selection_amount != prev.selection_amount
                or g.fee != prev.fee
            ):
                selection.append(index)
                value += g.selection_amount
                waste += g.fee - g.long_term_fee
                weight += g.weight
        index += 1

    if not best:
        if weight_exceeded:
            raise MaxWeightExceeded
        raise InsufficientFunds
    result = SelectionResult.of((utxos[i] for i in best), selection_target, SelectionAlgorithm.BNB)
    return result.with_waste(cost_of_change, cost_of_change, 0)


# --- CoinGrinder -----------------------------------------------------------------------------


def coin_grinder(
    pool: Sequence[OutputGroup],
    selection_target: int,
    change_target: int,
    max_selection_weight: int = MAX_STANDARD_TX_WEIGHT,
) -> SelectionResult:
    """Depth-first search for the lightest input set that pays the target plus a change budget
    (``change_target``), used when fees are high and input weight is what costs.

    The walk over groups sorted by descending amount (lighter first on ties) moves three ways:
    EXPLORE (add the next group), SHIFT (replace the last group by the one after it) and CUT
    (drop the last group and shift the one before). It shifts once a prefix pays (more inputs
    only add weight) or can no longer beat the best weight, cuts when even every remaining group
    would not pay, and skips clones of a group just omitted."""
    utxos = sorted(pool, key=lambda g: (-g.selection_amount, g.weight))
    n = len(utxos)
    lookahead = [0] * n  # sum of amounts after index i
    min_tail_weight = [0] * n  # lightest group after index i
    total = 0
    lightest = 1 << 62
    for i in range(n - 1, -1, -1):
        lookahead[i] = total
        min_tail_weight[i] = lightest
        if utxos[i].selection_amount <= 0:
            raise ValueError("CoinGrinder needs groups of positive amount")
        total += utxos[i].selection_amount
        lightest = min(lightest, utxos[i].weight)
    total_target = selection_target + change_target
    if total < total_target:
        raise InsufficientFunds

    selection: list[int] = []
    best: list[int] = []
    amount = weight = 0
    best_amount = MAX_MONEY
    best_weight = max_selection_weight  # a tie is fine: then the lower amount wins
    weight_exceeded = False
    next_utxo = 0
    tries = 0
    completed = False

    def deselect_last() -> None:
        nonlocal amount, weight
        g = utxos[selection.pop()]
        amount -= g.selection_amount
        weight -= g.weight

    while True:
        shift = cut = False
        g = utxos[next_utxo]
        amount += g.selection_amount
        weight += g.weight
        selection.append(next_utxo)
        next_utxo += 1
        tries += 1

        tail = selection[-1]
        if amount + lookahead[tail] < total_target:
            cut = True  # even everything after the tail cannot pay
        elif weight > best_weight:
            if weight > max_selection_weight:
                weight_exceeded = True
            # More groups only add weight; shifting helps only if a lighter group follows.
            if utxos[tail].weight <= min_tail_weight[tail]:
                cut = True
            else:
                shift = True
        elif amount >= total_target:
            shift = True
            if weight < best_weight or (weight == best_weight and amount < best_amount):
                best = list(selection)
                best_weight = weight
                best_amount = amount
        elif best:
            # The fewest further groups (each at most the tail's amount, at least the lightest
            # tail weight) still needed: if even that is too heavy, this prefix is done.
            per = utxos[tail].selection_amount
            missing = -(-(total_target - amount) // per)
            if weight + min_tail_weight[tail] * missing > best_weight:
                if utxos[tail].weight <= min_tail_weight[tail]:
                    cut = True
                else:
                    shift = True

        if tries >= TOTAL_TRIES:
            break
        if next_utxo == n:
            cut = True
        if cut:
            deselect_last()
            shift = True
        done = False
        while shift:
            if not selection:
                done = completed = True
                break
            next_utxo = selection[-1] + 1
            deselect_last()
            shift = False
            # A group equal in amount to the one just omitted is a clone or heavier: skip it.
            while utxos[next_utxo - 1].selection_amount == utxos[next_utxo].selection_amount:
                if next_utxo >= n - 1:
                    shift = True
                    break
                next_utxo += 1
        if done:
            break

    if not best:
        if weight_exceeded:
            raise MaxWeightExceeded
        raise InsufficientFunds
    return SelectionResult.of(
        (utxos[i] for i in best),
        selection_target,
        SelectionAlgorithm.CG,
        completed=completed,
        evaluated=tries,
    )


# --- Single Random Draw ----------------------------------------------------------------------


def select_coins_srd(
    pool: Sequence[OutputGroup],
    target: int,
    change_fee: int,
    rng: random.Random,
    max_selection_weight: int = MAX_STANDARD_TX_WEIGHT,
) -> SelectionResult:
    """Draw groups in random order until they pay the target plus the minimum change
    (``CHANGE_LOWER`` + change fee); over the weight limit, the smallest drawn are dropped."""
    goal = target + CHANGE_LOWER + change_fee
    order = list(range(len(pool)))
    rng.shuffle(order)
    heap: list[tuple[int, int, OutputGroup]] = []  # smallest amount on top
    counter = itertools.count()
    selected = weight = 0
    weight_exceeded = False
    for i in order:
        g = pool[i]
        heapq.heappush(heap, (g.selection_amount, next(counter), g))
        selected += g.selection_amount
        weight += g.weight
        if weight > max_selection_weight:
            weight_exceeded = True
            while heap and weight > max_selection_weight:
                amount, _, dropped = heapq.heappop(heap)
                selected -= amount
                weight -= dropped.weight
        if selected >= goal:
            return SelectionResult.of((h[2] for h in heap), target, SelectionAlgorithm.SRD)
    if weight_exceeded:
        raise MaxWeightExceeded
    raise InsufficientFunds


# --- Knapsack --------------------------------------------------------------------------------


def approximate_best_subset(
    rng: random.Random,
    groups: Sequence[OutputGroup],
    total_lower: int,
    target: int,
    max_selection_weight: int = MAX_STANDARD_TX_WEIGHT,
    iterations: int = 1000,
) -> tuple[list[bool], int]:
    """Stochastic subset sum: the subset of ``groups`` (sorted descending) closest to but not
    below ``target``, as (inclusion mask, total). Each round includes groups by coin flip, then
    in a second pass adds what was left out; whenever the total reaches the target it is
    recorded and the last group taken back out, to look for a closer fit."""
    n = len(groups)
    amounts = [g.selection_amount for g in groups]
    weights = [g.weight for g in groups]
    best = [True] * n
    best_total = total_lower
    for _ in range(iterations):
        if best_total == target:
            break
        included = [False] * n
        total = weight = 0
        reached = False
        coins = rng.getrandbits(n) if n else 0  # one fair coin flip per group, drawn at once
        for pass_ in range(2):
            if reached:
                break
            for i in range(n):
                if pass_ == 0:
                    if not (coins >> i) & 1:
                        continue
                elif included[i]:
                    continue
                total += amounts[i]
                weight += weights[i]
                included[i] = True
                if total >= target and weight <= max_selection_weight:
                    reached = True
                    if total < best_total:
                        best_total = total
                        best = list(included)
                    total -= amounts[i]
                    weight -= weights[i]
                    included[i] = False
    return best, best_total


def knapsack_solver(
    groups: Sequence[OutputGroup],
    target: int,
    change_target: int,
    rng: random.Random,
    max_selection_weight: int = MAX_STANDARD_TX_WEIGHT,
) -> SelectionResult:
    """Core's legacy solver: an exact single match wins; groups below target + change_target are
    combined by :func:`approximate_best_subset` (first for the exact target, then for target plus
    change); the smallest group above that (``lowest_larger``) is used when the subset misses
    or is not smaller."""
    pool = list(groups)
    rng.shuffle(pool)
    weight_exceeded = False
    lowest_larger: OutputGroup | None = None
    applicable: list[OutputGroup] = []
    total_lower = 0
    for g in pool:
        if g.weight > max_selection_weight:
            weight_exceeded = True
            continue
        if g.selection_amount == target:
            return SelectionResult.of((g,), target, SelectionAlgorithm.KNAPSACK)
        if g.selection_amount < target + change_target:
            applicable.append(g)
            total_lower += g.selection_amount
        elif lowest_larger is None or g.selection_amount < lowest_larger.selection_amount:
            lowest_larger = g

    def only_larger() -> SelectionResult:
        assert lowest_larger is not None
        return SelectionResult.of((lowest_larger,), target, SelectionAlgorithm.KNAPSACK)

    if total_lower == target:
        if sum(g.weight for g in applicable) <= max_selection_weight:
            return SelectionResult.of(applicable, target, SelectionAlgorithm.KNAPSACK)
        weight_exceeded = True
    if total_lower < target:
        if lowest_larger is None:
            if weight_exceeded:
                raise MaxWeightExceeded
            raise InsufficientFunds
        return only_larger()

    applicable.sort(key=_by_amount_then_waste)
    mask, best = approximate_best_subset(rng, applicable, total_lower, target, max_selection_weight)
    if best != target and total_lower >= target + change_target:
        mask, best = approximate_best_subset(
            rng, applicable, total_lower, target + change_target, max_selection_weight
        )
    if lowest_larger is not None and (
        (best != target and best < target + change_target) or lowest_larger.selection_amount <= best
    ):
        return only_larger()
    chosen = [g for g, take in zip(applicable, mask) if take]
    if sum(g.weight for g in chosen) > max_selection_weight:
        if lowest_larger is None:
            raise MaxWeightExceeded
        return only_larger()
    return SelectionResult.of(chosen, target, SelectionAlgorithm.KNAPSACK)


# --- Choosing among the algorithms -----------------------------------------------------------


def choose_selection_result(
    groups: Groups,
    target: int,
    params: CoinSelectionParams,
    rng: random.Random,
) -> SelectionResult:
    """Run every algorithm that applies and keep the least waste (ties: more inputs).

    BnB is skipped with SFFO (it cannot make change); CoinGrinder runs only above three times
    the long-term feerate. The first error with a message is raised when nothing succeeds."""
    max_weight = MAX_STANDARD_TX_WEIGHT if params.max_tx_weight is None else params.max_tx_weight
    max_selection_weight = max_weight - params.tx_noinputs_size * WITNESS_SCALE_FACTOR
    if max_selection_weight <= 0:
        raise CoinSelectionError(
            "Maximum transaction weight is less than transaction weight without inputs"
        )
    results: list[SelectionResult] = []
    errors: list[CoinSelectionError] = []

    def attempt(run: Callable[[], SelectionResult]) -> None:
        try:
            results.append(run())
        except InsufficientFunds:
            pass
        except CoinSelectionError as e:
            errors.append(e)

    if not params.subtract_fee_outputs:
        attempt(
            lambda: select_coins_bnb(
                groups.positive, target, params.cost_of_change, max_selection_weight
            )
        )
    max_selection_weight -= params.change_output_size * WITNESS_SCALE_FACTOR
    if max_selection_weight < 0 and not results:
        raise CoinSelectionError(
            "Maximum transaction weight is too low, can not accommodate change output"
        )
    attempt(
        lambda: knapsack_solver(
            groups.mixed, target, params.min_change_target, rng, max_selection_weight
        )
    )
    if params.effective_feerate.sat_per_kvb > 3 * params.long_term_feerate.sat_per_kvb:
        attempt(
            lambda: coin_grinder(
                groups.positive, target, params.min_change_target, max_selection_weight
            )
        )
    attempt(
        lambda: select_coins_srd(
            groups.positive, target, params.change_fee, rng, max_selection_weight
        )
    )
    if not results:
        if errors:
            raise errors[0]
        raise InsufficientFunds
    best: SelectionResult | None = None
    for r in results:
        r = r.with_waste(params.min_viable_change, params.cost_of_change, params.change_fee)
        if best is None or r.better_than(best):
            best = r
    assert best is not None
    return best


@dataclass(frozen=True, slots=True)
class SelectionFilter:
    filter: CoinEligibilityFilter
    allow_mixed_output_types: bool = True


def eligibility_filters(
    *,
    spend_zero_conf_change: bool = True,
    include_unsafe: bool = False,
    reject_long_chains: bool = True,
    max_ancestors: int = 25,
    max_descendants: int = 25,
) -> list[SelectionFilter]:
    """Core's filters from strict to permissive: confirmed coins (six confirmations for others'
    first, single output type), then unconfirmed change with ever longer chains, partial
    groups, unsafe coins if allowed, and unlimited chains unless long chains are rejected."""
    anc = max(1, max_ancestors)
    desc = max(1, max_descendants)
    out = [
        SelectionFilter(CoinEligibilityFilter(1, 6, 0), allow_mixed_output_types=False),
        SelectionFilter(CoinEligibilityFilter(1, 1, 0)),
    ]
    if spend_zero_conf_change:
        out.append(SelectionFilter(CoinEligibilityFilter(0, 1, 2)))
        out.append(
            SelectionFilter(CoinEligibilityFilter(0, 1, min(4, anc // 3), min(4, desc // 3)))
        )
        out.append(SelectionFilter(CoinEligibilityFilter(0, 1, anc // 2, desc // 2)))
        out.append(SelectionFilter(CoinEligibilityFilter(0, 1, anc - 1, desc - 1, True)))
        if include_unsafe:
            out.append(SelectionFilter(CoinEligibilityFilter(0, 0, anc - 1, desc - 1, True)))
        if not reject_long_chains:
            unlimited = (1 << 64) - 1
            out.append(SelectionFilter(CoinEligibilityFilter(0, 1, unlimited, unlimited, True)))
    return out


def _chunks(coins: Sequence[Coin], sffo: bool) -> list[list[OutputGroup]]:
    """Coins to the same script and output type, in groups of ``OUTPUT_GROUP_MAX_ENTRIES``."""
    by_script: dict[tuple[str, bytes], list[Coin]] = {}
    for c in coins:
        by_script.setdefault((c.output_type, c.script), []).append(c)
    return [
        [
            OutputGroup(tuple(same[i : i + OUTPUT_GROUP_MAX_ENTRIES]), sffo)
            for i in range(0, len(same), OUTPUT_GROUP_MAX_ENTRIES)
        ]
        for same in by_script.values()
    ]


def group_outputs(
    coins: Sequence[Coin],
    params: CoinSelectionParams,
    filters: Sequence[SelectionFilter],
) -> tuple[dict[CoinEligibilityFilter, dict[str, Groups]], list[OutputGroup]]:
    """Groups per filter and output type, and the groups no filter admits.

    Without avoid-partial-spends each coin is its own group (positive when its selection amount
    is). With it, coins to one script form groups of up to ``OUTPUT_GROUP_MAX_ENTRIES``, built
    once over all coins (for Knapsack) and once over the coins of positive effective value (for
    the others); when a script has several groups its last one counts as partial and is used
    only by filters that include partial groups."""
    sffo = params.subtract_fee_outputs
    building: dict[CoinEligibilityFilter, dict[str, tuple[list[OutputGroup], list[OutputGroup]]]]
    building = {}
    discarded: list[OutputGroup] = []

    def push(group: OutputGroup, partial: bool, positive: bool, mixed: bool) -> bool:
        used = False
        for sf in filters:
            f = sf.filter
            if not group.eligible(f) or (partial and not f.include_partial_groups):
                continue
            used = True
            pos, mix = building.setdefault(f, {}).setdefault(group.coins[0].output_type, ([], []))
            if positive:
                pos.append(group)
            if mixed:
                mix.append(group)
        return used

    if not params.avoid_partial_spends:
        for c in coins:
            g = OutputGroup.single(c, sffo)
            if not push(g, False, g.selection_amount > 0, True):
                discarded.append(g)
    else:
        # Last group first, as Core walks each script's groups backwards.
        for groups in _chunks(coins, sffo):
            for j, g in reversed(list(enumerate(groups))):
                if not push(g, len(groups) > 1 and j == len(groups) - 1, False, True):
                    discarded.append(g)
        for groups in _chunks([c for c in coins if c.effective_value > 0], sffo):
            for j, g in reversed(list(enumerate(groups))):
                push(g, len(groups) > 1 and j == len(groups) - 1, True, False)
    table = {
        f: {kind: Groups(tuple(pos), tuple(mix)) for kind, (pos, mix) in by_type.items()}
        for f, by_type in building.items()
    }
    return table, discarded


def attempt_selection(
    target: int,
    groups_by_type: dict[str, Groups],
    params: CoinSelectionParams,
    rng: random.Random,
    allow_mixed_output_types: bool,
) -> SelectionResult:
    """Fund from one output type if possible (least waste among types), else mix types if
    allowed (Core's ``AttemptSelection``)."""
    results: list[SelectionResult] = []
    for groups in groups_by_type.values():
        # Only "insufficient funds" moves on to the next type; any other error ends the attempt.
        with contextlib.suppress(InsufficientFunds):
            results.append(choose_selection_result(groups, target, params, rng))
    if results:
        best = results[0]
        for r in results[1:]:
            if r.better_than(best):
                best = r
        return best
    if allow_mixed_output_types and len(groups_by_type) > 1:
        mixed = Groups(
            tuple(g for gs in groups_by_type.values() for g in gs.positive),
            tuple(g for gs in groups_by_type.values() for g in gs.mixed),
        )
        return choose_selection_result(mixed, target, params, rng)
    raise InsufficientFunds


def automatic_coin_selection(
    coins: Sequence[Coin],
    target: int,
    params: CoinSelectionParams,
    rng: random.Random,
    filters: Sequence[SelectionFilter] | None = None,
    max_ancestors: int = 25,
    max_descendants: int = 25,
) -> SelectionResult:
    """Walk the eligibility filters from strict to permissive; the first that funds the target
    wins. Raises Core's chain-limit message when only over-long unconfirmed chains would pay."""
    if filters is None:
        filters = eligibility_filters(
            include_unsafe=params.include_unsafe_inputs,
            max_ancestors=max_ancestors,
            max_descendants=max_descendants,
        )
    coins = list(coins)
    if params.avoid_partial_spends and len(coins) > OUTPUT_GROUP_MAX_ENTRIES:
        rng.shuffle(coins)
    table, discarded = group_outputs(coins, params, filters)
    total_discarded = sum(g.selection_amount for g in discarded)
    long_chain = sum(
        g.selection_amount
        for g in discarded
        if g.ancestors >= max_ancestors or g.descendants >= max_descendants
    )
    remaining = sum(c.value for c in coins) - total_discarded
    if remaining < target:
        if remaining + long_chain > target:
            raise CoinSelectionError(
                "Unconfirmed UTXOs are available, but spending them creates a chain of "
                "transactions that will be rejected by the mempool"
            )
        raise InsufficientFunds
    errors: list[CoinSelectionError] = []
    tried: set[tuple[object, ...]] = set()
    for sf in filters:
        by_type = table.get(sf.filter)
        if by_type is None:
            continue
        # A later filter that admits exactly the groups of one already tried poses the same
        # problem again (Core re-runs it; only the random draws would differ): skip it.
        key = (
            sf.allow_mixed_output_types,
            *(
                (kind, tuple(map(id, gs.positive)), tuple(map(id, gs.mixed)))
                for kind, gs in sorted(by_type.items())
            ),
        )
        if key in tried:
            continue
        tried.add(key)
        try:
            return attempt_selection(target, by_type, params, rng, sf.allow_mixed_output_types)
        except InsufficientFunds:
            pass
        except CoinSelectionError as e:
            errors.append(e)
    if errors:
        raise errors[0]
    raise InsufficientFunds


def select_coins(
    coins: Sequence[Coin],
    target: int,
    params: CoinSelectionParams,
    rng: random.Random,
    preset: Sequence[Coin] = (),
    allow_other_inputs: bool = True,
    **kw: object,
) -> SelectionResult:
    """Core's ``SelectCoins``: spend the ``preset`` coins (coin control) first, select the rest
    of ``target`` automatically if allowed, after checking the wallet can pay at all (effective
    values, or raw values with SFFO)."""
    sffo = params.subtract_fee_outputs
    preset_total = sum(c.value if sffo else c.effective_value for c in preset)
    selection_target = target - preset_total
    if not allow_other_inputs and selection_target > 0:
        raise CoinSelectionError(
            "The preselected coins total amount does not cover the transaction target. "
            "Please allow other inputs to be automatically selected or include more coins "
            "manually"
        )
    waste_args = (params.min_viable_change, params.cost_of_change, params.change_fee)
    preset_groups = [OutputGroup.single(c, sffo) for c in preset]
    if selection_target <= 0:
        manual = SelectionResult.of(preset_groups, target, SelectionAlgorithm.MANUAL)
        return manual.with_waste(*waste_args)
    available = sum(c.value if sffo else c.effective_value for c in coins)
    if selection_target > available:
        raise InsufficientFunds
    result = automatic_coin_selection(coins, selection_target, params, rng, **kw)  # type: ignore[arg-type]
    if not preset:
        return result
    both = SelectionResult.of(
        [*(OutputGroup.single(c, sffo) for c in result.inputs), *preset_groups],
        target,
        result.algorithm,
    ).with_waste(*waste_args)
    max_weight = MAX_STANDARD_TX_WEIGHT if params.max_tx_weight is None else params.max_tx_weight
    if both.weight > max_weight - params.tx_noinputs_size * WITNESS_SCALE_FACTOR:
        raise CoinSelectionError(
            "The combination of the pre-selected inputs and the wallet automatic inputs "
            "selection exceeds the transaction maximum weight. Please try sending a smaller "
            "amount or manually consolidating your wallet's UTXOs"
        )
    return both


def check_max_tx_fee(fee: int, max_tx_fee: int) -> None:
    """Refuse a transaction whose fee is above the ``-maxtxfee`` cap."""
    if fee > max_tx_fee:
        raise MaxFeeExceeded
