"""Real chain data through the primitives: parse, re-serialize byte for byte, hashes, weights.

Vectors and their formats are described in ``tests/data/SOURCES.md`` (btcd and bcoin sections).
"""

from __future__ import annotations

import bz2
import functools
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.errors import DecodeError, TrailingBytesError
from peercash.consensus.merkle import (
    block_merkle_root,
    compute_witness_commitment,
    merkle_root,
    partial_merkle_root,
    witness_commitment_index,
    witness_merkle_root,
)
from peercash.consensus.pow import check_proof_of_work
from peercash.consensus.primitives import NULL_HASH, Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.serialize import Reader

DATA = Path(__file__).resolve().parents[1] / "data"
BTCD = DATA / "btcd"
BCOIN = DATA / "bcoin"

MAINNET_MAGIC = 0xD9B4BEF9
POW_LIMIT = 0x00000000FFFF << 208
COIN = 100_000_000


def display(h: bytes) -> str:
    return h[::-1].hex()


@functools.cache
def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


@functools.cache
def parse_block_file(path: Path) -> Block:
    return Block.parse(read_bytes(path))


def records(raw: bytes) -> list[bytes]:
    """Split btcd's ``[magic][len][block]`` record stream."""
    r = Reader(raw)
    out = []
    while r.remaining():
        assert r.u32() == MAINNET_MAGIC
        out.append(r.read(r.u32()))
    return out


def bz2_records(path: Path) -> list[bytes]:
    return records(bz2.decompress(read_bytes(path)))


@functools.cache
def mainnet_0_255() -> tuple[Block, ...]:
    lines = (BTCD / "blocks" / "mainnet-blocks-0-255.hex").read_text().splitlines()
    return tuple(Block.from_hex(line) for line in lines)


