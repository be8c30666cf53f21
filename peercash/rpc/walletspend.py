"""Wallet RPCs, part three: paying and fee bumping (Core's ``wallet/rpc/spend.cpp``):
``sendtoaddress``, ``sendmany``, ``send``, ``sendall``, ``fundrawtransaction``,
``walletcreatefundedpsbt``, ``bumpfee``, ``psbtbumpfee``, ``settxfee``.

Layer 4. Every method is ``lock=False`` (see ``walletutil``). Fee rates given as ``fee_rate`` are
sat/vB; ``settxfee`` takes BTC/kvB, as in Core. Errors: the wallet's ``SpendError`` is -4,
``FundsError`` -6 (``Insufficient funds``), argument errors -8 / -3 / -5 with Core's messages.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.wallet.coinselection import FeeRate
from peercash.wallet.feebumper import Bump, bump_fee, commit_bump
from peercash.wallet.feepolicy import ESTIMATE_MODES, minimum_fee_rate
from peercash.wallet.fill import fill_psbt
from peercash.wallet.psbt.roles import extract, from_transaction
from peercash.wallet.spend import (
    SEQUENCE_NONFINAL,
    SEQUENCE_RBF,
    CoinControl,
    CreatedTransaction,
    Recipient,
    SpendError,
    anti_fee_sniping_locktime,
    commit_transaction,
    create_transaction,
    dummy_signed,
    fee_policy,
    is_current,
)
from peercash.wallet.wallet import Wallet

from .rawtransactions import _parse_inputs, decode_hex_tx, parse_outputs
from .registry import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import address_to_script, amount_from_value, btc, parse_hash
from .walletutil import request_wallet, wallet_errors

CAT = "wallet"
_POOL_TOO_LOW = (
    "Total value of UTXO pool too low to pay for transaction. Try using lower feerate or "
    "excluding uneconomic UTXOs with 'send_max' option."
)
RPC_WALLET_INSUFFICIENT_FUNDS = -6
MAX_CONFIRM_TARGET = 1008


def _funds(func: Callable[..., Any]) -> Callable[..., Any]:
    """Core's ``SendMoney``: any failure to create the transaction is -6
    (RPC_WALLET_INSUFFICIENT_FUNDS); elsewhere (``FundTransaction``) it is -4."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpendError as e:
            raise RpcError(RPC_WALLET_INSUFFICIENT_FUNDS, str(e)) from None

    wrapped.__name__ = func.__name__
    wrapped.__doc__ = func.__doc__
    return wrapped


# -- argument helpers --------------------------------------------------------------------------


def _fee_rate(value: Any) -> FeeRate:
    """A sat/vB amount with up to 3 decimals (Core's ``AmountFromValue(v, 3)``) as sat/kvB."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise RpcError(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        milli = Decimal(repr(value) if isinstance(value, float) else str(value)).scaleb(3)
    except ArithmeticError:
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount") from None
    if milli != milli.to_integral_value() or milli < 0:
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount")
    return FeeRate(int(milli))


def set_fee_estimate_mode(
    cc: CoinControl, conf_target: Any, estimate_mode: Any, fee_rate: Any, override_min: bool
) -> None:
    """Core's ``SetFeeEstimateMode``."""
    if fee_rate is not None:
        if conf_target is not None:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                "Cannot specify both conf_target and fee_rate. Please provide either a "
                "confirmation target in blocks for automatic fee estimation, or an explicit "
                "fee rate.",
            )
        if estimate_mode is not None and estimate_mode != "unset":
            raise RpcError(RPC_INVALID_PARAMETER, "Cannot specify both estimate_mode and fee_rate")
        cc.fee_rate = _fee_rate(fee_rate)
        return
    if estimate_mode is not None:
        if not isinstance(estimate_mode, str) or estimate_mode.lower() not in ESTIMATE_MODES:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                'Invalid estimate_mode parameter, must be one of: "unset", "economical", '
                '"conservative"',
            )
        cc.estimate_mode = estimate_mode.lower()
    if conf_target is not None:
        if isinstance(conf_target, bool) or not isinstance(conf_target, int):
            raise RpcError(RPC_TYPE_ERROR, "conf_target must be a number")
        if not 1 <= conf_target <= MAX_CONFIRM_TARGET:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                f"Invalid conf_target, must be between 1 and {MAX_CONFIRM_TARGET}",
            )
        cc.conf_target = conf_target


