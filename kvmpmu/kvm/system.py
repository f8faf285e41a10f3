"""The emulated KVM file descriptors: system -> VM -> vCPU, shaped like the real ioctl API.

Each method names the ioctl it stands for and raises KvmError(errno) the way the ioctl would
return -1 with errno set (kvm-ioctls style: no interpretation at this layer).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm import pmu_attrs
from kvmpmu.kvm.filter import EventFilter
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.kvm.memory import UserMemory
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.kvm.vpmu import Vpmu, event_mask
from kvmpmu.uapi import kvm as uapi

VGIC_NR_IRQS_LEGACY = 256  # the vGIC's size when userspace does not set one
PMCEID_STALL_SLOT_BITS = {"slot": 1 << 31, "all": 0b111 << 29}


@dataclass(frozen=True)
class RunExit:
    """What KVM_RUN left in `struct kvm_run`: the exit reason and, for FAIL_ENTRY, the CPU."""

    exit_reason: str
    hardware_entry_failure_reason: int = 0
    cpu: int | None = None


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
        self.irqchip_in_kernel = False
        self.vgic_initialized = False
        cap = self.profile.guest_pmuver_cap
        self.guest_pmuver = min(self.host.sanitised_pmuver, cap)

    # --- VM ioctls ----------------------------------------------------------------------

    def create_vcpu(self, index: int) -> Vcpu:
        """KVM_CREATE_VCPU."""
        if any(v.index == index for v in self.vcpus):
            raise KvmError(errno.EEXIST, f"vcpu{index} exists")
        if self.vgic_initialized:
            raise KvmError(errno.EBUSY, "vGIC already initialised")
        vcpu = Vcpu(self, index)
        self.vcpus.append(vcpu)
        return vcpu

    def create_irqchip(self) -> None:
        """KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3): an in-kernel irqchip."""
        self.irqchip_in_kernel = True

    def init_irqchip(self) -> None:
        """KVM_SET_DEVICE_ATTR(KVM_DEV_ARM_VGIC_CTRL_INIT) on the vGIC device."""
        if not self.irqchip_in_kernel:
            raise KvmError(errno.ENODEV, "no vGIC")
        self.vgic_initialized = True

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
        return 16 <= irq < 32 or 32 <= irq < VGIC_NR_IRQS_LEGACY

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


class Vcpu:
    """A vCPU fd."""

    def __init__(self, vm: Vm, index: int) -> None:
        self.vm = vm
        self.index = index
        self.initialized = False
        self.features = 0
        self.pmu_irq: int | None = None
        self.pmu_created = False
        self.has_run = False
        self.cpu = vm.vmm_cpu  # physical CPU this vCPU's thread runs on
        self.vpmu = Vpmu(self)

    @property
    def has_pmu(self) -> bool:
        return self.initialized and bool(self.features >> uapi.KVM_ARM_VCPU_PMU_V3 & 1)

    def ioctl(self, request: int, arg: int) -> int:
        """ioctl(vcpu_fd, request, arg) with `arg` an address in the VMM's memory."""
        mem = self.vm.memory
        if request == uapi.KVM_ARM_VCPU_INIT:
            self.vcpu_init(uapi.kvm_vcpu_init.unpack(mem.read(arg, uapi.SIZEOF_KVM_VCPU_INIT)))
        elif request in (uapi.KVM_SET_DEVICE_ATTR, uapi.KVM_GET_DEVICE_ATTR,
                         uapi.KVM_HAS_DEVICE_ATTR):
            attr = uapi.kvm_device_attr.unpack(mem.read(arg, uapi.SIZEOF_KVM_DEVICE_ATTR))
            {uapi.KVM_SET_DEVICE_ATTR: self.set_device_attr,
             uapi.KVM_GET_DEVICE_ATTR: self.get_device_attr,
             uapi.KVM_HAS_DEVICE_ATTR: self.has_device_attr}[request](attr)
        elif request in (uapi.KVM_GET_ONE_REG, uapi.KVM_SET_ONE_REG):
            reg = uapi.kvm_one_reg.unpack(mem.read(arg, uapi.SIZEOF_KVM_ONE_REG))
            (self.get_one_reg if request == uapi.KVM_GET_ONE_REG else self.set_one_reg)(reg)
        elif request == uapi.KVM_RUN:
            self.run()
        else:
            raise KvmError(errno.ENOTTY, f"unknown ioctl 0x{request:x}")
        return 0

    def vcpu_init(self, init: uapi.kvm_vcpu_init) -> None:
        """KVM_ARM_VCPU_INIT: EINVAL when the PMU feature is asked of a host without a vPMU."""
        features = init.features[0]
        if self.initialized and features != self.features:
            raise KvmError(errno.EINVAL, "features differ from the first KVM_ARM_VCPU_INIT")
        vm = self.vm
        if features >> uapi.KVM_ARM_VCPU_PMU_V3 & 1:
            usable = any(p.pmuver != sr.PMUVER_IMP_DEF for p in vm.host.pmus)
            if vm.profile.needs_uniform_pmuver and not vm.host.uniform_pmuver:
                usable = False
            if not usable:
                raise KvmError(errno.EINVAL, "the host cannot give guests a PMUv3")
            if vm.profile.pmu_selected_at_vcpu_init and vm.arm_pmu is None:
                pmu = vm.default_pmu()
                if pmu is None:
                    raise KvmError(errno.ENODEV, "no host PMU for the current CPU")
                vm.select_pmu(pmu)
        self.features = features
        self.initialized = True
        self.vpmu.reset()

    def _check_group(self, attr: uapi.kvm_device_attr) -> None:
        if attr.group != uapi.KVM_ARM_VCPU_PMU_V3_CTRL:
            raise KvmError(errno.ENXIO, f"group {attr.group} not modelled")

    def set_device_attr(self, attr: uapi.kvm_device_attr) -> None:
        """KVM_SET_DEVICE_ATTR: ENODEV, EBUSY, ENXIO, EINVAL, EFAULT, EEXIST per attribute."""
        self._check_group(attr)
        pmu_attrs.set_attr(self, attr)

    def get_device_attr(self, attr: uapi.kvm_device_attr) -> None:
        """KVM_GET_DEVICE_ATTR: only the PMU IRQ is readable."""
        self._check_group(attr)
        pmu_attrs.get_attr(self, attr)

    def has_device_attr(self, attr: uapi.kvm_device_attr) -> None:
        """KVM_HAS_DEVICE_ATTR: returns, or raises ENXIO."""
        self._check_group(attr)
        pmu_attrs.has_attr(self, attr)

    def get_one_reg(self, reg: uapi.kvm_one_reg) -> None:
        """KVM_GET_ONE_REG for PMCR_EL0 and ID_AA64DFR0_EL1 (the registers modelled)."""
        if not self.initialized:
            raise KvmError(errno.ENOEXEC, "vCPU not initialised")
        if reg.id == _ONE_REG_IDS["PMCR_EL0"]:
            value = self.vpmu.read_pmcr()
        elif reg.id == _ONE_REG_IDS["ID_AA64DFR0_EL1"]:
            value = self.vm.guest_pmuver << 8 if self.has_pmu else 0
        else:
            raise KvmError(errno.ENOENT, f"register 0x{reg.id:x} not modelled")
        self.vm.memory.write(reg.addr, value.to_bytes(8, "little"))

    def set_one_reg(self, reg: uapi.kvm_one_reg) -> None:
        """KVM_SET_ONE_REG: PMCR_EL0.N (v6.7+) and ID_AA64DFR0_EL1.PMUVer (v6.2+)."""
        if not self.initialized:
            raise KvmError(errno.ENOEXEC, "vCPU not initialised")
        value = int.from_bytes(self.vm.memory.read(reg.addr, 8), "little")
        if reg.id == _ONE_REG_IDS["PMCR_EL0"]:
            self._set_pmcr(value)
        elif reg.id == _ONE_REG_IDS["ID_AA64DFR0_EL1"]:
            self._set_dfr0(value)
        else:
            raise KvmError(errno.ENOENT, f"register 0x{reg.id:x} not modelled")

    def _set_pmcr(self, value: int) -> None:
        vm = self.vm
        if vm.profile.pmcr_n_via_one_reg:
            new_n = value >> sr.PMCR_N_SHIFT & sr.PMCR_N_MASK
            # A larger N, or any write after the VM ran, is silently ignored (§5.1).
            if vm.arm_pmu and not vm.ran_once and new_n <= vm.arm_pmu.counters:
                vm.nr_counters = new_n
        pmcr = self.vpmu.pmcr & ~sr.PMCR_WRITABLE_MASK
        self.vpmu.pmcr = self.vpmu._sanitise_pmcr(pmcr | value & sr.PMCR_WRITABLE_MASK)

    def _set_dfr0(self, value: int) -> None:
        vm = self.vm
        pmuver = value >> 8 & 0xF
        if pmuver == vm.guest_pmuver:
            return
        if not vm.profile.at_least(6, 2):
            raise KvmError(errno.EINVAL, "ID registers are invariant before v6.2")
        if vm.ran_once:
            raise KvmError(errno.EBUSY, "the VM has run")
        limit = min(vm.host.sanitised_pmuver, vm.profile.guest_pmuver_cap)
        if pmuver > limit:
            raise KvmError(errno.EINVAL, f"PMUVer 0x{pmuver:x} above the limit 0x{limit:x}")
        vm.guest_pmuver = pmuver

    def run(self) -> RunExit:
        """KVM_RUN: first-run PMU checks (§2.7), then enter the guest."""
        if not self.initialized:
            raise KvmError(errno.ENOEXEC, "vCPU not initialised")
        vm = self.vm
        if not self.has_run and self.has_pmu:
            if not self.pmu_created:
                raise KvmError(errno.EINVAL, "PMUv3 not initialised (KVM_ARM_VCPU_PMU_V3_INIT)")
            if vm.irqchip_in_kernel:
                if self.pmu_irq is None or not vm.irq_valid_for_vgic(self.pmu_irq):
                    raise KvmError(errno.EINVAL, "PMU IRQ not valid for the vGIC")
            elif self.pmu_irq is not None:
                raise KvmError(errno.EINVAL, "PMU IRQ set without an in-kernel irqchip")
        if not self.has_run:
            self.has_run = True
            vm.ran_once = True
            self.vpmu.reload_all()  # one-off reload of the PMU on first run
        supported = vm.supported_cpus
        if vm.profile.has_set_pmu and supported is not None and self.cpu not in supported:
            return RunExit("KVM_EXIT_FAIL_ENTRY", uapi.KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED,
                           self.cpu)
        return RunExit("KVM_EXIT_GUEST")


_ONE_REG_IDS = {
    name: uapi.sysreg_one_reg_id(r.op0, r.op1, r.crn, r.crm, r.op2)
    for name, r in sr.SYSREGS.items()
}
