"""The composition root: ``Node(config).run()`` builds every part of a node and wires them.

Start-up, in order: take the data directory's lock (a second process on the same directory exits
at once), open ``debug.log``, start the RPC server in warm-up (every call answers -28 "Loading
block index…"), open the chain state, end the warm-up. Shutdown — SIGINT, SIGTERM or the
``stop`` RPC — stops accepting connections, lets calls in flight finish (a long mining call
ends after its current block), flushes the chain state, deletes ``.cookie`` and releases the
lock; if that takes longer than ``shutdown_timeout`` the process exits anyway (a second signal
exits at once). Either way the data stays consistent: every write is ordered so that a process
killed at any instant restarts into a consistent tip, and blocks an RPC reported as mined were
made durable before it answered.

Durability: the UTXO set is flushed every ``-flushinterval`` seconds (and when the cache is
full); blocks and the block index are made durable when an RPC reports a block, so a kill costs
at most the interval's worth of UTXO work, redone at start-up from the stored blocks.

P2P: once the chain is loaded (only then are peers accepted) the connection manager starts, with
the address book from ``peers.dat`` (saved every 15 minutes and at shutdown) and the bans from
``banlist.json``; the sync layer plugs in as its message handler (``Node(p2p_handler=…)``; until
then the default handler answers only what the connection layer must). At shutdown it stops
first, before the RPC server and the chain.

Mempool: built once the chain is loaded (``--maxmempool``, ``--minrelaytxfee`` and the other
policy options), filled from ``mempool.dat`` (``--persistmempool``, on by default) before the
warm-up ends and saved at a clean shutdown; a connected block removes its transactions and their
conflicts, transactions of disconnected blocks return when the new tip is announced, and the
flush timer expires old ones. It is ``services.mempool`` for RPC; like the chain, it is touched
only with ``services.chain_lock`` held.

Fee estimation (not with ``--blocksonly``, as in Core): the estimator is read from
``fee_estimates.dat`` (ignored when corrupt, or older than 60 hours unless
``--acceptstalefeeestimates``) before ``mempool.dat``, learns from the pool and the connected
blocks (``mempool.feefeed``), is saved every hour and, after counting what is still waiting in
the pool as unconfirmed, at shutdown. It is ``services.fee_estimator`` for RPC, under the chain
lock too.

Threads: the chain state is not thread-safe; whoever touches it holds ``services.chain_lock``
(RPC worker threads for each call, the flush timer, shutdown). It is opened on a worker thread
while RPC is in warm-up (no one else can touch it then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peercash.atomicfile import write_atomic
from peercash.chain.chainstate import ChainState
from peercash.chain.datadir import DataDirLock
from peercash.chain.errors import ChainError
from peercash.chain.scriptcheck import script_workers
from peercash.config import Config, parse_rpcauth
from peercash.consensus.params import get_params
from peercash.log import LogControl, setup_logging
from peercash.looplag import LoopLagMonitor
from peercash.mempool.chainview import ChainStateView
from peercash.mempool.feefeed import MAX_FEE_ESTIMATION_TIP_AGE, FeeEstimatorFeed
from peercash.mempool.fees import FEE_ESTIMATES_FILENAME, FEE_FLUSH_INTERVAL, BlockPolicyEstimator
from peercash.mempool.pool import MemPool
from peercash.nodewallet import NodeChainClient
from peercash.p2p.addrman import PEERS_FILE_NAME, AddrMan
from peercash.p2p.banman import BANLIST_FILE, BanMan
from peercash.p2p.connman import ConnectionManager, ConnOptions, DefaultHandler, MessageHandler
from peercash.p2p.peer import Peer, PeerTimeouts
from peercash.p2p.permissions import Permissions, parse_whitebind
from peercash.p2p.sync import SyncManager
from peercash.p2p.txrelay import TxRelay
from peercash.rpc import control, methods  # noqa: F401  (importing registers the methods)
from peercash.rpc.auth import RpcAuth, delete_cookie, write_cookie
from peercash.rpc.blockchain import initial_block_download
from peercash.rpc.mempool import MEMPOOL_FILE_NAME, track_sequence
from peercash.rpc.server import RpcServer
from peercash.rpc.services import NodeServices
from peercash.wallet.feepolicy import FeePolicy
from peercash.wallet.manager import WalletManager
from peercash.wallet.spend import Resubmitter

if TYPE_CHECKING:
    from peercash.chain.index import BlockIndexEntry
    from peercash.chain.txindex import TxIndex
    from peercash.consensus.primitives import Block, Tx

log = logging.getLogger("peercash.node")

DEFAULT_SHUTDOWN_TIMEOUT = 30.0
PEERS_SAVE_INTERVAL = 15 * 60.0  # seconds between peers.dat saves (Core's DUMP_PEERS_INTERVAL)


class NodeError(Exception):
    """A start-up failure; the message is for the user."""


class Node:
    """One node process."""

    def __init__(
        self,
        config: Config,
        *,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        p2p_handler: MessageHandler | None = None,
    ) -> None:
        self.config = config
        self.params = get_params(config.network)
        self.datadir = config.network_datadir
        self.shutdown_timeout = shutdown_timeout
        self.chain: ChainState | None = None
        self.services: NodeServices | None = None
        self.txindex: TxIndex | None = None
        self.server: RpcServer | None = None
        self._lock = DataDirLock(self.datadir)
        self.wallets: WalletManager | None = None
        self.wallet_client: NodeChainClient | None = None
        self.resubmitter: Resubmitter | None = None
        self._log: LogControl | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cookie: Path | None = None
        self._stopping = False
        self._flusher: asyncio.Task[None] | None = None
        self._p2p_handler = p2p_handler
        self.addrman: AddrMan | None = None
        self.connman: ConnectionManager | None = None
        self.sync: SyncManager[Peer] | None = None
        self._peers_saver: asyncio.Task[None] | None = None
        self.loop_lag = LoopLagMonitor()  # the hidden ``getlooplag``
        self.mempool: MemPool | None = None
        self._reorg_txs: list[Tx] = []
        """Transactions of disconnected blocks waiting to go back into the pool."""
        self.fee_estimator: BlockPolicyEstimator | None = None
        self.fee_feed: FeeEstimatorFeed | None = None
        self.fee_flush_interval = float(FEE_FLUSH_INTERVAL)
        """Seconds between saves of ``fee_estimates.dat`` (Core's hourly ``FlushFeeEstimates``)."""
        self._fee_saver: asyncio.Task[None] | None = None
        self._disconnected = False
        """A block was disconnected since the pool last caught up with the tip."""

    # -- entry point ----------------------------------------------------------------------

    def run(self) -> int:
        """Run until shut down; returns the process exit code. Raises ``NodeError`` for a
        start-up failure the user must fix (lock held, ports in use, bad data)."""
        try:
            self.datadir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NodeError(f"Cannot create data directory {self.datadir}: {e}") from None
        try:
            self._lock.acquire()
        except ChainError as e:  # held by another process, or not ours to write
            raise NodeError(str(e)) from None
        try:
            self._log = setup_logging(
                self.datadir, self.config.debug, printtoconsole=self.config.printtoconsole
            )
            for w in self.config.warnings:
                log.warning("%s", w)
            return asyncio.run(self._main())
        finally:
            if self._log is not None:
                self._log.close()
            self._lock.release()

    def request_stop(self) -> None:
        """Ask the node to shut down; safe from any thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # -- the main loop --------------------------------------------------------------------

    async def _main(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        log.info(
            "peercash starting: network %s, data directory %s", self.config.network, self.datadir
        )
        try:
            services = NodeServices(
                self.params,
                self.config,
                self.datadir,
                request_stop=self._stop_soon,
                log=self._log,
            )
            self.services = services
            self.server = RpcServer(
                services,
                self._make_auth(),
                binds=self.config.rpcbind_addresses(),
                allowed=self.config.allowed_networks(),
                rest=self.config.rest,
                body_timeout=float(self.config.rpcservertimeout),
                shutdown_timeout=min(5.0, self.shutdown_timeout),
                threads=self.config.rpcthreads,
                work_queue_depth=self.config.rpcworkqueue,
            )
            try:
                await self.server.start()
            except OSError as e:
                raise NodeError(str(e)) from None
            await self._load_chain(services)
            if not self._stop.is_set():
                self.loop_lag.start()
                services.loop_lag = self.loop_lag
                await self._start_p2p(services)
                await self._start_wallets(services)
                services.set_warmup(None)
                log.info("Done loading; tip %s at height %d", self._tip_text(), self._height())
                self._flusher = asyncio.create_task(self._flush_periodically())
                if self.fee_estimator is not None:
                    self._fee_saver = asyncio.create_task(self._save_fee_estimates_periodically())
                await self._stop.wait()
            return 0
        finally:
            await self._shutdown()

    def _on_signal(self, sig: int) -> None:
        if self._stopping or (self._stop is not None and self._stop.is_set()):
            log.warning("second %s: exiting now", signal.Signals(sig).name)
            os._exit(1)
        log.info("%s received, shutting down", signal.Signals(sig).name)
        assert self._stop is not None
        self._stop.set()

    def _stop_soon(self) -> None:
        # The ``stop`` RPC: let its reply go out first.
        if self._loop is not None and self._stop is not None:
            self._loop.call_later(0.05, self._stop.set)

    def _make_auth(self) -> RpcAuth:
        auth = RpcAuth()
        cfg = self.config
        if not cfg.rpcpassword:
            self._cookie, text = write_cookie(self.datadir)
            user, _, password = text.partition(":")
            auth.add_password(user, password)
            log.info("Using random cookie authentication (%s)", self._cookie)
        else:
            auth.add_password(cfg.rpcuser or "", cfg.rpcpassword)
            log.info("Using rpcuser/rpcpassword authentication.")
        for entry in cfg.rpcauth:
            auth.add_rpcauth(*parse_rpcauth(entry))
        return auth

    async def _load_chain(self, services: NodeServices) -> None:
        cfg = self.config
        assume_valid = cfg.assume_valid_hash(self.params.default_assume_valid)

        def open_chain() -> ChainState:
            return ChainState(
                self.params,
                self.datadir,
                dbcache_mb=cfg.dbcache,
                assume_valid=assume_valid,
                script_workers=script_workers(cfg.par),
                reindex=cfg.reindex,
                reindex_chainstate=cfg.reindex_chainstate,
                lock=self._lock,  # held since start-up; released by run()
            )

        loop = asyncio.get_running_loop()
        try:
            # On a worker thread so RPC can answer "loading" meanwhile; shutdown waits for it.
            self.chain = await loop.run_in_executor(None, open_chain)
        except Exception as e:
            raise NodeError(f"Error opening the chain state in {self.datadir}: {e}") from e
        if cfg.txindex:
            from peercash.chain.txindex import TxIndex

            services.set_warmup("Syncing txindex…")
            chain = self.chain
            self.txindex = TxIndex(self.datadir / "indexes" / "txindex")
            await loop.run_in_executor(None, self.txindex.attach, chain)
            services.txindex = self.txindex
        services.set_chain(self.chain)
        await self._start_mempool(services)

    def make_mempool(self, chain: ChainState) -> MemPool:
        """The pool over ``chain`` with the configuration's policy (Core's option names)."""
        cfg = self.config
        return MemPool(
            ChainStateView(chain),
            max_size_bytes=cfg.maxmempool * 1_000_000,
            expiry_seconds=cfg.mempoolexpiry * 3600,
            min_relay_fee=cfg.minrelaytxfee,
            incremental_relay_fee=cfg.incrementalrelayfee,
            max_datacarrier_bytes=cfg.max_datacarrier_bytes,
            permit_bare_multisig=cfg.permitbaremultisig,
            require_standard=not cfg.acceptnonstdtxn,
            cluster_limit=cfg.limitclustercount,
            cluster_size_limit_kvb=cfg.limitclustersize,
        )

    async def _start_mempool(self, services: NodeServices) -> None:
        """Build the pool, subscribe it to the chain's events and load ``mempool.dat``.

        The chain calls its listeners inside its own operations, where they must not read the
        chain state: a connected block only removes transactions from the pool; transactions
        of disconnected blocks are queued and offered again when the tip is announced (the
        chain's last step, with the chain lock still held)."""
        chain = self.chain
        assert chain is not None
        pool = self.make_mempool(chain)
        track_sequence(pool)
        self.mempool = pool
        if not self.config.blocksonly:
            self._start_fee_estimation(services, pool)
        events = chain.events
        events.block_connected.append(self._on_block_connected)
        events.transactions_disconnected.append(self._reorg_txs.extend)
        events.block_disconnected.append(self._on_block_disconnected)
        events.tip_changed.append(self._on_tip_changed)
        if self.config.persistmempool:
            services.set_warmup("Loading mempool…")
            path = self.datadir / MEMPOOL_FILE_NAME

            def load() -> int:
                with services.chain_lock:
                    return pool.load(path)

            started = time.monotonic()
            count = await asyncio.get_running_loop().run_in_executor(None, load)
            log.info(
                "Loaded %d mempool transactions from %s in %.2f s",
                count,
                path,
                time.monotonic() - started,
            )
        else:
            pool.loaded = True
        services.mempool = pool

    async def _start_wallets(self, services: NodeServices) -> None:
        """Unless ``-disablewallet``: the wallet manager over a ``NodeChainClient``, with the
        ``-wallet`` names and ``settings.json``'s list loaded (a failure is a warning)."""
        if self.config.disablewallet or self.chain is None:
            return
        services.set_warmup("Loading wallet…")
        client = NodeChainClient(
            self.chain,
            self.mempool,
            services.chain_lock,
            fee_estimator=self.fee_estimator,
        )
        self.wallet_client = client
        cfg = self.config
        fees = FeePolicy(
            fallback_fee=cfg.fallbackfee,
            min_tx_fee=cfg.mintxfee,
            max_tx_fee=cfg.maxtxfee,
            min_relay_fee=cfg.minrelaytxfee,
            incremental_relay_fee=cfg.incrementalrelayfee,
            signal_rbf=cfg.walletrbf,
        )
        wallets = WalletManager(
            self.datadir / "wallets", self.params, client, keypool=cfg.keypool, fee_policy=fees
        )
        self.wallets = wallets
        names = list(self.config.wallet)
        warnings = await asyncio.get_running_loop().run_in_executor(
            None, wallets.load_startup, names
        )
        for warning in warnings:
            log.warning("%s", warning)
        services.wallets = wallets
        # Core's ResubmitWalletTransactions: every 12-36 h, our unconfirmed txs again.
        self.resubmitter = Resubmitter(lambda: list(wallets.wallets.values()))
        self.resubmitter.start()

    def _close_wallets(self) -> None:
        if self.resubmitter is not None:
            self.resubmitter.stop()
            self.resubmitter = None
        if self.services is not None:
            self.services.wallets = None
        if self.wallet_client is not None:
            self.wallet_client.sync()
        if self.wallets is not None:
            self.wallets.close_all()
            self.wallets = None
        if self.wallet_client is not None:
            self.wallet_client.close()
            self.wallet_client = None

    def _start_fee_estimation(self, services: NodeServices, pool: MemPool) -> None:
        """Read ``fee_estimates.dat`` and subscribe the estimator to the pool (Core builds its
        estimator before loading the mempool, so the loaded transactions are seen)."""
        path = self.datadir / FEE_ESTIMATES_FILENAME
        estimator = BlockPolicyEstimator.load(
            path, time.time(), accept_stale=self.config.acceptstalefeeestimates
        )
        self.fee_estimator = estimator
        self.fee_feed = FeeEstimatorFeed(estimator, pool, self._current_for_fee_estimation)
        services.fee_estimator = estimator

    def _current_for_fee_estimation(self) -> bool:
        """Core's ``IsCurrentForFeeEstimation`` (chain lock held): not in initial block
        download, a tip at most three hours old, at most one block behind the best header."""
        chain, services = self.chain, self.services
        if chain is None or services is None:
            return False
        if initial_block_download(services):
            return False
        if chain.tip.header.time < chain.validator.clock() - MAX_FEE_ESTIMATION_TIP_AGE:
            return False
        best = chain.best_header
        return best is None or chain.height >= best.height - 1

    def _on_block_connected(self, block: Block, entry: BlockIndexEntry) -> None:
        if self.mempool is not None:
            self.mempool.remove_for_block(block)
            if self.fee_feed is not None:
                self.fee_feed.block_connected(entry.height)

    def _on_block_disconnected(self, _block: Block, _entry: BlockIndexEntry) -> None:
        self._disconnected = True

    def _on_tip_changed(self, _entry: BlockIndexEntry) -> None:
        self._return_reorg_txs()

    def _return_reorg_txs(self) -> None:
        """Offer the queued transactions of disconnected blocks again, and drop what the new tip
        no longer allows (Core's MaybeUpdateMempoolForReorg, also after a disconnected block
        without transactions: a coinbase spend may have become immature). Chain lock held."""
        if (not self._reorg_txs and not self._disconnected) or self.mempool is None:
            return
        txs, self._reorg_txs = self._reorg_txs, []
        self._disconnected = False
        if self.fee_feed is not None:
            with self.fee_feed.returning_disconnected():
                self.mempool.add_after_reorg(txs)
        else:
            self.mempool.add_after_reorg(txs)

    def _maintain_mempool(self) -> None:
        """Expire old transactions and trim to ``-maxmempool`` (chain lock held)."""
        if self.mempool is None:
            return
        self._return_reorg_txs()
        expired = self.mempool.expire()
        if expired:
            log.debug("Expired %d mempool transactions", expired)
        self.mempool.trim_to_size()

    def _save_mempool(self) -> None:
        """Write ``mempool.dat`` (chain lock held); a failure is logged, never fatal."""
        if self.mempool is None or not self.config.persistmempool or not self.mempool.loaded:
            return
        path = self.datadir / MEMPOOL_FILE_NAME
        try:
            count = self.mempool.save(path)
        except OSError as e:
            log.warning("cannot write %s: %s", path, e)
        else:
            log.info("Saved %d mempool transactions to %s", count, path)

    async def _save_fee_estimates_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.fee_flush_interval)
            await loop.run_in_executor(None, self._save_fee_estimates)

    def _save_fee_estimates(self, *, shutdown: bool = False) -> None:
        """Write ``fee_estimates.dat`` (Core's ``FlushFeeEstimates``; at ``shutdown`` first count
        the transactions still tracked as having left unconfirmed, Core's ``Flush``). The
        estimates are serialized under the chain lock and written outside it (under it at
        shutdown, where the caller holds it). A failure is logged, never fatal."""
        estimator = self.fee_estimator
        if estimator is None or self.services is None:
            return
        path = self.datadir / FEE_ESTIMATES_FILENAME
        try:
            if shutdown:
                estimator.flush(path, time.time())
            else:
                with self.services.chain_lock:
                    data = estimator.to_bytes(time.time())
                write_atomic(path, data)
                log.info("Flushed fee estimates to %s.", path.name)
        except OSError as e:
            log.warning("Failed to write fee estimates to %s (%s). Continue anyway.", path, e)

    def conn_options(self) -> ConnOptions:
        """The connection manager's options from the configuration (Core's names)."""
        cfg = self.config
        return ConnOptions(
            port=cfg.port,
            listen=cfg.listen,
            binds=cfg.bind,
            max_connections=cfg.maxconnections,
            connect=cfg.connect,
            addnode=cfg.addnode,
            seednode=cfg.seednode,
            proxy=cfg.proxy,
            externalip=cfg.externalip,
            dnsseed=cfg.dnsseed,
            fixedseeds=cfg.fixedseeds,
            timeouts=PeerTimeouts(handshake=float(cfg.peertimeout)),
            max_send_buffer=cfg.maxsendbuffer * 1000,
            max_receive_buffer=cfg.maxreceivebuffer * 1000,
            permissions=Permissions.parse(
                cfg.whitelist,
                whitelist_relay=cfg.whitelistrelay,
                whitelist_forcerelay=cfg.whitelistforcerelay,
            ),
            whitebinds=tuple(parse_whitebind(w) for w in cfg.whitebind),
            blocks_only=cfg.blocksonly,
        )

    async def _start_p2p(self, services: NodeServices) -> None:
        peers_path = self.datadir / PEERS_FILE_NAME
        self.addrman = AddrMan.load(peers_path)
        bans = BanMan(self.datadir / BANLIST_FILE)
        chain = self.chain

        def best_height() -> int:
            return chain.height if chain is not None else 0

        handler: MessageHandler
        if self._p2p_handler is not None:
            handler = self._p2p_handler
        elif chain is not None:
            # Headers-first sync, block download and relay; its chain work runs on its own
            # validation thread under the chain lock.
            self.sync = SyncManager(chain, services.chain_lock)
            handler = self.sync
        else:
            handler = DefaultHandler()
        self.connman = ConnectionManager(
            self.params,
            self.conn_options(),
            self.addrman,
            bans,
            handler,
            best_height=best_height,
        )
        if self.sync is not None:
            self.sync.set_connman(self.connman)
            self.sync.start()
            services.is_initial_block_download = self.sync.is_initial_block_download
            self._start_tx_relay(services, self.sync, self.connman)
        try:
            await self.connman.start()
        except OSError as e:
            self.connman = None
            raise NodeError(str(e)) from None
        services.connman = self.connman
        self._peers_saver = asyncio.create_task(self._save_peers_periodically())

    def _start_tx_relay(
        self, services: NodeServices, sync: SyncManager[Any], connman: ConnectionManager
    ) -> None:
        """Transaction relay, when the node has a mempool. With ``-blocksonly`` it takes
        transactions only from peers with the ``relay`` permission (Core's
        ``ignore_incoming_txs``) and still announces the pool's."""
        pool = getattr(services, "mempool", None)
        if pool is None:
            return
        sync.set_relay(
            TxRelay(
                pool,
                sync.submit_chain_work,
                call_soon_threadsafe=sync.call_soon_threadsafe,
                misbehaving=connman.misbehaving,
                is_ibd=sync.is_initial_block_download,
                ignore_incoming_txs=bool(getattr(self.config, "blocksonly", False)),
            )
        )

    async def _save_peers_periodically(self) -> None:
        while True:
            await asyncio.sleep(PEERS_SAVE_INTERVAL)
            await self._save_peers()

    async def _save_peers(self) -> None:
        """Write ``peers.dat``: serialized on the loop (the address manager lives there), written
        atomically on a worker thread."""
        if self.addrman is None:
            return
        data = self.addrman.serialize()
        path = self.datadir / PEERS_FILE_NAME
        try:
            await asyncio.get_running_loop().run_in_executor(None, write_atomic, path, data)
        except OSError as e:
            log.warning("cannot write %s: %s", path, e)
        else:
            log.debug("Wrote %d addresses to %s", len(self.addrman), path)

    async def _flush_periodically(self) -> None:
        """Flush the UTXO set every ``-flushinterval`` seconds, so a crash or a kill costs at
        most that much chain progress (blocks reported by RPC are on disk already)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.flushinterval)
            await loop.run_in_executor(None, self._flush_chain)

    def _flush_chain(self) -> None:
        assert self.services is not None
        with self.services.chain_lock:
            self._maintain_mempool()
            if self.chain is not None:
                started = time.monotonic()
                self.chain.flush()
                log.debug(
                    "Flushed chain state at height %d in %.3f s",
                    self.chain.height,
                    time.monotonic() - started,
                )

    def _tip_text(self) -> str:
        return self.chain.tip.header.hash_hex if self.chain else "-"

    def _height(self) -> int:
        return self.chain.height if self.chain else -1

    async def _shutdown(self) -> None:
        self._stopping = True
        watchdog = threading.Timer(self.shutdown_timeout, _force_exit, (self.shutdown_timeout,))
        watchdog.daemon = True
        watchdog.start()
        try:
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
                self._flusher = None
            if self.services is not None:
                self.services.set_warmup("Shutting down")
            if self._fee_saver is not None:
                self._fee_saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._fee_saver
                self._fee_saver = None
            if self._peers_saver is not None:
                self._peers_saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._peers_saver
                self._peers_saver = None
            if self.connman is not None:
                await self.connman.stop()
                if self.services is not None:
                    self.services.connman = None
                self.connman = None
                await self._save_peers()
            if self.sync is not None:
                await self.sync.aclose()  # after the peers: no more work comes in
                if self.sync.relay is not None:
                    self.sync.relay.close()
                if self.services is not None:
                    self.services.is_initial_block_download = None
                self.sync = None
            if self.server is not None:
                await self.server.stop()
            self._close_wallets()  # after the RPC calls, before the chain closes
            await self.loop_lag.stop()
            if self.chain is not None:
                log.info("Flushing chain state at height %d", self.chain.height)
                assert self.services is not None
                with self.services.chain_lock:
                    self._save_mempool()
                    # After the pool is saved, as Core: what still waits counts as unconfirmed.
                    self._save_fee_estimates(shutdown=True)
                    if self.fee_feed is not None:
                        self.fee_feed.close()
                        self.fee_feed = None
                    self.services.fee_estimator = None
                    self.fee_estimator = None
                    self.services.mempool = None
                    self.mempool = None
                    self.chain.close()
                self.chain = None
            if self.txindex is not None:
                self.txindex.close()
                self.txindex = None
            if self._cookie is not None:
                delete_cookie(self._cookie)
                self._cookie = None
            log.info("Shutdown: done")
        finally:
            watchdog.cancel()


def _force_exit(timeout: float) -> None:
    logging.getLogger("peercash.node").error("shutdown took over %.0fs: exiting", timeout)
    sys.stderr.flush()
    os._exit(1)


def run_node(config: Config) -> int:
    """``peercash node``: run in the foreground; returns the exit code."""
    try:
        return Node(config).run()
    except NodeError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
