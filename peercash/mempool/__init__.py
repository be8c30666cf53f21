"""The memory pool and its policy (layer 2): acceptance, limits, relay policy, fee estimation."""
