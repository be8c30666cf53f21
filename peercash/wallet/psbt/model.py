"""The PSBT data model and its byte encoding: BIP174 (v0), BIP370 (v2) and BIP371 (taproot).

Layer 3 (wallet), pure. ``Psbt.parse``/``Psbt.from_base64`` decode strictly and with bounds (every
length is checked against what is left before anything is built; duplicate keys, wrong key sizes,
fields of the other version and trailing bytes are refused); ``serialize`` writes the canonical
form: each map's entries in the byte order of their keys, as a lexicographically ordering combiner
writes them, which is also the order of every valid BIP vector. Unknown and proprietary entries are
kept and written back unchanged.

A ``Psbt`` is mutable: the roles (``roles.py``, ``peercash.wallet.signer``) fill it in place, the
way a builder fills a transaction. ``compute_unsigned_tx`` gives the transaction it describes
(v0: the global one; v2: built from the per-input/per-output fields and BIP370's lock time rule).

Error contract: :class:`PsbtError` (a ``ValueError``) with Bitcoin Core's message where Core has
one. Concurrency: none; one PSBT belongs to one caller.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field

from ...consensus.errors import DecodeError
from ...consensus.hashing import hash160, hash256, ripemd160, sha256
from ...consensus.primitives import OutPoint, Tx, TxIn, TxOut
from ...consensus.script.interpreter import is_valid_signature_encoding
from ...consensus.script.taproot import (
    TAPROOT_CONTROL_BASE_SIZE,
    TAPROOT_CONTROL_NODE_SIZE,
    TAPROOT_LEAF_MASK,
)
from ...consensus.serialize import Reader, compact_size, pack_i64, pack_u32, var_bytes
from ..descriptor.keys import KeyOrigin
from .errors import PsbtError

__all__ = [
    "LOCKTIME_THRESHOLD",
    "MAGIC",
    "MODIFIABLE_INPUTS",
    "MODIFIABLE_OUTPUTS",
    "MODIFIABLE_SIGHASH_SINGLE",
    "Psbt",
    "PsbtInput",
    "PsbtOutput",
    "TapTreeLeaf",
]

MAGIC = b"psbt\xff"
LOCKTIME_THRESHOLD = 500_000_000
"""Consensus: lock times below this are block heights, at or above it UNIX times."""

MODIFIABLE_INPUTS = 0x01
MODIFIABLE_OUTPUTS = 0x02
MODIFIABLE_SIGHASH_SINGLE = 0x04

MAX_PSBT_ENTRIES = 100_000
"""Our bound on inputs, outputs and entries of one map (a PSBT is bounded by its bytes anyway)."""

# Global key types.
G_UNSIGNED_TX = 0x00
G_XPUB = 0x01
G_TX_VERSION = 0x02
G_FALLBACK_LOCKTIME = 0x03
G_INPUT_COUNT = 0x04
G_OUTPUT_COUNT = 0x05
G_TX_MODIFIABLE = 0x06
G_VERSION = 0xFB
PROPRIETARY = 0xFC
# Input key types.
I_NON_WITNESS_UTXO = 0x00
I_WITNESS_UTXO = 0x01
I_PARTIAL_SIG = 0x02
I_SIGHASH = 0x03
I_REDEEM_SCRIPT = 0x04
I_WITNESS_SCRIPT = 0x05
I_BIP32_DERIVATION = 0x06
I_FINAL_SCRIPTSIG = 0x07
I_FINAL_SCRIPTWITNESS = 0x08
I_RIPEMD160 = 0x0A
I_SHA256 = 0x0B
I_HASH160 = 0x0C
I_HASH256 = 0x0D
I_PREVIOUS_TXID = 0x0E
I_OUTPUT_INDEX = 0x0F
I_SEQUENCE = 0x10
I_REQUIRED_TIME_LOCKTIME = 0x11
I_REQUIRED_HEIGHT_LOCKTIME = 0x12
I_TAP_KEY_SIG = 0x13
I_TAP_SCRIPT_SIG = 0x14
I_TAP_LEAF_SCRIPT = 0x15
I_TAP_BIP32_DERIVATION = 0x16
I_TAP_INTERNAL_KEY = 0x17
I_TAP_MERKLE_ROOT = 0x18
# Output key types.
O_REDEEM_SCRIPT = 0x00
O_WITNESS_SCRIPT = 0x01
O_BIP32_DERIVATION = 0x02
O_AMOUNT = 0x03
O_SCRIPT = 0x04
O_TAP_INTERNAL_KEY = 0x05
O_TAP_TREE = 0x06
O_TAP_BIP32_DERIVATION = 0x07

_V2_GLOBAL_NAMES = {
    G_TX_VERSION: "PSBT_GLOBAL_TX_VERSION",
    G_FALLBACK_LOCKTIME: "PSBT_GLOBAL_FALLBACK_LOCKTIME",
    G_INPUT_COUNT: "PSBT_GLOBAL_INPUT_COUNT",
    G_OUTPUT_COUNT: "PSBT_GLOBAL_OUTPUT_COUNT",
    G_TX_MODIFIABLE: "PSBT_GLOBAL_TX_MODIFIABLE",
}


_PREIMAGE_HASHES: dict[int, tuple[str, int, Callable[[bytes], bytes]]] = {
    I_RIPEMD160: ("RIPEMD160", 20, ripemd160),
    I_SHA256: ("SHA256", 32, sha256),
    I_HASH160: ("Hash160", 20, hash160),
    I_HASH256: ("Hash256", 32, hash256),
}


@dataclass(frozen=True, slots=True)
class TapTreeLeaf:
    """One leaf of an output's ``PSBT_OUT_TAP_TREE``: its depth, leaf version and script."""

    depth: int
    leaf_version: int
    script: bytes


