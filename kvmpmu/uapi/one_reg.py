"""KVM_{GET,SET}_ONE_REG ids of the registers kvmpmu names, by name and back (semantics §1.3)."""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
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
__all__ = ["CORE_REG_IDS", "ONE_REG_IDS", "ONE_REG_NAMES", "SYSREG_IDS"]
