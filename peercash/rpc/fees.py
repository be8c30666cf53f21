"""Fee estimation RPCs, with Bitcoin Core 30's names, parameters, results and errors:
``estimatesmartfee`` (category util) and the hidden ``estimaterawfee``.

Layer 4. The estimator is ``node.fee_estimator`` (a
:class:`peercash.mempool.fees.BlockPolicyEstimator`, set by ``node.py`` when the node has a
mempool and is not ``-blocksonly``); without one both methods answer Core's -32603 "Fee
estimation disabled". ``estimatesmartfee`` also needs the pool (-33 "Mempool disabled or instance
not found" without it): a feerate it finds is raised to the pool's current minimum and to the
minimum relay feerate. A target outside 1..1008, an unknown mode or a threshold outside 0..1 is
-8 (``RPC_INVALID_PARAMETER``) with Core's message.

Concurrency: both run with the chain lock held (the registry's default), which is also what
guards the estimator. Feerates are ``Decimal`` BTC/kvB.
"""

from __future__ import annotations

from typing import Any

from peercash.mempool import fees
from peercash.mempool.fees import BlockPolicyEstimator, FeeParamError

from .context import ChainNode
from .mempool import ensure_mempool
from .registry import INT32, RPC_INTERNAL_ERROR, Param, RpcError, rpc_method

__all__ = ["ensure_fee_estimator", "estimaterawfee", "estimatesmartfee"]


def ensure_fee_estimator(node: ChainNode) -> BlockPolicyEstimator:
    """Core's ``EnsureFeeEstimator``."""
    estimator = getattr(node, "fee_estimator", None)
    if not isinstance(estimator, BlockPolicyEstimator):
        raise RpcError(RPC_INTERNAL_ERROR, "Fee estimation disabled")
    return estimator


_TARGET_HELP = "Confirmation target in blocks (1 - 1008)"


@rpc_method(
    "estimatesmartfee",
    "util",
    [
        Param("conf_target", int, help=_TARGET_HELP, int_range=INT32),
        Param(
            "estimate_mode",
            str,
            "economical",
            help='The fee estimate mode: "unset", "economical" or "conservative" (case'
            " insensitive). unset means the default mode. economical uses a shorter time"
            " horizon, more responsive to short-term drops in the fee market, and potentially"
            " returns a lower fee rate; conservative a longer one, potentially higher.",
        ),
    ],
    result_help='{"feerate": n (BTC/kvB, only without errors), "errors": ["str", ...] (only'
    ' with errors), "blocks": n (the target the estimate is for: the request clamped between 2'
    " and the highest target the data collected so far supports)}",
)
def estimatesmartfee(
    node: ChainNode, conf_target: int, estimate_mode: str = "economical"
) -> dict[str, Any]:
    """Estimates the approximate fee per kilobyte needed for a transaction to begin
    confirmation within conf_target blocks if possible and return the number of blocks for
    which the estimate is valid. Uses virtual transaction size as defined in BIP 141 (witness
    data is discounted)."""
    estimator = ensure_fee_estimator(node)
    pool = ensure_mempool(node)
    try:
        return fees.estimatesmartfee(
            estimator,
            conf_target,
            estimate_mode,
            min_mempool_feerate=pool.min_fee(),
            min_relay_feerate=pool.min_relay_fee,
        )
    except FeeParamError as err:
        raise RpcError(err.code, str(err)) from None


@rpc_method(
    "estimaterawfee",
    "hidden",
    [
        Param("conf_target", int, help=_TARGET_HELP, int_range=INT32),
        Param(
            "threshold",
            float,
            fees.DOUBLE_SUCCESS_PCT,
            help="The proportion of transactions in a given feerate range that must have been"
            " confirmed within conf_target in order to consider those feerates as high enough"
            " and proceed to check lower buckets.",
        ),
    ],
    result_help="{short, medium, long: for each horizon tracking conf_target, {feerate"
    " (BTC/kvB, on success), decay, scale, pass {startrange, endrange, withintarget,"
    " totalconfirmed, inmempool, leftmempool} (on success), fail {…} (when a range failed),"
    ' errors ["str"] (on failure)}}',
)
def estimaterawfee(
    node: ChainNode, conf_target: int, threshold: float = fees.DOUBLE_SUCCESS_PCT
) -> dict[str, Any]:
    """WARNING: This interface is unstable and may disappear or change!

    WARNING: This is an advanced API call that is tightly coupled to the specific
    implementation of fee estimation. The parameters it can be called with and the results it
    returns will change if the internal implementation changes.

    Estimates the approximate fee per kilobyte needed for a transaction to begin confirmation
    within conf_target blocks if possible. Uses virtual transaction size as defined in BIP 141
    (witness data is discounted)."""
    estimator = ensure_fee_estimator(node)
    try:
        return fees.estimaterawfee(estimator, conf_target, threshold)
    except FeeParamError as err:
        raise RpcError(err.code, str(err)) from None
