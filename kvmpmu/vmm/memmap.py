"""The guest physical memory map of kvmpmu's VMs, whichever backend runs them."""

from __future__ import annotations

RAM_BASE, RAM_SIZE = 0x40000000, 0x4000000  # 64 MiB, as a small kvmtool guest
GICD_BASE = 0x08000000  # the vGIC's distributor and redistributors, where QEMU's virt has them
GICR_BASE = 0x080A0000
# The mailbox page (kvmpmu/vmm/mailbox.py) is at 0x09000000, outside RAM: stores there exit.
