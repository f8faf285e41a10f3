"""Top-level operations: `run` a spec (and workload) end to end, or compute the PMCEID view."""

from __future__ import annotations

from kvmpmu.arch import events as ev
from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import SpecError
from kvmpmu.kvm.host import HostPmu
from kvmpmu.kvm.profiles import PROFILES, KernelProfile
from kvmpmu.kvm.system import Vcpu, Vm
from kvmpmu.kvm.vpmu import event_mask
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.workload import CounterExpect, PmceidExpect, Workload
from kvmpmu.vmm.builder import Vmm, VmmStopped
from kvmpmu.vmm.default_workload import default_workload
from kvmpmu.vmm.guest import GuestRunner
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.results import (
    CounterResult,
    ExpectResult,
    HostPmuInfo,
    PmceidEvent,
    PmceidView,
    RunResult,
    VcpuResult,
)

_COMPARE = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def profile_for(spec: FilterSpec, kernel: str | None) -> KernelProfile:
    return PROFILES[kernel or spec.kernel]


def validate(spec: FilterSpec, profile: KernelProfile, workload: Workload | None = None) -> None:
    """Checks that need the spec, the workload and the profile together: before any ioctl."""
    vm = spec.vm
    if vm.counters is not None and not (
        profile.has_set_nr_counters or profile.pmcr_n_via_one_reg
    ):
        raise SpecError(
            f"kernel {profile.name} cannot limit the guest's counters (PMCR_EL0.N): that needs "
            "6.7+ (KVM_SET_ONE_REG) or 6.16+ (KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS)",
            loc=vm.counters_loc, path="vm.counters")
    if vm.pmu_version is not None and not profile.at_least(6, 2):
        raise SpecError(f"kernel {profile.name} cannot lower the guest's PMU version "
                        "(ID_AA64DFR0_EL1.PMUVer is writable from 6.2)", path="vm.pmu_version")
    if workload is None:
        return
    for index, loc in workload.vcpu_locs.items():
        if index >= vm.vcpus:
            raise SpecError(f"vCPU {index} does not exist (the VM has {vm.vcpus})", loc=loc,
                            path=f"vcpus.{index}")
    for expect in workload.expect:
        if expect.vcpu >= vm.vcpus:
            raise SpecError(f"vCPU {expect.vcpu} does not exist (the VM has {vm.vcpus})",
                            loc=expect.loc, path="expect")


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


def _vcpu_result(vcpu: Vcpu, runner: GuestRunner | None, catalog: Catalog) -> VcpuResult:
    vm = vcpu.vm
    return VcpuResult(
        vcpu=vcpu.index, pmceid0=vm.guest_pmceid(vcpu, 0), pmceid1=vm.guest_pmceid(vcpu, 1),
        pmcr=vcpu.vpmu.read_pmcr(), counters=_counters(vcpu, catalog),
        reads=runner.reads if runner else [], undefined=runner.undefined if runner else [],
        irq_level=vcpu.vpmu.irq_level, ran=vcpu.has_run)


def _judge(workload: Workload, vcpus: list[VcpuResult],
           runners: list[GuestRunner]) -> list[ExpectResult]:
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
        elif isinstance(exp, PmceidExpect):
            visible = [e for e in exp.visible + exp.hidden
                       if ev.pmceid_says(result.pmceid0, result.pmceid1, e)]
            passed = all(e in visible for e in exp.visible) and not any(
                e in visible for e in exp.hidden)
            shown = {"visible": [f"0x{e:04x}" for e in visible]}
            results.append(ExpectResult(exp.raw, passed, shown, exp.loc))
    return results


def _hidden_by(vm: Vm, event: int, bit: int) -> str:
    """Why an implemented event is missing from the guest's PMCEID: the filter, or KVM itself."""
    if vm.filter is None:
        return "kvm"
    if not vm.filter.allowed(event):
        return "filter"
    guest_events = event_mask(vm.masking_pmuver, vm.profile.knows_v3p7) + 1
    if bit >= 32 and guest_events < ev.PMCEID_EXT_BASE + 0x40:
        return "filter"  # with a filter, a 10-bit guest event space reads 0 in the high halves
    return "kvm"


