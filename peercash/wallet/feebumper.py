"""Replacing one of our unconfirmed transactions with a higher fee (Core's ``wallet/feebumper``).

Layer 3 (wallet). :func:`bump_fee` checks Core's preconditions, picks the new feerate (the user's,
checked against BIP125 rules 3/4: the new fee pays the old one plus the incremental relay fee on
the replacement's size; or the larger of the old rate + the incremental fee and the estimate),
then builds the replacement with :func:`spend.create_transaction` from the same inputs and the
same non-change outputs, paying to the same change script (so change shrinks, or inputs are
added when it cannot). :func:`commit_bump` records it and marks the original ``replaced_by``.

Error contract: :class:`BumpError` (RPC -4), :class:`BumpInvalidParameter` (-8),
:class:`BumpInvalidAddress` (-5), with Core's messages.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from peercash.consensus.primitives import Tx

from .coinselection import FeeRate
from .feepolicy import WALLET_INCREMENTAL_RELAY_FEE, FeeError, btc_text, minimum_fee_rate
from .fill import fill_psbt
from .psbt.model import Psbt
from .psbt.roles import from_transaction
from .spend import (
    CoinControl,
    CreatedTransaction,
    Recipient,
    SpendError,
    commit_transaction,
    create_transaction,
    dummy_signed,
    fee_policy,
)
from .wallet import InvalidAddress, InvalidParameter, Wallet, WalletError


class BumpError(WalletError):
    """Core's RPC_WALLET_ERROR (-4) from the fee bumper."""


class BumpInvalidParameter(InvalidParameter):
    """Core's RPC_INVALID_PARAMETER (-8) from the fee bumper."""


class BumpInvalidAddress(InvalidAddress):
    """Core's RPC_INVALID_ADDRESS_OR_KEY (-5) from the fee bumper."""


@dataclass(frozen=True, slots=True)
class Bump:
    tx: Tx
    old_fee: int
    new_fee: int
    psbt: Psbt | None
    errors: tuple[str, ...] = ()


def _preconditions(wallet: Wallet, txid: bytes) -> None:
    wtx = wallet.txs.get(txid)
    if wtx is None:
        raise BumpInvalidAddress("Invalid or non-wallet transaction id")
    if any(wallet.txs.get(c) is not None for c in wallet._children(wtx.tx)):
        raise BumpInvalidParameter("Transaction has descendants in the wallet")
    if wallet.depth(wtx) != 0:
        raise BumpError("Transaction has been mined, or is conflicted with a mined transaction")
    if wtx.replaced_by is not None:
        raise BumpError(
            f"Cannot bump transaction {txid[::-1].hex()} which was already bumped by "
            f"transaction {wtx.replaced_by[::-1].hex()}"
        )
    if not any(i.sequence <= 0xFFFFFFFD for i in wtx.tx.inputs):
        raise BumpError("Transaction is not BIP 125 replaceable")
    for i in wtx.tx.inputs:
        if wallet._spent_output(i.prevout) is None:
            raise BumpError("Transaction contains inputs that don't belong to this wallet")


def bump_fee(
    wallet: Wallet,
    txid: bytes,
    *,
    fee_rate: FeeRate | None = None,
    conf_target: int | None = None,
    estimate_mode: str = "unset",
    replaceable: bool = True,
    sign: bool = True,
    rng: random.Random | None = None,
) -> Bump:
    """Core's ``CreateRateBumpTransaction``: the replacement (signed when ``sign``, else as a
    PSBT), the original fee and the new fee."""
    node = wallet.node
    if node is None:
        raise BumpError("Wallet is not attached to a chain")
    policy = fee_policy(wallet)
    with wallet.lock:
        _preconditions(wallet, txid)
        wtx = wallet.txs[txid]
        old = wtx.tx
        spent = [wallet._spent_output(i.prevout) for i in old.inputs]
        assert all(s is not None for s in spent)
        old_fee = sum(s.value for s in spent if s is not None) - sum(o.value for o in old.outputs)
        size = dummy_signed(wallet, old, [s for s in spent if s is not None]).vsize()
        incremental = FeeRate(policy.incremental_relay_fee)
        if fee_rate is not None:
            new_total = fee_rate.fee(size)
            min_total = old_fee + incremental.fee(size)
            if new_total < min_total:
                raise BumpInvalidParameter(
                    f"Insufficient total fee {btc_text(new_total)}, must be at least "
                    f"{btc_text(min_total)} (oldFee {btc_text(old_fee)} + incrementalFee "
                    f"{btc_text(incremental.fee(size))})"
                )
            rate = fee_rate
        else:
            old_rate = old_fee * 1000 // size
            bumped = old_rate + max(policy.incremental_relay_fee, WALLET_INCREMENTAL_RELAY_FEE)
            try:
                estimated = minimum_fee_rate(
                    policy,
                    fee_rate=None,
                    conf_target=conf_target,
                    estimate_mode=estimate_mode,
                    estimate=node.estimate_fee,
                ).rate.sat_per_kvb
            except FeeError:
                estimated = 0
            rate = FeeRate(max(bumped, estimated))
        if rate.fee(size) > policy.max_tx_fee:
            raise BumpError(
                f"Specified or calculated fee {btc_text(rate.fee(size))} is too high (cannot be "
                f"higher than -maxtxfee {btc_text(policy.max_tx_fee)})"
            )
        change = [n for n, o in enumerate(old.outputs) if wallet.is_change(o)]
        change_script = old.outputs[change[0]].script_pubkey if change else None
        recipients = [
            Recipient(o.script_pubkey, o.value)
            for n, o in enumerate(old.outputs)
            if not change or n != change[0]
        ]
        cc = CoinControl(
            inputs=[i.prevout for i in old.inputs],
            change_script=change_script,
            fee_rate=rate,
            replaceable=replaceable,
            locktime=old.locktime,
            version=old.version,
            sign=sign,
            include_unsafe=False,
            min_depth=1,
        )
        try:
            created = _create(wallet, recipients, cc, rng, policy.min_tx_fee)
        except SpendError as e:
            raise BumpError(f"Unable to create transaction. {e}") from None
        psbt = None
        if not sign:
            psbt, _ = fill_psbt(wallet, from_transaction(created.tx), sign=False, finalize=False)
        return Bump(created.tx, old_fee, created.fee, psbt)


def _create(
    wallet: Wallet,
    recipients: list[Recipient],
    cc: CoinControl,
    rng: random.Random | None,
    min_tx_fee: int,
) -> CreatedTransaction:
    # The replacement pays at the bumped rate; a rate below -mintxfee was refused above
    # (the estimate is never below it) or is the user's choice checked by rules 3/4.
    if cc.fee_rate is not None and cc.fee_rate.sat_per_kvb < min_tx_fee:
        cc.fee_rate = FeeRate(min_tx_fee)
    return create_transaction(wallet, recipients, cc, rng)


def commit_bump(wallet: Wallet, original: bytes, bump: Bump) -> bytes:
    """Record and broadcast the replacement; the original gets ``replaced_by``. Core's
    ``CommitTransaction`` of the bumper: the new txid."""
    with wallet.lock:
        if wallet.txs[original].replaced_by is not None:
            raise BumpError("Transaction was already replaced")
        # As Core: a replacement the mempool refuses stays in the wallet, the txid is returned.
        commit_transaction(wallet, bump.tx, replaces=original)
        return bump.tx.txid
