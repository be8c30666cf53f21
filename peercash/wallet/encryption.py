"""Encrypting a wallet, unlocking and locking it (Core's ``EncryptWallet``, ``Unlock``, ``Lock``,
``ChangeWalletPassphrase`` for descriptor wallets).

Layer 3 (wallet). The master-key record (``crypter.MasterKeyRecord``) lives in the wallet file's
``master_keys`` table; every descriptor's private keys are sealed under the master key
(``keysecrets``) and its stored text is public. ``WalletCrypto`` is one wallet's state: whether
it is encrypted and, while unlocked, the master key until the relock time on the wallet's
injected clock. The key is dropped on :meth:`WalletCrypto.lock`, at the first check after the
timeout (so every path that needs a secret sees the relock on that clock), and by a timer
thread when the timeout passes (Core's ``rpcRunLater`` relock), so it does not stay in memory.

As in Core, encrypting a wallet that is not blank then gives it new default descriptors from a
new seed (the old ones stay, sealed and inactive): a backup made before holds only the old seed.
A wrong passphrase raises before anything is written.

Error contract: ``crypter.WrongPassphrase`` (-14), ``crypter.WalletLocked`` (-13),
:class:`WrongEncryptionState` (-15), :class:`EncryptionFailed` (-16), :class:`BadCryptParameter`
(-8), all ``crypter.CrypterError`` (a ``ValueError``) carrying ``rpc_code``, with Core's texts.
Concurrency: called under the wallet's lock; the relock timer takes that lock too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from .bip32 import ExtendedKey
from .crypter import (
    MAX_UNLOCK_SECONDS,
    SCRYPT_DEFAULT_LOG2_N,
    CrypterError,
    Kdf,
    MasterKey,
    MasterKeyRecord,
    UnlockState,
)
from .db import WalletDB

if TYPE_CHECKING:
    from .wallet import Wallet

__all__ = [
    "BadCryptParameter",
    "EncryptionFailed",
    "WalletCrypto",
    "WrongEncryptionState",
    "change_passphrase",
    "encrypt_wallet",
    "lock_wallet",
    "unlock_wallet",
]

Rng = Callable[[int], bytes]

RPC_INVALID_PARAMETER = -8
RPC_WALLET_WRONG_ENC_STATE = -15
RPC_WALLET_ENCRYPTION_FAILED = -16
EMPTY_PASSPHRASE = "passphrase cannot be empty"
ENCRYPTED_TEXT = (
    "wallet encrypted; The keypool has been flushed and a new HD seed was generated. "
    "You need to make a new backup with the backupwallet RPC."
)


class WrongEncryptionState(CrypterError):
    """Core's RPC_WALLET_WRONG_ENC_STATE: e.g. ``walletlock`` on an unencrypted wallet."""

    rpc_code = RPC_WALLET_WRONG_ENC_STATE


class EncryptionFailed(CrypterError):
    """Core's RPC_WALLET_ENCRYPTION_FAILED."""

    rpc_code = RPC_WALLET_ENCRYPTION_FAILED


class BadCryptParameter(CrypterError):
    """Core's RPC_INVALID_PARAMETER for an empty passphrase or a negative timeout."""

    rpc_code = RPC_INVALID_PARAMETER


def _unencrypted(method: str) -> WrongEncryptionState:
    return WrongEncryptionState(
        f"Error: running with an unencrypted wallet, but {method} was called."
    )


class WalletCrypto:
    """One wallet's encryption state: its master-key record and whether it is unlocked."""

    __slots__ = ("_guard", "_state", "_timer", "clock", "record")

    def __init__(
        self, db: WalletDB, clock: Callable[[], float], guard: AbstractContextManager[object]
    ) -> None:
        blob = db.master_key()
        self.record = None if blob is None else MasterKeyRecord.deserialize(blob)
        self.clock = clock
        self._guard = guard  # the wallet's lock
        self._state = UnlockState()
        self._timer: threading.Timer | None = None

    @property
    def is_crypted(self) -> bool:
        return self.record is not None

    def is_locked(self) -> bool:
        """Encrypted and without the master key now (an expired unlock counts as locked)."""
        return self.record is not None and self._state.is_locked(self.clock())

    def master(self) -> MasterKey | None:
        """The key that opens the sealed secrets: None for an unencrypted wallet; raises
        ``WalletLocked`` (-13) when encrypted and locked."""
        if self.record is None:
            return None
        return self._state.master(self.clock())

    @property
    def unlocked_until(self) -> int:
        """``getwalletinfo``'s ``unlocked_until``: the relock time, 0 when locked."""
        if self.is_locked():
            return 0
        return int(self._state.unlocked_until)

    def lock(self) -> None:
        self._state.lock()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _unlock(self, master: MasterKey, seconds: float) -> None:
        self.lock()
        self._state.unlock_for(master, self.clock(), seconds)
        if not self._state.is_locked(self.clock()):
            timer = threading.Timer(min(seconds, MAX_UNLOCK_SECONDS) + 0.01, self._expire)
            timer.daemon = True
            timer.name = "wallet-relock"
            self._timer = timer
            timer.start()

    def _expire(self) -> None:
        with self._guard:
            self.is_locked()  # drops the key once the injected clock says it is due


