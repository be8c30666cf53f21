"""The block assembler: the next block on the tip, filled with chunks of pool transactions.

Layer 2 (mining). Called by the RPC (``getblocktemplate``, the regtest ``generate*`` methods) and
the benchmarks. It reads the chain state (tip, active chain, deployment states, expected bits,
clock) and takes transactions from a ``TemplateSource``: the mempool once it is wired, or
``EMPTY_SOURCE`` (a coinbase-only block) until then. The assembler never imports the mempool;
the pool satisfies the small protocol below.

Selection follows Bitcoin Core's cluster-mempool miner (``BlockAssembler::addChunks``): chunks
come in decreasing feerate; a chunk goes in whole or not at all; the first chunk below
``-blockmintxfee`` ends the selection (all later ones pay less); a chunk that would take the
block to its weight or sigop limit, or holds a transaction that is not final for the new block,
is skipped, as is every later chunk that spends from a skipped one; after
``MAX_CONSECUTIVE_FAILURES`` skips in a row, once the block is within
``BLOCK_FULL_ENOUGH_WEIGHT_DELTA`` of full, selection stops.

Error contract: ``create_new_block`` raises nothing of its own for a healthy chain; it does not
validate the block it builds (``peercash.mining.validity.check_block_validity`` does, where the
caller wants it). Concurrency contract: call with the chain lock held, and with the source
consistent with that tip (the mempool is updated from chain events under the same lock). An
assembler keeps no state between calls except ``last_block_weight``/``last_block_num_txs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from peercash.chain.chainstate import ChainState
from peercash.chain.index import BlockIndexEntry
from peercash.consensus import deployments as dep
from peercash.consensus.contextual import is_final_tx
from peercash.consensus.merkle import witness_commitment_index
from peercash.consensus.pow import MAX_TIMEWARP, bits_to_target
from peercash.consensus.primitives import Block, Tx, TxOut
from peercash.consensus.script.sigops import MAX_BLOCK_SIGOPS_COST, legacy_sigop_count
from peercash.consensus.subsidy import block_subsidy

from .builder import assemble_block, coinbase_tx

WITNESS_SCALE_FACTOR = 4
MAX_BLOCK_WEIGHT = 4_000_000
"""Consensus: the block weight limit (BIP141)."""
MAX_BLOCK_SERIALIZED_SIZE = 4_000_000
"""Consensus: the serialized block size limit (BIP141), shown by ``getblocktemplate``."""

# Policy: Core 30's mining defaults (policy/policy.h).
DEFAULT_BLOCK_MAX_WEIGHT = MAX_BLOCK_WEIGHT
"""Policy: ``-blockmaxweight`` (Core 30 raised it from 3,996,000 to the full 4,000,000, with the
coinbase's room taken by ``-blockreservedweight`` instead)."""
DEFAULT_BLOCK_RESERVED_WEIGHT = 8000
"""Policy: ``-blockreservedweight``, the weight kept free for the header, the transaction count
and the coinbase."""
MINIMUM_BLOCK_RESERVED_WEIGHT = 2000
"""Policy: the least ``-blockreservedweight`` accepted (smaller values are raised to it)."""
DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS = 400
"""Policy: sigop cost kept free for the coinbase's outputs."""
DEFAULT_BLOCK_MIN_TX_FEE = 1
"""Policy: ``-blockmintxfee`` in sat/kvB (Core 30 lowered it from 1,000 to 1)."""
MAX_CONSECUTIVE_FAILURES = 1000
"""Skipped chunks in a row after which a nearly full block stops looking (Core's heuristic)."""
BLOCK_FULL_ENOUGH_WEIGHT_DELTA = 4000
"""How close to ``block_max_weight`` counts as nearly full."""


class TemplateTx(NamedTuple):
    """One pool transaction as the assembler needs it. ``fee`` is what the coinbase collects;
    ``modified_fee`` (with ``prioritisetransaction``'s delta; None: the same as ``fee``) is what
    the chunk's feerate was judged by."""

    tx: Tx
    fee: int
    sigop_cost: int
    weight: int
    modified_fee: int | None = None


Chunk = Sequence[TemplateTx]
"""A chunk: transactions in a valid order (parents before children), taken whole or not at
all. Its parents outside the chunk are in the chain or in earlier chunks."""


class TemplateSource(Protocol):
    """What the assembler (and ``getblocktemplate``'s long poll) needs of a mempool."""

    def chunks_by_feerate(self) -> Iterable[Chunk]:
        """Every chunk of the pool, highest chunk feerate (by modified fee) first."""
        ...

    def transactions_updated(self) -> int:
        """A counter that changes whenever transactions enter or leave the pool (Core's
        ``GetTransactionsUpdated``), for long polling."""
        ...


class EmptySource:
    """No mempool: blocks hold only their coinbase."""

    def chunks_by_feerate(self) -> Iterable[Chunk]:
        return ()

    def transactions_updated(self) -> int:
        return 0


EMPTY_SOURCE = EmptySource()


@dataclass(frozen=True)
class AssemblerOptions:
    """The miner's knobs, as Core's ``BlockAssembler::Options``; ``clamped()`` applies Core's
    sanity limits."""

    block_max_weight: int = DEFAULT_BLOCK_MAX_WEIGHT
    block_reserved_weight: int = DEFAULT_BLOCK_RESERVED_WEIGHT
    coinbase_output_max_additional_sigops: int = DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS
    block_min_fee_rate: int = DEFAULT_BLOCK_MIN_TX_FEE
    """sat/kvB."""
    block_version: int | None = None
    """Regtest's ``-blockversion``: a fixed header version instead of the BIP9 one."""
    coinbase_timelock: bool = False
    """Core 30's coinbase: nLockTime = height - 1 and nSequence = 0xfffffffe (so the coinbase
    is timelocked, ready for BIP54). Off by default: peercash's regtest blocks keep their
    earlier coinbase (locktime 0, sequence final), which tests and fixtures depend on."""

    def clamped(self) -> AssemblerOptions:
        reserved = min(
            max(self.block_reserved_weight, MINIMUM_BLOCK_RESERVED_WEIGHT), MAX_BLOCK_WEIGHT
        )
        sigops = min(max(self.coinbase_output_max_additional_sigops, 0), MAX_BLOCK_SIGOPS_COST)
        max_weight = min(max(self.block_max_weight, reserved), MAX_BLOCK_WEIGHT)
        return AssemblerOptions(
            max_weight,
            reserved,
            sigops,
            max(0, self.block_min_fee_rate),
            self.block_version,
            self.coinbase_timelock,
        )


@dataclass
class BlockTemplate:
    """A block ready for the nonce: the block (nonce 0) and what ``getblocktemplate`` reports.

    ``fees`` and ``sigops`` have one entry per block transaction, the coinbase first (its fee is
    minus the total fees, its sigops four times its legacy count, as Core's ``vTxFees`` and
    ``vTxSigOpsCost``)."""

    block: Block
    prev: BlockIndexEntry
    height: int
    fees: list[int]
    sigops: list[int]
    total_fees: int
    coinbase_value: int
    weight: int
    """The assembler's running weight: reserved weight plus the selected transactions (Core's
    ``m_last_block_weight``)."""
    sigop_cost: int
    min_time: int
    witness_commitment: bytes | None
    """The coinbase's commitment output script, when segwit is active."""
    chunk_feerates: list[tuple[int, int]] = field(default_factory=list)
    """(modified fee, vsize) of each selected chunk, in order."""

    @property
    def num_txs(self) -> int:
        """Transactions besides the coinbase."""
        return len(self.block.txs) - 1

    @property
    def target(self) -> int:
        return bits_to_target(self.block.header.bits)[0]


def minimum_time(prev: BlockIndexEntry, difficulty_adjustment_interval: int) -> int:
    """Core's ``GetMinimumTime``: one second past the median time past and, for the first block
    of a retarget period, no more than ``MAX_TIMEWARP`` before its parent (BIP94, applied by the
    miner on every network)."""
    low = prev.median_time_past() + 1
    if (prev.height + 1) % difficulty_adjustment_interval == 0:
        low = max(low, prev.header.time - MAX_TIMEWARP)
    return low


def block_version(chain: ChainState, prev: BlockIndexEntry) -> int:
    """Core's ``ComputeBlockVersion`` for the block after ``prev`` on the active chain: the BIP9
    top bits plus the bit of every deployment that is started or locked in."""
    states = [(d, deployment_state(chain, d, prev)) for d in chain.params.deployments.values()]
    return dep.compute_block_version(states)


def deployment_state(
    chain: ChainState, deployment: dep.Deployment, prev: BlockIndexEntry
) -> dep.ThresholdState:
    """The BIP9 state of ``deployment`` for the block after ``prev`` (on the active chain)."""
    active = chain.chain
    return dep.deployment_state(
        deployment,
        prev.height,
        lambda h: active[h].median_time_past(),
        lambda h: active[h].header.version,
    )


class BlockAssembler:
    """Builds block templates on one chain's tip (Core's ``BlockAssembler``)."""

    def __init__(self, chain: ChainState, options: AssemblerOptions | None = None) -> None:
        self.chain = chain
        self.params = chain.params
        self.options = (options or AssemblerOptions()).clamped()
        self.last_block_weight: int | None = None
        self.last_block_num_txs: int | None = None

    def create_new_block(
        self,
        script_pubkey: bytes,
        source: TemplateSource = EMPTY_SOURCE,
        *,
        forced: Sequence[TemplateTx] = (),
    ) -> BlockTemplate:
        """A template on the tip paying subsidy plus fees to ``script_pubkey``.

        ``forced`` transactions (``generateblock``'s) go first, in their order, without limit,
        feerate or finality checks; ``source`` fills the rest."""
        chain = self.chain
        params = self.params
        opts = self.options
        prev = chain.tip
        height = prev.height + 1
        now = int(chain.validator.clock())
        min_time = minimum_time(prev, params.difficulty_adjustment_interval)
        block_time = max(min_time, now)
        lock_time_cutoff = prev.median_time_past() if dep.csv_active(params, height) else block_time

        selected: list[TemplateTx] = list(forced)
        weight = opts.block_reserved_weight + sum(t.weight for t in forced)
        sigops = opts.coinbase_output_max_additional_sigops + sum(t.sigop_cost for t in forced)
        chunk_feerates: list[tuple[int, int]] = []
        weight, sigops = self._add_chunks(
            source, selected, weight, sigops, height, lock_time_cutoff, chunk_feerates
        )
        self.last_block_num_txs = len(selected)
        self.last_block_weight = weight

        total_fees = sum(t.fee for t in selected)
        value = block_subsidy(height, params) + total_fees
        segwit = dep.segwit_active(params, height)
        if opts.coinbase_timelock:
            coinbase = coinbase_tx(
                height, [TxOut(value, script_pubkey)], witness=segwit, sequence=0xFFFFFFFE
            )
            coinbase = Tx(coinbase.version, coinbase.inputs, coinbase.outputs, height - 1)
        else:
            coinbase = coinbase_tx(height, [TxOut(value, script_pubkey)], witness=segwit)
        bits = chain.validator.expected_bits(prev, block_time)
        if opts.block_version is not None and params.name == "regtest":
            version = opts.block_version
        else:
            version = block_version(chain, prev)
        block = assemble_block(
            prev.hash,
            block_time,
            bits,
            coinbase,
            [t.tx for t in selected],
            version=version,
            witness_commitment=segwit,
        )
        commitment = None
        if segwit:
            at = witness_commitment_index(block)
            if at is not None:
                commitment = block.txs[0].outputs[at].script_pubkey
        coinbase_sigops = WITNESS_SCALE_FACTOR * legacy_sigop_count(block.txs[0])
        return BlockTemplate(
            block=block,
            prev=prev,
            height=height,
            fees=[-total_fees, *(t.fee for t in selected)],
            sigops=[coinbase_sigops, *(t.sigop_cost for t in selected)],
            total_fees=total_fees,
            coinbase_value=value,
            weight=weight,
            sigop_cost=sigops,
            min_time=min_time,
            witness_commitment=commitment,
            chunk_feerates=chunk_feerates,
        )

    def _add_chunks(
        self,
        source: TemplateSource,
        selected: list[TemplateTx],
        weight: int,
        sigops: int,
        height: int,
        lock_time_cutoff: int,
        chunk_feerates: list[tuple[int, int]],
    ) -> tuple[int, int]:
        """Core's ``addChunks``: fill ``selected``; returns the final (weight, sigop cost)."""
        opts = self.options
        max_weight = opts.block_max_weight
        min_rate = opts.block_min_fee_rate
        skipped: set[bytes] = set()
        failures = 0
        for chunk in source.chunks_by_feerate():
            if not chunk:
                continue
            chunk_weight = 0
            chunk_sigops = 0
            chunk_fee = 0
            for t in chunk:
                chunk_weight += t.weight
                chunk_sigops += t.sigop_cost
                chunk_fee += t.fee if t.modified_fee is None else t.modified_fee
            chunk_vsize = (chunk_weight + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR
            if chunk_fee * 1000 < min_rate * chunk_vsize:
                break  # every later chunk pays less
            if skipped and _spends_from(chunk, skipped):
                # A parent was left out, so this chunk cannot go in; Core's block builder never
                # offers it (the rest of a skipped cluster is excluded), so it is no failure.
                skipped.update(t.tx.txid for t in chunk)
                continue
            if (
                weight + chunk_weight >= max_weight
                or sigops + chunk_sigops >= MAX_BLOCK_SIGOPS_COST
                or not all(is_final_tx(t.tx, height, lock_time_cutoff) for t in chunk)
            ):
                skipped.update(t.tx.txid for t in chunk)
                failures += 1
                if (
                    failures > MAX_CONSECUTIVE_FAILURES
                    and weight + BLOCK_FULL_ENOUGH_WEIGHT_DELTA > max_weight
                ):
                    break
                continue
            failures = 0
            selected.extend(chunk)
            weight += chunk_weight
            sigops += chunk_sigops
            chunk_feerates.append((chunk_fee, chunk_vsize))
        return weight, sigops


def _spends_from(chunk: Chunk, txids: set[bytes]) -> bool:
    return any(txin.prevout.txid in txids for t in chunk for txin in t.tx.inputs)


def template_tx(tx: Tx, fee: int, sigop_cost: int = 0) -> TemplateTx:
    """A ``TemplateTx`` with the weight computed from ``tx`` (tests, benchmarks, generateblock)."""
    return TemplateTx(tx, fee, sigop_cost, tx.weight())


__all__ = [
    "BLOCK_FULL_ENOUGH_WEIGHT_DELTA",
    "DEFAULT_BLOCK_MAX_WEIGHT",
    "DEFAULT_BLOCK_MIN_TX_FEE",
    "DEFAULT_BLOCK_RESERVED_WEIGHT",
    "DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS",
    "EMPTY_SOURCE",
    "MAX_BLOCK_SERIALIZED_SIZE",
    "MAX_BLOCK_WEIGHT",
    "MAX_CONSECUTIVE_FAILURES",
    "MINIMUM_BLOCK_RESERVED_WEIGHT",
    "AssemblerOptions",
    "BlockAssembler",
    "BlockTemplate",
    "Chunk",
    "EmptySource",
    "TemplateSource",
    "TemplateTx",
    "block_version",
    "deployment_state",
    "minimum_time",
    "template_tx",
]
