"""Guest-visible vPMU behaviour: registers, UNDEF, counting, overflow, chaining, interrupts.

Expected values come from semantics §3 and §5.
"""

import struct

import pytest

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import Host, generic_host
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.uapi import kvm as u
from tests.kvmhelpers import (
    ALL_PROFILES,
    ALLOW,
    DENY,
    make_vm,
    one_pmu_host,
    ready,
    reg,
    set_attr,
    set_filter,
)

INST, CYCLES, BR = 0x08, 0x11, 0x21
P, U = sr.EVTYPE_P, sr.EVTYPE_U


def running(profile="latest", filters=(), host=None, vcpus=1):
    vm, cpus = make_vm(profile, host=host, vcpus=vcpus)
    for base, n, action in filters:
        set_filter(cpus[0], base, n, action)
    for vcpu in cpus:
        ready(vcpu)
        vcpu.run()
    return vm, cpus


def program(vcpu, counters, enable=True):
    """counters: {index: evtype}; resets everything, clears overflow, enables."""
    reg(vcpu, "PMCR_EL0", sr.PMCR_P | sr.PMCR_C)
    reg(vcpu, "PMOVSCLR_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMCNTENCLR_EL0", 0xFFFFFFFF)
    mask = 0
    for idx, evtype in counters.items():
        reg(vcpu, "PMCCFILTR_EL0" if idx == 31 else f"PMEVTYPER{idx}_EL0", evtype)
        mask |= 1 << idx
    reg(vcpu, "PMCNTENSET_EL0", mask)
    if enable:
        reg(vcpu, "PMCR_EL0", sr.PMCR_E)


@ALL_PROFILES
def test_allowed_event_counts_and_denied_one_does_not(profile):
    _, (vcpu,) = running(profile, [(INST, 1, ALLOW)])
    program(vcpu, {0: INST, 1: BR})
    vcpu.vpmu.count(1, {INST: 1000, BR: 10})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 1000
    assert reg(vcpu, "PMEVCNTR1_EL0") == 0
    assert reg(vcpu, "PMEVTYPER1_EL0") & 0xFFFF == BR  # the type register is not altered


@ALL_PROFILES
def test_denying_cpu_cycles_stops_the_cycle_counter_and_event_counters_on_0x11(profile):
    _, (vcpu,) = running(profile, [(CYCLES, 1, DENY)])
    program(vcpu, {0: CYCLES, 1: INST, 31: 0})
    vcpu.vpmu.count(1, {CYCLES: 5000, INST: 7})
    assert reg(vcpu, "PMCCNTR_EL0") == 0
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0
    assert reg(vcpu, "PMEVCNTR1_EL0") == 7


@ALL_PROFILES
def test_cycle_counter_counts_cpu_cycles_when_allowed(profile):
    _, (vcpu,) = running(profile, [(CYCLES, 1, ALLOW)])
    program(vcpu, {31: 0})
    vcpu.vpmu.count(1, {CYCLES: 5000, INST: 7})
    assert reg(vcpu, "PMCCNTR_EL0") == 5000


@ALL_PROFILES
def test_sw_incr_is_never_filtered(profile):
    _, (vcpu,) = running(profile, [(0, 1, DENY)])
    program(vcpu, {0: 0x00, 1: 0x00, 2: INST})
    reg(vcpu, "PMSWINC_EL0", 0b111)
    reg(vcpu, "PMSWINC_EL0", 0b001)
    assert [reg(vcpu, f"PMEVCNTR{i}_EL0") for i in range(3)] == [2, 1, 0]


@ALL_PROFILES
def test_sw_incr_needs_pmcr_e_and_pmcnten(profile):
    _, (vcpu,) = running(profile)
    program(vcpu, {0: 0x00}, enable=False)
    reg(vcpu, "PMSWINC_EL0", 1)
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0
    reg(vcpu, "PMCR_EL0", sr.PMCR_E)
    reg(vcpu, "PMCNTENCLR_EL0", 1)
    reg(vcpu, "PMSWINC_EL0", 1)
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0


@ALL_PROFILES
def test_counter_does_not_count_without_pmcr_e(profile):
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST}, enable=False)
    vcpu.vpmu.count(1, {INST: 5})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0


@ALL_PROFILES
def test_a_counter_is_enabled_only_with_pmcr_e_and_its_pmcntenset_bit(profile):
    """§5.1: PMCR_EL0.E is the global enable, together with each counter's PMCNTENSET bit."""
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST}, enable=False)
    assert [vcpu.vpmu.enabled(i) for i in (0, 1)] == [False, False]
    reg(vcpu, "PMCR_EL0", sr.PMCR_E)
    assert [vcpu.vpmu.enabled(i) for i in (0, 1)] == [True, False]


@ALL_PROFILES
def test_event_the_host_does_not_implement_never_counts(profile):
    from tests.kvmhelpers import one_pmu_host

    _, (vcpu,) = running(profile, host=one_pmu_host({INST, CYCLES}))
    program(vcpu, {0: INST, 1: BR})
    vcpu.vpmu.count(1, {INST: 3, BR: 4})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (3, 0)


@ALL_PROFILES
def test_exclusion_bits_u_and_p(profile):
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST | U, 1: INST | P, 2: INST})
    vcpu.vpmu.count(0, {INST: 10})
    vcpu.vpmu.count(1, {INST: 100})
    assert [reg(vcpu, f"PMEVCNTR{i}_EL0") for i in range(3)] == [100, 10, 110]


@pytest.mark.parametrize("profile,counts_el0", [("6.6", True), ("6.12", False), ("latest", False)])
def test_nsu_alone_excludes_el0_from_6_7(profile, counts_el0):
    """v6.7+: EL0 counts iff U == NSU (NSU kept: the VM advertises EL3); before, NSU is dropped."""
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST | sr.EVTYPE_NSU})
    vcpu.vpmu.count(0, {INST: 10})
    assert reg(vcpu, "PMEVCNTR0_EL0") == (10 if counts_el0 else 0)
    stored = reg(vcpu, "PMEVTYPER0_EL0")
    assert bool(stored & sr.EVTYPE_NSU) == (not counts_el0)