@dataclass(slots=True)
class PsbtInput:
    """One input map. Dict fields are keyed by what the PSBT key holds after its type byte."""

    non_witness_utxo: Tx | None = None
    witness_utxo: TxOut | None = None
    partial_sigs: dict[bytes, bytes] = field(default_factory=dict)
    sighash_type: int | None = None
    redeem_script: bytes | None = None
    witness_script: bytes | None = None
    bip32_derivs: dict[bytes, KeyOrigin] = field(default_factory=dict)
    final_script_sig: bytes | None = None
    final_script_witness: tuple[bytes, ...] | None = None
    preimages: dict[tuple[int, bytes], bytes] = field(default_factory=dict)
    """(key type: 0x0a ripemd160 … 0x0d hash256, hash) → preimage."""
    # BIP370
    previous_txid: bytes | None = None
    output_index: int | None = None
    sequence: int | None = None
    time_locktime: int | None = None
    height_locktime: int | None = None
    # BIP371
    tap_key_sig: bytes | None = None
    tap_script_sigs: dict[tuple[bytes, bytes], bytes] = field(default_factory=dict)
    """(x-only key, leaf hash) → signature."""
    tap_leaf_scripts: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    """control block → (script, leaf version)."""
    tap_bip32_derivs: dict[bytes, tuple[tuple[bytes, ...], KeyOrigin]] = field(default_factory=dict)
    """x-only key → (leaf hashes, origin)."""
    tap_internal_key: bytes | None = None
    tap_merkle_root: bytes | None = None
    proprietary: dict[bytes, bytes] = field(default_factory=dict)
    unknown: dict[bytes, bytes] = field(default_factory=dict)
    """Whole key (type included) → value, for both."""

    @property
    def is_final(self) -> bool:
        return self.final_script_sig is not None or self.final_script_witness is not None


