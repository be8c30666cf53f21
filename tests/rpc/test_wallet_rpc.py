"""The wallet RPCs through the JSON-RPC layer, over an in-process chain: ``/wallet/<name>``
routing and Core's error codes, importdescriptors/listdescriptors, getaddressinfo."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.params import get_params
from peercash.rpc import methods  # noqa: F401  (registers the methods)
from peercash.rpc.jsonrpc import handle_body_sync
from peercash.wallet.manager import WalletManager

from ..wallet.chainsim import SimNode

P = get_params("regtest")
MNEMONIC = "abandon " * 11 + "about"
# BIP84's account-0 xpub of the mnemonic above, as tpub (regtest), for a watch-only import.
ACCOUNT = "84h/1h/0h"


class Services:
    """What ``execute_sync`` looks at, plus the wallet manager."""

    def __init__(self, wallets: WalletManager) -> None:
        self.wallets = wallets
        self.warmup = False
        self.warmup_message = ""
        self.active_commands: dict[int, Any] = {}
        self.chain_lock = threading.RLock()


def rpc_caller(services: Services) -> Any:
    """``call(method, *params, wallet=None)``: the result, or ("error", code, message)."""

    def call(method: str, *params: Any, wallet: str | None = None) -> Any:
        body = json.dumps({"method": method, "params": list(params), "id": 1}).encode()
        _, reply = handle_body_sync(services, body, wallet=wallet)
        assert reply is not None
        answer = json.loads(reply, parse_float=Decimal)
        if answer["error"] is not None:
            return ("error", answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    return call


@pytest.fixture
def rpc(tmp_path: Path) -> Any:
    node = SimNode(P)
    wallets = WalletManager(tmp_path / "wallets", P, node, keypool=10, entropy=lambda n: bytes(n))
    call = rpc_caller(Services(wallets))
    call.node = node  # type: ignore[attr-defined]
    yield call
    wallets.close_all()


def test_routing_and_error_codes(rpc: Any) -> None:
    assert rpc("getbalance")[:2] == ("error", -18)
    assert rpc("createwallet", "a") == {"name": "a"}
    assert rpc("getbalance") == 0  # the only wallet: "/" works
    assert rpc("createwallet", "b") == {"name": "b"}
    assert rpc("getbalance") == (
        "error",
        -19,
        "Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path).",
    )
    assert rpc("getbalance", wallet="b") == 0
    assert rpc("getbalance", wallet="zz") == (
        "error", -18, "Requested wallet does not exist or is not loaded"
    )  # fmt: skip
    assert rpc("createwallet", "a") == ("error", -35, 'Wallet "a" is already loaded.')
    assert rpc("loadwallet", "a")[:2] == ("error", -35)
    assert rpc("loadwallet", "nope")[:2] == ("error", -18)
    assert rpc("createwallet", "c", True, False, "secret")[:2] == ("error", -4)  # watch-only
    assert rpc("createwallet", "c", False, False, "", False, False)[:2] == ("error", -4)
    assert rpc("getnewaddress", "", "p2pk", wallet="a") == (
        "error", -5, "Unknown address type 'p2pk'"
    )  # fmt: skip
    assert rpc("unloadwallet", "b", wallet="a")[:2] == ("error", -8)
    assert rpc("unloadwallet", wallet="b") == {}
    assert rpc("listwallets") == ["a"]
    assert [w["name"] for w in rpc("listwalletdir")["wallets"]] == ["a", "b"]


def test_default_wallet_lives_at_the_top_of_the_wallet_dir(rpc: Any, tmp_path: Path) -> None:
    assert rpc("createwallet", "") == {"name": ""}
    assert (tmp_path / "wallets" / "wallet.dat").is_file()
    assert rpc("listwalletdir") == {"wallets": [{"name": "", "warnings": []}]}


def test_getaddressinfo_fields(rpc: Any) -> None:
    rpc("createwallet", "m", False, False, "", False, True, None, False, MNEMONIC)
    address = rpc("getnewaddress", "lbl")
    info = rpc("getaddressinfo", address)
    assert sorted(info) == sorted(
        ["address", "scriptPubKey", "ismine", "solvable", "desc", "parent_desc", "iswatchonly",
         "isscript", "iswitness", "witness_version", "witness_program", "pubkey", "ischange",
         "timestamp", "hdkeypath", "hdmasterfingerprint", "labels"]
    )  # fmt: skip
    assert info["ismine"] is True and info["iswatchonly"] is False
    assert info["hdkeypath"] == "m/84'/1'/0'/0/0"
    assert info["hdmasterfingerprint"] == "73c5da0a"
    assert info["labels"] == ["lbl"] and info["ischange"] is False
    assert info["desc"].startswith(f"wpkh([73c5da0a/{ACCOUNT}/0/0]{info['pubkey']})#")
    change = rpc("getaddressinfo", rpc("getrawchangeaddress", "bech32m"))
    assert change["ischange"] is True and change["witness_version"] == 1
    assert change["hdkeypath"] == "m/86'/1'/0'/1/0" and "pubkey" not in change
    legacy = rpc("getaddressinfo", rpc("getnewaddress", "", "legacy"))
    assert (legacy["isscript"], legacy["iswitness"]) == (False, False)
    foreign = rpc("getaddressinfo", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
    assert (foreign["ismine"], foreign["solvable"], foreign["labels"]) == (False, False, [])
    assert rpc("getaddressinfo", "nonsense")[:2] == ("error", -5)


def test_import_and_list_descriptors_in_a_watch_only_wallet(rpc: Any) -> None:
    rpc("createwallet", "keys", False, False, "", False, True, None, False, MNEMONIC)
    public = [d for d in rpc("listdescriptors", wallet="keys")["descriptors"]]
    assert len(public) == 8
    wpkh = next(d for d in public if d["desc"].startswith("wpkh(") and not d["internal"])
    assert wpkh["range"] == [0, 9] and wpkh["next_index"] == 0 and wpkh["active"] is True
    private = rpc("listdescriptors", True, wallet="keys")["descriptors"]
    assert all("tprv" in d["desc"] for d in private)

    rpc("createwallet", "watch", True)
    assert rpc("listdescriptors", True, wallet="watch")[:2] == ("error", -4)
    results = rpc(
        "importdescriptors",
        [
            {"desc": wpkh["desc"], "timestamp": 0, "active": True, "range": [0, 20]},
            {"desc": private[0]["desc"], "timestamp": "now"},
            {"timestamp": "now"},
            {"desc": wpkh["desc"]},
            {"desc": "wpkh(02" + "00" * 32 + ")", "timestamp": "now"},
            {"desc": wpkh["desc"], "timestamp": "now", "label": "x", "active": True},
        ],
        wallet="watch",
    )
    assert results == [
        {"success": True},
        {"success": False, "error": {"code": -4, "message":
            "Cannot import private keys to a wallet with private keys disabled"}},
        {"success": False, "error": {"code": -8, "message": "Descriptor not found."}},
        {"success": False, "error": {"code": -3, "message":
            "Missing required timestamp field for key"}},
        {"success": False, "error": {"code": -5, "message": "Missing checksum"}},
        {"success": False, "error": {"code": -8, "message":
            "Active descriptors cannot have a label"}},
    ]  # fmt: skip
    [listed] = rpc("listdescriptors", wallet="watch")["descriptors"]
    assert listed["desc"] == wpkh["desc"] and listed["range"] == [0, 20]
    first = rpc("getnewaddress", wallet="keys")
    watched = rpc("getaddressinfo", first, wallet="watch")
    assert watched["ismine"] is True and watched["solvable"] is True
    assert rpc("getnewaddress", wallet="watch")[:2] == ("error", -4)


def test_history_of_a_send_with_change(rpc: Any) -> None:
    from peercash.consensus.address import address_to_script
    from peercash.consensus.primitives import OutPoint

    from ..wallet.chainsim import spend

    node = rpc.node
    rpc("createwallet", "h")
    receive = rpc("getnewaddress", "pay")
    block = node.mine([], to=address_to_script(receive, P))
    for _ in range(100):
        node.mine([])
    change = address_to_script(rpc("getrawchangeaddress"), P)
    elsewhere = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    tx = spend(
        [OutPoint(block.txs[0].txid, 0)],
        [(10 * 10**8, address_to_script(elsewhere, P)), (39 * 10**8, change)],
    )
    node.add_to_mempool(tx)
    got = rpc("gettransaction", tx.txid_hex)
    assert got["amount"] == Decimal("-10.00000000") and got["fee"] == Decimal("-1.00000000")
    assert got["confirmations"] == 0 and got["trusted"] is True
    assert got["details"] == [
        {"address": elsewhere, "category": "send", "amount": Decimal("-10.00000000"),
         "vout": 0, "fee": Decimal("-1.00000000"), "abandoned": False}
    ]  # fmt: skip
    assert got["hex"] == tx.serialize().hex()
    assert rpc("getbalances")["mine"] == {
        "trusted": Decimal("39.00000000"), "untrusted_pending": 0, "immature": 0
    }  # fmt: skip
    history = rpc("listtransactions", "*", 10)
    assert [(e["category"], e["amount"]) for e in history] == [
        ("generate", Decimal("50.00000000")),
        ("send", Decimal("-10.00000000")),
    ]
    assert rpc("listtransactions", "*", 1, 1)[0]["category"] == "generate"
    assert [e["category"] for e in rpc("listtransactions", "pay")] == ["generate"]
    since = rpc("listsinceblock", node.blocks[100].header.hash_hex)
    assert [e["txid"] for e in since["transactions"]] == [tx.txid_hex]
    assert since["lastblock"] == node.blocks[-1].header.hash_hex
    node.mine([tx])
    assert rpc("gettransaction", tx.txid_hex)["blockheight"] == 102
    assert (
        rpc("listsinceblock", node.blocks[101].header.hash_hex)["transactions"][0]["confirmations"]
        == 1
    )
    assert rpc("gettransaction", "00" * 32)[:2] == ("error", -5)
    assert rpc("rescanblockchain", 5, 4) == (
        "error", -8, "stop_height must be greater than start_height"
    )  # fmt: skip
    assert rpc("rescanblockchain", 100) == {"start_height": 100, "stop_height": 102}
    unspent = rpc("listunspent")
    assert [(u["vout"], u["amount"], u["confirmations"]) for u in unspent] == [
        (1, Decimal("39.00000000"), 1)
    ]
    assert "label" not in unspent[0]  # change has no address book entry
    assert rpc("lockunspent", False, [{"txid": tx.txid_hex, "vout": 1}]) is True
    assert rpc("lockunspent", False, [{"txid": tx.txid_hex, "vout": 1}])[:2] == ("error", -8)
    assert rpc("listunspent") == []
    assert rpc("getbalance", "x")[:2] == ("error", -32)


def test_without_a_wallet_manager_the_methods_are_not_found(tmp_path: Path) -> None:
    services = Services(None)  # type: ignore[arg-type]
    body = json.dumps({"method": "getbalance", "params": [], "id": 1}).encode()
    status, reply = handle_body_sync(services, body)
    assert status == 404
    assert json.loads(reply or b"")["error"] == {
        "code": -32601,
        "message": "Method not found (wallet is disabled)",
    }
