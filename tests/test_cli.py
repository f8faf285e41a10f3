"""The command line end to end: every shipped example, goldens, exit codes, README commands."""

import json
import re
import shlex

import pytest

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import ROOT, check_golden, run_cli

PAIRS = [
    ("deny-shared-cache", "workload-basic"),
    ("first-allow", "workload-default-policy"),
    ("cancel", "workload-cancel"),
    ("deny-chain-swincr", "workload-chain-swincr"),
    ("deny-cycles", "workload-cycle-counter"),
    ("deny-shared-cache", "workload-ebusy-after-run"),
]
SPECS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")
               if not p.stem.startswith("workload-"))


@pytest.mark.parametrize("spec,workload", PAIRS, ids=[w for _, w in PAIRS])
def test_every_example_pair_passes_its_expectations(spec, workload):
    result = run_cli("run", "--filter", f"configs/{spec}.yaml", "--workload",
                     f"configs/{workload}.yaml", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, doc["expectations"]
    assert doc["ok"] and doc["expectations"] and all(e["passed"] for e in doc["expectations"])


@pytest.mark.parametrize("spec", SPECS)
def test_every_example_spec_runs_with_the_default_workload(spec):
    result = run_cli("run", "--filter", f"configs/{spec}.yaml")
    assert result.exit_code == 0
    check_golden(f"run-{spec}.txt", result.stdout)


@pytest.mark.parametrize("spec", SPECS)
def test_every_example_spec_show_pmceid_json(spec):
    result = run_cli("show-pmceid", "--filter", f"configs/{spec}.yaml", "--json")
    assert result.exit_code == 0
    check_golden(f"pmceid-{spec}.json", result.stdout)


def test_run_json_golden_and_contract_fields():
    result = run_cli("run", "--filter", "configs/deny-shared-cache.yaml", "--workload",
                     "configs/workload-basic.yaml", "--json")
    check_golden("run-basic.json", result.stdout)
    doc = json.loads(result.stdout)
    assert {"schema", "ok", "ioctls", "vcpus", "expectations", "error"} <= set(doc)
    assert doc["schema"] == 1 and doc["error"] is None
    call = next(c for c in doc["ioctls"] if c["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER"
                and c["ioctl"] == "KVM_SET_DEVICE_ATTR")
    assert {"vcpu", "ioctl", "attr", "args", "errno"} <= set(call)
    assert set(call["args"]) == {"base_event", "nevents", "action"}
    vcpu = doc["vcpus"][0]
    assert re.fullmatch(r"0x[0-9a-f]{16}", vcpu["pmceid0"])
    assert [c["counter"] for c in vcpu["counters"]] == [0, 1, 2, 3, 4, 5, 31]
    counter = vcpu["counters"][0]
    assert {"counter", "event", "name", "enabled", "allowed", "value", "overflow"} <= set(counter)
    assert counter == {**counter, "event": 8, "name": "INST_RETIRED", "value": 1002000}
    assert vcpu["reads"][0] == {"register": "PMEVCNTR0_EL0", "value": 1002000}
    assert doc["expectations"][0]["expect"] == {"vcpu": 0, "counter": 0, "eq": 1002000}


def test_show_pmceid_json_contract():
    doc = json.loads(run_cli("show-pmceid", "--filter", "configs/first-allow.yaml",
                             "--json").stdout)
    assert doc["schema"] == 1
    assert (doc["host"]["pmceid0"], doc["host"]["pmceid1"]) == ("0x0f0ffe7fffffffff",
                                                               "0x00000077ffffffff")
    assert doc["host"]["pmu"]["name"] == "armv8_pmuv3_0" and doc["host"]["pmu"]["pmu_type"] == 8
    assert doc["guest"] == {"pmceid0": "0x0000000000000100", "pmceid1": "0x0000000000000000"}
    by_event = {e["event"]: e for e in doc["events"]}
    assert by_event[8]["visible"] and by_event[0x11]["hidden_by"] == "filter"
    assert len(doc["events"]) == 128


def test_undef_reads_are_reported_and_the_script_goes_on(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("vm: {counters: 2}\n")
    work = tmp_path / "w.yaml"
    work.write_text("vcpus:\n  all:\n    - read: [PMEVCNTR7_EL0, PMCR_EL0]\n"
                    "    - write: {PMEVTYPER3_EL0: 8}\n")
    doc = json.loads(run_cli("run", "--filter", str(spec), "--workload", str(work),
                             "--json").stdout)
    reads = doc["vcpus"][0]["reads"]
    assert reads[0] == {"register": "PMEVCNTR7_EL0", "undef": True}
    assert reads[1]["register"] == "PMCR_EL0" and reads[1]["value"] >> 11 & 0x1F == 2
    assert doc["vcpus"][0]["undefined"][-1] == {"register": "PMEVTYPER3_EL0", "access": "write"}


def test_repeated_reads_record_every_value_and_every_undef(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("vm: {counters: 2}\n")
    work = tmp_path / "w.yaml"
    work.write_text("vcpus:\n  all:\n    - repeat: {times: 3, steps: [{read: PMEVCNTR1_EL0}]}\n"
                    "    - repeat: {times: 2, steps: [{read: PMEVCNTR2_EL0}]}\n"
                    "    - read: [PMEVCNTR2_EL0, PMEVCNTR1_EL0]\n")
    doc = json.loads(run_cli("run", "--filter", str(spec), "--workload", str(work),
                             "--json").stdout)
    # consecutive identical reads are one record with a count
    reads = [(r["register"], r.get("undef", False), r.get("count", 1))
             for r in doc["vcpus"][0]["reads"]]
    assert reads == [("PMEVCNTR1_EL0", False, 3), ("PMEVCNTR2_EL0", True, 3),
                     ("PMEVCNTR1_EL0", False, 1)]
    assert doc["vcpus"][0]["undefined"] == [
        {"register": "PMEVCNTR2_EL0", "access": "read", "count": 3}]


def test_pmu_filter_kvmtool_syntax_matches_the_equivalent_spec():
    a = json.loads(run_cli("show-pmceid", "--pmu-filter", "A:0x11-0x11,D:0x30-0x3f",
                           "--json").stdout)
    b = json.loads(run_cli("show-pmceid", "--filter", "configs/kvmtool-example.yaml",
                           "--json").stdout)
    assert a["guest"] == b["guest"] == {"pmceid0": "0x0000000000020000",
                                        "pmceid1": "0x0000000000000000"}


def test_kernel_option_overrides_the_spec():
    result = run_cli("run", "--filter", "configs/deny-chain-swincr.yaml", "--workload",
                     "configs/workload-chain-swincr.yaml", "--kernel", "6.1", "--json")
    doc = json.loads(result.stdout)
    assert doc["kernel"] == "6.1" and result.exit_code == 1
    # 6.1 has 32-bit event counters, so counter 0 wraps to 1 instead of reaching 0x100000001
    assert doc["expectations"][0]["actual"] == 1


# --- exit codes ---------------------------------------------------------------------------

def test_exit_code_table_is_pinned():
    assert [(c.name, int(c)) for c in ExitCode] == [
        ("OK", 0), ("EXPECTATION_FAILED", 1), ("USAGE", 2), ("INVALID_INPUT", 3),
        ("KVM_CALL_FAILED", 4), ("GUEST_FAULT", 5), ("UNAVAILABLE", 69), ("INTERNAL", 70),
        ("OUTPUT_FAILED", 74), ("INTERRUPTED", 130), ("STDOUT_CLOSED", 141)]


def test_exit_1_when_an_expectation_fails(tmp_path):
    work = tmp_path / "w.yaml"
    work.write_text("vcpus: {all: []}\nexpect:\n  - {counter: cycle, lt: 5}\n")
    result = run_cli("run", "--workload", str(work))
    assert result.exit_code == 1
    assert "FAIL" in result.stdout


def test_exit_2_on_usage_errors():
    assert run_cli("run", "--bogus").exit_code == 2
    assert run_cli("run", "--cpu", "cortex-a53", "--events-db", "x.json").exit_code == 2
    assert run_cli("run", "--kernel", "4.19").exit_code == 2


def test_exit_3_on_invalid_spec_with_location(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("filters:\n  - allow: [CPU_CYCLE]\n")
    result = run_cli("run", "--filter", str(spec))
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"{spec}:2:13: error: filters[0].allow[0]: unknown event 'CPU_CYCLE'")
    assert "hint: did you mean CPU_CYCLES" in result.stderr
    assert "Traceback" not in result.stderr


def test_exit_3_json_error_document(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("filters:\n  - {action: deny, base_event: 0x10000, nevents: 1}\n")
    result = run_cli("run", "--filter", str(spec), "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["kind"] == "spec"
    assert doc["error"]["location"] == f"{spec}:2:32"
    assert doc["error"]["path"] == "filters[0].base_event"


def test_exit_4_when_the_kernel_rejects_a_filter_and_the_call_log_is_kept(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("filters:\n  - {action: deny, base_event: 0xfff0, nevents: 0x20}\n")
    result = run_cli("run", "--filter", str(spec), "--json")
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["kind"] == "kvm"
    last = doc["ioctls"][-1]
    assert last["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER" and last["errno"] == "EINVAL"
    assert last["args"] == {"base_event": 0xFFF0, "nevents": 0x20, "action": 1}
    assert not any(c["ioctl"] == "KVM_RUN" for c in doc["ioctls"])  # the VMM stopped there
    text = run_cli("run", "--filter", str(spec))
    assert text.exit_code == 4 and "EINVAL" in text.stdout


def test_exit_70_on_internal_error_without_traceback(monkeypatch):
    from kvmpmu.vmm import execution

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(execution, "run_spec", boom)
    result = run_cli("run")
    assert result.exit_code == 70
    assert "internal error: RuntimeError: boom" in result.stderr
    assert "Traceback" not in result.stderr


def test_exit_130_on_interrupt(monkeypatch):
    from kvmpmu.vmm import execution

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(execution, "run_spec", interrupted)
    assert run_cli("run").exit_code == 130


def test_spec_error_when_the_profile_cannot_limit_counters(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("kernel: '6.1'\nvm:\n  counters: 2\n")
    result = run_cli("run", "--filter", str(spec))
    assert result.exit_code == 3
    assert result.stderr.startswith(f"{spec}:3:13: error: vm.counters: kernel 6.1 cannot limit")


@pytest.mark.parametrize("kernel,ioctl", [("6.12", "KVM_SET_ONE_REG"),
                                          ("latest", "KVM_SET_DEVICE_ATTR")])
def test_vm_counters_uses_the_profiles_mechanism(tmp_path, kernel, ioctl):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"kernel: {kernel}\nvm:\n  counters: 3\n")
    doc = json.loads(run_cli("run", "--filter", str(spec), "--json").stdout)
    assert any(c["ioctl"] == ioctl and c["args"].get("nr_counters", c["args"].get("N")) == 3
               for c in doc["ioctls"])
    assert [c["counter"] for c in doc["vcpus"][0]["counters"]] == [0, 1, 2, 31]


def test_validate_reports_each_file():
    ok = run_cli("validate", "configs/first-allow.yaml", "configs/workload-basic.yaml")
    assert ok.exit_code == 0
    assert ok.stdout == ("configs/first-allow.yaml: ok (spec)\n"
                         "configs/workload-basic.yaml: ok (workload)\n")


def test_validate_json_with_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("filters:\n  - alow: 1\n")
    result = run_cli("validate", "configs/first-allow.yaml", str(bad), "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert [f["ok"] for f in doc["files"]] == [True, False]
    assert "did you mean 'allow'" in result.stderr


# --- README -------------------------------------------------------------------------------

def readme_commands():
    text = (ROOT / "README.md").read_text()
    commands = []
    for line in text.splitlines():
        if line.startswith("$ kvmpmu "):
            command, _, marker = line[2:].partition("  # exit ")
            commands.append((command.strip(), int(marker) if marker else 0))
    return commands


@pytest.mark.parametrize("command,code", readme_commands())
def test_readme_example_command(command, code):
    args = shlex.split(command)[1:]
    assert run_cli(*args).exit_code == code


def test_readme_has_examples():
    assert len(readme_commands()) >= 8
