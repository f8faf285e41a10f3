"""The scripted guest: runs workload steps on a vCPU, trapping PMU accesses into its vPMU."""

from __future__ import annotations

from kvmpmu.kvm import sysreg_access
from kvmpmu.kvm.system import Vcpu
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.spec.workload import Access, Execute, Repeat, SetEl, Step, VmmCall
from kvmpmu.vmm.builder import Vmm
from kvmpmu.vmm.results import CallRecord


class GuestRunner:
    """Executes one vCPU's steps; UNDEF accesses are recorded and the script goes on."""

    def __init__(self, vmm: Vmm, vcpu: Vcpu) -> None:
        self.vmm = vmm
        self.vcpu = vcpu
        self.vpmu = vcpu.vpmu
        self.el = 1
        self.reads: list[tuple[str, int | None]] = []
        self.undefined: list[tuple[str, str]] = []
        self.vmm_calls: list[tuple[VmmCall, CallRecord]] = []
        self._handler = sysreg_access.Handlers(self.vpmu)

    def run(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            if isinstance(step, Access):
                self._access(step)
            elif isinstance(step, Execute):
                self.vpmu.count(step.el, dict(step.events))
            elif isinstance(step, Repeat):
                self._repeat(step)
            elif isinstance(step, SetEl):
                self.el = step.el
            elif isinstance(step, VmmCall):
                self._vmm(step)

    def _repeat(self, step: Repeat) -> None:
        body = step.steps
        if len(body) == 1 and isinstance(body[0], Access) and len(body[0].ops) == 1 and \
                body[0].ops[0][1] is None:  # a polling loop: one MRS, kept tight
            self._repeat_read(body[0].ops[0][0], step.times)
            return
        run = self.run
        for _ in range(step.times):
            run(body)

    def _repeat_read(self, name: str, times: int) -> None:
        read, el, append = self._handler(name)[0], self.el, self.reads.append
        for _ in range(times):
            try:
                append((name, read(el)))
            except Undefined:
                append((name, None))
                self.undefined.append((name, "read"))

    def _access(self, step: Access) -> None:
        el = self.el
        for name, value in step.ops:
            read, write = self._handler(name)
            try:
                if value is None:
                    self.reads.append((name, read(el)))
                else:
                    write(el, value)
            except Undefined:
                if value is None:
                    self.reads.append((name, None))
                self.undefined.append((name, "read" if value is None else "write"))

    def _vmm(self, step: VmmCall) -> None:
        for call in step.calls:
            record = self.vmm.filter(self.vcpu, call, expect=step.expect_errno,
                                     expecting=step.expecting)
            record.loc = step.loc
            self.vmm_calls.append((step, record))
