"""The emulated guest machine: where its RAM is. The mailbox page is in kvmpmu/vmm/mailbox.py."""

RAM_BASE, RAM_SIZE = 0x40000000, 0x4000000  # 64 MiB, as a small kvmtool guest
RAM_END = RAM_BASE + RAM_SIZE


def in_ram(addr: int, size: int) -> bool:
    return RAM_BASE <= addr and addr + size <= RAM_END
