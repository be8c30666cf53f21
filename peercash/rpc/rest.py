"""Core's unauthenticated REST interface (``--rest``), read-only, over ``NodeServices``.

Endpoints (``<ext>`` is ``bin``, ``hex`` or ``json``), as Core's ``rest.cpp``:

- ``/rest/chaininfo.json``
- ``/rest/block/<hash>.<ext>`` and ``/rest/block/notxdetails/<hash>.<ext>``
- ``/rest/tx/<txid>.<ext>`` (mempool or transaction index only: 404 otherwise, as Core)
- ``/rest/headers/<hash>.<ext>?count=<n>`` and the older ``/rest/headers/<n>/<hash>.<ext>``
- ``/rest/blockhashbyheight/<height>.<ext>``
- ``/rest/getutxos[/checkmempool]/<txid>-<n>/….<ext>``
- ``/rest/mempool/info.json`` and ``/rest/mempool/contents.json[?verbose=…&mempool_sequence=…]``

Errors are plain text with Core's statuses: 400 for a malformed request, 404 for an unknown
object or format, 503 while the node is loading. JSON bodies come from the RPC method modules'
builders (``blockchain.header_to_json``/``block_to_json``, ``rawtransactions.tx_to_json``).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from peercash.chain.index import HAVE_DATA, BlockIndexEntry
from peercash.consensus.primitives import OutPoint, Tx
from peercash.consensus.serialize import compact_size

from .blockchain import block_to_json, getblockchaininfo, header_to_json
from .context import mempool_spends, optional_mempool
from .jsonrpc import dumps
from .mempool import ensure_mempool, mempool_info_json, mempool_to_json
from .rawtransactions import tx_to_json
from .registry import RPC_IN_WARMUP, RpcError
from .services import NodeServices
from .util import btc, script_to_json
from .workqueue import WorkQueueFull

MAX_GETUTXOS_OUTPOINTS = 15
MAX_REST_HEADERS_RESULTS = 2000
DEFAULT_HEADERS_COUNT = 5
FORMATS = ("bin", "hex", "json")
_FORMATS_TEXT = ", ".join("." + f for f in FORMATS)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SyncHandler = Callable[[web.Request], web.Response]
RunWork = Callable[..., Awaitable[Any]]


class RestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\r\n", content_type="text/plain")


def split_format(tail: str) -> tuple[str, str]:
    """``"abc.json"`` -> ``("abc", "json")``; an unknown format is a 404 as in Core."""
    base, dot, ext = tail.rpartition(".")
    if not dot or ext not in FORMATS:
        raise RestError(404, f"output format not found (available: {_FORMATS_TEXT})")
    return base, ext


def parse_hash(text: str, what: str = "hash") -> bytes:
    if len(text) != 64 or not all(c in "0123456789abcdefABCDEF" for c in text):
        raise RestError(400, f"Invalid {what}: {text}")
    return bytes.fromhex(text)[::-1]


def _reply(ext: str, raw: bytes, json_value: Any) -> web.Response:
    if ext == "bin":
        return web.Response(body=raw, content_type="application/octet-stream")
    if ext == "hex":
        return web.Response(text=raw.hex() + "\n", content_type="text/plain")
    return web.Response(text=dumps(json_value) + "\n", content_type="application/json")


# -- handlers -----------------------------------------------------------------------------------


class Rest:
    def __init__(self, node: NodeServices) -> None:
        self.node = node

    def _check_warmup(self) -> None:
        if self.node.warmup:
            raise RestError(503, f"Service temporarily unavailable: {self.node.warmup_message}")

    def _entry(self, block_hash: bytes, text: str) -> BlockIndexEntry:
        e = self.node.chain.index.get(block_hash)
        if e is None or not e.status & HAVE_DATA:
            raise RestError(404, f"{text} not found")
        return e

    def block(self, request: web.Request, verbosity: int) -> web.Response:
        self._check_warmup()
        text, ext = split_format(request.match_info["tail"])
        e = self._entry(parse_hash(text), text)
        block = self.node.chain.read_block(e)
        raw = block.serialize()
        if ext != "json":
            return _reply(ext, raw, None)
        return _reply(ext, raw, block_to_json(self.node, block, e, verbosity))

    def block_full(self, request: web.Request) -> web.Response:
        return self.block(request, 3)  # Core: details and prevouts

    def block_notxdetails(self, request: web.Request) -> web.Response:
        return self.block(request, 1)

    def tx(self, request: web.Request) -> web.Response:
        self._check_warmup()
        text, ext = split_format(request.match_info["tail"])
        txid = parse_hash(text)
        found = self._find_tx(txid)
        if found is None:
            raise RestError(404, f"{text} not found")
        tx, block_hash = found
        raw = tx.serialize()
        return _reply(
            ext, raw, tx_to_json(tx, self.node.params, block_hash) if ext == "json" else None
        )

    def _find_tx(self, txid: bytes) -> tuple[Tx, bytes | None] | None:
        pool = self.node.mempool
        get = getattr(pool, "get", None)
        if callable(get):
            tx = get(txid)
            if isinstance(tx, Tx):
                return tx, None
        index = self.node.txindex
        lookup = getattr(index, "lookup", None)
        if callable(lookup):
            hit = lookup(txid)
            if hit:
                block_hash = hit[0]
                e = self.node.chain.index.get(block_hash)
                if e is not None and e.status & HAVE_DATA:
                    for tx in self.node.chain.read_block(e).txs:
                        if tx.txid == txid:
                            return tx, block_hash
        return None

    def headers(self, request: web.Request) -> web.Response:
        self._check_warmup()
        parts = request.match_info["tail"].split("/")
        if len(parts) == 2:  # deprecated /rest/headers/<count>/<hash>.<ext>
            count_text = parts[0]
            text, ext = split_format(parts[1])
        elif len(parts) == 1:
            text, ext = split_format(parts[0])
            count_text = request.query.get("count", str(DEFAULT_HEADERS_COUNT))
        else:
            raise RestError(
                400, "Invalid URI format. Expected /rest/headers/<hash>.<ext>?count=<count>"
            )
        try:
            count = int(count_text, 10)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_REST_HEADERS_RESULTS:
            raise RestError(
                400,
                "Header count is invalid or out of acceptable range "
                f"(1-{MAX_REST_HEADERS_RESULTS}): {count_text}",
            )
        block_hash = parse_hash(text)
        chain = self.node.chain
        found: list[BlockIndexEntry] = []
        e = chain.index.get(block_hash)
        while e is not None and chain.contains(e):
            found.append(e)
            if len(found) == count:
                break
            e = chain.entry_at(e.height + 1)
        raw = b"".join(x.header.serialize() for x in found)
        if ext != "json":
            return _reply(ext, raw, None)
        return _reply(ext, raw, [header_to_json(self.node, x) for x in found])

    def chaininfo(self, request: web.Request) -> web.Response:
        self._check_warmup()
        _, ext = split_format(request.match_info["tail"])
        if ext != "json":
            raise RestError(404, "output format not supported (available: json)")
        info = getblockchaininfo(self.node)
        return _reply("json", b"", info)

    def blockhash_by_height(self, request: web.Request) -> web.Response:
        self._check_warmup()
        text, ext = split_format(request.match_info["tail"])
        try:
            height = int(text, 10)
        except ValueError:
            height = -1
        if height < 0 or not text.isdigit():
            raise RestError(400, f"Invalid height: {text}")
        e = self.node.chain.entry_at(height)
        if e is None:
            raise RestError(404, "Block height out of range")
        if ext == "hex":
            return web.Response(text=e.header.hash_hex + "\n", content_type="text/plain")
        return _reply(ext, e.hash, {"blockhash": e.header.hash_hex})

    def getutxos(self, request: web.Request) -> web.Response:
        self._check_warmup()
        body, ext = split_format(request.match_info["tail"])
        parts = [p for p in body.split("/") if p]
        check_mempool = bool(parts) and parts[0] == "checkmempool"
        if check_mempool:
            parts = parts[1:]
        outpoints: list[tuple[bytes, int]] = []
        for p in parts:
            txid_text, dash, n_text = p.partition("-")
            if not dash or not n_text.isdigit():
                raise RestError(400, "Parse error")
            try:
                txid = parse_hash(txid_text)
            except RestError:
                raise RestError(400, "Parse error") from None
            outpoints.append((txid, int(n_text)))
        if not outpoints:
            raise RestError(400, "Error: empty request")
        if len(outpoints) > MAX_GETUTXOS_OUTPOINTS:
            raise RestError(
                400,
                f"Error: max outpoints exceeded (max: {MAX_GETUTXOS_OUTPOINTS}, "
                f"tried: {len(outpoints)})",
            )
        chain = self.node.chain
        pool = optional_mempool(self.node) if check_mempool else None
        hits: list[bool] = []
        coins = []
        for txid, n in outpoints:
            coin = chain.get_coin(txid, n)
            if coin is not None and pool is not None and mempool_spends(pool, OutPoint(txid, n)):
                coin = None
            hits.append(coin is not None)
            if coin is not None:
                coins.append(coin)
        bitmap = bytearray((len(hits) + 7) // 8)
        for i, hit in enumerate(hits):
            if hit:
                bitmap[i // 8] |= 1 << (i % 8)
        tip = chain.tip
        raw = (
            struct.pack("<i", chain.height)
            + tip.hash
            + compact_size(len(bitmap))
            + bytes(bitmap)
            + compact_size(len(coins))
            + b"".join(struct.pack("<II", 0, c.height) + c.txout.serialize() for c in coins)
        )
        if ext != "json":
            return _reply(ext, raw, None)
        value = {
            "chainHeight": chain.height,
            "chaintipHash": tip.header.hash_hex,
            "bitmap": "".join("1" if h else "0" for h in hits),
            "utxos": [
                {
                    "height": c.height,
                    "value": btc(c.txout.value),
                    "scriptPubKey": script_to_json(c.txout.script_pubkey, self.node.params),
                }
                for c in coins
            ],
        }
        return _reply(ext, raw, value)

    def mempool(self, request: web.Request) -> web.Response:
        """Core's ``rest_mempool``: getmempoolinfo or getrawmempool as JSON."""
        self._check_warmup()
        what, ext = split_format(request.match_info["tail"])
        if what not in ("contents", "info"):
            raise RestError(400, "Invalid URI format. Expected /rest/mempool/<info|contents>.json")
        if ext != "json":
            raise RestError(404, "output format not supported (available: json)")
        try:
            pool = ensure_mempool(self.node)
        except RpcError as e:
            raise RestError(404, e.message) from None
        if what == "info":
            return _reply("json", b"", mempool_info_json(pool))
        verbose = request.query.get("verbose", "true")
        if verbose not in ("true", "false"):
            raise RestError(400, 'The "verbose" query parameter must be either "true" or "false".')
        sequence = request.query.get("mempool_sequence", "false")
        if sequence not in ("true", "false"):
            raise RestError(
                400, 'The "mempool_sequence" query parameter must be either "true" or "false".'
            )
        if verbose == "true" and sequence == "true":
            raise RestError(
                400,
                'Verbose results cannot contain mempool sequence values. (hint: set "verbose=false")',
            )
        return _reply("json", b"", mempool_to_json(pool, verbose == "true", sequence == "true"))


