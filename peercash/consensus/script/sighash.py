"""Signature hashes: the message each signature commits to, for every signature version.

Layer 0 (consensus). The script interpreter calls these; wallets and builders call them to sign.

* ``legacy_sighash``: the original ``SignatureHash`` (SigVersion BASE: bare and P2SH scripts),
  with all of its historical quirks.
* ``segwit_v0_sighash``: BIP143 (P2WPKH, P2WSH and their P2SH-nested forms).
* ``taproot_sighash``: BIP341 key-path and BIP342 tapscript (``SignatureHashSchnorr``).

All results are 32 bytes in wire (internal) order.

``PrecomputedTxData`` holds the per-transaction parts of these hashes. Each part is computed on
first use and then reused for every input, so the work for a whole transaction stays linear in its
size for segwit and taproot (the legacy scheme is quadratic by design; the cache only stops us from
re-serializing the unchanged parts each time).

Error contract: inputs are trusted to be well formed (the interpreter only calls with an index
inside the transaction). ``taproot_sighash`` returns None where Core's ``SignatureHashSchnorr``
fails; it raises ``ValueError`` if the spent outputs were not supplied.

Concurrency: the functions are pure. A ``PrecomputedTxData`` fills its lazy fields on first use;
two threads racing on one would compute the same values, so sharing is harmless, but the intended
use is one per transaction per validating thread.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any

from ..hashing import sha256
from ..primitives import Tx, TxOut
from ..serialize import compact_size, pack_i64, pack_u32

__all__ = [
    "SIGHASH_ALL",
    "SIGHASH_ANYONECANPAY",
    "SIGHASH_DEFAULT",
    "SIGHASH_NONE",
    "SIGHASH_SINGLE",
    "PrecomputedTxData",
    "legacy_sighash",
    "legacy_sighash_serialized",
    "segwit_v0_sighash",
    "taproot_sighash",
]

SIGHASH_DEFAULT = 0
SIGHASH_ALL = 1
SIGHASH_NONE = 2
SIGHASH_SINGLE = 3
SIGHASH_ANYONECANPAY = 0x80

_OUTPUT_MASK = 0x1F  # legacy and BIP143 look at the low five bits to find NONE / SINGLE
_TAPROOT_OUTPUT_MASK = 0x03
_VALID_TAPROOT_HASH_TYPES = frozenset((0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83))

# The hash function behind everything in this module. Looked up at call time so a test can count
# the bytes that are hashed.
_sha256 = hashlib.sha256

_ONE = (1).to_bytes(32, "little")  # uint256 one, Core's answer for the SIGHASH_SINGLE bug
_ZERO32 = bytes(32)

# A legacy input with an empty scriptSig: txid, index, empty script (0x00), sequence.
_BLANK_INPUT = struct.Struct("<32sIxI")
_BLANK_INPUT_SIZE = _BLANK_INPUT.size  # 41
_OUTPOINT = struct.Struct("<32sI")
_AMOUNT_SEQUENCE = struct.Struct("<qI")  # BIP143's amount, then nSequence
_SPEND_TYPE_INDEX = struct.Struct("<BI")  # BIP341's spend_type byte, then input_index
# The "null" output (value -1, empty script) SIGHASH_SINGLE puts before the signed output.
_NULL_OUTPUT = b"\xff" * 8 + b"\x00"

_TAPSIGHASH_TAG = sha256(b"TapSighash")
_TAPSIGHASH_PREFIX = _TAPSIGHASH_TAG + _TAPSIGHASH_TAG

_OP_PUSHDATA1 = 0x4C
_OP_PUSHDATA2 = 0x4D
_OP_PUSHDATA4 = 0x4E
_OP_CODESEPARATOR = 0xAB


def _dsha256(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


class PrecomputedTxData:
    """The per-transaction parts of the signature hashes, each computed once on first use.

    ``spent_outputs`` (the outputs the inputs spend, in input order) is needed only for taproot
    (``sha_amounts``, ``sha_scriptpubkeys``) and may be omitted for transactions without taproot
    inputs. BIP143's ``hash_*`` are the double SHA-256 of the same data whose single SHA-256 is
    BIP341's ``sha_*``, so each is derived from the other with one more 32-byte hash.
    """

    __slots__ = (
        "_annex_hashes",
        "_bip143_all",
        "_hash_outputs",
        "_hash_prevouts",
        "_hash_sequence",
        "_legacy_all_parts",
        "_legacy_blank_inputs",
        "_legacy_blank_inputs_noseq",
        "_legacy_outputs",
        "_prefix_states",
        "_sha_amounts",
        "_sha_outputs",
        "_sha_prevouts",
        "_sha_scriptpubkeys",
        "_sha_sequences",
        "_single_output_sha",
        "_tap_states",
        "spent_outputs",
        "tx",
    )

    tx: Tx
    spent_outputs: tuple[TxOut, ...] | None

    def __init__(self, tx: Tx, spent_outputs: Sequence[TxOut] | None = None) -> None:
        if spent_outputs is not None and len(spent_outputs) != len(tx.inputs):
            raise ValueError(
                f"{len(spent_outputs)} spent outputs for a transaction of {len(tx.inputs)} inputs"
            )
        self.tx = tx
        self.spent_outputs = None if spent_outputs is None else tuple(spent_outputs)
        self._sha_prevouts: bytes | None = None
        self._hash_prevouts: bytes | None = None
        self._hash_sequence: bytes | None = None
        self._hash_outputs: bytes | None = None
        self._sha_sequences: bytes | None = None
        self._sha_outputs: bytes | None = None
        self._sha_amounts: bytes | None = None
        self._sha_scriptpubkeys: bytes | None = None
        self._legacy_blank_inputs: bytes | None = None
        self._legacy_blank_inputs_noseq: bytes | None = None
        self._legacy_outputs: bytes | None = None
        # Per-input memos, so that many signatures in one input hash the annex and the
        # SIGHASH_SINGLE output once (Core keeps these in its per-input execution data). Created
        # on first use: most transactions need none of them.
        self._annex_hashes: dict[int, tuple[bytes, bytes]] | None = None
        self._single_output_sha: dict[int, bytes] | None = None
        self._prefix_states: dict[bool, tuple[int, Any]] | None = None
        self._bip143_all: tuple[bytes, bytes] | None = None
        self._legacy_all_parts: tuple[bytes, bytes] | None = None
        self._tap_states: dict[int, Any] | None = None

    # -- BIP341 single-SHA256 parts ---------------------------------------------------------------

    @property
    def sha_prevouts(self) -> bytes:
        h = self._sha_prevouts
        if h is None:
            pack = _OUTPOINT.pack
            h = _sha256(
                b"".join([pack(i.prevout.txid, i.prevout.index) for i in self.tx.inputs])
            ).digest()
            self._sha_prevouts = h
        return h

    @property
    def sha_sequences(self) -> bytes:
        h = self._sha_sequences
        if h is None:
            h = _sha256(b"".join([pack_u32(i.sequence) for i in self.tx.inputs])).digest()
            self._sha_sequences = h
        return h

    @property
    def sha_outputs(self) -> bytes:
        h = self._sha_outputs
        if h is None:
            h = _sha256(self._outputs_bytes()).digest()
            self._sha_outputs = h
        return h

    @property
    def sha_amounts(self) -> bytes:
        h = self._sha_amounts
        if h is None:
            spent = self._require_spent_outputs()
            h = _sha256(b"".join([pack_i64(o.value) for o in spent])).digest()
            self._sha_amounts = h
        return h

    @property
    def sha_scriptpubkeys(self) -> bytes:
        h = self._sha_scriptpubkeys
        if h is None:
            spent = self._require_spent_outputs()
            parts: list[bytes] = []
            for o in spent:
                spk = o.script_pubkey
                parts.append(compact_size(len(spk)))
                parts.append(spk)
            h = _sha256(b"".join(parts)).digest()
            self._sha_scriptpubkeys = h
        return h

    # -- BIP143 double-SHA256 parts: one more 32-byte hash over each single-SHA256 twin ----------

    @property
    def hash_prevouts(self) -> bytes:
        h = self._hash_prevouts
        if h is None:
            h = self._hash_prevouts = _sha256(self.sha_prevouts).digest()
        return h

    @property
    def hash_sequence(self) -> bytes:
        h = self._hash_sequence
        if h is None:
            h = self._hash_sequence = _sha256(self.sha_sequences).digest()
        return h

    @property
    def hash_outputs(self) -> bytes:
        h = self._hash_outputs
        if h is None:
            h = self._hash_outputs = _sha256(self.sha_outputs).digest()
        return h

    # -- helpers ----------------------------------------------------------------------------------

    def _require_spent_outputs(self) -> tuple[TxOut, ...]:
        spent = self.spent_outputs
        if spent is None:
            raise ValueError("taproot signature hashes need the spent outputs")
        return spent

    def _outputs_bytes(self) -> bytes:
        """All outputs serialized back to back (no count prefix)."""
        raw = self._legacy_outputs
        if raw is None:
            raw = b"".join([o.serialize() for o in self.tx.outputs])
            self._legacy_outputs = raw
        return raw

    def _blank_inputs(self, keep_sequences: bool) -> bytes:
        """Every input with an empty scriptSig, 41 bytes each, for the legacy hash.

        With ``keep_sequences`` False every sequence is zero (SIGHASH_NONE and SIGHASH_SINGLE
        blank the other inputs' sequences).
        """
        if keep_sequences:
            raw = self._legacy_blank_inputs
            if raw is None:
                pack = _BLANK_INPUT.pack
                raw = b"".join(
                    [pack(i.prevout.txid, i.prevout.index, i.sequence) for i in self.tx.inputs]
                )
                self._legacy_blank_inputs = raw
        else:
            raw = self._legacy_blank_inputs_noseq
            if raw is None:
                pack = _BLANK_INPUT.pack
                raw = b"".join([pack(i.prevout.txid, i.prevout.index, 0) for i in self.tx.inputs])
                self._legacy_blank_inputs_noseq = raw
        return raw

    def _legacy_prefix(self, keep_sequences: bool, index: int, blank: memoryview, n_in: int) -> Any:
        """A SHA-256 state that has hashed the legacy preimage up to input ``index``.

        Inputs are usually signed in order, so the state reached for one input is kept and
        extended for the next: the part before the signed input costs linear time over the
        whole transaction instead of quadratic (the part after it still is, by the rules).
        """
        states = self._prefix_states
        if states is None:
            states = self._prefix_states = {}
        memo = states.get(keep_sequences)
        if memo is not None and memo[0] <= index:
            start, state = memo
            h = state.copy()
        else:
            start = 0
            h = _sha256(pack_u32(self.tx.version & 0xFFFFFFFF) + compact_size(n_in))
        h.update(blank[start * _BLANK_INPUT_SIZE : index * _BLANK_INPUT_SIZE])
        states[keep_sequences] = (index, h.copy())
        return h

    def legacy_all_parts(self) -> tuple[bytes, bytes]:
        """The legacy SIGHASH_ALL preimage's constant ends: version and input count; output
        count, outputs and lock time."""
        parts = self._legacy_all_parts
        if parts is None:
            tx = self.tx
            head = pack_u32(tx.version & 0xFFFFFFFF) + compact_size(len(tx.inputs))
            tail = compact_size(len(tx.outputs)) + self._outputs_bytes() + pack_u32(tx.locktime)
            parts = self._legacy_all_parts = (head, tail)
        return parts

    def taproot_state(self, hash_type: int) -> Any:
        """A TapSighash state fed everything up to the input's own fields, for a hash type
        without ANYONECANPAY (epoch, hash type, the transaction-wide hashes); copy before use."""
        states = self._tap_states
        if states is None:
            states = self._tap_states = {}
        h = states.get(hash_type)
        if h is None:
            tx = self.tx
            parts = [
                _TAPSIGHASH_PREFIX,
                bytes((0, hash_type)),
                pack_u32(tx.version & 0xFFFFFFFF),
                pack_u32(tx.locktime),
                self.sha_prevouts,
                self.sha_amounts,
                self.sha_scriptpubkeys,
                self.sha_sequences,
            ]
            if hash_type == SIGHASH_DEFAULT or hash_type & _TAPROOT_OUTPUT_MASK == SIGHASH_ALL:
                parts.append(self.sha_outputs)
            h = states[hash_type] = _sha256(b"".join(parts))
        return h

    def bip143_all_parts(self) -> tuple[bytes, bytes]:
        """The SIGHASH_ALL preimage before and after the input's own fields (BIP143)."""
        parts = self._bip143_all
        if parts is None:
            tx = self.tx
            head = pack_u32(tx.version & 0xFFFFFFFF) + self.hash_prevouts + self.hash_sequence
            tail = self.hash_outputs + pack_u32(tx.locktime) + pack_u32(SIGHASH_ALL)
            parts = self._bip143_all = (head, tail)
        return parts

    def single_output_sha(self, index: int) -> bytes:
        """SHA-256 of output ``index`` serialized (BIP341's sha_single_output), memoized."""
        memo = self._single_output_sha
        if memo is None:
            memo = self._single_output_sha = {}
        h = memo.get(index)
        if h is None:
            h = _sha256(self.tx.outputs[index].serialize()).digest()
            memo[index] = h
        return h

    def annex_sha(self, index: int, annex: bytes) -> bytes:
        """SHA-256 of the annex with its length prefix (BIP341's sha_annex), memoized per input."""
        memos = self._annex_hashes
        if memos is None:
            memos = self._annex_hashes = {}
        memo = memos.get(index)
        if memo is not None and (memo[0] is annex or memo[0] == annex):
            return memo[1]
        h = _sha256(compact_size(len(annex)) + annex).digest()
        memos[index] = (annex, h)
        return h


# -- legacy (SigVersion::BASE) ------------------------------------------------------------------


def _legacy_script_code(script: bytes) -> bytes:
    """The scriptCode as the legacy hash serializes it: length prefix, then the script with every
    OP_CODESEPARATOR taken out.

    Opcodes are walked as the interpreter reads them, so a 0xab byte inside pushed data is left
    alone. Core's serializer has one more quirk, kept here: the length prefix counts every byte
    but the separators, yet when the script ends in a truncated push, the bytes after the point
    where reading the truncated push stopped (the missing data's remnant) are not written.
    """
    end = len(script)
    pos = 0
    cuts: list[int] = []  # positions just after each OP_CODESEPARATOR
    stop = end
    while pos < end:
        op = script[pos]
        pos += 1
        if op <= _OP_PUSHDATA4:
            if op < _OP_PUSHDATA1:
                size = op
            elif op == _OP_PUSHDATA1:
                if end - pos < 1:
                    stop = pos
                    break
                size = script[pos]
                pos += 1
            elif op == _OP_PUSHDATA2:
                if end - pos < 2:
                    stop = pos
                    break
                size = script[pos] | script[pos + 1] << 8
                pos += 2
            else:
                if end - pos < 4:
                    stop = pos
                    break
                size = int.from_bytes(script[pos : pos + 4], "little")
                pos += 4
            if end - pos < size:
                stop = pos
                break
            pos += size
        elif op == _OP_CODESEPARATOR:
            cuts.append(pos)
    prefix = compact_size(end - len(cuts))
    if not cuts:
        return prefix + (script if stop == end else script[:stop])
    parts = [prefix]
    begin = 0
    for cut in cuts:
        parts.append(script[begin : cut - 1])
        begin = cut
    parts.append(script[begin:stop])
    return b"".join(parts)


def legacy_sighash(
    script_code: bytes,
    tx: Tx,
    index: int,
    hash_type: int,
    cache: PrecomputedTxData | None = None,
) -> bytes:
    """Core's original ``SignatureHash`` for bare and P2SH scripts.

    ``script_code`` is the script from the last executed OP_CODESEPARATOR on, after the
    interpreter's FindAndDelete of the signature; the remaining OP_CODESEPARATORs are removed here.
    ``hash_type`` is the signature's hash type as a signed or unsigned 32-bit value; it is committed
    as 4 little-endian bytes. Returns uint256 one (the famous SIGHASH_SINGLE bug) when ``index`` is
    past the inputs, or past the outputs with SIGHASH_SINGLE.

    ``cache`` (optional) keeps the blanked inputs and serialized outputs between calls for the
    same transaction; pass the ``PrecomputedTxData`` you already have.
    """
    return legacy_sighash_serialized(_legacy_script_code(script_code), tx, index, hash_type, cache)


_SMALL_TX_INPUTS = 16
"""Up to this many inputs, a legacy preimage is joined and hashed in one go; beyond it, the
hash state reached before the signed input is carried from one input to the next."""


def legacy_sighash_serialized(
    serialized_code: bytes,
    tx: Tx,
    index: int,
    hash_type: int,
    cache: PrecomputedTxData | None = None,
) -> bytes:
    """``legacy_sighash`` for a script code already in the form the hash commits to: length
    prefix, then the script without OP_CODESEPARATORs (callers that know their script is made of
    complete opcodes without separators pass ``compact_size(len(script)) + script``)."""
    inputs = tx.inputs
    n_in = len(inputs)
    if index >= n_in:
        return _ONE
    base = hash_type & _OUTPUT_MASK
    if base == SIGHASH_SINGLE and index >= len(tx.outputs):
        return _ONE
    if cache is None or cache.tx is not tx:
        cache = PrecomputedTxData(tx)
    anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY
    txin = inputs[index]
    prevout = txin.prevout
    signed_input = b"".join(
        (_OUTPOINT.pack(prevout.txid, prevout.index), serialized_code, pack_u32(txin.sequence))
    )
    if (
        not anyone_can_pay
        and n_in <= _SMALL_TX_INPUTS
        and base != SIGHASH_NONE
        and base != SIGHASH_SINGLE
    ):
        head, tail = cache.legacy_all_parts()
        blanks = cache._blank_inputs(True)
        start = index * _BLANK_INPUT_SIZE
        preimage = b"".join(
            (
                head,
                blanks[:start],
                signed_input,
                blanks[start + _BLANK_INPUT_SIZE :],
                tail,
                pack_u32(hash_type & 0xFFFFFFFF),
            )
        )
        return _sha256(_sha256(preimage).digest()).digest()

    if anyone_can_pay:
        h = _sha256(pack_u32(tx.version & 0xFFFFFFFF))
        h.update(b"\x01")
        h.update(signed_input)
    else:
        keep = base != SIGHASH_NONE and base != SIGHASH_SINGLE
        blank = memoryview(cache._blank_inputs(keep))
        h = cache._legacy_prefix(keep, index, blank, n_in)
        h.update(signed_input)
        h.update(blank[(index + 1) * _BLANK_INPUT_SIZE :])

    if base == SIGHASH_NONE:
        h.update(b"\x00")
    elif base == SIGHASH_SINGLE:
        h.update(compact_size(index + 1))
        h.update(_NULL_OUTPUT * index)
        h.update(tx.outputs[index].serialize())
    else:
        h.update(compact_size(len(tx.outputs)))
        h.update(cache._outputs_bytes())
    h.update(pack_u32(tx.locktime))
    h.update(pack_u32(hash_type & 0xFFFFFFFF))
    return _sha256(h.digest()).digest()


# -- BIP143 (SigVersion::WITNESS_V0) ------------------------------------------------------------


def segwit_v0_sighash(
    script_code: bytes,
    tx: Tx,
    index: int,
    hash_type: int,
    amount: int,
    cache: PrecomputedTxData,
) -> bytes:
    """BIP143's signature hash for input ``index`` spending ``amount`` satoshis.

    ``script_code`` is the bare script (no length prefix): for P2WPKH the implied P2PKH script, for
    P2WSH the witness script from the last executed OP_CODESEPARATOR on (nothing is removed).
    """
    txin = tx.inputs[index]
    prevout = txin.prevout
    n = len(script_code)
    if hash_type == SIGHASH_ALL:
        # The common case: everything but the input's own fields is the same for every input.
        head, tail = cache.bip143_all_parts()
        preimage = b"".join(
            (
                head,
                _OUTPOINT.pack(prevout.txid, prevout.index),
                bytes((n,)) if n < 0xFD else compact_size(n),
                script_code,
                _AMOUNT_SEQUENCE.pack(amount, txin.sequence),
                tail,
            )
        )
        return _sha256(_sha256(preimage).digest()).digest()
    base = hash_type & _OUTPUT_MASK
    anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY
    if anyone_can_pay:
        hash_prevouts = _ZERO32
        hash_sequence = _ZERO32
    else:
        hash_prevouts = cache.hash_prevouts
        if base != SIGHASH_SINGLE and base != SIGHASH_NONE:
            hash_sequence = cache.hash_sequence
        else:
            hash_sequence = _ZERO32
    if base != SIGHASH_SINGLE and base != SIGHASH_NONE:
        hash_outputs = cache.hash_outputs
    elif base == SIGHASH_SINGLE and index < len(tx.outputs):
        hash_outputs = _sha256(cache.single_output_sha(index)).digest()
    else:
        hash_outputs = _ZERO32

    preimage = b"".join(
        (
            pack_u32(tx.version & 0xFFFFFFFF),
            hash_prevouts,
            hash_sequence,
            prevout.txid,
            pack_u32(prevout.index),
            bytes((n,)) if n < 0xFD else compact_size(n),
            script_code,
            pack_i64(amount),
            pack_u32(txin.sequence),
            hash_outputs,
            pack_u32(tx.locktime),
            pack_u32(hash_type & 0xFFFFFFFF),
        )
    )
    return _sha256(_sha256(preimage).digest()).digest()


# -- BIP341 / BIP342 (SigVersion::TAPROOT, TAPSCRIPT) ------------------------------------------


def taproot_sighash(
    tx: Tx,
    index: int,
    hash_type: int,
    cache: PrecomputedTxData,
    ext_flag: int,
    annex: bytes | None,
    tapleaf_hash: bytes | None = None,
    codesep_pos: int = 0xFFFFFFFF,
) -> bytes | None:
    """BIP341's ``SigMsg`` hashed with the ``TapSighash`` tag (Core's ``SignatureHashSchnorr``).

    ``ext_flag`` is 0 for a key-path spend and 1 for a tapscript signature, which also commits to
    ``tapleaf_hash``, key version 0 and ``codesep_pos``. ``annex`` is the annex including its 0x50
    tag byte, or None. Returns None for an undefined hash type and for SIGHASH_SINGLE without a
    matching output, where Core fails the signature.
    """
    if hash_type not in _VALID_TAPROOT_HASH_TYPES:
        return None
    output_type = SIGHASH_ALL if hash_type == SIGHASH_DEFAULT else hash_type & _TAPROOT_OUTPUT_MASK
    anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY
    if output_type == SIGHASH_SINGLE and index >= len(tx.outputs):
        return None
    spent = cache._require_spent_outputs()

    if anyone_can_pay:
        h = _sha256(_TAPSIGHASH_PREFIX)
        # epoch 0, hash type, then the transaction-wide data
        h.update(bytes((0, hash_type)))
        h.update(pack_u32(tx.version & 0xFFFFFFFF))
        h.update(pack_u32(tx.locktime))
        if output_type == SIGHASH_ALL:
            h.update(cache.sha_outputs)
        # the input being signed
        h.update(bytes(((ext_flag << 1) | (annex is not None),)))
        txin = tx.inputs[index]
        h.update(_OUTPOINT.pack(txin.prevout.txid, txin.prevout.index))
        h.update(spent[index].serialize())
        h.update(pack_u32(txin.sequence))
    else:
        # The same fields in the same order, the transaction-wide ones hashed once per tx.
        h = cache.taproot_state(hash_type).copy()
        h.update(_SPEND_TYPE_INDEX.pack((ext_flag << 1) | (annex is not None), index))
    if annex is not None:
        h.update(cache.annex_sha(index, annex))
    if output_type == SIGHASH_SINGLE:
        h.update(cache.single_output_sha(index))
    if ext_flag == 1:
        if tapleaf_hash is None:
            raise ValueError("a tapscript signature hash needs the tapleaf hash")
        h.update(tapleaf_hash)
        h.update(b"\x00")  # key_version
        h.update(pack_u32(codesep_pos & 0xFFFFFFFF))
    return h.digest()
