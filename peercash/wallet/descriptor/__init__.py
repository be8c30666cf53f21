"""Output script descriptors (BIP380–386, BIP387 ``multi_a``, BIP389 multipath), as Core has them.

Layer 3 (wallet), pure. Entry points:

* :func:`parse_descriptor` (text, network) → list of :class:`Descriptor` (one per multipath
  branch); :func:`parse_one` when multipath is not allowed; :func:`descriptor_info` for
  ``getdescriptorinfo``.
* :class:`Descriptor`: ``to_string(private=False)`` (canonical, with checksum), ``is_range``,
  ``is_solvable``, ``has_private_keys``, ``script_pubkeys(i)``, ``addresses(i)``, ``expand(i)``
  (keys, origins, redeem/witness scripts, taproot data).
* :func:`descriptor_checksum`, :func:`add_checksum`, :func:`split_checksum`.
* The expression classes in :mod:`.keys` and :mod:`.scripts`; :class:`MiniscriptHook` is how a
  miniscript parser plugs into ``wsh()`` and ``tr()`` leaves (by default
  :mod:`peercash.wallet.miniscript`'s; ``parse_descriptor(..., miniscript=False)`` turns it off).

Error contract: :class:`DescriptorError` (a ``ValueError``) with Bitcoin Core's message.
"""

from .checksum import add_checksum, descriptor_checksum, split_checksum
from .errors import DescriptorError, MiniscriptError
from .keys import (
    BIP32Key,
    ConstKey,
    Context,
    Derive,
    KeyExpression,
    KeyOrigin,
    OriginKey,
    parse_key,
)
from .parser import (
    Descriptor,
    DescriptorInfo,
    Expansion,
    MiniscriptHook,
    descriptor_info,
    parse_descriptor,
    parse_one,
)
from .scripts import ScriptExpression, TapTree

__all__ = [
    "BIP32Key",
    "ConstKey",
    "Context",
    "Derive",
    "Descriptor",
    "DescriptorError",
    "DescriptorInfo",
    "Expansion",
    "KeyExpression",
    "KeyOrigin",
    "MiniscriptError",
    "MiniscriptHook",
    "OriginKey",
    "ScriptExpression",
    "TapTree",
    "add_checksum",
    "descriptor_checksum",
    "descriptor_info",
    "parse_descriptor",
    "parse_key",
    "parse_one",
    "split_checksum",
]
