"""Expectations as a plain table (location, expectation, actual, verdict): what `kvmpmu test`
and the pytest plugin show for a workload that failed."""

from __future__ import annotations

from typing import Any

from kvmpmu.vmm.results import ExpectResult

HEADER = ("location", "expectation", "actual", "result")


def expectation_text(expect: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in expect.items())


def expectation_rows(results: list[ExpectResult]) -> list[tuple[str, str, str, str]]:
    return [(str(e.loc) if e.loc else "", expectation_text(e.expect), str(e.actual),
             "ok" if e.passed else "FAILED") for e in results]


def expectation_table(results: list[ExpectResult]) -> str:
    """Columns padded to their widest cell; one line per expectation."""
    rows = [HEADER, *expectation_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in rows)
