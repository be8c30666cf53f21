"""Multisig, miniscript and tapscript wallets spending through PSBTs passed between three real
node processes (issue #12, wave 2).

Node A (listening) has a ``miner`` wallet and watch-only wallets holding the public descriptors;
nodes B and C (each ``--connect``-ing to A) have signer wallets, each holding one xprv. A builds
the spending PSBT with ``createpsbt`` + ``walletprocesspsbt(sign=false)``; B and C sign it with
``walletprocesspsbt`` (the PSBTs travel as base64 text), A combines/finalizes and broadcasts, and
the block that confirms it reaches every node.

* ``wsh(sortedmulti(2, …))``: signed in turn (B then C) and in parallel (``combinepsbt`` +
  ``finalizepsbt``);
* ``wsh(or_d(pk(A), and_v(v:pk(B), older(10))))``: B's path is refused with Core's
  ``non-BIP68-final`` before ten confirmations and accepted at ten;
* ``tr(I, {pk(A), and_v(v:pk(B), older(5))})``: B signs the miniscript leaf after five.
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
from framework.util import wait_until

from peercash.consensus.params import get_params
from peercash.tools.nodeproc import NodeProcess, RpcCallError
from peercash.wallet.bip32 import ExtendedKey
from peercash.wallet.descriptor import add_checksum

pytestmark = pytest.mark.slow

P = get_params("regtest")
ELSEWHERE = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
KEYS = [ExtendedKey.from_seed(bytes([0x21 + n]) * 32) for n in range(3)]
XPRV = [k.to_string(P) for k in KEYS]
XPUB = [k.neuter().to_string(P) for k in KEYS]


def wcall(node: NodeProcess, wallet: str | None, method: str, *params: Any) -> Any:
    path = "/" if wallet is None else "/wallet/" + urllib.parse.quote(wallet, safe="")
    _, body, _ = node.post({"method": method, "params": list(params), "id": 1}, path=path)
    reply = json.loads(body, parse_float=Decimal)
    if reply.get("error"):
        raise RpcCallError(reply["error"]["code"], reply["error"]["message"])
    return reply["result"]


@contextmanager
def network(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    with ExitStack() as stack:
        a = stack.enter_context(
            NodeProcess(tmp_path / "a", extra_args=["--listen", "--keypool", "10"]).start()
        )
        others = []
        for name in ("b", "c"):
            args = ["--keypool", "10", f"--connect=127.0.0.1:{a.port}"]
            others.append(
                stack.enter_context(NodeProcess(tmp_path / name, extra_args=args).start())
            )
        nodes = [a, *others]
        wait_until(lambda: len(a.call("getpeerinfo")) == 2, 60, what="B and C connected to A")
        yield nodes


def sync(nodes: list[NodeProcess]) -> str:
    tip = nodes[0].call("getbestblockhash")
    for n in nodes[1:]:
        wait_until(lambda n=n: n.call("getbestblockhash") == tip, 60, what="tip synced")
    return tip


def import_desc(node: NodeProcess, wallet: str, text: str) -> None:
    desc = add_checksum(text)
    [result] = wcall(
        node, wallet, "importdescriptors", [{"desc": desc, "timestamp": 0, "range": [0, 5]}]
    )
    assert result["success"] is True, result


def address_of(node: NodeProcess, text: str, index: int = 0) -> str:
    [address] = node.call("deriveaddresses", add_checksum(text), [index, index])
    return str(address)


def fund(nodes: list[NodeProcess], address: str, amount: str = "1") -> tuple[str, int]:
    """A payment of ``amount`` from the miner to ``address``, confirmed in one block."""
    a = nodes[0]
    coin = next(c for c in wcall(a, "miner", "listunspent") if c["amount"] >= 2)
    change = wcall(a, "miner", "getrawchangeaddress")
    rest = coin["amount"] - Decimal(amount) - Decimal("0.0001")
    raw = a.call(
        "createrawtransaction",
        [{"txid": coin["txid"], "vout": coin["vout"]}],
        [{address: amount}, {change: str(rest)}],
    )
    signed = wcall(a, "miner", "signrawtransactionwithwallet", raw)
    assert signed["complete"] is True, signed
    txid = a.call("sendrawtransaction", signed["hex"])
    out = a.call("decoderawtransaction", signed["hex"])["vout"]
    a.call("generatetoaddress", 1, ELSEWHERE)
    vout = next(o["n"] for o in out if o["scriptPubKey"].get("address") == address)
    return txid, vout


def confirmed_everywhere(nodes: list[NodeProcess], txid: str) -> None:
    nodes[0].call("generatetoaddress", 1, ELSEWHERE)
    tip = sync(nodes)
    for n in nodes:
        assert txid in n.call("getblock", tip)["tx"]


def spend_psbt(a: NodeProcess, watch: str, txid: str, vout: int, sequence: int) -> str:
    raw = a.call(
        "createpsbt",
        [{"txid": txid, "vout": vout, "sequence": sequence}],
        [{ELSEWHERE: "0.999"}],
    )
    filled = wcall(a, watch, "walletprocesspsbt", raw, False)
    assert filled["complete"] is False
    return str(filled["psbt"])


def test_psbt_wallets_between_nodes(tmp_path: Path) -> None:
    with network(tmp_path) as nodes:
        a, b, c = nodes
        wcall(a, None, "createwallet", "miner")
        a.call("generatetoaddress", 101, wcall(a, "miner", "getnewaddress"))
        a.call("generatetoaddress", 5, wcall(a, "miner", "getnewaddress"))
        a.call("generatetoaddress", 100, ELSEWHERE)
        sync(nodes)

        # -- 2-of-3 sortedmulti -----------------------------------------------------------
        def multi(own: int | None) -> str:
            keys = ",".join(f"{XPRV[k] if k == own else XPUB[k]}/0/*" for k in range(3))
            return f"wsh(sortedmulti(2,{keys}))"

        wcall(a, None, "createwallet", "msig", True, True)
        import_desc(a, "msig", multi(None))
        import_desc(a, "msig", multi(None).replace("/0/*", "/1/*"))  # the change branch
        for node, own in ((b, 1), (c, 2)):
            wcall(node, None, "createwallet", "signer", False, True)
            import_desc(node, "signer", multi(own))
        address = address_of(a, multi(None), 0)
        txid, vout = fund(nodes, address)
        [coin] = wcall(a, "msig", "listunspent")
        assert (coin["txid"], coin["vout"], coin["amount"]) == (txid, vout, Decimal(1))
        psbt = spend_psbt(a, "msig", txid, vout, 0xFFFFFFFD)
        decoded = a.call("decodepsbt", psbt)["inputs"][0]
        assert "witness_utxo" in decoded and "witness_script" in decoded
        assert len(decoded["bip32_derivs"]) == 3

        by_b = wcall(b, "signer", "walletprocesspsbt", psbt)
        assert by_b["complete"] is False
        by_c = wcall(c, "signer", "walletprocesspsbt", psbt)
        assert by_c["complete"] is False
        combined = a.call("combinepsbt", [by_b["psbt"], by_c["psbt"]])
        final = a.call("finalizepsbt", combined)
        assert final["complete"] is True
        in_turn = wcall(c, "signer", "walletprocesspsbt", by_b["psbt"])
        assert in_turn["complete"] is True and in_turn["hex"] == final["hex"]
        spent = a.call("sendrawtransaction", final["hex"])
        confirmed_everywhere(nodes, spent)
        assert wcall(a, "msig", "listunspent") == []

        # -- miniscript: A now, or B after ten blocks ---------------------------------------
        def timelocked(a_key: str, b_key: str) -> str:
            return f"wsh(or_d(pk({a_key}/0/*),and_v(v:pk({b_key}/0/*),older(10))))"

        wcall(a, None, "createwallet", "mini", True, True)
        import_desc(a, "mini", timelocked(XPUB[0], XPUB[1]))
        import_desc(b, "signer", timelocked(XPUB[0], XPRV[1]))
        txid, vout = fund(nodes, address_of(a, timelocked(XPUB[0], XPUB[1]), 0))
        psbt = spend_psbt(a, "mini", txid, vout, 10)
        signed = wcall(b, "signer", "walletprocesspsbt", psbt)
        assert signed["complete"] is True
        a.call("generatetoaddress", 8, ELSEWHERE)  # nine confirmations: one too few
        with pytest.raises(RpcCallError) as err:
            a.call("sendrawtransaction", signed["hex"])
        assert (err.value.code, err.value.message) == (-26, "non-BIP68-final")
        a.call("generatetoaddress", 1, ELSEWHERE)
        spent = a.call("sendrawtransaction", signed["hex"])
        confirmed_everywhere(nodes, spent)

        # -- tapscript: a miniscript leaf with older(5) -------------------------------------
        def tap(b_key: str) -> str:
            return f"tr({XPUB[2]}/0/*,{{pk({XPUB[0]}/0/*),and_v(v:pk({b_key}/0/*),older(5))}})"

        wcall(a, None, "createwallet", "tap", True, True)
        import_desc(a, "tap", tap(XPUB[1]))
        import_desc(c, "signer", tap(XPRV[1]))
        txid, vout = fund(nodes, address_of(a, tap(XPUB[1]), 0))
        psbt = spend_psbt(a, "tap", txid, vout, 5)
        signed = wcall(c, "signer", "walletprocesspsbt", psbt)
        assert signed["complete"] is True
        with pytest.raises(RpcCallError) as err:
            a.call("sendrawtransaction", signed["hex"])
        assert (err.value.code, err.value.message) == (-26, "non-BIP68-final")
        a.call("generatetoaddress", 4, ELSEWHERE)
        spent = a.call("sendrawtransaction", signed["hex"])
        confirmed_everywhere(nodes, spent)
