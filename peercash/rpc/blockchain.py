"""Blockchain RPCs, as Bitcoin Core 29/30 name and format them, plus the JSON builders for REST.

Layer 4. Methods take the node facade (``ChainNode``) first and read the chain state only; the
control methods (``invalidateblock``, ``reconsiderblock``, ``preciousblock``) call the chain state's
own operations. The wait methods are coroutines that wake on ``chain.events.tip_changed``.

Errors are ``RpcError`` with Core's codes and messages (-5 unknown block, -8 bad parameters,
-1 data not available, -20 when the chain refuses an operation).

Known differences from Core (see also ``util``):

* ``verificationprogress`` has no hard-coded chain statistics to lean on: 1.0 when the tip is
  the best header and IBD is over; otherwise the lower of the tip's height over the best
  header's and the chain's transaction count over that count plus the transactions expected
  since the tip's time (at the rate of the last month of blocks).
* ``initialblockdownload`` uses ``node.is_initial_block_download`` when the facade has it, else
  Core's rule (tip work below the minimum chain work, or tip older than 24 hours), not latched.
* ``verifychain`` levels 3 and 4 run in a scratch view over the UTXO set, without Core's cache
  size limit; level 4 reconnects with full script checks (subject to assumevalid).
* ``gettxoutsetinfo`` computes the statistics by reading the whole UTXO set (there is no
  coinstats index), on the calling thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from peercash.chain.coins import coin_key, key_outpoint
from peercash.chain.errors import ChainError
from peercash.chain.index import (
    FAILED_MASK,
    HAVE_DATA,
    HAVE_UNDO,
    VALID_SCRIPTS,
    VALID_TREE,
    BlockIndexEntry,
)
from peercash.chain.scratch import CoinsOverlay, ScratchChain
from peercash.chain.undo import decode_block_undo
from peercash.chain.validation import BlockValidator
from peercash.consensus import deployments as dep
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.deployments import Deployment, ThresholdState, deployment_state
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.pow import bits_to_target
from peercash.consensus.primitives import MAX_BLOCK_SERIALIZED_SIZE, MAX_MONEY, Block, OutPoint
from peercash.consensus.script.script import is_unspendable
from peercash.consensus.serialize import compact_size
from peercash.consensus.subsidy import block_subsidy
from peercash.consensus.utxohash import UtxoSetHasher

from .context import ChainNode, mempool_spends, optional_mempool, optional_txindex
from .rawtransactions import block_undo, tx_to_json
from .registry import (
    RPC_DATABASE_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import btc, expect_int, expect_str, hash_hex, parse_hash, parse_verbosity, script_to_json

log = logging.getLogger("peercash.rpc")

DEFAULT_CHECKLEVEL = 3
DEFAULT_CHECKBLOCKS = 6
MAX_TIP_AGE = 24 * 60 * 60
PER_UTXO_OVERHEAD = 36 + 4 + 1  # sizeof(COutPoint) + sizeof(uint32_t) + sizeof(bool)
NUM_PERCENTILES = 5

# -- small helpers -----------------------------------------------------------------------------


def difficulty(bits: int) -> float:
    """Core's ``GetDifficulty``: the target of ``bits`` as a multiple of the 0x1d00ffff target."""
    shift = (bits >> 24) & 0xFF
    mantissa = bits & 0x00FFFFFF
    if mantissa == 0:
        return float("inf")
    d = 0x0000FFFF / mantissa
    while shift < 29:
        d *= 256.0
        shift += 1
    while shift > 29:
        d /= 256.0
        shift -= 1
    return d


def target_hex(bits: int) -> str:
    target, _, _ = bits_to_target(bits)
    return f"{target:064x}"


def lookup_block(node: ChainNode, blockhash: Any, name: str = "blockhash") -> BlockIndexEntry:
    """The index entry of a display-hex block hash, or Core's "Block not found" (-5)."""
    entry = node.chain.index.get(parse_hash(blockhash, name))
    if entry is None:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
    return entry


def parse_hash_or_height(node: ChainNode, value: Any) -> BlockIndexEntry:
    """Core's ``ParseHashOrHeight``."""
    chain = node.chain
    if isinstance(value, int | float) and not isinstance(value, bool):
        height = expect_int(value)
        if height < 0:
            raise RpcError(RPC_INVALID_PARAMETER, f"Target block height {height} is negative")
        if height > chain.height:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                f"Target block height {height} after current tip {chain.height}",
            )
        return chain.chain[height]
    return lookup_block(node, value, "hash_or_height")


def read_block_checked(node: ChainNode, entry: BlockIndexEntry) -> Block:
    """Core's ``GetBlockChecked``."""
    if not entry.status & HAVE_DATA or entry.data_pos is None:
        raise RpcError(RPC_MISC_ERROR, "Block not available (not fully downloaded)")
    try:
        return node.chain.read_block(entry)
    except ChainError:
        raise RpcError(RPC_MISC_ERROR, "Block not found on disk") from None


def undo_checked(node: ChainNode, entry: BlockIndexEntry) -> list[list[SpentCoin]]:
    """Core's ``GetUndoChecked`` (the genesis block has empty undo data)."""
    if entry.height == 0:
        return []
    if not entry.status & HAVE_UNDO:
        raise RpcError(RPC_MISC_ERROR, "Undo data not available")
    undo = block_undo(node, entry)
    if undo is None:
        raise RpcError(RPC_MISC_ERROR, "Can't read undo data from disk")
    return undo


_TX_COUNT_CACHE: dict[bytes, int] = {}
_TX_COUNT_STRIDE = 1000


