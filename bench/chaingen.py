"""Deterministic regtest chain generator for the block-connection benchmark.

Builds a regtest chain from genesis whose transactions spend a roughly equal mix of five input
types — P2PKH, P2WPKH, P2SH 2-of-3 multisig, P2TR key path and P2TR script path — and records, for
every signature the node will verify, exactly what bare libsecp256k1 needs to verify it
(``kind, pubkey, signature, message``), so a benchmark can measure the floor in the same run.

The first (up to) 100 blocks pay their coinbases to many outputs of every type to seed a large
UTXO pool; from height 101 on (coinbase maturity) each block carries ``txs_per_block``
transactions of 1-3 inputs and 1-3 outputs. Inputs come from outputs at least one block old, and
a few transactions (``same_block_share``) spend an output of an earlier transaction in the same
block. Every output gets its own keys (derived from the seed and a counter), so no public key is
ever seen twice by the verifier.

For a foreign node whose segwit activates later than ours (bcoin's regtest: a BIP9 deployment,
active from height 432 when blocks signal bit 1), ``ChainSpec.witness_from`` keeps witness data
out of the blocks below that height — their coinbases carry no witness nonce or commitment and
their transactions spend only P2PKH and P2SH multisig outputs (they still create outputs of every
type) — and ``ChainSpec.block_version`` sets the header version (``0x20000002`` signals segwit).
``ChainSpec.start_time`` moves the block times (by default they follow the genesis block's, of
2011): bcoin turns P2SH on only for blocks from 2012-04-01 on (``BIP16_TIME``), and cannot check
witness programs without it.

Output, in a directory named after ``VERSION`` and the parameters (``ChainSpec.cache_name``):

* ``blocks.dat`` — ``[magic][u32 length][block]`` records, as in Core's ``blk*.dat`` files;
* ``sigs.bin`` — one record per signature check: ``0x00 pub33 len8 der msg32`` (ECDSA, DER
  without the hash-type byte) or ``0x01 xonly32 sig64 msg32`` (BIP340);
* ``meta.json`` — counts, tip, and how long generation took.

Signing runs in this process and ``workers - 1`` helper processes (fork), a block at a time;
the output is the same for any number of workers. Usable as a module (``generate``, ``load_sigs``)
or from the command line: ``python bench/chaingen.py OUTDIR [--blocks N] [--txs-per-block T]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import struct
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peercash.consensus.crypto import (
    pubkey_from_secret,
    sign_ecdsa,
    sign_schnorr,
    xonly_from_secret,
)
from peercash.consensus.hashing import hash160
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.script import push_data
from peercash.consensus.script.sighash import (
    PrecomputedTxData,
    legacy_sighash,
    segwit_v0_sighash,
    taproot_sighash,
)
from peercash.consensus.script.taproot import (
    TapLeaf,
    taproot_output,
    tweak_private_key,
    tweak_public_key,
)
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import (
    assemble_block,
    coinbase_tx,
    p2pkh_script,
    p2wpkh_script,
    solve,
)

VERSION = "chaingen-v2"
"""Bump when the generated chain changes, so cached chains are rebuilt."""

P2PKH, P2WPKH, P2SH_MULTISIG, P2TR_KEY, P2TR_SCRIPT = range(5)
KIND_NAMES = ("p2pkh", "p2wpkh", "p2sh_multisig", "p2tr_key", "p2tr_script")
ALL_KINDS = tuple(range(len(KIND_NAMES)))
LEGACY_KINDS = (P2PKH, P2SH_MULTISIG)
"""The input types spent without a witness."""

SIG_ECDSA = 0
SIG_SCHNORR = 1

BITS = 0x207FFFFF
BLOCK_SPACING = 600
MIN_OUTPUT = 5_000
"""Smallest output created (sat): any single input then covers the largest fee."""
FEE_RANGE = (200, 600)
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# A pool entry: an unspent output with what it takes to spend it.
# (txid, vout, value, script_pubkey, kind, key info)
Entry = tuple[bytes, int, int, bytes, int, tuple[Any, ...]]
# A transaction to sign: (inputs, outputs as (value, kind, key_id)).
Job = tuple[list[Entry], list[tuple[int, int, int]]]


@dataclass(frozen=True)
class ChainSpec:
    blocks: int = 5_000
    txs_per_block: int = 42
    seed_outputs_per_coinbase: int = 500
    same_block_share: float = 0.05
    seed: int = 1
    witness_from: int = 0
    """Blocks below this height carry no witness data (see the module's docstring)."""
    block_version: int = 0x20000000
    start_time: int = 0
    """Block ``h`` gets time ``start_time + 600 h``; 0: the genesis block's time."""

    def key(self) -> dict[str, Any]:
        """The parameters that name the chain; those added later are left out at their defaults,
        so chains cached before they existed keep their names."""
        d = asdict(self)
        for name in ("witness_from", "block_version", "start_time"):
            if d[name] == ChainSpec.__dataclass_fields__[name].default:
                del d[name]
        return d

    def cache_name(self) -> str:
        digest = hashlib.sha256(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()
        return f"{VERSION}-b{self.blocks}-t{self.txs_per_block}-{digest[:12]}"


# -- keys and outputs -----------------------------------------------------------------------


def _secret(seed: int, key_id: int, j: int) -> bytes:
    s = hashlib.sha256(b"peercash-bench" + struct.pack("<QQB", seed, key_id, j)).digest()
    if not 0 < int.from_bytes(s, "big") < _ORDER:  # pragma: no cover - probability 2**-128
        raise ValueError("derived an invalid secret; change the seed")
    return s


def _multisig_redeem(pubs: Sequence[bytes]) -> bytes:
    return b"\x52" + b"".join(push_data(p) for p in pubs) + b"\x53\xae"  # 2 <3 keys> 3 CMS


def make_output(seed: int, kind: int, key_id: int) -> tuple[bytes, tuple[Any, ...]]:
    """The scriptPubKey of a fresh output of ``kind`` and the key info needed to spend it."""
    if kind in (P2PKH, P2WPKH):
        s = _secret(seed, key_id, 0)
        pub = pubkey_from_secret(s)
        spk = p2pkh_script(pub) if kind == P2PKH else p2wpkh_script(pub)
        return spk, (s, pub)
    if kind == P2SH_MULTISIG:
        secrets = [_secret(seed, key_id, j) for j in range(3)]
        redeem = _multisig_redeem([pubkey_from_secret(s) for s in secrets])
        # OP_CHECKMULTISIG matches signatures to keys from the top of the stack down: signing
        # with keys 2 and 3 makes it verify exactly two signatures, both valid.
        return b"\xa9\x14" + hash160(redeem) + b"\x87", (secrets[1], secrets[2], redeem)
    if kind == P2TR_KEY:
        s = _secret(seed, key_id, 0)
        output_key, _ = tweak_public_key(xonly_from_secret(s), None)
        return b"\x51\x20" + output_key, (s,)
    if kind == P2TR_SCRIPT:
        internal = xonly_from_secret(_secret(seed, key_id, 0))
        leaf_secret = _secret(seed, key_id, 1)
        leaf_key = xonly_from_secret(leaf_secret)
        leaf = TapLeaf(b"\x20" + leaf_key + b"\xac")  # <xonly> OP_CHECKSIG
        # A second leaf (never spent) so the control block carries a one-node path.
        other = TapLeaf(b"\x20" + hashlib.sha256(b"other" + leaf_key).digest() + b"\xac")
        out = taproot_output(internal, [leaf, other])
        info = (leaf_secret, leaf.script, out.control_blocks[0], out.leaf_hashes[0], leaf_key)
        return out.script_pubkey, info
    raise ValueError(f"unknown output kind {kind}")


# -- signing --------------------------------------------------------------------------------


def sign_job(
    seed: int, job: Job
) -> tuple[Tx, list[tuple[bytes, tuple[Any, ...]]], bytes, list[int]]:
    """Build and sign one transaction.

    Returns the signed tx, (scriptPubKey, key info) per output, the signature records for the
    floor, and the number of inputs of each kind.
    """
    inputs, outputs = job
    made = [make_output(seed, kind, key_id) for _, kind, key_id in outputs]
    txouts = [TxOut(value, spk) for (value, _, _), (spk, _) in zip(outputs, made)]
    txins = [TxIn(OutPoint(e[0], e[1]), b"", 0xFFFFFFFE) for e in inputs]
    tx = Tx(2, txins, txouts, 0)
    spent = [TxOut(e[2], e[3]) for e in inputs]
    txdata = PrecomputedTxData(tx, spent)
    records = bytearray()
    kinds = [0] * 5
    signed: list[TxIn] = []
    for i, (_, _, value, spk, kind, info) in enumerate(inputs):
        kinds[kind] += 1
        prevout = txins[i].prevout
        if kind == P2PKH:
            s, pub = info
            msg = legacy_sighash(spk, tx, i, 1, txdata)
            sig = sign_ecdsa(s, msg)
            records += b"\x00" + pub + bytes((len(sig),)) + sig + msg
            signed.append(TxIn(prevout, push_data(sig + b"\x01") + push_data(pub), 0xFFFFFFFE))
        elif kind == P2WPKH:
            s, pub = info
            msg = segwit_v0_sighash(p2pkh_script(pub), tx, i, 1, value, txdata)
            sig = sign_ecdsa(s, msg)
            records += b"\x00" + pub + bytes((len(sig),)) + sig + msg
            signed.append(TxIn(prevout, b"", 0xFFFFFFFE, (sig + b"\x01", pub)))
        elif kind == P2SH_MULTISIG:
            s1, s2, redeem = info
            msg = legacy_sighash(redeem, tx, i, 1, txdata)
            script_sig = b"\x00"
            for j, s in ((1, s1), (2, s2)):
                sig = sign_ecdsa(s, msg)
                pub = redeem[2 + 34 * j : 35 + 34 * j]
                records += b"\x00" + pub + bytes((len(sig),)) + sig + msg
                script_sig += push_data(sig + b"\x01")
            signed.append(TxIn(prevout, script_sig + push_data(redeem), 0xFFFFFFFE))
        elif kind == P2TR_KEY:
            (s,) = info
            msg = taproot_sighash(tx, i, 0, txdata, 0, None)
            assert msg is not None
            sig = sign_schnorr(tweak_private_key(s, None), msg)
            records += b"\x01" + spk[2:] + sig + msg
            signed.append(TxIn(prevout, b"", 0xFFFFFFFE, (sig,)))
        else:
            leaf_secret, script, control, leaf_hash, leaf_key = info
            msg = taproot_sighash(tx, i, 0, txdata, 1, None, leaf_hash, 0xFFFFFFFF)
            assert msg is not None
            sig = sign_schnorr(leaf_secret, msg)
            records += b"\x01" + leaf_key + sig + msg
            signed.append(TxIn(prevout, b"", 0xFFFFFFFE, (sig, script, control)))
    return Tx(2, signed, txouts, 0), made, bytes(records), kinds


def _make_outputs(seed: int, specs: list[tuple[int, int]]) -> list[tuple[bytes, tuple[Any, ...]]]:
    return [make_output(seed, kind, key_id) for kind, key_id in specs]


def _sign_jobs(
    seed: int, jobs: list[Job]
) -> list[tuple[Tx, list[tuple[bytes, tuple[Any, ...]]], bytes, list[int]]]:
    return [sign_job(seed, job) for job in jobs]


# -- the chain ------------------------------------------------------------------------------


class _Planner:
    """Chooses what each transaction spends and creates (all randomness lives here)."""

    def __init__(self, spec: ChainSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.pools: list[list[Entry]] = [[] for _ in KIND_NAMES]
        self.next_key = 0

    def key_id(self) -> int:
        self.next_key += 1
        return self.next_key

    def add(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            self.pools[e[4]].append(e)

    def _take(self, kind: int, kinds: Sequence[int] = ALL_KINDS) -> Entry | None:
        pools = self.pools
        if not pools[kind]:
            nonempty = [k for k in kinds if pools[k]]
            if not nonempty:
                return None
            kind = self.rng.choice(nonempty)
        pool = pools[kind]
        i = self.rng.randrange(len(pool))
        pool[i], pool[-1] = pool[-1], pool[i]
        return pool.pop()

    def plan(self, first: Entry | None = None, legacy: bool = False) -> tuple[Job, int] | None:
        """A transaction of 1-3 inputs (starting with ``first`` if given) and 1-3 outputs;
        ``legacy``: inputs without witnesses only."""
        rng = self.rng
        n_in = rng.randint(1, 3)
        inputs: list[Entry] = [first] if first is not None else []
        while len(inputs) < n_in:
            if legacy:
                e = self._take(rng.choice(LEGACY_KINDS), LEGACY_KINDS)
            else:
                e = self._take(rng.randrange(len(KIND_NAMES)))
            if e is None:
                break
            inputs.append(e)
        if not inputs:
            return None
        fee = rng.randint(*FEE_RANGE)
        avail = sum(e[2] for e in inputs) - fee
        n_out = max(1, min(rng.randint(1, 3), avail // MIN_OUTPUT))
        spare = avail - n_out * MIN_OUTPUT
        cuts = sorted(rng.randint(0, spare) for _ in range(n_out - 1))
        values = [b - a + MIN_OUTPUT for a, b in zip([0, *cuts], [*cuts, spare])]
        outputs = [(v, rng.randrange(len(KIND_NAMES)), self.key_id()) for v in values]
        return (inputs, outputs), fee


def _entries(
    tx: Tx, made: Sequence[tuple[bytes, tuple[Any, ...]]], kinds: Sequence[int]
) -> list[Entry]:
    """Pool entries for the first ``len(made)`` outputs of ``tx``."""
    txid = tx.txid
    outs = tx.outputs
    return [
        (txid, vout, outs[vout].value, outs[vout].script_pubkey, kinds[vout], made[vout][1])
        for vout in range(len(made))
    ]


def _split(jobs: list[Job], share: float) -> int:
    """Index that gives the first part ``share`` of the signatures."""
    weights = [sum(2 if e[4] == P2SH_MULTISIG else 1 for e in job[0]) for job in jobs]
    target = sum(weights) * share
    acc = 0
    for i, w in enumerate(weights):
        if acc >= target:
            return i
        acc += w
    return len(jobs)


def generate(spec: ChainSpec, outdir: Path, workers: int = 2, log: Any = None) -> dict[str, Any]:
    """Generate the chain into ``outdir`` (written to a temporary sibling, then renamed)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    params = REGTEST
    maturity = params.coinbase_maturity
    tmp = outdir.with_name(outdir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    planner = _Planner(spec)
    rng = planner.rng
    seed = spec.seed
    genesis = Block.parse(params.genesis)
    prev_hash, block_time = genesis.hash, spec.start_time or genesis.header.time
    maturing: deque[tuple[int, list[Entry]]] = deque()
    counts = {"txs": 0, "inputs": 0, "outputs": 0, "ecdsa": 0, "schnorr": 0, "same_block": 0}
    input_kinds = [0] * 5
    seed_blocks = min(maturity, spec.blocks)
    start = time.perf_counter()
    last_report = start
    pool = multiprocessing.get_context("fork").Pool(workers - 1) if workers > 1 else None
    try:
        with (tmp / "blocks.dat").open("wb") as fblk, (tmp / "sigs.bin").open("wb") as fsig:
            for height in range(1, spec.blocks + 1):
                while maturing and maturing[0][0] <= height:
                    planner.add(maturing.popleft()[1])
                txs: list[Tx] = []
                fees = 0
                pending: list[Entry] = []
                legacy = height < spec.witness_from
                if height > seed_blocks:
                    jobs: list[Job] = []
                    n_dep = sum(
                        rng.random() < spec.same_block_share for _ in range(spec.txs_per_block)
                    )
                    n_dep = min(n_dep, spec.txs_per_block // 2)
                    for _ in range(spec.txs_per_block - n_dep):
                        planned = planner.plan(legacy=legacy)
                        if planned is not None:
                            jobs.append(planned[0])
                            fees += planned[1]
                    results: list[Any] = []
                    if pool is not None and len(jobs) > 1:
                        # The helpers take a little more: this process also plans and assembles.
                        cut = _split(jobs, 1.2 * (workers - 1) / (1 + 1.2 * (workers - 1)))
                        chunks = [jobs[cut * k // (workers - 1) : cut * (k + 1) // (workers - 1)]
                                  for k in range(workers - 1)]  # fmt: skip
                        asyncs = [pool.apply_async(_sign_jobs, (seed, c)) for c in chunks]
                        mine = _sign_jobs(seed, jobs[cut:])
                        for a in asyncs:
                            results.extend(a.get())
                        results.extend(mine)
                    else:
                        results = _sign_jobs(seed, jobs)
                    for job, res in zip(jobs, results):
                        pending.extend(_entries(res[0], res[1], [o[1] for o in job[1]]))
                    independents = len(results)
                    for _ in range(n_dep):
                        if legacy:
                            spendable = [j for j, e in enumerate(pending) if e[4] in LEGACY_KINDS]
                            if not spendable:
                                break
                            i = rng.choice(spendable)
                        elif not pending:
                            break
                        else:
                            i = rng.randrange(len(pending))
                        pending[i], pending[-1] = pending[-1], pending[i]
                        planned = planner.plan(pending.pop(), legacy)
                        assert planned is not None
                        job, fee = planned
                        fees += fee
                        res = sign_job(seed, job)
                        results.append(res)
                        pending.extend(_entries(res[0], res[1], [o[1] for o in job[1]]))
                    counts["same_block"] += len(results) - independents
                    for tx, _, records, kinds in results:
                        txs.append(tx)
                        fsig.write(records)
                        counts["inputs"] += len(tx.inputs)
                        counts["outputs"] += len(tx.outputs)
                        for k in range(5):
                            input_kinds[k] += kinds[k]
                        counts["ecdsa"] += kinds[P2PKH] + kinds[P2WPKH] + 2 * kinds[P2SH_MULTISIG]
                        counts["schnorr"] += kinds[P2TR_KEY] + kinds[P2TR_SCRIPT]
                subsidy = block_subsidy(height, params)
                if height <= seed_blocks:
                    n = spec.seed_outputs_per_coinbase
                    cb_kinds = [k % len(KIND_NAMES) for k in range(n)]
                    values = [subsidy // n] * n
                else:
                    cb_kinds = [rng.randrange(len(KIND_NAMES))]
                    values = [subsidy + fees]
                specs = [(k, planner.key_id()) for k in cb_kinds]
                if pool is not None and len(specs) > 1:
                    cut = len(specs) // 2
                    a = pool.apply_async(_make_outputs, (seed, specs[:cut]))
                    mine_made = _make_outputs(seed, specs[cut:])
                    made = a.get() + mine_made
                else:
                    made = _make_outputs(seed, specs)
                outs = [TxOut(v, spk) for v, (spk, _) in zip(values, made)]
                cb = coinbase_tx(height, outs, witness=not legacy)
                block_time += BLOCK_SPACING
                block = solve(
                    assemble_block(prev_hash, block_time, BITS, cb, txs,
                                   version=spec.block_version, witness_commitment=not legacy)
                )  # fmt: skip
                raw = block.serialize()
                fblk.write(params.magic + struct.pack("<I", len(raw)) + raw)
                prev_hash = block.hash
                counts["txs"] += len(txs)
                # The block's own outputs are spendable from the next block on; the coinbase's
                # after maturity (the commitment output, if any, is last and never used).
                cb_entries = _entries(block.txs[0], made, cb_kinds)
                maturing.append((height + maturity, [e for e in cb_entries if e[2] > 0]))
                planner.add(pending)
                now = time.perf_counter()
                if now - last_report >= 5 or height == spec.blocks:
                    last_report = now
                    log(
                        f"chaingen: block {height}/{spec.blocks}, {counts['txs']} txs, "
                        f"{counts['inputs']} inputs, {now - start:.0f}s"
                    )
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    meta = {
        "version": VERSION,
        "spec": spec.key(),
        "blocks": spec.blocks,
        "tip_height": spec.blocks,
        "tip": prev_hash[::-1].hex(),
        "txs_including_coinbase": counts["txs"] + spec.blocks,
        "txs": counts["txs"],
        "same_block_spends": counts["same_block"],
        "inputs": counts["inputs"],
        "outputs": counts["outputs"],
        "inputs_by_kind": dict(zip(KIND_NAMES, input_kinds)),
        "signatures": counts["ecdsa"] + counts["schnorr"],
        "ecdsa_signatures": counts["ecdsa"],
        "schnorr_signatures": counts["schnorr"],
        "generation_s": round(time.perf_counter() - start, 1),
        "generation_workers": workers,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)
    return meta


def ensure_chain(
    spec: ChainSpec, cache_dir: Path, workers: int = 2, log: Any = None
) -> tuple[Path, dict[str, Any], bool]:
    """The cached chain's directory and metadata, generating it first if needed.

    Returns (directory, meta, generated now?).
    """
    outdir = cache_dir / spec.cache_name()
    meta_path = outdir / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == VERSION and meta.get("spec") == spec.key():
            return outdir, meta, False
    cache_dir.mkdir(parents=True, exist_ok=True)
    return outdir, generate(spec, outdir, workers, log), True


def load_sigs(path: Path) -> list[tuple[int, bytes, bytes, bytes]]:
    """The (kind, pubkey, signature, message) records of ``sigs.bin``."""
    data = path.read_bytes()
    out: list[tuple[int, bytes, bytes, bytes]] = []
    append = out.append
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == SIG_ECDSA:
            n = data[pos + 34]
            append((SIG_ECDSA, data[pos + 1 : pos + 34], data[pos + 35 : pos + 35 + n],
                    data[pos + 35 + n : pos + 67 + n]))  # fmt: skip
            pos += 67 + n
        else:
            append((SIG_SCHNORR, data[pos + 1 : pos + 33], data[pos + 33 : pos + 97],
                    data[pos + 97 : pos + 129]))  # fmt: skip
            pos += 129
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--blocks", type=int, default=ChainSpec.blocks)
    parser.add_argument("--txs-per-block", type=int, default=ChainSpec.txs_per_block)
    parser.add_argument("--seed-outputs", type=int, default=ChainSpec.seed_outputs_per_coinbase)
    parser.add_argument("--seed", type=int, default=ChainSpec.seed)
    parser.add_argument("--witness-from", type=int, default=ChainSpec.witness_from,
                        help="no witness data below this height")  # fmt: skip
    parser.add_argument("--block-version", type=lambda v: int(v, 0),
                        default=ChainSpec.block_version)  # fmt: skip
    parser.add_argument("--start-time", type=int, default=ChainSpec.start_time)
    parser.add_argument("--workers", type=int, default=2, help="signing processes (this one too)")
    args = parser.parse_args()
    spec = ChainSpec(args.blocks, args.txs_per_block, args.seed_outputs, seed=args.seed,
                     witness_from=args.witness_from, block_version=args.block_version,
                     start_time=args.start_time)  # fmt: skip
    print(json.dumps(generate(spec, args.outdir, args.workers), indent=2))


if __name__ == "__main__":
    main()
