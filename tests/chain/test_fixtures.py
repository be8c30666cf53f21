"""Chain fixtures from other implementations.

* btcd's reorganisation scenario (``btcd/reorg/``): 0-1-2-3-4 and the side chain 3A-4A-5A, in
  several arrival orders, through ``ChainState``; tips, the UTXO set and the undo data.
* btcd's older generation of it (``reorgtest.hex``).
* bcoin's block undo files: our ``connect_block`` on a UTXO set seeded with the block's prevouts
  must spend exactly the coins bcoin recorded, in the same order, byte for byte.
"""

from __future__ import annotations

import bz2
import dataclasses
import json
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from peercash.chain.chainstate import ChainState
from peercash.chain.coins import CoinsCache, CoinsDB, coin_key, encode_coin
from peercash.chain.index import BlockIndexEntry
from peercash.chain.undo import decode_block_undo, encode_block_undo
from peercash.chain.validation import BlockValidator
from peercash.consensus.checks import check_block
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.errors import RuleError
from peercash.consensus.params import MAIN, TESTNET, NetworkParams
from peercash.consensus.primitives import Block, Header, TxOut

DATA = Path(__file__).resolve().parents[1] / "data"
REORG = DATA / "btcd" / "reorg"
BCOIN = DATA / "bcoin" / "blocks"

# btcd's tests set coinbase maturity to 1: blocks 2, 4 and 5A spend the coinbase just before.
REORG_PARAMS = dataclasses.replace(MAIN, coinbase_maturity=1)


def future_clock() -> float:
    return 2_000_000_000.0  # the blocks are from January 2009; any later clock will do


def read_records(path: Path) -> list[Block]:
    """A btcd ``.dat.bz2``: bzip2 of ``[magic][uint32 len][block]`` records."""
    data = bz2.decompress(path.read_bytes())
    blocks, pos = [], 0
    while pos < len(data):
        magic, size = struct.unpack_from("<4sI", data, pos)
        assert magic == MAIN.magic
        blocks.append(Block.parse(data[pos + 8 : pos + 8 + size]))
        pos += 8 + size
    return blocks


def load_reorg_blocks() -> dict[str, Block]:
    main = read_records(REORG / "blk_0_to_4.dat.bz2")
    blocks = {str(i): b for i, b in enumerate(main)}
    for name in ("3A", "4A", "5A"):
        (blocks[name],) = read_records(REORG / f"blk_{name}.dat.bz2")
    return blocks


BLOCKS = load_reorg_blocks()
PARENT = {"1": "0", "2": "1", "3": "2", "4": "3", "3A": "2", "4A": "3A", "5A": "4A"}
# Hash prefixes as SOURCES.md prints them.
PREFIX = {
    "1": "00000000ebe5ec3e", "2": "00000000952ccb1b", "3": "00000000bc358930",
    "4": "000000002f264d65", "3A": "00000000474284d2", "4A": "00000000551dc04c",
    "5A": "00000000195f8518",
}  # fmt: skip
MAIN_BRANCH = ["0", "1", "2", "3", "4"]
SIDE_BRANCH = ["0", "1", "2", "3A", "4A", "5A"]


def model_utxo(names: list[str]) -> dict[bytes, bytes]:
    """The UTXO set after connecting these blocks, by a plain model, as coin_key -> encoded coin."""
    coins: dict[bytes, SpentCoin] = {}
    for height, name in enumerate(names):
        if height == 0:
            continue  # the genesis coinbase is not spendable
        for tx_index, tx in enumerate(BLOCKS[name].txs):
            if tx_index:
                for txin in tx.inputs:
                    del coins[coin_key(txin.prevout.txid, txin.prevout.index)]
            for i, out in enumerate(tx.outputs):
                coins[coin_key(tx.txid, i)] = SpentCoin(out, height, tx_index == 0)
    return {k: encode_coin(c) for k, c in coins.items()}


def utxo_on_disk(cs: ChainState) -> dict[bytes, bytes]:
    cs.flush()
    return {k: encode_coin(c) for k, c in cs.coins_db.iterate()}


def read_undo(cs: ChainState, name: str) -> list[list[SpentCoin]]:
    e = cs.index.get(BLOCKS[name].hash)
    assert e is not None and e.undo_pos is not None
    return decode_block_undo(cs.blocks.read_undo(e.undo_pos, e.hash))


