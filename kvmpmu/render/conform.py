"""`conform` output: text (differences grouped by case, then a summary), JSON (schema 1) and
KTAP version 1 (one test per case, as kselftest and KUnit print it)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kvmpmu.conform.compare import Difference
from kvmpmu.conform.run import CaseResult, Conformance
from kvmpmu.render.jsonout import SCHEMA


def _header(report: Conformance) -> str:
    return (f"real kernel {report.release} ({report.real_backend}) against profile "
            f"{report.profile} ({report.emulated_backend})")


def _summary(report: Conformance) -> str:
    return f"{len(report.cases)} cases, {report.differing} differ"


def _line(diff: Difference) -> str:
    where = str(diff.where)
    return f"{diff.what} {where}: {diff.message}" if where else f"{diff.what}: {diff.message}"


def conform_text(report: Conformance) -> str:
    """Only the cases that differ are listed, each difference on its own line."""
    lines = [_header(report)]
    for case in report.cases:
        if case.agrees:
            continue
        count = len(case.differences)
        lines.append(f"{case.name}: {count} difference{'s' if count != 1 else ''}")
        lines += [f"  {_line(d)}" for d in case.differences]
    lines.append(_summary(report))
    return "\n".join(lines)


def _json_value(value: Any) -> Any:
    """Register values as 0x hex strings, like the other documents; records element-wise."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"0x{value:x}"
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return str(value)


def _difference_json(diff: Difference) -> dict[str, Any]:
    return {"what": diff.what, "where": asdict(diff.where), "real": _json_value(diff.real),
            "emulated": _json_value(diff.emulated), "message": diff.message}


def _case_json(case: CaseResult) -> dict[str, Any]:
    return {"name": case.name, "ok": case.agrees,
            "differences": [_difference_json(d) for d in case.differences]}


def conform_json(report: Conformance) -> dict[str, Any]:
    return {"schema": SCHEMA, "ok": report.ok, "release": report.release,
            "profile": report.profile,
            "backends": {"real": report.real_backend, "emulated": report.emulated_backend},
            "cases": [_case_json(c) for c in report.cases],
            "summary": {"cases": len(report.cases), "differ": report.differing},
            "error": None}


def conform_tap(report: Conformance) -> str:
    """KTAP version 1: the plan, then per case its differences as `# ` diagnostic lines before
    its `ok`/`not ok` line, and kselftest's totals line."""
    lines = ["KTAP version 1", f"1..{len(report.cases)}", f"# {_header(report)}"]
    for number, case in enumerate(report.cases, 1):
        lines += [f"# {_line(d)}" for d in case.differences]
        lines.append(f"{'ok' if case.agrees else 'not ok'} {number} {case.name}")
    passed = len(report.cases) - report.differing
    lines.append(f"# Totals: pass:{passed} fail:{report.differing} xfail:0 xpass:0 skip:0 "
                 "error:0")
    return "\n".join(lines)
