"""Real processes on one data directory (issue #9): one owner at a time, imports that say what
happened, the node's recovery options, and permission problems told from damage.

Every node is a ``NodeProcess`` used as a context manager (stopped, or killed, also when the test
fails); every CLI run is a ``subprocess.run`` with a timeout.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from pathlib import Path

import pytest

from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import P2WSH_OP_TRUE, assemble_block, coinbase_tx, solve
from peercash.tools.nodeproc import NodeProcess, free_port, peercash_command

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET_HEX = DATA / "btcd" / "blocks" / "mainnet-blocks-0-255.hex"
MAINNET_LINES = MAINNET_HEX.read_text().split()
MAINNET_TIP = "00000000d0a75c861fabf9ff7b92022f60e4afeed9331fe5aa073d8e4706fe3c"
ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
LOCKED = "Cannot obtain a lock on data directory {}. peercash is probably already running."

CLONE_NEWUSER = 0x10000000

pytestmark = pytest.mark.slow


def run(*args: object, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    """``peercash ARGS`` as a real process; ``unprivileged``: without root's power to override
    file permissions (see ``_drop_override``)."""
    return subprocess.run(
        peercash_command(*map(str, args)),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_drop_override if unprivileged and os.geteuid() == 0 else None,
        env={**os.environ, "COLUMNS": "60"},  # narrow: nothing must be wrapped in a pipe anyway
    )


def _drop_override() -> None:
    """In a new user namespace root keeps its files but loses CAP_DAC_OVERRIDE outside it, so a
    file without a write bit cannot be written: what any other user sees."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER) failed")


def one_line(r: subprocess.CompletedProcess[str], start: str) -> str:
    """The one stderr line that starts with ``start`` (a wrapped message would not match)."""
    lines = [x for x in r.stderr.splitlines() if x.startswith(start)]
    assert len(lines) == 1, r.stderr
    return lines[0]


def files_of(d: Path) -> dict[str, bytes]:
    """The block files and the databases (not LMDB's reader table, the log, the cookie)."""
    return {
        str(p.relative_to(d)): p.read_bytes()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.name not in ("debug.log", ".lock", ".cookie", "lock.mdb")
    }


def regtest_blocks(n: int, tag: bytes) -> list[Block]:
    """``n`` regtest blocks on the genesis (a chain the node does not have)."""
    blocks, prev, t = [], REGTEST.genesis_hash, 1_700_000_000
    for h in range(1, n + 1):
        cb = coinbase_tx(h, [TxOut(block_subsidy(h, REGTEST), P2WSH_OP_TRUE)], extra=tag)
        blocks.append(solve(assemble_block(prev, t + h, 0x207FFFFF, cb, witness_commitment=True)))
        prev = blocks[-1].hash
    return blocks


# -- one owner per data directory -------------------------------------------------------------


