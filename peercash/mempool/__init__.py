"""The memory pool: transactions waiting for a block, and the policy that admits them.

Layer 2. Sees the chain only through :class:`peercash.mempool.chainview.ChainView`; never imports
p2p, mining, rpc or node (import-linter enforces it). ``policy`` holds Core's standardness rules
(policy, not consensus), ``pool`` the pool itself and its acceptance pipeline.
"""
