"""Wallet encryption wired in (``encryption``, ``keysecrets``, the keyman/wallet hooks): what
the file holds once encrypted, unlock/lock/relock on a fake clock, a wrong passphrase changing
nothing, restart, passphrase change, locked derivation, imports and ``signing_keys``."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from peercash.consensus.params import get_params
from peercash.rpc.util import address_to_script
from peercash.wallet.crypter import (
    MAX_UNLOCK_SECONDS,
    DecryptionError,
    MasterKey,
    WalletLocked,
    WrongPassphrase,
)
from peercash.wallet.db import WalletDB
from peercash.wallet.descriptor import add_checksum, parse_one
from peercash.wallet.encryption import (
    BadCryptParameter,
    EncryptionFailed,
    WrongEncryptionState,
    change_passphrase,
    encrypt_wallet,
    lock_wallet,
    unlock_wallet,
)
from peercash.wallet.keysecrets import key_secrets, open_secrets, seal_secrets, with_secrets
from peercash.wallet.wallet import Wallet, WalletError

P = get_params("regtest")
LOG2_N = 10  # cheap scrypt for tests
# A tprv (BIP32 test vector 1's master on test networks) for imports.
TPRV = "tprv8ZgxMBicQKsPeDgjzdC36fs6bMjGApWDNLR9erAXMs5skhMv36j9MV5ecvfavji5khqjWaWSFhN3YcCUUdiKH6isR4Pwy3U5y5egddBr16m"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock, **kw: object) -> Wallet:
    return Wallet.create(
        "w",
        tmp_path / "w.dat",
        P,
        entropy=bytes(range(32)),
        keypool=5,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


def encrypt(wallet: Wallet, passphrase: str = "hunter2") -> None:
    encrypt_wallet(wallet, passphrase, os.urandom, log2_n=LOG2_N)


def key_tables(path: Path) -> bytes:
    """A digest of what the key tables hold (descriptors, their sealed keys, master keys)."""
    conn = sqlite3.connect(path)
    try:
        rows = [
            *conn.execute("SELECT id, descriptor, encrypted_keys FROM descriptors ORDER BY id"),
            *conn.execute("SELECT * FROM master_keys"),
        ]
    finally:
        conn.close()
    return hashlib.sha256(repr(rows).encode()).digest()


def file_bytes(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def first_pubkey(wallet: Wallet, address: str) -> bytes:
    script = address_to_script(address, P)
    assert script is not None
    info = wallet.keys.is_mine(script)
    assert info is not None
    [pub] = wallet.descriptor_for(info).expand(info.position).pubkeys
    return pub


def test_encrypt_seals_every_key_and_locks(tmp_path: Path) -> None:
    clock = Clock()
    wallet = make(tmp_path, clock)
    address = wallet.get_new_address()
    pub = first_pubkey(wallet, address)
    plain_secret = wallet.signing_keys()(pub)
    assert plain_secret is not None and len(plain_secret) == 32
    before = {
        r.id: wallet.keys.descs[r.id].to_string(private=True) for r in wallet.keys.rows.values()
    }
    assert b"tprv" in file_bytes(tmp_path / "w.dat")
    assert not wallet.is_crypted

    encrypt(wallet)
    assert wallet.is_crypted and wallet.is_locked
    # Nothing in the file (main file and WAL) holds an extended private key any more.
    assert b"tprv" not in file_bytes(tmp_path / "w.dat")
    # Core: a new seed, 8 new active descriptors; the old 8 stay, inactive and sealed.
    rows = list(wallet.keys.rows.values())
    assert len(rows) == 16
    assert sum(r.active_type is not None for r in rows) == 8
    assert all(r.active_type is None for r in rows if r.id in before)
    assert set(wallet.keys.sealed) == {r.id for r in rows}
    assert all("tprv" not in r.descriptor for r in rows)

    with pytest.raises(WalletLocked) as locked:
        wallet.signing_keys()
    assert (locked.value.rpc_code, str(locked.value)) == (
        -13, "Error: Please enter the wallet passphrase with walletpassphrase first."
    )  # fmt: skip
    with pytest.raises(WalletLocked):
        wallet.private_descriptor(rows[0].id)

    unlock_wallet(wallet, "hunter2", 60)
    assert not wallet.is_locked
    assert wallet.signing_keys()(pub) == plain_secret
    assert wallet.signing_keys()(pub[1:]) == plain_secret  # x-only lookup
    assert wallet.signing_keys()(b"\x02" * 33) is None
    for desc_id, text in before.items():
        assert wallet.private_descriptor(desc_id).to_string(private=True) == text


def test_getnewaddress_works_locked_and_new_seed_differs(tmp_path: Path) -> None:
    wallet = make(tmp_path, Clock())
    old = wallet.get_new_address()
    encrypt(wallet)
    assert wallet.is_locked
    new = [wallet.get_new_address() for _ in range(7)]  # past the keypool of 5: tops up locked
    assert len(set(new)) == 7 and old not in new
    change = wallet.get_change_address()
    assert change.startswith("bcrt1q")
    unlock_wallet(wallet, "hunter2", 60)
    keys = wallet.signing_keys()
    assert keys(first_pubkey(wallet, new[6])) is not None
    assert keys(first_pubkey(wallet, old)) is not None


def test_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    wallet = make(tmp_path, Clock())
    encrypt(wallet)
    digest = key_tables(tmp_path / "w.dat")
    with pytest.raises(WrongPassphrase) as wrong:
        unlock_wallet(wallet, "hunter3", 60)
    assert (wrong.value.rpc_code, str(wrong.value)) == (
        -14, "Error: The wallet passphrase entered was incorrect."
    )  # fmt: skip
    assert wallet.is_locked
    with pytest.raises(WrongPassphrase):
        change_passphrase(wallet, "hunter3", "new", os.urandom)
    assert key_tables(tmp_path / "w.dat") == digest
    unlock_wallet(wallet, "hunter2", 60)
    assert not wallet.is_locked


def test_unlock_timeout_on_the_clock(tmp_path: Path) -> None:
    clock = Clock()
    wallet = make(tmp_path, clock)
    encrypt(wallet)
    start = clock.now
    unlock_wallet(wallet, "hunter2", 10)
    assert wallet.crypto.unlocked_until == int(start) + 10
    clock.now += 9.5
    assert not wallet.is_locked and wallet.signing_keys() is not None
    clock.now += 0.5
    assert wallet.is_locked and wallet.crypto.unlocked_until == 0
    with pytest.raises(WalletLocked):
        wallet.signing_keys()
    # Clamped to Core's 100000000 s; 0 unlocks and relocks at once; negative is refused.
    unlock_wallet(wallet, "hunter2", 10**12)
    assert wallet.crypto.unlocked_until == int(clock.now) + MAX_UNLOCK_SECONDS
    lock_wallet(wallet)
    assert wallet.is_locked
    unlock_wallet(wallet, "hunter2", 0)
    assert wallet.is_locked
    with pytest.raises(BadCryptParameter, match=r"^Timeout cannot be negative\.$") as neg:
        unlock_wallet(wallet, "hunter2", -1)
    assert neg.value.rpc_code == -8
    with pytest.raises(BadCryptParameter, match=r"^passphrase cannot be empty$"):
        unlock_wallet(wallet, "", 10)


def test_restart_keeps_it_encrypted(tmp_path: Path) -> None:
    clock = Clock()
    wallet = make(tmp_path, clock)
    address = wallet.get_new_address()
    pub = first_pubkey(wallet, address)
    secret = wallet.signing_keys()(pub)
    encrypt(wallet)
    wallet.close()
    again = Wallet("w", WalletDB(tmp_path / "w.dat"), P, keypool=5, clock=clock)
    try:
        assert again.is_crypted and again.is_locked
        with pytest.raises(WalletLocked):
            again.signing_keys()
        with pytest.raises(WrongPassphrase):
            unlock_wallet(again, "nope", 60)
        unlock_wallet(again, "hunter2", 60)
        assert again.signing_keys()(pub) == secret
    finally:
        again.close()


def test_change_passphrase(tmp_path: Path) -> None:
    clock = Clock()
    wallet = make(tmp_path, clock)
    encrypt(wallet)
    change_passphrase(wallet, "hunter2", "correct horse", os.urandom)
    assert wallet.is_locked  # the lock state is kept
    with pytest.raises(WrongPassphrase):
        unlock_wallet(wallet, "hunter2", 60)
    wallet.close()
    again = Wallet("w", WalletDB(tmp_path / "w.dat"), P, keypool=5, clock=clock)
    try:
        unlock_wallet(again, "correct horse", 60)
        assert not again.is_locked
        with pytest.raises(BadCryptParameter):
            change_passphrase(again, "correct horse", "", os.urandom)
    finally:
        again.close()


def test_refusals_with_cores_texts(tmp_path: Path) -> None:
    clock = Clock()
    plain = make(tmp_path, clock)
    for call, name in (
        (lambda: unlock_wallet(plain, "x", 1), "walletpassphrase"),
        (lambda: lock_wallet(plain), "walletlock"),
        (lambda: change_passphrase(plain, "x", "y", os.urandom), "walletpassphrasechange"),
    ):
        with pytest.raises(WrongEncryptionState) as err:
            call()
        assert err.value.rpc_code == -15
        assert (
            str(err.value) == f"Error: running with an unencrypted wallet, but {name} was called."
        )
    with pytest.raises(BadCryptParameter, match=r"^passphrase cannot be empty$"):
        encrypt_wallet(plain, "", os.urandom, log2_n=LOG2_N)
    encrypt(plain)
    with pytest.raises(
        WrongEncryptionState,
        match=r"^Error: running with an encrypted wallet, but encryptwallet was called.$",
    ):
        encrypt(plain)
    watch = Wallet.create(
        "v", tmp_path / "v.dat", P, disable_private_keys=True, keypool=5, clock=clock
    )
    with pytest.raises(EncryptionFailed) as failed:
        encrypt(watch)
    assert (failed.value.rpc_code, str(failed.value)) == (
        -16, "Error: wallet does not contain private keys, nothing to encrypt."
    )  # fmt: skip
    assert not watch.is_crypted


def test_blank_wallet_gets_no_new_seed(tmp_path: Path) -> None:
    wallet = make(tmp_path, Clock(), blank=True)
    encrypt(wallet)
    assert wallet.is_crypted and wallet.keys.rows == {}
    unlock_wallet(wallet, "hunter2", 60)
    with pytest.raises(WalletError, match=r"^Error: This wallet has no available keys \(bech32\)$"):
        wallet.get_new_address()


def test_import_private_keys_needs_unlock(tmp_path: Path) -> None:
    wallet = make(tmp_path, Clock(), blank=True)
    encrypt(wallet)
    text = add_checksum(f"wpkh({TPRV}/0/*)")
    with pytest.raises(WalletLocked):
        wallet.import_descriptor(text, timestamp=0, active=True)
    assert wallet.keys.rows == {}
    public = parse_one(text, P).to_string()
    assert wallet.import_descriptor(public, timestamp=0) == [
        "Not all private keys provided. Some wallet functionality may return unexpected errors"
    ]  # public descriptors import while locked
    unlock_wallet(wallet, "hunter2", 60)
    assert wallet.import_descriptor(text, timestamp=0, active=True) == []
    lock_wallet(wallet)
    [row] = wallet.keys.rows.values()
    assert "tprv" not in row.descriptor and row.id in wallet.keys.sealed
    address = wallet.get_new_address()
    unlock_wallet(wallet, "hunter2", 60)
    expected = parse_one(text, P).expand(0).secrets
    pub = first_pubkey(wallet, address)
    assert wallet.signing_keys()(pub) == expected[pub]
    assert wallet.private_descriptor(row.id).to_string(private=True) == parse_one(
        text, P
    ).to_string(private=True)


def test_hardened_range_runs_out_while_locked(tmp_path: Path) -> None:
    wallet = make(tmp_path, Clock(), blank=True)
    encrypt(wallet)
    unlock_wallet(wallet, "hunter2", 60)
    wallet.import_descriptor(add_checksum(f"wpkh({TPRV}/0h/*h)"), timestamp=0, active=True)
    lock_wallet(wallet)
    got = [wallet.get_new_address() for _ in range(5)]  # the 5 derived while unlocked
    assert len(set(got)) == 5
    with pytest.raises(
        WalletError, match=r"^Error: Keypool ran out, please call keypoolrefill first$"
    ):
        wallet.get_new_address()
    unlock_wallet(wallet, "hunter2", 60)  # tops up (Core's TopUpKeyPool after Unlock)
    lock_wallet(wallet)
    assert wallet.get_new_address() not in got


def test_createwallet_with_passphrase_never_writes_plaintext(tmp_path: Path) -> None:
    from peercash.wallet.manager import WalletManager

    wallets = WalletManager(tmp_path / "wallets", P, None, keypool=5, entropy=os.urandom)
    wallet = wallets.create("e", encrypt_passphrase="pw")
    try:
        assert wallet.is_crypted and wallet.is_locked
        assert not wallet.flags["blank"]
        assert len(wallet.keys.rows) == 8
        assert b"prv" not in file_bytes(wallet.db.path)
        assert wallet.get_new_address().startswith("bcrt1q")
        with pytest.raises(
            WalletError, match=r"^Passphrase provided but private keys are disabled"
        ):
            wallets.create("f", disable_private_keys=True, encrypt_passphrase="pw")
    finally:
        wallets.close_all()


def test_sealed_keys_are_bound_to_their_owner() -> None:
    master = MasterKey(bytes(range(32)))
    desc = parse_one(f"wpkh({TPRV}/0/*)", P)
    secrets = key_secrets(desc, P)
    assert list(secrets.values()) == [TPRV]
    blob = seal_secrets("a" * 64, secrets, master)
    assert open_secrets("a" * 64, blob, master) == secrets
    with pytest.raises(DecryptionError):
        open_secrets("b" * 64, blob, master)  # moved to another descriptor
    with pytest.raises(DecryptionError):
        open_secrets("a" * 64, blob, MasterKey(bytes(32)))
    public = parse_one(desc.to_string(), P)
    assert with_secrets(public, secrets, P).to_string(private=True) == desc.to_string(private=True)


def test_relock_timer_drops_the_key(tmp_path: Path) -> None:
    import time

    wallet = Wallet.create("w", tmp_path / "w.dat", P, entropy=bytes(32), keypool=5)
    encrypt(wallet)
    unlock_wallet(wallet, "hunter2", 0.3)
    state = wallet.crypto._state
    assert state.unlocked_until > 0
    deadline = time.monotonic() + 5
    while state.unlocked_until != 0:  # read without the lazy check: only the timer relocks
        assert time.monotonic() < deadline, "the relock timer did not fire"
        time.sleep(0.05)
    assert wallet.is_locked
    unlock_wallet(wallet, "hunter2", 60)
    lock_wallet(wallet)
    assert wallet.crypto._timer is None  # walletlock cancels the pending relock
    wallet.close()


def test_failed_encryption_rolls_back(tmp_path: Path) -> None:
    wallet = make(tmp_path, Clock())
    digest = key_tables(tmp_path / "w.dat")
    calls: list[int] = []

    def rng(n: int) -> bytes:
        calls.append(n)
        if len(calls) == 4:  # master key, salt, nonce, then the new seed: fail there
            raise OSError("no entropy")
        return os.urandom(n)

    with pytest.raises(OSError, match=r"^no entropy$"):
        encrypt_wallet(wallet, "pw", rng, log2_n=LOG2_N)
    assert calls == [32, 16, 12, 32]
    assert not wallet.is_crypted and not wallet.keys.sealed
    assert key_tables(tmp_path / "w.dat") == digest
    assert wallet.signing_keys()(b"\x02" * 33) is None  # usable, unencrypted
    assert all(wallet.keys.descs[i].has_private_keys for i in wallet.keys.rows)
