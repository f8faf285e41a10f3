"""Semantics §6: what real 5.10, 6.1, 6.12 and 7.x kernels were measured to do, one test per
bullet per kernel. Every expected value is copied from the document (QEMU's hosts: `-cpu max`,
PMUv3p5, and `-cpu cortex-a57`, PMUv3 for Armv8.0; 6 counters; PMCR IMP 0x41, IDCODE 1)."""

import errno as E
import struct

import pytest

from kvmpmu.arch.cpus import CPU_MODELS
from kvmpmu.kvm.system import Vcpu
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.spec.hostspec import HostSpec, PmuSpec
from kvmpmu.uapi import kvm as u
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.memmap import GICD_BASE, GICR_BASE
from tests.kvmhelpers import (
    ALLOW,
    DENY,
    errno_of,
    ioctl_attr,
    make_vm,
    pmu_init,
    ready,
    reg,
    set_attr,
    set_filter,
    set_irq,
)

MAX = build_host(HostSpec((PmuSpec("armv8_pmuv3_0", CPU_MODELS["qemu-max"]),)))
A57 = build_host(HostSpec((PmuSpec("armv8_pmuv3_0", CPU_MODELS["qemu-cortex-a57"]),)))
PMCR = u.sysreg_one_reg_id(3, 3, 9, 12, 0)
DFR0 = u.sysreg_one_reg_id(3, 0, 0, 5, 0)
IRQ, INIT, FILTER, SET_PMU, NR = 0, 1, 2, 3, 4


def get_one_reg(vcpu: Vcpu, reg_id: int) -> int:
    mem = vcpu.memory
    addr = mem.alloc(8)
    vcpu.ioctl(u.KVM_GET_ONE_REG, mem.put(u.kvm_one_reg(reg_id, addr).pack()))
    return int.from_bytes(mem.read(addr, 8), "little")


def set_one_reg(vcpu: Vcpu, reg_id: int, value: int) -> None:
    mem = vcpu.memory
    addr = mem.put(value.to_bytes(8, "little"))
    vcpu.ioctl(u.KVM_SET_ONE_REG, mem.put(u.kvm_one_reg(reg_id, addr).pack()))


def get_irq(vcpu: Vcpu) -> int:
    addr = vcpu.memory.alloc(4)
    ioctl_attr(vcpu, u.KVM_GET_DEVICE_ATTR, IRQ, addr=addr)
    return int(struct.unpack("<i", vcpu.memory.read(addr, 4))[0])


def has(vcpu: Vcpu, attr: int) -> None:
    ioctl_attr(vcpu, u.KVM_HAS_DEVICE_ATTR, attr)


def running(profile: str, host=MAX, filters=(), vcpus: int = 1):
    vm, cpus = make_vm(profile, host=host, vcpus=vcpus)
    for base, n, action in filters:
        set_filter(cpus[0], base, n, action)
    for vcpu in cpus:
        ready(vcpu)
        vcpu.run()
    return vm, cpus


# --- Guest view, no filter ------------------------------------------------------------------

@pytest.mark.parametrize("profile,pmceid0,pmceid1,pmcr,dfr0_max", [
    ("6.1", 0x20001, 0x10000018, 0x410130A8, 0x10305506),
    ("6.12", 0x40020001, 0x10000018, 0x3000, 0x10305609),
])
def test_guest_view_without_a_filter(profile, pmceid0, pmceid1, pmcr, dfr0_max):
    _, (vcpu,) = running(profile)
    assert (reg(vcpu, "PMCEID0_EL0"), reg(vcpu, "PMCEID1_EL0")) == (pmceid0, pmceid1)
    assert reg(vcpu, "PMCR_EL0") == pmcr
    assert get_one_reg(vcpu, DFR0) == dfr0_max
    _, (a57,) = running(profile, host=A57)
    assert get_one_reg(a57, DFR0) == 0x10305106


# --- Event space ----------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["6.1", "6.12"])
@pytest.mark.parametrize("base,nevents,ok", [(0x3FF, 1, True), (0x3FF, 2, False),
                                             (0x400, 1, False), (0x4000, 1, False)])
