"""Wallet signing RPCs: walletprocesspsbt, signrawtransactionwithwallet, signmessage, and the
wallet-free verifymessage and signmessagewithprivkey (Core's ``wallet/rpc/spend.cpp``,
``wallet/rpc/signmessage.cpp``, ``rpc/signmessage.cpp``).

Layer 4. The work is ``peercash.wallet.fill`` (Core's ``FillPSBT``/``SignTransaction``) and
``peercash.wallet.message``. Wallet methods are ``lock=False`` (see ``walletutil``); errors are
``RpcError`` with Core's codes and messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from peercash.consensus.address import address_to_script, decode_wif
from peercash.consensus.hashing import hash160
from peercash.consensus.primitives import OutPoint, TxOut
from peercash.wallet.crypter import CrypterError
from peercash.wallet.fill import WalletKeys, fill_psbt, sign_transaction
from peercash.wallet.message import MessageError, Verification, sign_message, verify_message
from peercash.wallet.psbt import PsbtError, roles

from .psbt import _find_coin, _parse_sighash, decode_psbt
from .rawtransactions import decode_hex_tx
from .registry import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    RPC_WALLET_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import amount_from_value, parse_hash
from .walletutil import request_wallet, wallet_errors

__all__ = [
    "signmessage",
    "signmessagewithprivkey",
    "signrawtransactionwithwallet",
    "verifymessage",
    "walletprocesspsbt",
]

CAT = "wallet"
T = TypeVar("T")


def _unlocked(call: Callable[[], T]) -> T:
    """Run ``call``; a locked wallet's error becomes Core's -13."""
    try:
        return call()
    except CrypterError as e:
        raise RpcError(getattr(e, "rpc_code", RPC_WALLET_ERROR), str(e)) from None
    except PsbtError as e:
        raise RpcError(RPC_DESERIALIZATION_ERROR, str(e)) from None


@rpc_method(
    "walletprocesspsbt",
    CAT,
    [Param("psbt", str, help="The transaction base64 string"),
     Param("sign", bool, True, help="Also sign the transaction when updating (requires wallet "
           "to be unlocked)"),
     Param("sighashtype", str, "DEFAULT", help="The signature hash type to sign with if not "
           "specified by the PSBT"),
     Param("bip32derivs", bool, True, help="Include BIP 32 derivation paths for public keys if "
           "we know them"),
     Param("finalize", bool, True, help="Also finalize inputs if possible")],
    result_help="{psbt, complete, hex}",
    lock=False,
)  # fmt: skip
@wallet_errors
def walletprocesspsbt(
    node: Any,
    psbt: str,
    sign: bool = True,
    sighashtype: str = "DEFAULT",
    bip32derivs: bool = True,
    finalize: bool = True,
) -> dict[str, Any]:
    """Update a PSBT with input information from our wallet and then sign inputs that we can
    sign for."""
    wallet = request_wallet(node)
    sighash = _parse_sighash(sighashtype)
    p = decode_psbt(psbt)
    p, complete = _unlocked(
        lambda: fill_psbt(
            wallet, p, sign=sign, sighash=sighash, bip32derivs=bip32derivs, finalize=finalize
        )
    )
    result: dict[str, Any] = {"psbt": p.to_base64(), "complete": complete}
    if complete and all(i.is_final for i in p.inputs):
        result["hex"] = roles.extract(p).serialize().hex()
    return result


def _prevtxs(value: Any) -> dict[OutPoint, TxOut]:
    found: dict[OutPoint, TxOut] = {}
    for entry in value or []:
        if not isinstance(entry, dict) or not {"txid", "vout", "scriptPubKey"} <= entry.keys():
            raise RpcError(
                RPC_DESERIALIZATION_ERROR,
                'expected object with {"txid\'","vout","scriptPubKey"}',
            )
        txid = parse_hash(entry["txid"], "txid")
        vout = entry["vout"]
        if not isinstance(vout, int) or vout < 0:
            raise RpcError(RPC_DESERIALIZATION_ERROR, "vout cannot be negative")
        try:
            script = bytes.fromhex(entry["scriptPubKey"])
        except (TypeError, ValueError):
            raise RpcError(
                RPC_INVALID_PARAMETER, "scriptPubKey must be hexadecimal string"
            ) from None
        if "amount" not in entry:
            raise RpcError(RPC_INVALID_PARAMETER, "Missing amount")
        found[OutPoint(txid, vout)] = TxOut(amount_from_value(entry["amount"]), script)
    return found


@rpc_method(
    "signrawtransactionwithwallet",
    CAT,
    [Param("hexstring", str, help="The transaction hex string"),
     Param("prevtxs", list, None, help="The previous dependent transaction outputs"),
     Param("sighashtype", str, "DEFAULT", help="The signature hash type")],
    result_help="{hex, complete, errors}",
    lock=False,
)  # fmt: skip
@wallet_errors
def signrawtransactionwithwallet(
    node: Any, hexstring: str, prevtxs: list[Any] | None = None, sighashtype: str = "DEFAULT"
) -> dict[str, Any]:
    """Sign inputs for raw transaction (serialized, hex-encoded)."""
    tx = decode_hex_tx(hexstring)
    if tx is None:
        raise RpcError(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at "
                       "least one input.")  # fmt: skip
    wallet = request_wallet(node)
    sighash = _parse_sighash(sighashtype)
    given = _prevtxs(prevtxs)
    spent: list[TxOut | None] = []
    for txin in tx.inputs:
        out = given.get(txin.prevout) or wallet._spent_output(txin.prevout)
        if out is None and getattr(node, "chain", None) is not None:
            out = _find_coin(node, txin.prevout)
        spent.append(out)
    signed, errors = _unlocked(lambda: sign_transaction(wallet, tx, spent, sighash))
    result: dict[str, Any] = {"hex": signed.serialize().hex(), "complete": not errors}
    if errors:
        result["errors"] = [
            {
                "txid": signed.inputs[e.index].prevout.txid[::-1].hex(),
                "vout": signed.inputs[e.index].prevout.index,
                "witness": [w.hex() for w in signed.inputs[e.index].witness],
                "scriptSig": signed.inputs[e.index].script_sig.hex(),
                "sequence": signed.inputs[e.index].sequence,
                "error": e.error,
            }
            for e in errors
        ]
    return result


def _message_error(e: MessageError) -> RpcError:
    code = (
        RPC_INVALID_ADDRESS_OR_KEY
        if e.result is Verification.ERR_INVALID_ADDRESS
        else (RPC_TYPE_ERROR)
    )
    return RpcError(code, str(e))


@rpc_method(
    "signmessage",
    CAT,
    [Param("address", str, help="The bitcoin address to use for the private key."),
     Param("message", str, help="The message to create a signature of.")],
    lock=False,
)  # fmt: skip
@wallet_errors
def signmessage(node: Any, address: str, message: str) -> str:
    """Sign a message with the private key of an address."""
    wallet = request_wallet(node)
    try:
        script = address_to_script(address, wallet.params)
    except ValueError:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid address") from None
    if len(script) != 25 or script[:3] != b"\x76\xa9\x14":
        raise RpcError(RPC_TYPE_ERROR, "Address does not refer to key")
    info = wallet.keys.is_mine(script)
    keys = _unlocked(wallet.signing_keys)
    if info is None:
        raise RpcError(RPC_WALLET_ERROR, "Private key not available")
    if isinstance(keys, WalletKeys):
        keys.prime(info)
    for pub in wallet.keys.descriptor_at(info).expand(info.position).pubkeys:
        if hash160(pub) != script[3:23]:
            continue
        secret = _unlocked(lambda: keys(pub))  # noqa: B023 (called at once)
        if secret is not None:
            return sign_message(secret, message, len(pub) == 33)
    raise RpcError(RPC_WALLET_ERROR, "Private key not available")


@rpc_method(
    "verifymessage",
    "util",
    [Param("address", str, help="The bitcoin address to use for the signature."),
     Param("signature", str, help="The signature provided by the signer in base 64 encoding "
           "(see signmessage)."),
     Param("message", str, help="The message that was signed.")],
)  # fmt: skip
def verifymessage(node: Any, address: str, signature: str, message: str) -> bool:
    """Verify a signed message."""
    try:
        return verify_message(address, signature, message, node.params)
    except MessageError as e:
        raise _message_error(e) from None


@rpc_method(
    "signmessagewithprivkey",
    "util",
    [Param("privkey", str, help="The private key to sign the message with."),
     Param("message", str, help="The message to create a signature of.")],
)  # fmt: skip
def signmessagewithprivkey(node: Any, privkey: str, message: str) -> str:
    """Sign a message with the private key of an address"""
    try:
        secret, compressed = decode_wif(privkey, node.params)
    except ValueError:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid private key") from None
    return sign_message(secret, message, compressed)
