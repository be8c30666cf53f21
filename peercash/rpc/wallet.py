"""Wallet RPCs, part one: managing wallets, addresses, labels and descriptors (Core's
``wallet/rpc/wallet.cpp``, ``addresses.cpp``, ``backup.cpp``).

Layer 4. Every method here is ``lock=False`` (see ``walletutil``). Restoring from a BIP39
mnemonic is ``createwallet``'s extra named parameters ``mnemonic`` and ``mnemonic_passphrase``
(not in Core): the wallet gets the default descriptors of that seed and scans the whole chain.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from peercash.consensus.address import script_to_address
from peercash.wallet.crypter import WalletLocked
from peercash.wallet.descriptor import add_checksum
from peercash.wallet.descriptor.scripts import SHExpr, TRExpr
from peercash.wallet.hdsetup import OUTPUT_TYPES
from peercash.wallet.wallet import Wallet

from .registry import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    RPC_WALLET_ERROR,
    Param,
    RpcError,
    rpc_method,
)
from .util import Destination, address_to_script, decode_destination, describe_address
from .walletutil import manager, request_wallet, rpc_error, wallet_errors

CAT = "wallet"
RPC_WALLET_INVALID_LABEL_NAME = -11


def _startup(value: Any) -> bool | None:
    return None if value is None else bool(value)


# -- wallets ----------------------------------------------------------------------------------


@rpc_method(
    "createwallet",
    CAT,
    [
        Param("wallet_name", str, help="The name for the new wallet"),
        Param("disable_private_keys", bool, False, help="a watch-only wallet"),
        Param("blank", bool, False, help="a wallet without keys or descriptors"),
        Param("passphrase", str, "", help="encrypt the wallet with this passphrase"),
        Param("avoid_reuse", bool, False, help="keep track of coin reuse"),
        Param("descriptors", bool, True, help="must be true"),
        Param("load_on_startup", bool, None, help="load this wallet at start"),
        Param("external_signer", bool, False, help="not supported"),
        Param("mnemonic", str, None, help="peercash: restore from this BIP39 mnemonic"),
        Param("mnemonic_passphrase", str, "", help="peercash: the mnemonic's BIP39 passphrase"),
    ],
    result_help="name (string) the wallet's name",
    lock=False,
)
@wallet_errors
def createwallet(
    node: Any,
    wallet_name: str,
    disable_private_keys: bool,
    blank: bool,
    passphrase: str,
    avoid_reuse: bool,
    descriptors: bool,
    load_on_startup: Any,
    external_signer: bool,
    mnemonic: str | None,
    mnemonic_passphrase: str,
) -> dict[str, Any]:
    """Creates and loads a new wallet."""
    if not descriptors:
        raise RpcError(
            RPC_WALLET_ERROR,
            'descriptors argument must be set to "true"; it is no longer possible to create '
            "a legacy wallet.",
        )
    if external_signer:
        raise RpcError(RPC_WALLET_ERROR, "Compiled without external signing support")
    if mnemonic is not None and (blank or disable_private_keys):
        raise RpcError(RPC_INVALID_PARAMETER, "mnemonic needs a wallet with private keys")
    wallets = manager(node)
    wallets.create(
        wallet_name,
        blank=blank,
        disable_private_keys=disable_private_keys,
        avoid_reuse=avoid_reuse,
        mnemonic=mnemonic,
        passphrase=mnemonic_passphrase,
        load_on_startup=_startup(load_on_startup),
        encrypt_passphrase=passphrase,
    )
    return {"name": wallet_name}


@rpc_method(
    "loadwallet",
    CAT,
    [Param("filename", str, help="The wallet directory or .dat file"),
     Param("load_on_startup", bool, None, help="load this wallet at start")],
    result_help="name (string) the wallet's name",
    lock=False,
)  # fmt: skip
@wallet_errors
def loadwallet(node: Any, filename: str, load_on_startup: Any) -> dict[str, Any]:
    """Loads a wallet from a wallet file or directory."""
    manager(node).load(filename, load_on_startup=_startup(load_on_startup))
    return {"name": filename}


@rpc_method(
    "unloadwallet",
    CAT,
    [Param("wallet_name", str, None, help="the wallet (default: the request's)"),
     Param("load_on_startup", bool, None, help="load this wallet at start")],
    lock=False,
)  # fmt: skip
@wallet_errors
def unloadwallet(node: Any, wallet_name: str | None, load_on_startup: Any) -> dict[str, Any]:
    """Unloads the wallet named by the argument or the request's URI."""
    from .jsonrpc import REQUEST_WALLET

    uri = REQUEST_WALLET.get()
    if wallet_name is not None and uri is not None and wallet_name != uri:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            "RPC endpoint wallet and wallet_name parameter specify different wallets",
        )
    wallets = manager(node)
    name = wallet_name if wallet_name is not None else wallets.get(uri).name
    wallets.unload(name, load_on_startup=_startup(load_on_startup))
    return {}


