"""The filter bitmap's semantics and the guest's PMCEID0/1_EL0 (semantics §2.3, §2.4, §4).

Host values are written out by hand from the architected event list (arm-events.md §1a/§1b):
0x00-0x3F are all defined; of 0x4000-0x401F, 0x4000-06, 0x4009-13 and 0x4018-1B are; of
0x4020-0x403F, 0x4020-22 and 0x4024-26 are.
"""

import errno as E

import pytest

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import generic_host
from kvmpmu.uapi import kvm as u
from tests.kvmhelpers import (
    ALLOW,
    DENY,
    errno_of,
    make_vm,
    one_pmu_host,
    ready,
    reg,
    set_filter,
)

GENERIC_PMCEID0 = 0x0F0FFE7F_FFFFFFFF
GENERIC_PMCEID1 = 0x00000077_FFFFFFFF


def guest(vm, vcpu):
    return vm.guest_pmceid(vcpu, 0), vm.guest_pmceid(vcpu, 1)


def test_generic_host_pmceid_is_every_architected_event():
    pmu = generic_host().pmus[0]
    assert (pmu.pmceid(0), pmu.pmceid(1)) == (GENERIC_PMCEID0, GENERIC_PMCEID1)


def test_generic_v8_0_host_has_no_high_halves():
    pmu = generic_host(sr.PMUVER_IMP).pmus[0]
    assert (pmu.pmceid(0), pmu.pmceid(1)) == (0xFFFFFFFF, 0xFFFFFFFF)


@pytest.mark.parametrize("profile,pmceid1", [
    ("5.10", GENERIC_PMCEID1),                 # nothing hidden
    ("5.15", GENERIC_PMCEID1 & ~(1 << 31)),    # STALL_SLOT hidden on a >= 8.4 PMU
    ("6.1", GENERIC_PMCEID1 & ~(1 << 31)),
    ("6.6", GENERIC_PMCEID1 & ~(7 << 29)),     # all three STALL_SLOT* hidden
    ("latest", GENERIC_PMCEID1 & ~(7 << 29)),
])
def test_pmceid_without_filter_per_version(profile, pmceid1):
    vm, (vcpu,) = make_vm(profile)
    ready(vcpu)  # the PMU attributes select (or probe) the VM's PMU
    assert guest(vm, vcpu) == (GENERIC_PMCEID0, pmceid1)


def test_stall_slot_visible_on_a_v8_1_pmu_in_5_15():
    vm, (vcpu,) = make_vm("5.15", host=generic_host(sr.PMUVER_V3P1))
    set_filter(vcpu, 0, 0, DENY)  # install an allow-all bitmap so the PMU is probed
    assert vm.guest_pmceid(vcpu, 1) >> 31 & 1 == 1


@pytest.mark.parametrize("profile,pmceid0", [
    ("6.1", 1 << 8 | 1 << 17),                       # nothing forced
    ("6.6", 1 << 8 | 1 << 17 | 1 << 30),             # CHAIN forced from 6.2
    ("latest", 1 << 0 | 1 << 8 | 1 << 17 | 1 << 30),  # SW_INCR forced from 6.15
])
def test_forced_chain_and_sw_incr_bits(profile, pmceid0):
    vm, (vcpu,) = make_vm(profile, host=one_pmu_host({0x08, 0x11}))
    assert vm.guest_pmceid(vcpu, 0) == pmceid0


def test_worked_example_of_the_document():
    """§4.2: {0,16,ALLOW}, {6,3,DENY} -> PMCEID0 = hw' & 0xFE3F, PMCEID1 = 0."""
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x0, 16, ALLOW)
    set_filter(vcpu, 0x6, 3, DENY)
    assert guest(vm, vcpu) == (0xFE3F, 0)


def test_first_allow_denies_everything_else():
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x11, 1, ALLOW)
    assert guest(vm, vcpu) == (1 << 17, 0)
    assert not vm.event_allowed(0x8000) and vm.event_allowed(0x11)


