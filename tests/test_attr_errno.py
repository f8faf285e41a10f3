"""One test per errno rule of the PMU device attributes (semantics §2.2, §2.5, §2.7).

Expected errnos are read off the document, not off the code.
"""

import errno as E
import struct

import pytest

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import generic_host
from kvmpmu.uapi import kvm as u
from kvmpmu.vmm.memmap import GICD_BASE, GICR_BASE
from tests.kvmhelpers import (
    ALL_PROFILES,
    ALLOW,
    DENY,
    errno_of,
    expect_errno,
    ioctl_attr,
    make_vm,
    pmu_init,
    ready,
    set_attr,
    set_filter,
    set_irq,
    two_pmu_host,
)

FILTER = u.KVM_ARM_VCPU_PMU_V3_FILTER


@ALL_PROFILES
def test_filter_on_vcpu_without_pmu_feature_is_enodev(profile):
    _, (vcpu,) = make_vm(profile, pmu=False)
    expect_errno(E.ENODEV, set_filter, vcpu, 0x11, 1, ALLOW)


@ALL_PROFILES
def test_filter_on_uninitialised_vcpu_is_enodev(profile):
    from kvmpmu.kvm.host import generic_host
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm

    vm = Kvm(generic_host(), PROFILES[profile]).create_vm()
    vcpu = vm.create_vcpu(0)
    expect_errno(E.ENODEV, set_filter, vcpu, 0x11, 1, ALLOW)


@ALL_PROFILES
def test_filter_after_this_vcpus_init_is_ebusy_even_when_malformed(profile):
    _, (vcpu,) = make_vm(profile)
    ready(vcpu)
    expect_errno(E.EBUSY, set_filter, vcpu, 0x11, 1, ALLOW)
    expect_errno(E.EBUSY, set_filter, vcpu, 0xFFF0, 0x20, 7)  # EBUSY comes before validation


@ALL_PROFILES
def test_filter_through_another_uninitialised_vcpu_after_init_is_allowed(profile):
    vm, (v0, v1) = make_vm(profile, vcpus=2)
    ready(v0)
    set_filter(v1, 0x11, 1, DENY)
    assert vm.filter_bitmap() is not None and not vm.event_allowed(0x11)


@ALL_PROFILES
def test_filter_payload_at_bad_address_is_efault(profile):
    _, (vcpu,) = make_vm(profile)
    expect_errno(E.EFAULT, ioctl_attr, vcpu, u.KVM_SET_DEVICE_ATTR, FILTER, addr=0x1000)


@ALL_PROFILES
def test_attr_struct_at_bad_address_is_efault(profile):
    _, (vcpu,) = make_vm(profile)
    expect_errno(E.EFAULT, vcpu.ioctl, u.KVM_SET_DEVICE_ATTR, 0xDEAD0000)


@pytest.mark.parametrize("base,nevents,ok", [
    (0xFFF0, 0x20, False),   # ends past 65536
    (0xFFFF, 1, True),       # the largest legal end is exactly nr_events
    (0xFFFF, 2, False),
    (0x10000 - 0x40, 0x40, True),
    (0, 0xFFFF, True),
])
def test_filter_range_check_on_16_bit_event_space(base, nevents, ok):
    _, (vcpu,) = make_vm("latest")
    assert errno_of(set_filter, vcpu, base, nevents, DENY) == (None if ok else E.EINVAL)


@pytest.mark.parametrize("profile", ["5.10", "6.1", "latest"])
@pytest.mark.parametrize("base,nevents,ok", [
    (0x3FF, 1, True), (0x400, 0, True), (0x400, 1, False), (0x4000, 0x40, False), (0, 0x400, True),
])
def test_filter_range_check_on_10_bit_event_space(profile, base, nevents, ok):
    _, (vcpu,) = make_vm(profile, host=generic_host(sr.PMUVER_IMP))
    assert errno_of(set_filter, vcpu, base, nevents, ALLOW) == (None if ok else E.EINVAL)


