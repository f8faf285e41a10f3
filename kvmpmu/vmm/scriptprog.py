"""A scripted workload compiled into a real AArch64 guest program, for real KVM and the
CPU-emulated guest alike; `ScriptDecoder` turns the program's mailbox stores back into the
records the scripted engine (`GuestRunner`) makes for the same steps.

Layout at `load` (0x40080000 by default): set-up (mailbox base, VBAR_EL1), the vector table at
the next 2 KiB boundary (+0x800), the steps after it (+0x1000), the end (a store to END in a
loop), then the state buffer. Registers: x0 carries each MSR/MRS value, x16/x17 belong to the
exception handlers, x15 is set to 1 by the UNDEF handler, x19.. count `repeat` loops (one per
nesting level), x28 holds the mailbox base, x29 walks the state buffer. The state the program
reads at its end (vmm/state.py) goes to the buffer as (value, UNDEF flag) pairs and takes one
exit: a store of the buffer's end to STATE (an exit costs far more than a store). The program
reads no register the VMM sets but PC, and keeps interrupts masked (real KVM starts a vCPU at
EL1h with DAIF masked, MMU off). Every mailbox access is a single aligned 64-bit STR with an
immediate offset: the kind of store real KVM can decode at an MMIO exit (ESR ISV set).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kvmpmu.arch import a64
from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.sysregs import EXCEPTION_SYSREGS, SYSREGS
from kvmpmu.errors import BackendLimitError, GuestError
from kvmpmu.spec.guestspec import DEFAULT_LOAD
from kvmpmu.spec.workload import Access, Exit, Repeat, SetEl, Step, VmmCall
from kvmpmu.vmm import mailbox as mb
from kvmpmu.vmm.backend import record
from kvmpmu.vmm.memmap import RAM_BASE, RAM_SIZE
from kvmpmu.vmm.state import FIXED, SELECTED, counter_name, counters_of

STATE_PAIRS = len(FIXED) + sr.PMCR_N_MASK * len(SELECTED)  # reads of the state at most

VALUE, MAILBOX, ESR, TMP, COUNT, UNDEF_FLAG, STATE_PTR = 0, 28, 16, 17, 18, 15, 29
LOOP_COUNTERS = tuple(range(19, 28))
MAX_REPEAT_DEPTH = len(LOOP_COUNTERS)
VBAR_ALIGN, VECTOR_SLOT = 0x800, 0x80  # VBAR_EL1[10:0] are RES0

# The 16 vectors in VBAR_EL1 order; the two synchronous ones the program can take are handled.
VECTOR_NAMES = tuple(f"{kind}, {source}" for source in (
    "current EL with SP_EL0", "current EL with SP_ELx", "lower EL using AArch64",
    "lower EL using AArch32") for kind in ("synchronous", "IRQ", "FIQ", "SError"))
HANDLED_VECTORS = (4, 8)  # +0x200 (from EL1h) and +0x400 (from EL0)

EC_SVC64, EC_SYSREG = 0x15, 0x18  # ESR_EL1.EC, bits [31:26]; UNDEF is EC 0
SPSR_DAIF = 0xF << 6
SPSR_MODE = {0: 0b0000, 1: 0b0101}  # EL0t, EL1h
EC_NAMES = {0x00: "unknown reason", 0x01: "WFI/WFE", 0x0E: "illegal execution state",
            0x15: "SVC", 0x16: "HVC", 0x17: "SMC", 0x18: "trapped MSR/MRS",
            0x20: "instruction abort from EL0", 0x21: "instruction abort",
            0x22: "PC alignment fault", 0x24: "data abort from EL0", 0x25: "data abort",
            0x26: "SP alignment fault", 0x2F: "SError", 0x3C: "BRK"}


class ScriptCompileError(BackendLimitError):
    """A workload step that cannot become guest code (`execute`, nesting too deep): the
    workload cannot run on a real CPU."""


@dataclass(frozen=True)
class Site:
    """An MRS or MSR of the script, by the address of the instruction; "state" for the reads
    of the PMU state at the end (vmm/state.py)."""

    register: str
    access: str  # "read" or "write", as the scripted engine records UNDEF accesses, or "state"
    step: Access | None = None


@dataclass(frozen=True)
class ScriptProgram:
    segments: tuple[tuple[int, bytes], ...]  # (address, bytes), as emulated.program.Program
    entry: int
    sites: Mapping[int, Site]  # MRS/MSR address -> access; each MRS's store to READ follows it
    vmm_steps: tuple[VmmCall, ...]  # a store to VMM_CALL gives the index here
    exits: Mapping[int, Exit]  # address of each store to EXIT
    fault_stores: Mapping[int, str]  # address of each store to FAULT -> the vector's name
    mailbox: int
    state_buffer: int  # where the (value, UNDEF flag) pairs of the end state start
    state_store: int  # address of the store of the buffer's end to STATE

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.segments)


def compile_steps(steps: tuple[Step, ...], load: int = DEFAULT_LOAD,
                  mailbox: int = mb.BASE) -> ScriptProgram:
    """The guest program of one vCPU's steps; ScriptCompileError for a step it cannot run.
    Steps that differ only in their source locations make the same code: it is compiled once
    (a corpus compiles the same probe for hundreds of VMs) and given this call's steps."""
    key = (_shape(steps), load, mailbox)
    cached = _COMPILED.get(key)
    if cached is None:
        cached = _COMPILED[key] = _compile(steps, load, mailbox)
        if len(_COMPILED) > _COMPILED_MAX:
            del _COMPILED[next(iter(_COMPILED))]
    return _with_steps(cached, steps)


