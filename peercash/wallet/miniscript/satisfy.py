"""Witnesses for a miniscript: the smallest non-malleable satisfaction (BIP379's algorithm).

Every node yields a (dissatisfaction, satisfaction) pair of :class:`InputStack` candidates,
built bottom-up from its subs'. A candidate records whether it is available, whether it holds a
signature (third parties cannot forge those), and whether a third party could change it
(malleable). Choosing between alternatives (:func:`choose`) follows the rules of Core's
``InputStack operator|``: prefer an option whose alternative needs a signature the attacker lacks,
then the non-malleable one, then the smaller. The result is non-malleable only if the chosen
satisfaction is non-malleable and contains a signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...consensus.hashing import hash160, hash256, ripemd160, sha256
from .node import HASH_FRAGMENTS, Node

__all__ = ["InputStack", "Satisfier", "choose", "satisfy"]

SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF
LOCKTIME_THRESHOLD = 500_000_000


def _size(elem: bytes) -> int:
    n = len(elem)
    return n + (1 if n < 0xFD else 3 if n <= 0xFFFF else 5)


@dataclass(frozen=True, slots=True)
class InputStack:
    """A candidate witness (bottom first) for one expression."""

    available: bool
    stack: tuple[bytes, ...] = ()
    has_sig: bool = False
    malleable: bool = False

    @property
    def size(self) -> int:
        return sum(_size(e) for e in self.stack)

    def __add__(self, other: InputStack) -> InputStack:
        """``self`` below ``other`` (other's elements on top)."""
        if not (self.available and other.available):
            return INVALID
        return InputStack(
            True,
            self.stack + other.stack,
            self.has_sig or other.has_sig,
            self.malleable or other.malleable,
        )

    def mal(self, flag: bool = True) -> InputStack:
        if not flag or not self.available:
            return self
        return InputStack(True, self.stack, self.has_sig, True)


INVALID = InputStack(False)
EMPTY = InputStack(True)
ZERO = InputStack(True, (b"",))
ONE = InputStack(True, (b"\x01",))


def choose(a: InputStack, b: InputStack) -> InputStack:
    """The better of two alternatives for the same spend."""
    if not a.available:
        return b
    if not b.available:
        return a
    if not a.has_sig and b.has_sig:
        return a
    if not b.has_sig and a.has_sig:
        return b
    if not a.has_sig and not b.has_sig:
        # Neither needs a signature: a third party can swap one for the other.
        a, b = a.mal(), b.mal()
    else:
        if b.malleable and not a.malleable:
            return a
        if a.malleable and not b.malleable:
            return b
    return a if a.size <= b.size else b


def _any(*options: InputStack) -> InputStack:
    result = options[0]
    for option in options[1:]:
        result = choose(result, option)
    return result


@dataclass(frozen=True, slots=True)
class Satisfier:
    """What the spender has: ``sign(key)`` gives a signature for the key bytes as they appear in
    the script (33 bytes in P2WSH, x-only in tapscript) or None; ``preimages`` maps hashes to
    preimages; ``sequence``/``locktime`` are the spending input's nSequence and the
    transaction's nLockTime (None: that timelock kind is not available). ``older`` also needs a
    transaction version of at least 2, which is the caller's to set (BIP68)."""

    sign: Callable[[bytes], bytes | None]
    preimages: Mapping[bytes, bytes]
    sequence: int | None = None
    locktime: int | None = None

    def older(self, k: int) -> bool:
        seq = self.sequence
        if seq is None or seq & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            return False
        if (seq & SEQUENCE_LOCKTIME_TYPE_FLAG) != (k & SEQUENCE_LOCKTIME_TYPE_FLAG):
            return False
        return seq & SEQUENCE_LOCKTIME_MASK >= k & SEQUENCE_LOCKTIME_MASK

    def after(self, k: int) -> bool:
        lock = self.locktime
        if lock is None or self.sequence == 0xFFFF_FFFF:  # a final input ignores nLockTime
            return False
        if (lock < LOCKTIME_THRESHOLD) != (k < LOCKTIME_THRESHOLD):
            return False
        return lock >= k

    def preimage(self, fragment: str, digest: bytes) -> bytes | None:
        image = self.preimages.get(digest)
        if image is None or len(image) != 32:
            return None
        check = {"sha256": sha256, "hash256": hash256, "ripemd160": ripemd160}
        fn = check.get(fragment, hash160)
        return image if fn(image) == digest else None


def _sig(satisfier: Satisfier, key: bytes) -> InputStack:
    sig = satisfier.sign(key)
    return InputStack(True, (sig,), has_sig=True) if sig is not None else INVALID


def _produce(node: Node, s: Satisfier, pos: int) -> tuple[InputStack, InputStack]:
    """(dissatisfaction, satisfaction) of ``node``."""
    f = node.fragment
    if f == "0":
        return EMPTY, INVALID
    if f == "1":
        return INVALID, EMPTY
    if f == "pk_k":
        return ZERO, _sig(s, node._key_bytes(node.keys[0], pos))
    if f == "pk_h":
        if not node.keys:
            return INVALID, INVALID
        pub = node._key_bytes(node.keys[0], pos)
        push = InputStack(True, (pub,))
        return ZERO + push, _sig(s, pub) + push
    if f == "older":
        return INVALID, EMPTY if s.older(node.k) else INVALID
    if f == "after":
        return INVALID, EMPTY if s.after(node.k) else INVALID
    if f in HASH_FRAGMENTS:
        image = s.preimage(f, node.data)
        sat = InputStack(True, (image,)) if image is not None else INVALID
        return InputStack(True, (bytes(32),)).mal(), sat
    if f == "multi":
        sats = [ZERO]
        for key in node.keys:
            sig = _sig(s, node._key_bytes(key, pos))
            nxt = [sats[0]]
            for j in range(1, len(sats)):
                nxt.append(choose(sats[j], sats[j - 1] + sig))
            nxt.append(sats[-1] + sig)
            sats = nxt
        nsat = ZERO
        for _ in range(node.k):
            nsat = nsat + ZERO
        return nsat, sats[node.k]
    if f == "multi_a":
        sats = [EMPTY]
        for key in reversed(node.keys):  # the first key's signature ends on top
            sig = _sig(s, node._key_bytes(key, pos))
            nxt = [sats[0] + ZERO]
            for j in range(1, len(sats)):
                nxt.append(choose(sats[j] + ZERO, sats[j - 1] + sig))
            nxt.append(sats[-1] + sig)
            sats = nxt
        return sats[0], sats[node.k]
    results = [_produce(sub, s, pos) for sub in node.subs]
    if f == "thresh":
        sats = [EMPTY]
        for nsat_i, sat_i in reversed(results):
            nxt = [sats[0] + nsat_i]
            for j in range(1, len(sats)):
                nxt.append(choose(sats[j] + nsat_i, sats[j - 1] + sat_i))
            nxt.append(sats[-1] + sat_i)
            sats = nxt
        nsat = INVALID
        for i, option in enumerate(sats):
            if i not in (0, node.k):
                option = option.mal()  # non-canonical dissatisfactions
            if i != node.k:
                nsat = choose(nsat, option)
        return nsat, sats[node.k]
    xn, xs = results[0]
    if f in ("a", "s", "c", "n"):
        return xn, xs
    if f == "d":
        return ZERO, xs + ONE
    if f == "v":
        return INVALID, xs
    if f == "j":
        return ZERO.mal(xn.available and not xn.has_sig), xs
    yn, ys = results[1]
    if f == "and_v":
        return (yn + xs).mal(), ys + xs
    if f == "and_b":
        nsat = _any(yn + xn, (ys + xn).mal(), (yn + xs).mal())
        return nsat, ys + xs
    if f == "or_b":
        return yn + xn, _any(yn + xs, ys + xn, (ys + xs).mal())
    if f == "or_c":
        return INVALID, choose(xs, ys + xn)
    if f == "or_d":
        return yn + xn, choose(xs, ys + xn)
    if f == "or_i":
        return choose(xn + ONE, yn + ZERO), choose(xs + ONE, ys + ZERO)
    zn, zs = results[2]  # andor(x, y, z)
    return choose((yn + xs).mal(), zn + xn), choose(ys + xs, zs + xn)


def satisfy(
    node: Node, satisfier: Satisfier, pos: int = 0, nonmalleable: bool = True
) -> list[bytes] | None:
    """The witness elements (bottom first, without the script) that satisfy ``node`` at range
    position ``pos``, or None when none can be made (or, with ``nonmalleable``, none that a
    third party could not change)."""
    _, sat = _produce(node, satisfier, pos)
    if not sat.available:
        return None
    if nonmalleable and (sat.malleable or not sat.has_sig):
        return None
    return list(sat.stack)