@pytest.mark.parametrize("profile", ["6.6", "latest"])
def test_nsh_is_stored_mt_is_not(profile):
    # From 6.7 NSH is kept when the VM advertises EL2, which it does wherever KVM runs
    # (measured: 6.12 and 7.3 reset PMEVTYPER<n> to 0xC800C0DE on QEMU's -cpu max).
    _, (vcpu,) = running(profile)
    reg(vcpu, "PMEVTYPER0_EL0", INST | sr.EVTYPE_NSH | sr.EVTYPE_MT)
    assert reg(vcpu, "PMEVTYPER0_EL0") == INST | sr.EVTYPE_NSH


@pytest.mark.parametrize("profile,stored", [("5.10", 0x4008), ("6.1", 0x4008), ("6.12", 0x008)])
def test_ten_bit_event_space_masks_the_programmed_event(profile, stored):
    # Before 6.7 the register keeps 16 event bits (measured on QEMU's cortex-a57: a write of
    # 0xffffffff reads back 0xc800ffff) and counting masks the event; from 6.7 it stores 10.
    _, (vcpu,) = running(profile, host=generic_host(sr.PMUVER_IMP))
    program(vcpu, {0: 0x4008})
    assert reg(vcpu, "PMEVTYPER0_EL0") & 0xFFFF == stored
    vcpu.vpmu.count(1, {INST: 9})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 9


@pytest.mark.parametrize("profile", ["5.10", "6.1", "6.6"])
def test_32_bit_event_counter_wraps_and_sets_overflow(profile):
    _, (vcpu,) = running(profile, host=generic_host(sr.PMUVER_V3P4))
    program(vcpu, {0: INST})
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFF0)
    vcpu.vpmu.count(1, {INST: 0x20})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0x10
    assert reg(vcpu, "PMOVSSET_EL0") == 1


@pytest.mark.parametrize("lp,value,overflow", [
    (0, 0x1_0000_0010, 1),   # 64-bit counter, overflow still reported at 2^32
    (1, 0x1_0000_0010, 0),   # PMCR.LP: overflow only at 2^64
])
def test_pmuv3p5_long_event_counters_from_6_2(lp, value, overflow):
    _, (vcpu,) = running("latest")
    program(vcpu, {0: INST})
    reg(vcpu, "PMCR_EL0", sr.PMCR_E | (sr.PMCR_LP if lp else 0))
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFF0)
    vcpu.vpmu.count(1, {INST: 0x20})
    assert reg(vcpu, "PMEVCNTR0_EL0") == value
    assert reg(vcpu, "PMOVSSET_EL0") == overflow


def test_64_bit_overflow_at_2_pow_64():
    _, (vcpu,) = running("latest")
    program(vcpu, {0: INST})
    reg(vcpu, "PMCR_EL0", sr.PMCR_E | sr.PMCR_LP)
    reg(vcpu, "PMEVCNTR0_EL0", 2**64 - 1)
    vcpu.vpmu.count(1, {INST: 2})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 1 and reg(vcpu, "PMOVSSET_EL0") == 1


@pytest.mark.parametrize("profile", ["6.6", "latest"])
def test_lp_reads_zero_when_guest_is_below_v3p5(profile):
    _, (vcpu,) = running(profile, host=generic_host(sr.PMUVER_V3P4))
    reg(vcpu, "PMCR_EL0", sr.PMCR_LP | sr.PMCR_E)
    assert not reg(vcpu, "PMCR_EL0") & sr.PMCR_LP


def test_chain_counter_counts_even_counter_overflows_from_6_2():
    _, (vcpu,) = running("latest")
    program(vcpu, {0: INST, 1: 0x1E})
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1 + 3 * 2**32})  # four wraps of the low 32 bits
    assert reg(vcpu, "PMEVCNTR1_EL0") == 4
    assert reg(vcpu, "PMOVSSET_EL0") == 0b01


def test_chain_filtering_has_no_effect_from_6_2():
    _, (vcpu,) = running("latest", [(0x1E, 1, DENY)])
    program(vcpu, {0: INST, 1: 0x1E})
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1})
    assert reg(vcpu, "PMEVCNTR1_EL0") == 1


def test_chain_above_a_denied_even_counter_stays_still():
    _, (vcpu,) = running("latest", [(INST, 1, DENY)])
    program(vcpu, {0: INST, 1: 0x1E})
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 10})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0xFFFFFFFF, 0)


@pytest.mark.parametrize("profile,even_bit", [("5.10", 0), ("6.1", 1)])
def test_chained_pair_is_one_64_bit_counter_before_6_2(profile, even_bit):
    # §6 (measured): the CHAIN counter reads 1 after the even counter's overflow; 6.1.x sets
    # the even counter's own PMOVSSET bit at that 32-bit overflow, 5.10.223 leaves it 0.
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST, 1: 0x1E})
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0, 1)
    assert reg(vcpu, "PMOVSSET_EL0") == even_bit
    reg(vcpu, "PMOVSCLR_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMEVCNTR1_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0, 0)
    assert reg(vcpu, "PMOVSSET_EL0") == 0b10 | even_bit  # the pair's 2^64 wrap: the odd bit


@pytest.mark.parametrize("profile,even_bit", [("5.10", 0), ("6.1", 1)])
def test_sw_incr_carries_into_a_chained_odd_counter_before_6_2(profile, even_bit):
    _, (vcpu,) = running(profile)
    program(vcpu, {0: 0x00, 1: 0x1E})
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMSWINC_EL0", 1)
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0, 1)
    assert reg(vcpu, "PMOVSSET_EL0") == even_bit  # §6: "SW_INCR -> CHAIN the same"


