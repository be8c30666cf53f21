"""Network methods, as Bitcoin Core's ``rpc/net.cpp``: ``getconnectioncount``, ``ping``,
``getpeerinfo``, ``addnode``, ``disconnectnode``, ``getaddednodeinfo``, ``getnettotals``,
``getnetworkinfo``, ``setban``, ``listbanned``, ``clearbanned``, ``setnetworkactive``,
``getnodeaddresses`` and (hidden, for tests) ``addpeeraddress``, with Core's names, parameters,
results and error codes; and the peercash-only hidden ``getcompactblockstats`` (the sync
manager's compact block counters).

Layer 4. The connection manager lives on the event loop thread and is not thread-safe, while
these methods run on RPC worker threads: each one does its work in a function handed to
``connman.run_threadsafe``, which runs it on the loop and returns its result (a snapshot of
plain data). None of them needs the chain lock (``lock=False``). Without a connection manager
(P2P not started yet) they answer ``-31`` "Error: Peer-to-peer functionality missing or
disabled", as Core does.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import peercash
from peercash.p2p.banman import SubNet
from peercash.p2p.connman import ConnectionManager
from peercash.p2p.messages import PROTOCOL_VERSION
from peercash.p2p.netaddress import NetAddress, NetAddressError, Network, TimedAddress
from peercash.p2p.peer import ConnType, Peer
from peercash.p2p.permissions import permission_names

from .registry import (
    RPC_CLIENT_INVALID_IP_OR_SUBNET,
    RPC_CLIENT_NODE_ALREADY_ADDED,
    RPC_CLIENT_NODE_NOT_ADDED,
    RPC_CLIENT_NODE_NOT_CONNECTED,
    RPC_CLIENT_P2P_DISABLED,
    RPC_INVALID_PARAMETER,
    RPC_INVALID_PARAMS,
    RPC_MISC_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import btc

# Core's service flag names, by bit (src/protocol.cpp, ``serviceFlagToStr``).
SERVICE_NAMES = {0: "NETWORK", 2: "BLOOM", 3: "WITNESS", 6: "COMPACT_FILTERS",
                 10: "NETWORK_LIMITED", 11: "P2P_V2"}  # fmt: skip
NETWORK_NAMES = {Network.IPV4: "ipv4", Network.IPV6: "ipv6", Network.TORV2: "onion",
                 Network.TORV3: "onion", Network.I2P: "i2p", Network.CJDNS: "cjdns"}  # fmt: skip
_NETWORKS_BY_NAME = {"ipv4": Network.IPV4, "ipv6": Network.IPV6, "onion": Network.TORV3,
                     "i2p": Network.I2P, "cjdns": Network.CJDNS}  # fmt: skip
MIN_RELAY_FEE = 1000  # sat/kvB: Core's DEFAULT_MIN_RELAY_TX_FEE and DEFAULT_INCREMENTAL_RELAY_FEE
LOCAL_MANUAL = 4  # Core's score for -externalip addresses


class NetNode(Protocol):
    """What these methods need of the node facade."""

    @property
    def connman(self) -> ConnectionManager | None: ...


def client_version() -> int:
    """Core's ``CLIENT_VERSION`` form: 1,000,000 × major + 10,000 × minor + 100 × patch."""
    major, minor, patch = (int(x) for x in peercash.__version__.split(".")[:3])
    return 1_000_000 * major + 10_000 * minor + 100 * patch


def _connman(node: NetNode) -> ConnectionManager:
    cm: ConnectionManager | None = getattr(node, "connman", None)
    if cm is None:
        raise RpcError(
            RPC_CLIENT_P2P_DISABLED, "Error: Peer-to-peer functionality missing or disabled"
        )
    return cm


def services_names(services: int) -> list[str]:
    return [
        SERVICE_NAMES.get(bit, f"UNKNOWN[2^{bit}]") for bit in range(64) if services & (1 << bit)
    ]


