"""Each filter rule of the semantics document (§2.4, §2.5, §3, §4) as a small scenario whose
guest reads PMCEID and counts SW_INCR, and the counting/PMCEID checks with the events the
host implements of those QEMU's PMU has (SW_INCR, CPU_CYCLES, STALL_FRONTEND/BACKEND, STALL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from kvmpmu.arch import events as ev
from kvmpmu.conform.builder import ALLOW, DENY, Case, Scenario, probe
from kvmpmu.kvm.host import Host

STALL_FRONTEND, STALL_BACKEND, STALL = 0x23, 0x24, 0x3C
QEMU_EVENTS = {ev.SW_INCR: "SW_INCR", ev.CPU_CYCLES: "CPU_CYCLES",
               STALL_FRONTEND: "STALL_FRONTEND", STALL_BACKEND: "STALL_BACKEND", STALL: "STALL"}
CHAIN_GUEST = {0: ev.SW_INCR, 1: ev.CHAIN}

Filters = tuple[tuple[int, int, int], ...]  # (base_event, nevents, action), in order


def _vm(name: str, vcpus: int = 1) -> Scenario:
    s = Scenario(name).vgic("create").create_vcpus(vcpus)
    for vcpu in range(vcpus):
        s.vcpu_init(vcpu)
    return s.vgic("init")


def _start(s: Scenario, vcpu: int) -> Scenario:
    return s.set_irq(vcpu).pmu_init(vcpu)


def filter_case(name: str, filters: Filters, guest: dict[int, int] | None = None,
                presets: dict[int, int] | None = None, pad: bytes | None = None) -> Case:
    """The filters through vCPU 0 before its PMU INIT, then a run of the probe guest."""
    s = _vm(name)
    for base, nevents, action in filters:
        if pad is None:
            s.filter(0, base, nevents, action)
        else:
            s.filter(0, base, nevents, action, pad)
    _start(s, 0).run(0)
    return s.case(probe(s.name, guest, presets))


def _late_after_run() -> Case:
    """§2.5: after vCPU 0 ran, through vCPU 1 (no PMU INIT): EBUSY from 5.18 (invalid ranges
    still EINVAL first), accepted before; through vCPU 0 EBUSY whatever the call."""
    s = _start(_vm("filter/late-after-run", 2), 0).run(0)
    s.filter(1, ev.SW_INCR, 1, DENY).filter(1, 0xFFFF, 2, DENY).filter(0, 0xFFFF, 2, DENY)
    return _start(s, 1).run(1).case(probe(s.name))


def _late_before_run() -> Case:
    """§2.5: after vCPU 0's PMU INIT but before any run, through vCPU 1: accepted, for the VM."""
    s = _start(_vm("filter/late-before-run", 2), 0)
    s.filter(1, ev.SW_INCR, 1, DENY)
    return _start(s, 1).run(0).run(1).case(probe(s.name))


def _after_own_init() -> Case:
    """§2.2 step 2: after this vCPU's PMU INIT, EBUSY before any validation."""
    s = _start(_vm("filter/after-own-pmu-init"), 0)
    s.filter(0, ev.CPU_CYCLES, 1, DENY).filter(0, 0xFFFF, 2, 7)
    return s.run(0).case(probe(s.name))


def _set_pmu_after_filter(host: Host) -> Case:
    """§2.5: with a filter, SET_PMU of the same PMU succeeds; an unknown type is ENXIO."""
    s = _vm("filter/set-pmu-after-filter").filter(0, ev.CPU_CYCLES, 1, DENY)
    s.set_pmu(0, host.pmus[0].pmu_type).set_pmu(0, 32767)
    return _start(s, 0).run(0).case(probe(s.name))


RULES: tuple[tuple[str, Filters], ...] = (
    ("first-allow-denies-the-rest", ((ev.CPU_CYCLES, 1, ALLOW),)),
    ("first-deny-allows-the-rest", ((ev.CPU_CYCLES, 1, DENY),)),
    ("cancel-allow-then-deny", ((STALL, 1, ALLOW), (STALL, 1, DENY))),
    ("cancel-deny-then-allow", ((STALL, 1, DENY), (STALL, 1, ALLOW))),
    ("nevents-0-allow-first", ((ev.CPU_CYCLES, 0, ALLOW), (ev.CPU_CYCLES, 1, ALLOW))),
    ("nevents-0-deny-first", ((ev.CPU_CYCLES, 0, DENY), (STALL, 1, ALLOW))),
    ("sw-incr-denied", ((ev.SW_INCR, 1, DENY),)),
    ("sw-incr-not-allowed", ((ev.CPU_CYCLES, 1, ALLOW),)),
    ("cycle-counter-denied", ((ev.CPU_CYCLES, 1, DENY),)),
    ("cycle-counter-allowed", ((ev.CPU_CYCLES, 1, ALLOW), (ev.SW_INCR, 1, ALLOW))),
    ("edge-0x3ff", ((0x3FF, 1, ALLOW),)),
    ("edge-0x3ff-2", ((0x3FF, 2, ALLOW),)),
    ("edge-0x400", ((0x400, 1, DENY),)),
    ("edge-0x4000", ((0x4000, 1, DENY),)),
    ("edge-0xffff", ((0xFFFF, 1, DENY),)),
    ("edge-0xffff-2", ((0xFFFF, 2, DENY),)),
    ("edge-0x10000-0", ((0xFFFF, 1, DENY), (0xFFFF, 0, ALLOW))),
    ("action-invalid", ((ev.CPU_CYCLES, 1, 2), (ev.CPU_CYCLES, 1, DENY))),
)


def filter_rule_cases(host: Host) -> Iterator[Case]:
    for name, filters in RULES:
        yield filter_case(f"filter/{name}", filters)
    yield filter_case("filter/chain-denied", ((ev.CHAIN, 1, DENY),), CHAIN_GUEST,
                      {0: 0xFFFFFFFF})
    yield filter_case("filter/chain-allowed", (), CHAIN_GUEST, {0: 0xFFFFFFFF})
    yield filter_case("filter/pad-ignored", ((ev.CPU_CYCLES, 1, DENY),), pad=b"\xff\xff\xff")
    builders: tuple[Callable[[], Case], ...] = (_late_after_run, _late_before_run,
                                               _after_own_init)
    for build in builders:
        yield build()
    yield _set_pmu_after_filter(host)


def counting_cases(host: Host) -> Iterator[Case]:
    """Counter 2 programmed with each event the host implements of QEMU's, with no filter and
    with that event denied."""
    pmu = host.pmus[0]
    for event in QEMU_EVENTS:
        if event != ev.SW_INCR and not pmu.implements(event):
            continue
        guest = {0: ev.SW_INCR, 1: ev.CPU_CYCLES, 2: event}
        name = f"counting/{QEMU_EVENTS[event]}"
        yield filter_case(name, (), guest)
        yield filter_case(f"{name}.denied", ((event, 1, DENY),), guest)
