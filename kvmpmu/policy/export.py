"""FILTER call sequences written out: as a spec, kvmtool's --pmu-filter, C, packed bytes, JSON."""

from __future__ import annotations

import json
from typing import Any

import yaml

from kvmpmu import SCHEMA
from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import SpecError
from kvmpmu.policy.formats import ExportFormat
from kvmpmu.spec.filterspec import FilterCall, action_word
from kvmpmu.spec.kvmtool import kvmtool_letter
from kvmpmu.uapi.kvm import FILTER_ACTION_NAMES, kvm_pmu_event_filter


def _comment(call: FilterCall, catalog: Catalog) -> str:
    names = catalog.range_names(call.base_event, call.nevents)
    first, last = names.get("base_event"), names.get("last_event")
    if not call.nevents:
        return "empty: installs the bitmap and its default"
    if call.nevents == 1:
        return first or ""
    return f"{first or '?'}..{last or '?'}" if first or last else ""


def to_yaml(calls: list[FilterCall], catalog: Catalog, kernel: str,
            sections: dict[str, Any], header: str) -> str:
    lines = [f"# {header}", f"kernel: {json.dumps(kernel)}"]
    if sections:
        lines.append(yaml.safe_dump(sections, default_flow_style=False, sort_keys=False).rstrip())
    lines.append("filters:" if calls else "filters: []")
    for call in calls:
        entry = (f"  - {{action: {action_word(call.action)}, base_event: 0x{call.base_event:04x}, "
                 f"nevents: {call.nevents}}}")
        comment = _comment(call, catalog)
        lines.append(f"{entry}  # {comment}" if comment else entry)
    return "\n".join(lines) + "\n"


def to_kvmtool(calls: list[FilterCall]) -> str:
    if any(c.nevents == 0 for c in calls):
        raise SpecError("kvmtool's --pmu-filter cannot write an empty range, which this policy "
                        "needs (it allows or denies every event, but must install a bitmap)",
                        path="--format", hint="use another format")
    return ",".join(f"{kvmtool_letter(c.action)}:0x{c.base_event:x}-"
                    f"0x{c.base_event + c.nevents - 1:x}" for c in calls) + "\n"


def to_c(calls: list[FilterCall], catalog: Catalog, header: str) -> str:
    lines = [f"/* {header} */", "#include <linux/kvm.h>", "",
             "static const struct kvm_pmu_event_filter pmu_event_filters[] = {"]
    for call in calls:
        action = FILTER_ACTION_NAMES.get(call.action, "KVM_PMU_EVENT_DENY")
        entry = (f"\t{{ .base_event = 0x{call.base_event:04x}, .nevents = {call.nevents}, "
                 f".action = {action} }},")
        comment = _comment(call, catalog)
        lines.append(f"{entry}\t/* {comment} */" if comment else entry)
    lines.append("};")
    return "\n".join(lines) + "\n"


def to_bin(calls: list[FilterCall]) -> bytes:
    """The 8-byte records a VMM passes to KVM_SET_DEVICE_ATTR, one after the other."""
    return b"".join(kvm_pmu_event_filter(c.base_event, c.nevents, c.action).pack()
                    for c in calls)


def calls_json(calls: list[FilterCall], catalog: Catalog) -> list[dict[str, Any]]:
    return [{"base_event": c.base_event, "nevents": c.nevents, "action": c.action,
             "names": catalog.range_names(c.base_event, c.nevents)} for c in calls]


def render(fmt: ExportFormat, calls: list[FilterCall], catalog: Catalog, kernel: str,
           sections: dict[str, Any], header: str) -> bytes:
    if fmt == "yaml":
        return to_yaml(calls, catalog, kernel, sections, header).encode()
    if fmt == "kvmtool":
        return to_kvmtool(calls).encode()
    if fmt == "c":
        return to_c(calls, catalog, header).encode()
    if fmt == "bin":
        return to_bin(calls)
    doc = {"schema": SCHEMA, "ok": True, "kernel": kernel, "filters": calls_json(calls, catalog)}
    return (json.dumps(doc, indent=2) + "\n").encode()


def spec_from_kvmtool(calls: list[FilterCall], catalog: Catalog, source: str) -> str:
    """A spec with one allow/deny entry per kvmtool entry, in order, names as comments."""
    lines = [f"# imported from kvmtool --pmu-filter '{source}'", "filters:"]
    entries: dict[int, list[FilterCall]] = {}
    for call in calls:
        entries.setdefault(call.entry, []).append(call)
    for group in entries.values():
        first, last = group[0].base_event, group[-1].base_event + group[-1].nevents - 1
        what = f"0x{first:04x}" if first == last else f"0x{first:04x}-0x{last:04x}"
        merged = FilterCall(first, last - first + 1, group[0].action)
        comment = _comment(merged, catalog)
        entry = f"  - {action_word(group[0].action)}: {what}"
        lines.append(f"{entry}  # {comment}" if comment else entry)
    return "\n".join(lines) + "\n"
