"""The command line: thin commands over library functions.

Each command parses its arguments, calls one library function and renders the result. Library
code raises ElubenchError for user mistakes; `main` turns those into one message and exit
code 2. Heavy modules (torch, pandas, scipy) are imported inside commands, so `elubench --help`
starts fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from elubench import __version__
from elubench.errors import ElubenchError

app = typer.Typer(
    name="elubench",
    help="Benchmark activation functions the way the ELU paper did: every activation × BN × "
         "seed from the same initial weights, then paired statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpecArg = Annotated[Path, typer.Argument(help="A spec YAML file (see specs/).", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a spec field: --set train.iterations=2000 (repeatable).",
    show_default=False)]
WidthOpt = Annotated[Optional[float], typer.Option(
    help="Scale every layer's units except the output layer's (sets model.width).",
    show_default=False)]


def _console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False)


def _version(value: bool):
    if value:
        typer.echo(f"elubench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False):
    pass


@app.command()
def show(
    spec: SpecArg,
    activation: Annotated[str, typer.Option("--activation", "-a",
                                            help="Activation to lay out (default: the spec's first).",
                                            show_default=False)] = "",
    bn: Annotated[bool, typer.Option("--bn/--no-bn", help="Lay out the net with batch normalization.")] = False,
    set_: SetOpt = None,
    width: WidthOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Show the network a spec builds: layers, shapes, parameters and FLOPs."""
    from elubench.activations import parse_activation
    from elubench.plan import plan_network
    from elubench.spec import load_spec

    loaded = load_spec(spec, set_ or [], width)
    act = parse_activation(activation) if activation else loaded.compare.parsed_activations()[0]
    plan = plan_network(loaded, act, bn)
    if as_json:
        payload = {"spec_name": loaded.name, "spec_hash": loaded.hash, "activation": str(act),
                   "batchnorm": bn, **plan.to_dict()}
        typer.echo(json.dumps(payload, indent=2))
        return
    from elubench.views import plan_table
    title = f"{loaded.name}: {act}{' + BN' if bn else ''}, spec hash {loaded.hash}"
    _console().print(plan_table(plan, title))


@app.command()
def activations(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """List the activation registry: names, formulas, parameters, sources."""
    from elubench.activations import registry_rows
    rows = registry_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from elubench.views import activations_table
    _console().print(activations_table(rows))


def main() -> None:
    """Console entry point: a user's mistake is one message and exit code 2, not a traceback."""
    try:
        app()
    except ElubenchError as exc:
        from rich.markup import escape
        _console(stderr=True).print(f"[bold red]error:[/bold red] {escape(exc.render())}",
                                    soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        sys.exit(130)
