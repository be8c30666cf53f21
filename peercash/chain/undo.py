"""Undo data: the coins a block spent, so that it can be disconnected in a reorganisation.

Format: compact count of non-coinbase transactions; for each, a compact count of its inputs and,
per input, compact ``height * 2 + coinbase`` followed by the spent ``TxOut``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from peercash.consensus.contextual import SpentCoin
from peercash.consensus.errors import DecodeError
from peercash.consensus.primitives import TxOut
from peercash.consensus.serialize import Reader, compact_size

_U64_MASK = 0xFFFFFFFFFFFFFFFF
_CODE16_COIN = struct.Struct("<BHQB")
# 0xFD, a 16-bit code (heights 127 to 32767), the amount and a one-byte script length: the
# common case, packed in one call instead of four encoders.


def encode_block_undo(spent: Sequence[Sequence[SpentCoin]]) -> bytes:
    parts = [compact_size(len(spent))]
    append = parts.append
    pack_common = _CODE16_COIN.pack
    for tx_coins in spent:
        append(compact_size(len(tx_coins)))
        for coin in tx_coins:
            code = coin.height * 2 + coin.coinbase
            txout = coin.txout
            script = txout.script_pubkey
            if 0xFD <= code <= 0xFFFF and len(script) < 0xFD:
                append(pack_common(0xFD, code, txout.value & _U64_MASK, len(script)))
                append(script)
            else:
                append(compact_size(code))
                append(txout.serialize())
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
