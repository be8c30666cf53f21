"""Opening LMDB environments safely, and turning LMDB failures into ``CorruptionError`` (damage)
or ``DataDirAccessError`` (permissions, a read-only file system).

LMDB keeps no checksums and maps its file into memory: a data file shorter than the pages it
claims would crash the process with SIGBUS on first read, so its size is checked at open.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import lmdb

from .errors import (
    ChainError,
    CorruptionError,
    access_error,
    describe_access_problem,
    looks_like_access_problem,
)


def lmdb_failure(
    e: lmdb.Error, message: str, folder: Path, *, chainstate_only: bool = False
) -> ChainError:
    """``DataDirAccessError`` when LMDB was refused by the operating system (it reports
    ``EACCES`` as ``ReadonlyError`` and other errors by their ``strerror`` text), else damage."""
    if isinstance(e, lmdb.ReadonlyError) or looks_like_access_problem(str(e)):
        return describe_access_problem(
            [folder, folder / "data.mdb", folder / "lock.mdb"],
            read_only_fs=os.strerror(errno.EROFS) in str(e),
            detail=str(e),
        )
    return CorruptionError(message, folder, chainstate_only=chainstate_only)


def open_env(
    folder: Path, what: str, *, map_size: int, max_dbs: int, chainstate_only: bool = False
) -> lmdb.Environment:
    """``chainstate_only``: damage here is repaired by rebuilding the UTXO set alone."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise access_error(e, path=folder) or e from None
    try:
        env = lmdb.open(str(folder), map_size=map_size, max_dbs=max_dbs, readahead=False)
    except lmdb.Error as e:
        raise lmdb_failure(
            e, f"cannot open the {what}: {e}", folder, chainstate_only=chainstate_only
        ) from None
    except OSError as e:
        raise access_error(e, path=folder) or e from None
    data = folder / "data.mdb"
    try:
        needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
        if os.path.getsize(data) < needed:
            env.close()
            raise CorruptionError(
                f"the {what} file is truncated", data, chainstate_only=chainstate_only
            )
    except lmdb.Error as e:
        env.close()
        raise lmdb_failure(
            e, f"the {what} is damaged: {e}", folder, chainstate_only=chainstate_only
        ) from None
    return env


@contextlib.contextmanager
def guard(what: str, path: Path, *, chainstate_only: bool = False) -> Iterator[None]:
    """Re-raise LMDB errors inside the block as ``CorruptionError`` naming ``path`` (or as
    ``DataDirAccessError`` when the operating system refused)."""
    try:
        yield
    except lmdb.Error as e:
        raise lmdb_failure(
            e, f"the {what} is damaged: {e}", path, chainstate_only=chainstate_only
        ) from None
