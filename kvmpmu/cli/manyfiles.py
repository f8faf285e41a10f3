"""`lint` and `validate` over many files: each file's errors reported where they occur, one
summary line (`N files, E errors, W warnings`) and an outcome that is the worst of them."""

from __future__ import annotations

from typing import Any

from kvmpmu.cli.exitcodes import Outcome
from kvmpmu.cli.output import report_error
from kvmpmu.errors import KvmpmuError


def count(n: int, word: str) -> str:
    """`1 file`, `2 files`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


class Tally:
    def __init__(self, files: int) -> None:
        self.files = files
        self.errors: list[KvmpmuError] = []  # a file that could not be checked, once each
        self.error_findings = 0
        self.warnings = 0
        self.verdict_failed = False

    def failed(self, err: KvmpmuError) -> None:
        """A file that could not be checked: its errors go to stderr now, in file order."""
        report_error(err)
        self.errors.append(err)

    @property
    def error_count(self) -> int:
        return sum(len(e.all()) for e in self.errors) + self.error_findings

    def ok(self) -> bool:
        return not self.errors and not self.verdict_failed

    def line(self) -> str:
        return (f"{count(self.files, 'file')}, {count(self.error_count, 'error')}, "
                f"{count(self.warnings, 'warning')}")

    def json(self) -> dict[str, Any]:
        return {"files": self.files, "errors": self.error_count, "warnings": self.warnings}

    def outcome(self) -> Outcome:
        return Outcome(failed=self.verdict_failed, errors=tuple(self.errors))