def test_reorg_fixture_shape() -> None:
    for name, prefix in PREFIX.items():
        block = BLOCKS[name]
        assert block.hash_hex.startswith(prefix), name
        assert block.header.prev_hash == BLOCKS[PARENT[name]].hash
        check_block(block, MAIN.pow_limit)
    assert BLOCKS["0"].hash == MAIN.genesis_hash
    spent_by = {
        n: {(i.prevout.txid, i.prevout.index) for tx in BLOCKS[n].txs[1:] for i in tx.inputs}
        for n in PARENT
    }
    # Blocks 3 and 3A spend the same outputs, all created by block 2.
    assert spent_by["3"] == spent_by["3A"]
    assert {txid for txid, _ in spent_by["3"]} <= {tx.txid for tx in BLOCKS["2"].txs}


ORDERS = {
    # arrival order -> expected tip after each block
    "main-first": (["1", "2", "3", "4", "3A", "4A", "5A"], ["1", "2", "3", "4", "4", "4", "5A"]),
    "side-first": (
        ["1", "2", "3A", "4A", "5A", "3", "4"],
        ["1", "2", "3A", "4A", "5A", "5A", "5A"],
    ),
    "5A-before-its-parents": (
        ["1", "2", "3", "4", "5A", "3A", "4A"],
        ["1", "2", "3", "4", "4", "4", "5A"],
    ),
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_btcd_reorg_scenario(order, tmp_path):
    arrival, tips = ORDERS[order]
    cs = ChainState(REORG_PARAMS, tmp_path, assume_valid=None, clock=future_clock)
    log: list[tuple[str, str]] = []
    back: list[bytes] = []
    names = {b.hash: n for n, b in BLOCKS.items()}
    cs.events.block_connected.append(lambda b, e: log.append(("+", names[b.hash])))
    cs.events.block_disconnected.append(lambda b, e: log.append(("-", names[b.hash])))
    cs.events.transactions_disconnected.append(lambda txs: back.extend(tx.txid for tx in txs))
    try:
        for name, tip in zip(arrival, tips, strict=True):
            e = cs.accept_block(BLOCKS[name])
            if order == "5A-before-its-parents" and name == "5A":
                assert e is None  # parent unknown: kept as an orphan
            assert cs.last_error is None
            assert cs.tip.hash == BLOCKS[tip].hash, f"after {name}"
            assert cs.height == int(tip[0])
        assert (
            cs.tip.header.hash_hex
            == "00000000195f85184e77c18914bd0febd11278d950f5e4731a38f71ed79f044e"
        )
        assert [cs.entry_at(h).hash for h in range(6)] == [BLOCKS[n].hash for n in SIDE_BRANCH]

        if order == "side-first":
            assert [x for x in log if x[0] == "-"] == []  # 3 and 4 never led: no reorg
        else:
            # Only 5A gives the side chain more work: 4 and 3 go, 3A, 4A and 5A come.
            assert log[-5:] == [("-", "4"), ("-", "3"), ("+", "3A"), ("+", "4A"), ("+", "5A")]
            assert back == [tx.txid for n in ("3", "4") for tx in BLOCKS[n].txs[1:]]

        assert utxo_on_disk(cs) == model_utxo(SIDE_BRANCH)
        if order != "side-first":
            # The coins block 3 spent came back when it was disconnected, and 3A spent them: its
            # undo data records the very same coins (outputs, heights and coinbase flags).
            assert read_undo(cs, "3A") == read_undo(cs, "3")
            assert all(c.height == 2 for tx in read_undo(cs, "3A") for c in tx)

            # And back: invalidating 3A returns to 0-4 (3 spends those coins again), reconsidering
            # it returns to 5A.
            cs.invalidate_block(BLOCKS["3A"].hash)
            assert cs.tip.hash == BLOCKS["4"].hash
            assert utxo_on_disk(cs) == model_utxo(MAIN_BRANCH)
            cs.reconsider_block(BLOCKS["3A"].hash)
            assert cs.tip.hash == BLOCKS["5A"].hash
            assert utxo_on_disk(cs) == model_utxo(SIDE_BRANCH)
    finally:
        cs.close()

    # A restart comes back on 5A with the same UTXO set, and so does a reindex.
    with ChainState(REORG_PARAMS, tmp_path, assume_valid=None, clock=future_clock) as cs:
        assert cs.tip.hash == BLOCKS["5A"].hash
        assert utxo_on_disk(cs) == model_utxo(SIDE_BRANCH)
    with ChainState(
        REORG_PARAMS, tmp_path, assume_valid=None, clock=future_clock, reindex=True
    ) as cs:
        assert cs.reindexed_blocks == 8
        assert cs.tip.hash == BLOCKS["5A"].hash
        assert utxo_on_disk(cs) == model_utxo(SIDE_BRANCH)


def test_reorg_needs_coinbase_maturity_one(tmp_path):
    """Under real mainnet rules (maturity 100) block 2's spend of block 1's coinbase is invalid."""
    with ChainState(MAIN, tmp_path, assume_valid=None, clock=future_clock) as cs:
        cs.accept_block(BLOCKS["1"])
        cs.accept_block(BLOCKS["2"])
        assert cs.height == 1
        assert cs.last_error is not None
        assert cs.last_error[1].code == "bad-txns-premature-spend-of-coinbase"


# -- reorgtest.hex: the older generation -------------------------------------------------------


def parse_reorgtest_hex(path: Path) -> dict[str, Block]:
    """Sections ``Block <name>:`` of 4-byte hex groups: magic, length, block."""
    blocks: dict[str, Block] = {}
    name: str | None = None
    groups: list[str] = []

    def finish() -> None:
        if name is None:
            return
        raw = bytes.fromhex("".join(groups))
        magic, size = struct.unpack_from("<4sI", raw)
        assert magic == MAIN.magic and len(raw) == 8 + size, name
        blocks[name] = Block.parse(raw[8:])

    for line in path.read_text().splitlines():
        m = re.fullmatch(r"\s*Block (\w+):\s*", line)
        if m or line.startswith("File path:"):
            finish()
            name, groups = (m.group(1) if m else None), []
        elif name is not None:
            groups += line.split()
    finish()
    return blocks


def test_reorgtest_hex_older_generation(tmp_path):
    old = parse_reorgtest_hex(REORG / "reorgtest.hex")
    assert list(old) == ["0", "1", "2", "3", "4", "3A", "4A", "5A"]
    assert old["0"].hash == MAIN.genesis_hash
    assert old["1"].hash_hex == "000000003757cbe8ae43511b57b8722851b790f1bd6b90ca3ec6114c4079ca13"
    for name, parent in PARENT.items():
        assert old[name].header.prev_hash == old[parent].hash
        assert old[name].hash != BLOCKS[name].hash  # a different generation
        check_block(old[name], MAIN.pow_limit)  # merkle roots and proof of work hold

    with ChainState(REORG_PARAMS, tmp_path, assume_valid=None, clock=future_clock) as cs:
        # Headers first: 4A only ties with 4 (the first seen stays best); 5A has the most work.
        for name in ("1", "2", "3", "4", "3A", "4A"):
            cs.accept_header(old[name].header)
        assert cs.best_header is not None and cs.best_header.hash == old["4"].hash
        cs.accept_header(old["5A"].header)
        assert cs.best_header.hash == old["5A"].hash
        # Full blocks: this generation's block 2 spends an output that no block here creates
        # (btcd no longer reads the file), so it cannot be connected.
        created = {tx.txid for b in old.values() for tx in b.txs}
        (spend,) = old["2"].txs[1].inputs
        assert spend.prevout.txid not in created
        cs.accept_block(old["1"])
        cs.accept_block(old["2"])
        assert cs.height == 1
        assert cs.last_error is not None
        assert cs.last_error[1].code == "bad-txns-inputs-missingorspent"


# -- bcoin's block undo files ---------------------------------------------------------------------

BCOIN_UNDO = [
    info for info in json.loads((BCOIN / "index.json").read_text()) if "undo_file" in info
]


class _Heights:
    """Stands in for the active chain's ``chain`` list for the validator's ancestor look-ups:
    the parent at its height, the network's BIP34 block at its height, blank entries elsewhere."""

    def __init__(self, prev: BlockIndexEntry, params: NetworkParams) -> None:
        self.prev = prev
        self.params = params

    def __getitem__(self, height: int) -> BlockIndexEntry:
        if height == self.prev.height:
            return self.prev
        e = BlockIndexEntry(Header(1, bytes(32), bytes(32), 0, 0x1D00FFFF, 0), height, None)
        if height == self.params.bip34_height and self.params.bip34_hash is not None:
            e.hash = self.params.bip34_hash
        return e


def connect_with_prevouts(
    info: dict, cache: CoinsCache, prevouts: list[dict]
) -> tuple[Block, list[list[SpentCoin]]]:
    """Seed ``cache`` with the coins the block spends and run the real
    ``BlockValidator.connect_block`` on it (scripts included) against a minimal chain stand-in."""
    params = MAIN if info["network"] == "main" else TESTNET
    block = Block.parse((BCOIN / info["file"]).read_bytes())
    height = info["height"]
    for p in prevouts:
        if p["height"] == height:
            continue  # created earlier in the same block
        cache.add(
            coin_key(bytes.fromhex(p["txid"])[::-1], p["vout"]),
            SpentCoin(
                TxOut(p["value"], bytes.fromhex(p["script_pubkey"])),
                p["height"] or 0,
                bool(p["coinbase"]),
            ),
        )
    cache.flush(bytes(32))
    h = block.header
    prev = BlockIndexEntry(Header(1, bytes(32), bytes(32), h.time, h.bits, 0), height - 1, None)
    entry = BlockIndexEntry(h, height, prev)
    stand_in = SimpleNamespace(
        params=params, coins=cache, pool=None, contains=lambda e: True, chain=_Heights(prev, params)
    )
    validator = BlockValidator(stand_in, None, future_clock)
    return block, validator.connect_block(block, entry)


def _prevouts(info: dict) -> list[dict]:
    return json.loads((BCOIN / info["prevouts_file"]).read_text())


@pytest.mark.parametrize("info", BCOIN_UNDO, ids=[i["file"][:-4] for i in BCOIN_UNDO])
def test_undo_matches_bcoin(info, tmp_path):
    prevouts = _prevouts(info)
    db = CoinsDB(tmp_path / "chainstate")
    try:
        cache = CoinsCache(db)
        block, undo = connect_with_prevouts(info, cache, prevouts)

        # One list per non-coinbase transaction, one coin per input, in block order.
        assert len(undo) == len(block.txs) - 1
        assert [len(u) for u in undo] == [len(tx.inputs) for tx in block.txs[1:]]
        spent = [coin for tx_coins in undo for coin in tx_coins]
        assert len(spent) == len(prevouts) == info["non_coinbase_inputs"]
        assert (
            b"".join(c.txout.serialize() for c in spent) == (BCOIN / info["undo_file"]).read_bytes()
        )

        # Heights and coinbase flags: what the UTXO set held (seeded 0/False where bcoin's data
        # cannot say), and this block's height for coins created earlier in the block.
        for coin, p in zip(spent, prevouts, strict=True):
            assert coin.height == (p["height"] or 0)
            assert coin.coinbase is bool(p["coinbase"])
        in_block = sum(1 for p in prevouts if p["height"] == info["height"])
        assert in_block == info["prevouts_created_in_same_block"]

        # Our undo record keeps all of that through encode/decode.
        raw = encode_block_undo(undo)
        assert decode_block_undo(raw) == undo
        assert encode_block_undo(decode_block_undo(raw)) == raw

        # The UTXO set afterwards: every seeded coin spent, the block's outputs there unless
        # spent in the block (OP_RETURN outputs never enter the set).
        cache.flush(block.hash)
        after = dict(db.iterate())
        spent_keys = {
            coin_key(i.prevout.txid, i.prevout.index) for tx in block.txs[1:] for i in tx.inputs
        }
        expected = {
            coin_key(tx.txid, n)
            for tx in block.txs
            for n, out in enumerate(tx.outputs)
            if not out.script_pubkey.startswith(b"\x6a")
        } - spent_keys
        assert set(after) == expected
        assert all(c.height == info["height"] for c in after.values())
        fees = sum(c.txout.value for c in spent) - sum(
            o.value for tx in block.txs[1:] for o in tx.outputs
        )
        assert fees == info["fees"]
    finally:
        db.close()


def test_connect_block_checks_scripts_and_leaves_the_cache_alone(tmp_path):
    """The replay really verifies scripts: one prevout's P2PKH hash changed makes the block fail
    with the script code, and the cache is as before."""
    (info,) = [i for i in BCOIN_UNDO if i["file"] == "block300025.raw"]
    prevouts = _prevouts(info)
    n = next(
        k
        for k, p in enumerate(prevouts)
        if p["height"] is None and re.fullmatch("76a914[0-9a-f]{40}88ac", p["script_pubkey"])
    )
    spk = bytearray.fromhex(prevouts[n]["script_pubkey"])
    spk[5] ^= 0xFF
    prevouts[n] = {**prevouts[n], "script_pubkey": spk.hex()}
    db = CoinsDB(tmp_path / "chainstate")
    try:
        cache = CoinsCache(db)
        with pytest.raises(RuleError) as exc:
            connect_with_prevouts(info, cache, prevouts)
        assert exc.value.code == "mandatory-script-verify-flag-failed"
        before = {k: encode_coin(c) for k, c in db.iterate()}
        assert len(before) == len(prevouts) - info["prevouts_created_in_same_block"]
        # Nothing was applied: every seeded coin is still unspent, nothing new was added, and
        # the cache has nothing to write.
        assert cache.dirty_count() == 0
        for key, raw in before.items():
            coin = cache.get(key)
            assert coin is not None and encode_coin(coin) == raw
        block = Block.parse((BCOIN / info["file"]).read_bytes())
        assert all(cache.get(coin_key(tx.txid, 0)) is None for tx in block.txs)
    finally:
        db.close()
