"""Suite-wide settings: property tests judge values, never time (machines here are noisy)."""

import os
import shutil
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("kvmpmu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kvmpmu")


@pytest.fixture(scope="session")
def qemu() -> None:
    """The real-kernel tests need QEMU: a failure in CI (which installs it), else a skip."""
    if shutil.which("qemu-system-aarch64") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("qemu-system-aarch64 is missing in CI (.ci/run installs qemu-system-arm)")
        pytest.skip("qemu-system-aarch64 is not installed (apt-get install qemu-system-arm)")


@pytest.fixture(scope="session")
def real_boots(qemu: None, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """Every (kernel, config) booted once, running every payload of tests/realkvm_payloads.py
    in turn (a boot costs more than most payloads)."""
    import realkvm
    from tests import realkvm_payloads as payloads

    results = realkvm.run_series(list(payloads.ARGVS.values()),
                                 out=tmp_path_factory.mktemp("realkvm"),
                                 files=payloads.guest_files(tmp_path_factory.mktemp("files")))
    return {(r.kernel, r.config): r for r in results}
