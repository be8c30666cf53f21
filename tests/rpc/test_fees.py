"""``estimatesmartfee`` and ``estimaterawfee`` as the RPC layer serves them: parameters bound from
JSON as the server binds them, Core's errors and codes, the pool's minimums applied."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import pytest

from peercash.mempool.fees import INVALID_ESTIMATE_MODE, BlockPolicyEstimator
from peercash.mempool.pool import MemPool
from peercash.rpc import methods  # noqa: F401  (registers everything)
from peercash.rpc.registry import REGISTRY, RpcError, bind_params

NO_DATA = "Insufficient data or no feerate found"


@dataclass
class Node:
    fee_estimator: Any = None
    mempool: Any = None


def history() -> BlockPolicyEstimator:
    """40 blocks, each confirming 3 transactions at 40 sat/vB sent one block before, 3 at
    12 sat/vB sent three blocks before and 3 at 3 sat/vB sent eight blocks before."""
    est = BlockPolicyEstimator()
    est.process_block(100, [])
    due: dict[int, list[bytes]] = {}
    n = 0
    for tip in range(100, 140):
        for rate, wait in ((40_000, 1), (12_000, 3), (3_000, 8)):
            for _ in range(3):
                n += 1
                txid = n.to_bytes(32, "big")
                assert est.process_transaction(txid, rate, tip)
                due.setdefault(tip + wait, []).append(txid)
        est.process_block(tip + 1, due.pop(tip + 1, []))
    return est


def pool(min_relay_fee: int = 100) -> MemPool:
    return MemPool(cast(Any, None), min_relay_fee=min_relay_fee)


def call(node: Node, method: str, *params: Any) -> Any:
    m = REGISTRY.methods[method]
    return m.func(node, *bind_params(m, list(params)))


def error(node: Node, method: str, *params: Any) -> tuple[int, str]:
    with pytest.raises(RpcError) as info:
        call(node, method, *params)
    return info.value.code, info.value.message


def test_registration_follows_core() -> None:
    smart, raw = REGISTRY.methods["estimatesmartfee"], REGISTRY.methods["estimaterawfee"]
    assert (smart.category, raw.category) == ("util", "hidden")
    assert [(p.name, p.required, None if p.required else p.default) for p in smart.params] == [
        ("conf_target", True, None),
        ("estimate_mode", False, "economical"),
    ]
    assert [(p.name, p.required, None if p.required else p.default) for p in raw.params] == [
        ("conf_target", True, None),
        ("threshold", False, 0.95),
    ]
    assert smart.lock and raw.lock


def test_smart_fee_modes_and_targets() -> None:
    node = Node(history(), pool())
    assert call(node, "estimatesmartfee", 1) == {"feerate": Decimal("0.00040000"), "blocks": 2}
    assert call(node, "estimatesmartfee", 8) == {"feerate": Decimal("0.00012000"), "blocks": 8}
    assert call(node, "estimatesmartfee", 16) == {"feerate": Decimal("0.00003000"), "blocks": 16}
    # Targets beyond half the data span (from the first confirmation, 39 blocks) are answered
    # for the highest one it has.
    assert call(node, "estimatesmartfee", 1008) == {"feerate": Decimal("0.00003000"), "blocks": 19}
    for mode in ("unset", "economical", "ECONOMICAL", "Economical"):
        assert call(node, "estimatesmartfee", 8, mode) == call(node, "estimatesmartfee", 8)
    # Conservative: 95 % within 16 blocks also on the long horizon, which has too little data
    # below 40 sat/vB.
    conservative = call(node, "estimatesmartfee", 8, "CONSERVATIVE")
    assert conservative == {"feerate": Decimal("0.00040000"), "blocks": 8}
    assert call(node, "estimatesmartfee", 8, "conservative") == conservative
    # Named parameters, as the server binds them.
    m = REGISTRY.methods["estimatesmartfee"]
    assert m.func(node, *bind_params(m, {"conf_target": 8, "estimate_mode": "conservative"})) == (
        conservative
    )


def test_smart_fee_is_raised_to_the_pool_minimums() -> None:
    node = Node(history(), pool(min_relay_fee=50_000))
    assert call(node, "estimatesmartfee", 8) == {"feerate": Decimal("0.00050000"), "blocks": 8}
    p = pool()
    p.min_fee = lambda: 60_000  # type: ignore[method-assign]
    node = Node(history(), p)
    assert call(node, "estimatesmartfee", 1) == {"feerate": Decimal("0.00060000"), "blocks": 2}
    # ... but a missing estimate stays an error.
    node = Node(BlockPolicyEstimator(), pool(min_relay_fee=50_000))
    assert call(node, "estimatesmartfee", 3) == {"errors": [NO_DATA], "blocks": 0}


def test_errors_are_cores() -> None:
    node = Node(history(), pool())
    for target in (0, -1, 1009, 2**31 - 1):
        assert error(node, "estimatesmartfee", target) == (
            -8,
            "Invalid conf_target, must be between 1 and 1008",
        )
        assert error(node, "estimaterawfee", target) == (
            -8,
            "Invalid conf_target, must be between 1 and 1008",
        )
    assert error(node, "estimatesmartfee", 2**31) == (-1, "JSON integer out of range")
    for mode in ("", "eco", "BTC/kvB", "sat/vB"):
        assert error(node, "estimatesmartfee", 2, mode) == (-8, INVALID_ESTIMATE_MODE)
    assert INVALID_ESTIMATE_MODE == (
        'Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative"'
    )
    assert error(node, "estimatesmartfee", "2")[0] == -3
    assert error(node, "estimatesmartfee", 2, 1)[0] == -3
    for threshold in (-0.01, 1.01, 2):
        assert error(node, "estimaterawfee", 2, threshold) == (-8, "Invalid threshold")
    assert error(node, "estimaterawfee", 2, "0.5")[0] == -3
    # Without an estimator (-blocksonly): Core's internal error, before anything else.
    blind = Node(None, pool())
    assert error(blind, "estimatesmartfee", 0) == (-32603, "Fee estimation disabled")
    assert error(blind, "estimaterawfee", 0) == (-32603, "Fee estimation disabled")
    # estimatesmartfee also needs the pool; estimaterawfee does not.
    no_pool = Node(history(), None)
    assert error(no_pool, "estimatesmartfee", 2) == (-33, "Mempool disabled or instance not found")
    assert set(call(no_pool, "estimaterawfee", 2)) == {"short", "medium", "long"}


def test_raw_fee_thresholds_and_horizons() -> None:
    node = Node(history(), pool())
    # Within 2 blocks only the 40 sat/vB class passes 95 %; with a threshold of 0 every range
    # with enough data passes, so the lowest class answers.
    assert call(node, "estimaterawfee", 2)["short"]["feerate"] == Decimal("0.00040000")
    assert call(node, "estimaterawfee", 2, 0)["short"]["feerate"] == Decimal("0.00003000")
    assert call(node, "estimaterawfee", 2, 1)["short"]["feerate"] == Decimal("0.00040000")
    assert call(node, "estimaterawfee", 3, 0.85)["short"]["feerate"] == Decimal("0.00012000")
    assert list(call(node, "estimaterawfee", 12)) == ["short", "medium", "long"]
    assert list(call(node, "estimaterawfee", 13)) == ["medium", "long"]
    assert list(call(node, "estimaterawfee", 49)) == ["long"]
    assert list(call(node, "estimaterawfee", 1008)) == ["long"]
    short = call(node, "estimaterawfee", 8)["short"]
    assert short["feerate"] == Decimal("0.00003000")
    # Every judged range passed; the empty buckets below are shown as the failing range.
    assert list(short) == ["feerate", "decay", "scale", "pass", "fail"]
    assert (short["fail"]["startrange"], short["fail"]["totalconfirmed"]) == (0, 0)
    assert short["pass"]["startrange"] == short["fail"]["endrange"]  # adjacent ranges
