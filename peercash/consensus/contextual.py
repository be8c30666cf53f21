"""Contextual consensus checks: rules that need the chain a block extends or the coins it spends.

Consensus, layer 0. These are Core's ``ContextualCheckBlockHeader``, ``ContextualCheckBlock``,
``IsFinalTx``, BIP68 sequence locks (``CalculateSequenceLocks``/``EvaluateSequenceLocks``),
``Consensus::CheckTxInputs``, the coinbase-amount and BIP30 checks of ``ConnectBlock``. The
context-free checks (``CheckBlock``, ``CheckTransaction``) are in :mod:`.checks`; callers run those
first, and the functions here assume they passed.

Every piece of context is a plain argument (heights, times, "is this fork active" booleans, a
callable for ancestors' median time past), so this module depends neither on the shape of
``params`` nor on the block index: ``chain.validation`` and the mempool compute the context and call
in. Callers may import it from anywhere at or above the consensus layer.

Errors: a broken rule raises ``RuleError(code, reason, ban_score)`` with Core's reject reason as the
code. The ban score is 100 (the sender broke consensus) except for "time-too-new", which is 0: the
block may become valid later, and Core does not punish it. Wrong arguments (mismatched list lengths,
a missing ``prev_time`` when BIP94 needs it) raise ``ValueError``: they are caller bugs, not rules.

Pure functions: no I/O, no clock (the caller passes the current time), no state, no randomness;
safe to call from any thread or process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .deployments import BIP34_IMPLIES_BIP30_LIMIT
from .errors import RuleError
from .merkle import compute_witness_commitment, witness_commitment_index, witness_merkle_root
from .primitives import (
    MAX_BLOCK_WEIGHT,
    MAX_MONEY,
    SEQUENCE_FINAL,
    SEQUENCE_LOCKTIME_DISABLE_FLAG,
    SEQUENCE_LOCKTIME_GRANULARITY,
    SEQUENCE_LOCKTIME_MASK,
    SEQUENCE_LOCKTIME_TYPE_FLAG,
    Block,
    Header,
    Tx,
    TxOut,
    _slot_setter,
)
from .script.script import LOCKTIME_THRESHOLD, push_int

MAX_TIMEWARP = 600
"""Consensus (BIP94): the first block of a difficulty period may be at most this many seconds
earlier than its parent (Core's ``MAX_TIMEWARP``)."""

_BAN = 100


def _wire(display_hex: str) -> bytes:
    return bytes.fromhex(display_hex)[::-1]


_BIP30_REPEATS = {
    91842: _wire("00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec"),
    91880: _wire("00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721"),
}
# Mainnet blocks whose coinbase repeated an earlier, still unspent coinbase (BIP30's exceptions).

_BIP30_UNSPENDABLE = {
    91722: _wire("00000000000271a2dc26e7667f8419f2e15416dc6955e5a6c6cdf3f2574dd08e"),
    91812: _wire("00000000000af0aed4792b1acee3d966af36cf5def14935db8de83d6f9306f2f"),
}
# Mainnet blocks whose coinbase outputs those two repeats overwrote (never spendable).


def money_range(value: int) -> bool:
    """Core's ``MoneyRange``: ``0 <= value <= MAX_MONEY``."""
    return 0 <= value <= MAX_MONEY


# -- headers -----------------------------------------------------------------------------------


def contextual_check_block_header(
    header: Header,
    *,
    prev_height: int,
    expected_bits: int,
    median_time_past: int,
    adjusted_time: int,
    max_future_block_time: int,
    bip34_active: bool,
    bip66_active: bool,
    bip65_active: bool,
    prev_time: int | None = None,
    enforce_bip94: bool = False,
    difficulty_adjustment_interval: int = 2016,
) -> None:
    """Core's ``ContextualCheckBlockHeader``: the header against its parent and the clock.

    ``prev_height`` is the parent's height (the header's is one more); ``expected_bits`` is what
    the difficulty rules require of it (Core's ``GetNextWorkRequired``); ``median_time_past`` is
    the *parent's* median time past; ``adjusted_time`` is the node's current time, in seconds;
    ``prev_time`` is the parent's timestamp (needed only when BIP94 is enforced). The three
    ``*_active`` flags say whether BIP34/66/65 apply to *this* header's height (Core's
    ``DeploymentActiveAfter(pindexPrev, ...)``, i.e. ``prev_height + 1 >= activation height``).

    In Core's order: "bad-diffbits"; "time-too-old" (not after the parent's median time past);
    "time-timewarp-attack" (BIP94: on a retarget height, more than ``MAX_TIMEWARP`` seconds before
    the parent); "time-too-new" (more than ``max_future_block_time`` ahead of ``adjusted_time``,
    ban score 0); "bad-version(0x%08x)" (a version below 2, 3 or 4 once BIP34, 66 or 65 apply).
    """
    height = prev_height + 1
    if header.bits != expected_bits:
        raise RuleError(
            "bad-diffbits",
            f"incorrect proof of work (bits {header.bits:#010x}, expected {expected_bits:#010x})",
            _BAN,
        )

    if header.time <= median_time_past:
        raise RuleError("time-too-old", "block's timestamp is too early", _BAN)

    if enforce_bip94 and height % difficulty_adjustment_interval == 0:
        if prev_time is None:
            raise ValueError("prev_time is needed to enforce BIP94 on a retarget height")
        if header.time < prev_time - MAX_TIMEWARP:
            raise RuleError(
                "time-timewarp-attack",
                "block's timestamp is too early on diff adjustment block",
                _BAN,
            )

    if header.time > adjusted_time + max_future_block_time:
        # Not punished: the same block becomes acceptable once the clock catches up.
        raise RuleError("time-too-new", "block timestamp too far in the future", 0)

    version = header.version
    if (
        (version < 2 and bip34_active)
        or (version < 3 and bip66_active)
        or (version < 4 and bip65_active)
    ):
        # C's %08x prints the 32-bit two's complement of a negative version.
        shown = f"0x{version & 0xFFFFFFFF:08x}"
        raise RuleError(f"bad-version({shown})", f"rejected nVersion={shown} block", _BAN)


# -- blocks ------------------------------------------------------------------------------------


def is_final_tx(tx: Tx, block_height: int, block_time: int) -> bool:
    """Core's ``IsFinalTx``: whether ``tx``'s nLockTime allows it in a block at this height/time.

    A lock time below ``LOCKTIME_THRESHOLD`` is a height, else a time; it is satisfied when
    strictly below ``block_height`` (resp. ``block_time``). An unsatisfied lock time still counts
    as final when every input's sequence is ``SEQUENCE_FINAL``.
    """
    locktime = tx.locktime
    if locktime == 0:
        return True
    if locktime < (block_height if locktime < LOCKTIME_THRESHOLD else block_time):
        return True
    return all(txin.sequence == SEQUENCE_FINAL for txin in tx.inputs)


def check_witness_malleation(block: Block, expect_witness_commitment: bool) -> None:
    """Core's ``CheckWitnessMalleation``: the witnesses are the ones the block commits to.

    With ``expect_witness_commitment`` (segwit active) and a commitment output in the coinbase
    (the last output starting ``6a24aa21a9ed``, see ``merkle.witness_commitment_index``): the
    coinbase witness must be exactly one 32-byte item ("bad-witness-nonce-size") and the
    commitment must equal ``hash256(witness root || that item)`` ("bad-witness-merkle-match").
    Otherwise no transaction may carry a witness ("unexpected-witness"). All three codes are in
    ``checks.BLOCK_MUTATED_CODES``. Assumes :func:`checks.check_block` passed (a coinbase exists).
    """
    if expect_witness_commitment:
        commit_pos = witness_commitment_index(block)
        if commit_pos is not None:
            coinbase = block.txs[0]
            stack = coinbase.inputs[0].witness
            if len(stack) != 1 or len(stack[0]) != 32:
                raise RuleError(
                    "bad-witness-nonce-size", "invalid witness reserved value size", _BAN
                )
            # The witness tree's mutated flag is ignored: the txid tree already rules it out.
            root, _ = witness_merkle_root(block)
            commitment = compute_witness_commitment(root, stack[0])
            if coinbase.outputs[commit_pos].script_pubkey[6:38] != commitment:
                raise RuleError(
                    "bad-witness-merkle-match", "witness merkle commitment mismatch", _BAN
                )
            return

    for tx in block.txs:
        if tx.has_witness():
            raise RuleError(
                "unexpected-witness", f"unexpected witness data found (tx {tx.txid_hex})", _BAN
            )


def contextual_check_block(
    block: Block,
    *,
    height: int,
    lock_time_cutoff: int,
    bip34_active: bool,
    segwit_active: bool,
) -> None:
    """Core's ``ContextualCheckBlock``: the block's transactions against its height and time.

    ``height`` is the block's own height. ``lock_time_cutoff`` is the time nLockTime is compared
    with: the parent's median time past once BIP113 (deployed with CSV) applies to this block,
    else the block's own timestamp. ``bip34_active`` and ``segwit_active`` say whether those
    rules apply at ``height``. Assumes :func:`checks.check_block` passed.

    In Core's order: every transaction final ("bad-txns-nonfinal"); with BIP34, the coinbase
    scriptSig starts with the height pushed as Core's ``CScript() << nHeight`` ("bad-cb-height");
    :func:`check_witness_malleation`; the block weight within ``MAX_BLOCK_WEIGHT``
    ("bad-blk-weight", checked last so an inflated coinbase witness reads as malleation, not as a
    permanently invalid block).
    """
    txs = block.txs
    if not txs or not txs[0].inputs:
        raise RuleError("bad-cb-missing", "first tx is not coinbase", _BAN)

    for tx in txs:
        if not is_final_tx(tx, height, lock_time_cutoff):
            raise RuleError("bad-txns-nonfinal", f"non-final transaction {tx.txid_hex}", _BAN)

    if bip34_active:
        expect = push_int(height)
        if not txs[0].inputs[0].script_sig.startswith(expect):
            raise RuleError("bad-cb-height", "block height mismatch in coinbase", _BAN)

    check_witness_malleation(block, segwit_active)

    weight = block.weight()
    if weight > MAX_BLOCK_WEIGHT:
        raise RuleError("bad-blk-weight", f"weight limit failed ({weight})", _BAN)


# -- BIP68 sequence locks ----------------------------------------------------------------------


def calculate_sequence_locks(
    tx: Tx,
    enforce_bip68: bool,
    prev_heights: Sequence[int],
    block_height: int,
    mtp_at_height: Callable[[int], int],
) -> tuple[int, int]:
    """Core's ``CalculateSequenceLocks``: the ``(min_height, min_time)`` ``tx``'s BIP68 locks imply.

    Both are *last invalid* values, as nLockTime: ``-1`` means no constraint. ``enforce_bip68``
    is Core's ``LOCKTIME_VERIFY_SEQUENCE`` flag (CSV active for the block); locks also need
    ``tx.version >= 2`` (unsigned), which is checked here. ``prev_heights[i]`` is the height of
    the block that created the coin input ``i`` spends (for a coin still in the mempool, the
    height of the next block). ``block_height`` is the height of the block ``tx`` would be in.

    ``mtp_at_height(h)`` must return the median time past of the block at height ``h`` on the
    chain of the block being validated (Core's ``block.GetAncestor(h)->GetMedianTimePast()``).
    It is called only for time-based locks, with ``h = max(prev_heights[i] - 1, 0)``: a time lock
    counts from the median time past of the block *before* the one that confirmed the coin, the
    earliest timestamp that block could have had. ``h < block_height`` always holds for a valid
    ``prev_heights[i] <= block_height``.

    Core also zeroes ``prev_heights[i]`` for inputs with the disable flag; this function does not
    touch its argument, so callers tracking the highest locked input (mempool lock points) should
    skip inputs whose sequence has ``SEQUENCE_LOCKTIME_DISABLE_FLAG`` set.
    """
    inputs = tx.inputs
    if len(prev_heights) != len(inputs):
        raise ValueError(f"{len(prev_heights)} prev heights for {len(inputs)} inputs")

    min_height = -1
    min_time = -1
    if not enforce_bip68 or (tx.version & 0xFFFFFFFF) < 2:
        return min_height, min_time

    for txin, coin_height in zip(inputs, prev_heights):
        sequence = txin.sequence
        if sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            continue
        if coin_height > block_height:
            raise ValueError(f"coin height {coin_height} above block height {block_height}")
        value = sequence & SEQUENCE_LOCKTIME_MASK
        if sequence & SEQUENCE_LOCKTIME_TYPE_FLAG:
            coin_time = mtp_at_height(max(coin_height - 1, 0))
            # Minus one: from "first valid" (BIP68) to nLockTime's "last invalid".
            min_time = max(min_time, coin_time + (value << SEQUENCE_LOCKTIME_GRANULARITY) - 1)
        else:
            min_height = max(min_height, coin_height + value - 1)
    return min_height, min_time


def evaluate_sequence_locks(block_height: int, block_prev_mtp: int, lock: tuple[int, int]) -> bool:
    """Core's ``EvaluateSequenceLocks``: whether a block at ``block_height``, whose parent has
    median time past ``block_prev_mtp``, satisfies ``lock`` from :func:`calculate_sequence_locks`.

    ConnectBlock rejects a transaction for which this is false with "bad-txns-nonfinal".
    """
    min_height, min_time = lock
    return not (min_height >= block_height or min_time >= block_prev_mtp)


# -- coins -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class SpentCoin:
    """A coin being spent, as the UTXO set holds it: the output, the height of the block that
    created it, and whether it came from a coinbase (for the maturity rule)."""

    txout: TxOut
    height: int
    coinbase: bool

    def __init__(self, txout: TxOut, height: int, coinbase: bool) -> None:
        # One is made per output created or coin loaded: the slots' setters cost half of the
        # frozen dataclass's generated ``object.__setattr__`` calls.
        _set_coin_txout(self, txout)
        _set_coin_height(self, height)
        _set_coin_coinbase(self, coinbase)


_set_coin_txout = _slot_setter(SpentCoin, "txout")
_set_coin_height = _slot_setter(SpentCoin, "height")
_set_coin_coinbase = _slot_setter(SpentCoin, "coinbase")


def check_tx_inputs(
    tx: Tx, spent: Sequence[SpentCoin | None], spend_height: int, coinbase_maturity: int
) -> int:
    """Core's ``Consensus::CheckTxInputs``; returns the fee in satoshis.

    ``spent[i]`` is the coin input ``i`` spends, or ``None`` when the view has no such unspent
    coin. ``spend_height`` is the height of the block the transaction is in (for the mempool: the
    next block's). ``tx`` must not be a coinbase and should have passed ``check_transaction``.

    In Core's order: every coin present ("bad-txns-inputs-missingorspent"); then per input, a
    coinbase coin at least ``coinbase_maturity`` blocks deep
    ("bad-txns-premature-spend-of-coinbase") and the coin's value and the running input total
    within ``[0, MAX_MONEY]`` ("bad-txns-inputvalues-outofrange"); inputs cover outputs
    ("bad-txns-in-belowout"); the fee within ``[0, MAX_MONEY]`` ("bad-txns-fee-outofrange").

    The ban score is 100, right for a block. The mempool should not punish the first two codes:
    Core treats a missing input as an orphan and an immature coinbase spend as not yet valid.
    """
    if tx.is_coinbase():
        raise ValueError("check_tx_inputs takes a non-coinbase transaction")
    if len(spent) != len(tx.inputs):
        raise ValueError(f"{len(spent)} spent coins for {len(tx.inputs)} inputs")

    for coin in spent:
        if coin is None:
            raise RuleError(
                "bad-txns-inputs-missingorspent", f"inputs missing/spent ({tx.txid_hex})", _BAN
            )

    value_in = 0
    for coin in spent:
        assert coin is not None  # checked above
        if coin.coinbase and spend_height - coin.height < coinbase_maturity:
            raise RuleError(
                "bad-txns-premature-spend-of-coinbase",
                f"tried to spend coinbase at depth {spend_height - coin.height}",
                _BAN,
            )
        value = coin.txout.value
        value_in += value
        # money_range, inline: this runs for every input of every block.
        if not (0 <= value <= MAX_MONEY and value_in <= MAX_MONEY):
            raise RuleError("bad-txns-inputvalues-outofrange", "input values out of range", _BAN)

    value_out = 0
    for out in tx.outputs:
        value_out += out.value
    if value_in < value_out:
        raise RuleError(
            "bad-txns-in-belowout",
            f"value in ({format_money(value_in)}) < value out ({format_money(value_out)})",
            _BAN,
        )
    fee = value_in - value_out
    if not money_range(fee):
        raise RuleError("bad-txns-fee-outofrange", f"fee {fee} out of range", _BAN)
    return fee


def check_coinbase_amount(coinbase_tx: Tx, fees: int, subsidy: int) -> None:
    """ConnectBlock's reward check: the coinbase pays at most the block's fees plus its subsidy
    ("bad-cb-amount"). Paying less is allowed (the difference is never created)."""
    actual = sum(out.value for out in coinbase_tx.outputs)
    limit = fees + subsidy
    if actual > limit:
        raise RuleError(
            "bad-cb-amount", f"coinbase pays too much (actual={actual} vs limit={limit})", _BAN
        )


# -- BIP30 -------------------------------------------------------------------------------------


def is_bip30_repeat(height: int, block_hash: bytes) -> bool:
    """Core's ``IsBIP30Repeat``: one of the two mainnet blocks (91842, 91880) whose coinbase
    overwrote an unspent earlier one. ``block_hash`` is in wire order."""
    return _BIP30_REPEATS.get(height) == block_hash


def is_bip30_unspendable(height: int, block_hash: bytes) -> bool:
    """Core's ``IsBIP30Unspendable``: one of the two mainnet blocks (91722, 91812) whose coinbase
    outputs were overwritten by a repeat, so never spendable. ``block_hash`` is in wire order."""
    return _BIP30_UNSPENDABLE.get(height) == block_hash


def bip30_enforced(
    height: int,
    block_hash: bytes,
    *,
    bip34_height: int,
    bip34_hash: bytes | None,
    bip34_ancestor_hash: bytes | None,
) -> bool:
    """Whether ConnectBlock must run the BIP30 check (no output may overwrite an unspent coin).

    Core's rule: BIP30 applies to every block except the two mainnet repeats
    (:func:`is_bip30_repeat`). It may be skipped once BIP34 (height in the coinbase) makes
    duplicate coinbases impossible, but only on the chain that really went through BIP34's
    activation block: when the block's ancestor at ``bip34_height`` has hash ``bip34_hash`` (the
    network's ``BIP34Hash``; ``None`` where the network has none, as on regtest, so BIP30 is always
    checked there). Even then it applies again from ``BIP34_IMPLIES_BIP30_LIMIT`` (1,983,702) on,
    because pre-BIP34 coinbases encode such heights.

    ``bip34_ancestor_hash`` is the hash (wire order) of this block's ancestor at ``bip34_height``
    (Core's ``pindex->pprev->GetAncestor(BIP34Height)``); pass ``None`` when the parent is below
    that height. It is ignored when ``height <= bip34_height``.
    """
    if height >= BIP34_IMPLIES_BIP30_LIMIT:
        return True
    if is_bip30_repeat(height, block_hash):
        return False
    through_bip34 = (
        height > bip34_height
        and bip34_hash is not None
        and bip34_ancestor_hash is not None
        and bip34_ancestor_hash == bip34_hash
    )
    return not through_bip34


def check_bip30(block: Block, any_unspent: Callable[[bytes, int], bool]) -> None:
    """ConnectBlock's BIP30 check, for blocks where :func:`bip30_enforced` is true: no output of
    the block's transactions may already exist ("bad-txns-BIP30").

    ``any_unspent(txid, n)`` says whether the UTXO set (before this block) holds an unspent coin
    at any of outputs ``0 .. n - 1`` of ``txid`` (``chain.coins.CoinsCache.any_unspent``). Asking
    per transaction rather than per output lets a store answer with one search, where new
    outputs are normally all absent.
    """
    for tx in block.txs:
        if any_unspent(tx.txid, len(tx.outputs)):
            raise RuleError("bad-txns-BIP30", f"tried to overwrite transaction {tx.txid_hex}", _BAN)


def format_money(sats: int) -> str:
    """Core's ``FormatMoney`` (its reject texts): BTC with 8 decimals, trailing zeros past the
    second trimmed ("50.00", "0.0001")."""
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), 100_000_000)
    text = f"{frac:08d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{text}"
