"""The conformance runners over the real vector files, a generated script-assets file, and the CLI.

Besides "every real vector passes", each runner is shown vectors known to be wrong and must report
exactly those as failed, with exact counts: a runner that passed everything would fail here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.crypto import pubkey_from_secret, sign_ecdsa
from peercash.consensus.hashing import hash160
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.sighash import PrecomputedTxData, segwit_v0_sighash
from peercash.tools.conformance import (
    SUITES,
    CaseResult,
    UnknownSuiteError,
    run_suite,
    summarize,
)

DATA = Path(__file__).resolve().parents[1] / "data"
CORE = DATA / "core"

VECTOR_FILES = {
    "script-tests": CORE / "script_tests.json",
    "tx-valid": CORE / "tx_valid.json",
    "tx-invalid": CORE / "tx_invalid.json",
    "sighash": CORE / "sighash.json",
    "script-assets": CORE / "script_assets_test.json",
    "bip340": DATA / "bips" / "bip-0340" / "test-vectors.csv",
}

EXPECTED_CASES = {
    "script-tests": 1233,
    "tx-valid": 121,
    "tx-invalid": 93,
    "sighash": 500,
    "script-assets": 2760,
    "bip340": 19,
}
"""Cases per file, as tests/data/SOURCES.md counts them."""


def _failures(results: list[CaseResult]) -> str:
    lines = [
        f"{r.name} ({r.description}): expected {r.expected}, got {r.got} [{r.detail}]"
        for r in results
        if not r.passed
    ]
    return "\n".join(lines[:40])


# -- a generated script_assets_test.json ----------------------------------------------------------


def _asset(
    tx: Tx,
    prevouts: list[TxOut],
    index: int,
    flags: str,
    success: tuple[bytes, list[bytes]] | None = None,
    failure: tuple[bytes, list[bytes]] | None = None,
    final: bool = False,
    comment: str = "",
) -> dict[str, Any]:
    """One entry in Core's script_assets_test format (tx serialized without witness)."""
    entry: dict[str, Any] = {
        "tx": tx.serialize_legacy().hex(),
        "prevouts": [p.serialize().hex() for p in prevouts],
        "index": index,
        "flags": flags,
        "comment": comment,
    }
    if final:
        entry["final"] = True
    for key, spend in (("success", success), ("failure", failure)):
        if spend is not None:
            entry[key] = {"scriptSig": spend[0].hex(), "witness": [w.hex() for w in spend[1]]}
    return entry


def _p2wpkh_cases() -> list[dict[str, Any]]:
    """A P2WPKH output spent with a signature from a known key, and the same spend tampered."""
    secret = (0x1234).to_bytes(32, "big")
    pubkey = pubkey_from_secret(secret)
    key_hash = hash160(pubkey)
    prevout = TxOut(50_000, b"\x00\x14" + key_hash)
    other = TxOut(7_000, b"\x51")  # a second input, spent by OP_TRUE
    unsigned = Tx(
        2,
        [
            TxIn(OutPoint(bytes(range(32)), 1), b"", 0xFFFFFFFD),
            TxIn(OutPoint(bytes(range(32, 64)), 0), b"", 0xFFFFFFFF),
        ],
        [TxOut(55_000, b"\x00\x14" + bytes(20))],
        0,
    )
    script_code = b"\x76\xa9\x14" + key_hash + b"\x88\xac"
    digest = segwit_v0_sighash(
        script_code, unsigned, 0, 1, prevout.value, PrecomputedTxData(unsigned, [prevout, other])
    )
    sig = sign_ecdsa(secret, digest) + b"\x01"
    bad_sig = sig[:10] + bytes((sig[10] ^ 1,)) + sig[11:]
    prevouts = [prevout, other]
    return [
        _asset(
            unsigned,
            prevouts,
            0,
            "P2SH,WITNESS",
            success=(b"", [sig, pubkey]),
            failure=(b"", [bad_sig, pubkey]),
            comment="p2wpkh",
        ),
        _asset(
            unsigned,
            prevouts,
            0,
            "P2SH,WITNESS",
            failure=(b"", [sig, pubkey[:-1] + bytes((pubkey[-1] ^ 1,))]),
            comment="p2wpkh with the wrong key",
        ),
        _asset(
            unsigned,
            prevouts,
            1,
            "",
            success=(b"", []),
            final=True,
            comment="OP_TRUE is valid under every flag set",
        ),
    ]


