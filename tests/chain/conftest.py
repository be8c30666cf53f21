"""Shared helpers for the chain tests: run the real ``peercash`` CLI, read ``chaininfo``, and a
generated regtest chain (built once per session) with the UTXO figures expected at every height.

Helpers are handed out as fixtures because the tests are collected with ``--import-mode=importlib``
(no ``conftest`` imports).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from peercash.consensus.crypto import pubkey_from_secret
from peercash.consensus.params import REGTEST
from peercash.consensus.primitives import Block, OutPoint, Tx, TxIn, TxOut
from peercash.consensus.subsidy import block_subsidy
from peercash.mining.builder import (
    OP_TRUE_SCRIPT,
    P2WSH_OP_TRUE,
    assemble_block,
    coinbase_tx,
    p2pkh_script,
    p2tr_script,
    p2wpkh_script,
    sign_inputs,
    solve,
)

DATA = Path(__file__).resolve().parents[1] / "data"
MAINNET_HEX = DATA / "btcd" / "blocks" / "mainnet-blocks-0-255.hex"


def _peercash_exe() -> list[str]:
    exe = Path(sys.executable).parent / "peercash"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("peercash")
    if found is None:  # pragma: no cover - the venv always has the console script
        pytest.skip("the peercash console script is not installed")
    return [found]


PEERCASH = _peercash_exe()


def run_peercash(*args: object, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real console script; never raises on a non-zero exit."""
    return subprocess.run(
        [*PEERCASH, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@dataclass(frozen=True)
class ChainInfo:
    """``peercash chaininfo``'s JSON, plus its raw text (for the 8-decimal ``total_amount``)."""

    data: dict[str, object]
    text: str

    def __getitem__(self, key: str) -> object:
        return self.data[key]

    @property
    def total_amount_text(self) -> str:
        for line in self.text.splitlines():
            if '"total_amount"' in line:
                return line.split(":", 1)[1].strip().rstrip(",")
        raise AssertionError(f"no total_amount in {self.text!r}")


def read_chaininfo(datadir: Path, network: str = "main") -> ChainInfo:
    r = run_peercash("chaininfo", "--network", network, "--datadir", datadir)
    assert r.returncode == 0, f"chaininfo failed ({r.returncode}): {r.stderr}"
    return ChainInfo(json.loads(r.stdout), r.stdout)


@pytest.fixture(scope="session")
def peercash() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``peercash ARGS...`` (the console script) and return the finished process."""
    return run_peercash


@pytest.fixture(scope="session")
def peercash_argv() -> list[str]:
    """The command that starts the console script, for tests that manage the process."""
    return list(PEERCASH)


@pytest.fixture(scope="session")
def chaininfo() -> Callable[..., ChainInfo]:
    return read_chaininfo


@pytest.fixture(scope="session")
def mainnet_reference(tmp_path_factory: pytest.TempPathFactory) -> ChainInfo:
    """``chaininfo`` after importing the first 256 mainnet blocks into a fresh datadir."""
    d = tmp_path_factory.mktemp("mainnet-ref")
    r = run_peercash("import", MAINNET_HEX, "--network", "main", "--datadir", d)
    assert r.returncode == 0, r.stderr
    return read_chaininfo(d)


# -- a generated regtest chain ----------------------------------------------------------------


@dataclass(frozen=True)
class RegtestChain:
    """A generated chain: ``lines[h]`` is block ``h`` in hex (0 is the genesis), ``hashes[h]`` its
    display hash and ``utxo[h]`` the (txouts, total satoshis) of the UTXO set after block ``h``."""

    lines: list[str]
    hashes: list[str]
    utxo: list[tuple[int, int]]
    inputs: int
    signed_inputs: int
    txs: int
    height_of: dict[str, int]

    @property
    def height(self) -> int:
        return len(self.lines) - 1

    def write(self, path: Path, upto: int | None = None) -> Path:
        """Write blocks 0..``upto`` (default: all) as a hex-per-line file."""
        end = len(self.lines) if upto is None else upto + 1
        path.write_text("\n".join(self.lines[:end]) + "\n")
        return path


def generate_regtest_chain(n_blocks: int, seed: int) -> RegtestChain:
    """Mine ``n_blocks`` regtest blocks with a few transactions each.

    Transactions spend mature coinbases, outputs of earlier blocks and outputs created earlier in
    the same block; outputs go to P2WSH(OP_TRUE), P2PKH, P2WPKH and P2TR (signed spends), with
    the odd OP_RETURN. Fees go to the coinbase, which pays two outputs.
    """
    rng = random.Random(seed)
    params = REGTEST
    maturity = params.coinbase_maturity
    templates: list[tuple[bytes, bytes | None]] = [(P2WSH_OP_TRUE, None)] * 3
    for i in range(3):
        secret = bytes([0x11 * (i + 1)]) * 32
        pub = pubkey_from_secret(secret)
        templates += [(p2pkh_script(pub), secret), (p2wpkh_script(pub), secret)]
        templates.append((p2tr_script(secret), secret))

    genesis = Block.parse(params.genesis)
    lines = [genesis.serialize().hex()]
    hashes = [genesis.hash_hex]
    utxo_stats = [(0, 0)]  # Core leaves the genesis coinbase out of the UTXO set
    coins: dict[tuple[bytes, int], tuple[TxOut, bytes | None]] = {}
    spendable: list[tuple[bytes, int]] = []
    immature: dict[int, list[tuple[bytes, int]]] = {}
    count = total = n_inputs = n_signed = n_txs = 0
    prev, t = genesis.hash, genesis.header.time

    def take(pool: list[tuple[bytes, int]]) -> tuple[bytes, int]:
        i = rng.randrange(len(pool))
        pool[i], pool[-1] = pool[-1], pool[i]
        return pool.pop()

    for h in range(1, n_blocks + 1):
        t += rng.randint(60, 1200)
        spendable.extend(immature.pop(h - maturity, []))
        in_block: list[tuple[bytes, int]] = []
        txs: list[Tx] = []
        fees = 0
        for _ in range(rng.randint(2, 8)):
            n_in = rng.randint(1, 3)
            picks = []
            for _ in range(n_in):
                pool = in_block if in_block and rng.random() < 0.15 else spendable
                if pool:
                    picks.append(take(pool))
            if not picks:
                break
            spent = [coins.pop(k) for k in picks]
            value_in = sum(out.value for out, _ in spent)
            fee = min(value_in // 50, rng.choice((0, 200, 1000, 5000)))
            n_out = rng.randint(1, 12)
            left = value_in - fee
            outs: list[tuple[TxOut, bytes | None]] = []
            for j in range(n_out):
                if rng.random() < 0.04:
                    outs.append((TxOut(0, b"\x6a\x04" + rng.randbytes(4)), None))
                    continue
                script, secret = rng.choice(templates)
                v = left if j == n_out - 1 else left // (n_out - j)
                left -= v
                outs.append((TxOut(v, script), secret))
            if left:
                outs.append((TxOut(left, P2WSH_OP_TRUE), None))
            inputs = [
                TxIn(OutPoint(*k), b"", 0xFFFFFFFE, () if sec else (OP_TRUE_SCRIPT,))
                for k, (_, sec) in zip(picks, spent)
            ]
            tx = Tx(2, inputs, [o for o, _ in outs], 0)
            secrets = [sec for _, sec in spent]
            if any(secrets):
                tx = sign_inputs(tx, [o for o, _ in spent], secrets)
            n_inputs += len(picks)
            n_signed += sum(1 for s in secrets if s)
            n_txs += 1
            fees += fee
            txs.append(tx)
            count -= len(spent)
            total -= value_in
            for i, (o, sec) in enumerate(outs):
                if o.script_pubkey[0] != 0x6A:
                    coins[(tx.txid, i)] = (o, sec)
                    in_block.append((tx.txid, i))
                    count += 1
                    total += o.value
        spendable.extend(in_block)
        reward = block_subsidy(h, params) + fees
        script, secret = rng.choice(templates)
        cb_outs = [TxOut(reward // 2, script), TxOut(reward - reward // 2, P2WSH_OP_TRUE)]
        block = solve(
            assemble_block(
                prev, t, 0x207FFFFF, coinbase_tx(h, cb_outs), txs, witness_commitment=True
            )
        )
        cb = block.txs[0]
        mature_later = immature.setdefault(h, [])
        for i, o in enumerate(cb.outputs):
            if o.script_pubkey[0] != 0x6A:
                coins[(cb.txid, i)] = (o, secret if i == 0 else None)
                mature_later.append((cb.txid, i))
                count += 1
                total += o.value
        prev = block.hash
        lines.append(block.serialize().hex())
        hashes.append(block.hash_hex)
        utxo_stats.append((count, total))
    height_of = {h: i for i, h in enumerate(hashes)}
    return RegtestChain(lines, hashes, utxo_stats, n_inputs, n_signed, n_txs, height_of)


REGTEST_BLOCKS = 2500


@pytest.fixture(scope="session")
def regtest_chain() -> RegtestChain:
    """About 2,500 regtest blocks, 1-6 transactions each (generated once per session)."""
    return generate_regtest_chain(REGTEST_BLOCKS, seed=20261125)
