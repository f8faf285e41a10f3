"""The policy commands from the command line: exit codes, JSON documents, output files."""

import json
import struct

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import check_golden, run_cli


def test_lint_exit_codes_and_json():
    assert run_cli("lint", "configs/multi-tenant.yaml").exit_code == 0
    assert run_cli("lint", "configs/cancel.yaml").exit_code == 0  # warnings only
    strict = run_cli("lint", "--strict", "configs/cancel.yaml")
    assert strict.exit_code == ExitCode.EXPECTATION_FAILED
    assert run_cli("lint", "--strict", "configs/multi-tenant.yaml").exit_code == 0  # a note
    doc = json.loads(run_cli("lint", "configs/cancel.yaml", "--json").stdout)
    findings = doc["files"][0]["findings"]
    assert doc["ok"] is True and {f["code"] for f in findings} == {"KP001", "KP002", "KP008"}
    kp002 = next(f for f in findings if f["code"] == "KP002")
    assert kp002 == {"code": "KP002", "name": "cancelled-range", "severity": "warning",
                     "location": "configs/cancel.yaml:5:5", "entry": 1,
                     "position": {"file": "configs/cancel.yaml", "line": 5, "column": 5},
                     "message": kp002["message"], "fix": kp002["fix"]}


def test_lint_error_fails_without_strict(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text("host: {cpu: cortex-a72}\nfilters: [{deny: 0x4009}]\n")
    result = run_cli("lint", str(path))
    assert result.exit_code == ExitCode.EXPECTATION_FAILED
    assert f"{path}:2:11: error: KP007 outside-event-space" in result.stdout
    assert "KP006" not in result.stdout  # KP007 says it already


def test_lint_text_golden_for_the_readme():
    check_golden("lint-cancel.txt", run_cli("lint", "configs/cancel.yaml").stdout)
    check_golden("lint-multi-tenant.txt", run_cli("lint", "configs/multi-tenant.yaml").stdout)


def test_explain_json():
    doc = json.loads(run_cli("explain", "configs/cancel.yaml", "BR_RETIRED", "0x11",
                             "--json").stdout)
    br, cycles = doc["events"]
    assert (br["decision"], br["decided_by"], br["entry"]) == ("denied", "entry", 1)
    assert br["location"] == "configs/cancel.yaml:5:5"
    assert (cycles["decision"], cycles["decided_by"], cycles["entry"]) == ("denied", "default", 0)
    assert cycles["pmceid"] == "hidden" and cycles["counts"] is False


def test_explain_unknown_event_is_invalid_input():
    result = run_cli("explain", "configs/cancel.yaml", "BR_RETIRD")
    assert result.exit_code == ExitCode.INVALID_INPUT and "BR_RETIRED" in result.stderr


def test_diff_exit_codes_and_json():
    same = run_cli("diff", "configs/multi-tenant.yaml", "configs/multi-tenant.yaml", "--json")
    assert same.exit_code == 0 and json.loads(same.stdout)["same"] is True
    result = run_cli("diff", "configs/first-allow.yaml", "configs/cancel.yaml", "--json")
    assert result.exit_code == ExitCode.EXPECTATION_FAILED
    doc = json.loads(result.stdout)
    assert doc["same"] is False and doc["changes"] and doc["pmceid"]["changes"]
    assert {"first", "last", "nevents", "first_name", "last_name", "a", "b"} == \
        set(doc["changes"][0])


def test_compile_writes_the_output_file(tmp_path):
    out = tmp_path / "filters.bin"
    result = run_cli("compile", "configs/multi-tenant.yaml", "--format", "bin", "-o", str(out),
                     "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    data = out.read_bytes()
    assert len(data) == 8 * len(doc["filters"]) and doc["input_calls"] == 14
    assert struct.unpack("<HHB3x", data[:8]) == (0x19, 1, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["filters.bin"]  # no temporary file left


def test_compile_failure_leaves_the_old_file(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    bad = tmp_path / "bad.yaml"
    bad.write_text("host: {cpu: cortex-a53}\nfilters: [{deny: 0x4000}]\n")
    result = run_cli("compile", str(bad), "-o", str(out))
    assert result.exit_code == ExitCode.KVM_CALL_FAILED
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.yaml", "out.txt"]


def test_kvmtool_format_cannot_write_an_empty_range():
    result = run_cli("compile", "configs/cancel.yaml", "--format", "kvmtool")
    assert result.exit_code == ExitCode.INVALID_INPUT and "empty range" in result.stderr


def test_import_kvmtool(tmp_path):
    out = tmp_path / "spec.yaml"
    assert run_cli("import", "--kvmtool", "A:0x11-0x11,D:0x30-0x3f", "-o", str(out)).exit_code == 0
    assert "- allow: 0x0011  # CPU_CYCLES" in out.read_text()
    assert run_cli("run", "--filter", str(out)).exit_code == 0
    bad = run_cli("import", "--kvmtool", "X:1-2")
    assert bad.exit_code == ExitCode.INVALID_INPUT and "--kvmtool:1:1" in bad.stderr


def test_presets_json():
    doc = json.loads(run_cli("presets", "--cpu", "cortex-a53", "--json").stdout)
    by_name = {p["name"]: p for p in doc["presets"]}
    assert set(by_name) == {"shared-resources", "shared-resources-cluster", "basic-profiling"}
    assert "EXT_SNOOP" in by_name["shared-resources"]["names"]
    assert max(by_name["shared-resources"]["events"]) < 0x400


def test_readme_shows_the_current_lint_output():
    from tests.clihelpers import ROOT

    readme = (ROOT / "README.md").read_text()
    for spec in ("multi-tenant", "cancel"):
        output = run_cli("lint", f"configs/{spec}.yaml").stdout
        assert f"$ kvmpmu lint configs/{spec}.yaml\n{output}```" in readme
