"""The same answer everywhere, many files, a location for every error, messages that do not
mislead, and the inputs a user types. Each test drives the installed `kvmpmu`."""

import json

import pytest

from tests.clihelpers import ROOT, run_kvmpmu

EINVAL = "filters:\n  - {action: deny, base_event: 0xfff0, nevents: 0x20}\n"


def write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return str(path)


def err(result):
    return result.stderr.decode()


# --- the same answer everywhere -------------------------------------------------------------

@pytest.mark.parametrize("text,line_col,path", [
    ('kernel: "6.1"\nvm:\n  counters: 3\n', "3:13", "vm.counters"),
    ('kernel: "6.1"\nvm:\n  pmu_version: "8.0"\n', "3:16", "vm.pmu_version"),
])
def test_validate_refuses_what_run_refuses_before_its_first_ioctl(tmp_path, text, line_col,
                                                                  path):
    spec = write(tmp_path, "s.yaml", text)
    run = run_kvmpmu("run", "--filter", spec)
    validate = run_kvmpmu("validate", spec)
    assert run.returncode == validate.returncode == 3
    assert f"{spec}:{line_col}: error: {path}: kernel 6.1 cannot" in err(run)
    assert err(validate).splitlines()[0] == err(run).splitlines()[0]


def test_validate_applies_the_filters_so_an_einval_range_is_exit_4(tmp_path):
    spec = write(tmp_path, "e.yaml", EINVAL)
    validate = run_kvmpmu("validate", spec)
    assert validate.returncode == 4 == run_kvmpmu("run", "--filter", spec).returncode
    assert f"{spec}:2:5: error: KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_PMU_V3_FILTER) on vcpu0 " \
           "failed: EINVAL" in err(validate)
    doc = json.loads(run_kvmpmu("validate", spec, "--json").stdout)
    assert doc["files"][0]["error"]["kind"] == "kvm" and not doc["ok"]


def test_validate_with_a_kernel_sees_what_that_kernel_refuses():
    result = run_kvmpmu("validate", "--kernel", "5.15", "configs/big-little.yaml")
    assert result.returncode == 4 and "ENXIO" in err(result)
    assert run_kvmpmu("validate", "configs/big-little.yaml").returncode == 0


def test_explain_and_diff_exit_4_on_a_spec_the_kernel_rejects(tmp_path):
    spec = write(tmp_path, "e.yaml", EINVAL)
    explain = run_kvmpmu("explain", spec, "CPU_CYCLES")
    assert explain.returncode == 4
    assert err(explain).startswith(f"{spec}:2:5: error: filters[0]: the kernel rejects entry 1 "
                                   "(EINVAL)")
    valid = write(tmp_path, "v.yaml", "filters:\n  - deny: 0x11\n")
    both = write(tmp_path, "b.yaml", "filters:\n  - deny: 0x11\n"
                 "  - {action: deny, base_event: 0xfff0, nevents: 0x20}\n")
    diff = run_kvmpmu("diff", valid, both)
    assert diff.returncode == 4 and f"{both}:3:5: error: filters[1]: the kernel rejects " \
        "entry 2 (EINVAL)" in err(diff)


def test_lint_reports_a_rejected_entry_as_a_kp_rule(tmp_path):
    spec = write(tmp_path, "a.yaml", "filters:\n  - {action: 2, base_event: 0x11, nevents: 1}\n")
    lint = run_kvmpmu("lint", spec)
    assert lint.returncode == 1
    assert f"{spec}:2:5: error: KP010 kernel-rejects: KVM answers EINVAL" in lint.stdout.decode()
    assert run_kvmpmu("validate", spec).returncode == 4
    assert run_kvmpmu("run", "--filter", spec).returncode == 4


