"""The memory pool: unconfirmed transactions, their policy, clusters, relay and eviction (layer 2)."""
