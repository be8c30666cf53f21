"""What the mempool needs to know of the chain, and the adapter that answers it from a
``ChainState``.

Layer 2 (mempool). :class:`ChainView` is the narrow protocol the pool is written against (tests
may pass any object that has these members); :class:`ChainStateView` implements it over
``peercash.chain.chainstate.ChainState``. Built by ``node.py`` and handed to ``MemPool``.

Everything is evaluated for the *next* block (tip height + 1), as Core's ``CheckFinalTxAtTip``
and ``CheckSequenceLocksAtTip`` do: a transaction is admitted only if it could be mined now.

Errors: none of its own; lookups answer None for unknown coins. Concurrency: reads the chain
state, so call it where the chain is not being changed (under the node's chain lock, or from the
thread that owns the chain). ``verify_scripts`` is pure and safe from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from peercash.chain.scriptcheck import check_tx_inputs as _verify_inputs
from peercash.consensus import deployments
from peercash.consensus.contextual import (
    SpentCoin,
    calculate_sequence_locks,
    evaluate_sequence_locks,
    is_final_tx,
)
from peercash.consensus.primitives import SEQUENCE_LOCKTIME_DISABLE_FLAG, Tx, TxOut
from peercash.consensus.script.errors import ScriptError

if TYPE_CHECKING:
    from peercash.chain.chainstate import ChainState


class ChainView(Protocol):
    """The chain as the mempool sees it."""

    @property
    def tip_height(self) -> int: ...

    @property
    def tip_hash(self) -> bytes: ...

    @property
    def coinbase_maturity(self) -> int: ...

    def median_time_past(self) -> int:
        """The tip's median time past (the lock-time cutoff of the next block)."""
        ...

    def get_coin(self, txid: bytes, index: int) -> SpentCoin | None:
        """The unspent chain coin at this outpoint, with its height and coinbase flag."""
        ...

    def script_flags(self) -> int:
        """The consensus script flags the next block is checked with."""
        ...

    def is_final(self, tx: Tx) -> bool:
        """Core's ``CheckFinalTxAtTip``: ``tx``'s lock time allows it in the next block."""
        ...

    def sequence_locks_ok(self, tx: Tx, coin_heights: Sequence[int]) -> bool:
        """Core's ``CheckSequenceLocksAtTip``: BIP68 lets ``tx`` into the next block, given the
        height of each spent coin (``tip_height + 1`` for a coin still in the mempool)."""
        ...


def verify_scripts(
    tx: Tx, spent: Sequence[TxOut], flags: int
) -> list[tuple[int, ScriptError | None]]:
    """Verify every input of ``tx`` with ``flags``: (input index, error or None) per input.

    Pure (the same interpreter the chain uses), so a worker thread or process may run it.
    """
    return _verify_inputs(tx, spent, flags)


class ChainStateView:
    """:class:`ChainView` over a ``ChainState``."""

    def __init__(self, chain: ChainState) -> None:
        self.chain = chain
        self.params = chain.params
        self._flags_tip: bytes | None = None
        self._flags = 0

    @property
    def tip_height(self) -> int:
        return self.chain.height

    @property
    def tip_hash(self) -> bytes:
        return self.chain.tip.hash

    @property
    def coinbase_maturity(self) -> int:
        return self.params.coinbase_maturity

    def median_time_past(self) -> int:
        return self.chain.tip.median_time_past()

    def get_coin(self, txid: bytes, index: int) -> SpentCoin | None:
        return self.chain.get_coin(txid, index)

    def script_flags(self) -> int:
        # The next block's hash is unknown; exception blocks are historical, so none applies.
        # They depend on the next height only: computed once per tip (every acceptance asks).
        tip = self.chain.tip.hash
        if tip != self._flags_tip:
            self._flags = int(
                deployments.block_script_flags(self.params, self.chain.height + 1, b"")
            )
            self._flags_tip = tip
        return self._flags

    def is_final(self, tx: Tx) -> bool:
        if tx.locktime == 0:
            return True  # what is_final_tx answers first, without the median time past
        return is_final_tx(tx, self.chain.height + 1, self.median_time_past())

    def sequence_locks_ok(self, tx: Tx, coin_heights: Sequence[int]) -> bool:
        # Without a BIP68 lock on any input (version 1, or every input's disable flag set)
        # calculate_sequence_locks gives (-1, -1), which every block satisfies.
        if (tx.version & 0xFFFFFFFF) < 2 or all(
            txin.sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG for txin in tx.inputs
        ):
            return True
        # Always enforced, as Core's standard lock-time flags do (not only once CSV is active).
        height = self.chain.height + 1
        chain = self.chain.chain  # the active chain by height: O(1) ancestors
        lock = calculate_sequence_locks(
            tx, True, coin_heights, height, lambda h: chain[h].median_time_past()
        )
        return evaluate_sequence_locks(height, self.chain.tip.median_time_past(), lock)
