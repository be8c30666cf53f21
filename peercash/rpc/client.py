"""``peercash cli``: a JSON-RPC client that behaves like ``bitcoin-cli``.

- Arguments are strings unless Core's conversion table (``CONVERT_PARAMS``, Core's
  ``vRPCConvertParams`` for the methods we have) says the parameter takes JSON; then they must
  parse as JSON (``Error parsing JSON: …`` otherwise).
- ``-named``: ``name=value`` arguments; bare values go to ``"args"`` (Core's mixed form).
- Results: nothing for null, strings unquoted, anything else as JSON indented by 2 (UniValue's
  layout, numbers as the server wrote them).
- Errors: ``error code: N`` / ``error message:`` / the message on stderr; the exit status is
  ``abs(N)`` as in Core (so 1 for -1, 8 for -8; the OS keeps the low 8 bits). Transport and
  usage failures print ``error: …`` and exit 1.
- ``-rpcwait`` retries while the server is unreachable or warming up (-28).
- Credentials: ``-rpcuser``/``-rpcpassword`` when a password is given, else ``.cookie`` in the
  network's data directory.

Synchronous (``http.client``): one process, one call.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .auth import read_cookie

RPC_IN_WARMUP = -28
DEFAULT_CLIENT_TIMEOUT = 900.0
EXIT_FAILURE = 1

# (method, position, name) of parameters that take JSON (Core's vRPCConvertParams, for the
# methods peercash has or is about to have).
CONVERT_PARAMS: frozenset[tuple[str, int, str]] = frozenset(
    {
        ("generatetoaddress", 0, "nblocks"),
        ("generatetoaddress", 2, "maxtries"),
        ("generatetodescriptor", 0, "num_blocks"),
        ("generatetodescriptor", 2, "maxtries"),
        ("generateblock", 1, "transactions"),
        ("generateblock", 2, "submit"),
        ("getnetworkhashps", 0, "nblocks"),
        ("getnetworkhashps", 1, "height"),
        ("getblockhash", 0, "height"),
        ("waitforblockheight", 0, "height"),
        ("waitforblockheight", 1, "timeout"),
        ("waitforblock", 1, "timeout"),
        ("waitfornewblock", 0, "timeout"),
        ("getblocktemplate", 0, "template_request"),
        ("deriveaddresses", 1, "range"),
        ("scanblocks", 1, "scanobjects"),
        ("scanblocks", 2, "start_height"),
        ("scanblocks", 3, "stop_height"),
        ("scanblocks", 5, "options"),
        ("scantxoutset", 1, "scanobjects"),
        ("createmultisig", 0, "nrequired"),
        ("createmultisig", 1, "keys"),
        ("getblock", 1, "verbosity"),
        ("getblock", 1, "verbose"),
        ("getblockheader", 1, "verbose"),
        ("getchaintxstats", 0, "nblocks"),
        ("getrawtransaction", 1, "verbosity"),
        ("getrawtransaction", 1, "verbose"),
        ("createrawtransaction", 0, "inputs"),
        ("createrawtransaction", 1, "outputs"),
        ("createrawtransaction", 2, "locktime"),
        ("createrawtransaction", 3, "replaceable"),
        ("decoderawtransaction", 1, "iswitness"),
        ("signrawtransactionwithkey", 1, "privkeys"),
        ("signrawtransactionwithkey", 2, "prevtxs"),
        ("sendrawtransaction", 1, "maxfeerate"),
        ("sendrawtransaction", 2, "maxburnamount"),
        ("testmempoolaccept", 0, "rawtxs"),
        ("testmempoolaccept", 1, "maxfeerate"),
        ("submitpackage", 0, "package"),
        ("submitpackage", 1, "maxfeerate"),
        ("submitpackage", 2, "maxburnamount"),
        ("combinerawtransaction", 0, "txs"),
        ("createpsbt", 0, "inputs"),
        ("createpsbt", 1, "outputs"),
        ("createpsbt", 2, "locktime"),
        ("createpsbt", 3, "replaceable"),
        ("createpsbt", 4, "version"),
        ("createpsbt", 5, "psbt_version"),
        ("combinepsbt", 0, "txs"),
        ("joinpsbts", 0, "txs"),
        ("finalizepsbt", 1, "extract"),
        ("converttopsbt", 1, "permitsigdata"),
        ("converttopsbt", 2, "iswitness"),
        ("utxoupdatepsbt", 1, "descriptors"),
        ("descriptorprocesspsbt", 1, "descriptors"),
        ("descriptorprocesspsbt", 3, "bip32derivs"),
        ("descriptorprocesspsbt", 4, "finalize"),
        ("gettxout", 1, "n"),
        ("gettxout", 2, "include_mempool"),
        ("gettxoutproof", 0, "txids"),
        ("gettxoutsetinfo", 1, "hash_or_height"),
        ("gettxoutsetinfo", 2, "use_index"),
        ("verifychain", 0, "checklevel"),
        ("verifychain", 1, "nblocks"),
        ("getblockstats", 0, "hash_or_height"),
        ("getblockstats", 1, "stats"),
        ("pruneblockchain", 0, "height"),
        ("getrawmempool", 0, "verbose"),
        ("getrawmempool", 1, "mempool_sequence"),
        ("estimatesmartfee", 0, "conf_target"),
        ("estimaterawfee", 0, "conf_target"),
        ("estimaterawfee", 1, "threshold"),
        ("prioritisetransaction", 1, "dummy"),
        ("prioritisetransaction", 2, "fee_delta"),
        ("getmempoolancestors", 1, "verbose"),
        ("getmempooldescendants", 1, "verbose"),
        ("gettxspendingprevout", 0, "outputs"),
        ("sendtoaddress", 1, "amount"),
        ("sendtoaddress", 4, "subtractfeefromamount"),
        ("sendtoaddress", 5, "replaceable"),
        ("sendtoaddress", 6, "conf_target"),
        ("sendtoaddress", 8, "avoid_reuse"),
        ("sendtoaddress", 9, "fee_rate"),
        ("sendtoaddress", 10, "verbose"),
        ("sendmany", 1, "amounts"),
        ("sendmany", 2, "minconf"),
        ("sendmany", 4, "subtractfeefrom"),
        ("sendmany", 5, "replaceable"),
        ("sendmany", 6, "conf_target"),
        ("sendmany", 8, "fee_rate"),
        ("sendmany", 9, "verbose"),
        ("send", 0, "outputs"),
        ("send", 1, "conf_target"),
        ("send", 3, "fee_rate"),
        ("send", 4, "options"),
        ("sendall", 0, "recipients"),
        ("sendall", 1, "conf_target"),
        ("sendall", 3, "fee_rate"),
        ("sendall", 4, "options"),
        ("fundrawtransaction", 1, "options"),
        ("fundrawtransaction", 2, "iswitness"),
        ("walletcreatefundedpsbt", 0, "inputs"),
        ("walletcreatefundedpsbt", 1, "outputs"),
        ("walletcreatefundedpsbt", 2, "locktime"),
        ("walletcreatefundedpsbt", 3, "options"),
        ("walletcreatefundedpsbt", 4, "bip32derivs"),
        ("walletcreatefundedpsbt", 5, "version"),
        ("bumpfee", 1, "options"),
        ("psbtbumpfee", 1, "options"),
        ("settxfee", 0, "amount"),
        ("setmocktime", 0, "timestamp"),
        ("logging", 0, "include"),
        ("logging", 1, "exclude"),
        ("stop", 0, "wait"),
        *((("echojson", i, f"arg{i}")) for i in range(10)),
    }
)
_BY_POSITION = frozenset((m, i) for m, i, _ in CONVERT_PARAMS)
_BY_NAME = frozenset((m, n) for m, _, n in CONVERT_PARAMS)


class CliError(Exception):
    """Printed as ``error: <message>``; exit status 1."""


class ConnectionFailed(CliError):
    """The server could not be reached (``-rpcwait`` retries these)."""


# -- arguments ------------------------------------------------------------------------------------


def _parse_json_arg(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise CliError(f"Error parsing JSON: {raw}") from None


def convert_positional(method: str, args: Sequence[str]) -> list[Any]:
    return [_parse_json_arg(a) if (method, i) in _BY_POSITION else a for i, a in enumerate(args)]


def convert_named(method: str, args: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    positional: list[Any] = []
    for a in args:
        name, eq, value = a.partition("=")
        if not eq:
            pos = len(positional)
            positional.append(_parse_json_arg(a) if (method, pos) in _BY_POSITION else a)
            continue
        # Later values overwrite earlier ones, as Core does.
        params[name] = _parse_json_arg(value) if (method, name) in _BY_NAME else value
    if positional and "args" not in params:
        params["args"] = positional
    return params


# -- output ---------------------------------------------------------------------------------------


class RawNumber:
    """A JSON number kept as the server wrote it (``50.00000000``, ``4.6e-10``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __float__(self) -> float:
        return float(self.text)

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RawNumber):
            return self.text == other.text
        if isinstance(other, int | float):
            return float(self.text) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=RawNumber)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, RawNumber):
        return v.text
    if isinstance(v, int | float):
        return json.dumps(v)
    return json.dumps(v, ensure_ascii=False)


