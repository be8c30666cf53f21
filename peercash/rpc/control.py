"""Control methods: ``help``, ``stop``, ``uptime``, ``getmemoryinfo``, ``logging``,
``getrpcinfo``, the hidden ``echo``/``echojson`` that Core keeps for tests, and the hidden
``getlooplag`` (how late the node's event loop wakes, for the load tests).

``help`` renders every registered method from its ``Param`` declarations in Core's layout
(signature, description, ``Arguments:``, ``Result:``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from .registry import (
    REGISTRY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    Param,
    Registry,
    RpcError,
    RpcMethod,
    rpc_method,
)
from .services import NodeServices

HIDDEN = "hidden"


# -- help -----------------------------------------------------------------------------------------


def _type_name(t: type) -> str:
    return {
        str: "string",
        int: "numeric",
        float: "numeric",
        bool: "boolean",
        list: "json array",
        dict: "json object",
    }.get(t, "any")


def _oneline(p: Param) -> str:
    if p.type is str:
        return f'"{p.name}"'
    if p.type is list:
        return f'["{p.name}",...]'
    if p.type is dict:
        return "{...}"
    return p.name


def signature(method: RpcMethod) -> str:
    """``getblock "blockhash" ( verbosity )``: optional arguments grouped in parentheses."""
    out = method.name
    in_optional = False
    for p in method.params:
        out += " "
        if not p.required:
            if not in_optional:
                out += "( "
            in_optional = True
        else:
            if in_optional:
                out += ") "
            in_optional = False
        out += _oneline(p)
    if in_optional:
        out += " )"
    return out


def method_help(method: RpcMethod) -> str:
    text = signature(method) + "\n"
    if method.help:
        text += "\n" + method.help.strip() + "\n"
    if method.params:
        text += "\nArguments:\n"
        width = max(len(p.name) for p in method.params)
        for i, p in enumerate(method.params, 1):
            kind = _type_name(p.type)
            if p.required:
                tag = f"{kind}, required"
            elif p.default is None:
                tag = f"{kind}, optional"
            else:
                tag = f"{kind}, optional, default={json.dumps(p.default)}"
            text += f"{i}. {p.name.ljust(width)}    ({tag}) {p.help}".rstrip() + "\n"
    if method.result_help:
        text += "\nResult:\n" + method.result_help.strip() + "\n"
    text += f"\nExamples:\n> peercash cli {method.name}" + "".join(
        f" {_oneline(p) if p.type is str else p.name}" for p in method.params if p.required
    )
    return text


def help_text(registry: Registry, command: str | None) -> str:
    if command:
        m = registry.methods.get(command)
        if m is None:
            return f"help: unknown command: {command}"
        return method_help(m)
    methods = sorted(
        (m for m in registry.methods.values() if m.category != HIDDEN and not m.hidden),
        key=lambda m: (m.category, m.name),
    )
    lines: list[str] = []
    category = None
    for m in methods:
        if m.category != category:
            if category is not None:
                lines.append("")
            category = m.category
            lines.append(f"== {category[:1].upper()}{category[1:]} ==")
        lines.append(signature(m))
    return "\n".join(lines)


@rpc_method(
    "help",
    "control",
    [Param("command", str, None, "The command to get help on")],
    result_help='"text"    (string) The help text',
)
def help_(node: NodeServices, command: str | None) -> str:
    """List all commands, or get help for a specified command."""
    return help_text(REGISTRY, command)


# -- node control ---------------------------------------------------------------------------------


@rpc_method(
    "stop",
    "control",
    result_help="\"str\"    (string) A string with the content 'peercash stopping'",
)
def stop(node: NodeServices) -> str:
    """Request a graceful shutdown of peercash."""
    node.request_stop()
    return "peercash stopping"


@rpc_method(
    "uptime",
    "control",
    result_help="n    (numeric) The number of seconds that the server has been running",
)
def uptime(node: NodeServices) -> int:
    """Returns the total uptime of the server."""
    return node.uptime()


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


@rpc_method(
    "getmemoryinfo",
    "control",
    [
        Param(
            "mode",
            str,
            "stats",
            "determines what kind of information is returned.\n"
            '- "stats" returns general statistics about memory usage in the daemon.',
        )
    ],
    result_help=(
        "{\n"
        '  "locked" : {           (json object) Information about locked memory manager\n'
        '    "used" : n,          (numeric) Number of bytes used (here: the process\'s RSS)\n'
        '    "free" : n,          (numeric) Number of bytes available in current arenas\n'
        '    "total" : n,         (numeric) Total number of bytes managed\n'
        '    "locked" : n,        (numeric) Amount of bytes that succeeded locking\n'
        '    "chunks_used" : n,   (numeric) Number allocated chunks\n'
        '    "chunks_free" : n    (numeric) Number unused chunks\n'
        "  }\n"
        "}"
    ),
)
def getmemoryinfo(node: NodeServices, mode: str) -> dict[str, Any]:
    """Returns an object containing information about memory usage.

    peercash locks no memory: "used" and "total" report the process's resident set size."""
    if mode == "stats":
        rss = _rss_bytes()
        return {
            "locked": {
                "used": rss,
                "free": 0,
                "total": rss,
                "locked": 0,
                "chunks_used": 0,
                "chunks_free": 0,
            }
        }
    if mode == "mallocinfo":
        raise RpcError(RPC_INVALID_PARAMETER, "mallocinfo mode not available")
    raise RpcError(RPC_INVALID_PARAMETER, f"unknown mode {mode}")


