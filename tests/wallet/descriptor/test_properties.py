"""Property tests: the checksum catches every single-character error, and canonical strings
parse back to the same descriptor."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.params import MAIN
from peercash.wallet.bip32 import HARDENED, ExtendedKey
from peercash.wallet.descriptor import (
    DescriptorError,
    add_checksum,
    descriptor_checksum,
    parse_one,
    split_checksum,
)
from peercash.wallet.descriptor.checksum import CHECKSUM_CHARSET, INPUT_CHARSET

MASTER = ExtendedKey.from_seed(bytes(range(32)))


@given(st.text(alphabet=INPUT_CHARSET, min_size=1, max_size=120), st.data())
def test_checksum_detects_any_one_substitution(text: str, data: st.DataObject) -> None:
    checksum = descriptor_checksum(text)
    assert checksum is not None and len(checksum) == 8
    pos = data.draw(st.integers(0, len(text) - 1))
    other = data.draw(st.sampled_from(INPUT_CHARSET).filter(lambda c: c != text[pos]))
    assert descriptor_checksum(text[:pos] + other + text[pos + 1 :]) != checksum


@given(st.text(alphabet=INPUT_CHARSET.replace("#", ""), max_size=60), st.data())
def test_checksum_part_errors(text: str, data: st.DataObject) -> None:
    full = add_checksum(text)
    assert split_checksum(full) == (text, full[-8:])
    pos = data.draw(st.integers(len(text) + 1, len(full) - 1))
    other = data.draw(st.sampled_from(CHECKSUM_CHARSET).filter(lambda c: c != full[pos]))
    with pytest.raises(DescriptorError, match="does not match computed checksum"):
        split_checksum(full[:pos] + other + full[pos + 1 :])
    assert descriptor_checksum(text + "\u00e0") is None


_steps = st.lists(st.integers(0, 5) | st.integers(0, 5).map(lambda i: i | HARDENED), max_size=3)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["pkh({})", "wpkh({})", "sh(wpkh({}))", "wsh(pk({}))", "tr({})", "combo({})"]),
    _steps,
    st.sampled_from(["", "/*", "/*'", "/*h", "/<0;1>/*"]),
    st.booleans(),
    st.booleans(),
)
def test_round_trip(shape: str, steps: list[int], suffix: str, private: bool, origin: bool) -> None:
    key = MASTER if private else MASTER.neuter()
    path = "".join(f"/{i & ~HARDENED}{'h' if i & HARDENED else ''}" for i in steps)
    key_text = key.to_string(MAIN) + path + suffix.replace("<0;1>", "7")
    if origin:
        key_text = "[0badf00d/1h/2]" + key_text
    desc = parse_one(shape.format(key_text), MAIN)
    again = parse_one(desc.to_string(private=True), MAIN)
    assert again.to_string(private=True) == desc.to_string(private=True)
    assert again.to_string() == desc.to_string()
    hardened = any(i & HARDENED for i in steps) or suffix in ("/*'", "/*h")
    if private or not hardened:
        assert again.script_pubkeys(3) == desc.script_pubkeys(3)
        public = parse_one(desc.to_string(), MAIN)
        if not hardened:
            assert public.script_pubkeys(3) == desc.script_pubkeys(3)
