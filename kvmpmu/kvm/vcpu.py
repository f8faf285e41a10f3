"""A vCPU fd: KVM_ARM_VCPU_INIT, the PMU device attributes, ONE_REG and KVM_RUN's checks."""

from __future__ import annotations

import errno

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm import pmu_attrs
from kvmpmu.kvm.host import HostPmu
from kvmpmu.kvm.kvm_arch import KvmArch
from kvmpmu.kvm.memory import UserMemory
from kvmpmu.kvm.vpmu import Vpmu
from kvmpmu.records import Record
from kvmpmu.uapi import kvm as uapi
from kvmpmu.uapi.one_reg import CORE_REG_IDS, ONE_REG_NAMES

PSTATE_RESET_EL1 = 0x3C5  # EL1h, DAIF masked: a vCPU after KVM_ARM_VCPU_INIT
# Registers a VMM sets or reads that the model keeps as plain storage for the guest engine
# (after KVM_ARM_VCPU_INIT: all 0 but PSTATE; VBAR_EL1 resets to 0 too).
STORED_REGS = frozenset(CORE_REG_IDS) | {"VBAR_EL1"}
MODELLED_ONE_REGS = STORED_REGS | {"PMCR_EL0", "ID_AA64DFR0_EL1"}


class RunExit(Record):
    """What KVM_RUN left in `struct kvm_run` before the guest runs: KVM_EXIT_GUEST (enter it),
    or an exit: KVM_EXIT_FAIL_ENTRY with the CPU, KVM_EXIT_INTR (errno EINTR) with the
    PMU's line in `device_irq_level`."""

    __slots__ = ("exit_reason", "hardware_entry_failure_reason", "cpu", "device_irq_level",
                 "errno")

    def __init__(self, exit_reason: str, hardware_entry_failure_reason: int = 0,
                 cpu: int | None = None, device_irq_level: int = 0,
                 errno: int | None = None) -> None:
        self.exit_reason = exit_reason
        self.hardware_entry_failure_reason = hardware_entry_failure_reason
        self.cpu, self.device_irq_level, self.errno = cpu, device_irq_level, errno


