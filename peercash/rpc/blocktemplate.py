"""``getblocktemplate``: block templates for external miners (BIP22, BIP23, BIP9, BIP145).

Layer 4. As Core 30 answers it:

* ``mode: "proposal"`` (BIP23) checks a proposed block with ``TestBlockValidity`` (no proof of
  work, merkle root checked) and answers null or a reject reason; a block already known is
  ``duplicate``, ``duplicate-invalid`` or ``duplicate-inconclusive``.
* ``mode: "template"`` (or none) needs ``"segwit"`` in ``rules`` (-8), and on signet
  ``"signet"`` too (-8); off the test networks (mainnet) the node must have a peer (-9
  "peercash is not connected!") and be out of initial block download (-10 "peercash is in
  initial sync and waiting for blocks..."). The template is built by the assembler from the
  node's mempool (``rpc.mining.template_source``) and cached: it is rebuilt when the tip changed,
  or when the pool's transactions-updated counter moved and the cached one is more than five
  seconds old; ``curtime`` (and, where min-difficulty blocks are allowed, ``bits``) is updated on
  every call.
* Long polling (BIP22): with ``longpollid`` (the tip hash in display hex followed by the pool's
  counter, as the previous answer gave it) the call waits until the tip differs from that hash,
  or, first after a minute and then every ten seconds, the counter differs from the one in the
  id. The wait runs on the RPC worker thread *without* the chain lock (the method is registered
  with ``lock=False`` and takes the lock itself before and after), woken by the chain's
  ``tip_changed`` event; shutdown ends it with -9 "Shutting down".

Concurrency: everything that reads the chain or the cached template holds the chain lock.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from peercash.chain.index import FAILED_MASK, VALID_SCRIPTS, BlockIndexEntry
from peercash.consensus import deployments as dep
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.primitives import Block
from peercash.consensus.script.sigops import MAX_BLOCK_SIGOPS_COST
from peercash.mining.assembler import (
    MAX_BLOCK_SERIALIZED_SIZE,
    MAX_BLOCK_WEIGHT,
    WITNESS_SCALE_FACTOR,
    BlockTemplate,
    TemplateSource,
    deployment_state,
)
from peercash.mining.validity import check_block_validity

from . import net
from .blockchain import initial_block_download
from .context import ChainNode
from .mining import (
    MiningState,
    chain_lock,
    create_block,
    mining_state,
    template_source,
    transactions_updated,
)
from .registry import (
    RPC_CLIENT_IN_INITIAL_DOWNLOAD,
    RPC_CLIENT_NOT_CONNECTED,
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import parse_hash

CLIENT_NAME = "peercash"
"""Core's ``CLIENT_NAME`` in its connection and IBD errors."""
TEMPLATE_COINBASE_SCRIPT = b"\x51"
"""The coinbase output of templates (Core's default ``coinbase_output_script``, ``OP_TRUE``):
miners replace the coinbase; only its value is reported."""
TEMPLATE_REFRESH_SECONDS = 5
"""A pool change rebuilds the cached template only once it is older than this (Core)."""
GBT_OPTIONAL_RULES = {"testdummy": True, "taproot": True}
"""Core's ``gbt_optional_rule`` per BIP9 deployment: whether a client that does not know the
rule may still use the template (a deployment not listed counts as optional)."""
_U32 = 0xFFFFFFFF


def _rule_name(name: str) -> str:
    """BIP9: a rule the client must understand is prefixed with ``!``."""
    return name if GBT_OPTIONAL_RULES.get(name, True) else "!" + name


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def parse_counter(text: str) -> int:
    """Core's ``LocaleIndependentAtoi<int64_t>`` read into an ``unsigned int``: leading white
    space and one ``+`` skipped, the longest integer prefix taken (0 when there is none),
    saturated to 64 bits, then reduced modulo 2**32."""
    s = text.strip()
    if s.startswith("+"):
        if s[1:2] == "-":
            return 0
        s = s[1:]
    found = re.match(r"-?[0-9]+", s)
    if found is None:
        return 0
    value = max(-(1 << 63), min((1 << 63) - 1, int(found.group())))
    return value & _U32


# -- proposals -----------------------------------------------------------------------------------


def _proposal(node: ChainNode, data: Any) -> str | None:
    if not isinstance(data, str):
        raise RpcError(RPC_TYPE_ERROR, "Missing data String key for proposal")
    try:
        block = Block.parse(bytes.fromhex(data))
    except (ValueError, DecodeError):
        raise RpcError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
    with chain_lock(node):
        chain = node.chain
        known = chain.index.get(block.hash)
        if known is not None:
            if known.valid_to(VALID_SCRIPTS):
                return "duplicate"
            if known.status & FAILED_MASK:
                return "duplicate-invalid"
            return "duplicate-inconclusive"
        try:
            check_block_validity(chain, block, check_pow=False, check_merkle_root=True)
        except RuleError as err:
            return err.code or "rejected"
    return None


