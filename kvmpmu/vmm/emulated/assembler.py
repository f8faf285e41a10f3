"""Guest assembly sources through keystone, plus what keystone lacks: GNU numeric local labels
(`1:` with `1b`/`1f`), every PMU register name in MRS/MSR (keystone knows no PMMIR_EL1 and
refuses an MRS of the write-only PMSWINC_EL0), `.inst`, and errors at their source line.

Sources are rewritten line for line, so a line number of the rewritten text is the user's."""

from __future__ import annotations

import re
from collections.abc import Callable

from kvmpmu.arch.sysregs import SYSREGS
from kvmpmu.errors import GuestError, SourceLoc
from kvmpmu.vmm.emulated.extra import need

_LABEL_DEF = re.compile(r"\s*(\d+):")
_NAMED_LABEL = re.compile(r"\s*([A-Za-z_.$][\w.$]*):")
_LOCAL_REF = re.compile(r'"(?:\\.|[^"\\])*"|(?<![\w.$#])(\d+)([bf])\b')
_SYSREG_INSN = re.compile(r"(?i)\b(mrs\s+\w+\s*,\s*|msr\s+)([a-z]\w*)")
_INST = re.compile(r"(?i)(?<![\w.])\.inst\b")
_GENERIC = {name: f"s{r.op0}_{r.op1}_c{r.crn}_c{r.crm}_{r.op2}" for name, r in SYSREGS.items()}


def _strip_comment(line: str) -> str:
    """Drop a `//` comment outside quotes."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and line.startswith("//", i):
            return line[:i]
    return line


def _local_label(number: str, index: int) -> str:
    return f".Lkvmpmu_{number}_{index}"


class _Rewriter:
    """One pass over the source: numeric labels become unique names, PMU registers their
    generic s<op0>_<op1>_c<n>_c<m>_<op2> form, `.inst` becomes `.word` (the same bytes in A64)."""

    def __init__(self, name: str, lines: list[str]) -> None:
        self.name, self.lines = name, lines
        self.defined: dict[str, int] = {}  # numeric label -> definitions so far
        self.forward: list[tuple[str, int, int]] = []  # (label, index wanted, line)

    def run(self) -> list[str]:
        out = [self._line(i + 1, _strip_comment(text)) for i, text in enumerate(self.lines)]
        for number, index, line in self.forward:
            if index >= self.defined.get(number, 0):
                raise self._error(line, f"no label `{number}:` after this line for `{number}f`")
        return out

    def _line(self, line: int, text: str) -> str:
        pos, head = 0, []
        while match := _LABEL_DEF.match(text, pos):
            number = match.group(1)
            index = self.defined.get(number, 0)
            self.defined[number] = index + 1
            head.append(f"{_local_label(number, index)}:")
            pos = match.end()
        body = _LOCAL_REF.sub(lambda m: self._reference(m, line), text[pos:])
        body = _SYSREG_INSN.sub(
            lambda m: m.group(1) + _GENERIC.get(m.group(2).upper(), m.group(2)), body)
        body = _INST.sub(".word", body)
        return " ".join(head + [body])

    def _reference(self, match: re.Match[str], line: int) -> str:
        if match.group(1) is None:
            return match.group(0)  # a quoted string
        number, direction = match.group(1), match.group(2)
        seen = self.defined.get(number, 0)
        if direction == "b":
            if not seen:
                raise self._error(line, f"no label `{number}:` before this line for "
                                  f"`{number}b`")
            return _local_label(number, seen - 1)
        self.forward.append((number, seen, line))
        return _local_label(number, seen)

    def _error(self, line: int, message: str) -> GuestError:
        return source_error(self.name, self.lines, line, message)


def source_error(name: str, lines: list[str], line: int, message: str) -> GuestError:
    """An error at a source line, with that line shown under the message."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    col = len(text) - len(text.lstrip()) + 1
    return GuestError(f"{message}\n  {line:>5} | {text.rstrip()}", loc=SourceLoc(name, line, col))


def assemble(source: str, address: int, name: str = "<asm>") -> bytes:
    """Machine code for `source` placed at `address`."""
    keystone = need("keystone")
    ks = keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN)
    lines = source.splitlines()
    rewritten = _Rewriter(name, lines).run()

    def attempt(text: str) -> bytes:
        encoding, _ = ks.asm(text, address)
        return bytes(encoding or b"")

    try:
        return attempt("\n".join(rewritten) + "\n")
    except keystone.KsError as err:
        line = _failing_line(rewritten, lambda text: _fails(attempt, text, keystone.KsError))
        if line is None:
            raise GuestError(f"cannot assemble: {err}", loc=SourceLoc(name, 0, 0)) from None
        raise source_error(name, lines, line, f"cannot assemble: {err}") from None


def _fails(attempt: Callable[[str], bytes], text: str, error: type[Exception]) -> bool:
    try:
        attempt(text)
    except error:
        return True
    return False


def _failing_line(lines: list[str], fails: Callable[[str], bool]) -> int | None:
    """The first line whose statement keystone rejects (keystone does not say): the shortest
    failing prefix, with the labels defined further down stubbed so forward branches resolve."""
    labels = [(i, m.group(1)) for i, text in enumerate(lines)
              for m in _labels_in(text)]

    def prefix_fails(k: int) -> bool:
        stubs = [f"{label}:" for i, label in labels if i >= k]
        return fails("\n".join(lines[:k] + stubs) + "\n")

    lo, hi = 1, len(lines)
    if not prefix_fails(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if prefix_fails(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _labels_in(text: str) -> list[re.Match[str]]:
    found, pos = [], 0
    while match := _NAMED_LABEL.match(text, pos):
        found.append(match)
        pos = match.end()
    return found
