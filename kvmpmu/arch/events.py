"""Architected PMU event numbers and the catalog of common events shipped with the package."""

from __future__ import annotations

import functools

from kvmpmu import data
from kvmpmu.arch import sysregs as sr
from kvmpmu.records import Record

SW_INCR = 0x00
LD_RETIRED = 0x06
ST_RETIRED = 0x07
INST_RETIRED = 0x08
EXC_TAKEN = 0x09
EXC_RETURN = 0x0A
CPU_CYCLES = 0x11
MEM_ACCESS = 0x13
INST_SPEC = 0x1B
CHAIN = 0x1E
BR_RETIRED = 0x21
MEM_ACCESS_RD = 0x66
MEM_ACCESS_WR = 0x67
STALL_SLOT_BACKEND = 0x3D
STALL_SLOT_FRONTEND = 0x3E
STALL_SLOT = 0x3F

# PMCEID layout: low halves cover 0x00-0x3F, high halves 0x4000-0x403F.
PMCEID_EXT_BASE = 0x4000

# Event numbers a PMU version encodes: 10 bits on PMUv3 (Armv8.0), 16 from PMUv3p1 (Armv8.1).
EVENT_MASK_V8P0 = 0x3FF
EVENT_MASK_V8P1 = 0xFFFF


def architected_event_mask(pmuver: int) -> int:
    """The event numbers a PMU of version `pmuver` (ID_AA64DFR0_EL1.PMUVer) can encode."""
    return EVENT_MASK_V8P0 if pmuver == sr.PMUVER_IMP else EVENT_MASK_V8P1


def pmceid_events(reg: int) -> list[int]:
    """The 64 event numbers described by PMCEID<reg>_EL0, bit i first."""
    base = 32 * reg
    return [base + i for i in range(32)] + [PMCEID_EXT_BASE + base + i for i in range(32)]


def has_pmceid_bit(event: int) -> bool:
    return event < 0x40 or PMCEID_EXT_BASE <= event < PMCEID_EXT_BASE + 0x40


def pmceid_says(pmceid0: int, pmceid1: int, event: int) -> bool:
    """Whether the PMCEID pair sets the event's bit (False for events without one)."""
    if not has_pmceid_bit(event):
        return False
    bit = (event & 0x1F) + (32 if event >= PMCEID_EXT_BASE else 0)
    return bool((pmceid1 if event & 0x20 else pmceid0) >> bit & 1)


class EventInfo(Record):
    __slots__ = ("code", "name", "description")

    def __init__(self, code: int, name: str, description: str) -> None:
        self.code, self.name, self.description = code, name, description


@functools.cache
def common_events() -> dict[int, EventInfo]:
    """Every common event the architecture defines, plus the Arm-recommended 0x40-0xBF ones."""
    text = data.read_bytes("events.tsv").decode("utf-8")
    table: dict[int, EventInfo] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        code, name, description = line.split("\t")
        table[int(code, 16)] = EventInfo(int(code, 16), name, description)
    return table


def architected_in_pmceid_range() -> frozenset[int]:
    """Events of 0x00-0x3F and 0x4000-0x403F that the architecture defines."""
    return frozenset(c for c in common_events() if has_pmceid_bit(c))
