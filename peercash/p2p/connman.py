"""Connection management: listening, outbound slots, inbound eviction, bans, seeds, the proxy.

Layer L2 (``peercash.p2p``). Sees peers, the address manager and the ban manager, never the
chain (our best height comes from a function the node passes in). ``node.py`` builds one
:class:`ConnectionManager`; the sync layer plugs in as its :class:`MessageHandler`; the RPC reads
and changes it through :meth:`ConnectionManager.run_threadsafe`.

**Concurrency.** Everything here runs on one event loop thread: the manager, every peer, the
handler's callbacks. Nothing is thread-safe; other threads (RPC workers) go through
``run_threadsafe``, which runs a function on the loop and waits for its result.

**Who handles which message.** The peer itself: ``version``, ``verack``, ``wtxidrelay``,
``sendaddrv2``, ``ping``, ``pong`` (see ``peer``). The manager: ``addr``, ``addrv2``
(rate-limited per peer with ``addrrelay.AddrRateLimiter``, stored in the address manager,
relayed to up to two peers when fresh and few) and ``getaddr`` (answered once per inbound
connection, from the address manager). Bookkeeping is done for ``sendheaders``, ``feefilter`` and
``sendcmpct`` (peer attributes), and those are then passed on. Every other message after the
handshake goes to :meth:`MessageHandler.on_message`, in the order it arrived.

**Connections** (Core's ``CConnman`` rules). With ``connect`` given, only those peers, as manual
connections, reconnected when they drop. Otherwise: ``addnode`` peers as manual connections
(up to 8, retried every minute); 8 outbound full-relay and 2 block-relay-only connections to
addresses from the address manager, at most one per network group; when those are full, a
feeler connection about every 2 minutes to test an address. ``seednode`` peers get a one-time
address-fetch connection. With an empty address book (and not on regtest), DNS seeds are asked
(through the proxy as address-fetch connections when one is set), and fixed seeds are added
after a minute if nothing else helped. At most ``max_connections`` (125) in total: inbound
slots are what the automatic outbound ones leave (125 − 8 − 2 − 1 = 114); when they are full a
new inbound peer takes the place of the one :func:`~peercash.p2p.eviction.select_peer_to_evict`
picks, or is refused.

**Permissions** (``-whitelist``, ``-whitebind``; :mod:`peercash.p2p.permissions`): every peer
gets its flags when created (``peer.permissions``). ``noban``: let in though banned or
discouraged, never evicted, never punished; ``addr``: its addresses are not rate-limited.

**Misbehaviour** (:meth:`ConnectionManager.misbehaving`, Core's current rule): any misbehaviour
discourages the peer's address and disconnects every peer at it — unless the peer has ``noban``
or is a manual connection (then it is only logged and noted), or its address is local (then it
is disconnected but not discouraged, as Core does, unless ``discourage_local`` is set, which tests do). A fatal
framing error (wrong magic, oversized message) disconnects without being misbehaviour (the peer
does that itself). The reason and the treatment are logged (Core's words) and kept in the peer's
``history``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from peercash.consensus.params import NetworkParams
from peercash.p2p.addrman import AddrMan, select_outbound
from peercash.p2p.addrrelay import AddrRateLimiter, GetAddrOnce
from peercash.p2p.banman import BanMan, SubNet
from peercash.p2p.eviction import EvictionCandidate, select_peer_to_evict
from peercash.p2p.messages import (
    MAX_ADDR_TO_SEND,
    NODE_NETWORK,
    NODE_NETWORK_LIMITED,
    NODE_WITNESS,
    NULL_VERSION_ADDRESS,
    PROTOCOL_VERSION,
    Addr,
    AddrV2,
    GetAddr,
    Message,
    Version,
    VersionAddress,
    local_services,
)
from peercash.p2p.netaddress import NetAddress, NetAddressError, Network, TimedAddress
from peercash.p2p.netgroup import network_group, outbound_group
from peercash.p2p.peer import (
    DEFAULT_MAX_RECEIVE_BUFFER,
    DEFAULT_MAX_SEND_BUFFER,
    ConnType,
    Peer,
    PeerTimeouts,
    has_desirable_services,
)
from peercash.p2p.permissions import NetPermissions, Permissions, Whitebind, has_permission
from peercash.p2p.scheduler import MessageScheduler
from peercash.p2p.seeds import DNS_SEEDS, fixed_seeds
from peercash.p2p.socks5 import socks5_connect

__all__ = [
    "DEFAULT_SERVICES",
    "USER_AGENT",
    "ConnOptions",
    "ConnectError",
    "ConnectionManager",
    "DefaultHandler",
    "MessageHandler",
    "select_peer_to_evict",
]

log = logging.getLogger(__name__)

USER_AGENT = "/peercash:0.1.0/"
DEFAULT_SERVICES = local_services()
MAX_PCT_ADDR_TO_SEND = 23
ADDR_TIME_PENALTY = 2 * 60 * 60
_T = TypeVar("_T")


class MessageHandler(Protocol):
    """What the sync layer implements. Called on the event loop thread; each call must return
    quickly — heavy work goes to a thread or process, and ``peer.pause_processing()`` /
    ``peer.resume_processing()`` hold this peer's further messages meanwhile."""

    def on_peer_connected(self, peer: Peer) -> None:
        """The handshake with ``peer`` is done (``verack`` received); messages follow."""
        ...

    def on_message(self, peer: Peer, msg: Message) -> None:
        """A message from a connected peer, in arrival order (see the module docstring for the
        messages the connection layer keeps)."""
        ...

    def on_peer_disconnected(self, peer: Peer) -> None:
        """``peer`` (one that ``on_peer_connected`` announced) is gone."""
        ...


