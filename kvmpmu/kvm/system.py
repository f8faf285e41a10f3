"""The emulated KVM file descriptors: system -> VM -> vCPU, shaped like the real ioctl API.

Each method names the ioctl it stands for and raises KvmError(errno) the way the ioctl would
return -1 with errno set (kvm-ioctls style: no interpretation at this layer).
"""

from __future__ import annotations

import errno

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.kvm.kvm_arch import KvmArch
from kvmpmu.kvm.memory import UserMemory
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.kvm.vcpu import RunExit, Vcpu
from kvmpmu.kvm.vgic import Vgic
from kvmpmu.uapi import kvm as uapi

KVM_MAX_VCPU_ID = 512  # arm64 with a GICv3
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
    """A VM fd: its vCPUs and vGIC, and the per-VM state they share (`arch`). The read API
    below is what the VMM and the analyses may ask of the kernel."""

    def __init__(self, kvm: Kvm, vmm_cpu: int) -> None:
        self.kvm = kvm
        self.host = kvm.host
        self.profile = kvm.profile
        self.memory = kvm.memory
        self.vmm_cpu = vmm_cpu
        self.arch = KvmArch(kvm.host, kvm.profile, kvm.memory, vmm_cpu)
        self.vcpus: list[Vcpu] = []

    # --- VM ioctls ----------------------------------------------------------------------

    def create_vcpu(self, index: int) -> Vcpu:
        """KVM_CREATE_VCPU."""
        if not 0 <= index < KVM_MAX_VCPU_ID:
            raise KvmError(errno.EINVAL, f"vCPU id {index} out of range")
        if any(v.index == index for v in self.vcpus):
            raise KvmError(errno.EEXIST, f"vcpu{index} exists")
        if self.arch.vgic_initialized:
            raise KvmError(errno.EBUSY, "vGIC already initialised")
        vcpu = Vcpu(self.arch, index)
        self.vcpus.append(vcpu)
        return vcpu

    def create_vgic(self) -> Vgic:
        """KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3): an in-kernel irqchip."""
        if self.arch.vgic is not None:
            raise KvmError(errno.EEXIST, "the VM already has an irqchip")
        if any(v.has_run for v in self.vcpus):
            raise KvmError(errno.EBUSY, "a vCPU has run")
        vgic = Vgic()
        self.arch.attach_vgic(vgic)
        return vgic

    def create_irqchip(self, dist: int, redist: int) -> None:
        """The vGIC, and its addresses as a VMM sets them right after creating it."""
        vgic = self.create_vgic()
        vgic.set_address(uapi.KVM_VGIC_V3_ADDR_TYPE_DIST, dist)
        vgic.set_address(uapi.KVM_VGIC_V3_ADDR_TYPE_REDIST, redist)

    def init_irqchip(self) -> None:
        """KVM_SET_DEVICE_ATTR(KVM_DEV_ARM_VGIC_CTRL_INIT) on the vGIC device."""
        if self.arch.vgic is None:
            raise KvmError(errno.ENODEV, "no vGIC")
        self.arch.vgic.init()

    # --- read API ---------------------------------------------------------------------------

    @property
    def irqchip_in_kernel(self) -> bool:
        return self.arch.irqchip_in_kernel

    @property
    def ran_once(self) -> bool:
        return self.arch.ran_once

    @property
    def arm_pmu(self) -> HostPmu | None:
        return self.arch.arm_pmu

    @property
    def nr_counters(self) -> int:
        """The VM's PMCR_EL0.N from 6.7 (before, each vCPU's PMCR holds its own)."""
        return self.arch.nr_counters

    def filter_bitmap(self) -> int | None:
        """The event filter's bits (bit n = event n allowed), None without a filter."""
        return self.arch.filter_bitmap()

    def nr_filter_events(self) -> int:
        """How many events FILTER accepts: base_event + nevents may not exceed it (§2.3)."""
        return self.arch.nr_filter_events()

    def event_allowed(self, event: int) -> bool:
        """Whether the filter lets `event` count (SW_INCR and CHAIN aside): no filter, yes."""
        return self.arch.event_allowed(event)

    def guest_event_mask(self) -> int:
        """The event-number bits a guest's PMEVTYPER keeps for counting (§2.3)."""
        return self.arch.guest_event_mask()

    def default_pmu(self) -> HostPmu | None:
        """The PMU of the CPU the VMM runs on."""
        return self.arch.default_pmu()

    def counting_pmu(self, vcpu: Vcpu) -> HostPmu | None:
        return vcpu.counting_pmu()

    def pmceid_source(self, vcpu: Vcpu) -> HostPmu | None:
        """The PMU whose PMCEID the guest's view starts from: the VM's, or the CPU's hardware."""
        return self.arch.pmceid_source(vcpu.cpu)

    def guest_pmceid(self, vcpu: Vcpu, reg: int) -> int:
        """kvm_pmu_get_pmceid(): what the guest reads from PMCEID<reg>_EL0 (§4.2)."""
        return vcpu.guest_pmceid(reg)
