"""JSON-RPC as Bitcoin Core speaks it, independent of HTTP.

Core's dialect (``src/httprpc.cpp``, ``src/rpc/request.cpp``, v28+):

- A request without ``"jsonrpc"`` (or with ``"1.0"``) is *legacy*: the reply always has both
  ``result`` and ``error`` (one of them null), and a failed call is also an HTTP error status
  (500; 400 for an invalid request, 404 for an unknown method).
- ``"jsonrpc": "2.0"`` gets a strict 2.0 reply: ``jsonrpc``, then ``result`` *or* ``error``, and
  HTTP 200 even for failed calls. A 2.0 request without ``id`` is a notification: it runs, and
  the reply is HTTP 204 with no body.
- The reply carries ``id`` only when the request had one (a parse error replies ``"id": null``).
- A batch (an array) always answers 200 with an array of replies, one per non-notification; a
  non-empty batch of only notifications answers 204.
- Unparseable JSON is ``-32700 Parse error`` (HTTP 500); a top-level value that is neither object
  nor array is ``-32700 Top-level object parse error``.

``handle_body_sync`` is the whole exchange: bytes in, (status, bytes or None) out. It runs on an
RPC worker thread (``workqueue``); each call holds the chain lock while it runs (unless its method
is declared ``lock=False``), so a batch or a long call lets other clients in between its steps.
"""

from __future__ import annotations

import asyncio
import contextvars
import decimal
import inspect
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .registry import (
    REGISTRY,
    RPC_IN_WARMUP,
    RPC_INVALID_PARAMETER,
    RPC_INVALID_REQUEST,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_OUT_OF_MEMORY,
    RPC_PARSE_ERROR,
    Registry,
    RpcError,
    bind_params,
)
from .services import ActiveCommand, NodeServices

log = logging.getLogger("peercash.rpc")

HTTP_OK = 200
HTTP_NO_CONTENT = 204
HTTP_BAD_REQUEST = 400
HTTP_NOT_FOUND = 404
HTTP_INTERNAL_SERVER_ERROR = 500


class Version(Enum):
    LEGACY = 1
    V2 = 2


_NO_ID = object()  # the request had no "id" member


# -- JSON out ---------------------------------------------------------------------------------

_DEC_TOKEN = "\x00" + secrets.token_hex(8) + ":"
_DEC_RE = re.compile('"' + re.escape(json.dumps(_DEC_TOKEN)[1:-1]) + r'(-?[0-9.eE+\-]+)"')


def _default(o: Any) -> Any:
    if isinstance(o, decimal.Decimal):
        if not o.is_finite():
            raise ValueError(f"cannot encode {o} in JSON")
        return _DEC_TOKEN + format(o, "f")
    if isinstance(o, bytes | bytearray):
        return o.hex()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON as Core writes it; ``Decimal`` amounts come out as exact numbers
    (``50.00000000``), bytes as hex."""
    text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text:
        text = _DEC_RE.sub(r"\1", text)
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes | str) -> Any:
    """Strict JSON in (no NaN/Infinity); raises ``ValueError`` for anything else."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# -- requests ---------------------------------------------------------------------------------


@dataclass
class Request:
    """One parsed call. ``id`` is ``_NO_ID`` when the request had none."""

    id: Any = None
    version: Version = Version.LEGACY
    method: str = ""
    params: list[Any] | dict[str, Any] | None = None

    @property
    def is_notification(self) -> bool:
        return self.id is _NO_ID and self.version is Version.V2


def parse_request(value: Any, req: Request) -> None:
    """Fill ``req`` from a request object, as far as it goes before an error (so the error
    reply carries the id and version already read). Raises ``RpcError``."""
    if not isinstance(value, dict):
        raise RpcError(RPC_INVALID_REQUEST, "Invalid Request object")
    req.id = value.get("id", _NO_ID)
    req.version = Version.LEGACY
    marker = value.get("jsonrpc")
    if marker is not None:
        if not isinstance(marker, str):
            raise RpcError(RPC_INVALID_REQUEST, "jsonrpc field must be a string")
        if marker == "2.0":
            req.version = Version.V2
        elif marker != "1.0":
            raise RpcError(RPC_INVALID_REQUEST, "JSON-RPC version not supported")
    method = value.get("method")
    if method is None:
        raise RpcError(RPC_INVALID_REQUEST, "Missing method")
    if not isinstance(method, str):
        raise RpcError(RPC_INVALID_REQUEST, "Method must be a string")
    req.method = method
    params = value.get("params")
    if params is None:
        req.params = []
    elif isinstance(params, list | dict):
        req.params = params
    else:
        raise RpcError(RPC_INVALID_REQUEST, "Params must be an array or object")


