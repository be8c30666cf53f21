"""The wallet on real node processes (issue #12): create, addresses of each type, mining to a
wallet address (immature, then trusted), coins and history with Core's fields, two wallets and
``/wallet/<name>`` routing, unload/load, restart with ``-wallet``, backup/restore, and restoring
from a mnemonic.

Every node is a ``NodeProcess`` context manager (stopped also when a test fails).
"""

from __future__ import annotations

import json
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.tools.nodeproc import NodeProcess, RpcCallError

pytestmark = pytest.mark.slow

MNEMONIC = "abandon " * 11 + "about"
ELSEWHERE = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"  # not any test wallet's


def wcall(node: NodeProcess, wallet: str | None, method: str, *params: Any) -> Any:
    """A JSON-RPC call on ``/wallet/<wallet>`` (``/`` for None); raises ``RpcCallError``."""
    path = "/" if wallet is None else "/wallet/" + urllib.parse.quote(wallet, safe="")
    _, body, _ = node.post({"method": method, "params": list(params), "id": 1}, path=path)
    reply = json.loads(body, parse_float=Decimal)
    if reply.get("error"):
        raise RpcCallError(reply["error"]["code"], reply["error"]["message"])
    return reply["result"]


def test_wallet_lifecycle(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "n", extra_args=["--keypool", "30"]).start() as node:
        assert wcall(node, None, "createwallet", "w1") == {"name": "w1"}
        addresses = {
            kind: wcall(node, None, "getnewaddress", "", kind)
            for kind in ("legacy", "p2sh-segwit", "bech32", "bech32m")
        }
        assert addresses["legacy"][0] in "mn"
        assert addresses["p2sh-segwit"].startswith("2")
        assert addresses["bech32"].startswith("bcrt1q")
        assert addresses["bech32m"].startswith("bcrt1p")
        default = wcall(node, None, "getnewaddress")
        assert default.startswith("bcrt1q")
        info = wcall(node, None, "getaddressinfo", default)
        assert info["ismine"] is True and info["solvable"] is True
        assert info["iswitness"] is True and info["witness_version"] == 0
        assert info["ischange"] is False and info["labels"] == [""]
        assert info["hdkeypath"] == "m/84'/1'/0'/0/1"
        assert info["desc"].startswith("wpkh([" + info["hdmasterfingerprint"] + "/84h/1h/0h/0/1]")

        # Mine one block to the wallet, then 100 more elsewhere: immature, then trusted.
        [block] = node.call("generatetoaddress", 1, default)
        balances = wcall(node, None, "getbalances")["mine"]
        assert balances == {"trusted": 0, "untrusted_pending": 0, "immature": Decimal(50)}
        [entry] = wcall(node, None, "listtransactions")
        assert entry["category"] == "immature" and entry["confirmations"] == 1
        assert sorted(entry) == sorted(
            ["address", "category", "amount", "label", "vout", "parent_descs", "confirmations",
             "generated", "blockhash", "blockheight", "blockindex", "blocktime", "txid", "wtxid",
             "walletconflicts", "mempoolconflicts", "time", "timereceived",
             "bip125-replaceable"]
        )  # fmt: skip
        assert (entry["address"], entry["blockhash"], entry["blockheight"]) == (default, block, 1)
        node.call("generatetoaddress", 99, ELSEWHERE)
        assert wcall(node, None, "getbalance") == 0  # depth 100: still immature
        node.call("generatetoaddress", 1, ELSEWHERE)
        assert wcall(node, None, "getbalance") == Decimal("50.00000000")
        unspent = wcall(node, None, "listunspent")
        assert len(unspent) == 1
        coin = unspent[0]
        assert coin["address"] == default and coin["amount"] == Decimal("50.00000000")
        assert coin["confirmations"] == 101 and coin["safe"] is True
        assert coin["spendable"] is True and coin["solvable"] is True
        assert coin["desc"] == info["desc"]
        assert sorted(coin) == sorted(
            ["txid", "vout", "address", "label", "scriptPubKey", "amount", "confirmations",
             "spendable", "solvable", "desc", "parent_descs", "safe"]
        )  # fmt: skip
        tx = wcall(node, None, "gettransaction", coin["txid"])
        assert tx["amount"] == Decimal("50.00000000") and tx["confirmations"] == 101
        assert tx["blockhash"] == block and tx["blockheight"] == 1 and tx["generated"] is True
        assert tx["details"] == [
            {
                "address": default,
                "category": "generate",
                "amount": Decimal("50.00000000"),
                "label": "",
                "vout": 0,
                "parent_descs": coin["parent_descs"],
            }
        ]
        assert wcall(node, None, "lockunspent", False, [{"txid": coin["txid"], "vout": 0}])
        assert wcall(node, None, "listlockunspent") == [{"txid": coin["txid"], "vout": 0}]
        assert wcall(node, None, "listunspent") == []
        assert wcall(node, None, "lockunspent", True)

        # A second wallet: now "/" is ambiguous.
        wcall(node, None, "createwallet", "w2")
        with pytest.raises(RpcCallError) as err:
            wcall(node, None, "getbalance")
        assert err.value.code == -19
        assert wcall(node, "w2", "getbalance") == 0
        assert wcall(node, "w1", "getbalance") == Decimal("50.00000000")
        assert sorted(wcall(node, None, "listwallets")) == ["w1", "w2"]
        cli = node.cli("-rpcwallet=w2", "getwalletinfo")
        assert cli.returncode == 0, cli.stderr
        info2 = json.loads(cli.stdout)
        assert (info2["walletname"], info2["txcount"], info2["descriptors"]) == ("w2", 0, True)
        assert info2["keypoolsize"] == 4 * 30 and info2["private_keys_enabled"] is True
        assert info2["lastprocessedblock"]["height"] == 101
        assert node.cli("getwalletinfo").returncode != 0  # two wallets, no -rpcwallet
        with pytest.raises(RpcCallError) as err:
            wcall(node, None, "createwallet", "w2")
        assert err.value.code == -35
        with pytest.raises(RpcCallError) as err:
            wcall(node, "nope", "getbalance")
        assert err.value.code == -18

        backup = tmp_path / "w1.bak"
        assert wcall(node, "w1", "backupwallet", str(backup)) is None
        assert wcall(node, None, "unloadwallet", "w2") == {}
        assert wcall(node, None, "listwallets") == ["w1"]
        assert wcall(node, None, "loadwallet", "w2") == {"name": "w2"}
        assert wcall(node, None, "restorewallet", "w1copy", str(backup)) == {"name": "w1copy"}
        assert wcall(node, "w1copy", "getbalance") == Decimal("50.00000000")
        names = [w["name"] for w in wcall(node, None, "listwalletdir")["wallets"]]
        assert sorted(names) == ["w1", "w1copy", "w2"]  # before the default wallet exists
        with pytest.raises(RpcCallError) as err:
            wcall(node, None, "createwallet", "legacy", False, False, "", False, False)
        assert err.value.code == -4
        wcall(node, None, "createwallet", "")  # the default wallet: "/wallet/" reaches it
        assert wcall(node, "", "getwalletinfo")["walletname"] == ""
        with pytest.raises(RpcCallError) as err:
            wcall(node, "w1", "getnewaddress", "*")
        assert err.value.code == -11

    # Restart with -wallet=w1: balance and history come back.
    with NodeProcess(tmp_path / "n", extra_args=["-wallet", "w1"]).start() as node:
        assert wcall(node, None, "listwallets") == ["w1"]
        assert wcall(node, None, "getbalance") == Decimal("50.00000000")
        history = wcall(node, None, "listtransactions", "*", 100)
        assert [e["category"] for e in history] == ["generate"]


