"""Loading the real blocks and transactions that ship with spent outputs (bcoin's fixtures).

Used by the tests and the benchmarks, which need every input of a real block together with the
outputs it spends and the script flags the block was mined under.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from peercash.consensus.primitives import Block, Tx, TxOut
from peercash.consensus.script.flags import VerifyFlags

DATA_DIR = Path(__file__).resolve().parents[2] / "tests" / "data"

# The flags bcoin's own tests verified these fixtures with (tests/data/SOURCES.md).
_TESTNET_FLAGS = (
    VerifyFlags.P2SH
    | VerifyFlags.DERSIG
    | VerifyFlags.NULLDUMMY
    | VerifyFlags.CHECKLOCKTIMEVERIFY
    | VerifyFlags.CHECKSEQUENCEVERIFY
    | VerifyFlags.WITNESS
)
BLOCKS_WITH_PREVOUTS: dict[str, VerifyFlags] = {
    "block300025": VerifyFlags.P2SH,
    "block928816": _TESTNET_FLAGS,
    "block928828": _TESTNET_FLAGS,
    "block928831": _TESTNET_FLAGS,
    "block928848": _TESTNET_FLAGS,
    "block928849": _TESTNET_FLAGS,
    "block928927": _TESTNET_FLAGS,
    "block1087400": _TESTNET_FLAGS,
}
TXS_WITH_PREVOUTS: dict[str, VerifyFlags] = {
    "tx1": VerifyFlags.P2SH,
    "tx2": VerifyFlags.P2SH,
    "tx3": VerifyFlags.P2SH,
    "tx4": VerifyFlags.P2SH | VerifyFlags.DERSIG,
    "tx6": VerifyFlags.NONE,
    "tx10": VerifyFlags.P2SH,
}


@dataclass(frozen=True)
class SpendingTx:
    """A transaction with the outputs its inputs spend, in input order."""

    tx: Tx
    spent: tuple[TxOut, ...]


def _load_prevouts(path: Path) -> list[TxOut]:
    rows = json.loads(path.read_text())
    return [TxOut(int(r["value"]), bytes.fromhex(r["script_pubkey"])) for r in rows]


def load_block(name: str, data_dir: Path = DATA_DIR) -> tuple[Block, list[SpendingTx]]:
    """A bcoin fixture block and, for each non-coinbase tx, the outputs it spends."""
    folder = data_dir / "bcoin" / "blocks"
    block = Block.parse((folder / f"{name}.raw").read_bytes())
    prevouts = _load_prevouts(folder / f"{name}.prevouts.json")
    spends: list[SpendingTx] = []
    pos = 0
    for tx in block.txs[1:]:
        n = len(tx.inputs)
        spends.append(SpendingTx(tx, tuple(prevouts[pos : pos + n])))
        pos += n
    if pos != len(prevouts):
        raise ValueError(f"{name}: {len(prevouts)} prevouts for {pos} inputs")
    return block, spends


def load_tx(name: str, data_dir: Path = DATA_DIR) -> SpendingTx:
    folder = data_dir / "bcoin" / "txs"
    tx = Tx.parse((folder / f"{name}.raw").read_bytes())
    return SpendingTx(tx, tuple(_load_prevouts(folder / f"{name}.prevouts.json")))
