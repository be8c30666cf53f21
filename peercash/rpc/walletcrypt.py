"""Wallet encryption RPCs (Core's ``wallet/rpc/encrypt.cpp``): ``encryptwallet``,
``walletpassphrase``, ``walletlock``, ``walletpassphrasechange``.

Layer 4. The work is ``peercash.wallet.encryption``; its errors carry Core's codes (-13, -14,
-15, -16, -8), which ``walletutil.rpc_error`` passes through. The unlock timeout runs on the
wallet's clock: the wallet relocks itself at the first use after it.
"""

from __future__ import annotations

from typing import Any

from peercash.wallet.encryption import (
    ENCRYPTED_TEXT,
    change_passphrase,
    encrypt_wallet,
    lock_wallet,
    unlock_wallet,
)

from .registry import Param, rpc_method
from .walletutil import manager, request_wallet, wallet_errors

CAT = "wallet"


@rpc_method(
    "encryptwallet",
    CAT,
    [Param("passphrase", str, help="The pass phrase to encrypt the wallet with")],
    result_help="string: further instructions",
    lock=False,
)
@wallet_errors
def encryptwallet(node: Any, passphrase: str) -> str:
    """Encrypts the wallet with 'passphrase'. This is for first time encryption; the wallet
    is then locked and gets a new HD seed."""
    wallet = request_wallet(node)
    encrypt_wallet(wallet, passphrase, manager(node).entropy)
    return ENCRYPTED_TEXT


@rpc_method(
    "walletpassphrase",
    CAT,
    [Param("passphrase", str, help="The wallet passphrase"),
     Param("timeout", int, help="Seconds to keep the key; capped at 100000000 (~3 years)")],
    lock=False,
)  # fmt: skip
@wallet_errors
def walletpassphrase(node: Any, passphrase: str, timeout: int) -> None:
    """Stores the wallet decryption key in memory for 'timeout' seconds."""
    unlock_wallet(request_wallet(node), passphrase, timeout)
    return None


@rpc_method("walletlock", CAT, lock=False)
@wallet_errors
def walletlock(node: Any) -> None:
    """Removes the wallet encryption key from memory, locking the wallet."""
    lock_wallet(request_wallet(node))
    return None


@rpc_method(
    "walletpassphrasechange",
    CAT,
    [Param("oldpassphrase", str, help="The current passphrase"),
     Param("newpassphrase", str, help="The new passphrase")],
    lock=False,
)  # fmt: skip
@wallet_errors
def walletpassphrasechange(node: Any, oldpassphrase: str, newpassphrase: str) -> None:
    """Changes the wallet passphrase from 'oldpassphrase' to 'newpassphrase'."""
    change_passphrase(request_wallet(node), oldpassphrase, newpassphrase, manager(node).entropy)
    return None
