"""The policy options every policy command shares: `--filter FILE`, `--pmu-filter STRING`,
FILE arguments (`-`: standard input, a folder: its specs), and the host (`--cpu`,
`--events-db`) and size limit they are read with."""

from __future__ import annotations

from typing import Any

import click

from kvmpmu.cli.completion import complete_cpu, complete_path
from kvmpmu.cli.defaults import config_path, current_config, default
from kvmpmu.cli.exitcodes import UsageError
from kvmpmu.cli.loading import one_stdin
from kvmpmu.spec.sources import HostChoice, PolicySource

filter_option = click.option("--filter", "filter_path", metavar="FILE",
                             shell_complete=complete_path,
                             help="Filter spec (YAML or JSON; - for stdin).")
pmu_filter_option = click.option(
    "--pmu-filter", metavar="SPEC", help="kvmtool syntax, e.g. 'A:0x11-0x11,D:0x30-0x3f'; "
    "with --filter, that file's host, VM and kernel with these filters.")
cpu_option = click.option("--cpu", metavar="MODEL", shell_complete=complete_cpu,
                          help="The host's CPU model (replaces the spec's host.cpu, midr or "
                          "catalog; see `kvmpmu cpus`).")


skip_unrelated_option = click.option(
    "--skip-unrelated", is_flag=True, help="Treat named files as a folder's: skip those of "
    "another kind and those `exclude` names (for pre-commit, which names every changed file).")


def host_choice(cpu: str | None, events_db: str | None, max_bytes: int) -> HostChoice:
    """The command line's host, the configuration's where the command line says nothing."""
    if cpu is not None and events_db is not None:
        raise UsageError("give --cpu or --events-db, not both: each gives the host's events")
    if cpu is None and events_db is None:
        return HostChoice(current_config().get("cpu"), config_path("events-db"), max_bytes,
                          fallback=True)
    return HostChoice(cpu, events_db, max_bytes)


def kernel_default(kernel: str | None) -> str | None:
    return default(kernel, "kernel")  # type: ignore[no-any-return]


def option_source(filter_path: str | None, pmu_filter: str | None) -> PolicySource | None:
    """The policy --filter and --pmu-filter give, if either does."""
    if filter_path is None and pmu_filter is None:
        return None
    return PolicySource(filter_path, pmu_filter)


def policy_sources(files: list[str] | tuple[str, ...], filter_path: str | None,
                   pmu_filter: str | None) -> list[PolicySource]:
    """FILE arguments, then the policy of --filter/--pmu-filter."""
    one_stdin(*files, filter_path)
    found = [PolicySource(path) for path in files]
    extra = option_source(filter_path, pmu_filter)
    return found + ([extra] if extra is not None else [])


def require_one(sources: list[PolicySource], command: str) -> PolicySource:
    if len(sources) != 1:
        raise UsageError(f"{command} takes one policy: FILE, --filter FILE or --pmu-filter "
                         f"SPEC ({len(sources)} given)")
    return sources[0]


def exclude() -> tuple[str, ...]:
    """The configuration's `exclude` globs; one with a `/` is relative to its folder."""
    config = current_config()
    value: Any = config.get("exclude", ())
    return tuple(p if "/" not in p else (config.folder / p).as_posix() for p in value)