class DefaultHandler:
    """The handler until the sync layer exists: the connection layer already answers everything
    it must (handshake, ping, addresses), so this ignores the rest."""

    def on_peer_connected(self, peer: Peer) -> None:
        pass

    def on_message(self, peer: Peer, msg: Message) -> None:
        log.debug("peer=%d: %s not handled", peer.id, msg.command.decode())

    def on_peer_disconnected(self, peer: Peer) -> None:
        pass


class ConnectError(OSError):
    """An outbound connection could not be made (the message says why)."""


@dataclass(frozen=True)
class ConnOptions:
    """How the manager behaves; the defaults are Core's. Addresses are ``host[:port]`` text."""

    port: int = 8333
    listen: bool = True
    binds: tuple[str, ...] = ()
    """Where to listen; empty: every interface (``0.0.0.0`` and ``::``) on ``port``."""
    max_connections: int = 125
    max_outbound_full_relay: int = 8
    max_block_relay: int = 2
    max_feeler: int = 1
    max_addnode: int = 8
    connect: tuple[str, ...] = ()
    """Connect only to these (``("0",)``: no automatic connections at all)."""
    addnode: tuple[str, ...] = ()
    seednode: tuple[str, ...] = ()
    proxy: str | None = None
    proxy_randomize_credentials: bool = True
    externalip: tuple[str, ...] = ()
    dnsseed: bool = True
    fixedseeds: bool = True
    timeouts: PeerTimeouts = field(default_factory=PeerTimeouts)
    connect_timeout: float = 5.0
    max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER
    max_receive_buffer: int = DEFAULT_MAX_RECEIVE_BUFFER
    user_agent: str = USER_AGENT
    services: int = DEFAULT_SERVICES
    network_active: bool = True
    discourage_local: bool = False
    """Discourage misbehaving peers at local addresses too (Core never does; tests on loopback
    need it)."""
    tick_interval: float = 1.0
    open_interval: float = 0.5
    addnode_interval: float = 60.0
    feeler_interval: float = 120.0
    fixed_seed_delay: float = 60.0
    stop_timeout: float = 5.0
    permissions: Permissions = field(default_factory=Permissions)
    """``-whitelist`` ranges (and how implicit permissions resolve)."""
    whitebinds: tuple[Whitebind, ...] = ()
    """``-whitebind``: more places to listen, each granting its permissions to who connects."""
    blocks_only: bool = False
    """``-blocksonly``: our ``version`` asks peers not to announce transactions."""

    @property
    def connect_only(self) -> bool:
        return bool(self.connect)


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; ``ValueError`` for a bad
    port."""
    t = text.strip()
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ValueError(f"bad address {text!r}")
        host, rest = t[1:end], t[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad address {text!r}")
    elif t.count(":") == 1:
        host, port = t.split(":")
    else:
        host, port = t, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) <= 0xFFFF:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port)


def _sockaddr_address(sockaddr: Any) -> NetAddress:
    host, port = str(sockaddr[0]), int(sockaddr[1])
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return NetAddress(Network.IPV4, ip.packed, port)
    return NetAddress.from_v1_bytes(ip.packed, port)


_NO_ADDRESS = NetAddress(Network.IPV6, bytes(16), 0)


@dataclass
class _Retry:
    failures: int = 0
    next_try: float = 0.0


class ConnectionManager:
    """Every peer connection of the node (see the module docstring).

    ``best_height`` gives our chain height for the ``version`` message; ``clock`` gives UNIX
    seconds (a float); ``rng`` drives shuffles and timers (tests pass a seeded one).
    """

    def __init__(
        self,
        params: NetworkParams,
        options: ConnOptions,
        addrman: AddrMan,
        banman: BanMan,
        handler: MessageHandler | None = None,
        *,
        clock: Callable[[], float] = time.time,
        best_height: Callable[[], int] = lambda: 0,
        rng: random.Random | None = None,
    ) -> None:
        self.params = params
        self.options = options
        self.addrman = addrman
        self.banman = banman
        self.handler: MessageHandler = handler if handler is not None else DefaultHandler()
        self._clock = clock
        self._best_height = best_height
        self._rng = rng if rng is not None else random.Random()
        self._key = secrets.token_bytes(16)
        self.network_active = options.network_active
        self.loop: asyncio.AbstractEventLoop | None = None
        self._peers: dict[int, Peer] = {}
        self._next_id = 0
        self._pending: dict[str, ConnType] = {}
        self._retry: dict[str, _Retry] = {}
        self._listeners: list[socket.socket] = []
        self.bound: list[tuple[str, int]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._added: list[str] = list(dict.fromkeys(options.addnode))
        self._addr_fetch: list[str] = list(options.seednode)
        self._closed_bytes_sent = 0
        self._closed_bytes_recv = 0
        self._notified: set[int] = set()
        self._wake_open = asyncio.Event()
        self._scheduler = MessageScheduler()
        """Delivers every peer's messages, least-served peer first."""
        self._wake_addnode = asyncio.Event()
        self._next_feeler = 0.0
        self._started_at = 0.0
        self._stopping = False
        max_full = min(options.max_outbound_full_relay, options.max_connections)
        max_block = min(options.max_block_relay, options.max_connections - max_full)
        self.max_outbound_full_relay = max_full
        self.max_block_relay = max_block
        self.max_inbound = max(
            0, options.max_connections - max_full - max_block - options.max_feeler
        )
        self.local_addresses: list[NetAddress] = []
        for text in options.externalip:
            try:
                self.local_addresses.append(NetAddress.parse(text, options.port))
            except NetAddressError as e:
                log.warning("ignoring -externalip=%s: %s", text, e)
        self.proxy: tuple[str, int] | None = None
        if options.proxy:
            self.proxy = split_host_port(options.proxy, 9050)

    # -- queries ----------------------------------------------------------------------------

    def peers(self) -> list[Peer]:
        """Every peer that is not closed yet, by id (a snapshot)."""
        return [p for _, p in sorted(self._peers.items()) if not p.closed]

    def peer(self, peer_id: int) -> Peer | None:
        return self._peers.get(peer_id)

    def connected_peers(self) -> list[Peer]:
        """Peers whose handshake is done and that are not disconnecting."""
        return [p for p in self.peers() if p.handshake_done and not p.is_closing]

    def totals(self) -> tuple[int, int]:
        """(bytes received, bytes sent) over the life of the manager."""
        live = self.peers()
        return (
            self._closed_bytes_recv + sum(p.bytes_recv for p in live),
            self._closed_bytes_sent + sum(p.bytes_sent for p in live),
        )

    @property
    def listen_port(self) -> int | None:
        """The port we listen on (the actual one when ``port`` was 0), or None."""
        return self.bound[0][1] if self.bound else None

    def reachable(self, network: Network) -> bool:
        """Whether we can connect to this network: IP always; onion through the proxy."""
        if network in (Network.IPV4, Network.IPV6):
            return True
        return network is Network.TORV3 and self.proxy is not None

    def added_nodes(self) -> list[str]:
        return list(self._added)

    def set_handler(self, handler: MessageHandler) -> None:
        """Plug in the sync layer (peers already connected are not announced again)."""
        self.handler = handler

    # -- threads ----------------------------------------------------------------------------

    def run_threadsafe(
        self, func: Callable[..., _T | Awaitable[_T]], *args: Any, timeout: float = 30.0
    ) -> _T:
        """Run ``func(*args)`` on the manager's event loop and return its result (awaited if it
        is a coroutine), from any thread. On the loop thread itself only plain functions can be
        run (directly)."""
        loop = self.loop
        if loop is None:
            raise RuntimeError("the connection manager is not running")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            result = func(*args)
            if asyncio.iscoroutine(result):
                result.close()
                raise RuntimeError("cannot wait for a coroutine on the loop's own thread")
            return result  # type: ignore[return-value]

        async def call() -> _T:
            result = func(*args)
            if asyncio.iscoroutine(result):
                return await result  # type: ignore[no-any-return]
            return result  # type: ignore[return-value]

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (``OSError`` if it was asked for and no address can be bound) and start the
        connection loops."""
        self.loop = asyncio.get_running_loop()
        self._started_at = self._clock()
        self._next_feeler = self._started_at + self._rng.expovariate(
            1 / self.options.feeler_interval
        )
        if self.options.listen:
            self._bind_all()
        self._spawn(self._tick_loop(), "p2p-timers")
        self._spawn(self._open_loop(), "p2p-open")
        self._spawn(self._addnode_loop(), "p2p-addnode")
        if not self.options.connect_only:
            self._spawn(self._seed_loop(), "p2p-seeds")
        log.info("P2P started: %s, network %s", self._listening_text(), self.params.name)

    def _listening_text(self) -> str:
        if not self.bound:
            return "not listening"
        return "listening on " + ", ".join(
            f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.bound
        )

    async def stop(self) -> None:
        """Stop listening and connecting, close every connection (sending what is queued),
        and after ``stop_timeout`` seconds drop whoever is still there."""
        self._stopping = True
        for sock in self._listeners:
            with contextlib.suppress(OSError):
                sock.close()
        self._listeners.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        peers = self.peers()
        for p in peers:
            p.disconnect("shutting down", flush=True)
        if peers:
            waits = [asyncio.ensure_future(p.wait_closed()) for p in peers]
            _, pending = await asyncio.wait(waits, timeout=self.options.stop_timeout)
            for w in pending:
                w.cancel()
            for p in peers:
                if not p.closed:
                    p.abort()
            await asyncio.sleep(0)
        await self._scheduler.close()
        log.info("P2P stopped")

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("P2P task %s failed", task.get_name(), exc_info=task.exception())

    # -- listening --------------------------------------------------------------------------

    def _bind_all(self) -> None:
        opts = self.options
        explicit = bool(opts.binds) or bool(opts.whitebinds)
        targets = [(*split_host_port(b, opts.port), 0) for b in opts.binds]
        targets += [(w.host, w.port, int(w.flags)) for w in opts.whitebinds]
        if not targets:
            targets = [("0.0.0.0", opts.port, 0), ("::", opts.port, 0)]
        errors: list[str] = []
        for host, port, flags in targets:
            try:
                sock = _listen_socket(host, port)
            except OSError as e:
                errors.append(f"{host}:{port}: {e.strerror or e}")
                continue
            self._listeners.append(sock)
            actual = sock.getsockname()[1]
            self.bound.append((host, actual))
            self._spawn(self._accept_loop(sock, flags), f"p2p-accept-{host}")
        if errors and (explicit or not self._listeners):
            for sock in self._listeners:
                sock.close()
            self._listeners.clear()
            self.bound.clear()
            raise OSError(
                "Unable to bind to " + "; ".join(errors) + ". peercash is probably already running."
            )
        for failure in errors:
            log.warning("Unable to bind to %s", failure)

    async def _accept_loop(self, listener: socket.socket, flags: int = 0) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, sockaddr = await loop.sock_accept(listener)
            except OSError as e:
                if self._stopping:
                    return
                log.warning("accept failed: %s", e)
                await asyncio.sleep(0.5)
                continue
            try:
                await self._accept(sock, sockaddr, flags)
            except Exception:
                log.exception("error accepting a connection")
                with contextlib.suppress(OSError):
                    sock.close()

    async def _accept(self, sock: socket.socket, sockaddr: Any, bind_flags: int = 0) -> None:
        sock.setblocking(False)
        try:
            addr = _sockaddr_address(sockaddr)
        except ValueError:
            sock.close()
            return
        flags = self.options.permissions.for_peer(addr, inbound=True, bind_flags=bind_flags)
        refusal = self._inbound_refusal(addr, flags)
        if refusal is not None:
            log.debug("connection from %s dropped (%s)", addr, refusal)
            sock.close()
            return
        peer = self._new_peer(addr, ConnType.INBOUND, None)
        peer.permissions = flags
        peer.prefer_evict = self.banman.is_discouraged(addr)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.connect_accepted_socket(lambda: peer, sock)
        except OSError:
            self._peers.pop(peer.id, None)
            sock.close()

    def _inbound_refusal(self, addr: NetAddress, flags: int = 0) -> str | None:
        """Why an inbound connection from ``addr`` is refused, or None (evicting a peer to make
        room when the inbound slots are full). A ``noban`` peer is let in though banned or
        discouraged (Core)."""
        if self._stopping or not self.network_active:
            return "not accepting new connections"
        noban = has_permission(flags, NetPermissions.NOBAN)
        if not noban and self.banman.is_banned(addr):
            return "banned"
        inbound = [p for p in self.peers() if p.inbound and not p.is_closing]
        if not noban and len(inbound) + 1 >= self.max_inbound and self.banman.is_discouraged(addr):
            return "discouraged"
        if len(inbound) >= self.max_inbound:
            victim = select_peer_to_evict(self.eviction_candidates())
            if victim is None:
                return "full: failed to find an eviction candidate"
            evicted = self._peers[victim]
            evicted.note("evicted to make room for an inbound connection", "disconnected")
            evicted.disconnect("evicted to make room for an inbound connection")
        return None

    def eviction_candidates(self) -> list[EvictionCandidate]:
        """Snapshots of the inbound peers that may be evicted."""
        out = []
        for p in self.peers():
            if not p.inbound or p.is_closing or has_permission(p.permissions, NetPermissions.NOBAN):
                continue  # Core never evicts a noban peer
            out.append(
                EvictionCandidate(
                    id=p.id,
                    connected=p.connected_time,
                    min_ping=p.min_ping if p.min_ping is not None else float("inf"),
                    last_block_time=p.last_block_time,
                    last_tx_time=p.last_tx_time,
                    relevant_services=has_desirable_services(p.services),
                    relay_txs=p.relay,
                    keyed_net_group=self._keyed_group(p.address),
                    prefer_evict=p.prefer_evict,
                    is_local=p.address.is_local(),
                    network=p.address.network,
                )
            )
        return out

    def _keyed_group(self, addr: NetAddress) -> int:
        digest = hashlib.sha256(self._key + network_group(addr)).digest()
        return int.from_bytes(digest[:8], "little")

    # -- outbound ---------------------------------------------------------------------------

    async def connect_to(
        self, target: NetAddress | str, conn_type: ConnType = ConnType.MANUAL
    ) -> Peer:
        """Open an outbound connection (through the proxy when one is set) and return the peer
        once the TCP connection stands (the handshake follows: ``peer.handshake_done``).
        ``target`` is an address or ``host[:port]`` text (a name is resolved, or passed to the
        proxy). Raises :class:`ConnectError` (or another ``OSError``) when it cannot."""
        if conn_type is ConnType.INBOUND:
            raise ValueError("cannot connect out as inbound")
        name = str(target) if isinstance(target, NetAddress) else target.strip()
        if not self.network_active:
            raise ConnectError(f"cannot connect to {name}: network activity is disabled")
        self._pending[name] = conn_type
        try:
            address, sock = await self._open_socket(target)
        finally:
            self._pending.pop(name, None)
        if self._stopping or not self.network_active:
            sock.close()
            raise ConnectError(f"connection to {name} abandoned: network activity is disabled")
        peer = self._new_peer(address, conn_type, name)
        peer.permissions = self.options.permissions.for_peer(address, inbound=False)
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: peer, sock=sock)
        except OSError:
            self._peers.pop(peer.id, None)
            sock.close()
            raise
        return peer

    async def _open_socket(self, target: NetAddress | str) -> tuple[NetAddress, socket.socket]:
        port_default = self.params.default_port
        if isinstance(target, NetAddress):
            address: NetAddress | None = target
            host, port = target.host, target.port
        else:
            host, port = split_host_port(target, port_default)
            try:
                address = NetAddress.parse(target, port_default)
            except NetAddressError:
                address = None  # a name
        timeout = self.options.connect_timeout
        if self.proxy is not None:
            phost, pport = self.proxy
            sock = await socks5_connect(
                phost, pport, host, port,
                randomize_credentials=self.options.proxy_randomize_credentials, timeout=timeout,
            )  # fmt: skip
            return (
                address if address is not None else NetAddress(Network.IPV6, bytes(16), port)
            ), sock
        if address is not None and address.network not in (Network.IPV4, Network.IPV6):
            raise ConnectError(f"cannot reach {address.network.name} address {address}: no proxy")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos: list[tuple[int, Any]]
                if address is not None:
                    infos = [
                        (
                            socket.AF_INET if address.network is Network.IPV4 else socket.AF_INET6,
                            (host, port),
                        )
                    ]
                else:
                    resolved = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                    infos = [(fam, sa) for fam, _, _, _, sa in resolved]
                last: OSError | None = None
                for family, sockaddr in infos:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    try:
                        await loop.sock_connect(sock, sockaddr)
                    except OSError as e:
                        sock.close()
                        last = e
                        continue
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    return _sockaddr_address(sockaddr), sock
        except TimeoutError:
            raise ConnectError(f"connection to {host}:{port} timed out") from None
        except socket.gaierror as e:
            raise ConnectError(f"cannot resolve {host}: {e}") from None
        raise ConnectError(f"cannot connect to {host}:{port}: {last}")

    def _new_peer(self, address: NetAddress, conn_type: ConnType, name: str | None) -> Peer:
        peer_id = self._next_id
        self._next_id += 1
        opts = self.options
        peer = Peer(
            peer_id=peer_id,
            address=address,
            conn_type=conn_type,
            owner=self,
            magic=self.params.magic,
            addr_name=name,
            timeouts=opts.timeouts,
            max_send_buffer=opts.max_send_buffer,
            max_receive_buffer=opts.max_receive_buffer,
            clock=self._clock,
            scheduler=self._scheduler,
        )
        self._peers[peer_id] = peer
        return peer

    def _is_connected_to(self, name: str, address: NetAddress | None = None) -> bool:
        if name in self._pending:
            return True
        for p in self.peers():
            if p.is_closing:
                continue
            if p.addr_name == name or (address is not None and p.address == address):
                return True
        return False

    def _try_later(self, key: str, now: float) -> bool:
        r = self._retry.get(key)
        return r is not None and now < r.next_try

    def _record_failure(self, key: str, now: float, cap: float) -> None:
        r = self._retry.setdefault(key, _Retry())
        r.failures += 1
        r.next_try = now + min(0.5 * 2 ** min(r.failures, 10), cap)

    def _start_attempt(
        self, target: NetAddress | str, conn_type: ConnType, *, from_addrman: bool = False
    ) -> None:
        name = str(target) if isinstance(target, NetAddress) else target
        self._pending[name] = conn_type  # reserve the slot until the task runs

        async def attempt() -> None:
            self._pending.pop(name, None)
            try:
                await self.connect_to(target, conn_type)
            except (OSError, ValueError) as e:
                now = self._clock()
                log.debug("%s connection to %s failed: %s", conn_type.value, name, e)
                if from_addrman and isinstance(target, NetAddress):
                    self.addrman.attempt(target, count_failure=True, time=int(now))
                if conn_type is ConnType.MANUAL:
                    self._record_failure(name, now, max(self.options.addnode_interval, 5.0))
            else:
                self._retry.pop(name, None)

        self._spawn(attempt(), f"p2p-connect-{name}")

    async def _sleep_or_wake(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        event.clear()

    async def _open_loop(self) -> None:
        while True:
            try:
                self._open_once()
            except Exception:
                log.exception("error choosing outbound connections")
            await self._sleep_or_wake(self._wake_open, self.options.open_interval)

    def _open_once(self) -> None:
        if not self.network_active or self._stopping:
            return
        now = self._clock()
        opts = self.options
        if opts.connect_only:
            for text in opts.connect:
                if text == "0" or self._is_connected_to(text) or self._try_later(text, now):
                    continue
                self._start_attempt(text, ConnType.MANUAL)
            return
        if self._addr_fetch:
            self._start_attempt(self._addr_fetch.pop(0), ConnType.ADDR_FETCH)
        counts = {t: 0 for t in ConnType}
        groups: set[bytes] = set()
        for p in self.peers():
            if p.is_closing:
                continue
            counts[p.conn_type] += 1
            if p.conn_type in (ConnType.OUTBOUND_FULL_RELAY, ConnType.BLOCK_RELAY):
                g = outbound_group(p.address)
                if g is not None:
                    groups.add(g)
        for t in self._pending.values():
            counts[t] += 1
        if counts[ConnType.OUTBOUND_FULL_RELAY] < self.max_outbound_full_relay:
            conn_type = ConnType.OUTBOUND_FULL_RELAY
        elif counts[ConnType.BLOCK_RELAY] < self.max_block_relay:
            conn_type = ConnType.BLOCK_RELAY
        elif now >= self._next_feeler and counts[ConnType.FEELER] < opts.max_feeler:
            self._next_feeler = now + self._rng.expovariate(1 / opts.feeler_interval)
            conn_type = ConnType.FEELER
        else:
            return
        if len(self.addrman) == 0:
            return
        networks = [n for n in Network if self.reachable(n)]
        if conn_type is ConnType.FEELER:
            picked = self.addrman.select_tried_collision() or self.addrman.select(
                new_only=True, networks=networks
            )
            candidate = picked[0] if picked is not None else None
        else:
            candidate = select_outbound(
                self.addrman,
                groups,
                networks=networks,
                default_port=self.params.default_port,
                required_services=NODE_NETWORK | NODE_WITNESS,
                own_addresses=self.local_addresses,
                now=int(now),
            )
        if candidate is None:
            return
        addr = candidate.address
        if (
            not self.reachable(addr.network)
            or addr in self.local_addresses
            or self.banman.is_banned(addr)
            or self.banman.is_discouraged(addr)
            or self._is_connected_to(str(addr), addr)
        ):
            return
        self._start_attempt(addr, conn_type, from_addrman=True)

    async def _addnode_loop(self) -> None:
        while True:
            tried = False
            try:
                tried = self._addnode_once()
            except Exception:
                log.exception("error connecting to added nodes")
            interval = (
                self.options.addnode_interval if tried else min(2.0, self.options.addnode_interval)
            )
            await self._sleep_or_wake(self._wake_addnode, interval)

    def _addnode_once(self) -> bool:
        if not self.network_active or self._stopping:
            return False
        now = self._clock()
        manual = sum(1 for p in self.peers() if p.conn_type is ConnType.MANUAL and not p.is_closing)
        tried = False
        for text in list(self._added):
            if manual >= self.options.max_addnode:
                break
            if self._is_connected_to(text) or self._try_later(text, now):
                continue
            self._start_attempt(text, ConnType.MANUAL)
            manual += 1
            tried = True
        return tried

    # -- seeds ------------------------------------------------------------------------------

    async def _seed_loop(self) -> None:
        opts = self.options
        seeds = DNS_SEEDS.get(self.params.name, ())
        fixed = fixed_seeds(self.params.name, self.params.default_port) if opts.fixedseeds else []
        if opts.dnsseed and seeds and len(self.addrman) == 0:
            if self.proxy is not None:
                # Through a proxy a DNS query would leak: ask the seeds as peers instead.
                self._addr_fetch.extend(seeds)
                self._wake_open.set()
            else:
                await self._query_dns_seeds(seeds)
        if not fixed:
            return
        other_sources = (opts.dnsseed and bool(seeds)) or bool(opts.seednode) or bool(self._added)
        if other_sources:
            await asyncio.sleep(opts.fixed_seed_delay)
        if len(self.addrman) == 0 and not self._stopping:
            log.info("Adding fixed seeds: the address book is empty")
            now = int(self._clock())
            entries = [
                TimedAddress(
                    max(now - self._rng.randrange(7 * 86400, 14 * 86400), 0),
                    NODE_NETWORK | NODE_WITNESS,
                    a,
                )
                for a in fixed
            ]
            self.addrman.add(entries, NetAddress.ipv4("127.0.0.1", 0))
            self._wake_open.set()

    async def _query_dns_seeds(self, seeds: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        port = self.params.default_port
        for seed in seeds:
            if self._stopping:
                return
            try:
                async with asyncio.timeout(10.0):
                    infos = await loop.getaddrinfo(seed, port, type=socket.SOCK_STREAM)
            except (OSError, TimeoutError) as e:
                log.info("DNS seed %s: %s", seed, e)
                continue
            now = int(self._clock())
            found = {_sockaddr_address(sa) for _, _, _, _, sa in infos}
            entries = [
                TimedAddress(
                    max(now - self._rng.randrange(3 * 86400, 7 * 86400), 0),
                    NODE_NETWORK | NODE_WITNESS,
                    a,
                )
                for a in sorted(found)
            ]
            if entries:
                self.addrman.add(entries, entries[0].address)
            log.info("%d addresses found from DNS seed %s", len(entries), seed)
        self._wake_open.set()

    # -- timers -----------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.tick_interval)
            now = self._clock()
            for p in self.peers():
                try:
                    p.check_timeouts(now)
                except Exception:
                    log.exception("peer=%d: timer failed", p.id)

    # -- controls ---------------------------------------------------------------------------

    def disconnect(self, target: int | str | NetAddress | SubNet, reason: str = "") -> bool:
        """Disconnect a peer by id, by the address text it was connected with (``addr`` in
        ``getpeerinfo``), or every peer at an address (any port) or in a subnet. Returns
        whether any peer matched."""
        why = reason or "disconnected on request"
        matched = []
        for p in self.peers():
            if p.is_closing:
                continue
            if isinstance(target, bool):
                raise TypeError("target must be an id, a name, an address or a subnet")
            if isinstance(target, int):
                hit = p.id == target
            elif isinstance(target, str):
                hit = p.addr_name == target
            elif isinstance(target, SubNet):
                hit = target.contains(p.address)
            else:
                hit = p.address.network == target.network and p.address.addr == target.addr
            if hit:
                matched.append(p)
        for p in matched:
            p.disconnect(why)
        return bool(matched)

    def set_network_active(self, active: bool) -> None:
        """Stop all peer activity (dropping every connection) or resume it."""
        if active == self.network_active:
            return
        self.network_active = active
        log.info("SetNetworkActive: %s", "true" if active else "false")
        if not active:
            for p in self.peers():
                p.disconnect("network activity disabled")
        else:
            self._retry.clear()
            self._wake_open.set()
            self._wake_addnode.set()

    def add_node(self, text: str) -> bool:
        """Remember an ``addnode`` peer (tried soon and kept connected); False if known."""
        if text in self._added:
            return False
        self._added.append(text)
        self._wake_addnode.set()
        return True

    def remove_node(self, text: str) -> bool:
        if text not in self._added:
            return False
        self._added.remove(text)
        self._retry.pop(text, None)
        return True

    def connect_once(self, text: str) -> None:
        """Try one manual connection to ``text`` in the background (``addnode … onetry``)."""
        self._start_attempt(text.strip(), ConnType.MANUAL)

    def ping_all(self) -> None:
        for p in self.connected_peers():
            p.request_ping()

    def misbehaving(self, peer: Peer, reason: str, *, fatal: bool = False) -> None:
        """``peer`` broke a protocol rule (see the module docstring for what it costs)."""
        log.info("Misbehaving: peer=%d %s: %s", peer.id, peer.addr_name, reason)
        if has_permission(peer.permissions, NetPermissions.NOBAN):
            log.info("Warning: not punishing noban peer %d!", peer.id)
            peer.note(reason, "disconnected (noban peer, not discouraged)" if fatal
                      else "not punished (noban peer)")  # fmt: skip
            if fatal:
                peer.disconnect(reason)
            return
        if peer.conn_type is ConnType.MANUAL:
            log.info("Warning: not punishing manually connected peer=%d", peer.id)
            peer.note(reason, "disconnected (manual peer, not discouraged)" if fatal
                      else "not punished (manual peer)")  # fmt: skip
            if fatal:
                peer.disconnect(reason)
            return
        addr = peer.address
        if addr.is_local() and not self.options.discourage_local:
            log.info("Warning: disconnecting but not discouraging local peer=%d", peer.id)
            peer.note(reason, "disconnected (local address, not discouraged)")
            peer.disconnect(reason)
            return
        log.info("Disconnecting and discouraging peer=%d", peer.id)
        peer.note(reason, "discouraged and disconnected")
        self.banman.discourage(addr)
        peer.disconnect(reason)
        for other in self.peers():
            if (
                other is not peer
                and not other.is_closing
                and other.conn_type is not ConnType.MANUAL
                and other.address.network == addr.network
                and other.address.addr == addr.addr
            ):
                other.disconnect(f"address discouraged: {reason}")

    # -- PeerOwner --------------------------------------------------------------------------

    def our_version(self, peer: Peer) -> Version:
        addr = peer.address
        if addr.is_routable() and addr.is_addr_v1_compatible() and self.proxy is None:
            addr_recv = VersionAddress(0, addr)
        else:
            addr_recv = NULL_VERSION_ADDRESS
        services = self.options.services
        return Version(
            version=PROTOCOL_VERSION,
            services=services,
            timestamp=int(self._clock()),
            addr_recv=addr_recv,
            addr_from=VersionAddress(services, _NO_ADDRESS),
            nonce=peer.local_nonce,
            user_agent=self.options.user_agent,
            start_height=max(min(self._best_height(), 2**31 - 1), -1),
            relay=peer.conn_type is not ConnType.BLOCK_RELAY and not self.options.blocks_only,
        )

    def check_version(self, peer: Peer, version: Version) -> str | None:
        if peer.inbound:
            for p in self._peers.values():
                if (
                    p is not peer
                    and not p.inbound
                    and not p.handshake_done
                    and p.local_nonce == version.nonce
                ):
                    p.note("connected to self", "disconnected")
                    p.disconnect(f"connected to self at {peer.address}, disconnecting")
                    return f"connected to self at {peer.address}, disconnecting"
        return None

    def peer_version(self, peer: Peer) -> None:
        now = self._clock()
        if peer.outbound:
            self.addrman.set_services(peer.address, peer.services)
            self.addrman.good(peer.address, int(now))
        peer.getaddr_once = GetAddrOnce(inbound=peer.inbound)
        if peer.conn_type.relays_addresses and peer.conn_type is not ConnType.FEELER:
            peer.addr_relay_enabled = True
            peer.addr_limiter = AddrRateLimiter(
                now, exempt=has_permission(peer.permissions, NetPermissions.ADDR)
            )
            if peer.outbound:
                peer.send(GetAddr())
                peer.getaddr_sent = True
                peer.addr_limiter.on_getaddr_sent()
        if peer.conn_type is ConnType.FEELER:
            peer.disconnect("feeler connection completed")

    def peer_connected(self, peer: Peer) -> None:
        self._notified.add(peer.id)
        if (
            self.options.listen
            and self.local_addresses
            and peer.addr_relay_enabled
            and peer.conn_type is not ConnType.ADDR_FETCH
        ):
            now = int(self._clock())
            mine = [TimedAddress(now, self.options.services, a) for a in self.local_addresses]
            self._send_addresses(peer, mine)
        self.handler.on_peer_connected(peer)

    def peer_message(self, peer: Peer, msg: Message) -> None:
        if isinstance(msg, Addr | AddrV2):
            self._on_addr(peer, msg.addresses)
        elif isinstance(msg, GetAddr):
            self._on_getaddr(peer)
        else:
            self.handler.on_message(peer, msg)

    def peer_misbehaving(self, peer: Peer, reason: str, *, fatal: bool) -> None:
        self.misbehaving(peer, reason, fatal=fatal)

    def peer_closed(self, peer: Peer) -> None:
        self._peers.pop(peer.id, None)
        self._closed_bytes_sent += peer.bytes_sent
        self._closed_bytes_recv += peer.bytes_recv
        if peer.handshake_done and peer.conn_type in (
            ConnType.OUTBOUND_FULL_RELAY,
            ConnType.MANUAL,
            ConnType.ADDR_FETCH,
        ):
            self.addrman.connected(peer.address, int(self._clock()))
        if peer.id in self._notified:
            self._notified.discard(peer.id)
            try:
                self.handler.on_peer_disconnected(peer)
            except Exception:
                log.exception("handler failed for the disconnection of peer=%d", peer.id)
        if peer.conn_type is ConnType.MANUAL and not peer.handshake_done:
            # Accepted, then dropped before the handshake: back off as after a failed connect.
            self._record_failure(
                peer.addr_name, self._clock(), max(self.options.addnode_interval, 5.0)
            )
        if not self._stopping and peer.outbound:
            self._wake_open.set()

    # -- addresses --------------------------------------------------------------------------

    def _on_addr(self, peer: Peer, addresses: tuple[TimedAddress, ...]) -> None:
        if not peer.addr_relay_enabled or peer.addr_limiter is None:
            log.debug("peer=%d: ignoring addresses from a %s peer", peer.id, peer.conn_type.value)
            return
        now = self._clock()
        entries = list(addresses)
        self._rng.shuffle(entries)
        allowed = peer.addr_limiter.allow(len(entries), now)
        now_i = int(now)
        kept: list[TimedAddress] = []
        fresh: list[TimedAddress] = []
        for ta in entries[:allowed]:
            if not ta.services & (NODE_NETWORK | NODE_NETWORK_LIMITED):
                continue
            if ta.time <= 100_000_000 or ta.time > now_i + 600:
                ta = TimedAddress(max(now_i - 5 * 86400, 0), ta.services, ta.address)
            a = ta.address
            if self.banman.is_banned(a) or self.banman.is_discouraged(a):
                continue
            if (
                ta.time > now_i - 600
                and not peer.getaddr_sent
                and len(entries) <= 10
                and (a.is_routable())
            ):
                fresh.append(ta)
            if self.reachable(a.network):
                kept.append(ta)
        if kept:
            self.addrman.add(kept, peer.address, ADDR_TIME_PENALTY)
        log.debug("peer=%d: received %d addresses (%d processed, %d rate-limited)", peer.id,
                  len(entries), allowed, len(entries) - allowed)  # fmt: skip
        for ta in fresh:
            self._relay_address(peer, ta)
        if len(entries) < MAX_ADDR_TO_SEND:
            peer.getaddr_sent = False
        if peer.conn_type is ConnType.ADDR_FETCH and len(entries) > 1:
            peer.disconnect("addrfetch connection completed")

    def _relay_address(self, source: Peer, ta: TimedAddress) -> None:
        """Pass a fresh address on to up to two peers, the same ones for a day (Core's
        ``RelayAddress``, without its trickle timer)."""
        day = int(self._clock()) // 86400
        targets = [
            p
            for p in self.connected_peers()
            if p is not source and p.addr_relay_enabled and p.conn_type is not ConnType.ADDR_FETCH
        ]
        if not targets:
            return
        seed = self._key + ta.address.serialize_v2() + day.to_bytes(8, "little")

        def rank(p: Peer) -> bytes:
            return hashlib.sha256(seed + p.id.to_bytes(8, "little")).digest()

        count = 2 if self.reachable(ta.address.network) else 1
        for p in sorted(targets, key=rank)[:count]:
            self._send_addresses(p, [ta])

    def _on_getaddr(self, peer: Peer) -> None:
        once = peer.getaddr_once
        if not peer.inbound:
            log.debug("peer=%d: ignoring getaddr from an outbound connection", peer.id)
            return
        if not peer.addr_relay_enabled or once is None or not once.should_answer():
            log.debug("peer=%d: ignoring repeated getaddr", peer.id)
            return
        found = self.addrman.get_addr(MAX_ADDR_TO_SEND, MAX_PCT_ADDR_TO_SEND)
        entries = [
            ta
            for ta in found
            if not self.banman.is_banned(ta.address) and not self.banman.is_discouraged(ta.address)
        ]
        self._send_addresses(peer, entries)

    def _send_addresses(self, peer: Peer, entries: list[TimedAddress]) -> None:
        if peer.addrv2:
            ok = [ta for ta in entries if ta.address.network is not Network.TORV2]
            if ok:
                peer.send(AddrV2(tuple(ok[:MAX_ADDR_TO_SEND])))
        else:
            ok = [ta for ta in entries if ta.address.is_addr_v1_compatible()]
            if ok:
                peer.send(Addr(tuple(ok[:MAX_ADDR_TO_SEND])))


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
