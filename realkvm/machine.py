"""The emulated arm64 machine: QEMU's virt board starting the kernel at EL2, so /dev/kvm works.

One QEMU process per boot, single CPU (TCG runs one vCPU per host thread anyway), no network.
A boot that outlives its timeout is killed: it is that boot's failure, never a hung job.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-aarch64"
MACHINE = "virt,virtualization=on,gic-version=3"
MEMORY_MIB = 1024
# rdinit: our /init in the initramfs; panic=-1 with -no-reboot: a dead PID 1 ends QEMU at once;
# quiet: fewer kernel lines between the result's lines (init silences the rest).
KERNEL_ARGS = ("console=ttyAMA0", "rdinit=/init", "panic=-1", "quiet")


@dataclass(frozen=True)
class CpuConfig:
    """A host CPU for the guest kernel, and how KVM comes up on it."""

    name: str
    cpu: str
    kernel_args: tuple[str, ...]


CONFIGS = {
    c.name: c
    for c in (
        CpuConfig("max-vhe", "max,pauth-impdef=on", ()),
        CpuConfig("max-nvhe", "max,pauth-impdef=on", ("kvm-arm.mode=nvhe",)),
        # ARMv8.0 (PMUVer 1): no VHE, so KVM is nVHE by itself
        CpuConfig("a57-nvhe", "cortex-a57", ()),
    )
}


def qemu_command(
    config: CpuConfig, vmlinuz: Path, initramfs: Path, guest_env: dict[str, str], qemu: str = QEMU
) -> list[str]:
    """The command line of one boot; the kernel hands `guest_env` (NAME=value arguments it
    does not know) to /init as its environment."""
    append = [*KERNEL_ARGS, *config.kernel_args, *(f"{k}={v}" for k, v in guest_env.items())]
    return [
        qemu, "-M", MACHINE, "-cpu", config.cpu, "-smp", "1", "-m", str(MEMORY_MIB),
        "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", str(vmlinuz), "-initrd", str(initramfs), "-append", " ".join(append),
    ]  # fmt: skip


@dataclass(frozen=True)
class Boot:
    """What one QEMU process left: its console, exit status and wall time."""

    console: str
    returncode: int | None
    seconds: float
    timed_out: bool


def boot(command: list[str], timeout: float) -> Boot:
    """Run QEMU to power-off, or kill it after `timeout` seconds."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        timed_out = True
    return Boot(
        output.decode("utf-8", "replace"),
        None if timed_out else process.returncode,
        round(time.monotonic() - started, 2),
        timed_out,
    )
