"""`kvmpmu run`: the default boot sequence or a scenario, the guests, counters, expectations."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kvmpmu.arch import events as ev
from kvmpmu.errors import GuestError
from kvmpmu.gcpause import paused_gc
from kvmpmu.kvm.filter import EventFilter
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.workload import (
    CounterExpect,
    PmceidExpect,
    ReadExpect,
    ReportExpect,
    UndefExpect,
    Workload,
)
from kvmpmu.vmm.backend import DefaultImage, GuestImage, ProgramImage, ScriptImage
from kvmpmu.vmm.boot import boot
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.machine import EmulatedMachine, Machine
from kvmpmu.vmm.results import (
    CallRecord,
    ExpectResult,
    HiddenBy,
    PmceidEvent,
    PmceidView,
    RunResult,
    VcpuResult,
)
from kvmpmu.vmm.session import (
    guest_program,
    host_pmu_types,
    pmceid_pair,
    pmu_info,
    profile_for,
    validate,
    vcpu_cpus,
)
from kvmpmu.vmm.vmm import Vmm, VmmStopped, placement

if TYPE_CHECKING:
    from kvmpmu.vmm.emulated.program import Program

_COMPARE = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


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
                index: int, max_instructions: int | None,
                timeout: float | None = None) -> GuestImage:
    """What vCPU `index` runs: the workload's steps for it, its program, or the default. The
    command line's limits win over the workload's."""
    if workload is None:
        return DefaultImage(spec.named_events)
    guest = workload.guest
    if program is not None and guest is not None:
        return ProgramImage(guest, max_instructions or guest.max_instructions, program,
                            timeout or guest.timeout)
    return ScriptImage(workload.steps_for(index))


def run_spec(spec: FilterSpec, workload: Workload | None = None, kernel: str | None = None,
             max_instructions: int | None = None, machine: Machine | None = None,
             timeout: float | None = None) -> RunResult:
    """The VMM's calls (the default boot sequence, or the workload's scenario), the guests,
    the counters and the expectations; on the emulated kernel with the spec's host unless
    `machine` says otherwise. `max_instructions` and `timeout` limit a CPU-emulated guest."""
    catalog = spec.host.catalog()
    if machine is None:
        machine = EmulatedMachine(build_host(spec.host), profile_for(spec, kernel))
    profile = machine.profile
    types = host_pmu_types(machine.host)
    validate(spec, profile, workload, types, machine.name == "emulated")
    program = guest_program(workload, machine.name == "emulated")
    backend = machine.backend(tuple(sorted(vcpu_cpus(spec))))
    vmm = Vmm(backend, catalog, placement(spec))
    result = RunResult(profile.name, 0, 0, vmm.log, [], [], backend=machine.name,
                       release=machine.release if machine.name == "kvm" else None)
    judged: list[ExpectResult] = []
    if machine.name == "kvm":
        from kvmpmu.vmm.hostcheck import host_differences

        result.warnings += host_differences(spec, machine.host)
    if workload is not None and workload.kernels and profile.name not in workload.kernels:
        result.warnings.append(
            f"{workload.file}: warning: its expectations are written for kernels "
            f"{', '.join(workload.kernels)}; judged on {profile.name} anyway")
    try:
        def image(index: int) -> GuestImage:
            return guest_image(spec, workload, program, index, max_instructions, timeout)

        _run(vmm, spec, workload, image, types, judged, result)
        pmu = backend.host_pmu()
        result.host_pmceid0, result.host_pmceid1 = pmceid_pair(pmu)
        result.host_pmu = pmu_info(pmu)
        result.vcpus = [backend.result(i, catalog) for i in backend.vcpu_indices()]
    finally:
        backend.close()
    result.expectations = judged  # a stopped scenario keeps what it judged before the stop
    if result.error is None and workload is not None:
        result.expectations += _judge(workload, result.vcpus, vmm)
    return result


def _run(vmm: Vmm, spec: FilterSpec, workload: Workload | None,
         image: Callable[[int], GuestImage], types: dict[str, int],
         judged: list[ExpectResult], result: RunResult) -> None:
    """The calls and the guests; a stop or a guest fault is the result's error."""
    try:
        with paused_gc():
            if workload is not None and workload.scenario is not None:
                from kvmpmu.vmm.scenario import run_scenario  # loaded for scenarios only

                for index in range(max((c.count for c in workload.scenario), default=0)):
                    vmm.load_guest(index, image(index))
                run_scenario(vmm, workload.scenario, types, judged)
            else:
                boot(vmm, spec, types)
                for index in range(spec.vm.vcpus):
                    vmm.load_guest(index, image(index))
                    vmm.run_to_end(index)
    except VmmStopped as stop:
        result.error = stop.error
    except GuestError as fault:
        result.error = fault


def _accepted_filter(log: list[CallRecord]) -> EventFilter | None:
    """The bitmap the FILTER calls the kernel accepted make, as §2.4 composes them."""
    bitmap = None
    for call in log:
        if call.attr == "KVM_ARM_VCPU_PMU_V3_FILTER" and call.ioctl == "KVM_SET_DEVICE_ATTR" \
                and call.errno is None:
            args = call.args
            if bitmap is None:
                bitmap = EventFilter(1 << 16, args["action"])
            bitmap.apply(args["base_event"], args["nevents"], args["action"])
    return bitmap


def show_pmceid_on(spec: FilterSpec, machine: Machine) -> PmceidView:
    """The same view on any machine: the default boot sequence, then a guest that only reads
    the PMU state at its end, whose PMCEID0/1 are the guest's view. An implemented event the
    guest does not see is hidden by the filter if the accepted FILTER calls deny it, else by
    KVM itself."""
    catalog = spec.host.catalog()
    result = run_spec(spec, Workload(file=spec.file, all_steps=()), None, None, machine)
    state = result.vcpus[0].state if result.vcpus else None
    guest = ((state.get("PMCEID0_EL0") or 0, state.get("PMCEID1_EL0") or 0) if state
             else (0, 0))
    host_regs = (result.host_pmceid0, result.host_pmceid1)
    bitmap = _accepted_filter(result.ioctls)
    events = []
    for reg in (0, 1):
        for bit, event in enumerate(ev.pmceid_events(reg)):
            implemented = bool(host_regs[reg] >> bit & 1)
            visible = bool(guest[reg] >> bit & 1)
            hidden_by: HiddenBy | None = None
            if implemented and not visible:
                hidden_by = "filter" if bitmap and not bitmap.allowed(event) else "kvm"
            events.append(PmceidEvent(event, catalog.name_of(event), implemented, visible,
                                      hidden_by))
    events.sort(key=lambda e: e.event)
    return PmceidView(result.kernel, host_regs, guest, events if not result.error else [],
                      result.ioctls, result.error, result.host_pmu, result.warnings)
