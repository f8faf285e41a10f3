"""What `run` and `show-pmceid` share: profile, checks before the first call, the VMM set up
on a backend, and the host PMU facts the results show; and `show-pmceid` itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmpmu.arch import events as ev
from kvmpmu.errors import GuestError, SpecError
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.kvm.profiles import PROFILES, KernelProfile
from kvmpmu.kvm.system import Vm
from kvmpmu.kvm.vcpu import Vcpu
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.vmm.boot import boot
from kvmpmu.vmm.emulated_kernel import EmulatedBackend
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.results import HiddenBy, HostPmuInfo, PmceidEvent, PmceidView
from kvmpmu.vmm.vmm import Vmm, VmmStopped

if TYPE_CHECKING:
    from kvmpmu.spec.workload import Workload
    from kvmpmu.vmm.emulated.program import Program


def profile_for(spec: FilterSpec, kernel: str | None) -> KernelProfile:
    return PROFILES[kernel or spec.kernel]


def validate(spec: FilterSpec, profile: KernelProfile, workload: Workload | None = None,
             pmus: dict[str, int] | None = None, emulated: bool = True) -> None:
    """Checks that need the spec, the workload and the profile together: before any ioctl.
    `pmus`: the host PMUs' perf types by name (default: the spec's host's)."""
    vm = spec.vm
    if not emulated and workload is not None and workload.guest is None:
        _compiles(workload, vm.vcpus)
    if workload is not None and workload.scenario is not None:
        _validate_scenario(workload, pmus or spec_pmu_types(spec), emulated)
        return
    if vm.counters is not None and not (
        profile.has_set_nr_counters or profile.pmcr_n_via_one_reg
    ):
        raise SpecError(
            f"kernel {profile.name} cannot limit the guest's counters (PMCR_EL0.N): that needs "
            "6.7+ (KVM_SET_ONE_REG) or 6.16+ (KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS)",
            loc=vm.counters_loc, path="vm.counters")
    if vm.pmu_version is not None and not profile.at_least(6, 2):
        raise SpecError(f"kernel {profile.name} cannot lower the guest's PMU version "
                        "(ID_AA64DFR0_EL1.PMUVer is writable from 6.2)",
                        loc=vm.pmu_version_loc, path="vm.pmu_version")
    if workload is not None:
        _validate_vcpu_refs(workload, vm.vcpus, "the VM has")


def _compiles(workload: Workload, vcpus: int) -> None:
    """On a real CPU each vCPU's steps run as a compiled guest program: a step that cannot
    (`execute`) is refused before the first ioctl, at its location."""
    from kvmpmu.vmm.scriptprog import compile_steps

    if workload.scenario is not None:
        vcpus = max((c.count for c in workload.scenario), default=0)
    for index in range(vcpus):
        compile_steps(workload.steps_for(index))


def _validate_vcpu_refs(workload: Workload, vcpus: int, what: str) -> None:
    for index, loc in workload.vcpu_locs.items():
        if index >= vcpus:
            raise SpecError(f"vCPU {index} does not exist ({what} {vcpus})", loc=loc,
                            path=f"vcpus.{index}")
    for expect in workload.expect:
        if expect.vcpu >= vcpus:
            raise SpecError(f"vCPU {expect.vcpu} does not exist ({what} {vcpus})",
                            loc=expect.loc, path="expect")


def spec_pmu_types(spec: FilterSpec) -> dict[str, int]:
    """The spec's host PMUs by name, and `default`: the PMU of the VMM's CPU (CPU 0)."""
    return host_pmu_types(build_host(spec.host))


def host_pmu_types(host: Host) -> dict[str, int]:
    types = {p.name: p.pmu_type for p in host.pmus}
    default = host.pmu_for_cpu(0)
    if default is not None:
        types["default"] = default.pmu_type
    return types


def _validate_scenario(workload: Workload, pmus: dict[str, int], emulated: bool) -> None:
    """Host PMUs by name; on the emulated kernel, only the registers it models."""
    from kvmpmu.kvm.vcpu import MODELLED_ONE_REGS

    assert workload.scenario is not None
    created = max((c.count for c in workload.scenario), default=0)
    _validate_vcpu_refs(workload, created, "the scenario creates")
    for item in workload.scenario:
        if item.pmu_name is not None and item.pmu_name not in pmus:
            raise SpecError(f"no host PMU named {item.pmu_name!r} (the host has "
                            f"{', '.join(pmus)})", loc=item.loc, path=f"vmm.{item.call}")
        if emulated and item.call in ("set_one_reg", "get_one_reg") and \
                item.reg_name not in MODELLED_ONE_REGS:
            reg = item.reg_name or f"0x{item.reg_id:x}"
            raise SpecError(f"register {reg} is not modelled by the emulated kernel",
                            loc=item.loc, path=f"vmm.{item.call}",
                            hint="modelled: " + ", ".join(sorted(MODELLED_ONE_REGS)))


def preflight(spec: FilterSpec, workload: Workload | None, kernel: str | None
              ) -> tuple[KernelProfile, Program | None]:
    """Every check `run` makes before its first ioctl on the emulated kernel: the profile, the
    spec with the workload, and the guest program loaded (`validate` runs exactly this)."""
    profile = profile_for(spec, kernel)
    validate(spec, profile, workload)
    return profile, guest_program(workload)


