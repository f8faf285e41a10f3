"""The JSON documents of `--json` (schema 1). Field names are a contract: add, never rename."""

from __future__ import annotations

from typing import Any

from kvmpmu.errors import SourceLoc
from kvmpmu.vmm.results import CallRecord, HostPmuInfo, PmceidView, RunResult, VcpuResult

SCHEMA = 1


def hex64(value: int) -> str:
    return f"0x{value:016x}"


def _loc(loc: SourceLoc | None) -> str | None:
    return str(loc) if loc else None


def call_json(call: CallRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"vcpu": call.vcpu, "ioctl": call.ioctl, "attr": call.attr,
                           "args": call.args, "errno": call.errno}
    if call.exit:
        out["exit"] = call.exit
    if call.expected_errno is not None:
        out["expected_errno"] = call.expected_errno
    if call.loc:
        out["location"] = _loc(call.loc)
    if call.names:
        out["names"] = call.names
    return out


def host_json(regs: tuple[int, int], info: HostPmuInfo | None) -> dict[str, Any]:
    out: dict[str, Any] = {"pmceid0": hex64(regs[0]), "pmceid1": hex64(regs[1])}
    if info is not None:
        out["pmu"] = {"name": info.name, "pmu_type": info.pmu_type, "cpu": info.cpu,
                      "pmuver": info.pmuver, "counters": info.counters}
    return out


def vcpu_json(v: VcpuResult) -> dict[str, Any]:
    return {
        "vcpu": v.vcpu,
        "ran": v.ran,
        "pmceid0": hex64(v.pmceid0),
        "pmceid1": hex64(v.pmceid1),
        "pmcr": hex64(v.pmcr),
        "irq_level": v.irq_level,
        "counters": [
            {"counter": c.counter, "event": c.event, "name": c.name, "enabled": c.enabled,
             "allowed": c.allowed, "implemented": c.implemented, "value": c.value,
             "overflow": c.overflow}
            for c in v.counters
        ],
        "reads": [{"register": reg, "undef": True} if value is None else
                  {"register": reg, "value": value} for reg, value in v.reads],
        "undefined": [{"register": reg, "access": access} for reg, access in v.undefined],
        "reports": v.reports,
        "console": v.console,
        "guest": v.guest,
    }


def error_json(kind: str, message: str, loc: SourceLoc | None = None,
               path: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "message": message, "location": _loc(loc), "path": path}


def run_json(result: RunResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "ok": result.ok,
        "kernel": result.kernel,
        "host": host_json((result.host_pmceid0, result.host_pmceid1), result.host_pmu),
        "ioctls": [call_json(c) for c in result.ioctls],
        "vcpus": [vcpu_json(v) for v in result.vcpus],
        "expectations": [
            {"expect": e.expect, "passed": e.passed, "actual": e.actual,
             "location": _loc(e.loc)} for e in result.expectations
        ],
        "error": error_json(result.error_kind, result.error, result.error_loc)
        if result.error else None,
    }


def pmceid_json(view: PmceidView) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "ok": view.error is None,
        "kernel": view.kernel,
        "host": host_json(view.host, view.host_pmu),
        "guest": {"pmceid0": hex64(view.guest[0]), "pmceid1": hex64(view.guest[1])},
        "events": [
            {"event": e.event, "hex": f"0x{e.event:04x}", "name": e.name,
             "implemented": e.implemented, "visible": e.visible, "hidden_by": e.hidden_by}
            for e in view.events
        ],
        "ioctls": [call_json(c) for c in view.ioctls],
        "error": error_json("kvm", view.error) if view.error else None,
    }
