"""`kvmpmu`: the click group. Commands import what they need when they run (fast start-up)."""

from __future__ import annotations

import click

from kvmpmu import __version__
from kvmpmu.cli import commands, policy_commands

PROFILE_CHOICES = ("5.10", "5.15", "6.1", "6.6", "6.12", "latest")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvmpmu")
@click.option("--no-color", is_flag=True, help="No colours in human output.")
def cli(no_color: bool) -> None:
    """Design, check and demonstrate KVM arm64 PMU event-filter policies on an emulated kernel."""


cli.add_command(commands.run)
cli.add_command(commands.show_pmceid)
cli.add_command(commands.validate)
cli.add_command(commands.events)
cli.add_command(commands.cpus)
cli.add_command(policy_commands.lint)
cli.add_command(policy_commands.explain)
cli.add_command(policy_commands.diff)
cli.add_command(policy_commands.compile_cmd)
cli.add_command(policy_commands.import_cmd)
cli.add_command(policy_commands.presets)


def main() -> None:
    cli(prog_name="kvmpmu")
