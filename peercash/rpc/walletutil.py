"""What the wallet RPC groups share: finding the request's wallet and Core's error codes.

Layer 4. ``services.wallets`` is the node's ``WalletManager`` (None with ``-disablewallet``);
the wallet a call acts on is the one its URI names (``/wallet/<name>``, see
``jsonrpc.REQUEST_WALLET``) or, on ``/``, the only one loaded. Wallet methods never hold the
chain lock (``lock=False``): they take the wallet's own lock, after waiting for the chain
notifications queued so far (Core's ``BlockUntilSyncedToCurrentChain``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from peercash.wallet.descriptor import DescriptorError
from peercash.wallet.manager import (
    WalletAlreadyLoaded,
    WalletManager,
    WalletNotFound,
    WalletNotSpecified,
)
from peercash.wallet.wallet import InvalidAddress, InvalidParameter, Wallet

from .jsonrpc import REQUEST_WALLET
from .registry import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_METHOD_NOT_FOUND,
    RPC_WALLET_ERROR,
    RPC_WALLET_NOT_FOUND,
    RpcError,
)

RPC_WALLET_NOT_SPECIFIED = -19
RPC_WALLET_ALREADY_LOADED = -35

F = TypeVar("F", bound=Callable[..., Any])


def manager(services: Any) -> WalletManager:
    wallets = getattr(services, "wallets", None)
    if not isinstance(wallets, WalletManager):
        raise RpcError(RPC_METHOD_NOT_FOUND, "Method not found (wallet is disabled)")
    return wallets


def request_wallet(services: Any) -> Wallet:
    """The wallet this request is for, synced with the chain's notifications so far."""
    wallets = manager(services)
    wallet = wallets.get(REQUEST_WALLET.get())
    if wallets.node is not None:
        wallets.node.sync()
    return wallet


def rpc_error(e: Exception) -> RpcError:
    code = getattr(e, "rpc_code", None)  # crypter/encryption errors carry Core's code
    if isinstance(code, int):
        return RpcError(code, str(e))
    if isinstance(e, WalletNotFound):
        return RpcError(RPC_WALLET_NOT_FOUND, str(e))
    if isinstance(e, WalletNotSpecified):
        return RpcError(RPC_WALLET_NOT_SPECIFIED, str(e))
    if isinstance(e, WalletAlreadyLoaded):
        return RpcError(RPC_WALLET_ALREADY_LOADED, str(e))
    if isinstance(e, InvalidParameter):
        return RpcError(RPC_INVALID_PARAMETER, str(e))
    if isinstance(e, InvalidAddress | DescriptorError):
        return RpcError(RPC_INVALID_ADDRESS_OR_KEY, str(e))
    return RpcError(RPC_WALLET_ERROR, str(e))


def wallet_errors(func: F) -> F:
    """Turn the wallet's errors into Core's RPC errors."""

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValueError as e:  # WalletError, KeyManError, DescriptorError, MnemonicError…
            raise rpc_error(e) from None

    return wrapped  # type: ignore[return-value]
