"""Paying between the wallets of two real node processes connected by P2P (issue #12, wave 2):
A pays B to each address type and B pays everything back (``sendall``), balances exact on both
sides; a payment bumped with ``bumpfee`` replaces the original in both mempools and confirms on
both; a reorg (``invalidateblock`` on both) returns a payment to the mempool and
``reconsiderblock`` confirms it again; a restart of both nodes keeps balances and history; an
encrypted wallet refuses to pay while locked (-13) and pays once unlocked.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.tools.nodeproc import NodeProcess, RpcCallError

from .framework.util import wait_until

pytestmark = pytest.mark.slow

ELSEWHERE = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
TYPES = ("legacy", "p2sh-segwit", "bech32", "bech32m")


def wcall(node: NodeProcess, method: str, *params: Any) -> Any:
    path = "/wallet/" + urllib.parse.quote("w", safe="")
    _, body, _ = node.post({"method": method, "params": list(params), "id": 1}, path=path)
    reply = json.loads(body, parse_float=Decimal)
    if reply.get("error"):
        raise RpcCallError(reply["error"]["code"], reply["error"]["message"])
    return reply["result"]


def trusted(node: NodeProcess) -> Decimal:
    return Decimal(wcall(node, "getbalances")["mine"]["trusted"])


@contextmanager
def pair(tmp_path: Path, wallet_arg: bool) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    extra = ["--wallet=w"] if wallet_arg else []
    a = NodeProcess(tmp_path / "a", extra_args=["--listen", "--fallbackfee=0.0002", *extra])
    b = NodeProcess(
        tmp_path / "b", extra_args=[f"--connect=127.0.0.1:{a.port}", "--listen", *extra]
    )
    with ExitStack() as stack:
        stack.enter_context(a.start())
        stack.enter_context(b.start())
        wait_until(lambda: a.call("getconnectioncount") >= 1, 60, 0.1, "B to connect to A")
        yield a, b


def synced(a: NodeProcess, b: NodeProcess) -> None:
    tip = a.call("getbestblockhash")
    wait_until(lambda: b.call("getbestblockhash") == tip, 60, 0.1, "B to reach A's tip")
    for n in (a, b):
        wcall(n, "getwalletinfo")  # waits for the wallet to see the tip


def in_pools(a: NodeProcess, b: NodeProcess, txid: str) -> None:
    wait_until(
        lambda: txid in a.call("getrawmempool") and txid in b.call("getrawmempool"),
        60,
        0.1,
        f"{txid} in both pools",
    )


def mine(a: NodeProcess, b: NodeProcess, n: int = 1) -> list[str]:
    blocks: list[str] = a.call("generatetoaddress", n, ELSEWHERE)
    synced(a, b)
    return blocks


def test_wallet_send(tmp_path: Path) -> None:
    with pair(tmp_path, False) as (a, b):
        for n in (a, b):
            assert n.call("createwallet", "w") == {"name": "w"}
        a_addr = wcall(a, "getnewaddress")
        a.call("generatetoaddress", 4, a_addr)
        mine(a, b, 100)
        assert trusted(a) == Decimal(200) and trusted(b) == 0

        # A pays B to each address type.
        sent: dict[str, Decimal] = {}
        fees = Decimal(0)
        for k, kind in enumerate(TYPES):
            address = wcall(b, "getnewaddress", "", kind)
            amount = Decimal(k + 1)
            txid = wcall(a, "sendtoaddress", address, str(amount), "", "", False, True, None, None,
                         True, 2)  # fmt: skip
            in_pools(a, b, txid)
            tx = wcall(a, "gettransaction", txid)
            assert tx["amount"] == -amount and tx["fee"] < 0
            fees += -tx["fee"]
            sent[txid] = amount
        mine(a, b)
        assert trusted(b) == Decimal(10)
        assert trusted(a) == Decimal(200) - 10 - fees
        for txid, amount in sent.items():
            got = wcall(b, "gettransaction", txid)
            assert got["amount"] == amount and got["confirmations"] == 1
        unspent = wcall(b, "listunspent")
        assert len(unspent) == 4

        # B pays everything back, spending one coin of each type.
        back = wcall(b, "sendall", [a_addr], None, None, 3)
        assert back["complete"] is True
        in_pools(a, b, back["txid"])
        back_tx = wcall(b, "gettransaction", back["txid"])
        back_fee = -back_tx["fee"]
        mine(a, b)
        assert trusted(b) == 0
        assert trusted(a) == Decimal(200) - fees - back_fee
        decoded = a.call("decoderawtransaction", back_tx["hex"])
        assert len(decoded["vin"]) == 4 and len(decoded["vout"]) == 1

        # Without fee_rate and without estimates, A pays -fallbackfee (20 sat/vB); B refuses.
        fallback = wcall(a, "sendtoaddress", ELSEWHERE, "0.1")
        paid = wcall(a, "gettransaction", fallback)
        vsize = a.call("decoderawtransaction", paid["hex"])["vsize"]
        assert 20 * vsize <= -paid["fee"] * 100_000_000 <= 21 * vsize
        with pytest.raises(RpcCallError) as err:
            wcall(b, "sendtoaddress", ELSEWHERE, "0.1")
        assert err.value.code == -6 and "Fallbackfee is disabled" in str(err.value)
        in_pools(a, b, fallback)
        mine(a, b)

        # A payment bumped: the replacement in both pools, the original gone.
        b_addr = wcall(b, "getnewaddress")
        before = trusted(a)
        original = wcall(a, "sendtoaddress", b_addr, "0.5", "", "", False, True, None,
                         None, True, 1)  # fmt: skip
        in_pools(a, b, original)
        bump = wcall(a, "bumpfee", original)
        assert sorted(bump) == ["errors", "fee", "origfee", "txid"] and bump["errors"] == []
        assert bump["fee"] > bump["origfee"]
        replacement = bump["txid"]
        in_pools(a, b, replacement)
        wait_until(
            lambda: (
                original not in a.call("getrawmempool") and original not in b.call("getrawmempool")
            ),
            60,
            0.1,
            "the original to leave both pools",
        )
        assert wcall(a, "gettransaction", original)["replaced_by_txid"] == replacement
        mine(a, b)
        assert wcall(a, "gettransaction", replacement)["confirmations"] == 1
        assert wcall(b, "gettransaction", replacement)["confirmations"] == 1
        assert trusted(b) == Decimal("0.5")
        assert trusted(a) == before - Decimal("0.5") - bump["fee"]

        # A reorg returns a confirmed payment to the pool; reconsidering confirms it again.
        payment = wcall(a, "sendtoaddress", b_addr, "0.25", "", "", False, True, None,
                        None, True, 2)  # fmt: skip
        in_pools(a, b, payment)
        [block] = mine(a, b)
        for n in (a, b):
            assert wcall(n, "gettransaction", payment)["confirmations"] == 1
        for n in (a, b):
            n.call("invalidateblock", block)
        for n in (a, b):
            wait_until(lambda n=n: payment in n.call("getrawmempool"), 60, 0.1, "back in pool")
            wcall(n, "getwalletinfo")
            assert wcall(n, "gettransaction", payment)["confirmations"] == 0
        for n in (a, b):
            n.call("reconsiderblock", block)
        synced(a, b)
        for n in (a, b):
            assert wcall(n, "gettransaction", payment)["confirmations"] == 1
        assert trusted(b) == Decimal("0.75")

        history = {n.datadir.name: wcall(n, "listtransactions", "*", 1000) for n in (a, b)}
        balances = {n.datadir.name: wcall(n, "getbalances")["mine"] for n in (a, b)}

    # A restart of both nodes keeps every balance and all history.
    with pair(tmp_path, True) as (a, b):
        synced(a, b)
        for n in (a, b):
            assert wcall(n, "listtransactions", "*", 1000) == history[n.datadir.name]
            assert wcall(n, "getbalances")["mine"] == balances[n.datadir.name]
        # An encrypted wallet refuses to sign without its passphrase; unlocked, the payment
        # reaches the other node's pool and confirms on both.
        wcall(b, "encryptwallet", "b-pass")
        a_addr = wcall(a, "getnewaddress")
        locked = (-13, "Error: Please enter the wallet passphrase with walletpassphrase first.")
        with pytest.raises(RpcCallError) as err:
            wcall(b, "sendtoaddress", a_addr, "0.1", "", "", False, True, None, None, False, 2)
        assert (err.value.code, err.value.message) == locked
        assert b.call("getrawmempool") == [] and a.call("getrawmempool") == []
        wcall(b, "walletpassphrase", "b-pass", 30)
        paid = wcall(b, "sendtoaddress", a_addr, "0.1", "", "", False, True, None, None, False, 2)
        in_pools(a, b, paid)
        mine(a, b)
        for n in (a, b):
            assert wcall(n, "gettransaction", paid)["confirmations"] == 1