@dataclass(slots=True)
class PsbtOutput:
    """One output map."""

    redeem_script: bytes | None = None
    witness_script: bytes | None = None
    bip32_derivs: dict[bytes, KeyOrigin] = field(default_factory=dict)
    amount: int | None = None
    script: bytes | None = None
    tap_internal_key: bytes | None = None
    tap_tree: tuple[TapTreeLeaf, ...] | None = None
    tap_bip32_derivs: dict[bytes, tuple[tuple[bytes, ...], KeyOrigin]] = field(default_factory=dict)
    proprietary: dict[bytes, bytes] = field(default_factory=dict)
    unknown: dict[bytes, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class Psbt:
    """A partially signed transaction, version 0 or 2."""

    version: int = 0
    tx: Tx | None = None
    """v0 only: the unsigned transaction (empty scriptSigs and witnesses)."""
    xpubs: dict[bytes, KeyOrigin] = field(default_factory=dict)
    """78-byte BIP32 serialization → origin."""
    tx_version: int | None = None
    fallback_locktime: int | None = None
    tx_modifiable: int | None = None
    inputs: list[PsbtInput] = field(default_factory=list)
    outputs: list[PsbtOutput] = field(default_factory=list)
    proprietary: dict[bytes, bytes] = field(default_factory=dict)
    unknown: dict[bytes, bytes] = field(default_factory=dict)

    # -- decoding -------------------------------------------------------------------------------

    @classmethod
    def from_base64(cls, text: str) -> Psbt:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise PsbtError("invalid base64") from None
        return cls.parse(raw)

    @classmethod
    def parse(cls, data: bytes) -> Psbt:
        try:
            return _parse(bytes(data))
        except DecodeError as exc:
            raise PsbtError(_decode_message(exc)) from None

    # -- encoding -------------------------------------------------------------------------------

    def serialize(self) -> bytes:
        return _serialize(self)

    def to_base64(self) -> str:
        return base64.b64encode(self.serialize()).decode()

    # -- the transaction it describes ------------------------------------------------------------

    def prevout(self, index: int) -> OutPoint:
        if self.version == 0:
            assert self.tx is not None
            return self.tx.inputs[index].prevout
        inp = self.inputs[index]
        assert inp.previous_txid is not None and inp.output_index is not None
        return OutPoint(inp.previous_txid, inp.output_index)

    def compute_locktime(self) -> int | None:
        """BIP370's lock time determination; None when the inputs' requirements conflict."""
        if self.version == 0:
            assert self.tx is not None
            return self.tx.locktime
        heights = [i.height_locktime for i in self.inputs if i.height_locktime is not None]
        times = [i.time_locktime for i in self.inputs if i.time_locktime is not None]
        both_ok = all(i.height_locktime is not None or i.time_locktime is None for i in self.inputs)
        time_ok = all(i.time_locktime is not None or i.height_locktime is None for i in self.inputs)
        if not heights and not times:
            return self.fallback_locktime or 0
        # Height wins when every input with a lock time accepts one (so does a tie).
        if heights and both_ok:
            return max(heights)
        if times and time_ok:
            return max(times)
        return None

    def compute_unsigned_tx(self) -> Tx:
        """The unsigned transaction (v2: from the maps; raises PsbtError if lock times conflict)."""
        if self.version == 0:
            assert self.tx is not None
            return self.tx
        locktime = self.compute_locktime()
        if locktime is None:
            raise PsbtError("Lock times of the inputs conflict")
        ins = [
            TxIn(self.prevout(k), b"", 0xFFFFFFFF if i.sequence is None else i.sequence)
            for k, i in enumerate(self.inputs)
        ]
        outs = []
        for o in self.outputs:
            assert o.amount is not None and o.script is not None
            outs.append(TxOut(o.amount, o.script))
        return Tx(self.tx_version if self.tx_version is not None else 2, ins, outs, locktime)

    def spent_output(self, index: int) -> TxOut | None:
        """The output input ``index`` spends, from its witness or non-witness UTXO."""
        inp = self.inputs[index]
        if inp.witness_utxo is not None:
            return inp.witness_utxo
        if inp.non_witness_utxo is not None:
            n = self.prevout(index).index
            if n < len(inp.non_witness_utxo.outputs):
                return inp.non_witness_utxo.outputs[n]
        return None


# -- decoding ----------------------------------------------------------------------------------


def _decode_message(exc: DecodeError) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] if text else "Unexpected end of data"


def _u32(value: bytes) -> int:
    if len(value) != 4:
        raise PsbtError("Size of value was not the stated size")
    return int.from_bytes(value, "little")


def _origin(value: bytes) -> KeyOrigin:
    if len(value) % 4 or not value:
        raise PsbtError("Invalid length for HD key path")
    path = tuple(int.from_bytes(value[i : i + 4], "little") for i in range(4, len(value), 4))
    return KeyOrigin(value[:4], path)


def _valid_pubkey(key: bytes) -> bool:
    from ...consensus.crypto import _parsed_pubkey

    if (len(key) == 33 and key[0] in (2, 3)) or (len(key) == 65 and key[0] == 4):
        return _parsed_pubkey(key) is not None
    return False


def _read_map(r: Reader, which: str) -> list[tuple[int, bytes, bytes, bytes]]:
    """(type, key data, whole key, value) for each entry up to the separator."""
    entries: list[tuple[int, bytes, bytes, bytes]] = []
    while True:
        if r.remaining() == 0:
            raise PsbtError(f"Separator is missing at the end of {which}")
        key = r.var_bytes()
        if not key:
            return entries
        kr = Reader(key)
        ktype = kr.compact_size(0xFFFFFFFFFFFFFFFF)
        keydata = key[kr.pos :]
        value = r.var_bytes()
        entries.append((ktype, keydata, key, value))
        if len(entries) > MAX_PSBT_ENTRIES:
            raise PsbtError("Too many entries in a PSBT map")


def _key_size(keydata: bytes, what: str, size: int = 1) -> None:
    """Core's ``ExpectedKeySize``: the whole key (type byte included) must be ``size`` bytes."""
    if len(keydata) + 1 != size:
        raise PsbtError(f"Size of key was not {size} for the type {what}")


def _parse_tx(value: bytes, allow_witness: bool) -> Tx:
    r = Reader(value)
    tx = Tx.from_reader(r, allow_witness=allow_witness)
    if r.remaining():
        raise PsbtError("Size of value was not the stated size")
    return tx


