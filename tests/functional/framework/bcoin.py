"""bcoin 1.0.2 as a real foreign node: installed once per machine, run as regtest subprocesses.

- ``ensure_bcoin()`` installs bcoin from npm into a cache directory (once per machine; safe
  when several pytest-xdist workers ask at once) and returns it.
- ``BcoinNode`` runs one bcoin regtest full node (in memory, with its wallet) on free loopback
  ports, or inside a ``netns.Namespace``, and talks to it over its HTTP JSON-RPC.
- ``to_bcoin_address`` / ``from_bcoin_address`` translate addresses: bcoin's regtest uses its
  own prefixes (bech32 ``rb``, base58 versions 0x3c/0x26), and its wallet RPC prints mainnet-form
  addresses.
- ``make_chain_with_txs`` has bcoin mine a chain whose blocks carry wallet payments (legacy,
  native and nested segwit), so segwit is active on it and its blocks have witnesses.

bcoin's regtest, as seen from here: segwit is a BIP9 deployment (its miner signals; active from
height 432), BIP66/BIP65 start at 1251/1351, BIP34 is not enforced (its coinbases carry the
height anyway), no taproot (it cannot parse bech32m addresses), protocol 70015.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from peercash.consensus.address import address_to_script, script_to_address
from peercash.consensus.params import MAIN, REGTEST, TESTNET, NetworkParams
from peercash.mining.builder import P2WSH_OP_TRUE
from peercash.tools.nodeproc import free_port

from .netns import Namespace
from .util import tail, wait_until

BCOIN_VERSION = "1.0.2"
PACKAGE_JSON = {"dependencies": {"bcoin": BCOIN_VERSION}, "overrides": {"leveldown": "6.1.1"}}
"""npm's recipe: without the override, leveldown 4 fails to build on current Node.js."""
ENTRY = Path("node_modules/bcoin/bin/node")
MARKER = ".peercash-installed"
COINBASE_MATURITY = 100
NO_EXTERNAL_DNS = Path(__file__).with_name("no_external_dns.js")
"""Preloaded into bcoin: it would ask public DNS servers for this machine's address."""
WITNESS_WALLET = "witness"
"""The bcoin wallet ``make_chain_with_txs`` creates beside ``primary`` for segwit coins."""

BCOIN_REGTEST: NetworkParams = dataclasses.replace(
    REGTEST, name="bcoin-regtest", pubkey_prefix=0x3C, script_prefix=0x26, bech32_hrp="rb"
)
"""Core's regtest parameters with bcoin's regtest address prefixes (for address text only)."""


# -- installation ---------------------------------------------------------------------------


class BcoinInstallError(RuntimeError):
    """node/npm are missing, or ``npm install`` failed (the message ends with npm's stderr)."""


def default_bcoin_dir() -> Path:
    """``$PEERCASH_BCOIN_DIR``, else ``~/.cache/peercash-tests/bcoin-1.0.2``."""
    env = os.environ.get("PEERCASH_BCOIN_DIR")
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".cache" / "peercash-tests" / f"bcoin-{BCOIN_VERSION}"


def bcoin_installed(directory: Path | None = None) -> bool:
    d = directory or default_bcoin_dir()
    return (d / MARKER).is_file() and (d / ENTRY).is_file()


def install_info(directory: Path | None = None) -> dict[str, Any]:
    """What the completed install recorded: seconds it took, node and npm versions, when."""
    d = directory or default_bcoin_dir()
    info: dict[str, Any] = json.loads((d / MARKER).read_text())
    return info


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BcoinInstallError(
            f"{name} is not on PATH: bcoin needs Node.js and npm "
            "(Debian: apt-get install nodejs npm)"
        )
    return path


