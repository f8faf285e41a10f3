"""Kernel profiles: which version of the vPMU rules the emulated kernel follows (semantics §7)."""

from __future__ import annotations

import enum
from functools import cached_property

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.records import Record


class StallSlotRule(enum.Enum):
    """Which STALL_SLOT* events KVM hides from the guest's PMCEID1_EL0."""

    NONE = "none"
    SLOT_IF_V3P4 = "slot-if-v3p4"  # STALL_SLOT (0x3F) when the VM's PMU is PMUv3p4 or later
    ALL = "all"  # STALL_SLOT_BACKEND, STALL_SLOT_FRONTEND and STALL_SLOT (0x3D-0x3F)


class KernelProfile(Record):
    """One kernel release; every version-dependent rule is a property derived from `version`
    (computed once: the vPMU consults them on every register access)."""

    __slots__ = ("name", "version", "__dict__")  # the rules are cached in __dict__

    def __init__(self, name: str, version: tuple[int, int]) -> None:
        self.name = name
        self.version = version

    def at_least(self, major: int, minor: int) -> bool:
        return self.version >= (major, minor)

    @cached_property
    def knows_v3p7(self) -> bool:  # "Add minimal handling for the ARMv8.7 PMU"
        return self.at_least(5, 16)

    @cached_property
    def filter_busy_after_run(self) -> bool:
        return self.at_least(5, 18)

    @cached_property
    def has_set_pmu(self) -> bool:
        return self.at_least(5, 18)

    @cached_property
    def has_set_nr_counters(self) -> bool:
        return self.at_least(6, 16)

    @cached_property
    def pmcr_n_via_one_reg(self) -> bool:
        return self.at_least(6, 7)

    @cached_property
    def pmu_selected_at_vcpu_init(self) -> bool:
        return self.at_least(6, 7)

    @cached_property
    def probes_pmuver(self) -> bool:
        """v5.10-v5.17: the PMU version is probed at the first PMU attribute call."""
        return not self.at_least(5, 18)

    @cached_property
    def chain_per_pseudocode(self) -> bool:
        return self.at_least(6, 2)

    @cached_property
    def pmcr_e_recreates_events(self) -> bool:
        """Before 6.2 every PMCR_EL0 write with E set recreates the enabled counters' perf
        events (kvm_pmu_enable_counter_mask()), so a FILTER accepted after a run reaches them
        (measured on 5.10: a CPU_CYCLES counter stops at the next write of E = 1); from 6.2 an
        existing event is only enabled."""
        return not self.at_least(6, 2)

    @cached_property
    def long_event_counters(self) -> bool:
        """PMUv3p5 64-bit event counters and PMCR.LP."""
        return self.at_least(6, 2)

    @cached_property
    def forces_chain_in_pmceid(self) -> bool:
        return self.at_least(6, 2)

    @cached_property
    def forces_sw_incr_in_pmceid(self) -> bool:
        return self.at_least(6, 15)

    @cached_property
    def guest_pmuver_cap(self) -> int:
        if self.at_least(6, 2):
            return sr.PMUVER_V3P5
        if self.at_least(5, 12):
            return sr.PMUVER_V3P4
        return sr.PMUVER_V3P1

    def unfilterable(self, event: int) -> bool:
        """SW_INCR is never backed by a perf event; CHAIN neither from 6.2 (§3.3): the filter
        cannot stop them."""
        return event == ev.SW_INCR or (event == ev.CHAIN and self.chain_per_pseudocode)

    @cached_property
    def stall_slot_rule(self) -> StallSlotRule:
        if self.at_least(6, 6):
            return StallSlotRule.ALL
        if self.at_least(5, 12):
            return StallSlotRule.SLOT_IF_V3P4
        return StallSlotRule.NONE

    @cached_property
    def event_space_from_sanitised_pmuver(self) -> bool:
        """v6.6+: FILTER range from the host-wide PMUVer, masking from the guest's PMUVer."""
        return self.at_least(6, 6)

    @cached_property
    def needs_uniform_pmuver(self) -> bool:
        return self.at_least(6, 6)

    @cached_property
    def pmcr_resets_to_zero(self) -> bool:
        return self.at_least(6, 7)

    @cached_property
    def el3_exclusion_bits(self) -> bool:
        """v6.7+: NSK/NSU/M kept when the VM advertises EL3 (the host has it) and U==NSU,
        P==NSK; NSH kept as the VM advertises EL2 (every KVM host has it: measured)."""
        return self.at_least(6, 7)

    @cached_property
    def masks_pmu_reset_values(self) -> bool:
        """5.11+: PMCNTENSET, PMINTENSET and PMOVSSET reset to the pattern masked with the
        counters there are, and reads return what is stored. 5.10 (measured) resets them
        unmasked and masks each read with the counters there are now."""
        return self.at_least(5, 11)

    @cached_property
    def sanitises_pmu_regs_at_first_run(self) -> bool:
        """6.7+: the first run masks PMCNTENSET, PMINTENSET and PMOVSSET to the counters."""
        return self.at_least(6, 7)

    @cached_property
    def irq_needs_pmcnten(self) -> bool:
        return not self.at_least(6, 13)

    @cached_property
    def pmceid_from_pmu_bitmaps(self) -> bool:
        return self.at_least(6, 15)

    @cached_property
    def has_pmmir(self) -> bool:
        return self.at_least(5, 12)

    @cached_property
    def hides_absent_pmu(self) -> bool:
        """v5.11+: without a ready PMU the guest's accesses UNDEF, ONE_REG answers ENOENT,
        ID_AA64DFR0_EL1.PMUVer reads 0 and KVM_RUN needs PMU INIT. 5.10 (measured): the
        registers read 0 and ignore writes, and a vCPU whose PMU INIT failed runs."""
        return self.at_least(5, 11)

    @cached_property
    def pmcr_reload_clears_c(self) -> bool:
        """PMCR_EL0 is stored with C and P clear, by the first run's PMU reload and by guest
        writes ("Don't save PMCR_EL0.{C,P}": measured on 6.1.x, not on 5.10.223; 5.15 taken
        to have the stable fix too)."""
        return self.at_least(5, 15)

    @cached_property
    def chained_even_overflow_sets_pmovs(self) -> bool:
        """Chained pairs (before 6.2): the even counter's 32-bit overflow sets its own PMOVSSET
        bit (measured on 6.1.x; 5.10.223 leaves PMOVSSET 0; 5.15 taken as 5.10)."""
        return self.at_least(6, 1)

    @cached_property
    def debugver_limited_to_v8p0(self) -> bool:
        """Guest ID_AA64DFR0_EL1.DebugVer reads 6 (Armv8.0 debug) from 5.13 ("Limit the debug
        architecture to ARMv8.0"; measured on 6.1, not on 5.10.223) until the generic ID
        register sanitisation of 6.6; else it is the host's, capped at Armv8.8 from 6.6."""
        return self.at_least(5, 13) and not self.at_least(6, 6)

    @cached_property
    def generic_id_reg_checks(self) -> bool:
        """6.6+: ID register writes checked field by field (PMUVer and DebugVer lower-safe)."""
        return self.at_least(6, 6)

    @cached_property
    def id_regs_writable(self) -> bool:
        """v6.2+: userspace may lower ID_AA64DFR0_EL1.PMUVer; before, a write that changes
        an ID register is EINVAL."""
        return self.at_least(6, 2)

    @cached_property
    def vcpu_features_vm_wide(self) -> bool:
        """v6.7+: every vCPU of a VM must be initialised with the same features."""
        return self.at_least(6, 7)


PROFILES: dict[str, KernelProfile] = {
    p.name: p
    for p in (
        KernelProfile("5.10", (5, 10)),
        KernelProfile("5.15", (5, 15)),
        KernelProfile("6.1", (6, 1)),
        KernelProfile("6.6", (6, 6)),
        KernelProfile("6.12", (6, 12)),
        KernelProfile("latest", (6, 16)),
    )
}
DEFAULT_PROFILE = "latest"
PROFILE_NAMES = tuple(PROFILES)  # oldest first, as the README's table


def profile_for_release(release: str) -> KernelProfile:
    """The nearest profile at or below a kernel release (`uname -r`, e.g. 6.1.0-56-arm64)."""
    parts = release.split(".")
    try:
        version = (int(parts[0]), int("".join(c for c in parts[1].split("-")[0] if c.isdigit())))
    except (IndexError, ValueError):
        raise ValueError(f"not a kernel release: {release!r}") from None
    below = [p for p in PROFILES.values() if p.version <= version]
    if not below:
        raise ValueError(f"kernel {release} is older than every profile (5.10 is the oldest)")
    return max(below, key=lambda p: p.version)
