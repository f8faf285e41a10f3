"""How closely a real kernel and the model must agree, register by register.

Everything the kernel decides is deterministic: errnos, exits, PMCEID, PMCR_EL0, the ID
register, enable and interrupt bits, event types. Counter values are not: a real host counts
what its CPU does (cycles pass while the guest runs), the model counts only what a script
says. So a counter is compared exactly only where the host cannot have added anything: it
counts SW_INCR (KVM counts those writes itself), or the model says no perf event ever backed
it (the filter denies its event, or the host does not implement it). Every other counter is
the host's business and is not compared (its value shows in the output). Without a model on
either side, the end state decides: counters PMCR_EL0.E and PMCNTENSET show could not count.
An overflow bit follows its counter.

The comparison is table-driven: each register name matches one rule below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr

EXACT = "exact"
COUNTER = "counter"  # exact where the counter could not have counted, else counted-or-zero
OVERFLOW = "overflow"  # per bit: as the bit's counter; bits of counting counters not compared

CYCLE_COUNTER = sr.CYCLE_IDX

# State registers (vmm/state.py), first match wins.
STATE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"PMEVCNTR\d+_EL0|PMCCNTR_EL0"), COUNTER),
    (re.compile(r"PMOVSSET_EL0"), OVERFLOW),
    (re.compile(r".*"), EXACT),  # PMCEID0/1, PMCR, ID_AA64DFR0, PMCNTENSET, PMINTENSET, ...
)

# Registers a script reads mid-run: the same, plus the selected-counter and clear views.
READ_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"PMEVCNTR\d+_EL0|PMCCNTR_EL0|PMXEVCNTR_EL0"), COUNTER),
    (re.compile(r"PMOVS(SET|CLR)_EL0"), OVERFLOW),
    (re.compile(r".*"), EXACT),
)


def rule_for(register: str, rules: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    return next(rule for pattern, rule in rules if pattern.fullmatch(register))


def counter_index(register: str) -> int | None:
    """PMEVCNTR<n>_EL0 -> n, PMCCNTR_EL0 -> 31; PMXEVCNTR_EL0 (any counter) -> None."""
    if register == "PMCCNTR_EL0":
        return CYCLE_COUNTER
    match = re.fullmatch(r"PMEVCNTR(\d+)_EL0", register)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class CounterView:
    """What one side's end state says about its counters."""

    exact: frozenset[int]  # counters that count SW_INCR or could not count
    model: bool = False  # the view is the model's: it knows which counters could count


def _event_mask(state: dict[str, int | None]) -> int:
    dfr0 = state.get("ID_AA64DFR0_EL1") or 0
    pmuver = dfr0 >> sr.DFR0_PMUVER_SHIFT & 0xF
    return 0x3FF if pmuver == sr.PMUVER_IMP else 0xFFFF


def exact_counters(state: dict[str, int | None]) -> frozenset[int]:
    pmcr = state.get("PMCR_EL0") or 0
    enabled = state.get("PMCNTENSET_EL0") or 0
    mask = _event_mask(state)
    out = set()
    for n in list(range(32)):
        could_count = bool(pmcr & sr.PMCR_E) and bool(enabled >> n & 1)
        evtype = state.get(f"PMEVTYPER{n}_EL0")
        sw_incr = n != CYCLE_COUNTER and evtype is not None and evtype & mask == ev.SW_INCR
        if sw_incr or not could_count:
            out.add(n)
    return frozenset(out)


EXACTLY = "exact"
COUNTED_OR_ZERO = "counted-or-zero"
HOST_COUNTED = "not compared: what the host counted"
BITS_OF_IDLE_COUNTERS = "bits of counters that could not count"


def judge(rule: str, real: int | None, emulated: int | None, counter: int | None,
          real_view: CounterView, emulated_view: CounterView) -> tuple[bool, str]:
    """Whether two values of one register agree under `rule`, and how they were compared."""
    if real is None or emulated is None or rule == EXACT:
        return real == emulated, EXACTLY
    models = [v for v in (real_view, emulated_view) if v.model]
    exact = models[0].exact if models else real_view.exact & emulated_view.exact
    if rule == OVERFLOW:
        compared = sum(1 << n for n in exact)
        return real & compared == emulated & compared, BITS_OF_IDLE_COUNTERS
    if counter is not None and counter in exact:
        return real == emulated, EXACTLY
    if models:
        return True, HOST_COUNTED
    return (real != 0) == (emulated != 0), COUNTED_OR_ZERO