def network_name(addr: NetAddress) -> str:
    cls = addr.network_class()
    return "not_publicly_routable" if cls is None else NETWORK_NAMES[cls]


# -- peers ---------------------------------------------------------------------------------------


def peer_info(peer: Peer) -> dict[str, Any]:
    """``getpeerinfo``'s object for one peer (Core's fields, then ``misbehavior_history``)."""
    info: dict[str, Any] = {"id": peer.id, "addr": peer.addr_name}
    if peer.addr_bind is not None:
        info["addrbind"] = peer.addr_bind
    if peer.addr_local is not None:
        info["addrlocal"] = peer.addr_local
    info["network"] = network_name(peer.address)
    info["services"] = f"{peer.services:016x}"
    info["servicesnames"] = services_names(peer.services)
    info["relaytxes"] = peer.relays_txs
    info["lastsend"] = int(peer.last_send)
    info["lastrecv"] = int(peer.last_recv)
    info["last_transaction"] = int(peer.last_tx_time)
    info["last_block"] = int(peer.last_block_time)
    info["bytessent"] = peer.bytes_sent
    info["bytesrecv"] = peer.bytes_recv
    info["conntime"] = int(peer.connected_time)
    info["timeoffset"] = peer.time_offset
    if peer.ping_time is not None:
        info["pingtime"] = round(peer.ping_time, 6)
    if peer.min_ping is not None:
        info["minping"] = round(peer.min_ping, 6)
    wait = peer.ping_wait
    if wait is not None:
        info["pingwait"] = round(wait, 6)
    info["version"] = peer.their_version.version if peer.their_version is not None else 0
    info["subver"] = peer.user_agent
    info["inbound"] = peer.inbound
    info["bip152_hb_to"] = peer.bip152_hb_to
    info["bip152_hb_from"] = peer.bip152_hb_from
    info["startingheight"] = peer.start_height
    info["presynced_headers"] = peer.presynced_headers
    info["synced_headers"] = peer.synced_headers
    info["synced_blocks"] = peer.synced_blocks
    info["inflight"] = list(peer.inflight)
    info["addr_relay_enabled"] = peer.addr_relay_enabled
    limiter = peer.addr_limiter
    info["addr_processed"] = limiter.processed if limiter is not None else 0
    info["addr_rate_limited"] = limiter.rate_limited if limiter is not None else 0
    info["permissions"] = permission_names(peer.permissions)
    info["minfeefilter"] = btc(peer.fee_filter)
    info["bytessent_per_msg"] = dict(sorted(peer.bytes_sent_per_msg.items()))
    info["bytesrecv_per_msg"] = dict(sorted(peer.bytes_recv_per_msg.items()))
    info["connection_type"] = peer.conn_type.value
    info["transport_protocol_type"] = "v1"
    info["session_id"] = ""
    info["misbehavior_history"] = [e.to_json() for e in peer.history]
    return info


@rpc_method("getconnectioncount", "network", lock=False,
            result_help="n (numeric) The connection count")  # fmt: skip
def getconnectioncount(node: NetNode) -> int:
    """Returns the number of connections to other nodes."""
    cm = _connman(node)
    return cm.run_threadsafe(lambda: sum(1 for p in cm.peers() if not p.is_closing))


@rpc_method("ping", "network", lock=False)
def ping(node: NetNode) -> None:
    """Requests that a ping be sent to all other nodes, to measure ping time.
    Results are provided in getpeerinfo, pingtime and pingwait fields are decimal seconds.
    Ping command is handled in queue with all other commands, so it measures processing backlog,
    not just network ping."""
    cm = _connman(node)
    cm.run_threadsafe(cm.ping_all)


@rpc_method("getpeerinfo", "network", lock=False,
            result_help="[{id, addr, addrbind, network, services, servicesnames, relaytxes, "
            "lastsend, lastrecv, ..., connection_type, transport_protocol_type, session_id, "
            "misbehavior_history}, ...]")  # fmt: skip
