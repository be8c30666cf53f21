"""Commitments to a UTXO set as Bitcoin Core's ``gettxoutsetinfo`` reports them.

Layer 0 (consensus, pure): callable from anywhere (``chain`` feeds it coins, ``rpc`` and the
``chaininfo`` command print its result). No I/O. ``UtxoSetHasher`` is a mutable accumulator: one
owner at a time. ``coin_record`` and ``UtxoSetHasher.add`` raise ``ValueError`` for a height that
does not fit Core's 31 bits; ``add`` also raises it for coins out of order (see below).

Both hashes are over the same per-coin record, Core's ``TxOutSer``::

    outpoint (txid wire order, vout uint32 LE) | uint32 LE (height * 2 + coinbase) | TxOut

* ``hash_serialized_3``: double SHA-256 of the concatenated records in the order Core's coins
  database iterates, which is ascending by (txid wire bytes, vout). It therefore depends on order,
  and cannot be updated when a coin is spent: it is recomputed from the whole set.
* ``muhash``: the ``MuHash3072`` set hash of the records, independent of order and updatable in
  place (insert a created coin's record, remove a spent one's), which is what a node keeps running.

Both digests are printed as Core prints a ``uint256``: the bytes reversed, in hex.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .muhash import MuHash3072
from .primitives import OutPoint, TxOut
from .serialize import pack_u32

_MAX_HEIGHT = 0x7FFFFFFF


def coin_record(outpoint: OutPoint, height: int, coinbase: bool, txout: TxOut) -> bytes:
    """Core's ``TxOutSer``: what both UTXO set hashes commit to for one coin."""
    if not 0 <= height <= _MAX_HEIGHT:
        raise ValueError(f"coin height {height} outside 0..{_MAX_HEIGHT}")
    return outpoint.serialize() + pack_u32(height << 1 | bool(coinbase)) + txout.serialize()


def bogo_size(txout: TxOut) -> int:
    """Core's ``GetBogoSize``: a database-independent size of one coin, in bytes."""
    # txid 32 + vout 4 + height/coinbase 4 + amount 8 + script length 2 + script
    return 50 + len(txout.script_pubkey)


class UtxoSetHasher:
    """Accumulates ``gettxoutsetinfo``'s figures over a UTXO set, one coin at a time.

    For ``hash_serialized_3`` the caller must feed the coins sorted ascending by
    (txid in wire byte order, vout) -- the order of Core's LevelDB chainstate -- and ``add``
    raises ``ValueError`` when a coin does not come strictly after the one before. The MuHash
    does not depend on order; pass ``hash_serialized=False`` to feed coins in any order (the
    result then has no ``hash_serialized_3`` and no ``transactions``), or ``muhash=False`` to skip
    the MuHash, which costs far more per coin than the SHA-256.
    """

    __slots__ = (
        "_last",
        "_muhash",
        "_sha",
        "bogosize",
        "total_amount",
        "transactions",
        "txouts",
    )

    def __init__(self, *, hash_serialized: bool = True, muhash: bool = True) -> None:
        self._sha: hashlib._Hash | None = hashlib.sha256() if hash_serialized else None
        self._muhash: MuHash3072 | None = MuHash3072() if muhash else None
        self._last: tuple[bytes, int] | None = None
        self.txouts = 0  # unspent outputs added
        self.transactions = 0  # distinct txids among them (counted only in ordered mode)
        self.total_amount = 0  # their total value, satoshis
        self.bogosize = 0  # sum of bogo_size over them

    def add(self, outpoint: OutPoint, height: int, coinbase: bool, txout: TxOut) -> None:
        record = coin_record(outpoint, height, coinbase, txout)
        sha = self._sha
        if sha is not None:
            key = (outpoint.txid, outpoint.index)
            last = self._last
            if last is not None and key <= last:
                raise ValueError(
                    f"coin {outpoint!r} is not after the previous one: hash_serialized_3 needs "
                    "coins sorted by (txid wire bytes, vout)"
                )
            if last is None or last[0] != key[0]:
                self.transactions += 1
            self._last = key
            sha.update(record)
        if self._muhash is not None:
            self._muhash.insert(record)
        self.txouts += 1
        self.total_amount += txout.value
        self.bogosize += 50 + len(txout.script_pubkey)

    def hash_serialized_3(self) -> bytes | None:
        """The double SHA-256 of the records so far (wire order), or None when not computed."""
        if self._sha is None:
            return None
        return hashlib.sha256(self._sha.copy().digest()).digest()

    def muhash(self) -> bytes | None:
        """The MuHash3072 digest of the records so far (wire order), or None when not computed."""
        if self._muhash is None:
            return None
        return self._muhash.finalize()

    def result(self) -> dict[str, Any]:
        """The figures as ``gettxoutsetinfo`` names them; digests in display (reversed) hex and
        ``total_amount`` in satoshis. The hasher can go on accumulating afterwards."""
        out: dict[str, Any] = {"txouts": self.txouts, "bogosize": self.bogosize}
        serialized = self.hash_serialized_3()
        if serialized is not None:
            out["transactions"] = self.transactions
            out["hash_serialized_3"] = serialized[::-1].hex()
        muhash = self.muhash()
        if muhash is not None:
            out["muhash"] = muhash[::-1].hex()
        out["total_amount"] = self.total_amount
        return out
