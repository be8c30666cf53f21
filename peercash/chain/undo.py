"""Undo data: the coins a block spent, so that it can be disconnected in a reorganisation.

Format: compact count of non-coinbase transactions; for each, a compact count of its inputs and,
per input, compact ``height * 2 + coinbase`` followed by the spent ``TxOut``.
"""

from __future__ import annotations

from collections.abc import Sequence

from peercash.consensus.contextual import SpentCoin
from peercash.consensus.errors import DecodeError
from peercash.consensus.primitives import TxOut
from peercash.consensus.serialize import Reader, compact_size


def encode_block_undo(spent: Sequence[Sequence[SpentCoin]]) -> bytes:
    parts = [compact_size(len(spent))]
    for tx_coins in spent:
        parts.append(compact_size(len(tx_coins)))
        for coin in tx_coins:
            parts.append(compact_size(coin.height * 2 + coin.coinbase))
            parts.append(coin.txout.serialize())
    return b"".join(parts)


def decode_block_undo(raw: bytes) -> list[list[SpentCoin]]:
    r = Reader(raw)
    out: list[list[SpentCoin]] = []
    for _ in range(r.count(1)):
        coins: list[SpentCoin] = []
        for _ in range(r.count(10)):
            code = r.compact_size(1 << 40)
            coins.append(SpentCoin(TxOut.from_reader(r), code >> 1, bool(code & 1)))
        out.append(coins)
    r.expect_end()
    return out


__all__ = ["DecodeError", "decode_block_undo", "encode_block_undo"]
