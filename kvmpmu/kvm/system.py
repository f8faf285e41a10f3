"""The emulated KVM file descriptors: system -> VM -> vCPU, shaped like the real ioctl API.

Each method names the ioctl it stands for and raises KvmError(errno) the way the ioctl would
return -1 with errno set (kvm-ioctls style: no interpretation at this layer).
"""

from __future__ import annotations

import errno

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.filter import EventFilter
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.kvm.memory import UserMemory
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.kvm.vcpu import RunExit, Vcpu
from kvmpmu.kvm.vgic import Vgic
from kvmpmu.kvm.vpmu import event_mask
from kvmpmu.uapi import kvm as uapi

KVM_MAX_VCPU_ID = 512  # arm64 with a GICv3
PMCEID_STALL_SLOT_BITS = {"slot": 1 << 31, "all": 0b111 << 29}
__all__ = ["Kvm", "RunExit", "Vcpu", "Vm"]


class Kvm:
    """/dev/kvm: the system fd."""

    def __init__(self, host: Host, profile: KernelProfile, memory: UserMemory | None = None):
        self.host = host
        self.profile = profile
        self.memory = memory or UserMemory()

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION."""
        if cap == uapi.KVM_CAP_ARM_PMU_V3:
            return int(any(p.pmuver != sr.PMUVER_IMP_DEF for p in self.host.pmus))
        return int(cap == uapi.KVM_CAP_VCPU_ATTRIBUTES)

    def create_vm(self, vmm_cpu: int = 0) -> Vm:
        """KVM_CREATE_VM. `vmm_cpu` is the physical CPU the VMM's ioctls execute on."""
        return Vm(self, vmm_cpu)


