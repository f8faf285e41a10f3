"""Corpus cases built in code: scenario items as ScenarioCall tuples and guests as script
steps, without YAML. Every call carries expect_errno (None), so a failing call is recorded
and the case goes on: what a case shows is the errno each kernel gives, compared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvmpmu.arch import events as ev
from kvmpmu.errors import SourceLoc
from kvmpmu.spec.filterspec import NO_PAD, FilterCall, FilterSpec
from kvmpmu.spec.scenario import ATTRS, Expectation, ScenarioCall
from kvmpmu.spec.workload import Access, Step, Workload
from kvmpmu.uapi import kvm as uapi

ALLOW, DENY = uapi.KVM_PMU_EVENT_ALLOW, uapi.KVM_PMU_EVENT_DENY
PPI = 23  # the PMU interrupt every case uses (kvmtool's and QEMU's)


@dataclass(frozen=True)
class Case:
    """One corpus case: a stable name, the spec (host facts come from the machine) and the
    workload (a scenario, or the guest for the default boot sequence)."""

    name: str
    spec: FilterSpec
    workload: Workload


class Scenario:
    """The items of one case's `vmm:` section, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[ScenarioCall] = []
        self.vcpus = 0

    def _loc(self) -> SourceLoc:
        return SourceLoc(f"corpus:{self.name}", len(self.items) + 1, 1)

    def _add(self, call: Any, arg: Any, **fields: Any) -> Scenario:
        raw = {call: arg, "expect_errno": None}
        self.items.append(ScenarioCall(call, self._loc(), raw, Expectation(expecting=True),
                                       **fields))
        return self

    def create_vcpus(self, count: int) -> Scenario:
        self.vcpus = max(self.vcpus, count)
        return self._add("create_vcpus", count, count=count)

    def vcpu_init(self, vcpu: int, pmu: bool = True) -> Scenario:
        return self._add("vcpu_init", {"vcpu": vcpu, "pmu": pmu}, vcpu=vcpu, pmu=pmu)

    def vgic(self, action: str) -> Scenario:
        return self._add("vgic", action, vgic=action)

    def has(self, vcpu: int, attr: str) -> Scenario:
        return self._add("has", {"vcpu": vcpu, "attr": attr}, vcpu=vcpu, attr=ATTRS[attr])

    def get(self, vcpu: int, attr: str) -> Scenario:
        return self._add("get", {"vcpu": vcpu, "attr": attr}, vcpu=vcpu, attr=ATTRS[attr])

    def set_irq(self, vcpu: int, irq: int = PPI) -> Scenario:
        return self._add("set_irq", {"vcpu": vcpu, "irq": irq}, vcpu=vcpu, value=irq)

    def filter(self, vcpu: int, base: int, nevents: int, action: int,
               pad: bytes = NO_PAD) -> Scenario:
        arg = {"vcpu": vcpu, "action": action, "base_event": base, "nevents": nevents,
               "pad": list(pad)}
        call = FilterCall(base, nevents, action, self._loc(), pad=pad, expecting=True)
        return self._add("filter", arg, vcpu=vcpu, filters=(call,))

    def set_pmu(self, vcpu: int, pmu_type: int) -> Scenario:
        return self._add("set_pmu", {"vcpu": vcpu, "type": pmu_type}, vcpu=vcpu,
                         value=pmu_type)

    def set_nr_counters(self, vcpu: int, n: int) -> Scenario:
        return self._add("set_nr_counters", {"vcpu": vcpu, "n": n}, vcpu=vcpu, value=n)

    def pmu_init(self, vcpu: int) -> Scenario:
        return self._add("pmu_init", {"vcpu": vcpu}, vcpu=vcpu)

    def run(self, vcpu: int) -> Scenario:
        return self._add("run", {"vcpu": vcpu}, vcpu=vcpu)

    def case(self, guest: tuple[Step, ...] = ()) -> Case:
        """The case, every vCPU running `guest` (none: it ends at once; its state is read)."""
        workload = Workload(file=f"corpus:{self.name}", all_steps=guest,
                            scenario=tuple(self.items))
        return Case(self.name, FilterSpec(file=f"corpus:{self.name}"), workload)


def _write(name: str, *ops: tuple[str, int | None]) -> Access:
    kind = "read" if all(value is None for _, value in ops) else "write"
    return Access(tuple(ops), SourceLoc(f"corpus:{name}", 0, 0), kind)


def probe(name: str, types: dict[int, int] | None = None,
          presets: dict[int, int] | None = None, swinc: int = 3) -> tuple[Step, ...]:
    """A guest that zeroes and programs counters (default: 0 SW_INCR, 1 CPU_CYCLES, and the
    cycle counter), presets some, enables them, writes PMSWINC_EL0 for counter 0 `swinc`
    times, and reads PMCEID0/1 and counter 0. It leaves the counters enabled, so that the end
    state says which could count. The state read at its end shows the rest."""
    types = {0: ev.SW_INCR, 1: ev.CPU_CYCLES} if types is None else types
    steps: list[Step] = [
        _write(name, ("PMCR_EL0", 0x6)),
        _write(name, ("PMOVSCLR_EL0", 0xFFFFFFFF), ("PMINTENCLR_EL1", 0xFFFFFFFF),
               ("PMCNTENCLR_EL0", 0xFFFFFFFF)),
        _write(name, *((f"PMEVTYPER{n}_EL0", event) for n, event in sorted(types.items())),
               ("PMCCFILTR_EL0", 0)),
    ]
    if presets:
        steps.append(_write(name, *((f"PMEVCNTR{n}_EL0", v) for n, v in sorted(presets.items()))))
    enable = sum(1 << n for n in types) | 1 << 31
    steps.append(_write(name, ("PMCNTENSET_EL0", enable), ("PMCR_EL0", 0x1)))
    steps += [_write(name, ("PMSWINC_EL0", 1)) for _ in range(swinc)]
    steps.append(_write(name, ("PMCEID0_EL0", None), ("PMCEID1_EL0", None),
                        ("PMEVCNTR0_EL0", None)))
    return tuple(steps)
