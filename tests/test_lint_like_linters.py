"""lint as linters are used: rule selection, noqa comments, configuration, folders, formats."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import ROOT, run_cli

CANCEL = "configs/cancel.yaml"  # KP001 at 4:5, KP008 at 4:5, KP002 at 5:5 (README)


def codes(*args):
    result = run_cli("lint", *args, "--json")
    doc = json.loads(result.stdout)
    return [f["code"] for f in doc["files"][0]["findings"]], doc, result


@pytest.mark.parametrize("options,expected", [
    ([], ["KP001", "KP008", "KP002"]),
    (["--select", "KP008"], ["KP008"]),
    (["--select", "KP00", "--ignore", "KP001"], ["KP008", "KP002"]),
    (["--ignore", "KP0", "--select", "KP002"], ["KP002"]),  # the longer match wins
    (["--select", "KP0", "--ignore", "KP00"], []),  # only KP010 stays selected
    (["--select", "kp001,KP002"], ["KP001", "KP002"]),
    (["--select", "ALL", "--ignore", "KP008"], ["KP001", "KP002"]),
])
def test_select_and_ignore_take_codes_and_prefixes(options, expected):
    found, _, result = codes(CANCEL, *options)
    assert result.exit_code == 0 and found == expected


def test_an_unknown_rule_code_is_a_usage_error_with_a_suggestion():
    result = run_cli("lint", CANCEL, "--select", "KP0011")
    assert result.exit_code == ExitCode.USAGE
    assert "'KP0011' is not a rule code or prefix" in result.stderr
    assert "did you mean 'KP001'?" in result.stderr
    assert run_cli("lint", CANCEL, "--select", ",").exit_code == ExitCode.USAGE


def test_a_silenced_warning_no_longer_fails_strict():
    assert run_cli("lint", "--strict", CANCEL).exit_code == ExitCode.EXPECTATION_FAILED
    assert run_cli("lint", "--strict", CANCEL, "--ignore", "KP002,KP008").exit_code == 0


NOQA = """filters:
  - allow: [CPU_CYCLES]   # kvmpmu: noqa: KP001
  - deny: CPU_CYCLES      # kvmpmu: noqa
