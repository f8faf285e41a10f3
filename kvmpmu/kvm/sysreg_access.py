"""Guest MRS/MSR to PMU registers, trapped into the vPMU: EL0 permissions and UNDEF rules (§5.2)."""

from __future__ import annotations

import re
from collections.abc import Callable

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.vpmu import CYCLE, Undefined, Vpmu

Reader = Callable[[int], int]  # el -> value
Writer = Callable[[int, int], None]  # el, value

_COUNTER_RE = re.compile(r"PMEV(CNTR|TYPER)(\d+)_EL0")


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


def _write_only(el: int) -> int:
    raise Undefined


def _read_only(el: int, value: int) -> None:
    raise Undefined


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


def _raz(el: int) -> int:
    return 0


def _wi(el: int, value: int) -> None:
    return None


def _undef_write(el: int, value: int) -> None:
    raise Undefined


def resolve(vpmu: Vpmu, name: str) -> tuple[Reader, Writer]:
    """The (read, write) handlers of register `name`; KeyError if it is not a PMU register.
    Resolved when the guest runs: a PMU that is not ready then never becomes ready."""
    if name == "ID_AA64DFR0_EL1":
        return _read_dfr0(vpmu), _read_only
    if name not in sr.SYSREGS:
        raise KeyError(name)
    if not vpmu.ready:  # no PMU feature, or (5.10) a PMU INIT that failed
        if vpmu.profile.hides_absent_pmu:
            return _write_only, _undef_write
        return _raz, _wi
    fixed = _fixed(vpmu).get(name)
    if fixed is not None:
        return fixed
    match = _COUNTER_RE.fullmatch(name)
    if match is None or int(match.group(2)) >= sr.MAX_GENERAL_COUNTERS:
        raise KeyError(name)
    idx = int(match.group(2))
    if match.group(1) == "CNTR":
        return _counter(vpmu, lambda: idx, sr.PMUSERENR_ER)
    return _evtype(vpmu, lambda: idx)


def _counter(vpmu: Vpmu, index: Callable[[], int], el0_flag: int) -> tuple[Reader, Writer]:
    flags = el0_flag | sr.PMUSERENR_EN

    def read(el: int) -> int:  # the workload engine's hot path: checks inlined
        if el == 0 and not vpmu.pmuserenr & flags:
            raise Undefined
        idx = index()
        if idx != CYCLE and idx >= vpmu.nr_counters:
            raise Undefined
        return vpmu.counter_value(idx)

    def write(el: int, value: int) -> None:
        _require(vpmu, el, el0_flag | sr.PMUSERENR_EN)
        idx = index()
        _check_idx(vpmu, idx)
        _require(vpmu, el, sr.PMUSERENR_EN)
        vpmu.set_counter_value(idx, value)

    return read, write


def _evtype(vpmu: Vpmu, index: Callable[[], int]) -> tuple[Reader, Writer]:
    def read(el: int) -> int:
        _require(vpmu, el, sr.PMUSERENR_EN)
        idx = index()
        _check_idx(vpmu, idx)
        return vpmu.evtype[idx]

    def write(el: int, value: int) -> None:
        _require(vpmu, el, sr.PMUSERENR_EN)
        idx = index()
        _check_idx(vpmu, idx)
        vpmu.set_event_type(idx, value)

    return read, write


