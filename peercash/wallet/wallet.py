"""``Wallet``: one descriptor wallet file, its keys, its transactions, and following the chain.

Layer 3 (wallet). Core's ``CWallet``: ``block_connected``/``block_disconnected`` and
``transaction_added``/``transaction_removed`` (``ChainListener``) keep every transaction that
pays one of our scripts or spends one of our coins (``AddToWalletIfInvolvingMe``) with its
state; a wallet loaded behind the node's tip catches up from its stored locator
(``attach_chain``, Core's ``AttachChain``); ``rescan`` reads blocks again.

Each event and each change is one ``WalletDB.batch``. Spending, signing and coin selection plug
in later: ``signer`` and ``coin_selector`` are their seams. Encryption is ``crypto``
(``encryption.WalletCrypto``); ``signing_keys()`` is where signers get private keys.

Error contract: ``WalletError`` (a ``ValueError``; subclasses ``InvalidParameter``,
``InvalidAddress``) with Core's messages. Concurrency: every public method takes ``lock``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import Block, OutPoint, Tx, TxOut

from .bip32 import ExtendedKey
from .crypter import MasterKey
from .db import WalletDB
from .descriptor import Descriptor, DescriptorError, parse_descriptor
from .encryption import WalletCrypto
from .feepolicy import FeePolicy
from .hdsetup import default_descriptors, master_from_mnemonic
from .interfaces import NodeClient
from .keyman import DEFAULT_KEYPOOL_SIZE, KeyManager, KeyManError, ScriptInfo
from .txrecord import ABANDONED, CONFIRMED, CONFLICTED, INACTIVE, MEMPOOL, WalletTx

FLAGS = ("avoid_reuse", "blank", "descriptors", "disable_private_keys")
LOCATOR_DEPTH = 12
TIMESTAMP_WINDOW = 2 * 60 * 60  # Core: a key's birth time may precede its first block by this
RESCAN_BATCH = 100  # blocks a rescan writes in one database transaction (commits dominate)


def flags_for(blank: bool, disable_private_keys: bool, avoid_reuse: bool) -> dict[str, bool]:
    return {
        "avoid_reuse": avoid_reuse,
        "blank": blank,
        "descriptors": True,
        "disable_private_keys": disable_private_keys,
    }


class WalletError(ValueError):
    """A wallet operation refused (Core's RPC_WALLET_ERROR, -4)."""


class InvalidParameter(WalletError):
    """Core's RPC_INVALID_PARAMETER (-8)."""


class InvalidAddress(WalletError):
    """Core's RPC_INVALID_ADDRESS_OR_KEY (-5)."""


@dataclass(frozen=True, slots=True)
class Balance:
    trusted: int
    untrusted_pending: int
    immature: int
    used: int = 0


@dataclass(frozen=True, slots=True)
class Coin:
    """An unspent output of ours."""

    outpoint: OutPoint
    txout: TxOut
    depth: int
    safe: bool
    info: ScriptInfo
    wtx: WalletTx


class Wallet:
    """One loaded wallet."""

    def __init__(
        self,
        name: str,
        db: WalletDB,
        params: NetworkParams,
        *,
        keypool: int = DEFAULT_KEYPOOL_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.db = db
        self.params = params
        self.clock = clock
        self.lock = threading.RLock()
        self.node: NodeClient | None = None
        self.keypool = keypool
        self.keys = KeyManager(db, params, keypool)
        self.txs: dict[bytes, WalletTx] = {}
        self.spends: dict[OutPoint, set[bytes]] = {}
        self.address_book: dict[str, tuple[str, str]] = {}
        self.locator: list[tuple[int, bytes]] = []
        self._load_state(keys=False)
        self.locked: set[OutPoint] = {OutPoint(t, v) for t, v in db.locked_coins()}
        self.flags: dict[str, bool] = json.loads(db.get_setting("flags") or "{}")
        self.crypto = WalletCrypto(db, clock, self.lock)
        self.signer: object | None = None  # seam: the signer (psbt/signer.py) plugs in here
        self.coin_selector: object | None = None  # seam: coin selection plugs in here
        self.fee_policy = FeePolicy()  # the node's fee options and settxfee (spend.py)

    def _load_state(self, keys: bool = True) -> None:
        """(Re)read what the file holds: after a failed batch, memory follows the file."""
        if keys:
            self.keys = KeyManager(self.db, self.params, self.keypool)
        self.txs, self.spends = {}, {}
        for row in self.db.transactions():
            self._index(WalletTx.from_row(row))
        self.address_book = self.db.address_book()
        self.locator = [
            (h, bytes.fromhex(x)) for h, x in json.loads(self.db.get_setting("locator") or "[]")
        ]

    @contextmanager
    def _change(self) -> Iterator[None]:
        """One atomic change: the wallet's lock and one batch; on failure the batch rolls back
        and the in-memory state is read again from the file."""
        with self.lock:
            try:
                with self.db.batch():
                    yield
            except BaseException:
                if not self.db.in_batch:
                    self._load_state()
                raise

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        path: Path,
        params: NetworkParams,
        *,
        entropy: bytes | None = None,
        mnemonic: str | None = None,
        passphrase: str = "",
        blank: bool = False,
        disable_private_keys: bool = False,
        avoid_reuse: bool = False,
        keypool: int = DEFAULT_KEYPOOL_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> Wallet:
        """A new wallet file at ``path``: default descriptors from ``entropy`` (a BIP32 seed)
        or from a BIP39 ``mnemonic`` + ``passphrase``, unless blank or watch-only."""
        if path.exists():
            raise WalletError(
                f"Failed to create database path '{path.parent}'. Database already exists."
            )
        db = WalletDB(path, create=True)
        try:
            wallet = cls(name, db, params, keypool=keypool, clock=clock)
            wallet._setup(
                flags_for(blank, disable_private_keys, avoid_reuse), entropy, mnemonic, passphrase
            )
        except BaseException:
            db.close()
            for leftover in (
                path,
                path.with_name(path.name + "-wal"),
                path.with_name(path.name + "-shm"),
            ):
                leftover.unlink(missing_ok=True)
            raise
        return wallet

    def _setup(
        self, flags: dict[str, bool], entropy: bytes | None, mnemonic: str | None, passphrase: str
    ) -> None:
        wallet, db = self, self.db
        blank, disable_private_keys = flags["blank"], flags["disable_private_keys"]
        with db.batch():
            wallet.flags = flags
            db.set_setting("flags", json.dumps(flags, sort_keys=True))
            if not blank and not disable_private_keys:
                if mnemonic is not None:
                    master = master_from_mnemonic(mnemonic, passphrase)
                elif entropy is not None:
                    master = ExtendedKey.from_seed(entropy)
                else:
                    raise WalletError("a new wallet needs entropy or a mnemonic")
                wallet._add_default_descriptors(master, None)

    def _add_default_descriptors(self, seed: ExtendedKey, crypt: MasterKey | None) -> None:
        """Core's ``SetupDescriptorScriptPubKeyMans``: the active defaults of ``seed``, their
        private keys sealed under ``crypt`` when the wallet is encrypted."""
        now = int(self.clock())
        for d in default_descriptors(seed, self.params):
            desc = parse_descriptor(d.text, self.params)[0]
            self.keys.add(desc, timestamp=now, active=True, internal=d.internal, master=crypt)

    def _set_flag(self, flag: str, value: bool) -> None:
        self.flags[flag] = value
        self.db.set_setting("flags", json.dumps(self.flags, sort_keys=True))

    # -- node attachment ------------------------------------------------------------------

    def attach(self, node: NodeClient, *, rescan_from: int | None = None) -> None:
        """Follow ``node``: catch up from the stored locator (or ``rescan_from``), subscribe."""
        with self.lock:
            self.node = node
            # Subscribe first: a block that connects meanwhile waits for this lock, then is
            # seen again (harmless), instead of being missed.
            node.subscribe(self)
            height, _ = node.tip()
            start = rescan_from
            if start is None:
                if not self.locator:
                    self._set_tip(height)  # a new wallet starts at the tip
                else:
                    start = self._fork_height(node) + 1
            if start is not None and start <= height:
                self.rescan(start, None, advance=True)

    def _fork_height(self, node: NodeClient) -> int:
        """The highest locator entry still on the active chain; txs above it lose their block."""
        fork = -1
        for h, block_hash in self.locator:
            if node.block_hash(h) == block_hash:
                fork = h
                break
        with self._change():
            for wtx in self.txs.values():
                height = wtx.block_height if wtx.state == CONFIRMED else wtx.conflict_height
                if wtx.state in (CONFIRMED, CONFLICTED) and (height or 0) > fork:
                    wtx.set_unconfirmed(INACTIVE)
                    self._save(wtx)
        return fork

    @property
    def last_height(self) -> int:
        return self.locator[0][0] if self.locator else -1

    def _set_tip(self, height: int) -> None:
        node = self.node
        assert node is not None
        entries: list[tuple[int, bytes]] = []
        step, h = 1, height
        while h >= 0 and len(entries) < LOCATOR_DEPTH:
            block_hash = node.block_hash(h)
            if block_hash is not None:
                entries.append((h, block_hash))
            if len(entries) > 6:
                step *= 2
            h -= step
        self._store_locator(entries)

    def _store_locator(self, entries: list[tuple[int, bytes]]) -> None:
        self.locator = entries
        with self._change():
            self.db.set_setting("locator", json.dumps([(h, x.hex()) for h, x in entries]))

    def close(self) -> None:
        with self.lock:
            if self.node is not None:
                self.node.unsubscribe(self)
                self.node = None
            self.crypto.lock()
            self.db.close()

    # -- following the chain (ChainListener) ----------------------------------------------

    def block_connected(self, block: Block, height: int) -> None:
        with self._change():
            self._scan_block(block, height)
            if height > self.last_height:
                self.locator = [(height, block.header.hash), *self.locator][:LOCATOR_DEPTH]
                self._store_locator(self.locator)

    def block_disconnected(self, block: Block, height: int) -> None:
        block_hash = block.header.hash
        with self._change():
            for wtx in self.txs.values():
                if (wtx.state == CONFIRMED and wtx.block_hash == block_hash) or (
                    wtx.state == CONFLICTED and wtx.conflict_hash == block_hash
                ):
                    wtx.set_unconfirmed(INACTIVE)
                    self._save(wtx)
            rest = [(h, x) for h, x in self.locator if h < height]
            self._store_locator([(height - 1, block.header.prev_hash), *rest][:LOCATOR_DEPTH])

    def transaction_added(self, tx: Tx) -> None:
        with self._change():
            wtx = self.txs.get(tx.txid)
            if wtx is not None:
                if wtx.state in (INACTIVE, ABANDONED):
                    wtx.set_unconfirmed(MEMPOOL)
                    self._save(wtx)
                return
            self._add_if_mine(tx, None, None, rescan=False)

    def transaction_removed(self, tx: Tx, reason: str) -> None:
        with self._change():
            wtx = self.txs.get(tx.txid)
            if wtx is not None and wtx.state == MEMPOOL:
                wtx.set_unconfirmed(INACTIVE)
                self._save(wtx)

    def _scan_block(self, block: Block, height: int, rescan: bool = False) -> None:
        block_hash = block.header.hash
        for pos, tx in enumerate(block.txs):
            self._add_if_mine(tx, (block_hash, height, pos, block.header.time), None, rescan=rescan)
            if not tx.is_coinbase():
                self._mark_conflicts(tx, block_hash, height)

    def _add_if_mine(
        self,
        tx: Tx,
        block: tuple[bytes, int, int, int] | None,
        _unused: None,
        *,
        rescan: bool,
    ) -> WalletTx | None:
        wtx = self.txs.get(tx.txid)
        if wtx is None:
            mine = [out for out in tx.outputs if self.keys.is_mine(out.script_pubkey)]
            from_me = any(self._spent_output(i.prevout) is not None for i in tx.inputs)
            if not mine and not from_me:
                return None
            now = int(self.clock())
            smart = block[3] if (block is not None and rescan) else now
            wtx = WalletTx(tx, MEMPOOL, now, smart, len(self.txs))
            self._index(wtx)
        for out in tx.outputs:
            self.keys.mark_used(out.script_pubkey)
        if block is not None:
            wtx.set_confirmed(*block)
        elif wtx.state not in (CONFIRMED, CONFLICTED):
            wtx.set_unconfirmed(MEMPOOL)
        self._save(wtx)
        return wtx

    def _mark_conflicts(self, tx: Tx, block_hash: bytes, height: int) -> None:
        """Wallet txs spending a coin this confirmed tx spends are conflicted, with children."""
        todo = [
            other for i in tx.inputs for other in self.spends.get(i.prevout, ()) if other != tx.txid
        ]
        while todo:
            wtx = self.txs[todo.pop()]
            if wtx.state == CONFLICTED:
                continue
            wtx.set_unconfirmed(CONFLICTED)
            wtx.conflict_hash, wtx.conflict_height = block_hash, height
            self._save(wtx)
            todo.extend(self._children(wtx.tx))

    def _children(self, tx: Tx) -> Iterable[bytes]:
        for n in range(len(tx.outputs)):
            yield from self.spends.get(OutPoint(tx.txid, n), ())

    def _index(self, wtx: WalletTx) -> None:
        self.txs[wtx.tx.txid] = wtx
        if not wtx.tx.is_coinbase():
            for i in wtx.tx.inputs:
                self.spends.setdefault(i.prevout, set()).add(wtx.tx.txid)

    def _save(self, wtx: WalletTx) -> None:
        self.db.put_transaction(wtx.to_row())

    def rescan(self, start: int, stop: int | None, *, advance: bool = False) -> tuple[int, int]:
        """Read blocks ``start``..``stop`` (default: the tip) again; (first, last) scanned."""
        node = self.node
        if node is None:
            raise WalletError("Wallet is not attached to a chain")
        with self.lock:
            tip, _ = node.tip()
            if start < 0 or start > tip:
                raise InvalidParameter("Invalid start_height")
            if stop is not None and (stop < 0 or stop > tip):
                raise InvalidParameter("Invalid stop_height")
            if stop is not None and stop < start:
                raise InvalidParameter("stop_height must be greater than start_height")
            last = tip if stop is None else stop
            for first in range(start, last + 1, RESCAN_BATCH):
                with self._change():  # one database transaction per RESCAN_BATCH blocks
                    for height in range(first, min(first + RESCAN_BATCH, last + 1)):
                        block = node.read_block(height)
                        if block is None:
                            raise WalletError(f"Rescan failed: block {height} not found")
                        self._scan_block(block, height, rescan=True)
            if advance or last > self.last_height:
                self._set_tip(last)
            return start, last

    # -- coins and balances ---------------------------------------------------------------

    def _spent_output(self, outpoint: OutPoint) -> TxOut | None:
        wtx = self.txs.get(outpoint.txid)
        if wtx is None or outpoint.index >= len(wtx.tx.outputs):
            return None
        out = wtx.tx.outputs[outpoint.index]
        return out if self.keys.is_mine(out.script_pubkey) else None

    def depth(self, wtx: WalletTx) -> int:
        return wtx.depth(self.last_height)

    def is_spent(self, outpoint: OutPoint) -> bool:
        """Core's ``IsSpent``: some wallet tx spending it is not conflicted nor abandoned."""
        for txid in self.spends.get(outpoint, ()):
            spender = self.txs[txid]
            if spender.state != ABANDONED and self.depth(spender) >= 0:
                return True
        return False

    def debit(self, tx: Tx) -> int:
        total = 0
        for i in tx.inputs:
            out = self._spent_output(i.prevout)
            if out is not None:
                total += out.value
        return total

    def credit(self, tx: Tx) -> int:
        return sum(o.value for o in tx.outputs if self.keys.is_mine(o.script_pubkey))

    def is_from_me(self, tx: Tx) -> bool:
        return self.debit(tx) > 0

    def is_trusted(self, wtx: WalletTx, seen: set[bytes] | None = None) -> bool:
        """Core's ``CachedTxIsTrusted``: confirmed, or our own spend in the pool of trusted coins."""
        depth = self.depth(wtx)
        if depth >= 1:
            return True
        if depth < 0 or wtx.state != MEMPOOL:
            return False
        seen = set() if seen is None else seen
        for i in wtx.tx.inputs:
            parent = self.txs.get(i.prevout.txid)
            if parent is None or self._spent_output(i.prevout) is None:
                return False
            if parent.tx.txid in seen:
                continue
            if not self.is_trusted(parent, seen):
                return False
            seen.add(parent.tx.txid)
        return True

    def is_change(self, out: TxOut) -> bool:
        """Core's ``OutputIsChange``: ours, and not in the address book."""
        return self.is_change_script(out.script_pubkey)

    def is_change_script(self, script: bytes) -> bool:
        if not self.keys.is_mine(script):
            return False
        return self._address(script) not in self.address_book

    def conflicts(self, wtx: WalletTx) -> list[bytes]:
        """Other wallet transactions spending a coin ``wtx`` spends (``walletconflicts``)."""
        if wtx.tx.is_coinbase():
            return []
        found = {t for i in wtx.tx.inputs for t in self.spends.get(i.prevout, ())}
        found.discard(wtx.tx.txid)
        return sorted(found)

    def _address(self, script: bytes) -> str | None:
        from peercash.consensus.address import script_to_address

        return script_to_address(script, self.params)

    def _available_credit(self, wtx: WalletTx) -> int:
        if wtx.blocks_to_maturity(self.last_height, self.params.coinbase_maturity) > 0:
            return 0
        total = 0
        for n, out in enumerate(wtx.tx.outputs):
            if self.keys.is_mine(out.script_pubkey) and not self.is_spent(OutPoint(wtx.tx.txid, n)):
                total += out.value
        return total

    def balance(self, min_depth: int = 0) -> Balance:
        """Core's ``GetBalance``."""
        with self.lock:
            trusted = pending = immature = 0
            for wtx in self.txs.values():
                is_trusted = self.is_trusted(wtx)
                depth = self.depth(wtx)
                credit = self._available_credit(wtx)
                if is_trusted and depth >= min_depth:
                    trusted += credit
                if not is_trusted and depth == 0 and wtx.state == MEMPOOL:
                    pending += credit
                if (
                    wtx.blocks_to_maturity(self.last_height, self.params.coinbase_maturity) > 0
                    and depth > 0
                ):
                    immature += self.credit(wtx.tx)
            return Balance(trusted, pending, immature)

    def coins(
        self,
        min_depth: int = 1,
        max_depth: int = 9_999_999,
        *,
        include_unsafe: bool = True,
        include_locked: bool = False,
    ) -> list[Coin]:
        """Core's ``AvailableCoins`` (without the spending filters that come with selection)."""
        with self.lock:
            result = []
            for wtx in self.txs.values():
                depth = self.depth(wtx)
                if depth < 0 or wtx.state == ABANDONED:
                    continue
                if wtx.blocks_to_maturity(self.last_height, self.params.coinbase_maturity) > 0:
                    continue
                if depth == 0 and wtx.state != MEMPOOL:
                    continue
                safe = self.is_trusted(wtx)
                if not safe and not include_unsafe:
                    continue
                if not min_depth <= depth <= max_depth:
                    continue
                for n, out in enumerate(wtx.tx.outputs):
                    info = self.keys.is_mine(out.script_pubkey)
                    outpoint = OutPoint(wtx.tx.txid, n)
                    if info is None or self.is_spent(outpoint):
                        continue
                    if outpoint in self.locked and not include_locked:
                        continue
                    result.append(Coin(outpoint, out, depth, safe, info, wtx))
            return result

    # -- addresses ------------------------------------------------------------------------

    def _check_keys(self) -> None:
        if self.flags.get("disable_private_keys"):
            raise WalletError("Error: Private keys are disabled for this wallet")

    def get_new_address(self, label: str = "", output_type: str = "bech32") -> str:
        with self.lock:
            self._check_keys()
            with self._change():
                try:
                    script, _, _ = self.keys.next_script(output_type, False)
                except KeyManError as e:
                    raise WalletError(str(e)) from None
                address = self._address(script)
                assert address is not None
                self.address_book[address] = (label, "receive")
                self.db.put_address(address, label, "receive")
            return address

    def get_change_address(self, output_type: str = "bech32") -> str:
        with self.lock:
            self._check_keys()
            with self._change():
                try:
                    script, _, _ = self.keys.next_script(output_type, True)
                except KeyManError as e:
                    raise WalletError(str(e)) from None
            address = self._address(script)
            assert address is not None
            return address

    def set_label(self, address: str, label: str) -> None:
        with self._change():
            purpose = self.address_book.get(address, ("", "receive"))[1]
            self.address_book[address] = (label, purpose)
            self.db.put_address(address, label, purpose)

    def descriptor_for(self, info: ScriptInfo) -> Descriptor:
        return self.keys.descriptor_at(info)

    # -- private keys and encryption (see ``encryption``) ---------------------------------

    @property
    def is_crypted(self) -> bool:
        return self.crypto.is_crypted

    @property
    def is_locked(self) -> bool:
        return self.crypto.is_locked()

    def signing_keys(self) -> Callable[[bytes], bytes | None]:
        """Public key (33/65 bytes or x-only) → its 32-byte secret, or None (``fill.WalletKeys``,
        which derives positions lazily); raises ``crypter.WalletLocked`` when the wallet is
        encrypted and locked."""
        from .fill import WalletKeys  # fill imports this module for its types

        with self.lock:
            master = self.crypto.master()
        return WalletKeys(self.keys, master)

    def private_descriptor(self, desc_id: str) -> Descriptor:
        """A descriptor with its private keys (``listdescriptors true``); ``WalletLocked``."""
        with self.lock:
            return self.keys.private_descriptor(desc_id, self.crypto.master())

    # -- other changes --------------------------------------------------------------------

    def lock_coin(self, outpoint: OutPoint, locked: bool, persistent: bool = False) -> None:
        with self._change():
            if locked:
                self.locked.add(outpoint)
            else:
                self.locked.discard(outpoint)
            if persistent or not locked:
                self.db.lock_coin(outpoint.txid, outpoint.index, locked)

    def unlock_all(self) -> None:
        with self._change():
            self.locked.clear()
            self.db.unlock_all()

    def abandon(self, txid: bytes) -> None:
        """Core's ``AbandonTransaction``: an unconfirmed tx not in the pool, and its children."""
        with self.lock:
            wtx = self.txs.get(txid)
            if wtx is None:
                raise InvalidAddress("Invalid or non-wallet transaction id")
            if self.depth(wtx) != 0 or wtx.state == MEMPOOL or wtx.state == ABANDONED:
                raise InvalidAddress("Transaction not eligible for abandonment")
            with self._change():
                todo = [txid]
                while todo:
                    child = self.txs[todo.pop()]
                    if self.depth(child) == 0 and child.state == INACTIVE:
                        child.set_unconfirmed(ABANDONED)
                        self._save(child)
                        todo.extend(self._children(child.tx))

    def info(self) -> dict[str, Any]:
        return {"flags": dict(self.flags), "txcount": len(self.txs)}

    # -- descriptors ----------------------------------------------------------------------

    def import_descriptor(
        self,
        text: str,
        *,
        timestamp: int,
        active: bool = False,
        internal: bool = False,
        range_: tuple[int, int] | None = None,
        next_index: int | None = None,
        label: str | None = None,
    ) -> list[str]:
        """Core's ``ProcessDescriptorImport`` for one request; the warnings. Raises
        ``InvalidParameter`` / ``InvalidAddress`` / ``WalletError`` with Core's messages."""
        with self.lock:
            descs = parse_descriptor(text, self.params, require_checksum=True)
            if len(descs) > 1 and label:
                raise InvalidParameter("Multipath descriptors should not have a label")
            warnings: list[str] = []
            with self._change():
                for n, desc in enumerate(descs):
                    this_internal = internal if len(descs) == 1 else bool(n)
                    warnings += self._import_one(
                        desc, timestamp, active, this_internal, range_, next_index, label
                    )
            return warnings

    def _import_one(
        self,
        desc: Descriptor,
        timestamp: int,
        active: bool,
        internal: bool,
        range_: tuple[int, int] | None,
        next_index: int | None,
        label: str | None,
    ) -> list[str]:
        if not desc.is_range and range_ is not None:
            raise InvalidParameter("Range should not be specified for an un-ranged descriptor")
        if active and not desc.is_range:
            raise InvalidParameter("Active descriptors must be ranged")
        in_range = range_ is None or next_index is None or range_[0] <= next_index <= range_[1]
        if desc.is_range and not in_range:
            raise InvalidParameter("next_index is out of range")
        if label and active:
            raise InvalidParameter("Active descriptors cannot have a label")
        if label and internal:
            raise InvalidParameter("Internal addresses should not have a label")
        if active and desc.to_string().startswith("combo("):
            raise InvalidParameter("Combo descriptors cannot be set to active")
        warnings = []
        if desc.has_private_keys and self.flags.get("disable_private_keys"):
            raise WalletError("Cannot import private keys to a wallet with private keys disabled")
        crypt = self.crypto.master() if desc.has_private_keys else None  # WalletLocked
        if not desc.has_all_private_keys and not self.flags.get("disable_private_keys"):
            warnings.append(
                "Not all private keys provided. Some wallet functionality may return "
                "unexpected errors"
            )
        try:
            self.keys.add(
                desc,
                timestamp=timestamp,
                range_=range_,
                next_index=next_index,
                active=active,
                internal=internal,
                master=crypt,
            )
        except KeyManError as e:
            raise InvalidParameter(str(e)) from None
        if label is not None and not desc.is_range:
            for address in _addresses(desc):
                self.address_book[address] = (label, "receive")
                self.db.put_address(address, label, "receive")
        if self.flags.get("blank") and desc.has_private_keys:
            self._set_flag("blank", False)
        return warnings

    def rescan_since(self, timestamp: int) -> None:
        """Rescan from the first block within ``TIMESTAMP_WINDOW`` of ``timestamp``."""
        if self.node is None:
            return
        start = self.node.first_block_at_or_after(max(0, timestamp - TIMESTAMP_WINDOW))
        if start is not None:
            self.rescan(start, None)


def _addresses(desc: Descriptor) -> list[str]:
    try:
        return desc.addresses(0)
    except DescriptorError:
        return []
