"""Per-network constants: one immutable ``NetworkParams`` for each chain we can join.

Layer 0 (consensus). Anything may import it. The values are facts copied from Bitcoin Core's
chainparams (``src/kernel/chainparams.cpp``, ``src/chainparamsbase.cpp``, ``src/consensus/params.h``)
and BIP94 (testnet4); nothing here changes at run time, so the instances are safe to share between
threads and processes (they pickle).

Fields are keyword-only so that later additions can be placed anywhere in the class without
breaking existing constructors. Hashes are ``bytes`` in wire order (the reverse of the hex that
explorers and Core's RPC print). Mappings are read-only views.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .deployments import ALWAYS_ACTIVE, NEVER_ACTIVE, NO_TIMEOUT, Deployment
from .hashing import hash256
from .script.flags import VerifyFlags
from .serialize import compact_size, pack_i32, pack_i64, pack_u32

COIN = 100_000_000

_MAPPING_FIELDS = ("script_flag_exceptions", "bip30_exceptions", "bip30_unspendable", "deployments")


def _h(display_hex: str) -> bytes:
    """A hash written the way Core's sources and explorers print it, turned into wire order."""
    raw = bytes.fromhex(display_hex)
    if len(raw) != 32:
        raise ValueError(f"a block hash is 32 bytes, got {len(raw)}")
    return raw[::-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkParams:
    """The constants that tell one Bitcoin network from another.

    ``magic`` is the 4 message-start bytes in wire order. The base58 prefixes are single version
    bytes (P2PKH, P2SH, WIF); the BIP32 prefixes are the 4-byte versions of xpub/xprv strings.

    Consensus fields follow Core's ``Consensus::Params``: heights are those of the first block
    that enforces the rule; ``pow_limit`` is the easiest target allowed (an ``int``);
    ``min_chain_work`` is compared against a header chain's total work. ``genesis`` is the raw
    serialized genesis block and ``genesis_hash`` its hash (derived, wire order).
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

    # --- chain -----------------------------------------------------------------------------
    genesis: bytes
    genesis_hash: bytes = field(init=False)
    """hash256 of the genesis header, wire order (derived from ``genesis``)."""

    # --- proof of work ---------------------------------------------------------------------
    pow_limit: int
    pow_target_timespan: int = 14 * 24 * 60 * 60
    pow_target_spacing: int = 10 * 60
    pow_allow_min_difficulty_blocks: bool = False
    pow_no_retargeting: bool = False
    enforce_bip94: bool = False

    # --- money -----------------------------------------------------------------------------
    subsidy_halving_interval: int = 210_000
    coinbase_maturity: int = 100
    """Consensus: a coinbase output can be spent only this many blocks later (Core's
    COINBASE_MATURITY)."""

    # --- buried deployments: height of the first block that enforces each rule -------------
    bip34_height: int
    bip34_hash: bytes | None
    """Hash of the block at ``bip34_height`` (None where Core has a null hash)."""
    bip65_height: int
    bip66_height: int
    csv_height: int
    segwit_height: int
    min_bip9_warning_height: int = 0

    # --- version bits (BIP9) ---------------------------------------------------------------
    deployments: Mapping[str, Deployment] = field(default_factory=dict, hash=False)
    """BIP9 deployments by Core's name (``testdummy``, ``taproot``). Block validation never
    consults ``taproot``: its script flag is always on (see ``deployments.block_script_flags``)."""

    # --- sync and historical exceptions ----------------------------------------------------
    min_chain_work: int
    default_assume_valid: bytes | None
    script_flag_exceptions: Mapping[bytes, int] = field(default_factory=dict, hash=False)
    """Block hash (wire order) → the script flags that block is checked with instead of the
    default P2SH|WITNESS|TAPROOT (Core's ``script_flag_exceptions``)."""
    bip30_exceptions: Mapping[int, bytes] = field(default_factory=dict, hash=False)
    """Height → hash (wire order) of the blocks that overwrote an earlier coinbase (Core's
    ``IsBIP30Repeat``): BIP30 is not enforced for them."""
    bip30_unspendable: Mapping[int, bytes] = field(default_factory=dict, hash=False)
    """Height → hash of the blocks whose coinbase was later overwritten, and is therefore
    unspendable (Core's ``IsBIP30Unspendable``)."""
    max_future_block_time: int = 2 * 60 * 60
    """Consensus (with the local clock): how far ahead of adjusted time a header may be."""

    # --- signet ----------------------------------------------------------------------------
    signet_challenge: bytes | None = None
    """The script a signet block's solution must satisfy (BIP325); None off signet."""

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
        if len(self.genesis) <= 80:
            raise ValueError(f"{self.name}: genesis must be a whole serialized block")
        if not 0 < self.pow_limit < 1 << 256:
            raise ValueError(f"{self.name}: pow_limit must be a positive 256-bit number")
        if self.pow_target_spacing <= 0 or self.pow_target_timespan % self.pow_target_spacing:
            raise ValueError(f"{self.name}: timespan must be a multiple of the block spacing")
        if self.subsidy_halving_interval <= 0:
            raise ValueError(f"{self.name}: subsidy_halving_interval must be positive")
        for h in (self.bip34_hash, self.default_assume_valid):
            if h is not None and len(h) != 32:
                raise ValueError(f"{self.name}: block hashes must be 32 bytes")
        _set = object.__setattr__
        _set(self, "genesis_hash", hash256(self.genesis[:80]))
        # Keep private read-only copies so that no caller can change a network after the fact.
        for name in _MAPPING_FIELDS:
            _set(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def difficulty_adjustment_interval(self) -> int:
        """Blocks per retarget period (2016; 144 on regtest), Core's DifficultyAdjustmentInterval."""
        return self.pow_target_timespan // self.pow_target_spacing

    def __reduce__(self) -> tuple[Any, ...]:
        # Read-only mapping views do not pickle: rebuild from plain dicts.
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            kwargs[f.name] = dict(value) if f.name in _MAPPING_FIELDS else value
        return (_rebuild, (kwargs,))


def _rebuild(kwargs: dict[str, Any]) -> NetworkParams:
    return NetworkParams(**kwargs)


# --- genesis blocks ------------------------------------------------------------------------

_SATOSHI_MESSAGE = b"The Times 03/Jan/2009 Chancellor on brink of second bailout for banks"
_SATOSHI_PUBKEY = bytes.fromhex(
    "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61de"
    "b649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
)
_OP_PUSHDATA1 = 0x4C
_OP_CHECKSIG = 0xAC


def _push(data: bytes) -> bytes:
    """The shortest push of ``data`` as Core's ``CScript << vector`` writes it (< 256 bytes)."""
    if len(data) < _OP_PUSHDATA1:
        return bytes((len(data),)) + data
    if len(data) <= 0xFF:
        return bytes((_OP_PUSHDATA1, len(data))) + data
    raise ValueError("genesis pushes are shorter than 256 bytes")


def build_genesis(
    *,
    time: int,
    nonce: int,
    bits: int,
    version: int = 1,
    reward: int = 50 * COIN,
    message: bytes = _SATOSHI_MESSAGE,
    output_script: bytes = _push(_SATOSHI_PUBKEY) + bytes((_OP_CHECKSIG,)),
) -> bytes:
    """Serialize a genesis block the way every Bitcoin network builds its own.

    One coinbase transaction (version 1, no witness) whose scriptSig pushes the number
    486604799 (``ffff001d``), the number 4 and ``message``, paying ``reward`` to
    ``output_script``; the header has a null previous hash and the coinbase's txid as merkle root.
    """
    script_sig = _push(bytes.fromhex("ffff001d")) + _push(b"\x04") + _push(message)
    tx = b"".join(
        (
            pack_i32(1),
            compact_size(1),
            b"\x00" * 32 + pack_u32(0xFFFFFFFF),
            compact_size(len(script_sig)) + script_sig,
            pack_u32(0xFFFFFFFF),
            compact_size(1),
            pack_i64(reward),
            compact_size(len(output_script)) + output_script,
            pack_u32(0),
        )
    )
    header = b"".join(
        (
            pack_i32(version),
            b"\x00" * 32,
            hash256(tx),
            pack_u32(time),
            pack_u32(bits),
            pack_u32(nonce),
        )
    )
    return header + compact_size(1) + tx


def _deployments(
    threshold: int, period: int, taproot_start: int, taproot_timeout: int, taproot_min_height: int
) -> dict[str, Deployment]:
    return {
        "testdummy": Deployment(
            name="testdummy",
            bit=28,
            start_time=NEVER_ACTIVE,
            timeout=NO_TIMEOUT,
            min_activation_height=0,
            period=period,
            threshold=threshold,
        ),
        "taproot": Deployment(
            name="taproot",
            bit=2,
            start_time=taproot_start,
            timeout=taproot_timeout,
            min_activation_height=taproot_min_height,
            period=period,
            threshold=threshold,
        ),
    }


_TAPROOT_START = 1619222400  # April 24th, 2021
_TAPROOT_TIMEOUT = 1628640000  # August 11th, 2021

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
    genesis=build_genesis(time=1231006505, nonce=2083236893, bits=0x1D00FFFF),
    pow_limit=(1 << 224) - 1,
    subsidy_halving_interval=210_000,
    bip34_height=227931,
    bip34_hash=_h("000000000000024b89b42a942fe0d9fea3bb44ab7bd1b19115dd6a759c0808b8"),
    bip65_height=388381,  # 000000000000000004c2b624ed5d7756c508d90fd0da2c7c679febfa6c4735f0
    bip66_height=363725,  # 00000000000000000379eaa19dce8c9b722d46ae6a57c2f1a988119488b50931
    csv_height=419328,  # 000000000000000004a1b34462cb8aeebd5799177f7a29cf28f2d1961716b5b5
    segwit_height=481824,  # 0000000000000000001c8018d9cb3b742ef25114f27563e3fc4a1902167f9893
    min_bip9_warning_height=483840,
    deployments=_deployments(1815, 2016, _TAPROOT_START, _TAPROOT_TIMEOUT, 709632),
    min_chain_work=0x0000000000000000000000000000000000000000DEE8E2A309AD8A9820433C68,
    default_assume_valid=_h("00000000000000000000611fd22f2df7c8fbd0688745c3a6c3bb5109cc2a12cb"),
    script_flag_exceptions={
        # BIP16 exception: the one historical block that violates P2SH.
        _h("00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22"): VerifyFlags.NONE,
        # Taproot exception: the one historical block that violates the taproot rules.
        _h("0000000000000000000f14c35b2d841e986ab5441de8c585d5ffe55ea1e395ad"): (
            VerifyFlags.P2SH | VerifyFlags.WITNESS
        ),
    },
    bip30_exceptions={
        91842: _h("00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec"),
        91880: _h("00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721"),
    },
    bip30_unspendable={
        91722: _h("00000000000271a2dc26e7667f8419f2e15416dc6955e5a6c6cdf3f2574dd08e"),
        91812: _h("00000000000af0aed4792b1acee3d966af36cf5def14935db8de83d6f9306f2f"),
    },
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
    genesis=build_genesis(time=1296688602, nonce=414098458, bits=0x1D00FFFF),
    pow_limit=(1 << 224) - 1,
    pow_allow_min_difficulty_blocks=True,
    bip34_height=21111,
    bip34_hash=_h("0000000023b3a96d3484e5abb3755c413e7d41500f8e2a5c3f0dd01299cd8ef8"),
    bip65_height=581885,  # 00000000007f6655f22f98e72ed80d8b06dc761d5da09df0fa1dc4be4f861eb6
    bip66_height=330776,  # 000000002104c8c45e99a8853285a3b592602a3ccde2b832481da85e9e4ba182
    csv_height=770112,  # 00000000025e930139bac5c6c31a403776da130831ab85be56578f3fa75369bb
    segwit_height=834624,  # 00000000002b980fcd729daaa248fd9316a5200e9b367f4ff2c42453e84201ca
    min_bip9_warning_height=836640,
    deployments=_deployments(1512, 2016, _TAPROOT_START, _TAPROOT_TIMEOUT, 0),
    min_chain_work=0x0000000000000000000000000000000000000000000016DD270DD94FAC1D7632,
    default_assume_valid=_h("0000000000000065c6c38258e201971a3fdfcc2ceee0dd6e85a6c022d45dee34"),
    script_flag_exceptions={
        # BIP16 exception
        _h("00000000dd30457c001f4095d208cc1296b0eed002427aa599874af7a432b105"): VerifyFlags.NONE,
    },
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
    genesis=build_genesis(
        time=1714777860,
        nonce=393743547,
        bits=0x1D00FFFF,
        message=b"03/May/2024 000000000000000000001ebd58c244970b3aa9d783bb001011fbe8ea8e98e00e",
        output_script=_push(b"\x00" * 33) + bytes((_OP_CHECKSIG,)),
    ),
    pow_limit=(1 << 224) - 1,
    pow_allow_min_difficulty_blocks=True,
    enforce_bip94=True,
    bip34_height=1,
    bip34_hash=None,
    bip65_height=1,
    bip66_height=1,
    csv_height=1,
    segwit_height=1,
    deployments=_deployments(1512, 2016, ALWAYS_ACTIVE, NO_TIMEOUT, 0),
    min_chain_work=0x00000000000000000000000000000000000000000000034A4690FE592DC49C7C,
    default_assume_valid=_h("000000000000000180a58e7fa3b0db84b5ea76377524894f53660d93ac839d9b"),
)

DEFAULT_SIGNET_CHALLENGE = bytes.fromhex(
    "512103ad5e0edad18cb1f0fc0d28a3d4f1f3e445640337489abb10404f2d1e086be430210359ef5021964fe22d"
    "6f8e05b2463c9540ce96883fe3b278760f048f5189f2e6c452ae"
)
"""The default signet's 1-of-2 multisig challenge (BIP325)."""


def signet_magic(challenge: bytes) -> bytes:
    """A signet's message start: the first 4 bytes of hash256 of the serialized challenge."""
    return hash256(compact_size(len(challenge)) + challenge)[:4]


SIGNET = NetworkParams(
    name="signet",
    magic=signet_magic(DEFAULT_SIGNET_CHALLENGE),  # 0a03cf40
    default_port=38333,
    rpc_port=38332,
    pubkey_prefix=111,
    script_prefix=196,
    secret_prefix=239,
    ext_public_prefix=bytes.fromhex("043587cf"),
    ext_secret_prefix=bytes.fromhex("04358394"),
    bech32_hrp="tb",
    genesis=build_genesis(time=1598918400, nonce=52613770, bits=0x1E0377AE),
    pow_limit=0x00000377AE << 216,
    bip34_height=1,
    bip34_hash=None,
    bip65_height=1,
    bip66_height=1,
    csv_height=1,
    segwit_height=1,
    deployments=_deployments(1815, 2016, ALWAYS_ACTIVE, NO_TIMEOUT, 0),
    min_chain_work=0x0000000000000000000000000000000000000000000000000000067D328E681A,
    default_assume_valid=_h("000000128586e26813922680309f04e1de713c7542fee86ed908f56368aefe2e"),
    signet_challenge=DEFAULT_SIGNET_CHALLENGE,
)


def signet_params(challenge: bytes) -> NetworkParams:
    """The parameters of the signet whose blocks must satisfy ``challenge``.

    As Core does for ``-signetchallenge``: the magic comes from the challenge, and with a
    caller-given challenge there is no minimum chain work and no assumed-valid block (even when
    the challenge is the default one). Everything else is the default signet's.
    """
    return dataclasses.replace(
        SIGNET,
        magic=signet_magic(challenge),
        signet_challenge=bytes(challenge),
        min_chain_work=0,
        default_assume_valid=None,
    )


_REGTEST_TESTDUMMY = Deployment(
    name="testdummy",
    bit=28,
    start_time=0,
    timeout=NO_TIMEOUT,
    min_activation_height=0,
    period=144,
    threshold=108,
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
    genesis=build_genesis(time=1296688602, nonce=2, bits=0x207FFFFF),
    pow_limit=(1 << 255) - 1,
    pow_target_timespan=24 * 60 * 60,  # one day: 144-block periods
    pow_allow_min_difficulty_blocks=True,
    pow_no_retargeting=True,
    subsidy_halving_interval=150,
    bip34_height=1,
    bip34_hash=None,
    bip65_height=1,
    bip66_height=1,
    csv_height=1,
    segwit_height=0,
    deployments={
        **_deployments(108, 144, ALWAYS_ACTIVE, NO_TIMEOUT, 0),
        "testdummy": _REGTEST_TESTDUMMY,
    },
    min_chain_work=0,
    default_assume_valid=None,
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
