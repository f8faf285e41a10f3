"""Kernel rules written from kvm-pmu-semantics.md that no other test pins on their own (each was
found by breaking the rule in the model and seeing the suite still pass)."""

import errno as E
import struct

import pytest

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.host import generic_host
from kvmpmu.kvm.profiles import PROFILES, profile_for_release
from kvmpmu.kvm.system import Kvm
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.uapi import kvm as u
from kvmpmu.uapi.one_reg import ONE_REG_IDS
from kvmpmu.vmm.memmap import GICD_BASE, GICR_BASE
from tests.clihelpers import run_cli
from tests.kvmhelpers import (
    ALL_PROFILES,
    PMU_FEATURE,
    errno_of,
    expect_errno,
    ioctl_attr,
    make_vm,
    one_pmu_host,
    pmu_init,
    ready,
    reg,
    set_attr,
    set_filter,
    set_irq,
    two_pmu_host,
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


# --- kernel profiles ---------------------------------------------------------------------------

@pytest.mark.parametrize("release,profile", [
    ("5.10.223", "5.10"), ("5.15.0-1", "5.15"), ("6.1.0-56-arm64", "6.1"), ("6.5.13", "6.1"),
    ("6.6-rc1", "6.6"), ("6.12.117", "6.12"), ("6.15.2", "6.12"), ("6.16", "latest"),
    ("7.3.4", "latest"),
])
def test_a_kernel_release_takes_the_nearest_profile_at_or_below_it(release, profile):
    assert profile_for_release(release) is PROFILES[profile]


@pytest.mark.parametrize("release,message", [
    ("5.4.0-150", "kernel 5.4.0-150 is older than every profile (5.10 is the oldest)"),
    ("linux", "not a kernel release: 'linux'"),
    ("6", "not a kernel release: '6'"),
])
def test_a_release_without_a_profile_is_refused(release, message):
    with pytest.raises(ValueError) as failure:
        profile_for_release(release)
    assert str(failure.value) == message


def test_a_profile_is_at_least_its_own_release():
    p = PROFILES["6.1"]
    assert p.at_least(6, 1) and p.at_least(5, 15) and not p.at_least(6, 2)


@pytest.mark.parametrize("profile,chain_unfilterable", [("6.1", False), ("6.6", True)])
def test_sw_incr_and_from_6_2_chain_are_beyond_the_filter(profile, chain_unfilterable):
    p = PROFILES[profile]
    assert p.unfilterable(ev.SW_INCR)
    assert p.unfilterable(ev.CHAIN) == chain_unfilterable
    assert not p.unfilterable(ev.CPU_CYCLES)


# --- /dev/kvm and the VM ---------------------------------------------------------------------

def test_check_extension_of_the_pmu_and_vcpu_attributes():
    kvm = Kvm(generic_host(), PROFILES["latest"])
    assert kvm.check_extension(u.KVM_CAP_ARM_PMU_V3) == 1
    assert kvm.check_extension(u.KVM_CAP_VCPU_ATTRIBUTES) == 1
    assert kvm.check_extension(0) == 0


def test_the_vm_tells_its_kvm_profile_and_vmm_cpu():
    kvm = Kvm(generic_host(), PROFILES["6.1"])
    vm = kvm.create_vm(3)
    assert (vm.kvm, vm.profile, vm.vmm_cpu) == (kvm, PROFILES["6.1"], 3)


def test_the_largest_vcpu_id_is_511():
    vm = Kvm(generic_host(), PROFILES["latest"]).create_vm()
    assert vm.create_vcpu(511).index == 511


def test_vcpu_ioctls_by_request_number_return_0():
    vm = Kvm(generic_host(), PROFILES["latest"]).create_vm()
    vcpu = vm.create_vcpu(0)
    mem = vcpu.memory
    init = mem.put(u.kvm_vcpu_init(0, PMU_FEATURE).pack())
    assert vcpu.ioctl(u.KVM_ARM_VCPU_INIT, init) == 0 and vcpu.has_pmu
    pmu_init(vcpu)  # no irqchip: no IRQ needed
    assert vcpu.ioctl(u.KVM_RUN, 0) == 0 and vcpu.has_run


@pytest.mark.parametrize("profile", ["5.10", "latest"])
def test_a_vcpu_without_the_pmu_feature_needs_no_host_pmu(profile):
    host = one_pmu_host({ev.CPU_CYCLES}, pmuver=sr.PMUVER_IMP_DEF)
    vcpu = Kvm(host, PROFILES[profile]).create_vm().create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, (0,) * 7))
    assert vcpu.initialized and not vcpu.has_pmu


