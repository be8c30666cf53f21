"""Offline chain commands: ``import`` (validate and connect blocks from a file) and ``chaininfo``.

Both open a network's data directory directly, through ``ChainState``, which takes the data
directory's lock first: against a running node (or another import) they fail at once with
``DataDirLockedError`` and touch nothing.

Import refuses, before anything is opened, a file whose blocks belong to another network (its
records carry another network's magic, or its first block is, or builds on, another network's
genesis block), and reports blocks it could not connect (``ImportResult.unconnected``).
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
from peercash.chain.index import HAVE_DATA
from peercash.consensus.errors import DecodeError, RuleError
from peercash.consensus.hashing import hash256
from peercash.consensus.params import NETWORKS, NetworkParams, get_params, signet_params
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


def _is_hex_text(head: bytes) -> bool:
    return bool(head) and all(c in b"0123456789abcdefABCDEF \r\n\t" for c in head)


def read_blocks(path: Path, magic: bytes) -> Iterator[Block]:
    """Blocks from a file: one hex block per line, raw blocks back to back, or blk-file records."""
    with path.open("rb") as f:
        head = f.read(64)
    if _is_hex_text(head):
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


class WrongNetworkError(ValueError):
    """The file's blocks are for another network; raised before anything is written."""

    def __init__(self, theirs: str, ours: str, why: str) -> None:
        super().__init__(f"these blocks are for {theirs}, not {ours} ({why}); nothing was imported")
        self.network = theirs


def _first_header(path: Path) -> tuple[bytes | None, bytes | None]:
    """(the first 4 bytes of a binary file, the first block's 80-byte header) as far as the file
    has them; the magic is None for a hex file. Reads only the start of the file."""
    with path.open("rb") as f:
        head = f.read(88)
        if _is_hex_text(head[:64]):
            f.seek(0)
            for raw_line in f:
                line = raw_line.strip()
                if not line or line.startswith(b"#"):
                    continue
                try:
                    return None, bytes.fromhex(line[:160].decode("ascii"))
                except (ValueError, UnicodeDecodeError):
                    return None, None
            return None, None
    if len(head) < 4:
        return None, None
    return head[:4], head


def check_network(path: Path, params: NetworkParams) -> None:
    """Raise ``WrongNetworkError`` when the file's blocks are for a known network other than
    ``params``: their records carry its magic, or the first block is (or builds on) its genesis
    block. A file that says nothing either way passes (its blocks are then checked one by one)."""
    magic, data = _first_header(path)
    others = [n for n in NETWORKS.values() if n.genesis_hash != params.genesis_hash]

    def label(n: NetworkParams) -> str:
        return n.name if n.name != params.name else f"the default {n.name}"

    header: bytes | None = data
    if magic is not None and data is not None:
        if magic == params.magic:
            header = data[8:]
        else:
            for n in NETWORKS.values():
                if n.magic == magic:
                    raise WrongNetworkError(
                        label(n),
                        params.name,
                        f"the file's records carry {n.name}'s magic {magic.hex()}",
                    )
            header = data[:80]
    if header is None or len(header) < 80:
        return
    block_hash, prev = hash256(header[:80]), header[4:36]
    for n in others:
        if block_hash == n.genesis_hash:
            raise WrongNetworkError(
                label(n), params.name, f"the first block is {n.name}'s genesis block"
            )
        if prev == n.genesis_hash:
            raise WrongNetworkError(
                label(n), params.name, f"the first block builds on {n.name}'s genesis block"
            )


@dataclass
class Unconnected:
    """Blocks of the file left unconnected: ``count`` of them; the first in chain order is
    ``block`` (display hex), which needs ``parent``. ``parent_stored``: the parent is stored, so the
    block was dropped while it waited (too many blocks ahead of their parents)."""

    count: int
    block: str
    parent: str
    parent_stored: bool = False


@dataclass
class ImportResult:
    blocks_read: int
    height: int
    tip: str
    seconds: float
    error: str | None = None
    error_height: int | None = None
    unconnected: Unconnected | None = None


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
    reindex_chainstate: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    signet_challenge: str | None = None,
) -> ImportResult:
    """Validate and connect every block of ``path``; stop at the first invalid one.

    Raises ``WrongNetworkError`` (nothing written) when the file is for another network. Blocks
    that never connect (their parent is neither stored nor in the file) are reported in the
    result's ``unconnected``; everything connected before them is kept."""
    params = network_params(network, signet_challenge)
    folder = network_datadir(datadir, network)
    check_network(path, params)
    start = time.perf_counter()
    n = 0
    waiting: dict[bytes, bytes] = {}  # blocks that arrived before their parent -> the parent
    with (
        _fewer_gc_passes(),
        ChainState(
            params,
            folder,
            dbcache_mb=dbcache_mb,
            assume_valid=resolve_assume_valid(assume_valid, params),
            script_workers=script_workers,
            reindex=reindex,
            reindex_chainstate=reindex_chainstate,
        ) as chain,
    ):
        # With script workers, a block's scripts are checked while the next blocks connect; a
        # failure then surfaces a few blocks later, as ``last_error`` naming the failed block.
        chain.defer_scripts = chain.pool is not None
        chain.last_error = None

        def result(
            error: str | None = None,
            error_height: int | None = None,
            unconnected: Unconnected | None = None,
        ) -> ImportResult:
            return ImportResult(
                n, chain.height, chain.tip.header.hash_hex, time.perf_counter() - start,
                error, error_height, unconnected,
            )  # fmt: skip

        def failed_block() -> ImportResult | None:
            failed = chain.last_error
            return None if failed is None else result(str(failed[1]), failed[0].height)

        last_report = start
        for block in read_blocks(path, params.magic):
            n += 1
            try:
                if chain.accept_block(block) is None:
                    waiting[block.hash] = block.header.prev_hash
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
        if (failure := failed_block()) is not None:
            return failure
        left = [h for h in waiting if not _stored(chain, h)]
        for h in left:
            if h in chain.orphan_errors:  # rejected once its parent arrived
                height, rejection = chain.orphan_errors[h]
                return result(str(rejection), height)
        if left:
            return result(unconnected=_first_unconnected(chain, left, waiting))
        return result()


def _stored(chain: ChainState, block_hash: bytes) -> bool:
    e = chain.index.get(block_hash)
    return e is not None and bool(e.status & HAVE_DATA)


def _first_unconnected(
    chain: ChainState, left: list[bytes], waiting: dict[bytes, bytes]
) -> Unconnected:
    """The block at the root of the first unconnected run: from the first such block in file
    order, step back through parents that are themselves unconnected blocks of the file."""
    pending = set(left)
    h = left[0]
    for _ in range(len(pending)):
        parent = waiting[h]
        if parent not in pending:
            break
        h = parent
    parent = waiting[h]
    return Unconnected(len(left), h[::-1].hex(), parent[::-1].hex(), _stored(chain, parent))


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
