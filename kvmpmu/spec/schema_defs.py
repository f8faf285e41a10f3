"""The input formats, declared once: filter specs (with hosts and VMs), workloads and their
scenarios and guests, and the `[tool.kvmpmu]` configuration. The loaders read keys, ranges,
enums and defaults from here, and `kvmpmu schema` prints the JSON Schema made from the same
declarations."""

from __future__ import annotations

import errno as _errno

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.cpuregs import CPU_REGS
from kvmpmu.arch.cpus import CPU_MODELS
from kvmpmu.arch.presets import PRESETS
from kvmpmu.kvm.profiles import DEFAULT_PROFILE, PROFILES
from kvmpmu.spec.schema_types import (
    AnyOf,
    Bool,
    Enum,
    Int,
    ListOf,
    MapOf,
    Named,
    Null,
    Obj,
    Ref,
    Str,
    Type,
)
from kvmpmu.uapi import kvm as uapi
from kvmpmu.uapi import one_reg

U16_MAX = 0xFFFF
U64_MAX = 2**64 - 1
S32 = (-(2**31), 2**31 - 1)
MAX_VCPUS = 512
DEFAULT_VCPUS = 1
DEFAULT_PMU_IRQ = 23
PROFILE_NAMES = tuple(PROFILES)
PURPOSES = ("isolation", "profiling")
ACTION_NAMES = ("allow", "deny")
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
ERRNO_NAMES = tuple(sorted(n for n in dir(_errno) if n.startswith("E") and n.isupper()))
CPU_LIST = r"\d+(-\d+)?(,\d+(-\d+)?)*"  # after spaces are dropped
_CPU_LIST_SPACED = "^ *" + CPU_LIST.replace("-", " *- *").replace(",", " *, *").replace(
    r"\d+", "[0-9][0-9 ]*") + "$"  # the same, spaces anywhere

# Guests (`guest:`)
DEFAULT_LOAD = 0x40080000  # where arm64 Linux images load, as in kvmtool
DEFAULT_MAX_INSTRUCTIONS = 100_000_000
MAX_INSTRUCTIONS = 2**40
MAX_TIMEOUT = 86_400  # seconds

# Scenarios (`vmm:`)
ATTRS = {
    "IRQ": uapi.KVM_ARM_VCPU_PMU_V3_IRQ,
    "INIT": uapi.KVM_ARM_VCPU_PMU_V3_INIT,
    "FILTER": uapi.KVM_ARM_VCPU_PMU_V3_FILTER,
    "SET_PMU": uapi.KVM_ARM_VCPU_PMU_V3_SET_PMU,
    "SET_NR_COUNTERS": uapi.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS,
}
ATTR_PREFIX = "KVM_ARM_VCPU_PMU_V3_"
ONE_REG_IDS = one_reg.ONE_REG_IDS  # every register a scenario names
EXIT_REASONS = tuple(uapi.EXIT_REASON_NAMES.values())
EXIT_PREFIX = "KVM_EXIT_"  # expect_exit takes MMIO or KVM_EXIT_MMIO

# --- shared parts --------------------------------------------------------------------------

EVENT = AnyOf((Int(0, U16_MAX, "an event number"),
               Str(doc="an Arm event mnemonic (any case) or a decimal or 0x number")))
EVENT_TERM = AnyOf((
    Int(0, U16_MAX, "an event number"),
    Str(doc="a name or number, or an inclusive range: FIRST-LAST or FIRST..LAST"),
    Obj({"preset": Enum(tuple(PRESETS), doc="an event preset (`kvmpmu presets`)")},
        required=("preset",))))
EVENTS = AnyOf((EVENT_TERM, ListOf(EVENT_TERM, min_items=1)))
ERRNO = Named("errno", AnyOf((Null(doc="success"), Enum(ERRNO_NAMES, any_case=True)),
                             doc="the errno the call must fail with, or null: it must succeed"))
CPU_NUMBER = Int(0, 4095, "a CPU number")
CPU_LIST_TYPE = AnyOf((
    CPU_NUMBER, ListOf(CPU_NUMBER),
    Str(doc="a CPU list such as '0-3' or '0,2,4-5'", examples=("0-3", "0,2,4-5"),
        pattern=_CPU_LIST_SPACED)),
    doc="physical CPUs")
PMU_VERSION = Enum(tuple(sr.PMU_VERSIONS), doc="a PMU version: PMUv3 is 8.0")

# --- filter specs --------------------------------------------------------------------------

