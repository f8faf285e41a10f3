"""Policy tools: explain, diff, compile, import, presets. Parse options, call, render."""

from __future__ import annotations

from typing import Any

import click

from kvmpmu import SCHEMA
from kvmpmu.arch.catalog import Catalog
from kvmpmu.cli.completion import complete_cpu, complete_file_then_events, complete_path
from kvmpmu.cli.exitcodes import OK, Outcome, UsageError
from kvmpmu.cli.options import (
    Command,
    events_db_option,
    json_option,
    kernel_option,
    max_bytes_option,
)
from kvmpmu.cli.outfile import STDOUT, write_output
from kvmpmu.cli.output import emit, emit_bytes, emit_json, emit_text, is_terminal, note
from kvmpmu.cli.sources import (
    cpu_option,
    filter_option,
    host_choice,
    kernel_default,
    option_source,
    pmu_filter_option,
    policy_sources,
    require_one,
)
from kvmpmu.kvm.profiles import PROFILE_NAMES
from kvmpmu.policy.formats import FORMATS, ExportFormat
from kvmpmu.spec.sources import HostChoice, PolicySource


def _evaluate(source: PolicySource, host: HostChoice, kernel: str | None) -> Any:
    from kvmpmu.policy.evaluate import Evaluation
    from kvmpmu.spec.sources import load_policy

    return Evaluation(load_policy(source, host), kernel)


@click.command(cls=Command)
@click.argument("args", nargs=-1, required=True, metavar="[FILE] EVENT...",
                shell_complete=complete_file_then_events)
@filter_option
@pmu_filter_option
@kernel_option
@cpu_option
@events_db_option
@json_option
@max_bytes_option
def explain(args: tuple[str, ...], filter_path: str | None, pmu_filter: str | None,
            kernel: str | None, cpu: str | None, events_db: str | None, as_json: bool,
            max_bytes: int) -> Outcome:
    """Say for each event (name or number) what decided it, what PMCEID shows, if it counts.

    The policy is FILE (`-`: stdin), or --filter/--pmu-filter (then every argument is an
    event).
    """
    from kvmpmu.policy.explain import explain as explain_event
    from kvmpmu.render.policy import explain_json, explain_text
    from kvmpmu.spec.filterspec import parse_event_arg

    source = option_source(filter_path, pmu_filter)
    if source is None:
        source, args = PolicySource(args[0]), args[1:]
    if not args:
        raise UsageError("name at least one EVENT to explain")
    e = _evaluate(source, host_choice(cpu, events_db, max_bytes), kernel_default(kernel))
    e.require_accepted("explain")
    events = [parse_event_arg(text, e.catalog, i) for i, text in enumerate(args)]
    items = [explain_event(e, x) for x in events]
    if as_json:
        emit_json(explain_json(source.name, e.profile.name, e.nr_events, items))
    else:
        emit(explain_text(items))
    return OK


@click.command(cls=Command)
@click.argument("files", nargs=-1, metavar="[A] [B]", shell_complete=complete_path)
@filter_option
@pmu_filter_option
@kernel_option
@click.option("--kernel-a", type=click.Choice(PROFILE_NAMES), help="A's kernel profile.")
@click.option("--kernel-b", type=click.Choice(PROFILE_NAMES), help="B's kernel profile.")
@cpu_option
@click.option("--cpu-a", metavar="MODEL", shell_complete=complete_cpu, help="A's host CPU.")
@click.option("--cpu-b", metavar="MODEL", shell_complete=complete_cpu, help="B's host CPU.")
@events_db_option
@json_option
@max_bytes_option
def diff(files: tuple[str, ...], filter_path: str | None, pmu_filter: str | None,
         kernel: str | None, kernel_a: str | None, kernel_b: str | None, cpu: str | None,
         cpu_a: str | None, cpu_b: str | None, events_db: str | None, as_json: bool,
         max_bytes: int) -> Outcome:
    """The events two policies decide differently, and the guest PMCEID bits that change.

    A and B are files (`-`: stdin), then the policy of --filter/--pmu-filter. With one
    policy, it is compared with itself across --kernel-a/-b or --cpu-a/-b. Exits 0 when the
    two are equivalent, 1 when they differ.
    """
    from kvmpmu.policy.diff import diff as diff_policies
    from kvmpmu.render.policy import diff_json, diff_text

    sides = policy_sources(files, filter_path, pmu_filter)
    if len(sides) not in (1, 2):
        raise UsageError(f"diff compares two policies, or one across two kernels or hosts "
                         f"({len(sides)} given)")
    source_a, source_b = sides[0], sides[-1]
    kernel = kernel_default(kernel)
    a = _evaluate(source_a, host_choice(cpu_a or cpu, events_db, max_bytes), kernel_a or kernel)
    a.require_accepted("compare")
    b = _evaluate(source_b, host_choice(cpu_b or cpu, events_db, max_bytes), kernel_b or kernel)
    b.require_accepted("compare")
    side_a, side_b = _sides(source_a.name, a, source_b.name, b)
    result = diff_policies(a, b)
    names = Catalog(a.catalog.name, {**b.catalog.events, **a.catalog.events})  # both hosts'
    if as_json:
        emit_json(diff_json(side_a, side_b, result, names))
    else:
        emit(diff_text(side_a, side_b, result, names))
    if not result.same:
        note(f"{side_a.label} and {side_b.label} differ: {len(result.changes)} event ranges, "
             f"{len(result.pmceid)} guest PMCEID bits")
    return Outcome(failed=not result.same)


