"""Debian's real arm64 kernels under QEMU (make realkvm): what /dev/kvm answers inside.

Expected values come from the kernel's history (kvm-pmu-semantics.md §6-7): SET_PMU (attr 3)
arrived in 5.18, SET_NR_COUNTERS (attr 4) in 6.16, `kvm-arm.mode=nvhe` in 5.11.
"""

import errno
import json
import re
import subprocess
import sys

import pytest

from tests.realkvm_payloads import CHECKOUT, IDS, INSIDE_ARGS, ONE_BOOT, PAIRS, payload

pytestmark = [pytest.mark.realkvm, pytest.mark.allowed_skip]  # no QEMU: skip (CI fails)

SERIES = {"5.10": (5, 10), "6.1": (6, 1), "6.12": (6, 12)}
LATEST_FROM = (6, 16)  # kvmpmu's "latest" profile
MODE_LINE = re.compile(r"kvm \[\d+\]: (VHE|Hyp(?: nVHE)?) mode initialized")


@pytest.fixture
def boot(real_boots, request):
    kernel, config = request.param
    result = real_boots[(kernel, config)]
    probe = payload(result, "probe")
    assert probe.exit_status == 0, probe.stderr
    return kernel, config, result, probe.stdout_json()


def by_pair(test):
    return pytest.mark.parametrize("boot", PAIRS, ids=IDS, indirect=True)(test)


def series(version: str) -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", version).groups()
    return int(major), int(minor)


@by_pair
def test_kernel_is_of_the_profiles_series(boot):
    kernel, _, result, doc = boot
    assert doc["uname_r"] == result.uname_r
    for version in (result.uname_r, result.package_version):
        if kernel == "latest":
            assert series(version) >= LATEST_FROM
        else:
            assert series(version) == SERIES[kernel]


@by_pair
def test_payload_is_told_its_boot(boot):
    kernel, config, _, doc = boot
    assert doc["boot"] == {"REALKVM_KERNEL": kernel, "REALKVM_CONFIG": config}


@by_pair
def test_kvm_api_and_pmu_capabilities(boot):
    _, _, _, doc = boot
    assert doc["api_version"] == 12
    assert doc["capabilities"] == {"KVM_CAP_ARM_PMU_V3": 1, "KVM_CAP_VCPU_ATTRIBUTES": 1}


@by_pair
def test_vcpu_init_with_the_pmu_feature_succeeds(boot):
    _, _, _, doc = boot
    assert doc["vcpu_init"]["errno"] == 0


@by_pair
def test_pmu_attributes_present_by_kernel(boot):
    kernel, _, _, doc = boot
    expected = {
        "KVM_ARM_VCPU_PMU_V3_IRQ": 0,
        "KVM_ARM_VCPU_PMU_V3_INIT": 0,
        "KVM_ARM_VCPU_PMU_V3_FILTER": 0,
        "KVM_ARM_VCPU_PMU_V3_SET_PMU": errno.ENXIO if kernel == "5.10" else 0,
        "KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS": 0 if kernel == "latest" else errno.ENXIO,
    }
    assert {name: a["errno"] for name, a in doc["pmu_attributes"].items()} == expected


@by_pair
def test_kvm_runs_in_the_configured_mode(boot):
    kernel, config, _, doc = boot
    found = [MODE_LINE.search(line) for line in doc["kvm_log"]]
    modes = [m.group(1) for m in found if m]
    # 5.10 predates kvm-arm.mode: on a VHE-capable CPU it stays in VHE
    vhe = config == "max-vhe" or (config == "max-nvhe" and kernel == "5.10")
    assert len(modes) == 1
    assert (modes[0] == "VHE") == vhe


@by_pair
def test_qemus_pmu_is_the_perf_event_source(boot):
    _, _, _, doc = boot
    pmus = {name: s for name, s in doc["event_sources"].items() if name.startswith("armv8_pmuv3")}
    assert len(pmus) == 1
    (pmu,) = pmus.values()
    assert pmu["cpus"] == "0"  # -smp 1
    assert pmu["events"]["cpu_cycles"] == "event=0x0011"
    assert pmu["type"] not in (0, 1, 2, 3, 4, 5)  # a dynamic perf type, not a fixed one


@pytest.fixture(scope="module")
def on_the_host():
    done = subprocess.run([sys.executable, "-m", "kvmpmu", *INSIDE_ARGS], cwd=CHECKOUT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("boot", [tuple(ONE_BOOT[0].split("-", 1))], indirect=True)
def test_kvmpmu_inside_answers_as_on_the_host(boot, on_the_host):
    """The guest's arm64 Python, wheels and the byte-compiled package give the host's JSON."""
    inside = payload(boot[2], "inside")
    assert (inside.exit_status, inside.stderr) == (0, "")
    assert inside.stdout_json() == on_the_host
