"""One owner per data directory: an exclusive ``flock`` on ``<datadir>/.lock``.

Every command that opens a network's data directory — the node, ``import``, ``chaininfo``, a
reindex — takes this lock before it touches anything else there (no sub-folder is created, no
file opened), and a second one fails at once with ``DataDirLockedError``. ``ChainState`` takes it
itself unless its owner (the node, which takes it before writing ``debug.log`` and ``.cookie``)
hands it one already held. The operating system releases it when the process dies.

Not thread-safe; one lock object per process and directory (two ``flock`` calls of one process on
two open files of the same path conflict, as with two processes).
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import IO

from .errors import ChainError, access_error

LOCK_NAME = ".lock"


class DataDirLockedError(ChainError):
    """Another process (or another open of this process) holds the data directory's lock."""


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<datadir>/.lock``; the folder must exist."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.path = datadir / LOCK_NAME
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock or raise: ``DataDirLockedError`` when someone has it,
        ``DataDirAccessError`` when the lock file may not be created or written."""
        if self._file is not None:
            return
        try:
            f = open(self.path, "ab")  # noqa: SIM115 - held open for the owner's life
        except OSError as e:
            raise access_error(e, path=self.path) or ChainError(
                f"Cannot open the lock file {self.path}: {e.strerror or e}"
            ) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise DataDirLockedError(
                f"Cannot obtain a lock on data directory {self.datadir}. "
                "peercash is probably already running."
            ) from None
        except OSError as e:
            f.close()
            raise ChainError(
                f"Cannot lock data directory {self.datadir}: {e.strerror or e}"
            ) from None
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
