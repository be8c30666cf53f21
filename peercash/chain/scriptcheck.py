"""Script checks spread over worker processes, so block validation uses every core.

Python threads cannot run the interpreter in parallel, so each worker is a process. A batch is
sent as raw transactions plus their spent outputs (bytes pickle cheaply); the worker parses and
verifies every input and returns the failures. Results are exact: the same ``verify_input`` runs
in the worker as in a single-process check.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from peercash.consensus.primitives import Tx, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.interpreter import verify_input
from peercash.consensus.script.sighash import PrecomputedTxData
from peercash.consensus.serialize import Reader


@dataclass(frozen=True, slots=True)
class ScriptCheckFailure:
    """Input ``input_index`` of the ``tx_index``-th transaction given failed with ``error``."""

    tx_index: int
    input_index: int
    error: ScriptError


# One job: (tx_index, raw tx, spent outputs serialized back to back, flags).
_Job = tuple[int, bytes, bytes, int]


def _parse_outputs(raw: bytes, count: int) -> list[TxOut]:
    r = Reader(raw)
    outs = [TxOut.from_reader(r) for _ in range(count)]
    r.expect_end()
    return outs


def _check_jobs(jobs: list[_Job]) -> list[tuple[int, int, str]]:
    failures: list[tuple[int, int, str]] = []
    for tx_index, raw_tx, raw_spent, flags in jobs:
        tx = Tx.parse(raw_tx)
        spent = _parse_outputs(raw_spent, len(tx.inputs))
        failures.extend(
            (tx_index, i, err.value) for i, err in check_tx_inputs(tx, spent, flags) if err
        )
    return failures


def check_tx_inputs(
    tx: Tx, spent: Sequence[TxOut], flags: int
) -> list[tuple[int, ScriptError | None]]:
    """Verify every input of ``tx``; returns (index, error or None) for each input."""
    txdata = PrecomputedTxData(tx, spent)
    out: list[tuple[int, ScriptError | None]] = []
    for i in range(len(tx.inputs)):
        err = verify_input(tx, i, spent, flags, txdata)
        out.append((i, None if err is ScriptError.OK else err))
    return out


class ScriptCheckPool:
    """A pool of worker processes that verify the inputs of many transactions at once."""

    def __init__(self, workers: int | None = None, worker_share: int = 92) -> None:
        """``workers`` extra processes (default: one per core beyond this one);
        ``worker_share``: a worker's load relative to this process's 100."""
        self.workers = workers or max(1, (os.cpu_count() or 2) - 1)
        self.worker_share = worker_share
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        # Start every worker now, so that the first block does not pay for it.
        for f in [self._pool.submit(os.getpid) for _ in range(self.workers * 2)]:
            f.result()

    def check(
        self, txs: Sequence[Tx], spent: Sequence[Sequence[TxOut]], flags: int
    ) -> list[ScriptCheckFailure]:
        """Verify every input of every transaction; failures sorted by position.

        The calling process verifies a share itself while the workers do theirs, so ``workers``
        extra processes keep ``workers + 1`` cores busy. Workers get slightly less than an equal
        share, since they also parse what they are sent.
        """
        if len(txs) != len(spent):
            raise ValueError("one list of spent outputs per transaction")
        total = sum(len(tx.inputs) for tx in txs)
        if not total:
            return []
        flags = int(flags)
        share = total * self.worker_share // (self.workers * self.worker_share + 100)
        # Workers take transactions from the front, in a few batches each for balance.
        target = max(1, share // 2)
        batches: list[list[_Job]] = []
        batch: list[_Job] = []
        size = 0
        assigned = 0
        i = 0
        n = len(txs)
        while i < n and assigned < share * self.workers:
            tx = txs[i]
            batch.append((i, tx.serialize(), b"".join(o.serialize() for o in spent[i]), flags))
            size += len(tx.inputs)
            assigned += len(tx.inputs)
            i += 1
            if size >= target:
                batches.append(batch)
                batch, size = [], 0
        if batch:
            batches.append(batch)
        futures: list[Future[list[tuple[int, int, str]]]] = [
            self._pool.submit(_check_jobs, b) for b in batches
        ]
        failures: list[ScriptCheckFailure] = []
        for j in range(i, n):
            failures.extend(
                ScriptCheckFailure(j, k, err)
                for k, err in check_tx_inputs(txs[j], spent[j], flags)
                if err is not None
            )
        for f in futures:
            failures.extend(ScriptCheckFailure(t, k, ScriptError(e)) for t, k, e in f.result())
        failures.sort(key=lambda f: (f.tx_index, f.input_index))
        return failures

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ScriptCheckPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
