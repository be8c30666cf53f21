"""Every public vector, run with the template fast paths and without: the answers must match.

Core's script_assets_test.json (taproot and tapscript spends made by Core's feature_taproot.py)
is among them, so the tapscript ``<key> OP_CHECKSIG`` shortcut meets independent data.

The conformance runner calls ``interpreter.verify_script`` for each case and each flag variant it
tries; here that function is replaced by one that also runs ``verify_script_general`` on the same
input and records any difference (a different error, or a ``ValueError`` on one side only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.script import interpreter
from peercash.consensus.script.errors import ScriptError
from peercash.tools import conformance

CORE = Path(__file__).resolve().parents[2] / "data" / "core"

_Outcome = ScriptError | type[ValueError]

COMPARISONS = {"script-tests": 26289, "tx-valid": 7677, "tx-invalid": 4028, "script-assets": 178035}
"""verify_script calls each suite makes: every case under every flag variant the runner tries."""
FAST_ANSWERS = {"script-tests": 450, "tx-valid": 1000, "tx-invalid": 400, "script-assets": 60000}
"""At least this many of them answered by a fast path (measured: 597, 1262, 495, 74665)."""


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
        ("script-assets", "script_assets_test.json"),
    ],
)
def test_vectors_fast_equals_general(
    suite: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = interpreter.verify_script
    general = interpreter.verify_script_general
    real_eval = interpreter.eval_script
    calls = evals = shortcut = 0

    def counting_eval(*args: Any, **kwargs: Any) -> None:
        nonlocal evals
        evals += 1
        real_eval(*args, **kwargs)

    mismatches: list[tuple[str, str, str, int, str, str]] = []

    def both(
        script_sig: bytes,
        script_pubkey: bytes,
        witness: Sequence[bytes],
        flags: int,
        checker: interpreter.BaseSignatureChecker,
    ) -> ScriptError:
        nonlocal calls, shortcut
        calls += 1
        before = evals
        a = _outcome(lambda: fast(script_sig, script_pubkey, witness, flags, checker))
        fast_evals = evals - before
        b = _outcome(lambda: general(script_sig, script_pubkey, witness, flags, checker))
        if fast_evals == 0 and evals - before > 0:
            shortcut += 1  # a fast path answered, the interpreter did not run on that side
        if a is not b:
            mismatches.append(
                (script_sig.hex(), script_pubkey.hex(), repr(witness), flags, repr(a), repr(b))
            )
        if b is ValueError:
            raise ValueError("flag combination Core forbids")
        assert isinstance(b, ScriptError)
        return b

    monkeypatch.setattr(interpreter, "verify_script", both)
    monkeypatch.setattr(interpreter, "eval_script", counting_eval)
    results = conformance.run_suite(suite, CORE / name)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed][:3]
    assert not mismatches, mismatches[:5]
    # The runners try a fixed set of flag variants, so the number of comparisons is exact; and a
    # good share of them set a fast path (no eval_script run) against the interpreter.
    assert calls == COMPARISONS[suite], calls
    assert shortcut >= FAST_ANSWERS[suite], shortcut