def test_a_pmuver_1_host_has_a_10_bit_event_space(profile, base, nevents, ok):
    _, (vcpu,) = make_vm(profile, host=A57)
    assert errno_of(set_filter, vcpu, base, nevents, ALLOW) == (None if ok else E.EINVAL)


def test_6_12_lowers_pmuver_to_1_but_filter_keeps_the_16_bit_range():
    _, (vcpu,) = make_vm("6.12", host=MAX)
    set_one_reg(vcpu, DFR0, get_one_reg(vcpu, DFR0) & ~0xF00 | 0x100)
    assert get_one_reg(vcpu, DFR0) >> 8 & 0xF == 1
    assert errno_of(set_filter, vcpu, 0x3FF, 2, ALLOW) is None
    assert errno_of(set_filter, vcpu, 0x4000, 1, ALLOW) is None
    ready(vcpu)
    vcpu.run()
    assert reg(vcpu, "ID_AA64DFR0_EL1") >> 8 & 0xF == 1  # what the guest reads


def test_6_1_refuses_to_lower_pmuver_and_accepts_the_unchanged_value():
    _, (vcpu,) = make_vm("6.1", host=MAX)
    value = get_one_reg(vcpu, DFR0)
    assert errno_of(set_one_reg, vcpu, DFR0, value & ~0xF00 | 0x100) == E.EINVAL
    assert errno_of(set_one_reg, vcpu, DFR0, value) is None


# --- Order and state ------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["6.1", "6.12"])
@pytest.mark.parametrize("after_run", [False, True])
def test_after_pmu_init_every_attribute_is_ebusy(profile, after_run):
    _, (vcpu,) = make_vm(profile, host=MAX)
    ready(vcpu)
    if after_run:
        vcpu.run()
    for attr, payload in [(IRQ, struct.pack("<i", 23)), (IRQ, struct.pack("<i", 5)),
                          (INIT, None), (FILTER, u.kvm_pmu_event_filter(0, 1, 0).pack()),
                          (FILTER, u.kvm_pmu_event_filter(0xFFFF, 9, 7).pack()),
                          (SET_PMU, struct.pack("<i", 8))]:
        assert errno_of(set_attr, vcpu, attr, payload) == E.EBUSY


@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_a_vcpu_without_the_pmu_feature(profile):
    _, (vcpu,) = make_vm(profile, host=MAX, pmu=False)
    for attr in (IRQ, INIT, FILTER, SET_PMU):
        assert errno_of(has, vcpu, attr) == E.ENXIO
    assert errno_of(set_irq, vcpu) == E.ENODEV
    assert errno_of(get_irq, vcpu) == E.ENODEV
    assert errno_of(set_filter, vcpu, 0x11, 1, DENY) == E.ENODEV
    assert errno_of(pmu_init, vcpu) == E.ENODEV
    assert errno_of(get_one_reg, vcpu, PMCR) == E.ENOENT
    vcpu.run()
    with pytest.raises(Undefined):  # the guest's first PMU access
        reg(vcpu, "PMCR_EL0")


@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_the_first_vcpu_before_vcpu_init(profile):
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm

    vm = Kvm(MAX, PROFILES[profile]).create_vm()
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    vcpu = vm.create_vcpu(0)
    assert errno_of(has, vcpu, FILTER) == E.ENXIO
    assert errno_of(set_filter, vcpu, 0x11, 1, DENY) == E.ENODEV
    assert errno_of(set_irq, vcpu) == E.ENODEV
    assert errno_of(get_irq, vcpu) == E.ENODEV
    assert errno_of(set_attr, vcpu, SET_PMU, struct.pack("<i", 8)) == E.ENODEV
    assert errno_of(pmu_init, vcpu) == E.ENODEV
    assert vm.filter_bitmap() is None and vcpu.pmu_irq is None and vm.arm_pmu is None  # unchanged


# --- PMU INIT -------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_pmu_init_needs_an_irq_and_an_initialised_vgic(profile):
    vm, (v0, v1) = make_vm(profile, host=MAX, vcpus=2)  # vGIC created and initialised
    assert errno_of(pmu_init, v0) == E.ENXIO and errno_of(get_irq, v0) == E.ENXIO
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm

    vm = Kvm(MAX, PROFILES[profile]).create_vm()
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    vcpu = vm.create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, (1 << 3,) + (0,) * 6))
    assert errno_of(set_irq, vcpu) is None  # before the vGIC's CTRL_INIT
    assert errno_of(pmu_init, vcpu) == E.ENODEV
    vm.init_irqchip()
    assert errno_of(pmu_init, vcpu) is None


