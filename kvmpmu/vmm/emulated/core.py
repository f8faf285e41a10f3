"""The state of one CPU-emulated vCPU and what the run loop and the hooks share: limits, the
interrupt line, exception entry, and the instructions the engine carries out itself.

ERET, MSR DAIFClr, WFI and `b .` are exits of the emulation (unicorn stops before them): the
engine carries them out, so that it sees every change of exception level and every unmasking
of a pending interrupt, and a branch to itself does not run pass by pass."""

from __future__ import annotations

import time
from typing import Any

from kvmpmu.arch import events as ev
from kvmpmu.arch.cpuregs import PSTATE_DAIF, PSTATE_I, PSTATE_RESET, exception_level
from kvmpmu.kvm import sysreg_access
from kvmpmu.kvm.system import Vcpu
from kvmpmu.vmm import mailbox
from kvmpmu.vmm.emulated import exceptions as exc
from kvmpmu.vmm.emulated.blocks import EVENTS, INSTRUCTION_EVENTS, Block
from kvmpmu.vmm.emulated.counting import BlockCounter
from kvmpmu.vmm.emulated.exits import GuestExit, GuestRun, Stop
from kvmpmu.vmm.emulated.extra import need
from kvmpmu.vmm.emulated.fastcall import FastCalls
from kvmpmu.vmm.emulated.machine import RAM_END, in_ram
from kvmpmu.vmm.emulated.program import Program
from kvmpmu.vmm.emulated.registers import RegisterFile
from kvmpmu.vmm.memmap import RAM_BASE, RAM_SIZE

MIN_SLICE = 64  # the most instructions a sparse event's overflow interrupt can come late
ALL_EVENTS = frozenset(EVENTS)


