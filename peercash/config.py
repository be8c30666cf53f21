"""The node's configuration: command-line options over the config file over defaults.

The config file is Core's format: ``key=value`` lines, ``#`` comments, ``[section]`` headers for
per-network settings (``[main]``, ``[test]`` or ``[testnet]``, ``[testnet4]``, ``[signet]``,
``[regtest]``) and ``section.key=value`` as a shorthand. ``nokey=1`` negates a boolean. It lives in
the base data directory as ``peercash.conf`` unless ``--conf`` names another (a relative name is
taken relative to the data directory).

Precedence follows Core: the command line wins; in the file, the network's section wins over the
top of the file, and for a single-valued key the *first* value in the file is used. List keys
(``addnode``, ``connect``, ``seednode``, ``bind``, ``externalip``, ``rpcauth``, ``rpcallowip``,
``rpcbind``, ``debug``) collect values from the command line and the file. As in Core, ``port``,
``rpcport``, ``rpcbind``, ``bind``, ``connect`` and ``addnode`` at the top of the file apply to
mainnet only; other networks take them from their section (a warning says so). Core's parameter
interaction holds: ``bind`` implies ``listen``; ``connect`` and ``proxy`` imply ``nolisten``
unless ``listen`` is given; ``connect`` implies ``nodnsseed`` (and ``connect=0`` means no
automatic connections at all).

Every bad value raises ``ConfigError`` with a message meant for the user. Pure: reads one file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peercash.log import UnknownCategoryError, expand_categories
from peercash.mempool import policy
from peercash.p2p.permissions import PermissionParseError, parse_whitebind, parse_whitelist

CONF_FILENAME = "peercash.conf"
NETWORKS = ("main", "testnet", "testnet4", "signet", "regtest")
DEFAULT_PORTS = {"main": (8333, 8332), "testnet": (18333, 18332), "testnet4": (48333, 48332),
                 "signet": (38333, 38332), "regtest": (18444, 18443)}  # fmt: skip
# Section names a network reads (Core calls testnet's section [test]).
SECTIONS = {"main": ("main",), "testnet": ("test", "testnet"), "testnet4": ("testnet4",),
            "signet": ("signet",), "regtest": ("regtest",)}  # fmt: skip
_ALL_SECTIONS = frozenset(s for names in SECTIONS.values() for s in names)

LIST_KEYS = frozenset({"rpcbind", "rpcallowip", "rpcauth", "connect", "addnode", "debug", "bind",
                       "seednode", "externalip", "whitelist", "whitebind", "wallet"})  # fmt: skip
BOOL_KEYS = frozenset(
    {
        "listen",
        "txindex",
        "rest",
        "printtoconsole",
        "dnsseed",
        "fixedseeds",
        "reindex",
        "reindex-chainstate",
        "persistmempool",
        "datacarrier",
        "permitbaremultisig",
        "acceptnonstdtxn",
        "blocksonly",
        "acceptstalefeeestimates",
        "whitelistrelay",
        "whitelistforcerelay",
        "disablewallet",
        "walletrbf",
    }
)
INT_KEYS = frozenset({"port", "rpcport", "dbcache", "par", "rpcservertimeout", "rpcthreads",
                      "rpcworkqueue", "flushinterval", "keypool", "maxconnections", "peertimeout",
                      "maxsendbuffer", "maxreceivebuffer", "maxmempool", "mempoolexpiry",
                      "datacarriersize", "limitclustercount", "limitclustersize"})  # fmt: skip
STR_KEYS = frozenset({"network", "datadir", "rpcuser", "rpcpassword", "assumevalid", "conf",
                      "proxy", "minrelaytxfee", "incrementalrelayfee", "fallbackfee",
                      "mintxfee", "maxtxfee"})  # fmt: skip
NETWORK_ONLY = frozenset({"port", "rpcport", "rpcbind", "connect", "addnode", "bind"})
# Core's ways of choosing a network in the file: chain=X, or regtest=1 and friends.
_NETWORK_FLAGS = {"regtest": "regtest", "testnet": "testnet", "testnet4": "testnet4",
                  "signet": "signet"}  # fmt: skip
KNOWN_KEYS = LIST_KEYS | BOOL_KEYS | INT_KEYS | STR_KEYS | {"chain"} | set(_NETWORK_FLAGS)

DEFAULT_DBCACHE_MB = 450
MIN_DBCACHE_MB = 4
MAX_SCRIPT_WORKERS = 15
DEFAULT_RPC_SERVER_TIMEOUT = 30  # seconds a client may take to send its request (Core's default)
DEFAULT_RPC_THREADS = 16  # Core's DEFAULT_HTTP_THREADS
DEFAULT_RPC_WORKQUEUE = 64  # Core's DEFAULT_HTTP_WORKQUEUE
DEFAULT_FLUSH_INTERVAL = 60  # seconds between UTXO set flushes (a crash loses at most this)
DEFAULT_MAX_CONNECTIONS = 125  # Core's DEFAULT_MAX_PEER_CONNECTIONS
DEFAULT_PEER_TIMEOUT = 60  # Core's DEFAULT_PEER_CONNECT_TIMEOUT (seconds)
DEFAULT_MAX_SEND_BUFFER_KB = 5000  # past this a peer that does not read is dropped
DEFAULT_MAX_RECEIVE_BUFFER_KB = 5000  # Core's DEFAULT_MAXRECEIVEBUFFER
# -maxmempool may not be below 40 clusters of the largest size (Core's check, in MB rounded up).
MIN_MAX_MEMPOOL_MB = -(-policy.DEFAULT_CLUSTER_SIZE_LIMIT_KVB * 1000 * 40 // 1_000_000)
MAX_CLUSTER_COUNT_LIMIT = 64  # Core 31: the cluster linearisation works on at most 64 transactions
_MAX_FEE_RATE_SATS = 21_000_000 * 100_000_000


class ConfigError(Exception):
    """A configuration value or file that the node cannot use; the message is for the user."""


@dataclass(frozen=True)
class Config:
    """Everything the node was told to do. Build it with ``load_config``."""

    network: str = "main"
    datadir: Path = field(default_factory=lambda: Path.home() / ".peercash")
    conf_file: Path | None = None
    port: int = 8333
    rpcport: int = 8332
    rpcbind: tuple[str, ...] = ()
    rpcallowip: tuple[str, ...] = ()
    rpcuser: str | None = None
    rpcpassword: str | None = None
    rpcauth: tuple[str, ...] = ()
    connect: tuple[str, ...] = ()
    addnode: tuple[str, ...] = ()
    listen: bool = True
    dbcache: int = DEFAULT_DBCACHE_MB
    txindex: bool = False
    assumevalid: str | None = None
    debug: tuple[str, ...] = ()
    rest: bool = False
    par: int = 0
    printtoconsole: bool = True
    rpcservertimeout: int = DEFAULT_RPC_SERVER_TIMEOUT
    rpcthreads: int = DEFAULT_RPC_THREADS
    rpcworkqueue: int = DEFAULT_RPC_WORKQUEUE
    flushinterval: int = DEFAULT_FLUSH_INTERVAL
    reindex: bool = False  # rebuild the block index and the UTXO set from the block files
    reindex_chainstate: bool = False  # rebuild the UTXO set from the stored blocks
    bind: tuple[str, ...] = ()
    seednode: tuple[str, ...] = ()
    externalip: tuple[str, ...] = ()
    maxconnections: int = DEFAULT_MAX_CONNECTIONS
    proxy: str | None = None
    dnsseed: bool = True
    fixedseeds: bool = True
    peertimeout: int = DEFAULT_PEER_TIMEOUT
    maxsendbuffer: int = DEFAULT_MAX_SEND_BUFFER_KB
    """KB (1,000 bytes), as Core's option; a peer with more unsent is disconnected."""
    maxreceivebuffer: int = DEFAULT_MAX_RECEIVE_BUFFER_KB
    """KB of received messages waiting for processing before we stop reading from a peer."""
    maxmempool: int = policy.DEFAULT_MAX_MEMPOOL_SIZE_MB
    """MB (1,000,000 bytes) of memory the pool may use before it evicts its worst chunks."""
    mempoolexpiry: int = policy.DEFAULT_MEMPOOL_EXPIRY_HOURS
    """Hours a transaction may wait in the pool."""
    limitclustercount: int = policy.DEFAULT_CLUSTER_LIMIT
    """Most transactions in one mempool cluster (Core 31's ``-limitclustercount``)."""
    limitclustersize: int = policy.DEFAULT_CLUSTER_SIZE_LIMIT_KVB
    """Largest mempool cluster in kvB (``-limitclustersize``)."""
    minrelaytxfee: int = policy.DEFAULT_MIN_RELAY_TX_FEE
    """sat/kvB (given in BTC/kvB, as Core's option)."""
    incrementalrelayfee: int = policy.DEFAULT_INCREMENTAL_RELAY_FEE
    """sat/kvB (given in BTC/kvB)."""
    persistmempool: bool = True
    """Load ``mempool.dat`` at start and save it at a clean shutdown."""
    datacarrier: bool = policy.DEFAULT_ACCEPT_DATACARRIER
    datacarriersize: int = policy.MAX_OP_RETURN_RELAY
    permitbaremultisig: bool = policy.DEFAULT_PERMIT_BAREMULTISIG
    acceptnonstdtxn: bool = False
    """Relay and mine non-standard transactions (test networks only, as Core)."""
    blocksonly: bool = False
    disablewallet: bool = False
    """Do not load the wallet and disable the wallet RPCs."""
    wallet: tuple[str, ...] = ()
    """Wallets to load at start (``-wallet``, repeatable), besides ``settings.json``'s."""
    keypool: int = 1000
    """Scripts each active ranged descriptor keeps derived past its next index."""
    fallbackfee: int = 0
    """sat/kvB the wallet pays when fee estimation has no answer (0: refuse, as Core)."""
    mintxfee: int = 100
    """sat/kvB: the wallet's lowest feerate."""
    maxtxfee: int = 10_000_000
    """Satoshis: the most fee one wallet transaction may pay (0.1 BTC)."""
    walletrbf: bool = True
    """The wallet's transactions signal BIP125 replaceability by default."""
    """Core's ``-blocksonly``: no transaction relay with peers (RPC submissions still count)."""
    acceptstalefeeestimates: bool = False
    """Core's ``-acceptstalefeeestimates`` (regtest only): use ``fee_estimates.dat`` even when it
    is older than 60 hours."""
    whitelist: tuple[str, ...] = ()
    """``[permissions@]<IP|CIDR>``: peers in the range get the permissions
    (``peercash.p2p.permissions``)."""
    whitebind: tuple[str, ...] = ()
    """``[permissions@]addr:port``: listen there too; who connects there gets the permissions."""
    whitelistrelay: bool = True
    """Implicit whitelist permissions include ``relay`` (Core: off with ``-blocksonly``)."""
    whitelistforcerelay: bool = False
    """Implicit whitelist permissions include ``forcerelay``."""
    warnings: tuple[str, ...] = ()

    @property
    def max_datacarrier_bytes(self) -> int | None:
        """The pool's OP_RETURN budget: None when ``-datacarrier=0``."""
        return self.datacarriersize if self.datacarrier else None

    @property
    def network_datadir(self) -> Path:
        """Where this network's files live (Core's sub-folders: testnet3, regtest, …)."""
        sub = {"main": "", "testnet": "testnet3"}.get(self.network, self.network)
        return self.datadir / sub if sub else self.datadir

    def assume_valid_hash(self, network_default: bytes | None) -> bytes | None:
        """The ``assumevalid`` block in wire order: the network's default when not given, None
        when ``0`` (check every signature)."""
        if self.assumevalid is None:
            return network_default
        if self.assumevalid == "0":
            return None
        return bytes.fromhex(self.assumevalid)[::-1]

    @property
    def debug_categories(self) -> frozenset[str]:
        return frozenset(expand_categories(self.debug))

    def rpcbind_addresses(self) -> list[tuple[str, int]]:
        """(host, port) pairs to listen on for RPC, with Core's rules: loopback only unless
        both ``rpcallowip`` and ``rpcbind`` are given; all interfaces when only ``rpcallowip``."""
        if not self.rpcallowip:
            return [("127.0.0.1", self.rpcport), ("::1", self.rpcport)]
        if not self.rpcbind:
            return [("0.0.0.0", self.rpcport), ("::", self.rpcport)]
        return [split_host_port(b, self.rpcport) for b in self.rpcbind]

    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Client subnets allowed to use RPC: loopback always, plus ``rpcallowip``."""
        nets = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
        nets.extend(parse_subnet(s) for s in self.rpcallowip)
        return nets


# -- values ---------------------------------------------------------------------------------------


def parse_bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("", "1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"Invalid value for -{key}: '{value}' (expected 0 or 1)")


def parse_int(key: str, value: str) -> int:
    try:
        return int(value.strip(), 10)
    except ValueError:
        raise ConfigError(f"Invalid value for -{key}: '{value}' (expected a number)") from None


def parse_fee_rate(key: str, value: str | int) -> int:
    """A BTC/kvB amount (Core's ``ParseMoney``) as sat/kvB; raises ``ConfigError``."""
    from decimal import Decimal, InvalidOperation

    text = str(value).strip()
    try:
        if not re.fullmatch(r"[0-9]*\.?[0-9]*", text) or text in ("", "."):
            raise InvalidOperation
        sats = Decimal(text).scaleb(8)
    except InvalidOperation:
        raise ConfigError(f"Invalid amount for -{key}=<amount>: '{value}'") from None
    if sats != sats.to_integral_value() or sats > _MAX_FEE_RATE_SATS:
        raise ConfigError(f"Invalid amount for -{key}=<amount>: '{value}'")
    return int(sats)


def parse_port(key: str, value: str | int) -> int:
    try:
        port = int(str(value).strip(), 10)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"Invalid port specified in -{key}: '{value}'")
    return port


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; a bare IPv6 address keeps the
    default port. Raises ``ConfigError`` for a bad port."""
    t = text.strip()
    if not t:
        raise ConfigError("empty host")
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ConfigError(f"Invalid address '{text}': missing ]")
        host, rest = t[1:end], t[end + 1 :]
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ConfigError(f"Invalid address '{text}'")
        return host, parse_port_in(text, rest[1:])
    if t.count(":") == 1:
        host, port = t.split(":")
        return host, parse_port_in(text, port)
    return t, default_port


def parse_port_in(text: str, port: str) -> int:
    try:
        p = int(port, 10)
    except ValueError:
        p = -1
    if not 1 <= p <= 65535:
        raise ConfigError(f"Invalid port in '{text}'")
    return p


_SUBNET_HELP = (
    "Valid are a single IP (e.g. 1.2.3.4), a network/netmask (e.g. 1.2.3.4/255.255.255.0) "
    "or a network/CIDR (e.g. 1.2.3.4/24)."
)


def parse_subnet(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(
            f"Invalid -rpcallowip subnet specification: {text}. {_SUBNET_HELP}"
        ) from None


_RPCAUTH = re.compile(r"^([^:$]+):([^:$]*)\$([0-9a-fA-F]{64})$")


def parse_rpcauth(text: str) -> tuple[str, str, str]:
    """``user:salt$hmac`` (share/rpcauth's output) -> (user, salt, lower-case hex HMAC)."""
    m = _RPCAUTH.match(text.strip())
    if not m:
        raise ConfigError(
            f"Invalid -rpcauth argument '{text}': expected user:salt$hash "
            "(hash = 64 hex digits of HMAC-SHA256(key=salt, message=password))"
        )
    return m.group(1), m.group(2), m.group(3).lower()


def check_assumevalid(value: str) -> str:
    v = value.strip()
    if v in ("0", ""):
        return "0"
    if len(v) != 64 or not all(c in "0123456789abcdefABCDEF" for c in v):
        raise ConfigError(
            f"Invalid -assumevalid '{value}': expected a 64-hex-digit block hash or 0"
        )
    return v.lower()


# -- the file -------------------------------------------------------------------------------------


@dataclass
class ConfFile:
    """A parsed config file: ``(key, value)`` lines of the top and of each section, in order."""

    path: Path | None = None
    top: list[tuple[str, str]] = field(default_factory=list)
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def parse_conf_text(text: str, path: Path | None = None) -> ConfFile:
    """Parse Core's format; raises ``ConfigError`` naming the line for anything malformed."""
    conf = ConfFile(path=path)
    where = str(path) if path else "config"
    section: str | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw
        if "#" in line:
            before = line.split("#", 1)[0]
            if "=" in before and before.split("=", 1)[0].strip() == "rpcpassword":
                raise ConfigError(
                    f"Error reading {where}: parse error on line {n}, using # in rpcpassword "
                    "can be ambiguous and should be avoided"
                )
            line = before
        line = line.strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section not in _ALL_SECTIONS:
                conf.warnings.append(f"{where}:{n}: unknown section [{section}] ignored")
            continue
        if "=" not in line:
            hint = ""
            if line.startswith("no"):
                hint = f", if you intended to specify a negated option, use {line}=1 instead"
            raise ConfigError(f"Error reading {where}: parse error on line {n}: {line}{hint}")
        key, value = (s.strip() for s in line.split("=", 1))
        target_section = section
        if "." in key:
            prefix, key = key.split(".", 1)
            target_section = prefix
        if key.startswith("-"):
            raise ConfigError(f"Error reading {where}: line {n}: keys are written without dashes")
        if target_section is None:
            conf.top.append((key, value))
        else:
            conf.sections.setdefault(target_section, []).append((key, value))
    return conf


def read_conf_file(path: Path, *, required: bool) -> ConfFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"specified config file {path} could not be opened") from None
        return ConfFile()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    return parse_conf_text(text, path)


