"""Run real ``peercash node`` processes and talk to them over plain HTTP (tests, benchmarks, demo).

``NodeProcess`` starts ``peercash node`` on free loopback ports, waits until RPC answers, and
calls it with ``urllib`` (Core's JSON-RPC 1.0 dialect, cookie auth), independently of our own
client. It never reads the node's internals.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENTRY = "import sys; from peercash.cli import app; sys.argv[0] = 'peercash'; app()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peercash_command(*args: str) -> list[str]:
    """The command line that runs ``peercash ARGS`` with this interpreter."""
    return [sys.executable, "-c", ENTRY, *args]


class RpcCallError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NodeProcess:
    """One node process on regtest (by default) in ``datadir``."""

    def __init__(
        self,
        datadir: Path,
        *,
        network: str = "regtest",
        rpcport: int | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """``credentials``: (user, password) for RPC instead of the cookie."""
        self.datadir = datadir
        self.network = network
        self.rpcport = rpcport or free_port()
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.credentials = credentials
        sub = {"main": "", "testnet": "testnet3"}.get(network, network)
        self.net_datadir = datadir / sub if sub else datadir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.rpcport}/"

    # -- process --------------------------------------------------------------------------

    def args(self) -> list[str]:
        return [
            "node",
            "--network", self.network,
            "--datadir", str(self.datadir),
            "--rpcport", str(self.rpcport),
            "--port", str(self.port),
            "--no-printtoconsole",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> NodeProcess:
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.proc = self._spawn(peercash_command(*self.args()))
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.kill()
                raise
        return self

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        """Start the process (a subclass may start it elsewhere, e.g. in a network namespace)."""
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``uptime`` answers (not in warm-up); raises if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise RuntimeError(
                    f"node exited with {self.proc.returncode}: {err.decode(errors='replace')}"
                )
            try:
                self.call("uptime")
                return
            except RpcCallError as e:
                if e.code != -28:
                    raise
            except (OSError, urllib.error.URLError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"node on port {self.rpcport} not ready after {timeout}s")

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 60.0) -> int:
        """``stop`` over RPC, then wait for the process to exit; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        try:
            self.call("stop")
        except (OSError, urllib.error.URLError, RpcCallError):
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop(30)
        except Exception:
            self.kill()

    # -- HTTP -----------------------------------------------------------------------------

    @property
    def cookie_path(self) -> Path:
        return self.net_datadir / ".cookie"

    def auth_header(self) -> str:
        if self.credentials is not None:
            cookie = ":".join(self.credentials)
        else:
            cookie = self.cookie_path.read_text().strip()
        return "Basic " + base64.b64encode(cookie.encode()).decode()

    def post(
        self,
        body: bytes | str | Any,
        *,
        auth: str | None = None,
        path: str = "/",
        method: str = "POST",
        timeout: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """One raw HTTP request; returns (status, body, headers) for any status."""
        if isinstance(body, str):
            data: bytes | None = body.encode()
        elif isinstance(body, bytes) or body is None:
            data = body
        else:
            data = json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"}
        if auth is None:
            hdrs["Authorization"] = self.auth_header()
        elif auth:
            hdrs["Authorization"] = auth
        hdrs.update(headers or {})
        return self._request(method, path, data, hdrs, timeout)

    def get(self, path: str, timeout: float = 60.0) -> tuple[int, bytes, dict[str, str]]:
        return self._request("GET", path, None, {}, timeout)

    def _request(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send one HTTP request to the RPC port (a subclass may reach it another way, e.g.
        inside a network namespace); (status, body, headers) for any status."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.rpcport}{path}", data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def call(self, method: str, *params: Any, **named: Any) -> Any:
        """A JSON-RPC 1.0 call; raises ``RpcCallError`` for an error reply."""
        payload = {"method": method, "params": named if named else list(params), "id": 1}
        status, body, _ = self.post(payload)
        if status == 401:
            raise urllib.error.URLError("401 Unauthorized")
        reply = json.loads(body)
        if reply.get("error"):
            raise RpcCallError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    def cli_args(self) -> list[str]:
        return ["cli", "-network", self.network, "-datadir", str(self.datadir),
                "-rpcport", str(self.rpcport)]  # fmt: skip

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """``peercash cli`` against this node."""
        return subprocess.run(
            peercash_command(*self.cli_args(), *args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
