"""peercash: a Bitcoin-protocol full node in Python."""

__version__ = "0.1.0"
