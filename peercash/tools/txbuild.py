"""Anyone-can-spend transactions for tests, benchmarks and demos: one builder shared by the
in-process chain and pool tests (``tests/chain/blocktools.py``, ``tests/mempool/pooltools.py``)
and the functional tests on real node processes (``tests/functional/framework/coins.py``).

Coins are outputs to ``P2WSH(OP_TRUE)`` (spent with the witness ``[OP_TRUE]``) or to bare
``OP_TRUE`` (spent with an empty scriptSig). A :class:`TxBook` remembers every output it has
built or been told about, so a spend can be written by outpoint with a chosen fee, version,
sequence, lock time and outputs.

Layer: tools (may import anything below the node); no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.mining.builder import OP_TRUE_SCRIPT, P2WSH_OP_TRUE

__all__ = ["DEFAULT_FEE", "FINAL", "NON_FINAL", "OP_TRUE_SCRIPT", "P2WSH_OP_TRUE", "TxBook"]

FINAL = 0xFFFFFFFF
NON_FINAL = 0xFFFFFFFE
"""The sequence of an input that enables the lock time and opts out of BIP68 lock-times."""
DEFAULT_FEE = 10_000


def op_true_input(prevout: OutPoint, script_pubkey: bytes, sequence: int) -> TxIn:
    """The input spending an anyone-can-spend output with this script."""
    if script_pubkey == P2WSH_OP_TRUE:
        return TxIn(prevout, b"", sequence, (OP_TRUE_SCRIPT,))
    if script_pubkey == OP_TRUE_SCRIPT:
        return TxIn(prevout, b"", sequence)
    raise ValueError(f"don't know how to spend {script_pubkey.hex()}")


class TxBook:
    """The outputs we know (outpoint → ``TxOut``) and spends of them."""

    def __init__(self) -> None:
        self.outputs: dict[OutPoint, TxOut] = {}

    def record_tx(self, tx: Tx) -> None:
        """Remember ``tx``'s outputs, so later transactions can spend them by outpoint."""
        txid = tx.txid
        for i, out in enumerate(tx.outputs):
            self.outputs[OutPoint(txid, i)] = out

    def value(self, prevout: OutPoint) -> int:
        return self.outputs[prevout].value

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
        """A transaction spending ``prevouts``. Without ``outputs``: one output of everything
        but ``fee`` to ``script_pubkey``. Unknown prevouts are spent as P2WSH(OP_TRUE) with value
        0 (a test of missing inputs may want that)."""
        inputs = []
        total = 0
        for p in prevouts:
            out = self.outputs.get(p)
            spk = out.script_pubkey if out is not None else P2WSH_OP_TRUE
            total += out.value if out is not None else 0
            inputs.append(op_true_input(p, spk, sequence))
        if outputs is None:
            outputs = [TxOut(total - fee, script_pubkey)]
        tx = Tx(version, inputs, list(outputs), locktime)
        self.record_tx(tx)
        return tx

    def split(self, prevout: OutPoint, n: int, *, fee: int = DEFAULT_FEE, version: int = 2) -> Tx:
        """Spend ``prevout`` into ``n`` equal P2WSH(OP_TRUE) outputs."""
        total = self.outputs[prevout].value - fee
        outs = [TxOut(total // n, P2WSH_OP_TRUE) for _ in range(n)]
        return self.spend([prevout], outs, fee=fee, version=version)

    def fee_of(self, tx: Tx) -> int:
        """The fee of ``tx`` if every output it spends is known, else 0."""
        if tx.is_coinbase() or any(i.prevout not in self.outputs for i in tx.inputs):
            return 0
        paid = sum(self.outputs[i.prevout].value for i in tx.inputs)
        return max(0, paid - sum(o.value for o in tx.outputs))
