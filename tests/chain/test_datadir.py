"""The data directory: one owner (the lock), damage told from permission problems, and the
rebuilds (``reindex``, ``reindex_chainstate``) that leave ``rev*.dat`` the size it was."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import lmdb
import pytest

from peercash.chain.chainstate import ChainState
from peercash.chain.coins import key_outpoint
from peercash.chain.datadir import DataDirLock, DataDirLockedError
from peercash.chain.errors import (
    REINDEX_ADVICE,
    REINDEX_CHAINSTATE_ADVICE,
    ChainError,
    CorruptionError,
    DataDirAccessError,
    access_error,
)
from peercash.chain.lmdbutil import lmdb_failure
from peercash.consensus.params import MAIN, REGTEST
from peercash.consensus.primitives import Block
from peercash.consensus.utxohash import UtxoSetHasher

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET_LINES = (DATA / "btcd" / "blocks" / "mainnet-blocks-0-255.hex").read_text().split()
TIP = "00000000d0a75c861fabf9ff7b92022f60e4afeed9331fe5aa073d8e4706fe3c"
LOCKED = "peercash is probably already running."

# -- the lock -------------------------------------------------------------------------------------


def test_lock_is_exclusive(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    second = DataDirLock(tmp_path)
    with pytest.raises(
        DataDirLockedError, match=f"Cannot obtain a lock on data directory {tmp_path}. {LOCKED}"
    ):
        second.acquire()
    first.release()
    second.acquire()
    assert second.held
    second.release()


def test_chain_state_holds_the_lock_until_closed(tmp_path: Path) -> None:
    with ChainState(REGTEST, tmp_path) as chain:
        assert chain.lock.held
        with pytest.raises(DataDirLockedError):
            DataDirLock(tmp_path).acquire()
        with pytest.raises(DataDirLockedError):
            ChainState(REGTEST, tmp_path)
    with DataDirLock(tmp_path):  # released by close
        pass


def test_a_locked_data_directory_is_not_touched(tmp_path: Path) -> None:
    d = tmp_path / "regtest"
    with DataDirLock(_made(d)):
        for reindex in (False, True):
            with pytest.raises(DataDirLockedError, match=LOCKED):
                ChainState(REGTEST, d, reindex=reindex)
        assert sorted(os.listdir(d)) == [".lock"]  # no blocks/, index/ or chainstate/


def test_a_lock_handed_in_is_left_to_its_owner(tmp_path: Path) -> None:
    lock = DataDirLock(_made(tmp_path))
    lock.acquire()
    try:
        ChainState(REGTEST, tmp_path, lock=lock).close()
        assert lock.held
        with pytest.raises(DataDirLockedError):
            DataDirLock(tmp_path).acquire()
    finally:
        lock.release()


def test_a_failed_open_releases_the_lock(tmp_path: Path) -> None:
    ChainState(REGTEST, tmp_path).close()
    with (tmp_path / "index" / "data.mdb").open("r+b") as f:
        f.write(b"\xff" * 8192)  # both LMDB meta pages
    with pytest.raises(CorruptionError, match="--reindex"):
        ChainState(REGTEST, tmp_path)
    with DataDirLock(tmp_path):
        pass


def _made(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


# -- damage or permission -------------------------------------------------------------------------


def test_damage_advice_names_the_working_recovery(tmp_path: Path) -> None:
    assert "peercash node --reindex" in REINDEX_ADVICE
    assert "peercash node --reindex-chainstate" in REINDEX_CHAINSTATE_ADVICE
    ChainState(REGTEST, tmp_path).close()
    with (tmp_path / "chainstate" / "data.mdb").open("r+b") as f:
        f.write(b"\xff" * 8192)
    with pytest.raises(CorruptionError) as exc:
        ChainState(REGTEST, tmp_path)
    assert exc.value.chainstate_only
    assert str(tmp_path / "chainstate") in str(exc.value)
    assert REINDEX_CHAINSTATE_ADVICE in str(exc.value)
    # ... and that advice works.
    with ChainState(REGTEST, tmp_path, reindex_chainstate=True) as chain:
        assert chain.height == 0


def test_read_only_file_system_is_not_damage(tmp_path: Path) -> None:
    target = tmp_path / "blocks" / "blk00000.dat"
    err = access_error(OSError(errno.EROFS, os.strerror(errno.EROFS), str(target)))
    assert isinstance(err, DataDirAccessError)
    assert str(err).startswith(f"Cannot write to {target}: it is on a read-only file system")
    assert "reindex" not in str(err)
    lmdb_err = lmdb.Error(f"{tmp_path}: {os.strerror(errno.EROFS)}")
    refused = lmdb_failure(lmdb_err, "the block index is damaged", tmp_path)
    assert isinstance(refused, DataDirAccessError)
    assert "read-only file system" in str(refused) and "reindex" not in str(refused)
    assert access_error(OSError(errno.ENOSPC, "No space left on device")) is None


def test_permission_denied_names_the_path_and_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which path may not be written, as whom, owned by whom (os.access is faked: the tests may
    run as root; a real refusal is in tests/functional/test_datadir.py)."""
    ChainState(REGTEST, tmp_path).close()
    data = tmp_path / "index" / "data.mdb"
    real_access = os.access

    def access(path: object, mode: int) -> bool:
        if Path(str(path)) == data and mode & os.W_OK:
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    refused = lmdb_failure(
        lmdb.ReadonlyError(f"{tmp_path / 'index'}: Permission denied"), "damaged", data.parent
    )
    assert isinstance(refused, DataDirAccessError) and refused.path == data
    text = str(refused)
    assert text.startswith("Permission denied: peercash runs as user ")
    assert f"(uid {os.geteuid()}) and cannot write {data} (owned by " in text
    assert "this is not damage" in text and "--reindex" not in text
    err = access_error(PermissionError(errno.EACCES, "Permission denied", str(data)))
    assert isinstance(err, ChainError) and f"cannot write {data}" in str(err)


