"""Errors of the chain layer that are not rule violations: storage that cannot be trusted, or
storage this process may not use.

Damage and permission problems are told apart: ``CorruptionError`` (the bytes are wrong) says how
to rebuild, ``DataDirAccessError`` (the operating system refused, ``EACCES``/``EPERM``/``EROFS``)
names the path and the user, and never advises a reindex, which could not help.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

REINDEX_ADVICE = (
    "The data directory is damaged: restart the node with --reindex (peercash node --reindex) "
    "to rebuild the block index and the UTXO set from the block files."
)
REINDEX_CHAINSTATE_ADVICE = (
    "The UTXO set is damaged: restart the node with --reindex-chainstate (peercash node "
    "--reindex-chainstate) to rebuild it from the stored blocks, or with --reindex to rebuild "
    "the block index as well."
)

ACCESS_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_ACCESS_TEXTS = tuple(os.strerror(n) for n in sorted(ACCESS_ERRNOS))


class ChainError(Exception):
    """Base class of chain-layer failures other than ``RuleError``."""


class CorruptionError(ChainError):
    """Data on disk is missing or damaged. The message names the file and how to recover:
    ``chainstate_only`` when only the UTXO set is affected (``--reindex-chainstate`` is enough)."""

    def __init__(self, what: str, path: object, *, chainstate_only: bool = False) -> None:
        advice = REINDEX_CHAINSTATE_ADVICE if chainstate_only else REINDEX_ADVICE
        super().__init__(f"{what} ({path}). {advice}")
        self.path = path
        self.chainstate_only = chainstate_only


class DataDirAccessError(ChainError):
    """The operating system refused to let this process read or write a path of the data
    directory (permissions, a read-only file system). The data is not known to be damaged."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


def is_access_errno(code: int | None) -> bool:
    return code in ACCESS_ERRNOS


def looks_like_access_problem(text: str) -> bool:
    """Whether an error text (LMDB's carry only ``strerror``) is a permission or read-only one."""
    return any(t in text for t in _ACCESS_TEXTS)


def access_error(err: OSError, *, path: Path | None = None) -> DataDirAccessError | None:
    """The ``DataDirAccessError`` for an ``OSError`` that is a permission or read-only file system
    failure (None for any other), naming the path that cannot be used."""
    if not is_access_errno(err.errno):
        return None
    target = Path(err.filename) if err.filename else path
    if target is None:
        return DataDirAccessError(f"{err.strerror or err}", Path("."))
    return describe_access_problem([target], read_only_fs=err.errno == errno.EROFS)


def describe_access_problem(
    paths: Iterable[Path], *, read_only_fs: bool = False, detail: str = ""
) -> DataDirAccessError:
    """Find which of ``paths`` (or of their parent folders) this process cannot use, and say so:
    the path, what is missing (read, write, enter), the user we run as and the path's owner."""
    candidates = list(paths)
    for p in candidates:
        found = _first_inaccessible(p)
        if found is not None:
            where, need = found
            return _make(where, need, read_only_fs=read_only_fs or _on_read_only_fs(where))
    where = candidates[0] if candidates else Path(".")
    return _make(where, "write", read_only_fs=read_only_fs, detail=detail)


def _first_inaccessible(path: Path) -> tuple[Path, str] | None:
    """The first folder on the way to ``path`` that cannot be entered, or ``path`` itself when it
    cannot be read or written, or its folder when ``path`` is missing and cannot be created."""
    path = Path(os.path.abspath(path))
    for folder in reversed(path.parents):
        if folder.exists() and not os.access(folder, os.X_OK):
            return folder, "enter"
    if path.exists():
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                return path, "read"
            if not os.access(path, os.W_OK):
                return path, "write"
            return None
        if not os.access(path, os.R_OK):
            return path, "read"
        if not os.access(path, os.W_OK):
            return path, "write"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        return parent, "create files in"
    return None


def _on_read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _make(
    path: Path, need: str, *, read_only_fs: bool = False, detail: str = ""
) -> DataDirAccessError:
    extra = f" ({detail})" if detail else ""
    if read_only_fs:
        return DataDirAccessError(
            f"Cannot write to {path}: it is on a read-only file system{extra}. peercash must write "
            "to its data directory: remount it read-write or choose another --datadir.",
            path,
        )
    uid = os.geteuid()
    try:
        st = path.stat()
        owner = f"owned by {_user(st.st_uid)}, {stat.filemode(st.st_mode)}"
    except OSError:
        owner = "its owner is unknown"
    return DataDirAccessError(
        f"Permission denied: peercash runs as user {_user(uid)} (uid {uid}) and cannot {need} "
        f"{path} ({owner}){extra}. Give that user access, or run peercash as the user who owns "
        "it (this is not damage: reindexing would not help).",
        path,
    )
