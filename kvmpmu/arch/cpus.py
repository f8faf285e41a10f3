"""Built-in CPU models: MIDR, PMU version, counters, implemented events, IMPDEF event names.

Facts (numbers and names) from the CPUs' technical reference manuals as summarised in Arm's
public PMU data and arm-events.md; written here in our own compact form. Cortex-A53 follows its
documented PMCEID reset values (0x63FFFFFF / 0x00000001) where Arm's table differs: MEMORY_ERROR
(0x1A) is not implemented and L2D_CACHE_ALLOCATE (0x20) is.
"""

from __future__ import annotations

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.events import EventInfo, architected_in_pmceid_range
from kvmpmu.records import Record

_A57 = ("0x0-0x5, 0x8-0xB, 0x10-0x1E, 0x40-0x43, 0x46-0x48, 0x4C-0x4D, 0x50-0x53, 0x56-0x58, "
        "0x60-0x6A, 0x6C-0x6E, 0x70-0x7A, 0x7C-0x7E, 0x81-0x84, 0x86-0x88, 0x8A-0x91")
_A76_BASE = ("0x0-0x5, 0x8-0xB, 0x10-0x1E, 0x20-0x26, 0x29-0x2B, 0x2D, 0x2F, 0x31, 0x34-0x37, "
             "0x40-0x48, 0x4C-0x53, 0x56-0x58, 0x5C-0x61, 0x66-0x6A, 0x6C-0x7A, 0x7C-0x7E, "
             "0x81-0x84, 0x86-0x88, 0x8A-0x91, 0xA0")
_N1 = _A76_BASE.replace("0x6C-0x7A", "0x6C-0x71, 0x73-0x7A") + ", 0x4000-0x4003"
_V1 = (_N1.replace("0x34-0x37, 0x40-0x48", "0x34-0x37, 0x39-0x48").replace(
    "0x4000-0x4003", "0x4000-0x4006, 0x4009, 0x400B") +
    ", 0x8005-0x8006, 0x8074-0x8077, 0x80BC-0x80BD, 0x80C0-0x80C1")
_N2 = (_V1.replace("0x400B", "0x400B-0x400C, 0x4010-0x4013, 0x4018-0x401B, 0x4020-0x4022, "
                   "0x4024-0x4026").replace(
    "0x8074-0x8077", "0x8014, 0x8018, 0x801C, 0x8074-0x8077, 0x8079") +
    ", 0x80E3, 0x80E7, 0x80EB, 0x80EF")

_A53_IMPDEF = {
    0xC0: ("EXT_MEM_REQ", "External memory request"),
    0xC1: ("EXT_MEM_REQ_NC", "Non-cacheable external memory request"),
    0xC2: ("PREFETCH_LINEFILL", "Linefill caused by a prefetch"),
    0xC3: ("PREFETCH_LINEFILL_DROP", "Instruction-cache throttle"),
    0xC4: ("READ_ALLOC_ENTER", "Entered read-allocate mode"),
    0xC5: ("READ_ALLOC", "Cycles in read-allocate mode"),
    0xC6: ("PRE_DECODE_ERR", "Pre-decode error"),
    0xC7: ("STALL_SB_FULL", "Data write stalled because the store buffer is full"),
    0xC8: ("EXT_SNOOP", "Data snooped by the SCU from another CPU for this one"),
    0xC9: ("BR_COND", "Conditional branch executed"),
    0xCA: ("BR_INDIRECT_MISPRED", "Indirect branch mispredicted"),
    0xCB: ("BR_INDIRECT_ADDR_MISPRED", "Indirect branch mispredicted: address miscompare"),
    0xCC: ("BR_COND_MISPRED", "Conditional branch mispredicted"),
    0xD0: ("L1I_CACHE_ERR", "L1 instruction-cache memory error"),
    0xD1: ("L1D_CACHE_ERR", "L1 data-cache memory error"),
    0xD2: ("TLB_ERR", "TLB memory error"),
    0xE0: ("OTHER_IQ_DEP_STALL", "Cycles the issue queue is empty for other reasons"),
    0xE1: ("IC_DEP_STALL", "Cycles the issue queue is empty waiting for the instruction cache"),
    0xE2: ("IUTLB_DEP_STALL", "Cycles the issue queue is empty waiting for the micro-TLB"),
    0xE3: ("DECODE_DEP_STALL", "Cycles the issue queue is empty because of a decode stall"),
    0xE4: ("OTHER_INTERLOCK_STALL", "Cycles of interlock not caused by the AGU, SIMD or loads"),
    0xE5: ("AGU_DEP_STALL", "Cycles of interlock caused by an AGU dependency"),
    0xE6: ("SIMD_DEP_STALL", "Cycles of interlock caused by a SIMD/FP dependency"),
    0xE7: ("LD_DEP_STALL", "Cycles stalled in Wr waiting for a load"),
    0xE8: ("ST_DEP_STALL", "Cycles stalled in Wr waiting for a store"),
}


def parse_ranges(text: str) -> frozenset[int]:
    """'0x0-0x5, 0x8' -> {0, 1, 2, 3, 4, 5, 8}."""
    out: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        out.update(range(int(first, 16), int(last or first, 16) + 1))
    return frozenset(out)


