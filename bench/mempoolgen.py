"""Deterministic signed transactions for the mempool benchmark, over a regtest chain that pays them.

Plans ``TxSetSpec.txs`` transactions in the order a pool will be offered them: independent spends
of 1-3 confirmed coins (1-3 outputs) interleaved with chains (each transaction spends output 0 of
the one before it, sometimes plus a confirmed coin, and pays a change output and a payment) of
2 to ``max_chain`` transactions, up to ``active_chains`` growing at once. Inputs and outputs are
P2WPKH, P2TR key path and P2PKH in the shares of ``KIND_WEIGHTS``; fee rates are spread from
1 to 200 sat/vB. Every output has its own key (``bench/chaingen.py``'s ``make_output``), and
transactions are signed with ``chaingen.sign_job`` (libsecp256k1 through
``peercash.consensus.crypto``), which also records, for every signature, what bare
libsecp256k1 needs to verify it (``kind, pubkey, signature, message``), for the floor.

The chain (regtest, from genesis): blocks whose coinbases pay ``outputs_per_coinbase`` outputs
each — first the confirmed coins the plan spends, then ``op_true_coins`` outputs to
P2WSH(OP_TRUE) (cheap unsigned spends to fill a pool for the block-template figure) — then
enough empty blocks for every coinbase to mature.

Output, in a directory named after ``VERSION`` and the parameters (``TxSetSpec.cache_name``):

* ``blocks.dat`` — ``[magic][u32 length][block]`` records, as ``chaingen`` writes them;
* ``txs.dat`` — ``[u32 length][tx]`` records, in acceptance order;
* ``sigs.bin`` — ``chaingen``'s signature records (read them with ``chaingen.load_sigs``);
* ``meta.json`` — counts and how long generation took.

Usable as a module (``ensure_txset``, ``load_blocks``, ``load_txs``) or from the command line:
``python bench/mempoolgen.py OUTDIR [--txs N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaingen import (
    BITS,
    BLOCK_SPACING,
    KIND_NAMES,
    P2PKH,
    P2TR_KEY,
    P2WPKH,
    Entry,
    make_output,
    sign_job,
)

from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, OutPoint, Tx, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import P2WSH_OP_TRUE, assemble_block, coinbase_tx, solve

VERSION = "mempoolgen-v1"
"""Bump when the generated set changes, so cached sets are rebuilt."""

KIND_WEIGHTS = ((P2WPKH, 55), (P2TR_KEY, 25), (P2PKH, 20))
"""Input and output types and their shares (percent)."""
_IN_VSIZE = {P2WPKH: 68.0, P2TR_KEY: 57.5, P2PKH: 148.0}
_OUT_VSIZE = {P2WPKH: 31.0, P2TR_KEY: 43.0, P2PKH: 34.0}
MIN_PAYMENT = 20_000
"""Smallest output created (sat), well above every dust threshold."""


@dataclass(frozen=True)
class TxSetSpec:
    txs: int = 20_000
    chain_share: float = 0.5
    """Share of the transactions that are links of chains."""
    max_chain: int = 25
    active_chains: int = 40
    outputs_per_coinbase: int = 500
    op_true_coins: int = 30_000
    seed: int = 11

    def cache_name(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return f"{VERSION}-t{self.txs}-{digest[:12]}"


# A planned input: ("c", coin index) or ("t", planned tx index, vout).
Ref = tuple[str, int, int]


@dataclass
class _Planned:
    inputs: list[Ref]
    out_kinds: list[int]
    rate: int
    """sat/vB"""
    chain: bool
    depth: int
    """Unconfirmed ancestors along its chain (0: spends only confirmed coins)."""


def _kind(rng: random.Random) -> int:
    kinds, weights = zip(*KIND_WEIGHTS)
    return rng.choices(kinds, weights)[0]


def _rate(rng: random.Random) -> int:
    return min(200, 1 + int(rng.expovariate(1 / 12)))


def plan(spec: TxSetSpec) -> tuple[list[_Planned], list[int]]:
    """The transactions (topologically ordered) and the kind of every confirmed coin they spend."""
    rng = random.Random(spec.seed)
    coin_kinds: list[int] = []

    def coin() -> Ref:
        coin_kinds.append(_kind(rng))
        return ("c", len(coin_kinds) - 1, 0)

    txs: list[_Planned] = []
    active: list[list[int]] = []  # [last tx index, links still to add]
    while len(txs) < spec.txs:
        if rng.random() < spec.chain_share:
            if len(active) < spec.active_chains:
                length = rng.randint(2, spec.max_chain)
                ins = [coin() for _ in range(rng.randint(1, 2))]
                txs.append(_Planned(ins, [_kind(rng), _kind(rng)], _rate(rng), True, 0))
                active.append([len(txs) - 1, length - 1])
                continue
            i = rng.randrange(len(active))
            last, left = active[i]
            ins = [("t", last, 0)]
            if rng.random() < 0.15:
                ins.append(coin())
            depth = txs[last].depth + 1
            txs.append(_Planned(ins, [_kind(rng), _kind(rng)], _rate(rng), True, depth))
            if left <= 1:
                active[i] = active[-1]
                active.pop()
            else:
                active[i] = [len(txs) - 1, left - 1]
        else:
            ins = [coin() for _ in range(rng.randint(1, 3))]
            outs = [_kind(rng) for _ in range(rng.randint(1, 3))]
            txs.append(_Planned(ins, outs, _rate(rng), False, 0))
    return txs, coin_kinds


def _vsize_estimate(in_kinds: list[int], out_kinds: list[int]) -> float:
    return 10.5 + sum(_IN_VSIZE[k] for k in in_kinds) + sum(_OUT_VSIZE[k] for k in out_kinds)


def _coin_values(spec: TxSetSpec, total: int) -> Iterator[tuple[int, list[int]]]:
    """(height, output values) of each coin-paying block, ``total`` outputs in all."""
    per = spec.outputs_per_coinbase
    height = 0
    while total > 0:
        height += 1
        n = min(per, total)
        subsidy = block_subsidy(height, REGTEST)
        yield height, [subsidy // per] * n
        total -= n


def write_records(path: Path, items: list[bytes], magic: bytes = b"") -> None:
    with path.open("wb") as f:
        for raw in items:
            f.write(magic + struct.pack("<I", len(raw)) + raw)


def _read_records(path: Path, head: int) -> Iterator[bytes]:
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos + head - 4)
        pos += head
        yield data[pos : pos + n]
        pos += n


def load_blocks(path: Path) -> list[Block]:
    return [Block.parse(raw) for raw in _read_records(path, 8)]


def load_txs(path: Path) -> list[Tx]:
    return [Tx.parse(raw) for raw in _read_records(path, 4)]


def op_true_outpoints(blocks: list[Block]) -> list[tuple[OutPoint, int]]:
    """Every P2WSH(OP_TRUE) coinbase output of the chain, with its value."""
    out: list[tuple[OutPoint, int]] = []
    for block in blocks:
        cb = block.txs[0]
        for i, o in enumerate(cb.outputs):
            if o.script_pubkey == P2WSH_OP_TRUE:
                out.append((OutPoint(cb.txid, i), o.value))
    return out


def generate(spec: TxSetSpec, outdir: Path, log: Any = None) -> dict[str, Any]:
    """Generate the chain and the transactions into ``outdir`` (via a temporary sibling)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    planned, coin_kinds = plan(spec)
    seed = spec.seed
    key = 0

    def key_id() -> int:
        nonlocal key
        key += 1
        return key

    # The chain: coins for the plan, then OP_TRUE coins, then maturity.
    params = REGTEST
    genesis = Block.parse(params.genesis)
    prev, when = genesis.hash, genesis.header.time
    blocks: list[bytes] = []
    coins: list[Entry] = []
    height = 0
    n_signed = len(coin_kinds)
    remaining_op_true = spec.op_true_coins
    for height, values in _coin_values(spec, n_signed + spec.op_true_coins):
        outs: list[TxOut] = []
        made: list[tuple[int, bytes, Any]] = []
        for v in values:
            if len(coins) + len(made) < n_signed:
                kind = coin_kinds[len(coins) + len(made)]
                spk, info = make_output(seed, kind, key_id())
                made.append((kind, spk, info))
            else:
                spk = P2WSH_OP_TRUE
                remaining_op_true -= 1
            outs.append(TxOut(v, spk))
        block = _mine(prev, when := when + BLOCK_SPACING, height, outs)
        cb = block.txs[0]
        for vout, (kind, spk, info) in enumerate(made):
            coins.append((cb.txid, vout, outs[vout].value, spk, kind, info))
        blocks.append(block.serialize())
        prev = block.hash
    assert remaining_op_true == 0 and len(coins) == n_signed
    last_coin_height = height
    for height in range(last_coin_height + 1, last_coin_height + params.coinbase_maturity):
        block = _mine(prev, when := when + BLOCK_SPACING, height, [])
        blocks.append(block.serialize())
        prev = block.hash
    log(f"mempoolgen: {len(blocks)} blocks, {n_signed} signed coins, {spec.op_true_coins} OP_TRUE")

    # The transactions.
    results: list[tuple[Tx, list[Entry]]] = []
    records: list[bytes] = []
    inputs_by_kind = [0] * len(KIND_NAMES)
    ecdsa = schnorr = 0
    for n, p in enumerate(planned):
        ins: list[Entry] = []
        for ref in p.inputs:
            if ref[0] == "c":
                ins.append(coins[ref[1]])
            else:
                ins.append(results[ref[1]][1][ref[2]])
        fee = math.ceil(p.rate * _vsize_estimate([e[4] for e in ins], p.out_kinds))
        avail = sum(e[2] for e in ins) - fee
        if p.chain:
            pay = min(avail // 10, MIN_PAYMENT + int(avail * 0.05 * random.Random(n).random()))
            values = [avail - pay, pay]
        else:
            k = len(p.out_kinds)
            values = [avail // k] * k
            values[0] += avail - sum(values)
        assert min(values) >= MIN_PAYMENT, (n, values)
        outputs = [(v, kind, key_id()) for v, kind in zip(values, p.out_kinds)]
        tx, made, recs, kinds = sign_job(seed, (ins, outputs))
        entries = [
            (tx.txid, vout, values[vout], made[vout][0], p.out_kinds[vout], made[vout][1])
            for vout in range(len(values))
        ]
        results.append((tx, entries))
        records.append(recs)
        for k, c in enumerate(kinds):
            inputs_by_kind[k] += c
        ecdsa += kinds[P2PKH] + kinds[P2WPKH]
        schnorr += kinds[P2TR_KEY]
        if (n + 1) % 5000 == 0:
            log(f"mempoolgen: signed {n + 1}/{len(planned)}, {time.perf_counter() - start:.0f}s")

    tmp = outdir.with_name(outdir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_records(tmp / "blocks.dat", blocks, params.magic)
    write_records(tmp / "txs.dat", [tx.serialize() for tx, _ in results])
    (tmp / "sigs.bin").write_bytes(b"".join(records))
    meta = {
        "version": VERSION,
        "spec": asdict(spec),
        "blocks": len(blocks),
        "tip": prev[::-1].hex(),
        "txs": len(results),
        "chain_txs": sum(p.chain for p in planned),
        "max_depth": max(p.depth for p in planned) + 1,
        "inputs": sum(inputs_by_kind),
        "inputs_by_kind": {KIND_NAMES[k]: c for k, c in enumerate(inputs_by_kind) if c},
        "outputs": sum(len(tx.outputs) for tx, _ in results),
        "signatures": ecdsa + schnorr,
        "ecdsa_signatures": ecdsa,
        "schnorr_signatures": schnorr,
        "signed_coins": n_signed,
        "op_true_coins": spec.op_true_coins,
        "generation_s": round(time.perf_counter() - start, 1),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)
    return meta


def _mine(prev: bytes, when: int, height: int, outs: list[TxOut]) -> Block:
    if not outs:
        outs = [TxOut(block_subsidy(height, REGTEST), P2WSH_OP_TRUE)]
    cb = coinbase_tx(height, outs)
    return solve(assemble_block(prev, when, BITS, cb, [], witness_commitment=True))


def ensure_txset(
    spec: TxSetSpec, cache_dir: Path, log: Any = None
) -> tuple[Path, dict[str, Any], bool]:
    """The cached set's directory and metadata, generating it first if needed.

    Returns (directory, meta, generated now?)."""
    outdir = cache_dir / spec.cache_name()
    meta_path = outdir / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == VERSION and meta.get("spec") == asdict(spec):
            return outdir, meta, False
    cache_dir.mkdir(parents=True, exist_ok=True)
    return outdir, generate(spec, outdir, log), True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--txs", type=int, default=TxSetSpec.txs)
    parser.add_argument("--op-true-coins", type=int, default=TxSetSpec.op_true_coins)
    parser.add_argument("--seed", type=int, default=TxSetSpec.seed)
    args = parser.parse_args()
    spec = TxSetSpec(txs=args.txs, op_true_coins=args.op_true_coins, seed=args.seed)
    print(json.dumps(generate(spec, args.outdir), indent=2))


if __name__ == "__main__":
    main()
