"""Sigop counting: the inline opcode walk equals a plain GetOp walk; published block figures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.script.flags import VerifyFlags
from peercash.consensus.script.script import BadScript, get_op
from peercash.consensus.script.sigops import script_sigops, transaction_sigop_cost
from peercash.tools.vectors import load_block


def _reference(script: bytes, accurate: bool) -> int:
    n, last, pos = 0, 0xFF, 0
    while pos < len(script):
        try:
            op, _, pos = get_op(script, pos)
        except BadScript:
            break
        if op in (0xAC, 0xAD):
            n += 1
        elif op in (0xAE, 0xAF):
            n += (last - 0x50) if accurate and 0x51 <= last <= 0x60 else 20
        last = op
    return n


_bytes = st.lists(
    st.one_of(
        st.sampled_from([0xAC, 0xAD, 0xAE, 0xAF, 0x51, 0x53, 0x60, 0x4C, 0x4D, 0x4E, 0x02, 0x00]),
        st.integers(0, 255),
    ),
    max_size=40,
).map(bytes)


@settings(max_examples=2000, deadline=None)
@given(_bytes, st.booleans())
def test_inline_walk_equals_getop_walk(script: bytes, accurate: bool) -> None:
    assert script_sigops(script, accurate) == _reference(script, accurate)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("block928816", 9109), ("block928828", 23236), ("block928831", 10035),
     ("block928848", 11319), ("block928849", 9137), ("block928927", 10015),
     ("block1087400", 1298)],
)  # fmt: skip
def test_published_block_sigop_costs(name: str, expected: int) -> None:
    """bcoin's published figures (P2SH and WITNESS flags, all transactions)."""
    block, spends = load_block(name)
    flags = VerifyFlags.P2SH | VerifyFlags.WITNESS
    total = transaction_sigop_cost(block.txs[0], [], flags)
    total += sum(transaction_sigop_cost(s.tx, s.spent, flags) for s in spends)
    assert total == expected


def test_block300025_sigops() -> None:
    block, spends = load_block("block300025")
    flags = VerifyFlags.P2SH | VerifyFlags.DERSIG
    total = transaction_sigop_cost(block.txs[0], [], flags)
    total += sum(transaction_sigop_cost(s.tx, s.spent, flags) for s in spends)
    assert total == 5284  # sigop cost, as SOURCES.md publishes it
