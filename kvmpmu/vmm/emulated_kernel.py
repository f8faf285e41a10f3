"""The `emulated` backend: kvmpmu's model of the kernel (kvmpmu/kvm), driven through its
ioctl interface with structs packed into emulated user memory, and guests run by the scripted
engine or the CPU-emulated one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import GuestError
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.kvm.system import Kvm, RunExit, Vcpu, Vm
from kvmpmu.uapi import kvm as uapi
from kvmpmu.vmm import mailbox
from kvmpmu.vmm.backend import (
    DefaultImage,
    GuestImage,
    GuestOutput,
    ProgramImage,
    ScriptImage,
)
from kvmpmu.vmm.results import CounterResult, Mmio, VcpuExit, VcpuResult

if TYPE_CHECKING:
    from kvmpmu.vmm.guest import GuestStop

_SLOT = {"exit": mailbox.EXIT, "end": mailbox.END, "vmm": mailbox.VMM_CALL}


class Engine(Protocol):
    output: GuestOutput

    def resume(self) -> GuestStop: ...


class EmulatedBackend:
    name = "emulated"

    def __init__(self, host: Host, profile: KernelProfile, vmm_cpu: int = 0) -> None:
        self.profile = profile
        self.kvm = Kvm(host, profile)
        self.vm: Vm = self.kvm.create_vm(vmm_cpu)
        mem = self.kvm.memory
        self._payload = mem.alloc(16)
        self._struct = mem.alloc(uapi.SIZEOF_KVM_DEVICE_ATTR)
        self._images: dict[int, GuestImage] = {}
        self._engines: dict[int, Engine] = {}
        self.vcpu_cpus: tuple[int, ...] = (vmm_cpu,)  # where vCPU threads run, round robin

    def vcpu(self, index: int) -> Vcpu:
        return next(v for v in self.vm.vcpus if v.index == index)

    # --- the calls ---------------------------------------------------------------------------

    def create_vcpu(self, index: int) -> None:
        vcpu = self.vm.create_vcpu(index)
        vcpu.cpu = self.vcpu_cpus[index % len(self.vcpu_cpus)]

    def vcpu_init(self, index: int, features: int) -> None:
        self.vcpu(index).vcpu_init(uapi.kvm_vcpu_init(0, (features,) + (0,) * 6))

    def create_vgic(self, dist: int, redist: int) -> None:
        self.vm.create_irqchip(dist, redist)

    def init_vgic(self) -> None:
        self.vm.init_irqchip()

    def device_attr(self, request: int, index: int, attr: int, payload: bytes) -> bytes:
        mem = self.kvm.memory
        if payload:
            mem.write(self._payload, payload)
        raw = uapi.kvm_device_attr(0, uapi.KVM_ARM_VCPU_PMU_V3_CTRL, attr, self._payload)
        mem.write(self._struct, raw.pack())
        self.vcpu(index).ioctl(request, self._struct)
        return mem.read(self._payload, len(payload)) if payload else b""

    def one_reg(self, request: int, index: int, reg_id: int, value: int = 0) -> int:
        mem = self.kvm.memory
        mem.write(self._payload, value.to_bytes(8, "little"))
        mem.write(self._struct, uapi.kvm_one_reg(reg_id, self._payload).pack())
        self.vcpu(index).ioctl(request, self._struct)
        return int.from_bytes(mem.read(self._payload, 8), "little")

    # --- guests and KVM_RUN -------------------------------------------------------------------

    def load_guest(self, index: int, image: GuestImage) -> None:
        self._images[index] = image

    def run(self, index: int) -> VcpuExit:
        vcpu = self.vcpu(index)
        entry = vcpu.run()
        if entry.exit_reason != "KVM_EXIT_GUEST":
            return _exit(entry)
        stop = self._engine(vcpu).resume()
        if stop.kind == "irq":
            return _exit(vcpu.exit_to_user())
        vcpu.update_run()
        level = None if self.vm.irqchip_in_kernel else vcpu.run_device_irq_level
        if stop.kind == "system_event":  # PSCI SYSTEM_OFF or SYSTEM_RESET
            return VcpuExit("SYSTEM_EVENT", device_irq_level=level)
        slot = mailbox.BASE + _SLOT[stop.kind]
        return VcpuExit("MMIO", Mmio(slot, 8, stop.index), device_irq_level=level)

    def output(self, index: int) -> GuestOutput:
        engine = self._engines.get(index)
        return engine.output if engine is not None else GuestOutput()

    def close(self) -> None:
        """Nothing to release: the emulated kernel is plain objects."""

    def vcpu_indices(self) -> list[int]:
        return [v.index for v in self.vm.vcpus]

    def result(self, index: int, catalog: Catalog) -> VcpuResult:
        return _vcpu_result(self.vcpu(index), self.output(index), catalog)

    def host_pmu(self) -> HostPmu | None:
        """Where the first vCPU runs, or the VM's PMU; before any vCPU, the VMM's CPU's."""
        vm = self.vm
        if not vm.vcpus:
            return vm.default_pmu()
        return vm.pmceid_source(vm.vcpus[0]) or vm.host.pmu_for_cpu(vm.vcpus[0].cpu)

    def _engine(self, vcpu: Vcpu) -> Engine:
        engine = self._engines.get(vcpu.index)
        if engine is None:
            engine = self._engines[vcpu.index] = self._start(vcpu)
        return engine

    def _start(self, vcpu: Vcpu) -> Engine:
        """The vCPU's guest, built at its first KVM_RUN (the default workload then knows the
        number of counters)."""
        from kvmpmu.vmm.guest import ScriptedGuest  # no guest runs in show-pmceid or validate

        image = self._images.get(vcpu.index, ScriptImage(()))
        watch = not self.vm.irqchip_in_kernel
        if isinstance(image, ScriptImage):
            return ScriptedGuest(vcpu, image.steps, watch)
        if isinstance(image, DefaultImage):
            from kvmpmu.vmm.default_workload import default_workload

            steps = default_workload(image.named_events, vcpu.vpmu.nr_counters).steps_for(0)
            return ScriptedGuest(vcpu, steps, watch)
        return _cpu_engine(vcpu, image, watch)


