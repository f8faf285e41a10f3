"""An encoder for the few A64 instructions compiled guest programs use (Arm ARM, C6.2).

Standard library only: it runs inside the minimal Python of a real arm64 guest host too.
Registers are numbers 0..31; 31 is XZR or SP as the instruction defines it. Branch and ADR
operands are byte offsets from the instruction's own address.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

XZR = 31
SP = 31

CONDITIONS = {"eq": 0, "ne": 1, "hs": 2, "lo": 3, "mi": 4, "pl": 5, "vs": 6, "vc": 7,
              "hi": 8, "ls": 9, "ge": 10, "lt": 11, "gt": 12, "le": 13, "al": 14}


class EncodingError(ValueError):
    """An operand the instruction cannot encode."""


class SystemRegister(Protocol):
    @property
    def op0(self) -> int: ...
    @property
    def op1(self) -> int: ...
    @property
    def crn(self) -> int: ...
    @property
    def crm(self) -> int: ...
    @property
    def op2(self) -> int: ...


def _field(value: int, lo: int, hi: int, what: str) -> int:
    if not lo <= value <= hi:
        raise EncodingError(f"{what} {value} is outside {lo}..{hi}")
    return value


def _reg(r: int) -> int:
    return _field(r, 0, 31, "register")


def _offset(offset: int, bits: int, what: str) -> int:
    """A word-aligned signed offset as the `bits`-bit field of instruction words."""
    if offset % 4:
        raise EncodingError(f"{what} offset {offset} is not a multiple of 4")
    limit = 1 << (bits + 1)  # bytes: 2^(bits-1) words
    _field(offset, -limit, limit - 4, f"{what} offset")
    return (offset >> 2) & ((1 << bits) - 1)


# --- moves --------------------------------------------------------------------------------------

def _wide(opcode: int, rd: int, imm16: int, shift: int) -> int:
    if shift not in (0, 16, 32, 48):
        raise EncodingError(f"shift {shift} is not 0, 16, 32 or 48")
    return opcode | (shift // 16) << 21 | _field(imm16, 0, 0xFFFF, "imm16") << 5 | _reg(rd)


def movz(rd: int, imm16: int, shift: int = 0) -> int:
    return _wide(0xD2800000, rd, imm16, shift)


def movk(rd: int, imm16: int, shift: int = 0) -> int:
    return _wide(0xF2800000, rd, imm16, shift)


def mov_imm(rd: int, value: int) -> list[int]:
    """Any 64-bit constant: MOVZ of the first non-zero halfword, MOVK of the others."""
    _field(value, 0, 2**64 - 1, "64-bit constant")
    halves = [(shift, value >> shift & 0xFFFF) for shift in (0, 16, 32, 48)]
    nonzero = [(shift, half) for shift, half in halves if half] or [(0, 0)]
    first, *rest = nonzero
    return [movz(rd, first[1], first[0])] + [movk(rd, half, shift) for shift, half in rest]


# --- system registers ---------------------------------------------------------------------------

def _sysreg(reg: SystemRegister) -> int:
    return (_field(reg.op0, 2, 3, "op0") - 2) << 19 | _field(reg.op1, 0, 7, "op1") << 16 | \
        _field(reg.crn, 0, 15, "CRn") << 12 | _field(reg.crm, 0, 15, "CRm") << 8 | \
        _field(reg.op2, 0, 7, "op2") << 5


def mrs(rt: int, reg: SystemRegister) -> int:
    return 0xD5300000 | _sysreg(reg) | _reg(rt)


def msr(reg: SystemRegister, rt: int) -> int:
    return 0xD5100000 | _sysreg(reg) | _reg(rt)


# --- loads and stores (64-bit, unsigned immediate offset) ---------------------------------------

def _ldst(opcode: int, rt: int, rn: int, offset: int) -> int:
    if offset % 8:
        raise EncodingError(f"offset {offset} is not a multiple of 8")
    return opcode | _field(offset, 0, 32760, "offset") // 8 << 10 | _reg(rn) << 5 | _reg(rt)


def str_imm(rt: int, rn: int, offset: int = 0) -> int:
    """STR Xt, [Xn|SP, #offset]."""
    return _ldst(0xF9000000, rt, rn, offset)


def str_post(rt: int, rn: int, step: int) -> int:
    """STR Xt, [Xn|SP], #step: store, then add `step` (-256..255) to Xn."""
    if rt == rn and rn != 31:
        raise EncodingError("STR with writeback to its own source register is UNPREDICTABLE")
    return 0xF8000400 | _field(step, -256, 255, "step") % 512 << 12 | _reg(rn) << 5 | _reg(rt)


def ldr_imm(rt: int, rn: int, offset: int = 0) -> int:
    """LDR Xt, [Xn|SP, #offset]."""
    return _ldst(0xF9400000, rt, rn, offset)


# --- arithmetic and bitfields (64-bit) ----------------------------------------------------------

def _addsub(opcode: int, rd: int, rn: int, imm12: int, shift: int) -> int:
    if shift not in (0, 12):
        raise EncodingError(f"shift {shift} is not 0 or 12")
    return opcode | (shift // 12) << 22 | _field(imm12, 0, 0xFFF, "imm12") << 10 | \
        _reg(rn) << 5 | _reg(rd)


def add_imm(rd: int, rn: int, imm12: int, shift: int = 0) -> int:
    """ADD Xd|SP, Xn|SP, #imm12{, LSL #12}."""
    return _addsub(0x91000000, rd, rn, imm12, shift)


def sub_imm(rd: int, rn: int, imm12: int, shift: int = 0) -> int:
    """SUB Xd|SP, Xn|SP, #imm12{, LSL #12}."""
    return _addsub(0xD1000000, rd, rn, imm12, shift)


def subs_imm(rd: int, rn: int, imm12: int, shift: int = 0) -> int:
    """SUBS Xd, Xn|SP, #imm12{, LSL #12}; CMP is SUBS with Xd = XZR."""
    return _addsub(0xF1000000, rd, rn, imm12, shift)


def ubfm(rd: int, rn: int, immr: int, imms: int) -> int:
    return 0xD3400000 | _field(immr, 0, 63, "immr") << 16 | _field(imms, 0, 63, "imms") << 10 \
        | _reg(rn) << 5 | _reg(rd)


def ubfx(rd: int, rn: int, lsb: int, width: int) -> int:
    """Bits [lsb+width-1:lsb] of Xn into Xd, zero-extended (UBFM)."""
    _field(width, 1, 64 - _field(lsb, 0, 63, "lsb"), "width")
    return ubfm(rd, rn, lsb, lsb + width - 1)


# --- branches and exceptions --------------------------------------------------------------------

def b(offset: int) -> int:
    return 0x14000000 | _offset(offset, 26, "B")


def b_cond(cond: str, offset: int) -> int:
    if cond not in CONDITIONS:
        raise EncodingError(f"unknown condition {cond!r}")
    return 0x54000000 | _offset(offset, 19, "B.cond") << 5 | CONDITIONS[cond]


def cbz(rt: int, offset: int) -> int:
    return 0xB4000000 | _offset(offset, 19, "CBZ") << 5 | _reg(rt)


def cbnz(rt: int, offset: int) -> int:
    return 0xB5000000 | _offset(offset, 19, "CBNZ") << 5 | _reg(rt)


def adr(rd: int, offset: int) -> int:
    _field(offset, -(1 << 20), (1 << 20) - 1, "ADR offset")
    return 0x10000000 | (offset & 3) << 29 | (offset >> 2 & 0x7FFFF) << 5 | _reg(rd)


def svc(imm16: int) -> int:
    return 0xD4000001 | _field(imm16, 0, 0xFFFF, "imm16") << 5


def eret() -> int:
    return 0xD69F03E0


def isb() -> int:
    return 0xD5033FDF


def nop() -> int:
    return 0xD503201F


# --- assembling with labels ---------------------------------------------------------------------

_WITH_REGISTER: dict[str, Callable[[int, int], int]] = {"cbz": cbz, "cbnz": cbnz, "adr": adr}


def _to_label(kind: str, reg: int, offset: int) -> int:
    if kind == "b":
        return b(offset)
    if kind.startswith("b."):
        return b_cond(kind[2:], offset)
    return _WITH_REGISTER[kind](reg, offset)


@dataclass
class _Fixup:
    index: int  # word index of the instruction
    kind: str  # "b", "b.<cond>", "cbz", "cbnz" or "adr"
    label: str
    reg: int


class Assembler:
    """Instruction words at an address, with labels resolved at the end (forward and back)."""

    def __init__(self, base: int) -> None:
        if base % 4:
            raise EncodingError(f"base address 0x{base:x} is not word-aligned")
        self.base = base
        self.words: list[int] = []
        self.labels: dict[str, int] = {}
        self._fixups: list[_Fixup] = []

    @property
    def here(self) -> int:
        """The address of the next instruction."""
        return self.base + 4 * len(self.words)

    def emit(self, *words: int) -> int:
        """Append instructions; return the address of the first."""
        at = self.here
        self.words.extend(words)
        return at

    def label(self, name: str) -> None:
        if name in self.labels:
            raise EncodingError(f"label {name!r} defined twice")
        self.labels[name] = self.here

    def align(self, boundary: int) -> None:
        """Pad with NOPs up to a multiple of `boundary` bytes."""
        if boundary % 4:
            raise EncodingError(f"alignment {boundary} is not a multiple of 4")
        self.words.extend([nop()] * (-self.here % boundary // 4))

    def branch(self, kind: str, label: str, reg: int = 0) -> int:
        """B, B.<cond>, CBZ, CBNZ (with `reg`) or ADR (into `reg`) to a label."""
        if kind not in ("b", *_WITH_REGISTER) and not (
                kind.startswith("b.") and kind[2:] in CONDITIONS):
            raise EncodingError(f"unknown branch kind {kind!r}")
        self._fixups.append(_Fixup(len(self.words), kind, label, reg))
        return self.emit(nop())  # replaced in assemble()

    def address(self, label: str) -> int:
        if label not in self.labels:
            raise EncodingError(f"undefined label {label!r}")
        return self.labels[label]

    def assemble(self) -> bytes:
        words = list(self.words)
        for fix in self._fixups:
            offset = self.address(fix.label) - (self.base + 4 * fix.index)
            words[fix.index] = _to_label(fix.kind, fix.reg, offset)
        return struct.pack(f"<{len(words)}I", *words)
