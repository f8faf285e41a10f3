"""The `guest:` section of a workload: a real AArch64 program instead of scripted steps."""

from __future__ import annotations

from dataclasses import dataclass

from kvmpmu.errors import SourceLoc
from kvmpmu.spec.schema import Node

DEFAULT_LOAD = 0x40080000  # where arm64 Linux images load, as in kvmtool
DEFAULT_MAX_INSTRUCTIONS = 100_000_000
MAX_INSTRUCTIONS = 2**40


@dataclass(frozen=True)
class GuestSpec:
    kind: str  # "binary", "elf" or "asm"
    path: str  # resolved against the workload's folder
    load: int
    entry: int
    max_instructions: int
    loc: SourceLoc


def parse_guest(node: Node) -> GuestSpec:
    node.mapping(("binary", "elf", "asm", "load", "entry", "max_instructions"))
    kinds = [k for k in ("binary", "elf", "asm") if node.get(k) is not None]
    if len(kinds) != 1:
        raise node.error("give exactly one of binary, elf or asm")
    source = node.require(kinds[0])
    path = source.file_path()
    if not path.is_file():
        raise source.error(f"guest program {source.value!r} not found (looked for {path})",
                           "a relative path is relative to the workload's folder")
    load_node, entry_node = node.get("load"), node.get("entry")
    if kinds[0] == "elf" and (load_node or entry_node):
        raise (load_node or entry_node or node).error("an ELF gives its own load address and "
                                                      "entry point")
    load = load_node.integer(0, 2**48 - 1, "an address") if load_node else DEFAULT_LOAD
    entry = entry_node.integer(0, 2**48 - 1, "an address") if entry_node else load
    budget = node.get("max_instructions")
    return GuestSpec(kinds[0], str(path), load, entry,
                     budget.integer(1, MAX_INSTRUCTIONS, "an instruction count") if budget
                     else DEFAULT_MAX_INSTRUCTIONS, node.loc)
