"""Wallet RPCs, part two: balances, coins and history (Core's ``wallet/rpc/coins.cpp``,
``transactions.cpp``), locked coins, abandoning, rescanning.

Layer 4. Every method is ``lock=False`` (see ``walletutil``); amounts are BTC ``Decimal``s.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from peercash.consensus.address import script_to_address
from peercash.consensus.primitives import OutPoint
from peercash.wallet.descriptor.scripts import SHExpr
from peercash.wallet.txrecord import ABANDONED, CONFIRMED, WalletTx
from peercash.wallet.wallet import Wallet

from .registry import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_METHOD_DEPRECATED,
    Param,
    RpcError,
    rpc_method,
)
from .util import address_to_script, amount_from_value, btc, parse_hash
from .wallet import _key_desc
from .walletutil import request_wallet, wallet_errors

CAT = "wallet"
MAX_CONF = 9_999_999


def _txid(value: str) -> bytes:
    return parse_hash(value, "txid")


def _hex(h: bytes) -> str:
    return h[::-1].hex()


# -- balances ---------------------------------------------------------------------------------


@rpc_method(
    "getbalance",
    CAT,
    [Param("dummy", str, None, help='Remains for backward compatibility. Must be "*"'),
     Param("minconf", int, 0, help="Only include transactions confirmed at least this many times"),
     Param("include_watchonly", bool, True, help="(ignored: descriptor wallets)"),
     Param("avoid_reuse", bool, True, help="(only with avoid_reuse wallets)")],
    lock=False,
)  # fmt: skip
@wallet_errors
def getbalance(
    node: Any, dummy: str | None, minconf: int, include_watchonly: bool, avoid_reuse: bool
) -> Decimal:
    """Returns the total available balance."""
    if dummy is not None and dummy != "*":
        raise RpcError(
            RPC_METHOD_DEPRECATED, 'dummy first argument must be excluded or set to "*".'
        )
    return btc(request_wallet(node).balance(minconf).trusted)


@rpc_method("getbalances", CAT, lock=False)
@wallet_errors
def getbalances(node: Any) -> dict[str, Any]:
    """Returns an object with all balances in BTC."""
    wallet = request_wallet(node)
    balance = wallet.balance()
    return {
        "mine": {
            "trusted": btc(balance.trusted),
            "untrusted_pending": btc(balance.untrusted_pending),
            "immature": btc(balance.immature),
        },
        "lastprocessedblock": _last_block(wallet),
    }


def _last_block(wallet: Wallet) -> dict[str, Any]:
    return {
        "hash": _hex(wallet.locator[0][1]) if wallet.locator else None,
        "height": wallet.last_height,
    }


# -- coins ------------------------------------------------------------------------------------


def _addresses_filter(wallet: Wallet, addresses: list[Any]) -> set[bytes] | None:
    if not addresses:
        return None
    scripts: set[bytes] = set()
    seen: set[str] = set()
    for address in addresses:
        script = address_to_script(str(address), wallet.params)
        if script is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {address}")
        if address in seen:
            raise RpcError(
                RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {address}"
            )
        seen.add(str(address))
        scripts.add(script)
    return scripts


@rpc_method(
    "listunspent",
    CAT,
    [Param("minconf", int, 1, help="The minimum confirmations to filter"),
     Param("maxconf", int, MAX_CONF, help="The maximum confirmations to filter"),
     Param("addresses", list, [], help="The bitcoin addresses to filter"),
     Param("include_unsafe", bool, True, help="Include outputs that are not safe to spend"),
     Param("query_options", dict, {}, help="minimumAmount, maximumAmount, maximumCount, "
           "minimumSumAmount")],
    lock=False,
)  # fmt: skip
@wallet_errors
def listunspent(
    node: Any,
    minconf: int,
    maxconf: int,
    addresses: list[Any],
    include_unsafe: bool,
    query_options: dict[str, Any],
) -> list[dict[str, Any]]:
    """Returns array of unspent transaction outputs."""
    wallet = request_wallet(node)
    only = _addresses_filter(wallet, addresses)
    min_amount = amount_from_value(query_options.get("minimumAmount", 0))
    max_amount = (
        amount_from_value(query_options["maximumAmount"])
        if "maximumAmount" in query_options
        else None
    )
    max_count = query_options.get("maximumCount")
    min_sum = (
        amount_from_value(query_options["minimumSumAmount"])
        if "minimumSumAmount" in query_options
        else None
    )
    out: list[dict[str, Any]] = []
    total = 0
    with wallet.lock:
        for coin in wallet.coins(minconf, maxconf, include_unsafe=include_unsafe):
            script = coin.txout.script_pubkey
            if only is not None and script not in only:
                continue
            if coin.txout.value < min_amount or (
                max_amount is not None and coin.txout.value > max_amount
            ):
                continue
            address = script_to_address(script, wallet.params)
            entry: dict[str, Any] = {"txid": coin.outpoint.txid_hex, "vout": coin.outpoint.index}
            if address is not None:
                entry["address"] = address
                label = wallet.address_book.get(address)
                if label is not None:
                    entry["label"] = label[0]
            desc = wallet.descriptor_for(coin.info)
            if isinstance(desc.expr, SHExpr):
                entry["redeemScript"] = desc.expand(coin.info.position).redeem_script.hex()  # type: ignore[union-attr]
            entry["scriptPubKey"] = script.hex()
            entry["amount"] = btc(coin.txout.value)
            entry["confirmations"] = coin.depth
            entry["spendable"] = True
            entry["solvable"] = desc.is_solvable
            single, _ = _key_desc(wallet, script)
            if single is not None:
                entry["desc"] = single
            entry["parent_descs"] = [desc.to_string()]
            entry["safe"] = coin.safe
            out.append(entry)
            total += coin.txout.value
            if max_count is not None and len(out) >= int(max_count):
                break
            if min_sum is not None and total >= min_sum:
                break
    return out


@rpc_method(
    "lockunspent",
    CAT,
    [Param("unlock", bool, help="Whether to unlock (true) or lock (false)"),
     Param("transactions", list, [], help="[{txid, vout}]"),
     Param("persistent", bool, False, help="Whether to write the lock to the wallet file")],
    lock=False,
)  # fmt: skip
@wallet_errors
def lockunspent(node: Any, unlock: bool, transactions: list[Any], persistent: bool) -> bool:
    """Updates list of temporarily unspendable outputs."""
    wallet = request_wallet(node)
    with wallet.lock:
        if unlock and not transactions:
            wallet.unlock_all()
            return True
        outpoints = []
        for item in transactions:
            if not isinstance(item, dict) or "txid" not in item or "vout" not in item:
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, expected txid and vout")
            vout = item["vout"]
            if not isinstance(vout, int) or vout < 0:
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
            outpoint = OutPoint(_txid(item["txid"]), vout)
            wtx = wallet.txs.get(outpoint.txid)
            if wtx is None:
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, unknown transaction")
            if vout >= len(wtx.tx.outputs):
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, vout index out of bounds")
            if wallet.is_spent(outpoint):
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, expected unspent output")
            locked = outpoint in wallet.locked
            if unlock and not locked:
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, expected locked output")
            if not unlock and locked:
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, output already locked")
            outpoints.append(outpoint)
        for outpoint in outpoints:
            wallet.lock_coin(outpoint, not unlock, persistent)
    return True


@rpc_method("listlockunspent", CAT, lock=False)
@wallet_errors
def listlockunspent(node: Any) -> list[dict[str, Any]]:
    """Returns list of temporarily unspendable outputs."""
    wallet = request_wallet(node)
    with wallet.lock:
        return [
            {"txid": o.txid_hex, "vout": o.index}
            for o in sorted(wallet.locked, key=lambda o: (o.txid[::-1], o.index))
        ]


# -- history ----------------------------------------------------------------------------------


def _replaceable(wallet: Wallet, wtx: WalletTx) -> str:
    if wallet.depth(wtx) != 0:
        return "no"
    return "yes" if any(i.sequence < 0xFFFFFFFE for i in wtx.tx.inputs) else "no"


def _tx_fields(wallet: Wallet, wtx: WalletTx) -> dict[str, Any]:
    """Core's ``WalletTxToJSON``."""
    depth = wallet.depth(wtx)
    out: dict[str, Any] = {"confirmations": depth}
    if wtx.tx.is_coinbase():
        out["generated"] = True
    if wtx.state == CONFIRMED:
        assert wtx.block_hash is not None
        out["blockhash"] = _hex(wtx.block_hash)
        out["blockheight"] = wtx.block_height
        out["blockindex"] = wtx.block_pos
        out["blocktime"] = wtx.block_time
    else:
        out["trusted"] = wallet.is_trusted(wtx)
    out["txid"] = wtx.tx.txid_hex
    out["wtxid"] = wtx.tx.wtxid_hex
    out["walletconflicts"] = [_hex(t) for t in wallet.conflicts(wtx)]
    out["mempoolconflicts"] = []
    if wtx.replaced_by is not None:
        out["replaced_by_txid"] = _hex(wtx.replaced_by)
    if wtx.comment:
        out["comment"] = wtx.comment
    out["time"] = wtx.time_smart
    out["timereceived"] = wtx.time_received
    out["bip125-replaceable"] = _replaceable(wallet, wtx)
    return out


