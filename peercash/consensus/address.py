"""Addresses and WIF private keys: text a person copies, to and from the bytes the chain uses.

Layer 0 (consensus). Pure functions; every network-dependent choice comes from the
``NetworkParams`` passed in. Decoders raise only ``DecodeError`` subclasses: ``EncodingError`` or
``ChecksumError`` for malformed text (from base58/bech32), ``OversizeError`` for text too long to
be an address or key, and ``AddressError`` for well-formed text that is not an address or key of
the network asked for. Encoders raise ``ValueError`` on arguments that have no text form.

An address stands for a scriptPubKey: P2PKH and P2SH use base58check with the network's version
byte; native segwit outputs of any version use bech32 (v0) or bech32m (v1+) with its hrp.
"""

from __future__ import annotations

from .base58 import b58decode_check, b58encode_check
from .bech32 import bech32_decode, decode_segwit_address, encode_segwit_address
from .errors import AddressError, DecodeError
from .params import NetworkParams

OP_0 = 0x00
OP_1 = 0x51
OP_16 = 0x60
OP_DUP = 0x76
OP_EQUAL = 0x87
OP_EQUALVERIFY = 0x88
OP_HASH160 = 0xA9
OP_CHECKSIG = 0xAC

HASH160_SIZE = 20
SECRET_SIZE = 32

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""n, the group order: a private key is a number in 1..n-1."""

_WIF_COMPRESSED_FLAG = 0x01


def p2pkh_script(pubkey_hash: bytes) -> bytes:
    """``OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG``: pay to a public key's hash160."""
    if len(pubkey_hash) != HASH160_SIZE:
        raise ValueError(f"P2PKH needs a {HASH160_SIZE}-byte hash, not {len(pubkey_hash)}")
    return (
        bytes([OP_DUP, OP_HASH160, HASH160_SIZE])
        + pubkey_hash
        + bytes([OP_EQUALVERIFY, OP_CHECKSIG])
    )


def p2sh_script(script_hash: bytes) -> bytes:
    """``OP_HASH160 <20> OP_EQUAL``: pay to a redeem script's hash160 (BIP16)."""
    if len(script_hash) != HASH160_SIZE:
        raise ValueError(f"P2SH needs a {HASH160_SIZE}-byte hash, not {len(script_hash)}")
    return bytes([OP_HASH160, HASH160_SIZE]) + script_hash + bytes([OP_EQUAL])


def witness_script(version: int, program: bytes) -> bytes:
    """``<version opcode> <program>``: a native segwit output (BIP141), any version 0..16."""
    if not 0 <= version <= 16:
        raise ValueError(f"witness version {version} is not in 0..16")
    if not 2 <= len(program) <= 40:
        raise ValueError(f"witness program of {len(program)} bytes is not 2..40 bytes")
    opcode = OP_0 if version == 0 else OP_1 + version - 1
    return bytes([opcode, len(program)]) + program


def _parse_witness(script: bytes) -> tuple[int, bytes] | None:
    """(version, program) if ``script`` is a witness program, else None (BIP141's pattern)."""
    if not 4 <= len(script) <= 42 or script[1] != len(script) - 2:
        return None
    opcode = script[0]
    if opcode == OP_0:
        return 0, script[2:]
    if OP_1 <= opcode <= OP_16:
        return opcode - OP_1 + 1, script[2:]
    return None


def address_to_script(addr: str, params: NetworkParams) -> bytes:
    """The scriptPubKey that ``addr`` stands for on the network ``params``."""
    if addr.lower().startswith(params.bech32_hrp + "1"):
        version, program = decode_segwit_address(params.bech32_hrp, addr)
        return witness_script(version, program)
    try:
        payload = b58decode_check(addr, max_size=1 + HASH160_SIZE)
    except DecodeError:
        _reject_foreign_bech32(addr, params)
        raise
    if len(payload) != 1 + HASH160_SIZE:
        raise AddressError(f"base58 address payload of {len(payload)} bytes is not 21 bytes")
    version_byte, body = payload[0], payload[1:]
    if version_byte == params.pubkey_prefix:
        return p2pkh_script(body)
    if version_byte == params.script_prefix:
        return p2sh_script(body)
    raise AddressError(
        f"base58 version byte {version_byte} is neither P2PKH ({params.pubkey_prefix}) "
        f"nor P2SH ({params.script_prefix}) on {params.name}"
    )


def _reject_foreign_bech32(addr: str, params: NetworkParams) -> None:
    """Name the real problem when a bech32 string of another network fails as base58."""
    try:
        hrp, _, _ = bech32_decode(addr)
    except DecodeError:
        return
    raise AddressError(
        f"bech32 address has hrp {hrp!r}, but {params.name} uses {params.bech32_hrp!r}"
    )


def script_to_address(script: bytes, params: NetworkParams) -> str | None:
    """The address of ``script`` on ``params``, or None if it has no address form.

    Scripts without one include bare multisig, OP_RETURN outputs and witness v0 programs of a
    length other than 20 or 32 bytes (which no v0 address may carry).
    """
    if (
        len(script) == 25
        and script[:3] == bytes([OP_DUP, OP_HASH160, HASH160_SIZE])
        and script[23:] == bytes([OP_EQUALVERIFY, OP_CHECKSIG])
    ):
        return b58encode_check(bytes([params.pubkey_prefix]) + script[3:23])
    if (
        len(script) == 23
        and script[:2] == bytes([OP_HASH160, HASH160_SIZE])
        and script[22] == OP_EQUAL
    ):
        return b58encode_check(bytes([params.script_prefix]) + script[2:22])
    witness = _parse_witness(script)
    if witness is None:
        return None
    version, program = witness
    if version == 0 and len(program) not in (20, 32):
        return None
    return encode_segwit_address(params.bech32_hrp, version, program)


def _check_secret(secret: bytes) -> None:
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"a private key is {SECRET_SIZE} bytes, not {len(secret)}")
    if not 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
        raise ValueError("a private key must be in 1..n-1 (n the secp256k1 order)")


def encode_wif(secret32: bytes, compressed: bool, params: NetworkParams) -> str:
    """Wallet Import Format: base58check of version byte, secret and, if compressed, 0x01.

    The trailing flag tells the importer which public key form (33 or 65 bytes) was used,
    and therefore which addresses to look for.
    """
    _check_secret(secret32)
    suffix = bytes([_WIF_COMPRESSED_FLAG]) if compressed else b""
    return b58encode_check(bytes([params.secret_prefix]) + secret32 + suffix)


def decode_wif(text: str, params: NetworkParams) -> tuple[bytes, bool]:
    """(32-byte secret, compressed flag) of a WIF private key for the network ``params``."""
    payload = b58decode_check(text, max_size=1 + SECRET_SIZE + 1)
    if len(payload) not in (1 + SECRET_SIZE, 1 + SECRET_SIZE + 1):
        raise AddressError(f"WIF payload of {len(payload)} bytes is not 33 or 34 bytes")
    if payload[0] != params.secret_prefix:
        raise AddressError(
            f"WIF version byte {payload[0]} is not {params.name}'s {params.secret_prefix}"
        )
    compressed = len(payload) == 1 + SECRET_SIZE + 1
    if compressed and payload[-1] != _WIF_COMPRESSED_FLAG:
        raise AddressError(f"WIF compression flag is {payload[-1]:#04x}, not 0x01")
    secret = payload[1 : 1 + SECRET_SIZE]
    try:
        _check_secret(secret)
    except ValueError as error:
        raise AddressError(f"WIF key is invalid: {error}") from None
    return secret, compressed
