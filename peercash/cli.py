"""The ``peercash`` command line: one entry point, one sub-command per job (see DESIGN.md).

Kept thin: each command parses its arguments and calls into ``peercash.tools`` or ``peercash.node``,
where the work is done and tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="peercash: a Bitcoin full node in Python.",
)


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


if __name__ == "__main__":  # pragma: no cover
    app()


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
    par: Annotated[int, typer.Option(help="extra processes for script checks")] = 0,
    reindex: Annotated[bool, typer.Option(help="rebuild index and UTXO set first")] = False,
    signetchallenge: Annotated[
        str | None, typer.Option(help="custom signet challenge script (hex)")
    ] = None,
) -> None:
    """Validate and connect blocks from FILE; stops at the first invalid block."""
    from peercash.chain.errors import ChainError
    from peercash.consensus.errors import DecodeError
    from peercash.tools.chaintools import import_blocks

    err = Console(stderr=True, highlight=False)

    def progress(n: int, height: int, seconds: float) -> None:
        err.print(f"read {n} blocks, height {height}, {n / seconds:.0f} blocks/s")

    try:
        result = import_blocks(
            file, network, datadir, dbcache_mb=dbcache, assume_valid=assumevalid,
            script_workers=par, reindex=reindex, progress=progress,
            signet_challenge=signetchallenge,
        )  # fmt: skip
    except (ChainError, DecodeError, OSError, ValueError) as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(1) from None
    rate = result.blocks_read / result.seconds if result.seconds else 0.0
    if result.error is not None:
        err.print(
            f"error: invalid block at height {result.error_height}: {result.error}", markup=False
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
        Console(stderr=True, highlight=False).print(f"error: {e}", markup=False)
        raise typer.Exit(1) from None
