"""Plain result records: the contract between the VMM layer and rendering."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from kvmpmu.errors import KvmpmuError, SourceLoc
from kvmpmu.records import Record
from kvmpmu.vmm import mailbox

if TYPE_CHECKING:
    from kvmpmu.arch.catalog import Catalog
    from kvmpmu.spec.filterspec import FilterCall


class Mmio(Record):
    __slots__ = ("addr", "length", "data")

    def __init__(self, addr: int, length: int, data: int) -> None:
        self.addr, self.length, self.data = addr, length, data


class VcpuExit(Record):
    """`struct kvm_run` after KVM_RUN: the exit reason by its kernel name without KVM_EXIT_
    (MMIO, INTR, FAIL_ENTRY, SYSTEM_EVENT, ...), and what goes with it."""

    __slots__ = ("reason", "mmio", "device_irq_level", "fail_reason", "cpu", "errno")

    def __init__(self, reason: str, mmio: Mmio | None = None,
                 device_irq_level: int | None = None, fail_reason: int | None = None,
                 cpu: int | None = None, errno: int | None = None) -> None:
        self.reason, self.mmio = reason, mmio
        self.device_irq_level = device_irq_level  # a userspace irqchip's (KVM_ARM_DEV_PMU = 4)
        self.fail_reason = fail_reason  # FAIL_ENTRY: hardware_entry_failure_reason
        self.cpu = cpu  # FAIL_ENTRY: the physical CPU
        self.errno = errno  # INTR comes with EINTR

    def mailbox_slot(self) -> int | None:
        """The mailbox offset of an MMIO exit to the guest's mailbox page, else None."""
        if self.reason != "MMIO" or self.mmio is None:
            return None
        offset = self.mmio.addr - mailbox.BASE
        return offset if 0 <= offset < mailbox.SIZE else None


class CallRecord(Record):
    """One ioctl the VMM made, and what it returned."""

    __slots__ = ("vcpu", "ioctl", "attr", "args", "errno", "exit", "loc", "expected_errno",
                 "names", "value", "expecting")

    def __init__(self, vcpu: int | None, ioctl: str, attr: str | None, args: dict[str, Any],
                 errno: str | None = None, exit: VcpuExit | None = None,
                 loc: SourceLoc | None = None, expected_errno: str | None = None,
                 names: dict[str, str | None] | None = None, value: int | None = None,
                 expecting: bool = False) -> None:
        self.vcpu, self.ioctl, self.attr, self.args, self.errno = vcpu, ioctl, attr, args, errno
        self.exit = exit  # KVM_RUN: why the vCPU came back
        self.loc, self.expected_errno = loc, expected_errno
        self.names = names if names is not None else {}  # event names for the args
        self.value = value  # what a read (GET_DEVICE_ATTR, GET_ONE_REG) returned
        self.expecting = expecting  # an expect_errno was given: `expected_errno` is it


class FilterRecord(CallRecord):
    """A KVM_ARM_VCPU_PMU_V3_FILTER call's record. Its args and event names are worked out
    from the call when read: a spec of 100,000 entries keeps no 200,000 dicts for them."""

    __slots__ = ("call", "catalog")

    def __init__(self, vcpu: int, attr: str, call: FilterCall, catalog: Catalog | None,
                 loc: SourceLoc | None, expecting: bool, expected: str | None) -> None:
        self.vcpu, self.ioctl, self.attr, self.call, self.catalog = \
            vcpu, "KVM_SET_DEVICE_ATTR", attr, call, catalog
        self.errno = self.exit = self.value = None
        self.loc, self.expected_errno, self.expecting = loc, expected, expecting

    @property
    def args(self) -> dict[str, Any]:  # type: ignore[override]  # read-only: from the call
        call = self.call
        args: dict[str, Any] = {"base_event": call.base_event, "nevents": call.nevents,
                                "action": call.action}
        if call.pad != b"\0\0\0":
            args["pad"] = list(call.pad)
        return args

    @property
    def names(self) -> dict[str, str | None]:  # type: ignore[override]
        if self.catalog is None:
            return {}
        return self.catalog.range_names(self.call.base_event, self.call.nevents)


class HostPmuInfo(Record):
    """The host PMU behind the guest's view: its perf name and type, and its CPU model."""

    __slots__ = ("name", "pmu_type", "cpu", "pmuver", "counters")

    def __init__(self, name: str, pmu_type: int, cpu: str, pmuver: int, counters: int) -> None:
        self.name, self.pmu_type, self.cpu, self.pmuver, self.counters = \
            name, pmu_type, cpu, pmuver, counters