def encrypt_wallet(
    wallet: Wallet,
    passphrase: str,
    rng: Rng,
    *,
    seed: ExtendedKey | None = None,
    blank: bool | None = None,
    log2_n: int = SCRYPT_DEFAULT_LOG2_N,
) -> None:
    """Core's ``EncryptWallet``: a new master key under ``passphrase``, every private key
    sealed, then (unless blank) new default descriptors from ``seed`` (default: a fresh seed
    from ``rng``), all in one batch; the wallet is left locked. ``blank`` overrides the blank
    flag first (``createwallet`` with a passphrase starts from a blank wallet)."""
    with wallet.lock:
        if wallet.flags.get("disable_private_keys"):
            raise EncryptionFailed(
                "Error: wallet does not contain private keys, nothing to encrypt."
            )
        if wallet.crypto.is_crypted:
            raise WrongEncryptionState(
                "Error: running with an encrypted wallet, but encryptwallet was called."
            )
        if not passphrase:
            raise BadCryptParameter(EMPTY_PASSPHRASE)
        record, master = MasterKeyRecord.create(passphrase, rng, kdf=Kdf.SCRYPT, log2_n=log2_n)
        try:
            with wallet._change():
                k = record.kdf
                wallet.db.put_master_key(record.serialize(), k.salt, int(k.kdf), k.log2_n)
                wallet.keys.encrypt_all(master)
                if blank is not None:
                    wallet._set_flag("blank", blank)
                if not wallet.flags.get("blank"):
                    if seed is None:
                        seed = ExtendedKey.from_seed(rng(32))
                    wallet._add_default_descriptors(seed, master)
        except BaseException:
            wallet.crypto.record = None
            raise
        wallet.crypto.record = record
        wallet.crypto.lock()
        wallet.db.purge()


def unlock_wallet(wallet: Wallet, passphrase: str, timeout: float) -> None:
    """Core's ``walletpassphrase``: keep the master key for ``timeout`` seconds (clamped to
    100,000,000; 0 relocks at once), then top up the keypool (hardened ranges need it)."""
    with wallet.lock:
        crypto = wallet.crypto
        if crypto.record is None:
            raise _unencrypted("walletpassphrase")
        if timeout < 0:
            raise BadCryptParameter("Timeout cannot be negative.")
        if not passphrase:
            raise BadCryptParameter(EMPTY_PASSPHRASE)
        master = crypto.record.unlock(passphrase)
        crypto._unlock(master, timeout)
        with wallet._change():
            wallet.keys.top_up_all(master)


def lock_wallet(wallet: Wallet) -> None:
    """Core's ``walletlock``."""
    with wallet.lock:
        if not wallet.crypto.is_crypted:
            raise _unencrypted("walletlock")
        wallet.crypto.lock()


def change_passphrase(wallet: Wallet, old: str, new: str, rng: Rng) -> None:
    """Core's ``walletpassphrasechange``: the same master key under ``new``; the secrets and
    the lock state stay as they are. A wrong ``old`` writes nothing."""
    with wallet.lock:
        crypto = wallet.crypto
        if crypto.record is None:
            raise _unencrypted("walletpassphrasechange")
        if not old or not new:
            raise BadCryptParameter(EMPTY_PASSPHRASE)
        record = crypto.record.change_passphrase(old, new, rng)
        with wallet._change():
            k = record.kdf
            wallet.db.put_master_key(record.serialize(), k.salt, int(k.kdf), k.log2_n)
        crypto.record = record
