"""Developer and operator tools (layer L4).

Tools sit at the top of the layering beside ``cli`` and ``node``: they may import anything below
them (consensus, chain, mempool, p2p, wallet, rpc) and nothing imports them except the command line.
They read files and print through their callers; errors in the data they read are reported as
results, not raised, unless the caller asked for something that does not exist (an unknown suite).
They hold no shared state and are safe to call from several threads.
"""