def test_restore_from_mnemonic_finds_every_coin(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "n", extra_args=["--keypool", "40"]).start() as node:
        wcall(node, None, "createwallet", "a", False, False, "", False, True, None, False, MNEMONIC)
        # Pay 5 coinbases to receive addresses 0, 10, 25, 38 and 60 (the last beyond the first
        # window of 40, found because using 38 moves the window).
        wanted = [0, 10, 25, 38, 60]
        addresses = [wcall(node, "a", "getnewaddress") for _ in range(61)]
        for i in wanted:
            node.call("generatetoaddress", 1, addresses[i])
        node.call("generatetoaddress", 100, ELSEWHERE)
        assert wcall(node, "a", "getbalance") == Decimal("250.00000000")
        # The BIP84 vector for this mnemonic (regtest uses coin type 1: the testnet path).
        first = wcall(node, "a", "getaddressinfo", addresses[0])
        assert first["hdmasterfingerprint"] == "73c5da0a"
        wcall(node, None, "createwallet", "b", False, False, "", False, True, None, False, MNEMONIC)
        assert wcall(node, "b", "getbalance") == Decimal("250.00000000")
        assert len(wcall(node, "b", "listunspent")) == 5
        assert wcall(node, "b", "rescanblockchain") == {"start_height": 0, "stop_height": 105}
        assert wcall(node, "b", "getbalance") == Decimal("250.00000000")


def test_reorg_through_invalidateblock(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "n", extra_args=["--keypool", "5"]).start() as node:
        wcall(node, None, "createwallet", "r")
        address = wcall(node, None, "getnewaddress")
        [block] = node.call("generatetoaddress", 1, address)
        node.call("generatetoaddress", 100, ELSEWHERE)
        assert wcall(node, None, "getbalance") == Decimal(50)
        node.call("invalidateblock", block)
        assert wcall(node, None, "getbalances")["mine"] == {
            "trusted": 0, "untrusted_pending": 0, "immature": 0
        }  # fmt: skip
        [entry] = wcall(node, None, "listtransactions")
        assert (entry["category"], entry["confirmations"]) == ("orphan", 0)
        assert wcall(node, None, "getwalletinfo")["lastprocessedblock"]["height"] == 0
        node.call("reconsiderblock", block)
        assert wcall(node, None, "getbalance") == Decimal(50)
        assert wcall(node, None, "gettransaction", entry["txid"])["blockhash"] == block