class Vm:
    """A VM fd and the per-VM PMU state (`kvm->arch`)."""

    def __init__(self, kvm: Kvm, vmm_cpu: int) -> None:
        self.kvm = kvm
        self.host = kvm.host
        self.profile = kvm.profile
        self.memory = kvm.memory
        self.vmm_cpu = vmm_cpu
        self.vcpus: list[Vcpu] = []
        self.filter: EventFilter | None = None
        self.ran_once = False
        self.arm_pmu: HostPmu | None = None
        self.probed_pmuver: int | None = None
        self.nr_counters = 0
        self.supported_cpus: frozenset[int] | None = None
        self.vgic: Vgic | None = None
        self.vcpu_features: int | None = None  # v6.7+: the features every vCPU must have
        self.el3_bits = self.profile.el3_exclusion_bits and self.host.el3
        cap = self.profile.guest_pmuver_cap
        self.guest_pmuver = min(self.host.sanitised_pmuver, cap)
        self.guest_debugver = self._host_debugver()

    # --- VM ioctls ----------------------------------------------------------------------

    def create_vcpu(self, index: int) -> Vcpu:
        """KVM_CREATE_VCPU."""
        if not 0 <= index < KVM_MAX_VCPU_ID:
            raise KvmError(errno.EINVAL, f"vCPU id {index} out of range")
        if any(v.index == index for v in self.vcpus):
            raise KvmError(errno.EEXIST, f"vcpu{index} exists")
        if self.vgic is not None and self.vgic.initialized:
            raise KvmError(errno.EBUSY, "vGIC already initialised")
        vcpu = Vcpu(self, index)
        self.vcpus.append(vcpu)
        return vcpu

    def create_vgic(self) -> Vgic:
        """KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3): an in-kernel irqchip."""
        if self.vgic is not None:
            raise KvmError(errno.EEXIST, "the VM already has an irqchip")
        if any(v.has_run for v in self.vcpus):
            raise KvmError(errno.EBUSY, "a vCPU has run")
        self.vgic = Vgic()
        return self.vgic

    def create_irqchip(self, dist: int, redist: int) -> None:
        """The vGIC, and its addresses as a VMM sets them right after creating it."""
        vgic = self.create_vgic()
        vgic.set_address(uapi.KVM_VGIC_V3_ADDR_TYPE_DIST, dist)
        vgic.set_address(uapi.KVM_VGIC_V3_ADDR_TYPE_REDIST, redist)

    def init_irqchip(self) -> None:
        """KVM_SET_DEVICE_ATTR(KVM_DEV_ARM_VGIC_CTRL_INIT) on the vGIC device."""
        if self.vgic is None:
            raise KvmError(errno.ENODEV, "no vGIC")
        self.vgic.init()

    @property
    def irqchip_in_kernel(self) -> bool:
        return self.vgic is not None

    @property
    def vgic_initialized(self) -> bool:
        return self.vgic is not None and self.vgic.initialized

    # --- PMU selection and event spaces ------------------------------------------------

    def select_pmu(self, pmu: HostPmu) -> None:
        self.arm_pmu = pmu
        self.nr_counters = pmu.counters  # re-selecting a PMU resets N to its maximum

    def default_pmu(self) -> HostPmu | None:
        return self.host.pmu_for_cpu(self.vmm_cpu)

    def discover_pmu(self) -> None:
        """Step 3 of the PMU attribute prologue (§2.2), per kernel version."""
        if self.profile.probes_pmuver:
            if self.probed_pmuver is None:
                pmu = self.default_pmu()
                if pmu is None or pmu.pmuver == sr.PMUVER_IMP_DEF:
                    raise KvmError(errno.ENODEV, "no usable host PMU")
                self.probed_pmuver = pmu.pmuver
                self.select_pmu(pmu)
        elif not self.profile.pmu_selected_at_vcpu_init and self.arm_pmu is None:
            pmu = self.default_pmu()
            if pmu is None:
                raise KvmError(errno.ENODEV, "no host PMU for the current CPU")
            self.select_pmu(pmu)

    @property
    def pmu_pmuver(self) -> int:
        """The raw PMUVer of the VM's PMU (probed before v5.18, `arm_pmu->pmuver` after)."""
        if self.profile.probes_pmuver:
            return self.probed_pmuver or 0
        return self.arm_pmu.pmuver if self.arm_pmu else 0

    @property
    def masking_pmuver(self) -> int:
        """PMUVer that sizes the guest's event numbers (§2.3, right column)."""
        if self.profile.event_space_from_sanitised_pmuver:
            return self.guest_pmuver
        return self.pmu_pmuver

    def counting_pmu(self, vcpu: Vcpu) -> HostPmu | None:
        """The host PMU whose hardware counts for `vcpu` where it runs now."""
        if self.profile.has_set_pmu and self.arm_pmu is not None:
            return self.arm_pmu if vcpu.cpu in self.arm_pmu.cpus else None
        return self.host.pmu_for_cpu(vcpu.cpu)

    def irq_valid_for_vgic(self, irq: int) -> bool:
        from kvmpmu.kvm.vgic import is_ppi

        return self.vgic is not None and (is_ppi(irq) or self.vgic.valid_spi(irq))

    def pmceid_source(self, vcpu: Vcpu) -> HostPmu | None:
        """The PMU whose PMCEID the guest's view starts from: the VM's, or the CPU's hardware."""
        if self.profile.pmceid_from_pmu_bitmaps:
            return self.arm_pmu
        return self.host.pmu_for_cpu(vcpu.cpu)

    def guest_pmceid(self, vcpu: Vcpu, reg: int) -> int:
        """kvm_pmu_get_pmceid(): what the guest reads from PMCEID<reg>_EL0 (§4.2)."""
        prof = self.profile
        source = self.pmceid_source(vcpu)
        value = source.pmceid(reg) if source else 0
        if reg == 0:
            if prof.forces_chain_in_pmceid:
                value |= 1 << 30
            if prof.forces_sw_incr_in_pmceid:
                value |= 1
        elif prof.stall_slot_rule == "all":
            value &= ~PMCEID_STALL_SLOT_BITS["all"]
        elif prof.stall_slot_rule == "slot-if-v3p4" and self.pmu_pmuver >= sr.PMUVER_V3P4:
            value &= ~PMCEID_STALL_SLOT_BITS["slot"]
        if self.filter is None:
            return value
        base = 32 * reg
        mask = self.filter.window(base, 32)
        nr_events_guest = event_mask(self.masking_pmuver, prof.knows_v3p7) + 1
        if nr_events_guest >= 0x4000 + base + 32:
            mask |= self.filter.window(0x4000 + base, 32) << 32
        return value & mask

    # --- ID_AA64DFR0_EL1 (§5.4, §6) -----------------------------------------------------

    def _host_debugver(self) -> int:
        debugver = self.host.id_aa64dfr0 & sr.DFR0_DEBUGVER_MASK
        if self.profile.debugver_limited_to_v8p0:
            return sr.DFR0_DEBUGVER_V8P0
        if self.profile.generic_id_reg_checks:
            return min(debugver, sr.DFR0_DEBUGVER_V8P8)
        return debugver

    def guest_id_aa64dfr0(self, vcpu: Vcpu) -> int:
        """The ID_AA64DFR0_EL1 the guest and KVM_GET_ONE_REG read: the host's, without SPE,
        DebugVer limited, PMUVer the VM's (0 without the PMU feature from 5.11)."""
        host = self.host.id_aa64dfr0
        value = host & ~(sr.DFR0_DEBUGVER_MASK | sr.DFR0_PMUVER_MASK | sr.DFR0_PMSVER_MASK)
        if vcpu.has_pmu:
            pmuver = self.guest_pmuver
        elif self.profile.hides_absent_pmu:
            pmuver = 0
        else:
            pmuver = min(self.host.sanitised_pmuver, self.profile.guest_pmuver_cap)
        return value | pmuver << sr.DFR0_PMUVER_SHIFT | self.guest_debugver

    def set_id_aa64dfr0(self, vcpu: Vcpu, value: int) -> None:
        """KVM_SET_ONE_REG(ID_AA64DFR0_EL1): invariant before 6.2; then PMUVer (and from 6.6
        DebugVer) may be lowered before the VM runs."""
        current = self.guest_id_aa64dfr0(vcpu)
        if value == current:
            return
        prof = self.profile
        if not prof.id_regs_writable:
            raise KvmError(errno.EINVAL, "ID registers cannot be changed before v6.2")
        if self.ran_once:
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
        if not generic and vcpu.has_pmu != (pmuver != 0):
            raise KvmError(errno.EINVAL, "PMUVer 0 only for a vCPU without a PMU")
        debugver = value & sr.DFR0_DEBUGVER_MASK
        if debugver > self.guest_debugver or debugver < sr.DFR0_DEBUGVER_V8P0:
            raise KvmError(errno.EINVAL, f"DebugVer {debugver} is not lower-safe")
        self.guest_pmuver = pmuver
        self.guest_debugver = debugver
