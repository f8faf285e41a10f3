"""The emulated guest machine's RAM (kvmpmu/vmm/memmap.py: the same map on every backend)."""

from kvmpmu.vmm.memmap import RAM_BASE, RAM_SIZE

RAM_END = RAM_BASE + RAM_SIZE


def in_ram(addr: int, size: int) -> bool:
    return RAM_BASE <= addr and addr + size <= RAM_END
