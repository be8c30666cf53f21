"""The validator's remembered min-difficulty walk gives exactly ``next_work_required``'s answer."""

from __future__ import annotations

import dataclasses
import random
from types import SimpleNamespace

from peercash.chain.index import BlockIndexEntry
from peercash.chain.validation import BlockValidator, _info
from peercash.consensus.params import TESTNET
from peercash.consensus.pow import next_work_required, target_to_bits
from peercash.consensus.primitives import Header


def test_remembered_walk_matches_the_plain_walk() -> None:
    # A short retarget period so walks cross boundaries; random runs of min-difficulty blocks.
    params = dataclasses.replace(TESTNET, pow_target_timespan=12 * TESTNET.pow_target_spacing)
    limit = target_to_bits(params.pow_limit)
    rng = random.Random(7)
    entries: list[BlockIndexEntry] = []
    prev: BlockIndexEntry | None = None
    for height in range(200):
        bits = limit if rng.random() < 0.7 else 0x1D00FFFF - rng.randrange(3)
        header = Header(
            1, prev.hash if prev else bytes(32), bytes(32), 1_000_000 + height, bits, height
        )
        e = BlockIndexEntry(header, height, prev)
        entries.append(e)
        prev = e
    chain = SimpleNamespace(params=params, contains=lambda e: True, chain=entries)
    validator = BlockValidator(chain, None, lambda: 0.0)  # type: ignore[arg-type]
    # Ask in a shuffled order, so the memo is filled from every direction.
    for e in rng.sample(entries, len(entries)):
        new_time = e.header.time + 1  # soon after: the walk decides
        plain = next_work_required(_info(e), new_time, params, lambda h, e=e: _info(entries[h]))
        assert validator.expected_bits(e, new_time) == plain
