"""The wallet's PSBT filler and signer (Core's ``FillPSBT`` and ``SignTransaction``).

Layer 3 (wallet). A descriptor wallet knows, for each script of its own, the descriptor and
position it comes from; :func:`fill_psbt` adds what that gives to a PSBT (UTXOs from the wallet's
transactions, redeem/witness scripts, BIP32 origins, taproot internal key, merkle root, leaves and
their key origins), signs with :class:`WalletKeys` through :mod:`peercash.wallet.signer`, and
finalizes what is complete. :func:`sign_transaction` is the same for a raw transaction (Core's
``signrawtransactionwithwallet``).

Scripts beyond the signer's templates (wsh(miniscript), tapscript miniscript leaves) go to
:class:`MiniscriptSatisfier`, which decodes the script with :func:`peercash.wallet.miniscript.
from_script` and satisfies it with the input's nSequence, the transaction's nLockTime and the
PSBT's hash preimages.

Error contract: :class:`~peercash.wallet.psbt.PsbtError` (for a sighash that conflicts with the
PSBT's); an input the wallet cannot sign is not an error, it stays incomplete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..consensus.primitives import Tx, TxIn, TxOut
from ..consensus.script.script import witness_program
from ..consensus.script.taproot import TaprootOutput
from .crypter import MasterKey
from .descriptor import Descriptor, DescriptorError, Expansion
from .keyman import KeyManager, ScriptInfo
from .miniscript import MsContext, Node, from_script
from .psbt.model import Psbt, PsbtInput, TapTreeLeaf
from .psbt.roles import Provider, finalize_input, from_transaction, update
from .signer import (
    SIGVERSION_TAPSCRIPT,
    SIGVERSION_WITNESS_V0,
    TxCache,
    solve_input,
    update_modifiable,
)

if TYPE_CHECKING:
    from .wallet import Wallet

__all__ = [
    "INCOMPLETE",
    "MiniscriptSatisfier",
    "SignError",
    "WalletKeys",
    "fill_psbt",
    "finalize_all",
    "satisfier_for",
    "sign_transaction",
]

INCOMPLETE = "Unable to sign input, invalid stack size (possibly missing key)"
MISSING_INPUT = "Input not found or already spent"


# -- keys --------------------------------------------------------------------------------------


class WalletKeys:
    """Public key → secret over every private descriptor of a KeyManager, at any derived position.

    Positions are derived lazily: :meth:`prime` derives one (the filler knows which position each
    of its inputs comes from, and guesses others from the PSBT's BIP32 paths); an unknown key
    derives every position once, then is cached, unless ``scan_on_miss`` was turned off (the
    filler does, after priming: a full scan of a 1000-key pool costs seconds). Taproot keys are
    also found by their 32-byte x-only form.
    """

    def __init__(self, keys: KeyManager, master: MasterKey | None = None) -> None:
        self._keys = keys
        self._master = master
        """Opens the sealed keys of an encrypted wallet (None: the wallet is not encrypted)."""
        self._private: dict[str, Descriptor] = {}
        self._secrets: dict[bytes, bytes] = {}
        self._primed: set[tuple[str, int]] = set()
        self._all = False
        self.scan_on_miss = True

    def prime_index(self, position: int) -> None:
        """Derive ``position`` of every private ranged descriptor (for a key whose BIP32 path
        ends in that index)."""
        for desc_id, desc in self._keys.descs.items():
            row = self._keys.rows[desc_id]
            if desc.is_range and self._has_secrets(desc_id) and position <= row.range_end:
                self.prime(ScriptInfo(desc_id, position))

    def _has_secrets(self, desc_id: str) -> bool:
        desc = self._keys.descs.get(desc_id)
        return desc is not None and (desc_id in self._keys.sealed or desc.has_private_keys)

    def _private_descriptor(self, desc_id: str) -> Descriptor:
        desc = self._private.get(desc_id)
        if desc is None:
            desc = self._keys.private_descriptor(desc_id, self._master)
            self._private[desc_id] = desc
        return desc

    def prime(self, info: ScriptInfo, exp: Expansion | None = None) -> None:
        """Derive the keys of one position (``exp``: its expansion, when the caller has it)."""
        if (info.desc_id, info.position) in self._primed:
            return
        self._primed.add((info.desc_id, info.position))
        if not self._has_secrets(info.desc_id):
            return
        if exp is None or info.desc_id in self._keys.sealed:
            # A sealed descriptor's public expansion has no secrets: expand the opened one.
            exp = self._private_descriptor(info.desc_id).expand(info.position)
        for pub, secret in exp.secrets.items():
            self._secrets[pub] = secret
            if len(pub) == 33:
                self._secrets.setdefault(pub[1:], secret)

    def _derive_all(self) -> None:
        self._all = True
        for desc_id, row in self._keys.rows.items():
            desc = self._keys.descs[desc_id]
            if not self._has_secrets(desc_id):
                continue
            end = row.range_end if desc.is_range else 0
            for pos in range(row.range_start if desc.is_range else 0, end + 1):
                self.prime(ScriptInfo(desc_id, pos))

    def __call__(self, pubkey: bytes) -> bytes | None:
        secret = self._secrets.get(pubkey)
        if secret is None and not self._all and self.scan_on_miss:
            self._derive_all()
            secret = self._secrets.get(pubkey)
        return secret


# -- miniscript --------------------------------------------------------------------------------


class MiniscriptSatisfier:
    """The signer's :class:`~peercash.wallet.signer.Satisfier` for miniscript, for one input.

    ``sequence`` is the input's nSequence (None when the transaction version is below 2, where
    BIP68 does not apply), ``locktime`` the transaction's nLockTime.
    """

    def __init__(self, sequence: int | None, locktime: int | None) -> None:
        self.sequence = sequence
        self.locktime = locktime
        self._nodes: dict[tuple[bytes, int], Node | None] = {}

    def _node(self, script: bytes, sigversion: int) -> Node | None:
        key = (script, sigversion)
        if key not in self._nodes:
            ctx = MsContext.TAPSCRIPT if sigversion == SIGVERSION_TAPSCRIPT else MsContext.P2WSH
            try:
                self._nodes[key] = from_script(script, ctx)
            except DescriptorError:
                self._nodes[key] = None
        return self._nodes[key]

    def satisfy(
        self,
        script: bytes,
        sigversion: int,
        signature: Callable[[bytes], bytes | None],
        preimages: Mapping[bytes, bytes],
    ) -> list[bytes] | None:
        if sigversion not in (SIGVERSION_WITNESS_V0, SIGVERSION_TAPSCRIPT):
            return None  # miniscript is defined for P2WSH and tapscript only
        node = self._node(script, sigversion)
        if node is None:
            return None
        return node.satisfy(signature, preimages, self.sequence, self.locktime)


class _LazySatisfier(MiniscriptSatisfier):
    """A :class:`MiniscriptSatisfier` that reads input ``index``'s timelocks from the PSBT only
    when a script needs them (most inputs are standard templates that never ask)."""

    def __init__(self, psbt: Psbt, index: int) -> None:
        super().__init__(None, None)
        self._psbt, self._index, self._read = psbt, index, False

    def satisfy(
        self,
        script: bytes,
        sigversion: int,
        signature: Callable[[bytes], bytes | None],
        preimages: Mapping[bytes, bytes],
    ) -> list[bytes] | None:
        if not self._read:
            tx = self._psbt.compute_unsigned_tx()
            self.sequence = tx.inputs[self._index].sequence if tx.version >= 2 else None
            self.locktime = tx.locktime
            self._read = True
        return super().satisfy(script, sigversion, signature, preimages)


def satisfier_for(psbt: Psbt, index: int) -> MiniscriptSatisfier:
    """The miniscript satisfier of input ``index`` with the PSBT's timelocks (nSequence only
    from transaction version 2, BIP68)."""
    return _LazySatisfier(psbt, index)


def finalize_all(psbt: Psbt) -> bool:
    """Finalize every input that can be, miniscript included; True when all are final."""
    return all([finalize_input(psbt, k, satisfier_for(psbt, k)) for k in range(len(psbt.inputs))])


# -- filling -----------------------------------------------------------------------------------


def _provider(exps: Iterable[Expansion], bip32derivs: bool) -> Provider:
    provider = Provider()
    for exp in exps:
        provider.add_expansion(exp)
    if not bip32derivs:
        provider.origins.clear()
    provider.secrets.clear()  # the filler never hands secrets on
    return provider


def _add_utxos(wallet: Wallet, psbt: Psbt) -> None:
    """Core's rule: the wallet's previous transaction as non-witness UTXO (also for segwit
    inputs, against the fee attack on segwit v0), plus the witness UTXO for witness outputs."""
    for k, inp in enumerate(psbt.inputs):
        if inp.is_final:
            continue
        prevout = psbt.prevout(k)
        wtx = wallet.txs.get(prevout.txid)
        if wtx is None or prevout.index >= len(wtx.tx.outputs):
            continue
        if inp.non_witness_utxo is None:
            inp.non_witness_utxo = _without_witness(wtx.tx)
        out = wtx.tx.outputs[prevout.index]
        if inp.witness_utxo is None and _is_witness(wallet.keys, out.script_pubkey):
            inp.witness_utxo = out


def _is_witness(keys: KeyManager, spk: bytes) -> bool:
    if witness_program(spk) is not None:
        return True
    info = keys.is_mine(spk)
    if info is None:
        return False
    redeem = keys.descriptor_at(info).expand(info.position).redeem_script
    return redeem is not None and witness_program(redeem) is not None


def _without_witness(tx: Tx) -> Tx:
    if not tx.has_witness():
        return tx
    ins = [TxIn(i.prevout, i.script_sig, i.sequence) for i in tx.inputs]
    return Tx(tx.version, ins, tx.outputs, tx.locktime)


def _path_indexes(psbt: Psbt) -> set[int]:
    """The last (unhardened) step of every BIP32 path the inputs carry."""
    found: set[int] = set()
    for inp in psbt.inputs:
        if inp.is_final:
            continue
        origins = [*inp.bip32_derivs.values(), *(o for _, o in inp.tap_bip32_derivs.values())]
        found.update(o.path[-1] for o in origins if o.path and o.path[-1] < 0x8000_0000)
    return found


def _tap_tree(tr: TaprootOutput) -> tuple[TapTreeLeaf, ...]:
    """PSBT_OUT_TAP_TREE (BIP371): the leaves depth first, each depth read off its control
    block (33 bytes, then 32 per level)."""
    return tuple(
        TapTreeLeaf((len(control) - 33) // 32, leaf.leaf_version, leaf.script)
        for leaf, control in zip(tr.leaves, tr.control_blocks)
    )


def fill_psbt(
    wallet: Wallet,
    psbt: Psbt,
    *,
    sign: bool = True,
    sighash: int | None = None,
    bip32derivs: bool = True,
    finalize: bool = True,
) -> tuple[Psbt, bool]:
    """Core's ``FillPSBT``: add the wallet's data, sign (unless ``sign`` is False), finalize
    (when ``finalize``); the PSBT (changed in place) and whether every input is signed.

    ``sighash`` None signs with each input's PSBT_IN_SIGHASH_TYPE, else ALL / DEFAULT. Raises
    ``WalletLocked`` (from ``signing_keys``) when signing needs a locked wallet's keys.
    """
    with wallet.lock:
        # First, so that a locked wallet refuses before the PSBT is changed.
        signer = wallet.signing_keys() if sign else None
        keys = wallet.keys
        _add_utxos(wallet, psbt)
        infos: list[ScriptInfo] = []
        for k in range(len(psbt.inputs)):
            spent = psbt.spent_output(k)
            info = keys.is_mine(spent.script_pubkey) if spent is not None else None
            if info is not None:
                infos.append(info)
        tx = psbt.compute_unsigned_tx()
        out_infos = [keys.is_mine(o.script_pubkey) for o in tx.outputs]
        exps = {
            info: keys.descriptor_at(info).expand(info.position)
            for info in infos + [i for i in out_infos if i is not None]
        }
        update(psbt, _provider(exps.values(), bip32derivs))
        for out, out_info in zip(psbt.outputs, out_infos):
            tr = exps[out_info].taproot if out_info is not None else None
            if tr is not None and tr.leaves and out.tap_tree is None:
                out.tap_tree = _tap_tree(tr)
        if isinstance(signer, WalletKeys):
            for info in infos:
                signer.prime(info, exps[info])
            for index in _path_indexes(psbt):
                signer.prime_index(index)
            signer.scan_on_miss = False
        complete = True
        hash_types: list[int] = []
        cache = TxCache(psbt)  # finalizing keeps the transaction and UTXOs as they are
        for k, inp in enumerate(psbt.inputs):
            if inp.is_final:
                continue
            satisfier = satisfier_for(psbt, k)
            sol = solve_input(psbt, k, signer, sighash, satisfier=satisfier, cache=cache)
            hash_types += sol.signed_hash_types
            complete = complete and sol.complete
            if finalize and sol.complete:
                finalize_input(psbt, k, satisfier, cache)
        if psbt.version == 2 and psbt.tx_modifiable is not None:
            update_modifiable(psbt, hash_types)
        return psbt, complete


# -- raw transactions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignError:
    """An input :func:`sign_transaction` could not complete (Core's ``TxInErrorToJSON``)."""

    index: int
    error: str


def sign_transaction(
    wallet: Wallet, tx: Tx, spent: Sequence[TxOut | None], sighash: int | None = None
) -> tuple[Tx, list[SignError]]:
    """Sign every input of ``tx`` the wallet can (``spent[i]`` is the output input ``i``
    spends, None when unknown); the transaction and the inputs left incomplete.

    An input that already has a scriptSig or witness and that the wallet cannot complete keeps
    them (so signatures added elsewhere survive). A legacy input is signed only when the wallet
    holds its previous transaction (BIP174: a bare output does not prove the amount).
    """
    psbt = from_transaction(tx)
    for inp, out in zip(psbt.inputs, spent):
        if out is not None:
            inp.witness_utxo = out
    with wallet.lock:
        for k, inp in enumerate(psbt.inputs):
            wtx = wallet.txs.get(tx.inputs[k].prevout.txid)
            if wtx is not None and inp.witness_utxo is None:
                inp.non_witness_utxo = _without_witness(wtx.tx)
            elif inp.witness_utxo is not None and not _is_witness_spend(wallet, inp):
                inp.witness_utxo = None
                if wtx is not None:
                    inp.non_witness_utxo = _without_witness(wtx.tx)
        fill_psbt(wallet, psbt, sighash=sighash, finalize=True)
    ins: list[TxIn] = []
    errors: list[SignError] = []
    for k, (txin, inp) in enumerate(zip(tx.inputs, psbt.inputs)):
        if inp.is_final:
            ins.append(
                TxIn(
                    txin.prevout,
                    inp.final_script_sig or b"",
                    txin.sequence,
                    inp.final_script_witness or (),
                )
            )
            continue
        ins.append(txin)
        missing = psbt.spent_output(k) is None and spent[k] is None
        errors.append(SignError(k, MISSING_INPUT if missing else INCOMPLETE))
    return Tx(tx.version, ins, tx.outputs, tx.locktime), errors


def _is_witness_spend(wallet: Wallet, inp: PsbtInput) -> bool:
    assert inp.witness_utxo is not None
    return _is_witness(wallet.keys, inp.witness_utxo.script_pubkey)
