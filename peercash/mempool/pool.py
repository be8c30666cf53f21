"""The transaction memory pool: acceptance in Core's order, the pool's indexes, block and reorg
handling, size limit and expiry, replacement (full RBF), TRUC, packages and prioritisation.

Layer 2 (mempool). Sees the chain only through a :class:`~peercash.mempool.chainview.ChainView`.
Called by ``node.py`` (chain events), the RPC (sendrawtransaction, testmempoolaccept,
submitpackage, getmempool*, prioritisetransaction, savemempool) and the p2p relay.

Error contract: ``accept`` and ``accept_package`` never raise for a bad transaction; they return
an :class:`AcceptResult` whose ``reject_reason`` is Core's exact string and whose ``result``
(a :class:`TxResult`, Core's ``TxValidationResult``) tells relay what to do with the sender:
``MISSING_INPUTS`` is an orphan candidate, ``CONSENSUS`` broke a consensus rule, the rest are
policy. Programming errors (a wrong argument) raise.

Concurrency contract: not thread-safe; one thread (the one that owns the chain, or under the
node's chain lock) calls it. The script check (``chainview.verify_scripts``, or the
``script_checker`` given to the constructor) is pure and may run in a worker.

Clusters (Core 31's cluster mempool): the pool keeps its transactions in a
:class:`~peercash.mempool.cluster.ClusterSet` (``self.clusters``, keyed by txid, sized by
sigop-adjusted weight, fees modified by ``prioritisetransaction``), each cluster linearised and
cut into chunks. Clusters are limited to ``-limitclustercount`` transactions and
``-limitclustersize`` kvB ("too-large-cluster"); block building reads chunks best first,
eviction removes the worst chunk, and a replacement must improve the feerate diagram of the
clusters it touches.

Replacement: full RBF, no signalling, Core 31's rules: at most 100 distinct clusters directly
conflicted (rule 5), at least the replaced fees (rule 3) plus the incremental relay fee for its
own size (rule 4), cluster limits after the change, and a strictly better feerate diagram
("replacement-failed"); package RBF for a parent and child without pool ancestors likewise.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time as _time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path

from peercash.atomicfile import write_atomic
from peercash.consensus.checks import check_transaction
from peercash.consensus.contextual import SpentCoin, check_tx_inputs, format_money
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.primitives import WITNESS_SCALE_FACTOR, Block, OutPoint, Tx, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS, VerifyFlags
from peercash.consensus.script.sigops import transaction_sigop_cost

from . import policy
from .chainview import ChainView, verify_scripts
from .cluster import ClusterSet, DiagramOrder, compare_diagrams
from .policy import PolicyError, fee_for

log = logging.getLogger("peercash.mempool")

ScriptChecker = Callable[[Tx, Sequence[TxOut], int], list[tuple[int, ScriptError | None]]]

MEMPOOL_DUMP_MAGIC = b"PCMEMPL\x00"
MEMPOOL_DUMP_VERSION = 2
"""2 adds the unbroadcast txids after the loose deltas (version 1 files still load)."""
ENTRY_OVERHEAD_BYTES = 256
"""Estimated bookkeeping memory of one entry beyond its transaction (indexes, links)."""


class TxResult(Enum):
    """Core's ``TxValidationResult``: why a transaction was refused, for the caller to act on."""

    VALID = "valid"
    CONSENSUS = "consensus"
    INPUTS_NOT_STANDARD = "inputs-not-standard"
    NOT_STANDARD = "not-standard"
    MISSING_INPUTS = "missing-inputs"
    PREMATURE_SPEND = "premature-spend"
    WITNESS_MUTATED = "witness-mutated"
    WITNESS_STRIPPED = "witness-stripped"
    CONFLICT = "conflict"
    MEMPOOL_POLICY = "mempool-policy"
    NO_MEMPOOL = "no-mempool"
    RECONSIDERABLE = "reconsiderable"
    UNKNOWN = "unknown"


class Removal(StrEnum):
    """Core's ``MemPoolRemovalReason`` names."""

    EXPIRY = "expiry"
    SIZELIMIT = "sizelimit"
    REORG = "reorg"
    BLOCK = "block"
    CONFLICT = "conflict"
    REPLACED = "replaced"


class Reject(Exception):
    """Internal: stop acceptance with this result and Core reject reason."""

    def __init__(self, result: TxResult, reason: str, debug: str = "") -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason
        self.debug = debug


@dataclass(slots=True)
class AcceptResult:
    """The outcome of offering one transaction (Core's ``MempoolAcceptResult``)."""

    txid: bytes
    wtxid: bytes
    result: TxResult
    reject_reason: str | None = None
    debug: str = ""
    fee: int | None = None
    vsize: int | None = None
    replaced: list[Tx] = field(default_factory=list)
    already_in_pool: bool = False
    effective_feerate: int | None = None
    """sat/kvB the transaction was judged at (its own, or its package's)."""
    effective_includes: list[bytes] = field(default_factory=list)
    """wtxids whose fees and sizes made ``effective_feerate``."""

    @property
    def allowed(self) -> bool:
        return self.result is TxResult.VALID

    @property
    def missing_inputs(self) -> bool:
        """The p2p layer's cue to keep the transaction as an orphan."""
        return self.result is TxResult.MISSING_INPUTS

    @property
    def reject_details(self) -> str:
        """Core's ``TxValidationState::ToString``: the reason, then ", debug" if any."""
        reason = self.reject_reason or ""
        return f"{reason}, {self.debug}" if self.debug else reason


@dataclass(slots=True)
class PackageResult:
    """The outcome of ``accept_package``: per-wtxid results and Core's ``package_msg``."""

    package_msg: str
    results: dict[bytes, AcceptResult]
    replaced: list[Tx] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.package_msg == "success"


@dataclass(eq=False, slots=True)
class MempoolEntry:
    """One transaction in the pool with what acceptance learnt about it."""

    tx: Tx
    fee: int
    vsize: int
    """Sigop-adjusted virtual size (what fees are judged on)."""
    weight: int
    time: int
    height: int
    """The chain height when it entered."""
    sigop_cost: int
    spends_coinbase: bool
    sequence: int
    fee_delta: int = 0
    parents: set[bytes] = field(default_factory=set)
    children: set[bytes] = field(default_factory=set)
    usage: int = 0
    adjusted_weight: int = 0
    """Weight, or the sigop cost priced at ``-bytespersigop`` when larger (Core's
    ``GetSigOpsAdjustedWeight``): the size clusters and chunks are measured in."""

    @property
    def txid(self) -> bytes:
        return self.tx.txid

    @property
    def modified_fee(self) -> int:
        return self.fee + self.fee_delta


@dataclass(slots=True)
class _Work:
    """Core's ``Workspace``: what one acceptance learns as it goes."""

    tx: Tx
    spent: list[TxOut] = field(default_factory=list)
    coin_heights: list[int] = field(default_factory=list)
    parents: set[bytes] = field(default_factory=set)
    conflicts: set[bytes] = field(default_factory=set)
    all_conflicts: set[bytes] = field(default_factory=set)
    fee: int = 0
    modified_fee: int = 0
    vsize: int = 0
    weight: int = 0
    adjusted_weight: int = 0
    sigop_cost: int = 0
    spends_coinbase: bool = False
    sibling_eviction: bool = False
    allow_replacement: bool = True
    allow_sibling_eviction: bool = True


