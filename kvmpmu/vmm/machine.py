"""Where a VM runs: a kernel (the emulated one, or /dev/kvm) on a host, at a kernel profile."""

from __future__ import annotations

from typing import Protocol

from kvmpmu.kvm.host import Host
from kvmpmu.kvm.profiles import KernelProfile
from kvmpmu.vmm.backend import Backend


class Machine(Protocol):
    name: str  # the --backend value: "emulated" or "kvm"
    release: str  # the kernel's release (`uname -r` on kvm; the profile's name when emulated)
    profile: KernelProfile
    host: Host

    def backend(self, vcpu_cpus: tuple[int, ...]) -> Backend:
        """A fresh VM; its vCPU threads run on `vcpu_cpus` (round robin), where it can say."""
        ...


class EmulatedMachine:
    name = "emulated"

    def __init__(self, host: Host, profile: KernelProfile, release: str | None = None) -> None:
        self.host = host
        self.profile = profile
        self.release = release or profile.name

    def backend(self, vcpu_cpus: tuple[int, ...]) -> Backend:
        from kvmpmu.vmm.emulated_kernel import EmulatedBackend

        backend = EmulatedBackend(self.host, self.profile)
        backend.vcpu_cpus = vcpu_cpus
        return backend
