"""Which lint findings are reported: `--select`/`--ignore` by code or prefix (the longest
match decides, as ruff's does), `per-file-ignores`, and `# kvmpmu: noqa[: CODES]` comments
on a spec line."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from kvmpmu.errors import SpecError
from kvmpmu.policy.lint import CODES, Finding
from kvmpmu.records import Record

ALL = "ALL"
_NOQA = re.compile(r"(?:^|\s)#\s*kvmpmu:\s*noqa(?::\s*(?P<codes>[A-Za-z0-9]+(?:[\s,]+"
                   r"[A-Za-z0-9]+)*))?", re.IGNORECASE)


def check_code(text: str, where: str) -> str:
    """A rule code or prefix (`KP007`, `KP0`, `ALL`), upper-cased; SpecError otherwise."""
    code = text.strip().upper()
    if code == ALL or any(c.startswith(code) for c in CODES) and code.startswith("KP"):
        return code
    import difflib

    close = difflib.get_close_matches(code, list(CODES), n=1)
    raise SpecError(f"{text.strip()!r} is not a rule code or prefix (KP001..KP"
                    f"{len(CODES):03d})", path=where,
                    hint=f"did you mean {close[0]!r}?" if close else "see `kvmpmu lint --help`")


def parse_codes(text: str, where: str) -> tuple[str, ...]:
    """`KP001,KP004` or `KP0`: comma-separated codes or prefixes."""
    return tuple(check_code(part, where) for part in text.split(",") if part.strip())


def _matches(code: str, pattern: str) -> int:
    """How specific a match `pattern` is for `code` (0: none)."""
    if pattern == ALL:
        return 1
    return len(pattern) + 1 if code.startswith(pattern) else 0


class RuleSelection(Record):
    __slots__ = ("select", "ignore", "per_file_ignores")

    def __init__(self, select: tuple[str, ...] = (ALL,), ignore: tuple[str, ...] = (),
                 per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> None:
        self.select, self.ignore, self.per_file_ignores = select, ignore, per_file_ignores

    def enabled(self, code: str, file: str) -> bool:
        ignore = self.ignore + tuple(c for glob, codes in self.per_file_ignores
                                     if fnmatch.fnmatch(file, glob) for c in codes)
        chosen = max((_matches(code, p) for p in self.select), default=0)
        dropped = max((_matches(code, p) for p in ignore), default=0)
        return chosen > 0 and chosen > dropped


def noqa(line: str) -> frozenset[str] | None:
    """The codes a `# kvmpmu: noqa[: CODES]` comment on `line` silences (ALL for all), or
    None without one."""
    match = _NOQA.search(line)
    if match is None:
        return None
    codes = match.group("codes")
    if not codes:
        return frozenset({ALL})
    return frozenset(c.upper() for c in re.split(r"[\s,]+", codes) if c)


def silenced(finding: Finding, lines: list[str]) -> bool:
    """Whether a noqa comment on the finding's own line silences it."""
    loc = finding.loc
    if loc is None or not 0 < loc.line <= len(lines):
        return False
    codes = noqa(lines[loc.line - 1])
    return codes is not None and (ALL in codes or finding.code in codes)


def select(findings: Iterable[Finding], file: str, text: str | None,
           rules: RuleSelection) -> tuple[list[Finding], int]:
    """The findings to report, and how many a noqa comment silenced."""
    lines = text.splitlines() if text is not None else []
    kept, quiet = [], 0
    for f in findings:
        if not rules.enabled(f.code, file):
            continue
        if silenced(f, lines):
            quiet += 1
            continue
        kept.append(f)
    return kept, quiet
