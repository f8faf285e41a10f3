"""Every policy command takes every policy source; diff across kernels and hosts; batch runs;
`kvmpmu test`; shell completion."""

import json
import os
import re
import subprocess

import pytest

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import KVMPMU, ROOT, run_cli


def doc_of(*args, code=0, input=None):
    result = run_cli(*args, "--json", input=input)
    assert result.exit_code == code, result.stderr
    return json.loads(result.stdout)


def test_show_pmceid_checks_a_kvmtool_string_against_a_cpu_model():
    doc = doc_of("show-pmceid", "--pmu-filter", "D:0x30-0x3f", "--cpu", "neoverse-n1")
    assert doc["host"]["pmu"]["cpu"] == "neoverse-n1"
    events = {e["event"]: e for e in doc["events"]}
    # The N1 implements REMOTE_ACCESS (0x31); the string denies it; CPU_CYCLES stays.
    assert (events[0x31]["implemented"], events[0x31]["visible"], events[0x31]["hidden_by"]) \
        == (True, False, "filter")
    assert events[0x11]["visible"] is True
    assert events[0x38]["implemented"] is False  # not an N1 event: nothing to hide


def test_filter_file_and_pmu_filter_string_together(tmp_path):
    host = tmp_path / "host.yaml"
    host.write_text("host: {cpu: cortex-a53}\nvm: {vcpus: 2}\n")
    doc = doc_of("run", "--filter", str(host), "--pmu-filter", "D:0x11-0x11")
    assert doc["host"]["pmu"]["cpu"] == "cortex-a53" and len(doc["vcpus"]) == 2
    filters = [c for c in doc["ioctls"] if c["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER"
               and c["ioctl"] == "KVM_SET_DEVICE_ATTR"]
    assert [(c["args"], c["location"]) for c in filters] == [
        ({"base_event": 0x11, "nevents": 1, "action": 1}, "--pmu-filter:1:1")]
    host.write_text("filters:\n  - deny: CPU_CYCLES\n")
    result = run_cli("run", "--filter", str(host), "--pmu-filter", "D:0x11-0x11")
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert f"{host}:2:5: error: filters: --pmu-filter gives the filters" in result.stderr


@pytest.mark.parametrize("args,check", [
    (["lint", "--pmu-filter", "D:0x11-0x11"],
     lambda d: [f["code"] for f in d["files"][0]["findings"]] == ["KP001", "KP008"]
     and d["files"][0]["file"] == "--pmu-filter"),
    (["validate", "--pmu-filter", "A:0x11-0x11", "--cpu", "cortex-a53"],
     lambda d: d["files"] == [{"file": "--pmu-filter", "kind": "spec", "ok": True,
                               "error": None}]),
    (["explain", "--pmu-filter", "A:0x11-0x11", "CPU_CYCLES", "BR_RETIRED"],
     lambda d: [e["decision"] for e in d["events"]] == ["allowed", "denied"]),
    (["explain", "--filter", "configs/cancel.yaml", "CPU_CYCLES"],
     lambda d: d["file"] == "configs/cancel.yaml" and d["events"][0]["decision"] == "denied"),
    (["compile", "--pmu-filter", "A:0x10-0x11,A:0x12-0x12", "--format", "kvmtool"],
     lambda d: d["filters"] == [{"base_event": 0x10, "nevents": 3, "action": 0, "names": {
         "base_event": "BR_MIS_PRED", "last_event": "BR_PRED"}}]),
    (["diff", "configs/deny-cycles.yaml", "--pmu-filter", "D:0x11-0x11"],
     lambda d: d["same"] and d["b"] == "--pmu-filter"),
])
def test_policy_commands_take_a_kvmtool_string(args, check):
    assert check(doc_of(*args))


@pytest.mark.parametrize("command", [["lint", "-"], ["validate", "-"], ["compile", "-"],
                                     ["explain", "-", "CPU_CYCLES"], ["show-pmceid", "-"],
                                     ["explain", "--filter", "-", "CPU_CYCLES"],
                                     ["run", "--filter", "-"], ["lint", "--filter", "-"],
                                     ["diff", "-", "configs/deny-cycles.yaml"]])
def test_policy_commands_read_standard_input(command):
    result = run_cli(*command, "--json", input=(ROOT / "configs/deny-cycles.yaml").read_text())
    assert result.exit_code == 0, result.stderr


def test_one_policy_per_command_that_takes_one():
    assert run_cli("compile", "configs/cancel.yaml", "--pmu-filter", "A:1-1").exit_code == \
        ExitCode.USAGE
    assert run_cli("explain", "--filter", "configs/cancel.yaml").exit_code == ExitCode.USAGE
    assert run_cli("diff", "a", "b", "--pmu-filter", "A:1-1").exit_code == ExitCode.USAGE


def test_cpu_replaces_the_specs_own_model_and_suggests_close_names():
    doc = doc_of("show-pmceid", "--filter", "configs/multi-tenant.yaml", "--cpu", "cortex-a72")
    assert doc["host"]["pmu"]["cpu"] == "cortex-a72"
    result = run_cli("lint", "configs/cancel.yaml", "--cpu", "cortex-a52")
    assert result.exit_code == ExitCode.INVALID_INPUT and "did you mean" in result.stderr


# --- diff across kernels and hosts -----------------------------------------------------------

def test_diff_one_policy_across_two_hosts_names_them_and_keeps_not_implemented_apart():
    result = run_cli("diff", "configs/deny-cycles.yaml", "--cpu-a", "cortex-a53", "--cpu-b",
                     "neoverse-n1", "--json")
    assert result.exit_code == ExitCode.EXPECTATION_FAILED
    doc = json.loads(result.stdout)
    assert doc["hosts"] == {"a": "cortex-a53", "b": "neoverse-n1"}
    # PMUv3 (8.0) encodes 10-bit events: beyond 0x3FF is no decision of A's filter.
    assert [(c["first"], c["last"], c["a"], c["b"]) for c in doc["changes"]] == [
        (0x400, 0xFFFF, "outside-event-space", "allowed")]
    states = {c["event"]: (c["a"], c["b"]) for c in doc["pmceid"]["changes"]}
    # Cortex-A53's documented PMCEID0 (0x63FFFFFF) lacks MEMORY_ERROR (0x1A); the N1 has it.
    assert states[0x1A] == ("not-implemented", "visible")
    assert 0x11 not in states  # CPU_CYCLES: hidden by the filter on both
    text = run_cli("diff", "configs/deny-cycles.yaml", "--cpu-a", "cortex-a53", "--cpu-b",
                   "neoverse-n1").stdout
    assert "configs/deny-cycles.yaml (host cortex-a53)" in text
    assert "not implemented by cortex-a53" in text


def test_diff_one_policy_across_two_kernels():
    result = run_cli("diff", "configs/deny-cycles.yaml", "--kernel-a", "5.10", "--kernel-b",
                     "latest", "--json")
    doc = json.loads(result.stdout)
    assert doc["kernels"] == {"a": "5.10", "b": "latest"}
    states = {c["event"]: (c["a"], c["b"]) for c in doc["pmceid"]["changes"]}
    # KVM hides the STALL_SLOT events (0x3D-0x3F) from 6.6 on, not in 5.10 (README table).
    for event in (0x3D, 0x3E, 0x3F):
        assert states[event] == ("visible", "hidden-by-kvm")
    assert result.exit_code == ExitCode.EXPECTATION_FAILED


def test_diff_of_two_policies_on_one_host_keeps_hidden_by_the_filter():
    doc = doc_of("diff", "configs/first-allow.yaml", "configs/deny-cycles.yaml", code=1)
    states = {c["event"]: (c["a"], c["b"]) for c in doc["pmceid"]["changes"]}
    # first-allow.yaml allows INST_RETIRED alone; deny-cycles.yaml denies CPU_CYCLES alone.
    assert 0x11 not in states  # hidden by both filters
    assert 0x08 not in states  # INST_RETIRED: visible under both
    assert states[0x21] == ("hidden", "visible")  # BR_RETIRED: the allow-list hides it
    assert all("not-implemented" not in pair for pair in states.values())


# --- several workloads -------------------------------------------------------------------------

BATCH = ["run", "--filter", "configs/deny-shared-cache.yaml", "--workload",
         "configs/workload-basic.yaml", "--workload", "configs/workload-default-policy.yaml"]


def test_run_reports_every_workload_with_one_exit_code():
    result = run_cli(*BATCH)
    assert result.exit_code == ExitCode.EXPECTATION_FAILED  # the second fails (README)
    assert "== configs/workload-basic.yaml (policy configs/deny-shared-cache.yaml): ok" \
        in result.stdout
    assert "== configs/workload-default-policy.yaml (policy configs/deny-shared-cache.yaml): " \
        "FAILED" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "2 workloads, 1 passed, 1 failed"
    quiet = run_cli(*BATCH, "--quiet")
    assert "workload-basic" not in quiet.stdout and "workload-default-policy" in quiet.stdout
    doc = doc_of(*BATCH, code=1)
    assert [r["ok"] for r in doc["runs"]] == [True, False]
    assert doc["summary"] == {"workloads": 2, "passed": 1, "failed": 1}


def test_run_takes_a_folder_of_workloads_each_with_its_policy():
    doc = doc_of("run", "--workload", "configs/policy-repo/tests")
    assert [(r["workload"], r["policy"]) for r in doc["runs"]] == [
        ("configs/policy-repo/tests/late-filter.yaml", "<no filter>"),
        ("configs/policy-repo/tests/no-timing.yaml",
         "configs/policy-repo/tests/../policies/no-timing.yaml"),
        ("configs/policy-repo/tests/tenant-isolation.yaml",
         "configs/policy-repo/tests/../policies/tenant-isolation.yaml")]


def test_a_workload_that_cannot_run_does_not_stop_the_others(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: missing.yaml\nvcpus: {all: []}\n")
    result = run_cli("run", "--workload", str(bad), "--workload", "configs/workload-basic.yaml")
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "== configs/workload-basic.yaml (policy <no filter>): " in result.stdout
    assert "missing.yaml" in result.stderr


def test_a_single_workload_runs_with_the_policy_it_names():
    doc = doc_of("run", "--workload", "configs/policy-repo/tests/no-timing.yaml")
    assert all(e["passed"] for e in doc["expectations"]) and doc["expectations"]


# --- kvmpmu test ---------------------------------------------------------------------------

def test_the_example_repositorys_tests_pass_on_their_kernels():
    result = run_cli("test", "configs/policy-repo/tests")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "configs/policy-repo/tests/late-filter.yaml (kernel 6.1): ok",
        "configs/policy-repo/tests/late-filter.yaml (kernel 6.12): ok",
        "configs/policy-repo/tests/late-filter.yaml (kernel latest): ok",
        "configs/policy-repo/tests/no-timing.yaml (kernel latest): ok",
        "configs/policy-repo/tests/tenant-isolation.yaml (kernel latest): ok"]
    assert result.stderr.strip() == "5 tests, 5 passed, 0 failed"


def test_kernel_picks_one_of_a_files_kernels_or_skips_it():
    result = run_cli("test", "configs/policy-repo/tests", "--kernel", "5.10")
    assert "late-filter.yaml (kernel 5.10): skipped: its kernels are 6.1, 6.12, latest" \
        in result.stdout
    assert result.stderr.strip() == "2 tests, 2 passed, 0 failed, 1 skipped"


def test_the_configuration_gives_the_paths_and_the_default_kernel(monkeypatch):
    monkeypatch.chdir(ROOT / "configs/policy-repo")
    doc = doc_of("test")
    assert [(t["file"], t["kernel"]) for t in doc["tests"]] == [
        ("tests/late-filter.yaml", "6.1"), ("tests/late-filter.yaml", "6.12"),
        ("tests/late-filter.yaml", "latest"), ("tests/no-timing.yaml", "6.12"),
        ("tests/tenant-isolation.yaml", "6.12")]


def test_a_failing_test_shows_its_expectation_table(tmp_path):
    work = tmp_path / "t.yaml"
    work.write_text("vcpus: {all: [{write: {PMCR_EL0: 0x4}}]}\n"  # C: the cycle counter to 0
                    "expect:\n  - {counter: cycle, eq: 0}\n  - {counter: cycle, gt: 5}\n")
    result = run_cli("test", str(tmp_path))
    assert result.exit_code == ExitCode.EXPECTATION_FAILED
    lines = result.stdout.splitlines()
    assert lines[0] == f"{work} (kernel latest): FAILED (policy <no filter>)"
    cells = [[c.strip() for c in re.split("[│┃]", line)[1:-1]] for line in lines
             if re.search("[│┃]", line)]
    assert cells == [["location", "expectation", "actual", "result"],  # as `run` shows them
                     [f"{work}:3:5", "counter=cycle eq=0", "0", "pass"],
                     [f"{work}:4:5", "counter=cycle gt=5", "0", "FAIL"]]


# --- completion ---------------------------------------------------------------------------

def complete(words, shell="bash"):
    """The completion protocol as bash runs it: COMP_WORDS and COMP_CWORD."""
    env = dict(os.environ, _KVMPMU_COMPLETE=f"{shell}_complete", COMP_WORDS=" ".join(words),
               COMP_CWORD=str(len(words) - 1))
    out = subprocess.run([KVMPMU], env=env, capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    return [line.split(",", 1)[1] for line in out.splitlines()]  # "type,value" lines


def test_completion_of_cpu_models_kernels_formats_and_events():
    assert complete(["kvmpmu", "lint", "--cpu", "neo"]) == [
        "neoverse-n1", "neoverse-v1", "neoverse-n2", "neoverse-v2"]
    assert complete(["kvmpmu", "run", "--kernel", "6."]) == ["6.1", "6.6", "6.12"]
    assert complete(["kvmpmu", "lint", "--format", "s"]) == ["sarif"]
    assert complete(["kvmpmu", "explain", "configs/cancel.yaml", "BR_MIS"]) == [
        "BR_MIS_PRED", "BR_MIS_PRED_RETIRED"]
    assert complete(["kvmpmu", "events", "--search", "ll_cache_m"]) == [
        "LL_CACHE_MISS", "LL_CACHE_MISS_RD"]
    assert "EXT_MEM_REQ" in complete(["kvmpmu", "explain", "--cpu", "cortex-a53",
                                      "--pmu-filter", "A:1-1", "EXT_"])
    assert complete(["kvmpmu", "lint", "--select", "KP001,KP00"])[:2] == [
        "KP001,KP001", "KP001,KP002"]
    assert complete(["kvmpmu", "te"]) == ["test"]


@pytest.mark.parametrize("words", [["explain", "con"], ["lint", "con"], ["diff", "a", "con"],
                                   ["run", "--workload", "con"], ["test", "con"],
                                   ["show-pmceid", "--filter", "con"],
                                   ["validate", "--events-db", "con"]])
def test_paths_complete_as_files(words):
    env = dict(os.environ, _KVMPMU_COMPLETE="bash_complete",
               COMP_WORDS=" ".join(["kvmpmu", *words]), COMP_CWORD=str(len(words)))
    out = subprocess.run([KVMPMU], env=env, capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert out.splitlines() == ["file,con"]  # bash then completes the path itself


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F"),
                                          ("zsh", "#compdef kvmpmu"),
                                          ("fish", "complete --no-files --command kvmpmu")])
def test_the_completion_command_prints_each_shells_script(shell, marker):
    result = run_cli("completion", shell)
    assert result.exit_code == 0 and marker in result.stdout
    assert "_KVMPMU_COMPLETE" in result.stdout


def test_the_bash_script_completes_in_bash():
    script = run_cli("completion", "bash").stdout
    probe = (f"{script}\nCOMP_WORDS=(kvmpmu lint --cpu cortex-a5); COMP_CWORD=3\n"
             "_kvmpmu_completion kvmpmu\necho \"${COMPREPLY[@]}\"\n")
    env = dict(os.environ, PATH=f"{os.path.dirname(KVMPMU)}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True).stdout
    assert out.split() == ["cortex-a53", "cortex-a57"]