FIRST_PMU_TYPE = 8  # perf types 0-5 are fixed, and kprobe/uprobe usually take 6 and 7
PMCR = Obj({"imp": Int(0, 0xFF, "an 8-bit implementer code"),
            "idcode": Int(0, 0xFF, "an 8-bit identification code")},
           required=("imp", "idcode"), doc="PMCR_EL0's IMP and IDCODE (default: the model's)")
DFR0 = Int(0, U64_MAX, "a 64-bit register value",
           doc="the host's ID_AA64DFR0_EL1 (default: the model's)")
PMU = Obj({
    "cpu": Enum(tuple(CPU_MODELS), any_case=True, doc="a built-in CPU model (`kvmpmu cpus`)"),
    "midr": Int(0, 0xFFFFFFFF, "a 32-bit MIDR_EL1 value", doc="MIDR_EL1: picks the model"),
    "catalog": Str(doc="a CPU's events from a JSON file, relative to the spec's folder"),
    "pmu_version": PMU_VERSION,
    "counters": Int(0, sr.MAX_GENERAL_COUNTERS, doc="the host PMU's counters"),
    "type": Int(0, S32[1], "a perf PMU type",
                doc="its perf type (default 8, 9, ... in order; unique)"),
    "pmcr": PMCR,
}, at_most_one=(("cpu", "midr", "catalog"),))
SINGLE_PMU_HOST = Obj({**PMU.fields, "id_aa64dfr0_el1": DFR0}, at_most_one=PMU.at_most_one)
NAMED_PMU = Obj({**PMU.fields, "name": Str(doc="the PMU's name (default armv8_pmuv3_N)"),
                 "cpus": CPU_LIST_TYPE}, required=("cpus",), at_most_one=PMU.at_most_one)
HOST_PMUS = Obj({"pmus": ListOf(NAMED_PMU, min_items=1, doc="one PMU per cluster"),
                 "pmcr": PMCR, "id_aa64dfr0_el1": DFR0}, required=("pmus",))
HOST = AnyOf((Null(), SINGLE_PMU_HOST, HOST_PMUS),
             doc="the host: one PMU, or `pmus:` for big.LITTLE")
HOST_KEYS = tuple(dict.fromkeys(SINGLE_PMU_HOST.keys + HOST_PMUS.keys))

VM = Obj({
    "vcpus": Int(1, MAX_VCPUS, default=DEFAULT_VCPUS),
    "pmu_irq": Int(*S32, default=DEFAULT_PMU_IRQ, doc="the PMU interrupt (a PPI: 16-31)"),
    "counters": Int(0, sr.MAX_GENERAL_COUNTERS, doc="the guest's PMCR_EL0.N"),
    "pmu_version": PMU_VERSION,
    "irqchip": Enum(("kernel", "userspace"), default="kernel"),  # filterspec.Irqchip
    "pmu": Str(doc="KVM_ARM_VCPU_PMU_V3_SET_PMU to this host PMU (by name)"),
    "cpus": CPU_LIST_TYPE,
})

ACTION_NAME = Enum(ACTION_NAMES, any_case=True)
ACTION_NUMBER = Int(0, 0xFF, "allow, deny or an integer")
ENTRY = Obj({
    "allow": EVENTS,
    "deny": EVENTS,
    "action": AnyOf((ACTION_NAME, ACTION_NUMBER)),
    "base_event": Int(0, U16_MAX),
    "nevents": Int(0, U16_MAX),
    "pad": ListOf(Int(0, 0xFF, "a byte"), min_items=3, max_items=3),
    "expect_errno": ERRNO,
})
RAW_ENTRY_KEYS = ("action", "base_event", "nevents", "pad")


def entry_type(more: dict[str, Type] | None = None) -> Type:
    """One filter entry: {allow|deny: events} or the kernel's {action, base_event, nevents}."""
    more = more or {}
    own = {"expect_errno": ENTRY["expect_errno"], **more}
    return AnyOf((
        Obj({"allow": ENTRY["allow"], **own}, required=("allow",)),
        Obj({"deny": ENTRY["deny"], **own}, required=("deny",)),
        Obj({k: ENTRY[k] for k in RAW_ENTRY_KEYS} | own,
            required=("action", "base_event", "nevents"))))


SPEC = Obj({
    "kernel": Enum(PROFILE_NAMES, default=DEFAULT_PROFILE, doc="the kernel profile"),
    "purpose": Enum(PURPOSES, doc="what `kvmpmu lint` holds the policy to"),
    "host": HOST,
    "vm": VM,
    "filters": AnyOf((Null(), ListOf(Ref("entry"))),
                     doc="KVM_ARM_VCPU_PMU_V3_FILTER calls, in order"),
})

