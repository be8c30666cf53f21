"""Real ``peercash node`` processes connected over loopback: the handshake seen through
``getpeerinfo`` on both sides, ``disconnectnode``, ``setnetworkactive``, ``addnode``, bans that
survive a restart and refuse a banned address, and the address book RPCs.

No node here makes automatic outbound connections (``--connect``, or ``--connect=0`` with
``--listen``), so nothing is ever dialled but loopback. Every process is stopped by the test
(``with NodeProcess(...)``), also when it fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from framework.p2p import P2PConnection

from peercash.consensus.params import get_params
from peercash.tools.nodeproc import NodeProcess, RpcCallError

pytestmark = pytest.mark.slow
MAGIC = get_params("regtest").magic
QUIET = ["--connect=0", "--listen"]  # accept peers, dial none


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        time.sleep(0.1)


def rpc_error(node: NodeProcess, method: str, *params: Any) -> tuple[int, str]:
    with pytest.raises(RpcCallError) as e:
        node.call(method, *params)
    return e.value.code, e.value.message


def test_two_nodes_connect_and_obey_the_connection_rpcs(tmp_path: Path) -> None:
    a = NodeProcess(tmp_path / "a", extra_args=QUIET)
    with a:
        a.start()
        b = NodeProcess(tmp_path / "b", extra_args=[f"--connect=127.0.0.1:{a.port}", "--listen"])
        with b:
            b.start()
            wait_until(lambda: a.call("getconnectioncount") == 1
                       and b.call("getpeerinfo") and b.call("getpeerinfo")[0]["version"],
                       what="the handshake")  # fmt: skip
            [pa] = a.call("getpeerinfo")
            [pb] = b.call("getpeerinfo")
            assert pb["addr"] == f"127.0.0.1:{a.port}"
            assert (pb["connection_type"], pb["inbound"]) == ("manual", False)
            assert (pa["connection_type"], pa["inbound"]) == ("inbound", True)
            for p in (pa, pb):
                assert p["version"] == 70016
                assert p["subver"] == "/peercash:0.1.0/"
                assert p["servicesnames"] == ["NETWORK", "WITNESS", "NETWORK_LIMITED"]
                assert p["services"] == "0000000000000409"
                assert p["network"] == "not_publicly_routable"
                assert p["transport_protocol_type"] == "v1" and p["session_id"] == ""
                assert p["startingheight"] == 0 and p["relaytxes"] is True
                assert p["bytessent"] > 0 and p["bytesrecv"] > 0
            assert pb["bytessent_per_msg"]["version"] == pa["bytesrecv_per_msg"]["version"]
            assert pb["bytessent_per_msg"]["getaddr"] == 24  # outbound asks for addresses
            assert "getaddr" not in pa["bytessent_per_msg"]
            info = a.call("getnetworkinfo")
            assert (info["connections"], info["connections_in"], info["connections_out"]) == (
                1,
                1,
                0,
            )
            assert info["protocolversion"] == 70016 and info["subversion"] == "/peercash:0.1.0/"
            assert info["localservicesnames"] == ["NETWORK", "WITNESS", "NETWORK_LIMITED"]
            assert info["networkactive"] is True and info["version"] == 10000
            totals = a.call("getnettotals")
            assert totals["totalbytesrecv"] >= pa["bytesrecv"] > 0

            # disconnectnode: by id on A; B, a -connect node, dials again.
            first_id = pa["id"]
            assert rpc_error(a, "disconnectnode", "", 999) == (
                -29,
                "Node not found in connected nodes",
            )
            assert rpc_error(a, "disconnectnode", "x", 1) == (
                -32602,
                "Only one of address and nodeid should be provided.",
            )
            a.call("disconnectnode", "", first_id)
            wait_until(lambda: [p["id"] for p in a.call("getpeerinfo")] not in ([], [first_id]),
                       what="B reconnected")  # fmt: skip

            # setnetworkactive: false drops every peer, true brings the manual one back.
            assert b.call("setnetworkactive", False) is False
            wait_until(
                lambda: b.call("getconnectioncount") == 0 and a.call("getconnectioncount") == 0
            )
            assert b.call("getnetworkinfo")["networkactive"] is False
            assert b.call("setnetworkactive", True) is True
            wait_until(lambda: b.call("getconnectioncount") == 1, what="B back")

            # addnode: A dials B as a manual peer too.
            target = f"127.0.0.1:{b.port}"
            assert a.call("addnode", target, "add") is None
            assert rpc_error(a, "addnode", target, "add") == (-23, "Error: Node already added")
            wait_until(
                lambda: a.call("getaddednodeinfo", target)[0]["connected"], what="added node"
            )
            [added] = a.call("getaddednodeinfo")
            assert added["addednode"] == target
            assert added["addresses"] == [{"address": target, "connected": "outbound"}]
            kinds = sorted(p["connection_type"] for p in a.call("getpeerinfo"))
            assert kinds == ["inbound", "manual"]
            assert a.call("addnode", target, "remove") is None
            assert rpc_error(a, "addnode", target, "remove") == (
                -24,
                "Error: Node could not be removed. It has not been added previously.",
            )
            assert rpc_error(a, "getaddednodeinfo", target) == (
                -24,
                "Error: Node has not been added.",
            )
            assert a.call("ping") is None


async def _refused(port: int) -> bool:
    rp = await P2PConnection(MAGIC).connect("127.0.0.1", port)
    try:
        return await rp.wait_closed(3.0)
    finally:
        rp.close()


async def _accepted(port: int) -> bool:
    rp = await P2PConnection(MAGIC).connect("127.0.0.1", port)
    try:
        await rp.handshake(timeout=5.0)
        return await rp.ping(5.0)
    finally:
        rp.close()


def test_bans_persist_across_a_restart_and_refuse_connections(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", extra_args=QUIET)
    with node:
        node.start()
        assert asyncio.run(_accepted(node.port))
        assert node.call("setban", "127.0.0.1", "add") is None
        assert node.call("setban", "10.0.0.0/8", "add", 3600) is None
        assert rpc_error(node, "setban", "127.0.0.1", "add") == (
            -23,
            "Error: IP/Subnet already banned",
        )
        assert rpc_error(node, "setban", "not-an-ip", "add") == (-30, "Error: Invalid IP/Subnet")
        assert rpc_error(node, "setban", "1.2.3.4", "add", 1000, True) == (
            -8,
            "Error: Absolute timestamp is in the past",
        )
        assert rpc_error(node, "setban", "1.2.3.4", "remove") == (
            -30,
            "Error: Unban failed. Requested address/subnet was not previously manually banned.",
        )
        assert rpc_error(node, "setban", "1.2.3.4", "ban")[0] == -1
        banned = node.call("listbanned")
        assert [b["address"] for b in banned] == ["10.0.0.0/8", "127.0.0.1/32"]
        assert banned[0]["ban_duration"] == 3600 and banned[1]["ban_duration"] == 86400
        assert 0 < banned[0]["time_remaining"] <= 3600
        assert asyncio.run(_refused(node.port))
        assert node.call("getconnectioncount") == 0

        # The address book: addpeeraddress and getnodeaddresses (nothing is dialled: -connect=0).
        assert node.call("addpeeraddress", "1.2.3.4", 8333) == {"success": True}
        assert node.call("addpeeraddress", "1.2.3.4", 8333) == {
            "success": False,
            "error": "failed-adding-to-new",
        }
        assert rpc_error(node, "addpeeraddress", "nonsense", 8333) == (-30, "Invalid IP address")
        [entry] = node.call("getnodeaddresses", 0)
        assert (entry["address"], entry["port"], entry["network"], entry["services"]) == (
            "1.2.3.4",
            8333,
            "ipv4",
            9,
        )
        assert node.call("getnodeaddresses", 0, "ipv6") == []
        assert rpc_error(node, "getnodeaddresses", -1) == (-8, "Address count out of range")
        assert rpc_error(node, "getnodeaddresses", 1, "foo") == (-8, "Network not recognized: foo")

        node.stop()
        node.start()
        assert [b["address"] for b in node.call("listbanned")] == ["10.0.0.0/8", "127.0.0.1/32"]
        assert asyncio.run(_refused(node.port))
        assert [e["address"] for e in node.call("getnodeaddresses", 0)] == ["1.2.3.4"]
        assert node.call("setban", "10.0.0.0/8", "remove") is None
        assert node.call("clearbanned") is None
        assert node.call("listbanned") == []
        assert asyncio.run(_accepted(node.port))
