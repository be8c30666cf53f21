"""Buried deployments, per-block script flags, BIP30 exceptions and the BIP9 state machine."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peercash.consensus.deployments import (
    ALWAYS_ACTIVE,
    BIP34_IMPLIES_BIP30_LIMIT,
    NEVER_ACTIVE,
    NO_TIMEOUT,
    VERSIONBITS_TOP_BITS,
    Deployment,
    ThresholdState,
    bip30_check_required,
    bip34_active,
    block_script_flags,
    cltv_active,
    compute_block_version,
    csv_active,
    deployment_state,
    dersig_active,
    is_bip30_repeat,
    is_bip30_unspendable,
    min_block_version,
    segwit_active,
    signals,
)
from peercash.consensus.params import MAIN, REGTEST, SIGNET, TESTNET, TESTNET4, NetworkParams
from peercash.consensus.pow import median_time_past
from peercash.consensus.script.flags import MANDATORY_SCRIPT_VERIFY_FLAGS, VerifyFlags

F = VerifyFlags
BASE = F.P2SH | F.WITNESS | F.TAPROOT
SOME_HASH = b"\x42" * 32


def display(hex_hash: str) -> bytes:
    return bytes.fromhex(hex_hash)[::-1]


# --- buried deployments and script flags -------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "expected"),
    [
        (0, BASE),
        (227_931, BASE),  # BIP34 adds no script flag
        (363_724, BASE),
        (363_725, BASE | F.DERSIG),
        (388_380, BASE | F.DERSIG),
        (388_381, BASE | F.DERSIG | F.CHECKLOCKTIMEVERIFY),
        (419_327, BASE | F.DERSIG | F.CHECKLOCKTIMEVERIFY),
        (419_328, BASE | F.DERSIG | F.CHECKLOCKTIMEVERIFY | F.CHECKSEQUENCEVERIFY),
        (481_823, BASE | F.DERSIG | F.CHECKLOCKTIMEVERIFY | F.CHECKSEQUENCEVERIFY),
        (481_824, MANDATORY_SCRIPT_VERIFY_FLAGS),
        (900_000, MANDATORY_SCRIPT_VERIFY_FLAGS),
    ],
)
def test_mainnet_flags_at_boundaries(height: int, expected: VerifyFlags) -> None:
    assert block_script_flags(MAIN, height, SOME_HASH) == expected


def test_mainnet_bip16_exception_block() -> None:
    # Block 170060 spent a P2SH output without satisfying its redeem script.
    bip16 = display("00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22")
    assert block_script_flags(MAIN, 170_060, bip16) == F.NONE


def test_mainnet_taproot_exception_block() -> None:
    # Block 692261 spent a taproot output invalid under BIP341 before taproot activated.
    taproot = display("0000000000000000000f14c35b2d841e986ab5441de8c585d5ffe55ea1e395ad")
    flags = block_script_flags(MAIN, 692_261, taproot)
    assert flags == MANDATORY_SCRIPT_VERIFY_FLAGS & ~F.TAPROOT
    assert not flags & F.TAPROOT
    # The exception is a mainnet fact: the same hash elsewhere gets the normal flags.
    assert block_script_flags(TESTNET4, 692_261, taproot) == MANDATORY_SCRIPT_VERIFY_FLAGS


def test_testnet3_bip16_exception_block() -> None:
    bip16 = display("00000000dd30457c001f4095d208cc1296b0eed002427aa599874af7a432b105")
    assert block_script_flags(TESTNET, 100, bip16) == F.NONE
    assert block_script_flags(MAIN, 100, bip16) == BASE


def test_regtest_and_young_networks_flags() -> None:
    # Regtest: segwit (and so NULLDUMMY) from genesis, the rest from block 1.
    assert block_script_flags(REGTEST, 0, SOME_HASH) == BASE | F.NULLDUMMY
    assert block_script_flags(REGTEST, 1, SOME_HASH) == MANDATORY_SCRIPT_VERIFY_FLAGS
    for params in (TESTNET4, SIGNET):
        assert block_script_flags(params, 0, SOME_HASH) == BASE
        assert block_script_flags(params, 1, SOME_HASH) == MANDATORY_SCRIPT_VERIFY_FLAGS


@pytest.mark.parametrize(
    ("active", "height_of"),
    [
        (bip34_active, "bip34_height"),
        (dersig_active, "bip66_height"),
        (cltv_active, "bip65_height"),
        (csv_active, "csv_height"),
        (segwit_active, "segwit_height"),
    ],
)
@pytest.mark.parametrize("params", [MAIN, TESTNET, TESTNET4, SIGNET, REGTEST], ids=lambda p: p.name)
def test_buried_helpers_switch_at_their_height(
    active: Callable[[NetworkParams, int], bool], height_of: str, params: NetworkParams
) -> None:
    height = getattr(params, height_of)
    assert active(params, height)
    assert active(params, height + 1000)
    if height > 0:
        assert not active(params, height - 1)


def test_min_block_version() -> None:
    assert min_block_version(MAIN, 227_930) == 0
    assert min_block_version(MAIN, 227_931) == 2
    assert min_block_version(MAIN, 363_725) == 3
    assert min_block_version(MAIN, 388_381) == 4
    assert min_block_version(REGTEST, 0) == 0
    assert min_block_version(REGTEST, 1) == 4


# --- BIP30 ------------------------------------------------------------------------------------------

REPEAT_91842 = display("00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec")
REPEAT_91880 = display("00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721")


def test_bip30_repeats() -> None:
    assert is_bip30_repeat(MAIN, 91842, REPEAT_91842)
    assert is_bip30_repeat(MAIN, 91880, REPEAT_91880)
    assert not is_bip30_repeat(MAIN, 91880, REPEAT_91842)
    assert not is_bip30_repeat(MAIN, 91843, REPEAT_91842)
    assert not is_bip30_repeat(TESTNET, 91842, REPEAT_91842)
    unspendable = display("00000000000271a2dc26e7667f8419f2e15416dc6955e5a6c6cdf3f2574dd08e")
    assert is_bip30_unspendable(MAIN, 91722, unspendable)
    assert not is_bip30_unspendable(MAIN, 91722, SOME_HASH)


def test_bip30_check_required() -> None:
    bip34 = MAIN.bip34_hash
    assert bip34 is not None
    # Before BIP34: always checked, except for the two historical repeats.
    assert bip30_check_required(MAIN, 100_000, SOME_HASH, None)
    assert not bip30_check_required(MAIN, 91842, REPEAT_91842, None)
    # On the chain through the BIP34 activation block: skipped until the limit height.
    assert not bip30_check_required(MAIN, 300_000, SOME_HASH, bip34)
    assert not bip30_check_required(MAIN, BIP34_IMPLIES_BIP30_LIMIT - 1, SOME_HASH, bip34)
    assert bip30_check_required(MAIN, BIP34_IMPLIES_BIP30_LIMIT, SOME_HASH, bip34)
    # A fork that does not go through that block keeps checking.
    assert bip30_check_required(MAIN, 300_000, SOME_HASH, SOME_HASH)
    # Networks whose BIP34 hash is null never skip the check.
    assert bip30_check_required(TESTNET4, 10, SOME_HASH, SOME_HASH)
    assert bip30_check_required(REGTEST, 10, SOME_HASH, None)


# --- BIP9 -------------------------------------------------------------------------------------------


class Chain:
    """A synthetic chain: block times and versions, with strict accessors for BIP9."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.versions: list[int] = []
        self.limit = -1  # the highest height the accessors may read

    def add(self, count: int, time: int, version: int = VERSIONBITS_TOP_BITS) -> Chain:
        for _ in range(count):
            self.times.append(time)
            self.versions.append(version)
        return self

    def mtp(self, height: int) -> int:
        assert 0 <= height <= self.limit, height
        return median_time_past(self.times[max(0, height - 10) : height + 1])

    def version(self, height: int) -> int:
        assert 0 <= height <= self.limit, height
        return self.versions[height]

    def state(
        self,
        deployment: Deployment,
        height: int,
        cache: dict[int, ThresholdState] | None = None,
    ) -> ThresholdState:
        """The state of the block at ``height`` (which need not exist yet)."""
        self.limit = height - 1
        return deployment_state(deployment, height - 1, self.mtp, self.version, cache)


