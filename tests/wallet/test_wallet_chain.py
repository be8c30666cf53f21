"""Following the chain with in-process blocks: credits, debits, maturity, reorgs, conflicts,
abandoning, catching up on load, and a restored wallet's rescan."""

from __future__ import annotations

from pathlib import Path

import pytest

from peercash.consensus.address import address_to_script
from peercash.consensus.params import get_params
from peercash.consensus.primitives import OutPoint
from peercash.wallet.db import WalletDB
from peercash.wallet.txrecord import ABANDONED, CONFIRMED, CONFLICTED, INACTIVE, MEMPOOL
from peercash.wallet.wallet import Balance, InvalidAddress, InvalidParameter, Wallet

from .chainsim import SimNode, spend

P = get_params("regtest")
COIN = 100_000_000
ELSEWHERE = b"\x00\x14" + b"\x99" * 20
MNEMONIC = "abandon " * 11 + "about"


def make(tmp_path: Path, node: SimNode, name: str = "w", **kw: object) -> Wallet:
    wallet = Wallet.create(name, tmp_path / name / "wallet.dat", P, keypool=25, **kw)  # type: ignore[arg-type]
    wallet.attach(node)
    return wallet


def script_of(wallet: Wallet, change: bool = False) -> bytes:
    address = wallet.get_change_address() if change else wallet.get_new_address()
    return address_to_script(address, P)


def mature_coin(node: SimNode, wallet: Wallet) -> OutPoint:
    block = node.mine([], to=script_of(wallet))
    for _ in range(100):
        node.mine([])
    return OutPoint(block.txs[0].txid, 0)


