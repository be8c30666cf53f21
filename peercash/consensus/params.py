"""Per-network constants: one immutable ``NetworkParams`` for each chain we can join.

Layer 0 (consensus). Anything may import it. The values are facts copied from Bitcoin Core's
chainparams (``src/kernel/chainparams.cpp``, ``src/chainparamsbase.cpp``); nothing here changes at
run time, so the instances are safe to share between threads and processes.

Fields are keyword-only so that later additions (genesis block, proof-of-work limit, deployments)
can be placed anywhere in the class without breaking existing constructors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkParams:
    """The constants that tell one Bitcoin network from another.

    ``magic`` is the 4 message-start bytes in wire order. The base58 prefixes are single version
    bytes (P2PKH, P2SH, WIF); the BIP32 prefixes are the 4-byte versions of xpub/xprv strings.
    """

    name: str
    magic: bytes
    default_port: int
    rpc_port: int
    pubkey_prefix: int
    script_prefix: int
    secret_prefix: int
    ext_public_prefix: bytes
    ext_secret_prefix: bytes
    bech32_hrp: str

    def __post_init__(self) -> None:
        # A typo in a constant would silently fork us off the network: fail at import instead.
        if len(self.magic) != 4:
            raise ValueError(f"{self.name}: magic must be 4 bytes")
        if len(self.ext_public_prefix) != 4 or len(self.ext_secret_prefix) != 4:
            raise ValueError(f"{self.name}: BIP32 version prefixes must be 4 bytes")
        for prefix in (self.pubkey_prefix, self.script_prefix, self.secret_prefix):
            if not 0 <= prefix <= 0xFF:
                raise ValueError(f"{self.name}: base58 version bytes must fit in one byte")
        if self.bech32_hrp != self.bech32_hrp.lower() or not self.bech32_hrp:
            raise ValueError(f"{self.name}: bech32 hrp must be non-empty lower case")


MAIN = NetworkParams(
    name="main",
    magic=bytes.fromhex("f9beb4d9"),
    default_port=8333,
    rpc_port=8332,
    pubkey_prefix=0,
    script_prefix=5,
    secret_prefix=128,
    ext_public_prefix=bytes.fromhex("0488b21e"),
    ext_secret_prefix=bytes.fromhex("0488ade4"),
    bech32_hrp="bc",
)

# The test networks (testnet3, testnet4, signet, regtest) share their base58 and BIP32 prefixes;
# the P2P magic, ports and (for regtest) the bech32 hrp tell them apart.
TESTNET = NetworkParams(
    name="testnet",
    magic=bytes.fromhex("0b110907"),
    default_port=18333,
    rpc_port=18332,
    pubkey_prefix=111,
    script_prefix=196,
    secret_prefix=239,
    ext_public_prefix=bytes.fromhex("043587cf"),
    ext_secret_prefix=bytes.fromhex("04358394"),
    bech32_hrp="tb",
)
"""Testnet3, kept because it is still running; Core calls it plain "test"."""

TESTNET4 = NetworkParams(
    name="testnet4",
    magic=bytes.fromhex("1c163f28"),
    default_port=48333,
    rpc_port=48332,
    pubkey_prefix=111,
    script_prefix=196,
    secret_prefix=239,
    ext_public_prefix=bytes.fromhex("043587cf"),
    ext_secret_prefix=bytes.fromhex("04358394"),
    bech32_hrp="tb",
)

SIGNET = NetworkParams(
    name="signet",
    # The default signet's magic: the first 4 bytes of hash256 of its serialized challenge script.
    magic=bytes.fromhex("0a03cf40"),
    default_port=38333,
    rpc_port=38332,
    pubkey_prefix=111,
    script_prefix=196,
    secret_prefix=239,
    ext_public_prefix=bytes.fromhex("043587cf"),
    ext_secret_prefix=bytes.fromhex("04358394"),
    bech32_hrp="tb",
)

REGTEST = NetworkParams(
    name="regtest",
    magic=bytes.fromhex("fabfb5da"),
    default_port=18444,
    rpc_port=18443,
    pubkey_prefix=111,
    script_prefix=196,
    secret_prefix=239,
    ext_public_prefix=bytes.fromhex("043587cf"),
    ext_secret_prefix=bytes.fromhex("04358394"),
    bech32_hrp="bcrt",
)

NETWORKS: dict[str, NetworkParams] = {p.name: p for p in (MAIN, TESTNET, TESTNET4, SIGNET, REGTEST)}
"""Every network by its command-line name (``--network``). Read it; never mutate it."""


def get_params(name: str) -> NetworkParams:
    """The parameters of the network called ``name``, or a ``KeyError`` listing the valid names."""
    try:
        return NETWORKS[name]
    except KeyError:
        known = ", ".join(NETWORKS)
        raise KeyError(f"unknown network {name!r}; expected one of: {known}") from None
