"""The VMM: each KVM call it makes, recorded with the kernel's names and what came back.

The same code drives either backend. A call whose errno nobody expected stops the VMM, as
kvmtool's die_perror() would (VmmStopped); a call made with an expectation is recorded and the
caller judges it. KVM_RUN runs the vCPU until its guest exits to the VMM: the guest's requests
for `vmm:` steps are served on the way, inside the one KVM_RUN record.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import FailEntryError, KvmCallError, KvmError, SourceLoc, errno_name
from kvmpmu.records import Record
from kvmpmu.spec.filterspec import FilterCall, FilterSpec
from kvmpmu.spec.hostspec import format_cpus
from kvmpmu.uapi import kvm as uapi
from kvmpmu.vmm import mailbox
from kvmpmu.vmm.backend import Backend, GuestImage, ScriptImage
from kvmpmu.vmm.memmap import GICD_BASE, GICR_BASE
from kvmpmu.vmm.results import CallRecord, FilterRecord, VcpuExit

if TYPE_CHECKING:
    from kvmpmu.spec.workload import VmmCall

PMU_V3_FEATURE = 1 << uapi.KVM_ARM_VCPU_PMU_V3


class VmmStopped(Exception):
    """A call failed (or a vCPU could not enter the guest) and nothing expected it."""

    def __init__(self, record: CallRecord, error: KvmCallError) -> None:
        super().__init__(error.message)
        self.record = record
        self.error = error


class Placement(Record):
    """What in the spec placed the vCPU threads, for a KVM_EXIT_FAIL_ENTRY to point at."""

    __slots__ = ("loc", "path")

    def __init__(self, loc: SourceLoc | None = None, path: str | None = None) -> None:
        self.loc, self.path = loc, path


UNPLACED = Placement()


def placement(spec: FilterSpec) -> Placement:
    """`vm.cpus`, else `vm.pmu` (whose CPUs the threads then run on)."""
    vm = spec.vm
    if vm.cpus_loc is not None:
        return Placement(vm.cpus_loc, "vm.cpus")
    return Placement(vm.pmu_loc, "vm.pmu" if vm.pmu_loc else None)


def attr_name(attr: int) -> str:
    return uapi.PMU_ATTR_NAMES.get(attr, str(attr))


class Vmm:
    def __init__(self, backend: Backend, catalog: Catalog | None = None,
                 placed_by: Placement = UNPLACED) -> None:
        self.backend = backend
        self.catalog = catalog
        self.placed_by = placed_by
        self.log: list[CallRecord] = []
        self.vmm_steps: dict[int, tuple[VmmCall, ...]] = {}  # per vCPU, by mailbox index
        self.step_calls: list[tuple[int, VmmCall, CallRecord]] = []  # `vmm:` steps made

    # --- recording ---------------------------------------------------------------------------

    def call(self, record: CallRecord, fn: Callable[[], int | None]) -> CallRecord:
        """Make one call and record it (and a value it reads); raise VmmStopped on an errno
        nobody expected."""
        self.log.append(record)
        try:
            record.value = fn()
        except KvmError as err:
            record.errno = errno_name(err.errno)
            if not record.expecting:
                raise VmmStopped(record, KvmCallError(
                    record.ioctl, record.attr, record.vcpu, err.errno, err.reason,
                    loc=record.loc)) from None
        return record

    def _record(self, vcpu: int | None, ioctl: str, attr: str | None, args: dict[str, Any],
                loc: SourceLoc | None, expecting: bool, expected: str | None = None,
                names: dict[str, str | None] | None = None) -> CallRecord:
        return CallRecord(vcpu, ioctl, attr, args, loc=loc, expecting=expecting,
                          expected_errno=expected, names=names or {})

    # --- VM and vCPU set-up ------------------------------------------------------------------

    def create_vcpu(self, index: int, loc: SourceLoc | None = None, expecting: bool = False,
                    expected: str | None = None) -> CallRecord:
        record = self._record(index, "KVM_CREATE_VCPU", None, {"vcpu_id": index}, loc,
                              expecting, expected)
        return self.call(record, lambda: self.backend.create_vcpu(index))

    def vcpu_init(self, index: int, pmu: bool = True, loc: SourceLoc | None = None,
                  expecting: bool = False, expected: str | None = None) -> CallRecord:
        features = ["KVM_ARM_VCPU_PMU_V3"] if pmu else []
        record = self._record(index, "KVM_ARM_VCPU_INIT", None, {"features": features}, loc,
                              expecting, expected)
        return self.call(record, lambda: self.backend.vcpu_init(
            index, PMU_V3_FEATURE if pmu else 0))

    def create_vgic(self, loc: SourceLoc | None = None, expecting: bool = False,
                    expected: str | None = None) -> CallRecord:
        args = {"dist": f"0x{GICD_BASE:x}", "redist": f"0x{GICR_BASE:x}"}
        record = self._record(None, "KVM_CREATE_DEVICE", "VGIC_V3", args, loc, expecting,
                              expected)
        return self.call(record, lambda: self.backend.create_vgic(GICD_BASE, GICR_BASE))

    def init_vgic(self, loc: SourceLoc | None = None, expecting: bool = False,
                  expected: str | None = None) -> CallRecord:
        record = self._record(None, "KVM_SET_DEVICE_ATTR", "CTRL_INIT", {}, loc, expecting,
                              expected)
        return self.call(record, self.backend.init_vgic)

    # --- the PMU's device attributes ---------------------------------------------------------

    def has_attr(self, index: int, attr: int, loc: SourceLoc | None = None,
                 expecting: bool = False, expected: str | None = None) -> CallRecord:
        record = self._record(index, "KVM_HAS_DEVICE_ATTR", attr_name(attr), {}, loc,
                              expecting, expected)
        return self.call(record, lambda: self._attr(uapi.KVM_HAS_DEVICE_ATTR, index, attr))

    def get_attr(self, index: int, attr: int, loc: SourceLoc | None = None,
                 expecting: bool = False, expected: str | None = None) -> CallRecord:
        """KVM_GET_DEVICE_ATTR; the IRQ (the only readable one) comes back as `value`."""
        record = self._record(index, "KVM_GET_DEVICE_ATTR", attr_name(attr), {}, loc,
                              expecting, expected)

        def get() -> int:
            raw = self.backend.device_attr(uapi.KVM_GET_DEVICE_ATTR, index, attr, bytes(8))
            return int(struct.unpack_from("<i", raw)[0])

        return self.call(record, get)

    def set_attr(self, index: int, attr: int, args: dict[str, Any], payload: bytes = b"",
                 loc: SourceLoc | None = None, has_first: bool = False,
                 expecting: bool = False, expected: str | None = None,
                 names: dict[str, str | None] | None = None) -> CallRecord:
        if has_first:
            self.has_attr(index, attr, loc)
        record = self._record(index, "KVM_SET_DEVICE_ATTR", attr_name(attr), args, loc,
                              expecting, expected, names)
        return self.call(record, lambda: self._attr(uapi.KVM_SET_DEVICE_ATTR, index, attr,
                                                    payload))

    def _attr(self, request: int, index: int, attr: int, payload: bytes = b"") -> None:
        self.backend.device_attr(request, index, attr, payload)

    def filter(self, index: int, call: FilterCall, has_first: bool = False,
               loc: SourceLoc | None = None, expecting: bool = False,
               expected: str | None = None) -> CallRecord:
        attr = uapi.KVM_ARM_VCPU_PMU_V3_FILTER
        payload = uapi.kvm_pmu_event_filter(call.base_event, call.nevents, call.action,
                                            call.pad).pack()
        loc = loc or call.loc
        if has_first:
            self.has_attr(index, attr, loc)
        record = FilterRecord(index, attr_name(attr), call, self.catalog, loc, expecting,
                              expected)
        return self.call(record, lambda: self._attr(uapi.KVM_SET_DEVICE_ATTR, index, attr,
                                                    payload))

    # --- ONE_REG ------------------------------------------------------------------------------

    def get_one_reg(self, index: int, reg_id: int, name: str | None,
                    loc: SourceLoc | None = None, expecting: bool = False,
                    expected: str | None = None) -> CallRecord:
        record = self._record(index, "KVM_GET_ONE_REG", name or f"0x{reg_id:x}", {}, loc,
                              expecting, expected)
        return self.call(record, lambda: self.backend.one_reg(uapi.KVM_GET_ONE_REG, index,
                                                              reg_id))

    def set_one_reg(self, index: int, reg_id: int, name: str | None, value: int,
                    args: dict[str, Any] | None = None, loc: SourceLoc | None = None,
                    expecting: bool = False, expected: str | None = None) -> CallRecord:
        record = self._record(index, "KVM_SET_ONE_REG", name or f"0x{reg_id:x}",
                              args or {"value": value}, loc, expecting, expected)

        def put() -> None:
            self.backend.one_reg(uapi.KVM_SET_ONE_REG, index, reg_id, value)

        return self.call(record, put)

    # --- guests and KVM_RUN -------------------------------------------------------------------

    def load_guest(self, index: int, image: GuestImage) -> None:
        from kvmpmu.spec.workload import vmm_steps

        if isinstance(image, ScriptImage):
            self.vmm_steps[index] = vmm_steps(image.steps)
        self.backend.load_guest(index, image)

    def run(self, index: int, loc: SourceLoc | None = None, expecting: bool = False,
            expected: str | None = None) -> CallRecord:
        """One KVM_RUN: until the guest exits to the VMM (EXIT, END, INTR, FAIL_ENTRY, ...)."""
        record = self._record(index, "KVM_RUN", None, {}, loc, expecting, expected)
        return self.call(record, lambda: self._run_until_exit(index, record))

    def _run_until_exit(self, index: int, record: CallRecord) -> None:
        while True:
            exit_ = self.backend.run(index)
            if exit_.mailbox_slot() != mailbox.VMM_CALL:
                break
            assert exit_.mmio is not None
            self.serve_vmm_step(index, self.vmm_steps[index][exit_.mmio.data])
        record.exit = exit_
        if exit_.errno is not None:  # KVM_EXIT_INTR: the ioctl returned -1, errno EINTR
            record.errno = errno_name(exit_.errno)
        if exit_.reason == "FAIL_ENTRY" and not record.expecting:
            raise VmmStopped(record, self._fail_entry(index, exit_))

    def _fail_entry(self, index: int, exit_: VcpuExit) -> FailEntryError:
        """Located at what placed the vCPU thread: the spec's vm.cpus, else its vm.pmu."""
        code = exit_.fail_reason or 0
        reason = uapi.FAIL_ENTRY_REASONS.get(code, hex(code))
        hint = None
        pmu = self.backend.host_pmu()
        if code == uapi.KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED and pmu is not None:
            hint = (f"vCPU threads must run on CPUs of the VM's PMU {pmu.name} "
                    f"({format_cpus(pmu.cpus)})")
        return FailEntryError(index, reason, exit_.cpu, loc=self.placed_by.loc,
                              path=self.placed_by.path, hint=hint)

    def serve_vmm_step(self, index: int, step: VmmCall) -> None:
        """A workload's `vmm:` step: FILTER calls through the running vCPU's fd."""
        for call in step.calls:
            record = self.filter(index, call, loc=step.loc, expecting=step.expecting,
                                 expected=step.expect_errno)
            self.step_calls.append((index, step, record))

    def run_to_end(self, index: int) -> None:
        """KVM_RUN until the guest ends, as a VMM's vCPU thread does (one record per exit)."""
        while True:
            record = self.run(index)
            slot = record.exit.mailbox_slot() if record.exit else None
            if slot == mailbox.END or (record.exit is not None and record.exit.reason not in (
                    "MMIO", "INTR")):
                return
