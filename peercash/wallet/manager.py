"""``WalletManager``: the loaded wallets of one node, the wallet directory, load-on-startup.

Layer 3 (wallet). Core's ``WalletContext`` + ``wallet/load.cpp``: wallets live under
``<datadir>/wallets`` (``db.wallet_path``); ``settings.json`` there keeps the names to load at
start (``createwallet``/``loadwallet``/``unloadwallet`` with ``load_on_startup``).

Error contract: ``WalletNotFound`` (-18), ``WalletAlreadyLoaded`` (-35), ``WalletNotSpecified``
(-19) and ``WalletError`` (-4) from ``wallet``. Concurrency: one lock guards the loaded set.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from peercash.consensus.params import NetworkParams

from .bip32 import ExtendedKey
from .db import WALLET_FILE, WalletDB, wallet_path
from .encryption import encrypt_wallet
from .feepolicy import FeePolicy
from .hdsetup import master_from_mnemonic
from .interfaces import NodeClient
from .keyman import DEFAULT_KEYPOOL_SIZE
from .wallet import Wallet, WalletError

SETTINGS_FILE = "settings.json"
NO_WALLET = (
    "No wallet is loaded. Load a wallet using loadwallet or create a new one with "
    "createwallet. (Note: A default wallet is no longer automatically created)"
)
NOT_SPECIFIED = (
    "Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path)."
)


class WalletNotFound(WalletError):
    """Core's RPC_WALLET_NOT_FOUND (-18)."""


class WalletAlreadyLoaded(WalletError):
    """Core's RPC_WALLET_ALREADY_LOADED (-35)."""


class WalletNotSpecified(WalletError):
    """Core's RPC_WALLET_NOT_SPECIFIED (-19)."""


