"""The wallet: signing a large transaction, and rescanning a chain, each against a floor measured
in the same run.

* **sign**: a wallet with ``--inputs`` (500) P2WPKH coins (each to its own address) spends them
  all to one output, sendall-like: ``Wallet.coins()``, ``psbt.roles.create``,
  ``fill.fill_psbt`` (UTXOs, scripts, origins, signing through ``Wallet.signing_keys()``,
  finalizing) and ``roles.extract``. The floor: bare ``coincurve`` ECDSA signing of the same
  sighashes with the same keys (``PrivateKey.sign(msg, hasher=None)``; the hashes are computed
  beforehand). Reported: ``sign_ratio_to_floor`` = floor seconds / ours (1.0 would be the floor).
* **rescan**: ``--blocks`` (5,000) blocks, each with ``--txs-per-block`` (3) transactions: one
  paying the wallet, one spending the wallet's previous coin, one unrelated; the blocks are
  written to a real ``chain.blockstore.BlockStore`` (the node's block files) in a temporary
  folder. The floor: reading every block back from the store and deserializing it
  (``Block.parse``). Ours: ``Wallet.rescan`` over a ``NodeClient`` whose ``read_block`` does that
  same read and parse. Reported: ``rescan_ratio_to_floor`` = floor seconds / ours.

Prints one JSON object. Usage: ``python bench/wallet.py [--inputs N] [--blocks B]
[--txs-per-block T] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import coincurve

from peercash.chain.blockstore import BlockStore, FilePos
from peercash.consensus.address import address_to_script
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.sighash import (
    SIGHASH_ALL,
    PrecomputedTxData,
    segwit_v0_sighash,
)
from peercash.wallet.fill import fill_psbt
from peercash.wallet.interfaces import ChainListener
from peercash.wallet.psbt import roles
from peercash.wallet.signer import p2pkh_script
from peercash.wallet.wallet import Wallet

ELSEWHERE = b"\x00\x14" + b"\x99" * 20
NULL = OutPoint(b"\x00" * 32, 0xFFFFFFFF)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class StoreNode:
    """A ``NodeClient`` over blocks in a ``BlockStore``: ``read_block`` reads and parses."""

    def __init__(self, folder: Path) -> None:
        self.store = BlockStore(folder, REGTEST.magic)
        self.positions: list[FilePos] = []
        self.hashes: list[bytes] = []
        self.times: list[int] = []
        self.listeners: list[ChainListener] = []

    @property
    def params(self) -> Any:
        return REGTEST

    def append(self, block: Block) -> None:
        self.positions.append(self.store.write_block(block.serialize()))
        self.hashes.append(block.header.hash)
        self.times.append(block.header.time)

    def tip(self) -> tuple[int, bytes]:
        return len(self.hashes) - 1, self.hashes[-1]

    def block_hash(self, height: int) -> bytes | None:
        return self.hashes[height] if 0 <= height < len(self.hashes) else None

    def read_block(self, height: int) -> Block | None:
        if not 0 <= height < len(self.positions):
            return None
        return Block.parse(self.store.read_block(self.positions[height]))

    def first_block_at_or_after(self, timestamp: int) -> int | None:
        return next((h for h, t in enumerate(self.times) if t >= timestamp), None)

    def is_initial_block_download(self) -> bool:
        return False

    def in_mempool(self, txid: bytes) -> bool:
        return False

    def subscribe(self, listener: ChainListener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: ChainListener) -> None:
        self.listeners.remove(listener)

    def sync(self) -> None:
        pass

    def broadcast(self, tx: Tx, max_fee_rate: int) -> str | None:
        return None

    def estimate_fee(self, target: int, mode: str) -> int | None:
        return None


def _block(height: int, prev: bytes, txs: list[Tx]) -> Block:
    coinbase = Tx(2, [TxIn(NULL, height.to_bytes(4, "little") + b"\x51")], [TxOut(1, ELSEWHERE)])
    header = Header(4, prev, height.to_bytes(32, "little"), 1_700_000_000 + 600 * height,
                    0x207FFFFF, height)  # fmt: skip
    return Block(header, [coinbase, *txs])


def _wallet(folder: Path, name: str, keypool: int) -> Wallet:
    entropy = bytes([len(name)]) * 32
    return Wallet.create(name, folder / name / "wallet.dat", REGTEST, entropy=entropy,
                         keypool=keypool)  # fmt: skip


# -- sign ---------------------------------------------------------------------------------------


def bench_sign(folder: Path, inputs: int) -> dict[str, Any]:
    node = StoreNode(folder / "sign-blocks")
    node.append(_block(0, b"\x00" * 32, []))
    wallet = _wallet(folder, "signer", 10)
    wallet.attach(node)  # type: ignore[arg-type]
    scripts = [address_to_script(wallet.get_new_address(), REGTEST) for _ in range(inputs)]
    funding = Tx(2, [TxIn(OutPoint(b"\x01" * 32, 0))], [TxOut(100_000, s) for s in scripts])
    block = _block(1, node.hashes[-1], [funding])
    node.append(block)
    wallet.block_connected(block, 1)

    start = time.perf_counter()
    coins = wallet.coins(min_depth=1)
    total = sum(c.txout.value for c in coins)
    psbt = roles.create(
        [TxIn(c.outpoint, b"", 0xFFFFFFFD) for c in coins], [TxOut(total - 50_000, ELSEWHERE)]
    )
    psbt, complete = fill_psbt(wallet, psbt)
    tx = roles.extract(psbt)
    ours = time.perf_counter() - start
    if not complete or len(tx.inputs) != inputs:
        raise SystemExit(f"signed {len(tx.inputs)} inputs, complete={complete}")

    # The floor: the same sighashes, signed with the same keys by bare coincurve.
    keys = wallet.signing_keys()
    spent = [c.txout for c in coins]
    txdata = PrecomputedTxData(tx, spent)
    work = []
    for k, txin in enumerate(tx.inputs):
        pub = txin.witness[1]
        code = p2pkh_script(spent[k].script_pubkey[2:22])
        msg = segwit_v0_sighash(code, tx, k, SIGHASH_ALL, spent[k].value, txdata)
        secret = keys(pub)
        assert secret is not None
        work.append((coincurve.PrivateKey(secret), msg))
    start = time.perf_counter()
    for key, msg in work:
        key.sign(msg, hasher=None)
    floor = time.perf_counter() - start
    wallet.close()
    return {
        "sign_inputs": inputs,
        "sign_s": ours,
        "sign_floor_s": floor,
        "sign_ratio_to_floor": floor / ours,
        "sign_vsize": tx.vsize(),
    }


# -- rescan -------------------------------------------------------------------------------------


def bench_rescan(folder: Path, blocks: int, per_block: int) -> dict[str, Any]:
    node = StoreNode(folder / "rescan-blocks")
    wallet = _wallet(folder, "rescanner", 20)
    scripts = [address_to_script(wallet.get_new_address(), REGTEST) for _ in range(10)]
    prev_hash = b"\x00" * 32
    previous: OutPoint | None = None
    relevant = 0
    for height in range(blocks):
        txs: list[Tx] = []
        if height:
            pay = Tx(2, [TxIn(OutPoint(height.to_bytes(32, "little"), 0))],
                     [TxOut(10_000, scripts[height % len(scripts)]), TxOut(5_000, ELSEWHERE)])  # fmt: skip
            txs.append(pay)
            if previous is not None and per_block > 1:
                txs.append(Tx(2, [TxIn(previous)], [TxOut(9_000, ELSEWHERE)]))
            previous = OutPoint(pay.txid, 0)
            for n in range(max(0, per_block - 2)):
                seed = (height * 1000 + n).to_bytes(32, "big")
                txs.append(Tx(2, [TxIn(OutPoint(seed, 1))], [TxOut(7_000, ELSEWHERE)]))
            relevant += min(per_block, 2) if height > 1 else 1
        block = _block(height, prev_hash, txs)
        node.append(block)
        prev_hash = block.header.hash
    node.store.close()
    node.store = BlockStore(folder / "rescan-blocks", REGTEST.magic)  # cold file handles

    start = time.perf_counter()
    for height in range(blocks):
        node.read_block(height)
    floor = time.perf_counter() - start

    wallet.attach(node)  # type: ignore[arg-type]  # a new wallet starts at the tip
    start = time.perf_counter()
    wallet.rescan(0, None)
    ours = time.perf_counter() - start
    found = len(wallet.txs)
    wallet.close()
    if found != relevant:
        raise SystemExit(f"the rescan found {found} wallet transactions, not {relevant}")
    return {
        "rescan_blocks": blocks,
        "rescan_txs_per_block": per_block,
        "rescan_wallet_txs": found,
        "rescan_s": ours,
        "rescan_floor_s": floor,
        "rescan_ratio_to_floor": floor / ours,
        "rescan_blocks_per_s": blocks / ours,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=500)
    parser.add_argument("--blocks", type=int, default=5_000)
    parser.add_argument("--txs-per-block", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.inputs, args.blocks = 20, 60
    result: dict[str, Any] = {"benchmark": "wallet"}
    with tempfile.TemporaryDirectory(prefix="peercash-bench-wallet-") as tmp:
        folder = Path(tmp)
        _log(f"sign: {args.inputs} P2WPKH inputs")
        result.update(bench_sign(folder, args.inputs))
        _log(f"rescan: {args.blocks} blocks")
        result.update(bench_rescan(folder, args.blocks, args.txs_per_block))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
