"""Raw transaction RPCs: getrawtransaction, decoderawtransaction, decodescript,
createrawtransaction; and ``tx_to_json``, Core's ``TxToUniv``, for every method that prints a
transaction (``getblock`` verbosity 2 and 3, REST).

Layer 4. Reads the chain through the ``ChainNode`` facade only. Errors are ``RpcError`` with
Core's codes and messages. Amounts are ``Decimal`` (see ``util``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peercash.chain.errors import ChainError
from peercash.chain.index import HAVE_DATA, HAVE_UNDO, BlockIndexEntry
from peercash.chain.undo import decode_block_undo
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.errors import DecodeError
from peercash.consensus.hashing import hash160, sha256
from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import Block, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.asm import script_to_asm
from peercash.consensus.script.opcodes import Op, is_op_success
from peercash.consensus.script.script import MAX_SCRIPT_SIZE, iter_ops, push_data
from peercash.consensus.serialize import Reader

from .context import ChainNode, optional_mempool, optional_txindex
from .registry import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INTERNAL_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import (
    MULTISIG,
    NONSTANDARD,
    PUBKEY,
    PUBKEYHASH,
    amount_from_value,
    btc,
    decode_destination,
    expect_int,
    has_valid_ops,
    hash_hex,
    is_hex,
    json_type,
    p2sh_script,
    parse_hash,
    parse_hex,
    parse_verbosity,
    script_address,
    script_to_json,
    solver,
    witness_script,
)

SEQUENCE_FINAL = 0xFFFFFFFF
MAX_SEQUENCE_NONFINAL = SEQUENCE_FINAL - 1
MAX_BIP125_RBF_SEQUENCE = SEQUENCE_FINAL - 2
LOCKTIME_MAX = 0xFFFFFFFF
TX_MIN_STANDARD_VERSION = 1
TX_MAX_STANDARD_VERSION = 3
DEFAULT_RAWTX_VERSION = 2


# -- JSON builders -----------------------------------------------------------------------------


def tx_to_json(
    tx: Tx,
    params: NetworkParams,
    block_hash: bytes | None = None,
    include_hex: bool = True,
    prevouts: Sequence[SpentCoin] | None = None,
    *,
    show_prevouts: bool = True,
) -> dict[str, Any]:
    """Core's ``TxToUniv``.

    ``params`` names the network for addresses. ``prevouts``: the coins the inputs spent (from
    undo data, one per input; None for a coinbase or when unknown); when given, ``fee`` is added,
    and with ``show_prevouts`` each input gets its ``prevout`` object (getblock verbosity 3,
    getrawtransaction verbosity 2). ``block_hash`` (wire order) adds ``blockhash``.
    """
    out: dict[str, Any] = {
        "txid": tx.txid_hex,
        "hash": tx.wtxid_hex,
        "version": tx.version,
        "size": tx.total_size(),
        "vsize": tx.vsize(),
        "weight": tx.weight(),
        "locktime": tx.locktime,
    }
    have_undo = prevouts is not None and not tx.is_coinbase()
    if have_undo and len(prevouts or ()) != len(tx.inputs):
        raise ValueError("one prevout per input is needed")
    coinbase = tx.is_coinbase()
    vin: list[dict[str, Any]] = []
    total_in = 0
    for i, txin in enumerate(tx.inputs):
        entry: dict[str, Any] = {}
        if coinbase:
            entry["coinbase"] = txin.script_sig.hex()
        else:
            entry["txid"] = txin.prevout.txid_hex
            entry["vout"] = txin.prevout.index
            entry["scriptSig"] = {
                "asm": script_to_asm(txin.script_sig, True),
                "hex": txin.script_sig.hex(),
            }
        if txin.witness:
            entry["txinwitness"] = [item.hex() for item in txin.witness]
        if have_undo:
            assert prevouts is not None
            coin = prevouts[i]
            total_in += coin.txout.value
            if show_prevouts:
                entry["prevout"] = {
                    "generated": bool(coin.coinbase),
                    "height": coin.height,
                    "value": btc(coin.txout.value),
                    "scriptPubKey": script_to_json(coin.txout.script_pubkey, params),
                }
        entry["sequence"] = txin.sequence
        vin.append(entry)
    out["vin"] = vin
    out["vout"] = [
        {"value": btc(o.value), "n": n, "scriptPubKey": script_to_json(o.script_pubkey, params)}
        for n, o in enumerate(tx.outputs)
    ]
    if have_undo:
        out["fee"] = btc(total_in - sum(o.value for o in tx.outputs))
    if block_hash is not None:
        out["blockhash"] = hash_hex(block_hash)
    if include_hex:
        out["hex"] = tx.serialize().hex()
    return out


def block_undo(node: ChainNode, entry: BlockIndexEntry) -> list[list[SpentCoin]] | None:
    """The coins ``entry``'s block spent (per non-coinbase transaction), or None if unknown."""
    if entry.height == 0 or not entry.status & HAVE_UNDO or entry.undo_pos is None:
        return None
    chain = node.chain
    try:
        return decode_block_undo(chain.blocks.read_undo(entry.undo_pos, entry.hash))
    except (ChainError, DecodeError, OSError) as err:
        raise RpcError(
            RPC_INTERNAL_ERROR,
            "Undo data expected but can't be read. This could be due to disk corruption or a "
            f"conflict with a pruning event. ({err})",
        ) from None


