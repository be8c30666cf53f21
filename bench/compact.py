"""BIP152 compact blocks: short ids, building a ``cmpctblock``, rebuilding a block from the pool.

Builds a block of ``--txs`` transactions (default 5,000) and a pool of ``--pool`` transactions
(default 50,000) that holds all of the block's but ``--missing`` of them, then times, best of
``--repeat`` runs:

* ``short_ids_ms``: the short ids of the block's wtxids with the default SipHash (siphashc when
  installed), ``short_ids_python_ms`` with our pure-Python SipHash called per wtxid and
  ``short_ids_python_lanes_ms`` with our batched one (the fallback's path); the floor is one
  ``hashlib.sha256`` of each wtxid (a C hash call per transaction, the least a Python loop over
  the transactions can cost), and ``ratio`` is floor / default;
* ``from_block_ms``: ``HeaderAndShortIDs.from_block`` plus encoding the message;
* ``init_ms``: ``PartiallyDownloadedBlock.init`` scanning the whole pool (the block's
  transactions last, so the scan cannot stop early) and ``fill_ms``: ``fill`` with the missing
  transactions, including the merkle-root check.

Prints one JSON object. Usage: ``python bench/compact.py [--txs 5000] [--pool 50000]
[--python]`` (``--python``: the fallback, as on a machine without siphashc).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable

from peercash.consensus.hashing import hash256
from peercash.consensus.merkle import (
    block_merkle_root,
    compute_witness_commitment,
    witness_commitment_script,
    witness_merkle_root,
)
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.p2p import compact
from peercash.p2p.compact import HeaderAndShortIDs, PartiallyDownloadedBlock


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 3)


def make_tx(seed: int) -> Tx:
    prevout = OutPoint(hash256(seed.to_bytes(8, "little")), 0)
    return Tx(
        2, [TxIn(prevout, b"", 0xFFFFFFFD, [b"\x51"])], [TxOut(1000, b"\x00\x14" + bytes(20))]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=5_000)
    parser.add_argument("--pool", type=int, default=50_000)
    parser.add_argument("--missing", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--python", action="store_true", help="use our SipHash even where siphashc is installed"
    )
    args = parser.parse_args()
    if args.python:
        compact.siphash24 = compact.siphash24_python

    # A segwit block: the coinbase commits to the witnesses (BIP141), so fill's check passes.
    cb_in = TxIn(OutPoint(bytes(32), 0xFFFFFFFF), b"\x01\x01", 0xFFFFFFFF, [bytes(32)])
    spends = [make_tx(i) for i in range(1, args.txs)]
    blank = Header(0x20000000, bytes(32), bytes(32), 0, 0x207FFFFF, 0)
    witness_root, _ = witness_merkle_root(Block(blank, [Tx(2, [cb_in], []), *spends]))
    commitment = witness_commitment_script(compute_witness_commitment(witness_root, bytes(32)))
    coinbase = Tx(2, [cb_in], [TxOut(50, b"\x51"), TxOut(0, commitment)])
    txs = [coinbase, *spends]
    root, _ = block_merkle_root(Block(blank, txs))
    block = Block(Header(0x20000000, bytes(32), root, 1_700_000_000, 0x207FFFFF, 0), txs)
    wtxids = [tx.wtxid for tx in txs]
    others = [make_tx(10_000_000 + i) for i in range(max(0, args.pool - args.txs))]
    missing = set(range(1, len(txs), max(1, len(txs) // max(1, args.missing)))[: args.missing])
    pool = [(tx.wtxid, tx) for tx in others]
    pool += [(tx.wtxid, tx) for i, tx in enumerate(txs) if i and i not in missing]

    ids = HeaderAndShortIDs.from_block(block, 0x5EED)
    key = ids.key
    default_hash = compact.siphash24
    python_hash = compact.siphash24_python
    mask = compact.SHORT_ID_MASK
    sha = hashlib.sha256

    floor_ms = best_ms(lambda: [sha(w).digest() for w in wtxids], args.repeat)
    short_ids_ms = best_ms(lambda: [default_hash(key, w) & mask for w in wtxids], args.repeat)
    python_ms = best_ms(
        lambda: [python_hash(key, w) & mask for w in wtxids], max(1, args.repeat // 2)
    )
    lanes_ms = best_ms(lambda: compact.siphash24_many_python(key, wtxids), args.repeat)
    from_block_ms = best_ms(
        lambda: HeaderAndShortIDs.from_block(block, 0x5EED).message.encode(), args.repeat
    )

    def init() -> PartiallyDownloadedBlock:
        partial = PartiallyDownloadedBlock()
        partial.init(ids, pool)
        return partial

    init_ms = best_ms(init, args.repeat)
    wanted = [txs[i] for i in sorted(missing)]
    partials = [init() for _ in range(args.repeat)]
    assert partials[0].missing == tuple(sorted(missing))
    assert partials[0].fill(wanted).hash == block.hash
    fill_ms = best_ms(lambda: partials.pop().fill(wanted), args.repeat - 1)

    print(
        json.dumps(
            {
                "backend": "python" if args.python else compact.SIPHASH_BACKEND,
                "block_txs": len(txs),
                "pool_txs": len(pool),
                "missing": len(missing),
                "short_ids_ms": short_ids_ms,
                "short_ids_python_ms": python_ms,
                "short_ids_python_lanes_ms": lanes_ms,
                "floor_sha256_ms": floor_ms,
                "ratio": round(floor_ms / short_ids_ms, 3) if short_ids_ms else None,
                "from_block_ms": from_block_ms,
                "init_ms": init_ms,
                "fill_ms": fill_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
