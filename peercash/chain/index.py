"""The block index: every header we know, as a tree with cumulative work and validity status.

Entries live in memory (``BlockIndex.entries``) and are persisted in an LMDB database
(``index/``) whenever they change. Status flags follow Core's ``BlockStatus``: a validity level
in the low bits, then data/undo availability and failure marks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from peercash.consensus.pow import block_work
from peercash.consensus.primitives import Header

from .blockstore import FilePos
from .errors import CorruptionError
from .lmdbutil import guard, open_env

# Validity levels (Core's BLOCK_VALID_*), in the low three bits.
VALID_UNKNOWN = 0
VALID_TREE = 2
VALID_TRANSACTIONS = 3
VALID_CHAIN = 4
VALID_SCRIPTS = 5
VALID_MASK = 7
HAVE_DATA = 8
HAVE_UNDO = 16
FAILED_VALID = 32
FAILED_CHILD = 64
FAILED_MASK = FAILED_VALID | FAILED_CHILD

_RECORD = struct.Struct("<80sIIIiIiI32s")
_NO_POS = -1


class BlockIndexEntry:
    """One known block header and what we know about its block."""

    chain_work: int
    __slots__ = (
        "_mtp",
        "chain_work",
        "data_pos",
        "hash",
        "header",
        "height",
        "n_tx",
        "prev",
        "sequence_id",
        "status",
        "undo_pos",
    )

    def __init__(self, header: Header, height: int, prev: BlockIndexEntry | None) -> None:
        self.header = header
        self.hash = header.hash
        self.height = height
        self.prev = prev
        self.chain_work = (prev.chain_work if prev else 0) + block_work(header.bits)
        self.status = VALID_TREE
        self.n_tx = 0
        self.data_pos: FilePos | None = None
        self.undo_pos: FilePos | None = None
        # Order in which full blocks arrived: among equal work the first seen wins (as Core).
        self.sequence_id = 0
        self._mtp = -1

    @property
    def time(self) -> int:
        return self.header.time

    def valid_to(self, level: int) -> bool:
        return not self.status & FAILED_MASK and (self.status & VALID_MASK) >= level

    def raise_validity(self, level: int) -> bool:
        if self.status & FAILED_MASK or (self.status & VALID_MASK) >= level:
            return False
        self.status = (self.status & ~VALID_MASK) | level
        return True

    def ancestor(self, height: int) -> BlockIndexEntry:
        if height > self.height or height < 0:
            raise ValueError(f"no ancestor at height {height} of a block at {self.height}")
        e: BlockIndexEntry = self
        while e.height > height:
            assert e.prev is not None
            e = e.prev
        return e

    def median_time_past(self) -> int:
        """Median of the last 11 timestamps; cached, as ancestors never change."""
        mtp = self._mtp
        if mtp < 0:
            mtp = self._mtp = self._compute_median_time_past()
        return mtp

    def _compute_median_time_past(self) -> int:
        times = []
        e: BlockIndexEntry | None = self
        for _ in range(11):
            if e is None:
                break
            times.append(e.header.time)
            e = e.prev
        times.sort()
        return times[len(times) // 2]

    def encode(self) -> bytes:
        dp = self.data_pos
        up = self.undo_pos
        return _RECORD.pack(
            self.header.serialize(),
            self.height,
            self.status,
            self.n_tx,
            dp.file if dp else _NO_POS,
            dp.offset if dp else 0,
            up.file if up else _NO_POS,
            up.offset if up else 0,
            self.chain_work.to_bytes(32, "big"),
        )

    def __repr__(self) -> str:
        return f"BlockIndexEntry({self.height}, {self.header.hash_hex}, status={self.status})"


class BlockIndex:
    """All entries by hash, loaded from and saved to ``index/``."""

    def __init__(self, folder: Path, map_size: int = 1 << 34) -> None:
        self.path = folder
        self.env = open_env(folder, "block index", map_size=map_size, max_dbs=2)
        with guard("block index", folder):
            self._db = self.env.open_db(b"index")
        self.entries: dict[bytes, BlockIndexEntry] = {}
        self._dirty: set[bytes] = set()
        self._next_sequence = 1

    def load(self) -> None:
        """Read every entry and link parents (parents first, by height)."""
        rows: list[tuple[int, bytes, bytes]] = []
        with guard("block index", self.path), self.env.begin(db=self._db) as txn:
            for key, value in txn.cursor():
                raw = bytes(value)
                if len(raw) != _RECORD.size:
                    raise CorruptionError("malformed block index record", self.path)
                rows.append((_RECORD.unpack_from(raw)[1], bytes(key), raw))
        rows.sort()
        for _, key, raw in rows:
            (header_raw, height, status, n_tx, df, do, uf, uo, _work) = _RECORD.unpack(raw)
            header = Header.parse(header_raw)
            if header.hash != key:
                raise CorruptionError("block index record does not match its key", self.path)
            prev = self.entries.get(header.prev_hash)
            if prev is None and height != 0:
                raise CorruptionError(
                    f"block index lacks the parent of {key[::-1].hex()}", self.path
                )
            e = BlockIndexEntry(header, height, prev)
            e.status = status
            e.n_tx = n_tx
            e.data_pos = FilePos(df, do) if df != _NO_POS else None
            e.undo_pos = FilePos(uf, uo) if uf != _NO_POS else None
            if e.data_pos is not None:
                e.sequence_id = self._next_sequence
                self._next_sequence += 1
            self.entries[key] = e

    def add(self, header: Header) -> BlockIndexEntry:
        existing = self.entries.get(header.hash)
        if existing is not None:
            return existing
        prev = self.entries.get(header.prev_hash)
        e = BlockIndexEntry(header, prev.height + 1 if prev else 0, prev)
        self.entries[e.hash] = e
        self._dirty.add(e.hash)
        return e

    def next_sequence(self) -> int:
        n = self._next_sequence
        self._next_sequence += 1
        return n

    def mark_dirty(self, e: BlockIndexEntry) -> None:
        self._dirty.add(e.hash)

    def flush(self) -> None:
        if not self._dirty:
            return
        with guard("block index", self.path), self.env.begin(write=True, db=self._db) as txn:
            for h in self._dirty:
                txn.put(h, self.entries[h].encode())
        self._dirty.clear()

    def get(self, block_hash: bytes) -> BlockIndexEntry | None:
        return self.entries.get(block_hash)

    def __iter__(self) -> Iterator[BlockIndexEntry]:
        return iter(self.entries.values())

    def wipe(self) -> None:
        with self.env.begin(write=True) as txn:
            txn.drop(self._db, delete=False)
        self.entries.clear()
        self._dirty.clear()

    def close(self) -> None:
        self.flush()
        self.env.close()
