"""`kvmpmu conform`: the same spec and workload on two machines (a real kernel and the model
configured from its host), every difference reported; one case, or the built-in corpus."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kvmpmu.conform.builder import Case
from kvmpmu.conform.compare import Difference, Where, compare
from kvmpmu.errors import SourceLoc, SpecError
from kvmpmu.kvm.host import Host
from kvmpmu.kvm.profiles import PROFILES, profile_for_release
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.workload import Workload
from kvmpmu.vmm.execution import run_spec
from kvmpmu.vmm.machine import EmulatedMachine, Machine
from kvmpmu.vmm.results import RunResult
from kvmpmu.vmm.session import host_pmu_types


@dataclass
class CaseResult:
    name: str
    differences: list[Difference]
    real: RunResult | None = None  # None: the machine refused the case before any call
    emulated: RunResult | None = None

    @property
    def agrees(self) -> bool:
        return not self.differences


@dataclass
class Conformance:
    """Every case, and what was compared with what."""

    release: str  # the real kernel's release
    profile: str  # the profile the model ran
    real_backend: str
    emulated_backend: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def differing(self) -> int:
        return sum(not c.agrees for c in self.cases)

    @property
    def ok(self) -> bool:
        return self.differing == 0


def emulated_twin(real: Machine, kernel: str | None = None) -> EmulatedMachine:
    """The model on the real machine's host, at the profile nearest at or below its release
    (or `kernel`)."""
    profile = PROFILES[kernel] if kernel else profile_for_release(real.release)
    return EmulatedMachine(real.host, profile)


def check_expressible(spec: FilterSpec, workload: Workload | None, host: Host) -> None:
    """The host PMUs a spec or scenario names must be the machine's own (or `default`)."""
    names = tuple(host_pmu_types(host))
    wanted: list[tuple[str, SourceLoc | None]] = []
    if spec.vm.pmu is not None:
        wanted.append((spec.vm.pmu, spec.vm.pmu_loc))
    if workload is not None and workload.scenario is not None:
        wanted += [(i.pmu_name, i.loc) for i in workload.scenario if i.pmu_name is not None]
    for name, loc in wanted:
        if name not in names:
            raise SpecError(f"host PMU {name!r} is not on the machine's host (it has "
                            f"{', '.join(names)})", loc=loc, path="pmu")


def _attempt(spec: FilterSpec, workload: Workload | None, machine: Machine
             ) -> RunResult | SpecError:
    try:
        return run_spec(spec, workload, None, None, machine)
    except SpecError as err:  # a check that depends on the profile: one side may pass it
        return err


def conform_one(spec: FilterSpec, workload: Workload | None, real: Machine,
                emulated: Machine, name: str | None = None) -> CaseResult:
    """Run the case on both machines and compare. A spec both machines refuse is an error of
    the input (raised); one that only one refuses is a difference."""
    check_expressible(spec, workload, real.host)
    name = name or (workload.file if workload is not None else spec.file)
    a, b = _attempt(spec, workload, real), _attempt(spec, workload, emulated)
    if isinstance(a, SpecError) and isinstance(b, SpecError):
        raise a
    if isinstance(a, SpecError) or isinstance(b, SpecError):
        refused = [x.message if isinstance(x, SpecError) else None for x in (a, b)]
        return CaseResult(name, [Difference("error", Where(), refused[0], refused[1],
                                            "the case was refused on one side: "
                                            f"{refused[0] or refused[1]}")],
                          a if isinstance(a, RunResult) else None,
                          b if isinstance(b, RunResult) else None)
    return CaseResult(name, compare(a, b), a, b)


def conform_cases(cases: Iterable[Case], real: Machine, emulated: Machine) -> Conformance:
    report = Conformance(real.release, emulated.profile.name, real.name, emulated.name)
    for case in cases:
        report.cases.append(conform_one(case.spec, case.workload, real, emulated, case.name))
    return report
