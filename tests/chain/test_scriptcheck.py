"""Script checks in worker processes give exactly the single-process answer, failures included."""

from __future__ import annotations

from peercash.chain.scriptcheck import ScriptCheckPool, check_tx_inputs
from peercash.consensus.primitives import TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.tools.vectors import BLOCKS_WITH_PREVOUTS, load_block


def test_pool_matches_single_process_and_locates_failures() -> None:
    name = "block928816"
    flags = int(BLOCKS_WITH_PREVOUTS[name])
    _, spends = load_block(name)
    txs = [s.tx for s in spends]
    spent = [list(s.spent) for s in spends]
    # Break one input near the front (a worker's share) and one near the end (ours): a wrong
    # amount invalidates a segwit signature.
    broken = []
    with_witness = [j for j, s in enumerate(spends) if any(t.witness for t in s.tx.inputs)]
    for j in (with_witness[2], with_witness[-2]):
        k = next(k for k, t in enumerate(spends[j].tx.inputs) if t.witness)
        out = spent[j][k]
        spent[j][k] = TxOut(out.value + 1, out.script_pubkey)
        broken.append((j, k))
    expected = [
        (j, k)
        for j in range(len(txs))
        for k, err in check_tx_inputs(txs[j], spent[j], flags)
        if err
    ]
    assert expected == broken
    with ScriptCheckPool(1) as pool:
        failures = pool.check(txs, spent, flags)
        assert [(f.tx_index, f.input_index) for f in failures] == broken
        assert all(f.error is not ScriptError.OK for f in failures)
        # The pool stays usable, and a clean batch has no failures.
        assert pool.check(txs[:50], [list(s.spent) for s in spends[:50]], flags) == []
        assert pool.check([], [], flags) == []
