"""Translated blocks classified once (capstone): the events each instruction makes, as
prefix sums so that any head or tail of a block is counted without re-decoding it."""

from __future__ import annotations

from dataclasses import dataclass

from kvmpmu.arch import events as ev
from kvmpmu.vmm.emulated.extra import need

# the events an instruction can make here, in vector order
EVENTS = (ev.INST_RETIRED, ev.INST_SPEC, ev.CPU_CYCLES, ev.BR_RETIRED, ev.LD_RETIRED,
          ev.ST_RETIRED, ev.MEM_ACCESS, ev.MEM_ACCESS_RD, ev.MEM_ACCESS_WR, ev.EXC_RETURN)
INSTRUCTION_EVENTS = frozenset((ev.INST_RETIRED, ev.INST_SPEC, ev.CPU_CYCLES))  # one each
_BRANCHES = {"b", "bl", "br", "blr", "ret", "cbz", "cbnz", "tbz", "tbnz", "braa", "brab",
             "blraa", "blrab", "retaa", "retab"}


def _vector(mnemonic: str) -> tuple[int, ...]:
    """INST_RETIRED, INST_SPEC, CPU_CYCLES (one cycle per instruction), BR_RETIRED,
    LD_RETIRED, ST_RETIRED, MEM_ACCESS, MEM_ACCESS_RD, MEM_ACCESS_WR, EXC_RETURN."""
    m = mnemonic.lower()
    branch = m in _BRANCHES or m.startswith("b.")
    load = m.startswith("ld")
    store = m.startswith("st")
    return (1, 1, 1, int(branch), int(load), int(store), int(load or store), int(load),
            int(store), int(m == "eret"))


@dataclass(frozen=True)
class Block:
    addr: int
    size: int
    offsets: tuple[int, ...]  # byte offset of each instruction
    prefix: tuple[tuple[int, ...], ...]  # prefix[i] = events of instructions [0, i)
    has_eret: bool

    @property
    def total(self) -> tuple[int, ...]:
        return self.prefix[-1]

    def index_of(self, pc: int) -> int:
        """How many instructions of the block come before `pc`."""
        return self.offsets.index(pc - self.addr) if pc - self.addr in self.offsets else \
            len(self.offsets)

    def tail(self, pc: int) -> tuple[int, ...]:
        """Events of the instructions from `pc` to the end of the block."""
        i = self.index_of(pc)
        return tuple(t - h for t, h in zip(self.total, self.prefix[i], strict=True))


class Classifier:
    def __init__(self) -> None:
        capstone = need("capstone")
        self._cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)

    def block(self, addr: int, code: bytes) -> Block:
        offsets, sums = [], [(0,) * len(EVENTS)]
        has_eret = False
        for insn in self._cs.disasm(code, addr):
            offsets.append(insn.address - addr)
            vec = _vector(insn.mnemonic)
            has_eret = has_eret or bool(vec[-1])
            sums.append(tuple(a + b for a, b in zip(sums[-1], vec, strict=True)))
        return Block(addr, len(code), tuple(offsets), tuple(sums), has_eret)
