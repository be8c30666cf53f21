"""Which rules a block is checked under: buried deployments, script flags and BIP9 version bits.

Layer 0 (consensus), pure. Buried deployments (BIP34, BIP65, BIP66, CSV, segwit) are plain height
comparisons against ``NetworkParams``. ``block_script_flags`` is Core's ``GetBlockScriptFlags``.
The BIP9 state machine (``deployment_state``) reads the chain only through accessors the caller
passes in, so it can be driven by the block index, a header chain or a synthetic test chain.

Heights are those of the block being validated (Core's ``DeploymentActiveAt(index)``), which is
the same as ``DeploymentActiveAfter(prev)`` with ``prev.height + 1``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .script.flags import VerifyFlags

if TYPE_CHECKING:
    from .params import NetworkParams

# --- buried deployments -----------------------------------------------------------------------

BIP34_IMPLIES_BIP30_LIMIT = 1_983_702
"""Consensus: from this height BIP30 is checked again even after BIP34 (Core's ConnectBlock): an
early coinbase may carry a BIP34 height this large, so its txid could repeat there."""


def bip34_active(params: NetworkParams, height: int) -> bool:
    """Whether the block at ``height`` must start its coinbase with its height (BIP34)."""
    return height >= params.bip34_height


def dersig_active(params: NetworkParams, height: int) -> bool:
    """Strict DER signatures (BIP66)."""
    return height >= params.bip66_height


def cltv_active(params: NetworkParams, height: int) -> bool:
    """OP_CHECKLOCKTIMEVERIFY (BIP65)."""
    return height >= params.bip65_height


def csv_active(params: NetworkParams, height: int) -> bool:
    """Relative lock times, OP_CHECKSEQUENCEVERIFY and median-time-past lock times
    (BIP68/112/113)."""
    return height >= params.csv_height


def segwit_active(params: NetworkParams, height: int) -> bool:
    """Segregated witness and NULLDUMMY (BIP141/143/147)."""
    return height >= params.segwit_height


def min_block_version(params: NetworkParams, height: int) -> int:
    """The lowest header version allowed at ``height``: Core rejects older ones as
    ``bad-version`` once BIP34 (2), BIP66 (3) and BIP65 (4) are active."""
    if cltv_active(params, height):
        return 4
    if dersig_active(params, height):
        return 3
    if bip34_active(params, height):
        return 2
    return 0


def block_script_flags(params: NetworkParams, height: int, block_hash: bytes) -> VerifyFlags:
    """The script flags every input of the block ``block_hash`` (wire order) at ``height`` is
    checked with, as Core's ``GetBlockScriptFlags``.

    P2SH, WITNESS and TAPROOT apply to every block but the network's exception blocks (BIP16 on
    mainnet and testnet3, one taproot violation on mainnet); the rest follow the buried heights.
    """
    exception = params.script_flag_exceptions.get(block_hash)
    if exception is None:
        flags = VerifyFlags.P2SH | VerifyFlags.WITNESS | VerifyFlags.TAPROOT
    else:
        flags = VerifyFlags(exception)
    if dersig_active(params, height):
        flags |= VerifyFlags.DERSIG
    if cltv_active(params, height):
        flags |= VerifyFlags.CHECKLOCKTIMEVERIFY
    if csv_active(params, height):
        flags |= VerifyFlags.CHECKSEQUENCEVERIFY
    if segwit_active(params, height):
        flags |= VerifyFlags.NULLDUMMY
    return flags


def is_bip30_repeat(params: NetworkParams, height: int, block_hash: bytes) -> bool:
    """Whether this block is one of the two that overwrote an unspent coinbase (Core's
    ``IsBIP30Repeat``); BIP30 is not enforced for them."""
    return params.bip30_exceptions.get(height) == block_hash


def is_bip30_unspendable(params: NetworkParams, height: int, block_hash: bytes) -> bool:
    """Whether this block's coinbase was later overwritten (Core's ``IsBIP30Unspendable``)."""
    return params.bip30_unspendable.get(height) == block_hash


def bip30_check_required(
    params: NetworkParams, height: int, block_hash: bytes, hash_at_bip34_height: bytes | None
) -> bool:
    """Whether ``ConnectBlock`` must check that no transaction of this block overwrites an unspent
    output (BIP30), as Core decides it.

    ``hash_at_bip34_height`` is the hash of this block's ancestor at ``params.bip34_height``, or
    None when the block is not above that height. Once the chain goes through the known BIP34
    activation block, BIP34 makes duplicate txids impossible until ``BIP34_IMPLIES_BIP30_LIMIT``.
    """
    enforce = not is_bip30_repeat(params, height, block_hash)
    if (
        enforce
        and hash_at_bip34_height is not None
        and params.bip34_hash is not None
        and hash_at_bip34_height == params.bip34_hash
    ):
        enforce = False
    return enforce or height >= BIP34_IMPLIES_BIP30_LIMIT


# --- BIP9 version bits ------------------------------------------------------------------------

NO_TIMEOUT = (1 << 63) - 1
"""``timeout`` of a deployment that never times out."""
ALWAYS_ACTIVE = -1
"""``start_time`` of a deployment active from genesis (tests and test networks)."""
NEVER_ACTIVE = -2
"""``start_time`` of a deployment that is defined but never starts."""

VERSIONBITS_TOP_BITS = 0x20000000
"""A header version signals BIP9 bits only if its top three bits are 001."""
VERSIONBITS_TOP_MASK = 0xE0000000
VERSIONBITS_NUM_BITS = 29


class ThresholdState(enum.Enum):
    """BIP9 states. A period's state applies to all of its blocks."""

    DEFINED = "defined"
    STARTED = "started"
    LOCKED_IN = "locked_in"
    ACTIVE = "active"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A BIP9 soft fork: which version bit signals it, when signalling counts (median time past),
    and how many of a period's blocks must signal. Values as Core's ``BIP9Deployment``."""

    name: str
    bit: int
    start_time: int
    timeout: int
    min_activation_height: int = 0
    period: int = 2016
    threshold: int = 1916

    def __post_init__(self) -> None:
        if not 0 <= self.bit < VERSIONBITS_NUM_BITS:
            raise ValueError(f"{self.name}: bit must be in [0, {VERSIONBITS_NUM_BITS})")
        if not 0 < self.threshold <= self.period:
            raise ValueError(f"{self.name}: threshold must be in (0, period]")
        if self.min_activation_height < 0:
            raise ValueError(f"{self.name}: min_activation_height must not be negative")

    @property
    def mask(self) -> int:
        return 1 << self.bit


def signals(version: int, deployment: Deployment) -> bool:
    """Whether a header ``version`` signals for ``deployment`` (Core's ``Condition``)."""
    return (version & VERSIONBITS_TOP_MASK) == VERSIONBITS_TOP_BITS and bool(
        version & deployment.mask
    )


def deployment_state(
    deployment: Deployment,
    prev_height: int,
    median_time_past: Callable[[int], int],
    version: Callable[[int], int],
    cache: MutableMapping[int, ThresholdState] | None = None,
) -> ThresholdState:
    """The BIP9 state of ``deployment`` for the block after the one at ``prev_height``.

    Core's ``GetStateFor``. Pass ``prev_height = -1`` for the genesis block. ``median_time_past(h)``
    and ``version(h)`` describe the block at height ``h`` of the chain being asked about (only
    heights ``<= prev_height`` are read). ``cache`` maps the height of a period's last block to the
    state of the next period; it is valid for a single chain only, so drop it (or the entries
    above the fork point) on a reorg.
    """
    if deployment.start_time == ALWAYS_ACTIVE:
        return ThresholdState.ACTIVE
    if deployment.start_time == NEVER_ACTIVE:
        return ThresholdState.FAILED
    period = deployment.period
    if cache is None:
        cache = {}

    # Every block of a period shares the state of its first: move to the last block of the
    # previous period (-1 stands for "before genesis", whose state is DEFINED).
    height = prev_height - ((prev_height + 1) % period)
    to_compute: list[int] = []
    while height not in cache:
        if height < 0 or median_time_past(height) < deployment.start_time:
            # Before genesis, or before the start time: DEFINED, and so is everything earlier.
            cache[height] = ThresholdState.DEFINED
            break
        to_compute.append(height)
        height -= period

    state = cache[height]
    for height in reversed(to_compute):
        state = _next_state(deployment, state, height, median_time_past, version)
        cache[height] = state
    return state


def _next_state(
    deployment: Deployment,
    state: ThresholdState,
    last_height: int,
    median_time_past: Callable[[int], int],
    version: Callable[[int], int],
) -> ThresholdState:
    """The state of the period after the one ending at ``last_height``, which was in ``state``."""
    if state is ThresholdState.DEFINED:
        started = median_time_past(last_height) >= deployment.start_time
        return ThresholdState.STARTED if started else state
    if state is ThresholdState.STARTED:
        first = last_height - deployment.period + 1
        count = sum(1 for h in range(first, last_height + 1) if signals(version(h), deployment))
        if count >= deployment.threshold:
            return ThresholdState.LOCKED_IN
        if median_time_past(last_height) >= deployment.timeout:
            return ThresholdState.FAILED
        return state
    if state is ThresholdState.LOCKED_IN:
        # Activation waits for min_activation_height, and happens only on a period boundary.
        reached = last_height + 1 >= deployment.min_activation_height
        return ThresholdState.ACTIVE if reached else state
    return state  # ACTIVE and FAILED are final


def compute_block_version(states: Iterable[tuple[Deployment, ThresholdState]]) -> int:
    """The header version a miner should use: the BIP9 top bits plus the bit of every deployment
    that is STARTED or LOCKED_IN for the new block (Core's ``ComputeBlockVersion``)."""
    version = VERSIONBITS_TOP_BITS
    for deployment, state in states:
        if state in (ThresholdState.STARTED, ThresholdState.LOCKED_IN):
            version |= deployment.mask
    return version
