"""Kernel rules written from kvm-pmu-semantics.md that no other test pins on their own (each was
found by breaking the rule in the model and seeing the suite still pass)."""

import errno as E
import struct

import pytest

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.host import generic_host
from kvmpmu.kvm.profiles import PROFILES
from kvmpmu.kvm.system import Kvm
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.uapi import kvm as u
from kvmpmu.uapi.one_reg import ONE_REG_IDS
from kvmpmu.vmm.memmap import GICD_BASE, GICR_BASE
from tests.clihelpers import run_cli
from tests.kvmhelpers import (
    ALL_PROFILES,
    PMU_FEATURE,
    expect_errno,
    make_vm,
    one_pmu_host,
    pmu_init,
    ready,
    reg,
)


def _one_reg(vcpu, request, reg_id, value=0):
    mem = vcpu.memory
    addr = mem.put(struct.pack("<Q", value))
    vcpu.ioctl(request, mem.put(u.kvm_one_reg(reg_id, addr).pack()))
    return struct.unpack("<Q", mem.read(addr, 8))[0]


# --- KVM_ARM_VCPU_INIT ---------------------------------------------------------------------

@ALL_PROFILES
def test_a_second_vcpu_init_with_other_features_is_einval(profile):
    _, (vcpu,) = make_vm(profile)
    expect_errno(E.EINVAL, vcpu.vcpu_init, u.kvm_vcpu_init(0, (0,) * 7))
    vcpu.vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))  # the same features again: accepted
    assert vcpu.has_pmu


# --- the first KVM_RUN (§2.7) ------------------------------------------------------------

@ALL_PROFILES
def test_first_run_with_an_in_kernel_irqchip_and_no_pmu_irq_is_einval(profile):
    """PMU INIT with no irqchip needs no IRQ; a vGIC created afterwards makes the first run
    require a valid one: EINVAL, and the VM has not run."""
    vm, (vcpu,) = make_vm(profile, irqchip=False)
    pmu_init(vcpu)
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    vm.init_irqchip()
    expect_errno(E.EINVAL, vcpu.run)
    assert not vm.ran_once


@ALL_PROFILES
def test_first_run_without_pmu_init_is_einval_from_5_11(profile):
    vm, (vcpu,) = make_vm(profile)
    if PROFILES[profile].version >= (5, 11):
        expect_errno(E.EINVAL, vcpu.run)
        assert not vm.ran_once
    else:  # 5.10 (measured): the guest runs with a PMU that reads 0
        vcpu.run()
        assert vm.ran_once


def test_first_run_needs_the_vgic_addresses_and_its_init():
    kvm = Kvm(generic_host(), PROFILES["latest"])
    vm = kvm.create_vm()
    vm.create_vgic()  # no addresses set
    vcpu = vm.create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))
    expect_errno(E.ENXIO, vcpu.run)
    vm2, (vcpu2,) = make_vm("latest", irqchip=False)
    vm2.create_irqchip(GICD_BASE, GICR_BASE)  # addresses, but no KVM_DEV_ARM_VGIC_CTRL_INIT
    expect_errno(E.EBUSY, vcpu2.run)
    assert not vm.ran_once and not vm2.ran_once


# --- KVM_{GET,SET}_ONE_REG and unknown requests -------------------------------------------

def test_one_reg_of_a_register_kvm_does_not_expose_is_enoent():
    _, (vcpu,) = make_vm("latest")
    ready(vcpu)
    for name in ("PMCEID0_EL0", "PMSWINC_EL0"):  # §5: no backing storage
        expect_errno(E.ENOENT, _one_reg, vcpu, u.KVM_GET_ONE_REG, ONE_REG_IDS[name])
    expect_errno(E.ENOENT, _one_reg, vcpu, u.KVM_SET_ONE_REG, 0x6030000000139999, 1)
    assert _one_reg(vcpu, u.KVM_GET_ONE_REG, ONE_REG_IDS["PMCR_EL0"]) >> 11 & 0x1F == 6


