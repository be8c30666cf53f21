"""Difficulty retargeting, the min-difficulty and BIP94 rules, PermittedDifficultyTransition,
CheckProofOfWork edge cases and median time past (Core's pow_tests.cpp and real blocks)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from peercash.consensus.params import MAIN, REGTEST, SIGNET, TESTNET, TESTNET4, NetworkParams
from peercash.consensus.pow import (
    MAX_TIMEWARP,
    BlockInfo,
    bits_to_target,
    calculate_next_work_required,
    check_proof_of_work,
    median_time_past,
    next_work_required,
    permitted_difficulty_transition,
    target_to_bits,
    timewarp_permitted,
)
from peercash.consensus.primitives import Block

BLOCKS = Path(__file__).resolve().parent.parent / "data" / "btcd" / "blocks"
MIN_BITS = 0x1D00FFFF  # pow_limit in compact form on main, testnet3 and testnet4


def chain_of(blocks: Iterable[BlockInfo]) -> Callable[[int], BlockInfo]:
    """An ``ancestor`` accessor over the given blocks; asking for any other height fails."""
    by_height = {b.height: b for b in blocks}

    def ancestor(height: int) -> BlockInfo:
        return by_height[height]

    return ancestor


def no_ancestors(height: int) -> BlockInfo:
    raise AssertionError(f"ancestor({height}) should not be needed")


# --- Core's pow_tests.cpp: CalculateNextWorkRequired + PermittedDifficultyTransition -----------
# (last retarget time, last height, last time, last bits, expected bits, an adjacent invalid bits)
CORE_CASES = {
    # get_next_work: no constraint applies (block #30240 → #32255).
    "get_next_work": (1261130161, 32255, 1262152739, 0x1D00FFFF, 0x1D00D86A, None),
    # get_next_work_pow_limit: the target would exceed the pow limit (block #0 → #2015).
    "get_next_work_pow_limit": (1231006505, 2015, 1233061996, 0x1D00FFFF, 0x1D00FFFF, 0x1D010000),
    # get_next_work_lower_limit_actual: the period took less than T/4 (block #66528 → #68543).
    "get_next_work_lower_limit_actual": (
        1279008237,
        68543,
        1279297671,
        0x1C05A3F4,
        0x1C0168FD,
        0x1C0168FD - 1,
    ),
    # get_next_work_upper_limit_actual: more than 4T (the first time is not a real block's).
    "get_next_work_upper_limit_actual": (
        1263163443,
        46367,
        1269211443,
        0x1C387F6F,
        0x1D00E1FD,
        0x1D00E1FD + 1,
    ),
}


@pytest.mark.parametrize("case", CORE_CASES.values(), ids=list(CORE_CASES))
def test_core_get_next_work(case: tuple[int, int, int, int, int, int | None]) -> None:
    first_time, height, time, bits, expected, invalid = case
    last = BlockInfo(height, time, bits)
    first = BlockInfo(height - 2015, first_time, bits)
    assert calculate_next_work_required(last, first, MAIN) == expected
    # The same through GetNextWorkRequired, which finds the first block with ``ancestor``.
    assert next_work_required(last, time + 600, MAIN, chain_of([first, last])) == expected
    assert permitted_difficulty_transition(MAIN, height + 1, bits, expected)
    if invalid is not None:
        assert not permitted_difficulty_transition(MAIN, height + 1, bits, invalid)


def test_permitted_transition_between_retargets() -> None:
    assert permitted_difficulty_transition(MAIN, 32257, 0x1D00D86A, 0x1D00D86A)
    assert not permitted_difficulty_transition(MAIN, 32257, 0x1D00D86A, 0x1D00D86B)
    assert not permitted_difficulty_transition(MAIN, 1, 0x1D00FFFF, 0x1C00FFFF)


def test_permitted_transition_within_factor_four() -> None:
    old = 0x1C05A3F4
    old_target = bits_to_target(old)[0]
    easier = target_to_bits(old_target * 4)
    harder = target_to_bits(old_target // 4)
    assert permitted_difficulty_transition(MAIN, 2016 * 40, old, old)
    assert permitted_difficulty_transition(MAIN, 2016 * 40, old, easier)
    assert permitted_difficulty_transition(MAIN, 2016 * 40, old, harder)
    assert not permitted_difficulty_transition(MAIN, 2016 * 40, old, target_to_bits(old_target * 5))
    assert not permitted_difficulty_transition(
        MAIN, 2016 * 40, old, target_to_bits(old_target // 5)
    )


@pytest.mark.parametrize("params", [TESTNET, TESTNET4, REGTEST], ids=lambda p: p.name)
def test_permitted_transition_always_true_with_min_difficulty(params: NetworkParams) -> None:
    assert permitted_difficulty_transition(params, 5, 0x1C05A3F4, 0x1D00FFFF)
    assert permitted_difficulty_transition(params, 2016, 0x1D00FFFF, 0x1A000001)


def test_signet_retargets_like_mainnet() -> None:
    assert not SIGNET.pow_allow_min_difficulty_blocks
    assert not permitted_difficulty_transition(SIGNET, 7, 0x1E0377AE, 0x1E0377AD)
    last = BlockInfo(2015, 1598918400 + 2 * 1_209_600, 0x1E0377AE)
    first = BlockInfo(0, 1598918400, 0x1E0377AE)
    # A slow period cannot make the target easier than the limit.
    assert calculate_next_work_required(last, first, SIGNET) == 0x1E0377AE


# --- Core's CheckProofOfWork tests -----------------------------------------------------------

HASH_ONE = (1).to_bytes(32, "little")


def test_check_pow_negative_target() -> None:
    bits = target_to_bits(MAIN.pow_limit) | 0x00800000
    assert not check_proof_of_work(HASH_ONE, bits, MAIN.pow_limit)


def test_check_pow_overflow_target() -> None:
    assert not check_proof_of_work(HASH_ONE, ~0x00800000 & 0xFFFFFFFF, MAIN.pow_limit)


def test_check_pow_too_easy_target() -> None:
    bits = target_to_bits(MAIN.pow_limit * 2)
    assert not check_proof_of_work(HASH_ONE, bits, MAIN.pow_limit)


def test_check_pow_bigger_hash_than_target() -> None:
    bits = target_to_bits(MAIN.pow_limit)
    hash_ = (MAIN.pow_limit * 2).to_bytes(32, "little")
    assert not check_proof_of_work(hash_, bits, MAIN.pow_limit)


def test_check_pow_zero_target() -> None:
    assert not check_proof_of_work(b"\x00" * 32, target_to_bits(0), MAIN.pow_limit)


# --- real mainnet blocks -------------------------------------------------------------------------


def mainnet_infos() -> list[BlockInfo]:
    lines = (BLOCKS / "mainnet-blocks-0-255.hex").read_text().split()
    infos = []
    for height, line in enumerate(lines):
        header = Block.from_hex(line).header
        infos.append(BlockInfo(height, header.time, header.bits))
        assert check_proof_of_work(header.hash, header.bits, MAIN.pow_limit)
    return infos


def test_mainnet_blocks_carry_the_predicted_bits() -> None:
    infos = mainnet_infos()
    assert len(infos) == 256
    ancestor = chain_of(infos)
    for height in range(1, 256):
        last = infos[height - 1]
        new = infos[height]
        assert next_work_required(last, new.time, MAIN, ancestor) == new.bits, height
        assert permitted_difficulty_transition(MAIN, height, last.bits, new.bits)


def test_mainnet_blocks_are_later_than_median_time_past() -> None:
    times = [info.time for info in mainnet_infos()]
    for height in range(1, 256):
        assert times[height] > median_time_past(times[:height]), height


def test_first_mainnet_retarget_stays_at_the_limit() -> None:
    # Blocks #0 and #2015 (times from Core's get_next_work_pow_limit): the retarget at #2016.
    chain = [BlockInfo(0, 1231006505, MIN_BITS), BlockInfo(2015, 1233061996, MIN_BITS)]
    assert next_work_required(chain[1], 1233063531, MAIN, chain_of(chain)) == MIN_BITS


def test_retarget_with_short_periods() -> None:
    params = dataclasses.replace(MAIN, pow_target_timespan=1200)  # two-block periods
    last = BlockInfo(1, 1000, MIN_BITS)
    first = BlockInfo(0, 0, MIN_BITS)
    expected = target_to_bits((bits_to_target(MIN_BITS)[0] * 1000) // 1200)
    assert next_work_required(last, 2000, params, chain_of([first, last])) == expected
    # A "period" reaching below genesis is a caller error, not a silent answer.
    with pytest.raises(ValueError):
        next_work_required(BlockInfo(-1, 0, MIN_BITS), 0, params, no_ancestors)


# --- testnet's min-difficulty rule ----------------------------------------------------------------

REAL = 0x1C00FFFF  # some real (non-minimum) difficulty


def make_testnet_chain(
    bits: list[int], start: int = 4032, t0: int = 1_700_000_000
) -> list[BlockInfo]:
    return [BlockInfo(start + i, t0 + 600 * i, b) for i, b in enumerate(bits)]


def test_testnet_late_block_may_use_min_difficulty() -> None:
    chain = make_testnet_chain([REAL, REAL])
    last = chain[-1]
    ancestor = chain_of(chain)
    assert next_work_required(last, last.time + 1201, TESTNET, ancestor) == MIN_BITS
    # Exactly twice the spacing is not late enough.
    assert next_work_required(last, last.time + 1200, TESTNET, ancestor) == REAL
    # Mainnet has no such rule.
    assert next_work_required(last, last.time + 10**6, MAIN, ancestor) == REAL


def test_testnet_walks_back_over_min_difficulty_blocks() -> None:
    chain = make_testnet_chain([REAL, REAL, MIN_BITS, MIN_BITS, MIN_BITS])
    ancestor = chain_of(chain)
    last = chain[-1]
    assert next_work_required(last, last.time + 600, TESTNET, ancestor) == REAL
    assert next_work_required(last, last.time + 600, TESTNET4, ancestor) == REAL
    assert next_work_required(last, last.time + 1201, TESTNET, ancestor) == MIN_BITS


def test_testnet_walk_back_stops_at_the_period_start() -> None:
    # The period's first block (height 4032) itself is at the limit: the walk stops there.
    chain = [BlockInfo(4031, 0, REAL), *make_testnet_chain([MIN_BITS, MIN_BITS, MIN_BITS])]
    last = chain[-1]
    assert next_work_required(last, last.time + 1, TESTNET, chain_of(chain)) == MIN_BITS


def test_testnet_walk_back_stops_at_genesis() -> None:
    chain = make_testnet_chain([MIN_BITS, MIN_BITS, MIN_BITS], start=0)
    last = chain[-1]
    assert next_work_required(last, last.time + 1, TESTNET, chain_of(chain)) == MIN_BITS


def test_testnet_retarget_ignores_the_min_difficulty_rule() -> None:
    # At a period boundary a late block does not get the minimum difficulty.
    first = BlockInfo(2016, 1_700_000_000, REAL)
    last = BlockInfo(4031, 1_700_000_000 + 1_209_600, REAL)
    got = next_work_required(last, last.time + 10**6, TESTNET, chain_of([first, last]))
    assert got == REAL


# --- BIP94 (testnet4) -----------------------------------------------------------------------------


def test_bip94_retarget_starts_from_the_first_block_of_the_period() -> None:
    # The period's first block carries the real difficulty; its last one was mined at minimum
    # difficulty under the 20-minute rule. Timing as in Core's lower-limit case (clamped to T/4).
    first = BlockInfo(2016, 1279008237, 0x1C05A3F4)
    last = BlockInfo(4031, 1279297671, MIN_BITS)
    ancestor = chain_of([first, last])
    assert next_work_required(last, last.time + 600, TESTNET4, ancestor) == 0x1C0168FD
    # Testnet3 starts from the last block and so drops to a quarter of difficulty one.
    assert next_work_required(last, last.time + 600, TESTNET, ancestor) == 0x1C3FFFC0
    # With equal bits at both ends BIP94 changes nothing.
    same = BlockInfo(4031, last.time, first.bits)
    assert calculate_next_work_required(same, first, TESTNET4) == 0x1C0168FD
    assert calculate_next_work_required(same, first, TESTNET) == 0x1C0168FD


def test_bip94_timewarp_rule() -> None:
    prev = 1_700_000_000
    assert timewarp_permitted(TESTNET4, 4032, prev - MAX_TIMEWARP, prev)
    assert not timewarp_permitted(TESTNET4, 4032, prev - MAX_TIMEWARP - 1, prev)
    # Only on the first block of a period, and only where BIP94 is enforced.
    assert timewarp_permitted(TESTNET4, 4033, prev - 10**6, prev)
    assert timewarp_permitted(TESTNET, 4032, prev - 10**6, prev)
    assert timewarp_permitted(MAIN, 4032, prev - 10**6, prev)


# --- regtest ----------------------------------------------------------------------------------------


def test_regtest_never_retargets() -> None:
    limit_bits = target_to_bits(REGTEST.pow_limit)
    assert limit_bits == 0x207FFFFF
    chain = [BlockInfo(h, 1296688602 + h, limit_bits) for h in range(300)]
    ancestor = chain_of(chain)
    for last in chain:
        assert next_work_required(last, last.time + 1, REGTEST, ancestor) == limit_bits
        assert next_work_required(last, last.time + 5000, REGTEST, ancestor) == limit_bits
    # Even a harder chain keeps its bits at a boundary (143 closes a 144-block period).
    hard = BlockInfo(143, 0, 0x1D00FFFF)
    assert calculate_next_work_required(hard, BlockInfo(0, 10**6, 0x1D00FFFF), REGTEST) == (
        0x1D00FFFF
    )


# --- median time past -----------------------------------------------------------------------------


def test_median_time_past() -> None:
    assert median_time_past([5]) == 5
    assert median_time_past([1, 2]) == 2  # the upper middle, as Core
    assert median_time_past([3, 1, 2]) == 2
    assert median_time_past(list(range(11))) == 5
    # Only the last eleven count.
    assert median_time_past([1000] * 5 + list(range(11))) == 5
    assert median_time_past([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 100]) == 5
    with pytest.raises(ValueError):
        median_time_past([])