START = 1_600_000_000
TIMEOUT = START + 100_000
BEFORE = START - 1000
DEP = Deployment(name="t", bit=5, start_time=START, timeout=TIMEOUT, period=10, threshold=8)
YES = VERSIONBITS_TOP_BITS | DEP.mask
NO = VERSIONBITS_TOP_BITS

S = ThresholdState


def started_chain() -> Chain:
    """Blocks 0-9 before the start time, 10-19 after it: blocks from 20 on are STARTED."""
    return Chain().add(10, BEFORE).add(10, START)


def test_defined_until_start_time() -> None:
    chain = Chain().add(30, BEFORE, YES)
    for height in (0, 5, 10, 29, 30):
        assert chain.state(DEP, height) is S.DEFINED


def test_start_needs_the_period_end_mtp() -> None:
    chain = started_chain()
    assert chain.state(DEP, 10) is S.DEFINED
    assert chain.state(DEP, 19) is S.DEFINED
    assert chain.state(DEP, 20) is S.STARTED
    # Signalling before STARTED does not count.
    chain = Chain().add(10, BEFORE, YES).add(10, START, YES).add(10, START, NO)
    assert chain.state(DEP, 20) is S.STARTED
    assert chain.state(DEP, 30) is S.STARTED


@pytest.mark.parametrize(("signalling", "expected"), [(7, S.STARTED), (8, S.LOCKED_IN)])
def test_threshold(signalling: int, expected: ThresholdState) -> None:
    chain = started_chain().add(signalling, START, YES).add(10 - signalling, START, NO)
    assert chain.state(DEP, 29) is S.STARTED
    assert chain.state(DEP, 30) is expected


