"""Wallet encryption on a real node process: encryptwallet, ``listdescriptors true`` refused
while locked (-13), a wrong passphrase (-14), unlock, relock after a 1 s timeout, and a restart
that keeps the wallet encrypted and locked; after it, ``sendtoaddress`` from the locked wallet is
refused (-13) and sends nothing, and once unlocked the same payment is sent and mined."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from peercash.tools.nodeproc import NodeProcess, RpcCallError

from .test_wallet_basic import wcall

pytestmark = pytest.mark.slow

LOCKED = (-13, "Error: Please enter the wallet passphrase with walletpassphrase first.")
WRONG = (-14, "Error: The wallet passphrase entered was incorrect.")


def refused(node: NodeProcess, method: str, *params: object) -> tuple[int, str]:
    with pytest.raises(RpcCallError) as err:
        wcall(node, "w", method, *params)
    return err.value.code, err.value.message


def test_encrypt_unlock_relock_restart(tmp_path: Path) -> None:
    args = ["--keypool", "10"]
    with NodeProcess(tmp_path / "n", extra_args=args).start() as node:
        assert wcall(node, None, "createwallet", "w", False, False, "", False, True, True) == {
            "name": "w"
        }
        old = wcall(node, "w", "getnewaddress")
        assert wcall(node, "w", "encryptwallet", "s3cret").startswith("wallet encrypted; ")
        assert wcall(node, "w", "getwalletinfo")["unlocked_until"] == 0
        assert refused(node, "listdescriptors", True) == LOCKED
        assert refused(node, "walletpassphrase", "wrong", 60) == WRONG
        new = wcall(node, "w", "getnewaddress")  # works locked: a new seed's address
        assert new != old and new.startswith("bcrt1q")
        assert wcall(node, "w", "walletpassphrase", "s3cret", 2) is None
        until = wcall(node, "w", "getwalletinfo")["unlocked_until"]
        assert abs(until - (time.time() + 2)) < 5
        descs = wcall(node, "w", "listdescriptors", True)["descriptors"]
        assert len(descs) == 16 and all("tprv" in d["desc"] for d in descs)
        deadline = time.time() + 10
        while wcall(node, "w", "getwalletinfo")["unlocked_until"] != 0:
            assert time.time() < deadline, "the wallet did not relock"
            time.sleep(0.2)
        assert refused(node, "listdescriptors", True) == LOCKED
        assert wcall(node, "w", "walletpassphrase", "s3cret", 60) is None
        assert wcall(node, "w", "walletlock") is None
        assert refused(node, "listdescriptors", True) == LOCKED
    with NodeProcess(tmp_path / "n", extra_args=args).start() as node:
        info = wcall(node, "w", "getwalletinfo")
        assert info["unlocked_until"] == 0
        assert refused(node, "listdescriptors", True) == LOCKED
        assert refused(node, "walletpassphrase", "wrong", 60) == WRONG
        assert wcall(node, "w", "walletpassphrase", "s3cret", 60) is None
        descs = wcall(node, "w", "listdescriptors", True)["descriptors"]
        assert len(descs) == 16 and all("tprv" in d["desc"] for d in descs)
        assert any(d["desc"].startswith("wpkh(") and d["active"] for d in descs)
        # Signing: funded, locked again, a payment is refused and nothing reaches the pool.
        mine_to = wcall(node, "w", "getnewaddress")
        node.call("generatetoaddress", 101, mine_to)
        assert wcall(node, "w", "getbalances")["mine"]["trusted"] == 50
        assert wcall(node, "w", "walletlock") is None
        payee = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
        assert refused(node, "sendtoaddress", payee, 1, "", "", False, True, None, "unset",
                       False, 10) == LOCKED  # fmt: skip
        assert node.call("getrawmempool") == []
        assert wcall(node, "w", "walletpassphrase", "s3cret", 60) is None
        txid = wcall(node, "w", "sendtoaddress", payee, 1, "", "", False, True, None, "unset",
                     False, 10)  # fmt: skip
        assert node.call("getrawmempool") == [txid]
        block = node.call("generatetoaddress", 1, mine_to)[0]
        assert txid in node.call("getblock", block)["tx"]
        assert wcall(node, "w", "gettransaction", txid)["confirmations"] == 1