def test_before_6_7_the_default_pmu_is_chosen_at_the_first_pmu_attribute():
    # §2.2 step 3: 5.18-6.6 pick the PMU of the VMM's CPU in the attribute prologue (6.7+ in
    # KVM_ARM_VCPU_INIT); CPU 6 has no PMU
    vm = Kvm(one_pmu_host({ev.CPU_CYCLES}), PROFILES["6.1"]).create_vm(6)
    vcpu = vm.create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))
    assert vcpu.has_pmu and vm.arm_pmu is None
    expect_errno(E.ENODEV, set_irq, vcpu)


def test_5_10_refuses_an_imp_def_pmu_on_the_vmms_cpu():
    # §2.2 step 3 (5.10-5.17): the probe of the VMM CPU's PMU yields IMP_DEF: ENODEV, though
    # another PMU of the host makes KVM_ARM_VCPU_INIT succeed
    host = two_pmu_host(big_ver=sr.PMUVER_IMP_DEF, little_ver=sr.PMUVER_V3P1)
    _, (vcpu,) = make_vm("5.10", host=host, irqchip=False)
    expect_errno(E.ENODEV, set_filter, vcpu, ev.CPU_CYCLES, 1, 0)


def test_core_registers_reset_at_vcpu_init_and_keep_what_is_set():
    _, (vcpu,) = make_vm("latest")
    x0, pstate = ONE_REG_IDS["X0"], ONE_REG_IDS["PSTATE"]
    assert _one_reg(vcpu, u.KVM_GET_ONE_REG, x0) == 0
    assert _one_reg(vcpu, u.KVM_GET_ONE_REG, pstate) == 0x3C5  # EL1h, D, A, I and F masked
    _one_reg(vcpu, u.KVM_SET_ONE_REG, x0, 0x1234)
    assert _one_reg(vcpu, u.KVM_GET_ONE_REG, x0) == 0x1234


# --- the vGIC's interrupt numbers (§2.7) ---------------------------------------------------------

def test_32_is_the_first_spi():
    _, (v0, v1) = make_vm("latest", vcpus=2)
    set_irq(v0, 32)
    expect_errno(E.EINVAL, set_irq, v1, 32)  # SPIs may not be shared
    set_irq(v1, 31 + 2)
    pmu_init(v0)


@pytest.mark.parametrize("irq,ok", [(255, True), (256, False)])
def test_pmu_init_needs_an_spi_the_vgic_has(irq, ok):
    _, (vcpu,) = make_vm("latest")  # the vGIC's default size: 256 interrupts
    set_irq(vcpu, irq)
    assert errno_of(pmu_init, vcpu) == (None if ok else E.EINVAL)


def test_a_negative_irq_is_refused_as_the_int_it_is():
    _, (vcpu,) = make_vm("latest")
    with pytest.raises(KvmError) as failure:
        set_irq(vcpu, -1)
    assert str(failure.value) == "EINVAL: IRQ -1 is neither a PPI nor an SPI"


def test_set_nr_counters_reads_an_unsigned_int():
    _, (vcpu,) = make_vm("latest")
    expect_errno(E.EINVAL, set_attr, vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS,
                 struct.pack("<I", 0xFFFFFFFF))


# --- userspace memory -------------------------------------------------------------------------

def test_get_irq_writes_exactly_an_int():
    _, (vcpu,) = make_vm("latest")
    set_irq(vcpu, 23)
    mem = vcpu.memory
    buf = mem.put(bytes(range(12)))
    ioctl_attr(vcpu, u.KVM_GET_DEVICE_ATTR, u.KVM_ARM_VCPU_PMU_V3_IRQ, addr=buf + 4)
    assert mem.read(buf, 12) == bytes(range(4)) + struct.pack("<i", 23) + bytes(range(8, 12))


