"""Assume-valid: signatures below a trusted, well-buried block are skipped exactly as Core does.

Core skips script checks for a block only when the assumed-valid block is known (headers first),
the block is its ancestor, the best header descends from it, and it is buried under two weeks of
work. Everything else (amounts, double spends, structure) is still checked.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from peercash.chain.chainstate import ChainState
from peercash.consensus.crypto import pubkey_from_secret
from peercash.consensus.errors import RuleError
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import (
    assemble_block,
    coinbase_tx,
    p2wpkh_script,
    sign_inputs,
    solve,
)

KEY = hashlib.sha256(b"assumevalid key").digest()
OTHER = hashlib.sha256(b"someone else").digest()
PUB = pubkey_from_secret(KEY)


def _chain(n_blocks: int) -> tuple[list[Block], int]:
    """Blocks 1..n; block 102 spends block 1's P2WPKH coinbase with a wrong signature."""
    blocks: list[Block] = []
    prev = REGTEST.genesis_hash
    time = 1_700_000_000
    bad_at = 102
    for h in range(1, n_blocks + 1):
        txs: list[Tx] = []
        fee = 0
        if h == bad_at:
            cb1 = blocks[0].txs[0]
            amount = cb1.outputs[0].value
            unsigned = Tx(
                2,
                [TxIn(OutPoint(cb1.txid, 0), b"", 0xFFFFFFFF)],
                [TxOut(amount - 1000, p2wpkh_script(PUB))],
            )
            good = sign_inputs(unsigned, [cb1.outputs[0]], [KEY])
            # Same pubkey, signature by another key: well-formed but invalid.
            forged = sign_inputs(
                Tx(2, [TxIn(OutPoint(cb1.txid, 0), b"", 0xFFFFFFFF)], unsigned.outputs),
                [TxOut(amount, p2wpkh_script(pubkey_from_secret(OTHER)))],
                [OTHER],
            )
            txs = [
                Tx(
                    2,
                    [
                        TxIn(
                            good.inputs[0].prevout,
                            b"",
                            0xFFFFFFFF,
                            (forged.inputs[0].witness[0], PUB),
                        )
                    ],
                    good.outputs,
                )
            ]
            fee = 1000
        cb = coinbase_tx(h, [TxOut(block_subsidy(h, REGTEST) + fee, p2wpkh_script(PUB))])
        block = solve(assemble_block(prev, time + h, 0x207FFFFF, cb, txs, witness_commitment=True))
        blocks.append(block)
        prev = block.hash
    return blocks, bad_at


def _run(
    tmp: Path, blocks: list[Block], assume_valid: bytes | None, headers_first: bool
) -> ChainState:
    chain = ChainState(REGTEST, tmp, assume_valid=assume_valid, clock=lambda: 2_000_000_000)
    if headers_first:
        for b in blocks:
            chain.accept_header(b.header)
    for b in blocks:
        try:
            chain.accept_block(b)
        except RuleError as err:  # descendants of a failed block are cached as invalid
            assert err.code in ("duplicate-invalid", "bad-prevblk")
    return chain


def test_assume_valid_skips_signatures_only_when_buried_and_known(tmp_path: Path) -> None:
    blocks, bad_at = _chain(2130)
    av = blocks[-1].hash  # buried under nothing itself, but block 102 is 2028 blocks deep

    # Without assume-valid the forged signature stops the chain at 101.
    chain = _run(tmp_path / "checked", blocks, None, headers_first=True)
    assert chain.height == bad_at - 1
    assert chain.last_error is not None
    assert chain.last_error[1].code == "mandatory-script-verify-flag-failed"
    chain.close()

    # Blocks arriving without their headers first: the assumed-valid block is unknown, so
    # signatures are checked (as in Core).
    chain = _run(tmp_path / "unknown", blocks, av, headers_first=False)
    assert chain.height == bad_at - 1
    chain.close()

    # Headers first, assume-valid at the tip: block 102 is more than two weeks of work deep,
    # its signature is not checked, the chain goes through.
    chain = _run(tmp_path / "skipped", blocks, av, headers_first=True)
    assert chain.height == len(blocks)
    chain.close()


def test_assume_valid_still_checks_amounts(tmp_path: Path) -> None:
    """Skipping signatures never skips the rest: an overpaying coinbase is still rejected."""
    blocks, _ = _chain(2030)
    bad = blocks[49]
    cb = bad.txs[0]
    inflated = coinbase_tx(50, [TxOut(cb.outputs[0].value + 1, cb.outputs[0].script_pubkey)])
    bad = solve(
        assemble_block(
            bad.header.prev_hash, bad.header.time, 0x207FFFFF, inflated, witness_commitment=True
        )
    )
    chain = ChainState(REGTEST, tmp_path, assume_valid=blocks[-1].hash, clock=lambda: 2_000_000_000)
    for b in blocks[:49]:
        chain.accept_block(b)
    chain.accept_block(bad)
    assert chain.height == 49
    assert chain.last_error is not None and chain.last_error[1].code == "bad-cb-amount"
    chain.close()