def _fixed(vpmu: Vpmu) -> dict[str, tuple[Reader, Writer]]:
    en = sr.PMUSERENR_EN

    def selected() -> int:
        return vpmu.pmselr & sr.PMSELR_SEL_MASK

    def read_pmcr(el: int) -> int:
        _require(vpmu, el, en)
        return vpmu.read_pmcr() & ~(sr.PMCR_P | sr.PMCR_C)

    def write_pmcr(el: int, value: int) -> None:
        _require(vpmu, el, en)
        vpmu.write_pmcr(value)

    def read_cnten(el: int) -> int:
        _require(vpmu, el, en)
        return vpmu.stored(vpmu.pmcnten)

    def set_cnten(el: int, value: int) -> None:
        _require(vpmu, el, en)
        vpmu.write_pmcnten(value, setting=True)

    def clr_cnten(el: int, value: int) -> None:
        _require(vpmu, el, en)
        vpmu.write_pmcnten(value, setting=False)

    def read_inten(el: int) -> int:
        _el1_only(el)
        return vpmu.stored(vpmu.pminten)

    def set_inten(el: int, value: int) -> None:
        _el1_only(el)
        vpmu.pminten |= value & vpmu.implemented_mask

    def clr_inten(el: int, value: int) -> None:
        _el1_only(el)
        vpmu.pminten &= ~(value & vpmu.implemented_mask)

    def read_ovs(el: int) -> int:
        _require(vpmu, el, en)
        return vpmu.stored(vpmu.pmovs)

    def set_ovs(el: int, value: int) -> None:
        _require(vpmu, el, en)
        vpmu.pmovs |= value & vpmu.implemented_mask

    def clr_ovs(el: int, value: int) -> None:
        _require(vpmu, el, en)
        vpmu.pmovs &= ~(value & vpmu.implemented_mask)

    def swinc(el: int, value: int) -> None:
        _require(vpmu, el, sr.PMUSERENR_SW | en)
        vpmu.software_increment(value)

    def read_selr(el: int) -> int:
        _require(vpmu, el, sr.PMUSERENR_ER | en)
        return selected()

    def write_selr(el: int, value: int) -> None:
        _require(vpmu, el, sr.PMUSERENR_ER | en)
        vpmu.pmselr = value & sr.PMSELR_SEL_MASK

    def pmceid(reg: int) -> Reader:
        def read(el: int) -> int:
            _require(vpmu, el, en)
            return vpmu.vm.guest_pmceid(vpmu.vcpu, reg)

        return read

    def read_userenr(el: int) -> int:
        return vpmu.pmuserenr & sr.PMUSERENR_MASK

    def write_userenr(el: int, value: int) -> None:
        _el1_only(el)
        vpmu.pmuserenr = value & sr.PMUSERENR_MASK

    def read_pmmir(el: int) -> int:
        """RAZ from 5.12 when the guest's PMU is PMUv3p4 or later (the register exists from
        there: measured UNDEF on a PMUv3 8.0 host); UNDEF otherwise."""
        _el1_only(el)
        if not vpmu.profile.has_pmmir or vpmu.vm.guest_pmuver < sr.PMUVER_V3P4:
            raise Undefined
        return 0

    return {
        "PMCR_EL0": (read_pmcr, write_pmcr),
        "PMCNTENSET_EL0": (read_cnten, set_cnten),
        "PMCNTENCLR_EL0": (read_cnten, clr_cnten),
        "PMINTENSET_EL1": (read_inten, set_inten),
        "PMINTENCLR_EL1": (read_inten, clr_inten),
        "PMOVSSET_EL0": (read_ovs, set_ovs),
        "PMOVSCLR_EL0": (read_ovs, clr_ovs),
        "PMSWINC_EL0": (_write_only, swinc),
        "PMSELR_EL0": (read_selr, write_selr),
        "PMCEID0_EL0": (pmceid(0), _read_only),
        "PMCEID1_EL0": (pmceid(1), _read_only),
        "PMUSERENR_EL0": (read_userenr, write_userenr),
        "PMCCNTR_EL0": _counter(vpmu, lambda: CYCLE, sr.PMUSERENR_CR),
        "PMXEVCNTR_EL0": _counter(vpmu, selected, sr.PMUSERENR_ER),
        "PMCCFILTR_EL0": _evtype(vpmu, lambda: CYCLE),
        "PMXEVTYPER_EL0": _evtype(vpmu, selected),
        "PMMIR_EL1": (read_pmmir, _read_only),
    }


def _read_dfr0(vpmu: Vpmu) -> Reader:
    def read(el: int) -> int:
        _el1_only(el)
        return vpmu.vm.guest_id_aa64dfr0(vpmu.vcpu)

    return read


PMU_REGISTER_NAMES = sorted(sr.SYSREGS)
