"""The ``peercash`` command line: one entry point, one sub-command per job (see DESIGN.md).

Kept thin: each command parses its arguments and calls into ``peercash.tools`` or ``peercash.node``,
where the work is done and tested.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="peercash: a Bitcoin full node in Python.",
    # Rich's panels wrap usage errors at 80 columns: plain text when stderr is a pipe or a log.
    rich_markup_mode="rich" if sys.stderr.isatty() else None,
)


def _console(*, stderr: bool = True) -> Console:
    """A console for messages: wrapped to the terminal's width on a terminal, never wrapped when
    the output is a pipe or a file (a log line must not break mid-sentence)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=not stream.isatty())


def _error_text(e: BaseException) -> str:
    """An exception as the user reads it: permission problems say which path and who."""
    from peercash.chain.errors import access_error

    if isinstance(e, OSError) and (refused := access_error(e)) is not None:
        return str(refused)
    return str(e)


@app.callback()
def main() -> None:
    """peercash: a Bitcoin full node in Python."""
    # A callback keeps typer from collapsing the app into its only command while there is one.


@app.command()
def conformance(
    suite: Annotated[
        str,
        typer.Argument(
            metavar="SUITE",
            help="script-tests, tx-valid, tx-invalid, sighash, script-assets or bip340",
        ),
    ],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="the vector file to run")],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="print only the summary line")
    ] = False,
) -> None:
    """Run a test-vector FILE through our engine; the last line is `N passed, M failed`.

    Exits 0 only when nothing failed, 2 for an unknown suite.
    """
    from peercash.tools.conformance import SUITES, run_suite, summarize

    out = Console(soft_wrap=True, highlight=False)
    if suite not in SUITES:
        err = Console(stderr=True, soft_wrap=True, highlight=False)
        err.print(
            f"error: unknown suite {suite!r}; choose one of: {', '.join(SUITES)}",
            markup=False,
        )
        raise typer.Exit(2)
    status = Console(stderr=True)
    with status.status(f"running {suite} on {file.name}…"):
        results = run_suite(suite, file)
    failed = [r for r in results if not r.passed]
    if not quiet:
        for r in failed:
            line = f"FAIL {r.name}"
            if r.description:
                line += " (" + r.description.replace("\n", " ") + ")"
            line += f": expected {r.expected}, got {r.got}"
            if r.detail:
                line += f" [{r.detail}]"
            out.print(line, markup=False, style="red")
    out.print(summarize(results), markup=False, style="red" if failed else "green")
    if failed:
        raise typer.Exit(1)


_NETWORK_HELP = "main, testnet, testnet4, signet or regtest"


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="hex block per line, or raw blocks")],
    network: Annotated[str, typer.Option(help=_NETWORK_HELP)] = "main",
    datadir: Annotated[Path | None, typer.Option(help="data directory")] = None,
    dbcache: Annotated[int, typer.Option(help="UTXO cache size in MB")] = 450,
    assumevalid: Annotated[
        str | None, typer.Option(help="skip signatures below this block; 0 checks all")
    ] = None,
    par: Annotated[
        int | None,
        typer.Option(
            help="extra processes for script checks (default: one per core beyond the first; "
            "0: none; negative: leave that many cores free)"
        ),
    ] = None,
    reindex: Annotated[
        bool,
        typer.Option(help="first rebuild the block index and the UTXO set from the block files"),
    ] = False,
    reindex_chainstate: Annotated[
        bool, typer.Option(help="first rebuild the UTXO set from the stored blocks")
    ] = False,
    signetchallenge: Annotated[
        str | None, typer.Option(help="custom signet challenge script (hex)")
    ] = None,
) -> None:
    """Validate and connect blocks from FILE; stops at the first invalid block.

    Exits 1, keeping every block connected before, when a block is invalid or does not connect
    (the first one is named with the parent it needs); refuses a file of another network before
    writing anything. FILE may be /dev/null, to only --reindex.
    """
    from peercash.chain.errors import ChainError
    from peercash.chain.scriptcheck import script_workers
    from peercash.consensus.errors import DecodeError
    from peercash.tools.chaintools import import_blocks

    err = _console()

    def progress(n: int, height: int, seconds: float) -> None:
        err.print(f"read {n} blocks, height {height}, {n / seconds:.0f} blocks/s")

    try:
        result = import_blocks(
            file, network, datadir, dbcache_mb=dbcache, assume_valid=assumevalid,
            script_workers=script_workers(par), reindex=reindex,
            reindex_chainstate=reindex_chainstate, progress=progress,
            signet_challenge=signetchallenge,
        )  # fmt: skip
    except (ChainError, DecodeError, OSError, ValueError) as e:
        err.print(f"error: {_error_text(e)}", markup=False)
        raise typer.Exit(1) from None
    rate = result.blocks_read / result.seconds if result.seconds else 0.0
    if result.error is not None:
        err.print(
            f"error: invalid block at height {result.error_height}: {result.error}", markup=False
        )
        err.print(f"kept the chain up to height {result.height} ({result.tip})", markup=False)
        raise typer.Exit(1)
    if (gap := result.unconnected) is not None:
        if gap.parent_stored:
            why = (f"its parent {gap.parent} is stored, but the block was dropped while it "
                   "waited for it (too many blocks came before their parents): import the file "
                   "again")  # fmt: skip
        else:
            why = f"its parent {gap.parent} is neither stored nor in the file"
        err.print(
            f"error: block {gap.block} does not connect: {why}; {gap.count} block"
            f"{'s' if gap.count != 1 else ''} of the file left unconnected",
            markup=False,
        )
        err.print(f"kept the chain up to height {result.height} ({result.tip})", markup=False)
        raise typer.Exit(1)
    print(
        f"imported {result.blocks_read} blocks in {result.seconds:.1f}s ({rate:.0f} blocks/s); "
        f"tip {result.tip} at height {result.height}"
    )


