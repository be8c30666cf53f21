"""``import`` says what happened: a file of another network is refused before anything is written,
and blocks left unconnected are named (the root of the first gap, with the parent it needs)."""

from __future__ import annotations

import bz2
import struct
from pathlib import Path

import pytest

from peercash.consensus.params import MAIN, REGTEST, SIGNET, TESTNET4, signet_params
from peercash.consensus.primitives import Block
from peercash.tools.chaintools import WrongNetworkError, check_network, import_blocks

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET_LINES = (DATA / "btcd" / "blocks" / "mainnet-blocks-0-255.hex").read_text().split()
RECORDS = bz2.decompress((DATA / "btcd" / "blocks" / "blocks1-256.bz2").read_bytes())
HASHES = [Block.from_hex(x).hash_hex for x in MAINNET_LINES]


def _hex(path: Path, heights: list[int]) -> Path:
    path.write_text("\n".join(MAINNET_LINES[h] for h in heights) + "\n")
    return path


def _raw(path: Path, heights: list[int]) -> Path:
    path.write_bytes(b"".join(bytes.fromhex(MAINNET_LINES[h]) for h in heights))
    return path


def _records(path: Path, magic: bytes) -> Path:
    out, pos = [], 0
    while pos < len(RECORDS):
        _, size = struct.unpack_from("<4sI", RECORDS, pos)
        out.append(magic + RECORDS[pos + 4 : pos + 8 + size])
        pos += 8 + size
    path.write_bytes(b"".join(out))
    return path


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: _hex(p, list(range(256))), "the first block is main's genesis block"),
        (lambda p: _hex(p, list(range(1, 256))), "the first block builds on main's genesis block"),
        (lambda p: _raw(p, list(range(1, 10))), "the first block builds on main's genesis block"),
        (lambda p: _records(p, MAIN.magic), "the file's records carry main's magic f9beb4d9"),
    ],
    ids=["hex-genesis", "hex-builds-on", "raw-builds-on", "records-magic"],
)
def test_mainnet_blocks_are_refused_on_other_networks(make, why, tmp_path: Path) -> None:
    path = make(tmp_path / "blocks")
    check_network(path, MAIN)  # their own network takes them
    for params in (REGTEST, TESTNET4, SIGNET):
        with pytest.raises(WrongNetworkError) as exc:
            check_network(path, params)
        assert str(exc.value) == (
            f"these blocks are for main, not {params.name} ({why}); nothing was imported"
        )
        assert exc.value.network == "main"


def test_other_networks_and_files_that_say_nothing(tmp_path: Path) -> None:
    regtest_genesis = tmp_path / "regtest.hex"
    regtest_genesis.write_text(REGTEST.genesis.hex() + "\n")
    with pytest.raises(WrongNetworkError, match="for regtest, not main"):
        check_network(regtest_genesis, MAIN)
    check_network(regtest_genesis, REGTEST)
    # A stretch of the chain above the genesis's children says nothing: checked block by block.
    check_network(_hex(tmp_path / "middle.hex", list(range(100, 110))), REGTEST)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    check_network(empty, MAIN)
    # A custom signet shares the default signet's genesis, not its magic.
    custom = signet_params(bytes.fromhex("51"))
    default_records = _records(tmp_path / "signet.dat", SIGNET.magic)
    with pytest.raises(WrongNetworkError, match="for the default signet, not signet"):
        check_network(default_records, custom)


def test_a_wrong_network_import_writes_nothing(tmp_path: Path) -> None:
    path = _hex(tmp_path / "main.hex", list(range(256)))
    with pytest.raises(WrongNetworkError):
        import_blocks(path, "regtest", tmp_path / "dd")
    assert not (tmp_path / "dd").exists()


def test_a_missing_block_is_named_and_everything_before_it_kept(tmp_path: Path) -> None:
    heights = [h for h in range(256) if h != 156]
    r = import_blocks(_hex(tmp_path / "gap.hex", heights), "main", tmp_path / "dd")
    assert r.error is None and r.unconnected is not None
    assert (r.height, r.tip) == (155, HASHES[155])
    assert (r.unconnected.block, r.unconnected.parent) == (HASHES[157], HASHES[156])
    assert r.unconnected.count == 99 and not r.unconnected.parent_stored


def test_the_root_of_an_out_of_order_gap_is_named(tmp_path: Path) -> None:
    """Blocks 101..119 are missing and 140..160 come before 120..139: the block that needs a
    parent from nowhere is 120, though 140 is the first that waited."""
    heights = [*range(101), *range(140, 161), *range(120, 140)]
    r = import_blocks(_raw(tmp_path / "gap.dat", heights), "main", tmp_path / "dd")
    assert r.unconnected is not None and r.height == 100
    assert (r.unconnected.block, r.unconnected.parent) == (HASHES[120], HASHES[119])
    assert r.unconnected.count == 41


def test_blocks_before_their_parents_connect_without_complaint(tmp_path: Path) -> None:
    heights = [*range(101), *range(150, 201), *range(101, 150), *range(201, 256)]
    r = import_blocks(_hex(tmp_path / "shuffled.hex", heights), "main", tmp_path / "dd")
    assert r.error is None and r.unconnected is None
    assert (r.height, r.tip, r.blocks_read) == (255, HASHES[255], 256)
