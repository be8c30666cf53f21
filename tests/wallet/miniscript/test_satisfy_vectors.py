"""Core's satisfaction test, run on every valid vector: add what is available one piece at a
time (keys, preimages, timelocks, in a seeded random order) and check each witness against
the script interpreter on a real spending transaction, with Core's invariants: a non-malleable
witness equals the malleable one and spends; sizes stay within the computed bounds; adding a
piece never loses a satisfaction; once all is there, every satisfiable (sane) script has one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from peercash.consensus.crypto import pubkey_from_secret, sign_ecdsa, sign_schnorr
from peercash.consensus.hashing import hash160, hash256, ripemd160, sha256
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import TransactionChecker, verify_script
from peercash.consensus.script.sighash import (
    SIGHASH_ALL,
    SIGHASH_DEFAULT,
    PrecomputedTxData,
    segwit_v0_sighash,
    taproot_sighash,
)
from peercash.consensus.script.taproot import TapLeaf, taproot_output
from peercash.wallet.descriptor import DescriptorError
from peercash.wallet.miniscript import MsContext, Node, parse_miniscript

DATA = Path(__file__).resolve().parents[2] / "data" / "miniscript"
AMOUNT = 50_000
INTERNAL = bytes.fromhex("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
# Core's test data: secrets (and preimages) are 31 zero bytes and one byte 1..255.
SECRETS = {
    pubkey_from_secret(bytes(31) + bytes([i])): bytes(31) + bytes([i]) for i in range(1, 256)
}
XONLY = {pub[1:]: secret for pub, secret in SECRETS.items()}
PREIMAGES: dict[bytes, bytes] = {}
for _i in range(1, 256):
    _image = bytes(31) + bytes([_i])
    for _fn in (sha256, hash256, ripemd160, hash160):
        PREIMAGES[_fn(_image)] = _image

Challenge = tuple[str, int | bytes]


def _cases() -> list[tuple[str, MsContext]]:
    found: list[tuple[str, MsContext]] = []
    for case in json.loads((DATA / "core_p2wsh_cases.json").read_text())["cases"]:
        if "invalid" not in case["mode"]:
            found.append((case["ms"], MsContext.P2WSH))
    for case in json.loads((DATA / "core_current_cases.json").read_text())["cases"]:
        mode = case["mode"]
        if "invalid" in mode:
            continue
        if "p2wsh_invalid" not in mode:
            found.append((case["ms"], MsContext.P2WSH))
        if "tapscript_invalid" not in mode:
            found.append((case["ms"], MsContext.TAPSCRIPT))
    return found


CASES = _cases()


def _challenges(node: Node) -> list[Challenge]:
    found: set[Challenge] = set()
    tap = node.ctx is MsContext.TAPSCRIPT
    for sub in node.walk():
        for key in sub.keys:
            found.add(("pk", key.pubkey()[1:] if tap else key.pubkey()))
        if sub.fragment in ("older", "after"):
            found.add((sub.fragment, sub.k))
        if sub.data:
            found.add(("hash", sub.data))
    return sorted(found, key=repr)


def _pick(values: list[int], flag: int) -> int | None:
    """The largest of the lock values of the first value's kind (so adding never switches kind)."""
    if not values:
        return None
    kind = values[0] >= flag if flag == 500_000_000 else bool(values[0] & flag)
    same = [v for v in values if (v >= flag if flag == 500_000_000 else bool(v & flag)) == kind]
    return max(same)


