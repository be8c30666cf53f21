"""MuHash3072 against Bitcoin Core's published vectors, plus its algebra as properties.

Vectors from Bitcoin Core ``src/test/crypto_tests.cpp`` (``muhash_tests``) and
``src/test/fuzz/muhash.cpp`` (the empty set's digest). Core writes a ``uint256`` literal in
display order (bytes reversed) but ``HexStr`` of one in raw order; each check says which.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.errors import DecodeError
from peercash.consensus.muhash import (
    BYTE_SIZE,
    MODULUS,
    SERIALIZED_SIZE,
    MuHash3072,
    _reduce,
    element,
    element_bytes,
)

SETTINGS = settings(max_examples=25, deadline=None)


def from_int(i: int) -> MuHash3072:
    """Core's test helper ``FromInt``: the singleton of 32 bytes ``{i, 0, ..., 0}``."""
    return MuHash3072(bytes([i]) + bytes(31))


def display(digest: bytes) -> str:
    return digest[::-1].hex()


# --- ChaCha20 as used for elements ----------------------------------------------------------------


def test_chacha20_iv_layout_matches_rfc8439() -> None:
    """cryptography's 16-byte ChaCha20 IV is (32-bit LE counter, 96-bit nonce): RFC 8439 vectors."""

    def keystream(key: bytes, counter: int, nonce: bytes, n: int) -> bytes:
        iv = counter.to_bytes(4, "little") + nonce
        return Cipher(algorithms.ChaCha20(key, iv), mode=None).encryptor().update(bytes(n))

    # RFC 8439 A.1 test vectors 1 and 2: all-zero key and nonce, block counters 0 and 1.
    block0 = bytes.fromhex(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
    )
    block1 = bytes.fromhex(
        "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
        "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"
    )
    assert keystream(bytes(32), 0, bytes(12), 128) == block0 + block1
    assert keystream(bytes(32), 1, bytes(12), 64) == block1
    # RFC 8439 2.3.2: the block function with key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00
    # and counter 1.
    assert keystream(bytes(range(32)), 1, bytes.fromhex("000000090000004a00000000"), 64) == (
        bytes.fromhex(
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
            "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
        )
    )
    # An element is the keystream (counter 0, zero nonce) keyed by the data's SHA-256.
    data = b"peercash"
    key = hashlib.sha256(data).digest()
    assert element_bytes(data) == keystream(key, 0, bytes(12), BYTE_SIZE)
    assert element(data) == int.from_bytes(element_bytes(data), "little") % MODULUS


# --- Core's vectors ---------------------------------------------------------------------------------

CORE_FRACTION = "10d312b100cbd32ada024a6646e40d3482fcff103668d2625f10002a607d5863"


def test_core_empty_set() -> None:
    # src/test/fuzz/muhash.cpp initial_state_hash, a uint256 literal (display order).
    expected = "dd5ad2a105c2d29495f577245c357409002329b9f4d6182c0af3dc2f462555c8"
    assert display(MuHash3072().finalize()) == expected
    assert MuHash3072().finalize() == hashlib.sha256(b"\x01" + bytes(BYTE_SIZE - 1)).digest()


def test_core_combine_divide() -> None:
    """``FromInt(0) *= FromInt(1); /= FromInt(2)``; expected is a uint256 literal (display)."""
    acc = from_int(0)
    acc *= from_int(1)
    acc /= from_int(2)
    assert display(acc.finalize()) == CORE_FRACTION


def test_core_insert_remove() -> None:
    acc = from_int(0).insert(bytes([1]) + bytes(31)).remove(bytes([2]) + bytes(31))
    assert display(acc.finalize()) == CORE_FRACTION
    acc = from_int(0).combine(from_int(1)).divide(from_int(2))
    assert display(acc.finalize()) == CORE_FRACTION


