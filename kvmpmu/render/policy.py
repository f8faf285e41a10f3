"""Output of lint, explain, diff and presets: JSON documents and human text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kvmpmu.errors import KvmpmuError, SourceLoc
from kvmpmu.records import Record
from kvmpmu.render.jsonout import SCHEMA, hex64, maybe_error_json, position
from kvmpmu.render.layout import Group, Renderable, Table, Text

if TYPE_CHECKING:
    from kvmpmu.arch.catalog import Catalog

# What these renderers read of the policy tools' results (kvmpmu/policy/: lint.Finding,
# explain.Explanation, diff.PolicyDiff); rendering does not depend on the analyses.


class Finding(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def loc(self) -> SourceLoc | None: ...
    @property
    def entry(self) -> int | None: ...
    @property
    def message(self) -> str: ...
    @property
    def fix(self) -> str: ...


class Explanation(Protocol):
    @property
    def event(self) -> int: ...
    @property
    def name(self) -> str | None: ...
    @property
    def allowed(self) -> bool: ...
    @property
    def decided_by(self) -> str: ...
    @property
    def entry(self) -> int | None: ...
    @property
    def loc(self) -> SourceLoc | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def pmceid(self) -> str: ...
    @property
    def implemented(self) -> bool: ...
    @property
    def counts(self) -> bool: ...


class DecisionChange(Protocol):
    @property
    def first(self) -> int: ...
    @property
    def last(self) -> int: ...
    @property
    def allowed_in_a(self) -> bool: ...
    @property
    def a(self) -> str: ...  # "allowed", "denied" or "outside-event-space"
    @property
    def b(self) -> str: ...


class PmceidChange(Protocol):
    @property
    def event(self) -> int: ...
    @property
    def visible_in_a(self) -> bool: ...
    @property
    def a(self) -> str: ...  # "visible", "hidden", "hidden-by-kvm" or "not-implemented"
    @property
    def b(self) -> str: ...


class PolicyDiff(Protocol):
    @property
    def same(self) -> bool: ...
    @property
    def space(self) -> int: ...
    @property
    def changes(self) -> Sequence[DecisionChange]: ...
    @property
    def pmceid(self) -> Sequence[PmceidChange]: ...
    @property
    def pmceid_a(self) -> tuple[int, int]: ...
    @property
    def pmceid_b(self) -> tuple[int, int]: ...


def finding_json(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "name": f.name, "severity": f.severity,
            "location": str(f.loc) if f.loc else None, "position": position(f.loc),
            "entry": f.entry, "message": f.message, "fix": f.fix}


def finding_text(f: Finding) -> str:
    """Compiler style, one line (editors and CI annotators parse it), then the fix."""
    where = f"{f.loc}: " if f.loc else ""
    return f"{where}{f.severity}: {f.code} {f.name}: {f.message}\n  fix: {f.fix}"


def lint_json(results: Sequence[tuple[str, Sequence[Finding], KvmpmuError | None]], ok: bool,
              summary: dict[str, int]) -> dict[str, Any]:
    return {"schema": SCHEMA, "ok": ok,
            "files": [{"file": file, "findings": [finding_json(f) for f in findings],
                       "error": maybe_error_json(error)}
                      for file, findings, error in results],
            "summary": summary}


def explanation_json(x: Explanation) -> dict[str, Any]:
    return {"event": x.event, "hex": f"0x{x.event:04x}", "name": x.name,
            "decision": "allowed" if x.allowed else "denied", "decided_by": x.decided_by,
            "entry": x.entry, "location": str(x.loc) if x.loc else None, "reason": x.reason,
            "pmceid": x.pmceid, "implemented": x.implemented, "counts": x.counts}


def explain_json(file: str, kernel: str, space: int,
                 items: Sequence[Explanation]) -> dict[str, Any]:
    return {"schema": SCHEMA, "ok": True, "file": file, "kernel": kernel, "event_space": space,
            "events": [explanation_json(x) for x in items]}


def explain_text(items: Sequence[Explanation]) -> Renderable:
    parts: list[Renderable] = []
    for x in items:
        head = Text(f"0x{x.event:04x} {x.name or '(no name)'}: ", style="bold")
        head.append("allowed" if x.allowed else "denied",
                    style="green" if x.allowed else "red")
        pmceid = {"visible": "set in the guest's PMCEID", "hidden": "clear in the guest's PMCEID",
                  "no-bit": "no PMCEID bit"}[x.pmceid]
        counts = "a counter programmed with it counts" if x.counts else \
            "a counter programmed with it does not count"
        why = "" if x.implemented else " (the host does not implement it)"
        parts.append(Group(head, Text(f"  {x.reason}\n  {pmceid}; {counts}{why}")))
    return Group(*parts)


class DiffSide(Record):
    """One side of a diff as outputs name it: the policy, its kernel profile, its host."""

    __slots__ = ("name", "kernel", "host", "label")

    def __init__(self, name: str, kernel: str, host: str, label: str) -> None:
        self.name, self.kernel, self.host = name, kernel, host
        self.label = label  # the name, with the kernel and host when they tell the sides apart


def diff_json(a: DiffSide, b: DiffSide, d: PolicyDiff, catalog: Catalog) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "ok": True, "same": d.same, "a": a.name, "b": b.name,
        "kernels": {"a": a.kernel, "b": b.kernel}, "hosts": {"a": a.host, "b": b.host},
        "event_space": d.space,
        "changes": [{"first": c.first, "last": c.last, "nevents": c.last - c.first + 1,
                     "first_name": catalog.name_of(c.first), "last_name": catalog.name_of(c.last),
                     "a": c.a, "b": c.b} for c in d.changes],
        "pmceid": {"a": {"pmceid0": hex64(d.pmceid_a[0]), "pmceid1": hex64(d.pmceid_a[1])},
                   "b": {"pmceid0": hex64(d.pmceid_b[0]), "pmceid1": hex64(d.pmceid_b[1])},
                   "changes": [{"event": c.event, "name": catalog.name_of(c.event),
                                "a": c.a, "b": c.b} for c in d.pmceid]},
    }


def _decision_words(state: str) -> Text:
    words = {"allowed": ("allowed", "green"), "denied": ("denied", "red"),
             "outside-event-space": ("outside the event space", "yellow")}[state]
    return Text(words[0], style=words[1])


def _pmceid_words(state: str, side: DiffSide) -> Text:
    words = {"visible": ("visible", "green"), "hidden": ("hidden by the filter", "red"),
             "hidden-by-kvm": ("hidden by KVM", "yellow"),
             "not-implemented": (f"not implemented by {side.host}", "yellow")}[state]
    return Text(words[0], style=words[1])


def diff_text(a: DiffSide, b: DiffSide, d: PolicyDiff, catalog: Catalog) -> Renderable:
    if d.same:
        return Text(f"{a.label} and {b.label} decide every event the same way and give the "
                    "same PMCEID")
    parts: list[Renderable] = []
    if d.changes:
        table = Table(title=f"Decisions that differ (A = {a.label}, B = {b.label})",
                      title_justify="left")
        for col in ("events", "names", "A", "B"):
            table.add_column(col)
        for c in d.changes:
            events = f"0x{c.first:04x}" if c.first == c.last else \
                f"0x{c.first:04x}..0x{c.last:04x}"
            names = catalog.name_of(c.first) or "" if c.first == c.last else \
                f"{catalog.name_of(c.first) or '?'}..{catalog.name_of(c.last) or '?'}"
            table.add_row(events, names, _decision_words(c.a), _decision_words(c.b))
        parts.append(table)
    if d.pmceid:
        title = "Guest PMCEID bits that change" + \
            ("" if d.changes else f" (A = {a.label}, B = {b.label})")
        pm = Table(title=title, title_justify="left")
        for col in ("event", "A", "B"):
            pm.add_column(col)
        for p in d.pmceid:
            pm.add_row(catalog.label(p.event), _pmceid_words(p.a, a), _pmceid_words(p.b, b))
        parts.append(pm)
    return Group(*parts)
