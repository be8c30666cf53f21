"""Mining methods: generatetoaddress, generatetodescriptor, generateblock, submitblock,
submitheader, getmininginfo, getnetworkhashps (``getblocktemplate`` is in ``blocktemplate``).

Layer 4. Every block is built by ``peercash.mining.assembler.BlockAssembler``, as Core's miner
builds it: the parent is the tip, the time is ``max(minimum time, now)`` (Core's
``GetMinimumTime``: median time past + 1, and at a retarget no more than 600 s before the
parent; now from the chain's clock), the bits are what the chain expects for that time, the
version carries the BIP9 bits of deployments being signalled, the coinbase starts with the BIP34
height and pays the subsidy plus fees, a witness commitment is always added once segwit is
active. ``generatetoaddress``/``generatetodescriptor`` fill their blocks from the node's mempool
when it is a ``TemplateSource`` (``node.mempool`` with ``chunks_by_feerate``), else they hold only
the coinbase. The nonce is ground, then the block goes through ``chain.accept_block`` like any
other.

The ``generate*`` methods work only on regtest (Core's old ``generate`` answered "This method can
only be used on regtest", -32601, elsewhere; today's Core leaves them ungated but they are useless
off regtest). ``generateblock`` takes raw transactions or txids of pool transactions, checks the
block with Core's ``TestBlockValidity`` (no proof of work, no merkle root) before grinding, and
unlike Core (whose coinbase there claims only the subsidy) pays their fees to its output.

State kept between calls (``MiningState`` on ``node.mining_state``): the last assembled block's
weight and transaction count for ``getmininginfo``, ``getblocktemplate``'s cached template.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, cast

from peercash.chain.coins import coin_key
from peercash.chain.index import FAILED_MASK, HAVE_DATA, BlockIndexEntry
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.pow import bits_to_target
from peercash.consensus.primitives import Block, Header, Tx
from peercash.mempool.pool import MemPool
from peercash.mining.assembler import (
    EMPTY_SOURCE,
    AssemblerOptions,
    BlockAssembler,
    BlockTemplate,
    TemplateSource,
    TemplateTx,
    minimum_time,
    template_tx,
)
from peercash.mining.poolsource import PoolTemplateSource
from peercash.mining.validity import check_block_validity

from .blockchain import _warnings as node_warnings
from .blockchain import difficulty, target_hex
from .context import ChainNode, optional_mempool
from .rawtransactions import decode_hex_tx
from .registry import (
    INT32,
    RPC_DESERIALIZATION_ERROR,
    RPC_INTERNAL_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_VERIFY_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import DescriptorError, address_to_script, btc, is_hex, parse_descriptor

DEFAULT_MAX_TRIES = 1_000_000


def _require_regtest(node: ChainNode) -> None:
    if node.params.name != "regtest":
        raise RpcError(RPC_METHOD_NOT_FOUND, "This method can only be used on regtest")


@dataclass
class MiningState:
    """What the mining methods remember between calls, per node (``node.mining_state``).

    ``last_block_*`` are Core's ``BlockAssembler::m_last_block_*`` (``getmininginfo``);
    ``template*`` is ``getblocktemplate``'s cached template and the pool counter it was built
    at. Read and written with the chain lock held."""

    options: AssemblerOptions
    last_block_weight: int | None = None
    last_block_num_txs: int | None = None
    template: BlockTemplate | None = None
    template_started: float = 0.0
    transactions_updated_last: int = 0
    longpoll_first_check: float = 60.0
    """Seconds a long poll waits before it first looks at the pool counter (Core: a minute)."""
    longpoll_next_check: float = 10.0
    """Seconds between later looks (Core: ten)."""


_STATE_LOCK = threading.Lock()


def assembler_options(node: ChainNode) -> AssemblerOptions:
    """The assembler's options from the node's configuration, where it has them
    (``blockmaxweight``, ``blockreservedweight``, ``blockmintxfee`` in sat/kvB,
    ``blockversion``); Core's defaults otherwise."""
    config = node.config
    defaults = AssemblerOptions()

    def pick(name: str, default: Any) -> Any:
        value = getattr(config, name, None)
        return default if value is None else value

    return AssemblerOptions(
        block_max_weight=int(pick("blockmaxweight", defaults.block_max_weight)),
        block_reserved_weight=int(pick("blockreservedweight", defaults.block_reserved_weight)),
        block_min_fee_rate=int(pick("blockmintxfee", defaults.block_min_fee_rate)),
        block_version=pick("blockversion", None),
    ).clamped()


