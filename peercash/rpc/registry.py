"""How RPC methods are declared: a name, typed parameters with help, and a function.

Usage::

    @rpc_method("getblockhash", "blockchain", [Param("height", int, help="the height index")],
                result_help="hash (string) the block hash")
    def getblockhash(node: NodeServices, height: int) -> str: ...

The server maps positional or named JSON parameters onto ``params`` (checking types and counts,
raising ``RpcError(RPC_INVALID_PARAMETER/-8 or RPC_TYPE_ERROR/-3)``), then calls the function
with the node facade first. Functions may be ``async``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Core's error codes (src/rpc/protocol.h).
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_INTERNAL_ERROR = -32603
RPC_PARSE_ERROR = -32700
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_OUT_OF_MEMORY = -7
RPC_INVALID_PARAMETER = -8
RPC_DATABASE_ERROR = -20
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
RPC_IN_WARMUP = -28
RPC_METHOD_DEPRECATED = -32
RPC_CLIENT_NOT_CONNECTED = -9
RPC_CLIENT_IN_INITIAL_DOWNLOAD = -10
RPC_CLIENT_NODE_ALREADY_ADDED = -23
RPC_CLIENT_NODE_NOT_ADDED = -24
RPC_CLIENT_NODE_NOT_CONNECTED = -29
RPC_CLIENT_INVALID_IP_OR_SUBNET = -30
RPC_CLIENT_P2P_DISABLED = -31
RPC_WALLET_ERROR = -4
RPC_WALLET_NOT_FOUND = -18


INT32 = (-(1 << 31), (1 << 31) - 1)
UINT32 = (0, (1 << 32) - 1)


class RpcError(Exception):
    """An error returned to the client as ``{"code": code, "message": message}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_MISSING = object()


@dataclass(frozen=True)
class Param:
    """One parameter. ``type`` is one of int, float, str, bool, list, dict, or ``object`` (any);
    a parameter with a default is optional. ``float`` accepts ints too (amounts)."""

    name: str
    type: type
    default: Any = _MISSING
    help: str = ""
    int_range: tuple[int, int] = (-(1 << 63), (1 << 63) - 1)
    """For ``int``: the C++ type Core reads the value as (``getInt<int>`` is ``INT32``); a value
    outside it is ``-1 "JSON integer out of range"``, as Core answers."""

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclass(frozen=True)
class RpcMethod:
    name: str
    category: str
    params: tuple[Param, ...]
    func: Callable[..., Any]
    help: str = ""
    result_help: str = ""
    hidden: bool = False
    lock: bool = True
    """Run with the chain lock held (Core's ``cs_main``). False for methods that never touch
    the chain, and for long ones that take the lock themselves, step by step."""


@dataclass
class Registry:
    methods: dict[str, RpcMethod] = field(default_factory=dict)

    def add(self, method: RpcMethod) -> None:
        if method.name in self.methods:
            raise ValueError(f"RPC method {method.name} registered twice")
        self.methods[method.name] = method


REGISTRY = Registry()


def rpc_method(
    name: str,
    category: str,
    params: list[Param] | None = None,
    *,
    result_help: str = "",
    hidden: bool = False,
    lock: bool | None = None,
    registry: Registry = REGISTRY,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as RPC ``name``; its docstring is the help text. ``lock``: whether
    calls hold the chain lock (default: every category but ``control``)."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        registry.add(
            RpcMethod(
                name,
                category,
                tuple(params or ()),
                func,
                (func.__doc__ or "").strip(),
                result_help,
                hidden,
                category != "control" if lock is None else lock,
            )
        )
        return func

    return wrap


def bind_params(method: RpcMethod, params: Any) -> list[Any]:
    """Map JSON-RPC params (list or dict) onto the declared parameters, checking types."""
    declared = method.params
    if params is None:
        params = []
    values: list[Any] = []
    if isinstance(params, list):
        if len(params) > len(declared):
            raise RpcError(
                RPC_MISC_ERROR,
                f"too many parameters for {method.name}: {len(params)} given, "
                f"at most {len(declared)} accepted",
            )
        given = dict(zip([p.name for p in declared], params, strict=False))
    elif isinstance(params, dict):
        unknown = set(params) - {p.name for p in declared}
        if unknown:
            raise RpcError(RPC_INVALID_PARAMETER, f"Unknown named parameter {sorted(unknown)[0]}")
        given = dict(params)
    else:
        raise RpcError(RPC_INVALID_REQUEST, "Params must be an array or object")
    for p in declared:
        if p.name not in given or given[p.name] is None:
            if p.required:
                raise RpcError(
                    RPC_MISC_ERROR if isinstance(params, list) else RPC_INVALID_PARAMETER,
                    f"Missing required parameter {p.name}",
                )
            values.append(p.default)
            continue
        values.append(_check_type(p, given[p.name]))
    return values


def _check_type(p: Param, value: Any) -> Any:
    t = p.type
    if t is object:
        return value
    if t is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RpcError(
                RPC_TYPE_ERROR, f"Expected type number for {p.name}, got {_json_type(value)}"
            )
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):
                raise RpcError(
                    RPC_TYPE_ERROR, f"Expected type number for {p.name}, got {_json_type(value)}"
                )
            value = int(value)
        lo, hi = p.int_range
        if not lo <= value <= hi:
            raise RpcError(RPC_MISC_ERROR, "JSON integer out of range")
        return value
    if not isinstance(value, t) or (t is int and isinstance(value, bool)):
        raise RpcError(
            RPC_TYPE_ERROR, f"Expected type {_json_name(t)} for {p.name}, got {_json_type(value)}"
        )
    return value


def _json_name(t: type) -> str:
    return {str: "string", bool: "bool", list: "array", dict: "object", int: "number"}.get(
        t, t.__name__
    )


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    return _json_name(type(v))