@rpc_method("listwallets", CAT, lock=False, result_help="[name, …]")
def listwallets(node: Any) -> list[str]:
    """Returns a list of currently loaded wallets."""
    return manager(node).names()


@rpc_method("listwalletdir", CAT, lock=False, result_help="{wallets: [{name}]}")
def listwalletdir(node: Any) -> dict[str, Any]:
    """Returns a list of wallets in the wallet directory."""
    return {"wallets": [{"name": n, "warnings": []} for n in manager(node).list_dir()]}


@rpc_method(
    "backupwallet",
    CAT,
    [Param("destination", str, help="The destination directory or file")],
    lock=False,
)
@wallet_errors
def backupwallet(node: Any, destination: str) -> None:
    """Safely copies the current wallet file to the specified destination."""
    wallet = request_wallet(node)
    with wallet.lock:
        try:
            wallet.db.backup(Path(destination))
        except OSError as e:
            raise RpcError(RPC_WALLET_ERROR, f"Wallet backup failed! {e}") from None
    return None


@rpc_method(
    "restorewallet",
    CAT,
    [Param("wallet_name", str, help="The name for the restored wallet"),
     Param("backup_file", str, help="The backup file"),
     Param("load_on_startup", bool, None, help="load this wallet at start")],
    lock=False,
)  # fmt: skip
@wallet_errors
def restorewallet(
    node: Any, wallet_name: str, backup_file: str, load_on_startup: Any
) -> dict[str, Any]:
    """Restores and loads a wallet from a backup file."""
    manager(node).restore(wallet_name, Path(backup_file), load_on_startup=_startup(load_on_startup))
    return {"name": wallet_name}


@rpc_method("getwalletinfo", CAT, lock=False)
@wallet_errors
def getwalletinfo(node: Any) -> dict[str, Any]:
    """Returns an object containing various wallet state info."""
    wallet = request_wallet(node)
    with wallet.lock:
        keys = wallet.keys
        pool = sum(
            max(0, r.range_end + 1 - r.next_index)
            for r in keys.rows.values()
            if r.active_type is not None and r.internal is False
        )
        pool_change = sum(
            max(0, r.range_end + 1 - r.next_index)
            for r in keys.rows.values()
            if r.active_type is not None and r.internal is True
        )
        crypt = {"unlocked_until": wallet.crypto.unlocked_until} if wallet.is_crypted else {}
        return {
            "walletname": wallet.name,
            "walletversion": 169900,
            "format": "sqlite",
            "txcount": len(wallet.txs),
            "keypoolsize": pool,
            "keypoolsize_hd_internal": pool_change,
            **crypt,
            "paytxfee": 0,
            "private_keys_enabled": not wallet.flags.get("disable_private_keys", False),
            "avoid_reuse": wallet.flags.get("avoid_reuse", False),
            "scanning": False,
            "descriptors": True,
            "external_signer": False,
            "blank": wallet.flags.get("blank", False),
            "birthtime": min((r.timestamp for r in keys.rows.values()), default=0),
            "lastprocessedblock": {
                "hash": wallet.locator[0][1][::-1].hex() if wallet.locator else None,
                "height": wallet.last_height,
            },
        }


# -- addresses --------------------------------------------------------------------------------


