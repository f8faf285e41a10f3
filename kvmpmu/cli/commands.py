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
max_bytes_option = click.option("--max-bytes", type=click.IntRange(1), default=DEFAULT_MAX_BYTES,
                                show_default=True, help="Refuse input files larger than this.")


def _load_spec(filter_path: str | None, pmu_filter: str | None, max_bytes: int) -> Any:
    from kvmpmu.spec.filterspec import FilterSpec, load_filter_spec, parse_kvmtool

    if filter_path and pmu_filter:
        raise click.UsageError("give --filter or --pmu-filter, not both")
    if pmu_filter is not None:
        return parse_kvmtool(pmu_filter)
    if filter_path:
        return load_filter_spec(filter_path, max_bytes)
    return FilterSpec(file="<no filter>")


@click.command()
@click.option("--filter", "filter_path", metavar="FILE", help="Filter spec (YAML).")
@click.option("--pmu-filter", metavar="SPEC",
              help="kvmtool syntax, e.g. 'A:0x11-0x11,D:0x30-0x3f'.")
@click.option("--workload", "workload_path", metavar="FILE", help="Scripted guest workload (YAML).")
@kernel_option
@json_option
@max_bytes_option
@boundary
def run(filter_path: str | None, pmu_filter: str | None, workload_path: str | None,
        kernel: str | None, as_json: bool, max_bytes: int) -> None:
    """Boot an emulated VM with the filter, run the guest workload, report counters and PMCEID."""
    from kvmpmu.spec.workload import load_workload
    from kvmpmu.vmm import session

    spec = _load_spec(filter_path, pmu_filter, max_bytes)
    workload = load_workload(workload_path, max_bytes) if workload_path else None
    result = session.run(spec, workload, kernel)
    if as_json:
        from kvmpmu.render.jsonout import run_json

        emit_json(run_json(result))
    else:
        from kvmpmu.render.text import run_text

        emit(run_text(result))
    if result.error:
        sys.exit(int(ExitCode.KVM_CALL_FAILED))
    if not result.ok:
        sys.exit(int(ExitCode.EXPECTATION_FAILED))


@click.command("show-pmceid")
@click.option("--filter", "filter_path", metavar="FILE", help="Filter spec (YAML).")
@click.option("--pmu-filter", metavar="SPEC", help="kvmtool syntax instead of a file.")
@kernel_option
@json_option
@max_bytes_option
@boundary
def show_pmceid(filter_path: str | None, pmu_filter: str | None, kernel: str | None,
                as_json: bool, max_bytes: int) -> None:
    """Host versus guest PMCEID0/1_EL0, decoded into event names."""
    from kvmpmu.vmm import session

    view = session.show_pmceid(_load_spec(filter_path, pmu_filter, max_bytes), kernel)
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
@json_option
@max_bytes_option
@boundary
def validate(files: tuple[str, ...], as_json: bool, max_bytes: int) -> None:
    """Check filter specs and workloads without running them."""
    from kvmpmu.cli.output import note
    from kvmpmu.errors import SpecError
    from kvmpmu.render.jsonout import SCHEMA, error_json
    from kvmpmu.spec import yamlio
    from kvmpmu.spec.filterspec import spec_from_node
    from kvmpmu.spec.schema import root
    from kvmpmu.spec.workload import workload_from_node

    records = []
    for path in files:
        kind = None
        try:
            doc = yamlio.load_file(path, max_bytes)
            kind = "workload" if isinstance(doc, dict) and ("vcpus" in doc or "expect" in doc) \
                else "spec"
            if kind == "workload":
                workload_from_node(root(doc, path), path)
            else:
                spec_from_node(root(doc, path), path)
            records.append({"file": path, "kind": kind, "ok": True, "error": None})
            if not as_json:
                click.echo(f"{path}: ok ({kind})")
        except SpecError as err:
            records.append({"file": path, "kind": kind, "ok": False,
                            "error": error_json("spec", err.message, err.loc, err.path)})
            note(err.render())
    ok = all(r["ok"] for r in records)
    if as_json:
        emit_json({"schema": SCHEMA, "ok": ok, "files": records})
    if not ok:
        sys.exit(int(ExitCode.INVALID_INPUT))