def getpeerinfo(node: NetNode) -> list[dict[str, Any]]:
    """Returns data about each connected network peer as a json array of objects."""
    cm = _connman(node)
    return cm.run_threadsafe(lambda: [peer_info(p) for p in cm.peers() if not p.is_closing])


# -- manual connections --------------------------------------------------------------------------


@rpc_method(
    "addnode",
    "network",
    [
        Param("node", str, help="The address of the peer to connect to"),
        Param(
            "command",
            str,
            help="'add' to add a node to the list, 'remove' to remove a node "
            "from the list, 'onetry' to try a connection to the node once",
        ),
        Param("v2transport", bool, False, help="Attempt to connect using BIP324 v2 transport"),
    ],
    lock=False,
)
def addnode(node: NetNode, peer: str, command: str, v2transport: bool = False) -> None:
    """Attempts to add or remove a node from the addnode list.
    Or try a connection to a node once.
    Nodes added using addnode (or -connect) are protected from DoS disconnection and are not
    required to be full nodes/support SegWit as other outbound peers are (though such peers will
    not be synced from)."""
    if command not in ("add", "remove", "onetry"):
        raise RpcError(RPC_MISC_ERROR, 'addnode "node" "command" ( v2transport )\n'
                       "command must be one of: add, remove, onetry")  # fmt: skip
    cm = _connman(node)
    if v2transport:
        raise RpcError(RPC_INVALID_PARAMETER,
                       "Error: v2transport requested but not enabled (see -v2transport)")  # fmt: skip
    if command == "onetry":
        cm.run_threadsafe(cm.connect_once, peer)
        return
    if command == "add":
        if not cm.run_threadsafe(cm.add_node, peer):
            raise RpcError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: Node already added")
        return
    if not cm.run_threadsafe(cm.remove_node, peer):
        raise RpcError(
            RPC_CLIENT_NODE_NOT_ADDED,
            "Error: Node could not be removed. It has not been added previously.",
        )


@rpc_method(
    "disconnectnode",
    "network",
    [
        Param("address", str, "", help="The IP address/port of the node"),
        Param("nodeid", int, None, help="The node ID (see getpeerinfo for node IDs)"),
    ],
    lock=False,
)
def disconnectnode(node: NetNode, address: str = "", nodeid: int | None = None) -> None:
    """Immediately disconnects from the specified peer node.
    Strictly one out of 'address' and 'nodeid' can be provided to identify the node.
    To disconnect by nodeid, either set 'address' to the empty string, or call using the named
    'nodeid' argument only."""
    cm = _connman(node)
    if address and nodeid is None:
        target: int | str = address
    elif nodeid is not None and not address:
        target = nodeid
    else:
        raise RpcError(RPC_INVALID_PARAMS, "Only one of address and nodeid should be provided.")
    if not cm.run_threadsafe(cm.disconnect, target, "disconnectnode RPC"):
        raise RpcError(RPC_CLIENT_NODE_NOT_CONNECTED, "Node not found in connected nodes")


@rpc_method(
    "getaddednodeinfo",
    "network",
    [Param("node", str, None, help="If provided, return information about this specific node")],
    lock=False,
)
def getaddednodeinfo(node: NetNode, peer: str | None = None) -> list[dict[str, Any]]:
    """Returns information about the given added node, or all added nodes
    (note that onetry addnodes are not listed here)."""
    cm = _connman(node)

    def collect() -> list[dict[str, Any]] | None:
        added = cm.added_nodes()
        if peer is not None:
            if peer not in added:
                return None
            added = [peer]
        out = []
        for name in added:
            live = [p for p in cm.peers() if p.addr_name == name and not p.is_closing]
            entry: dict[str, Any] = {"addednode": name, "connected": bool(live)}
            entry["addresses"] = [
                {"address": str(p.address), "connected": "inbound" if p.inbound else "outbound"}
                for p in live
            ]
            out.append(entry)
        return out

    result = cm.run_threadsafe(collect)
    if result is None:
        raise RpcError(RPC_CLIENT_NODE_NOT_ADDED, "Error: Node has not been added.")
    return result