def mining_state(node: ChainNode) -> MiningState:
    """The node's ``MiningState``, created on first use."""
    state = getattr(node, "mining_state", None)
    if isinstance(state, MiningState):
        return state
    with _STATE_LOCK:
        state = getattr(node, "mining_state", None)
        if not isinstance(state, MiningState):
            state = MiningState(assembler_options(node))
            node.mining_state = state  # type: ignore[attr-defined]
    return state


def _state_text(err: RuleError) -> str:
    """Core's ``BlockValidationState::ToString``: the reject reason, then ", " and the debug
    message when there is one."""
    return f"{err.code}, {err.reason}" if err.reason else err.code


def template_source(node: ChainNode) -> TemplateSource:
    """The node's mempool as a template source, or the empty source while it has none."""
    pool = getattr(node, "mempool", None)
    if pool is not None and callable(getattr(pool, "chunks_by_feerate", None)):
        return cast(TemplateSource, pool)
    if isinstance(pool, MemPool):
        # The pool's clusters, kept by a listener from the first template on.
        source = getattr(node, "pool_template_source", None)
        if not isinstance(source, PoolTemplateSource) or source.pool is not pool:
            source = PoolTemplateSource(pool)
            node.pool_template_source = source  # type: ignore[attr-defined]
        return source
    return EMPTY_SOURCE


def transactions_updated(source: object) -> int:
    """The source's transactions-updated counter (0 for a source without one)."""
    counter = getattr(source, "transactions_updated", None)
    return int(counter()) if callable(counter) else 0


def create_block(
    node: ChainNode,
    script_pubkey: bytes,
    source: TemplateSource = EMPTY_SOURCE,
    forced: Sequence[TemplateTx] = (),
    *,
    check_validity: bool = True,
) -> BlockTemplate:
    """A template on the tip from ``source`` (Core's ``createNewBlock``), remembered for
    ``getmininginfo``, then checked as Core checks it (``TestBlockValidity`` without proof of
    work or merkle root; scripts are left to the pool, which checked them with stricter flags).
    A template that fails is a bug: ``-1 "TestBlockValidity failed: ..."``, as Core's
    ``runtime_error``. Call with the chain lock held."""
    state = mining_state(node)
    assembler = BlockAssembler(node.chain, state.options)
    template = assembler.create_new_block(script_pubkey, source, forced=forced)
    state.last_block_weight = assembler.last_block_weight
    state.last_block_num_txs = assembler.last_block_num_txs
    if check_validity:
        validate_template(node, template.block)
    return template


def validate_template(node: ChainNode, block: Block) -> None:
    """Core's check of a fresh template (``TestBlockValidity`` without proof of work, merkle
    root or scripts); a failure is ``-1 "TestBlockValidity failed: ..."``."""
    try:
        check_block_validity(
            node.chain, block, check_pow=False, check_merkle_root=False, check_scripts=False
        )
    except RuleError as err:
        raise RpcError(RPC_MISC_ERROR, f"TestBlockValidity failed: {_state_text(err)}") from None


def build_block(
    node: ChainNode, script_pubkey: bytes, txs: Sequence[Tx], fees: Sequence[int]
) -> Block:
    """An unsolved block on the tip holding exactly ``txs`` (with their ``fees``), paying the
    subsidy plus those fees to ``script_pubkey`` (``generateblock``)."""
    forced = [template_tx(tx, fee) for tx, fee in zip(txs, fees, strict=True)]
    return create_block(node, script_pubkey, EMPTY_SOURCE, forced, check_validity=False).block


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
        raise RpcError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {_state_text(err)}") from None
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
                source = template_source(node)
                block = create_block(node, script_pubkey, source, check_validity=False).block
                check_block_time(node, block)
                validate_template(node, block)
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


def _tx_fees(node: ChainNode, txs: list[Tx]) -> list[int]:
    """The fee of each of ``txs`` in block order, their inputs from the UTXO set or earlier
    txs."""
    chain = node.chain
    created: dict[bytes, SpentCoin] = {}
    fees: list[int] = []
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
        fees.append(total_in - sum(o.value for o in tx.outputs))
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
    block = build_block(node, script, txs, _tx_fees(node, txs))
    try:
        check_block_validity(node.chain, block, check_pow=False, check_merkle_root=False)
    except RuleError as err:
        raise RpcError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {_state_text(err)}") from None
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


