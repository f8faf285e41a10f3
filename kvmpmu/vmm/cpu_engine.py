"""A CPU-emulated guest (unicorn, kvmpmu/vmm/emulated) as the emulated backend drives it."""

from __future__ import annotations

from kvmpmu.errors import GuestError
from kvmpmu.kvm.vcpu import Vcpu
from kvmpmu.vmm.backend import GuestOutput, ProgramImage, record
from kvmpmu.vmm.guest import END, GuestStop


class CpuEngine:
    def __init__(self, vcpu: Vcpu, image: ProgramImage, exit_on_irq_change: bool) -> None:
        from kvmpmu.vmm.emulated.cpu import EmulatedGuest

        self.vcpu = vcpu
        self.output = GuestOutput()
        self._guest = EmulatedGuest(vcpu, image.program, image.max_instructions)

    def resume(self) -> GuestStop:
        if self.output.finished:
            return END
        run = self._guest.run()
        out = self.output
        out.reports = list(run.reports)
        for name, access in run.undefined:
            record(out.undefined, name, access)
        out.stats = {"instructions": run.instructions, "exceptions": run.exceptions,
                     "interrupts": run.interrupts, "finished": run.finished}
        if run.fault is not None:
            raise GuestError(f"vcpu{self.vcpu.index}: {run.fault}")
        out.finished = True
        return END
