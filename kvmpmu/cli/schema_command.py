"""`kvmpmu schema NAME`: a JSON Schema (draft 2020-12) for editors, CI and other tools."""

from __future__ import annotations

import click

from kvmpmu.cli.exitcodes import OK, Outcome, UsageError
from kvmpmu.cli.options import Command
from kvmpmu.cli.outfile import STDOUT, write_output
from kvmpmu.cli.output import emit_text
from kvmpmu.render.schemas import NAMES, schema_text, shipped_path


@click.command(cls=Command)
@click.argument("name", type=click.Choice(NAMES), metavar="NAME")
@click.option("-o", "--output", metavar="OUT",
              help="Write here instead of stdout (files are replaced atomically).")
@click.option("--path", "show_path", is_flag=True,
              help="Print where the installed package keeps this schema instead.")
def schema(name: str, output: str | None, show_path: bool) -> Outcome:
    """Print the JSON Schema NAME: spec, workload, scenario, config, or output-COMMAND for
    a command's --json document (output-run, output-lint, ...)."""
    if show_path:
        if output is not None:
            raise UsageError("--path prints a path: it writes no schema to -o")
        emit_text(str(shipped_path(name)))
        return OK
    text = schema_text(name)
    if output is not None and output != STDOUT:
        write_output(output, text.encode())
    else:
        emit_text(text, nl=False)
    return OK