def _entries(
    wallet: Wallet, wtx: WalletTx, label: str | None, long: bool, include_change: bool = False
) -> list[dict[str, Any]]:
    """Core's ``ListTransactions``: one entry per sent and per received output."""
    tx = wtx.tx
    debit = wallet.debit(tx)
    fee = debit - sum(o.value for o in tx.outputs) if debit > 0 else 0
    common = _tx_fields(wallet, wtx) if long else {}
    entries: list[dict[str, Any]] = []
    depth = wallet.depth(wtx)
    for n, out in enumerate(tx.outputs):
        mine = wallet.keys.is_mine(out.script_pubkey) is not None
        address = script_to_address(out.script_pubkey, wallet.params)
        book = wallet.address_book.get(address) if address is not None else None
        labelled = label is None or (book is not None and book[0] == label)
        if debit > 0 and not (wallet.is_change(out) and not include_change) and labelled:
            entry: dict[str, Any] = {}
            if address is not None:
                entry["address"] = address
            entry["category"] = "send"
            entry["amount"] = btc(-out.value)
            if book is not None:
                entry["label"] = book[0]
            entry["vout"] = n
            entry["fee"] = btc(-fee)
            entry.update(common)
            entry["abandoned"] = wtx.state == ABANDONED
            entries.append(entry)
        if mine and (debit == 0 or not wallet.is_change(out) or include_change):
            if label is not None and (book is None or book[0] != label):
                continue
            entry = {}
            if address is not None:
                entry["address"] = address
            if tx.is_coinbase():
                if depth < 1:
                    category = "orphan"
                elif wtx.blocks_to_maturity(wallet.last_height, wallet.params.coinbase_maturity):
                    category = "immature"
                else:
                    category = "generate"
            else:
                category = "receive"
            entry["category"] = category
            entry["amount"] = btc(out.value)
            if book is not None:
                entry["label"] = book[0]
            entry["vout"] = n
            info = wallet.keys.is_mine(out.script_pubkey)
            assert info is not None
            entry["parent_descs"] = [wallet.descriptor_for(info).to_string()]
            if wtx.state == ABANDONED:
                entry["abandoned"] = True
            entry.update(common)
            entries.append(entry)
    return entries


