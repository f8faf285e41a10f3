"""Build the emulated host from a spec's `host:` section."""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import FIRST_PMU_TYPE, Host, HostPmu
from kvmpmu.spec.hostspec import HostSpec, PmuSpec


def _host_pmu(index: int, spec: PmuSpec) -> HostPmu:
    events = spec.model.events
    if spec.pmuver == sr.PMUVER_IMP:
        events = frozenset(e for e in events if e < 0x400)  # a 10-bit event space
    counters = spec.counters if spec.counters is not None else spec.model.counters
    return HostPmu(spec.name, FIRST_PMU_TYPE + index, spec.pmuver, counters, events, spec.cpus,
                   spec.model.pmcr_imp, spec.model.pmcr_idcode, spec.model.name)


def build_host(spec: HostSpec) -> Host:
    """One HostPmu per spec PMU, perf types 8, 9, ... in order."""
    pmus = tuple(_host_pmu(i, p) for i, p in enumerate(spec.pmus))
    cpus = frozenset().union(*(p.cpus for p in pmus))
    return Host(pmus, aarch32_el0=any(p.model.aarch32_el0 for p in spec.pmus), cpus=cpus,
                id_aa64dfr0=spec.pmus[0].model.id_aa64dfr0, el3=spec.pmus[0].model.el3)
