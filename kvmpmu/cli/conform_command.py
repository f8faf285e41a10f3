"""`kvmpmu conform`: one case or the built-in corpus on the real kernel and on the model
configured from its host; `run --backend both` and `show-pmceid --backend both` are its
one-case form."""

from __future__ import annotations

from typing import Any

import click

from kvmpmu.cli.exitcodes import Outcome, UsageError
from kvmpmu.cli.loading import load_spec, load_workload
from kvmpmu.cli.options import Command, json_option, kernel_option, max_bytes_option
from kvmpmu.cli.output import emit_json, emit_text

FORMATS = ("text", "json", "tap")


def _emit(report: Any, fmt: str) -> Outcome:
    from kvmpmu.render import conform as render

    if fmt == "json":
        emit_json(render.conform_json(report))
    else:
        emit_text(render.conform_tap(report) if fmt == "tap" else render.conform_text(report))
    return Outcome(failed=not report.ok)


def _machines(kernel: str | None) -> tuple[Any, Any]:
    from kvmpmu.cli.machines import kvm_machine
    from kvmpmu.conform.run import emulated_twin

    real = kvm_machine()
    return real, emulated_twin(real, kernel)


def conform_case(spec: Any, workload: Any, kernel: str | None, fmt: str) -> Outcome:
    """One spec and workload (without a workload: the corpus's probe guest) on both."""
    from kvmpmu.conform.builder import Case, probe
    from kvmpmu.conform.run import conform_cases
    from kvmpmu.spec.workload import Workload

    if workload is None:
        workload = Workload(file=spec.file, all_steps=probe(spec.file))
    real, emulated = _machines(kernel)
    return _emit(conform_cases([Case(workload.file, spec, workload)], real, emulated), fmt)


@click.command(cls=Command)
@click.option("--filter", "filter_path", metavar="FILE", help="Filter spec (YAML).")
@click.option("--pmu-filter", metavar="SPEC", help="kvmtool syntax instead of a file.")
@click.option("--workload", "workload_path", metavar="FILE",
              help="Scripted guest workload (default: a guest that reads PMCEID and counts "
              "SW_INCR).")
@click.option("--scenario", "scenario_path", metavar="FILE",
              help="A workload with a `vmm:` section.")
@click.option("--corpus", is_flag=True, help="Run the built-in corpus instead.")
@kernel_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text (default), json, or tap (KTAP version 1, one test per case).")
@json_option
@max_bytes_option
def conform(filter_path: str | None, pmu_filter: str | None, workload_path: str | None,
            scenario_path: str | None, corpus: bool, kernel: str | None, fmt: str | None,
            as_json: bool, max_bytes: int) -> Outcome:
    """Run the same thing on the real kernel (--backend kvm) and on the model configured from
    its host, at the profile nearest at or below its release (or --kernel); print every
    difference. Exit 0 when they agree, 1 when they differ, 69 where kvm cannot run."""
    if as_json and fmt not in (None, "json"):
        raise UsageError("--json is --format json: give one of them")
    fmt = "json" if as_json else fmt or "text"
    if corpus and (filter_path or pmu_filter or workload_path or scenario_path):
        raise UsageError("--corpus runs the built-in cases: give no spec or workload")
    if not corpus:
        spec = load_spec(filter_path, pmu_filter, max_bytes)
        return conform_case(spec, load_workload(spec, workload_path, scenario_path, max_bytes),
                            kernel, fmt)
    from kvmpmu.conform.corpus import corpus as built_in
    from kvmpmu.conform.run import conform_cases

    real, emulated = _machines(kernel)
    return _emit(conform_cases(built_in(real.host), real, emulated), fmt)