def test_lint_reports_a_set_up_the_kernel_refuses_as_kp010():
    result = run_kvmpmu("lint", "--kernel", "5.15", "configs/big-little.yaml")
    assert result.returncode == 1
    assert "KP010 kernel-rejects: KVM_HAS_DEVICE_ATTR(KVM_ARM_VCPU_PMU_V3_SET_PMU) on vcpu0 " \
           "failed: ENXIO" in result.stdout.decode()


# --- many files -----------------------------------------------------------------------------

def test_lint_goes_on_after_a_bad_file_and_reports_every_file(tmp_path):
    bad = write(tmp_path, "bad.yaml", "filters:\n  - deny: NOPE\n")
    wide = write(tmp_path, "wide.yaml", "host: {cpu: cortex-a72}\nfilters: [{deny: 0x4009}]\n")
    result = run_kvmpmu("lint", "configs/cancel.yaml", bad, "configs/multi-tenant.yaml", wide)
    out, errors = result.stdout.decode(), err(result)
    assert result.returncode == 3  # the worst: a file that cannot be read
    assert "configs/cancel.yaml:5:5: warning: KP002" in out
    assert "configs/multi-tenant.yaml:13:5: note: KP001" in out
    assert f"{wide}:2:11: error: KP007" in out
    assert f"{bad}:2:11: error: filters[0].deny: unknown event 'NOPE'" in errors
    # errors: the bad file, KP007; warnings: cancel.yaml's KP002 and KP008
    assert errors.splitlines()[-1] == "4 files, 2 errors, 2 warnings"
    doc = json.loads(run_kvmpmu("lint", "--json", bad, "configs/cancel.yaml").stdout)
    assert [f["file"] for f in doc["files"]] == [bad, "configs/cancel.yaml"]
    assert doc["files"][0]["error"]["kind"] == "spec" and doc["files"][1]["error"] is None
    assert doc["summary"] == {"files": 2, "errors": 1, "warnings": 2, "silenced": 0}


def test_lint_exit_code_is_the_worst_finding(tmp_path):
    wide = write(tmp_path, "wide.yaml", "host: {cpu: cortex-a72}\nfilters: [{deny: 0x4009}]\n")
    assert run_kvmpmu("lint", "configs/cancel.yaml", wide).returncode == 1
    assert run_kvmpmu("lint", "configs/cancel.yaml", "configs/multi-tenant.yaml").returncode == 0


def test_every_independent_schema_error_of_a_file_is_reported(tmp_path):
    spec = write(tmp_path, "s.yaml", "kernel: 5.11\nvm:\n  vcpus: 2\n  vcpu: 3\nfilters:\n"
                 "  - deny: L3D_CACHE_REFIL\n  - allow: 0x11\n  - deny: [NOPE]\n")
    result = run_kvmpmu("validate", spec)
    lines = [line for line in err(result).splitlines() if not line.startswith("hint:")]
    assert result.returncode == 3
    assert lines == [
        f"{spec}:1:9: error: kernel: '5.11' is not one of 5.10, 5.15, 6.1, 6.6, 6.12, latest",
        f"{spec}:4:3: error: vm: unknown key 'vcpu' (known: vcpus, pmu_irq, counters, "
        "pmu_version, irqchip, pmu, cpus)",
        f"{spec}:6:11: error: filters[0].deny: unknown event 'L3D_CACHE_REFIL'",
        f"{spec}:8:12: error: filters[2].deny[0]: unknown event 'NOPE'",
        "1 file, 4 errors, 0 warnings"]
    doc = json.loads(run_kvmpmu("validate", spec, "--json").stdout)
    assert len(doc["files"][0]["error"]["errors"]) == 4


def test_a_yaml_syntax_error_still_stops_its_file(tmp_path):
    spec = write(tmp_path, "s.yaml", "vm: {vcpus: 2\nfilters:\n  - deny: NOPE\n")
    result = run_kvmpmu("validate", spec, "configs/cancel.yaml")
    assert result.returncode == 3
    assert err(result).count("error:") == 1 and "NOPE" not in err(result)
    assert result.stdout.decode() == "configs/cancel.yaml: ok (spec)\n"
    assert err(result).endswith("2 files, 1 error, 0 warnings\n")


