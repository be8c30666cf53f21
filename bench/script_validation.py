"""Script validation of real blocks against bare libsecp256k1 verification of the same signatures.

Validates every input of the bcoin fixture blocks that ship with their prevouts (sighash + script
+ signature, end to end, from parsed transactions) and, in the same run, verifies the very same
(pubkey, signature, message) triples with bare ``coincurve`` — the floor no script engine can
beat. Also measures the same validation on a pool of worker processes, and signature hashing of
a 10,000-input transaction (legacy, segwit v0, taproot) to show which grows linearly.

Prints one JSON object. Usage: ``python bench/script_validation.py [--repeat N] [--workers W]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import coincurve

from peercash.chain.scriptcheck import ScriptCheckPool, check_tx_inputs
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.interpreter import (
    TransactionChecker,
    verify_script,
)
from peercash.consensus.script.sighash import (
    PrecomputedTxData,
    legacy_sighash,
    segwit_v0_sighash,
    taproot_sighash,
)
from peercash.tools.vectors import BLOCKS_WITH_PREVOUTS, SpendingTx, load_block


class _RecordingChecker(TransactionChecker):
    """Records every libsecp256k1 verification the engine makes, with the message it hashed, so
    the floor verifies exactly the same signatures (and nothing is hashed twice)."""

    def __init__(self, *args: object, log: list[tuple[str, bytes, bytes, bytes]]) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.log = log

    def verify_ecdsa(self, pubkey: bytes, sig: bytes, msg: bytes) -> bool:  # type: ignore[override]
        self.log.append(("ecdsa", pubkey, sig, msg))
        return TransactionChecker.verify_ecdsa(pubkey, sig, msg)

    def verify_schnorr(self, pubkey: bytes, sig: bytes, msg: bytes) -> bool:  # type: ignore[override]
        self.log.append(("schnorr", pubkey, sig, msg))
        return TransactionChecker.verify_schnorr(pubkey, sig, msg)


def _collect_signatures(
    jobs: list[tuple[SpendingTx, int]],
) -> list[tuple[str, bytes, bytes, bytes]]:
    log: list[tuple[str, bytes, bytes, bytes]] = []
    for spend, flags in jobs:
        txdata = PrecomputedTxData(spend.tx, spend.spent)
        for i, txin in enumerate(spend.tx.inputs):
            checker = _RecordingChecker(spend.tx, i, spend.spent[i].value, txdata, log=log)
            verify_script(
                txin.script_sig, spend.spent[i].script_pubkey, txin.witness, flags, checker
            )
    return log


def _timed(run: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def _floor(sigs: list[tuple[str, bytes, bytes, bytes]]) -> float:
    """Bare coincurve: parse the key, parse the signature, verify. Results are ignored."""
    start = time.perf_counter()
    for kind, pubkey, sig, msg in sigs:
        try:
            if kind == "ecdsa":
                coincurve.PublicKey(pubkey).verify(sig, msg, hasher=None)
            else:
                coincurve.PublicKeyXOnly(pubkey).verify(sig, msg)
        except (ValueError, TypeError):
            pass
    return time.perf_counter() - start


def _ours(jobs: list[tuple[SpendingTx, int]]) -> float:
    start = time.perf_counter()
    for spend, flags in jobs:
        for _, err in check_tx_inputs(spend.tx, spend.spent, flags):
            if err is not None:
                raise SystemExit(f"unexpected failure in {spend.tx.txid_hex}: {err}")
    return time.perf_counter() - start


def _parallel(pool: ScriptCheckPool, blocks: list[tuple[list[SpendingTx], int]]) -> float:
    start = time.perf_counter()
    for spends, flags in blocks:
        failures = pool.check([s.tx for s in spends], [s.spent for s in spends], flags)
        if failures:
            raise SystemExit(f"unexpected failure: {failures[0]}")
    return time.perf_counter() - start


def _hashing_scaling(sizes: tuple[int, ...] = (1_000, 10_000)) -> dict[str, dict[str, float]]:
    """Microseconds per input to hash every input of an n-input tx with SIGHASH_ALL."""
    out: dict[str, dict[str, float]] = {}
    spk_legacy = bytes.fromhex("76a914") + b"\x11" * 20 + bytes.fromhex("88ac")
    spk_tr = b"\x51\x20" + b"\x22" * 32
    for n in sizes:
        inputs = [
            TxIn(OutPoint(i.to_bytes(32, "little"), 0), b"\x00" * 107, 0xFFFFFFFE) for i in range(n)
        ]
        tx = Tx(2, inputs, [TxOut(1000, spk_legacy), TxOut(2000, spk_tr)], 0)
        spent = [TxOut(5000, spk_tr)] * n
        row: dict[str, float] = {}
        # Legacy hashing re-serializes the whole transaction per input: quadratic by the rules.
        # Time a sample of inputs and scale, so the 10k case stays short.
        sample = list(range(0, n, max(1, n // 200)))
        start = time.perf_counter()
        for i in sample:
            legacy_sighash(spk_legacy, tx, i, 1)
        row["legacy_us_per_input"] = (time.perf_counter() - start) / len(sample) * 1e6
        txdata = PrecomputedTxData(tx, spent)
        start = time.perf_counter()
        for i in range(n):
            segwit_v0_sighash(spk_legacy, tx, i, 1, 5000, txdata)
        row["segwit_v0_us_per_input"] = (time.perf_counter() - start) / n * 1e6
        txdata = PrecomputedTxData(tx, spent)
        start = time.perf_counter()
        for i in range(n):
            taproot_sighash(tx, i, 0, txdata, 0, None)
        row["taproot_us_per_input"] = (time.perf_counter() - start) / n * 1e6
        out[str(n)] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="paired runs of each measurement")
    parser.add_argument(
        "--workers", type=int, default=1, help="extra processes (this one also checks)"
    )
    args = parser.parse_args()

    blocks: list[tuple[list[SpendingTx], int]] = []
    for name, flags in BLOCKS_WITH_PREVOUTS.items():
        _, spends = load_block(name)
        blocks.append((spends, int(flags)))
    jobs = [(s, f) for spends, f in blocks for s in spends]
    n_inputs = sum(len(s.tx.inputs) for s, _ in jobs)
    sigs = _collect_signatures(jobs)

    # Floor and ours alternate, and each pair gives a ratio: noise that comes and goes on a
    # shared machine then hits both sides of a pair alike. Wall and CPU time are both reported.
    pairs = []
    for _ in range(args.repeat):
        floor_wall, floor_cpu = _timed(lambda: _floor(sigs))
        ours_wall, ours_cpu = _timed(lambda: _ours(jobs))
        pairs.append((floor_wall, floor_cpu, ours_wall, ours_cpu))
    floor_t = statistics.median(p[0] for p in pairs)
    ours_t = statistics.median(p[2] for p in pairs)
    ratio_wall = statistics.median(p[2] / p[0] for p in pairs)
    ratio_cpu = statistics.median(p[3] / p[1] for p in pairs)
    with ScriptCheckPool(args.workers) as pool:  # plus this process
        par_pairs = []
        for _ in range(args.repeat):
            single, _ = _timed(lambda: _ours(jobs))
            parallel, _ = _timed(lambda: _parallel(pool, blocks))
            par_pairs.append((single, parallel))
    par_t = statistics.median(p[1] for p in par_pairs)
    speedup = statistics.median(p[0] / p[1] for p in par_pairs)

    print(
        json.dumps(
            {
                "benchmark": "script_validation",
                "inputs": n_inputs,
                "signatures": len(sigs),
                "floor_coincurve_s": round(floor_t, 4),
                "ours_single_core_s": round(ours_t, 4),
                "ratio_ours_to_floor": round(ratio_wall, 3),
                "ratio_ours_to_floor_cpu_time": round(ratio_cpu, 3),
                "floor_inputs_per_s": round(n_inputs / floor_t),
                "ours_inputs_per_s": round(n_inputs / ours_t),
                "parallel_processes": args.workers + 1,
                "ours_parallel_s": round(par_t, 4),
                "parallel_speedup_vs_single_core": round(speedup, 3),
                "sighash_scaling_us_per_input": _hashing_scaling(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
