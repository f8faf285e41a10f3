"""The host: its physical CPUs and the PMUs (`struct arm_pmu`) that back them."""

from __future__ import annotations

from functools import cached_property, lru_cache

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.events import (
    PMCEID_EXT_BASE,
    architected_event_mask,
    architected_in_pmceid_range,
)
from kvmpmu.records import Record

FIRST_PMU_TYPE = 8  # perf types 0-5 are fixed, and kprobe/uprobe usually take 6 and 7


class HostPmu(Record):
    """One host PMU as KVM sees it: perf type id, PMUVer, counters, implemented events, CPUs."""

    __slots__ = ("name", "pmu_type", "pmuver", "counters", "events", "cpus", "pmcr_imp",
                 "pmcr_idcode", "model")

    def __init__(self, name: str, pmu_type: int, pmuver: int, counters: int,
                 events: frozenset[int], cpus: frozenset[int], pmcr_imp: int = 0x41,
                 pmcr_idcode: int = 0, model: str = "") -> None:
        self.name, self.pmu_type, self.pmuver, self.counters = name, pmu_type, pmuver, counters
        self.events, self.cpus = events, cpus
        self.pmcr_imp = pmcr_imp  # PMCR_EL0.IMP and IDCODE of this PMU's CPUs
        self.pmcr_idcode = pmcr_idcode
        self.model = model  # the CPU model behind it, for the user

    def implements(self, event: int) -> bool:
        return event in self.events

    def pmceid(self, reg: int) -> int:
        """The hardware PMCEID<reg>_EL0; the high half is RES0 before PMUv3p1 (Armv8.1)."""
        return _pmceid(self.events, self.pmuver != sr.PMUVER_IMP, reg)


@lru_cache(maxsize=256)  # read at every vCPU's PMCEID access and every result
def _pmceid(events: frozenset[int], extended: bool, reg: int) -> int:
    base = 32 * reg
    value = 0
    for i in range(32):
        if base + i in events:
            value |= 1 << i
        if extended and PMCEID_EXT_BASE + base + i in events:
            value |= 1 << (32 + i)
    return value


class Host(Record):
    __slots__ = ("pmus", "aarch32_el0", "cpus", "id_aa64dfr0", "el3", "__dict__")

    def __init__(self, pmus: tuple[HostPmu, ...], aarch32_el0: bool = False,
                 cpus: frozenset[int] = frozenset(), id_aa64dfr0: int = 0x10305609,
                 el3: bool = True) -> None:
        self.pmus = pmus
        self.aarch32_el0 = aarch32_el0
        self.cpus = cpus
        self.id_aa64dfr0 = id_aa64dfr0  # the system-wide one (PMUVer comes from pmus)
        self.el3 = el3  # ID_AA64PFR0_EL1.EL3: firmware at EL3 (QEMU's virt board has none)

    def pmu_for_cpu(self, cpu: int) -> HostPmu | None:
        for pmu in self.pmus:
            if cpu in pmu.cpus:
                return pmu
        return None

    def pmu_by_type(self, pmu_type: int) -> HostPmu | None:
        for pmu in self.pmus:
            if pmu.pmu_type == pmu_type:
                return pmu
        return None

    @cached_property
    def sanitised_pmuver(self) -> int:
        """System-wide ID_AA64DFR0_EL1.PMUVer: the lowest of all CPUs, IMP_DEF counted as 0."""
        versions = [0 if p.pmuver == sr.PMUVER_IMP_DEF else p.pmuver for p in self.pmus]
        return min(versions) if versions else sr.PMUVER_NI

    @cached_property
    def uniform_pmuver(self) -> bool:
        return len({p.pmuver for p in self.pmus}) <= 1


def generic_events(pmuver: int) -> frozenset[int]:
    """Every architected event with a PMCEID bit; a PMUv3 (8.0) host has a 10-bit event space."""
    mask = architected_event_mask(pmuver)
    return frozenset(e for e in architected_in_pmceid_range() if e <= mask)


def generic_host(pmuver: int = sr.PMUVER_V3P5, counters: int = 6, ncpus: int = 8) -> Host:
    """The default host: one PMUv3p5 PMU with 6 counters implementing every architected event."""
    cpus = frozenset(range(ncpus))
    pmu = HostPmu("armv8_pmuv3_0", FIRST_PMU_TYPE, pmuver, counters, generic_events(pmuver), cpus)
    return Host((pmu,), cpus=cpus)
