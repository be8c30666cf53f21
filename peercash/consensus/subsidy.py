"""The block subsidy: 50 coins, halved every ``subsidy_halving_interval`` blocks.

Layer 0 (consensus), pure. Amounts are integers in satoshis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .params import NetworkParams

INITIAL_SUBSIDY = 50 * 100_000_000


def block_subsidy(height: int, params: NetworkParams) -> int:
    """New coins the coinbase of the block at ``height`` may claim (Core's ``GetBlockSubsidy``).

    After 64 halvings the subsidy is zero (Core stops there because shifting a 64-bit value by 64
    or more is undefined in C++; it has been zero since halving 33 anyway).
    """
    if height < 0:
        raise ValueError("height must not be negative")
    halvings = height // params.subsidy_halving_interval
    if halvings >= 64:
        return 0
    return INITIAL_SUBSIDY >> halvings
