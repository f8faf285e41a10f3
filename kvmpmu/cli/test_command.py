"""`kvmpmu test`: a policy repository's tests, as the `kvmpmu-test` pre-commit hook and CI run
them: every workload with expectations and every scenario, with its policy, on its kernels."""

from __future__ import annotations

import os
from typing import Any

import click

from kvmpmu.cli.completion import complete_path
from kvmpmu.cli.defaults import current_config
from kvmpmu.cli.exitcodes import Outcome
from kvmpmu.cli.manyfiles import count
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
    exclude,
    filter_option,
    host_choice,
    kernel_default,
    option_source,
    pmu_filter_option,
)


def test_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    """The command line's paths, else the configuration's `test-paths` (relative to its
    file), else the current folder."""
    if paths:
        return paths
    config = current_config()
    configured = config.get("test-paths")
    if not configured:
        return (".",)
    return tuple(os.path.relpath(config.folder / p) for p in configured)


def _record(run: Any) -> dict[str, Any]:
    from kvmpmu.render.jsonout import maybe_error_json

    result = run.result
    return {"file": run.file, "policy": run.policy, "kernel": run.kernel,
            "ok": run.passed, "skipped": run.skipped,
            "expectations": [] if result is None else
            [{"expect": e.expect, "passed": e.passed, "actual": e.actual,
              "location": str(e.loc) if e.loc else None} for e in result.expectations],
            "error": maybe_error_json(run.error)}


def _report(run: Any, quiet: bool) -> None:
    from kvmpmu.render.text import expectations_table

    where = f"{run.file} (kernel {run.kernel})" if run.kernel else run.file
    if run.skipped:
        if not quiet:
            emit_text(f"{where}: skipped: {run.skipped}")
        return
    if run.passed:
        if not quiet:
            emit_text(f"{where}: ok")
        return
    emit_text(f"{where}: FAILED (policy {run.policy})")
    if run.result is not None and run.result.expectations:
        emit(expectations_table(run.result))  # as `run` shows it
    if run.error is not None:
        report_error(run.error)


@click.command(cls=Command)
@click.argument("paths", nargs=-1, metavar="[PATH]...", shell_complete=complete_path)
@filter_option
@pmu_filter_option
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the summary.")
@kernel_option
@cpu_option
@events_db_option
@json_option
@max_bytes_option
def test(paths: tuple[str, ...], filter_path: str | None, pmu_filter: str | None, quiet: bool,
         kernel: str | None, cpu: str | None, events_db: str | None, as_json: bool,
         max_bytes: int) -> Outcome:
    """Run a policy repository's tests and judge their expectations.

    The tests are the workloads with `expect:` and the scenarios (`vmm:`) under PATH
    (default: [tool.kvmpmu] test-paths, else the current folder). Each runs with its
    `policy:` (or --filter/--pmu-filter) on each kernel its `kernels:` names (--kernel picks
    one of them), else on --kernel, the configuration's kernel or its policy's. A failure
    shows its expectation table.
    """
    from kvmpmu.render.jsonout import SCHEMA
    from kvmpmu.spec.discover import test_files
    from kvmpmu.vmm.workload_files import run_file

    host = host_choice(cpu, events_db, max_bytes)
    given = option_source(filter_path, pmu_filter)
    runs = [run for path in test_files(test_paths(paths), max_bytes, exclude())
            for run in run_file(path, given, host, kernel_default(kernel), all_kernels=True,
                                only=kernel)]
    for run in runs if not as_json else ():
        _report(run, quiet)
    ran = [r for r in runs if not r.skipped]
    failed = [r for r in ran if not r.passed]
    summary = {"tests": len(ran), "passed": len(ran) - len(failed), "failed": len(failed),
               "skipped": len(runs) - len(ran)}
    if as_json:
        emit_json({"schema": SCHEMA, "ok": not failed, "tests": [_record(r) for r in runs],
                   "summary": summary})
    note(f"{count(len(ran), 'test')}, {summary['passed']} passed, {len(failed)} failed"
         + (f", {summary['skipped']} skipped" if summary["skipped"] else ""))
    errors = tuple(r.error for r in failed if r.error is not None)
    return Outcome(failed=len(failed) > len(errors), errors=errors)