# -- getmininginfo, getnetworkhashps ---------------------------------------------------------


def network_hashps(node: ChainNode, lookup: int, height: int) -> float | int:
    """Core's ``GetNetworkHashPS``: the work of the ``lookup`` blocks up to ``height`` (-1: the
    tip) over the time they spanned (-1: since the last retarget)."""
    chain = node.chain
    if lookup < -1 or lookup == 0:
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid nblocks. Must be a positive number or -1.")
    if height < -1 or height > chain.height:
        raise RpcError(RPC_INVALID_PARAMETER, "Block does not exist at specified height")
    last = chain.tip if height < 0 else chain.chain[height]
    if last.height == 0:
        return 0
    if lookup == -1:
        lookup = last.height % node.params.difficulty_adjustment_interval + 1
    lookup = min(lookup, last.height)
    first = last
    low = high = last.header.time
    for _ in range(lookup):
        assert first.prev is not None
        first = first.prev
        low = min(low, first.header.time)
        high = max(high, first.header.time)
    if low == high:
        return 0
    return float(last.chain_work - first.chain_work) / (high - low)


@rpc_method(
    "getnetworkhashps",
    "mining",
    [
        Param(
            "nblocks",
            int,
            120,
            help="The number of previous blocks to calculate estimate from, or -1 for blocks "
            "since last difficulty change.",
            int_range=INT32,
        ),
        Param(
            "height", int, -1, help="To estimate at the time of the given height.", int_range=INT32
        ),
    ],
    result_help="n (numeric) Hashes per second estimated",
)
def getnetworkhashps(node: ChainNode, nblocks: int = 120, height: int = -1) -> float | int:
    """Returns the estimated network hashes per second based on the last n blocks.
    Pass in [blocks] to override # of blocks, -1 specifies since last difficulty change.
    Pass in [height] to estimate the network speed at the time when a certain block was found."""
    return network_hashps(node, nblocks, height)


def _pool_size(node: ChainNode) -> int:
    pool = getattr(node, "mempool", None)
    if pool is None:
        return 0
    try:
        return len(pool)
    except TypeError:
        return 0


@rpc_method(
    "getmininginfo",
    "mining",
    [],
    result_help="{blocks, currentblockweight, currentblocktx, bits, difficulty, target, "
    "networkhashps, pooledtx, blockmintxfee, chain, next {height, bits, difficulty, target}, "
    "signet_challenge (signet only), warnings}",
)
def getmininginfo(node: ChainNode) -> dict[str, Any]:
    """Returns a json object containing mining-related information."""
    chain = node.chain
    params = node.params
    state = mining_state(node)
    tip = chain.tip
    out: dict[str, Any] = {"blocks": chain.height}
    # Present once a block was assembled (Core tests whether its optionals hold a value).
    if state.last_block_weight is not None:
        out["currentblockweight"] = state.last_block_weight
    if state.last_block_num_txs is not None:
        out["currentblocktx"] = state.last_block_num_txs
    out["bits"] = f"{tip.header.bits:08x}"
    out["difficulty"] = difficulty(tip.header.bits)
    out["target"] = target_hex(tip.header.bits)
    out["networkhashps"] = network_hashps(node, 120, -1)
    out["pooledtx"] = _pool_size(node)
    out["blockmintxfee"] = btc(state.options.block_min_fee_rate)
    out["chain"] = "test" if params.name == "testnet" else params.name
    next_time = max(
        minimum_time(tip, params.difficulty_adjustment_interval), int(chain.validator.clock())
    )
    next_bits = chain.validator.expected_bits(tip, next_time)
    out["next"] = {
        "height": tip.height + 1,
        "bits": f"{next_bits:08x}",
        "difficulty": difficulty(next_bits),
        "target": target_hex(next_bits),
    }
    if params.signet_challenge is not None:
        out["signet_challenge"] = params.signet_challenge.hex()
    out["warnings"] = node_warnings(node)
    return out


__all__ = [
    "MiningState",
    "assembler_options",
    "build_block",
    "create_block",
    "generate_blocks",
    "generateblock",
    "generatetoaddress",
    "generatetodescriptor",
    "getmininginfo",
    "getnetworkhashps",
    "grind",
    "mining_state",
    "network_hashps",
    "submit_block",
    "submitblock",
    "submitheader",
    "template_source",
    "transactions_updated",
]