# -- totals and the network ----------------------------------------------------------------------


@rpc_method("getnettotals", "network", lock=False,
            result_help="{totalbytesrecv, totalbytessent, timemillis, uploadtarget}")  # fmt: skip
def getnettotals(node: NetNode) -> dict[str, Any]:
    """Returns information about network traffic, including bytes in, bytes out,
    and current system time."""
    cm = _connman(node)
    recv, sent = cm.run_threadsafe(cm.totals)
    return {
        "totalbytesrecv": recv,
        "totalbytessent": sent,
        "timemillis": int(time.time() * 1000),
        "uploadtarget": {
            "timeframe": 86400,
            "target": 0,
            "target_reached": False,
            "serve_historical_blocks": True,
            "bytes_left_in_cycle": 0,
            "time_left_in_cycle": 0,
        },
    }


@rpc_method("getnetworkinfo", "network", lock=False,
            result_help="{version, subversion, protocolversion, localservices, "
            "localservicesnames, localrelay, timeoffset, networkactive, connections, "
            "connections_in, connections_out, networks, relayfee, incrementalfee, "
            "localaddresses, warnings}")  # fmt: skip
def getnetworkinfo(node: NetNode) -> dict[str, Any]:
    """Returns an object containing various state info regarding P2P networking."""
    cm = _connman(node)

    def collect() -> dict[str, Any]:
        live = [p for p in cm.peers() if not p.is_closing]
        inbound = sum(1 for p in live if p.inbound)
        services = cm.options.services
        proxy = f"{cm.proxy[0]}:{cm.proxy[1]}" if cm.proxy is not None else ""
        networks = []
        for name, net in _NETWORKS_BY_NAME.items():
            reachable = cm.reachable(net)
            uses_proxy = net in (Network.IPV4, Network.IPV6, Network.TORV3)
            networks.append({
                "name": name,
                "limited": not reachable,
                "reachable": reachable,
                "proxy": proxy if uses_proxy else "",
                "proxy_randomize_credentials": bool(proxy) and uses_proxy
                and cm.options.proxy_randomize_credentials,
            })  # fmt: skip
        return {
            "version": client_version(),
            "subversion": cm.options.user_agent,
            "protocolversion": PROTOCOL_VERSION,
            "localservices": f"{services:016x}",
            "localservicesnames": services_names(services),
            "localrelay": True,
            "timeoffset": 0,
            "networkactive": cm.network_active,
            "connections": len(live),
            "connections_in": inbound,
            "connections_out": len(live) - inbound,
            "networks": networks,
            "relayfee": btc(MIN_RELAY_FEE),
            "incrementalfee": btc(MIN_RELAY_FEE),
            "localaddresses": [
                {"address": a.host, "port": a.port, "score": LOCAL_MANUAL}
                for a in cm.local_addresses
            ],
            "warnings": [],
        }

    return cm.run_threadsafe(collect)


@rpc_method(
    "setnetworkactive",
    "network",
    [Param("state", bool, help="true to enable networking, false to disable")],
    lock=False,
)
def setnetworkactive(node: NetNode, state: bool) -> bool:
    """Disable/enable all p2p network activity."""
    cm = _connman(node)

    def apply() -> bool:
        cm.set_network_active(state)
        return cm.network_active

    return cm.run_threadsafe(apply)


# -- bans ----------------------------------------------------------------------------------------