def reply_obj(result: Any, error: dict[str, Any] | None, req: Request) -> dict[str, Any]:
    reply: dict[str, Any] = {}
    if req.version is Version.V2:
        reply["jsonrpc"] = "2.0"
    if error is None:
        reply["result"] = result
        if req.version is Version.LEGACY:
            reply["error"] = None
    else:
        if req.version is Version.LEGACY:
            reply["result"] = None
        reply["error"] = error
    if req.id is not _NO_ID:
        reply["id"] = req.id
    return reply


def error_obj(err: RpcError) -> dict[str, Any]:
    return {"code": err.code, "message": err.message}


def http_status_for(code: int) -> int:
    if code == RPC_INVALID_REQUEST:
        return HTTP_BAD_REQUEST
    if code == RPC_METHOD_NOT_FOUND:
        return HTTP_NOT_FOUND
    return HTTP_INTERNAL_SERVER_ERROR


# -- running methods --------------------------------------------------------------------------


def _named_with_args(method_params: tuple[Any, ...], params: dict[str, Any]) -> Any:
    """Core lets named calls carry extra positional values under ``"args"`` (``-named`` with
    bare values); fold them into one dict of names."""
    if "args" not in params or any(p.name == "args" for p in method_params):
        return params
    positional = params["args"]
    if not isinstance(positional, list):
        raise RpcError(RPC_INVALID_PARAMETER, "Parameter args must be an array")
    if len(positional) > len(method_params):
        raise RpcError(RPC_MISC_ERROR, "too many positional arguments")
    merged = {k: v for k, v in params.items() if k != "args"}
    for p, v in zip(method_params, positional, strict=False):
        if p.name in merged:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                f"Parameter {p.name} specified twice both as positional and named argument",
            )
        merged[p.name] = v
    return merged


_call_numbers = itertools.count(1)

REQUEST_WALLET: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "REQUEST_WALLET", default=None
)
"""The wallet a request's URI names (``/wallet/<name>``), None for ``/``; set for the calls of
one HTTP request by ``handle_body_sync`` (Core's ``JSONRPCRequest::URI``)."""

MAX_BATCH_REQUESTS = 100_000
"""Requests in one batch; a larger batch is refused whole (Core has no limit; the body limit of
32 MiB alone would let a batch of tiny requests take gigabytes to parse and answer)."""
MAX_BATCH_REPLY_BYTES = 32 << 20
"""What a batch's answer may take; calls after that are not run and answer -7 instead."""