@pytest.mark.parametrize("profile,lc_overflow_at_32", [("6.1", True), ("latest", True)])
def test_cycle_counter_overflow_depends_on_lc(profile, lc_overflow_at_32):
    from kvmpmu.kvm.host import Host

    base = generic_host()
    host = Host(base.pmus, aarch32_el0=True, cpus=base.cpus)  # LC is not forced on
    _, (vcpu,) = running(profile, host=host)
    program(vcpu, {31: 0})
    reg(vcpu, "PMCCNTR_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {CYCLES: 1})
    assert reg(vcpu, "PMOVSSET_EL0") == 1 << 31
    # the cycle counter always reads 64 bits (§5.3; measured on 5.10: the 64-bit reset pattern)
    assert reg(vcpu, "PMCCNTR_EL0") == 0x1_0000_0000


def test_lc_forced_on_aarch64_only_host_so_cycle_counter_is_64_bit():
    _, (vcpu,) = running("latest")
    program(vcpu, {31: 0})
    reg(vcpu, "PMCCNTR_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {CYCLES: 1})
    assert reg(vcpu, "PMOVSSET_EL0") == 0 and reg(vcpu, "PMCCNTR_EL0") == 0x1_0000_0000


@pytest.mark.parametrize("profile,needs_cnten", [("6.12", True), ("latest", False)])
def test_overflow_interrupt_line(profile, needs_cnten):
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST})
    reg(vcpu, "PMINTENSET_EL1", 1)
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1})
    assert vcpu.vpmu.irq_level
    reg(vcpu, "PMCNTENCLR_EL0", 1)
    assert vcpu.vpmu.irq_level == (not needs_cnten)
    reg(vcpu, "PMCNTENSET_EL0", 1)
    reg(vcpu, "PMOVSCLR_EL0", 1)
    assert not vcpu.vpmu.irq_level


def test_denied_counter_never_overflows_or_interrupts():
    _, (vcpu,) = running("latest", [(INST, 1, DENY)])
    program(vcpu, {0: INST})
    reg(vcpu, "PMINTENSET_EL1", 1)
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 100})
    assert reg(vcpu, "PMOVSSET_EL0") == 0 and not vcpu.vpmu.irq_level
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0xFFFFFFFF  # the written value reads back


@pytest.mark.parametrize("profile,pmcr", [
    ("latest", 6 << 11 | sr.PMCR_LC),
    ("6.12", 6 << 11 | sr.PMCR_LC),
    # 0xdecafbad & 0xff = 0xad, minus E; guest reads mask P and C; LC forced
    ("6.6", 0x41 << 24 | 6 << 11 | (0xAC & ~0x6) | sr.PMCR_LC),
    ("5.10", 0x41 << 24 | 6 << 11 | (0xAC & ~0x6) | sr.PMCR_LC),
])
def test_pmcr_reset_value(profile, pmcr):
    _, (vcpu,) = running(profile)
    assert reg(vcpu, "PMCR_EL0") == pmcr


def test_pmcr_p_resets_event_counters_and_c_the_cycle_counter():
    _, (vcpu,) = running("latest")
    reg(vcpu, "PMEVCNTR0_EL0", 5)
    reg(vcpu, "PMCCNTR_EL0", 7)
    reg(vcpu, "PMCR_EL0", sr.PMCR_P)
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMCCNTR_EL0")) == (0, 7)
    reg(vcpu, "PMCR_EL0", sr.PMCR_C)
    assert reg(vcpu, "PMCCNTR_EL0") == 0
    assert not reg(vcpu, "PMCR_EL0") & (sr.PMCR_P | sr.PMCR_C)


def test_set_nr_counters_limits_pmcr_n_and_makes_higher_counters_undef():
    vm, (vcpu,) = make_vm("latest")
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 2))
    ready(vcpu)
    vcpu.run()
    assert reg(vcpu, "PMCR_EL0") >> 11 & 0x1F == 2
    reg(vcpu, "PMEVCNTR1_EL0")
    with pytest.raises(Undefined):
        reg(vcpu, "PMEVCNTR2_EL0")
    with pytest.raises(Undefined):
        reg(vcpu, "PMEVTYPER5_EL0", INST)
    reg(vcpu, "PMCNTENSET_EL0", 0xFFFFFFFF)
    assert reg(vcpu, "PMCNTENSET_EL0") == 0x80000003


PMCR_ID = u.sysreg_one_reg_id(3, 3, 9, 12, 0)  # PMCR_EL0


def _one_reg_pmcr(vcpu, n):
    mem = vcpu.memory
    addr = mem.put((n << 11).to_bytes(8, "little"))
    vcpu.ioctl(u.KVM_SET_ONE_REG, mem.put(u.kvm_one_reg(PMCR_ID, addr).pack()))


def test_one_reg_pmcr_lowers_n_and_ignores_larger_or_late_writes():
    vm, (vcpu,) = make_vm("6.12")
    _one_reg_pmcr(vcpu, 3)
    assert vm.nr_counters == 3
    _one_reg_pmcr(vcpu, 9)  # larger than the PMU: silently ignored, returns 0
    assert vm.nr_counters == 3
    ready(vcpu)
    vcpu.run()
    _one_reg_pmcr(vcpu, 1)  # after the run: ignored
    assert vm.nr_counters == 3


def test_pmselr_and_pmxev_registers():
    _, (vcpu,) = running("latest")
    reg(vcpu, "PMSELR_EL0", 0xFF)
    assert reg(vcpu, "PMSELR_EL0") == 0x1F
    reg(vcpu, "PMCCNTR_EL0", 42)
    assert reg(vcpu, "PMXEVCNTR_EL0") == 42  # SEL=31 is the cycle counter
    reg(vcpu, "PMSELR_EL0", 2)
    reg(vcpu, "PMXEVTYPER_EL0", BR)
    assert reg(vcpu, "PMEVTYPER2_EL0") == BR
    reg(vcpu, "PMSELR_EL0", 6)  # N = 6
    with pytest.raises(Undefined):
        reg(vcpu, "PMXEVCNTR_EL0")


