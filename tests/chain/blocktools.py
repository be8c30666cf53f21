"""Scenario helpers for chain tests: a ``ChainBuilder`` that mines regtest blocks into a fresh
``ChainState`` and asserts how each block is received.

Every block built here gets a unique coinbase (a running tag after the BIP34 height), so two
children of the same parent never collide. Coinbases pay ``P2WSH_OP_TRUE`` unless asked
otherwise, and the builder remembers every output it has ever built, so a block's coinbase can
claim exactly its subsidy plus the fees of the transactions it carries.

Load it from a test module with ``sys.path`` (pytest runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from peercash.chain.chainstate import ChainState
from peercash.chain.index import FAILED_MASK, BlockIndexEntry
from peercash.consensus.crypto import sign_schnorr
from peercash.consensus.errors import RuleError
from peercash.consensus.hashing import hash160, sha256
from peercash.consensus.params import REGTEST, NetworkParams
from peercash.consensus.pow import bits_to_target
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.script import push_data
from peercash.consensus.script.sighash import PrecomputedTxData, taproot_sighash
from peercash.consensus.script.taproot import tweak_private_key
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import (
    P2WSH_OP_TRUE,
    assemble_block,
    coinbase_tx,
    solve,
)
from peercash.tools.txbuild import DEFAULT_FEE, NON_FINAL, TxBook
from peercash.tools.txbuild import FINAL as FINAL  # re-exported for the chain tests

REGTEST_BITS = 0x207FFFFF
SPACING = 600

OP_RETURN = 0x6A
OP_CHECKSIG = 0xAC
OP_CHECKMULTISIG = 0xAE
OP_CHECKLOCKTIMEVERIFY = 0xB1
OP_CHECKSEQUENCEVERIFY = 0xB2
OP_DROP = 0x75
OP_HASH160 = 0xA9
OP_EQUAL = 0x87


def p2sh_script(redeem: bytes) -> bytes:
    return bytes((OP_HASH160, 20)) + hash160(redeem) + bytes((OP_EQUAL,))


def p2wsh_script(witness_script: bytes) -> bytes:
    return b"\x00\x20" + sha256(witness_script)


def op_return(data: bytes) -> bytes:
    return bytes((OP_RETURN,)) + push_data(data)


def unsolve(block: Block) -> Block:
    """The same block with a nonce whose header hash misses its target (fails "high-hash")."""
    target, _, _ = bits_to_target(block.header.bits)
    h = block.header
    for nonce in range(1 << 32):
        header = Header(h.version, h.prev_hash, h.merkle_root, h.time, h.bits, nonce)
        if int.from_bytes(header.hash, "little") > target:
            return Block(header, block.txs)
    raise AssertionError("every nonce meets the target")


def with_txs(block: Block, txs: Sequence[Tx]) -> Block:
    """The same header over a different transaction list (no re-hashing, no re-solving)."""
    return Block(block.header, txs)


def sign_taproot_keypath(
    tx: Tx, index: int, spent: Sequence[TxOut], secret: bytes, annex: bytes | None = None
) -> Tx:
    """Key-path sign input ``index`` (SIGHASH_DEFAULT), optionally with an annex (0x50...)."""
    msg = taproot_sighash(tx, index, 0, PrecomputedTxData(tx, spent), 0, annex)
    assert msg is not None
    sig = sign_schnorr(tweak_private_key(secret, None), msg)
    witness = (sig, annex) if annex is not None else (sig,)
    inputs = list(tx.inputs)
    old = inputs[index]
    inputs[index] = TxIn(old.prevout, b"", old.sequence, witness)
    return Tx(tx.version, inputs, tx.outputs, tx.locktime)


class SettlingChainState(ChainState):
    """A chain state that checks scripts in a worker process after connecting each block (the
    deferred path block import uses), and waits for them before ``accept_block`` returns, so a
    scenario sees the same outcome as with checks done in line."""

    def accept_block(self, *args: Any, **kwargs: Any) -> BlockIndexEntry | None:
        try:
            return super().accept_block(*args, **kwargs)
        finally:
            self.settle()


class ChainBuilder:
    """A ``ChainState`` in ``datadir`` plus the blocks and outputs we built for it.

    The clock is fixed (``self.now``, settable), so "time-too-new" is deterministic.
    ``deferred``: scripts are checked in a worker after each block connects, as in block import.
    """

    def __init__(
        self,
        datadir: Path,
        params: NetworkParams = REGTEST,
        *,
        now: int | None = None,
        deferred: bool = False,
    ) -> None:
        self.params = params
        self.datadir = datadir
        self.deferred = deferred
        genesis = Block.parse(params.genesis)
        self.genesis = genesis
        self.now = now if now is not None else genesis.header.time + 10_000_000
        self.blocks: dict[bytes, Block] = {genesis.hash: genesis}
        self.heights: dict[bytes, int] = {genesis.hash: 0}
        self.book = TxBook()
        self.outputs: dict[OutPoint, TxOut] = self.book.outputs
        self._tag = 0
        self.chain = self._open()

    def _open(self) -> ChainState:
        if not self.deferred:
            return ChainState(self.params, self.datadir, clock=lambda: self.now)
        chain = SettlingChainState(
            self.params, self.datadir, clock=lambda: self.now, script_workers=1
        )
        chain.defer_scripts = True
        chain.defer_keep_inputs = 0  # every script check goes through the pool
        return chain

    def reopen(self) -> ChainState:
        """Close the chain state and open it again on the same data directory."""
        self.chain.close()
        self.chain = self._open()
        return self.chain

    def close(self) -> None:
        self.chain.close()

    # -- queries --------------------------------------------------------------------------

    @property
    def tip(self) -> BlockIndexEntry:
        return self.chain.tip

    def block_at(self, height: int) -> Block:
        """The active chain's block at ``height``."""
        return self.blocks[self.chain.chain[height].hash]

    def coinbase_out(self, height: int) -> OutPoint:
        """The first output of the active chain's coinbase at ``height``."""
        return OutPoint(self.block_at(height).txs[0].txid, 0)

    def entry(self, block: Block | bytes) -> BlockIndexEntry:
        h = block if isinstance(block, bytes) else block.hash
        e = self.chain.index.get(h)
        assert e is not None, "block is not in the index"
        return e

    def has_coin(self, outpoint: OutPoint) -> bool:
        return self.chain.get_coin(outpoint.txid, outpoint.index) is not None

    # -- transactions ---------------------------------------------------------------------

    def spend(
        self,
        prevouts: Sequence[OutPoint],
        outputs: Sequence[TxOut] | None = None,
        *,
        fee: int = DEFAULT_FEE,
        sequence: int = NON_FINAL,
        version: int = 2,
        locktime: int = 0,
        script_pubkey: bytes = P2WSH_OP_TRUE,
    ) -> Tx:
        """A transaction spending anyone-can-spend outputs we built (P2WSH(OP_TRUE) or bare
        OP_TRUE): ``peercash.tools.txbuild.TxBook.spend``."""
        return self.book.spend(
            prevouts,
            outputs,
            fee=fee,
            sequence=sequence,
            version=version,
            locktime=locktime,
            script_pubkey=script_pubkey,
        )

    def record_tx(self, tx: Tx) -> None:
        """Remember ``tx``'s outputs, so later transactions can spend them by outpoint."""
        self.book.record_tx(tx)

    def fund(
        self, prevout: OutPoint, scripts: Sequence[bytes], value: int = 100_000_000
    ) -> tuple[Tx, list[OutPoint]]:
        """Spend ``prevout`` into one output of ``value`` per script (change to P2WSH(OP_TRUE))."""
        total = self.outputs[prevout].value
        outs = [TxOut(value, s) for s in scripts]
        outs.append(TxOut(total - value * len(scripts) - DEFAULT_FEE, P2WSH_OP_TRUE))
        tx = self.spend([prevout], outs)
        return tx, [OutPoint(tx.txid, i) for i in range(len(scripts))]

    def fee_of(self, tx: Tx) -> int:
        """The fee of ``tx`` if we know every output it spends, else 0."""
        return self.book.fee_of(tx)

    # -- blocks ---------------------------------------------------------------------------

    def _parent(self, parent: Block | bytes | None) -> Block:
        if parent is None:
            return self.blocks[self.chain.tip.hash]
        if isinstance(parent, Block):
            return parent
        return self.blocks[parent]

    def new_block(
        self,
        parent: Block | bytes | None = None,
        txs: Sequence[Tx] = (),
        *,
        time: int | None = None,
        bits: int = REGTEST_BITS,
        version: int = 0x20000000,
        coinbase: Tx | None = None,
        cb_script: bytes = P2WSH_OP_TRUE,
        reward_delta: int = 0,
        cb_height: int | None = None,
        witness_commitment: bool | None = None,
        solved: bool = True,
    ) -> Block:
        """A child of ``parent`` (default: the tip) holding ``txs``.

        The coinbase claims subsidy + fees + ``reward_delta`` and pushes ``cb_height`` (default:
        the real height) for BIP34. The timestamp defaults to the parent's plus ten minutes.
        """
        p = self._parent(parent)
        height = self.heights[p.hash] + 1
        if coinbase is None:
            self._tag += 1
            value = block_subsidy(height, self.params) + reward_delta
            value += sum(self.fee_of(tx) for tx in txs)
            coinbase = coinbase_tx(
                height if cb_height is None else cb_height,
                [TxOut(value, cb_script)],
                extra=self._tag.to_bytes(4, "little"),
                witness=False,
            )
        block = assemble_block(
            p.hash,
            p.header.time + SPACING if time is None else time,
            bits,
            coinbase,
            txs,
            version=version,
            witness_commitment=witness_commitment,
        )
        if solved:
            block = solve(block)
        self.record(block, height)
        return block

    def record(self, block: Block, height: int | None = None) -> None:
        """Remember a block (and its outputs) built or altered outside ``new_block``."""
        if height is None:
            height = self.heights[block.header.prev_hash] + 1
        self.blocks.setdefault(block.hash, block)
        self.heights.setdefault(block.hash, height)
        for tx in block.txs:
            self.record_tx(tx)

    def submit(self, block: Block, *, becomes_tip: bool | None = True) -> BlockIndexEntry | None:
        """Hand ``block`` to the chain; it must not be rejected. ``becomes_tip``: True, it is the
        new tip; False, the tip did not move; None, no check."""
        self.record(block)
        chain = self.chain
        old_tip = chain.tip
        chain.last_error = None
        entry = chain.accept_block(block)
        failure = chain.last_error
        assert failure is None, f"unexpected failure: {failure and failure[1]}"
        if becomes_tip is True:
            assert chain.tip.hash == block.hash, "the block did not become the tip"
        elif becomes_tip is False:
            assert chain.tip is old_tip, "the tip moved"
        return entry

    def mine(
        self, n: int, parent: Block | bytes | None = None, *, becomes_tip: bool | None = True
    ) -> list[Block]:
        """Build and submit ``n`` empty blocks in a row on ``parent`` (default: the tip)."""
        out: list[Block] = []
        p = self._parent(parent)
        for _ in range(n):
            b = self.new_block(p)
            self.submit(b, becomes_tip=becomes_tip)
            out.append(b)
            p = b
        return out

    def reject(
        self,
        block: Block,
        code: str,
        *,
        connect: bool = False,
        failed: Block | None = None,
        reason: str | None = None,
    ) -> RuleError:
        """Hand ``block`` to the chain and check it is refused with exactly ``code`` and that the
        tip did not move.

        ``connect=False``: ``accept_block`` must raise (context-free or contextual checks).
        ``connect=True``: the block is stored but fails while being connected, so
        ``last_error`` names it (or ``failed``, an ancestor being connected first) and it is
        marked failed. ``reason``: a substring the error's reason must contain (for script
        failures, the ``ScriptError`` name).
        """
        self.record(block)
        chain = self.chain
        old_tip = chain.tip
        chain.last_error = None
        if connect:
            chain.accept_block(block)
            err = chain.last_error
            assert err is not None, f"expected {code} while connecting, but nothing failed"
            entry, rule = err
            assert rule.code == code, f"expected {code}, got {rule.code}: {rule.reason}"
            assert entry.hash == (failed or block).hash
            assert entry.status & FAILED_MASK
            assert self.entry(block).status & FAILED_MASK
        else:
            with pytest.raises(RuleError) as info:
                chain.accept_block(block)
            rule = info.value
            assert rule.code == code, f"expected {code}, got {rule.code}: {rule.reason}"
            assert chain.last_error is None
        if reason is not None:
            assert reason in rule.reason, f"expected {reason!r} in {rule.reason!r}"
        assert chain.tip is old_tip, "the tip moved"
        return rule
