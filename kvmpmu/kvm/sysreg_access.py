"""Guest MRS/MSR to PMU registers, trapped into the vPMU: EL0 permissions and UNDEF rules (§5.2).

`REGISTERS` maps each register to its (read, write) rules, built once; `resolve` binds them to
one vCPU's vPMU. The rules are module functions whose parameters `partial` binds, not closures
made at import: what runs is the module's code as it is at the call (mutation testing
switches functions at run time).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.vpmu import CYCLE, Undefined, Vpmu

Reader = Callable[[int], int]  # el -> value
Writer = Callable[[int, int], None]  # el, value
ReadRule = Callable[[Vpmu, int], int]  # vpmu, el -> value
WriteRule = Callable[[Vpmu, int, int], None]  # vpmu, el, value
Index = int | None  # the counter a register names; None: the one PMSELR_EL0.SEL selects


def _require(vpmu: Vpmu, el: int, flags: int) -> None:
    """check_pmu_access_disabled(): EL0 needs one of `flags` in PMUSERENR_EL0."""
    if el == 0 and not vpmu.pmuserenr & flags:
        raise Undefined


def _el1_only(el: int) -> None:
    if el == 0:
        raise Undefined


def _check_idx(vpmu: Vpmu, idx: int) -> None:
    if idx != CYCLE and idx >= vpmu.nr_counters:
        raise Undefined


def _write_only(vpmu: Vpmu, el: int) -> int:
    raise Undefined


def _read_only(vpmu: Vpmu, el: int, value: int) -> None:
    raise Undefined


def _raz(vpmu: Vpmu, el: int) -> int:
    return 0


def _wi(vpmu: Vpmu, el: int, value: int) -> None:
    return None


def _selected(vpmu: Vpmu) -> int:
    return vpmu.pmselr & sr.PMSELR_SEL_MASK


def _counter_index(index: Index, vpmu: Vpmu) -> int:
    return _selected(vpmu) if index is None else index


def _read_counter(index: Index, flags: int, vpmu: Vpmu, el: int) -> int:
    """PMEVCNTR<n>, PMXEVCNTR, PMCCNTR: EL0 needs one of `flags` (the workload engine's hot
    path: checks inlined)."""
    if el == 0 and not vpmu.pmuserenr & flags:
        raise Undefined
    idx = vpmu.pmselr & sr.PMSELR_SEL_MASK if index is None else index
    if idx != CYCLE and idx >= vpmu.nr_counters:
        raise Undefined
    return vpmu.counter_value(idx)


def _write_counter(index: Index, vpmu: Vpmu, el: int, value: int) -> None:
    """The same counters written: at EL0 only EN permits it, whatever lets EL0 read them
    (checks inlined too)."""
    if el == 0 and not vpmu.pmuserenr & sr.PMUSERENR_EN:
        raise Undefined
    idx = vpmu.pmselr & sr.PMSELR_SEL_MASK if index is None else index
    if idx != CYCLE and idx >= vpmu.nr_counters:
        raise Undefined
    vpmu.set_counter_value(idx, value)


def _read_evtype(index: Index, vpmu: Vpmu, el: int) -> int:
    _require(vpmu, el, sr.PMUSERENR_EN)
    idx = _counter_index(index, vpmu)
    _check_idx(vpmu, idx)
    return vpmu.evtype[idx]


def _write_evtype(index: Index, vpmu: Vpmu, el: int, value: int) -> None:
    _require(vpmu, el, sr.PMUSERENR_EN)
    idx = _counter_index(index, vpmu)
    _check_idx(vpmu, idx)
    vpmu.set_event_type(idx, value)


def _read(get: Callable[[Vpmu], int], el0: int | None, vpmu: Vpmu, el: int) -> int:
    """`get` after the access check: EL0 needs one of `el0` in PMUSERENR_EL0 (None: EL1 only)."""
    if el == 0 and (el0 is None or not vpmu.pmuserenr & el0):
        raise Undefined
    return get(vpmu)


def _write(put: Callable[[Vpmu, int], None], el0: int | None, vpmu: Vpmu, el: int,
           value: int) -> None:
    """`put` after the same access check as `_read`."""
    if el == 0 and (el0 is None or not vpmu.pmuserenr & el0):
        raise Undefined
    put(vpmu, value)


def _read_pmmir(vpmu: Vpmu, el: int) -> int:
    """RAZ from 5.12 when the guest's PMU is PMUv3p4 or later (the register exists from there:
    measured UNDEF on a PMUv3 8.0 host); UNDEF otherwise."""
    _el1_only(el)
    if not vpmu.profile.has_pmmir or vpmu.arch.guest_pmuver < sr.PMUVER_V3P4:
        raise Undefined
    return 0


_EN = sr.PMUSERENR_EN
_ER = sr.PMUSERENR_ER | _EN
_CR = sr.PMUSERENR_CR | _EN
_EL1 = None  # UNDEF at EL0 whatever PMUSERENR_EL0 says
_SELECTED = None  # PMXEVCNTR_EL0, PMXEVTYPER_EL0: the counter PMSELR_EL0.SEL selects
REGISTERS: dict[str, tuple[ReadRule, WriteRule]] = {
    "PMCR_EL0": (partial(_read, lambda p: p.read_pmcr() & ~(sr.PMCR_P | sr.PMCR_C), _EN),
                 partial(_write, Vpmu.write_pmcr, _EN)),
    "PMCNTENSET_EL0": (partial(_read, lambda p: p.stored(p.pmcnten), _EN),
                       partial(_write, lambda p, v: p.write_pmcnten(v, setting=True), _EN)),
    "PMCNTENCLR_EL0": (partial(_read, lambda p: p.stored(p.pmcnten), _EN),
                       partial(_write, lambda p, v: p.write_pmcnten(v, setting=False), _EN)),
    "PMINTENSET_EL1": (partial(_read, lambda p: p.stored(p.pminten), _EL1),
                       partial(_write, lambda p, v: p.write_pminten(v, setting=True), _EL1)),
    "PMINTENCLR_EL1": (partial(_read, lambda p: p.stored(p.pminten), _EL1),
                       partial(_write, lambda p, v: p.write_pminten(v, setting=False), _EL1)),
    "PMOVSSET_EL0": (partial(_read, lambda p: p.stored(p.pmovs), _EN),
                     partial(_write, lambda p, v: p.write_pmovs(v, setting=True), _EN)),
    "PMOVSCLR_EL0": (partial(_read, lambda p: p.stored(p.pmovs), _EN),
                     partial(_write, lambda p, v: p.write_pmovs(v, setting=False), _EN)),
    "PMSWINC_EL0": (_write_only, partial(_write, Vpmu.software_increment,
                                         sr.PMUSERENR_SW | _EN)),
    "PMSELR_EL0": (partial(_read, _selected, _ER), partial(_write, Vpmu.write_pmselr, _ER)),
    "PMCEID0_EL0": (partial(_read, lambda p: p.guest_pmceid(0), _EN), _read_only),
    "PMCEID1_EL0": (partial(_read, lambda p: p.guest_pmceid(1), _EN), _read_only),
    "PMUSERENR_EL0": (lambda p, el: p.pmuserenr & sr.PMUSERENR_MASK,
                      partial(_write, Vpmu.write_pmuserenr, _EL1)),
    "PMCCNTR_EL0": (partial(_read_counter, CYCLE, _CR),
                    partial(_write_counter, CYCLE)),
    "PMXEVCNTR_EL0": (partial(_read_counter, _SELECTED, _ER),
                      partial(_write_counter, _SELECTED)),
    "PMCCFILTR_EL0": (partial(_read_evtype, CYCLE), partial(_write_evtype, CYCLE)),
    "PMXEVTYPER_EL0": (partial(_read_evtype, _SELECTED), partial(_write_evtype, _SELECTED)),
    "PMMIR_EL1": (_read_pmmir, _read_only),
    "ID_AA64DFR0_EL1": (partial(_read, Vpmu.guest_id_aa64dfr0, _EL1), _read_only),
    **{f"PMEVCNTR{n}_EL0": (partial(_read_counter, n, _ER),
                            partial(_write_counter, n))
       for n in range(sr.MAX_GENERAL_COUNTERS)},
    **{f"PMEVTYPER{n}_EL0": (partial(_read_evtype, n),
                             partial(_write_evtype, n))
       for n in range(sr.MAX_GENERAL_COUNTERS)},
}
# Without a ready PMU: UNDEF from 5.11, read-as-zero and writes ignored on 5.10.
_HIDDEN: tuple[ReadRule, WriteRule] = (_write_only, _read_only)
_ABSENT_5_10: tuple[ReadRule, WriteRule] = (_raz, _wi)


def rules(vpmu: Vpmu, name: str) -> tuple[ReadRule, WriteRule]:
    """The (read, write) rules of register `name` for this vPMU's state; KeyError if it is not
    a PMU register. A PMU that is not ready when the guest runs never becomes ready."""
    if name == "ID_AA64DFR0_EL1":
        return REGISTERS[name]
    if name not in sr.SYSREGS:
        raise KeyError(name)
    if not vpmu.ready:  # no PMU feature, or (5.10) a PMU INIT that failed
        return _HIDDEN if vpmu.profile.hides_absent_pmu else _ABSENT_5_10
    return REGISTERS[name]


def resolve(vpmu: Vpmu, name: str) -> tuple[Reader, Writer]:
    """The (read, write) handlers of register `name`, bound to `vpmu`."""
    read, write = rules(vpmu, name)
    return partial(read, vpmu), partial(write, vpmu)


class Handlers:
    """`resolve` once per register name: what a guest engine keeps for its vCPU."""

    def __init__(self, vpmu: Vpmu) -> None:
        self.vpmu = vpmu
        self._cache: dict[str, tuple[Reader, Writer]] = {}

    def __call__(self, name: str) -> tuple[Reader, Writer]:
        handler = self._cache.get(name)
        if handler is None:
            handler = self._cache[name] = resolve(self.vpmu, name)
        return handler
