"""Apply a spec's filters to an emulated VM and keep what analysis needs: the bitmap the kernel
built, every call's errno, the entry that set the default, the guest's PMCEID."""

from __future__ import annotations

from kvmpmu.arch import events as ev
from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import RejectedError
from kvmpmu.kvm.host import HostPmu
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.kvm.system import Vm
from kvmpmu.records import Record
from kvmpmu.spec.filterspec import FilterCall, FilterSpec
from kvmpmu.vmm.boot import boot
from kvmpmu.vmm.session import emulated_vmm, pmu_types, profile_for, validate
from kvmpmu.vmm.vmm import VmmStopped


class AppliedCall(Record):
    __slots__ = ("call", "errno")

    def __init__(self, call: FilterCall, errno: str | None) -> None:
        self.call = call
        self.errno = errno  # None: the kernel accepted it


class Evaluation:
    """One spec on one kernel profile, after the VMM's set-up (filters applied, no vCPU run)."""

    def __init__(self, spec: FilterSpec, kernel: str | None = None) -> None:
        self.spec = spec
        self.profile: KernelProfile = profile_for(spec, kernel)
        validate(spec, self.profile)
        self.catalog: Catalog = spec.host.catalog()
        vmm, backend = emulated_vmm(spec, self.profile)
        try:
            boot(vmm, spec, pmu_types(backend), tolerate_filter_errors=True)
        except VmmStopped as stop:
            raise stop.error from None  # a call other than FILTER failed: nothing to analyse
        self.vm: Vm = backend.vm
        filter_records = [r for r in vmm.log if r.attr == "KVM_ARM_VCPU_PMU_V3_FILTER"
                          and r.ioctl == "KVM_SET_DEVICE_ATTR"]
        self.calls = [AppliedCall(c, r.errno) for c, r in
                      zip(spec.filters, filter_records, strict=True)]
        self.nr_events = self.vm.nr_filter_events()
        self.bits = self.vm.filter_bitmap()

    def require_accepted(self, doing: str) -> None:
        """Raise RejectedError naming the first entry the kernel rejects: with it the VM would
        not start, so there is nothing to `doing` (compile, explain, compare)."""
        for applied in self.calls:
            if applied.errno is not None:
                call = applied.call
                raise RejectedError(f"the kernel rejects entry {call.entry + 1} "
                                    f"({applied.errno}): the VM would not start, so there is "
                                    f"nothing to {doing}", loc=call.loc,
                                    path=f"filters[{call.entry}]", hint="`kvmpmu lint` says why")

    # --- decisions ------------------------------------------------------------------------

    @property
    def accepted(self) -> list[FilterCall]:
        return [a.call for a in self.calls if a.errno is None]

    @property
    def default_setter(self) -> FilterCall | None:
        """The first accepted call: its action's opposite is every other event's default."""
        accepted = self.accepted
        return accepted[0] if accepted else None

    def allowed(self, event: int) -> bool:
        """Whether the filter lets `event` count (no filter: everything)."""
        if self.bits is None:
            return True
        return event < self.nr_events and bool(self.bits >> event & 1)

    def decided_by(self, event: int) -> FilterCall | None:
        """The last accepted call whose range holds `event`; None when the default decides."""
        for call in reversed(self.accepted):
            if call.base_event <= event < call.base_event + call.nevents:
                return call
        return None

    def unfilterable(self, event: int) -> bool:
        return self.profile.unfilterable(event)

    # --- what the guest sees ----------------------------------------------------------------

    @property
    def counting_pmu(self) -> HostPmu | None:
        return self.vm.vcpus[0].counting_pmu()

    def implemented(self, event: int) -> bool:
        pmu = self.counting_pmu
        return event == ev.SW_INCR or bool(pmu and pmu.implements(event))

    def guest_event_mask(self) -> int:
        return self.vm.guest_event_mask()

    def counts(self, event: int) -> bool:
        """Would a guest counter programmed with `event` count on this host?"""
        if event & self.guest_event_mask() != event:
            return False  # the guest cannot even encode it
        return self.implemented(event) and (self.allowed(event) or self.unfilterable(event))

    def guest_pmceid(self) -> tuple[int, int]:
        vcpu = self.vm.vcpus[0]
        return vcpu.guest_pmceid(0), vcpu.guest_pmceid(1)

    def host_pmceid(self) -> tuple[int, int]:
        """The PMCEID of the PMU the guest's view comes from (the VM's)."""
        pmu = self.vm.pmceid_source(self.vm.vcpus[0])
        return (pmu.pmceid(0), pmu.pmceid(1)) if pmu else (0, 0)

    def name(self, event: int) -> str | None:
        return self.catalog.name_of(event)
