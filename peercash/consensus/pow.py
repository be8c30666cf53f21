"""Proof of work: the compact ``nBits`` target encoding, the hash check and a block's work.

Consensus. Targets are plain non-negative ``int``s below 2**256. Block hashes are ``bytes`` in wire
order, so they are compared as little-endian integers. Pure functions.
"""

from __future__ import annotations

_U256 = (1 << 256) - 1


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