def ensure_bcoin(directory: Path | None = None, *, timeout: float = 900.0) -> Path:
    """The directory holding ``node_modules/bcoin``, installing bcoin there first if needed.

    The install runs at most once per machine: an ``flock`` on a lock file beside the directory
    makes concurrent callers (xdist workers, parallel CI jobs) wait for the first; npm installs
    into a temporary sibling directory that is renamed into place with a marker file only once
    bcoin runs, so a killed install never leaves a half-made directory behind.
    """
    d = (directory or default_bcoin_dir()).absolute()
    if bcoin_installed(d):
        return d
    node, npm = _tool("node"), _tool("npm")
    root = d.parent
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{d.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if bcoin_installed(d):  # another process finished while we waited
            return d
        for old in root.glob(f".{d.name}.tmp-*"):  # left by an install that was killed
            shutil.rmtree(old, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.tmp-", dir=root))
        try:
            _npm_install(tmp, root / f"{d.name}-npm-install.log", node, npm, timeout)
            if d.exists():  # no marker: a leftover we cannot trust
                shutil.rmtree(d)
            tmp.chmod(0o755)  # mkdtemp made it private
            os.rename(tmp, d)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return d


def _npm_install(tmp: Path, log: Path, node: str, npm: str, timeout: float) -> None:
    """``npm install`` into ``tmp``, keeping npm's output in ``log``; marks ``tmp`` complete."""
    (tmp / "package.json").write_text(json.dumps(PACKAGE_JSON))
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    start = time.monotonic()
    try:
        r = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise BcoinInstallError(
            f"npm install of bcoin {BCOIN_VERSION} timed out after {timeout}s"
        ) from e
    log.write_text(f"$ npm install (exit {r.returncode})\n{r.stdout}\n--- stderr ---\n{r.stderr}")
    if r.returncode != 0:
        stderr_tail = "\n".join(r.stderr.splitlines()[-30:])
        raise BcoinInstallError(
            f"npm install of bcoin {BCOIN_VERSION} failed with exit {r.returncode} "
            f"(full log: {log}):\n{stderr_tail}"
        )
    v = subprocess.run(
        [node, str(tmp / ENTRY), "--version"], capture_output=True, text=True, timeout=60
    )
    if v.stdout.strip() != BCOIN_VERSION:
        raise BcoinInstallError(
            f"installed bcoin does not run: --version printed {v.stdout.strip()!r}, "
            f"stderr: {v.stderr.strip()[-2000:]}"
        )
    versions = subprocess.run([npm, "--version"], capture_output=True, text=True, timeout=60)
    info = {
        "bcoin": BCOIN_VERSION,
        "seconds": round(time.monotonic() - start, 1),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip(),
        "npm": versions.stdout.strip(),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (tmp / MARKER).write_text(json.dumps(info, indent=1) + "\n")


# -- addresses ------------------------------------------------------------------------------

_ADDRESS_NETWORKS = (BCOIN_REGTEST, REGTEST, TESTNET, MAIN)


def address_script(address: str) -> bytes:
    """The scriptPubKey of an address in bcoin-regtest, Core regtest, testnet or mainnet form."""
    for params in _ADDRESS_NETWORKS:
        try:
            return address_to_script(address, params)
        except ValueError:  # DecodeError is a ValueError
            continue
    raise ValueError(f"{address!r} is not an address of bcoin's regtest, regtest, testnet or main")


def to_bcoin_address(address_or_script: str | bytes) -> str:
    """The bcoin-regtest address of a script (bytes) or of an address in any form above.

    bcoin 1.0.2 knows witness v0 only: a v1+ (bech32m) address comes out, but bcoin rejects it.
    """
    script = (
        address_or_script
        if isinstance(address_or_script, bytes)
        else address_script(address_or_script)
    )
    addr = script_to_address(script, BCOIN_REGTEST)
    if addr is None:
        raise ValueError(f"script {script.hex()} has no address form")
    return addr


def from_bcoin_address(address: str, params: NetworkParams = REGTEST) -> str:
    """The same output's address on ``params`` (Core's regtest by default)."""
    addr = script_to_address(address_script(address), params)
    assert addr is not None
    return addr


# -- the node -------------------------------------------------------------------------------


class BcoinError(RuntimeError):
    """bcoin exited, failed to start, or answered HTTP in a way that is not JSON-RPC."""


class BcoinRpcError(Exception):
    """A JSON-RPC error reply: ``code`` and ``message`` as bcoin sent them."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {code}: {message}")
        self.method = method
        self.code = code
        self.message = message


class BcoinNode:
    """One bcoin regtest full node (chain in memory) run as a subprocess.

    ``datadir`` is its ``--prefix`` and holds ``bcoin.log`` (its console output) for
    post-mortems. Ports default to free loopback ports; ``host`` is where its P2P server
    listens (and the address peers dial). With ``netns``, bcoin runs inside that namespace and
    RPC goes through ``netns.connect``. Use as a context manager, or call ``start``/``stop``.
    """

    def __init__(
        self,
        datadir: Path,
        *,
        install_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        http_port: int | None = None,
        wallet_port: int | None = None,
        api_key: str = "x",
        log_level: str = "info",
        workers: bool = False,
        wallet: bool = True,
        extra_args: Sequence[str] = (),
        netns: Namespace | None = None,
        name: str = "bcoin",
    ) -> None:
        self.datadir = Path(datadir)
        self.install_dir = install_dir
        self.host = host
        self._fixed_ports = port is not None or http_port is not None or wallet_port is not None
        self.port = port or free_port()
        self.http_port = http_port or free_port()
        self.wallet_port = wallet_port or free_port()
        self.api_key = api_key
        self.log_level = log_level
        self.workers = workers
        self.wallet = wallet
        self.extra_args = list(extra_args)
        self.netns = netns
        self.name = name
        self.rpc_host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.datadir / "bcoin.log"
        self._removed_nodes: list[str] = []
        self._banned: list[str] = []
        self._mining_address: str | None = None

    # -- process --------------------------------------------------------------------------

    def command(self) -> list[str]:
        d = ensure_bcoin(self.install_dir)
        return [
            _tool("node"),
            f"--require={NO_EXTERNAL_DNS}",
            str(d / ENTRY),
            "--network=regtest",
            "--memory=true",
            f"--prefix={self.datadir}",
            f"--host={self.host}",
            f"--port={self.port}",
            "--listen=true",
            f"--http-host={self.rpc_host}",
            f"--http-port={self.http_port}",
            f"--wallet-http-host={self.rpc_host}",
            f"--wallet-http-port={self.wallet_port}",
            f"--api-key={self.api_key}",
            f"--log-level={self.log_level}",
            f"--workers={str(self.workers).lower()}",
            # Regtest's seed list is 127.0.0.1:48444, which may be anyone's node here: no seeds.
            "--seeds=,",
            *(["--no-wallet=true"] if not self.wallet else []),
            *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> BcoinNode:
        """Start bcoin and wait until its RPC (and wallet, if any) answers."""
        for attempt in range(3):
            try:
                self._start_once(timeout)
                return self
            except BcoinError as e:
                # A free port can be taken between free_port() and bcoin's bind: retry anew.
                if self._fixed_ports or "EADDRINUSE" not in str(e) or attempt == 2:
                    raise
                self.port, self.http_port, self.wallet_port = free_port(), free_port(), free_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BCOIN_")}
        with open(self.log_path, "ab") as log:
            log.write(f"=== {' '.join(cmd)}\n".encode())
            log.flush()
            argv = [*self.netns.prefix(), *cmd] if self.netns else cmd
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.datadir,
                env=env,
                start_new_session=True,  # its worker processes share its group: kill() ends all
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if not self.running:
                raise BcoinError(f"{self.name} exited with {self.returncode}:\n{self.log_tail()}")
            try:
                self.rpc("getblockcount", timeout=5)
                if self.wallet:
                    self.wallet_http("GET", "/wallet/primary", timeout=5)
                return
            except (OSError, BcoinError, http.client.HTTPException) as e:
                last = e
            time.sleep(0.05)
        raise BcoinError(
            f"{self.name} did not answer RPC within {timeout:g}s (last: {last!r}):\n"
            f"{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 30.0) -> int:
        """RPC ``stop``, then SIGTERM, then SIGKILL, each after a timeout; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, BcoinError, BcoinRpcError, http.client.HTTPException):
                self.rpc("stop", timeout=5)
            for sig, wait in ((None, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 30.0)):
                if sig is not None:
                    self._signal(sig)
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL bcoin and its workers at once (a crash, as far as peers can tell)."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal(signal.SIGKILL)
            self.proc.wait(30)

    def _signal(self, sig: int) -> None:
        """Signal bcoin's process group (bcoin and its workers), only while bcoin is alive.

        Workers exit by themselves when bcoin does, so a group whose leader is gone is left
        alone (its id could in principle belong to someone else by then).
        """
        assert self.proc is not None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def __enter__(self) -> BcoinNode:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            print(
                f"--- {self.name} log tail ({self.log_path}) ---\n{self.log_tail()}",
                file=sys.stderr,
            )
        try:
            self.stop()
        except BaseException:
            self.kill()
            raise

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    # -- HTTP and JSON-RPC ----------------------------------------------------------------

    def _http(
        self, port: int, method: str, path: str, body: Any, timeout: float
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.rpc_host, port, timeout=timeout)
        if self.netns is not None:
            conn.sock = self.netns.connect(self.rpc_host, port, timeout)
        auth = base64.b64encode(f"x:{self.api_key}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        try:
            conn.request(method, path, data, headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            raise BcoinError(
                f"{method} {path}: HTTP {resp.status}, not JSON: {raw[:200]!r}"
            ) from None

    def _rpc(self, port: int, method: str, params: Sequence[Any], timeout: float) -> Any:
        status, reply = self._http(
            port, "POST", "/", {"method": method, "params": list(params), "id": 1}, timeout
        )
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise BcoinError(f"{method}: HTTP {status}: {reply!r}")
        err = reply.get("error")
        if err:
            raise BcoinRpcError(method, int(err.get("code", 0)), str(err.get("message")))
        return reply.get("result")

    def rpc(self, method: str, *params: Any, timeout: float = 120.0) -> Any:
        """A call to the node's JSON-RPC; raises ``BcoinRpcError`` for an error reply."""
        return self._rpc(self.http_port, method, params, timeout)

    def wallet_rpc(self, method: str, *params: Any, timeout: float = 120.0) -> Any:
        """A call to the wallet's JSON-RPC (wallet ``primary``), on the wallet's own port."""
        return self._rpc(self.wallet_port, method, params, timeout)

    def wallet_http(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        """The wallet's REST API (``/wallet/primary/...``); raises ``BcoinError`` on non-2xx."""
        status, reply = self._http(self.wallet_port, method, path, body, timeout)
        if not 200 <= status < 300:
            raise BcoinError(f"wallet {method} {path}: HTTP {status}: {reply!r}")
        return reply

    # -- chain ----------------------------------------------------------------------------

    def getblockcount(self) -> int:
        return int(self.rpc("getblockcount"))

    def getbestblockhash(self) -> str:
        return str(self.rpc("getbestblockhash"))

    def getblockhash(self, height: int) -> str:
        return str(self.rpc("getblockhash", height))

    def getblock_raw(self, block_hash: str) -> bytes:
        return bytes.fromhex(self.rpc("getblock", block_hash, False))

    def segwit_status(self) -> str:
        """bcoin's BIP9 state of segwit for the next block (``defined`` ... ``active``)."""
        return str(self.rpc("getblockchaininfo")["bip9_softforks"]["segwit"]["status"])

    def mining_address(self) -> str:
        """Where ``mine`` pays by default: a wallet address, else P2WSH(OP_TRUE)."""
        if self._mining_address is None:
            if self.wallet:
                self._mining_address = self.new_address()
            else:
                self._mining_address = to_bcoin_address(P2WSH_OP_TRUE)
        return self._mining_address

    def mine(self, n: int, address: str | bytes | None = None) -> list[str]:
        """Mine ``n`` blocks (``generatetoaddress``) paying ``address`` (any form, or a script)."""
        addr = self.mining_address() if address is None else to_bcoin_address(address)
        return [str(h) for h in self.rpc("generatetoaddress", n, addr)]

    def wait_for_height(self, height: int, timeout: float = 60.0) -> None:
        wait_until(
            lambda: self.getblockcount() >= height,
            timeout,
            what=f"{self.name} to reach height {height}",
        )

    def wait_for_tip(self, block_hash: str, timeout: float = 60.0) -> None:
        wait_until(
            lambda: self.getbestblockhash() == block_hash,
            timeout,
            what=f"{self.name} to have tip {block_hash}",
        )

    # -- peers ----------------------------------------------------------------------------

    @staticmethod
    def _hostport(host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def add_peer(self, host: str, port: int) -> None:
        """Connect out to ``host:port`` and keep reconnecting (``addnode HOST:PORT add``)."""
        self.rpc("addnode", self._hostport(host, port), "add")

    def remove_peer(self, host: str, port: int) -> None:
        """Forget an added peer and drop the connection to it."""
        hp = self._hostport(host, port)
        self.rpc("addnode", hp, "remove")
        self.rpc("disconnectnode", hp)

    def peers(self) -> list[dict[str, Any]]:
        return list(self.rpc("getpeerinfo"))

    def wait_for_peers(self, n: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Until at least ``n`` peers have sent their ``version``; returns those peers."""

        def enough() -> list[dict[str, Any]] | None:
            done = [p for p in self.peers() if int(p.get("version") or 0) > 0]
            return done if len(done) >= n else None

        result: list[dict[str, Any]] = wait_until(
            enough, timeout, what=f"{self.name} to have {n} peer(s)"
        )
        return result

    def set_network_active(self, active: bool) -> None:
        """Emulate Core's ``setnetworkactive``, which bcoin 1.0.2 lacks.

        Off: every added node is removed (bcoin would redial it even when banned) and every
        peer's IP is banned, which drops the connections and refuses new ones from those IPs
        (on loopback that is every local peer). On: the bans are lifted and the removed nodes
        added again.
        """
        if not active:
            for peer in self.peers():
                addr = str(peer["addr"])
                if not peer.get("inbound"):
                    self.rpc("addnode", addr, "remove")
                    if addr not in self._removed_nodes:
                        self._removed_nodes.append(addr)
                ip_ = addr.rsplit(":", 1)[0].strip("[]")
                self.rpc("setban", addr, "add")
                if ip_ not in self._banned:
                    self._banned.append(ip_)
                self.rpc("disconnectnode", addr)
        else:
            self.rpc("clearbanned")
            self._banned.clear()
            for addr in self._removed_nodes:
                self.rpc("addnode", addr, "add")
            self._removed_nodes.clear()

    # -- wallet ---------------------------------------------------------------------------

    def new_address(self, wallet: str = "primary", *, nested: bool = False) -> str:
        """A fresh receiving address of ``wallet`` in bcoin-regtest form.

        ``nested`` gives P2SH-wrapped P2WPKH (the wallet must be a witness wallet).
        """
        kind = "nested" if nested else "address"
        body = {"account": "default"}
        return str(self.wallet_http("POST", f"/wallet/{wallet}/{kind}", body)["address"])

    def create_wallet(self, wallet: str, *, witness: bool) -> None:
        """A new wallet: a ``witness`` one receives on P2WPKH (and nested P2SH) addresses."""
        self.wallet_http("PUT", f"/wallet/{wallet}", {"witness": witness})

    def send(self, outputs: dict[str, int], wallet: str = "primary", timeout: float = 10.0) -> str:
        """Pay ``outputs`` (bcoin address -> satoshis) from ``wallet``; returns the txid.

        Goes through the wallet's REST ``send``, which chooses among all of the wallet's coins
        (unconfirmed change included), and checks that the mempool took the transaction (the
        wallet reports success either way). Its RPC ``sendmany`` selects by account, and bcoin
        1.0.2's account index goes stale once a block confirms transactions that spend each
        other ("assert(credit)"); with ``sendmany``'s default minconf of 1 it even finds no
        funds at all.
        """
        body = {"outputs": [{"address": a, "value": v} for a, v in outputs.items()]}
        txid = str(self.wallet_http("POST", f"/wallet/{wallet}/send", body)["hash"])
        # The wallet answers before the mempool (or a worker process) has checked the
        # transaction, and with the txid even when the mempool refuses it.
        try:
            wait_until(
                lambda: self.rpc("getmempoolentry", txid),
                timeout,
                interval=0.005,
                what=f"{txid} in {self.name}'s mempool",
            )
        except TimeoutError:
            raise BcoinError(
                f"{self.name}'s wallet {wallet} made {txid}, but it is not in the mempool:\n"
                f"{self.log_tail(12)}"
            ) from None
        return txid

    def wallet_tx_height(self, txid: str, wallet: str = "primary") -> int:
        """The height the wallet has recorded for one of its transactions (-1: unconfirmed)."""
        return int(self.wallet_http("GET", f"/wallet/{wallet}/tx/{txid}")["height"])

    def wait_wallet_synced(self, block_hash: str, timeout: float = 60.0) -> None:
        """Until the wallets have processed ``block_hash``, whose coinbase must pay ``primary``.

        The wallet follows the chain asynchronously; coin selection reads the wallet's height
        (for coinbase maturity), so a payment right after mining can miss coins.
        """
        block = self.rpc("getblock", block_hash)
        coinbase, height = block["tx"][0], int(block["height"])

        def seen() -> bool:
            try:
                return self.wallet_tx_height(coinbase) >= height
            except BcoinError:
                return False

        wait_until(seen, timeout, interval=0.01, what=f"{self.name}'s wallet to see block {height}")


# -- a chain with transactions ------------------------------------------------------------


@dataclasses.dataclass
class ChainStats:
    """What ``make_chain_with_txs`` made: txids sent, and which spent witness coins."""

    txids: list[str] = dataclasses.field(default_factory=list)
    witness_spends: list[str] = dataclasses.field(default_factory=list)
    segwit_height: int | None = None
    """The first block of segwit's active period (transactions with witnesses follow it)."""


def make_chain_with_txs(
    node: BcoinNode,
    blocks: int = 520,
    txs_per_block: int = 2,
    *,
    seed: int = 1,
    stats: ChainStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Have ``node`` (with its wallet) mine ``blocks`` more blocks carrying wallet payments.

    The first up to 101 blocks pay the legacy wallet and make its first coinbases mature; each
    later block carries ``txs_per_block`` payments made by bcoin's wallet (``BcoinNode.send``)
    just before it is mined: from the legacy wallet ``primary`` to P2PKH, P2WPKH and P2SH-P2WPKH
    addresses of ``primary`` and of the witness wallet ``witness`` and, from the block after
    segwit's activation (432 on a fresh chain), every other one from ``witness``, so those
    transactions carry witnesses. Returns the new blocks' hashes in height order; ``stats``, if
    given, is filled in. Costs about 25 ms of bcoin's time per payment (its wallet signs in
    JavaScript): 520 blocks at 2 per block take 30-70 s on a shared 2-core machine.
    """
    assert node.wallet, "make_chain_with_txs needs bcoin's wallet"
    st = stats if stats is not None else ChainStats()
    rng = random.Random(seed)
    with contextlib.suppress(BcoinError):  # made by an earlier call
        node.create_wallet(WITNESS_WALLET, witness=True)
    pay_to = node.mining_address()
    legacy = [node.new_address() for _ in range(3)]
    segwit = [node.new_address(WITNESS_WALLET) for _ in range(3)]
    nested = [node.new_address(WITNESS_WALLET, nested=True) for _ in range(2)]
    targets = legacy + segwit + nested
    # bcoin's getblockchaininfo calls segwit active one block before its mempool does: it
    # gives the state of the next block, the mempool wants the tip's own state to be active.
    segwit_from = node.getblockcount() + 1 if node.segwit_status() == "active" else None

    hashes: list[str] = []
    start = node.getblockcount()
    first = min(blocks, max(0, COINBASE_MATURITY + 1 - start))
    if first:
        hashes += node.mine(first, pay_to)
        node.wait_wallet_synced(hashes[-1])
    while len(hashes) < blocks:
        tip = start + len(hashes)
        if segwit_from is None and node.segwit_status() == "active":
            segwit_from = tip + 1
            st.segwit_height = segwit_from
        segwit_active = segwit_from is not None and tip >= segwit_from
        for i in range(txs_per_block):
            n_out = rng.randint(1, 3)
            outs = {a: rng.randrange(1_000_000, 50_000_000) for a in rng.sample(targets, n_out)}
            txid = None
            if segwit_active and i % 2 == 1:
                try:
                    txid = node.send(outs, WITNESS_WALLET)
                    st.witness_spends.append(txid)
                except BcoinError as e:
                    if "Not enough funds" not in str(e):
                        raise
            if txid is None:
                txid = node.send(outs)
            st.txids.append(txid)
        hashes += node.mine(1, pay_to)
        node.wait_wallet_synced(hashes[-1])
        if progress is not None:
            progress(start + len(hashes))
    return hashes


def p2p_connect(node: BcoinNode, timeout: float = 10.0) -> socket.socket:
    """A raw TCP connection to ``node``'s P2P port (for a byte-level test peer)."""
    if node.netns is not None:
        return node.netns.connect(node.host, node.port, timeout)
    return socket.create_connection((node.host, node.port), timeout)
