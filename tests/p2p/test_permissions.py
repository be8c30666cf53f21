"""``-whitelist`` and ``-whitebind`` (``peercash.p2p.permissions``): Core's parsing and messages
(``net_permissions.cpp``, checked against ``p2p_permissions.py``), the implicit permissions,
the directions, the configuration's parameter interaction, and the connection manager's effects
on loopback: a ``noban`` peer is let in though banned, never evicted and never punished, a
``-whitebind`` listener grants its permissions, ``out`` ranges apply to peers we dial."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conntools import MAGIC, Recorder, manager, run, until
from framework.p2p import P2PConnection

from peercash.config import ConfigError, config_from_args
from peercash.p2p.banman import BanMan
from peercash.p2p.netaddress import NetAddress
from peercash.p2p.permissions import (
    NetPermissions,
    PermissionParseError,
    Permissions,
    has_permission,
    parse_whitebind,
    parse_whitelist,
    permission_names,
    resolve_implicit,
)
from peercash.rpc.net import peer_info

LOOPBACK = NetAddress.ipv4("127.0.0.1", 0)
IMPLICIT = ["noban", "relay", "mempool", "download"]


def names(value: str, *, relay: bool = True, forcerelay: bool = False) -> list[str]:
    w = parse_whitelist(value)
    return permission_names(
        resolve_implicit(w.flags, whitelist_relay=relay, whitelist_forcerelay=forcerelay)
    )


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", IMPLICIT),
        ("noban@127.0.0.1", ["noban", "download"]),
        ("bloom,forcerelay@127.0.0.1", ["bloomfilter", "forcerelay", "relay"]),
        ("bloomfilter,mempool@10.0.0.0/8", ["bloomfilter", "mempool"]),
        ("download@127.0.0.1", ["download"]),
        ("relay,addr@::1", ["relay", "addr"]),
        ("all@127.0.0.1",
         ["bloomfilter", "noban", "forcerelay", "relay", "mempool", "download", "addr"]),
        ("noban,,relay,noban@1.2.3.4", ["noban", "relay", "download"]),  # empty names allowed
        ("@1.2.3.4", []),
        ("in,noban@1.2.3.4", ["noban", "download"]),
        ("noban,mempool@1.2.3.0/255.255.255.0", ["noban", "mempool", "download"]),
    ],
)  # fmt: skip
def test_whitelist_values_grant_core_s_permissions_in_core_s_order(
    value: str, expected: list[str]
) -> None:
    assert names(value) == expected


def test_implicit_permissions_follow_whitelistrelay_and_whitelistforcerelay() -> None:
    assert names("1.2.3.4", relay=False) == ["noban", "mempool", "download"]
    assert names("1.2.3.4", forcerelay=True) == ["noban", "forcerelay", "relay", "mempool",
                                                 "download"]  # fmt: skip
    # Given permissions are not implicit: the options do not touch them.
    assert names("mempool@1.2.3.4", forcerelay=True) == ["mempool"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bogus@1.2.3.4", "Invalid P2P permission: 'bogus'"),
        ("noban,Relay@1.2.3.4", "Invalid P2P permission: 'Relay'"),
        ("in@1.2.3.4", "Only direction was set, no permissions: 'in@1.2.3.4'"),
        ("out,in@1.2.3.4", "Only direction was set, no permissions: 'out,in@1.2.3.4'"),
        ("noban@nothing", "Invalid netmask specified in -whitelist: 'nothing'"),
        ("noban@127.0.0.1:230", "Invalid netmask specified in -whitelist: '127.0.0.1:230'"),
        ("1.2.3.4/33", "Invalid netmask specified in -whitelist: '1.2.3.4/33'"),
        ("", "Invalid netmask specified in -whitelist: ''"),
    ],
)
def test_whitelist_values_core_refuses(value: str, message: str) -> None:
    with pytest.raises(PermissionParseError) as e:
        parse_whitelist(value)
    assert str(e.value) == message


def test_directions() -> None:
    cases = {
        "noban@1.2.3.4": (True, False),
        "in,noban@1.2.3.4": (True, False),
        "out,noban@1.2.3.4": (False, True),
        "in,out,noban@1.2.3.4": (True, True),
        "1.2.3.4": (True, False),
    }
    for value, (inbound, outbound) in cases.items():
        w = parse_whitelist(value)
        assert (w.inbound, w.outbound) == (inbound, outbound), value
    perms = Permissions.parse(["noban@10.0.0.0/8", "out,mempool@10.1.0.0/16", "relay@::1"])
    inside = NetAddress.ipv4("10.1.2.3", 8333)
    assert permission_names(perms.for_peer(inside, inbound=True)) == ["noban", "download"]
    assert permission_names(perms.for_peer(inside, inbound=False)) == ["mempool"]
    assert perms.for_peer(NetAddress.ipv4("11.1.2.3", 1), inbound=True) == 0
    v6 = NetAddress.parse("[::1]:5", 0)
    assert permission_names(perms.for_peer(v6, inbound=True)) == ["relay"]
    # A listener's flags count for inbound peers only, implicit ones resolved after the ranges.
    flags = perms.for_peer(inside, inbound=True, bind_flags=int(NetPermissions.IMPLICIT))
    assert permission_names(flags) == IMPLICIT


def test_composite_flags_need_every_bit() -> None:
    assert has_permission(NetPermissions.NOBAN, NetPermissions.DOWNLOAD)
    assert not has_permission(NetPermissions.DOWNLOAD, NetPermissions.NOBAN)
    assert has_permission(NetPermissions.FORCERELAY, NetPermissions.RELAY)
    assert not has_permission(NetPermissions.RELAY, NetPermissions.FORCERELAY)
    assert permission_names(NetPermissions.ALL | NetPermissions.IMPLICIT) == names("all@1.1.1.1")


@pytest.mark.parametrize(
    ("value", "host", "port", "expected"),
    [
        ("noban@127.0.0.1:8", "127.0.0.1", 8, ["noban", "download"]),
        ("127.0.0.1:9", "127.0.0.1", 9, IMPLICIT),
        ("relay@[::1]:10", "::1", 10, ["relay"]),
        ("@127.0.0.1:99", "127.0.0.1", 99, []),
        ("in,mempool@127.0.0.1:7", "127.0.0.1", 7, ["mempool"]),
    ],
)
def test_whitebind_values(value: str, host: str, port: int, expected: list[str]) -> None:
    wb = parse_whitebind(value)
    assert (wb.host, wb.port) == (host, port)
    flags = resolve_implicit(wb.flags, whitelist_relay=True, whitelist_forcerelay=False)
    assert permission_names(flags) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("127.0.0.1", "Need to specify a port with -whitebind: '127.0.0.1'"),
        ("noban@[::1]", "Need to specify a port with -whitebind: '[::1]'"),
        ("localhost:7", "Cannot resolve -whitebind address: 'localhost:7'"),
        ("noban@127.0.0.1/10", "Cannot resolve -whitebind address: '127.0.0.1/10'"),
        ("out@127.0.0.1:7",
         'whitebind may only be used for incoming connections ("out" was passed)'),
        ("bogus@127.0.0.1:7", "Invalid P2P permission: 'bogus'"),
        ("in@127.0.0.1:7", "Only direction was set, no permissions: 'in@127.0.0.1:7'"),
    ],
)  # fmt: skip
def test_whitebind_values_core_refuses(value: str, message: str) -> None:
    with pytest.raises(PermissionParseError) as e:
        parse_whitebind(value)
    assert str(e.value) == message


# -- configuration -----------------------------------------------------------------------------


def test_config_reads_and_checks_the_options(tmp_path: Path) -> None:
    base = [f"-datadir={tmp_path}", "-regtest"]
    cfg = config_from_args([*base, "-whitelist=noban@127.0.0.1", "-whitelist=1.2.3.4",
                            "-whitebind=127.0.0.1:7777"])  # fmt: skip
    assert cfg.whitelist == ("noban@127.0.0.1", "1.2.3.4")
    assert cfg.whitebind == ("127.0.0.1:7777",)
    assert (cfg.whitelistrelay, cfg.whitelistforcerelay) == (True, False)
    # -whitebind implies -listen, as -bind does (even with -connect).
    assert config_from_args([*base, "-connect=1.2.3.4", "-whitebind=127.0.0.1:7"]).listen
    assert not config_from_args([*base, "-connect=1.2.3.4"]).listen
    for bad, message in [
        ("-whitelist=oopsie@127.0.0.1", "Invalid P2P permission: 'oopsie'"),
        ("-whitelist=in,out@127.0.0.1", "Only direction was set, no permissions"),
        ("-whitelist=noban@127.0.0.1:230", "Invalid netmask specified in -whitelist"),
        ("-whitebind=noban@127.0.0.1/10", "Cannot resolve -whitebind address"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_from_args([*base, bad])
    for args in (["-whitebind=noban@127.0.0.1:5", "-listen=0"], ["-bind=127.0.0.1", "-nolisten"]):
        with pytest.raises(ConfigError) as e:
            config_from_args([*base, *args])
        assert str(e.value) == "Cannot set -bind or -whitebind together with -listen=0"


def test_config_blocksonly_turns_whitelistrelay_off_unless_given(tmp_path: Path) -> None:
    base = [f"-datadir={tmp_path}", "-regtest"]
    assert config_from_args([*base, "-blocksonly"]).whitelistrelay is False
    assert config_from_args([*base, "-blocksonly", "-whitelistrelay"]).whitelistrelay is True
    # Core soft-sets -whitelistrelay for -blocksonly first: -whitelistforcerelay comes too late.
    cfg = config_from_args([*base, "-blocksonly", "-whitelistforcerelay"])
    assert (cfg.whitelistrelay, cfg.whitelistforcerelay) == (False, True)
    assert config_from_args([*base, "-nowhitelistrelay"]).whitelistrelay is False


# -- the connection manager ----------------------------------------------------------------------


async def raw(port: int | None) -> P2PConnection:
    assert port is not None
    return await P2PConnection(MAGIC).connect("127.0.0.1", port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_noban_peer_is_let_in_though_banned_and_never_evicted_or_punished() -> None:
    async def body() -> None:
        bans = BanMan()
        bans.ban(LOOPBACK, reason="test")
        perms = Permissions.parse(["noban@127.0.0.1"])
        async with manager(banman=bans, permissions=perms) as cm:
            rp = await raw(cm.listen_port)
            await rp.handshake(timeout=5.0)
            await until(lambda: len(cm.connected_peers()) == 1, what="the noban peer in")
            [peer] = cm.connected_peers()
            assert permission_names(peer.permissions) == ["noban", "download"]
            assert peer_info(peer)["permissions"] == ["noban", "download"]
            assert cm.eviction_candidates() == []
            # Misbehaviour (an inv of 50,001 items) is noted, not punished.
            await rp.send_frame(b"inv", b"\xfd\x51\xc3" + bytes(36))
            await until(lambda: peer.history, what="the misbehaviour noted")
            assert [(e.reason, e.action) for e in peer.history] == [
                ("inv message size = 50001", "not punished (noban peer)")
            ]
            assert await rp.ping(5.0)
            assert not peer.is_closing and not cm.banman.is_discouraged(LOOPBACK)
        # Without the permission the same address is refused.
        async with manager(banman=bans) as cm:
            rp = await raw(cm.listen_port)
            assert await rp.wait_closed(2.0)
            assert cm.peers() == []

    run(body())


def test_a_peer_without_noban_is_evictable_and_punished() -> None:
    async def body() -> None:
        perms = Permissions.parse(["mempool@127.0.0.1"])
        async with manager(permissions=perms) as cm:
            rp = await raw(cm.listen_port)
            await rp.handshake(timeout=5.0)
            await until(lambda: len(cm.connected_peers()) == 1)
            [peer] = cm.connected_peers()
            assert permission_names(peer.permissions) == ["mempool"]
            assert [c.id for c in cm.eviction_candidates()] == [peer.id]
            await rp.send_frame(b"inv", b"\xfd\x51\xc3" + bytes(36))
            assert await rp.wait_closed(5.0)
            assert cm.banman.is_discouraged(LOOPBACK)  # discourage_local is set in tests

    run(body())


def test_whitebind_grants_its_permissions_to_who_connects_there() -> None:
    async def body() -> None:
        port = free_port()
        whitebinds = (parse_whitebind(f"127.0.0.1:{port}"),)
        async with manager(whitebinds=whitebinds) as cm:
            ports = [p for _, p in cm.bound]
            assert len(ports) == 2 and ports[1] == port  # -bind, then -whitebind
            plain = ports[0]
            a = await raw(port)
            await a.handshake(timeout=5.0)
            b = await raw(plain)
            await b.handshake(timeout=5.0)
            await until(lambda: len(cm.connected_peers()) == 2)
            got = sorted(permission_names(p.permissions) for p in cm.connected_peers())
            assert got == [[], IMPLICIT]

    run(body())


def test_out_ranges_apply_to_the_peers_we_dial() -> None:
    async def body() -> None:
        async with (
            manager(Recorder(), permissions=Permissions.parse(["noban@127.0.0.1"])) as b,
            manager(permissions=Permissions.parse(["out,noban@127.0.0.1"])) as a,
        ):
            peer = await a.connect_to(f"127.0.0.1:{b.listen_port}")
            await until(lambda: len(b.connected_peers()) == 1 and peer.handshake_done)
            assert permission_names(peer.permissions) == ["noban", "download"]
            # b's range is for inbound peers: a is one.
            assert permission_names(b.connected_peers()[0].permissions) == ["noban", "download"]
        async with (
            manager(Recorder()) as b,
            manager(permissions=Permissions.parse(["noban@127.0.0.1"])) as a,
        ):
            peer = await a.connect_to(f"127.0.0.1:{b.listen_port}")
            await until(lambda: peer.handshake_done)
            assert peer.permissions == 0  # an "in" range does not cover peers we dial

    run(body())
