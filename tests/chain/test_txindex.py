"""The transaction index follows connects, disconnects and restarts."""

from __future__ import annotations

from pathlib import Path

from peercash.chain.chainstate import ChainState
from peercash.chain.txindex import TxIndex
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import P2WSH_OP_TRUE, assemble_block, coinbase_tx, solve


def _mine(chain: ChainState, parent: bytes, height: int, time: int, tag: bytes = b"") -> Block:
    cb = coinbase_tx(height, [TxOut(block_subsidy(height, REGTEST), P2WSH_OP_TRUE)], extra=tag)
    block = solve(assemble_block(parent, time, 0x207FFFFF, cb, witness_commitment=True))
    chain.accept_block(block)
    return block


def test_txindex_follows_the_chain(tmp_path: Path) -> None:
    chain = ChainState(REGTEST, tmp_path / "chain", clock=lambda: 2_000_000_000)
    t0 = 1_700_000_000
    blocks = []
    parent = REGTEST.genesis_hash
    for h in range(1, 6):
        blocks.append(_mine(chain, parent, h, t0 + h))
        parent = blocks[-1].hash
    index = TxIndex(tmp_path / "txindex")
    index.attach(chain)  # catches up with five blocks
    for b in blocks:
        assert index.lookup(b.txs[0].txid) == (b.hash,)
    assert index.best_block_height == 5

    # A heavier fork from block 3 replaces blocks 4 and 5.
    fork = [_mine(chain, blocks[2].hash, 4, t0 + 40, b"fork")]
    fork.append(_mine(chain, fork[-1].hash, 5, t0 + 41, b"fork"))
    fork.append(_mine(chain, fork[-1].hash, 6, t0 + 42, b"fork"))
    assert chain.tip.hash == fork[-1].hash
    assert index.lookup(blocks[3].txs[0].txid) is None
    assert index.lookup(blocks[4].txs[0].txid) is None
    assert index.lookup(fork[0].txs[0].txid) == (fork[0].hash,)
    index.close()

    # Away while the chain moves back: invalidate the fork, then reattach.
    chain.invalidate_block(fork[0].hash)
    assert chain.tip.hash == blocks[4].hash
    index = TxIndex(tmp_path / "txindex")
    index.attach(chain)
    assert index.lookup(fork[0].txs[0].txid) is None
    assert index.lookup(blocks[4].txs[0].txid) == (blocks[4].hash,)
    index.close()
    chain.close()