@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_without_a_vgic_the_pmu_line_goes_to_userspace(profile):
    _, (vcpu,) = make_vm(profile, host=MAX, irqchip=False)
    assert errno_of(set_irq, vcpu) == E.EINVAL and errno_of(get_irq, vcpu) == E.EINVAL
    assert errno_of(set_filter, vcpu, 0x1E, 1, DENY) is None
    assert errno_of(pmu_init, vcpu) is None
    assert vcpu.run().exit_reason == "KVM_EXIT_GUEST"  # the line is low: the guest runs
    reg(vcpu, "PMCR_EL0", 1)  # enables counters whose overflow bits hold reset junk
    exit_ = vcpu.exit_to_user() if vcpu.must_notify_user() else None
    assert exit_ is not None and exit_.exit_reason == "KVM_EXIT_INTR"
    assert exit_.errno == E.EINTR and exit_.device_irq_level & 4


# --- IRQ ------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_irq_rules(profile):
    _, (v0, v1) = make_vm(profile, host=MAX, vcpus=2)
    assert errno_of(get_irq, v0) == E.ENXIO
    assert errno_of(set_irq, v0, 23) is None
    assert errno_of(set_irq, v0, 23) == E.EBUSY
    assert errno_of(set_irq, v0, 24) == E.EINVAL
    assert get_irq(v0) == 23
    assert errno_of(set_irq, v1, 24) == E.EINVAL and errno_of(set_irq, v1, 23) is None
    _, (w0, w1, w2) = make_vm(profile, host=MAX, vcpus=3)
    assert errno_of(set_irq, w2, 15) == E.EINVAL and errno_of(set_irq, w2, 1020) == E.EINVAL
    assert errno_of(set_irq, w0, 40) is None
    assert errno_of(set_irq, w1, 40) == E.EINVAL
    assert errno_of(set_irq, w1, 23) == E.EINVAL
    assert errno_of(set_irq, w1, 41) is None


# --- FILTER details -------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_a_first_empty_deny_allows_everything_and_pad_is_ignored(profile):
    vm, (v0, v1) = make_vm(profile, host=MAX, vcpus=2)
    set_attr(v1, FILTER, u.kvm_pmu_event_filter(0x11, 0, DENY).pack())  # through vCPU 1
    set_attr(v1, FILTER, u.kvm_pmu_event_filter(0x11, 1, ALLOW, b"\xff\xff\xff").pack())
    for vcpu in (v0, v1):
        ready(vcpu)
        vcpu.run()
    assert vm.filter_bitmap() is not None and vm.event_allowed(0x23) and vm.event_allowed(0x11)
    reg(v0, "PMEVTYPER0_EL0", 0x11)
    reg(v0, "PMCNTENSET_EL0", 1)
    reg(v0, "PMCR_EL0", 1)
    v0.vpmu.count(1, {0x11: 5})
    assert reg(v0, "PMEVCNTR0_EL0") & 0xFFFFFFFF == (0xDBADC0DE + 5) & 0xFFFFFFFF


# --- PMCR_EL0.N through KVM_SET_ONE_REG -----------------------------------------------------

def test_6_1_stores_pmcr_n_as_written_before_and_after_a_run():
    _, (a, b) = make_vm("6.1", host=MAX, vcpus=2)
    set_one_reg(a, PMCR, 3 << 11)
    set_one_reg(b, PMCR, 7 << 11)  # above the host's 6
    for vcpu in (a, b):
        ready(vcpu)
        vcpu.run()
    assert reg(a, "PMCR_EL0") >> 11 & 0x1F == 3 and reg(b, "PMCR_EL0") >> 11 & 0x1F == 7
    with pytest.raises(Undefined):
        reg(a, "PMEVCNTR5_EL0")
    set_one_reg(a, PMCR, 4 << 11)  # after the run: stored too
    assert get_one_reg(a, PMCR) >> 11 & 0x1F == 4


