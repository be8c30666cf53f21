"""Building, signing and committing the wallet's own transactions (Core's ``wallet/spend.cpp``
``CreateTransaction`` and ``CWallet::CommitTransaction``), and resubmitting them.

Layer 3 (wallet). :func:`create_transaction` picks the feerate (:mod:`feepolicy`), the change
type and script, the coins (:mod:`coinselection`), sizes every input by solving it with dummy
signatures, pays the exact fee (vsize × rate, rounded up) from change or from the recipients who
subtract it, sets the anti-fee-sniping locktime and the sequences, and signs through
:func:`_sign`. :func:`commit_transaction` records it (its inputs are then spent) and hands it to
the node; a transaction the mempool refuses stays in the wallet, as Core keeps it.
:class:`Resubmitter` rebroadcasts unconfirmed transactions of ours at random intervals.

Randomness (change position, change target, input order, locktime) comes from an injected
``random.Random``. Error contract: :class:`SpendError` (a ``WalletError``, RPC -4) and
:class:`FundsError` (-6, Core's RPC_WALLET_INSUFFICIENT_FUNDS) with Core's messages.
Concurrency: each call takes the wallet's lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.script import witness_program
from peercash.mempool.policy import DUST_RELAY_TX_FEE, MAX_STANDARD_TX_WEIGHT, is_dust

from . import coinselection as cs
from .coinselection import FeeRate
from .feepolicy import FeeError, FeePolicy, minimum_fee_rate
from .fill import sign_transaction
from .psbt.model import Psbt
from .psbt.roles import Provider, from_transaction, update
from .signer import solve_input
from .txrecord import ABANDONED, INACTIVE, MEMPOOL, WalletTx
from .wallet import Coin, Wallet, WalletError

SEQUENCE_FINAL = 0xFFFFFFFF
SEQUENCE_RBF = 0xFFFFFFFD
"""BIP125's highest replaceable sequence (Core's ``MAX_BIP125_RBF_SEQUENCE``)."""
SEQUENCE_NONFINAL = 0xFFFFFFFE
"""Final for replacement, still enabling the locktime (Core's ``MAX_SEQUENCE_NONFINAL``)."""
TX_VERSION = 2
MAX_ANTI_FEE_SNIPING_TIP_AGE = 8 * 60 * 60
FEE_REASONS = {
    "user": "PayTxFee set",
    "paytxfee": "PayTxFee set",
    "fallback": "Fallback fee",
    "estimate": "Target 85% Threshold",
}
"""Core's ``StringForFeeReason`` by :class:`feepolicy.FeeChoice` reason (an estimate's own
reason, half/double target, is not reported by the node client: shown as the target's)."""


class SpendError(WalletError):
    """A transaction the wallet will not create (Core's RPC_WALLET_ERROR, -4)."""


class FundsError(SpendError):
    """Not enough spendable coins (Core's RPC_WALLET_INSUFFICIENT_FUNDS, -6)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    script: bytes
    amount: int
    subtract_fee: bool = False


@dataclass(slots=True)
class CoinControl:
    """What the caller fixes about the transaction (Core's ``CCoinControl``)."""

    inputs: list[OutPoint] = field(default_factory=list)
    add_inputs: bool = True
    change_script: bytes | None = None
    change_position: int | None = None
    change_type: str | None = None
    include_unsafe: bool = False
    min_depth: int = 0
    max_depth: int = 9_999_999
    lock_unspents: bool = False
    fee_rate: FeeRate | None = None
    conf_target: int | None = None
    estimate_mode: str = "unset"
    replaceable: bool | None = None
    locktime: int | None = None
    avoid_partial_spends: bool = False
    version: int = TX_VERSION
    sign: bool = True
    sequences: dict[OutPoint, int] = field(default_factory=dict)
    """Preselected inputs' own sequence numbers (a funded raw transaction keeps them)."""


@dataclass(frozen=True, slots=True)
class CreatedTransaction:
    tx: Tx
    fee: int
    change_pos: int
    """-1 without change."""
    fee_rate: FeeRate
    spent: tuple[TxOut, ...]
    complete: bool
    fee_reason: str = ""
    """Core's ``StringForFeeReason`` of how the feerate was chosen."""


def fee_policy(wallet: Wallet) -> FeePolicy:
    policy = wallet.fee_policy
    assert isinstance(policy, FeePolicy)
    return policy


# -- keys and signing ----------------------------------------------------------------------------


def provider_for(wallet: Wallet, scripts: Sequence[bytes]) -> Provider:
    """Scripts, key origins and taproot data of those ``scripts`` that are ours."""
    provider = Provider()
    for script in scripts:
        info = wallet.keys.is_mine(script)
        if info is not None:
            exp = wallet.keys.descs[info.desc_id].expand(info.position)
            provider.add_expansion(exp)
    provider.secrets.clear()  # secrets go through the signing seam only
    return provider


def wallet_psbt(wallet: Wallet, tx: Tx, spent: Sequence[TxOut], *, sizing: bool = False) -> Psbt:
    """``tx`` as a PSBT with our UTXOs, scripts and key origins filled in. ``sizing``: every
    input gets its witness UTXO (enough to size a legacy input with dummy signatures)."""
    psbt = from_transaction(tx)
    if sizing:
        for inp, out in zip(psbt.inputs, spent, strict=True):
            inp.witness_utxo = out
    prev = [wallet.txs[i.prevout.txid].tx for i in tx.inputs if i.prevout.txid in wallet.txs]
    lookup = dict(zip((i.prevout for i in tx.inputs), spent, strict=True))
    scripts = [o.script_pubkey for o in spent] + [o.script_pubkey for o in tx.outputs]
    update(psbt, provider_for(wallet, scripts), prev, lookup.get)
    return psbt


def _sign(wallet: Wallet, tx: Tx, spent: Sequence[TxOut]) -> tuple[Tx, bool]:
    """Sign through the agreed seam, ``fill.sign_transaction`` (keys from
    ``Wallet.signing_keys``: ``WalletLocked`` when encrypted and locked); (tx, complete)."""
    signed, errors = sign_transaction(wallet, tx, list(spent))
    return signed, not errors


def dummy_signed(wallet: Wallet, tx: Tx, spent: Sequence[TxOut]) -> Tx:
    """``tx`` with maximum-size stand-in signatures, to size it (Core's ``DummySignTx``)."""
    psbt = wallet_psbt(wallet, tx, spent, sizing=True)
    inputs = []
    for k, txin in enumerate(tx.inputs):
        sol = solve_input(psbt, k, None, dummy=True)
        if not sol.complete:
            raise SpendError("Missing solving data for estimating transaction size")
        inputs.append(TxIn(txin.prevout, sol.script_sig, txin.sequence, sol.witness))
    return Tx(tx.version, inputs, tx.outputs, tx.locktime)


def input_vsize(wallet: Wallet, txout: TxOut) -> int:
    """Virtual size of an input spending ``txout`` (with witness overhead shared out as Core's
    ``CalculateMaximumSignedInputSize`` does: the input's bytes, witness bytes / 4 rounded up)."""
    probe = Tx(TX_VERSION, [TxIn(OutPoint(b"\x00" * 32, 0))], [], 0)
    signed = dummy_signed(wallet, probe, [txout]).inputs[0]
    base = len(signed.serialize())
    wit = _witness_len(signed.witness) if signed.witness else 1
    return base + (wit + 3) // 4


def _witness_len(items: Sequence[bytes]) -> int:
    size = _compact_len(len(items))
    return size + sum(_compact_len(len(x)) + len(x) for x in items)


def _compact_len(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5


# -- change ---------------------------------------------------------------------------------------


def _recipient_kind(script: bytes) -> str | None:
    """The output type a recipient's script is, for matching change to it."""
    program = witness_program(script)
    if program is not None:
        version, prog = program
        if version == 1 and len(prog) == 32:
            return "bech32m"
        return "bech32" if version == 0 and len(prog) == 20 else None
    if len(script) == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return "p2sh-segwit"
    if len(script) == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return "legacy"
    return None


CHANGE_MATCH_ORDER = ("bech32m", "bech32", "p2sh-segwit", "legacy")


def change_type(wallet: Wallet, recipients: Sequence[Recipient], cc: CoinControl) -> str:
    """Core's ``TransactionChangeType``: the requested type; else the type of a recipient
    (taproot, then P2WPKH, P2SH, P2PKH) we have a change descriptor for, so change looks like
    the payment; else taproot change if we can, else bech32."""
    if cc.change_type is not None:
        return cc.change_type
    kinds = {_recipient_kind(r.script) for r in recipients}
    for kind in CHANGE_MATCH_ORDER:
        if kind in kinds and wallet.keys.active(kind, True) is not None:
            return kind
    if wallet.keys.active("bech32m", True) is not None:
        return "bech32m"
    return "bech32"


def _peek_change(wallet: Wallet, output_type: str) -> bytes:
    row = wallet.keys.active(output_type, True)
    if row is None:
        raise SpendError(
            "Transaction needs a change address, but we can't generate it. Error: This wallet "
            f"has no available keys (change {output_type})"
        )
    return wallet.keys.descs[row.id].script_pubkeys(row.next_index)[0]


# -- locktime -----------------------------------------------------------------------------------


def anti_fee_sniping_locktime(tip_height: int, synced: bool, rng: random.Random) -> int:
    """Core's ``DiscourageFeeSniping`` (locktime form): the tip height, and one time in ten up to
    99 blocks less, so delayed transactions do not stand out; 0 while the chain is behind."""
    if not synced:
        return 0
    locktime = tip_height
    if rng.randrange(10) == 0:
        locktime = max(0, locktime - rng.randrange(100))
    return locktime


def is_current(wallet: Wallet) -> bool:
    """Core's ``IsCurrentForAntiFeeSniping``: out of IBD and the tip at most 8 hours old."""
    node = wallet.node
    if node is None or node.is_initial_block_download():
        return False
    block = node.read_block(node.tip()[0])
    return block is not None and block.header.time > wallet.clock() - MAX_ANTI_FEE_SNIPING_TIP_AGE


# -- creation -----------------------------------------------------------------------------------


def _priced(
    wallet: Wallet,
    coin: Coin,
    params: cs.CoinSelectionParams,
    sizes: dict[str, int],
) -> cs.Coin:
    key = coin.info.desc_id
    if key not in sizes:
        sizes[key] = input_vsize(wallet, coin.txout)
    return params.priced(
        coin.outpoint,
        coin.txout.value,
        sizes[key],
        depth=coin.depth,
        from_me=wallet.is_from_me(coin.wtx.tx),
        script=coin.txout.script_pubkey,
    )


def _check_recipients(recipients: Sequence[Recipient]) -> None:
    if not recipients:
        raise SpendError("Transaction must have at least one recipient")
    for r in recipients:
        if r.amount < 0:
            raise SpendError("Transaction amounts must not be negative")


def create_transaction(
    wallet: Wallet,
    recipients: Sequence[Recipient],
    cc: CoinControl | None = None,
    rng: random.Random | None = None,
) -> CreatedTransaction:
    """Core's ``CreateTransaction``: a funded (and, with ``cc.sign``, signed) transaction.

    The change script is reserved (the keypool moves on) only when change is kept.
    """
    cc = cc or CoinControl()
    rng = rng or random.Random()
    node = wallet.node
    if node is None:
        raise SpendError("Wallet is not attached to a chain")
    policy = fee_policy(wallet)
    with wallet.lock:
        _check_recipients(recipients)
        try:
            choice = minimum_fee_rate(
                policy,
                fee_rate=cc.fee_rate,
                conf_target=cc.conf_target,
                estimate_mode=cc.estimate_mode,
                estimate=node.estimate_fee,
            )
        except FeeError as e:
            raise SpendError(str(e)) from None
        rate = choice.rate
        if cc.change_script is not None:
            change_script, kind = cc.change_script, None
        else:
            kind = change_type(wallet, recipients, cc)
            change_script = _peek_change(wallet, kind)
        change_out = TxOut(0, change_script)
        sffo_count = sum(r.subtract_fee for r in recipients)
        outputs = [TxOut(r.amount, r.script) for r in recipients]
        for r, out in zip(recipients, outputs, strict=True):
            if not r.subtract_fee and is_dust(out, DUST_RELAY_TX_FEE):
                raise SpendError("Transaction amount too small")
        recipients_sum = sum(r.amount for r in recipients)
        noinputs = 10 + sum(len(o.serialize()) for o in outputs)
        change_info = wallet.keys.is_mine(change_script)
        if change_info is not None:
            change_spend = input_vsize(wallet, change_out)
        else:
            change_spend = 68  # Core's DUMMY_NESTED_P2WPKH_INPUT_SIZE fallback for foreign change
        params = cs.CoinSelectionParams.for_transaction(
            change_output_size=len(change_out.serialize()),
            change_spend_size=change_spend,
            effective_feerate=rate,
            payment_value=recipients_sum,
            rng=rng,
            change_is_witness=witness_program(change_script) is not None,
            long_term_feerate=FeeRate(policy.consolidate_fee),
            discard_feerate=FeeRate(policy.discard_fee),
            tx_noinputs_size=noinputs,
            avoid_partial_spends=cc.avoid_partial_spends,
            subtract_fee_outputs=sffo_count > 0,
            include_unsafe_inputs=cc.include_unsafe,
        )
        sizes: dict[str, int] = {}
        everything = {
            c.outpoint: c
            for c in wallet.coins(0, 9_999_999, include_unsafe=True, include_locked=True)
        }
        preset = []
        for op in cc.inputs:
            found = everything.get(op) or _replaced_coin(wallet, op)
            if found is None:
                raise SpendError(f"Not found pre-selected input {_outpoint_text(op)}")
            preset.append(_priced(wallet, found, params, sizes))
        chosen = set(cc.inputs)
        available = []
        if cc.add_inputs:
            for coin in wallet.coins(cc.min_depth, cc.max_depth, include_unsafe=cc.include_unsafe):
                if coin.outpoint not in chosen:
                    available.append(_priced(wallet, coin, params, sizes))
        target = recipients_sum + (0 if sffo_count else rate.fee(noinputs))
        try:
            result = cs.select_coins(
                available, target, params, rng, preset=preset, allow_other_inputs=cc.add_inputs
            )
        except cs.InsufficientFunds as e:
            raise FundsError(str(e)) from None
        except cs.CoinSelectionError as e:
            raise SpendError(str(e)) from None
        change = result.change(params.min_viable_change, params.change_fee)
        created = _assemble(wallet, recipients, outputs, result, change, change_script, kind, cc,
                            rate, policy, rng)  # fmt: skip
        return dataclasses.replace(created, fee_reason=FEE_REASONS[choice.reason])


def _assemble(
    wallet: Wallet,
    recipients: Sequence[Recipient],
    outputs: list[TxOut],
    result: cs.SelectionResult,
    change: int,
    change_script: bytes,
    kind: str | None,
    cc: CoinControl,
    rate: FeeRate,
    policy: FeePolicy,
    rng: random.Random,
) -> CreatedTransaction:
    node = wallet.node
    assert node is not None
    change_pos = -1
    if change:
        if cc.change_position is not None:
            if cc.change_position > len(outputs) or cc.change_position < 0:
                raise SpendError("Transaction change output index out of range")
            change_pos = cc.change_position
        else:
            change_pos = rng.randrange(len(outputs) + 1)
        outputs.insert(change_pos, TxOut(change, change_script))
    coins = list(result.inputs)
    rng.shuffle(coins)
    replaceable = policy.signal_rbf if cc.replaceable is None else cc.replaceable
    sequence = SEQUENCE_RBF if replaceable else SEQUENCE_NONFINAL
    if cc.locktime is not None:
        locktime = cc.locktime
    else:
        locktime = anti_fee_sniping_locktime(node.tip()[0], is_current(wallet), rng)
    outpoints = [c.outpoint for c in coins]
    spent = [_output(wallet, op) for op in outpoints]
    inputs = [TxIn(op, b"", cc.sequences.get(op, sequence)) for op in outpoints]  # type: ignore[arg-type, call-overload]
    tx = Tx(cc.version, inputs, outputs, locktime)
    fee_needed = rate.fee(dummy_signed(wallet, tx, spent).vsize())
    current_fee = sum(o.value for o in spent) - sum(o.value for o in outputs)
    to_reduce = fee_needed - current_fee
    sffo = [n for n, r in enumerate(recipients) if r.subtract_fee]
    if sffo:
        share, rest = divmod(to_reduce, len(sffo))
        for k, n in enumerate(sffo):
            pos = n + (1 if 0 <= change_pos <= n else 0)
            value = outputs[pos].value - share - (rest if k == 0 else 0)
            out = TxOut(value, outputs[pos].script_pubkey)
            if value < 0:
                raise SpendError("The transaction amount is too small to pay the fee")
            if is_dust(out, DUST_RELAY_TX_FEE):
                raise SpendError(
                    "The transaction amount is too small to send after the fee has been deducted"
                )
            outputs[pos] = out
    elif change_pos >= 0:
        value = outputs[change_pos].value - to_reduce
        out = TxOut(value, change_script)
        if value <= 0 or is_dust(out, DUST_RELAY_TX_FEE):
            del outputs[change_pos]  # dust change goes to the fee
            change_pos = -1
        else:
            outputs[change_pos] = out
    elif to_reduce > 0:
        raise SpendError("Fee needed > fee paid")
    tx = Tx(cc.version, inputs, outputs, locktime)
    fee = sum(o.value for o in spent) - sum(o.value for o in outputs)
    if fee > policy.max_tx_fee:
        raise SpendError("Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
    complete = False
    if cc.sign:
        tx, complete = _sign(wallet, tx, spent)
        if not complete:
            raise SpendError("Signing transaction failed")
    weight = tx.weight() if complete else dummy_signed(wallet, tx, spent).weight()
    if weight > MAX_STANDARD_TX_WEIGHT:
        raise SpendError("Transaction too large")
    with wallet._change():
        if change_pos >= 0 and kind is not None:
            wallet.keys.next_script(kind, True)
        if cc.lock_unspents:
            for op in outpoints:
                wallet.lock_coin(op, True)  # type: ignore[arg-type]
    return CreatedTransaction(tx, fee, change_pos, rate, tuple(spent), complete)


def _replaced_coin(wallet: Wallet, op: OutPoint) -> Coin | None:
    """An output of ours that an unconfirmed transaction spends: a replacement may spend it
    again (fee bumping preselects the original's inputs)."""
    wtx = wallet.txs.get(op.txid)
    if wtx is None or op.index >= len(wtx.tx.outputs) or wallet.depth(wtx) < 0:
        return None
    txout = wtx.tx.outputs[op.index]
    info = wallet.keys.is_mine(txout.script_pubkey)
    if info is None:
        return None
    for spender in wallet.spends.get(op, ()):
        if wallet.depth(wallet.txs[spender]) != 0:
            return None  # spent by a confirmed transaction
    return Coin(op, txout, wallet.depth(wtx), wallet.is_trusted(wtx), info, wtx)


def _outpoint_text(op: OutPoint) -> str:
    """Core's ``COutPoint::ToString``."""
    return f"COutPoint({op.txid_hex[:10]}, {op.index})"


def _output(wallet: Wallet, op: object) -> TxOut:
    assert isinstance(op, OutPoint)
    wtx = wallet.txs.get(op.txid)
    if wtx is None or op.index >= len(wtx.tx.outputs):
        raise SpendError(f"Not found pre-selected input {_outpoint_text(op)}")
    return wtx.tx.outputs[op.index]


# -- committing -----------------------------------------------------------------------------------


def commit_transaction(
    wallet: Wallet,
    tx: Tx,
    *,
    comment: str = "",
    replaces: bytes | None = None,
    broadcast: bool = True,
) -> str | None:
    """Core's ``CommitTransaction``: record ``tx`` (its inputs are spent from now on; the
    original of a replacement gets ``replaced_by``) and submit it. The mempool's reject
    reason, or None; a refused transaction stays in the wallet, inactive."""
    node = wallet.node
    with wallet._change():
        wtx = wallet._add_if_mine(tx, None, None, rescan=False)
        if wtx is None:
            raise SpendError("Error: The transaction is not ours")
        wtx.comment = comment
        if node is None or not node.in_mempool(tx.txid):
            wtx.set_unconfirmed(INACTIVE)
        wallet._save(wtx)
        if replaces is not None and replaces in wallet.txs:
            old = wallet.txs[replaces]
            old.replaced_by = tx.txid
            wallet._save(old)
    if not broadcast or node is None:
        return None
    reason = node.broadcast(tx, 0)
    if reason is None:
        with wallet._change():
            current = wallet.txs[tx.txid]
            if current.state == INACTIVE:
                current.set_unconfirmed(MEMPOOL)
                wallet._save(current)
    return reason


# -- resubmission ------------------------------------------------------------------------------


def resubmit_wallet_transactions(wallet: Wallet, *, min_age: float = 5 * 60) -> list[bytes]:
    """Core's ``ResubmitWalletTransactions``: give every unconfirmed, not abandoned
    transaction of ours received at least ``min_age`` seconds ago to the node again, oldest
    first (so parents go before children). The txids submitted."""
    node = wallet.node
    if node is None:
        return []
    now = wallet.clock()
    with wallet.lock:
        todo: list[WalletTx] = sorted(
            (
                w
                for w in wallet.txs.values()
                if wallet.depth(w) == 0
                and w.state != ABANDONED
                and not w.tx.is_coinbase()
                and wallet.is_from_me(w.tx)
                and w.time_received <= now - min_age
            ),
            key=lambda w: w.order_pos,
        )
    sent = []
    for wtx in todo:
        node.broadcast(wtx.tx, 0)
        sent.append(wtx.tx.txid)
    return sent


class Resubmitter:
    """Rebroadcasts a set of wallets' transactions every ``low``–``high`` seconds (Core: 12–36
    hours), drawn at random; ``tick`` is what a timer calls, ``start`` runs a timer thread."""

    def __init__(
        self,
        wallets: Callable[[], Sequence[Wallet]],
        *,
        low: float = 12 * 3600,
        high: float = 36 * 3600,
        poll: float = 60.0,
        min_age: float = 5 * 60,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.wallets = wallets
        self.low, self.high, self.poll, self.min_age = low, high, poll, min_age
        self.clock = clock or time.time
        self.rng = rng or random.Random()
        self.next_at = self.clock() + self.rng.uniform(low, high)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """Resubmit if the time has come; how many transactions were submitted."""
        now = self.clock()
        if now < self.next_at:
            return 0
        self.next_at = now + self.rng.uniform(self.low, self.high)
        count = 0
        for wallet in self.wallets():
            count += len(resubmit_wallet_transactions(wallet, min_age=self.min_age))
        return count

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(self.poll):
                # A closed wallet, a stopping node: try again next time.
                with contextlib.suppress(Exception):
                    self.tick()

        self._thread = threading.Thread(target=run, name="wallet-resubmit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
