"""One vCPU run by unicorn, resumable like KVM_RUN: `run()` executes until the guest exits to
the VMM and says why (GuestExit).

PMU system-register accesses trap (instruction hooks) into the vPMU through `sysreg_access`, the
same handlers the scripted guest uses; events are counted per translated block (counting.py);
exceptions are taken as the Arm ARM says (exceptions.py). A hook can only redirect the CPU from
an interrupt hook or a code hook: elsewhere it stops the CPU and the run loop acts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from kvmpmu.arch import events as ev
from kvmpmu.arch.cpuregs import PSTATE_DAIF, PSTATE_I, PSTATE_RESET, SCTLR_M, exception_level
from kvmpmu.arch.sysregs import SYSREGS_BY_ENCODING
from kvmpmu.kvm import sysreg_access
from kvmpmu.kvm.system import Vcpu
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.vmm import mailbox
from kvmpmu.vmm.emulated import exceptions as exc
from kvmpmu.vmm.emulated import smccc
from kvmpmu.vmm.emulated.blocks import EVENTS, INSTRUCTION_EVENTS, Block
from kvmpmu.vmm.emulated.counting import BlockCounter
from kvmpmu.vmm.emulated.extra import need
from kvmpmu.vmm.emulated.fastcall import FastCalls
from kvmpmu.vmm.emulated.machine import RAM_END, RAM_SIZE, in_ram
from kvmpmu.vmm.emulated.program import Program
from kvmpmu.vmm.emulated.registers import RegisterFile

RAM_BASE = RAM_END - RAM_SIZE
NEVER = (1 << 64) - 1  # an `until` address no guest reaches
CHUNK = 1 << 20  # instructions per emu_start at most: the wall clock is checked in between
MIN_SLICE = 64  # the most instructions a sparse event's overflow interrupt can come late
CONSOLE_MAX = 1024  # bytes of a console line
DAIF_REG = (3, 3, 4, 2, 1)
SCTLR_EL1 = (3, 0, 1, 0, 0)
UC_MEM_WRITE_UNMAPPED, UC_MEM_FETCH_UNMAPPED = 20, 21
ALL_EVENTS = frozenset(EVENTS)

Reason = Literal["mmio", "irq", "end", "system_event", "fault"]
FINAL = frozenset(("end", "system_event", "fault"))


@dataclass(frozen=True)
class GuestExit:
    """Why run() returned: "mmio" (a store to the mailbox page other than a report or a console
    line: addr, size, data), "irq" (the vPMU's interrupt line changed level, with a userspace
    irqchip: data is the new level), "end" (a store to mailbox END), "system_event" (PSCI:
    data is KVM_SYSTEM_EVENT_SHUTDOWN or _RESET) or "fault" (the run's `fault` says why)."""

    reason: Reason
    addr: int = 0
    size: int = 0
    data: int = 0


@dataclass
class GuestRun:
    reports: list[int] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    undefined: list[tuple[str, str]] = field(default_factory=list)
    instructions: int = 0
    exceptions: int = 0
    interrupts: int = 0
    finished: bool = False  # the guest ended the run (mailbox END or PSCI)
    fault: str | None = None


@dataclass
class _Stop:
    """Why a hook stopped the CPU, for the run loop."""

    reason: str  # "exception", "exit", "check" or "fault"
    pc: int = 0
    entry: exc.ExceptionEntry | None = None
    exit: GuestExit | None = None
    message: str = ""


class EmulatedGuest:
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
        self._stop: _Stop | None = None
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
        self._add_hooks()

    # --- machine ---------------------------------------------------------------------------

    def _load(self, program: Program) -> None:
        self.uc.mem_map(RAM_BASE, RAM_SIZE)
        self.uc.mem_map(mailbox.BASE, mailbox.SIZE)
        for addr, data in program.segments:
            self.uc.mem_write(addr, data)
        self.regs.set_pstate(PSTATE_RESET)
        self.regs.set("sp", RAM_END)
        self.regs.pc = program.entry

    def _add_hooks(self) -> None:
        uc, unicorn = self.uc, self._unicorn
        c = need("unicorn.arm64_const")
        uc.hook_add(unicorn.UC_HOOK_INSN, self._on_mrs, None, 1, 0, c.UC_ARM64_INS_MRS)
        uc.hook_add(unicorn.UC_HOOK_INSN, self._on_msr, None, 1, 0, c.UC_ARM64_INS_MSR)
        uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, self._on_mailbox, None, mailbox.BASE,
                    mailbox.BASE + mailbox.SIZE - 1)
        uc.hook_add(unicorn.UC_HOOK_INTR, self._on_interrupt)
        uc.hook_add(unicorn.UC_HOOK_MEM_READ_UNMAPPED | unicorn.UC_HOOK_MEM_WRITE_UNMAPPED
                    | unicorn.UC_HOOK_MEM_FETCH_UNMAPPED, self._on_unmapped)
        uc.ctl_exits_enabled(True)

    def get_reg(self, name: str) -> int:
        """A register by its name in kvmpmu/arch/cpuregs.py (KVM_GET_ONE_REG)."""
        return self.regs.get(name)

    def set_reg(self, name: str, value: int) -> None:
        """A register by name (KVM_SET_ONE_REG); takes effect at the next run()."""
        self.regs.set(name, value)
        if name.lower() == "pstate":
            self.counter.el = exception_level(value)

    # --- the run loop ----------------------------------------------------------------------

    def run(self) -> GuestExit:
        """Run until the guest exits to the VMM; after a final exit, return it again."""
        if self._final is not None:
            return self._final
        if self.timeout is not None and self._deadline is None:
            self._deadline = time.monotonic() + self.timeout
        try:
            while True:
                found = self._limits() or self._interrupt_check() or self._slice()
                if found is not None:
                    return self._finish(found)
        finally:
            self.result.instructions = self.counter.instructions

    def _finish(self, found: GuestExit) -> GuestExit:
        if found.reason in FINAL:
            self._final = found
            self.result.finished = found.reason != "fault"
        return found

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

    def _slice(self) -> GuestExit | None:
        """One emu_start, then whatever stopped it."""
        self._stop, self._unmapped = None, None
        if self._new_exits:
            self._set_exits()
        pc = self.regs.pc
        self.counter.current[0] = -1  # no block has run in this slice yet
        count = min(self._left(), CHUNK, self._plan() or CHUNK)
        try:
            self.fast.emu_start(pc, NEVER, count)
        except self._unicorn.UcError as err:
            return self._emulation_error(err)
        stop, pc = self._stop, self.regs.pc
        if stop is None:  # at an exit, or the count ran out
            self.counter.cut(pc)
            self.counter.flush()
            return self._special(pc) if pc in self._specials else None
        self.counter.flush()
        return self._act(stop)

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

    def _act(self, stop: _Stop) -> GuestExit | None:
        if stop.reason == "exception" and stop.entry is not None:
            return self._enter(stop.entry)
        if stop.reason == "exit" and stop.exit is not None:
            self.regs.pc = stop.pc + 4
            return stop.exit
        if stop.reason == "fault":
            return self._fault(stop.message)
        return None

    def _fault(self, message: str) -> GuestExit:
        self.result.fault = message
        return GuestExit("fault")

    # --- interrupts ------------------------------------------------------------------------

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
        what = "PMU interrupt" if entry.esr is None else _describe_esr(entry.esr)
        if vbar == 0:
            return self._fault(f"{what} at {self._where(entry.return_to)} and the guest has no "
                               "vector table (VBAR_EL1 is 0)" + _far_text(entry))
        offset = exc.vector_offset(self.regs.pstate, entry.kind)
        if entry.esr is not None and vbar + offset == entry.return_to:
            return self._fault(f"{what} at {self._where(entry.return_to)}, the vector it is "
                               f"taken to (VBAR_EL1 + 0x{offset:x}): the guest would take it "
                               "forever" + _far_text(entry))
        self.counter.flush()
        self.vpmu.count(self.counter.el, {ev.EXC_TAKEN: 1})
        exc.take(self.regs, entry, vbar)
        self.counter.el = 1
        self.result.exceptions += 1
        self.result.interrupts += entry.esr is None
        return None

    def _stop_cpu(self, stop: _Stop) -> None:
        self._stop = stop
        self.uc.emu_stop()

    # --- hooked instructions ---------------------------------------------------------------

    def _discovered(self, block: Block) -> None:
        """A block runs for the first time. Its instructions the engine must see become exits
        of the emulation (unicorn stops before them): the block is stopped before it runs, to be
        translated again with them. Its pages are watched for code being rewritten."""
        fresh = {addr: kind for addr, kind in block.specials if addr not in self._specials}
        if fresh:
            self._specials.update(fresh)
            self._new_exits.extend(fresh)
            self.counter.cut(block.addr)
            self._stop_cpu(_Stop("check"))
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

    # --- traps -----------------------------------------------------------------------------

    def _register(self, cp: Any) -> str | None:
        reg = SYSREGS_BY_ENCODING.get((cp.op0, cp.op1, cp.crn, cp.crm, cp.op2))
        return reg.name if reg else None

    def _on_mrs(self, uc: Any, reg: int, cp: Any, _: Any) -> bool:
        name = self._register(cp)
        if name is None:
            return False  # not a PMU register: unicorn's own
        pc = self._trap(uc)
        try:
            uc.reg_write(reg, self._handler(name)[0](self.counter.el))
        except Undefined:
            self.result.undefined.append((name, "read"))
            self._stop_cpu(_Stop("exception", entry=exc.ExceptionEntry(
                exc.SYNC, pc, exc.esr(exc.EC_UNKNOWN))))
            return True
        self._retired(pc, False)
        return True

    def _on_msr(self, uc: Any, reg: int, cp: Any, _: Any) -> bool:
        name = self._register(cp)
        if name is None:
            return self._other_msr(uc, (cp.op0, cp.op1, cp.crn, cp.crm, cp.op2), int(cp.val))
        pc = self._trap(uc)
        plan = self._plan()
        try:
            self._handler(name)[1](self.counter.el, int(cp.val))
        except Undefined:
            self.result.undefined.append((name, "write"))
            self._stop_cpu(_Stop("exception", entry=exc.ExceptionEntry(
                exc.SYNC, pc, exc.esr(exc.EC_UNKNOWN))))
            return True
        self._retired(pc, self._plan() != plan)
        return True

    def _trap(self, uc: Any) -> int:
        """A PMU access at the pc: count what ran before it. Moving the pc past it ends the
        block here (unicorn re-runs the registers its own CPU lacks otherwise)."""
        pc = self.regs.pc
        self.counter.cut(pc)
        self.counter.flush()
        self.regs.pc = pc + 4
        return pc

    def _retired(self, pc: int, replan: bool) -> None:
        """The trapped instruction counts under the PMU state it leaves (so the MSR that sets
        PMCR_EL0.E counts itself); an interrupt it raised is handled right after it, and a
        change of the interrupt plan stops the CPU to plan again."""
        self.counter.owe(pc)
        if replan or self._wants_attention():
            self._stop_cpu(_Stop("check"))

    def _other_msr(self, uc: Any, encoding: tuple[int, ...], value: int) -> bool:
        if encoding == SCTLR_EL1 and value & SCTLR_M:
            pc = self.regs.pc
            self.counter.cut(pc)
            self._stop_cpu(_Stop("fault", message=f"the guest enables the MMU (SCTLR_EL1.M) at "
                                 f"{self._where(pc)}: guests run with the MMU off, as KVM "
                                 "starts them"))
            return True
        if encoding == DAIF_REG and self._pending_irq() and not value & PSTATE_I:
            self.counter.cut(self.regs.pc + 4)  # runs, then the loop takes the interrupt
            self._stop_cpu(_Stop("check"))
        return False

    # --- exceptions unicorn raises ---------------------------------------------------------

    def _on_interrupt(self, uc: Any, intno: int, _: Any) -> None:
        pc = self.regs.pc
        if intno == 2:  # SVC: the pc is past it
            self.counter.cut(pc)
            entry = exc.ExceptionEntry(exc.SYNC, pc, exc.esr(exc.EC_SVC, exc.imm16(
                self._insn(pc - 4))))
        elif intno in (1, 13):  # UNDEFINED (and HVC, which it is without EL2), SMC
            call_pc = pc - 4 if intno == 13 else pc
            insn = self._insn(call_pc)
            if exception_level(self.regs.pstate) == 1 and \
                    insn & exc.EXCEPTION_INSN_MASK in (exc.HVC, exc.SMC):
                self._firmware_call(call_pc, exc.imm16(insn))
                return
            self.counter.cut(call_pc)
            entry = exc.ExceptionEntry(exc.SYNC, call_pc, exc.esr(exc.EC_UNKNOWN))
        elif intno == 7:  # BRK
            self.counter.cut(pc)
            entry = exc.ExceptionEntry(exc.SYNC, pc, exc.esr(exc.EC_BRK,
                                                             exc.imm16(self._insn(pc))))
        else:
            self.counter.cut(pc)
            self._stop_cpu(_Stop("fault", message=f"CPU exception {intno} (QEMU's number) at "
                                 f"{self._where(pc)}: not modelled"))
            return
        if self._enter(entry) is not None:
            self._stop_cpu(_Stop("fault", message=self.result.fault or ""))
        elif self._wants_attention() or self._over_limits():
            self._stop_cpu(_Stop("check"))

    def _firmware_call(self, pc: int, imm: int) -> None:
        """HVC or SMC at EL1: an SMCCC call KVM answers; the guest goes on after it."""
        self.counter.cut(pc + 4)
        event = smccc.system_event(imm, self.regs.get("x0"))
        self.regs.pc = pc + 4
        if event is not None:
            self._stop_cpu(_Stop("exit", pc, exit=GuestExit("system_event", data=event)))
            return
        self.regs.set("x0", smccc.NOT_SUPPORTED)

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     _: Any) -> bool:
        self._unmapped = (access, address, size)
        return False

    def _emulation_error(self, err: Any) -> GuestExit | None:
        """An access to an address nothing answers at becomes an abort the guest takes; any
        other unicorn error ends the run."""
        pc = self.regs.pc
        self.counter.cut(pc)
        self.counter.flush()
        if self._unmapped is None:
            return self._fault(f"guest fault at {self._where(pc)}: {err}")
        access, address, size = self._unmapped
        fetch = access == UC_MEM_FETCH_UNMAPPED
        write = access == UC_MEM_WRITE_UNMAPPED
        from_el0 = exception_level(self.regs.pstate) == 0
        vbar = self.regs.get("vbar_el1")
        if fetch and vbar and vbar <= address < vbar + 0x800:
            return self._fault(f"the vector table at 0x{vbar:x} (VBAR_EL1) is outside guest "
                               f"memory: an exception could not be taken at 0x{address:x}")
        return self._enter(exc.ExceptionEntry(
            exc.SYNC, address if fetch else pc, exc.abort_esr(fetch, from_el0, write), address))

    # --- mailbox and code writes -----------------------------------------------------------

    def _on_mailbox(self, uc: Any, access: int, address: int, size: int, value: int,
                    _: Any) -> None:
        slot, value = address - mailbox.BASE, value & ((1 << (8 * size)) - 1)
        if slot == mailbox.REPORT:
            self.result.reports.append(value)
        elif slot == mailbox.CONSOLE:
            self._console(value)
        else:
            pc = self.regs.pc  # the store retires; the rest of its block does not run now
            self.counter.cut(pc + 4)
            reason: Reason = "end" if slot == mailbox.END else "mmio"
            self._stop_cpu(_Stop("exit", pc, exit=GuestExit(reason, address, size, value)))

    def _console(self, addr: int) -> None:
        """A console line: the NUL-terminated string at `addr`."""
        end = min(addr + CONSOLE_MAX, RAM_END)
        text = bytes(self.uc.mem_read(addr, end - addr)) if in_ram(addr, 1) else b""
        if b"\0" not in text:
            pc = self.regs.pc
            self.counter.cut(pc + 4)
            self._stop_cpu(_Stop("fault", message=f"console line at 0x{addr:x} (stored at "
                                 f"{self._where(pc)}) is not a NUL-terminated string in guest "
                                 f"RAM within {CONSOLE_MAX} bytes"))
            return
        self.result.console.append(text[:text.index(b"\0")].decode(errors="replace"))

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


def _describe_esr(esr: int) -> str:
    ec = esr >> 26
    return {exc.EC_UNKNOWN: "undefined instruction", exc.EC_SVC: "SVC",
            exc.EC_BRK: "BRK", exc.EC_IABT_LOWER: "instruction abort",
            exc.EC_IABT_CURRENT: "instruction abort", exc.EC_DABT_LOWER: "data abort",
            exc.EC_DABT_CURRENT: "data abort"}.get(ec, f"exception (ESR 0x{esr:x})")


def _far_text(entry: exc.ExceptionEntry) -> str:
    if entry.far is None or entry.esr is None:
        return ""
    write = entry.esr & exc.ESR_WNR and entry.esr >> 26 in (exc.EC_DABT_LOWER,
                                                            exc.EC_DABT_CURRENT)
    what = "instruction fetch from" if entry.esr >> 26 in (exc.EC_IABT_LOWER,
                                                           exc.EC_IABT_CURRENT) else \
        ("write to" if write else "read from")
    return f"; {what} 0x{entry.far:x}, outside guest memory"
