"""The machines a command runs on: the emulated kernel, or the real /dev/kvm through
`kvmpmu.vmm.kvm_backend.kvm_machine()`, imported only when asked for."""

from __future__ import annotations

from typing import Any

import click

BACKENDS = ("emulated", "kvm", "both")
KVM_BACKEND_MODULE = "kvmpmu.vmm.kvm_backend"

backend_option = click.option(
    "--backend", type=click.Choice(BACKENDS), default="emulated", show_default=True,
    help="emulated: the model; kvm: the real /dev/kvm (arm64 only); both: run on both and "
    "report every difference (as `kvmpmu conform`).")


def kvm_machine(timeout: float | None = None) -> Any:
    """The real machine; KvmUnavailable (exit 69) where it cannot run, or where this kvmpmu
    has no kvm backend at all. `timeout`: seconds a KVM_RUN may take (else the backend's)."""
    import importlib

    from kvmpmu.errors import KvmUnavailable

    try:
        module = importlib.import_module(KVM_BACKEND_MODULE)
    except ModuleNotFoundError as err:
        if err.name != KVM_BACKEND_MODULE:
            raise
        raise KvmUnavailable("the kvm backend cannot run here: this kvmpmu has no kvm "
                             "backend") from None
    return module.kvm_machine(timeout) if timeout else module.kvm_machine()
