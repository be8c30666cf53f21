"""The JSON-RPC/REST server, in-process (protocol rules) and against a real node process.

The process tests drive ``peercash node --network regtest`` with plain HTTP (``urllib`` and raw
sockets), written from Core's documentation of its dialect (``doc/JSON-RPC-interface.md``,
``src/httprpc.cpp``), and with ``peercash cli``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.config import Config
from peercash.consensus.params import get_params
from peercash.rpc import control, methods  # noqa: F401  (registers the methods)
from peercash.rpc.auth import RpcAuth, make_rpcauth
from peercash.rpc.jsonrpc import dumps, handle_body
from peercash.rpc.registry import REGISTRY
from peercash.rpc.services import NodeServices
from peercash.tools.nodeproc import NodeProcess, free_port

# -- in-process: the protocol without HTTP ------------------------------------------------------


def _services(warmup: bool = False) -> NodeServices:
    s = NodeServices(get_params("regtest"), Config(network="regtest"), Path("/nonexistent"),
                     request_stop=lambda: None)  # fmt: skip
    if not warmup:
        s.set_warmup(None)
    return s


def _run(services: NodeServices, body: bytes | str) -> tuple[int, Any]:
    raw = body.encode() if isinstance(body, str) else body
    status, reply = asyncio.run(handle_body(services, raw))
    return status, None if reply is None else json.loads(reply)


def test_warmup_answers_minus_28_for_every_method() -> None:
    s = _services(warmup=True)
    status, reply = _run(s, '{"method":"uptime","id":1}')
    assert status == 500
    assert reply == {"result": None, "error": {"code": -28, "message": "Loading block index…"},
                     "id": 1}  # fmt: skip
    status, reply = _run(s, '{"jsonrpc":"2.0","method":"getblockcount","id":1}')
    assert status == 200 and reply["error"]["code"] == -28
    s.set_warmup(None)
    assert _run(s, '{"method":"uptime","id":1}')[1]["result"] >= 0


def test_legacy_reply_has_result_and_error_and_echoes_id() -> None:
    s = _services()
    status, reply = _run(s, '{"method":"echo","params":["a",1],"id":"x"}')
    assert status == 200
    assert reply == {"result": ["a", 1], "error": None, "id": "x"}
    # No id in the request: none in the reply (Core's JSONRPCReplyObj).
    assert _run(s, '{"method":"echo","params":[]}')[1] == {"result": [], "error": None}


def test_v2_reply_has_only_result_or_error() -> None:
    s = _services()
    status, reply = _run(s, '{"jsonrpc":"2.0","method":"echo","params":[true],"id":7}')
    assert (status, reply) == (200, {"jsonrpc": "2.0", "result": [True], "id": 7})
    status, reply = _run(s, '{"jsonrpc":"2.0","method":"nosuch","id":7}')
    assert (status, reply) == (
        200, {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 7},
    )  # fmt: skip


def test_v2_notification_runs_and_gets_no_body() -> None:
    stops: list[int] = []
    s = NodeServices(get_params("regtest"), Config(network="regtest"), Path("/x"),
                     request_stop=lambda: stops.append(1))  # fmt: skip
    s.set_warmup(None)
    assert _run(s, '{"jsonrpc":"2.0","method":"stop"}') == (204, None)
    assert stops == [1]
    # A 1.0 request without id is not a notification.
    assert _run(s, '{"method":"uptime"}')[0] == 200


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ("this is bad", 500, -32700, "Parse error"),
        ("", 500, -32700, "Parse error"),
        ('{"method": NaN}', 500, -32700, "Parse error"),
        ("42", 500, -32700, "Top-level object parse error"),
        ('{"id":1}', 400, -32600, "Missing method"),
        ('{"method":5,"id":1}', 400, -32600, "Method must be a string"),
        ('{"method":"uptime","params":5,"id":1}', 400, -32600, "Params must be an array or object"),
        ('{"jsonrpc":2,"method":"uptime","id":1}', 400, -32600, "jsonrpc field must be a string"),
        (
            '{"jsonrpc":"3.0","method":"uptime","id":1}',
            400,
            -32600,
            "JSON-RPC version not supported",
        ),
        ('{"method":"nosuch","id":1}', 404, -32601, "Method not found"),
    ],
)
def test_request_errors_map_to_core_codes_and_statuses(
    body: str, status: int, code: int, message: str
) -> None:
    got_status, reply = _run(_services(), body)
    assert got_status == status
    assert reply["error"] == {"code": code, "message": message}
    assert reply["result"] is None


def test_parameter_errors() -> None:
    s = _services()
    status, reply = _run(s, '{"method":"getmemoryinfo","params":[5],"id":1}')
    assert status == 500 and reply["error"]["code"] == -3  # RPC_TYPE_ERROR
    status, reply = _run(s, '{"method":"uptime","params":[1],"id":1}')
    assert status == 500 and reply["error"]["code"] == -1  # too many
    status, reply = _run(s, '{"method":"help","params":{"nosuch":1},"id":1}')
    assert reply["error"] == {"code": -8, "message": "Unknown named parameter nosuch"}
    status, reply = _run(s, '{"method":"getmemoryinfo","params":["bogus"],"id":1}')
    assert reply["error"] == {"code": -8, "message": "unknown mode bogus"}


def test_named_params_and_positional_args_member() -> None:
    s = _services()
    _, reply = _run(s, '{"method":"echo","params":{"arg1":"b","arg0":"a"},"id":1}')
    assert reply["result"] == ["a", "b"]
    # Core's mixed form (cli -named with bare values): positional values under "args".
    _, reply = _run(s, '{"method":"echo","params":{"args":["a"],"arg2":"c"},"id":1}')
    assert reply["result"] == ["a", None, "c"]
    _, reply = _run(s, '{"method":"echo","params":{"args":["a"],"arg0":"c"},"id":1}')
    assert reply["error"]["code"] == -8


def test_batch_replies_in_order_without_notifications() -> None:
    s = _services()
    batch = [
        {"method": "echo", "params": [1], "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "params": [2]},  # notification
        5,
        {"jsonrpc": "2.0", "method": "nosuch", "id": 3},
        {"method": "uptime", "params": ["x"], "id": 4},
    ]
    status, reply = _run(s, json.dumps(batch))
    assert status == 200
    assert reply[0] == {"result": [1], "error": None, "id": 1}
    assert reply[1] == {"result": None, "error": {"code": -32600, "message": "Invalid Request object"},
                        "id": None}  # fmt: skip
    assert reply[2] == {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"},
                        "id": 3}  # fmt: skip
    assert reply[3]["error"]["code"] == -1 and reply[3]["id"] == 4
    assert len(reply) == 4
    assert _run(s, "[]") == (200, [])
    assert _run(s, '[{"jsonrpc":"2.0","method":"uptime"}]') == (204, None)


def test_unexpected_exception_is_misc_error() -> None:
    s = _services()  # no chain: the facade raises -28 for chain methods, others fail plainly
    _, reply = _run(s, '{"method":"getblockcount","id":1}')
    assert reply["error"]["code"] == -28


def test_dumps_writes_decimal_amounts_exactly() -> None:
    text = dumps({"value": Decimal("50.00000000"), "tiny": Decimal("0.00000001"),
                  "zero": Decimal(0).scaleb(-8), "s": "\x00odd", "b": b"\x01"})  # fmt: skip
    assert '"value":50.00000000' in text
    assert '"tiny":0.00000001' in text
    assert '"zero":0.00000000' in text
    assert json.loads(text)["s"] == "\x00odd"
    assert '"b":"01"' in text


def test_help_lists_by_category_and_renders_methods() -> None:
    text = control.help_text(REGISTRY, None)
    assert text.startswith("== Blockchain ==\n")
    assert "\n\n== Control ==\n" in text
    assert '\ngetblock "blockhash" ( verbosity )\n' in text
    assert 'logging ( ["include",...] ["exclude",...] )' in text
    assert "echo" not in text.split()  # hidden
    one = control.help_text(REGISTRY, "getblockhash")
    assert one.startswith("getblockhash height\n\nReturns hash of block")
    assert "Arguments:\n1. height" in one and "(numeric, required)" in one
    assert control.help_text(REGISTRY, "nosuch") == "help: unknown command: nosuch"


def test_auth_checks_cookie_password_and_rpcauth() -> None:
    auth = RpcAuth()
    auth.add_password("__cookie__", "abc")
    line = make_rpcauth("alice", "secret", salt="00ff")
    from peercash.config import parse_rpcauth

    auth.add_rpcauth(*parse_rpcauth(line))

    def basic(s: str) -> str:
        return "Basic " + base64.b64encode(s.encode()).decode()

    assert auth.check(basic("__cookie__:abc")) == "__cookie__"
    assert auth.check(basic("alice:secret")) == "alice"
    assert auth.check(basic("alice:wrong")) is None
    assert auth.check(basic("bob:secret")) is None
    assert auth.check(basic("nocolon")) is None
    assert auth.check("Basic !!!") is None
    assert auth.check("Bearer x") is None
    assert auth.check(None) is None


def test_client_filter_uses_allowed_subnets() -> None:
    from peercash.rpc.server import RpcServer

    cfg = Config(network="regtest", rpcallowip=("10.1.0.0/16",))
    server = RpcServer(_services(), RpcAuth(), binds=[], allowed=cfg.allowed_networks())
    assert server._client_allowed("127.0.0.1")
    assert server._client_allowed("::1")
    assert server._client_allowed("10.1.2.3")
    assert server._client_allowed("::ffff:10.1.2.3")
    assert not server._client_allowed("10.2.0.1")
    assert not server._client_allowed("192.168.1.1")


# -- a real node process ------------------------------------------------------------------------

RPCAUTH_USER, RPCAUTH_PASSWORD = "alice", "wonderland"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Any:
    datadir = tmp_path_factory.mktemp("rpcnode")
    n = NodeProcess(datadir, extra_args=["--rest", "--rpcauth",
                                         make_rpcauth(RPCAUTH_USER, RPCAUTH_PASSWORD)])  # fmt: skip
    n.start()
    yield n
    assert n.stop() == 0


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _raw_http(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                length = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
                if length and len(rest) >= int(length[0].split(b":")[1]):
                    return out


@pytest.mark.slow
def test_process_parse_errors_and_unknown_methods(node: NodeProcess) -> None:
    status, body, headers = node.post(b"this is bad")
    assert status == 500
    assert json.loads(body) == {"result": None, "error": {"code": -32700, "message": "Parse error"},
                                "id": None}  # fmt: skip
    assert headers["Content-Type"].startswith("application/json")
    status, body, _ = node.post({"method": "nosuchmethod", "params": [], "id": 1})
    assert status == 404 and json.loads(body)["error"]["code"] == -32601
    status, body, _ = node.post({"jsonrpc": "2.0", "method": "nosuchmethod", "id": 1})
    assert status == 200
    assert json.loads(body) == {"jsonrpc": "2.0", "id": 1,
                                "error": {"code": -32601, "message": "Method not found"}}  # fmt: skip


@pytest.mark.slow
def test_process_parameter_types_and_counts(node: NodeProcess) -> None:
    status, body, _ = node.post({"method": "getblockhash", "params": ["zero"], "id": 1})
    assert status == 500 and json.loads(body)["error"]["code"] == -3
    status, body, _ = node.post({"method": "getblockhash", "params": [], "id": 1})
    assert status == 500 and json.loads(body)["error"]["code"] == -1
    status, body, _ = node.post({"method": "getblockhash", "params": [0, 1], "id": 1})
    assert status == 500 and json.loads(body)["error"]["code"] == -1
    status, body, _ = node.post({"method": "getblockhash", "params": [5], "id": 1})
    assert json.loads(body)["error"] == {"code": -8, "message": "Block height out of range"}
    status, body, _ = node.post({"method": "getblockhash", "params": {"height": 0}, "id": 1})
    assert status == 200 and json.loads(body)["result"] == node.call("getbestblockhash")


@pytest.mark.slow
def test_process_batches_and_notifications(node: NodeProcess) -> None:
    status, body, _ = node.post([
        {"method": "getblockcount", "id": "a"},
        {"jsonrpc": "2.0", "method": "getblockcount"},
        {"jsonrpc": "2.0", "method": "getblockhash", "params": {"height": 0}, "id": "b"},
        {"method": "nosuch", "id": "c"},
    ])  # fmt: skip
    assert status == 200
    reply = json.loads(body)
    assert [r["id"] for r in reply] == ["a", "b", "c"]
    assert reply[0] == {"result": 0, "error": None, "id": "a"}
    assert reply[1] == {"jsonrpc": "2.0", "result": node.call("getblockhash", 0), "id": "b"}
    assert reply[2]["error"]["code"] == -32601
    status, body, _ = node.post({"jsonrpc": "2.0", "method": "uptime"})
    assert (status, body) == (204, b"")


@pytest.mark.slow
def test_process_help_and_control_methods(node: NodeProcess) -> None:
    text = node.call("help")
    assert "== Blockchain ==" in text and "== Control ==" in text
    assert node.call("help", "stop").startswith("stop\n")
    assert node.call("help", "nosuch") == "help: unknown command: nosuch"
    assert isinstance(node.call("uptime"), int)
    mem = node.call("getmemoryinfo")
    assert set(mem["locked"]) == {"used", "free", "total", "locked", "chunks_used", "chunks_free"}
    assert mem["locked"]["used"] > 1_000_000  # our RSS
    info = node.call("getrpcinfo")
    assert info["active_commands"][0]["method"] == "getrpcinfo"
    assert info["logpath"] == str(node.net_datadir / "debug.log")
    assert node.call("logging")["rpc"] is False
    assert node.call("logging", ["rpc"], [])["rpc"] is True
    assert all(node.call("logging", ["all"]).values())
    assert not any(node.call("logging", [], ["all"]).values())
    with pytest.raises(Exception, match="unknown logging category nosuch"):
        node.call("logging", ["nosuch"])
    assert node.call("echo", "a", 1, None, {"k": [1]}) == ["a", 1, None, {"k": [1]}]
    # The wallet endpoint takes the same calls.
    status, body, _ = node.post({"method": "uptime", "id": 1}, path="/wallet/w1")
    assert status == 200 and json.loads(body)["error"] is None


@pytest.mark.slow
def test_process_http_method_and_size_limits(node: NodeProcess) -> None:
    status, body, _ = node.post(None, method="GET")
    assert status == 405 and body == b"JSONRPC server handles only POST requests"
    # A body declared over 32 MiB is refused before it is read.
    head = _raw_http(node.rpcport, (
        f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {node.auth_header()}\r\n"
        f"Content-Length: {33 * 1024 * 1024}\r\n\r\n"
    ).encode())  # fmt: skip
    assert head.startswith(b"HTTP/1.1 413")
    # So is one that turns out bigger than that while streaming.
    with socket.create_connection(("127.0.0.1", node.rpcport), timeout=30) as s:
        s.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {node.auth_header()}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())  # fmt: skip
        chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
        try:
            for _ in range(34):
                s.sendall(chunk)
        except OSError:
            pass
        assert s.recv(100).startswith(b"HTTP/1.1 413")
    assert node.call("getblockcount") == 0


@pytest.mark.slow
def test_process_authentication(node: NodeProcess) -> None:
    # No credentials: 401 at once, with the challenge.
    t = time.monotonic()
    status, body, headers = node.post({"method": "uptime", "id": 1}, auth="")
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="jsonrpc"'
    assert time.monotonic() - t < 0.2
    # Wrong credentials: 401 after about 250 ms.
    t = time.monotonic()
    status, _, headers = node.post({"method": "uptime", "id": 1}, auth=_basic("__cookie__", "x"))
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="jsonrpc"'
    assert time.monotonic() - t >= 0.24
    status, _, _ = node.post({"method": "uptime", "id": 1}, auth="Basic not-base64!")
    assert status == 401
    # rpcauth credentials work next to the cookie.
    status, body, _ = node.post({"method": "uptime", "id": 1},
                                auth=_basic(RPCAUTH_USER, RPCAUTH_PASSWORD))  # fmt: skip
    assert status == 200 and json.loads(body)["error"] is None
    status, _, _ = node.post({"method": "uptime", "id": 1}, auth=_basic(RPCAUTH_USER, "nope"))
    assert status == 401
    # The cookie: __cookie__:<64 hex>, readable by the owner only.
    cookie = node.cookie_path.read_text()
    user, _, password = cookie.partition(":")
    assert user == "__cookie__" and len(password) == 64 and int(password, 16) >= 0
    assert node.cookie_path.stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_process_bad_credentials_do_not_delay_others(node: NodeProcess) -> None:
    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t = time.monotonic()
        bad = [loop.run_in_executor(None, lambda: node.post({"method": "uptime", "id": 1},
                                                            auth=_basic("x", "y")))
               for _ in range(4)]  # fmt: skip
        await asyncio.sleep(0.02)
        t_good = time.monotonic()
        await loop.run_in_executor(None, node.call, "uptime")
        good = time.monotonic() - t_good
        await asyncio.gather(*bad)
        return good, time.monotonic() - t

    good, total = asyncio.run(run())
    assert good < 0.2 and total >= 0.24


@pytest.mark.slow
def test_process_slow_client_does_not_block_others(node: NodeProcess) -> None:
    auth = node.auth_header()
    # One client stalls half-way through its body, another half-way through its headers.
    stalled_body = socket.create_connection(("127.0.0.1", node.rpcport))
    stalled_body.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                         'Content-Length: 1000\r\n\r\n{"method": "get'.encode())  # fmt: skip
    stalled_head = socket.create_connection(("127.0.0.1", node.rpcport))
    stalled_head.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le")
    try:
        t = time.monotonic()
        for _ in range(20):
            assert node.call("getblockcount") == 0
        assert time.monotonic() - t < 5.0
    finally:
        stalled_body.close()
        stalled_head.close()


@pytest.mark.slow
def test_process_rest(node: NodeProcess) -> None:
    genesis = node.call("getblockhash", 0)
    status, body, _ = node.get("/rest/chaininfo.json")
    assert status == 200 and json.loads(body)["chain"] == "regtest"
    assert node.get("/rest/chaininfo.bin")[0] == 404
    status, body, _ = node.get("/rest/blockhashbyheight/0.json")
    assert json.loads(body) == {"blockhash": genesis}
    assert node.get("/rest/blockhashbyheight/0.hex")[1] == (genesis + "\n").encode()
    assert node.get("/rest/blockhashbyheight/0.bin")[1] == bytes.fromhex(genesis)[::-1]
    assert node.get("/rest/blockhashbyheight/9.json")[0] == 404
    assert node.get("/rest/blockhashbyheight/x.json")[0] == 400
    raw = node.get(f"/rest/block/{genesis}.bin")[1]
    assert raw.hex() == node.call("getblock", genesis, 0)
    assert node.get(f"/rest/block/{genesis}.hex")[1] == (raw.hex() + "\n").encode()
    full = json.loads(node.get(f"/rest/block/{genesis}.json")[1])
    assert full["hash"] == genesis and isinstance(full["tx"][0], dict)
    brief = json.loads(node.get(f"/rest/block/notxdetails/{genesis}.json")[1])
    assert brief["tx"] == [full["tx"][0]["txid"]]
    status, body, _ = node.get(f"/rest/block/{genesis}.xml")
    assert status == 404 and body.startswith(b"output format not found")
    assert node.get("/rest/block/" + "00" * 32 + ".json")[0] == 404
    assert node.get("/rest/block/xyz.json")[0] == 400
    status, body, _ = node.get(f"/rest/headers/{genesis}.json?count=3")
    assert [h["hash"] for h in json.loads(body)] == [genesis]
    assert node.get(f"/rest/headers/1/{genesis}.bin")[1] == raw[:80]
    assert node.get(f"/rest/headers/{genesis}.json?count=0")[0] == 400
    coinbase = full["tx"][0]["txid"]
    status, body, _ = node.get(f"/rest/tx/{coinbase}.json")
    assert status == 404  # no mempool or txindex holds it
    status, body, _ = node.get(f"/rest/getutxos/checkmempool/{coinbase}-0.json")
    utxos = json.loads(body)
    assert utxos["chainHeight"] == 0 and utxos["bitmap"] == "0" and utxos["utxos"] == []
    assert node.get("/rest/getutxos/.json")[0] == 400
    assert node.get(f"/rest/getutxos/{coinbase}-x.json")[0] == 400


@pytest.mark.slow
def test_process_cli(node: NodeProcess) -> None:
    genesis = node.call("getblockhash", 0)
    r = node.cli("getblockcount")
    assert (r.returncode, r.stdout, r.stderr) == (0, "0\n", "")
    assert node.cli("getbestblockhash").stdout == genesis + "\n"  # strings unquoted
    r = node.cli("getmemoryinfo")
    assert r.stdout.startswith('{\n  "locked": {\n    "used": ')
    assert node.cli("echo").stdout == "[\n]\n"  # UniValue's empty array
    assert node.cli("echojson", '{"a":[1,2]}', "true").stdout == (
        '[\n  {\n    "a": [\n      1,\n      2\n    ]\n  },\n  true\n]\n'
    )
    assert node.cli("echo", "1", "x").stdout == '[\n  "1",\n  "x"\n]\n'  # no conversion
    assert node.cli("-named", "getblockhash", "height=0").stdout == genesis + "\n"
    assert node.cli("-stdin", "getblockhash", stdin="0\n").stdout == genesis + "\n"
    assert node.cli("-rpcwallet=w 1", "getblockcount").stdout == "0\n"  # POST /wallet/w%201
    # A null result prints nothing.
    r = node.cli("reconsiderblock", genesis)
    assert (r.returncode, r.stdout) == (0, "")
    # Errors: Core's layout on stderr, exit status abs(code).
    r = node.cli("getblockhash", "7")
    assert r.returncode == 8
    assert r.stderr == "error code: -8\nerror message:\nBlock height out of range\n"
    assert r.stdout == ""
    r = node.cli("nosuchmethod")
    assert r.stderr.startswith("error code: -32601\n") and r.returncode == 32601 % 256
    r = node.cli("getblockhash", "zero")
    assert (r.returncode, r.stderr) == (1, "error: Error parsing JSON: zero\n")
    r = node.cli("-rpcuser=x", "-rpcpassword=y", "uptime")
    assert r.returncode == 1
    assert r.stderr == "error: Authorization failed: Incorrect rpcuser or rpcpassword\n"
    r = node.cli("-getinfo")
    assert r.returncode == 0 and "Chain: regtest\nBlocks: 0\n" in r.stdout


@pytest.mark.slow
def test_cli_connection_failure(tmp_path: Path) -> None:
    port = free_port()
    n = NodeProcess(tmp_path, rpcport=port)
    (tmp_path / "regtest").mkdir()
    r = n.cli("uptime")
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: Could not connect to the server 127.0.0.1:{port}")