def _recipients(
    wallet: Wallet, amounts: list[tuple[str, Any]], subtract: set[str]
) -> list[Recipient]:
    """Core's ``ParseRecipients``."""
    result = []
    seen: set[str] = set()
    for address, value in amounts:
        script = address_to_script(address, wallet.params)
        if script is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {address}")
        if address in seen:
            raise RpcError(
                RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {address}"
            )
        seen.add(address)
        amount = amount_from_value(value)
        if amount <= 0:
            raise RpcError(RPC_TYPE_ERROR, "Invalid amount for send")
        result.append(Recipient(script, amount, address in subtract))
    return result


def _send(
    wallet: Wallet, recipients: list[Recipient], cc: CoinControl, comment: str, verbose: bool
) -> Any:
    """Core's ``SendMoney``: create, sign, commit; the txid (verbose: with the fee reason)."""
    with wallet.lock:  # as Core's cs_wallet: no other spend between creating and committing
        created = create_transaction(wallet, recipients, cc)
        commit_transaction(wallet, created.tx, comment=comment)
    txid = created.tx.txid_hex
    if verbose:
        return {"txid": txid, "fee_reason": created.fee_reason}
    return txid


# -- sendtoaddress / sendmany -------------------------------------------------------------------


@rpc_method(
    "sendtoaddress",
    CAT,
    [Param("address", str, help="The bitcoin address to send to"),
     Param("amount", object, help="The amount in BTC to send"),
     Param("comment", str, "", help="A comment stored in the wallet"),
     Param("comment_to", str, "", help="Who the payment is to (stored in the wallet)"),
     Param("subtractfeefromamount", bool, False, help="The fee is deducted from the amount"),
     Param("replaceable", bool, None, help="Signal BIP125 replaceability (default: true)"),
     Param("conf_target", object, None, help="Confirmation target in blocks"),
     Param("estimate_mode", str, None, help="unset, economical or conservative"),
     Param("avoid_reuse", bool, True, help="(only with avoid_reuse wallets)"),
     Param("fee_rate", object, None, help="Fee rate in sat/vB"),
     Param("verbose", bool, False, help="Also return the fee reason")],
    lock=False,
)  # fmt: skip
@wallet_errors
@_funds
def sendtoaddress(
    node: Any,
    address: str,
    amount: Any,
    comment: str,
    comment_to: str,
    subtractfeefromamount: bool,
    replaceable: bool | None,
    conf_target: Any,
    estimate_mode: str | None,
    avoid_reuse: bool,
    fee_rate: Any,
    verbose: bool,
) -> Any:
    """Send an amount to a given address."""
    wallet = request_wallet(node)
    cc = CoinControl(replaceable=replaceable)
    set_fee_estimate_mode(cc, conf_target, estimate_mode, fee_rate, False)
    subtract = {address} if subtractfeefromamount else set()
    recipients = _recipients(wallet, [(address, amount)], subtract)
    return _send(wallet, recipients, cc, comment, verbose)


@rpc_method(
    "sendmany",
    CAT,
    [Param("dummy", str, "", help='Must be set to "" for backwards compatibility'),
     Param("amounts", dict, help="{address: amount, ...}"),
     Param("minconf", int, None, help="Ignored dummy value"),
     Param("comment", str, "", help="A comment"),
     Param("subtractfeefrom", list, [], help="Addresses that pay the fee equally"),
     Param("replaceable", bool, None, help="Signal BIP125 replaceability (default: true)"),
     Param("conf_target", object, None, help="Confirmation target in blocks"),
     Param("estimate_mode", str, None, help="unset, economical or conservative"),
     Param("fee_rate", object, None, help="Fee rate in sat/vB"),
     Param("verbose", bool, False, help="Also return the fee reason")],
    lock=False,
)  # fmt: skip
@wallet_errors
@_funds
def sendmany(
    node: Any,
    dummy: str,
    amounts: dict[str, Any],
    minconf: int | None,
    comment: str,
    subtractfeefrom: list[Any],
    replaceable: bool | None,
    conf_target: Any,
    estimate_mode: str | None,
    fee_rate: Any,
    verbose: bool,
) -> Any:
    """Send multiple times. Amounts are double-precision floating point numbers."""
    wallet = request_wallet(node)
    if dummy != "":
        raise RpcError(RPC_INVALID_PARAMETER, 'Dummy value must be set to ""')
    cc = CoinControl(replaceable=replaceable)
    set_fee_estimate_mode(cc, conf_target, estimate_mode, fee_rate, False)
    subtract = {str(a) for a in subtractfeefrom}
    for a in subtract:
        if a not in amounts:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                f"Invalid parameter 'subtract fee from output', destination {a} not found in "
                "tx outputs",
            )
    recipients = _recipients(wallet, list(amounts.items()), subtract)
    return _send(wallet, recipients, cc, comment, verbose)