"""


def test_noqa_silences_every_rule_or_only_those_named(tmp_path):
    spec = tmp_path / "p.yaml"
    spec.write_text(NOQA)
    found, doc, result = codes(str(spec))
    assert found == [] and doc["summary"]["silenced"] == 3  # KP001; KP002 and KP008 on line 3
    assert "(3 silenced by noqa)" in result.stderr
    spec.write_text(NOQA.replace("# kvmpmu: noqa\n", "# kvmpmu: noqa: KP008\n"))
    found, doc, _ = codes(str(spec))
    assert found == ["KP002"] and doc["summary"]["silenced"] == 2
    spec.write_text(NOQA.replace("# kvmpmu: noqa: KP001", "# kvmpmu: noqa: KP004"))
    found, _, _ = codes(str(spec))
    assert found == ["KP001"]  # another rule's noqa silences nothing here


def test_noqa_on_another_line_or_inside_a_value_does_not_count(tmp_path):
    spec = tmp_path / "p.yaml"
    spec.write_text("# kvmpmu: noqa\nfilters:\n  - deny: CPU_CYCLES\n")
    assert codes(str(spec))[0] == ["KP001", "KP008"]
    spec.write_text("filters:\n  - deny: CPU_CYCLES #kvmpmu:NOQA:kp008,  kp001\n")
    assert codes(str(spec))[0] == []


def test_a_folder_is_linted_as_its_specs():
    doc = json.loads(run_cli("lint", "configs", "--json").stdout)
    files = [f["file"] for f in doc["files"]]
    assert files == [f"configs/{name}.yaml" for name in (
        "allow-basic-profiling", "big-little", "cancel", "deny-chain-swincr", "deny-cycles",
        "deny-shared-cache", "first-allow", "kvmtool-example", "multi-tenant", "neoverse-n1",
        "vendor-core")] + [f"configs/policy-repo/{name}.yaml" for name in (
            "drafts/wip", "policies/legacy-batch", "policies/no-timing",
            "policies/tenant-isolation")]  # not workloads, catalogs or the JSON Schemas


def test_without_paths_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text((ROOT / CANCEL).read_text())
    (tmp_path / "w.yaml").write_text("vcpus: {all: []}\n")
    monkeypatch.chdir(tmp_path)
    assert [f["file"] for f in json.loads(run_cli("lint", "--json").stdout)["files"]] == \
        ["a.yaml"]
    assert [f["kind"] for f in json.loads(run_cli("validate", "--json").stdout)["files"]] == \
        ["spec", "workload"]


def test_named_files_of_another_kind_are_skipped_only_when_asked(tmp_path):
    other = tmp_path / "ci.yml"
    other.write_text("jobs: {}\n")
    args = ("lint", CANCEL, "configs/workload-basic.yaml", str(other))
    assert run_cli(*args).exit_code == ExitCode.INVALID_INPUT
    skipped = run_cli(*args, "--skip-unrelated", "--json")
    assert skipped.exit_code == 0
    assert [f["file"] for f in json.loads(skipped.stdout)["files"]] == [CANCEL]


def test_github_annotations():
    lines = run_cli("lint", CANCEL, "--format", "github").stdout.splitlines()
    assert lines[0].startswith("::notice file=configs/cancel.yaml,line=4,col=5,title=KP001::"
                               "implicit-default: the first filter is ALLOW")
    assert lines[2].startswith("::warning file=configs/cancel.yaml,line=5,col=5,title=KP002::"
                               "cancelled-range: this deny cancels entry 1 (line 4)")


def test_github_annotations_escape_what_the_workflow_command_syntax_reserves(tmp_path):
    spec = tmp_path / "a,b: c.yaml"
    spec.write_text("filters:\n  - deny: CHAIN\n  - deny: 0x99999\n")
    lines = run_cli("lint", str(spec), "--format", "github").stdout.splitlines()
    assert lines == [f"::error file={str(spec).replace(',', '%2C').replace(':', '%3A')},"
                     "line=3,col=11,title=kvmpmu spec error::filters[1].deny: 629145 (0x99999) "
                     "is out of range 0..65535 (0xffff)"]


def test_sarif_2_1_0():
    result = run_cli("lint", CANCEL, "configs/nope.yaml", "--format", "sarif")
    assert result.exit_code == ExitCode.INVALID_INPUT
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [f"KP{n:03d}" for n in range(1, 11)]
    assert rules[1]["name"] == "cancelled-range" and rules[1]["shortDescription"]["text"]
    assert rules[6]["defaultConfiguration"] == {"level": "error"}
    kp002 = next(r for r in run["results"] if r["ruleId"] == "KP002")
    assert rules[kp002["ruleIndex"]]["id"] == "KP002" and kp002["level"] == "warning"
    assert kp002["locations"] == [{"physicalLocation": {
        "artifactLocation": {"uri": "configs/cancel.yaml"},
        "region": {"startLine": 5, "startColumn": 5}}}]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["locations"][0][
        "physicalLocation"]["artifactLocation"]["uri"] == "configs/nope.yaml"


def test_json_and_another_format_are_refused():
    assert run_cli("lint", CANCEL, "--json", "--format", "sarif").exit_code == ExitCode.USAGE
    assert json.loads(run_cli("lint", CANCEL, "--json", "--format", "json").stdout)["ok"]


def test_summary_line_counts_files_errors_and_warnings():
    result = run_cli("lint", CANCEL, "configs/deny-cycles.yaml")
    assert result.stderr.strip().splitlines()[-1] == "2 files, 0 errors, 3 warnings"


# --- configuration --------------------------------------------------------------------------

def test_config_in_pyproject_sets_defaults_and_options_win(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.kvmpmu]\nignore = ["KP001"]\nstrict = true\n')
    (tmp_path / "sub").mkdir()
    spec = tmp_path / "sub" / "p.yaml"
    spec.write_text((ROOT / CANCEL).read_text())
    monkeypatch.chdir(tmp_path / "sub")  # found by walking up
    found, _, result = codes("p.yaml")
    assert found == ["KP008", "KP002"] and result.exit_code == ExitCode.EXPECTATION_FAILED
    assert run_cli("lint", "p.yaml", "--no-strict").exit_code == 0
    assert codes("p.yaml", "--ignore", "KP002")[0] == ["KP001", "KP008"]  # replaces, not adds


def test_kvmpmu_toml_and_per_file_ignores(tmp_path, monkeypatch):
    (tmp_path / ".kvmpmu.toml").write_text(
        'format = "github"\n[per-file-ignores]\n"old-*.yaml" = ["KP002", "KP008"]\n')
    (tmp_path / "old-a.yaml").write_text((ROOT / CANCEL).read_text())
    (tmp_path / "new-a.yaml").write_text((ROOT / CANCEL).read_text())
    monkeypatch.chdir(tmp_path)
    lines = run_cli("lint", ".").stdout.splitlines()
    assert [line.split("title=")[1][:5] for line in lines] == \
        ["KP001", "KP008", "KP002", "KP001"]
    assert all("file=new-a.yaml" in line for line in lines[:3])


def test_config_kernel_cpu_and_exclude_apply_to_other_commands(tmp_path, monkeypatch):
    (tmp_path / ".kvmpmu.toml").write_text('kernel = "5.15"\ncpu = "cortex-a53"\n'
                                           'exclude = ["skip*", "sub/x/*.yaml"]\n')
    (tmp_path / "sub" / "x").mkdir(parents=True)
    (tmp_path / "sub" / "x" / "bad.yaml").write_text("filters: 4\n")  # anchored at the config
    (tmp_path / "bl.yaml").write_text((ROOT / "configs/big-little.yaml").read_text())
    (tmp_path / "skipped").mkdir()
    (tmp_path / "skipped" / "bad.yaml").write_text("filters: 3\n")
    monkeypatch.chdir(tmp_path)
    assert run_cli("validate", "bl.yaml").exit_code == ExitCode.KVM_CALL_FAILED  # SET_PMU: 5.18
    assert run_cli("validate", "bl.yaml", "--kernel", "6.1").exit_code == 0  # its own host
    assert run_cli("validate", "bl.yaml", "--cpu", "cortex-a53").exit_code == \
        ExitCode.INVALID_INPUT  # the command line's CPU for a two-PMU host: which PMU?
    doc = json.loads(run_cli("show-pmceid", "--json").stdout)
    assert doc["kernel"] == "5.15" and doc["host"]["pmu"]["cpu"] == "cortex-a53"
    assert run_cli("validate", ".").exit_code == ExitCode.KVM_CALL_FAILED  # skipped/ excluded
    assert "skipped/bad.yaml" not in run_cli("validate", ".").stderr


def test_a_bad_config_names_file_line_and_key(tmp_path, monkeypatch):
    config = tmp_path / "pyproject.toml"
    config.write_text('[tool.kvmpmu]\nstrict = true\nselct = ["KP001"]\nformat = "xml"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("lint", str(ROOT / CANCEL))
    assert result.exit_code == ExitCode.INVALID_INPUT
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{config}:3:1: error: tool.kvmpmu: unknown key 'selct'")
    assert lines[1] == "hint: did you mean 'select'?"
    assert lines[2] == f"{config}:4:1: error: tool.kvmpmu.format: 'xml' is not one of text, " \
        "json, github, sarif"
    assert "Traceback" not in result.stderr
    config.write_text('[tool.kvmpmu]\nselect = ["KP0", "XY"]\n')
    assert run_cli("lint", str(ROOT / CANCEL)).stderr.startswith(
        f"{config}:2:1: error: tool.kvmpmu.select: 'XY' is not a rule code")
    config.write_text('[tool.kvmpmu]\nstrict = tru\n')
    result = run_cli("lint", str(ROOT / CANCEL), "--json")
    assert result.exit_code == ExitCode.INVALID_INPUT
    error = json.loads(result.stdout)["error"]
    assert error["position"]["file"] == str(config) and error["position"]["line"] == 2
    assert error["message"].startswith("TOML syntax:")


def test_a_pyproject_without_the_table_is_passed_over(tmp_path, monkeypatch):
    (tmp_path / ".kvmpmu.toml").write_text('ignore = ["KP0"]\n')
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "pyproject.toml").write_text('[tool.ruff]\nline-length = 100\n')
    monkeypatch.chdir(tmp_path / "inner")
    assert codes(str(ROOT / CANCEL))[0] == []


# --- robustness --------------------------------------------------------------------------------

KEYS = ["select", "ignore", "strict", "format", "exclude", "kernel", "cpu", "events-db",
        "test-paths", "per-file-ignores", "selct", "tool"]
VALUES = ['"KP0"', '["KP001", "KP9"]', "true", "tru", '"github"', '["drafts"]', '"6.1"', "1",
          '{"a*" = ["KP002"]}', '[1, 2]', '"nonexistent.json"', '"', "[", "{}"]


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), max_size=4),
       st.sampled_from(["[tool.kvmpmu]", "[tool.kvmpmu.per-file-ignores]", "[tool]", ""]),
       st.text(alphabet="KP0123,ALxy ", max_size=8))
def test_any_configuration_or_rule_list_gets_an_exit_code_not_a_traceback(items, header, codes):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        lines = [header] + [f"{k} = {v}" for k, v in items]
        (Path(folder) / "pyproject.toml").write_text("\n".join(lines) + "\n")
        spec = Path(folder) / "p.yaml"
        spec.write_text((ROOT / CANCEL).read_text())
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            result = run_cli("lint", "p.yaml", "--select", codes) if codes.strip(", ") else \
                run_cli("lint", "p.yaml")
        finally:
            os.chdir(cwd)
    assert result.exit_code in (0, 1, 2, 3), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