def test_one_reg_before_vcpu_init_is_enoexec():
    vm = Kvm(generic_host(), PROFILES["latest"]).create_vm()
    vcpu = vm.create_vcpu(0)
    expect_errno(E.ENOEXEC, _one_reg, vcpu, u.KVM_GET_ONE_REG, ONE_REG_IDS["PMCR_EL0"])


def test_an_unknown_vcpu_ioctl_fails_and_changes_nothing():
    _, (vcpu,) = make_vm("latest")
    with pytest.raises(KvmError):
        vcpu.ioctl(0xAEFF, 0)
    assert not vcpu.has_run


# --- counters at and above PMCR_EL0.N (§5.2) ---------------------------------------------

@pytest.mark.parametrize("profile", ["6.1", "latest"])
def test_the_counter_numbered_n_is_undefined_and_n_minus_1_is_not(profile):
    _, (vcpu,) = make_vm(profile)
    ready(vcpu)
    vcpu.run()
    n = 6  # the generic host's counters
    assert reg(vcpu, f"PMEVCNTR{n - 1}_EL0") is not None
    for name in (f"PMEVCNTR{n}_EL0", f"PMEVTYPER{n}_EL0"):
        with pytest.raises(Undefined):
            reg(vcpu, name)
    reg(vcpu, "PMSELR_EL0", n)
    for name in ("PMXEVCNTR_EL0", "PMXEVTYPER_EL0"):
        with pytest.raises(Undefined):
            reg(vcpu, name)
    reg(vcpu, "PMSELR_EL0", sr.CYCLE_IDX)  # 31 selects the cycle counter's filter, never UNDEF
    assert reg(vcpu, "PMXEVTYPER_EL0") == reg(vcpu, "PMCCFILTR_EL0")


# --- PMCEID0_EL0's forced bits (§4.2, §7) ------------------------------------------------

@pytest.mark.parametrize("profile,forced", [("6.12", False), ("latest", True)])
def test_sw_incr_is_forced_into_pmceid0_from_6_15(profile, forced):
    """"Always support SW_INCR PMU event" (6.15): on a host whose PMU does not list SW_INCR,
    the guest sees bit 0 only from 6.15 (6.12 is the last profile without it)."""
    host = one_pmu_host({ev.CPU_CYCLES, ev.INST_RETIRED})
    vm, (vcpu,) = make_vm(profile, host=host)
    ready(vcpu)
    vcpu.run()
    pmceid0 = vm.guest_pmceid(vcpu, 0)
    assert bool(pmceid0 & 1 << ev.SW_INCR) == forced
    assert pmceid0 & 1 << ev.CPU_CYCLES and pmceid0 & 1 << ev.INST_RETIRED
    assert pmceid0 & 1 << ev.CHAIN  # forced from 6.2 on both


# --- expectations name vCPUs the VM has ------------------------------------------------------

def test_an_expectation_on_a_vcpu_the_vm_lacks_is_a_spec_error(tmp_path):
    workload = tmp_path / "w.yaml"
    workload.write_text("vcpus:\n  all:\n    - swinc: [0]\n"
                        "expect:\n  - {vcpu: 3, counter: 0, eq: 1}\n")
    result = run_cli("run", "--workload", str(workload))
    assert result.exit_code == 3, result.output
    assert "vCPU 3 does not exist (the VM has 1)" in result.output
    assert "w.yaml:5:5" in result.output


def test_a_step_list_for_a_vcpu_the_vm_lacks_is_a_spec_error(tmp_path):
    workload = tmp_path / "w.yaml"
    workload.write_text("vcpus:\n  2:\n    - swinc: [0]\n")
    result = run_cli("run", "--workload", str(workload))
    assert result.exit_code == 3, result.output
    assert "vCPU 2 does not exist (the VM has 1)" in result.output
