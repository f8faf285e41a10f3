"""Exception entry to EL1 as the Arm ARM takes it (AArch64.TakeException), and the syndromes.

Vector offsets from VBAR_EL1: from EL1t +0x000, from EL1h +0x200, from AArch64 EL0 +0x400; then
+0x000 synchronous, +0x080 IRQ. On entry SPSR_EL1 = PSTATE, ELR_EL1 = the preferred return
address, ESR_EL1 and FAR_EL1 for synchronous ones, PSTATE = EL1h with D, A, I, F set (NZCV
kept); the stack pointer becomes SP_EL1."""

from __future__ import annotations

from dataclasses import dataclass

from kvmpmu.arch.cpuregs import (
    PSTATE_EL1H,
    PSTATE_EL1T,
    PSTATE_M_MASK,
    PSTATE_NZCV,
    PSTATE_RESET,
    exception_level,
)
from kvmpmu.vmm.emulated.registers import RegisterFile

SYNC, IRQ = 0x000, 0x080
FROM_EL1T, FROM_EL1H, FROM_EL0 = 0x000, 0x200, 0x400

# ESR_EL1.EC (Arm ARM D17.2.37)
EC_UNKNOWN = 0x00
EC_SVC = 0x15
EC_IABT_LOWER, EC_IABT_CURRENT = 0x20, 0x21
EC_DABT_LOWER, EC_DABT_CURRENT = 0x24, 0x25
EC_BRK = 0x3C
ESR_IL = 1 << 25  # a 32-bit instruction
ESR_WNR = 1 << 6  # data abort: the access was a write
FSC_EXTERNAL = 0x10  # synchronous External abort: nothing answers at that physical address

# A64 exception-generating instructions (mask 0xFFE0001F), imm16 in bits [20:5]
EXCEPTION_INSN_MASK = 0xFFE0001F
SVC, HVC, SMC, BRK = 0xD4000001, 0xD4000002, 0xD4000003, 0xD4200000


def imm16(insn: int) -> int:
    return insn >> 5 & 0xFFFF


def esr(ec: int, iss: int = 0) -> int:
    return ec << 26 | ESR_IL | iss


def abort_esr(fetch: bool, from_el0: bool, write: bool) -> int:
    if fetch:
        return esr(EC_IABT_LOWER if from_el0 else EC_IABT_CURRENT, FSC_EXTERNAL)
    return esr(EC_DABT_LOWER if from_el0 else EC_DABT_CURRENT,
               FSC_EXTERNAL | (ESR_WNR if write else 0))


@dataclass(frozen=True)
class ExceptionEntry:
    """An exception to take: its kind (SYNC or IRQ), where it returns to, its syndrome."""

    kind: int
    return_to: int
    esr: int | None = None  # None for an IRQ
    far: int | None = None  # aborts: the faulting address


def vector_offset(pstate: int, kind: int) -> int:
    if exception_level(pstate) == 0:
        return FROM_EL0 + kind
    return (FROM_EL1H if pstate & PSTATE_M_MASK == PSTATE_EL1H else FROM_EL1T) + kind


def take(regs: RegisterFile, exc: ExceptionEntry, vbar: int) -> None:
    """Enter EL1 at the vector for `exc` from the CPU's current state."""
    pstate = regs.pstate
    target = vbar + vector_offset(pstate, exc.kind)
    regs.set("elr_el1", exc.return_to)
    if exc.esr is not None:
        regs.set("esr_el1", exc.esr)
    if exc.far is not None:
        regs.set("far_el1", exc.far)
    regs.set_pstate(pstate & PSTATE_NZCV | PSTATE_RESET)
    regs.set("spsr_el1", pstate)
    regs.pc = target


def returns_to(spsr: int) -> int | None:
    """The PSTATE an ERET with this SPSR_EL1 restores, or None for an illegal return (to EL2/3,
    AArch32 or a reserved mode), which kvmpmu does not model."""
    if spsr & PSTATE_M_MASK not in (0, PSTATE_EL1T, PSTATE_EL1H):
        return None
    return spsr


def describe(esr: int) -> str:
    ec = esr >> 26
    return {EC_UNKNOWN: "undefined instruction", EC_SVC: "SVC",
            EC_BRK: "BRK", EC_IABT_LOWER: "instruction abort",
            EC_IABT_CURRENT: "instruction abort", EC_DABT_LOWER: "data abort",
            EC_DABT_CURRENT: "data abort"}.get(ec, f"exception (ESR 0x{esr:x})")


def far_text(entry: ExceptionEntry) -> str:
    if entry.far is None or entry.esr is None:
        return ""
    write = entry.esr & ESR_WNR and entry.esr >> 26 in (EC_DABT_LOWER,
                                                            EC_DABT_CURRENT)
    what = "instruction fetch from" if entry.esr >> 26 in (EC_IABT_LOWER,
                                                           EC_IABT_CURRENT) else \
        ("write to" if write else "read from")
    return f"; {what} 0x{entry.far:x}, outside guest memory"
