"""Errors of the chain layer that are not rule violations: storage that cannot be trusted."""

from __future__ import annotations


class ChainError(Exception):
    """Base class of chain-layer failures other than ``RuleError``."""


class CorruptionError(ChainError):
    """Data on disk is missing or damaged. The message names the file and how to recover."""

    def __init__(self, what: str, path: object) -> None:
        super().__init__(
            f"{what} ({path}). The data directory is damaged: restart with --reindex to "
            "rebuild the block index and the UTXO set from the block files."
        )
        self.path = path
