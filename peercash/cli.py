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