@rpc_method(
    "logging",
    "control",
    [
        Param(
            "include",
            list,
            None,
            'The categories to add to debug logging ("all" or "1" for every one)',
        ),
        Param("exclude", list, None, 'The categories to remove from debug logging ("all" or "1")'),
    ],
    result_help='{\n  "category" : true|false,    (boolean) if being debug logged or not\n  ...\n}',
)
def logging_(
    node: NodeServices, include: list[Any] | None, exclude: list[Any] | None
) -> dict[str, bool]:
    """Gets and sets the logging configuration.

    When called without an argument, returns the list of categories with status that are
    currently being debug logged or not. When called with arguments, adds or removes categories
    from debug logging and returns the lists above. The arguments are evaluated in order
    "include", "exclude"."""
    for group in (include or [], exclude or []):
        for c in group:
            if not isinstance(c, str):
                raise RpcError(RPC_INVALID_PARAMETER, "logging categories must be strings")
    try:
        if include or exclude:
            return node.set_log_categories(include or [], exclude or [])
    except ValueError as e:
        raise RpcError(RPC_INVALID_PARAMETER, str(e)) from None
    return node.log_categories()


@rpc_method(
    "getrpcinfo",
    "control",
    result_help=(
        "{\n"
        '  "active_commands" : [    (json array) All active commands\n'
        "    {\n"
        '      "method" : "str",    (string) The name of the RPC command\n'
        '      "duration" : n       (numeric) The running time in microseconds\n'
        "    },\n"
        "    ...\n"
        "  ],\n"
        '  "logpath" : "str"        (string) The complete file path to the debug log\n'
        "}"
    ),
)
def getrpcinfo(node: NodeServices) -> dict[str, Any]:
    """Returns details of the RPC server."""
    now = time.monotonic()
    active = [
        {"method": c.method, "duration": int((now - c.started) * 1_000_000)}
        for c in node.active_commands.values()
    ]
    path = node.log.path if node.log is not None else None
    return {"active_commands": active, "logpath": str(path) if path else ""}


# -- echo (hidden, for tests) ---------------------------------------------------------------------

_ECHO_PARAMS = [Param(f"arg{i}", object, None) for i in range(10)]


def _echo(args: tuple[Any, ...]) -> list[Any]:
    values = list(args)
    while values and values[-1] is None:
        values.pop()
    return values


@rpc_method("echo", HIDDEN, _ECHO_PARAMS, result_help="Returns whatever was passed in")
def echo(node: NodeServices, *args: Any) -> list[Any]:
    """Simply echo back the input arguments. This command is for testing.

    The difference between echo and echojson is that echojson has argument conversion enabled
    in the client-side table in peercash cli and the GUI. There is no server-side difference."""
    return _echo(args)


@rpc_method("echojson", HIDDEN, _ECHO_PARAMS, result_help="Returns whatever was passed in")
def echojson(node: NodeServices, *args: Any) -> list[Any]:
    """Simply echo back the input arguments. This command is for testing.

    The difference between echo and echojson is that echojson has argument conversion enabled
    in the client-side table in peercash cli and the GUI. There is no server-side difference."""
    return _echo(args)


# -- getlooplag (hidden, for tests) ---------------------------------------------------------------


@rpc_method(
    "getlooplag",
    HIDDEN,
    [Param("seconds", float, None, "summarise the last this many seconds (default: all kept)")],
    lock=False,
    result_help=(
        "{\n"
        '  "max_ms" : n,       (numeric) The largest wake-up lag of the event loop\n'
        '  "median_ms" : n,    (numeric) The median lag\n'
        '  "p90_ms" : n,       (numeric) The 90th percentile\n'
        '  "samples" : n,      (numeric) How many measurements these are made of\n'
        '  "interval_ms" : n   (numeric) How long the monitor sleeps between two of them\n'
        "}"
    ),
)
def getlooplag(node: NodeServices, seconds: float | None) -> dict[str, Any]:
    """How late the node's event loop wakes: a task sleeps 50 ms again and again and records how
    much later it woke. Returns the lag over the last ``seconds``. This command is for testing."""
    if seconds is not None and seconds <= 0:
        raise RpcError(RPC_INVALID_PARAMETER, "seconds must be positive")
    monitor = node.loop_lag
    if monitor is None:
        raise RpcError(RPC_MISC_ERROR, "the event loop is not monitored")
    return monitor.snapshot(seconds)
