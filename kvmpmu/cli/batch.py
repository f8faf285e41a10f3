"""`run` with several workloads against one policy (or each with its own `policy:`): every
run reported, failures on stderr, a summary line, and one exit code (the worst)."""

from __future__ import annotations

from typing import Any

from kvmpmu.cli.exitcodes import Outcome
from kvmpmu.cli.manyfiles import count
from kvmpmu.cli.output import emit, emit_json, emit_text, note, report_error
from kvmpmu.errors import KvmpmuError
from kvmpmu.spec.sources import HostChoice, PolicySource


def run_batch(given: PolicySource | None, paths: tuple[str, ...], host: HostChoice,
              kernel: str | None, machine: Any, quiet: bool, as_json: bool,
              limits: tuple[int | None, float | None]) -> Outcome:
    from kvmpmu.cli.sources import exclude
    from kvmpmu.cli.verdicts import expectation_failures
    from kvmpmu.render.jsonout import SCHEMA, maybe_error_json, run_json
    from kvmpmu.render.text import run_text
    from kvmpmu.spec.discover import expand
    from kvmpmu.spec.sources import load_policy
    from kvmpmu.spec.workload import load_workload
    from kvmpmu.spec.yamlio import source_name
    from kvmpmu.vmm.execution import run_spec
    from kvmpmu.vmm.workload_files import policy_for

    files = expand(paths, "workload", host.max_bytes, exclude())
    errors: list[KvmpmuError] = []
    failed, documents = 0, []
    for path in files:
        name, policy = source_name(path), "?"
        try:
            source = policy_for(path, given, host.max_bytes)
            policy = source.name
            spec = load_policy(source, host)
            workload = load_workload(path, host.max_bytes, spec.host.catalog(),
                                     spec.host.max_event)
            result = run_spec(spec, workload, kernel, limits[0], machine, limits[1])
        except KvmpmuError as err:
            failed += 1
            errors.append(err)
            documents.append({"workload": name, "policy": policy, "ok": False,
                              "error": maybe_error_json(err)})
            if not as_json:
                emit_text(f"== {name} (policy {policy}): error")
            report_error(err)
            continue
        lines = expectation_failures(result)
        documents.append({"workload": name, "policy": policy, **run_json(result)})
        if not result.ok:
            failed += 1
            if result.error is not None:
                errors.append(result.error)
        if not as_json and (not quiet or not result.ok):
            emit_text(f"== {name} (policy {policy}): {'ok' if result.ok else 'FAILED'}")
            emit(run_text(result))
        for line in lines:
            note(line)
        if result.error is not None:
            report_error(result.error)
    if as_json:
        emit_json({"schema": SCHEMA, "ok": failed == 0, "runs": documents,
                   "summary": {"workloads": len(files), "passed": len(files) - failed,
                               "failed": failed}})
    note(f"{count(len(files), 'workload')}, {len(files) - failed} passed, {failed} failed")
    return Outcome(failed=failed > len(errors), errors=tuple(errors))