def test_workload_errors_are_all_reported(tmp_path):
    work = write(tmp_path, "w.yaml", "vcpus:\n  all:\n    - read: PMCCNTR\n"
                 "    - write: {PMCR_EL0: 1}\n    - program: {counter: 0, event: NOPE}\n"
                 "expect:\n  - {counter: 0, eq: 1}\n  - {counter: 0}\n")
    lines = [line for line in err(run_kvmpmu("validate", work)).splitlines()
             if " error: " in line]
    assert [line.split(": error: ")[0] for line in lines] == [f"{work}:3:13", f"{work}:5:36",
                                                                f"{work}:8:5"]


# --- every location, and messages that do not mislead ---------------------------------------

def test_a_tab_is_named_as_a_tab_where_it_is(tmp_path):
    spec = write(tmp_path, "t.yaml", "filters:\n  - deny: 0x11\n\t- deny: 0x12\n")
    result = run_kvmpmu("validate", spec)
    assert result.returncode == 3
    assert err(result).startswith(f"{spec}:3:1: error: YAML syntax: a tab character here: "
                                  "YAML indents with spaces only\n")
    assert "cannot start any token" not in err(result)


def test_allow_and_deny_in_one_entry_point_at_the_indent(tmp_path):
    spec = write(tmp_path, "i.yaml", "filters:\n  - allow: [CPU_CYCLES]\n    deny: 0x12\n")
    result = run_kvmpmu("validate", spec)
    assert err(result).startswith(f"{spec}:3:5: error: filters[0]: this entry has both allow "
                                  "and deny: one entry takes one (is a '- ' missing before "
                                  "'deny'?)\n")


def test_import_names_its_own_option_in_errors():
    result = run_kvmpmu("import", "--kvmtool", "A:0x11-0x11,Q")
    assert result.returncode == 3
    assert err(result) == "--kvmtool:1:13: error: [1]: 'Q' is not A:first-last or " \
        "D:first-last\n"


def test_fail_entry_names_vm_cpus_and_has_no_stray_errno(tmp_path):
    spec = write(tmp_path, "b.yaml", "host:\n  pmus:\n"
                 "    - {name: big, cpu: cortex-a72, cpus: \"0-1\"}\n"
                 "    - {name: little, cpu: cortex-a53, cpus: \"2-5\"}\nvm:\n  pmu: big\n"
                 "  cpus: \"2-3\"\n")
    result = run_kvmpmu("run", "--filter", spec)
    assert result.returncode == 4
    assert f"{spec}:7:9: error: vm.cpus: KVM_RUN on vcpu0" in err(result)
    assert "failed: 0:" not in err(result) and "errno" not in err(result)


def test_events_db_with_host_cpu_says_which_wins(tmp_path):
    spec = write(tmp_path, "s.yaml", "host: {cpu: cortex-a53}\n")
    result = run_kvmpmu("validate", "--events-db", "configs/vendor-core-events.json", spec)
    assert result.returncode == 3
    assert err(result).startswith(f"{spec}:1:13: error: host.cpu: --events-db and host.cpu "
                                  "both give the host's events; --events-db would win")


# --- inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args,shows", [
    (["lint", "-"], "<stdin>:4:5: note: KP001"), (["validate", "-"], "<stdin>: ok (spec)"),
    (["explain", "-", "CPU_CYCLES"], "0x0011 CPU_CYCLES: denied"),
    (["diff", "-", "configs/cancel.yaml"], "<stdin> and configs/cancel.yaml decide every"),
    (["compile", "-"], "# kvmpmu compile <stdin> (kernel latest"),
    (["run", "--filter", "-"], "KVM_SET_DEVICE_ATTR"),
    (["show-pmceid", "--filter", "-"], "PMCEID: host versus guest"),
], ids=lambda a: a[0] if isinstance(a, list) else "")
def test_dash_reads_the_spec_from_stdin(args, shows):
    spec = (ROOT / "configs" / "cancel.yaml").read_bytes()
    result = run_kvmpmu(*args, input=spec)
    assert result.returncode == 0, err(result)
    assert shows in result.stdout.decode()
    assert not (ROOT / "-").exists()


