"""Policy tools: lint, explain, diff, compile, import, presets. Parse options, call, render."""

from __future__ import annotations

from typing import Any

import click

from kvmpmu import SCHEMA
from kvmpmu.cli.exitcodes import OK, Outcome, UsageError
from kvmpmu.cli.loading import one_stdin
from kvmpmu.cli.options import (
    Command,
    events_db_option,
    json_option,
    kernel_option,
    max_bytes_option,
)
from kvmpmu.cli.outfile import STDOUT, write_output
from kvmpmu.cli.output import emit, emit_bytes, emit_json, emit_text, is_terminal, note
from kvmpmu.errors import KvmpmuError
from kvmpmu.policy.formats import FORMATS, ExportFormat


def _evaluate(path: str, kernel: str | None, events_db: str | None, max_bytes: int) -> Any:
    from kvmpmu.policy.evaluate import Evaluation
    from kvmpmu.spec.filterspec import load_filter_spec

    return Evaluation(load_filter_spec(path, max_bytes, events_db), kernel)


@click.command(cls=Command)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too, not only on errors.")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
def lint(files: tuple[str, ...], strict: bool, kernel: str | None, events_db: str | None,
         as_json: bool, max_bytes: int) -> Outcome:
    """Find the filter API's traps in policies: file:line:col, a stable code, a fix.

    Every file is linted; a file that cannot be read is an error and the others go on.
    """
    from kvmpmu.cli.manyfiles import Tally
    from kvmpmu.policy.lint import Finding
    from kvmpmu.policy.lint import lint as lint_spec
    from kvmpmu.render.policy import finding_text, lint_json
    from kvmpmu.spec.filterspec import load_filter_spec
    from kvmpmu.spec.yamlio import source_name

    one_stdin(*files)
    tally = Tally(len(files))
    results: list[tuple[str, list[Finding], KvmpmuError | None]] = []
    failing = {"error", "warning"} if strict else {"error"}
    for path in files:
        name = source_name(path)
        try:
            findings = lint_spec(load_filter_spec(path, max_bytes, events_db), kernel)
        except KvmpmuError as err:
            tally.failed(err)
            results.append((name, [], err))
            continue
        results.append((name, findings, None))
        tally.error_findings += sum(f.severity == "error" for f in findings)
        tally.warnings += sum(f.severity == "warning" for f in findings)
        tally.verdict_failed |= any(f.severity in failing for f in findings)
        if not as_json:
            for finding in findings:
                emit_text(finding_text(finding))
            if not findings:
                emit_text(f"{name}: no findings")
    if as_json:
        emit_json(lint_json(results, tally.ok(), tally.json()))
    note(tally.line())
    return tally.outcome()


@click.command(cls=Command)
@click.argument("file", metavar="FILE")
@click.argument("event_args", nargs=-1, required=True, metavar="EVENT...")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
def explain(file: str, event_args: tuple[str, ...], kernel: str | None, events_db: str | None,
            as_json: bool, max_bytes: int) -> Outcome:
    """Say for each event (name or number) what decided it, what PMCEID shows, if it counts."""
    from kvmpmu.policy.explain import explain as explain_event
    from kvmpmu.render.policy import explain_json, explain_text
    from kvmpmu.spec.filterspec import parse_event_arg
    from kvmpmu.spec.yamlio import source_name

    e = _evaluate(file, kernel, events_db, max_bytes)
    e.require_accepted("explain")
    events = [parse_event_arg(text, e.catalog, i) for i, text in enumerate(event_args)]
    items = [explain_event(e, x) for x in events]
    if as_json:
        emit_json(explain_json(source_name(file), e.profile.name, e.nr_events, items))
    else:
        emit(explain_text(items))
    return OK


@click.command(cls=Command)
@click.argument("file_a", metavar="A")
@click.argument("file_b", metavar="B")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
def diff(file_a: str, file_b: str, kernel: str | None, events_db: str | None, as_json: bool,
         max_bytes: int) -> Outcome:
    """The events two policies decide differently, and the guest PMCEID bits that change.

    Exits 0 when the policies are equivalent, 1 when they differ.
    """
    from kvmpmu.policy.diff import diff as diff_policies
    from kvmpmu.render.policy import diff_json, diff_text
    from kvmpmu.spec.yamlio import source_name

    one_stdin(file_a, file_b)
    a = _evaluate(file_a, kernel, events_db, max_bytes)
    a.require_accepted("compare")
    b = _evaluate(file_b, kernel, events_db, max_bytes)
    b.require_accepted("compare")
    name_a, name_b = source_name(file_a), source_name(file_b)
    result = diff_policies(a, b)
    if as_json:
        emit_json(diff_json(name_a, name_b, result, a.catalog))
    else:
        emit(diff_text(name_a, name_b, result, a.catalog))
    if not result.same:
        note(f"{name_a} and {name_b} differ: {len(result.changes)} event ranges, "
             f"{len(result.pmceid)} guest PMCEID bits")
    return Outcome(failed=not result.same)


@click.command("compile", cls=Command)
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              default="yaml", show_default=True, help="What to write.")
@click.option("-o", "--output", metavar="OUT",
              help="Write here instead of stdout (- is stdout; files are replaced atomically).")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
def compile_cmd(file: str, fmt: ExportFormat, output: str | None, kernel: str | None,
                events_db: str | None, as_json: bool, max_bytes: int) -> Outcome:
    """The shortest FILTER call sequence with exactly the same allowed set."""
    from kvmpmu.policy.compile import compile_spec
    from kvmpmu.policy.export import calls_json, render
    from kvmpmu.spec.yamlio import source_name

    _check_output(output, as_json, binary=fmt == "bin")
    e = _evaluate(file, kernel, events_db, max_bytes)
    calls = compile_spec(e)
    header = (f"kvmpmu compile {source_name(file)} (kernel {e.profile.name}, {e.nr_events}-event "
              f"space): {len(e.spec.filters)} FILTER calls -> {len(calls)}")
    data = render(fmt, calls, e.catalog, e.profile.name, e.spec.sections, header)
    if output:
        write_output(output, data)
    if as_json:
        emit_json({"schema": SCHEMA, "ok": True, "file": source_name(file),
                   "kernel": e.profile.name, "event_space": e.nr_events,
                   "input_calls": len(e.spec.filters),
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
