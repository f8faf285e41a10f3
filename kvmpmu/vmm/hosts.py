"""Build the emulated host from a spec's `host:` section."""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.spec.hostspec import HostSpec, PmuSpec


def _host_pmu(spec: PmuSpec) -> HostPmu:
    events = spec.model.events
    if spec.pmuver == sr.PMUVER_IMP:
        events = frozenset(e for e in events if e < 0x400)  # a 10-bit event space
    counters = spec.counters if spec.counters is not None else spec.model.counters
    imp, idcode = spec.pmcr_imp_idcode
    return HostPmu(spec.name, spec.pmu_type, spec.pmuver, counters, events, spec.cpus, imp,
                   idcode, spec.model.name)


def build_host(spec: HostSpec) -> Host:
    """One HostPmu per spec PMU (perf types 8, 9, ... in order unless a PMU gives its own)."""
    pmus = tuple(_host_pmu(p) for p in spec.pmus)
    cpus = frozenset().union(*(p.cpus for p in pmus))
    first = spec.pmus[0].model
    return Host(pmus, aarch32_el0=any(p.model.aarch32_el0 for p in spec.pmus), cpus=cpus,
                id_aa64dfr0=first.id_aa64dfr0 if spec.id_aa64dfr0 is None else spec.id_aa64dfr0,
                el3=first.el3)
