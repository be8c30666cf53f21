"""Contextual validation: the rules that need the block index or the UTXO set.

Gathers the context (parent, median time past, expected difficulty, active deployments, spent
coins) and hands it to the pure rule functions in ``peercash.consensus``. ``connect_block``
applies a block to the UTXO cache only when every rule passed: changes are staged in an overlay
and merged at the end, so a failing block leaves the cache untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from peercash.consensus import deployments
from peercash.consensus.contextual import (
    SpentCoin,
    calculate_sequence_locks,
    check_bip30,
    check_coinbase_amount,
    check_tx_inputs,
    contextual_check_block,
    contextual_check_block_header,
    evaluate_sequence_locks,
)
from peercash.consensus.errors import RuleError
from peercash.consensus.pow import BlockInfo, ends_min_difficulty_walk, next_work_required
from peercash.consensus.primitives import (
    SEQUENCE_LOCKTIME_DISABLE_FLAG,
    Block,
    Header,
    OutPoint,
    Tx,
    TxOut,
)
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.script import MAX_SCRIPT_SIZE
from peercash.consensus.script.sigops import MAX_BLOCK_SIGOPS_COST, transaction_sigop_cost
from peercash.consensus.subsidy import block_subsidy

from .coins import coin_key
from .index import BlockIndexEntry
from .scriptcheck import check_tx_inputs as verify_tx_scripts

if TYPE_CHECKING:
    from .chainstate import ChainState

TWO_WEEKS = 14 * 24 * 60 * 60
OP_RETURN = 0x6A

ScriptSink = Callable[[list[Tx], list[list[TxOut]], int], None]
"""Takes a block's script checks (transactions, their spent outputs, flags) to run later."""


def _info(e: BlockIndexEntry) -> BlockInfo:
    return BlockInfo(e.height, e.header.time, e.header.bits)


