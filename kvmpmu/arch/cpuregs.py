"""The vCPU registers a VMM sets and reads by name (`guest: {regs: ...}`, KVM_SET_ONE_REG): the
general registers, PC, PSTATE, the stack pointers and the EL1 system registers, with where each
lives in KVM's ONE_REG space (a field of struct kvm_regs, or a system-register encoding)."""

from __future__ import annotations

from kvmpmu.records import Record

# PSTATE (SPSR layout): M[3:0] is the exception level and stack pointer, M[4] AArch32.
PSTATE_M_MASK = 0x1F
PSTATE_EL0T, PSTATE_EL1T, PSTATE_EL1H = 0x0, 0x4, 0x5
PSTATE_F, PSTATE_I, PSTATE_A, PSTATE_D = 1 << 6, 1 << 7, 1 << 8, 1 << 9
PSTATE_DAIF = PSTATE_D | PSTATE_A | PSTATE_I | PSTATE_F
PSTATE_NZCV = 0xF << 28
PSTATE_RESET = PSTATE_DAIF | PSTATE_EL1H  # KVM's vCPU reset: EL1h, every exception masked
SCTLR_M = 1 << 0  # the EL1&0 stage 1 MMU
DAIF_ENCODING = (3, 3, 4, 2, 1)  # MSR/MRS DAIF


class CpuReg(Record):
    __slots__ = ("name", "kvm", "encoding")

    def __init__(self, name: str, kvm: str,
                 encoding: tuple[int, int, int, int, int] | None = None) -> None:
        self.name = name  # as users write it
        self.kvm = kvm  # where KVM_{GET,SET}_ONE_REG finds it: a kvm_regs field or "sysreg"
        self.encoding = encoding  # op0, op1, CRn, CRm, op2


def _sysreg(name: str, *encoding: int) -> CpuReg:
    op0, op1, crn, crm, op2 = encoding
    return CpuReg(name, "sysreg", (op0, op1, crn, crm, op2))


_CORE = [CpuReg(f"x{n}", f"regs.regs[{n}]") for n in range(31)] + [
    CpuReg("sp", "none: the stack pointer PSTATE selects (SP_EL1 in EL1h, else SP_EL0)"),
    CpuReg("sp_el0", "regs.sp"),
    CpuReg("sp_el1", "sp_el1"),
    CpuReg("pc", "regs.pc"),
    CpuReg("pstate", "regs.pstate"),
    CpuReg("elr_el1", "elr_el1"),
    CpuReg("spsr_el1", "spsr[KVM_SPSR_EL1]"),
]
_SYSTEM = [
    _sysreg("sctlr_el1", 3, 0, 1, 0, 0),
    _sysreg("cpacr_el1", 3, 0, 1, 0, 2),
    _sysreg("ttbr0_el1", 3, 0, 2, 0, 0),
    _sysreg("ttbr1_el1", 3, 0, 2, 0, 1),
    _sysreg("tcr_el1", 3, 0, 2, 0, 2),
    _sysreg("esr_el1", 3, 0, 5, 2, 0),
    _sysreg("far_el1", 3, 0, 6, 0, 0),
    _sysreg("par_el1", 3, 0, 7, 4, 0),
    _sysreg("mair_el1", 3, 0, 10, 2, 0),
    _sysreg("vbar_el1", 3, 0, 12, 0, 0),
    _sysreg("contextidr_el1", 3, 0, 13, 0, 1),
    _sysreg("tpidr_el1", 3, 0, 13, 0, 4),
    _sysreg("tpidr_el0", 3, 3, 13, 0, 2),
    _sysreg("tpidrro_el0", 3, 3, 13, 0, 3),
]
CPU_REGS: dict[str, CpuReg] = {r.name: r for r in _CORE + _SYSTEM}


def exception_level(pstate: int) -> int:
    return pstate >> 2 & 3


def uses_sp_el0(pstate: int) -> bool:
    """EL0, and EL1t, run on SP_EL0; EL1h on SP_EL1."""
    return pstate & PSTATE_M_MASK != PSTATE_EL1H
