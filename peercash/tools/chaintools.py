"""Offline chain commands: ``import`` (validate and connect blocks from a file) and ``chaininfo``.

Both open a network's data directory directly (the node must not be running on it).
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peercash.chain.chainstate import DEFAULT_DBCACHE_MB, ChainState
from peercash.chain.coins import key_outpoint
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.params import NetworkParams, get_params, signet_params
from peercash.consensus.primitives import Block
from peercash.consensus.serialize import Reader
from peercash.consensus.utxohash import UtxoSetHasher

# Core's folder names for the networks that do not live in the data directory itself.
_NETWORK_DIRS = {"main": "", "testnet": "testnet3", "testnet4": "testnet4", "signet": "signet",
                 "regtest": "regtest"}  # fmt: skip


def default_datadir() -> Path:
    return Path.home() / ".peercash"


def network_datadir(datadir: Path | None, network: str) -> Path:
    """Where a network's files live: the data directory for mainnet, a sub-folder otherwise."""
    base = datadir if datadir is not None else default_datadir()
    sub = _NETWORK_DIRS.get(network)
    if sub is None:
        raise ValueError(f"unknown network {network!r}; choose one of {', '.join(_NETWORK_DIRS)}")
    return base / sub if sub else base


def network_params(network: str, signet_challenge: str | None = None) -> NetworkParams:
    """The network's parameters; a custom signet when ``signet_challenge`` (hex) is given."""
    if signet_challenge is not None:
        if network != "signet":
            raise ValueError("--signetchallenge is only for --network signet")
        try:
            return signet_params(bytes.fromhex(signet_challenge))
        except ValueError:
            raise ValueError("--signetchallenge takes the challenge script in hex") from None
    return get_params(network)


def resolve_assume_valid(value: str | None, params: NetworkParams) -> bytes | None:
    """``None``: the network's default; ``"0"``: off; else a block hash in display hex."""
    if value is None:
        return params.default_assume_valid
    if value.strip() in ("0", ""):
        return None
    raw = bytes.fromhex(value.strip())
    if len(raw) != 32:
        raise ValueError("--assumevalid takes a 64-hex-digit block hash or 0")
    return raw[::-1]


def read_blocks(path: Path, magic: bytes) -> Iterator[Block]:
    """Blocks from a file: one hex block per line, raw blocks back to back, or blk-file records."""
    with path.open("rb") as f:
        head = f.read(64)
    if head and all(c in b"0123456789abcdefABCDEF \r\n\t" for c in head):
        with path.open("r") as text:
            for n, line in enumerate(text, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    yield Block.from_hex(line)
                except DecodeError as e:
                    raise DecodeError(f"{path}:{n}: {e}") from None
        return
    data = path.read_bytes()
    r = Reader(data)
    while r.remaining():
        if data.startswith(magic, r.pos):
            r.pos += 4
            size = r.u32()
            yield Block.parse(r.read(size))
        else:
            yield Block.from_reader(r)


@dataclass
class ImportResult:
    blocks_read: int
    height: int
    tip: str
    seconds: float
    error: str | None = None
    error_height: int | None = None


@contextlib.contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """The UTXO cache holds hundreds of thousands of objects without cycles: collecting less
    often saves the collector rescanning them (it cost a tenth of the serial import work)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def import_blocks(
    path: Path,
    network: str,
    datadir: Path | None,
    *,
    dbcache_mb: int = DEFAULT_DBCACHE_MB,
    assume_valid: str | None = None,
    script_workers: int = 0,
    reindex: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    signet_challenge: str | None = None,
) -> ImportResult:
    """Validate and connect every block of ``path``; stop at the first invalid one."""
    params = network_params(network, signet_challenge)
    folder = network_datadir(datadir, network)
    start = time.perf_counter()
    n = 0
    with (
        _fewer_gc_passes(),
        ChainState(
            params,
            folder,
            dbcache_mb=dbcache_mb,
            assume_valid=resolve_assume_valid(assume_valid, params),
            script_workers=script_workers,
            reindex=reindex,
        ) as chain,
    ):
        # With script workers, a block's scripts are checked while the next blocks connect; a
        # failure then surfaces a few blocks later, as ``last_error`` naming the failed block.
        chain.defer_scripts = chain.pool is not None
        chain.last_error = None

        def result(error: str | None = None, error_height: int | None = None) -> ImportResult:
            return ImportResult(
                n, chain.height, chain.tip.header.hash_hex, time.perf_counter() - start,
                error, error_height,
            )  # fmt: skip

        def failed_block() -> ImportResult | None:
            failed = chain.last_error
            return None if failed is None else result(str(failed[1]), failed[0].height)

        last_report = start
        for block in read_blocks(path, params.magic):
            n += 1
            try:
                chain.accept_block(block)
            except RuleError as err:
                chain.settle()  # a block before this one may have failed its scripts
                prev = chain.index.get(block.header.prev_hash)
                return failed_block() or result(str(err), prev.height + 1 if prev else None)
            if (failure := failed_block()) is not None:
                return failure
            now = time.perf_counter()
            if progress is not None and now - last_report >= 1.0:
                progress(n, chain.height, now - start)
                last_report = now
        chain.settle()
        return failed_block() or result()


def chain_info(
    network: str, datadir: Path | None, signet_challenge: str | None = None
) -> dict[str, Any]:
    """Core's ``gettxoutsetinfo muhash`` figures for the tip, plus ``hash_serialized_3``."""
    params = network_params(network, signet_challenge)
    folder = network_datadir(datadir, network)
    with ChainState(params, folder, assume_valid=None) as chain:
        chain.flush()
        hasher = UtxoSetHasher()
        for key, coin in chain.coins_db.iterate():
            hasher.add(key_outpoint(key), coin.height, coin.coinbase, coin.txout)
        figures = hasher.result()
        return {
            "height": chain.height,
            "bestblock": chain.tip.header.hash_hex,
            "txouts": figures["txouts"],
            "bogosize": figures["bogosize"],
            "muhash": figures["muhash"],
            "hash_serialized_3": figures["hash_serialized_3"],
            "total_amount": _Btc(figures["total_amount"]),
            "transactions": figures["transactions"],
        }


class _Btc(int):
    """Satoshis that ``dumps`` prints as a BTC amount with 8 decimals, as Core's RPC does."""


def dumps(obj: dict[str, Any]) -> str:
    """JSON with BTC amounts printed like Core (``12750.00000000``)."""
    placeholders: dict[str, str] = {}
    plain: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, _Btc):
            token = f"@@{k}@@"
            placeholders[f'"{token}"'] = f"{int(v) // 100_000_000}.{int(v) % 100_000_000:08d}"
            plain[k] = token
        else:
            plain[k] = v
    text = json.dumps(plain, indent=2)
    for token, value in placeholders.items():
        text = text.replace(token, value)
    return text