def _spend(
    node: Node, available: list[Challenge]
) -> tuple[list[bytes] | None, list[bytes] | None, Callable[[list[bytes]], ScriptError]]:
    tap = node.ctx is MsContext.TAPSCRIPT
    script = node.script()
    if tap:
        out = taproot_output(INTERNAL, TapLeaf(script))
        spk, control = out.script_pubkey, out.control_block_for(script)
    else:
        spk, control = b"\x00\x20" + sha256(script), b""
    olders = [v for kind, v in available if kind == "older" and isinstance(v, int)]
    afters = [v for kind, v in available if kind == "after" and isinstance(v, int)]
    sequence = _pick(olders, 1 << 22)
    locktime = _pick(afters, 500_000_000)
    seq = 0xFFFFFFFE if sequence is None else sequence
    lock = 0 if locktime is None else locktime
    keys = {v for kind, v in available if kind == "pk"}
    images = {v: PREIMAGES[v] for kind, v in available if isinstance(v, bytes) and kind == "hash"}

    def tx(witness: tuple[bytes, ...] = ()) -> Tx:
        return Tx(
            2, [TxIn(OutPoint(b"\x22" * 32, 1), b"", seq, witness)], [TxOut(1, b"\x51")], lock
        )

    unsigned = tx()
    cache = PrecomputedTxData(unsigned, [TxOut(AMOUNT, spk)])

    def sign(key: bytes) -> bytes | None:
        if key not in keys:
            return None
        if tap:
            msg = taproot_sighash(
                unsigned, 0, SIGHASH_DEFAULT, cache, 1, None, TapLeaf(script).hash
            )
            assert msg is not None
            return sign_schnorr(XONLY[key], msg, bytes(32))
        msg = segwit_v0_sighash(script, unsigned, 0, SIGHASH_ALL, AMOUNT, cache)
        return sign_ecdsa(SECRETS[key], msg) + bytes([SIGHASH_ALL])

    nonmal = node.satisfy(sign, images, sequence, locktime)
    mal = node.satisfy(sign, images, sequence, locktime, nonmalleable=False)

    def verify(stack: list[bytes]) -> ScriptError:
        witness = (*stack, script, *([control] if control else []))
        signed = tx(witness)
        checker = TransactionChecker(
            signed, 0, AMOUNT, PrecomputedTxData(signed, [TxOut(AMOUNT, spk)])
        )
        return verify_script(b"", spk, witness, STANDARD_SCRIPT_VERIFY_FLAGS, checker)

    return nonmal, mal, verify


@pytest.mark.parametrize(("text", "ctx"), CASES)
def test_satisfy_like_core(text: str, ctx: MsContext) -> None:
    try:
        node = parse_miniscript(text, ctx)
    except DescriptorError:  # pragma: no cover - every case parses (see test_vectors)
        raise
    challenges = _challenges(node)
    rng = random.Random(text + ctx.value)
    for _ in range(2):
        rng.shuffle(challenges)
        prev_mal = prev_nonmal = False
        for add in range(-1, len(challenges)):
            available = challenges[: add + 1]
            nonmal, mal, verify = _spend(node, available)
            if nonmal is not None:
                assert mal == nonmal
                stack_size = node.stack_size
                assert stack_size is not None and len(nonmal) <= stack_size
                max_size = node.max_satisfaction_size()
                assert max_size is not None and sum(len(e) + 1 for e in nonmal) <= max_size
                result = verify(nonmal)
                if node.valid_satisfactions():
                    assert result is ScriptError.OK, (text, available)
            if mal is not None and mal != nonmal:
                result = verify(mal)
                assert result in (ScriptError.OK, ScriptError.OP_COUNT, ScriptError.STACK_SIZE)
            if node.is_sane():
                assert (mal is not None) == (nonmal is not None)
            assert (mal is not None) >= prev_mal
            if node.is_sane() or add < 0 or challenges[add][0] == "pk":
                assert (nonmal is not None) >= prev_nonmal
            prev_mal, prev_nonmal = mal is not None, nonmal is not None
        if not node.check_timelocks_mix():
            continue  # one transaction has one nLockTime and one nSequence: no full satisfaction
        assert prev_mal == node.is_satisfiable()
        if node.is_sane():
            assert prev_nonmal == node.is_satisfiable()


def test_case_count() -> None:
    assert len(CASES) == 63 + 35  # sipa's valid cases, then the current ones per valid context
