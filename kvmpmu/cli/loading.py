"""Loading what the run commands take: the spec and the workload (or scenario) they name."""

from __future__ import annotations

from typing import Any

from kvmpmu.cli.exitcodes import UsageError


def one_stdin(*paths: str | None) -> None:
    """Standard input can be read once: `-` may stand for one input only."""
    if sum(p == "-" for p in paths) > 1:
        raise UsageError("`-` (standard input) can stand for one input only")


def load_spec(filter_path: str | None, pmu_filter: str | None, max_bytes: int,
              events_db: str | None = None, fast_json: bool = True,
              cpu: str | None = None) -> Any:
    """--filter FILE, --pmu-filter in kvmtool's syntax (both: the file's host and VM with the
    string's filters), or no filter."""
    from kvmpmu.spec.sources import HostChoice, PolicySource, load_policy

    return load_policy(PolicySource(filter_path, pmu_filter),
                       HostChoice(cpu, events_db, max_bytes), fast_json)


def load_workload(spec: Any, workload_path: str | None, scenario_path: str | None,
                  max_bytes: int) -> Any:
    """--workload, or --scenario: a workload that must have a `vmm:` section."""
    from kvmpmu.errors import SourceLoc, SpecError
    from kvmpmu.spec.workload import load_workload

    if workload_path and scenario_path:
        raise UsageError("give --workload or --scenario, not both")
    path = workload_path or scenario_path
    workload = load_workload(path, max_bytes, spec.host.catalog(),
                             spec.host.max_event) if path else None
    if scenario_path and workload is not None and workload.scenario is None:
        raise SpecError("a scenario needs a `vmm:` section (the KVM calls to make); "
                        "use --workload for a workload without one",
                        loc=SourceLoc(workload.file, 1, 1))
    return workload
