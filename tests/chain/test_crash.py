"""Crash safety of the chain's storage (DESIGN.md, "Storage" and "A reorg": every step is atomic
on disk; a crash at any point restarts into a consistent tip).

* A generated regtest chain is imported uninterrupted into datadir A, and into datadir B by an
  import that is SIGKILLed at 20 random moments and restarted each time; B must end identical to
  A (``chaininfo``, MuHash and ``hash_serialized_3`` included), and after every kill the UTXO set
  on disk must be exactly the one of some block of the chain, never older than before the kill.
* Deterministic crashes injected between the steps of a flush (block files fsynced, index
  written, UTXO set written) and in the middle of a record or of an LMDB transaction.
* Damaged files: a truncated block file, damaged LMDB files, a torn tail for ``--reindex``.
"""

from __future__ import annotations

import bz2
import dataclasses
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from peercash.chain.blockstore import scan_block_file
from peercash.chain.chainstate import ChainState
from peercash.chain.coins import CoinsDB, encode_coin
from peercash.chain.errors import CorruptionError
from peercash.consensus.params import MAIN
from peercash.consensus.primitives import Block

if TYPE_CHECKING:
    from .conftest import RegtestChain

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET_HEX = DATA / "btcd" / "blocks" / "mainnet-blocks-0-255.hex"
MAINNET_LINES = MAINNET_HEX.read_text().split()

KILLS = 20
KILL_SEED = 0x5EED
PREFIX_HEIGHT = 800  # the deterministic crash tests use the first 800 blocks of the chain


def flat(text: str) -> str:
    return " ".join(text.split())


def nospace(text: str) -> str:
    """The console may fold a long path over two lines: compare file names without whitespace."""
    return "".join(text.split())


def regtest_dir(datadir: Path) -> Path:
    return datadir / "regtest"


def flushed_utxo_state(datadir: Path) -> tuple[str | None, int, int]:
    """(best block in display hex, coin count, total value) of the UTXO set *on disk*."""
    db = CoinsDB(regtest_dir(datadir) / "chainstate")
    try:
        best = db.best_block()
        count = total = 0
        for _, coin in db.iterate():
            count += 1
            total += coin.txout.value
    finally:
        db.close()
    return (best[::-1].hex() if best is not None else None), count, total


def assert_consistent_at(chain: RegtestChain, datadir: Path) -> int:
    """The on-disk UTXO set must be exactly the one after some block of ``chain``."""
    best, count, total = flushed_utxo_state(datadir)
    if best is None:  # killed before the genesis was ever flushed
        return -1
    assert best in chain.height_of, f"UTXO set claims a block that is not in the chain: {best}"
    h = chain.height_of[best]
    assert (count, total) == chain.utxo[h], (
        f"UTXO set on disk at height {h}: {count} coins worth {total}, "
        f"expected {chain.utxo[h]} (the set is not the one of its best block)"
    )
    return h


@pytest.fixture(scope="module")
def chain_file(regtest_chain, tmp_path_factory) -> Path:
    return regtest_chain.write(tmp_path_factory.mktemp("regtest-chain") / "chain.hex")


