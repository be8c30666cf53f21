"""Context-free consensus checks.

Consensus. :func:`check_transaction` is Core's ``CheckTransaction``: rules a transaction must meet
whatever the chain state, checked before anything looks its inputs up. :func:`check_block_header`
and :func:`check_block` are Core's ``CheckBlockHeader`` and ``CheckBlock``: rules a block must meet
whatever chain it extends. A failure raises ``RuleError`` with Core's reject reason as the code and
ban score 100. Rules that need the chain (heights, times, coins) are in :mod:`.contextual`.

Pure functions: no I/O, clock or state; safe to call from any thread or process.
"""

from __future__ import annotations

from .errors import RuleError
from .merkle import block_merkle_root
from .pow import check_proof_of_work
from .primitives import (
    MAX_BLOCK_WEIGHT,
    MAX_MONEY,
    NULL_HASH,
    WITNESS_SCALE_FACTOR,
    Block,
    Header,
    Tx,
)
from .script.sigops import MAX_BLOCK_SIGOPS_COST, legacy_sigop_count

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

    outputs = tx.outputs
    values = [out.value for out in outputs]
    if min(values) < 0 or sum(values) > MAX_MONEY:
        # Some rule below fails (all values non-negative and a total within range pass them
        # all); walk the outputs in order to report the first failure as Core does.
        total = 0
        for i, value in enumerate(values):
            if value < 0:
                raise RuleError("bad-txns-vout-negative", f"output {i} is negative", _BAN)
            if value > MAX_MONEY:
                raise RuleError("bad-txns-vout-toolarge", f"output {i} exceeds MAX_MONEY", _BAN)
            total += value
            if total > MAX_MONEY:
                raise RuleError(
                    "bad-txns-txouttotal-toolarge", f"outputs 0..{i} sum above MAX_MONEY", _BAN
                )

    inputs = tx.inputs
    if len(inputs) > 1:
        # Plain (txid, index) tuples hash in C; OutPoint's own __hash__ is Python code.
        spent = {(txin.prevout.txid, txin.prevout.index) for txin in inputs}
        if len(spent) != len(inputs):
            raise RuleError("bad-txns-inputs-duplicate", "an outpoint is spent twice", _BAN)

    if tx.is_coinbase():
        size = len(inputs[0].script_sig)
        if not MIN_COINBASE_SCRIPT_SIZE <= size <= MAX_COINBASE_SCRIPT_SIZE:
            raise RuleError("bad-cb-length", f"coinbase scriptSig of {size} bytes", _BAN)
    else:
        for txin in inputs:
            prevout = txin.prevout
            if prevout.index == 0xFFFFFFFF and prevout.txid == NULL_HASH:
                # A lone input with a null prevout makes a coinbase; beside others it is invalid.
                raise RuleError(
                    "bad-txns-prevout-null", "a non-coinbase input has a null prevout", _BAN
                )


# -- blocks ------------------------------------------------------------------------------------

BLOCK_MUTATED_CODES = frozenset(
    {
        "bad-txnmrklroot",
        "bad-txns-duplicate",
        "bad-witness-nonce-size",
        "bad-witness-merkle-match",
        "unexpected-witness",
    }
)
"""Codes Core files under ``BLOCK_MUTATED``: the transactions received do not match the header.

The header may still be valid with the right transactions, so a block rejected with one of these
codes must not mark its *hash* as permanently invalid (the peer is still punished).
"""


def check_block_header(header: Header, pow_limit: int, check_pow: bool = True) -> None:
    """Core's ``CheckBlockHeader``: the hash meets the target it claims ("high-hash")."""
    if check_pow and not check_proof_of_work(header.hash, header.bits, pow_limit):
        raise RuleError("high-hash", "proof of work failed", _BAN)


def check_block(
    block: Block,
    pow_limit: int,
    check_pow: bool = True,
    check_merkle: bool = True,
    signet_challenge: bytes | None = None,
    genesis_hash: bytes = b"",
) -> None:
    """Raise ``RuleError`` unless ``block`` passes Core's context-free ``CheckBlock``.

    In Core's order: the header's proof of work; the merkle root matches and the transaction list
    is not mutated (CVE-2012-2459); at least one transaction, and the transaction count and the
    witness-stripped size each within the weight limit ("bad-blk-length"); exactly one coinbase,
    first; every transaction passes :func:`check_transaction` (its code is kept, the txid added to
    the reason); legacy sigops times four within ``MAX_BLOCK_SIGOPS_COST``.

    Nothing here reads witness data: witness malleation and block weight are contextual
    (``contextual.contextual_check_block``). On signet (``signet_challenge`` given) the block
    solution is checked right after the proof of work, as in Core ("bad-signet-blksig").
    """
    check_block_header(block.header, pow_limit, check_pow)
    if signet_challenge is not None and check_pow:
        from .signet import check_signet_solution

        check_signet_solution(block, signet_challenge, genesis_hash)

    txs = block.txs
    if check_merkle:
        root, mutated = block_merkle_root(block)
        if root != block.header.merkle_root:
            raise RuleError("bad-txnmrklroot", "hashMerkleRoot mismatch", _BAN)
        if mutated:
            raise RuleError("bad-txns-duplicate", "duplicate transaction", _BAN)

    if (
        not txs
        or len(txs) * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
        or block.base_size() * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
    ):
        raise RuleError("bad-blk-length", "size limits failed", _BAN)

    if not txs[0].is_coinbase():
        raise RuleError("bad-cb-missing", "first tx is not coinbase", _BAN)
    for i in range(1, len(txs)):
        if txs[i].is_coinbase():
            raise RuleError("bad-cb-multiple", f"more than one coinbase (tx {i})", _BAN)

    for tx in txs:
        try:
            check_transaction(tx)
        except RuleError as e:
            raise RuleError(
                e.code, f"transaction check failed (tx {tx.txid_hex}): {e.reason}", _BAN
            ) from e

    # An underestimate: P2SH and witness sigops need the spent outputs (ConnectBlock counts them).
    sigops = sum(legacy_sigop_count(tx) for tx in txs)
    if sigops * WITNESS_SCALE_FACTOR > MAX_BLOCK_SIGOPS_COST:
        raise RuleError("bad-blk-sigops", f"out-of-bounds SigOpCount ({sigops})", _BAN)
