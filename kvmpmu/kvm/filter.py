"""The per-VM PMU event filter bitmap (`kvm->arch.pmu_filter`), 1 = event allowed."""

from __future__ import annotations

from kvmpmu.uapi.kvm import KVM_PMU_EVENT_ALLOW


class EventFilter:
    """A bitmap of `nr_events` bits held in one Python int: range updates cost O(words)."""

    __slots__ = ("nr_events", "bits")

    def __init__(self, nr_events: int, first_action: int) -> None:
        self.nr_events = nr_events
        # The first filter decides the default: first ALLOW -> all denied, DENY -> all allowed.
        self.bits = 0 if first_action == KVM_PMU_EVENT_ALLOW else (1 << nr_events) - 1

    def apply(self, base_event: int, nevents: int, action: int) -> None:
        span = ((1 << nevents) - 1) << base_event
        if action == KVM_PMU_EVENT_ALLOW:
            self.bits |= span
        else:
            self.bits &= ~span

    def allowed(self, event: int) -> bool:
        return event < self.nr_events and (self.bits >> event) & 1 == 1

    def window(self, base: int, width: int) -> int:
        """Bits [base, base+width) as an int whose bit 0 is event `base`."""
        return (self.bits >> base) & ((1 << width) - 1)
