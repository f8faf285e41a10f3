"""Constants, ioctl encoding and byte-exact struct packing of the KVM arm64 PMU uAPI."""

from __future__ import annotations

import struct
from dataclasses import dataclass

KVMIO = 0xAE

# asm-generic ioctl encoding: dir<<30 | size<<16 | type<<8 | nr
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _IOC(direction: int, ioc_type: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ioc_type << 8) | nr


def _IO(ioc_type: int, nr: int) -> int:
    return _IOC(_IOC_NONE, ioc_type, nr, 0)


def _IOW(ioc_type: int, nr: int, size: int) -> int:
    return _IOC(_IOC_WRITE, ioc_type, nr, size)


def _IOR(ioc_type: int, nr: int, size: int) -> int:
    return _IOC(_IOC_READ, ioc_type, nr, size)


def _IOWR(ioc_type: int, nr: int, size: int) -> int:
    return _IOC(_IOC_READ | _IOC_WRITE, ioc_type, nr, size)


# struct kvm_device_attr { __u32 flags; __u32 group; __u64 attr; __u64 addr; }
KVM_DEVICE_ATTR_FORMAT = "<IIQQ"
# struct kvm_pmu_event_filter { __u16 base_event; __u16 nevents; __u8 action; __u8 pad[3]; }
KVM_PMU_EVENT_FILTER_FORMAT = "<HHB3s"
# struct kvm_vcpu_init { __u32 target; __u32 features[7]; }
KVM_VCPU_INIT_FORMAT = "<I7I"
# struct kvm_one_reg { __u64 id; __u64 addr; }
KVM_ONE_REG_FORMAT = "<QQ"

SIZEOF_KVM_DEVICE_ATTR = struct.calcsize(KVM_DEVICE_ATTR_FORMAT)
SIZEOF_KVM_PMU_EVENT_FILTER = struct.calcsize(KVM_PMU_EVENT_FILTER_FORMAT)
SIZEOF_KVM_VCPU_INIT = struct.calcsize(KVM_VCPU_INIT_FORMAT)
SIZEOF_KVM_ONE_REG = struct.calcsize(KVM_ONE_REG_FORMAT)

KVM_CREATE_VM = _IO(KVMIO, 0x01)
KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03)
KVM_CREATE_VCPU = _IO(KVMIO, 0x41)
KVM_RUN = _IO(KVMIO, 0x80)
KVM_GET_ONE_REG = _IOW(KVMIO, 0xAB, SIZEOF_KVM_ONE_REG)
KVM_SET_ONE_REG = _IOW(KVMIO, 0xAC, SIZEOF_KVM_ONE_REG)
KVM_ARM_VCPU_INIT = _IOW(KVMIO, 0xAE, SIZEOF_KVM_VCPU_INIT)
KVM_ARM_PREFERRED_TARGET = _IOR(KVMIO, 0xAF, SIZEOF_KVM_VCPU_INIT)
KVM_SET_DEVICE_ATTR = _IOW(KVMIO, 0xE1, SIZEOF_KVM_DEVICE_ATTR)
KVM_GET_DEVICE_ATTR = _IOW(KVMIO, 0xE2, SIZEOF_KVM_DEVICE_ATTR)
KVM_HAS_DEVICE_ATTR = _IOW(KVMIO, 0xE3, SIZEOF_KVM_DEVICE_ATTR)

IOCTL_NAMES = {
    KVM_CREATE_VM: "KVM_CREATE_VM",
    KVM_CHECK_EXTENSION: "KVM_CHECK_EXTENSION",
    KVM_CREATE_VCPU: "KVM_CREATE_VCPU",
    KVM_RUN: "KVM_RUN",
    KVM_GET_ONE_REG: "KVM_GET_ONE_REG",
    KVM_SET_ONE_REG: "KVM_SET_ONE_REG",
    KVM_ARM_VCPU_INIT: "KVM_ARM_VCPU_INIT",
    KVM_SET_DEVICE_ATTR: "KVM_SET_DEVICE_ATTR",
    KVM_GET_DEVICE_ATTR: "KVM_GET_DEVICE_ATTR",
    KVM_HAS_DEVICE_ATTR: "KVM_HAS_DEVICE_ATTR",
}

KVM_CAP_ARM_PMU_V3 = 126
KVM_CAP_VCPU_ATTRIBUTES = 127

