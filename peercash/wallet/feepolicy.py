"""The wallet's fee settings and how a feerate is chosen (Core's ``wallet/fees.cpp``).

Layer 3 (wallet), pure: the node's estimate comes in as a function. ``FeePolicy`` holds the
``-fallbackfee``, ``-mintxfee``, ``-maxtxfee``, ``-paytxfee`` (``settxfee``), ``-txconfirmtarget``,
``-discardfee``, ``-consolidatefeerate`` and ``-walletrbf`` settings; feerates are sat/kvB and
amounts satoshis, as everywhere in the wallet.

Error contract: :class:`FeeError` (a ``ValueError``) with Core's messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .coinselection import FeeRate

COIN = 100_000_000
DEFAULT_FALLBACK_FEE = 0
"""Core's ``-fallbackfee`` default: no fallback, on every network."""
DEFAULT_TRANSACTION_MINFEE = 100
"""Core's ``-mintxfee`` default (sat/kvB; Core 30 lowered it with the relay fee)."""
DEFAULT_TRANSACTION_MAXFEE = COIN // 10
"""Core's ``-maxtxfee`` default: 0.1 BTC."""
DEFAULT_TX_CONFIRM_TARGET = 6
WALLET_INCREMENTAL_RELAY_FEE = 5000
"""Core's wallet-side floor for a fee bump's feerate increase (sat/kvB)."""
ESTIMATE_MODES = ("unset", "economical", "conservative")


class FeeError(ValueError):
    """No acceptable feerate (Core's RPC_WALLET_ERROR unless said otherwise)."""


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """One wallet's fee settings (node options, and ``settxfee`` for ``pay_tx_fee``)."""

    fallback_fee: int = DEFAULT_FALLBACK_FEE
    min_tx_fee: int = DEFAULT_TRANSACTION_MINFEE
    max_tx_fee: int = DEFAULT_TRANSACTION_MAXFEE
    pay_tx_fee: int = 0
    confirm_target: int = DEFAULT_TX_CONFIRM_TARGET
    discard_fee: int = 10_000
    consolidate_fee: int = 10_000
    min_relay_fee: int = 100
    incremental_relay_fee: int = 100
    signal_rbf: bool = True


@dataclass(frozen=True, slots=True)
class FeeChoice:
    """The feerate and why (Core's ``FeeCalculation::reason`` in short)."""

    rate: FeeRate
    reason: str


def minimum_fee_rate(
    policy: FeePolicy,
    *,
    fee_rate: FeeRate | None,
    conf_target: int | None,
    estimate_mode: str,
    estimate: Callable[[int, str], int | None],
    mempool_min_fee: int = 0,
) -> FeeChoice:
    """Core's ``GetMinimumFeeRate``: the user's rate, else ``settxfee``, else the node's
    estimate for the target (else the fallback fee), never below ``-mintxfee``, the relay
    fee and the mempool's minimum. Raises Core's errors for a rate below the floor and for a
    failed estimate without fallback."""
    required = max(policy.min_tx_fee, policy.min_relay_fee)
    if fee_rate is not None:
        if fee_rate.sat_per_kvb < required:
            raise FeeError(
                f"Fee rate ({_sat_vb(fee_rate.sat_per_kvb)}) is lower than the minimum fee "
                f"rate setting ({_sat_vb(required)})"
            )
        return FeeChoice(fee_rate, "user")
    if policy.pay_tx_fee and conf_target is None:
        rate, reason = policy.pay_tx_fee, "paytxfee"
    else:
        target = conf_target if conf_target is not None else policy.confirm_target
        got = estimate(target, estimate_mode)
        if got is None or got <= 0:
            if policy.fallback_fee <= 0:
                raise FeeError(
                    "Fee estimation failed. Fallbackfee is disabled. Wait a few blocks or "
                    "enable -fallbackfee."
                )
            rate, reason = policy.fallback_fee, "fallback"
        else:
            rate, reason = got, "estimate"
    return FeeChoice(FeeRate(max(rate, required, mempool_min_fee)), reason)


def _sat_vb(sat_per_kvb: int) -> str:
    """Core's ``CFeeRate::ToString(SAT_VB)``: three decimals."""
    return f"{sat_per_kvb // 1000}.{sat_per_kvb % 1000:03d} sat/vB"


def btc_text(sats: int) -> str:
    """Core's ``FormatMoney`` + " BTC" (at least two decimals, trailing zeros trimmed)."""
    whole, frac = divmod(abs(sats), COIN)
    digits = f"{frac:08d}".rstrip("0")
    digits = digits.ljust(2, "0")
    return f"{'-' if sats < 0 else ''}{whole}.{digits} BTC"
