"""Plain result records: the contract between the VMM layer and rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvmpmu.errors import SourceLoc


@dataclass
class CallRecord:
    """One emulated ioctl the VMM made, and what it returned."""

    vcpu: int | None
    ioctl: str
    attr: str | None
    args: dict[str, Any]
    errno: str | None = None
    exit: str | None = None
    loc: SourceLoc | None = None
    expected_errno: str | None = None
    names: dict[str, str | None] = field(default_factory=dict)  # event names for the args


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
    allowed: bool
    implemented: bool
    value: int
    overflow: bool


@dataclass
class VcpuResult:
    vcpu: int
    pmceid0: int
    pmceid1: int
    pmcr: int
    counters: list[CounterResult]
    reads: list[tuple[str, int | None]]  # (register, value) or (register, None) for UNDEF
    undefined: list[tuple[str, str]] = field(default_factory=list)  # (register, read|write)
    irq_level: bool = False
    ran: bool = False
    reports: list[int] = field(default_factory=list)  # values a CPU-emulated guest reported
    console: list[str] = field(default_factory=list)  # and the lines it printed
    guest: dict[str, int | bool] | None = None  # its instructions, exceptions, interrupts


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
    error: str | None = None  # the failed call that stopped the VMM, rendered
    error_loc: SourceLoc | None = None
    host_pmu: HostPmuInfo | None = None
    error_kind: str = "kvm"  # or "guest": a CPU-emulated guest faulted or ran out of budget

    @property
    def ok(self) -> bool:
        return self.error is None and all(e.passed for e in self.expectations)


@dataclass
class PmceidEvent:
    event: int
    name: str | None
    implemented: bool
    visible: bool
    hidden_by: str | None  # "filter", "kvm" or None


@dataclass
class PmceidView:
    kernel: str
    host: tuple[int, int]
    guest: tuple[int, int]
    events: list[PmceidEvent]
    ioctls: list[CallRecord]
    error: str | None = None
    host_pmu: HostPmuInfo | None = None
