"""Context-free consensus checks.

Consensus. :func:`check_transaction` is Core's ``CheckTransaction``: rules a transaction must meet
whatever the chain state, checked before anything looks its inputs up. A failure raises
``RuleError`` with Core's reject reason as the code and ban score 100. Pure functions.
"""

from __future__ import annotations

from .errors import RuleError
from .primitives import MAX_BLOCK_WEIGHT, MAX_MONEY, WITNESS_SCALE_FACTOR, Tx

MIN_COINBASE_SCRIPT_SIZE = 2
"""Consensus: the shortest coinbase scriptSig allowed."""

MAX_COINBASE_SCRIPT_SIZE = 100
"""Consensus: the longest coinbase scriptSig allowed."""

_BAN = 100


def check_transaction(tx: Tx) -> None:
    """Raise ``RuleError`` unless ``tx`` passes Core's context-free transaction checks.

    The checks, in Core's order: inputs and outputs present; legacy size within the block weight;
    each output amount in ``[0, MAX_MONEY]`` and so their running total; no input spent twice
    (CVE-2018-17144); a coinbase scriptSig of 2 to 100 bytes; no null prevout outside a coinbase.
    """
    if not tx.inputs:
        raise RuleError("bad-txns-vin-empty", "transaction has no inputs", _BAN)
    if not tx.outputs:
        raise RuleError("bad-txns-vout-empty", "transaction has no outputs", _BAN)
    # The witness is left out: it has not been checked for malleability yet.
    if tx.base_size() * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT:
        raise RuleError("bad-txns-oversize", f"legacy size {tx.base_size()} too large", _BAN)

    total = 0
    for i, out in enumerate(tx.outputs):
        if out.value < 0:
            raise RuleError("bad-txns-vout-negative", f"output {i} is negative", _BAN)
        if out.value > MAX_MONEY:
            raise RuleError("bad-txns-vout-toolarge", f"output {i} exceeds MAX_MONEY", _BAN)
        total += out.value
        if total > MAX_MONEY:
            raise RuleError(
                "bad-txns-txouttotal-toolarge", f"outputs 0..{i} sum above MAX_MONEY", _BAN
            )

    inputs = tx.inputs
    prevouts = {txin.prevout for txin in inputs}
    if len(prevouts) != len(inputs):
        raise RuleError("bad-txns-inputs-duplicate", "an outpoint is spent twice", _BAN)

    if tx.is_coinbase():
        size = len(inputs[0].script_sig)
        if not MIN_COINBASE_SCRIPT_SIZE <= size <= MAX_COINBASE_SCRIPT_SIZE:
            raise RuleError("bad-cb-length", f"coinbase scriptSig of {size} bytes", _BAN)
    elif any(p.is_null() for p in prevouts):
        # A lone input with a null prevout makes a coinbase; beside other inputs it is invalid.
        raise RuleError("bad-txns-prevout-null", "a non-coinbase input has a null prevout", _BAN)
