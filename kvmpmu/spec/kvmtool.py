"""kvmtool's `--pmu-filter` hack syntax: comma-separated `A:first-last` and `D:first-last`."""

from __future__ import annotations

import re

from kvmpmu.errors import SourceLoc, SpecError
from kvmpmu.spec.filterspec import U16_MAX, FilterCall, FilterSpec, Term, calls_for_ranges
from kvmpmu.spec.hostspec import HostSpec
from kvmpmu.uapi.kvm import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY

KVMTOOL_LETTERS = {"A": KVM_PMU_EVENT_ALLOW, "D": KVM_PMU_EVENT_DENY}


def kvmtool_letter(action: int) -> str:
    """kvmtool's letter for an accepted action: `A` or `D`."""
    return "A" if action == KVM_PMU_EVENT_ALLOW else "D"


def parse_kvmtool(text: str, source: str = "--pmu-filter",
                  host: HostSpec | None = None) -> FilterSpec:
    """kvmtool's hack syntax: comma-separated `A:first-last` (allow) or `D:first-last` (deny);
    `first..last` too, as kvmpmu prints ranges."""
    calls: list[FilterCall] = []
    named: list[int] = []
    terms: list[Term] = []
    col = 1
    for index, part in enumerate(text.split(",")):
        loc = SourceLoc(source, 1, col)
        col += len(part) + 1
        match = re.fullmatch(r"\s*([AaDd])\s*:\s*(\S+?)\s*(?:-|\.\.)\s*(\S+?)\s*", part)
        if not match:
            raise SpecError(f"{part.strip()!r} is not A:first-last or D:first-last", loc=loc,
                            path=f"[{index}]")
        try:
            first, last = int(match.group(2), 0), int(match.group(3), 0)
        except ValueError:
            raise SpecError(f"{part.strip()!r}: event numbers must be decimal or 0x-hex",
                            loc=loc, path=f"[{index}]") from None
        if not 0 <= first <= last <= U16_MAX:
            raise SpecError(f"{part.strip()!r}: range must satisfy 0 <= first <= last <= 0xffff",
                            loc=loc, path=f"[{index}]")
        action = KVMTOOL_LETTERS[match.group(1).upper()]
        calls.extend(calls_for_ranges([(first, last)], action, loc, index))
        terms.append(Term(index, first, last, action, loc))
        named.append(first)
    return FilterSpec(file=source, host=host or HostSpec(), filters=tuple(calls),
                      named_events=tuple(dict.fromkeys(named)), terms=tuple(terms))
