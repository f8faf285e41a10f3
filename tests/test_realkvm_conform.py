"""The model against Debian's real arm64 kernels under QEMU (make realkvm).

`kvmpmu conform --corpus` runs every shipped scenario and spec, every PMU attribute in every
pair of vCPU states, each filter rule and the counting of QEMU's events on /dev/kvm and on the
model configured from the same host: in every boot they must agree on every case. And the
user's own command, `kvmpmu run --backend kvm`, applies a shipped spec on the real kernel.
"""

from pathlib import Path

import pytest

import realkvm

pytestmark = pytest.mark.realkvm

CHECKOUT = Path(__file__).resolve().parent.parent
PAIRS = [(k, c) for k in realkvm.PROFILES for c in realkvm.CONFIGS]
IDS = [f"{k}-{c}" for k, c in PAIRS]
SHIPPED = {f"{folder}/{path.stem}" for folder in ("scenario", "spec")
           for path in (CHECKOUT / "kvmpmu" / "data" / f"{folder}s").glob("*.yaml")}
FAMILIES = ("scenario", "spec", "matrix", "filter", "counting")


@pytest.fixture(scope="module")
def corpus_runs(qemu, tmp_path_factory):
    results = realkvm.run_kvmpmu(["conform", "--corpus", "--json"],
                                 out=tmp_path_factory.mktemp("conform"))
    return {(r.kernel, r.config): r for r in results}


@pytest.fixture
def corpus(corpus_runs, request):
    kernel, config = request.param
    result = corpus_runs[(kernel, config)]
    assert result.outcome == "completed", result.error
    return kernel, result, result.stdout_json()


def by_pair(test):
    return pytest.mark.parametrize("corpus", PAIRS, ids=IDS, indirect=True)(test)


@by_pair
def test_model_and_kernel_agree_on_every_case(corpus):
    _, result, doc = corpus
    differing = {c["name"]: c["differences"] for c in doc["cases"] if not c["ok"]}
    assert differing == {}
    assert doc["summary"]["differ"] == 0 and doc["ok"] is True
    assert (result.exit_status, result.stderr) == (0, "")


@by_pair
def test_corpus_is_judged_at_the_kernels_own_profile(corpus):
    kernel, result, doc = corpus
    assert doc["release"] == result.uname_r
    assert doc["profile"] == kernel
    assert doc["backends"] == {"real": "kvm", "emulated": "emulated"}


@by_pair
def test_corpus_covers_every_shipped_file_and_every_family(corpus):
    _, _, doc = corpus
    names = [c["name"] for c in doc["cases"]]
    assert len(names) == len(set(names)) == doc["summary"]["cases"]
    assert {n for n in names if n.split("/")[0] in ("scenario", "spec")} == SHIPPED
    for family in FAMILIES:
        assert any(n.startswith(f"{family}/") for n in names), family


CPU_CYCLES, L3D_CACHE_REFILL, SW_INCR = 0x11, 0x2A, 0x00  # Arm's numbers (arm-events.md)
POLICY = "filters:\n  - deny: [CPU_CYCLES, L3D_CACHE_REFILL]\n"


def test_run_applies_a_policy_on_the_real_kernel(qemu, tmp_path):
    """QEMU's PMU implements CPU_CYCLES under TCG: denied, the guest neither sees nor counts
    it, on an event counter or on the cycle counter (31)."""
    spec = tmp_path / "deny-cycles.yaml"
    spec.write_text(POLICY)
    (boot,) = realkvm.run_kvmpmu(
        ["run", "--backend", "kvm", "--filter", "/deny-cycles.yaml", "--json"],
        kernels=["6.12"], configs=["max-vhe"], out=tmp_path,
        files=[realkvm.GuestFile(spec, "/deny-cycles.yaml")])
    assert boot.outcome == "completed", boot.error
    assert (boot.exit_status, boot.stderr) == (0, "")
    doc = boot.stdout_json()
    assert (doc["backend"], doc["release"], doc["error"]) == ("kvm", boot.uname_r, None)
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
