"""The in-kernel GICv3 (`KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)`): only what the PMU's
interrupt depends on: that it exists, its addresses, and whether it is initialised."""

from __future__ import annotations

import errno

from kvmpmu.errors import KvmError
from kvmpmu.uapi import kvm as uapi

VGIC_NR_IRQS_LEGACY = 256  # the vGIC's size when userspace does not set one
VGIC_NR_PRIVATE_IRQS = 32
VGIC_MAX_SPI = 1019
_ADDR_ALIGN = 0x10000  # the distributor and redistributors are 64 KiB aligned


def is_ppi(irq: int) -> bool:
    return 16 <= irq < VGIC_NR_PRIVATE_IRQS


def is_spi(irq: int) -> bool:
    return VGIC_NR_PRIVATE_IRQS <= irq <= VGIC_MAX_SPI


class Vgic:
    """The vGIC device fd's state."""

    def __init__(self) -> None:
        self.addresses: dict[int, int] = {}  # KVM_VGIC_V3_ADDR_TYPE_* -> base
        self.initialized = False
        self.nr_irqs = VGIC_NR_IRQS_LEGACY

    def set_address(self, addr_type: int, base: int) -> None:
        """KVM_SET_DEVICE_ATTR(KVM_DEV_ARM_VGIC_GRP_ADDR)."""
        if addr_type not in (uapi.KVM_VGIC_V3_ADDR_TYPE_DIST, uapi.KVM_VGIC_V3_ADDR_TYPE_REDIST):
            raise KvmError(errno.ENODEV, f"address type {addr_type} is not a GICv3 one")
        if base % _ADDR_ALIGN:
            raise KvmError(errno.EINVAL, f"0x{base:x} is not 64 KiB aligned")
        if addr_type in self.addresses:
            raise KvmError(errno.EEXIST, "address already set")
        self.addresses[addr_type] = base

    def init(self) -> None:
        """KVM_SET_DEVICE_ATTR(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)."""
        self.initialized = True

    def valid_spi(self, irq: int) -> bool:
        return VGIC_NR_PRIVATE_IRQS <= irq < self.nr_irqs

    def map_resources(self) -> None:
        """What the first KVM_RUN needs of a GICv3: its addresses, and userspace's INIT."""
        if len(self.addresses) < 2:
            raise KvmError(errno.ENXIO, "vGIC distributor or redistributor address not set")
        if not self.initialized:
            raise KvmError(errno.EBUSY, "vGIC not initialised (KVM_DEV_ARM_VGIC_CTRL_INIT)")
