"""Layer 0: the pure consensus rules.

Anything may import this package; it imports nothing of peercash's above it. Every function here is
deterministic: no I/O, no clock, no globals that change, no randomness. Decoders raise only
``DecodeError`` subclasses; rule violations raise ``RuleError``. All objects are immutable and safe
to share between threads and processes.
"""