class BlockValidator:
    """Runs the contextual checks for one ``ChainState``."""

    def __init__(
        self, chain: ChainState, assume_valid: bytes | None, clock: Callable[[], float]
    ) -> None:
        self.chain = chain
        self.params = chain.params
        self.assume_valid = assume_valid
        self.clock = clock
        self._walk_memo: dict[BlockIndexEntry, int] = {}

    # -- headers and blocks before connecting ---------------------------------------------------

    def expected_bits(self, prev: BlockIndexEntry, new_time: int) -> int:
        return next_work_required(
            _info(prev),
            new_time,
            self.params,
            lambda h: _info(self._ancestor(prev, h)),
            lambda: self._walk_bits(prev),
        )

    def _walk_bits(self, e: BlockIndexEntry) -> int:
        """The bits where the min-difficulty walk from ``e`` stops, remembered per block (a
        block's answer is its parent's unless the walk stops at the block itself)."""
        memo = self._walk_memo
        path: list[BlockIndexEntry] = []
        x: BlockIndexEntry | None = e
        bits = None
        while x is not None:
            bits = memo.get(x)
            if bits is not None:
                break
            if ends_min_difficulty_walk(_info(x), self.params):
                bits = x.header.bits
                break
            path.append(x)
            x = x.prev
        assert bits is not None, "the walk always stops at the genesis block"
        if len(memo) > 100_000:
            memo.clear()
        for y in path:
            memo[y] = bits
        memo[e] = bits
        return bits

    def _ancestor(self, e: BlockIndexEntry, height: int) -> BlockIndexEntry:
        chain = self.chain
        if chain.contains(e):
            return chain.chain[height]
        return e.ancestor(height)

    def check_header(self, header: Header, prev: BlockIndexEntry) -> None:
        p = self.params
        height = prev.height + 1
        contextual_check_block_header(
            header,
            prev_height=prev.height,
            expected_bits=self.expected_bits(prev, header.time),
            median_time_past=prev.median_time_past(),
            adjusted_time=int(self.clock()),
            max_future_block_time=p.max_future_block_time,
            bip34_active=deployments.bip34_active(p, height),
            bip66_active=deployments.dersig_active(p, height),
            bip65_active=deployments.cltv_active(p, height),
            prev_time=prev.header.time,
            enforce_bip94=p.enforce_bip94,
            difficulty_adjustment_interval=p.difficulty_adjustment_interval,
        )

    def check_block_contextual(self, block: Block, prev: BlockIndexEntry) -> None:
        p = self.params
        height = prev.height + 1
        cutoff = prev.median_time_past() if deployments.csv_active(p, height) else block.header.time
        contextual_check_block(
            block,
            height=height,
            lock_time_cutoff=cutoff,
            bip34_active=deployments.bip34_active(p, height),
            segwit_active=deployments.segwit_active(p, height),
        )

    # -- connecting -----------------------------------------------------------------------------

    def _skip_scripts(self, e: BlockIndexEntry) -> bool:
        """Core's assumevalid: skip signatures for ancestors of a trusted, well-buried block."""
        av_hash = self.assume_valid
        if av_hash is None:
            return False
        chain = self.chain
        av = chain.index.get(av_hash)
        best = chain.best_header
        if av is None or best is None or e.height > av.height or av.ancestor(e.height) is not e:
            return False
        if best.height < av.height or best.ancestor(av.height) is not av:
            return False
        if best.chain_work < self.params.min_chain_work:
            return False
        # The assumed-valid block must be buried under two weeks' worth of work.
        work_per_block = max(1, best.chain_work - best.prev.chain_work) if best.prev else 1
        buried_seconds = (
            (best.chain_work - e.chain_work) * self.params.pow_target_spacing // work_per_block
        )
        return buried_seconds > TWO_WEEKS

    def connect_block(
        self, block: Block, e: BlockIndexEntry, script_sink: ScriptSink | None = None
    ) -> list[list[SpentCoin]]:
        """Validate ``block`` against the UTXO set at its parent and apply it; returns undo data.

        With ``script_sink``, the scripts are not checked here: every rule but those is, the
        block is applied, and the sink is handed the transactions, their spent outputs and the
        flags, to check later (undoing the block if they fail).
        """
        chain = self.chain
        p = self.params
        height = e.height
        if height == 0:
            return []
        flags = int(deployments.block_script_flags(p, height, e.hash))
        prev = e.prev
        assert prev is not None
        coins = chain.coins
        coins_get = coins.get
        overlay: dict[bytes, SpentCoin | None] = {}
        created: set[bytes] = set()

        hash_at_bip34 = None
        if height > p.bip34_height:
            hash_at_bip34 = self._ancestor(prev, p.bip34_height).hash
        if deployments.bip30_check_required(p, height, e.hash, hash_at_bip34):
            # Before any transaction is applied, so the UTXO set is the parent's.
            check_bip30(block, coins.any_unspent)

        csv = deployments.csv_active(p, height)
        prev_mtp = prev.median_time_past() if csv else 0
        skip_scripts = self._skip_scripts(e)
        fees = 0
        sigop_cost = 0
        undo: list[list[SpentCoin]] = []
        script_jobs: list[tuple[int, list[TxOut]]] = []
        bip30_unspendable = deployments.is_bip30_unspendable(p, height, e.hash)
        for tx_index, tx in enumerate(block.txs):
            spent_coins: list[SpentCoin] = []
            keys: list[bytes] = []
            if tx_index:
                keys = [coin_key(txin.prevout.txid, txin.prevout.index) for txin in tx.inputs]
                found: list[SpentCoin | None] = [
                    overlay[k] if k in overlay else coins_get(k) for k in keys
                ]
                fees += check_tx_inputs(tx, found, height, p.coinbase_maturity)
                spent_coins = found  # type: ignore[assignment]  # all present: checked above
                # Inputs with the disable flag set carry no BIP68 lock (cheap to rule out).
                if (
                    csv
                    and tx.version >= 2
                    and not all(
                        txin.sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG for txin in tx.inputs
                    )
                ):
                    lock = calculate_sequence_locks(
                        tx,
                        True,
                        [c.height for c in spent_coins],
                        height,
                        lambda h: self._ancestor(prev, h).median_time_past(),
                    )
                    if not evaluate_sequence_locks(height, prev_mtp, lock):
                        raise RuleError(
                            "bad-txns-nonfinal", "contains a non-BIP68-final transaction"
                        )
            spent_outs = [c.txout for c in spent_coins]
            sigop_cost += transaction_sigop_cost(tx, spent_outs, flags)
            if sigop_cost > MAX_BLOCK_SIGOPS_COST:
                raise RuleError("bad-blk-sigops", "too many sigops")
            if tx_index:
                if not skip_scripts:
                    script_jobs.append((tx_index, spent_outs))
                for key in keys:
                    overlay[key] = None
                undo.append(spent_coins)
            txid = tx.txid
            is_coinbase = tx_index == 0
            if not (is_coinbase and bip30_unspendable):
                for i, out in enumerate(tx.outputs):
                    spk = out.script_pubkey
                    # is_unspendable, inline: OP_RETURN or an oversized script.
                    if (spk and spk[0] == OP_RETURN) or len(spk) > MAX_SCRIPT_SIZE:
                        continue
                    key = coin_key(txid, i)
                    overlay[key] = SpentCoin(out, height, is_coinbase)
                    created.add(key)

        check_coinbase_amount(block.txs[0], fees, block_subsidy(height, p))
        if script_jobs:
            if script_sink is not None:
                script_sink(
                    [block.txs[i] for i, _ in script_jobs], [s for _, s in script_jobs], flags
                )
            else:
                self._check_scripts(block, script_jobs, flags)

        for key, coin in overlay.items():
            if coin is None:
                # An output created and spent within this block never reaches the cache (which
                # may hold a pending delete of an older coin with the same key: keep it).
                if key not in created:
                    coins.spend(key)
            else:
                coins.add(key, coin, possible_overwrite=key not in created or bip30_unspendable)
        return undo

    def _check_scripts(self, block: Block, jobs: list[tuple[int, list[TxOut]]], flags: int) -> None:
        pool = self.chain.pool
        n_inputs = sum(len(s) for _, s in jobs)
        if pool is not None and n_inputs >= 64:
            failures = pool.check([block.txs[i] for i, _ in jobs], [s for _, s in jobs], flags)
            if failures:
                f = failures[0]
                raise script_failure(block.txs[jobs[f.tx_index][0]], f.input_index, f.error)
            return
        for tx_index, spent in jobs:
            tx = block.txs[tx_index]
            for i, err in verify_tx_scripts(tx, spent, flags):
                if err is not None:
                    raise script_failure(tx, i, err)


def script_failure(tx: Tx, input_index: int, error: ScriptError) -> RuleError:
    """The rejection of a block for a failed script check (Core's mandatory-flag failure)."""
    return RuleError(
        "mandatory-script-verify-flag-failed",
        f"{error.value} (input {input_index} of tx {tx.txid_hex})",
    )


__all__ = ["BlockValidator", "OutPoint", "ScriptSink", "script_failure"]
