"""PSBT and descriptor RPCs that need no wallet: createpsbt, decodepsbt, combinepsbt,
finalizepsbt, analyzepsbt, utxoupdatepsbt, joinpsbts, converttopsbt, descriptorprocesspsbt,
getdescriptorinfo, deriveaddresses, createmultisig.

Layer 4. The PSBT work is ``peercash.wallet.psbt`` and ``peercash.wallet.signer``; descriptors are
``peercash.wallet.descriptor``. UTXOs for ``utxoupdatepsbt`` come from the node's UTXO set and
mempool through the ``ChainNode`` facade. Errors are ``RpcError`` with Core's codes and messages.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from peercash.consensus.address import p2sh_script
from peercash.consensus.hashing import hash160, sha256
from peercash.consensus.primitives import OutPoint, Tx, TxOut
from peercash.consensus.script.asm import script_to_asm
from peercash.consensus.script.script import push_int
from peercash.wallet.bip32 import ExtendedKey, format_path
from peercash.wallet.descriptor import (
    Descriptor,
    DescriptorError,
    KeyOrigin,
    add_checksum,
    descriptor_info,
    parse_descriptor,
)
from peercash.wallet.fill import finalize_all
from peercash.wallet.psbt import Psbt, PsbtError, roles
from peercash.wallet.psbt.model import PsbtInput, PsbtOutput
from peercash.wallet.signer import sign_psbt

from .context import ChainNode, optional_mempool
from .rawtransactions import (
    DEFAULT_RAWTX_VERSION,
    LOCKTIME_MAX,
    MAX_BIP125_RBF_SEQUENCE,
    TX_MAX_STANDARD_VERSION,
    TX_MIN_STANDARD_VERSION,
    _parse_inputs,
    decode_hex_tx,
    parse_outputs,
    tx_to_json,
)
from .registry import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import btc, json_type, script_address, script_to_json

__all__ = [
    "analyzepsbt",
    "combinepsbt",
    "converttopsbt",
    "createmultisig",
    "createpsbt",
    "decode_psbt",
    "decodepsbt",
    "deriveaddresses",
    "descriptorprocesspsbt",
    "finalizepsbt",
    "getdescriptorinfo",
    "joinpsbts",
    "utxoupdatepsbt",
]

SIGHASH_NAMES = {
    0x00: "DEFAULT",
    0x01: "ALL",
    0x02: "NONE",
    0x03: "SINGLE",
    0x81: "ALL|ANYONECANPAY",
    0x82: "NONE|ANYONECANPAY",
    0x83: "SINGLE|ANYONECANPAY",
}
SIGHASH_BY_NAME = {v: k for k, v in SIGHASH_NAMES.items()}
DEFAULT_DESCRIPTOR_RANGE = 1000
MAX_MULTISIG_KEYS = 20
MAX_SCRIPT_ELEMENT_SIZE = 520


def decode_psbt(text: Any) -> Psbt:
    """Core's ``DecodeBase64PSBT`` with the RPC's error."""
    if not isinstance(text, str):
        raise RpcError(RPC_DESERIALIZATION_ERROR, "TX decode failed invalid base64")
    try:
        return Psbt.from_base64(text)
    except PsbtError as exc:
        raise RpcError(RPC_DESERIALIZATION_ERROR, f"TX decode failed {exc}") from None


# -- createpsbt / converttopsbt ------------------------------------------------------------------


@rpc_method(
    "createpsbt",
    "rawtransactions",
    [
        Param("inputs", list, help="The inputs: [{txid, vout, sequence?}, ...]"),
        Param("outputs", object, help="The outputs: [{address: amount}, {data: hex}, ...]"),
        Param("locktime", int, 0, help="Raw locktime. Non-0 value also locktime-activates inputs"),
        Param("replaceable", bool, None, help="Marks this transaction as BIP125 replaceable"),
        Param("version", int, DEFAULT_RAWTX_VERSION, help="Transaction version"),
        Param("psbt_version", int, 0, help="PSBT version: 0 (BIP174) or 2 (BIP370)"),
    ],
    result_help="The resulting raw transaction (base64-encoded string)",
)
def createpsbt(
    node: ChainNode,
    inputs: list[Any],
    outputs: Any,
    locktime: int = 0,
    replaceable: bool | None = None,
    version: int = DEFAULT_RAWTX_VERSION,
    psbt_version: int = 0,
) -> str:
    """Creates a transaction in the Partially Signed Transaction format.

    Implements the Creator role."""
    if not 0 <= locktime <= LOCKTIME_MAX:
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, locktime out of range")
    if not TX_MIN_STANDARD_VERSION <= version <= TX_MAX_STANDARD_VERSION:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"Invalid parameter, version out of range({TX_MIN_STANDARD_VERSION}"
            f"~{TX_MAX_STANDARD_VERSION})",
        )
    if psbt_version not in (0, 2):
        raise RpcError(RPC_INVALID_PARAMETER, "Invalid parameter, psbt_version must be 0 or 2")
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
    return roles.create(tx_inputs, tx_outputs, locktime, version, psbt_version).to_base64()


@rpc_method(
    "converttopsbt",
    "rawtransactions",
    [
        Param("hexstring", str, help="The hex string of a raw transaction"),
        Param(
            "permitsigdata",
            bool,
            False,
            help="If true, any signatures in the input will be discarded",
        ),
        Param(
            "iswitness",
            bool,
            None,
            help="Whether the transaction hex is a serialized witness transaction",
        ),
    ],
    result_help="The resulting raw transaction (base64-encoded string)",
)
def converttopsbt(
    node: ChainNode, hexstring: str, permitsigdata: bool = False, iswitness: bool | None = None
) -> str:
    """Converts a network serialized transaction to a PSBT."""
    tx = decode_hex_tx(
        hexstring, iswitness is None or not iswitness, iswitness is None or iswitness
    )
    if tx is None:
        raise RpcError(RPC_DESERIALIZATION_ERROR, "TX decode failed")
    if not permitsigdata and any(i.script_sig or i.witness for i in tx.inputs):
        raise RpcError(
            RPC_DESERIALIZATION_ERROR, "Inputs must not have scriptSigs and scriptWitnesses"
        )
    return roles.from_transaction(tx).to_base64()


# -- decodepsbt --------------------------------------------------------------------------------


def _origin_json(origin: KeyOrigin) -> dict[str, Any]:
    return {"master_fingerprint": origin.fingerprint.hex(), "path": format_path(origin.path)}


def _proprietary_json(entries: dict[bytes, bytes]) -> list[dict[str, Any]]:
    from peercash.consensus.serialize import Reader

    out = []
    for key, value in entries.items():
        r = Reader(key)
        r.compact_size()
        identifier = r.var_bytes()
        subtype = r.compact_size(0xFFFFFFFFFFFFFFFF)
        out.append(
            {
                "identifier": identifier.hex(),
                "subtype": subtype,
                "key": key.hex(),
                "value": value.hex(),
            }
        )
    return out


def _unknown_json(entries: dict[bytes, bytes]) -> dict[str, str]:
    return {k.hex(): v.hex() for k, v in entries.items()}


def _inner_script_json(script: bytes, node: ChainNode) -> dict[str, Any]:
    return script_to_json(script, node.params, include_hex=True, include_address=False)


def _tap_derivs_json(derivs: dict[bytes, tuple[tuple[bytes, ...], KeyOrigin]]) -> list[Any]:
    return [
        {"pubkey": x.hex(), **_origin_json(o), "leaf_hashes": [h.hex() for h in hashes]}
        for x, (hashes, o) in derivs.items()
    ]


_PREIMAGE_NAMES = {0x0A: "ripemd160", 0x0B: "sha256", 0x0C: "hash160", 0x0D: "hash256"}


def _input_json(inp: PsbtInput, node: ChainNode) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if inp.non_witness_utxo is not None:
        out["non_witness_utxo"] = tx_to_json(inp.non_witness_utxo, node.params, include_hex=False)
    if inp.witness_utxo is not None:
        out["witness_utxo"] = {
            "amount": btc(inp.witness_utxo.value),
            "scriptPubKey": script_to_json(inp.witness_utxo.script_pubkey, node.params),
        }
    if inp.partial_sigs:
        out["partial_signatures"] = {p.hex(): s.hex() for p, s in inp.partial_sigs.items()}
    if inp.sighash_type is not None:
        out["sighash"] = SIGHASH_NAMES.get(inp.sighash_type, "")
    if inp.redeem_script is not None:
        out["redeem_script"] = _inner_script_json(inp.redeem_script, node)
    if inp.witness_script is not None:
        out["witness_script"] = _inner_script_json(inp.witness_script, node)
    if inp.bip32_derivs:
        out["bip32_derivs"] = [
            {"pubkey": p.hex(), **_origin_json(o)} for p, o in inp.bip32_derivs.items()
        ]
    if inp.final_script_sig is not None:
        out["final_scriptSig"] = {
            "asm": script_to_asm(inp.final_script_sig),
            "hex": inp.final_script_sig.hex(),
        }
    if inp.final_script_witness is not None:
        out["final_scriptwitness"] = [x.hex() for x in inp.final_script_witness]
    for ktype, name in _PREIMAGE_NAMES.items():
        found = {h.hex(): p.hex() for (t, h), p in inp.preimages.items() if t == ktype}
        if found:
            out[f"{name}_preimages"] = found
    if inp.previous_txid is not None:
        out["previous_txid"] = inp.previous_txid[::-1].hex()
    if inp.output_index is not None:
        out["previous_vout"] = inp.output_index
    if inp.sequence is not None:
        out["sequence"] = inp.sequence
    if inp.time_locktime is not None:
        out["time_locktime"] = inp.time_locktime
    if inp.height_locktime is not None:
        out["height_locktime"] = inp.height_locktime
    if inp.tap_key_sig is not None:
        out["taproot_key_path_sig"] = inp.tap_key_sig.hex()
    if inp.tap_script_sigs:
        out["taproot_script_path_sigs"] = [
            {"pubkey": x.hex(), "leaf_hash": h.hex(), "sig": s.hex()}
            for (x, h), s in inp.tap_script_sigs.items()
        ]
    if inp.tap_leaf_scripts:
        grouped: dict[tuple[bytes, int], list[str]] = {}
        for control, leaf in inp.tap_leaf_scripts.items():
            grouped.setdefault(leaf, []).append(control.hex())
        out["taproot_scripts"] = [
            {"script": s.hex(), "leaf_ver": v, "control_blocks": cbs}
            for (s, v), cbs in grouped.items()
        ]
    if inp.tap_bip32_derivs:
        out["taproot_bip32_derivs"] = _tap_derivs_json(inp.tap_bip32_derivs)
    if inp.tap_internal_key is not None:
        out["taproot_internal_key"] = inp.tap_internal_key.hex()
    if inp.tap_merkle_root is not None:
        out["taproot_merkle_root"] = inp.tap_merkle_root.hex()
    if inp.proprietary:
        out["proprietary"] = _proprietary_json(inp.proprietary)
    if inp.unknown:
        out["unknown"] = _unknown_json(inp.unknown)
    return out


def _output_json(o: PsbtOutput, node: ChainNode) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if o.redeem_script is not None:
        out["redeem_script"] = _inner_script_json(o.redeem_script, node)
    if o.witness_script is not None:
        out["witness_script"] = _inner_script_json(o.witness_script, node)
    if o.bip32_derivs:
        out["bip32_derivs"] = [
            {"pubkey": p.hex(), **_origin_json(orig)} for p, orig in o.bip32_derivs.items()
        ]
    if o.amount is not None:
        out["amount"] = btc(o.amount)
    if o.script is not None:
        out["script"] = script_to_json(o.script, node.params)
    if o.tap_internal_key is not None:
        out["taproot_internal_key"] = o.tap_internal_key.hex()
    if o.tap_tree is not None:
        out["taproot_tree"] = [
            {"depth": leaf.depth, "leaf_ver": leaf.leaf_version, "script": leaf.script.hex()}
            for leaf in o.tap_tree
        ]
    if o.tap_bip32_derivs:
        out["taproot_bip32_derivs"] = _tap_derivs_json(o.tap_bip32_derivs)
    if o.proprietary:
        out["proprietary"] = _proprietary_json(o.proprietary)
    if o.unknown:
        out["unknown"] = _unknown_json(o.unknown)
    return out


def _xpub_text(raw: bytes, node: ChainNode) -> str:
    try:
        return ExtendedKey.deserialize(raw, node.params).to_string(node.params)
    except ValueError:
        return raw.hex()


@rpc_method(
    "decodepsbt",
    "rawtransactions",
    [Param("psbt", str, help="The PSBT base64 string")],
    result_help="{tx, global_xpubs, psbt_version, proprietary, unknown, inputs, outputs, fee}",
)
def decodepsbt(node: ChainNode, psbt: str) -> dict[str, Any]:
    """Return a JSON object representing the serialized, base64-encoded partially signed
    Bitcoin transaction."""
    p = decode_psbt(psbt)
    try:
        tx = p.compute_unsigned_tx()
    except PsbtError as exc:
        raise RpcError(RPC_DESERIALIZATION_ERROR, f"TX decode failed {exc}") from None
    result: dict[str, Any] = {"tx": tx_to_json(tx, node.params, include_hex=False)}
    result["global_xpubs"] = [
        {"xpub": _xpub_text(raw, node), **_origin_json(o)} for raw, o in p.xpubs.items()
    ]
    if p.version == 2:
        result["tx_version"] = p.tx_version
        if p.fallback_locktime is not None:
            result["fallback_locktime"] = p.fallback_locktime
        result["input_count"] = len(p.inputs)
        result["output_count"] = len(p.outputs)
        if p.tx_modifiable is not None:
            result["tx_modifiable"] = p.tx_modifiable
    result["psbt_version"] = p.version
    result["proprietary"] = _proprietary_json(p.proprietary)
    result["unknown"] = _unknown_json(p.unknown)
    result["inputs"] = [_input_json(i, node) for i in p.inputs]
    result["outputs"] = [_output_json(o, node) for o in p.outputs]
    total_in = 0
    for k in range(len(p.inputs)):
        spent = p.spent_output(k)
        if spent is None:
            return result
        total_in += spent.value
    result["fee"] = btc(total_in - sum(o.value for o in tx.outputs))
    return result


# -- combine / join / finalize / analyze ---------------------------------------------------------


def _psbt_list(txs: Any) -> list[Psbt]:
    if not isinstance(txs, list):
        raise RpcError(
            RPC_MISC_ERROR, f"JSON value of type {json_type(txs)} is not of expected type array"
        )
    return [decode_psbt(t) for t in txs]


@rpc_method(
    "combinepsbt",
    "rawtransactions",
    [Param("txs", list, help="The base64 strings of partially signed transactions")],
    result_help="The base64-encoded partially signed transaction",
)
def combinepsbt(node: ChainNode, txs: list[Any]) -> str:
    """Combine multiple partially signed Bitcoin transactions into one transaction.

    Implements the Combiner role."""
    psbts = _psbt_list(txs)
    if not psbts:
        raise RpcError(RPC_INVALID_PARAMETER, "Parameter 'txs' cannot be empty")
    try:
        return roles.combine(psbts).to_base64()
    except PsbtError as exc:
        raise RpcError(RPC_INVALID_PARAMETER, str(exc)) from None


@rpc_method(
    "joinpsbts",
    "rawtransactions",
    [Param("txs", list, help="The base64 strings of partially signed transactions")],
    result_help="The base64-encoded partially signed transaction",
)
def joinpsbts(node: ChainNode, txs: list[Any]) -> str:
    """Joins multiple distinct PSBTs with different inputs and outputs into one PSBT with inputs
    and outputs from all of the PSBTs. No input in any of the PSBTs can be in more than one of
    the PSBTs."""
    psbts = _psbt_list(txs)
    try:
        joined = roles.join(psbts)
    except PsbtError as exc:
        raise RpcError(RPC_INVALID_PARAMETER, str(exc)) from None
    # Like Core, shuffle the inputs and outputs so their order does not tell who added which.
    assert joined.tx is not None
    rng = random.SystemRandom()
    in_order = list(range(len(joined.inputs)))
    out_order = list(range(len(joined.outputs)))
    rng.shuffle(in_order)
    rng.shuffle(out_order)
    tx = joined.tx
    joined.tx = Tx(
        tx.version,
        [tx.inputs[k] for k in in_order],
        [tx.outputs[k] for k in out_order],
        tx.locktime,
    )
    joined.inputs = [joined.inputs[k] for k in in_order]
    joined.outputs = [joined.outputs[k] for k in out_order]
    return joined.to_base64()


@rpc_method(
    "finalizepsbt",
    "rawtransactions",
    [
        Param("psbt", str, help="A base64 string of a PSBT"),
        Param(
            "extract",
            bool,
            True,
            help="If true and the transaction is complete, extract and return the complete transaction in normal network serialization instead of the PSBT.",
        ),
    ],
    result_help="{psbt, hex, complete}",
)
def finalizepsbt(node: ChainNode, psbt: str, extract: bool = True) -> dict[str, Any]:
    """Finalize the inputs of a PSBT. If the transaction is fully signed, it will produce a
    network serialized transaction which can be broadcast with sendrawtransaction.

    Implements the Finalizer and Extractor roles."""
    p = decode_psbt(psbt)
    complete = finalize_all(p)  # miniscript inputs too
    result: dict[str, Any] = {}
    if complete and extract:
        result["hex"] = roles.extract(p).serialize().hex()
    else:
        result["psbt"] = p.to_base64()
    result["complete"] = complete
    return result


@rpc_method(
    "analyzepsbt",
    "rawtransactions",
    [Param("psbt", str, help="A base64 string of a PSBT")],
    result_help="{inputs, estimated_vsize, estimated_feerate, fee, next, error}",
)
def analyzepsbt(node: ChainNode, psbt: str) -> dict[str, Any]:
    """Analyzes and provides information about the current status of a PSBT and its inputs."""
    p = decode_psbt(psbt)
    a = roles.analyze(p)
    inputs = []
    for i in a.inputs:
        entry: dict[str, Any] = {"has_utxo": i.has_utxo, "is_final": i.is_final}
        missing: dict[str, Any] = {}
        if i.missing_pubkeys:
            missing["pubkeys"] = [h.hex() for h in i.missing_pubkeys]
        if i.missing_redeem_script is not None:
            missing["redeemscript"] = i.missing_redeem_script.hex()
        if i.missing_witness_script is not None:
            missing["witnessscript"] = i.missing_witness_script.hex()
        if i.missing_sigs:
            missing["signatures"] = [h.hex() for h in i.missing_sigs]
        if missing:
            entry["missing"] = missing
        entry["next"] = i.next
        inputs.append(entry)
    result: dict[str, Any] = {}
    if inputs:
        result["inputs"] = inputs
    if a.estimated_vsize is not None:
        result["estimated_vsize"] = a.estimated_vsize
    if a.estimated_feerate is not None:
        result["estimated_feerate"] = btc(a.estimated_feerate)
    if a.fee is not None:
        result["fee"] = btc(a.fee)
    result["next"] = a.next
    if a.error is not None:
        result["error"] = a.error
    return result


# -- descriptors ---------------------------------------------------------------------------------


def _parse_range(value: Any) -> tuple[int, int]:
    """Core's ``ParseDescriptorRange``: ``n`` is [0, n], ``[begin, end]`` as given."""
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = 0, value
    elif (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        low, high = value
    else:
        raise RpcError(RPC_INVALID_PARAMETER, "Range must be specified as end or as [begin,end]")
    if low < 0 or high < 0:
        raise RpcError(RPC_INVALID_PARAMETER, "Range should be greater or equal than 0")
    if high >= 0x7FFFFFFF:
        raise RpcError(RPC_INVALID_PARAMETER, "End of range is too high")
    if low > high:
        raise RpcError(
            RPC_INVALID_PARAMETER, "Range specified as [begin,end] must not have begin after end"
        )
    if high - low >= 1_000_000:
        raise RpcError(RPC_INVALID_PARAMETER, "Range is too large")
    return low, high


def _descriptors(node: ChainNode, text: Any, require_checksum: bool = False) -> list[Descriptor]:
    if not isinstance(text, str):
        raise RpcError(RPC_INVALID_PARAMETER, "Descriptor must be a string")
    try:
        return parse_descriptor(text, node.params, require_checksum=require_checksum)
    except DescriptorError as exc:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None


def _provider_from(node: ChainNode, descriptors: Sequence[Any]) -> roles.Provider:
    """Core's ``EvalDescriptorStringOrObject`` over every entry, into one provider."""
    provider = roles.Provider()
    for entry in descriptors:
        if isinstance(entry, str):
            text, rng = entry, None
        elif isinstance(entry, dict) and isinstance(entry.get("desc"), str):
            text, rng = entry["desc"], entry.get("range")
        else:
            raise RpcError(RPC_INVALID_PARAMETER, "Descriptor must be a string or an object")
        descs = _descriptors(node, text)
        if descs[0].is_range:
            low, high = _parse_range(DEFAULT_DESCRIPTOR_RANGE - 1 if rng is None else rng)
        elif rng is not None:
            raise RpcError(
                RPC_INVALID_PARAMETER, "Range should not be specified for an un-ranged descriptor"
            )
        else:
            low, high = 0, 0
        for desc in descs:
            for pos in range(low, high + 1):
                try:
                    provider.add_expansion(desc.expand(pos))
                except DescriptorError as exc:
                    raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
    return provider


def _lookup_utxos(node: ChainNode, psbt: Psbt, provider: roles.Provider) -> list[Tx]:
    """Fill witness UTXOs from the UTXO set and mempool; return mempool parents of others."""
    pool = optional_mempool(node)
    parents: list[Tx] = []
    for k, inp in enumerate(psbt.inputs):
        if inp.witness_utxo is not None or inp.non_witness_utxo is not None:
            continue
        prevout = psbt.prevout(k)
        txout = _find_coin(node, prevout)
        if txout is None:
            continue
        if roles.is_segwit_output(txout.script_pubkey, provider):
            inp.witness_utxo = txout
        elif pool is not None:
            parent = pool.get(prevout.txid)
            if parent is not None:
                parents.append(parent)
    return parents


def _find_coin(node: ChainNode, prevout: OutPoint) -> TxOut | None:
    coin = node.chain.get_coin(prevout.txid, prevout.index)
    if coin is not None:
        txout: TxOut = coin.txout
        return txout
    pool = optional_mempool(node)
    if pool is not None:
        tx = pool.get(prevout.txid)
        if tx is not None and prevout.index < len(tx.outputs):
            return tx.outputs[prevout.index]
    return None


@rpc_method(
    "utxoupdatepsbt",
    "rawtransactions",
    [
        Param("psbt", str, help="A base64 string of a PSBT"),
        Param(
            "descriptors", list, None, help="An array of either strings or objects {desc, range}"
        ),
    ],
    result_help="The base64-encoded partially signed transaction with inputs updated",
)
def utxoupdatepsbt(node: ChainNode, psbt: str, descriptors: list[Any] | None = None) -> str:
    """Updates all segwit inputs and outputs in a PSBT with data from output descriptors, the
    UTXO set, txindex, or the mempool."""
    p = decode_psbt(psbt)
    provider = _provider_from(node, descriptors or [])
    parents = _lookup_utxos(node, p, provider)
    roles.update(p, provider, parents)
    return p.to_base64()


def _parse_sighash(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in SIGHASH_BY_NAME:
        raise RpcError(RPC_INVALID_PARAMETER, f"'{value}' is not a valid sighash parameter.")
    hash_type = SIGHASH_BY_NAME[value]
    return None if hash_type == 0 else hash_type


@rpc_method(
    "descriptorprocesspsbt",
    "rawtransactions",
    [
        Param("psbt", str, help="The transaction base64 string"),
        Param("descriptors", list, help="An array of either strings or objects {desc, range}"),
        Param(
            "sighashtype",
            str,
            "DEFAULT",
            help="The signature hash type to sign with if not specified by the PSBT",
        ),
        Param(
            "bip32derivs",
            bool,
            True,
            help="Include BIP 32 derivation paths for public keys if we know them",
        ),
        Param("finalize", bool, True, help="Also finalize inputs if possible"),
    ],
    result_help="{psbt, complete, hex}",
)
def descriptorprocesspsbt(
    node: ChainNode,
    psbt: str,
    descriptors: list[Any],
    sighashtype: str = "DEFAULT",
    bip32derivs: bool = True,
    finalize: bool = True,
) -> dict[str, Any]:
    """Update all segwit inputs in a PSBT with information from output descriptors, the UTXO
    set or the mempool. Then, sign the inputs we are able to with the private keys of the
    descriptors, and finalize them if asked."""
    sighash = _parse_sighash(sighashtype)
    p = decode_psbt(psbt)
    provider = _provider_from(node, descriptors)
    secrets = dict(provider.secrets)
    for pub, secret in list(secrets.items()):
        if len(pub) == 33:
            secrets.setdefault(pub[1:], secret)
    if not bip32derivs:
        provider.origins.clear()
    parents = _lookup_utxos(node, p, provider)
    roles.update(p, provider, parents)
    try:
        sign_psbt(p, secrets, sighash)
    except PsbtError as exc:
        raise RpcError(RPC_DESERIALIZATION_ERROR, str(exc)) from None
    complete = roles.finalize(p) if finalize else all(i.is_final for i in p.inputs)
    result: dict[str, Any] = {"psbt": p.to_base64(), "complete": complete}
    if complete:
        result["hex"] = roles.extract(p).serialize().hex()
    return result


@rpc_method(
    "getdescriptorinfo",
    "util",
    [Param("descriptor", str, help="The descriptor.")],
    result_help="{descriptor, checksum, isrange, issolvable, hasprivatekeys}",
)
def getdescriptorinfo(node: ChainNode, descriptor: str) -> dict[str, Any]:
    """Analyses a descriptor."""
    try:
        info = descriptor_info(descriptor, node.params)
    except DescriptorError as exc:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
    result: dict[str, Any] = {"descriptor": info.descriptor}
    if info.multipath_expansion:
        result["multipath_expansion"] = list(info.multipath_expansion)
    result["checksum"] = info.checksum
    result["isrange"] = info.is_range
    result["issolvable"] = info.is_solvable
    result["hasprivatekeys"] = info.has_private_keys
    return result


@rpc_method(
    "deriveaddresses",
    "util",
    [
        Param("descriptor", str, help="The descriptor."),
        Param(
            "range",
            object,
            None,
            help="If a ranged descriptor is used, this specifies the end or the range (in [begin,end] notation) to derive.",
        ),
    ],
    result_help="[address, ...]",
)
def deriveaddresses(node: ChainNode, descriptor: str, range_spec: Any = None) -> list[Any]:
    """Derives one or more addresses corresponding to an output descriptor."""
    descs = _descriptors(node, descriptor, require_checksum=True)
    if descs[0].is_range:
        if range_spec is None:
            raise RpcError(RPC_INVALID_PARAMETER, "Range must be specified for a ranged descriptor")
        low, high = _parse_range(range_spec)
    else:
        if range_spec is not None:
            raise RpcError(
                RPC_INVALID_PARAMETER, "Range should not be specified for an un-ranged descriptor"
            )
        low, high = 0, 0
    per_branch: list[list[str]] = []
    for desc in descs:
        addresses: list[str] = []
        for pos in range(low, high + 1):
            try:
                found = desc.addresses(pos)
            except DescriptorError as exc:
                raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
            if not found:
                raise RpcError(
                    RPC_INVALID_ADDRESS_OR_KEY, "Descriptor does not have a corresponding address"
                )
            addresses.extend(found)
        per_branch.append(addresses)
    return per_branch[0] if len(per_branch) == 1 else list(per_branch)


@rpc_method(
    "createmultisig",
    "util",
    [
        Param("nrequired", int, help="The number of required signatures out of the n keys."),
        Param("keys", list, help="The hex-encoded public keys."),
        Param(
            "address_type",
            str,
            "legacy",
            help='The address type to use. Options are "legacy", "p2sh-segwit", and "bech32".',
        ),
    ],
    result_help="{address, redeemScript, descriptor, warnings}",
)
def createmultisig(
    node: ChainNode, nrequired: int, keys: list[Any], address_type: str = "legacy"
) -> dict[str, Any]:
    """Creates a multi-signature address with n signatures of m keys required."""
    pubkeys = [_hex_pubkey(k) for k in keys]
    if address_type not in ("legacy", "p2sh-segwit", "bech32"):
        if address_type == "bech32m":
            raise RpcError(
                RPC_INVALID_ADDRESS_OR_KEY,
                "createmultisig cannot create bech32m multisig addresses",
            )
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Unknown address type '{address_type}'")
    if nrequired < 1:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "a multisignature address must require at least one key to redeem",
        )
    if len(pubkeys) < nrequired:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"not enough keys supplied (got {len(pubkeys)} keys, but need at least {nrequired} to redeem)",
        )
    if len(pubkeys) > MAX_MULTISIG_KEYS:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "Number of keys involved in the multisignature address creation > 20\nReduce the number",
        )
    script = push_int(nrequired) + b"".join(bytes((len(k),)) + k for k in pubkeys)
    script += push_int(len(pubkeys)) + b"\xae"
    if len(script) > MAX_SCRIPT_ELEMENT_SIZE:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"redeemScript exceeds size limit: {len(script)} > {MAX_SCRIPT_ELEMENT_SIZE}",
        )
    warnings = []
    if address_type != "legacy" and any(len(k) == 65 for k in pubkeys):
        warnings.append(
            "Unable to make chosen address type, please ensure no uncompressed public keys are present."
        )
        address_type = "legacy"
    multi = f"multi({nrequired},{','.join(k.hex() for k in pubkeys)})"
    if address_type == "legacy":
        spk, desc = p2sh_script(hash160(script)), f"sh({multi})"
    elif address_type == "p2sh-segwit":
        spk, desc = p2sh_script(hash160(b"\x00\x20" + sha256(script))), f"sh(wsh({multi}))"
    else:
        spk, desc = b"\x00\x20" + sha256(script), f"wsh({multi})"
    result: dict[str, Any] = {
        "address": script_address(spk, node.params),
        "redeemScript": script.hex(),
        "descriptor": add_checksum(desc),
    }
    if warnings:
        result["warnings"] = warnings
    return result


def _hex_pubkey(value: Any) -> bytes:
    from peercash.consensus.crypto import _parsed_pubkey

    text = value if isinstance(value, str) else str(value)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise RpcError(
            RPC_INVALID_ADDRESS_OR_KEY, f'Pubkey "{text}" must be a hex string'
        ) from None
    if len(raw) not in (33, 65):
        raise RpcError(
            RPC_INVALID_ADDRESS_OR_KEY,
            f'Pubkey "{text}" must have a length of either 33 or 65 bytes',
        )
    if _parsed_pubkey(raw) is None:
        raise RpcError(
            RPC_INVALID_ADDRESS_OR_KEY, f'Pubkey "{text}" must be cryptographically valid.'
        )
    return raw
