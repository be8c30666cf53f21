"""A descriptor's private keys, taken out of its text and sealed under the wallet's master key.

Layer 3 (wallet), pure. An encrypted wallet stores each descriptor as its public text and,
beside it (the ``descriptors.encrypted_keys`` column), one sealed record per private key: the
key's public form (xpub, or hex public key) names it, the private form (xprv, or WIF) is the
sealed secret, and the associated data ``<descriptor id>/<key id>`` binds it to that descriptor
and key (Core's ``DescriptorScriptPubKeyMan`` keeps ``m_map_crypted_keys`` the same way, one
record per key, tied to its public key). Putting the private forms back into the public text
gives the private descriptor again.

Error contract: ``crypter.DecryptionError`` / ``RecordFormatError`` for damaged records,
``DescriptorError`` for text that no longer parses.
"""

from __future__ import annotations

import json
import re

from peercash.consensus.params import NetworkParams

from .crypter import MasterKey, RecordFormatError
from .descriptor import BIP32Key, ConstKey, Descriptor, KeyExpression, OriginKey, parse_one
from .descriptor.checksum import split_checksum

__all__ = ["key_secrets", "open_secrets", "seal_secrets", "with_secrets"]


def _leaf(key: KeyExpression) -> KeyExpression:
    while isinstance(key, OriginKey):
        key = key.inner
    return key


def key_secrets(desc: Descriptor, params: NetworkParams) -> dict[str, str]:
    """Public form → private form of every key of ``desc`` whose private key is known."""
    found: dict[str, str] = {}
    for key in desc.expr.all_keys():
        leaf = _leaf(key)
        if isinstance(leaf, BIP32Key) and leaf.root.secret is not None:
            found[leaf.root.neuter().to_string(params)] = leaf.root.to_string(params)
        elif isinstance(leaf, ConstKey) and leaf.private is not None:
            found[leaf.to_string(private=False)] = leaf.to_string(private=True)
    return found


def _aad(desc_id: str, key_id: str) -> bytes:
    return f"{desc_id}/{key_id}".encode()


def seal_secrets(desc_id: str, secrets: dict[str, str], master: MasterKey) -> bytes:
    """The column value: each private form sealed for (descriptor, key)."""
    sealed = {
        key_id: master.encrypt(private.encode(), _aad(desc_id, key_id)).serialize().hex()
        for key_id, private in secrets.items()
    }
    return json.dumps(sealed, sort_keys=True).encode()


def open_secrets(desc_id: str, blob: bytes, master: MasterKey) -> dict[str, str]:
    """The private forms back from :func:`seal_secrets`; raises if any record was altered or
    belongs to another descriptor or key."""
    try:
        sealed = json.loads(blob)
        items = [(str(k), bytes.fromhex(v)) for k, v in sealed.items()]
    except (ValueError, AttributeError, TypeError):
        raise RecordFormatError("malformed encrypted keys") from None
    return {k: master.decrypt(v, _aad(desc_id, k)).decode() for k, v in items}


_TOKEN_EDGE = "A-Za-z0-9"


def with_secrets(public: Descriptor, secrets: dict[str, str], params: NetworkParams) -> Descriptor:
    """``public`` with each key named in ``secrets`` replaced by its private form."""
    text, _ = split_checksum(public.to_string())
    for key_id, private in secrets.items():
        pattern = rf"(?<![{_TOKEN_EDGE}]){re.escape(key_id)}(?![{_TOKEN_EDGE}])"
        text = re.sub(pattern, private.replace("\\", "\\\\"), text)
    return parse_one(text, params)
