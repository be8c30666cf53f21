"""Deferred script checks: blocks connect while a worker process checks earlier blocks' scripts.

Block import keeps several blocks "unverified" at once. These tests hold every check back until
``settle`` (or a flush) so the queue is as deep as it gets, then check that the outcome is exactly
the in-line one: the same tip and UTXO set, events only for verified blocks and in order, and a
block whose scripts fail undone together with everything connected on top of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from peercash.chain.chainstate import ChainState
from peercash.chain.coins import key_outpoint
from peercash.chain.index import FAILED_CHILD, FAILED_VALID, VALID_SCRIPTS
from peercash.consensus.crypto import pubkey_from_secret
from peercash.consensus.hashing import sha256
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.utxohash import UtxoSetHasher
from peercash.mining.builder import P2WSH_OP_TRUE, p2wpkh_script, sign_inputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blocktools import ChainBuilder

SECRET = sha256(b"peercash deferred scripts")
P2WPKH = p2wpkh_script(pubkey_from_secret(SECRET))


FIRST_SPEND = 112  # blocks 1..110 mined empty, 111 funds P2WPKH outputs, 112.. spend them


def make_blocks(tmp_path: Path, bad_at: int | None = None, n: int = 10) -> list[Block]:
    """Blocks 1..111+n (list index i holds height i + 1): two signed P2WPKH spends in each block
    from 112 on; in block ``112 + bad_at`` the second one is signed for the wrong amount (valid
    in every way but its signature)."""
    builder = ChainBuilder(tmp_path / "builder")
    builder.mine(110)
    fan = builder.spend([builder.coinbase_out(1)], [TxOut(10_000_000, P2WPKH) for _ in range(40)])
    builder.submit(builder.new_block(txs=[fan]))
    outs = [OutPoint(fan.txid, i) for i in range(40)]

    def spend(bad: bool) -> Tx:
        tx = Tx(2, [TxIn(outs.pop(), b"", 0xFFFFFFFE)], [TxOut(9_990_000, P2WSH_OP_TRUE)], 0)
        amount = 10_000_001 if bad else 10_000_000
        signed = sign_inputs(tx, [TxOut(amount, P2WPKH)], [SECRET])
        builder.record_tx(signed)
        return signed

    blocks = [builder.blocks[e.hash] for e in builder.chain.chain[1:]]
    parent = blocks[-1]
    for k in range(n):
        block = builder.new_block(parent, [spend(False), spend(k == bad_at)])
        blocks.append(block)
        parent = block
    builder.close()
    return blocks


def utxo_figures(chain: ChainState) -> dict[str, object]:
    chain.flush()
    hasher = UtxoSetHasher()
    for key, coin in chain.coins_db.iterate():
        hasher.add(key_outpoint(key), coin.height, coin.coinbase, coin.txout)
    return hasher.result()


def deferred_chain(datadir: Path) -> ChainState:
    chain = ChainState(REGTEST, datadir, script_workers=1)
    chain.defer_scripts = True
    chain.defer_keep_inputs = 10**9  # this process never helps: every check waits in the queue
    return chain


@pytest.fixture
def valid_blocks(tmp_path: Path) -> list[Block]:
    return make_blocks(tmp_path)


def test_deferred_matches_inline_and_announces_in_order(tmp_path: Path, valid_blocks) -> None:
    inline = ChainState(REGTEST, tmp_path / "inline")
    for block in valid_blocks:
        inline.accept_block(block)
    expected = utxo_figures(inline)
    inline.close()

    chain = deferred_chain(tmp_path / "deferred")
    log: list[tuple[str, int]] = []
    chain.events.block_connected.append(lambda b, e: log.append(("connected", e.height)))
    chain.events.tip_changed.append(lambda e: log.append(("tip", e.height)))
    chain.pool.chunks_in_flight = 0  # nothing leaves the queue until someone waits
    for block in valid_blocks:
        chain.accept_block(block)
    # Every spending block is connected but none is verified, announced or written.
    assert chain.height == len(valid_blocks)
    unverified = [e for e in chain.chain if not e.valid_to(VALID_SCRIPTS)]
    assert [e.height for e in unverified] == list(range(111, len(valid_blocks) + 1))
    assert log[-1] == ("tip", 110)
    chain.pool.chunks_in_flight = 2
    chain.settle()
    assert all(e.valid_to(VALID_SCRIPTS) for e in chain.chain[1:])
    connected = [h for what, h in log if what == "connected"]
    assert connected == list(range(1, len(valid_blocks) + 1))
    assert log[-1] == ("tip", len(valid_blocks))
    assert chain.last_error is None
    assert utxo_figures(chain) == expected
    chain.close()


def test_failure_deep_in_the_queue_undoes_everything_above_it(tmp_path: Path) -> None:
    blocks = make_blocks(tmp_path, bad_at=6)
    bad_height = FIRST_SPEND + 6

    reference = ChainState(REGTEST, tmp_path / "reference")
    for block in blocks[: bad_height - 1]:
        reference.accept_block(block)
    assert reference.height == bad_height - 1
    expected = utxo_figures(reference)
    reference.close()

    chain = deferred_chain(tmp_path / "deferred")
    log: list[tuple[str, int]] = []
    chain.events.block_connected.append(lambda b, e: log.append(("connected", e.height)))
    chain.events.block_disconnected.append(lambda b, e: log.append(("disconnected", e.height)))
    chain.pool.chunks_in_flight = 0
    for block in blocks:
        chain.accept_block(block)
    assert chain.height == len(blocks)  # all connected, none verified yet
    assert chain.last_error is None
    chain.pool.chunks_in_flight = 2
    chain.settle()
    assert chain.last_error is not None
    failed, err = chain.last_error
    assert failed.height == bad_height
    assert err.code == "mandatory-script-verify-flag-failed"
    assert "input 0 of tx" in err.reason
    assert chain.height == bad_height - 1
    assert failed.status & FAILED_VALID
    assert all(chain.index.get(b.hash).status & FAILED_CHILD for b in blocks[bad_height:])
    # Only verified blocks were ever announced, and nothing was announced as disconnected.
    assert [h for _, h in log] == list(range(1, bad_height))
    assert all(what == "connected" for what, _ in log)
    assert utxo_figures(chain) == expected
    # The same state after a restart.
    chain.close()
    again = ChainState(REGTEST, tmp_path / "deferred")
    assert again.height == bad_height - 1
    assert again.index.get(blocks[bad_height - 1].hash).status & FAILED_VALID
    assert utxo_figures(again) == expected
    again.close()


def test_flush_waits_for_pending_checks(tmp_path: Path, valid_blocks) -> None:
    chain = deferred_chain(tmp_path / "d")
    chain.dbcache_bytes = 1  # flush after every block: each flush must settle first
    for block in valid_blocks:
        chain.accept_block(block)
        assert not chain._unverified
        assert chain.coins_db.best_block() == chain.tip.hash
    chain.close()


def test_import_with_workers_stops_at_the_block_whose_scripts_fail(
    tmp_path: Path, peercash, chaininfo
) -> None:
    blocks = make_blocks(tmp_path, bad_at=6)
    bad_height = FIRST_SPEND + 6
    path = tmp_path / "blocks.hex"
    path.write_text("".join(b.serialize().hex() + "\n" for b in blocks))
    good = tmp_path / "good.hex"
    good.write_text("".join(b.serialize().hex() + "\n" for b in blocks[: bad_height - 1]))

    d = tmp_path / "dd"
    r = peercash("import", path, "--network", "regtest", "--datadir", d, "--par", "1")
    assert r.returncode == 1
    err = " ".join(r.stderr.split())
    assert (
        f"error: invalid block at height {bad_height}: mandatory-script-verify-flag-failed" in err
    )
    assert f"kept the chain up to height {bad_height - 1}" in err

    ref = tmp_path / "ref"
    r = peercash("import", good, "--network", "regtest", "--datadir", ref, "--par", "0")
    assert r.returncode == 0, r.stderr
    assert chaininfo(d, "regtest").data == chaininfo(ref, "regtest").data


def test_rpc_reads_only_verified_blocks(tmp_path: Path) -> None:
    """A method under the chain lock waits for the checks already queued (Core's tip is always
    verified), and a block that fails them is gone before the method reads the chain."""
    from peercash.config import Config
    from peercash.rpc import methods  # noqa: F401  (registers the methods)
    from peercash.rpc.jsonrpc import execute_sync
    from peercash.rpc.services import NodeServices

    blocks = make_blocks(tmp_path, bad_at=4)
    bad_height = FIRST_SPEND + 4
    chain = deferred_chain(tmp_path / "deferred")
    services = NodeServices(REGTEST, Config(), tmp_path, request_stop=lambda: None)
    services.set_chain(chain)
    services.warmup = False
    chain.pool.chunks_in_flight = 0
    for block in blocks[: bad_height - 2]:
        chain.accept_block(block)
    assert chain._unverified  # connected, scripts still queued
    chain.pool.chunks_in_flight = 2
    assert execute_sync(services, "getblockcount", []) == bad_height - 2
    assert not chain._unverified
    chain.pool.chunks_in_flight = 0
    for block in blocks[bad_height - 2 :]:
        chain.accept_block(block)
    assert chain.height == len(blocks)
    chain.pool.chunks_in_flight = 2
    assert execute_sync(services, "getblockcount", []) == bad_height - 1
    assert execute_sync(services, "getbestblockhash", []) == blocks[bad_height - 2].hash_hex
    assert chain.last_error is not None and chain.last_error[0].height == bad_height
    chain.close()
