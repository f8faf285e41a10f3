"""`kvmpmu`: the click group. A command's module is imported only when that command runs
(click's lazy-group pattern), so `kvmpmu --version` costs little more than click itself."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from kvmpmu import __version__
from kvmpmu.cli import process

COMMANDS = {
    "run": "kvmpmu.cli.commands:run",
    "show-pmceid": "kvmpmu.cli.commands:show_pmceid",
    "validate": "kvmpmu.cli.commands:validate",
    "events": "kvmpmu.cli.commands:events",
    "cpus": "kvmpmu.cli.commands:cpus",
    "lint": "kvmpmu.cli.lint_command:lint",
    "explain": "kvmpmu.cli.policy_commands:explain",
    "diff": "kvmpmu.cli.policy_commands:diff",
    "compile": "kvmpmu.cli.policy_commands:compile_cmd",
    "import": "kvmpmu.cli.policy_commands:import_cmd",
    "presets": "kvmpmu.cli.policy_commands:presets",
    "conform": "kvmpmu.cli.conform_command:conform",
    "test": "kvmpmu.cli.test_command:test",
    "schema": "kvmpmu.cli.schema_command:schema",
    "completion": "kvmpmu.cli.completion:completion",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: Any = getattr(importlib.import_module(module), attr)
        process.command_loaded()
        return command  # type: ignore[no-any-return]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvmpmu")
@click.option("--no-color", is_flag=True, help="No colours in human output.")
def cli(no_color: bool) -> None:
    """Design, check and demonstrate KVM arm64 PMU event-filter policies on an emulated kernel."""


def main() -> None:
    from kvmpmu.cli.boundary import run_main

    process.end(run_main(cli, sys.argv[1:]))