@app.command()
def chaininfo(
    network: Annotated[str, typer.Option(help=_NETWORK_HELP)] = "main",
    datadir: Annotated[Path | None, typer.Option(help="data directory")] = None,
    signetchallenge: Annotated[
        str | None, typer.Option(help="custom signet challenge script (hex)")
    ] = None,
) -> None:
    """Print the UTXO set summary of a stopped node's data directory (gettxoutsetinfo muhash)."""
    from peercash.chain.errors import ChainError
    from peercash.tools.chaintools import chain_info, dumps

    try:
        print(dumps(chain_info(network, datadir, signetchallenge)))
    except (ChainError, OSError, ValueError) as e:
        _console().print(f"error: {_error_text(e)}", markup=False)
        raise typer.Exit(1) from None


_CLI_CONTEXT = {"allow_interspersed_args": False, "ignore_unknown_options": True}


@app.command()
def node(
    network: Annotated[str | None, typer.Option(help=_NETWORK_HELP)] = None,
    datadir: Annotated[Path | None, typer.Option(help="data directory")] = None,
    conf: Annotated[
        Path | None, typer.Option(help="config file (default: DATADIR/peercash.conf)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="P2P port")] = None,
    rpcport: Annotated[int | None, typer.Option(help="JSON-RPC port")] = None,
    connect: Annotated[
        list[str] | None, typer.Option(help="connect only to this peer (H:P), repeatable")
    ] = None,
    addnode: Annotated[list[str] | None, typer.Option(help="add a peer (H:P), repeatable")] = None,
    listen: Annotated[
        bool | None, typer.Option("--listen/--no-listen", help="accept P2P connections")
    ] = None,
    dbcache: Annotated[int | None, typer.Option(help="UTXO cache size in MiB")] = None,
    txindex: Annotated[
        bool | None, typer.Option("--txindex/--no-txindex", help="keep a transaction index")
    ] = None,
    assumevalid: Annotated[
        str | None, typer.Option(help="skip signatures below this block; 0 checks all")
    ] = None,
    debug: Annotated[
        list[str] | None, typer.Option(help="debug log category (1 = all), repeatable")
    ] = None,
    rest: Annotated[bool | None, typer.Option("--rest/--no-rest", help="serve REST")] = None,
    par: Annotated[int | None, typer.Option(help="extra processes for script checks")] = None,
    printtoconsole: Annotated[
        bool | None,
        typer.Option("--printtoconsole/--no-printtoconsole", help="log to the console"),
    ] = None,
    rpcuser: Annotated[str | None, typer.Option(help="JSON-RPC user name")] = None,
    rpcpassword: Annotated[str | None, typer.Option(help="JSON-RPC password")] = None,
    rpcauth: Annotated[
        list[str] | None, typer.Option(help="user:salt$hash credentials, repeatable")
    ] = None,
    rpcbind: Annotated[
        list[str] | None, typer.Option(help="RPC listen address (needs --rpcallowip)")
    ] = None,
    rpcallowip: Annotated[
        list[str] | None, typer.Option(help="allow RPC from this IP or subnet, repeatable")
    ] = None,
    rpcservertimeout: Annotated[
        int | None, typer.Option(help="seconds a client may take to send a request (30)")
    ] = None,
    rpcthreads: Annotated[
        int | None, typer.Option(help="threads that serve RPC calls (16)")
    ] = None,
    rpcworkqueue: Annotated[
        int | None, typer.Option(help="RPC requests that may wait for a thread (64)")
    ] = None,
    flushinterval: Annotated[
        int | None,
        typer.Option(help="seconds between UTXO set flushes; a crash loses at most this (60)"),
    ] = None,
    reindex: Annotated[
        bool | None,
        typer.Option(
            "--reindex",
            "-reindex",
            help="rebuild the block index and the UTXO set from the block files (blocks/blk*.dat)",
        ),
    ] = None,
    reindex_chainstate: Annotated[
        bool | None,
        typer.Option(
            "--reindex-chainstate",
            "-reindex-chainstate",
            help="rebuild the UTXO set from the stored blocks, keeping the block index",
        ),
    ] = None,
    bind: Annotated[
        list[str] | None, typer.Option(help="listen for P2P on this address (H[:P]), repeatable")
    ] = None,
    seednode: Annotated[
        list[str] | None,
        typer.Option(help="connect to this peer (H:P) for addresses, then disconnect; repeatable"),
    ] = None,
    maxconnections: Annotated[
        int | None, typer.Option(help="at most this many peer connections (125)")
    ] = None,
    externalip: Annotated[
        list[str] | None, typer.Option(help="our own public address, repeatable")
    ] = None,
    proxy: Annotated[
        str | None, typer.Option(help="connect to peers through this SOCKS5 proxy (H:P), e.g. Tor")
    ] = None,
    dnsseed: Annotated[
        bool | None,
        typer.Option("--dnsseed/--no-dnsseed", help="ask DNS seeds when we know no peers"),
    ] = None,
    fixedseeds: Annotated[
        bool | None,
        typer.Option("--fixedseeds/--no-fixedseeds", help="fall back on built-in peer addresses"),
    ] = None,
    peertimeout: Annotated[
        int | None, typer.Option(help="seconds a new peer has to complete the handshake (60)")
    ] = None,
    maxsendbuffer: Annotated[
        int | None, typer.Option(help="KB unsent to a peer before it is dropped (5000)")
    ] = None,
    maxreceivebuffer: Annotated[
        int | None,
        typer.Option(help="KB received from a peer and waiting before we stop reading (5000)"),
    ] = None,
    maxmempool: Annotated[
        int | None, typer.Option(help="keep the transaction memory pool below this many MB (300)")
    ] = None,
    mempoolexpiry: Annotated[
        int | None, typer.Option(help="hours a transaction may stay in the mempool (336)")
    ] = None,
    limitclustercount: Annotated[
        int | None, typer.Option(help="most transactions in one mempool cluster (64)")
    ] = None,
    limitclustersize: Annotated[
        int | None, typer.Option(help="largest mempool cluster, in kvB (101)")
    ] = None,
    minrelaytxfee: Annotated[
        str | None,
        typer.Option(help="BTC/kvB below which transactions are not relayed (0.00000100)"),
    ] = None,
    incrementalrelayfee: Annotated[
        str | None,
        typer.Option(help="BTC/kvB a replacement or a raised mempool minimum adds (0.00000100)"),
    ] = None,
    persistmempool: Annotated[
        bool | None,
        typer.Option(
            "--persistmempool/--no-persistmempool",
            help="load mempool.dat at start and save it at shutdown (default: on)",
        ),
    ] = None,
    datacarrier: Annotated[
        bool | None,
        typer.Option("--datacarrier/--no-datacarrier", help="relay OP_RETURN outputs (on)"),
    ] = None,
    datacarriersize: Annotated[
        int | None,
        typer.Option(help="total bytes of OP_RETURN scripts relayed in one transaction (100000)"),
    ] = None,
    permitbaremultisig: Annotated[
        bool | None,
        typer.Option(
            "--permitbaremultisig/--no-permitbaremultisig", help="relay bare multisig (on)"
        ),
    ] = None,
    acceptnonstdtxn: Annotated[
        bool | None,
        typer.Option(
            "--acceptnonstdtxn/--no-acceptnonstdtxn",
            help="accept non-standard transactions (test networks only; off)",
        ),
    ] = None,
    blocksonly: Annotated[
        bool | None,
        typer.Option("--blocksonly/--no-blocksonly", help="no transaction relay with peers"),
    ] = None,
    acceptstalefeeestimates: Annotated[
        bool | None,
        typer.Option(
            "--acceptstalefeeestimates/--no-acceptstalefeeestimates",
            help="use fee_estimates.dat even if older than 60 hours (regtest only; off)",
        ),
    ] = None,
    whitelist: Annotated[
        list[str] | None,
        typer.Option(
            help="grant peers from this IP or CIDR permissions ([perms@]IP|CIDR; perms: "
            "bloomfilter, noban, forcerelay, relay, mempool, download, addr, all; in, out), "
            "repeatable"
        ),
    ] = None,
    whitebind: Annotated[
        list[str] | None,
        typer.Option(help="listen also on [perms@]H:P, granting who connects there, repeatable"),
    ] = None,
    whitelistrelay: Annotated[
        bool | None,
        typer.Option(
            "--whitelistrelay/--no-whitelistrelay",
            help="implicit whitelist permissions include relay (on; off with --blocksonly)",
        ),
    ] = None,
    whitelistforcerelay: Annotated[
        bool | None,
        typer.Option(
            "--whitelistforcerelay/--no-whitelistforcerelay",
            help="implicit whitelist permissions include forcerelay (off)",
        ),
    ] = None,
    wallet: Annotated[
        list[str] | None,
        typer.Option("--wallet", "-wallet", help="load this wallet at start, repeatable"),
    ] = None,
    disablewallet: Annotated[
        bool | None,
        typer.Option("--disablewallet/--no-disablewallet", help="no wallet, no wallet RPCs"),
    ] = None,
    keypool: Annotated[
        int | None, typer.Option(help="scripts derived ahead per active descriptor (1000)")
    ] = None,
    fallbackfee: Annotated[
        str | None, typer.Option(help="BTC/kvB paid when fee estimation fails (0: refuse)")
    ] = None,
    mintxfee: Annotated[
        str | None, typer.Option(help="BTC/kvB below which the wallet never pays (0.000001)")
    ] = None,
    maxtxfee: Annotated[
        str | None, typer.Option(help="BTC: the most fee one wallet transaction pays (0.1)")
    ] = None,
    walletrbf: Annotated[
        bool | None,
        typer.Option("--walletrbf/--no-walletrbf", help="signal BIP125 replaceability (on)"),
    ] = None,
) -> None:
    """Run a node in the foreground; Ctrl-C shuts it down cleanly.

    Recovery: --reindex rebuilds everything from the block files; --reindex-chainstate rebuilds
    only the UTXO set. A second process on the same data directory exits at once.
    """
    from peercash.config import ConfigError, load_config
    from peercash.node import run_node

    options = {
        "network": network, "datadir": datadir, "conf": conf, "port": port,
        "rpcport": rpcport, "connect": connect, "addnode": addnode, "listen": listen,
        "dbcache": dbcache, "txindex": txindex, "assumevalid": assumevalid, "debug": debug,
        "rest": rest, "par": par, "printtoconsole": printtoconsole, "rpcuser": rpcuser,
        "rpcpassword": rpcpassword, "rpcauth": rpcauth, "rpcbind": rpcbind,
        "rpcallowip": rpcallowip, "rpcservertimeout": rpcservertimeout,
        "rpcthreads": rpcthreads, "rpcworkqueue": rpcworkqueue, "flushinterval": flushinterval,
        "reindex": reindex, "reindex-chainstate": reindex_chainstate,
        "bind": bind, "seednode": seednode, "maxconnections": maxconnections,
        "externalip": externalip, "proxy": proxy, "dnsseed": dnsseed, "fixedseeds": fixedseeds,
        "peertimeout": peertimeout, "maxsendbuffer": maxsendbuffer,
        "maxreceivebuffer": maxreceivebuffer, "maxmempool": maxmempool,
        "mempoolexpiry": mempoolexpiry, "minrelaytxfee": minrelaytxfee,
        "limitclustercount": limitclustercount, "limitclustersize": limitclustersize,
        "incrementalrelayfee": incrementalrelayfee, "persistmempool": persistmempool,
        "datacarrier": datacarrier, "datacarriersize": datacarriersize,
        "permitbaremultisig": permitbaremultisig, "acceptnonstdtxn": acceptnonstdtxn,
        "blocksonly": blocksonly, "acceptstalefeeestimates": acceptstalefeeestimates,
        "whitelist": whitelist, "whitebind": whitebind,
        "whitelistrelay": whitelistrelay, "whitelistforcerelay": whitelistforcerelay,
        "wallet": wallet, "disablewallet": disablewallet, "keypool": keypool,
        "fallbackfee": fallbackfee, "mintxfee": mintxfee, "maxtxfee": maxtxfee,
        "walletrbf": walletrbf,
    }  # fmt: skip
    try:
        config = load_config(options)
    except ConfigError as e:
        _console().print(f"Error: {e}", markup=False)
        raise typer.Exit(1) from None
    code = run_node(config)
    if code:
        raise typer.Exit(code)


@app.command(context_settings=_CLI_CONTEXT)
def cli(
    method: Annotated[str | None, typer.Argument(metavar="METHOD")] = None,
    args: Annotated[list[str] | None, typer.Argument(metavar="[ARGS]...")] = None,
    network: Annotated[
        str | None, typer.Option("--network", "-network", help=_NETWORK_HELP)
    ] = None,
    datadir: Annotated[Path | None, typer.Option("--datadir", "-datadir")] = None,
    conf: Annotated[Path | None, typer.Option("--conf", "-conf")] = None,
    rpcport: Annotated[int | None, typer.Option("--rpcport", "-rpcport")] = None,
    rpcconnect: Annotated[
        str, typer.Option("--rpcconnect", "-rpcconnect", help="server host[:port]")
    ] = "127.0.0.1",
    rpcuser: Annotated[str | None, typer.Option("--rpcuser", "-rpcuser")] = None,
    rpcpassword: Annotated[str | None, typer.Option("--rpcpassword", "-rpcpassword")] = None,
    rpcwallet: Annotated[str | None, typer.Option("--rpcwallet", "-rpcwallet")] = None,
    rpcclienttimeout: Annotated[
        float, typer.Option("--rpcclienttimeout", "-rpcclienttimeout", help="seconds")
    ] = 900.0,
    named: Annotated[
        bool, typer.Option("--named", "-named", help="pass name=value arguments")
    ] = False,
    stdin: Annotated[
        bool, typer.Option("--stdin", "-stdin", help="read more arguments from stdin, one a line")
    ] = False,
    rpcwait: Annotated[
        bool, typer.Option("--rpcwait", "-rpcwait", help="wait for the server to be ready")
    ] = False,
    rpcwaittimeout: Annotated[
        float, typer.Option("--rpcwaittimeout", "-rpcwaittimeout", help="seconds; 0 = forever")
    ] = 0,
    getinfo: Annotated[
        bool, typer.Option("--getinfo", "-getinfo", help="print a summary of the node")
    ] = False,
) -> None:
    """Call the node's JSON-RPC, like bitcoin-cli: METHOD then its arguments."""
    import sys

    from peercash.config import ConfigError, load_config, split_host_port
    from peercash.rpc.client import Endpoint, run

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        options = {"network": network, "datadir": datadir, "conf": conf, "rpcport": rpcport,
                   "rpcuser": rpcuser, "rpcpassword": rpcpassword}  # fmt: skip
        config = load_config(options)
        host, port = split_host_port(rpcconnect, config.rpcport)
    except ConfigError as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(1) from None
    if rpcport is not None or ":" not in rpcconnect.strip("[]"):
        port = config.rpcport
    extra = list(args or [])
    if stdin:
        extra.extend(line.rstrip("\r\n") for line in sys.stdin)
    endpoint = Endpoint(
        host, port, config.network_datadir, config.rpcuser, config.rpcpassword,
        rpcwallet, rpcclienttimeout, config.conf_file,
    )  # fmt: skip
    result = run(
        endpoint, method, extra, named=named, wait=rpcwait, wait_timeout=rpcwaittimeout,
        getinfo=getinfo,
    )  # fmt: skip
    if result.stdout:
        sys.stdout.write(result.stdout + "\n")
    if result.stderr:
        sys.stderr.write(result.stderr + "\n")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


if __name__ == "__main__":  # pragma: no cover
    app()
