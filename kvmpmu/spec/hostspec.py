"""The `host:` section of a filter spec: one PMU, or several (big.LITTLE), each a CPU model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.catalog import Catalog
from kvmpmu.arch.cpus import CPU_MODELS, CpuModel, cpu_by_midr, find_cpu, suggest_cpu
from kvmpmu.arch.events import EVENT_MASK_V8P1, architected_event_mask
from kvmpmu.errors import SourceLoc
from kvmpmu.spec.catalog_import import load_catalog
from kvmpmu.spec.schema import Node

DEFAULT_CPUS = frozenset(range(8))
_CPU_LIST = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")
_PMU_KEYS = ("cpu", "midr", "catalog", "pmu_version", "counters", "type", "pmcr")
FIRST_PMU_TYPE = 8  # perf types 0-5 are fixed, and kprobe/uprobe usually take 6 and 7


@dataclass(frozen=True)
class PmuSpec:
    name: str
    model: CpuModel
    pmu_version: int | None = None
    counters: int | None = None
    cpus: frozenset[int] = DEFAULT_CPUS
    loc: SourceLoc | None = None
    pmu_type: int = FIRST_PMU_TYPE  # its perf type (/sys/bus/event_source/devices/*/type)
    pmcr: tuple[int, int] | None = None  # PMCR_EL0 IMP and IDCODE, else the CPU model's

    @property
    def pmuver(self) -> int:
        return self.pmu_version if self.pmu_version is not None else self.model.pmuver

    @property
    def pmcr_imp_idcode(self) -> tuple[int, int]:
        return self.pmcr if self.pmcr is not None else (self.model.pmcr_imp,
                                                          self.model.pmcr_idcode)


@dataclass(frozen=True)
class HostSpec:
    pmus: tuple[PmuSpec, ...] = field(
        default_factory=lambda: (PmuSpec("armv8_pmuv3_0", CPU_MODELS["generic"]),))
    id_aa64dfr0: int | None = None  # host.id_aa64dfr0_el1, else the first PMU's CPU model's

    def catalog(self) -> Catalog:
        extra = {}
        for pmu in self.pmus:
            extra.update(pmu.model.impdef)
        names = "+".join(dict.fromkeys(p.model.name for p in self.pmus))
        return Catalog(names, extra)

    @property
    def max_event(self) -> int:
        """The highest event number every host PMU can encode: 0x3FF on PMUv3 (8.0)."""
        return min((architected_event_mask(p.pmuver) for p in self.pmus),
                   default=EVENT_MASK_V8P1)

    def pmu_named(self, name: str) -> PmuSpec | None:
        return next((p for p in self.pmus if p.name == name), None)


def parse_cpu_list(node: Node) -> frozenset[int]:
    """'0-3', '0,2,4-5', 3 or [0, 1]: a set of physical CPU numbers."""
    v = node.value
    if isinstance(v, int) and not isinstance(v, bool):
        return frozenset({node.integer(0, 4095, "a CPU number")})
    if isinstance(v, list):
        return frozenset(i.integer(0, 4095, "a CPU number") for i in node.items())
    if not isinstance(v, str) or not _CPU_LIST.fullmatch(v.replace(" ", "")):
        raise node.error(f"{v!r} is not a CPU list such as '0-3' or '0,2,4-5'")
    cpus: set[int] = set()
    for part in v.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if int(last or first) < int(first):
            raise node.error(f"CPU range {part!r} ends before it starts")
        cpus.update(range(int(first), int(last or first) + 1))
    return frozenset(cpus)


def format_cpus(cpus: frozenset[int]) -> str:
    """{0, 1, 2, 5} as '0-2,5', the form CPU lists are written in."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _model(node: Node, events_db: str | None, max_bytes: int) -> CpuModel:
    chosen = [k for k in ("cpu", "midr", "catalog") if node.get(k) is not None]
    if len(chosen) > 1:
        raise node.error(f"give one of cpu, midr or catalog, not {' and '.join(chosen)}")
    if events_db:
        if chosen:
            raise node.require(chosen[0]).error(
                f"--events-db and host.{chosen[0]} both give the host's events; --events-db "
                f"would win, so give only one", f"drop --events-db to use host.{chosen[0]}")
        return load_catalog(events_db, max_bytes)
    cpu = node.get("cpu")
    if cpu is not None:
        model = find_cpu(cpu.string())
        if model is None:
            close = suggest_cpu(cpu.string())
            raise cpu.error(f"unknown CPU model {cpu.value!r}",
                            f"did you mean {', '.join(close)}?" if close else
                            f"known: {', '.join(CPU_MODELS)}")
        return model
    midr = node.get("midr")
    if midr is not None:
        value = midr.integer(0, 0xFFFFFFFF, "a 32-bit MIDR_EL1 value")
        model = cpu_by_midr(value)
        if model is None:
            raise midr.error(f"no built-in CPU model has MIDR implementer 0x{value >> 24:02x} "
                             f"part 0x{(value >> 4) & 0xFFF:03x}", "see `kvmpmu cpus`")
        return model
    catalog = node.get("catalog")
    if catalog is not None:
        path = catalog.file_path()
        if not path.exists():
            raise catalog.error(f"catalog {catalog.value!r} not found (looked for {path})",
                                "a relative path is relative to the spec's folder")
        return load_catalog(str(path), max_bytes)
    return CPU_MODELS["generic"]


