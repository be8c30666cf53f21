"""Opening LMDB environments safely, and turning LMDB failures into ``CorruptionError``.

LMDB keeps no checksums and maps its file into memory: a data file shorter than the pages it
claims would crash the process with SIGBUS on first read, so its size is checked at open.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import lmdb

from .errors import CorruptionError


def open_env(folder: Path, what: str, *, map_size: int, max_dbs: int) -> lmdb.Environment:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        env = lmdb.open(str(folder), map_size=map_size, max_dbs=max_dbs, readahead=False)
    except lmdb.Error as e:
        raise CorruptionError(f"cannot open the {what}: {e}", folder) from None
    data = folder / "data.mdb"
    try:
        needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
        if os.path.getsize(data) < needed:
            env.close()
            raise CorruptionError(f"the {what} file is truncated", data)
    except lmdb.Error as e:
        env.close()
        raise CorruptionError(f"the {what} is damaged: {e}", folder) from None
    return env


@contextlib.contextmanager
def guard(what: str, path: Path) -> Iterator[None]:
    """Re-raise LMDB errors inside the block as ``CorruptionError`` naming ``path``."""
    try:
        yield
    except lmdb.Error as e:
        raise CorruptionError(f"the {what} is damaged: {e}", path) from None
