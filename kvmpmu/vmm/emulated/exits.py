"""What a run of the CPU-emulated guest returns, and what it keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kvmpmu.vmm.emulated.exceptions import ExceptionEntry

Reason = Literal["mmio", "irq", "end", "system_event", "fault"]
FINAL = frozenset(("end", "system_event", "fault"))


@dataclass(frozen=True)
class GuestExit:
    """Why run() returned: "mmio" (a store to the mailbox page other than a report or a console
    line: addr, size, data), "irq" (the vPMU's interrupt line changed level, with a userspace
    irqchip: data is the new level), "end" (a store to mailbox END), "system_event" (PSCI:
    data is KVM_SYSTEM_EVENT_SHUTDOWN or _RESET) or "fault" (the run's `fault` says why)."""

    reason: Reason
    addr: int = 0
    size: int = 0
    data: int = 0


@dataclass
class GuestRun:
    reports: list[int] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    undefined: list[tuple[str, str]] = field(default_factory=list)
    instructions: int = 0
    exceptions: int = 0
    interrupts: int = 0
    finished: bool = False  # the guest ended the run (mailbox END or PSCI)
    fault: str | None = None


@dataclass
class Stop:
    """Why a hook stopped the CPU, for the run loop."""

    reason: str  # "exception", "exit", "check" or "fault"
    pc: int = 0
    entry: ExceptionEntry | None = None
    exit: GuestExit | None = None
    message: str = ""