class CpuModel(Record):
    __slots__ = ("name", "display", "implementer", "part", "pmuver", "counters", "events",
                 "impdef", "aarch32_el0", "pmcr_idcode", "id_aa64dfr0", "pmcr_imp", "el3")

    def __init__(self, name: str, display: str, implementer: int, part: int, pmuver: int,
                 counters: int, events: frozenset[int], impdef: dict[int, EventInfo],
                 aarch32_el0: bool = True, pmcr_idcode: int = 0, id_aa64dfr0: int = 0,
                 pmcr_imp: int = 0x41, el3: bool = True) -> None:
        self.name, self.display, self.implementer, self.part = name, display, implementer, part
        self.pmuver, self.counters, self.events, self.impdef = pmuver, counters, events, impdef
        self.aarch32_el0 = aarch32_el0
        self.pmcr_idcode = pmcr_idcode  # PMCR_EL0.IDCODE as its manual documents it (0: not)
        self.id_aa64dfr0 = id_aa64dfr0  # ID_AA64DFR0_EL1 reset value
        self.pmcr_imp = pmcr_imp  # PMCR_EL0.IMP
        self.el3 = el3  # a host of this CPU runs firmware at EL3 (QEMU's virt board: none)

    @property
    def midr(self) -> int:
        """MIDR_EL1 of r0p0: implementer, architecture 0xF, part number."""
        return self.implementer << 24 | 0xF << 16 | self.part << 4


def _dfr0(pmuver: int, debugver: int) -> int:
    """ID_AA64DFR0_EL1 with CTX_CMPs 1, WRPs 3, BRPs 5 (every model here), no trace or SPE."""
    return 0x10305000 | pmuver << sr.DFR0_PMUVER_SHIFT | debugver


# DebugVer by architecture: 6 = Armv8.0 debug (Cortex-A53/A57/A72), 8 = Armv8.2 (A76, N1),
# 9 = Armv8.4 (V1, N2, V2, the generic CPU)
def _model(name: str, display: str, part: int, pmuver: int, events: str,
           impdef: dict[int, tuple[str, str]] | None = None, aarch32: bool = True,
           idcode: int = 0, debugver: int = 6) -> CpuModel:
    infos = {c: EventInfo(c, n, d) for c, (n, d) in (impdef or {}).items()}
    return CpuModel(name, display, 0x41, part, pmuver, 6, parse_ranges(events), infos, aarch32,
                    idcode, _dfr0(pmuver, debugver))


def _generic() -> CpuModel:
    return CpuModel("generic", "Generic PMUv3p5 CPU", 0x41, 0x000, sr.PMUVER_V3P5, 6,
                    architected_in_pmceid_range(), {}, aarch32_el0=False,
                    id_aa64dfr0=_dfr0(sr.PMUVER_V3P5, 9))


# QEMU's emulated PMU (target/arm): SW_INCR, CPU_CYCLES, STALL_FRONTEND, STALL_BACKEND, STALL;
# 6 counters; PMCR_EL0 IMP 0x41 IDCODE 1 whatever the CPU (measured under -cpu max and
# cortex-a57). INST_RETIRED counts only with -icount, so it is left out.
_QEMU_EVENTS = "0x0, 0x11, 0x23-0x24, 0x3C"


def _qemu(name: str, display: str, implementer: int, part: int, pmuver: int,
          dfr0: int) -> CpuModel:
    return CpuModel(name, display, implementer, part, pmuver, 6, parse_ranges(_QEMU_EVENTS), {},
                    aarch32_el0=True, pmcr_idcode=1, id_aa64dfr0=dfr0, pmcr_imp=0x41,
                    el3=False)


CPU_MODELS: dict[str, CpuModel] = {m.name: m for m in (
    _generic(),
    _model("cortex-a53", "Cortex-A53", 0xD03, sr.PMUVER_IMP,
           "0x0-0x19, 0x1D-0x1E, 0x20, 0x60-0x61, 0x7A, 0x86-0x87, 0xC0-0xCC, 0xD0-0xD2, "
           "0xE0-0xE8", _A53_IMPDEF, idcode=0x03),
    _model("cortex-a57", "Cortex-A57", 0xD07, sr.PMUVER_IMP, _A57, idcode=0x01),
    _model("cortex-a72", "Cortex-A72", 0xD08, sr.PMUVER_IMP, _A57, idcode=0x02),
    _model("cortex-a76", "Cortex-A76", 0xD0B, sr.PMUVER_V3P1, _A76_BASE, debugver=8),
    _model("neoverse-n1", "Neoverse N1", 0xD0C, sr.PMUVER_V3P1, _N1, debugver=8),
    _model("neoverse-v1", "Neoverse V1", 0xD40, sr.PMUVER_V3P4, _V1, debugver=9),
    _model("neoverse-n2", "Neoverse N2", 0xD49, sr.PMUVER_V3P5, _N2, aarch32=False, debugver=9),
    _model("neoverse-v2", "Neoverse V2", 0xD4F, sr.PMUVER_V3P5, _N2, aarch32=False, debugver=9),
    _qemu("qemu-max", "QEMU -cpu max (TCG)", 0x00, 0x051, sr.PMUVER_V3P5, 0x10305609),
    _qemu("qemu-cortex-a57", "QEMU -cpu cortex-a57 (TCG)", 0x41, 0xD07, sr.PMUVER_IMP,
          0x10305106),
)}


def find_cpu(name: str) -> CpuModel | None:
    return CPU_MODELS.get(name.lower())


def suggest_cpu(name: str) -> list[str]:
    import difflib

    return difflib.get_close_matches(name.lower(), list(CPU_MODELS), n=3, cutoff=0.5)


def cpu_by_midr(midr: int) -> CpuModel | None:
    """The model whose implementer and part number match (variant and revision ignored)."""
    for model in CPU_MODELS.values():
        if model.name != "generic" and midr >> 24 == model.implementer and \
                (midr >> 4) & 0xFFF == model.part:
            return model
    return None


def impdef_owners(name: str) -> list[tuple[str, int]]:
    """(model, code) of every built-in CPU with an IMPDEF event of this name."""
    upper = name.upper()
    return [(m.name, code) for m in CPU_MODELS.values()
            for code, info in m.impdef.items() if info.name == upper]
