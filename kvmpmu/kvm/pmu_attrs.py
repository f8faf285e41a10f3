"""The KVM_ARM_VCPU_PMU_V3_CTRL device attributes, in the kernel's order of checks (§2.2, §2.7)."""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.filter import EventFilter
from kvmpmu.kvm.vgic import is_ppi as _is_ppi
from kvmpmu.kvm.vgic import is_spi as _is_spi
from kvmpmu.kvm.vpmu import event_mask
from kvmpmu.uapi import kvm as uapi

if TYPE_CHECKING:
    from kvmpmu.kvm.vcpu import Vcpu


def _read_int(vcpu: Vcpu, addr: int, signed: bool = True) -> int:
    raw = vcpu.vm.memory.read(addr, 4)  # get_user(): EFAULT on a bad pointer
    return int(struct.unpack("<i" if signed else "<I", raw)[0])


def has_attr(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    """KVM_HAS_DEVICE_ATTR: 0 for the attributes this kernel knows, iff the vCPU has a PMU."""
    known = {uapi.KVM_ARM_VCPU_PMU_V3_IRQ, uapi.KVM_ARM_VCPU_PMU_V3_INIT,
             uapi.KVM_ARM_VCPU_PMU_V3_FILTER}
    if vcpu.vm.profile.has_set_pmu:
        known.add(uapi.KVM_ARM_VCPU_PMU_V3_SET_PMU)
    if vcpu.vm.profile.has_set_nr_counters:
        known.add(uapi.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS)
    if attr.attr in known and vcpu.has_pmu:
        return
    raise KvmError(errno.ENXIO)


def get_attr(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    """KVM_GET_DEVICE_ATTR: only the IRQ can be read back (the filter cannot)."""
    if attr.attr != uapi.KVM_ARM_VCPU_PMU_V3_IRQ:
        raise KvmError(errno.ENXIO, "attribute cannot be read")
    if not vcpu.vm.irqchip_in_kernel:
        raise KvmError(errno.EINVAL, "no in-kernel irqchip")
    if not vcpu.has_pmu:
        raise KvmError(errno.ENODEV, "vCPU has no PMU")
    if vcpu.pmu_irq is None:
        raise KvmError(errno.ENXIO, "PMU IRQ not set")
    vcpu.vm.memory.write(attr.addr, struct.pack("<i", vcpu.pmu_irq))


def set_attr(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    """KVM_SET_DEVICE_ATTR: the common prologue, then the attribute's own checks."""
    vm = vcpu.vm
    if not vcpu.has_pmu:
        raise KvmError(errno.ENODEV, "vCPU not initialised with KVM_ARM_VCPU_PMU_V3")
    if vcpu.pmu_created:
        raise KvmError(errno.EBUSY, "PMUv3 already initialised on this vCPU")
    vm.discover_pmu()
    handler = {
        uapi.KVM_ARM_VCPU_PMU_V3_IRQ: _set_irq,
        uapi.KVM_ARM_VCPU_PMU_V3_INIT: _init,
        uapi.KVM_ARM_VCPU_PMU_V3_FILTER: _set_filter,
        uapi.KVM_ARM_VCPU_PMU_V3_SET_PMU: _set_pmu if vm.profile.has_set_pmu else None,
        uapi.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS: (
            _set_nr_counters if vm.profile.has_set_nr_counters else None
        ),
    }.get(attr.attr)
    if handler is None:
        raise KvmError(errno.ENXIO, "unknown attribute")
    handler(vcpu, attr)


def _set_irq(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    vm = vcpu.vm
    if not vm.irqchip_in_kernel:
        raise KvmError(errno.EINVAL, "no in-kernel irqchip")
    irq = _read_int(vcpu, attr.addr)
    if not (_is_ppi(irq) or _is_spi(irq)):
        raise KvmError(errno.EINVAL, f"IRQ {irq} is neither a PPI nor an SPI")
    for other in vm.vcpus:  # pmu_irq_is_valid(): one PPI for all vCPUs, distinct SPIs
        if other.pmu_irq is None:
            continue
        if _is_ppi(irq) and other.pmu_irq != irq:
            raise KvmError(errno.EINVAL, f"PPI {irq} differs from vcpu{other.index}'s")
        if not _is_ppi(irq) and other.pmu_irq == irq:
            raise KvmError(errno.EINVAL, f"SPI {irq} already used by vcpu{other.index}")
    if vcpu.pmu_irq is not None:
        raise KvmError(errno.EBUSY, "PMU IRQ already set")
    vcpu.pmu_irq = irq


def _init(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    vm = vcpu.vm
    if vm.irqchip_in_kernel:
        if not vm.vgic_initialized:
            raise KvmError(errno.ENODEV, "vGIC not initialised")
        if vcpu.pmu_irq is None:
            raise KvmError(errno.ENXIO, "PMU IRQ not set")
        if not vm.irq_valid_for_vgic(vcpu.pmu_irq):
            raise KvmError(errno.EINVAL, f"IRQ {vcpu.pmu_irq} not valid for the vGIC")
    vcpu.pmu_created = True


def filter_nr_events(vcpu: Vcpu) -> int:
    """nr_events of FILTER's range check (§2.3, left column)."""
    vm = vcpu.vm
    if vm.profile.event_space_from_sanitised_pmuver:
        limit = min(vm.host.sanitised_pmuver, sr.PMUVER_V3P5)
        return event_mask(limit, vm.profile.knows_v3p7) + 1
    return event_mask(vm.pmu_pmuver, vm.profile.knows_v3p7) + 1


def _set_filter(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    vm = vcpu.vm
    nr_events = filter_nr_events(vcpu)
    raw = vm.memory.read(attr.addr, uapi.SIZEOF_KVM_PMU_EVENT_FILTER)
    flt = uapi.kvm_pmu_event_filter.unpack(raw)
    if flt.base_event + flt.nevents > nr_events:
        raise KvmError(
            errno.EINVAL,
            f"range 0x{flt.base_event:x}+0x{flt.nevents:x} exceeds the {nr_events}-event space",
        )
    if flt.action not in (uapi.KVM_PMU_EVENT_ALLOW, uapi.KVM_PMU_EVENT_DENY):
        raise KvmError(errno.EINVAL, f"action {flt.action} is neither ALLOW nor DENY")
    if vm.profile.filter_busy_after_run and vm.ran_once:
        raise KvmError(errno.EBUSY, "a vCPU of this VM has already run")
    if vm.filter is None:
        vm.filter = EventFilter(nr_events, flt.action)
    vm.filter.apply(flt.base_event, flt.nevents, flt.action)


def _set_pmu(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    vm = vcpu.vm
    pmu_id = _read_int(vcpu, attr.addr)
    pmu = vm.host.pmu_by_type(pmu_id)
    if pmu is None:
        raise KvmError(errno.ENXIO, f"no host PMU with type {pmu_id}")
    if vm.ran_once:
        raise KvmError(errno.EBUSY, "a vCPU of this VM has already run")
    if vm.filter is not None and vm.arm_pmu is not pmu:
        raise KvmError(errno.EBUSY, "an event filter exists and the PMU differs")
    vm.select_pmu(pmu)
    vm.supported_cpus = pmu.cpus


def _set_nr_counters(vcpu: Vcpu, attr: uapi.kvm_device_attr) -> None:
    vm = vcpu.vm
    n = _read_int(vcpu, attr.addr, signed=False)
    if vm.arm_pmu is None:
        raise KvmError(errno.EINVAL, "no PMU selected")
    if n > vm.arm_pmu.counters:
        raise KvmError(errno.EINVAL, f"{n} counters exceed the PMU's {vm.arm_pmu.counters}")
    vm.nr_counters = n
