"""Scenarios (`vmm:`): the shipped ones pass on the kernels they name; the format's errors name
the item; the call log and the JSON say what the issue asks."""

import json
from pathlib import Path

import pytest
import yaml

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import ROOT, run_cli

SCENARIOS = sorted((ROOT / "configs" / "scenarios").glob("*.yaml"))
CASES = [(path.name, kernel) for path in SCENARIOS
         for kernel in yaml.safe_load(path.read_text())["kernels"]]


def run_json(*args: str) -> tuple[int, dict]:
    result = run_cli("run", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def test_at_least_twelve_scenarios_are_shipped_each_saying_what_it_shows():
    assert len(SCENARIOS) >= 12
    for path in SCENARIOS:
        assert path.read_text().startswith("# "), path.name


@pytest.mark.parametrize("name,kernel", CASES)
def test_shipped_scenario_passes_on_the_kernels_it_names(name, kernel):
    code, doc = run_json("--scenario", f"configs/scenarios/{name}", "--kernel", kernel)
    failed = [e for e in doc["expectations"] if not e["passed"]]
    assert code == 0 and doc["ok"], (failed, doc["error"])
    assert doc["expectations"]


def test_a_scenario_outside_its_kernels_is_judged_with_a_warning():
    """late-filter-ebusy.yaml expects 5.18's EBUSY; 5.10 accepts the late FILTER (§6)."""
    code, doc = run_json("--scenario", "configs/scenarios/late-filter-ebusy.yaml",
                         "--kernel", "5.10")
    assert code == ExitCode.EXPECTATION_FAILED and not doc["ok"]
    assert doc["warnings"] == ["configs/scenarios/late-filter-ebusy.yaml: warning: its "
                               "expectations are written for kernels 6.1, 6.6, 6.12, latest; "
                               "judged on 5.10 anyway"]
    _, inside = run_json("--scenario", "configs/scenarios/late-filter-ebusy.yaml",
                         "--kernel", "6.1")
    assert inside["warnings"] == []


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return str(path)


def test_the_call_log_uses_the_kernels_names_and_records_values_and_exits(tmp_path):
    path = write(tmp_path, """
vcpus:
  0: [{exit: {}}]
vmm:
  - vgic: create
  - create_vcpus: 2
  - vcpu_init: {vcpu: 0}
  - vgic: init
  - set_irq: {vcpu: 0, irq: 23}
  - get_irq: {vcpu: 0, expect_value: 23}
  - {pmu_init: {vcpu: 0}, expect_errno: null}
  - run: {vcpu: 0}
  - run: {vcpu: 0}
  - run: {vcpu: 0}
""")
    code, doc = run_json("--scenario", path)
    assert code == 0
    calls = [(c["ioctl"], c["attr"], c["vcpu"]) for c in doc["ioctls"]]
    assert calls[:4] == [("KVM_CREATE_DEVICE", "VGIC_V3", None), ("KVM_CREATE_VCPU", None, 0),
                         ("KVM_CREATE_VCPU", None, 1), ("KVM_ARM_VCPU_INIT", None, 0)]
    assert calls[4] == ("KVM_SET_DEVICE_ATTR", "CTRL_INIT", None)
    get = doc["ioctls"][6]
    assert get["ioctl"] == "KVM_GET_DEVICE_ATTR" and get["value"] == "0x17"
    assert doc["ioctls"][7]["expected"] is None  # expect_errno: null beside the call key
    runs = [c for c in doc["ioctls"] if c["ioctl"] == "KVM_RUN"]
    assert len(runs) == 3  # exactly one KVM_RUN per run item
    assert [r["exit"]["mmio"]["addr"] for r in runs] == ["0x9000010", "0x9000008", "0x9000008"]
    assert runs[0]["exit"]["reason"] == "MMIO" and runs[0]["exit"]["mmio"]["len"] == 8


def test_a_mid_run_vmm_step_is_served_inside_one_kvm_run(tmp_path):
    path = write(tmp_path, """
vcpus:
  0:
    - vmm: {filter: {deny: CPU_CYCLES}, expect_errno: EBUSY}
vmm:
  - vgic: create
  - create_vcpus: 1
  - vcpu_init: {vcpu: 0}
  - vgic: init
  - set_irq: {vcpu: 0, irq: 23}
  - pmu_init: {vcpu: 0}
  - run: {vcpu: 0}
""")
    code, doc = run_json("--scenario", path)
    assert code == 0, doc["error"]
    kinds = [c["ioctl"] for c in doc["ioctls"]][-2:]
    assert kinds == ["KVM_RUN", "KVM_SET_DEVICE_ATTR"]
    assert doc["ioctls"][-1]["errno"] == "EBUSY"
    assert doc["ioctls"][-2]["exit"]["mmio"]["addr"] == "0x9000008"


def test_a_failing_call_without_expectation_stops_with_exit_4(tmp_path):
    path = write(tmp_path, "vmm:\n  - create_vcpus: 1\n  - set_irq: {vcpu: 0, irq: 23}\n"
                           "  - run: {vcpu: 0}\n")
    code, doc = run_json("--scenario", path)
    assert code == ExitCode.KVM_CALL_FAILED
    assert doc["ioctls"][-1]["ioctl"] == "KVM_SET_DEVICE_ATTR"  # nothing after it
    assert doc["error"]["location"].endswith(":3:5")


def test_a_failed_expectation_is_exit_1_and_the_scenario_goes_on(tmp_path):
    path = write(tmp_path, "vmm:\n  - create_vcpus: 1\n"
                           "  - set_irq: {vcpu: 0, irq: 23, expect_errno: EBUSY}\n"
                           "  - vcpu_init: {vcpu: 0}\n")
    code, doc = run_json("--scenario", path)
    assert code == ExitCode.EXPECTATION_FAILED
    assert doc["expectations"][0]["actual"] == "ENODEV"
    assert doc["ioctls"][-1]["ioctl"] == "KVM_ARM_VCPU_INIT"


@pytest.mark.parametrize("text,where,message", [
    ("vmm:\n  - run: {vcpu: 0}\n", "2:17", "has not been created"),
    ("vmm:\n  - vgic: init\n", "2:11", "needs an earlier vgic: create"),
    ("vmm:\n  - crate_vcpus: 1\n", "2:5", "did you mean 'create_vcpus'"),
    ("vmm:\n  - {create_vcpus: 1, run: {vcpu: 0}}\n", "2:5", "exactly one call"),
    ("vmm:\n  - create_vcpus: 1\n  - get_one_reg: {vcpu: 0, reg: PMCRR_EL0}\n", "3:33",
     "PMCR_EL0"),
    ("vmm:\n  - create_vcpus: 1\n  - get_one_reg: {vcpu: 0, reg: PMEVCNTR0_EL0}\n", "3:5",
     "not modelled"),
    ("vmm:\n  - create_vcpus: 1\n  - {has: {vcpu: 0, attr: IRQ, expect_errno: null}, "
     "expect_errno: ENXIO}\n", "3:", "given twice"),
    ("vmm:\n  - create_vcpus: 1\n  - set_pmu: {vcpu: 0, pmu: bigg}\n", "3:5", "no host PMU"),
    ("vmm:\n  - create_vcpus: 1\n  - filter: {vcpu: 0, action: deny, base_event: 1, "
     "nevents: 1, pad: [1, 2]}\n", "3:", "pad is three bytes"),
])
def test_scenario_errors_name_the_item(tmp_path, text, where, message):
    result = run_cli("run", "--scenario", write(tmp_path, text))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert f"s.yaml:{where}" in result.stderr and message in result.stderr


def test_scenario_option_requires_a_vmm_section():
    result = run_cli("run", "--scenario", "configs/workload-basic.yaml")
    assert result.exit_code == ExitCode.INVALID_INPUT and "vmm:" in result.stderr


def test_spec_filter_entries_with_expect_errno_go_on(tmp_path):
    spec = tmp_path / "f.yaml"
    spec.write_text("filters:\n  - {action: allow, base_event: 0xfff0, nevents: 0x20, "
                    "expect_errno: EINVAL}\n  - deny: CPU_CYCLES\n")
    code, doc = run_json("--filter", str(spec))
    assert code == 0
    filters = [c for c in doc["ioctls"] if c["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER"
               and c["ioctl"] == "KVM_SET_DEVICE_ATTR"]
    assert [f["errno"] for f in filters] == ["EINVAL", None]
    assert doc["expectations"] == []


def test_a_step_no_real_cpu_can_make_is_refused_before_the_kvm_backends_first_call():
    """`execute` makes synthetic events: on the kvm backend each vCPU's steps run as a real
    guest program, so validation refuses the workload at that step (exit 2, a usage error),
    while the model runs it."""
    from kvmpmu.cli.exitcodes import error_code
    from kvmpmu.spec.filterspec import load_filter_spec
    from kvmpmu.spec.workload import load_workload
    from kvmpmu.vmm.scriptprog import ScriptCompileError
    from kvmpmu.vmm.session import profile_for, validate

    spec = load_filter_spec(str(ROOT / "configs" / "deny-shared-cache.yaml"))
    workload = load_workload(str(ROOT / "configs" / "workload-basic.yaml"),
                             catalog=spec.host.catalog())
    validate(spec, profile_for(spec, None), workload, emulated=True)
    with pytest.raises(ScriptCompileError) as refused:
        validate(spec, profile_for(spec, None), workload, emulated=False)
    assert (refused.value.loc.line, refused.value.path) == (13, "execute")
    assert error_code(refused.value) == ExitCode.USAGE