def _pmcr(node: Node | None) -> tuple[int, int] | None:
    """`pmcr: {imp: 0x41, idcode: 1}`: PMCR_EL0's implementer and identification code."""
    if node is None:
        return None
    node.mapping(("imp", "idcode"))
    return (node.require("imp").integer(0, 0xFF, "an 8-bit implementer code"),
            node.require("idcode").integer(0, 0xFF, "an 8-bit identification code"))


def _pmu(node: Node, name: str, cpus: frozenset[int], events_db: str | None,
         max_bytes: int, pmu_type: int, pmcr: tuple[int, int] | None) -> PmuSpec:
    version = node.get("pmu_version")
    counters = node.get("counters")
    type_node = node.get("type")
    return PmuSpec(
        name=name,
        model=_model(node, events_db, max_bytes),
        pmu_version=sr.PMU_VERSIONS[version.choice(tuple(sr.PMU_VERSIONS))] if version else None,
        counters=counters.integer(0, sr.MAX_GENERAL_COUNTERS) if counters else None,
        cpus=cpus,
        loc=node.loc,
        pmu_type=type_node.integer(0, 2**31 - 1, "a perf PMU type") if type_node else pmu_type,
        pmcr=_pmcr(node.get("pmcr")) or pmcr,
    )


def _distinct_types(node: Node, pmus: list[PmuSpec]) -> None:
    """Perf types are unique; a clash is shown at a `type` the spec wrote, where there is one."""
    seen: dict[int, tuple[Node, str]] = {}
    for item, pmu in zip(node.items(), pmus, strict=True):
        if pmu.pmu_type in seen:
            other, name = seen[pmu.pmu_type]
            where = item.get("type") or other.get("type") or item
            raise where.error(f"PMUs {name!r} and {pmu.name!r} both have perf type "
                              f"{pmu.pmu_type}: perf types are unique")
        seen[pmu.pmu_type] = (item, pmu.name)


def parse_host(node: Node | None, events_db: str | None = None,
               max_bytes: int = 16 << 20) -> HostSpec:
    if node is None or node.value is None:
        if events_db:
            return HostSpec((PmuSpec("armv8_pmuv3_0", load_catalog(events_db, max_bytes)),))
        return HostSpec()
    node.mapping(_PMU_KEYS + ("pmus", "id_aa64dfr0_el1"))
    dfr0_node = node.get("id_aa64dfr0_el1")
    dfr0 = dfr0_node.integer(0, 2**64 - 1, "a 64-bit register value") if dfr0_node else None
    pmus_node = node.get("pmus")
    if pmus_node is None:
        return HostSpec((_pmu(node, "armv8_pmuv3_0", DEFAULT_CPUS, events_db, max_bytes,
                              FIRST_PMU_TYPE, None),), dfr0)
    pmcr = _pmcr(node.get("pmcr"))  # for every PMU; a PMU's own pmcr wins
    if any(node.get(k) is not None for k in _PMU_KEYS if k != "pmcr"):
        raise node.error("with 'pmus', give cpu, midr, catalog, pmu_version, counters and "
                         "type per PMU")
    if events_db:
        raise pmus_node.error("--events-db applies to a single-PMU host only")
    pmus: list[PmuSpec] = []
    seen: set[int] = set()
    for i, item in enumerate(pmus_node.items()):
        item.mapping(_PMU_KEYS + ("name", "cpus"))
        name_node = item.get("name")
        name = name_node.string() if name_node else f"armv8_pmuv3_{i}"
        if any(p.name == name for p in pmus):
            raise (name_node or item).error(f"duplicate PMU name {name!r}")
        cpus = parse_cpu_list(item.require("cpus"))
        if cpus & seen:
            raise item.require("cpus").error(
                f"CPUs {sorted(cpus & seen)} already belong to another PMU")
        seen |= cpus
        pmus.append(_pmu(item, name, cpus, None, max_bytes, FIRST_PMU_TYPE + i, pmcr))
    if not pmus:
        raise pmus_node.error("a host needs at least one PMU")
    _distinct_types(pmus_node, pmus)
    return HostSpec(tuple(pmus), dfr0)

