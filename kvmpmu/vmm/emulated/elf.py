"""AArch64 ELF executables: their PT_LOAD segments and entry point, every part checked against
the file so that a cut or corrupt file is named as such, never run as zeros."""

from __future__ import annotations

import os
from typing import Any

from kvmpmu.errors import GuestError, SourceLoc
from kvmpmu.vmm.emulated.extra import need

PT_LOAD = "PT_LOAD"


def _error(path: str, message: str) -> GuestError:
    return GuestError(message, loc=SourceLoc(path, 0, 0))


def load_elf(path: str) -> tuple[tuple[tuple[int, bytes], ...], int]:
    """((physical address, bytes) for each PT_LOAD segment, entry point)."""
    elffile = need("elftools.elf.elffile")
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        try:
            elf = elffile.ELFFile(stream)
        except Exception as exc:
            raise _error(path, f"not an ELF file ({exc})") from None
        if elf.elfclass != 64 or not elf.little_endian:
            raise _error(path, f"a {elf.elfclass}-bit "
                         f"{'little' if elf.little_endian else 'big'}-endian ELF, not AArch64 "
                         "(64-bit little-endian)")
        if elf["e_machine"] != "EM_AARCH64":
            raise _error(path, f"an ELF for {elf['e_machine']}, not AArch64")
        _check_program_headers(path, elf, size)
        segments = []
        for index, seg in enumerate(elf.iter_segments()):
            if seg["p_type"] == PT_LOAD:
                segments.append(_segment(path, index, seg, size))
        if not segments:
            raise _error(path, "the ELF has no PT_LOAD segment: nothing to run")
        return tuple(segments), int(elf["e_entry"])


def _check_program_headers(path: str, elf: Any, size: int) -> None:
    offset, count, entsize = elf["e_phoff"], elf["e_phnum"], elf["e_phentsize"]
    if count and entsize < 56:
        raise _error(path, f"program header size e_phentsize = {entsize}, below the 56 bytes "
                     "of an Elf64_Phdr")
    end = offset + count * entsize
    if end > size:
        raise _error(path, f"the program headers (e_phoff 0x{offset:x}, {count} x {entsize} "
                     f"bytes) end at byte 0x{end:x}, past the end of the file (0x{size:x} "
                     "bytes): the file is cut short")


def _segment(path: str, index: int, seg: Any, size: int) -> tuple[int, bytes]:
    offset, filesz, memsz = seg["p_offset"], seg["p_filesz"], seg["p_memsz"]
    where = f"segment {index} (PT_LOAD at 0x{seg['p_paddr']:x})"
    if filesz > memsz:
        raise _error(path, f"{where}: p_filesz 0x{filesz:x} is larger than p_memsz 0x{memsz:x}")
    if offset + filesz > size:
        raise _error(path, f"{where}: its bytes 0x{offset:x}..0x{offset + filesz - 1:x} run "
                     f"past the end of the file (0x{size:x} bytes): the file is cut short")
    return seg["p_paddr"], seg.data() + bytes(memsz - filesz)
