"""The commands: parse options, call the vmm layer, hand the result to rendering."""

from __future__ import annotations

import sys
from typing import Any

import click

from kvmpmu.cli.boundary import boundary
from kvmpmu.cli.exitcodes import ExitCode
from kvmpmu.cli.output import emit, emit_json

PROFILE_CHOICES = ("5.10", "5.15", "6.1", "6.6", "6.12", "latest")
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout.")
kernel_option = click.option("--kernel", type=click.Choice(PROFILE_CHOICES),
                             help="Kernel profile (overrides the spec's `kernel`).")
events_db_option = click.option(
    "--events-db", metavar="FILE", help="CPU events from a JSON file (Arm's pmu/*.json or Linux "
    "perf's pmu-events format, or a perf per-CPU folder): the host's events and names.")
max_bytes_option = click.option("--max-bytes", type=click.IntRange(1), default=DEFAULT_MAX_BYTES,
                                show_default=True, help="Refuse input files larger than this.")


def _load_spec(filter_path: str | None, pmu_filter: str | None, max_bytes: int,
               events_db: str | None = None) -> Any:
    from kvmpmu.spec.filterspec import FilterSpec, load_filter_spec
    from kvmpmu.spec.hostspec import parse_host
    from kvmpmu.spec.kvmtool import parse_kvmtool

    if filter_path and pmu_filter:
        raise click.UsageError("give --filter or --pmu-filter, not both")
    if filter_path:
        return load_filter_spec(filter_path, max_bytes, events_db, fast_json=True)
    host = parse_host(None, events_db, max_bytes)
    if pmu_filter is not None:
        return parse_kvmtool(pmu_filter, host=host)
    return FilterSpec(file="<no filter>", host=host)


@click.command()
@click.option("--filter", "filter_path", metavar="FILE", help="Filter spec (YAML).")
@click.option("--pmu-filter", metavar="SPEC",
              help="kvmtool syntax, e.g. 'A:0x11-0x11,D:0x30-0x3f'.")
@click.option("--workload", "workload_path", metavar="FILE", help="Scripted guest workload (YAML).")
@click.option("--max-instructions", type=click.IntRange(1), metavar="N",
              help="Instruction budget of a CPU-emulated guest (default: the workload's, "
              "else 100,000,000).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Wall-clock limit of a CPU-emulated guest (default: the workload's, else "
              "none).")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
@boundary
def run(filter_path: str | None, pmu_filter: str | None, workload_path: str | None,
        max_instructions: int | None, timeout: float | None, kernel: str | None,
        events_db: str | None, as_json: bool, max_bytes: int) -> None:
    """Boot an emulated VM with the filter, run the guest workload, report counters and PMCEID."""
    from kvmpmu.spec.workload import load_workload
    from kvmpmu.vmm import session

    spec = _load_spec(filter_path, pmu_filter, max_bytes, events_db)
    workload = load_workload(workload_path, max_bytes, spec.host.catalog()) \
        if workload_path else None
    result = session.run(spec, workload, kernel, max_instructions, timeout)
    if as_json:
        from kvmpmu.render.jsonout import run_json

        emit_json(run_json(result))
    else:
        from kvmpmu.render.text import run_text

        emit(run_text(result))
    if result.error:
        sys.exit(int(ExitCode.GUEST_FAULT if result.error_kind == "guest" else
                     ExitCode.KVM_CALL_FAILED))
    if not result.ok:
        sys.exit(int(ExitCode.EXPECTATION_FAILED))


@click.command("show-pmceid")
@click.option("--filter", "filter_path", metavar="FILE", help="Filter spec (YAML).")
@click.option("--pmu-filter", metavar="SPEC", help="kvmtool syntax instead of a file.")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
@boundary
def show_pmceid(filter_path: str | None, pmu_filter: str | None, kernel: str | None,
                events_db: str | None, as_json: bool, max_bytes: int) -> None:
    """Host versus guest PMCEID0/1_EL0, decoded into event names."""
    from kvmpmu.vmm import session

    view = session.show_pmceid(_load_spec(filter_path, pmu_filter, max_bytes, events_db), kernel)
    if as_json:
        from kvmpmu.render.jsonout import pmceid_json

        emit_json(pmceid_json(view))
    else:
        from kvmpmu.render.text import pmceid_text

        emit(pmceid_text(view))
    if view.error:
        sys.exit(int(ExitCode.KVM_CALL_FAILED))


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@events_db_option
@json_option
@max_bytes_option
@boundary
def validate(files: tuple[str, ...], events_db: str | None, as_json: bool, max_bytes: int) -> None:
    """Check filter specs and workloads without running them.

    A workload's event names resolve against the host of the last spec before it on the
    command line (or --events-db).
    """
    from kvmpmu.cli.output import note
    from kvmpmu.errors import SpecError
    from kvmpmu.render.jsonout import SCHEMA, error_json
    from kvmpmu.spec.files import load_any
    from kvmpmu.spec.filterspec import FilterSpec
    from kvmpmu.spec.hostspec import parse_host

    catalog = parse_host(None, events_db, max_bytes).catalog()
    records = []
    for path in files:
        try:
            loaded = load_any(path, max_bytes, events_db, catalog)
        except SpecError as err:
            records.append({"file": path, "kind": None, "ok": False,
                            "error": error_json("spec", err.message, err.loc, err.path)})
            note(err.render())
            continue
        kind = "spec" if isinstance(loaded, FilterSpec) else "workload"
        if isinstance(loaded, FilterSpec):
            catalog = loaded.host.catalog()
        records.append({"file": path, "kind": kind, "ok": True, "error": None})
        if not as_json:
            click.echo(f"{path}: ok ({kind})")
    ok = all(r["ok"] for r in records)
    if as_json:
        emit_json({"schema": SCHEMA, "ok": ok, "files": records})
    if not ok:
        sys.exit(int(ExitCode.INVALID_INPUT))


@click.command()
@click.option("--cpu", metavar="MODEL", default="generic", show_default=True,
              help="CPU model whose events to list (see `kvmpmu cpus`).")
@events_db_option
@click.option("--search", metavar="TEXT", help="Only events whose number, name or description "
              "matches (case-insensitive).")
@click.option("--implemented", "implemented_only", is_flag=True,
              help="Only events the CPU implements.")
@json_option
@max_bytes_option
@boundary
def events(cpu: str, events_db: str | None, search: str | None, implemented_only: bool,
           as_json: bool, max_bytes: int) -> None:
    """List events: number, name, description, implemented by the CPU, set in its PMCEID."""
    from kvmpmu.vmm.listing import list_events, resolve_cpu

    if events_db:
        from kvmpmu.spec.catalog_import import load_catalog

        model = load_catalog(events_db, max_bytes)
    else:
        model = resolve_cpu(cpu)
    rows = list_events(model, search, implemented_only)
    if as_json:
        from kvmpmu.render.listing import events_json

        emit_json(events_json(model, rows))
    else:
        from kvmpmu.render.listing import events_text

        emit(events_text(model, rows))


@click.command()
@json_option
@boundary
def cpus(as_json: bool) -> None:
    """List the built-in CPU models: MIDR, PMU version, counters, events, host PMCEID."""
    from kvmpmu.vmm.listing import list_cpus

    rows = list_cpus()
    if as_json:
        from kvmpmu.render.listing import cpus_json

        emit_json(cpus_json(rows))
    else:
        from kvmpmu.render.listing import cpus_text

        emit(cpus_text(rows))
