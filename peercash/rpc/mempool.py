"""Mempool RPCs, with Bitcoin Core 31's names, parameters, results and errors:
sendrawtransaction, testmempoolaccept, submitpackage, getmempoolinfo, getrawmempool,
getmempoolentry, getmempoolancestors, getmempooldescendants, getmempoolcluster,
gettxspendingprevout,
prioritisetransaction, getprioritisedtransactions, savemempool; and the JSON builders the REST
``/rest/mempool/…`` endpoints share with them.

Layer 4. The pool is ``node.mempool`` (a :class:`peercash.mempool.pool.MemPool`, set by
``node.py``); without one every method answers Core's -33 "Mempool disabled or instance not
found". Errors are ``RpcError`` with Core's codes: -22 for a transaction that does not decode,
-25 (``RPC_VERIFY_ERROR``) for missing inputs, a fee above ``maxfeerate`` and a burn above
``maxburnamount``, -26 (``RPC_VERIFY_REJECTED``) with the pool's reject reason and details for
every other refusal, -27 when the transaction's outputs are already in the UTXO set.

Concurrency: every method runs with the chain lock held (the registry's default for these
categories), which is also what guards the pool. Amounts are ``Decimal`` BTC, fee rates BTC/kvB;
``fee_delta`` and ``getprioritisedtransactions`` stay in satoshis, as in Core.
"""

from __future__ import annotations

import weakref
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from peercash.consensus.primitives import OutPoint, Tx
from peercash.consensus.script.script import MAX_SCRIPT_SIZE
from peercash.mempool import policy
from peercash.mempool.pool import AcceptResult, MemPool, MempoolEntry, Removal, TxResult

from .context import ChainNode
from .rawtransactions import decode_hex_tx
from .registry import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RPC_VERIFY_ALREADY_IN_CHAIN,
    RPC_VERIFY_ERROR,
    RPC_VERIFY_REJECTED,
    Param,
    RpcError,
    rpc_method,
)
from .util import COIN, amount_from_value, btc, has_valid_ops, hash_hex, json_type, parse_hash

RPC_CLIENT_MEMPOOL_DISABLED = -33
MEMPOOL_FILE_NAME = "mempool.dat"
"""The pool's file in the network's data directory (``-persistmempool``, ``savemempool``)."""
DEFAULT_MAX_RAW_TX_FEE_RATE = Decimal("0.10")
"""Core's ``DEFAULT_MAX_RAW_TX_FEE_RATE`` (BTC/kvB): the ``maxfeerate`` default."""
DEFAULT_MAX_BURN_AMOUNT = Decimal(0)
MAX_PACKAGE_COUNT = 25
MAX_BIP125_RBF_SEQUENCE = 0xFFFFFFFD
OP_RETURN = 0x6A

_MAX_FEE_EXCEEDED = "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)"
_MAX_BURN_EXCEEDED = "Unspendable output exceeds maximum configured by user (maxburnamount)"
_TOPOLOGY = "package topology disallowed. not child-with-parents or parents depend on each other."


# -- the pool and its sequence number ------------------------------------------------------------


def ensure_mempool(node: ChainNode) -> MemPool:
    """Core's ``EnsureMemPool``."""
    pool = getattr(node, "mempool", None)
    if not isinstance(pool, MemPool):
        raise RpcError(RPC_CLIENT_MEMPOOL_DISABLED, "Mempool disabled or instance not found")
    return pool


_SEQUENCES: weakref.WeakKeyDictionary[MemPool, list[int]] = weakref.WeakKeyDictionary()


def track_sequence(pool: MemPool) -> None:
    """Count every addition and removal, as Core's mempool sequence number does (the
    ``mempool_sequence`` of getrawmempool). ``node.py`` calls it once, when it builds the pool."""
    if pool in _SEQUENCES:
        return
    counter = [0]
    _SEQUENCES[pool] = counter

    def added(_entry: MempoolEntry) -> None:
        counter[0] += 1

    def removed(_tx: Tx, _reason: Removal) -> None:
        counter[0] += 1

    pool.on_added.append(added)
    pool.on_removed.append(removed)


def mempool_sequence(pool: MemPool) -> int:
    counter = _SEQUENCES.get(pool)
    return counter[0] if counter is not None else 0


