"""Signet block solutions (BIP325): a block is valid only if it satisfies the network's challenge.

The solution travels in the coinbase's witness commitment output, as a push that starts with the
signet header. It is checked like a transaction input: ``to_spend`` pays to the challenge and
commits to the block (with the solution taken out of the merkle root); ``to_sign`` spends it
with the solution's scriptSig and witness.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DecodeError, RuleError
from .merkle import merkle_root, witness_commitment_index
from .primitives import Block, OutPoint, Tx, TxIn, TxOut
from .script.errors import ScriptError
from .script.flags import VerifyFlags
from .script.interpreter import TransactionChecker, verify_script
from .script.script import BadScript, get_op, push_data
from .script.sighash import PrecomputedTxData
from .serialize import Reader, pack_i32, pack_u32

SIGNET_HEADER = bytes.fromhex("ecc7daa2")
SIGNET_SCRIPT_FLAGS = (
    VerifyFlags.P2SH | VerifyFlags.WITNESS | VerifyFlags.DERSIG | VerifyFlags.NULLDUMMY
)
"""Consensus (BIP325): the flags a block solution is verified with."""

_NULL_OUTPOINT = OutPoint(b"\x00" * 32, 0xFFFFFFFF)


@dataclass(frozen=True)
class SignetTxs:
    to_spend: Tx
    to_sign: Tx


def _take_solution(script: bytes) -> tuple[bytes, bytes] | None:
    """Split the solution out of a commitment script: (script without it, solution), or None.

    Only the first push that starts with the header *and* carries more bytes counts; it is
    replaced by a push of the bare header, and every other element is re-encoded as it was read.
    """
    out = bytearray()
    solution: bytes | None = None
    pos = 0
    while pos < len(script):
        try:
            opcode, data, pos = get_op(script, pos)
        except BadScript:
            break
        if data:
            if solution is None and len(data) > 4 and data.startswith(SIGNET_HEADER):
                solution = data[4:]
                data = SIGNET_HEADER
            out += push_data(data)
        else:
            out.append(opcode)
    if solution is None:
        return None
    return bytes(out), solution


def signet_txs(block: Block, challenge: bytes) -> SignetTxs | None:
    """The two transactions a block's solution is checked with; None when it cannot be parsed."""
    if not block.txs:
        return None
    coinbase = block.txs[0]
    idx = witness_commitment_index(block)
    if idx is None:
        return None
    script_sig = b""
    witness: tuple[bytes, ...] = ()
    outputs = list(coinbase.outputs)
    taken = _take_solution(outputs[idx].script_pubkey)
    if taken is not None:
        outputs[idx] = TxOut(outputs[idx].value, taken[0])
        try:
            r = Reader(taken[1])
            script_sig = r.var_bytes()
            witness = tuple(r.var_bytes() for _ in range(r.count(1)))
            r.expect_end()
        except DecodeError:
            return None
    modified = Tx(coinbase.version, coinbase.inputs, outputs, coinbase.locktime)
    root, _ = merkle_root([modified.txid] + [tx.txid for tx in block.txs[1:]])
    h = block.header
    block_data = pack_i32(h.version) + h.prev_hash + root + pack_u32(h.time)
    to_spend = Tx(
        0, [TxIn(_NULL_OUTPOINT, b"\x00" + push_data(block_data), 0)], [TxOut(0, challenge)]
    )
    to_sign = Tx(0, [TxIn(OutPoint(to_spend.txid, 0), script_sig, 0, witness)], [TxOut(0, b"\x6a")])
    return SignetTxs(to_spend, to_sign)


def check_signet_solution(block: Block, challenge: bytes, genesis_hash: bytes) -> None:
    """Raise ``RuleError("bad-signet-blksig")`` unless the block satisfies the challenge."""
    if block.hash == genesis_hash:
        return
    txs = signet_txs(block, challenge)
    if txs is None:
        raise RuleError("bad-signet-blksig", "signet block solution parse failure")
    spent = txs.to_spend.outputs[0]
    txin = txs.to_sign.inputs[0]
    checker = TransactionChecker(txs.to_sign, 0, 0, PrecomputedTxData(txs.to_sign, [spent]))
    err = verify_script(txin.script_sig, challenge, txin.witness, SIGNET_SCRIPT_FLAGS, checker)
    if err is not ScriptError.OK:
        raise RuleError("bad-signet-blksig", f"signet block solution invalid ({err.value})")
