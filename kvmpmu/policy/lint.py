"""`kvmpmu lint`: the filter API's traps, found in a spec, each with a stable code and a fix."""

from __future__ import annotations

import bisect

from kvmpmu.arch import events as ev
from kvmpmu.arch.presets import PRESETS, resolve_preset
from kvmpmu.errors import KvmCallError, SourceLoc
from kvmpmu.policy.evaluate import Evaluation
from kvmpmu.policy.ranges import bits_to_ranges, describe_ranges, span
from kvmpmu.records import Record
from kvmpmu.spec.filterspec import FilterCall, FilterSpec, action_word
from kvmpmu.uapi.kvm import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY

# code -> (name, severity). Codes are a contract: never renumber, only add.
CODES = {
    "KP001": ("implicit-default", "note"),
    "KP002": ("cancelled-range", "warning"),
    "KP003": ("sw-incr-unfilterable", "warning"),
    "KP004": ("chain-unfilterable", "warning"),
    "KP005": ("shadowed-entry", "warning"),
    "KP006": ("not-implemented", "warning"),
    "KP007": ("outside-event-space", "error"),
    "KP008": ("cycle-counter-stopped", "warning"),
    "KP009": ("shared-resource-allowed", "warning"),
    "KP010": ("kernel-rejects", "error"),
}
SUMMARIES = {  # what each rule finds, in a line (SARIF's rule metadata, --help)
    "KP001": "The first filter silently decides every other event's default",
    "KP002": "An entry cancels an earlier one, but the default stays",
    "KP003": "SW_INCR is never filtered",
    "KP004": "CHAIN is not filtered: chained counters still chain",
    "KP005": "Later entries decide every event of this entry",
    "KP006": "Denies events no host CPU implements",
    "KP007": "Events outside the host's event space: the VM does not start",
    "KP008": "CPU_CYCLES denied: the cycle counter stops too",
    "KP009": "purpose: isolation, but shared-resource events stay allowed",
    "KP010": "The kernel refuses a call: the VM does not start",
}


def rules() -> list[tuple[str, str, str, str]]:
    """Every rule: code, name, severity, what it finds."""
    return [(code, name, severity, SUMMARIES[code]) for code, (name, severity) in CODES.items()]


class Finding(Record):
    __slots__ = ("code", "loc", "message", "fix", "entry")

    def __init__(self, code: str, loc: SourceLoc | None, message: str, fix: str,
                 entry: int | None = None) -> None:
        self.code, self.loc, self.message, self.fix, self.entry = code, loc, message, fix, entry

    @property
    def name(self) -> str:
        return CODES[self.code][0]

    @property
    def severity(self) -> str:
        return CODES[self.code][1]


def lint(spec: FilterSpec, kernel: str | None = None) -> list[Finding]:
    try:
        e = Evaluation(spec, kernel)
    except KvmCallError as err:  # the set-up fails before any filter matters: run stops there
        return [Finding("KP010", err.loc, f"{err.message}: the VM does not start",
                        "`kvmpmu validate` and `kvmpmu run` stop at the same call")]
    findings: list[Finding] = []
    for check in (_default, _outside_space, _rejected, _unfilterable, _cancelled, _shadowed,
                  _not_implemented, _cycles, _shared_allowed):
        findings.extend(check(e))
    return sorted(findings, key=lambda f: (f.loc.line if f.loc else 0, f.loc.col if f.loc else 0,
                                           f.code))


def _default(e: Evaluation) -> list[Finding]:
    first = e.default_setter
    if first is None:
        return []
    if first.action == KVM_PMU_EVENT_ALLOW:
        return [Finding("KP001", first.loc, "the first filter is ALLOW: every event no entry "
                        "allows is denied", "start with a deny entry if you meant a deny-list",
                        first.entry)]
    return [Finding("KP001", first.loc, "the first filter is DENY: every event no entry denies "
                    "is allowed", "start with an allow entry if you meant an allow-list",
                    first.entry)]


def _outside_space(e: Evaluation) -> list[Finding]:
    return [Finding("KP007", a.call.loc,
                    f"events 0x{a.call.base_event:x}..0x{a.call.base_event + a.call.nevents - 1:x}"
                    f" exceed the host's {e.nr_events}-event space: KVM answers {a.errno} and the"
                    " VM does not start", f"keep events below 0x{e.nr_events:x} on this host",
                    a.call.entry)
            for a in e.calls if a.errno == "EINVAL" and _outside(a.call, e)]


def _outside(call: FilterCall, e: Evaluation) -> bool:
    return call.base_event + call.nevents > e.nr_events


def _rejected(e: Evaluation) -> list[Finding]:
    """Entries the kernel refuses for another reason than KP007's (an action it does not know,
    say): run stops at them all the same."""
    out = []
    for a in e.calls:
        if a.errno is None or (a.errno == "EINVAL" and _outside(a.call, e)):
            continue
        why = (f"action {a.call.action} is neither ALLOW (0) nor DENY (1)" if a.call.action > 1
               else "the kernel refuses the call")
        out.append(Finding("KP010", a.call.loc, f"KVM answers {a.errno} to this entry's FILTER "
                           f"call ({why}): the VM does not start",
                           "fix the entry; `kvmpmu run` stops at the same call", a.call.entry))
    return out


