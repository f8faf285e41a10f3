"""What a failing emulated ioctl says: its errno (semantics §2, §6) and the reason after it.

The reason is part of what users read: when the VMM stops on an unexpected errno, the CLI
prints `<ioctl>(<attr>) on vcpu<n> failed: <ERRNO>: <reason>` (the first test shows it).
Each case below makes one call fail the way the kernel's rules say it must and pins the
whole `ERRNO: reason` text, so a reason cannot silently go missing or lose its values.
"""

import struct

import pytest

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import KvmError
from kvmpmu.kvm.host import Host, generic_host
from kvmpmu.kvm.profiles import PROFILES
from kvmpmu.kvm.system import Kvm, Vcpu, Vm
from kvmpmu.uapi import kvm as u
from kvmpmu.uapi.one_reg import ONE_REG_IDS
from kvmpmu.vmm.memmap import GICD_BASE, GICR_BASE
from tests.clihelpers import run_cli
from tests.kvmhelpers import (
    ALLOW,
    DENY,
    PMU_FEATURE,
    ioctl_attr,
    make_vm,
    one_pmu_host,
    pmu_init,
    ready,
    set_attr,
    set_filter,
    set_irq,
    two_pmu_host,
)

NO_FEATURES = (0,) * 7
DFR0 = ONE_REG_IDS["ID_AA64DFR0_EL1"]


def test_the_reason_reaches_the_user(tmp_path):
    spec = tmp_path / "f.yaml"
    spec.write_text("filters:\n  - {action: deny, base_event: 0xfff0, nevents: 0x20}\n")
    result = run_cli("run", "--filter", str(spec))
    assert result.exit_code == 4
    assert ("f.yaml:2:5: error: KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_PMU_V3_FILTER) on vcpu0 "
            "failed: EINVAL: range 0xfff0+0x20 exceeds the 65536-event space") in result.output


# --- helpers: a VM at some stage, and one-register ioctls -----------------------------------

def bare_vm(profile: str = "latest", host: Host | None = None, vmm_cpu: int = 0) -> Vm:
    return Kvm(host or generic_host(), PROFILES[profile]).create_vm(vmm_cpu)


def one_reg(vcpu: Vcpu, request: int, reg_id: int, value: int = 0) -> None:
    mem = vcpu.memory
    addr = mem.put(value.to_bytes(8, "little"))
    vcpu.ioctl(request, mem.put(u.kvm_one_reg(reg_id, addr).pack()))


def dfr0_of(vcpu: Vcpu) -> int:
    mem = vcpu.memory
    addr = mem.alloc(8)
    vcpu.ioctl(u.KVM_GET_ONE_REG, mem.put(u.kvm_one_reg(DFR0, addr).pack()))
    return int.from_bytes(mem.read(addr, 8), "little")


def set_dfr0(vcpu: Vcpu, value: int) -> None:
    one_reg(vcpu, u.KVM_SET_ONE_REG, DFR0, value)


def ran(profile: str = "latest", vcpus: int = 1, **kw) -> tuple[Vm, list[Vcpu]]:
    vm, cpus = make_vm(profile, vcpus=vcpus, **kw)
    ready(cpus[0])
    cpus[0].run()
    return vm, cpus


def get_irq(vcpu: Vcpu, attr: int = u.KVM_ARM_VCPU_PMU_V3_IRQ) -> None:
    ioctl_attr(vcpu, u.KVM_GET_DEVICE_ATTR, attr, addr=vcpu.memory.alloc(4))


# --- the cases ------------------------------------------------------------------------------

def vcpu_id_too_large():
    bare_vm().create_vcpu(512)  # KVM_MAX_VCPU_ID on arm64 with a GICv3


def vcpu_id_twice():
    vm = bare_vm()
    vm.create_vcpu(3)
    vm.create_vcpu(3)


def vcpu_after_vgic_init():
    vm, _ = make_vm()
    vm.create_vcpu(1)


def second_irqchip():
    vm, _ = make_vm()
    vm.create_vgic()


def irqchip_after_a_run():
    vm, (vcpu,) = make_vm(irqchip=False)
    pmu_init(vcpu)
    vcpu.run()
    vm.create_vgic()


def vgic_init_without_vgic():
    bare_vm().init_irqchip()


def vgic_address_of_another_type():
    bare_vm().create_vgic().set_address(5, GICD_BASE)


def vgic_address_unaligned():
    bare_vm().create_vgic().set_address(u.KVM_VGIC_V3_ADDR_TYPE_DIST, GICD_BASE + 0x1000)


def vgic_address_twice():
    vgic = bare_vm().create_vgic()
    vgic.set_address(u.KVM_VGIC_V3_ADDR_TYPE_REDIST, GICR_BASE)
    vgic.set_address(u.KVM_VGIC_V3_ADDR_TYPE_REDIST, GICR_BASE)


