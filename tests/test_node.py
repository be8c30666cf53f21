"""The node process: configuration, logging, the data directory lock, start-up and shutdown.

Process tests run ``peercash node --network regtest`` for real and check what a user sees: the
lock message of a second node, the ``stop`` RPC and signals shutting it down cleanly (cookie
deleted, chain flushed: a restart has the same tip), ``peercash cli -rpcwait``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peercash.config import Config, ConfigError, config_from_args, load_config, parse_conf_text
from peercash.log import LogControl, UnknownCategoryError, setup_logging
from peercash.rpc.auth import make_rpcauth
from peercash.tools.nodeproc import NodeProcess, free_port, peercash_command

# -- configuration --------------------------------------------------------------------------------


def _conf(tmp_path: Path, text: str) -> Path:
    (tmp_path / "peercash.conf").write_text(text)
    return tmp_path


def test_defaults_follow_the_network(tmp_path: Path) -> None:
    cfg = load_config({"datadir": tmp_path, "network": "regtest"})
    assert (cfg.port, cfg.rpcport) == (18444, 18443)
    assert cfg.network_datadir == tmp_path / "regtest"
    assert cfg.listen and not cfg.rest and not cfg.txindex and cfg.dbcache == 450
    assert load_config({"datadir": tmp_path, "network": "testnet"}).network_datadir == (
        tmp_path / "testnet3"
    )
    assert load_config({"datadir": tmp_path}).network_datadir == tmp_path
    assert cfg.rpcbind_addresses() == [("127.0.0.1", 18443), ("::1", 18443)]


def test_command_line_beats_network_section_beats_top(tmp_path: Path) -> None:
    _conf(tmp_path, "# comment\nregtest=1\ndbcache=100\nrest=1\n"
                    "[regtest]\ndbcache=200  # trailing comment\nrpcport=20001\nrpcport=20002\n"
                    "[main]\ndbcache=300\n")  # fmt: skip
    cfg = load_config({"datadir": tmp_path})
    assert cfg.network == "regtest"
    assert cfg.dbcache == 200  # section over top
    assert cfg.rpcport == 20001  # first value in the file wins, as in Core
    assert cfg.rest
    cfg = load_config({"datadir": tmp_path, "dbcache": 50, "rpcport": 20003})
    assert (cfg.dbcache, cfg.rpcport) == (50, 20003)
    # The network chosen on the command line picks the section.
    assert load_config({"datadir": tmp_path, "network": "main"}).dbcache == 300


def test_network_only_keys_at_the_top_apply_to_mainnet_only(tmp_path: Path) -> None:
    _conf(tmp_path, "rpcport=9999\nport=9998\naddnode=1.2.3.4\n")
    cfg = load_config({"datadir": tmp_path, "network": "regtest"})
    assert cfg.rpcport == 18443 and cfg.port == 18444 and cfg.addnode == ()
    assert any(
        "only applied on regtest network when in [regtest] section" in w for w in cfg.warnings
    )
    cfg = load_config({"datadir": tmp_path, "network": "main"})
    assert (cfg.rpcport, cfg.port, cfg.addnode) == (9999, 9998, ("1.2.3.4",))


def test_lists_merge_and_negation(tmp_path: Path) -> None:
    _conf(tmp_path, "[regtest]\naddnode=10.0.0.1:1\naddnode=10.0.0.2\nnolisten=1\ndebug=rpc\n"
                    "test.rpcport=1\nregtest.rest=1\n")  # fmt: skip
    cfg = load_config({"datadir": tmp_path, "network": "regtest", "addnode": ["10.0.0.3:3"],
                       "debug": ["net"]})  # fmt: skip
    assert cfg.addnode == ("10.0.0.3:3", "10.0.0.1:1", "10.0.0.2")
    assert not cfg.listen and cfg.rest
    assert cfg.debug_categories == {"rpc", "net"}
    assert cfg.rpcport == 18443  # [test] is testnet's section
    assert load_config({"datadir": tmp_path, "network": "regtest", "listen": True}).listen
    assert not load_config({"datadir": tmp_path, "network": "signet", "connect": ["h:1"]}).listen


def test_conf_option_and_core_style_args(tmp_path: Path) -> None:
    (tmp_path / "other.conf").write_text("chain=regtest\n[regtest]\ntxindex=1\n")
    cfg = config_from_args([f"-datadir={tmp_path}", "-conf=other.conf", "-rpcallowip=10.0.0.0/8",
                            "-rpcbind=10.0.0.1:5000", "-rpcbind=[::1]", "-nolisten"])  # fmt: skip
    assert cfg.txindex and cfg.network == "regtest" and cfg.conf_file == tmp_path / "other.conf"
    assert not cfg.listen
    assert cfg.rpcbind_addresses() == [("10.0.0.1", 5000), ("::1", 18443)]
    assert config_from_args([f"-datadir={tmp_path}", "-rpcallowip=1.2.3.4"]).rpcbind_addresses() == [
        ("0.0.0.0", 8332), ("::", 8332)]  # fmt: skip
    cfg = config_from_args([f"-datadir={tmp_path}", "-rpcbind=1.2.3.4"])
    assert cfg.rpcbind_addresses()[0] == ("127.0.0.1", 8332)
    assert any("-rpcbind was ignored" in w for w in cfg.warnings)


@pytest.mark.parametrize(
    ("options", "conf", "message"),
    [
        ({"port": 70000}, "", "Invalid port specified in -port: '70000'"),
        ({"rpcport": "x"}, "", "Invalid port specified in -rpcport: 'x'"),
        ({"network": "moon"}, "", "Invalid network 'moon'"),
        ({"dbcache": 1}, "", "-dbcache must be at least 4"),
        ({"debug": ["nosuch"]}, "", "Unsupported logging category -debug=nosuch."),
        ({"rpcauth": ["alice"]}, "", "Invalid -rpcauth argument 'alice'"),
        ({"rpcallowip": ["1.2.3.4/99"]}, "", "Invalid -rpcallowip subnet specification"),
        ({"assumevalid": "abcd"}, "", "Invalid -assumevalid 'abcd'"),
        ({"addnode": ["h:0"]}, "", "Invalid port in 'h:0'"),
        ({}, "txindex=maybe\n", "Invalid value for -txindex: 'maybe'"),
        ({}, "dbcache=lots\n", "Invalid value for -dbcache: 'lots'"),
        ({}, "listen\n", "parse error on line 1: listen"),
        ({}, "nolisten\n", "if you intended to specify a negated option, use nolisten=1 instead"),
        ({}, "rpcpassword=a#b\n", "using # in rpcpassword can be ambiguous"),
        ({}, "regtest=1\ntestnet=1\n", "Can use at most one"),
        ({"conf": "missing.conf"}, "", "could not be opened"),
    ],
)
def test_bad_values_raise_clear_errors(
    tmp_path: Path, options: dict[str, object], conf: str, message: str
) -> None:
    _conf(tmp_path, conf)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config({"datadir": tmp_path, **options})


def test_reindex_options_from_the_command_line_and_the_file(tmp_path: Path) -> None:
    cfg = load_config({"datadir": tmp_path})
    assert not cfg.reindex and not cfg.reindex_chainstate
    cfg = config_from_args([f"-datadir={tmp_path}", "-reindex", "-reindex-chainstate"])
    assert cfg.reindex and cfg.reindex_chainstate
    _conf(tmp_path, "reindex-chainstate=1\n[regtest]\nreindex=1\n")
    cfg = load_config({"datadir": tmp_path, "network": "regtest"})
    assert cfg.reindex and cfg.reindex_chainstate
    cfg = load_config({"datadir": tmp_path, "network": "main"})
    assert not cfg.reindex and cfg.reindex_chainstate
    _conf(tmp_path, "noreindex-chainstate=1\n")
    assert not load_config({"datadir": tmp_path}).reindex_chainstate


def test_missing_datadir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config({"datadir": tmp_path / "nope"})


def test_conf_parser_keeps_sections_in_order() -> None:
    conf = parse_conf_text("a=1\n[regtest]\nb=2\n[weird]\nc=3\nmain.d=4\n")
    assert conf.top == [("a", "1")]
    assert conf.sections == {"regtest": [("b", "2")], "weird": [("c", "3")], "main": [("d", "4")]}
    assert any("unknown section [weird]" in w for w in conf.warnings)


def test_assume_valid_hash() -> None:
    assert Config(assumevalid=None).assume_valid_hash(b"\x01" * 32) == b"\x01" * 32
    assert Config(assumevalid="0").assume_valid_hash(b"\x01" * 32) is None
    assert Config(assumevalid="00" * 31 + "ff").assume_valid_hash(None) == b"\xff" + b"\x00" * 31


# -- logging ------------------------------------------------------------------------------------


@pytest.fixture
def log_control(tmp_path: Path) -> Iterator[LogControl]:
    control = setup_logging(tmp_path, ["rpc"], printtoconsole=False, max_bytes=2000, backups=2)
    yield control
    control.close()
    control.set([], ["all"])


def test_debug_categories_switch_at_run_time(log_control: LogControl) -> None:
    assert log_control.categories()["rpc"] and not log_control.categories()["net"]
    logging.getLogger("peercash.rpc").debug("rpc detail")
    logging.getLogger("peercash.p2p").debug("net detail hidden")
    logging.getLogger("peercash.p2p").info("net info shown")
    log_control.set(["net"], ["rpc"])
    logging.getLogger("peercash.p2p.peer").debug("net detail shown")
    logging.getLogger("peercash.rpc").debug("rpc detail hidden")
    text = (log_control.path or Path()).read_text()
    assert "[rpc] rpc detail" in text and "[net] net detail shown" in text
    assert "hidden" not in text and "net info shown" in text
    assert all(log_control.set(["1"]).values())
    assert not any(log_control.set([], ["none", "all"]).values())
    with pytest.raises(UnknownCategoryError):
        log_control.set(["bogus"])


def test_debug_log_rotates_by_size(log_control: LogControl) -> None:
    for i in range(200):
        logging.getLogger("peercash.node").info("line %d with some padding to fill the file", i)
    path = log_control.path
    assert path is not None and path.stat().st_size <= 2000
    assert (path.parent / "debug.log.1").exists() and (path.parent / "debug.log.2").exists()
    assert not (path.parent / "debug.log.3").exists()


# -- real processes -------------------------------------------------------------------------------

ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


@pytest.mark.slow
def test_second_node_on_same_datadir_exits_at_once(tmp_path: Path) -> None:
    with NodeProcess(tmp_path).start() as first:
        # It must not wait for the lock: a wait would outlast the timeout (no timed assertion:
        # start-up time under a loaded test run varies by several seconds).
        second = subprocess.run(
            peercash_command("node", "--network", "regtest", "--datadir", str(tmp_path),
                             "--rpcport", str(free_port()), "--port", str(free_port())),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert (
            f"Cannot obtain a lock on data directory {tmp_path / 'regtest'}. "
            "peercash is probably already running." in second.stderr
        )
        assert first.call("getblockcount") == 0  # the first one is unharmed
        assert first.cookie_path.exists()


@pytest.mark.slow
def test_stop_and_restart_keep_the_tip(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path).start()
    try:
        hashes = node.call("generatetoaddress", 12, ADDRESS)
        assert node.call("getblockcount") == 12
        r = node.cli("stop")
        assert (r.returncode, r.stdout) == (0, "peercash stopping\n")
        assert node.wait_exit(60) == 0
    finally:
        node.kill()
    assert not node.cookie_path.exists()
    log = (node.net_datadir / "debug.log").read_text()
    assert "Flushing chain state at height 12" in log and "Shutdown: done" in log
    again = NodeProcess(tmp_path, rpcport=node.rpcport, port=node.port).start()
    with again:
        assert again.call("getblockcount") == 12
        assert again.call("getbestblockhash") == hashes[-1]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    node = NodeProcess(tmp_path).start()
    try:
        node.call("generatetoaddress", 3, ADDRESS)
        tip = node.call("getbestblockhash")
        assert node.cookie_path.exists()
        assert node.proc is not None
        node.proc.send_signal(sig)
        assert node.wait_exit(60) == 0
    finally:
        node.kill()
    assert not node.cookie_path.exists()
    assert "Shutdown: done" in (node.net_datadir / "debug.log").read_text()
    with NodeProcess(tmp_path).start() as again:
        assert again.call("getbestblockhash") == tip


@pytest.mark.slow
def test_cli_rpcwait_waits_for_the_node(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path)
    (tmp_path / "regtest").mkdir(parents=True)
    result: dict[str, subprocess.CompletedProcess[str]] = {}
    waiter = threading.Thread(
        target=lambda: result.setdefault("r", node.cli("-rpcwait", "-rpcwaittimeout=60",
                                                       "getblockcount")))  # fmt: skip
    waiter.start()
    time.sleep(1.5)
    assert waiter.is_alive()  # still waiting: nothing listens yet
    with node.start():
        waiter.join(60)
    r = result["r"]
    assert (r.returncode, r.stdout) == (0, "0\n")
    r = node.cli("-rpcwait", "-rpcwaittimeout=1", "uptime")
    assert r.returncode == 1 and "timeout on transient error: Could not connect" in r.stderr


@pytest.mark.slow
def test_password_auth_without_cookie_and_conf_file(tmp_path: Path) -> None:
    rpcport = free_port()
    (tmp_path / "peercash.conf").write_text(
        f"regtest=1\n[regtest]\nrest=1\ndebug=rpc\nrpcauth={make_rpcauth('bob', 'pw')}\n"
    )
    node = NodeProcess(tmp_path, rpcport=rpcport, credentials=("u", "p"),
                       extra_args=["--rpcuser", "u", "--rpcpassword", "p"])  # fmt: skip
    with node.start():
        assert not node.cookie_path.exists()
        assert node.get("/rest/chaininfo.json")[0] == 200  # rest=1 from the file
        r = node.cli("-rpcuser=u", "-rpcpassword=p", "logging")
        assert '"rpc": true' in r.stdout  # debug=rpc from the file
        assert node.cli("-rpcuser=bob", "-rpcpassword=pw", "uptime").returncode == 0
        r = node.cli("uptime")  # no password and no cookie
        assert r.returncode == 1 and "Could not locate RPC credentials" in r.stderr
        assert node.stop() == 0


@pytest.mark.slow
def test_bad_option_exits_with_message(tmp_path: Path) -> None:
    r = subprocess.run(peercash_command("node", "--datadir", str(tmp_path), "--dbcache", "1"),
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 1 and "Error: -dbcache must be at least 4" in r.stderr
    busy = free_port()
    import socket

    with socket.socket() as s, socket.socket(socket.AF_INET6) as s6:
        s.bind(("127.0.0.1", busy))
        s.listen()
        s6.bind(("::1", busy))
        s6.listen()
        r = subprocess.run(
            peercash_command("node", "--network", "regtest", "--datadir", str(tmp_path),
                             "--rpcport", str(busy), "--no-printtoconsole"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 1 and "Unable to bind any endpoint for RPC server" in r.stderr
    assert not (tmp_path / "regtest" / ".cookie").exists()


@pytest.mark.slow
def test_stalled_clients_are_dropped_and_do_not_delay_shutdown(tmp_path: Path) -> None:
    import socket

    node = NodeProcess(tmp_path, extra_args=["--rpcservertimeout", "1"]).start()
    try:
        auth = node.auth_header()

        def stalled_body() -> socket.socket:
            s = socket.create_connection(("127.0.0.1", node.rpcport), timeout=10)
            s.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                      'Content-Length: 500\r\n\r\n{"method"'.encode())  # fmt: skip
            return s

        head = socket.create_connection(("127.0.0.1", node.rpcport), timeout=10)
        head.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Len")
        body = stalled_body()
        t = time.monotonic()
        # -rpcservertimeout=1: the body-stalling client gets 408, the header-stalling one is
        # disconnected; both within a few seconds.
        assert body.recv(100).startswith(b"HTTP/1.1 408")
        assert head.recv(100) == b""
        assert time.monotonic() - t < 5
        head.close()
        body.close()
        # A client still stalling when the node stops does not hold the shutdown up.
        late = stalled_body()
        t = time.monotonic()
        assert node.stop() == 0
        assert time.monotonic() - t < 3
        late.close()
    finally:
        node.kill()