def _output_type(address_type: str | None) -> str:
    kind = address_type or "bech32"
    if kind not in OUTPUT_TYPES:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Unknown address type '{kind}'")
    return kind


def _label(label: str) -> str:
    if label == "*":
        raise RpcError(RPC_WALLET_INVALID_LABEL_NAME, "Invalid label name")
    return label


@rpc_method(
    "getnewaddress",
    CAT,
    [Param("label", str, "", help="The label name for the address"),
     Param("address_type", str, None, help="legacy, p2sh-segwit, bech32 or bech32m")],
    lock=False,
)  # fmt: skip
@wallet_errors
def getnewaddress(node: Any, label: str, address_type: str | None) -> str:
    """Returns a new Bitcoin address for receiving payments."""
    wallet = request_wallet(node)
    return wallet.get_new_address(_label(label), _output_type(address_type))


@rpc_method(
    "getrawchangeaddress",
    CAT,
    [Param("address_type", str, None, help="legacy, p2sh-segwit, bech32 or bech32m")],
    lock=False,
)
@wallet_errors
def getrawchangeaddress(node: Any, address_type: str | None) -> str:
    """Returns a new Bitcoin address, for receiving change."""
    return request_wallet(node).get_change_address(_output_type(address_type))


@rpc_method(
    "setlabel",
    CAT,
    [Param("address", str, help="The address"), Param("label", str, help="The label")],
    lock=False,
)
@wallet_errors
def setlabel(node: Any, address: str, label: str) -> None:
    """Sets the label associated with the given address."""
    wallet = request_wallet(node)
    if address_to_script(address, wallet.params) is None:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid Bitcoin address")
    wallet.set_label(address, _label(label))
    return None


def _key_desc(wallet: Wallet, script: bytes) -> tuple[str | None, dict[str, Any]]:
    """The single-key descriptor of one of our scripts and the hd fields of its key."""
    info = wallet.keys.is_mine(script)
    if info is None:
        return None, {}
    desc = wallet.descriptor_for(info)
    expansion = desc.expand(info.position)
    if len(expansion.pubkeys) != 1:
        return None, {}
    pub, origin = next(iter(expansion.pubkeys.items()))
    path = "".join(f"/{i & 0x7FFFFFFF}{'h' if i & 0x80000000 else ''}" for i in origin.path)
    key_text = (
        f"[{origin.fingerprint.hex()}{path}]"
        + (pub[1:] if isinstance(desc.expr, TRExpr) and len(pub) == 33 else pub).hex()
    )
    outer = desc.to_string(checksum=False)
    head = outer.split("(", 1)[0]
    if isinstance(desc.expr, SHExpr):
        text = f"sh(wpkh({key_text}))"
    else:
        text = f"{head}({key_text})"
    fields: dict[str, Any] = {
        "hdkeypath": "m" + path.replace("h", "'") if origin.path else "m",
        "hdmasterfingerprint": origin.fingerprint.hex(),
    }
    if not isinstance(desc.expr, TRExpr):
        fields["pubkey"] = pub.hex()
    return add_checksum(text), fields


@rpc_method("getaddressinfo", CAT, [Param("address", str, help="The address")], lock=False)
@wallet_errors
def getaddressinfo(node: Any, address: str) -> dict[str, Any]:
    """Return information about the given bitcoin address."""
    wallet = request_wallet(node)
    dest = decode_destination(address, wallet.params)
    if not isinstance(dest, Destination):
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, dest.error)
    script = dest.script
    with wallet.lock:
        info = wallet.keys.is_mine(script)
        result: dict[str, Any] = {
            "address": script_to_address(script, wallet.params) or address,
            "scriptPubKey": script.hex(),
            "ismine": info is not None,
            "solvable": info is not None and wallet.descriptor_for(info).is_solvable,
        }
        desc, hd = _key_desc(wallet, script)
        if desc is not None:
            result["desc"] = desc
        if info is not None:
            parent = wallet.descriptor_for(info)
            result["parent_desc"] = parent.to_string()
        result["iswatchonly"] = False
        result.update(describe_address(dest))
        if "pubkey" in hd:
            result["pubkey"] = hd.pop("pubkey")
        if info is not None:
            row = wallet.keys.rows[info.desc_id]
            result["ischange"] = wallet.is_change_script(script)
            result["timestamp"] = row.timestamp
            result.update(hd)
        else:
            result["ischange"] = False
        label = wallet.address_book.get(result["address"])
        result["labels"] = [label[0]] if label is not None else []
        return result