def _tx_context(node: ChainNode, result: dict[str, Any], block_hash: bytes | None) -> None:
    """Core's ``TxToJSON`` tail: blockhash, confirmations, time, blocktime."""
    if block_hash is None:
        return
    result["blockhash"] = hash_hex(block_hash)
    chain = node.chain
    entry = chain.index.get(block_hash)
    if entry is None:
        return
    if chain.contains(entry):
        result["confirmations"] = chain.height - entry.height + 1
        result["time"] = entry.header.time
        result["blocktime"] = entry.header.time
    else:
        result["confirmations"] = 0


def _read_block(node: ChainNode, entry: BlockIndexEntry) -> Block:
    try:
        return node.chain.read_block(entry)
    except ChainError:
        raise RpcError(RPC_MISC_ERROR, "Block not found on disk") from None


# -- getrawtransaction -------------------------------------------------------------------------


@rpc_method(
    "getrawtransaction",
    "rawtransactions",
    [
        Param("txid", str, help="The transaction id"),
        Param(
            "verbosity",
            object,
            0,
            help="0 for hex-encoded data, 1 for a JSON object, and 2 for JSON object with fee and "
            "prevout",
        ),
        Param("blockhash", str, None, help="The block in which to look for the transaction"),
    ],
    result_help="the serialized transaction (hex), or an object (see decoderawtransaction) with "
    "in_active_chain, blockhash, confirmations, time, blocktime, and for verbosity 2 fee and "
    "vin[].prevout",
)
def getrawtransaction(
    node: ChainNode, txid: str, verbosity: Any = 0, blockhash: str | None = None
) -> Any:
    """Return the raw transaction data.

    By default this only finds mempool transactions. With a blockhash argument the transaction is
    looked for in that block; with -txindex any transaction in the chain is found."""
    h = parse_hash(txid, "parameter 1")
    chain = node.chain
    genesis = Block.parse(node.params.genesis)
    if h == genesis.header.merkle_root:
        raise RpcError(
            RPC_INVALID_ADDRESS_OR_KEY,
            "The genesis block coinbase is not considered an ordinary transaction and cannot be "
            "retrieved",
        )
    level = parse_verbosity(verbosity, 0, True)
    entry: BlockIndexEntry | None = None
    if blockhash is not None:
        entry = chain.index.get(parse_hash(blockhash, "parameter 3"))
        if entry is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block hash not found")

    tx: Tx | None = None
    found_in: BlockIndexEntry | None = None
    block: Block | None = None
    txindex = optional_txindex(node) if node.config.txindex else None
    if entry is not None:
        if entry.status & HAVE_DATA:
            block = _read_block(node, entry)
            tx = next((t for t in block.txs if t.txid == h), None)
            found_in = entry if tx is not None else None
    else:
        pool = optional_mempool(node)
        if pool is not None:
            tx = pool.get(h)
        if tx is None and txindex is not None:
            hit = txindex.lookup(h)
            if hit:
                found = chain.index.get(hit[0])
                if found is not None and found.status & HAVE_DATA:
                    block = _read_block(node, found)
                    tx = next((t for t in block.txs if t.txid == h), None)
                    found_in = found if tx is not None else None
    if tx is None:
        if entry is not None:
            if not entry.status & HAVE_DATA:
                raise RpcError(RPC_MISC_ERROR, "Block not available")
            message = "No such transaction found in the provided block"
        elif txindex is None:
            message = (
                "No such mempool transaction. Use -txindex or provide a block hash to enable "
                "blockchain transaction queries"
            )
        elif not getattr(txindex, "synced", True):
            message = (
                "No such mempool transaction. Blockchain transactions are still in the process "
                "of being indexed"
            )
        else:
            message = "No such mempool or blockchain transaction"
        raise RpcError(
            RPC_INVALID_ADDRESS_OR_KEY, message + ". Use gettransaction for wallet transactions."
        )

    if level <= 0:
        return tx.serialize().hex()
    result: dict[str, Any] = {}
    if entry is not None:
        result["in_active_chain"] = chain.contains(entry)
    block_hash = found_in.hash if found_in is not None else None
    prevouts: list[SpentCoin] | None = None
    if level >= 2 and found_in is not None and block is not None and not tx.is_coinbase():
        undo = block_undo(node, found_in)
        if undo is not None:
            index = next(i for i, t in enumerate(block.txs) if t.txid == h)
            prevouts = undo[index - 1]
    result.update(tx_to_json(tx, node.params, None, True, prevouts))
    _tx_context(node, result, block_hash)
    return result