def test_full_cycle_to_active() -> None:
    chain = started_chain().add(2, START, NO).add(8, START, YES).add(20, START, NO)
    assert [chain.state(DEP, h) for h in (0, 10, 20, 30, 40, 50)] == [
        S.DEFINED,
        S.DEFINED,
        S.STARTED,
        S.LOCKED_IN,
        S.ACTIVE,
        S.ACTIVE,
    ]
    # Every block of a period shares the state of its first.
    assert {chain.state(DEP, h) for h in range(30, 40)} == {S.LOCKED_IN}
    assert {chain.state(DEP, h) for h in range(40, 50)} == {S.ACTIVE}


def test_only_properly_versioned_blocks_signal() -> None:
    assert signals(YES, DEP)
    assert not signals(NO, DEP)
    assert not signals(DEP.mask, DEP)  # no top bits
    assert not signals(0x60000000 | DEP.mask, DEP)  # top bits 011
    assert not signals(0xE0000000 | DEP.mask, DEP)
    assert not signals(-1, DEP)
    chain = started_chain().add(10, START, 0x60000000 | DEP.mask)
    assert chain.state(DEP, 30) is S.STARTED


def test_timeout_fails_but_lock_in_wins() -> None:
    late = TIMEOUT + 1
    failing = started_chain().add(7, late, YES).add(3, late, NO).add(10, late, YES)
    assert failing.state(DEP, 30) is S.FAILED
    assert failing.state(DEP, 40) is S.FAILED  # final, whatever comes later
    winning = started_chain().add(8, late, YES).add(2, late, NO).add(10, late, NO)
    assert winning.state(DEP, 30) is S.LOCKED_IN
    assert winning.state(DEP, 40) is S.ACTIVE


