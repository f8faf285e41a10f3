"""The guest's mailbox page: how a guest program talks to the VMM, on every engine and backend.

A store to the page is an MMIO exit on real KVM (no memslot backs it) and a memory hook on
the CPU-emulated guest; the VMM handles each slot the same way on both.
"""

from __future__ import annotations

BASE = 0x09000000  # one page, as the kernel selftests' ucall page
SIZE = 0x1000

REPORT = 0x00  # 64-bit value: appended to the vCPU's reports
END = 0x08  # the guest is done: every later KVM_RUN exits here again
EXIT = 0x10  # exit to the VMM: the next KVM_RUN of this vCPU continues after the store
CONSOLE = 0x18  # address of a NUL-terminated string: one console line
# Slots used by scripted workloads compiled into guest programs (their own ABI):
READ = 0x20  # the value of the script's MRS
UNDEF = 0x28  # ELR_EL1 of an access the program's vector table found UNDEFINED
VMM_CALL = 0x30  # index of a `vmm:` step the VMM is to make now
FAULT = 0x38  # ESR_EL1 of an exception the program cannot handle
STATE = 0x40  # end of the buffer of the PMU state a compiled script read at its end (state.py)

# What a VMM handles inside one `run` (it re-enters the guest at once) and what ends it.
HANDLED_IN_RUN = frozenset((REPORT, CONSOLE, READ, UNDEF, VMM_CALL, STATE))
