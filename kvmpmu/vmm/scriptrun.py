"""A compiled scripted workload on the CPU-emulated guest: every mailbox store the guest exits
at goes to a ScriptDecoder, and a `vmm:` request is made there, as a VMM makes it at the MMIO
exit before it enters the guest again."""

from __future__ import annotations

from collections.abc import Callable

from kvmpmu.errors import GuestError
from kvmpmu.kvm.system import Vcpu
from kvmpmu.spec.guestspec import DEFAULT_MAX_INSTRUCTIONS
from kvmpmu.spec.workload import VmmCall
from kvmpmu.vmm import mailbox as mb
from kvmpmu.vmm.emulated.cpu import FINAL, EmulatedGuest, GuestExit, GuestRun
from kvmpmu.vmm.emulated.program import Program
from kvmpmu.vmm.scriptprog import GuestRequest, ScriptDecoder, ScriptProgram


class EmulatedScriptRun:
    def __init__(self, vcpu: Vcpu, program: ScriptProgram, on_vmm: Callable[[VmmCall], object],
                 max_instructions: int = DEFAULT_MAX_INSTRUCTIONS) -> None:
        if program.mailbox != mb.BASE:
            raise GuestError(f"the CPU-emulated guest's mailbox is at 0x{mb.BASE:x}, not "
                             f"0x{program.mailbox:x}")
        self.guest = EmulatedGuest(vcpu, Program(program.segments, program.entry),
                                   max_instructions)
        self.decoder = ScriptDecoder(program, self._memory)
        self.requests: list[GuestRequest] = []
        self._on_vmm = on_vmm

    def run(self) -> GuestRun:
        """Until the program's end; its faults and the engine's are GuestErrors."""
        while True:
            exit_ = self.guest.run()
            if exit_.reason in ("mmio", "end"):
                self._store(exit_)
            if exit_.reason in FINAL:
                break
        result = self.guest.result
        if self.decoder.fault is not None:
            raise GuestError(self.decoder.fault.message)
        if result.fault is not None:
            raise GuestError(result.fault)
        return result

    def _memory(self, addr: int, size: int) -> bytes:
        return bytes(self.guest.uc.mem_read(addr, size))

    def _store(self, exit_: GuestExit) -> None:
        """At the exit the pc is past the store; the decoder wants the store's own address,
        as KVM reports it at an MMIO exit."""
        request = self.decoder.store(exit_.addr - mb.BASE, exit_.data, self.guest.regs.pc - 4)
        if request is not None:
            self.requests.append(request)
            if isinstance(request.step, VmmCall):
                self._on_vmm(request.step)
