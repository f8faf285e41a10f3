"""KVM_{GET,SET}_ONE_REG ids of the registers kvmpmu names, by name and back (semantics §1.3)."""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.cpuregs import CPU_REGS, uses_sp_el0
from kvmpmu.uapi.kvm import CORE_REG_IDS, sysreg_one_reg_id

SYSREG_IDS: dict[str, int] = {
    name: sysreg_one_reg_id(r.op0, r.op1, r.crn, r.crm, r.op2)
    for name, r in {**sr.SYSREGS, **sr.EXCEPTION_SYSREGS}.items()
}
# ELR_EL1 and SPSR_EL1 by name are the core registers; their system-register ids name them too.
ONE_REG_IDS: dict[str, int] = {**SYSREG_IDS, **CORE_REG_IDS}
ONE_REG_NAMES: dict[int, str] = {
    **{reg_id: name for name, reg_id in SYSREG_IDS.items()},
    **{reg_id: name for name, reg_id in CORE_REG_IDS.items()},
}
# kvmpmu/arch/cpuregs.py's names of the core registers (KVM's `regs.sp` is SP_EL0)
CPU_REG_CORE: dict[str, str] = {
    **{f"x{n}": f"X{n}" for n in range(31)}, "sp_el0": "SP", "sp_el1": "SP_EL1", "pc": "PC",
    "pstate": "PSTATE", "elr_el1": "ELR_EL1", "spsr_el1": "SPSR_EL1"}
CORE_CPU_REG: dict[str, str] = {core: name for name, core in CPU_REG_CORE.items()}


def cpu_reg_one_reg_id(name: str, pstate: int) -> int:
    """The ONE_REG id of a register by its cpuregs name; `sp` is the stack pointer `pstate`
    selects (SP_EL1 in EL1h, else SP_EL0)."""
    if name == "sp":
        name = "sp_el0" if uses_sp_el0(pstate) else "sp_el1"
    core = CPU_REG_CORE.get(name)
    if core is not None:
        return CORE_REG_IDS[core]
    encoding = CPU_REGS[name].encoding
    assert encoding is not None  # every other register of cpuregs is a system register
    return sysreg_one_reg_id(*encoding)


__all__ = ["CORE_CPU_REG", "CORE_REG_IDS", "CPU_REG_CORE", "ONE_REG_IDS", "ONE_REG_NAMES",
           "SYSREG_IDS", "cpu_reg_one_reg_id"]