def test_6_12_limits_pmcr_n_only_before_the_first_run():
    _, (vcpu,) = make_vm("6.12", host=MAX)
    assert errno_of(set_one_reg, vcpu, PMCR, 7 << 11) is None
    assert get_one_reg(vcpu, PMCR) >> 11 & 0x1F == 6  # ignored
    set_one_reg(vcpu, PMCR, 3 << 11)
    ready(vcpu)
    vcpu.run()
    assert reg(vcpu, "PMCR_EL0") >> 11 & 0x1F == 3
    assert errno_of(set_one_reg, vcpu, PMCR, 5 << 11) is None
    assert get_one_reg(vcpu, PMCR) >> 11 & 0x1F == 3  # after the run: ignored


def test_6_1_get_one_reg_pmcr_shows_c_until_pmu_init_and_the_first_run():
    _, (vcpu,) = make_vm("6.1", host=MAX)
    assert get_one_reg(vcpu, PMCR) & 0xFF == 0xAC
    ready(vcpu)
    assert get_one_reg(vcpu, PMCR) & 0xFF == 0xAC
    vcpu.run()
    assert get_one_reg(vcpu, PMCR) & 0xFF == 0xA8


# --- CHAIN ----------------------------------------------------------------------------------

def _chain(vcpu: Vcpu, even_event: int, counters=(0,)) -> None:
    reg(vcpu, "PMCR_EL0", 0x6)
    reg(vcpu, "PMOVSCLR_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMCNTENCLR_EL0", 0xFFFFFFFF)
    mask = 0
    for even in counters:
        reg(vcpu, f"PMEVTYPER{even}_EL0", even_event)
        reg(vcpu, f"PMEVTYPER{even + 1}_EL0", 0x1E)
        reg(vcpu, f"PMEVCNTR{even}_EL0", 0xFFFFFFFF)
        mask |= 3 << even
    reg(vcpu, "PMCNTENSET_EL0", mask)
    reg(vcpu, "PMCR_EL0", 1)


@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_chain_after_cpu_cycles_and_sw_incr_overflow(profile):
    _, (vcpu,) = running(profile)
    _chain(vcpu, 0x11, counters=(0, 2))
    vcpu.vpmu.count(1, {0x11: 1})
    assert reg(vcpu, "PMEVCNTR1_EL0") == 1 and reg(vcpu, "PMEVCNTR3_EL0") == 1
    assert reg(vcpu, "PMOVSSET_EL0") == 0x5  # the even counters' own bits, on both kernels
    _, (sw,) = running(profile)
    _chain(sw, 0x00)
    reg(sw, "PMSWINC_EL0", 1)
    assert reg(sw, "PMEVCNTR1_EL0") == 1 and reg(sw, "PMOVSSET_EL0") == 0x1


@pytest.mark.parametrize("profile", ["6.1", "6.12"])
def test_denying_chain_changes_nothing_denying_cpu_cycles_stops_the_pair(profile):
    vm, (vcpu,) = running(profile, filters=[(0x1E, 1, DENY)])
    _chain(vcpu, 0x11)
    vcpu.vpmu.count(1, {0x11: 1})
    assert reg(vcpu, "PMEVCNTR1_EL0") == 1
    pmceid0 = reg(vcpu, "PMCEID0_EL0")
    assert pmceid0 >> 30 & 1 == 0  # 6.12 advertises CHAIN; the denial clears bit 30
    _, (cyc,) = running(profile, filters=[(0x11, 1, DENY)])
    _chain(cyc, 0x11)
    cyc.vpmu.count(1, {0x11: 1})
    assert reg(cyc, "PMEVCNTR1_EL0") == 0
    _, (sw,) = running(profile, filters=[(0x11, 1, DENY)])
    _chain(sw, 0x00)
    reg(sw, "PMSWINC_EL0", 1)
    assert reg(sw, "PMEVCNTR1_EL0") == 1


@pytest.mark.parametrize("profile,host,wide", [("6.12", MAX, True), ("6.1", MAX, False),
                                               ("6.12", A57, False)])
