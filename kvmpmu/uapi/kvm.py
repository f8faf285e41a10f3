"""Constants, ioctl encoding and byte-exact struct packing of the KVM arm64 PMU uAPI."""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

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


# The structs' sizes as include/uapi/linux/kvm.h and arch/arm64/include/uapi/asm/kvm.h give
# them (the struct definitions are at the end; tests pin every size and offset).
SIZEOF_KVM_DEVICE_ATTR = 24
SIZEOF_KVM_PMU_EVENT_FILTER = 8
SIZEOF_KVM_VCPU_INIT = 32
SIZEOF_KVM_ONE_REG = 16
SIZEOF_KVM_CREATE_DEVICE = 12
SIZEOF_KVM_USERSPACE_MEMORY_REGION = 32

KVM_GET_API_VERSION = _IO(KVMIO, 0x00)
KVM_API_VERSION = 12
KVM_CREATE_VM = _IO(KVMIO, 0x01)
KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04)
KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03)
KVM_CREATE_VCPU = _IO(KVMIO, 0x41)
KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, SIZEOF_KVM_USERSPACE_MEMORY_REGION)
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
FILTER_ACTION_NAMES = {KVM_PMU_EVENT_ALLOW: "KVM_PMU_EVENT_ALLOW",
                       KVM_PMU_EVENT_DENY: "KVM_PMU_EVENT_DENY"}

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
FAIL_ENTRY_REASONS = {KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED: "KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED"}
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


class KernelStruct:
    """A kernel struct: its fields in declaration order, packed as include/uapi/linux/kvm.h
    lays them out on LP64 little-endian (arm64; x86-64 alike). None of these has padding, so
    `struct` formats say the layout exactly (tests check every offset against the headers)."""

    __slots__: tuple[str, ...] = ()
    _layout: ClassVar[struct.Struct]
    _fields: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def __init_subclass__(cls) -> None:
        cls._fields = operator.attrgetter(*cls.__slots__)  # a FILTER call packs two structs

    def _values(self) -> tuple[Any, ...]:
        return type(self)._fields(self)

    def pack(self) -> bytes:
        return self._layout.pack(*self._values())

    @classmethod
    def unpack(cls: type[_S], raw: bytes) -> _S:
        return cls(*cls._layout.unpack(raw))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KernelStruct) and type(other) is type(self) and \
            self.pack() == other.pack()

    def __hash__(self) -> int:
        return hash(self.pack())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


_S = TypeVar("_S", bound=KernelStruct)


class kvm_device_attr(KernelStruct):
    __slots__ = ("flags", "group", "attr", "addr")
    _layout = struct.Struct("<IIQQ")

    def __init__(self, flags: int = 0, group: int = 0, attr: int = 0, addr: int = 0) -> None:
        self.flags, self.group, self.attr, self.addr = flags, group, attr, addr


class kvm_pmu_event_filter(KernelStruct):
    __slots__ = ("base_event", "nevents", "action", "pad")
    _layout = struct.Struct("<HHB3s")

    def __init__(self, base_event: int = 0, nevents: int = 0, action: int = 0,
                 pad: bytes = b"\0\0\0") -> None:
        self.base_event, self.nevents, self.action = base_event, nevents, action
        self.pad = bytes(pad)


class kvm_create_device(KernelStruct):
    __slots__ = ("type", "fd", "flags")
    _layout = struct.Struct("<III")

    def __init__(self, type: int = 0, fd: int = 0, flags: int = 0) -> None:
        self.type, self.fd, self.flags = type, fd, flags


class kvm_vcpu_init(KernelStruct):
    __slots__ = ("target", "features")
    _layout = struct.Struct("<I7I")

    def __init__(self, target: int = 0, features: tuple[int, ...] = (0,) * 7) -> None:
        self.target, self.features = target, tuple(features)

    def _values(self) -> tuple[Any, ...]:
        return (self.target, *self.features)

    @classmethod
    def unpack(cls, raw: bytes) -> kvm_vcpu_init:
        target, *features = cls._layout.unpack(raw)
        return cls(target, tuple(features))


class kvm_one_reg(KernelStruct):
    __slots__ = ("id", "addr")
    _layout = struct.Struct("<QQ")

    def __init__(self, id: int = 0, addr: int = 0) -> None:
        self.id, self.addr = id, addr


class kvm_userspace_memory_region(KernelStruct):
    __slots__ = ("slot", "flags", "guest_phys_addr", "memory_size", "userspace_addr")
    _layout = struct.Struct("<IIQQQ")

    def __init__(self, slot: int = 0, flags: int = 0, guest_phys_addr: int = 0,
                 memory_size: int = 0, userspace_addr: int = 0) -> None:
        self.slot, self.flags, self.guest_phys_addr = slot, flags, guest_phys_addr
        self.memory_size, self.userspace_addr = memory_size, userspace_addr
