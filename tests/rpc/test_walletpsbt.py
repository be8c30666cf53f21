"""walletprocesspsbt, signrawtransactionwithwallet and the message RPCs through JSON-RPC, over an
in-process chain; message vectors from Core's functional tests (tests/data/wallet/SOURCES.md)."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.address import address_to_script
from peercash.consensus.params import get_params
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.rpc import methods  # noqa: F401  (registers the methods)
from peercash.rpc.jsonrpc import handle_body_sync
from peercash.wallet.fill import INCOMPLETE
from peercash.wallet.manager import WalletManager
from peercash.wallet.psbt import roles

from ..wallet.chainsim import SimNode

P = get_params("regtest")
DATA = Path(__file__).parent.parent / "data" / "wallet" / "signmessage.json"
ELSEWHERE = b"\x00\x14" + b"\x99" * 20


class Services:
    def __init__(self, wallets: WalletManager) -> None:
        self.wallets = wallets
        self.params = P
        self.warmup = False
        self.warmup_message = ""
        self.active_commands: dict[int, Any] = {}
        self.chain_lock = threading.RLock()


@pytest.fixture
def rpc(tmp_path: Path) -> Any:
    node = SimNode(P)
    wallets = WalletManager(tmp_path / "wallets", P, node, keypool=10, entropy=lambda n: bytes(n))
    services = Services(wallets)

    def call(method: str, *params: Any, wallet: str | None = None) -> Any:
        body = json.dumps({"method": method, "params": list(params), "id": 1}).encode()
        _, reply = handle_body_sync(services, body, wallet=wallet)
        assert reply is not None
        answer = json.loads(reply, parse_float=Decimal)
        if answer["error"] is not None:
            return ("error", answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    call.node = node  # type: ignore[attr-defined]
    yield call
    wallets.close_all()


def _funded(rpc: Any, address_type: str = "bech32") -> Tx:
    address = rpc("getnewaddress", "", address_type)
    funding = Tx(
        2, [TxIn(OutPoint(b"\x07" * 32, 0))], [TxOut(100_000, address_to_script(address, P))]
    )
    rpc.node.mine([funding])
    return funding


def test_walletprocesspsbt(rpc: Any) -> None:
    rpc("createwallet", "w")
    funding = _funded(rpc)
    psbt = roles.create([TxIn(OutPoint(funding.txid, 0))], [TxOut(99_000, ELSEWHERE)])
    text = psbt.to_base64()
    unsigned = rpc("walletprocesspsbt", text, False)
    assert unsigned["complete"] is False and "hex" not in unsigned
    signed = rpc("walletprocesspsbt", text)
    assert signed["complete"] is True
    tx = Tx.parse(bytes.fromhex(signed["hex"]))
    assert tx.txid == psbt.compute_unsigned_tx().txid and len(tx.inputs[0].witness) == 2
    kept = rpc("walletprocesspsbt", text, True, "ALL", True, False)
    assert kept["complete"] is True and "hex" not in kept
    assert rpc("walletprocesspsbt", text, True, "ALLL") == (
        "error", -8, "'ALLL' is not a valid sighash parameter."
    )  # fmt: skip


def test_signrawtransactionwithwallet(rpc: Any) -> None:
    rpc("createwallet", "w")
    funding = _funded(rpc)
    foreign = OutPoint(b"\x09" * 32, 1)
    tx = Tx(2, [TxIn(OutPoint(funding.txid, 0)), TxIn(foreign)], [TxOut(99_000, ELSEWHERE)])
    result = rpc(
        "signrawtransactionwithwallet",
        tx.serialize().hex(),
        [{"txid": foreign.txid[::-1].hex(), "vout": 1, "scriptPubKey": ELSEWHERE.hex(),
          "amount": 0.001}],
    )  # fmt: skip
    assert result["complete"] is False
    assert result["errors"] == [
        {"txid": foreign.txid[::-1].hex(), "vout": 1, "witness": [], "scriptSig": "",
         "sequence": 0xFFFFFFFF, "error": INCOMPLETE}
    ]  # fmt: skip
    alone = Tx(2, tx.inputs[:1], tx.outputs)
    result = rpc("signrawtransactionwithwallet", alone.serialize().hex())
    assert result["complete"] is True and "errors" not in result
    assert rpc("signrawtransactionwithwallet", "zz")[:2] == ("error", -22)


def test_message_vectors_from_core(rpc: Any) -> None:
    v = json.loads(DATA.read_text())
    assert rpc("signmessagewithprivkey", v["privkey"], v["message"]) == v["signature"]
    assert rpc("verifymessage", v["p2pkh"], v["signature"], v["message"]) is True
    assert rpc("verifymessage", v["p2pkh"], v["signature"], v["message"] + "!") is False
    subst = {"MESSAGE": v["message"], "SIGNATURE": v["signature"]}
    for method, params, code, message in v["errors"]:
        assert rpc(method, *[subst.get(p, p) for p in params]) == ("error", code, message)
    assert len(v["errors"]) == 3
    rpc("createwallet", "w")
    segwit = rpc("getnewaddress", "", "bech32")
    assert rpc("verifymessage", segwit, v["signature"], v["message"]) == (
        "error", -3, "Address does not refer to key"
    )  # fmt: skip


def test_signmessage_with_a_wallet_address(rpc: Any) -> None:
    rpc("createwallet", "w")
    message = "This is just a test message"
    address = rpc("getnewaddress", "", "legacy")
    signature = rpc("signmessage", address, message)
    assert rpc("verifymessage", address, signature, message) is True
    other = rpc("getnewaddress", "", "legacy")
    other_signature = rpc("signmessage", other, message)
    assert rpc("verifymessage", other, signature, message) is False
    assert rpc("verifymessage", address, other_signature, message) is False
    assert rpc("signmessage", "invalid_addr", message) == ("error", -5, "Invalid address")
    assert rpc("signmessage", rpc("getnewaddress"), message) == (
        "error", -3, "Address does not refer to key"
    )  # fmt: skip
    assert rpc("signmessage", "mpLQjfK79b7CCV4VMJWEWAj5Mpx8Up5zxB", message) == (
        "error", -4, "Private key not available"
    )  # fmt: skip