def test_first_deny_allows_everything_else():
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x2A, 2, DENY)  # L3D_CACHE_REFILL, L3D_CACHE
    p0, p1 = guest(vm, vcpu)
    assert p0 == GENERIC_PMCEID0
    assert p1 == GENERIC_PMCEID1 & ~(7 << 29) & ~(0b11 << 10)
    assert vm.event_allowed(0x8000) and vm.event_allowed(0xFFFF)


def test_cancelling_does_not_restore_the_default():
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x11, 1, ALLOW)
    set_filter(vcpu, 0x11, 1, DENY)
    assert guest(vm, vcpu) == (0, 0)  # everything denied, CHAIN/SW_INCR bits masked too
    vm2, (w,) = make_vm("latest")
    set_filter(w, 0x11, 1, DENY)
    set_filter(w, 0x11, 1, ALLOW)
    assert vm2.filter_bitmap() == (1 << 65536) - 1


def test_later_filters_override_earlier_ones_on_overlap():
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x00, 0x40, ALLOW)
    set_filter(vcpu, 0x10, 0x10, DENY)
    set_filter(vcpu, 0x11, 1, ALLOW)
    assert vm.guest_pmceid(vcpu, 0) & 0xFFFFFFFF == 0x0002FFFF


def test_first_zero_length_allow_installs_deny_all():
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x11, 0, ALLOW)
    assert vm.filter_bitmap() == 0
    assert guest(vm, vcpu) == (0, 0)


def test_first_zero_length_deny_installs_allow_all_and_later_ones_are_no_ops():
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0xFFFF, 0, DENY)
    set_filter(vcpu, 0x11, 0, DENY)
    assert vm.filter_bitmap() == (1 << 65536) - 1
    assert guest(vm, vcpu) == (GENERIC_PMCEID0, GENERIC_PMCEID1 & ~(7 << 29))


def test_deny_on_sw_incr_and_chain_clears_their_pmceid_bits():
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x00, 1, DENY)
    set_filter(vcpu, 0x1E, 1, DENY)
    assert vm.guest_pmceid(vcpu, 0) & 0xFFFFFFFF == 0xBFFFFFFE


def test_allowing_an_event_the_host_lacks_does_not_set_its_bit():
    vm, (vcpu,) = make_vm("latest", host=one_pmu_host({0x08}))
    set_filter(vcpu, 0x08, 2, ALLOW)  # 0x09 allowed but not implemented
    assert vm.guest_pmceid(vcpu, 0) == 1 << 8


def test_high_halves_masked_only_when_the_guest_event_space_covers_them():
    # v6.6+: lower the guest to PMUv3 (8.0): with a filter, high halves read 0
    vm, (vcpu,) = make_vm("latest")
    one_reg_dfr0(vcpu, sr.PMUVER_IMP)
    assert vm.guest_pmceid(vcpu, 0) == GENERIC_PMCEID0  # no filter: the host value passes
    set_filter(vcpu, 0x4000, 0x40, ALLOW)  # FILTER still takes 16-bit ranges (host limit)
    assert vm.guest_pmceid(vcpu, 0) == 0  # only 0x4000+ allowed, and the high half is masked


def test_high_halves_take_the_filter_bits_of_their_own_extended_events():
    """§4.1: PMCEID0[63:32] is 0x4000-0x401F, PMCEID1[63:32] is 0x4020-0x403F. A first ALLOW
    of 0x4000-0x403F denies everything else (CHAIN and SW_INCR too); the high halves are the
    host's: 0x4000-06, 0x4009-13, 0x4018-1B and 0x4020-22, 0x4024-26 (module docstring)."""
    vm, (vcpu,) = make_vm("latest")
    set_filter(vcpu, 0x4000, 0x40, ALLOW)
    assert guest(vm, vcpu) == (0x0F0FFE7F_00000000, 0x00000077_00000000)