def test_an_event_counter_past_0xffffffff(profile, host, wide):
    _, (vcpu,) = running(profile, host=host)
    reg(vcpu, "PMCR_EL0", 0x6)
    reg(vcpu, "PMOVSCLR_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMEVTYPER0_EL0", 0x11)
    reg(vcpu, "PMEVCNTR0_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMCNTENSET_EL0", 1)
    reg(vcpu, "PMCR_EL0", 1)
    vcpu.vpmu.count(1, {0x11: 1})
    assert reg(vcpu, "PMEVCNTR0_EL0") == (0x100000000 if wide else 0)
    assert reg(vcpu, "PMOVSSET_EL0") & 1


# --- Other kernels: 5.10.223 ----------------------------------------------------------------

def test_5_10_accepts_a_late_filter_through_a_second_vcpu():
    _, (v0, v1) = make_vm("5.10", host=MAX, vcpus=2)
    ready(v0)
    v0.run()
    assert errno_of(set_filter, v1, 0x11, 1, DENY) is None


def test_5_10_a_pmcr_write_keeping_e_recreates_events_so_a_late_filter_stops_a_counter():
    """Measured on 5.10 (max and cortex-a57): a CPU_CYCLES counter that counted through a
    FILTER denying it after the run stops at the guest's next PMCR_EL0 write of E = 1 (its
    perf event is recreated under the new bitmap), though E was 1 already."""
    _, (v0, v1) = make_vm("5.10", host=MAX, vcpus=2)
    ready(v0)
    v0.run()
    reg(v0, "PMEVTYPER0_EL0", 0x11)
    reg(v0, "PMEVCNTR0_EL0", 0)
    reg(v0, "PMCNTENSET_EL0", 1)
    reg(v0, "PMCR_EL0", 1)
    v0.vpmu.count(0, {0x11: 100})
    set_filter(v1, 0x11, 1, DENY)
    v0.vpmu.count(0, {0x11: 100})  # the event made before the FILTER still counts
    assert reg(v0, "PMEVCNTR0_EL0") == 200
    reg(v0, "PMCR_EL0", 1)
    v0.vpmu.count(0, {0x11: 100})
    assert reg(v0, "PMEVCNTR0_EL0") == 200


def test_5_10_has_no_set_pmu_nor_attribute_4_and_pmuver_4():
    _, (vcpu,) = make_vm("5.10", host=MAX)
    assert errno_of(has, vcpu, SET_PMU) == E.ENXIO and errno_of(has, vcpu, NR) == E.ENXIO
    assert errno_of(set_attr, vcpu, SET_PMU, struct.pack("<i", 8)) == E.ENXIO
    assert get_one_reg(vcpu, DFR0) >> 8 & 0xF == 4
    assert get_one_reg(vcpu, PMCR) == 0x410130AC  # PMCR reset as on 6.1
    value = get_one_reg(vcpu, DFR0)
    assert errno_of(set_one_reg, vcpu, DFR0, value & ~0xF00 | 0x100) == E.EINVAL
    ready(vcpu)
    vcpu.run()
    assert reg(vcpu, "PMCEID0_EL0") >> 30 & 1 == 0  # CHAIN not advertised


def test_5_10_runs_after_a_failed_pmu_init_with_a_pmu_that_reads_zero():
    _, (vcpu,) = make_vm("5.10", host=MAX)
    assert errno_of(pmu_init, vcpu) == E.ENXIO  # no IRQ
    vcpu.run()
    assert reg(vcpu, "PMCR_EL0") == 0 and reg(vcpu, "PMCEID0_EL0") == 0
    reg(vcpu, "PMCR_EL0", 1)
    assert reg(vcpu, "PMCR_EL0") == 0  # writes ignored, no UNDEF


def test_5_10_vcpu_without_the_pmu_feature():
    _, (vcpu,) = make_vm("5.10", host=MAX, pmu=False)
    assert get_one_reg(vcpu, DFR0) >> 8 & 0xF == 4  # the host's PMUVer (capped)
    assert errno_of(get_one_reg, vcpu, PMCR) is None
    vcpu.run()
    assert reg(vcpu, "PMCR_EL0") == 0 and reg(vcpu, "PMEVCNTR0_EL0") == 0