class Vcpu:
    """A vCPU fd."""

    def __init__(self, arch: KvmArch, index: int) -> None:
        self.arch = arch
        self.index = index
        self.initialized = False
        self.features = 0
        self.has_run = False
        self._cpu = arch.vmm_cpu  # physical CPU this vCPU's thread runs on (the VMM places it)
        self.vpmu = Vpmu(self)
        self.regs: dict[str, int] = {}  # core and EL1 registers as ONE_REG sets them
        self.regs_set: set[str] = set()  # those the VMM set since KVM_ARM_VCPU_INIT
        self.run_device_irq_level = 0  # kvm_run->s.regs.device_irq_level, userspace's copy

    @property
    def cpu(self) -> int:
        return self._cpu

    @cpu.setter
    def cpu(self, cpu: int) -> None:
        self._cpu = cpu
        self.arch.perf_event_inputs_changed()  # perf events created from now on count there

    @property
    def memory(self) -> UserMemory:
        """The VMM's address space the ioctls' pointers point into."""
        return self.arch.memory

    @property
    def pmu_irq(self) -> int | None:
        return self.arch.pmu_irq(self.index)

    @property
    def pmu_created(self) -> bool:
        return self.vpmu.created

    def guest_pmceid(self, reg: int) -> int:
        """What the guest reads from PMCEID<reg>_EL0 where this vCPU runs now (§4.2)."""
        return self.arch.guest_pmceid(self.cpu, reg)

    def counting_pmu(self) -> HostPmu | None:
        """The host PMU whose hardware counts for this vCPU where it runs now."""
        return self.arch.counting_pmu(self.cpu)

    @property
    def has_pmu(self) -> bool:
        """kvm_vcpu_has_pmu(): from 6.7 the features are the VM's, so a vCPU not yet
        initialised has the PMU once another vCPU was initialised with it (measured, 6.12)."""
        if self.arch.profile.vcpu_features_vm_wide:
            features = self.arch.vcpu_features
            return features is not None and bool(features >> uapi.KVM_ARM_VCPU_PMU_V3 & 1)
        return self.initialized and bool(self.features >> uapi.KVM_ARM_VCPU_PMU_V3 & 1)

    def ioctl(self, request: int, arg: int) -> int:
        """ioctl(vcpu_fd, request, arg) with `arg` an address in the VMM's memory."""
        mem = self.arch.memory
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
        """KVM_ARM_VCPU_INIT: EINVAL when the PMU feature is asked of a host without a vPMU,
        when the features change, and (v6.7+) when they differ from the VM's other vCPUs."""
        features = init.features[0]
        if self.initialized and features != self.features:
            raise KvmError(errno.EINVAL, "features differ from the first KVM_ARM_VCPU_INIT")
        arch = self.arch
        if arch.profile.vcpu_features_vm_wide and arch.vcpu_features not in (None, features):
            raise KvmError(errno.EINVAL, "features differ from the VM's other vCPUs")
        if features >> uapi.KVM_ARM_VCPU_PMU_V3 & 1:
            usable = any(p.pmuver != sr.PMUVER_IMP_DEF for p in arch.host.pmus)
            if arch.profile.needs_uniform_pmuver and not arch.host.uniform_pmuver:
                usable = False
            if not usable:
                raise KvmError(errno.EINVAL, "the host cannot give guests a PMUv3")
            if arch.profile.pmu_selected_at_vcpu_init and arch.arm_pmu is None:
                pmu = arch.default_pmu()
                if pmu is None:
                    raise KvmError(errno.ENODEV, "no host PMU for the current CPU")
                arch.select_pmu(pmu)
        arch.set_vcpu_features(features)
        self.features = features
        self.initialized = True
        self.regs = dict.fromkeys(STORED_REGS, 0)
        self.regs["PSTATE"] = PSTATE_RESET_EL1
        self.regs_set = set()
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

    # --- KVM_{GET,SET}_ONE_REG -------------------------------------------------------------

    def _one_reg(self, reg: uapi.kvm_one_reg) -> str:
        if not self.initialized:
            raise KvmError(errno.ENOEXEC, "vCPU not initialised")
        name = ONE_REG_NAMES.get(reg.id)
        if name is None or name not in MODELLED_ONE_REGS:
            raise KvmError(errno.ENOENT, f"register 0x{reg.id:x} not modelled")
        if name == "PMCR_EL0" and not self.has_pmu and self.arch.profile.hides_absent_pmu:
            raise KvmError(errno.ENOENT, "no PMU: its registers are hidden")
        return name

    def get_one_reg(self, reg: uapi.kvm_one_reg) -> None:
        """KVM_GET_ONE_REG of the registers the model keeps."""
        name = self._one_reg(reg)
        if name == "PMCR_EL0":
            value = self.vpmu.read_pmcr()
        elif name == "ID_AA64DFR0_EL1":
            value = self.arch.guest_id_aa64dfr0(self.has_pmu)
        else:
            value = self.regs[name]
        self.arch.memory.write(reg.addr, value.to_bytes(8, "little"))

    def set_one_reg(self, reg: uapi.kvm_one_reg) -> None:
        """KVM_SET_ONE_REG: PMCR_EL0 per profile, ID_AA64DFR0_EL1 (v6.2+), stored registers."""
        name = self._one_reg(reg)
        value = int.from_bytes(self.arch.memory.read(reg.addr, 8), "little")
        if name == "PMCR_EL0":
            self.vpmu.set_pmcr_from_user(value)
        elif name == "ID_AA64DFR0_EL1":
            self.arch.set_id_aa64dfr0(self.has_pmu, value)
        else:
            self.regs[name] = value
            self.regs_set.add(name)

    # --- KVM_RUN -----------------------------------------------------------------------------

    def run(self) -> RunExit:
        """KVM_RUN's checks and state changes before the guest runs (§2.7, §6)."""
        if not self.initialized:
            raise KvmError(errno.ENOEXEC, "vCPU not initialised")
        arch = self.arch
        if not self.has_run:
            self._first_run()
        if self.must_notify_user():  # kvm_vcpu_exit_request()'s order
            return self.exit_to_user()
        supported = arch.supported_cpus
        if arch.profile.has_set_pmu and supported is not None and self.cpu not in supported:
            return RunExit("KVM_EXIT_FAIL_ENTRY", uapi.KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED,
                           self.cpu)
        return RunExit("KVM_EXIT_GUEST")

    def _first_run(self) -> None:
        """kvm_vcpu_first_run_init(): the vGIC's resources, then the PMU; a failure leaves the
        VM not marked as having run."""
        arch = self.arch
        if arch.vgic is not None:
            arch.vgic.map_resources()
        ready = False
        if self.has_pmu:
            ready = self._enable_pmu()
        self.has_run = True
        arch.mark_ran()
        self.vpmu.first_run(ready)

    def _enable_pmu(self) -> bool:
        """kvm_arm_pmu_v3_enable(): is the PMU usable by the guest."""
        arch = self.arch
        if not self.vpmu.created:
            if arch.profile.hides_absent_pmu:
                raise KvmError(errno.EINVAL, "PMUv3 not initialised (KVM_ARM_VCPU_PMU_V3_INIT)")
            return False  # 5.10: the guest runs with a PMU that reads 0
        irq = self.pmu_irq
        if arch.irqchip_in_kernel:
            if irq is None or not arch.irq_valid_for_vgic(irq):
                raise KvmError(errno.EINVAL, "PMU IRQ not valid for the vGIC")
        elif irq is not None:
            raise KvmError(errno.EINVAL, "PMU IRQ set without an in-kernel irqchip")
        return True

    # --- a userspace irqchip (§6: KVM_EXIT_INTR with device_irq_level) -------------------

    def must_notify_user(self) -> bool:
        """kvm_pmu_should_notify_user(): the PMU's line differs from userspace's copy."""
        if self.arch.irqchip_in_kernel or not self.has_pmu:
            return False
        line = bool(self.run_device_irq_level & uapi.KVM_ARM_DEV_PMU)
        return self.vpmu.irq_level != line

    def exit_to_user(self) -> RunExit:
        """Exit with KVM_EXIT_INTR (errno EINTR), after kvm_pmu_update_run()."""
        self.update_run()
        return RunExit("KVM_EXIT_INTR", device_irq_level=self.run_device_irq_level,
                       errno=errno.EINTR)

    def update_run(self) -> None:
        """kvm_pmu_update_run(): userspace's copy of the line, at every exit."""
        if self.arch.irqchip_in_kernel:
            return
        level = self.run_device_irq_level & ~uapi.KVM_ARM_DEV_PMU
        if self.has_pmu and self.vpmu.irq_level:
            level |= uapi.KVM_ARM_DEV_PMU
        self.run_device_irq_level = level
