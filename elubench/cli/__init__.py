"""The command line: thin Typer commands over the library. `main` turns a user's mistake into one
message and exit code 2; heavy modules load inside the commands that need them."""

from elubench.cli.app import app, main

__all__ = ["app", "main"]