@ALL_PROFILES
@pytest.mark.parametrize("action", [2, 3, 0xFF])
def test_filter_action_other_than_allow_or_deny_is_einval(profile, action):
    _, (vcpu,) = make_vm(profile)
    expect_errno(E.EINVAL, set_filter, vcpu, 0x11, 1, action)


@pytest.mark.parametrize("profile", ["6.1", "6.6", "6.12", "latest"])
def test_filter_after_vm_ran_is_ebusy_from_5_18(profile):
    vm, (v0, v1) = make_vm(profile, vcpus=2)
    ready(v0)
    v0.run()
    expect_errno(E.EBUSY, set_filter, v1, 0x11, 1, ALLOW)
    # validation happens first: an invalid filter after the run is EINVAL, not EBUSY
    expect_errno(E.EINVAL, set_filter, v1, 0xFFF0, 0x20, ALLOW)
    expect_errno(E.EINVAL, set_filter, v1, 0x11, 1, 2)
    assert vm.filter_bitmap() is None


@pytest.mark.parametrize("profile", ["5.10", "5.15"])
def test_filter_after_vm_ran_is_still_accepted_before_5_18(profile):
    vm, (v0, v1) = make_vm(profile, vcpus=2)
    ready(v0)
    v0.run()
    set_filter(v1, 0x11, 1, DENY)
    assert vm.filter_bitmap() is not None and not vm.event_allowed(0x11)


@ALL_PROFILES
def test_unknown_attribute_is_enxio(profile):
    _, (vcpu,) = make_vm(profile)
    expect_errno(E.ENXIO, set_attr, vcpu, 9)


@ALL_PROFILES
def test_unknown_group_is_enxio(profile):
    _, (vcpu,) = make_vm(profile)
    expect_errno(E.ENXIO, ioctl_attr, vcpu, u.KVM_SET_DEVICE_ATTR, 0, group=7)


@pytest.mark.parametrize("profile,known", [("5.10", False), ("5.15", False), ("6.1", True),
                                           ("latest", True)])
def test_set_pmu_exists_from_5_18(profile, known):
    vm, (vcpu,) = make_vm(profile)
    got = errno_of(set_attr, vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_PMU, struct.pack("<i", 8))
    assert got == (None if known else E.ENXIO)


@pytest.mark.parametrize("profile,known", [("6.12", False), ("latest", True)])
def test_set_nr_counters_exists_from_6_16(profile, known):
    _, (vcpu,) = make_vm(profile)
    got = errno_of(set_attr, vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 2))
    assert got == (None if known else E.ENXIO)


def test_set_nr_counters_above_the_pmu_is_einval_and_bad_pointer_efault():
    vm, (vcpu,) = make_vm("latest")
    attr = u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS
    expect_errno(E.EINVAL, set_attr, vcpu, attr, struct.pack("<I", 7))  # generic host has 6
    expect_errno(E.EFAULT, set_attr, vcpu, attr, addr=0x10)
    set_attr(vcpu, attr, struct.pack("<I", 0))
    assert vm.nr_counters == 0


@pytest.mark.parametrize("profile,expected", [
    ("5.10", {0, 1, 2}), ("6.1", {0, 1, 2, 3}), ("6.12", {0, 1, 2, 3}), ("latest", {0, 1, 2, 3, 4}),
])
def test_has_device_attr_per_version(profile, expected):
    _, (vcpu,) = make_vm(profile)
    ok = {a for a in range(6)
          if errno_of(ioctl_attr, vcpu, u.KVM_HAS_DEVICE_ATTR, a) is None}
    assert ok == expected


@ALL_PROFILES
def test_has_device_attr_without_pmu_is_enxio(profile):
    _, (vcpu,) = make_vm(profile, pmu=False)
    expect_errno(E.ENXIO, ioctl_attr, vcpu, u.KVM_HAS_DEVICE_ATTR, u.KVM_ARM_VCPU_PMU_V3_IRQ)


def test_has_device_attr_does_not_depend_on_init_or_run():
    _, (vcpu,) = make_vm("latest")
    ready(vcpu)
    vcpu.run()
    ioctl_attr(vcpu, u.KVM_HAS_DEVICE_ATTR, FILTER)