_COMPILED: dict[tuple[Any, int, int], tuple[ScriptProgram, tuple[Step, ...]]] = {}
_COMPILED_MAX = 64


def _shape(steps: tuple[Step, ...]) -> tuple[Any, ...]:
    """What of the steps the code depends on: everything but their locations."""
    out: list[Any] = []
    for step in steps:
        if isinstance(step, Access):
            out.append(("access", step.ops))
        elif isinstance(step, SetEl):
            out.append(("el", step.el))
        elif isinstance(step, Repeat):
            out.append(("repeat", step.times, _shape(step.steps)))
        else:  # a vmm step's calls are the VMM's; execute does not compile
            out.append((type(step).__name__,))
    return tuple(out)


def _flat(steps: tuple[Step, ...]) -> list[Step]:
    out: list[Step] = []
    for step in steps:
        out.append(step)
        if isinstance(step, Repeat):
            out += _flat(step.steps)
    return out


def _with_steps(cached: tuple[ScriptProgram, tuple[Step, ...]],
                steps: tuple[Step, ...]) -> ScriptProgram:
    program, compiled_from = cached
    if compiled_from is steps:
        return program
    # the same shape: the same walk, step for step (typed Any: each keeps its own kind)
    new: dict[int, Any] = {id(old): step for old, step in
                           zip(_flat(compiled_from), _flat(steps), strict=True)}
    return dataclasses.replace(
        program,
        sites={a: dataclasses.replace(s, step=new[id(s.step)]) if s.step else s
               for a, s in program.sites.items()},
        vmm_steps=tuple(new[id(s)] for s in program.vmm_steps),
        exits={a: new[id(s)] for a, s in program.exits.items()})


def _compile(steps: tuple[Step, ...], load: int,
             mailbox: int) -> tuple[ScriptProgram, tuple[Step, ...]]:
    if load % 4 or not RAM_BASE <= load < RAM_BASE + RAM_SIZE:
        raise ScriptCompileError(f"load address 0x{load:x} is not a word-aligned address in "
                                 f"guest RAM 0x{RAM_BASE:x}-0x{RAM_BASE + RAM_SIZE - 1:x}")
    compiler = _Compiler(load, mailbox)
    compiler.steps(steps, 0)
    code = compiler.finish()
    if load + len(code) > RAM_BASE + RAM_SIZE:
        raise ScriptCompileError(f"the compiled program ({len(code)} bytes at 0x{load:x}) does "
                                 "not fit in guest RAM")
    return ScriptProgram(((load, code),), load, compiler.sites, tuple(compiler.vmm_steps),
                         compiler.exits, compiler.fault_stores, mailbox,
                         compiler.asm.address("state_buffer"), compiler.state_store), steps