# -- funding ---------------------------------------------------------------------------------------

_FUND_OPTIONS = {
    "add_inputs", "include_unsafe", "add_to_wallet", "change_address", "changeAddress",
    "change_position", "changePosition", "change_type", "fee_rate", "feeRate",
    "include_watching", "includeWatching", "inputs", "locktime", "lock_unspents",
    "lockUnspents", "psbt", "subtract_fee_from_outputs", "subtractFeeFromOutputs",
    "replaceable", "solving_data", "conf_target", "estimate_mode", "minconf", "maxconf",
    "input_weights", "max_tx_weight", "send_max",
}  # fmt: skip


def _option(options: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in options:
            return options[name]
    return None


def fund_options(wallet: Wallet, options: dict[str, Any], cc: CoinControl) -> list[int]:
    """Core's ``FundTransaction`` option parsing into ``cc``; the subtract-fee output indexes."""
    unknown = set(options) - _FUND_OPTIONS
    if unknown:
        raise RpcError(
            RPC_INVALID_PARAMETER, f"Invalid parameter, unknown key: {sorted(unknown)[0]}"
        )
    if "add_inputs" in options:
        cc.add_inputs = bool(options["add_inputs"])
    if "include_unsafe" in options:
        cc.include_unsafe = bool(options["include_unsafe"])
    change = _option(options, "change_address", "changeAddress")
    if change is not None:
        script = address_to_script(str(change), wallet.params)
        if script is None:
            raise RpcError(
                RPC_INVALID_ADDRESS_OR_KEY, "Change address must be a valid bitcoin address"
            )
        cc.change_script = script
    pos = _option(options, "change_position", "changePosition")
    if pos is not None:
        cc.change_position = int(pos)
    if "change_type" in options:
        if change is not None:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                "Cannot specify both change address and address type options",
            )
        kind = str(options["change_type"])
        if kind not in ("legacy", "p2sh-segwit", "bech32", "bech32m"):
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Unknown change type '{kind}'")
        cc.change_type = kind
    if _option(options, "lock_unspents", "lockUnspents"):
        cc.lock_unspents = True
    if "replaceable" in options:
        cc.replaceable = bool(options["replaceable"])
    if "minconf" in options:
        cc.min_depth = int(options["minconf"])
    if "maxconf" in options:
        cc.max_depth = int(options["maxconf"])
    set_fee_estimate_mode(
        cc,
        options.get("conf_target"),
        options.get("estimate_mode"),
        _option(options, "fee_rate"),
        False,
    )
    if "feeRate" in options:
        if cc.fee_rate is not None:
            raise RpcError(
                RPC_INVALID_PARAMETER, "Cannot specify both fee_rate (sat/vB) and feeRate (BTC/kvB)"
            )
        cc.fee_rate = FeeRate(amount_from_value(options["feeRate"]))
    sffo = _option(options, "subtract_fee_from_outputs", "subtractFeeFromOutputs") or []
    return [int(n) for n in sffo]


def fund_transaction(
    wallet: Wallet, tx: Tx, options: dict[str, Any], cc: CoinControl | None = None
) -> CreatedTransaction:
    """Core's ``FundTransaction``: ``tx``'s inputs preselected, its outputs as recipients."""
    cc = cc or CoinControl()
    sffo = fund_options(wallet, options, cc)
    for n in sffo:
        if not 0 <= n < len(tx.outputs):
            raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, value out of range")
    if len(set(sffo)) != len(sffo):
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, duplicated position")
    cc.inputs = [i.prevout for i in tx.inputs]
    cc.sequences = {i.prevout: i.sequence for i in tx.inputs}
    cc.version = tx.version
    if tx.locktime:
        cc.locktime = tx.locktime
    if cc.change_position is not None and not 0 <= cc.change_position <= len(tx.outputs):
        raise RpcError(RPC_INVALID_PARAMETER, "changePosition out of bounds")
    recipients = [Recipient(o.script_pubkey, o.value, n in sffo) for n, o in enumerate(tx.outputs)]
    cc.sign = False
    return create_transaction(wallet, recipients, cc)


