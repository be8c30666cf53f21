"""Wallet encryption at rest: one random master key encrypts every secret; a passphrase unlocks it.

Layer 3 (wallet), pure: randomness (``rng(n) -> n bytes``, e.g. ``os.urandom``) and the clock are
passed in; nothing here reads files.

* The **master key** is 32 random bytes. Secrets (private keys, seeds) are sealed with
  AES-256-GCM under a key derived from it; the associated data binds each record to its owner
  (the public key or record id), so a ciphertext moved to another record fails to open. The
  nonce is *synthetic* (an HMAC of the associated data and the secret under a second derived key,
  checked again on opening), so sealing needs no randomness and a nonce never repeats for
  different plaintexts; sealing the same secret for the same owner twice gives the same bytes.
* The master key is stored encrypted (AES-256-GCM, random nonce) under a key derived from the
  passphrase by scrypt (default) or PBKDF2-HMAC-SHA512 with an iteration count calibrated to the
  machine and stored beside it, as Core calibrates its rounds. The KDF parameters are
  authenticated as associated data.

Error contract: :class:`CrypterError` (a ``ValueError``); :class:`WrongPassphrase` carries Core's
``walletpassphrase`` text and RPC code -14, :class:`WalletLocked` code -13, a damaged or moved
ciphertext raises :class:`DecryptionError`, a malformed serialization :class:`RecordFormatError`.

Concurrency: records and keys are immutable; :class:`UnlockState` is not thread-safe (guard it
with the wallet's lock).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = [
    "MASTER_KEY_SIZE",
    "CrypterError",
    "DecryptionError",
    "EncryptedSecret",
    "Kdf",
    "KdfParams",
    "MasterKey",
    "MasterKeyRecord",
    "RecordFormatError",
    "UnlockState",
    "WalletLocked",
    "WrongPassphrase",
    "calibrate_pbkdf2_iterations",
]

Rng = Callable[[int], bytes]

MASTER_KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SALT_SIZE = 16
RECORD_VERSION = 1
SCRYPT_DEFAULT_LOG2_N = 15  # 32 MiB with r = 8, about 0.1 s
PBKDF2_MIN_ITERATIONS = 25_000  # Core's floor for its derivation rounds
PBKDF2_MAX_ITERATIONS = 100_000_000
MAX_SECRET_SIZE = 1 << 16
MAX_UNLOCK_SECONDS = 100_000_000  # Core clamps walletpassphrase's timeout to this

RPC_WALLET_UNLOCK_NEEDED = -13
RPC_WALLET_PASSPHRASE_INCORRECT = -14


class CrypterError(ValueError):
    """A wallet encryption failure."""

    rpc_code: int | None = None


class WrongPassphrase(CrypterError):
    """The passphrase does not open the master key (or its record was altered)."""

    rpc_code = RPC_WALLET_PASSPHRASE_INCORRECT

    def __init__(self) -> None:
        super().__init__("Error: The wallet passphrase entered was incorrect.")


class WalletLocked(CrypterError):
    """A secret was needed while the wallet is locked."""

    rpc_code = RPC_WALLET_UNLOCK_NEEDED

    def __init__(self) -> None:
        super().__init__("Error: Please enter the wallet passphrase with walletpassphrase first.")


class DecryptionError(CrypterError):
    """A sealed secret failed authentication: damaged, or opened for the wrong owner."""


class RecordFormatError(CrypterError):
    """Bytes that are not a valid serialized record."""


class Kdf(IntEnum):
    SCRYPT = 1
    PBKDF2_SHA512 = 2


@dataclass(frozen=True, slots=True)
class KdfParams:
    """How the passphrase becomes the key that wraps the master key."""

    kdf: Kdf
    salt: bytes
    log2_n: int = SCRYPT_DEFAULT_LOG2_N
    r: int = 8
    p: int = 1
    iterations: int = 0

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_SIZE:
            raise RecordFormatError(f"the salt must be {SALT_SIZE} bytes")
        if self.kdf is Kdf.SCRYPT:
            if not (10 <= self.log2_n <= 22 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
                raise RecordFormatError("scrypt parameters out of range")
        elif not PBKDF2_MIN_ITERATIONS <= self.iterations <= PBKDF2_MAX_ITERATIONS:
            raise RecordFormatError("PBKDF2 iteration count out of range")

    def serialize(self) -> bytes:
        if self.kdf is Kdf.SCRYPT:
            body = struct.pack("<BII", self.log2_n, self.r, self.p)
        else:
            body = struct.pack("<I", self.iterations)
        return bytes([self.kdf]) + self.salt + body

    @classmethod
    def parse(cls, data: bytes) -> tuple[KdfParams, bytes]:
        """The parameters at the start of ``data`` and the bytes after them."""
        if not data:
            raise RecordFormatError("missing KDF parameters")
        try:
            kdf = Kdf(data[0])
        except ValueError:
            raise RecordFormatError(f"unknown KDF {data[0]}") from None
        salt, rest = data[1 : 1 + SALT_SIZE], data[1 + SALT_SIZE :]
        if len(salt) != SALT_SIZE:
            raise RecordFormatError("truncated salt")
        if kdf is Kdf.SCRYPT:
            if len(rest) < 9:
                raise RecordFormatError("truncated scrypt parameters")
            log2_n, r, p = struct.unpack_from("<BII", rest)
            return cls(kdf, salt, log2_n=log2_n, r=r, p=p), rest[9:]
        if len(rest) < 4:
            raise RecordFormatError("truncated PBKDF2 parameters")
        (iterations,) = struct.unpack_from("<I", rest)
        return cls(kdf, salt, iterations=iterations), rest[4:]

    def derive(self, passphrase: str) -> bytes:
        """The 32-byte wrapping key for ``passphrase`` (UTF-8, NFC is the caller's choice)."""
        secret = passphrase.encode("utf-8")
        if self.kdf is Kdf.SCRYPT:
            return Scrypt(self.salt, 32, 1 << self.log2_n, self.r, self.p).derive(secret)
        return PBKDF2HMAC(hashes.SHA512(), 32, self.salt, self.iterations).derive(secret)


def calibrate_pbkdf2_iterations(
    clock: Callable[[], float],
    target_seconds: float = 0.1,
    probe: int = PBKDF2_MIN_ITERATIONS,
) -> int:
    """How many PBKDF2-HMAC-SHA512 iterations take about ``target_seconds`` here: time ``probe``
    iterations on ``clock`` and scale, never below the floor (Core does the same for its
    ``nDeriveIterations``)."""
    start = clock()
    hashlib.pbkdf2_hmac("sha512", b"calibration", b"\x00" * SALT_SIZE, probe, 32)
    elapsed = clock() - start
    if elapsed <= 0:
        return PBKDF2_MAX_ITERATIONS
    scaled = int(probe * target_seconds / elapsed)
    return max(PBKDF2_MIN_ITERATIONS, min(PBKDF2_MAX_ITERATIONS, scaled))


def _subkey(master: bytes, purpose: bytes) -> bytes:
    return hmac.new(master, b"peercash/wallet/" + purpose, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class EncryptedSecret:
    """One sealed secret: version, synthetic nonce, ciphertext with its 16-byte tag."""

    nonce: bytes
    ciphertext: bytes

    def serialize(self) -> bytes:
        return bytes([RECORD_VERSION]) + self.nonce + self.ciphertext

    @classmethod
    def deserialize(cls, data: bytes) -> EncryptedSecret:
        if len(data) < 1 + NONCE_SIZE + TAG_SIZE:
            raise RecordFormatError("an encrypted secret is too short")
        if len(data) > 1 + NONCE_SIZE + TAG_SIZE + MAX_SECRET_SIZE:
            raise RecordFormatError("an encrypted secret is too long")
        if data[0] != RECORD_VERSION:
            raise RecordFormatError(f"unknown encrypted-secret version {data[0]}")
        return cls(bytes(data[1 : 1 + NONCE_SIZE]), bytes(data[1 + NONCE_SIZE :]))


@dataclass(frozen=True, slots=True)
class MasterKey:
    """The unlocked master key; seals and opens secrets. Its bytes never appear in ``repr``."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != MASTER_KEY_SIZE:
            raise CrypterError(f"a master key is {MASTER_KEY_SIZE} bytes")

    def _nonce(self, secret: bytes, aad: bytes) -> bytes:
        mac = hmac.new(_subkey(self.key, b"nonce"), digestmod=hashlib.sha256)
        mac.update(struct.pack("<Q", len(aad)) + aad + secret)
        return mac.digest()[:NONCE_SIZE]

    def encrypt(self, secret: bytes, aad: bytes) -> EncryptedSecret:
        """Seal ``secret`` for the owner named by ``aad`` (public key or record id)."""
        if len(secret) > MAX_SECRET_SIZE:
            raise CrypterError("secret too large")
        nonce = self._nonce(secret, aad)
        sealed = AESGCM(_subkey(self.key, b"aes")).encrypt(nonce, secret, aad)
        return EncryptedSecret(nonce, sealed)

    def decrypt(self, record: EncryptedSecret | bytes, aad: bytes) -> bytes:
        """Open a sealed secret; any change to it, or another owner's ``aad``, raises."""
        if isinstance(record, bytes | bytearray):
            record = EncryptedSecret.deserialize(bytes(record))
        try:
            secret = AESGCM(_subkey(self.key, b"aes")).decrypt(record.nonce, record.ciphertext, aad)
        except InvalidTag:
            raise DecryptionError("the encrypted secret failed authentication") from None
        if not hmac.compare_digest(record.nonce, self._nonce(secret, aad)):
            raise DecryptionError("the encrypted secret's nonce does not match its contents")
        return secret


_MASTER_AAD = b"peercash/wallet/master-key"


@dataclass(frozen=True, slots=True)
class MasterKeyRecord:
    """The master key wrapped under the passphrase; what the wallet file stores."""

    kdf: KdfParams
    nonce: bytes
    encrypted_key: bytes

    def __post_init__(self) -> None:
        if len(self.nonce) != NONCE_SIZE:
            raise RecordFormatError(f"the nonce must be {NONCE_SIZE} bytes")
        if len(self.encrypted_key) != MASTER_KEY_SIZE + TAG_SIZE:
            raise RecordFormatError("the wrapped master key must be 48 bytes")

    @staticmethod
    def _aad(kdf: KdfParams) -> bytes:
        return _MASTER_AAD + bytes([RECORD_VERSION]) + kdf.serialize()

    @classmethod
    def wrap(cls, master: MasterKey, passphrase: str, kdf: KdfParams, rng: Rng) -> MasterKeyRecord:
        nonce = rng(NONCE_SIZE)
        sealed = AESGCM(kdf.derive(passphrase)).encrypt(nonce, master.key, cls._aad(kdf))
        return cls(kdf, nonce, sealed)

    @classmethod
    def create(
        cls,
        passphrase: str,
        rng: Rng,
        *,
        kdf: Kdf = Kdf.SCRYPT,
        log2_n: int = SCRYPT_DEFAULT_LOG2_N,
        iterations: int = PBKDF2_MIN_ITERATIONS,
    ) -> tuple[MasterKeyRecord, MasterKey]:
        """A fresh random master key and its record wrapped under ``passphrase``."""
        if not passphrase:
            raise CrypterError("passphrase cannot be empty")
        master = MasterKey(rng(MASTER_KEY_SIZE))
        params = _new_kdf_params(kdf, rng(SALT_SIZE), log2_n, iterations)
        return cls.wrap(master, passphrase, params, rng), master

    def unlock(self, passphrase: str) -> MasterKey:
        """The master key, or :class:`WrongPassphrase`."""
        try:
            key = AESGCM(self.kdf.derive(passphrase)).decrypt(
                self.nonce, self.encrypted_key, self._aad(self.kdf)
            )
        except InvalidTag:
            raise WrongPassphrase from None
        return MasterKey(key)

    def change_passphrase(self, old: str, new: str, rng: Rng) -> MasterKeyRecord:
        """The same master key wrapped under ``new`` with a fresh salt and nonce (same KDF and
        cost); raises :class:`WrongPassphrase` when ``old`` is wrong. Secrets stay as they are."""
        if not new:
            raise CrypterError("passphrase cannot be empty")
        master = self.unlock(old)
        k = self.kdf
        params = KdfParams(k.kdf, rng(SALT_SIZE), k.log2_n, k.r, k.p, k.iterations)
        return self.wrap(master, new, params, rng)

    def serialize(self) -> bytes:
        return bytes([RECORD_VERSION]) + self.kdf.serialize() + self.nonce + self.encrypted_key

    @classmethod
    def deserialize(cls, data: bytes) -> MasterKeyRecord:
        if not data or data[0] != RECORD_VERSION:
            raise RecordFormatError("unknown master-key record version")
        kdf, rest = KdfParams.parse(bytes(data[1:]))
        if len(rest) != NONCE_SIZE + MASTER_KEY_SIZE + TAG_SIZE:
            raise RecordFormatError("a master-key record has the wrong length")
        return cls(kdf, rest[:NONCE_SIZE], rest[NONCE_SIZE:])


def _new_kdf_params(kdf: Kdf, salt: bytes, log2_n: int, iterations: int) -> KdfParams:
    if kdf is Kdf.SCRYPT:
        return KdfParams(kdf, salt, log2_n=log2_n)
    return KdfParams(kdf, salt, iterations=iterations)


class UnlockState:
    """Whether the wallet is unlocked, and until when (``walletpassphrase``'s timeout).

    Time is whatever the injected clock says (seconds); the key is dropped on :meth:`lock` or
    the first check after it expires."""

    __slots__ = ("_master", "_until")

    def __init__(self) -> None:
        self._master: MasterKey | None = None
        self._until = 0.0

    def unlock(self, master: MasterKey, until: float) -> None:
        self._master = master
        self._until = until

    def unlock_for(self, master: MasterKey, now: float, seconds: float) -> None:
        """Unlock for ``seconds`` from ``now``, clamped to Core's 100,000,000 s."""
        if seconds < 0:
            raise CrypterError("Timeout cannot be negative.")
        self.unlock(master, now + min(seconds, MAX_UNLOCK_SECONDS))

    def lock(self) -> None:
        self._master = None
        self._until = 0.0

    def is_locked(self, now: float) -> bool:
        if self._master is not None and now >= self._until:
            self.lock()
        return self._master is None

    def master(self, now: float) -> MasterKey:
        """The master key while unlocked, else :class:`WalletLocked`."""
        if self.is_locked(now):
            raise WalletLocked
        assert self._master is not None
        return self._master

    @property
    def unlocked_until(self) -> float:
        """When the current unlock ends (0 when locked), for ``getwalletinfo``."""
        return self._until if self._master is not None else 0.0
