"""PMU system registers: encodings (op0, op1, CRn, CRm, op2) and Arm architecture field masks."""

from __future__ import annotations

from kvmpmu.records import Record

CYCLE_IDX = 31  # ARMV8_PMU_CYCLE_IDX: bit 31 of PMCNTEN*/PMINTEN*/PMOVS* is the cycle counter
MAX_GENERAL_COUNTERS = 31

# PMCR_EL0
PMCR_E = 1 << 0
PMCR_P = 1 << 1
PMCR_C = 1 << 2
PMCR_D = 1 << 3
PMCR_X = 1 << 4
PMCR_DP = 1 << 5
PMCR_LC = 1 << 6
PMCR_LP = 1 << 7
PMCR_N_SHIFT = 11
PMCR_N_MASK = 0x1F
PMCR_IDCODE_SHIFT = 16
PMCR_IMP_SHIFT = 24
PMCR_WRITABLE_MASK = 0xFF  # ARMV8_PMU_PMCR_MASK

# PMEVTYPER<n>_EL0 / PMCCFILTR_EL0
EVTYPE_EVENT_MASK = 0xFFFF
EVTYPE_MT = 1 << 25
EVTYPE_M = 1 << 26  # ARMV8_PMU_EXCLUDE_EL3
EVTYPE_NSH = 1 << 27  # ARMV8_PMU_INCLUDE_EL2
EVTYPE_NSU = 1 << 28  # ARMV8_PMU_EXCLUDE_NS_EL0
EVTYPE_NSK = 1 << 29  # ARMV8_PMU_EXCLUDE_NS_EL1
EVTYPE_U = 1 << 30  # ARMV8_PMU_EXCLUDE_EL0
EVTYPE_P = 1 << 31  # ARMV8_PMU_EXCLUDE_EL1

# PMUSERENR_EL0
PMUSERENR_EN = 1 << 0
PMUSERENR_SW = 1 << 1
PMUSERENR_CR = 1 << 2
PMUSERENR_ER = 1 << 3
PMUSERENR_MASK = 0xF

PMSELR_SEL_MASK = 0x1F

# ID_AA64DFR0_EL1 fields KVM changes for its guests
DFR0_DEBUGVER_MASK = 0xF  # bits [3:0]
DFR0_DEBUGVER_V8P0 = 0x6
DFR0_DEBUGVER_V8P8 = 0xA
DFR0_PMUVER_SHIFT = 8
DFR0_PMUVER_MASK = 0xF << DFR0_PMUVER_SHIFT
DFR0_PMSVER_MASK = 0xF << 32  # SPE: never given to guests

# ID_AA64DFR0_EL1.PMUVer (bits [11:8])
PMUVER_NI = 0x0
PMUVER_IMP = 0x1
PMUVER_V3P1 = 0x4
PMUVER_V3P4 = 0x5
PMUVER_V3P5 = 0x6
PMUVER_V3P7 = 0x7
PMUVER_V3P8 = 0x8
PMUVER_V3P9 = 0x9
PMUVER_IMP_DEF = 0xF

# The names users write ("8.1") for each PMUVer value.
PMU_VERSIONS = {
    "8.0": PMUVER_IMP,
    "8.1": PMUVER_V3P1,
    "8.4": PMUVER_V3P4,
    "8.5": PMUVER_V3P5,
    "8.7": PMUVER_V3P7,
    "8.8": PMUVER_V3P8,
    "8.9": PMUVER_V3P9,
}
PMUVER_NAMES = {v: k for k, v in PMU_VERSIONS.items()}

# Reset pattern KVM uses for UNKNOWN register values (arch/arm64/kvm/sys_regs.h).
RESET_UNKNOWN_PATTERN = 0x1DE7EC7EDBADC0DE
PMCR_RESET_PATTERN = 0xDECAFBAD


class SysReg(Record):
    __slots__ = ("name", "op0", "op1", "crn", "crm", "op2")

    def __init__(self, name: str, op0: int, op1: int, crn: int, crm: int, op2: int) -> None:
        self.name = name
        self.op0, self.op1, self.crn, self.crm, self.op2 = op0, op1, crn, crm, op2


def _reg(name: str, op0: int, op1: int, crn: int, crm: int, op2: int) -> SysReg:
    return SysReg(name, op0, op1, crn, crm, op2)


_FIXED = [
    _reg("PMCR_EL0", 3, 3, 9, 12, 0),
    _reg("PMCNTENSET_EL0", 3, 3, 9, 12, 1),
    _reg("PMCNTENCLR_EL0", 3, 3, 9, 12, 2),
    _reg("PMOVSCLR_EL0", 3, 3, 9, 12, 3),
    _reg("PMSWINC_EL0", 3, 3, 9, 12, 4),
    _reg("PMSELR_EL0", 3, 3, 9, 12, 5),
    _reg("PMCEID0_EL0", 3, 3, 9, 12, 6),
    _reg("PMCEID1_EL0", 3, 3, 9, 12, 7),
    _reg("PMCCNTR_EL0", 3, 3, 9, 13, 0),
    _reg("PMXEVTYPER_EL0", 3, 3, 9, 13, 1),
    _reg("PMXEVCNTR_EL0", 3, 3, 9, 13, 2),
    _reg("PMUSERENR_EL0", 3, 3, 9, 14, 0),
    _reg("PMOVSSET_EL0", 3, 3, 9, 14, 3),
    _reg("PMINTENSET_EL1", 3, 0, 9, 14, 1),
    _reg("PMINTENCLR_EL1", 3, 0, 9, 14, 2),
    _reg("PMMIR_EL1", 3, 0, 9, 14, 6),
    _reg("PMCCFILTR_EL0", 3, 3, 14, 15, 7),
    _reg("ID_AA64DFR0_EL1", 3, 0, 0, 5, 0),
]


def _indexed() -> list[SysReg]:
    regs = []
    for n in range(MAX_GENERAL_COUNTERS):
        regs.append(_reg(f"PMEVCNTR{n}_EL0", 3, 3, 14, 8 + (n >> 3), n & 7))
        regs.append(_reg(f"PMEVTYPER{n}_EL0", 3, 3, 14, 12 + (n >> 3), n & 7))
    return regs


# EL1 registers a guest program uses to take and return from its own exceptions (KVM does not
# trap them, so they are not in SYSREGS).
EXCEPTION_SYSREGS: dict[str, SysReg] = {r.name: r for r in (
    _reg("SPSR_EL1", 3, 0, 4, 0, 0),
    _reg("ELR_EL1", 3, 0, 4, 0, 1),
    _reg("ESR_EL1", 3, 0, 5, 2, 0),
    _reg("VBAR_EL1", 3, 0, 12, 0, 0),
)}

SYSREGS: dict[str, SysReg] = {r.name: r for r in _FIXED + _indexed()}

SYSREGS_BY_ENCODING: dict[tuple[int, int, int, int, int], SysReg] = {
    (r.op0, r.op1, r.crn, r.crm, r.op2): r for r in SYSREGS.values()
}