def _parse(data: bytes) -> Psbt:
    if data[:5] != MAGIC:
        raise PsbtError("Invalid PSBT magic bytes")
    r = Reader(data, 5)
    psbt = Psbt()
    seen: set[bytes] = set()
    version: int | None = None
    input_count: int | None = None
    output_count: int | None = None
    present: set[int] = set()
    for ktype, keydata, key, value in _read_map(r, "the global map"):
        if key in seen:
            raise PsbtError(f'Duplicate Key, global key "{key.hex()}" already provided')
        seen.add(key)
        present.add(ktype)
        if ktype == G_UNSIGNED_TX:
            _key_size(keydata, "Global Unsigned TX")
            tx = _parse_tx(value, allow_witness=False)
            if any(i.script_sig or i.witness for i in tx.inputs):
                raise PsbtError("Unsigned tx does not have empty scriptSigs and scriptWitnesses.")
            psbt.tx = tx
        elif ktype == G_XPUB:
            _key_size(keydata, "Global XPUB", 79)
            if not _valid_pubkey(keydata[45:]):
                raise PsbtError("Invalid pubkey")
            psbt.xpubs[keydata] = _origin(value)
        elif ktype == G_TX_VERSION:
            _key_size(keydata, "Global Transaction Version")
            psbt.tx_version = _u32(value)
        elif ktype == G_FALLBACK_LOCKTIME:
            _key_size(keydata, "Global Fallback Locktime")
            psbt.fallback_locktime = _u32(value)
        elif ktype in (G_INPUT_COUNT, G_OUTPUT_COUNT):
            _key_size(
                keydata, "Global Input Count" if ktype == G_INPUT_COUNT else "Global Output Count"
            )
            vr = Reader(value)
            n = vr.compact_size(MAX_PSBT_ENTRIES)
            if vr.remaining():
                raise PsbtError("Size of value was not the stated size")
            if ktype == G_INPUT_COUNT:
                input_count = n
            else:
                output_count = n
        elif ktype == G_TX_MODIFIABLE:
            _key_size(keydata, "Global TX Modifiable Flags")
            if len(value) != 1:
                raise PsbtError("Size of value was not the stated size")
            psbt.tx_modifiable = value[0]
        elif ktype == G_VERSION:
            _key_size(keydata, "Global PSBT Version")
            version = _u32(value)
            if version > 2:
                raise PsbtError("Unsupported version number")
        elif ktype == PROPRIETARY:
            psbt.proprietary[key] = value
        else:
            psbt.unknown[key] = value
    psbt.version = version or 0
    if psbt.version == 0:
        if psbt.tx is None:
            raise PsbtError("No unsigned transaction was provided")
        for ktype, name in _V2_GLOBAL_NAMES.items():
            if ktype in present:
                raise PsbtError(f"{name} is not allowed in PSBTv0")
        n_in, n_out = len(psbt.tx.inputs), len(psbt.tx.outputs)
    elif psbt.version == 1:
        raise PsbtError("There is no PSBT version 1")
    else:
        for ktype in (G_TX_VERSION, G_INPUT_COUNT, G_OUTPUT_COUNT):
            if ktype not in present:
                raise PsbtError(f"{_V2_GLOBAL_NAMES[ktype]} is required in PSBTv2")
        if psbt.tx is not None:
            raise PsbtError("PSBT_GLOBAL_UNSIGNED_TX is not allowed in PSBTv2")
        assert input_count is not None and output_count is not None
        n_in, n_out = input_count, output_count
    for _ in range(n_in):
        if r.remaining() == 0:
            raise PsbtError("Inputs provided does not match the number of inputs in transaction.")
        psbt.inputs.append(_parse_input(r, psbt.version))
    for _ in range(n_out):
        if r.remaining() == 0:
            raise PsbtError("Outputs provided does not match the number of outputs in transaction.")
        psbt.outputs.append(_parse_output(r, psbt.version))
    if r.remaining():
        raise PsbtError("extra data after PSBT")
    _check_utxos(psbt)
    return psbt


def _check_utxos(psbt: Psbt) -> None:
    for k, inp in enumerate(psbt.inputs):
        if inp.non_witness_utxo is not None:
            prevout = psbt.prevout(k)
            if inp.non_witness_utxo.txid != prevout.txid:
                raise PsbtError("Non-witness UTXO does not match outpoint hash")
            if prevout.index >= len(inp.non_witness_utxo.outputs):
                raise PsbtError("Input specifies output index that does not exist")


def _v2_only(version: int, name: str) -> None:
    if version < 2:
        raise PsbtError(f"{name} is not allowed in PSBTv0")


