"""The wallet: keys (BIP32/BIP39), output descriptors, and (later) storage, coin selection, PSBT.

Layer 3. It may use consensus, chain, mempool, mining and p2p, never rpc, explorer or node; the
node reaches it only through narrow interfaces wired in ``node.py``.

The key and descriptor modules (``bip32``, ``bip39``, ``descriptor``) are pure, like consensus
code: no I/O beyond reading the vendored BIP39 word list once, no clock, no randomness (callers
pass entropy in). An import-linter contract keeps sockets, asyncio, time, sqlite3 and the upper
layers out of them.

Error contract: each module raises one family rooted at ``ValueError``: ``bip32.Bip32Error``,
``bip39.MnemonicError`` and ``descriptor.DescriptorError``.

Concurrency: every object here is immutable; any thread may share them.
"""
