"""Core's CheckBlockHeader and CheckBlock: each reject code from a minimal block, Core's order of
the checks, and real mainnet/testnet3 blocks that must pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peercash.consensus.checks import (
    BLOCK_MUTATED_CODES,
    check_block,
    check_block_header,
)
from peercash.consensus.errors import RuleError
from peercash.consensus.merkle import merkle_root
from peercash.consensus.pow import check_proof_of_work
from peercash.consensus.primitives import (
    MAX_BLOCK_WEIGHT,
    NULL_HASH,
    Block,
    Header,
    OutPoint,
    Tx,
    TxIn,
    TxOut,
)
from peercash.consensus.script.sigops import MAX_BLOCK_SIGOPS_COST

DATA = Path(__file__).resolve().parents[1] / "data"

REGTEST_POW_LIMIT = 0x7FFFFF << 232
REGTEST_BITS = 0x207FFFFF
MAIN_POW_LIMIT = (1 << 224) - 1  # 00000000ffff...ff, mainnet's and testnet3's limit

NULL = OutPoint(NULL_HASH, 0xFFFFFFFF)
OP_CHECKSIG = 0xAC


def op(i: int, index: int = 0) -> OutPoint:
    return OutPoint(i.to_bytes(32, "little"), index)


def coinbase(script_sig: bytes = b"\x01\x01", outputs: tuple[TxOut, ...] | None = None) -> Tx:
    return Tx(1, [TxIn(NULL, script_sig)], outputs or (TxOut(50, b"\x51"),))


def spend(*prevouts: OutPoint, script_pubkey: bytes = b"\x51") -> Tx:
    return Tx(2, [TxIn(p) for p in prevouts], [TxOut(1, script_pubkey)])


def header_for(txs: list[Tx], *, bits: int = REGTEST_BITS, nonce: int = 0) -> Header:
    root, _ = merkle_root([tx.txid for tx in txs])
    return Header(0x20000000, b"\x11" * 32, root, 1_700_000_000, bits, nonce)


def make_block(txs: list[Tx], *, pow_ok: bool | None = None, root: bytes | None = None) -> Block:
    """A block over ``txs`` with the right merkle root (or ``root``); with ``pow_ok`` set, a nonce
    ground until the hash meets (True) or misses (False) the regtest target."""
    header = header_for(txs)
    if root is not None:
        header = Header(header.version, header.prev_hash, root, header.time, header.bits, 0)
    if pow_ok is not None:
        nonce = 0
        while True:
            h = Header(
                header.version,
                header.prev_hash,
                header.merkle_root,
                header.time,
                header.bits,
                nonce,
            )
            if check_proof_of_work(h.hash, h.bits, REGTEST_POW_LIMIT) == pow_ok:
                header = h
                break
            nonce += 1
    return Block(header, txs)


def code_of(block: Block, **kwargs: bool) -> str:
    with pytest.raises(RuleError) as info:
        check_block(block, REGTEST_POW_LIMIT, **kwargs)
    assert info.value.ban_score == 100
    return info.value.code


# -- header ------------------------------------------------------------------------------------


def test_header_proof_of_work() -> None:
    good = make_block([coinbase()], pow_ok=True)
    bad = make_block([coinbase()], pow_ok=False)
    check_block_header(good.header, REGTEST_POW_LIMIT)
    with pytest.raises(RuleError) as info:
        check_block_header(bad.header, REGTEST_POW_LIMIT)
    assert info.value.code == "high-hash"
    assert info.value.ban_score == 100
    check_block_header(bad.header, REGTEST_POW_LIMIT, check_pow=False)
    # A target above the network's limit fails whatever the hash.
    with pytest.raises(RuleError, match="high-hash"):
        check_block_header(good.header, MAIN_POW_LIMIT)


# -- CheckBlock, one code at a time ------------------------------------------------------------


def test_minimal_block_passes() -> None:
    check_block(make_block([coinbase()], pow_ok=True), REGTEST_POW_LIMIT)
    check_block(make_block([coinbase(), spend(op(1)), spend(op(2))]), REGTEST_POW_LIMIT, False)


def test_high_hash() -> None:
    block = make_block([coinbase()], pow_ok=False)
    assert code_of(block) == "high-hash"
    check_block(block, REGTEST_POW_LIMIT, check_pow=False)


def test_bad_merkle_root() -> None:
    block = make_block([coinbase(), spend(op(1))], root=b"\x22" * 32)
    assert code_of(block, check_pow=False) == "bad-txnmrklroot"
    check_block(block, REGTEST_POW_LIMIT, check_pow=False, check_merkle=False)


def test_mutated_merkle_tree() -> None:
    cb, a, b = coinbase(), spend(op(1)), spend(op(2))
    honest = make_block([cb, a, b])
    # Repeating the odd last transaction keeps the root (CVE-2012-2459)...
    mutated = Block(honest.header, [cb, a, b, b])
    assert header_for([cb, a, b, b]).merkle_root == honest.header.merkle_root
    check_block(honest, REGTEST_POW_LIMIT, check_pow=False)
    # ...but is caught by the mutation flag, before the duplicate inputs are.
    assert code_of(mutated, check_pow=False) == "bad-txns-duplicate"
    # Without the merkle check, the duplicated transaction is still a valid transaction.
    check_block(mutated, REGTEST_POW_LIMIT, check_pow=False, check_merkle=False)


def test_no_transactions() -> None:
    block = Block(header_for([]), [])
    assert block.header.merkle_root == NULL_HASH
    assert code_of(block, check_pow=False) == "bad-blk-length"


def test_too_many_transactions() -> None:
    # More than MAX_BLOCK_WEIGHT / 4 transactions; the same object repeated keeps the test cheap.
    tx = spend(op(1))
    n = MAX_BLOCK_WEIGHT // 4 + 1
    block = Block(header_for([coinbase()]), [coinbase(), *([tx] * (n - 1))])
    assert len(block.txs) == n
    assert code_of(block, check_pow=False, check_merkle=False) == "bad-blk-length"


def _padded(target_legacy_size: int) -> Block:
    """A coinbase and two transactions whose block serializes to exactly this many legacy bytes."""
    fill = 450_000
    txs = [
        coinbase(),
        spend(op(1), script_pubkey=b"\x00" * fill),
        spend(op(2), script_pubkey=b"\x00" * fill),
    ]
    size = len(Block(header_for(txs), txs).serialize_legacy())
    pad = target_legacy_size - size
    txs[2] = spend(op(2), script_pubkey=b"\x00" * (fill + pad))
    block = make_block(txs)
    assert len(block.serialize_legacy()) == target_legacy_size
    return block


def test_legacy_size_limit() -> None:
    limit = MAX_BLOCK_WEIGHT // 4
    check_block(_padded(limit), REGTEST_POW_LIMIT, check_pow=False)
    assert code_of(_padded(limit + 1), check_pow=False) == "bad-blk-length"


def test_witness_bytes_do_not_count_toward_length() -> None:
    # 1.5 MB of witness: too heavy (a contextual rule), but CheckBlock never looks at witnesses.
    heavy = Tx(2, [TxIn(op(1), b"", 0xFFFFFFFF, [b"\x00" * 1_500_000])], [TxOut(1, b"\x51")])
    check_block(make_block([coinbase(), heavy]), REGTEST_POW_LIMIT, check_pow=False)


def test_coinbase_missing() -> None:
    assert code_of(make_block([spend(op(1))]), check_pow=False) == "bad-cb-missing"
    assert code_of(make_block([spend(op(1)), coinbase()]), check_pow=False) == "bad-cb-missing"


def test_coinbase_multiple() -> None:
    txs = [coinbase(b"\x01\x01"), spend(op(1)), coinbase(b"\x01\x02")]
    assert code_of(make_block(txs), check_pow=False) == "bad-cb-multiple"


@pytest.mark.parametrize(
    ("bad_tx", "code"),
    [
        (Tx(2, [TxIn(op(1))], []), "bad-txns-vout-empty"),
        (Tx(2, [TxIn(op(1)), TxIn(op(1))], [TxOut(1, b"")]), "bad-txns-inputs-duplicate"),
        (Tx(2, [TxIn(op(1))], [TxOut(-1, b"")]), "bad-txns-vout-negative"),
        (Tx(2, [TxIn(op(1)), TxIn(NULL)], [TxOut(1, b"")]), "bad-txns-prevout-null"),
    ],
)
def test_transaction_codes_propagate(bad_tx: Tx, code: str) -> None:
    block = make_block([coinbase(), spend(op(7)), bad_tx])
    with pytest.raises(RuleError) as info:
        check_block(block, REGTEST_POW_LIMIT, check_pow=False)
    assert info.value.code == code
    assert bad_tx.txid_hex in info.value.reason
    assert isinstance(info.value.__cause__, RuleError)


def test_bad_coinbase_length_propagates() -> None:
    assert code_of(make_block([coinbase(b"\x01")]), check_pow=False) == "bad-cb-length"


def test_legacy_sigops_limit() -> None:
    limit = MAX_BLOCK_SIGOPS_COST // 4
    at_limit = bytes([OP_CHECKSIG]) * (limit - 1)
    # The coinbase output counts too: one OP_CHECKSIG there, the rest in a spend's output.
    cb = coinbase(outputs=(TxOut(50, bytes([OP_CHECKSIG])),))
    check_block(make_block([cb, spend(op(1), script_pubkey=at_limit)]), REGTEST_POW_LIMIT, False)
    over = at_limit + bytes([OP_CHECKSIG])
    block = make_block([cb, spend(op(1), script_pubkey=over)])
    assert code_of(block, check_pow=False) == "bad-blk-sigops"
    # scriptSigs count as well (legacy counting reads them, inaccurately, as scripts).
    in_sig = Tx(2, [TxIn(op(2), bytes([OP_CHECKSIG]))], [TxOut(1, b"")])
    block = make_block([cb, spend(op(1), script_pubkey=at_limit), in_sig])
    assert code_of(block, check_pow=False) == "bad-blk-sigops"


# -- Core's order ------------------------------------------------------------------------------


def test_order_pow_before_merkle() -> None:
    block = make_block([spend(op(1))], pow_ok=False, root=b"\x33" * 32)
    assert code_of(block) == "high-hash"
    assert code_of(block, check_pow=False) == "bad-txnmrklroot"


def test_order_merkle_before_length_and_coinbase() -> None:
    assert code_of(Block(header_for([coinbase()]), []), check_pow=False) == "bad-txnmrklroot"
    block = make_block([spend(op(1))], root=b"\x33" * 32)
    assert code_of(block, check_pow=False) == "bad-txnmrklroot"


def test_order_length_before_coinbase() -> None:
    txs = [spend(op(1), script_pubkey=b"\x00" * 1_000_000)]
    assert code_of(make_block(txs), check_pow=False) == "bad-blk-length"


def test_order_coinbase_before_transactions() -> None:
    txs = [Tx(2, [TxIn(op(1))], []), coinbase()]
    assert code_of(make_block(txs), check_pow=False) == "bad-cb-missing"
    txs = [coinbase(), Tx(2, [TxIn(op(1))], []), coinbase(b"\x02\x02")]
    assert code_of(make_block(txs), check_pow=False) == "bad-cb-multiple"


def test_order_transactions_before_sigops() -> None:
    many = bytes([OP_CHECKSIG]) * (MAX_BLOCK_SIGOPS_COST // 4 + 1)
    txs = [coinbase(), spend(op(1), script_pubkey=many), Tx(2, [TxIn(op(2))], [])]
    assert code_of(make_block(txs), check_pow=False) == "bad-txns-vout-empty"


def test_mutated_codes() -> None:
    assert {"bad-txnmrklroot", "bad-txns-duplicate"} <= BLOCK_MUTATED_CODES
    assert {"bad-witness-nonce-size", "bad-witness-merkle-match"} <= BLOCK_MUTATED_CODES
    assert "unexpected-witness" in BLOCK_MUTATED_CODES
    assert "bad-blk-length" not in BLOCK_MUTATED_CODES


# -- real blocks -------------------------------------------------------------------------------


def _real_block_files() -> list[Path]:
    index = json.loads((DATA / "bcoin" / "blocks" / "index.json").read_text())
    files = [DATA / "bcoin" / "blocks" / row["file"] for row in index]
    files += sorted((DATA / "btcd" / "blocks").glob("block-*.blk"))
    return files


@pytest.mark.parametrize("path", _real_block_files(), ids=lambda p: p.name[:20])
def test_real_blocks_pass(path: Path) -> None:
    block = Block.parse(path.read_bytes())
    check_block(block, MAIN_POW_LIMIT)


def test_real_block_tampered() -> None:
    block = Block.parse((DATA / "bcoin" / "blocks" / "block300025.raw").read_bytes())
    h = block.header
    other_root = Header(h.version, h.prev_hash, b"\x00" * 32, h.time, h.bits, h.nonce)
    with pytest.raises(RuleError, match="bad-txnmrklroot"):
        check_block(Block(other_root, block.txs), MAIN_POW_LIMIT, check_pow=False)
    # The changed header no longer meets its target.
    with pytest.raises(RuleError, match="high-hash"):
        check_block(Block(other_root, block.txs), MAIN_POW_LIMIT)
    # Swapping two transactions changes the root.
    txs = list(block.txs)
    txs[1], txs[2] = txs[2], txs[1]
    with pytest.raises(RuleError, match="bad-txnmrklroot"):
        check_block(Block(h, txs), MAIN_POW_LIMIT)