def test_el0_access_rules():
    _, (vcpu,) = running("latest")
    for name in ("PMCR_EL0", "PMCNTENSET_EL0", "PMCEID0_EL0", "PMEVCNTR0_EL0", "PMCCNTR_EL0",
                 "PMSELR_EL0", "PMINTENSET_EL1"):
        with pytest.raises(Undefined):
            reg(vcpu, name, el=0)
    with pytest.raises(Undefined):
        reg(vcpu, "PMUSERENR_EL0", 0xF, el=0)
    assert reg(vcpu, "PMUSERENR_EL0", el=0) == 0
    reg(vcpu, "PMUSERENR_EL0", sr.PMUSERENR_CR | sr.PMUSERENR_ER)
    reg(vcpu, "PMCCNTR_EL0", el=0)
    reg(vcpu, "PMEVCNTR0_EL0", el=0)
    with pytest.raises(Undefined):
        reg(vcpu, "PMEVCNTR0_EL0", 5, el=0)  # writes also need EN
    with pytest.raises(Undefined):
        reg(vcpu, "PMCR_EL0", el=0)
    reg(vcpu, "PMUSERENR_EL0", sr.PMUSERENR_EN)
    reg(vcpu, "PMCR_EL0", el=0)
    reg(vcpu, "PMEVCNTR0_EL0", 5, el=0)
    with pytest.raises(Undefined):
        reg(vcpu, "PMINTENSET_EL1", el=0)  # never from EL0


def test_pmswinc_is_write_only_and_pmceid_read_only():
    _, (vcpu,) = running("latest")
    with pytest.raises(Undefined):
        reg(vcpu, "PMSWINC_EL0")
    with pytest.raises(Undefined):
        reg(vcpu, "PMCEID0_EL0", 1)


@pytest.mark.parametrize("profile,undef", [("5.10", True), ("5.15", False)])
def test_pmmir_reads_zero_from_5_12(profile, undef):
    _, (vcpu,) = running(profile)
    if undef:
        with pytest.raises(Undefined):
            reg(vcpu, "PMMIR_EL1")
    else:
        assert reg(vcpu, "PMMIR_EL1") == 0


def test_reset_values_use_the_masked_pattern():
    _, (vcpu,) = running("latest")
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0xDBADC0DE
    assert reg(vcpu, "PMEVTYPER0_EL0") == 0xD800C0DE  # P|U|NSU|NSH kept (EL3, EL2)
    assert reg(vcpu, "PMCCFILTR_EL0") == 0
    assert reg(vcpu, "PMSELR_EL0") == 0x1E
    assert reg(vcpu, "PMCNTENSET_EL0") == 0xDBADC0DE & 0x8000003F


def test_filter_change_after_run_takes_effect_at_the_next_perf_event_recreation_5_10():
    vm, (v0, v1) = make_vm("5.10", vcpus=2)
    ready(v0)
    v0.run()
    program(v0, {0: INST})
    set_filter(v1, INST, 1, DENY)  # accepted: 5.10 has no has-run check
    v0.vpmu.count(1, {INST: 5})
    assert reg(v0, "PMEVCNTR0_EL0") == 5  # the existing perf event still counts
    reg(v0, "PMEVTYPER0_EL0", INST)  # reprogramming recreates it under the new filter
    v0.vpmu.count(1, {INST: 5})
    assert reg(v0, "PMEVCNTR0_EL0") == 5


# --- EL0 access, register by register (§5.2) ------------------------------------------------

EN, SW, CR, ER = sr.PMUSERENR_EN, sr.PMUSERENR_SW, sr.PMUSERENR_CR, sr.PMUSERENR_ER
NEVER = 0
EL0_ACCESS = [  # (register, write value or None for a read, PMUSERENR_EL0 bits that permit it)
    ("PMCR_EL0", None, EN), ("PMCR_EL0", 0, EN),
    ("PMCNTENSET_EL0", None, EN), ("PMCNTENSET_EL0", 0, EN),
    ("PMCNTENCLR_EL0", None, EN), ("PMCNTENCLR_EL0", 0, EN),
    ("PMOVSSET_EL0", None, EN), ("PMOVSSET_EL0", 0, EN),
    ("PMOVSCLR_EL0", None, EN), ("PMOVSCLR_EL0", 0, EN),
    ("PMCEID0_EL0", None, EN), ("PMCEID1_EL0", None, EN),
    ("PMEVTYPER0_EL0", None, EN), ("PMEVTYPER0_EL0", INST, EN),
    ("PMCCFILTR_EL0", None, EN), ("PMCCFILTR_EL0", 0, EN),
    ("PMXEVTYPER_EL0", None, EN), ("PMXEVTYPER_EL0", INST, EN),
    ("PMSWINC_EL0", 0, SW | EN),
    ("PMCCNTR_EL0", None, CR | EN), ("PMCCNTR_EL0", 0, EN),
    ("PMEVCNTR0_EL0", None, ER | EN), ("PMEVCNTR0_EL0", 0, EN),
    ("PMXEVCNTR_EL0", None, ER | EN), ("PMXEVCNTR_EL0", 0, EN),
    ("PMSELR_EL0", None, ER | EN), ("PMSELR_EL0", 0, ER | EN),
    ("PMINTENSET_EL1", None, NEVER), ("PMINTENSET_EL1", 0, NEVER),
    ("PMINTENCLR_EL1", None, NEVER), ("PMINTENCLR_EL1", 0, NEVER),
    ("PMUSERENR_EL0", 0, NEVER), ("PMMIR_EL1", None, NEVER), ("ID_AA64DFR0_EL1", None, NEVER),
]


@pytest.mark.parametrize("name,value,permits", EL0_ACCESS,
                         ids=[f"{n}-{'read' if v is None else 'write'}" for n, v, _ in EL0_ACCESS])
def test_el0_access_needs_the_pmuserenr_bits_of_its_register(name, value, permits):
    _, (vcpu,) = running("latest")
    reg(vcpu, "PMSELR_EL0", 0)  # PMXEV* name counter 0
    for bits in (0, EN, SW, CR, ER):
        reg(vcpu, "PMUSERENR_EL0", bits)
        try:
            reg(vcpu, name, value, el=0)
            allowed = True
        except Undefined:
            allowed = False
        assert allowed == bool(bits & permits), f"PMUSERENR_EL0={bits:#x}"


