"""Core's standardness policy, rule by rule, with its exact reject strings.

Dust thresholds are Core's published defaults at the 3,000 sat/kvB dust relay fee (546 for P2PKH,
294 for P2WPKH, 330 for P2WSH/P2TR, 540 for P2SH, 240 for pay-to-anchor).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.script import push_data
from peercash.mempool import policy
from peercash.mempool.policy import PolicyError, TxoutType

KEY33 = b"\x02" + b"\x11" * 32
KEY65 = b"\x04" + b"\x22" * 64
P2PKH = b"\x76\xa9\x14" + b"\x01" * 20 + b"\x88\xac"
P2WPKH = b"\x00\x14" + b"\x02" * 20
P2WSH = b"\x00\x20" + b"\x03" * 32
P2TR = b"\x51\x20" + b"\x04" * 32
P2SH = b"\xa9\x14" + b"\x05" * 20 + b"\x87"
P2A = bytes.fromhex("51024e73")
PREV = OutPoint(b"\x99" * 32, 0)


def multisig(m: int, keys: list[bytes]) -> bytes:
    return (
        bytes((0x50 + m,)) + b"".join(push_data(k) for k in keys) + bytes((0x50 + len(keys), 0xAE))
    )


def op_return(data: bytes) -> bytes:
    return b"\x6a" + push_data(data)


def tx_with(
    outputs: list[TxOut] | None = None,
    *,
    version: int = 2,
    script_sig: bytes = b"",
    witness: tuple[bytes, ...] = (),
) -> Tx:
    outs = outputs if outputs is not None else [TxOut(10_000, P2WPKH)]
    return Tx(version, [TxIn(PREV, script_sig, 0xFFFFFFFD, witness)], outs, 0)


def code_of(fn: object, *args: object, **kwargs: object) -> tuple[str, str]:
    with pytest.raises(PolicyError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.ban_score == 0
    return info.value.code, info.value.reason


# -- IsStandardTx ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
def test_standard_versions_pass(version: int) -> None:
    policy.check_standard_tx(tx_with(version=version))


@pytest.mark.parametrize("version", [0, 4, 0xFFFFFFFF])
def test_nonstandard_versions(version: int) -> None:
    assert code_of(policy.check_standard_tx, tx_with(version=version))[0] == "version"


def test_tx_size_is_weight_above_400000() -> None:
    outs = [TxOut(1_000, P2WSH)] * 2330  # 43-byte outputs: 2330 * 52 * 4 > 400,000
    tx = tx_with(outs)
    assert tx.weight() > policy.MAX_STANDARD_TX_WEIGHT
    assert code_of(policy.check_standard_tx, tx)[0] == "tx-size"
    smaller = tx_with(outs[:1900])
    assert smaller.weight() <= policy.MAX_STANDARD_TX_WEIGHT
    policy.check_standard_tx(smaller)


def test_scriptsig_size_limit_is_1650_bytes() -> None:
    at_limit = push_data(b"\x01" * 1647)  # PUSHDATA2: 3 + 1647 = 1650
    assert len(at_limit) == 1650
    policy.check_standard_tx(tx_with(script_sig=at_limit))
    over = push_data(b"\x01" * 1648)
    assert code_of(policy.check_standard_tx, tx_with(script_sig=over))[0] == "scriptsig-size"


def test_scriptsig_must_be_push_only() -> None:
    tx = tx_with(script_sig=b"\x51\x76")  # OP_1 OP_DUP
    assert code_of(policy.check_standard_tx, tx)[0] == "scriptsig-not-pushonly"


@pytest.mark.parametrize(
    "script",
    [
        b"\x76",  # OP_DUP: no template
        b"\x00\x19" + b"\x01" * 25,  # v0 program of 25 bytes
        multisig(1, [KEY33] * 4),  # bare multisig of more than 3 keys
        multisig(3, [KEY33] * 2),  # more signatures than keys: no template
        b"\x21" + b"\x05" + b"\x00" * 32 + b"\xac",  # pay-to-pubkey with a bad key header
        b"",
    ],
)
def test_nonstandard_output_scripts(script: bytes) -> None:
    assert code_of(policy.check_standard_tx, tx_with([TxOut(10_000, script)]))[0] == "scriptpubkey"


def test_bare_multisig_standard_unless_refused() -> None:
    tx = tx_with([TxOut(10_000, multisig(1, [KEY33, KEY65]))])
    policy.check_standard_tx(tx)
    code = code_of(policy.check_standard_tx, tx, permit_bare_multisig=False)[0]
    assert code == "bare-multisig"


def test_several_op_returns_allowed_within_the_total() -> None:
    outs = [TxOut(0, op_return(b"a" * 40)), TxOut(0, op_return(b"b" * 40)), TxOut(1000, P2WPKH)]
    policy.check_standard_tx(tx_with(outs))  # Core 30: more than one OP_RETURN is standard
    assert code_of(policy.check_standard_tx, tx_with(outs), max_datacarrier_bytes=83)[0] == (
        "datacarrier"
    )
    policy.check_standard_tx(tx_with(outs), max_datacarrier_bytes=84)  # 42 + 42 bytes


def test_datacarrier_default_allows_big_op_return_and_off_refuses_all() -> None:
    big = tx_with([TxOut(0, op_return(b"x" * 20_000)), TxOut(1000, P2WPKH)])
    policy.check_standard_tx(big)
    small = tx_with([TxOut(0, b"\x6a"), TxOut(1000, P2WPKH)])
    assert code_of(policy.check_standard_tx, small, max_datacarrier_bytes=None)[0] == "datacarrier"
    assert policy.MAX_OP_RETURN_RELAY == 100_000


def test_one_dust_output_allowed_two_refused() -> None:
    one = tx_with([TxOut(100, P2WPKH), TxOut(10_000, P2WPKH)])
    policy.check_standard_tx(one)
    two = tx_with([TxOut(100, P2WPKH), TxOut(293, P2WPKH)])
    assert code_of(policy.check_standard_tx, two)[0] == "dust"


def test_tx_size_small() -> None:
    tiny = Tx(2, [TxIn(PREV, b"", 0)], [TxOut(0, b"\x6a")], 0)
    assert tiny.base_size() < 65
    assert code_of(policy.check_nonwitness_size, tiny)[0] == "tx-size-small"
    ok = Tx(2, [TxIn(PREV, b"", 0)], [TxOut(0, b"\x6a" + push_data(b"\x00" * 3))], 0)
    assert ok.base_size() == 65
    policy.check_nonwitness_size(ok)


# -- Solver and dust ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        (P2PKH, TxoutType.PUBKEYHASH),
        (P2SH, TxoutType.SCRIPTHASH),
        (P2WPKH, TxoutType.WITNESS_V0_KEYHASH),
        (P2WSH, TxoutType.WITNESS_V0_SCRIPTHASH),
        (P2TR, TxoutType.WITNESS_V1_TAPROOT),
        (P2A, TxoutType.ANCHOR),
        (b"\x52\x20" + b"\x00" * 32, TxoutType.WITNESS_UNKNOWN),
        (b"\x51\x02\x4e\x74", TxoutType.WITNESS_UNKNOWN),
        (push_data(KEY33) + b"\xac", TxoutType.PUBKEY),
        (push_data(KEY65) + b"\xac", TxoutType.PUBKEY),
        (multisig(2, [KEY33, KEY33, KEY65]), TxoutType.MULTISIG),
        (op_return(b"hi"), TxoutType.NULL_DATA),
        (b"\x6a\x76", TxoutType.NONSTANDARD),
        (b"\x00\x10" + b"\x00" * 16, TxoutType.NONSTANDARD),
    ],
)
def test_solver_types(script: bytes, kind: TxoutType) -> None:
    assert policy.solver(script)[0] is kind


@pytest.mark.parametrize(
    ("script", "threshold"),
    [(P2PKH, 546), (P2WPKH, 294), (P2WSH, 330), (P2TR, 330), (P2SH, 540), (P2A, 240)],
)
def test_dust_thresholds_match_core(script: bytes, threshold: int) -> None:
    assert policy.dust_threshold(TxOut(0, script)) == threshold
    assert policy.is_dust(TxOut(threshold - 1, script))
    assert not policy.is_dust(TxOut(threshold, script))


def test_op_return_is_never_dust() -> None:
    assert policy.dust_threshold(TxOut(0, op_return(b"x"))) == 0
    assert not policy.is_dust(TxOut(0, op_return(b"x")))
    assert policy.dust_outputs(tx_with([TxOut(0, op_return(b"x")), TxOut(5, P2A)])) == [1]


# -- fees and sizes -----------------------------------------------------------------------------


def test_fee_for_rounds_up_like_core() -> None:
    assert policy.fee_for(100, 141) == 15  # 14.1 sat, rounded up
    assert policy.fee_for(100, 140) == 14
    assert policy.fee_for(0, 1000) == 0
    assert policy.fee_for(-1, 10) == -1


@given(st.integers(1, 10_000_000), st.integers(0, 400_000))
def test_fee_for_is_the_ceiling(rate: int, vsize: int) -> None:
    fee = policy.fee_for(rate, vsize)
    assert fee * 1000 >= rate * vsize
    assert (fee - 1) * 1000 < rate * vsize or vsize == 0


def test_sigop_adjusted_vsize() -> None:
    assert policy.sigop_adjusted_vsize(400, 0) == 100
    assert policy.sigop_adjusted_vsize(400, 100) == 500  # 100 sigops * 20 bytes
    assert policy.sigop_adjusted_vsize(401, 0) == 101


def test_sigop_cost_limit() -> None:
    policy.check_sigop_cost(16_000)
    assert code_of(policy.check_sigop_cost, 16_001)[0] == "bad-txns-too-many-sigops"


def test_ephemeral_dust_must_pay_no_fee() -> None:
    tx = tx_with([TxOut(0, P2A), TxOut(10_000, P2WPKH)], version=3)
    policy.check_ephemeral_fee(tx, 0, 0)
    assert code_of(policy.check_ephemeral_fee, tx, 1, 1) == (
        "dust",
        "tx with dust output must be 0-fee",
    )
    assert code_of(policy.check_ephemeral_fee, tx, 0, 5)[0] == "dust"  # prioritised counts
    policy.check_ephemeral_fee(tx_with(), 500, 500)  # no dust: any fee


# -- inputs -------------------------------------------------------------------------------------


def test_inputs_standard_accepts_the_common_templates() -> None:
    for spk in (P2PKH, P2WPKH, P2WSH, P2TR, P2A, push_data(KEY33) + b"\xac"):
        policy.check_inputs_standard(tx_with(), [TxOut(1000, spk)])


def test_inputs_spending_unknown_scripts() -> None:
    code, reason = code_of(policy.check_inputs_standard, tx_with(), [TxOut(1000, b"\x76\x87")])
    assert (code, reason) == ("bad-txns-nonstandard-inputs", "input 0: script-unknown")
    future = TxOut(1000, b"\x52\x20" + b"\x00" * 32)
    code, reason = code_of(policy.check_inputs_standard, tx_with(), [future])
    assert (code, reason) == ("bad-txns-nonstandard-inputs", "input 0: witness-unknown")


def test_p2sh_redeem_script_sigop_limit() -> None:
    redeem_ok = b"\xac" * 15 + b"\x51"
    policy.check_inputs_standard(tx_with(script_sig=push_data(redeem_ok)), [TxOut(1000, P2SH)])
    redeem_bad = b"\xac" * 16 + b"\x51"
    code, reason = code_of(
        policy.check_inputs_standard, tx_with(script_sig=push_data(redeem_bad)), [TxOut(1, P2SH)]
    )
    assert (code, reason) == ("bad-txns-nonstandard-inputs", "input 0: p2sh-sigops")


def test_legacy_sigop_limit_2500() -> None:
    at_limit = TxOut(1000, b"\xac" * 2500)
    code, reason = code_of(policy.check_inputs_standard, tx_with(), [at_limit])
    assert reason == "input 0: script-unknown"  # within BIP54's limit, so the next rule speaks
    over = TxOut(1000, b"\xac" * 2501)
    code, reason = code_of(policy.check_inputs_standard, tx_with(), [over])
    assert (code, reason) == (
        "bad-txns-nonstandard-inputs",
        "non-witness sigops exceed bip54 limit",
    )


# -- witnesses ----------------------------------------------------------------------------------


def witness_code(spk: bytes, witness: tuple[bytes, ...], script_sig: bytes = b"") -> str | None:
    try:
        policy.check_witness_standard(
            tx_with(script_sig=script_sig, witness=witness), [TxOut(1000, spk)]
        )
    except PolicyError as e:
        assert e.code == "bad-witness-nonstandard"
        return e.reason
    return None


def test_p2wsh_witness_limits() -> None:
    script = b"\x51"
    assert witness_code(P2WSH, (b"\x01" * 80,) * 100 + (script,)) is None
    assert witness_code(P2WSH, (b"\x01",) * 101 + (script,)) == "input 0: too many stack items"
    assert witness_code(P2WSH, (b"\x01" * 81, script)) == "input 0: stack item size"
    assert witness_code(P2WSH, (b"\x51" * 3600,)) is None
    assert witness_code(P2WSH, (b"\x51" * 3601,)) == "input 0: witness script size"


def test_witness_where_none_belongs() -> None:
    assert witness_code(P2PKH, (b"\x01",)) == "input 0: witness for non-witness"
    assert witness_code(P2A, (b"\x01",)) == "input 0: witness on an anchor"
    assert witness_code(P2PKH, ()) is None  # no witness, nothing to check


def test_p2sh_wrapped_witness_is_unwrapped() -> None:
    redeem = b"\x00\x20" + b"\x07" * 32
    assert witness_code(P2SH, (b"\x01" * 81, b"\x51"), push_data(redeem)) == (
        "input 0: stack item size"
    )
    assert witness_code(P2SH, (b"\x51",), push_data(b"\x51")) == "input 0: witness for non-witness"


def test_taproot_witness_rules() -> None:
    sig = b"\x01" * 64
    assert witness_code(P2TR, (sig,)) is None  # key path
    assert witness_code(P2TR, (sig, b"\x50\x00")) == "input 0: annex"
    control = b"\xc0" + b"\x02" * 32
    assert witness_code(P2TR, (b"\x01" * 80, b"\x51", control)) is None
    assert witness_code(P2TR, (b"\x01" * 81, b"\x51", control)) == "input 0: tapscript item size"
    # An unknown leaf version has no item limit.
    assert witness_code(P2TR, (b"\x01" * 81, b"\x51", b"\xc2" + b"\x02" * 32)) is None


# -- script error texts -------------------------------------------------------------------------


def test_script_error_texts() -> None:
    assert policy.script_error_text("EVAL_FALSE") == (
        "Script evaluated without error but finished with a false/empty top stack element"
    )
    assert (
        policy.script_error_text("CLEANSTACK") == "Stack size must be exactly one after execution"
    )
    assert policy.script_error_text("NO_SUCH") == "unknown error"


@given(st.binary(max_size=60))
def test_solver_never_raises(script: bytes) -> None:
    kind, ms = policy.solver(script)
    assert (ms is not None) == (kind is TxoutType.MULTISIG)