def _sides(name_a: str, a: Any, name_b: str, b: Any) -> tuple[Any, Any]:
    """Each side named; with its kernel and host where those differ between the sides."""
    from kvmpmu.render.policy import DiffSide

    host_a, host_b = a.catalog.name, b.catalog.name
    labels = []
    for name, kernel, host in ((name_a, a.profile.name, host_a), (name_b, b.profile.name,
                                                                  host_b)):
        extra = ([f"kernel {kernel}"] if a.profile.name != b.profile.name else []) + \
            ([f"host {host}"] if host_a != host_b else [])
        labels.append(f"{name} ({', '.join(extra)})" if extra else name)
    return (DiffSide(name_a, a.profile.name, host_a, labels[0]),
            DiffSide(name_b, b.profile.name, host_b, labels[1]))


@click.command("compile", cls=Command)
@click.argument("file", metavar="[FILE]", required=False, shell_complete=complete_path)
@filter_option
@pmu_filter_option
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              default="yaml", show_default=True, help="What to write.")
@click.option("-o", "--output", metavar="OUT",
              help="Write here instead of stdout (- is stdout; files are replaced atomically).")
@kernel_option
@cpu_option
@events_db_option
@json_option
@max_bytes_option
def compile_cmd(file: str | None, filter_path: str | None, pmu_filter: str | None,
                fmt: ExportFormat, output: str | None, kernel: str | None, cpu: str | None,
                events_db: str | None, as_json: bool, max_bytes: int) -> Outcome:
    """The shortest FILTER call sequence with exactly the same allowed set.

    The policy is FILE (`-`: stdin) or --filter/--pmu-filter.
    """
    from kvmpmu.policy.compile import compile_spec
    from kvmpmu.policy.export import calls_json, render

    source = require_one(policy_sources((file,) if file else (), filter_path, pmu_filter),
                         "compile")
    _check_output(output, as_json, binary=fmt == "bin")
    e = _evaluate(source, host_choice(cpu, events_db, max_bytes), kernel_default(kernel))
    calls = compile_spec(e)
    header = (f"kvmpmu compile {source.name} (kernel {e.profile.name}, {e.nr_events}-event "
              f"space): {len(e.spec.filters)} FILTER calls -> {len(calls)}")
    data = render(fmt, calls, e.catalog, e.profile.name, e.spec.sections, header)
    if output:
        write_output(output, data)
    if as_json:
        emit_json({"schema": SCHEMA, "ok": True, "file": source.name, "kernel": e.profile.name,
                   "event_space": e.nr_events, "input_calls": len(e.spec.filters),
                   "filters": calls_json(calls, e.catalog), "format": fmt, "output": output})
    elif not output:
        emit_bytes(data)
    return OK


def _check_output(output: str | None, as_json: bool, binary: bool = False) -> None:
    """Refuse what would mix or garble stdout: -o - with --json, binary on a terminal."""
    if output == STDOUT and as_json:
        raise UsageError("-o - and --json both write to standard output: give -o FILE")
    if binary and output is None and not as_json and is_terminal():
        raise UsageError("binary output to a terminal: give -o FILE (or -o - to insist)")


@click.command("import", cls=Command)
@click.option("--kvmtool", "kvmtool", required=True, metavar="SPEC",
              help="kvmtool's --pmu-filter string, e.g. 'A:0x11-0x11,D:0x30-0x3f'.")
@click.option("-o", "--output", metavar="OUT",
              help="Write here instead of stdout (- is stdout; files are replaced atomically).")
@json_option
def import_cmd(kvmtool: str, output: str | None, as_json: bool) -> Outcome:
    """Turn kvmtool's --pmu-filter syntax into a filter spec."""
    from kvmpmu.policy.export import spec_from_kvmtool
    from kvmpmu.spec.kvmtool import parse_kvmtool

    _check_output(output, as_json)
    spec = parse_kvmtool(kvmtool, source="--kvmtool")
    text = spec_from_kvmtool(list(spec.filters), spec.host.catalog(), kvmtool)
    if output:
        write_output(output, text.encode())
    if as_json:
        emit_json({"schema": SCHEMA, "ok": True, "spec": text, "output": output})
    elif not output:
        emit_text(text, nl=False)
    return OK


@click.command(cls=Command)
@click.option("--cpu", metavar="MODEL", default="generic", show_default=True,
              help="Resolve the presets against this CPU's catalog and event space.")
@json_option
def presets(cpu: str, as_json: bool) -> Outcome:
    """List the event presets usable as `- deny: {preset: NAME}`."""
    from kvmpmu.vmm.listing import list_presets, resolve_cpu

    rows = list_presets(resolve_cpu(cpu))
    if as_json:
        from kvmpmu.render.listing import presets_json

        emit_json(presets_json(cpu, rows))
    else:
        from kvmpmu.render.listing import presets_text

        emit(presets_text(cpu, rows))
    return OK