def _taproot_keypath_cases() -> list[dict[str, Any]]:
    """BIP341's wallet vectors: key-path spends with their published signatures."""
    vectors = json.loads((CORE / "bip341_wallet_vectors.json").read_text())
    cases = []
    for group in vectors["keyPathSpending"]:
        tx = Tx.parse(bytes.fromhex(group["given"]["rawUnsignedTx"]))
        prevouts = [
            TxOut(u["amountSats"], bytes.fromhex(u["scriptPubKey"]))
            for u in group["given"]["utxosSpent"]
        ]
        for spend in group["inputSpending"]:
            index = spend["given"]["txinIndex"]
            witness = [bytes.fromhex(w) for w in spend["expected"]["witness"]]
            sig = witness[0]
            bad = [sig[:5] + bytes((sig[5] ^ 0x40,)) + sig[6:]]
            cases.append(
                _asset(
                    tx,
                    prevouts,
                    index,
                    "P2SH,WITNESS,TAPROOT",
                    success=(b"", witness),
                    failure=(b"", bad),
                    comment=f"bip341 key path, input {index}",
                )
            )
    return cases


def write_script_assets(path: Path) -> int:
    """Write a small, valid script_assets_test.json; returns the number of cases."""
    cases = _p2wpkh_cases() + _taproot_keypath_cases()
    path.write_text(json.dumps(cases, indent=1))
    return len(cases)


@pytest.fixture(scope="module")
def assets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("assets") / "script_assets_test.json"
    write_script_assets(path)
    return path


# -- the suites over the real vectors -------------------------------------------------------------


@pytest.mark.parametrize("suite", sorted(VECTOR_FILES))
def test_suite_passes_on_real_vectors(suite: str) -> None:
    results = run_suite(suite, VECTOR_FILES[suite])
    assert len(results) == EXPECTED_CASES[suite]
    assert summarize(results) == f"{len(results)} passed, 0 failed", _failures(results)


def test_script_assets_generated_file_passes(assets_file: Path) -> None:
    results = run_suite("script-assets", assets_file)
    assert len(results) == 3 + 7
    assert all(r.passed for r in results), _failures(results)


def test_script_assets_catches_a_wrong_expectation(tmp_path: Path) -> None:
    cases = _p2wpkh_cases()
    # Swap the good and the bad spend: both halves of the first case must now fail.
    first = cases[0]
    first["success"], first["failure"] = first["failure"], first["success"]
    # A 'final' spend that only works without WITNESS: a bare witness program with a witness.
    cases[2]["final"] = True
    cases[2]["success"] = {"scriptSig": "", "witness": ["00"]}
    path = tmp_path / "assets.json"
    path.write_text(json.dumps(cases))
    results = run_suite("script-assets", path)
    assert [r.passed for r in results] == [False, True, False]


def test_script_assets_reports_malformed_entries(tmp_path: Path) -> None:
    good = _p2wpkh_cases()[0]
    short = dict(good, prevouts=good["prevouts"][:1])
    path = tmp_path / "assets.json"
    path.write_text(json.dumps([good, short, {"tx": "zz"}, 5]))
    results = run_suite("script-assets", path)
    assert [r.passed for r in results] == [True, False, False, False]
    assert all(r.got == "bad test" for r in results[1:])


# -- the runners notice wrong vectors -------------------------------------------------------------


def test_sighash_runner_notices_a_wrong_hash(tmp_path: Path) -> None:
    rows = json.loads(VECTOR_FILES["sighash"].read_text())
    rows[1][4] = "00" * 32
    path = tmp_path / "sighash.json"
    path.write_text(json.dumps(rows))
    results = run_suite("sighash", path)
    bad = [r for r in results if not r.passed]
    assert len(bad) == 1 and bad[0].name == "#1" and bad[0].expected == "00" * 32