@pytest.fixture(scope="module")
def prefix_file(regtest_chain, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("regtest-prefix")
    return regtest_chain.write(d / "prefix.hex", upto=PREFIX_HEIGHT)


@pytest.fixture(scope="module")
def prefix_reference(prefix_file, peercash, chaininfo, tmp_path_factory):
    d = tmp_path_factory.mktemp("prefix-ref")
    r = peercash("import", prefix_file, "--network", "regtest", "--datadir", d, "--dbcache", 1)
    assert r.returncode == 0, r.stderr
    return chaininfo(d, "regtest")


def import_cmd(path: Path, datadir: Path, *extra: object) -> list[str]:
    return [
        "import", str(path), "--network", "regtest", "--datadir", str(datadir), "--dbcache", "1",
        *map(str, extra),
    ]  # fmt: skip


# -- 1. SIGKILL at random moments ---------------------------------------------------------------


@pytest.mark.slow
def test_import_survives_sigkill_at_random_points(
    regtest_chain, chain_file, peercash, peercash_argv, chaininfo, tmp_path
):
    chain = regtest_chain
    a, b = tmp_path / "A", tmp_path / "B"
    t0 = time.perf_counter()
    # A checks scripts in line; B (killed again and again) with the default worker processes,
    # which check a block's scripts while later blocks connect.
    r = peercash(*import_cmd(chain_file, a, "--par", "0"))
    seconds_a = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert f"at height {len(chain.hashes) - 1}" in r.stdout
    ref = chaininfo(a, "regtest")
    assert ref["height"] == len(chain.hashes) - 1
    assert ref["bestblock"] == chain.hashes[-1]
    assert (ref["txouts"], round(ref["total_amount"] * 100_000_000)) == chain.utxo[-1]

    rng = random.Random(KILL_SEED)
    history: list[tuple[float, str, int]] = []
    last = -1
    for i in range(KILLS):
        delay = rng.uniform(0.05, 1.5)
        p = subprocess.Popen(
            [*peercash_argv, *import_cmd(chain_file, b)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)  # a no-op if it has already finished
        _, err = p.communicate(timeout=120)
        killed = p.returncode == -signal.SIGKILL
        assert killed or p.returncode == 0, f"run {i} failed on its own: {err}"
        h = assert_consistent_at(chain, b)
        assert h >= last, f"run {i}: the UTXO set on disk went back from height {last} to {h}"
        last = h
        history.append((round(delay, 2), "killed" if killed else "finished", h))
        if i % 5 == 4:
            # A restart (chaininfo opens the datadir) connects what was stored but not yet
            # flushed: the tip it reports must be a block of the chain with the right UTXO set.
            info = chaininfo(b, "regtest")
            hh = info["height"]
            assert hh >= h
            assert info["bestblock"] == chain.hashes[hh]
            assert info["txouts"] == chain.utxo[hh][0]
            last = assert_consistent_at(chain, b)
            assert last == hh
    kills = sum(1 for _, what, _ in history if what == "killed")
    print(f"\nimport A: {seconds_a:.1f}s; kills (delay, outcome, flushed height): {history}")
    assert kills >= KILLS // 4, f"too few runs were still going when killed: {history}"

    r = peercash(*import_cmd(chain_file, b))
    assert r.returncode == 0, r.stderr
    got = chaininfo(b, "regtest")
    assert got.data == ref.data
    assert got.text == ref.text


# -- 2. crashes injected at chosen points -------------------------------------------------------

# Runs the real CLI in a child process with one storage step replaced by a crash (os._exit, which
# like SIGKILL skips every flush, close and atexit handler) on its n-th call.
_INJECT = r"""
import os, sys
from peercash.chain import blockstore, coins, index

point, nth = sys.argv[1], int(sys.argv[2])
calls = [0]

def due():
    calls[0] += 1
    return calls[0] == nth

def crash():
    os._exit(137)

if point in ("genesis-index", "index-write"):
    original_index_flush = index.BlockIndex.flush
    def index_flush(self):
        if self._dirty and due():
            crash()  # block files are fsynced; the index and the UTXO set are not written
        original_index_flush(self)
    index.BlockIndex.flush = index_flush
elif point == "utxo-write":
    original_write = coins.CoinsDB.write_batch
    def write_batch(self, changes, best_block):
        if due():
            crash()  # the index is written, the UTXO set is not
        original_write(self, changes, best_block)
    coins.CoinsDB.write_batch = write_batch
elif point == "utxo-txn":
    original_write = coins.CoinsDB.write_batch
    def write_batch(self, changes, best_block):
        if due():
            txn = self.env.begin(write=True)
            for i, (key, coin) in enumerate(changes.items()):
                if i >= len(changes) // 2:
                    crash()  # half the changes are in an uncommitted LMDB transaction
                if coin is None:
                    txn.delete(key, db=self._coins)
                else:
                    txn.put(key, coins.encode_coin(coin), db=self._coins)
            crash()
        original_write(self, changes, best_block)
    coins.CoinsDB.write_batch = write_batch
elif point in ("blk-record", "rev-record", "blk-record-after-flush", "blk-header"):
    from peercash.chain import chainstate
    prefix = point[:3]
    armed = [point != "blk-record-after-flush"]
    if not armed[0]:
        original_flush = chainstate.ChainState._flush
        def flush(self):
            original_flush(self)
            if due():
                armed[0] = True  # crash while writing the first block after this flush
        chainstate.ChainState._flush = flush
    original_append = blockstore._FileSeries.append
    def append(self, payload):
        if self.prefix == prefix and armed[0] and (point == "blk-record-after-flush" or due()):
            f = self._open_writer()
            header = blockstore._HEADER.pack(self.magic, len(payload))
            if point == "blk-header":
                f.write(header[:6])  # the magic and half the length field
            else:
                f.write(header)
                f.write(payload[: len(payload) // 2])
            f.flush()
            crash()  # a torn record reaches the file, as when killed in the middle of a write
        return original_append(self, payload)
    blockstore._FileSeries.append = append
else:
    raise SystemExit(f"unknown point {point}")

from peercash.cli import app
app(sys.argv[3:], prog_name="peercash")
"""

# point -> which call crashes. With --dbcache 1 the first 800 blocks flush about 7 times; the
# first index and UTXO writes store the genesis block, so 3 is the second periodic flush.
INJECTIONS = {
    "genesis-index": 1,  # the very first index write, while the genesis block is being stored
    "index-write": 3,  # block files fsynced; index and UTXO set not written
    "utxo-write": 3,  # index written, UTXO set not
    "utxo-txn": 3,  # half the UTXO changes in an LMDB transaction that never commits
    "blk-record": 500,  # half of a block record written (block 499)
    "blk-record-after-flush": 3,  # half of the first block record after the 3rd flush
    "blk-header": 450,  # 6 of the 8 header bytes of a block record written
    "rev-record": 400,  # half of an undo record written
}


def run_injected(point: str, nth: int, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _INJECT, point, str(nth), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


_crashed: dict[str, Path] = {}


@pytest.fixture(scope="module")
def crash_then_resume(regtest_chain, prefix_file, peercash, chaininfo, tmp_path_factory):
    """Crash an import at ``point``, check the restart state, resume; cached per point."""

    chain = regtest_chain

    def run(point: str) -> Path:
        if point in _crashed:
            return _crashed[point]
        d = tmp_path_factory.mktemp(f"crash-{point}")
        r = run_injected(point, INJECTIONS[point], import_cmd(prefix_file, d))
        assert r.returncode == 137, f"the crash point was not reached: {r.returncode} {r.stderr}"
        # Restart: whatever was stored is connected again, and the tip is consistent.
        info = chaininfo(d, "regtest")
        h = info["height"]
        assert 0 <= h <= PREFIX_HEIGHT
        assert info["bestblock"] == chain.hashes[h]
        assert (info["txouts"], round(info["total_amount"] * 100_000_000)) == chain.utxo[h]
        assert assert_consistent_at(chain, d) == h
        r = peercash(*import_cmd(prefix_file, d))
        assert r.returncode == 0, r.stderr
        assert f"at height {PREFIX_HEIGHT}" in r.stdout
        _crashed[point] = d
        return d

    return run


@pytest.mark.parametrize("point", list(INJECTIONS))
def test_crash_at_storage_step_resumes(point, crash_then_resume, prefix_reference, chaininfo):
    d = crash_then_resume(point)
    got = chaininfo(d, "regtest")
    assert got.data == prefix_reference.data


@pytest.mark.parametrize(
    "point",
    [p for p in INJECTIONS],
)
def test_reindex_after_crash(
    point, crash_then_resume, prefix_reference, peercash, chaininfo, tmp_path
):
    d = tmp_path / "copy"
    shutil.copytree(crash_then_resume(point), d)
    empty = tmp_path / "empty.hex"
    empty.write_text("")
    r = peercash(*import_cmd(empty, d, "--reindex"))
    assert r.returncode == 0, r.stderr
    assert chaininfo(d, "regtest").data == prefix_reference.data


# -- a crash in the middle of a reorganisation (btcd's scenario, in process) ----------------------


def _reorg_blocks() -> dict[str, Block]:
    def records(name: str) -> list[Block]:
        data = bz2.decompress((DATA / "btcd" / "reorg" / f"blk_{name}.dat.bz2").read_bytes())
        out, pos = [], 0
        while pos < len(data):
            size = struct.unpack_from("<I", data, pos + 4)[0]
            out.append(Block.parse(data[pos + 8 : pos + 8 + size]))
            pos += 8 + size
        return out

    blocks = {str(i): b for i, b in enumerate(records("0_to_4"))}
    for name in ("3A", "4A", "5A"):
        (blocks[name],) = records(name)
    return blocks


def _utxo(cs: ChainState) -> dict[bytes, bytes]:
    cs.flush()
    return {k: encode_coin(c) for k, c in cs.coins_db.iterate()}


@pytest.mark.parametrize("index_written", [False, True], ids=["before-index", "after-index"])
def test_crash_during_a_reorg_restarts_consistently(index_written, tmp_path):
    """5A arrives and the chain reorganises (4 and 3 out, 3A, 4A, 5A in) in memory; the process
    dies before the UTXO set is written (with or without the index written first). The restart
    is on 4 with 0-4's UTXO set, or redoes the reorganisation from the stored blocks and undo
    data; either way the set equals that of a chain that never crashed."""
    blocks = _reorg_blocks()
    params = dataclasses.replace(MAIN, coinbase_maturity=1)

    def open_chain(path: Path) -> ChainState:
        return ChainState(params, path, assume_valid=None, clock=lambda: 2e9)

    expected = {}
    for name, branch in (("4", ["1", "2", "3", "4"]), ("5A", ["1", "2", "3A", "4A", "5A"])):
        with open_chain(tmp_path / f"ref-{name}") as ref:
            for n in branch:
                ref.accept_block(blocks[n])
            expected[name] = _utxo(ref)

    d = tmp_path / "dd"
    cs = open_chain(d)
    for n in ("1", "2", "3", "4", "3A", "4A"):
        cs.accept_block(blocks[n])
    cs.flush()
    cs.accept_block(blocks["5A"])
    assert cs.tip.hash == blocks["5A"].hash
    cs.blocks.flush()
    if index_written:
        cs.index.flush()
    # The crash: nothing else reaches the disk, and the operating system drops the lock.
    cs.blocks.close()
    cs.index.env.close()
    cs.coins_db.close()
    cs.lock.release()

    with open_chain(d) as cs:
        tip = "5A" if index_written else "4"
        assert cs.tip.hash == blocks[tip].hash
        assert _utxo(cs) == expected[tip]
        cs.accept_block(blocks["5A"])  # fed again, when the index had not kept it
        assert cs.tip.hash == blocks["5A"].hash
        assert _utxo(cs) == expected["5A"]


# -- 3. damaged files ---------------------------------------------------------------------------


def _import_mainnet(peercash, d: Path, upto: int | None = None) -> None:
    src = MAINNET_HEX
    if upto is not None:
        src = d.parent / f"mainnet-0-{upto}.hex"
        src.write_text("\n".join(MAINNET_LINES[: upto + 1]) + "\n")
    r = peercash("import", src, "--network", "main", "--datadir", d)
    assert r.returncode == 0, r.stderr


def _record_offset(d: Path, height: int) -> int:
    """Payload offset of block ``height``'s record in blk00000.dat, found by scanning."""
    want = Block.from_hex(MAINNET_LINES[height]).hash
    for offset, raw in scan_block_file(d / "blocks" / "blk00000.dat", MAIN.magic):
        if Block.parse(raw).hash == want:
            return offset
    raise AssertionError(f"block {height} is not in the block file")


def _assert_clear_error(r: subprocess.CompletedProcess[str], filename: str) -> None:
    assert r.returncode > 0, f"exit {r.returncode} (a negative code is a signal): {r.stderr!r}"
    assert r.stdout.strip() == "", f"printed a result despite the damage: {r.stdout}"
    assert "Traceback" not in r.stderr, r.stderr
    assert filename in nospace(r.stderr), r.stderr
    assert "--reindex" in r.stderr, r.stderr


def _store_without_connecting(d: Path, first: int) -> None:
    """Import blocks 1..first-1 and flush; then store the rest with the index written but the
    UTXO set not (the state a crash between the two writes leaves)."""
    cs = ChainState(MAIN, d, assume_valid=None)
    for line in MAINNET_LINES[1:first]:
        cs.accept_block(Block.from_hex(line))
    cs.flush()
    for line in MAINNET_LINES[first:]:
        cs.accept_block(Block.from_hex(line))
    cs.blocks.flush()
    cs.index.flush()
    cs.blocks.close()
    cs.index.close()
    cs.coins_db.close()  # no coins flush: the UTXO set stays at block first-1
    cs.lock.release()


def test_truncated_block_file_under_unconnected_blocks_is_reported(tmp_path, peercash, chaininfo):
    d = tmp_path / "dd"
    _store_without_connecting(d, 200)
    offset = _record_offset(d, 230)
    blk = d / "blocks" / "blk00000.dat"
    os.truncate(blk, offset + 50)
    for _ in range(2):  # and it stays reported: nothing silently settles on a shorter chain
        r = peercash("chaininfo", "--network", "main", "--datadir", d)
        _assert_clear_error(r, "blk00000.dat")
        assert "truncated record" in flat(r.stderr)


def test_truncated_tip_record_is_reported_at_start(tmp_path, peercash):
    d = tmp_path / "dd"
    _import_mainnet(peercash, d)
    os.truncate(d / "blocks" / "blk00000.dat", _record_offset(d, 255) + 100)
    r = peercash("chaininfo", "--network", "main", "--datadir", d)
    _assert_clear_error(r, "blk00000.dat")


def test_truncated_block_is_reported_when_needed(tmp_path, peercash):
    """A truncated tip record is caught when the datadir is opened (the start-up check of the
    last blocks); damage deeper down is caught when a disconnect needs that block."""
    d = tmp_path / "dd"
    _import_mainnet(peercash, d)
    blk = d / "blocks" / "blk00000.dat"
    intact = blk.read_bytes()
    os.truncate(blk, _record_offset(d, 255) + 100)
    with pytest.raises(CorruptionError) as exc:
        ChainState(MAIN, d, assume_valid=None)
    assert "blk00000.dat" in str(exc.value) and "--reindex" in str(exc.value)

    damaged = bytearray(intact)
    start = _record_offset(d, 200)
    damaged[start + 90 : start + 110] = b"\xff" * 20  # inside block 200's coinbase
    blk.write_bytes(bytes(damaged))
    cs = ChainState(MAIN, d, assume_valid=None)
    try:
        with pytest.raises(CorruptionError) as exc:
            cs.invalidate_block(Block.from_hex(MAINNET_LINES[200]).hash)
        assert "blk00000.dat" in str(exc.value) or "blocks" in str(exc.value)
        assert "--reindex" in str(exc.value)
    finally:
        cs.blocks.close()
        cs.index.env.close()
        cs.coins_db.close()
        cs.lock.release()


def _corrupt_meta(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"\xff" * 8192)  # both LMDB meta pages


def _corrupt_page_types(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for page in range(2 * 4096, len(data), 4096):
        data[page + 10 : page + 12] = b"\x00\x00"  # page flags: no valid page type
    path.write_bytes(bytes(data))


def _truncate_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize(
    ("folder", "damage"),
    [
        ("chainstate", _corrupt_meta),
        ("index", _corrupt_meta),
        ("chainstate", _corrupt_page_types),
        ("index", _corrupt_page_types),
        ("chainstate", _truncate_half),
        ("index", _truncate_half),
    ],
    ids=["chainstate-meta", "index-meta", "chainstate-pages", "index-pages",
         "chainstate-truncated", "index-truncated"],
)  # fmt: skip
def test_corrupted_lmdb_file_is_reported(folder, damage, tmp_path, peercash):
    d = tmp_path / "dd"
    _import_mainnet(peercash, d)
    damage(d / folder / "data.mdb")
    r = peercash("chaininfo", "--network", "main", "--datadir", d)
    _assert_clear_error(r, folder)


def test_deleted_chainstate_is_rebuilt_from_the_blocks(
    tmp_path, peercash, chaininfo, mainnet_reference
):
    """With the index intact, a missing UTXO set is rebuilt by connecting the stored blocks."""
    d = tmp_path / "dd"
    _import_mainnet(peercash, d)
    shutil.rmtree(d / "chainstate")
    assert chaininfo(d).data == mainnet_reference.data


# -- 4. --reindex over a torn tail ---------------------------------------------------------------


def _empty(tmp_path: Path) -> Path:
    p = tmp_path / "empty.hex"
    p.write_text("")
    return p


def test_reindex_ignores_a_torn_last_record(tmp_path, peercash, chaininfo, mainnet_reference):
    """A partly written record at the end of the block file (a crash mid-write) is skipped."""
    d = tmp_path / "dd"
    _import_mainnet(peercash, d, upto=200)
    raw = bytes.fromhex(MAINNET_LINES[201])
    with (d / "blocks" / "blk00000.dat").open("ab") as f:
        f.write(MAIN.magic + struct.pack("<I", len(raw)) + raw[: len(raw) // 2])
    r = peercash("import", _empty(tmp_path), "--reindex", "--datadir", d)
    assert r.returncode == 0, r.stderr
    info = chaininfo(d)
    assert info["height"] == 200
    assert info["bestblock"] == Block.from_hex(MAINNET_LINES[200]).hash_hex
    # Importing the rest afterwards completes the chain.
    r = peercash("import", MAINNET_HEX, "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert chaininfo(d).data == mainnet_reference.data


def test_reindex_recovers_everything_before_a_truncated_tail(
    tmp_path, peercash, chaininfo, mainnet_reference
):
    """The block file is cut in the middle of block 230's record (which the index refers to):
    ``--reindex`` rebuilds the chain up to block 229 with the exact UTXO set of that height."""
    ref = tmp_path / "ref"
    _import_mainnet(peercash, ref, upto=229)
    expected = chaininfo(ref)
    d = tmp_path / "dd"
    _import_mainnet(peercash, d)
    os.truncate(d / "blocks" / "blk00000.dat", _record_offset(d, 230) + 40)
    r = peercash("import", _empty(tmp_path), "--reindex", "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert "at height 229" in r.stdout
    assert chaininfo(d).data == expected.data
    r = peercash("import", MAINNET_HEX, "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert chaininfo(d).data == mainnet_reference.data


def test_reindex_after_a_torn_record_in_the_middle(
    tmp_path, peercash, chaininfo, mainnet_reference
):
    """A torn record followed by more records: what a kill mid-write and a restart leave."""
    d = tmp_path / "dd"
    _import_mainnet(peercash, d, upto=150)
    raw = bytes.fromhex(MAINNET_LINES[151])
    with (d / "blocks" / "blk00000.dat").open("ab") as f:
        f.write(MAIN.magic + struct.pack("<I", len(raw)) + raw[: len(raw) // 2])
    r = peercash("import", MAINNET_HEX, "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert chaininfo(d).data == mainnet_reference.data
    r = peercash("import", _empty(tmp_path), "--reindex", "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert chaininfo(d).data == mainnet_reference.data


def _damage_truncated_unconnected(d: Path) -> None:
    _store_without_connecting(d, 200)
    os.truncate(d / "blocks" / "blk00000.dat", _record_offset(d, 230) + 50)


def _damage_chainstate_meta(d: Path) -> None:
    _store_without_connecting(d, 256)
    _corrupt_meta(d / "chainstate" / "data.mdb")


def _damage_index_meta(d: Path) -> None:
    _store_without_connecting(d, 256)
    _corrupt_meta(d / "index" / "data.mdb")


@pytest.mark.parametrize(
    ("damage", "height"),
    [(_damage_truncated_unconnected, 229), (_damage_chainstate_meta, 255),
     (_damage_index_meta, 255)],
    ids=["truncated-blk", "chainstate-meta", "index-meta"],
)  # fmt: skip
def test_reindex_repairs_a_datadir_that_fails_to_open(
    damage, height, tmp_path, peercash, chaininfo
):
    d = tmp_path / "dd"
    damage(d)
    r = peercash("chaininfo", "--network", "main", "--datadir", d)
    assert r.returncode != 0 and "--reindex" in r.stderr
    r = peercash("import", _empty(tmp_path), "--reindex", "--datadir", d)
    assert r.returncode == 0, r.stderr
    info = chaininfo(d)
    assert info["height"] == height
    assert info["bestblock"] == Block.from_hex(MAINNET_LINES[height]).hash_hex
