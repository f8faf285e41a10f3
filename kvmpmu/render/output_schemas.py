"""The `--json` documents, declared: one JSON Schema per command (`kvmpmu schema
output-<command>`). Each accepts the command's document and the error document every
command prints when it fails before its own; the tests validate every golden and every
command's output against them."""

from __future__ import annotations

from kvmpmu.render.jsonout import SCHEMA
from kvmpmu.spec.schema_types import (
    AnyOf,
    Anything,
    Bool,
    Const,
    Enum,
    Int,
    ListOf,
    MapOf,
    Null,
    Obj,
    Ref,
    Str,
    Type,
)

STR, BOOL, ANY = Str(), Bool(), Anything()
INT = Int(-(2**63), 2**64 - 1)
HEX = Str(doc="a 0x hex string")
VERSION = Int(SCHEMA, SCHEMA, doc="the documents' format: fields are added, never renamed")


def nullable(kind: Type) -> Type:
    return AnyOf((kind, Null()))


def document(fields: dict[str, Type], optional: tuple[str, ...] = ()) -> Obj:
    """A command's document: `schema` and `ok` first, every field given unless `optional`."""
    every = {"schema": VERSION, "ok": BOOL, **fields}
    return Obj(every, required=tuple(k for k in every if k not in optional))


def record(fields: dict[str, Type], optional: tuple[str, ...] = ()) -> Obj:
    return Obj(fields, required=tuple(k for k in fields if k not in optional))


POSITION = nullable(record({"file": STR, "line": nullable(INT), "column": nullable(INT)}))
CALL_ERROR = record({"ioctl": STR, "attr": nullable(STR), "vcpu": nullable(INT),
                     "errno": nullable(STR), "exit_reason": STR,
                     "hardware_entry_failure_reason": STR, "cpu": nullable(INT)},
                    optional=("exit_reason", "hardware_entry_failure_reason", "cpu"))
ERROR = record({"kind": Str(examples=("usage", "spec", "kvm", "guest", "internal", "output",
                                      "interrupted", "unavailable")),
                "message": STR, "hint": nullable(STR), "location": nullable(STR),
                "position": POSITION, "path": nullable(STR), "call": CALL_ERROR,
                "errors": ListOf(Ref("error"))}, optional=("call", "errors"))
ERROR_DOCUMENT = document({"ok": Const(False), "error": Ref("error")})
MAYBE_ERROR = nullable(Ref("error"))
PMCEID_PAIR = record({"pmceid0": HEX, "pmceid1": HEX})

EXIT = record({"reason": STR,
               "mmio": record({"addr": HEX, "len": INT, "data": HEX}),
               "device_irq_level": BOOL,
               "fail_entry": record({"hardware_entry_failure_reason": STR,
                                     "cpu": nullable(INT)})},
              optional=("mmio", "device_irq_level", "fail_entry"))
IOCTL = record({"vcpu": nullable(INT), "ioctl": STR, "attr": nullable(STR),
                "args": MapOf(ANY), "errno": nullable(STR), "value": HEX, "exit": EXIT,
                "expected": nullable(STR), "expected_errno": STR, "location": STR,
                "names": MapOf(nullable(STR))},
               optional=("value", "exit", "expected", "expected_errno", "location", "names"))
HOST = record({"pmceid0": HEX, "pmceid1": HEX,
               "pmu": record({"name": STR, "pmu_type": INT, "cpu": STR, "pmuver": INT,
                              "counters": INT})}, optional=("pmu",))
COUNTER = record({"counter": INT, "event": INT, "name": nullable(STR), "enabled": BOOL,
                  "allowed": nullable(BOOL), "implemented": nullable(BOOL), "value": INT,
                  "overflow": BOOL})
READ = record({"register": STR, "value": INT, "undef": BOOL, "count": INT},
              optional=("value", "undef", "count"))
VCPU = record({
    "vcpu": INT, "ran": BOOL, "pmceid0": HEX, "pmceid1": HEX, "pmcr": HEX,
    "irq_level": BOOL, "counters": ListOf(COUNTER), "reads": ListOf(READ),
    "undefined": ListOf(record({"register": STR, "access": Enum(("read", "write")),
                                "count": INT}, optional=("count",))),
    "reports": ListOf(INT), "console": ListOf(STR), "guest": nullable(MapOf(ANY)),
    "state": nullable(MapOf(nullable(HEX)))})
EXPECTATION = record({"expect": MapOf(ANY), "passed": BOOL, "actual": ANY,
                      "location": nullable(STR)})
RUN_FIELDS: dict[str, Type] = {
    "kernel": STR, "backend": Enum(("emulated", "kvm")), "release": nullable(STR),
    "host": HOST, "ioctls": ListOf(IOCTL), "vcpus": ListOf(VCPU),
    "expectations": ListOf(EXPECTATION), "error": MAYBE_ERROR, "warnings": ListOf(STR)}
RUN = document(RUN_FIELDS)
BATCH = document({
    "runs": ListOf(AnyOf((
        document({"workload": STR, "policy": STR, **RUN_FIELDS}),
        document({"workload": STR, "policy": STR, "error": Ref("error")})))),
    "summary": record({"workloads": INT, "passed": INT, "failed": INT})})

