"""Boot Debian's arm64 kernels under QEMU and run kvmpmu inside, against the real /dev/kvm.

Not part of the installed kvmpmu package: a test harness run from the checkout.

    import realkvm
    for boot in realkvm.run_kvmpmu(["show-pmceid", "--json"], kernels=["6.1"]):
        print(boot.kernel, boot.config, boot.uname_r, boot.exit_status, boot.stdout_json())
"""

from realkvm.errors import RealKvmError
from realkvm.fetch import fetch
from realkvm.initramfs import GUEST_PROBE as PROBE
from realkvm.initramfs import GuestFile
from realkvm.kernels import PROFILES
from realkvm.machine import CONFIGS
from realkvm.runner import BootResult, PayloadResult, probe, run, run_kvmpmu, run_series

__all__ = [
    "CONFIGS",
    "PROFILES",
    "PROBE",
    "BootResult",
    "PayloadResult",
    "GuestFile",
    "RealKvmError",
    "fetch",
    "probe",
    "run",
    "run_kvmpmu",
    "run_series",
]
