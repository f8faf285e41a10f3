"""The model against Debian's real arm64 kernels under QEMU (make realkvm).

`kvmpmu conform --corpus` runs every shipped scenario and spec, every PMU attribute in every
pair of vCPU states, each filter rule and the counting of QEMU's events on /dev/kvm and on the
model configured from the same host: in every boot they must agree on every case. And the
user's own command, `kvmpmu run --backend kvm`, applies a policy on the real kernel.
"""

import pytest

from tests.realkvm_payloads import (
    CHECKOUT,
    CORPUS_IDS,
    CORPUS_PAIRS,
    IDS,
    ONE_BOOT,
    PAIRS,
    REGS_REPORTED,
    payload,
)

pytestmark = [pytest.mark.realkvm, pytest.mark.allowed_skip]  # no QEMU: skip (CI fails)

SHIPPED = {f"{folder}/{path.stem}" for folder in ("scenario", "spec")
           for path in (CHECKOUT / "kvmpmu" / "data" / f"{folder}s").glob("*.yaml")}
FAMILIES = ("scenario", "spec", "matrix", "filter", "counting")


@pytest.fixture
def corpus(real_boots, request):
    kernel, config = request.param
    boot = real_boots[(kernel, config)]
    return kernel, boot, payload(boot, "corpus")


@pytest.fixture
def policy(real_boots, request):
    boot = real_boots[request.param]
    return boot, payload(boot, "policy")


def by_pair(fixture, pairs=PAIRS, ids=IDS):
    return lambda test: pytest.mark.parametrize(fixture, pairs, ids=ids, indirect=True)(test)


@by_pair("corpus", CORPUS_PAIRS, CORPUS_IDS)
def test_model_and_kernel_agree_on_every_case(corpus):
    _, _, result = corpus
    doc = result.stdout_json()
    differing = {c["name"]: c["differences"] for c in doc["cases"] if not c["ok"]}
    assert differing == {}
    assert doc["summary"]["differ"] == 0 and doc["ok"] is True
    assert (result.exit_status, result.stderr) == (0, "")


@by_pair("corpus", CORPUS_PAIRS, CORPUS_IDS)
def test_corpus_is_judged_at_the_kernels_own_profile(corpus):
    kernel, boot, result = corpus
    doc = result.stdout_json()
    assert doc["release"] == boot.uname_r
    assert doc["profile"] == kernel
    assert doc["backends"] == {"real": "kvm", "emulated": "emulated"}


@by_pair("corpus", CORPUS_PAIRS, CORPUS_IDS)
def test_corpus_covers_every_shipped_file_and_every_family(corpus):
    doc = corpus[2].stdout_json()
    names = [c["name"] for c in doc["cases"]]
    assert len(names) == len(set(names)) == doc["summary"]["cases"]
    assert {n for n in names if n.split("/")[0] in ("scenario", "spec")} == SHIPPED
    for family in FAMILIES:
        assert any(n.startswith(f"{family}/") for n in names), family


CPU_CYCLES, L3D_CACHE_REFILL, SW_INCR = 0x11, 0x2A, 0x00  # Arm's numbers (arm-events.md)


@by_pair("policy")
def test_run_applies_a_policy_on_the_real_kernel(policy):
    """QEMU's PMU implements CPU_CYCLES under TCG: denied (tests/realkvm_payloads.py), the
    guest neither sees nor counts it, on an event counter or on the cycle counter (31)."""
    boot, result = policy
    doc = result.stdout_json()
    assert (result.exit_status, doc["backend"], doc["release"], doc["error"]) == (
        0, "kvm", boot.uname_r, None)
    (warning,) = doc["warnings"]  # the spec's host is a Neoverse-N1; QEMU's is not
    assert warning.startswith("/deny-cycles.yaml: warning: the spec's PMU armv8_pmuv3_0's CPU "
                              "is neoverse-n1, the real host's ")
    assert result.stderr == warning + "\n"
    filters = [c["args"] for c in doc["ioctls"] if c["ioctl"] == "KVM_SET_DEVICE_ATTR"
               and c["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER"]
    assert filters == [{"base_event": CPU_CYCLES, "nevents": 1, "action": 1},
                       {"base_event": L3D_CACHE_REFILL, "nevents": 1, "action": 1}]
    assert int(doc["host"]["pmceid0"], 16) >> CPU_CYCLES & 1
    (vcpu,) = doc["vcpus"]
    guest = int(vcpu["pmceid0"], 16)
    assert (guest >> CPU_CYCLES & 1, guest >> SW_INCR & 1) == (0, 1)
    cycles = [c for c in vcpu["counters"] if c["event"] == CPU_CYCLES]
    assert {c["counter"] for c in cycles} >= {31} and len(cycles) >= 2
    assert all(c["enabled"] and c["value"] == 0 for c in cycles)


def test_synthetic_events_are_refused_before_any_call(real_boots):
    """workload-basic.yaml's `execute` steps (line 13 the first) cannot run on a real CPU:
    exit 2 before the VM is made, naming the step."""
    result = payload(real_boots[tuple(ONE_BOOT[0].split("-", 1))], "synthetic")
    assert result.exit_status == 2
    error = result.stdout_json()["error"]
    assert (error["kind"], error["path"]) == ("usage", "execute")
    assert error["location"] == "/configs/workload-basic.yaml:13:7"
    assert "synthetic events" in error["message"] and result.stderr.startswith(
        error["location"])


def test_one_reg_and_presets_reach_a_guest_program_on_the_real_kernel(real_boots):
    """The scenario of tests/realkvm_payloads.py on /dev/kvm: the binary guest reports what
    the VMM's KVM_SET_ONE_REG and the workload's presets put in x0-x2, as on the model
    (tests/test_guest_vmm.py)."""
    result = payload(real_boots[tuple(ONE_BOOT[0].split("-", 1))], "regs")
    assert (result.exit_status, result.stderr) == (0, "")
    doc = result.stdout_json()
    assert doc["backend"] == "kvm" and doc["vcpus"][0]["reports"] == REGS_REPORTED
    (run,) = [c for c in doc["ioctls"] if c["ioctl"] == "KVM_RUN"]
    assert run["exit"]["reason"] == "MMIO" and all(e["passed"] for e in doc["expectations"])
