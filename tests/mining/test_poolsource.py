"""The mempool as the assembler's template source: chunks by feerate (CPFP lifts a low-fee
parent), kept current through the pool's listeners, prioritisation picked up, and a template
built from a real pool that the chain then accepts."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mempool"))

from pooltools import Harness, out

from peercash.mining.assembler import BlockAssembler
from peercash.mining.builder import P2WSH_OP_TRUE
from peercash.mining.poolsource import PoolTemplateSource


def test_chunks_follow_the_pool_and_cpfp_lifts_the_parent(tmp_path: Path) -> None:
    h = Harness(tmp_path / "c")
    try:
        cheap_parent = h.spend([h.coin()], fee=200)  # about 2 sat/vB
        medium = h.spend([h.coin()], fee=2_000)
        child = h.spend([out(cheap_parent)], fee=20_000)  # pays for both
        for tx in (cheap_parent, medium):
            assert h.pool.accept(tx).allowed, tx
        source = PoolTemplateSource(h.pool)  # built from what is there
        order = [[t.tx.txid for t in c] for c in source.chunks_by_feerate()]
        assert order == [[medium.txid], [cheap_parent.txid]]
        before = source.transactions_updated()
        assert h.pool.accept(child).allowed
        assert source.transactions_updated() > before
        order = [[t.tx.txid for t in c] for c in source.chunks_by_feerate()]
        assert order == [[cheap_parent.txid, child.txid], [medium.txid]]
        # A delta moves a transaction; removal drops it.
        h.pool.prioritise(medium.txid, 1_000_000)
        order = [[t.tx.txid for t in c] for c in source.chunks_by_feerate()]
        assert order[0] == [medium.txid]
        chunk = next(iter(source.chunks_by_feerate()))
        assert chunk[0].fee == 2_000 and chunk[0].modified_fee == 1_002_000
        # The template holds all three, parent before child, and the chain accepts it.
        template = BlockAssembler(h.builder.chain).create_new_block(P2WSH_OP_TRUE, source)
        txids = [tx.txid for tx in template.block.txs[1:]]
        assert txids == [medium.txid, cheap_parent.txid, child.txid]
        assert template.fees[1:] == [2_000, 200, 20_000]
        block = h.mine([t for t in template.block.txs[1:]])
        assert h.pool.txids() == [] and list(source.chunks_by_feerate()) == []
        assert block.txs[1:] == template.block.txs[1:]
        source.close()
        assert source._on_added not in h.pool.on_added
    finally:
        h.close()