def test_script_tests_runner_notices_a_wrong_error(tmp_path: Path) -> None:
    rows = [
        ["Format is: [scriptSig, scriptPubKey, flags, expected_scripterror, ... comments]"],
        ["1", "1 EQUAL", "P2SH", "OK"],
        ["1", "2 EQUAL", "P2SH", "OK", "wrong on purpose"],
        ["1", "2 EQUAL", "P2SH", "EVAL_FALSE"],
        ["1", "NOT_AN_OPCODE", "P2SH", "OK"],
        ["1", "1", "NOT_A_FLAG", "OK"],
        ["1", "1", "P2SH", "NOT_AN_ERROR"],
        ["1", "1", "P2SH"],
    ]
    path = tmp_path / "script_tests.json"
    path.write_text(json.dumps(rows))
    results = run_suite("script-tests", path)
    assert [r.passed for r in results] == [True, False, True, False, False, False, False]
    assert results[1].expected == "OK" and results[1].got == "EVAL_FALSE"
    assert results[1].description == "wrong on purpose"


def _only_cases(rows: list[Any]) -> list[Any]:
    return [row for row in rows if isinstance(row[0], list)]


def test_tx_valid_runner_notices_wrong_flags(tmp_path: Path) -> None:
    rows = _only_cases(json.loads(VECTOR_FILES["tx-valid"].read_text()))
    needs_exclusion = next(i for i, row in enumerate(rows) if row[2] == "CLEANSTACK")
    rows[needs_exclusion][2] = "NONE"  # the tx fails with CLEANSTACK, so NONE is wrong
    too_many = next(i for i, row in enumerate(rows) if row[2] == "NONE")
    rows[too_many][2] = "NULLFAIL"  # passes with NULLFAIL too: an exclusion that is not maximal
    path = tmp_path / "tx_valid.json"
    path.write_text(json.dumps(rows))
    results = run_suite("tx-valid", path)
    failed = {int(r.name[1:]) for r in results if not r.passed}
    assert {needs_exclusion, too_many} <= failed


def test_tx_invalid_runner_notices_wrong_flags(tmp_path: Path) -> None:
    rows = _only_cases(json.loads(VECTOR_FILES["tx-invalid"].read_text()))
    badtx = next(i for i, row in enumerate(rows) if row[2] == "BADTX")
    rows[badtx][2] = "NONE"  # CheckTransaction fails: the flags must say BADTX
    not_badtx = next(i for i, row in enumerate(rows) if row[2] == "NONE")
    rows[not_badtx][2] = "BADTX"
    needs_flag = next(i for i, row in enumerate(rows) if row[2] == "P2SH,CHECKSEQUENCEVERIFY")
    rows[needs_flag][2] = "P2SH"  # valid without CSV
    path = tmp_path / "tx_invalid.json"
    path.write_text(json.dumps(rows))
    results = run_suite("tx-invalid", path)
    failed = {int(r.name[1:]) for r in results if not r.passed}
    assert failed == {badtx, not_badtx, needs_flag}


def test_bip340_runner_notices_a_wrong_signature(tmp_path: Path) -> None:
    lines = VECTOR_FILES["bip340"].read_text().splitlines()
    fields = lines[1].split(",")
    fields[5] = fields[5][:-2] + ("00" if fields[5][-2:] != "00" else "01")
    lines[1] = ",".join(fields)
    path = tmp_path / "bip340.csv"
    path.write_text("\n".join(lines) + "\n")
    results = run_suite("bip340", path)
    assert [r.name for r in results if not r.passed] == ["#0"]