def _fund_result(created: CreatedTransaction) -> dict[str, Any]:
    return {"fee": btc(created.fee), "changepos": created.change_pos}


@rpc_method(
    "fundrawtransaction",
    CAT,
    [Param("hexstring", str, help="The hex string of the raw transaction"),
     Param("options", object, None, help="Funding options (or add_inputs... see help)"),
     Param("iswitness", bool, None, help="Whether the transaction hex is serialized witness")],
    lock=False,
)  # fmt: skip
@wallet_errors
def fundrawtransaction(node: Any, hexstring: str, options: Any, iswitness: bool | None) -> Any:
    """Add inputs to a transaction until it has enough in value to meet its out value."""
    wallet = request_wallet(node)
    tx = decode_hex_tx(hexstring, iswitness is not True, iswitness is not False)
    if tx is None:
        raise RpcError(RPC_DESERIALIZATION_ERROR, "TX decode failed")
    if isinstance(options, bool):
        options = {"include_watching": options}
    created = fund_transaction(wallet, tx, dict(options or {}))
    return {"hex": created.tx.serialize().hex(), **_fund_result(created)}


@rpc_method(
    "walletcreatefundedpsbt",
    CAT,
    [Param("inputs", list, [], help="Leave empty to add inputs automatically"),
     Param("outputs", object, help="[{address: amount}, {data: hex}, ...]"),
     Param("locktime", int, 0, help="Raw locktime"),
     Param("options", dict, {}, help="Funding options"),
     Param("bip32derivs", bool, True, help="Include BIP 32 derivation paths"),
     Param("version", int, 2, help="Transaction version")],
    lock=False,
)  # fmt: skip
@wallet_errors
def walletcreatefundedpsbt(
    node: Any,
    inputs: list[Any],
    outputs: Any,
    locktime: int,
    options: dict[str, Any],
    bip32derivs: bool,
    version: int,
) -> dict[str, Any]:
    """Creates and funds a transaction in the Partially Signed Transaction format."""
    wallet = request_wallet(node)
    replaceable = options.get("replaceable")
    tx_inputs = _parse_inputs(inputs, locktime, replaceable)
    tx = Tx(version, tx_inputs, parse_outputs(outputs, wallet.params), locktime)
    cc = CoinControl(add_inputs=not inputs)
    created = fund_transaction(wallet, tx, dict(options), cc)
    psbt, _ = fill_psbt(
        wallet, from_transaction(created.tx), sign=False, bip32derivs=bip32derivs, finalize=False
    )
    return {"psbt": psbt.to_base64(), **_fund_result(created)}


# -- send / sendall ----------------------------------------------------------------------------


def _finish(wallet: Wallet, created: CreatedTransaction, options: dict[str, Any]) -> dict[str, Any]:
    """Core's ``FinishTransaction``: sign; a PSBT when asked, incomplete or not added; the
    txid when complete, and the hex unless it was added to the wallet (and broadcast)."""
    psbt, complete = fill_psbt(wallet, from_transaction(created.tx), sign=True, finalize=True)
    tx = extract(psbt) if complete else created.tx
    result: dict[str, Any] = {}
    want_psbt = bool(options.get("psbt"))
    add = bool(options.get("add_to_wallet", True))
    if want_psbt or not complete or not add:
        result["psbt"] = psbt.to_base64()
    if complete:
        result["txid"] = tx.txid_hex
        if add and not want_psbt:
            commit_transaction(wallet, tx)
        else:
            result["hex"] = tx.serialize().hex()
    result["complete"] = complete
    return result


def _fee_arguments_into(
    options: dict[str, Any], conf_target: Any, estimate_mode: Any, fee_rate: Any
) -> dict[str, Any]:
    """``send`` and ``sendall`` take the fee either as arguments or in ``options``, never both
    (Core's ``InterpretFeeEstimationInstructions``): the options with the arguments in them."""
    options = dict(options)
    for name, value in (("conf_target", conf_target), ("estimate_mode", estimate_mode),
                        ("fee_rate", fee_rate)):  # fmt: skip
        if value is not None:
            if name in options:
                raise RpcError(
                    RPC_INVALID_PARAMETER,
                    f"Pass the {name} either as an argument, or in the options object, but "
                    "not both",
                )
            options[name] = value
    return options