class GuestCore:
    def __init__(self, vcpu: Vcpu, program: Program, max_instructions: int,
                 timeout: float | None = None, exit_on_irq_change: bool = False,
                 regs: tuple[tuple[str, int], ...] = ()) -> None:
        self.vcpu, self.vpmu = vcpu, vcpu.vpmu
        self.budget, self.timeout = max_instructions, timeout
        self.exit_on_irq_change = exit_on_irq_change
        self.result = GuestRun()
        unicorn = need("unicorn")
        self._unicorn = unicorn
        self.uc: Any = unicorn.Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM)
        self.regs = RegisterFile(self.uc)
        self.fast = FastCalls(self.uc)
        self.counter = BlockCounter(self.uc, self.vpmu, self._discovered, self.fast)
        self._handler = sysreg_access.Handlers(self.vpmu)
        self._stop: Stop | None = None
        self._final: GuestExit | None = None
        self._irq_reported = False
        self._deadline: float | None = None
        self._specials: dict[int, str] = {}  # exits of the emulation: address -> kind
        self._new_exits: list[int] = []
        self._watched: set[int] = set()  # code pages with a write hook
        self._unmapped: tuple[int, int, int] | None = None  # access, address, size
        self._load(program)
        for name, value in regs:
            self.set_reg(name, value)

    def _load(self, program: Program) -> None:
        self.uc.mem_map(RAM_BASE, RAM_SIZE)
        self.uc.mem_map(mailbox.BASE, mailbox.SIZE)
        for addr, data in program.segments:
            self.uc.mem_write(addr, data)
        self.regs.set_pstate(PSTATE_RESET)
        self.regs.set("sp", RAM_END)
        self.regs.pc = program.entry

    def get_reg(self, name: str) -> int:
        """A register by its name in kvmpmu/arch/cpuregs.py (KVM_GET_ONE_REG)."""
        return self.regs.get(name)

    def set_reg(self, name: str, value: int) -> None:
        """A register by name (KVM_SET_ONE_REG); takes effect at the next run()."""
        self.regs.set(name, value)
        if name.lower() == "pstate":
            self.counter.el = exception_level(value)

    # --- limits ----------------------------------------------------------------------------

    def _left(self) -> int:
        """What is left of the budget: each instruction retired and each exception taken
        uses one (a guest can loop on exceptions alone)."""
        return self.budget - self.counter.instructions - self.result.exceptions

    def _limits(self) -> GuestExit | None:
        if self._left() <= 0:
            return self._fault(f"the guest did not end within {self.budget} instructions "
                               "(exceptions taken count too; --max-instructions or "
                               "guest.max_instructions raises it); it was at "
                               f"{self._where(self.regs.pc)}")
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return self._fault(f"the guest did not end within {self.timeout:g} s (--timeout "
                               f"or guest.timeout); it was at {self._where(self.regs.pc)}")
        return None

    def _over_limits(self) -> bool:
        return self._left() <= 0 or (self._deadline is not None
                                     and time.monotonic() >= self._deadline)

    def _plan(self) -> int | None:
        """Instructions the CPU may run before an overflow interrupt could rise, at either
        exception level. No instruction makes more than one of each event: the bound is
        exact for the events every instruction makes, and within MIN_SLICE for the others."""
        bound = None
        for el in (0, 1):
            n = self.vpmu.occurrences_to_interrupt(el, ALL_EVENTS)
            if n is not None and n < MIN_SLICE:
                exact = self.vpmu.occurrences_to_interrupt(el, INSTRUCTION_EVENTS)
                n = min(MIN_SLICE, exact if exact is not None else MIN_SLICE)
            if n is not None and (bound is None or n < bound):
                bound = n
        return bound

    def _fault(self, message: str) -> GuestExit:
        self.result.fault = message
        return GuestExit("fault")

    # --- interrupts and exceptions ---------------------------------------------------------

    def _interrupt_check(self) -> GuestExit | None:
        """The vPMU's interrupt line: reported on its change (userspace irqchip) or taken
        when unmasked (in-kernel irqchip), at the instruction the CPU is about to run."""
        level = self.vpmu.irq_level
        if self.exit_on_irq_change:
            if level != self._irq_reported:
                self._irq_reported = level
                return GuestExit("irq", data=int(level))
            return None
        if level and not self.regs.pstate & PSTATE_I:
            return self._enter(exc.ExceptionEntry(exc.IRQ, self.regs.pc))
        return None

    def _wants_attention(self) -> bool:
        """Whether the interrupt line needs the run loop now."""
        level = self.vpmu.irq_level
        if self.exit_on_irq_change:
            return level != self._irq_reported
        return level and not self.regs.pstate & PSTATE_I

    def _pending_irq(self) -> bool:
        return not self.exit_on_irq_change and self.vpmu.irq_level

    def _enter(self, entry: exc.ExceptionEntry) -> GuestExit | None:
        vbar = self.regs.get("vbar_el1")
        what = "PMU interrupt" if entry.esr is None else exc.describe(entry.esr)
        if vbar == 0:
            return self._fault(f"{what} at {self._where(entry.return_to)} and the guest has no "
                               "vector table (VBAR_EL1 is 0)" + exc.far_text(entry))
        offset = exc.vector_offset(self.regs.pstate, entry.kind)
        if entry.esr is not None and vbar + offset == entry.return_to:
            return self._fault(f"{what} at {self._where(entry.return_to)}, the vector it is "
                               f"taken to (VBAR_EL1 + 0x{offset:x}): the guest would take it "
                               "forever" + exc.far_text(entry))
        self.counter.flush()
        self.vpmu.count(self.counter.el, {ev.EXC_TAKEN: 1})
        exc.take(self.regs, entry, vbar)
        self.counter.el = 1
        self.result.exceptions += 1
        self.result.interrupts += entry.esr is None
        return None

    def _stop_cpu(self, stop: Stop) -> None:
        self._stop = stop
        self.uc.emu_stop()

    # --- instructions the engine carries out -----------------------------------------------

    def _discovered(self, block: Block) -> None:
        """A block runs for the first time. Its instructions the engine must see become exits
        of the emulation (unicorn stops before them): the block is stopped before it runs, to be
        translated again with them. Its pages are watched for code being rewritten."""
        fresh = {addr: kind for addr, kind in block.specials if addr not in self._specials}
        if fresh:
            self._specials.update(fresh)
            self._new_exits.extend(fresh)
            self.counter.cut(block.addr)
            self._stop_cpu(Stop("check"))
        for page in range(block.addr & ~0xFFF, block.addr + block.size, 0x1000):
            if page not in self._watched:
                self._watched.add(page)
                self.uc.hook_add(self._unicorn.UC_HOOK_MEM_WRITE, self._on_code_write, None,
                                 page, page + 0xFFF)

    def _set_exits(self) -> None:
        self.uc.ctl_set_exits(sorted(self._specials))
        for addr in self._new_exits:
            self.uc.ctl_remove_cache(addr, addr + 4)  # translated without the exit
        self._new_exits.clear()

    def _special(self, pc: int) -> GuestExit | None:
        """The CPU stopped before an instruction the engine carries out itself."""
        kind = self._specials[pc]
        if kind == "spin":
            self._spin(self.counter.classifier.block(pc, bytes(self.uc.mem_read(pc, 4))))
            return None
        if kind == "wfi" and not self.vpmu.irq_level:
            return self._fault(f"WFI at {self._where(pc)} with no interrupt pending: the vCPU "
                               "would wait forever")
        self._retire(pc)
        if kind == "eret":
            return self._eret(pc)
        if kind == "daifclr":
            imm = self._insn(pc) >> 8 & 0xF
            self.regs.set_pstate(self.regs.pstate & ~(imm << 6 & PSTATE_DAIF))
        self.regs.pc = pc + 4  # WFI completes at once: an interrupt is pending
        return None

    def _retire(self, pc: int) -> None:
        self.counter.retire(self.counter.classifier.block(pc, bytes(self.uc.mem_read(pc, 4))))

    def _eret(self, pc: int) -> GuestExit | None:
        """ERET: PSTATE from SPSR_EL1 (and the stack pointer it selects), PC from ELR_EL1."""
        spsr = self.regs.get("spsr_el1")
        if exc.returns_to(spsr) is None:
            return self._fault(f"illegal exception return (ERET with SPSR_EL1 = 0x{spsr:x}) "
                               f"at {self._where(pc)}: not modelled")
        self.counter.flush()  # the ERET counts at the EL it leaves
        self.regs.set_pstate(spsr)
        self.counter.el = exception_level(spsr)
        self.regs.pc = self.regs.get("elr_el1")
        return None

    def _spin(self, block: Block) -> None:
        """`b .` repeats until an interrupt: count those passes at once."""
        passes = self._left()
        events = frozenset(e for e, n in zip(EVENTS, block.total, strict=True) if n)
        if self.exit_on_irq_change or not self.regs.pstate & PSTATE_I:
            due = self.vpmu.occurrences_to_interrupt(self.counter.el, events)
            if due is not None:
                passes = min(passes, due)
        self.counter.add(block, passes)

    def _on_code_write(self, uc: Any, access: int, address: int, size: int, value: int,
                       _: Any) -> None:
        self.counter.forget(address, address + size)

    # --- messages --------------------------------------------------------------------------

    def _insn(self, pc: int) -> int:
        return int.from_bytes(self.uc.mem_read(pc, 4), "little") if in_ram(pc, 4) else 0

    def _where(self, pc: int) -> str:
        """`pc 0x... (the instruction there)`."""
        if not in_ram(pc, 4):
            return f"pc 0x{pc:x} (outside guest RAM)"
        text = self.counter.classifier.describe(pc, bytes(self.uc.mem_read(pc, 4)))
        return f"pc 0x{pc:x} ({text})"