def reorgtest_sections() -> dict[str, list[bytes]]:
    """``reorgtest.hex``: per ``File path:`` section, its record stream's blocks."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (BTCD / "reorg" / "reorgtest.hex").read_text().splitlines():
        text = line.strip()
        if text.startswith("File path:"):
            current = sections.setdefault(text.split("/")[-1], [])
        elif text and not text.startswith("Block"):
            current.append(text.replace(" ", ""))
    return {name: records(bytes.fromhex("".join(hexes))) for name, hexes in sections.items()}


def bip34_height(block: Block) -> int:
    script = block.txs[0].inputs[0].script_sig
    n = script[0]
    assert 1 <= n <= 8
    return int.from_bytes(script[1 : 1 + n], "little")


def subsidy(height: int) -> int:
    return (50 * COIN) >> (height // 210_000)


def assert_block_ok(block: Block, raw: bytes) -> None:
    assert block.serialize() == raw
    assert Block.parse(block.serialize()).serialize() == raw
    for tx in block.txs:
        assert Tx.parse(tx.serialize()).serialize() == tx.serialize()
    root, mutated = block_merkle_root(block)
    assert root == block.header.merkle_root
    assert not mutated


# -- the bcoin blocks ----------------------------------------------------------------------------

BCOIN_INDEX: list[dict[str, Any]] = json.loads((BCOIN / "blocks" / "index.json").read_text())
BCOIN_BY_FILE = {entry["file"]: entry for entry in BCOIN_INDEX}


@pytest.mark.parametrize("entry", BCOIN_INDEX, ids=lambda e: e["file"])
def test_bcoin_block(entry: dict[str, Any]) -> None:
    path = BCOIN / "blocks" / entry["file"]
    raw = read_bytes(path)
    block = parse_block_file(path)
    assert_block_ok(block, raw)
    assert block.hash_hex == entry["hash"]
    assert display(block.header.prev_hash) == entry["prev_hash"]
    assert block.header.version == entry["version"]
    assert block.header.time == entry["time"]
    assert block.header.bits == int(entry["bits"], 16)
    assert len(raw) == entry["size"]
    assert block.weight() == entry["weight"]
    assert len(block.txs) == entry["txs"]
    assert sum(tx.has_witness() for tx in block.txs) == entry["witness_txs"]
    assert sum(len(tx.inputs) for tx in block.txs[1:]) == entry["non_coinbase_inputs"]
    assert sum(o.value for o in block.txs[0].outputs) == entry["coinbase_outputs"]
    assert block.txs[0].is_coinbase()
    assert not any(tx.is_coinbase() for tx in block.txs[1:])
    if entry["height_source"] == "BIP34 coinbase":
        assert bip34_height(block) == entry["height"]
    assert check_proof_of_work(block.hash, block.header.bits, POW_LIMIT)


# bcoin's test/block-test.js figures (SOURCES.md), independent of index.json.
BCOIN_PUBLISHED_WEIGHTS = {
    "block928816.raw": 3_568_200,
    "block928828.raw": 2_481_560,
    "block928831.raw": 3_992_382,
    "block928848.raw": 3_992_537,
    "block928849.raw": 3_682_105,
    "block928927.raw": 3_992_391,
    "block1087400.raw": 193_331,
    "block300025.raw": 1_136_924,
}


@pytest.mark.parametrize("name", sorted(BCOIN_PUBLISHED_WEIGHTS))
def test_bcoin_published_weights(name: str) -> None:
    assert parse_block_file(BCOIN / "blocks" / name).weight() == BCOIN_PUBLISHED_WEIGHTS[name]


def test_block_928849_follows_928848() -> None:
    parent = parse_block_file(BCOIN / "blocks" / "block928848.raw")
    child = parse_block_file(BCOIN / "blocks" / "block928849.raw")
    assert child.header.prev_hash == parent.hash


def test_block300025_coinbase_is_subsidy_plus_fees() -> None:
    block = parse_block_file(BCOIN / "blocks" / "block300025.raw")
    assert sum(o.value for o in block.txs[0].outputs) == 25 * COIN + 7_773_345


UNDO_ENTRIES = [e for e in BCOIN_INDEX if "undo_file" in e]


def read_undo(path: Path) -> list[TxOut]:
    r = Reader(read_bytes(path))
    outs = []
    while r.remaining():
        outs.append(TxOut.from_reader(r))
    return outs


@pytest.mark.parametrize("entry", UNDO_ENTRIES, ids=lambda e: e["undo_file"])
def test_block_undo(entry: dict[str, Any]) -> None:
    block = parse_block_file(BCOIN / "blocks" / entry["file"])
    spent = read_undo(BCOIN / "blocks" / entry["undo_file"])
    inputs = [txin for tx in block.txs[1:] for txin in tx.inputs]
    assert len(spent) == len(inputs) == entry["prevouts"]

    height = bip34_height(block)
    assert height == entry["height"]
    fees = sum(o.value for o in spent) - sum(o.value for tx in block.txs[1:] for o in tx.outputs)
    assert fees == sum(o.value for o in block.txs[0].outputs) - subsidy(height)
    assert fees == entry["fees"]

    prevouts = json.loads((BCOIN / "blocks" / entry["prevouts_file"]).read_text())
    assert len(prevouts) == len(inputs)
    for txin, out, p in zip(inputs, spent, prevouts, strict=True):
        assert txin.prevout.txid_hex == p["txid"]
        assert txin.prevout.index == p["vout"]
        assert out.value == p["value"]
        assert out.script_pubkey.hex() == p["script_pubkey"]


# -- bcoin transactions --------------------------------------------------------------------------

BCOIN_TXS = {
    "tx1": ("ff80fe4937e2de16411c3a2bc534d661dc8b4f8aad75e6fbc4b1ec6060d9ef1c", 1, 5, 50_000),
    "tx2": ("7ef7cde4e4a7829ea6feaf377c924b36d0958e2231a31ff268bd33a59ac9e178", 1, 2, 10_000),
    "tx3": ("2c63aa814701cef5dbd4bbaddab3fea9117028f2434dddcdab8339141e9b14d1", 2, 1, 200_000),
    "tx4": ("eddbfbacd61c74e5702e1f5b0e4fa569bffe658bd763f6b27ab0c5fe17acc6e2", 1, 1, 10_000),
    "tx5": ("c532af06b9a81d9171618fb0b30075ddb3a6fca68c9b89536e6e34b0beddcc23", 5, 1980, None),
    "tx6": ("4d932e00d5e20e31211136651f1665309a11908e438bb4c30799154d26812491", 2, 1, 50_000),
    "tx7": ("7f2dc9bcc0b1b0d19a4cb62d0f6474990c12a5b996d2fa2c4be54ca1beb5d339", 1, 2, 10_000),
    "tx8": ("a93fc123a3f2cee3f1bd7f60d498280277032ab20ed190004c346bdc69e65794", 4, 1, None),
    "tx9": ("d748009c88abacfbd8d0dafb5552f0700a16f9a35ff41583988d9f70618c1971", 1, 2, None),
    "tx10": ("5ceec2d8ee90cb4b956870fac6055bead9333570f656ec3014307031de518cec", 3, 1, 10_000),
}


@pytest.mark.parametrize("name", sorted(BCOIN_TXS))
def test_bcoin_tx(name: str) -> None:
    txid, n_in, n_out, fee = BCOIN_TXS[name]
    raw = read_bytes(BCOIN / "txs" / f"{name}.raw")
    tx = Tx.parse(raw)
    assert tx.serialize() == raw
    assert Tx.parse(tx.serialize()) == tx
    assert tx.txid_hex == txid
    assert (len(tx.inputs), len(tx.outputs)) == (n_in, n_out)
    if fee is not None:
        spent = read_undo(BCOIN / "txs" / f"{name}-undo.raw")
        assert len(spent) == n_in
        assert sum(o.value for o in spent) - sum(o.value for o in tx.outputs) == fee


def test_tx5_witness_ids() -> None:
    raw = read_bytes(BCOIN / "txs" / "tx5.raw")
    tx = Tx.parse(raw)
    assert len(raw) == 62_138
    assert tx.has_witness()
    assert tx.txid != tx.wtxid
    assert tx.base_size() < tx.total_size() == len(raw)
    assert tx.weight() == 3 * tx.base_size() + len(raw)
    # Rebuilt from its fields (no cached bytes), it serializes the same.
    rebuilt = Tx(tx.version, tx.inputs, tx.outputs, tx.locktime)
    assert rebuilt.serialize() == raw
    assert rebuilt.txid == tx.txid
    assert rebuilt.wtxid == tx.wtxid


def test_tx10_is_in_block_300025() -> None:
    block = parse_block_file(BCOIN / "blocks" / "block300025.raw")
    tx = Tx.parse(read_bytes(BCOIN / "txs" / "tx10.raw"))
    assert block.txs[397] == tx


def test_tx8_tx9_concatenated() -> None:
    tx8 = read_bytes(BCOIN / "txs" / "tx8.raw")
    tx9 = read_bytes(BCOIN / "txs" / "tx9.raw")
    r = Reader(tx8 + tx9)
    assert Tx.from_reader(r).serialize() == tx8
    assert Tx.from_reader(r).serialize() == tx9
    r.expect_end()
    with pytest.raises(TrailingBytesError):
        Tx.parse(tx8 + tx9)


# -- headers, merkle blocks and compact blocks ---------------------------------------------------


def test_headers1() -> None:
    r = Reader(read_bytes(BCOIN / "blocks" / "headers1.raw"))
    header = Header.from_reader(r)
    assert r.compact_size() == 0
    r.expect_end()
    assert header.hash_hex == BCOIN_BY_FILE["block1.raw"]["hash"]
    assert header == parse_block_file(BCOIN / "blocks" / "block1.raw").header


def read_merkleblock(r: Reader) -> tuple[Header, int, list[bytes], bytes]:
    header = Header.from_reader(r)
    total = r.u32()
    hashes = [r.read(32) for _ in range(r.count(32))]
    flags = r.var_bytes()
    return header, total, hashes, flags


MERKLE300025_MATCHES = [
    "5708f3c63be2baf9d478256cded8787c84f1eb8262c6751993a84cd04cf89373",
    "5ceec2d8ee90cb4b956870fac6055bead9333570f656ec3014307031de518cec",
]


def test_merkle300025() -> None:
    r = Reader(read_bytes(BCOIN / "blocks" / "merkle300025.raw"))
    header, total, hashes, flags = read_merkleblock(r)
    r.expect_end()
    block = parse_block_file(BCOIN / "blocks" / "block300025.raw")
    assert header == block.header
    assert total == 461 == len(block.txs)
    assert len(hashes) == 10
    assert flags == bytes.fromhex("f57a00")
    root, matches = partial_merkle_root(total, hashes, flags)
    assert root == header.merkle_root
    assert [display(txid) for _, txid in matches] == MERKLE300025_MATCHES
    for pos, txid in matches:
        assert block.txs[pos].txid == txid


def test_merkle300025_extended() -> None:
    r = Reader(read_bytes(BCOIN / "blocks" / "merkle300025-extended.raw"))
    header, total, hashes, flags = read_merkleblock(r)
    txs = [Tx.from_reader(r) for _ in range(r.count(10))]
    r.expect_end()
    root, matches = partial_merkle_root(total, hashes, flags)
    assert root == header.merkle_root
    assert [tx.txid for tx in txs] == [txid for _, txid in matches]


@pytest.mark.parametrize(
    ("name", "block_name", "nonce", "n_ids"),
    [
        ("compact426884.raw", "block426884.raw", "ba06f0cb11b496fa", 408),
        ("compact898352.raw", "block898352.raw", "f0e5d38b806d66b2", 9),
    ],
)
def test_compact_blocks(name: str, block_name: str, nonce: str, n_ids: int) -> None:
    r = Reader(read_bytes(BCOIN / "blocks" / name))
    header = Header.from_reader(r)
    assert r.read(8).hex() == nonce
    short_ids = [r.read(6) for _ in range(r.count(6))]
    prefilled = []
    for _ in range(r.count(11)):
        prefilled.append((r.compact_size(), Tx.from_reader(r)))
    r.expect_end()
    block = parse_block_file(BCOIN / "blocks" / block_name)
    assert header == block.header
    assert len(short_ids) == n_ids == len(block.txs) - 1
    assert prefilled == [(0, block.txs[0])]


# -- btcd blocks -----------------------------------------------------------------------------------

BTCD_BLK = {
    "0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2": (
        574200, 3315, 1341, 5054, 8150, 1_245_250, 3_993_106, 1_300_076_961,
    ),
    "00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab": (
        540107, 230, 104, 7032, 472, 2_259_447, 3_993_333, 1_254_491_058,
    ),
}  # fmt: skip


@pytest.mark.parametrize("block_hash", sorted(BTCD_BLK))
def test_btcd_blk(block_hash: str) -> None:
    height, n_tx, n_wit, n_in, n_out, size, weight, cb_value = BTCD_BLK[block_hash]
    path = BTCD / "blocks" / f"block-{block_hash}.blk"
    raw = read_bytes(path)
    block = parse_block_file(path)
    assert_block_ok(block, raw)
    assert block.hash_hex == block_hash
    assert bip34_height(block) == height
    assert len(block.txs) == n_tx
    assert sum(tx.has_witness() for tx in block.txs) == n_wit
    assert sum(len(tx.inputs) for tx in block.txs[1:]) == n_in
    assert sum(len(tx.outputs) for tx in block.txs) == n_out
    assert len(raw) == size
    assert block.weight() == weight
    assert sum(o.value for o in block.txs[0].outputs) == cb_value
    assert check_proof_of_work(block.hash, block.header.bits, POW_LIMIT)


def test_mainnet_blocks_0_255() -> None:
    lines = (BTCD / "blocks" / "mainnet-blocks-0-255.hex").read_text().splitlines()
    blocks = mainnet_0_255()
    assert len(blocks) == 256
    assert blocks[0].hash_hex == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    assert blocks[255].hash_hex == (
        "00000000d0a75c861fabf9ff7b92022f60e4afeed9331fe5aa073d8e4706fe3c"
    )
    assert blocks[0].header.prev_hash == b"\x00" * 32
    for line, block in zip(lines, blocks, strict=True):
        assert_block_ok(block, bytes.fromhex(line))
        assert check_proof_of_work(block.hash, block.header.bits, POW_LIMIT)
    for parent, child in itertools.pairwise(blocks):
        assert child.header.prev_hash == parent.hash
    assert sum(len(b.txs) for b in blocks) == 263
    with_spends = [h for h, b in enumerate(blocks) if len(b.txs) > 1]
    assert with_spends == [170, 181, 182, 183, 187, 221, 248]
    assert all(len(blocks[h].txs) == 2 for h in with_spends)


def test_blockheaders_mainnet_1_11() -> None:
    lines = (BTCD / "blocks" / "blockheaders-mainnet-1-11.txt").read_text().split()
    assert len(lines) == 11
    blocks = mainnet_0_255()
    for height, line in enumerate(lines, start=1):
        raw = bytes.fromhex(line)
        header = Header.parse(raw)
        assert header.serialize() == raw
        assert header == blocks[height].header
        assert header.hash == blocks[height].hash


def test_blocks1_256_bz2() -> None:
    recs = bz2_records(BTCD / "blocks" / "blocks1-256.bz2")
    assert len(recs) == 255
    blocks = mainnet_0_255()
    for height, raw in enumerate(recs, start=1):
        block = Block.parse(raw)
        assert_block_ok(block, raw)
        assert block == blocks[height]


REORG_CHAIN = {
    "blk_0_to_4.dat": 5,
    "blk_3A.dat": 1,
    "blk_4A.dat": 1,
    "blk_5A.dat": 1,
}


def check_reorg_shape(files: dict[str, list[bytes]]) -> None:
    assert {name: len(recs) for name, recs in files.items()} == REORG_CHAIN
    parsed = {}
    for name, recs in files.items():
        blocks = []
        for raw in recs:
            block = Block.parse(raw)
            assert_block_ok(block, raw)
            assert check_proof_of_work(block.hash, block.header.bits, POW_LIMIT)
            blocks.append(block)
        parsed[name] = blocks
    main = parsed["blk_0_to_4.dat"]
    assert main[0].hash_hex == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    for parent, child in itertools.pairwise(main):
        assert child.header.prev_hash == parent.hash
    b3a, b4a, b5a = (parsed[n][0] for n in ("blk_3A.dat", "blk_4A.dat", "blk_5A.dat"))
    assert b3a.header.prev_hash == main[2].hash
    assert b4a.header.prev_hash == b3a.hash
    assert b5a.header.prev_hash == b4a.hash
    # Blocks 3 and 3A spend the same outputs (double spends across branches).
    spent3 = {i.prevout for tx in main[3].txs[1:] for i in tx.inputs}
    spent3a = {i.prevout for tx in b3a.txs[1:] for i in tx.inputs}
    assert spent3 and spent3 == spent3a


def test_reorg_dat_files() -> None:
    files = {name: bz2_records(BTCD / "reorg" / f"{name}.bz2") for name in REORG_CHAIN}
    check_reorg_shape(files)
    assert Block.parse(files["blk_0_to_4.dat"][1]).hash_hex.startswith("00000000ebe5ec3e")
    assert Block.parse(files["blk_5A.dat"][0]).hash_hex.startswith("00000000195f8518")


def test_reorgtest_hex() -> None:
    files = reorgtest_sections()
    check_reorg_shape(files)
    assert Block.parse(files["blk_0_to_4.dat"][1]).hash_hex == (
        "000000003757cbe8ae43511b57b8722851b790f1bd6b90ca3ec6114c4079ca13"
    )


# -- btcd transactions -----------------------------------------------------------------------------

BIP69_TXIDS = {
    "bip69-1.hex": "0a6a357e2f7796444e02638749d9611c008b253fb55f5dc88b739b230ed0c4c3",
    "bip69-2.hex": "28204cad1d7fc1d199e8ef4fa22f182de6258a3eaafe1bbe56ebdcacd3069a5f",
    "bip69-3.hex": "fbde5d03b027d2b9ba4cf5d4fecab9a99864df2637b25ea4cbcb1796ff6550ca",
    "bip69-4.hex": "8131ffb0a2c945ecaf9b9063e59558784f9c3a74741ce6ae2a18d0571dac15bb",
    "bip69-5.hex": "ff85e8fc92e71bbc217e3ea9a3bacb86b435e52b6df0b089d67302c293a2b81d",
}


@pytest.mark.parametrize("name", sorted(BIP69_TXIDS))
def test_bip69_txs(name: str) -> None:
    text = (BTCD / "tx" / name).read_text().strip()
    tx = Tx.from_hex(text)
    assert tx.serialize().hex() == text
    assert tx.txid_hex == BIP69_TXIDS[name]
    assert not tx.has_witness()
    assert tx.wtxid == tx.txid


def test_megatx() -> None:
    raw = bz2.decompress(read_bytes(BTCD / "tx" / "megatx.bin.bz2"))
    assert len(raw) == 999_657
    tx = Tx.parse(raw)
    assert tx.serialize() == raw
    assert tx.txid_hex == "bb41a757f405890fb0f5856228e23b715702d714d59bf2b1feb70d8b2b4e3e08"
    assert (len(tx.inputs), len(tx.outputs)) == (5569, 1)
    assert not tx.has_witness()
    rebuilt = Tx(tx.version, tx.inputs, tx.outputs, tx.locktime)
    assert rebuilt.serialize() == raw


def test_many_inputs_tx_is_rejected() -> None:
    text = (BTCD / "tx" / "many_inputs_tx.hex").read_text().strip()
    raw = bytes.fromhex(text)
    assert len(raw) == 34_311
    with pytest.raises(DecodeError):
        Tx.parse(raw)
    with pytest.raises(TrailingBytesError):
        Tx.from_hex(text)
    # Read as btcd's benchmark does, the prefix is a 3,682-byte tx of 89 inputs.
    r = Reader(raw)
    prefix = Tx.from_reader(r)
    assert r.pos == 3_682
    assert len(prefix.inputs) == 89
    assert prefix.txid_hex == "7fee17357e8f24be3965a89bbf598d76e52d14d06343cb6a2b2d700ae33592c6"


# -- merkle: mutation and witness commitments ----------------------------------------------------


def test_duplicated_last_tx_is_mutated() -> None:
    block = parse_block_file(BCOIN / "blocks" / "block300025.raw")
    assert len(block.txs) % 2 == 1
    forged = Block(block.header, (*block.txs, block.txs[-1]))
    root, mutated = block_merkle_root(forged)
    assert root == block.header.merkle_root
    assert mutated


def test_duplicated_last_pair_is_mutated() -> None:
    # Ten txs: level 1 has five nodes, so the last pair (txs 8, 9) is the odd one there.
    block = parse_block_file(BCOIN / "blocks" / "block898352.raw")
    assert len(block.txs) == 10
    forged = Block(block.header, (*block.txs, *block.txs[8:]))
    root, mutated = block_merkle_root(forged)
    assert root == block.header.merkle_root
    assert mutated
    # A block of six txs whose last pair is repeated: the duplication shows one level up.
    hashes = [bytes([i]) * 32 for i in range(6)]
    root6, mutated6 = merkle_root(hashes)
    root8, mutated8 = merkle_root([*hashes, *hashes[4:]])
    assert (root8, mutated8, mutated6) == (root6, True, False)
    # Repeating a pair that is not the odd one out changes the root: not a collision.
    block170 = mainnet_0_255()[170]
    assert block_merkle_root(Block(block170.header, block170.txs * 2))[0] != (
        block170.header.merkle_root
    )


WITNESS_BLOCKS = [
    BCOIN / "blocks" / f"block{n}.raw" for n in (482683, 928816, 928831, 928848, 928849, 928927)
] + [
    BCOIN / "blocks" / "block1087400.raw",
    *sorted((BTCD / "blocks").glob("*.blk")),
]


@pytest.mark.parametrize("path", WITNESS_BLOCKS, ids=lambda p: p.name[:20])
def test_witness_commitment(path: Path) -> None:
    block = parse_block_file(path)
    index = witness_commitment_index(block)
    assert index is not None
    coinbase = block.txs[0]
    (nonce,) = coinbase.inputs[0].witness
    assert len(nonce) == 32
    root, mutated = witness_merkle_root(block)
    assert not mutated
    commitment = compute_witness_commitment(root, nonce)
    assert coinbase.outputs[index].script_pubkey[6:38] == commitment


def test_no_witness_commitment_in_legacy_blocks() -> None:
    for name in ("block1.raw", "block300025.raw", "block426884.raw", "block928828.raw"):
        assert witness_commitment_index(parse_block_file(BCOIN / "blocks" / name)) is None


# -- the fast decoder against a plain one --------------------------------------------------------


def _plain_parse_tx(data: bytes) -> Tx:
    """The transaction format read field by field with ``Reader``: the specification that the
    fast decoder (inline compact sizes, objects built through their slots) must match."""
    r = Reader(data)
    version = r.u32()
    n_in = r.count(41)
    witness = False
    if n_in == 0:
        if r.remaining() < 1:
            raise DecodeError("truncated transaction")
        flag = r.data[r.pos]
        if flag:
            if flag != 1:
                raise DecodeError("unknown flag")
            r.pos += 1
            witness = True
            n_in = r.count(41)
    ins = [(OutPoint(r.read(32), r.u32()), r.var_bytes(), r.u32()) for _ in range(n_in)]
    outs = [TxOut.from_reader(r) for _ in range(r.count(9))]
    stacks: list[list[bytes]] = [[] for _ in ins]
    if witness:
        for stack in stacks:
            stack.extend(r.var_bytes() for _ in range(r.count(1)))
        if not any(stacks):
            raise DecodeError("superfluous witness record")
    locktime = r.u32()
    r.expect_end()
    inputs = [TxIn(p, s, q, w) for (p, s, q), w in zip(ins, stacks, strict=True)]
    return Tx(version, inputs, outs, locktime)


def _same_tx(a: Tx, b: Tx) -> None:
    assert (a.version, a.locktime) == (b.version, b.locktime)
    assert a.inputs == b.inputs and a.outputs == b.outputs
    assert all(type(x.witness) is tuple for x in a.inputs)
    assert a.serialize() == b.serialize() and a.serialize_legacy() == b.serialize_legacy()
    assert (a.txid, a.wtxid) == (b.txid, b.wtxid)
    assert (
        a.is_coinbase()
        == b.is_coinbase()
        == (len(a.inputs) == 1 and a.inputs[0].prevout == OutPoint(NULL_HASH, 0xFFFFFFFF))
    )


_TX_SAMPLES = [
    # segwit v0, a coinbase-shaped legacy tx, a 0xFD-long script and a multi-item witness
    bytes.fromhex(
        "02000000000101" + "11" * 32 + "01000000" + "00" + "ffffffff"
        "01"
        + "e803000000000000"
        + "16"
        + "0014"
        + "22" * 20
        + "02"
        + "01aa"
        + "0201bb"
        + "00000000"
    ),
    bytes.fromhex(
        "01000000" + "01" + "00" * 32 + "ffffffff" + "03" + "012345" + "ffffffff"
        "01" + "00f2052a01000000" + "01" + "51" + "00000000"
    ),
    bytes.fromhex(
        "01000000" + "01" + "33" * 32 + "00000000" + "fdfd00" + "ab" * 253 + "feffffff"
        "02" + "0100000000000000" + "00" + "0200000000000000" + "0151" + "01000000"
    ),
]


@pytest.mark.parametrize("raw", _TX_SAMPLES, ids=["segwit", "coinbase", "long-script"])
def test_fast_decoder_equals_plain_decoder(raw: bytes) -> None:
    _same_tx(Tx.parse(raw), _plain_parse_tx(raw))


def test_fast_decoder_equals_plain_decoder_on_damage() -> None:
    """Every truncation and every single-byte change of the samples: both decoders agree on
    whether the bytes decode, and on what they decode to."""
    for raw in _TX_SAMPLES:
        variants = [raw[:n] for n in range(len(raw))]
        for pos in range(len(raw)):
            for value in (0x00, 0x01, 0x02, 0xFC, 0xFD, 0xFE, 0xFF, raw[pos] ^ 0x80):
                variants.append(raw[:pos] + bytes([value]) + raw[pos + 1 :])
        for data in variants:
            try:
                plain: Tx | None = _plain_parse_tx(data)
            except DecodeError:
                plain = None
            try:
                fast: Tx | None = Tx.parse(data)
            except DecodeError:
                fast = None
            assert (fast is None) == (plain is None), data.hex()
            if fast is not None and plain is not None:
                _same_tx(fast, plain)


def test_block_sizes_from_cached_encodings() -> None:
    bcoin = [parse_block_file(BCOIN / "blocks" / e["file"]) for e in BCOIN_INDEX[:6]]
    for block in [*mainnet_0_255()[:20], *bcoin]:
        assert block.base_size() == len(block.serialize_legacy())
        assert block.total_size() == len(block.serialize())
        rebuilt = Block(block.header, [Tx.parse(tx.serialize()) for tx in block.txs])
        assert rebuilt.base_size() == block.base_size()
        assert rebuilt.weight() == block.weight()


def test_constructed_and_parsed_objects_agree() -> None:
    """``__init__`` and the decoder fill the same slots (the decoder bypasses ``__init__``)."""
    prevout = OutPoint(b"\x07" * 32, 3)
    tx = Tx(2, [TxIn(prevout, b"\x51", 5, [b"\x01"])], [TxOut(9, b"\x52")], 7)
    parsed = Tx.parse(tx.serialize())
    for a, b in (
        (tx, parsed),
        (tx.inputs[0], parsed.inputs[0]),
        (prevout, parsed.inputs[0].prevout),
    ):
        assert type(a) is type(b)
        for name in type(a).__slots__:
            if name not in ("_raw", "_raw_nowit", "_txid", "_wtxid"):
                assert getattr(a, name) == getattr(b, name), name
    with pytest.raises(AttributeError):
        parsed.inputs[0].prevout.index = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        parsed.outputs[0].value = 1  # type: ignore[misc]
