"""BIP39 against the Trezor reference vectors (via bcoin), the word list's published hash, and
typed errors for every way a sentence can be wrong."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peercash.consensus.params import MAIN
from peercash.wallet import bip39
from peercash.wallet.bip32 import ExtendedKey
from peercash.wallet.bip39 import (
    ChecksumMismatchError,
    EntropyLengthError,
    UnknownWordError,
    WordCountError,
    entropy_to_mnemonic,
    is_valid_mnemonic,
    mnemonic_to_entropy,
    mnemonic_to_seed,
    wordlist,
)

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS = json.loads((DATA / "bcoin" / "mnemonic-english.json").read_text())
LIST_FILE = Path(bip39.__file__).with_name("bip39_english.txt")


def test_reference_vectors() -> None:
    for entropy, words, passphrase, seed, xprv in VECTORS:
        assert entropy_to_mnemonic(bytes.fromhex(entropy)) == words
        assert mnemonic_to_entropy(words).hex() == entropy
        got = mnemonic_to_seed(words, passphrase)
        assert got.hex() == seed
        assert ExtendedKey.from_seed(got).to_string(MAIN) == xprv
    assert len(VECTORS) == 24


def test_wordlist_is_the_official_one() -> None:
    raw = LIST_FILE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == bip39.ENGLISH_SHA256
    # git blob id of bitcoin/bips bip-0039/english.txt
    blob = hashlib.sha1(b"blob %d\x00" % len(raw) + raw).hexdigest()
    assert blob == "942040ed50f7205cafc465496229128ba4f78e75"
    words = wordlist()
    assert len(words) == 2048 and len(set(words)) == 2048
    assert words[0] == "abandon" and words[-1] == "zoo" and list(words) == sorted(words)


def test_errors_are_typed() -> None:
    good = VECTORS[0][1]  # "abandon ... about"
    with pytest.raises(WordCountError, match="not 11"):
        mnemonic_to_entropy(" ".join(good.split()[:11]))
    with pytest.raises(UnknownWordError) as info:
        mnemonic_to_entropy(good.replace("about", "abuot"))
    assert info.value.word == "abuot" and info.value.position == 11
    with pytest.raises(ChecksumMismatchError):
        mnemonic_to_entropy(good.replace("about", "abandon"))
    with pytest.raises(UnknownWordError):
        mnemonic_to_entropy(good.upper())
    with pytest.raises(EntropyLengthError):
        entropy_to_mnemonic(bytes(15))
    assert not is_valid_mnemonic("") and is_valid_mnemonic(good)
    with pytest.raises(ChecksumMismatchError):
        mnemonic_to_seed(good.replace("about", "abandon"))
    # Without validation, any sentence has a seed (BIP39 defines it for any text).
    assert len(mnemonic_to_seed("not a mnemonic", validate=False)) == 64


def test_nfkd_normalization() -> None:
    words = VECTORS[0][1]
    # U+00E9 (é) and "e" + U+0301 normalize to the same NFKD bytes.
    composed = mnemonic_to_seed(words, "caf\u00e9")
    decomposed = mnemonic_to_seed(words, "cafe\u0301")
    assert composed == decomposed != mnemonic_to_seed(words, "cafe")
    # Full-width spaces (U+3000) become spaces under NFKD.
    assert mnemonic_to_entropy(words.replace(" ", "\u3000")) == bytes(16)


@given(st.sampled_from([16, 20, 24, 28, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_round_trip(entropy: bytes) -> None:
    words = entropy_to_mnemonic(entropy)
    assert len(words.split()) == len(entropy) * 3 // 4
    assert mnemonic_to_entropy(words) == entropy


@given(st.binary(min_size=16, max_size=16), st.integers(0, 11), st.integers(1, 2047))
def test_changed_word_is_caught_or_changes_entropy(entropy: bytes, pos: int, shift: int) -> None:
    words = entropy_to_mnemonic(entropy).split()
    index = {w: i for i, w in enumerate(wordlist())}
    words[pos] = wordlist()[(index[words[pos]] + shift) % 2048]
    with contextlib.suppress(ChecksumMismatchError):
        assert mnemonic_to_entropy(" ".join(words)) != entropy
