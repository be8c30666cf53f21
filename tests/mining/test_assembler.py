"""The block assembler and TestBlockValidity, on real regtest chain states.

Selection is checked chunk by chunk against sources whose fees, weights and sigops are chosen to
hit each rule (whole chunks, the weight and sigop limits with Core 30's reservations, the
minimum feerate, finality, skipped parents, the consecutive-failure stop), and by a hypothesis
property that replays the rules. Blocks with real spends of P2WSH(OP_TRUE) coinbases are checked
with the full validity test and connected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peercash.chain.chainstate import ChainState
from peercash.consensus import deployments as dep
from peercash.consensus.errors import RuleError
from peercash.consensus.params import MAIN, REGTEST, SIGNET, TESTNET, TESTNET4, NetworkParams
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.assembler import (
    DEFAULT_BLOCK_MAX_WEIGHT,
    DEFAULT_BLOCK_MIN_TX_FEE,
    DEFAULT_BLOCK_RESERVED_WEIGHT,
    DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS,
    EMPTY_SOURCE,
    MAX_CONSECUTIVE_FAILURES,
    AssemblerOptions,
    BlockAssembler,
    Chunk,
    TemplateTx,
    minimum_time,
    template_tx,
)
from peercash.mining.builder import (
    P2WSH_OP_TRUE,
    assemble_block,
    coinbase_tx,
    solve,
    spend_op_true_p2wsh,
)
from peercash.mining.validity import check_block_validity

NOW = 1_700_000_000
P2WSH_ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"


@dataclass
class ListSource:
    """A template source over a fixed list of chunks; counts the chunks handed out."""

    chunks: list[list[TemplateTx]]
    counter: int = 0
    handed_out: int = 0

    def chunks_by_feerate(self) -> Iterable[Chunk]:
        for c in self.chunks:
            self.handed_out += 1
            yield c

    def transactions_updated(self) -> int:
        return self.counter


def fake_tx(
    n: int, *, parent: Tx | None = None, locktime: int = 0, sequence: int = 0xFFFFFFFE
) -> Tx:
    """A distinct transaction (not valid on the chain: selection never looks at coins)."""
    prevout = OutPoint(parent.txid, 0) if parent else OutPoint(n.to_bytes(4, "big") * 8, 0)
    return Tx(2, [TxIn(prevout, b"", sequence, (b"\x51",))], [TxOut(1000, P2WSH_OP_TRUE)], locktime)


def entry(n: int, fee: int, weight: int, sigops: int = 0, **kw: Any) -> TemplateTx:
    return TemplateTx(fake_tx(n, **kw), fee, sigops, weight)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[ChainState]:
    clock = [float(NOW)]
    c = ChainState(REGTEST, tmp_path / "regtest", clock=lambda: clock[0])
    c.test_clock = clock  # type: ignore[attr-defined]
    yield c
    c.close()


def mine(chain: ChainState, n: int, script: bytes = P2WSH_OP_TRUE) -> list[Block]:
    """``n`` coinbase-only blocks built by the assembler, solved and connected."""
    blocks = []
    assembler = BlockAssembler(chain)
    for _ in range(n):
        block = solve(assembler.create_new_block(script).block)
        assert chain.accept_block(block) is not None
        assert chain.tip.hash == block.hash
        blocks.append(block)
    return blocks


# -- coinbase-only blocks are the blocks generation made before the assembler ---------------


def legacy_block(chain: ChainState, script_pubkey: bytes, txs: list[Tx], fees: int) -> Block:
    """``rpc.mining.build_block`` as it was before the assembler (kept here as the reference)."""
    params = chain.params
    prev = chain.tip
    height = prev.height + 1
    block_time = max(prev.median_time_past() + 1, int(chain.validator.clock()))
    bits = chain.validator.expected_bits(prev, block_time)
    coinbase = coinbase_tx(height, [TxOut(block_subsidy(height, params) + fees, script_pubkey)])
    active = chain.chain
    states = [
        (
            d,
            dep.deployment_state(
                d,
                prev.height,
                lambda h: active[h].median_time_past(),
                lambda h: active[h].header.version,
            ),
        )
        for d in params.deployments.values()
    ]
    return assemble_block(
        prev.hash,
        block_time,
        bits,
        coinbase,
        txs,
        version=dep.compute_block_version(states),
        witness_commitment=dep.segwit_active(params, height),
    )


def test_empty_source_builds_the_legacy_blocks(chain: ChainState) -> None:
    assembler = BlockAssembler(chain)
    compared = 0
    for i in range(160):  # past the 1..16 BIP34 padding, a halving (150) and a min-time bump
        if i == 120:
            chain.test_clock[0] += 5000  # type: ignore[attr-defined]
        script = P2WSH_OP_TRUE if i % 2 else b"\x51"
        want = legacy_block(chain, script, [], 0)
        got = assembler.create_new_block(script, EMPTY_SOURCE)
        assert got.block.serialize() == want.serialize()
        assert got.block.hash == want.hash
        assert got.num_txs == 0 and got.fees == [0] and got.total_fees == 0
        assert assembler.last_block_weight == DEFAULT_BLOCK_RESERVED_WEIGHT
        assert assembler.last_block_num_txs == 0
        solved = solve(got.block)
        assert chain.accept_block(solved) is not None and chain.tip.hash == solved.hash
        compared += 1
    assert compared == 160
    assert chain.height == 160
    # Subsidy halves at 150 on regtest.
    assert chain.read_block(chain.chain[151]).txs[0].outputs[0].value == 25 * 10**8


def test_template_fields(chain: ChainState) -> None:
    mine(chain, 3)
    t = BlockAssembler(chain).create_new_block(b"\x51")
    assert t.height == 4 and t.prev is chain.tip
    assert t.block.header.prev_hash == chain.tip.hash
    assert t.block.header.version == 0x20000000  # taproot active, testdummy never: top bits only
    assert t.block.header.bits == 0x207FFFFF
    # max(MTP + 1, now): regtest blocks at a fixed clock run ahead of it one MTP step at a time.
    assert t.block.header.time == chain.tip.median_time_past() + 1 == NOW + 2
    assert t.min_time == chain.tip.median_time_past() + 1
    assert t.coinbase_value == 50 * 10**8
    assert t.target == 0x7FFFFF << 232
    cb = t.block.txs[0]
    assert cb.inputs[0].script_sig == bytes.fromhex("5400")  # OP_4 OP_0: BIP34 height, padded
    assert cb.inputs[0].witness == (b"\x00" * 32,)
    # Empty block: the witness root is the coinbase's zero wtxid; Core's well-known commitment.
    assert t.witness_commitment == bytes.fromhex(
        "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"
    )
    assert cb.outputs[-1].script_pubkey == t.witness_commitment
    assert t.sigops == [0]


def test_coinbase_timelock_option(chain: ChainState) -> None:
    mine(chain, 2)
    t = BlockAssembler(chain, AssemblerOptions(coinbase_timelock=True)).create_new_block(b"\x51")
    cb = t.block.txs[0]
    assert cb.locktime == 2 and cb.inputs[0].sequence == 0xFFFFFFFE
    check_block_validity(chain, t.block, check_pow=False)
    solved = solve(t.block)
    assert chain.accept_block(solved) is not None and chain.tip.hash == solved.hash


@pytest.mark.parametrize("params", [MAIN, TESTNET, TESTNET4, SIGNET], ids=lambda p: p.name)
def test_first_block_on_other_networks_is_valid(tmp_path: Path, params: NetworkParams) -> None:
    """Off regtest (segwit not active at height 1 on main and testnet3), the coinbase carries no
    witness and no commitment, and the block passes every check but proof of work."""
    genesis_time = Block.parse(params.genesis).header.time
    c = ChainState(params, tmp_path / params.name, clock=lambda: float(genesis_time + 3600))
    try:
        t = BlockAssembler(c).create_new_block(b"\x51")
        segwit = dep.segwit_active(params, 1)
        assert (t.witness_commitment is not None) is segwit
        assert bool(t.block.txs[0].inputs[0].witness) is segwit
        assert t.block.header.time == genesis_time + 3600
        assert t.block.header.bits == c.validator.expected_bits(c.tip, genesis_time + 3600)
        if params.signet_challenge is None:
            check_block_validity(c, t.block, check_pow=False)
        else:  # signet: the block solution is checked only with proof of work
            check_block_validity(c, t.block, check_pow=False, check_merkle_root=True)
    finally:
        c.close()


def test_minimum_time_respects_the_timewarp_rule(chain: ChainState) -> None:
    mine(chain, 2)
    tip = chain.tip
    assert minimum_time(tip, 2016) == tip.median_time_past() + 1
    # At a retarget boundary the parent's time minus 600 s also bounds it from below.
    interval = tip.height + 1
    assert minimum_time(tip, interval) == max(tip.median_time_past() + 1, tip.header.time - 600)


# -- selection ------------------------------------------------------------------------------


def build(chain: ChainState, source: ListSource, **options: Any) -> Any:
    return BlockAssembler(chain, AssemblerOptions(**options)).create_new_block(b"\x51", source)


def test_chunks_in_order_whole_and_fees_collected(chain: ChainState) -> None:
    mine(chain, 1)
    parent = fake_tx(1)
    child = fake_tx(2, parent=parent)
    cpfp = [TemplateTx(parent, 0, 4, 400), TemplateTx(child, 10_000, 8, 400)]
    lone = [entry(3, 3_000, 600, 1)]
    t = build(chain, ListSource([cpfp, lone]))
    assert [tx.txid for tx in t.block.txs[1:]] == [parent.txid, child.txid, lone[0].tx.txid]
    assert t.fees == [-13_000, 0, 10_000, 3_000]
    assert t.sigops == [0, 4, 8, 1]
    assert t.total_fees == 13_000
    assert t.coinbase_value == 50 * 10**8 + 13_000
    assert t.block.txs[0].outputs[0].value == t.coinbase_value
    assert t.weight == DEFAULT_BLOCK_RESERVED_WEIGHT + 1400
    assert t.sigop_cost == DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS + 13
    assert t.chunk_feerates == [(10_000, 200), (3_000, 150)]


def test_weight_limit_skips_a_chunk_and_takes_a_smaller_one(chain: ChainState) -> None:
    limit = 100_000
    room = limit - DEFAULT_BLOCK_RESERVED_WEIGHT  # 92,000 for transactions
    a = [entry(1, 90_000, 50_000)]
    too_big = [entry(2, 80_000, 42_000)]  # 8,000 + 50,000 + 42,000 = limit: not below it
    fits = [entry(3, 10_000, room - 50_000 - 1)]  # one under the limit
    after = [entry(4, 9_000, 4)]  # no room left
    t = build(chain, ListSource([a, too_big, fits, after]), block_max_weight=limit)
    assert [x.txid for x in t.block.txs[1:]] == [a[0].tx.txid, fits[0].tx.txid]
    assert t.weight == limit - 1


def test_chunk_is_taken_whole_or_not_at_all(chain: ChainState) -> None:
    limit = 20_000
    p = fake_tx(1)
    chunk = [TemplateTx(p, 5_000, 0, 6_000), TemplateTx(fake_tx(2, parent=p), 5_000, 0, 6_000)]
    t = build(chain, ListSource([chunk]), block_max_weight=limit)  # 8,000 + 12,000 = limit
    assert t.num_txs == 0
    t = build(chain, ListSource([chunk]), block_max_weight=limit + 1)
    assert t.num_txs == 2


def test_sigop_limit_with_the_coinbase_reservation(chain: ChainState) -> None:
    room = 80_000 - DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS  # 79,600
    exact = [entry(1, 50_000, 1000, room)]  # reaches the limit: refused
    under = [entry(2, 40_000, 1000, room - 1)]
    one_more = [entry(3, 30_000, 1000, 1)]
    t = build(chain, ListSource([exact, under, one_more]))
    assert [x.txid for x in t.block.txs[1:]] == [under[0].tx.txid]
    assert t.sigop_cost == 80_000 - 1


def test_minimum_feerate_ends_selection(chain: ChainState) -> None:
    # Default -blockmintxfee is 1 sat/kvB: 1 sat for 1,000 vB passes, 0 sat ends it.
    assert DEFAULT_BLOCK_MIN_TX_FEE == 1
    at_min = [entry(1, 1, 4000)]  # 1 sat / 1,000 vB
    zero = [entry(2, 0, 400)]
    later = [entry(3, 5_000, 400)]  # never reached: the source promised decreasing feerates
    source = ListSource([at_min, zero, later])
    t = build(chain, source)
    assert [x.txid for x in t.block.txs[1:]] == [at_min[0].tx.txid]
    assert source.handed_out == 2
    # A higher -blockmintxfee (1,000 sat/kvB = 1 sat/vB): 399 sat for 400 vB is below it.
    t = build(
        chain, ListSource([[entry(4, 400, 1600)], [entry(5, 399, 1600)]]), block_min_fee_rate=1000
    )
    assert t.num_txs == 1 and t.fees[1] == 400
    # The chunk's feerate is judged on the modified fee (prioritisetransaction).
    prioritised = [TemplateTx(fake_tx(6), 0, 0, 400, modified_fee=1_000)]
    t = build(chain, ListSource([prioritised]))
    assert t.num_txs == 1 and t.fees == [0, 0] and t.chunk_feerates == [(1_000, 100)]


def test_non_final_transactions_are_left_out(chain: ChainState) -> None:
    mine(chain, 5)
    height = chain.height + 1  # 6
    mtp = chain.tip.median_time_past()
    by_height = [entry(1, 9_000, 400, locktime=height)]  # needs locktime < height
    final_height = [entry(2, 8_000, 400, locktime=height - 1)]
    by_time = [entry(3, 7_000, 400, locktime=mtp)]  # needs locktime < MTP (BIP113)
    final_time = [entry(4, 6_000, 400, locktime=mtp - 1)]
    seq_final = [entry(5, 5_000, 400, locktime=height + 100, sequence=0xFFFFFFFF)]
    t = build(chain, ListSource([by_height, final_height, by_time, final_time, seq_final]))
    assert [x.txid for x in t.block.txs[1:]] == [
        final_height[0].tx.txid,
        final_time[0].tx.txid,
        seq_final[0].tx.txid,
    ]


def test_chunks_spending_a_skipped_chunk_are_skipped(chain: ChainState) -> None:
    mine(chain, 1)
    parent = fake_tx(1, locktime=500)  # not final at height 2
    child = fake_tx(2, parent=parent)
    grandchild = fake_tx(3, parent=child)
    other = fake_tx(4)
    source = ListSource(
        [
            [TemplateTx(parent, 9_000, 0, 400)],
            [TemplateTx(child, 8_000, 0, 400)],
            [TemplateTx(grandchild, 7_000, 0, 400)],
            [TemplateTx(other, 1_000, 0, 400)],
        ]
    )
    t = build(chain, source)
    assert [x.txid for x in t.block.txs[1:]] == [other.txid]
    assert source.handed_out == 4


def test_consecutive_failures_stop_a_nearly_full_block(chain: ChainState) -> None:
    limit = 100_000
    filler = [entry(0, 10**6, limit - DEFAULT_BLOCK_RESERVED_WEIGHT - 3_000)]  # 3,000 left
    misses = [[entry(i, 10_000, 3_000)] for i in range(1, MAX_CONSECUTIVE_FAILURES + 2)]
    small = [entry(999_999, 100, 400)]  # would fit, but comes after the give-up point
    source = ListSource([filler, *misses, small])
    t = build(chain, source, block_max_weight=limit)
    assert t.num_txs == 1
    assert source.handed_out == 1 + MAX_CONSECUTIVE_FAILURES + 1  # stopped at failure 1,001
    # Not nearly full (more than 4,000 left): it keeps looking and finds the small one.
    filler = [entry(0, 10**6, limit - DEFAULT_BLOCK_RESERVED_WEIGHT - 5_000)]
    misses = [[entry(i, 10_000, 5_000)] for i in range(1, MAX_CONSECUTIVE_FAILURES + 2)]
    source = ListSource([filler, *misses, small])
    t = build(chain, source, block_max_weight=limit)
    assert t.num_txs == 2 and source.handed_out == len(source.chunks)


def test_options_are_clamped_as_core_clamps_them() -> None:
    o = AssemblerOptions(
        block_max_weight=5_000_000,
        block_reserved_weight=100,
        coinbase_output_max_additional_sigops=-5,
        block_min_fee_rate=-1,
    ).clamped()
    assert (o.block_max_weight, o.block_reserved_weight) == (4_000_000, 2_000)
    assert o.coinbase_output_max_additional_sigops == 0 and o.block_min_fee_rate == 0
    o = AssemblerOptions(block_max_weight=1000, block_reserved_weight=9000).clamped()
    assert (o.block_max_weight, o.block_reserved_weight) == (9000, 9000)
    assert AssemblerOptions().clamped() == AssemblerOptions()
    assert DEFAULT_BLOCK_MAX_WEIGHT == 4_000_000 and DEFAULT_BLOCK_RESERVED_WEIGHT == 8000


def test_block_version_option_only_on_regtest(chain: ChainState, tmp_path: Path) -> None:
    t = BlockAssembler(chain, AssemblerOptions(block_version=0x30000000)).create_new_block(b"\x51")
    assert t.block.header.version == 0x30000000
    main = ChainState(MAIN, tmp_path / "main", clock=lambda: float(NOW))
    try:
        t = BlockAssembler(main, AssemblerOptions(block_version=7)).create_new_block(b"\x51")
        assert t.block.header.version == 0x20000000
    finally:
        main.close()


@st.composite
def chunk_lists(draw: st.DrawFn) -> list[list[tuple[int, int, int]]]:
    """Chunks as lists of (fee, weight, sigops), sorted by decreasing chunk feerate."""
    chunks = draw(
        st.lists(
            st.lists(
                st.tuples(st.integers(0, 50_000), st.integers(60, 30_000), st.integers(0, 3_000)),
                min_size=1,
                max_size=3,
            ),
            max_size=40,
        )
    )

    def rate(c: list[tuple[int, int, int]]) -> float:
        return sum(f for f, _, _ in c) / ((sum(w for _, w, _ in c) + 3) // 4)

    return sorted(chunks, key=rate, reverse=True)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=chunk_lists(),
    limit=st.integers(10_000, 200_000),
    min_rate=st.sampled_from([1, 1000, 20_000]),
)
def test_selection_replays_the_rules(
    chain: ChainState, spec: list[list[tuple[int, int, int]]], limit: int, min_rate: int
) -> None:
    n = 0
    chunks: list[list[TemplateTx]] = []
    for c in spec:
        row = []
        for fee, weight, sigops in c:
            n += 1
            row.append(entry(n, fee, weight, sigops))
        chunks.append(row)
    t = build(chain, ListSource(chunks), block_max_weight=limit, block_min_fee_rate=min_rate)
    # Replay: each chunk is taken iff it pays the minimum and fits in what is left.
    weight, sigops, want = DEFAULT_BLOCK_RESERVED_WEIGHT, 400, []
    for c in chunks:
        w = sum(x.weight for x in c)
        s = sum(x.sigop_cost for x in c)
        if sum(x.fee for x in c) * 1000 < min_rate * ((w + 3) // 4):
            break
        if weight + w < limit and sigops + s < 80_000:
            want.extend(x.tx.txid for x in c)
            weight += w
            sigops += s
    assert [x.txid for x in t.block.txs[1:]] == want
    assert t.weight == weight < limit
    assert t.sigop_cost == sigops < 80_000


# -- real spends: validity and connection ---------------------------------------------------


@dataclass
class Spends:
    chain: ChainState
    coinbases: list[Tx] = field(default_factory=list)

    def spend(self, height: int, fee: int, n_outputs: int = 1) -> Tx:
        cb = self.coinbases[height - 1]
        value = cb.outputs[0].value - fee
        share = value // n_outputs
        outs = [TxOut(share, P2WSH_OP_TRUE) for _ in range(n_outputs - 1)]
        outs.append(TxOut(value - share * (n_outputs - 1), P2WSH_OP_TRUE))
        return spend_op_true_p2wsh(OutPoint(cb.txid, 0), outs)


@pytest.fixture
def funded(chain: ChainState) -> Spends:
    blocks = mine(chain, 110)
    return Spends(chain, [b.txs[0] for b in blocks])


def test_pool_transactions_make_a_valid_block(funded: Spends) -> None:
    chain = funded.chain
    parent = funded.spend(1, 0, 2)  # pays nothing: only its child lifts it in (CPFP)
    child = spend_op_true_p2wsh(
        OutPoint(parent.txid, 1), [TxOut(parent.outputs[1].value - 20_000, P2WSH_OP_TRUE)]
    )
    lone = funded.spend(2, 5_000)
    source = ListSource(
        [[template_tx(parent, 0), template_tx(child, 20_000)], [template_tx(lone, 5_000)]]
    )
    t = BlockAssembler(chain).create_new_block(P2WSH_OP_TRUE, source)
    assert [x.txid for x in t.block.txs[1:]] == [parent.txid, child.txid, lone.txid]
    assert t.coinbase_value == 50 * 10**8 + 25_000
    check_block_validity(chain, t.block, check_pow=False)  # every rule, scripts included
    assert chain.get_coin(funded.coinbases[0].txid, 0) is not None  # nothing was spent
    solved = solve(t.block)
    assert chain.accept_block(solved) is not None and chain.tip.hash == solved.hash
    assert chain.get_coin(funded.coinbases[0].txid, 0) is None
    assert chain.get_coin(child.txid, 0) is not None


def unsolved(block: Block, chain: ChainState) -> Block:
    """``block`` with the first nonce whose hash misses the target (regtest's is easy)."""
    h = block.header
    target = 0x7FFFFF << 232
    for nonce in range(1000):
        header = Header(h.version, h.prev_hash, h.merkle_root, h.time, h.bits, nonce)
        if int.from_bytes(header.hash, "little") > target:
            return Block(header, block.txs)
    raise AssertionError("no failing nonce")


def test_validity_reject_reasons(funded: Spends) -> None:
    chain = funded.chain
    spend = funded.spend(3, 1_000)
    good = (
        BlockAssembler(chain)
        .create_new_block(b"\x51", ListSource([[template_tx(spend, 1_000)]]))
        .block
    )
    check_block_validity(chain, good, check_pow=False)
    h = good.header

    def with_header(**kw: Any) -> Block:
        fields = {
            "version": h.version,
            "prev_hash": h.prev_hash,
            "merkle_root": h.merkle_root,
            "time": h.time,
            "bits": h.bits,
            "nonce": h.nonce,
        } | kw
        return Block(Header(**fields), good.txs)

    cases = {
        "inconclusive-not-best-prevblk": (with_header(prev_hash=b"\x11" * 32), {}),
        "bad-diffbits": (with_header(bits=0x207FFFFE), {}),
        "time-too-old": (with_header(time=chain.tip.median_time_past()), {}),
        "bad-txnmrklroot": (with_header(merkle_root=b"\x22" * 32), {}),
        "high-hash": (unsolved(good, chain), {"check_pow": True}),
    }
    checked = 0
    for code, (block, kw) in cases.items():
        with pytest.raises(RuleError) as info:
            check_block_validity(chain, block, **({"check_pow": False} | kw))
        assert info.value.code == code
        checked += 1
    assert checked == 5
    # Without the merkle check the bad root passes (as Core's check_merkle_root=false).
    check_block_validity(
        chain, with_header(merkle_root=b"\x22" * 32), check_pow=False, check_merkle_root=False
    )

    # The coinbase claims more than subsidy + fees.
    greedy = (
        BlockAssembler(chain)
        .create_new_block(b"\x51", ListSource([[template_tx(spend, 2_000)]]))
        .block
    )
    with pytest.raises(RuleError) as info:
        check_block_validity(chain, greedy, check_pow=False)
    assert info.value.code == "bad-cb-amount"
    # A spend of a coin that does not exist; a bad script, caught only with scripts checked.
    missing = spend_op_true_p2wsh(OutPoint(b"\x33" * 32, 0), [TxOut(1, P2WSH_OP_TRUE)])
    block = (
        BlockAssembler(chain)
        .create_new_block(b"\x51", ListSource([[template_tx(missing, 1_000)]]))
        .block
    )
    with pytest.raises(RuleError) as info:
        check_block_validity(chain, block, check_pow=False)
    assert info.value.code == "bad-txns-inputs-missingorspent"
    cb = funded.coinbases[4]
    bad = Tx(
        2,
        [TxIn(OutPoint(cb.txid, 0), b"", 0xFFFFFFFE, (b"\x00",))],
        [TxOut(cb.outputs[0].value - 1_000, P2WSH_OP_TRUE)],
        0,
    )
    block = (
        BlockAssembler(chain)
        .create_new_block(b"\x51", ListSource([[template_tx(bad, 1_000)]]))
        .block
    )
    check_block_validity(chain, block, check_pow=False, check_scripts=False)
    with pytest.raises(RuleError) as info:
        check_block_validity(chain, block, check_pow=False)
    assert info.value.code == "mandatory-script-verify-flag-failed"
    # A double spend inside the block.
    twice = funded.spend(3, 2_000)
    block = (
        BlockAssembler(chain)
        .create_new_block(
            b"\x51", ListSource([[template_tx(spend, 1_000)], [template_tx(twice, 2_000)]])
        )
        .block
    )
    with pytest.raises(RuleError) as info:
        check_block_validity(chain, block, check_pow=False)
    assert info.value.code == "bad-txns-inputs-missingorspent"
    # None of this touched the chain state.
    assert chain.height == 110 and chain.get_coin(funded.coinbases[2].txid, 0) is not None