# -- decoderawtransaction ----------------------------------------------------------------------


def _scripts_sane(tx: Tx) -> bool:
    """Core's ``CheckTxScriptsSanity``: every script parses into known opcodes."""
    if not tx.is_coinbase():
        for txin in tx.inputs:
            if not has_valid_ops(txin.script_sig) or len(txin.script_sig) > MAX_SCRIPT_SIZE:
                return False
    return all(
        has_valid_ops(o.script_pubkey) and len(o.script_pubkey) <= MAX_SCRIPT_SIZE
        for o in tx.outputs
    )


def _decode_one(raw: bytes, allow_witness: bool) -> Tx | None:
    r = Reader(raw)
    try:
        tx = Tx.from_reader(r, allow_witness)
        r.expect_end()
    except DecodeError:
        return None
    return tx


def decode_hex_tx(text: str, try_no_witness: bool = True, try_witness: bool = True) -> Tx | None:
    """Core's ``DecodeHexTx``: both serializations, preferring one whose scripts are sane."""
    if not is_hex(text):
        return None
    raw = bytes.fromhex(text)
    extended = _decode_one(raw, True) if try_witness else None
    if extended is not None and _scripts_sane(extended):
        return extended
    legacy = _decode_one(raw, False) if try_no_witness else None
    if legacy is not None and _scripts_sane(legacy):
        return legacy
    return extended if extended is not None else legacy


