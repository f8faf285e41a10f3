"""A compiled scripted workload on the CPU-emulated guest: every mailbox store goes to a
ScriptDecoder through a unicorn write hook, and a `vmm:` request is made inside the hook, as a
VMM makes it at the MMIO exit before it enters the guest again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kvmpmu.errors import GuestError
from kvmpmu.kvm.system import Vcpu
from kvmpmu.spec.guestspec import DEFAULT_MAX_INSTRUCTIONS
from kvmpmu.spec.workload import VmmCall
from kvmpmu.vmm import mailbox as mb
from kvmpmu.vmm.emulated.cpu import EmulatedGuest, GuestRun
from kvmpmu.vmm.emulated.extra import need
from kvmpmu.vmm.emulated.program import Program
from kvmpmu.vmm.scriptprog import GuestRequest, ScriptDecoder, ScriptProgram


class EmulatedScriptRun:
    def __init__(self, vcpu: Vcpu, program: ScriptProgram, on_vmm: Callable[[VmmCall], object],
                 max_instructions: int = DEFAULT_MAX_INSTRUCTIONS) -> None:
        self.guest = EmulatedGuest(vcpu, Program(program.segments, program.entry),
                                   max_instructions)
        self.decoder = ScriptDecoder(program)
        self.requests: list[GuestRequest] = []
        self._on_vmm = on_vmm
        self._base = program.mailbox
        self._error: Exception | None = None
        unicorn, regs = need("unicorn"), need("unicorn.arm64_const")
        self._pc = regs.UC_ARM64_REG_PC
        self.guest.uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, self._on_store, None, self._base,
                               self._base + mb.SIZE - 1)

    def _on_store(self, uc: Any, access: int, address: int, size: int, value: int,
                  _: Any) -> None:
        try:
            request = self.decoder.store(address - self._base, value & ((1 << 8 * size) - 1),
                                         int(uc.reg_read(self._pc)))
            if request is not None:
                self.requests.append(request)
                if isinstance(request.step, VmmCall):
                    self._on_vmm(request.step)
        except Exception as exc:  # noqa: BLE001 - unicorn would turn it into a bad write
            self._error = exc
            self.guest.result.fault = str(exc)
            uc.emu_stop()

    def run(self) -> GuestRun:
        """Until the program's end; its faults and the engine's are GuestErrors."""
        result = self.guest.run()
        if result.finished and not self.decoder.ended:  # the engine's own hook stopped at END
            self.requests.append(GuestRequest("end"))
            self.decoder.store(mb.END, 0, int(self.guest.uc.reg_read(self._pc)))
        if self._error is not None:
            raise self._error
        if self.decoder.fault is not None:
            raise GuestError(self.decoder.fault.message)
        if result.fault is not None:
            raise GuestError(result.fault)
        return result
