"""BIP152 compact blocks (peercash.p2p.compact): SipHash-2-4, short ids, building a compact block,
rebuilding a block from one, and the differentially encoded indexes of the messages.

Vectors, with their origin (facts, not code):

* SipHash-2-4: the 64 outputs of the SipHash paper's reference implementation (Aumasson and
  Bernstein, ``siphash24.c``: key ``00 01 … 0f``, messages ``00 01 … (n-1)`` for n = 0…63), which
  Bitcoin Core's ``src/test/hash_tests.cpp`` also checks (``siphash_4_2_testvec``), plus Core's two
  ``SipHashUint256`` checks from the same file.
* A compact block: rust-bitcoin's ``bip152.rs`` test ``test_compact_block_vector`` (CC0): a regtest
  block of two transactions, its ``cmpctblock`` under nonce 18053200567810711460.
* Differential index encodings: rust-bitcoin's ``test_getblocktx_differential_encoding_…`` cases;
  Core's ``TransactionsRequestDeserializationMaxTest``/``…OverflowTest`` (blockencodings_tests).
* Rebuilding: the scenarios of Core's ``src/test/blockencodings_tests.cpp``, on a block built like
  its ``BuildBlockTestCase`` (three transactions: a coinbase-shaped one, one of one input, one of
  ten), the pool and extra transactions given as ``(wtxid, tx)`` pairs.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peercash.consensus.errors import (
    DecodeError,
    OversizeError,
    TrailingBytesError,
    TruncatedError,
)
from peercash.consensus.hashing import hash256
from peercash.consensus.merkle import (
    block_merkle_root,
    compute_witness_commitment,
    witness_commitment_script,
    witness_merkle_root,
)
from peercash.consensus.primitives import Block, Header, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.serialize import compact_size, pack_u64
from peercash.p2p import compact
from peercash.p2p import messages as m
from peercash.p2p.compact import (
    SHORT_ID_MASK,
    HeaderAndShortIDs,
    InvalidCompactBlock,
    PartiallyDownloadedBlock,
    ReconstructionFailed,
    block_transactions,
    is_block_mutated,
    short_id_key,
    siphash24,
    siphash24_many_python,
    siphash24_python,
)

# -- SipHash-2-4 ----------------------------------------------------------------------------------

# The SipHash paper's reference outputs (siphash24.c, "vectors"); Core: siphash_4_2_testvec.
SIPHASH_VECTORS = (
    0x726FDB47DD0E0E31, 0x74F839C593DC67FD, 0x0D6C8009D9A94F5A, 0x85676696D7FB7E2D,
    0xCF2794E0277187B7, 0x18765564CD99A68D, 0xCBC9466E58FEE3CE, 0xAB0200F58B01D137,
    0x93F5F5799A932462, 0x9E0082DF0BA9E4B0, 0x7A5DBBC594DDB9F3, 0xF4B32F46226BADA7,
    0x751E8FBC860EE5FB, 0x14EA5627C0843D90, 0xF723CA908E7AF2EE, 0xA129CA6149BE45E5,
    0x3F2ACC7F57C29BDB, 0x699AE9F52CBE4794, 0x4BC1B3F0968DD39C, 0xBB6DC91DA77961BD,
    0xBED65CF21AA2EE98, 0xD0F2CBB02E3B67C7, 0x93536795E3A33E88, 0xA80C038CCD5CCEC8,
    0xB8AD50C6F649AF94, 0xBCE192DE8A85B8EA, 0x17D835B85BBB15F3, 0x2F2E6163076BCFAD,
    0xDE4DAAACA71DC9A5, 0xA6A2506687956571, 0xAD87A3535C49EF28, 0x32D892FAD841C342,
    0x7127512F72F27CCE, 0xA7F32346F95978E3, 0x12E0B01ABB051238, 0x15E034D40FA197AE,
    0x314DFFBE0815A3B4, 0x027990F029623981, 0xCADCD4E59EF40C4D, 0x9ABFD8766A33735C,
    0x0E3EA96B5304A7D0, 0xAD0C42D6FC585992, 0x187306C89BC215A9, 0xD4A60ABCF3792B95,
    0xF935451DE4F21DF2, 0xA9538F0419755787, 0xDB9ACDDFF56CA510, 0xD06C98CD5C0975EB,
    0xE612A3CB9ECBA951, 0xC766E62CFCADAF96, 0xEE64435A9752FE72, 0xA192D576B245165A,
    0x0A8787BF8ECB74B2, 0x81B3E73D20B49B6F, 0x7FA8220BA3B2ECEA, 0x245731C13CA42499,
    0xB78DBFAF3A8D83BD, 0xEA1AD565322A1A0B, 0x60E61C23A3795013, 0x6606D7E446282B93,
    0x6CA4ECB15C5F91E1, 0x9F626DA15C9625F3, 0xE51B38608EF25F57, 0x958A324CEB064572,
)  # fmt: skip
PAPER_KEY = bytes(range(16))


@pytest.mark.parametrize("impl", [siphash24_python, siphash24], ids=["python", "default"])
def test_siphash_reference_vectors(impl: Callable[[bytes, bytes], int]) -> None:
    checked = 0
    for n, expected in enumerate(SIPHASH_VECTORS):
        assert impl(PAPER_KEY, bytes(range(n))) == expected, n
        checked += 1
    assert checked == 64


def test_siphash_core_uint256_vectors() -> None:
    # hash_tests.cpp: SipHashUint256(0x0706050403020100, 0x0F0E0D0C0B0A0908, uint256 whose
    # bytes are 00..1f) == 0x7127512f72f27cce; and SipHashUint256(1, 2, hash of an empty
    # version-1 transaction) == 0x79751e980c2a0a35.
    key = struct.pack("<QQ", 0x0706050403020100, 0x0F0E0D0C0B0A0908)
    assert key == PAPER_KEY
    for impl in (siphash24_python, siphash24):
        assert impl(key, bytes(range(32))) == 0x7127512F72F27CCE
        empty_tx = Tx(1, [], [], 0).serialize()
        assert empty_tx == bytes.fromhex("01000000000000000000")
        assert impl(struct.pack("<QQ", 1, 2), hash256(empty_tx)) == 0x79751E980C2A0A35


def test_siphash_key_must_be_16_bytes() -> None:
    with pytest.raises(ValueError, match=r"^a SipHash key is 16 bytes$"):
        siphash24_python(bytes(15), b"")


def test_default_backend_is_the_c_one_here() -> None:
    # siphashc is a dependency (pyproject); without it the module falls back to ours.
    assert compact.SIPHASH_BACKEND == "siphashc"
    assert compact.siphash24 is not siphash24_python


def test_many_at_once_matches_one_at_a_time() -> None:
    assert siphash24_many_python(PAPER_KEY, [bytes(range(32))]) == [0x7127512F72F27CCE]
    assert siphash24_many_python(PAPER_KEY, []) == []
    wtxids = [hash256(i.to_bytes(4, "little")) for i in range(5000)]
    key = hash256(b"key")[:16]
    assert siphash24_many_python(key, wtxids) == [siphash24(key, w) for w in wtxids]
    with pytest.raises(ValueError, match=r"^every input must be 32 bytes$"):
        siphash24_many_python(key, [bytes(32), bytes(31), bytes(33)])
    with pytest.raises(ValueError, match=r"^a SipHash key is 16 bytes$"):
        siphash24_many_python(bytes(17), [bytes(32)])


@settings(max_examples=100)
@given(st.binary(min_size=16, max_size=16), st.lists(st.binary(min_size=32, max_size=32)))
def test_many_at_once_property(key: bytes, datas: list[bytes]) -> None:
    assert siphash24_many_python(key, datas) == [siphash24_python(key, d) for d in datas]


def test_falls_back_to_ours_without_siphashc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "siphashc", None)  # import now raises ImportError
    assert compact._load_c_siphash() is None
    wtxids = [hash256(i.to_bytes(4, "little")) for i in range(9000)]  # three batches of lanes
    with_c = compact.short_ids_of(PAPER_KEY, wtxids)
    # and a whole rebuild runs on our implementation
    monkeypatch.setattr(compact, "siphash24", siphash24_python)
    assert compact.short_ids_of(PAPER_KEY, wtxids) == with_c
    assert compact.short_ids_of(PAPER_KEY, wtxids[:3]) == with_c[:3]  # few: one at a time
    block = make_block([coinbase(), *(core_like_tx(900 + i) for i in range(40))])
    ids = HeaderAndShortIDs.from_block(block, 3)
    pool = [pair(core_like_tx(2000 + i)) for i in range(2000)] + [pair(t) for t in block.txs]
    partial = PartiallyDownloadedBlock()
    assert partial.init(ids.message, pool) == ()
    assert partial.fill(()).hash == block.hash


@settings(max_examples=300)
@given(st.binary(min_size=16, max_size=16), st.binary(max_size=80))
def test_siphash_backends_agree(key: bytes, data: bytes) -> None:
    assert siphash24(key, data) == siphash24_python(key, data)


# -- the rust-bitcoin compact block vector --------------------------------------------------------

RAW_BLOCK = bytes.fromhex(
    "000000206c750a364035aefd5f81508a08769975116d9195312ee4520dceac39e1fdc62c4dc67473b8e354358c1e"
    "610afeaff7410858bd45df43e2940f8a62bd3d5e3ac943c2975cffff7f2000000000020200000000010100000000"
    "00000000000000000000000000000000000000000000000000000000ffffffff04016b0101ffffffff020006062a"
    "0100000001510000000000000000266a24aa21a9ed4a3d9f3343dafcc0d6f6d4310f2ee5ce273ed34edca6c75db3"
    "a73e7f3687342001200000000000000000000000000000000000000000000000000000000000000000000000000"
    "20000000001021fc20ba2bd745507b8e00679e3b362558f9457db374ca28ffa5243f4c23a4d5f00000000171600"
    "147c9dea14ffbcaec4b575e03f05ceb7a81cd3fcbffdffffff915d689be87b43337f42e26033df59807b76822336"
    "8f189a023d0242d837768900000000171600147c9dea14ffbcaec4b575e03f05ceb7a81cd3fcbffdffffff0200cd"
    "f5050000000017a9146803c72d9154a6a20f404bed6d3dcee07986235a8700e1f5050000000017a9144e6a4c7cb5"
    "b5562904843bdf816342f4db9f5797870247304402205e9bf6e70eb0e4b495bf483fd8e6e02da64900f290ef8aaa"
    "64bb32600d973c450220670896f5d0e5f33473e5f399ab680cc1d25c2d2afd15abd722f04978f28be887012103e4"
    "e4d9312b2261af508b367d8ba9be4f01b61d6d6e78bec499845b4f410bcf2702473044022045ac80596a6ac9c8c5"
    "72f94708709adaf106677221122e08daf8b9741a04f66a022003ccd52a3b78f8fd08058fc04fc0cffa5f4c196c84"
    "eae9e37e2a85babe731b57012103e4e4d9312b2261af508b367d8ba9be4f01b61d6d6e78bec499845b4f410bcf27"
    "6a000000"
)
RAW_CMPCT = bytes.fromhex(
    "000000206c750a364035aefd5f81508a08769975116d9195312ee4520dceac39e1fdc62c4dc67473b8e354358c1e"
    "610afeaff7410858bd45df43e2940f8a62bd3d5e3ac943c2975cffff7f2000000000a4df3c3744da89fa010a6979"
    "e971450100020000000001010000000000000000000000000000000000000000000000000000000000000000ffff"
    "ffff04016b0101ffffffff020006062a0100000001510000000000000000266a24aa21a9ed4a3d9f3343dafcc0d6"
    "f6d4310f2ee5ce273ed34edca6c75db3a73e7f36873420012000000000000000000000000000000000000000000"
    "0000000000000000000000000000000"
)
VECTOR_NONCE = 18053200567810711460


def test_compact_block_vector() -> None:
    block = Block.parse(RAW_BLOCK)
    ids = HeaderAndShortIDs.from_block(block, VECTOR_NONCE)
    assert ids.message.encode() == RAW_CMPCT
    assert ids.message.short_ids == (0x4571E979690A,)  # 0a6979e97145 on the wire
    assert ids.short_id(block.txs[1].wtxid) == 0x4571E979690A
    assert ids.short_id(block.txs[1].txid) != 0x4571E979690A  # version 2: by wtxid, not txid
    assert ids.tx_count == 2
    assert ids.block_hash == block.hash
    # The key is the first 16 bytes of SHA256(header || nonce), k0 and k1 little-endian.
    expected_key = hashlib.sha256(RAW_BLOCK[:80] + VECTOR_NONCE.to_bytes(8, "little")).digest()
    assert ids.key == short_id_key(block.header, VECTOR_NONCE) == expected_key[:16]

    received = m.decode_message(b"cmpctblock", RAW_CMPCT)
    assert isinstance(received, m.CmpctBlock)
    partial = PartiallyDownloadedBlock()
    assert partial.init(received, [(block.txs[1].wtxid, block.txs[1])]) == ()
    assert partial.fill(()).serialize() == RAW_BLOCK


# -- test transactions and blocks -----------------------------------------------------------------


def outpoint(seed: int, n: int = 0) -> OutPoint:
    return OutPoint(hash256(seed.to_bytes(8, "little")), n)


def core_like_tx(seed: int, n_inputs: int = 1, locktime: int = 0) -> Tx:
    """As Core's BuildTransactionTestCase: a 10-byte scriptSig, one output of 42."""
    inputs = [TxIn(outpoint(seed, i), bytes(10)) for i in range(n_inputs)]
    return Tx(1, inputs, [TxOut(42, b"")], locktime)


