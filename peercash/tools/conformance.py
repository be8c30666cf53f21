"""Run published test vectors through our consensus engine, one runner per vector format.

Each runner reads one file and returns a list of :class:`CaseResult`, one per test case, mirroring
the harness Bitcoin Core uses for the same file (``src/test/script_tests.cpp``,
``transaction_tests.cpp``, ``sighash_tests.cpp``, ``script_assets_tests.cpp``) so that a case passes
here exactly when it passes there. Where Core tries random flag combinations, we try a fixed,
deterministic set (every single flag plus masks derived by hashing the case's name), so that two
runs always agree.

Problems with the data (a file that is not JSON, a malformed row) are reported as failed cases,
never raised; an exception escaping our engine is a failed case too, with the exception as detail.
The only error raised is :class:`UnknownSuiteError`.
"""

from __future__ import annotations

import csv
import decimal
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.primitives import MAX_MONEY, NULL_HASH, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.asm import parse_asm
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import ALL_FLAGS, VerifyFlags, format_flags, parse_flags
from peercash.consensus.serialize import Reader

__all__ = [
    "SUITES",
    "CaseResult",
    "UnknownSuiteError",
    "run_bip340",
    "run_script_assets",
    "run_script_tests",
    "run_sighash",
    "run_suite",
    "run_tx_invalid",
    "run_tx_valid",
    "summarize",
]

SCRIPT_TEST_MASKS = 32
"""Hashed flag masks each script_tests case tries besides every single flag and all flags.

Core's ``DoTest`` (``src/test/script_tests.cpp``) tries random masks instead. Its current code,
with the flags as the 64-bit ``script_verify_flags`` type, tries 256 masks of
``MAX_SCRIPT_VERIFY_FLAGS_BITS`` random bits; older versions (32-bit flags) tried 16 masks of 16
random bits. Either way, Core finds a mask that breaks an expectation only by chance. Here every
single flag is tried, then these 32 fixed masks."""

_ALL = int(ALL_FLAGS)
_P2SH = int(VerifyFlags.P2SH)
_WITNESS = int(VerifyFlags.WITNESS)
_CLEANSTACK = int(VerifyFlags.CLEANSTACK)
_TAPROOT = int(VerifyFlags.TAPROOT)
_SINGLE_FLAGS: tuple[tuple[str, int], ...] = tuple(
    (f.name, int(f)) for f in VerifyFlags if f and f.name and int(f).bit_count() == 1
)

_KEY0_XONLY = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
"""The x-only public key of secret 1 (Core's ``vchKey0``): the taproot internal key of the
``#CONTROLBLOCK#`` / ``#TAPROOTOUTPUT#`` cases."""

