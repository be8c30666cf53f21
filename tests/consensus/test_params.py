"""Per-network parameters: genesis blocks, Core's chainparams facts and their sanity checks."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from peercash.consensus.deployments import ALWAYS_ACTIVE, NEVER_ACTIVE, NO_TIMEOUT
from peercash.consensus.params import (
    DEFAULT_SIGNET_CHALLENGE,
    MAIN,
    NETWORKS,
    REGTEST,
    SIGNET,
    TESTNET,
    TESTNET4,
    NetworkParams,
    build_genesis,
    get_params,
    signet_magic,
    signet_params,
)
from peercash.consensus.pow import bits_to_target, check_proof_of_work
from peercash.consensus.primitives import Block
from peercash.consensus.script.flags import VerifyFlags

BLOCKS = Path(__file__).resolve().parent.parent / "data" / "btcd" / "blocks"

# Display-order hashes asserted in Core's src/kernel/chainparams.cpp.
GENESIS = {
    "main": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    "testnet": "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    "testnet4": "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    "signet": "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    "regtest": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
}
SATOSHI_MERKLE = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
MERKLE = dict.fromkeys(GENESIS, SATOSHI_MERKLE) | {
    "testnet4": "7aa0a7ae1e223414cb807e40cd57e667b718e42aaf9306db9102fe28912b7b4e"
}

# The testnet4 genesis block as printed in BIP94.
BIP94_GENESIS_HEX = (
    "0100000000000000000000000000000000000000000000000000000000000000000000004e7b2b9128fe0291db"
    "0693af2ae418b767e657cd407e80cb1434221eaea7a07a046f3566ffff001dbb0c78170101000000010000000000"
    "000000000000000000000000000000000000000000000000000000ffffffff5504ffff001d01044c4c30332f4d61"
    "792f323032342030303030303030303030303030303030303030303165626435386332343439373062336161396437"
    "383362623030313031316662653865613865393865303065ffffffff0100f2052a01000000232100000000000000"
    "0000000000000000000000000000000000000000000000000000ac00000000"
)

ALL = list(NETWORKS.values())
IDS = [p.name for p in ALL]


@pytest.mark.parametrize("params", ALL, ids=IDS)
def test_genesis_hash_is_cores(params: NetworkParams) -> None:
    assert params.genesis_hash[::-1].hex() == GENESIS[params.name]
    block = Block.parse(params.genesis)
    assert block.hash == params.genesis_hash
    assert block.header.merkle_root[::-1].hex() == MERKLE[params.name]
    assert block.header.prev_hash == b"\x00" * 32
    assert block.header.version == 1
    (coinbase,) = block.txs
    assert coinbase.is_coinbase()
    assert [out.value for out in coinbase.outputs] == [50 * 100_000_000]
    assert block.serialize() == params.genesis


def test_mainnet_genesis_is_line_0_of_the_block_file() -> None:
    first = (BLOCKS / "mainnet-blocks-0-255.hex").read_text().split()[0]
    assert MAIN.genesis == bytes.fromhex(first)


def test_testnet4_genesis_is_bip94s() -> None:
    assert TESTNET4.genesis.hex() == BIP94_GENESIS_HEX


def test_build_genesis_defaults_are_satoshis_block() -> None:
    assert build_genesis(time=1231006505, nonce=2083236893, bits=0x1D00FFFF) == MAIN.genesis


# Magic, ports and address prefixes must not move (other code and peers depend on them).
WIRE = {
    "main": ("f9beb4d9", 8333, 8332, 0, 5, 128, "0488b21e", "0488ade4", "bc"),
    "testnet": ("0b110907", 18333, 18332, 111, 196, 239, "043587cf", "04358394", "tb"),
    "testnet4": ("1c163f28", 48333, 48332, 111, 196, 239, "043587cf", "04358394", "tb"),
    "signet": ("0a03cf40", 38333, 38332, 111, 196, 239, "043587cf", "04358394", "tb"),
    "regtest": ("fabfb5da", 18444, 18443, 111, 196, 239, "043587cf", "04358394", "bcrt"),
}


@pytest.mark.parametrize("params", ALL, ids=IDS)
def test_magic_ports_and_prefixes_unchanged(params: NetworkParams) -> None:
    got = (
        params.magic.hex(),
        params.default_port,
        params.rpc_port,
        params.pubkey_prefix,
        params.script_prefix,
        params.secret_prefix,
        params.ext_public_prefix.hex(),
        params.ext_secret_prefix.hex(),
        params.bech32_hrp,
    )
    assert got == WIRE[params.name]


def test_get_params() -> None:
    assert list(NETWORKS) == ["main", "testnet", "testnet4", "signet", "regtest"]
    assert get_params("testnet4") is TESTNET4
    with pytest.raises(KeyError, match="regtest"):
        get_params("mainnet")


@pytest.mark.parametrize("params", ALL, ids=IDS)
def test_core_chainparams_sanity(params: NetworkParams) -> None:
    # The checks of Core's pow_tests.cpp sanity_check_chainparams.
    assert params.pow_target_timespan % params.pow_target_spacing == 0
    header = Block.parse(params.genesis).header
    target, negative, overflow = bits_to_target(header.bits)
    assert not negative and not overflow and target != 0
    assert target <= params.pow_limit
    assert check_proof_of_work(params.genesis_hash, header.bits, params.pow_limit)
    if not params.pow_no_retargeting:
        # The retarget multiplies pow_limit by up to 4 * timespan in 256 bits: it must not wrap.
        assert params.pow_limit < ((1 << 256) - 1) // (params.pow_target_timespan * 4)


def test_mainnet_consensus_values() -> None:
    assert MAIN.pow_limit == int("00000000" + "f" * 56, 16)
    assert (MAIN.pow_target_timespan, MAIN.pow_target_spacing) == (1_209_600, 600)
    assert MAIN.difficulty_adjustment_interval == 2016
    assert not MAIN.pow_allow_min_difficulty_blocks
    assert not MAIN.pow_no_retargeting
    assert not MAIN.enforce_bip94
    assert MAIN.subsidy_halving_interval == 210_000
    assert (MAIN.bip34_height, MAIN.bip65_height, MAIN.bip66_height) == (227931, 388381, 363725)
    assert (MAIN.csv_height, MAIN.segwit_height) == (419328, 481824)
    assert MAIN.bip34_hash is not None
    assert MAIN.bip34_hash[::-1].hex() == (
        "000000000000024b89b42a942fe0d9fea3bb44ab7bd1b19115dd6a759c0808b8"
    )
    assert MAIN.coinbase_maturity == 100
    assert MAIN.max_future_block_time == 7200
    assert MAIN.min_chain_work > 0
    assert MAIN.default_assume_valid is not None
    assert MAIN.default_assume_valid[::-1].hex() == (
        "00000000000000000000611fd22f2df7c8fbd0688745c3a6c3bb5109cc2a12cb"
    )
    assert MAIN.signet_challenge is None


def test_script_flag_exceptions() -> None:
    main = {h[::-1].hex(): f for h, f in MAIN.script_flag_exceptions.items()}
    assert main == {
        "00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22": VerifyFlags.NONE,
        "0000000000000000000f14c35b2d841e986ab5441de8c585d5ffe55ea1e395ad": (
            VerifyFlags.P2SH | VerifyFlags.WITNESS
        ),
    }
    test = {h[::-1].hex(): f for h, f in TESTNET.script_flag_exceptions.items()}
    assert test == {
        "00000000dd30457c001f4095d208cc1296b0eed002427aa599874af7a432b105": VerifyFlags.NONE
    }
    for params in (TESTNET4, SIGNET, REGTEST):
        assert not params.script_flag_exceptions


def test_bip30_exceptions() -> None:
    assert {h: x[::-1].hex() for h, x in MAIN.bip30_exceptions.items()} == {
        91842: "00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec",
        91880: "00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721",
    }
    assert sorted(MAIN.bip30_unspendable) == [91722, 91812]
    for params in (TESTNET, TESTNET4, SIGNET, REGTEST):
        assert not params.bip30_exceptions and not params.bip30_unspendable


def test_testnets() -> None:
    assert TESTNET.pow_allow_min_difficulty_blocks and not TESTNET.enforce_bip94
    assert TESTNET.bip34_height == 21111
    assert TESTNET4.pow_allow_min_difficulty_blocks and TESTNET4.enforce_bip94
    assert TESTNET4.pow_limit == MAIN.pow_limit
    for params in (TESTNET4, SIGNET):
        heights = (params.bip34_height, params.bip65_height, params.bip66_height)
        assert heights == (1, 1, 1)
        assert (params.csv_height, params.segwit_height) == (1, 1)
        assert params.bip34_hash is None
        assert params.deployments["taproot"].start_time == ALWAYS_ACTIVE


def test_regtest_is_cores() -> None:
    assert REGTEST.pow_limit == int("7" + "f" * 63, 16)
    assert REGTEST.pow_no_retargeting and REGTEST.pow_allow_min_difficulty_blocks
    assert not REGTEST.enforce_bip94
    assert REGTEST.pow_target_timespan == 24 * 60 * 60
    assert REGTEST.difficulty_adjustment_interval == 144
    assert REGTEST.subsidy_halving_interval == 150
    heights = (REGTEST.bip34_height, REGTEST.bip65_height, REGTEST.bip66_height)
    assert heights == (1, 1, 1)
    assert (REGTEST.csv_height, REGTEST.segwit_height) == (1, 0)
    assert REGTEST.min_chain_work == 0
    assert REGTEST.default_assume_valid is None
    dummy = REGTEST.deployments["testdummy"]
    assert (dummy.bit, dummy.start_time, dummy.timeout) == (28, 0, NO_TIMEOUT)
    assert (dummy.min_activation_height, dummy.period, dummy.threshold) == (0, 144, 108)


def test_mainnet_deployments_are_buried_or_never() -> None:
    assert MAIN.deployments["testdummy"].start_time == NEVER_ACTIVE
    taproot = MAIN.deployments["taproot"]
    assert (taproot.bit, taproot.start_time, taproot.timeout) == (2, 1619222400, 1628640000)
    assert taproot.min_activation_height == 709632
    assert (taproot.period, taproot.threshold) == (2016, 1815)


def test_signet_magic_comes_from_the_challenge() -> None:
    assert SIGNET.signet_challenge == DEFAULT_SIGNET_CHALLENGE
    assert signet_magic(DEFAULT_SIGNET_CHALLENGE) == SIGNET.magic == bytes.fromhex("0a03cf40")
    assert SIGNET.pow_limit == int("00000377ae" + "0" * 54, 16)
    # A private signet with a 1-of-1 challenge (OP_TRUE would do too).
    challenge = bytes.fromhex("51")
    custom = signet_params(challenge)
    assert custom.signet_challenge == challenge
    assert custom.magic == signet_magic(challenge) != SIGNET.magic
    assert custom.genesis_hash == SIGNET.genesis_hash
    assert custom.min_chain_work == 0 and custom.default_assume_valid is None
    assert custom.name == "signet" and custom.default_port == 38333
    # Core treats an explicit challenge as a custom signet even when it is the default one.
    same = signet_params(DEFAULT_SIGNET_CHALLENGE)
    assert same.magic == SIGNET.magic and same.min_chain_work == 0


@pytest.mark.parametrize("params", ALL, ids=IDS)
def test_params_are_immutable_hashable_and_pickle(params: NetworkParams) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.pow_limit = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        params.script_flag_exceptions[b"\x00" * 32] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        params.deployments["x"] = params.deployments["testdummy"]  # type: ignore[index]
    assert hash(params) == hash(params)
    clone = pickle.loads(pickle.dumps(params))
    assert clone == params
    assert clone.genesis_hash == params.genesis_hash


def test_constructor_copies_mappings() -> None:
    exceptions = {b"\x01" * 32: 0}
    fields = {f.name: getattr(REGTEST, f.name) for f in dataclasses.fields(NetworkParams) if f.init}
    custom = NetworkParams(**(fields | {"name": "x", "script_flag_exceptions": exceptions}))
    exceptions[b"\x02" * 32] = 0
    assert list(custom.script_flag_exceptions) == [b"\x01" * 32]


def test_constructor_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="pow_limit"):
        dataclasses.replace(REGTEST, pow_limit=0)
    with pytest.raises(ValueError, match="genesis"):
        dataclasses.replace(REGTEST, genesis=REGTEST.genesis[:80])
    with pytest.raises(ValueError, match="32 bytes"):
        dataclasses.replace(REGTEST, bip34_hash=b"\x00")