class _Compiler:
    def __init__(self, load: int, mailbox: int) -> None:
        self.asm = a64.Assembler(load)
        self.sites: dict[int, Site] = {}
        self.vmm_steps: list[VmmCall] = []
        self.exits: dict[int, Exit] = {}
        self.fault_stores: dict[int, str] = {}
        self.switches_el = False
        self.state_store = 0
        self._labels = 0
        asm = self.asm
        asm.emit(*a64.mov_imm(MAILBOX, mailbox))
        asm.branch("adr", "vectors", ESR)
        asm.emit(a64.msr(EXCEPTION_SYSREGS["VBAR_EL1"], ESR), a64.isb())
        asm.branch("b", "steps")
        asm.align(VBAR_ALIGN)
        asm.label("vectors")
        for index, name in enumerate(VECTOR_NAMES):
            if index in HANDLED_VECTORS:
                self._sync_handler(name)
            else:
                self._fault(name, read_esr=True)
            asm.align(VECTOR_SLOT)
        asm.label("steps")

    def label(self) -> str:
        self._labels += 1
        return f"L{self._labels}"

    def finish(self) -> bytes:
        self._read_state()
        asm = self.asm
        asm.label("end")  # every later KVM_RUN exits here again
        asm.emit(a64.str_imm(a64.XZR, MAILBOX, mb.END))
        asm.branch("b", "end")
        asm.align(8)
        asm.label("state_buffer")
        asm.emit(*[0] * (STATE_PAIRS * 4))  # two 64-bit words per read
        return asm.assemble()

    def _read_state(self) -> None:
        """At EL1, the reads of vmm/state.py into the state buffer; x0 is zeroed first, so a
        read that UNDEFs leaves 0 (and N = 0 counters when PMCR_EL0 does); then one store of
        the buffer's end to STATE."""
        asm = self.asm
        if self.switches_el:  # else the program never left EL1
            asm.emit(a64.svc(1))
        asm.branch("adr", "state_buffer", STATE_PTR)
        for name in FIXED:
            self._state_read(name)
            if name == "PMCR_EL0":
                asm.emit(a64.ubfx(COUNT, VALUE, sr.PMCR_N_SHIFT, 5))
        loop, done = self.label(), self.label()
        asm.label(loop)
        asm.branch("cbz", done, COUNT)
        asm.emit(a64.sub_imm(COUNT, COUNT, 1))
        self.sites[asm.emit(a64.msr(SYSREGS["PMSELR_EL0"], COUNT))] = Site("PMSELR_EL0", "state")
        for name in SELECTED:
            self._state_read(name)
        asm.branch("b", loop)
        asm.label(done)
        self.state_store = asm.emit(a64.str_imm(STATE_PTR, MAILBOX, mb.STATE))

    def _state_read(self, name: str) -> None:
        asm = self.asm
        asm.emit(*a64.mov_imm(VALUE, 0), *a64.mov_imm(UNDEF_FLAG, 0))
        self.sites[asm.emit(a64.mrs(VALUE, SYSREGS[name]))] = Site(name, "state")
        asm.emit(a64.str_post(VALUE, STATE_PTR, 8), a64.str_post(UNDEF_FLAG, STATE_PTR, 8))

    # --- the vector table ----------------------------------------------------------------------

    def _fault(self, vector: str, read_esr: bool) -> None:
        if read_esr:
            self.asm.emit(a64.mrs(ESR, EXCEPTION_SYSREGS["ESR_EL1"]))
        self.fault_stores[self.asm.emit(a64.str_imm(ESR, MAILBOX, mb.FAULT))] = vector
        self.asm.branch("b", "end")

    def _sync_handler(self, vector: str) -> None:
        """UNDEF: report ELR_EL1 and skip the instruction. SVC #el: return at that EL (SPSR_EL1
        set whatever the current EL). Anything else: a fault."""
        asm, regs = self.asm, EXCEPTION_SYSREGS
        undef, fault, el0 = self.label(), self.label(), self.label()
        asm.emit(a64.mrs(ESR, regs["ESR_EL1"]), a64.ubfx(TMP, ESR, 26, 6))
        asm.branch("cbz", undef, TMP)
        asm.emit(a64.subs_imm(a64.XZR, TMP, EC_SYSREG))  # EL0 ID register reads with FEAT_IDST
        asm.branch("b.eq", undef)
        asm.emit(a64.subs_imm(a64.XZR, TMP, EC_SVC64))
        asm.branch("b.ne", fault)
        asm.emit(a64.ubfx(TMP, ESR, 0, 16))  # the SVC's imm16: the target EL
        asm.branch("cbz", el0, TMP)
        asm.emit(a64.subs_imm(a64.XZR, TMP, 1))
        asm.branch("b.ne", fault)
        for el in (1, 0):
            if el == 0:
                asm.label(el0)
            asm.emit(*a64.mov_imm(TMP, SPSR_DAIF | SPSR_MODE[el]),
                     a64.msr(regs["SPSR_EL1"], TMP), a64.eret())
        asm.label(undef)
        asm.emit(*a64.mov_imm(UNDEF_FLAG, 1))
        asm.emit(a64.mrs(TMP, regs["ELR_EL1"]), a64.str_imm(TMP, MAILBOX, mb.UNDEF),
                 a64.add_imm(TMP, TMP, 4), a64.msr(regs["ELR_EL1"], TMP), a64.eret())
        asm.label(fault)
        self._fault(vector, read_esr=False)

    # --- the steps -------------------------------------------------------------------------------

    def steps(self, steps: tuple[Step, ...], depth: int) -> None:
        asm = self.asm
        for step in steps:
            if isinstance(step, Access):
                for name, value in step.ops:
                    self._access(step, name, value)
            elif isinstance(step, SetEl):
                asm.emit(a64.svc(step.el))
                self.switches_el = True
            elif isinstance(step, VmmCall):
                asm.emit(*a64.mov_imm(VALUE, len(self.vmm_steps)),
                         a64.str_imm(VALUE, MAILBOX, mb.VMM_CALL))
                self.vmm_steps.append(step)
            elif isinstance(step, Exit):
                self.exits[asm.emit(a64.str_imm(a64.XZR, MAILBOX, mb.EXIT))] = step
            elif isinstance(step, Repeat):
                self._repeat(step, depth)
            else:
                raise ScriptCompileError(
                    "synthetic events cannot be made by a guest program on a real CPU: only "
                    "write, read, program, enable, disable, swinc, el, repeat, vmm and exit "
                    "steps compile", loc=step.loc, path="execute")

    def _access(self, step: Access, name: str, value: int | None) -> None:
        asm, reg = self.asm, SYSREGS[name]
        if value is None:
            self.sites[asm.emit(a64.mrs(VALUE, reg))] = Site(name, "read", step)
            asm.emit(a64.str_imm(VALUE, MAILBOX, mb.READ))
            return
        if value:
            asm.emit(*a64.mov_imm(VALUE, value))
        self.sites[asm.emit(a64.msr(reg, VALUE if value else a64.XZR))] = Site(name, "write", step)

    def _repeat(self, step: Repeat, depth: int) -> None:
        if depth == MAX_REPEAT_DEPTH:
            raise ScriptCompileError(
                f"nested more than {MAX_REPEAT_DEPTH} deep cannot be compiled (one "
                "loop-counter register per level)", loc=step.loc, path="repeat")
        asm, counter = self.asm, LOOP_COUNTERS[depth]
        top, done = self.label(), self.label()
        if step.times:
            asm.emit(*a64.mov_imm(counter, step.times))
        else:
            asm.branch("b", done)  # never runs, but compiled all the same: the same errors
        asm.label(top)
        self.steps(step.steps, depth + 1)
        asm.emit(a64.sub_imm(counter, counter, 1))
        asm.branch("cbz", done, counter)
        asm.branch("b", top)
        asm.label(done)


