"""The UTXO set: an LMDB database behind a write-back cache.

``CoinsDB`` is the small interface the rest of the chain uses (get, batch write with the best
block, ordered iteration), so that another engine can be dropped in and benchmarked. The cache
keeps changed coins in memory until ``flush``, which writes every change and the new tip in one
LMDB transaction: after a crash the set is exactly as of some flushed block, never in between.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import lmdb

from peercash.consensus.contextual import SpentCoin
from peercash.consensus.primitives import OutPoint, TxOut

from .lmdbutil import guard, open_env

Coin = SpentCoin
"""An unspent output with the height of its block and whether it is a coinbase output."""

_COIN_HEADER = struct.Struct("<Iq")
_BEST_BLOCK = b"best_block"
_VOUT = struct.Struct(">I")  # big-endian, so keys sort by (txid, vout) as Core's LevelDB does


def coin_key(txid: bytes, vout: int) -> bytes:
    return txid + _VOUT.pack(vout)


def key_outpoint(key: bytes) -> OutPoint:
    return OutPoint(key[:32], _VOUT.unpack_from(key, 32)[0])


def encode_coin(coin: Coin) -> bytes:
    return _COIN_HEADER.pack(coin.height * 2 + coin.coinbase, coin.txout.value) + (
        coin.txout.script_pubkey
    )


def decode_coin(raw: bytes) -> Coin:
    code, value = _COIN_HEADER.unpack_from(raw)
    return SpentCoin(TxOut(value, raw[12:]), code >> 1, bool(code & 1))


class CoinsDB:
    """The on-disk UTXO set (``chainstate/``), with the hash of the block it reflects."""

    def __init__(self, folder: Path, map_size: int = 1 << 36) -> None:
        self.path = folder
        self.env = open_env(folder, "UTXO database", map_size=map_size, max_dbs=4)
        with guard("UTXO database", folder):
            self._coins = self.env.open_db(b"coins")
            self._meta = self.env.open_db(b"meta")
        # One long-lived read transaction for lookups, renewed after every write (we are the
        # only writer), instead of a transaction per lookup.
        self._reader: lmdb.Transaction | None = None

    def get(self, key: bytes) -> Coin | None:
        reader = self._reader
        if reader is None:
            reader = self._reader = self.env.begin(db=self._coins, buffers=False)
        with guard("UTXO database", self.path):
            raw = reader.get(key)
        return None if raw is None else decode_coin(bytes(raw))

    def _end_read(self) -> None:
        if self._reader is not None:
            self._reader.abort()
            self._reader = None

    def best_block(self) -> bytes | None:
        with guard("UTXO database", self.path), self.env.begin(db=self._meta) as txn:
            value: bytes | None = txn.get(_BEST_BLOCK)
            return value

    def write_batch(self, changes: dict[bytes, Coin | None], best_block: bytes) -> None:
        """Apply puts (coin) and deletes (None) and move the best block, atomically."""
        self._end_read()
        with guard("UTXO database", self.path), self.env.begin(write=True) as txn:
            coins = self._coins
            for key, coin in changes.items():
                if coin is None:
                    txn.delete(key, db=coins)
                else:
                    txn.put(key, encode_coin(coin), db=coins)
            txn.put(_BEST_BLOCK, best_block, db=self._meta)

    def iterate(self) -> Iterator[tuple[bytes, Coin]]:
        """Every coin in (txid, vout) order."""
        with guard("UTXO database", self.path), self.env.begin(db=self._coins) as txn:
            for key, raw in txn.cursor():
                yield bytes(key), decode_coin(bytes(raw))

    def count(self) -> int:
        with self.env.begin(db=self._coins) as txn:
            n: int = txn.stat(self._coins)["entries"]
            return n

    def wipe(self) -> None:
        self._end_read()
        with self.env.begin(write=True) as txn:
            txn.drop(self._coins, delete=False)
            txn.drop(self._meta, delete=False)

    def close(self) -> None:
        self._end_read()
        self.env.close()


_DIRTY = 1
_FRESH = 2
_ENTRY_OVERHEAD = 220  # bytes per cached coin beyond its script, measured roughly in CPython


class _Entry:
    __slots__ = ("coin", "flags")

    def __init__(self, coin: Coin | None, flags: int) -> None:
        self.coin = coin
        self.flags = flags


class CoinsCache:
    """A write-back cache over ``CoinsDB``.

    An entry holds a coin, or None for a spent one. DIRTY means the database must learn about
    this entry at flush; FRESH means the database does not have the coin, so spending it just
    forgets it.
    """

    def __init__(self, db: CoinsDB) -> None:
        self.db = db
        self.entries: dict[bytes, _Entry] = {}
        self.approx_bytes = 0

    def get(self, key: bytes) -> Coin | None:
        entry = self.entries.get(key)
        if entry is not None:
            return entry.coin
        coin = self.db.get(key)
        if coin is not None:
            self.entries[key] = _Entry(coin, 0)
            self.approx_bytes += _ENTRY_OVERHEAD + len(coin.txout.script_pubkey)
        return coin

    def have(self, key: bytes) -> bool:
        return self.get(key) is not None

    def add(self, key: bytes, coin: Coin, possible_overwrite: bool = False) -> None:
        entry = self.entries.get(key)
        if entry is None:
            flags = _DIRTY if possible_overwrite else _DIRTY | _FRESH
            self.entries[key] = _Entry(coin, flags)
            self.approx_bytes += _ENTRY_OVERHEAD + len(coin.txout.script_pubkey)
        else:
            # Re-adding over a spent (not yet flushed) entry: the database may still hold the
            # old coin, so this must be written, and is fresh only if the spent one was.
            fresh = entry.flags & _FRESH if entry.coin is None else 0
            entry.coin = coin
            entry.flags = _DIRTY | fresh

    def spend(self, key: bytes) -> Coin | None:
        """Remove a coin; returns it (None if it does not exist)."""
        entry = self.entries.get(key)
        if entry is None:
            coin = self.db.get(key)
            if coin is None:
                return None
            self.entries[key] = _Entry(None, _DIRTY)
            return coin
        coin = entry.coin
        if coin is None:
            return None
        if entry.flags & _FRESH:
            del self.entries[key]
            self.approx_bytes -= _ENTRY_OVERHEAD + len(coin.txout.script_pubkey)
        else:
            entry.coin = None
            entry.flags = _DIRTY
        return coin

    def dirty_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.flags)

    def flush(self, best_block: bytes) -> None:
        """Write every change and ``best_block`` in one transaction; empty the cache."""
        changes = {key: e.coin for key, e in self.entries.items() if e.flags}
        self.db.write_batch(changes, best_block)
        self.entries.clear()
        self.approx_bytes = 0
