"""One vCPU run by unicorn. PMU system-register accesses trap (instruction hooks) into the
vPMU through `sysreg_access`, the same handlers the scripted guest uses. Events are counted
per translated block: the block hook only bumps a counter; the events are added to the vPMU
at each trap and stop, corrected for the part of a block that has not run yet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvmpmu.arch import events as ev
from kvmpmu.arch.sysregs import SYSREGS_BY_ENCODING
from kvmpmu.errors import GuestError
from kvmpmu.kvm import sysreg_access
from kvmpmu.kvm.system import Vcpu
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.vmm.emulated.blocks import EVENTS, INSTRUCTION_EVENTS, Block, Classifier
from kvmpmu.vmm.emulated.extra import need
from kvmpmu.vmm.emulated.program import Program

RAM_BASE, RAM_SIZE = 0x40000000, 0x4000000  # 64 MiB, as a small kvmtool guest
MAILBOX = 0x09000000  # one MMIO page: +0 report a value, +8 end the run
PSTATE_I = 1 << 7
VECTOR_SYNC, VECTOR_IRQ = 0x200, 0x280  # current EL with SP_ELx
ESR_UNKNOWN = 1 << 25  # EC 0 (unknown reason), IL: a 32-bit instruction
NEVER = (1 << 64) - 1  # an `until` address no guest reaches


@dataclass
class GuestRun:
    reports: list[int] = field(default_factory=list)
    undefined: list[tuple[str, str]] = field(default_factory=list)
    instructions: int = 0
    exceptions: int = 0
    interrupts: int = 0
    finished: bool = False  # the guest ended the run through the mailbox
    fault: str | None = None


class EmulatedGuest:
    def __init__(self, vcpu: Vcpu, program: Program, max_instructions: int) -> None:
        self.vcpu, self.vpmu = vcpu, vcpu.vpmu
        self.program = program
        self.budget = max_instructions
        self.result = GuestRun()
        uc_mod = need("unicorn")
        self.c = need("unicorn.arm64_const")
        self.uc: Any = uc_mod.Uc(uc_mod.UC_ARCH_ARM64, uc_mod.UC_MODE_ARM)
        self._uc_error = uc_mod.UcError
        self.classifier = Classifier()
        self.blocks: dict[int, Block] = {}
        self.hits: dict[int, int] = {}
        self.last: Block | None = None
        self.carry: tuple[int, ...] | None = None  # events of the current block not yet added
        self.carry_block: Block | None = None  # ... and the block they belong to
        self.el = 1
        self.check_el = False
        self.stopped_in_store = False
        self.pending: tuple[int, int, int | None] | None = None  # (return to, vector, ESR)
        self._handler = sysreg_access.Handlers(self.vpmu)
        self._setup()

    # --- machine ---------------------------------------------------------------------------

    def _setup(self) -> None:
        uc, c, unicorn = self.uc, self.c, need("unicorn")
        uc.mem_map(RAM_BASE, RAM_SIZE)
        uc.mem_map(MAILBOX, 0x1000)
        for addr, data in self.program.segments:
            if not (RAM_BASE <= addr and addr + len(data) <= RAM_BASE + RAM_SIZE):
                raise GuestError(f"program segment at 0x{addr:x} is outside guest RAM "
                                 f"0x{RAM_BASE:x}-0x{RAM_BASE + RAM_SIZE - 1:x}")
            uc.mem_write(addr, data)
        uc.reg_write(c.UC_ARM64_REG_SP, RAM_BASE + RAM_SIZE)
        uc.hook_add(unicorn.UC_HOOK_BLOCK, self._on_block)
        uc.hook_add(unicorn.UC_HOOK_INSN, self._on_mrs, None, 1, 0, c.UC_ARM64_INS_MRS)
        uc.hook_add(unicorn.UC_HOOK_INSN, self._on_msr, None, 1, 0, c.UC_ARM64_INS_MSR)
        uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, self._on_mailbox, None, MAILBOX,
                    MAILBOX + 0xFFF)

    def run(self) -> GuestRun:
        pc = self.program.entry
        result = self.result
        while not result.finished and result.fault is None:
            left = self.budget - result.instructions
            if left <= 0:
                result.fault = (f"the guest did not end within {self.budget} instructions "
                                "(--max-instructions or guest.max_instructions raises it)")
                break
            # Always a bounded count: unicorn then checks for a stop after every instruction
            # (about 10% slower), so emu_stop in a hook is exact, and the budget holds.
            stop_after = self._interrupt_plan()
            interrupt_due = stop_after is not None
            count = min(stop_after or left, left)
            try:
                self.uc.emu_start(pc, NEVER, 0, count)
            except self._uc_error as err:
                self._stopped()
                result.fault = f"guest fault at pc 0x{self._pc():x}: {err}"
                break
            self._stopped()
            if self.pending is not None:  # an exception to take, decided in a hook
                return_to, vector, esr = self.pending
                self.pending = None
                self._enter(return_to, vector, esr)
            elif interrupt_due and not result.finished:
                self._take_irq_if_pending(self._pc())
            pc = self._pc()
        return result

    def _pc(self) -> int:
        return int(self.uc.reg_read(self.c.UC_ARM64_REG_PC))

    def _masked(self) -> bool:
        return bool(self.uc.reg_read(self.c.UC_ARM64_REG_PSTATE) & PSTATE_I)

    # --- counting ---------------------------------------------------------------------------

    def _on_block(self, uc: Any, addr: int, size: int, _: Any) -> None:
        owed = self.carry_block
        if owed is not None and self.carry is not None and owed.addr < addr < owed.addr + owed.size:
            # the rest of the trapped block runs as a new block from here: owe only up to it
            self.carry = tuple(c - t for c, t in zip(self.carry, owed.tail(addr), strict=True))
        self.carry_block = None
        if self.check_el:
            self._flush()
            self.el = (int(uc.reg_read(self.c.UC_ARM64_REG_PSTATE)) >> 2) & 3
        block = self.blocks.get(addr)
        if block is None or block.size != size:
            block = self.blocks[addr] = self.classifier.block(addr, bytes(uc.mem_read(addr, size)))
        self.hits[addr] = self.hits.get(addr, 0) + 1
        self.last = block
        self.check_el = block.has_eret  # an ERET may change the exception level

    def _flush(self, until: int | None = None, owe: bool = True) -> None:
        """Add the counted blocks' events to the vPMU. With `until` (a pc in the current
        block), leave out the instructions from there on: owed (they will run in this same
        block) or dropped (execution leaves the block, or resumes as a new block)."""
        totals = list(self.carry or (0,) * len(EVENTS))
        self.carry = None
        for addr, n in self.hits.items():
            for i, v in enumerate(self.blocks[addr].total):
                totals[i] += v * n
        self.hits.clear()
        if until is not None and self.last is not None and \
                self.last.addr <= until < self.last.addr + self.last.size:
            tail = self.last.tail(until)
            totals = [t - v for t, v in zip(totals, tail, strict=True)]
            self.carry = tail if owe else None
            self.carry_block = self.last if owe else None
        self.result.instructions += totals[0]
        counts = {event: n for event, n in zip(EVENTS, totals, strict=True) if n}
        if counts:
            self.vpmu.count(self.el, counts)

    def _stopped(self) -> None:
        """After emu_start returns: the rest of the current block did not run, and resuming
        starts a new block at the pc."""
        pc = self._pc() + (4 if self.stopped_in_store else 0)
        self.stopped_in_store = False
        self._flush(pc, owe=False)

    # --- traps ------------------------------------------------------------------------------

    def _register(self, cp: Any) -> str | None:
        reg = SYSREGS_BY_ENCODING.get((cp.op0, cp.op1, cp.crn, cp.crm, cp.op2))
        return reg.name if reg else None

    def _on_mrs(self, uc: Any, reg: int, cp: Any, _: Any) -> bool:
        name = self._register(cp)
        if name is None:
            return False  # not a PMU register: unicorn's own
        pc = self._pc()
        self._flush(pc)
        # Skipping an instruction needs the pc moved too: for a register QEMU's CPU does not
        # have (PMEVTYPER4 and up), unicorn would otherwise run it again forever.
        uc.reg_write(self.c.UC_ARM64_REG_PC, pc + 4)
        try:
            uc.reg_write(reg, self._handler(name)[0](self.el))
        except Undefined:
            self.result.undefined.append((name, "read"))
            self._undef(pc)
            return True
        self._after_trap(pc)
        return True

    def _on_msr(self, uc: Any, reg: int, cp: Any, _: Any) -> bool:
        name = self._register(cp)
        if name is None:
            return False
        pc = self._pc()
        self._flush(pc)
        uc.reg_write(self.c.UC_ARM64_REG_PC, pc + 4)  # as in _on_mrs
        plan = self._interrupt_plan()
        try:
            self._handler(name)[1](self.el, int(cp.val))
        except Undefined:
            self.result.undefined.append((name, "write"))
            self._undef(pc)
            return True
        self._after_trap(pc)
        if self.pending is None and self._interrupt_plan() != plan:
            uc.emu_stop()  # an overflow interrupt is now due elsewhere: plan the stop again
        return True

    def _interrupt_plan(self) -> int | None:
        """Instructions until an overflow interrupt, if one can be taken now."""
        if self._masked():
            return None
        return self.vpmu.occurrences_to_interrupt(self.el, INSTRUCTION_EVENTS)

    def _after_trap(self, pc: int) -> None:
        """The trapped instruction has retired; an interrupt it raised is taken after it.
        Exceptions are entered between emu_start calls: in an instruction hook unicorn only
        follows a pc moved to the next instruction, but stops right after it on emu_stop."""
        if self.vpmu.irq_level and not self._masked():
            self.pending = (pc + 4, VECTOR_IRQ, None)
            self.uc.emu_stop()

    def _take_irq_if_pending(self, pc: int) -> None:
        if self.vpmu.irq_level and not self._masked():
            self._enter(pc, VECTOR_IRQ, None)

    def _undef(self, pc: int) -> None:
        """Inject an undefined-instruction exception, as KVM does for an UNDEF PMU access:
        the instruction does not retire (owe only what follows it, which the stop drops)."""
        if self.last is not None:
            self.carry = self.last.tail(pc + 4)
        self.pending = (pc, VECTOR_SYNC, ESR_UNKNOWN)
        self.uc.emu_stop()

    def _enter(self, return_to: int, vector: int, esr: int | None) -> None:
        uc, c = self.uc, self.c
        vbar = int(uc.reg_read(c.UC_ARM64_REG_VBAR_EL1))
        if vbar == 0:
            self.result.fault = (f"{'undefined instruction' if esr else 'PMU interrupt'} at pc "
                                 f"0x{return_to:x} and the guest has no vector table "
                                 "(VBAR_EL1 is 0)")
            uc.emu_stop()
            return
        pstate = int(uc.reg_read(c.UC_ARM64_REG_PSTATE))
        if esr is not None:
            uc.reg_write(c.UC_ARM64_REG_ESR_EL1, esr)
        uc.reg_write(c.UC_ARM64_REG_ELR_EL1, return_to)
        uc.cpr_write(3, 0, 4, 0, 0, pstate)  # SPSR_EL1
        uc.reg_write(c.UC_ARM64_REG_PSTATE, (pstate & ~0x3FF) | 0x3C5)  # EL1h, DAIF masked
        uc.reg_write(c.UC_ARM64_REG_PC, vbar + vector)
        self.vpmu.count(self.el, {ev.EXC_TAKEN: 1})
        self.el = 1
        self.result.exceptions += 1
        if esr is None:
            self.result.interrupts += 1

    def _on_mailbox(self, uc: Any, access: int, address: int, size: int, value: int,
                    _: Any) -> None:
        if address == MAILBOX:
            self.result.reports.append(value & ((1 << (8 * size)) - 1))
        elif address == MAILBOX + 8:
            self.result.finished = True
            self.stopped_in_store = True  # the pc still names the store, which did retire
            uc.emu_stop()
