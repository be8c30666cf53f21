"""Proof of work: the compact ``nBits`` target encoding, the hash check, a block's work, the
difficulty retarget and median time past.

Consensus. Targets are plain non-negative ``int``s below 2**256. Block hashes are ``bytes`` in wire
order, so they are compared as little-endian integers. Pure functions: the retarget reads the chain
only through the ``ancestor`` accessor its caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .params import NetworkParams

_U256 = (1 << 256) - 1

MEDIAN_TIME_SPAN = 11
"""Consensus: median time past is taken over this many blocks (Core's ``nMedianTimeSpan``)."""

MAX_TIMEWARP = 600
"""Consensus (BIP94): the first block of a retarget period may be at most this many seconds
earlier than its parent (Core's ``MAX_TIMEWARP``)."""


def bits_to_target(bits: int) -> tuple[int, bool, bool]:
    """Decode a compact target: ``(target, negative, overflow)``, as Core's ``SetCompact``.

    The top byte is a size in bytes, the low 23 bits the mantissa and bit 23 a sign. A mantissa that
    would be shifted past 256 bits sets ``overflow``; the target returned is then truncated to 256
    bits, like Core's ``arith_uint256``.
    """
    size = (bits >> 24) & 0xFF
    word = bits & 0x007FFFFF
    if size <= 3:
        # Core shifts the mantissa itself here, so bytes shifted out cannot make it negative.
        word >>= 8 * (3 - size)
        target = word
    else:
        target = (word << (8 * (size - 3))) & _U256
    negative = word != 0 and bool(bits & 0x00800000)
    overflow = word != 0 and (
        size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)
    )
    return target, negative, overflow


def target_to_bits(target: int) -> int:
    """Encode a target in compact form (Core's ``GetCompact``), never with the sign bit set."""
    if not 0 <= target <= _U256:
        raise ValueError("target must be in [0, 2**256)")
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        mantissa = target << (8 * (3 - size))
    else:
        mantissa = target >> (8 * (size - 3))
    if mantissa & 0x00800000:
        # The mantissa's top bit would read as a sign: move one byte into the exponent.
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def check_proof_of_work(block_hash: bytes, bits: int, pow_limit: int) -> bool:
    """Whether ``block_hash`` (wire order) meets the target ``bits``, itself within ``pow_limit``."""
    target, negative, overflow = bits_to_target(bits)
    if negative or overflow or target == 0 or target > pow_limit:
        return False
    return int.from_bytes(block_hash, "little") <= target


def block_work(bits: int) -> int:
    """Expected number of hashes to find a block at ``bits`` (Core's ``GetBlockProof``).

    Zero for a target that is negative, overflowing or zero.
    """
    target, negative, overflow = bits_to_target(bits)
    if negative or overflow or target == 0:
        return 0
    return (1 << 256) // (target + 1)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What the retarget needs to know about one block of the chain."""

    height: int
    time: int
    bits: int


def _retarget(target: int, timespan: int, params: NetworkParams) -> int:
    # Core multiplies in a 256-bit arith_uint256, which wraps; every network's pow_limit leaves
    # room for the largest factor, so the mask only matters for nonsense inputs.
    return ((target * timespan) & _U256) // params.pow_target_timespan


def ends_min_difficulty_walk(block: BlockInfo, params: NetworkParams) -> bool:
    """Whether the testnet rule's walk back over min-difficulty blocks stops at ``block``: the
    genesis block, a retarget boundary, or a block with other bits than the minimum."""
    return (
        block.height == 0
        or block.height % params.difficulty_adjustment_interval == 0
        or block.bits != target_to_bits(params.pow_limit)
    )


