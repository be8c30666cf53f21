"""Layer 1: the chain — storage, the UTXO set, contextual validation, chain selection.

May import ``peercash.consensus`` only. Functions that do I/O say so; errors are ``RuleError`` for
broken rules and ``ChainError`` subclasses for storage problems. Script checks run in worker
processes (``scriptcheck``); everything else runs in the caller's thread.
"""