@rpc_method(
    "send",
    CAT,
    [Param("outputs", object, help="[{address: amount}, {data: hex}, ...]"),
     Param("conf_target", object, None, help="Confirmation target in blocks"),
     Param("estimate_mode", str, None, help="unset, economical or conservative"),
     Param("fee_rate", object, None, help="Fee rate in sat/vB"),
     Param("options", dict, {}, help="Options")],
    lock=False,
)  # fmt: skip
@wallet_errors
def send(
    node: Any,
    outputs: Any,
    conf_target: Any,
    estimate_mode: str | None,
    fee_rate: Any,
    options: dict[str, Any],
) -> dict[str, Any]:
    """EXPERIMENTAL: send a transaction."""
    wallet = request_wallet(node)
    options = _fee_arguments_into(options, conf_target, estimate_mode, fee_rate)
    inputs = options.pop("inputs", [])
    locktime = int(options.pop("locktime", 0))
    fund = {k: v for k, v in options.items() if k not in ("add_to_wallet", "psbt")}
    tx = Tx(2, _parse_inputs(inputs, locktime, options.get("replaceable")),
            parse_outputs(outputs, wallet.params), locktime)  # fmt: skip
    cc = CoinControl(add_inputs=bool(options.get("add_inputs", not inputs)))
    fund.pop("add_inputs", None)
    with wallet.lock:
        created = fund_transaction(wallet, tx, fund, cc)
        return _finish(wallet, created, options)


@rpc_method(
    "sendall",
    CAT,
    [Param("recipients", list, help="Addresses (the rest, split equally) or {address: amount}"),
     Param("conf_target", object, None, help="Confirmation target in blocks"),
     Param("estimate_mode", str, None, help="unset, economical or conservative"),
     Param("fee_rate", object, None, help="Fee rate in sat/vB"),
     Param("options", dict, {}, help="Options")],
    lock=False,
)  # fmt: skip
@wallet_errors
def sendall(
    node: Any,
    recipients: list[Any],
    conf_target: Any,
    estimate_mode: str | None,
    fee_rate: Any,
    options: dict[str, Any],
) -> dict[str, Any]:
    """EXPERIMENTAL: spend the specified coins (or all) to the recipients, with no change."""
    wallet = request_wallet(node)
    if not recipients:
        raise RpcError(RPC_INVALID_PARAMETER, "Must provide at least one recipient.")
    options = _fee_arguments_into(options, conf_target, estimate_mode, fee_rate)
    cc = CoinControl(replaceable=options.get("replaceable"))
    set_fee_estimate_mode(
        cc, options.get("conf_target"), options.get("estimate_mode"), options.get("fee_rate"), False
    )
    assert wallet.node is not None
    rate = minimum_fee_rate(
        fee_policy(wallet),
        fee_rate=cc.fee_rate,
        conf_target=cc.conf_target,
        estimate_mode=cc.estimate_mode,
        estimate=wallet.node.estimate_fee,
    ).rate
    fixed: list[TxOut] = []
    rest: list[bytes] = []
    for item in recipients:
        if isinstance(item, str):
            script = address_to_script(item, wallet.params)
            if script is None:
                raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {item}")
            rest.append(script)
        else:
            fixed.extend(parse_outputs([item], wallet.params))
    if not rest:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "Must provide at least one address without a specified amount",
        )
    with wallet.lock:
        if options.get("inputs"):
            coins = [OutPoint(parse_hash(i.get("txid"), "txid"), int(i.get("vout", -1)))
                     for i in options["inputs"]]  # fmt: skip
        else:
            coins = [c.outpoint for c in wallet.coins(1, include_unsafe=False)]
        if not coins:
            raise RpcError(RPC_WALLET_INSUFFICIENT_FUNDS, _POOL_TOO_LOW)
        spent = []
        for op in coins:
            wtx = wallet.txs.get(op.txid)
            if wtx is None or op.index >= len(wtx.tx.outputs) or wallet.is_spent(op):
                raise RpcError(
                    RPC_INVALID_PARAMETER,
                    f"Input not available. UTXO ({op.txid_hex}:{op.index}) was already spent.",
                )
            spent.append(wtx.tx.outputs[op.index])
        seq = SEQUENCE_RBF if (cc.replaceable is None or cc.replaceable) else SEQUENCE_NONFINAL
        height, _ = wallet.node.tip()
        locktime = anti_fee_sniping_locktime(height, is_current(wallet), random.Random())
        outs = fixed + [TxOut(0, s) for s in rest]
        draft = Tx(2, [TxIn(op, b"", seq) for op in coins], outs, locktime)
        fee = rate.fee(dummy_signed(wallet, draft, spent).vsize())
        left = sum(o.value for o in spent) - sum(o.value for o in fixed) - fee
        if left <= 0:
            raise RpcError(RPC_WALLET_INSUFFICIENT_FUNDS, _POOL_TOO_LOW)
        share, extra = divmod(left, len(rest))
        outs = fixed + [TxOut(share + (extra if k == 0 else 0), s) for k, s in enumerate(rest)]
        tx = Tx(2, draft.inputs, outs, locktime)
        created = CreatedTransaction(tx, fee, -1, rate, tuple(spent), False)
        return _finish(wallet, created, options)