def _strict_signature(sig: bytes) -> bool:
    """DER with a defined hash type (Core's SCRIPT_VERIFY_DERSIG | STRICTENC check)."""
    return bool(sig) and is_valid_signature_encoding(sig) and 1 <= (sig[-1] & ~0x80) <= 3


def _schnorr_sig(value: bytes, what: str) -> bytes:
    if len(value) < 64:
        raise PsbtError(f"{what} is shorter than 64 bytes")
    if len(value) > 65:
        raise PsbtError(f"{what} is longer than 65 bytes")
    return value


def _tap_derivation(value: bytes, side: str) -> tuple[tuple[bytes, ...], KeyOrigin]:
    vr = Reader(value)
    try:
        n = vr.compact_size(len(value) // 32)
        hashes = tuple(vr.read(32) for _ in range(n))
    except DecodeError:
        raise PsbtError(f"{side} Taproot BIP32 keypath has an invalid length") from None
    return hashes, _origin(value[vr.pos :])


def _parse_input(r: Reader, version: int) -> PsbtInput:
    inp = PsbtInput()
    seen: set[bytes] = set()
    for ktype, keydata, key, value in _read_map(r, "an input map"):
        if key in seen:
            raise PsbtError(f'Duplicate Key, input key "{key.hex()}" already provided')
        seen.add(key)
        if ktype == I_NON_WITNESS_UTXO:
            _key_size(keydata, "Input Non-witness UTXO")
            inp.non_witness_utxo = _parse_tx(value, allow_witness=True)
        elif ktype == I_WITNESS_UTXO:
            _key_size(keydata, "Input Witness UTXO")
            vr = Reader(value)
            inp.witness_utxo = TxOut.from_reader(vr)
            if vr.remaining():
                raise PsbtError("Size of value was not the stated size")
        elif ktype == I_PARTIAL_SIG:
            if len(keydata) not in (33, 65):
                raise PsbtError(
                    "Size of key was not the expected size for the type partial signature pubkey"
                )
            if not _valid_pubkey(keydata):
                raise PsbtError("Invalid pubkey")
            if not _strict_signature(value):
                raise PsbtError("Signature is not a valid encoding")
            inp.partial_sigs[keydata] = value
        elif ktype == I_SIGHASH:
            _key_size(keydata, "Input Sighash Type")
            inp.sighash_type = _u32(value)
        elif ktype == I_REDEEM_SCRIPT:
            _key_size(keydata, "Input redeemScript")
            inp.redeem_script = value
        elif ktype == I_WITNESS_SCRIPT:
            _key_size(keydata, "Input witnessScript")
            inp.witness_script = value
        elif ktype == I_BIP32_DERIVATION:
            _hd_key(keydata)
            inp.bip32_derivs[keydata] = _origin(value)
        elif ktype == I_FINAL_SCRIPTSIG:
            _key_size(keydata, "Input Final scriptSig")
            inp.final_script_sig = value
        elif ktype == I_FINAL_SCRIPTWITNESS:
            _key_size(keydata, "Input Final scriptWitness")
            vr = Reader(value)
            n = vr.count(1)
            items = tuple(vr.var_bytes() for _ in range(n))
            if vr.remaining():
                raise PsbtError("Size of value was not the stated size")
            inp.final_script_witness = items
        elif ktype in _PREIMAGE_HASHES:
            name, size, _ = _PREIMAGE_HASHES[ktype]
            _key_size(keydata, f"Input {name} Preimage", size + 1)
            inp.preimages[(ktype, keydata)] = value
        elif ktype == I_PREVIOUS_TXID:
            _key_size(keydata, "Input Previous TXID")
            _v2_only(version, "Previous txid")
            if len(value) != 32:
                raise PsbtError("Size of value was not the stated size")
            inp.previous_txid = value
        elif ktype == I_OUTPUT_INDEX:
            _key_size(keydata, "Input Previous Output's Index")
            _v2_only(version, "Previous output's index")
            inp.output_index = _u32(value)
        elif ktype == I_SEQUENCE:
            _key_size(keydata, "Input Sequence")
            _v2_only(version, "Sequence")
            inp.sequence = _u32(value)
        elif ktype == I_REQUIRED_TIME_LOCKTIME:
            _key_size(keydata, "Input Required Time Based Locktime")
            _v2_only(version, "Required time based locktime")
            inp.time_locktime = _u32(value)
            if inp.time_locktime < LOCKTIME_THRESHOLD:
                raise PsbtError("Required time based locktime is invalid (less than 500000000)")
        elif ktype == I_REQUIRED_HEIGHT_LOCKTIME:
            _key_size(keydata, "Input Required Height Based Locktime")
            _v2_only(version, "Required height based locktime")
            inp.height_locktime = _u32(value)
            if inp.height_locktime >= LOCKTIME_THRESHOLD:
                raise PsbtError(
                    "Required height based locktime is invalid (greater than or equal to 500000000)"
                )
            if inp.height_locktime == 0:
                raise PsbtError("Required height based locktime is invalid (0)")
        elif ktype == I_TAP_KEY_SIG:
            _key_size(keydata, "Input Taproot Key Path Signature")
            inp.tap_key_sig = _schnorr_sig(value, "Input Taproot key path signature")
        elif ktype == I_TAP_SCRIPT_SIG:
            _key_size(keydata, "Input Taproot Script Path Signature", 65)
            sig = _schnorr_sig(value, "Input Taproot script path signature")
            inp.tap_script_sigs[(keydata[:32], keydata[32:])] = sig
        elif ktype == I_TAP_LEAF_SCRIPT:
            if len(keydata) < TAPROOT_CONTROL_BASE_SIZE:
                raise PsbtError("Input Taproot leaf script key is not at least 34 bytes")
            if (len(keydata) - TAPROOT_CONTROL_BASE_SIZE) % TAPROOT_CONTROL_NODE_SIZE:
                raise PsbtError("Input Taproot leaf script key's control block size is not valid")
            if not value:
                raise PsbtError("Input Taproot leaf script must be at least 1 byte")
            inp.tap_leaf_scripts[keydata] = (value[:-1], value[-1])
        elif ktype == I_TAP_BIP32_DERIVATION:
            _key_size(keydata, "Input Taproot BIP32 Keypath", 33)
            inp.tap_bip32_derivs[keydata] = _tap_derivation(value, "Input")
        elif ktype == I_TAP_INTERNAL_KEY:
            _key_size(keydata, "Input Taproot Internal Key")
            if len(value) != 32:
                raise PsbtError("Size of value was not the stated size")
            inp.tap_internal_key = value
        elif ktype == I_TAP_MERKLE_ROOT:
            _key_size(keydata, "Input Taproot Merkle Root")
            if len(value) != 32:
                raise PsbtError("Size of value was not the stated size")
            inp.tap_merkle_root = value
        elif ktype == PROPRIETARY:
            inp.proprietary[key] = value
        else:
            inp.unknown[key] = value
    if version == 2:
        if inp.previous_txid is None:
            raise PsbtError("Previous TXID is required in PSBTv2")
        if inp.output_index is None:
            raise PsbtError("Previous output's index is required in PSBTv2")
    return inp


def _hd_key(keydata: bytes) -> None:
    if len(keydata) not in (33, 65):
        raise PsbtError("Size of key was not the expected size for the type BIP32 keypath")
    if not _valid_pubkey(keydata):
        raise PsbtError("Invalid pubkey")


def _parse_tap_tree(value: bytes) -> tuple[TapTreeLeaf, ...]:
    vr = Reader(value)
    leaves = []
    while vr.remaining():
        depth = vr.u8()
        leaf_version = vr.u8()
        script = vr.var_bytes()
        if depth > 128:
            raise PsbtError("Output Taproot tree has as leaf greater than Taproot maximum depth")
        if leaf_version & ~TAPROOT_LEAF_MASK:
            raise PsbtError("Output Taproot tree has a leaf with an invalid leaf version")
        leaves.append(TapTreeLeaf(depth, leaf_version, script))
    if not leaves:
        raise PsbtError("Output Taproot tree must not be empty")
    if not _tree_complete([leaf.depth for leaf in leaves]):
        raise PsbtError("Output Taproot tree is malformed")
    return tuple(leaves)


def _tree_complete(depths: list[int]) -> bool:
    """Whether leaves at these depths, depth first left to right, make one complete binary tree."""
    stack: list[int] = []
    for depth in depths:
        while stack and stack[-1] == depth:
            if depth == 0:
                return False
            stack.pop()
            depth -= 1
        stack.append(depth)
    return stack == [0]


def _parse_output(r: Reader, version: int) -> PsbtOutput:
    out = PsbtOutput()
    seen: set[bytes] = set()
    for ktype, keydata, key, value in _read_map(r, "an output map"):
        if key in seen:
            raise PsbtError(f'Duplicate Key, output key "{key.hex()}" already provided')
        seen.add(key)
        if ktype == O_REDEEM_SCRIPT:
            _key_size(keydata, "Output redeemScript")
            out.redeem_script = value
        elif ktype == O_WITNESS_SCRIPT:
            _key_size(keydata, "Output witnessScript")
            out.witness_script = value
        elif ktype == O_BIP32_DERIVATION:
            _hd_key(keydata)
            out.bip32_derivs[keydata] = _origin(value)
        elif ktype == O_AMOUNT:
            _key_size(keydata, "Output Amount")
            _v2_only(version, "Output amount")
            if len(value) != 8:
                raise PsbtError("Size of value was not the stated size")
            out.amount = int.from_bytes(value, "little", signed=True)
        elif ktype == O_SCRIPT:
            _key_size(keydata, "Output Script")
            _v2_only(version, "Output script")
            out.script = value
        elif ktype == O_TAP_INTERNAL_KEY:
            _key_size(keydata, "Output Taproot Internal Key")
            if len(value) != 32:
                raise PsbtError("Size of value was not the stated size")
            out.tap_internal_key = value
        elif ktype == O_TAP_TREE:
            _key_size(keydata, "Output Taproot Tree Key")
            out.tap_tree = _parse_tap_tree(value)
        elif ktype == O_TAP_BIP32_DERIVATION:
            _key_size(keydata, "Output Taproot BIP32 Keypath", 33)
            out.tap_bip32_derivs[keydata] = _tap_derivation(value, "Output")
        elif ktype == PROPRIETARY:
            out.proprietary[key] = value
        else:
            out.unknown[key] = value
    if version == 2:
        if out.amount is None:
            raise PsbtError("Output amount is required in PSBTv2")
        if out.script is None:
            raise PsbtError("Output script is required in PSBTv2")
    return out


# -- encoding ----------------------------------------------------------------------------------
#
# Core's order, field by field (its ``Serialize`` methods); within a field, the order of the C++
# map holding it: partial signatures by key id (hash160), key paths by public key, leaf scripts by
# (script, leaf version) then shortest control block first, taproot leaf hashes as a sorted set.

Entry = tuple[bytes, bytes]


def _k(ktype: int, keydata: bytes = b"") -> bytes:
    return compact_size(ktype) + keydata


def _origin_bytes(origin: KeyOrigin) -> bytes:
    return origin.fingerprint + b"".join(pack_u32(i) for i in origin.path)


def _tap_derivation_bytes(entry: tuple[tuple[bytes, ...], KeyOrigin]) -> bytes:
    hashes, origin = entry
    unique = sorted(set(hashes))
    return compact_size(len(unique)) + b"".join(unique) + _origin_bytes(origin)


def _write_map(entries: list[Entry]) -> bytes:
    return b"".join(var_bytes(k) + var_bytes(v) for k, v in entries) + b"\x00"


def _sorted(items: dict[bytes, bytes]) -> list[Entry]:
    return sorted(items.items())


def _serialize(psbt: Psbt) -> bytes:
    g: list[Entry] = []
    if psbt.version == 0:
        if psbt.tx is None:
            raise PsbtError("No unsigned transaction was provided")
        g.append((_k(G_UNSIGNED_TX), psbt.tx.serialize_legacy()))
    # Core keeps xpubs by origin, then by xpub.
    for xpub, origin in sorted(
        psbt.xpubs.items(), key=lambda e: (e[1].fingerprint, e[1].path, e[0])
    ):
        g.append((_k(G_XPUB, xpub), _origin_bytes(origin)))
    if psbt.version == 2:
        g.append((_k(G_TX_VERSION), pack_u32(psbt.tx_version or 0)))
        if psbt.fallback_locktime is not None:
            g.append((_k(G_FALLBACK_LOCKTIME), pack_u32(psbt.fallback_locktime)))
        g.append((_k(G_INPUT_COUNT), compact_size(len(psbt.inputs))))
        g.append((_k(G_OUTPUT_COUNT), compact_size(len(psbt.outputs))))
        if psbt.tx_modifiable is not None:
            g.append((_k(G_TX_MODIFIABLE), bytes((psbt.tx_modifiable,))))
    if psbt.version:
        g.append((_k(G_VERSION), pack_u32(psbt.version)))
    g.extend(_sorted(psbt.proprietary))
    g.extend(_sorted(psbt.unknown))
    parts = [MAGIC, _write_map(g)]
    parts.extend(_write_map(_input_entries(i, psbt.version)) for i in psbt.inputs)
    parts.extend(_write_map(_output_entries(o, psbt.version)) for o in psbt.outputs)
    return b"".join(parts)


def _input_entries(inp: PsbtInput, version: int) -> list[Entry]:
    e: list[Entry] = []
    if inp.non_witness_utxo is not None:
        # As parsed (the BIP vectors carry some with witnesses); the updater stores them without,
        # as Core writes them.
        e.append((_k(I_NON_WITNESS_UTXO), inp.non_witness_utxo.serialize()))
    if inp.witness_utxo is not None:
        e.append((_k(I_WITNESS_UTXO), inp.witness_utxo.serialize()))
    if not inp.is_final:
        # Core writes none of the signing data of a finalized input.
        for pub in sorted(inp.partial_sigs, key=hash160):
            e.append((_k(I_PARTIAL_SIG, pub), inp.partial_sigs[pub]))
        if inp.sighash_type is not None:
            e.append((_k(I_SIGHASH), pack_u32(inp.sighash_type)))
        if inp.redeem_script:
            e.append((_k(I_REDEEM_SCRIPT), inp.redeem_script))
        if inp.witness_script:
            e.append((_k(I_WITNESS_SCRIPT), inp.witness_script))
        for pub in sorted(inp.bip32_derivs):
            e.append((_k(I_BIP32_DERIVATION, pub), _origin_bytes(inp.bip32_derivs[pub])))
        for ktype, h in sorted(inp.preimages):
            e.append((_k(ktype, h), inp.preimages[(ktype, h)]))
        if inp.tap_key_sig is not None:
            e.append((_k(I_TAP_KEY_SIG), inp.tap_key_sig))
        for x, h in sorted(inp.tap_script_sigs):
            e.append((_k(I_TAP_SCRIPT_SIG, x + h), inp.tap_script_sigs[(x, h)]))
        leaves = sorted(
            inp.tap_leaf_scripts.items(), key=lambda c: (c[1][0], c[1][1], len(c[0]), c[0])
        )
        for control, (script, leaf_version) in leaves:
            e.append((_k(I_TAP_LEAF_SCRIPT, control), script + bytes((leaf_version,))))
        for x in sorted(inp.tap_bip32_derivs):
            e.append(
                (_k(I_TAP_BIP32_DERIVATION, x), _tap_derivation_bytes(inp.tap_bip32_derivs[x]))
            )
        if inp.tap_internal_key is not None:
            e.append((_k(I_TAP_INTERNAL_KEY), inp.tap_internal_key))
        if inp.tap_merkle_root is not None:
            e.append((_k(I_TAP_MERKLE_ROOT), inp.tap_merkle_root))
    if inp.final_script_sig:
        e.append((_k(I_FINAL_SCRIPTSIG), inp.final_script_sig))
    if inp.final_script_witness is not None:
        items = inp.final_script_witness
        witness = compact_size(len(items)) + b"".join(var_bytes(x) for x in items)
        e.append((_k(I_FINAL_SCRIPTWITNESS), witness))
    if version >= 2:
        e.append((_k(I_PREVIOUS_TXID), inp.previous_txid or bytes(32)))
        e.append((_k(I_OUTPUT_INDEX), pack_u32(inp.output_index or 0)))
        if inp.sequence is not None:
            e.append((_k(I_SEQUENCE), pack_u32(inp.sequence)))
        if inp.time_locktime is not None:
            e.append((_k(I_REQUIRED_TIME_LOCKTIME), pack_u32(inp.time_locktime)))
        if inp.height_locktime is not None:
            e.append((_k(I_REQUIRED_HEIGHT_LOCKTIME), pack_u32(inp.height_locktime)))
    e.extend(_sorted(inp.proprietary))
    e.extend(_sorted(inp.unknown))
    return e


def _output_entries(out: PsbtOutput, version: int) -> list[Entry]:
    e: list[Entry] = []
    if out.redeem_script:
        e.append((_k(O_REDEEM_SCRIPT), out.redeem_script))
    if out.witness_script:
        e.append((_k(O_WITNESS_SCRIPT), out.witness_script))
    for pub in sorted(out.bip32_derivs):
        e.append((_k(O_BIP32_DERIVATION, pub), _origin_bytes(out.bip32_derivs[pub])))
    if version >= 2:
        e.append((_k(O_AMOUNT), pack_i64(out.amount or 0)))
        e.append((_k(O_SCRIPT), out.script or b""))
    # Core writes an output's proprietary entries here, before its taproot fields.
    e.extend(_sorted(out.proprietary))
    if out.tap_internal_key is not None:
        e.append((_k(O_TAP_INTERNAL_KEY), out.tap_internal_key))
    if out.tap_tree is not None:
        tree = b"".join(
            bytes((leaf.depth, leaf.leaf_version)) + var_bytes(leaf.script) for leaf in out.tap_tree
        )
        e.append((_k(O_TAP_TREE), tree))
    for x in sorted(out.tap_bip32_derivs):
        e.append((_k(O_TAP_BIP32_DERIVATION, x), _tap_derivation_bytes(out.tap_bip32_derivs[x])))
    e.extend(_sorted(out.unknown))
    return e