def _unfilterable(e: Evaluation) -> list[Finding]:
    out = []
    for term in e.spec.terms:  # only where the spec names them: ranges may well include them
        if term.first == term.last == ev.SW_INCR:
            out.append(Finding("KP003", term.loc, "SW_INCR (0x00) is never filtered: this has "
                               "no effect on it", "leave SW_INCR out", term.entry))
        if term.first == term.last == ev.CHAIN and term.action == KVM_PMU_EVENT_DENY:
            out.append(Finding("KP004", term.loc, "filtering CHAIN (0x1E) has no effect: chained "
                               "counters still chain", "leave CHAIN out", term.entry))
    return out


class _Entry(Record):
    __slots__ = ("index", "action", "bits", "first", "last", "loc")

    def __init__(self, index: int, action: int, bits: int, first: int, last: int,
                 loc: SourceLoc | None) -> None:
        self.index, self.action, self.bits, self.first, self.last, self.loc = \
            index, action, bits, first, last, loc


def _entries(calls: list[FilterCall]) -> list[_Entry]:
    """The accepted calls grouped back into the spec's entries."""
    out: list[_Entry] = []
    for call in calls:
        if not call.nevents:
            continue
        end = call.base_event + call.nevents - 1
        if out and out[-1].index == call.entry:
            last = out[-1]
            last.bits |= span(call.base_event, call.nevents)
            last.first, last.last = min(last.first, call.base_event), max(last.last, end)
        else:
            out.append(_Entry(call.entry, call.action, span(call.base_event, call.nevents),
                              call.base_event, end, call.loc))
    return out


def _cancelled(e: Evaluation) -> list[Finding]:
    """A later entry with the opposite action deciding every event of an earlier one."""
    calls = e.accepted
    if not calls:
        return []
    default = "denied" if calls[0].action == KVM_PMU_EVENT_ALLOW else "allowed"
    out = []
    earlier: dict[int, list[tuple[int, int, _Entry]]] = {KVM_PMU_EVENT_ALLOW: [],
                                                         KVM_PMU_EVENT_DENY: []}
    for later in _entries(calls):
        opposite = earlier[1 - later.action]
        i = bisect.bisect_left(opposite, (later.first, -1))
        while i < len(opposite) and opposite[i][0] <= later.last:
            old = opposite[i][2]
            if old.last <= later.last and old.bits & ~later.bits == 0:
                out.append(Finding(
                    "KP002", later.loc,
                    f"this {action_word(later.action)} cancels entry {old.index + 1} "
                    f"({_where(old.loc, old.index)}), but the default set by the first filter "
                    f"stays: every other event remains {default}",
                    "delete both entries, or restate the policy from its first entry",
                    later.index))
                break
            i += 1
        bisect.insort(earlier[later.action], (later.first, later.last, later),
                      key=lambda t: t[:2])
    return out


def _where(loc: SourceLoc | None, entry: int) -> str:
    return f"line {loc.line}" if loc else f"entry {entry + 1}"


def _shadowed(e: Evaluation) -> list[Finding]:
    """Entries whose every event a later entry decides again (the first still sets the default)."""
    calls = e.accepted
    out: list[Finding] = []
    covered = 0  # events decided by entries after the one being looked at
    for entry in reversed(_entries(calls)):
        if entry.index != calls[0].entry and entry.bits & ~covered == 0:
            out.append(Finding("KP005", entry.loc, f"entry {entry.index + 1} has no effect: "
                               "later entries decide every event it names", "delete it",
                               entry.index))
        covered |= entry.bits
    return out[::-1]


def _not_implemented(e: Evaluation) -> list[Finding]:
    pmus = e.vm.host.pmus
    out = []
    for term in e.spec.terms:
        if term.action != KVM_PMU_EVENT_DENY or term.preset is not None:
            continue
        if term.first <= ev.SW_INCR <= term.last or term.first <= ev.CHAIN <= term.last or \
                term.last >= e.nr_events:
            continue  # KP003, KP004 or KP007 say it better
        events = range(term.first, term.last + 1)
        if not any(p.implements(x) for p in pmus for x in events):
            what = describe_ranges([(term.first, term.last)], e.catalog)
            out.append(Finding("KP006", term.loc, f"{what}: no host CPU implements "
                               f"{'it' if term.first == term.last else 'them'}, so denying has "
                               "no effect", "drop it, or check host.cpu", term.entry))
    return out


def _cycles(e: Evaluation) -> list[Finding]:
    if e.allowed(ev.CPU_CYCLES):
        return []
    call = e.decided_by(ev.CPU_CYCLES) or e.default_setter
    how = "denied" if e.decided_by(ev.CPU_CYCLES) else "not allowed (the default denies it)"
    return [Finding("KP008", call.loc if call else None,
                    f"CPU_CYCLES (0x11) is {how}: the cycle counter PMCCNTR_EL0 stops too, and "
                    "guests that time with it break", "allow CPU_CYCLES unless you mean this",
                    call.entry if call else None)]


def _shared_allowed(e: Evaluation) -> list[Finding]:
    if e.spec.purpose != "isolation":
        return []
    preset = resolve_preset(PRESETS["shared-resources"], e.catalog, e.nr_events - 1)
    leaks = [x for x in sorted(preset)
             if e.allowed(x) and any(p.implements(x) for p in e.vm.host.pmus)]
    if not leaks:
        return []
    what = describe_ranges(bits_to_ranges(sum(1 << x for x in leaks)), e.catalog, limit=6)
    return [Finding("KP009", e.spec.terms[0].loc if e.spec.terms else None,
                    f"purpose is isolation, but {len(leaks)} shared-resource events stay allowed:"
                    f" {what}", "add `- deny: {preset: shared-resources}`", None)]