class CounterResult(Record):
    __slots__ = ("counter", "event", "name", "enabled", "allowed", "implemented", "value",
                 "overflow")

    def __init__(self, counter: int, event: int, name: str | None, enabled: bool,
                 allowed: bool | None, implemented: bool | None, value: int,
                 overflow: bool) -> None:
        self.counter, self.event, self.name, self.enabled = counter, event, name, enabled
        self.allowed = allowed  # None: not observable (the kvm backend)
        self.implemented, self.value, self.overflow = implemented, value, overflow


class VcpuResult(Record):
    __slots__ = ("vcpu", "pmceid0", "pmceid1", "pmcr", "counters", "reads", "undefined",
                 "irq_level", "ran", "reports", "console", "guest", "state")

    def __init__(self, vcpu: int, pmceid0: int, pmceid1: int, pmcr: int,
                 counters: list[CounterResult], reads: list[list[Any]],
                 undefined: list[list[Any]] | None = None, irq_level: bool = False,
                 ran: bool = False, reports: list[int] | None = None,
                 console: list[str] | None = None, guest: dict[str, int | bool] | None = None,
                 state: dict[str, int | None] | None = None) -> None:
        self.vcpu, self.pmceid0, self.pmceid1, self.pmcr = vcpu, pmceid0, pmceid1, pmcr
        self.counters = counters
        self.reads = reads  # [register, value or None (UNDEF), count of consecutive reads]
        self.undefined = undefined if undefined is not None else []  # [reg, read|write, count]
        self.irq_level, self.ran = irq_level, ran
        self.reports = reports if reports is not None else []  # a CPU-emulated guest's reports
        self.console = console if console is not None else []  # and the lines it printed
        self.guest = guest  # its instructions, exceptions, interrupts
        self.state = state  # a script's PMU state at its end (vmm/state.py)


class ExpectResult(Record):
    __slots__ = ("expect", "passed", "actual", "loc")

    def __init__(self, expect: dict[str, Any], passed: bool, actual: Any = None,
                 loc: SourceLoc | None = None) -> None:
        self.expect, self.passed, self.actual, self.loc = expect, passed, actual, loc


class RunResult(Record):
    __slots__ = ("kernel", "host_pmceid0", "host_pmceid1", "ioctls", "vcpus", "expectations",
                 "error", "host_pmu", "backend", "release", "warnings")

    def __init__(self, kernel: str, host_pmceid0: int, host_pmceid1: int,
                 ioctls: list[CallRecord], vcpus: list[VcpuResult],
                 expectations: list[ExpectResult], error: KvmpmuError | None = None,
                 host_pmu: HostPmuInfo | None = None, backend: str = "emulated",
                 release: str | None = None, warnings: list[str] | None = None) -> None:
        self.kernel, self.host_pmceid0, self.host_pmceid1 = kernel, host_pmceid0, host_pmceid1
        self.ioctls, self.vcpus, self.expectations = ioctls, vcpus, expectations
        self.error = error  # KvmCallError: a call stopped the VMM; GuestError
        self.host_pmu = host_pmu
        self.backend = backend  # the machine it ran on: "emulated" or "kvm"
        self.release = release  # on kvm, the kernel's `uname -r`
        self.warnings = warnings if warnings is not None else []

    @property
    def ok(self) -> bool:
        return self.error is None and all(e.passed for e in self.expectations)


HiddenBy = Literal["filter", "kvm"]  # why the guest's PMCEID lacks an implemented event


class PmceidEvent(Record):
    __slots__ = ("event", "name", "implemented", "visible", "hidden_by")

    def __init__(self, event: int, name: str | None, implemented: bool, visible: bool,
                 hidden_by: HiddenBy | None) -> None:
        self.event, self.name, self.implemented, self.visible, self.hidden_by = \
            event, name, implemented, visible, hidden_by


class PmceidView(Record):
    __slots__ = ("kernel", "host", "guest", "events", "ioctls", "error", "host_pmu", "warnings")

    def __init__(self, kernel: str, host: tuple[int, int], guest: tuple[int, int],
                 events: list[PmceidEvent], ioctls: list[CallRecord],
                 error: KvmpmuError | None = None, host_pmu: HostPmuInfo | None = None,
                 warnings: list[str] | None = None) -> None:
        self.kernel, self.host, self.guest, self.events = kernel, host, guest, events
        self.ioctls = ioctls
        self.error = error  # the KvmCallError that stopped the VMM's set-up
        self.host_pmu = host_pmu
        self.warnings = warnings if warnings is not None else []
