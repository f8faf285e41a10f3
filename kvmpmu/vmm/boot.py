"""The default boot sequence, in kvmtool's order, for a spec without a `vmm:` scenario.

Create the vGIC and the vCPUs; KVM_ARM_VCPU_INIT with KVM_ARM_VCPU_PMU_V3 on each; initialise
the vGIC; then per vCPU, HAS then SET of: the IRQ, SET_PMU, SET_NR_COUNTERS (or the PMCR_EL0
write), the filters (vCPU 0 only), INIT. The vCPUs then run, one after the other.
"""

from __future__ import annotations

import struct

from kvmpmu.arch import sysregs as sr
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.uapi import kvm as uapi
from kvmpmu.uapi.one_reg import ONE_REG_IDS
from kvmpmu.vmm.vmm import Vmm

_N_FIELD = sr.PMCR_N_MASK << sr.PMCR_N_SHIFT


def boot(vmm: Vmm, spec: FilterSpec, pmu_types: dict[str, int],
         tolerate_filter_errors: bool = False) -> None:
    """`pmu_types`: the host PMUs' perf types by name (for `vm.pmu`). With
    `tolerate_filter_errors` a failed FILTER call is recorded and the set-up goes on."""
    in_kernel = spec.vm.irqchip == "kernel"
    if in_kernel:
        vmm.create_vgic()
    for index in range(spec.vm.vcpus):
        vmm.create_vcpu(index)
    for index in range(spec.vm.vcpus):
        vmm.vcpu_init(index)
    if in_kernel:
        vmm.init_vgic()
    for index in range(spec.vm.vcpus):
        _setup_pmu(vmm, spec, index, pmu_types, tolerate_filter_errors)


def _setup_pmu(vmm: Vmm, spec: FilterSpec, index: int, pmu_types: dict[str, int],
               tolerate: bool) -> None:
    vm = spec.vm
    profile = vmm.backend.profile
    if vm.pmu_version is not None:
        _lower_pmuver(vmm, index, vm.pmu_version, spec)
    if vm.irqchip == "kernel":
        vmm.set_attr(index, uapi.KVM_ARM_VCPU_PMU_V3_IRQ, {"irq": vm.pmu_irq},
                     struct.pack("<i", vm.pmu_irq), has_first=True)
    if vm.pmu is not None:
        pmu_type = pmu_types[vm.pmu]
        vmm.set_attr(index, uapi.KVM_ARM_VCPU_PMU_V3_SET_PMU, {"pmu_id": pmu_type, "pmu": vm.pmu},
                     struct.pack("<i", pmu_type), vm.pmu_loc, has_first=True)
    n = vm.counters
    if n is not None and profile.has_set_nr_counters:
        vmm.set_attr(index, uapi.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, {"nr_counters": n},
                     struct.pack("<I", n), vm.counters_loc, has_first=True)
    elif n is not None:
        _limit_n_via_pmcr(vmm, index, n, spec)
    if index == 0:
        for i, call in enumerate(spec.filters):
            vmm.filter(index, call, has_first=i == 0, expecting=tolerate or call.expecting,
                       expected=call.expect_errno)
    vmm.set_attr(index, uapi.KVM_ARM_VCPU_PMU_V3_INIT, {}, has_first=True)


def _lower_pmuver(vmm: Vmm, index: int, pmuver: int, spec: FilterSpec) -> None:
    reg = ONE_REG_IDS["ID_AA64DFR0_EL1"]
    current = vmm.get_one_reg(index, reg, "ID_AA64DFR0_EL1").value or 0
    value = current & ~sr.DFR0_PMUVER_MASK | pmuver << sr.DFR0_PMUVER_SHIFT
    vmm.set_one_reg(index, reg, "ID_AA64DFR0_EL1", value, {"value": value, "PMUVer": pmuver},
                    spec.vm.pmu_version_loc)


def _limit_n_via_pmcr(vmm: Vmm, index: int, n: int, spec: FilterSpec) -> None:
    reg = ONE_REG_IDS["PMCR_EL0"]
    pmcr = vmm.get_one_reg(index, reg, "PMCR_EL0").value or 0
    value = (pmcr & ~_N_FIELD) | n << sr.PMCR_N_SHIFT
    vmm.set_one_reg(index, reg, "PMCR_EL0", value, {"value": value, "N": n},
                    spec.vm.counters_loc)
