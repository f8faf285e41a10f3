"""The exit codes scripts rely on. This table is the only place they are defined."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    EXPECTATION_FAILED = 1  # an expectation failed (or lint --strict found something; conform
    #                         found a difference)
    USAGE = 2  # bad command line (click's own convention)
    INVALID_INPUT = 3  # invalid spec, workload, catalog or command-line value
    KVM_CALL_FAILED = 4  # an emulated KVM call failed that the spec did not expect
    GUEST_FAULT = 5  # a CPU-emulated guest faulted or did not end within its budget
    UNAVAILABLE = 69  # the kvm backend cannot run here: no /dev/kvm or not arm64 (EX_UNAVAILABLE)
    INTERNAL = 70  # a bug in kvmpmu (EX_SOFTWARE)
    INTERRUPTED = 130