def test_pmxevcntr_writes_the_selected_counter():
    _, (vcpu,) = running("latest")
    reg(vcpu, "PMSELR_EL0", 2)
    reg(vcpu, "PMXEVCNTR_EL0", 77)
    assert reg(vcpu, "PMEVCNTR2_EL0") == 77


def test_only_pmu_registers_have_rules():
    _, (vcpu,) = running("latest")
    with pytest.raises(KeyError, match="SCTLR_EL1"):
        reg(vcpu, "SCTLR_EL1")


# --- enable, interrupt-enable and overflow registers (§5.2) ----------------------------------

@pytest.mark.parametrize("profile", ["5.10", "latest"])
@pytest.mark.parametrize("set_name,clr_name", [("PMCNTENSET_EL0", "PMCNTENCLR_EL0"),
                                               ("PMINTENSET_EL1", "PMINTENCLR_EL1"),
                                               ("PMOVSSET_EL0", "PMOVSCLR_EL0")])
def test_set_and_clear_views_share_one_register_of_implemented_counters(profile, set_name,
                                                                       clr_name):
    _, (vcpu,) = running(profile)  # 6 counters: bits 0-5 and 31
    reg(vcpu, clr_name, 0xFFFFFFFF)
    assert reg(vcpu, set_name) == reg(vcpu, clr_name) == 0
    reg(vcpu, set_name, 0b101)
    assert reg(vcpu, set_name) == 0b101
    reg(vcpu, set_name, 0b010)  # a SET write adds its ones
    assert reg(vcpu, set_name) == 0b111
    reg(vcpu, clr_name, 0b100)  # a CLR write removes its ones
    assert reg(vcpu, set_name) == reg(vcpu, clr_name) == 0b011
    reg(vcpu, set_name, 1 << 6 | 1 << 31)  # counter 6 is not implemented, the cycle counter is
    assert reg(vcpu, set_name) == 0x80000003


def test_the_first_run_masks_every_enable_and_overflow_register_to_the_counters():
    # reset junk: the low half of 0x1de7ec7edbadc0de; N = 3 from SET_NR_COUNTERS (§5.2, §5.3)
    _, (vcpu,) = make_vm("latest")
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 3))
    ready(vcpu)
    vcpu.run()
    for name in ("PMCNTENSET_EL0", "PMINTENSET_EL1", "PMOVSSET_EL0"):
        assert reg(vcpu, name) == 0xDBADC0DE & 0x80000007


# --- PMCR_EL0 ---------------------------------------------------------------------------------

def test_pmcr_reset_on_a_pmuv3p4_host_clears_lp():
    # 6.6: the host's PMCR (IMP 0x41, N 6) with bits [7:0] = 0xac; LC forced; LP cleared below
    # PMUv3p5 (v6.2+); the guest's read masks P and C (§5.1)
    _, (vcpu,) = running("6.6", host=generic_host(sr.PMUVER_V3P4))
    assert reg(vcpu, "PMCR_EL0") == 0x41 << 24 | 6 << 11 | (0xAC & ~sr.PMCR_LP | sr.PMCR_LC) & ~0x6


def test_one_reg_pmcr_keeps_bits_7_0_as_written_from_6_7():
    _, (vcpu,) = make_vm("latest")
    mem = vcpu.memory
    addr = mem.put((6 << 11 | sr.PMCR_LC | sr.PMCR_E).to_bytes(8, "little"))
    pmcr_id = u.sysreg_one_reg_id(3, 3, 9, 12, 0)
    vcpu.ioctl(u.KVM_SET_ONE_REG, mem.put(u.kvm_one_reg(pmcr_id, addr).pack()))
    out = mem.alloc(8)
    vcpu.ioctl(u.KVM_GET_ONE_REG, mem.put(u.kvm_one_reg(pmcr_id, out).pack()))
    assert int.from_bytes(mem.read(out, 8), "little") == 6 << 11 | sr.PMCR_LC | sr.PMCR_E


def test_pmcr_n_follows_set_nr_counters_after_a_guest_pmcr_write():
    # 7.x (§6): SET_NR_COUNTERS through vCPU 1 after vCPU 0 ran sets N for the whole VM; a
    # PMCR_EL0 the guest wrote before still reads the VM's N
    _, (v0, v1) = make_vm("latest", vcpus=2)
    ready(v0)
    v0.run()
    reg(v0, "PMCR_EL0", sr.PMCR_E)
    set_attr(v1, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 3))
    v0.run()
    assert reg(v0, "PMCR_EL0") >> 11 & 0x1F == 3


def test_pmcr_p_zeroes_only_the_implemented_counters_from_6_2():
    _, (v0, v1) = make_vm("latest", vcpus=2)
    ready(v0)
    v0.run()
    reg(v0, "PMEVCNTR2_EL0", 41)
    reg(v0, "PMEVCNTR5_EL0", 42)
    set_attr(v1, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 3))
    reg(v0, "PMCR_EL0", sr.PMCR_P)  # counters 0-2 only
    set_attr(v1, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 6))
    assert (reg(v0, "PMEVCNTR2_EL0"), reg(v0, "PMEVCNTR5_EL0")) == (0, 42)


# --- counting -------------------------------------------------------------------------------

@ALL_PROFILES
def test_only_enabled_counters_count_and_each_counts_its_own_event(profile):
    _, (vcpu,) = running(profile)
    program(vcpu, {0: BR, 1: INST})
    reg(vcpu, "PMEVTYPER2_EL0", INST)  # programmed, never enabled
    vcpu.vpmu.count(1, {INST: 5})
    assert [reg(vcpu, f"PMEVCNTR{i}_EL0") for i in range(3)] == [0, 5, 0]


@pytest.mark.parametrize("profile,counts_el1", [("6.6", True), ("latest", False)])
def test_nsk_alone_excludes_el1_from_6_7(profile, counts_el1):
    """v6.7+ with EL3: EL1 counts iff P == NSK; before, NSK is dropped and P alone decides."""
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST | sr.EVTYPE_NSK, 1: INST | P | sr.EVTYPE_NSK})
    vcpu.vpmu.count(1, {INST: 10})
    assert reg(vcpu, "PMEVCNTR0_EL0") == (10 if counts_el1 else 0)
    assert reg(vcpu, "PMEVCNTR1_EL0") == (0 if counts_el1 else 10)


