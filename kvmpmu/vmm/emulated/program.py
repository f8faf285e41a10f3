"""A guest program as bytes at an address: a flat binary, an ELF, or assembly source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kvmpmu.errors import GuestError
from kvmpmu.spec.guestspec import GuestSpec
from kvmpmu.vmm.emulated.extra import need


@dataclass(frozen=True)
class Program:
    segments: tuple[tuple[int, bytes], ...]  # (address, bytes)
    entry: int


def load_program(spec: GuestSpec) -> Program:
    data = Path(spec.path).read_bytes()
    if spec.kind == "binary":
        return Program(((spec.load, data),), spec.entry)
    if spec.kind == "asm":
        return Program(((spec.load, assemble(data.decode(), spec.load, spec.path)),), spec.entry)
    return _elf(spec.path)


def assemble(source: str, address: int, name: str = "<asm>") -> bytes:
    keystone = need("keystone")
    ks = keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN)
    try:
        encoding, _ = ks.asm(source, address)
    except keystone.KsError as err:
        raise GuestError(f"{name}: cannot assemble: {err}") from None
    return bytes(encoding or b"")


def _elf(path: str) -> Program:
    elffile = need("elftools.elf.elffile")
    with open(path, "rb") as stream:
        try:
            elf = elffile.ELFFile(stream)
        except Exception as exc:  # noqa: BLE001 - pyelftools raises several types
            raise GuestError(f"{path}: not an ELF file ({exc})") from None
        if elf["e_machine"] != "EM_AARCH64":
            raise GuestError(f"{path}: an ELF for {elf['e_machine']}, not AArch64")
        segments = tuple((seg["p_paddr"], seg.data()) for seg in elf.iter_segments()
                         if seg["p_type"] == "PT_LOAD" and seg["p_filesz"])
        return Program(segments, elf["e_entry"])
