"""The wallet file: migrations from v1, atomic batches, WAL, backup, refusals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from peercash.wallet.db import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DescriptorRow,
    TxRow,
    WalletDB,
    WalletDBError,
    migrate,
    schema_version,
    wallet_path,
)


def _row(txid: bytes = b"\x01" * 32) -> TxRow:
    return TxRow(txid, b"raw", "mempool", None, None, None, 100, 0)


def test_layout_follows_core() -> None:
    walletdir = Path("/d/wallets")
    assert wallet_path(walletdir, "") == Path("/d/wallets/wallet.dat")
    assert wallet_path(walletdir, "w1") == Path("/d/wallets/w1/wallet.dat")


def test_v1_file_migrates_to_current_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "wallet.dat"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO transactions VALUES (?, ?, 'confirmed', ?, 7, 1, 1000, 0)",
        (b"\x02" * 32, b"rawtx", b"\x03" * 32),
    )
    conn.execute("INSERT INTO settings VALUES ('flags', '{}')")
    conn.close()
    db = WalletDB(path)
    assert schema_version(db.conn) == SCHEMA_VERSION == len(MIGRATIONS) == 2
    [row] = db.transactions()
    assert row == TxRow(
        b"\x02" * 32, b"rawtx", "confirmed", b"\x03" * 32, 7, 1, 1000, 0, None, None, None, ""
    )
    assert db.get_setting("flags") == "{}"
    tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"address_book", "locked_coins", "master_keys", "scripts"} <= tables
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_failure_mid_batch_leaves_the_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "wallet.dat"
    db = WalletDB(path, create=True)
    with db.batch():
        db.put_transaction(_row(b"\x01" * 32))
    with pytest.raises(RuntimeError, match="boom"), db.batch():
        db.put_transaction(_row(b"\x02" * 32))
        db.set_setting("locator", "[]")
        raise RuntimeError("boom")
    db.close()
    again = WalletDB(path)
    assert [r.txid for r in again.transactions()] == [b"\x01" * 32]
    assert again.get_setting("locator") is None
    again.close()


def test_writes_outside_a_batch_are_refused(tmp_path: Path) -> None:
    db = WalletDB(tmp_path / "wallet.dat", create=True)
    with pytest.raises(RuntimeError, match=r"inside WalletDB\.batch"):
        db.set_setting("x", "y")
    db.close()


def test_backup_is_a_complete_copy(tmp_path: Path) -> None:
    db = WalletDB(tmp_path / "a" / "wallet.dat", create=True)
    with db.batch():
        db.put_descriptor(DescriptorRow("id1", "raw(51)#abc", 0, 0, 0, 5, None, None))
        db.put_address("addr", "label", "receive")
    db.backup(tmp_path / "copy.dat")
    db.close()
    copy = WalletDB(tmp_path / "copy.dat")
    assert [r.id for r in copy.descriptors()] == ["id1"]
    assert copy.address_book() == {"addr": ("label", "receive")}
    copy.close()


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(WalletDBError, match="Wallet file not found"):
        WalletDB(tmp_path / "none.dat")
    other = tmp_path / "other.dat"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE foo (x)")
    conn.commit()
    conn.close()
    with pytest.raises(WalletDBError, match="not a peercash wallet"):
        WalletDB(other)
    newer = tmp_path / "newer.dat"
    WalletDB(newer, create=True).close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(WalletDBError, match="schema version 99, newer"):
        WalletDB(newer)
