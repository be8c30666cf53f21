"""Script checks spread over worker processes, so block validation uses every core.

Python threads cannot run the interpreter in parallel, so each worker is a process. Work is a
queue of transactions (a job each) that this process and the workers draw from together: a
worker is sent a chunk from the front whenever it has fewer than two outstanding, this process
verifies jobs from the back, and chunks shrink as the queue runs down, so both sides finish
together. A chunk travels as raw transactions plus their spent outputs (bytes pickle cheaply);
the worker parses and verifies every input and returns the failures. Results are exact: the
same ``verify_input`` runs in a worker as in this process.

Checks can also run behind the caller: ``submit`` queues a batch and returns at once, ``pump``
and ``help`` keep the workers fed while the caller does other work, and ``wait`` collects. Block
import uses that to check a block's scripts while it connects the next ones.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
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


@dataclass(eq=False, slots=True)
class CheckBatch:
    """The script checks of one submission; ``done`` once every job has been verified."""

    remaining: int
    failures: list[ScriptCheckFailure] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.remaining == 0

    def sorted_failures(self) -> list[ScriptCheckFailure]:
        return sorted(self.failures, key=lambda f: (f.tx_index, f.input_index))


# A queued job: (batch, tx_index, tx, spent outputs, flags, input count).
_Job = tuple[CheckBatch, int, Tx, Sequence[TxOut], int, int]
# What a worker is sent per job: (raw tx, spent outputs serialized back to back, flags).
_WireJob = tuple[bytes, bytes, int]


def script_workers(par: int | None) -> int:
    """Extra script-check processes for a ``-par`` setting: None, one per core beyond the first;
    negative, leave that many cores free (as Core's ``-par``); else exactly ``par``."""
    cores = os.cpu_count() or 1
    if par is None:
        return max(0, cores - 1)
    if par >= 0:
        return par
    return max(0, cores + par - 1)


def _parse_outputs(raw: bytes, count: int) -> list[TxOut]:
    r = Reader(raw)
    outs = [TxOut.from_reader(r) for _ in range(count)]
    r.expect_end()
    return outs


def _check_chunk(chunk: list[_WireJob]) -> list[tuple[int, int, str]]:
    """(position in chunk, input index, error name) for every failing input."""
    failures: list[tuple[int, int, str]] = []
    for pos, (raw_tx, raw_spent, flags) in enumerate(chunk):
        tx = Tx.parse(raw_tx)
        spent = _parse_outputs(raw_spent, len(tx.inputs))
        failures.extend((pos, i, err.value) for i, err in check_tx_inputs(tx, spent, flags) if err)
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


def _worker_main(conn: Connection, inherited: list[Connection]) -> None:
    """A worker: verify chunks in the order they arrive and answer each with its failures.

    A thread drains the pipe into a local queue, so the sender never blocks on a full pipe while
    this process is busy verifying; None or the end of the pipe stops the worker.
    """
    # A forked worker holds copies of the parent's ends of every pipe made so far: close them, or
    # a parent that is killed would leave its workers waiting forever for the end of the pipe.
    for other in inherited:
        other.close()
    inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                inbox.put(conn.recv_bytes())
            except (EOFError, OSError):
                inbox.put(None)
                return

    threading.Thread(target=read, daemon=True).start()
    while True:
        data = inbox.get()
        if data is None:
            return
        chunk = pickle.loads(data)
        if chunk is None:
            return
        conn.send_bytes(pickle.dumps(_check_chunk(chunk), pickle.HIGHEST_PROTOCOL))


class _Worker:
    __slots__ = ("conn", "in_flight", "proc")

    def __init__(self, conn: Connection, proc: BaseProcess) -> None:
        self.conn = conn
        self.proc = proc
        self.in_flight: deque[list[_Job]] = deque()


class ScriptCheckPool:
    """Worker processes that verify transactions' inputs together with the calling process."""

    def __init__(
        self,
        workers: int | None = None,
        *,
        max_chunk_inputs: int = 128,
        min_chunk_inputs: int = 8,
        chunks_in_flight: int = 2,
    ) -> None:
        """``workers`` extra processes (default: one per core beyond this one). A chunk holds
        up to ``max_chunk_inputs`` inputs, fewer as the queue empties; each worker has at most
        ``chunks_in_flight`` chunks outstanding."""
        self.workers = workers or max(1, (os.cpu_count() or 2) - 1)
        self.max_chunk_inputs = max_chunk_inputs
        self.min_chunk_inputs = min_chunk_inputs
        self.chunks_in_flight = chunks_in_flight
        self._queue: deque[_Job] = deque()
        self._queued_inputs = 0
        ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._workers: list[_Worker] = []
        for _ in range(self.workers):
            parent, child = ctx.Pipe(duplex=True)
            inherited = [parent, *(w.conn for w in self._workers)]
            proc = ctx.Process(target=_worker_main, args=(child, inherited), daemon=True)  # type: ignore[attr-defined]
            proc.start()
            child.close()
            self._workers.append(_Worker(parent, proc))

    # -- submitting -----------------------------------------------------------------------------

    def submit(self, txs: Sequence[Tx], spent: Sequence[Sequence[TxOut]], flags: int) -> CheckBatch:
        """Queue every input of every transaction for checking and return at once."""
        if len(txs) != len(spent):
            raise ValueError("one list of spent outputs per transaction")
        flags = int(flags)
        batch = CheckBatch(0)
        q = self._queue
        for i, tx in enumerate(txs):
            n = len(tx.inputs)
            if n:
                q.append((batch, i, tx, spent[i], flags, n))
                batch.remaining += 1
                self._queued_inputs += n
        self.pump()
        return batch

    # -- running --------------------------------------------------------------------------------

    def pump(self) -> None:
        """Collect finished chunks and top every worker up; never blocks on a worker."""
        for w in self._workers:
            while w.in_flight and w.conn.poll():
                self._receive(w)
            while len(w.in_flight) < self.chunks_in_flight and self._queue:
                self._send(w)

    def help(self, keep_inputs: int) -> None:
        """Verify jobs here while more than ``keep_inputs`` inputs are queued (the workers get
        the rest), so a caller that outpaces the workers lends them its time."""
        n = 0
        while self._queued_inputs > keep_inputs and self._queue:
            self._run_local()
            n += 1
            if n % 4 == 0:  # a worker has a chunk or two in hand: no need to ask after each job
                self.pump()
        self.pump()

    def wait(self, batch: CheckBatch) -> None:
        """Return once ``batch`` is done, verifying queued jobs here meanwhile."""
        while not batch.done:
            self.pump()
            if batch.done:
                return
            if self._queue:
                self._run_local()
            elif not self._wait_for_worker():
                raise RuntimeError("script-check batch cannot finish: no job is outstanding")

    def discard(self) -> None:
        """Drop every queued job and wait out the chunks in flight (after a failure, the
        batches still pending no longer matter); their batches stay unfinished."""
        self._queue.clear()
        self._queued_inputs = 0
        for w in self._workers:
            while w.in_flight:
                self._receive(w)

    def check(
        self, txs: Sequence[Tx], spent: Sequence[Sequence[TxOut]], flags: int
    ) -> list[ScriptCheckFailure]:
        """Verify every input of every transaction now; failures sorted by position."""
        batch = self.submit(txs, spent, flags)
        self.wait(batch)
        return batch.sorted_failures()

    def _run_local(self) -> None:
        batch, tx_index, tx, spent, flags, n = self._queue.pop()
        self._queued_inputs -= n
        for k, err in check_tx_inputs(tx, spent, flags):
            if err is not None:
                batch.failures.append(ScriptCheckFailure(tx_index, k, err))
        batch.remaining -= 1

    def _send(self, w: _Worker) -> None:
        """Send ``w`` a chunk from the front of the queue: a quarter of its share of what is
        queued, so the chunks get smaller (and the last ones finish together) as it empties."""
        q = self._queue
        share = self._queued_inputs // (4 * (self.workers + 1))
        target = max(self.min_chunk_inputs, min(self.max_chunk_inputs, share))
        jobs: list[_Job] = []
        wire: list[_WireJob] = []
        size = 0
        while q and size < target:
            job = q.popleft()
            _, _, tx, spent, flags, n = job
            jobs.append(job)
            wire.append((tx.serialize(), b"".join([o.serialize() for o in spent]), flags))
            size += n
        self._queued_inputs -= size
        try:
            w.conn.send_bytes(pickle.dumps(wire, pickle.HIGHEST_PROTOCOL))
        except OSError as e:
            raise RuntimeError(f"a script-check worker died: {e}") from None
        w.in_flight.append(jobs)

    def _receive(self, w: _Worker) -> None:
        try:
            results = pickle.loads(w.conn.recv_bytes())
        except (EOFError, OSError) as e:
            raise RuntimeError(f"a script-check worker died: {e}") from None
        jobs = w.in_flight.popleft()
        for pos, k, err in results:
            batch, tx_index = jobs[pos][0], jobs[pos][1]
            batch.failures.append(ScriptCheckFailure(tx_index, k, ScriptError(err)))
        for job in jobs:
            job[0].remaining -= 1

    def _wait_for_worker(self) -> bool:
        """Block until some worker answers and take its answer; False if none is outstanding."""
        busy = {w.conn: w for w in self._workers if w.in_flight}
        if not busy:
            return False
        for conn in wait(list(busy)):
            self._receive(busy[conn])  # type: ignore[index]
        return True

    # -- shutting down --------------------------------------------------------------------------

    def close(self) -> None:
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.conn.send_bytes(pickle.dumps(None))
            w.conn.close()
        for w in self._workers:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.kill()
        self._workers.clear()
        self._queue.clear()
        self._queued_inputs = 0

    def __enter__(self) -> ScriptCheckPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
