"""The per-VM state every vCPU of a VM shares (`kvm->arch`): the VM's PMU, its event filter,
its PMU interrupts, whether it ran, and the ID register view. Only its methods change it."""

from __future__ import annotations

import errno

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.event_space import event_mask
from kvmpmu.kvm.filter import EventFilter
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.kvm.memory import UserMemory
from kvmpmu.kvm.profiles import KernelProfile, StallSlotRule
from kvmpmu.kvm.vgic import Vgic, is_ppi, is_spi
from kvmpmu.uapi import kvm as uapi

# PMCEID1_EL0 bits KVM clears: STALL_SLOT (0x3F), or all three STALL_SLOT* events (0x3D-0x3F)
PMCEID_HIDDEN_STALL_SLOT_BITS = {
    StallSlotRule.NONE: 0,
    StallSlotRule.SLOT_IF_V3P4: 1 << (ev.STALL_SLOT - 32),
    StallSlotRule.ALL: 0b111 << (ev.STALL_SLOT_BACKEND - 32),
}
PMCEID0_CHAIN_BIT = 1 << ev.CHAIN
PMCEID0_SW_INCR_BIT = 1 << ev.SW_INCR


class KvmArch:
    """`kvm->arch` of one VM, as far as the PMU is concerned."""

    def __init__(self, host: Host, profile: KernelProfile, memory: UserMemory,
                 vmm_cpu: int) -> None:
        self.host = host
        self.profile = profile
        self.memory = memory
        self.vmm_cpu = vmm_cpu  # the physical CPU the VMM's ioctls execute on
        self._filter: EventFilter | None = None
        self._ran_once = False
        self._arm_pmu: HostPmu | None = None
        self._probed_pmuver: int | None = None
        # Read directly by the vPMU's hot paths; only this class's methods change them.
        self.nr_counters = 0  # the VM's PMCR_EL0.N (6.7+)
        self._supported_cpus: frozenset[int] | None = None
        self._vgic: Vgic | None = None
        self._vcpu_features: int | None = None  # v6.7+: the features every vCPU must have
        self._pmu_irqs: dict[int, int] = {}  # vCPU index -> its PMU interrupt
        self.el3_bits = profile.el3_exclusion_bits and host.el3
        # Counts the changes of what kvm_pmu_create_perf_event() reads of the VM (the filter,
        # the PMU, its PMUVer) or of where a vCPU runs: a vPMU whose counter's perf event was
        # decided at the current count would decide the same again (Vpmu.set_counter_value).
        self.perf_event_gen = 0
        self.guest_pmuver = min(host.sanitised_pmuver, profile.guest_pmuver_cap)
        self._guest_debugver = self._host_debugver()

    # --- read API ------------------------------------------------------------------------

    @property
    def ran_once(self) -> bool:
        return self._ran_once

    @property
    def arm_pmu(self) -> HostPmu | None:
        return self._arm_pmu

    @property
    def supported_cpus(self) -> frozenset[int] | None:
        return self._supported_cpus

    @property
    def vcpu_features(self) -> int | None:
        return self._vcpu_features

    @property
    def irqchip_in_kernel(self) -> bool:
        return self._vgic is not None

    @property
    def vgic_initialized(self) -> bool:
        return self._vgic is not None and self._vgic.initialized

    @property
    def vgic(self) -> Vgic | None:
        return self._vgic

    def filter_bitmap(self) -> int | None:
        """The filter's bits (1 = allowed), or None when no FILTER call ever succeeded."""
        return self._filter.bits if self._filter is not None else None

    def event_allowed(self, event: int) -> bool:
        """Whether the filter lets a perf event be created for `event` (no filter: yes)."""
        return self._filter is None or self._filter.allowed(event)

    def pmu_irq(self, vcpu_index: int) -> int | None:
        return self._pmu_irqs.get(vcpu_index)

    # --- changes at VM and vCPU creation, and at the first run -----------------------------

    def attach_vgic(self, vgic: Vgic) -> None:
        """The VM's only irqchip (KVM_CREATE_DEVICE refuses a second one first)."""
        self._vgic = vgic

    def set_vcpu_features(self, features: int) -> None:
        self._vcpu_features = features

    def mark_ran(self) -> None:
        self._ran_once = True

    def perf_event_inputs_changed(self) -> None:
        self.perf_event_gen += 1

    # --- PMU selection (§2.2 step 3, SET_PMU, SET_NR_COUNTERS) ------------------------------

    def select_pmu(self, pmu: HostPmu) -> None:
        self._arm_pmu = pmu
        self.nr_counters = pmu.counters  # re-selecting a PMU resets N to its maximum
        self.perf_event_inputs_changed()

    def default_pmu(self) -> HostPmu | None:
        return self.host.pmu_for_cpu(self.vmm_cpu)

    def discover_pmu(self) -> None:
        """Step 3 of the PMU attribute prologue (§2.2), per kernel version."""
        if self.profile.probes_pmuver:
            if self._probed_pmuver is None:
                pmu = self.default_pmu()
                if pmu is None or pmu.pmuver == sr.PMUVER_IMP_DEF:
                    raise KvmError(errno.ENODEV, "no usable host PMU")
                self._probed_pmuver = pmu.pmuver
                self.select_pmu(pmu)
        elif not self.profile.pmu_selected_at_vcpu_init and self._arm_pmu is None:
            pmu = self.default_pmu()
            if pmu is None:
                raise KvmError(errno.ENODEV, "no host PMU for the current CPU")
            self.select_pmu(pmu)

    def set_pmu(self, pmu_id: int) -> None:
        """KVM_ARM_VCPU_PMU_V3_SET_PMU's body."""
        pmu = self.host.pmu_by_type(pmu_id)
        if pmu is None:
            raise KvmError(errno.ENXIO, f"no host PMU with type {pmu_id}")
        if self._ran_once:
            raise KvmError(errno.EBUSY, "a vCPU of this VM has already run")
        if self._filter is not None and self._arm_pmu is not pmu:
            raise KvmError(errno.EBUSY, "an event filter exists and the PMU differs")
        self.select_pmu(pmu)
        self._supported_cpus = pmu.cpus

    def set_nr_counters(self, n: int) -> None:
        """KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS's body."""
        if self._arm_pmu is None:
            raise KvmError(errno.EINVAL, "no PMU selected")
        if n > self._arm_pmu.counters:
            raise KvmError(errno.EINVAL, f"{n} counters exceed the PMU's {self._arm_pmu.counters}")
        self.nr_counters = n

    def limit_nr_counters(self, n: int) -> None:
        """PMCR_EL0.N written through KVM_SET_ONE_REG (6.7+): a larger N, or any write after the
        VM ran, is silently ignored (§5.1)."""
        if self._arm_pmu and not self._ran_once and n <= self._arm_pmu.counters:
            self.nr_counters = n

    @property
    def pmu_pmuver(self) -> int:
        """The raw PMUVer of the VM's PMU (probed before v5.18, `arm_pmu->pmuver` after)."""
        if self.profile.probes_pmuver:
            return self._probed_pmuver or 0
        return self._arm_pmu.pmuver if self._arm_pmu else 0

    @property
    def masking_pmuver(self) -> int:
        """PMUVer that sizes the guest's event numbers (§2.3, right column)."""
        if self.profile.event_space_from_sanitised_pmuver:
            return self.guest_pmuver
        return self.pmu_pmuver

    def guest_event_mask(self) -> int:
        """The bits of PMEVTYPER's evtCount a guest's event number keeps (§2.3)."""
        return event_mask(self.masking_pmuver, self.profile.knows_v3p7)

    def counting_pmu(self, cpu: int) -> HostPmu | None:
        """The host PMU whose hardware counts for a vCPU running on physical CPU `cpu`."""
        if self.profile.has_set_pmu and self._arm_pmu is not None:
            return self._arm_pmu if cpu in self._arm_pmu.cpus else None
        return self.host.pmu_for_cpu(cpu)

    # --- the PMU interrupt (§2.7) -----------------------------------------------------------

    def irq_valid_for_vgic(self, irq: int) -> bool:
        return self._vgic is not None and (is_ppi(irq) or self._vgic.valid_spi(irq))

    def set_pmu_irq(self, vcpu_index: int, irq: int) -> None:
        """KVM_ARM_VCPU_PMU_V3_IRQ's body: pmu_irq_is_valid() (one PPI for all vCPUs,
        distinct SPIs), then EBUSY if this vCPU has one."""
        if not (is_ppi(irq) or is_spi(irq)):
            raise KvmError(errno.EINVAL, f"IRQ {irq} is neither a PPI nor an SPI")
        for index, other in self._pmu_irqs.items():
            if is_ppi(irq) and other != irq:
                raise KvmError(errno.EINVAL, f"PPI {irq} differs from vcpu{index}'s")
            if not is_ppi(irq) and other == irq:
                raise KvmError(errno.EINVAL, f"SPI {irq} already used by vcpu{index}")
        if vcpu_index in self._pmu_irqs:
            raise KvmError(errno.EBUSY, "PMU IRQ already set")
        self._pmu_irqs[vcpu_index] = irq

    # --- the event filter (§2) ---------------------------------------------------------------

    def nr_filter_events(self) -> int:
        """nr_events of FILTER's range check (§2.3, left column)."""
        if self.profile.event_space_from_sanitised_pmuver:
            limit = min(self.host.sanitised_pmuver, sr.PMUVER_V3P5)
            return event_mask(limit, self.profile.knows_v3p7) + 1
        return event_mask(self.pmu_pmuver, self.profile.knows_v3p7) + 1

    def set_filter(self, flt: uapi.kvm_pmu_event_filter) -> None:
        """KVM_ARM_VCPU_PMU_V3_FILTER's body after the copy from userspace (§2.2 steps 7-11)."""
        nr_events = self.nr_filter_events()
        if flt.base_event + flt.nevents > nr_events:
            raise KvmError(
                errno.EINVAL,
                f"range 0x{flt.base_event:x}+0x{flt.nevents:x} exceeds the {nr_events}-event space",
            )
        if flt.action not in (uapi.KVM_PMU_EVENT_ALLOW, uapi.KVM_PMU_EVENT_DENY):
            raise KvmError(errno.EINVAL, f"action {flt.action} is neither ALLOW nor DENY")
        if self.profile.filter_busy_after_run and self._ran_once:
            raise KvmError(errno.EBUSY, "a vCPU of this VM has already run")
        if self._filter is None:
            self._filter = EventFilter(nr_events, flt.action)
        self._filter.apply(flt.base_event, flt.nevents, flt.action)
        self.perf_event_inputs_changed()

    # --- what the guest reads of PMCEID0/1_EL0 (§4.2) ---------------------------------------

    def pmceid_source(self, cpu: int) -> HostPmu | None:
        """The PMU whose PMCEID the guest's view starts from: the VM's, or the CPU's hardware."""
        if self.profile.pmceid_from_pmu_bitmaps:
            return self._arm_pmu
        return self.host.pmu_for_cpu(cpu)

    def guest_pmceid(self, cpu: int, reg: int) -> int:
        """kvm_pmu_get_pmceid(): what a guest on physical CPU `cpu` reads from PMCEID<reg>."""
        prof = self.profile
        source = self.pmceid_source(cpu)
        value = source.pmceid(reg) if source else 0
        if reg == 0:
            if prof.forces_chain_in_pmceid:
                value |= PMCEID0_CHAIN_BIT
            if prof.forces_sw_incr_in_pmceid:
                value |= PMCEID0_SW_INCR_BIT
        elif prof.stall_slot_rule is StallSlotRule.ALL or (
                prof.stall_slot_rule is StallSlotRule.SLOT_IF_V3P4
                and self.pmu_pmuver >= sr.PMUVER_V3P4):
            value &= ~PMCEID_HIDDEN_STALL_SLOT_BITS[prof.stall_slot_rule]
        if self._filter is None:
            return value
        base = 32 * reg
        mask = self._filter.window(base, 32)
        if self.guest_event_mask() + 1 >= ev.PMCEID_EXT_BASE + base + 32:
            mask |= self._filter.window(ev.PMCEID_EXT_BASE + base, 32) << 32
        return value & mask

    # --- ID_AA64DFR0_EL1 (§5.4, §6) -----------------------------------------------------

    def _host_debugver(self) -> int:
        debugver = self.host.id_aa64dfr0 & sr.DFR0_DEBUGVER_MASK
        if self.profile.debugver_limited_to_v8p0:
            return sr.DFR0_DEBUGVER_V8P0
        if self.profile.generic_id_reg_checks:
            return min(debugver, sr.DFR0_DEBUGVER_V8P8)
        return debugver

    def guest_id_aa64dfr0(self, has_pmu: bool) -> int:
        """The ID_AA64DFR0_EL1 the guest and KVM_GET_ONE_REG read: the host's, without SPE,
        DebugVer limited, PMUVer the VM's (0 without the PMU feature from 5.11)."""
        host = self.host.id_aa64dfr0
        value = host & ~(sr.DFR0_DEBUGVER_MASK | sr.DFR0_PMUVER_MASK | sr.DFR0_PMSVER_MASK)
        if has_pmu:
            pmuver = self.guest_pmuver
        elif self.profile.hides_absent_pmu:
            pmuver = 0
        else:
            pmuver = min(self.host.sanitised_pmuver, self.profile.guest_pmuver_cap)
        return value | pmuver << sr.DFR0_PMUVER_SHIFT | self._guest_debugver

    def set_id_aa64dfr0(self, has_pmu: bool, value: int) -> None:
        """KVM_SET_ONE_REG(ID_AA64DFR0_EL1): invariant before 6.2; then PMUVer (and from 6.6
        DebugVer) may be lowered before the VM runs."""
        current = self.guest_id_aa64dfr0(has_pmu)
        if value == current:
            return
        prof = self.profile
        if not prof.id_regs_writable:
            raise KvmError(errno.EINVAL, "ID registers cannot be changed before v6.2")
        if self._ran_once:
            raise KvmError(errno.EBUSY, "the VM has run")
        generic = prof.generic_id_reg_checks
        writable = sr.DFR0_PMUVER_MASK | (sr.DFR0_DEBUGVER_MASK if generic else 0)
        if (value ^ current) & ~writable:
            raise KvmError(errno.EINVAL, "only PMUVer (and from 6.6 DebugVer) may change")
        pmuver = (value & sr.DFR0_PMUVER_MASK) >> sr.DFR0_PMUVER_SHIFT
        limit = min(self.host.sanitised_pmuver, prof.guest_pmuver_cap)
        if pmuver == sr.PMUVER_IMP_DEF and generic:
            pmuver = 0  # an IMP_DEF PMUVer from an old VMM becomes NI
        if pmuver > limit:
            raise KvmError(errno.EINVAL, f"PMUVer 0x{pmuver:x} above the limit 0x{limit:x}")
        if not generic and has_pmu != (pmuver != 0):
            raise KvmError(errno.EINVAL, "PMUVer 0 only for a vCPU without a PMU")
        debugver = value & sr.DFR0_DEBUGVER_MASK
        if debugver > self._guest_debugver or debugver < sr.DFR0_DEBUGVER_V8P0:
            raise KvmError(errno.EINVAL, f"DebugVer {debugver} is not lower-safe")
        self.guest_pmuver = pmuver  # the event mask follows it
        self._guest_debugver = debugver
        self.perf_event_inputs_changed()
