"""A run's verdict on stderr: its failed expectations and its error, and the outcome they
make (one run, or each of a batch)."""

from __future__ import annotations

from typing import Any

from kvmpmu.cli.exitcodes import Outcome
from kvmpmu.cli.output import note, report_error


def expectation_failures(result: Any) -> list[str]:
    lines = []
    for e in result.expectations:
        if not e.passed:
            where = f"{e.loc}: " if e.loc else ""
            text = " ".join(f"{k}={v}" for k, v in e.expect.items())
            lines.append(f"{where}error: expectation failed: {text}: actual {e.actual}")
    return lines


def run_outcome(result: Any) -> Outcome:
    """A run's warnings, failed expectations and error on stderr, and the outcome they make."""
    failures = expectation_failures(result)
    for line in result.warnings + failures:
        note(line)
    if result.error:
        report_error(result.error)
        return Outcome(errors=(result.error,))
    return Outcome(failed=bool(failures))
