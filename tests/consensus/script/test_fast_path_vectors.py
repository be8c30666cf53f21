"""Every public vector, run with the template fast paths and without: the answers must match.

The conformance runner calls ``interpreter.verify_script`` for each case and each flag variant it
tries; here that function is replaced by one that also runs ``verify_script_general`` on the same
input and records any difference (a different error, or a ``ValueError`` on one side only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from peercash.consensus.script import interpreter
from peercash.consensus.script.errors import ScriptError
from peercash.tools import conformance

CORE = Path(__file__).resolve().parents[2] / "data" / "core"

_Outcome = ScriptError | type[ValueError]


def _outcome(run: Callable[[], ScriptError]) -> _Outcome:
    try:
        return run()
    except ValueError:
        return ValueError


@pytest.mark.parametrize(
    ("suite", "name"),
    [
        ("script-tests", "script_tests.json"),
        ("tx-valid", "tx_valid.json"),
        ("tx-invalid", "tx_invalid.json"),
    ],
)
def test_vectors_fast_equals_general(
    suite: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = interpreter.verify_script
    general = interpreter.verify_script_general
    calls = 0
    mismatches: list[tuple[str, str, str, int, str, str]] = []

    def both(
        script_sig: bytes,
        script_pubkey: bytes,
        witness: Sequence[bytes],
        flags: int,
        checker: interpreter.BaseSignatureChecker,
    ) -> ScriptError:
        nonlocal calls
        calls += 1
        a = _outcome(lambda: fast(script_sig, script_pubkey, witness, flags, checker))
        b = _outcome(lambda: general(script_sig, script_pubkey, witness, flags, checker))
        if a is not b:
            mismatches.append(
                (script_sig.hex(), script_pubkey.hex(), repr(witness), flags, repr(a), repr(b))
            )
        if b is ValueError:
            raise ValueError("flag combination Core forbids")
        assert isinstance(b, ScriptError)
        return b

    monkeypatch.setattr(interpreter, "verify_script", both)
    results = conformance.run_suite(suite, CORE / name)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed][:3]
    assert calls > 1000
    assert not mismatches, mismatches[:5]