# -- rebuilding ------------------------------------------------------------------------------------


def _figures(chain: ChainState) -> tuple[int, str, str]:
    chain.flush()
    hasher = UtxoSetHasher()
    for key, coin in chain.coins_db.iterate():
        hasher.add(key_outpoint(key), coin.height, coin.coinbase, coin.txout)
    return chain.height, chain.tip.header.hash_hex, str(hasher.result()["muhash"])


def _rev(d: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((d / "blocks").glob("rev?????.dat")))


def test_reindexes_reach_the_same_tip_and_keep_rev_files_the_same_size(tmp_path: Path) -> None:
    d = tmp_path / "dd"
    with ChainState(MAIN, d, assume_valid=None) as chain:
        for line in MAINNET_LINES[1:]:
            chain.accept_block(Block.from_hex(line))
        expected = _figures(chain)
    assert expected[:2] == (255, TIP)
    rev = _rev(d)
    for _ in range(2):
        with ChainState(MAIN, d, assume_valid=None, reindex_chainstate=True) as chain:
            assert _figures(chain) == expected
        assert _rev(d) == rev  # every undo record was intact: reused, none appended
    for _ in range(2):
        with ChainState(MAIN, d, assume_valid=None, reindex=True) as chain:
            assert chain.reindexed_blocks == 256
            assert _figures(chain) == expected
        assert len(_rev(d)) == len(rev)  # rewritten from scratch, not appended to
    with ChainState(MAIN, d, assume_valid=None) as chain:
        assert _figures(chain) == expected

    # A damaged undo record is written again (once); the intact ones are kept.
    rev_file = d / "blocks" / "rev00000.dat"
    damaged = bytearray(rev_file.read_bytes())
    damaged[-5] ^= 0xFF  # in the checksum of the last record (block 255's)
    rev_file.write_bytes(bytes(damaged))
    sizes = []
    for _ in range(2):
        with ChainState(MAIN, d, assume_valid=None, reindex_chainstate=True) as chain:
            assert _figures(chain) == expected
            tip = chain.tip
            assert tip.undo_pos is not None
            chain.blocks.read_undo(tip.undo_pos, tip.hash)  # the new record is intact
        sizes.append(len(_rev(d)))
    assert len(rev) < sizes[0] == sizes[1]
