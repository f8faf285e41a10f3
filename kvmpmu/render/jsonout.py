"""The JSON documents of `--json` (schema 1). Field names are a contract: add, never rename."""

from __future__ import annotations

from typing import Any

from kvmpmu import SCHEMA
from kvmpmu.errors import KvmpmuError, SourceLoc
from kvmpmu.vmm.results import (
    CallRecord,
    HostPmuInfo,
    PmceidView,
    RunResult,
    VcpuExit,
    VcpuResult,
)

__all__ = ["SCHEMA"]  # re-exported: the renderers take it from here


def hex64(value: int) -> str:
    return f"0x{value:016x}"


def _loc(loc: SourceLoc | None) -> str | None:
    return str(loc) if loc else None


def exit_json(exit_: VcpuExit) -> dict[str, Any]:
    out: dict[str, Any] = {"reason": exit_.reason}
    if exit_.mmio is not None:
        out["mmio"] = {"addr": f"0x{exit_.mmio.addr:x}", "len": exit_.mmio.length,
                       "data": f"0x{exit_.mmio.data:x}"}
    if exit_.device_irq_level is not None:
        out["device_irq_level"] = exit_.device_irq_level
    if exit_.reason == "FAIL_ENTRY":
        out["fail_entry"] = {"hardware_entry_failure_reason": exit_.fail_reason,
                             "cpu": exit_.cpu}
    return out


def call_json(call: CallRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"vcpu": call.vcpu, "ioctl": call.ioctl, "attr": call.attr,
                           "args": call.args, "errno": call.errno}
    if call.value is not None:
        out["value"] = f"0x{call.value:x}"
    if call.exit is not None:
        out["exit"] = exit_json(call.exit)
    if call.expecting:
        out["expected"] = call.expected_errno
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
        "reads": [_counted({"register": reg, "undef": True} if value is None else
                           {"register": reg, "value": value}, count)
                  for reg, value, count in v.reads],
        "undefined": [_counted({"register": reg, "access": access}, count)
                      for reg, access, count in v.undefined],
        "reports": v.reports,
        "console": v.console,
        "guest": v.guest,
        "state": None if v.state is None else
        {name: None if value is None else hex64(value) for name, value in v.state.items()},
    }


def _counted(record: dict[str, Any], count: int) -> dict[str, Any]:
    """Consecutive identical records are one, with the number of times as `count`."""
    if count > 1:
        record["count"] = count
    return record


def position(loc: SourceLoc | None) -> dict[str, Any] | None:
    """A location as `{file, line, column}` (`location` keeps the `file:line:col` text)."""
    return loc.to_json() if loc else None


def error_json(err: KvmpmuError) -> dict[str, Any]:
    """`{kind, message, hint, location, position, path}`, plus `errors` (each of a file's
    independent errors, the first included) and what the error's type adds (`call`)."""
    out: dict[str, Any] = {"kind": err.kind, "message": err.message, "hint": err.hint,
                           "location": _loc(err.loc), "position": position(err.loc),
                           "path": err.path}
    out.update(err.details())
    many = err.all()
    if len(many) > 1:
        out["errors"] = [error_json(e) for e in many]
    return out


def maybe_error_json(err: KvmpmuError | None) -> dict[str, Any] | None:
    return error_json(err) if err is not None else None


def run_json(result: RunResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "ok": result.ok,
        "kernel": result.kernel,
        "backend": result.backend,
        "release": result.release,
        "host": host_json((result.host_pmceid0, result.host_pmceid1), result.host_pmu),
        "ioctls": [call_json(c) for c in result.ioctls],
        "vcpus": [vcpu_json(v) for v in result.vcpus],
        "expectations": [
            {"expect": e.expect, "passed": e.passed, "actual": e.actual,
             "location": _loc(e.loc)} for e in result.expectations
        ],
        "error": maybe_error_json(result.error),
        "warnings": result.warnings,
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
        "error": maybe_error_json(view.error),
        "warnings": view.warnings,
    }
