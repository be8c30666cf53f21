"""Every text and auxiliary decoder fails only with ``DecodeError`` on arbitrary input, and
whatever decodes re-encodes to its input.

Complements ``test_decoders_property.py`` (wire decoders): addresses, keys, base58, bech32,
lax DER, undo data and MuHash state either decode or raise the one documented error family.
Arbitrary text almost never decodes as an address or a key, so the re-encoding checks run on
mutations of valid encodings (built from valid scripts, keys and payloads), and each such test
counts the cases that decoded and reached the check, asserting a minimum.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.chain.undo import decode_block_undo, encode_block_undo
from peercash.consensus.address import (
    SECP256K1_ORDER,
    address_to_script,
    decode_wif,
    encode_wif,
    p2pkh_script,
    p2sh_script,
    script_to_address,
    witness_script,
)
from peercash.consensus.base58 import b58decode, b58decode_check, b58encode_check
from peercash.consensus.bech32 import (
    Encoding,
    bech32_decode,
    bech32_encode,
    decode_segwit_address,
)
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.crypto import parse_der_lax
from peercash.consensus.errors import DecodeError
from peercash.consensus.muhash import MuHash3072
from peercash.consensus.params import MAIN, REGTEST, TESTNET4, NetworkParams
from peercash.consensus.primitives import TxOut

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7lbc1QPZRY"
texts = st.one_of(
    st.text(max_size=120),
    st.text(alphabet=_ALPHABET, max_size=120),
    st.builds(lambda s: "bc1" + s, st.text(alphabet=_BECH, max_size=90)),
    st.builds(lambda s: "bcrt1" + s, st.text(alphabet=_BECH, max_size=90)),
)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_text_decoders_raise_only_decode_error(text: str) -> None:
    for decode in (
        lambda: b58decode(text),
        lambda: b58decode_check(text),
        lambda: bech32_decode(text),
        lambda: decode_segwit_address("bc", text),
        lambda: address_to_script(text, MAIN),
        lambda: address_to_script(text, REGTEST),
        lambda: decode_wif(text, MAIN),
    ):
        with contextlib.suppress(DecodeError):
            decode()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_base58check_round_trips(payload: bytes) -> None:
    assert b58decode_check(b58encode_check(payload)) == payload


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_lax_der_never_raises(sig: bytes) -> None:
    out = parse_der_lax(sig)
    assert out is None or len(out) == 64


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_script_to_address_never_raises(script: bytes) -> None:
    """Arbitrary bytes: None or an address, never an exception. (Random bytes are almost never a
    standard script; the round trip is ``test_mutated_scripts_give_addresses_that_round_trip``'s
    job.)"""
    addr = script_to_address(script, MAIN)
    if addr is not None:
        assert address_to_script(addr, MAIN) == script


# -- mutations of valid encodings ---------------------------------------------------------------

NETWORKS = [MAIN, TESTNET4, REGTEST]
MIN_CHECKED = 60
"""Of the 300 examples of each test below, at least this many must decode and so reach the
re-encoding check (about a third are left unmutated, and upper-casing keeps bech32 valid).
Measured over runs: 159-176 addresses, 222-229 scripts, 132-145 WIF keys, about 150 each of
base58check and bech32 strings."""


@st.composite
def standard_scripts(draw: st.DrawFn) -> bytes:
    """A script with an address form: P2PKH, P2SH, or a witness program of any version."""
    kind = draw(st.sampled_from(["p2pkh", "p2sh", "v0", "v1", "future"]))
    if kind == "p2pkh":
        return p2pkh_script(draw(st.binary(min_size=20, max_size=20)))
    if kind == "p2sh":
        return p2sh_script(draw(st.binary(min_size=20, max_size=20)))
    if kind == "v0":
        return witness_script(0, draw(st.sampled_from([20, 32]).flatmap(_program)))
    if kind == "v1":
        return witness_script(1, draw(_program(32)))
    return witness_script(draw(st.integers(2, 16)), draw(st.integers(2, 40).flatmap(_program)))


def _program(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


@st.composite
def text_mutations(draw: st.DrawFn, text: str, alphabet: str) -> str:
    """``text`` unchanged (a third of the time) or with up to three edits."""
    chars = list(text)
    for _ in range(draw(st.integers(0, 3)) if draw(st.integers(0, 2)) else 0):
        kind = draw(st.sampled_from(["substitute", "swap", "insert", "delete", "upper", "case"]))
        pos = draw(st.integers(0, max(len(chars) - 1, 0)))
        if kind == "substitute" and chars:
            chars[pos] = draw(st.sampled_from(alphabet))
        elif kind == "swap" and len(chars) > 1:
            other = (pos + 1) % len(chars)
            chars[pos], chars[other] = chars[other], chars[pos]
        elif kind == "insert":
            chars.insert(pos, draw(st.sampled_from(alphabet)))
        elif kind == "delete" and chars:
            del chars[pos]
        elif kind == "upper":
            chars = list("".join(chars).upper())
        elif kind == "case" and chars:
            chars[pos] = chars[pos].swapcase()
    return "".join(chars)


def _count_round_trips(run: Callable[[], None], checked: list[int]) -> None:
    run()
    assert min(checked) >= MIN_CHECKED, checked


def test_mutated_addresses_decode_canonically() -> None:
    """A mutated address either fails with ``DecodeError`` or stands for a script whose address
    is the text itself (for bech32 also its all-upper-case form, used in QR codes)."""
    checked = [0]

    @settings(max_examples=300, deadline=None)
    @given(standard_scripts(), st.sampled_from(NETWORKS), st.data())
    def run(script: bytes, params: NetworkParams, data: st.DataObject) -> None:
        addr = script_to_address(script, params)
        assert addr is not None
        assert address_to_script(addr, params) == script
        text = data.draw(text_mutations(addr, _ALPHABET + _BECH))
        try:
            decoded = address_to_script(text, params)
        except DecodeError:
            return
        canonical = script_to_address(decoded, params)
        assert canonical is not None
        if text.lower().startswith(params.bech32_hrp + "1"):
            assert text in (canonical, canonical.upper())
        else:
            assert text == canonical
        checked[0] += 1

    _count_round_trips(run, checked)


def test_mutated_scripts_give_addresses_that_round_trip() -> None:
    """Byte edits of standard scripts: when the result still has an address, that address
    decodes back to exactly the script."""
    checked = [0]

    @settings(max_examples=300, deadline=None)
    @given(standard_scripts(), st.sampled_from(NETWORKS), st.data())
    def run(script: bytes, params: NetworkParams, data: st.DataObject) -> None:
        buf = bytearray(script)
        if data.draw(st.booleans()):
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] = data.draw(st.integers(0, 255))
        mutated = bytes(buf)
        addr = script_to_address(mutated, params)
        if addr is None:
            return
        assert address_to_script(addr, params) == mutated
        checked[0] += 1

    _count_round_trips(run, checked)


def test_mutated_wif_decodes_canonically() -> None:
    checked = [0]

    @settings(max_examples=300, deadline=None)
    @given(
        st.integers(1, SECP256K1_ORDER - 1),
        st.booleans(),
        st.sampled_from(NETWORKS),
        st.data(),
    )
    def run(secret: int, compressed: bool, params: NetworkParams, data: st.DataObject) -> None:
        key = secret.to_bytes(32, "big")
        wif = encode_wif(key, compressed, params)
        assert decode_wif(wif, params) == (key, compressed)
        text = data.draw(text_mutations(wif, _ALPHABET))
        try:
            got_key, got_compressed = decode_wif(text, params)
        except DecodeError:
            return
        assert encode_wif(got_key, got_compressed, params) == text
        checked[0] += 1

    _count_round_trips(run, checked)


def test_mutated_base58check_and_bech32_decode_canonically() -> None:
    checked = [0, 0]  # base58check, bech32

    @settings(max_examples=300, deadline=None)
    @given(
        st.binary(max_size=40),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10),
        st.sampled_from(list(Encoding)),
        st.data(),
    )
    def run(payload: bytes, hrp: str, encoding: Encoding, data: st.DataObject) -> None:
        b58 = data.draw(text_mutations(b58encode_check(payload), _ALPHABET))
        values = [b & 31 for b in payload]
        b32 = data.draw(text_mutations(bech32_encode(hrp, values, encoding), _BECH))
        with contextlib.suppress(DecodeError):
            assert b58encode_check(b58decode_check(b58)) == b58
            checked[0] += 1
        with contextlib.suppress(DecodeError):
            got_hrp, got_values, got_encoding = bech32_decode(b32)
            canonical = bech32_encode(got_hrp, got_values, got_encoding)
            assert b32 in (canonical, canonical.upper())
            checked[1] += 1

    _count_round_trips(run, checked)


coins = st.builds(
    SpentCoin,
    st.builds(TxOut, st.integers(0, 21 * 10**14), st.binary(max_size=40)),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(coins, max_size=4), max_size=4), st.binary(max_size=8))
def test_undo_round_trips_and_garbage_is_decode_error(
    spent: list[list[SpentCoin]], junk: bytes
) -> None:
    raw = encode_block_undo(spent)
    assert decode_block_undo(raw) == spent
    for mutated in (raw + junk if junk else raw + b"\x00", raw[: len(raw) // 2], junk):
        with contextlib.suppress(DecodeError):
            decode_block_undo(mutated)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=800))
def test_muhash_state_decoder(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        MuHash3072.deserialize(raw)
