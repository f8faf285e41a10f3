"""Error types shared by every layer. Plain classes; exit codes live in the CLI only."""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLoc:
    file: str
    line: int  # 1-based; 0 when only the file is known (JSON read by the fast path)
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


class KvmpmuError(Exception):
    """Base of every error kvmpmu reports to its user."""

    def __init__(
        self,
        message: str,
        *,
        loc: SourceLoc | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.path = path
        self.hint = hint

    def render(self) -> str:
        """One line in compiler style: `file:line:col: error: path: message`."""
        where = f"{self.loc}: " if self.loc else ""
        path = f"{self.path}: " if self.path else ""
        text = f"{where}error: {path}{self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class SpecError(KvmpmuError):
    """A filter spec, workload or catalog file (or a command-line value) is invalid."""


class GuestError(KvmpmuError):
    """The guest workload could not go on."""


def errno_name(value: int) -> str:
    return _errno.errorcode.get(value, str(value))


class KvmError(KvmpmuError):
    """An emulated ioctl failed: carries the errno the kernel would set."""

    def __init__(self, errno: int, reason: str = "") -> None:
        self.errno = errno
        self.reason = reason
        text = errno_name(errno) + (f": {reason}" if reason else "")
        super().__init__(text)


class RejectedError(KvmpmuError):
    """The emulated kernel rejects what a spec asks for: an analysis cannot go on."""


class KvmUnavailable(KvmpmuError):
    """The kvm backend cannot run here: no /dev/kvm, or not an arm64 host."""
