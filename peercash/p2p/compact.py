"""BIP152 compact blocks, the data side: short transaction ids, a ``cmpctblock`` built from a
block, and a block rebuilt from a ``cmpctblock``, the pool and a ``blocktxn``.

Layer 2 (p2p). Imports consensus and :mod:`peercash.p2p.messages` only (and ``siphashc``, a C
SipHash, when installed); it sees no peer, no chain and no mempool object: the caller passes the
pool's transactions in as ``(wtxid, tx)`` pairs. The sync/relay code (the only caller) decides
when to send ``sendcmpct``, which peers are high bandwidth, when to ask for ``getblocktxn`` and
when to fall back to a full block.

What a receiver does, in Core's terms (src/blockencodings.cpp): :meth:`PartiallyDownloadedBlock.init`
is ``InitData``, :meth:`PartiallyDownloadedBlock.fill` is ``FillBlock``. Short ids are version 2
(segwit): SipHash-2-4 of the *wtxid*, keyed by the first two little-endian 64-bit words of
``SHA256(header || nonce)``, cut to 48 bits.

Error contract: Core's ``READ_STATUS_INVALID`` (the peer sent something no honest peer sends) is
:class:`InvalidCompactBlock`; ``READ_STATUS_FAILED`` (we could not rebuild the block: a short-id
collision, or a rebuilt block that does not match its header) is :class:`ReconstructionFailed`,
after which the caller asks for the full block. Both are :class:`CompactBlockError`. Building from
out-of-range arguments raises ``ValueError``/``TypeError`` (a programming error). Malformed
payloads never get here: :mod:`messages` refuses them with ``DecodeError`` subclasses, including
the cases Core's ``InitData`` calls invalid (no transactions, a prefilled index past the end,
indexes over 16 bits).

Concurrency contract: no I/O, no clock, no shared state. A :class:`PartiallyDownloadedBlock`
belongs to one in-flight block of one peer and to the one thread (the event loop) that uses it.
The nonce of a compact block we send is the caller's to draw (Core draws a random one per block).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from hashlib import sha256
from itertools import islice
from typing import Final

from peercash.consensus.contextual import check_witness_malleation
from peercash.consensus.errors import RuleError
from peercash.consensus.merkle import block_merkle_root
from peercash.consensus.primitives import Block, Header, Tx

from .messages import (
    MAX_COMPACT_TX_INDEX,
    BlockTxn,
    CmpctBlock,
    GetBlockTxn,
    PrefilledTx,
)

__all__ = [
    "DEFAULT_BLOCK_RECONSTRUCTION_EXTRA_TXN",
    "MAX_BLOCKTXN_DEPTH",
    "MAX_CMPCTBLOCKS_INFLIGHT_PER_BLOCK",
    "MAX_CMPCTBLOCK_DEPTH",
    "MAX_HIGH_BANDWIDTH_PEERS",
    "SHORT_ID_MASK",
    "SIPHASH_BACKEND",
    "CompactBlockError",
    "ExtraTransactions",
    "HeaderAndShortIDs",
    "InvalidCompactBlock",
    "PartiallyDownloadedBlock",
    "ReconstructionFailed",
    "block_transactions",
    "is_block_mutated",
    "short_id_key",
    "short_ids_of",
    "siphash24",
    "siphash24_many_python",
    "siphash24_python",
]

SHORT_ID_MASK: Final = (1 << 48) - 1
"""Short ids are the low 6 bytes of the SipHash (BIP152, ``SHORTTXIDS_LENGTH = 6``)."""

# Core's limits around compact blocks (src/net_processing.cpp and .h), for the caller's rules.
MAX_CMPCTBLOCK_DEPTH: Final = 5
"""Blocks deeper than this below the tip are answered with a full block, not a ``cmpctblock``
(``static const int MAX_CMPCTBLOCK_DEPTH = 5;``)."""
MAX_BLOCKTXN_DEPTH: Final = 10
"""``getblocktxn`` for blocks deeper than this is answered with the full block
(``static const int MAX_BLOCKTXN_DEPTH = 10;``)."""
MAX_CMPCTBLOCKS_INFLIGHT_PER_BLOCK: Final = 3
"""Peers one block may be rebuilt from at a time (``MAX_CMPCTBLOCKS_INFLIGHT_PER_BLOCK = 3``)."""
MAX_HIGH_BANDWIDTH_PEERS: Final = 3
"""Peers asked to announce blocks as ``cmpctblock`` (BIP152 high bandwidth; Core's
``MaybeSetPeerAsAnnouncingHeaderAndIDs`` keeps three)."""
DEFAULT_BLOCK_RECONSTRUCTION_EXTRA_TXN: Final = 100
"""Transactions kept outside the pool for rebuilding blocks (``-blockreconstructionextratxn``,
``DEFAULT_BLOCK_RECONSTRUCTION_EXTRA_TXN = 100``): see :class:`ExtraTransactions`."""

_M64 = (1 << 64) - 1
_WORD = struct.Struct("<Q")
_KEY = struct.Struct("<QQ")


# -- SipHash-2-4 --------------------------------------------------------------------------------


def siphash24_python(key: bytes, data: bytes) -> int:
    """SipHash-2-4 (Aumasson and Bernstein, 2012) of ``data`` under the 16-byte ``key``, as a
    64-bit integer. ``key`` is ``k0 || k1``, each little-endian, as the paper lays it out.

    Ours, in plain Python: the tested fallback when no C implementation is installed, and the
    reference the C one is checked against. About 20 µs a 32-byte input.
    """
    if len(key) != 16:
        raise ValueError("a SipHash key is 16 bytes")
    k0: int
    k1: int
    k0, k1 = _KEY.unpack(key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(data)
    whole = n - n % 8
    # The last word holds the tail bytes and, in its top byte, the length mod 256.
    last = int.from_bytes(data[whole:], "little") | ((n & 0xFF) << 56)
    words: list[int] = [w for (w,) in _WORD.iter_unpack(data[:whole])]
    words.append(last)
    m = _M64
    for w in words:
        v3 ^= w
        for _ in range(2):  # c = 2 compression rounds
            v0 = (v0 + v1) & m
            v1 = ((v1 << 13) | (v1 >> 51)) & m ^ v0
            v0 = ((v0 << 32) | (v0 >> 32)) & m
            v2 = (v2 + v3) & m
            v3 = ((v3 << 16) | (v3 >> 48)) & m ^ v2
            v0 = (v0 + v3) & m
            v3 = ((v3 << 21) | (v3 >> 43)) & m ^ v0
            v2 = (v2 + v1) & m
            v1 = ((v1 << 17) | (v1 >> 47)) & m ^ v2
            v2 = ((v2 << 32) | (v2 >> 32)) & m
        v0 ^= w
    v2 ^= 0xFF
    for _ in range(4):  # d = 4 finalization rounds
        v0 = (v0 + v1) & m
        v1 = ((v1 << 13) | (v1 >> 51)) & m ^ v0
        v0 = ((v0 << 32) | (v0 >> 32)) & m
        v2 = (v2 + v3) & m
        v3 = ((v3 << 16) | (v3 >> 48)) & m ^ v2
        v0 = (v0 + v3) & m
        v3 = ((v3 << 21) | (v3 >> 43)) & m ^ v0
        v2 = (v2 + v1) & m
        v1 = ((v1 << 17) | (v1 >> 47)) & m ^ v2
        v2 = ((v2 << 32) | (v2 >> 32)) & m
    return v0 ^ v1 ^ v2 ^ v3


_ZERO8 = bytes(8)
_LANE_VALUE = struct.Struct("<Q8x")


def siphash24_many_python(key: bytes, datas: Sequence[bytes]) -> list[int]:
    """SipHash-2-4 of many 32-byte inputs at once, in plain Python: each value in its own
    128-bit lane of one big integer (64 bits of value, 64 spare that catch the carries and the
    bits rotated out, cleared by a mask after every step), so each step of the algorithm is one
    big-integer operation for all inputs. Some twenty times faster than calling
    :func:`siphash24_python` per input (5,000 wtxids in about 4 ms here); the same results,
    which the tests check. Raises ``ValueError`` unless every input is 32 bytes."""
    if len(key) != 16:
        raise ValueError("a SipHash key is 16 bytes")
    n = len(datas)
    if n == 0:
        return []
    joined = b"".join(datas)
    if len(joined) != 32 * n or any(len(d) != 32 for d in datas):
        raise ValueError("every input must be 32 bytes")
    k0: int
    k1: int
    k0, k1 = _KEY.unpack(key)
    m = int.from_bytes((b"\xff" * 8 + _ZERO8) * n, "little")

    def every_lane(value: int) -> int:
        return int.from_bytes((_WORD.pack(value) + _ZERO8) * n, "little")

    # Word j of every input, spread into the lanes: byte b of word j goes to byte b of a lane.
    words = []
    lanes = bytearray(16 * n)
    for j in range(4):
        for b in range(8):
            lanes[b::16] = joined[8 * j + b :: 32]
        words.append(int.from_bytes(lanes, "little"))
    words.append(every_lane(32 << 56))  # the length block of a 32-byte input
    v0 = every_lane(k0 ^ 0x736F6D6570736575)
    v1 = every_lane(k1 ^ 0x646F72616E646F6D)
    v2 = every_lane(k0 ^ 0x6C7967656E657261)
    v3 = every_lane(k1 ^ 0x7465646279746573)
    for w in (*words, None):
        if w is None:  # finalization
            v2 ^= every_lane(0xFF)
            rounds = 4
        else:
            v3 ^= w
            rounds = 2
        for _ in range(rounds):
            v0 = (v0 + v1) & m
            v1 = ((v1 << 13) | (v1 >> 51)) & m ^ v0
            v0 = ((v0 << 32) | (v0 >> 32)) & m
            v2 = (v2 + v3) & m
            v3 = ((v3 << 16) | (v3 >> 48)) & m ^ v2
            v0 = (v0 + v3) & m
            v3 = ((v3 << 21) | (v3 >> 43)) & m ^ v0
            v2 = (v2 + v1) & m
            v1 = ((v1 << 17) | (v1 >> 47)) & m ^ v2
            v2 = ((v2 << 32) | (v2 >> 32)) & m
        if w is not None:
            v0 ^= w
    out = (v0 ^ v1 ^ v2 ^ v3).to_bytes(16 * n, "little")
    return [v for (v,) in _LANE_VALUE.iter_unpack(out)]


def _load_c_siphash() -> Callable[[bytes, bytes], int] | None:
    """``siphashc`` (WeblateOrg, ISC licence, a C extension) computes the same function some
    hundred times faster; a pool of 50,000 transactions is scanned per compact block, so it
    matters. Used only when installed and when it agrees with ours on a known input."""
    try:
        import siphashc
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    c_siphash: Callable[[bytes, bytes], int] = siphashc.siphash
    probe_key = bytes(range(16))
    probe = bytes(range(32))
    if c_siphash(probe_key, probe) != siphash24_python(probe_key, probe):  # pragma: no cover
        return None
    return c_siphash


_C_SIPHASH = _load_c_siphash()

SIPHASH_BACKEND: Final = "siphashc" if _C_SIPHASH is not None else "python"
"""Which implementation :func:`siphash24` uses."""

siphash24: Callable[[bytes, bytes], int] = (
    _C_SIPHASH if _C_SIPHASH is not None else siphash24_python
)
"""SipHash-2-4 of ``data`` under a 16-byte ``key`` (``siphash24(key, data)``), 64-bit result:
the C implementation when installed, else :func:`siphash24_python`."""

_SCAN_CHUNK = 1024
"""Candidates hashed together while scanning the pool (one batch for the pure-Python path)."""


def short_ids_of(key: bytes, wtxids: Sequence[bytes]) -> list[int]:
    """The short ids of ``wtxids`` under ``key``: per input with the C SipHash, in batches of
    lanes (:func:`siphash24_many_python`) when only ours is there."""
    hash_ = siphash24
    mask = SHORT_ID_MASK
    if hash_ is siphash24_python and len(wtxids) > 8:
        out: list[int] = []
        for start in range(0, len(wtxids), 4096):
            out.extend(siphash24_many_python(key, wtxids[start : start + 4096]))
        return [h & mask for h in out]
    return [hash_(key, w) & mask for w in wtxids]


# -- short ids ----------------------------------------------------------------------------------


def short_id_key(header: Header, nonce: int) -> bytes:
    """The 16-byte SipHash key of a compact block: the first two little-endian 64-bit words of
    the single SHA-256 of the serialized header followed by the nonce (little-endian uint64).
    Those 16 bytes are exactly ``k0 || k1``, as SipHash takes its key."""
    return sha256(header.serialize() + _WORD.pack(nonce)).digest()[:16]


class HeaderAndShortIDs:
    """A ``cmpctblock`` message together with its short-id key (Core's
    ``CBlockHeaderAndShortTxIDs``): what we send for a block, and what we receive.

    ``message`` is the :class:`~peercash.p2p.messages.CmpctBlock`; the key is derived once, so
    :meth:`short_id` costs one SipHash.
    """

    __slots__ = ("key", "message")

    def __init__(self, message: CmpctBlock, *, _key: bytes | None = None) -> None:
        if not isinstance(message, CmpctBlock):
            raise TypeError("message must be a CmpctBlock")
        self.message: Final = message
        self.key: Final = _key if _key is not None else short_id_key(message.header, message.nonce)

    @classmethod
    def from_block(
        cls, block: Block, nonce: int, prefill: Iterable[int] = (0,)
    ) -> HeaderAndShortIDs:
        """The compact block of ``block`` under ``nonce``: the transactions at the ``prefill``
        indexes (by default the coinbase only, as Core sends) whole, every other one as the short
        id of its wtxid, in block order. Raises ``ValueError`` for an empty block, a prefill
        index out of range or repeated, or a block of more than 65,535 transactions."""
        if not isinstance(nonce, int) or not 0 <= nonce <= _M64:
            raise ValueError(f"nonce out of range [0, 2**64 - 1]: {nonce!r}")
        txs = block.txs
        if not txs:
            raise ValueError("a block without transactions has no compact form")
        indexes = tuple(prefill)
        wanted = sorted(set(indexes))
        if len(wanted) != len(indexes):
            raise ValueError("prefill indexes repeat")
        if wanted and not 0 <= wanted[0] <= wanted[-1] < len(txs):
            raise ValueError(f"prefill index out of range for {len(txs)} transactions")
        if len(txs) > MAX_COMPACT_TX_INDEX:
            raise ValueError(f"{len(txs)} transactions, more than a compact block can index")
        key = short_id_key(block.header, nonce)
        prefilled_at = set(wanted)
        short_ids = tuple(
            short_ids_of(key, [tx.wtxid for i, tx in enumerate(txs) if i not in prefilled_at])
        )
        prefilled = tuple(PrefilledTx(i, txs[i]) for i in wanted)
        return cls(CmpctBlock(block.header, nonce, short_ids, prefilled), _key=key)

    @property
    def header(self) -> Header:
        return self.message.header

    @property
    def block_hash(self) -> bytes:
        return self.message.header.hash

    @property
    def tx_count(self) -> int:
        """Transactions in the block (Core's ``BlockTxCount``)."""
        return len(self.message.short_ids) + len(self.message.prefilled)

    def short_id(self, wtxid: bytes) -> int:
        """The 48-bit short id of a transaction by its wtxid (Core's ``GetShortID``)."""
        return siphash24(self.key, wtxid) & SHORT_ID_MASK


# -- errors -------------------------------------------------------------------------------------


class CompactBlockError(Exception):
    """A compact block that could not be turned into a block; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidCompactBlock(CompactBlockError):
    """Core's ``READ_STATUS_INVALID``: data no honest peer sends (a null header or prefilled
    transaction, a ``blocktxn`` with the wrong number of transactions). Core punishes the peer."""


class ReconstructionFailed(CompactBlockError):
    """Core's ``READ_STATUS_FAILED``: the block could not be rebuilt — two transactions of the
    block share a short id, or the rebuilt block does not match its header (most likely a pool
    transaction whose short id collides with the block's). Ask for the full block instead."""


# -- mutation -----------------------------------------------------------------------------------


def is_block_mutated(block: Block, check_witness_root: bool) -> bool:
    """Core's ``IsBlockMutated``: the transactions are not the ones the header commits to.

    The merkle root differs or the transaction list is mutated (CVE-2012-2459); without a
    coinbase first, any transaction whose witness-stripped form is 64 bytes (it could pose as an
    inner merkle node); with ``check_witness_root`` (segwit active), the witnesses do not match
    the coinbase's commitment, or there is witness data without a commitment (Core's
    ``CheckWitnessMalleation``).
    """
    root, mutated = block_merkle_root(block)
    if mutated or root != block.header.merkle_root:
        return True
    txs = block.txs
    if not txs or not txs[0].is_coinbase():
        return any(len(tx.serialize_legacy()) == 64 for tx in txs)
    try:
        check_witness_malleation(block, check_witness_root)
    except RuleError:
        return True
    return False


# -- the extra transactions ---------------------------------------------------------------------


class ExtraTransactions:
    """Transactions that are not in the pool but may be in the next block: orphans, replaced and
    rejected ones (Core's ``vExtraTxnForCompact``, filled by ``AddToCompactExtraTransactions``).

    A ring of ``capacity`` slots: each :meth:`add` overwrites the oldest once full; a capacity of
    0 keeps nothing. Iterating gives ``(wtxid, tx)`` pairs in slot order, as Core scans them; pass
    it as ``extra`` to :meth:`PartiallyDownloadedBlock.init`. Which transactions to add is the
    caller's call (Core skips those whose memory use is 100,000 bytes or more).
    """

    __slots__ = ("_next", "_slots", "capacity")

    def __init__(self, capacity: int = DEFAULT_BLOCK_RECONSTRUCTION_EXTRA_TXN) -> None:
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be a non-negative int: {capacity!r}")
        self.capacity: Final = capacity
        self._slots: list[tuple[bytes, Tx]] = []
        self._next = 0

    def add(self, tx: Tx) -> None:
        if self.capacity == 0:
            return
        entry = (tx.wtxid, tx)
        if len(self._slots) < self.capacity:
            self._slots.append(entry)
        else:
            self._slots[self._next] = entry
        self._next = (self._next + 1) % self.capacity

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[tuple[bytes, Tx]]:
        return iter(list(self._slots))


# -- the receiving side -------------------------------------------------------------------------

_EMPTY, _FROM_POOL, _FROM_EXTRA, _COLLIDED = 0, 1, 2, 3


class PartiallyDownloadedBlock:
    """A block being rebuilt from a compact block (Core's ``PartiallyDownloadedBlock``).

    :meth:`init` places the prefilled transactions and looks every short id up among the
    candidates (the pool, then the extra transactions: recent orphans, replaced and rejected
    ones); :attr:`missing` is then what to ask for in ``getblocktxn`` (:meth:`request`), and
    :meth:`fill` puts the answer in and returns the block. After :meth:`fill` (whatever its
    outcome) or a failed :meth:`init` the object is empty and may be initialised anew.

    Counters for the log line Core prints and for the share of blocks rebuilt without a round
    trip: ``prefilled_count``, ``mempool_count`` and ``extra_count`` (how many slots the pool and
    the extra transactions filled; Core's ``mempool_count`` includes the extra ones, ours not).
    """

    __slots__ = (
        "_header",
        "_source",
        "_txs",
        "_wtxids",
        "extra_count",
        "mempool_count",
        "prefilled_count",
    )

    def __init__(self) -> None:
        self._header: Header | None = None
        self._txs: list[Tx | None] = []
        self._wtxids: list[bytes | None] = []
        self._source = bytearray()
        self.prefilled_count = 0
        self.mempool_count = 0
        self.extra_count = 0

    def _reset(self) -> None:
        self._header = None
        self._txs = []
        self._wtxids = []
        self._source = bytearray()
        self.prefilled_count = self.mempool_count = self.extra_count = 0

    @property
    def header(self) -> Header | None:
        """The header being rebuilt, ``None`` when empty."""
        return self._header

    @property
    def block_hash(self) -> bytes | None:
        return None if self._header is None else self._header.hash

    def init(
        self,
        cmpct: CmpctBlock | HeaderAndShortIDs,
        candidates: Iterable[tuple[bytes, Tx]],
        extra: Iterable[tuple[bytes, Tx]] = (),
    ) -> tuple[int, ...]:
        """Start rebuilding ``cmpct``; returns the indexes still missing (ascending).

        ``candidates`` are the pool's ``(wtxid, tx)`` pairs, ``extra`` Core's extra transactions
        for compact blocks (``vExtraTxnForCompact``); both are taken at their word (the wtxid is
        not recomputed). A short id matched by two candidates with different wtxids stays missing
        (asking costs less than a failed rebuild), and so does any later match of that slot. The
        scan stops once every short id is matched, as Core's does.

        Raises :class:`InvalidCompactBlock` for a null header (``bits`` of 0), a null prefilled
        transaction (no inputs and no outputs) or when already holding a block;
        :class:`ReconstructionFailed` when two short ids of the block are equal. (Core also
        fails when more than 12 short ids fall into one bucket of its hash table, a guard for
        its ``std::unordered_map``; a Python dict keyed by 48-bit ints has no such weakness.)
        """
        if self._header is not None:
            raise InvalidCompactBlock("already rebuilding a block")
        ids = cmpct if isinstance(cmpct, HeaderAndShortIDs) else HeaderAndShortIDs(cmpct)
        msg = ids.message
        if msg.header.bits == 0:
            raise InvalidCompactBlock("null header")
        short_ids = msg.short_ids
        count = len(short_ids) + len(msg.prefilled)
        if count == 0:  # pragma: no cover - CmpctBlock refuses it; kept as Core checks it
            raise InvalidCompactBlock("no transactions")
        txs: list[Tx | None] = [None] * count
        for p in msg.prefilled:  # indexes are in place and in range: CmpctBlock checked them
            if not p.tx.inputs and not p.tx.outputs:
                raise InvalidCompactBlock(f"null prefilled transaction at index {p.index}")
            txs[p.index] = p.tx

        # short id -> the block index it stands for: the free slots, in order
        position: dict[int, int] = {}
        slot = 0
        for sid in short_ids:
            while txs[slot] is not None:
                slot += 1
            position[sid] = slot
            slot += 1
        if len(position) != len(short_ids):
            raise ReconstructionFailed("two transactions of the block share a short id")

        wtxids: list[bytes | None] = [None] * count
        source = bytearray(count)
        found = {_FROM_POOL: 0, _FROM_EXTRA: 0}
        wanted = len(short_ids)
        key = ids.key
        lookup = position.get
        matched = 0
        for origin, pairs in ((_FROM_POOL, candidates), (_FROM_EXTRA, extra)):
            remaining = iter(pairs)
            while matched < wanted:
                chunk = list(islice(remaining, _SCAN_CHUNK))
                if not chunk:
                    break
                sids = short_ids_of(key, [wtxid for wtxid, _ in chunk])
                for (wtxid, tx), sid in zip(chunk, sids):
                    index = lookup(sid)
                    if index is None:
                        continue
                    state = source[index]
                    if state == _EMPTY:
                        txs[index] = tx
                        wtxids[index] = wtxid
                        source[index] = origin
                        found[origin] += 1
                        matched += 1
                        if matched == wanted:
                            break
                    elif state != _COLLIDED and wtxids[index] != wtxid:
                        # Two different transactions answer one short id: ask for it instead.
                        found[state] -= 1
                        matched -= 1
                        txs[index] = None
                        wtxids[index] = None
                        source[index] = _COLLIDED

        self._header = msg.header
        self._txs = txs
        self._wtxids = wtxids
        self._source = source
        self.prefilled_count = len(msg.prefilled)
        self.mempool_count = found[_FROM_POOL]
        self.extra_count = found[_FROM_EXTRA]
        return self.missing

    def is_tx_available(self, index: int) -> bool:
        """Whether the transaction at ``index`` is known (Core's ``IsTxAvailable``)."""
        if self._header is None:
            return False
        return self._txs[index] is not None

    @property
    def missing(self) -> tuple[int, ...]:
        """The indexes still to be fetched, ascending (empty when nothing is being rebuilt)."""
        return tuple(i for i, tx in enumerate(self._txs) if tx is None)

    def request(self) -> GetBlockTxn:
        """The ``getblocktxn`` asking for :attr:`missing`."""
        if self._header is None:
            raise ValueError("no block being rebuilt")
        return GetBlockTxn(self._header.hash, self.missing)

    def fill(self, blocktxn: BlockTxn | Sequence[Tx], *, segwit_active: bool = True) -> Block:
        """The block, with the missing transactions taken in order from ``blocktxn`` (a
        ``blocktxn`` message or the transactions themselves; empty when nothing was missing).

        Whatever happens next, the object is empty afterwards (a block is filled once). Raises
        :class:`InvalidCompactBlock` when nothing is being rebuilt or the number of transactions
        is not the number missing; :class:`ReconstructionFailed` when the rebuilt block does not
        match its header (:func:`is_block_mutated`, the witness commitment checked when
        ``segwit_active``) — possibly a short-id collision, so fetch the full block. Everything
        else (proof of work, scripts, ...) is the caller's normal block validation. A
        ``blocktxn`` for another block raises ``ValueError`` and leaves the object as it was.
        """
        header = self._header
        if header is None:
            raise InvalidCompactBlock("no compact block to fill")
        if isinstance(blocktxn, BlockTxn):
            if blocktxn.block_hash != header.hash:
                raise ValueError("blocktxn is for another block")
            given: Sequence[Tx] = blocktxn.txs
        else:
            given = tuple(blocktxn)
            for tx in given:
                if not isinstance(tx, Tx):
                    raise TypeError("transactions must be Tx")
        txs = self._txs
        self._reset()
        n_missing = sum(1 for tx in txs if tx is None)
        if len(given) != n_missing:
            raise InvalidCompactBlock(f"{len(given)} transactions sent for {n_missing} missing")
        supply = iter(given)
        block = Block(header, [tx if tx is not None else next(supply) for tx in txs])
        if is_block_mutated(block, segwit_active):
            raise ReconstructionFailed(
                "rebuilt block does not match its header (possible short id collision)"
            )
        return block


# -- the sending side of getblocktxn ------------------------------------------------------------


def block_transactions(block: Block, request: GetBlockTxn) -> BlockTxn:
    """The ``blocktxn`` answering ``request`` from ``block`` (Core's ``SendBlockTransactions``).

    Raises :class:`InvalidCompactBlock` for an index past the block's last transaction (Core:
    "getblocktxn with out-of-bounds tx indices", the peer is punished) and ``ValueError`` when
    the request names another block. How deep a block may be served from is the caller's rule
    (Core: ``MAX_BLOCKTXN_DEPTH``, else it sends the full block).
    """
    if request.block_hash != block.hash:
        raise ValueError("getblocktxn is for another block")
    txs = block.txs
    if request.indexes and request.indexes[-1] >= len(txs):
        raise InvalidCompactBlock("getblocktxn with out-of-bounds tx indices")
    return BlockTxn(request.block_hash, tuple(txs[i] for i in request.indexes))
