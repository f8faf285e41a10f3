"""Policy tools: lint, explain, diff, compile, import, presets. Parse options, call, render."""

from __future__ import annotations

import sys
from typing import Any

import click

from kvmpmu.cli.boundary import boundary
from kvmpmu.cli.commands import events_db_option, json_option, kernel_option, max_bytes_option
from kvmpmu.cli.exitcodes import ExitCode
from kvmpmu.cli.output import emit, emit_json, write_output


def _evaluate(path: str, kernel: str | None, events_db: str | None, max_bytes: int) -> Any:
    from kvmpmu.policy.evaluate import Evaluation
    from kvmpmu.spec.filterspec import load_filter_spec

    return Evaluation(load_filter_spec(path, max_bytes, events_db), kernel)


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too, not only on errors.")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
@boundary
def lint(files: tuple[str, ...], strict: bool, kernel: str | None, events_db: str | None,
         as_json: bool, max_bytes: int) -> None:
    """Find the filter API's traps in policies: file:line:col, a stable code, a fix."""
    from kvmpmu.policy.lint import lint as lint_spec
    from kvmpmu.render.policy import finding_text, lint_json
    from kvmpmu.spec.filterspec import load_filter_spec

    results = []
    for path in files:
        results.append((path, lint_spec(load_filter_spec(path, max_bytes, events_db), kernel)))
    failing = {"error", "warning"} if strict else {"error"}
    ok = not any(f.severity in failing for _, findings in results for f in findings)
    if as_json:
        emit_json(lint_json(results, ok))
    else:
        for path, findings in results:
            for finding in findings:
                click.echo(finding_text(finding))
            if not findings:
                click.echo(f"{path}: no findings")
    if not ok:
        sys.exit(int(ExitCode.EXPECTATION_FAILED))


@click.command()
@click.argument("file", metavar="FILE")
@click.argument("event_args", nargs=-1, required=True, metavar="EVENT...")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
@boundary
def explain(file: str, event_args: tuple[str, ...], kernel: str | None, events_db: str | None,
            as_json: bool, max_bytes: int) -> None:
    """Say for each event (name or number) what decided it, what PMCEID shows, if it counts."""
    from kvmpmu.policy.explain import explain as explain_event
    from kvmpmu.render.policy import explain_json, explain_text
    from kvmpmu.spec.filterspec import parse_event_arg

    e = _evaluate(file, kernel, events_db, max_bytes)
    events = [parse_event_arg(text, e.catalog, i) for i, text in enumerate(event_args)]
    items = [explain_event(e, x) for x in events]
    if as_json:
        emit_json(explain_json(file, e.profile.name, e.nr_events, items))
    else:
        emit(explain_text(items))


@click.command()
@click.argument("file_a", metavar="A")
@click.argument("file_b", metavar="B")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
@boundary
def diff(file_a: str, file_b: str, kernel: str | None, events_db: str | None, as_json: bool,
         max_bytes: int) -> None:
    """The events two policies decide differently, and the guest PMCEID bits that change.

    Exits 0 when the policies are equivalent, 1 when they differ.
    """
    from kvmpmu.policy.diff import diff as diff_policies
    from kvmpmu.render.policy import diff_json, diff_text

    a = _evaluate(file_a, kernel, events_db, max_bytes)
    b = _evaluate(file_b, kernel, events_db, max_bytes)
    result = diff_policies(a, b)
    if as_json:
        emit_json(diff_json(file_a, file_b, result, a.catalog))
    else:
        emit(diff_text(file_a, file_b, result, a.catalog))
    if not result.same:
        sys.exit(int(ExitCode.EXPECTATION_FAILED))


@click.command("compile")
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", type=click.Choice(("yaml", "kvmtool", "c", "bin", "json")),
              default="yaml", show_default=True, help="What to write.")
@click.option("-o", "--output", metavar="OUT", help="Write here (atomically) instead of stdout.")
@kernel_option
@events_db_option
@json_option
@max_bytes_option
@boundary
def compile_cmd(file: str, fmt: str, output: str | None, kernel: str | None,
                events_db: str | None, as_json: bool, max_bytes: int) -> None:
    """The shortest FILTER call sequence with exactly the same allowed set."""
    from kvmpmu.policy.compile import compile_spec
    from kvmpmu.policy.export import calls_json, render

    e = _evaluate(file, kernel, events_db, max_bytes)
    calls = compile_spec(e)
    header = (f"kvmpmu compile {file} (kernel {e.profile.name}, {e.nr_events}-event space): "
              f"{len(e.spec.filters)} FILTER calls -> {len(calls)}")
    data = render(fmt, calls, e.catalog, e.profile.name, e.spec.sections, header)
    if output:
        write_output(output, data)
    if as_json:
        emit_json({"schema": 1, "ok": True, "file": file, "kernel": e.profile.name,
                   "event_space": e.nr_events, "input_calls": len(e.spec.filters),
                   "filters": calls_json(calls, e.catalog), "format": fmt, "output": output})
    elif not output:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@click.command("import")
@click.option("--kvmtool", "kvmtool", required=True, metavar="SPEC",
              help="kvmtool's --pmu-filter string, e.g. 'A:0x11-0x11,D:0x30-0x3f'.")
@click.option("-o", "--output", metavar="OUT", help="Write here (atomically) instead of stdout.")
@json_option
@boundary
def import_cmd(kvmtool: str, output: str | None, as_json: bool) -> None:
    """Turn kvmtool's --pmu-filter syntax into a filter spec."""
    from kvmpmu.policy.export import spec_from_kvmtool
    from kvmpmu.spec.kvmtool import parse_kvmtool

    spec = parse_kvmtool(kvmtool)
    text = spec_from_kvmtool(list(spec.filters), spec.host.catalog(), kvmtool)
    if output:
        write_output(output, text.encode())
    if as_json:
        emit_json({"schema": 1, "ok": True, "spec": text, "output": output})
    elif not output:
        click.echo(text, nl=False)


@click.command()
@click.option("--cpu", metavar="MODEL", default="generic", show_default=True,
              help="Resolve the presets against this CPU's catalog and event space.")
@json_option
@boundary
def presets(cpu: str, as_json: bool) -> None:
    """List the event presets usable as `- deny: {preset: NAME}`."""
    from kvmpmu.vmm.listing import list_presets, resolve_cpu

    rows = list_presets(resolve_cpu(cpu))
    if as_json:
        from kvmpmu.render.listing import presets_json

        emit_json(presets_json(cpu, rows))
    else:
        from kvmpmu.render.listing import presets_text

        emit(presets_text(cpu, rows))
