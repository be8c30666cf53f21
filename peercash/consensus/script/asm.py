"""Script assembly text: Bitcoin Core's test-vector notation and its RPC ``asm`` form.

``parse_asm`` reads the notation of Core's ``ParseScript`` (the language of script_tests.json,
tx_valid.json and ``decodescript`` inputs); ``script_to_asm`` writes what Core's ``ScriptToAsmStr``
writes (the ``asm`` fields of ``decodescript``/``decoderawtransaction``). Both are pure functions;
``parse_asm`` raises ``ValueError`` on a word it does not understand.
"""

from __future__ import annotations

import re

from .interpreter import is_valid_signature_encoding
from .opcodes import MAX_OPCODE, Op, opcode_name
from .script import BadScript, decode_num, get_op, is_unspendable, push_data, push_int

_MAX_DECIMAL = 0xFFFFFFFF
"""ParseScript refuses decimal numbers beyond ±0xFFFFFFFF (they are not valid script numbers)."""

_WORD_SEPARATORS = re.compile("[ \t\n]")
"""Only space, tab and newline separate words (Core splits on exactly these three)."""

_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _build_opcode_names() -> dict[str, int]:
    """Every opcode word ParseScript understands, mapped to its byte.

    Each opcode from OP_RESERVED upward with a name is known both as ``OP_NAME`` and ``NAME``.
    The small-number opcodes and OP_0 are known as ``OP_0`` … ``OP_16`` (their bare forms are
    decimal numbers, which push the same byte). Core's aliases OP_TRUE, OP_FALSE, OP_1NEGATE,
    OP_NOP2 and OP_NOP3 are accepted with and without the prefix.
    """
    names: dict[str, int] = {}
    for op in range(MAX_OPCODE + 1):
        if 0 < op < Op.OP_RESERVED:
            continue  # direct pushes, PUSHDATA1/2/4 and 1NEGATE: not words of their own
        if op == 0 or Op.OP_1 <= op <= Op.OP_16:
            number = 0 if op == 0 else op - (Op.OP_1 - 1)
            names[f"OP_{number}"] = op
            continue
        name = opcode_name(op)
        if name == "OP_UNKNOWN":
            continue
        names[name] = op
        names[name[3:]] = op
    aliases = {
        "1NEGATE": Op.OP_1NEGATE,
        "TRUE": Op.OP_1,
        "FALSE": Op.OP_0,
        "NOP2": Op.OP_CHECKLOCKTIMEVERIFY,
        "NOP3": Op.OP_CHECKSEQUENCEVERIFY,
    }
    for bare, op in aliases.items():
        names[bare] = int(op)
        names["OP_" + bare] = int(op)
    return names


_OPCODE_NAMES = _build_opcode_names()


def _is_number_word(word: str) -> bool:
    body = word[1:] if word.startswith("-") else word
    return bool(body) and all(c in _DIGITS for c in body)


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and all(c in _HEX_DIGITS for c in text)


def parse_asm(text: str) -> bytes:
    """Assemble Core's script notation into script bytes.

    Words, separated by spaces, tabs or newlines, are read in this order of precedence:

    * a decimal number (``-`` allowed, no ``+``): pushed as Core's ``CScript << int64`` does,
      so ``-1`` and ``0``…``16`` become the small-number opcodes; beyond ±0xFFFFFFFF is an error;
    * ``0x`` followed by an even number of hex digits: the bytes, inserted as they are (not pushed);
    * ``'text'``: a push of the text's bytes (UTF-8);
    * an opcode name, with or without ``OP_`` (``ADD``, ``OP_ADD``, ``OP_CHECKSIGADD``).
    """
    out = bytearray()
    for word in _WORD_SEPARATORS.split(text):
        if not word:
            continue
        if _is_number_word(word):
            value = int(word)
            if value > _MAX_DECIMAL or value < -_MAX_DECIMAL:
                raise ValueError(
                    "script parse error: decimal numeric value only allowed in the range "
                    f"-0xFFFFFFFF...0xFFFFFFFF: {word!r}"
                )
            out += push_int(value)
        elif word.startswith("0x") and _is_hex(word[2:]):
            out += bytes.fromhex(word[2:])
        elif len(word) >= 2 and word[0] == "'" and word[-1] == "'":
            out += push_data(word[1:-1].encode("utf-8"))
        else:
            op = _OPCODE_NAMES.get(word)
            if op is None:
                raise ValueError(f"script parse error: unknown opcode {word!r}")
            out.append(op)
    return bytes(out)


_SIGHASH_NAMES = {
    0x01: "ALL",
    0x81: "ALL|ANYONECANPAY",
    0x02: "NONE",
    0x82: "NONE|ANYONECANPAY",
    0x03: "SINGLE",
    0x83: "SINGLE|ANYONECANPAY",
}


def script_to_asm(script: bytes, attempt_sighash_decode: bool = False) -> str:
    """Disassemble like Core's ``ScriptToAsmStr``.

    Pushes of up to four bytes show as decimal numbers, longer pushes as hex; other opcodes by
    name (``OP_CHECKLOCKTIMEVERIFY`` for 0xb1, ``1``…``16`` and ``-1`` for the small numbers).
    With ``attempt_sighash_decode`` (for scriptSigs), a push that is a strictly encoded signature
    with a defined hash type ends in ``[ALL]``, ``[NONE|ANYONECANPAY]`` and so on instead of its last
    byte, unless the script is unspendable. A truncated push ends the text with ``[error]``.
    """
    words: list[str] = []
    decode_sighash = attempt_sighash_decode and not is_unspendable(script)
    pos = 0
    end = len(script)
    while pos < end:
        try:
            opcode, data, pos = get_op(script, pos)
        except BadScript:
            words.append("[error]")
            break
        if data is not None:
            if len(data) <= 4:
                words.append(str(decode_num(data)))
            elif (
                decode_sighash and is_valid_signature_encoding(data) and data[-1] in _SIGHASH_NAMES
            ):
                words.append(data[:-1].hex() + "[" + _SIGHASH_NAMES[data[-1]] + "]")
            else:
                words.append(data.hex())
        elif opcode == Op.OP_1NEGATE:
            words.append("-1")
        elif Op.OP_1 <= opcode <= Op.OP_16:
            words.append(str(opcode - (Op.OP_1 - 1)))
        else:
            words.append(opcode_name(opcode))
    return " ".join(words)
