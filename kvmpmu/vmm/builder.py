"""The VMM's PMU set-up, in kvmtool's order, through the emulated ioctl interface.

Per vCPU: KVM_ARM_VCPU_INIT with the PMU feature; HAS then SET of each PMU attribute:
IRQ, [SET_NR_COUNTERS or ONE_REG(PMCR_EL0)], the filters (through vCPU 0), INIT.
Every call is recorded; an unexpected errno stops the VMM, as kvmtool's die_perror() would.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import FailEntryError, KvmCallError, KvmError, SourceLoc, errno_name
from kvmpmu.kvm.host import Host
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.kvm.system import Kvm, RunExit, Vcpu
from kvmpmu.spec.filterspec import FilterCall, FilterSpec
from kvmpmu.spec.hostspec import format_cpus
from kvmpmu.uapi import kvm as uapi
from kvmpmu.vmm.results import CallRecord

ONE_REG_IDS = {name: uapi.sysreg_one_reg_id(r.op0, r.op1, r.crn, r.crm, r.op2)
               for name, r in sr.SYSREGS.items()}


class VmmStopped(Exception):
    """An emulated call failed and the spec did not expect it."""

    def __init__(self, record: CallRecord, error: KvmCallError) -> None:
        super().__init__(error.message)
        self.record = record
        self.error = error


class Vmm:
    def __init__(self, spec: FilterSpec, profile: KernelProfile, host: Host,
                 catalog: Catalog | None = None) -> None:
        self.spec = spec
        self.catalog = catalog
        self.tolerate_filter_errors = False  # record a failed FILTER call and go on (analysis)
        self.kvm = Kvm(host, profile)
        self.vm = self.kvm.create_vm()
        self.log: list[CallRecord] = []
        mem = self.kvm.memory
        self._payload = mem.alloc(16)
        self._struct = mem.alloc(uapi.SIZEOF_KVM_DEVICE_ATTR)

    # --- recording ------------------------------------------------------------------------

    def call(self, vcpu: int | None, ioctl: str, attr: str | None, args: dict[str, Any],
             fn: Callable[[], object], loc: SourceLoc | None = None,
             expect: str | None = None, expecting: bool = False,
             names: dict[str, str | None] | None = None) -> CallRecord:
        """Make one call and record it; raise VmmStopped on an errno nobody expected."""
        record = CallRecord(vcpu, ioctl, attr, args, loc=loc,
                            expected_errno=expect if expecting else None, names=names or {})
        self.log.append(record)
        try:
            result = fn()
        except KvmError as err:
            record.errno = errno_name(err.errno)
            if expecting:
                return record  # judged against `expect` by the caller
            raise VmmStopped(record, KvmCallError(ioctl, attr, vcpu, err.errno, err.reason,
                                                  loc=loc)) from None
        if isinstance(result, RunExit) and result.exit_reason != "KVM_EXIT_GUEST":
            record.exit = result.exit_reason
            raise VmmStopped(record, self._fail_entry(vcpu or 0, result))
        return record

    def _fail_entry(self, vcpu: int, run: RunExit) -> FailEntryError:
        """KVM_EXIT_FAIL_ENTRY, located at what placed the vCPU thread: vm.cpus, else vm.pmu."""
        vm = self.spec.vm
        loc, path = (vm.cpus_loc, "vm.cpus") if vm.cpus_loc else (vm.pmu_loc, "vm.pmu")
        pmu = self.vm.arm_pmu
        hint = (f"vCPU threads must run on CPUs of the VM's PMU {pmu.name} "
                f"({format_cpus(pmu.cpus)})" if pmu else None)
        reason = uapi.FAIL_ENTRY_REASONS.get(run.hardware_entry_failure_reason,
                                             hex(run.hardware_entry_failure_reason))
        return FailEntryError(vcpu, reason, run.cpu, loc=loc, path=path if loc else None,
                              hint=hint)

    def _device_attr(self, vcpu: Vcpu, request: int, attr: int, payload: bytes = b"") -> None:
        mem = self.kvm.memory
        if payload:
            mem.write(self._payload, payload)
        raw = uapi.kvm_device_attr(0, uapi.KVM_ARM_VCPU_PMU_V3_CTRL, attr, self._payload)
        mem.write(self._struct, raw.pack())
        vcpu.ioctl(request, self._struct)

    def set_attr(self, vcpu: Vcpu, attr: int, args: dict[str, Any], payload: bytes = b"",
                 loc: SourceLoc | None = None, has_first: bool = True,
                 expect: str | None = None, expecting: bool = False,
                 names: dict[str, str | None] | None = None) -> CallRecord:
        name = uapi.PMU_ATTR_NAMES[attr]
        if has_first:
            self.call(vcpu.index, "KVM_HAS_DEVICE_ATTR", name, {},
                      lambda: self._device_attr(vcpu, uapi.KVM_HAS_DEVICE_ATTR, attr), loc)
        return self.call(vcpu.index, "KVM_SET_DEVICE_ATTR", name, args,
                         lambda: self._device_attr(vcpu, uapi.KVM_SET_DEVICE_ATTR, attr, payload),
                         loc, expect, expecting, names)

    def filter(self, vcpu: Vcpu, call: FilterCall, has_first: bool = False,
               expect: str | None = None, expecting: bool = False) -> CallRecord:
        flt = uapi.kvm_pmu_event_filter(call.base_event, call.nevents, call.action)
        args = {"base_event": call.base_event, "nevents": call.nevents, "action": call.action}
        return self.set_attr(vcpu, uapi.KVM_ARM_VCPU_PMU_V3_FILTER, args, flt.pack(), call.loc,
                             has_first, expect, expecting,
                             self.catalog.range_names(call.base_event, call.nevents)
                             if self.catalog else None)

    def _one_reg(self, vcpu: Vcpu, request: int, name: str, value: int | None = None) -> int:
        mem = self.kvm.memory
        if value is not None:
            mem.write(self._payload, value.to_bytes(8, "little"))
        mem.write(self._struct, uapi.kvm_one_reg(ONE_REG_IDS[name], self._payload).pack())
        vcpu.ioctl(request, self._struct)
        return int.from_bytes(mem.read(self._payload, 8), "little")

    # --- the boot sequence ------------------------------------------------------------------

    def boot(self) -> None:
        spec, vm = self.spec, self.vm
        if spec.vm.irqchip == "kernel":
            vm.create_irqchip()
        vcpus = [vm.create_vcpu(i) for i in range(spec.vm.vcpus)]
        placement = sorted(self.vcpu_cpus())
        for vcpu in vcpus:
            vcpu.cpu = placement[vcpu.index % len(placement)]
        init = uapi.kvm_vcpu_init(0, (1 << uapi.KVM_ARM_VCPU_PMU_V3,) + (0,) * 6)
        for vcpu in vcpus:
            self.call(vcpu.index, "KVM_ARM_VCPU_INIT", None,
                      {"features": ["KVM_ARM_VCPU_PMU_V3"]},
                      functools.partial(vcpu.vcpu_init, init))
        if spec.vm.irqchip == "kernel":
            vm.init_irqchip()
        for vcpu in vcpus:
            self._setup_pmu(vcpu)

    def vcpu_cpus(self) -> frozenset[int]:
        """Where the vCPU threads run: vm.cpus, else the chosen PMU's CPUs, else the VMM's CPU."""
        spec = self.spec
        if spec.vm.cpus is not None:
            return spec.vm.cpus
        if spec.vm.pmu is not None:
            pmu = spec.host.pmu_named(spec.vm.pmu)
            if pmu is not None:
                return pmu.cpus
        return frozenset({self.vm.vmm_cpu})

    def _setup_pmu(self, vcpu: Vcpu) -> None:
        spec = self.spec
        profile = self.kvm.profile
        if spec.vm.pmu_version is not None:
            value = spec.vm.pmu_version << 8
            self.call(vcpu.index, "KVM_SET_ONE_REG", "ID_AA64DFR0_EL1",
                      {"PMUVer": spec.vm.pmu_version},
                      lambda: self._one_reg(vcpu, uapi.KVM_SET_ONE_REG, "ID_AA64DFR0_EL1", value))
        if spec.vm.irqchip == "kernel":
            irq = spec.vm.pmu_irq
            self.set_attr(vcpu, uapi.KVM_ARM_VCPU_PMU_V3_IRQ, {"irq": irq}, struct.pack("<i", irq))
        if spec.vm.pmu is not None:
            pmu = next(p for p in self.kvm.host.pmus if p.name == spec.vm.pmu)
            self.set_attr(vcpu, uapi.KVM_ARM_VCPU_PMU_V3_SET_PMU,
                          {"pmu_id": pmu.pmu_type, "pmu": pmu.name},
                          struct.pack("<i", pmu.pmu_type), spec.vm.pmu_loc)
        n = spec.vm.counters
        if n is not None and profile.has_set_nr_counters:
            self.set_attr(vcpu, uapi.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, {"nr_counters": n},
                          struct.pack("<I", n), spec.vm.counters_loc)
        elif n is not None:
            self._limit_n_via_pmcr(vcpu, n)
        if vcpu.index == 0:
            for i, call in enumerate(spec.filters):
                self.filter(vcpu, call, has_first=i == 0,
                            expecting=self.tolerate_filter_errors)
        self.set_attr(vcpu, uapi.KVM_ARM_VCPU_PMU_V3_INIT, {})

    def _limit_n_via_pmcr(self, vcpu: Vcpu, n: int) -> None:
        pmcr = [0]

        def get() -> None:
            pmcr[0] = self._one_reg(vcpu, uapi.KVM_GET_ONE_REG, "PMCR_EL0")

        self.call(vcpu.index, "KVM_GET_ONE_REG", "PMCR_EL0", {}, get)
        field = sr.PMCR_N_MASK << sr.PMCR_N_SHIFT
        value = (pmcr[0] & ~field) | n << sr.PMCR_N_SHIFT
        self.call(vcpu.index, "KVM_SET_ONE_REG", "PMCR_EL0", {"value": value, "N": n},
                  lambda: self._one_reg(vcpu, uapi.KVM_SET_ONE_REG, "PMCR_EL0", value),
                  self.spec.vm.counters_loc)

    def run(self, vcpu: Vcpu) -> None:
        self.call(vcpu.index, "KVM_RUN", None, {}, vcpu.run)
