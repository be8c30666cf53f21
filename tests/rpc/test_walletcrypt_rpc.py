"""The encryption RPCs in process (``walletcrypt``): encryptwallet's text, walletpassphrase /
walletlock / walletpassphrasechange with Core's codes, relock on a fake clock through
``getwalletinfo``'s ``unlocked_until``, and what a locked wallet refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peercash.consensus.params import get_params
from peercash.rpc import methods  # noqa: F401  (registers the methods)
from peercash.wallet.descriptor import add_checksum
from peercash.wallet.manager import WalletManager

from ..wallet.chainsim import SimNode
from .test_wallet_rpc import Services, rpc_caller

P = get_params("regtest")
LOCKED = ("error", -13, "Error: Please enter the wallet passphrase with walletpassphrase first.")
WRONG = ("error", -14, "Error: The wallet passphrase entered was incorrect.")
TPRV = "tprv8ZgxMBicQKsPeDgjzdC36fs6bMjGApWDNLR9erAXMs5skhMv36j9MV5ecvfavji5khqjWaWSFhN3YcCUUdiKH6isR4Pwy3U5y5egddBr16m"


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rpc(tmp_path: Path) -> Any:
    clock = Clock()
    wallets = WalletManager(tmp_path / "wallets", P, SimNode(P), keypool=5, clock=clock)
    call = rpc_caller(Services(wallets))
    call.clock = clock  # type: ignore[attr-defined]
    call.wallets = wallets  # type: ignore[attr-defined]
    yield call
    wallets.close_all()


def test_encrypt_unlock_lock_relock(rpc: Any) -> None:
    clock = rpc.clock
    assert rpc("createwallet", "w") == {"name": "w"}
    assert "unlocked_until" not in rpc("getwalletinfo")
    for method, args in (("walletpassphrase", ("x", 1)), ("walletlock", ()),
                         ("walletpassphrasechange", ("x", "y"))):  # fmt: skip
        assert rpc(method, *args) == (
            "error", -15, f"Error: running with an unencrypted wallet, but {method} was called."
        )  # fmt: skip
    assert rpc("encryptwallet", "") == ("error", -8, "passphrase cannot be empty")
    before = rpc("getnewaddress")
    assert rpc("encryptwallet", "hunter2") == (
        "wallet encrypted; The keypool has been flushed and a new HD seed was generated. "
        "You need to make a new backup with the backupwallet RPC."
    )
    assert rpc("encryptwallet", "hunter2") == (
        "error", -15, "Error: running with an encrypted wallet, but encryptwallet was called."
    )  # fmt: skip
    info = rpc("getwalletinfo")
    assert info["unlocked_until"] == 0
    assert list(info).index("unlocked_until") == list(info).index("keypoolsize_hd_internal") + 1
    assert rpc("listdescriptors", True) == LOCKED
    public = rpc("listdescriptors")["descriptors"]
    assert len(public) == 16 and all("tprv" not in d["desc"] for d in public)
    assert rpc("getnewaddress") not in (before, LOCKED)  # derivation works locked
    assert rpc("walletpassphrase", "wrong", 60) == WRONG
    assert rpc("walletpassphrase", "hunter2", -1) == ("error", -8, "Timeout cannot be negative.")
    assert rpc("walletpassphrase", "hunter2", 60) is None
    assert rpc("getwalletinfo")["unlocked_until"] == int(clock.now) + 60
    private = rpc("listdescriptors", True)["descriptors"]
    assert len(private) == 16 and all("tprv" in d["desc"] for d in private)
    clock.now += 60
    assert rpc("getwalletinfo")["unlocked_until"] == 0  # relocked by itself
    assert rpc("listdescriptors", True) == LOCKED
    assert rpc("walletpassphrase", "hunter2", 10**10) is None
    assert rpc("getwalletinfo")["unlocked_until"] == int(clock.now) + 100_000_000
    assert rpc("walletlock") is None
    assert rpc("listdescriptors", True) == LOCKED
    assert rpc("walletpassphrasechange", "wrong", "new") == WRONG
    assert rpc("walletpassphrasechange", "hunter2", "") == (
        "error",
        -8,
        "passphrase cannot be empty",
    )
    assert rpc("walletpassphrasechange", "hunter2", "new") is None
    assert rpc("walletpassphrase", "hunter2", 60) == WRONG
    assert rpc("walletpassphrase", "new", 60) is None
    wallet = rpc.wallets.get("w")
    assert wallet.signing_keys() is not None
    assert rpc("walletlock") is None
    with pytest.raises(ValueError, match="walletpassphrase first"):
        wallet.signing_keys()


def test_createwallet_encrypted_and_imports(rpc: Any) -> None:
    assert rpc("createwallet", "e", False, False, "pw") == {"name": "e"}
    assert rpc("getwalletinfo")["unlocked_until"] == 0
    assert rpc("createwallet", "v", True, False, "pw") == (
        "error",
        -4,
        "Passphrase provided but private keys are disabled. A passphrase is only used to "
        "encrypt private keys, so cannot be used for wallets with private keys disabled.",
    )
    assert rpc("createwallet", "b", True) == {"name": "b"}
    assert rpc("encryptwallet", "pw", wallet="b") == (
        "error", -16, "Error: wallet does not contain private keys, nothing to encrypt."
    )  # fmt: skip
    request = {"desc": add_checksum(f"wpkh({TPRV}/7/*)"), "timestamp": "now"}
    assert rpc("importdescriptors", [request], wallet="e") == LOCKED  # the whole call
    assert rpc("walletpassphrase", "pw", 30, wallet="e") is None
    [result] = rpc("importdescriptors", [request], wallet="e")
    assert result == {"success": True}
    assert rpc("walletlock", wallet="e") is None
    texts = [d["desc"] for d in rpc("listdescriptors", wallet="e")["descriptors"]]
    assert len(texts) == 9 and all("tprv" not in t for t in texts)
