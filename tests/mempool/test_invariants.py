"""Property tests: whatever is offered and mined, the pool's indexes stay consistent.

Runs the pool over an in-memory ``ChainView`` (the protocol is all the pool needs of a chain).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from peercash.consensus.contextual import SpentCoin
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.flags import MANDATORY_SCRIPT_VERIFY_FLAGS
from peercash.mempool.pool import MemPool, TxResult
from peercash.mining.builder import OP_TRUE_SCRIPT, P2WSH_OP_TRUE, coinbase_tx

COIN = 100_000_000


class MemoryChain:
    """A ``ChainView`` over a dict of coins at a fixed height."""

    def __init__(self) -> None:
        self.coins: dict[tuple[bytes, int], SpentCoin] = {}
        self.height = 500
        self.undo: list[tuple[list[Tx], dict[tuple[bytes, int], SpentCoin]]] = []

    @property
    def tip_height(self) -> int:
        return self.height

    @property
    def tip_hash(self) -> bytes:
        return self.height.to_bytes(32, "little")

    @property
    def coinbase_maturity(self) -> int:
        return 100

    def median_time_past(self) -> int:
        return 1_700_000_000

    def get_coin(self, txid: bytes, index: int) -> SpentCoin | None:
        return self.coins.get((txid, index))

    def script_flags(self) -> int:
        return int(MANDATORY_SCRIPT_VERIFY_FLAGS)

    def is_final(self, tx: Tx) -> bool:
        return True

    def sequence_locks_ok(self, tx: Tx, coin_heights: Sequence[int]) -> bool:
        return True

    def connect(self, txs: Sequence[Tx]) -> None:
        spent: dict[tuple[bytes, int], SpentCoin] = {}
        for tx in txs:
            for txin in tx.inputs:
                key = (txin.prevout.txid, txin.prevout.index)
                coin = self.coins.pop(key, None)
                if coin is not None:
                    spent[key] = coin
            for i, o in enumerate(tx.outputs):
                self.coins[(tx.txid, i)] = SpentCoin(o, self.height + 1, False)
        self.height += 1
        self.undo.append((list(txs), spent))

    def disconnect(self) -> list[Tx]:
        """Undo the last ``connect``; returns its transactions."""
        txs, spent = self.undo.pop()
        for tx in txs:
            for i in range(len(tx.outputs)):
                self.coins.pop((tx.txid, i), None)
        self.coins.update(spent)
        self.height -= 1
        return txs


def check_consistent(pool: MemPool, chain: MemoryChain) -> int:
    """Assert every index agrees with the entries; returns the number of entries checked."""
    spent: dict[tuple[bytes, int], bytes] = {}
    total_vsize = total_fee = usage = 0
    for txid, e in pool.entries.items():
        assert e.txid == txid and pool.by_wtxid[e.tx.wtxid] == txid
        parents = set()
        for txin in e.tx.inputs:
            key = (txin.prevout.txid, txin.prevout.index)
            assert key not in spent, "two entries spend one coin"
            spent[key] = txid
            if txin.prevout.txid in pool.entries:
                parents.add(txin.prevout.txid)
                assert txin.prevout.index < len(pool.entries[txin.prevout.txid].tx.outputs)
            else:
                assert chain.get_coin(*key) is not None, "an input is neither pooled nor a coin"
        assert e.parents == parents
        for p in parents:
            assert txid in pool.entries[p].children
        for c in e.children:
            assert txid in pool.entries[c].parents
        total_vsize += e.vsize
        total_fee += e.fee
        usage += e.usage
    assert spent == pool.spenders
    assert len(pool.by_wtxid) == len(pool.entries)
    assert (pool.total_vsize, pool.total_fee, pool.usage) == (total_vsize, total_fee, usage)
    check_clusters(pool)
    return len(pool.entries)


def check_clusters(pool: MemPool) -> None:
    """The pool's ClusterSet is the entries' graph: the same transactions, parents and children,
    modified fees and adjusted weights; each cluster one connected component, linearised
    parents first, chunks of non-increasing feerate, within the limits."""
    cs = pool.clusters
    assert len(cs) == len(pool.entries)
    for txid, e in pool.entries.items():
        assert txid in cs
        assert cs.parents(txid) == e.parents and cs.children(txid) == e.children
        assert cs.fee_and_size(txid) == (e.modified_fee, e.adjusted_weight)
        assert e.adjusted_weight == max(e.weight, e.sigop_cost * pool.bytes_per_sigop)
    seen: set[bytes] = set()
    for keys in cs.clusters():
        assert set(keys) == pool.cluster(keys[0])  # the component the entries' links give
        component = {keys[0]}
        todo = [keys[0]]
        while todo:
            e = pool.entries[todo.pop()]
            for k in e.parents | e.children:
                if k not in component:
                    component.add(k)
                    todo.append(k)
        assert component == set(keys)
        assert not seen & component
        seen |= component
        placed: set[bytes] = set()
        for k in keys:
            assert pool.entries[k].parents <= placed, "a child before its parent"
            placed.add(k)
        chunks = cs.cluster_chunks(keys[0])
        assert [k for _, ks in chunks for k in ks] == keys
        for (a, _), (b, _) in itertools.pairwise(chunks):
            assert not b.feerate_gt(a), "chunk feerates must not increase"
        assert len(keys) <= cs.max_count
        assert sum(pool.entries[k].adjusted_weight for k in keys) <= cs.max_vsize
    assert seen == set(pool.entries)


OUTCOMES: dict[str, int] = {}
"""How often each outcome came up over the run (see ``test_outcomes_were_varied``)."""

# A step: spend 1-2 outputs picked from everything built so far (so conflicts happen), with a fee.
steps = st.lists(
    st.tuples(
        st.lists(st.integers(0, 10_000), min_size=1, max_size=2),
        st.integers(0, 30_000),
        st.integers(1, 3),
        st.booleans(),
        st.integers(0, 9),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(steps, st.integers(0, 2**32 - 1))
@example(  # every kind of step, whatever the random search finds
    [
        ([0], 1_000, 2, False, 9),
        ([4], 1_000, 2, False, 9),
        ([5], 1_000, 1, True, 9),
        ([6], 500, 1, False, 0),
        ([7], 500, 1, False, 1),
        ([1], 1_000, 1, True, 2),
    ],
    0,
)
def test_indexes_stay_consistent(
    plan: list[tuple[list[int], int, int, bool, int]], seed: int
) -> None:
    chain = MemoryChain()
    funding = [TxOut(COIN, P2WSH_OP_TRUE) for _ in range(4)]
    cb = coinbase_tx(1, funding, extra=seed.to_bytes(4, "little"))
    for i, o in enumerate(cb.outputs):
        chain.coins[(cb.txid, i)] = SpentCoin(o, 1, True)
    pool = MemPool(chain, clock=lambda: 1_700_000_000.0, cluster_limit=8)
    outputs: list[tuple[OutPoint, int]] = [(OutPoint(cb.txid, i), COIN) for i in range(4)]
    accepted = 0
    for picks, fee, n_out, mine, extra in plan:
        chosen = list(dict.fromkeys(outputs[p % len(outputs)] for p in picks))
        value = sum(v for _, v in chosen) - fee
        if value < n_out * 1_000:
            continue
        tx = Tx(
            2,
            [TxIn(op, b"", 0xFFFFFFFD, (OP_TRUE_SCRIPT,)) for op, _ in chosen],
            [TxOut(value // n_out, P2WSH_OP_TRUE) for _ in range(n_out)],
        )
        outputs.extend((OutPoint(tx.txid, i), value // n_out) for i in range(n_out))
        r = pool.accept(tx)
        OUTCOMES[r.reject_reason or "accepted"] = OUTCOMES.get(r.reject_reason or "accepted", 0) + 1
        if r.allowed:
            accepted += 1
            assert all(t.txid not in pool.entries for t in r.replaced)
        else:
            assert r.result is not TxResult.VALID and r.reject_reason
        check_consistent(pool, chain)
        if mine and pool.entries:
            # Mine the oldest entry whose parents are all confirmed (a valid block).
            roots = [e.tx for e in pool.entries.values() if not e.parents]
            block = Block(Header(0x20000000, b"\x00" * 32, b"\x00" * 32, 0, 0, 0), [cb, roots[0]])
            chain.connect([roots[0]])
            pool.remove_for_block(block)
            check_consistent(pool, chain)
        if extra == 0 and pool.entries:
            # Prioritise the newest entry up or down (its cluster is re-linearised).
            newest = max(pool.entries.values(), key=lambda e: e.sequence)
            pool.prioritise(newest.txid, fee - 15_000)
            OUTCOMES["prioritised"] = OUTCOMES.get("prioritised", 0) + 1
            check_consistent(pool, chain)
        elif extra == 1 and pool.entries:
            # Trim to about two thirds: whole worst chunks leave.
            evicted = pool.trim_to_size(pool.usage * 2 // 3)
            assert evicted and all(t not in pool.entries for t in evicted)
            OUTCOMES["trimmed"] = OUTCOMES.get("trimmed", 0) + 1
            check_consistent(pool, chain)
        elif extra == 2 and chain.undo:
            # A reorg: the last block's transactions come back under their pool children.
            pool.add_after_reorg(chain.disconnect())
            OUTCOMES["reorg"] = OUTCOMES.get("reorg", 0) + 1
            check_consistent(pool, chain)
    assert accepted <= len(plan)


def test_outcomes_were_varied() -> None:
    """The property run above reached replacements and their refusals, not only plain accepts
    (pytest runs this module's tests in order)."""
    if not OUTCOMES:
        test_indexes_stay_consistent()
    assert OUTCOMES.get("accepted", 0) > 0
    assert OUTCOMES.get("insufficient fee", 0) + OUTCOMES.get("min relay fee not met", 0) > 0
    for kind in ("prioritised", "trimmed", "reorg"):
        assert OUTCOMES.get(kind, 0) > 0, kind
