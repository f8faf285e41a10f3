"""The `guest:` section of a workload: a real AArch64 program instead of scripted steps."""

from __future__ import annotations

from kvmpmu.arch.cpuregs import (
    CPU_REGS,
    PSTATE_EL0T,
    PSTATE_EL1H,
    PSTATE_EL1T,
    PSTATE_M_MASK,
    SCTLR_M,
)
from kvmpmu.errors import SourceLoc
from kvmpmu.records import Record
from kvmpmu.spec import schema_defs as defs
from kvmpmu.spec.schema import Node
from kvmpmu.spec.schema_defs import DEFAULT_LOAD as DEFAULT_LOAD
from kvmpmu.spec.schema_defs import DEFAULT_MAX_INSTRUCTIONS as DEFAULT_MAX_INSTRUCTIONS


class GuestSpec(Record):
    __slots__ = ("kind", "path", "load", "entry", "max_instructions", "loc", "regs", "timeout")

    def __init__(self, kind: str, path: str, load: int, entry: int, max_instructions: int,
                 loc: SourceLoc, regs: tuple[tuple[str, int], ...] = (),
                 timeout: int | None = None) -> None:
        self.kind = kind  # "binary", "elf" or "asm"
        self.path = path  # resolved against the workload's folder
        self.load, self.entry, self.max_instructions, self.loc = load, entry, max_instructions, loc
        self.regs = regs  # set before the first run, as KVM_SET_ONE_REG
        self.timeout = timeout  # wall-clock seconds


def parse_guest(node: Node) -> GuestSpec:
    guest = defs.GUEST
    guest.check(node)
    kinds = [k for k in guest.one_of[0] if node.get(k) is not None]
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
    load = guest["load"].read(load_node) if load_node else guest["load"].default
    entry = guest["entry"].read(entry_node) if entry_node else load
    budget, timeout, regs_node = node.get("max_instructions"), node.get("timeout"), \
        node.get("regs")
    regs = parse_regs(regs_node) if regs_node else ()
    if entry_node and any(name == "pc" for name, _ in regs):
        raise entry_node.error("give the first pc once: entry or regs.pc")
    return GuestSpec(kinds[0], str(path), load, entry,
                     guest["max_instructions"].read(budget) if budget
                     else guest["max_instructions"].default, node.loc, regs,
                     guest["timeout"].read(timeout) if timeout else None)


def parse_regs(node: Node) -> tuple[tuple[str, int], ...]:
    """`regs: {pc: ..., sp: ..., x0: ..., vbar_el1: ...}`, in the order written."""
    regs = []
    for key, value in node.entries():
        name = str(key).lower()
        if name not in CPU_REGS:
            import difflib

            close = difflib.get_close_matches(name, list(CPU_REGS), n=1)
            raise value.error(f"unknown register {key!r} (known: x0..x30, "
                              + ", ".join(n for n in CPU_REGS if not n.startswith("x")) + ")",
                              f"did you mean {close[0]!r}?" if close else None)
        number = defs.GUEST["regs"].value.read(value)
        if name == "pstate" and number & PSTATE_M_MASK not in (PSTATE_EL0T, PSTATE_EL1T,
                                                               PSTATE_EL1H):
            raise value.error(f"PSTATE.M = 0x{number & PSTATE_M_MASK:x} is not EL0t (0), EL1t "
                              "(4) or EL1h (5): the guest runs in AArch64 at EL0 or EL1")
        if name == "sctlr_el1" and number & SCTLR_M:
            raise value.error("SCTLR_EL1.M (bit 0) set: guests run with the MMU off, as KVM "
                              "starts them (addresses are physical)")
        regs.append((name, number))
    return tuple(regs)
