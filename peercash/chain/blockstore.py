"""Append-only block and undo files, in Core's layout (``blocks/blkNNNNN.dat``, ``revNNNNN.dat``).

Every record is ``[network magic][uint32 length][payload]``; undo records carry a trailing
double-SHA256 of (block hash + payload), so a torn or damaged record is detected on read. Files
roll over at ``max_file_size``. Writers call ``flush()`` (fsync) before anything that refers to a
record — the block index or the UTXO set — is committed, so a crash never leaves a reference to
bytes that are not on disk.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, BinaryIO

from peercash.consensus.hashing import hash256

from .errors import CorruptionError

MAX_BLOCKFILE_SIZE = 128 * 1024 * 1024
_HEADER = struct.Struct("<4sI")


@dataclass(frozen=True, slots=True)
class FilePos:
    """Where a record's payload lives: file number and the payload's byte offset."""

    file: int
    offset: int


class _FileSeries:
    """One numbered series of append-only files (blk or rev)."""

    def __init__(self, folder: Path, prefix: str, magic: bytes, max_file_size: int) -> None:
        self.folder = folder
        self.prefix = prefix
        self.magic = magic
        self.max_file_size = max_file_size
        existing = sorted(folder.glob(f"{prefix}?????.dat"))
        self.current = int(existing[-1].name[len(prefix) : len(prefix) + 5]) if existing else 0
        self._writer: BinaryIO | None = None
        self._readers: dict[int, BinaryIO] = {}
        self._dirty = False

    def path(self, file_no: int) -> Path:
        return self.folder / f"{self.prefix}{file_no:05d}.dat"

    def _open_writer(self) -> BinaryIO:
        if self._writer is None:
            self._writer = open(self.path(self.current), "ab")  # noqa: SIM115 - kept open
        return self._writer

    def append(self, payload: bytes) -> FilePos:
        """Append one record with a single write (one system call rather than two)."""
        size = len(payload)
        f = self._open_writer()
        start = f.tell()
        if start + size + 8 > self.max_file_size and start > 0:
            self.flush()
            f.close()
            self._writer = None
            self.current += 1
            f = self._open_writer()
            start = f.tell()
        f.write(_HEADER.pack(self.magic, size) + payload)
        self._dirty = True
        return FilePos(self.current, start + 8)

    def flush(self) -> None:
        if self._writer is not None and self._dirty:
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._dirty = False

    def read(self, pos: FilePos) -> bytes:
        """The payload at ``pos``, checked against its header."""
        if self._writer is not None and pos.file == self.current and self._dirty:
            self._writer.flush()
        f = self._readers.get(pos.file)
        path = self.path(pos.file)
        if f is None:
            try:
                f = open(path, "rb")  # noqa: SIM115 - cached reader
            except FileNotFoundError:
                raise CorruptionError("missing block data file", path) from None
            self._readers[pos.file] = f
        if pos.offset < 8:
            raise CorruptionError(f"bad record offset {pos.offset}", path)
        f.seek(pos.offset - 8)
        header = f.read(8)
        if len(header) != 8:
            raise CorruptionError(f"truncated record at offset {pos.offset}", path)
        magic, size = _HEADER.unpack(header)
        if magic != self.magic:
            raise CorruptionError(f"bad record header at offset {pos.offset}", path)
        data = f.read(size)
        if len(data) != size:
            raise CorruptionError(f"truncated record at offset {pos.offset}", path)
        return data

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for f in self._readers.values():
            f.close()
        self._readers.clear()


class BlockStore:
    """The ``blocks/`` folder: raw blocks and their undo data."""

    def __init__(self, folder: Path, magic: bytes, max_file_size: int = MAX_BLOCKFILE_SIZE) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._blocks = _FileSeries(folder, "blk", magic, max_file_size)
        self._undo = _FileSeries(folder, "rev", magic, max_file_size)

    def write_block(self, raw: bytes) -> FilePos:
        return self._blocks.append(raw)

    def read_block(self, pos: FilePos) -> bytes:
        return self._blocks.read(pos)

    def write_undo(self, block_hash: bytes, raw: bytes) -> FilePos:
        h = sha256(block_hash)
        h.update(raw)  # hash256(block_hash + raw), without first copying raw
        return self._undo.append(raw + sha256(h.digest()).digest())

    def read_undo(self, pos: FilePos, block_hash: bytes) -> bytes:
        data = self._undo.read(pos)
        raw, checksum = data[:-32], data[-32:]
        if len(data) < 32 or hash256(block_hash + raw) != checksum:
            raise CorruptionError(
                f"undo data checksum mismatch at offset {pos.offset}", self._undo.path(pos.file)
            )
        return raw

    def path(self, pos: FilePos) -> Path:
        """The block file a position points into."""
        return self._blocks.path(pos.file)

    def block_files(self) -> list[Path]:
        return sorted(self.folder.glob("blk?????.dat"))

    def flush(self) -> None:
        self._blocks.flush()
        self._undo.flush()

    def close(self) -> None:
        self._blocks.close()
        self._undo.close()


def scan_block_file(
    path: Path, magic: bytes, parse: Callable[[bytes], Any] | None = None
) -> Iterator[tuple[int, Any]]:
    """Every intact record of a block file as (payload offset, parsed payload), for ``--reindex``.

    A crash can leave a torn record, and later writes append after it. A record whose header
    runs past the end, or whose payload ``parse`` rejects (returns None), is skipped by searching
    for the next magic from the byte after its start (as Core's reindex does), so the records
    that follow are still found.
    """
    data = path.read_bytes()
    pos = data.find(magic)
    end = len(data)
    while pos >= 0 and pos + 8 <= end:
        _, size = _HEADER.unpack_from(data, pos)
        payload_end = pos + 8 + size
        if payload_end <= end:
            payload = data[pos + 8 : payload_end]
            parsed = payload if parse is None else parse(payload)
            if parsed is not None:
                yield pos + 8, parsed
                pos = data.find(magic, payload_end)
                continue
        pos = data.find(magic, pos + 1)
