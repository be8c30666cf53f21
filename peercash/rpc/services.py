"""``NodeServices``: the one object RPC methods and REST handlers see of the node.

``node.py`` builds it and keeps it current; methods reach the chain, parameters, configuration
and a few node controls through it, never through a global. It stays small: add an attribute
when a method group needs a new part of the node (a mempool, a connection manager), wired by
``node.py``.

Concurrency: RPC methods run on worker threads. The chain state is not thread-safe: whoever
touches it holds ``chain_lock`` (the RPC layer takes it around each call; the node around its
flushes). The other attributes are set by ``node.py`` before calls are served.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from peercash.chain.locking import ChainLock
from peercash.consensus.params import NetworkParams

from .registry import RPC_IN_WARMUP, RpcError

if TYPE_CHECKING:
    from peercash.chain.chainstate import ChainState
    from peercash.config import Config
    from peercash.looplag import LoopLagMonitor
    from peercash.p2p.connman import ConnectionManager


class LogSwitch(Protocol):
    """Run-time control of the debug log categories (``peercash.log.LogControl``)."""

    path: Path | None

    def categories(self) -> dict[str, bool]: ...

    def set(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> dict[str, bool]: ...


@dataclass
class ActiveCommand:
    method: str
    started: float  # time.monotonic()


class NodeServices:
    """The node as RPC sees it."""

    def __init__(
        self,
        params: NetworkParams,
        config: Config,
        datadir: Path,
        *,
        request_stop: Callable[[], None],
        log: LogSwitch | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.params = params
        self.config = config
        self.datadir = datadir
        """The network's data directory (where ``.cookie`` and ``debug.log`` live)."""
        self.start_time = clock()
        self._clock = clock
        self._request_stop = request_stop
        self.log = log
        self.chain_lock = ChainLock()
        """Held by whoever reads or changes the chain state (Core's ``cs_main``)."""
        self._chain: ChainState | None = None
        self.warmup = True
        self.warmup_message = "Loading block index…"
        self.active_commands: dict[int, ActiveCommand] = {}
        """In-flight RPC calls by a per-call number (for ``getrpcinfo``)."""
        # Optional parts (``rpc.context.optional_txindex`` / ``optional_mempool``): None until
        # the node has them.
        self.txindex: object | None = None
        self.mempool: object | None = None
        self.fee_estimator: object | None = None
        self.wallets: object | None = None
        """The ``WalletManager`` (``rpc.walletutil``); None with ``-disablewallet``."""
        """The fee estimator (``rpc.fees``); None without a mempool or with ``-blocksonly``."""
        self.connman: ConnectionManager | None = None
        """The P2P connection manager (``rpc.net``); it lives on the event loop thread, so
        methods reach it only through ``connman.run_threadsafe``."""
        self.is_initial_block_download: Callable[[], bool] | None = None
        """The sync manager's IBD state (``getblockchaininfo``); None: judged from the tip."""
        self.loop_lag: LoopLagMonitor | None = None
        """The event loop's lag monitor (the hidden ``getlooplag``); None until P2P starts."""

    @property
    def network(self) -> str:
        return self.params.name

    @property
    def chain(self) -> ChainState:
        """The chain state; raises RPC_IN_WARMUP while it is still loading."""
        if self._chain is None:
            raise RpcError(RPC_IN_WARMUP, self.warmup_message)
        return self._chain

    def set_chain(self, chain: ChainState) -> None:
        self._chain = chain

    def set_warmup(self, message: str | None) -> None:
        """``None`` ends the warm-up; a message keeps (or puts) RPC in it."""
        if message is None:
            self.warmup = False
            self.warmup_message = "Done loading"
        else:
            self.warmup = True
            self.warmup_message = message

    @property
    def shutting_down(self) -> bool:
        """Whether the node is stopping: long calls (mining) end early when it is."""
        return self.warmup and self.warmup_message == "Shutting down"

    def uptime(self) -> int:
        return int(self._clock() - self.start_time)

    def request_stop(self) -> None:
        """Ask the node to shut down gracefully (returns at once)."""
        self._request_stop()

    def log_categories(self) -> dict[str, bool]:
        return self.log.categories() if self.log is not None else {}

    def set_log_categories(
        self, include: Iterable[str] = (), exclude: Iterable[str] = ()
    ) -> dict[str, bool]:
        """Raises ``ValueError`` (``peercash.log.UnknownCategoryError``) for an unknown name."""
        if self.log is None:
            return {}
        return self.log.set(include, exclude)
