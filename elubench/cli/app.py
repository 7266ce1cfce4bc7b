"""The command line: thin commands over library functions.

Each command parses its arguments, calls one library function and renders the result
(cli.training: show, run, data; cli.results: compare, report, export; cli.tools: signal,
bench, activations). Library code raises ElubenchError for user mistakes; `main` turns those
into one message and exit code 2. Heavy modules (torch, pandas, scipy) are imported inside
commands, so `elubench --help` starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from elubench.cli import results, tools, training
from elubench.cli.common import console
from elubench.core import __version__
from elubench.core.errors import ElubenchError

app = typer.Typer(
    name="elubench",
    help="Benchmark activation functions the way the ELU paper did: every activation × BN × "
    "seed from the same initial weight draws, then paired statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"elubench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
):
    pass


# In the order `elubench --help` lists them.
for _command in (
    training.show,
    training.run,
    training.data,
    results.compare,
    results.report,
    results.export,
    tools.signal,
    tools.bench,
    tools.activations,
):
    app.command()(_command)


def main() -> None:
    """Console entry point: a user's mistake is one message and exit code 2, not a traceback."""
    try:
        app()
    except ElubenchError as exc:
        from rich.markup import escape

        console(stderr=True).print(
            f"[bold red]error:[/bold red] {escape(exc.render())}", soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console(stderr=True).print("interrupted")
        sys.exit(130)
