"""`kvmpmu explain`: for one event, what decided it, what the guest sees, whether it counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kvmpmu.arch import events as ev
from kvmpmu.errors import SourceLoc
from kvmpmu.policy.evaluate import Evaluation
from kvmpmu.spec.filterspec import action_word

DecidedBy = Literal["entry", "default", "no-filter", "unfilterable", "outside-event-space"]
PmceidBit = Literal["visible", "hidden", "no-bit"]  # the event's bit in the guest's PMCEID


@dataclass(frozen=True)
class Explanation:
    event: int
    name: str | None
    allowed: bool
    decided_by: DecidedBy
    entry: int | None  # the deciding entry, or the entry that set the default (0-based)
    loc: SourceLoc | None
    reason: str
    pmceid: PmceidBit
    implemented: bool
    counts: bool


def explain(e: Evaluation, event: int) -> Explanation:
    allowed = e.allowed(event)
    decided, entry, loc, reason = _decision(e, event)
    if ev.has_pmceid_bit(event):
        pmceid: PmceidBit = "visible" if ev.pmceid_says(*e.guest_pmceid(), event) else "hidden"
    else:
        pmceid = "no-bit"
    return Explanation(event, e.name(event), allowed or e.unfilterable(event), decided, entry,
                       loc, reason, pmceid, e.implemented(event), e.counts(event))


def _decision(e: Evaluation, event: int) -> tuple[DecidedBy, int | None, SourceLoc | None, str]:
    if event == ev.SW_INCR:
        return "unfilterable", None, None, "SW_INCR is never filtered"
    if e.unfilterable(event):
        return "unfilterable", None, None, "CHAIN is not filtered on this kernel"
    if e.bits is None:
        return "no-filter", None, None, "no filter is installed: every event is allowed"
    if event >= e.nr_events:
        return ("outside-event-space", None, None,
                f"beyond the filter's {e.nr_events}-event space: the guest cannot program it")
    call = e.decided_by(event)
    if call is not None:
        where = f" at {call.loc}" if call.loc else ""
        return ("entry", call.entry, call.loc,
                f"entry {call.entry + 1}{where} ({action_word(call.action)}) covers it")
    first = e.default_setter
    assert first is not None  # a bitmap exists, so some call was accepted
    default = "denied" if action_word(first.action) == "allow" else "allowed"
    where = f" at {first.loc}" if first.loc else ""
    return ("default", first.entry, first.loc,
            f"no entry names it; the first filter{where} ({action_word(first.action)}) made "
            f"every unnamed event {default}")
