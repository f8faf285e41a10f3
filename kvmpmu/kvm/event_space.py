"""The event space KVM gives a PMU version: how many event numbers FILTER and PMEVTYPER keep."""

from __future__ import annotations

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr


def event_mask(pmuver: int, knows_v3p7: bool) -> int:
    """__kvm_pmu_event_mask(): 10 bits for PMUv3, 16 from PMUv3p1, 0 for unknown versions."""
    if pmuver == sr.PMUVER_IMP:
        return ev.EVENT_MASK_V8P0
    if pmuver in (sr.PMUVER_V3P1, sr.PMUVER_V3P4, sr.PMUVER_V3P5):
        return ev.EVENT_MASK_V8P1
    if pmuver == sr.PMUVER_V3P7 and knows_v3p7:
        return ev.EVENT_MASK_V8P1
    return 0  # WARN_ONCE("Unknown PMU version")
