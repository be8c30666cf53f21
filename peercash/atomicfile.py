"""Crash-safe small files (``peers.dat``, ``banlist.json``, ``mempool.dat``,
``fee_estimates.dat``): a fsynced temporary file renamed over the old one, then the folder
fsynced, so a crash leaves the old file or the new one, never a torn one. Below every layer
that writes such files (p2p, mempool, node), so they share this one writer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically. Raises ``OSError``."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
