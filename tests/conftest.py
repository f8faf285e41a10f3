"""Suite-wide settings: property tests judge values, never time (machines here are noisy)."""

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("kvmpmu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kvmpmu")


@pytest.fixture(scope="module")
def qemu() -> None:
    """The real-kernel tests need QEMU: a failure in CI (which installs it), else a skip."""
    if shutil.which("qemu-system-aarch64") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("qemu-system-aarch64 is missing in CI (.ci/run installs qemu-system-arm)")
        pytest.skip("qemu-system-aarch64 is not installed (apt-get install qemu-system-arm)")
