"""A CPU-emulated guest on one vCPU, shaped like the scripted GuestRunner for the session."""

from __future__ import annotations

from kvmpmu.errors import GuestError
from kvmpmu.kvm.system import Vcpu
from kvmpmu.spec.workload import VmmCall
from kvmpmu.vmm.emulated.cpu import FINAL, EmulatedGuest, GuestRun
from kvmpmu.vmm.emulated.program import Program
from kvmpmu.vmm.results import CallRecord


class CpuGuestRunner:
    def __init__(self, vcpu: Vcpu, program: Program, max_instructions: int,
                 timeout: float | None = None, regs: tuple[tuple[str, int], ...] = ()) -> None:
        self.vcpu = vcpu
        self.reads: list[tuple[str, int | None]] = []
        self.vmm_calls: list[tuple[VmmCall, CallRecord]] = []  # none: the program has no vmm steps
        # Without an in-kernel irqchip nothing injects the PMU interrupt: KVM_RUN returns on
        # each change of its level instead.
        self.engine = EmulatedGuest(vcpu, program, max_instructions, timeout,
                                    exit_on_irq_change=not vcpu.vm.irqchip_in_kernel, regs=regs)
        self.outcome: GuestRun = self.engine.result

    @property
    def undefined(self) -> list[tuple[str, str]]:
        return self.outcome.undefined

    def run(self) -> None:
        """Run the guest to its end; every exit to the VMM re-enters it at once."""
        while self.engine.run().reason not in FINAL:
            pass
        if self.outcome.fault is not None:
            raise GuestError(f"vcpu{self.vcpu.index}: {self.outcome.fault}")
