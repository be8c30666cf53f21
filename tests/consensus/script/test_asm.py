"""Script assembly: Core's ParseScript notation in, Core's ScriptToAsmStr out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peercash.consensus.script.asm import parse_asm, script_to_asm
from peercash.consensus.script.opcodes import Op

DATA = Path(__file__).resolve().parents[2] / "data" / "core"


# -- parse_asm ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hex_"),
    [
        ("", ""),
        ("0", "00"),
        ("-1", "4f"),
        ("1", "51"),
        ("16", "60"),
        ("17", "0111"),
        ("-2", "0182"),
        ("127", "017f"),
        ("128", "028000"),
        ("-128", "028080"),
        ("255", "02ff00"),
        ("2147483647", "04ffffff7f"),
        ("2147483648", "050000008000"),
        ("-2147483648", "050000008080"),
        ("4294967295", "05ffffffff00"),
        ("-4294967295", "05ffffffff80"),
        ("007", "57"),  # leading zeros are still a decimal number
        ("-0", "00"),
    ],
)
def test_numbers_push_like_core(text: str, hex_: str) -> None:
    assert parse_asm(text).hex() == hex_


@pytest.mark.parametrize("text", ["4294967296", "-4294967296", "99999999999999999999999"])
def test_numbers_out_of_range_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="decimal numeric value"):
        parse_asm(text)


def test_hex_is_inserted_raw() -> None:
    assert parse_asm("0x4c01ff").hex() == "4c01ff"
    assert parse_asm("0x14 0x" + "ab" * 20).hex() == "14" + "ab" * 20
    assert parse_asm("0xABcd").hex() == "abcd"


@pytest.mark.parametrize("text", ["0x", "0x1", "0xzz", "0X00", "x00"])
def test_bad_hex_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_asm(text)


def test_quoted_strings_are_pushed() -> None:
    assert parse_asm("'Az'").hex() == "02417a"
    assert parse_asm("''").hex() == "00"
    assert parse_asm("'" + "b" * 76 + "'") == bytes((Op.OP_PUSHDATA1, 76)) + b"b" * 76
    assert parse_asm("'" + "c" * 256 + "'")[:3] == bytes((Op.OP_PUSHDATA2, 0, 1))
    with pytest.raises(ValueError):
        parse_asm("'")
    with pytest.raises(ValueError):
        parse_asm("'a b'")  # no spaces inside quotes, as in Core


def test_opcode_names_with_and_without_prefix() -> None:
    assert parse_asm("DUP HASH160") == parse_asm("OP_DUP OP_HASH160") == b"\x76\xa9"
    assert parse_asm("CHECKLOCKTIMEVERIFY") == parse_asm("OP_CHECKLOCKTIMEVERIFY") == b"\xb1"
    assert parse_asm("NOP2 OP_NOP3") == b"\xb1\xb2"
    assert parse_asm("CHECKSIGADD") == b"\xba"
    assert parse_asm("RESERVED OP_RESERVED NOP10") == b"\x50\x50\xb9"
    assert parse_asm("OP_0 OP_1 OP_16 OP_1NEGATE OP_TRUE OP_FALSE") == b"\x00\x51\x60\x4f\x51\x00"


@pytest.mark.parametrize(
    "text",
    [
        "dup",  # names are case-sensitive
        "PUSHDATA1",  # push opcodes are written as raw hex
        "OP_PUSHDATA2",
        "INVALIDOPCODE",
        "OP_UNKNOWN",
        "1ADDD",
        "+1",
        "-",
        "OP_17",
    ],
)
def test_unknown_words_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_asm(text)


def test_only_space_tab_newline_separate_words() -> None:
    assert parse_asm("  1\t2\n\n3  ") == b"\x51\x52\x53"
    with pytest.raises(ValueError):
        parse_asm("1\r2")


def test_core_vector_examples() -> None:
    # A P2PKH scriptPubKey and a P2SH one, as written in tx_valid.json
    p2pkh = "DUP HASH160 0x14 0x5b6462475454710f3c22f5fdf0b40704c92f25c3 EQUALVERIFY CHECKSIG"
    assert parse_asm(p2pkh).hex() == "76a9145b6462475454710f3c22f5fdf0b40704c92f25c388ac"
    p2sh = "HASH160 0x14 0x58a994e9d5ed9baa03ecfd1137592a90ad3cdfc5 EQUAL"
    assert parse_asm(p2sh).hex() == "a91458a994e9d5ed9baa03ecfd1137592a90ad3cdfc587"
    assert parse_asm("0x4c 0x01 0x07") == b"\x4c\x01\x07"
    assert parse_asm("'abc' 3 EQUAL") == b"\x03abc\x53\x87"


def test_every_script_in_core_vectors_parses() -> None:
    rows = json.loads((DATA / "script_tests.json").read_text())
    count = 0
    for row in rows:
        if len(row) == 1:
            continue
        pos = 1 if isinstance(row[0], list) else 0
        for text in row[pos : pos + 2]:
            if "#" not in text:
                parse_asm(text)
                count += 1
    assert count > 2400
    for name in ("tx_valid.json", "tx_invalid.json"):
        for row in json.loads((DATA / name).read_text()):
            if isinstance(row[0], list):
                for prevout in row[0]:
                    parse_asm(prevout[2])


# -- script_to_asm --------------------------------------------------------------------------------

DER_SIG = (
    "304502207fa7a6d1e0ee81132a269ad84e68d695483745cde8b541e3bf630749894e342a"
    "022100c1f7ab20e13e22fb95281a870f3dcf38d782e53023ee313d741ad0cfbc0c5090"
)
PUBKEY = "03b0da749730dc9b4b1f4a14d6902877a92541f5368778853d9c4a0cb7802dcfb2"


def _sig_script(hash_type: str) -> bytes:
    return parse_asm(f"0x48 0x{DER_SIG}{hash_type} 0x21 0x{PUBKEY}")


@pytest.mark.parametrize(
    ("hash_type", "decoded"),
    [
        ("01", "[ALL]"),
        ("02", "[NONE]"),
        ("03", "[SINGLE]"),
        ("81", "[ALL|ANYONECANPAY]"),
        ("82", "[NONE|ANYONECANPAY]"),
        ("83", "[SINGLE|ANYONECANPAY]"),
        ("00", "00"),
        ("80", "80"),
    ],
)
def test_sighash_decoding_like_core(hash_type: str, decoded: str) -> None:
    script = _sig_script(hash_type)
    assert script_to_asm(script, True) == f"{DER_SIG}{decoded} {PUBKEY}"
    assert script_to_asm(script) == f"{DER_SIG}{hash_type} {PUBKEY}"


def test_no_sighash_decoding_in_unspendable_scripts() -> None:
    script = b"\x6a" + _sig_script("01")
    assert script_to_asm(script, True) == f"OP_RETURN {DER_SIG}01 {PUBKEY}"


def test_asm_names_and_numbers() -> None:
    assert script_to_asm(b"\xb1") == "OP_CHECKLOCKTIMEVERIFY"
    assert script_to_asm(b"\xb2\xb0\xb9") == "OP_CHECKSEQUENCEVERIFY OP_NOP1 OP_NOP10"
    assert script_to_asm(bytes.fromhex("004f5160")) == "0 -1 1 16"
    # a four-byte negative zero reads as 0; five bytes are shown as hex
    assert script_to_asm(bytes.fromhex("0111028000040000008005ffffffff00")) == (
        "17 128 0 ffffffff00"
    )
    assert script_to_asm(bytes.fromhex("4c0107")) == "7"  # non-minimal push of 7
    assert script_to_asm(bytes.fromhex("50babbff")) == (
        "OP_RESERVED OP_CHECKSIGADD OP_UNKNOWN OP_INVALIDOPCODE"
    )
    assert script_to_asm(b"") == ""


def test_truncated_push_ends_with_error() -> None:
    assert script_to_asm(bytes.fromhex("51 4c")) == "1 [error]"
    assert script_to_asm(bytes.fromhex("0201")) == "[error]"


def test_p2pkh_round_trip() -> None:
    text = "OP_DUP OP_HASH160 " + "ab" * 20 + " OP_EQUALVERIFY OP_CHECKSIG"
    script = parse_asm("DUP HASH160 0x14 0x" + "ab" * 20 + " EQUALVERIFY CHECKSIG")
    assert script_to_asm(script) == text


@pytest.mark.parametrize(
    "text",
    [
        "1 2 ADD 3 EQUAL",
        "-1 0 16 17 -17 1000 -1000 2147483647 -2147483647",
        "IF 0x05 0xaabbccddee ELSE NOP ENDIF",
        "CHECKLOCKTIMEVERIFY DROP CHECKSEQUENCEVERIFY",
    ],
)
def test_asm_round_trip_for_minimal_scripts(text: str) -> None:
    # For scripts whose pushes are minimal, numbers and names read back to the same bytes once the
    # disassembly is turned back into parser notation.
    script = parse_asm(text)
    words = []
    for word in script_to_asm(script).split():
        if word.startswith("OP_") or word.lstrip("-").isdigit():
            words.append(word)
        else:
            data = bytes.fromhex(word)
            words.append(f"0x{len(data):02x} 0x{word}")
    assert parse_asm(" ".join(words)) == script
