"""The functional-test framework itself: bcoin installed and run as a real foreign node (two bcoin
nodes syncing a segwit chain full of wallet transactions), address translation checked by bcoin,
the installer's locking and error paths (with a stand-in npm), and network namespaces."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from framework import netns
from framework.bcoin import (
    BCOIN_REGTEST,
    MARKER,
    BcoinInstallError,
    BcoinNode,
    BcoinRpcError,
    ChainStats,
    bcoin_installed,
    ensure_bcoin,
    from_bcoin_address,
    install_info,
    make_chain_with_txs,
    p2p_connect,
    to_bcoin_address,
)
from framework.util import process_rss, tree_rss, wait_until

from peercash.consensus.address import address_to_script
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block

BLOCKS = 520
TXS_PER_BLOCK = 2


@pytest.fixture(scope="module")
def bcoin_dir() -> Path:
    """bcoin installed (or found) in the machine's cache; prints what the install took."""
    was_installed = bcoin_installed()
    t = time.monotonic()
    try:
        d = ensure_bcoin()
    except BcoinInstallError as e:
        pytest.fail(str(e))
    info = install_info(d)
    how = "found" if was_installed else f"installed in {time.monotonic() - t:.1f}s"
    print(f"\nbcoin {info['bcoin']} {how} at {d} (npm install took {info['seconds']}s)")
    return d


@pytest.mark.slow
def test_two_bcoin_nodes_sync_a_segwit_chain_with_transactions(
    bcoin_dir: Path, tmp_path: Path
) -> None:
    with (
        BcoinNode(tmp_path / "a", install_dir=bcoin_dir, name="bcoin-a", workers=True) as a,
        BcoinNode(tmp_path / "b", install_dir=bcoin_dir, name="bcoin-b", workers=True) as b,
    ):
        stats = ChainStats()
        t = time.monotonic()
        hashes = make_chain_with_txs(a, BLOCKS, TXS_PER_BLOCK, stats=stats)
        made = time.monotonic() - t
        print(
            f"bcoin-a mined {BLOCKS} blocks with {len(stats.txids)} wallet transactions "
            f"({len(stats.witness_spends)} spending witness coins) in {made:.1f}s"
        )
        assert len(hashes) == BLOCKS
        assert a.getblockcount() == BLOCKS
        assert a.segwit_status() == "active"
        assert stats.segwit_height is not None and stats.segwit_height == 432
        assert len(stats.witness_spends) >= (BLOCKS - stats.segwit_height) // 2

        # Every block parses with our decoder to the hash bcoin gives it; after maturity each
        # carries the wallet's payments, and after activation some of them carry witnesses.
        witness_txs = 0
        for height, block_hash in enumerate(hashes, start=1):
            block = Block.parse(a.getblock_raw(block_hash))
            assert block.hash_hex == block_hash
            if height > 101:
                assert len(block.txs) >= 1 + TXS_PER_BLOCK, height
            with_witness = sum(1 for tx in block.txs[1:] if tx.has_witness())
            if height <= stats.segwit_height:
                assert with_witness == 0, height
            witness_txs += with_witness
        assert witness_txs >= len(stats.witness_spends)
        # ... and bcoin's own verbose getblock shows those witnesses too.
        detail = a.rpc("getblock", hashes[-1], True, True)
        assert len(detail["tx"]) >= 1 + TXS_PER_BLOCK
        assert any("txinwitness" in vin for tx in detail["tx"][1:] for vin in tx["vin"]), detail[
            "tx"
        ][1:]

        # B connects to A and syncs the whole chain.
        assert b.getblockcount() == 0
        t = time.monotonic()
        b.add_peer(a.host, a.port)
        b.wait_for_height(BLOCKS, timeout=60)
        took = time.monotonic() - t
        print(
            f"bcoin-b synced {BLOCKS} blocks from bcoin-a in {took:.1f}s: {BLOCKS / took:.0f} blocks/s"
        )
        assert [b.getblockhash(h) for h in range(1, BLOCKS + 1)] == hashes
        assert any(not p["inbound"] for p in b.peers())
        assert any(p["inbound"] for p in a.peers())

        # A new block with transactions is relayed to B.
        more = make_chain_with_txs(a, 1, TXS_PER_BLOCK)
        b.wait_for_tip(more[0], timeout=30)
        print(f"bcoin rss: a {process_rss(a.pid) >> 20} MiB, b {process_rss(b.pid) >> 20} MiB")

        # With the network "off", B misses A's next block; back on, it catches up.
        b.set_network_active(False)
        wait_until(lambda: not a.peers() and not b.peers(), 10, what="the link to drop")
        cut = a.mine(1)[0]
        time.sleep(0.5)
        assert b.getbestblockhash() == more[0]
        b.set_network_active(True)
        b.wait_for_tip(cut, timeout=30)

        assert b.stop() == 0
        assert a.stop() == 0
    assert not a.running and not b.running