# -- JSON builders ---------------------------------------------------------------------------------


def _signals_rbf(tx: Tx) -> bool:
    return any(i.sequence <= MAX_BIP125_RBF_SEQUENCE for i in tx.inputs)


def _bip125_replaceable(pool: MemPool, txid: bytes) -> bool:
    """Core's ``IsRBFOptIn``: the transaction or one of its pool ancestors signals BIP125."""
    e = pool.entries[txid]
    if _signals_rbf(e.tx):
        return True
    return any(_signals_rbf(pool.entries[a].tx) for a in pool.ancestors(txid))


def entry_to_json(pool: MemPool, txid: bytes) -> dict[str, Any]:
    """Core's ``entryToJSON`` (getmempoolentry, verbose getrawmempool and friends)."""
    info = pool.entry_info(txid)
    fees = info["fees"]
    assert isinstance(fees, dict)
    return {
        "vsize": info["vsize"],
        "weight": info["weight"],
        "time": info["time"],
        "height": info["height"],
        "descendantcount": info["descendantcount"],
        "descendantsize": info["descendantsize"],
        "ancestorcount": info["ancestorcount"],
        "ancestorsize": info["ancestorsize"],
        "chunkweight": info["chunkweight"],
        "wtxid": info["wtxid"],
        "fees": {k: btc(fees[k]) for k in ("base", "modified", "ancestor", "descendant", "chunk")},
        "depends": info["depends"],
        "spentby": info["spentby"],
        "bip125-replaceable": _bip125_replaceable(pool, txid),
        "unbroadcast": info["unbroadcast"],
    }


def mempool_info_json(pool: MemPool) -> dict[str, Any]:
    """Core's ``MempoolInfoToJSON`` (getmempoolinfo, ``/rest/mempool/info.json``)."""
    info = pool.info()

    def sats(key: str) -> int:
        value = info[key]
        assert isinstance(value, int)
        return value

    return {
        "loaded": info["loaded"],
        "size": info["size"],
        "bytes": info["bytes"],
        "usage": info["usage"],
        "total_fee": btc(sats("total_fee")),
        "maxmempool": info["maxmempool"],
        "mempoolminfee": btc(sats("mempoolminfee")),
        "minrelaytxfee": btc(sats("minrelaytxfee")),
        "incrementalrelayfee": btc(sats("incrementalrelayfee")),
        "unbroadcastcount": info["unbroadcastcount"],
        "fullrbf": info["fullrbf"],
        "permitbaremultisig": info["permitbaremultisig"],
        "maxdatacarriersize": info["maxdatacarriersize"],
        "limitclustercount": info["limitclustercount"],
        "limitclustersize": info["limitclustersize"],
        "optimal": info["optimal"],
    }


def depth_and_score_order(pool: MemPool) -> list[bytes]:
    """The txids in Core 30's ``GetSortedDepthAndScore`` order (getrawmempool's): fewer
    in-pool ancestors first, then the higher modified feerate, then the larger txid (compared
    as stored, in wire order)."""
    entries = pool.entries

    def key(txid: bytes) -> tuple[int, Fraction]:
        e = entries[txid]
        return len(pool.ancestors(txid)), -Fraction(e.modified_fee, max(e.vsize, 1))

    # A stable sort over the txids in descending order keeps Core's tie-break.
    return sorted(sorted(entries, reverse=True), key=key)


def mempool_to_json(pool: MemPool, verbose: bool, sequence: bool) -> Any:
    """Core's ``MempoolToJSON`` (getrawmempool, ``/rest/mempool/contents.json``)."""
    if verbose:
        if sequence:
            raise RpcError(
                RPC_INVALID_PARAMETER, "Verbose results cannot contain mempool sequence values."
            )
        return {hash_hex(t): entry_to_json(pool, t) for t in depth_and_score_order(pool)}
    txids = [hash_hex(t) for t in depth_and_score_order(pool)]
    if not sequence:
        return txids
    return {"txids": txids, "mempool_sequence": mempool_sequence(pool)}


# -- parameters --------------------------------------------------------------------------------


