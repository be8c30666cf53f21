"""Script checks spread over worker processes, so block validation uses every core.

Python threads cannot run the interpreter in parallel, so each worker is a process. A batch is
sent as raw transactions plus their spent outputs (bytes pickle cheaply); the worker parses and
verifies every input and returns the failures, while the calling process verifies its own share. Results are exact: the same ``verify_input`` runs
in the worker as in a single-process check.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

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


def _worker_main(conn: Connection) -> None:
    """A worker: receive a pickled batch, verify it, send back the failures; None stops it."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        jobs = pickle.loads(data)
        if jobs is None:
            return
        conn.send_bytes(pickle.dumps(_check_jobs(jobs), pickle.HIGHEST_PROTOCOL))


class ScriptCheckPool:
    """Worker processes that verify the inputs of many transactions together with the caller.

    Each worker has its own pipe. A batch is pickled and written by the calling thread itself
    before it starts on its own share, so workers start at once (a feeder thread would have to
    wait for the GIL while the caller verifies).
    """

    def __init__(self, workers: int | None = None, worker_share: float = 92.0) -> None:
        """``workers`` extra processes (default: one per core beyond this one);
        ``worker_share``: a worker's initial load relative to this process's 100 (workers also
        parse what they are sent); it then follows who finishes first."""
        self.workers = workers or max(1, (os.cpu_count() or 2) - 1)
        self.worker_share = worker_share
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        for _ in range(self.workers):
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)  # type: ignore[attr-defined]
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    def check(
        self, txs: Sequence[Tx], spent: Sequence[Sequence[TxOut]], flags: int
    ) -> list[ScriptCheckFailure]:
        """Verify every input of every transaction; failures sorted by position."""
        if len(txs) != len(spent):
            raise ValueError("one list of spent outputs per transaction")
        total = sum(len(tx.inputs) for tx in txs)
        if not total:
            return []
        flags = int(flags)
        per_worker = int(total * self.worker_share / (self.workers * self.worker_share + 100))
        # Workers take transactions from the front, one contiguous run each.
        i = 0
        n = len(txs)
        sent: list[Connection] = []
        for conn in self._conns:
            batch: list[_Job] = []
            size = 0
            while i < n and size < per_worker:
                tx = txs[i]
                batch.append((i, tx.serialize(), b"".join(o.serialize() for o in spent[i]), flags))
                size += len(tx.inputs)
                i += 1
            if not batch:
                break
            conn.send_bytes(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
            sent.append(conn)
        failures: list[ScriptCheckFailure] = []
        started = time.perf_counter()
        for j in range(i, n):
            failures.extend(
                ScriptCheckFailure(j, k, err)
                for k, err in check_tx_inputs(txs[j], spent[j], flags)
                if err is not None
            )
        own_done = time.perf_counter()
        for conn in sent:
            try:
                results = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError) as e:
                raise RuntimeError(f"a script-check worker died: {e}") from None
            failures.extend(ScriptCheckFailure(t, k, ScriptError(e)) for t, k, e in results)
        if sent and i < n:
            self._rebalance(own_done - started, time.perf_counter() - own_done)
        failures.sort(key=lambda f: (f.tx_index, f.input_index))
        return failures

    def _rebalance(self, own: float, waited: float) -> None:
        """Move work toward whoever finished first: a machine's cores are rarely equal (other
        load, the workers' parsing), and waiting on either side wastes a core."""
        if waited > 0.02 * own:
            self.worker_share = max(30.0, self.worker_share * 0.93)
        elif waited < 0.002 * own:
            self.worker_share = min(300.0, self.worker_share * 1.05)

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send_bytes(pickle.dumps(None))
            conn.close()
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._conns.clear()
        self._procs.clear()

    def __enter__(self) -> ScriptCheckPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
