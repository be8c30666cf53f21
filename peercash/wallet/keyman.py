"""The wallet's descriptors and the scripts they produce (Core's ``DescriptorScriptPubKeyMan``).

Layer 3 (wallet). Each active ranged descriptor keeps its scripts derived up to
``next_index + keypool`` (the gap limit), so a payment to any of the next ``keypool`` addresses
is recognised; seeing one used moves ``next_index`` past it and derives further (Core's
``MarkUnusedAddresses`` + ``TopUp``), which is how a restored wallet finds every coin.

Writes go to the caller's open ``WalletDB.batch``. Error contract: ``KeyManError`` (a
``ValueError``) with Core's messages; ``DescriptorError`` from parsing.
Concurrency: used under the wallet's lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from peercash.consensus.params import NetworkParams

from .db import DescriptorRow, WalletDB
from .descriptor import Descriptor, parse_one
from .descriptor.scripts import PKHExpr, SHExpr, TRExpr, WPKHExpr

DEFAULT_KEYPOOL_SIZE = 1000  # Core's -keypool


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
        return any(d.has_private_keys for d in self.descs.values())

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
    ) -> DescriptorRow:
        """Add (or update) a descriptor and derive its scripts; the stored row."""
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
        if old is not None and not desc.has_private_keys:
            text = old.descriptor  # keep private keys we already had
            desc = self.descs[desc_id]
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
        self._derive(desc_id, start, end)
        if row.active_type is not None:
            self.top_up(desc_id)
        return self.rows[desc_id]

    def _derive(self, desc_id: str, start: int, end: int) -> None:
        desc = self.descs[desc_id]
        for pos in range(start, end + 1):
            for script in desc.script_pubkeys(pos):
                if script not in self.scripts:
                    self.scripts[script] = ScriptInfo(desc_id, pos)
                    self.db.put_script(script, desc_id, pos)

    def top_up(self, desc_id: str) -> None:
        """Derive up to ``next_index + keypool - 1`` (ranged descriptors only)."""
        row = self.rows[desc_id]
        if not self.descs[desc_id].is_range:
            return
        want = row.next_index + self.keypool - 1
        if want > row.range_end:
            self._derive(desc_id, row.range_end + 1, want)
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
        row = replace(row, next_index=pos + 1)
        self.rows[row.id] = row
        self.db.put_descriptor(row)
        self.top_up(row.id)
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