def parse_fee_rate(value: Any) -> int:
    """Core's ``ParseFeeRate``: a BTC/kvB amount below 1 BTC/kvB, as sat/kvB."""
    rate = amount_from_value(value)
    if rate >= COIN:
        raise RpcError(
            RPC_INVALID_PARAMETER, "Fee rates larger than or equal to 1BTC/kvB are not accepted"
        )
    return rate


def _is_unspendable(script: bytes) -> bool:
    """Core's ``IsUnspendable() || !HasValidOps()``."""
    return (
        (bool(script) and script[0] == OP_RETURN)
        or len(script) > MAX_SCRIPT_SIZE
        or not has_valid_ops(script)
    )


def _check_burn(tx: Tx, max_burn: int) -> None:
    for out in tx.outputs:
        if _is_unspendable(out.script_pubkey) and out.value > max_burn:
            raise RpcError(RPC_VERIFY_ERROR, _MAX_BURN_EXCEEDED)


def _decode_list(raw: Any, low: int, name: str) -> list[Tx]:
    if not isinstance(raw, list):
        raise RpcError(RPC_TYPE_ERROR, f"Expected type array for {name}, got {json_type(raw)}")
    if not low <= len(raw) <= MAX_PACKAGE_COUNT:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"Array must contain between {low} and {MAX_PACKAGE_COUNT} transactions.",
        )
    txs: list[Tx] = []
    for item in raw:
        if not isinstance(item, str):
            raise RpcError(
                RPC_TYPE_ERROR,
                f"JSON value of type {json_type(item)} is not of expected type string",
            )
        tx = decode_hex_tx(item)
        if tx is None:
            raise RpcError(
                RPC_DESERIALIZATION_ERROR,
                f"TX decode failed: {item} Make sure the tx has at least one input.",
            )
        txs.append(tx)
    return txs


def _reject_error(r: AcceptResult) -> RpcError:
    """Core's ``HandleATMPError``: missing inputs are -25, every other refusal -26."""
    if r.result is TxResult.MISSING_INPUTS:
        return RpcError(RPC_VERIFY_ERROR, r.reject_details)
    return RpcError(RPC_VERIFY_REJECTED, r.reject_details)


def _fees_json(r: AcceptResult) -> dict[str, Any]:
    assert r.fee is not None
    return {
        "base": btc(r.fee),
        "effective-feerate": btc(r.effective_feerate or 0),
        "effective-includes": [hash_hex(w) for w in r.effective_includes],
    }


# -- sendrawtransaction ----------------------------------------------------------------------------