CONFORM = document({
    "release": nullable(STR), "profile": nullable(STR),
    "backends": record({"real": STR, "emulated": STR}),
    "cases": ListOf(record({"name": STR, "ok": BOOL, "differences": ListOf(record({
        "what": STR, "where": MapOf(ANY), "real": ANY, "emulated": ANY, "message": STR}))})),
    "summary": record({"cases": INT, "differ": INT}), "error": MAYBE_ERROR})

SHOW_PMCEID = document({
    "kernel": STR, "host": HOST, "guest": PMCEID_PAIR,
    "events": ListOf(record({"event": INT, "hex": HEX, "name": nullable(STR),
                             "implemented": BOOL, "visible": BOOL,
                             "hidden_by": nullable(Enum(("filter", "kvm")))})),
    "ioctls": ListOf(IOCTL), "error": MAYBE_ERROR, "warnings": ListOf(STR)})

SUMMARY = record({"files": INT, "errors": INT, "warnings": INT, "silenced": INT},
                 optional=("silenced",))
VALIDATE = document({
    "files": ListOf(record({"file": STR, "kind": nullable(Enum(("spec", "workload"))),
                            "ok": BOOL, "error": MAYBE_ERROR})),
    "summary": SUMMARY})
FINDING = record({"code": Str(examples=("KP001",)), "name": STR,
                  "severity": Enum(("note", "warning", "error")), "location": nullable(STR),
                  "position": POSITION, "entry": nullable(INT), "message": STR, "fix": STR})
LINT = document({"files": ListOf(record({"file": STR, "findings": ListOf(FINDING),
                                         "error": MAYBE_ERROR})),
                 "summary": SUMMARY})
EXPLAIN = document({
    "file": STR, "kernel": STR, "event_space": INT,
    "events": ListOf(record({
        "event": INT, "hex": HEX, "name": nullable(STR),
        "decision": Enum(("allowed", "denied")),
        "decided_by": Enum(("entry", "default", "no-filter", "unfilterable",
                            "outside-event-space")),
        "entry": nullable(INT), "location": nullable(STR), "reason": STR,
        "pmceid": Enum(("visible", "hidden", "no-bit")), "implemented": BOOL,
        "counts": BOOL}))})
PAIR_OF_STR = record({"a": STR, "b": STR})
DECISION = Enum(("allowed", "denied", "outside-event-space"))
PMCEID_STATE = Enum(("visible", "hidden", "hidden-by-kvm", "not-implemented"))
DIFF = document({
    "same": BOOL, "a": STR, "b": STR, "kernels": PAIR_OF_STR, "hosts": PAIR_OF_STR,
    "event_space": INT,
    "changes": ListOf(record({"first": INT, "last": INT, "nevents": INT,
                              "first_name": nullable(STR), "last_name": nullable(STR),
                              "a": DECISION, "b": DECISION})),
    "pmceid": record({"a": PMCEID_PAIR, "b": PMCEID_PAIR,
                      "changes": ListOf(record({"event": INT, "name": nullable(STR),
                                                "a": PMCEID_STATE, "b": PMCEID_STATE}))})})
COMPILE = document({
    "file": STR, "kernel": STR, "event_space": INT, "input_calls": INT,
    "filters": ListOf(record({"base_event": INT, "nevents": INT, "action": INT,
                              "names": MapOf(nullable(STR))})),
    "format": STR, "output": nullable(STR)})
IMPORT = document({"spec": STR, "output": nullable(STR)})
PRESETS = document({"cpu": STR, "presets": ListOf(record({
    "name": STR, "summary": STR, "events": ListOf(INT), "names": ListOf(STR),
    "ranges": ListOf(ListOf(INT, min_items=2, max_items=2))}))})
CPU: dict[str, Type] = {"name": STR, "display": STR, "midr": HEX, "implementer": HEX, "part": HEX}
EVENTS = document({"cpu": record(CPU), "events": ListOf(record({
    "event": INT, "hex": HEX, "name": STR, "description": STR, "implemented": BOOL,
    "pmceid_bit": BOOL, "pmceid_visible": BOOL}))})
CPUS = document({"cpus": ListOf(record({
    **CPU, "pmu_version": STR, "counters": INT, "events": INT, "impdef_events": INT,
    "aarch32_el0": BOOL, "pmceid0": HEX, "pmceid1": HEX}))})
TEST = document({
    "tests": ListOf(record({"file": STR, "policy": STR, "kernel": nullable(STR), "ok": BOOL,
                            "skipped": nullable(STR), "expectations": ListOf(EXPECTATION),
                            "error": MAYBE_ERROR})),
    "summary": record({"tests": INT, "passed": INT, "failed": INT, "skipped": INT})})

OUTPUTS: dict[str, tuple[Type, ...]] = {  # command -> the documents it prints
    "run": (RUN, BATCH, CONFORM),
    "show-pmceid": (SHOW_PMCEID, CONFORM),
    "validate": (VALIDATE,),
    "lint": (LINT,),
    "explain": (EXPLAIN,),
    "diff": (DIFF,),
    "compile": (COMPILE,),
    "import": (IMPORT,),
    "presets": (PRESETS,),
    "events": (EVENTS,),
    "cpus": (CPUS,),
    "conform": (CONFORM,),
    "test": (TEST,),
}


def output_type(command: str) -> Type:
    """What `command --json` prints: one of its documents, or the error document."""
    return AnyOf((*OUTPUTS[command], ERROR_DOCUMENT))


OUTPUT_DEFS: dict[str, Type] = {"error": ERROR}
