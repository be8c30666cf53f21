"""Regtest block generation: generatetoaddress, generatetodescriptor, generateblock.

Layer 4. Blocks are built the way Core's miner builds them: the parent is the tip, the time is
``max(median time past + 1, now)`` (now from the chain's clock), the bits are what the chain
expects for that time, the version carries the BIP9 bits of deployments being signalled, the
coinbase starts with the BIP34 height and pays the subsidy plus fees, a witness commitment is
always added once segwit is active; the nonce is ground, then the block goes through
``chain.accept_block`` like any other.

Only on regtest (Core's old ``generate`` answered "This method can only be used on regtest",
-32601, elsewhere; today's Core leaves these methods ungated but they are useless off regtest).
Blocks from ``generatetoaddress``/``generatetodescriptor`` hold only the coinbase: there is no
mempool to take transactions from yet. ``generateblock`` takes raw transactions; txids would
need the mempool and are refused ("not in mempool").
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any

from peercash.chain.coins import coin_key
from peercash.chain.index import FAILED_MASK, HAVE_DATA, BlockIndexEntry
from peercash.consensus import deployments as dep
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.pow import bits_to_target
from peercash.consensus.primitives import Block, Header, Tx, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import assemble_block, coinbase_tx

from .context import ChainNode, optional_mempool
from .rawtransactions import decode_hex_tx
from .registry import (
    INT32,
    RPC_DESERIALIZATION_ERROR,
    RPC_INTERNAL_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_VERIFY_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import DescriptorError, address_to_script, is_hex, parse_descriptor

DEFAULT_MAX_TRIES = 1_000_000


def _require_regtest(node: ChainNode) -> None:
    if node.params.name != "regtest":
        raise RpcError(RPC_METHOD_NOT_FOUND, "This method can only be used on regtest")


def block_version(node: ChainNode, prev: BlockIndexEntry) -> int:
    """Core's ``ComputeBlockVersion`` for the block after ``prev`` (on the active chain)."""
    active = node.chain.chain
    states = []
    for d in node.params.deployments.values():
        state = dep.deployment_state(
            d,
            prev.height,
            lambda h: active[h].median_time_past(),
            lambda h: active[h].header.version,
        )
        states.append((d, state))
    return dep.compute_block_version(states)


def build_block(node: ChainNode, script_pubkey: bytes, txs: list[Tx], fees: int) -> Block:
    """An unsolved block on the tip paying subsidy + ``fees`` to ``script_pubkey``."""
    chain = node.chain
    params = node.params
    prev = chain.tip
    height = prev.height + 1
    now = int(chain.validator.clock())
    block_time = max(prev.median_time_past() + 1, now)
    bits = chain.validator.expected_bits(prev, block_time)
    value = block_subsidy(height, params) + fees
    coinbase = coinbase_tx(height, [TxOut(value, script_pubkey)])
    return assemble_block(
        prev.hash,
        block_time,
        bits,
        coinbase,
        txs,
        version=block_version(node, prev),
        witness_commitment=dep.segwit_active(params, height),
    )


def grind(block: Block, max_tries: int) -> tuple[Block | None, int]:
    """Try nonces until the header meets its target: (solved block or None, tries used)."""
    target, _, _ = bits_to_target(block.header.bits)
    h = block.header
    tries = 0
    for nonce in range(1 << 32):
        if tries >= max_tries:
            return None, tries
        tries += 1
        header = Header(h.version, h.prev_hash, h.merkle_root, h.time, h.bits, nonce)
        if int.from_bytes(header.hash, "little") <= target:
            return Block(header, block.txs), tries
    return None, tries