# --- workloads -----------------------------------------------------------------------------

REGISTER = Named("register", Enum(tuple(sorted(sr.SYSREGS)), any_case=True,
                                  doc="a PMU register"))
COUNTER_INDEX = Int(0, sr.CYCLE_IDX, "a counter index 0..30 or 'cycle'")
CYCLE_COUNTER = Enum(("cycle",), doc="the cycle counter, PMCCNTR_EL0")
COUNTER = AnyOf((COUNTER_INDEX, CYCLE_COUNTER))
COUNTERS = AnyOf((COUNTER, ListOf(COUNTER)))
EL = Int(0, 1, "exception level 0 or 1")
STEP = Obj({
    "write": MapOf(Int(0, U64_MAX, "a 64-bit value"), names=REGISTER.choices,
                   doc="PMU registers by name (any case): the values written"),
    "read": AnyOf((REGISTER, ListOf(REGISTER))),
    "program": Obj({"counter": COUNTER, "event": EVENT,
                    "exclude": ListOf(Enum(("el0", "el1")))}, required=("counter",)),
    "enable": COUNTERS,
    "disable": COUNTERS,
    "execute": Obj({"el": EL, "events": MapOf(Int(0, U64_MAX, "a count"))},
                   required=("events",)),
    "swinc": COUNTERS,
    "repeat": Obj({"times": Int(0, 2**63, "a repeat count"), "steps": Ref("steps")},
                  required=("times", "steps")),
    "vmm": Obj({"filter": Ref("entry"), "expect_errno": ERRNO}, required=("filter",)),
    "el": EL,
    "exit": AnyOf((Null(), Obj({}))),
})
STEPS = ListOf(AnyOf(tuple(Obj({k: t}, required=(k,)) for k, t in STEP.fields.items())))

EXPECT = Obj({
    "vcpu": Int(0, MAX_VCPUS - 1, "a vCPU index", default=0),
    "counter": COUNTER,
    "report": Int(0, 2**20, "a report index"),
    "read": REGISTER,
    "mask": Int(0, U64_MAX, "a 64-bit mask"),
    "undef": AnyOf((REGISTER, Bool())),
    "register": REGISTER,
    "visible": AnyOf((EVENT, ListOf(EVENT))),
    "hidden": AnyOf((EVENT, ListOf(EVENT))),
    **{op: Int(0, U64_MAX, "a 64-bit value") for op in COMPARISONS},
}, extra={"anyOf": [{"required": [k]} for k in ("counter", "report", "read", "undef",
                                                 "visible", "hidden")]})

GUEST = Obj({
    "binary": Str(doc="a raw image, relative to the workload's folder"),
    "elf": Str(doc="an AArch64 ELF executable"),
    "asm": Str(doc="GNU assembly source"),
    "load": Int(0, 2**48 - 1, "an address", default=DEFAULT_LOAD),
    "entry": Int(0, 2**48 - 1, "an address"),
    "max_instructions": Int(1, MAX_INSTRUCTIONS, "an instruction count",
                            default=DEFAULT_MAX_INSTRUCTIONS),
    "regs": MapOf(Int(0, U64_MAX, "a 64-bit register value"), names=tuple(CPU_REGS)),
    "timeout": Int(1, MAX_TIMEOUT, "a number of seconds"),
}, one_of=(("binary", "elf", "asm"),))

VCPU = Int(0, MAX_VCPUS - 1, "a vCPU index")
CALL_EXPECT = Obj({
    "expect_errno": ERRNO,
    "expect_value": Int(0, U64_MAX, "a 64-bit value"),
    "expect_mask": Int(0, U64_MAX, "a 64-bit mask"),
    "expect_exit": Enum(EXIT_REASONS + tuple(EXIT_PREFIX + r for r in EXIT_REASONS),
                        doc="the exit reason a `run` must end with: MMIO or KVM_EXIT_MMIO"),
})
EXPECT_KEYS = CALL_EXPECT.keys


def _on_vcpu(fields: dict[str, Type] | None = None, required: tuple[str, ...] = (),
             one_of: tuple[tuple[str, ...], ...] = ()) -> Obj:
    return Obj({"vcpu": VCPU, **(fields or {}), **CALL_EXPECT.fields},
               required=("vcpu",) + required, one_of=one_of)


