"""Partially signed Bitcoin transactions: BIP174 (v0), BIP370 (v2), BIP371 (taproot fields).

Layer 3 (wallet), pure: no I/O, clock or randomness. :mod:`.model` holds the data model and its
strict byte encoding; :mod:`.roles` the creator, updater, combiner, finalizer, extractor and
``analyze``; the signer lives in :mod:`peercash.wallet.signer`.

Error contract: :class:`PsbtError` (a ``ValueError``) with Bitcoin Core's message.
"""

from .errors import PsbtError
from .model import (
    MODIFIABLE_INPUTS,
    MODIFIABLE_OUTPUTS,
    MODIFIABLE_SIGHASH_SINGLE,
    Psbt,
    PsbtInput,
    PsbtOutput,
    TapTreeLeaf,
)

__all__ = [
    "MODIFIABLE_INPUTS",
    "MODIFIABLE_OUTPUTS",
    "MODIFIABLE_SIGHASH_SINGLE",
    "Psbt",
    "PsbtError",
    "PsbtInput",
    "PsbtOutput",
    "TapTreeLeaf",
]
