"""One SQLite file per wallet: schema, ordered migrations, atomic batches, online backup.

Layer 3 (wallet). Layout follows Core: the wallet directory is ``<datadir>/wallets``; the default
wallet (name ``""``) is ``wallets/wallet.dat``, a named wallet ``wallets/<name>/wallet.dat``.

Every change the wallet makes for one event (a block processed, one RPC call) goes through one
:meth:`WalletDB.batch`, a single SQLite transaction: a failure inside it leaves the file as it
was. The file runs in WAL mode, so readers never wait for the writer.

Error contract: :class:`WalletDBError` (a ``ValueError``) for files that are not wallets or are
newer than this code; ``sqlite3`` errors from a damaged file pass through.

Concurrency: one :class:`WalletDB` per file, used under its wallet's lock (the connection is
shared across threads, ``check_same_thread=False``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

WALLET_FILE = "wallet.dat"


class WalletDBError(ValueError):
    """A file that cannot be opened as a wallet of this version."""


def wallet_path(walletdir: Path, name: str) -> Path:
    """The database file of wallet ``name`` (Core: ``""`` lives directly in the wallet dir)."""
    return (walletdir / name if name else walletdir) / WALLET_FILE


# Each entry moves the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    # v1: settings, descriptors and transactions.
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE descriptors (
        id TEXT PRIMARY KEY,
        descriptor TEXT NOT NULL,
        range_start INTEGER NOT NULL,
        range_end INTEGER NOT NULL,
        next_index INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        active_type TEXT,
        internal INTEGER
    );
    CREATE TABLE transactions (
        txid BLOB PRIMARY KEY,
        raw BLOB NOT NULL,
        state TEXT NOT NULL,
        block_hash BLOB,
        block_height INTEGER,
        block_pos INTEGER,
        time_received INTEGER NOT NULL,
        order_pos INTEGER NOT NULL
    );
    """,
    # v2: conflicts, replacement and comments on transactions; the address book, locked coins,
    # the derived-script cache, and room for encryption (master keys, encrypted descriptor keys).
    """
    ALTER TABLE transactions ADD COLUMN conflict_hash BLOB;
    ALTER TABLE transactions ADD COLUMN conflict_height INTEGER;
    ALTER TABLE transactions ADD COLUMN replaced_by BLOB;
    ALTER TABLE transactions ADD COLUMN comment TEXT NOT NULL DEFAULT '';
    ALTER TABLE transactions ADD COLUMN block_time INTEGER;
    ALTER TABLE transactions ADD COLUMN time_smart INTEGER;
    ALTER TABLE descriptors ADD COLUMN encrypted_keys BLOB;
    CREATE TABLE scripts (
        script BLOB PRIMARY KEY,
        desc_id TEXT NOT NULL REFERENCES descriptors(id),
        position INTEGER NOT NULL
    );
    CREATE TABLE address_book (
        address TEXT PRIMARY KEY, label TEXT NOT NULL, purpose TEXT NOT NULL
    );
    CREATE TABLE locked_coins (
        txid BLOB NOT NULL, vout INTEGER NOT NULL, PRIMARY KEY (txid, vout)
    );
    CREATE TABLE master_keys (
        id INTEGER PRIMARY KEY,
        crypted_key BLOB NOT NULL,
        salt BLOB NOT NULL,
        method INTEGER NOT NULL,
        iterations INTEGER NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class DescriptorRow:
    """One stored descriptor (``descriptor`` carries private keys when the wallet has them)."""

    id: str
    descriptor: str
    range_start: int
    range_end: int
    next_index: int
    timestamp: int
    active_type: str | None
    internal: bool | None


@dataclass(frozen=True, slots=True)
class TxRow:
    """One wallet transaction and where it stands (``state``: see ``wallet.txstate``)."""

    txid: bytes
    raw: bytes
    state: str
    block_hash: bytes | None
    block_height: int | None
    block_pos: int | None
    time_received: int
    order_pos: int
    conflict_hash: bytes | None = None
    conflict_height: int | None = None
    replaced_by: bytes | None = None
    comment: str = ""
    block_time: int | None = None
    time_smart: int | None = None


_TX_COLUMNS = (
    "txid, raw, state, block_hash, block_height, block_pos, time_received, order_pos, "
    "conflict_hash, conflict_height, replaced_by, comment, block_time, time_smart"
)
_DESC_COLUMNS = (
    "id, descriptor, range_start, range_end, next_index, timestamp, active_type, internal"
)


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version; 0 for an empty file."""
    has = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if has is None:
        if conn.execute("SELECT 1 FROM sqlite_master").fetchone() is not None:
            raise WalletDBError("Wallet file verification failed: not a peercash wallet")
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to ``target``, each step in its own transaction; the new version."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise WalletDBError(
            f"Wallet file has schema version {version}, newer than this software supports "
            f"({SCHEMA_VERSION})"
        )
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 0:
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version VALUES (0)")
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            version += 1
            conn.execute("UPDATE schema_version SET version = ?", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


class WalletDB:
    """The wallet's file. Reads may happen anywhere; writes only inside :meth:`batch`."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        if not create and not path.exists():
            raise WalletDBError(f"Wallet file not found: {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA secure_delete=ON")  # overwritten keys do not linger
            migrate(self.conn)
        except BaseException:
            self.conn.close()
            raise
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def batch(self) -> Iterator[WalletDB]:
        """One atomic transaction; nested batches join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    @property
    def in_batch(self) -> bool:
        return self._depth > 0

    def _write(self, sql: str, args: tuple[object, ...] = ()) -> None:
        if not self._depth:
            raise RuntimeError("wallet writes must happen inside WalletDB.batch()")
        self.conn.execute(sql, args)

    # -- settings -------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    # -- descriptors ----------------------------------------------------------------------

    def descriptors(self) -> list[DescriptorRow]:
        rows = self.conn.execute(f"SELECT {_DESC_COLUMNS} FROM descriptors ORDER BY rowid")
        return [
            DescriptorRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], None if r[7] is None else bool(r[7])
            )
            for r in rows
        ]

    def put_descriptor(self, row: DescriptorRow) -> None:
        internal = None if row.internal is None else int(row.internal)
        self._write(
            f"INSERT INTO descriptors ({_DESC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET descriptor=excluded.descriptor, "
            "range_start=excluded.range_start, range_end=excluded.range_end, "
            "next_index=excluded.next_index, timestamp=excluded.timestamp, "
            "active_type=excluded.active_type, internal=excluded.internal",
            (
                row.id,
                row.descriptor,
                row.range_start,
                row.range_end,
                row.next_index,
                row.timestamp,
                row.active_type,
                internal,
            ),
        )

    def deactivate(self, active_type: str, internal: bool) -> None:
        """Clear the active mark of whichever descriptor holds (type, internal)."""
        self._write(
            "UPDATE descriptors SET active_type = NULL, internal = NULL "
            "WHERE active_type = ? AND internal = ?",
            (active_type, int(internal)),
        )

    def put_script(self, script: bytes, desc_id: str, position: int) -> None:
        self._write("INSERT OR IGNORE INTO scripts VALUES (?, ?, ?)", (script, desc_id, position))

    def scripts(self) -> list[tuple[bytes, str, int]]:
        rows = self.conn.execute("SELECT script, desc_id, position FROM scripts")
        return [(bytes(r[0]), str(r[1]), int(r[2])) for r in rows]

    # -- encryption -----------------------------------------------------------------------

    def encrypted_keys(self) -> dict[str, bytes]:
        """Each descriptor's sealed secrets (the ``encrypted_keys`` column), by descriptor id."""
        rows = self.conn.execute(
            "SELECT id, encrypted_keys FROM descriptors WHERE encrypted_keys IS NOT NULL"
        )
        return {str(r[0]): bytes(r[1]) for r in rows}

    def set_encrypted_keys(self, desc_id: str, blob: bytes | None) -> None:
        self._write("UPDATE descriptors SET encrypted_keys = ? WHERE id = ?", (blob, desc_id))

    def master_key(self) -> bytes | None:
        """The serialized master-key record (``crypter.MasterKeyRecord``), if encrypted."""
        row = self.conn.execute("SELECT crypted_key FROM master_keys WHERE id = 1").fetchone()
        return None if row is None else bytes(row[0])

    def put_master_key(self, record: bytes, salt: bytes, method: int, cost: int) -> None:
        """Store the one master-key record; ``salt``/``method``/``cost`` repeat its KDF fields."""
        self._write(
            "INSERT OR REPLACE INTO master_keys VALUES (1, ?, ?, ?, ?)",
            (record, salt, method, cost),
        )

    # -- transactions ---------------------------------------------------------------------

    def transactions(self) -> list[TxRow]:
        rows = self.conn.execute(f"SELECT {_TX_COLUMNS} FROM transactions ORDER BY order_pos")
        return [
            TxRow(
                txid=bytes(r[0]),
                raw=bytes(r[1]),
                state=r[2],
                block_hash=_b(r[3]),
                block_height=r[4],
                block_pos=r[5],
                time_received=r[6],
                order_pos=r[7],
                conflict_hash=_b(r[8]),
                conflict_height=r[9],
                replaced_by=_b(r[10]),
                comment=r[11],
                block_time=r[12],
                time_smart=r[13],
            )
            for r in rows
        ]

    def put_transaction(self, row: TxRow) -> None:
        self._write(
            f"INSERT OR REPLACE INTO transactions ({_TX_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.txid,
                row.raw,
                row.state,
                row.block_hash,
                row.block_height,
                row.block_pos,
                row.time_received,
                row.order_pos,
                row.conflict_hash,
                row.conflict_height,
                row.replaced_by,
                row.comment,
                row.block_time,
                row.time_smart,
            ),
        )

    # -- address book and locked coins ----------------------------------------------------

    def address_book(self) -> dict[str, tuple[str, str]]:
        rows = self.conn.execute("SELECT address, label, purpose FROM address_book")
        return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}

    def put_address(self, address: str, label: str, purpose: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO address_book VALUES (?, ?, ?)", (address, label, purpose)
        )

    def locked_coins(self) -> set[tuple[bytes, int]]:
        rows = self.conn.execute("SELECT txid, vout FROM locked_coins")
        return {(bytes(r[0]), int(r[1])) for r in rows}

    def lock_coin(self, txid: bytes, vout: int, locked: bool) -> None:
        if locked:
            self._write("INSERT OR IGNORE INTO locked_coins VALUES (?, ?)", (txid, vout))
        else:
            self._write("DELETE FROM locked_coins WHERE txid = ? AND vout = ?", (txid, vout))

    def unlock_all(self) -> None:
        self._write("DELETE FROM locked_coins")

    def purge(self) -> None:
        """Rewrite the file without the free pages and old WAL frames that may still hold
        what was overwritten (after encryption: the plaintext keys; Core rewrites its database
        for the same reason)."""
        if self._depth:
            raise RuntimeError("purge() cannot run inside a batch")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- backup ---------------------------------------------------------------------------

    def backup(self, destination: Path) -> None:
        """Copy the whole database to ``destination`` with SQLite's online backup API."""
        if destination.exists() and destination.is_dir():
            destination = destination / WALLET_FILE
        target = sqlite3.connect(destination)
        try:
            self.conn.backup(target)
        finally:
            target.close()


def _b(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)