# -- descriptors ------------------------------------------------------------------------------


def _timestamp(value: Any) -> int:
    if value == "now":
        return int(time.time())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value is None:
        raise RpcError(RPC_TYPE_ERROR, "Missing required timestamp field for key")
    raise RpcError(
        RPC_TYPE_ERROR,
        f'Expected number or "now" timestamp value for key. got type {type(value).__name__}',
    )


def _range(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        start, end = 0, value
    elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        start, end = value
    else:
        raise RpcError(RPC_INVALID_PARAMETER, "Range must be specified as end or as [begin,end]")
    if start < 0 or end < 0:
        raise RpcError(RPC_INVALID_PARAMETER, "Range should be greater or equal than 0")
    if end < start:
        raise RpcError(
            RPC_INVALID_PARAMETER, "Range specified as [begin,end] must not have begin after end"
        )
    if end - start >= 1_000_000:
        raise RpcError(RPC_INVALID_PARAMETER, "Range is too large")
    return start, end


@rpc_method(
    "importdescriptors",
    CAT,
    [Param("requests", list, help="Data to be imported")],
    lock=False,
)
@wallet_errors
def importdescriptors(node: Any, requests: list[Any]) -> list[dict[str, Any]]:
    """Import descriptors; rescans from the earliest timestamp that is not "now"."""
    wallet = request_wallet(node)
    if wallet.is_locked:  # Core refuses the whole call while locked, public imports too
        raise WalletLocked
    results: list[dict[str, Any]] = []
    earliest: int | None = None
    for request in requests:
        try:
            if not isinstance(request, dict):
                raise RpcError(RPC_TYPE_ERROR, "Expected object")
            if "desc" not in request:
                raise RpcError(RPC_INVALID_PARAMETER, "Descriptor not found.")
            stamp = request.get("timestamp")
            when = _timestamp(stamp)
            warnings = wallet.import_descriptor(
                str(request["desc"]),
                timestamp=when,
                active=bool(request.get("active", False)),
                internal=bool(request.get("internal", False)),
                range_=_range(request.get("range")),
                next_index=request.get("next_index"),
                label=request.get("label"),
            )
            if stamp != "now":
                earliest = when if earliest is None else min(earliest, when)
            result: dict[str, Any] = {"success": True}
            if warnings:
                result["warnings"] = warnings
        except RpcError as e:
            result = {"success": False, "error": {"code": e.code, "message": e.message}}
        except ValueError as e:
            err = rpc_error(e)
            result = {"success": False, "error": {"code": err.code, "message": err.message}}
        results.append(result)
    if earliest is not None:
        wallet.rescan_since(earliest)
    return results


@rpc_method(
    "listdescriptors",
    CAT,
    [Param("private", bool, False, help="Show private descriptors")],
    lock=False,
)
@wallet_errors
def listdescriptors(node: Any, private: bool) -> dict[str, Any]:
    """List descriptors imported into a descriptor-enabled wallet."""
    wallet = request_wallet(node)
    if private and wallet.flags.get("disable_private_keys"):
        raise RpcError(RPC_WALLET_ERROR, "Can't get descriptor string.")
    out = []
    with wallet.lock:
        for row in wallet.keys.rows.values():
            desc = wallet.private_descriptor(row.id) if private else wallet.keys.descs[row.id]
            entry: dict[str, Any] = {
                "desc": desc.to_string(private=private),
                "timestamp": row.timestamp,
                "active": row.active_type is not None,
            }
            if row.active_type is not None:
                entry["internal"] = bool(row.internal)
            if desc.is_range:
                entry["range"] = [row.range_start, row.range_end]
                entry["next"] = row.next_index
                entry["next_index"] = row.next_index
            out.append(entry)
    out.sort(key=lambda e: e["desc"])
    return {"wallet_name": wallet.name, "descriptors": out}
