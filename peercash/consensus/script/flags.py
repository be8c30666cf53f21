"""Script verification flags, with Core's names and bit positions.

Consensus flags (P2SH, DERSIG, NULLDUMMY, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY, WITNESS,
TAPROOT) are switched on by deployments; the rest are policy flags the mempool adds.
"""

from __future__ import annotations

from enum import IntFlag


class VerifyFlags(IntFlag):
    NONE = 0
    P2SH = 1 << 0
    STRICTENC = 1 << 1
    DERSIG = 1 << 2
    LOW_S = 1 << 3
    NULLDUMMY = 1 << 4
    SIGPUSHONLY = 1 << 5
    MINIMALDATA = 1 << 6
    DISCOURAGE_UPGRADABLE_NOPS = 1 << 7
    CLEANSTACK = 1 << 8
    CHECKLOCKTIMEVERIFY = 1 << 9
    CHECKSEQUENCEVERIFY = 1 << 10
    WITNESS = 1 << 11
    DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM = 1 << 12
    MINIMALIF = 1 << 13
    NULLFAIL = 1 << 14
    WITNESS_PUBKEYTYPE = 1 << 15
    CONST_SCRIPTCODE = 1 << 16
    TAPROOT = 1 << 17
    DISCOURAGE_UPGRADABLE_TAPROOT_VERSION = 1 << 18
    DISCOURAGE_OP_SUCCESS = 1 << 19
    DISCOURAGE_UPGRADABLE_PUBKEYTYPE = 1 << 20


ALL_FLAGS = VerifyFlags((1 << 21) - 1)

MANDATORY_SCRIPT_VERIFY_FLAGS = (
    VerifyFlags.P2SH
    | VerifyFlags.DERSIG
    | VerifyFlags.NULLDUMMY
    | VerifyFlags.CHECKLOCKTIMEVERIFY
    | VerifyFlags.CHECKSEQUENCEVERIFY
    | VerifyFlags.WITNESS
    | VerifyFlags.TAPROOT
)
"""Consensus: every flag a block enforces once all buried deployments are active."""

STANDARD_SCRIPT_VERIFY_FLAGS = (
    MANDATORY_SCRIPT_VERIFY_FLAGS
    | VerifyFlags.STRICTENC
    | VerifyFlags.MINIMALDATA
    | VerifyFlags.DISCOURAGE_UPGRADABLE_NOPS
    | VerifyFlags.CLEANSTACK
    | VerifyFlags.MINIMALIF
    | VerifyFlags.NULLFAIL
    | VerifyFlags.LOW_S
    | VerifyFlags.DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM
    | VerifyFlags.WITNESS_PUBKEYTYPE
    | VerifyFlags.CONST_SCRIPTCODE
    | VerifyFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION
    | VerifyFlags.DISCOURAGE_OP_SUCCESS
    | VerifyFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE
)
"""Policy: what the mempool checks (Core's STANDARD_SCRIPT_VERIFY_FLAGS)."""


def parse_flags(text: str) -> VerifyFlags:
    """Parse Core's comma-separated flag names (``"P2SH,WITNESS"``; ``""`` or ``"NONE"``)."""
    flags = VerifyFlags.NONE
    for name in text.split(","):
        name = name.strip()
        if not name or name == "NONE":
            continue
        try:
            flags |= VerifyFlags[name]
        except KeyError:
            raise ValueError(f"unknown script verification flag {name!r}") from None
    return flags


def format_flags(flags: int) -> str:
    return ",".join(f.name for f in VerifyFlags if f and f & flags and f.name) or "NONE"