# -- fee bumping ------------------------------------------------------------------------------


def _bump(node: Any, txid: str, options: dict[str, Any], sign: bool) -> tuple[Wallet, bytes, Bump]:
    wallet = request_wallet(node)
    known = {"confTarget", "conf_target", "fee_rate", "replaceable", "estimate_mode", "outputs",
             "original_change_index"}  # fmt: skip
    unknown = set(options) - known
    if unknown:
        raise RpcError(
            RPC_INVALID_PARAMETER, f"Invalid parameter, unknown key: {sorted(unknown)[0]}"
        )
    cc = CoinControl()
    set_fee_estimate_mode(
        cc,
        _option(options, "conf_target", "confTarget"),
        options.get("estimate_mode"),
        options.get("fee_rate"),
        True,
    )
    h = parse_hash(txid, "txid")
    bump = bump_fee(
        wallet,
        h,
        fee_rate=cc.fee_rate,
        conf_target=cc.conf_target,
        estimate_mode=cc.estimate_mode,
        replaceable=bool(options.get("replaceable", True)),
        sign=sign,
    )
    return wallet, h, bump


@rpc_method(
    "bumpfee",
    CAT,
    [Param("txid", str, help="The txid to be bumped"),
     Param("options", dict, {}, help="conf_target, fee_rate, replaceable, estimate_mode")],
    lock=False,
)  # fmt: skip
@wallet_errors
def bumpfee(node: Any, txid: str, options: dict[str, Any]) -> dict[str, Any]:
    """Bumps the fee of a transaction T, replacing it with a new transaction B."""
    wallet, h, bump = _bump(node, txid, options, True)
    new_txid = commit_bump(wallet, h, bump)
    return {
        "txid": new_txid[::-1].hex(),
        "origfee": btc(bump.old_fee),
        "fee": btc(bump.new_fee),
        "errors": list(bump.errors),
    }


@rpc_method(
    "psbtbumpfee",
    CAT,
    [Param("txid", str, help="The txid to be bumped"),
     Param("options", dict, {}, help="conf_target, fee_rate, replaceable, estimate_mode")],
    lock=False,
)  # fmt: skip
@wallet_errors
def psbtbumpfee(node: Any, txid: str, options: dict[str, Any]) -> dict[str, Any]:
    """Bumps the fee of a transaction T, returning the replacement as an unsigned PSBT."""
    _, _, bump = _bump(node, txid, options, False)
    assert bump.psbt is not None
    return {
        "psbt": bump.psbt.to_base64(),
        "origfee": btc(bump.old_fee),
        "fee": btc(bump.new_fee),
        "errors": list(bump.errors),
    }


@rpc_method(
    "settxfee",
    CAT,
    [Param("amount", object, help="The transaction fee rate in BTC/kvB")],
    lock=False,
)  # fmt: skip
@wallet_errors
def settxfee(node: Any, amount: Any) -> bool:
    """(DEPRECATED) Set the transaction fee rate in BTC/kvB for this wallet."""
    wallet = request_wallet(node)
    rate = amount_from_value(amount)
    policy = fee_policy(wallet)
    relay = max(policy.min_relay_fee, 0)
    if rate != 0 and rate < relay:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"txfee cannot be less than min relay tx fee ({btc(relay)} BTC/kvB)",
        )
    if rate != 0 and rate < policy.min_tx_fee:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"txfee cannot be less than wallet min fee ({btc(policy.min_tx_fee)} BTC/kvB)",
        )
    if rate > policy.max_tx_fee:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"txfee cannot be more than wallet max tx fee ({btc(policy.max_tx_fee)} BTC)",
        )
    wallet.fee_policy = dataclasses.replace(policy, pay_tx_fee=rate)
    return True