@rpc_method(
    "listtransactions",
    CAT,
    [Param("label", str, None, help='If set, only transactions with this label ("*": all)'),
     Param("count", int, 10, help="The number of transactions to return"),
     Param("skip", int, 0, help="The number of transactions to skip"),
     Param("include_watchonly", bool, True, help="(ignored: descriptor wallets)")],
    lock=False,
)  # fmt: skip
@wallet_errors
def listtransactions(
    node: Any, label: str | None, count: int, skip: int, include_watchonly: bool
) -> list[dict[str, Any]]:
    """Returns up to 'count' most recent transactions skipping the first 'from' transactions."""
    if count < 0:
        raise RpcError(RPC_INVALID_PARAMETER, "Negative count")
    if skip < 0:
        raise RpcError(RPC_INVALID_PARAMETER, "Negative from")
    wallet = request_wallet(node)
    only = None if label in (None, "*") else label
    with wallet.lock:
        entries: list[dict[str, Any]] = []
        for wtx in sorted(wallet.txs.values(), key=lambda w: w.order_pos, reverse=True):
            for entry in reversed(_entries(wallet, wtx, only, True)):
                entries.append(entry)
            if len(entries) >= count + skip:
                break
    return list(reversed(entries[skip : skip + count]))


@rpc_method(
    "listsinceblock",
    CAT,
    [Param("blockhash", str, None, help="List transactions since this block"),
     Param("target_confirmations", int, 1, help="Which block 'lastblock' names"),
     Param("include_watchonly", bool, True, help="(ignored)"),
     Param("include_removed", bool, True, help="(removed is always empty here)"),
     Param("include_change", bool, False, help="Also list change outputs"),
     Param("label", str, None, help="Only transactions with this label")],
    lock=False,
)  # fmt: skip
@wallet_errors
def listsinceblock(
    node: Any,
    blockhash: str | None,
    target_confirmations: int,
    include_watchonly: bool,
    include_removed: bool,
    include_change: bool,
    label: str | None,
) -> dict[str, Any]:
    """Get all transactions in blocks since block [blockhash], or all transactions if omitted."""
    wallet = request_wallet(node)
    if target_confirmations < 1:
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter")
    client = wallet.node
    with wallet.lock:
        depth_limit = -1
        if blockhash is not None:
            wanted = _txid(blockhash)
            height = next(
                (h for h in range(wallet.last_height, -1, -1)
                 if client is not None and client.block_hash(h) == wanted),
                None,
            )  # fmt: skip
            if height is None:
                raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            depth_limit = wallet.last_height + 1 - height
        txs = []
        for wtx in sorted(wallet.txs.values(), key=lambda w: w.order_pos):
            depth = wallet.depth(wtx)
            if depth_limit == -1 or abs(depth) < depth_limit:
                txs.extend(_entries(wallet, wtx, label, True, include_change))
        last_height = wallet.last_height + 1 - target_confirmations
        last = client.block_hash(max(last_height, 0)) if client is not None else None
    result: dict[str, Any] = {"transactions": txs}
    if include_removed:
        result["removed"] = []
    result["lastblock"] = _hex(last) if last is not None else None
    return result