def coinbase(tag: int = 0) -> Tx:
    return Tx(
        1, [TxIn(OutPoint(bytes(32), 0xFFFFFFFF), bytes(10) + bytes([tag]))], [TxOut(42, b"")]
    )


def make_block(txs: list[Tx], version: int = 42) -> Block:
    root, mutated = block_merkle_root(Block(Header(0, bytes(32), bytes(32), 0, 0, 0), txs))
    assert not mutated
    return Block(Header(version, hash256(b"prev"), root, 1_700_000_000, 0x207FFFFF, 0), txs)


def core_test_block() -> Block:
    """Core's BuildBlockTestCase: coinbase, a one-input transaction, a ten-input one."""
    return make_block([coinbase(), core_like_tx(1), core_like_tx(2, n_inputs=10)])


def pair(tx: Tx) -> tuple[bytes, Tx]:
    return (tx.wtxid, tx)


def available(partial: PartiallyDownloadedBlock, n: int) -> list[bool]:
    return [partial.is_tx_available(i) for i in range(n)]


def counts(partial: PartiallyDownloadedBlock) -> tuple[int, int, int]:
    return (partial.prefilled_count, partial.mempool_count, partial.extra_count)


# -- HeaderAndShortIDs.from_block -----------------------------------------------------------------


def test_from_block_prefills_the_coinbase_and_ids_the_rest() -> None:
    block = core_test_block()
    ids = HeaderAndShortIDs.from_block(block, 42)
    msg = ids.message
    assert msg.header == block.header
    assert msg.nonce == 42
    assert [p.index for p in msg.prefilled] == [0]
    assert msg.prefilled[0].tx == block.txs[0]
    key = short_id_key(block.header, 42)
    assert msg.short_ids == tuple(
        siphash24_python(key, tx.wtxid) & SHORT_ID_MASK for tx in block.txs[1:]
    )
    assert HeaderAndShortIDs(msg).key == ids.key


