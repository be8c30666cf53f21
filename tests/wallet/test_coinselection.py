"""Coin selection against Bitcoin Core's unit-test figures (BnB windows and the tries limit,
CoinGrinder's table with its attempt counts, SRD, waste), Knapsack behaviours, the choice among
algorithms, eligibility filters, and properties of every result."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.mempool.policy import MAX_STANDARD_TX_WEIGHT
from peercash.wallet.coinselection import (
    CHANGE_LOWER,
    Coin,
    CoinEligibilityFilter,
    CoinSelectionError,
    CoinSelectionParams,
    FeeRate,
    Groups,
    InsufficientFunds,
    MaxFeeExceeded,
    MaxWeightExceeded,
    OutputGroup,
    SelectionAlgorithm,
    SelectionResult,
    automatic_coin_selection,
    check_max_tx_fee,
    choose_selection_result,
    coin_grinder,
    eligibility_filters,
    generate_change_target,
    group_outputs,
    knapsack_solver,
    select_coins,
    select_coins_bnb,
    select_coins_srd,
)

DATA = json.loads(
    (
        Path(__file__).resolve().parents[1]
        / "data"
        / "core"
        / "coinselection"
        / "coinselection_cases.json"
    ).read_text()
)
CENT = 1_000_000
COIN = 100_000_000
_ids = itertools.count()


def coin(value: int, vbytes: int = 68, rate: int = 0, long_rate: int = 0, **kw: object) -> Coin:
    """A coin of raw ``value`` priced at ``rate``/``long_rate`` sat/kvB."""
    return Coin.priced(next(_ids), value, vbytes, FeeRate(rate), FeeRate(long_rate), **kw)


def group(
    value: int, vbytes: int = 68, rate: int = 0, long_rate: int = 0, **kw: object
) -> OutputGroup:
    return OutputGroup.single(coin(value, vbytes, rate, long_rate, **kw))


def eff_group(eff: int, rate: int, long_rate: int, vbytes: int = 68) -> OutputGroup:
    """A group whose *effective* value is ``eff`` (Core's ``MakeCoin``)."""
    return group(eff + FeeRate(rate).fee(vbytes), vbytes, rate, long_rate)


def values(result: SelectionResult) -> list[int]:
    return sorted(c.value for c in result.inputs)


# --- Branch and Bound (coinselection_tests.cpp) ----------------------------------------------

BNB = DATA["bnb"]
COST_OF_CHANGE = BNB["params"]["cost_of_change"]
LONG = BNB["params"]["long_term_feerate"]


def test_bnb_params_figures() -> None:
    p = BNB["params"]
    assert FeeRate(p["effective_feerate"]).fee(p["change_output_size"]) == p["change_fee"] == 155
    assert FeeRate(p["discard_feerate"]).fee(p["change_spend_size"]) == p["min_viable_change"]
    assert p["min_viable_change"] + p["change_fee"] == COST_OF_CHANGE == 359


@pytest.mark.parametrize("rate", BNB["feerates"])
def test_bnb_cases(rate: int) -> None:
    checked = 0
    with pytest.raises(InsufficientFunds):
        select_coins_bnb([], CENT, COST_OF_CHANGE)
    pool = [eff_group(v, rate, LONG) for v in BNB["pool"]]
    for title, target, expected in BNB["success"]:
        got = select_coins_bnb(pool, target, COST_OF_CHANGE)
        want = sorted(v + FeeRate(rate).fee(68) for v in expected)
        assert values(got) == want, title
        assert got.algorithm is SelectionAlgorithm.BNB
        checked += 1
    for _title, target, _ in BNB["fail"][1:]:
        with pytest.raises(InsufficientFunds):
            select_coins_bnb(pool, target, COST_OF_CHANGE)
        checked += 1
    assert checked == 10


def test_bnb_skips_equivalent_clones() -> None:
    c = BNB["clones"]
    for rate in (0, 5000, 1_500_000):
        pool = [eff_group(v, rate, LONG) for v in c["pool"]]
        count, amount = c["duplicates"]
        clone = eff_group(amount, rate, LONG)
        pool += [
            OutputGroup.single(
                Coin.priced(next(_ids), clone.value, 68, FeeRate(rate), FeeRate(LONG))
            )
            for _ in range(count)
        ]
        got = select_coins_bnb(pool, c["target"], COST_OF_CHANGE)
        assert values(got) == sorted(v + FeeRate(rate).fee(68) for v in c["expected"])


@pytest.mark.parametrize("rate", [0, 5000, 1_500_000])
def test_bnb_tries_limit(rate: int) -> None:
    d = BNB["doppelgangers"]
    small = d["small"]
    large = [d["large_base"] + i for i in d["large_offsets_17"]]
    pool = [eff_group(v, rate, LONG) for v in small + large]
    assert len(pool) == 17
    got = select_coins_bnb(pool, d["target"], COST_OF_CHANGE)
    assert values(got) == sorted(v + FeeRate(rate).fee(68) for v in small)
    pool.append(eff_group(d["large_base"] + d["extra_offset_18"], rate, LONG))
    with pytest.raises(InsufficientFunds):
        select_coins_bnb(pool, d["target"], COST_OF_CHANGE)


def test_bnb_feerate_sensitivity() -> None:
    checked = 0
    for title, rate, specs, target, expected in BNB["feerate_sensitivity"]:
        pool = [eff_group(v, rate, LONG, vb) for v, vb in specs]
        got = select_coins_bnb(pool, target, COST_OF_CHANGE)
        assert sorted(c.effective_value for c in got.inputs) == sorted(expected), title
        checked += 1
    assert checked == 4


def test_bnb_max_weight() -> None:
    m = BNB["max_weight"]
    rate = m["effective_feerate"]

    def sffo(value: int, vbytes: int = 68) -> OutputGroup:
        return OutputGroup.single(coin(value, vbytes, rate), subtract_fee_outputs=True)

    pool = [sffo(v, m["heavy_vbytes"] if v == m["heavy_value"] else 68) for v in m["values"]]
    with pytest.raises(MaxWeightExceeded) as e:
        select_coins_bnb(pool, m["target"], 0)
    assert str(e.value).startswith("The inputs size exceeds the maximum weight. Please try")
    pool.append(sffo(m["heavy_value"]))
    got = select_coins_bnb(pool, m["target"], 0)
    assert values(got) == sorted(m["expected_after_light_5"])
    assert got.weight == 3 * 272


def test_bnb_result_waste_is_its_search_waste() -> None:
    pool = [eff_group(v, 25_000, LONG) for v in (2 * CENT, 3 * CENT, 5 * CENT)]
    got = select_coins_bnb(pool, 5 * CENT, COST_OF_CHANGE)
    # One input: fee 1700 − long-term fee 680 = 1020, exact match: no excess.
    assert got.waste == 1020


# --- CoinGrinder (coinselector_tests.cpp coin_grinder_tests) -----------------------------------

CG = DATA["coin_grinder"]


def _cg_pool(case: dict[str, Any]) -> list[OutputGroup]:
    p = CG["params"]
    pool = []
    if isinstance(case["coins"], str):  # case 5: heavy, medium, light per step
        for j in range(5):
            for base, vb in ((3, 350), (2, 250), (1, 150)):
                pool.append(group((base + 3 * j) * COIN, vb, 5000, p["long_term_feerate"]))
        return pool
    for count, value, vb, rate, step in case["coins"]:
        for j in range(count):
            pool.append(group(value + j * step, vb, rate, p["long_term_feerate"]))
    return pool


@pytest.mark.parametrize("case", CG["cases"], ids=[c["name"] for c in CG["cases"]])
def test_coin_grinder_table(case: dict[str, Any]) -> None:
    pool = _cg_pool(case)
    change_target = CG["params"]["min_change_target"]
    if case.get("error") == "insufficient":
        with pytest.raises(InsufficientFunds):
            coin_grinder(pool, case["target"], change_target, case["max_weight"])
        return
    if case.get("error") == "max_weight":
        with pytest.raises(MaxWeightExceeded):
            coin_grinder(pool, case["target"], change_target, case["max_weight"])
        return
    got = coin_grinder(pool, case["target"], change_target, case["max_weight"])
    expected = sorted(v for n, v in case["expected"] for _ in range(n))
    assert values(got) == expected
    assert got.evaluated == case["attempts"]
    assert got.completed
    assert got.algorithm is SelectionAlgorithm.CG


def test_coin_grinder_table_size() -> None:
    assert len(CG["cases"]) == 7


# --- Single Random Draw ----------------------------------------------------------------------


@pytest.mark.parametrize("case", DATA["srd"]["cases"], ids=lambda c: c["name"])
def test_srd_table(case: dict[str, Any]) -> None:
    pool = [group(v, vb) for n, v, vb in case["coins"] for _ in range(n)]
    rng = random.Random(7)
    if case["error"] == "insufficient":
        with pytest.raises(InsufficientFunds):
            select_coins_srd(pool, case["target"], 0, rng, case["max_weight"])
    elif case["error"] == "max_weight":
        with pytest.raises(MaxWeightExceeded):
            select_coins_srd(pool, case["target"], 0, rng, case["max_weight"])
    else:
        for seed in range(20):
            got = select_coins_srd(pool, case["target"], 0, random.Random(seed), case["max_weight"])
            assert got.weight <= case["max_weight"]
            assert got.selected_effective_value >= case["target"] + CHANGE_LOWER


def test_srd_is_reproducible_with_the_same_seed() -> None:
    pool = [group(v * 10_000) for v in range(1, 60)]
    a = select_coins_srd(pool, 900_000, 155, random.Random(42))
    b = select_coins_srd(pool, 900_000, 155, random.Random(42))
    assert [c.outpoint for c in a.inputs] == [c.outpoint for c in b.inputs]


# --- Knapsack --------------------------------------------------------------------------------


def kn(vals: list[int], target: int, change: int, seed: int = 1) -> list[int]:
    pool = [group(v) for v in vals]
    return values(knapsack_solver(pool, target, change, random.Random(seed)))


def test_knapsack_behaviours() -> None:
    c = CENT
    # A single exact match wins.
    assert kn([1 * c, 2 * c, 5 * c, 10 * c], 5 * c, c) == [5 * c]
    # The smaller coins add up exactly: take them all.
    assert kn([1 * c, 2 * c, 5 * c, 20 * c], 8 * c, 0) == [1 * c, 2 * c, 5 * c]
    # Not enough below the target: the lowest larger coin.
    assert kn([1 * c, 2 * c, 30 * c, 20 * c], 4 * c, c) == [20 * c]
    # Subset sum finds the unique exact combination.
    for seed in range(5):
        assert kn([1 * c, 2 * c, 5 * c, 10 * c, 20 * c], 13 * c, 0, seed) == [1 * c, 2 * c, 10 * c]
    # {2, 9} reaches target + change exactly; a 12 CENT coin is not closer.
    assert kn([2 * c, 3 * c, 4 * c, 9 * c, 12 * c], 10 * c, c) == [2 * c, 9 * c]
    # lowest_larger at or below the subset's total is preferred.
    assert kn([2 * c, 3 * c, 4 * c, 9 * c, 11 * c], 10 * c, c) == [11 * c]
    # Subset misses target + change (13 < 14): the lowest larger coin.
    assert kn([6 * c, 7 * c, 20 * c], 12 * c, 2 * c) == [20 * c]
    assert kn([6 * c, 7 * c, 20 * c], 12 * c, 1 * c) == [6 * c, 7 * c]


KN = DATA["knapsack"]


@pytest.mark.parametrize("seed", range(8))
def test_knapsack_core_script(seed: int) -> None:
    """Core's knapsack_solver_test: coins are added step by step and each check filters them
    (Core's ``filter_standard`` etc.) and runs the solver with a 1 CENT change target."""
    rng = random.Random(seed)
    filters = {k: CoinEligibilityFilter(*v) for k, v in KN["filters"].items()}
    coins: list[Coin] = []
    checked = 0
    for op in KN["ops"]:
        if "clear" in op:
            coins = []
        elif "add" in op:
            coins += [coin(v, depth=depth, from_me=me) for v, depth, me in op["add"]]
        else:
            name, target, want_value, want_count, ok = op["check"]
            pool = [g for g in map(OutputGroup.single, coins) if g.eligible(filters[name])]
            if not ok:
                with pytest.raises(InsufficientFunds):
                    knapsack_solver(pool, target, KN["change_target"], rng)
            else:
                got = knapsack_solver(pool, target, KN["change_target"], rng)
                assert got.selected_value == want_value, op
                if want_count is not None:
                    assert len(got.inputs) == want_count, op
            checked += 1
    assert checked == 29


@pytest.mark.parametrize("amount", KN["many_inputs"]["amounts"])
def test_knapsack_many_inputs(amount: int) -> None:
    m = KN["many_inputs"]
    pool = [group(amount) for _ in range(m["count"])]
    got = knapsack_solver(pool, m["target"], CENT, random.Random(amount))
    if amount - m["target"] < CENT:
        size = -(-(m["target"] + CENT) // amount)
        assert (got.selected_value, len(got.inputs)) == (amount * size, size)
    else:
        assert (got.selected_value, len(got.inputs)) == (amount, 1)


def test_knapsack_draws_differ_between_runs() -> None:
    """Picking 50 of 100 equal coins depends on the random draws: two runs differ."""
    pool = [group(COIN) for _ in range(100)]
    rng = random.Random(11)
    a = knapsack_solver(pool, 50 * COIN, CENT, rng)
    b = knapsack_solver(pool, 50 * COIN, CENT, rng)
    assert a.selected_value == b.selected_value == 50 * COIN
    assert {c.outpoint for c in a.inputs} != {c.outpoint for c in b.inputs}


def test_knapsack_errors() -> None:
    with pytest.raises(InsufficientFunds):
        knapsack_solver([group(CENT)], 2 * CENT, 0, random.Random(0))
    with pytest.raises(MaxWeightExceeded):
        knapsack_solver([group(3 * CENT, 5000)], 2 * CENT, 0, random.Random(0), 10_000)


# --- Waste, change, effective value (coinselector_tests.cpp) ---------------------------------

W = DATA["waste"]


def _waste_selection(
    fee: int, ltf: int, target: int, bumps: Sequence[int] = (0, 0)
) -> SelectionResult:
    coins = [
        Coin(next(_ids), v, 148, fee=fee + b, long_term_fee=ltf, ancestor_bump_fee=b)
        for v, b in zip(W["in_values"], bumps)
    ]
    return SelectionResult.of(
        [OutputGroup.single(c) for c in coins], target, SelectionAlgorithm.MANUAL
    )


def test_waste_table() -> None:
    exact = sum(W["in_values"]) - 2 * W["fee"]
    targets = {
        "target": W["target"],
        "exact": exact,
        "exact-excess": exact - W["excess"],
        "exact-2diff": exact - 2 * W["fee_diff"],
    }
    for name, fee, ltf, target, change_cost, expected in W["cases"]:
        sel = _waste_selection(fee, ltf, targets[target])
        cost = W["change_cost"] if change_cost is None else change_cost
        assert sel.compute_waste(W["min_viable_change"], cost, W["change_fee"]) == expected, name
    assert len(W["cases"]) == 11


def test_bump_fee_waste() -> None:
    b = W["bump_fee"]
    args = (b["min_viable_change"], b["change_cost"], b["change_fee"])
    sel = _waste_selection(b["fee"], b["long_term_fee"], b["target"], b["bumps"])
    assert sel.total_bump_fees == 60
    assert sel.compute_waste(*args) == b["expected"]
    sel = SelectionResult(**{**_fields(sel), "bump_fee_discount": b["discount"]})
    assert sel.compute_waste(*args) == b["expected_discounted"]
    assert sel.total_bump_fees == 30
    sel = _waste_selection(b["fee"], b["long_term_fee"], b["changeless_target"], b["bumps"])
    assert sel.compute_waste(*args) == b["expected_changeless"]
    sel = SelectionResult(**{**_fields(sel), "bump_fee_discount": b["discount"]})
    assert sel.compute_waste(*args) == b["expected_changeless_discounted"]


def _fields(r: SelectionResult) -> dict[str, Any]:
    return {f: getattr(r, f) for f in r.__dataclass_fields__}


def test_effective_value() -> None:
    e = DATA["effective_value"]
    for rate, vbytes, expected in e["cases"]:
        assert Coin.priced(0, e["value"], vbytes, FeeRate(rate)).effective_value == expected
    assert Coin(0, e["value"], -1).weight == 0


def test_change_and_dust() -> None:
    sel = _waste_selection(100, 100, 2 * COIN)
    assert sel.change(300, 30) == 1 * COIN - 200 - 30
    near = _waste_selection(100, 100, 3 * COIN - 200 - 329)
    assert near.change(300, 30) == 0  # 299 sat of change is below 300: given to fees
    assert _waste_selection(100, 100, 3 * COIN - 200 - 330).change(300, 30) == 300


def test_feerate_rounds_up() -> None:
    assert FeeRate(1000).fee(148) == 148
    assert FeeRate(1).fee(68) == 1
    assert FeeRate(1500).fee(3) == 5
    assert FeeRate(0).fee(100) == 0
    assert FeeRate.from_sat_per_vb(10) == FeeRate(10_000)


def test_generate_change_target() -> None:
    rng = random.Random(3)
    assert generate_change_target(25_000, 155, rng) == 155 + 50_000
    for payment in (25_001, 100_000, 10 * COIN):
        upper = min(2 * payment, 1_000_000)
        for _ in range(200):
            t = generate_change_target(payment, 155, rng) - 155
            assert 50_000 <= t < upper


def test_params_for_transaction() -> None:
    p = CoinSelectionParams.for_transaction(
        change_output_size=31,
        change_spend_size=68,
        effective_feerate=FeeRate(5000),
        payment_value=20_000,
        rng=random.Random(0),
        discard_feerate=FeeRate(3000),
    )
    assert p.change_fee == 155
    assert p.cost_of_change == 204 + 155
    # Dust of a P2WPKH change output at 3 sat/vB: (31 + 67) × 3 = 294 > 205.
    assert p.min_viable_change == 294
    assert p.min_change_target == 50_155
    assert p.long_term_feerate == FeeRate(10_000)


# --- Choosing among the algorithms -----------------------------------------------------------


def params(rate: int, long_rate: int = 10_000, **kw: object) -> CoinSelectionParams:
    return CoinSelectionParams(
        change_output_size=31,
        change_spend_size=68,
        min_change_target=kw.pop("min_change_target", 50_000),  # type: ignore[arg-type]
        effective_feerate=FeeRate(rate),
        long_term_feerate=FeeRate(long_rate),
        discard_feerate=FeeRate(3000),
        tx_noinputs_size=42,
        change_fee=FeeRate(rate).fee(31),
        cost_of_change=FeeRate(3000).fee(68) + FeeRate(rate).fee(31),
        min_viable_change=FeeRate(3000).fee(68),
        **kw,  # type: ignore[arg-type]
    )


def test_choose_prefers_changeless_bnb() -> None:
    p = params(5000)
    pool = tuple(eff_group(v, 5000, 10_000) for v in (1 * CENT, 3 * CENT, 5 * CENT, 20 * CENT))
    got = choose_selection_result(Groups(pool, pool), 4 * CENT, p, random.Random(1))
    assert got.algorithm is SelectionAlgorithm.BNB
    assert sorted(c.effective_value for c in got.inputs) == [1 * CENT, 3 * CENT]
    assert got.change(p.min_viable_change, p.change_fee) == 0
    # Two inputs at 340 sat each against 680 long-term: waste −680, exact match.
    assert got.waste == -680


def test_choose_runs_coin_grinder_only_above_three_times_long_term() -> None:
    pool = tuple(
        group(v, vb, 40_000, 10_000) for v, vb in ((5 * COIN, 300), (3 * COIN, 68), (3 * COIN, 68))
    )
    seen = set()
    for seed in range(30):
        r = choose_selection_result(
            Groups(pool, pool), 4 * COIN, params(40_000), random.Random(seed)
        )
        seen.add(r.algorithm)
    # The two light coins win over the heavy one: CoinGrinder (or SRD/Knapsack finding the same).
    assert SelectionAlgorithm.CG in seen
    for seed in range(30):
        r = choose_selection_result(
            Groups(pool, pool), 4 * COIN, params(30_000), random.Random(seed)
        )
        assert r.algorithm is not SelectionAlgorithm.CG


def test_choose_ties_go_to_more_inputs() -> None:
    a = SelectionResult((coin(1),), 0, SelectionAlgorithm.SRD, waste=5)
    b = SelectionResult((coin(1), coin(2)), 0, SelectionAlgorithm.KNAPSACK, waste=5)
    assert b.better_than(a) and not a.better_than(b)
    c = SelectionResult((coin(1),), 0, SelectionAlgorithm.BNB, waste=4)
    assert c.better_than(b)


def test_choose_sffo_skips_bnb() -> None:
    p = params(5000, subtract_fee_outputs=True)
    pool = tuple(
        OutputGroup.single(coin(v, 68, 5000, 10_000), True) for v in (1 * CENT, 3 * CENT, 5 * CENT)
    )
    for seed in range(10):
        got = choose_selection_result(Groups(pool, pool), 4 * CENT, p, random.Random(seed))
        assert got.algorithm is not SelectionAlgorithm.BNB
        assert not got.use_effective


def test_choose_weight_errors() -> None:
    pool = (group(CENT),)
    with pytest.raises(CoinSelectionError, match=r"^Maximum transaction weight is less than"):
        choose_selection_result(
            Groups(pool, pool), CENT, params(0, max_tx_weight=168), random.Random(0)
        )
    with pytest.raises(
        CoinSelectionError,
        match=r"^Maximum transaction weight is too low, can not accommodate change output$",
    ):
        choose_selection_result(
            Groups(pool, pool), 2 * CENT, params(0, max_tx_weight=200), random.Random(0)
        )


def test_max_selection_weight_scenarios() -> None:
    """Core's check_max_selection_weight, scenarios 1 and 3 (feerate 0)."""
    p = params(0, long_rate=0, min_change_target=CENT)
    p = CoinSelectionParams(
        **{
            **{f: getattr(p, f) for f in p.__dataclass_fields__},
            "tx_noinputs_size": 44,
            "change_output_size": 34,
        }
    )
    target = 4_950_000_000
    small = [coin(3_300_000) for _ in range(1515)]
    got = select_coins([*small, coin(50 * COIN)], target, p, random.Random(5))
    assert 50 * COIN in {c.value for c in got.inputs}
    assert got.weight <= MAX_STANDARD_TX_WEIGHT - 4 * (44 + 34)
    with pytest.raises(CoinSelectionError):
        select_coins(small, target, p, random.Random(5))


# --- Eligibility -----------------------------------------------------------------------------


def test_eligibility_filters_order() -> None:
    fs = eligibility_filters(include_unsafe=True, reject_long_chains=False)
    got = [(f.filter.conf_mine, f.filter.conf_theirs, f.filter.max_ancestors) for f in fs]
    assert got[:6] == [(1, 6, 0), (1, 1, 0), (0, 1, 2), (0, 1, 4), (0, 1, 12), (0, 1, 24)]
    assert got[6] == (0, 0, 24)
    assert got[7][2] == (1 << 64) - 1
    assert not fs[0].allow_mixed_output_types and fs[1].allow_mixed_output_types
    assert len(eligibility_filters()) == 6
    assert len(eligibility_filters(spend_zero_conf_change=False)) == 2


def test_group_eligibility() -> None:
    f = CoinEligibilityFilter(1, 6, 0)
    assert group(CENT, depth=6).eligible(f)
    assert not group(CENT, depth=5).eligible(f)
    assert group(CENT, depth=1, from_me=True).eligible(f)
    assert not group(CENT, depth=0, from_me=True).eligible(f)
    assert not group(CENT, depth=6, ancestors=1).eligible(f)


def test_automatic_selection_relaxes_filters() -> None:
    p = params(1000)
    rng = random.Random(0)
    # Only a 3-confirmation coin from others: needs the (1, 1, 0) filter.
    got = automatic_coin_selection([coin(CENT, depth=3)], CENT // 2, p, rng)
    assert len(got.inputs) == 1
    # Unconfirmed change with one ancestor: needs a zero-conf filter.
    got = automatic_coin_selection(
        [coin(CENT, depth=0, from_me=True, ancestors=1)], CENT // 2, p, rng
    )
    assert len(got.inputs) == 1
    # Unconfirmed coins from others are never spent (unsafe).
    with pytest.raises(InsufficientFunds, match=r"^Insufficient funds$"):
        automatic_coin_selection([coin(CENT, depth=0)], CENT // 2, p, rng)
    # Too long an unconfirmed chain: Core's mempool-chain message.
    with pytest.raises(CoinSelectionError, match=r"^Unconfirmed UTXOs are available, but spending"):
        automatic_coin_selection(
            [coin(CENT, depth=0, from_me=True, ancestors=30)], CENT // 2, p, rng
        )


def test_avoid_partial_spends_spends_whole_groups() -> None:
    p = params(1000, avoid_partial_spends=True)
    coins = [coin(CENT, script=b"a") for _ in range(3)] + [coin(10 * CENT, script=b"b")]
    got = automatic_coin_selection(coins, CENT // 2, p, random.Random(0))
    scripts = [c.script for c in got.inputs]
    assert scripts in ([b"a"] * 3, [b"b"])


def test_avoid_partial_spends_uses_the_partial_group_last() -> None:
    p = params(0, long_rate=0, avoid_partial_spends=True)
    coins = [coin(CENT, script=b"a") for _ in range(150)]
    fs = eligibility_filters()
    table, discarded = group_outputs(coins, p, fs)
    strict = table[fs[0].filter][""]
    assert [len(g.coins) for g in strict.mixed] == [100]  # the partial 50 is held back
    assert [len(g.coins) for g in table[fs[5].filter][""].mixed] == [50, 100]
    assert discarded == []
    assert len(automatic_coin_selection(coins, 90 * CENT, p, random.Random(0)).inputs) == 100
    assert len(automatic_coin_selection(coins, 120 * CENT, p, random.Random(0)).inputs) == 150


def test_output_types_are_not_mixed_while_one_type_suffices() -> None:
    p = params(0, long_rate=0)
    coins = [coin(CENT, output_type="bech32") for _ in range(2)]
    coins.append(coin(5 * CENT, output_type="bech32m"))
    for seed in range(10):
        got = automatic_coin_selection(coins, CENT + CENT // 2, p, random.Random(seed))
        assert len({c.output_type for c in got.inputs}) == 1
    got = automatic_coin_selection(coins, 6 * CENT, p, random.Random(0))
    assert {c.output_type for c in got.inputs} == {"bech32", "bech32m"}


def test_select_coins_checks_balance_first() -> None:
    p = params(5000)
    with pytest.raises(InsufficientFunds):
        select_coins([coin(1000, 68, 5000)], 1000, p, random.Random(0))


def _bnb_search_params() -> CoinSelectionParams:
    # coinselector_tests.cpp bnb_search_test: change fee and cost of change set at 3 sat/vB,
    # then the feerates moved to 5 (effective) and 3 (long-term) sat/vB.
    return CoinSelectionParams(
        change_output_size=31,
        change_spend_size=68,
        min_change_target=0,
        effective_feerate=FeeRate(5000),
        long_term_feerate=FeeRate(3000),
        discard_feerate=FeeRate(1000),
        change_fee=93,
        cost_of_change=204 + 93,
        min_viable_change=204,
    )


def test_preset_input_is_kept_even_if_disadvantageous() -> None:
    p = _bnb_search_params()
    fee = FeeRate(5000).fee(68)
    ten, nine, one = (p.priced(next(_ids), v * CENT + fee, 68) for v in (10, 9, 1))
    got = select_coins([ten, one], 10 * CENT, p, random.Random(0), preset=[nine])
    assert values(got) == [1 * CENT + fee, 9 * CENT + fee]
    assert got.target == 10 * CENT
    assert got.waste == 2 * (fee - FeeRate(3000).fee(68))


def test_preset_only() -> None:
    p = _bnb_search_params()
    nine = p.priced(next(_ids), 9 * CENT, 68)
    got = select_coins([], 5 * CENT, p, random.Random(0), preset=[nine])
    assert got.algorithm is SelectionAlgorithm.MANUAL and values(got) == [9 * CENT]


def test_preset_effective_value_must_cover_target() -> None:
    """Core's SelectCoins_effective_value_test: value above target, effective value below."""
    p = CoinSelectionParams(
        change_output_size=34,
        change_spend_size=148,
        min_change_target=1000,
        effective_feerate=FeeRate(3000),
        long_term_feerate=FeeRate(1000),
        discard_feerate=FeeRate(1000),
    )
    c = p.priced(next(_ids), 100_000, 37)  # input weight 148 WU
    assert c.effective_value < 99_900 < c.value
    with pytest.raises(CoinSelectionError, match=r"^The preselected coins total amount does not"):
        select_coins([], 99_900, p, random.Random(0), preset=[c], allow_other_inputs=False)


def test_max_tx_fee() -> None:
    check_max_tx_fee(10_000_000, 10_000_000)
    with pytest.raises(
        MaxFeeExceeded,
        match=r"^Fee exceeds maximum configured by user \(e\.g\. -maxtxfee, maxfeerate\)$",
    ):
        check_max_tx_fee(10_000_001, 10_000_000)


# --- Properties ------------------------------------------------------------------------------

amounts = st.lists(st.integers(1_000, 5 * COIN), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    amounts, st.integers(1, 10 * COIN), st.sampled_from([1000, 5000, 30_000]), st.integers(0, 2**32)
)
def test_property_choose_covers_target(vals: list[int], target: int, rate: int, seed: int) -> None:
    p = params(rate)
    pool = tuple(g for g in (group(v, 68, rate, 10_000) for v in vals) if g.selection_amount > 0)
    try:
        got = choose_selection_result(Groups(pool, pool), target, p, random.Random(seed))
    except InsufficientFunds:
        assert sum(g.selection_amount for g in pool) < target + CHANGE_LOWER + p.change_fee
        return
    assert got.selected_effective_value >= target
    change = got.change(p.min_viable_change, p.change_fee)
    assert change == 0 or change >= p.min_viable_change
    assert got.waste == got.compute_waste(p.min_viable_change, p.cost_of_change, p.change_fee)


@settings(max_examples=80, deadline=None)
@given(amounts, st.integers(1, 10 * COIN), st.integers(0, 2_000))
def test_property_bnb_window(vals: list[int], target: int, cost: int) -> None:
    pool = [group(v) for v in vals]
    try:
        got = select_coins_bnb(pool, target, cost)
    except InsufficientFunds:
        # No subset lies in the window (the pools are small: check them all).
        for r in range(1, len(vals) + 1):
            for combo in itertools.combinations(vals, r):
                assert not target <= sum(combo) <= target + cost
        return
    assert target <= got.selected_effective_value <= target + cost
    assert got.change(cost, 0) in (0, cost)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1_000, COIN), st.integers(40, 300)), min_size=1, max_size=10),
    st.integers(1, 3 * COIN),
)
def test_property_coin_grinder_is_lightest(specs: list[tuple[int, int]], target: int) -> None:
    pool = [group(v, vb) for v, vb in specs]
    change = 50_000
    lightest = None
    for r in range(1, len(pool) + 1):
        for combo in itertools.combinations(pool, r):
            if sum(g.selection_amount for g in combo) >= target + change:
                w = sum(g.weight for g in combo)
                lightest = w if lightest is None else min(lightest, w)
    if lightest is None:
        with pytest.raises(InsufficientFunds):
            coin_grinder(pool, target, change)
        return
    got = coin_grinder(pool, target, change)
    assert got.weight == lightest
    assert got.selected_effective_value >= target + change


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(20_000, 3 * CENT), st.integers(40, 200)), min_size=1, max_size=9
    ),
    st.integers(1, 10 * CENT),
    st.sampled_from([10_000, 25_000, 80_000]),
)
def test_property_bnb_least_waste_at_high_feerates(
    specs: list[tuple[int, int]], target: int, rate: int
) -> None:
    """With fees at or above the long-term rate, BnB's pick has the least waste of every input
    set in the window (checked by brute force)."""
    pool = [g for g in (group(v, vb, rate, 10_000) for v, vb in specs) if g.selection_amount > 0]
    cost = 359
    best = None
    for r in range(1, len(pool) + 1):
        for combo in itertools.combinations(pool, r):
            total = sum(g.selection_amount for g in combo)
            if target <= total <= target + cost:
                w = sum(g.fee - g.long_term_fee for g in combo) + total - target
                best = w if best is None else min(best, w)
    if best is None:
        with pytest.raises(InsufficientFunds):
            select_coins_bnb(pool, target, cost)
        return
    assert select_coins_bnb(pool, target, cost).waste == best


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1_000, COIN), min_size=1, max_size=30), st.integers(0, 3))
def test_property_avoid_partial_with_distinct_scripts_is_per_coin(vals: list[int], d: int) -> None:
    """Grouping by script when every coin has its own script gives the per-coin groups."""
    coins = [coin(v, 68, 5000, depth=d, script=i.to_bytes(2, "big")) for i, v in enumerate(vals)]
    fs = eligibility_filters()
    plain, plain_dropped = group_outputs(coins, params(5000), fs)
    grouped, grouped_dropped = group_outputs(coins, params(5000, avoid_partial_spends=True), fs)

    def shape(table: dict[CoinEligibilityFilter, dict[str, Groups]]) -> dict[object, object]:
        return {
            f: {
                k: (
                    sorted(id(c) for g in gs.positive for c in g.coins),
                    sorted(id(c) for g in gs.mixed for c in g.coins),
                )
                for k, gs in t.items()
            }
            for f, t in table.items()
        }

    assert shape(plain) == shape(grouped)
    assert [g.coins for g in plain_dropped] == [g.coins for g in grouped_dropped]
