"""The KVM_ARM_VCPU_PMU_V3_CTRL device attributes, in the kernel's order of checks (§2.2, §2.7).

Each handler takes the vCPU as an `AttrTarget`: the checks are here, the state changes are
methods of the vPMU (`kvm_pmu`) and of the VM's shared state (`kvm->arch`) that own it.
"""

from __future__ import annotations

import errno
import functools
import struct
from collections.abc import Callable
from typing import Protocol

from kvmpmu.errors import KvmError
from kvmpmu.kvm.kvm_arch import KvmArch
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.kvm.vpmu import Vpmu
from kvmpmu.uapi import kvm as uapi


class AttrTarget(Protocol):
    """What the attribute handlers need of a vCPU."""

    @property
    def index(self) -> int: ...

    @property
    def arch(self) -> KvmArch: ...

    @property
    def vpmu(self) -> Vpmu: ...

    @property
    def has_pmu(self) -> bool: ...


Handler = Callable[[AttrTarget, uapi.kvm_device_attr], None]


def _read_int(vcpu: AttrTarget, addr: int, signed: bool = True) -> int:
    raw = vcpu.arch.memory.read(addr, 4)  # get_user(): EFAULT on a bad pointer
    return int(struct.unpack("<i" if signed else "<I", raw)[0])


def has_attr(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    """KVM_HAS_DEVICE_ATTR: 0 for the attributes this kernel knows, iff the vCPU has a PMU."""
    if attr.attr in _handlers(vcpu.arch) and vcpu.has_pmu:
        return
    raise KvmError(errno.ENXIO)


def get_attr(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    """KVM_GET_DEVICE_ATTR: only the IRQ can be read back (the filter cannot)."""
    if attr.attr != uapi.KVM_ARM_VCPU_PMU_V3_IRQ:
        raise KvmError(errno.ENXIO, "attribute cannot be read")
    if not vcpu.arch.irqchip_in_kernel:
        raise KvmError(errno.EINVAL, "no in-kernel irqchip")
    if not vcpu.has_pmu:
        raise KvmError(errno.ENODEV, "vCPU has no PMU")
    irq = vcpu.arch.pmu_irq(vcpu.index)
    if irq is None:
        raise KvmError(errno.ENXIO, "PMU IRQ not set")
    vcpu.arch.memory.write(attr.addr, struct.pack("<i", irq))


def set_attr(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    """KVM_SET_DEVICE_ATTR: the common prologue, then the attribute's own checks."""
    if not vcpu.has_pmu:
        raise KvmError(errno.ENODEV, "vCPU not initialised with KVM_ARM_VCPU_PMU_V3")
    if vcpu.vpmu.created:
        raise KvmError(errno.EBUSY, "PMUv3 already initialised on this vCPU")
    vcpu.arch.discover_pmu()
    handler = _handlers(vcpu.arch).get(attr.attr)
    if handler is None:
        raise KvmError(errno.ENXIO, "unknown attribute")
    handler(vcpu, attr)


def _set_irq(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    if not vcpu.arch.irqchip_in_kernel:
        raise KvmError(errno.EINVAL, "no in-kernel irqchip")
    vcpu.arch.set_pmu_irq(vcpu.index, _read_int(vcpu, attr.addr))


def _init(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    arch = vcpu.arch
    if arch.irqchip_in_kernel:
        irq = arch.pmu_irq(vcpu.index)
        if not arch.vgic_initialized:
            raise KvmError(errno.ENODEV, "vGIC not initialised")
        if irq is None:
            raise KvmError(errno.ENXIO, "PMU IRQ not set")
        if not arch.irq_valid_for_vgic(irq):
            raise KvmError(errno.EINVAL, f"IRQ {irq} not valid for the vGIC")
    vcpu.vpmu.create()


def _set_filter(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    raw = vcpu.arch.memory.read(attr.addr, uapi.SIZEOF_KVM_PMU_EVENT_FILTER)
    vcpu.arch.set_filter(uapi.kvm_pmu_event_filter.unpack(raw))


def _set_pmu(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    vcpu.arch.set_pmu(_read_int(vcpu, attr.addr))


def _set_nr_counters(vcpu: AttrTarget, attr: uapi.kvm_device_attr) -> None:
    vcpu.arch.set_nr_counters(_read_int(vcpu, attr.addr, signed=False))


_ALWAYS: dict[int, Handler] = {
    uapi.KVM_ARM_VCPU_PMU_V3_IRQ: _set_irq,
    uapi.KVM_ARM_VCPU_PMU_V3_INIT: _init,
    uapi.KVM_ARM_VCPU_PMU_V3_FILTER: _set_filter,
}


@functools.cache
def _profile_handlers(profile: KernelProfile) -> dict[int, Handler]:
    known = dict(_ALWAYS)
    if profile.has_set_pmu:
        known[uapi.KVM_ARM_VCPU_PMU_V3_SET_PMU] = _set_pmu
    if profile.has_set_nr_counters:
        known[uapi.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS] = _set_nr_counters
    return known


def _handlers(arch: KvmArch) -> dict[int, Handler]:
    """The attributes this kernel knows, and their handlers."""
    return _profile_handlers(arch.profile)