def test_ten_bit_host_filter_leaves_high_halves_zero():
    vm, (vcpu,) = make_vm("6.1", host=generic_host(sr.PMUVER_IMP))
    set_filter(vcpu, 0x30, 1, DENY)  # 0x30 is PMCEID1 bit 16; STALL_SLOT stays (PMU < 8.4)
    assert guest(vm, vcpu) == (0xFFFFFFFF, 0xFFFEFFFF)


DFR0_ID = u.sysreg_one_reg_id(3, 0, 0, 5, 0)  # ID_AA64DFR0_EL1


def one_reg_dfr0(vcpu, pmuver):
    """KVM_SET_ONE_REG(ID_AA64DFR0_EL1): the value read back with PMUVer (bits [11:8]) changed."""
    mem = vcpu.memory
    addr = mem.alloc(8)
    vcpu.ioctl(u.KVM_GET_ONE_REG, mem.put(u.kvm_one_reg(DFR0_ID, addr).pack()))
    value = int.from_bytes(mem.read(addr, 8), "little") & ~0xF00 | pmuver << 8
    mem.write(addr, value.to_bytes(8, "little"))
    vcpu.ioctl(u.KVM_SET_ONE_REG, mem.put(u.kvm_one_reg(DFR0_ID, addr).pack()))


@pytest.mark.parametrize("profile,ok", [("6.1", False), ("6.6", True), ("latest", True)])
def test_guest_pmuver_can_be_lowered_from_6_2(profile, ok):
    _, (vcpu,) = make_vm(profile)
    got = errno_of(one_reg_dfr0, vcpu, sr.PMUVER_IMP)
    assert got == (None if ok else E.EINVAL)


def test_guest_pmuver_cannot_be_raised_or_changed_after_run():
    vm, (vcpu,) = make_vm("latest", host=generic_host(sr.PMUVER_V3P1))
    assert errno_of(one_reg_dfr0, vcpu, sr.PMUVER_V3P5) == E.EINVAL
    ready(vcpu)
    vcpu.run()
    assert errno_of(one_reg_dfr0, vcpu, sr.PMUVER_IMP) == E.EBUSY


@pytest.mark.parametrize("profile,host_ver,nevents_ok", [
    ("5.15", sr.PMUVER_V3P7, 1),      # 8.7 unknown before 5.16: mask 0, one event
    ("6.1", sr.PMUVER_V3P7, 65536),
    ("6.1", sr.PMUVER_V3P8, 1),       # 8.8 unknown to the mask before 6.6
    ("latest", sr.PMUVER_V3P9, 65536),  # 6.6+: the host limit is capped at 8.5
])
def test_event_space_size_per_version(profile, host_ver, nevents_ok):
    vm, (vcpu,) = make_vm(profile, host=generic_host(host_ver))
    set_filter(vcpu, 0, 0, DENY)  # probe/select the PMU
    assert vm.nr_filter_events() == nevents_ok


def test_unknown_pmu_version_masks_every_event_to_zero_before_6_6():
    _, (vcpu,) = make_vm("6.1", host=generic_host(sr.PMUVER_V3P8))
    assert errno_of(set_filter, vcpu, 0, 2, ALLOW) == E.EINVAL
    set_filter(vcpu, 0, 1, ALLOW)
    ready(vcpu)
    vcpu.run()
    reg(vcpu, "PMEVTYPER0_EL0", 0x08)
    assert reg(vcpu, "PMEVTYPER0_EL0") & 0xFFFF == 0x08  # stored, but counted as event 0
    reg(vcpu, "PMCNTENSET_EL0", 1)
    reg(vcpu, "PMEVCNTR0_EL0", 0)
    reg(vcpu, "PMCR_EL0", 1)
    vcpu.vpmu.count(1, {0x08: 5})
    reg(vcpu, "PMSWINC_EL0", 1)
    assert reg(vcpu, "PMEVCNTR0_EL0") == 1  # treated as SW_INCR