def test_get_device_attr_reads_the_irq_but_never_the_filter():
    vm, (vcpu,) = make_vm("latest")
    out = vm.memory.alloc(4)
    expect_errno(E.ENXIO, ioctl_attr, vcpu, u.KVM_GET_DEVICE_ATTR, u.KVM_ARM_VCPU_PMU_V3_IRQ,
                 addr=out)  # not set yet
    set_irq(vcpu, 23)
    ioctl_attr(vcpu, u.KVM_GET_DEVICE_ATTR, u.KVM_ARM_VCPU_PMU_V3_IRQ, addr=out)
    assert struct.unpack("<i", vm.memory.read(out, 4))[0] == 23
    set_filter(vcpu, 0x11, 1, ALLOW)
    expect_errno(E.ENXIO, ioctl_attr, vcpu, u.KVM_GET_DEVICE_ATTR, FILTER, addr=out)


def test_get_irq_without_irqchip_is_einval():
    vm, (vcpu,) = make_vm("latest", irqchip=False)
    expect_errno(E.EINVAL, ioctl_attr, vcpu, u.KVM_GET_DEVICE_ATTR, u.KVM_ARM_VCPU_PMU_V3_IRQ,
                 addr=vm.memory.alloc(4))


def test_irq_without_in_kernel_irqchip_is_einval():
    _, (vcpu,) = make_vm("latest", irqchip=False)
    expect_errno(E.EINVAL, set_irq, vcpu, 23)


@pytest.mark.parametrize("irq,ok", [(15, False), (16, True), (31, True), (32, True),
                                    (1019, True), (1020, False), (-1, False)])
def test_irq_must_be_a_ppi_or_spi(irq, ok):
    _, (vcpu,) = make_vm("latest")
    assert errno_of(set_irq, vcpu, irq) == (None if ok else E.EINVAL)


def test_irq_bad_pointer_is_efault():
    _, (vcpu,) = make_vm("latest")
    expect_errno(E.EFAULT, set_attr, vcpu, u.KVM_ARM_VCPU_PMU_V3_IRQ, addr=0x20)


def test_ppi_must_be_the_same_on_every_vcpu_and_spis_distinct():
    _, (v0, v1, v2) = make_vm("latest", vcpus=3)
    set_irq(v0, 23)
    expect_errno(E.EINVAL, set_irq, v1, 22)
    set_irq(v1, 23)
    _, (w0, w1) = make_vm("latest", vcpus=2)
    set_irq(w0, 40)
    expect_errno(E.EINVAL, set_irq, w1, 40)
    set_irq(w1, 41)


def test_irq_set_twice_is_ebusy_for_a_ppi_and_einval_for_the_same_spi():
    _, (vcpu,) = make_vm("latest")
    set_irq(vcpu, 23)
    expect_errno(E.EBUSY, set_irq, vcpu, 23)
    _, (w,) = make_vm("latest")
    set_irq(w, 40)
    expect_errno(E.EINVAL, set_irq, w, 40)  # pmu_irq_is_valid() sees its own SPI first
    expect_errno(E.EBUSY, set_irq, w, 41)


def test_init_needs_an_initialised_vgic():
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm

    vm = Kvm(generic_host(), PROFILES["latest"]).create_vm()
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    vcpu = vm.create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, (8, 0, 0, 0, 0, 0, 0)))
    set_irq(vcpu)
    expect_errno(E.ENODEV, pmu_init, vcpu)


def test_init_without_irq_is_enxio_and_spi_outside_vgic_is_einval():
    _, (vcpu,) = make_vm("latest")
    expect_errno(E.ENXIO, pmu_init, vcpu)
    set_irq(vcpu, 300)  # a valid SPI number, but the default vGIC has 256 interrupts
    expect_errno(E.EINVAL, pmu_init, vcpu)


