"""The PMU state a scripted guest reads at its end, at EL1, for the results and for comparing
backends: the same MRS sequence whether the scripted engine or a compiled program makes it.

First the fixed registers, in FIXED order; then, for n = N-1 down to 0 (N from the PMCR_EL0
read, 0 when it UNDEFs), PMSELR_EL0 = n and the reads of PMXEVTYPER_EL0 and PMXEVCNTR_EL0,
recorded as PMEVTYPER<n>_EL0 and PMEVCNTR<n>_EL0. A read that UNDEFs is None.
"""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm import sysreg_access
from kvmpmu.kvm.vcpu import Vcpu
from kvmpmu.kvm.vpmu import Undefined

FIXED = ("PMCEID0_EL0", "PMCEID1_EL0", "PMCR_EL0", "ID_AA64DFR0_EL1", "PMCNTENSET_EL0",
         "PMOVSSET_EL0", "PMINTENSET_EL1", "PMCCFILTR_EL0", "PMCCNTR_EL0")
SELECTED = ("PMXEVTYPER_EL0", "PMXEVCNTR_EL0")  # as PMEVTYPER<n>_EL0, PMEVCNTR<n>_EL0


def counter_name(selected: str, n: int) -> str:
    return selected.replace("PMXEV", "PMEV").replace("_EL0", f"{n}_EL0")


def counters_of(pmcr: int | None) -> int:
    return 0 if pmcr is None else pmcr >> sr.PMCR_N_SHIFT & sr.PMCR_N_MASK


def read_state(vcpu: Vcpu) -> dict[str, int | None]:
    """The sequence above through the vCPU's trapped-register handlers, as the guest would."""
    handlers = sysreg_access.Handlers(vcpu.vpmu)
    state: dict[str, int | None] = {}

    def read(name: str) -> int | None:
        try:
            return handlers(name)[0](1)
        except Undefined:
            return None

    for name in FIXED:
        state[name] = read(name)
    for n in reversed(range(counters_of(state["PMCR_EL0"]))):
        try:
            handlers("PMSELR_EL0")[1](1, n)
        except Undefined:
            pass
        for selected in SELECTED:
            state[counter_name(selected, n)] = read(selected)
    return state
