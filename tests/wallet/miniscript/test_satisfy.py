"""Satisfactions checked end to end: each witness the satisfier builds spends a real P2WSH or
tapscript output under our own script interpreter with the standard flags."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from peercash.consensus.crypto import pubkey_from_secret, sign_ecdsa, sign_schnorr
from peercash.consensus.hashing import hash160, sha256
from peercash.consensus.primitives import OutPoint, Tx, TxIn, TxOut
from peercash.consensus.script.errors import ScriptError
from peercash.consensus.script.flags import STANDARD_SCRIPT_VERIFY_FLAGS
from peercash.consensus.script.interpreter import TransactionChecker, verify_script
from peercash.consensus.script.sighash import (
    SIGHASH_ALL,
    SIGHASH_DEFAULT,
    PrecomputedTxData,
    segwit_v0_sighash,
    taproot_sighash,
)
from peercash.consensus.script.taproot import TapLeaf, taproot_output
from peercash.wallet.miniscript import MsContext, Node, parse_miniscript

AMOUNT = 100_000
SECRETS = [bytes(31) + bytes([i]) for i in range(1, 6)]
PUBS = [pubkey_from_secret(s) for s in SECRETS]
A, B, C, D, E = (p.hex() for p in PUBS)
PREIMAGE = bytes(range(32))
H = sha256(PREIMAGE).hex()
H160 = hash160(PREIMAGE).hex()
INTERNAL = bytes.fromhex("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")


@dataclass
class Spend:
    """A one-input transaction spending ``node``'s output, signed by the keys in ``signers``."""

    node: Node
    signers: set[int]
    sequence: int = 0xFFFFFFFE
    locktime: int = 0
    preimages: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def tap(self) -> bool:
        return self.node.ctx is MsContext.TAPSCRIPT

    def _outputs(self) -> tuple[bytes, bytes | None]:
        script = self.node.script()
        if not self.tap:
            return b"\x00\x20" + sha256(script), None
        out = taproot_output(INTERNAL, TapLeaf(script))
        return out.script_pubkey, out.control_block_for(script)

    def _tx(self, witness: tuple[bytes, ...] = ()) -> Tx:
        txin = TxIn(OutPoint(b"\x11" * 32, 0), b"", self.sequence, witness)
        return Tx(2, [txin], [TxOut(AMOUNT - 1_000, b"\x51")], self.locktime)

    def witness(self) -> list[bytes] | None:
        spk, _ = self._outputs()
        script = self.node.script()
        unsigned = self._tx()
        cache = PrecomputedTxData(unsigned, [TxOut(AMOUNT, spk)])

        def sign(key: bytes) -> bytes | None:
            for i in self.signers:
                pub = PUBS[i]
                if self.tap and key == pub[1:]:
                    leaf = TapLeaf(script).hash
                    msg = taproot_sighash(unsigned, 0, SIGHASH_DEFAULT, cache, 1, None, leaf)
                    assert msg is not None
                    return sign_schnorr(SECRETS[i], msg, bytes(32))
                if not self.tap and key == pub:
                    msg = segwit_v0_sighash(script, unsigned, 0, SIGHASH_ALL, AMOUNT, cache)
                    return sign_ecdsa(SECRETS[i], msg) + bytes([SIGHASH_ALL])
            return None

        return self.node.satisfy(sign, self.preimages, self.sequence, self.locktime)

    def verify(self, stack: list[bytes]) -> ScriptError:
        spk, control = self._outputs()
        witness = (*stack, self.node.script(), *([control] if control else []))
        tx = self._tx(witness)
        checker = TransactionChecker(tx, 0, AMOUNT, PrecomputedTxData(tx, [TxOut(AMOUNT, spk)]))
        return verify_script(b"", spk, witness, STANDARD_SCRIPT_VERIFY_FLAGS, checker)


P2WSH = MsContext.P2WSH
TAP = MsContext.TAPSCRIPT