# ``ser_exp``: the serialization of FromInt(1) *= FromInt(2): numerator (384 bytes LE) then the
# denominator, which is one. Core's source gives it as one hex literal; the first 73 digits were
# read from Core's crypto_tests.cpp, the rest from a transcription of that literal, and our
# independent computation reproduces all 768 digits.
CORE_SER_NUMERATOR = (
    "1fa093295ea30a6a3acdc7b3f770fa538eff537528e990e2910e40bbcfd7f6696b1256901929094694b56316de342f"
    "593303dd12ac43e06dce1be1ff8301c845beb15468fff0ef002dbf80c29f26e6452bccc91b5cb9437ad410d2a67ea8"
    "47887fa3c6a6553309946880fe20db2c73fe0641adbd4e86edfee0d9f8cd0ee1230898873dc13ed8ddcaf045c80faa"
    "082774279007a2253f8922ee3ef361d378a6af3ddaf180b190ac97e556888c36b3d1fb1c85aab9ccd46e3deaeb7b7c"
    "f5db067a7e9ff86b658cf3acd6662bbcce37232daa753c48b794356c020090c831a8304416e2aa7ad633c0ddb2f11b"
    "e1be316a81be7f7e472071c042cb68faef549c221ebff209273638b741aba5a81675c45a5fa92fea4ca821d7a324cb"
    "1e1a2ccd3b76c4228ec8066dad2a5df6e1bd0de45c7dd5de8070bdb46db6c554cf9aefc9b7b2bbf9f75b1864d9f950"
    "05314593905c0109b71f703d49944ae94477b51dac10a816bb6d1c700bafabc8bd86fac8df24be519a2f2836b16392"
    "e18036cb13e48c5c"
)


def test_core_serialization() -> None:
    assert len(CORE_SER_NUMERATOR) == 2 * BYTE_SIZE
    serchk = from_int(1)
    serchk *= from_int(2)
    blob = serchk.serialize()
    assert len(blob) == SERIALIZED_SIZE
    assert blob.hex() == CORE_SER_NUMERATOR + "01" + "00" * (BYTE_SIZE - 1)
    deserchk = MuHash3072.deserialize(blob)
    assert deserchk.serialize() == blob
    assert deserchk.finalize() == serchk.finalize()


def test_core_overflow() -> None:
    """A numerator of 0xff * 384 (above the modulus) over a denominator of one; Core prints the
    digest with ``HexStr`` (raw order)."""
    state = MuHash3072.deserialize(b"\xff" * BYTE_SIZE + b"\x01" + bytes(BYTE_SIZE - 1))
    assert state.finalize().hex() == (
        "3a31e6903aff0de9f62f9a9f7f8b861de76ce2cda09822b90014319ae5dc2271"
    )


# --- Core's randomized checks, as properties -------------------------------------------------------


@SETTINGS
@given(st.lists(st.integers(0, 7), min_size=4, max_size=4))
def test_core_order_of_operations(table: list[int]) -> None:
    """Core's loop: four multiply/divide steps by FromInt(t & 3), in the four orders i ^ order."""
    results = set()
    for order in range(4):
        acc = MuHash3072()
        for i in range(4):
            t = table[i ^ order]
            if t & 4:
                acc /= from_int(t & 3)
            else:
                acc *= from_int(t & 3)
        results.add(acc.finalize())
    assert len(results) == 1


@SETTINGS
@given(st.integers(0, 15), st.integers(0, 15))
def test_core_x_y_cancel(xi: int, yi: int) -> None:
    x, y = from_int(xi), from_int(yi)
    z = MuHash3072()
    z *= x
    z *= y
    y *= x
    z /= y
    assert z.finalize() == MuHash3072().finalize()


# --- Algebra ------------------------------------------------------------------------------------------

items = st.lists(st.binary(max_size=40), max_size=6)


@SETTINGS
@given(items, st.randoms(use_true_random=False))
def test_insert_order_does_not_matter(data: list[bytes], rnd: random.Random) -> None:
    a = MuHash3072()
    for d in data:
        a.insert(d)
    shuffled = list(data)
    rnd.shuffle(shuffled)
    b = MuHash3072()
    for d in shuffled:
        b.insert(d)
    assert a == b
    assert a.finalize() == b.finalize()