def _parse_ban_target(text: str) -> tuple[SubNet, NetAddress | None]:
    """A subnet (``/`` in the text) or a single address (then returned too), as Core's setban
    tells them apart."""
    try:
        if "/" in text:
            return SubNet.parse(text), None
        addr = NetAddress.parse(text.strip(), 0)
        return SubNet.single(addr), addr
    except (ValueError, NetAddressError):
        raise RpcError(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Error: Invalid IP/Subnet") from None


@rpc_method(
    "setban",
    "network",
    [
        Param(
            "subnet",
            str,
            help="The IP/Subnet (see getpeerinfo for nodes IP) with an optional "
            "netmask (default is /32 = single IP)",
        ),
        Param(
            "command",
            str,
            help="'add' to add an IP/Subnet to the list, 'remove' to remove "
            "an IP/Subnet from the list",
        ),
        Param(
            "bantime",
            int,
            0,
            help="time in seconds how long (or until when if [absolute] is "
            "set) the IP is banned (0 or empty means using the default time of 24h which can "
            "also be overwritten by the -bantime startup argument)",
        ),
        Param(
            "absolute",
            bool,
            False,
            help="If set, the bantime must be an absolute timestamp expressed in UNIX epoch time",
        ),
    ],
    lock=False,
)
def setban(
    node: NetNode, subnet: str, command: str, bantime: int = 0, absolute: bool = False
) -> None:
    """Attempts to add or remove an IP/Subnet from the banned list."""
    if command not in ("add", "remove"):
        raise RpcError(RPC_MISC_ERROR, 'setban "subnet" "command" ( bantime absolute )\n'
                       "command must be add or remove")  # fmt: skip
    cm = _connman(node)
    target, single = _parse_ban_target(subnet)
    now = int(time.time())

    def add() -> str | None:
        if single is not None:
            banned = cm.banman.is_banned(single)
        else:
            banned = cm.banman.is_subnet_banned(target)
        if banned:
            return "already"
        if absolute and bantime < now:
            return "past"
        until = bantime if absolute else (now + bantime if bantime > 0 else None)
        cm.banman.ban(target, until, reason="setban RPC")
        cm.disconnect(target, "banned (setban RPC)")
        return None

    def remove() -> bool:
        return cm.banman.unban(target)

    if command == "add":
        problem = cm.run_threadsafe(add)
        if problem == "already":
            raise RpcError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: IP/Subnet already banned")
        if problem == "past":
            raise RpcError(RPC_INVALID_PARAMETER, "Error: Absolute timestamp is in the past")
        return
    if not cm.run_threadsafe(remove):
        raise RpcError(
            RPC_CLIENT_INVALID_IP_OR_SUBNET,
            "Error: Unban failed. Requested address/subnet was not previously manually banned.",
        )


@rpc_method("listbanned", "network", lock=False,
            result_help="[{address, ban_created, banned_until, ban_duration, time_remaining}]")  # fmt: skip
def listbanned(node: NetNode) -> list[dict[str, Any]]:
    """List all manually banned IPs/Subnets."""
    cm = _connman(node)
    now = int(time.time())
    entries = cm.run_threadsafe(cm.banman.list)
    return [
        {
            "address": str(e.subnet),
            "ban_created": e.created,
            "banned_until": e.until,
            "ban_duration": e.until - e.created,
            "time_remaining": e.until - now,
        }
        for e in entries
    ]


@rpc_method("clearbanned", "network", lock=False)
def clearbanned(node: NetNode) -> None:
    """Clear all banned IPs."""
    cm = _connman(node)
    cm.run_threadsafe(cm.banman.clear)


# -- addresses -----------------------------------------------------------------------------------


def _address_json(ta: TimedAddress) -> dict[str, Any]:
    a = ta.address
    return {
        "time": ta.time,
        "services": ta.services,
        "address": a.host,
        "port": a.port,
        "network": network_name(a) if a.is_routable() else NETWORK_NAMES[a.network],
    }


@rpc_method(
    "getnodeaddresses",
    "network",
    [
        Param(
            "count",
            int,
            1,
            help="The maximum number of addresses to return. Specify 0 to "
            "return all known addresses.",
        ),
        Param(
            "network",
            str,
            None,
            help="Return only addresses of the specified network. Can "
            "be one of: ipv4, ipv6, onion, i2p, cjdns.",
        ),
    ],
    lock=False,
)
def getnodeaddresses(
    node: NetNode, count: int = 1, network: str | None = None
) -> list[dict[str, Any]]:
    """Return known addresses, after filtering for quality and recency.
    These can potentially be used to find new peers in the network.
    The total number of addresses known to the node may be higher."""
    cm = _connman(node)
    if count < 0:
        raise RpcError(RPC_INVALID_PARAMETER, "Address count out of range")
    net: Network | None = None
    if network is not None:
        net = _NETWORKS_BY_NAME.get(network.lower())
        if net is None:
            raise RpcError(RPC_INVALID_PARAMETER, f"Network not recognized: {network}")
    found = cm.run_threadsafe(lambda: cm.addrman.get_addr(count, 0, net))
    return [_address_json(ta) for ta in found]


@rpc_method(
    "getcompactblockstats",
    "hidden",
    lock=False,
    result_help=(
        "{\n"
        '  "reconstructed" : n,  (numeric) Compact blocks rebuilt from our pool alone\n'
        '  "roundtrip" : n,      (numeric) Compact blocks completed after a getblocktxn\n'
        '  "fallback" : n,       (numeric) Compact blocks given up for the full block\n'
        '  "txs" : {             (json object) Where the rebuilt blocks\' transactions came from\n'
        '    "prefilled" : n, "mempool" : n, "extra" : n, "requested" : n\n'
        "  }\n"
        "}"
    ),
)
def getcompactblockstats(node: NetNode) -> dict[str, Any]:
    """How the compact blocks (BIP152) this node received were turned into blocks, since it
    started. peercash only (Core keeps no such counts, it logs each block): for tests and
    measurements. This command is for testing."""
    cm = _connman(node)

    def collect() -> dict[str, Any] | None:
        stats = getattr(cm.handler, "compact_stats", None)  # the sync manager's counters
        if stats is None:
            return None
        out: dict[str, Any] = dict(stats)
        out["txs"] = dict(getattr(cm.handler, "compact_tx_stats", {}))
        return out

    result = cm.run_threadsafe(collect)
    if result is None:
        raise RpcError(RPC_MISC_ERROR, "compact blocks are not handled (no sync manager)")
    return result


@rpc_method(
    "addpeeraddress",
    "hidden",
    [
        Param("address", str, help="The IP address of the peer"),
        Param("port", int, help="The port of the peer", int_range=(0, 65535)),
        Param(
            "tried",
            bool,
            False,
            help="If true, attempt to add the peer to the tried addresses table",
        ),
    ],
    lock=False,
)
def addpeeraddress(node: NetNode, address: str, port: int, tried: bool = False) -> dict[str, Any]:
    """Add the address of a potential peer to an address manager table. This RPC is for testing
    only."""
    cm = _connman(node)
    try:
        host = address.strip()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        addr = NetAddress.parse(host, 0)
        addr = NetAddress(addr.network, addr.addr, port)
    except (NetAddressError, ValueError):
        raise RpcError(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Invalid IP address") from None

    def add() -> dict[str, Any]:
        from peercash.p2p.messages import NODE_NETWORK, NODE_WITNESS

        out: dict[str, Any] = {}
        entry = TimedAddress(int(time.time()), NODE_NETWORK | NODE_WITNESS, addr)
        success = False
        if cm.addrman.add([entry], addr):
            success = True
            if tried and not cm.addrman.good(addr):
                success = False
                out["error"] = "failed-adding-to-tried"
        else:
            out["error"] = "failed-adding-to-new"
        out["success"] = success
        return out

    return cm.run_threadsafe(add)


__all__ = ["ConnType", "client_version", "peer_info", "services_names"]