def run_without_vgic_addresses():
    vm = bare_vm()
    vm.create_vgic()
    vcpu = vm.create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))
    vcpu.run()


def run_before_vgic_init():
    vm, (vcpu,) = make_vm(irqchip=False)
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    vcpu.run()


def unknown_ioctl():
    _, (vcpu,) = make_vm()
    vcpu.ioctl(0xAEFF, 0)


def vcpu_init_with_other_features():
    _, (vcpu,) = make_vm()
    vcpu.vcpu_init(u.kvm_vcpu_init(0, NO_FEATURES))


def vcpu_init_unlike_the_other_vcpus():
    vm = bare_vm()
    vm.create_vcpu(0).vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))
    vm.create_vcpu(1).vcpu_init(u.kvm_vcpu_init(0, NO_FEATURES))


def vcpu_init_on_an_imp_def_host():
    host = one_pmu_host({0x11}, pmuver=sr.PMUVER_IMP_DEF)
    bare_vm(host=host).create_vcpu(0).vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))


def vcpu_init_on_a_cpu_without_pmu(profile="latest"):
    vm = bare_vm(profile, host=one_pmu_host({0x11}), vmm_cpu=6)  # the PMU covers CPUs 0-3
    vm.create_vcpu(0).vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))
    set_irq(vm.vcpus[0])


def attr_of_another_group():
    _, (vcpu,) = make_vm()
    ioctl_attr(vcpu, u.KVM_SET_DEVICE_ATTR, 0, group=7)


def one_reg_before_vcpu_init():
    one_reg(bare_vm().create_vcpu(0), u.KVM_GET_ONE_REG, ONE_REG_IDS["PMCR_EL0"])


def one_reg_unknown():
    _, (vcpu,) = make_vm()
    one_reg(vcpu, u.KVM_GET_ONE_REG, 0x6030000000139999)


def one_reg_pmcr_without_pmu():
    _, (vcpu,) = make_vm(pmu=False)
    one_reg(vcpu, u.KVM_GET_ONE_REG, ONE_REG_IDS["PMCR_EL0"])


def run_before_vcpu_init():
    bare_vm().create_vcpu(0).run()


def run_without_pmu_init():
    _, (vcpu,) = make_vm()
    vcpu.run()


def run_with_an_irq_the_vgic_lacks():
    vm, (vcpu,) = make_vm(irqchip=False)
    pmu_init(vcpu)
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    vm.init_irqchip()
    vcpu.run()


def has_attr_without_pmu():
    _, (vcpu,) = make_vm(pmu=False)
    ioctl_attr(vcpu, u.KVM_HAS_DEVICE_ATTR, u.KVM_ARM_VCPU_PMU_V3_FILTER)


def get_filter():
    _, (vcpu,) = make_vm()
    get_irq(vcpu, u.KVM_ARM_VCPU_PMU_V3_FILTER)


def get_irq_without_irqchip():
    _, (vcpu,) = make_vm(irqchip=False)
    get_irq(vcpu)


def get_irq_without_pmu():
    _, (vcpu,) = make_vm(pmu=False)
    get_irq(vcpu)


def get_irq_not_set():
    _, (vcpu,) = make_vm()
    get_irq(vcpu)


def attr_without_pmu():
    _, (vcpu,) = make_vm(pmu=False)
    set_filter(vcpu, 0x11, 1, ALLOW)


def attr_after_pmu_init():
    _, (vcpu,) = make_vm()
    ready(vcpu)
    set_filter(vcpu, 0x11, 1, ALLOW)


def unknown_attr():
    _, (vcpu,) = make_vm()
    set_attr(vcpu, 9)


def irq_without_irqchip():
    _, (vcpu,) = make_vm(irqchip=False)
    set_irq(vcpu, 23)


def pmu_init_before_vgic_init():
    vm, (vcpu,) = make_vm(irqchip=False)
    vm.create_irqchip(GICD_BASE, GICR_BASE)
    set_irq(vcpu, 23)
    pmu_init(vcpu)


def pmu_init_without_irq():
    _, (vcpu,) = make_vm()
    pmu_init(vcpu)


def pmu_init_with_an_spi_the_vgic_lacks():
    _, (vcpu,) = make_vm()
    set_irq(vcpu, 300)  # an SPI number, but the vGIC has 256 interrupts
    pmu_init(vcpu)


def probe_on_a_cpu_without_usable_pmu():
    # 5.10 probes the PMU of the VMM's CPU at the first PMU attribute: CPU 6 has none
    vm = bare_vm("5.10", host=one_pmu_host({0x11}), vmm_cpu=6)
    vcpu = vm.create_vcpu(0)
    vcpu.vcpu_init(u.kvm_vcpu_init(0, PMU_FEATURE))
    set_filter(vcpu, 0x11, 1, ALLOW)


