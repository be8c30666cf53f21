"""The wallet manager: lookup rules, load on startup (settings.json), restore from a backup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peercash.consensus.params import get_params
from peercash.wallet.manager import (
    NO_WALLET,
    NOT_SPECIFIED,
    WalletAlreadyLoaded,
    WalletManager,
    WalletNotFound,
    WalletNotSpecified,
)
from peercash.wallet.wallet import WalletError

from .chainsim import SimNode

P = get_params("regtest")


def manager(tmp_path: Path, node: SimNode) -> WalletManager:
    return WalletManager(tmp_path / "wallets", P, node, keypool=5, entropy=lambda n: b"\x05" * n)


def test_lookup_rules(tmp_path: Path) -> None:
    wallets = manager(tmp_path, SimNode(P))
    with pytest.raises(WalletNotFound, match="No wallet is loaded") as e:
        wallets.get(None)
    assert str(e.value) == NO_WALLET
    a = wallets.create("a")
    assert wallets.get(None) is a and wallets.get("a") is a
    wallets.create("b")
    with pytest.raises(WalletNotSpecified) as e2:
        wallets.get(None)
    assert str(e2.value) == NOT_SPECIFIED
    with pytest.raises(WalletAlreadyLoaded, match='Wallet "b" is already loaded'):
        wallets.load("b")
    wallets.unload("b")
    with pytest.raises(WalletError, match="Database already exists"):
        wallets.create("b")
    wallets.close_all()


def test_load_on_startup_and_restart(tmp_path: Path) -> None:
    node = SimNode(P)
    wallets = manager(tmp_path, node)
    wallets.create("kept", load_on_startup=True)
    wallets.create("other", load_on_startup=True)
    wallets.unload("other")  # unloading drops it from the list
    address = wallets.get("kept").get_new_address()
    wallets.close_all()
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings == {"wallet": ["kept"]}
    again = manager(tmp_path, node)
    assert again.load_startup(["other", "missing"]) == [
        "Wallet 'missing' not loaded: Wallet file verification failed. Failed to load database "
        f"path '{tmp_path / 'wallets' / 'missing'}'. Path does not exist."
    ]
    assert sorted(again.names()) == ["kept", "other"]
    assert again.get("kept").address_book[address] == ("", "receive")
    again.close_all()


def test_restore_copies_a_backup_into_a_new_wallet(tmp_path: Path) -> None:
    wallets = manager(tmp_path, SimNode(P))
    source = wallets.create("src")
    address = source.get_new_address("l")
    source.db.backup(tmp_path / "bak.dat")
    restored = wallets.restore("copy", tmp_path / "bak.dat")
    assert restored.address_book[address] == ("l", "receive")
    assert (tmp_path / "wallets" / "copy" / "wallet.dat").is_file()
    with pytest.raises(WalletError, match="Backup file does not exist"):
        wallets.restore("x", tmp_path / "none.dat")
    with pytest.raises(WalletError, match="Database already exists"):
        wallets.restore("copy", tmp_path / "bak.dat")
    wallets.close_all()