@rpc_method(
    "sendrawtransaction",
    "rawtransactions",
    [
        Param("hexstring", str, help="The hex string of the raw transaction"),
        Param(
            "maxfeerate",
            object,
            DEFAULT_MAX_RAW_TX_FEE_RATE,
            help="Reject transactions whose fee rate is higher than this (BTC/kvB); 0 accepts any",
        ),
        Param(
            "maxburnamount",
            object,
            DEFAULT_MAX_BURN_AMOUNT,
            help="Reject transactions with provably unspendable outputs (OP_RETURN or invalid "
            "scripts) worth more than this (BTC)",
        ),
    ],
    result_help="the transaction hash in hex",
)
def sendrawtransaction(
    node: ChainNode,
    hexstring: str,
    maxfeerate: Any = DEFAULT_MAX_RAW_TX_FEE_RATE,
    maxburnamount: Any = DEFAULT_MAX_BURN_AMOUNT,
) -> str:
    """Submit a raw transaction (serialized, hex-encoded) to the local node and network.

    The transaction is checked by the mempool's policy and, when accepted, relayed. A
    transaction already in the pool is not checked again."""
    tx = decode_hex_tx(hexstring)
    if tx is None:
        raise RpcError(
            RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input."
        )
    max_burn = amount_from_value(maxburnamount)
    _check_burn(tx, max_burn)
    rate = parse_fee_rate(maxfeerate)
    max_fee = policy.fee_for(rate, tx.vsize())
    pool = ensure_mempool(node)
    chain = node.chain
    # Core's BroadcastTransaction: a transaction whose outputs exist is in the chain already.
    for i in range(len(tx.outputs)):
        if chain.get_coin(tx.txid, i) is not None:
            raise RpcError(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
    if pool.contains(tx.txid):
        return tx.txid_hex
    if max_fee > 0:
        trial = pool.accept(tx, test_accept=True)
        if not trial.allowed:
            raise _reject_error(trial)
        if trial.fee is not None and trial.fee > max_fee:
            raise RpcError(RPC_VERIFY_ERROR, _MAX_FEE_EXCEEDED)
    result = pool.accept(tx)
    if not result.allowed:
        raise _reject_error(result)
    pool.add_unbroadcast(tx.txid)  # Core: announced until a peer asks for it
    return tx.txid_hex


# -- testmempoolaccept -----------------------------------------------------------------------------


@rpc_method(
    "testmempoolaccept",
    "rawtransactions",
    [
        Param("rawtxs", list, help="An array of hex strings of raw transactions (at most 25)"),
        Param(
            "maxfeerate",
            object,
            DEFAULT_MAX_RAW_TX_FEE_RATE,
            help="Reject transactions whose fee rate is higher than this (BTC/kvB)",
        ),
    ],
    result_help="[{txid, wtxid, package-error?, allowed, vsize, fees: {base, effective-feerate, "
    "effective-includes}, reject-reason, reject-details}]",
)
def testmempoolaccept(
    node: ChainNode, rawtxs: list[Any], maxfeerate: Any = DEFAULT_MAX_RAW_TX_FEE_RATE
) -> list[dict[str, Any]]:
    """Whether the mempool would accept these raw transactions (a package if more than one),
    without changing it or relaying them."""
    txs = _decode_list(rawtxs, 1, "rawtxs")
    rate = parse_fee_rate(maxfeerate)
    pool = ensure_mempool(node)
    package_error: str | None = None
    if len(txs) == 1:
        results = {txs[0].wtxid: pool.accept(txs[0], test_accept=True)}
    else:
        outcome = pool.accept_package(txs, test_accept=True)
        results = outcome.results
        if not outcome.results and not outcome.success:
            package_error = outcome.package_msg
    out: list[dict[str, Any]] = []
    exit_early = False
    for tx in txs:
        item: dict[str, Any] = {"txid": tx.txid_hex, "wtxid": tx.wtxid_hex}
        if package_error is not None:
            item["package-error"] = package_error
        r = results.get(tx.wtxid)
        if exit_early or r is None:
            out.append(item)
            continue
        if r.already_in_pool:
            item["allowed"] = False
            item["reject-reason"] = "txn-already-in-mempool"
            item["reject-details"] = "txn-already-in-mempool"
        elif r.allowed:
            assert r.fee is not None and r.vsize is not None
            max_fee = policy.fee_for(rate, r.vsize)
            if max_fee and r.fee > max_fee:
                item["allowed"] = False
                item["reject-reason"] = "max-fee-exceeded"
                exit_early = True
            else:
                item["allowed"] = True
                item["vsize"] = r.vsize
                item["fees"] = _fees_json(r)
        else:
            item["allowed"] = False
            if r.result is TxResult.MISSING_INPUTS:
                item["reject-reason"] = "missing-inputs"
            else:
                item["reject-reason"] = r.reject_reason
                item["reject-details"] = r.reject_details
        out.append(item)
    return out


# -- submitpackage ---------------------------------------------------------------------------------


def _child_with_parents_tree(txs: list[Tx]) -> bool:
    """Core's ``IsChildWithParentsTree``: every other transaction is a parent of the last one,
    and no parent spends another."""
    if len(txs) < 2:
        return True
    child = txs[-1]
    child_parents = {i.prevout.txid for i in child.inputs}
    parents = {t.txid for t in txs[:-1]}
    if not parents <= child_parents:
        return False
    return all(i.prevout.txid not in parents for t in txs[:-1] for i in t.inputs)


@rpc_method(
    "submitpackage",
    "rawtransactions",
    [
        Param("package", list, help="An array of raw transactions: a child and its parents"),
        Param(
            "maxfeerate",
            object,
            DEFAULT_MAX_RAW_TX_FEE_RATE,
            help="Reject transactions whose fee rate is higher than this (BTC/kvB)",
        ),
        Param(
            "maxburnamount",
            object,
            DEFAULT_MAX_BURN_AMOUNT,
            help="Reject transactions with provably unspendable outputs worth more than this",
        ),
    ],
    result_help="{package_msg, tx-results: {wtxid: {txid, other-wtxid?, vsize, fees: {base, "
    "effective-feerate, effective-includes}, error?}}, replaced-transactions: [txid]}",
)
def submitpackage(
    node: ChainNode,
    package: list[Any],
    maxfeerate: Any = DEFAULT_MAX_RAW_TX_FEE_RATE,
    maxburnamount: Any = DEFAULT_MAX_BURN_AMOUNT,
) -> dict[str, Any]:
    """Submit a package of raw transactions (a child with its unconfirmed parents, sorted) to
    the local node; a child may pay for a parent below the mempool's minimum fee."""
    rate = parse_fee_rate(maxfeerate)
    max_burn = amount_from_value(maxburnamount)
    txs = _decode_list(package, 1, "package")
    for tx in txs:
        _check_burn(tx, max_burn)
    if not _child_with_parents_tree(txs):
        raise RpcError(RPC_VERIFY_ERROR, _TOPOLOGY)
    pool = ensure_mempool(node)
    if rate > 0:
        trial = pool.accept_package(txs, test_accept=True)
        for tx in txs:
            r = trial.results.get(tx.wtxid)
            if r is None or not r.allowed or r.already_in_pool:
                continue
            assert r.fee is not None and r.vsize is not None
            if r.fee * 1000 > rate * r.vsize:  # Core: the transaction's own feerate
                return {
                    "package_msg": "transaction failed",
                    "tx-results": {
                        t.wtxid_hex: (
                            {"txid": t.txid_hex, "error": "max feerate exceeded"}
                            if t is tx
                            else {"txid": t.txid_hex, "error": "package-not-validated"}
                        )
                        for t in txs
                    },
                    "replaced-transactions": [],
                }
    outcome = pool.accept_package(txs)
    results: dict[str, Any] = {}
    replaced: set[str] = {t.txid_hex for t in outcome.replaced}
    for tx in txs:
        item: dict[str, Any] = {"txid": tx.txid_hex}
        r = outcome.results.get(tx.wtxid)
        entry = pool.entry(tx.txid)
        if r is None:
            item["error"] = "package-not-validated"
        elif r.already_in_pool and entry is not None:
            if entry.tx.wtxid != tx.wtxid:
                item["other-wtxid"] = entry.tx.wtxid_hex
            else:
                item["vsize"] = entry.vsize
                item["fees"] = {"base": btc(entry.fee)}
        elif r.allowed and entry is not None:
            item["vsize"] = r.vsize
            item["fees"] = _fees_json(r)
            replaced |= {t.txid_hex for t in r.replaced}
        else:
            item["error"] = r.reject_details if not r.allowed else "package-not-validated"
        results[tx.wtxid_hex] = item
    return {
        "package_msg": outcome.package_msg,
        "tx-results": results,
        "replaced-transactions": sorted(replaced),
    }


# -- inspection ------------------------------------------------------------------------------------


@rpc_method(
    "getmempoolinfo",
    "blockchain",
    result_help="{loaded, size, bytes, usage, total_fee, maxmempool, mempoolminfee, "
    "minrelaytxfee, incrementalrelayfee, unbroadcastcount, fullrbf, permitbaremultisig, "
    "maxdatacarriersize, limitclustercount, limitclustersize, optimal}",
)
def getmempoolinfo(node: ChainNode) -> dict[str, Any]:
    """Returns details on the active state of the TX memory pool."""
    return mempool_info_json(ensure_mempool(node))


@rpc_method(
    "getrawmempool",
    "blockchain",
    [
        Param("verbose", bool, False, help="True for a json object, false for array of txids"),
        Param(
            "mempool_sequence",
            bool,
            False,
            help="If verbose=false, returns a json object with transaction list and mempool "
            "sequence number attached.",
        ),
    ],
    result_help="[txid], {txid: entry} when verbose, or {txids, mempool_sequence}",
)
def getrawmempool(node: ChainNode, verbose: bool = False, mempool_sequence: bool = False) -> Any:
    """Returns all transaction ids in memory pool as a json array of string transaction ids."""
    return mempool_to_json(ensure_mempool(node), verbose, mempool_sequence)


def _pool_txid(pool: MemPool, txid: str) -> bytes:
    h = parse_hash(txid, "parameter 1")
    if not pool.contains(h):
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
    return h


@rpc_method(
    "getmempoolentry",
    "blockchain",
    [Param("txid", str, help="The transaction id (must be in mempool)")],
    result_help="{vsize, weight, time, height, descendantcount, descendantsize, ancestorcount, "
    "ancestorsize, chunkweight, wtxid, fees: {base, modified, ancestor, descendant, chunk}, "
    "depends, spentby, bip125-replaceable, unbroadcast}",
)
def getmempoolentry(node: ChainNode, txid: str) -> dict[str, Any]:
    """Returns mempool data for given transaction."""
    pool = ensure_mempool(node)
    return entry_to_json(pool, _pool_txid(pool, txid))


@rpc_method(
    "getmempoolcluster",
    "blockchain",
    [Param("txid", str, help="The txid of a transaction in the cluster")],
    result_help="{clusterweight, txcount, chunks: [{chunkfee, chunkweight, txs: [txid]}]}",
)
def getmempoolcluster(node: ChainNode, txid: str) -> dict[str, Any]:
    """Returns mempool data for given cluster."""
    pool = ensure_mempool(node)
    info = pool.cluster_info(_pool_txid(pool, txid))
    chunks = info["chunks"]
    assert isinstance(chunks, list)
    return {
        "clusterweight": info["clusterweight"],
        "txcount": info["txcount"],
        "chunks": [
            {
                "chunkfee": btc(c["chunkfee"]),
                "chunkweight": c["chunkweight"],
                "txs": [hash_hex(t) for t in c["txs"]],
            }
            for c in chunks
        ],
    }


def _related(pool: MemPool, txids: set[bytes], verbose: bool) -> Any:
    ordered = [t for t in pool.txids() if t in txids]
    if not verbose:
        return [hash_hex(t) for t in ordered]
    return {hash_hex(t): entry_to_json(pool, t) for t in ordered}


@rpc_method(
    "getmempoolancestors",
    "blockchain",
    [
        Param("txid", str, help="The transaction id (must be in mempool)"),
        Param("verbose", bool, False, help="True for a json object, false for array of txids"),
    ],
    result_help="[txid], or {txid: entry} when verbose",
)
def getmempoolancestors(node: ChainNode, txid: str, verbose: bool = False) -> Any:
    """If txid is in the mempool, returns all in-mempool ancestors."""
    pool = ensure_mempool(node)
    return _related(pool, pool.ancestors(_pool_txid(pool, txid)), verbose)


@rpc_method(
    "getmempooldescendants",
    "blockchain",
    [
        Param("txid", str, help="The transaction id (must be in mempool)"),
        Param("verbose", bool, False, help="True for a json object, false for array of txids"),
    ],
    result_help="[txid], or {txid: entry} when verbose",
)
def getmempooldescendants(node: ChainNode, txid: str, verbose: bool = False) -> Any:
    """If txid is in the mempool, returns all in-mempool descendants."""
    pool = ensure_mempool(node)
    return _related(pool, pool.descendants(_pool_txid(pool, txid)), verbose)


def _outpoint(item: Any) -> OutPoint:
    """Core's ``RPCTypeCheckObj`` on ``{txid, vout}``, strict."""
    if not isinstance(item, dict):
        raise RpcError(
            RPC_TYPE_ERROR, f"JSON value of type {json_type(item)} is not of expected type object"
        )
    for key, want, name in (("txid", str, "string"), ("vout", int, "number")):
        value = item.get(key)
        if value is None:
            raise RpcError(RPC_TYPE_ERROR, f"Missing {key}")
        ok = isinstance(value, want) and not isinstance(value, bool)
        if want is int and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            raise RpcError(
                RPC_TYPE_ERROR,
                f"JSON value of type {json_type(value)} for field {key} is not of expected "
                f"type {name}",
            )
    for key in item:
        if key not in ("txid", "vout"):
            raise RpcError(RPC_TYPE_ERROR, f"Unexpected key {key}")
    txid = parse_hash(item["txid"], "txid")
    vout = int(item["vout"])
    if vout < 0:
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
    if vout > 0x7FFFFFFF:
        raise RpcError(RPC_MISC_ERROR, "JSON integer out of range")
    return OutPoint(txid, vout)


@rpc_method(
    "gettxspendingprevout",
    "blockchain",
    [Param("outputs", list, help="The transaction outputs: [{txid, vout}, ...]")],
    result_help="[{txid, vout, spendingtxid?}]",
)
def gettxspendingprevout(node: ChainNode, outputs: list[Any]) -> list[dict[str, Any]]:
    """Scans the mempool to find transactions spending any of the given outputs."""
    if not outputs:
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, outputs are missing")
    prevouts = [_outpoint(o) for o in outputs]
    pool = ensure_mempool(node)
    result: list[dict[str, Any]] = []
    for p in prevouts:
        item: dict[str, Any] = {"txid": p.txid_hex, "vout": p.index}
        spender = pool.spender(p)
        if spender is not None:
            item["spendingtxid"] = hash_hex(spender)
        result.append(item)
    return result


# -- prioritisation and persistence ----------------------------------------------------------------


@rpc_method(
    "prioritisetransaction",
    "mining",
    [
        Param("txid", str, help="The transaction id"),
        Param(
            "dummy", float, None, help="API-Compatibility for previous API. Must be zero or null."
        ),
        Param(
            "fee_delta",
            int,
            help="The fee value (in satoshis) to add (or subtract, if negative); the fee is not "
            "actually paid, only the algorithm for selecting transactions is affected",
        ),
    ],
    result_help="true",
)
def prioritisetransaction(node: ChainNode, txid: str, dummy: float | None, fee_delta: int) -> bool:
    """Accepts the transaction into mined blocks at a higher (or lower) priority."""
    h = parse_hash(txid, "txid")
    if dummy is not None and dummy != 0:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "Priority is no longer supported, dummy argument to prioritisetransaction must be 0.",
        )
    pool = ensure_mempool(node)
    tx = pool.get(h)
    if pool.require_standard and tx is not None and policy.dust_outputs(tx, pool.dust_relay_fee):
        raise RpcError(
            RPC_INVALID_PARAMETER, "Priority is not supported for transactions with dust outputs."
        )
    pool.prioritise(h, fee_delta)
    return True


