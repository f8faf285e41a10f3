"""A CPU-emulated guest on one vCPU, shaped like the scripted GuestRunner for the session."""

from __future__ import annotations

from kvmpmu.errors import GuestError
from kvmpmu.kvm.system import Vcpu
from kvmpmu.spec.workload import VmmCall
from kvmpmu.vmm.emulated.cpu import EmulatedGuest, GuestRun
from kvmpmu.vmm.emulated.program import Program
from kvmpmu.vmm.results import CallRecord


class CpuGuestRunner:
    def __init__(self, vcpu: Vcpu, program: Program, max_instructions: int) -> None:
        self.vcpu = vcpu
        self.reads: list[tuple[str, int | None]] = []
        self.vmm_calls: list[tuple[VmmCall, CallRecord]] = []  # none: the program has no vmm steps
        self.engine = EmulatedGuest(vcpu, program, max_instructions)
        self.outcome: GuestRun = self.engine.result

    @property
    def undefined(self) -> list[tuple[str, str]]:
        return self.outcome.undefined

    def run(self) -> None:
        self.outcome = self.engine.run()
        if self.outcome.fault is not None:
            raise GuestError(f"vcpu{self.vcpu.index}: {self.outcome.fault}")
