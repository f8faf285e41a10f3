"""`kvmpmu run`: boot, run the scripted guest on every vCPU, collect counters, judge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from kvmpmu.arch import events as ev
from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import GuestError
from kvmpmu.gcpause import paused_gc
from kvmpmu.kvm.system import Vcpu
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.workload import CounterExpect, PmceidExpect, ReportExpect, Workload
from kvmpmu.vmm.builder import Vmm, VmmStopped
from kvmpmu.vmm.default_workload import default_workload
from kvmpmu.vmm.guest import GuestRunner
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.results import CounterResult, ExpectResult, RunResult, VcpuResult
from kvmpmu.vmm.session import (
    host_pmu_of,
    pmceid_pair,
    pmu_info,
    profile_for,
    stopped_message,
    validate,
)

if TYPE_CHECKING:
    from kvmpmu.vmm.emulated.program import Program
    from kvmpmu.vmm.emulated.runner import CpuGuestRunner

Runner = Union[GuestRunner, "CpuGuestRunner"]  # noqa: UP007

_COMPARE = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def _counters(vcpu: Vcpu, catalog: Catalog) -> list[CounterResult]:
    vpmu, vm = vcpu.vpmu, vcpu.vm
    pmu = vm.counting_pmu(vcpu)
    out = []
    for idx in list(range(vpmu.nr_counters)) + [31]:
        event = ev.CPU_CYCLES if idx == 31 else vpmu.evtype[idx] & vpmu.event_mask
        unfilterable = event == ev.SW_INCR or (
            event == ev.CHAIN and vm.profile.chain_per_pseudocode)
        allowed = vm.filter is None or unfilterable or vm.filter.allowed(event)
        out.append(CounterResult(
            counter=idx, event=event, name=catalog.name_of(event),
            enabled=vpmu._enabled(idx), allowed=allowed,
            implemented=event == ev.SW_INCR or bool(pmu and pmu.implements(event)),
            value=vpmu.counter_value(idx), overflow=bool(vpmu.pmovs >> idx & 1)))
    return out


def _vcpu_result(vcpu: Vcpu, runner: Runner | None, catalog: Catalog) -> VcpuResult:
    vm = vcpu.vm
    result = VcpuResult(
        vcpu=vcpu.index, pmceid0=vm.guest_pmceid(vcpu, 0), pmceid1=vm.guest_pmceid(vcpu, 1),
        pmcr=vcpu.vpmu.read_pmcr(), counters=_counters(vcpu, catalog),
        reads=runner.reads if runner else [], undefined=runner.undefined if runner else [],
        irq_level=vcpu.vpmu.irq_level, ran=vcpu.has_run)
    if runner is not None and not isinstance(runner, GuestRunner):
        run = runner.outcome
        result.reports, result.console = list(run.reports), list(run.console)
        result.guest = {"instructions": run.instructions, "exceptions": run.exceptions,
                        "interrupts": run.interrupts, "finished": run.finished}
    return result


def _judge(workload: Workload, vcpus: list[VcpuResult],
           runners: list[Runner]) -> list[ExpectResult]:
    results = []
    for runner in runners:
        for step, record in runner.vmm_calls:
            expect = {"vcpu": runner.vcpu.index, "vmm": "filter", "args": record.args,
                      "expect_errno": step.expect_errno}
            results.append(ExpectResult(expect, record.errno == step.expect_errno,
                                        record.errno, step.loc))
    for exp in workload.expect:
        result = vcpus[exp.vcpu]
        if isinstance(exp, CounterExpect):
            found = [c.value for c in result.counters if c.counter == exp.counter]
            passed = bool(found) and _COMPARE[exp.op](found[0], exp.value)
            results.append(ExpectResult(exp.raw, passed, found[0] if found else None, exp.loc))
        elif isinstance(exp, ReportExpect):
            value = result.reports[exp.index] if exp.index < len(result.reports) else None
            passed = value is not None and _COMPARE[exp.op](value, exp.value)
            results.append(ExpectResult(exp.raw, passed, value, exp.loc))
        elif isinstance(exp, PmceidExpect):
            visible = [e for e in exp.visible + exp.hidden
                       if ev.pmceid_says(result.pmceid0, result.pmceid1, e)]
            passed = all(e in visible for e in exp.visible) and not any(
                e in visible for e in exp.hidden)
            shown = {"visible": [f"0x{e:04x}" for e in visible]}
            results.append(ExpectResult(exp.raw, passed, shown, exp.loc))
    return results


def run_spec(spec: FilterSpec, workload: Workload | None = None, kernel: str | None = None,
             max_instructions: int | None = None, timeout: float | None = None) -> RunResult:
    """Boot the VM as the spec says, run the guest workload on every vCPU, judge expectations."""
    catalog = spec.host.catalog()
    profile = profile_for(spec, kernel)
    validate(spec, profile, workload)
    program = _program(workload)
    vmm = Vmm(spec, profile, build_host(spec.host), catalog)
    result = RunResult(profile.name, 0, 0, vmm.log, [], [])
    runners: list[Runner] = []
    try:
        with paused_gc():
            _boot_and_run(vmm, spec, workload, program, (max_instructions, timeout), runners)
    except VmmStopped as stop:
        result.error = stopped_message(stop)
        result.error_loc = stop.record.loc
    except GuestError as fault:
        result.error, result.error_kind = fault.message, "guest"
    pmu = host_pmu_of(vmm.vm)
    result.host_pmceid0, result.host_pmceid1 = pmceid_pair(pmu)
    result.host_pmu = pmu_info(spec, pmu)
    by_index = {r.vcpu.index: r for r in runners}
    result.vcpus = [_vcpu_result(v, by_index.get(v.index), catalog) for v in vmm.vm.vcpus]
    if result.error is None and workload is not None:
        result.expectations = _judge(workload, result.vcpus, runners)
    return result


def _boot_and_run(vmm: Vmm, spec: FilterSpec, workload: Workload | None,
                  program: Program | None, limits: tuple[int | None, float | None],
                  runners: list[Runner]) -> None:
    """The VMM's set-up, then each vCPU's KVM_RUN and its guest; `runners` fills as it goes, so
    a failure still leaves what ran."""
    vmm.boot()
    for vcpu in vmm.vm.vcpus:
        vmm.run(vcpu)
        runner = _runner(vmm, vcpu, workload, program, limits)
        runners.append(runner)
        if isinstance(runner, GuestRunner):
            steps = workload or default_workload(spec.named_events, vcpu.vpmu.nr_counters)
            runner.run(steps.steps_for(vcpu.index))
        else:
            runner.run()


def _program(workload: Workload | None) -> Program | None:
    if workload is None or workload.guest is None:
        return None
    from kvmpmu.vmm.emulated.extra import need
    from kvmpmu.vmm.emulated.program import load_program

    need("unicorn")  # before any VMM call: a missing extra is a set-up error, not a guest's
    need("capstone")
    return load_program(workload.guest)


def _runner(vmm: Vmm, vcpu: Vcpu, workload: Workload | None, program: Program | None,
            limits: tuple[int | None, float | None]) -> Runner:
    if program is not None and workload is not None and workload.guest is not None:
        from kvmpmu.vmm.emulated.runner import CpuGuestRunner

        guest = workload.guest
        return CpuGuestRunner(vcpu, program, limits[0] or guest.max_instructions,
                              limits[1] or guest.timeout, guest.regs)
    return GuestRunner(vmm, vcpu)
