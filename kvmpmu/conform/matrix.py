"""The generated matrix: every PMU attribute x every operation, made on vCPU A of a 2-vCPU VM
in each state, crossed with each state of vCPU B.

States: 0 created (before KVM_ARM_VCPU_INIT), 1 initialised without KVM_ARM_VCPU_PMU_V3,
2 initialised with it, 3 after its PMU INIT (IRQ set first), 4 after it ran. The VM has an
in-kernel vGIC, initialised once both vCPUs are initialised as their states say.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kvmpmu.arch import events as ev
from kvmpmu.conform.builder import DENY, Case, Scenario
from kvmpmu.kvm.host import Host

STATES = (0, 1, 2, 3, 4)
A, B = 0, 1
UNKNOWN_PMU_TYPE = 32767  # no perf PMU has it
NEVER_VALID_IRQ = 1020  # INTIDs from 1020 are special: never a PMU interrupt


@dataclass(frozen=True)
class Op:
    """One operation on vCPU A: `kind` HAS, GET or SET of `attr`, with its argument's variant."""

    kind: str
    attr: str
    variant: str = ""  # SET: "valid" or "invalid" ("" for INIT, which takes none)

    @property
    def name(self) -> str:
        return ".".join(p for p in (self.kind, self.attr, self.variant) if p)


def operations() -> tuple[Op, ...]:
    ops = []
    for attr in ("IRQ", "INIT", "FILTER", "SET_PMU", "SET_NR_COUNTERS"):
        ops += [Op("HAS", attr), Op("GET", attr)]
        variants = ("",) if attr == "INIT" else ("valid", "invalid")
        ops += [Op("SET", attr, v) for v in variants]
    return tuple(ops)


def _bring_up(s: Scenario, state_a: int, state_b: int) -> None:
    s.vgic("create").create_vcpus(2)
    for vcpu, state in ((A, state_a), (B, state_b)):
        if state >= 1:
            s.vcpu_init(vcpu, pmu=state >= 2)
    s.vgic("init")
    for vcpu, state in ((A, state_a), (B, state_b)):
        if state >= 3:
            s.set_irq(vcpu).pmu_init(vcpu)
    for vcpu, state in ((A, state_a), (B, state_b)):
        if state >= 4:
            s.run(vcpu)


def _apply(s: Scenario, op: Op, host: Host) -> None:
    if op.kind == "HAS":
        s.has(A, op.attr)
    elif op.kind == "GET":
        s.get(A, op.attr)
    elif op.attr == "INIT":
        s.pmu_init(A)
    elif op.attr == "IRQ":
        s.set_irq(A, 23 if op.variant == "valid" else NEVER_VALID_IRQ)
    elif op.attr == "FILTER":
        s.filter(A, ev.CPU_CYCLES, 1, DENY if op.variant == "valid" else 3)
    elif op.attr == "SET_PMU":
        s.set_pmu(A, host.pmus[0].pmu_type if op.variant == "valid" else UNKNOWN_PMU_TYPE)
    else:
        counters = host.pmus[0].counters
        s.set_nr_counters(A, min(3, counters) if op.variant == "valid" else counters + 1)


def matrix_cases(host: Host) -> Iterator[Case]:
    for op in operations():
        for state_a in STATES:
            for state_b in STATES:
                s = Scenario(f"matrix/{op.name}/A{state_a}-B{state_b}")
                _bring_up(s, state_a, state_b)
                _apply(s, op, host)
                yield s.case()
