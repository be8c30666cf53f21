"""The sending RPCs through the JSON-RPC layer over the in-process chain: results and Core's
error codes and messages (sendtoaddress, sendmany, send, sendall, fundrawtransaction,
walletcreatefundedpsbt, bumpfee, psbtbumpfee, settxfee)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from peercash.consensus.address import address_to_script
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.wallet.psbt.model import Psbt

from .test_wallet_rpc import P, rpc  # noqa: F401  (the fixture)

ELSEWHERE = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def funded(rpc: Any) -> Any:  # noqa: F811
    assert rpc("createwallet", "w") == {"name": "w"}
    address = rpc("getnewaddress")
    rpc.node.mine([], to=address_to_script(address, P))
    for _ in range(100):
        rpc.node.mine([])
    assert rpc("getbalance") == Decimal(50)
    return rpc


def test_sendtoaddress_errors(rpc: Any) -> None:  # noqa: F811
    funded(rpc)
    assert rpc("sendtoaddress", "xyz", 1) == ("error", -5, "Invalid Bitcoin address: xyz")
    assert rpc("sendtoaddress", ELSEWHERE, 0) == ("error", -3, "Invalid amount for send")
    both = rpc("sendtoaddress", ELSEWHERE, 1, "", "", False, True, 6, None, True, 2)
    assert both == (
        "error",
        -8,
        "Cannot specify both conf_target and fee_rate. Please provide either a confirmation "
        "target in blocks for automatic fee estimation, or an explicit fee rate.",
    )
    assert rpc("sendtoaddress", ELSEWHERE, 1, "", "", False, True, 0) == (
        "error", -8, "Invalid conf_target, must be between 1 and 1008"
    )  # fmt: skip
    assert rpc("sendtoaddress", ELSEWHERE, 1, "", "", False, True, None, "fast") == (
        "error",
        -8,
        'Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative"',
    )
    assert rpc("sendtoaddress", ELSEWHERE, 1) == (
        "error",
        -6,
        "Fee estimation failed. Fallbackfee is disabled. Wait a few blocks or enable -fallbackfee.",
    )
    insufficient = rpc("sendtoaddress", ELSEWHERE, 50, "", "", False, True, None, None, True, 1)
    assert insufficient == ("error", -6, "Insufficient funds")


def test_sendtoaddress_and_sendmany(rpc: Any) -> None:  # noqa: F811
    funded(rpc)
    txid = rpc("sendtoaddress", ELSEWHERE, 1, "rent", "", False, True, None, None, True, 2)
    assert isinstance(txid, str) and len(txid) == 64
    tx = rpc("gettransaction", txid)
    assert tx["amount"] == Decimal(-1) and tx["fee"] == Decimal("-0.00000282")
    assert tx["comment"] == "rent"
    verbose = rpc("sendtoaddress", ELSEWHERE, 1, "", "", False, True, None, None, True, 2, True)
    assert sorted(verbose) == ["fee_reason", "txid"] and verbose["fee_reason"] == "PayTxFee set"
    assert rpc("sendmany", "x", {ELSEWHERE: 1}) == ("error", -8, 'Dummy value must be set to ""')
    other = rpc("getnewaddress")
    many = rpc("sendmany", "", {ELSEWHERE: 1, other: 2}, None, "", [other], True, None, None, 1)
    got = rpc("gettransaction", many)
    assert got["fee"] < 0 and len(rpc.node.mempool[bytes.fromhex(many)[::-1]].outputs) == 3
    assert rpc("sendmany", "", {ELSEWHERE: 1}, None, "", ["nope"])[:2] == ("error", -8)


def test_fundrawtransaction_and_walletcreatefundedpsbt(rpc: Any) -> None:  # noqa: F811
    funded(rpc)
    raw = Tx(2, [], [TxOut(100_000_000, address_to_script(ELSEWHERE, P))], 0).serialize().hex()
    result = rpc("fundrawtransaction", raw, {"fee_rate": 5})
    assert sorted(result) == ["changepos", "fee", "hex"]
    tx = Tx.from_hex(result["hex"])
    assert len(tx.inputs) == 1 and len(tx.outputs) == 2 and result["changepos"] in (0, 1)
    assert result["fee"] == Decimal("0.00000705")  # 141 vB × 5 sat/vB
    big = Tx(2, [], [TxOut(60 * 100_000_000, address_to_script(ELSEWHERE, P))], 0)
    assert rpc("fundrawtransaction", big.serialize().hex(), {"fee_rate": 1}) == (
        "error", -4, "Insufficient funds"
    )  # fmt: skip
    assert rpc("fundrawtransaction", raw, {"bogus": 1}) == (
        "error", -8, "Invalid parameter, unknown key: bogus"
    )  # fmt: skip
    [coin] = rpc("listunspent")
    prevout = OutPoint(bytes.fromhex(coin["txid"])[::-1], coin["vout"])
    mine = Tx(2, [TxIn(prevout, b"", 5)], [TxOut(100_000_000, big.outputs[0].script_pubkey)], 77)
    kept = Tx.from_hex(rpc("fundrawtransaction", mine.serialize().hex(), {"fee_rate": 1})["hex"])
    assert [(i.prevout, i.sequence) for i in kept.inputs] == [(prevout, 5)]
    assert kept.locktime == 77
    psbt = rpc("walletcreatefundedpsbt", [], [{ELSEWHERE: 1}], 0, {"fee_rate": 5})
    assert sorted(psbt) == ["changepos", "fee", "psbt"] and psbt["fee"] == Decimal("0.00000705")
    parsed = Psbt.from_base64(psbt["psbt"])
    assert parsed.inputs[0].witness_utxo is not None and len(parsed.inputs[0].bip32_derivs) == 1


def test_send_and_sendall(rpc: Any) -> None:  # noqa: F811
    funded(rpc)
    result = rpc("send", {ELSEWHERE: 1}, None, None, 2, {"add_to_wallet": False})
    assert sorted(result) == ["complete", "hex", "psbt", "txid"] and result["complete"] is True
    sent = rpc("send", [{ELSEWHERE: 1}], None, None, 2)
    assert sorted(sent) == ["complete", "txid"]
    assert rpc("send", {ELSEWHERE: 1}, 6, None, None, {"conf_target": 6})[:2] == ("error", -8)
    rpc.node.mine(list(rpc.node.mempool.values()))
    everything = rpc("sendall", [ELSEWHERE], None, None, 1)
    assert everything["complete"] is True
    assert rpc("getbalances")["mine"]["trusted"] == 0


def test_bumpfee_psbtbumpfee_settxfee(rpc: Any) -> None:  # noqa: F811
    funded(rpc)
    txid = rpc("sendtoaddress", ELSEWHERE, 1, "", "", False, True, None, None, True, 2)
    draft = rpc("psbtbumpfee", txid)
    assert sorted(draft) == ["errors", "fee", "origfee", "psbt"]
    assert draft["origfee"] == Decimal("0.00000282") and draft["fee"] == Decimal("0.00000987")
    too_low = rpc("bumpfee", txid, {"fee_rate": 2})
    assert too_low[:2] == ("error", -8) and too_low[2].startswith("Insufficient total fee")
    assert rpc("bumpfee", "00" * 32) == ("error", -5, "Invalid or non-wallet transaction id")
    bumped = rpc("bumpfee", txid, {"fee_rate": 10})
    assert bumped["origfee"] == Decimal("0.00000282") and bumped["fee"] == Decimal("0.00001410")
    assert rpc("gettransaction", txid)["replaced_by_txid"] == bumped["txid"]
    assert rpc("settxfee", 1) == (
        "error", -8, "txfee cannot be more than wallet max tx fee (0.10000000 BTC)"
    )  # fmt: skip
    assert rpc("settxfee", "0.00003") is True
    paid = rpc("sendtoaddress", ELSEWHERE, 1)
    assert rpc("gettransaction", paid)["fee"] == Decimal("-0.00000423")  # 141 vB × 3 sat/vB


def test_locked_wallet_refuses_to_send(rpc: Any) -> None:  # noqa: F811
    funded(rpc)
    assert isinstance(rpc("encryptwallet", "hunter2"), str)
    locked = (
        "error",
        -13,
        "Error: Please enter the wallet passphrase with walletpassphrase first.",
    )
    assert rpc("sendtoaddress", ELSEWHERE, 1, "", "", False, True, None, None, True, 2) == locked
    assert rpc("send", {ELSEWHERE: 1}, None, None, 2) == locked
    assert rpc.node.mempool == {} and rpc("getbalance") == Decimal(50)
    assert rpc("walletpassphrase", "hunter2", 60) is None
    txid = rpc("sendtoaddress", ELSEWHERE, 1, "", "", False, True, None, None, True, 2)
    assert bytes.fromhex(txid)[::-1] in rpc.node.mempool