def execute_sync(
    services: NodeServices,
    method_name: str,
    params: list[Any] | dict[str, Any] | None,
    registry: Registry = REGISTRY,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Any:
    """Run one method on the calling (worker) thread; every failure comes out as ``RpcError``
    (Core: unexpected exceptions are ``-1`` with the exception's message).

    Methods run with the chain lock held unless declared ``lock=False``; ``async`` methods (the
    ``waitfor…`` family) run on ``loop`` while this thread waits for them."""
    if services.warmup:
        raise RpcError(RPC_IN_WARMUP, services.warmup_message)
    method = registry.methods.get(method_name)
    if method is None:
        raise RpcError(RPC_METHOD_NOT_FOUND, "Method not found")
    if isinstance(params, dict):
        params = _named_with_args(method.params, params)
    args = bind_params(method, params)
    number = next(_call_numbers)
    services.active_commands[number] = ActiveCommand(method_name, time.monotonic())
    try:
        if inspect.iscoroutinefunction(method.func):
            return _run_on_loop(method.func(services, *args), loop)
        lock = getattr(services, "chain_lock", None) if method.lock else None
        if lock is None:
            result = method.func(services, *args)
        else:
            with lock:
                _settle_chain(services)
                result = method.func(services, *args)
        if inspect.isawaitable(result):
            result = _run_on_loop(result, loop)
        return result
    except RpcError:
        raise
    except Exception as e:
        log.warning("RPC %s failed: %s", method_name, e, exc_info=True)
        raise RpcError(RPC_MISC_ERROR, str(e) or type(e).__name__) from e
    finally:
        services.active_commands.pop(number, None)


def _settle_chain(services: NodeServices) -> None:
    """During initial sync blocks connect before their scripts are checked; a method reading
    the chain must not see them (a block that fails is undone), so it waits for those checks."""
    try:
        chain = getattr(services, "chain", None)
    except RpcError:
        return  # still loading: the method itself answers "in warm-up"
    settle = getattr(chain, "settle_pending", None)
    if settle is not None:
        settle()


def _run_on_loop(awaitable: Awaitable[Any], loop: asyncio.AbstractEventLoop | None) -> Any:
    async def run() -> Any:
        return await awaitable

    if loop is None:
        return asyncio.run(run())
    return asyncio.run_coroutine_threadsafe(run(), loop).result()


async def execute(
    services: NodeServices,
    method_name: str,
    params: list[Any] | dict[str, Any] | None,
    registry: Registry = REGISTRY,
) -> Any:
    """``execute_sync`` on a thread of its own (for callers on an event loop)."""
    loop = asyncio.get_running_loop()
    return await asyncio.to_thread(execute_sync, services, method_name, params, registry, loop)


def _exec_caught(
    services: NodeServices,
    req: Request,
    registry: Registry,
    loop: asyncio.AbstractEventLoop | None,
) -> dict[str, Any]:
    try:
        result = execute_sync(services, req.method, req.params, registry, loop)
    except RpcError as e:
        return reply_obj(None, error_obj(e), req)
    return reply_obj(result, None, req)


def _encode(reply: Any) -> bytes:
    return (dumps(reply) + "\n").encode()


def handle_body_sync(
    services: NodeServices,
    body: bytes,
    registry: Registry = REGISTRY,
    loop: asyncio.AbstractEventLoop | None = None,
    wallet: str | None = None,
) -> tuple[int, bytes | None]:
    """One HTTP POST body in, (HTTP status, reply body or None for 204) out; runs on a worker
    thread (``loop`` is the event loop that async methods run on; ``wallet`` the wallet the
    URI names)."""
    token = REQUEST_WALLET.set(wallet)
    try:
        return _handle_body(services, body, registry, loop)
    finally:
        REQUEST_WALLET.reset(token)


def _handle_body(
    services: NodeServices,
    body: bytes,
    registry: Registry,
    loop: asyncio.AbstractEventLoop | None,
) -> tuple[int, bytes | None]:
    req = Request()
    try:
        try:
            value = loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RpcError(RPC_PARSE_ERROR, "Parse error") from None
        if isinstance(value, dict):
            parse_request(value, req)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("ThreadRPCServer method=%s", _sanitize(req.method))
            if req.version is Version.V2:
                reply = _exec_caught(services, req, registry, loop)
                if req.is_notification:
                    return HTTP_NO_CONTENT, None
                return HTTP_OK, _encode(reply)
            result = execute_sync(services, req.method, req.params, registry, loop)
            return HTTP_OK, _encode(reply_obj(result, None, req))
        if isinstance(value, list):
            return _handle_batch(services, value, registry, loop)
        raise RpcError(RPC_PARSE_ERROR, "Top-level object parse error")
    except RpcError as e:
        return http_status_for(e.code), _encode(reply_obj(None, error_obj(e), req))


def _handle_batch(
    services: NodeServices,
    items: list[Any],
    registry: Registry,
    loop: asyncio.AbstractEventLoop | None,
) -> tuple[int, bytes | None]:
    if len(items) > MAX_BATCH_REQUESTS:
        raise RpcError(
            RPC_INVALID_REQUEST,
            f"Batch of {len(items)} requests is over the limit of {MAX_BATCH_REQUESTS}",
        )
    parts: list[bytes] = []
    size = 0
    any_reply = False
    for i, item in enumerate(items):
        one = Request()
        try:
            parse_request(item, one)
            if size > MAX_BATCH_REPLY_BYTES:
                raise RpcError(
                    RPC_OUT_OF_MEMORY,
                    f"Batch reply is over {MAX_BATCH_REPLY_BYTES >> 20} MiB: request {i} and "
                    "the rest were not run; send smaller batches",
                )
            reply = _exec_caught(services, one, registry, loop)
        except RpcError as e:
            reply = reply_obj(None, error_obj(e), one)
        items[i] = None  # let the parsed request go as soon as it is answered
        if not one.is_notification:
            any_reply = True
            part = dumps(reply).encode()
            size += len(part) + 1
            parts.append(part)
    if not any_reply and items:
        return HTTP_NO_CONTENT, None
    return HTTP_OK, b"[" + b",".join(parts) + b"]\n"


async def handle_body(
    services: NodeServices, body: bytes, registry: Registry = REGISTRY
) -> tuple[int, bytes | None]:
    """``handle_body_sync`` on a thread of its own (for callers on an event loop)."""
    loop = asyncio.get_running_loop()
    return await asyncio.to_thread(handle_body_sync, services, body, registry, loop)


def _sanitize(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in " .,;-_/:?@()")[:100]
