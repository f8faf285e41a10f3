"""Build the emulated host from a spec's `host:` section."""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import Host, generic_host
from kvmpmu.spec.filterspec import HostSpec


def build_host(spec: HostSpec) -> Host:
    pmuver = spec.pmu_version if spec.pmu_version is not None else sr.PMUVER_V3P5
    counters = spec.counters if spec.counters is not None else 6
    return generic_host(pmuver, counters)
