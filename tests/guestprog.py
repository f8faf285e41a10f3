"""Guest programs for the tests: run through the CLI, a vector table that says which entry was
taken, and the engine itself for the resumable-run API."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clihelpers import run_cli

MAILBOX = 0x09000000
LOAD = 0x40080000

# VBAR_EL1 offsets of the 16 entries (Arm ARM D1.10.2)
ENTRIES = {"sync_el1t": 0x000, "irq_el1t": 0x080, "fiq_el1t": 0x100, "serror_el1t": 0x180,
           "sync_el1h": 0x200, "irq_el1h": 0x280, "fiq_el1h": 0x300, "serror_el1h": 0x380,
           "sync_el0": 0x400, "irq_el0": 0x480, "fiq_el0": 0x500, "serror_el0": 0x580,
           "sync_el0_32": 0x600, "irq_el0_32": 0x680, "fiq_el0_32": 0x700,
           "serror_el0_32": 0x780}
UNEXPECTED = 0xDEAD


def vector_table(**handlers: str) -> str:
    """`vectors:`, 2 KiB aligned; each entry puts its offset in x19 and branches to its handler
    (a label named in `handlers`), or reports [0xDEAD, offset] and ends the run."""
    out = ["        .balign 0x800", "vectors:"]
    for name, offset in ENTRIES.items():
        out += [f"        mov     x19, #{offset:#x}",
                f"        b       {handlers.get(name, 'unexpected_vector')}",
                "        .balign 0x80"]
    out += ["unexpected_vector:",
            "        movz    x9, #0x0900, lsl #16",
            f"        mov     x0, #{UNEXPECTED:#x}",
            "        str     x0, [x9]",
            "        str     x19, [x9]",
            "        str     xzr, [x9, #8]",
            "        b       ."]
    return "\n".join(out) + "\n"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def guest_workload(tmp_path: Path, source: str, extra: str = "") -> str:
    write(tmp_path, "guest.S", source)
    return write(tmp_path, "w.yaml", "guest:\n  asm: guest.S\n" + extra)


def run_json(*args: str) -> tuple[int, dict]:
    result = run_cli("run", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def run_asm(tmp_path: Path, source: str, extra: str = "", *args: str) -> dict:
    """The JSON document of a run that must succeed (exit 0 or 1)."""
    code, doc = run_json("--workload", guest_workload(tmp_path, source, extra), *args)
    assert code in (0, 1), doc
    return doc


def reports(doc: dict, vcpu: int = 0) -> list[int]:
    return doc["vcpus"][vcpu]["reports"]


def engine(source: str, exit_on_irq_change: bool = False, max_instructions: int = 10**6,
           regs: tuple[tuple[str, int], ...] = ()):
    """An EmulatedGuest on vCPU 0 of a booted default VM, for the API's own tests."""
    from kvmpmu.spec.filterspec import FilterSpec
    from kvmpmu.vmm.emulated.assembler import assemble
    from kvmpmu.vmm.emulated.cpu import EmulatedGuest
    from kvmpmu.vmm.emulated.program import Program
    from kvmpmu.vmm.session import entered_vcpu

    vcpu = entered_vcpu(FilterSpec(file="test"))
    program = Program(((LOAD, assemble(source, LOAD)),), LOAD)
    return EmulatedGuest(vcpu, program, max_instructions, exit_on_irq_change=exit_on_irq_change,
                         regs=regs)
