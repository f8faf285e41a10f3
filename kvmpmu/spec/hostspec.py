"""The `host:` section of a filter spec: one PMU, or several (big.LITTLE), each a CPU model."""

from __future__ import annotations

import re

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.catalog import Catalog
from kvmpmu.arch.cpus import CPU_MODELS, CpuModel, cpu_by_midr, find_cpu, suggest_cpu
from kvmpmu.arch.events import EVENT_MASK_V8P1, architected_event_mask
from kvmpmu.errors import SourceLoc, SpecError
from kvmpmu.records import Record
from kvmpmu.spec import schema_defs as defs
from kvmpmu.spec.schema import Node

DEFAULT_CPUS = frozenset(range(8))
_PMU_KEYS = defs.PMU.keys
FIRST_PMU_TYPE = defs.FIRST_PMU_TYPE


class PmuSpec(Record):
    __slots__ = ("name", "model", "pmu_version", "counters", "cpus", "loc", "pmu_type", "pmcr")

    def __init__(self, name: str, model: CpuModel, pmu_version: int | None = None,
                 counters: int | None = None, cpus: frozenset[int] = DEFAULT_CPUS,
                 loc: SourceLoc | None = None, pmu_type: int = FIRST_PMU_TYPE,
                 pmcr: tuple[int, int] | None = None) -> None:
        self.name, self.model, self.pmu_version, self.counters = name, model, pmu_version, counters
        self.cpus, self.loc = cpus, loc
        self.pmu_type = pmu_type  # its perf type (/sys/bus/event_source/devices/*/type)
        self.pmcr = pmcr  # PMCR_EL0 IMP and IDCODE, else the CPU model's

    @property
    def pmuver(self) -> int:
        return self.pmu_version if self.pmu_version is not None else self.model.pmuver

    @property
    def pmcr_imp_idcode(self) -> tuple[int, int]:
        return self.pmcr if self.pmcr is not None else (self.model.pmcr_imp,
                                                          self.model.pmcr_idcode)


class HostSpec(Record):
    __slots__ = ("pmus", "id_aa64dfr0")

    def __init__(self, pmus: tuple[PmuSpec, ...] | None = None,
                 id_aa64dfr0: int | None = None) -> None:
        self.pmus = pmus if pmus is not None else \
            (PmuSpec("armv8_pmuv3_0", CPU_MODELS["generic"]),)
        self.id_aa64dfr0 = id_aa64dfr0  # host.id_aa64dfr0_el1, else the first PMU's model's

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


def _load_catalog(path: str, max_bytes: int) -> CpuModel:
    from kvmpmu.spec.catalog_import import load_catalog  # hosts from a file only

    return load_catalog(path, max_bytes)


def parse_cpu_list(node: Node) -> frozenset[int]:
    """'0-3', '0,2,4-5', 3 or [0, 1]: a set of physical CPU numbers."""
    v = node.value
    if isinstance(v, int) and not isinstance(v, bool):
        return frozenset({defs.CPU_NUMBER.read(node)})
    if isinstance(v, list):
        return frozenset(defs.CPU_NUMBER.read(i) for i in node.items())
    if not isinstance(v, str) or not re.fullmatch(defs.CPU_LIST, v.replace(" ", "")):
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


def cpu_model_arg(name: str) -> CpuModel:
    """`--cpu MODEL`: a built-in model, or an error suggesting the closest ones."""
    model = find_cpu(name)
    if model is None:
        close = suggest_cpu(name)
        raise SpecError(f"unknown CPU model {name!r}", path="--cpu",
                        hint=f"did you mean {', '.join(close)}?" if close else
                        f"known: {', '.join(CPU_MODELS)}")
    return model


