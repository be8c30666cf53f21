"""Wallet encryption: wrong passphrases change nothing, any tampering is caught, a new passphrase
keeps every secret readable, records round-trip byte for byte, and the timed unlock expires."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.wallet.crypter import (
    RPC_WALLET_PASSPHRASE_INCORRECT,
    CrypterError,
    DecryptionError,
    EncryptedSecret,
    Kdf,
    KdfParams,
    MasterKey,
    MasterKeyRecord,
    RecordFormatError,
    UnlockState,
    WalletLocked,
    WrongPassphrase,
    calibrate_pbkdf2_iterations,
)

CHEAP = {"log2_n": 10}  # scrypt at 1024 × 8 × 128 bytes: fast enough for tests


def rng_from(seed: int):  # type: ignore[no-untyped-def]
    r = random.Random(seed)
    return lambda n: r.randbytes(n)


@pytest.fixture
def wallet() -> tuple[MasterKeyRecord, MasterKey]:
    return MasterKeyRecord.create("correct horse", rng_from(1), **CHEAP)  # type: ignore[arg-type]


def test_create_and_unlock(wallet: tuple[MasterKeyRecord, MasterKey]) -> None:
    record, master = wallet
    assert record.unlock("correct horse") == master
    assert record.kdf.kdf is Kdf.SCRYPT and record.kdf.log2_n == 10
    assert len(master.key) == 32
    assert master.key.hex() not in repr(master)


def test_wrong_passphrase_raises_and_changes_nothing(
    wallet: tuple[MasterKeyRecord, MasterKey],
) -> None:
    record, master = wallet
    before = record.serialize()
    with pytest.raises(WrongPassphrase) as e:
        record.unlock("correct horse ")
    assert str(e.value) == "Error: The wallet passphrase entered was incorrect."
    assert e.value.rpc_code == RPC_WALLET_PASSPHRASE_INCORRECT == -14
    with pytest.raises(WrongPassphrase):
        record.change_passphrase("wrong", "new one", rng_from(2))
    assert record.serialize() == before
    assert record.unlock("correct horse") == master


def test_secrets_round_trip_and_bind_to_owner(wallet: tuple[MasterKeyRecord, MasterKey]) -> None:
    _, master = wallet
    pub_a, pub_b = b"\x02" + b"\xaa" * 32, b"\x03" + b"\xbb" * 32
    secret = bytes(range(32))
    sealed = master.encrypt(secret, pub_a)
    assert master.decrypt(sealed, pub_a) == secret
    assert master.decrypt(sealed.serialize(), pub_a) == secret
    assert len(sealed.serialize()) == 1 + 12 + 32 + 16
    with pytest.raises(DecryptionError):
        master.decrypt(sealed, pub_b)  # moved to another key's record
    other = MasterKey(b"\x01" * 32)
    with pytest.raises(DecryptionError):
        other.decrypt(sealed, pub_a)
    # Synthetic nonces: deterministic per (owner, secret), distinct otherwise.
    assert master.encrypt(secret, pub_a) == sealed
    assert master.encrypt(secret, pub_b).nonce != sealed.nonce
    assert master.encrypt(secret[::-1], pub_a).nonce != sealed.nonce


def test_every_bit_flip_in_a_sealed_secret_is_detected(
    wallet: tuple[MasterKeyRecord, MasterKey],
) -> None:
    _, master = wallet
    raw = master.encrypt(b"seed" * 16, b"record:7").serialize()
    checked = 0
    for i in range(1, len(raw)):  # byte 0 is the version
        for bit in (0, 7):
            bad = bytearray(raw)
            bad[i] ^= 1 << bit
            with pytest.raises(DecryptionError):
                master.decrypt(bytes(bad), b"record:7")
            checked += 1
    assert checked == 2 * (len(raw) - 1) == 2 * (12 + 64 + 16)


def test_tampered_master_record_is_rejected(wallet: tuple[MasterKeyRecord, MasterKey]) -> None:
    record, _ = wallet
    raw = record.serialize()
    checked = 0
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        try:
            tampered = MasterKeyRecord.deserialize(bytes(bad))
        except RecordFormatError:
            checked += 1
            continue
        with pytest.raises(WrongPassphrase):
            tampered.unlock("correct horse")
        checked += 1
    assert checked == len(raw) == 1 + 1 + 16 + 9 + 12 + 48


def test_change_passphrase_keeps_secrets(wallet: tuple[MasterKeyRecord, MasterKey]) -> None:
    record, master = wallet
    sealed = {
        bytes([i]) * 33: master.encrypt(hashlib.sha256(bytes([i])).digest(), bytes([i]) * 33)
        for i in range(5)
    }
    new = record.change_passphrase("correct horse", "battery staple", rng_from(3))
    assert new.kdf.salt != record.kdf.salt and new.nonce != record.nonce
    assert new.kdf.log2_n == record.kdf.log2_n
    with pytest.raises(WrongPassphrase):
        new.unlock("correct horse")
    again = new.unlock("battery staple")
    assert again == master
    for aad, s in sealed.items():
        assert again.decrypt(s, aad) == hashlib.sha256(aad[:1]).digest()
    assert len(sealed) == 5


def test_master_record_serialization_is_exact() -> None:
    record, _ = MasterKeyRecord.create("pw", rng_from(9), **CHEAP)  # type: ignore[arg-type]
    raw = record.serialize()
    assert raw[0] == 1 and raw[1] == Kdf.SCRYPT
    assert raw[2:18] == record.kdf.salt
    assert raw[18:27] == bytes([10]) + (8).to_bytes(4, "little") + (1).to_bytes(4, "little")
    assert raw[27:39] == record.nonce and raw[39:] == record.encrypted_key
    assert MasterKeyRecord.deserialize(raw) == record
    assert MasterKeyRecord.deserialize(raw).serialize() == raw
    for bad, why in (
        (raw + b"\x00", "wrong length"),
        (raw[:-1], "wrong length"),
        (b"\x02" + raw[1:], "version"),
        (raw[:1] + b"\x09" + raw[2:], "unknown KDF"),
        (raw[:18] + b"\x30" + raw[19:], "scrypt parameters out of range"),
        (b"", "version"),
    ):
        with pytest.raises(RecordFormatError, match=why):
            MasterKeyRecord.deserialize(bad)


def test_pbkdf2_record() -> None:
    record, master = MasterKeyRecord.create(
        "pw", rng_from(4), kdf=Kdf.PBKDF2_SHA512, iterations=25_000
    )
    raw = record.serialize()
    assert raw[1] == Kdf.PBKDF2_SHA512 and raw[18:22] == (25_000).to_bytes(4, "little")
    assert len(raw) == 1 + 1 + 16 + 4 + 12 + 48
    assert MasterKeyRecord.deserialize(raw).unlock("pw") == master
    # The derivation is PBKDF2-HMAC-SHA512 over the UTF-8 passphrase and the stored salt.
    want = hashlib.pbkdf2_hmac("sha512", b"pw", record.kdf.salt, 25_000, 32)
    assert record.kdf.derive("pw") == want
    with pytest.raises(RecordFormatError, match="iteration count"):
        KdfParams(Kdf.PBKDF2_SHA512, b"\x00" * 16, iterations=24_999)


def test_scrypt_derivation_matches_hashlib() -> None:
    k = KdfParams(Kdf.SCRYPT, b"s" * 16, log2_n=10, r=8, p=1)
    assert k.derive("pässword") == hashlib.scrypt(
        "pässword".encode(), salt=b"s" * 16, n=1024, r=8, p=1, dklen=32
    )


def test_encrypted_secret_format() -> None:
    with pytest.raises(RecordFormatError, match="too short"):
        EncryptedSecret.deserialize(b"\x01" + b"\x00" * 27)
    with pytest.raises(RecordFormatError, match="version"):
        EncryptedSecret.deserialize(b"\x00" + b"\x00" * 40)
    s = EncryptedSecret(b"n" * 12, b"c" * 20)
    assert EncryptedSecret.deserialize(s.serialize()) == s


def test_empty_passphrase_refused(wallet: tuple[MasterKeyRecord, MasterKey]) -> None:
    with pytest.raises(CrypterError, match="empty"):
        MasterKeyRecord.create("", rng_from(0))
    with pytest.raises(CrypterError, match="empty"):
        wallet[0].change_passphrase("correct horse", "", rng_from(0))


def test_calibration_with_a_fake_clock() -> None:
    def clock_of(step: float) -> Iterator[float]:
        t = 0.0
        while True:
            yield t
            t += step

    ticks = clock_of(0.05)  # probe of 25,000 takes 0.05 s: 0.1 s needs 50,000
    assert calibrate_pbkdf2_iterations(lambda: next(ticks)) == 50_000
    ticks = clock_of(10.0)  # a very slow machine still gets the floor
    assert calibrate_pbkdf2_iterations(lambda: next(ticks)) == 25_000
    ticks = clock_of(0.0)
    assert calibrate_pbkdf2_iterations(lambda: next(ticks)) == 100_000_000


def test_unlock_state() -> None:
    master = MasterKey(b"\x07" * 32)
    state = UnlockState()
    assert state.is_locked(0)
    with pytest.raises(WalletLocked) as e:
        state.master(0)
    assert str(e.value) == "Error: Please enter the wallet passphrase with walletpassphrase first."
    assert e.value.rpc_code == -13
    state.unlock(master, until=100)
    assert not state.is_locked(99.9)
    assert state.master(50) is master
    assert state.unlocked_until == 100
    assert state.is_locked(100)
    assert state.unlocked_until == 0
    # Once expired the key is gone, even if the clock is asked about an earlier time.
    assert state.is_locked(10)
    state.unlock_for(master, now=1_000, seconds=10**12)
    assert state.unlocked_until == 1_000 + 100_000_000
    state.lock()
    assert state.is_locked(1_001)
    with pytest.raises(CrypterError, match="Timeout cannot be negative"):
        state.unlock_for(master, now=0, seconds=-1)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=80))
def test_property_seal_open(secret: bytes, aad: bytes) -> None:
    master = MasterKey(hashlib.sha256(b"prop").digest())
    sealed = master.encrypt(secret, aad)
    assert master.decrypt(EncryptedSecret.deserialize(sealed.serialize()), aad) == secret
    with pytest.raises(DecryptionError):
        master.decrypt(sealed, aad + b"x")
