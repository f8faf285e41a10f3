"""Byte-level checks of the uAPI layer against the kernel headers' numbers (semantics §1)."""

import struct

from kvmpmu.uapi import kvm as u


def test_ioctl_numbers_match_the_kernel_headers():
    assert u.KVM_SET_DEVICE_ATTR == 0x4018AEE1
    assert u.KVM_GET_DEVICE_ATTR == 0x4018AEE2
    assert u.KVM_HAS_DEVICE_ATTR == 0x4018AEE3
    assert u.KVM_ARM_VCPU_INIT == 0x4020AEAE
    assert u.KVM_ARM_PREFERRED_TARGET == 0x8020AEAF
    assert u.KVM_GET_ONE_REG == 0x4010AEAB
    assert u.KVM_SET_ONE_REG == 0x4010AEAC
    assert u.KVM_RUN == 0xAE80
    assert (u.KVM_CREATE_VM, u.KVM_CHECK_EXTENSION, u.KVM_CREATE_VCPU) == (0xAE01, 0xAE03, 0xAE41)


def test_pmu_attribute_constants():
    assert u.KVM_ARM_VCPU_PMU_V3 == 3
    assert u.KVM_ARM_VCPU_PMU_V3_CTRL == 0
    assert (u.KVM_ARM_VCPU_PMU_V3_IRQ, u.KVM_ARM_VCPU_PMU_V3_INIT, u.KVM_ARM_VCPU_PMU_V3_FILTER,
            u.KVM_ARM_VCPU_PMU_V3_SET_PMU, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS) == (0, 1, 2, 3, 4)
    assert (u.KVM_PMU_EVENT_ALLOW, u.KVM_PMU_EVENT_DENY) == (0, 1)
    assert u.KVM_CAP_ARM_PMU_V3 == 126


def test_kvm_device_attr_is_24_bytes_with_kernel_offsets():
    assert u.SIZEOF_KVM_DEVICE_ATTR == 24
    raw = u.kvm_device_attr(0x11223344, 0x55667788, 0x0102030405060708, 0xA1A2A3A4A5A6A7A8).pack()
    assert raw[0:4] == bytes.fromhex("44332211")  # flags at 0
    assert raw[4:8] == bytes.fromhex("88776655")  # group at 4
    assert raw[8:16] == bytes.fromhex("0807060504030201")  # attr at 8
    assert raw[16:24] == bytes.fromhex("a8a7a6a5a4a3a2a1")  # addr at 16
    assert u.kvm_device_attr.unpack(raw).addr == 0xA1A2A3A4A5A6A7A8


def test_kvm_pmu_event_filter_is_8_bytes_with_kernel_offsets():
    assert u.SIZEOF_KVM_PMU_EVENT_FILTER == 8
    raw = u.kvm_pmu_event_filter(0x4000, 0x40, 1).pack()
    assert raw == bytes([0x00, 0x40, 0x40, 0x00, 0x01, 0, 0, 0])
    assert struct.unpack("<HHB", raw[:5]) == (0x4000, 0x40, 1)
    assert u.kvm_pmu_event_filter.unpack(raw) == u.kvm_pmu_event_filter(0x4000, 0x40, 1)


def test_other_struct_sizes():
    assert u.SIZEOF_KVM_VCPU_INIT == 32
    assert u.SIZEOF_KVM_ONE_REG == 16


def test_one_reg_ids_of_pmu_registers():
    from kvmpmu.arch.sysregs import SYSREGS

    def rid(name):
        r = SYSREGS[name]
        return u.sysreg_one_reg_id(r.op0, r.op1, r.crn, r.crm, r.op2)

    assert rid("PMCR_EL0") == 0x603000000013DCE0
    assert rid("PMCEID1_EL0") == 0x603000000013DCE7
    assert rid("PMUSERENR_EL0") == 0x603000000013DCF0
    assert rid("PMINTENSET_EL1") == 0x603000000013C4F1
    assert rid("PMEVCNTR0_EL0") == 0x603000000013DF40
    assert rid("PMEVTYPER0_EL0") == 0x603000000013DF60
    assert rid("PMCCFILTR_EL0") == 0x603000000013DF7F
    assert rid("ID_AA64DFR0_EL1") == 0x603000000013C028