@pytest.mark.parametrize("profile", ["5.10", "6.1", "latest"])
def test_the_cycle_counter_keeps_64_bits_written(profile):
    _, (vcpu,) = running(profile)
    reg(vcpu, "PMCCNTR_EL0", 0x1_0000_0005)
    assert reg(vcpu, "PMCCNTR_EL0") == 0x1_0000_0005


def test_a_64_bit_counter_overflows_when_its_low_32_bits_wrap():
    _, (vcpu,) = running("latest")  # PMUv3p5, PMCR.LP clear
    program(vcpu, {0: INST})
    reg(vcpu, "PMEVCNTR0_EL0", 0x1_0000_0005)
    vcpu.vpmu.count(1, {INST: 1})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0x1_0000_0006 and reg(vcpu, "PMOVSSET_EL0") == 0


def test_6_1_gives_a_pmuv3p7_host_16_bit_event_numbers():
    # §2.3: PMUVer 0x7 has the 16-bit mask from 5.16 ("minimal handling for the ARMv8.7 PMU")
    _, (vcpu,) = running("6.1", host=generic_host(sr.PMUVER_V3P7))
    program(vcpu, {0: INST})
    vcpu.vpmu.count(1, {INST: 9})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 9


# --- SW_INCR and CHAIN (§3.3) ------------------------------------------------------------------

V3P4 = generic_host(sr.PMUVER_V3P4)  # 32-bit event counters on every kernel


@ALL_PROFILES
def test_sw_incr_increments_only_its_counters(profile):
    _, (vcpu,) = running(profile, host=V3P4)
    program(vcpu, {0: INST, 1: 0x00})
    reg(vcpu, "PMSWINC_EL0", 0b11)
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0, 1)


@ALL_PROFILES
def test_sw_incr_is_never_backed_by_a_perf_event(profile):
    """§3.3: kvm_pmu_create_perf_event() returns before making one for SW_INCR, so what the
    host PMU counts of raw event 0 never reaches the counter; only PMSWINC_EL0 does."""
    _, (vcpu,) = running(profile, host=V3P4)
    program(vcpu, {0: 0x00})
    reg(vcpu, "PMEVCNTR0_EL0", 7)  # a counter write makes the perf event again
    vcpu.vpmu.count(1, {0x00: 5})
    vcpu.vpmu.count(0, {0x00: 5})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 7


@ALL_PROFILES
def test_sw_incr_overflow_sets_its_own_overflow_bit(profile):
    _, (vcpu,) = running(profile, host=V3P4)
    program(vcpu, {2: 0x00})
    reg(vcpu, "PMOVSSET_EL0", 1 << 3)
    reg(vcpu, "PMEVCNTR2_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMSWINC_EL0", 1 << 2)
    assert reg(vcpu, "PMEVCNTR2_EL0") == 0
    assert reg(vcpu, "PMOVSSET_EL0") == 1 << 3 | 1 << 2


@ALL_PROFILES
def test_an_odd_counter_never_chains_into_the_next(profile):
    """Only an even counter's overflow feeds the CHAIN counter above it."""
    _, (vcpu,) = running(profile, host=V3P4)
    program(vcpu, {1: 0x00, 2: 0x1E, 3: INST, 4: 0x1E})
    reg(vcpu, "PMEVCNTR1_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMEVCNTR3_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMSWINC_EL0", 1 << 1)
    vcpu.vpmu.count(1, {INST: 1})
    assert [reg(vcpu, f"PMEVCNTR{i}_EL0") for i in range(1, 5)] == [0, 0, 0, 0]
    assert reg(vcpu, "PMOVSSET_EL0") == 0b1010


@pytest.mark.parametrize("profile,even_bit", [("5.10", False), ("6.1", True), ("latest", True)])
def test_sw_incr_overflow_of_counter_2_feeds_the_chain_counter_3(profile, even_bit):
    # §6: the CHAIN counter counts the even counter's overflows; 6.1 and later set the even
    # counter's own overflow bit too, 5.10 does not; the CHAIN counter's wrap sets its bit
    _, (vcpu,) = running(profile, host=V3P4)
    program(vcpu, {1: INST, 2: 0x00, 3: 0x1E, 4: INST})
    reg(vcpu, "PMCNTENCLR_EL0", 1 << 1 | 1 << 4)
    reg(vcpu, "PMEVCNTR1_EL0", 100)
    reg(vcpu, "PMEVCNTR4_EL0", 200)
    reg(vcpu, "PMOVSSET_EL0", 1 << 5)
    reg(vcpu, "PMEVCNTR2_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMEVCNTR3_EL0", 5)
    reg(vcpu, "PMSWINC_EL0", 1 << 2)
    assert (reg(vcpu, "PMEVCNTR2_EL0"), reg(vcpu, "PMEVCNTR3_EL0")) == (0, 6)
    even = 1 << 2 if even_bit else 0
    assert reg(vcpu, "PMOVSSET_EL0") == 1 << 5 | even
    reg(vcpu, "PMEVCNTR2_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMEVCNTR3_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMSWINC_EL0", 1 << 2)
    assert (reg(vcpu, "PMEVCNTR2_EL0"), reg(vcpu, "PMEVCNTR3_EL0")) == (0, 0)
    assert reg(vcpu, "PMOVSSET_EL0") == 1 << 5 | 1 << 3 | even
    assert (reg(vcpu, "PMEVCNTR1_EL0"), reg(vcpu, "PMEVCNTR4_EL0")) == (100, 200)


@pytest.mark.parametrize("profile,even_bit", [("5.10", 0), ("6.1", 1)])
def test_a_chained_pair_counts_from_any_value_before_6_2(profile, even_bit):
    _, (vcpu,) = running(profile)
    program(vcpu, {0: INST, 1: 0x1E})
    reg(vcpu, "PMOVSSET_EL0", 1 << 4)
    vcpu.vpmu.count(1, {INST: 5})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (5, 0)
    assert reg(vcpu, "PMOVSSET_EL0") == 1 << 4
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMEVCNTR1_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0, 0)
    assert reg(vcpu, "PMOVSSET_EL0") == 1 << 4 | 1 << 1 | even_bit


