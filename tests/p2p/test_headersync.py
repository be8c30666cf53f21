"""The low-work header pre-sync (``p2p.headersync``), driven directly with generated regtest
header chains: nothing is kept of a low-work chain but its commitment bits, a chain with enough
work comes out whole on the second download, and a second download that differs is caught."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Header
from peercash.p2p.headersync import (
    HEADERS_SYNC_PARAMS,
    ChainStart,
    HeadersSyncParams,
    HeadersSyncState,
    SyncPhase,
    _BitQueue,
    claimed_work,
    headers_sync_params,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synctools import GENESIS, NOW, REGTEST_WORK, header_chain

START = ChainStart(
    GENESIS.hash, 0, REGTEST_WORK, GENESIS.header.bits, GENESIS.header.time, (GENESIS.hash,)
)
SALT = bytes(range(16))


def state(min_work: int, params: HeadersSyncParams, offset: int = 3, now: int = NOW) -> HeadersSyncState:  # fmt: skip
    return HeadersSyncState(7, REGTEST, params, START, min_work, salt=SALT, commit_offset=offset,
                            now=now)  # fmt: skip


def batches(headers: list[Header], size: int = 2000) -> list[list[Header]]:
    return [headers[i : i + size] for i in range(0, len(headers), size)]


@pytest.fixture(scope="module")
def chain_20k() -> list[Header]:
    return header_chain(20_000)


def test_params_are_cores() -> None:
    assert HEADERS_SYNC_PARAMS["main"] == HeadersSyncParams(632, 15009)
    assert HEADERS_SYNC_PARAMS["testnet"] == HeadersSyncParams(628, 13460)
    assert HEADERS_SYNC_PARAMS["signet"] == HeadersSyncParams(390, 9584)
    assert headers_sync_params(REGTEST) == HeadersSyncParams(275, 7017)
    assert claimed_work(header_chain(3)) == 3 * REGTEST_WORK


def test_bit_queue() -> None:
    q = _BitQueue()
    bits = [bool((i * 7) % 3) for i in range(1000)]
    for b in bits[:600]:
        q.push(b)
    out = [q.pop() for _ in range(300)]
    for b in bits[600:]:
        q.push(b)
    out += [q.pop() for _ in range(700)]
    assert out == bits and len(q) == 0
    assert q.nbytes <= 1
    with pytest.raises(IndexError):
        q.pop()


def test_low_work_chain_keeps_only_commitment_bits(chain_20k: list[Header]) -> None:
    params = HEADERS_SYNC_PARAMS["regtest"]
    s = state(10**9, params)
    peak = 0
    for batch in batches(chain_20k):
        r = s.process_next_headers(batch, True)
        assert r.success and r.request_more and r.pow_validated_headers == []
        assert s.phase is SyncPhase.PRESYNC and s.buffered_headers == 0
        assert s.next_headers_request_locator() == (batch[-1].hash, GENESIS.hash)
        peak = max(peak, s.memory_usage())
    # One bit every 275 headers, at heights 3, 278, 553, ...: 73 of them in 20,000 headers.
    assert s.commitments == len(range(3, 20_001, 275)) == 73
    assert s.presync_height == 20_000
    assert s.presync_work == 20_001 * REGTEST_WORK
    assert s.presync_time == chain_20k[-1].time
    assert peak == 10  # bytes: the 73 bits
    # A short message: the peer's chain ends below the minimum work; everything is released.
    tail = header_chain(5, start=chain_20k[-1])
    r = s.process_next_headers(tail, False)
    assert r.success and not r.request_more
    assert s.phase is SyncPhase.FINAL and s.memory_usage() == 0
    assert s.next_headers_request_locator() == ()


def test_enough_work_comes_out_on_the_redownload() -> None:
    headers = header_chain(3000)
    min_work = 2501 * REGTEST_WORK  # reached at height 2500
    s = state(min_work, HEADERS_SYNC_PARAMS["regtest"])
    r = s.process_next_headers(headers[:2000], True)
    assert (r.success, r.request_more, r.pow_validated_headers) == (True, True, [])
    r = s.process_next_headers(headers[2000:], False)  # the work is reached: download again
    assert (r.success, r.request_more, r.pow_validated_headers) == (True, True, [])
    assert s.phase is SyncPhase.REDOWNLOAD
    assert s.next_headers_request_locator() == (GENESIS.hash, GENESIS.hash)
    r = s.process_next_headers(headers[:2000], True)  # below the target: all held back
    assert (r.success, r.request_more, r.pow_validated_headers) == (True, True, [])
    # 48 bytes a buffered header; 3 of the 11 commitment bits are still to be checked (a byte).
    assert s.buffered_headers == 2000 and s.commitments == 3
    assert s.memory_usage() == 2000 * 48 + 1
    assert s.next_headers_request_locator() == (headers[1999].hash, GENESIS.hash)
    r = s.process_next_headers(headers[2000:], False)  # the target is in here: all released
    assert r.success and not r.request_more
    assert [h.hash for h in r.pow_validated_headers] == [h.hash for h in headers]
    assert [h.serialize() for h in r.pow_validated_headers] == [h.serialize() for h in headers]
    assert s.phase is SyncPhase.FINAL


def test_redownload_buffer_releases_with_enough_commitments_on_top() -> None:
    headers = header_chain(3000)
    params = HeadersSyncParams(commitment_period=10, redownload_buffer_size=500)
    s = state(2801 * REGTEST_WORK, params)
    assert s.process_next_headers(headers[:2000], True).request_more
    assert s.process_next_headers(headers[2000:], False).request_more  # reached at 2800
    r = s.process_next_headers(headers[:2000], True)
    # 1,500 headers have at least 500 checked on top of them.
    assert [h.hash for h in r.pow_validated_headers] == [h.hash for h in headers[:1500]]
    assert s.buffered_headers == 500
    r = s.process_next_headers(headers[2000:], False)
    assert [h.hash for h in r.pow_validated_headers] == [h.hash for h in headers[1500:]]
    assert s.phase is SyncPhase.FINAL


def test_a_different_second_download_is_caught() -> None:
    honest = header_chain(3000)
    other = header_chain(3000, tag=1)  # as much work, different headers
    params = HeadersSyncParams(commitment_period=5, redownload_buffer_size=100)
    s = state(2501 * REGTEST_WORK, params, offset=2)
    assert s.process_next_headers(honest[:2000], True).request_more
    assert s.process_next_headers(honest[2000:], False).request_more
    assert s.commitments == len(range(2, 3001, 5)) == 600
    r = s.process_next_headers(other[:2000], True)
    # A commitment fails long before 100 headers are checked on top of any of them: nothing
    # of the other chain is released, and the sync is over.
    assert (r.success, r.request_more, r.pow_validated_headers) == (False, False, [])
    assert s.phase is SyncPhase.FINAL and s.memory_usage() == 0


def test_redownload_of_a_shorter_chain_gives_up() -> None:
    headers = header_chain(2200)
    s = state(2101 * REGTEST_WORK, HeadersSyncParams(10, 50))
    s.process_next_headers(headers[:2000], True)
    s.process_next_headers(headers[2000:], False)
    r = s.process_next_headers(headers[:1000], False)  # not full, target not reached
    assert r.success and not r.request_more
    assert [h.hash for h in r.pow_validated_headers] == [h.hash for h in headers[:950]]
    assert s.phase is SyncPhase.FINAL


def test_presync_rejects_what_does_not_continue_and_overlong_chains() -> None:
    headers = header_chain(2000)
    s = state(10**9, HEADERS_SYNC_PARAMS["regtest"])
    r = s.process_next_headers(headers[1:10], True)  # does not start at the chain start
    assert (r.success, r.request_more) == (False, False) and s.phase is SyncPhase.FINAL
    # A clock that allows only two commitments: the third one ends the sync.
    s = state(10**9, HEADERS_SYNC_PARAMS["regtest"],
              now=GENESIS.header.time - REGTEST.max_future_block_time + 100)  # fmt: skip
    assert s.max_commitments == 6 * 100 // 275 == 2
    r = s.process_next_headers(headers, True)
    assert (r.success, r.request_more) == (False, False) and s.phase is SyncPhase.FINAL


def test_arguments_checked() -> None:
    with pytest.raises(ValueError):
        state(1, HeadersSyncParams(10, 10), offset=10)
    with pytest.raises(ValueError):
        HeadersSyncParams(0, 10)
