"""`kvmpmu compile`: the shortest FILTER call sequence that gives the same allowed set.

Each call sets or clears one interval. Starting from the default its first call chooses, a
call adds at most one run of the events it allows: so with a default of "denied" no sequence
is shorter than the number of allowed runs, and with "allowed" than the number of denied runs.
Both bounds are reached by writing those runs in order; we take the smaller. An all-allowed or
all-denied bitmap still needs one call (an empty range) to exist at all.
"""

from __future__ import annotations

from kvmpmu.policy.evaluate import Evaluation
from kvmpmu.policy.ranges import bits_to_ranges
from kvmpmu.spec.filterspec import FilterCall
from kvmpmu.uapi.kvm import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY


def minimal_calls(bits: int | None, nr_events: int) -> list[FilterCall]:
    """Calls that rebuild bitmap `bits` over [0, nr_events); None (no filter) needs none."""
    if bits is None:
        return []
    everything = (1 << nr_events) - 1
    allowed = bits_to_ranges(bits & everything)
    denied = bits_to_ranges(~bits & everything)
    if len(allowed) <= len(denied):
        action, runs = KVM_PMU_EVENT_ALLOW, allowed  # default: denied
    else:
        action, runs = KVM_PMU_EVENT_DENY, denied  # default: allowed
    if not runs:
        # all denied: an empty ALLOW installs the bitmap; all allowed: an empty DENY
        return [FilterCall(0, 0, KVM_PMU_EVENT_ALLOW if not allowed else KVM_PMU_EVENT_DENY,
                           None, 0)]
    return [FilterCall(first, last - first + 1, action, None, i)
            for i, (first, last) in enumerate(runs)]


def compile_spec(e: Evaluation) -> list[FilterCall]:
    """The spec's effect, shortest form. Refuses specs the kernel rejects (see lint)."""
    e.require_accepted("compile")
    return minimal_calls(e.bits, e.nr_events)