@pytest.mark.parametrize("profile", ["6.1", "latest"])
@pytest.mark.parametrize("odd_type,odd_enabled", [(BR, True), (0x1E, False)])
def test_no_chaining_unless_the_odd_counter_is_an_enabled_chain(profile, odd_type, odd_enabled):
    _, (vcpu,) = running(profile, host=V3P4)
    program(vcpu, {0: INST, 1: odd_type})
    if not odd_enabled:
        reg(vcpu, "PMCNTENCLR_EL0", 1 << 1)
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0, 0)
    assert reg(vcpu, "PMOVSSET_EL0") == 1


def test_a_64_bit_overflow_does_not_feed_the_chain_counter():
    # §3.3: the CHAIN counter counts 32-bit overflows; with PMCR.LP the even counter overflows
    # at 2^64 instead
    _, (vcpu,) = running("latest")
    program(vcpu, {0: INST, 1: 0x1E})
    reg(vcpu, "PMCR_EL0", sr.PMCR_E | sr.PMCR_LP)
    reg(vcpu, "PMEVCNTR0_EL0", 2**64 - 1)
    vcpu.vpmu.count(1, {INST: 1})
    assert (reg(vcpu, "PMEVCNTR0_EL0"), reg(vcpu, "PMEVCNTR1_EL0")) == (0, 0)
    assert reg(vcpu, "PMOVSSET_EL0") == 1


@pytest.mark.parametrize("profile", ["6.1", "latest"])
def test_counter_30_never_chains_into_the_cycle_counter(profile):
    host = one_pmu_host({INST, CYCLES, 0x1E}, pmuver=sr.PMUVER_V3P4, counters=31)
    _, (vcpu,) = running(profile, host=host)
    program(vcpu, {30: INST, 31: 0x1E})  # PMCCFILTR keeps its event bits (§3.4's quirk)
    reg(vcpu, "PMEVCNTR30_EL0", 0xFFFFFFFF)
    vcpu.vpmu.count(1, {INST: 1})
    assert (reg(vcpu, "PMEVCNTR30_EL0"), reg(vcpu, "PMCCNTR_EL0")) == (0, 0)
    assert reg(vcpu, "PMOVSSET_EL0") == 1 << 30


def test_writing_an_event_type_leaves_the_cycle_counter_counting_before_6_2():
    _, (vcpu,) = running("6.1")
    program(vcpu, {0: INST, 31: 0})
    reg(vcpu, "PMEVTYPER0_EL0", BR)
    vcpu.vpmu.count(1, {CYCLES: 50})
    assert reg(vcpu, "PMCCNTR_EL0") == 50


# --- when the filter is read: 5.10 accepts a filter after the VM ran (§2.5, §3.1) ------------

def late_filter(counters: dict[int, int], enabled: int, enable=True):
    """5.10: vCPU 0 runs with `counters` programmed and `enabled` (PMCNTENSET), then a filter
    set through vCPU 1 denies INST_RETIRED. Only perf events created from now on see it."""
    vm, (v0, v1) = make_vm("5.10", vcpus=2)
    ready(v0)
    v0.run()
    program(v0, counters, enable=enable)
    reg(v0, "PMCNTENCLR_EL0", 0xFFFFFFFF)
    reg(v0, "PMCNTENSET_EL0", enabled)
    set_filter(v1, INST, 1, DENY)
    return v0


def counts(vcpu, *idx):
    vcpu.vpmu.count(1, {INST: 5})
    return [reg(vcpu, f"PMEVCNTR{i}_EL0") for i in idx]


def test_a_late_filter_applies_to_counters_enabled_after_it_only():
    v0 = late_filter({0: INST, 2: INST}, enabled=0b001)
    reg(v0, "PMCNTENSET_EL0", 0b100)  # counter 2's perf event is created now
    assert counts(v0, 0, 2) == [5, 0]


def test_a_late_filter_applies_when_pmcr_e_goes_from_0_to_1():
    v0 = late_filter({0: INST}, enabled=0b1, enable=False)
    reg(v0, "PMCR_EL0", sr.PMCR_E)
    assert counts(v0, 0) == [0]


def test_a_late_filter_applies_when_pmcr_p_resets_the_event_counters():
    v0 = late_filter({0: INST}, enabled=0b1)
    reg(v0, "PMCR_EL0", sr.PMCR_E | sr.PMCR_P)  # P writes every event counter's value
    assert counts(v0, 0) == [0]


def test_a_late_filter_applies_to_the_counter_whose_type_is_written():
    v0 = late_filter({1: INST, 2: INST}, enabled=0b110)
    reg(v0, "PMEVTYPER2_EL0", INST)  # counter 2 only: counter 1 keeps its perf event
    assert counts(v0, 1, 2) == [5, 0]


def test_a_late_filter_applies_to_a_pair_that_becomes_chained():
    # the pair's perf event is created for the even counter's event (INST_RETIRED, denied)
    v0 = late_filter({2: INST, 3: BR}, enabled=0b1100)
    reg(v0, "PMEVTYPER3_EL0", 0x1E)
    assert counts(v0, 2) == [0]


def test_a_late_filter_applies_to_a_pair_whose_chain_counter_is_enabled():
    v0 = late_filter({0: INST, 1: 0x1E, 2: INST}, enabled=0b101)
    reg(v0, "PMCNTENSET_EL0", 0b010)  # chains the pair 0-1: its perf event is created now
    assert counts(v0, 0, 2) == [0, 5]


