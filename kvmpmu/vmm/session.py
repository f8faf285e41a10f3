"""Top-level operations: `run` a spec (and workload) end to end, or compute the PMCEID view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmpmu.arch import events as ev
from kvmpmu.errors import SpecError
from kvmpmu.kvm.host import HostPmu
from kvmpmu.kvm.profiles import PROFILES, KernelProfile
from kvmpmu.kvm.system import Vm
from kvmpmu.kvm.vpmu import event_mask
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.vmm.builder import Vmm, VmmStopped
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.results import HostPmuInfo, PmceidEvent, PmceidView, RunResult

if TYPE_CHECKING:
    from kvmpmu.spec.workload import Workload


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


def host_pmu_of(vm: Vm) -> HostPmu | None:
    """The PMU the first vCPU's PMCEID view starts from (where it runs, or the VM's PMU)."""
    if not vm.vcpus:
        return vm.default_pmu()
    return vm.pmceid_source(vm.vcpus[0]) or vm.host.pmu_for_cpu(vm.vcpus[0].cpu)


def pmu_info(spec: FilterSpec, pmu: HostPmu | None) -> HostPmuInfo | None:
    if pmu is None:
        return None
    model = spec.host.pmu_named(pmu.name)
    return HostPmuInfo(pmu.name, pmu.pmu_type, model.model.name if model else "?", pmu.pmuver,
                       pmu.counters)


def pmceid_pair(pmu: HostPmu | None) -> tuple[int, int]:
    return (pmu.pmceid(0), pmu.pmceid(1)) if pmu else (0, 0)


def stopped_message(stop: VmmStopped) -> str:
    record = stop.record
    where = f" on vcpu{record.vcpu}" if record.vcpu is not None else ""
    return f"{record.ioctl}({record.attr or ''}){where} failed: {stop.error.message}"


def run(spec: FilterSpec, workload: Workload | None = None, kernel: str | None = None,
        max_instructions: int | None = None, timeout: float | None = None) -> RunResult:
    """Boot the VM as the spec says, run the guest workload on every vCPU, judge expectations."""
    from kvmpmu.vmm.execution import run_spec  # show-pmceid needs none of the guest engine

    return run_spec(spec, workload, kernel, max_instructions, timeout)


def show_pmceid(spec: FilterSpec, kernel: str | None = None) -> PmceidView:
    """Host and guest PMCEID0/1 after the VMM's set-up, decoded per event."""
    catalog = spec.host.catalog()
    profile = profile_for(spec, kernel)
    validate(spec, profile)
    vmm = Vmm(spec, profile, build_host(spec.host), catalog)
    try:
        vmm.boot()
    except VmmStopped as stop:
        pmu = host_pmu_of(vmm.vm)
        return PmceidView(profile.name, pmceid_pair(pmu), (0, 0), [], vmm.log,
                          stopped_message(stop), pmu_info(spec, pmu))
    pmu = host_pmu_of(vmm.vm)
    host_regs = pmceid_pair(pmu)
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
                      host_pmu=pmu_info(spec, pmu))
