"""Miniscript inside descriptors: Core's descriptor cases, the sanity messages, tr() leaves,
multipath and ranged keys, and satisfying a descriptor's script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peercash.consensus.params import MAIN
from peercash.wallet.descriptor import DescriptorError, parse_descriptor, parse_one
from peercash.wallet.descriptor.scripts import SHExpr, WSHExpr
from peercash.wallet.miniscript import MiniscriptExpr, MsContext, from_script

DATA = Path(__file__).resolve().parents[2] / "data" / "miniscript"
CASES = json.loads((DATA / "core_descriptor_cases.json").read_text())["cases"]
K1 = "03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd"
K2 = "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
X1 = "a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd"
TPUB = (
    "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaD"
    "MzQLcgJvLJuZZvRcEL"
)


def _error(text: str) -> str:
    with pytest.raises(DescriptorError) as info:
        parse_descriptor(text, MAIN)
    return str(info.value)


def test_core_descriptor_cases() -> None:
    for case in CASES:
        desc = parse_one(case["private"], MAIN)
        assert desc.to_string(checksum=False) == case["public"]
        assert desc.to_string(private=True, checksum=False) == case["private"]
        assert desc.script_pubkeys(0)[0].hex() == case["script_pubkey"]
        public = parse_one(case["public"], MAIN)
        assert public.script_pubkeys(0) == desc.script_pubkeys(0)
    assert len(CASES) == 5


def test_core_descriptor_cases_satisfy() -> None:
    """Each case has a witness once given its preimage and timelocks (signatures stubbed)."""
    count = 0
    for case in CASES:
        desc = parse_one(case["private"], MAIN)
        expansion = desc.expand(0)
        assert expansion.witness_script is not None
        expr = desc.expr.sub if isinstance(desc.expr, SHExpr) else desc.expr
        assert isinstance(expr, WSHExpr)
        inner = expr.sub
        assert isinstance(inner, MiniscriptExpr)
        assert inner.node.script(0) == expansion.witness_script
        images = {bytes.fromhex(k): bytes.fromhex(v) for k, v in case["preimages"].items()}
        stack = inner.node.satisfy(
            lambda key: bytes(72), images, case["sequence"], case["locktime"]
        )
        assert stack is not None
        if images:
            assert next(iter(images.values())) in stack
            assert inner.node.satisfy(lambda key: bytes(72), {}) is None
        count += 1
    assert count == 5


def test_wsh_miniscript_descriptor() -> None:
    (desc,) = parse_descriptor(f"wsh(and_v(v:pk({K1}),older(144)))", MAIN)
    assert desc.to_string() == (f"wsh(and_v(v:pk({K1}),older(144)))#5nhqcn6v")
    script = desc.expand(0).witness_script
    assert script is not None
    assert script.hex() == f"21{K1}ad029000b2"
    assert desc.addresses() == ["bc1qzkyfmtnpmntc384mvevyefzlgmenkksuy7v9fsdfldchkzcwm0pq2dlljg"]
    assert from_script(script).to_string() == f"and_v(v:pk({K1}),older(144))"
    assert desc.is_solvable


def test_sanity_messages() -> None:
    assert _error(f"wsh(or_d(pk({K1}),older(12960)))") == (
        f"or_d(pk({K1}),older(12960)) is not sane: witnesses without signature exist"
    )
    assert _error("wsh(and_b(ripemd160(1fd9b55a054a2b3f658d97e6b84cf3ee00be429a),a:1))") == (
        "and_b(ripemd160(1fd9b55a054a2b3f658d97e6b84cf3ee00be429a),a:1) is not sane: "
        "witnesses without signature exist"
    )
    assert _error(f"wsh(and_b(pk({K1}),s:pk({K1})))") == (
        f"and_b(pk({K1}),s:pk({K1})) is not sane: contains duplicate public keys"
    )
    assert _error(f"wsh(or_i(and_b(after(1),a:after(1000000000)),pk({K1})))") == (
        "and_b(after(1),a:after(1000000000)) is not sane: contains mixes of timelocks "
        "expressed in blocks and seconds"
    )
    assert _error(f"wsh(or_b(pk({K1}),pk({K2})))") == f"or_b(pk({K1}),pk({K2})) is invalid"
    assert _error("wsh(0)") == "0 is not satisfiable"
    assert _error(f"sh(and_v(v:pk({K1}),older(1)))") == (
        "Miniscript expressions can only be used in wsh or tr."
    )
    assert _error("sh(older(1))") == "Miniscript expressions can only be used in wsh or tr."
    assert _error("older(1)") == "Miniscript expressions can only be used in wsh or tr."
    assert _error(f"wsh(multi_a(1,{K1}))") == "Can only have multi_a/sortedmulti_a inside tr()"
    assert _error("wsh(and_v(v:pk(nokey),older(1)))") == "key 'nokey' is not valid"
    assert _error("wsh(notminiscript(1))") == "A function is needed within P2WSH"


def test_tr_leaf_miniscript() -> None:
    text = f"tr({X1},{{and_v(v:pk({K2}),older(144)),multi_a(1,{K1},{K2})}})"
    (desc,) = parse_descriptor(text, MAIN)
    taproot = desc.expand(0).taproot
    assert taproot is not None
    first, second = taproot.leaves
    assert first.script.hex() == f"20{K2[2:]}ad029000b2"
    assert second.script.hex() == f"20{K1[2:]}ac20{K2[2:]}ba519c"
    node = from_script(first.script, MsContext.TAPSCRIPT)
    assert node.to_string() == f"and_v(v:pk({K2[2:]}),older(144))"
    assert parse_descriptor(desc.to_string(), MAIN)[0].script_pubkeys() == desc.script_pubkeys()


def test_ranged_and_multipath_keys() -> None:
    descs = parse_descriptor(f"wsh(and_v(v:pk({TPUB}/<0;1>/*),older(10)))", MAIN)
    assert len(descs) == 2
    assert descs[0].is_range and descs[1].is_range
    assert descs[0].to_string(checksum=False) == f"wsh(and_v(v:pk({TPUB}/0/*),older(10)))"
    scripts = {d.script_pubkeys(i)[0] for d in descs for i in range(3)}
    assert len(scripts) == 6
    assert _error(f"wsh(and_v(v:pk({TPUB}/<0;1>/*),pk({TPUB}/<0;1;2>/*)))") == (
        "Multipath derivation paths have mismatched lengths"
    )


def test_hook_can_be_turned_off() -> None:
    with pytest.raises(DescriptorError) as info:
        parse_descriptor(f"wsh(and_v(v:pk({K1}),older(144)))", MAIN, miniscript=False)
    assert str(info.value) == "A function is needed within P2WSH"
