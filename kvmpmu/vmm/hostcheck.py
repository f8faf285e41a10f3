"""On the kvm backend the host is the real one: what a spec's `host:` section says that the
real host does not match, said as warnings (the run goes on, on the real host)."""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import Host, HostPmu
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.hostspec import PmuSpec


def host_differences(spec: FilterSpec, real: Host) -> list[str]:
    written = spec.sections.get("host")
    if not isinstance(written, dict):
        return []
    out: list[str] = []
    if "pmus" in written and [p.name for p in spec.host.pmus] != [p.name for p in real.pmus]:
        out.append(_differ("host PMUs", ", ".join(p.name for p in spec.host.pmus),
                           ", ".join(p.name for p in real.pmus)))
    for pmu, other in zip(spec.host.pmus, real.pmus, strict=False):
        out += _pmu_differences(pmu, other, "pmus" in written)
    if spec.host.id_aa64dfr0 is not None and spec.host.id_aa64dfr0 != real.id_aa64dfr0:
        out.append(_differ("ID_AA64DFR0_EL1", f"0x{spec.host.id_aa64dfr0:x}",
                           f"0x{real.id_aa64dfr0:x}"))
    return [f"{spec.file}: warning: {line}; the kvm backend runs on the real host"
            for line in out]


def _pmu_differences(pmu: PmuSpec, real: HostPmu, typed: bool) -> list[str]:
    """Only what the spec wrote: a CPU model other than generic, a PMU version, counters,
    a perf type (in a `pmus:` list), PMCR_EL0's IMP and IDCODE."""
    what = f"PMU {pmu.name}"
    out = []
    if pmu.model.name != "generic" and pmu.model.name != real.model:
        out.append(_differ(f"{what}'s CPU", pmu.model.name, real.model or "not a built-in model"))
    if pmu.pmu_version is not None and pmu.pmu_version != real.pmuver:
        out.append(_differ(f"{what}'s version", _version(pmu.pmu_version),
                           _version(real.pmuver)))
    if pmu.counters is not None and pmu.counters != real.counters:
        out.append(_differ(f"{what}'s counters", str(pmu.counters), str(real.counters)))
    if typed and pmu.pmu_type != real.pmu_type:
        out.append(_differ(f"{what}'s perf type", str(pmu.pmu_type), str(real.pmu_type)))
    if pmu.pmcr is not None and pmu.pmcr != (real.pmcr_imp, real.pmcr_idcode):
        imp, idcode = pmu.pmcr
        out.append(_differ(f"{what}'s PMCR_EL0 IMP/IDCODE", f"0x{imp:x}/{idcode}",
                           f"0x{real.pmcr_imp:x}/{real.pmcr_idcode}"))
    return out


def _version(pmuver: int) -> str:
    return f"PMUv3 for Armv{sr.PMUVER_NAMES.get(pmuver, hex(pmuver))}"


def _differ(what: str, spec: str, real: str) -> str:
    return f"the spec's {what} is {spec}, the real host's {real}"
