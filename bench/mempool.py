"""Mempool acceptance against bare signature verification; getblocktemplate on a full pool; relay
latency across a line of real nodes.

Builds — once, then from the cache under ``~/.cache/peercash-bench`` — a regtest chain whose
coinbases pay the benchmark's keys and 20,000 signed transactions spending them (see
``bench/mempoolgen.py``: P2WPKH, P2TR key path and P2PKH inputs; about half of the transactions
are links of chains up to 25 deep, the rest independent spends), then in the same run:

* the floor: every signature of those transactions verified with bare ``coincurve`` on one core
  (``PublicKey(pub).verify(der, sighash, hasher=None)``, ``PublicKeyXOnly(x).verify(sig,
  sighash)``: the sighashes are precomputed);
* ours: ``MemPool.accept`` of every transaction, in order, into a fresh pool with the node's
  default policy over ``ChainStateView`` of a real ``ChainState`` in a temporary datadir that
  holds the chain (as the node builds it). Floor and acceptance alternate for ``--repeat``
  rounds (3 by default); the round with the median ratio is reported, every round's ratio in
  ``accept_ratio_rounds``. Goal: ``accept_ratio_to_floor`` (tx/s over floor tx/s) >= 0.70.
* getblocktemplate: the pool filled to ``--gbt-txs`` (50,000) transactions — the signed set plus
  cheap P2WSH(OP_TRUE) spends (independent, and parent-child pairs) — then the RPC function
  ``rpc.blocktemplate.getblocktemplate`` on a stand-in node (as ``NodeServices`` presents it)
  plus ``json.dumps`` of its answer: the first call (which also builds the pool's cluster
  index, kept up to date afterwards), then ``--gbt-repeat`` (5) calls with the cached template
  dropped first, so each builds, checks and serializes a new one; the median is reported.
  Goal: < 0.5 s.
* relay latency: ``--relay-nodes`` (8) real ``peercash node`` processes on regtest in a line
  (each dials the one before it), one transaction sent to the last node, timed until it is in
  every node's mempool (``getrawmempool`` polled every 10 ms), ``--relay-reps`` (10) times:
  median and worst, and the median arrival time per hop. Every hop is an outbound connection
  (Poisson trickle, 2 s mean) to a node that hears it from an inbound peer (which Core asks
  only after 2 s): about 4 s a hop. Also with ``-whitelist=noban,in,out@127.0.0.1`` when the
  node has that option: noban peers, in both directions, get announcements without the trickle
  and are asked at once, as in Core's functional tests.

Prints one JSON object. Usage: ``python bench/mempool.py [--quick] [--repeat R] [--no-relay]
[--profile]``. ``--profile`` runs one more acceptance pass under cProfile and prints the 30
functions with the most own time to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import coincurve
from chaingen import SIG_ECDSA, load_sigs
from mempoolgen import TxSetSpec, ensure_txset, load_blocks, load_txs, op_true_outpoints

from peercash.chain.chainstate import ChainState
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, OutPoint, Tx, TxOut
from peercash.mempool.chainview import ChainStateView
from peercash.mempool.pool import MemPool
from peercash.mining.builder import P2WSH_OP_TRUE, spend_op_true_p2wsh
from peercash.rpc import mining as rpc_mining
from peercash.rpc.blocktemplate import getblocktemplate
from peercash.tools.nodeproc import NodeProcess, RpcCallError, peercash_command

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "peercash-bench"
FULL = TxSetSpec()
QUICK = TxSetSpec(txs=1_500, op_true_coins=1_500, outputs_per_coinbase=250)
GOAL_ACCEPT_RATIO = 0.70
GOAL_GBT_S = 0.5


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the floor ----------------------------------------------------------------------------------


def floor(sigs: Sequence[tuple[int, bytes, bytes, bytes]]) -> float:
    """Seconds for bare coincurve to verify every signature (one core); every one must pass."""
    public_key = coincurve.PublicKey
    xonly_key = coincurve.PublicKeyXOnly
    failed = 0
    start = time.perf_counter()
    for kind, pub, sig, msg in sigs:
        if kind == SIG_ECDSA:
            ok = public_key(pub).verify(sig, msg, hasher=None)
        else:
            ok = xonly_key(pub).verify(sig, msg)
        if not ok:
            failed += 1
    elapsed = time.perf_counter() - start
    if failed:
        raise SystemExit(f"{failed} recorded signatures do not verify")
    return elapsed


# -- the pool -----------------------------------------------------------------------------------


def open_chain(datadir: Path, blocks: Sequence[Block]) -> ChainState:
    """A chain state in ``datadir`` holding ``blocks`` (connected as the node connects them)."""
    chain = ChainState(REGTEST, datadir)
    for block in blocks:
        chain.accept_block(block)
    if chain.tip.hash != blocks[-1].hash:
        raise SystemExit(f"the chain ended at height {chain.height}, not at the last block")
    return chain


def accept_all(pool: MemPool, txs: Sequence[Tx]) -> float:
    """Seconds to offer every transaction in order; every one must be accepted."""
    accept = pool.accept
    start = time.perf_counter()
    refused = [(tx, r) for tx in txs if not (r := accept(tx)).allowed]
    elapsed = time.perf_counter() - start
    if refused:
        tx, r = refused[0]
        raise SystemExit(
            f"{len(refused)} transactions refused; first {tx.txid_hex}: {r.reject_details}"
        )
    return elapsed


def fresh_copies(txs: Sequence[Tx]) -> list[Tx]:
    """The transactions parsed again, so no hash is cached (as they arrive from a peer)."""
    return [Tx.parse(tx.serialize()) for tx in txs]


def op_true_fill(coins: Sequence[tuple[OutPoint, int]], count: int, seed: int = 5) -> list[Tx]:
    """``count`` P2WSH(OP_TRUE) spends of ``coins`` (one each, in order): mostly independent, a
    third of them followed by a child spending their first output; fees of 1-200 sat/vB."""
    rng = random.Random(seed)
    out: list[Tx] = []
    it = iter(coins)
    while len(out) < count:
        prevout, value = next(it)
        fee = (1 + min(199, int(rng.expovariate(1 / 15)))) * 100
        n_out = rng.randint(1, 2)
        each = (value - fee) // n_out
        parent = spend_op_true_p2wsh(prevout, [TxOut(each, P2WSH_OP_TRUE)] * n_out)
        out.append(parent)
        if len(out) < count and rng.random() < 0.33:
            child_fee = (1 + min(199, int(rng.expovariate(1 / 15)))) * 100
            out.append(
                spend_op_true_p2wsh(
                    OutPoint(parent.txid, 0), [TxOut(each - child_fee, P2WSH_OP_TRUE)]
                )
            )
    return out


def profile_accept(chain: ChainState, txs: Sequence[Tx], path: Path) -> None:
    pool = MemPool(ChainStateView(chain))
    prof = cProfile.Profile()
    prof.enable()
    for tx in txs:
        pool.accept(tx)
    prof.disable()
    prof.dump_stats(str(path))
    pstats.Stats(str(path), stream=sys.stderr).sort_stats("tottime").print_stats(30)


# -- getblocktemplate ---------------------------------------------------------------------------


def gbt_node(chain: ChainState, pool: MemPool, datadir: Path) -> Any:
    """What ``getblocktemplate`` reads of the node (``NodeServices``'s attributes it uses)."""
    return SimpleNamespace(
        chain=chain,
        params=REGTEST,
        mempool=pool,
        config=SimpleNamespace(txindex=False),
        network="regtest",
        datadir=datadir,
        start_time=time.time(),
    )


def time_gbt(node: Any, repeat: int) -> dict[str, Any]:
    request = {"rules": ["segwit"]}

    def call() -> tuple[float, dict[str, Any], int]:
        start = time.perf_counter()
        answer = getblocktemplate(node, request)
        text = json.dumps(answer)
        return time.perf_counter() - start, answer, len(text)

    first_s, answer, _ = call()
    rounds: list[float] = []
    size = 0
    for _ in range(repeat):
        rpc_mining.mining_state(node).template = None  # build a new template every time
        t, answer, size = call()
        rounds.append(t)
    cached_s, _, _ = call()
    weight = sum(t["weight"] for t in answer["transactions"])
    return {
        "gbt_s": round(statistics.median(rounds), 4),
        "gbt_rounds_s": [round(t, 4) for t in rounds],
        "gbt_first_call_s": round(first_s, 4),
        "gbt_cached_call_s": round(cached_s, 4),
        "gbt_selected_txs": len(answer["transactions"]),
        "gbt_selected_weight": weight,
        "gbt_json_bytes": size,
    }


# -- relay latency ------------------------------------------------------------------------------


def node_has_option(name: str) -> bool:
    out = subprocess.run(
        peercash_command("node", "--help"), capture_output=True, text=True, timeout=60
    ).stdout
    return name in out


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def relay_latency(
    workdir: Path, n_nodes: int, reps: int, extra: Sequence[str], poll: float = 0.01
) -> dict[str, Any]:
    """Start ``n_nodes`` in a line, send ``reps`` transactions (one at a time) to the last one
    and time each until every mempool has it."""
    nodes: list[NodeProcess] = []
    try:
        for i in range(n_nodes):
            args = ["--listen", "--no-persistmempool", *extra]
            args.append(f"--connect=127.0.0.1:{nodes[-1].port}" if nodes else "--connect=0")
            node = NodeProcess(workdir / f"n{i}", extra_args=args)
            nodes.append(node)
            node.start()
        for i, node in enumerate(nodes):
            want = (i > 0) + (i < n_nodes - 1)
            _wait(lambda node=node, want=want: node.call("getconnectioncount") == want, 60,
                  f"node {i}'s connections")  # fmt: skip
        first, last = nodes[0], nodes[-1]
        hashes = first.call("generatetodescriptor", 100 + reps, f"raw({P2WSH_OP_TRUE.hex()})")
        tip = hashes[-1]
        for i, node in enumerate(nodes):
            _wait(lambda node=node: node.call("getbestblockhash") == tip, 120, f"node {i}'s sync")
        totals: list[float] = []
        per_hop: list[list[float]] = [[] for _ in range(n_nodes)]
        for k in range(reps):
            block = first.call("getblock", hashes[k], 2)
            cb = block["tx"][0]
            prevout = OutPoint(bytes.fromhex(cb["txid"])[::-1], 0)
            value = round(cb["vout"][0]["value"] * 100_000_000)
            tx = spend_op_true_p2wsh(prevout, [TxOut(value - 20_000, P2WSH_OP_TRUE)])
            txid = tx.txid_hex
            arrived: dict[int, float] = {}
            start = time.perf_counter()
            last.call("sendrawtransaction", tx.serialize().hex())
            arrived[n_nodes - 1] = time.perf_counter() - start
            deadline = start + 120
            while len(arrived) < n_nodes:
                if time.perf_counter() > deadline:
                    raise SystemExit(f"tx {txid} reached only nodes {sorted(arrived)} in 120 s")
                for i in range(n_nodes):
                    if i not in arrived and txid in nodes[i].call("getrawmempool"):
                        arrived[i] = time.perf_counter() - start
                time.sleep(poll)
            totals.append(max(arrived.values()))
            for hops in range(n_nodes):
                per_hop[hops].append(arrived[n_nodes - 1 - hops])
            _log(f"relay {k + 1}/{reps}: {totals[-1]:.2f}s to all {n_nodes} nodes")
    finally:
        for node in nodes:
            try:
                node.stop(30)
            except Exception:
                node.kill()
    return {
        "median_s": round(statistics.median(totals), 3),
        "worst_s": round(max(totals), 3),
        "best_s": round(min(totals), 3),
        "rounds_s": [round(t, 3) for t in totals],
        "median_arrival_by_hops_s": [round(statistics.median(h), 3) for h in per_hop[1:]],
    }


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, for smoke tests")
    parser.add_argument("--txs", type=int, default=FULL.txs, help="signed transactions")
    parser.add_argument("--gbt-txs", type=int, default=50_000, help="pool size for the template")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of floor + acceptance")
    parser.add_argument("--gbt-repeat", type=int, default=5)
    parser.add_argument("--relay-nodes", type=int, default=8)
    parser.add_argument("--relay-reps", type=int, default=10)
    parser.add_argument("--no-relay", action="store_true", help="skip the relay latency")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--profile", action="store_true", help="also cProfile one acceptance")
    args = parser.parse_args()

    if args.quick:
        spec = QUICK
        gbt_txs, repeat, gbt_repeat = 3_000, 1, 2
        relay_nodes, relay_reps = 2, 2
    else:
        spec = TxSetSpec(txs=args.txs, op_true_coins=max(0, args.gbt_txs - args.txs))
        gbt_txs, repeat, gbt_repeat = args.gbt_txs, args.repeat, args.gbt_repeat
        relay_nodes, relay_reps = args.relay_nodes, args.relay_reps
    set_dir, meta, generated = ensure_txset(spec, args.cache_dir, _log)
    _log(f"transactions: {set_dir} ({'generated' if generated else 'cached'})")
    blocks = load_blocks(set_dir / "blocks.dat")
    signed = load_txs(set_dir / "txs.dat")
    sigs = load_sigs(set_dir / "sigs.bin")
    if len(sigs) != meta["signatures"] or len(signed) != meta["txs"]:
        raise SystemExit("the cached set does not match its meta.json; delete it")
    result: dict[str, Any] = {
        "benchmark": "mempool",
        "txset": set_dir.name,
        "txs": len(signed),
        "chain_txs": meta["chain_txs"],
        "max_chain_depth": meta["max_depth"],
        "inputs": meta["inputs"],
        "inputs_by_kind": meta["inputs_by_kind"],
        "signatures": meta["signatures"],
        "ecdsa_signatures": meta["ecdsa_signatures"],
        "schnorr_signatures": meta["schnorr_signatures"],
        "chain_blocks": len(blocks),
        "generated_now": generated,
        "generation_s": meta["generation_s"],
        "loadavg_before": round(os.getloadavg()[0], 2),
    }

    workdir = Path(tempfile.mkdtemp(prefix="peercash-bench-mempool-"))
    try:
        start = time.perf_counter()
        chain = open_chain(workdir / "chain" / "regtest", blocks)
        result["chain_load_s"] = round(time.perf_counter() - start, 3)
        try:
            rounds: list[tuple[float, float]] = []
            for k in range(repeat):
                floor_s = floor(sigs)
                txs = fresh_copies(signed)
                pool = MemPool(ChainStateView(chain))
                accept_s = accept_all(pool, txs)
                rounds.append((floor_s, accept_s))
                _log(f"round {k + 1}: floor {floor_s:.3f}s, accept {accept_s:.3f}s, "
                     f"ratio {floor_s / accept_s:.3f}")  # fmt: skip
            ordered = sorted(rounds, key=lambda r: r[0] / r[1])
            floor_s, accept_s = ordered[len(ordered) // 2]
            n = len(signed)
            result.update(
                {
                    "floor_s": round(floor_s, 3),
                    "floor_tx_per_s": round(n / floor_s),
                    "floor_sig_per_s": round(len(sigs) / floor_s),
                    "accept_s": round(accept_s, 3),
                    "accept_tx_per_s": round(n / accept_s),
                    "accept_us_per_tx": round(accept_s / n * 1e6, 1),
                    "floor_us_per_tx": round(floor_s / n * 1e6, 1),
                    "accept_ratio_to_floor": round(floor_s / accept_s, 3),
                    "accept_ratio_rounds": [round(f / a, 3) for f, a in rounds],
                    "goal_accept_ratio": GOAL_ACCEPT_RATIO,
                }
            )
            if args.profile:
                profile_accept(chain, fresh_copies(signed), workdir / "accept.prof")

            # getblocktemplate on a pool of gbt_txs: the signed set (still in ``pool``) plus
            # OP_TRUE spends.
            extra = max(0, gbt_txs - len(signed))
            coins = op_true_outpoints(blocks)
            if len(coins) < extra:
                raise SystemExit(f"the chain has {len(coins)} OP_TRUE coins, {extra} needed")
            start = time.perf_counter()
            accept_all(pool, op_true_fill(coins, extra))
            result["gbt_fill_s"] = round(time.perf_counter() - start, 3)
            result["gbt_pool_txs"] = len(pool)
            result.update(time_gbt(gbt_node(chain, pool, workdir), gbt_repeat))
            result["goal_gbt_s"] = GOAL_GBT_S
        finally:
            chain.close()

        if not args.no_relay:
            configs = [("trickle", [])]
            if node_has_option("--whitelist"):
                configs.append(("noban", ["--whitelist=noban,in,out@127.0.0.1"]))
            else:
                result["relay_noban"] = "the node has no --whitelist option"
            for name, extra_args in configs:
                _log(f"relay latency ({name}): {relay_nodes} nodes in a line, {relay_reps} txs")
                figures = relay_latency(workdir / f"relay-{name}", relay_nodes, relay_reps,
                                        extra_args)  # fmt: skip
                result[f"relay_{name}"] = {"nodes": relay_nodes, "hops": relay_nodes - 1,
                                           "txs": relay_reps, **figures}  # fmt: skip
    except RpcCallError as e:
        raise SystemExit(f"RPC error {e.code}: {e.message}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
