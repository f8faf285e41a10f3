"""`kvmpmu diff A B`: the events whose decision differs, and the guest PMCEID bits that change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kvmpmu.arch import events as ev
from kvmpmu.policy.evaluate import Evaluation
from kvmpmu.policy.ranges import bits_to_ranges
from kvmpmu.vmm.session import hidden_by_kvm_or_filter

DecisionState = Literal["allowed", "denied", "outside-event-space"]
PmceidState = Literal["visible", "hidden", "hidden-by-kvm", "not-implemented"]


@dataclass(frozen=True)
class DecisionChange:
    first: int
    last: int
    allowed_in_a: bool  # and so not in B
    a: DecisionState = "allowed"  # "outside-event-space": beyond that host's events
    b: DecisionState = "denied"


@dataclass(frozen=True)
class PmceidChange:
    event: int
    visible_in_a: bool
    a: PmceidState  # "hidden": by the filter
    b: PmceidState


@dataclass(frozen=True)
class PolicyDiff:
    space: int
    changes: list[DecisionChange]
    pmceid: list[PmceidChange]
    pmceid_a: tuple[int, int]
    pmceid_b: tuple[int, int]

    @property
    def same(self) -> bool:
        return not self.changes and not self.pmceid


def allowed_bits(e: Evaluation, space: int) -> int:
    """Bit n set when event n is allowed, over [0, space)."""
    everything = (1 << space) - 1
    if e.bits is None:
        return everything
    return e.bits & everything


def diff(a: Evaluation, b: Evaluation) -> PolicyDiff:
    space = max(a.nr_events, b.nr_events)
    bits_a, bits_b = allowed_bits(a, space), allowed_bits(b, space)
    cuts = sorted({a.nr_events, b.nr_events})
    changes = [DecisionChange(f, last, allowed, _state(a, f, allowed), _state(b, f, not allowed))
               for bits, allowed in ((bits_a & ~bits_b, True), (bits_b & ~bits_a, False))
               for first, end in bits_to_ranges(bits) for f, last in _split(first, end, cuts)]
    changes.sort(key=lambda c: c.first)
    pa, pb = a.guest_pmceid(), b.guest_pmceid()
    pmceid = [PmceidChange(x, ev.pmceid_says(*pa, x), pmceid_state(a, x, bit),
                           pmceid_state(b, x, bit))
              for reg in (0, 1) for bit, x in enumerate(ev.pmceid_events(reg))
              if ev.pmceid_says(*pa, x) != ev.pmceid_says(*pb, x)]
    pmceid.sort(key=lambda c: c.event)
    return PolicyDiff(space, changes, pmceid, pa, pb)


def _split(first: int, last: int, cuts: list[int]) -> list[tuple[int, int]]:
    """The range cut where one side's event space ends."""
    out = []
    for cut in cuts:
        if first < cut <= last:
            out.append((first, cut - 1))
            first = cut
    return [*out, (first, last)]


def _state(e: Evaluation, event: int, allowed: bool) -> DecisionState:
    if event >= e.nr_events:
        return "outside-event-space"
    return "allowed" if allowed else "denied"


def pmceid_state(e: Evaluation, event: int, bit: int) -> PmceidState:
    """What the guest's PMCEID shows of `event` (its `bit` in the register), and why not:
    the host does not implement it, the filter hides it, or KVM itself does."""
    if ev.pmceid_says(*e.guest_pmceid(), event):
        return "visible"
    if not ev.pmceid_says(*e.host_pmceid(), event):
        return "not-implemented"
    return "hidden" if hidden_by_kvm_or_filter(e.vm, event, bit) == "filter" else \
        "hidden-by-kvm"
