"""`kvmpmu run`: the default boot sequence or a scenario, the guests, counters, expectations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmpmu.arch import events as ev
from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import GuestError
from kvmpmu.gcpause import paused_gc
from kvmpmu.kvm.vcpu import Vcpu
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.workload import (
    CounterExpect,
    PmceidExpect,
    ReadExpect,
    ReportExpect,
    UndefExpect,
    Workload,
)
from kvmpmu.vmm.backend import DefaultImage, GuestImage, GuestOutput, ProgramImage, ScriptImage
from kvmpmu.vmm.boot import boot
from kvmpmu.vmm.results import CounterResult, ExpectResult, RunResult, VcpuResult
from kvmpmu.vmm.scenario import run_scenario
from kvmpmu.vmm.session import (
    emulated_vmm,
    host_pmu_of,
    pmceid_pair,
    pmu_info,
    pmu_types,
    profile_for,
    stopped_message,
    validate,
)
from kvmpmu.vmm.vmm import Vmm, VmmStopped

if TYPE_CHECKING:
    from kvmpmu.vmm.emulated.program import Program

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


def _vcpu_result(vcpu: Vcpu, output: GuestOutput, catalog: Catalog) -> VcpuResult:
    """A vCPU without a PMU (not initialised, or without the feature) shows none."""
    vm, pmu = vcpu.vm, vcpu.has_pmu
    return VcpuResult(
        vcpu=vcpu.index, pmceid0=vm.guest_pmceid(vcpu, 0) if pmu else 0,
        pmceid1=vm.guest_pmceid(vcpu, 1) if pmu else 0,
        pmcr=vcpu.vpmu.read_pmcr() if pmu else 0,
        counters=_counters(vcpu, catalog) if pmu else [], reads=output.reads,
        undefined=output.undefined, irq_level=pmu and vcpu.vpmu.irq_level, ran=vcpu.has_run,
        reports=output.reports, guest=output.stats, console=output.console, state=output.state)


def _judge(workload: Workload, vcpus: list[VcpuResult], vmm: Vmm) -> list[ExpectResult]:
    results = []
    for index, step, record in vmm.step_calls:
        expect = {"vcpu": index, "vmm": "filter", "args": record.args,
                  "expect_errno": step.expect_errno}
        results.append(ExpectResult(expect, record.errno == step.expect_errno, record.errno,
                                    step.loc))
    by_index = {v.vcpu: v for v in vcpus}
    for exp in workload.expect:
        result = by_index.get(exp.vcpu)
        if result is None:
            results.append(ExpectResult(exp.raw, False, "no such vCPU", exp.loc))
        elif isinstance(exp, CounterExpect):
            found = [c.value for c in result.counters if c.counter == exp.counter]
            passed = bool(found) and _COMPARE[exp.op](found[0], exp.value)
            results.append(ExpectResult(exp.raw, passed, found[0] if found else None, exp.loc))
        elif isinstance(exp, ReportExpect):
            value = result.reports[exp.index] if exp.index < len(result.reports) else None
            passed = value is not None and _COMPARE[exp.op](value, exp.value)
            results.append(ExpectResult(exp.raw, passed, value, exp.loc))
        elif isinstance(exp, ReadExpect):
            values = [v for reg, v, _ in result.reads if reg == exp.register and v is not None]
            got = values[-1] & exp.mask if values else None
            passed = got is not None and _COMPARE[exp.op](got, exp.value)
            results.append(ExpectResult(exp.raw, passed, None if got is None else f"0x{got:x}",
                                        exp.loc))
        elif isinstance(exp, UndefExpect):
            undef = any(reg == exp.register for reg, _, _ in result.undefined)
            results.append(ExpectResult(exp.raw, undef == exp.undefined, undef, exp.loc))
        elif isinstance(exp, PmceidExpect):
            visible = [e for e in exp.visible + exp.hidden
                       if ev.pmceid_says(result.pmceid0, result.pmceid1, e)]
            passed = all(e in visible for e in exp.visible) and not any(
                e in visible for e in exp.hidden)
            shown = {"visible": [f"0x{e:04x}" for e in visible]}
            results.append(ExpectResult(exp.raw, passed, shown, exp.loc))
    return results


def guest_image(spec: FilterSpec, workload: Workload | None, program: Program | None,
                index: int, max_instructions: int | None) -> GuestImage:
    """What vCPU `index` runs: the workload's steps for it, its program, or the default."""
    if workload is None:
        return DefaultImage(spec.named_events)
    if program is not None and workload.guest is not None:
        budget = max_instructions or workload.guest.max_instructions
        return ProgramImage(workload.guest, budget, program)
    return ScriptImage(workload.steps_for(index))


def run_spec(spec: FilterSpec, workload: Workload | None = None, kernel: str | None = None,
             max_instructions: int | None = None) -> RunResult:
    """The VMM's calls (the default boot sequence, or the workload's scenario), the guests,
    the counters and the expectations."""
    catalog = spec.host.catalog()
    profile = profile_for(spec, kernel)
    validate(spec, profile, workload)
    program = _program(workload)
    vmm, backend = emulated_vmm(spec, profile)
    types = pmu_types(backend)
    result = RunResult(profile.name, 0, 0, vmm.log, [], [])
    judged: list[ExpectResult] = []
    try:
        with paused_gc():
            if workload is not None and workload.scenario is not None:
                for index in range(max((c.count for c in workload.scenario), default=0)):
                    vmm.load_guest(index, guest_image(spec, workload, program, index,
                                                      max_instructions))
                run_scenario(vmm, workload.scenario, types, judged)
            else:
                boot(vmm, spec, types)
                for index in range(spec.vm.vcpus):
                    vmm.load_guest(index, guest_image(spec, workload, program, index,
                                                      max_instructions))
                    vmm.run_to_end(index)
    except VmmStopped as stop:
        result.error = stopped_message(stop)
        result.error_loc = stop.record.loc
    except GuestError as fault:
        result.error, result.error_kind = fault.message, "guest"
    pmu = host_pmu_of(backend.vm)
    result.host_pmceid0, result.host_pmceid1 = pmceid_pair(pmu)
    result.host_pmu = pmu_info(spec, pmu)
    result.vcpus = [_vcpu_result(v, backend.output(v.index), catalog) for v in backend.vm.vcpus]
    result.expectations = judged  # a stopped scenario keeps what it judged before the stop
    if result.error is None and workload is not None:
        result.expectations += _judge(workload, result.vcpus, vmm)
    return result


def _program(workload: Workload | None) -> Program | None:
    if workload is None or workload.guest is None:
        return None
    from kvmpmu.vmm.emulated.extra import need
    from kvmpmu.vmm.emulated.program import load_program

    need("unicorn")  # before any VMM call: a missing extra is a set-up error, not a guest's
    need("capstone")
    return load_program(workload.guest)