# -- long polling -------------------------------------------------------------------------------


def _shutting_down(node: ChainNode) -> bool:
    return bool(getattr(node, "shutting_down", False))


def long_poll(
    node: ChainNode, watched: bytes, counter: int, source: TemplateSource, state: MiningState
) -> None:
    """Wait, without the chain lock, until the tip is not ``watched`` or the pool's counter is
    not ``counter`` (looked at after ``longpoll_first_check`` seconds, then every
    ``longpoll_next_check``), or the node shuts down."""
    chain = node.chain
    woken = threading.Event()

    def on_tip(_entry: BlockIndexEntry) -> None:
        woken.set()

    with chain_lock(node):
        chain.events.tip_changed.append(on_tip)
    try:
        wait = state.longpoll_first_check
        while not _shutting_down(node):
            deadline = time.monotonic() + wait
            while chain.tip.hash == watched and not _shutting_down(node):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                woken.wait(min(remaining, 1.0))  # wakes at least once a second for shutdown
                woken.clear()
            if _shutting_down(node) or chain.tip.hash != watched:
                return
            if transactions_updated(source) & _U32 != counter:
                return
            wait = state.longpoll_next_check
    finally:
        with chain_lock(node):
            chain.events.tip_changed.remove(on_tip)


# -- the template -------------------------------------------------------------------------------


def _current_template(node: ChainNode, source: TemplateSource, state: MiningState) -> BlockTemplate:
    """The cached template, rebuilt as Core rebuilds it (chain lock held)."""
    tip = node.chain.tip
    now = int(node.chain.validator.clock())
    cached = state.template
    if (
        cached is None
        or cached.prev is not tip
        or (
            transactions_updated(source) & _U32 != state.transactions_updated_last
            and now - state.template_started > TEMPLATE_REFRESH_SECONDS
        )
    ):
        state.template = None
        state.transactions_updated_last = transactions_updated(source) & _U32
        state.template_started = now
        state.template = create_block(node, TEMPLATE_COINBASE_SCRIPT, source)
    assert state.template is not None
    return state.template


def template_json(
    node: ChainNode, template: BlockTemplate, client_rules: set[str], counter: int
) -> dict[str, Any]:
    """The answer to a template request for ``template`` (chain lock held)."""
    chain = node.chain
    params = node.params
    prev = template.prev
    block = template.block
    header = block.header
    now = int(chain.validator.clock())
    cur_time = max(header.time, template.min_time, now)  # Core's UpdateTime
    bits = header.bits
    if params.pow_allow_min_difficulty_blocks:
        bits = chain.validator.expected_bits(prev, cur_time)
    pre_segwit = not dep.segwit_active(params, template.height)

    index_of: dict[bytes, int] = {}
    transactions: list[dict[str, Any]] = []
    for i, tx in enumerate(block.txs):
        index_of[tx.txid] = i
        if i == 0:
            continue
        depends = [index_of[t.prevout.txid] for t in tx.inputs if t.prevout.txid in index_of]
        sigops = template.sigops[i]
        if pre_segwit:
            sigops //= WITNESS_SCALE_FACTOR
        transactions.append(
            {
                "data": tx.serialize().hex(),
                "txid": tx.txid_hex,
                "hash": tx.wtxid_hex,
                "depends": depends,
                "fee": template.fees[i],
                "sigops": sigops,
                "weight": tx.weight(),
            }
        )

    version = header.version
    rules = ["csv"]
    if not pre_segwit:
        rules.append("!segwit")
    if params.signet_challenge is not None:
        rules.append("!signet")
    vbavailable: dict[str, int] = {}
    by_state: dict[dep.ThresholdState, list[dep.Deployment]] = {}
    for d in sorted(params.deployments.values(), key=lambda d: d.name):
        by_state.setdefault(deployment_state(chain, d, prev), []).append(d)
    for d in by_state.get(dep.ThresholdState.STARTED, []):
        vbavailable[_rule_name(d.name)] = d.bit
        if not GBT_OPTIONAL_RULES.get(d.name, True) and d.name not in client_rules:
            version &= ~d.mask
    for d in by_state.get(dep.ThresholdState.LOCKED_IN, []):
        version |= d.mask
        vbavailable[_rule_name(d.name)] = d.bit
        if not GBT_OPTIONAL_RULES.get(d.name, True) and d.name not in client_rules:
            version &= ~d.mask
    for d in by_state.get(dep.ThresholdState.ACTIVE, []):
        rules.append(_rule_name(d.name))
        if not GBT_OPTIONAL_RULES.get(d.name, True) and d.name not in client_rules:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                f"Support for '{d.name}' rule requires explicit client support",
            )

    sigop_limit = MAX_BLOCK_SIGOPS_COST
    size_limit = MAX_BLOCK_SERIALIZED_SIZE
    if pre_segwit:
        sigop_limit //= WITNESS_SCALE_FACTOR
        size_limit //= WITNESS_SCALE_FACTOR
    out: dict[str, Any] = {
        "capabilities": ["proposal"],
        "version": _signed32(version),
        "rules": rules,
        "vbavailable": vbavailable,
        "vbrequired": 0,
        "previousblockhash": prev.header.hash_hex,
        "transactions": transactions,
        "coinbaseaux": {},
        "coinbasevalue": block.txs[0].outputs[0].value,
        "longpollid": prev.header.hash_hex + str(counter),
        "target": f"{template.target:064x}",
        "mintime": template.min_time,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": sigop_limit,
        "sizelimit": size_limit,
    }
    if not pre_segwit:
        out["weightlimit"] = MAX_BLOCK_WEIGHT
    out["curtime"] = cur_time
    out["bits"] = f"{bits:08x}"
    out["height"] = template.height
    if params.signet_challenge is not None:
        out["signet_challenge"] = params.signet_challenge.hex()
    if template.witness_commitment is not None:
        out["default_witness_commitment"] = template.witness_commitment.hex()
    return out