def dry_boot(spec: FilterSpec, workload: Workload | None = None,
             kernel: str | None = None) -> None:
    """`validate`: the preflight, then the VMM's set-up on the emulated kernel (the filters
    applied, no vCPU run). Raises the KvmCallError `run` would stop at."""
    profile, _ = preflight(spec, workload, kernel)
    vmm, backend = emulated_vmm(spec, profile)
    try:
        boot(vmm, spec, pmu_types(backend))
    except VmmStopped as stop:
        raise stop.error from None


def guest_program(workload: Workload | None, emulated: bool = True) -> Program | None:
    """The `guest:` program, loaded; the CPU emulation it runs on in the model is needed only
    there (on the kvm backend a real CPU runs it)."""
    if workload is None or workload.guest is None:
        return None
    from kvmpmu.vmm.emulated.extra import need
    from kvmpmu.vmm.emulated.program import load_program

    try:  # before any VMM call: a missing extra or a bad program is the input's fault
        if emulated:
            need("unicorn")
            need("capstone")
        return load_program(workload.guest)
    except GuestError as err:
        raise SpecError(err.message, loc=err.loc or workload.guest.loc, path=err.path or "guest",
                        hint=err.hint) from None


def hidden_by_kvm_or_filter(vm: Vm, event: int, bit: int) -> HiddenBy:
    """Why an implemented event is missing from the guest's PMCEID: the filter, or KVM itself."""
    if vm.filter_bitmap() is None:
        return "kvm"
    if not vm.event_allowed(event):
        return "filter"
    guest_events = vm.guest_event_mask() + 1
    if bit >= 32 and guest_events < ev.PMCEID_EXT_BASE + 0x40:
        return "filter"  # with a filter, a 10-bit guest event space reads 0 in the high halves
    return "kvm"


def pmu_info(pmu: HostPmu | None) -> HostPmuInfo | None:
    if pmu is None:
        return None
    return HostPmuInfo(pmu.name, pmu.pmu_type, pmu.model or "?", pmu.pmuver, pmu.counters)


def pmceid_pair(pmu: HostPmu | None) -> tuple[int, int]:
    return (pmu.pmceid(0), pmu.pmceid(1)) if pmu else (0, 0)


def vcpu_cpus(spec: FilterSpec) -> frozenset[int]:
    """Where the vCPU threads run: vm.cpus, else the chosen PMU's CPUs, else the VMM's CPU 0."""
    if spec.vm.cpus is not None:
        return spec.vm.cpus
    if spec.vm.pmu is not None:
        pmu = spec.host.pmu_named(spec.vm.pmu)
        if pmu is not None:
            return pmu.cpus
    return frozenset({0})


def emulated_vmm(spec: FilterSpec, profile: KernelProfile) -> tuple[Vmm, EmulatedBackend]:
    """A VMM on the emulated kernel with the spec's host, vCPU threads placed as it says."""
    backend = EmulatedBackend(build_host(spec.host), profile)
    backend.vcpu_cpus = tuple(sorted(vcpu_cpus(spec)))
    return Vmm(backend, spec.host.catalog()), backend


def pmu_types(backend: EmulatedBackend) -> dict[str, int]:
    return host_pmu_types(backend.kvm.host)


def entered_vcpu(spec: FilterSpec, kernel: str | None = None) -> Vcpu:
    """vCPU 0 of the spec's VM on the emulated kernel after the default boot sequence and
    KVM_RUN's entry work: ready for a guest engine to run on (benchmarks, engine tests)."""
    vmm, backend = emulated_vmm(spec, profile_for(spec, kernel))
    boot(vmm, spec, pmu_types(backend))
    vcpu = backend.vcpu(0)
    vcpu.run()
    return vcpu


def show_pmceid(spec: FilterSpec, kernel: str | None = None) -> PmceidView:
    """Host and guest PMCEID0/1 after the VMM's set-up on the emulated kernel, decoded per
    event (no guest runs: the model answers for vCPU 0)."""
    catalog = spec.host.catalog()
    profile = profile_for(spec, kernel)
    validate(spec, profile)
    vmm, backend = emulated_vmm(spec, profile)
    vm = backend.vm
    try:
        boot(vmm, spec, pmu_types(backend))
    except VmmStopped as stop:
        pmu = backend.host_pmu()
        return PmceidView(profile.name, pmceid_pair(pmu), (0, 0), [], vmm.log,
                          stop.error, pmu_info(pmu))
    pmu = backend.host_pmu()
    host_regs = pmceid_pair(pmu)
    vcpu = vm.vcpus[0]
    guest = (vm.guest_pmceid(vcpu, 0), vm.guest_pmceid(vcpu, 1))
    events = []
    for reg in (0, 1):
        for bit, event in enumerate(ev.pmceid_events(reg)):
            implemented = bool(host_regs[reg] >> bit & 1)
            visible = bool(guest[reg] >> bit & 1)
            hidden_by = hidden_by_kvm_or_filter(vm, event, bit) if implemented and not visible \
                else None
            events.append(PmceidEvent(event, catalog.name_of(event), implemented, visible,
                                      hidden_by))
    events.sort(key=lambda e: e.event)
    return PmceidView(profile.name, host_regs, guest, events, vmm.log,
                      host_pmu=pmu_info(pmu))