def default_pmu_on_a_cpu_without_pmu():
    vcpu_init_on_a_cpu_without_pmu("6.1")  # 5.18-6.6: chosen at the first PMU attribute


def set_pmu_unknown_type():
    _, (vcpu,) = make_vm(host=two_pmu_host())
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_PMU, struct.pack("<i", 42))


def set_pmu_after_a_run():
    _, (_, v1) = ran(vcpus=2, host=two_pmu_host())
    set_attr(v1, u.KVM_ARM_VCPU_PMU_V3_SET_PMU, struct.pack("<i", 9))


def set_pmu_other_than_the_filters():
    _, (vcpu,) = make_vm(host=two_pmu_host())
    set_filter(vcpu, 0x11, 1, ALLOW)
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_PMU, struct.pack("<i", 9))


def nr_counters_above_the_pmu():
    _, (vcpu,) = make_vm()
    set_attr(vcpu, u.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, struct.pack("<I", 7))


def irq_neither_ppi_nor_spi():
    _, (vcpu,) = make_vm()
    set_irq(vcpu, 15)


def ppi_unlike_the_other_vcpus():
    _, (v0, v1) = make_vm(vcpus=2)
    set_irq(v0, 23)
    set_irq(v1, 22)


def spi_of_another_vcpu():
    _, (v0, v1) = make_vm(vcpus=2)
    set_irq(v0, 40)
    set_irq(v1, 40)


def irq_twice():
    _, (vcpu,) = make_vm()
    set_irq(vcpu, 23)
    set_irq(vcpu, 23)


def filter_past_the_event_space():
    _, (vcpu,) = make_vm()
    set_filter(vcpu, 0xFFF0, 0x20, DENY)


def filter_past_a_10_bit_event_space():
    _, (vcpu,) = make_vm("6.1", host=generic_host(sr.PMUVER_IMP))
    set_filter(vcpu, 0x3FF, 2, ALLOW)


def filter_action_2():
    _, (vcpu,) = make_vm()
    set_filter(vcpu, 0x11, 1, 2)


def filter_after_a_run():
    _, (_, v1) = ran(vcpus=2)
    set_filter(v1, 0x11, 1, DENY)


def dfr0_change_on_6_1():
    _, (vcpu,) = make_vm("6.1")
    set_dfr0(vcpu, dfr0_of(vcpu) & ~0xF00 | 0x100)


def dfr0_change_after_a_run():
    _, (vcpu,) = ran()
    set_dfr0(vcpu, dfr0_of(vcpu) & ~0xF00 | 0x100)


def dfr0_change_of_another_field():
    _, (vcpu,) = make_vm()
    set_dfr0(vcpu, dfr0_of(vcpu) ^ 0xF0)  # ID_AA64DFR0_EL1.TraceVer, bits [7:4]


def dfr0_pmuver_raised():
    _, (vcpu,) = make_vm(host=generic_host(sr.PMUVER_V3P1))
    set_dfr0(vcpu, dfr0_of(vcpu) & ~0xF00 | 0x600)


def dfr0_debugver_raised():
    _, (vcpu,) = make_vm()  # the generic host's DebugVer is 9 (Armv8.4 debug)
    set_dfr0(vcpu, dfr0_of(vcpu) & ~0xF | 0xA)


def dfr0_debugver_below_v8_0():
    _, (vcpu,) = make_vm()
    set_dfr0(vcpu, dfr0_of(vcpu) & ~0xF | 0x5)


def attr_at_a_bad_address():
    _, (vcpu,) = make_vm()
    vcpu.ioctl(u.KVM_SET_DEVICE_ATTR, 0x1000)


