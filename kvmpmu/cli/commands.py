"""The commands: parse options, call the vmm layer, hand the result to rendering, return the
outcome (the boundary turns it into the exit code)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import click

from kvmpmu.cli.completion import complete_event, complete_path
from kvmpmu.cli.exitcodes import OK, Outcome, UsageError
from kvmpmu.cli.loading import load_workload, one_stdin
from kvmpmu.cli.machines import backend_option
from kvmpmu.cli.options import (
    Command,
    events_db_option,
    json_option,
    kernel_option,
    max_bytes_option,
)
from kvmpmu.cli.output import emit, emit_json, emit_text, note, report_error
from kvmpmu.cli.sources import (
    cpu_option,
    filter_option,
    host_choice,
    kernel_default,
    option_source,
    pmu_filter_option,
    skip_unrelated_option,
)
from kvmpmu.errors import KvmpmuError
from kvmpmu.spec.sources import HostChoice, PolicySource

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
    """`use(spec)`, where the spec was read fast, without every line number: an error that
    only names the file is worked out again from the spec `reread` with positions."""
    try:
        result = use(spec)
    except KvmpmuError as err:
        if _unlocated(err):
            return use(reread())
        raise
    return use(reread()) if _unlocated(getattr(result, "error", None)) else result


def _spec_loader(source: PolicySource, host: HostChoice) -> tuple[Any, Callable[[], Any]]:
    """The spec read fast, and how to read it again with positions."""
    from kvmpmu.spec.sources import load_policy

    return (load_policy(source, host, fast_json=True, compact=True),
            lambda: load_policy(source, host))


def _policy(filter_path: str | None, pmu_filter: str | None,
            workload_path: str | None, max_bytes: int) -> PolicySource:
    """--filter/--pmu-filter, else the policy the workload names, else none."""
    from kvmpmu.spec.sources import declared_policy

    given = option_source(filter_path, pmu_filter)
    if given is not None:
        return given
    declared = declared_policy(workload_path, max_bytes) if workload_path else None
    return PolicySource(declared)


def _names_for(path: str, spec: Any, host: HostChoice) -> Any:
    """The catalog a file's event names resolve against: its own `policy:`'s host, else the
    last spec's before it."""
    from kvmpmu.spec.sources import declared_policy, load_policy

    try:
        declared = declared_policy(path, host.max_bytes)
    except KvmpmuError:
        declared = None  # load_any reports it
    return load_policy(PolicySource(declared), host).host.catalog() if declared else \
        spec.host.catalog()


@click.command(cls=Command)
@filter_option
@pmu_filter_option
@click.option("--workload", "workload_paths", metavar="FILE", multiple=True,
              shell_complete=complete_path,
              help="Scripted guest workload (YAML; - for stdin). Repeat it, or give a folder, "
              "to run several against the policy: each is reported, with one exit code.")
@click.option("--scenario", "scenario_path", metavar="FILE", shell_complete=complete_path,
              help="A workload with a `vmm:` section: exactly those KVM calls, in order.")
@click.option("--max-instructions", type=click.IntRange(1), metavar="N",
              help="Instruction budget of a CPU-emulated guest (default: the workload's, "
              "else 100,000,000).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Wall-clock limit of a CPU-emulated guest (default: the workload's, else "
              "none); with --backend kvm, of each KVM_RUN (default: 10).")
@click.option("-q", "--quiet", is_flag=True,
              help="With several workloads, print only the failing ones and the summary.")
@backend_option
@kernel_option
@cpu_option
@events_db_option
@json_option
@max_bytes_option
def run(filter_path: str | None, pmu_filter: str | None, workload_paths: tuple[str, ...],
        scenario_path: str | None, max_instructions: int | None, timeout: float | None,
        quiet: bool, backend: str, kernel: str | None, cpu: str | None,
        events_db: str | None, as_json: bool, max_bytes: int) -> Outcome:
    """Boot a VM with the filter, run the guest workload, report counters and PMCEID.

    Without --filter or --pmu-filter, a workload's `policy:` names its spec.
    """
    from pathlib import Path

    from kvmpmu.vmm.execution import run_spec

    one_stdin(filter_path, *workload_paths, scenario_path)
    host = host_choice(cpu, events_db, max_bytes)
    kernel = kernel_default(kernel) if backend == "emulated" else kernel  # kvm: the real one
    if len(workload_paths) > 1 or any(Path(p).is_dir() for p in workload_paths):
        from kvmpmu.cli.batch import run_batch

        if scenario_path:
            raise UsageError("give several --workload files or one --scenario, not both")
        if backend == "both":
            raise UsageError("--backend both compares one case: run `kvmpmu conform` per "
                             "workload")
        machine = _machine(backend, kernel, timeout)
        return run_batch(option_source(filter_path, pmu_filter), workload_paths, host, kernel,
                         machine, quiet, as_json, (max_instructions, timeout))
    workload_path = workload_paths[0] if workload_paths else None
    spec, reread = _spec_loader(_policy(filter_path, pmu_filter, workload_path or scenario_path,
                                        max_bytes), host)
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
    from kvmpmu.cli.verdicts import run_outcome

    return run_outcome(result)


