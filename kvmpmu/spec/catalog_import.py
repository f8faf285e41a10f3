"""Load a CPU's events from Arm's PMU JSON (`pmu/*.json`) or Linux perf's `pmu-events` JSON."""

from __future__ import annotations

import re
from pathlib import Path

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.catalog import common_catalog
from kvmpmu.arch.cpus import CpuModel
from kvmpmu.arch.events import EventInfo
from kvmpmu.errors import SourceLoc, SpecError
from kvmpmu.spec import yamlio
from kvmpmu.spec.schema import Node, root

_ARCH_VERSION = r"armv(\d+)(?:\.(\d+))?"


def _pmuver_for(architecture: str | None) -> int:
    """A PMU version for an `architecture` string: v8.0 -> 8.0, v8.1-8.3 -> 8.1, 8.4, 8.5+."""
    match = re.match(_ARCH_VERSION, architecture or "")
    if not match:
        return sr.PMUVER_V3P5
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    if major >= 9 or minor >= 5:
        return sr.PMUVER_V3P5
    if minor == 4:
        return sr.PMUVER_V3P4
    return sr.PMUVER_V3P1 if minor >= 1 else sr.PMUVER_IMP


def _code(node: Node) -> int:
    v = node.value
    if isinstance(v, str):
        try:
            v = int(v, 0)
        except ValueError:
            raise node.error(f"event code {node.value!r} is not a number") from None
        node = Node(v, node.loc, node.path)
    return node.integer(0, 0xFFFF, "an event code")


def _arm_format(doc: Node, name: str) -> CpuModel:
    doc.mapping()
    events: dict[int, EventInfo] = {}
    for item in doc.require("events").items():
        item.mapping()
        code = _code(item.require("code"))
        ev_name = item.get("name")
        desc = item.get("description")
        label = ev_name.string() if ev_name else f"IMPDEF_0x{code:X}"
        events[code] = EventInfo(code, label, desc.string() if desc else "")
    cpuid = doc.get("cpuid")
    part = implementer = 0
    if cpuid is not None:
        value = int(cpuid.string(), 16) if re.fullmatch(r"0x[0-9a-fA-F]+", cpuid.string()) \
            else None
        if value is None:
            raise cpuid.error(f"cpuid {cpuid.value!r} is not 0x<implementer><part>")
        implementer, part = value >> 12, value & 0xFFF
    counters = doc.get("counters")
    arch = doc.get("architecture")
    cpu = doc.get("cpu")
    return _model(cpu.string() if cpu else name, implementer, part,
                  _pmuver_for(arch.string() if arch else None),
                  counters.integer(0, 31) if counters else 6, events)


def _perf_format(items: list[Node], name: str) -> CpuModel:
    common = common_catalog()
    events: dict[int, EventInfo] = {}
    for item in items:
        m = item.mapping()
        if "MetricName" in m or "MetricExpr" in m:
            continue
        desc_node = item.get("BriefDescription") or item.get("PublicDescription")
        desc = desc_node.string() if desc_node else ""
        std = item.get("ArchStdEvent")
        if std is not None:
            code = common.lookup(std.string())
            if code is None:
                close = common.suggest(std.string())
                raise std.error(f"unknown ArchStdEvent {std.value!r}",
                                f"did you mean {', '.join(close)}?" if close else None)
            events[code] = EventInfo(code, common.name_of(code) or std.string(),
                                     desc or common.describe(code) or "")
            continue
        code = _code(item.require("EventCode"))
        events[code] = EventInfo(code, item.require("EventName").string(), desc)
    return _model(name, 0, 0, sr.PMUVER_V3P5, 6, events)


def _model(name: str, implementer: int, part: int, pmuver: int, counters: int,
           events: dict[int, EventInfo]) -> CpuModel:
    common = common_catalog()
    impdef = {c: info for c, info in events.items() if common.name_of(c) != info.name}
    return CpuModel(name, name, implementer, part, pmuver, counters, frozenset(events), impdef)


def _load_one(path: Path, max_bytes: int) -> Node:
    """Strict JSON first (for its syntax errors), then the YAML reader for positions."""
    import json  # catalogs only

    text = yamlio.read_text(str(path), max_bytes)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"JSON syntax: {exc.msg}",
                        loc=SourceLoc(str(path), exc.lineno, exc.colno)) from None
    try:
        return root(yamlio.load(text, str(path)), str(path))
    except SpecError:  # valid JSON that YAML cannot read (tabs, escapes): no positions
        try:
            return root(yamlio.load_json_fast(text, str(path)), str(path))
        except ValueError as dup:  # a duplicate key, which specs never accept either
            raise SpecError(str(dup), loc=SourceLoc(str(path), 0, 0)) from None


def load_catalog(path: str, max_bytes: int = yamlio.DEFAULT_MAX_BYTES) -> CpuModel:
    """A CPU model from a file (Arm or perf format) or a perf per-CPU folder of JSON files."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.json"))
        if not files:
            raise SpecError("folder holds no .json files", loc=SourceLoc(path, 1, 1))
        items: list[Node] = []
        for f in files:
            doc = _load_one(f, max_bytes)
            items.extend(doc.items())
        return _perf_format(items, p.name)
    doc = _load_one(p, max_bytes)
    if isinstance(doc.value, yamlio.YSeq):
        return _perf_format(doc.items(), p.stem)
    if isinstance(doc.value, yamlio.YMap) and "events" in doc.value:
        return _arm_format(doc, p.stem)
    raise doc.error("neither Arm's PMU format (an object with 'events') nor perf's "
                    "pmu-events format (an array of events)")