@rpc_method(
    "decoderawtransaction",
    "rawtransactions",
    [
        Param("hexstring", str, help="The transaction hex string"),
        Param(
            "iswitness",
            bool,
            None,
            help="Whether the transaction hex is a serialized witness transaction (default: "
            "depends on heuristic tests)",
        ),
    ],
    result_help="txid, hash, version, size, vsize, weight, locktime, vin, vout",
)
def decoderawtransaction(
    node: ChainNode, hexstring: str, iswitness: bool | None = None
) -> dict[str, Any]:
    """Return a JSON object representing the serialized, hex-encoded transaction."""
    try_witness = True if iswitness is None else iswitness
    try_no_witness = True if iswitness is None else not iswitness
    tx = decode_hex_tx(hexstring, try_no_witness, try_witness)
    if tx is None:
        raise RpcError(RPC_DESERIALIZATION_ERROR, "TX decode failed")
    return tx_to_json(tx, node.params, None, False)


# -- decodescript ------------------------------------------------------------------------------


def _can_wrap(script: bytes, kind: str) -> bool:
    if kind not in (
        MULTISIG,
        NONSTANDARD,
        PUBKEY,
        PUBKEYHASH,
        "witness_v0_keyhash",
        "witness_v0_scripthash",
    ):
        return False
    if not has_valid_ops(script) or (script and script[0] == Op.OP_RETURN):
        return False
    if len(script) > MAX_SCRIPT_SIZE:
        return False
    return all(
        opcode != Op.OP_CHECKSIGADD and not is_op_success(opcode)
        for opcode, _, _ in iter_ops(script)
    )


@rpc_method(
    "decodescript",
    "rawtransactions",
    [Param("hexstring", str, help="the hex-encoded script")],
    result_help="asm, desc, type, address (if any), p2sh, segwit {asm, hex, type, address, "
    "desc, p2sh-segwit}",
)
def decodescript(node: ChainNode, hexstring: str) -> dict[str, Any]:
    """Decode a hex-encoded script."""
    params = node.params
    script = parse_hex(hexstring, "argument") if hexstring else b""
    result = script_to_json(script, params, include_hex=False)
    kind, solutions = solver(script)
    if not _can_wrap(script, kind):
        return result
    result["p2sh"] = script_address(p2sh_script(hash160(script)), params)
    if kind in (MULTISIG, PUBKEY) and any(len(s) not in (1, 33) for s in solutions):
        return result  # uncompressed keys cannot be used in segwit
    if kind not in (MULTISIG, PUBKEY, NONSTANDARD, PUBKEYHASH):
        return result
    known: dict[bytes, bytes] = {}
    if kind == PUBKEY:
        segwit = witness_script(0, hash160(solutions[0]))
    elif kind == PUBKEYHASH:
        segwit = witness_script(0, solutions[0])
    else:
        program = sha256(script)
        known[program] = script
        segwit = witness_script(0, program)
    inner = script_to_json(segwit, params, scripts=known)
    inner["p2sh-segwit"] = script_address(p2sh_script(hash160(segwit)), params)
    result["segwit"] = inner
    return result


# -- createrawtransaction ----------------------------------------------------------------------


def _parse_inputs(inputs: list[Any], locktime: int, rbf: bool | None) -> list[TxIn]:
    out: list[TxIn] = []
    for item in inputs:
        if not isinstance(item, dict):
            raise RpcError(
                RPC_TYPE_ERROR,
                f"JSON value of type {json_type(item)} is not of expected type object",
            )
        txid = parse_hash(item.get("txid"), "txid")
        vout = item.get("vout")
        if isinstance(vout, bool) or not isinstance(vout, int | float):
            raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, missing vout key")
        n = expect_int(vout)
        if n < 0:
            raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
        if rbf is None or rbf:
            sequence = MAX_BIP125_RBF_SEQUENCE
        elif locktime:
            sequence = MAX_SEQUENCE_NONFINAL
        else:
            sequence = SEQUENCE_FINAL
        seq = item.get("sequence")
        if isinstance(seq, int | float) and not isinstance(seq, bool):
            s = expect_int(seq)
            if not 0 <= s <= SEQUENCE_FINAL:
                raise RpcError(
                    RPC_INVALID_PARAMETER, "Invalid parameter, sequence number is out of range"
                )
            sequence = s
        out.append(TxIn(OutPoint(txid, n), b"", sequence))
    return out