def _model(node: Node, events_db: str | None, max_bytes: int,
           cpu: str | None = None) -> CpuModel:
    chosen = [k for k in defs.PMU.at_most_one[0] if node.get(k) is not None]
    if len(chosen) > 1:
        raise node.error(f"give one of cpu, midr or catalog, not {' and '.join(chosen)}")
    if cpu is not None:  # the command line's host, as --kernel is its profile
        return cpu_model_arg(cpu)
    if events_db:
        if chosen:
            raise node.require(chosen[0]).error(
                f"--events-db and host.{chosen[0]} both give the host's events; --events-db "
                f"would win, so give only one", f"drop --events-db to use host.{chosen[0]}")
        return _load_catalog(events_db, max_bytes)
    cpu_node = node.get("cpu")
    if cpu_node is not None:
        model = find_cpu(cpu_node.string())
        if model is None:
            close = suggest_cpu(cpu_node.string())
            raise cpu_node.error(f"unknown CPU model {cpu_node.value!r}",
                            f"did you mean {', '.join(close)}?" if close else
                            f"known: {', '.join(CPU_MODELS)}")
        return model
    midr = node.get("midr")
    if midr is not None:
        value = defs.PMU["midr"].read(midr)
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
        return _load_catalog(str(path), max_bytes)
    return CPU_MODELS["generic"]


def _pmcr(node: Node | None) -> tuple[int, int] | None:
    """`pmcr: {imp: 0x41, idcode: 1}`: PMCR_EL0's implementer and identification code."""
    if node is None:
        return None
    defs.PMCR.check(node)
    return (defs.PMCR["imp"].read(node.require("imp")),
            defs.PMCR["idcode"].read(node.require("idcode")))


def _pmu(node: Node, name: str, cpus: frozenset[int], events_db: str | None,
         max_bytes: int, pmu_type: int, pmcr: tuple[int, int] | None,
         cpu: str | None = None) -> PmuSpec:
    version = node.get("pmu_version")
    counters = node.get("counters")
    type_node = node.get("type")
    return PmuSpec(
        name=name,
        model=_model(node, events_db, max_bytes, cpu),
        pmu_version=sr.PMU_VERSIONS[defs.PMU_VERSION.read(version)] if version else None,
        counters=defs.PMU["counters"].read(counters) if counters else None,
        cpus=cpus,
        loc=node.loc,
        pmu_type=defs.PMU["type"].read(type_node) if type_node else pmu_type,
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
               max_bytes: int = 16 << 20, cpu: str | None = None) -> HostSpec:
    """`host:`; `events_db` (--events-db) or `cpu` (--cpu) give a single-PMU host's model."""
    if node is None or node.value is None:
        if events_db:
            return HostSpec((PmuSpec("armv8_pmuv3_0", _load_catalog(events_db, max_bytes)),))
        if cpu is not None:
            return HostSpec((PmuSpec("armv8_pmuv3_0", cpu_model_arg(cpu)),))
        return HostSpec()
    node.mapping(defs.HOST_KEYS)
    dfr0_node = node.get("id_aa64dfr0_el1")
    dfr0 = defs.DFR0.read(dfr0_node) if dfr0_node else None
    pmus_node = node.get("pmus")
    if pmus_node is None:
        return HostSpec((_pmu(node, "armv8_pmuv3_0", DEFAULT_CPUS, events_db, max_bytes,
                              FIRST_PMU_TYPE, None, cpu),), dfr0)
    pmcr = _pmcr(node.get("pmcr"))  # for every PMU; a PMU's own pmcr wins
    if any(node.get(k) is not None for k in _PMU_KEYS if k != "pmcr"):
        raise node.error("with 'pmus', give cpu, midr, catalog, pmu_version, counters and "
                         "type per PMU")
    if events_db or cpu is not None:
        option = "--events-db" if events_db else "--cpu"
        raise pmus_node.error(f"{option} applies to a single-PMU host only")
    pmus: list[PmuSpec] = []
    seen: set[int] = set()
    for i, item in enumerate(pmus_node.items()):
        defs.NAMED_PMU.check(item)
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

