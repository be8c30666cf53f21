"""The HTTP side of RPC (aiohttp): listening sockets, client filtering, authentication, limits,
and routing to JSON-RPC (``/`` and ``/wallet/<name>``) and, when enabled, REST (``/rest/…``).

Behaviour follows Core's ``httpserver.cpp``/``httprpc.cpp``: clients outside the allowed subnets
get 403; JSON-RPC takes POST only (405 otherwise); a missing ``Authorization`` header is a 401
at once, wrong credentials a 401 after 250 ms (without blocking other clients); bodies over
32 MiB are refused with 413. A client that stalls while sending its request is answered 408
(stalled body) or disconnected (stalled headers, via the idle timer) after ``body_timeout``
seconds (``-rpcservertimeout``); others are served meanwhile, and shutdown drops such clients at
once instead of waiting for them.

The event loop reads requests and writes replies; the calls themselves run on the work queue's
threads (``-rpcthreads``), and a request that finds ``-rpcworkqueue`` requests already waiting is
answered 503 "Work queue depth exceeded" at once, as Core does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from .auth import RpcAuth
from .jsonrpc import handle_body_sync
from .registry import REGISTRY, Registry
from .services import NodeServices
from .workqueue import DEFAULT_RPC_THREADS, DEFAULT_RPC_WORKQUEUE, WorkQueue, WorkQueueFull

log = logging.getLogger("peercash.http")

MAX_BODY_BYTES = 0x02000000  # Core's MAX_SIZE: 32 MiB
DEFAULT_BODY_TIMEOUT = 30.0  # Core's -rpcservertimeout
WWW_AUTHENTICATE = 'Basic realm="jsonrpc"'
BAD_AUTH_DELAY = 0.25

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


class RpcServer:
    """JSON-RPC (and REST) over HTTP for one node."""

    def __init__(
        self,
        services: NodeServices,
        auth: RpcAuth,
        *,
        binds: Sequence[tuple[str, int]],
        allowed: Sequence[Subnet],
        rest: bool = False,
        registry: Registry = REGISTRY,
        max_body: int = MAX_BODY_BYTES,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        shutdown_timeout: float = 5.0,
        bad_auth_delay: float = BAD_AUTH_DELAY,
        threads: int = DEFAULT_RPC_THREADS,
        work_queue_depth: int = DEFAULT_RPC_WORKQUEUE,
    ) -> None:
        self.services = services
        self.auth = auth
        self.binds = list(binds)
        self.allowed = list(allowed)
        self.registry = registry
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.shutdown_timeout = shutdown_timeout
        self.bad_auth_delay = bad_auth_delay
        self.bound: list[tuple[str, int]] = []
        self.work_queue = WorkQueue(threads, work_queue_depth)
        self.app = web.Application(client_max_size=max_body, middlewares=[self._filter_clients])
        self.app.router.add_route("*", "/", self._handle_rpc)
        self.app.router.add_route("*", "/wallet/{wallet}", self._handle_rpc)
        self.app.router.add_route("*", "/wallet/", self._handle_rpc)  # the default wallet ""
        if rest:
            from .rest import add_rest_routes

            add_rest_routes(self.app, services, self.run_work)
        self._runner: web.AppRunner | None = None
        self._reading: dict[int, web.Request] = {}  # requests still sending their body

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> list[tuple[str, int]]:
        """Listen on every bind address that works; raises ``OSError`` when none does."""
        runner = web.AppRunner(
            self.app,
            access_log=logging.getLogger("aiohttp.access"),
            keepalive_timeout=self.body_timeout,
            shutdown_timeout=self.shutdown_timeout,
            handle_signals=False,
        )
        await runner.setup()
        self._runner = runner
        errors: list[str] = []
        for host, port in self.binds:
            try:
                site = web.SockSite(runner, _listen_socket(host, port))
                await site.start()
            except OSError as e:
                errors.append(f"{host}:{port}: {e.strerror or e}")
                continue
            self.bound.append((host, port))
            log.info("Binding RPC on address %s port %d", host, port)
        if not self.bound:
            await runner.cleanup()
            self._runner = None
            raise OSError("Unable to bind any endpoint for RPC server (" + "; ".join(errors) + ")")
        for failure in errors:
            log.warning("Binding RPC on address %s failed.", failure)
        return self.bound

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (up to the shutdown timeout), close."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            # Clients still sending a request body will not get an answer: drop them now
            # rather than wait for them through the shutdown timeout.
            for request in list(self._reading.values()):
                if request.transport is not None:
                    request.transport.close()
            await runner.cleanup()
        # Calls still running (a long mining call sees the shutdown and ends early) finish
        # before the chain is closed.
        await asyncio.get_running_loop().run_in_executor(None, self.work_queue.close)

    async def run_work(self, func: Any, *args: Any) -> Any:
        """Run ``func(*args)`` on the work queue; ``WorkQueueFull`` when it is full."""
        return await self.work_queue.run(func, *args)

    # -- request handling -----------------------------------------------------------------

    @web.middleware
    async def _filter_clients(self, request: web.Request, handler: Any) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if not self._client_allowed(peer[0] if peer else None):
            log.debug("HTTP request from %s rejected: client network is not allowed", peer)
            return web.Response(status=403)
        response: web.StreamResponse = await handler(request)
        return response

    def _client_allowed(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == net.version and addr in net for net in self.allowed)

    async def read_body(self, request: web.Request) -> bytes | web.Response:
        if request.content_length is not None and request.content_length > self.max_body:
            return web.Response(status=413, text="Request Entity Too Large")
        self._reading[id(request)] = request
        try:
            async with asyncio.timeout(self.body_timeout):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="Request Entity Too Large")
        except ConnectionError:
            # The client went away (or shutdown dropped it): nobody to answer.
            response = web.Response(status=400)
            response.force_close()
            return response
        except TimeoutError:
            log.debug("client %s took too long to send its request", request.remote)
            response = web.Response(status=408, text="Request Timeout")
            response.force_close()
            return response
        finally:
            self._reading.pop(id(request), None)

    async def _handle_rpc(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405, text="JSONRPC server handles only POST requests")
        header = request.headers.get("Authorization")
        if header is None:
            return web.Response(status=401, headers={"WWW-Authenticate": WWW_AUTHENTICATE})
        if self.auth.check(header) is None:
            log.warning("ThreadRPCServer incorrect password attempt from %s", request.remote)
            # Deter brute force without holding anyone else up.
            await asyncio.sleep(self.bad_auth_delay)
            return web.Response(status=401, headers={"WWW-Authenticate": WWW_AUTHENTICATE})
        body = await self.read_body(request)
        if isinstance(body, web.Response):
            return body
        # aiohttp has already URL-decoded the name; "/wallet/" names the default wallet "".
        wallet = request.match_info.get("wallet", "" if request.path == "/wallet/" else None)
        loop = asyncio.get_running_loop()
        try:
            status, reply = await self.work_queue.run(
                handle_body_sync, self.services, body, self.registry, loop, wallet
            )
        except WorkQueueFull:
            log.warning("Request rejected because http work queue depth exceeded.")
            return web.Response(status=503, text="Work queue depth exceeded")
        if reply is None:
            return web.Response(status=status)
        return web.Response(status=status, body=reply, content_type="application/json")


def _listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket; IPv6 sockets are IPv6-only so ``::1`` and ``127.0.0.1`` coexist."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
