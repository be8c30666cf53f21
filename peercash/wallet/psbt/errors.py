"""The one error family of the PSBT package."""

from __future__ import annotations

__all__ = ["PsbtError"]


class PsbtError(ValueError):
    """A PSBT that cannot be parsed or processed; the message is Bitcoin Core's where it has one."""