def test_stdin_errors_are_located_at_stdin():
    result = run_kvmpmu("lint", "-", input=b"filters:\n  - deny: NOPE\n")
    assert err(result).startswith("<stdin>:2:11: error: filters[0].deny: unknown event 'NOPE'")
    work = run_kvmpmu("run", "--workload", "-", input=b"vcpus:\n  all:\n    - read: NOPE\n")
    assert err(work).startswith("<stdin>:3:13: error: vcpus.all[0].read: unknown PMU register")


def test_stdin_stands_for_one_input_only():
    result = run_kvmpmu("diff", "-", "-", input=b"filters: []\n")
    assert result.returncode == 2 and "standard input" in err(result)


def test_dot_dot_ranges_as_kvmpmu_prints_them(tmp_path):
    dots = write(tmp_path, "d.yaml", "filters:\n  - deny: 0x2a..0x2b\n"
                 "  - deny: L1D_CACHE..L1D_TLB\n")
    dashes = write(tmp_path, "h.yaml", "filters:\n  - deny: 0x2a-0x2b\n  - deny: 0x4-0x25\n")
    assert run_kvmpmu("validate", dots).returncode == 0
    diff = run_kvmpmu("diff", dots, dashes)
    assert diff.returncode == 0, diff.stdout
    pmu = run_kvmpmu("run", "--pmu-filter", "D:0x2a..0x2b", "--json")
    filters = [call["args"] for call in json.loads(pmu.stdout)["ioctls"]
               if call["ioctl"] == "KVM_SET_DEVICE_ATTR"
               and call["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER"]
    assert filters[0] == {"base_event": 0x2a, "nevents": 2, "action": 1}


def test_action_in_any_case(tmp_path):
    upper = write(tmp_path, "u.yaml", "filters:\n  - {action: DENY, base_event: 0x11, "
                  "nevents: 1}\n  - {action: Allow, base_event: 0x12, nevents: 1}\n")
    lower = write(tmp_path, "l.yaml", "filters:\n  - {action: deny, base_event: 0x11, "
                  "nevents: 1}\n  - {action: allow, base_event: 0x12, nevents: 1}\n")
    assert run_kvmpmu("validate", upper).returncode == 0
    assert run_kvmpmu("diff", upper, lower).returncode == 0


@pytest.mark.parametrize("size,ok", [("1M", True), ("64k", True), ("1G", True), ("2004", True),
                                     ("2003", False), ("1K", False)])
def test_max_bytes_takes_k_m_g(tmp_path, size, ok):
    spec = write(tmp_path, "big.yaml", "# " + "x" * 1986 + "\nvm: {vcpus: 1}\n")  # 2004 bytes
    result = run_kvmpmu("validate", "--max-bytes", size, spec)
    assert result.returncode == (0 if ok else 3)


def test_a_bad_size_is_a_usage_error():
    result = run_kvmpmu("validate", "--max-bytes", "1T", "configs/cancel.yaml")
    assert result.returncode == 2 and "is not a size" in err(result)


def test_a_repeated_single_value_option_is_an_error():
    result = run_kvmpmu("run", "--kernel", "6.1", "--kernel", "latest")
    assert result.returncode == 2 and "option --kernel given more than once" in err(result)
    doc = json.loads(run_kvmpmu("run", "--json", "--filter", "a", "--filter", "b").stdout)
    assert doc["error"]["kind"] == "usage" and "--filter" in doc["error"]["message"]