class WalletManager:
    """Every wallet this node has loaded."""

    def __init__(
        self,
        walletdir: Path,
        params: NetworkParams,
        node: NodeClient | None,
        *,
        keypool: int = DEFAULT_KEYPOOL_SIZE,
        clock: Callable[[], float] = time.time,
        entropy: Callable[[int], bytes] = os.urandom,
        fee_policy: FeePolicy | None = None,
    ) -> None:
        self.walletdir = walletdir
        self.params = params
        self.node = node
        self.keypool = keypool
        self.clock = clock
        self.entropy = entropy
        self.wallets: dict[str, Wallet] = {}
        self.lock = threading.RLock()
        self.fee_policy = fee_policy or FeePolicy()  # each wallet starts with the node's

    # -- lookup ---------------------------------------------------------------------------

    def get(self, name: str | None) -> Wallet:
        """The wallet a request names (``/wallet/<name>``), or the only one loaded."""
        with self.lock:
            if name is not None:
                wallet = self.wallets.get(name)
                if wallet is None:
                    raise WalletNotFound("Requested wallet does not exist or is not loaded")
                return wallet
            if len(self.wallets) == 1:
                return next(iter(self.wallets.values()))
            if not self.wallets:
                raise WalletNotFound(NO_WALLET)
            raise WalletNotSpecified(NOT_SPECIFIED)

    def names(self) -> list[str]:
        with self.lock:
            return list(self.wallets)

    def list_dir(self) -> list[str]:
        """Names of every wallet in the wallet directory (Core's ``listwalletdir``)."""
        if not self.walletdir.is_dir():
            return []
        found = []
        if (self.walletdir / WALLET_FILE).is_file():
            found.append("")
        for path in sorted(self.walletdir.rglob(WALLET_FILE)):
            rel = path.parent.relative_to(self.walletdir)
            if str(rel) != ".":
                found.append(rel.as_posix())
        return found

    # -- load, create, unload -------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        blank: bool = False,
        disable_private_keys: bool = False,
        avoid_reuse: bool = False,
        mnemonic: str | None = None,
        passphrase: str = "",
        load_on_startup: bool | None = None,
        encrypt_passphrase: str = "",
    ) -> Wallet:
        """``passphrase`` is the mnemonic's BIP39 passphrase; ``encrypt_passphrase`` encrypts
        the wallet (created blank, then encrypted, then given its keys: the file never holds
        them in plaintext)."""
        if encrypt_passphrase and disable_private_keys:
            raise WalletError(
                "Passphrase provided but private keys are disabled. A passphrase is only used "
                "to encrypt private keys, so cannot be used for wallets with private keys "
                "disabled."
            )
        with self.lock:
            if name in self.wallets:
                raise WalletAlreadyLoaded(f'Wallet "{name}" is already loaded.')
            path = wallet_path(self.walletdir, name)
            if path.exists():
                raise WalletError(
                    f"Failed to create database path '{path.parent}'. Database already exists."
                )
            wallet = Wallet.create(
                name,
                path,
                self.params,
                entropy=self.entropy(32),
                mnemonic=None if encrypt_passphrase else mnemonic,
                passphrase=passphrase,
                blank=blank or bool(encrypt_passphrase),
                disable_private_keys=disable_private_keys,
                avoid_reuse=avoid_reuse,
                keypool=self.keypool,
                clock=self.clock,
            )
            wallet.fee_policy = self.fee_policy
            if encrypt_passphrase:
                try:
                    seed = (
                        master_from_mnemonic(mnemonic, passphrase)
                        if mnemonic is not None
                        else ExtendedKey.from_seed(self.entropy(32))
                    )
                    encrypt_wallet(wallet, encrypt_passphrase, self.entropy, seed=seed, blank=blank)
                except BaseException:
                    wallet.close()
                    _remove_db(path)
                    raise
            if self.node is not None:
                # A wallet restored from a mnemonic may have coins anywhere: scan everything.
                wallet.attach(self.node, rescan_from=0 if mnemonic is not None else None)
            self.wallets[name] = wallet
            self._set_startup(name, load_on_startup)
            return wallet

    def load(self, name: str, *, load_on_startup: bool | None = None) -> Wallet:
        with self.lock:
            if name in self.wallets:
                raise WalletAlreadyLoaded(f'Wallet "{name}" is already loaded.')
            path = wallet_path(self.walletdir, name)
            if not path.is_file():
                raise WalletNotFound(
                    "Wallet file verification failed. Failed to load database path "
                    f"'{path.parent}'. Path does not exist."
                )
            wallet = Wallet(
                name, WalletDB(path), self.params, keypool=self.keypool, clock=self.clock
            )
            wallet.fee_policy = self.fee_policy
            if self.node is not None:
                wallet.attach(self.node)
            self.wallets[name] = wallet
            self._set_startup(name, load_on_startup)
            return wallet

    def unload(self, name: str, *, load_on_startup: bool | None = None) -> None:
        with self.lock:
            wallet = self.wallets.pop(name, None)
            if wallet is None:
                raise WalletNotFound("Requested wallet does not exist or is not loaded")
            wallet.close()
            self._set_startup(name, False if load_on_startup is None else load_on_startup)

    def restore(self, name: str, backup: Path, *, load_on_startup: bool | None = None) -> Wallet:
        """Copy ``backup`` into a new wallet directory and load it (Core's ``restorewallet``)."""
        with self.lock:
            path = wallet_path(self.walletdir, name)
            if not backup.is_file():
                raise WalletError(f"Backup file does not exist: {backup}")
            if path.exists():
                raise WalletError(
                    f"Failed to create database path '{path.parent}'. Database already exists."
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(backup, path)
            try:
                return self.load(name, load_on_startup=load_on_startup)
            except BaseException:
                path.unlink(missing_ok=True)
                raise

    def load_startup(self, names: list[str]) -> list[str]:
        """Load ``-wallet`` names and the settings file's list; the warnings (one per failure)."""
        warnings = []
        for name in [*names, *self._startup_names()]:
            if name in self.wallets:
                continue
            try:
                self.load(name)
            except (WalletError, ValueError, OSError) as e:
                warnings.append(f"Wallet {name!r} not loaded: {e}")
        return warnings

    def close_all(self) -> None:
        with self.lock:
            for wallet in self.wallets.values():
                wallet.close()
            self.wallets.clear()

    # -- settings.json --------------------------------------------------------------------

    def _settings_path(self) -> Path:
        return self.walletdir.parent / SETTINGS_FILE  # Core keeps it in the data directory

    def _startup_names(self) -> list[str]:
        try:
            data = json.loads(self._settings_path().read_text())
        except (OSError, ValueError):
            return []
        names = data.get("wallet", []) if isinstance(data, dict) else []
        return [n for n in names if isinstance(n, str)]

    def _set_startup(self, name: str, load: bool | None) -> None:
        if load is None:
            return
        names = [n for n in self._startup_names() if n != name]
        if load:
            names.append(name)
        self.walletdir.mkdir(parents=True, exist_ok=True)
        tmp = self._settings_path().with_suffix(".tmp")
        tmp.write_text(json.dumps({"wallet": names}, indent=1) + "\n")
        os.replace(tmp, self._settings_path())


def _remove_db(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