# (miniscript, context, signers, sequence, locktime, with preimage, expected witness elements)
CASES = [
    (f"pk({A})", P2WSH, {0}, 0xFFFFFFFE, 0, False, 1),
    (f"pkh({A})", P2WSH, {0}, 0xFFFFFFFE, 0, False, 2),
    (f"and_v(v:pk({A}),older(144))", P2WSH, {0}, 144, 0, False, 1),
    (f"and_v(v:pk({A}),after(100))", P2WSH, {0}, 0xFFFFFFFE, 100, False, 1),
    (f"or_d(pk({A}),and_v(v:pk({B}),sha256({H})))", P2WSH, {1}, 0xFFFFFFFE, 0, True, 3),
    (f"or_d(pk({A}),and_v(v:pk({B}),sha256({H})))", P2WSH, {0, 1}, 0xFFFFFFFE, 0, True, 1),
    (f"andor(pk({A}),older(10),and_v(v:pk({B}),hash160({H160})))", P2WSH, {1}, 0, 0, True, 3),
    (f"thresh(2,pk({A}),s:pk({B}),sln:older(12))", P2WSH, {1}, 12, 0, False, 3),
    (f"thresh(2,pk({A}),s:pk({B}),sln:older(12))", P2WSH, {0, 1}, 0xFFFFFFFE, 0, False, 3),
    (f"multi(2,{A},{B},{C})", P2WSH, {0, 2}, 0xFFFFFFFE, 0, False, 3),
    (f"or_i(and_v(v:pk({A}),older(20)),multi(2,{B},{C},{D}))", P2WSH, {1, 3}, 0, 0, False, 4),
    (f"pk({A})", TAP, {0}, 0xFFFFFFFE, 0, False, 1),
    (f"multi_a(2,{A},{B},{C})", TAP, {0, 2}, 0xFFFFFFFE, 0, False, 3),
    (f"multi_a(3,{A},{B},{C},{D},{E})", TAP, {1, 3, 4}, 0xFFFFFFFE, 0, False, 5),
    (f"and_v(v:pk({A}),after(500))", TAP, {0}, 0xFFFFFFFE, 500, False, 1),
    (f"or_d(pk({A}),and_v(v:pkh({B}),sha256({H})))", TAP, {1}, 0xFFFFFFFE, 0, True, 4),
    (f"thresh(2,pk({A}),s:pk({B}),sln:older(12))", TAP, {0}, 12, 0, False, 3),
    (
        f"andor(pk({A}),older(10),and_v(v:multi_a(1,{B},{C}),hash160({H160})))",
        TAP,
        {2},
        0,
        0,
        True,
        4,
    ),
]


@pytest.mark.parametrize(("text", "ctx", "signers", "seq", "lock", "image", "elems"), CASES)
def test_witness_spends(
    text: str, ctx: MsContext, signers: set[int], seq: int, lock: int, image: bool, elems: int
) -> None:
    node = parse_miniscript(text, ctx)
    assert node.is_sane()
    preimages = {sha256(PREIMAGE): PREIMAGE, hash160(PREIMAGE): PREIMAGE} if image else {}
    spend = Spend(node, signers, seq, lock, preimages)
    stack = spend.witness()
    assert stack is not None
    assert len(stack) == elems
    assert spend.verify(stack) is ScriptError.OK
    size = sum(len(e) + 1 for e in stack)
    max_size = node.max_satisfaction_size()
    assert max_size is not None and size <= max_size
    stack_size = node.stack_size
    assert stack_size is not None and len(stack) <= stack_size
    _, control = spend._outputs()
    full = node.max_witness_size(len(control) if control else 0)
    items = len(stack) + (2 if control else 1)
    actual = 1 + size + 1 + len(node.script()) + (1 + len(control) if control else 0)
    assert items < 0xFD and len(node.script()) < 0xFD
    assert full is not None and actual <= full


def test_case_count() -> None:
    assert len(CASES) == 18


def test_tampered_witness_fails() -> None:
    """The interpreter does check what we give it: a wrong signature fails."""
    node = parse_miniscript(f"and_v(v:pk({A}),older(144))")
    spend = Spend(node, {0}, 144)
    stack = spend.witness()
    assert stack is not None
    bad = [stack[0][:-2] + bytes([stack[0][-2] ^ 1]) + stack[0][-1:]]
    assert spend.verify(bad) is not ScriptError.OK


@pytest.mark.parametrize(
    ("text", "ctx", "signers", "seq", "lock"),
    [
        (f"and_v(v:pk({A}),older(144))", P2WSH, {0}, 143, 0),  # too early
        (f"and_v(v:pk({A}),older(144))", P2WSH, {0}, 0xFFFFFFFE, 0),  # disable flag set
        (f"and_v(v:pk({A}),after(100))", P2WSH, {0}, 0xFFFFFFFE, 99),
        (f"and_v(v:pk({A}),after(100))", P2WSH, {0}, 0xFFFFFFFE, 500_000_001),  # other kind
        (f"and_v(v:pk({A}),after(100))", P2WSH, {0}, 0xFFFFFFFF, 100),  # final input
        (f"multi(2,{A},{B},{C})", P2WSH, {1}, 0xFFFFFFFE, 0),
        (f"multi_a(2,{A},{B},{C})", TAP, {2}, 0xFFFFFFFE, 0),
        (f"or_d(pk({A}),and_v(v:pk({B}),sha256({H})))", P2WSH, {1}, 0xFFFFFFFE, 0),  # no preimage
    ],
)
def test_no_witness_without_what_is_needed(
    text: str, ctx: MsContext, signers: set[int], seq: int, lock: int
) -> None:
    node = parse_miniscript(text, ctx)
    assert Spend(node, signers, seq, lock).witness() is None


def test_malleable_only_witness_is_refused() -> None:
    """or_i(older, older)-style policies without signatures give no non-malleable witness."""
    node = parse_miniscript("or_b(l:after(100),al:after(1000000000))")
    spend = Spend(node, set(), 0xFFFFFFFE, 100)
    assert spend.witness() is None
    stack = node.satisfy(lambda key: None, {}, 0xFFFFFFFE, 100, nonmalleable=False)
    assert stack is not None
    assert spend.verify(stack) is ScriptError.OK
