"""Every text and auxiliary decoder fails only with ``DecodeError`` on arbitrary input.

Complements ``test_decoders_property.py`` (wire decoders): addresses, keys, base58, bech32,
lax DER, undo data and MuHash state either decode or raise the one documented error family.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.chain.undo import decode_block_undo, encode_block_undo
from peercash.consensus.address import address_to_script, decode_wif, script_to_address
from peercash.consensus.base58 import b58decode, b58decode_check, b58encode_check
from peercash.consensus.bech32 import bech32_decode, decode_segwit_address
from peercash.consensus.contextual import SpentCoin
from peercash.consensus.crypto import parse_der_lax
from peercash.consensus.errors import DecodeError
from peercash.consensus.muhash import MuHash3072
from peercash.consensus.params import MAIN, REGTEST
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
    addr = script_to_address(script, MAIN)
    if addr is not None:
        assert address_to_script(addr, MAIN) == script


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