@rpc_method(
    "gettransaction",
    CAT,
    [Param("txid", str, help="The transaction id"),
     Param("include_watchonly", bool, True, help="(ignored)"),
     Param("verbose", bool, False, help="Whether to include a `decoded` field")],
    lock=False,
)  # fmt: skip
@wallet_errors
def gettransaction(node: Any, txid: str, include_watchonly: bool, verbose: bool) -> dict[str, Any]:
    """Get detailed information about in-wallet transaction <txid>."""
    wallet = request_wallet(node)
    key = _txid(txid)
    with wallet.lock:
        wtx = wallet.txs.get(key)
        if wtx is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid or non-wallet transaction id")
        credit = wallet.credit(wtx.tx)
        debit = wallet.debit(wtx.tx)
        fee = sum(o.value for o in wtx.tx.outputs) - debit if debit > 0 else 0
        result: dict[str, Any] = {"amount": btc(credit - debit - fee)}
        if debit > 0:
            result["fee"] = btc(fee)
        result.update(_tx_fields(wallet, wtx))
        result["details"] = _entries(wallet, wtx, None, False)
        result["hex"] = wtx.tx.serialize().hex()
        if verbose:
            from .rawtransactions import tx_to_json

            result["decoded"] = tx_to_json(wtx.tx, wallet.params, include_hex=False)
    return result


@rpc_method("abandontransaction", CAT, [Param("txid", str, help="The transaction id")], lock=False)
@wallet_errors
def abandontransaction(node: Any, txid: str) -> None:
    """Mark in-wallet transaction <txid> as abandoned."""
    request_wallet(node).abandon(_txid(txid))
    return None


@rpc_method(
    "rescanblockchain",
    CAT,
    [Param("start_height", int, 0, help="block height where the rescan should start"),
     Param("stop_height", int, None, help="the last block height that should be scanned")],
    lock=False,
)  # fmt: skip
@wallet_errors
def rescanblockchain(node: Any, start_height: int, stop_height: int | None) -> dict[str, int]:
    """Rescan the local blockchain for wallet related transactions."""
    start, stop = request_wallet(node).rescan(start_height, stop_height)
    return {"start_height": start, "stop_height": stop}