def test_5_10_stores_pmcr_n_as_written_and_keeps_c_after_the_run():
    _, (vcpu,) = make_vm("5.10", host=MAX)
    set_one_reg(vcpu, PMCR, get_one_reg(vcpu, PMCR) & ~0xF800 | 3 << 11)
    ready(vcpu)
    vcpu.run()
    value = get_one_reg(vcpu, PMCR)
    assert value >> 11 & 0x1F == 3 and value & 0x4  # C (bit 2) still set


def test_5_10_chained_pair_leaves_pmovsset_zero():
    _, (vcpu,) = running("5.10")
    _chain(vcpu, 0x11)
    vcpu.vpmu.count(1, {0x11: 1})
    assert reg(vcpu, "PMEVCNTR1_EL0") == 1 and reg(vcpu, "PMOVSSET_EL0") == 0


# --- Other kernels: 7.2 and 7.3 (latest) ----------------------------------------------------

def _nr(vcpu: Vcpu, n: int) -> int | None:
    return errno_of(set_attr, vcpu, NR, struct.pack("<I", n))


def test_latest_set_nr_counters():
    for n, expected, errno in [(3, 3, None), (0, 0, None), (6, 6, None), (7, None, E.EINVAL)]:
        _, (vcpu,) = make_vm("latest", host=MAX)
        assert errno_of(has, vcpu, NR) is None
        assert _nr(vcpu, n) == errno
        if expected is not None:
            ready(vcpu)
            vcpu.run()
            assert reg(vcpu, "PMCR_EL0") >> 11 & 0x1F == expected


def test_latest_set_nr_counters_through_vcpu_1_after_vcpu_0_ran():
    _, (v0, v1) = make_vm("latest", host=MAX, vcpus=2)
    ready(v0)
    v0.run()
    assert _nr(v1, 3) is None
    v0.run()  # vCPU 0 re-enters
    assert reg(v0, "PMCR_EL0") >> 11 & 0x1F == 3


def test_latest_one_reg_after_set_nr_counters_wins_and_set_pmu_resets_n():
    _, (vcpu,) = make_vm("latest", host=MAX)
    assert _nr(vcpu, 3) is None
    set_one_reg(vcpu, PMCR, 5 << 11)
    assert get_one_reg(vcpu, PMCR) >> 11 & 0x1F == 5
    set_attr(vcpu, SET_PMU, struct.pack("<i", 8))
    assert get_one_reg(vcpu, PMCR) >> 11 & 0x1F == 6


# --- Counting -------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["5.10", "6.1", "6.12", "latest"])
@pytest.mark.parametrize("filters", [[(0x00, 1, DENY)], [(0x00, 0, ALLOW)]])
def test_sw_incr_counts_even_denied_or_under_deny_all(profile, filters):
    _, (vcpu,) = running(profile, filters=filters)
    reg(vcpu, "PMCR_EL0", 0x6)
    reg(vcpu, "PMEVTYPER0_EL0", 0x00)
    reg(vcpu, "PMCNTENSET_EL0", 1)
    reg(vcpu, "PMCR_EL0", 1)
    reg(vcpu, "PMSWINC_EL0", 1)
    assert reg(vcpu, "PMEVCNTR0_EL0") == 1


@pytest.mark.parametrize("profile", ["5.10", "6.1", "6.12", "latest"])
def test_a_denied_inst_retired_does_not_count(profile):
    _, (vcpu,) = running(profile, filters=[(0x08, 1, DENY)])
    reg(vcpu, "PMCR_EL0", 0x6)
    reg(vcpu, "PMEVTYPER0_EL0", 0x08)
    reg(vcpu, "PMCNTENSET_EL0", 1)
    reg(vcpu, "PMCR_EL0", 1)
    vcpu.vpmu.count(1, {0x08: 26})
    assert reg(vcpu, "PMEVCNTR0_EL0") == 0


# --- Found by `kvmpmu conform --corpus` on the real kernels (README: "What the real kernels
# taught the model") --------------------------------------------------------------------------