def chain_lock(node: ChainNode) -> AbstractContextManager[Any]:
    """The node's chain lock (a no-op for stand-ins that have none)."""
    lock = getattr(node, "chain_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def _shutting_down(node: ChainNode) -> bool:
    return bool(getattr(node, "shutting_down", False))


def check_block_time(node: ChainNode, block: Block) -> None:
    """Refuse to mine a block the node itself would reject as too far in the future.

    Each block's time is at least its parent's median time past + 1, so a long burst of regtest
    blocks runs ahead of the clock (about a second per six blocks); past two hours ahead it
    must stop, or the chain ends on a tip that no later block can follow until the clock
    catches up."""
    chain = node.chain
    limit = int(chain.validator.clock()) + node.params.max_future_block_time
    if block.header.time > limit:
        raise RpcError(
            RPC_MISC_ERROR,
            f"Cannot mine a block at height {chain.height + 1}: its time would be "
            f"{block.header.time - limit + node.params.max_future_block_time} s ahead of this "
            "node's clock, more than the 7200 s a block may be (regtest blocks run ahead of the "
            "clock when many are mined at once); mine fewer blocks or wait",
        )


def submit_block(node: ChainNode, block: Block) -> BlockIndexEntry:
    """Hand a block to the chain; a rejection becomes ``RPC_VERIFY_ERROR``. The caller makes
    it durable (``chain.flush_blocks``) before it reports the block."""
    chain = node.chain
    try:
        entry = chain.accept_block(block)
    except RuleError as err:
        raise RpcError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {err}") from None
    if entry is None:
        raise RpcError(RPC_INTERNAL_ERROR, "ProcessNewBlock, block not accepted")
    failed = chain.last_error
    if failed is not None and failed[0] is entry:
        raise RpcError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {failed[1]}")
    return entry


def generate_blocks(
    node: ChainNode, script_pubkey: bytes, nblocks: int, max_tries: int
) -> list[str]:
    """Core's ``generateBlocks``: mine up to ``nblocks`` on the tip, return their hashes.

    Takes the chain lock block by block (the method is registered with ``lock=False``), so
    other calls are answered between blocks; every block reported is on disk and in the block
    index when this returns, and so are blocks mined before an error."""
    _require_regtest(node)
    hashes: list[str] = []
    tries_left = max_tries
    try:
        for _ in range(max(0, nblocks)):
            if tries_left <= 0 or _shutting_down(node):
                break
            with chain_lock(node):
                block = build_block(node, script_pubkey, [], 0)
                check_block_time(node, block)
                solved, used = grind(block, tries_left)
                tries_left -= used
                if solved is None:
                    break
                submit_block(node, solved)
            hashes.append(solved.hash_hex)
    finally:
        if hashes:
            with chain_lock(node):
                node.chain.flush_blocks()
    return hashes


@rpc_method(
    "generatetoaddress",
    "generating",
    [
        Param("nblocks", int, help="How many blocks are generated.", int_range=INT32),
        Param("address", str, help="The address to send the newly generated bitcoin to."),
        Param(
            "maxtries", int, DEFAULT_MAX_TRIES, help="How many iterations to try.", int_range=INT32
        ),
    ],
    result_help="[blockhash, ...] hashes of blocks generated",
    lock=False,
)
def generatetoaddress(
    node: ChainNode, nblocks: int, address: str, maxtries: int = DEFAULT_MAX_TRIES
) -> list[str]:
    """Mine to a specified address and return the block hashes."""
    _require_regtest(node)
    script = address_to_script(address, node.params)
    if script is None:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address")
    return generate_blocks(node, script, nblocks, maxtries)


@rpc_method(
    "generatetodescriptor",
    "generating",
    [
        Param("num_blocks", int, help="How many blocks are generated.", int_range=INT32),
        Param("descriptor", str, help="The descriptor to send the newly generated bitcoin to."),
        Param(
            "maxtries", int, DEFAULT_MAX_TRIES, help="How many iterations to try.", int_range=INT32
        ),
    ],
    result_help="[blockhash, ...] hashes of blocks generated",
    lock=False,
)
def generatetodescriptor(
    node: ChainNode, num_blocks: int, descriptor: str, maxtries: int = DEFAULT_MAX_TRIES
) -> list[str]:
    """Mine to a specified descriptor and return the block hashes."""
    _require_regtest(node)
    try:
        script = parse_descriptor(descriptor, node.params)
    except DescriptorError as err:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, str(err)) from None
    return generate_blocks(node, script, num_blocks, maxtries)


def _block_fees(node: ChainNode, txs: list[Tx]) -> int:
    """The fees of ``txs`` in block order, their inputs from the UTXO set or earlier txs."""
    chain = node.chain
    created: dict[bytes, SpentCoin] = {}
    fees = 0
    for tx in txs:
        total_in = 0
        for txin in tx.inputs:
            key = coin_key(txin.prevout.txid, txin.prevout.index)
            coin = created.pop(key, None) or chain.get_coin(txin.prevout.txid, txin.prevout.index)
            if coin is None:
                raise RpcError(
                    RPC_VERIFY_ERROR,
                    "TestBlockValidity failed: bad-txns-inputs-missingorspent, CheckTxInputs: "
                    f"inputs missing/spent in transaction {tx.txid_hex}",
                )
            total_in += coin.txout.value
        fees += total_in - sum(o.value for o in tx.outputs)
        for n, out in enumerate(tx.outputs):
            created[coin_key(tx.txid, n)] = SpentCoin(out, chain.height + 1, False)
    return fees