def test_a_late_filter_applies_to_a_counter_written_after_it():
    # §3.1: a counter value write recreates its perf event, and only a recreation reads the
    # filter: written before the FILTER call it counts INST_RETIRED, written after it not
    vm, (v0, v1) = make_vm("5.10", vcpus=2)
    ready(v0)
    v0.run()
    program(v0, {0: INST, 1: INST})
    reg(v0, "PMEVCNTR0_EL0", 0)
    assert counts(v0, 0, 1) == [5, 5]
    set_filter(v1, INST, 1, DENY)
    reg(v0, "PMEVCNTR0_EL0", 0)  # counter 1 is not written: it keeps its perf event
    assert counts(v0, 0, 1) == [0, 10]


# --- what a counter write recreates follows the type written between two writes (§3.1, §3.4) --

@ALL_PROFILES
def test_the_cycle_counter_written_again_counts_as_pmccfiltr_says_now(profile):
    # PMCCFILTR_EL0.P excludes EL1 and U EL0 (NSK, NSU clear); each PMCCNTR_EL0 write
    # recreates the counter's perf event from what PMCCFILTR_EL0 holds then
    _, (vcpu,) = running(profile)
    program(vcpu, {31: 0})
    cycles = []
    for filtr in (0, P, U, 0):
        reg(vcpu, "PMCCNTR_EL0", 0)
        reg(vcpu, "PMCCFILTR_EL0", filtr)
        reg(vcpu, "PMCCNTR_EL0", 0)
        vcpu.vpmu.count(1, {CYCLES: 50})
        vcpu.vpmu.count(0, {CYCLES: 7})
        cycles.append(reg(vcpu, "PMCCNTR_EL0"))
    assert cycles == [57, 7, 50, 57]


@ALL_PROFILES
def test_an_event_counter_written_again_counts_the_event_its_type_names_now(profile):
    _, (vcpu,) = running(profile, [(BR, 1, DENY)])
    program(vcpu, {0: INST})
    counted = []
    for evtype in (INST, BR, CYCLES, INST | P):
        reg(vcpu, "PMEVCNTR0_EL0", 0)
        reg(vcpu, "PMEVTYPER0_EL0", evtype)
        reg(vcpu, "PMEVCNTR0_EL0", 0)
        vcpu.vpmu.count(1, {INST: 3, BR: 5, CYCLES: 11})
        counted.append(reg(vcpu, "PMEVCNTR0_EL0"))
    assert counted == [3, 0, 11, 0]  # BR_RETIRED denied, INST_RETIRED excluded at EL1

# --- the next overflow interrupt, for a CPU-emulated guest ------------------------------------

def armed(profile="latest", host=None, values=None, types=None, lp=False):
    _, (vcpu,) = running(profile, host=host)
    types = types or {0: INST}
    program(vcpu, types)
    reg(vcpu, "PMINTENSET_EL1", sum(1 << i for i in types))
    if lp:
        reg(vcpu, "PMCR_EL0", sr.PMCR_E | sr.PMCR_LP)
    for idx, value in (values or {}).items():
        reg(vcpu, "PMCCNTR_EL0" if idx == 31 else f"PMEVCNTR{idx}_EL0", value)
    return vcpu.vpmu


def test_occurrences_to_the_next_overflow_interrupt():
    vpmu = armed(values={0: 0xFFFFFFF1})
    assert vpmu.occurrences_to_interrupt(1, frozenset({INST})) == 15
    assert vpmu.occurrences_to_interrupt(1, frozenset({BR})) is None  # not its event


def test_occurrences_to_interrupt_takes_the_soonest_counter():
    vpmu = armed(types={0: INST, 1: BR}, values={0: 0xFFFFFFFB, 1: 0xFFFFFFF1})
    assert vpmu.occurrences_to_interrupt(1, frozenset({INST, BR})) == 5
    assert vpmu.occurrences_to_interrupt(1, frozenset({BR})) == 15


def test_occurrences_to_interrupt_needs_pmcr_e_pmcnten_and_pminten():
    vpmu = armed(values={0: 0xFFFFFFF1})
    events = frozenset({INST})
    vpmu.write_pminten(1, setting=False)
    assert vpmu.occurrences_to_interrupt(1, events) is None
    vpmu.write_pminten(1, setting=True)
    vpmu.write_pmcnten(1, setting=False)
    assert vpmu.occurrences_to_interrupt(1, events) is None
    vpmu.write_pmcnten(1, setting=True)
    vpmu.write_pmcr(0)
    assert vpmu.occurrences_to_interrupt(1, events) is None


def test_occurrences_to_interrupt_at_an_excluded_level_is_none():
    vpmu = armed(types={0: INST | U}, values={0: 0xFFFFFFF1})
    assert vpmu.occurrences_to_interrupt(0, frozenset({INST})) is None
    assert vpmu.occurrences_to_interrupt(1, frozenset({INST})) == 15
    vpmu = armed(types={0: INST | P}, values={0: 0xFFFFFFF1})
    assert vpmu.occurrences_to_interrupt(1, frozenset({INST})) is None
    assert vpmu.occurrences_to_interrupt(0, frozenset({INST})) == 15


def test_occurrences_to_interrupt_of_64_bit_counters():
    # PMUv3p5: overflow at the 32-bit boundary without PMCR.LP, at 2^64 with it
    vpmu = armed(values={0: 0x1_FFFF_FFF1})
    assert vpmu.occurrences_to_interrupt(1, frozenset({INST})) == 15
    vpmu = armed(values={0: 0xFFFF_FFFE_0000_0005}, lp=True)
    assert vpmu.occurrences_to_interrupt(1, frozenset({INST})) == 0x1_FFFF_FFFB


def test_occurrences_to_interrupt_of_the_cycle_counter():
    base = generic_host()
    host = Host(base.pmus, aarch32_el0=True, cpus=base.cpus)  # LC not forced: 32-bit overflow
    vpmu = armed(host=host, types={31: 0}, values={31: 0xFFFFFFF7})
    assert vpmu.occurrences_to_interrupt(1, frozenset({CYCLES})) == 9
    vpmu = armed(types={31: 0}, values={31: 0xFFFF_FFFE_FFFF_FFFE})  # LC forced: at 2^64
    assert vpmu.occurrences_to_interrupt(1, frozenset({CYCLES})) == 0x1_0000_0002
