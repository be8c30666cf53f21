"""The wallet: keys (BIP32/BIP39), output descriptors, coin selection, encryption at rest, and
(later) storage and PSBT.

Layer 3. It may use consensus, chain, mempool, mining and p2p, never rpc, explorer or node; the
node reaches it only through narrow interfaces wired in ``node.py``.

The key and descriptor modules (``bip32``, ``bip39``, ``descriptor``) are pure, like consensus
code: no I/O beyond reading the vendored BIP39 word list once, no clock, no randomness (callers
pass entropy in). An import-linter contract keeps sockets, asyncio, time, sqlite3 and the upper
layers out of them.

``coinselection`` and ``crypter`` are pure too: the caller injects randomness (a ``random.Random``
for coin selection, an ``rng(n) -> bytes`` for keys and salts) and the clock (timed unlock).

Error contract: each module raises one family rooted at ``ValueError``: ``bip32.Bip32Error``,
``bip39.MnemonicError``, ``descriptor.DescriptorError``, ``coinselection.CoinSelectionError`` and
``crypter.CrypterError``.

Concurrency: every object here is immutable and may be shared by any thread, except
``crypter.UnlockState``, which the wallet guards with its lock.
"""