# vCPU features (struct kvm_vcpu_init.features[0] bits)
KVM_ARM_VCPU_POWER_OFF = 0
KVM_ARM_VCPU_EL1_32BIT = 1
KVM_ARM_VCPU_PSCI_0_2 = 2
KVM_ARM_VCPU_PMU_V3 = 3

# vCPU device-attribute groups
KVM_ARM_VCPU_PMU_V3_CTRL = 0
KVM_ARM_VCPU_TIMER_CTRL = 1
KVM_ARM_VCPU_PVTIME_CTRL = 2

# attributes of KVM_ARM_VCPU_PMU_V3_CTRL
KVM_ARM_VCPU_PMU_V3_IRQ = 0
KVM_ARM_VCPU_PMU_V3_INIT = 1
KVM_ARM_VCPU_PMU_V3_FILTER = 2
KVM_ARM_VCPU_PMU_V3_SET_PMU = 3
KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS = 4

PMU_ATTR_NAMES = {
    KVM_ARM_VCPU_PMU_V3_IRQ: "KVM_ARM_VCPU_PMU_V3_IRQ",
    KVM_ARM_VCPU_PMU_V3_INIT: "KVM_ARM_VCPU_PMU_V3_INIT",
    KVM_ARM_VCPU_PMU_V3_FILTER: "KVM_ARM_VCPU_PMU_V3_FILTER",
    KVM_ARM_VCPU_PMU_V3_SET_PMU: "KVM_ARM_VCPU_PMU_V3_SET_PMU",
    KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS: "KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS",
}

KVM_PMU_EVENT_ALLOW = 0
KVM_PMU_EVENT_DENY = 1

# kvm_run exit reasons used here
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED = 1 << 0
FAIL_ENTRY_REASONS = {KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED: "KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED"}
# kvm_run->s.regs.device_irq_level bit for the PMU line with a userspace irqchip
KVM_ARM_DEV_PMU = 1 << 2

# KVM_{GET,SET}_ONE_REG id of an AArch64 system register
KVM_REG_ARM64_SYSREG_BASE = 0x6030000000130000


def sysreg_one_reg_id(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    """The ONE_REG id of a system register from its encoding."""
    return KVM_REG_ARM64_SYSREG_BASE | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2


@dataclass(frozen=True)
class kvm_device_attr:  # noqa: N801 - kernel struct name
    flags: int
    group: int
    attr: int
    addr: int

    def pack(self) -> bytes:
        return struct.pack(KVM_DEVICE_ATTR_FORMAT, self.flags, self.group, self.attr, self.addr)

    @classmethod
    def unpack(cls, raw: bytes) -> kvm_device_attr:
        return cls(*struct.unpack(KVM_DEVICE_ATTR_FORMAT, raw))


@dataclass(frozen=True)
class kvm_pmu_event_filter:  # noqa: N801 - kernel struct name
    base_event: int
    nevents: int
    action: int
    pad: bytes = b"\0\0\0"

    def pack(self) -> bytes:
        return struct.pack(
            KVM_PMU_EVENT_FILTER_FORMAT, self.base_event, self.nevents, self.action, self.pad
        )

    @classmethod
    def unpack(cls, raw: bytes) -> kvm_pmu_event_filter:
        return cls(*struct.unpack(KVM_PMU_EVENT_FILTER_FORMAT, raw))


@dataclass(frozen=True)
class kvm_vcpu_init:  # noqa: N801 - kernel struct name
    target: int
    features: tuple[int, ...] = (0,) * 7

    def pack(self) -> bytes:
        return struct.pack(KVM_VCPU_INIT_FORMAT, self.target, *self.features)

    @classmethod
    def unpack(cls, raw: bytes) -> kvm_vcpu_init:
        target, *features = struct.unpack(KVM_VCPU_INIT_FORMAT, raw)
        return cls(target, tuple(features))


@dataclass(frozen=True)
class kvm_one_reg:  # noqa: N801 - kernel struct name
    id: int
    addr: int

    def pack(self) -> bytes:
        return struct.pack(KVM_ONE_REG_FORMAT, self.id, self.addr)

    @classmethod
    def unpack(cls, raw: bytes) -> kvm_one_reg:
        return cls(*struct.unpack(KVM_ONE_REG_FORMAT, raw))
