"""`struct kvm_run` after KVM_RUN, read from the vCPU's mmap (offsets in uapi/kvm.py)."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from kvmpmu.uapi import kvm as uapi

_MMIO = struct.Struct("<Q8sIB")  # phys_addr, data[8], len, is_write
_FAIL_ENTRY = struct.Struct("<QI")  # hardware_entry_failure_reason, cpu


@dataclass(frozen=True)
class RunState:
    exit_reason: int
    mmio_addr: int = 0
    mmio_data: int = 0
    mmio_len: int = 0
    mmio_is_write: bool = False
    fail_reason: int = 0
    fail_cpu: int = 0
    device_irq_level: int = 0

    @property
    def reason(self) -> str:
        return uapi.EXIT_REASON_NAMES.get(self.exit_reason, str(self.exit_reason))


Area = bytes | bytearray | memoryview | mmap.mmap


def read_run(area: Area) -> RunState:
    """The exit reason and what goes with it."""
    reason = struct.unpack_from("<I", area, uapi.KVM_RUN_EXIT_REASON)[0]
    level = struct.unpack_from("<Q", area, uapi.KVM_RUN_DEVICE_IRQ_LEVEL)[0]
    if reason == uapi.KVM_EXIT_MMIO:
        addr, data, length, is_write = _MMIO.unpack_from(area, uapi.KVM_RUN_EXIT_UNION)
        value = int.from_bytes(data[:length], "little")
        return RunState(reason, addr, value, length, bool(is_write), device_irq_level=level)
    if reason == uapi.KVM_EXIT_FAIL_ENTRY:
        fail, cpu = _FAIL_ENTRY.unpack_from(area, uapi.KVM_RUN_EXIT_UNION)
        return RunState(reason, fail_reason=fail, fail_cpu=cpu, device_irq_level=level)
    return RunState(reason, device_irq_level=level)


def complete_mmio_read(area: bytearray | mmap.mmap, value: int, length: int) -> None:
    """The data an MMIO load returns, for the next KVM_RUN to complete it."""
    offset = uapi.KVM_RUN_EXIT_UNION + 8
    area[offset:offset + length] = value.to_bytes(8, "little")[:length]
