"""Error types shared by every layer. Plain classes; exit codes live in the CLI only.

Each type has a `kind`, the `error.kind` of the JSON documents; the CLI maps the type (never
the kind's text) to an exit code in `kvmpmu/cli/exitcodes.py`.
"""

from __future__ import annotations

import errno as _errno
from typing import Any, ClassVar, Literal

from kvmpmu.records import Record

# The `error.kind` values of the JSON documents (README, "Errors and exit codes").
ErrorKind = Literal["error", "usage", "spec", "kvm", "guest", "internal", "output",
                    "interrupted", "unavailable"]


class SourceLoc(Record):
    __slots__ = ("file", "line", "col")

    def __init__(self, file: str, line: int, col: int) -> None:
        self.file = file
        self.line = line  # 1-based; 0 when only the file is known (JSON read by the fast path)
        self.col = col  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file

    def to_json(self) -> dict[str, Any]:
        """`{file, line, column}`; line and column are null when only the file is known."""
        return {"file": self.file, "line": self.line or None, "column": self.col or None}


class KvmpmuError(Exception):
    """Base of every error kvmpmu reports to its user."""

    kind: ClassVar[ErrorKind] = "error"

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

    def all(self) -> list[KvmpmuError]:
        """The errors this one stands for: itself, or each of a SpecErrors."""
        return [self]

    def details(self) -> dict[str, Any]:
        """Fields a JSON error object adds for this type (none by default)."""
        return {}

    def render(self) -> str:
        """Compiler style, `file:line:col: error: path: message`, then a `hint:` line."""
        where = f"{self.loc}: " if self.loc else ""
        path = f"{self.path}: " if self.path else ""
        text = f"{where}error: {path}{self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class SpecError(KvmpmuError):
    """A filter spec, workload or catalog file (or a command-line value) is invalid. Raised
    while reading and checking input, before any emulated ioctl. Exit code 3."""

    kind: ClassVar[ErrorKind] = "spec"


class SpecErrors(SpecError):
    """Several independent errors of one file (different entries, sections or keys), raised
    once the whole file has been checked. Reads as its first error; `all()` lists every one."""

    def __init__(self, errors: list[SpecError]) -> None:
        first = errors[0]
        super().__init__(first.message, loc=first.loc, path=first.path, hint=first.hint)
        self.errors = [e for err in errors for e in err.all()]

    def all(self) -> list[KvmpmuError]:
        return list(self.errors)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class GuestError(KvmpmuError):
    """The guest workload could not go on: a CPU-emulated guest faulted or ran out of its
    instruction budget, or its program cannot be loaded. Exit code 5."""

    kind: ClassVar[ErrorKind] = "guest"


class OutputError(KvmpmuError):
    """Output could not be written: a full disk, a closed or unwritable file, a missing
    folder. Raised by the CLI's writers. Exit code 74."""

    kind: ClassVar[ErrorKind] = "output"


def errno_name(value: int) -> str:
    return _errno.errorcode.get(value, str(value))


class KvmError(KvmpmuError):
    """An emulated ioctl failed: carries the errno the kernel would set. Raised by the emulated
    kernel (`kvmpmu/kvm/`); the VMM turns it into a KvmCallError when nobody expected it."""

    kind: ClassVar[ErrorKind] = "kvm"

    def __init__(self, errno: int, reason: str = "") -> None:
        self.errno = errno
        self.reason = reason
        text = errno_name(errno) + (f": {reason}" if reason else "")
        super().__init__(text)


class KvmCallError(KvmpmuError):
    """A KVM call the VMM made failed and the spec did not expect it: the VMM stops there, as
    kvmtool's die_perror() would. Carries the ioctl, its attribute, the vCPU (None for a VM
    or system call), the errno and the spec location that caused the call. Exit code 4."""

    kind: ClassVar[ErrorKind] = "kvm"

    def __init__(self, ioctl: str, attr: str | None, vcpu: int | None, errno: int | None,
                 reason: str = "", *, loc: SourceLoc | None = None, path: str | None = None,
                 hint: str | None = None) -> None:
        self.ioctl = ioctl
        self.attr = attr
        self.vcpu = vcpu
        self.errno = errno
        self.reason = reason
        super().__init__(self._text(), loc=loc, path=path, hint=hint)

    @property
    def call(self) -> str:
        """`KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_PMU_V3_FILTER) on vcpu0`."""
        where = f" on vcpu{self.vcpu}" if self.vcpu is not None else ""
        return f"{self.ioctl}({self.attr or ''}){where}"

    @property
    def errno_name(self) -> str | None:
        return errno_name(self.errno) if self.errno is not None else None

    def _text(self) -> str:
        return f"{self.call} failed: {self.errno_name}" + (f": {self.reason}" if self.reason
                                                           else "")

    def details(self) -> dict[str, Any]:
        return {"call": {"ioctl": self.ioctl, "attr": self.attr, "vcpu": self.vcpu,
                         "errno": self.errno_name}}


class FailEntryError(KvmCallError):
    """KVM_RUN returned 0 with exit reason KVM_EXIT_FAIL_ENTRY: the vCPU could not enter the
    guest. `hardware_reason` names the cause (KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED: the vCPU
    thread runs on a physical CPU `cpu` outside the VM's PMU); the location is the spec's
    `vm.cpus`, else its `vm.pmu`. There is no errno. Exit code 4."""

    def __init__(self, vcpu: int, hardware_reason: str, cpu: int | None, *,
                 loc: SourceLoc | None = None, path: str | None = None,
                 hint: str | None = None) -> None:
        self.hardware_reason = hardware_reason
        self.cpu = cpu
        super().__init__("KVM_RUN", None, vcpu, None, loc=loc, path=path, hint=hint)

    def _text(self) -> str:
        where = f" on physical CPU {self.cpu}" if self.cpu is not None else ""
        return (f"KVM_RUN on vcpu{self.vcpu}: exit reason KVM_EXIT_FAIL_ENTRY{where} "
                f"(hardware_entry_failure_reason {self.hardware_reason})")

    def details(self) -> dict[str, Any]:
        out = super().details()
        out["call"].update({"exit_reason": "KVM_EXIT_FAIL_ENTRY",
                            "hardware_entry_failure_reason": self.hardware_reason,
                            "cpu": self.cpu})
        return out


class RejectedError(KvmpmuError):
    """The emulated kernel rejects what a spec asks for, so an analysis (compile, explain,
    diff) cannot go on: names the entry the kernel rejects. Exit code 4."""

    kind: ClassVar[ErrorKind] = "kvm"


class BackendLimitError(KvmpmuError):
    """What the chosen backend cannot do: a workload step a real CPU cannot make (`execute`'s
    synthetic events) on the kvm backend. Found before any ioctl. Exit code 2, as a command
    line that asks for something impossible."""

    kind: ClassVar[ErrorKind] = "usage"


class KvmUnavailable(KvmpmuError):
    """The kvm backend cannot run here: no /dev/kvm (or no permission to open it), or not an
    arm64 host. Exit code 69."""

    kind: ClassVar[ErrorKind] = "unavailable"