_TAPROOT_LEAF_TAPSCRIPT = 0xC0


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one test case. ``name`` identifies it in the file (``#12``), ``description``
    is its comment; ``expected``/``got`` are filled when a case fails."""

    name: str
    description: str
    passed: bool
    expected: str = ""
    got: str = ""
    detail: str = ""


class UnknownSuiteError(ValueError):
    """The suite name is not one of :data:`SUITES`."""


class _BadTest(Exception):
    """The vector itself is malformed (Core's ``BOOST_ERROR("Bad test: ...")``)."""


# -- helpers ------------------------------------------------------------------------------------


def summarize(results: Sequence[CaseResult]) -> str:
    """``N passed, M failed``: the last line the command line prints."""
    failed = sum(1 for r in results if not r.passed)
    return f"{len(results) - failed} passed, {failed} failed"


def _file_failure(path: Path, err: Exception) -> list[CaseResult]:
    return [
        CaseResult(
            name=path.name,
            description="vector file",
            passed=False,
            expected="a readable vector file",
            got=f"{type(err).__name__}: {err}",
        )
    ]


def _load_json(path: Path, **kwargs: Any) -> list[Any]:
    with path.open("rb") as f:
        data = json.load(f, **kwargs)
    if not isinstance(data, list):
        raise ValueError("the top level is not a JSON array")
    return data


def _hashed_masks(seed: str, count: int) -> list[int]:
    """``count`` flag masks derived from ``seed``: pseudo-random, but the same on every run."""
    masks = []
    for i in range(count):
        digest = hashlib.sha256(f"{seed}/{i}".encode()).digest()
        masks.append(int.from_bytes(digest[:4], "little") & _ALL)
    return masks


def _flag_names(flags: int) -> str:
    return format_flags(flags)


def _trim_flags(flags: int) -> int:
    """Core's TrimFlags: drop WITNESS without P2SH, then CLEANSTACK without WITNESS."""
    if not flags & _P2SH:
        flags &= ~_WITNESS
    if not flags & _WITNESS:
        flags &= ~_CLEANSTACK
    return flags


def fill_flags(flags: int) -> int:
    """Core's FillFlags: CLEANSTACK implies WITNESS, WITNESS implies P2SH (a consistent set)."""
    if flags & _CLEANSTACK:
        flags |= _WITNESS
    if flags & _WITNESS:
        flags |= _P2SH
    return flags


def _exclude_individual_flags(flags: int) -> list[int]:
    """Core's ExcludeIndividualFlags: each valid combination with one flag removed, deduplicated."""
    combos: set[int] = set()
    for _, flag in _SINGLE_FLAGS:
        trimmed = _trim_flags(flags & ~flag)
        if trimmed != flags:
            combos.add(trimmed)
    return sorted(combos)


def _describe_error(err: BaseException) -> str:
    return f"exception {type(err).__name__}: {err}"


def _verify(
    script_sig: bytes,
    script_pubkey: bytes,
    witness: Sequence[bytes],
    flags: int,
    tx: Tx,
    index: int,
    amount: int,
    txdata: Any,
) -> ScriptError:
    from peercash.consensus.script.interpreter import TransactionChecker, verify_script

    checker = TransactionChecker(tx, index, amount, txdata)
    return verify_script(script_sig, script_pubkey, witness, flags, checker)


def _precompute(tx: Tx, spent_outputs: Sequence[TxOut]) -> Any:
    from peercash.consensus.script.sighash import PrecomputedTxData

    return PrecomputedTxData(tx, list(spent_outputs))


# -- script_tests.json ----------------------------------------------------------------------------


def _amount_from_btc(value: Any) -> int:
    """Core's AmountFromValue: a JSON number of BTC with at most 8 decimals, as satoshis."""
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal | str):
        raise _BadTest(f"amount {value!r} is not a number")
    try:
        sats = decimal.Decimal(str(value)) * 100_000_000
    except decimal.InvalidOperation:
        raise _BadTest(f"amount {value!r} is not a number") from None
    if sats != sats.to_integral_value():
        raise _BadTest(f"amount {value!r} has more than 8 decimals")
    if not 0 <= sats <= MAX_MONEY:
        raise _BadTest(f"amount {value!r} is out of range")
    return int(sats)


def _single_leaf_taproot(leaf_script: bytes) -> tuple[bytes, bytes]:
    """(output key, control block) of a tree with one tapscript leaf at depth 0 and Core's key0
    as internal key: what Core's TaprootBuilder gives for ``Add(0, script, 0xc0)`` +
    ``Finalize(XOnlyPubKey(key0))``. The merkle root of a one-leaf tree is the leaf's hash and its
    control block has no path."""
    from peercash.consensus.script.taproot import tapleaf_hash, tweak_public_key

    root = tapleaf_hash(_TAPROOT_LEAF_TAPSCRIPT, leaf_script)
    output_key, parity = tweak_public_key(_KEY0_XONLY, root)
    control = bytes((_TAPROOT_LEAF_TAPSCRIPT | parity,)) + _KEY0_XONLY
    return output_key, control


def _crediting_tx(script_pubkey: bytes, amount: int) -> Tx:
    """Core's BuildCreditingTransaction: a coinbase-like tx paying ``amount`` to the script."""
    txin = TxIn(OutPoint(NULL_HASH, 0xFFFFFFFF), b"\x00\x00", 0xFFFFFFFF)
    return Tx(1, [txin], [TxOut(amount, script_pubkey)], 0)


def _spending_tx(script_sig: bytes, witness: Sequence[bytes], credit: Tx) -> Tx:
    """Core's BuildSpendingTransaction: spends output 0 of ``credit`` to an empty script."""
    txin = TxIn(OutPoint(credit.txid, 0), script_sig, 0xFFFFFFFF, witness)
    return Tx(1, [txin], [TxOut(credit.outputs[0].value, b"")], 0)


def _script_test_flag_variants(name: str, flags: int, expect_ok: bool) -> list[int]:
    """The flag sets Core's DoTest also tries: removing flags from a passing test, adding flags to
    a failing one, skipping invalid combinations (CLEANSTACK needs P2SH and WITNESS, WITNESS
    needs P2SH)."""
    extras = [flag for _, flag in _SINGLE_FLAGS] + [_ALL] + _hashed_masks(name, SCRIPT_TEST_MASKS)
    variants: list[int] = []
    seen = {flags}
    for extra in extras:
        combined = (flags & ~extra) if expect_ok else (flags | extra)
        combined &= _ALL
        if combined & _CLEANSTACK and (combined & (_P2SH | _WITNESS)) != (_P2SH | _WITNESS):
            continue
        if combined & _WITNESS and not combined & _P2SH:
            continue
        if combined not in seen:
            seen.add(combined)
            variants.append(combined)
    return variants


def _run_script_test(idx: int, row: list[Any]) -> CaseResult | None:
    name = f"#{idx}"
    witness: list[bytes] = []
    amount = 0
    pos = 0
    tap_leaf: bytes | None = None
    tap_output: bytes | None = None
    description = json.dumps(row, default=str)
    try:
        if row and isinstance(row[0], list):
            wit_row = row[0]
            if not wit_row:
                raise _BadTest("empty witness array")
            for element in wit_row[:-1]:
                if not isinstance(element, str):
                    raise _BadTest(f"witness element {element!r} is not a string")
                if element.startswith("#SCRIPT#"):
                    witness.append(parse_asm(element[len("#SCRIPT#") :]))
                elif element == "#CONTROLBLOCK#":
                    if not witness or tap_leaf is not None:
                        raise _BadTest("#CONTROLBLOCK# without a single script before it")
                    tap_leaf = witness[-1]
                    tap_output, control = _single_leaf_taproot(tap_leaf)
                    witness.append(control)
                else:
                    try:
                        witness.append(bytes.fromhex(element))
                    except ValueError:
                        raise _BadTest(f"witness element {element!r} is not hex") from None
            amount = _amount_from_btc(wit_row[-1])
            pos = 1
        if len(row) < 4 + pos:
            if len(row) != 1:
                raise _BadTest("too few fields")
            return None  # a comment
        sig_text, spk_text, flags_text, expected = row[pos : pos + 4]
        if len(row) > pos + 4 and isinstance(row[pos + 4], str):
            description = row[pos + 4]
        if not all(isinstance(x, str) for x in (sig_text, spk_text, flags_text, expected)):
            raise _BadTest("scriptSig, scriptPubKey, flags and error must be strings")
        script_sig = parse_asm(sig_text)
        if spk_text == "0x51 0x20 #TAPROOTOUTPUT#":
            if tap_output is None:
                raise _BadTest("#TAPROOTOUTPUT# without a #CONTROLBLOCK#")
            script_pubkey = b"\x51\x20" + tap_output
        else:
            script_pubkey = parse_asm(spk_text)
        flags = int(parse_flags(flags_text))
        try:
            expected_error = ScriptError(expected)
        except ValueError:
            raise _BadTest(f"unknown script error {expected!r}") from None
    except (_BadTest, ValueError) as e:
        return CaseResult(name, description, False, "a well-formed test", "bad test", str(e))

    if flags & _CLEANSTACK:
        flags |= _P2SH | _WITNESS
    try:
        credit = _crediting_tx(script_pubkey, amount)
        spend = _spending_tx(script_sig, witness, credit)
        txdata = _precompute(spend, [credit.outputs[0]])

        def run(f: int) -> ScriptError:
            return _verify(script_sig, script_pubkey, witness, f, spend, 0, amount, txdata)

        got = run(flags)
        if got is not expected_error:
            return CaseResult(
                name, description, False, expected_error.value, got.value, _flag_names(flags)
            )
        expect_ok = expected_error is ScriptError.OK
        for variant in _script_test_flag_variants(name, flags, expect_ok):
            result = run(variant)
            if (result is ScriptError.OK) != expect_ok:
                what = "removed" if expect_ok else "added"
                return CaseResult(
                    name,
                    description,
                    False,
                    "OK" if expect_ok else "a failure",
                    result.value,
                    f"with flags {what}: {_flag_names(variant)}",
                )
    except Exception as e:
        return CaseResult(name, description, False, expected_error.value, _describe_error(e))
    return CaseResult(name, description, True)


def run_script_tests(path: Path) -> list[CaseResult]:
    """Core's script_tests.json, as ``script_json_test`` in script_tests.cpp runs it."""
    try:
        rows = _load_json(path, parse_float=decimal.Decimal)
    except (OSError, ValueError) as e:
        return _file_failure(path, e)
    results = []
    for idx, row in enumerate(rows):
        if not isinstance(row, list):
            results.append(CaseResult(f"#{idx}", repr(row), False, "a JSON array", "bad test"))
            continue
        result = _run_script_test(idx, row)
        if result is not None:
            results.append(result)
    return results


# -- tx_valid.json / tx_invalid.json --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TxCase:
    tx: Tx
    scripts: dict[OutPoint, bytes]
    values: dict[OutPoint, int]
    flags_text: str
    txdata: Any


def _parse_tx_case(row: list[Any]) -> _TxCase:
    if len(row) != 3 or not isinstance(row[1], str) or not isinstance(row[2], str):
        raise _BadTest("expected [inputs, tx hex, flags]")
    scripts: dict[OutPoint, bytes] = {}
    values: dict[OutPoint, int] = {}
    for vin in row[0]:
        if not isinstance(vin, list) or not 3 <= len(vin) <= 4:
            raise _BadTest(f"bad prevout {vin!r}")
        txid_hex, index, spk_text = vin[0], vin[1], vin[2]
        if not isinstance(txid_hex, str) or len(txid_hex) != 64:
            raise _BadTest(f"bad prevout txid {txid_hex!r}")
        if isinstance(index, bool) or not isinstance(index, int) or not isinstance(spk_text, str):
            raise _BadTest(f"bad prevout {vin!r}")
        outpoint = OutPoint(bytes.fromhex(txid_hex)[::-1], index & 0xFFFFFFFF)
        scripts[outpoint] = parse_asm(spk_text)
        if len(vin) == 4:
            if isinstance(vin[3], bool) or not isinstance(vin[3], int):
                raise _BadTest(f"bad amount {vin[3]!r}")
            values[outpoint] = vin[3]
    try:
        tx = Tx.parse(bytes.fromhex(row[1]))
    except (DecodeError, ValueError) as e:
        raise _BadTest(f"transaction does not decode: {e}") from None
    spent = [
        TxOut(values.get(txin.prevout, 0), scripts[txin.prevout])
        for txin in tx.inputs
        if txin.prevout in scripts
    ]
    txdata = _precompute(tx, spent) if len(spent) == len(tx.inputs) else None
    return _TxCase(tx, scripts, values, row[2], txdata)


def _check_tx_scripts(case: _TxCase, flags: int, expect_valid: bool) -> tuple[bool, str]:
    """Core's CheckTxScripts: (outcome as expected, what happened)."""
    tx = case.tx
    valid = True
    err = ScriptError.UNKNOWN_ERROR if expect_valid else ScriptError.OK
    for i, txin in enumerate(tx.inputs):
        if not valid:
            break
        spk = case.scripts.get(txin.prevout)
        if spk is None:
            return False, f"input {i}: no prevout scriptPubKey given (bad test)"
        amount = case.values.get(txin.prevout, 0)
        err = _verify(txin.script_sig, spk, txin.witness, flags, tx, i, amount, case.txdata)
        valid = err is ScriptError.OK
        if expect_valid and not valid:
            return False, f"input {i}: {err.value}"
    if not expect_valid and valid:
        return False, "all inputs passed"
    return True, err.value


def _tx_comment(comments: list[str]) -> str:
    return " ".join(comments)


def _iter_tx_cases(path: Path) -> Iterable[tuple[int, str, list[Any]] | CaseResult]:
    rows = _load_json(path)
    comments: list[str] = []
    last_was_case = False
    for idx, row in enumerate(rows):
        if not isinstance(row, list) or not row:
            yield CaseResult(f"#{idx}", repr(row), False, "a JSON array", "bad test")
            continue
        if not isinstance(row[0], list):
            if last_was_case:
                comments = []
            last_was_case = False
            comments.extend(str(x) for x in row)
            continue
        last_was_case = True
        yield idx, _tx_comment(comments), row


def _tx_suite(
    path: Path, judge: Callable[[str, str, _TxCase, RuleError | None], CaseResult]
) -> list[CaseResult]:
    """Read a tx_valid/tx_invalid file and hand each parsed case to ``judge`` together with the
    ``CheckTransaction`` verdict (None when it passes); malformed rows fail on their own."""
    from peercash.consensus.checks import check_transaction

    try:
        items = list(_iter_tx_cases(path))
    except (OSError, ValueError) as e:
        return _file_failure(path, e)
    results: list[CaseResult] = []
    for item in items:
        if isinstance(item, CaseResult):
            results.append(item)
            continue
        idx, description, row = item
        name = f"#{idx}"
        description = description or json.dumps(row)[:120]
        try:
            case = _parse_tx_case(row)
        except (_BadTest, ValueError) as e:
            results.append(CaseResult(name, description, False, "a well-formed test", str(e)))
            continue
        verdict: RuleError | None = None
        try:
            check_transaction(case.tx)
        except RuleError as e:
            verdict = e
        results.append(judge(name, description, case, verdict))
    return results


def run_tx_valid(path: Path) -> list[CaseResult]:
    """Core's tx_valid.json, as ``tx_valid`` in transaction_tests.cpp runs it."""

    def judge(name: str, description: str, case: _TxCase, bad: RuleError | None) -> CaseResult:
        try:
            excluded = int(parse_flags(case.flags_text))
        except ValueError as e:
            return CaseResult(name, description, False, "a well-formed test", str(e))
        if bad is not None:
            return CaseResult(name, description, False, "CheckTransaction passes", bad.code)
        return _run_tx_valid_case(name, description, case, excluded)

    return _tx_suite(path, judge)


def _run_tx_valid_case(name: str, description: str, case: _TxCase, excluded: int) -> CaseResult:
    def fail(expected: str, got: str, detail: str = "") -> CaseResult:
        return CaseResult(name, description, False, expected, got, detail)

    flags = _ALL & ~excluded
    if flags != fill_flags(flags):
        return fail("a valid flag combination", "bad test flags", _flag_names(flags))
    try:
        ok, got = _check_tx_scripts(case, flags, True)
        if not ok:
            return fail("OK", got, f"flags {_flag_names(flags)}")
        # Removing flags must not invalidate a valid transaction.
        masks = [(flag_name, flag) for flag_name, flag in _SINGLE_FLAGS]
        masks += [(f"mask {m:#x}", m) for m in _hashed_masks(name, len(_SINGLE_FLAGS))]
        for label, mask in masks:
            fewer = _trim_flags(_ALL & ~(excluded | mask))
            ok, got = _check_tx_scripts(case, fewer, True)
            if not ok:
                return fail("OK", got, f"with {label} unset: flags {_flag_names(fewer)}")
        # The excluded flags must be maximal: setting any of them makes it fail.
        for combo in _exclude_individual_flags(excluded):
            more = _ALL & ~combo
            ok, got = _check_tx_scripts(case, more, False)
            if not ok:
                return fail(
                    "a failure", "OK", f"too many flags unset: passes with {_flag_names(more)}"
                )
    except Exception as e:
        return fail("OK", _describe_error(e))
    return CaseResult(name, description, True)


def run_tx_invalid(path: Path) -> list[CaseResult]:
    """Core's tx_invalid.json, as ``tx_invalid`` in transaction_tests.cpp runs it."""

    def judge(name: str, description: str, case: _TxCase, bad: RuleError | None) -> CaseResult:
        if bad is not None:
            passed = case.flags_text == "BADTX"
            return CaseResult(name, description, passed, case.flags_text, f"BADTX ({bad.code})")
        if case.flags_text == "BADTX":
            return CaseResult(name, description, False, "BADTX", "CheckTransaction passes")
        try:
            flags = int(parse_flags(case.flags_text))
        except ValueError as e:
            return CaseResult(name, description, False, "a well-formed test", str(e))
        return _run_tx_invalid_case(name, description, case, flags)

    return _tx_suite(path, judge)


def _run_tx_invalid_case(name: str, description: str, case: _TxCase, flags: int) -> CaseResult:
    def fail(expected: str, got: str, detail: str = "") -> CaseResult:
        return CaseResult(name, description, False, expected, got, detail)

    if flags != fill_flags(flags):
        return fail("a valid flag combination", "bad test flags", _flag_names(flags))
    try:
        ok, got = _check_tx_scripts(case, flags, False)
        if not ok:
            return fail("a failure", "OK", f"flags {_flag_names(flags)}")
        # Adding flags must not validate an invalid transaction.
        masks = [(flag_name, flag) for flag_name, flag in _SINGLE_FLAGS]
        masks += [(f"mask {m:#x}", m) for m in _hashed_masks(name, len(_SINGLE_FLAGS))]
        for label, mask in masks:
            more = fill_flags(flags | mask)
            ok, got = _check_tx_scripts(case, more, False)
            if not ok:
                return fail("a failure", "OK", f"with {label} set: flags {_flag_names(more)}")
        # The flags must be minimal: unsetting any of them makes it pass.
        for combo in _exclude_individual_flags(flags):
            ok, got = _check_tx_scripts(case, combo, True)
            if not ok:
                return fail("OK", got, f"too many flags set: fails with {_flag_names(combo)}")
    except Exception as e:
        return fail("a failure", _describe_error(e))
    return CaseResult(name, description, True)


# -- sighash.json ---------------------------------------------------------------------------------


def run_sighash(path: Path) -> list[CaseResult]:
    """Core's sighash.json, as ``sighash_from_data`` in sighash_tests.cpp runs it."""
    from peercash.consensus.checks import check_transaction
    from peercash.consensus.script.sighash import legacy_sighash

    try:
        rows = _load_json(path)
    except (OSError, ValueError) as e:
        return _file_failure(path, e)
    results: list[CaseResult] = []
    for idx, row in enumerate(rows):
        name = f"#{idx}"
        if not isinstance(row, list) or not row:
            results.append(CaseResult(name, repr(row), False, "a JSON array", "bad test"))
            continue
        if len(row) == 1:
            continue  # a comment
        description = json.dumps(row[2:4])
        try:
            if len(row) < 5:
                raise _BadTest("expected [tx, script, input index, hash type, sighash]")
            raw_tx, raw_script, index, hash_type, expected = row[:5]
            if not (isinstance(index, int) and isinstance(hash_type, int)):
                raise _BadTest("input index and hash type must be integers")
            if not (isinstance(raw_script, str) and isinstance(expected, str)):
                raise _BadTest("script and sighash must be hex strings")
            tx = Tx.parse(bytes.fromhex(raw_tx))
            script_code = bytes.fromhex(raw_script)
        except (_BadTest, DecodeError, ValueError, TypeError) as e:
            results.append(CaseResult(name, description, False, "a well-formed test", str(e)))
            continue
        description = f"input {index}, hash type {hash_type:#x}"
        try:
            check_transaction(tx)
        except RuleError as e:
            results.append(CaseResult(name, description, False, "CheckTransaction passes", e.code))
            continue
        try:
            digest = legacy_sighash(script_code, tx, index, hash_type & 0xFFFFFFFF)
            got = digest[::-1].hex()
        except Exception as e:
            results.append(CaseResult(name, description, False, expected, _describe_error(e)))
            continue
        results.append(CaseResult(name, description, got == expected, expected, got))
    return results


# -- script_assets_test.json ----------------------------------------------------------------------


def _all_consensus_flags() -> list[int]:
    """Core's AllConsensusFlags: every combination of the seven consensus flags where WITNESS
    has P2SH and TAPROOT has WITNESS."""
    bits = [
        VerifyFlags.P2SH,
        VerifyFlags.DERSIG,
        VerifyFlags.NULLDUMMY,
        VerifyFlags.CHECKLOCKTIMEVERIFY,
        VerifyFlags.CHECKSEQUENCEVERIFY,
        VerifyFlags.WITNESS,
        VerifyFlags.TAPROOT,
    ]
    combos = []
    for i in range(1 << len(bits)):
        flags = 0
        for j, bit in enumerate(bits):
            if i >> j & 1:
                flags |= int(bit)
        if flags & _WITNESS and not flags & _P2SH:
            continue
        if flags & _TAPROOT and not flags & _WITNESS:
            continue
        combos.append(flags)
    return combos


ALL_CONSENSUS_FLAGS = tuple(_all_consensus_flags())


def _with_input(tx: Tx, index: int, script_sig: bytes, witness: Sequence[bytes]) -> Tx:
    inputs = list(tx.inputs)
    old = inputs[index]
    inputs[index] = TxIn(old.prevout, script_sig, old.sequence, witness)
    return Tx(tx.version, inputs, tx.outputs, tx.locktime)


def _hex_list(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _BadTest(f"{what} must be an array of hex strings")
    return [bytes.fromhex(x) for x in value]


def _run_asset_test(idx: int, test: Any) -> CaseResult:
    name = f"#{idx}"
    description = ""
    try:
        if not isinstance(test, dict):
            raise _BadTest("not a JSON object")
        description = str(test.get("comment", ""))
        reader = Reader(bytes.fromhex(test["tx"]))
        tx = Tx.from_reader(reader, allow_witness=False)
        prevouts = [
            TxOut.from_reader(Reader(raw)) for raw in _hex_list(test["prevouts"], "prevouts")
        ]
        if len(prevouts) != len(tx.inputs):
            raise _BadTest(f"{len(prevouts)} prevouts for {len(tx.inputs)} inputs")
        index = test["index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(tx.inputs):
            raise _BadTest(f"bad input index {index!r}")
        test_flags = int(parse_flags(test["flags"]))
        final = bool(test.get("final", False))
        variants: list[tuple[str, bytes, list[bytes]]] = []
        for key in ("success", "failure"):
            if key in test:
                spend = test[key]
                if not isinstance(spend, dict):
                    raise _BadTest(f"{key} must be an object")
                sig = bytes.fromhex(spend["scriptSig"])
                variants.append((key, sig, _hex_list(spend["witness"], f"{key} witness")))
    except (_BadTest, DecodeError, ValueError, KeyError, TypeError) as e:
        return CaseResult(name, description, False, "a well-formed test", "bad test", str(e))

    spk = prevouts[index].script_pubkey
    amount = prevouts[index].value
    for key, script_sig, witness in variants:
        try:
            spend_tx = _with_input(tx, index, script_sig, witness)
            txdata = _precompute(spend_tx, prevouts)
            for flags in ALL_CONSENSUS_FLAGS:
                if key == "success":
                    if not (final or flags & test_flags == flags):
                        continue
                elif flags & test_flags != test_flags:
                    continue
                got = _verify(script_sig, spk, witness, flags, spend_tx, index, amount, txdata)
                if (got is ScriptError.OK) != (key == "success"):
                    expected = "OK" if key == "success" else "a failure"
                    detail = f"{key} spend with flags {_flag_names(flags)}"
                    return CaseResult(name, description, False, expected, got.value, detail)
        except Exception as e:
            return CaseResult(name, description, False, key, _describe_error(e))
    return CaseResult(name, description, True)


def run_script_assets(path: Path) -> list[CaseResult]:
    """Core's script_assets_test.json format, as ``AssetTest`` in script_assets_tests.cpp runs it:
    a ``success`` spend must pass under every consensus flag set within ``flags`` (every set when
    ``final``), a ``failure`` spend must fail under every set containing ``flags``."""
    try:
        tests = _load_json(path)
    except (OSError, ValueError) as e:
        return _file_failure(path, e)
    return [_run_asset_test(idx, test) for idx, test in enumerate(tests)]


# -- BIP340 test-vectors.csv ----------------------------------------------------------------------


def _run_bip340_row(row: dict[str, str]) -> CaseResult:
    from peercash.consensus.crypto import sign_schnorr, verify_schnorr, xonly_from_secret

    name = f"#{row.get('index', '?')}"
    description = row.get("comment") or ""
    try:
        secret_hex = row["secret key"].strip()
        pubkey = bytes.fromhex(row["public key"])
        aux_hex = row["aux_rand"].strip()
        msg = bytes.fromhex(row["message"])
        sig = bytes.fromhex(row["signature"])
        expected = row["verification result"].strip().upper()
        if expected not in ("TRUE", "FALSE"):
            raise _BadTest(f"verification result {expected!r}")
    except (_BadTest, KeyError, ValueError, AttributeError) as e:
        return CaseResult(name, description, False, "a well-formed row", "bad test", str(e))
    try:
        ok = verify_schnorr(pubkey, sig, msg)
    except Exception as e:
        return CaseResult(name, description, False, expected, _describe_error(e), "verify")
    got = "TRUE" if ok else "FALSE"
    if got != expected:
        return CaseResult(name, description, False, expected, got, "verify")
    if secret_hex:
        try:
            secret = bytes.fromhex(secret_hex)
            aux = bytes.fromhex(aux_hex) if aux_hex else None
            derived = xonly_from_secret(secret)
            if derived != pubkey:
                return CaseResult(
                    name, description, False, pubkey.hex(), derived.hex(), "public key"
                )
            signed = sign_schnorr(secret, msg, aux)
            if signed != sig:
                return CaseResult(name, description, False, sig.hex(), signed.hex(), "signature")
        except Exception as e:
            return CaseResult(name, description, False, "signing", _describe_error(e))
    return CaseResult(name, description, True)


def run_bip340(path: Path) -> list[CaseResult]:
    """The BIP340 test-vectors.csv: every row verifies as stated; where a secret key is given,
    signing with the given aux_rand reproduces the public key and the signature."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError, csv.Error) as e:
        return _file_failure(path, e)
    if not rows:
        return _file_failure(path, ValueError("no rows"))
    return [_run_bip340_row(row) for row in rows]


# -- dispatch -------------------------------------------------------------------------------------

SUITES: dict[str, Callable[[Path], list[CaseResult]]] = {
    "script-tests": run_script_tests,
    "tx-valid": run_tx_valid,
    "tx-invalid": run_tx_invalid,
    "sighash": run_sighash,
    "script-assets": run_script_assets,
    "bip340": run_bip340,
}
"""Suite name (as the command line spells it) → runner."""


def run_suite(suite: str, path: Path | str) -> list[CaseResult]:
    """Run the named suite over ``path``; raises :class:`UnknownSuiteError` for an unknown name."""
    try:
        runner = SUITES[suite]
    except KeyError:
        known = ", ".join(SUITES)
        raise UnknownSuiteError(f"unknown suite {suite!r} (known: {known})") from None
    return runner(Path(path))