# Sizes, offsets and field widths as the kernel headers lay the structs out (LP64), written
# from the headers: include/uapi/linux/kvm.h and arch/arm64/include/uapi/asm/kvm.h.
HEADER_LAYOUTS = {
    "kvm_device_attr": (24, {"flags": (0, 4), "group": (4, 4), "attr": (8, 8),
                             "addr": (16, 8)}),
    "kvm_pmu_event_filter": (8, {"base_event": (0, 2), "nevents": (2, 2), "action": (4, 1),
                                 "pad": (5, 3)}),
    "kvm_vcpu_init": (32, {"target": (0, 4), "features": (4, 28)}),
    "kvm_one_reg": (16, {"id": (0, 8), "addr": (8, 8)}),
    "kvm_create_device": (12, {"type": (0, 4), "fd": (4, 4), "flags": (8, 4)}),
    "kvm_userspace_memory_region": (32, {"slot": (0, 4), "flags": (4, 4),
                                         "guest_phys_addr": (8, 8), "memory_size": (16, 8),
                                         "userspace_addr": (24, 8)}),
}


def test_every_field_packs_at_the_headers_offset_with_its_width():
    """Each field set alone to all ones: exactly its bytes, at its offset, are 0xff."""
    for name, (size, fields) in HEADER_LAYOUTS.items():
        struct_type = getattr(u, name)
        assert len(struct_type().pack()) == size, name
        for field, (offset, width) in fields.items():
            value = (b"\xff" * 3 if field == "pad" else (0xFFFFFFFF,) * 7
                     if field == "features" else (1 << 8 * width) - 1)
            raw = struct_type(**{field: value}).pack()
            assert raw == bytes(offset) + b"\xff" * width + bytes(size - offset - width), \
                (name, field)


def test_the_size_constants_are_the_structs_sizes():
    """The ioctl numbers encode SIZEOF_*: each must be the struct's own size."""
    for name, (size, _) in HEADER_LAYOUTS.items():
        assert getattr(u, f"SIZEOF_{name.upper()}") == size == len(getattr(u, name)().pack())


def test_structs_round_trip_through_their_bytes():
    init = u.kvm_vcpu_init(5, (1 << 3,) + (0,) * 6)
    assert u.kvm_vcpu_init.unpack(init.pack()) == init and list(init.features)[0] == 8
    flt = u.kvm_pmu_event_filter(0x11, 1, 1, b"\xff\x01\x02")
    assert flt.pack() == bytes([0x11, 0, 1, 0, 1, 0xFF, 1, 2])
    assert u.kvm_pmu_event_filter.unpack(flt.pack()) == flt != u.kvm_pmu_event_filter(0x11, 1, 1)
    region = u.kvm_userspace_memory_region(0, 0, 0x40000000, 0x4000000, 0x7F0000000000)
    assert struct.unpack("<IIQQQ", region.pack()) == (0, 0, 0x40000000, 0x4000000, 0x7F0000000000)


def test_the_other_ioctl_numbers():
    assert u.KVM_CREATE_DEVICE == 0xC00CAEE0
    assert u.KVM_SET_USER_MEMORY_REGION == 0x4020AE46
    assert (u.KVM_GET_API_VERSION, u.KVM_GET_VCPU_MMAP_SIZE) == (0xAE00, 0xAE04)


def test_core_register_ids_follow_struct_kvm_regs():
    # KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offsetof(struct kvm_regs, X) / 4
    assert u.CORE_REG_IDS["X0"] == 0x6030000000100000
    assert u.CORE_REG_IDS["X30"] == 0x6030000000100000 + 60
    assert u.CORE_REG_IDS["SP"] == 0x603000000010003E
    assert u.CORE_REG_IDS["PC"] == 0x6030000000100040
    assert u.CORE_REG_IDS["PSTATE"] == 0x6030000000100042
