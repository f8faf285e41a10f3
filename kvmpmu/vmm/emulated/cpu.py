"""One vCPU run by unicorn, resumable like KVM_RUN: `run()` executes until the guest exits to
the VMM and says why (GuestExit).

PMU system-register accesses trap (instruction hooks) into the vPMU through `sysreg_access`, the
same handlers the scripted guest uses; events are counted per translated block (counting.py);
exceptions are taken as the Arm ARM says (exceptions.py). A hook can only redirect the CPU from
unicorn's interrupt hook: elsewhere it stops the CPU and the run loop acts."""

from __future__ import annotations

import time
from typing import Any

from kvmpmu.arch.cpuregs import CPU_REGS, DAIF_ENCODING, PSTATE_I, SCTLR_M, exception_level
from kvmpmu.arch.sysregs import SYSREGS_BY_ENCODING
from kvmpmu.kvm.system import Vcpu
from kvmpmu.kvm.vpmu import Undefined
from kvmpmu.vmm import mailbox
from kvmpmu.vmm.emulated import exceptions as exc
from kvmpmu.vmm.emulated import smccc
from kvmpmu.vmm.emulated.core import GuestCore
from kvmpmu.vmm.emulated.exits import FINAL, GuestExit, GuestRun, Reason, Stop
from kvmpmu.vmm.emulated.extra import need
from kvmpmu.vmm.emulated.machine import RAM_END, in_ram
from kvmpmu.vmm.emulated.program import Program

__all__ = ["FINAL", "EmulatedGuest", "GuestExit", "GuestRun"]

NEVER = (1 << 64) - 1  # an `until` address no guest reaches
CHUNK = 1 << 20  # instructions per emu_start at most: the wall clock is checked in between
CONSOLE_MAX = 1024  # bytes of a console line
SCTLR_ENCODING = CPU_REGS["sctlr_el1"].encoding


class EmulatedGuest(GuestCore):
    def __init__(self, vcpu: Vcpu, program: Program, max_instructions: int,
                 timeout: float | None = None, exit_on_irq_change: bool = False,
                 regs: tuple[tuple[str, int], ...] = ()) -> None:
        super().__init__(vcpu, program, max_instructions, timeout, exit_on_irq_change, regs)
        self._add_hooks()

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

    def _act(self, stop: Stop) -> GuestExit | None:
        if stop.reason == "exception" and stop.entry is not None:
            return self._enter(stop.entry)
        if stop.reason == "exit" and stop.exit is not None:
            self.regs.pc = stop.pc + 4
            return stop.exit
        if stop.reason == "fault":
            return self._fault(stop.message)
        return None

    # --- PMU traps -------------------------------------------------------------------------

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
            self._stop_cpu(Stop("exception", entry=exc.ExceptionEntry(
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
            self._stop_cpu(Stop("exception", entry=exc.ExceptionEntry(
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
            self._stop_cpu(Stop("check"))

    def _other_msr(self, uc: Any, encoding: tuple[int, ...], value: int) -> bool:
        if encoding == SCTLR_ENCODING and value & SCTLR_M:
            pc = self.regs.pc
            self.counter.cut(pc)
            self._stop_cpu(Stop("fault", message=f"the guest enables the MMU (SCTLR_EL1.M) at "
                                 f"{self._where(pc)}: guests run with the MMU off, as KVM "
                                 "starts them"))
            return True
        if encoding == DAIF_ENCODING and self._pending_irq() and not value & PSTATE_I:
            self.counter.cut(self.regs.pc + 4)  # runs, then the loop takes the interrupt
            self._stop_cpu(Stop("check"))
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
            self._stop_cpu(Stop("fault", message=f"CPU exception {intno} (QEMU's number) at "
                                 f"{self._where(pc)}: not modelled"))
            return
        if self._enter(entry) is not None:
            self._stop_cpu(Stop("fault", message=self.result.fault or ""))
        elif self._wants_attention() or self._over_limits():
            self._stop_cpu(Stop("check"))

    def _firmware_call(self, pc: int, imm: int) -> None:
        """HVC or SMC at EL1: an SMCCC call KVM answers; the guest goes on after it."""
        self.counter.cut(pc + 4)
        event = smccc.system_event(imm, self.regs.get("x0"))
        self.regs.pc = pc + 4
        if event is not None:
            self._stop_cpu(Stop("exit", pc, exit=GuestExit("system_event", data=event)))
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
        fetch = access == self._unicorn.UC_MEM_FETCH_UNMAPPED
        write = access == self._unicorn.UC_MEM_WRITE_UNMAPPED
        from_el0 = exception_level(self.regs.pstate) == 0
        vbar = self.regs.get("vbar_el1")
        if fetch and vbar and vbar <= address < vbar + 0x800:
            return self._fault(f"the vector table at 0x{vbar:x} (VBAR_EL1) is outside guest "
                               f"memory: an exception could not be taken at 0x{address:x}")
        return self._enter(exc.ExceptionEntry(
            exc.SYNC, address if fetch else pc, exc.abort_esr(fetch, from_el0, write), address))

    # --- mailbox ---------------------------------------------------------------------------

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
            self._stop_cpu(Stop("exit", pc, exit=GuestExit(reason, address, size, value)))

    def _console(self, addr: int) -> None:
        """A console line: the NUL-terminated string at `addr`."""
        end = min(addr + CONSOLE_MAX, RAM_END)
        text = bytes(self.uc.mem_read(addr, end - addr)) if in_ram(addr, 1) else b""
        if b"\0" not in text:
            pc = self.regs.pc
            self.counter.cut(pc + 4)
            self._stop_cpu(Stop("fault", message=f"console line at 0x{addr:x} (stored at "
                                 f"{self._where(pc)}) is not a NUL-terminated string in guest "
                                 f"RAM within {CONSOLE_MAX} bytes"))
            return
        self.result.console.append(text[:text.index(b"\0")].decode(errors="replace"))