def test_from_block_prefill_choices_and_wire_indexes() -> None:
    block = core_test_block()
    everything = HeaderAndShortIDs.from_block(block, 42, prefill=(0, 1, 2)).message
    assert everything.short_ids == ()
    assert [p.index for p in everything.prefilled] == [0, 1, 2]
    # header, nonce, no short ids, three prefilled at differences 0, 0, 0
    assert everything.encode() == (
        block.header.serialize() + pack_u64(42) + b"\x00" + b"\x03"
        + b"".join(b"\x00" + tx.serialize() for tx in block.txs)
    )  # fmt: skip
    last_only = HeaderAndShortIDs.from_block(block, 42, prefill=(2,)).message
    assert len(last_only.short_ids) == 2
    assert [p.index for p in last_only.prefilled] == [2]
    none = HeaderAndShortIDs.from_block(block, 42, prefill=()).message
    assert len(none.short_ids) == 3
    assert none.prefilled == ()


def test_from_block_refuses_bad_arguments() -> None:
    block = core_test_block()
    cases: list[tuple[Callable[[], object], str]] = [
        (
            lambda: HeaderAndShortIDs.from_block(Block(block.header, []), 1),
            "^a block without transactions has no compact form$",
        ),
        (
            lambda: HeaderAndShortIDs.from_block(block, 1, prefill=(0, 0)),
            "^prefill indexes repeat$",
        ),
        (
            lambda: HeaderAndShortIDs.from_block(block, 1, prefill=(3,)),
            "^prefill index out of range for 3 transactions$",
        ),
        (
            lambda: HeaderAndShortIDs.from_block(block, 1, prefill=(-1,)),
            "^prefill index out of range for 3 transactions$",
        ),
        (lambda: HeaderAndShortIDs.from_block(block, -1), r"^nonce out of range"),
    ]
    for build, message in cases:
        with pytest.raises(ValueError, match=message):
            build()
    assert len(cases) == 5
    with pytest.raises(TypeError, match=r"^message must be a CmpctBlock$"):
        HeaderAndShortIDs(block)  # type: ignore[arg-type]


# -- Core's blockencodings_tests scenarios --------------------------------------------------------