def pretty(value: Any, indent: int = 2, level: int = 0) -> str:
    """UniValue's ``write(2)``: like ``json.dumps(indent=2)``, but empty containers are written
    across two lines (``[`` newline ``]``) as Core does."""
    if isinstance(value, dict):
        pad = " " * (indent * (level + 1))
        items = [
            f"{pad}{json.dumps(str(k), ensure_ascii=False)}: {pretty(v, indent, level + 1)}"
            for k, v in value.items()
        ]
        return (
            "{\n"
            + "".join(i + (",\n" if n < len(items) - 1 else "\n") for n, i in enumerate(items))
            + " " * (indent * level)
            + "}"
        )
    if isinstance(value, list):
        pad = " " * (indent * (level + 1))
        items = [pad + pretty(v, indent, level + 1) for v in value]
        return (
            "[\n"
            + "".join(i + (",\n" if n < len(items) - 1 else "\n") for n, i in enumerate(items))
            + " " * (indent * level)
            + "]"
        )
    return _scalar(value)


def format_result(result: Any) -> str:
    """What ``bitcoin-cli`` prints for a result ("" for null)."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    return pretty(result)


def format_error(error: Any) -> tuple[str, int]:
    """(text for stderr, exit status) for a JSON-RPC error object."""
    if isinstance(error, dict):
        text = ""
        code = error.get("code")
        if code is not None:
            text = f"error code: {_scalar(code)}\n"
        msg = error.get("message")
        if isinstance(msg, str):
            text += "error message:\n" + msg
    else:
        text = "error: " + json.dumps(error)
    code = error.get("code") if isinstance(error, dict) else None
    status = abs(code) if isinstance(code, int) else EXIT_FAILURE
    if status & 0xFF == 0:  # would read as success once the OS keeps the low 8 bits
        status = EXIT_FAILURE
    return text, status


# -- transport ------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    host: str
    port: int
    datadir: Path
    """The network's data directory (where ``.cookie`` is)."""
    user: str | None = None
    password: str | None = None
    wallet: str | None = None
    timeout: float = DEFAULT_CLIENT_TIMEOUT
    conf_file: Path | None = None
    _cookie_missing: bool = field(default=False, repr=False)

    def credentials(self) -> str:
        if self.password:
            return f"{self.user or ''}:{self.password}"
        cookie = read_cookie(self.datadir)
        self._cookie_missing = cookie is None
        return cookie or ":"

    def post(self, payload: Any) -> Any:
        """POST one JSON value; returns the parsed reply. Raises ``ConnectionFailed`` or
        ``CliError`` as bitcoin-cli's ``CallRPC`` does."""
        auth = base64.b64encode(self.credentials().encode()).decode()
        body = (json.dumps(payload) + "\n").encode()
        path = "/"
        if self.wallet is not None:
            path = "/wallet/" + urllib.parse.quote(self.wallet, safe="")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            try:
                conn.request(
                    "POST",
                    path,
                    body=body,
                    headers={
                        "Host": self.host,
                        "Connection": "close",
                        "Content-Type": "application/json",
                        "Authorization": "Basic " + auth,
                    },
                )
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, socket.timeout | TimeoutError):
                    detail = ' (error code 3 - "timeout reached")'
                elif isinstance(e, ConnectionRefusedError):
                    detail = ""
                else:
                    detail = f" ({e})"
                raise ConnectionFailed(
                    f"Could not connect to the server {self.host}:{self.port}{detail}\n\n"
                    "Make sure the peercash node is running and that you are connecting to the "
                    "correct RPC port."
                ) from None
        finally:
            conn.close()
        status = response.status
        if status == 401:
            if self._cookie_missing:
                raise CliError(
                    "Could not locate RPC credentials. No authentication cookie could be found, "
                    "and RPC password is not set.  See -rpcpassword and -stdinrpcpass.  "
                    f"Configuration file: ({self.conf_file or 'none'})"
                )
            raise CliError("Authorization failed: Incorrect rpcuser or rpcpassword")
        if status == 503:
            raise CliError(f"Server response: {data.decode(errors='replace')}")
        if status >= 400 and status not in (400, 404, 500):
            raise CliError(f"server returned HTTP error {status}")
        if not data:
            raise CliError("no response from server")
        try:
            return loads(data)
        except ValueError:
            raise CliError("couldn't parse reply from server") from None


