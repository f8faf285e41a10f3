"""Workload files run with their policy, as a repository's tests: each file with the spec
the command line gives or the one it names (`policy:`), on each kernel profile it names
(`kernels:`), its expectations judged."""

from __future__ import annotations

from dataclasses import dataclass

from kvmpmu.errors import KvmpmuError
from kvmpmu.spec import yamlio
from kvmpmu.spec.sources import HostChoice, PolicySource, declared_policy, load_policy
from kvmpmu.spec.workload import load_workload
from kvmpmu.vmm.execution import run_spec
from kvmpmu.vmm.results import RunResult


@dataclass
class FileRun:
    """One workload file on one kernel: its result, or the error that kept it from running
    (or that stopped it: then `result` has what ran before)."""

    file: str
    policy: str
    kernel: str | None
    result: RunResult | None = None
    error: KvmpmuError | None = None
    skipped: str | None = None  # why it did not run on this kernel

    @property
    def passed(self) -> bool:
        return self.error is None and (self.result is None or self.result.ok)


def policy_for(path: str, given: PolicySource | None, max_bytes: int) -> PolicySource:
    """The command line's policy, else the one the workload names, else none."""
    if given is not None:
        return given
    declared = declared_policy(path, max_bytes)
    return PolicySource(declared)


def run_file(path: str, given: PolicySource | None, host: HostChoice,
             kernel: str | None = None, all_kernels: bool = False,
             only: str | None = None) -> list[FileRun]:
    """The workload with its policy: on `kernel` (None: the spec's), or with `all_kernels`
    on each profile the file's `kernels:` names (`only` picks one of them)."""
    name = yamlio.source_name(path)
    try:
        source = policy_for(path, given, host.max_bytes)
        spec = load_policy(source, host)
        workload = load_workload(path, host.max_bytes, spec.host.catalog(),
                                 spec.host.max_event)
    except KvmpmuError as err:
        return [FileRun(name, "?", kernel, error=err)]
    kernels: list[str | None] = [only or kernel]
    if all_kernels and workload.kernels:
        kernels = [k for k in workload.kernels if only in (None, k)]
        if not kernels:
            return [FileRun(name, source.name, only,
                            skipped=f"its kernels are {', '.join(workload.kernels)}")]
    runs = []
    for profile in kernels:
        try:
            result = run_spec(spec, workload, profile)
        except KvmpmuError as err:
            runs.append(FileRun(name, source.name, profile, error=err))
            continue
        runs.append(FileRun(name, source.name, result.kernel, result, result.error))
    return runs