def test_simple_round_trip() -> None:
    """SimpleRoundTripTest: the pool has transaction 2; 1 is asked for."""
    block = core_test_block()
    sent = HeaderAndShortIDs.from_block(block, 0x1234).message
    received = m.CmpctBlock.decode(sent.encode())
    assert received == sent

    def started() -> PartiallyDownloadedBlock:
        partial = PartiallyDownloadedBlock()
        assert partial.init(received, [pair(block.txs[2])]) == (1,)
        assert available(partial, 3) == [True, False, True]
        assert counts(partial) == (1, 1, 0)
        return partial

    partial = started()
    assert partial.request() == m.GetBlockTxn(block.hash, (1,))
    assert partial.block_hash == block.hash

    with pytest.raises(InvalidCompactBlock, match=r"^0 transactions sent for 1 missing$"):
        partial.fill([])
    assert partial.header is None  # a block is filled once
    with pytest.raises(InvalidCompactBlock, match=r"^no compact block to fill$"):
        partial.fill([block.txs[1]])

    partial = started()
    with pytest.raises(InvalidCompactBlock, match=r"^2 transactions sent for 1 missing$"):
        partial.fill([block.txs[1], block.txs[1]])
    assert partial.header is None

    partial = started()  # the wrong transaction: the block no longer matches its header
    with pytest.raises(ReconstructionFailed, match=r"possible short id collision"):
        partial.fill([block.txs[2]])
    assert partial.header is None

    partial = started()
    rebuilt = partial.fill(m.BlockTxn(block.hash, (block.txs[1],)))
    assert rebuilt.hash == block.hash
    assert rebuilt.serialize() == block.serialize()
    assert block_merkle_root(rebuilt) == (block.header.merkle_root, False)
    assert counts(partial) == (0, 0, 0)
    assert partial.missing == ()


def test_non_coinbase_preforward() -> None:
    """NonCoinbasePreforwardRTTest: transaction 1 prefilled, the coinbase by short id."""
    block = core_test_block()
    ids = HeaderAndShortIDs.from_block(block, 7, prefill=(1,))
    wire = ids.message.encode()
    assert m.CmpctBlock.decode(wire) == ids.message
    partial = PartiallyDownloadedBlock()
    assert partial.init(m.CmpctBlock.decode(wire), [pair(block.txs[2])]) == (0,)
    assert available(partial, 3) == [False, True, True]
    with pytest.raises(InvalidCompactBlock, match=r"^0 transactions sent for 1 missing$"):
        partial.fill(())
    partial.init(ids, [pair(block.txs[2])])
    with pytest.raises(ReconstructionFailed):
        partial.fill([block.txs[1]])
    partial.init(ids, [pair(block.txs[2])])
    assert partial.fill([block.txs[0]]).serialize() == block.serialize()


def test_sufficient_preforward() -> None:
    """SufficientPreforwardRTTest: coinbase and transaction 2 prefilled, 1 in the pool."""
    block = core_test_block()
    ids = HeaderAndShortIDs.from_block(block, 9, prefill=(0, 2))
    wire = ids.message.encode()
    # the prefilled indexes go out as differences 0 and 1 ("id == 1 as it is 1 after index 1")
    tx0 = block.txs[0].serialize()
    assert wire.endswith(b"\x02" + b"\x00" + tx0 + b"\x01" + block.txs[2].serialize())
    partial = PartiallyDownloadedBlock()
    assert partial.init(m.CmpctBlock.decode(wire), [pair(block.txs[1])]) == ()
    assert available(partial, 3) == [True, True, True]
    assert partial.fill(()).serialize() == block.serialize()


def test_empty_block_round_trip() -> None:
    """EmptyBlockRoundTripTest: only a coinbase."""
    block = make_block([coinbase()])
    ids = HeaderAndShortIDs.from_block(block, 5)
    assert ids.message.short_ids == ()
    partial = PartiallyDownloadedBlock()
    assert partial.init(m.CmpctBlock.decode(ids.message.encode()), []) == ()
    assert partial.is_tx_available(0)
    rebuilt = partial.fill([])
    assert rebuilt.hash == block.hash
    assert block_merkle_root(rebuilt) == (block.header.merkle_root, False)


def test_receive_with_extra_transactions() -> None:
    """ReceiveWithExtraTransactions: a block transaction only among the extra ones."""
    block = core_test_block()
    non_block_tx = core_like_tx(99)
    ids = HeaderAndShortIDs.from_block(block, 11)
    without = PartiallyDownloadedBlock()
    assert without.init(ids, [pair(block.txs[2])], []) == (1,)
    assert available(without, 3) == [True, False, True]
    with_extra = PartiallyDownloadedBlock()
    extra = [pair(non_block_tx), pair(block.txs[1])]
    assert with_extra.init(ids, [pair(block.txs[2])], extra) == ()
    assert available(with_extra, 3) == [True, True, True]
    assert counts(with_extra) == (1, 1, 1)
    assert with_extra.fill(()).serialize() == block.serialize()


def test_fill_resets_and_allows_a_new_init() -> None:
    """FillBlockResetsPartialBlock and FillBlockTooFewTransactionsClearsPartialBlock."""
    block = core_test_block()
    ids = HeaderAndShortIDs.from_block(block, 13)
    partial = PartiallyDownloadedBlock()
    partial.init(ids, [pair(block.txs[2])])
    assert counts(partial) == (1, 1, 0)
    partial.fill([block.txs[1]])
    assert partial.header is None
    assert counts(partial) == (0, 0, 0)
    assert not partial.is_tx_available(0)
    assert partial.init(ids, [pair(block.txs[2])]) == (1,)
    with pytest.raises(InvalidCompactBlock, match=r"^0 transactions sent for 1 missing$"):
        partial.fill([])
    with pytest.raises(InvalidCompactBlock, match=r"^no compact block to fill$"):
        partial.fill([block.txs[1]])
    partial.init(ids, [pair(block.txs[2])])
    assert partial.fill([block.txs[1]]).hash == block.hash


def test_init_twice_is_invalid() -> None:
    block = core_test_block()
    ids = HeaderAndShortIDs.from_block(block, 13)
    partial = PartiallyDownloadedBlock()
    partial.init(ids, [])
    with pytest.raises(InvalidCompactBlock, match=r"^already rebuilding a block$"):
        partial.init(ids, [])
    assert partial.missing == (1, 2)  # the first one is untouched


