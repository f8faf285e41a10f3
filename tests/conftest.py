"""Suite-wide settings: property tests judge values, never time (machines here are noisy); and
a skip fails the run unless the test is marked `allowed_skip` (a skip hides a test that did
not run: Arm's data missing, say)."""

from __future__ import annotations

import os
import shutil
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("kvmpmu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kvmpmu")

_UNEXPECTED_SKIPS: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("allowed_skip") is None:
        _UNEXPECTED_SKIPS.append(item.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _UNEXPECTED_SKIPS and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    if _UNEXPECTED_SKIPS:
        terminalreporter.write_line(
            f"FAILED: {len(_UNEXPECTED_SKIPS)} test(s) skipped without `allowed_skip`: "
            + ", ".join(_UNEXPECTED_SKIPS), red=True)


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

    results = realkvm.run_series(list(payloads.PAYLOADS.values()),
                                 out=tmp_path_factory.mktemp("realkvm"),
                                 files=payloads.guest_files(tmp_path_factory.mktemp("files")))
    for boot in results:
        for done in boot.series() if boot.ok else ():
            if done.retried is not None:
                first = done.retried.strip()
                warnings.warn(f"{boot.kernel}-{boot.config}: {' '.join(done.argv[2:])} ran "
                              f"twice, QEMU's first-fetch abort ended the first run: {first}",
                              stacklevel=1)
    return {(r.kernel, r.config): r for r in results}
