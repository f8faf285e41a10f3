"""The exit codes scripts rely on, and the one place outcomes and errors become them."""

from __future__ import annotations

from enum import IntEnum

from kvmpmu.errors import (
    BackendLimitError,
    GuestError,
    KvmCallError,
    KvmError,
    KvmpmuError,
    KvmUnavailable,
    OutputError,
    RejectedError,
    SpecError,
)
from kvmpmu.records import Record


class ExitCode(IntEnum):
    OK = 0
    EXPECTATION_FAILED = 1  # an expectation failed, lint found an error, diff or conform a
    #                         difference
    USAGE = 2  # bad command line (click's own convention)
    INVALID_INPUT = 3  # invalid spec, workload, catalog or command-line value
    KVM_CALL_FAILED = 4  # an emulated KVM call failed that the spec did not expect
    GUEST_FAULT = 5  # a CPU-emulated guest faulted or did not end within its budget
    UNAVAILABLE = 69  # the kvm backend cannot run here: no /dev/kvm or not arm64 (EX_UNAVAILABLE)
    INTERNAL = 70  # a bug in kvmpmu (EX_SOFTWARE)
    OUTPUT_FAILED = 74  # output could not be written (EX_IOERR)
    INTERRUPTED = 130
    STDOUT_CLOSED = 141  # the reader closed stdout (128 + SIGPIPE, as a shell reports it)


class UsageError(KvmpmuError):
    """A bad command line our own checks find (click finds the rest). Exit code 2."""

    kind = "usage"


class Outcome(Record):
    """What a command ended with, its report written: `failed` when an expectation failed,
    lint found an error or diff a difference; `errors` that the report already carries."""

    __slots__ = ("failed", "errors")

    def __init__(self, failed: bool = False, errors: tuple[KvmpmuError, ...] = ()) -> None:
        self.failed = failed
        self.errors = errors


OK = Outcome()

# Most specific first: a subclass must come before its base.
_ERROR_CODES: tuple[tuple[type[KvmpmuError], ExitCode], ...] = (
    (UsageError, ExitCode.USAGE),
    (BackendLimitError, ExitCode.USAGE),
    (OutputError, ExitCode.OUTPUT_FAILED),
    (KvmUnavailable, ExitCode.UNAVAILABLE),
    (KvmCallError, ExitCode.KVM_CALL_FAILED),
    (KvmError, ExitCode.KVM_CALL_FAILED),
    (RejectedError, ExitCode.KVM_CALL_FAILED),
    (GuestError, ExitCode.GUEST_FAULT),
    (SpecError, ExitCode.INVALID_INPUT),
    (KvmpmuError, ExitCode.INVALID_INPUT),
)


def error_code(err: KvmpmuError) -> ExitCode:
    return next(code for cls, code in _ERROR_CODES if isinstance(err, cls))


def outcome_code(outcome: Outcome) -> ExitCode:
    """The worst of the outcome's errors, else 1 for a failed verdict, else 0."""
    codes = [error_code(e) for e in outcome.errors]
    codes.append(ExitCode.EXPECTATION_FAILED if outcome.failed else ExitCode.OK)
    return max(codes)
