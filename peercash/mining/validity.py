"""Whether a block would be valid on the current tip, checked without connecting it.

Layer 2 (mining). Bitcoin Core's ``TestBlockValidity`` (named ``check_block_validity`` here): used by ``getblocktemplate``'s proposal
mode (BIP23), by ``generateblock`` before it grinds, and on templates before they are handed
out. The block's inputs are spent in a scratch layer over the UTXO set, so nothing in the chain
state changes, whatever the outcome.

Error contract: raises ``RuleError`` with Core's reject reason as its code
(``inconclusive-not-best-prevblk`` when the block does not build on the tip, ``bad-diffbits``,
``bad-txnmrklroot``, ``bad-txns-inputs-missingorspent``, ``bad-cb-amount``, ...); returns None
when the block passes. Concurrency contract: call with the chain lock held.
"""

from __future__ import annotations

from typing import Any, cast

from peercash.chain.chainstate import ChainState
from peercash.chain.index import BlockIndexEntry
from peercash.chain.scratch import ScratchChain
from peercash.chain.validation import BlockValidator
from peercash.consensus.checks import check_block
from peercash.consensus.errors import RuleError
from peercash.consensus.primitives import Block, Tx, TxOut


def _skip_scripts(_txs: list[Tx], _spent: list[list[TxOut]], _flags: int) -> None:
    """A script sink that drops the checks (templates from pool transactions, whose scripts the
    pool already checked with stricter flags)."""


def check_block_validity(
    chain: ChainState,
    block: Block,
    *,
    check_pow: bool = True,
    check_merkle_root: bool = True,
    check_scripts: bool = True,
) -> None:
    """Raise ``RuleError`` unless ``block`` is valid as the next block on the tip.

    In Core's order: the block builds on the tip; the contextual header checks (bits, time,
    version); the context-free block checks (proof of work and, on signet, the block solution
    only with ``check_pow``; the merkle root only with ``check_merkle_root``); the contextual
    block checks (finality, BIP34 height, witness commitment, weight); then every input, fee,
    sigop and (unless ``check_scripts`` is false) script rule, against a scratch UTXO view."""
    tip = chain.tip
    if block.header.prev_hash != tip.hash:
        raise RuleError("inconclusive-not-best-prevblk", "", 0)
    validator = chain.validator
    validator.check_header(block.header, tip)
    params = chain.params
    check_block(
        block,
        params.pow_limit,
        check_pow=check_pow,
        check_merkle=check_merkle_root,
        signet_challenge=params.signet_challenge,
        genesis_hash=params.genesis_hash,
    )
    validator.check_block_contextual(block, tip)
    scratch = BlockValidator(cast(Any, ScratchChain(chain)), None, validator.clock)
    entry = BlockIndexEntry(block.header, tip.height + 1, tip)
    scratch.connect_block(block, entry, None if check_scripts else _skip_scripts)


__all__ = ["check_block_validity"]