def _exit(entry: RunExit) -> VcpuExit:
    reason = entry.exit_reason.removeprefix("KVM_EXIT_")
    if reason == "FAIL_ENTRY":
        return VcpuExit(reason, fail_reason=entry.hardware_entry_failure_reason, cpu=entry.cpu)
    return VcpuExit(reason, device_irq_level=entry.device_irq_level, errno=entry.errno)


def _cpu_engine(vcpu: Vcpu, image: ProgramImage, watch: bool) -> Engine:
    from kvmpmu.vmm.cpu_engine import CpuEngine

    try:
        return CpuEngine(vcpu, image, watch)
    except GuestError as err:
        raise GuestError(f"vcpu{vcpu.index}: {err.message}", hint=err.hint) from None


def _counters(vcpu: Vcpu, catalog: Catalog) -> list[CounterResult]:
    vpmu, arch = vcpu.vpmu, vcpu.arch
    pmu = vcpu.counting_pmu()
    out = []
    for idx in list(range(vpmu.nr_counters)) + [sr.CYCLE_IDX]:
        event = ev.CPU_CYCLES if idx == sr.CYCLE_IDX else vpmu.evtype[idx] & vpmu.event_mask
        allowed = arch.profile.unfilterable(event) or arch.event_allowed(event)
        out.append(CounterResult(
            counter=idx, event=event, name=catalog.name_of(event),
            enabled=vpmu.enabled(idx), allowed=allowed,
            implemented=event == ev.SW_INCR or bool(pmu and pmu.implements(event)),
            value=vpmu.counter_value(idx), overflow=bool(vpmu.pmovs >> idx & 1)))
    return out


def _vcpu_result(vcpu: Vcpu, output: GuestOutput, catalog: Catalog) -> VcpuResult:
    """A vCPU without a PMU (not initialised, or without the feature) shows none."""
    pmu = vcpu.has_pmu
    return VcpuResult(
        vcpu=vcpu.index, pmceid0=vcpu.guest_pmceid(0) if pmu else 0,
        pmceid1=vcpu.guest_pmceid(1) if pmu else 0,
        pmcr=vcpu.vpmu.read_pmcr() if pmu else 0,
        counters=_counters(vcpu, catalog) if pmu else [], reads=output.reads,
        undefined=output.undefined, irq_level=pmu and vcpu.vpmu.irq_level, ran=vcpu.has_run,
        reports=output.reports, guest=output.stats, console=output.console, state=output.state)
