"""Compact targets (``nBits``), the proof-of-work check and block work."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.pow import (
    bits_to_target,
    block_work,
    check_proof_of_work,
    target_to_bits,
)

POW_LIMIT = 0x00000000FFFF << 208


# (bits, target, negative, overflow, re-encoded bits) as Core's arith_uint256 SetCompact/GetCompact.
COMPACT_CASES = [
    (0x00000000, 0, False, False, 0),
    (0x00123456, 0, False, False, 0),
    (0x01003456, 0, False, False, 0),
    (0x02000056, 0, False, False, 0),
    (0x03000000, 0, False, False, 0),
    (0x04000000, 0, False, False, 0),
    (0x00923456, 0, False, False, 0),
    (0x01803456, 0, False, False, 0),
    (0x02800056, 0, False, False, 0),
    (0x03800000, 0, False, False, 0),
    (0x04800000, 0, False, False, 0),
    (0x01123456, 0x12, False, False, 0x01120000),
    (0x01FEDCBA, 0x7E, True, False, 0x017E0000),
    (0x02123456, 0x1234, False, False, 0x02123400),
    (0x03123456, 0x123456, False, False, 0x03123456),
    (0x04123456, 0x12345600, False, False, 0x04123456),
    (0x04923456, 0x12345600, True, False, 0x04123456),
    (0x05009234, 0x92340000, False, False, 0x05009234),
    (0x20123456, 0x123456 << 232, False, False, 0x20123456),
    (0x1D00FFFF, 0xFFFF << 208, False, False, 0x1D00FFFF),
]


@pytest.mark.parametrize(("bits", "target", "negative", "overflow", "again"), COMPACT_CASES)
def test_compact(bits: int, target: int, negative: bool, overflow: bool, again: int) -> None:
    assert bits_to_target(bits) == (target, negative, overflow)
    assert target_to_bits(target) == again


@pytest.mark.parametrize(
    ("bits", "overflow"),
    [
        (0xFF123456, True),
        (0x23000001, True),  # size 35
        (0x22000001, False),  # size 34, one-byte mantissa: fits
        (0x22000100, True),
        (0x21000100, False),
        (0x21010000, True),
        (0x20FFFFFF & 0xFF7FFFFF, False),
        (0x23000000, False),  # zero mantissa never overflows
    ],
)
def test_compact_overflow(bits: int, overflow: bool) -> None:
    target, _, got = bits_to_target(bits)
    assert got is overflow
    assert 0 <= target < 1 << 256


def test_target_to_bits_range() -> None:
    assert target_to_bits(0x80) == 0x02008000  # no sign bit in the mantissa
    assert target_to_bits((1 << 256) - 1) == 0x2100FFFF
    with pytest.raises(ValueError):
        target_to_bits(-1)
    with pytest.raises(ValueError):
        target_to_bits(1 << 256)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 256) - 1))
def test_target_roundtrip(target: int) -> None:
    bits = target_to_bits(target)
    decoded, negative, overflow = bits_to_target(bits)
    assert not negative and not overflow
    assert decoded <= target
    # Only the three most significant bytes survive.
    size = (target.bit_length() + 7) // 8
    keep = max(size - 3, 0) * 8
    assert decoded == (target >> keep) << keep or decoded == (target >> (keep + 8)) << (keep + 8)
    assert target_to_bits(decoded) == bits


def test_check_proof_of_work() -> None:
    bits = 0x1D00FFFF
    target = 0xFFFF << 208
    at = target.to_bytes(32, "little")
    above = (target + 1).to_bytes(32, "little")
    assert check_proof_of_work(at, bits, POW_LIMIT)
    assert check_proof_of_work(b"\x00" * 32, bits, POW_LIMIT)
    assert not check_proof_of_work(above, bits, POW_LIMIT)
    # The hash is compared in wire order: the big-endian reading of the same bytes differs.
    one = (1).to_bytes(32, "little")
    assert check_proof_of_work(one, bits, POW_LIMIT)
    assert not check_proof_of_work(one[::-1], bits, POW_LIMIT)
    assert not check_proof_of_work(b"\x00" * 32, 0x1D01FFFF, POW_LIMIT)  # easier than the limit
    assert not check_proof_of_work(b"\x00" * 32, 0x1D80FFFF, POW_LIMIT)  # negative
    assert not check_proof_of_work(b"\x00" * 32, 0x01000000, POW_LIMIT)  # zero
    assert not check_proof_of_work(b"\x00" * 32, 0xFF123456, (1 << 256) - 1)  # overflow
    regtest_limit = (1 << 255) - 1
    assert check_proof_of_work(b"\x00" * 32, 0x207FFFFF, regtest_limit)


def test_block_work() -> None:
    assert block_work(0x1D00FFFF) == 0x100010001
    assert block_work(0x207FFFFF) == 2
    for bits in (0x1D00FFFF, 0x1A0202F0, 0x18013CE9, 0x207FFFFF):
        target = bits_to_target(bits)[0]
        assert block_work(bits) == ((1 << 256) - 1 - target) // (target + 1) + 1
    assert block_work(0) == 0
    assert block_work(0x1D80FFFF) == 0
    assert block_work(0xFF123456) == 0