def _signed32(version: int) -> int:
    """A header version as Core's ``int32_t`` prints it."""
    version &= _U32
    return version - (1 << 32) if version & 0x80000000 else version


@rpc_method(
    "getblocktemplate",
    "mining",
    [
        Param(
            "template_request",
            dict,
            help='Format of the template: {"mode": "template"|"proposal", "capabilities": '
            '[...], "rules": ["segwit", ...], "longpollid": "...", "data": "hex (proposal)"}',
        )
    ],
    result_help="null or a reject reason (proposal); otherwise {capabilities, version, rules, "
    "vbavailable, vbrequired, previousblockhash, transactions [{data, txid, hash, depends, fee, "
    "sigops, weight}], coinbaseaux, coinbasevalue, longpollid, target, mintime, mutable, "
    "noncerange, sigoplimit, sizelimit, weightlimit, curtime, bits, height, signet_challenge, "
    "default_witness_commitment}",
    lock=False,
)
def getblocktemplate(node: ChainNode, template_request: dict[str, Any]) -> Any:
    """If the request parameters include a 'mode' key, that is used to explicitly select between
    the default 'template' request or a 'proposal'.
    It returns data needed to construct a block to work on.
    For full specification, see BIPs 22, 23, 9, and 145:
        https://github.com/bitcoin/bips/blob/master/bip-0022.mediawiki
        https://github.com/bitcoin/bips/blob/master/bip-0023.mediawiki
        https://github.com/bitcoin/bips/blob/master/bip-0009.mediawiki#getblocktemplate_changes
        https://github.com/bitcoin/bips/blob/master/bip-0145.mediawiki"""
    request = template_request
    mode = request.get("mode")
    if mode is None:
        mode = "template"
    elif not isinstance(mode, str):
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid mode")
    longpollid = request.get("longpollid")
    if mode == "proposal":
        return _proposal(node, request.get("data"))

    client_rules: set[str] = set()
    rules = request.get("rules")
    if isinstance(rules, list):
        for rule in rules:
            if not isinstance(rule, str):
                raise RpcError(
                    RPC_TYPE_ERROR,
                    f"JSON value of type {_json_type(rule)} is not of expected type string",
                )
            client_rules.add(rule)
    if mode != "template":
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid mode")

    params = node.params
    if params.name == "main":  # Core's !IsTestChain()
        if net.getconnectioncount(node) == 0:
            raise RpcError(RPC_CLIENT_NOT_CONNECTED, f"{CLIENT_NAME} is not connected!")
        with chain_lock(node):
            ibd = initial_block_download(node)
        if ibd:
            raise RpcError(
                RPC_CLIENT_IN_INITIAL_DOWNLOAD,
                f"{CLIENT_NAME} is in initial sync and waiting for blocks...",
            )

    source = template_source(node)
    state = mining_state(node)
    if longpollid is not None:
        if isinstance(longpollid, str):
            watched = parse_hash(longpollid[:64], "longpollid")
            counter = parse_counter(longpollid[64:])
        else:  # not in the spec; Core waits on the current tip (handy in tests)
            with chain_lock(node):
                watched = node.chain.tip.hash
                counter = state.transactions_updated_last
        long_poll(node, watched, counter, source, state)
        if _shutting_down(node):
            raise RpcError(RPC_CLIENT_NOT_CONNECTED, "Shutting down")

    if params.signet_challenge is not None and "signet" not in client_rules:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "getblocktemplate must be called with the signet rule set "
            '(call with {"rules": ["segwit", "signet"]})',
        )
    if "segwit" not in client_rules:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "getblocktemplate must be called with the segwit rule set "
            '(call with {"rules": ["segwit"]})',
        )
    with chain_lock(node):
        template = _current_template(node, source, state)
        return template_json(node, template, client_rules, state.transactions_updated_last)


__all__ = ["getblocktemplate", "long_poll", "parse_counter", "template_json"]
