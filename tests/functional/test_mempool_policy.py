"""The mempool of a real ``peercash node`` process over RPC and REST: a transaction accepted and
every view of it exact (getrawmempool, getmempoolentry, getmempoolinfo, getrawtransaction without
``-txindex``, gettxspendingprevout, ``/rest/mempool/…``, testmempoolaccept), and each policy
rule refused with Bitcoin Core 30's reject reason and RPC error code.

One node per module (``--rest``), plus one with non-default policy options for the rules that
need them. Coins are coinbases mined to P2WSH(OP_TRUE) (``framework.coins``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from framework.coins import OP_TRUE_ADDRESS, NodeCoins, out, txhex

from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.script import push_data
from peercash.tools.nodeproc import NodeProcess, RpcCallError
from peercash.tools.txbuild import NON_FINAL, OP_TRUE_SCRIPT, P2WSH_OP_TRUE

pytestmark = pytest.mark.slow

QUIET = ["--connect=0", "--listen"]
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
ANCHOR = bytes.fromhex("51024e73")
BARE_MULTISIG = bytes([0x51, 33]) + b"\x02" + b"\x11" * 32 + bytes([0x51, 0xAE])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("policy"), extra_args=[*QUIET, "--rest"]) as n:
        n.start()
        yield n


@pytest.fixture(scope="module")
def coins(node: NodeProcess) -> NodeCoins:
    c = NodeCoins(node)
    c.mine(130)
    return c


def btc(sats: int) -> Decimal:
    return Decimal(sats) / Decimal(100_000_000)


def rejected(node: NodeProcess, tx: Tx, *params: Any) -> tuple[int, str]:
    with pytest.raises(RpcCallError) as e:
        node.call("sendrawtransaction", txhex(tx), *params)
    return e.value.code, e.value.message


def as_json(value: Any) -> Any:
    """A JSON round trip with exact decimals, as the node printed them."""
    return json.loads(json.dumps(value), parse_float=Decimal)


# -- acceptance ------------------------------------------------------------------------------


def test_an_accepted_transaction_in_every_view(node: NodeProcess, coins: NodeCoins) -> None:
    coin = coins.coin()
    parent = coins.split(coin, 2, fee=2_000)
    child = coins.spend([out(parent, 0)], fee=1_000)
    info0 = node.call("getmempoolinfo")
    assert coins.send(parent) == parent.txid_hex
    assert coins.send(child) == child.txid_hex
    # A transaction already in the pool: its txid again, nothing changes (Core).
    assert coins.send(parent) == parent.txid_hex

    raw = node.call("getrawmempool")
    assert raw == [parent.txid_hex, child.txid_hex]
    seq = node.call("getrawmempool", False, True)
    assert seq["txids"] == raw and seq["mempool_sequence"] == 2
    verbose = node.call("getrawmempool", True)
    assert list(verbose) == raw

    pv, cv = parent.vsize(), child.vsize()
    e = node.call("getmempoolentry", parent.txid_hex)
    assert e == verbose[parent.txid_hex]
    assert (e["vsize"], e["weight"]) == (pv, parent.weight())
    assert e["height"] == coins.height
    assert (e["ancestorcount"], e["ancestorsize"]) == (1, pv)
    assert (e["descendantcount"], e["descendantsize"]) == (2, pv + cv)
    assert e["wtxid"] == parent.wtxid_hex
    assert as_json(e["fees"]) == {
        "base": btc(2_000),
        "modified": btc(2_000),
        "ancestor": btc(2_000),
        "descendant": btc(3_000),
        "chunk": btc(2_000),  # Core 31: the parent pays more per vB than its child, a chunk alone
    }
    assert e["depends"] == [] and e["spentby"] == [child.txid_hex]
    # Sequence 0xfffffffe does not signal BIP125 (the pool replaces anyway: full RBF).
    assert e["bip125-replaceable"] is False
    # Submitted over RPC and not yet asked for by a peer (Core's unbroadcast set).
    assert e["unbroadcast"] is True
    c = node.call("getmempoolentry", child.txid_hex)
    assert (c["ancestorcount"], c["ancestorsize"], c["descendantcount"]) == (2, pv + cv, 1)
    assert as_json(c["fees"])["ancestor"] == btc(3_000)
    assert c["depends"] == [parent.txid_hex] and c["spentby"] == []
    assert node.call("getmempoolancestors", child.txid_hex) == [parent.txid_hex]
    assert node.call("getmempooldescendants", parent.txid_hex) == [child.txid_hex]

    info = node.call("getmempoolinfo")
    assert info["size"] == info0["size"] + 2 == 2
    assert info["bytes"] == pv + cv
    assert as_json(info)["total_fee"] == btc(3_000)
    assert info["unbroadcastcount"] == 2
    assert info["loaded"] is True and info["maxmempool"] == 300_000_000
    assert as_json(info)["mempoolminfee"] == Decimal("0.00000100")
    assert as_json(info)["minrelaytxfee"] == Decimal("0.00000100")
    assert as_json(info)["incrementalrelayfee"] == Decimal("0.00000100")
    assert info["maxdatacarriersize"] == 100_000 and info["permitbaremultisig"] is True
    assert info["fullrbf"] is True

    # Without -txindex a pool transaction is still found, verbose too (no block fields).
    assert node.call("getrawtransaction", child.txid_hex) == txhex(child)
    v = node.call("getrawtransaction", child.txid_hex, True)
    assert (v["txid"], v["hash"], v["vsize"]) == (child.txid_hex, child.wtxid_hex, cv)
    assert "blockhash" not in v and "confirmations" not in v
    assert node.call("gettxspendingprevout", [{"txid": parent.txid_hex, "vout": 0},
                                              {"txid": parent.txid_hex, "vout": 1}]) == [
        {"txid": parent.txid_hex, "vout": 0, "spendingtxid": child.txid_hex},
        {"txid": parent.txid_hex, "vout": 1},
    ]  # fmt: skip

    status, body, headers = node.get("/rest/mempool/info.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == node.call("getmempoolinfo")
    status, body, _ = node.get("/rest/mempool/contents.json")
    assert status == 200 and json.loads(body) == node.call("getrawmempool", True)
    status, body, _ = node.get("/rest/mempool/contents.json?verbose=false&mempool_sequence=true")
    assert status == 200 and json.loads(body) == {"txids": raw, "mempool_sequence": 2}
    status, body, _ = node.get("/rest/mempool/nothing.json")
    assert status == 400

    # testmempoolaccept: the shape of an allowed result, and of one already in the pool.
    spare = coins.spend([out(parent, 1)], fee=1_500)
    [r] = node.call("testmempoolaccept", [txhex(spare)])
    sv = spare.vsize()
    assert as_json(r) == {
        "txid": spare.txid_hex,
        "wtxid": spare.wtxid_hex,
        "allowed": True,
        "vsize": sv,
        "fees": {
            "base": btc(1_500),
            "effective-feerate": btc(1_500 * 1000 // sv),
            "effective-includes": [spare.wtxid_hex],
        },
    }
    [r] = node.call("testmempoolaccept", [txhex(child)])
    assert r == {
        "txid": child.txid_hex,
        "wtxid": child.wtxid_hex,
        "allowed": False,
        "reject-reason": "txn-already-in-mempool",
        "reject-details": "txn-already-in-mempool",
    }
    assert node.call("getrawmempool") == raw  # testmempoolaccept kept nothing

    coins.mine(1)
    assert node.call("getrawmempool") == []
    assert node.call("getmempoolinfo")["unbroadcastcount"] == 0


# -- the policy rules, each refused with Core's reason -------------------------------------------


def _with_input(coins: NodeCoins, txin: TxIn, outputs: list[TxOut], version: int = 2) -> Tx:
    tx = Tx(version, [txin], outputs, 0)
    coins.book.record_tx(tx)
    return tx


Case = tuple[str, Callable[[NodeCoins], Tx], int, str, str]


def _rules(node: NodeProcess) -> list[Case]:
    """(name, build, sendrawtransaction code, its message, testmempoolaccept reject-reason)."""
    value = 50 * 100_000_000

    def change(c: NodeCoins, fee: int = 10_000) -> list[TxOut]:
        return [TxOut(value - fee, P2WSH_OP_TRUE)]

    def op_true(c: NodeCoins, script_sig: bytes = b"", witness: tuple[bytes, ...] = (OP_TRUE_SCRIPT,),
                sequence: int = NON_FINAL) -> TxIn:  # fmt: skip
        return TxIn(c.coin(), script_sig, sequence, witness)

    height = int(node.call("getblockcount"))
    cases: list[Case] = [
        ("version 4", lambda c: c.spend([c.coin()], version=4), -26, "version", "version"),
        ("version 0", lambda c: c.spend([c.coin()], version=0), -26, "version", "version"),
        ("tx-size",
         lambda c: _with_input(c, op_true(c, witness=(b"\x00" * 400_000, OP_TRUE_SCRIPT)),
                               change(c, 200_000)),
         -26, "tx-size", "tx-size"),
        ("scriptsig-size",
         lambda c: _with_input(c, op_true(c, script_sig=push_data(b"\x00" * 1648)), change(c)),
         -26, "scriptsig-size", "scriptsig-size"),
        ("scriptsig-not-pushonly",
         lambda c: _with_input(c, op_true(c, script_sig=b"\x61"), change(c)),
         -26, "scriptsig-not-pushonly", "scriptsig-not-pushonly"),
        ("scriptpubkey",
         lambda c: c.spend([c.coin()], [TxOut(value - 10_000, b"\x52")]),
         -26, "scriptpubkey", "scriptpubkey"),
        ("two dust outputs",
         lambda c: c.spend([c.coin()], [TxOut(100, P2WSH_OP_TRUE), TxOut(100, P2WSH_OP_TRUE),
                                        TxOut(value - 20_000, P2WSH_OP_TRUE)]),
         -26, "dust", "dust"),
        ("dust with a fee",
         lambda c: c.spend([c.coin()], [TxOut(0, ANCHOR), TxOut(value - 10_000, P2WSH_OP_TRUE)]),
         -26, "dust, tx with dust output must be 0-fee", "dust"),
        ("tx-size-small",
         lambda c: c.spend([c.coin()], [TxOut(0, b"\x6a")]),
         -26, "tx-size-small", "tx-size-small"),
        ("non-final",
         lambda c: c.spend([c.coin()], locktime=height + 10),
         -26, "non-final", "non-final"),
        ("non-BIP68-final",
         lambda c: c.spend([c.coin()], sequence=1000),
         -26, "non-BIP68-final", "non-BIP68-final"),
        ("premature coinbase spend",
         lambda c: c.spend([c.coinbases[-1][1]]),
         -26, "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 1",
         "bad-txns-premature-spend-of-coinbase"),
        ("bad-txns-in-belowout",
         lambda c: c.spend([c.coin()], [TxOut(value + 1_000_000, P2WSH_OP_TRUE)]),
         -26, "bad-txns-in-belowout, value in (50.00) < value out (50.01)",
         "bad-txns-in-belowout"),
        ("missing inputs",
         lambda c: c.spend([OutPoint(b"\x42" * 32, 0)], [TxOut(1_000_000, P2WSH_OP_TRUE)]),
         -25, "bad-txns-inputs-missingorspent", "missing-inputs"),
        ("min relay fee",
         lambda c: c.spend([c.coin()], fee=0),
         -26, "min relay fee not met, 0 < {minfee}", "min relay fee not met"),
        ("witness stack item too large",
         lambda c: _with_input(c, op_true(c, witness=(b"\x00" * 81, OP_TRUE_SCRIPT)), change(c)),
         -26, "bad-witness-nonstandard", "bad-witness-nonstandard"),
        ("consensus script failure",
         lambda c: _with_input(c, op_true(c, witness=(b"\x52",)), change(c)),
         -26, "mempool-script-verify-flag-failed (Witness program hash mismatch), input 0 of "
         "{txid} (wtxid {wtxid}), spending {prevout}",
         "mempool-script-verify-flag-failed (Witness program hash mismatch)"),
    ]  # fmt: skip
    return cases


def test_each_policy_rule_is_refused_with_cores_reason(node: NodeProcess, coins: NodeCoins) -> None:
    coins.mine(20)
    cases = _rules(node)
    checked = 0
    for name, build, code, message, reason in cases:
        tx = build(coins)
        [r] = node.call("testmempoolaccept", [txhex(tx)])
        assert r["allowed"] is False, name
        assert r["reject-reason"] == reason, name
        p = tx.inputs[0].prevout
        expected = message.format(
            minfee=-(-tx.vsize() * 100 // 1000),
            txid=tx.txid_hex,
            wtxid=tx.wtxid_hex,
            prevout=f"{p.txid_hex}:{p.index}",
        )
        assert rejected(node, tx) == (code, expected), name
        checked += 1
    assert checked == len(cases) == 17
    assert node.call("getrawmempool") == []


def test_a_script_failing_only_under_policy_flags(node: NodeProcess, coins: NodeCoins) -> None:
    """OP_NOP1 in a P2WSH script: valid by consensus, refused by the standard flags (Core 30
    reports every mempool script failure as ``mempool-script-verify-flag-failed``)."""
    from peercash.consensus.hashing import sha256

    script = bytes([0xB0, 0x51])  # OP_NOP1 OP_TRUE
    spk = b"\x00\x20" + sha256(script)
    fund = coins.spend([coins.coin()], script_pubkey=spk)
    coins.send(fund)
    value = fund.outputs[0].value - 10_000
    spend = Tx(2, [TxIn(out(fund), b"", NON_FINAL, (script,))], [TxOut(value, P2WSH_OP_TRUE)], 0)
    code, message = rejected(node, spend)
    assert code == RPC_VERIFY_REJECTED
    assert message == (
        "mempool-script-verify-flag-failed (NOPx reserved for soft-fork upgrades), input 0 of "
        f"{spend.txid_hex} (wtxid {spend.wtxid_hex}), spending {fund.txid_hex}:0"
    )
    # A block takes it: the rule is policy only.
    block = node.call("generateblock", OP_TRUE_ADDRESS, [fund.txid_hex, txhex(spend)])
    assert node.call("getrawtransaction", spend.txid_hex, True, block["hash"])["txid"] == (
        spend.txid_hex
    )
    coins.record_block(block["hash"])


def test_chain_duplicates_and_user_limits(node: NodeProcess, coins: NodeCoins) -> None:
    # Already mined: -27 from sendrawtransaction (its outputs exist), not a pool verdict.
    tx = coins.spend([coins.coin()])
    coins.send(tx)
    coins.mine(1)
    assert rejected(node, tx) == (RPC_VERIFY_ALREADY_IN_CHAIN,
                                  "Transaction outputs already in utxo set")  # fmt: skip
    # The same txid with another witness while the first is in the pool.
    first = coins.spend([coins.coin()])
    coins.send(first)
    twin = Tx(2, [TxIn(first.inputs[0].prevout, b"", NON_FINAL, (b"\x01", OP_TRUE_SCRIPT))],
              first.outputs, 0)  # fmt: skip
    assert twin.txid == first.txid and twin.wtxid != first.wtxid
    [r] = node.call("testmempoolaccept", [txhex(twin)])
    assert r["reject-reason"] == "txn-same-nonwitness-data-in-mempool"
    # sendrawtransaction answers the txid of the one in the pool, as Core does.
    assert coins.send(twin) == first.txid_hex
    # A fee above maxfeerate (default 0.10 BTC/kvB): -25; maxfeerate 0 lifts the limit.
    rich = coins.spend([coins.coin()], fee=2_000_000)
    assert rejected(node, rich) == (
        RPC_VERIFY_ERROR,
        "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
    )
    [r] = node.call("testmempoolaccept", [txhex(rich)])
    assert (r["allowed"], r["reject-reason"]) == (False, "max-fee-exceeded")
    assert coins.send(rich, 0) == rich.txid_hex
    # An OP_RETURN output with value: refused unless maxburnamount allows it.
    burn = coins.spend([coins.coin()], [TxOut(1_000, b"\x6a\x01\x01"),
                                        TxOut(50 * 100_000_000 - 11_000, P2WSH_OP_TRUE)])  # fmt: skip
    assert rejected(node, burn) == (
        RPC_VERIFY_ERROR,
        "Unspendable output exceeds maximum configured by user (maxburnamount)",
    )
    assert coins.send(burn, 0.1, 0.00001) == burn.txid_hex
    # Core 30: several OP_RETURN outputs are standard; pay-to-anchor with value too.
    multi = coins.spend([coins.coin()], [TxOut(0, b"\x6a\x01\x01"), TxOut(0, b"\x6a\x01\x02"),
                                         TxOut(240, ANCHOR),
                                         TxOut(50 * 100_000_000 - 10_240, P2WSH_OP_TRUE)])  # fmt: skip
    assert coins.send(multi) == multi.txid_hex
    coins.mine(1)
    assert node.call("getrawmempool") == []


# -- options ---------------------------------------------------------------------------------------


def test_policy_options(tmp_path: Path) -> None:
    args = [*QUIET, "--datacarriersize=10", "--no-permitbaremultisig",
            "--minrelaytxfee=0.00002", "--incrementalrelayfee=0.00003"]  # fmt: skip
    with NodeProcess(tmp_path / "opts", extra_args=args) as n:
        n.start()
        c = NodeCoins(n)
        c.mine(105)
        info = n.call("getmempoolinfo")
        assert info["maxdatacarriersize"] == 10 and info["permitbaremultisig"] is False
        assert as_json(info)["minrelaytxfee"] == Decimal("0.00002000")
        assert as_json(info)["incrementalrelayfee"] == Decimal("0.00003000")
        value = 50 * 100_000_000 - 10_000
        cases = [
            # 6 + 6 bytes of OP_RETURN scripts: over the 10-byte total, each alone fits.
            (c.spend([c.coin()], [TxOut(0, b"\x6a\x04" + b"a" * 4), TxOut(0, b"\x6a\x04" + b"b" * 4),
                                  TxOut(value, P2WSH_OP_TRUE)]), "datacarrier"),
            (c.spend([c.coin()], [TxOut(value, BARE_MULTISIG)]), "bare-multisig"),
        ]  # fmt: skip
        tx = c.spend([c.coin()], fee=150)
        cases.append((tx, f"min relay fee not met, 150 < {2 * tx.vsize()}"))
        for tx, message in cases:
            with pytest.raises(RpcCallError) as e:
                n.call("sendrawtransaction", txhex(tx))
            assert (e.value.code, e.value.message) == (RPC_VERIFY_REJECTED, message)
        ok = c.spend([c.coin()], [TxOut(0, b"\x6a\x04" + b"a" * 4), TxOut(value, P2WSH_OP_TRUE)])
        assert c.send(ok) == ok.txid_hex
    with NodeProcess(tmp_path / "nodata", extra_args=[*QUIET, "--no-datacarrier"]) as n:
        n.start()
        c = NodeCoins(n)
        c.mine(101)
        assert n.call("getmempoolinfo")["maxdatacarriersize"] == 0
        tx = c.spend([c.coin()], [TxOut(0, b"\x6a"), TxOut(49 * 100_000_000, P2WSH_OP_TRUE)])
        with pytest.raises(RpcCallError) as e:
            n.call("sendrawtransaction", txhex(tx))
        assert (e.value.code, e.value.message) == (RPC_VERIFY_REJECTED, "datacarrier")