class MemPool:
    """Transactions waiting for a block, admitted by Core's default policy."""

    def __init__(
        self,
        chain: ChainView,
        *,
        max_size_bytes: int = policy.DEFAULT_MAX_MEMPOOL_SIZE_MB * 1_000_000,
        expiry_seconds: int = policy.DEFAULT_MEMPOOL_EXPIRY_HOURS * 3600,
        min_relay_fee: int = policy.DEFAULT_MIN_RELAY_TX_FEE,
        incremental_relay_fee: int = policy.DEFAULT_INCREMENTAL_RELAY_FEE,
        dust_relay_fee: int = policy.DUST_RELAY_TX_FEE,
        max_datacarrier_bytes: int | None = policy.MAX_OP_RETURN_RELAY,
        permit_bare_multisig: bool = policy.DEFAULT_PERMIT_BAREMULTISIG,
        bytes_per_sigop: int = policy.DEFAULT_BYTES_PER_SIGOP,
        require_standard: bool = True,
        cluster_limit: int = policy.DEFAULT_CLUSTER_LIMIT,
        cluster_size_limit_kvb: int = policy.DEFAULT_CLUSTER_SIZE_LIMIT_KVB,
        clock: Callable[[], float] = _time.time,
        script_checker: ScriptChecker = verify_scripts,
    ) -> None:
        """All fee rates are sat/kvB (``-minrelaytxfee=0.00000100`` BTC/kvB is 100)."""
        self.chain = chain
        self.max_size_bytes = max_size_bytes
        self.expiry_seconds = expiry_seconds
        self.min_relay_fee = min_relay_fee
        self.incremental_relay_fee = incremental_relay_fee
        self.dust_relay_fee = dust_relay_fee
        self.max_datacarrier_bytes = max_datacarrier_bytes
        self.permit_bare_multisig = permit_bare_multisig
        self.bytes_per_sigop = bytes_per_sigop
        self.require_standard = require_standard
        self.cluster_limit = cluster_limit
        self.cluster_size_limit_kvb = cluster_size_limit_kvb
        self.clock = clock
        self.script_checker = script_checker

        self.entries: dict[bytes, MempoolEntry] = {}
        self.clusters: ClusterSet[bytes] = ClusterSet(
            max_count=cluster_limit,
            max_vsize=cluster_size_limit_kvb * 1000 * WITNESS_SCALE_FACTOR,
        )
        """Every entry by txid, in clusters; sizes are adjusted weights (the limit is
        ``-limitclustersize`` vbytes times four, as Core's)."""
        self.by_wtxid: dict[bytes, bytes] = {}
        self.spenders: dict[tuple[bytes, int], bytes] = {}
        self.deltas: dict[bytes, int] = {}
        self.unbroadcast: set[bytes] = set()
        """Core's unbroadcast set: txids submitted locally (RPC) that no peer has asked for yet."""
        self.total_vsize = 0
        self.total_fee = 0
        self.usage = 0
        self.loaded = False
        self.on_added: list[Callable[[MempoolEntry], None]] = []
        self.on_removed: list[Callable[[Tx, Removal], None]] = []
        self.adding_package = False
        """True while ``accept_package`` runs, so ``on_added`` listeners know an entry was
        submitted in a package (Core's ``m_submitted_in_package``; the fee estimator skips it)."""
        self._sequence = 0
        self._rolling_min_fee = 0.0
        self._last_rolling_update = 0.0
        self._block_since_bump = False
        self._quiet = False

    # -- queries ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def contains(self, txid: bytes) -> bool:
        return txid in self.entries

    def contains_wtxid(self, wtxid: bytes) -> bool:
        return wtxid in self.by_wtxid

    def get(self, txid: bytes) -> Tx | None:
        e = self.entries.get(txid)
        return e.tx if e is not None else None

    def get_by_wtxid(self, wtxid: bytes) -> Tx | None:
        txid = self.by_wtxid.get(wtxid)
        return self.entries[txid].tx if txid is not None else None

    def entry(self, txid: bytes) -> MempoolEntry | None:
        return self.entries.get(txid)

    def spender(self, outpoint: OutPoint) -> bytes | None:
        """The txid of the pool transaction spending ``outpoint`` (gettxspendingprevout)."""
        return self.spenders.get((outpoint.txid, outpoint.index))

    def txids(self) -> list[bytes]:
        """Every txid, oldest entry first."""
        return [e.txid for e in sorted(self.entries.values(), key=lambda e: e.sequence)]

    def ancestors(self, txid: bytes) -> set[bytes]:
        """Every in-pool ancestor of ``txid`` (not itself)."""
        return self._walk(self.entries[txid].parents, lambda e: e.parents)

    def descendants(self, txid: bytes) -> set[bytes]:
        """Every in-pool descendant of ``txid`` (not itself)."""
        return self._walk(self.entries[txid].children, lambda e: e.children)

    def _walk(
        self, start: Iterable[bytes], step: Callable[[MempoolEntry], set[bytes]]
    ) -> set[bytes]:
        seen: set[bytes] = set()
        todo = list(start)
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            todo.extend(step(self.entries[t]))
        return seen

    def cluster(self, txid: bytes) -> set[bytes]:
        """Every transaction connected to ``txid`` through pool parents and children, itself
        included (the cluster getmempoolcluster shows and cluster limits count)."""
        return set(self.clusters.cluster_of(txid))

    def cluster_info(self, txid: bytes) -> dict[str, object]:
        """getmempoolcluster's fields (Core 31): the cluster's adjusted weight, its size and
        its chunks in mining order, each ``{chunkfee (satoshis, modified), chunkweight,
        txs}``; KeyError if absent."""
        chunks = self.clusters.cluster_chunks(txid)
        return {
            "clusterweight": sum(rate.size for rate, _ in chunks),
            "txcount": sum(len(keys) for _, keys in chunks),
            "chunks": [
                {"chunkfee": rate.fee, "chunkweight": rate.size, "txs": list(keys)}
                for rate, keys in chunks
            ],
        }

    def mining_order(self) -> list[bytes]:
        """Every txid in the order a block would take them: chunks by feerate, best first,
        parents before children (Core 31's ``GetSortedScoreWithTopology``)."""
        return [k for _, keys in self.clusters.iter_chunks_best_first() for k in keys]

    def min_fee(self) -> int:
        """Core's ``GetMinFee``: the rolling minimum feerate (sat/kvB) trimming raised, decaying
        with a 12-hour half-life (faster while the pool is small) once a block has arrived."""
        if not self._block_since_bump or self._rolling_min_fee == 0:
            return round(self._rolling_min_fee)
        now = self.clock()
        if now > self._last_rolling_update + 10:
            halflife = float(policy.ROLLING_FEE_HALFLIFE)
            if self.usage < self.max_size_bytes / 4:
                halflife /= 4
            elif self.usage < self.max_size_bytes / 2:
                halflife /= 2
            self._rolling_min_fee /= 2.0 ** ((now - self._last_rolling_update) / halflife)
            self._last_rolling_update = now
            if self._rolling_min_fee < self.incremental_relay_fee / 2:
                self._rolling_min_fee = 0.0
                return 0
        return max(round(self._rolling_min_fee), self.incremental_relay_fee)

    def info(self) -> dict[str, object]:
        """getmempoolinfo's fields; fee rates in sat/kvB and fees in satoshis (the RPC converts
        them to BTC)."""
        return {
            "loaded": self.loaded,
            "size": len(self.entries),
            "bytes": self.total_vsize,
            "usage": self.usage,
            "total_fee": self.total_fee,
            "maxmempool": self.max_size_bytes,
            "mempoolminfee": max(self.min_fee(), self.min_relay_fee),
            "minrelaytxfee": self.min_relay_fee,
            "incrementalrelayfee": self.incremental_relay_fee,
            "unbroadcastcount": len(self.unbroadcast),
            "fullrbf": True,
            "permitbaremultisig": self.permit_bare_multisig,
            "maxdatacarriersize": self.max_datacarrier_bytes or 0,
            "limitclustercount": self.cluster_limit,
            "limitclustersize": self.cluster_size_limit_kvb * 1000,
            "optimal": self.clusters.is_optimal(),
        }

    def entry_info(self, txid: bytes) -> dict[str, object]:
        """getmempoolentry's fields (fees in satoshis under ``fees``); KeyError if absent."""
        e = self.entries[txid]
        anc = self.ancestors(txid)
        desc = self.descendants(txid)
        anc_entries = [self.entries[t] for t in anc]
        desc_entries = [self.entries[t] for t in desc]
        chunk = self.clusters.chunk_feerate(txid)
        return {
            "vsize": e.vsize,
            "weight": e.weight,
            "time": e.time,
            "height": e.height,
            "descendantcount": len(desc) + 1,
            "descendantsize": e.vsize + sum(d.vsize for d in desc_entries),
            "ancestorcount": len(anc) + 1,
            "ancestorsize": e.vsize + sum(a.vsize for a in anc_entries),
            "chunkweight": chunk.size,
            "wtxid": e.tx.wtxid_hex,
            "fees": {
                "base": e.fee,
                "modified": e.modified_fee,
                "ancestor": e.modified_fee + sum(a.modified_fee for a in anc_entries),
                "descendant": e.modified_fee + sum(d.modified_fee for d in desc_entries),
                "chunk": chunk.fee,
            },
            "depends": sorted(p[::-1].hex() for p in e.parents),
            "spentby": sorted(c[::-1].hex() for c in e.children),
            "bip125-replaceable": True,
            "unbroadcast": txid in self.unbroadcast,
        }

    # -- acceptance -------------------------------------------------------------------------

    def accept(
        self,
        tx: Tx,
        *,
        bypass_limits: bool = False,
        test_accept: bool = False,
        allow_replacement: bool = True,
        accept_time: int | None = None,
    ) -> AcceptResult:
        """Offer ``tx`` (Core's ``AcceptToMemoryPool``). ``bypass_limits``: from a disconnected
        block (no fee floors, no size trimming of it). ``test_accept``: check only."""
        try:
            w = self._prechecks(tx, bypass_limits, allow_replacement, package_feerates=False)
            self._policy_checks(w)
            self._check_ephemeral_spends(tx, w, in_package=())
            self._script_checks(w)
        except Reject as r:
            return AcceptResult(
                tx.txid,
                tx.wtxid,
                r.result,
                r.reason,
                r.debug,
                already_in_pool=r.reason == "txn-already-in-mempool",
            )
        rate = _feerate(w.modified_fee, w.vsize)
        result = AcceptResult(
            tx.txid,
            tx.wtxid,
            TxResult.VALID,
            fee=w.fee,
            vsize=w.vsize,
            effective_feerate=rate,
            effective_includes=[tx.wtxid],
        )
        if test_accept:
            return result
        result.replaced = self._finalize(w, accept_time)
        if not bypass_limits:
            self.trim_to_size()
            if tx.txid not in self.entries:
                return AcceptResult(tx.txid, tx.wtxid, TxResult.MEMPOOL_POLICY, "mempool full", "")
        return result

    def _reject(self, result: TxResult, reason: str, debug: str = "") -> Reject:
        return Reject(result, reason, debug)

    def _prechecks(
        self,
        tx: Tx,
        bypass_limits: bool,
        allow_replacement: bool,
        *,
        package_feerates: bool,
        package_coins: dict[tuple[bytes, int], SpentCoin] | None = None,
    ) -> _Work:
        """Core's ``MemPoolAccept::PreChecks``, in its order. ``package_coins``: outputs of
        earlier package transactions that are not in the pool (package RBF)."""
        chain = self.chain
        txid = tx.txid
        try:
            check_transaction(tx)
        except RuleError as e:
            raise self._reject(TxResult.CONSENSUS, e.code, e.reason) from None
        if tx.is_coinbase():
            raise self._reject(TxResult.CONSENSUS, "coinbase")
        if self.require_standard:
            try:
                policy.check_standard_tx(
                    tx,
                    max_datacarrier_bytes=self.max_datacarrier_bytes,
                    permit_bare_multisig=self.permit_bare_multisig,
                    dust_relay_fee=self.dust_relay_fee,
                )
                policy.check_nonwitness_size(tx)
            except PolicyError as e:
                raise self._reject(TxResult.NOT_STANDARD, e.code, e.reason) from None
        if not chain.is_final(tx):
            raise self._reject(TxResult.PREMATURE_SPEND, "non-final")
        if tx.wtxid in self.by_wtxid:
            raise self._reject(TxResult.CONFLICT, "txn-already-in-mempool")
        if txid in self.entries:
            raise self._reject(TxResult.CONFLICT, "txn-same-nonwitness-data-in-mempool")

        w = _Work(tx, allow_replacement=allow_replacement)
        # One pass over the inputs: the pool transactions they conflict with (a conflict when
        # replacement is not allowed stops here, before any missing input is reported), then
        # the coin each spends, from a pool parent or the chain.
        spenders = self.spenders
        entries = self.entries
        get_coin = chain.get_coin
        next_height = chain.tip_height + 1
        spent_coins: list[SpentCoin] = []
        missing = False
        for txin in tx.inputs:
            p = txin.prevout
            ptxid = p.txid
            index = p.index
            spender = spenders.get((ptxid, index))
            if spender is not None:
                if not allow_replacement:
                    raise self._reject(TxResult.MEMPOOL_POLICY, "bip125-replacement-disallowed")
                w.conflicts.add(spender)
            parent = entries.get(ptxid)
            if parent is not None:
                outs = parent.tx.outputs
                if index < len(outs):
                    spent_coins.append(SpentCoin(outs[index], next_height, False))
                    w.parents.add(ptxid)
                else:
                    missing = True
                continue
            if package_coins is not None and (ptxid, index) in package_coins:
                spent_coins.append(package_coins[(ptxid, index)])
                continue
            coin = get_coin(ptxid, index)
            if coin is None:
                missing = True
            else:
                spent_coins.append(coin)
        if missing:
            for i in range(len(tx.outputs)):
                if get_coin(txid, i) is not None:
                    raise self._reject(TxResult.CONFLICT, "txn-already-known")
            raise self._reject(TxResult.MISSING_INPUTS, "bad-txns-inputs-missingorspent")
        w.spent = [c.txout for c in spent_coins]
        w.coin_heights = [c.height for c in spent_coins]
        w.spends_coinbase = any(c.coinbase for c in spent_coins)

        if not chain.sequence_locks_ok(tx, w.coin_heights):
            raise self._reject(TxResult.PREMATURE_SPEND, "non-BIP68-final")
        try:
            w.fee = check_tx_inputs(tx, spent_coins, next_height, chain.coinbase_maturity)
        except RuleError as e:
            kind = (
                TxResult.PREMATURE_SPEND
                if e.code == "bad-txns-premature-spend-of-coinbase"
                else TxResult.CONSENSUS
            )
            raise self._reject(kind, e.code, e.reason) from None
        w.modified_fee = w.fee + self.deltas.get(txid, 0)

        if self.require_standard:
            try:
                policy.check_inputs_standard(tx, w.spent)
            except PolicyError as e:
                raise self._reject(TxResult.INPUTS_NOT_STANDARD, e.code, e.reason) from None
            try:
                policy.check_witness_standard(tx, w.spent)
            except PolicyError as e:
                # Core gives no details here (IsWitnessStandard is a bare yes/no).
                raise self._reject(TxResult.WITNESS_MUTATED, e.code) from None

        w.sigop_cost = transaction_sigop_cost(tx, w.spent, int(STANDARD_SCRIPT_VERIFY_FLAGS))
        w.weight = tx.weight()
        w.vsize = policy.sigop_adjusted_vsize(w.weight, w.sigop_cost, self.bytes_per_sigop)
        w.adjusted_weight = max(w.weight, w.sigop_cost * self.bytes_per_sigop)
        try:
            if self.require_standard:
                policy.check_ephemeral_fee(tx, w.fee, w.modified_fee, self.dust_relay_fee)
            policy.check_sigop_cost(w.sigop_cost)
        except PolicyError as e:
            raise self._reject(TxResult.NOT_STANDARD, e.code, e.reason) from None

        # Below the minimum relay feerate nothing enters on its own, not even in a package
        # (a package child could be replaced away); TRUC transactions are the exception.
        min_relay = fee_for(self.min_relay_fee, w.vsize)
        if not bypass_limits and tx.version != policy.TRUC_VERSION and w.modified_fee < min_relay:
            raise self._reject(
                TxResult.MEMPOOL_POLICY,
                "min relay fee not met",
                f"{w.modified_fee} < {min_relay}",
            )
        if not bypass_limits and not package_feerates:
            self._check_fee_rate(w.vsize, w.modified_fee)
        return w

    def _check_fee_rate(self, vsize: int, modified_fee: int) -> None:
        """Core's ``CheckFeeRate`` (reconsiderable: a package may pay for it)."""
        reject_fee = fee_for(self.min_fee(), vsize)
        if reject_fee > 0 and modified_fee < reject_fee:
            raise self._reject(
                TxResult.RECONSIDERABLE,
                "mempool min fee not met",
                f"{modified_fee} < {reject_fee}",
            )
        min_relay = fee_for(self.min_relay_fee, vsize)
        if modified_fee < min_relay:
            raise self._reject(
                TxResult.RECONSIDERABLE, "min relay fee not met", f"{modified_fee} < {min_relay}"
            )

    def _check_ephemeral_spends(self, tx: Tx, w: _Work, in_package: Sequence[Tx]) -> None:
        """Core's ``CheckEphemeralSpends``: every dust output of an unconfirmed parent must be
        spent by this child ("missing-ephemeral-spends")."""
        if not w.parents and not in_package:
            return  # no unconfirmed parent: nothing to check
        spent = {(i.prevout.txid, i.prevout.index) for i in tx.inputs}
        parents: dict[bytes, Tx] = {}
        for p in w.parents:
            parents[p] = self.entries[p].tx
        for ptx in in_package:
            if ptx.txid in {i.prevout.txid for i in tx.inputs}:
                parents[ptx.txid] = ptx
        for ptxid, ptx in parents.items():
            for index in policy.dust_outputs(ptx, self.dust_relay_fee):
                if (ptxid, index) not in spent:
                    raise self._reject(
                        TxResult.MEMPOOL_POLICY,
                        "missing-ephemeral-spends",
                        f"tx {tx.txid_hex} (wtxid={tx.wtxid_hex}) did not spend parent's "
                        f"ephemeral dust",
                    )

    def _policy_checks(self, w: _Work) -> None:
        """The rest of PreChecks (TRUC rules), Core 31's ``ReplacementChecks`` when the
        transaction conflicts, the cluster limits, then no spend of what it replaces."""
        self._truc_checks(w)
        if w.conflicts:
            self._replacement_checks(w)
        else:
            self._cluster_check(w)
        if w.conflicts:
            ancestors: set[bytes] = set(w.parents)
            for p in w.parents:
                ancestors |= self.ancestors(p)
            for a in sorted(ancestors & w.conflicts):
                # Consensus: a transaction cannot depend on one it conflicts with.
                raise self._reject(
                    TxResult.CONSENSUS,
                    "bad-txns-spends-conflicting-tx",
                    f"{w.tx.txid_hex} spends conflicting transaction {a[::-1].hex()}",
                )

    def _truc_checks(self, w: _Work) -> None:
        """Core's ``SingleTRUCChecks`` (BIP431); may turn a sibling into a conflict to evict."""
        tx = w.tx
        is_truc = tx.version == policy.TRUC_VERSION
        if not is_truc and not w.parents:
            return  # no TRUC transaction involved: nothing to check
        txid = tx.txid_hex
        wtxid = tx.wtxid_hex
        parents = [self.entries[p] for p in w.parents]
        for p in parents:
            parent_truc = p.tx.version == policy.TRUC_VERSION
            if parent_truc and not is_truc:
                raise self._reject(
                    TxResult.MEMPOOL_POLICY,
                    "TRUC-violation",
                    f"non-version=3 tx {txid} (wtxid={wtxid}) cannot spend from version=3 tx "
                    f"{p.tx.txid_hex} (wtxid={p.tx.wtxid_hex})",
                )
            if is_truc and not parent_truc:
                raise self._reject(
                    TxResult.MEMPOOL_POLICY,
                    "TRUC-violation",
                    f"version=3 tx {txid} (wtxid={wtxid}) cannot spend from non-version=3 tx "
                    f"{p.tx.txid_hex} (wtxid={p.tx.wtxid_hex})",
                )
        if not is_truc:
            return
        if w.vsize > policy.TRUC_MAX_VSIZE:
            raise self._reject(
                TxResult.MEMPOOL_POLICY,
                "TRUC-violation",
                f"version=3 tx {txid} (wtxid={wtxid}) is too big: {w.vsize} > "
                f"{policy.TRUC_MAX_VSIZE} virtual bytes",
            )
        if not parents:
            return
        ancestors: set[bytes] = set(w.parents)
        for ptxid in w.parents:
            ancestors |= self.ancestors(ptxid)
        if len(ancestors) + 1 > policy.TRUC_ANCESTOR_LIMIT:
            raise self._reject(
                TxResult.MEMPOOL_POLICY,
                "TRUC-violation",
                f"tx {txid} (wtxid={wtxid}) would have too many ancestors",
            )
        if w.vsize > policy.TRUC_CHILD_MAX_VSIZE:
            raise self._reject(
                TxResult.MEMPOOL_POLICY,
                "TRUC-violation",
                f"version=3 child tx {txid} (wtxid={wtxid}) is too big: {w.vsize} > "
                f"{policy.TRUC_CHILD_MAX_VSIZE} virtual bytes",
            )
        parent = parents[0]
        children = parent.children - w.conflicts
        if len(children) + 2 > policy.TRUC_DESCENDANT_LIMIT:
            sibling = next(iter(children))
            if (
                w.allow_replacement
                and w.allow_sibling_eviction
                and len(children) == 1
                and self.entries[sibling].parents == {parent.txid}
            ):
                # Sibling eviction: the existing child is replaced under the RBF rules.
                w.conflicts.add(sibling)
                w.sibling_eviction = True
                return
            raise self._reject(
                TxResult.MEMPOOL_POLICY,
                "TRUC-violation",
                f"tx {parent.tx.txid_hex} (wtxid={parent.tx.wtxid_hex}) would exceed "
                f"descendant count limit",
            )

    def _conflict_set(self, conflicts: Iterable[bytes]) -> set[bytes]:
        """The direct conflicts with every descendant (what a replacement evicts)."""
        doomed: set[bytes] = set()
        for c in conflicts:
            if c not in doomed:
                doomed.add(c)
                doomed |= self.descendants(c)
        return doomed

    def _too_many_clusters(self, txid_hex: str, conflicts: Iterable[bytes]) -> str | None:
        """Core 31's rule 5 (``GetEntriesForConflicts``): the direct conflicts may span at most
        100 distinct clusters; the debug text when they span more."""
        n = self.clusters.count_distinct_clusters(conflicts)
        if n > policy.MAX_REPLACEMENT_CANDIDATES:
            return (
                f"rejecting replacement {txid_hex}; too many conflicting clusters "
                f"({n} > {policy.MAX_REPLACEMENT_CANDIDATES})"
            )
        return None

    def _pays_for_rbf(
        self, txid_hex: str, original_fees: int, replacement_fees: int, vsize: int
    ) -> str | None:
        """Core's ``PaysForRBF``: rules 3 (no less than the fees replaced) and 4 (the extra pays
        for its own relay at the incremental relay feerate); the debug text on failure."""
        if replacement_fees < original_fees:
            return (
                f"rejecting replacement {txid_hex}, less fees than conflicting txs; "
                f"{format_money(replacement_fees)} < {format_money(original_fees)}"
            )
        additional = replacement_fees - original_fees
        needed = fee_for(self.incremental_relay_fee, vsize)
        if additional < needed:
            return (
                f"rejecting replacement {txid_hex}, not enough additional fees to relay; "
                f"{format_money(additional)} < {format_money(needed)}"
            )
        return None

    def _improves_diagram(
        self, remove: set[bytes], add: Sequence[tuple[bytes, int, int, Iterable[bytes]]]
    ) -> bool:
        """Core's ``ImprovesFeerateDiagram``: the touched clusters' feerate diagram after the
        change is strictly better than before (equal or incomparable is not enough)."""
        old, new = self.clusters.diagrams_for_replacement(remove, add)
        return compare_diagrams(new, old) is DiagramOrder.BETTER

    def _replacement_checks(self, w: _Work) -> None:
        """Core 31's ``ReplacementChecks`` (full RBF): direct conflicts in at most 100 clusters
        (rule 5), no less than the fees replaced plus the incremental relay fee for its own
        size (rules 3 and 4, reconsiderable), cluster limits once the conflicts are gone, then
        a strictly better feerate diagram of the touched clusters ("replacement-failed",
        reconsiderable). Core 31 dropped the pre-cluster per-conflict feerate rule and the ban
        on new unconfirmed inputs: the diagram check covers both."""
        tx = w.tx
        txid_hex = tx.txid_hex
        suffix = " (including sibling eviction)" if w.sibling_eviction else ""
        err = self._too_many_clusters(txid_hex, w.conflicts)
        if err is not None:
            raise self._reject(
                TxResult.MEMPOOL_POLICY, "too many potential replacements" + suffix, err
            )
        all_conflicts = self._conflict_set(w.conflicts)
        conflicting_fees = sum(self.entries[c].modified_fee for c in all_conflicts)
        err = self._pays_for_rbf(txid_hex, conflicting_fees, w.modified_fee, w.vsize)
        if err is not None:
            raise self._reject(TxResult.RECONSIDERABLE, "insufficient fee" + suffix, err)
        parents = [p for p in w.parents if p not in all_conflicts]
        if not self.clusters.check_change(
            all_conflicts, [(tx.txid, w.adjusted_weight, parents)]
        ).ok:
            raise self._reject(TxResult.MEMPOOL_POLICY, "too-large-cluster")
        if not self._improves_diagram(
            all_conflicts, [(tx.txid, w.modified_fee, w.adjusted_weight, parents)]
        ):
            raise self._reject(
                TxResult.RECONSIDERABLE,
                "replacement-failed",
                "insufficient feerate: does not improve feerate diagram",
            )
        w.all_conflicts = all_conflicts

    def _cluster_check(self, w: _Work) -> None:
        """Core 31's cluster limits: the cluster the transaction would form with its parents'
        clusters holds at most ``-limitclustercount`` transactions and ``-limitclustersize``
        kvB of adjusted weight ("too-large-cluster", no details)."""
        if not self.clusters.check_add(w.adjusted_weight, w.parents).ok:
            raise self._reject(TxResult.MEMPOOL_POLICY, "too-large-cluster")

    def _script_checks(self, w: _Work) -> None:
        """Core's ``PolicyScriptChecks``: every input under the standard flags (and the next
        block's consensus flags). As in Core 30 every failure reads
        "mempool-script-verify-flag-failed (<ScriptErrorString>)" with result ``NOT_STANDARD``,
        or ``WITNESS_STRIPPED`` when a witness-less transaction passes without the witness rules
        but not with them (its witness may have been stripped in transit)."""
        tx = w.tx
        flags = int(STANDARD_SCRIPT_VERIFY_FLAGS) if self.require_standard else 0
        flags |= self.chain.script_flags()
        for index, err in self.script_checker(tx, w.spent, flags):
            if err is None:
                continue
            kind = TxResult.NOT_STANDARD
            if not tx.has_witness():
                no_witness = flags & ~(int(VerifyFlags.WITNESS) | int(VerifyFlags.CLEANSTACK))
                no_cleanstack = flags & ~int(VerifyFlags.CLEANSTACK)
                if self._scripts_pass(w, no_witness) and not self._scripts_pass(w, no_cleanstack):
                    kind = TxResult.WITNESS_STRIPPED
            prevout = tx.inputs[index].prevout
            raise self._reject(
                kind,
                f"mempool-script-verify-flag-failed ({policy.script_error_text(err.value)})",
                f"input {index} of {tx.txid_hex} (wtxid {tx.wtxid_hex}), spending "
                f"{prevout.txid_hex}:{prevout.index}",
            )

    def _scripts_pass(self, w: _Work, flags: int) -> bool:
        return all(e is None for _, e in self.script_checker(w.tx, w.spent, flags))

    def _finalize(self, w: _Work, accept_time: int | None) -> list[Tx]:
        """Core's ``Finalize``: evict what the transaction replaces, then add it."""
        replaced: list[Tx] = []
        doomed = w.all_conflicts or set(w.conflicts)
        if doomed:
            for t in sorted(doomed, key=lambda t: -self.entries[t].sequence):
                if t in self.entries:
                    replaced.append(self.entries[t].tx)
            self._remove_set(doomed, Removal.REPLACED)
        now = int(self.clock()) if accept_time is None else accept_time
        self._sequence += 1
        tx = w.tx
        e = MempoolEntry(
            tx,
            w.fee,
            w.vsize,
            w.weight,
            now,
            self.chain.tip_height,
            w.sigop_cost,
            w.spends_coinbase,
            self._sequence,
            self.deltas.get(tx.txid, 0),
        )
        e.usage = (
            tx.total_size() * 2 + ENTRY_OVERHEAD_BYTES + 64 * (len(tx.inputs) + len(tx.outputs))
        )
        e.adjusted_weight = w.adjusted_weight
        self._add_entry(e)
        return replaced

    def _add_entry(self, e: MempoolEntry) -> None:
        tx = e.tx
        txid = tx.txid
        self.entries[txid] = e
        self.by_wtxid[tx.wtxid] = txid
        for txin in tx.inputs:
            p = txin.prevout
            self.spenders[(p.txid, p.index)] = txid
            parent = self.entries.get(p.txid)
            if parent is not None:
                e.parents.add(p.txid)
                parent.children.add(txid)
        # A transaction returned by a reorg may already have children in the pool.
        for i in range(len(tx.outputs)):
            child = self.spenders.get((txid, i))
            if child is not None and child in self.entries:
                e.children.add(child)
                self.entries[child].parents.add(txid)
        self.total_vsize += e.vsize
        self.total_fee += e.fee
        self.usage += e.usage
        if e.children:
            oversized = self._cluster_add_under_children(e)
        else:
            self.clusters.add(txid, e.modified_fee, e.adjusted_weight, e.parents)
            oversized = []
        if not self._quiet:
            for f in self.on_added:
                f(e)
        if oversized:
            self._remove_set(oversized, Removal.SIZELIMIT)

    def _cluster_add_under_children(self, e: MempoolEntry) -> list[bytes]:
        """A transaction back from a disconnected block whose children stayed in the pool:
        take its descendants out of the cluster set, add it, and put them back parents first.
        Core adds the dependencies and then trims clusters grown past the limits
        (``UpdateTransactionsFromBlock``, ``TxGraph::Trim``); here a descendant that no longer
        fits is returned, with its own descendants, for removal ("sizelimit")."""
        desc = self.descendants(e.txid)
        self.clusters.remove_many([d for d in desc if d in self.clusters])
        self.clusters.add(e.txid, e.modified_fee, e.adjusted_weight, e.parents)
        oversized: list[bytes] = []
        dropped: set[bytes] = set()
        for d in self._topological(desc):
            de = self.entries[d]
            if de.parents & dropped:
                dropped.add(d)
                oversized.append(d)
                continue
            pars = [p for p in de.parents if p in self.clusters]
            if not self.clusters.check_add(de.adjusted_weight, pars).ok:
                dropped.add(d)
                oversized.append(d)
                continue
            self.clusters.add(d, de.modified_fee, de.adjusted_weight, pars)
        return oversized

    def _topological(self, txids: Iterable[bytes]) -> list[bytes]:
        """``txids`` (pool entries) ordered parents first."""
        wanted = set(txids)
        done: set[bytes] = set()
        order: list[bytes] = []
        for start in sorted(wanted, key=lambda t: self.entries[t].sequence):
            stack = [start]
            while stack:
                t = stack[-1]
                if t in done:
                    stack.pop()
                    continue
                waiting = [p for p in self.entries[t].parents if p in wanted and p not in done]
                if waiting:
                    stack.extend(waiting)
                    continue
                done.add(t)
                order.append(t)
                stack.pop()
        return order

    # -- removal ----------------------------------------------------------------------------

    def _remove_one(self, txid: bytes, reason: Removal) -> None:
        if txid in self.clusters:
            self.clusters.remove(txid)
        e = self.entries.pop(txid)
        tx = e.tx
        del self.by_wtxid[tx.wtxid]
        self.unbroadcast.discard(txid)
        for txin in tx.inputs:
            key = (txin.prevout.txid, txin.prevout.index)
            if self.spenders.get(key) == txid:
                del self.spenders[key]
        for p in e.parents:
            pe = self.entries.get(p)
            if pe is not None:
                pe.children.discard(txid)
        for c in e.children:
            ce = self.entries.get(c)
            if ce is not None:
                ce.parents.discard(txid)
        self.total_vsize -= e.vsize
        self.total_fee -= e.fee
        self.usage -= e.usage
        if not self._quiet:
            for f in self.on_removed:
                f(tx, reason)

    def _remove_set(self, txids: Iterable[bytes], reason: Removal) -> None:
        """Remove these transactions, children before parents (their clusters re-linearised
        once, not once per transaction)."""
        present = [t for t in set(txids) if t in self.entries]
        self.clusters.remove_many([t for t in present if t in self.clusters])
        for t in sorted(present, key=lambda t: -self.entries[t].sequence):
            if t in self.entries:
                self._remove_one(t, reason)

    def remove_recursive(self, txid: bytes, reason: Removal) -> None:
        """Remove ``txid`` and everything that spends it."""
        if txid in self.entries:
            self._remove_set({txid} | self.descendants(txid), reason)

    def remove_for_block(self, block: Block) -> None:
        """A block connected: drop its transactions ("block") and whatever in the pool spends
        the same coins ("conflict"), with their descendants."""
        mined = [tx.txid for tx in block.txs[1:] if tx.txid in self.entries]
        self.clusters.remove_many([t for t in mined if t in self.clusters])
        for txid in mined:
            self._remove_one(txid, Removal.BLOCK)
        for tx in block.txs[1:]:
            for txin in tx.inputs:
                other = self.spenders.get((txin.prevout.txid, txin.prevout.index))
                if other is not None and other != tx.txid:
                    self.remove_recursive(other, Removal.CONFLICT)
        self._block_since_bump = True
        self._last_rolling_update = self.clock()

    def add_after_reorg(self, txs: Sequence[Tx]) -> None:
        """Transactions of disconnected blocks (oldest block first) come back, then every entry
        that no longer fits the new tip (lock times, maturity, missing inputs) leaves with its
        descendants ("reorg"), and the pool is trimmed to its size."""
        for tx in txs:
            if tx.is_coinbase() or tx.txid in self.entries:
                continue
            result = self.accept(tx, bypass_limits=True)
            if not result.allowed:
                log.debug("disconnected tx %s not returned: %s", tx.txid_hex, result.reject_reason)
        self._remove_for_reorg()
        self.trim_to_size()

    def _remove_for_reorg(self) -> None:
        chain = self.chain
        next_height = chain.tip_height + 1
        doomed: set[bytes] = set()
        for txid in self.txids():
            if txid in doomed:
                continue
            e = self.entries[txid]
            tx = e.tx
            ok = chain.is_final(tx)
            heights: list[int] = []
            if ok:
                for txin in tx.inputs:
                    p = txin.prevout
                    parent = self.entries.get(p.txid)
                    if parent is not None and p.index < len(parent.tx.outputs):
                        heights.append(next_height)
                        continue
                    coin = chain.get_coin(p.txid, p.index)
                    if coin is None:
                        ok = False
                        break
                    if coin.coinbase and next_height - coin.height < chain.coinbase_maturity:
                        ok = False
                        break
                    heights.append(coin.height)
            if ok and not chain.sequence_locks_ok(tx, heights):
                ok = False
            if not ok:
                doomed.add(txid)
                doomed |= self.descendants(txid)
        self._remove_set(doomed, Removal.REORG)

    def expire(self, now: float | None = None) -> int:
        """Drop transactions older than ``-mempoolexpiry`` with their descendants; how many."""
        now = self.clock() if now is None else now
        cutoff = now - self.expiry_seconds
        doomed: set[bytes] = set()
        for e in self.entries.values():
            if e.time < cutoff:
                doomed.add(e.txid)
                doomed |= self.descendants(e.txid)
        self._remove_set(doomed, Removal.EXPIRY)
        return len(doomed)

    def trim_to_size(self, limit: int | None = None) -> list[bytes]:
        """Core 31's ``TrimToSize``: while over budget, evict the worst chunk of the pool (the
        lowest chunk feerate; the last chunk of its cluster, so nothing spends it from outside)
        and raise the rolling minimum fee to that chunk's feerate (per vbyte of its adjusted
        weight, rounded up) plus the incremental relay fee. Returns the txids evicted."""
        limit = self.max_size_bytes if limit is None else limit
        evicted: list[bytes] = []
        if self.usage <= limit:
            return evicted
        for rate, keys in self.clusters.iter_evictable_chunks():
            if self.usage <= limit:
                break
            vsize = (rate.size + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR
            removed_rate = _feerate(rate.fee, vsize) + self.incremental_relay_fee
            if removed_rate > self._rolling_min_fee:
                self._rolling_min_fee = float(removed_rate)
                self._block_since_bump = False
            doomed = set(keys)
            for k in keys:
                doomed |= self.descendants(k)  # none: a cluster's last chunk has no spenders
            evicted.extend(sorted(doomed, key=lambda t: self.entries[t].sequence))
            self._remove_set(doomed, Removal.SIZELIMIT)
        return evicted

    # -- the unbroadcast set --------------------------------------------------------------

    def add_unbroadcast(self, txid: bytes) -> None:
        """Core's ``AddUnbroadcastTx``: a locally submitted transaction, announced until a peer
        asks for it."""
        if txid in self.entries:
            self.unbroadcast.add(txid)

    def remove_unbroadcast(self, txid: bytes) -> None:
        """Core's ``RemoveUnbroadcastTx``: a peer asked for it (or it left the pool). A single
        set operation, so the relay may call it from its own thread."""
        self.unbroadcast.discard(txid)

    # -- prioritisation ---------------------------------------------------------------------

    def prioritise(self, txid: bytes, fee_delta: int) -> None:
        """Core's ``PrioritiseTransaction``: add ``fee_delta`` satoshis to the fee the pool judges
        ``txid`` by (also before it arrives)."""
        self.deltas[txid] = self.deltas.get(txid, 0) + fee_delta
        e = self.entries.get(txid)
        if e is not None:
            e.fee_delta = self.deltas[txid]
            self.clusters.set_fee(txid, e.modified_fee)
        if self.deltas[txid] == 0:
            del self.deltas[txid]

    def prioritised(self) -> dict[bytes, tuple[int, bool]]:
        """getprioritisedtransactions: txid → (fee delta, in the pool)."""
        return {t: (d, t in self.entries) for t, d in self.deltas.items()}

    # -- packages ---------------------------------------------------------------------------

    def accept_package(self, txs: Sequence[Tx], *, test_accept: bool = False) -> PackageResult:
        """Core's ``ProcessNewPackage``.

        Submission (``submitpackage``): a child with its unconfirmed parents, topologically
        sorted, the child last. Each transaction is first tried alone (and stays if it passes,
        as in Core, whatever becomes of the rest; a refusal no package feerate can cure ends the
        package evaluation but the rest are still tried alone); those refused only for their fee
        or for inputs the package provides are then judged together at the package feerate, so a child
        may pay for a parent below the mempool minimum fee (and, for TRUC, below the minimum
        relay fee). If those conflict with the pool, Core 31's package RBF rules apply (one
        parent and one child, feerate diagram; package_msg "package RBF failed: ...").

        ``test_accept`` (``testmempoolaccept``): any well-formed package, each transaction judged
        on its own fees with the earlier ones' outputs available, and nothing kept.
        """
        was, self.adding_package = self.adding_package, True
        try:
            return self._accept_package(txs, test_accept=test_accept)
        finally:
            self.adding_package = was

    def _accept_package(self, txs: Sequence[Tx], *, test_accept: bool) -> PackageResult:
        well_formed = self._check_package_shape(txs)
        if well_formed is not None:
            return PackageResult(well_formed, {})
        if test_accept:
            return self._test_accept_many(txs)
        if len(txs) > 1:
            parents = {i.prevout.txid for i in txs[-1].inputs}
            if any(tx.txid not in parents for tx in txs[:-1]):
                return PackageResult("package-not-child-with-parents", {})
        results: dict[bytes, AcceptResult] = {}
        pending: list[Tx] = []
        quit_early = False
        for tx in txs:
            if tx.wtxid in self.by_wtxid or tx.txid in self.entries:
                results[tx.wtxid] = AcceptResult(
                    tx.txid, tx.wtxid, TxResult.VALID, already_in_pool=True
                )
                continue
            r = self.accept(tx)
            results[tx.wtxid] = r
            if r.allowed:
                continue
            if len(txs) > 1 and r.result in (TxResult.RECONSIDERABLE, TxResult.MISSING_INPUTS):
                pending.append(tx)
                continue
            # Core: no package evaluation after a failure a package feerate cannot cure, but
            # the remaining transactions are still tried on their own (and kept if valid).
            quit_early = True
        if quit_early or (pending and len(txs) == 1):
            return PackageResult("transaction failed", results)
        if len(pending) == 1:
            # Core re-judges a lone leftover on its own (AcceptSubPackage of one): the same
            # refusal again.
            return PackageResult("transaction failed", results)
        if pending:
            self._quiet = True
            try:
                outcome = self._accept_subpackage(pending, results)
            finally:
                self._quiet = False
            if outcome is not None:
                return PackageResult(outcome, results)
            for tx in pending:
                e = self.entries.get(tx.txid)
                if e is not None:
                    for f in self.on_added:
                        f(e)
            self.trim_to_size()
        replaced = [t for r in results.values() for t in r.replaced]
        return PackageResult("success", results, replaced)

    def _test_accept_many(self, txs: Sequence[Tx]) -> PackageResult:
        """testmempoolaccept of several transactions: stop at the first failure, keep nothing."""
        results: dict[bytes, AcceptResult] = {}
        added: list[bytes] = []
        msg = "success"
        self._quiet = True
        try:
            for tx in txs:
                try:
                    w = self._prechecks(tx, False, False, package_feerates=False)
                    self._policy_checks(w)
                    self._check_ephemeral_spends(tx, w, in_package=txs)
                    self._script_checks(w)
                except Reject as r:
                    results[tx.wtxid] = AcceptResult(tx.txid, tx.wtxid, r.result, r.reason, r.debug)
                    msg = "transaction failed"
                    break
                results[tx.wtxid] = AcceptResult(
                    tx.txid,
                    tx.wtxid,
                    TxResult.VALID,
                    fee=w.fee,
                    vsize=w.vsize,
                    effective_feerate=_feerate(w.modified_fee, w.vsize),
                    effective_includes=[tx.wtxid],
                )
                self._finalize(w, None)
                added.append(tx.txid)
        finally:
            self._rollback(added)
            self._quiet = False
        return PackageResult(msg, results)

    def _rollback(self, txids: list[bytes]) -> None:
        was = self._quiet
        self._quiet = True
        try:
            self._remove_set([t for t in txids if t in self.entries], Removal.REPLACED)
        finally:
            self._quiet = was

    def _accept_subpackage(self, txs: list[Tx], results: dict[bytes, AcceptResult]) -> str | None:
        """Judge ``txs`` together at their package feerate; None on success, else package_msg.
        Each is added tentatively (quietly) so the next sees its outputs. A package that
        spends what pool transactions spend goes to :meth:`_accept_package_rbf`."""
        if any((i.prevout.txid, i.prevout.index) in self.spenders for tx in txs for i in tx.inputs):
            return self._accept_package_rbf(txs, results)
        works: list[_Work] = []
        added: list[bytes] = []
        try:
            for tx in txs:
                w = self._prechecks(tx, False, False, package_feerates=True)
                self._check_ephemeral_spends(tx, w, in_package=txs)
                self._policy_checks(w)
                self._script_checks(w)
                works.append(w)
                self._finalize(w, None)
                added.append(tx.txid)
        except Reject as r:
            tx = txs[len(works)]
            results[tx.wtxid] = AcceptResult(tx.txid, tx.wtxid, r.result, r.reason, r.debug)
            self._rollback(added)
            return "transaction failed"
        fee, size = self._package_fee_and_size(works)
        if not self._package_feerate_ok(works, fee, size, results):
            self._rollback(added)
            return "transaction failed"
        rate = _feerate(fee, size)
        for w in works:
            results[w.tx.wtxid] = AcceptResult(
                w.tx.txid,
                w.tx.wtxid,
                TxResult.VALID,
                fee=w.fee,
                vsize=w.vsize,
                effective_feerate=rate,
                effective_includes=[x.tx.wtxid for x in works],
            )
        return None

    @staticmethod
    def _package_fee_and_size(works: Sequence[_Work]) -> tuple[int, int]:
        return sum(w.modified_fee for w in works), sum(w.vsize for w in works)

    def _package_feerate_ok(
        self, works: Sequence[_Work], fee: int, size: int, results: dict[bytes, AcceptResult]
    ) -> bool:
        """The package feerate against the pool's minimums; a failure is reconsiderable for
        every transaction of the package."""
        try:
            self._check_fee_rate(size, fee)
        except Reject as r:
            for w in works:
                results[w.tx.wtxid] = AcceptResult(
                    w.tx.txid, w.tx.wtxid, TxResult.RECONSIDERABLE, r.reason, r.debug
                )
            return False
        return True

    def _accept_package_rbf(self, txs: list[Tx], results: dict[bytes, AcceptResult]) -> str | None:
        """Core 31's package RBF (``AcceptMultipleTransactions`` with ``PackageRBFChecks``):
        nothing is added until every check passes. Each transaction is prechecked (replacement
        allowed, no sibling eviction; a child sees its parent's outputs), then the package
        feerate, then: exactly one parent and its child, neither with pool ancestors, direct
        conflicts in at most 100 clusters, the package's fees pay for the replaced ones plus
        its own relay, the package feerate above the parent's own, the cluster limits, and a
        strictly better feerate diagram. The replaced transactions leave ("replaced") and the
        two enter."""
        works: list[_Work] = []
        coins: dict[tuple[bytes, int], SpentCoin] = {}
        next_height = self.chain.tip_height + 1
        try:
            for tx in txs:
                w = self._prechecks(tx, False, True, package_feerates=True, package_coins=coins)
                w.allow_sibling_eviction = False
                self._truc_checks(w)
                works.append(w)
                for i, o in enumerate(tx.outputs):
                    coins[(tx.txid, i)] = SpentCoin(o, next_height, False)
        except Reject as r:
            tx = txs[len(works)]
            results[tx.wtxid] = AcceptResult(tx.txid, tx.wtxid, r.result, r.reason, r.debug)
            return "transaction failed"
        truc = self._package_truc_checks(works)
        if truc is not None:
            return f"TRUC-violation, {truc}"
        fee, size = self._package_fee_and_size(works)
        if not self._package_feerate_ok(works, fee, size, results):
            return "transaction failed"
        if len(works) != 2 or works[0].tx.txid not in {i.prevout.txid for i in works[1].tx.inputs}:
            return "package RBF failed: package must be 1-parent-1-child"
        if any(w.parents for w in works):
            return "package RBF failed: new transaction cannot have mempool ancestors"
        parent_w, child_w = works
        child_hex = child_w.tx.txid_hex
        conflicts = parent_w.conflicts | child_w.conflicts
        err = self._too_many_clusters(child_hex, conflicts)
        if err is not None:
            return f"package RBF failed: too many potential replacements, {err}"
        all_conflicts = self._conflict_set(conflicts)
        conflicting_fees = sum(self.entries[c].modified_fee for c in all_conflicts)
        err = self._pays_for_rbf(child_hex, conflicting_fees, fee, size)
        if err is not None:
            return f"package RBF failed: insufficient anti-DoS fees, {err}"
        parent_rate = _feerate(parent_w.modified_fee, parent_w.vsize)
        package_rate = _feerate(fee, size)
        if package_rate <= parent_rate:
            return (
                "package RBF failed: package feerate is less than or equal to parent feerate, "
                f"package feerate {_fmt_rate(package_rate)} <= parent feerate is "
                f"{_fmt_rate(parent_rate)}"
            )
        parent_txid = parent_w.tx.txid
        sizes = [
            (parent_txid, parent_w.adjusted_weight, []),
            (child_w.tx.txid, child_w.adjusted_weight, [parent_txid]),
        ]
        if not self.clusters.check_change(all_conflicts, sizes).ok:
            return "too-large-cluster"
        adds = [
            (parent_txid, parent_w.modified_fee, parent_w.adjusted_weight, []),
            (child_w.tx.txid, child_w.modified_fee, child_w.adjusted_weight, [parent_txid]),
        ]
        if not self._improves_diagram(all_conflicts, adds):
            return "package RBF failed: insufficient feerate: does not improve feerate diagram"
        for w in works:
            try:
                self._check_ephemeral_spends(w.tx, w, in_package=txs)
                self._script_checks(w)
            except Reject as r:
                results[w.tx.wtxid] = AcceptResult(
                    w.tx.txid, w.tx.wtxid, r.result, r.reason, r.debug
                )
                return "transaction failed"
        replaced = [
            self.entries[t].tx
            for t in sorted(all_conflicts, key=lambda t: -self.entries[t].sequence)
        ]
        was = self._quiet
        self._quiet = False  # the replaced leave with their announcements
        try:
            self._remove_set(all_conflicts, Removal.REPLACED)
        finally:
            self._quiet = was
        includes = [w.tx.wtxid for w in works]
        for n, w in enumerate(works):
            w.conflicts = set()
            w.all_conflicts = set()
            self._finalize(w, None)
            results[w.tx.wtxid] = AcceptResult(
                w.tx.txid,
                w.tx.wtxid,
                TxResult.VALID,
                fee=w.fee,
                vsize=w.vsize,
                replaced=replaced if n == 0 else [],
                effective_feerate=package_rate,
                effective_includes=list(includes),
            )
        return None

    def _package_truc_checks(self, works: Sequence[_Work]) -> str | None:
        """The part of Core's ``PackageTRUCChecks`` a parent and child in one package need: no
        mixing of version 3 and other versions, and a TRUC child within 1,000 vB."""
        by_txid = {w.tx.txid: w for w in works}
        for w in works:
            tx = w.tx
            for parent_txid in {i.prevout.txid for i in tx.inputs}:
                p = by_txid.get(parent_txid)
                if p is None:
                    continue
                ptx = p.tx
                parent_truc = ptx.version == policy.TRUC_VERSION
                child_truc = tx.version == policy.TRUC_VERSION
                if parent_truc and not child_truc:
                    return (
                        f"non-version=3 tx {tx.txid_hex} (wtxid={tx.wtxid_hex}) cannot spend "
                        f"from version=3 tx {ptx.txid_hex} (wtxid={ptx.wtxid_hex})"
                    )
                if child_truc and not parent_truc:
                    return (
                        f"version=3 tx {tx.txid_hex} (wtxid={tx.wtxid_hex}) cannot spend from "
                        f"non-version=3 tx {ptx.txid_hex} (wtxid={ptx.wtxid_hex})"
                    )
                if child_truc and w.vsize > policy.TRUC_CHILD_MAX_VSIZE:
                    return (
                        f"version=3 child tx {tx.txid_hex} (wtxid={tx.wtxid_hex}) is too big: "
                        f"{w.vsize} > {policy.TRUC_CHILD_MAX_VSIZE} virtual bytes"
                    )
        return None

    def _check_package_shape(self, txs: Sequence[Tx]) -> str | None:
        """Core's ``IsWellFormedPackage``: at most 25 transactions and 404,000 weight units, no
        duplicates, topologically sorted, no two spending the same coin."""
        if len(txs) > 25:
            return "package-too-many-transactions"
        if len(txs) > 1 and sum(tx.weight() for tx in txs) > 404_000:
            return "package-too-large"
        if len({tx.txid for tx in txs}) != len(txs):
            return "package-contains-duplicates"
        later = {tx.txid for tx in txs}
        for tx in txs:
            later.discard(tx.txid)
            if any(i.prevout.txid in later for i in tx.inputs):
                return "package-not-sorted"
        spent: set[tuple[bytes, int]] = set()
        for tx in txs:
            for i in tx.inputs:
                key = (i.prevout.txid, i.prevout.index)
                if key in spent:
                    return "conflict-in-package"
                spent.add(key)
        return None

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: Path) -> int:
        """Write the pool (transactions in entry order, their times and fee deltas, and the
        deltas of absent transactions) to ``path`` atomically: a versioned file ending in a
        SHA-256 checksum. Returns the number of transactions written."""
        # Parents before children (a reorg may have returned a parent after its child).
        depth = {t: len(self.ancestors(t)) for t in self.entries}
        entries = sorted(self.entries.values(), key=lambda e: (depth[e.txid], e.sequence))
        parts = [MEMPOOL_DUMP_MAGIC, struct.pack("<II", MEMPOOL_DUMP_VERSION, len(entries))]
        for e in entries:
            raw = e.tx.serialize()
            parts.append(struct.pack("<Iqq", len(raw), e.time, e.fee_delta))
            parts.append(raw)
        loose = {t: d for t, d in self.deltas.items() if t not in self.entries}
        parts.append(struct.pack("<I", len(loose)))
        for t, d in sorted(loose.items()):
            parts.append(t + struct.pack("<q", d))
        unbroadcast = sorted(t for t in self.unbroadcast if t in self.entries)
        parts.append(struct.pack("<I", len(unbroadcast)))
        parts.extend(unbroadcast)
        body = b"".join(parts)
        data = body + hashlib.sha256(body).digest()
        write_atomic(path, data)
        return len(entries)

    def load(self, path: Path) -> int:
        """Read a file ``save`` wrote and offer its transactions again (expired ones skipped);
        returns how many were accepted. A missing, damaged or unknown-version file is skipped
        with a warning, never fatal. Marks the pool ``loaded`` either way."""
        try:
            accepted = self._load(path)
        finally:
            self.loaded = True
        return accepted

    def _load(self, path: Path) -> int:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as e:
            log.warning("mempool file %s unreadable (%s): starting with an empty pool", path, e)
            return 0
        if len(data) < len(MEMPOOL_DUMP_MAGIC) + 8 + 32 or not data.startswith(MEMPOOL_DUMP_MAGIC):
            log.warning("mempool file %s is not a mempool file: skipped", path)
            return 0
        body, digest = data[:-32], data[-32:]
        if hashlib.sha256(body).digest() != digest:
            log.warning("mempool file %s fails its checksum: skipped", path)
            return 0
        try:
            version, count = struct.unpack_from("<II", body, len(MEMPOOL_DUMP_MAGIC))
            if version not in (1, MEMPOOL_DUMP_VERSION):
                log.warning("mempool file %s has unknown version %d: skipped", path, version)
                return 0
            pos = len(MEMPOOL_DUMP_MAGIC) + 8
            items: list[tuple[Tx, int, int]] = []
            for _ in range(count):
                size, when, delta = struct.unpack_from("<Iqq", body, pos)
                pos += 20
                tx = Tx.parse(body[pos : pos + size])
                pos += size
                items.append((tx, when, delta))
            (n_loose,) = struct.unpack_from("<I", body, pos)
            pos += 4
            loose: list[tuple[bytes, int]] = []
            for _ in range(n_loose):
                txid = body[pos : pos + 32]
                (d,) = struct.unpack_from("<q", body, pos + 32)
                pos += 40
                loose.append((txid, d))
            unbroadcast: list[bytes] = []
            if version >= 2:
                (n_unbroadcast,) = struct.unpack_from("<I", body, pos)
                pos += 4
                if len(body) - pos < 32 * n_unbroadcast:
                    raise DecodeError("truncated unbroadcast set")
                unbroadcast = [
                    body[pos + 32 * i : pos + 32 * (i + 1)] for i in range(n_unbroadcast)
                ]
                pos += 32 * n_unbroadcast
            if pos != len(body):
                raise DecodeError("trailing bytes")
        except (struct.error, DecodeError) as e:
            log.warning("mempool file %s is damaged (%s): skipped", path, e)
            return 0
        for txid, d in loose:
            self.prioritise(txid, d)
        now = self.clock()
        accepted = 0
        for tx, when, delta in items:
            if delta:
                self.prioritise(tx.txid, delta)
            if when < now - self.expiry_seconds:
                continue
            if self.accept(tx, accept_time=when).allowed:
                accepted += 1
        for txid in unbroadcast:
            self.add_unbroadcast(txid)
        return accepted


def _feerate(fee: int, vsize: int) -> int:
    """sat/kvB, rounded down as Core's ``CFeeRate(fee, size)``."""
    return fee * 1000 // vsize if vsize > 0 else 0


def _fmt_rate(sat_per_kvb: int) -> str:
    """Core's ``CFeeRate::ToString``: "0.00001000 BTC/kvB"."""
    return f"{sat_per_kvb // 100_000_000}.{sat_per_kvb % 100_000_000:08d} BTC/kvB"


__all__ = [
    "AcceptResult",
    "MemPool",
    "MempoolEntry",
    "PackageResult",
    "Removal",
    "TxResult",
]
