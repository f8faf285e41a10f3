"""The vCPU's registers by name (kvmpmu/arch/cpuregs.py), on unicorn's CPU.

Unicorn keeps the stack pointer in use in SP and the other one in its bank (SP_EL0/SP_EL1), and
does not recompute the exception level it translates for when PSTATE is written: both are
handled here, so a PSTATE write really moves the CPU to that EL and stack pointer."""

from __future__ import annotations

from typing import Any

from kvmpmu.arch.cpuregs import CPU_REGS, uses_sp_el0
from kvmpmu.errors import GuestError
from kvmpmu.vmm.emulated.extra import need

SPSR_EL1 = (3, 0, 4, 0, 0)


class RegisterFile:
    def __init__(self, uc: Any) -> None:
        self.uc = uc
        c = need("unicorn.arm64_const")
        self._direct = {f"x{n}": getattr(c, f"UC_ARM64_REG_X{n}") for n in range(31)}
        self._direct.update(pc=c.UC_ARM64_REG_PC, elr_el1=c.UC_ARM64_REG_ELR_EL1)
        self._sp, self._pstate = c.UC_ARM64_REG_SP, c.UC_ARM64_REG_PSTATE
        self._banked = {"sp_el0": c.UC_ARM64_REG_SP_EL0, "sp_el1": c.UC_ARM64_REG_SP_EL1}
        self._pc = c.UC_ARM64_REG_PC

    @property
    def pc(self) -> int:
        return int(self.uc.reg_read(self._pc))

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(self._pc, value)

    @property
    def pstate(self) -> int:
        return int(self.uc.reg_read(self._pstate))

    def get(self, name: str) -> int:
        reg = CPU_REGS.get(name.lower())
        if reg is None:
            raise GuestError(f"unknown register {name!r}")
        name = reg.name
        if name == "pstate":
            return self.pstate
        if name == "sp":
            return int(self.uc.reg_read(self._sp))
        if name in self._banked:
            return int(self.uc.reg_read(self._sp if self._live(name) else self._banked[name]))
        if name == "spsr_el1":
            return int(self.uc.cpr_read(*SPSR_EL1))
        if reg.encoding is not None:
            return int(self.uc.cpr_read(*reg.encoding))
        return int(self.uc.reg_read(self._direct[name]))

    def set(self, name: str, value: int) -> None:
        reg = CPU_REGS.get(name.lower())
        if reg is None:
            raise GuestError(f"unknown register {name!r}")
        name, value = reg.name, value & (2**64 - 1)
        if name == "pstate":
            self.set_pstate(value)
        elif name == "sp":
            self.uc.reg_write(self._sp, value)
        elif name in self._banked:
            self.uc.reg_write(self._sp if self._live(name) else self._banked[name], value)
        elif name == "spsr_el1":
            self.uc.cpr_write(*SPSR_EL1, value)
        elif reg.encoding is not None:
            self.uc.cpr_write(*reg.encoding, value)
        else:
            self.uc.reg_write(self._direct[name], value)

    def set_pstate(self, value: int) -> None:
        """PSTATE with the stack pointers switched as the new mode selects, and the CPU
        translating for the new exception level."""
        old = self.pstate
        if uses_sp_el0(old) != uses_sp_el0(value):
            live = self.uc.reg_read(self._sp)
            leaving, entering = ("sp_el0", "sp_el1") if uses_sp_el0(old) else \
                ("sp_el1", "sp_el0")
            self.uc.reg_write(self._banked[leaving], live)
            self.uc.reg_write(self._sp, self.uc.reg_read(self._banked[entering]))
        self.uc.reg_write(self._pstate, value & 0xFFFFFFFF)
        # a system-register write makes unicorn recompute its cached EL (arm_rebuild_hflags)
        self.uc.cpr_write(*SPSR_EL1, self.uc.cpr_read(*SPSR_EL1))

    def _live(self, name: str) -> bool:
        """Whether the banked stack pointer `name` is the one in SP now."""
        return (name == "sp_el0") == uses_sp_el0(self.pstate)