@rpc_method(
    "getprioritisedtransactions",
    "mining",
    result_help="{txid: {fee_delta, in_mempool, modified_fee?}}",
)
def getprioritisedtransactions(node: ChainNode) -> dict[str, Any]:
    """Returns a map of all user-created (see prioritisetransaction) fee deltas by txid, and
    whether the tx is present in mempool."""
    pool = ensure_mempool(node)
    out: dict[str, Any] = {}
    for txid, (delta, in_pool) in pool.prioritised().items():
        item: dict[str, Any] = {"fee_delta": delta, "in_mempool": in_pool}
        e = pool.entry(txid)
        if in_pool and e is not None:
            item["modified_fee"] = e.modified_fee
        out[hash_hex(txid)] = item
    return out


def mempool_path(node: ChainNode) -> Path:
    return node.datadir / MEMPOOL_FILE_NAME


@rpc_method("savemempool", "blockchain", result_help="{filename}")
def savemempool(node: ChainNode) -> dict[str, Any]:
    """Dumps the mempool to disk. It will fail until the previous dump is fully loaded."""
    pool = ensure_mempool(node)
    if not pool.loaded:
        raise RpcError(RPC_MISC_ERROR, "The mempool was not loaded yet")
    path = mempool_path(node)
    try:
        pool.save(path)
    except OSError:
        raise RpcError(RPC_MISC_ERROR, "Unable to dump mempool to disk") from None
    return {"filename": str(path)}


__all__ = [
    "MEMPOOL_FILE_NAME",
    "ensure_mempool",
    "entry_to_json",
    "getmempoolancestors",
    "getmempooldescendants",
    "getmempoolentry",
    "getmempoolinfo",
    "getprioritisedtransactions",
    "getrawmempool",
    "gettxspendingprevout",
    "mempool_info_json",
    "mempool_path",
    "mempool_sequence",
    "mempool_to_json",
    "prioritisetransaction",
    "savemempool",
    "sendrawtransaction",
    "submitpackage",
    "testmempoolaccept",
    "track_sequence",
]
