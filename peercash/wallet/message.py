"""Signed messages: compact recoverable ECDSA signatures over Core's message hash (BIP137 style).

Layer 3 (wallet), pure. The hash is double SHA-256 of the serialized strings
``"Bitcoin Signed Message:\\n"`` and the message; the signature is 65 bytes, a header
(27 + recovery id, + 4 for a compressed key) then r and s, in base64. Only P2PKH addresses
identify a key, as in Core (``MessageSign``/``MessageVerify``); RFC6979 nonces make signing
deterministic.

Error contract: :class:`MessageError` (a ``ValueError``) carries Core's result name and message;
:func:`verify_message` returns False for a signature that does not recover to the address.
"""

from __future__ import annotations

import base64
import binascii
import enum

import coincurve

from ..consensus.address import address_to_script
from ..consensus.hashing import hash160, hash256
from ..consensus.params import NetworkParams
from ..consensus.serialize import var_bytes

__all__ = [
    "MESSAGE_MAGIC",
    "MessageError",
    "Verification",
    "message_hash",
    "sign_message",
    "verify_message",
]

MESSAGE_MAGIC = "Bitcoin Signed Message:\n"


class Verification(enum.Enum):
    """Core's ``MessageVerificationResult`` failures that are errors, with Core's messages."""

    ERR_INVALID_ADDRESS = "Invalid address"
    ERR_ADDRESS_NO_KEY = "Address does not refer to key"
    ERR_MALFORMED_SIGNATURE = "Malformed base64 encoding"


class MessageError(ValueError):
    """A message that cannot be verified or signed as asked."""

    def __init__(self, result: Verification) -> None:
        super().__init__(result.value)
        self.result = result


def message_hash(message: str) -> bytes:
    """Core's ``MessageHash``."""
    return hash256(var_bytes(MESSAGE_MAGIC.encode()) + var_bytes(message.encode()))


def sign_message(secret: bytes, message: str, compressed: bool = True) -> str:
    """The base64 compact signature of ``message`` by ``secret``."""
    raw = coincurve.PrivateKey(secret).sign_recoverable(message_hash(message), hasher=None)
    header = 27 + raw[64] + (4 if compressed else 0)
    return base64.b64encode(bytes((header,)) + raw[:64]).decode()


def _pkh(address: str, params: NetworkParams) -> bytes:
    try:
        script = address_to_script(address, params)
    except ValueError:
        raise MessageError(Verification.ERR_INVALID_ADDRESS) from None
    if len(script) != 25 or script[:3] != b"\x76\xa9\x14" or script[23:] != b"\x88\xac":
        raise MessageError(Verification.ERR_ADDRESS_NO_KEY)
    return script[3:23]


def verify_message(address: str, signature: str, message: str, params: NetworkParams) -> bool:
    """Whether ``signature`` recovers to the key of the P2PKH ``address``; raises
    :class:`MessageError` for a bad address, a non-P2PKH one, or malformed base64."""
    want = _pkh(address, params)
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise MessageError(Verification.ERR_MALFORMED_SIGNATURE) from None
    if len(sig) != 65 or not 27 <= sig[0] <= 34:
        return False  # ERR_PUBKEY_NOT_RECOVERED
    recid = (sig[0] - 27) & 3
    compressed = sig[0] >= 31
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            sig[1:] + bytes((recid,)), message_hash(message), hasher=None
        )
    except Exception:  # coincurve raises a bare Exception when recovery fails
        return False
    return hash160(pub.format(compressed=compressed)) == want
