"""The chain state: which blocks we have, which chain is active, and the UTXO set at its tip.

``ChainState`` accepts headers and blocks, keeps the most-work valid chain active (reorganising
through undo data when another branch gets ahead), and supports ``invalidate_block``,
``reconsider_block`` and ``precious_block``. Every rule check is delegated to ``validation``.

Crash safety: block and undo files are fsynced before the index refers to them, the index is
written before the UTXO set, and the UTXO set moves with its best-block pointer in one LMDB
transaction. On start, blocks that were stored but not yet reflected in the UTXO set are simply
connected again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peercash.consensus.checks import check_block, check_block_header
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.merkle import block_merkle_root
from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import Block, Header, Tx, TxOut
from peercash.consensus.script.script import is_unspendable

from .blockstore import BlockStore, FilePos, scan_block_file
from .coins import CoinsCache, CoinsDB, coin_key
from .datadir import DataDirLock
from .errors import ChainError, CorruptionError, access_error
from .events import ChainEvents
from .index import (
    FAILED_CHILD,
    FAILED_MASK,
    FAILED_VALID,
    HAVE_DATA,
    HAVE_UNDO,
    VALID_SCRIPTS,
    VALID_TRANSACTIONS,
    BlockIndex,
    BlockIndexEntry,
)
from .scriptcheck import CheckBatch, ScriptCheckPool
from .undo import decode_block_undo, encode_block_undo
from .validation import BlockValidator, script_failure

log = logging.getLogger("peercash.chain")

DEFAULT_DBCACHE_MB = 450
MAX_ORPHAN_BLOCKS = 100


def _remove_tree(folder: Path) -> None:
    """Delete a folder and everything in it; a missing one is fine, a refusal is raised."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)


@dataclass(slots=True)
class _Unverified:
    """A block connected while its script checks still run in the pool."""

    entry: BlockIndexEntry
    block: Block
    batch: CheckBatch | None  # None: nothing to check, but an earlier block is pending
    txs: list[Tx]