# --- what the program reports --------------------------------------------------------------------

@dataclass(frozen=True)
class GuestRequest:
    """A mailbox store the VMM must act on: make a `vmm:` step's calls then resume ("vmm"),
    resume at its next KVM_RUN ("exit"), or stop ("end", "fault")."""

    kind: str
    step: VmmCall | Exit | None = None
    esr: int | None = None
    message: str = ""


class ScriptDecoder:
    """Fed every mailbox store of one vCPU (offset in the page, value, and the PC of the store:
    KVM_GET_ONE_REG of PC at the MMIO exit on real KVM). Rebuilds the scripted engine's `reads`
    and `undefined`; a store that does not fit the program is a GuestError.

    After an UNDEF MRS the handler resumes at the store to READ that follows it, which then
    carries a stale x0: the decoder drops that one store (the handler stays the same for every
    instruction, and the program stays one MRS and one STR per read). The end state is read
    from guest memory (`memory(address, size)`) when the buffer's end is stored to STATE."""

    def __init__(self, program: ScriptProgram, memory: Callable[[int, int], bytes]) -> None:
        self.program = program
        self._memory = memory
        self.reads: list[list[Any]] = []  # as the scripted engine records them
        self.undefined: list[list[Any]] = []
        self.state: dict[str, int | None] = {}  # the PMU state read at the end (vmm/state.py)
        self.ended = False
        self.fault: GuestRequest | None = None
        self._stale_read: int | None = None  # address of the store to drop
        self._handlers = {mb.READ: self._read, mb.UNDEF: self._undef,
                          mb.VMM_CALL: self._vmm_call, mb.EXIT: self._exit,
                          mb.END: self._end, mb.FAULT: self._fault, mb.STATE: self._state}

    def store(self, offset: int, value: int, pc: int) -> GuestRequest | None:
        """None: handled, the guest goes on."""
        handler = self._handlers.get(offset)
        if handler is None:
            raise GuestError(f"the guest program stored 0x{value:x} at pc 0x{pc:x} to mailbox "
                              f"offset 0x{offset:x}, which compiled scripts do not use")
        return handler(value, pc)

    def _read(self, value: int, pc: int) -> None:
        site = self.program.sites.get(pc - 4)
        if site is None or site.access != "read":
            raise GuestError(f"a store to READ at pc 0x{pc:x} follows no MRS of the script")
        if self._stale_read == pc:
            self._stale_read = None
            return
        record(self.reads, site.register, value)

    def _state(self, end: int, pc: int) -> None:
        """The (value, UNDEF flag) pairs from the state buffer to `end`, in vmm/state.py's
        order (the counters' reads follow from the PMCR_EL0 read)."""
        start = self.program.state_buffer
        size = end - start
        if pc != self.program.state_store or self.state or not 0 < size <= STATE_PAIRS * 16 \
                or size % 16:
            raise GuestError(f"a store of 0x{end:x} to STATE at pc 0x{pc:x} is not the end of "
                             "the script's state buffer")
        words = struct.unpack(f"<{size // 8}Q", self._memory(start, size))
        names = list(FIXED)
        for value, undef in zip(words[::2], words[1::2], strict=True):
            if not names:
                raise GuestError("the state buffer holds more reads than the PMU state has")
            name = names.pop(0)
            self.state[name] = None if undef else value
            if name == "PMCR_EL0":
                names.extend(counter_name(s, n) for n in reversed(range(counters_of(
                    self.state[name]))) for s in SELECTED)
        if names:
            raise GuestError(f"the state buffer ends before {names[0]} was read")

    def _undef(self, elr: int, pc: int) -> None:
        site = self.program.sites.get(elr)
        if site is None:
            raise GuestError(f"UNDEF at pc 0x{elr:x}, which is no PMU access of the script")
        if site.access == "state":  # its flag in the state buffer says so
            return
        if site.access == "read":
            record(self.reads, site.register, None)
            self._stale_read = elr + 4
        record(self.undefined, site.register, site.access)

    def _vmm_call(self, index: int, pc: int) -> GuestRequest:
        if index >= len(self.program.vmm_steps):
            raise GuestError(f"VMM_CALL {index} at pc 0x{pc:x}: the script has "
                              f"{len(self.program.vmm_steps)} vmm steps")
        return GuestRequest("vmm", self.program.vmm_steps[index])

    def _exit(self, value: int, pc: int) -> GuestRequest:
        step = self.program.exits.get(pc)
        if step is None:
            raise GuestError(f"a store to EXIT at pc 0x{pc:x} is no exit step of the script")
        return GuestRequest("exit", step)

    def _end(self, value: int, pc: int) -> GuestRequest:
        self.ended = True
        return GuestRequest("end")

    def _fault(self, esr: int, pc: int) -> GuestRequest:
        vector = self.program.fault_stores.get(pc, f"pc 0x{pc:x}")
        ec = esr >> 26 & 0x3F
        what = (f"ESR_EL1 0x{esr:x}: EC 0x{ec:02x}, {EC_NAMES.get(ec, 'unallocated')}"
                if vector.startswith("synchronous") else "interrupts are masked: unexpected")
        self.fault = GuestRequest("fault", esr=esr, message=(
            f"the guest program took an exception it does not handle ({vector}; {what})"))
        return self.fault
