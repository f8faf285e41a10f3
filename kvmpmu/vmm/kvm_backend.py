"""The `kvm` backend: the same VMM calls on the real /dev/kvm of an arm64 host.

The VM has 64 MiB of RAM at RAM_BASE (one memslot), the vGIC where QEMU's virt has it, and no
memory at the mailbox page, so the guest's stores there are MMIO exits. Scripted workloads
run as compiled guest programs (vmm/scriptprog.py), one per vCPU at its own 2 MiB of RAM;
`guest:` programs are loaded as they are (all vCPUs share RAM). A watchdog (SIGALRM) ends a
`run` that does not come back within `timeout` seconds.
"""

from __future__ import annotations

import errno
import mmap
import os
import platform
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from kvmpmu.arch import events as ev
from kvmpmu.arch.catalog import Catalog
from kvmpmu.arch.cpuregs import PSTATE_RESET
from kvmpmu.arch.sysregs import CYCLE_IDX
from kvmpmu.devkvm.fds import DeviceFd, KvmFd, VcpuFd
from kvmpmu.devkvm.run import RunState, complete_mmio_read, read_run
from kvmpmu.errors import GuestError, KvmError, KvmUnavailable
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.kvm.profiles import KernelProfile, profile_for_release
from kvmpmu.uapi import kvm as uapi
from kvmpmu.uapi.one_reg import ONE_REG_IDS, cpu_reg_one_reg_id
from kvmpmu.vmm import mailbox
from kvmpmu.vmm.backend import (
    DefaultImage,
    GuestImage,
    GuestOutput,
    ProgramImage,
    ScriptImage,
)
from kvmpmu.vmm.kvm_host import probe_host
from kvmpmu.vmm.memmap import RAM_BASE, RAM_SIZE
from kvmpmu.vmm.results import CounterResult, Mmio, VcpuExit, VcpuResult
from kvmpmu.vmm.scriptprog import ScriptDecoder, compile_steps
from kvmpmu.vmm.state import counters_of

DEFAULT_TIMEOUT = 10.0
SCRIPT_SLOT = 0x200000  # each vCPU's compiled script: 2 MiB of RAM from RAM_BASE + 0x80000
_PC = ONE_REG_IDS["PC"]
_PMCR = ONE_REG_IDS["PMCR_EL0"]
MAX_CONSOLE_LINE = 4096


def kvm_machine(timeout: float = DEFAULT_TIMEOUT) -> KvmMachine:
    """The machine this is: arm64 with /dev/kvm, else KvmUnavailable."""
    arch = platform.machine()
    if arch not in ("aarch64", "arm64"):
        raise KvmUnavailable(f"the kvm backend needs an arm64 host with KVM; this is {arch}",
                             hint="use --backend emulated (the default) here")
    try:
        kvm = KvmFd()
    except KvmError as err:
        raise KvmUnavailable(f"cannot open /dev/kvm: {err.message}",
                             hint="is KVM enabled, and may this user open /dev/kvm?") from None
    return KvmMachine(kvm, timeout)


_EXCEPTION_REGS = tuple((name.upper(), cpu_reg_one_reg_id(name, PSTATE_RESET))
                        for name in ("elr_el1", "esr_el1", "far_el1", "vbar_el1"))


def _where(vcpu: VcpuFd) -> str:
    """The PC, and the registers of the last exception the guest took (a guest stuck in its
    vectors shows why it got there)."""
    def read(reg_id: int) -> str:
        try:
            return f"0x{vcpu.one_reg(uapi.KVM_GET_ONE_REG, reg_id):x}"
        except KvmError:
            return "?"

    return ", ".join([f"pc {read(_PC)}"] + [f"{name} {read(reg)}" for name, reg in
                                             _EXCEPTION_REGS])