def test_a_filter_only_partly_in_mapped_memory_is_efault():
    _, (vcpu,) = make_vm("latest")
    addr = vcpu.memory.put(bytes(4))  # the struct is 8 bytes
    expect_errno(E.EFAULT, ioctl_attr, vcpu, u.KVM_SET_DEVICE_ATTR,
                 u.KVM_ARM_VCPU_PMU_V3_FILTER, addr=addr)
    assert vcpu.arch.filter_bitmap() is None


# --- ID_AA64DFR0_EL1 (§5.4) --------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["6.1", "latest"])
def test_a_vcpu_without_the_pmu_feature_sees_pmuver_0(profile):
    _, (with_pmu,) = make_vm(profile)
    _, (vcpu,) = make_vm(profile, pmu=False)
    dfr0 = _one_reg(vcpu, u.KVM_GET_ONE_REG, ONE_REG_IDS["ID_AA64DFR0_EL1"])
    assert dfr0 == _one_reg(with_pmu, u.KVM_GET_ONE_REG, ONE_REG_IDS["ID_AA64DFR0_EL1"]) & ~0xF00
    vcpu.run()
    assert reg(vcpu, "ID_AA64DFR0_EL1") == dfr0  # the guest reads it, PMU or not


@pytest.mark.parametrize("pmuver,debugver,reads", [
    (sr.PMUVER_IMP_DEF, 9, (0, 9)),  # newest: an old VMM's IMP_DEF becomes NI
    (sr.PMUVER_V3P5, 8, (sr.PMUVER_V3P5, 8)),  # DebugVer lowered, PMUVer at its limit
    (sr.PMUVER_V3P5, 6, (sr.PMUVER_V3P5, 6)),  # Armv8.0 debug: the lowest
])
def test_latest_takes_a_lower_pmuver_or_debugver(pmuver, debugver, reads):
    _, (vcpu,) = make_vm("latest")  # the generic host: PMUVer 6, DebugVer 9
    dfr0_id = ONE_REG_IDS["ID_AA64DFR0_EL1"]
    value = _one_reg(vcpu, u.KVM_GET_ONE_REG, dfr0_id) & ~0xF0F | pmuver << 8 | debugver
    _one_reg(vcpu, u.KVM_SET_ONE_REG, dfr0_id, value)
    got = _one_reg(vcpu, u.KVM_GET_ONE_REG, dfr0_id)
    assert (got >> 8 & 0xF, got & 0xF) == reads


def test_one_reg_pmcr_may_raise_n_back_to_the_pmus_maximum():
    vm, (vcpu,) = make_vm("6.12")
    pmcr_id = ONE_REG_IDS["PMCR_EL0"]
    _one_reg(vcpu, u.KVM_SET_ONE_REG, pmcr_id, 3 << 11)
    _one_reg(vcpu, u.KVM_SET_ONE_REG, pmcr_id, 6 << 11)  # not larger than the PMU's 6
    assert vm.nr_counters == 6


# --- where the guest's vPMU counts, and what it reads ---------------------------------------

def test_the_default_pmu_counts_only_on_its_own_cpus():
    # latest, big.LITTLE, no SET_PMU: the VM has big's PMU (the VMM runs on CPU 0); a vCPU
    # thread on a little CPU is not refused entry, but big's perf events cannot count there
    vm, (vcpu,) = make_vm("latest", host=two_pmu_host())
    ready(vcpu)
    vcpu.run()
    assert vm.counting_pmu(vcpu) is vm.arm_pmu
    reg(vcpu, "PMEVTYPER0_EL0", ev.INST_RETIRED)
    reg(vcpu, "PMCNTENSET_EL0", 1)
    reg(vcpu, "PMCR_EL0", sr.PMCR_E | sr.PMCR_P)
    vcpu.cpu = 5
    assert vcpu.run().exit_reason == "KVM_EXIT_GUEST"
    assert vm.counting_pmu(vcpu) is None
    reg(vcpu, "PMEVTYPER0_EL0", ev.INST_RETIRED)  # a perf event created on the little CPU
    vcpu.vpmu.count(1, {ev.INST_RETIRED: 7})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0


