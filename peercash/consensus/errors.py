"""The two error families of the consensus layer: bytes that do not decode, and rules broken."""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes that are not a valid encoding of the object asked for."""


class TruncatedError(DecodeError):
    """The input ended before the object did."""


class TrailingBytesError(DecodeError):
    """The object ended before the input did."""


class NonCanonicalError(DecodeError):
    """A value was encoded in a longer form than its canonical one (e.g. a compact size)."""


class OversizeError(DecodeError):
    """A length or count exceeds what the protocol allows, checked before allocating."""


class RuleError(Exception):
    """A consensus or policy rule was broken.

    ``code`` is stable and matches Bitcoin Core's reject reason (``bad-txns-vin-empty``), so tests
    and peers can rely on it; ``ban_score`` is how much a peer that sent it should be penalised.
    """

    def __init__(self, code: str, reason: str = "", ban_score: int = 100) -> None:
        super().__init__(f"{code}: {reason}" if reason else code)
        self.code = code
        self.reason = reason
        self.ban_score = ban_score


class EncodingError(DecodeError):
    """Text that is not well-formed base58 or bech32: a bad character, length, case or padding."""


class ChecksumError(DecodeError):
    """A base58check or bech32/bech32m checksum does not match: the text was mistyped or altered."""


class AddressError(DecodeError):
    """A well-formed string that is not an address or WIF key of the network asked for."""
