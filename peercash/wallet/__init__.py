"""The wallet: keys (BIP32/BIP39), output descriptors, storage, following the chain, coin
selection and encryption at rest; (later) PSBT and signing.

Modules: ``db`` (one SQLite file per wallet: schema, migrations, atomic batches, backup),
``hdsetup`` (Core's default descriptors of a new wallet), ``keyman`` (descriptors, derived
scripts, keypool/gap limit), ``txrecord`` (a wallet transaction and its state), ``wallet``
(``Wallet``: one wallet following the chain, balances, coins), ``manager`` (``WalletManager``:
the loaded wallets, the wallet directory, load on startup), ``interfaces`` (``NodeClient``: all
the wallet sees of the node), ``coinselection`` (Core's algorithms and waste metric),
``crypter`` (the master key and encrypted secrets).

Spending: ``feepolicy`` (the fee options, Core's ``GetMinimumFeeRate``), ``spend`` (Core's
``CreateTransaction``/``CommitTransaction``, resubmission), ``feebumper`` (``bumpfee``); errors
``spend.SpendError``/``FundsError`` and ``feebumper.BumpError`` are ``WalletError`` s.

Layer 3. It may use consensus, chain, mempool, mining and p2p, never rpc, explorer or node; the
node reaches it only through narrow interfaces wired in ``node.py``.

The key and descriptor modules (``bip32``, ``bip39``, ``descriptor``) are pure, like consensus
code: no I/O beyond reading the vendored BIP39 word list once, no clock, no randomness (callers
pass entropy in). An import-linter contract keeps sockets, asyncio, time, sqlite3 and the upper
layers out of them.

``coinselection`` and ``crypter`` are pure too: the caller injects randomness (a ``random.Random``
for coin selection, an ``rng(n) -> bytes`` for keys and salts) and the clock (timed unlock).

Error contract: each module raises one family rooted at ``ValueError``: ``bip32.Bip32Error``,
``bip39.MnemonicError``, ``descriptor.DescriptorError``, ``coinselection.CoinSelectionError``,
``crypter.CrypterError``, ``db.WalletDBError``, ``keyman.KeyManError`` and
``wallet.WalletError`` (with ``manager``'s subclasses).

Concurrency: the key and descriptor objects are immutable; any thread may share them. A
``Wallet`` is used under its own ``lock`` (its public methods take it; it also guards a
``crypter.UnlockState``); the node delivers chain notifications on one thread of its own.
"""
