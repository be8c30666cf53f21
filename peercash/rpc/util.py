"""Shared RPC helpers (amounts, hashes, script classification, descriptors) and ``validateaddress``.

Layer 4. Pure helpers used by every method group, written after Core's ``rpc/util.cpp``,
``core_write.cpp`` (``ScriptToUniv``), ``script/solver.cpp`` (``Solver``), ``key_io.cpp``
(``DecodeDestination``) and ``script/descriptor.cpp`` (``InferDescriptor``, checksums).

Amounts: BTC amounts are returned as ``decimal.Decimal`` with exactly eight decimals
(``btc(5000000000) == Decimal("50.00000000")``, exponent -8). **The server's JSON encoder must
write a Decimal as a bare JSON number in fixed-point form, ``format(d, "f")``** (``50.00000000``,
``0.00000001``), which is how Core prints amounts. (``str(d)`` would give ``1E-8`` for one
satoshi: valid JSON, but not Core's text.)

Descriptors: ``infer_descriptor`` implements Core's ``InferDescriptor`` for what a node without
a wallet can know: ``pk()``, ``multi()``, ``rawtr()``, ``addr()`` and ``raw()`` at the top level
and ``wsh(pk/multi)`` when the witness script is known (``decodescript``), each with its BIP380
checksum. It does not infer miniscript (Core prints e.g. ``wsh(1)`` for a known ``OP_TRUE``
witness script where we print ``addr(...)``). ``parse_descriptor`` reads the single-script
descriptors the mining RPCs accept: ``addr``, ``raw``, ``pk``, ``pkh``, ``wpkh``, ``sh``,
``wsh``, ``multi``, ``sortedmulti``, ``combo``, ``tr`` (key path only) and ``rawtr``, with hex
public keys or WIF private keys (extended keys and script trees are refused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from peercash.consensus.address import decode_wif
from peercash.consensus.base58 import b58decode, b58decode_check, b58encode_check
from peercash.consensus.bech32 import (
    CHARSET,
    MAX_LENGTH,
    Encoding,
    bech32_decode,
    convert_bits,
    encode_segwit_address,
)
from peercash.consensus.crypto import pubkey_from_secret
from peercash.consensus.errors import DecodeError
from peercash.consensus.hashing import hash160, sha256
from peercash.consensus.params import NetworkParams
from peercash.consensus.primitives import MAX_MONEY
from peercash.consensus.script.asm import script_to_asm
from peercash.consensus.script.interpreter import check_minimal_push, pubkey_size_valid
from peercash.consensus.script.opcodes import MAX_OPCODE, Op
from peercash.consensus.script.script import (
    MAX_PUBKEYS_PER_MULTISIG,
    MAX_SCRIPT_ELEMENT_SIZE,
    BadScript,
    decode_num,
    get_op,
    is_push_only,
    iter_ops,
    push_data,
    push_int,
    witness_program,
)
from peercash.consensus.script.taproot import tweak_public_key

from .context import ChainNode
from .registry import (
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    Param,
    RpcError,
    rpc_method,
)

COIN = 100_000_000

# -- amounts ---------------------------------------------------------------------------------


def btc(sats: int) -> Decimal:
    """Satoshis as a BTC amount with exactly 8 decimals (Core's ``ValueFromAmount``)."""
    return Decimal(int(sats)).scaleb(-8)


_FIXED_POINT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def amount_from_value(value: Any) -> int:
    """A BTC amount given as a JSON number or string, in satoshis (Core's ``AmountFromValue``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise RpcError(RPC_TYPE_ERROR, "Amount is not a number or string")
    text = repr(value) if isinstance(value, float) else str(value)
    if not _FIXED_POINT.fullmatch(text):
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount")
    try:
        sats = Decimal(text).scaleb(8)
    except InvalidOperation:
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount") from None
    if sats != sats.to_integral_value() or abs(sats) >= Decimal(10) ** 18:
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount")
    amount = int(sats)
    if not 0 <= amount <= MAX_MONEY:
        raise RpcError(RPC_TYPE_ERROR, "Amount out of range")
    return amount


# -- parameters -------------------------------------------------------------------------------

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_hex(text: str) -> bool:
    """Core's ``IsHex``: non-empty, an even number of hex digits."""
    return bool(text) and len(text) % 2 == 0 and all(c in _HEX_DIGITS for c in text)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def expect_str(value: Any) -> str:
    """``value.get_str()``: a JSON string, else Core's type error (-3)."""
    if not isinstance(value, str):
        raise RpcError(
            RPC_TYPE_ERROR, f"JSON value of type {json_type(value)} is not of expected type string"
        )
    return value


def expect_int(value: Any) -> int:
    """``value.getInt<int>()``: a JSON integer, else Core's type error (-3)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise RpcError(
            RPC_TYPE_ERROR, f"JSON value of type {json_type(value)} is not of expected type number"
        )
    if isinstance(value, int):
        return value
    if value != int(value):
        raise RpcError(RPC_TYPE_ERROR, "JSON integer out of range")
    return int(value)


def parse_hash(value: Any, name: str) -> bytes:
    """A 64-hex-digit hash in display order, as wire-order bytes (Core's ``ParseHashV``)."""
    text = expect_str(value)
    if len(text) != 64:
        raise RpcError(
            RPC_INVALID_PARAMETER,
            f"{name} must be of length 64 (not {len(text)}, for '{text}')",
        )
    if not is_hex(text):
        raise RpcError(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{text}')")
    return bytes.fromhex(text)[::-1]


def parse_hex(value: Any, name: str) -> bytes:
    """Hex digits as bytes (Core's ``ParseHexV``: non-empty, even length)."""
    text = expect_str(value)
    if not is_hex(text):
        raise RpcError(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{text}')")
    return bytes.fromhex(text)


def parse_verbosity(value: Any, default: int, allow_bool: bool) -> int:
    """Core's ``ParseVerbosity``: a bool (when allowed) or an integer."""
    if value is None:
        return default
    if isinstance(value, bool):
        if not allow_bool:
            raise RpcError(RPC_TYPE_ERROR, "Verbosity was boolean but only integer allowed")
        return int(value)
    return expect_int(value)


def hash_hex(h: bytes) -> str:
    """A wire-order hash in display hex (Core's ``uint256::GetHex``)."""
    return h[::-1].hex()


# -- script classification (Core's Solver) ----------------------------------------------------

NONSTANDARD = "nonstandard"
ANCHOR = "anchor"
PUBKEY = "pubkey"
PUBKEYHASH = "pubkeyhash"
SCRIPTHASH = "scripthash"
MULTISIG = "multisig"
NULL_DATA = "nulldata"
WITNESS_V0_KEYHASH = "witness_v0_keyhash"
WITNESS_V0_SCRIPTHASH = "witness_v0_scripthash"
WITNESS_V1_TAPROOT = "witness_v1_taproot"
WITNESS_UNKNOWN = "witness_unknown"

ANCHOR_PROGRAM = bytes.fromhex("4e73")


def _script_number(opcode: int, data: bytes | None, lo: int, hi: int) -> int | None:
    """Core's ``GetScriptNumber`` (in multisig templates)."""
    if Op.OP_1 <= opcode <= Op.OP_16:
        n = opcode - (Op.OP_1 - 1)
    elif data is not None and Op.OP_0 < opcode <= Op.OP_PUSHDATA4:
        if not check_minimal_push(data, opcode) or len(data) > 4:
            return None
        if data and not data[-1] & 0x7F and (len(data) == 1 or not data[-2] & 0x80):
            return None  # not minimally encoded
        n = decode_num(data)
    else:
        return None
    return n if lo <= n <= hi else None


def _match_multisig(script: bytes) -> tuple[int, list[bytes]] | None:
    if not script or script[-1] != Op.OP_CHECKMULTISIG:
        return None
    try:
        opcode, data, pos = get_op(script, 0)
    except BadScript:
        return None
    required = _script_number(opcode, data, 1, MAX_PUBKEYS_PER_MULTISIG)
    if required is None:
        return None
    keys: list[bytes] = []
    while True:
        try:
            opcode, data, pos = get_op(script, pos)
        except BadScript:
            return None
        if data is not None and pubkey_size_valid(data):
            keys.append(data)
            continue
        break
    count = _script_number(opcode, data, required, MAX_PUBKEYS_PER_MULTISIG)
    if count is None or count != len(keys) or pos + 1 != len(script):
        return None
    return required, keys


def solver(script: bytes) -> tuple[str, list[bytes]]:
    """Core's ``Solver``: the template type name and its solutions (hashes, keys, program)."""
    if len(script) == 23 and script[0] == 0xA9 and script[1] == 0x14 and script[22] == 0x87:
        return SCRIPTHASH, [script[2:22]]
    wp = witness_program(script)
    if wp is not None:
        version, program = wp
        if version == 0 and len(program) == 20:
            return WITNESS_V0_KEYHASH, [program]
        if version == 0 and len(program) == 32:
            return WITNESS_V0_SCRIPTHASH, [program]
        if version == 1 and len(program) == 32:
            return WITNESS_V1_TAPROOT, [program]
        if version == 1 and program == ANCHOR_PROGRAM:
            return ANCHOR, []
        if version != 0:
            return WITNESS_UNKNOWN, [bytes((version,)), program]
        return NONSTANDARD, []
    if script and script[0] == Op.OP_RETURN and is_push_only(script[1:]):
        return NULL_DATA, []
    if (
        len(script) in (35, 67)
        and script[0] == len(script) - 2
        and script[-1] == Op.OP_CHECKSIG
        and pubkey_size_valid(script[1:-1])
    ):
        return PUBKEY, [script[1:-1]]
    if (
        len(script) == 25
        and script[:3] == b"\x76\xa9\x14"
        and script[23] == Op.OP_EQUALVERIFY
        and script[24] == Op.OP_CHECKSIG
    ):
        return PUBKEYHASH, [script[3:23]]
    ms = _match_multisig(script)
    if ms is not None:
        required, keys = ms
        return MULTISIG, [bytes((required,)), *keys, bytes((len(keys),))]
    return NONSTANDARD, []


def witness_script(version: int, program: bytes) -> bytes:
    return bytes((0 if version == 0 else Op.OP_1 + version - 1, len(program))) + program


def p2pkh_script(h: bytes) -> bytes:
    return b"\x76\xa9\x14" + h + b"\x88\xac"


def p2sh_script(h: bytes) -> bytes:
    return b"\xa9\x14" + h + b"\x87"


def script_address(script: bytes, params: NetworkParams) -> str | None:
    """Core's ``ExtractDestination`` + ``EncodeDestination`` (None for P2PK, multisig, ...)."""
    kind, sol = solver(script)
    if kind == PUBKEYHASH:
        return b58encode_check(bytes((params.pubkey_prefix,)) + sol[0])
    if kind == SCRIPTHASH:
        return b58encode_check(bytes((params.script_prefix,)) + sol[0])
    if kind in (WITNESS_V0_KEYHASH, WITNESS_V0_SCRIPTHASH):
        return encode_segwit_address(params.bech32_hrp, 0, sol[0])
    if kind == WITNESS_V1_TAPROOT:
        return encode_segwit_address(params.bech32_hrp, 1, sol[0])
    if kind == ANCHOR:
        return encode_segwit_address(params.bech32_hrp, 1, ANCHOR_PROGRAM)
    if kind == WITNESS_UNKNOWN:
        return encode_segwit_address(params.bech32_hrp, sol[0][0], sol[1])
    return None


def has_valid_ops(script: bytes) -> bool:
    """Core's ``CScript::HasValidOps``."""
    try:
        for opcode, data, _ in iter_ops(script):
            if opcode > MAX_OPCODE or (data is not None and len(data) > MAX_SCRIPT_ELEMENT_SIZE):
                return False
    except BadScript:
        return False
    return True


# -- descriptors (BIP380 checksums, Core's InferDescriptor) -----------------------------------

_INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    'ijklmnopqrstuvwxyzABCDEFGH`#"\\ '
)
_DESC_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _descsum_polymod(symbols: Sequence[int]) -> int:
    chk = 1
    for value in symbols:
        top = chk >> 35
        chk = ((chk & 0x7FFFFFFFF) << 5) ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _DESC_GENERATOR[i]
    return chk


def descriptor_checksum(desc: str) -> str | None:
    """The 8-character BIP380 checksum of a descriptor (None if it has invalid characters)."""
    symbols: list[int] = []
    groups: list[int] = []
    for c in desc:
        v = _INPUT_CHARSET.find(c)
        if v < 0:
            return None
        symbols.append(v & 31)
        groups.append(v >> 5)
        if len(groups) == 3:
            symbols.append(groups[0] * 9 + groups[1] * 3 + groups[2])
            groups = []
    if len(groups) == 1:
        symbols.append(groups[0])
    elif len(groups) == 2:
        symbols.append(groups[0] * 3 + groups[1])
    chk = _descsum_polymod([*symbols, 0, 0, 0, 0, 0, 0, 0, 0]) ^ 1
    return "".join(CHARSET[(chk >> (5 * (7 - i))) & 31] for i in range(8))


def add_checksum(desc: str) -> str:
    checksum = descriptor_checksum(desc)
    assert checksum is not None, "descriptors we write use only valid characters"
    return f"{desc}#{checksum}"


_P = 2**256 - 2**32 - 977  # the secp256k1 field prime


def xonly_valid(key: bytes) -> bool:
    """Whether 32 bytes are the x coordinate of a curve point (``XOnlyPubKey::IsFullyValid``)."""
    x = int.from_bytes(key, "big")
    if len(key) != 32 or x >= _P:
        return False
    return pow((x * x * x + 7) % _P, (_P - 1) // 2, _P) == 1


def pubkey_fully_valid(key: bytes) -> bool:
    """Core's ``CPubKey::IsFullyValid`` for 33-byte and (non-hybrid or hybrid) 65-byte keys."""
    if not pubkey_size_valid(key):
        return False
    if len(key) == 33:
        return xonly_valid(key[1:])
    x = int.from_bytes(key[1:33], "big")
    y = int.from_bytes(key[33:], "big")
    if x >= _P or y >= _P or (y * y - x * x * x - 7) % _P:
        return False
    return key[0] == 4 or (key[0] & 1) == (y & 1)


def _infer(
    script: bytes, ctx: str, params: NetworkParams, scripts: Mapping[bytes, bytes]
) -> str | None:
    kind, sol = solver(script)
    if kind == PUBKEY and (ctx == "top" or len(sol[0]) == 33):
        return f"pk({sol[0].hex()})"
    if kind == MULTISIG and ctx in ("top", "wsh"):
        keys = sol[1:-1]
        if ctx != "wsh" or all(len(k) == 33 for k in keys):
            return f"multi({sol[0][0]},{','.join(k.hex() for k in keys)})"
    if kind == WITNESS_V0_SCRIPTHASH and ctx == "top":
        inner_script = scripts.get(sol[0])
        if inner_script is not None:
            inner = _infer(inner_script, "wsh", params, scripts)
            if inner is not None:
                return f"wsh({inner})"
    if kind == WITNESS_V1_TAPROOT and ctx == "top" and xonly_valid(sol[0]):
        return f"rawtr({sol[0].hex()})"
    if ctx != "top":
        return None
    address = script_address(script, params)
    if address is not None:
        return f"addr({address})"
    return f"raw({script.hex()})"


def infer_descriptor(
    script: bytes, params: NetworkParams, scripts: Mapping[bytes, bytes] | None = None
) -> str:
    """Core's ``InferDescriptor(script, provider)->ToString()`` with checksum.

    ``scripts`` maps the SHA-256 of a witness script to the script (what Core's provider knows
    in ``decodescript``); no keys are ever known, so P2PKH and P2WPKH stay ``addr()``.
    """
    desc = _infer(script, "top", params, scripts or {})
    assert desc is not None
    return add_checksum(desc)


def script_to_json(
    script: bytes,
    params: NetworkParams,
    *,
    include_hex: bool = True,
    include_address: bool = True,
    scripts: Mapping[bytes, bytes] | None = None,
) -> dict[str, Any]:
    """Core's ``ScriptToUniv``: asm, desc, hex, address (when one exists), type."""
    out: dict[str, Any] = {"asm": script_to_asm(script)}
    if include_address:
        out["desc"] = infer_descriptor(script, params, scripts)
    if include_hex:
        out["hex"] = script.hex()
    kind, _ = solver(script)
    if include_address and kind != PUBKEY:
        address = script_address(script, params)
        if address is not None:
            out["address"] = address
    out["type"] = kind
    return out


# -- addresses (Core's DecodeDestination) ------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """A decoded address: its scriptPubKey and what ``validateaddress`` says about it."""

    script: bytes
    kind: str  # one of the solver type names
    witness_version: int | None = None
    witness_program: bytes | None = None


@dataclass(frozen=True)
class AddressFailure:
    error: str
    locations: tuple[int, ...] = ()


def _bytes_word(n: int) -> str:
    return "byte" if n == 1 else "bytes"


def _bech32_failure(text: str) -> AddressFailure:
    """A reason for a string that starts with our hrp but does not decode as bech32(m).

    Core locates up to two wrong characters (``bech32::LocateErrors``); we report the reason
    with the positions we can name cheaply (over-long strings, bad characters), else none."""
    if len(text) > MAX_LENGTH:
        return AddressFailure("Bech32 string too long", tuple(range(MAX_LENGTH, len(text))))
    lower = text.lower()
    if lower != text and text.upper() != text:
        return AddressFailure("Invalid character or mixed case")
    sep = lower.rfind("1")
    if sep < 0:
        return AddressFailure("Missing separator")
    if sep == 0 or sep + 7 > len(lower):
        return AddressFailure("Invalid separator position", (sep,))
    for i in range(sep + 1, len(lower)):
        if lower[i] not in CHARSET:
            return AddressFailure("Invalid Base 32 character", (i,))
    version_char = lower[sep + 1]
    if version_char == "q":
        return AddressFailure("Invalid Bech32 checksum")
    return AddressFailure("Invalid Bech32m checksum")


def decode_destination(text: str, params: NetworkParams) -> Destination | AddressFailure:
    """An address of ``params``'s network, or Core's reason for refusing it."""
    hrp = params.bech32_hrp
    is_bech32 = text[: len(hrp)].lower() == hrp
    if not is_bech32:
        try:
            payload = b58decode_check(text, max_size=21)
        except DecodeError:
            try:
                b58decode(text, 100)
            except DecodeError:
                return AddressFailure("Invalid or unsupported Segwit (Bech32) or Base58 encoding.")
            return AddressFailure("Invalid checksum or length of Base58 address (P2PKH or P2SH)")
        if len(payload) == 21 and payload[0] == params.pubkey_prefix:
            return Destination(p2pkh_script(payload[1:]), PUBKEYHASH)
        if len(payload) == 21 and payload[0] == params.script_prefix:
            return Destination(p2sh_script(payload[1:]), SCRIPTHASH)
        if payload and payload[0] in (params.pubkey_prefix, params.script_prefix):
            return AddressFailure("Invalid length for Base58 address (P2PKH or P2SH)")
        return AddressFailure("Invalid or unsupported Base58-encoded address.")
    try:
        got_hrp, data, encoding = bech32_decode(text)
    except DecodeError:
        return _bech32_failure(text)
    if not data:
        return AddressFailure("Empty Bech32 data section")
    if got_hrp != hrp:
        return AddressFailure(
            "Invalid or unsupported prefix for Segwit (Bech32) address "
            f"(expected {hrp}, got {got_hrp})."
        )
    version = data[0]
    if version == 0 and encoding is not Encoding.BECH32:
        return AddressFailure("Version 0 witness address must use Bech32 checksum")
    if version != 0 and encoding is not Encoding.BECH32M:
        return AddressFailure("Version 1+ witness address must use Bech32m checksum")
    try:
        program = bytes(convert_bits(data[1:], 5, 8, False))
    except DecodeError:
        return AddressFailure("Invalid padding in Bech32 data section")
    n = len(program)
    if version == 0:
        if n == 20:
            return Destination(witness_script(0, program), WITNESS_V0_KEYHASH, 0, program)
        if n == 32:
            return Destination(witness_script(0, program), WITNESS_V0_SCRIPTHASH, 0, program)
        return AddressFailure(
            f"Invalid Bech32 v0 address program size ({n} {_bytes_word(n)}), per BIP141"
        )
    if version == 1 and n == 32:
        return Destination(witness_script(1, program), WITNESS_V1_TAPROOT, 1, program)
    if version == 1 and program == ANCHOR_PROGRAM:
        return Destination(witness_script(1, program), ANCHOR, 1, program)
    if version > 16:
        return AddressFailure("Invalid Bech32 address witness version")
    if n < 2 or n > 40:
        return AddressFailure(f"Invalid Bech32 address program size ({n} {_bytes_word(n)})")
    return Destination(witness_script(version, program), WITNESS_UNKNOWN, version, program)


def address_to_script(text: str, params: NetworkParams) -> bytes | None:
    """The scriptPubKey of a valid address of ``params``'s network, else None."""
    dest = decode_destination(text, params)
    return dest.script if isinstance(dest, Destination) else None


# -- descriptor parsing (for the mining RPCs) --------------------------------------------------


class DescriptorError(ValueError):
    """A descriptor we cannot turn into exactly one script; the message is Core-like."""


def _split_args(text: str) -> list[str]:
    args: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
    args.append(text[start:])
    return args


def _call(expr: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"([a-z]+)\((.*)\)", expr, re.DOTALL)
    return (m.group(1), m.group(2)) if m else None


def _parse_key(text: str, ctx: str, params: NetworkParams) -> bytes:
    """A public key (33/65 bytes; 32 bytes x-only in ``tr``/``rawtr``) from hex or WIF."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise DescriptorError("Key origin start '[ character expected but not found")
        text = text[end + 1 :]
    if "/" in text:
        raise DescriptorError(f"key '{text}' is not valid (derivation paths are not supported)")
    if is_hex(text):
        raw = bytes.fromhex(text)
        if ctx in ("tr", "rawtr") and len(raw) == 32:
            if not xonly_valid(raw):
                raise DescriptorError(f"Pubkey '{text}' is invalid")
            return raw
        if pubkey_size_valid(raw) and raw[0] in (6, 7):
            raise DescriptorError("Hybrid public keys are not allowed")
        if not pubkey_fully_valid(raw):
            raise DescriptorError(f"Pubkey '{text}' is invalid")
        if len(raw) == 65 and ctx in ("wpkh", "wsh", "tr", "rawtr"):
            raise DescriptorError(f"Uncompressed keys are not allowed in {ctx}()")
        return raw
    try:
        secret, compressed = decode_wif(text, params)
    except DecodeError:
        raise DescriptorError(f"key '{text}' is not valid") from None
    pub = pubkey_from_secret(secret, compressed)
    if not compressed and ctx in ("wpkh", "wsh", "tr", "rawtr"):
        raise DescriptorError(f"Uncompressed keys are not allowed in {ctx}()")
    return pub


def _multisig_script(args: list[str], ctx: str, params: NetworkParams, sort: bool) -> bytes:
    if len(args) < 2:
        raise DescriptorError("Multisig needs a threshold and at least one key")
    try:
        k = int(args[0])
    except ValueError:
        raise DescriptorError(f"Multi threshold '{args[0]}' is not valid") from None
    keys = [_parse_key(a, ctx, params) for a in args[1:]]
    if sort:
        keys.sort()
    if not 1 <= k <= len(keys):
        raise DescriptorError(
            f"Multisig threshold cannot be {k}, must be at least 1 and at most {len(keys)}"
        )
    if len(keys) > MAX_PUBKEYS_PER_MULTISIG:
        raise DescriptorError(
            f"Cannot have {len(keys)} keys in multisig; must have between 1 and 20 keys, inclusive"
        )
    return (
        push_int(k)
        + b"".join(push_data(key) for key in keys)
        + push_int(len(keys))
        + bytes((Op.OP_CHECKMULTISIG,))
    )


def _descriptor_script(expr: str, ctx: str, params: NetworkParams) -> bytes:
    call = _call(expr)
    if call is None:
        raise DescriptorError(f"'{expr}' is not a valid descriptor function")
    name, body = call
    if name == "addr" and ctx == "top":
        script = address_to_script(body, params)
        if script is None:
            raise DescriptorError("Address is not valid")
        return script
    if name == "raw" and ctx == "top":
        if not is_hex(body):
            raise DescriptorError("Raw script is not hex")
        return bytes.fromhex(body)
    if name == "pk":
        return push_data(_parse_key(body, ctx, params)) + bytes((Op.OP_CHECKSIG,))
    if name == "pkh":
        return p2pkh_script(hash160(_parse_key(body, ctx, params)))
    if name == "wpkh" and ctx in ("top", "sh"):
        return witness_script(0, hash160(_parse_key(body, "wpkh", params)))
    if name == "sh" and ctx == "top":
        return p2sh_script(hash160(_descriptor_script(body, "sh", params)))
    if name == "wsh" and ctx in ("top", "sh"):
        return witness_script(0, sha256(_descriptor_script(body, "wsh", params)))
    if name in ("multi", "sortedmulti") and ctx in ("top", "sh", "wsh"):
        return _multisig_script(_split_args(body), ctx, params, name == "sortedmulti")
    if name == "tr" and ctx == "top":
        args = _split_args(body)
        if len(args) != 1:
            raise DescriptorError("tr() with script paths is not supported here")
        key = _parse_key(args[0], "tr", params)
        xonly = key if len(key) == 32 else key[1:]
        output, _ = tweak_public_key(xonly, None)
        return witness_script(1, output)
    if name == "rawtr" and ctx == "top":
        key = _parse_key(body, "rawtr", params)
        return witness_script(1, key if len(key) == 32 else key[1:])
    if name in ("addr", "raw", "sh", "wsh", "wpkh", "tr", "rawtr", "multi", "sortedmulti"):
        raise DescriptorError(f"Can only have {name}() at top level")
    raise DescriptorError(f"'{name}(' is not a valid descriptor function")


def parse_descriptor(text: str, params: NetworkParams) -> bytes:
    """The one output script of a descriptor (checksum optional, verified when given).

    For ``combo(K)`` Core's mining RPCs take P2WPKH for a compressed key and P2PKH otherwise.
    """
    if text.count("#") > 1:
        raise DescriptorError("Multiple '#' symbols")
    if "#" in text:
        body, checksum = text.split("#")
        if len(checksum) != 8:
            raise DescriptorError(f"Expected 8 character checksum, not {len(checksum)} characters")
        computed = descriptor_checksum(body)
        if computed is None:
            raise DescriptorError("Invalid characters in payload")
        if checksum != computed:
            raise DescriptorError(
                f"Provided checksum '{checksum}' does not match computed checksum '{computed}'"
            )
    else:
        body = text
        if descriptor_checksum(body) is None:
            raise DescriptorError("Invalid characters in payload")
    call = _call(body)
    if call is not None and call[0] == "combo":
        key = _parse_key(call[1], "combo", params)
        if len(key) == 33:
            return witness_script(0, hash160(key))
        return p2pkh_script(hash160(key))
    return _descriptor_script(body, "top", params)


# -- validateaddress ---------------------------------------------------------------------------


def describe_address(dest: Destination) -> dict[str, Any]:
    """Core's ``DescribeAddress``: isscript / iswitness / witness_version / witness_program."""
    kind = dest.kind
    if kind == PUBKEYHASH:
        return {"isscript": False, "iswitness": False}
    if kind == SCRIPTHASH:
        return {"isscript": True, "iswitness": False}
    out: dict[str, Any] = {}
    if kind != WITNESS_UNKNOWN:
        out["isscript"] = kind != WITNESS_V0_KEYHASH
    out["iswitness"] = True
    out["witness_version"] = dest.witness_version
    assert dest.witness_program is not None
    out["witness_program"] = dest.witness_program.hex()
    return out


@rpc_method(
    "validateaddress",
    "util",
    [Param("address", str, help="The bitcoin address to validate")],
    result_help="isvalid, address, scriptPubKey, isscript, iswitness, witness_version, "
    "witness_program; or isvalid false with error and error_locations",
)
def validateaddress(node: ChainNode, address: str) -> dict[str, Any]:
    """Return information about the given bitcoin address."""
    dest = decode_destination(address, node.params)
    if isinstance(dest, AddressFailure):
        return {"isvalid": False, "error_locations": list(dest.locations), "error": dest.error}
    canonical = script_address(dest.script, node.params)
    result: dict[str, Any] = {
        "isvalid": True,
        "address": canonical,
        "scriptPubKey": dest.script.hex(),
    }
    result.update(describe_address(dest))
    return result


__all__ = [
    "COIN",
    "AddressFailure",
    "DescriptorError",
    "Destination",
    "add_checksum",
    "address_to_script",
    "amount_from_value",
    "btc",
    "decode_destination",
    "descriptor_checksum",
    "hash_hex",
    "infer_descriptor",
    "parse_descriptor",
    "parse_hash",
    "parse_hex",
    "script_address",
    "script_to_json",
    "solver",
]
