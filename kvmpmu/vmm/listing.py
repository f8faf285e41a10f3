"""What `kvmpmu events` and `kvmpmu cpus` list: catalog rows and CPU models, with host PMCEID."""

from __future__ import annotations

from dataclasses import dataclass

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.cpus import CPU_MODELS, CpuModel
from kvmpmu.arch.events import has_pmceid_bit, pmceid_says
from kvmpmu.arch.presets import PRESETS, Preset, resolve_preset
from kvmpmu.spec.filterspec import merge_ranges
from kvmpmu.spec.hostspec import HostSpec, PmuSpec, cpu_model_arg
from kvmpmu.vmm.hosts import build_host


@dataclass(frozen=True)
class EventRow:
    event: int
    name: str
    description: str
    implemented: bool
    pmceid_bit: bool  # the event has a bit in PMCEID0/1_EL0 at all
    pmceid_visible: bool  # ... and the host's PMCEID sets it


@dataclass(frozen=True)
class PresetRow:
    preset: Preset
    events: frozenset[int]
    ranges: list[tuple[int, int]]
    names: list[str]


@dataclass(frozen=True)
class CpuRow:
    model: CpuModel
    pmceid0: int
    pmceid1: int

    @property
    def pmu_version(self) -> str:
        return sr.PMUVER_NAMES.get(self.model.pmuver, f"0x{self.model.pmuver:x}")


def resolve_cpu(name: str) -> CpuModel:
    return cpu_model_arg(name)


def _host_of(model: CpuModel) -> HostSpec:
    """A host of one PMU of this CPU model: what `host: {cpu: ...}` gives."""
    return HostSpec((PmuSpec("pmu", model),))


def _host_pmceid(model: CpuModel) -> tuple[int, int]:
    pmu = build_host(_host_of(model)).pmus[0]
    return pmu.pmceid(0), pmu.pmceid(1)


def _matches(search: str, code: int, name: str, description: str) -> bool:
    needle = search.strip().lower()
    try:
        return int(needle, 0) == code
    except ValueError:
        return needle in name.lower() or needle in description.lower()


def list_events(model: CpuModel, search: str | None = None,
                implemented_only: bool = False) -> list[EventRow]:
    """Every catalogued event for `model` (common ones plus its own), in number order."""
    catalog = _host_of(model).catalog()
    pmceid = _host_pmceid(model)
    rows = []
    for code in sorted(set(catalog.events) | model.events):
        info = catalog.events.get(code)
        name = info.name if info else f"IMPDEF_0x{code:X}"
        description = info.description if info else ""
        implemented = code in model.events
        if implemented_only and not implemented:
            continue
        if search and not _matches(search, code, name, description):
            continue
        rows.append(EventRow(code, name, description, implemented, has_pmceid_bit(code),
                             pmceid_says(*pmceid, code)))
    return rows


def list_cpus() -> list[CpuRow]:
    return [CpuRow(m, *_host_pmceid(m)) for m in CPU_MODELS.values()]


def list_presets(model: CpuModel) -> list[PresetRow]:
    """Every preset resolved for `model`: its catalog's names, its event space."""
    host = _host_of(model)
    catalog = host.catalog()
    rows = []
    for preset in PRESETS.values():
        events = resolve_preset(preset, catalog, host.max_event)
        ranges = merge_ranges([(e, e) for e in events])
        rows.append(PresetRow(preset, events, ranges,
                              [catalog.name_of(e) or f"0x{e:04x}" for e in sorted(events)]))
    return rows
