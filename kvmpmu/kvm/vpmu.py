"""One vCPU's emulated PMUv3: registers as the guest reads and writes them, and counting.

Rules from kvm-pmu-semantics.md §3 and §5. The filter is consulted only when a counter's
backing perf event is (re)created, as in kvm_pmu_create_perf_event().
"""

from __future__ import annotations

from typing import Protocol

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.kvm_arch import KvmArch

MASK32 = (1 << 32) - 1
ARMV8_PMU_EVTYPE_MASK = sr.EVTYPE_P | sr.EVTYPE_U | sr.EVTYPE_NSH | sr.EVTYPE_EVENT_MASK
MASK64 = (1 << 64) - 1
CYCLE = sr.CYCLE_IDX
CYCLE_BIT = 1 << CYCLE


class Undefined(Exception):
    """The access is UNDEFINED: KVM injects an undefined-instruction exception into the guest."""


class PmuOwner(Protocol):
    """What a vPMU needs of its vCPU: the VM's shared state, where its thread runs, and
    whether it was initialised with the PMU feature."""

    @property
    def arch(self) -> KvmArch: ...

    @property
    def cpu(self) -> int: ...

    @property
    def has_pmu(self) -> bool: ...


class Vpmu:
    """Register state and counters of one vCPU's PMU."""

    def __init__(self, owner: PmuOwner) -> None:
        self.owner = owner
        self.arch = owner.arch
        self.profile = owner.arch.profile
        self.created = False  # KVM_ARM_VCPU_PMU_V3_INIT succeeded (kvm_pmu.created)
        self.pmcr = 0
        self.pmcnten = 0
        self.pminten = 0
        self.pmovs = 0
        self.pmselr = 0
        self.pmuserenr = 0
        self.evtype = [0] * 32  # [31] is PMCCFILTR_EL0
        self.counter = [0] * 32  # [31] is PMCCNTR_EL0
        # Per counter: None (no perf event) or (eventsel, counts at EL0, counts at EL1).
        self.backing: list[tuple[int, bool, bool] | None] = [None] * 32
        self.backing_gen = [-1] * 32  # arch.perf_event_gen when each was decided; -1: never
        self.ready = False  # kvm_arm_pmu_v3_ready(): set by the first run of a set-up PMU

    # --- reset and geometry -------------------------------------------------------------

    def reset(self) -> None:
        """vCPU reset values (§5.1, §5.3), taken at KVM_ARM_VCPU_INIT."""
        pattern = sr.RESET_UNKNOWN_PATTERN
        host = self.arch.host
        if self.profile.pmcr_resets_to_zero:
            pmcr = 0
        else:
            pmu = host.pmu_for_cpu(self.arch.vmm_cpu) or self.arch.arm_pmu
            n = pmu.counters if pmu else 0
            imp = pmu.pmcr_imp if pmu else 0
            idcode = pmu.pmcr_idcode if pmu else 0
            upper = n << sr.PMCR_N_SHIFT | idcode << sr.PMCR_IDCODE_SHIFT | imp << sr.PMCR_IMP_SHIFT
            pmcr = upper | (sr.PMCR_RESET_PATTERN & sr.PMCR_WRITABLE_MASK & ~sr.PMCR_E)
        self.pmcr = self._sanitise_pmcr(pmcr)
        junk = pattern & MASK32
        if self.profile.masks_pmu_reset_values:
            junk &= self.implemented_mask
        self.pmcnten = self.pminten = self.pmovs = junk
        self.pmselr = pattern & sr.PMSELR_SEL_MASK
        self.pmuserenr = 0
        self.evtype = [pattern & MASK32 & self.evtype_mask] * 31 + [0]
        self.counter = [pattern & MASK32] * 31 + [pattern]
        self.backing = [None] * 32
        self.backing_gen = [-1] * 32

    def first_run(self, ready: bool) -> None:
        """The first KVM_RUN: the PMU becomes usable (or not), and is reloaded."""
        self.ready = ready
        if ready and self.profile.pmcr_reload_clears_c:
            # the reload handles PMCR_EL0 as written: the reset value's C zeroes the cycle
            # counter (measured on 6.1: PMCCNTR reads 0, not the reset pattern)
            self._pmcr_actions(self.pmcr)
            self.pmcr &= ~(sr.PMCR_C | sr.PMCR_P)
        if self.profile.sanitises_pmu_regs_at_first_run:
            mask = self.implemented_mask
            self.pmcnten, self.pminten, self.pmovs = (
                self.pmcnten & mask, self.pminten & mask, self.pmovs & mask)
        self.reload_all()

    def stored(self, value: int) -> int:
        """PMCNTENSET, PMINTENSET or PMOVSSET as the guest reads it (5.10 masks the read)."""
        return value if self.profile.masks_pmu_reset_values else value & self.implemented_mask

    def set_pmcr_from_user(self, value: int) -> None:
        """KVM_SET_ONE_REG(PMCR_EL0): before 6.7 the whole value is stored, N included (§6);
        from 6.7, N limits the VM's counters before the first run and bits [7:0] are kept."""
        if not self.profile.pmcr_n_via_one_reg:
            self.pmcr = value
            return
        self.arch.limit_nr_counters(value >> sr.PMCR_N_SHIFT & sr.PMCR_N_MASK)
        self.pmcr = self._sanitise_pmcr(value & sr.PMCR_WRITABLE_MASK)

    def _sanitise_pmcr(self, value: int) -> int:
        if not self.arch.host.aarch32_el0:
            value |= sr.PMCR_LC
        if self.profile.long_event_counters and not self.is_3p5:
            value &= ~sr.PMCR_LP
        return value

    @property
    def nr_counters(self) -> int:
        if self.profile.pmcr_resets_to_zero:
            return self.arch.nr_counters
        return (self.pmcr >> sr.PMCR_N_SHIFT) & sr.PMCR_N_MASK

    @property
    def implemented_mask(self) -> int:
        return ((1 << self.nr_counters) - 1) | CYCLE_BIT

    @property
    def is_3p5(self) -> bool:
        return self.arch.guest_pmuver >= sr.PMUVER_V3P5

    @property
    def event_mask(self) -> int:
        return self.arch.guest_event_mask()

    @property
    def evtype_mask(self) -> int:
        """What PMEVTYPER<n>/PMCCFILTR store. Before 6.7, ARMV8_PMU_EVTYPE_MASK: 16 event bits
        whatever the PMU (measured on a PMUv3 8.0 host: counting masks the event instead);
        from 6.7 the VM's event mask, and the EL3 bits when the VM has EL3."""
        if not self.profile.el3_exclusion_bits:
            return ARMV8_PMU_EVTYPE_MASK
        mask = sr.EVTYPE_P | sr.EVTYPE_U | sr.EVTYPE_NSH | self.event_mask
        if self.arch.el3_bits:
            return mask | sr.EVTYPE_NSK | sr.EVTYPE_NSU | sr.EVTYPE_M
        return mask

    def read_pmcr(self) -> int:
        """kvm_vcpu_read_pmcr(): the stored value with the VM's N on v6.7+."""
        if self.profile.pmcr_resets_to_zero:
            field = sr.PMCR_N_MASK << sr.PMCR_N_SHIFT
            return (self.pmcr & ~field) | (self.arch.nr_counters << sr.PMCR_N_SHIFT)
        return self.pmcr

    # --- counter width and overflow (§5.3) -----------------------------------------------

    def is_64bit(self, idx: int) -> bool:
        if idx == CYCLE:
            return True  # always read in 64 bits (§5.3; measured on 5.10 without LC too)
        return self.profile.long_event_counters and self.is_3p5

    def has_64bit_overflow(self, idx: int) -> bool:
        if idx == CYCLE:
            return bool(self.pmcr & sr.PMCR_LC)
        return self.profile.long_event_counters and self.is_3p5 and bool(self.pmcr & sr.PMCR_LP)

    def _is_chained_pair(self, even: int) -> bool:
        """v5.10-v6.1: an even/odd pair is chained when the odd counter is enabled with CHAIN."""
        odd = even + 1
        return (
            odd < CYCLE
            and self.evtype[odd] & self.event_mask == ev.CHAIN
            and self.enabled(odd)
        )

    def enabled(self, idx: int) -> bool:
        """PMCR_EL0.E and the counter's PMCNTENSET_EL0 bit."""
        enabled = self.pmcnten & self.implemented_mask
        return bool(self.pmcr & sr.PMCR_E) and bool(enabled >> idx & 1)

    # --- perf event (re)creation --------------------------------------------------------

    def reload(self, idx: int) -> None:
        """kvm_pmu_create_perf_event(): is counter `idx` backed, and at which ELs does it count."""
        self.backing[idx] = None
        self.backing_gen[idx] = self.arch.perf_event_gen
        data = self.evtype[idx]
        eventsel = ev.CPU_CYCLES if idx == CYCLE else data & self.event_mask
        if self.profile.unfilterable(eventsel):
            return  # software events: never backed by a perf event
        if not self.arch.event_allowed(eventsel):
            return
        pmu = self.arch.counting_pmu(self.owner.cpu)
        if pmu is None or not pmu.implements(eventsel):
            return  # perf refuses an event the hardware does not have
        if self.arch.el3_bits:
            el0 = bool(data & sr.EVTYPE_U) == bool(data & sr.EVTYPE_NSU)
            el1 = bool(data & sr.EVTYPE_P) == bool(data & sr.EVTYPE_NSK)
        else:
            el0 = not data & sr.EVTYPE_U
            el1 = not data & sr.EVTYPE_P
        self.backing[idx] = (eventsel, el0, el1)

    def reload_all(self) -> None:
        for idx in range(32):
            self.reload(idx)

    def _reload_mask(self, mask: int) -> None:
        for idx in range(32):
            if mask >> idx & 1:
                self.reload(idx)

    # --- counting -----------------------------------------------------------------------

    def count(self, el: int, occurrences: dict[int, int]) -> None:
        """The host generated `occurrences` (event -> count) while this vCPU ran at `el`."""
        if not self.pmcr & sr.PMCR_E:
            return
        enabled = self.pmcnten & self.implemented_mask
        chained_legacy = not self.profile.chain_per_pseudocode
        for idx in range(32):
            if not enabled >> idx & 1:
                continue
            backing = self.backing[idx]
            if backing is None:
                continue
            eventsel, el0, el1 = backing
            if not (el1 if el else el0):
                continue
            n = occurrences.get(eventsel)
            if not n:
                continue
            if chained_legacy and idx & 1 == 0 and self._is_chained_pair(idx):
                self._add_pair(idx, n)
            else:
                self._add(idx, n)

    def _add(self, idx: int, n: int) -> None:
        value = self.counter[idx]
        wide = self.has_64bit_overflow(idx)
        period = 64 if wide else 32
        overflows = ((value & ((1 << period) - 1)) + n) >> period
        self.counter[idx] = (value + n) & (MASK64 if self.is_64bit(idx) else MASK32)
        if not overflows:
            return
        self.pmovs |= 1 << idx
        # Feed a CHAIN counter above an even one (v6.2+). This runs on every overflow, so the
        # cheap event test comes first, on the low 10 bits every event mask keeps; _increment
        # applies the full one.
        odd = idx + 1
        if odd < CYCLE and self.evtype[odd] & ev.EVENT_MASK_V8P0 == ev.CHAIN and idx & 1 == 0 and \
                not wide and self.profile.chain_per_pseudocode:
            self._increment(1 << odd, ev.CHAIN, overflows)

    def _add_pair(self, even: int, n: int) -> None:
        """v5.10-v6.1 chained pair: one 64-bit count, 2^64 overflow reported on the odd counter;
        on 6.1 the even counter's 32-bit overflow also sets its own bit (§6)."""
        odd = even + 1
        low = self.counter[even] & MASK32
        total = (self.counter[odd] & MASK32) << 32 | low
        total += n
        if total >> 64:
            self.pmovs |= 1 << odd
        if (low + n) >> 32 and self.profile.chained_even_overflow_sets_pmovs:
            self.pmovs |= 1 << even
        self.counter[even] = total & MASK32
        self.counter[odd] = total >> 32 & MASK32

    def _increment(self, mask: int, event: int, times: int = 1) -> None:
        """kvm_pmu_counter_increment(): software-driven increments (SW_INCR, CHAIN)."""
        if not self.pmcr & sr.PMCR_E:
            return
        mask &= self.pmcnten & self.implemented_mask & ~CYCLE_BIT
        while mask:  # only the set bits: CHAIN propagation runs on every overflow
            idx = (mask & -mask).bit_length() - 1
            mask &= mask - 1
            if self.evtype[idx] & self.event_mask == event:
                self._add(idx, times)

    def software_increment(self, value: int) -> None:
        """A guest write to PMSWINC_EL0 (§3.3)."""
        value &= self.implemented_mask
        if self.profile.chain_per_pseudocode:
            self._increment(value, ev.SW_INCR)
            return
        if not self.pmcr & sr.PMCR_E:
            return
        value &= self.pmcnten
        for idx in range(CYCLE):
            if not value >> idx & 1 or self.evtype[idx] & self.event_mask != ev.SW_INCR:
                continue
            self.counter[idx] = (self.counter[idx] + 1) & MASK32
            if self.counter[idx]:
                continue
            if idx & 1 == 0 and self._is_chained_pair(idx):
                self.counter[idx + 1] = (self.counter[idx + 1] + 1) & MASK32
                if not self.counter[idx + 1]:
                    self.pmovs |= 1 << (idx + 1)
                if self.profile.chained_even_overflow_sets_pmovs:
                    self.pmovs |= 1 << idx
            else:
                self.pmovs |= 1 << idx

    @property
    def irq_level(self) -> bool:
        """kvm_pmu_overflow_status(): the level of the PMU overflow interrupt line."""
        if not self.pmcr & sr.PMCR_E:
            return False
        pending = self.pmovs & self.pminten & self.implemented_mask
        if self.profile.irq_needs_pmcnten:
            pending &= self.pmcnten
        return pending != 0

    def occurrences_to_interrupt(self, el: int, events: frozenset[int]) -> int | None:
        """How many occurrences of any of `events` (counted together, one each per step) raise
        the overflow interrupt soonest, or None: lets a CPU-emulated guest stop exactly there."""
        if not self.pmcr & sr.PMCR_E:
            return None
        armed = self.pmcnten & self.pminten & self.implemented_mask
        best = None
        for idx in range(32):
            backing = self.backing[idx] if armed >> idx & 1 else None
            if backing is None or backing[0] not in events or not backing[2 if el else 1]:
                continue
            period = 64 if self.has_64bit_overflow(idx) else 32
            left = (1 << period) - (self.counter[idx] & ((1 << period) - 1))
            best = left if best is None else min(best, left)
        return best

    # --- counter values -----------------------------------------------------------------

    def counter_value(self, idx: int) -> int:
        value = self.counter[idx]  # the cycle counter first: PMCCNTR_EL0 is read most
        return value if idx == CYCLE or self.is_64bit(idx) else value & MASK32

    def set_counter_value(self, idx: int, value: int) -> None:
        """kvm_pmu_set_counter_value(): the value, then the counter's perf event recreated. The
        recreation reads the counter's type (whose writes recreate it) and the VM's state that
        arch.perf_event_gen counts: with neither changed since the last one it would decide the
        same, so it is skipped (a guest writing a counter in a loop pays for one)."""
        self.counter[idx] = value & (MASK64 if idx == CYCLE or self.is_64bit(idx) else MASK32)
        if self.backing_gen[idx] != self.arch.perf_event_gen:
            self.reload(idx)

    def set_event_type(self, idx: int, value: int) -> None:
        self.evtype[idx] = value & self.evtype_mask
        self.reload(idx)
        if not self.profile.chain_per_pseudocode and idx & 1:
            self.reload(idx - 1)  # the pair's chained state may have changed

    def write_pmcr(self, value: int) -> None:
        """kvm_pmu_handle_pmcr(): bits [7:0] are writable; P and C are actions."""
        old_enable = self.pmcr & sr.PMCR_E
        value = (self.read_pmcr() & ~sr.PMCR_WRITABLE_MASK) | (value & sr.PMCR_WRITABLE_MASK)
        self.pmcr = self._sanitise_pmcr(value)
        if self.profile.pmcr_reload_clears_c:  # 5.10 stores them (measured; reads mask them)
            self.pmcr &= ~(sr.PMCR_P | sr.PMCR_C)
        self._pmcr_actions(value)
        recreate = (not old_enable or value & (sr.PMCR_P | sr.PMCR_C)
                    or self.profile.pmcr_e_recreates_events)
        if self.pmcr & sr.PMCR_E and recreate:
            self._reload_mask(self.pmcnten & self.implemented_mask)

    def _pmcr_actions(self, value: int) -> None:
        """PMCR_EL0.C zeroes the cycle counter, P the implemented event counters (0 to N-1, N
        as PMCR_EL0 has it then: measured on 5.10 and 6.1 with N lowered through ONE_REG)."""
        if value & sr.PMCR_C:
            self.counter[CYCLE] = 0
        if value & sr.PMCR_P:
            for idx in range(self.nr_counters):
                self.counter[idx] = 0

    def write_pmcnten(self, value: int, setting: bool) -> None:
        value &= self.implemented_mask
        if setting:
            self.pmcnten |= value
            if self.pmcr & sr.PMCR_E:
                self._reload_mask(value | (value & 0x2AAAAAAA) >> 1)
        else:
            self.pmcnten &= ~value
            if not self.profile.chain_per_pseudocode:
                self._reload_mask((value & 0x2AAAAAAA) >> 1)

    # --- registers written as plain state ------------------------------------------------

    def create(self) -> None:
        """KVM_ARM_VCPU_PMU_V3_INIT succeeded: every later PMU attribute is EBUSY."""
        self.created = True

    def write_pminten(self, value: int, setting: bool) -> None:
        value &= self.implemented_mask
        self.pminten = self.pminten | value if setting else self.pminten & ~value

    def write_pmovs(self, value: int, setting: bool) -> None:
        value &= self.implemented_mask
        self.pmovs = self.pmovs | value if setting else self.pmovs & ~value

    def write_pmselr(self, value: int) -> None:
        self.pmselr = value & sr.PMSELR_SEL_MASK

    def write_pmuserenr(self, value: int) -> None:
        self.pmuserenr = value & sr.PMUSERENR_MASK

    # --- what the guest reads of the VM -------------------------------------------------------

    def guest_pmceid(self, reg: int) -> int:
        return self.arch.guest_pmceid(self.owner.cpu, reg)

    def guest_id_aa64dfr0(self) -> int:
        return self.arch.guest_id_aa64dfr0(self.owner.has_pmu)