@rpc_method(
    "generateblock",
    "generating",
    [
        Param("output", str, help="The address or descriptor to send the new bitcoin to."),
        Param("transactions", list, help="Hex strings: txids or raw transactions."),
        Param("submit", bool, True, help="Submit the block, or return it as hex."),
    ],
    result_help="{hash, hex (if submit=false)}",
)
def generateblock(
    node: ChainNode, output: str, transactions: list[Any], submit: bool = True
) -> dict[str, Any]:
    """Mine a set of ordered transactions to a specified address or descriptor and return the
    block hash."""
    _require_regtest(node)
    params = node.params
    try:
        script = parse_descriptor(output, params)
    except DescriptorError:
        found = address_to_script(output, params)
        if found is None:
            raise RpcError(
                RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address or descriptor"
            ) from None
        script = found
    txs: list[Tx] = []
    pool = optional_mempool(node)
    for item in transactions:
        text = item if isinstance(item, str) else str(item)
        if len(text) == 64 and is_hex(text):
            tx = pool.get(bytes.fromhex(text)[::-1]) if pool is not None else None
            if tx is None:
                raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {text} not in mempool.")
            txs.append(tx)
            continue
        decoded = decode_hex_tx(text)
        if decoded is None:
            raise RpcError(
                RPC_DESERIALIZATION_ERROR,
                f"Transaction decode failed for {text}. Make sure the tx has at least one input.",
            )
        txs.append(decoded)
    fees = _block_fees(node, txs)
    block = build_block(node, script, txs, fees)
    check_block_time(node, block)
    solved, _ = grind(block, DEFAULT_MAX_TRIES)
    if solved is None:
        raise RpcError(RPC_MISC_ERROR, "Failed to make block.")
    result: dict[str, Any] = {"hash": solved.hash_hex}
    if not submit:
        result["hex"] = solved.serialize().hex()
        return result
    submit_block(node, solved)
    node.chain.flush_blocks()
    return result


@rpc_method(
    "submitblock",
    "mining",
    [
        Param("hexdata", str, help="the hex-encoded block data to submit"),
        Param("dummy", str, "ignored", help="dummy value, for compatibility with BIP22."),
    ],
    result_help="null when the block was accepted; otherwise a string: duplicate, "
    "duplicate-invalid, inconclusive or the reject reason",
)
def submitblock(node: ChainNode, hexdata: str, dummy: str = "ignored") -> str | None:
    """Attempts to submit new block to network.
    See https://en.bitcoin.it/wiki/BIP_0022 for full specification."""
    try:
        block = Block.parse(bytes.fromhex(hexdata))
    except (ValueError, DecodeError):
        raise RpcError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
    if not block.txs or not block.txs[0].is_coinbase():
        raise RpcError(RPC_DESERIALIZATION_ERROR, "Block does not start with a coinbase")
    chain = node.chain
    existing = chain.index.get(block.hash)
    if existing is not None and existing.status & HAVE_DATA:
        return "duplicate-invalid" if existing.status & FAILED_MASK else "duplicate"
    chain.last_error = None
    try:
        entry = chain.accept_block(block)
    except RuleError as err:
        return err.code
    if entry is None:
        return "inconclusive"  # the parent is unknown: kept as an orphan
    chain.flush_blocks()
    failed = chain.last_error
    if failed is not None and failed[0] is entry:
        return failed[1].code
    return None


@rpc_method(
    "submitheader",
    "mining",
    [Param("hexdata", str, help="the hex-encoded block header data")],
    result_help="null (the header was accepted)",
)
def submitheader(node: ChainNode, hexdata: str) -> None:
    """Decode the given hexdata as a header and submit it as a candidate chain tip if valid.
    Throws when the header is invalid."""
    try:
        raw = bytes.fromhex(hexdata)
        header = Header.parse(raw)
    except (ValueError, DecodeError):
        raise RpcError(RPC_DESERIALIZATION_ERROR, "Block header decode failed") from None
    chain = node.chain
    if chain.index.get(header.prev_hash) is None:
        raise RpcError(
            RPC_VERIFY_ERROR, f"Must submit previous header ({header.prev_hash[::-1].hex()}) first"
        )
    try:
        chain.accept_header(header)
    except RuleError as err:
        raise RpcError(RPC_VERIFY_ERROR, err.code) from None
    chain.flush_blocks()


__all__ = [
    "block_version",
    "build_block",
    "generate_blocks",
    "generateblock",
    "generatetoaddress",
    "generatetodescriptor",
    "grind",
    "submit_block",
    "submitblock",
    "submitheader",
]