class KvmMachine:
    name = "kvm"

    def __init__(self, kvm: KvmFd, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.kvm = kvm
        self.timeout = timeout
        self.release = os.uname().release
        self.profile: KernelProfile = profile_for_release(self.release)
        self.host: Host = probe_host(kvm)

    def backend(self, vcpu_cpus: tuple[int, ...]) -> KvmBackend:
        return KvmBackend(self, vcpu_cpus)


@dataclass
class _Guest:
    entry: int
    decoder: ScriptDecoder | None  # a compiled script's
    output: GuestOutput = field(default_factory=GuestOutput)
    started: bool = False


class KvmBackend:
    name = "kvm"

    def __init__(self, machine: KvmMachine, vcpu_cpus: tuple[int, ...]) -> None:
        self.machine = machine
        self.profile = machine.profile
        self.vm = machine.kvm.create_vm()
        self._ram: mmap.mmap | None = None  # at the first KVM_RUN: most corpus VMs never run
        self.vcpus: dict[int, VcpuFd] = {}
        self.vgic: DeviceFd | None = None
        self.vcpu_cpus = vcpu_cpus
        self._images: dict[int, GuestImage] = {}
        self._guests: dict[int, _Guest] = {}
        self._set_by_vmm: dict[int, set[int]] = {}  # ONE_REG ids the VMM's calls set
        self._expired = False

    def _vcpu(self, index: int) -> VcpuFd:
        vcpu = self.vcpus.get(index)
        if vcpu is None:
            raise KvmError(errno.EBADF, f"vCPU {index} was not created: no fd")
        return vcpu

    # --- the calls ---------------------------------------------------------------------------

    def create_vcpu(self, index: int) -> None:
        self.vcpus[index] = self.vm.create_vcpu(index)

    def vcpu_init(self, index: int, features: int) -> None:
        target = self.vm.preferred_target().target
        self._vcpu(index).vcpu_init(uapi.kvm_vcpu_init(target, (features,) + (0,) * 6))

    def create_vgic(self, dist: int, redist: int) -> None:
        self.vgic = self.vm.create_device(uapi.KVM_DEV_TYPE_ARM_VGIC_V3)
        self.vgic.set_attr(uapi.KVM_DEV_ARM_VGIC_GRP_ADDR, uapi.KVM_VGIC_V3_ADDR_TYPE_DIST, dist)
        self.vgic.set_attr(uapi.KVM_DEV_ARM_VGIC_GRP_ADDR, uapi.KVM_VGIC_V3_ADDR_TYPE_REDIST,
                           redist)

    def init_vgic(self) -> None:
        if self.vgic is None:
            raise KvmError(errno.EBADF, "no vGIC device: no fd")
        self.vgic.set_attr(uapi.KVM_DEV_ARM_VGIC_GRP_CTRL, uapi.KVM_DEV_ARM_VGIC_CTRL_INIT)

    def device_attr(self, request: int, index: int, attr: int, payload: bytes) -> bytes:
        return self._vcpu(index).device_attr(request, uapi.KVM_ARM_VCPU_PMU_V3_CTRL, attr,
                                             payload)

    def one_reg(self, request: int, index: int, reg_id: int, value: int = 0) -> int:
        result = self._vcpu(index).one_reg(request, reg_id, value)
        if request == uapi.KVM_SET_ONE_REG:
            self._set_by_vmm.setdefault(index, set()).add(reg_id)
        return result

    # --- guests -------------------------------------------------------------------------------

    def load_guest(self, index: int, image: GuestImage) -> None:
        self._images[index] = image

    def _guest(self, index: int) -> _Guest:
        guest = self._guests.get(index)
        if guest is None:
            guest = self._guests[index] = self._load(index, self._images.get(index))
        return guest

    def _load(self, index: int, image: GuestImage | None) -> _Guest:
        """The vCPU's program in guest RAM, at its first KVM_RUN (the default workload then
        knows the number of counters)."""
        if isinstance(image, ProgramImage):
            self._write_segments(image.program.segments)
            return _Guest(image.program.entry, None)
        steps = image.steps if isinstance(image, ScriptImage) else ()
        if isinstance(image, DefaultImage):
            from kvmpmu.vmm.default_workload import default_workload

            n = counters_of(self.one_reg(uapi.KVM_GET_ONE_REG, index, _PMCR))
            steps = default_workload(image.named_events, n, synthetic=False).steps_for(0)
        program = compile_steps(steps, RAM_BASE + 0x80000 + index * SCRIPT_SLOT)
        if program.size > SCRIPT_SLOT:
            raise GuestError(f"vcpu{index}: the compiled script ({program.size} bytes) is "
                             f"larger than its {SCRIPT_SLOT} bytes of guest RAM")
        self._write_segments(program.segments)
        decoder = ScriptDecoder(program, self._read)
        guest = _Guest(program.entry, decoder)
        guest.output.reads, guest.output.undefined = decoder.reads, decoder.undefined
        return guest

    @property
    def ram(self) -> mmap.mmap:
        if self._ram is None:
            self._ram = self.vm.add_memory(0, RAM_BASE, RAM_SIZE)
        return self._ram

    def _write_segments(self, segments: Sequence[tuple[int, bytes]]) -> None:
        """Each segment's whole host pages zeroed by this process, then the segments written.
        Under QEMU's TCG a VM whose short program's page held another process's guest code
        sometimes ran stale code after its first MMIO exit (README, "What the real kernels
        showed"); writing every byte of the page the guest can execute never did."""
        page, ram_end = mmap.PAGESIZE, RAM_BASE + RAM_SIZE
        for addr, data in segments:
            if RAM_BASE <= addr and addr + len(data) <= ram_end:  # else _write says where
                start, end = addr - addr % page, -(-(addr + len(data)) // page) * page
                self._write(start, bytes(min(end, ram_end) - start))
        for addr, data in segments:
            self._write(addr, data)

    def _write(self, addr: int, data: bytes) -> None:
        if not (RAM_BASE <= addr and addr + len(data) <= RAM_BASE + RAM_SIZE):
            raise GuestError(f"program segment at 0x{addr:x} is outside guest RAM")
        self.ram[addr - RAM_BASE:addr - RAM_BASE + len(data)] = data

    def _read(self, addr: int, size: int) -> bytes:
        if not (RAM_BASE <= addr and addr + size <= RAM_BASE + RAM_SIZE):
            raise GuestError(f"0x{addr:x}+{size} is outside guest RAM")
        return bytes(self.ram[addr - RAM_BASE:addr - RAM_BASE + size])

    def _string(self, addr: int) -> str:
        if not RAM_BASE <= addr < RAM_BASE + RAM_SIZE:
            return f"<console string at 0x{addr:x}, outside RAM>"
        start = addr - RAM_BASE
        end = self.ram.find(b"\0", start, start + MAX_CONSOLE_LINE)
        return self.ram[start:end if end >= 0 else start + MAX_CONSOLE_LINE].decode(
            "utf-8", "replace")

    # --- KVM_RUN --------------------------------------------------------------------------------

    def run(self, index: int) -> VcpuExit:
        vcpu = self._vcpu(index)
        guest = self._guest(index)
        if not guest.started:
            self._start(index, vcpu, guest)
            guest.started = True
        self._pin(index)
        self._expired = False
        previous = signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, self.machine.timeout)
        try:
            return self._run(index, vcpu, guest)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _start(self, index: int, vcpu: VcpuFd, guest: _Guest) -> None:
        """Plumbing before the first KVM_RUN, not one of the VMM's calls (KVM_RUN answers if
        it fails): PC at the entry, then a `guest:` program's presets; neither where the VMM
        set that register itself."""
        set_by_vmm = self._set_by_vmm.get(index, set())
        image = self._images.get(index)
        presets = image.guest.regs if isinstance(image, ProgramImage) else ()
        pstate = dict(presets).get("pstate", PSTATE_RESET)
        writes = [(_PC, guest.entry)] + [(cpu_reg_one_reg_id(name, pstate), value)
                                        for name, value in presets]
        for reg_id, value in writes:
            if reg_id not in set_by_vmm:
                try:
                    vcpu.one_reg(uapi.KVM_SET_ONE_REG, reg_id, value)
                except KvmError:
                    pass

    def _alarm(self, signum: int, frame: FrameType | None) -> None:
        self._expired = True

    def _pin(self, index: int) -> None:
        """The vCPU's thread on its physical CPU (vm.cpus), where this host has it."""
        cpu = self.vcpu_cpus[index % len(self.vcpu_cpus)] if self.vcpu_cpus else 0
        if cpu in os.sched_getaffinity(0) or cpu < (os.cpu_count() or 1):
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:
                pass

    def _run(self, index: int, vcpu: VcpuFd, guest: _Guest) -> VcpuExit:
        level = None if self.vgic is not None else 0
        while True:
            try:
                vcpu.run()
            except KvmError as err:
                if err.errno != errno.EINTR:
                    raise
                if self._expired:
                    raise GuestError(f"vcpu{index}: the guest did not exit to the VMM within "
                                     f"{self.machine.timeout:g} s ({_where(vcpu)})",
                                     hint="--timeout raises it") from None
                state = read_run(vcpu.run_area)
                return VcpuExit("INTR", device_irq_level=state.device_irq_level,
                                errno=errno.EINTR)
            state = read_run(vcpu.run_area)
            if level is not None:
                level = state.device_irq_level
            if state.exit_reason != uapi.KVM_EXIT_MMIO:
                return self._other_exit(state, guest, level)
            handled = self._mmio(index, vcpu, guest, state, level)
            if handled is not None:
                return handled

    def _other_exit(self, state: RunState, guest: _Guest, level: int | None) -> VcpuExit:
        if state.exit_reason == uapi.KVM_EXIT_FAIL_ENTRY:
            return VcpuExit("FAIL_ENTRY", fail_reason=state.fail_reason, cpu=state.fail_cpu,
                            device_irq_level=level)
        if state.exit_reason == uapi.KVM_EXIT_SYSTEM_EVENT:
            guest.output.finished = True  # PSCI SYSTEM_OFF
        return VcpuExit(state.reason, device_irq_level=level)

    def _mmio(self, index: int, vcpu: VcpuFd, guest: _Guest, state: RunState,
              level: int | None) -> VcpuExit | None:
        """A mailbox store: handled here (None: run on), or the exit the VMM sees."""
        offset = state.mmio_addr - mailbox.BASE
        if not 0 <= offset < mailbox.SIZE:
            pc = vcpu.one_reg(uapi.KVM_GET_ONE_REG, _PC)
            kind = "store to" if state.mmio_is_write else "load from"
            raise GuestError(f"vcpu{index}: {kind} 0x{state.mmio_addr:x}, outside guest RAM "
                             f"and the mailbox (pc 0x{pc:x})")
        if not state.mmio_is_write:
            complete_mmio_read(vcpu.run_area, 0, state.mmio_len)
            return None
        exit_ = VcpuExit("MMIO", Mmio(state.mmio_addr, state.mmio_len, state.mmio_data),
                         device_irq_level=level)
        out, data = guest.output, state.mmio_data
        if offset == mailbox.REPORT:
            out.reports.append(data)
            return None
        if offset == mailbox.CONSOLE:
            out.console.append(self._string(data))
            return None
        if guest.decoder is None:  # a `guest:` program: only EXIT and END mean anything
            out.finished = out.finished or offset == mailbox.END
            return exit_ if offset in (mailbox.EXIT, mailbox.END) else None
        request = guest.decoder.store(offset, data, vcpu.one_reg(uapi.KVM_GET_ONE_REG, _PC))
        if request is None:
            return None
        if request.kind == "fault":
            raise GuestError(f"vcpu{index}: {request.message}")
        if request.kind == "end":
            out.finished, out.state = True, guest.decoder.state
        return exit_

    def close(self) -> None:
        """Every fd and mapping of the VM (a corpus makes hundreds of VMs)."""
        for vcpu in self.vcpus.values():
            vcpu.close()
        self.vcpus.clear()
        if self.vgic is not None:
            self.vgic.close()
            self.vgic = None
        self.vm.close()

    # --- results -------------------------------------------------------------------------------

    def output(self, index: int) -> GuestOutput:
        guest = self._guests.get(index)
        return guest.output if guest is not None else GuestOutput()

    def vcpu_indices(self) -> list[int]:
        return sorted(self.vcpus)

    def host_pmu(self) -> HostPmu | None:
        pmus = self.machine.host.pmus
        return pmus[0] if pmus else None

    def result(self, index: int, catalog: Catalog) -> VcpuResult:
        """What the guest read of its PMU at its end; what only the model knows (whether the
        filter allows a counter, whether the host implements its event) is None."""
        out = self.output(index)
        state = out.state or {}
        pmcr = state.get("PMCR_EL0") or 0
        counters = []
        for idx in list(range(counters_of(state.get("PMCR_EL0")))) + [CYCLE_IDX]:
            if idx == CYCLE_IDX:
                event, value = ev.CPU_CYCLES, state.get("PMCCNTR_EL0")
            else:
                event = (state.get(f"PMEVTYPER{idx}_EL0") or 0) & 0xFFFF
                value = state.get(f"PMEVCNTR{idx}_EL0")
            enabled = bool(pmcr & 1) and bool((state.get("PMCNTENSET_EL0") or 0) >> idx & 1)
            counters.append(CounterResult(idx, event, catalog.name_of(event), enabled, None,
                                          None, value or 0,
                                          bool((state.get("PMOVSSET_EL0") or 0) >> idx & 1)))
        return VcpuResult(index, state.get("PMCEID0_EL0") or 0, state.get("PMCEID1_EL0") or 0,
                          pmcr, counters if out.state else [], out.reads, out.undefined,
                          ran=index in self._guests and self._guests[index].started,
                          reports=out.reports, console=out.console, state=out.state)

