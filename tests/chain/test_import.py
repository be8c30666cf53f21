"""``peercash import`` and ``peercash chaininfo`` on real mainnet blocks (btcd's first 256), run as
the real console script in a subprocess, as the acceptance checks run them."""

from __future__ import annotations

import bz2
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from peercash.chain.blockstore import scan_block_file
from peercash.consensus.params import MAIN
from peercash.consensus.primitives import Block, TxOut

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET_HEX = DATA / "btcd" / "blocks" / "mainnet-blocks-0-255.hex"
BLOCKS_BZ2 = DATA / "btcd" / "blocks" / "blocks1-256.bz2"
TIP = "00000000d0a75c861fabf9ff7b92022f60e4afeed9331fe5aa073d8e4706fe3c"
LINES = MAINNET_HEX.read_text().split()


def flat(text: str) -> str:
    return " ".join(text.split())


def expected_utxo_figures(lines: list[str]) -> dict[str, int]:
    """The UTXO set after these blocks, by the simplest possible model (no validation)."""
    coins: dict[tuple[bytes, int], TxOut] = {}
    for line in lines[1:]:  # the genesis coinbase never enters the UTXO set
        for tx in Block.from_hex(line).txs:
            if not tx.is_coinbase():
                for txin in tx.inputs:
                    del coins[(txin.prevout.txid, txin.prevout.index)]
            for i, out in enumerate(tx.outputs):
                coins[(tx.txid, i)] = out
    return {
        "txouts": len(coins),
        "total": sum(out.value for out in coins.values()),
        "transactions": len({txid for txid, _ in coins}),
        # Core's bogo size: txid 32 + vout 4 + height/coinbase 4 + amount 8 + script length 2
        "bogosize": sum(50 + len(out.script_pubkey) for out in coins.values()),
    }


def block_records(datadir: Path) -> list[bytes]:
    """Hashes of the block records in blk00000.dat, in file order."""
    return [
        Block.parse(raw).hash
        for _, raw in scan_block_file(datadir / "blocks" / "blk00000.dat", MAIN.magic)
    ]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def records_file(tmp_path: Path) -> Path:
    """btcd's blocks1-256.bz2 decompressed: ``[magic][len][block]`` records, heights 1..255."""
    path = tmp_path / "blocks1-256.dat"
    path.write_bytes(bz2.decompress(BLOCKS_BZ2.read_bytes()))
    return path


def test_import_first_256_mainnet_blocks(tmp_path, peercash, chaininfo):
    d = tmp_path / "dd"
    r = peercash("import", MAINNET_HEX, "--network", "main", "--datadir", d, "--assumevalid", "0")
    assert r.returncode == 0, r.stderr
    assert "imported 256 blocks" in r.stdout
    assert f"tip {TIP} at height 255" in r.stdout

    info = chaininfo(d)
    assert info["height"] == 255
    assert info["bestblock"] == TIP
    assert info["txouts"] == 260
    assert info.total_amount_text == "12750.00000000"
    model = expected_utxo_figures(LINES)
    assert model["txouts"] == 260 and model["total"] == 12750 * 10**8
    assert info["transactions"] == model["transactions"]
    assert info["bogosize"] == model["bogosize"]
    assert set(info.data) == {
        "height", "bestblock", "txouts", "bogosize", "muhash", "hash_serialized_3",
        "total_amount", "transactions",
    }  # fmt: skip
    assert all(len(str(info[k])) == 64 for k in ("muhash", "hash_serialized_3"))
    # Mainnet data lives in the datadir itself, one record per block, in order.
    assert block_records(d) == [Block.from_hex(x).hash for x in LINES]
    assert (d / "blocks" / "rev00000.dat").exists()
    assert (d / "index").is_dir() and (d / "chainstate").is_dir()
    assert not (d / "testnet3").exists()


