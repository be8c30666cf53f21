"""End to end, as a user of Bitcoin Core would drive it: a real node process, plain HTTP JSON-RPC
written from Core's documentation (not our client), and ``peercash cli``.

Mines 110 blocks to the P2WSH of OP_TRUE, reads them back every way, stops, restarts and finds
the same tip.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from peercash.tools.nodeproc import NodeProcess, peercash_command

ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
SCRIPT = "00204ae81572f06e1b88fd5ced7a1a000945432e83e1551e6f721ee9c00b8cc33260"


class PlainRpc:
    """A minimal JSON-RPC 1.0 client over urllib, with the cookie Core's docs describe."""

    def __init__(self, port: int, cookie: Path) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.auth = "Basic " + base64.b64encode(cookie.read_bytes().strip()).decode()

    def __call__(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "1.0", "id": "e2e", "method": method, "params": list(params)})
        req = urllib.request.Request(
            self.url,
            body.encode(),
            {"Authorization": self.auth, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            reply = json.loads(resp.read(), parse_float=Decimal)
        assert reply["error"] is None, reply
        assert reply["id"] == "e2e"
        return reply["result"]


def _cli(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        peercash_command(
            "cli",
            "--network",
            "regtest",
            "--datadir",
            str(node.datadir),
            "--rpcport",
            str(node.rpcport),
            *args,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_mine_110_blocks_read_back_stop_restart(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path).start()
    try:
        rpc = PlainRpc(node.rpcport, node.cookie_path)
        hashes = rpc("generatetoaddress", 110, ADDRESS)
        assert len(hashes) == 110 and len(set(hashes)) == 110
        assert rpc("getblockcount") == 110
        assert rpc("getbestblockhash") == hashes[-1]

        info = rpc("getblockchaininfo")
        assert info["chain"] == "regtest" and info["blocks"] == 110
        assert info["bestblockhash"] == hashes[-1]

        prev = rpc("getblockhash", 0)
        for height, block_hash in enumerate(hashes, 1):
            assert rpc("getblockhash", height) == block_hash
            header = rpc("getblockheader", block_hash)
            assert header["height"] == height
            assert header["previousblockhash"] == prev
            assert header["confirmations"] == 110 - height + 1
            raw_header = rpc("getblockheader", block_hash, False)
            assert len(raw_header) == 160
            block = rpc("getblock", block_hash, 1)
            assert block["hash"] == block_hash and block["merkleroot"] == header["merkleroot"]
            assert len(block["tx"]) == 1
            prev = block_hash
        # Every verbosity of one block agrees with the others.
        raw = rpc("getblock", hashes[0], 0)
        v1 = rpc("getblock", hashes[0], 1)
        v2 = rpc("getblock", hashes[0], 2)
        v3 = rpc("getblock", hashes[0], 3)
        assert raw[:160] == rpc("getblockheader", hashes[0], False)
        assert v2["tx"][0]["txid"] == v1["tx"][0] == v3["tx"][0]["txid"]
        coinbase = v2["tx"][0]
        assert coinbase["vout"][0]["value"] == Decimal("50.00000000")
        assert coinbase["vout"][0]["scriptPubKey"]["address"] == ADDRESS
        assert coinbase["vout"][0]["scriptPubKey"]["hex"] == SCRIPT
        # The coinbase of block 1 is unspent and mature; the UTXO set holds 110 of them.
        txout = rpc("gettxout", coinbase["txid"], 0)
        assert txout["value"] == Decimal("50.00000000") and txout["coinbase"] is True
        assert txout["confirmations"] == 110
        utxos = rpc("gettxoutsetinfo", "muhash")
        assert utxos["height"] == 110 and utxos["txouts"] >= 110
        assert utxos["total_amount"] == sum(Decimal(50) / (2 ** (h // 150)) for h in range(1, 111))
        tips = rpc("getchaintips")
        assert tips == [{"height": 110, "hash": hashes[-1], "branchlen": 0, "status": "active"}]
        decoded = rpc(
            "decoderawtransaction", rpc("getrawtransaction", coinbase["txid"], 0, hashes[0])
        )
        assert decoded["txid"] == coinbase["txid"]
        assert rpc("validateaddress", ADDRESS)["scriptPubKey"] == SCRIPT

        # The same through peercash cli, which prints like bitcoin-cli.
        r = _cli(node, "getbestblockhash")
        assert (r.returncode, r.stdout) == (0, hashes[-1] + "\n")
        r = _cli(node, "getblockheader", hashes[5])
        assert r.returncode == 0 and json.loads(r.stdout)["height"] == 6
        r = _cli(node, "getblockhash", "1000")
        assert r.returncode != 0 and "error code: -8" in r.stderr

        r = _cli(node, "stop")
        assert r.returncode == 0
        assert node.wait_exit(60) == 0
    finally:
        node.kill()

    again = NodeProcess(tmp_path, rpcport=node.rpcport, port=node.port).start()
    with again:
        rpc = PlainRpc(again.rpcport, again.cookie_path)
        assert rpc("getblockcount") == 110
        assert rpc("getbestblockhash") == hashes[-1]
        assert rpc("getblockhash", 55) == hashes[54]


@pytest.mark.slow
def test_txindex_finds_confirmed_transactions_across_restarts(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, extra_args=["--txindex"]).start()
    try:
        rpc = PlainRpc(node.rpcport, node.cookie_path)
        hashes = rpc("generatetoaddress", 3, ADDRESS)
        txid = rpc("getblock", hashes[1])["tx"][0]
        tx = rpc("getrawtransaction", txid, 1)
        assert tx["txid"] == txid and tx["blockhash"] == hashes[1]
        assert rpc("getindexinfo")["txindex"]["synced"] is True
        node.stop()
    finally:
        node.kill()
    again = NodeProcess(tmp_path, extra_args=["--txindex"]).start()
    with again:
        rpc = PlainRpc(again.rpcport, again.cookie_path)
        more = rpc("generatetoaddress", 2, ADDRESS)
        assert rpc("getrawtransaction", txid, 1)["blockhash"] == hashes[1]
        new_txid = rpc("getblock", more[-1])["tx"][0]
        assert rpc("getrawtransaction", new_txid, 1)["blockhash"] == more[-1]
        assert rpc("getindexinfo")["txindex"]["best_block_height"] == 5