def test_coinbase_is_immature_for_100_blocks(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    node.mine([], to=script_of(wallet))
    assert wallet.balance() == Balance(0, 0, 50 * COIN)
    for _ in range(99):
        node.mine([])
    assert wallet.balance() == Balance(0, 0, 50 * COIN)  # depth 100
    node.mine([])
    assert wallet.balance() == Balance(50 * COIN, 0, 0)
    [coin] = wallet.coins()
    assert coin.depth == 101 and coin.safe


def test_credit_then_debit_to_elsewhere(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    coin = mature_coin(node, wallet)
    change = script_of(wallet, change=True)
    tx = spend([coin], [(10 * COIN, ELSEWHERE), (39 * COIN, change)])
    node.add_to_mempool(tx)
    assert wallet.txs[tx.txid].state == MEMPOOL
    assert wallet.debit(tx) == 50 * COIN and wallet.credit(tx) == 39 * COIN
    assert wallet.balance() == Balance(39 * COIN, 0, 0)  # our own change is trusted
    assert [c.outpoint for c in wallet.coins(0)] == [OutPoint(tx.txid, 1)]
    node.mine([tx])
    assert wallet.txs[tx.txid].state == CONFIRMED
    assert wallet.txs[tx.txid].block_height == 102
    assert wallet.balance() == Balance(39 * COIN, 0, 0)


def test_incoming_unconfirmed_is_untrusted_pending(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    foreign = spend([OutPoint(b"\x42" * 32, 0)], [(3 * COIN, script_of(wallet))])
    node.add_to_mempool(foreign)
    assert wallet.balance() == Balance(0, 3 * COIN, 0)
    assert wallet.coins() == []  # min depth 1
    [coin] = wallet.coins(0)
    assert not coin.safe
    assert wallet.coins(0, include_unsafe=False) == []
    node.remove_from_mempool(foreign)
    assert wallet.txs[foreign.txid].state == INACTIVE
    assert wallet.balance() == Balance(0, 0, 0)


def test_reorg_moves_confirmed_back_to_unconfirmed(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    foreign = spend([OutPoint(b"\x42" * 32, 0)], [(3 * COIN, script_of(wallet))])
    node.mine([foreign])
    assert wallet.balance() == Balance(3 * COIN, 0, 0)
    node.disconnect()
    wtx = wallet.txs[foreign.txid]
    assert (wtx.state, wtx.block_hash) == (INACTIVE, None)
    assert wallet.last_height == 0
    node.add_to_mempool(foreign)  # the node returns it to the pool
    assert wallet.balance() == Balance(0, 3 * COIN, 0)


def test_conflict_by_a_confirmed_double_spend(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    coin = mature_coin(node, wallet)
    ours = spend([coin], [(49 * COIN, script_of(wallet, change=True))])
    node.add_to_mempool(ours)
    child = spend([OutPoint(ours.txid, 0)], [(48 * COIN, script_of(wallet))])
    node.add_to_mempool(child)
    node.mempool.clear()
    theirs = spend([coin], [(49 * COIN, ELSEWHERE)])
    block = node.mine([theirs])
    for tx in (ours, child):
        wtx = wallet.txs[tx.txid]
        assert (wtx.state, wtx.conflict_hash) == (CONFLICTED, block.header.hash)
        assert wallet.depth(wtx) == -1
    node.mine([])
    assert wallet.depth(wallet.txs[ours.txid]) == -2
    assert wallet.balance() == Balance(0, 0, 0)
    assert wallet.conflicts(wallet.txs[ours.txid]) == [theirs.txid]
    node.disconnect()
    node.disconnect()
    assert wallet.txs[ours.txid].state == INACTIVE


def test_abandon_an_inactive_transaction_and_its_child(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    coin = mature_coin(node, wallet)
    parent = spend([coin], [(49 * COIN, script_of(wallet, change=True))])
    child = spend([OutPoint(parent.txid, 0)], [(48 * COIN, script_of(wallet, change=True))])
    node.add_to_mempool(parent)
    node.add_to_mempool(child)
    with pytest.raises(InvalidAddress, match="Transaction not eligible for abandonment"):
        wallet.abandon(parent.txid)
    node.remove_from_mempool(child)
    node.remove_from_mempool(parent)
    assert wallet.balance() == Balance(0, 0, 0)  # inactive spends still count as spending
    wallet.abandon(parent.txid)
    assert wallet.txs[parent.txid].state == ABANDONED
    assert wallet.txs[child.txid].state == ABANDONED
    assert wallet.balance() == Balance(50 * COIN, 0, 0)
    with pytest.raises(InvalidAddress, match="Invalid or non-wallet transaction id"):
        wallet.abandon(b"\x07" * 32)


def test_loaded_behind_the_tip_catches_up_and_survives_a_reorg_while_away(
    tmp_path: Path,
) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    script = script_of(wallet)
    first = spend([OutPoint(b"\x42" * 32, 0)], [(2 * COIN, script)])
    node.mine([first])
    wallet.close()
    node.disconnect()  # first's block goes away while the wallet is closed
    second = spend([OutPoint(b"\x43" * 32, 0)], [(5 * COIN, script)])
    node.mine([])
    node.mine([second])
    again = Wallet("w", WalletDB(tmp_path / "w" / "wallet.dat"), P, keypool=25)
    again.attach(node)
    assert again.last_height == 2
    assert again.txs[first.txid].state == INACTIVE
    assert again.txs[second.txid].block_height == 2
    assert again.balance() == Balance(5 * COIN, 0, 0)


def test_restore_from_mnemonic_rescans_past_the_first_keypool(tmp_path: Path) -> None:
    node = SimNode(P)
    original = make(tmp_path, node, "a", mnemonic=MNEMONIC)
    scripts = [script_of(original) for _ in range(60)]
    paid = [0, 20, 40, 59]  # each within 25 of the previous one used
    for i in paid:
        node.mine([spend([OutPoint(bytes([i]) * 32, 0)], [(COIN, scripts[i])])])
    restored = Wallet.create("b", tmp_path / "b" / "wallet.dat", P, mnemonic=MNEMONIC, keypool=25)
    restored.attach(node, rescan_from=0)
    assert restored.balance().trusted == 4 * COIN
    assert restored.keys.active("bech32", False).next_index == 60  # type: ignore[union-attr]
    # With a smaller keypool the gap of 20 after index 20 is too wide to bridge.
    narrow = Wallet.create("c", tmp_path / "c" / "wallet.dat", P, mnemonic=MNEMONIC, keypool=15)
    narrow.attach(node, rescan_from=0)
    assert narrow.balance().trusted == 1 * COIN
    assert narrow.rescan(0, 2) == (0, 2)
    with pytest.raises(InvalidParameter, match="Invalid start_height"):
        narrow.rescan(9, None)
    with pytest.raises(InvalidParameter, match="stop_height must be greater than start_height"):
        narrow.rescan(2, 1)


def test_block_processing_is_atomic(tmp_path: Path) -> None:
    node = SimNode(P)
    wallet = make(tmp_path, node, entropy=bytes(32))
    script = script_of(wallet)
    tx = spend([OutPoint(b"\x42" * 32, 0)], [(COIN, script)])
    original = wallet.db.put_transaction

    def failing(row: object) -> None:
        original(row)  # type: ignore[arg-type]
        raise OSError("disk full")

    wallet.db.put_transaction = failing  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        node.mine([tx])
    wallet.db.put_transaction = original  # type: ignore[method-assign]
    assert wallet.db.transactions() == []
    assert wallet.txs == {}  # memory follows the file back
    assert wallet.last_height == 0
    assert wallet.db.get_setting("locator") is not None
    assert "[1," not in (wallet.db.get_setting("locator") or "")


def test_watch_only_and_blank_wallets(tmp_path: Path) -> None:
    node = SimNode(P)
    watch = make(tmp_path, node, "watch", disable_private_keys=True)
    assert watch.keys.rows == {}
    with pytest.raises(ValueError, match="Private keys are disabled for this wallet"):
        watch.get_new_address()
    blank = make(tmp_path, node, "blank", blank=True)
    assert blank.flags["blank"] is True and blank.keys.rows == {}
    with pytest.raises(ValueError, match="This wallet has no available keys"):
        blank.get_new_address()


def test_import_with_a_timestamp_rescans_from_that_time(tmp_path: Path) -> None:
    node = SimNode(P)
    keys = make(tmp_path, node, "keys", mnemonic=MNEMONIC)
    script = script_of(keys)
    node.mine([spend([OutPoint(b"\x42" * 32, 0)], [(2 * COIN, script)])])
    for _ in range(20):
        node.mine([])  # 600 s apart
    watch = make(tmp_path, node, "watch", disable_private_keys=True)
    row = keys.keys.active("bech32", False)
    assert row is not None
    public = keys.keys.descs[row.id].to_string()
    assert watch.import_descriptor(public, timestamp=node.time) == []  # no rescan: too late
    assert watch.balance().trusted == 0
    watch.rescan_since(node.blocks[1].header.time)
    assert watch.balance().trusted == 2 * COIN
    with pytest.raises(ValueError, match="Cannot import private keys"):
        watch.import_descriptor(keys.keys.descs[row.id].to_string(private=True), timestamp=0)
