"""Small helpers for tests that drive real processes: deadlines and memory figures."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises ``TimeoutError`` naming ``what`` (and the last value or exception seen) when
    ``timeout`` seconds pass first. Exceptions from ``predicate`` count as "not yet" until the
    deadline, so it may poll something that is still starting up.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as e:
            last = e
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def process_rss(pid: int) -> int:
    """The resident set size of process ``pid`` in bytes, from ``/proc/PID/status`` (Linux).

    Raises ``ProcessLookupError`` if there is no such process.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", line
            return int(value) * 1024
    return 0  # a zombie has no VmRSS line


def tree_rss(pid: int) -> int:
    """RSS of ``pid`` plus all its descendants (bcoin's worker processes, for example)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            total += process_rss(p)
        except ProcessLookupError:
            continue
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