def test_invalid_init_data_resets() -> None:
    """InitDataFailureResetsPartialBlock: a null prefilled transaction, a null header."""
    block = core_test_block()
    null_tx = Tx(1, [], [], 0)
    # A null transaction decodes (version, two empty counts, lock time), as in Core.
    assert Tx.parse(null_tx.serialize()).inputs == ()
    valid = HeaderAndShortIDs.from_block(block, 17).message
    with_null = m.CmpctBlock(
        valid.header, valid.nonce, valid.short_ids, (m.PrefilledTx(0, null_tx),)
    )
    decoded = m.CmpctBlock.decode(with_null.encode())
    partial = PartiallyDownloadedBlock()
    with pytest.raises(InvalidCompactBlock, match=r"^null prefilled transaction at index 0$"):
        partial.init(decoded, [])
    assert partial.header is None
    with pytest.raises(InvalidCompactBlock, match=r"^no compact block to fill$"):
        partial.fill([])
    assert partial.init(valid, []) == (1, 2)
    assert partial.is_tx_available(0)

    h = valid.header
    null_header = Header(h.version, h.prev_hash, h.merkle_root, h.time, 0, h.nonce)
    with pytest.raises(InvalidCompactBlock, match=r"^null header$"):
        PartiallyDownloadedBlock().init(
            m.CmpctBlock(null_header, 1, valid.short_ids, valid.prefilled), []
        )


def test_index_overflows_are_refused_by_the_message() -> None:
    """Core's InitData overflow cases (a prefilled index of 65535 after the coinbase, more than
    65,535 transactions) never reach a PartiallyDownloadedBlock: the message refuses them."""
    block = core_test_block()
    valid = HeaderAndShortIDs.from_block(block, 19).message
    head = valid.header.serialize() + pack_u64(19)
    ids = compact_size(2) + b"".join(s.to_bytes(6, "little") for s in valid.short_ids)
    cb = block.txs[0].serialize()
    overflow = head + ids + compact_size(2) + b"\x00" + cb + b"\xfd\xff\xff" + cb
    with pytest.raises(m.MessageError) as info:
        m.decode_message(b"cmpctblock", overflow)
    assert isinstance(info.value.error, m.InvalidFieldError)
    assert str(info.value.error) == "prefilled transaction index 65536 out of range"
    # two short ids and two prefilled: four transactions, so index 3 is the last there is
    assert len(m.CmpctBlock.decode(head + ids + b"\x02\x00" + cb + b"\x02" + cb).prefilled) == 2
    past_end = head + ids + compact_size(2) + b"\x00" + cb + b"\x03" + cb
    with pytest.raises(m.InvalidFieldError, match=r"^prefilled transaction index 4 out of range$"):
        m.CmpctBlock.decode(past_end)
    # HeaderAndShortIDsDeserializationRejectsTooManyTransactions: 65,536 short ids
    too_many = head + b"\xfe\x00\x00\x01\x00" + bytes(6 * 0x10000) + b"\x00"
    with pytest.raises(OversizeError, match=r"^size 65536 exceeds limit 65535$"):
        m.CmpctBlock.decode(too_many)
    with pytest.raises(ValueError, match=r"^65536 short ids, more than 65535$"):
        m.CmpctBlock(valid.header, 0, tuple(range(0x10000)), ())


def test_duplicate_short_ids_fail() -> None:
    """PartiallyDownloadedBlockRejectsDuplicateShortIDs: the caller falls back to the block."""
    block = make_block([coinbase(), core_like_tx(1), core_like_tx(2, 10), core_like_tx(3)])
    valid = HeaderAndShortIDs.from_block(block, 23, prefill=(0, 2)).message
    assert len(valid.short_ids) == 2
    dup = m.CmpctBlock(
        valid.header, valid.nonce, (valid.short_ids[0], valid.short_ids[0]), valid.prefilled
    )
    partial = PartiallyDownloadedBlock()
    with pytest.raises(ReconstructionFailed, match=r"^two transactions of the block share"):
        partial.init(m.CmpctBlock.decode(dup.encode()), [pair(tx) for tx in block.txs])
    assert partial.header is None
    assert counts(partial) == (0, 0, 0)
    with pytest.raises(InvalidCompactBlock, match=r"^no compact block to fill$"):
        partial.fill([])


# -- short-id collisions among the candidates (Core: ShortIDCollisionTracksSourceCounts) --------


def variant(tx: Tx, mask: int) -> Tx:
    return Tx(tx.version, tx.inputs, tx.outputs, tx.locktime ^ mask)


@pytest.fixture
def collide(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[bytes, bytes]], None]:
    """Make chosen wtxids hash like others: ``collide({wtxid: as_if_wtxid})`` (as Core's tests
    mock ``GetShortID``; a real 48-bit collision would take 2**24 tries)."""

    def install(mapping: dict[bytes, bytes]) -> None:
        real = compact.siphash24

        def fake(key: bytes, data: bytes) -> int:
            return real(key, mapping.get(data, data))

        monkeypatch.setattr(compact, "siphash24", fake)

    return install


def collision_block() -> Block:
    txs = [coinbase(), core_like_tx(1), core_like_tx(2, 10), core_like_tx(3)]
    return make_block(txs)


def test_same_transaction_twice_is_no_collision() -> None:
    block = collision_block()
    ids = HeaderAndShortIDs.from_block(block, 29)
    partial = PartiallyDownloadedBlock()
    extra = [pair(block.txs[1]), pair(block.txs[1]), pair(block.txs[2])]  # 2 also in the pool
    assert partial.init(ids, [pair(block.txs[2])], extra) == (3,)
    assert counts(partial) == (1, 1, 1)
    assert partial.fill([block.txs[3]]).hash == block.hash


def test_pool_transaction_then_colliding_extra(
    collide: Callable[[dict[bytes, bytes]], None],
) -> None:
    block = collision_block()
    impostor = variant(block.txs[2], 64)
    collide({impostor.wtxid: block.txs[2].wtxid})
    ids = HeaderAndShortIDs.from_block(block, 31)
    partial = PartiallyDownloadedBlock()
    extra = [pair(block.txs[2]), pair(impostor)]  # the same one again, then a collision
    assert partial.init(ids, [pair(block.txs[2])], extra) == (1, 2, 3)
    assert counts(partial) == (1, 0, 0)
    rebuilt = partial.fill(list(block.txs[1:]))
    assert rebuilt.hash == block.hash


