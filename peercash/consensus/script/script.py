"""Script bytes: decoding opcodes, building pushes, script numbers and template predicates."""

from __future__ import annotations

from collections.abc import Iterator

from .opcodes import Op

MAX_SCRIPT_SIZE = 10_000
"""Consensus: longer scripts fail to execute (legacy and witness v0)."""

MAX_SCRIPT_ELEMENT_SIZE = 520
"""Consensus: no stack element may exceed this many bytes."""

MAX_OPS_PER_SCRIPT = 201
"""Consensus: non-push opcodes counted per legacy/v0 script."""

MAX_PUBKEYS_PER_MULTISIG = 20
MAX_STACK_SIZE = 1000
"""Consensus: stack plus altstack elements."""

LOCKTIME_THRESHOLD = 500_000_000
"""Consensus: lock times below are block heights, at or above are Unix times."""


class BadScript(Exception):
    """A push runs past the end of the script (Core's GetOp returning false)."""


def get_op(script: bytes, pos: int) -> tuple[int, bytes | None, int]:
    """Decode the opcode at ``pos``: (opcode, pushed data or None, next position).

    Raises ``BadScript`` when a push is truncated.
    """
    end = len(script)
    if pos >= end:
        raise BadScript("end of script")
    opcode = script[pos]
    pos += 1
    if opcode > Op.OP_PUSHDATA4:
        return opcode, None, pos
    if opcode < Op.OP_PUSHDATA1:
        size = opcode
    elif opcode == Op.OP_PUSHDATA1:
        if pos + 1 > end:
            raise BadScript("truncated PUSHDATA1")
        size = script[pos]
        pos += 1
    elif opcode == Op.OP_PUSHDATA2:
        if pos + 2 > end:
            raise BadScript("truncated PUSHDATA2")
        size = script[pos] | script[pos + 1] << 8
        pos += 2
    else:
        if pos + 4 > end:
            raise BadScript("truncated PUSHDATA4")
        size = int.from_bytes(script[pos : pos + 4], "little")
        pos += 4
    if pos + size > end:
        raise BadScript("push past end of script")
    return opcode, script[pos : pos + size], pos + size


def iter_ops(script: bytes) -> Iterator[tuple[int, bytes | None, int]]:
    """Yield (opcode, data, start position) for each opcode; raises ``BadScript`` at a bad push."""
    pos = 0
    end = len(script)
    while pos < end:
        start = pos
        opcode, data, pos = get_op(script, pos)
        yield opcode, data, start


def push_data(data: bytes) -> bytes:
    """The minimal push of ``data`` (what Core's ``CScript << bytes`` writes)."""
    n = len(data)
    if n < Op.OP_PUSHDATA1:
        return bytes((n,)) + data
    if n <= 0xFF:
        return bytes((Op.OP_PUSHDATA1, n)) + data
    if n <= 0xFFFF:
        return bytes((Op.OP_PUSHDATA2,)) + n.to_bytes(2, "little") + data
    return bytes((Op.OP_PUSHDATA4,)) + n.to_bytes(4, "little") + data


def push_int(n: int) -> bytes:
    """Push a number the way Core's ``CScript << int64`` does (small-int opcodes where possible)."""
    if n == -1 or 1 <= n <= 16:
        return bytes((n + (Op.OP_1 - 1),))
    if n == 0:
        return bytes((Op.OP_0,))
    return push_data(encode_num(n))


def encode_num(n: int) -> bytes:
    """Minimal little-endian sign-magnitude encoding of a script number."""
    if n == 0:
        return b""
    neg = n < 0
    m = -n if neg else n
    out = bytearray()
    while m:
        out.append(m & 0xFF)
        m >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def decode_num(data: bytes) -> int:
    """Decode a script number of any length (no size or minimality check)."""
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    top = data[-1]
    if top & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


def is_minimal_num(data: bytes) -> bool:
    """Core's minimal-encoding rule for script numbers (no needless zero padding, no -0)."""
    if data and not data[-1] & 0x7F:
        return len(data) > 1 and bool(data[-2] & 0x80)
    return True


def is_push_only(script: bytes) -> bool:
    """True when every opcode is a push (OP_RESERVED counts as a push, as in Core)."""
    try:
        for opcode, _, _ in iter_ops(script):
            if opcode > Op.OP_16:
                return False
    except BadScript:
        return False
    return True


def is_p2sh(script: bytes) -> bool:
    return len(script) == 23 and script[0] == 0xA9 and script[1] == 0x14 and script[22] == 0x87


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """(version, program) when the script is a witness program (BIP141), else None."""
    n = len(script)
    if n < 4 or n > 42:
        return None
    v = script[0]
    if v != Op.OP_0 and not Op.OP_1 <= v <= Op.OP_16:
        return None
    if script[1] + 2 != n:
        return None
    return (0 if v == 0 else v - (Op.OP_1 - 1)), script[2:]


def is_unspendable(script: bytes) -> bool:
    """Outputs that can never be spent: OP_RETURN scripts and oversized scripts."""
    return (len(script) > 0 and script[0] == Op.OP_RETURN) or len(script) > MAX_SCRIPT_SIZE


def find_and_delete(script: bytes, pattern: bytes) -> tuple[bytes, int]:
    """Core's FindAndDelete: remove every opcode-aligned occurrence of ``pattern``.

    Returns the new script and the number of deletions. Matching is tried at each opcode
    boundary, and after a deletion again at the same place, as Core does.
    """
    if not pattern or pattern not in script:
        return script, 0
    out = bytearray()
    found = 0
    pos = 0
    end = len(script)
    plen = len(pattern)
    while True:
        # Copy nothing until we know the opcode at ``pos``; first drop matches here.
        while script.startswith(pattern, pos):
            pos += plen
            found += 1
        if pos >= end:
            break
        try:
            _, _, nxt = get_op(script, pos)
        except BadScript:
            out += script[pos:]
            break
        out += script[pos:nxt]
        pos = nxt
    return bytes(out), found