ATTR_NUMBER = Int(0, U64_MAX, "an attribute name or number")
ATTR = Named("attr", AnyOf((Enum(tuple(ATTRS) + tuple(ATTR_PREFIX + a for a in ATTRS),
                                 any_case=True), ATTR_NUMBER)))
ONE_REG_NUMBER = Int(0, U64_MAX, "a register name or a 64-bit ONE_REG id")
ONE_REG = Named("one_reg", AnyOf((Enum(tuple(ONE_REG_IDS), any_case=True), ONE_REG_NUMBER)))
PMU_BY_TYPE = Obj({"type": Int(*S32, "a perf PMU type")}, required=("type",))
CALL = Obj({
    "create_vcpus": Int(1, MAX_VCPUS, "a number of vCPUs"),
    "vcpu_init": _on_vcpu({"pmu": Bool(default=True, doc="with KVM_ARM_VCPU_PMU_V3")}),
    "vgic": Enum(("create", "init")),
    "has": _on_vcpu({"attr": ATTR}, ("attr",)),
    "get": _on_vcpu({"attr": ATTR}, ("attr",)),
    "get_irq": _on_vcpu(),
    "set_irq": _on_vcpu({"irq": Int(*S32, "an interrupt number")}, ("irq",)),
    "filter": _on_vcpu({k: ENTRY[k] for k in ENTRY.keys if k != "expect_errno"}),
    "set_pmu": _on_vcpu({"pmu": AnyOf((Str(doc="a host PMU's name"), PMU_BY_TYPE)),
                         "type": PMU_BY_TYPE["type"]}, one_of=(("pmu", "type"),)),
    "set_nr_counters": _on_vcpu({"n": Int(0, 2**32 - 1, "a number of counters")}, ("n",)),
    "set_one_reg": _on_vcpu({"reg": ONE_REG, "value": Int(0, U64_MAX, "a 64-bit value"),
                             "mask": Int(0, U64_MAX, "a 64-bit mask")}, ("reg", "value")),
    "get_one_reg": _on_vcpu({"reg": ONE_REG}, ("reg",)),
    "pmu_init": _on_vcpu(),
    "run": _on_vcpu(),
})
SCENARIO_FILTER_EXTRA = {"vcpu": VCPU, "expect_value": CALL_EXPECT["expect_value"],
                         "expect_exit": CALL_EXPECT["expect_exit"]}
# The schema: each call with its own argument (a filter call's is an entry with a vCPU).
SCENARIO_ITEM = AnyOf(tuple(
    Obj({k: Ref("scenario_filter") if k == "filter" else t, **CALL_EXPECT.fields},
        required=(k,)) for k, t in CALL.fields.items()))

WORKLOAD = Obj({
    "vcpus": MapOf(AnyOf((Null(), Ref("steps"))), r"^(all|0|[1-9][0-9]*)$",
                   doc="steps for `all` vCPUs, or for one vCPU by index"),
    "guest": GUEST,
    "expect": ListOf(EXPECT),
    "vmm": ListOf(SCENARIO_ITEM, min_items=1, doc="a scenario: exactly these KVM calls"),
    "kernels": ListOf(Enum(PROFILE_NAMES), doc="the profiles its expectations hold on"),
    "policy": Str(doc="the filter spec it runs with (relative to this file's folder), when "
                  "the command line gives none"),
}, at_most_one=(("vcpus", "guest"),))
WORKLOAD_DEFS: dict[str, Type] = {
    "entry": entry_type(), "steps": STEPS,
    "scenario_filter": entry_type(SCENARIO_FILTER_EXTRA)}

# --- configuration ([tool.kvmpmu] in pyproject.toml, or .kvmpmu.toml) -------------------

LINT_FORMATS = ("text", "json", "github", "sarif")
CODES = ListOf(Str(doc="a rule code or prefix: KP001, KP0, ALL"))
CONFIG = Obj({
    "select": CODES,
    "ignore": CODES,
    "per-file-ignores": MapOf(CODES, doc="glob -> codes"),
    "strict": Bool(default=False, doc="lint fails on warnings too"),
    "format": Enum(LINT_FORMATS, default="text", doc="lint's output"),
    "exclude": ListOf(Str(doc="a glob")),
    "kernel": Enum(PROFILE_NAMES),
    "cpu": Enum(tuple(CPU_MODELS), any_case=True),
    "events-db": Str(doc="relative to the configuration file's folder"),
    "test-paths": ListOf(Str(), doc="where `kvmpmu test` and pytest find test workloads"),
})