def _wrap(handler: SyncHandler, node: NodeServices, run_work: RunWork) -> Handler:
    """Serve ``handler`` on the RPC work queue, with the chain lock held."""

    def locked(request: web.Request) -> web.Response:
        try:
            with node.chain_lock:
                return handler(request)
        except RestError as e:
            return _error(e.status, e.message)
        except RpcError as e:  # the chain is not loaded yet, or similar
            return _error(503 if e.code == RPC_IN_WARMUP else 500, e.message)

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            response: web.Response = await run_work(locked, request)
        except WorkQueueFull:
            return _error(503, "Work queue depth exceeded")
        return response

    return run


def add_rest_routes(app: web.Application, node: NodeServices, run_work: RunWork) -> None:
    rest = Rest(node)
    routes = [
        ("/rest/chaininfo{tail:\\.[a-z]+}", rest.chaininfo),
        ("/rest/block/notxdetails/{tail:[^/]+}", rest.block_notxdetails),
        ("/rest/block/{tail:[^/]+}", rest.block_full),
        ("/rest/tx/{tail:[^/]+}", rest.tx),
        ("/rest/headers/{tail:.+}", rest.headers),
        ("/rest/blockhashbyheight/{tail:[^/]+}", rest.blockhash_by_height),
        ("/rest/getutxos{tail:.*}", rest.getutxos),
        ("/rest/mempool/{tail:[^/]+}", rest.mempool),
    ]
    for path, handler in routes:
        app.router.add_get(path, _wrap(handler, node, run_work))