@pytest.mark.parametrize("profile,answers", [("6.1", False), ("6.12", True), ("latest", True)])
def test_a_vcpu_not_yet_initialised_has_the_pmu_of_the_vms_features_from_6_7(profile, answers):
    # 6.12: vCPU 0 created but not initialised, vCPU 1 initialised with the PMU feature: vCPU
    # 0's HAS IRQ is 0 and SET IRQ succeeds (6.7 made the features VM-wide).
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm

    vm = Kvm(MAX, PROFILES[profile]).create_vm()
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    v0, v1 = vm.create_vcpu(0), vm.create_vcpu(1)
    v1.vcpu_init(u.kvm_vcpu_init(0, (1 << 3,) + (0,) * 6))
    assert (errno_of(has, v0, IRQ) is None) == answers
    assert errno_of(set_irq, v0) == (None if answers else E.ENODEV)


@pytest.mark.parametrize("profile,host,stored", [
    ("5.10", A57, 0xC800FFFF), ("6.1", A57, 0xC800FFFF), ("6.12", A57, 0xC80003FF),
    ("6.12", MAX, 0xC800FFFF), ("latest", MAX, 0xC800FFFF)])
def test_pmevtyper_keeps_what_each_kernel_keeps(profile, host, stored):
    # a guest write of 0xffffffff, read back (QEMU: no EL3, so no NSK/NSU/M from 6.7)
    _, (vcpu,) = running(profile, host=host)
    reg(vcpu, "PMEVTYPER0_EL0", 0xFFFFFFFF)
    reg(vcpu, "PMCCFILTR_EL0", 0xFFFFFFFF)
    assert reg(vcpu, "PMEVTYPER0_EL0") == stored and reg(vcpu, "PMCCFILTR_EL0") == stored


@pytest.mark.parametrize("profile,dfr0", [("5.10", 0x10305409), ("6.1", 0x10305506),
                                          ("6.12", 0x10305609)])
def test_debugver_is_limited_on_6_1_only(profile, dfr0):
    _, (vcpu,) = make_vm(profile, host=MAX)
    assert get_one_reg(vcpu, DFR0) == dfr0


@pytest.mark.parametrize("profile,pmcr", [("5.10", 0x410130FF), ("6.1", 0x410130F9)])
def test_a_guest_pmcr_write_stores_c_and_p_on_5_10_only(profile, pmcr):
    _, (vcpu,) = running(profile)
    reg(vcpu, "PMCR_EL0", 0xFFFFFFFF)
    assert get_one_reg(vcpu, PMCR) == pmcr


@pytest.mark.parametrize("profile,host,undef", [("6.1", A57, True), ("6.1", MAX, False),
                                               ("latest", A57, True), ("5.10", MAX, True)])
def test_pmmir_undefs_below_pmuv3p4(profile, host, undef):
    _, (vcpu,) = running(profile, host=host)
    if undef:
        with pytest.raises(Undefined):
            reg(vcpu, "PMMIR_EL1")
    else:
        assert reg(vcpu, "PMMIR_EL1") == 0


@pytest.mark.parametrize("profile,value", [("5.10", 0x8000005E), ("6.1", 0x8000001E),
                                           ("6.12", 0x80000006)])
def test_enable_bits_after_n_changes(profile, value):
    # reset junk 0xdbadc0de; N set to 7 (5.10) or 3 through KVM_SET_ONE_REG before the run
    _, (vcpu,) = make_vm(profile, host=MAX)
    n = 7 if profile == "5.10" else 3
    set_one_reg(vcpu, PMCR, get_one_reg(vcpu, PMCR) & ~0xF800 | n << 11)
    ready(vcpu)
    vcpu.run()
    assert reg(vcpu, "PMCNTENSET_EL0") == reg(vcpu, "PMOVSSET_EL0") == value


@pytest.mark.parametrize("profile,cycles", [("5.10", 0x1DE7EC7EDBADC0DE), ("6.1", 0),
                                            ("6.12", 0x1DE7EC7EDBADC0DE)])
def test_the_cycle_counter_after_the_first_run(profile, cycles):
    # The reset pattern, read in 64 bits; 6.1's first-run reload applies the reset PMCR's C
    _, (vcpu,) = running(profile, host=MAX)
    assert reg(vcpu, "PMCCNTR_EL0") == cycles