class ChainState:
    """One network's chain, on disk under ``datadir``."""

    def __init__(
        self,
        params: NetworkParams,
        datadir: Path,
        *,
        dbcache_mb: int = DEFAULT_DBCACHE_MB,
        assume_valid: bytes | None = None,
        script_workers: int = 0,
        clock: Callable[[], float] = time.time,
        reindex: bool = False,
        reindex_chainstate: bool = False,
        lock: DataDirLock | None = None,
    ) -> None:
        """``assume_valid``: skip signatures below this block (wire order); None: check all.
        ``script_workers``: extra processes for script checks (0 checks in this process).
        ``reindex``: throw away the block index, the UTXO set and the undo files and rebuild them
        from the block files (works even when those databases are too damaged to open).
        ``reindex_chainstate``: throw away only the UTXO set and connect the stored blocks again
        through the block index (undo records still intact are kept).
        ``lock``: the data directory's lock, already held by the caller (who releases it);
        without one the chain state takes the lock itself, before touching anything else, and
        releases it on ``close``. Raises ``DataDirLockedError`` when another process has it,
        ``DataDirAccessError`` for permission problems, ``CorruptionError`` for damage."""
        self.params = params
        self.datadir = datadir
        self.pool: ScriptCheckPool | None = None
        self._own_lock = lock is None
        self.lock = lock if lock is not None else DataDirLock(datadir)
        self._open_stores(reindex, reindex_chainstate)
        self.coins = CoinsCache(self.coins_db)
        self.dbcache_bytes = dbcache_mb * 1024 * 1024
        self.events = ChainEvents()
        self.chain: list[BlockIndexEntry] = []
        self.best_header: BlockIndexEntry | None = None
        self._candidates: set[BlockIndexEntry] = set()
        self._linked: set[BlockIndexEntry] = set()  # have data, and so do all ancestors
        self._unlinked: dict[bytes, list[BlockIndexEntry]] = {}
        self._orphans: dict[bytes, Block] = {}
        # Orphans rejected once their parent arrived (bounded), so an import can name them.
        self.orphan_errors: dict[bytes, tuple[int, RuleError]] = {}
        # Blocks just stored, kept parsed until connected so they are not read back from disk.
        self._fresh_blocks: dict[bytes, Block] = {}
        self._precious_counter = 0
        self.pool = ScriptCheckPool(script_workers) if script_workers > 0 else None
        # Deferred script checks (bulk import): a block is connected and the next one taken
        # while the pool checks its scripts; blocks stay "unverified" until their checks pass.
        self.defer_scripts = False
        self.defer_keep_inputs = 512
        self._unverified: deque[_Unverified] = deque()
        self._announced_tip: BlockIndexEntry | None = None
        self.validator = BlockValidator(self, assume_valid, clock)
        try:
            self.reindexed_blocks = self._reindex_files() if reindex else 0
            if not reindex:
                self._load()
        except BaseException as e:
            self._close_files()  # a damaged datadir must not leave databases open
            if isinstance(e, OSError) and (refused := access_error(e)) is not None:
                raise refused from None
            raise

    def _open_stores(self, reindex: bool, reindex_chainstate: bool) -> None:
        """Take the lock, then (and only then) wipe what a reindex rebuilds and open the block
        files, the block index and the UTXO database; on failure nothing stays open or held."""
        datadir = self.datadir
        try:
            datadir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise access_error(e, path=datadir) or e from None
        self.lock.acquire()
        try:
            if reindex:
                _remove_tree(datadir / "index")
                _remove_tree(datadir / "chainstate")
                # Nothing refers to the undo records once the index is gone: rewrite them from
                # scratch rather than append a second copy of each (rev*.dat would only grow).
                for rev in sorted((datadir / "blocks").glob("rev?????.dat")):
                    rev.unlink()
                log.info(
                    "Reindexing: rebuilding the block index and the UTXO set from the block files"
                )
            elif reindex_chainstate:
                _remove_tree(datadir / "chainstate")
                log.info("Reindexing the chain state: connecting the stored blocks again")
            self.blocks = BlockStore(datadir / "blocks", self.params.magic)
            self.index = BlockIndex(datadir / "index")
            self.coins_db = CoinsDB(datadir / "chainstate")
        except BaseException as e:
            self._close_files()
            if isinstance(e, OSError) and (refused := access_error(e)) is not None:
                raise refused from None
            raise

    # -- start-up ---------------------------------------------------------------------------------

    def _load(self) -> None:
        self.index.load()
        if not self.index.entries:
            self._init_genesis()
        for e in sorted(self.index.entries.values(), key=lambda e: e.height):
            self._note_header(e)
            if e.status & HAVE_DATA and (e.prev is None or e.prev in self._linked):
                self._linked.add(e)
                if not e.status & FAILED_MASK:
                    self._candidates.add(e)
        best = self.coins_db.best_block()
        tip = self.index.get(best) if best is not None else None
        if best is not None and tip is None:
            raise CorruptionError(
                "the UTXO set's best block is not in the block index", self.coins_db.path
            )
        if tip is None:
            genesis = self.index.get(self.params.genesis_hash)
            if genesis is None:
                raise CorruptionError("the block index lacks the genesis block", self.index.path)
            tip = genesis
            self.coins.flush(genesis.hash)
        self.chain = self._path_to(tip)
        self._verify_recent()
        # Loaded blocks are numbered in index order, not arrival order: let the tip we had win
        # ties among equal-work chains, so a restart never switches tips by itself.
        tip.sequence_id = 0
        self._prune_candidates()
        # Blocks stored after the last UTXO flush (a crash, or a kill): connect them again.
        flushed_height = self.height
        self.activate_best_chain()
        if self.height != flushed_height:
            log.info(
                "Reconnected %d blocks stored after the last UTXO set flush (height %d to %d)",
                self.height - flushed_height,
                flushed_height,
                self.height,
            )

    def _verify_recent(self, depth: int = 6) -> None:
        """Read back the last blocks and their undo data (Core's start-up check), so a damaged
        block file is reported now, with its name, not at some later reorg."""
        for e in self.chain[-depth:]:
            self.read_block(e)
            if e.undo_pos is not None:
                self.blocks.read_undo(e.undo_pos, e.hash)

    def _init_genesis(self) -> None:
        block = Block.parse(self.params.genesis)
        e = self.index.add(block.header)
        pos = self.blocks.write_block(block.serialize())
        e.data_pos = pos
        e.n_tx = len(block.txs)
        e.status = VALID_SCRIPTS | HAVE_DATA
        e.sequence_id = self.index.next_sequence()
        self.blocks.flush()
        self.index.mark_dirty(e)
        self.index.flush()
        # Core never adds the genesis coinbase to the UTXO set.
        self.coins.flush(e.hash)

    @staticmethod
    def _path_to(tip: BlockIndexEntry) -> list[BlockIndexEntry]:
        path: list[BlockIndexEntry] = []
        e: BlockIndexEntry | None = tip
        while e is not None:
            path.append(e)
            e = e.prev
        path.reverse()
        return path

    # -- queries ------------------------------------------------------------------------------

    @property
    def tip(self) -> BlockIndexEntry:
        return self.chain[-1]

    @property
    def height(self) -> int:
        return len(self.chain) - 1

    def contains(self, e: BlockIndexEntry) -> bool:
        return e.height < len(self.chain) and self.chain[e.height] is e

    def entry_at(self, height: int) -> BlockIndexEntry | None:
        return self.chain[height] if 0 <= height < len(self.chain) else None

    def find_fork(self, e: BlockIndexEntry) -> BlockIndexEntry:
        """The last block ``e``'s chain shares with the active chain."""
        if e.height >= len(self.chain):
            e = e.ancestor(len(self.chain) - 1)
        while not self.contains(e):
            assert e.prev is not None
            e = e.prev
        return e

    def read_block(self, e: BlockIndexEntry) -> Block:
        if e.data_pos is None:
            raise ChainError(f"block {e.header.hash_hex} is not stored")
        raw = self.blocks.read_block(e.data_pos)
        try:
            block = Block.parse(raw)
        except DecodeError as err:
            raise CorruptionError(
                f"stored block {e.header.hash_hex} does not parse ({err})",
                self.blocks.folder,
            ) from None
        if block.hash != e.hash:
            raise CorruptionError(
                f"stored block at height {e.height} has the wrong hash", self.blocks.folder
            )
        if block_merkle_root(block)[0] != block.header.merkle_root:
            raise CorruptionError(
                f"stored block at height {e.height} does not match its merkle root",
                self.blocks.path(e.data_pos),
            )
        return block

    def get_coin(self, txid: bytes, vout: int) -> SpentCoin | None:
        return self.coins.get(coin_key(txid, vout))

    def check_block(self, block: Block) -> None:
        """Context-free checks, with this network's signet challenge where it has one."""
        p = self.params
        check_block(
            block, p.pow_limit, signet_challenge=p.signet_challenge, genesis_hash=p.genesis_hash
        )

    # -- headers --------------------------------------------------------------------------------

    def _note_header(self, e: BlockIndexEntry) -> None:
        if e.status & FAILED_MASK:
            return
        b = self.best_header
        if b is None or e.chain_work > b.chain_work:
            self.best_header = e

    def accept_header(self, header: Header) -> BlockIndexEntry:
        """Validate a header against its parent and add it to the index (headers-first sync)."""
        existing = self.index.get(header.hash)
        if existing is not None:
            if existing.status & FAILED_MASK:
                raise RuleError("duplicate-invalid", "block is marked invalid", 0)
            return existing
        check_block_header(header, self.params.pow_limit)
        prev = self.index.get(header.prev_hash)
        if prev is None:
            raise RuleError("prev-blk-not-found", "unknown parent", 0)
        if prev.status & FAILED_MASK:
            raise RuleError("bad-prevblk", "parent is invalid")
        self.validator.check_header(header, prev)
        e = self.index.add(header)
        self._note_header(e)
        return e

    # -- blocks ---------------------------------------------------------------------------------

    def accept_block(
        self, block: Block, *, known_pos: FilePos | None = None, activate: bool = True
    ) -> BlockIndexEntry | None:
        """Check, store and (when it leads to more work) connect a block.

        Returns its index entry, or None when its parent is unknown (it is kept as an orphan
        and processed when the parent arrives). Raises ``RuleError`` for invalid blocks.
        """
        h = block.hash
        e = self.index.get(h)
        if e is not None and e.status & HAVE_DATA:
            if e.status & FAILED_MASK:
                raise RuleError("duplicate-invalid", "block is marked invalid", 0)
            return e
        prev = self.index.get(block.header.prev_hash)
        if prev is None:
            self.check_block(block)
            if len(self._orphans) >= MAX_ORPHAN_BLOCKS:
                self._orphans.pop(next(iter(self._orphans)))
            self._orphans[h] = block
            return None
        e = self._store_block(block, prev, known_pos)
        if activate:
            self.activate_best_chain()
        self._process_orphans(h, activate)
        return e

    def _store_block(
        self, block: Block, prev: BlockIndexEntry, known_pos: FilePos | None
    ) -> BlockIndexEntry:
        e = self.index.get(block.hash)
        try:
            if e is None:
                e = self.accept_header(block.header)
            elif e.status & FAILED_MASK:
                raise RuleError("duplicate-invalid", "block is marked invalid", 0)
            self.check_block(block)
            self.validator.check_block_contextual(block, prev)
        except RuleError as err:
            from peercash.consensus.checks import BLOCK_MUTATED_CODES

            if e is not None and err.code not in BLOCK_MUTATED_CODES and err.ban_score:
                self._mark_failed(e)
            raise
        e.data_pos = (
            known_pos if known_pos is not None else self.blocks.write_block(block.serialize())
        )
        e.n_tx = len(block.txs)
        e.status |= HAVE_DATA
        e.raise_validity(VALID_TRANSACTIONS)
        if len(self._fresh_blocks) >= 32:
            self._fresh_blocks.pop(next(iter(self._fresh_blocks)))
        self._fresh_blocks[e.hash] = block
        e.sequence_id = self.index.next_sequence()
        self.index.mark_dirty(e)
        self._link(e)
        return e

    def _link(self, e: BlockIndexEntry) -> None:
        if e.prev is not None and e.prev not in self._linked:
            self._unlinked.setdefault(e.prev.hash, []).append(e)
            return
        queue = [e]
        while queue:
            x = queue.pop()
            self._linked.add(x)
            if not x.status & FAILED_MASK and x.chain_work >= self.tip.chain_work:
                self._candidates.add(x)
            queue.extend(self._unlinked.pop(x.hash, []))

    def _process_orphans(self, parent_hash: bytes, activate: bool) -> None:
        ready = [b for b in self._orphans.values() if b.header.prev_hash == parent_hash]
        for b in ready:
            self._orphans.pop(b.hash, None)
            try:
                self.accept_block(b, activate=activate)
            except RuleError as err:
                log.info("orphan block %s rejected: %s", b.hash_hex, err)
                parent = self.index.get(parent_hash)
                if len(self.orphan_errors) >= MAX_ORPHAN_BLOCKS:
                    self.orphan_errors.pop(next(iter(self.orphan_errors)))
                self.orphan_errors[b.hash] = (parent.height + 1 if parent else -1, err)

    # -- chain selection ------------------------------------------------------------------------

    def _best_candidate(self) -> BlockIndexEntry | None:
        best: BlockIndexEntry | None = None
        for c in self._candidates:
            if c.status & FAILED_MASK:
                continue
            if (
                best is None
                or c.chain_work > best.chain_work
                or (c.chain_work == best.chain_work and c.sequence_id < best.sequence_id)
            ):
                best = c
        return best

    def _prune_candidates(self) -> None:
        tip = self.tip
        self._candidates = {
            c
            for c in self._candidates
            if not c.status & FAILED_MASK
            and (c.chain_work > tip.chain_work or c is tip or (c.chain_work == tip.chain_work))
        }

    def activate_best_chain(self) -> None:
        """Make the most-work valid chain we have data for the active one."""
        while True:
            best = self._best_candidate()
            if best is None or best is self.tip:
                break
            if best.chain_work < self.tip.chain_work or (
                best.chain_work == self.tip.chain_work and best.sequence_id >= self.tip.sequence_id
            ):
                break
            fork = self.find_fork(best)
            if fork is not self.tip and self._unverified:
                if not self._settle(wait=True):
                    continue  # a pending block failed: the chain moved back, look again
                fork = self.find_fork(best)
            disconnected: list[Block] = []
            while self.tip is not fork:
                disconnected.append(self._disconnect_tip())
            path = []
            e: BlockIndexEntry | None = best
            while e is not fork:
                assert e is not None
                path.append(e)
                e = e.prev
            failed = False
            for e in reversed(path):
                try:
                    self._connect(e)
                except RuleError as err:
                    # A pending block below may have failed first: then it is the one to blame.
                    if not self._unverified or self._settle(wait=True):
                        self._reject(e, err)
                    failed = True
                    break
                if self._unverified and not self._settle(wait=False):
                    failed = True
                    break
            if disconnected:
                txs = [tx for b in reversed(disconnected) for tx in b.txs[1:]]
                self.events.txs_disconnected(txs)
            self._maybe_flush()
            self._announce_tip()
            self._prune_candidates()
            if failed:
                continue
        self._prune_candidates()

    last_error: tuple[BlockIndexEntry, RuleError] | None = None

    def _reject(self, e: BlockIndexEntry, err: RuleError) -> None:
        log.warning("block %s at height %d is invalid: %s", e.header.hash_hex, e.height, err)
        self._mark_failed(e)
        self.last_error = (e, err)

    def _connect(self, e: BlockIndexEntry) -> None:
        block = self._fresh_blocks.pop(e.hash, None) or self.read_block(e)
        assert e.prev is self.tip
        pool = self.pool
        unverified = _Unverified(e, block, None, [])

        def defer(txs: list[Tx], spent: list[list[TxOut]], flags: int) -> None:
            assert pool is not None
            unverified.txs = txs
            unverified.batch = pool.submit(txs, spent, flags)

        deferred = self.defer_scripts and pool is not None
        undo = self.validator.connect_block(block, e, defer if deferred else None)
        if e.height > 0:
            e.undo_pos = self._store_undo(e, encode_block_undo(undo))
            e.status |= HAVE_UNDO
        self.chain.append(e)
        # Blocks are verified in chain order: one with nothing to check still waits its turn.
        if unverified.batch is not None or self._unverified:
            self._unverified.append(unverified)
            self.index.mark_dirty(e)
            assert pool is not None
            pool.help(self.defer_keep_inputs)
            return
        e.raise_validity(VALID_SCRIPTS)
        self.index.mark_dirty(e)
        self.events.connected(block, e)

    def _store_undo(self, e: BlockIndexEntry, raw: bytes) -> FilePos:
        """Append a block's undo record, unless the one already stored for it is intact and the
        same (a block connected again: ``--reindex-chainstate``, a restart after a crash, a
        reorganisation back), so connecting a block twice never grows ``rev*.dat``."""
        pos = e.undo_pos
        if pos is not None:
            try:
                if self.blocks.read_undo(pos, e.hash) == raw:
                    return pos
            except (CorruptionError, OSError):
                pass  # missing or damaged: write it again
        return self.blocks.write_undo(e.hash, raw)

    def _settle(self, wait: bool) -> bool:
        """Finish what deferred script checks have finished (all of them if ``wait``), in chain
        order; False when a block failed, which is then undone with everything above it."""
        pool = self.pool
        pending = self._unverified
        while pending:
            u = pending[0]
            batch = u.batch
            if batch is not None and not batch.done:
                assert pool is not None
                if not wait:
                    pool.pump()
                    if not batch.done:
                        return True
                pool.wait(batch)
            if batch is not None and batch.failures:
                self._undo_unverified(u, batch)
                return False
            pending.popleft()
            u.entry.raise_validity(VALID_SCRIPTS)
            self.index.mark_dirty(u.entry)
            self.events.connected(u.block, u.entry)
        return True

    def _undo_unverified(self, u: _Unverified, batch: CheckBatch) -> None:
        """Disconnect ``u``'s block and every block above it (none was announced) and mark it
        invalid with the script error that failed it."""
        assert self.pool is not None
        self.pool.discard()
        self._unverified.clear()
        f = batch.sorted_failures()[0]
        err = script_failure(u.txs[f.tx_index], f.input_index, f.error)
        while True:
            top = self.tip
            self._disconnect_tip(announce=False)
            if top is u.entry:
                break
        self._reject(u.entry, err)
        self._reset_candidates()
        self._announce_tip()

    def settle(self) -> None:
        """Wait for deferred script checks; a block that fails them is undone and marked
        invalid (``last_error`` names it). Everything else reads a settled chain."""
        if self._unverified:
            if self._settle(wait=True):
                self._announce_tip()
            self.activate_best_chain()

    def settle_pending(self) -> None:
        """Wait for the deferred script checks already queued, without connecting more blocks,
        so a reader under the chain lock (an RPC call) sees only verified blocks, as Core's
        tip always is. A failed block is undone here like in :meth:`settle`; choosing the next
        best chain is left to whoever connects blocks."""
        if self._unverified and self._settle(wait=True):
            self._announce_tip()

    def _announce_tip(self) -> None:
        """Tell listeners the tip changed, once per change, and never while blocks below it
        wait for their scripts."""
        if self._unverified or self.tip is self._announced_tip:
            return
        self._announced_tip = self.tip
        self.events.tip(self.tip)

    def _disconnect_tip(self, announce: bool = True) -> Block:
        e = self.tip
        if e.prev is None:
            raise ChainError("cannot disconnect the genesis block")
        block = self.read_block(e)
        if e.undo_pos is None:
            raise CorruptionError(f"no undo data for block {e.header.hash_hex}", self.blocks.folder)
        try:
            undo = decode_block_undo(self.blocks.read_undo(e.undo_pos, e.hash))
        except DecodeError as err:
            raise CorruptionError(f"undo data does not parse ({err})", self.blocks.folder) from None
        if len(undo) != len(block.txs) - 1:
            raise CorruptionError("undo data does not match its block", self.blocks.folder)
        coins = self.coins
        for tx, spent in zip(reversed(block.txs), [None, *undo][::-1], strict=True):
            txid = tx.txid
            for i, out in enumerate(tx.outputs):
                if not is_unspendable(out.script_pubkey):
                    coins.spend(coin_key(txid, i))
            if spent is not None:
                for txin, coin in zip(tx.inputs, spent, strict=True):
                    coins.add(coin_key(txin.prevout.txid, txin.prevout.index), coin, True)
        self.chain.pop()
        if announce:
            self.events.disconnected(block, e)
        return block

    # -- failure marks --------------------------------------------------------------------------

    def _mark_failed(self, e: BlockIndexEntry) -> None:
        e.status |= FAILED_VALID
        self.index.mark_dirty(e)
        self._candidates.discard(e)
        for x in self.index.entries.values():
            if x.height > e.height and not x.status & FAILED_MASK and x.ancestor(e.height) is e:
                x.status |= FAILED_CHILD
                self.index.mark_dirty(x)
                self._candidates.discard(x)
        if self.best_header is not None and self.best_header.status & FAILED_MASK:
            self.best_header = None
            for x in self.index.entries.values():
                self._note_header(x)

    def invalidate_block(self, block_hash: bytes) -> None:
        """Mark a block invalid and move off it (Core's ``invalidateblock``)."""
        e = self.index.get(block_hash)
        if e is None:
            raise ChainError("block not found")
        if e.prev is None:
            raise ChainError("cannot invalidate the genesis block")
        self.settle()
        disconnected: list[Block] = []
        while self.contains(e):
            disconnected.append(self._disconnect_tip())
        if disconnected:
            self.events.txs_disconnected([tx for b in reversed(disconnected) for tx in b.txs[1:]])
        self._mark_failed(e)
        self._reset_candidates()
        self.activate_best_chain()
        self.settle()
        self._announce_tip()

    def reconsider_block(self, block_hash: bytes) -> None:
        """Clear failure marks on a block, its descendants and ancestors (``reconsiderblock``)."""
        self.settle()
        e = self.index.get(block_hash)
        if e is None:
            raise ChainError("block not found")
        for x in self.index.entries.values():
            if x.status & FAILED_MASK and (
                (x.height >= e.height and x.ancestor(e.height) is e)
                or (x.height < e.height and e.ancestor(x.height) is x)
            ):
                x.status &= ~(FAILED_VALID | FAILED_CHILD)
                self.index.mark_dirty(x)
                self._note_header(x)
        self._reset_candidates()
        self.activate_best_chain()
        self.settle()

    def precious_block(self, block_hash: bytes) -> None:
        """Prefer this block among chains of equal work (``preciousblock``)."""
        self.settle()
        e = self.index.get(block_hash)
        if e is None:
            raise ChainError("block not found")
        if e.chain_work < self.tip.chain_work:
            return
        self._precious_counter -= 1
        e.sequence_id = self._precious_counter
        if e in self._linked and not e.status & FAILED_MASK:
            self._candidates.add(e)
        self.activate_best_chain()
        self.settle()

    def _reset_candidates(self) -> None:
        tip = self.tip
        self._candidates = {
            x for x in self._linked if not x.status & FAILED_MASK and x.chain_work >= tip.chain_work
        }
        self._candidates.add(tip)

    # -- persistence ----------------------------------------------------------------------------

    def _maybe_flush(self) -> None:
        if self.coins.approx_bytes > self.dbcache_bytes:
            if self._unverified and not self._settle(wait=True):
                return  # the chain moved back; the caller looks for the best chain again
            self._flush()

    def flush_blocks(self) -> None:
        """Make the stored blocks durable: block and undo files, then the block index. The UTXO
        set is left to ``flush``; after a crash, start-up connects these blocks again."""
        self.blocks.flush()
        self.index.flush()

    def flush(self) -> None:
        """Make everything so far durable: block files, then the index, then the UTXO set."""
        self.settle()
        self._flush()

    def _flush(self) -> None:
        assert not self._unverified, "unverified blocks must never reach the disk"
        self.blocks.flush()
        self.index.flush()
        self.coins.flush(self.tip.hash)

    def _reindex_files(self) -> int:
        """Rebuild the (empty) index and UTXO set from every intact record of the block files."""
        genesis_hash = self.params.genesis_hash
        count = 0

        def parse(raw: bytes) -> Block | None:
            try:
                return Block.parse(raw)
            except DecodeError:
                return None

        for path in self.blocks.block_files():
            file_no = int(path.name[3:8])
            for offset, block in scan_block_file(path, self.params.magic, parse):
                count += 1
                pos = FilePos(file_no, offset)
                if block.hash == genesis_hash:
                    if not self.chain:
                        self._adopt_genesis(block, pos)
                    continue
                if not self.chain:
                    self._init_genesis()
                    self.chain = [self.index.entries[genesis_hash]]
                try:
                    self.accept_block(block, known_pos=pos)
                except RuleError as err:
                    log.warning("reindex: block %s rejected: %s", block.hash_hex, err)
        if not self.chain:
            self._init_genesis()
            self.chain = [self.index.entries[genesis_hash]]
        self.activate_best_chain()
        self.flush()
        return count

    def _adopt_genesis(self, block: Block, pos: FilePos) -> None:
        e = self.index.add(block.header)
        e.data_pos = pos
        e.n_tx = len(block.txs)
        e.status = VALID_SCRIPTS | HAVE_DATA
        e.sequence_id = self.index.next_sequence()
        self.index.mark_dirty(e)
        self.chain = [e]
        self._linked.add(e)
        self._candidates.add(e)
        self._note_header(e)
        self.coins.flush(e.hash)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._close_files()

    def _close_files(self) -> None:
        try:
            if self.pool is not None:
                self.pool.close()
                self.pool = None
            # When opening failed part-way, only what was opened is there to close.
            if hasattr(self, "blocks"):
                self.blocks.close()
            if hasattr(self, "index"):
                self.index.env.close()
            if hasattr(self, "coins_db"):
                self.coins_db.close()
        finally:
            if self._own_lock:
                self.lock.release()

    def __enter__(self) -> ChainState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
