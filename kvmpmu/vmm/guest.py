"""The scripted guest: runs workload steps on a vCPU, trapping PMU accesses into its vPMU.

It runs until it exits to the VMM, as a real guest would: at an `exit` step, at a `vmm` step
(the VMM makes those calls, then runs it on), at its end, or, with a userspace irqchip, when
the PMU's interrupt line changes. Consecutive identical reads are one record with a count, so
memory does not grow with `repeat`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from kvmpmu.kvm import sysreg_access
from kvmpmu.kvm.sysreg_access import Reader, Writer
from kvmpmu.kvm.vcpu import Vcpu
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.records import Record
from kvmpmu.spec.workload import Access, Execute, Exit, Repeat, SetEl, Step, VmmCall, vmm_steps
from kvmpmu.vmm.backend import GuestOutput, record
from kvmpmu.vmm.state import read_state


class GuestStop(Record):
    """Why the guest stopped: "exit", "vmm" (with the step's index), "irq", "end" or (a
    CPU-emulated guest's PSCI call) "system_event"."""

    __slots__ = ("kind", "index")

    def __init__(self, kind: str, index: int = 0) -> None:
        self.kind, self.index = kind, index


END = GuestStop("end")


def _stops(steps: tuple[Step, ...]) -> bool:
    """Whether running these steps can stop the guest before their end."""
    return any(isinstance(s, (Exit, VmmCall)) or (isinstance(s, Repeat) and _stops(s.steps))
               for s in steps)


class ScriptedGuest:
    """Executes one vCPU's steps; UNDEF accesses are recorded and the script goes on."""

    def __init__(self, vcpu: Vcpu, steps: tuple[Step, ...], exit_on_irq_change: bool) -> None:
        self.vcpu = vcpu
        self.vpmu = vcpu.vpmu
        self.el = 1
        self.output = GuestOutput()
        self._watch_irq = exit_on_irq_change
        self._index = {id(s): i for i, s in enumerate(vmm_steps(steps))}
        self._handler = sysreg_access.Handlers(self.vpmu)
        self._bodies: dict[int, list[Callable[[], None]]] = {}  # repeated bodies, compiled
        self._walker = self._walk(steps)

    def resume(self) -> GuestStop:
        """Run until the guest stops; at its end, and at every later call, END."""
        if self.output.finished:
            return END
        for stop in self._walker:
            return stop
        self.output.finished = True
        self.output.state = read_state(self.vcpu)  # as a compiled script reads it at its end
        return END

    def _walk(self, steps: tuple[Step, ...]) -> Iterator[GuestStop]:
        watch = self._watch_irq
        for step in steps:
            if isinstance(step, Repeat):
                if watch or _stops(step.steps):
                    for _ in range(step.times):
                        yield from self._walk(step.steps)
                else:
                    self._repeat(step)
                continue
            if isinstance(step, VmmCall):
                yield GuestStop("vmm", self._index[id(step)])
            elif isinstance(step, Exit):
                yield GuestStop("exit")
            else:
                self._step(step)
            if watch and self.vcpu.must_notify_user():
                yield GuestStop("irq")

    def _step(self, step: Step) -> None:
        if isinstance(step, Access):
            self._access(step)
        elif isinstance(step, Execute):
            self.vpmu.count(step.el, dict(step.events))
        elif isinstance(step, SetEl):
            self.el = step.el

    def _repeat(self, step: Repeat) -> None:
        body = step.steps
        if len(body) == 1 and isinstance(body[0], Access) and len(body[0].ops) == 1 and \
                body[0].ops[0][1] is None:  # a polling loop: reads have no side effects
            self._repeat_read(body[0].ops[0][0], step.times)
            return
        ops = self._bodies.get(id(body))
        if ops is None:
            ops = self._bodies[id(body)] = self._compiled(body)
        if not ops:
            return
        # The passes run in batches of about 32 operations: the inner loop is set up once a
        # batch rather than once a pass.
        per_batch = max(1, 32 // len(ops))
        batch = ops * per_batch
        for _ in range(step.times // per_batch):
            for op in batch:
                op()
        for _ in range(step.times % per_batch):
            for op in ops:
                op()

    def _compiled(self, body: tuple[Step, ...]) -> list[Callable[[], None]]:
        """A repeated body as one call per register access or step, its handlers looked up
        once rather than at every pass."""
        ops: list[Callable[[], None]] = []
        for step in body:
            if isinstance(step, Access):
                for name, value in step.ops:
                    read, write = self._handler(name)
                    ops.append(self._reader(name, read) if value is None else
                               self._writer(name, write, value))
            elif isinstance(step, Repeat):
                ops.append(partial(self._repeat, step))
            else:
                ops.append(partial(self._step, step))
        return ops

    def _reader(self, name: str, read: Reader) -> Callable[[], None]:
        out = self.output
        reads = out.reads

        def op() -> None:
            try:
                value = read(self.el)
            except Undefined:
                record(reads, name, None)
                record(out.undefined, name, "read")
                return
            if reads and reads[-1][1] == value and reads[-1][0] == name:  # record(), inline
                reads[-1][2] += 1
            else:
                reads.append([name, value, 1])

        return op

    def _writer(self, name: str, write: Writer, value: int) -> Callable[[], None]:
        out = self.output

        def op() -> None:
            try:
                write(self.el, value)
            except Undefined:
                record(out.undefined, name, "write")

        return op

    def _repeat_read(self, name: str, times: int) -> None:
        if not times:
            return
        try:
            value: int | None = self._handler(name)[0](self.el)
        except Undefined:
            value = None
            record(self.output.undefined, name, "read", times)
        record(self.output.reads, name, value, times)

    def _access(self, step: Access) -> None:
        el, out = self.el, self.output
        for name, value in step.ops:
            read, write = self._handler(name)
            try:
                if value is None:
                    record(out.reads, name, read(el))
                else:
                    write(el, value)
            except Undefined:
                if value is None:
                    record(out.reads, name, None)
                record(out.undefined, name, "read" if value is None else "write")