def call_with_wait(
    post: Callable[[], Any],
    *,
    wait: bool,
    wait_timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``-rpcwait``: retry unreachable or warming-up servers every second (0 = no limit)."""
    deadline = time.monotonic() + wait_timeout
    while True:
        try:
            reply = post()
            if wait and isinstance(reply, dict):
                err = reply.get("error")
                if isinstance(err, dict) and err.get("code") == RPC_IN_WARMUP:
                    raise ConnectionFailed("server in warmup")
            return reply
        except ConnectionFailed as e:
            if wait and (wait_timeout <= 0 or time.monotonic() < deadline):
                sleep(1.0)
                continue
            if wait:
                raise ConnectionFailed(f"timeout on transient error: {e}") from None
            raise


# -- -getinfo -------------------------------------------------------------------------------------


def getinfo_text(network_reply: Any, chain_reply: Any) -> str:
    """The human-readable ``-getinfo`` report (Core's layout; network figures read "N/A" until
    the node has a P2P layer)."""
    bc = chain_reply.get("result") or {}
    net = network_reply.get("result") if isinstance(network_reply, dict) else None
    net = net or {}

    def val(d: dict[str, Any], key: str, default: str = "N/A") -> str:
        v = d.get(key)
        return default if v is None else (v if isinstance(v, str) else _scalar(v))

    try:
        progress = f"{float(bc.get('verificationprogress', 0)) * 100:.4f}%"
    except (TypeError, ValueError):
        progress = "N/A"
    lines = [
        f"Chain: {val(bc, 'chain')}",
        f"Blocks: {val(bc, 'blocks')}",
        f"Headers: {val(bc, 'headers')}",
        f"Verification progress: {progress}",
        f"Difficulty: {val(bc, 'difficulty')}",
        "",
        f"Network: in {val(net, 'connections_in', '0')}, out {val(net, 'connections_out', '0')}, "
        f"total {val(net, 'connections', '0')}",
        f"Version: {val(net, 'version')}",
        f"Time offset (s): {val(net, 'timeoffset', '0')}",
        "Proxies: n/a",
        f"Min tx relay fee rate (BTC/kvB): {val(net, 'relayfee')}",
        "",
    ]
    warnings = net.get("warnings", bc.get("warnings", ""))
    if isinstance(warnings, list):
        warnings = "\n".join(str(w) for w in warnings) if warnings else "(none)"
    lines.append(f"Warnings: {warnings or '(none)'}")
    return "\n".join(lines)


# -- the command ----------------------------------------------------------------------------------


@dataclass
class CliResult:
    exit_code: int
    stdout: str = ""
    stderr: str = ""


def run(
    endpoint: Endpoint,
    method: str | None,
    args: Sequence[str],
    *,
    named: bool = False,
    wait: bool = False,
    wait_timeout: float = 0,
    getinfo: bool = False,
) -> CliResult:
    """One ``peercash cli`` invocation, without touching stdout/stderr (the caller prints)."""
    try:
        if getinfo:
            extra = ([method] if method else []) + list(args)
            if extra:
                raise CliError("-getinfo takes no arguments")
            batch = [
                {"method": "getnetworkinfo", "params": [], "id": 0},
                {"method": "getblockchaininfo", "params": [], "id": 1},
            ]
            replies = call_with_wait(
                lambda: endpoint.post(batch), wait=wait, wait_timeout=wait_timeout
            )
            if not isinstance(replies, list):
                return _from_reply(replies)
            by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
            chain = by_id.get(1, {})
            if chain.get("error") is not None:
                text, code = format_error(chain["error"])
                return CliResult(code, stderr=text)
            return CliResult(0, stdout=getinfo_text(by_id.get(0, {}), chain))
        if not method:
            raise CliError("too few parameters (need at least command)")
        params: Any = convert_named(method, args) if named else convert_positional(method, args)
        request = {"method": method, "params": params, "id": 1}
        reply = call_with_wait(lambda: endpoint.post(request), wait=wait, wait_timeout=wait_timeout)
        return _from_reply(reply)
    except CliError as e:
        return CliResult(EXIT_FAILURE, stderr=f"error: {e}")


def _from_reply(reply: Any) -> CliResult:
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        return CliResult(
            EXIT_FAILURE, stderr="error: expected reply to have result, error and id properties"
        )
    error = reply.get("error")
    if error is not None:
        text, code = format_error(error)
        return CliResult(code, stderr=text)
    return CliResult(0, stdout=format_result(reply.get("result")))
