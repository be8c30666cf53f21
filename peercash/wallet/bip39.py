"""BIP39 mnemonic sentences: entropy to words and back, validation, and the seed they stand for.

Layer 3 (wallet), pure. The English word list is vendored next to this module
(``bip39_english.txt``, byte-identical to ``bip-0039/english.txt`` of bitcoin/bips, SHA-256
``2f5eed53…24dbda``, git blob ``942040ed…``); it is read once, on first use, and its hash checked.
This module never draws randomness: callers pass the entropy in (16, 20, 24, 28 or 32 bytes).

Error contract: :class:`MnemonicError` (a ``ValueError``) and its subclasses
:class:`WordCountError`, :class:`UnknownWordError` (with ``word`` and ``position``) and
:class:`ChecksumMismatchError`; a wrong entropy length raises :class:`EntropyLengthError`.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import cache
from importlib import resources

__all__ = [
    "ENGLISH_SHA256",
    "ChecksumMismatchError",
    "EntropyLengthError",
    "MnemonicError",
    "UnknownWordError",
    "WordCountError",
    "entropy_to_mnemonic",
    "is_valid_mnemonic",
    "mnemonic_to_entropy",
    "mnemonic_to_seed",
    "wordlist",
]

ENGLISH_SHA256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
"""SHA-256 of the official English list (2048 lines, each ending in a newline)."""

WORD_COUNTS = (12, 15, 18, 21, 24)
ENTROPY_SIZES = (16, 20, 24, 28, 32)
PBKDF2_ROUNDS = 2048


class MnemonicError(ValueError):
    """A sentence that is not a valid BIP39 mnemonic."""


class WordCountError(MnemonicError):
    """Not 12, 15, 18, 21 or 24 words."""


class UnknownWordError(MnemonicError):
    """A word that is not in the list."""

    def __init__(self, word: str, position: int) -> None:
        super().__init__(f"word {position + 1} ({word!r}) is not in the BIP39 English word list")
        self.word = word
        self.position = position


class ChecksumMismatchError(MnemonicError):
    """Every word is known, but the checksum bits do not match the entropy."""


class EntropyLengthError(MnemonicError):
    """Entropy that is not 128, 160, 192, 224 or 256 bits."""


@cache
def wordlist() -> tuple[str, ...]:
    """The 2048 English words in list order (checked against :data:`ENGLISH_SHA256`)."""
    raw = resources.files(__package__).joinpath("bip39_english.txt").read_bytes()
    if hashlib.sha256(raw).hexdigest() != ENGLISH_SHA256:
        raise RuntimeError("the vendored BIP39 English word list is damaged")
    words = tuple(raw.decode("ascii").split("\n")[:-1])
    if len(words) != 2048:
        raise RuntimeError("the BIP39 word list must have 2048 words")
    return words


@cache
def _index() -> dict[str, int]:
    return {word: i for i, word in enumerate(wordlist())}


def entropy_to_mnemonic(entropy: bytes) -> str:
    """The mnemonic of ``entropy``: its bits plus ``len/32`` checksum bits, in 11-bit words."""
    if len(entropy) not in ENTROPY_SIZES:
        raise EntropyLengthError(f"entropy of {len(entropy)} bytes is not 16, 20, 24, 28 or 32")
    bits = len(entropy) * 8
    checksum_bits = bits // 32
    checksum = hashlib.sha256(entropy).digest()[0] >> (8 - checksum_bits)
    number = (int.from_bytes(entropy, "big") << checksum_bits) | checksum
    count = (bits + checksum_bits) // 11
    words = wordlist()
    return " ".join(words[(number >> (11 * (count - 1 - i))) & 0x7FF] for i in range(count))


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKD", text)


def mnemonic_to_entropy(mnemonic: str) -> bytes:
    """The entropy a mnemonic encodes; raises a :class:`MnemonicError` subclass if invalid.

    Words are separated by any whitespace (after NFKD normalization) and must be lower case.
    """
    words = _normalize(mnemonic).split()
    if len(words) not in WORD_COUNTS:
        raise WordCountError(f"a mnemonic has 12, 15, 18, 21 or 24 words, not {len(words)}")
    index = _index()
    number = 0
    for position, word in enumerate(words):
        value = index.get(word)
        if value is None:
            raise UnknownWordError(word, position)
        number = (number << 11) | value
    checksum_bits = len(words) * 11 // 33
    entropy_bits = len(words) * 11 - checksum_bits
    entropy = (number >> checksum_bits).to_bytes(entropy_bits // 8, "big")
    expected = hashlib.sha256(entropy).digest()[0] >> (8 - checksum_bits)
    if number & ((1 << checksum_bits) - 1) != expected:
        raise ChecksumMismatchError("mnemonic checksum does not match")
    return entropy


def is_valid_mnemonic(mnemonic: str) -> bool:
    """Whether ``mnemonic`` is a valid English BIP39 sentence (word count, words, checksum)."""
    try:
        mnemonic_to_entropy(mnemonic)
    except MnemonicError:
        return False
    return True


def mnemonic_to_seed(mnemonic: str, passphrase: str = "", *, validate: bool = True) -> bytes:
    """The 64-byte seed: PBKDF2-HMAC-SHA512(NFKD(mnemonic), "mnemonic" + NFKD(passphrase), 2048).

    BIP39 defines the seed of any sentence; ``validate`` (the default) first checks that this one
    is a valid English mnemonic, which is what a wallet restoring from words wants.
    """
    if validate:
        mnemonic_to_entropy(mnemonic)
    password = _normalize(mnemonic).encode("utf-8")
    salt = ("mnemonic" + _normalize(passphrase)).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha512", password, salt, PBKDF2_ROUNDS)