def test_timeout_while_defined_still_starts() -> None:
    # As in Core: a deployment whose start is past its timeout goes DEFINED → STARTED → FAILED.
    dep = Deployment(name="t", bit=5, start_time=START, timeout=START, period=10, threshold=8)
    chain = Chain().add(10, BEFORE).add(20, START)
    assert [chain.state(dep, h) for h in (10, 20, 30)] == [S.DEFINED, S.STARTED, S.FAILED]


def test_min_activation_height_delays_activation() -> None:
    dep = Deployment(
        name="t",
        bit=5,
        start_time=START,
        timeout=TIMEOUT,
        min_activation_height=55,
        period=10,
        threshold=8,
    )
    chain = started_chain().add(10, START, YES).add(40, START, NO)
    states = [chain.state(dep, h) for h in (20, 30, 40, 50, 59, 60)]
    assert states == [S.STARTED, S.LOCKED_IN, S.LOCKED_IN, S.LOCKED_IN, S.LOCKED_IN, S.ACTIVE]


def test_always_and_never_active() -> None:
    always = Deployment(name="a", bit=1, start_time=ALWAYS_ACTIVE, timeout=NO_TIMEOUT)
    never = Deployment(name="n", bit=1, start_time=NEVER_ACTIVE, timeout=NO_TIMEOUT)
    chain = Chain()
    assert chain.state(always, 0) is S.ACTIVE
    assert chain.state(never, 0) is S.FAILED
    assert MAIN.deployments["testdummy"].start_time == NEVER_ACTIVE
    assert chain.state(MAIN.deployments["testdummy"], 0) is S.FAILED
    assert chain.state(REGTEST.deployments["taproot"], 0) is S.ACTIVE


def test_cache_gives_the_same_answers() -> None:
    chain = started_chain().add(2, START, NO).add(8, START, YES).add(30, START, NO)
    cache: dict[int, ThresholdState] = {}
    for height in range(0, 60):
        assert chain.state(DEP, height, cache) is chain.state(DEP, height)
    # Keys are the last heights of periods (-1: before genesis).
    assert set(cache) == {-1, 9, 19, 29, 39, 49}
    assert cache[29] is S.LOCKED_IN and cache[39] is S.ACTIVE


def test_regtest_testdummy_activates_after_three_periods() -> None:
    dep = REGTEST.deployments["testdummy"]
    signal = VERSIONBITS_TOP_BITS | 1 << 28
    chain = Chain()
    for height in range(432):
        chain.add(1, 1296688602 + 600 * height, signal)
    cache: dict[int, ThresholdState] = {}
    assert chain.state(dep, 143, cache) is S.DEFINED
    assert chain.state(dep, 144, cache) is S.STARTED
    assert chain.state(dep, 288, cache) is S.LOCKED_IN
    assert chain.state(dep, 431, cache) is S.LOCKED_IN
    assert chain.state(dep, 432, cache) is S.ACTIVE


def test_compute_block_version() -> None:
    other = Deployment(name="o", bit=7, start_time=START, timeout=TIMEOUT)
    assert compute_block_version([]) == VERSIONBITS_TOP_BITS
    assert compute_block_version([(DEP, S.STARTED), (other, S.DEFINED)]) == YES
    assert compute_block_version([(DEP, S.LOCKED_IN), (other, S.STARTED)]) == (YES | other.mask)
    assert compute_block_version([(DEP, S.ACTIVE), (other, S.FAILED)]) == VERSIONBITS_TOP_BITS


def test_deployment_validation() -> None:
    with pytest.raises(ValueError):
        Deployment(name="x", bit=29, start_time=0, timeout=NO_TIMEOUT)
    with pytest.raises(ValueError):
        Deployment(name="x", bit=1, start_time=0, timeout=NO_TIMEOUT, period=10, threshold=11)