@pytest.mark.slow
def test_address_translation_is_what_bcoin_accepts(bcoin_dir: Path, tmp_path: Path) -> None:
    core_regtest = [
        "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85",  # P2WSH(OP_TRUE)
        "bcrt1q6rhpng9evdsfnn833a4f4vej0asu6dk5srld6x",  # P2WPKH
        "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",  # P2PKH
        "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc",  # P2SH
    ]
    with BcoinNode(tmp_path / "n", install_dir=bcoin_dir, wallet=True) as node:
        for addr in core_regtest:
            converted = to_bcoin_address(addr)
            assert converted.startswith(("rb1", "R", "G")), converted
            info = node.rpc("validateaddress", converted)
            assert info["isvalid"], (addr, converted)
            assert info["scriptPubKey"] == address_to_script(addr, REGTEST).hex()
            assert from_bcoin_address(converted) == addr
            assert to_bcoin_address(address_to_script(addr, REGTEST)) == converted
            # bcoin does not take Core's regtest form.
            assert node.rpc("validateaddress", addr) == {"isvalid": False}

        # bcoin's wallet RPC prints mainnet-form addresses; translated, they mine.
        printed = node.wallet_rpc("getnewaddress", "default")
        assert node.rpc("validateaddress", printed) == {"isvalid": False}
        with pytest.raises(BcoinRpcError) as e:
            node.rpc("generatetoaddress", 1, printed)
        assert e.value.code == -5
        [h] = node.mine(1, printed)
        assert node.getbestblockhash() == h
        cb = node.rpc("getblock", h, True, True)["tx"][0]
        spk = cb["vout"][0]["scriptPubKey"]
        assert spk["hex"] == address_to_script(to_bcoin_address(printed), BCOIN_REGTEST).hex()

        # Its P2P port takes a raw connection (as a byte-level test peer would make).
        with p2p_connect(node) as s:
            assert s.getpeername()[1] == node.port

        # Mining to a script, and the default (a wallet address).
        assert len(node.mine(2, address_to_script(core_regtest[0], REGTEST))) == 2
        assert len(node.mine(1)) == 1
        assert node.getblockcount() == 4


# -- the installer, with stand-in node and npm ------------------------------------------------

FAKE_NPM = """#!{python}
import os, sys, time
if sys.argv[1:2] == ["--version"]:
    print("0.0-fake"); sys.exit(0)
with open({count!r}, "a") as f:
    f.write("x")
if os.environ.get("FAKE_NPM_FAIL"):
    print("npm ERR! gyp: something broke", file=sys.stderr)
    sys.exit(7)
time.sleep(0.3)
os.makedirs("node_modules/bcoin/bin")
open("node_modules/bcoin/bin/node", "w").close()
"""

FAKE_NODE = """#!{python}
import sys
print("1.0.2" if sys.argv[-1] == "--version" and len(sys.argv) > 2 else "v0-fake")
"""


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    count = tmp_path / "npm-calls"
    for name, text in (("npm", FAKE_NPM), ("node", FAKE_NODE)):
        p = bindir / name
        p.write_text(text.format(python=sys.executable, count=str(count)))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return count


def test_install_runs_once_for_concurrent_callers(fake_tools: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "bcoin-1.0.2"
    results: list[Path | BaseException] = []

    def call() -> None:
        try:
            results.append(ensure_bcoin(target))
        except BaseException as e:
            results.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target] * 4
    assert fake_tools.read_text() == "x"  # npm ran once
    assert (target / MARKER).is_file() and bcoin_installed(target)
    assert install_info(target)["bcoin"] == "1.0.2"
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.startswith(".")) == [
        "bcoin-1.0.2",
        "bcoin-1.0.2-npm-install.log",
    ]
    assert ensure_bcoin(target) == target and fake_tools.read_text() == "x"


