"""The real host as the emulated kernel models hosts: PMUs from sysfs (name, perf type, CPUs,
events), and what only KVM tells (PMUVer, counters, PMCR_EL0's IMP and IDCODE, AArch32 EL0,
ID_AA64DFR0_EL1) from a throwaway VM's first vCPU, as the guest would see them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.cpus import cpu_by_midr
from kvmpmu.devkvm import sysfs
from kvmpmu.devkvm.fds import KvmFd
from kvmpmu.errors import KvmError
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.uapi import kvm as uapi
from kvmpmu.uapi.one_reg import ONE_REG_IDS

_DFR0 = ONE_REG_IDS["ID_AA64DFR0_EL1"]
_PFR0 = uapi.sysreg_one_reg_id(3, 0, 0, 4, 0)  # ID_AA64PFR0_EL1: EL3 in bits [15:12]
_PMCR = ONE_REG_IDS["PMCR_EL0"]


@dataclass(frozen=True)
class VcpuView:
    """ID_AA64DFR0_EL1, PMCR_EL0 and ID_AA64PFR0_EL1 of a vCPU with the PMU feature, right
    after its INIT."""

    dfr0: int
    pmcr: int
    pfr0: int


def probe_vcpu(kvm: KvmFd) -> VcpuView | None:
    """None when the host gives no vPMU (KVM_ARM_VCPU_INIT with the feature fails)."""
    vm = kvm.create_vm()
    vcpu = vm.create_vcpu(0)
    try:
        target = vm.preferred_target()
        vcpu.vcpu_init(uapi.kvm_vcpu_init(target.target, (1 << uapi.KVM_ARM_VCPU_PMU_V3,) +
                                          (0,) * 6))
        return VcpuView(vcpu.one_reg(uapi.KVM_GET_ONE_REG, _DFR0),
                        vcpu.one_reg(uapi.KVM_GET_ONE_REG, _PMCR),
                        vcpu.one_reg(uapi.KVM_GET_ONE_REG, _PFR0))
    except KvmError:
        return None
    finally:
        vcpu.run_area.close()
        os.close(vcpu.fd)
        os.close(vm.fd)


def model_name(midr: int | None) -> str:
    if midr is None:
        return "?"
    model = cpu_by_midr(midr)
    return model.name if model else f"MIDR 0x{midr:08x}"


def probe_host(kvm: KvmFd) -> Host:
    """The host's PMUs; PMUVer as KVM gives it to guests (capped by the kernel: the rules
    that use it give the same answers), the same counters and PMCR for every PMU. SW_INCR,
    which every PMUv3 implements, perf does not list."""
    view = probe_vcpu(kvm)
    pmuver = view.dfr0 >> sr.DFR0_PMUVER_SHIFT & 0xF if view else sr.PMUVER_NI
    pmcr = view.pmcr if view else 0
    pmus = tuple(
        HostPmu(p.name, p.pmu_type, pmuver, pmcr >> sr.PMCR_N_SHIFT & sr.PMCR_N_MASK,
                frozenset(p.events.values()) | {ev.SW_INCR}, p.cpus,
                pmcr >> sr.PMCR_IMP_SHIFT & 0xFF, pmcr >> sr.PMCR_IDCODE_SHIFT & 0xFF,
                model_name(sysfs.midr(min(p.cpus))))
        for p in sysfs.read_pmus() if p.cpus)
    cpus = frozenset().union(*(p.cpus for p in pmus)) if pmus else frozenset({0})
    return Host(pmus, aarch32_el0=not pmcr & sr.PMCR_LC, cpus=cpus,
                id_aa64dfr0=view.dfr0 if view else 0,
                el3=bool(view and view.pfr0 >> 12 & 0xF))

