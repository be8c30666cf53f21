"""The wallet's descriptors and the scripts they produce (Core's ``DescriptorScriptPubKeyMan``).

Layer 3 (wallet). Each active ranged descriptor keeps its scripts derived up to
``next_index + keypool`` (the gap limit), so a payment to any of the next ``keypool`` addresses
is recognised; seeing one used moves ``next_index`` past it and derives further (Core's
``MarkUnusedAddresses`` + ``TopUp``), which is how a restored wallet finds every coin.

In an encrypted wallet the descriptors held here are public; their private keys are sealed in
``sealed`` (see ``keysecrets``) and the methods that need them take the unlocked master key
(``crypter.MasterKey``, None for an unencrypted wallet). Unhardened derivation (the default
``/0/*`` and ``/1/*`` below the account xpub) needs no secret, so the keypool tops up while
locked, as Core's descriptor wallets do from their cached xpubs; a hardened range does not.

Writes go to the caller's open ``WalletDB.batch``. Error contract: ``KeyManError`` (a
``ValueError``) with Core's messages; ``DescriptorError`` from parsing; ``crypter.WalletLocked``
when a sealed secret is needed without the master key.
Concurrency: used under the wallet's lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from peercash.consensus.params import NetworkParams

from .crypter import MasterKey, WalletLocked
from .db import DescriptorRow, WalletDB
from .descriptor import BIP32Key, Descriptor, OriginKey, parse_one
from .descriptor.scripts import PKHExpr, SHExpr, TRExpr, WPKHExpr
from .keysecrets import key_secrets, open_secrets, seal_secrets, with_secrets

DEFAULT_KEYPOOL_SIZE = 1000  # Core's -keypool
KEYPOOL_RAN_OUT = "Error: Keypool ran out, please call keypoolrefill first"


class KeyManError(ValueError):
    """A descriptor operation the wallet refuses."""


def descriptor_id(desc: Descriptor) -> str:
    """A stable id: SHA-256 of the public descriptor text (like Core's ``DescriptorID``)."""
    return hashlib.sha256(desc.to_string().encode()).hexdigest()


def output_type_of(desc: Descriptor) -> str | None:
    """Core's ``OutputType`` of a descriptor (None for types ``getnewaddress`` cannot give)."""
    expr = desc.expr
    if isinstance(expr, PKHExpr):
        return "legacy"
    if isinstance(expr, SHExpr) and isinstance(expr.sub, WPKHExpr):
        return "p2sh-segwit"
    if isinstance(expr, WPKHExpr):
        return "bech32"
    if isinstance(expr, TRExpr):
        return "bech32m"
    return None


def needs_secret_to_derive(desc: Descriptor) -> bool:
    """Whether some key of ``desc`` has a hardened step below a key given only as an xpub."""
    for key in desc.expr.all_keys():
        while isinstance(key, OriginKey):
            key = key.inner
        if isinstance(key, BIP32Key) and key.is_hardened and key.root.secret is None:
            return True
    return False


@dataclass(frozen=True, slots=True)
class ScriptInfo:
    """Where one of our scripts comes from."""

    desc_id: str
    position: int


class KeyManager:
    """Every descriptor of one wallet and the map from scriptPubKey to where it comes from."""

    def __init__(self, db: WalletDB, params: NetworkParams, keypool: int) -> None:
        self.db = db
        self.params = params
        self.keypool = keypool
        self.rows: dict[str, DescriptorRow] = {}
        self.descs: dict[str, Descriptor] = {}
        self.scripts: dict[bytes, ScriptInfo] = {}
        self.sealed: dict[str, bytes] = db.encrypted_keys()
        self._pubkeys: dict[bytes, tuple[str, int, int]] = {}  # pubkey -> (desc, key n, pos)
        self._indexed: dict[str, int] = {}  # desc id -> last position in _pubkeys
        for row in db.descriptors():
            self.rows[row.id] = row
            self.descs[row.id] = parse_one(row.descriptor, params)
        for script, desc_id, position in db.scripts():
            self.scripts[script] = ScriptInfo(desc_id, position)

    # -- queries --------------------------------------------------------------------------

    def is_mine(self, script: bytes) -> ScriptInfo | None:
        return self.scripts.get(script)

    def active(self, output_type: str, internal: bool) -> DescriptorRow | None:
        for row in self.rows.values():
            if row.active_type == output_type and row.internal == internal:
                return row
        return None

    def descriptor_at(self, info: ScriptInfo) -> Descriptor:
        return self.descs[info.desc_id]

    def has_private_keys(self) -> bool:
        return bool(self.sealed) or any(d.has_private_keys for d in self.descs.values())

    def private_descriptor(self, desc_id: str, master: MasterKey | None) -> Descriptor:
        """The descriptor with its private keys (sealed ones opened with ``master``)."""
        blob = self.sealed.get(desc_id)
        if blob is None:
            return self.descs[desc_id]
        if master is None:
            raise WalletLocked
        secrets = open_secrets(desc_id, blob, master)
        return with_secrets(self.descs[desc_id], secrets, self.params)

    def secret_for(self, pubkey: bytes, master: MasterKey | None) -> bytes | None:
        """The 32-byte private key of ``pubkey`` (33/65 bytes, or 32-byte x-only) if one of our
        descriptors derives it at a derived position and holds its private key, else None."""
        self._index_pubkeys(master)
        where = self._pubkeys.get(pubkey)
        if where is None:
            return None
        desc_id, n, pos = where
        desc = self.private_descriptor(desc_id, master)
        return list(desc.expr.all_keys())[n].secret(pos)

    def _index_pubkeys(self, master: MasterKey | None) -> None:
        for desc_id, row in self.rows.items():
            if desc_id not in self.sealed and not self.descs[desc_id].has_private_keys:
                continue
            done = self._indexed.get(desc_id, row.range_start - 1)
            if done >= row.range_end:
                continue
            desc = self._deriver(desc_id, master)
            if desc is None:
                continue
            keys = list(desc.expr.all_keys())
            for pos in range(done + 1, row.range_end + 1):
                for n, key in enumerate(keys):
                    pub = key.pubkey(pos)
                    self._pubkeys.setdefault(pub, (desc_id, n, pos))
                    if len(pub) == 33:
                        self._pubkeys.setdefault(pub[1:], (desc_id, n, pos))
            self._indexed[desc_id] = row.range_end

    def _deriver(self, desc_id: str, master: MasterKey | None) -> Descriptor | None:
        """The descriptor that can derive ``desc_id``'s keys now; None when that needs the
        secrets and the wallet is locked."""
        desc = self.descs[desc_id]
        if not needs_secret_to_derive(desc) or desc_id not in self.sealed:
            return desc
        return None if master is None else self.private_descriptor(desc_id, master)

    # -- changes --------------------------------------------------------------------------

    def add(
        self,
        desc: Descriptor,
        *,
        timestamp: int,
        range_: tuple[int, int] | None = None,
        next_index: int | None = None,
        active: bool = False,
        internal: bool = False,
        master: MasterKey | None = None,
    ) -> DescriptorRow:
        """Add (or update) a descriptor and derive its scripts; the stored row. With ``master``
        (an encrypted wallet) its private keys are sealed and the stored text is public."""
        desc_id = descriptor_id(desc)
        old = self.rows.get(desc_id)
        if desc.is_range:
            start, end = range_ if range_ is not None else (0, self.keypool - 1)
            if old is not None:
                start, end = min(start, old.range_start), max(end, old.range_end)
        else:
            start, end = 0, 0
        nxt = next_index if next_index is not None else (old.next_index if old else start)
        active_type = None
        if active:
            active_type = output_type_of(desc)
            if active_type is None:
                raise KeyManError("Cannot make this descriptor active: it has no address type")
            self.db.deactivate(active_type, internal)
            for other_id, row in self.rows.items():
                if row.active_type == active_type and row.internal == internal:
                    self.rows[other_id] = replace(row, active_type=None, internal=None)
        elif old is not None:
            active_type = old.active_type
        text = desc.to_string(private=desc.has_private_keys)
        deriver = desc
        if old is not None and not desc.has_private_keys:
            text = old.descriptor  # keep private keys we already had
            desc = deriver = self.descs[desc_id]
        elif master is not None and desc.has_private_keys:
            secrets = key_secrets(desc, self.params)
            if desc_id in self.sealed:
                secrets = open_secrets(desc_id, self.sealed[desc_id], master) | secrets
            text = desc.to_string()
            desc = parse_one(text, self.params)
            self.sealed[desc_id] = seal_secrets(desc_id, secrets, master)
        row = DescriptorRow(
            desc_id,
            text,
            start,
            end,
            nxt,
            timestamp,
            active_type,
            internal if active_type is not None else None,
        )
        self.rows[desc_id] = row
        self.descs[desc_id] = desc
        self.db.put_descriptor(row)
        if desc_id in self.sealed:
            self.db.set_encrypted_keys(desc_id, self.sealed[desc_id])
        self._derive(desc_id, start, end, deriver)
        if row.active_type is not None:
            self.top_up(desc_id, master, deriver)
        return self.rows[desc_id]

    def encrypt_all(self, master: MasterKey) -> int:
        """Seal the private keys of every descriptor that holds them in its text (Core's
        ``DescriptorScriptPubKeyMan::Encrypt``); the number of descriptors sealed."""
        count = 0
        for desc_id, row in list(self.rows.items()):
            desc = self.descs[desc_id]
            if not desc.has_private_keys:
                continue
            secrets = key_secrets(desc, self.params)
            self.sealed[desc_id] = seal_secrets(desc_id, secrets, master)
            public = desc.to_string()
            self.descs[desc_id] = parse_one(public, self.params)
            self.rows[desc_id] = row = replace(row, descriptor=public)
            self.db.put_descriptor(row)
            self.db.set_encrypted_keys(desc_id, self.sealed[desc_id])
            count += 1
        return count

    def top_up_all(self, master: MasterKey | None) -> None:
        """Top up every active descriptor (after an unlock: the hardened ones too)."""
        for desc_id, row in list(self.rows.items()):
            if row.active_type is not None:
                self.top_up(desc_id, master)

    def _derive(self, desc_id: str, start: int, end: int, desc: Descriptor | None = None) -> None:
        desc = self.descs[desc_id] if desc is None else desc
        for pos in range(start, end + 1):
            for script in desc.script_pubkeys(pos):
                if script not in self.scripts:
                    self.scripts[script] = ScriptInfo(desc_id, pos)
                    self.db.put_script(script, desc_id, pos)

    def top_up(
        self, desc_id: str, master: MasterKey | None = None, desc: Descriptor | None = None
    ) -> None:
        """Derive up to ``next_index + keypool - 1`` (ranged descriptors only; a locked wallet
        skips the ones that need a secret to derive)."""
        row = self.rows[desc_id]
        if not self.descs[desc_id].is_range:
            return
        if desc is None or needs_secret_to_derive(desc):
            desc = self._deriver(desc_id, master)
            if desc is None:
                return
        want = row.next_index + self.keypool - 1
        if want > row.range_end:
            self._derive(desc_id, row.range_end + 1, want, desc)
            row = replace(row, range_end=want)
            self.rows[desc_id] = row
            self.db.put_descriptor(row)

    def next_script(self, output_type: str, internal: bool) -> tuple[bytes, Descriptor, int]:
        """Hand out the next unused script of the active (type, internal) descriptor."""
        row = self.active(output_type, internal)
        if row is None:
            kind = "change " if internal else ""
            raise KeyManError(f"Error: This wallet has no available keys ({kind}{output_type})")
        desc = self.descs[row.id]
        pos = row.next_index
        if pos > row.range_end:
            raise KeyManError(KEYPOOL_RAN_OUT)
        row = replace(row, next_index=pos + 1)
        self.rows[row.id] = row
        self.db.put_descriptor(row)
        self.top_up(row.id)
        if needs_secret_to_derive(desc):  # locked: hand out the script derived earlier
            want = ScriptInfo(row.id, pos)
            for script, info in self.scripts.items():
                if info == want:
                    return script, desc, pos
        return desc.script_pubkeys(pos)[0], desc, pos

    def mark_used(self, script: bytes) -> bool:
        """A script of ours appeared on chain or in the pool: move its descriptor's next index
        past it and top up. True when that derived new scripts."""
        info = self.scripts.get(script)
        if info is None:
            return False
        row = self.rows[info.desc_id]
        if info.position < row.next_index:
            return False
        row = replace(row, next_index=info.position + 1)
        self.rows[row.id] = row
        self.db.put_descriptor(row)
        before = len(self.scripts)
        self.top_up(row.id)
        return len(self.scripts) > before
