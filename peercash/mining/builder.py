"""Building blocks and simple signed transactions: coinbase, merkle root, witness commitment, PoW.

Used by regtest mining (``generatetoaddress``), the scenario tests and the benchmarks. Signing
helpers cover the standard templates (P2PKH, P2WPKH, P2TR key path) and anyone-can-spend
outputs; everything goes through the same sighash and libsecp256k1 code as validation.
"""

from __future__ import annotations

from collections.abc import Sequence

from peercash.consensus.crypto import pubkey_from_secret, sign_ecdsa, sign_schnorr
from peercash.consensus.hashing import hash160
from peercash.consensus.merkle import (
    compute_witness_commitment,
    merkle_root,
    witness_commitment_script,
)
from peercash.consensus.pow import bits_to_target
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.script import push_data, push_int
from peercash.consensus.script.sighash import (
    PrecomputedTxData,
    legacy_sighash,
    segwit_v0_sighash,
    taproot_sighash,
)
from peercash.consensus.script.taproot import tweak_private_key, tweak_public_key

NULL_OUTPOINT = OutPoint(b"\x00" * 32, 0xFFFFFFFF)
WITNESS_NONCE = b"\x00" * 32
OP_TRUE_SCRIPT = b"\x51"
P2WSH_OP_TRUE = b"\x00\x20" + bytes.fromhex(
    "4ae81572f06e1b88fd5ced7a1a000945432e83e1551e6f721ee9c00b8cc33260"
)
"""The P2WSH of ``OP_TRUE`` (bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85)."""


def coinbase_tx(
    height: int,
    outputs: Sequence[TxOut],
    *,
    extra: bytes = b"",
    witness: bool = True,
    sequence: int = 0xFFFFFFFF,
) -> Tx:
    """A coinbase whose scriptSig starts with the BIP34 height (padded to Core's 2-byte minimum)."""
    script_sig = push_int(height) + (push_data(extra) if extra else b"")
    if len(script_sig) < 2:
        script_sig += b"\x00"  # Core's miner appends OP_0 for heights 1..16
    wit = (WITNESS_NONCE,) if witness else ()
    return Tx(2, [TxIn(NULL_OUTPOINT, script_sig, sequence, wit)], outputs, 0)


def assemble_block(
    prev_hash: bytes,
    time: int,
    bits: int,
    coinbase: Tx,
    txs: Sequence[Tx] = (),
    *,
    version: int = 0x20000000,
    witness_commitment: bool | None = None,
) -> Block:
    """Put a block together (without solving it). A witness commitment is added to the coinbase
    when any transaction has a witness, or when ``witness_commitment`` asks for one."""
    all_txs = [coinbase, *txs]
    if witness_commitment is None:
        witness_commitment = any(tx.has_witness() for tx in txs)
    if witness_commitment:
        wroot, _ = merkle_root([b"\x00" * 32] + [tx.wtxid for tx in txs])
        nonce = coinbase.inputs[0].witness[0] if coinbase.inputs[0].witness else WITNESS_NONCE
        commitment = witness_commitment_script(compute_witness_commitment(wroot, nonce))
        cb_in = coinbase.inputs[0]
        if not cb_in.witness:
            cb_in = TxIn(cb_in.prevout, cb_in.script_sig, cb_in.sequence, (WITNESS_NONCE,))
        coinbase = Tx(
            coinbase.version, [cb_in], [*coinbase.outputs, TxOut(0, commitment)], coinbase.locktime
        )
        all_txs[0] = coinbase
    root, _ = merkle_root([tx.txid for tx in all_txs])
    return Block(Header(version, prev_hash, root, time, bits, 0), all_txs)


def solve(block: Block, max_tries: int = 1 << 32) -> Block:
    """Grind the nonce until the header meets its own target (fast at regtest difficulty)."""
    target, _, _ = bits_to_target(block.header.bits)
    h = block.header
    for nonce in range(max_tries):
        header = Header(h.version, h.prev_hash, h.merkle_root, h.time, h.bits, nonce)
        if int.from_bytes(header.hash, "little") <= target:
            return Block(header, block.txs)
    raise ValueError("no nonce meets the target")


# -- signing helpers --------------------------------------------------------------------------


def p2pkh_script(pubkey: bytes) -> bytes:
    return b"\x76\xa9\x14" + hash160(pubkey) + b"\x88\xac"


def p2wpkh_script(pubkey: bytes) -> bytes:
    return b"\x00\x14" + hash160(pubkey)


def p2tr_script(secret: bytes) -> bytes:
    """The key-path-only taproot output of ``secret``'s x-only key."""
    output_key, _ = tweak_public_key(pubkey_from_secret(secret)[1:], None)
    return b"\x51\x20" + output_key


def sign_inputs(
    tx: Tx, spent: Sequence[TxOut], secrets: Sequence[bytes | None], hash_type: int = 1
) -> Tx:
    """Sign every input whose spent output is P2PKH, P2WPKH or P2TR (key path) with its secret.

    Inputs with secret None are left as they are (e.g. OP_TRUE spends already filled in).
    """
    txdata = PrecomputedTxData(tx, spent)
    inputs = list(tx.inputs)
    for i, (out, secret) in enumerate(zip(spent, secrets, strict=True)):
        if secret is None:
            continue
        spk = out.script_pubkey
        txin = inputs[i]
        pub = pubkey_from_secret(secret)
        if spk == p2wpkh_script(pub):
            msg = segwit_v0_sighash(p2pkh_script(pub), tx, i, hash_type, out.value, txdata)
            sig = sign_ecdsa(secret, msg) + bytes((hash_type,))
            inputs[i] = TxIn(txin.prevout, b"", txin.sequence, (sig, pub))
        elif spk == p2pkh_script(pub):
            msg = legacy_sighash(spk, tx, i, hash_type)
            sig = sign_ecdsa(secret, msg) + bytes((hash_type,))
            inputs[i] = TxIn(txin.prevout, push_data(sig) + push_data(pub), txin.sequence)
        elif spk == p2tr_script(secret):
            ht = 0 if hash_type == 1 else hash_type
            tr_msg = taproot_sighash(tx, i, ht, txdata, 0, None)
            if tr_msg is None:
                raise ValueError("invalid taproot hash type")
            sig = sign_schnorr(tweak_private_key(secret, None), tr_msg)
            inputs[i] = TxIn(txin.prevout, b"", txin.sequence, (sig + bytes((ht,)) if ht else sig,))
        else:
            raise ValueError(f"input {i}: don't know how to sign for {spk.hex()}")
    return Tx(tx.version, inputs, tx.outputs, tx.locktime)


def spend_op_true_p2wsh(
    prevout: OutPoint, outputs: Sequence[TxOut], sequence: int = 0xFFFFFFFE
) -> Tx:
    """Spend a P2WSH(OP_TRUE) output: the witness is just the script."""
    return Tx(2, [TxIn(prevout, b"", sequence, (OP_TRUE_SCRIPT,))], outputs, 0)