def chain_tx_count(entry: BlockIndexEntry) -> int:
    """Transactions in the chain up to and including ``entry`` (Core's ``m_chain_tx_count``);
    0 when some block on the way is not stored. Cumulative counts are cached every 1000 heights,
    so a query walks at most that many entries."""
    walked: list[BlockIndexEntry] = []
    e: BlockIndexEntry | None = entry
    base = 0
    while e is not None:
        cached = _TX_COUNT_CACHE.get(e.hash)
        if cached is not None:
            base = cached
            break
        if e.n_tx == 0:
            return 0
        walked.append(e)
        e = e.prev
    total = base
    for x in reversed(walked):
        total += x.n_tx
        if x.height % _TX_COUNT_STRIDE == 0:
            _TX_COUNT_CACHE[x.hash] = total
    return total


def _block_view(node: ChainNode, entry: BlockIndexEntry) -> Callable[[int], BlockIndexEntry]:
    """``height -> entry`` along ``entry``'s chain (fast on the active chain)."""
    chain = node.chain
    if chain.contains(entry):
        active = chain.chain
        return lambda h: active[h]
    branch: dict[int, BlockIndexEntry] = {}
    e: BlockIndexEntry | None = entry
    while e is not None and not chain.contains(e):
        branch[e.height] = e
        e = e.prev
    active = chain.chain

    def at(h: int) -> BlockIndexEntry:
        found = branch.get(h)
        return found if found is not None else active[h]

    return at


# -- header and block JSON (also for REST) ----------------------------------------------------


def header_to_json(node: ChainNode, entry: BlockIndexEntry) -> dict[str, Any]:
    """Core's ``blockheaderToJSON``."""
    chain = node.chain
    h = entry.header
    if chain.contains(entry):
        confirmations = chain.height - entry.height + 1
        nxt = chain.entry_at(entry.height + 1)
    else:
        confirmations = -1
        nxt = None
    out: dict[str, Any] = {
        "hash": h.hash_hex,
        "confirmations": confirmations,
        "height": entry.height,
        "version": h.version,
        "versionHex": f"{h.version & 0xFFFFFFFF:08x}",
        "merkleroot": hash_hex(h.merkle_root),
        "time": h.time,
        "mediantime": entry.median_time_past(),
        "nonce": h.nonce,
        "bits": f"{h.bits:08x}",
        "target": target_hex(h.bits),
        "difficulty": difficulty(h.bits),
        "chainwork": f"{entry.chain_work:064x}",
        "nTx": entry.n_tx,
    }
    if entry.prev is not None:
        out["previousblockhash"] = entry.prev.header.hash_hex
    if nxt is not None:
        out["nextblockhash"] = nxt.header.hash_hex
    return out


def block_to_json(
    node: ChainNode, block: Block, entry: BlockIndexEntry, verbosity: int
) -> dict[str, Any]:
    """Core's ``blockToJSON``: verbosity 1 lists txids, 2 decodes transactions (with ``fee``
    when undo data exists), 3 adds each input's ``prevout``."""
    out = header_to_json(node, entry)
    out["strippedsize"] = len(block.serialize_legacy())
    out["size"] = len(block.serialize())
    out["weight"] = block.weight()
    if verbosity <= 1:
        out["tx"] = [tx.txid_hex for tx in block.txs]
        return out
    undo = block_undo(node, entry)
    txs = []
    for i, tx in enumerate(block.txs):
        prevouts = undo[i - 1] if undo is not None and i > 0 else None
        txs.append(tx_to_json(tx, node.params, None, True, prevouts, show_prevouts=verbosity >= 3))
    out["tx"] = txs
    return out


# -- simple queries ----------------------------------------------------------------------------


@rpc_method("getblockcount", "blockchain", result_help="n (numeric) the current block count")
def getblockcount(node: ChainNode) -> int:
    """Returns the height of the most-work fully-validated chain. The genesis block has height 0."""
    return node.chain.height


@rpc_method("getbestblockhash", "blockchain", result_help="hex the block hash")
def getbestblockhash(node: ChainNode) -> str:
    """Returns the hash of the best (tip) block in the most-work fully-validated chain."""
    return node.chain.tip.header.hash_hex


@rpc_method(
    "getblockhash",
    "blockchain",
    [Param("height", int, help="The height index")],
    result_help="hex the block hash",
)
def getblockhash(node: ChainNode, height: int) -> str:
    """Returns hash of block in best-block-chain at height provided."""
    entry = node.chain.entry_at(height)
    if entry is None:
        raise RpcError(RPC_INVALID_PARAMETER, "Block height out of range")
    return entry.header.hash_hex


@rpc_method("getdifficulty", "blockchain", result_help="n the proof-of-work difficulty")
def getdifficulty(node: ChainNode) -> float:
    """Returns the proof-of-work difficulty as a multiple of the minimum difficulty."""
    return difficulty(node.chain.tip.header.bits)


@rpc_method(
    "getblockheader",
    "blockchain",
    [
        Param("blockhash", str, help="The block hash"),
        Param("verbose", bool, True, help="true for a json object, false for the hex data"),
    ],
    result_help="an object (hash, confirmations, height, version, versionHex, merkleroot, time, "
    "mediantime, nonce, bits, target, difficulty, chainwork, nTx, previousblockhash, "
    "nextblockhash), or the serialized header in hex",
)
def getblockheader(node: ChainNode, blockhash: str, verbose: bool = True) -> Any:
    """If verbose is false, returns the serialized, hex-encoded header of block 'hash'.
    If verbose is true, returns an Object with information about block header <hash>."""
    entry = lookup_block(node, blockhash, "hash")
    if not verbose:
        return entry.header.serialize().hex()
    return header_to_json(node, entry)


