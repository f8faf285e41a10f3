"""Translated blocks classified once (capstone): the events each instruction makes, as
prefix sums so that any head or tail of a block is counted without re-decoding it, and the
instructions the engine must see before they run."""

from __future__ import annotations

from dataclasses import dataclass

from kvmpmu.arch import events as ev
from kvmpmu.vmm.emulated.extra import need

# the events an instruction can make here, in vector order; each at most once per instruction
EVENTS = (ev.INST_RETIRED, ev.INST_SPEC, ev.CPU_CYCLES, ev.BR_RETIRED, ev.LD_RETIRED,
          ev.ST_RETIRED, ev.MEM_ACCESS, ev.MEM_ACCESS_RD, ev.MEM_ACCESS_WR, ev.EXC_RETURN)
INSTRUCTION_EVENTS = frozenset((ev.INST_RETIRED, ev.INST_SPEC, ev.CPU_CYCLES))  # one each
SPARSE_EVENTS = frozenset(EVENTS) - INSTRUCTION_EVENTS
ZERO = (0,) * len(EVENTS)
_BRANCHES = {"b", "bl", "br", "blr", "ret", "cbz", "cbnz", "tbz", "tbnz", "braa", "brab",
             "blraa", "blrab", "retaa", "retab"}

# Instructions the engine hooks (A64 encodings): they change the exception level, may unmask
# a pending interrupt, wait for one, or spin forever.
ERET, WFI, SPIN = 0xD69F03E0, 0xD503207F, 0x14000000  # SPIN: `b .`
MSR_DAIFCLR, MSR_DAIFCLR_MASK = 0xD50340FF, 0xFFFFF0FF


def _vector(mnemonic: str) -> tuple[int, ...]:
    """INST_RETIRED, INST_SPEC, CPU_CYCLES (one cycle per instruction), BR_RETIRED,
    LD_RETIRED, ST_RETIRED, MEM_ACCESS, MEM_ACCESS_RD, MEM_ACCESS_WR, EXC_RETURN."""
    m = mnemonic.lower()
    branch = m in _BRANCHES or m.startswith("b.")
    load = m.startswith("ld")
    store = m.startswith("st")
    return (1, 1, 1, int(branch), int(load), int(store), int(load or store), int(load),
            int(store), int(m == "eret"))


def special(insn: int) -> str | None:
    if insn in (ERET, WFI):
        return "eret" if insn == ERET else "wfi"
    if insn & MSR_DAIFCLR_MASK == MSR_DAIFCLR:
        return "daifclr"
    return None


@dataclass(frozen=True)
class Block:
    addr: int
    size: int
    offsets: tuple[int, ...]  # byte offset of each instruction
    prefix: tuple[tuple[int, ...], ...]  # prefix[i] = events of instructions [0, i)
    specials: tuple[tuple[int, str], ...]  # (address, "eret" | "wfi" | "daifclr" | "spin")

    @property
    def total(self) -> tuple[int, ...]:
        return self.prefix[-1]

    def index_of(self, pc: int) -> int:
        """How many instructions of the block come before `pc` (all of them past its end)."""
        offset = pc - self.addr
        if offset <= 0:
            return 0
        return offset // 4 if offset < self.size else len(self.offsets)

    def tail(self, pc: int) -> tuple[int, ...]:
        """Events of the instructions from `pc` to the end of the block (none if `pc` is
        outside it)."""
        if not self.addr <= pc < self.addr + self.size:
            return ZERO
        head = self.prefix[self.index_of(pc)]
        return tuple(t - h for t, h in zip(self.total, head, strict=True))


class Classifier:
    def __init__(self) -> None:
        capstone = need("capstone")
        self._cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)

    def block(self, addr: int, code: bytes) -> Block:
        offsets, sums = [], [ZERO]
        specials = []
        for offset in range(0, len(code) - 3, 4):
            word = int.from_bytes(code[offset:offset + 4], "little")
            insn = next(self._cs.disasm(code[offset:offset + 4], addr + offset), None)
            offsets.append(offset)
            vec = _vector(insn.mnemonic) if insn is not None else (1, 1, 1) + ZERO[3:]
            sums.append(tuple(a + b for a, b in zip(sums[-1], vec, strict=True)))
            kind = special(word)
            if kind is None and word == SPIN and len(code) == 4:
                kind = "spin"
            if kind is not None:
                specials.append((addr + offset, kind))
        return Block(addr, len(code), tuple(offsets), tuple(sums), tuple(specials))

    def describe(self, addr: int, code: bytes) -> str:
        """One instruction as text, for messages."""
        insn = next(self._cs.disasm(code, addr), None)
        if insn is None:
            return f".word 0x{int.from_bytes(code[:4], 'little'):08x}"
        return f"{insn.mnemonic} {insn.op_str}".strip()