def next_work_required(
    last: BlockInfo,
    new_block_time: int,
    params: NetworkParams,
    ancestor: Callable[[int], BlockInfo],
    walk_bits: Callable[[], int] | None = None,
) -> int:
    """The ``nBits`` the block after ``last`` must carry (Core's ``GetNextWorkRequired``).

    ``new_block_time`` is that block's timestamp (it matters only where min-difficulty blocks are
    allowed). ``ancestor(h)`` returns the block at height ``h <= last.height`` of ``last``'s chain.
    ``walk_bits``, if given, returns the bits of the first block at or below ``last`` where
    :func:`ends_min_difficulty_walk` holds (a caller can remember it per block; the walk may
    otherwise visit up to a whole retarget period of ancestors).
    """
    interval = params.difficulty_adjustment_interval
    limit_bits = target_to_bits(params.pow_limit)

    if (last.height + 1) % interval != 0:
        if not params.pow_allow_min_difficulty_blocks:
            return last.bits
        # Testnet rule: a block more than two spacings after its parent may use the minimum
        # difficulty; otherwise it must carry the bits of the last block that did not.
        if new_block_time > last.time + 2 * params.pow_target_spacing:
            return limit_bits
        if walk_bits is not None:
            return walk_bits()
        block = last
        while not ends_min_difficulty_walk(block, params):
            block = ancestor(block.height - 1)
        return block.bits

    first_height = last.height - (interval - 1)
    if first_height < 0:
        raise ValueError("a retarget needs a whole period of ancestors")
    return calculate_next_work_required(last, ancestor(first_height), params)


def calculate_next_work_required(last: BlockInfo, first: BlockInfo, params: NetworkParams) -> int:
    """The retarget at a period boundary (Core's ``CalculateNextWorkRequired``).

    ``first`` is the first block of the period that ``last`` closes. The target scales by the
    period's actual duration clamped to [T/4, 4T], starting from ``last``'s target, or under BIP94
    from ``first``'s (which can never be a min-difficulty block); it never exceeds ``pow_limit``.
    """
    if params.pow_no_retargeting:
        return last.bits
    timespan = params.pow_target_timespan
    actual = min(max(last.time - first.time, timespan // 4), timespan * 4)
    base_bits = first.bits if params.enforce_bip94 else last.bits
    target = _retarget(bits_to_target(base_bits)[0], actual, params)
    return target_to_bits(min(target, params.pow_limit))


def permitted_difficulty_transition(
    params: NetworkParams, height: int, old_bits: int, new_bits: int
) -> bool:
    """Whether ``new_bits`` at ``height`` is possible after a parent with ``old_bits``, judged
    without the rest of the chain (Core's ``PermittedDifficultyTransition``, for headers sync).

    Always true where min-difficulty blocks are allowed; otherwise the bits may change only at a
    retarget, and then by no more than the clamped factor of 4 either way (after compact
    rounding).
    """
    if params.pow_allow_min_difficulty_blocks:
        return True
    if height % params.difficulty_adjustment_interval != 0:
        return old_bits == new_bits
    timespan = params.pow_target_timespan
    old_target = bits_to_target(old_bits)[0]
    observed = bits_to_target(new_bits)[0]

    def rounded(factor_timespan: int) -> int:
        target = min(_retarget(old_target, factor_timespan, params), params.pow_limit)
        return bits_to_target(target_to_bits(target))[0]

    if rounded(timespan * 4) < observed:
        return False
    return not rounded(timespan // 4) > observed


def timewarp_permitted(params: NetworkParams, height: int, block_time: int, prev_time: int) -> bool:
    """BIP94's timewarp rule: where it is enforced, the first block of a retarget period must not
    be more than ``MAX_TIMEWARP`` seconds earlier than its parent (Core rejects it with
    ``time-timewarp-attack``)."""
    if not params.enforce_bip94 or height % params.difficulty_adjustment_interval != 0:
        return True
    return block_time >= prev_time - MAX_TIMEWARP


def median_time_past(times: Sequence[int]) -> int:
    """The median of the last (up to) ``MEDIAN_TIME_SPAN`` block times, as Core's
    ``GetMedianTimePast``.

    ``times`` are in chain order ending with the block whose median time past is wanted; only the
    last eleven are used. With an even count (near genesis) the upper middle value is taken.
    """
    window = sorted(times[-MEDIAN_TIME_SPAN:])
    if not window:
        raise ValueError("median time past needs at least one block time")
    return window[len(window) // 2]
