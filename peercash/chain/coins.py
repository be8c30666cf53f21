"""The UTXO set: an LMDB database behind a write-back cache.

``CoinsDB`` is the small interface the rest of the chain uses (get, batch write with the best
block, ordered iteration), so that another engine can be dropped in and benchmarked. The cache
keeps changed coins in memory until ``flush``, which writes every change and the new tip in one
LMDB transaction: after a crash the set is exactly as of some flushed block, never in between.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from pathlib import Path

import lmdb

from peercash.consensus.contextual import SpentCoin
from peercash.consensus.primitives import OutPoint, TxOut

from .errors import ChainError
from .lmdbutil import guard, lmdb_failure, open_env

Coin = SpentCoin
"""An unspent output with the height of its block and whether it is a coinbase output."""

_COIN_HEADER = struct.Struct("<Iq")
_BEST_BLOCK = b"best_block"
_VOUT = struct.Struct(">I")  # big-endian, so keys sort by (txid, vout) as Core's LevelDB does


_SMALL_VOUTS = tuple(_VOUT.pack(i) for i in range(256))
# Nearly every output index is small: a table lookup is cheaper than packing each time.


def coin_key(txid: bytes, vout: int) -> bytes:
    if 0 <= vout < 256:
        return txid + _SMALL_VOUTS[vout]
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


def _damaged(path: Path, e: lmdb.Error) -> ChainError:
    return lmdb_failure(e, f"the UTXO database is damaged: {e}", path, chainstate_only=True)


def _guard(path: Path) -> contextlib.AbstractContextManager[None]:
    return guard("UTXO database", path, chainstate_only=True)


class CoinsDB:
    """The on-disk UTXO set (``chainstate/``), with the hash of the block it reflects."""

    def __init__(self, folder: Path, map_size: int = 1 << 36) -> None:
        self.path = folder
        self.env = open_env(
            folder, "UTXO database", map_size=map_size, max_dbs=4, chainstate_only=True
        )
        with _guard(folder):
            self._coins = self.env.open_db(b"coins")
            self._meta = self.env.open_db(b"meta")
        # One long-lived read transaction (and a cursor in it) for lookups, renewed after every
        # write (we are the only writer), instead of a transaction per lookup.
        self._reader: lmdb.Transaction | None = None
        self._cursor: lmdb.Cursor | None = None

    def _begin_read(self) -> lmdb.Transaction:
        try:
            reader = self._reader = self.env.begin(db=self._coins, buffers=False)
        except lmdb.Error as e:
            raise _damaged(self.path, e) from None
        return reader

    def get(self, key: bytes) -> Coin | None:
        # Called for every coin the cache misses (and every new output under BIP30): the error
        # translation is spelled out, as a ``with guard(...)`` costs more than the lookup.
        reader = self._reader or self._begin_read()
        try:
            raw = reader.get(key)
        except lmdb.Error as e:
            raise _damaged(self.path, e) from None
        return None if raw is None else decode_coin(bytes(raw))

    def has_txid(self, txid: bytes) -> bool:
        """Whether any coin of transaction ``txid`` is in the database: one B-tree search."""
        try:
            cursor = self._cursor
            if cursor is None:
                cursor = self._cursor = (self._reader or self._begin_read()).cursor()
            return bool(cursor.set_range(txid)) and cursor.key()[:32] == txid
        except lmdb.Error as e:
            raise _damaged(self.path, e) from None

    def _end_read(self) -> None:
        self._cursor = None
        if self._reader is not None:
            self._reader.abort()
            self._reader = None

    def best_block(self) -> bytes | None:
        with _guard(self.path), self.env.begin(db=self._meta) as txn:
            value: bytes | None = txn.get(_BEST_BLOCK)
            return value

    def write_batch(self, changes: dict[bytes, Coin | None], best_block: bytes) -> None:
        """Apply puts (coin) and deletes (None) and move the best block, atomically."""
        self._end_read()
        # The puts go through one C loop (putmulti) rather than a call each.
        puts = [(key, encode_coin(coin)) for key, coin in changes.items() if coin is not None]
        deletes = [key for key, coin in changes.items() if coin is None]
        with _guard(self.path), self.env.begin(write=True) as txn:
            coins = self._coins
            delete = txn.delete
            for key in deletes:
                delete(key, db=coins)
            if puts:
                txn.cursor(db=coins).putmulti(puts)
            txn.put(_BEST_BLOCK, best_block, db=self._meta)

    def iterate(self) -> Iterator[tuple[bytes, Coin]]:
        """Every coin in (txid, vout) order."""
        with _guard(self.path), self.env.begin(db=self._coins) as txn:
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
_SPENT: tuple[Coin | None, int] = (None, _DIRTY)


class CoinsCache:
    """A write-back cache over ``CoinsDB``.

    An entry is a ``(coin, flags)`` pair, the coin None for a spent one; an entry is replaced,
    never changed (a pair costs a quarter of a slotted object to make). DIRTY means the database
    must learn about this entry at flush; FRESH means the database does not have the coin, so
    spending it just forgets it.
    """

    def __init__(self, db: CoinsDB) -> None:
        self.db = db
        self.entries: dict[bytes, tuple[Coin | None, int]] = {}
        self.approx_bytes = 0

    def get(self, key: bytes) -> Coin | None:
        entry = self.entries.get(key)
        if entry is not None:
            return entry[0]
        coin = self.db.get(key)
        if coin is not None:
            self.entries[key] = (coin, 0)
            self.approx_bytes += _ENTRY_OVERHEAD + len(coin.txout.script_pubkey)
        return coin

    def have(self, key: bytes) -> bool:
        return self.get(key) is not None

    def any_unspent(self, txid: bytes, n_outputs: int) -> bool:
        """Whether any of outputs ``0 .. n_outputs - 1`` of ``txid`` is unspent (BIP30).

        Equals ``any(have(coin_key(txid, i)) ...)``, but asks the database once per
        transaction rather than once per output: the outputs of a new transaction are normally
        nowhere, and the cache cannot say so without a lookup. Misses are not cached.
        """
        entries = self.entries
        unknown = []
        for i in range(n_outputs):
            key = coin_key(txid, i)
            entry = entries.get(key)
            if entry is None:
                unknown.append(key)
            elif entry[0] is not None:
                return True
        if not unknown:
            return False
        db = self.db
        if not db.has_txid(txid):
            return False
        return any(self.get(key) is not None for key in unknown)

    def add(self, key: bytes, coin: Coin, possible_overwrite: bool = False) -> None:
        entries = self.entries
        entry = entries.get(key)
        if entry is None:
            entries[key] = (coin, _DIRTY if possible_overwrite else _DIRTY | _FRESH)
            self.approx_bytes += _ENTRY_OVERHEAD + len(coin.txout.script_pubkey)
        else:
            # Re-adding over a spent (not yet flushed) entry: the database may still hold the
            # old coin, so this must be written, and is fresh only if the spent one was.
            old, flags = entry
            entries[key] = (coin, _DIRTY | (flags & _FRESH if old is None else 0))

    def spend(self, key: bytes) -> Coin | None:
        """Remove a coin; returns it (None if it does not exist)."""
        entries = self.entries
        entry = entries.get(key)
        if entry is None:
            coin = self.db.get(key)
            if coin is None:
                return None
            entries[key] = _SPENT
            return coin
        coin, flags = entry
        if coin is None:
            return None
        if flags & _FRESH:
            del entries[key]
            self.approx_bytes -= _ENTRY_OVERHEAD + len(coin.txout.script_pubkey)
        else:
            entries[key] = _SPENT
        return coin

    def dirty_count(self) -> int:
        return sum(1 for _, flags in self.entries.values() if flags)

    def flush(self, best_block: bytes) -> None:
        """Write every change and ``best_block`` in one transaction; empty the cache."""
        changes = {key: coin for key, (coin, flags) in self.entries.items() if flags}
        self.db.write_batch(changes, best_block)
        self.entries.clear()
        self.approx_bytes = 0
