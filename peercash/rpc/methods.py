"""Every RPC method group of this package: importing this module registers their methods.

Layer 4. The server imports ``peercash.rpc.methods`` (and its own control module); each group
registers its functions in ``registry.REGISTRY`` when imported.
"""

from __future__ import annotations

from . import (
    blockchain,
    blocktemplate,
    fees,
    mempool,
    mining,
    net,
    psbt,
    rawtransactions,
    util,
    wallet,
    walletcrypt,
    walletpsbt,
    walletspend,
    wallettx,
)

__all__ = [
    "blockchain",
    "blocktemplate",
    "fees",
    "mempool",
    "mining",
    "net",
    "psbt",
    "rawtransactions",
    "util",
    "wallet",
    "walletcrypt",
    "walletpsbt",
    "walletspend",
    "wallettx",
]