@rpc_method(
    "getblock",
    "blockchain",
    [
        Param("blockhash", str, help="The block hash"),
        Param(
            "verbosity",
            object,
            1,
            help="0 for hex-encoded data, 1 for a JSON object, 2 for JSON object with transaction "
            "data, and 3 for JSON object with transaction data including prevout information",
        ),
    ],
    result_help="hex (verbosity 0) or an object: header fields, strippedsize, size, weight, tx",
)
def getblock(node: ChainNode, blockhash: str, verbosity: Any = 1) -> Any:
    """Returns the block: serialized hex (0), an object with txids (1), with decoded transactions
    (2), or with decoded transactions and the outputs their inputs spend (3)."""
    h = parse_hash(blockhash, "blockhash")
    level = parse_verbosity(verbosity, 1, True)
    entry = node.chain.index.get(h)
    if entry is None:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
    block = read_block_checked(node, entry)
    if level <= 0:
        return block.serialize().hex()
    return block_to_json(node, block, entry, min(level, 3))


# -- getblockchaininfo -------------------------------------------------------------------------


def _size_on_disk(node: ChainNode) -> int:
    folder = node.chain.blocks.folder
    total = 0
    try:
        for path in folder.iterdir():
            if path.name.startswith(("blk", "rev")) and path.suffix == ".dat":
                total += path.stat().st_size
    except OSError:
        pass
    return total


def _now(node: ChainNode) -> float:
    return float(node.chain.validator.clock())


def initial_block_download(node: ChainNode) -> bool:
    flag = getattr(node, "is_initial_block_download", None)
    if flag is not None:
        return bool(flag() if callable(flag) else flag)
    tip = node.chain.tip
    if tip.chain_work < node.params.min_chain_work:
        return True
    return tip.header.time < _now(node) - MAX_TIP_AGE


