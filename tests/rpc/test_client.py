"""``peercash cli``'s argument conversion and output, as ``bitcoin-cli`` does them."""

from __future__ import annotations

from typing import Any

import pytest

from peercash.rpc.client import (
    CliError,
    ConnectionFailed,
    call_with_wait,
    convert_named,
    convert_positional,
    format_error,
    format_result,
    loads,
)


def test_positional_arguments_convert_only_listed_parameters() -> None:
    assert convert_positional("getblockhash", ["5"]) == [5]
    assert convert_positional("getblock", ["00ab", "2"]) == ["00ab", 2]
    assert convert_positional("getblockheader", ["00ab", "false"]) == ["00ab", False]
    assert convert_positional("echo", ["5", "[1]"]) == ["5", "[1]"]  # echo converts nothing
    assert convert_positional("echojson", ["5", '{"a":null}']) == [5, {"a": None}]
    assert convert_positional("generatetoaddress", ["1", "bcrt1q", "10"]) == [1, "bcrt1q", 10]
    assert convert_positional("logging", ['["net"]', "[]"]) == [["net"], []]
    with pytest.raises(CliError, match="Error parsing JSON: five"):
        convert_positional("getblockhash", ["five"])


def test_named_arguments() -> None:
    assert convert_named("getblock", ["blockhash=00", "verbosity=0"]) == {
        "blockhash": "00", "verbosity": 0}  # fmt: skip
    # Later values win; bare values are positional under "args".
    assert convert_named("getblock", ["verbosity=1", "verbosity=2", "00"]) == {
        "verbosity": 2, "args": ["00"]}  # fmt: skip
    assert convert_named("echo", ["arg0=a=b"]) == {"arg0": "a=b"}


def test_results_print_as_core() -> None:
    assert format_result(None) == ""
    assert format_result("text\nwith lines") == "text\nwith lines"
    assert format_result(5) == "5"
    assert format_result(True) == "true"
    assert format_result([]) == "[\n]"
    assert format_result({}) == "{\n}"
    value = loads('{"amount": 50.00000000, "d": 4.6e-10, "list": [1, {"x": []}], "s": "é"}')
    assert format_result(value) == (
        '{\n  "amount": 50.00000000,\n  "d": 4.6e-10,\n  "list": [\n    1,\n    {\n'
        '      "x": [\n      ]\n    }\n  ],\n  "s": "é"\n}'
    )


def test_errors_print_as_core_with_abs_code_exit_status() -> None:
    text, code = format_error({"code": -8, "message": "Block height out of range"})
    assert text == "error code: -8\nerror message:\nBlock height out of range"
    assert code == 8
    assert format_error({"code": -1, "message": "x"})[1] == 1
    assert format_error({"code": -256, "message": "x"})[1] == 1  # never 0 for an error
    assert format_error("weird")[0] == 'error: "weird"'


def test_rpcwait_retries_transient_failures() -> None:
    attempts: list[int] = []
    replies: list[Any] = [
        ConnectionFailed("down"),
        {"result": None, "error": {"code": -28, "message": "Loading block index…"}},
        {"result": 3, "error": None},
    ]

    def post() -> Any:
        attempts.append(1)
        r = replies.pop(0)
        if isinstance(r, Exception):
            raise r
        return r

    assert call_with_wait(post, wait=True, wait_timeout=0, sleep=lambda s: None)["result"] == 3
    assert len(attempts) == 3

    def down() -> Any:
        raise ConnectionFailed("down")

    with pytest.raises(ConnectionFailed, match="down"):
        call_with_wait(down, wait=False, wait_timeout=0)
    with pytest.raises(ConnectionFailed, match="timeout on transient error: down"):
        call_with_wait(
            down, wait=True, wait_timeout=0.01, sleep=lambda s: __import__("time").sleep(0.02)
        )
