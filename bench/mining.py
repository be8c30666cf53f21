"""Block template building with a synthetic source of 50,000 transactions.

Times ``BlockAssembler.create_new_block`` plus the ``getblocktemplate`` JSON of its result
(``rpc.blocktemplate.template_json``) on a fresh regtest chain, with a source of single-input
P2WSH(OP_TRUE) spends in chunks of one or two (parent and child) in decreasing feerate. The
spent coins do not exist, so the validity check of a real template is not part of this figure.
Floor, in the same run: one bare pass over the source summing weights and fees. Goal: template
< 0.5 s. Prints one JSON object (median of ``--repeat`` rounds, 3 by default).

Usage: ``python bench/mining.py [--txs N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peercash.chain.chainstate import ChainState
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import OutPoint, TxOut
from peercash.mining.assembler import BlockAssembler, TemplateTx
from peercash.mining.builder import P2WSH_OP_TRUE, spend_op_true_p2wsh
from peercash.rpc.blocktemplate import template_json


class Source:
    def __init__(self, chunks: list[list[TemplateTx]]) -> None:
        self.chunks = chunks

    def chunks_by_feerate(self) -> list[list[TemplateTx]]:
        return self.chunks

    def transactions_updated(self) -> int:
        return 1


def synthetic(n: int) -> list[list[TemplateTx]]:
    chunks: list[list[TemplateTx]] = []
    i = 0
    while i < n:
        fee = 100_000 - i  # decreasing feerate
        tx = spend_op_true_p2wsh(OutPoint(i.to_bytes(32, "big"), 0), [TxOut(10_000, P2WSH_OP_TRUE)])
        first = TemplateTx(tx, fee, 0, tx.weight())
        if i % 3 == 0 and i + 1 < n:
            child = spend_op_true_p2wsh(OutPoint(tx.txid, 0), [TxOut(9_000, P2WSH_OP_TRUE)])
            chunks.append([first, TemplateTx(child, fee, 0, child.weight())])
            i += 2
        else:
            chunks.append([first])
            i += 1
    for c in chunks:  # txids cached, as a pool's transactions are
        for t in c:
            _ = t.tx.txid, t.tx.wtxid
    return chunks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--txs", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    source = Source(synthetic(args.txs))
    with tempfile.TemporaryDirectory() as tmp:
        chain = ChainState(REGTEST, Path(tmp) / "regtest")
        node = type("N", (), {"chain": chain, "params": REGTEST})()
        rounds = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            floor = sum(t.weight + t.fee for c in source.chunks_by_feerate() for t in c)
            t1 = time.perf_counter()
            template = BlockAssembler(chain).create_new_block(b"\x51", source)
            t2 = time.perf_counter()
            out = template_json(node, template, {"segwit"}, 1)  # type: ignore[arg-type]
            t3 = time.perf_counter()
            assert floor > 0 and len(out["transactions"]) == template.num_txs
            rounds.append((t1 - t0, t2 - t1, t3 - t1, template.num_txs, template.weight))
        chain.close()
    floor_s, assemble_s, gbt_s, selected, weight = sorted(rounds, key=lambda r: r[2])[
        len(rounds) // 2
    ]
    print(
        json.dumps(
            {
                "source_txs": args.txs,
                "selected_txs": selected,
                "block_weight": weight,
                "floor_pass_s": round(floor_s, 4),
                "assemble_s": round(assemble_s, 4),
                "template_s": round(gbt_s, 4),
                "goal_template_s": 0.5,
                "ratio_template_to_floor": round(gbt_s / floor_s, 1) if floor_s else None,
                "rounds_template_s": [round(r[2], 4) for r in rounds],
                "median_of": len(rounds),
            }
        )
    )


if __name__ == "__main__":
    main()
