"""The UTXO cache, undo records and block files against plain models of what they must do.

The cache keeps ``(coin, flags)`` pairs, asks the database once per transaction for BIP30
(``any_unspent``) and writes a flush through ``putmulti``; undo records pack the common coin in
one call; undo records are written in one piece. Each is checked here against the obvious
definition.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peercash.chain.blockstore import BlockStore
from peercash.chain.coins import Coin, CoinsCache, CoinsDB, coin_key, decode_coin, encode_coin
from peercash.chain.errors import CorruptionError
from peercash.chain.undo import decode_block_undo, encode_block_undo
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.hashing import hash256
from peercash.consensus.primitives import TxOut
from peercash.consensus.serialize import compact_size, pack_u32

TXIDS = [bytes([i]) * 32 for i in range(1, 5)]


def coin(value: int, height: int = 7, coinbase: bool = False) -> Coin:
    return SpentCoin(TxOut(value, bytes([value % 256]) * (value % 5)), height, coinbase)


def test_coin_key_is_txid_and_big_endian_vout() -> None:
    for vout in (0, 1, 255, 256, 65535, 0xFFFFFFFF):
        assert coin_key(TXIDS[0], vout) == TXIDS[0] + vout.to_bytes(4, "big")
    with pytest.raises(Exception):  # noqa: B017 - struct.error, as before the table
        coin_key(TXIDS[0], -1)


def test_spent_coin_is_a_frozen_value() -> None:
    a, b = coin(5, 3, True), coin(5, 3, True)
    assert a == b and hash(a) == hash(b) and a != coin(5, 4, True)
    assert (a.txout.value, a.height, a.coinbase) == (5, 3, True)
    assert decode_coin(encode_coin(a)) == a
    with pytest.raises(AttributeError):
        a.height = 1  # type: ignore[misc]


# -- the cache against a model -------------------------------------------------------------------

_ops = st.lists(
    st.tuples(
        st.sampled_from(["get", "add", "add_overwrite", "spend", "flush", "any"]),
        st.sampled_from(TXIDS),
        st.integers(0, 3),
        st.integers(1, 50),
    ),
    max_size=60,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_ops)
def test_cache_behaves_like_a_dict_over_the_database(
    tmp_path: Path, ops: list[tuple[str, bytes, int, int]]
) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh database per example
    db = CoinsDB(folder)
    try:
        cache = CoinsCache(db)
        view: dict[bytes, Coin] = {}  # what the cache must show: flushed or not
        for op, txid, vout, value in ops:
            key = coin_key(txid, vout)
            if op == "get":
                assert cache.get(key) == view.get(key)
            elif op == "add":
                if key in view:
                    continue  # a plain add is only for outputs that do not exist
                cache.add(key, coin(value))
                view[key] = coin(value)
            elif op == "add_overwrite":
                cache.add(key, coin(value), possible_overwrite=True)
                view[key] = coin(value)
            elif op == "spend":
                assert cache.spend(key) == view.pop(key, None)
            elif op == "flush":
                cache.flush(b"\x00" * 32)
                assert dict(db.iterate()) == view
                assert cache.dirty_count() == 0
            else:
                expected = any(coin_key(txid, i) in view for i in range(vout + 1))
                assert cache.any_unspent(txid, vout + 1) == expected
        cache.flush(b"\x01" * 32)
        assert dict(db.iterate()) == view
        assert db.best_block() == b"\x01" * 32
    finally:
        db.close()


def test_any_unspent_reads_the_database_once_per_transaction(tmp_path: Path) -> None:
    db = CoinsDB(tmp_path / "chainstate")
    try:
        db.write_batch({coin_key(TXIDS[1], 2): coin(9)}, b"\x00" * 32)
        calls: list[bytes] = []
        real = db.get

        def counting_get(key: bytes) -> Coin | None:
            calls.append(key)
            return real(key)

        db.get = counting_get  # type: ignore[method-assign]
        cache = CoinsCache(db)
        assert not cache.any_unspent(TXIDS[0], 3)  # absent txid: no per-output lookups
        assert not cache.any_unspent(TXIDS[2], 3)
        assert calls == []
        assert cache.any_unspent(TXIDS[1], 3)  # present: the outputs are looked up
        assert not cache.any_unspent(TXIDS[1], 2)  # output 2 not among the first two
        cache.spend(coin_key(TXIDS[1], 2))
        assert not cache.any_unspent(TXIDS[1], 3)  # spent in the cache, still in the database
        cache.add(coin_key(TXIDS[3], 0), coin(1))
        assert cache.any_unspent(TXIDS[3], 1)  # only in the cache
    finally:
        db.close()


def test_has_txid_is_a_prefix_search(tmp_path: Path) -> None:
    db = CoinsDB(tmp_path / "chainstate")
    try:
        assert not db.has_txid(TXIDS[0])
        db.write_batch({coin_key(TXIDS[1], 7): coin(3)}, b"\x00" * 32)
        assert db.has_txid(TXIDS[1])
        assert not db.has_txid(TXIDS[0]) and not db.has_txid(TXIDS[2])
        assert not db.has_txid(TXIDS[1][:31] + b"\x03")  # a neighbour key
        db.write_batch({coin_key(TXIDS[1], 7): None}, b"\x00" * 32)
        assert not db.has_txid(TXIDS[1])  # the cursor is renewed after a write
    finally:
        db.close()


def test_write_batch_puts_and_deletes(tmp_path: Path) -> None:
    db = CoinsDB(tmp_path / "chainstate")
    try:
        first = {coin_key(t, i): coin(i + 1, i, bool(i & 1)) for t in TXIDS for i in range(3)}
        db.write_batch(dict(first), b"\x01" * 32)
        assert dict(db.iterate()) == first
        change: dict[bytes, Coin | None] = {k: None for k in list(first)[::2]}
        change[coin_key(TXIDS[0], 9)] = coin(99)
        change[coin_key(TXIDS[2], 1)] = coin(42)  # overwrite
        db.write_batch(change, b"\x02" * 32)
        expected = {k: c for k, c in {**first, **change}.items() if c is not None}
        assert dict(db.iterate()) == expected
        assert db.count() == len(expected) and db.best_block() == b"\x02" * 32
        assert db.get(coin_key(TXIDS[2], 1)) == coin(42)
        assert db.get(coin_key(TXIDS[0], 0)) is None
    finally:
        db.close()


# -- undo records --------------------------------------------------------------------------------


def _plain_undo(spent: list[list[SpentCoin]]) -> bytes:
    out = compact_size(len(spent))
    for tx_coins in spent:
        out += compact_size(len(tx_coins))
        for c in tx_coins:
            out += compact_size(c.height * 2 + c.coinbase) + c.txout.serialize()
    return out


_undo_coins = st.builds(
    SpentCoin,
    st.builds(
        TxOut,
        st.one_of(st.integers(0, 2**63 - 1), st.integers(-(2**63), -1)),
        st.one_of(st.binary(max_size=30), st.binary(min_size=250, max_size=300)),
    ),
    st.one_of(st.integers(0, 200), st.integers(0, 40_000), st.integers(0, 2**31), st.just(0x7FFF)),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_undo_coins, max_size=4), max_size=4))
def test_undo_encoding_equals_plain_encoding(spent: list[list[SpentCoin]]) -> None:
    raw = encode_block_undo(spent)
    assert raw == _plain_undo(spent)
    assert decode_block_undo(raw) == spent


# -- block files ---------------------------------------------------------------------------------


def test_undo_records_round_trip_and_detect_damage(tmp_path: Path) -> None:
    magic = b"\xfa\xbf\xb5\xda"
    store = BlockStore(tmp_path / "blocks", magic, max_file_size=200)
    block_hash = b"\x42" * 32
    raws = [bytes([i]) * (10 * i + 1) for i in range(8)]
    positions = [store.write_undo(block_hash, raw) for raw in raws]
    assert len({p.file for p in positions}) > 1  # rolled over to new files
    for raw, pos in zip(raws, positions, strict=True):
        assert store.read_undo(pos, block_hash) == raw
        with pytest.raises(CorruptionError):
            store.read_undo(pos, b"\x43" * 32)
    store.close()
    # The record layout on disk: magic, length, payload, hash256(block hash + payload).
    data = (tmp_path / "blocks" / "rev00000.dat").read_bytes()
    checksum = hash256(block_hash + raws[0])
    assert data.startswith(magic + pack_u32(len(raws[0]) + 32) + raws[0] + checksum)


def test_block_records_round_trip(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "blocks", b"\x0b\x11\x09\x07", max_file_size=100)
    payloads = [bytes([i]) * (15 * i + 1) for i in range(10)]
    positions = [store.write_block(p) for p in payloads]
    assert [store.read_block(p) for p in positions] == payloads
    store.close()
    reopened = BlockStore(tmp_path / "blocks", b"\x0b\x11\x09\x07", max_file_size=100)
    assert [reopened.read_block(p) for p in positions] == payloads
    reopened.close()
