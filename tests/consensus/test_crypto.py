"""Signatures through libsecp256k1: the BIP340 vectors and Core's ECDSA verification rules."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import coincurve
import pytest

from peercash.consensus.crypto import (
    ecdsa_check_low_s,
    parse_der_lax,
    pubkey_from_secret,
    sign_ecdsa,
    sign_schnorr,
    verify_ecdsa,
    verify_schnorr,
    xonly_from_secret,
)
from peercash.consensus.hashing import sha256

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# -- BIP340 -------------------------------------------------------------------------------------


def _bip340_rows() -> list[dict[str, str]]:
    raw = Path(__file__).resolve().parents[1] / "data" / "bips" / "bip-0340" / "test-vectors.csv"
    text = raw.read_bytes().decode()
    assert "\r\n" in text  # upstream CRLF, kept as is
    return list(csv.DictReader(io.StringIO(text, newline="")))


BIP340 = _bip340_rows()


def test_bip340_has_19_rows() -> None:
    assert len(BIP340) == 19
    assert sum(r["verification result"] == "TRUE" for r in BIP340) == 9


@pytest.mark.parametrize("row", BIP340, ids=[f"bip340-{r['index']}" for r in BIP340])
def test_bip340_vector(row: dict[str, str]) -> None:
    pub = bytes.fromhex(row["public key"])
    msg = bytes.fromhex(row["message"])
    sig = bytes.fromhex(row["signature"])
    expected = row["verification result"] == "TRUE"
    assert verify_schnorr(pub, sig, msg) is expected
    if row["secret key"]:
        secret = bytes.fromhex(row["secret key"])
        aux = bytes.fromhex(row["aux_rand"])
        assert xonly_from_secret(secret) == pub
        assert sign_schnorr(secret, msg, aux) == sig
        assert verify_schnorr(pub, sign_schnorr(secret, msg), msg)


def test_schnorr_bad_lengths_fail_quietly() -> None:
    row = BIP340[1]
    pub, sig, msg = (bytes.fromhex(row[k]) for k in ("public key", "signature", "message"))
    assert verify_schnorr(pub, sig, msg)
    assert not verify_schnorr(pub[:31], sig, msg)
    assert not verify_schnorr(pub, sig[:63], msg)
    assert not verify_schnorr(pub, sig + b"\x01", msg)
    assert not verify_schnorr(pub, sig, msg + b"\x00")
    with pytest.raises(ValueError):
        sign_schnorr(bytes(32), msg)  # zero is not a secret key
    with pytest.raises(ValueError):
        sign_schnorr(bytes.fromhex(BIP340[0]["secret key"]), msg, b"\x00" * 31)


def test_schnorr_aux_none_is_zero_aux() -> None:
    secret = sha256(b"some key")
    for msg in (b"", b"x", sha256(b"m"), b"y" * 100):
        assert sign_schnorr(secret, msg) == sign_schnorr(secret, msg, bytes(32))
        assert sign_schnorr(secret, msg) != sign_schnorr(secret, msg, b"\x01" * 32)


# -- ECDSA -------------------------------------------------------------------------------------

SECRET = sha256(b"peercash ecdsa test key")
MSG = sha256(b"peercash ecdsa test message")
PUB = pubkey_from_secret(SECRET)
PUB_FULL = pubkey_from_secret(SECRET, compressed=False)


def _der_int(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return b"\x02" + bytes([len(body)]) + body


def _der(r: int, s: int) -> bytes:
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body


def _rs(sig: bytes) -> tuple[int, int]:
    compact = parse_der_lax(sig)
    assert compact is not None
    return int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:], "big")


SIG = sign_ecdsa(SECRET, MSG)
R, S = _rs(SIG)


def test_sign_ecdsa_is_strict_der_low_s_and_matches_coincurve() -> None:
    assert _der(R, S) == SIG
    assert S <= ORDER // 2
    assert coincurve.PrivateKey(SECRET).sign(MSG, hasher=None) == SIG
    assert ecdsa_check_low_s(SIG)


def test_valid_signature_verifies() -> None:
    assert verify_ecdsa(PUB, SIG, MSG)
    assert verify_ecdsa(PUB_FULL, SIG, MSG)
    assert not verify_ecdsa(PUB, SIG, sha256(b"another message"))
    assert not verify_ecdsa(pubkey_from_secret(sha256(b"other")), SIG, MSG)


def test_lax_der_accepts_what_core_accepts() -> None:
    r_int = _der_int(R)
    s_int = _der_int(S)
    r_body, s_body = r_int[2:], s_int[2:]

    def seq(*parts: bytes) -> bytes:
        body = b"".join(parts)
        return b"\x30" + bytes([len(body)]) + body

    variants = {
        "extra zero padding in r": seq(
            b"\x02" + bytes([len(r_body) + 2]) + b"\x00\x00" + r_body, s_int
        ),
        "extra zero padding in s": seq(
            r_int, b"\x02" + bytes([len(s_body) + 3]) + b"\x00" * 3 + s_body
        ),
        "long-form integer length": seq(b"\x02\x81" + bytes([len(r_body)]) + r_body, s_int),
        "padded long-form length": seq(
            b"\x02\x84\x00\x00\x00" + bytes([len(r_body)]) + r_body, s_int
        ),
        "long-form sequence length": b"\x30\x81" + bytes([len(r_int + s_int)]) + r_int + s_int,
        "wrong sequence length": b"\x30\x00" + r_int + s_int,
        "garbage after the signature": SIG + b"\x01\x02\x03",
    }
    for name, sig in variants.items():
        assert parse_der_lax(sig) == parse_der_lax(SIG), name
        assert verify_ecdsa(PUB, sig, MSG), name
    # libsecp256k1's strict DER parser (what coincurve uses) refuses such encodings.
    for name in (
        "extra zero padding in r",
        "long-form integer length",
        "garbage after the signature",
    ):
        with pytest.raises(ValueError):
            coincurve.PublicKey(PUB).verify(variants[name], MSG, hasher=None)


def test_lax_der_reads_integers_as_unsigned() -> None:
    """Without its 0x00 sign byte a high r reads as negative in DER; Core takes it as unsigned."""
    for i in range(100):
        msg = sha256(b"high r %d" % i)
        sig = sign_ecdsa(SECRET, msg)
        if sig[3] == 0x21:  # r needed a sign byte
            break
    else:  # pragma: no cover - 100 tries without a high r has odds of 2^-100
        raise AssertionError("no high r found")
    r_len = sig[3]
    r_unsigned = sig[5 : 4 + r_len]
    rest = sig[4 + r_len :]
    body = b"\x02" + bytes([len(r_unsigned)]) + r_unsigned + rest
    negative = b"\x30" + bytes([len(body)]) + body
    assert parse_der_lax(negative) == parse_der_lax(sig)
    assert verify_ecdsa(PUB, negative, msg)
    # libsecp256k1's strict parser takes it as a negative (so invalid) number.
    assert not coincurve.PublicKey(PUB).verify(negative, msg, hasher=None)


def test_lax_der_rejections() -> None:
    r_int, s_int = _der_int(R), _der_int(S)
    bad = {
        "empty": b"",
        "not a sequence": b"\x31" + SIG[1:],
        "only the tag": b"\x30",
        "long-form sequence length past the end": b"\x30\x85\x00",
        "r not an integer": b"\x30\x44\x03" + SIG[3:],
        "r longer than the input": b"\x30\x44\x02\x60" + SIG[4:],
        "r length with four significant bytes": b"\x30\x44\x02\x84\x01\x00\x00\x20"
        + r_int[2:]
        + s_int,
        "missing s": b"\x30\x22" + r_int,
        "s longer than the input": b"\x30\x44" + r_int + b"\x02\x30" + s_int[2:],
        "s header truncated": b"\x30\x44" + r_int + b"\x02",
    }
    for name, sig in bad.items():
        assert parse_der_lax(sig) is None, name
        assert not verify_ecdsa(PUB, sig, MSG), name
        assert not ecdsa_check_low_s(sig), name


def test_high_s_verifies_after_normalization() -> None:
    high = _der(R, ORDER - S)
    assert not ecdsa_check_low_s(high)
    assert verify_ecdsa(PUB, high, MSG)
    # libsecp256k1 alone (as coincurve calls it) refuses high S; Core normalizes first.
    assert not coincurve.PublicKey(PUB).verify(high, MSG, hasher=None)


def test_r_or_s_overflow_fails() -> None:
    for r, s in ((R + ORDER, S), (R, S + ORDER), (ORDER, S), (R, ORDER), (0, S), (R, 0)):
        if r >= 1 << 256 or s >= 1 << 256:
            continue
        sig = _der(r, s)
        assert not verify_ecdsa(PUB, sig, MSG), (r, s)
    # Wider than 32 bytes after stripping zeros: the all-zero signature, never valid, but low S.
    wide = _der(R | (1 << 300), S)
    assert parse_der_lax(wide) == bytes(64)
    assert not verify_ecdsa(PUB, wide, MSG)
    assert ecdsa_check_low_s(wide)
    # r or s at or above the order: the same zero signature in Core's reading.
    assert ecdsa_check_low_s(_der(R, ORDER + 5))


def test_hybrid_pubkeys() -> None:
    x, y = PUB_FULL[1:33], PUB_FULL[33:]
    odd = y[-1] & 1
    hybrid = bytes([6 + odd]) + x + y
    assert verify_ecdsa(hybrid, SIG, MSG)
    wrong_parity = bytes([7 - odd]) + x + y
    assert not verify_ecdsa(wrong_parity, SIG, MSG)


@pytest.mark.parametrize(
    "pubkey",
    [
        b"",
        PUB[:32],
        PUB + b"\x00",
        PUB_FULL[:64],
        PUB_FULL + b"\x00",
        b"\x04" + PUB[1:],  # 33 bytes with an uncompressed prefix
        b"\x05" + PUB[1:],
        b"\x02" + PUB_FULL[1:],  # 65 bytes with a compressed prefix
        b"\x05" + PUB_FULL[1:],
        b"\x02" + b"\xff" * 32,  # x beyond the field
        b"\x04" + PUB_FULL[1:33] + bytes(32),  # not on the curve
        PUB_FULL[1:33],  # an x-only key is not an ECDSA key
    ],
)
def test_invalid_pubkeys_rejected(pubkey: bytes) -> None:
    assert not verify_ecdsa(pubkey, SIG, MSG)


def test_message_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        verify_ecdsa(PUB, SIG, MSG[:31])


def test_key_helpers() -> None:
    assert coincurve.PrivateKey(SECRET).public_key.format(compressed=True) == PUB
    assert coincurve.PrivateKey(SECRET).public_key.format(compressed=False) == PUB_FULL
    assert xonly_from_secret(SECRET) == PUB[1:]
    for bad in (bytes(32), ORDER.to_bytes(32, "big"), b"\x01" * 31):
        with pytest.raises(ValueError):
            pubkey_from_secret(bad)
        with pytest.raises(ValueError):
            sign_ecdsa(bad, MSG)


# -- the lax parser against a plain reading of Core's rules ---------------------------------------


def _reference_lax(sig: bytes) -> bytes | None:
    """Core's lax DER rules walked byte by byte, with no shortcuts."""
    n = len(sig)
    pos = 0
    if pos == n or sig[pos] != 0x30:
        return None
    pos += 1
    if pos == n:
        return None
    b = sig[pos]
    pos += 1
    if b & 0x80:
        if b - 0x80 > n - pos:
            return None
        pos += b - 0x80
    fields = []
    for _ in range(2):
        if pos == n or sig[pos] != 0x02:
            return None
        pos += 1
        if pos == n:
            return None
        b = sig[pos]
        pos += 1
        if b & 0x80:
            k = b - 0x80
            if k > n - pos:
                return None
            while k > 0 and sig[pos] == 0:
                pos += 1
                k -= 1
            if k >= 4:
                return None
            length = 0
            while k > 0:
                length = length * 256 + sig[pos]
                pos += 1
                k -= 1
        else:
            length = b
        if length > n - pos:
            return None
        fields.append((pos, length))
        pos += length
    out = b""
    for start, length in fields:
        value = int.from_bytes(sig[start : start + length], "big")
        if value >> 256:
            return bytes(64)
        out += value.to_bytes(32, "big")
    return out


