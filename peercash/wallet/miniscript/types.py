"""The miniscript type system (BIP379): base types B/V/K/W and the properties of each fragment.

A :class:`Type` is a set of one-letter flags. The rules for combining them are the ones BIP379
gives (and Bitcoin Core's ``ComputeType`` implements); they are written here as one small
function per fragment family. An expression whose rules give no base type is invalid.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Type", "mst"]

_LETTERS = "BVKWzondufesmxghijk"
_BITS = {c: 1 << i for i, c in enumerate(_LETTERS)}


class Type(int):
    """A set of type letters; ``t << "Bd"`` asks whether ``t`` has every letter of ``"Bd"``."""

    __slots__ = ()

    def __new__(cls, value: int = 0) -> Type:
        return super().__new__(cls, value)

    def __or__(self, other: int) -> Type:
        return Type(int(self) | int(other))

    def __and__(self, other: int) -> Type:
        return Type(int(self) & int(other))

    def __lshift__(self, letters: str | int) -> bool:
        want = mst(letters) if isinstance(letters, str) else int(letters)
        return int(self) & want == want

    def if_(self, cond: bool) -> Type:
        return self if cond else Type(0)

    def __str__(self) -> str:
        return "".join(c for c in _LETTERS if int(self) & _BITS[c])

    def __repr__(self) -> str:
        return f"Type({str(self)!r})"


def mst(letters: str) -> Type:
    """The type with exactly these letters."""
    value = 0
    for c in letters:
        value |= _BITS[c]
    return Type(value)


_EMPTY = Type(0)
_TL = mst("ghij")
_K = mst("k")


def _no_mix(x: Type, y: Type) -> bool:
    """Whether x and y do not combine a height lock with a time lock of the same kind."""
    return not (
        (x << "g" and y << "h")
        or (x << "h" and y << "g")
        or (x << "i" and y << "j")
        or (x << "j" and y << "i")
    )


def sanitize(t: Type) -> Type:
    """No base type means invalid: drop the properties too."""
    bases = sum(1 for c in "BVKW" if t << c)
    return t if bases == 1 else _EMPTY


def leaf_type(name: str, k: int = 0) -> Type:
    """The type of a fragment without sub-expressions."""
    if name == "pk_k":
        return mst("Konudemsxk")
    if name == "pk_h":
        return mst("Knudemsxk")
    if name == "older":
        return mst("g" if k & (1 << 22) else "h") | mst("Bzfmxk")
    if name == "after":
        return mst("i" if k >= 500_000_000 else "j") | mst("Bzfmxk")
    if name in ("sha256", "hash256", "ripemd160", "hash160"):
        return mst("Bonudmk")
    if name == "1":
        return mst("Bzufmxk")
    if name == "0":
        return mst("Bzudemsxk")
    if name == "multi":
        return mst("Bnudemsk")
    if name == "multi_a":
        return mst("Budemsk")
    raise AssertionError(name)


def wrapper_type(name: str, x: Type, tapscript: bool) -> Type:
    """The type of wrapper ``name:`` applied to an expression of type ``x``."""
    tl = x & (_TL | _K)
    if name == "a":
        return mst("W").if_(x << "B") | tl | (x & mst("udfems")) | mst("x")
    if name == "s":
        return mst("W").if_(x << "Bo") | tl | (x & mst("udfemsx"))
    if name == "c":
        return mst("B").if_(x << "K") | tl | (x & mst("ondfem")) | mst("us")
    if name == "d":
        return (
            mst("B").if_(x << "Vz")
            | mst("o").if_(x << "z")
            | mst("e").if_(x << "f")
            | tl
            | (x & mst("ms"))
            | mst("u").if_(tapscript)
            | mst("ndx")
        )
    if name == "v":
        return mst("V").if_(x << "B") | tl | (x & mst("zonms")) | mst("fx")
    if name == "j":
        return (
            mst("B").if_(x << "Bn") | mst("e").if_(x << "f") | tl | (x & mst("oums")) | mst("ndx")
        )
    if name == "n":
        return tl | (x & mst("Bzondfems")) | mst("ux")
    raise AssertionError(name)


def combine_type(name: str, subs: Sequence[Type], k: int = 0) -> Type:
    """The type of a combinator over sub-expression types ``subs``."""
    if name == "thresh":
        return _thresh(subs, k)
    if name == "andor":
        x, y, z = subs
        return (
            (y & z & mst("BKV")).if_(x << "Bdu")
            | (x & y & z & mst("z"))
            | ((x | (y & z)) & mst("o")).if_((x | (y & z)) << "z")
            | (y & z & mst("u"))
            | (z & mst("f")).if_(x << "s" or y << "f")
            | (z & mst("d"))
            | (z & mst("e")).if_(x << "s" or y << "f")
            | (x & y & z & mst("m")).if_(x << "e" and (x | y | z) << "s")
            | (z & (x | y) & mst("s"))
            | mst("x")
            | ((x | y | z) & _TL)
            | _K.if_((x & y & z) << "k" and _no_mix(x, y))
        )
    x, y = subs
    if name == "and_v":
        return (
            (y & mst("KVB")).if_(x << "V")
            | (x & mst("n"))
            | (y & mst("n")).if_(x << "z")
            | ((x | y) & mst("o")).if_((x | y) << "z")
            | (x & y & mst("dmz"))
            | ((x | y) & mst("s"))
            | mst("f").if_(y << "f" or x << "s")
            | (y & mst("ux"))
            | ((x | y) & _TL)
            | _K.if_((x & y) << "k" and _no_mix(x, y))
        )
    if name == "and_b":
        return (
            (x & mst("B")).if_(y << "W")
            | ((x | y) & mst("o")).if_((x | y) << "z")
            | (x & mst("n"))
            | (y & mst("n")).if_(x << "z")
            | (x & y & mst("e")).if_((x & y) << "s")
            | (x & y & mst("dzm"))
            | mst("f").if_((x & y) << "f" or x << "sf" or y << "sf")
            | ((x | y) & mst("s"))
            | mst("ux")
            | ((x | y) & _TL)
            | _K.if_((x & y) << "k" and _no_mix(x, y))
        )
    if name == "or_b":
        return (
            mst("B").if_(x << "Bd" and y << "Wd")
            | ((x | y) & mst("o")).if_((x | y) << "z")
            | (x & y & mst("m")).if_((x | y) << "s" and (x & y) << "e")
            | (x & y & mst("zse"))
            | mst("dux")
            | ((x | y) & _TL)
            | (x & y & _K)
        )
    if name == "or_d":
        return (
            (y & mst("B")).if_(x << "Bdu")
            | (x & mst("o")).if_(y << "z")
            | (x & y & mst("m")).if_(x << "e" and (x | y) << "s")
            | (x & y & mst("zes"))
            | (y & mst("ufd"))
            | mst("x")
            | ((x | y) & _TL)
            | (x & y & _K)
        )
    if name == "or_c":
        return (
            (y & mst("V")).if_(x << "Bdu")
            | (x & mst("o")).if_(y << "z")
            | (x & y & mst("m")).if_(x << "e" and (x | y) << "s")
            | (x & y & mst("zs"))
            | mst("fx")
            | ((x | y) & _TL)
            | (x & y & _K)
        )
    if name == "or_i":
        return (
            (x & y & mst("VBKufs"))
            | mst("o").if_((x & y) << "z")
            | ((x | y) & mst("e")).if_((x | y) << "f")
            | (x & y & mst("m")).if_((x | y) << "s")
            | ((x | y) & mst("d"))
            | mst("x")
            | ((x | y) & _TL)
            | (x & y & _K)
        )
    raise AssertionError(name)


def _thresh(subs: Sequence[Type], k: int) -> Type:
    n = len(subs)
    all_e = all_m = True
    args = num_s = 0
    acc = _K
    for i, t in enumerate(subs):
        if not t << ("Wdu" if i else "Bdu"):
            return _EMPTY
        all_e = all_e and t << "e"
        all_m = all_m and t << "m"
        num_s += 1 if t << "s" else 0
        args += 0 if t << "z" else 1 if t << "o" else 2
        mixed = k > 1 and not _no_mix(acc, t)
        acc = ((acc | t) & _TL) | _K.if_((acc & t) << "k" and not mixed)
    return (
        mst("Bdu")
        | mst("z").if_(args == 0)
        | mst("o").if_(args == 1)
        | mst("e").if_(all_e and num_s == n)
        | mst("m").if_(all_e and all_m and num_s >= n - k)
        | mst("s").if_(num_s >= n - k + 1)
        | acc
    )
