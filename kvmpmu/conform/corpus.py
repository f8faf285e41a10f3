"""The built-in corpus: the cases a host can express, named stably.

- `scenario/<name>`: every shipped scenario (kvmpmu/data/scenarios, also configs/scenarios),
  unless it names a host PMU the host does not have;
- `spec/<name>`: the shipped specs whose host the machine's host can stand for (the generic
  host: one PMU, no CPU model of its own; kvmpmu/data/specs), booted as usual, with the probe
  guest (builder.probe) on every vCPU;
- `matrix/<op>/A<s>-B<s>`: every PMU attribute and operation in every pair of vCPU states;
- `filter/<rule>`: each filter rule of the semantics document;
- `counting/<EVENT>[.denied]`: the events of QEMU's PMU that the host implements.

Each case is one small VM. The cases' own expectations (a scenario's expect_errno) are not
what conform judges: it compares the two machines.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from kvmpmu.conform.builder import Case, probe
from kvmpmu.conform.matrix import matrix_cases
from kvmpmu.conform.rule_cases import counting_cases, filter_rule_cases
from kvmpmu.kvm.host import Host
from kvmpmu.spec.filterspec import FilterSpec, load_filter_spec
from kvmpmu.spec.workload import Workload, load_workload
from kvmpmu.vmm.session import host_pmu_types

GENERIC_HOST_SECTIONS = (None, {"cpu": "generic"})


def data_files(folder: str) -> list[Path]:
    """The shipped YAML files of kvmpmu/data/<folder>, by name."""
    root = Path(str(resources.files("kvmpmu.data").joinpath(folder)))
    return sorted(root.glob("*.yaml"))


def scenario_cases(host: Host) -> Iterator[Case]:
    names = host_pmu_types(host)  # by name, and `default`
    for path in data_files("scenarios"):
        spec = FilterSpec(file=f"corpus:scenario/{path.stem}")
        workload = load_workload(str(path), catalog=spec.host.catalog())
        assert workload.scenario is not None  # a shipped scenario has its vmm: section
        if all(item.pmu_name is None or item.pmu_name in names for item in workload.scenario):
            yield Case(f"scenario/{path.stem}", spec, workload)


def stands_for(spec: FilterSpec) -> bool:
    """Whether any single-PMU host can stand for the spec's host."""
    return spec.sections.get("host") in GENERIC_HOST_SECTIONS and spec.vm.pmu is None \
        and spec.vm.cpus is None


def spec_cases() -> Iterator[Case]:
    for path in data_files("specs"):
        spec = load_filter_spec(str(path))
        if stands_for(spec):
            name = f"spec/{path.stem}"
            yield Case(name, spec, Workload(file=f"corpus:{name}", all_steps=probe(name)))


def corpus(host: Host) -> Iterator[Case]:
    yield from scenario_cases(host)
    yield from spec_cases()
    yield from matrix_cases(host)
    yield from filter_rule_cases(host)
    yield from counting_cases(host)