def test_collided_slot_stays_missing(collide: Callable[[dict[bytes, bytes]], None]) -> None:
    block = collision_block()
    a, b, c = (variant(block.txs[1], mask) for mask in (2, 4, 8))
    collide({t.wtxid: block.txs[1].wtxid for t in (a, b, c)})
    ids = HeaderAndShortIDs.from_block(block, 37)
    # a, a again (no collision), b (collision): slot 1 is asked for; slot 2 from the pool.
    first = PartiallyDownloadedBlock()
    assert first.init(ids, [pair(block.txs[2])], [pair(a), pair(a), pair(b)]) == (1, 3)
    assert counts(first) == (1, 1, 0)
    # three impostors and then the real one: once collided, the slot is not filled again.
    second = PartiallyDownloadedBlock()
    extra = [pair(a), pair(b), pair(c), pair(block.txs[1])]
    assert second.init(ids, [pair(block.txs[2])], extra) == (1, 3)
    assert second.fill([block.txs[1], block.txs[3]]).hash == block.hash


def test_collision_inside_the_pool(collide: Callable[[dict[bytes, bytes]], None]) -> None:
    block = collision_block()
    impostor = variant(block.txs[3], 1)
    collide({impostor.wtxid: block.txs[3].wtxid})
    ids = HeaderAndShortIDs.from_block(block, 41)
    partial = PartiallyDownloadedBlock()
    pool = [pair(block.txs[3]), pair(impostor), pair(block.txs[2])]
    assert partial.init(ids, pool) == (1, 3)
    assert counts(partial) == (1, 1, 0)


def test_lone_impostor_is_caught_when_filling(
    collide: Callable[[dict[bytes, bytes]], None],
) -> None:
    """The collision the pool cannot show (only the wrong transaction is there): the rebuilt
    block does not match its merkle root, so the caller fetches the full block (Core's
    READ_STATUS_FAILED after FillBlock, once READ_STATUS_CHECKBLOCK_FAILED)."""
    block = collision_block()
    impostor = variant(block.txs[2], 16)
    collide({impostor.wtxid: block.txs[2].wtxid})
    ids = HeaderAndShortIDs.from_block(block, 43)
    partial = PartiallyDownloadedBlock()
    assert partial.init(ids, [pair(impostor), pair(block.txs[1])]) == (3,)
    assert counts(partial) == (1, 2, 0)
    with pytest.raises(ReconstructionFailed) as info:
        partial.fill([block.txs[3]])
    expected = "rebuilt block does not match its header (possible short id collision)"
    assert info.value.reason == expected


def test_scan_stops_once_every_short_id_is_matched() -> None:
    """As Core's scan, ours stops once every short id is matched (after the batch in hand)."""
    block = core_test_block()
    ids = HeaderAndShortIDs.from_block(block, 47)
    consumed: list[int] = []

    def pool() -> Iterator[tuple[bytes, Tx]]:
        junk = (core_like_tx(5000 + i) for i in range(3000))
        for i, tx in enumerate([block.txs[1], block.txs[2], *junk]):
            consumed.append(i)
            yield pair(tx)

    def extra() -> Iterator[tuple[bytes, Tx]]:
        consumed.append(-1)
        yield pair(core_like_tx(7))

    partial = PartiallyDownloadedBlock()
    assert partial.init(ids, pool(), extra()) == ()
    assert compact._SCAN_CHUNK == 1024
    assert consumed == list(range(1024))  # the first batch only, and nothing of the extra


def test_extra_transactions_ring() -> None:
    ring = compact.ExtraTransactions(3)
    txs = [core_like_tx(700 + i) for i in range(5)]
    for tx in txs[:2]:
        ring.add(tx)
    assert list(ring) == [pair(txs[0]), pair(txs[1])]
    for tx in txs[2:]:
        ring.add(tx)  # the fourth overwrites slot 0, the fifth slot 1
    assert len(ring) == 3
    assert list(ring) == [pair(txs[3]), pair(txs[4]), pair(txs[2])]
    nothing = compact.ExtraTransactions(0)
    nothing.add(txs[0])
    assert list(nothing) == []
    assert (
        compact.ExtraTransactions().capacity
        == compact.DEFAULT_BLOCK_RECONSTRUCTION_EXTRA_TXN
        == 100
    )
    with pytest.raises(ValueError, match=r"^capacity must be a non-negative int: -1$"):
        compact.ExtraTransactions(-1)
    # as the extra source of a rebuild
    block = make_block([coinbase(), txs[3], txs[4]])
    partial = PartiallyDownloadedBlock()
    assert partial.init(HeaderAndShortIDs.from_block(block, 71), [], ring) == ()
    assert counts(partial) == (1, 0, 2)


# -- mutation -------------------------------------------------------------------------------------


def segwit_block(*, commit: bool = True, reserved: bytes = bytes(32)) -> Block:
    spend = Tx(2, [TxIn(outpoint(8), b"", 0xFFFFFFFF, [b"\x51"])], [TxOut(1, b"\x51")])
    cb_in = TxIn(OutPoint(bytes(32), 0xFFFFFFFF), b"\x01\x01", 0xFFFFFFFF, [reserved])
    draft = Block(Header(0, bytes(32), bytes(32), 0, 1, 0), [Tx(2, [cb_in], []), spend])
    root, _ = witness_merkle_root(draft)
    outputs = [TxOut(50, b"\x51")]
    if commit:
        commitment = compute_witness_commitment(root, reserved.ljust(32, b"\x00")[:32])
        outputs.append(TxOut(0, witness_commitment_script(commitment)))
    cb = Tx(2, [cb_in], outputs)
    return make_block([cb, spend])


def test_is_block_mutated() -> None:
    block = core_test_block()
    assert not is_block_mutated(block, True)
    h = block.header
    cases: list[tuple[Block, bool, bool]] = [
        # merkle root of other transactions
        (Block(block.header, [block.txs[0], block.txs[2], block.txs[1]]), True, True),
        # CVE-2012-2459: the last transaction repeated gives the same root
        (Block(block.header, [*block.txs, block.txs[2]]), True, True),
        (
            Block(Header(h.version, h.prev_hash, bytes(32), h.time, h.bits, 0), block.txs),
            True,
            True,
        ),
        (segwit_block(), True, False),
        (segwit_block(), False, True),  # witness data before segwit: unexpected-witness
        (segwit_block(commit=False), True, True),  # witness without a commitment
        (segwit_block(reserved=b"\x01" * 31), True, True),  # bad-witness-nonce-size
    ]
    checked = 0
    for candidate, segwit, expected in cases:
        assert is_block_mutated(candidate, segwit) is expected, checked
        checked += 1
    assert checked == 7
    # A witness that differs from the committed one (same txids, other wtxid).
    good = segwit_block()
    cb, spend = good.txs
    other = Tx(spend.version, [TxIn(spend.inputs[0].prevout, b"", 0xFFFFFFFF, [b"\x52"])],
               spend.outputs, spend.locktime)  # fmt: skip
    assert other.txid == spend.txid and other.wtxid != spend.wtxid
    assert is_block_mutated(Block(good.header, [cb, other]), True)
    assert is_block_mutated(Block(good.header, [cb, other]), False)  # any witness, pre-segwit


