"""Plain result records: the contract between the VMM layer and rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kvmpmu.errors import KvmpmuError, SourceLoc
from kvmpmu.vmm import mailbox


@dataclass(frozen=True)
class Mmio:
    addr: int
    length: int
    data: int


@dataclass(frozen=True)
class VcpuExit:
    """`struct kvm_run` after KVM_RUN: the exit reason by its kernel name without KVM_EXIT_
    (MMIO, INTR, FAIL_ENTRY, SYSTEM_EVENT, ...), and what goes with it."""

    reason: str
    mmio: Mmio | None = None
    device_irq_level: int | None = None  # a userspace irqchip's lines (KVM_ARM_DEV_PMU = 4)
    fail_reason: int | None = None  # FAIL_ENTRY: hardware_entry_failure_reason
    cpu: int | None = None  # FAIL_ENTRY: the physical CPU
    errno: int | None = None  # INTR comes with EINTR

    def mailbox_slot(self) -> int | None:
        """The mailbox offset of an MMIO exit to the guest's mailbox page, else None."""
        if self.reason != "MMIO" or self.mmio is None:
            return None
        offset = self.mmio.addr - mailbox.BASE
        return offset if 0 <= offset < mailbox.SIZE else None



@dataclass
class CallRecord:
    """One ioctl the VMM made, and what it returned."""

    vcpu: int | None
    ioctl: str
    attr: str | None
    args: dict[str, Any]
    errno: str | None = None
    exit: VcpuExit | None = None  # KVM_RUN: why the vCPU came back
    loc: SourceLoc | None = None
    expected_errno: str | None = None
    names: dict[str, str | None] = field(default_factory=dict)  # event names for the args
    value: int | None = None  # what a read (GET_DEVICE_ATTR, GET_ONE_REG) returned
    expecting: bool = False  # an expect_errno was given: `expected_errno` is the expectation


@dataclass(frozen=True)
class HostPmuInfo:
    """The host PMU behind the guest's view: its perf name and type, and its CPU model."""

    name: str
    pmu_type: int
    cpu: str
    pmuver: int
    counters: int


@dataclass
class CounterResult:
    counter: int
    event: int
    name: str | None
    enabled: bool
    allowed: bool | None  # None: not observable (the kvm backend)
    implemented: bool | None
    value: int
    overflow: bool


@dataclass
class VcpuResult:
    vcpu: int
    pmceid0: int
    pmceid1: int
    pmcr: int
    counters: list[CounterResult]
    reads: list[list[Any]]  # [register, value or None (UNDEF), count of consecutive reads]
    undefined: list[list[Any]] = field(default_factory=list)  # [register, read|write, count]
    irq_level: bool = False
    ran: bool = False
    reports: list[int] = field(default_factory=list)  # values a CPU-emulated guest reported
    console: list[str] = field(default_factory=list)  # and the lines it printed
    guest: dict[str, int | bool] | None = None  # its instructions, exceptions, interrupts
    state: dict[str, int | None] | None = None  # a script's PMU state at its end (vmm/state.py)


@dataclass
class ExpectResult:
    expect: dict[str, Any]
    passed: bool
    actual: Any = None
    loc: SourceLoc | None = None


@dataclass
class RunResult:
    kernel: str
    host_pmceid0: int
    host_pmceid1: int
    ioctls: list[CallRecord]
    vcpus: list[VcpuResult]
    expectations: list[ExpectResult]
    error: KvmpmuError | None = None  # KvmCallError: a call stopped the VMM; GuestError
    host_pmu: HostPmuInfo | None = None
    backend: str = "emulated"  # the machine it ran on: "emulated" or "kvm"
    release: str | None = None  # on kvm, the kernel's `uname -r`
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(e.passed for e in self.expectations)


HiddenBy = Literal["filter", "kvm"]  # why the guest's PMCEID lacks an implemented event


@dataclass
class PmceidEvent:
    event: int
    name: str | None
    implemented: bool
    visible: bool
    hidden_by: HiddenBy | None


@dataclass
class PmceidView:
    kernel: str
    host: tuple[int, int]
    guest: tuple[int, int]
    events: list[PmceidEvent]
    ioctls: list[CallRecord]
    error: KvmpmuError | None = None  # the KvmCallError that stopped the VMM's set-up
    host_pmu: HostPmuInfo | None = None
    warnings: list[str] = field(default_factory=list)
