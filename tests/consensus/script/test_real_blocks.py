"""Every input of the real blocks and transactions that ship with their prevouts verifies."""

from __future__ import annotations

import pytest

from peercash.consensus.primitives import TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import VerifyFlags
from peercash.consensus.script.interpreter import verify_input
from peercash.consensus.script.sighash import PrecomputedTxData
from peercash.tools.vectors import BLOCKS_WITH_PREVOUTS, TXS_WITH_PREVOUTS, load_block, load_tx


@pytest.mark.parametrize("name", sorted(BLOCKS_WITH_PREVOUTS))
def test_every_input_of_real_block_verifies(name: str) -> None:
    flags = BLOCKS_WITH_PREVOUTS[name]
    _, spends = load_block(name)
    failures = []
    checked = 0
    for spend in spends:
        txdata = PrecomputedTxData(spend.tx, spend.spent)
        for i in range(len(spend.tx.inputs)):
            err = verify_input(spend.tx, i, spend.spent, flags, txdata)
            checked += 1
            if err is not ScriptError.OK:
                failures.append((spend.tx.txid_hex, i, err))
    assert not failures, failures[:5]
    assert checked == sum(len(s.spent) for s in spends)


@pytest.mark.parametrize("name", sorted(TXS_WITH_PREVOUTS))
def test_real_transaction_verifies(name: str) -> None:
    spend = load_tx(name)
    flags = TXS_WITH_PREVOUTS[name]
    for i in range(len(spend.tx.inputs)):
        assert verify_input(spend.tx, i, spend.spent, flags) is ScriptError.OK


def test_tampered_amount_breaks_segwit_signature() -> None:
    """Segwit signatures commit to the amount: a wrong prevout value must fail."""
    _, spends = load_block("block928816")
    flags = BLOCKS_WITH_PREVOUTS["block928816"]
    for spend in spends:
        if spend.tx.inputs[0].witness and len(spend.tx.inputs[0].witness) == 2:
            spent = list(spend.spent)
            spent[0] = TxOut(spent[0].value + 1, spent[0].script_pubkey)
            assert verify_input(spend.tx, 0, spent, flags) is ScriptError.EVAL_FALSE
            assert verify_input(spend.tx, 0, spend.spent, flags) is ScriptError.OK
            return
    pytest.fail("no P2WPKH-like input found")


def test_tampered_signature_fails_with_nullfail() -> None:
    """tx10's input 0 spends a bare 1-of-3 CHECKMULTISIG. Flipping a bit of the signature's R
    keeps it DER-valid but wrong: the script ends false (EVAL_FALSE); under NULLFAIL a failed
    check with a non-empty signature is itself the error (SIG_NULLFAIL)."""
    from peercash.consensus.primitives import Tx, TxIn

    spend = load_tx("tx10")
    tx = spend.tx
    txin = tx.inputs[0]
    sig_script = bytearray(txin.script_sig)
    assert sig_script[1:2] == b"\x48" and sig_script[2] == 0x30  # OP_0 <sig>: byte 10 is in R
    sig_script[10] ^= 1
    bad = Tx(
        tx.version,
        [TxIn(txin.prevout, bytes(sig_script), txin.sequence), *tx.inputs[1:]],
        tx.outputs,
        tx.locktime,
    )
    nullfail = VerifyFlags.P2SH | VerifyFlags.NULLFAIL
    assert verify_input(tx, 0, spend.spent, nullfail) is ScriptError.OK
    assert verify_input(bad, 0, spend.spent, VerifyFlags.P2SH) is ScriptError.EVAL_FALSE
    assert verify_input(bad, 0, spend.spent, nullfail) is ScriptError.SIG_NULLFAIL