@SETTINGS
@given(items, items)
def test_remove_undoes_insert(base: list[bytes], extra: list[bytes]) -> None:
    a = MuHash3072()
    for d in base:
        a.insert(d)
    expected = a.copy().finalize()
    for d in extra:
        a.insert(d)
    for d in reversed(extra):
        a.remove(d)
    assert a.finalize() == expected
    # Removing before inserting lands in the same place.
    b = MuHash3072()
    for d in extra:
        b.remove(d)
    for d in base + extra:
        b.insert(d)
    assert b.finalize() == expected


@SETTINGS
@given(items, items)
def test_combine_is_union_and_divide_is_difference(left: list[bytes], right: list[bytes]) -> None:
    a, b, union = MuHash3072(), MuHash3072(), MuHash3072()
    for d in left:
        a.insert(d)
        union.insert(d)
    for d in right:
        b.insert(d)
        union.insert(d)
    joined = a.copy().combine(b)
    assert joined.finalize() == union.copy().finalize()
    assert union.copy().divide(b).finalize() == a.copy().finalize()
    # Division of a state carrying a denominator: (a / b) / (a / b) is the empty set.
    q = a.copy().divide(b)
    assert q.copy().divide(q.copy()).finalize() == MuHash3072().finalize()


@SETTINGS
@given(items, items)
def test_serialize_round_trip(ins: list[bytes], rem: list[bytes]) -> None:
    a = MuHash3072()
    for d in ins:
        a.insert(d)
    for d in rem:
        a.remove(d)
    blob = a.serialize()
    b = MuHash3072.deserialize(blob)
    assert b.serialize() == blob
    assert b == a
    # Continuing from the restored state is the same as continuing from the original.
    a.insert(b"next")
    b.insert(b"next")
    assert a.finalize() == b.finalize()


@SETTINGS
@given(st.integers(0, MODULUS - 1), st.integers(0, MODULUS - 1))
def test_fast_reduction(x: int, y: int) -> None:
    assert _reduce(x * y) == x * y % MODULUS
    top = MODULUS - 1 - x
    assert _reduce(top * top) == top * top % MODULUS


def test_reduction_edges() -> None:
    for v in (0, 1, MODULUS - 1, MODULUS, MODULUS + 1, (1 << 3072) - 1, (1 << 3072)):
        assert _reduce(v) == v % MODULUS
    assert _reduce((MODULUS - 1) ** 2) == 1
    big = (1 << 3072) - 1
    assert _reduce(big * big) == big * big % MODULUS


def test_finalize_does_not_change_the_set() -> None:
    a = from_int(3).remove(b"x")
    first = a.finalize()
    assert a.finalize() == first
    a.insert(b"x")
    assert a.finalize() == from_int(3).finalize()


def test_equality_and_repr() -> None:
    a = MuHash3072(b"a")
    assert a == MuHash3072().insert(b"a")
    assert a != MuHash3072(b"b")
    assert a != "not a muhash"
    assert a == a.copy().insert(b"z").remove(b"z")
    assert display(a.copy().finalize()) in repr(a)
    with pytest.raises(TypeError):
        hash(a)


def test_deserialize_rejects_bad_input() -> None:
    with pytest.raises(DecodeError):
        MuHash3072.deserialize(bytes(SERIALIZED_SIZE - 1))
    with pytest.raises(DecodeError):
        MuHash3072.deserialize(bytes(SERIALIZED_SIZE + 1))
    with pytest.raises(DecodeError):  # zero denominator
        MuHash3072.deserialize(b"\x01" + bytes(SERIALIZED_SIZE - 1))
    with pytest.raises(DecodeError):  # denominator equal to the modulus
        MuHash3072.deserialize(b"\x01" + bytes(BYTE_SIZE - 1) + MODULUS.to_bytes(384, "little"))
