"""A CPU-emulated guest (unicorn, kvmpmu/vmm/emulated) as the emulated backend drives it: one
`resume` per KVM_RUN, returning at the exits a real guest's KVM_RUN returns at."""

from __future__ import annotations

from kvmpmu.errors import GuestError
from kvmpmu.kvm.vcpu import Vcpu
from kvmpmu.uapi.one_reg import CORE_CPU_REG
from kvmpmu.vmm import mailbox
from kvmpmu.vmm.backend import GuestOutput, ProgramImage, record
from kvmpmu.vmm.guest import END, GuestStop

# A store to these slots exits to the VMM; the others are a `guest:` program's own business,
# as on the kvm backend (reports and console lines are collected without an exit).
_EXITS = {mailbox.EXIT: "exit", mailbox.END: "end"}


class CpuEngine:
    def __init__(self, vcpu: Vcpu, image: ProgramImage, exit_on_irq_change: bool) -> None:
        from kvmpmu.vmm.emulated.cpu import EmulatedGuest

        self.vcpu = vcpu
        self.output = GuestOutput()
        # the workload's presets, then what the VMM set through KVM_SET_ONE_REG (it wins)
        regs = image.guest.regs + tuple((CORE_CPU_REG.get(name, name.lower()), vcpu.regs[name])
                                        for name in sorted(vcpu.regs_set))
        self._guest = EmulatedGuest(vcpu, image.program, image.max_instructions, image.timeout,
                                    exit_on_irq_change=exit_on_irq_change, regs=regs)
        self._undefined_seen = 0

    def resume(self) -> GuestStop:
        if self.output.finished:
            return END
        while True:
            exit_ = self._guest.run()
            self._collect()
            if exit_.reason == "fault":
                raise GuestError(f"vcpu{self.vcpu.index}: {self._guest.result.fault}")
            if exit_.reason in ("end", "system_event"):
                self.output.finished = True
                return GuestStop(exit_.reason)
            if exit_.reason == "irq":
                return GuestStop("irq")
            kind = _EXITS.get(exit_.addr - mailbox.BASE)
            if kind is not None:
                return GuestStop(kind)

    def _collect(self) -> None:
        """What the guest reported, printed and found UNDEFINED so far, into its output."""
        run, out = self._guest.result, self.output
        out.reports = list(run.reports)
        out.console = list(run.console)
        for name, access in run.undefined[self._undefined_seen:]:
            record(out.undefined, name, access)
        self._undefined_seen = len(run.undefined)
        out.stats = {"instructions": run.instructions, "exceptions": run.exceptions,
                     "interrupts": run.interrupts, "finished": run.finished}