def _tx_rate_progress(node: ChainNode, entry: BlockIndexEntry) -> float:
    """Transactions in the chain up to ``entry`` over those plus the ones expected since its
    time, at the rate of the month before it (1.0 when its time is not in the past)."""
    done = chain_tx_count(entry)
    if done == 0:
        return 0.0
    now = _now(node)
    behind = now - entry.header.time
    if behind <= 0:
        return 1.0
    window = min(entry.height - 1, 30 * 24 * 60 * 60 // node.params.pow_target_spacing)
    if window <= 0:
        return 1.0
    past = entry.ancestor(entry.height - window)
    elapsed = entry.median_time_past() - past.median_time_past()
    past_count = chain_tx_count(past)
    if elapsed <= 0 or past_count == 0:
        return 1.0
    rate = (done - past_count) / elapsed
    return min(1.0, done / (done + behind * rate))


def verification_progress(node: ChainNode, entry: BlockIndexEntry) -> float:
    """An estimate of how much of the chain is verified: 1.0 once the tip is our best header
    and we are out of initial block download; else the lower of the tip height over the best
    header's and the transaction-rate estimate (which also sees a header chain not synced yet)."""
    chain = node.chain
    best = chain.best_header
    at_best = best is None or best is entry or best.chain_work <= entry.chain_work
    if at_best and not initial_block_download(node):
        return 1.0
    progress = _tx_rate_progress(node, entry)
    if best is not None and best.height > 0 and not at_best:
        progress = min(progress, entry.height / best.height)
    return progress


def _warnings(node: ChainNode) -> list[str]:
    found = getattr(node, "warnings", None)
    if found is None:
        return []
    items = found() if callable(found) else found
    return [str(w) for w in items]


@rpc_method(
    "getblockchaininfo",
    "blockchain",
    result_help="chain, blocks, headers, bestblockhash, bits, target, difficulty, time, "
    "mediantime, verificationprogress, initialblockdownload, chainwork, size_on_disk, pruned, "
    "warnings",
)
def getblockchaininfo(node: ChainNode) -> dict[str, Any]:
    """Returns an object containing various state info regarding blockchain processing."""
    chain = node.chain
    tip = chain.tip
    best = chain.best_header
    out: dict[str, Any] = {
        "chain": "test" if node.params.name == "testnet" else node.params.name,
        "blocks": tip.height,
        "headers": best.height if best is not None else -1,
        "bestblockhash": tip.header.hash_hex,
        "bits": f"{tip.header.bits:08x}",
        "target": target_hex(tip.header.bits),
        "difficulty": difficulty(tip.header.bits),
        "time": tip.header.time,
        "mediantime": tip.median_time_past(),
        "verificationprogress": verification_progress(node, tip),
        "initialblockdownload": initial_block_download(node),
        "chainwork": f"{tip.chain_work:064x}",
        "size_on_disk": _size_on_disk(node),
        "pruned": False,
    }
    if node.params.signet_challenge is not None:
        out["signet_challenge"] = node.params.signet_challenge.hex()
    out["warnings"] = _warnings(node)
    return out


# -- getchaintips ------------------------------------------------------------------------------


def _have_all_data(node: ChainNode, entry: BlockIndexEntry) -> bool:
    """Whether the block and all its ancestors are stored (Core's ``HaveNumChainTxs``)."""
    chain = node.chain
    e: BlockIndexEntry | None = entry
    while e is not None and not chain.contains(e):
        if not e.status & HAVE_DATA:
            return False
        e = e.prev
    return True


@rpc_method(
    "getchaintips",
    "blockchain",
    result_help="[{height, hash, branchlen, status}] status one of invalid, headers-only, "
    "valid-headers, valid-fork, active",
)
def getchaintips(node: ChainNode) -> list[dict[str, Any]]:
    """Return information about all known tips in the block tree, including the main chain as
    well as orphaned branches."""
    chain = node.chain
    orphans = [e for e in chain.index.entries.values() if not chain.contains(e)]
    prevs = {e.prev.hash for e in orphans if e.prev is not None}
    tips = [e for e in orphans if e.hash not in prevs]
    tips.append(chain.tip)
    tips.sort(key=lambda e: (-e.height, e.hash))
    out = []
    for e in tips:
        if chain.contains(e):
            status = "active"
        elif e.status & FAILED_MASK:
            status = "invalid"
        elif not _have_all_data(node, e):
            status = "headers-only"
        elif e.valid_to(VALID_SCRIPTS):
            status = "valid-fork"
        elif e.valid_to(VALID_TREE):
            status = "valid-headers"
        else:
            status = "unknown"
        out.append(
            {
                "height": e.height,
                "hash": e.header.hash_hex,
                "branchlen": e.height - chain.find_fork(e).height,
                "status": status,
            }
        )
    return out


# -- UTXO queries ------------------------------------------------------------------------------


@rpc_method(
    "gettxout",
    "blockchain",
    [
        Param("txid", str, help="The transaction id"),
        Param("n", int, help="vout number"),
        Param("include_mempool", bool, True, help="Whether to include the mempool"),
    ],
    result_help="null, or {bestblock, confirmations, value, scriptPubKey, coinbase}",
)
def gettxout(
    node: ChainNode, txid: str, n: int, include_mempool: bool = True
) -> dict[str, Any] | None:
    """Returns details about an unspent transaction output."""
    h = parse_hash(txid, "txid")
    if not 0 <= n <= 0xFFFFFFFF:
        raise RpcError(RPC_MISC_ERROR, "JSON integer out of range")
    chain = node.chain
    pool = optional_mempool(node) if include_mempool else None
    confirmations: int
    if pool is not None and mempool_spends(pool, OutPoint(h, n)):
        return None
    coin = chain.get_coin(h, n)
    if coin is not None:
        confirmations = chain.height - coin.height + 1
        txout, is_coinbase = coin.txout, coin.coinbase
    elif pool is not None:
        tx = pool.get(h)
        if tx is None or n >= len(tx.outputs):
            return None
        txout, is_coinbase, confirmations = tx.outputs[n], False, 0
    else:
        return None
    return {
        "bestblock": chain.tip.header.hash_hex,
        "confirmations": confirmations,
        "value": btc(txout.value),
        "scriptPubKey": script_to_json(txout.script_pubkey, node.params),
        "coinbase": is_coinbase,
    }


def _dir_size(path: Any) -> int:
    total = 0
    try:
        for p in path.rglob("*"):
            if p.is_file():
                total += p.stat().st_size
    except OSError:
        pass
    return total


@rpc_method(
    "gettxoutsetinfo",
    "blockchain",
    [
        Param(
            "hash_type", str, "hash_serialized_3", help="'hash_serialized_3', 'muhash' or 'none'"
        ),
        Param("hash_or_height", object, None, help="(only available with coinstatsindex)"),
        Param("use_index", bool, True, help="Use coinstatsindex, if available."),
    ],
    result_help="height, bestblock, txouts, bogosize, hash_serialized_3 or muhash, total_amount, "
    "transactions, disk_size",
)
def gettxoutsetinfo(
    node: ChainNode,
    hash_type: str = "hash_serialized_3",
    hash_or_height: Any = None,
    use_index: bool = True,
) -> dict[str, Any]:
    """Returns statistics about the unspent transaction output set.
    Note this call may take some time."""
    if hash_type not in ("hash_serialized_3", "muhash", "none"):
        raise RpcError(RPC_INVALID_PARAMETER, f"'{hash_type}' is not a valid hash_type")
    if hash_or_height is not None:
        raise RpcError(
            RPC_INVALID_PARAMETER, "Querying specific block heights requires coinstatsindex"
        )
    chain = node.chain
    chain.flush()
    tip = chain.tip
    hasher = UtxoSetHasher(
        hash_serialized=hash_type == "hash_serialized_3", muhash=hash_type == "muhash"
    )
    transactions = 0
    last_txid = None
    for key, coin in chain.coins_db.iterate():
        outpoint = key_outpoint(key)
        if outpoint.txid != last_txid:
            transactions += 1
            last_txid = outpoint.txid
        hasher.add(outpoint, coin.height, coin.coinbase, coin.txout)
    figures = hasher.result()
    out: dict[str, Any] = {
        "height": tip.height,
        "bestblock": tip.header.hash_hex,
        "txouts": figures["txouts"],
        "bogosize": figures["bogosize"],
    }
    if hash_type == "hash_serialized_3":
        out["hash_serialized_3"] = figures["hash_serialized_3"]
    elif hash_type == "muhash":
        out["muhash"] = figures["muhash"]
    out["total_amount"] = btc(figures["total_amount"])
    out["transactions"] = transactions
    out["disk_size"] = _dir_size(chain.coins_db.path)
    return out


# -- statistics --------------------------------------------------------------------------------


def _truncated_median(values: list[int]) -> int:
    if not values:
        return 0
    values.sort()
    n = len(values)
    if n % 2 == 0:
        return (values[n // 2 - 1] + values[n // 2]) // 2
    return values[n // 2]


def _percentiles_by_weight(scores: list[tuple[int, int]], total_weight: int) -> list[int]:
    result = [0] * NUM_PERCENTILES
    if not scores:
        return result
    scores.sort()
    weights = (
        total_weight / 10.0,
        total_weight / 4.0,
        total_weight / 2.0,
        (total_weight * 3.0) / 4.0,
        (total_weight * 9.0) / 10.0,
    )
    nxt = 0
    cumulative = 0
    for feerate, weight in scores:
        cumulative += weight
        while nxt < NUM_PERCENTILES and cumulative >= weights[nxt]:
            result[nxt] = feerate
            nxt += 1
    for i in range(nxt, NUM_PERCENTILES):
        result[i] = scores[-1][0]
    return result


def _out_size(script_pubkey: bytes) -> int:
    return 8 + len(compact_size(len(script_pubkey))) + len(script_pubkey)


@rpc_method(
    "getblockstats",
    "blockchain",
    [
        Param("hash_or_height", object, help="The block hash or height of the target block"),
        Param("stats", list, None, help="Values to plot (default: all values)"),
    ],
    result_help="avgfee, avgfeerate, avgtxsize, blockhash, feerate_percentiles, height, ins, "
    "maxfee, maxfeerate, maxtxsize, medianfee, mediantime, mediantxsize, minfee, minfeerate, "
    "mintxsize, outs, subsidy, swtotal_size, swtotal_weight, swtxs, time, total_out, "
    "total_size, total_weight, totalfee, txs, utxo_increase, utxo_size_inc, "
    "utxo_increase_actual, utxo_size_inc_actual",
)
def getblockstats(
    node: ChainNode, hash_or_height: Any, stats: list[Any] | None = None
) -> dict[str, Any]:
    """Compute per block statistics for a given window. All amounts are in satoshis."""
    entry = parse_hash_or_height(node, hash_or_height)
    selected = sorted({expect_str(s) for s in stats}) if stats else []
    block = read_block_checked(node, entry)
    undo = undo_checked(node, entry)
    params = node.params
    bip30_repeat = dep.is_bip30_repeat(params, entry.height, entry.hash)

    maxfee = maxfeerate = 0
    minfee = minfeerate = MAX_MONEY
    total_out = totalfee = inputs = maxtxsize = outputs = 0
    mintxsize = MAX_BLOCK_SERIALIZED_SIZE
    swtotal_size = swtotal_weight = swtxs = total_size = total_weight = 0
    utxos = utxo_size_inc = utxo_size_inc_actual = 0
    fee_array: list[int] = []
    feerate_array: list[tuple[int, int]] = []
    txsize_array: list[int] = []

    for i, tx in enumerate(block.txs):
        outputs += len(tx.outputs)
        tx_total_out = 0
        for txout in tx.outputs:
            tx_total_out += txout.value
            size = _out_size(txout.script_pubkey) + PER_UTXO_OVERHEAD
            utxo_size_inc += size
            if entry.height == 0 or (bip30_repeat and tx.is_coinbase()):
                continue
            if is_unspendable(txout.script_pubkey):
                continue
            utxos += 1
            utxo_size_inc_actual += size
        if tx.is_coinbase():
            continue
        inputs += len(tx.inputs)
        total_out += tx_total_out
        tx_size = tx.total_size()
        txsize_array.append(tx_size)
        maxtxsize = max(maxtxsize, tx_size)
        mintxsize = min(mintxsize, tx_size)
        total_size += tx_size
        weight = tx.weight()
        total_weight += weight
        if tx.has_witness():
            swtxs += 1
            swtotal_size += tx_size
            swtotal_weight += weight
        tx_total_in = 0
        for coin in undo[i - 1]:
            tx_total_in += coin.txout.value
            prev_size = _out_size(coin.txout.script_pubkey) + PER_UTXO_OVERHEAD
            utxo_size_inc -= prev_size
            utxo_size_inc_actual -= prev_size
        txfee = tx_total_in - tx_total_out
        fee_array.append(txfee)
        maxfee = max(maxfee, txfee)
        minfee = min(minfee, txfee)
        totalfee += txfee
        feerate = (txfee * 4) // weight if weight else 0
        feerate_array.append((feerate, weight))
        maxfeerate = max(maxfeerate, feerate)
        minfeerate = min(minfeerate, feerate)

    n_txs = len(block.txs)
    everything: dict[str, Any] = {
        "avgfee": totalfee // (n_txs - 1) if n_txs > 1 else 0,
        "avgfeerate": (totalfee * 4) // total_weight if total_weight else 0,
        "avgtxsize": total_size // (n_txs - 1) if n_txs > 1 else 0,
        "blockhash": entry.header.hash_hex,
        "feerate_percentiles": _percentiles_by_weight(feerate_array, total_weight),
        "height": entry.height,
        "ins": inputs,
        "maxfee": maxfee,
        "maxfeerate": maxfeerate,
        "maxtxsize": maxtxsize,
        "medianfee": _truncated_median(fee_array),
        "mediantime": entry.median_time_past(),
        "mediantxsize": _truncated_median(txsize_array),
        "minfee": 0 if minfee == MAX_MONEY else minfee,
        "minfeerate": 0 if minfeerate == MAX_MONEY else minfeerate,
        "mintxsize": 0 if mintxsize == MAX_BLOCK_SERIALIZED_SIZE else mintxsize,
        "outs": outputs,
        "subsidy": block_subsidy(entry.height, params),
        "swtotal_size": swtotal_size,
        "swtotal_weight": swtotal_weight,
        "swtxs": swtxs,
        "time": entry.header.time,
        "total_out": total_out,
        "total_size": total_size,
        "total_weight": total_weight,
        "totalfee": totalfee,
        "txs": n_txs,
        "utxo_increase": outputs - inputs,
        "utxo_size_inc": utxo_size_inc,
        "utxo_increase_actual": utxos - inputs,
        "utxo_size_inc_actual": utxo_size_inc_actual,
    }
    if not selected:
        return everything
    out: dict[str, Any] = {}
    for name in selected:
        if name not in everything:
            raise RpcError(RPC_INVALID_PARAMETER, f"Invalid selected statistic '{name}'")
        out[name] = everything[name]
    return out


@rpc_method(
    "getchaintxstats",
    "blockchain",
    [
        Param(
            "nblocks", int, None, help="Size of the window in number of blocks (default: one month)"
        ),
        Param("blockhash", str, None, help="The hash of the block that ends the window."),
    ],
    result_help="time, txcount, window_final_block_hash, window_final_block_height, "
    "window_block_count, window_interval, window_tx_count, txrate",
)
def getchaintxstats(
    node: ChainNode, nblocks: int | None = None, blockhash: str | None = None
) -> dict[str, Any]:
    """Compute statistics about the total number and rate of transactions in the chain."""
    chain = node.chain
    if blockhash is None:
        entry = chain.tip
    else:
        entry = lookup_block(node, blockhash)
        if not chain.contains(entry):
            raise RpcError(RPC_INVALID_PARAMETER, "Block is not in main chain")
    if nblocks is None:
        count = 30 * 24 * 60 * 60 // node.params.pow_target_spacing
        count = max(0, min(count, entry.height - 1))
    else:
        count = nblocks
        if count < 0 or (count > 0 and count >= entry.height):
            raise RpcError(
                RPC_INVALID_PARAMETER,
                "Invalid block count: should be between 0 and the block's height - 1",
            )
    past = entry.ancestor(entry.height - count)
    interval = entry.median_time_past() - past.median_time_past()
    final_count = chain_tx_count(entry)
    out: dict[str, Any] = {"time": entry.header.time}
    if final_count:
        out["txcount"] = final_count
    out["window_final_block_hash"] = entry.header.hash_hex
    out["window_final_block_height"] = entry.height
    out["window_block_count"] = count
    if count > 0:
        out["window_interval"] = interval
        past_count = chain_tx_count(past)
        if final_count and past_count:
            window_tx_count = final_count - past_count
            out["window_tx_count"] = window_tx_count
            if interval > 0:
                out["txrate"] = window_tx_count / interval
    return out


# -- deployments -------------------------------------------------------------------------------

_BURIED = (
    ("bip34", "bip34_height"),
    ("bip66", "bip66_height"),
    ("bip65", "bip65_height"),
    ("csv", "csv_height"),
    ("segwit", "segwit_height"),
)


class _Bip9:
    """BIP9 queries along one chain (Core's ``VersionBitsCache`` for one deployment)."""

    def __init__(self, node: ChainNode, entry: BlockIndexEntry, deployment: Deployment) -> None:
        self.at = _block_view(node, entry)
        self.deployment = deployment
        self.cache: dict[int, ThresholdState] = {}

    def state(self, prev_height: int) -> ThresholdState:
        """The state of the block after the one at ``prev_height`` (-1: the genesis block)."""
        at = self.at
        return deployment_state(
            self.deployment,
            prev_height,
            lambda h: at(h).median_time_past(),
            lambda h: at(h).header.version,
            self.cache,
        )

    def since(self, prev_height: int) -> int:
        """Core's ``StateSinceHeight``: the first height of the current state's run."""
        d = self.deployment
        if d.start_time in (dep.ALWAYS_ACTIVE, dep.NEVER_ACTIVE):
            return 0
        initial = self.state(prev_height)
        if initial is ThresholdState.DEFINED:
            return 0
        period = d.period
        h = prev_height - ((prev_height + 1) % period)
        parent = h - period
        while parent >= 0 and self.state(parent) is initial:
            h = parent
            parent = h - period
        return h + 1

    def statistics(self, height: int) -> tuple[int, int, int, bool, str]:
        """(elapsed, count, threshold, possible, signalling) for the period of ``height``."""
        d = self.deployment
        in_period = 1 + height % d.period
        marks = []
        for h in range(height - in_period + 1, height + 1):
            marks.append(dep.signals(self.at(h).header.version, d))
        count = sum(marks)
        possible = (d.period - d.threshold) >= (len(marks) - count)
        return len(marks), count, d.threshold, possible, "".join("#" if m else "-" for m in marks)


def deployment_info(node: ChainNode, entry: BlockIndexEntry) -> dict[str, Any]:
    """Core's ``DeploymentInfo``: buried deployments, then the BIP9 ones."""
    params = node.params
    out: dict[str, Any] = {}
    for name, attr in _BURIED:
        height = getattr(params, attr)
        out[name] = {"type": "buried", "active": entry.height + 1 >= height, "height": height}
    names = ["testdummy", "taproot"]
    names += [n for n in params.deployments if n not in names]
    for name in names:
        d = params.deployments.get(name)
        if d is None or d.start_time == dep.NEVER_ACTIVE:
            continue
        bits = _Bip9(node, entry, d)
        nxt = bits.state(entry.height)
        cur = bits.state(entry.height - 1)
        signalling = cur in (ThresholdState.STARTED, ThresholdState.LOCKED_IN)
        bip9: dict[str, Any] = {}
        if signalling:
            bip9["bit"] = d.bit
        bip9["start_time"] = d.start_time
        bip9["timeout"] = d.timeout
        bip9["min_activation_height"] = d.min_activation_height
        bip9["status"] = cur.value
        bip9["since"] = bits.since(entry.height - 1)
        bip9["status_next"] = nxt.value
        if signalling:
            elapsed, count, threshold, possible, marks = bits.statistics(entry.height)
            stats: dict[str, Any] = {"period": d.period, "elapsed": elapsed, "count": count}
            if cur is not ThresholdState.LOCKED_IN:
                stats["threshold"] = threshold
                stats["possible"] = possible
            bip9["statistics"] = stats
            bip9["signalling"] = marks
        info: dict[str, Any] = {"type": "bip9"}
        if nxt is ThresholdState.ACTIVE:
            info["height"] = bits.since(entry.height)
        info["active"] = nxt is ThresholdState.ACTIVE
        info["bip9"] = bip9
        out[name] = info
    return out


@rpc_method(
    "getdeploymentinfo",
    "blockchain",
    [Param("blockhash", str, None, help="The block hash at which to query deployment state")],
    result_help="hash, height, deployments {name: {type, height, active, bip9}}",
)
def getdeploymentinfo(node: ChainNode, blockhash: str | None = None) -> dict[str, Any]:
    """Returns an object containing various state info regarding deployments of consensus
    changes."""
    entry = node.chain.tip if blockhash is None else lookup_block(node, blockhash)
    return {
        "hash": entry.header.hash_hex,
        "height": entry.height,
        "deployments": deployment_info(node, entry),
    }


# -- verifychain -------------------------------------------------------------------------------


def _disconnect(
    view: CoinsOverlay, block: Block, entry: BlockIndexEntry, undo: Sequence[Sequence[SpentCoin]]
) -> str | None:
    """Core's ``DisconnectBlock`` into ``view``; a reason when the set is inconsistent."""
    if len(undo) != len(block.txs) - 1:
        return "block and undo data inconsistent"
    clean = True
    for i in range(len(block.txs) - 1, -1, -1):
        tx = block.txs[i]
        txid = tx.txid
        for n, out in enumerate(tx.outputs):
            if is_unspendable(out.script_pubkey):
                continue
            coin = view.spend(coin_key(txid, n))
            if (
                coin is None
                or coin.txout != out
                or coin.height != entry.height
                or coin.coinbase != (i == 0)
            ):
                clean = False
        if i > 0:
            spent = undo[i - 1]
            if len(spent) != len(tx.inputs):
                return "transaction and undo data inconsistent"
            for txin, coin in zip(tx.inputs, spent, strict=True):
                key = coin_key(txin.prevout.txid, txin.prevout.index)
                if view.have(key):
                    clean = False
                view.add(key, coin)
    return None if clean else "inconsistent database"


def verify_chain(node: ChainNode, level: int, depth: int) -> tuple[bool, str]:
    """Core's ``CVerifyDB::VerifyDB`` over the last ``depth`` blocks: (ok, reason)."""
    chain = node.chain
    level = max(0, min(4, level))
    if depth <= 0 or depth > chain.height:
        depth = chain.height
    view = CoinsOverlay(chain)
    disconnected: list[tuple[BlockIndexEntry, Block]] = []
    for entry in reversed(chain.chain[chain.height - depth + 1 :]):
        if entry.height == 0:
            break
        try:
            block = chain.read_block(entry)
        except ChainError as err:
            return False, f"block {entry.header.hash_hex} at height {entry.height}: {err}"
        if level >= 1:
            try:
                chain.check_block(block)
            except RuleError as err:
                where = f"{entry.height}, hash={entry.header.hash_hex}"
                return False, f"found bad block at {where} ({err})"
        undo: list[list[SpentCoin]] | None = None
        if level >= 2 and entry.undo_pos is not None:
            try:
                undo = decode_block_undo(chain.blocks.read_undo(entry.undo_pos, entry.hash))
            except (ChainError, DecodeError, OSError) as err:
                return False, f"found bad undo data at {entry.height} ({err})"
        if level >= 3:
            if undo is None:
                return False, f"no undo data for block at {entry.height}"
            reason = _disconnect(view, block, entry, undo)
            if reason is not None:
                return False, f"{reason} at {entry.height}, hash={entry.header.hash_hex}"
            disconnected.append((entry, block))
    if level >= 4 and disconnected:
        validator = BlockValidator(
            cast(Any, ScratchChain(chain, view)),
            chain.validator.assume_valid,
            chain.validator.clock,
        )
        for entry, block in reversed(disconnected):
            try:
                validator.connect_block(block, entry)
            except RuleError as err:
                where = f"{entry.height}, hash={entry.header.hash_hex}"
                return False, f"found unconnectable block at {where} ({err})"
    return True, ""


@rpc_method(
    "verifychain",
    "blockchain",
    [
        Param(
            "checklevel", int, None, help="How thorough the block verification is (0-4, default 3)"
        ),
        Param("nblocks", int, None, help="The number of blocks to check (default 6, 0=all)"),
    ],
    result_help="true|false verification finished successfully",
)
def verifychain(node: ChainNode, checklevel: int | None = None, nblocks: int | None = None) -> bool:
    """Verifies blockchain database.

    Level 0 reads the blocks, 1 checks them, 2 reads their undo data, 3 disconnects them in a
    scratch view of the UTXO set checking it is consistent, 4 reconnects them there with full
    validation."""
    level = DEFAULT_CHECKLEVEL if checklevel is None else checklevel
    depth = DEFAULT_CHECKBLOCKS if nblocks is None else nblocks
    ok, reason = verify_chain(node, level, depth)
    if not ok:
        log.warning("verifychain: %s", reason)
    return ok


# -- chain control -----------------------------------------------------------------------------


def _control(node: ChainNode, blockhash: str, action: Callable[[bytes], None]) -> None:
    entry = lookup_block(node, blockhash)
    try:
        action(entry.hash)
    except ChainError as err:
        raise RpcError(RPC_DATABASE_ERROR, str(err)) from None
    except RuleError as err:
        raise RpcError(RPC_DATABASE_ERROR, str(err)) from None


@rpc_method(
    "invalidateblock",
    "blockchain",
    [Param("blockhash", str, help="the hash of the block to mark as invalid")],
    result_help="null",
)
def invalidateblock(node: ChainNode, blockhash: str) -> None:
    """Permanently marks a block as invalid, as if it violated a consensus rule."""
    _control(node, blockhash, node.chain.invalidate_block)


@rpc_method(
    "reconsiderblock",
    "blockchain",
    [Param("blockhash", str, help="the hash of the block to reconsider")],
    result_help="null",
)
def reconsiderblock(node: ChainNode, blockhash: str) -> None:
    """Removes invalidity status of a block, its ancestors and its descendants, reconsider them
    for activation. This can be used to undo the effects of invalidateblock."""
    _control(node, blockhash, node.chain.reconsider_block)


@rpc_method(
    "preciousblock",
    "blockchain",
    [Param("blockhash", str, help="the hash of the block to mark as precious")],
    result_help="null",
)
def preciousblock(node: ChainNode, blockhash: str) -> None:
    """Treats a block as if it were received before others with the same work.
    A later preciousblock call can override the effect of an earlier one.
    The effects of preciousblock are not retained across restarts."""
    _control(node, blockhash, node.chain.precious_block)


# -- waiting for blocks ------------------------------------------------------------------------


def _check_timeout(timeout: int) -> None:
    if timeout < 0:
        raise RpcError(RPC_MISC_ERROR, "Negative timeout")


async def wait_for_tip(
    node: ChainNode, done: Callable[[BlockIndexEntry], bool], timeout_ms: int
) -> BlockIndexEntry:
    """Wait until ``done(tip)`` or ``timeout_ms`` (0: no timeout); returns the tip then."""
    chain = node.chain
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    def on_tip(_entry: BlockIndexEntry) -> None:
        loop.call_soon_threadsafe(event.set)

    chain.events.tip_changed.append(on_tip)
    deadline = loop.time() + timeout_ms / 1000 if timeout_ms else None
    try:
        while True:
            event.clear()
            if done(chain.tip):
                break
            if deadline is None:
                await event.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                break
    finally:
        chain.events.tip_changed.remove(on_tip)
    return chain.tip


def _tip_json(entry: BlockIndexEntry) -> dict[str, Any]:
    return {"hash": entry.header.hash_hex, "height": entry.height}


@rpc_method(
    "waitfornewblock",
    "blockchain",
    [
        Param(
            "timeout",
            int,
            0,
            help="Time in milliseconds to wait for a response. 0 indicates no timeout.",
        ),
        Param("current_tip", str, None, help="Method waits for the chain tip to differ from this."),
    ],
    result_help="{hash, height}",
)
async def waitfornewblock(
    node: ChainNode, timeout: int = 0, current_tip: str | None = None
) -> dict[str, Any]:
    """Waits for any new block and returns useful info about it.
    Returns the current block on timeout or exit."""
    _check_timeout(timeout)
    start = node.chain.tip.hash if current_tip is None else parse_hash(current_tip, "current_tip")
    tip = await wait_for_tip(node, lambda t: t.hash != start, timeout)
    return _tip_json(tip)


@rpc_method(
    "waitforblock",
    "blockchain",
    [
        Param("blockhash", str, help="Block hash to wait for."),
        Param(
            "timeout",
            int,
            0,
            help="Time in milliseconds to wait for a response. 0 indicates no timeout.",
        ),
    ],
    result_help="{hash, height}",
)
async def waitforblock(node: ChainNode, blockhash: str, timeout: int = 0) -> dict[str, Any]:
    """Waits for a specific new block and returns useful info about it.
    Returns the current block on timeout or exit."""
    want = parse_hash(blockhash, "blockhash")
    _check_timeout(timeout)
    tip = await wait_for_tip(node, lambda t: t.hash == want, timeout)
    return _tip_json(tip)


@rpc_method(
    "waitforblockheight",
    "blockchain",
    [
        Param("height", int, help="Block height to wait for."),
        Param(
            "timeout",
            int,
            0,
            help="Time in milliseconds to wait for a response. 0 indicates no timeout.",
        ),
    ],
    result_help="{hash, height}",
)
async def waitforblockheight(node: ChainNode, height: int, timeout: int = 0) -> dict[str, Any]:
    """Waits for (at least) block height and returns the height and hash of the current tip.
    Returns the current block on timeout or exit."""
    _check_timeout(timeout)
    tip = await wait_for_tip(node, lambda t: t.height >= height, timeout)
    return _tip_json(tip)


# -- indexes -----------------------------------------------------------------------------------


@rpc_method(
    "getindexinfo",
    "util",
    [Param("index_name", str, None, help="Filter results for an index with a specific name.")],
    result_help="{name: {synced, best_block_height}}",
)
def getindexinfo(node: ChainNode, index_name: str | None = None) -> dict[str, Any]:
    """Returns the status of one or all available indices currently running in the node."""
    out: dict[str, Any] = {}
    txindex = optional_txindex(node) if node.config.txindex else None
    if txindex is not None:
        out["txindex"] = {
            "synced": bool(getattr(txindex, "synced", True)),
            "best_block_height": int(getattr(txindex, "best_block_height", node.chain.height)),
        }
    if index_name is not None:
        return {k: v for k, v in out.items() if k == index_name}
    return out


__all__ = [
    "block_to_json",
    "chain_tx_count",
    "deployment_info",
    "difficulty",
    "header_to_json",
    "lookup_block",
    "parse_hash_or_height",
    "tx_to_json",
    "verify_chain",
    "wait_for_tip",
]
