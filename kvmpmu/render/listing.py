"""Output of `kvmpmu events` and `kvmpmu cpus`, as JSON documents and rich tables."""

from __future__ import annotations

from typing import Any

from kvmpmu.arch.cpus import CpuModel
from kvmpmu.render.jsonout import SCHEMA, hex64
from kvmpmu.render.layout import Cell, Group, Renderable, Table, Text
from kvmpmu.render.plain import columns
from kvmpmu.vmm.listing import CpuRow, EventRow, PresetRow


def _cpu_json(model: CpuModel) -> dict[str, Any]:
    return {"name": model.name, "display": model.display, "midr": f"0x{model.midr:08x}",
            "implementer": f"0x{model.implementer:02x}", "part": f"0x{model.part:03x}"}


def events_json(model: CpuModel, rows: list[EventRow]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "ok": True,
        "cpu": _cpu_json(model),
        "events": [
            {"event": r.event, "hex": f"0x{r.event:04x}", "name": r.name,
             "description": r.description, "implemented": r.implemented,
             "pmceid_bit": r.pmceid_bit, "pmceid_visible": r.pmceid_visible}
            for r in rows
        ],
    }


def _pmceid_cell(row: EventRow) -> Text:
    if not row.pmceid_bit:
        return Text("no bit", style="dim")
    return Text("set", style="green") if row.pmceid_visible else Text("clear", style="red")


def events_text(model: CpuModel, rows: list[EventRow]) -> Renderable:
    cells: list[list[Cell]] = [
        [f"0x{r.event:04x}", r.name,
         Text("yes", style="green") if r.implemented else Text("no", style="red"),
         _pmceid_cell(r), r.description] for r in rows]
    table = columns(f"Events of {model.display} ({len(rows)} shown)",
                    ["event", "name", "implemented", "host PMCEID", "description"], cells)
    if not rows:
        return Group(table, Text("no event matches", style="yellow"))
    return table


def cpus_json(rows: list[CpuRow]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "ok": True,
        "cpus": [
            {**_cpu_json(r.model), "pmu_version": r.pmu_version, "counters": r.model.counters,
             "events": len(r.model.events), "impdef_events": len(r.model.impdef),
             "aarch32_el0": r.model.aarch32_el0,
             "pmceid0": hex64(r.pmceid0), "pmceid1": hex64(r.pmceid1)}
            for r in rows
        ],
    }


def cpus_text(rows: list[CpuRow]) -> Renderable:
    table = Table(title="Built-in CPU models", title_justify="left")
    for col in ("name", "MIDR", "PMU", "counters", "events", "PMCEID0_EL0", "PMCEID1_EL0"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        m = r.model
        table.add_row(m.name, f"0x{m.midr:08x}", f"PMUv3 {r.pmu_version}",
                      str(m.counters), str(len(m.events)), hex64(r.pmceid0), hex64(r.pmceid1))
    return table


def _ranges_text(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(f"0x{a:x}" if a == b else f"0x{a:x}-0x{b:x}" for a, b in ranges)


def presets_json(cpu: str, rows: list[PresetRow]) -> dict[str, Any]:
    return {"schema": SCHEMA, "ok": True, "cpu": cpu,
            "presets": [{"name": r.preset.name, "summary": r.preset.summary,
                         "events": sorted(r.events), "names": r.names,
                         "ranges": [[a, b] for a, b in r.ranges]} for r in rows]}


def presets_text(cpu: str, rows: list[PresetRow]) -> Renderable:
    table = Table(title=f"Presets (resolved for {cpu})", title_justify="left")
    for col in ("preset", "events", "what", "ranges"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.preset.name, str(len(r.events)), r.preset.summary,
                      _ranges_text(r.ranges))
    return table