def test_sixty_four_byte_transaction_without_coinbase() -> None:
    # 4 version + 1 + 41 (input, empty script) + 1 + 9 (output, empty script) + 4 = 60 bytes;
    # four script bytes make it 64.
    tx64 = Tx(1, [TxIn(outpoint(3), b"")], [TxOut(1, b"\x51\x51\x51\x51")])
    assert len(tx64.serialize_legacy()) == 64
    tx65 = Tx(1, [TxIn(outpoint(3), b"")], [TxOut(1, b"\x51\x51\x51\x51\x51")])
    assert is_block_mutated(make_block([tx64]), True)
    assert not is_block_mutated(make_block([tx65]), True)
    assert not is_block_mutated(make_block([coinbase(), tx64]), True)


def test_segwit_block_rebuilt_from_the_pool() -> None:
    block = segwit_block()
    assert not is_block_mutated(block, True)
    ids = HeaderAndShortIDs.from_block(block, 53)
    partial = PartiallyDownloadedBlock()
    assert partial.init(ids, [pair(block.txs[1])]) == ()
    assert partial.fill((), segwit_active=True).serialize() == block.serialize()
    # Before segwit the same block carries unexpected witness data: not this block.
    partial.init(ids, [pair(block.txs[1])])
    with pytest.raises(ReconstructionFailed):
        partial.fill((), segwit_active=False)


def test_fill_checks_its_arguments_before_consuming_the_block() -> None:
    block = core_test_block()
    ids = HeaderAndShortIDs.from_block(block, 59)
    partial = PartiallyDownloadedBlock()
    partial.init(ids, [pair(block.txs[2])])
    with pytest.raises(ValueError, match=r"^blocktxn is for another block$"):
        partial.fill(m.BlockTxn(bytes(32), (block.txs[1],)))
    with pytest.raises(TypeError, match=r"^transactions must be Tx$"):
        partial.fill([None])  # type: ignore[list-item]
    assert partial.missing == (1,)  # still there (Core: FillBlockRejectsNullMissingTxRefs)
    assert partial.fill([block.txs[1]]).hash == block.hash
    with pytest.raises(ValueError, match=r"^no block being rebuilt$"):
        partial.request()


# -- serving getblocktxn --------------------------------------------------------------------------


def test_block_transactions() -> None:
    block = core_test_block()
    answer = block_transactions(block, m.GetBlockTxn(block.hash, (0, 2)))
    assert answer == m.BlockTxn(block.hash, (block.txs[0], block.txs[2]))
    assert m.BlockTxn.decode(answer.encode()) == answer
    with pytest.raises(InvalidCompactBlock, match=r"^getblocktxn with out-of-bounds tx indices$"):
        block_transactions(block, m.GetBlockTxn(block.hash, (1, 3)))
    with pytest.raises(ValueError, match=r"^getblocktxn is for another block$"):
        block_transactions(block, m.GetBlockTxn(bytes(32), (1,)))
    assert block_transactions(block, m.GetBlockTxn(block.hash, ())).txs == ()


def test_round_trip_through_the_messages() -> None:
    """Sender and receiver, every message through its wire form."""
    block = make_block([coinbase(), *(core_like_tx(10 + i, 1 + i % 3) for i in range(20))])
    pool = [pair(tx) for i, tx in enumerate(block.txs) if i % 4 != 1] + [
        pair(core_like_tx(1000 + i)) for i in range(50)
    ]
    sent = m.decode_message(b"cmpctblock", HeaderAndShortIDs.from_block(block, 61).message.encode())
    assert isinstance(sent, m.CmpctBlock)
    partial = PartiallyDownloadedBlock()
    missing = partial.init(sent, pool)
    assert missing == (1, 5, 9, 13, 17)
    request = m.decode_message(b"getblocktxn", partial.request().encode())
    assert isinstance(request, m.GetBlockTxn)
    answer = m.decode_message(b"blocktxn", block_transactions(block, request).encode())
    assert isinstance(answer, m.BlockTxn)
    assert partial.fill(answer).serialize() == block.serialize()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=40),
    data=st.data(),
)
def test_rebuild_property(n: int, data: st.DataObject) -> None:
    txs = [coinbase(n)] + [core_like_tx(200 + i, 1 + i % 2) for i in range(n - 1)]
    block = make_block(txs)
    indexes = st.sets(st.integers(min_value=0, max_value=n - 1))
    prefill = sorted(data.draw(indexes, label="prefill"))
    in_pool = data.draw(indexes, label="in pool")
    in_extra = data.draw(indexes, label="in extra")
    nonce = data.draw(st.integers(min_value=0, max_value=2**64 - 1), label="nonce")
    ids = HeaderAndShortIDs.from_block(block, nonce, prefill=prefill)
    assert ids.tx_count == n
    wire = ids.message.encode()
    assert m.CmpctBlock.decode(wire) == ids.message
    junk = [pair(core_like_tx(5000 + i)) for i in range(5)]
    partial = PartiallyDownloadedBlock()
    missing = partial.init(
        m.CmpctBlock.decode(wire),
        [pair(txs[i]) for i in sorted(in_pool)] + junk,
        [pair(txs[i]) for i in sorted(in_extra)],
    )
    expected = tuple(i for i in range(n) if i not in set(prefill) | in_pool | in_extra)
    assert missing == expected
    assert partial.prefilled_count == len(prefill)
    assert partial.mempool_count == len(in_pool - set(prefill))
    assert partial.extra_count == len(in_extra - set(prefill) - in_pool)
    request = m.GetBlockTxn.decode(partial.request().encode())
    answer = block_transactions(block, request)
    assert partial.fill(m.BlockTxn.decode(answer.encode())).serialize() == block.serialize()