def _host_pmu(spec: FilterSpec, vm: Vm) -> HostPmu | None:
    """The PMU the first vCPU's PMCEID view starts from (where it runs, or the VM's PMU)."""
    if not vm.vcpus:
        return vm.default_pmu()
    return vm.pmceid_source(vm.vcpus[0]) or vm.host.pmu_for_cpu(vm.vcpus[0].cpu)


def _pmu_info(spec: FilterSpec, pmu: HostPmu | None) -> HostPmuInfo | None:
    if pmu is None:
        return None
    model = spec.host.pmu_named(pmu.name)
    return HostPmuInfo(pmu.name, pmu.pmu_type, model.model.name if model else "?", pmu.pmuver,
                       pmu.counters)


def _pmceid(pmu: HostPmu | None) -> tuple[int, int]:
    return (pmu.pmceid(0), pmu.pmceid(1)) if pmu else (0, 0)


def _stopped(stop: VmmStopped) -> str:
    record = stop.record
    where = f" on vcpu{record.vcpu}" if record.vcpu is not None else ""
    return f"{record.ioctl}({record.attr or ''}){where} failed: {stop.error.message}"


def run(spec: FilterSpec, workload: Workload | None = None, kernel: str | None = None) -> RunResult:
    """Boot the VM as the spec says, run the guest workload on every vCPU, judge expectations."""
    catalog = spec.host.catalog()
    profile = profile_for(spec, kernel)
    validate(spec, profile, workload)
    vmm = Vmm(spec, profile, build_host(spec.host), catalog)
    result = RunResult(profile.name, 0, 0, vmm.log, [], [])
    runners: list[GuestRunner] = []
    try:
        vmm.boot()
        for vcpu in vmm.vm.vcpus:
            steps_source = workload or default_workload(spec.named_events, vcpu.vpmu.nr_counters)
            vmm.run(vcpu)
            runner = GuestRunner(vmm, vcpu)
            runners.append(runner)
            runner.run(steps_source.steps_for(vcpu.index))
    except VmmStopped as stop:
        result.error = _stopped(stop)
        result.error_loc = stop.record.loc
    pmu = _host_pmu(spec, vmm.vm)
    result.host_pmceid0, result.host_pmceid1 = _pmceid(pmu)
    result.host_pmu = _pmu_info(spec, pmu)
    by_index = {r.vcpu.index: r for r in runners}
    result.vcpus = [_vcpu_result(v, by_index.get(v.index), catalog) for v in vmm.vm.vcpus]
    if result.error is None and workload is not None:
        result.expectations = _judge(workload, result.vcpus, runners)
    return result


def show_pmceid(spec: FilterSpec, kernel: str | None = None) -> PmceidView:
    """Host and guest PMCEID0/1 after the VMM's set-up, decoded per event."""
    catalog = spec.host.catalog()
    profile = profile_for(spec, kernel)
    validate(spec, profile)
    vmm = Vmm(spec, profile, build_host(spec.host), catalog)
    try:
        vmm.boot()
    except VmmStopped as stop:
        pmu = _host_pmu(spec, vmm.vm)
        return PmceidView(profile.name, _pmceid(pmu), (0, 0), [], vmm.log, _stopped(stop),
                          _pmu_info(spec, pmu))
    pmu = _host_pmu(spec, vmm.vm)
    host_regs = _pmceid(pmu)
    vcpu = vmm.vm.vcpus[0]
    guest = (vmm.vm.guest_pmceid(vcpu, 0), vmm.vm.guest_pmceid(vcpu, 1))
    events = []
    for reg in (0, 1):
        for bit, event in enumerate(ev.pmceid_events(reg)):
            implemented = bool(host_regs[reg] >> bit & 1)
            visible = bool(guest[reg] >> bit & 1)
            hidden_by = _hidden_by(vmm.vm, event, bit) if implemented and not visible else None
            events.append(PmceidEvent(event, catalog.name_of(event), implemented, visible,
                                      hidden_by))
    events.sort(key=lambda e: e.event)
    return PmceidView(profile.name, host_regs, guest, events, vmm.log,
                      host_pmu=_pmu_info(spec, pmu))