def test_reimport_is_a_noop(tmp_path, peercash, chaininfo, mainnet_reference):
    d = tmp_path / "dd"
    assert peercash("import", MAINNET_HEX, "--datadir", d).returncode == 0
    blk, rev = (
        (d / "blocks" / "blk00000.dat").read_bytes(),
        (d / "blocks" / "rev00000.dat").read_bytes(),
    )
    r = peercash("import", MAINNET_HEX, "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert f"tip {TIP} at height 255" in r.stdout
    # Nothing was stored or connected again.
    assert (d / "blocks" / "blk00000.dat").read_bytes() == blk
    assert (d / "blocks" / "rev00000.dat").read_bytes() == rev
    info = chaininfo(d)
    assert info.data == mainnet_reference.data
    assert info.text == mainnet_reference.text


@pytest.mark.parametrize("form", ["records", "raw"])
def test_import_btcd_block_records(form, tmp_path, peercash, chaininfo, mainnet_reference):
    """blocks1-256.bz2 (records of heights 1..255; a fresh datadir already has the genesis), and
    the same blocks as raw blocks back to back, give the same chain as the hex file."""
    path = records_file(tmp_path)
    if form == "raw":
        data, pos, out = path.read_bytes(), 0, []
        while pos < len(data):
            magic, size = struct.unpack_from("<4sI", data, pos)
            assert magic == MAIN.magic
            out.append(data[pos + 8 : pos + 8 + size])
            pos += 8 + size
        assert len(out) == 255
        path = tmp_path / "raw.dat"
        path.write_bytes(b"".join(out))
    d = tmp_path / "dd"
    r = peercash("import", path, "--network", "main", "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert "imported 255 blocks" in r.stdout
    assert f"tip {TIP} at height 255" in r.stdout
    assert chaininfo(d).data == mainnet_reference.data


def test_invalid_block_stops_the_import(tmp_path, peercash, chaininfo, mainnet_reference):
    """A byte changed in block 200's coinbase: the merkle root no longer matches."""
    good = Block.from_hex(LINES[200])
    raw = bytearray(good.serialize())
    # header (80) + tx count (1) + version (4) + input count (1) + prevout (36) + script length
    # (1): byte 124 is the second byte of the coinbase's scriptSig.
    raw[124] ^= 0x01
    bad = Block.parse(bytes(raw))
    assert bad.hash == good.hash and bad.txs[0].txid != good.txs[0].txid
    path = write_lines(tmp_path / "bad.hex", [*LINES[:200], raw.hex(), *LINES[201:]])

    d = tmp_path / "dd"
    r = peercash("import", path, "--network", "main", "--datadir", d)
    assert r.returncode == 1
    err = flat(r.stderr)
    assert "error: invalid block at height 200: bad-txnmrklroot:" in err
    block199 = Block.from_hex(LINES[199]).hash_hex
    assert f"kept the chain up to height 199 ({block199})" in err

    # Everything before the bad block is kept, nothing from it on is stored.
    ref = tmp_path / "ref"
    assert (
        peercash(
            "import", write_lines(tmp_path / "0-199.hex", LINES[:200]), "--datadir", ref
        ).returncode
        == 0
    )
    assert chaininfo(d).data == chaininfo(ref).data
    assert chaininfo(d)["height"] == 199
    assert len(block_records(d)) == 200

    # A mutated block is not remembered as invalid: the genuine block 200 is accepted later.
    r = peercash("import", MAINNET_HEX, "--network", "main", "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert chaininfo(d).data == mainnet_reference.data


def test_reindex_gives_identical_chaininfo(tmp_path, peercash, chaininfo, mainnet_reference):
    d = tmp_path / "dd"
    assert peercash("import", MAINNET_HEX, "--datadir", d).returncode == 0
    empty = tmp_path / "empty.hex"
    empty.write_text("")
    r = peercash("import", empty, "--reindex", "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert f"tip {TIP} at height 255" in r.stdout
    info = chaininfo(d)
    assert info.data == mainnet_reference.data  # muhash and hash_serialized_3 included
    assert info.text == mainnet_reference.text
    # --reindex and then the file again: the blocks are already there.
    r = peercash("import", MAINNET_HEX, "--reindex", "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert chaininfo(d).data == mainnet_reference.data
    assert len(block_records(d)) == 256


def test_reindex_after_deleting_index_and_chainstate(
    tmp_path, peercash, chaininfo, mainnet_reference
):
    d = tmp_path / "dd"
    assert peercash("import", MAINNET_HEX, "--datadir", d).returncode == 0
    shutil.rmtree(d / "index")
    shutil.rmtree(d / "chainstate")
    empty = tmp_path / "empty.hex"
    empty.write_text("")
    r = peercash("import", empty, "--reindex", "--datadir", d)
    assert r.returncode == 0, r.stderr
    assert chaininfo(d).data == mainnet_reference.data


def test_module_entry_point_knows_import():
    r = subprocess.run(
        [sys.executable, "-m", "peercash.cli", "import", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
