"""The PSBT roles other than the signer: creator, updater, combiner, finalizer, extractor, and
``analyze`` (Core's ``AnalyzePSBT``).

Layer 3 (wallet), pure. The updater learns UTXOs from transactions or a lookup callback the caller
injects (the RPC passes the UTXO set and mempool), and scripts, keys and taproot data from a
:class:`Provider` (built by hand or from a descriptor's ``Expansion``).

Error contract: :class:`PsbtError` with Core's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ...consensus.hashing import hash160, sha256
from ...consensus.primitives import OutPoint, Tx, TxIn, TxOut
from ...consensus.script.script import iter_ops, witness_program
from ...consensus.script.taproot import TaprootOutput
from ..descriptor.keys import KeyOrigin
from ..descriptor.parser import Expansion
from ..signer import Satisfier, TxCache, solve_input
from .errors import PsbtError
from .model import MODIFIABLE_INPUTS, MODIFIABLE_OUTPUTS, Psbt, PsbtInput, PsbtOutput

__all__ = [
    "Analysis",
    "InputAnalysis",
    "Provider",
    "add_input",
    "add_output",
    "analyze",
    "combine",
    "create",
    "extract",
    "finalize",
    "is_segwit_output",
    "join",
    "update",
]

MAX_MONEY = 21_000_000 * 100_000_000
ROLES = ("creator", "updater", "signer", "finalizer", "extractor")


# -- creator -----------------------------------------------------------------------------------


def create(
    inputs: Sequence[TxIn],
    outputs: Sequence[TxOut],
    locktime: int = 0,
    tx_version: int = 2,
    psbt_version: int = 0,
) -> Psbt:
    """A PSBT with empty input and output maps for this transaction (Core's ``createpsbt``)."""
    if psbt_version == 0:
        tx = Tx(tx_version, [TxIn(i.prevout, b"", i.sequence) for i in inputs], outputs, locktime)
        return Psbt(
            tx=tx,
            inputs=[PsbtInput() for _ in inputs],
            outputs=[PsbtOutput() for _ in outputs],
        )
    if psbt_version != 2:
        raise PsbtError("Unsupported version number")
    return Psbt(
        version=2,
        tx_version=tx_version,
        fallback_locktime=locktime,
        inputs=[
            PsbtInput(
                previous_txid=i.prevout.txid, output_index=i.prevout.index, sequence=i.sequence
            )
            for i in inputs
        ],
        outputs=[PsbtOutput(amount=o.value, script=o.script_pubkey) for o in outputs],
    )


# -- constructor (BIP370) --------------------------------------------------------------------


def add_input(psbt: Psbt, inp: PsbtInput) -> None:
    """BIP370's Constructor: append an input if the PSBT allows it and the lock times agree.

    An input whose lock time requirement conflicts with the others, or that would change the
    lock time of a PSBT that already has signatures, is refused.
    """
    if psbt.version != 2:
        raise PsbtError("Only a PSBTv2 can have inputs added")
    if not (psbt.tx_modifiable or 0) & MODIFIABLE_INPUTS:
        raise PsbtError("The PSBT's inputs are not modifiable")
    if inp.previous_txid is None or inp.output_index is None:
        raise PsbtError("An added input needs its previous txid and output index")
    before = psbt.compute_locktime()
    psbt.inputs.append(inp)
    after = psbt.compute_locktime()
    if after is None or (after != before and any(_has_signatures(i) for i in psbt.inputs)):
        psbt.inputs.pop()
        raise PsbtError("The input's lock time is not compatible with the PSBT")


def add_output(psbt: Psbt, out: PsbtOutput) -> None:
    """BIP370's Constructor: append an output if the PSBT allows it."""
    if psbt.version != 2:
        raise PsbtError("Only a PSBTv2 can have outputs added")
    if not (psbt.tx_modifiable or 0) & MODIFIABLE_OUTPUTS:
        raise PsbtError("The PSBT's outputs are not modifiable")
    if out.amount is None or out.script is None:
        raise PsbtError("An added output needs its amount and script")
    psbt.outputs.append(out)


def _has_signatures(inp: PsbtInput) -> bool:
    return bool(inp.partial_sigs or inp.tap_key_sig or inp.tap_script_sigs or inp.is_final)


def from_transaction(tx: Tx) -> Psbt:
    """A v0 PSBT of ``tx`` with its scriptSigs and witnesses dropped (``converttopsbt``)."""
    return create(tx.inputs, tx.outputs, tx.locktime, tx.version)


# -- updater -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Provider:
    """Scripts, keys and taproot outputs an updater may add (Core's ``SigningProvider``)."""

    scripts: dict[bytes, bytes] = field(default_factory=dict)
    """hash160 (redeem scripts) or sha256 (witness scripts) → script."""
    origins: dict[bytes, KeyOrigin] = field(default_factory=dict)
    """public key (33/65 bytes, or 32-byte x-only) → origin."""
    taproot: dict[bytes, TaprootOutput] = field(default_factory=dict)
    """output key → the taproot output it came from."""
    secrets: dict[bytes, bytes] = field(default_factory=dict)
    by_hash: dict[bytes, bytes] = field(default_factory=dict)
    """hash160 → public key, for the keys added by :meth:`add_expansion` (others are searched)."""

    def add_script(self, script: bytes) -> None:
        self.scripts[hash160(script)] = script
        self.scripts[sha256(script)] = script

    def add_expansion(self, exp: Expansion) -> None:
        if exp.redeem_script is not None:
            self.add_script(exp.redeem_script)
        if exp.witness_script is not None:
            self.add_script(exp.witness_script)
        for pub, origin in exp.pubkeys.items():
            self.origins[pub] = origin
            if len(pub) in (33, 65):
                self.by_hash[hash160(pub)] = pub
            if len(pub) == 33:
                self.origins.setdefault(pub[1:], origin)
        self.secrets.update(exp.secrets)
        if exp.taproot is not None:
            self.taproot[exp.taproot.output_key] = exp.taproot


def _pushes(script: bytes) -> list[bytes]:
    try:
        return [bytes(d) for _, d, _ in iter_ops(script) if d is not None]
    except Exception:
        return []


def _add_keys(
    derivs: dict[bytes, KeyOrigin], provider: Provider, scripts: Iterable[bytes | None]
) -> None:
    for script in scripts:
        if script is None:
            continue
        for data in _pushes(script):
            if len(data) in (33, 65) and data in provider.origins:
                derivs.setdefault(data, provider.origins[data])
            elif len(data) == 20:
                known = provider.by_hash.get(data)
                if known is not None and known in provider.origins:
                    derivs.setdefault(known, provider.origins[known])
                    continue
                for pub, origin in provider.origins.items():
                    if len(pub) in (33, 65) and hash160(pub) == data:
                        derivs.setdefault(pub, origin)


def is_segwit_output(script: bytes, provider: Provider) -> bool:
    """Core's ``IsSegWitOutput``: a witness program, or P2SH of one whose script we know."""
    if witness_program(script) is not None:
        return True
    if len(script) == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        redeem = provider.scripts.get(script[2:22])
        return redeem is not None and witness_program(redeem) is not None
    return False


def _fill_scripts(
    spk: bytes, provider: Provider, current_redeem: bytes | None, current_witness: bytes | None
) -> tuple[bytes | None, bytes | None]:
    redeem, wscript = current_redeem, current_witness
    inner = spk
    if len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87:
        if redeem is None:
            redeem = provider.scripts.get(spk[2:22])
        if redeem is None:
            return None, wscript
        inner = redeem
    program = witness_program(inner)
    if program is not None and program[0] == 0 and len(program[1]) == 32 and wscript is None:
        wscript = provider.scripts.get(program[1])
    return redeem, wscript


def _fill_taproot_input(inp: PsbtInput, spk: bytes, provider: Provider) -> None:
    program = witness_program(spk)
    if program is None or program[0] != 1 or len(program[1]) != 32:
        return
    tr = provider.taproot.get(program[1])
    if tr is None:
        return
    if inp.tap_internal_key is None:
        inp.tap_internal_key = tr.internal_key
    if inp.tap_merkle_root is None and tr.merkle_root is not None:
        inp.tap_merkle_root = tr.merkle_root
    _fill_tap_keys(inp.tap_bip32_derivs, tr, provider)
    for leaf, control in zip(tr.leaves, tr.control_blocks):
        inp.tap_leaf_scripts.setdefault(control, (leaf.script, leaf.leaf_version))


def _fill_tap_keys(
    derivs: dict[bytes, tuple[tuple[bytes, ...], KeyOrigin]], tr: TaprootOutput, provider: Provider
) -> None:
    leaves: dict[bytes, list[bytes]] = {}
    for leaf, h in zip(tr.leaves, tr.leaf_hashes):
        for data in _pushes(leaf.script):
            if len(data) == 32:
                leaves.setdefault(data, []).append(h)
    for xonly in [tr.internal_key, *leaves]:
        origin = provider.origins.get(xonly)
        if origin is not None and xonly not in derivs:
            derivs[xonly] = (tuple(leaves.get(xonly, ())), origin)


def update(
    psbt: Psbt,
    provider: Provider | None = None,
    transactions: Iterable[Tx] = (),
    lookup: Callable[[OutPoint], TxOut | None] | None = None,
) -> None:
    """Add UTXOs, scripts, key origins and taproot data (Core's ``UpdatePSBTInput``/``Output``).

    UTXOs come from ``transactions`` (the previous transactions: non-witness UTXO for legacy
    inputs, witness UTXO for segwit ones) or ``lookup`` (a witness UTXO, for segwit outputs only).
    Nothing already present is replaced.
    """
    provider = provider or Provider()
    by_txid = {tx.txid: tx for tx in transactions}
    for k, inp in enumerate(psbt.inputs):
        if inp.is_final:
            continue
        prevout = psbt.prevout(k)
        spent = psbt.spent_output(k)
        prev_tx = by_txid.get(prevout.txid)
        if spent is None and prev_tx is not None and prevout.index < len(prev_tx.outputs):
            spent = prev_tx.outputs[prevout.index]
        if spent is None and lookup is not None:
            found = lookup(prevout)
            # A looked-up output alone proves the amount of a segwit spend only (Core's rule).
            if found is not None and is_segwit_output(found.script_pubkey, provider):
                spent = inp.witness_utxo = found
        if spent is None:
            continue
        inp.redeem_script, inp.witness_script = _fill_scripts(
            spent.script_pubkey, provider, inp.redeem_script, inp.witness_script
        )
        if prev_tx is not None and inp.non_witness_utxo is None and inp.witness_utxo is None:
            inner = inp.redeem_script if inp.redeem_script is not None else spent.script_pubkey
            if witness_program(inner) is not None:
                inp.witness_utxo = spent
            else:
                inp.non_witness_utxo = _without_witness(prev_tx)
        _add_keys(
            inp.bip32_derivs, provider, (spent.script_pubkey, inp.redeem_script, inp.witness_script)
        )
        _fill_taproot_input(inp, spent.script_pubkey, provider)
    tx = psbt.compute_unsigned_tx()
    for out, txout in zip(psbt.outputs, tx.outputs):
        spk = txout.script_pubkey
        out.redeem_script, out.witness_script = _fill_scripts(
            spk, provider, out.redeem_script, out.witness_script
        )
        _add_keys(out.bip32_derivs, provider, (spk, out.redeem_script, out.witness_script))
        program = witness_program(spk)
        if program is not None and program[0] == 1 and program[1] in provider.taproot:
            tr = provider.taproot[program[1]]
            if out.tap_internal_key is None:
                out.tap_internal_key = tr.internal_key
            _fill_tap_keys(out.tap_bip32_derivs, tr, provider)


def _without_witness(tx: Tx) -> Tx:
    if not tx.has_witness():
        return tx
    return Tx(
        tx.version,
        [TxIn(i.prevout, i.script_sig, i.sequence) for i in tx.inputs],
        tx.outputs,
        tx.locktime,
    )


# -- combiner ------------------------------------------------------------------------------------


def _merge_dict(into: dict, other: Mapping) -> None:  # type: ignore[type-arg]
    for key, value in other.items():
        into.setdefault(key, value)


_INPUT_DICTS = (
    "partial_sigs",
    "bip32_derivs",
    "preimages",
    "tap_script_sigs",
    "tap_leaf_scripts",
    "tap_bip32_derivs",
    "proprietary",
    "unknown",
)
_INPUT_SCALARS = (
    "non_witness_utxo",
    "witness_utxo",
    "sighash_type",
    "redeem_script",
    "witness_script",
    "final_script_sig",
    "final_script_witness",
    "time_locktime",
    "height_locktime",
    "tap_key_sig",
    "tap_internal_key",
    "tap_merkle_root",
)
_OUTPUT_DICTS = ("bip32_derivs", "tap_bip32_derivs", "proprietary", "unknown")
_OUTPUT_SCALARS = ("redeem_script", "witness_script", "tap_internal_key", "tap_tree")


def _merge(into: object, other: object, dicts: Sequence[str], scalars: Sequence[str]) -> None:
    for name in dicts:
        _merge_dict(getattr(into, name), getattr(other, name))
    for name in scalars:
        if getattr(into, name) is None:
            setattr(into, name, getattr(other, name))


def _identity(psbt: Psbt) -> bytes:
    return psbt.compute_unsigned_tx().txid if psbt.version == 2 else psbt.tx.txid  # type: ignore[union-attr]


def combine(psbts: Sequence[Psbt]) -> Psbt:
    """Merge PSBTs of the same transaction (Core's ``CombinePSBTs``); the first wins conflicts."""
    if not psbts:
        raise PsbtError("Parameter 'txs' cannot be empty")
    base = Psbt.parse(psbts[0].serialize())
    for other in psbts[1:]:
        if (
            other.version != base.version
            or _identity(other) != _identity(base)
            or len(other.inputs) != len(base.inputs)
        ):
            raise PsbtError("PSBTs not compatible (different transactions)")
        _merge_dict(base.xpubs, other.xpubs)
        _merge_dict(base.proprietary, other.proprietary)
        _merge_dict(base.unknown, other.unknown)
        for a, b in zip(base.inputs, other.inputs):
            _merge(a, b, _INPUT_DICTS, _INPUT_SCALARS)
        for oa, ob in zip(base.outputs, other.outputs):
            _merge(oa, ob, _OUTPUT_DICTS, _OUTPUT_SCALARS)
    return base


def join(psbts: Sequence[Psbt]) -> Psbt:
    """One v0 PSBT with every input and output of these (Core's ``joinpsbts``, unshuffled)."""
    if len(psbts) < 2:
        raise PsbtError("At least two PSBTs are required to join PSBTs.")
    txs = [p.compute_unsigned_tx() for p in psbts]
    version = max(t.version for t in txs)
    locktime = min(t.locktime for t in txs)
    seen: set[OutPoint] = set()
    ins: list[TxIn] = []
    in_maps: list[PsbtInput] = []
    outs: list[TxOut] = []
    out_maps: list[PsbtOutput] = []
    result = Psbt()
    for p, t in zip(psbts, txs):
        for txin, m in zip(t.inputs, p.inputs):
            if txin.prevout in seen:
                raise PsbtError(
                    f"Input {txin.prevout.txid_hex}:{txin.prevout.index} exists in multiple PSBTs"
                )
            seen.add(txin.prevout)
            ins.append(TxIn(txin.prevout, b"", txin.sequence))
            in_maps.append(_v0_input(m))
        outs.extend(t.outputs)
        out_maps.extend(_v0_output(m) for m in p.outputs)
        _merge_dict(result.xpubs, p.xpubs)
        _merge_dict(result.unknown, p.unknown)
        _merge_dict(result.proprietary, p.proprietary)
    result.tx = Tx(version, ins, outs, locktime)
    result.inputs, result.outputs = in_maps, out_maps
    return result


def _v0_input(m: PsbtInput) -> PsbtInput:
    copy = PsbtInput(**{name: getattr(m, name) for name in PsbtInput.__dataclass_fields__})
    copy.previous_txid = copy.output_index = copy.sequence = None
    copy.time_locktime = copy.height_locktime = None
    return copy


def _v0_output(m: PsbtOutput) -> PsbtOutput:
    copy = PsbtOutput(**{name: getattr(m, name) for name in PsbtOutput.__dataclass_fields__})
    copy.amount = copy.script = None
    return copy


# -- finalizer and extractor ---------------------------------------------------------------------


def finalize_input(
    psbt: Psbt, index: int, satisfier: Satisfier | None = None, cache: TxCache | None = None
) -> bool:
    """Build input ``index``'s final scriptSig/witness from its signatures; True when final.
    ``cache``: the signer's shared transaction-wide work (for a pass over many inputs)."""
    inp = psbt.inputs[index]
    if inp.is_final:
        return True
    sol = solve_input(psbt, index, None, satisfier=satisfier, cache=cache)
    if not sol.complete:
        return False
    keep = {
        "non_witness_utxo": inp.non_witness_utxo,
        "witness_utxo": inp.witness_utxo,
        "previous_txid": inp.previous_txid,
        "output_index": inp.output_index,
        "sequence": inp.sequence,
        "time_locktime": inp.time_locktime,
        "height_locktime": inp.height_locktime,
        "proprietary": inp.proprietary,
        "unknown": inp.unknown,
    }
    psbt.inputs[index] = PsbtInput(**keep)  # type: ignore[arg-type]
    final = psbt.inputs[index]
    final.final_script_sig = sol.script_sig or None
    final.final_script_witness = sol.witness if sol.is_witness and sol.witness else None
    if final.final_script_sig is None and final.final_script_witness is None:
        final.final_script_sig = b""
    return True


def finalize(psbt: Psbt, satisfier: Satisfier | None = None) -> bool:
    """Finalize every input that can be; True when all are final (Core's ``FinalizePSBT``)."""
    results = [finalize_input(psbt, k, satisfier) for k in range(len(psbt.inputs))]
    return all(results)


def extract(psbt: Psbt) -> Tx:
    """The network transaction of a fully finalized PSBT."""
    tx = psbt.compute_unsigned_tx()
    ins = []
    for txin, inp in zip(tx.inputs, psbt.inputs):
        if not inp.is_final:
            raise PsbtError("PSBT is not complete")
        ins.append(
            TxIn(
                txin.prevout,
                inp.final_script_sig or b"",
                txin.sequence,
                inp.final_script_witness or (),
            )
        )
    return Tx(tx.version, ins, tx.outputs, tx.locktime)


# -- analyze -------------------------------------------------------------------------------------


@dataclass(slots=True)
class InputAnalysis:
    has_utxo: bool
    is_final: bool
    next: str
    missing_pubkeys: list[bytes] = field(default_factory=list)
    missing_sigs: list[bytes] = field(default_factory=list)
    missing_redeem_script: bytes | None = None
    missing_witness_script: bytes | None = None


@dataclass(slots=True)
class Analysis:
    inputs: list[InputAnalysis]
    next: str
    fee: int | None = None
    estimated_vsize: int | None = None
    estimated_feerate: int | None = None
    """satoshis per 1000 virtual bytes."""
    error: str | None = None


def analyze(psbt: Psbt, satisfier: Satisfier | None = None) -> Analysis:
    """Core's ``AnalyzePSBT``: what each input needs next, the fee and an estimated size."""
    work = Psbt.parse(psbt.serialize())
    inputs: list[InputAnalysis] = []
    in_total = 0
    calc_fee = True
    for k, inp in enumerate(work.inputs):
        spent = work.spent_output(k)
        if spent is None:
            inputs.append(InputAnalysis(False, False, "updater"))
            calc_fee = False
            continue
        if not 0 <= spent.value <= MAX_MONEY or not 0 <= in_total + spent.value <= MAX_MONEY:
            return Analysis(
                inputs, "creator", error=f"PSBT is not valid. Input {k} has invalid value"
            )
        in_total += spent.value
        if spent.script_pubkey[:1] == b"\x6a":
            return Analysis(
                inputs, "creator", error=f"PSBT is not valid. Input {k} spends unspendable output"
            )
        if inp.is_final:
            inputs.append(InputAnalysis(True, True, "extractor"))
            continue
        sol = solve_input(work, k, None, satisfier=satisfier)
        if sol.complete:
            inputs.append(InputAnalysis(True, False, "finalizer"))
            continue
        needs_update = bool(
            sol.missing_pubkeys or sol.missing_redeem_script or sol.missing_witness_script
        )
        nxt = "signer" if not needs_update and sol.missing_sigs else "updater"
        inputs.append(
            InputAnalysis(
                True,
                False,
                nxt,
                sol.missing_pubkeys,
                sol.missing_sigs,
                sol.missing_redeem_script,
                sol.missing_witness_script,
            )
        )
    nxt = min((i.next for i in inputs), key=ROLES.index, default="extractor")
    result = Analysis(inputs, nxt)
    if not calc_fee:
        return result
    tx = work.compute_unsigned_tx()
    out_total = sum(o.value for o in tx.outputs)
    fee = in_total - out_total
    if fee < 0:
        result.error = "PSBT is not valid. Output amounts exceed input amounts"
        result.next = "creator"
        return result
    result.fee = fee
    ins = []
    for k, txin in enumerate(tx.inputs):
        inp = work.inputs[k]
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
        sol = solve_input(work, k, None, dummy=True, satisfier=satisfier)
        if not sol.complete:
            return result
        ins.append(TxIn(txin.prevout, sol.script_sig, txin.sequence, sol.witness))
    vsize = Tx(tx.version, ins, tx.outputs, tx.locktime).vsize()
    result.estimated_vsize = vsize
    result.estimated_feerate = fee * 1000 // vsize if vsize else 0
    return result