def test_init_without_in_kernel_irqchip_succeeds_and_second_init_is_ebusy():
    _, (vcpu,) = make_vm("latest", irqchip=False)
    pmu_init(vcpu)
    expect_errno(E.EBUSY, pmu_init, vcpu)


def test_first_run_without_pmu_init_is_einval_and_does_not_mark_the_vm():
    vm, (v0, v1) = make_vm("latest", vcpus=2)
    expect_errno(E.EINVAL, v0.run)
    assert not vm.ran_once
    set_filter(v1, 0x11, 1, ALLOW)  # still accepted: nothing has run


def test_run_before_vcpu_init_is_enoexec():
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm

    vm = Kvm(generic_host(), PROFILES["latest"]).create_vm()
    expect_errno(E.ENOEXEC, vm.create_vcpu(0).run)


@pytest.mark.parametrize("profile,ok", [("6.1", True), ("6.6", False), ("latest", False)])
def test_non_uniform_pmuver_has_no_vpmu_from_6_6(profile, ok):
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm

    host = two_pmu_host(sr.PMUVER_V3P5, sr.PMUVER_V3P1)
    vcpu = Kvm(host, PROFILES[profile]).create_vm().create_vcpu(0)
    got = errno_of(vcpu.vcpu_init, u.kvm_vcpu_init(0, (8, 0, 0, 0, 0, 0, 0)))
    assert got == (None if ok else E.EINVAL)


def test_set_pmu_rules():
    vm, (v0, v1) = make_vm("latest", host=two_pmu_host(), vcpus=2)
    attr = u.KVM_ARM_VCPU_PMU_V3_SET_PMU
    expect_errno(E.ENXIO, set_attr, v0, attr, struct.pack("<i", 42))
    expect_errno(E.EFAULT, set_attr, v0, attr, addr=0x30)
    set_filter(v0, 0x11, 1, ALLOW)
    # the default PMU is the VMM CPU's (big, type 8): switching to little with a filter is EBUSY
    expect_errno(E.EBUSY, set_attr, v0, attr, struct.pack("<i", 9))
    set_attr(v0, attr, struct.pack("<i", 8))  # re-selecting the same PMU is fine
    ready(v0)
    v0.run()
    expect_errno(E.EBUSY, set_attr, v1, attr, struct.pack("<i", 8))


def test_set_pmu_resets_n_to_the_new_pmus_maximum():
    vm, (v0,) = make_vm("latest", host=two_pmu_host())
    set_attr(v0, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 2))
    assert vm.nr_counters == 2
    set_attr(v0, u.KVM_ARM_VCPU_PMU_V3_SET_PMU, struct.pack("<i", 9))
    assert vm.nr_counters == 4  # little has 4 counters


def test_run_outside_the_selected_pmus_cpus_fails_entry():
    vm, (v0,) = make_vm("latest", host=two_pmu_host())
    set_attr(v0, u.KVM_ARM_VCPU_PMU_V3_SET_PMU, struct.pack("<i", 9))  # little: CPUs 4-7
    ready(v0)
    exit_ = v0.run()  # the vCPU thread runs on CPU 0
    assert exit_.exit_reason == "KVM_EXIT_FAIL_ENTRY"
    assert exit_.hardware_entry_failure_reason == u.KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED
    assert exit_.cpu == 0
    v0.cpu = 5
    assert v0.run().exit_reason == "KVM_EXIT_GUEST"


def test_5_10_probes_imp_def_pmu_as_unusable():
    from kvmpmu.kvm.profiles import PROFILES
    from kvmpmu.kvm.system import Kvm
    from tests.kvmhelpers import one_pmu_host

    host = one_pmu_host({0x11}, pmuver=sr.PMUVER_IMP_DEF)
    vcpu = Kvm(host, PROFILES["5.10"]).create_vm().create_vcpu(0)
    expect_errno(E.EINVAL, vcpu.vcpu_init, u.kvm_vcpu_init(0, (8, 0, 0, 0, 0, 0, 0)))
    assert Kvm(host, PROFILES["5.10"]).check_extension(u.KVM_CAP_ARM_PMU_V3) == 0