def test_import_and_chaininfo_against_a_running_node_fail_and_leave_it_unharmed(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.hex"
    other.write_text("\n".join(b.serialize().hex() for b in regtest_blocks(30, b"other")) + "\n")
    node = NodeProcess(tmp_path / "dd")
    with node.start():
        hashes = node.call("generatetoaddress", 25, ADDRESS)
        node.call("stop")  # flushed, so the files on disk are the node's final word
        node.wait_exit(60)
    before = files_of(node.net_datadir)
    with node.start():
        assert files_of(node.net_datadir) == before
        held = LOCKED.format(node.net_datadir)
        for args in (
            ("import", other, "--network", "regtest", "--datadir", node.datadir),
            ("import", "/dev/null", "--reindex", "--network", "regtest", "--datadir", node.datadir),
            ("chaininfo", "--network", "regtest", "--datadir", node.datadir),
        ):
            r = run(*args)
            assert r.returncode == 1, r
            assert one_line(r, "error: ") == f"error: {held}"
            assert r.stdout == ""
        second = run("node", "--network", "regtest", "--datadir", node.datadir,
                     "--rpcport", free_port(), "--port", free_port())  # fmt: skip
        assert second.returncode == 1 and f"Error: {held}" in second.stderr
        assert files_of(node.net_datadir) == before  # nothing of the node's was touched
        assert node.call("getblockcount") == 25
        assert node.call("verifychain", 4, 0) is True
        assert node.call("getbestblockhash") == hashes[-1]
    with node.start():  # and it restarts fine
        assert node.call("getbestblockhash") == hashes[-1]
        assert node.call("verifychain", 4, 0) is True
    # Once the node is gone, import and chaininfo work.
    r = run("chaininfo", "--network", "regtest", "--datadir", node.datadir)
    assert r.returncode == 0 and json.loads(r.stdout)["height"] == 25


# -- import says what happened ------------------------------------------------------------------


def test_wrong_network_and_gapped_imports_exit_non_zero_with_the_reason(tmp_path: Path) -> None:
    d = tmp_path / "dd"
    r = run("import", MAINNET_HEX, "--network", "regtest", "--datadir", d)
    assert r.returncode == 1
    assert one_line(r, "error: ") == (
        "error: these blocks are for main, not regtest (the first block is main's genesis "
        "block); nothing was imported"
    )
    assert not d.exists()

    gap = tmp_path / "gap.hex"
    gap.write_text("\n".join(MAINNET_LINES[:156] + MAINNET_LINES[157:]) + "\n")
    r = run("import", gap, "--network", "main", "--datadir", d)
    assert r.returncode == 1, r.stderr
    b156, b157 = (Block.from_hex(MAINNET_LINES[h]).hash_hex for h in (156, 157))
    assert one_line(r, "error: ") == (
        f"error: block {b157} does not connect: its parent {b156} is neither stored nor in the "
        "file; 99 blocks of the file left unconnected"
    )
    b155 = Block.from_hex(MAINNET_LINES[155]).hash_hex
    assert one_line(r, "kept ") == f"kept the chain up to height 155 ({b155})"
    assert "imported" not in r.stdout
    info = run("chaininfo", "--network", "main", "--datadir", d)
    assert info.returncode == 0 and json.loads(info.stdout)["bestblock"] == b155
    # The missing block supplied, the rest connects.
    r = run("import", MAINNET_HEX, "--network", "main", "--datadir", d)
    assert r.returncode == 0 and f"tip {MAINNET_TIP} at height 255" in r.stdout
    # Usage errors in a pipe are plain lines too, not 80-column panels.
    long = "--an-option-that-does-not-exist-and-has-a-name-longer-than-the-sixty-columns"
    r = run("node", long)
    assert r.returncode == 2
    assert one_line(r, "Error: ") == f"Error: No such option: {long}"


# -- the node's recovery options ---------------------------------------------------------------


def _rev_size(d: Path) -> int:
    return sum(p.stat().st_size for p in (d / "blocks").glob("rev?????.dat"))


def test_node_reindex_and_reindex_chainstate_reach_the_same_tip_and_muhash(
    tmp_path: Path,
) -> None:
    """The first 256 mainnet blocks (real spends, so real undo data) in a mainnet node."""
    d = tmp_path / "dd"
    r = run("import", MAINNET_HEX, "--network", "main", "--datadir", d)
    assert r.returncode == 0, r.stderr
    node = NodeProcess(d, network="main")
    with node.start():
        expected = node.call("gettxoutsetinfo", "muhash")
    assert (expected["height"], expected["bestblock"]) == (255, MAINNET_TIP)
    rev = _rev_size(d)
    for flags in (["--reindex"], ["--reindex-chainstate"], ["--reindex"], ["-reindex-chainstate"]):
        node.extra_args = flags
        with node.start():
            got = node.call("gettxoutsetinfo", "muhash")
            assert {k: got[k] for k in ("height", "bestblock", "muhash", "txouts")} == {
                k: expected[k] for k in ("height", "bestblock", "muhash", "txouts")
            }, flags
            assert node.call("verifychain", 4, 0) is True
        assert _rev_size(d) == rev, flags  # undo records are not appended again
    log = (d / "debug.log").read_text()
    assert "Reindexing: rebuilding the block index and the UTXO set from the block files" in log
    assert "Reindexing the chain state: connecting the stored blocks again" in log


def test_damage_advice_works(tmp_path: Path) -> None:
    """A damaged UTXO database: the node refuses to start and says which option repairs it;
    started with that option it comes back with the same tip."""
    node = NodeProcess(tmp_path / "dd")
    with node.start():
        hashes = node.call("generatetoaddress", 12, ADDRESS)
    with (node.net_datadir / "chainstate" / "data.mdb").open("r+b") as f:
        f.write(b"\xff" * 8192)
    r = run(*node.args())
    assert r.returncode == 1
    line = one_line(r, "Error: ")
    assert f"({node.net_datadir / 'chainstate'})" in line
    assert "restart the node with --reindex-chainstate (peercash node --reindex-chainstate)" in line
    node.extra_args = ["--reindex-chainstate"]
    with node.start():
        assert node.call("getbestblockhash") == hashes[-1]


# -- permission problems are not damage -----------------------------------------------------------


def test_permission_problems_are_reported_as_such(tmp_path: Path) -> None:
    d = tmp_path / "dd"
    r = run("import", MAINNET_HEX, "--network", "main", "--datadir", d)
    assert r.returncode == 0, r.stderr
    if os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_drop_override, check=True)
        except (OSError, subprocess.SubprocessError):
            pytest.skip("running as root without user namespaces: permissions cannot be denied")
    tree = [d, *d.rglob("*")]
    try:
        for p in tree:
            p.chmod(0o555 if p.is_dir() else 0o444)
        for args in (("chaininfo", "--datadir", d), ("import", MAINNET_HEX, "--datadir", d)):
            r = run(*args, unprivileged=True)
            assert r.returncode == 1, r.stderr
            line = one_line(r, "error: ")
            assert line.startswith("error: Permission denied: peercash runs as user "), line
            assert f"and cannot write {d / '.lock'} (owned by " in line
            assert "this is not damage: reindexing would not help" in line
            assert "damaged" not in line and "--reindex" not in line
        # With the lock file writable, the databases refuse: still named as such, not damage.
        (d / ".lock").chmod(0o666)
        r = run("chaininfo", "--datadir", d, unprivileged=True)
        assert r.returncode == 1
        line = one_line(r, "error: ")
        assert line.startswith("error: Permission denied: "), line
        assert f"cannot write {d / 'index'} (" in line
        assert "damaged" not in line and "--reindex" not in line
    finally:
        for p in tree:
            p.chmod(0o755 if p.is_dir() else 0o644)
    # Nothing was harmed.
    r = run("chaininfo", "--datadir", d)
    assert r.returncode == 0 and json.loads(r.stdout)["bestblock"] == MAINNET_TIP
