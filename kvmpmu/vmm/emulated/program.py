"""A guest program as bytes at addresses: a flat binary, an ELF, or assembly source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kvmpmu.errors import GuestError, SourceLoc
from kvmpmu.spec.guestspec import GuestSpec
from kvmpmu.vmm.emulated.assembler import assemble
from kvmpmu.vmm.emulated.elf import load_elf
from kvmpmu.vmm.emulated.machine import RAM_END, in_ram
from kvmpmu.vmm.memmap import RAM_BASE


@dataclass(frozen=True)
class Program:
    segments: tuple[tuple[int, bytes], ...]  # (address, bytes)
    entry: int


def load_program(spec: GuestSpec) -> Program:
    data = Path(spec.path).read_bytes()
    if spec.kind == "binary":
        program = Program(((spec.load, data),), spec.entry)
    elif spec.kind == "asm":
        program = Program(((spec.load, assemble(data.decode(errors="replace"), spec.load,
                                                spec.path)),), spec.entry)
    else:
        program = Program(*load_elf(spec.path))
    for addr, code in program.segments:
        if not in_ram(addr, len(code)):
            raise GuestError(f"the program's bytes at 0x{addr:x}..0x{addr + len(code) - 1:x} "
                             f"are outside guest RAM 0x{RAM_BASE:x}..0x{RAM_END - 1:x}",
                             loc=SourceLoc(spec.path, 0, 0))
    return program