CASES = [
    (vcpu_id_too_large, "EINVAL: vCPU id 512 out of range"),
    (vcpu_id_twice, "EEXIST: vcpu3 exists"),
    (vcpu_after_vgic_init, "EBUSY: vGIC already initialised"),
    (second_irqchip, "EEXIST: the VM already has an irqchip"),
    (irqchip_after_a_run, "EBUSY: a vCPU has run"),
    (vgic_init_without_vgic, "ENODEV: no vGIC"),
    (vgic_address_of_another_type, "ENODEV: address type 5 is not a GICv3 one"),
    (vgic_address_unaligned, f"EINVAL: 0x{GICD_BASE + 0x1000:x} is not 64 KiB aligned"),
    (vgic_address_twice, "EEXIST: address already set"),
    (run_without_vgic_addresses, "ENXIO: vGIC distributor or redistributor address not set"),
    (run_before_vgic_init, "EBUSY: vGIC not initialised (KVM_DEV_ARM_VGIC_CTRL_INIT)"),
    (unknown_ioctl, "ENOTTY: unknown ioctl 0xaeff"),
    (vcpu_init_with_other_features, "EINVAL: features differ from the first KVM_ARM_VCPU_INIT"),
    (vcpu_init_unlike_the_other_vcpus, "EINVAL: features differ from the VM's other vCPUs"),
    (vcpu_init_on_an_imp_def_host, "EINVAL: the host cannot give guests a PMUv3"),
    (vcpu_init_on_a_cpu_without_pmu, "ENODEV: no host PMU for the current CPU"),
    (attr_of_another_group, "ENXIO: group 7 not modelled"),
    (one_reg_before_vcpu_init, "ENOEXEC: vCPU not initialised"),
    (one_reg_unknown, "ENOENT: register 0x6030000000139999 not modelled"),
    (one_reg_pmcr_without_pmu, "ENOENT: no PMU: its registers are hidden"),
    (run_before_vcpu_init, "ENOEXEC: vCPU not initialised"),
    (run_without_pmu_init, "EINVAL: PMUv3 not initialised (KVM_ARM_VCPU_PMU_V3_INIT)"),
    (run_with_an_irq_the_vgic_lacks, "EINVAL: PMU IRQ not valid for the vGIC"),
    (has_attr_without_pmu, "ENXIO"),
    (get_filter, "ENXIO: attribute cannot be read"),
    (get_irq_without_irqchip, "EINVAL: no in-kernel irqchip"),
    (get_irq_without_pmu, "ENODEV: vCPU has no PMU"),
    (get_irq_not_set, "ENXIO: PMU IRQ not set"),
    (attr_without_pmu, "ENODEV: vCPU not initialised with KVM_ARM_VCPU_PMU_V3"),
    (attr_after_pmu_init, "EBUSY: PMUv3 already initialised on this vCPU"),
    (unknown_attr, "ENXIO: unknown attribute"),
    (irq_without_irqchip, "EINVAL: no in-kernel irqchip"),
    (pmu_init_before_vgic_init, "ENODEV: vGIC not initialised"),
    (pmu_init_without_irq, "ENXIO: PMU IRQ not set"),
    (pmu_init_with_an_spi_the_vgic_lacks, "EINVAL: IRQ 300 not valid for the vGIC"),
    (probe_on_a_cpu_without_usable_pmu, "ENODEV: no usable host PMU"),
    (default_pmu_on_a_cpu_without_pmu, "ENODEV: no host PMU for the current CPU"),
    (set_pmu_unknown_type, "ENXIO: no host PMU with type 42"),
    (set_pmu_after_a_run, "EBUSY: a vCPU of this VM has already run"),
    (set_pmu_other_than_the_filters, "EBUSY: an event filter exists and the PMU differs"),
    (nr_counters_above_the_pmu, "EINVAL: 7 counters exceed the PMU's 6"),
    (irq_neither_ppi_nor_spi, "EINVAL: IRQ 15 is neither a PPI nor an SPI"),
    (ppi_unlike_the_other_vcpus, "EINVAL: PPI 22 differs from vcpu0's"),
    (spi_of_another_vcpu, "EINVAL: SPI 40 already used by vcpu0"),
    (irq_twice, "EBUSY: PMU IRQ already set"),
    (filter_past_the_event_space, "EINVAL: range 0xfff0+0x20 exceeds the 65536-event space"),
    (filter_past_a_10_bit_event_space, "EINVAL: range 0x3ff+0x2 exceeds the 1024-event space"),
    (filter_action_2, "EINVAL: action 2 is neither ALLOW nor DENY"),
    (filter_after_a_run, "EBUSY: a vCPU of this VM has already run"),
    (dfr0_change_on_6_1, "EINVAL: ID registers cannot be changed before v6.2"),
    (dfr0_change_after_a_run, "EBUSY: the VM has run"),
    (dfr0_change_of_another_field, "EINVAL: only PMUVer (and from 6.6 DebugVer) may change"),
    (dfr0_pmuver_raised, "EINVAL: PMUVer 0x6 above the limit 0x4"),
    (dfr0_debugver_raised, "EINVAL: DebugVer 10 is not lower-safe"),
    (dfr0_debugver_below_v8_0, "EINVAL: DebugVer 5 is not lower-safe"),
    (attr_at_a_bad_address, "EFAULT: bad address 0x1000"),
]


@pytest.mark.parametrize("case,text", CASES, ids=[case.__name__ for case, _ in CASES])
def test_a_failing_call_says_why(case, text):
    with pytest.raises(KvmError) as failure:
        case()
    assert str(failure.value) == text