def parse_outputs(outputs: Any, params: NetworkParams) -> list[TxOut]:
    """Core's ``NormalizeOutputs`` + ``ParseOutputs`` + ``AddOutputs``."""
    if outputs is None:
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, output argument must be non-null")
    pairs: list[tuple[str, Any]] = []
    if isinstance(outputs, dict):
        pairs = list(outputs.items())
    elif isinstance(outputs, list):
        for item in outputs:
            if not isinstance(item, dict):
                raise RpcError(
                    RPC_INVALID_PARAMETER,
                    "Invalid parameter, key-value pair not an object as expected",
                )
            if len(item) != 1:
                raise RpcError(
                    RPC_INVALID_PARAMETER,
                    "Invalid parameter, key-value pair must contain exactly one key",
                )
            pairs.extend(item.items())
    else:
        raise RpcError(
            RPC_TYPE_ERROR, f"JSON value of type {json_type(outputs)} is not of expected type array"
        )
    result: list[TxOut] = []
    seen: set[bytes] = set()
    has_data = False
    for name, value in pairs:
        if name == "data":
            if has_data:
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, duplicate key: data")
            has_data = True
            data = parse_hex(value if isinstance(value, str) else str(value), "Data")
            result.append(TxOut(0, bytes((Op.OP_RETURN,)) + push_data(data)))
            continue
        dest = decode_destination(name, params)
        amount = amount_from_value(value)
        script = getattr(dest, "script", None)
        if script is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {name}")
        if script in seen:
            raise RpcError(RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {name}")
        seen.add(script)
        result.append(TxOut(amount, script))
    return result


@rpc_method(
    "createrawtransaction",
    "rawtransactions",
    [
        Param("inputs", list, help="The inputs: [{txid, vout, sequence?}, ...]"),
        Param(
            "outputs",
            object,
            help="The outputs: [{address: amount}, {data: hex}, ...] (an object is accepted too)",
        ),
        Param("locktime", int, 0, help="Raw locktime. Non-0 value also locktime-activates inputs"),
        Param(
            "replaceable",
            bool,
            None,
            help="Marks this transaction as BIP125-replaceable (default: true)",
        ),
        Param("version", int, DEFAULT_RAWTX_VERSION, help="Transaction version"),
    ],
    result_help="hex string of the transaction",
)
def createrawtransaction(
    node: ChainNode,
    inputs: list[Any],
    outputs: Any,
    locktime: int = 0,
    replaceable: bool | None = None,
    version: int = DEFAULT_RAWTX_VERSION,
) -> str:
    """Create a transaction spending the given inputs and creating new outputs.

    Outputs can be addresses or data. Returns the hex-encoded raw transaction; its inputs are not
    signed, and it is neither stored nor sent."""
    if not 0 <= locktime <= LOCKTIME_MAX:
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, locktime out of range")
    if not TX_MIN_STANDARD_VERSION <= version <= TX_MAX_STANDARD_VERSION:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"Invalid parameter, version out of range({TX_MIN_STANDARD_VERSION}"
            f"~{TX_MAX_STANDARD_VERSION})",
        )
    tx_inputs = _parse_inputs(inputs, locktime, replaceable)
    tx_outputs = parse_outputs(outputs, node.params)
    if (
        replaceable
        and tx_inputs
        and not any(i.sequence <= MAX_BIP125_RBF_SEQUENCE for i in tx_inputs)
    ):
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "Invalid parameter combination: Sequence number(s) contradict replaceable option",
        )
    return Tx(version, tx_inputs, tx_outputs, locktime).serialize().hex()


__all__ = [
    "block_undo",
    "createrawtransaction",
    "decode_hex_tx",
    "decoderawtransaction",
    "decodescript",
    "getrawtransaction",
    "parse_outputs",
    "tx_to_json",
]
