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

# struct kvm_create_device { __u32 type; __u32 fd; __u32 flags; }
KVM_CREATE_DEVICE_FORMAT = "<III"
SIZEOF_KVM_CREATE_DEVICE = struct.calcsize(KVM_CREATE_DEVICE_FORMAT)

KVM_GET_API_VERSION = _IO(KVMIO, 0x00)
KVM_API_VERSION = 12
KVM_CREATE_VM = _IO(KVMIO, 0x01)
KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04)
KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03)
KVM_CREATE_VCPU = _IO(KVMIO, 0x41)
KVM_RUN = _IO(KVMIO, 0x80)
KVM_GET_ONE_REG = _IOW(KVMIO, 0xAB, SIZEOF_KVM_ONE_REG)
KVM_SET_ONE_REG = _IOW(KVMIO, 0xAC, SIZEOF_KVM_ONE_REG)
KVM_ARM_VCPU_INIT = _IOW(KVMIO, 0xAE, SIZEOF_KVM_VCPU_INIT)
KVM_ARM_PREFERRED_TARGET = _IOR(KVMIO, 0xAF, SIZEOF_KVM_VCPU_INIT)
KVM_CREATE_DEVICE = _IOWR(KVMIO, 0xE0, SIZEOF_KVM_CREATE_DEVICE)
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
    KVM_CREATE_DEVICE: "KVM_CREATE_DEVICE",
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

# The in-kernel GICv3 (KVM_CREATE_DEVICE type, attribute groups of its device fd)
KVM_DEV_TYPE_ARM_VGIC_V3 = 7
KVM_DEV_ARM_VGIC_GRP_ADDR = 0
KVM_VGIC_V3_ADDR_TYPE_DIST = 2
KVM_VGIC_V3_ADDR_TYPE_REDIST = 3
KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3
KVM_DEV_ARM_VGIC_GRP_CTRL = 4
KVM_DEV_ARM_VGIC_CTRL_INIT = 0

# kvm_run exit reasons (include/uapi/linux/kvm.h), by the names the call log prints
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_DEBUG = 4
KVM_EXIT_MMIO = 6
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24
KVM_EXIT_ARM_NISV = 28
EXIT_REASON_NAMES = {
    KVM_EXIT_UNKNOWN: "UNKNOWN", KVM_EXIT_HYPERCALL: "HYPERCALL", KVM_EXIT_DEBUG: "DEBUG",
    KVM_EXIT_MMIO: "MMIO", KVM_EXIT_SHUTDOWN: "SHUTDOWN", KVM_EXIT_FAIL_ENTRY: "FAIL_ENTRY",
    KVM_EXIT_INTR: "INTR", KVM_EXIT_INTERNAL_ERROR: "INTERNAL_ERROR",
    KVM_EXIT_SYSTEM_EVENT: "SYSTEM_EVENT", KVM_EXIT_ARM_NISV: "ARM_NISV",
}
KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED = 1 << 0
# struct kvm_run offsets (LP64): exit_reason, the exit union, s.regs.device_irq_level
KVM_RUN_EXIT_REASON = 8
KVM_RUN_EXIT_UNION = 32  # mmio: u64 phys_addr, u8 data[8], u32 len, u8 is_write
KVM_RUN_DEVICE_IRQ_LEVEL = 304
# kvm_run->s.regs.device_irq_level bit for the PMU line with a userspace irqchip
KVM_ARM_DEV_PMU = 1 << 2

# KVM_{GET,SET}_ONE_REG ids: KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE or _SYSREG
KVM_REG_ARM64_CORE_BASE = 0x6030000000100000
KVM_REG_ARM64_SYSREG_BASE = 0x6030000000130000


def core_reg_id(offset: int) -> int:
    """The ONE_REG id of a `struct kvm_regs` field at byte `offset` (KVM_REG_ARM_CORE_REG)."""
    return KVM_REG_ARM64_CORE_BASE | offset // 4


# struct kvm_regs { struct user_pt_regs { u64 regs[31], sp, pc, pstate; } regs;
#                   u64 sp_el1; u64 elr_el1; u64 spsr[5]; ... }
CORE_REG_OFFSETS = {
    **{f"X{n}": 8 * n for n in range(31)},
    "SP": 248, "PC": 256, "PSTATE": 264, "SP_EL1": 272, "ELR_EL1": 280, "SPSR_EL1": 288,
}
CORE_REG_IDS = {name: core_reg_id(off) for name, off in CORE_REG_OFFSETS.items()}


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
class kvm_create_device:  # noqa: N801 - kernel struct name
    type: int
    fd: int = 0
    flags: int = 0

    def pack(self) -> bytes:
        return struct.pack(KVM_CREATE_DEVICE_FORMAT, self.type, self.fd, self.flags)

    @classmethod
    def unpack(cls, raw: bytes) -> kvm_create_device:
        return cls(*struct.unpack(KVM_CREATE_DEVICE_FORMAT, raw))


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
