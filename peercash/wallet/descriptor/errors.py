"""The one error type of the descriptor package."""

from __future__ import annotations

__all__ = ["DescriptorError", "MiniscriptError"]


class DescriptorError(ValueError):
    """A descriptor that does not parse, or that cannot produce what was asked.

    The message is Bitcoin Core's wording for the same failure where Core has one (what its
    ``getdescriptorinfo`` and ``deriveaddresses`` RPCs print), so RPC code can pass it through.
    """


class MiniscriptError(DescriptorError):
    """Text that parses as miniscript but is invalid, not sane or not satisfiable (a miniscript
    hook raises it, so the parser can tell it from a key error and report the context first)."""