def test_install_failure_shows_npm_stderr_and_leaves_nothing(
    fake_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    target = tmp_path / "cache" / "bcoin-1.0.2"
    with pytest.raises(BcoinInstallError, match=r"exit 7[\s\S]*gyp: something broke"):
        ensure_bcoin(target)
    assert not target.exists()
    assert not list(target.parent.glob(".bcoin-1.0.2.tmp-*"))


def test_install_without_npm_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BcoinInstallError, match=r"(node|npm) is not on PATH"):
        ensure_bcoin(tmp_path / "cache" / "bcoin-1.0.2")


def test_install_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.bcoin import default_bcoin_dir

    monkeypatch.setenv("PEERCASH_BCOIN_DIR", str(tmp_path / "elsewhere"))
    assert default_bcoin_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("PEERCASH_BCOIN_DIR")
    assert default_bcoin_dir() == Path.home() / ".cache" / "peercash-tests" / "bcoin-1.0.2"


# -- network namespaces -----------------------------------------------------------------------

SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
conn, peer = srv.accept()
conn.sendall(conn.recv(64)[::-1] + b" from " + peer[0].encode())
"""


@pytest.mark.slow
def test_two_namespaces_joined_by_veth() -> None:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    before = set(netns.list_namespaces())
    with netns.Namespace() as a, netns.Namespace() as b:
        assert {a.name, b.name} <= set(netns.list_namespaces())
        veth = netns.link(a, b, subnet=3)
        assert "10.200.3.1" in a.exec("ip", "-4", "addr")
        server = b.popen(
            [sys.executable, "-c", SERVER, veth.addr_b, "18444"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "listening"
            client = a.run(
                [
                    sys.executable,
                    "-c",
                    "import socket, sys; c = socket.create_connection((sys.argv[1], 18444), 5);"
                    " c.sendall(b'ping'); print(c.recv(64).decode())",
                    veth.addr_b,
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert client.stdout.strip() == f"gnip from {veth.addr_a}", client.stderr
            assert server.wait(10) == 0
        finally:
            server.kill()
            server.wait()

        # The test process itself reaches a server inside b.
        server = b.popen(
            [sys.executable, "-c", SERVER, "127.0.0.1", "18445"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "listening"
            with b.connect("127.0.0.1", 18445) as s:
                s.sendall(b"abc")
                assert s.recv(64) == b"cba from 127.0.0.1"
        finally:
            server.kill()
            server.wait()

        # A link taken down partitions the two.
        veth.set_up(False)
        r = a.run(
            [sys.executable, "-c", "import socket; socket.create_connection(('10.200.3.2', 1), 1)"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode != 0
    assert set(netns.list_namespaces()) == before
    assert not [n for n in netns.list_namespaces() if n.startswith(f"pctest-{os.getpid()}-")]


@pytest.mark.slow
def test_bcoin_nodes_on_two_namespace_hosts(bcoin_dir: Path, tmp_path: Path) -> None:
    """Two bcoin "machines" on one veth link; RPC reaches them from here through the namespace."""
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with netns.Namespace() as ns_a, netns.Namespace() as ns_b:
        veth = netns.link(ns_a, ns_b, subnet=9)
        with (
            BcoinNode(tmp_path / "a", install_dir=bcoin_dir, netns=ns_a, host=veth.addr_a) as a,
            BcoinNode(tmp_path / "b", install_dir=bcoin_dir, netns=ns_b, host=veth.addr_b) as b,
        ):
            assert tree_rss(a.pid) >= process_rss(a.pid) > 0
            hashes = a.mine(5)
            b.add_peer(veth.addr_a, a.port)
            [peer] = b.wait_for_peers(1)
            assert peer["addr"] == f"{veth.addr_a}:{a.port}"
            b.wait_for_tip(hashes[-1])
            # The link goes down: A's next blocks stay on A until it is up again.
            veth.set_up(False)
            more = a.mine(2)
            time.sleep(0.5)
            assert b.getbestblockhash() == hashes[-1]
            veth.set_up(True)
            a.mine(1)
            b.wait_for_height(8, timeout=30)
            assert b.getblockhash(6) == more[0]
            a.kill()
            assert not a.running
            assert b.stop() == 0
