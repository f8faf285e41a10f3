"""The workload used when none is given: program what the spec names, run a standard mix."""

from __future__ import annotations

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import SourceLoc
from kvmpmu.spec.workload import Access, Execute, Step, Workload

# Programmed (in this order) after the events the spec names, to fill the counters.
STANDARD_EVENTS = (0x08, 0x11, 0x21, 0x04, 0x03, 0x16, 0x17, 0x2B, 0x2A, 0x37, 0x10, 0x13)
# Occurrences the host generates at EL1 and again, a tenth of them, at EL0.
STANDARD_MIX = {0x08: 1_000_000, 0x11: 1_500_000, 0x21: 120_000, 0x22: 3_000, 0x10: 3_000,
                0x04: 400_000, 0x03: 12_000, 0x16: 12_000, 0x17: 900, 0x2B: 900, 0x2A: 150,
                0x36: 900, 0x37: 150, 0x13: 400_000, 0x1B: 1_100_000}
OTHER_EVENT_COUNT = 1_000


def default_workload(named_events: tuple[int, ...], counters: int,
                     synthetic: bool = True) -> Workload:
    """Counters 0..N-1 get the spec's named events first, then the standard set. Without
    `synthetic` (a real CPU) the host's own events count instead of the standard mix."""
    loc = SourceLoc("<default workload>", 1, 1)
    chosen: list[int] = []
    for code in named_events + STANDARD_EVENTS:
        if code not in chosen and code not in (ev.SW_INCR, ev.CHAIN) and len(chosen) < counters:
            chosen.append(code)
    mask = (1 << len(chosen)) - 1 | 1 << sr.CYCLE_IDX
    program = tuple((f"PMEVTYPER{i}_EL0", code) for i, code in enumerate(chosen))
    mix = dict(STANDARD_MIX)
    for code in chosen:
        mix.setdefault(code, OTHER_EVENT_COUNT)
    reads = tuple((f"PMEVCNTR{i}_EL0", None) for i in range(len(chosen)))
    execute: tuple[Step, ...] = (
        Execute(1, tuple(mix.items()), loc),
        Execute(0, tuple((k, v // 10) for k, v in mix.items()), loc),
    ) if synthetic else ()
    steps: tuple[Step, ...] = (
        Access((("PMCR_EL0", sr.PMCR_P | sr.PMCR_C),) + program + (
            ("PMCCFILTR_EL0", 0), ("PMOVSCLR_EL0", 0xFFFFFFFF), ("PMCNTENSET_EL0", mask),
            ("PMCR_EL0", sr.PMCR_E)), loc, "program"),
        *execute,
        Access(reads + (("PMCCNTR_EL0", None), ("PMOVSSET_EL0", None), ("PMCEID0_EL0", None),
                        ("PMCEID1_EL0", None)), loc, "read"),
    )
    return Workload("<default workload>", all_steps=steps)