def test_unreadable_files_are_one_failure(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("[[")
    for suite in SUITES:
        results = run_suite(suite, tmp_path / "missing.json")
        assert summarize(results) == "0 passed, 1 failed"
    for suite in ("script-tests", "tx-valid", "tx-invalid", "sighash", "script-assets"):
        assert summarize(run_suite(suite, broken)) == "0 passed, 1 failed"


def test_unknown_suite() -> None:
    with pytest.raises(UnknownSuiteError):
        run_suite("nope", VECTOR_FILES["sighash"])


def test_script_tests_with_every_expectation_wrong(tmp_path: Path) -> None:
    """Every test's expected error replaced by another (OK and EVAL_FALSE swapped, any other error
    made UNKNOWN_ERROR, which no script gives): all 1,233 must fail, each reporting as what it got
    the error the file first said. A runner comparing only pass/fail would let 476 through."""
    rows = json.loads(VECTOR_FILES["script-tests"].read_text())
    original = {}
    for idx, row in enumerate(rows):
        pos = 4 if isinstance(row[0], list) else 3
        if len(row) > pos:
            original[f"#{idx}"] = row[pos]
            row[pos] = {"OK": "EVAL_FALSE", "EVAL_FALSE": "OK"}.get(row[pos], "UNKNOWN_ERROR")
    path = tmp_path / "script_tests.json"
    path.write_text(json.dumps(rows))
    results = run_suite("script-tests", path)
    assert summarize(results) == "0 passed, 1233 failed"
    assert {r.name: r.got for r in results} == original


def test_script_assets_with_wrong_spends(tmp_path: Path) -> None:
    """Core's taproot cases made wrong: of the 2,483 that have both spends, the even-numbered get
    their good spend as the failure too, the odd-numbered their bad spend as the success too.
    Exactly those must fail (whichever half of the check a runner skipped would show), and the 277
    with only a good spend still pass."""
    cases = json.loads(VECTOR_FILES["script-assets"].read_text())
    wrong = set()
    for idx, case in enumerate(cases):
        if "failure" in case:
            if idx % 2:
                case["success"] = case["failure"]
            else:
                case["failure"] = case["success"]
            wrong.add(f"#{idx}")
    path = tmp_path / "script_assets_test.json"
    path.write_text(json.dumps(cases))
    results = run_suite("script-assets", path)
    assert summarize(results) == "277 passed, 2483 failed"
    assert {r.name for r in results if not r.passed} == wrong


# -- the command line -----------------------------------------------------------------------------


def _peercash() -> list[str]:
    exe = Path(sys.executable).with_name("peercash")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("peercash")
    if found:
        return [found]
    return [sys.executable, "-c", "from peercash.cli import app; app()"]


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_peercash(), *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_cli_passing_file() -> None:
    proc = _run_cli("conformance", "sighash", str(VECTOR_FILES["sighash"]))
    lines = proc.stdout.splitlines()
    assert lines[-1] == "500 passed, 0 failed"
    assert proc.returncode == 0


def test_cli_corrupted_file(tmp_path: Path) -> None:
    rows = json.loads(VECTOR_FILES["sighash"].read_text())
    rows[3][4] = rows[3][4][::-1]
    path = tmp_path / "sighash.json"
    path.write_text(json.dumps(rows))
    proc = _run_cli("conformance", "sighash", str(path))
    lines = proc.stdout.splitlines()
    assert lines[-1] == "499 passed, 1 failed"
    assert len(lines) == 2 and lines[0].startswith("FAIL #3")
    assert rows[3][4] in lines[0]
    assert proc.returncode == 1

    quiet = _run_cli("conformance", "sighash", str(path), "--quiet")
    assert quiet.stdout.splitlines() == ["499 passed, 1 failed"]
    assert quiet.returncode == 1


def test_cli_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "tx_valid.json"
    path.write_text(VECTOR_FILES["tx-valid"].read_text()[:-20])
    proc = _run_cli("conformance", "tx-valid", str(path))
    assert proc.stdout.splitlines()[-1] == "0 passed, 1 failed"
    assert proc.returncode == 1


def test_cli_unknown_suite() -> None:
    proc = _run_cli("conformance", "no-such-suite", str(VECTOR_FILES["sighash"]))
    assert proc.returncode == 2
    assert "unknown suite" in proc.stderr


def test_cli_generated_script_assets(assets_file: Path) -> None:
    proc = _run_cli("conformance", "script-assets", str(assets_file), "--quiet")
    assert proc.stdout.splitlines() == ["10 passed, 0 failed"]
    assert proc.returncode == 0


def test_cli_is_multi_command() -> None:
    proc = _run_cli("--help")
    assert proc.returncode == 0
    assert "conformance" in proc.stdout
