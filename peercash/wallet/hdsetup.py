"""The descriptors a new wallet starts with, as Core creates them (``SetupDescriptorScriptPubKeyMans``).

Layer 3 (wallet), pure: given a master key, the four BIP44/49/84/86 account descriptors for
receiving (``/0/*``) and change (``/1/*``), with the origin ``[fingerprint/purpose'/coin'/0']``
(coin type 0 on mainnet, 1 on every test network).

Error contract: ``bip32.Bip32Error`` / ``bip39.MnemonicError`` from the key code.
"""

from __future__ import annotations

from dataclasses import dataclass

from peercash.consensus.params import NetworkParams

from .bip32 import HARDENED, ExtendedKey
from .bip39 import mnemonic_to_seed

OUTPUT_TYPES = ("legacy", "p2sh-segwit", "bech32", "bech32m")
"""Core's address types, in the order Core sets up their descriptors."""

_PURPOSE = {"legacy": 44, "p2sh-segwit": 49, "bech32": 84, "bech32m": 86}
_WRAP = {
    "legacy": ("pkh(", ")"),
    "p2sh-segwit": ("sh(wpkh(", "))"),
    "bech32": ("wpkh(", ")"),
    "bech32m": ("tr(", ")"),
}


@dataclass(frozen=True, slots=True)
class DefaultDescriptor:
    """One default descriptor: its output type, whether it is for change, and its text."""

    output_type: str
    internal: bool
    text: str


def coin_type(params: NetworkParams) -> int:
    return 0 if params.name == "main" else 1


def default_descriptors(master: ExtendedKey, params: NetworkParams) -> list[DefaultDescriptor]:
    """The eight descriptors (four types × receive/change) Core gives a new wallet."""
    fingerprint = master.fingerprint.hex()
    coin = coin_type(params)
    result = []
    for output_type in OUTPUT_TYPES:
        purpose = _PURPOSE[output_type]
        account = master.derive((purpose | HARDENED, coin | HARDENED, HARDENED))
        xprv = account.to_string(params)
        open_, close = _WRAP[output_type]
        for internal in (False, True):
            key = f"[{fingerprint}/{purpose}h/{coin}h/0h]{xprv}/{int(internal)}/*"
            result.append(DefaultDescriptor(output_type, internal, open_ + key + close))
    return result


def master_from_mnemonic(mnemonic: str, passphrase: str = "") -> ExtendedKey:
    """The BIP32 master key of a BIP39 mnemonic (checked) and passphrase."""
    return ExtendedKey.from_seed(mnemonic_to_seed(mnemonic, passphrase))
