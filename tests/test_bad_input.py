"""One test per class of bad input, each with the exact message and exit code."""

import pytest

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import run_cli

SUMMARY = "1 file, 1 error, 0 warnings\n"  # validate's last line on stderr

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(11))

CASES = {
    "yaml-syntax": ("filters: [\n", "2:1: error: YAML syntax: did not find expected node content"),
    "empty": ("", "1:1: error: file is empty"),
    "wrong-type-number": ("vm:\n  vcpus: two\n",
                          "2:10: error: vm.vcpus: expected an integer, got 'two'"),
    "wrong-type-mapping": ("vm: [1, 2]\n", "1:5: error: vm: expected a mapping, got a list"),
    "unknown-key": ("vm:\n  vcpu: 2\n",
                    "2:3: error: vm: unknown key 'vcpu' (known: vcpus, pmu_irq, counters, "
                    "pmu_version, irqchip, pmu, cpus)\nhint: did you mean 'vcpus'?"),
    "duplicate-key": ("vm: {vcpus: 1}\nvm: {vcpus: 2}\n",
                      "2:1: error: duplicate key 'vm' (first at line 1)"),
    "yaml11-yes": ("vm:\n  vcpus: yes\n", "2:10: error: vm.vcpus: expected an integer, got 'yes' "
                   "(yes/no/on/off are not booleans or numbers here)"),
    "yaml11-on": ("vm:\n  irqchip: on\n", "2:12: error: vm.irqchip: 'on' is not one of kernel, "
                  "userspace"),
    "yaml11-octal": ("vm:\n  vcpus: 0o17\n", "2:10: error: vm.vcpus: expected an integer, got "
                     "'0o17' (only decimal and 0x-hex integers are numbers here)"),
    "yaml11-underscore": ("vm:\n  vcpus: 1_000\n", "2:10: error: vm.vcpus: expected an integer, "
                          "got '1_000' (only decimal and 0x-hex integers are numbers here)"),
    "yaml11-sexagesimal": ("vm:\n  vcpus: 1:30\n", "2:10: error: vm.vcpus: expected an integer, "
                           "got '1:30' (only decimal and 0x-hex integers are numbers here)"),
    "negative": ("filters:\n  - {action: deny, base_event: -1, nevents: 1}\n",
                 "2:32: error: filters[0].base_event: -1 is out of range 0..65535"),
    "above-0xffff": ("filters:\n  - {action: deny, base_event: 0x10000, nevents: 1}\n",
                     "2:32: error: filters[0].base_event: 65536 (0x10000) is out of range "
                     "0..65535 (0xffff)"),
    "huge": ("filters:\n  - deny: 123456789012345678901234567890\n",
             "2:11: error: filters[0].deny: 123456789012345678901234567890 "
             "(0x18ee90ff6c373e0ee4e3f0ad2) is out of range 0..65535 (0xffff)"),
    "unknown-event": ("filters:\n  - deny: [L3D_CACHE_REFIL]\n",
                      "2:12: error: filters[0].deny[0]: unknown event 'L3D_CACHE_REFIL'\nhint: "
                      "did you mean L3D_CACHE_REFILL, L2D_CACHE_REFILL, L1D_CACHE_REFILL?"),
    "unknown-cpu": ("host: {cpu: neoverse-n9}\n", "1:13: error: host.cpu: unknown CPU model "
                    "'neoverse-n9'\nhint: did you mean neoverse-n2, neoverse-n1, neoverse-v2?"),
    "object-tag": ("vm: !!python/object:os.system {}\n", "1:5: error: tag "
                   "'tag:yaml.org,2002:python/object:os.system' is not allowed (only plain YAML "
                   "data)"),
    "alias-bomb": (BOMB, "7:36: error: document expands to over 5000000 nodes (alias bomb?)"),
    "deep-nesting": ("a: " + "[" * 100 + "]" * 100 + "\n",
                     "1:67: error: nesting deeper than 64 levels"),
    "too-many-steps": ("vcpus:\n  all:\n    - repeat: {times: 1000000000, steps: [{repeat: "
                       "{times: 1000000000, steps: [{read: PMCCNTR_EL0}]}}]}\n",
                       "3:5: error: vcpus.all: 1000000000000000000 steps after repeat "
                       "expansion exceed the limit of 100000000"),
    "register-not-a-name": ("vcpus:\n  all:\n    - read: [P: MCCNTR_EL0]\n",
                            "3:14: error: vcpus.all[0].read[0]: expected a string, got a "
                            "mapping"),
    "execute-count": ("vcpus:\n  all:\n    - execute: {events: {INST_RETIRED: "
                      "18446744073709551616}}\n",
                      "3:40: error: vcpus.all[0].execute.events.INST_RETIRED: "
                      "18446744073709551616 (0x10000000000000000) is out of range "
                      "0..18446744073709551615 (0xffffffffffffffff)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_gets_one_exact_message(tmp_path, case):
    text, message = CASES[case]
    path = tmp_path / "in.yaml"
    path.write_text(text)
    result = run_cli("validate", str(path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr == f"{path}:{message}\n" + SUMMARY
    assert "Traceback" not in result.output


def test_execute_count_up_to_2_64_minus_1_is_fine(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("vcpus:\n  all:\n"
                    "    - execute: {events: {INST_RETIRED: 18446744073709551615}}\n")
    assert run_cli("validate", str(path)).exit_code == 0


def test_repeat_is_not_expanded_to_be_counted(tmp_path):
    # 10^9 x 10^8 = 10^17 steps would not fit in memory if expanded; the check is arithmetic
    path = tmp_path / "w.yaml"
    path.write_text("vcpus:\n  all:\n    - repeat: {times: 10, steps: [{read: PMCCNTR_EL0}]}\n")
    assert run_cli("validate", str(path)).exit_code == 0


def test_not_utf8(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_bytes(b"filters:\n  - deny: [\xff\xfe]\n")
    result = run_cli("validate", str(path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr == f"{path}:2:12: error: not UTF-8 text (byte 0xff)\n" + SUMMARY


def test_directory(tmp_path):
    result = run_cli("run", "--filter", str(tmp_path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr == f"{tmp_path}:1:1: error: is a directory, not a file\n"


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    result = run_cli("run", "--filter", str(path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr == f"{path}:1:1: error: cannot read: No such file or directory\n"


def test_unreadable_file(tmp_path, monkeypatch):
    from pathlib import Path

    path = tmp_path / "secret.yaml"
    path.write_text("vm: {vcpus: 1}\n")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    result = run_cli("run", "--filter", str(path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr == f"{path}:1:1: error: cannot read: Permission denied\n"


def test_size_limit_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * 1986 + "\nvm: {vcpus: 1}\n")
    result = run_cli("validate", "--max-bytes", "1000", str(path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr == (f"{path}:1:1: error: file is 2004 bytes, over the 1000-byte limit "
                             "(raise it with --max-bytes)\n" + SUMMARY)
    assert run_cli("validate", "--max-bytes", "3000", str(path)).exit_code == 0


def test_too_many_filter_entries(tmp_path, monkeypatch):
    from kvmpmu.spec import filterspec

    monkeypatch.setattr(filterspec, "MAX_FILTER_ENTRIES", 3)
    path = tmp_path / "many.yaml"
    path.write_text("filters:\n" + "".join(f"  - deny: {i}\n" for i in range(4)))
    result = run_cli("validate", str(path))
    assert result.stderr == (f"{path}:2:3: error: filters: 4 filter entries exceed the limit "
                             "of 3\n" + SUMMARY)


@pytest.mark.parametrize("text,message", [
    ("A:0x11", "'A:0x11' is not A:first-last or D:first-last"),
    ("A:0x11-0x10000", "'A:0x11-0x10000': range must satisfy 0 <= first <= last <= 0xffff"),
    ("D:0x30-0x3f,A:zz-1", "'A:zz-1': event numbers must be decimal or 0x-hex"),
])
def test_bad_pmu_filter_string(text, message):
    result = run_cli("run", "--pmu-filter", text)
    assert result.exit_code == ExitCode.INVALID_INPUT
    index = text.count(",")
    col = len(text.rsplit(",", 1)[0]) + 2 if index else 1
    assert result.stderr == f"--pmu-filter:1:{col}: error: [{index}]: {message}\n"


def test_bad_command_line_values_are_usage_errors():
    for args in (["run", "--kernel", "4.19"], ["run", "--max-bytes", "0"],
                 ["compile", "configs/cancel.yaml", "--format", "pdf"]):
        result = run_cli(*args)
        assert result.exit_code == ExitCode.USAGE and "Traceback" not in result.output