def test_lax_parser_matches_reference_on_mutations() -> None:
    import random

    rng = random.Random(340)  # fixed seed: a deterministic sweep, not a random test
    seeds = [SIG, _der(R, ORDER - S), _der(1, 1), _der(R | (1 << 270), S)]
    checked = 0
    for _ in range(20000):
        sig = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(4)
            if op == 0 and sig:
                sig[rng.randrange(len(sig))] = rng.choice(
                    [0, 0x02, 0x30, 0x80, 0x81, 0x84, 0xFF, rng.randrange(256)]
                )
            elif op == 1:
                sig.insert(rng.randrange(len(sig) + 1), rng.choice([0, rng.randrange(256)]))
            elif op == 2 and sig:
                del sig[rng.randrange(len(sig))]
            else:
                sig = sig[: rng.randrange(len(sig) + 1)]
        assert parse_der_lax(bytes(sig)) == _reference_lax(bytes(sig)), bytes(sig).hex()
        checked += 1
    assert checked == 20000


def test_pubkey_cache_is_bounded_and_transparent(monkeypatch: pytest.MonkeyPatch) -> None:
    from peercash.consensus import crypto

    monkeypatch.setattr(crypto, "PUBKEY_CACHE_SIZE", 4)
    crypto._pubkey_cache.clear()
    keys = [sha256(b"cache %d" % i) for i in range(10)]
    for rounds in range(2):
        for k in keys:
            msg = sha256(k)
            pub = pubkey_from_secret(k, compressed=bool(rounds))
            assert verify_ecdsa(pub, sign_ecdsa(k, msg), msg)
            assert not verify_ecdsa(pub, sign_ecdsa(k, msg), sha256(msg))
            assert len(crypto._pubkey_cache) <= 4
    # Keys that do not parse are never cached.
    crypto._pubkey_cache.clear()
    assert not verify_ecdsa(b"\x02" + b"\xff" * 32, SIG, MSG)
    assert not crypto._pubkey_cache
    crypto._pubkey_cache.clear()


