"""BIP325 block solutions: empty solutions for trivial challenges, signed ones, tampering."""

from __future__ import annotations

import hashlib

import pytest

from peercash.consensus.crypto import pubkey_from_secret, sign_ecdsa
from peercash.consensus.errors import RuleError
from peercash.consensus.merkle import witness_commitment_index
from peercash.consensus.params import SIGNET, signet_params
from peercash.consensus.primitives import Block, Header, Tx, TxOut
from peercash.consensus.script.script import push_data
from peercash.consensus.script.sighash import legacy_sighash
from peercash.consensus.serialize import compact_size
from peercash.consensus.signet import SIGNET_HEADER, check_signet_solution, signet_txs
from peercash.mining.builder import assemble_block, coinbase_tx

SECRET = hashlib.sha256(b"signet key").digest()
PUB = pubkey_from_secret(SECRET)
CHALLENGE = push_data(PUB) + b"\xac"  # <pubkey> OP_CHECKSIG


def _block() -> Block:
    cb = coinbase_tx(1, [TxOut(50_0000_0000, b"\x51")])
    return assemble_block(b"\x11" * 32, 1_700_000_000, 0x1E0377AE, cb, witness_commitment=True)


def _with_solution(block: Block, script_sig: bytes, witness: list[bytes]) -> Block:
    solution = compact_size(len(script_sig)) + script_sig + compact_size(len(witness))
    solution += b"".join(compact_size(len(w)) + w for w in witness)
    cb = block.txs[0]
    idx = witness_commitment_index(block)
    assert idx is not None
    outs = list(cb.outputs)
    outs[idx] = TxOut(
        outs[idx].value, outs[idx].script_pubkey + push_data(SIGNET_HEADER + solution)
    )
    new_cb = Tx(cb.version, cb.inputs, outs, cb.locktime)
    from peercash.consensus.merkle import merkle_root

    root, _ = merkle_root([new_cb.txid] + [t.txid for t in block.txs[1:]])
    h = block.header
    return Block(
        Header(h.version, h.prev_hash, root, h.time, h.bits, h.nonce), [new_cb, *block.txs[1:]]
    )


def _signed(block: Block) -> Block:
    # The signature commits to the block without the solution, so sign the solution-less form.
    txs = signet_txs(_with_solution(block, b"", []), CHALLENGE)
    assert txs is not None
    msg = legacy_sighash(CHALLENGE, txs.to_sign, 0, 1)
    sig = sign_ecdsa(SECRET, msg) + b"\x01"
    return _with_solution(block, push_data(sig), [])


def test_trivial_challenge_accepts_a_block_without_solution() -> None:
    check_signet_solution(_block(), b"\x51", b"")


def test_signed_block_passes_and_tampering_fails() -> None:
    block = _signed(_block())
    check_signet_solution(block, CHALLENGE, b"")
    h = block.header
    moved = Block(
        Header(h.version, h.prev_hash, h.merkle_root, h.time + 1, h.bits, h.nonce), block.txs
    )
    with pytest.raises(RuleError) as e:
        check_signet_solution(moved, CHALLENGE, b"")
    assert e.value.code == "bad-signet-blksig"


def test_missing_solution_or_commitment_fails() -> None:
    with pytest.raises(RuleError, match="bad-signet-blksig"):
        check_signet_solution(_block(), CHALLENGE, b"")
    cb = coinbase_tx(1, [TxOut(1, b"\x51")], witness=False)
    no_commitment = assemble_block(b"\x11" * 32, 1, 0x1E0377AE, cb, witness_commitment=False)
    with pytest.raises(RuleError, match="parse failure"):
        check_signet_solution(no_commitment, b"\x51", b"")


def test_garbage_solution_is_a_parse_failure() -> None:
    block = _with_solution(_block(), b"\x01", [])
    bad = block.txs[0]
    idx = witness_commitment_index(block)
    assert idx is not None
    outs = list(bad.outputs)
    outs[idx] = TxOut(0, outs[idx].script_pubkey + b"\x02\xff\xff")
    with pytest.raises(RuleError):
        check_signet_solution(
            Block(block.header, [Tx(bad.version, bad.inputs, outs, bad.locktime)]), CHALLENGE, b""
        )


def test_genesis_is_exempt_and_params_carry_challenge() -> None:
    genesis = Block.parse(SIGNET.genesis)
    assert SIGNET.signet_challenge
    check_signet_solution(genesis, SIGNET.signet_challenge, SIGNET.genesis_hash)
    custom = signet_params(CHALLENGE)
    assert custom.signet_challenge == CHALLENGE
    assert custom.magic != SIGNET.magic
