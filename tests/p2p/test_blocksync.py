"""The block download schedule (``p2p.blocksync``) on a tree of plain nodes and a hand-moved
clock: the window, the per-peer limit, stalls, timeouts, re-requests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from peercash.p2p.blocksync import (
    BLOCK_DOWNLOAD_WINDOW,
    BLOCK_STALLING_TIMEOUT_DEFAULT,
    BLOCK_STALLING_TIMEOUT_MAX,
    MAX_BLOCKS_IN_TRANSIT_PER_PEER,
    BlockDownloader,
    HeaderChain,
)


@dataclass(eq=False)
class Node:
    hash: bytes
    height: int
    prev: Node | None
    work: int
    data: bool = False
    bad: bool = False
    segwit: bool = False


def chain(n: int, base: Node | None = None, tag: bytes = b"a") -> list[Node]:
    """Nodes 0..n (0 is ``base`` or a new genesis with its data)."""
    if base is None:
        base = Node(b"g".ljust(32, b"\0"), 0, None, 1, data=True)
    out = [base]
    for _ in range(n):
        p = out[-1]
        h = p.height + 1
        out.append(Node(tag + h.to_bytes(8, "little") + bytes(23), h, p, p.work + 1))
    return out


class Env:
    def __init__(self, window: int = BLOCK_DOWNLOAD_WINDOW) -> None:
        self.now = 100.0
        self.d: BlockDownloader[Node] = BlockDownloader(
            clock=lambda: self.now,
            parent=lambda n: n.prev,
            work=lambda n: n.work,
            has_data=lambda n: n.data,
            invalid=lambda n: n.bad,
            needs_witness=lambda n: n.segwit,
            window=window,
        )

    def peer(self, pid: int, best: Node, **kw: bool) -> None:
        self.d.add_peer(pid, **kw)
        self.d.block_available(pid, best, best.hash)

    def fetch(self, pid: int, tip: Node) -> list[int]:
        return [n.height for n in self.d.next_blocks(pid, tip, 0)]

    def deliver(self, pid: int, nodes: list[Node], heights: list[int]) -> None:
        for h in heights:
            assert self.d.received(nodes[h].hash, pid)
            nodes[h].data = True


def test_header_chain_mirror_and_ancestors() -> None:
    main = chain(50)
    fork = chain(10, base=main[40], tag=b"b")
    hc: HeaderChain[Node] = HeaderChain(lambda n: n.prev)
    hc.set_tip(main[50])
    assert len(hc) == 51 and hc.tip is main[50] and hc.at(7) is main[7]
    assert hc.ancestor(main[50], 3) is main[3]
    assert hc.ancestor(fork[10], 45) is fork[5] and hc.ancestor(fork[10], 12) is main[12]
    assert hc.last_common_ancestor(fork[10], main[47]) is main[40]
    hc.set_tip(fork[10])  # a reorg of the mirror: 10 replaced, 10 added
    assert len(hc) == 51 and hc.at(41) is fork[1] and hc.contains(main[40])
    assert not hc.contains(main[41])
    with pytest.raises(ValueError):
        hc.ancestor(main[3], 4)


def test_window_and_per_peer_limit() -> None:
    env = Env()
    nodes = chain(200)
    env.d.chain.set_tip(nodes[200])
    env.peer(1, nodes[200])
    env.peer(2, nodes[200])
    assert env.fetch(1, nodes[0]) == list(range(1, 17))
    assert env.fetch(1, nodes[0]) == []  # 16 in flight: the limit
    assert env.fetch(2, nodes[0]) == list(range(17, 33))
    assert env.d.in_flight_count() == 32 and env.d.peers_downloading_from == 2
    env.deliver(1, nodes, [1, 2, 3])
    assert env.fetch(1, nodes[0]) == [33, 34, 35]
    assert env.d.last_common(1) is nodes[3]  # moved over the stored run
    assert env.d.requested_from(nodes[20].hash) == 2
    assert not env.d.received(nodes[20].hash, 1)  # not from that peer: still expected
    assert env.d.is_requested(nodes[20].hash)


def test_nothing_from_a_peer_without_more_work_or_below_minimum() -> None:
    env = Env()
    nodes = chain(20)
    env.d.chain.set_tip(nodes[20])
    env.peer(1, nodes[10])
    assert env.d.next_blocks(1, nodes[15], 0) == []  # its best has less work than our tip
    assert env.d.next_blocks(1, nodes[0], 10**6) == []  # below the minimum chain work
    assert [n.height for n in env.d.next_blocks(1, nodes[0], 0)] == list(range(1, 11))


def test_stalling_peer_detected_then_its_blocks_go_elsewhere() -> None:
    env = Env(window=32)
    nodes = chain(100)
    env.d.chain.set_tip(nodes[100])
    for pid in (1, 2, 3):
        env.peer(pid, nodes[100])
    assert env.fetch(1, nodes[0]) == list(range(1, 17))  # the staller
    assert env.fetch(2, nodes[0]) == list(range(17, 33))
    # Peer 3 finds the window (1..32) all in flight; with one more block it could fetch 33:
    # peer 1, holding the window's first block, is stalling us.
    assert env.fetch(3, nodes[0]) == []
    assert env.d.check_peer(1) is None  # the clock has not moved
    env.now += BLOCK_STALLING_TIMEOUT_DEFAULT  # not *more* than the timeout yet
    assert env.d.check_peer(1) is None
    env.now += 0.1
    assert env.d.check_peer(1) == "stalling"
    assert env.d.stalling_timeout == 2 * BLOCK_STALLING_TIMEOUT_DEFAULT
    assert env.d.check_peer(2) is None and env.d.check_peer(3) is None
    released = env.d.remove_peer(1)
    assert [n.height for n in released] == list(range(1, 17))
    assert env.fetch(3, nodes[0]) == list(range(1, 17))  # re-requested from another peer
    # Each later stall disconnect doubles the timeout up to 64 s; connected blocks shrink it.
    for _ in range(10):
        env.d.stalling_timeout = min(2 * env.d.stalling_timeout, BLOCK_STALLING_TIMEOUT_MAX)
    assert env.d.stalling_timeout == BLOCK_STALLING_TIMEOUT_MAX
    env.d.block_connected()
    assert env.d.stalling_timeout == 54.0  # int(64 * 0.85)
    for _ in range(20):
        env.d.block_connected()
    assert env.d.stalling_timeout == BLOCK_STALLING_TIMEOUT_DEFAULT


def test_a_delivery_clears_the_stall() -> None:
    env = Env(window=32)
    nodes = chain(100)
    env.d.chain.set_tip(nodes[100])
    for pid in (1, 2, 3):
        env.peer(pid, nodes[100])
    env.fetch(1, nodes[0])
    env.fetch(2, nodes[0])
    env.fetch(3, nodes[0])
    env.now += 1.5
    env.deliver(1, nodes, [1])
    env.now += 1.5
    assert env.d.check_peer(1) is None


def test_download_timeout_grows_with_the_peers_we_download_from() -> None:
    env = Env()
    nodes = chain(100)
    env.d.chain.set_tip(nodes[100])
    env.peer(1, nodes[100])
    env.fetch(1, nodes[0])
    env.now += 600
    assert env.d.check_peer(1) is None
    env.now += 1
    assert env.d.check_peer(1) == "timeout"
    env.peer(2, nodes[100])
    env.fetch(2, nodes[0])  # a second downloading peer: 600 * (1 + 0.5)
    assert env.d.check_peer(1) is None
    env.now += 300
    assert env.d.check_peer(1) == "timeout"
    # Answering the oldest request restarts the clock for the next one.
    env.deliver(1, nodes, [1])
    assert env.d.check_peer(1) is None


def test_stored_blocks_invalid_chains_witness_and_limited_peers() -> None:
    env = Env()
    nodes = chain(400)
    env.d.chain.set_tip(nodes[400])
    for n in nodes[1:11]:
        n.data = True
    nodes[13].data = True  # stored out of order: skipped, but the common block stays at 10
    env.peer(1, nodes[400])
    assert env.fetch(1, nodes[0])[:4] == [11, 12, 14, 15]
    assert env.d.last_common(1) is nodes[10]
    nodes[30].bad = True
    env.peer(2, nodes[400])
    assert env.fetch(2, nodes[0]) == list(range(28, 30))  # stops at the invalid block
    for n in nodes[350:]:
        n.segwit = True
    env.peer(3, nodes[400], serves_witness=False)
    env.d.received(nodes[28].hash)
    env.d.received(nodes[29].hash)
    nodes[30].bad = False
    assert env.fetch(3, nodes[0]) == [28, 29, *range(30, 44)]
    env.peer(4, nodes[400], limited=True)  # serves only the last 288 blocks (less 2)
    assert env.fetch(4, nodes[0]) == list(range(115, 131))


def test_block_availability_by_hash_then_resolved() -> None:
    env = Env()
    nodes = chain(10)
    env.d.chain.set_tip(nodes[10])
    env.d.add_peer(1)
    env.d.block_available(1, None, nodes[10].hash)
    assert env.d.last_unknown(1) == nodes[10].hash and env.d.best_known(1) is None
    env.d.resolve_unknown(1, nodes[10])
    assert env.d.best_known(1) is nodes[10] and env.d.last_unknown(1) is None
    env.d.block_available(1, nodes[5], nodes[5].hash)  # less work: the best stays
    assert env.d.best_known(1) is nodes[10]
    assert env.d.peer_has(1, nodes[7]) and not env.d.peer_has(1, chain(11)[11])


def test_mark_requested_moves_a_request_between_peers() -> None:
    env = Env()
    nodes = chain(5)
    env.d.chain.set_tip(nodes[5])
    env.peer(1, nodes[5])
    env.peer(2, nodes[5])
    assert env.d.mark_requested(1, nodes[3])
    assert not env.d.mark_requested(1, nodes[3])
    assert env.d.mark_requested(2, nodes[3])
    assert env.d.requested_from(nodes[3].hash) == 2
    assert env.d.in_flight(1) == [] and env.d.peers_downloading_from == 1
    assert MAX_BLOCKS_IN_TRANSIT_PER_PEER == 16