def _verify_lax_reference(pubkey: bytes, sig_der: bytes, msg32: bytes) -> bool:
    """verify_ecdsa without the C strict-DER shortcut: lax parse, compact, normalize, verify."""
    from coincurve._libsecp256k1 import ffi, lib
    from coincurve.context import GLOBAL_CONTEXT

    ctx = GLOBAL_CONTEXT.ctx
    if not (
        (len(pubkey) == 33 and pubkey[0] in (2, 3))
        or (len(pubkey) == 65 and pubkey[0] in (4, 6, 7))
    ):
        return False
    compact = parse_der_lax(sig_der)
    if compact is None:
        return False
    sig = ffi.new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_signature_parse_compact(ctx, sig, compact):
        return False
    pk = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_parse(ctx, pk, pubkey, len(pubkey)):
        return False
    lib.secp256k1_ecdsa_signature_normalize(ctx, sig, sig)
    return bool(lib.secp256k1_ecdsa_verify(ctx, sig, msg32, pk))


def test_verify_ecdsa_fast_der_path_equals_lax_reference() -> None:
    """The C strict-DER shortcut gives the lax reading's answer on valid and mangled encodings."""
    import random

    rng = random.Random(7)
    agree_true = 0
    for i in range(300):
        msg = sha256(b"der path %d" % i)
        sig = bytearray(sign_ecdsa(SECRET, msg))
        variants = [bytes(sig)]
        r_len = sig[3]
        # Padding the integers, a negative-looking r, a high S, random byte flips and truncation.
        padded = b"\x02" + bytes([r_len + 1]) + b"\x00" + sig[4 : 4 + r_len] + sig[4 + r_len :]
        variants.append(b"\x30" + bytes([len(padded)]) + padded)
        if sig[4] == 0:
            body = b"\x02" + bytes([r_len - 1]) + sig[5 : 4 + r_len] + sig[4 + r_len :]
            variants.append(b"\x30" + bytes([len(body)]) + body)
        for _ in range(6):
            m = bytearray(sig)
            m[rng.randrange(len(m))] = rng.randrange(256)
            variants.append(bytes(m))
        variants.append(bytes(sig[: rng.randrange(len(sig))]))
        for v in variants:
            expected = _verify_lax_reference(PUB, v, msg)
            assert verify_ecdsa(PUB, v, msg) is expected, v.hex()
            agree_true += expected
    assert agree_true > 300  # the valid and re-encoded signatures did verify