# -- differentially encoded indexes ---------------------------------------------------------------


def test_getblocktxn_differential_vectors() -> None:
    # rust-bitcoin: (wire after the hash, indexes)
    cases = [
        (bytes([4, 0, 5, 1, 10]), (0, 6, 8, 19)),
        (bytes([1, 0]), (0,)),
        (bytes([5, 0, 0, 0, 0, 0]), (0, 1, 2, 3, 4)),
        (bytes([3, 1, 1, 1]), (1, 3, 5)),
        (bytes([3, 0, 0, 253, 0, 1]), (0, 1, 258)),  # fd 0001 is a difference of 256
        (bytes([1, 253, 255, 255]), (0xFFFF,)),  # Core: the highest legal index
        (bytes([2, 253, 254, 255, 0]), (0xFFFE, 0xFFFF)),
        (bytes([0]), ()),
    ]
    checked = 0
    for wire, indexes in cases:
        assert m.GetBlockTxn.decode(bytes(32) + wire).indexes == indexes
        assert m.GetBlockTxn(bytes(32), indexes).encode() == bytes(32) + wire
        checked += 1
    assert checked == 8


def test_getblocktxn_overflows() -> None:
    def req(*diffs: int) -> bytes:
        return bytes(32) + compact_size(len(diffs)) + b"".join(compact_size(d) for d in diffs)

    cases: list[tuple[bytes, type[DecodeError], str]] = [
        # Core's TransactionsRequestDeserializationOverflowTest: 0x7000, then 0xffff, then 65536
        (req(0x7000, 0x10000 - 0x7000 - 2, 0), m.InvalidFieldError,
         "transaction index 65536 overflows 16 bits"),
        (req(0xFFFF, 0), m.InvalidFieldError, "transaction index 65536 overflows 16 bits"),
        (req(0x10000), OversizeError, "size 65536 exceeds limit 65535"),
        # rust-bitcoin's error cases: differences of 2**64 - 2 and 2**64 - 1
        (bytes(32) + bytes([2, 255, 254] + [255] * 7 + [0]), OversizeError,
         f"size {2**64 - 2} exceeds limit 65535"),
        (bytes(32) + bytes([1] + [255] * 9), OversizeError,
         f"size {2**64 - 1} exceeds limit 65535"),
        (bytes(32) + b"\x01\xfd\x05\x00", DecodeError, "non-canonical compact size"),
    ]  # fmt: skip
    checked = 0
    for payload, error, message in cases:
        with pytest.raises(error) as info:
            m.GetBlockTxn.decode(payload)
        assert str(info.value) == message
        checked += 1
    assert checked == 6
    with pytest.raises(ValueError, match=r"^index out of range \[2, 65535\]: 1$"):
        m.GetBlockTxn(bytes(32), (0, 1, 1))
    with pytest.raises(ValueError, match=r"^index out of range \[0, 65535\]: 65536$"):
        m.GetBlockTxn(bytes(32), (0x10000,))


def test_cmpctblock_prefilled_differences() -> None:
    block = make_block([coinbase(), *(core_like_tx(300 + i) for i in range(300))])
    ids = HeaderAndShortIDs.from_block(block, 67, prefill=(0, 1, 258, 300))
    wire = ids.message.encode()
    txs = block.txs
    tail = (
        compact_size(4)
        + b"\x00" + txs[0].serialize()
        + b"\x00" + txs[1].serialize()
        + b"\xfd\x00\x01" + txs[258].serialize()  # 258 - 1 - 1 = 256
        + b"\x29" + txs[300].serialize()  # 300 - 258 - 1 = 41
    )  # fmt: skip
    assert wire.endswith(tail)
    decoded = m.CmpctBlock.decode(wire)
    assert [p.index for p in decoded.prefilled] == [0, 1, 258, 300]
    partial = PartiallyDownloadedBlock()
    pool = [pair(tx) for tx in txs]
    assert partial.init(decoded, pool) == ()
    assert partial.fill(()).hash == block.hash


def test_malformed_compact_messages() -> None:
    """Each malformed payload through ``decode_message``, with its exact error."""
    cb = coinbase()
    head = Header(1, bytes(32), bytes(32), 0, 0x207FFFFF, 0).serialize() + pack_u64(1)
    blocktxn = m.BlockTxn(bytes(32), (cb,)).encode()
    cases: list[tuple[bytes, bytes, type[DecodeError], str]] = [
        (b"blocktxn", blocktxn + b"\x00", TrailingBytesError, "1 trailing bytes at offset 104"),
        (b"blocktxn", blocktxn[:-1], TruncatedError, "truncated transaction lock time"),
        (b"blocktxn", bytes(32) + b"\xfe\x01\x00\x01\x00", OversizeError,
         "size 65537 exceeds limit 65536"),
        (b"blocktxn", bytes(32) + b"\x02" + bytes(19), TruncatedError,
         "count 2 needs at least 20 bytes, have 19"),
        (b"blocktxn", bytes(31), TruncatedError, "need 32 bytes at offset 0, have 31"),
        (b"cmpctblock", head + b"\x00\x00", m.InvalidFieldError,
         "compact block with no transactions"),
        (b"cmpctblock", head[:80], TruncatedError, "need 8 bytes at offset 80, have 0"),
        (b"cmpctblock", head + b"\x03" + bytes(12) + b"\x00", TruncatedError,
         "count 3 needs at least 18 bytes, have 13"),
        (b"cmpctblock", head + b"\x01" + bytes(6) + b"\x00\x00", TrailingBytesError,
         "1 trailing bytes at offset 96"),
        (b"getblocktxn", bytes(32) + b"\x02\x00", TruncatedError,
         "count 2 needs at least 2 bytes, have 1"),
        (b"getblocktxn", bytes(32) + b"\x01\x00\x00", TrailingBytesError,
         "1 trailing bytes at offset 34"),
    ]  # fmt: skip
    checked = 0
    for command, payload, error, message in cases:
        with pytest.raises(m.MessageError) as info:
            m.decode_message(command, payload)
        assert type(info.value.error) is error, (command, message)
        assert str(info.value.error) == message
        assert info.value.command == command
        checked += 1
    assert checked == 11
