"""Durable progress on real node processes: what an RPC reported as mined survives SIGKILL, the
UTXO set is flushed on a timer, and a second signal during shutdown loses nothing (issue #9).

Every process a test starts is stopped by the test (``with NodeProcess(...)``), also when it
fails.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from peercash.tools.nodeproc import NodeProcess, RpcCallError

ADDRESS = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
RECONNECTED = re.compile(r"Reconnected (\d+) blocks stored after the last UTXO set flush")

pytestmark = pytest.mark.slow


def _reconnected(node: NodeProcess) -> list[int]:
    """The start-up reports of blocks connected again after an unflushed stop, in order."""
    text = (node.net_datadir / "debug.log").read_text(errors="replace")
    return [int(m.group(1)) for m in RECONNECTED.finditer(text)]


def _check_consistent(node: NodeProcess) -> dict[str, object]:
    """The node agrees with itself: verifychain passes and the UTXO set is at the tip."""
    assert node.call("verifychain", 4, 0) is True
    info = node.call("gettxoutsetinfo", "muhash")
    assert info["height"] == node.call("getblockcount")
    assert info["bestblock"] == node.call("getbestblockhash")
    return info


def test_sigkill_right_after_generate_keeps_every_reported_block(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n")
    with node:
        node.start()
        hashes = node.call("generatetoaddress", 500, ADDRESS)
        assert len(hashes) == 500
        node.kill()  # SIGKILL: no shutdown flush
        node.start()
        assert node.call("getblockcount") == 500
        assert node.call("getbestblockhash") == hashes[-1]
        assert node.call("getblockhash", 250) == hashes[249]
        # The UTXO set had not been flushed (interval 60 s): start-up connected them again.
        assert _reconnected(node) == [500]
        info = _check_consistent(node)
        assert info["txouts"] == 500


def test_sigkill_during_mining_loses_at_most_the_flush_interval(tmp_path: Path) -> None:
    """20 kills at random moments of a mining run; after each restart every block any call
    reported is there, the node is consistent, and the blocks redone at start-up are no more
    than were mined in about one flush interval."""
    rng = random.Random(9)
    node = NodeProcess(tmp_path / "n", extra_args=["--flushinterval=1"])
    reported = 0  # the highest height a finished call reported
    kills = 0
    with node:
        node.start()
        for _ in range(20):
            stop = threading.Event()
            heights: list[int] = []
            rates: list[float] = []

            def mine(stop: threading.Event = stop, heights: list[int] = heights,
                     rates: list[float] = rates) -> None:  # fmt: skip
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        hashes = node.call("generatetoaddress", 20, ADDRESS)
                        rates.append(len(hashes) / (time.monotonic() - started))
                        heights.append(node.call("getblockcount"))
                    except (OSError, RpcCallError, ValueError):
                        return  # the node was killed under the call

            miner = threading.Thread(target=mine)
            miner.start()
            time.sleep(rng.uniform(0.5, 2.5))
            node.kill()
            kills += 1
            stop.set()
            miner.join(30)
            assert not miner.is_alive()
            if heights:
                reported = max(reported, *heights)
            node.start()
            height = node.call("getblockcount")
            assert height >= reported
            _check_consistent(node)
            redone = _reconnected(node)
            if rates and redone:
                # At most the blocks of one interval (1 s) plus the flush's own time and the
                # call in progress; the interval is what bounds it, not the run's length.
                assert redone[-1] <= max(rates) * 2.0 + 40, (redone, max(rates))
            reported = height
    assert kills == 20
    assert reported > 0


def test_second_signal_during_shutdown_loses_nothing_reported(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n")
    with node:
        node.start()
        hashes = node.call("generatetoaddress", 300, ADDRESS)
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)
        node.proc.send_signal(signal.SIGTERM)  # impatient user: exits at once
        code = node.wait_exit(30)
        # 1: the second signal's forced exit; -15: it came after the handlers were gone, late
        # in shutdown; 0: shutdown had finished first.
        assert code in (0, 1, -signal.SIGTERM)
        node.start()
        assert node.call("getblockcount") == 300
        assert node.call("getbestblockhash") == hashes[-1]
        _check_consistent(node)
        assert node.stop() == 0
        node.start()
        assert node.call("getblockcount") == 300