def _normalize_key(key: str, value: str) -> tuple[str, str]:
    """``nolisten=1`` -> ``listen=0``."""
    if key.startswith("no") and key[2:] in BOOL_KEYS:
        return key[2:], "0" if parse_bool(key, value) else "1"
    return key, value


def _network_from_file(conf: ConfFile) -> str | None:
    chosen: list[str] = []
    for key, value in conf.top:
        if key in ("chain", "network"):
            chosen.append(value.strip())
        elif key in _NETWORK_FLAGS and parse_bool(key, value):
            chosen.append(_NETWORK_FLAGS[key])
    names = set(chosen)
    if len(names) > 1:
        raise ConfigError(
            "Invalid combination of -regtest, -signet, -testnet, -testnet4 and -chain/-network "
            f"in {conf.path}. Can use at most one."
        )
    return chosen[0] if chosen else None


def _check_network(name: str) -> str:
    n = {"test": "testnet"}.get(name.strip(), name.strip())
    if n not in NETWORKS:
        raise ConfigError(f"Invalid network '{name}': choose one of {', '.join(NETWORKS)}")
    return n


# -- putting it together --------------------------------------------------------------------------


def load_config(options: Mapping[str, Any] | None = None) -> Config:
    """Build the configuration from command-line ``options`` (key -> value; ``None`` or an empty
    list means "not given") and the config file they point at."""
    opts = {k: v for k, v in (options or {}).items() if v is not None and v != [] and v != ()}
    unknown = set(opts) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"unknown option -{sorted(unknown)[0]}")

    datadir = Path(opts["datadir"]).expanduser() if "datadir" in opts else None
    base = datadir if datadir is not None else Path.home() / ".peercash"
    if "conf" in opts:
        conf_path = Path(opts["conf"]).expanduser()
        if not conf_path.is_absolute():
            conf_path = base / conf_path
        conf = read_conf_file(conf_path, required=True)
    else:
        conf_path = base / CONF_FILENAME
        conf = read_conf_file(conf_path, required=False)
    if datadir is not None and not datadir.is_dir():
        raise ConfigError(f'Specified data directory "{datadir}" does not exist.')

    warnings = list(conf.warnings)
    network = _check_network(str(opts["network"])) if "network" in opts else None
    if network is None:
        from_file = _network_from_file(conf)
        network = _check_network(from_file) if from_file else "main"

    # Values from the file, in precedence order: the network's section, then the top (for
    # network-only keys, the top applies to mainnet alone).
    file_values: dict[str, list[str]] = {}
    for name in SECTIONS[network]:
        for key, value in conf.sections.get(name, []):
            key, value = _normalize_key(key, value)
            file_values.setdefault(key, []).append(value)
    for key, value in conf.top:
        key, value = _normalize_key(key, value)
        if key in ("chain", "network") or key in _NETWORK_FLAGS:
            continue
        if key in NETWORK_ONLY and network != "main":
            section = SECTIONS[network][0]
            warnings.append(
                f"Config setting for -{key} only applied on {network} network when in "
                f"[{section}] section."
            )
            continue
        file_values.setdefault(key, []).append(value)
    for key in sorted(set(file_values) - KNOWN_KEYS):
        warnings.append(f"Ignoring unknown configuration value {key}")
    if datadir is None and file_values.get("datadir"):
        datadir = Path(file_values["datadir"][0]).expanduser()
        if not datadir.is_dir():
            raise ConfigError(f'Specified data directory "{datadir}" does not exist.')
    if datadir is None:
        datadir = base

    def single(key: str) -> Any:
        if key in opts:
            return opts[key]
        values = file_values.get(key)
        return values[0] if values else None

    def many(key: str) -> tuple[str, ...]:
        given = opts.get(key, ())
        if isinstance(given, str):
            given = (given,)
        return tuple(str(v) for v in given) + tuple(file_values.get(key, ()))

    def boolean(key: str, default: bool) -> bool:
        v = single(key)
        if v is None:
            return default
        return v if isinstance(v, bool) else parse_bool(key, str(v))

    def integer(key: str, default: int) -> int:
        v = single(key)
        if v is None:
            return default
        return v if isinstance(v, int) and not isinstance(v, bool) else parse_int(key, str(v))

    default_port, default_rpcport = DEFAULT_PORTS[network]
    port = parse_port("port", single("port")) if single("port") is not None else default_port
    rpcport = (
        parse_port("rpcport", single("rpcport"))
        if single("rpcport") is not None
        else default_rpcport
    )
    dbcache = integer("dbcache", DEFAULT_DBCACHE_MB)
    if dbcache < MIN_DBCACHE_MB:
        raise ConfigError(f"-dbcache must be at least {MIN_DBCACHE_MB} (MiB), got {dbcache}")
    par = integer("par", 0)
    if par > MAX_SCRIPT_WORKERS:
        raise ConfigError(f"-par must be at most {MAX_SCRIPT_WORKERS}, got {par}")

    rpcservertimeout = integer("rpcservertimeout", DEFAULT_RPC_SERVER_TIMEOUT)
    if rpcservertimeout < 1:
        raise ConfigError(f"-rpcservertimeout must be at least 1 (seconds), got {rpcservertimeout}")
    rpcthreads = integer("rpcthreads", DEFAULT_RPC_THREADS)
    rpcworkqueue = integer("rpcworkqueue", DEFAULT_RPC_WORKQUEUE)
    # Core clamps both to at least 1.
    rpcthreads, rpcworkqueue = max(1, rpcthreads), max(1, rpcworkqueue)
    flushinterval = integer("flushinterval", DEFAULT_FLUSH_INTERVAL)
    keypool = max(integer("keypool", 1000), 1)
    if flushinterval < 1:
        raise ConfigError(f"-flushinterval must be at least 1 (seconds), got {flushinterval}")
    rpcallowip = many("rpcallowip")
    for s in rpcallowip:
        parse_subnet(s)
    rpcbind = many("rpcbind")
    for b in rpcbind:
        split_host_port(b, rpcport)
    if rpcbind and not rpcallowip:
        warnings.append(
            "Option -rpcbind was ignored because -rpcallowip was not specified, refusing to "
            "allow everyone to connect"
        )
    rpcauth = many("rpcauth")
    for a in rpcauth:
        parse_rpcauth(a)
    connect = many("connect")
    addnode = many("addnode")
    seednode = many("seednode")
    for peer in (*connect, *addnode, *seednode):
        if peer != "0":
            split_host_port(peer, port)
    bind = many("bind")
    for b in bind:
        split_host_port(b, port)
    externalip = many("externalip")
    whitelist = many("whitelist")
    whitebind = many("whitebind")
    try:
        for w in whitelist:
            parse_whitelist(w)
        for w in whitebind:
            parse_whitebind(w)
    except PermissionParseError as e:
        raise ConfigError(str(e)) from None
    proxy = single("proxy")
    if proxy is not None:
        proxy = str(proxy).strip()
        if proxy in ("", "0"):
            proxy = None
        else:
            try:
                split_host_port(proxy, 9050)
            except ConfigError:
                raise ConfigError(f"Invalid -proxy address or hostname: '{proxy}'") from None
    # Core's parameter interaction: -bind implies -listen; -connect and -proxy imply
    # -nolisten unless given; -connect implies -nodnsseed.
    if bind or whitebind:
        listen_default = True
    else:
        listen_default = not connect and proxy is None
    listen = boolean("listen", listen_default)
    if (bind or whitebind) and not listen:
        raise ConfigError("Cannot set -bind or -whitebind together with -listen=0")
    blocksonly = boolean("blocksonly", False)
    whitelistforcerelay = boolean("whitelistforcerelay", False)
    # Core's parameter interaction: -blocksonly -> -whitelistrelay=0, then -whitelistforcerelay
    # -> -whitelistrelay=1, each only when -whitelistrelay was not given.
    whitelistrelay = boolean("whitelistrelay", not blocksonly)
    maxconnections = max(integer("maxconnections", DEFAULT_MAX_CONNECTIONS), 0)
    peertimeout = integer("peertimeout", DEFAULT_PEER_TIMEOUT)
    if peertimeout <= 0:
        raise ConfigError("peertimeout must be a positive integer.")
    maxsendbuffer = integer("maxsendbuffer", DEFAULT_MAX_SEND_BUFFER_KB)
    maxreceivebuffer = integer("maxreceivebuffer", DEFAULT_MAX_RECEIVE_BUFFER_KB)
    if maxsendbuffer < 1 or maxreceivebuffer < 1:
        raise ConfigError("-maxsendbuffer and -maxreceivebuffer must be at least 1 (KB)")
    debug = many("debug")
    try:
        expand_categories(debug)
    except UnknownCategoryError as e:
        raise ConfigError(f"Unsupported logging category -debug={e.category}.") from None
    assumevalid = single("assumevalid")
    if assumevalid is not None:
        assumevalid = check_assumevalid(str(assumevalid))
    limitclustercount = integer("limitclustercount", policy.DEFAULT_CLUSTER_LIMIT)
    if limitclustercount > MAX_CLUSTER_COUNT_LIMIT:
        raise ConfigError(
            f"limitclustercount must be less than or equal to {MAX_CLUSTER_COUNT_LIMIT}"
        )
    limitclustersize = integer("limitclustersize", policy.DEFAULT_CLUSTER_SIZE_LIMIT_KVB)
    maxmempool = integer("maxmempool", policy.DEFAULT_MAX_MEMPOOL_SIZE_MB)
    # Core: at least 40 clusters of the largest size (in MB, rounded up).
    min_mb = -(-max(limitclustersize, 0) * 1000 * 40 // 1_000_000)
    if maxmempool < min_mb:
        raise ConfigError(f"-maxmempool must be at least {min_mb} MB")
    mempoolexpiry = integer("mempoolexpiry", policy.DEFAULT_MEMPOOL_EXPIRY_HOURS)
    if mempoolexpiry < 0:
        raise ConfigError("-mempoolexpiry must not be negative")

    def fee_rate(key: str, default: int) -> int:
        v = single(key)
        return default if v is None else parse_fee_rate(key, v)

    minrelaytxfee = fee_rate("minrelaytxfee", policy.DEFAULT_MIN_RELAY_TX_FEE)
    incrementalrelayfee = fee_rate("incrementalrelayfee", policy.DEFAULT_INCREMENTAL_RELAY_FEE)
    datacarriersize = integer("datacarriersize", policy.MAX_OP_RETURN_RELAY)
    if datacarriersize < 0:
        raise ConfigError("-datacarriersize must not be negative")
    acceptnonstdtxn = boolean("acceptnonstdtxn", False)
    if acceptnonstdtxn and network == "main":
        raise ConfigError("acceptnonstdtxn is not currently supported for main chain")
    acceptstalefeeestimates = boolean("acceptstalefeeestimates", False)
    if acceptstalefeeestimates and network != "regtest":
        chain_name = {"testnet": "test"}.get(network, network)  # Core's chain type names
        raise ConfigError(f"acceptstalefeeestimates is not supported on {chain_name} chain.")
    rpcuser = single("rpcuser")
    rpcpassword = single("rpcpassword")
    if rpcuser is not None and ":" in str(rpcuser):
        raise ConfigError("-rpcuser must not contain ':'")

    return Config(
        network=network,
        datadir=datadir,
        conf_file=conf.path,
        port=port,
        rpcport=rpcport,
        rpcbind=rpcbind,
        rpcallowip=rpcallowip,
        rpcuser=None if rpcuser is None else str(rpcuser),
        rpcpassword=None if rpcpassword is None else str(rpcpassword),
        rpcauth=rpcauth,
        connect=connect,
        addnode=addnode,
        listen=listen,
        dbcache=dbcache,
        txindex=boolean("txindex", False),
        assumevalid=assumevalid,
        debug=debug,
        rest=boolean("rest", False),
        par=par,
        printtoconsole=boolean("printtoconsole", True),
        rpcservertimeout=rpcservertimeout,
        rpcthreads=rpcthreads,
        rpcworkqueue=rpcworkqueue,
        flushinterval=flushinterval,
        reindex=boolean("reindex", False),
        reindex_chainstate=boolean("reindex-chainstate", False),
        bind=bind,
        seednode=seednode,
        externalip=externalip,
        maxconnections=maxconnections,
        proxy=proxy,
        dnsseed=boolean("dnsseed", not connect),
        fixedseeds=boolean("fixedseeds", True),
        peertimeout=peertimeout,
        maxsendbuffer=maxsendbuffer,
        maxreceivebuffer=maxreceivebuffer,
        maxmempool=maxmempool,
        mempoolexpiry=mempoolexpiry,
        limitclustercount=limitclustercount,
        limitclustersize=limitclustersize,
        minrelaytxfee=minrelaytxfee,
        incrementalrelayfee=incrementalrelayfee,
        persistmempool=boolean("persistmempool", True),
        datacarrier=boolean("datacarrier", policy.DEFAULT_ACCEPT_DATACARRIER),
        datacarriersize=datacarriersize,
        permitbaremultisig=boolean("permitbaremultisig", policy.DEFAULT_PERMIT_BAREMULTISIG),
        acceptnonstdtxn=acceptnonstdtxn,
        acceptstalefeeestimates=acceptstalefeeestimates,
        blocksonly=blocksonly,
        whitelist=whitelist,
        whitebind=whitebind,
        whitelistrelay=whitelistrelay,
        whitelistforcerelay=whitelistforcerelay,
        disablewallet=boolean("disablewallet", False),
        wallet=many("wallet"),
        keypool=keypool,
        fallbackfee=fee_rate("fallbackfee", 0),
        mintxfee=fee_rate("mintxfee", 100),
        maxtxfee=fee_rate("maxtxfee", 10_000_000),
        walletrbf=boolean("walletrbf", True),
        warnings=tuple(warnings),
    )


def config_from_args(args: Sequence[str]) -> Config:
    """Core-style ``-key=value`` / ``--key=value`` / ``-nokey`` arguments (for tests and tools)."""
    opts: dict[str, Any] = {}
    for a in args:
        a = a.lstrip("-")
        key, _, value = a.partition("=")
        key, value = _normalize_key(key, value if "=" in a else "1")
        if key in LIST_KEYS:
            opts.setdefault(key, []).append(value)
        else:
            opts[key] = value
    return load_config(opts)
