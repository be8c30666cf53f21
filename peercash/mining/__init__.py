"""Layer 2: mining — block templates and the block builder (regtest CPU mining, tests, benches).

May import ``peercash.consensus``, ``peercash.chain`` and ``peercash.mempool``. Functions are pure
except where they say they read the chain state.
"""
