"""The commands: parse options, call the vmm layer, hand the result to rendering, return the
outcome (the boundary turns it into the exit code)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kvmpmu.cli.exitcodes import OK, Outcome, UsageError
from kvmpmu.cli.loading import load_spec, load_workload, one_stdin
from kvmpmu.cli.machines import backend_option
from kvmpmu.cli.options import (
    Command,
    events_db_option,
    json_option,
    kernel_option,
    max_bytes_option,
)
from kvmpmu.cli.output import emit, emit_json, emit_text, note, report_error
from kvmpmu.errors import KvmpmuError

T = TypeVar("T")


def _machine(backend: str, kernel: str | None, timeout: float | None = None) -> Any:
    """The machine of --backend emulated (None: the spec's host and profile) or kvm."""
    if backend == "emulated":
        return None
    if kernel:
        raise UsageError("--kernel chooses the emulated profile: it does not apply to "
                         "--backend kvm")
    from kvmpmu.cli.machines import kvm_machine

    return kvm_machine(timeout)


def _unlocated(err: KvmpmuError | None) -> bool:
    return err is not None and err.loc is not None and not err.loc.line


def _with_positions(use: Callable[[Any], T], spec: Any, reread: Callable[[], Any]) -> T:
    """`use(spec)`, where a .json spec was read fast, without line numbers: an error that only
    names the file is worked out again from the spec `reread` with positions."""
    try:
        result = use(spec)
    except KvmpmuError as err:
        if _unlocated(err):
            return use(reread())
        raise
    return use(reread()) if _unlocated(getattr(result, "error", None)) else result


def _spec_loader(filter_path: str | None, pmu_filter: str | None, max_bytes: int,
                 events_db: str | None) -> tuple[Any, Callable[[], Any]]:
    """The spec read fast, and how to read it again with positions."""
    return (load_spec(filter_path, pmu_filter, max_bytes, events_db),
            lambda: load_spec(filter_path, pmu_filter, max_bytes, events_db, fast_json=False))


def _expectation_failures(result: Any) -> list[str]:
    lines = []
    for e in result.expectations:
        if not e.passed:
            where = f"{e.loc}: " if e.loc else ""
            text = " ".join(f"{k}={v}" for k, v in e.expect.items())
            lines.append(f"{where}error: expectation failed: {text}: actual {e.actual}")
    return lines


@click.command(cls=Command)
@click.option("--filter", "filter_path", metavar="FILE", help="Filter spec (YAML; - for stdin).")
@click.option("--pmu-filter", metavar="SPEC",
              help="kvmtool syntax, e.g. 'A:0x11-0x11,D:0x30-0x3f'.")
@click.option("--workload", "workload_path", metavar="FILE",
              help="Scripted guest workload (YAML; - for stdin).")
@click.option("--scenario", "scenario_path", metavar="FILE",
              help="A workload with a `vmm:` section: exactly those KVM calls, in order.")
@click.option("--max-instructions", type=click.IntRange(1), metavar="N",
              help="Instruction budget of a CPU-emulated guest (default: the workload's, "
              "else 100,000,000).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Wall-clock limit of a CPU-emulated guest (default: the workload's, else "
              "none); with --backend kvm, of each KVM_RUN (default: 10).")
@backend_option
@kernel_option
@events_db_option
@json_option
@max_bytes_option
def run(filter_path: str | None, pmu_filter: str | None, workload_path: str | None,
        scenario_path: str | None, max_instructions: int | None, timeout: float | None,
        backend: str, kernel: str | None, events_db: str | None, as_json: bool,
        max_bytes: int) -> Outcome:
    """Boot a VM with the filter, run the guest workload, report counters and PMCEID."""
    from kvmpmu.vmm.execution import run_spec

    one_stdin(filter_path, workload_path, scenario_path)
    spec, reread = _spec_loader(filter_path, pmu_filter, max_bytes, events_db)
    workload = load_workload(spec, workload_path, scenario_path, max_bytes)
    if backend == "both":
        from kvmpmu.cli.conform_command import conform_case

        return conform_case(spec, workload, kernel, "json" if as_json else "text")
    machine = _machine(backend, kernel, timeout)
    result = _with_positions(
        lambda s: run_spec(s, workload, kernel, max_instructions, machine, timeout), spec, reread)
    if as_json:
        from kvmpmu.render.jsonout import run_json

        emit_json(run_json(result))
    else:
        from kvmpmu.render.text import run_text

        emit(run_text(result))
    failures = _expectation_failures(result)
    for line in result.warnings + failures:
        note(line)
    if result.error:
        report_error(result.error)
        return Outcome(errors=(result.error,))
    return Outcome(failed=bool(failures))


@click.command("show-pmceid", cls=Command)
@click.option("--filter", "filter_path", metavar="FILE", help="Filter spec (YAML; - for stdin).")
@click.option("--pmu-filter", metavar="SPEC", help="kvmtool syntax instead of a file.")
@backend_option
@kernel_option
@events_db_option
@json_option
@max_bytes_option
def show_pmceid(filter_path: str | None, pmu_filter: str | None, backend: str,
                kernel: str | None, events_db: str | None, as_json: bool,
                max_bytes: int) -> Outcome:
    """Host versus guest PMCEID0/1_EL0, decoded into event names."""
    from kvmpmu.vmm import execution, session

    spec, reread = _spec_loader(filter_path, pmu_filter, max_bytes, events_db)
    if backend == "both":
        from kvmpmu.cli.conform_command import conform_case

        return conform_case(spec, None, kernel, "json" if as_json else "text")
    machine = _machine(backend, kernel)
    view = _with_positions(
        lambda s: session.show_pmceid(s, kernel) if machine is None else
        execution.show_pmceid_on(s, machine), spec, reread)
    if as_json:
        from kvmpmu.render.jsonout import pmceid_json

        emit_json(pmceid_json(view))
    else:
        from kvmpmu.render.text import pmceid_text

        emit(pmceid_text(view))
    for line in view.warnings:
        note(line)
    if view.error:
        report_error(view.error)
        return Outcome(errors=(view.error,))
    return OK


@click.command(cls=Command)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
def validate(files: tuple[str, ...], kernel: str | None, events_db: str | None, as_json: bool,
             max_bytes: int) -> Outcome:
    """Check filter specs and workloads as `run` would, without running a guest.

    A spec gets every check `run` makes before its first ioctl, then its filters are applied
    to the emulated kernel (no guest runs). A workload's event names resolve against the host
    of the last spec before it on the command line (or --events-db), and its guest program is
    loaded. Every file is checked; the exit code is the worst any file earned.
    """
    from kvmpmu.cli.manyfiles import Tally
    from kvmpmu.render.jsonout import SCHEMA, maybe_error_json
    from kvmpmu.spec.files import load_any
    from kvmpmu.spec.filterspec import FilterSpec
    from kvmpmu.spec.hostspec import parse_host
    from kvmpmu.spec.yamlio import source_name
    from kvmpmu.vmm import session

    one_stdin(*files)
    spec = FilterSpec(file="<no filter>", host=parse_host(None, events_db, max_bytes))
    tally = Tally(len(files))
    records = []
    for path in files:
        kind = None
        try:
            loaded = load_any(path, max_bytes, events_db, spec.host.catalog())
            if isinstance(loaded, FilterSpec):
                kind, spec = "spec", loaded
                session.dry_boot(loaded, None, kernel)
            else:
                kind = "workload"
                session.guest_program(loaded)
        except KvmpmuError as err:
            tally.failed(err)
            records.append({"file": source_name(path), "kind": kind, "ok": False,
                            "error": maybe_error_json(err)})
            continue
        records.append({"file": source_name(path), "kind": kind, "ok": True, "error": None})
        if not as_json:
            emit_text(f"{source_name(path)}: ok ({kind})")
    if as_json:
        emit_json({"schema": SCHEMA, "ok": tally.ok(), "files": records,
                   "summary": tally.json()})
    note(tally.line())
    return tally.outcome()


@click.command(cls=Command)
@click.option("--cpu", metavar="MODEL", default="generic", show_default=True,
              help="CPU model whose events to list (see `kvmpmu cpus`).")
@events_db_option
@click.option("--search", metavar="TEXT", help="Only events whose number, name or description "
              "matches (case-insensitive).")
@click.option("--implemented", "implemented_only", is_flag=True,
              help="Only events the CPU implements.")
@json_option
@max_bytes_option
def events(cpu: str, events_db: str | None, search: str | None, implemented_only: bool,
           as_json: bool, max_bytes: int) -> Outcome:
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
    return OK


@click.command(cls=Command)
@json_option
def cpus(as_json: bool) -> Outcome:
    """List the built-in CPU models: MIDR, PMU version, counters, events, host PMCEID."""
    from kvmpmu.vmm.listing import list_cpus

    rows = list_cpus()
    if as_json:
        from kvmpmu.render.listing import cpus_json

        emit_json(cpus_json(rows))
    else:
        from kvmpmu.render.listing import cpus_text

        emit(cpus_text(rows))
    return OK