def test_a_counter_written_after_its_vcpu_moved_is_recreated_where_it_runs():
    # as above, the write of a counter value recreating the perf event (§3.1): written on
    # CPU 0 it counts on big's PMU, written again on the little CPU 5 it counts nothing
    _, (vcpu,) = make_vm("latest", host=two_pmu_host())
    ready(vcpu)
    vcpu.run()
    reg(vcpu, "PMEVTYPER0_EL0", ev.INST_RETIRED)
    reg(vcpu, "PMCNTENSET_EL0", 1)
    reg(vcpu, "PMCR_EL0", sr.PMCR_E | sr.PMCR_P)
    reg(vcpu, "PMEVCNTR0_EL0", 0)
    vcpu.vpmu.count(1, {ev.INST_RETIRED: 7})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 7
    vcpu.cpu = 5
    reg(vcpu, "PMEVCNTR0_EL0", 0)
    vcpu.vpmu.count(1, {ev.INST_RETIRED: 7})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0


def test_before_6_15_pmceid_comes_from_the_cpu_the_vcpu_runs_on():
    vm, (vcpu,) = make_vm("6.12", host=two_pmu_host())
    assert vm.pmceid_source(vcpu).name == "big"
    vcpu.cpu = 5
    assert vm.pmceid_source(vcpu).name == "little"


def test_a_cpu_without_a_pmu_has_no_counters_and_no_events():
    # before 6.7 the vCPU's reset takes PMCR_EL0's N, IDCODE and IMP from the VMM's CPU
    # (§5.1), and before 6.15 the guest's PMCEID is that of the CPU it runs on: CPU 6 has no
    # PMU, so bits [31:11] are all 0
    vm = Kvm(one_pmu_host({ev.CPU_CYCLES}), PROFILES["6.1"]).create_vm(6)
    vcpu = vm.create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))
    assert _one_reg(vcpu, u.KVM_GET_ONE_REG, ONE_REG_IDS["PMCR_EL0"]) >> 11 == 0
    _, (v612,) = make_vm("6.12", host=one_pmu_host({ev.CPU_CYCLES}))
    v612.cpu = 6
    assert v612.guest_pmceid(0) == 1 << ev.CHAIN and v612.guest_pmceid(1) == 0  # CHAIN forced


# --- the PMU interrupt line without an in-kernel irqchip (§5.3, §6) ---------------------------

def overflowed(irqchip: bool):
    vm, (vcpu,) = make_vm("latest", irqchip=irqchip)
    if irqchip:
        ready(vcpu)
    else:
        pmu_init(vcpu)
    assert vcpu.run().exit_reason == "KVM_EXIT_GUEST"
    reg(vcpu, "PMOVSCLR_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMOVSSET_EL0", 1)
    reg(vcpu, "PMINTENSET_EL1", 1)
    reg(vcpu, "PMCR_EL0", sr.PMCR_E)
    return vcpu


def test_kvm_run_exits_to_userspace_only_when_the_line_changes():
    vcpu = overflowed(irqchip=False)
    exit_ = vcpu.run()
    assert (exit_.exit_reason, exit_.device_irq_level) == ("KVM_EXIT_INTR", u.KVM_ARM_DEV_PMU)
    assert vcpu.run().exit_reason == "KVM_EXIT_GUEST"  # still high: nothing to tell
    reg(vcpu, "PMOVSCLR_EL0", 1)
    exit_ = vcpu.run()
    assert (exit_.exit_reason, exit_.device_irq_level) == ("KVM_EXIT_INTR", 0)


def test_with_an_in_kernel_irqchip_the_line_never_exits_to_userspace():
    vcpu = overflowed(irqchip=True)
    assert vcpu.vpmu.irq_level
    assert vcpu.run().exit_reason == "KVM_EXIT_GUEST"


# --- the generic host ---------------------------------------------------------------------------

def test_the_generic_host():
    host = generic_host()
    (pmu,) = host.pmus
    assert (pmu.name, pmu.pmu_type, pmu.pmuver, pmu.counters) == ("armv8_pmuv3_0", 8, 6, 6)
    assert pmu.cpus == host.cpus == frozenset(range(8))
    assert pmu.implements(0x4000) and not generic_host(sr.PMUVER_IMP).pmus[0].implements(0x4000)
