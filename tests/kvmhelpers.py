"""Builders for emulated VMs at successive stages, driven through the ioctl interface."""

from __future__ import annotations

import errno as E
import struct

import pytest

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.host import FIRST_PMU_TYPE, Host, HostPmu, generic_host
from kvmpmu.kvm.profiles import PROFILES
from kvmpmu.kvm.sysreg_access import resolve
from kvmpmu.kvm.system import Kvm, Vcpu, Vm
from kvmpmu.uapi import kvm as u
from kvmpmu.vmm.memmap import GICD_BASE, GICR_BASE

PMU_FEATURE = (1 << u.KVM_ARM_VCPU_PMU_V3,) + (0,) * 6
ALLOW, DENY = 0, 1


def make_vm(profile: str = "latest", host: Host | None = None, vcpus: int = 1,
            irqchip: bool = True, pmu: bool = True) -> tuple[Vm, list[Vcpu]]:
    kvm = Kvm(host or generic_host(), PROFILES[profile])
    vm = kvm.create_vm()
    if irqchip:
        vm.create_irqchip(GICD_BASE, GICR_BASE)
    cpus = [vm.create_vcpu(i) for i in range(vcpus)]
    for vcpu in cpus:
        vcpu.vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE if pmu else (0,) * 7))
    if irqchip:
        vm.init_irqchip()
    return vm, cpus


def ioctl_attr(vcpu: Vcpu, request: int, attr: int, payload: bytes | None = None,
               addr: int | None = None, group: int = u.KVM_ARM_VCPU_PMU_V3_CTRL) -> None:
    mem = vcpu.memory
    if addr is None:
        addr = mem.put(payload) if payload else 0
    raw = u.kvm_device_attr(0, group, attr, addr).pack()
    vcpu.ioctl(request, mem.put(raw))


def set_attr(vcpu: Vcpu, attr: int, payload: bytes | None = None, **kw: int) -> None:
    ioctl_attr(vcpu, u.KVM_SET_DEVICE_ATTR, attr, payload, **kw)


def set_filter(vcpu: Vcpu, base: int, nevents: int, action: int) -> None:
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_FILTER,
             u.kvm_pmu_event_filter(base, nevents, action).pack())


def set_irq(vcpu: Vcpu, irq: int = 23) -> None:
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_IRQ, struct.pack("<i", irq))


def pmu_init(vcpu: Vcpu) -> None:
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_INIT)


def ready(vcpu: Vcpu, irq: int = 23) -> None:
    """IRQ then INIT: the vCPU can run."""
    set_irq(vcpu, irq)
    pmu_init(vcpu)


def errno_of(fn, *args, **kwargs) -> int | None:
    try:
        fn(*args, **kwargs)
    except KvmError as err:
        return err.errno
    return None


def expect_errno(expected: int, fn, *args, **kwargs) -> None:
    got = errno_of(fn, *args, **kwargs)
    assert got == expected, f"expected {E.errorcode.get(expected)}, got {got and E.errorcode[got]}"


def reg(vcpu: Vcpu, name: str, value: int | None = None, el: int = 1) -> int | None:
    read, write = resolve(vcpu.vpmu, name)
    if value is None:
        return read(el)
    write(el, value)
    return None


def two_pmu_host(big_ver: int = sr.PMUVER_V3P5, little_ver: int = sr.PMUVER_V3P5) -> Host:
    events = generic_host().pmus[0].events
    big = HostPmu("big", FIRST_PMU_TYPE, big_ver, 6, events, frozenset(range(0, 4)))
    little = HostPmu("little", FIRST_PMU_TYPE + 1, little_ver, 4, events, frozenset(range(4, 8)))
    return Host((big, little), cpus=frozenset(range(8)))


def one_pmu_host(events: set[int], pmuver: int = sr.PMUVER_V3P5, counters: int = 6) -> Host:
    pmu = HostPmu("pmu", FIRST_PMU_TYPE, pmuver, counters, frozenset(events), frozenset(range(4)))
    return Host((pmu,), cpus=frozenset(range(4)))


ALL_PROFILES = pytest.mark.parametrize("profile", list(PROFILES))