@click.command("show-pmceid", cls=Command)
@click.argument("file", metavar="[FILE]", required=False, shell_complete=complete_path)
@filter_option
@pmu_filter_option
@backend_option
@kernel_option
@cpu_option
@events_db_option
@json_option
@max_bytes_option
def show_pmceid(file: str | None, filter_path: str | None, pmu_filter: str | None,
                backend: str, kernel: str | None, cpu: str | None, events_db: str | None,
                as_json: bool, max_bytes: int) -> Outcome:
    """Host versus guest PMCEID0/1_EL0, decoded into event names.

    The policy is FILE (`-`: stdin), --filter or --pmu-filter (or none: no filter).
    """
    from kvmpmu.vmm import session

    if file is not None and filter_path is not None:
        raise UsageError("give FILE or --filter, not both")
    kernel = kernel_default(kernel) if backend == "emulated" else kernel  # kvm: the real one
    spec, reread = _spec_loader(PolicySource(file or filter_path, pmu_filter),
                                host_choice(cpu, events_db, max_bytes))
    if backend == "both":
        from kvmpmu.cli.conform_command import conform_case

        return conform_case(spec, None, kernel, "json" if as_json else "text")
    machine = _machine(backend, kernel)
    if machine is None:
        view = _with_positions(lambda s: session.show_pmceid(s, kernel), spec, reread)
    else:
        from kvmpmu.vmm.execution import show_pmceid_on

        view = _with_positions(lambda s: show_pmceid_on(s, machine), spec, reread)
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
@click.argument("files", nargs=-1, metavar="[PATH]...", shell_complete=complete_path)
@filter_option
@pmu_filter_option
@skip_unrelated_option
@kernel_option
@cpu_option
@events_db_option
@json_option
@max_bytes_option
def validate(files: tuple[str, ...], filter_path: str | None, pmu_filter: str | None,
             skip_unrelated: bool, kernel: str | None, cpu: str | None,
             events_db: str | None, as_json: bool, max_bytes: int) -> Outcome:
    """Check filter specs and workloads as `run` would, without running a guest.

    A spec gets every check `run` makes before its first ioctl, then its filters are applied
    to the emulated kernel (no guest runs). A workload's event names resolve against the host
    of the last spec before it on the command line (or --events-db), and its guest program is
    loaded. Every file is checked; the exit code is the worst any file earned. A folder
    stands for its specs and workloads (no PATH: the current folder); --filter/--pmu-filter
    add a policy.
    """
    from kvmpmu.cli.manyfiles import Tally
    from kvmpmu.cli.sources import exclude
    from kvmpmu.render.jsonout import SCHEMA, maybe_error_json
    from kvmpmu.spec.discover import expand
    from kvmpmu.spec.files import load_any
    from kvmpmu.spec.filterspec import FilterSpec
    from kvmpmu.spec.sources import load_policy
    from kvmpmu.spec.yamlio import source_name
    from kvmpmu.vmm import session

    one_stdin(*files, filter_path)
    host, kernel = host_choice(cpu, events_db, max_bytes), kernel_default(kernel)
    extra = option_source(filter_path, pmu_filter)
    if not files and extra is None:
        files = (".",)  # as linters do: the current folder
    paths = expand(files, "spec", max_bytes, exclude(), also="workload",
                   skip_unrelated=skip_unrelated)
    spec = load_policy(PolicySource(), host)
    inputs: list[Any] = [*paths, *([extra] if extra is not None else [])]
    tally = Tally(len(inputs))
    records = []
    for item in inputs:
        kind = None
        name = item.name if isinstance(item, PolicySource) else source_name(item)
        try:
            own = host if isinstance(item, PolicySource) else host.for_file(item)
            loaded = load_policy(item, host) if isinstance(item, PolicySource) else \
                load_any(item, max_bytes, own.events_db,
                         partial(_names_for, item, spec, host), own.cpu)
            if isinstance(loaded, FilterSpec):
                kind, spec = "spec", loaded
                session.dry_boot(loaded, None, kernel)
            else:
                kind = "workload"
                session.guest_program(loaded)
        except KvmpmuError as err:
            tally.failed(err)
            records.append({"file": name, "kind": kind, "ok": False,
                            "error": maybe_error_json(err)})
            continue
        records.append({"file": name, "kind": kind, "ok": True, "error": None})
        if not as_json:
            emit_text(f"{name}: ok ({kind})")
    if as_json:
        emit_json({"schema": SCHEMA, "ok": tally.ok(), "files": records,
                   "summary": tally.json()})
    note(tally.line())
    return tally.outcome()


@click.command(cls=Command)
@click.option("--cpu", metavar="MODEL", default="generic", show_default=True,
              help="CPU model whose events to list (see `kvmpmu cpus`).")
@events_db_option
@click.option("--search", metavar="TEXT", shell_complete=complete_event,
              help="Only events whose number, name or description matches (case-insensitive).")
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
