"""The acceptance fast paths give the general path's answers.

Each fast path in ``policy`` and ``chainview`` is compared with a reference written the general
way (the code it replaced, kept here): push-only scanning against ``iter_ops``, dust thresholds
against the serialized size, standard output and input templates against ``solver``, the
legacy sigop limit against counting every script, and the chain view's final / sequence-lock /
script-flag answers against the consensus functions they short-cut. Inputs are the templates,
their one-byte mutations, and random scripts from a seeded generator; every loop counts its
cases so a generator that produces nothing fails.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooltools import Harness

from peercash.consensus import deployments
from peercash.consensus.contextual import (
    calculate_sequence_locks,
    evaluate_sequence_locks,
    is_final_tx,
)
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.script import BadScript, iter_ops, push_data
from peercash.consensus.script.sigops import script_sigops
from peercash.mempool import policy
from peercash.mempool.policy import PolicyError, TxoutType

P2PKH = b"\x76\xa9\x14" + b"\x01" * 20 + b"\x88\xac"
P2WPKH = b"\x00\x14" + b"\x02" * 20
P2WSH = b"\x00\x20" + b"\x03" * 32
P2TR = b"\x51\x20" + b"\x04" * 32
P2SH = b"\xa9\x14" + b"\x05" * 20 + b"\x87"
P2A = bytes.fromhex("51024e73")
TEMPLATES = [P2PKH, P2WPKH, P2WSH, P2TR, P2SH, P2A, b"\x6a" + push_data(b"hello")]
KEY33 = b"\x02" + b"\x11" * 32


# -- references: the general way -------------------------------------------------------------


def ref_is_push_only(script: bytes) -> bool:
    try:
        for opcode, _, _ in iter_ops(script):
            if opcode > 0x60:
                return False
    except BadScript:
        return False
    return True


def ref_dust_threshold(txout: TxOut, dust_relay_fee: int) -> int:
    spk = txout.script_pubkey
    if (spk and spk[0] == 0x6A) or len(spk) > 10_000:
        return 0
    size = len(txout.serialize())
    n = len(spk)
    is_wp = 4 <= n <= 42 and (spk[0] == 0 or 0x51 <= spk[0] <= 0x60) and spk[1] + 2 == n
    size += 32 + 4 + 1 + (107 // 4 if is_wp else 107) + 4
    return policy.fee_for(dust_relay_fee, size)


def ref_is_standard_script(script: bytes) -> tuple[bool, TxoutType]:
    kind, ms = policy.solver(script)
    if kind is TxoutType.NONSTANDARD:
        return False, kind
    if kind is TxoutType.MULTISIG:
        assert ms is not None
        required, n = ms
        if n < 1 or n > 3 or required < 1 or required > n:
            return False, kind
    return True, kind


def ref_legacy_sigops_within_limit(tx: Tx, spent: Sequence[TxOut]) -> bool:
    sigops = 0
    for txin, prev in zip(tx.inputs, spent, strict=True):
        sigops += script_sigops(txin.script_sig, True)
        spk = prev.script_pubkey
        if len(spk) == 23 and spk[0] == 0xA9 and spk[1] == 0x14 and spk[22] == 0x87:
            stack = policy._push_stack(txin.script_sig)
            if stack:
                sigops += script_sigops(stack[-1], True)
        else:
            sigops += script_sigops(spk, True)
        if sigops > policy.MAX_TX_LEGACY_SIGOPS:
            return False
    return True


def ref_check_inputs_standard(tx: Tx, spent: Sequence[TxOut]) -> None:
    if not ref_legacy_sigops_within_limit(tx, spent):
        raise PolicyError("bad-txns-nonstandard-inputs", "non-witness sigops exceed bip54 limit")
    for i, (txin, prev) in enumerate(zip(tx.inputs, spent, strict=True)):
        kind, _ = policy.solver(prev.script_pubkey)
        if kind is TxoutType.NONSTANDARD:
            raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: script-unknown")
        if kind is TxoutType.WITNESS_UNKNOWN:
            raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: witness-unknown")
        if kind is TxoutType.SCRIPTHASH:
            stack = policy._push_stack(txin.script_sig)
            if not stack:
                raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: p2sh-no-redeem")
            if script_sigops(stack[-1], True) > policy.MAX_P2SH_SIGOPS:
                raise PolicyError("bad-txns-nonstandard-inputs", f"input {i}: p2sh-sigops")


def outcome(fn: object, *args: object) -> tuple[str, str] | None:
    """None when ``fn`` passes, else the (code, reason) of its PolicyError."""
    try:
        fn(*args)  # type: ignore[operator]
    except PolicyError as e:
        return e.code, e.reason
    return None


# -- generated inputs -------------------------------------------------------------------------


def mutations(script: bytes) -> Iterator[bytes]:
    """The script, every one-byte change to a few telling values, and its truncations."""
    yield script
    for i in range(len(script)):
        for b in (0x00, 0x01, 0x14, 0x20, 0x4C, 0x51, 0x60, 0x61, 0x6A, 0x87, 0xAC, 0xFF):
            if script[i] != b:
                yield script[:i] + bytes((b,)) + script[i + 1 :]
    for n in range(len(script)):
        yield script[:n]
    yield script + b"\x00"


def random_scripts(rng: random.Random, count: int) -> Iterator[bytes]:
    """Scripts of pushes (all four push encodings, sometimes truncated) and other opcodes."""
    for _ in range(count):
        parts: list[bytes] = []
        for _ in range(rng.randint(0, 6)):
            r = rng.random()
            if r < 0.4:
                parts.append(push_data(rng.randbytes(rng.choice([0, 1, 20, 32, 33, 75, 80, 300]))))
            elif r < 0.5:
                op = rng.choice([0x4C, 0x4D, 0x4E])
                parts.append(bytes((op,)) + rng.randbytes(rng.randint(0, 5)))
            else:
                parts.append(bytes((rng.randrange(256),)))
        script = b"".join(parts)
        if script and rng.random() < 0.3:
            script = script[: rng.randrange(len(script))]
        yield script


# -- the tests --------------------------------------------------------------------------------


def test_push_only_scan_matches_iter_ops() -> None:
    rng = random.Random(1)
    cases = [s for t in TEMPLATES for s in mutations(t)]
    cases += list(random_scripts(rng, 6_000))
    cases += [b"", b"\x4c", b"\x4c\x01", b"\x4d\x01", b"\x4d\x01\x00", b"\x4e\x01\x00\x00",
              b"\x4e\x01\x00\x00\x00\x41", b"\x4f", b"\x50", b"\x60", b"\x61", b"\x01"]  # fmt: skip
    pushonly = 0
    for script in cases:
        want = ref_is_push_only(script)
        assert policy._is_push_only(script) is want, script.hex()
        assert policy._is_push_only(b"\x6a" + script, 1) is want, script.hex()
        pushonly += want
    assert len(cases) > 6_500
    assert 500 < pushonly < len(cases) - 500  # both answers well represented


@pytest.mark.parametrize("fee", [0, 1, 1000, 3000, 12345])
def test_dust_threshold_matches_the_serialized_size(fee: int) -> None:
    rng = random.Random(fee)
    scripts = [s for t in TEMPLATES for s in mutations(t)]
    scripts += [rng.randbytes(n) for n in (0, 1, 2, 3, 4, 41, 42, 43, 252, 253, 254, 9_999)]
    scripts += [b"\x00" * 10_000, b"\x00" * 10_001, b"\x51" * 0xFD, b"\x6a" * 300]
    for script in scripts:
        out = TxOut(500, script)
        assert policy.dust_threshold(out, fee) == ref_dust_threshold(out, fee), script.hex()
    assert len(scripts) > 500


def test_standard_output_templates_match_the_solver() -> None:
    rng = random.Random(2)
    scripts = [s for t in TEMPLATES for s in mutations(t)]
    scripts += list(random_scripts(rng, 3_000))
    scripts += [bytes((v, 0x20)) + b"\x07" * 32 for v in range(256)]
    scripts += [bytes((v, 0x14)) + b"\x07" * 20 for v in range(256)]
    seen: set[TxoutType] = set()
    for script in scripts:
        want = ref_is_standard_script(script)
        assert policy.is_standard_script(script) == want, script.hex()
        seen.add(want[1])
    assert {TxoutType.WITNESS_V0_KEYHASH, TxoutType.WITNESS_V0_SCRIPTHASH,
            TxoutType.WITNESS_V1_TAPROOT, TxoutType.PUBKEYHASH, TxoutType.SCRIPTHASH,
            TxoutType.WITNESS_UNKNOWN, TxoutType.NONSTANDARD} <= seen  # fmt: skip


def _spend(inputs: list[tuple[bytes, tuple[bytes, ...]]]) -> Tx:
    txins = [TxIn(OutPoint(bytes([i]) * 32, i), sig, 0xFFFFFFFD, wit)
             for i, (sig, wit) in enumerate(inputs)]  # fmt: skip
    return Tx(2, txins, [TxOut(10_000, P2WPKH)], 0)


def test_input_checks_match_the_general_path() -> None:
    """check_inputs_standard, the BIP54 sigop limit and check_witness_standard on spends of
    every template (and their mutations) with empty, push and non-push scriptSigs and with and
    without witnesses, alone and next to sigop-heavy inputs."""
    redeem_heavy = b"\x51" + push_data(KEY33) * 3 + b"\x53\xae"  # 1-of-3 multisig: 3 sigops
    many_checksigs = b"\xac" * 2_600  # 2,600 sigops in one scriptPubKey
    script_sigs = [b"", push_data(b"\x30" * 71) + push_data(KEY33), push_data(redeem_heavy),
                   b"\x00" + push_data(redeem_heavy), b"\x61", b"\xac" * 3]  # fmt: skip
    witnesses: list[tuple[bytes, ...]] = [(), (b"\x30" * 71, KEY33), (b"\x01" * 64,),
                                           (b"\x51", b"\xc0" + b"\x00" * 32),
                                           (b"\x01", b"\x50annex")]  # fmt: skip
    spks = [*[s for t in TEMPLATES for s in mutations(t)][::11], many_checksigs, P2SH]
    # Every witness version byte in front of 20- and 32-byte programs (and near misses).
    for v in (0x00, 0x01, 0x4F, 0x50, 0x51, 0x52, 0x60, 0x61, 0xFF):
        spks += [bytes((v, 0x14)) + b"\x07" * 20, bytes((v, 0x20)) + b"\x07" * 32]
        spks += [bytes((v, 0x15)) + b"\x07" * 20, bytes((v, 0x1F)) + b"\x07" * 32]
    cases = passed = 0
    for spk in spks:
        for script_sig in script_sigs:
            for witness in witnesses:
                for company in ([], [(P2PKH, many_checksigs)])[: 2 if not witness else 1]:
                    inputs = [(script_sig, witness)] + [(b"", ()) for _ in company]
                    spent = [TxOut(1_000, spk)] + [TxOut(1_000, c[1]) for c in company]
                    tx = _spend(inputs)
                    want_limit = ref_legacy_sigops_within_limit(tx, spent)
                    assert policy._legacy_sigops_within_limit(tx, spent) is want_limit
                    want = outcome(ref_check_inputs_standard, tx, spent)
                    assert outcome(policy.check_inputs_standard, tx, spent) == want, spk.hex()
                    cases += 1
                    passed += want is None
    assert cases > 2_000
    assert 100 < passed < cases - 100


def test_witness_standard_fast_path_for_p2wpkh() -> None:
    """A P2WPKH spend passes check_witness_standard with any witness, as the general reading of
    a version-0 20-byte program (no P2WSH or taproot limits) says; a P2WSH one does not."""
    huge = (b"\x01" * 200,) * 200
    for witness in [(b"\x30" * 71, KEY33), huge, (b"\x50",), (b"",) * 3]:
        assert outcome(policy.check_witness_standard, _spend([(b"", witness)]),
                       [TxOut(1_000, P2WPKH)]) is None  # fmt: skip
    assert outcome(policy.check_witness_standard, _spend([(b"", huge)]), [TxOut(1_000, P2WSH)]) == (
        "bad-witness-nonstandard",
        "input 0: too many stack items",
    )


def test_chain_view_shortcuts_match_the_consensus_functions(tmp_path: Path) -> None:
    h = Harness(tmp_path, blocks=120)
    try:
        view = h.view
        chain = h.builder.chain
        cases = locked = 0
        for _ in range(2):
            height = chain.height + 1
            mtp = chain.tip.median_time_past()
            assert view.script_flags() == int(deployments.block_script_flags(REGTEST, height, b""))
            for version in (1, 2, 3, 0xFFFFFFFF):
                for locktime in (0, height - 1, height, 500_000_000, mtp - 1, mtp):
                    for seqs in ([0xFFFFFFFF], [0xFFFFFFFE], [0xFFFFFFFE, 0x00000001],
                                 [1 << 31, (1 << 31) | 5], [10], [1 << 22 | 3]):  # fmt: skip
                        tx = Tx(version, [TxIn(OutPoint(bytes([i + 1]) * 32, 0), b"", s)
                                          for i, s in enumerate(seqs)], [], locktime)  # fmt: skip
                        assert view.is_final(tx) is is_final_tx(tx, height, mtp)
                        for coin_h in (1, height - 5, height):
                            heights = [coin_h] * len(seqs)
                            lock = calculate_sequence_locks(
                                tx, True, heights, height,
                                lambda x: chain.chain[x].median_time_past(),
                            )  # fmt: skip
                            want = evaluate_sequence_locks(height, mtp, lock)
                            assert view.sequence_locks_ok(tx, heights) is want
                            locked += not want
                            cases += 1
            h.mine()  # a new tip: the cached script flags must follow it
        assert cases == 2 * 4 * 6 * 6 * 3
        assert locked > 0
    finally:
        h.close()


def test_script_flags_follow_the_tip_across_a_deployment_height() -> None:
    """The flags are cached per tip: a new tip (here crossing mainnet's segwit height, which
    adds NULLDUMMY) gives the next block's flags, not the cached ones."""
    from types import SimpleNamespace

    from peercash.consensus.params import MAIN
    from peercash.mempool.chainview import ChainStateView

    chain = SimpleNamespace(params=MAIN, height=0, tip=SimpleNamespace(hash=b""))
    view = ChainStateView(chain)  # type: ignore[arg-type]
    seen = set()
    for height in range(MAIN.segwit_height - 3, MAIN.segwit_height + 2):
        chain.height = height
        chain.tip = SimpleNamespace(hash=height.to_bytes(32, "little"))
        want = int(deployments.block_script_flags(MAIN, height + 1, b""))
        assert view.script_flags() == want
        assert view.script_flags() == want  # cached
        seen.add(want)
    assert len(seen) == 2
