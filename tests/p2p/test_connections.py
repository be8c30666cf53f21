"""Connections on loopback, in process: the handshake between two managers, and a raw peer that
plays every hostile case byte by byte. Each case asserts the exact reason and what it cost the
peer (disconnected, discouraged, or the message dropped and the connection kept)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conntools import MAGIC, Recorder, manager, run, until
from framework.p2p import P2PConnection, frame_bytes, version_message

from peercash.p2p import messages as m
from peercash.p2p.addrman import AddrMan
from peercash.p2p.banman import BanMan
from peercash.p2p.connman import ConnectionManager
from peercash.p2p.netaddress import NetAddress, TimedAddress
from peercash.p2p.peer import ConnType, Peer, PeerTimeouts

LOOPBACK = NetAddress.ipv4("127.0.0.1", 0)


async def raw(cm: ConnectionManager, **kw: int) -> P2PConnection:
    port = cm.listen_port
    assert port is not None
    return await P2PConnection(MAGIC).connect("127.0.0.1", port, **kw)


def only_peer(cm: ConnectionManager) -> Peer:
    peers = cm.peers()
    assert len(peers) == 1, peers
    return peers[0]


async def closed_peer(cm: ConnectionManager, rp: P2PConnection, peer: Peer | None = None) -> Peer:
    """The node-side peer of ``rp`` (``peer`` when already known), after ``rp`` saw the
    connection close."""
    peer = peer or only_peer(cm)
    assert await rp.wait_closed(5.0), "the node did not close the connection"
    await until(lambda: peer.closed)
    return peer


# -- the handshake --------------------------------------------------------------------------------


def test_handshake_between_two_managers() -> None:
    async def body() -> None:
        ha, hb = Recorder(), Recorder()
        async with manager(ha) as a, manager(hb) as b:
            peer = await a.connect_to(f"127.0.0.1:{b.listen_port}", ConnType.MANUAL)
            await until(lambda: ha.connected and hb.connected, what="both handshakes")
            other = hb.connected[0]
            assert peer.handshake_done and other.inbound and other.conn_type is ConnType.INBOUND
            assert peer.their_version is not None and peer.their_version.version == 70016
            assert peer.user_agent == other.user_agent == "/peercash:0.1.0/"
            assert peer.services == other.services == 0x409  # NETWORK, WITNESS, NETWORK_LIMITED
            assert peer.wtxid_relay and peer.addrv2 and other.wtxid_relay and other.addrv2
            # Outbound asks for addresses once; the inbound side answers (with nothing to say).
            assert peer.bytes_sent_per_msg["getaddr"] == 24
            assert set(other.bytes_recv_per_msg) == {
                "version", "wtxidrelay", "sendaddrv2", "verack", "getaddr",
            }  # fmt: skip
            assert other.bytes_recv_per_msg["version"] == peer.bytes_sent_per_msg["version"]
            # The first ping goes out right after the handshake; both sides measured it.
            await until(lambda: peer.ping_time is not None and other.ping_time is not None)
            assert peer.min_ping is not None and peer.min_ping <= peer.ping_time  # type: ignore[operator]
            assert a.totals()[1] == peer.bytes_sent
            # Disconnect by the name it was connected with.
            assert a.disconnect(f"127.0.0.1:{b.listen_port}", "test")
            await until(lambda: hb.disconnected and ha.disconnected)
            assert peer.disconnect_reason == "test"
            assert not a.disconnect(12345)

    run(body())


def test_self_connection_is_detected() -> None:
    async def body() -> None:
        async with manager() as cm:
            out = await cm.connect_to(f"127.0.0.1:{cm.listen_port}", ConnType.MANUAL)
            await until(lambda: not cm.peers(), what="both ends closed")
            assert out.disconnect_reason is not None
            assert out.disconnect_reason.startswith("connected to self at 127.0.0.1:")

    run(body())


def test_outbound_peer_without_services_is_dropped() -> None:
    async def body() -> None:
        async with manager() as cm:
            server_peer: list[P2PConnection] = []

            async def serve(rp: P2PConnection) -> None:
                server_peer.append(rp)
                await rp.wait_for(m.Version)
                await rp.send(version_message(services=m.NODE_NETWORK))  # no witness
                await rp.wait_closed()

            server = await P2PConnection.listen(serve, "127.0.0.1", 0, magic=MAGIC)
            port = server.sockets[0].getsockname()[1]
            try:
                peer = await cm.connect_to(
                    NetAddress.ipv4("127.0.0.1", port), ConnType.OUTBOUND_FULL_RELAY
                )
                await until(lambda: peer.closed)
                assert peer.disconnect_reason == (
                    "peer does not offer the expected services (00000001 offered, "
                    "00000009 expected)"
                )
            finally:
                server.close()

    run(body())


# -- hostile bytes --------------------------------------------------------------------------------


# A framing error (wrong magic, a length over the limit) loses the byte stream: Core's CConnman
# closes the socket (ReceiveMsgBytes fails -> CloseSocketDisconnect) and nothing more: it is not
# misbehaviour, so the address is not discouraged.


def test_garbage_disconnects_without_discouraging() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.send_raw(b"GET / HTTP/1.1\r\n\r\n")
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == "header error: wrong network magic 47455420"
            assert not cm.banman.is_discouraged(LOOPBACK)

    run(body())


def test_bad_magic_disconnects_without_discouraging() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            await rp.send_raw(frame_bytes(bytes.fromhex("f9beb4d9"), b"ping", bytes(8)))
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == "header error: wrong network magic f9beb4d9"
            assert [e.action for e in peer.history] == ["disconnected"]
            assert not cm.banman.is_discouraged(LOOPBACK)
            rp2 = await raw(cm)
            await rp2.handshake(timeout=5.0)
            assert await rp2.ping(5.0)
            assert not only_peer(cm).prefer_evict

    run(body())


def test_a_peer_disconnected_before_its_transport_is_up_closes_the_socket() -> None:
    """Between accepting a socket and wrapping it (``connect_accepted_socket`` awaits) the
    peer is already registered, so the discouragement of its address disconnects it too. The
    transport that arrives afterwards must be closed, or the socket lives on: read and ignored,
    never timed out (found by the functional hostile-peer load test)."""

    async def body() -> None:
        async with manager() as cm:
            ours, theirs = socket.socketpair()
            with theirs:
                peer = cm._new_peer(LOOPBACK, ConnType.INBOUND, None)
                peer.disconnect("address discouraged: test")
                assert peer.closed and cm.peer(peer.id) is None
                loop = asyncio.get_running_loop()
                await loop.connect_accepted_socket(lambda: peer, ours)
                theirs.setblocking(False)
                assert await asyncio.wait_for(loop.sock_recv(theirs, 10), 5) == b""  # EOF
                assert peer.disconnect_reason == "address discouraged: test"

    run(body())


def test_bad_checksum_is_dropped_and_the_connection_kept() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            await rp.send_frame(b"ping", bytes(8), check=b"\xff\xff\xff\xff")
            assert await rp.ping(5.0)
            peer = only_peer(cm)
            assert not peer.is_closing and not cm.banman.is_discouraged(LOOPBACK)
            assert peer.bytes_recv_per_msg["*other*"] == 24 + 8

    run(body())


def test_oversized_length_disconnects_without_discouraging() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            await rp.send_raw(frame_bytes(MAGIC, b"block", b"", length=4_000_001))
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == (
                "header error: b'block' declares 4000001 bytes, over 4000000"
            )
            assert not cm.banman.is_discouraged(LOOPBACK)

    run(body())


def test_truncated_payload_is_dropped_and_a_split_frame_waits() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            # A ping whose header says 4 bytes: the payload is no 8-byte nonce.
            await rp.send_frame(b"ping", bytes(4))
            assert await rp.ping(5.0)
            peer = only_peer(cm)
            assert [(e.reason, e.action) for e in peer.history] == [
                ("malformed ping message (4 bytes): need 8 bytes at offset 0, have 4", "dropped")
            ]
            # A frame that arrives in pieces is held until it is whole, then handled.
            whole = frame_bytes(MAGIC, b"ping", (7).to_bytes(8, "little"))
            await rp.send_raw(whole[:30])
            await asyncio.sleep(0.1)
            await rp.send_raw(whole[30:])
            pong = await rp.wait_for(m.Pong)
            assert isinstance(pong, m.Pong) and pong.nonce == 7

    run(body())


def test_version_twice_and_messages_before_version_are_ignored() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.send(m.Ping(1))  # before version: ignored
            await rp.send(m.GetAddr())
            await rp.handshake(timeout=5.0)
            await rp.send(version_message())  # a second version: ignored
            assert await rp.ping(5.0)
            pongs = [x for x in rp.received if isinstance(x, m.Pong)]
            assert len(pongs) == 1  # only the one after the handshake
            assert not only_peer(cm).is_closing

    run(body())


def test_obsolete_version_is_refused() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.send(version_message(version=31799))
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == "peer using obsolete version 31799"
            assert not cm.banman.is_discouraged(LOOPBACK)

    run(body())


def test_feature_negotiation_after_verack_disconnects() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            await rp.send(m.WtxidRelay())
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == "wtxidrelay received after verack"
            assert not cm.banman.is_discouraged(LOOPBACK)

    run(body())


def test_oversized_counts_cost_what_core_charges() -> None:
    async def body() -> None:
        async with manager() as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            # 102 locator hashes: disconnected, not discouraged.
            payload = (70016).to_bytes(4, "little") + bytes([102]) + bytes(32 * 103)
            await rp.send_frame(b"getheaders", payload)
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == "getheaders locator size 102 > 101"
            assert not cm.banman.is_discouraged(LOOPBACK)
            # 1,001 addresses: misbehaviour, discouraged.
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            await rp.send_frame(b"addr", b"\xfd\xe9\x03" + bytes(30 * 1001))
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == "addr message size = 1001"
            assert [e.action for e in peer.history] == ["discouraged and disconnected"]
            assert cm.banman.is_discouraged(LOOPBACK)
            # A discouraged address may still connect while inbound slots are free.
            rp2 = await raw(cm)
            await rp2.handshake(timeout=5.0)
            assert await rp2.ping(5.0)
            assert only_peer(cm).prefer_evict

    run(body())


# -- timeouts -------------------------------------------------------------------------------------


def test_slow_handshake_hits_the_handshake_timeout() -> None:
    async def body() -> None:
        async with manager(timeouts=PeerTimeouts(handshake=0.6)) as cm:
            rp = await raw(cm)
            await until(lambda: cm.peers())
            slow = only_peer(cm)
            data = frame_bytes(MAGIC, b"version", version_message().encode())
            for i in range(20):  # one byte every 0.1 s: 2 s for the whole version
                try:
                    await rp.send_raw(data[i : i + 1])
                except ConnectionError:
                    break
                await asyncio.sleep(0.1)
            peer = await closed_peer(cm, rp, slow)
            assert peer.disconnect_reason == (
                "socket no message in first 0.6 seconds, never sent to peer"
            )
            # A whole version but no verack: the handshake never completes.
            rp = await raw(cm)
            await rp.send(version_message())
            await rp.wait_for(m.Verack)
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason == "version handshake timeout"

    run(body())


def test_ping_timeout() -> None:
    async def body() -> None:
        async with manager(timeouts=PeerTimeouts(ping_timeout=0.4)) as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            ping = await rp.wait_for(m.Ping)  # never answered
            assert isinstance(ping, m.Ping) and ping.nonce != 0
            peer = await closed_peer(cm, rp)
            assert peer.disconnect_reason is not None
            assert peer.disconnect_reason.startswith("ping timeout: 0.4")

    run(body())


# -- buffers --------------------------------------------------------------------------------------


def test_a_peer_that_does_not_read_is_disconnected_at_the_send_limit() -> None:
    async def body() -> None:
        limit = 1_000_000
        async with manager(max_send_buffer=limit) as cm:
            rp = await raw(cm, rcvbuf=4096)
            await rp.handshake(timeout=5.0)
            rp.stop_reading()
            peer = only_peer(cm)
            big = m.Inv(tuple(m.InvItem(m.InvType.MSG_TX, os.urandom(32)) for _ in range(20000)))
            size = len(big.encode()) + 24
            most = 0
            for _ in range(400):  # far more than the kernel's buffers hold
                peer.send(big)
                most = max(most, peer.send_buffer_size)
                if peer.is_closing:
                    break
                await asyncio.sleep(0)
            assert peer.disconnect_reason is not None
            assert peer.disconnect_reason.startswith("send buffer full: ")
            assert peer.disconnect_reason.endswith(f"limit {limit} (peer is not reading)")
            assert most <= limit + size  # bounded: never more than one message past the limit
            rp.close()

    run(body())


def test_handler_back_pressure_stops_reading_from_the_socket() -> None:
    async def body() -> None:
        async with manager(max_receive_buffer=20_000) as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            peer = only_peer(cm)
            peer.pause_processing()
            for i in range(2000):  # 64 KB of pings, none answered while held
                await rp.send_raw(frame_bytes(MAGIC, b"ping", (i + 1).to_bytes(8, "little")))
            await until(lambda: peer._flood_paused, what="reading paused")
            assert peer._queued_bytes <= 20_000 + 65536
            peer.resume_processing()
            nonces = set()
            while len(nonces) < 2000:
                msg = await rp.recv()
                if isinstance(msg, m.Pong):
                    nonces.add(msg.nonce)
            assert nonces == set(range(1, 2001))

    run(body())


def test_take_queued_takes_only_the_next_well_formed_message_of_its_kind() -> None:
    """What the sync uses to serve a peer's getdata messages together: only the message at
    the head of the queue, only of the kind asked for and only if it decodes; anything else
    stays for the normal delivery, which judges it."""

    async def body() -> None:
        rec = Recorder()
        async with manager(rec) as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            peer = only_peer(cm)
            await until(lambda: peer.handshake_done, what="its verack handled")
            peer.pause_processing()
            one = m.GetData((m.InvItem(m.InvType.MSG_BLOCK, b"\x01" * 32),))
            two = m.GetData((m.InvItem(m.InvType.MSG_BLOCK, b"\x02" * 32),))
            frames = [
                frame_bytes(MAGIC, b"getdata", one.encode()),
                frame_bytes(MAGIC, b"getdata", two.encode()),
                frame_bytes(MAGIC, b"getdata", b"\x05"),  # truncated: for the normal path
                frame_bytes(MAGIC, b"ping", (7).to_bytes(8, "little")),
            ]
            await rp.send_raw(b"".join(frames))
            await until(lambda: len(peer._queue) == 4, what="four queued")
            assert peer.take_queued(b"ping") is None  # not at the head
            assert peer.take_queued(b"getdata") == one
            assert peer.take_queued(b"getdata") == two
            assert peer.take_queued(b"getdata") is None  # malformed: left where it is
            assert len(peer._queue) == 2
            peer.resume_processing()
            msg = await rp.recv()
            while not isinstance(msg, m.Pong):
                msg = await rp.recv()
            assert msg.nonce == 7
            # The taken ones never reached the handler; the truncated one was judged there.
            assert [x for _, x in rec.messages if isinstance(x, m.GetData)] == []
            assert any("getdata" in h.reason for h in peer.history), peer.history

    run(body())


# -- slots, bans, eviction ------------------------------------------------------------------------


def test_banned_address_is_refused_at_connect() -> None:
    async def body() -> None:
        bans = BanMan()
        bans.ban(NetAddress.ipv4("127.0.0.1", 0), reason="test")
        async with manager(banman=bans) as cm:
            rp = await raw(cm)
            assert await rp.wait_closed(2.0)
            assert cm.peers() == []

    run(body())


def test_inbound_slots_full_refuses_when_every_peer_is_protected() -> None:
    async def body() -> None:
        # 13 connections: 8 + 2 + 1 automatic outbound leave 2 inbound slots.
        async with manager(max_connections=13) as cm:
            assert cm.max_inbound == 2
            peers = [await raw(cm) for _ in range(2)]
            for rp in peers:
                await rp.handshake(timeout=5.0)
            third = await raw(cm)
            # Two candidates are all protected (4 by network group alone): no one is evicted.
            assert await third.wait_closed(2.0)
            for rp in peers:
                assert await rp.ping(5.0)

    run(body())


def test_inbound_eviction_makes_room() -> None:
    async def body() -> None:
        # 24 inbound slots: enough candidates that not all are protected.
        async with manager(max_connections=35) as cm:
            assert cm.max_inbound == 24
            peers = [await raw(cm) for _ in range(24)]
            for rp in peers:
                await rp.handshake(timeout=5.0)
            await until(lambda: len(cm.connected_peers()) == 24)
            before = cm.peers()
            newcomer = await raw(cm)
            await newcomer.handshake(timeout=5.0)
            assert await newcomer.ping(5.0)
            await until(lambda: any(p.closed for p in before), what="one evicted")
            evicted = [p for p in before if p.closed]
            assert len(evicted) == 1
            assert evicted[0].disconnect_reason == "evicted to make room for an inbound connection"
            assert len(cm.connected_peers()) == 24

    run(body())


def test_network_inactive_drops_peers_and_reconnects_manual_ones() -> None:
    async def body() -> None:
        hb = Recorder()
        async with manager(hb) as b, manager(connect=(f"127.0.0.1:{b.listen_port}",)) as a:
            await until(lambda: len(a.connected_peers()) == 1, what="connected")
            first = a.connected_peers()[0]
            a.set_network_active(False)
            await until(lambda: not a.peers() and not b.peers(), what="all dropped")
            assert first.disconnect_reason == "network activity disabled"
            with_socket = socket.create_connection(("127.0.0.1", a.listen_port or 0))
            with_socket.close()
            await asyncio.sleep(0.2)
            assert a.peers() == []  # refused while inactive
            a.set_network_active(True)
            await until(lambda: len(a.connected_peers()) == 1, what="reconnected")
            assert a.connected_peers()[0].conn_type is ConnType.MANUAL

    run(body())


# -- addresses ------------------------------------------------------------------------------------


def test_addresses_go_into_the_address_manager_and_getaddr_is_answered_once() -> None:
    async def body() -> None:
        # A fixed key: with a random one, two of the ten addresses (one source) may land in the
        # same slot of the new table now and then, and only nine are added.
        book = AddrMan(key=bytes(32), rng=random.Random(0))
        now = int(time.time())
        known = [
            TimedAddress(
                now - 3600, m.NODE_NETWORK | m.NODE_WITNESS, NetAddress.ipv4(f"9.{i}.1.1", 8333)
            )
            for i in range(10)
        ]
        assert book.add(known, NetAddress.ipv4("1.2.3.4", 8333)) == 10
        async with manager(addrman=book) as cm:
            rp = await raw(cm)
            await rp.handshake(timeout=5.0)
            fresh = tuple(
                TimedAddress(
                    now - 60, m.NODE_NETWORK | m.NODE_WITNESS, NetAddress.ipv4(f"8.{i}.1.1", 8333)
                )
                for i in range(5)
            )
            await rp.send(m.AddrV2(fresh))
            assert await rp.ping(5.0)
            # A new peer has one token: one address is processed, four are rate-limited.
            peer = only_peer(cm)
            assert peer.addr_limiter is not None
            assert (peer.addr_limiter.processed, peer.addr_limiter.rate_limited) == (1, 4)
            assert len(cm.addrman) == 11
            await rp.send(m.GetAddr())
            answer = await rp.wait_for(m.AddrV2)
            assert isinstance(answer, m.AddrV2) and len(answer.addresses) == 2  # 23% of 11
            count = len(rp.received)
            await rp.send(m.GetAddr())  # the second is ignored
            assert await rp.ping(5.0)
            assert not [x for x in rp.received[count:] if isinstance(x, m.AddrV2 | m.Addr)]

    run(body())


# -- manual peers and what getpeerinfo shows ------------------------------------------------------


def test_manual_peer_misbehaving_is_noted_not_punished_and_rpc_sees_it() -> None:
    async def body() -> None:
        from peercash.rpc.net import peer_info

        async with manager() as cm:
            served: list[P2PConnection] = []

            async def serve(rp: P2PConnection) -> None:
                served.append(rp)
                await rp.answer_handshake(timeout=5.0)
                await rp.send_frame(b"inv", b"\xfd\x51\xc3" + bytes(36))  # 50,001 items
                await rp.wait_closed(10.0)

            server = await P2PConnection.listen(serve, "127.0.0.1", 0, magic=MAGIC)
            port = server.sockets[0].getsockname()[1]
            try:
                peer = await cm.connect_to(f"127.0.0.1:{port}", ConnType.MANUAL)
                await until(lambda: peer.history, what="the misbehaviour noted")
                assert [(e.reason, e.action) for e in peer.history] == [
                    ("inv message size = 50001", "not punished (manual peer)")
                ]
                assert not peer.is_closing and not cm.banman.is_discouraged(LOOPBACK)
                # The RPC reads the manager from another thread.
                infos = await asyncio.to_thread(
                    cm.run_threadsafe, lambda: [peer_info(p) for p in cm.peers()]
                )
                [info] = infos
                optional = ("pingtime", "minping", "pingwait")  # only once a ping went out
                assert [k for k in info if k not in optional] == [
                    "id", "addr", "addrbind", "network", "services", "servicesnames",
                    "relaytxes", "lastsend", "lastrecv", "last_transaction", "last_block",
                    "bytessent", "bytesrecv", "conntime", "timeoffset", "version", "subver", "inbound", "bip152_hb_to", "bip152_hb_from",
                    "startingheight", "presynced_headers", "synced_headers", "synced_blocks",
                    "inflight", "addr_relay_enabled", "addr_processed", "addr_rate_limited",
                    "permissions", "minfeefilter", "bytessent_per_msg", "bytesrecv_per_msg",
                    "connection_type", "transport_protocol_type", "session_id",
                    "misbehavior_history",
                ]  # fmt: skip
                assert info["connection_type"] == "manual" and info["addr"] == f"127.0.0.1:{port}"
                assert info["misbehavior_history"][0]["reason"] == "inv message size = 50001"
                assert info["servicesnames"] == ["NETWORK", "WITNESS"]
            finally:
                server.close()

    run(body())
