"""Where a node with an empty address book finds its first peers: DNS seeds and fixed seeds.

Layer L2 (``peercash.p2p``); data only. The DNS seed names are those of Bitcoin Core's chain
parameters (``src/kernel/chainparams.cpp``); the fixed seeds are a handful of the addresses Core
ships (``contrib/seeds/nodes_*.txt``, which list thousands) — enough to find the network when DNS
fails, since every peer then tells us more. Regtest has none. The connection manager uses them
only when the address manager is empty, and never in tests (they pass an empty table).
"""

from __future__ import annotations

from peercash.p2p.netaddress import NetAddress

__all__ = ["DNS_SEEDS", "FIXED_SEEDS", "fixed_seeds"]

DNS_SEEDS: dict[str, tuple[str, ...]] = {
    "main": (
        "seed.bitcoin.sipa.be",
        "dnsseed.bluematt.me",
        "seed.bitcoin.jonasschnelli.ch",
        "seed.btc.petertodd.net",
        "seed.bitcoin.sprovoost.nl",
        "dnsseed.emzy.de",
        "seed.bitcoin.wiz.biz",
        "seed.mainnet.achownodes.xyz",
    ),
    "testnet": (
        "testnet-seed.bitcoin.jonasschnelli.ch",
        "seed.tbtc.petertodd.net",
        "seed.testnet.bitcoin.sprovoost.nl",
        "testnet-seed.bluematt.me",
        "seed.testnet.achownodes.xyz",
    ),
    "testnet4": (
        "seed.testnet4.bitcoin.sprovoost.nl",
        "seed.testnet4.wiz.biz",
    ),
    "signet": (
        "seed.signet.bitcoin.sprovoost.nl",
        "seed.signet.achownodes.xyz",
    ),
    "regtest": (),
}

FIXED_SEEDS: dict[str, tuple[str, ...]] = {
    "main": (
        "85.214.161.252:8333",
        "88.99.71.213:8333",
        "95.211.152.100:8333",
        "128.2.12.38:8333",
        "162.55.122.93:8333",
        "195.154.172.177:8333",
        "[2001:41d0:203:52c2::]:8333",
        "[2a01:4f8:171:16af::2]:8333",
        "[2600:3c00::f03c:92ff:fe92:2745]:8333",
        "[2604:a880:400:d0::1c96:e001]:8333",
    ),
    # Core's testnet3 list is short-lived (testnet3 is being retired); DNS seeds only.
    "testnet": (),
    "testnet4": (
        "34.232.194.104:48333",
        "65.108.143.22:48333",
        "104.237.131.138:48333",
        "158.69.118.2:48333",
        "168.119.11.220:48333",
        "195.154.199.2:48333",
        "[2a01:4f8:121:4072::2]:48333",
        "[2600:3c00::f03c:91ff:fe5b:4cf3]:48333",
    ),
    "signet": (
        "34.135.189.101:38333",
        "37.120.177.204:38333",
        "49.13.117.253:38333",
        "159.203.133.144:38333",
        "176.9.62.27:38333",
        "188.165.201.163:38333",
        "[2a01:4f8:13a:c56::2]:38333",
        "[2604:a880:800:14::3880:3000]:38333",
    ),
    "regtest": (),
}


def fixed_seeds(network: str, default_port: int) -> list[NetAddress]:
    """The fixed seeds of ``network`` as addresses (empty for regtest and unknown names)."""
    return [NetAddress.parse(s, default_port) for s in FIXED_SEEDS.get(network, ())]
