"""Outputs that never hurt: `-o` targets, stdout and stderr, broken pipes, full disks, pipes
that must not wrap. Each test drives the installed `kvmpmu` as a user would."""

import json
import os
import pty
import socket
import stat
import threading
from pathlib import Path

import pytest

from tests.clihelpers import ROOT, run_kvmpmu

SPEC = str(ROOT / "configs" / "multi-tenant.yaml")
EINVAL = "filters:\n  - {action: deny, base_event: 0xfff0, nevents: 0x20}\n"
BIG_LITTLE = ("host:\n  pmus:\n    - {name: big, cpu: cortex-a72, cpus: \"0-1\"}\n"
              "    - {name: little, cpu: cortex-a53, cpus: \"2-5\"}\nvm:\n  pmu: big\n"
              "  cpus: \"2-3\"\n")


def compiled_c() -> bytes:
    result = run_kvmpmu("compile", SPEC, "--format", "c")
    assert result.returncode == 0
    return result.stdout


# --- -o PATH --------------------------------------------------------------------------------

def full_device(folder: Path) -> Path:
    """A node of /dev/full's device (1, 7) made for the test, so that a regression replaces
    this one and not the system's; skipped where nodes cannot be made or used."""
    node = folder / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with open(node, "wb") as probe:
            probe.write(b"x")
            probe.flush()
    except PermissionError:
        pytest.skip("cannot make or open a device node here")
    except OSError as exc:
        if exc.errno != 28:
            pytest.skip(f"no full device: {exc}")
    return node


def test_output_to_a_full_device_fails_74_and_leaves_the_device(tmp_path):
    node = full_device(tmp_path)
    result = run_kvmpmu("compile", SPEC, "--format", "c", "-o", str(node))
    assert result.returncode == 74
    assert f"cannot write {node}: No space left on device".encode() in result.stderr
    assert stat.S_ISCHR(os.stat(node).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_output_to_a_fifo_reaches_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run_kvmpmu("compile", SPEC, "--format", "c", "-o", str(fifo))
    if reader.is_alive() and stat.S_ISFIFO(os.stat(fifo).st_mode):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # frees a reader left waiting
    reader.join(timeout=30)
    assert result.returncode == 0
    assert got == [compiled_c()]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_output_to_a_symlink_replaces_its_target(tmp_path):
    target = tmp_path / "real.c"
    target.write_text("old")
    link = tmp_path / "link.c"
    link.symlink_to("real.c")
    assert run_kvmpmu("compile", SPEC, "--format", "c", "-o", str(link)).returncode == 0
    assert link.is_symlink() and os.readlink(link) == "real.c"
    assert target.read_bytes() == compiled_c()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.c", "real.c"]


def test_output_keeps_an_existing_files_mode(tmp_path):
    out = tmp_path / "filters.c"
    out.write_text("old")
    out.chmod(0o644)
    assert run_kvmpmu("compile", SPEC, "--format", "c", "-o", str(out)).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 and out.read_bytes() == compiled_c()


def test_a_new_output_file_gets_0666_less_the_umask(tmp_path):
    out = tmp_path / "new.c"
    old = os.umask(0o027)
    try:
        assert run_kvmpmu("compile", SPEC, "--format", "c", "-o", str(out)).returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_output_dash_is_stdout(tmp_path):
    result = run_kvmpmu("compile", SPEC, "--format", "c", "-o", "-", cwd=tmp_path.parent)
    assert result.returncode == 0 and result.stdout == compiled_c()
    assert not (tmp_path.parent / "-").exists()


def test_output_to_a_socket_is_sent_to_its_listener(tmp_path):
    path = str(tmp_path / "sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(30)
    got = bytearray()

    def serve():
        try:
            conn, _ = server.accept()
        except OSError:
            return  # nobody connected
        with conn:
            while chunk := conn.recv(65536):
                got.extend(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    result = run_kvmpmu("compile", SPEC, "--format", "c", "-o", path)
    thread.join(timeout=30)
    server.close()
    assert result.returncode == 0 and bytes(got) == compiled_c()
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_binary_output_to_a_terminal_is_refused_unless_o_is_given(tmp_path):
    controller, terminal = pty.openpty()
    try:
        refused = run_kvmpmu("compile", SPEC, "--format", "bin", stdout=terminal,
                             stderr=-1)
        insisted = run_kvmpmu("compile", SPEC, "--format", "bin", "-o", "-", stdout=terminal,
                              stderr=-1)
    finally:
        os.close(terminal)
        os.close(controller)
    assert refused.returncode == 2 and b"binary output to a terminal" in refused.stderr
    assert insisted.returncode == 0
    out = tmp_path / "calls.bin"
    assert run_kvmpmu("compile", SPEC, "--format", "bin", "-o", str(out)).returncode == 0
    assert len(out.read_bytes()) % 8 == 0 and out.read_bytes()


# --- run: the report on stdout, every error and failure on stderr ---------------------------

def test_run_failures_go_to_stderr_and_the_report_to_the_file(tmp_path):
    report = tmp_path / "report.txt"
    spec = tmp_path / "einval.yaml"
    spec.write_text(EINVAL)
    with report.open("wb") as out:
        kvm = run_kvmpmu("run", "--filter", str(spec), stdout=out, stderr=-1)
    assert kvm.returncode == 4
    assert f"{spec}:2:5: error: KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_PMU_V3_FILTER) on vcpu0 " \
           "failed: EINVAL" in kvm.stderr.decode()
    assert "VMM calls" in report.read_text() and "error" not in report.read_text()

    work = tmp_path / "w.yaml"
    # PMCR_EL0.C zeroes the cycle counter, which is not enabled: it stays 0, not above 5
    work.write_text("vcpus:\n  all:\n    - write: {PMCR_EL0: 0x4}\nexpect:\n"
                    "  - {counter: cycle, gt: 5}\n")
    with report.open("wb") as out:
        failed = run_kvmpmu("run", "--workload", str(work), stdout=out, stderr=-1)
    assert failed.returncode == 1
    assert f"{work}:5:5: error: expectation failed: counter=cycle gt=5: actual 0" in \
        failed.stderr.decode()
    assert "Expectations" in report.read_text()

    (tmp_path / "spin.S").write_text("loop:\n  add x0, x0, #1\n  b loop\n")
    guest = tmp_path / "g.yaml"
    guest.write_text("guest: {asm: spin.S}\n")
    fault = run_kvmpmu("run", "--workload", str(guest), "--max-instructions", "1000")
    assert fault.returncode == 5
    assert b"did not end within 1000 instructions" in fault.stderr
    assert b"did not end" not in fault.stdout


def test_an_expectation_failure_names_its_line_on_stderr(tmp_path):
    work = tmp_path / "w.yaml"
    work.write_text("vcpus:\n  all:\n    - write: {PMCR_EL0: 0x2}\n    - swinc: [0]\n"
                    "expect:\n  - {counter: 0, eq: 5}\n")
    result = run_kvmpmu("run", "--workload", str(work))
    assert result.returncode == 1
    # PMCR_EL0.P zeroes the event counters; counter 0 is not enabled, so SW_INCR leaves it 0
    assert result.stderr.decode() == (f"{work}:6:5: error: expectation failed: counter=0 "
                                      "eq=5: actual 0\n")


# --- broken pipes and full disks ------------------------------------------------------------

def closed_pipe() -> int:
    """A pipe whose reader is already gone: every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


PIPED = [
    ["lint", "configs/cancel.yaml", "configs/multi-tenant.yaml"],
    ["import", "--kvmtool", "A:0x11-0x11,D:0x30-0x3f"],
    ["compile", SPEC, "--format", "c"],
    ["validate", "configs/first-allow.yaml", "configs/workload-basic.yaml"],
    ["cpus"], ["presets"], ["explain", "configs/cancel.yaml", "CPU_CYCLES"],
    ["diff", "configs/cancel.yaml", "configs/first-allow.yaml"],
    ["events", "--json"], ["run", "--filter", "configs/big-little.yaml", "--json"],
    ["show-pmceid", "--filter", SPEC, "--json"], ["lint", "configs/cancel.yaml", "--json"],
]


@pytest.mark.parametrize("args", PIPED, ids=[" ".join(a[:2]) for a in PIPED])
def test_a_closed_stdout_exits_141_without_a_message(args):
    write_end = closed_pipe()
    try:
        result = run_kvmpmu(*args, stdout=write_end, stderr=-1)
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert b"error" not in result.stderr and b"Traceback" not in result.stderr


def test_a_closed_stdout_exits_141_with_nothing_on_stderr():
    write_end = closed_pipe()
    try:
        result = run_kvmpmu("lint", "configs/cancel.yaml", "--json", stdout=write_end,
                            stderr=-1)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, b"")


def test_a_head_reader_ends_the_command_quietly(tmp_path):
    import subprocess

    from tests.clihelpers import KVMPMU, ROOT

    # ~130 KB of JSON: more than a pipe holds, so the writer sees head go away
    assert len(run_kvmpmu("events", "--json").stdout) > 100_000
    err = tmp_path / "err.txt"
    piped = subprocess.run(f"'{KVMPMU}' events --json 2>'{err}' | head -1; "
                           "echo ${PIPESTATUS[0]}", shell=True, cwd=ROOT, capture_output=True,
                           check=False, executable="/bin/bash")
    assert piped.stdout == b"{\n141\n"
    assert err.read_bytes() == b""


@pytest.mark.parametrize("args", [["run", "--filter", "configs/big-little.yaml", "--json"],
                                  ["lint", "configs/cancel.yaml"], ["cpus"]])
def test_stdout_on_a_full_disk_exits_74_with_one_message(args, tmp_path):
    with open(full_device(tmp_path), "wb") as full:
        result = run_kvmpmu(*args, stdout=full, stderr=-1)
    assert result.returncode == 74
    assert b"error: cannot write standard output: No space left on device" in result.stderr
    assert b"Traceback" not in result.stderr


# --- --json: exactly one document on stdout, whatever happens -------------------------------

@pytest.mark.parametrize("args,code,kind", [
    (["run", "--json", "--bogus"], 2, "usage"),
    (["run", "--json", "--kernel", "4.19"], 2, "usage"),
    (["lint", "--json", "--select", ","], 2, "usage"),  # `lint` alone lints the current folder
    (["run", "--json", "--filter", "configs/nope.yaml"], 3, "spec"),
    (["compile", "configs/cancel.yaml", "--json", "-o", "-"], 2, "usage"),
])
def test_json_mode_always_prints_one_document(args, code, kind):
    result = run_kvmpmu(*args)
    assert result.returncode == code
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["kind"] == kind
    assert {"kind", "message", "hint", "location", "position", "path"} <= set(doc["error"])


def test_json_error_has_a_structured_position(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("vm:\n  vcpus: two\n")
    doc = json.loads(run_kvmpmu("run", "--filter", str(spec), "--json").stdout)
    assert doc["error"]["location"] == f"{spec}:2:10"
    assert doc["error"]["position"] == {"file": str(spec), "line": 2, "column": 10}


def test_fail_entry_is_its_own_error_pointing_at_vm_cpus(tmp_path):
    spec = tmp_path / "bl.yaml"
    spec.write_text(BIG_LITTLE)
    human = run_kvmpmu("run", "--filter", str(spec))
    assert human.returncode == 4
    text = human.stderr.decode()
    assert text.startswith(f"{spec}:7:9: error: vm.cpus: KVM_RUN on vcpu0: exit reason "
                           "KVM_EXIT_FAIL_ENTRY on physical CPU 2 (hardware_entry_failure_reason"
                           " KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED)\n")
    assert "failed: 0:" not in text and "big (0-1)" in text
    error = json.loads(run_kvmpmu("run", "--filter", str(spec), "--json").stdout)["error"]
    assert error["path"] == "vm.cpus" and error["position"]["line"] == 7
    assert error["call"] == {"ioctl": "KVM_RUN", "attr": None, "vcpu": 0, "errno": None,
                             "exit_reason": "KVM_EXIT_FAIL_ENTRY",
                             "hardware_entry_failure_reason":
                                 "KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED", "cpu": 2}


def test_a_failing_kvm_call_carries_ioctl_attribute_vcpu_errno_and_location(tmp_path):
    spec = tmp_path / "e.yaml"
    spec.write_text(EINVAL)
    error = json.loads(run_kvmpmu("run", "--filter", str(spec), "--json").stdout)["error"]
    assert error["kind"] == "kvm" and error["location"] == f"{spec}:2:5"
    assert error["call"] == {"ioctl": "KVM_SET_DEVICE_ATTR",
                             "attr": "KVM_ARM_VCPU_PMU_V3_FILTER", "vcpu": 0, "errno": "EINVAL"}


def test_a_json_spec_error_found_by_the_run_still_has_its_line(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text('{\n  "filters": [\n    {"deny": "0x11"},\n'
                    '    {"action": "deny", "base_event": 65520, "nevents": 32}\n  ]\n}\n')
    error = json.loads(run_kvmpmu("run", "--filter", str(spec), "--json").stdout)["error"]
    assert error["location"] == f"{spec}:4:5"


# --- pipes: nothing wrapped or cut ----------------------------------------------------------

def test_events_in_a_pipe_keep_each_event_on_one_line():
    result = run_kvmpmu("events", "--cpu", "cortex-a53", env_columns="60")
    lines = result.stdout.decode().splitlines()
    count = len(json.loads(run_kvmpmu("events", "--cpu", "cortex-a53", "--json")
                           .stdout)["events"])
    assert len(lines) == count + 2  # a title, a header, one line per event
    assert all(line.startswith("0x") for line in lines[2:])


def test_run_in_a_pipe_at_80_columns_neither_wraps_nor_cuts():
    result = run_kvmpmu("run", "--filter", "configs/allow-basic-profiling.yaml",
                        env_columns="80")
    text = result.stdout.decode()
    assert "base_event=0x21 nevents=2 action=ALLOW (BR_RETIRED..BR_MIS_PRED_RETIRED)" in text
    assert "…" not in text
    row = next(line for line in text.splitlines() if "KVM_ARM_VCPU_INIT" in line)
    assert "features=KVM_ARM_VCPU_PMU_V3" in row


def test_long_error_lines_are_not_wrapped(tmp_path):
    folder = tmp_path / ("x" * 120)
    folder.mkdir()
    spec = folder / "e.yaml"
    spec.write_text(EINVAL)
    result = run_kvmpmu("run", "--filter", str(spec), env_columns="80")
    first = result.stderr.decode().splitlines()[0]
    assert first.startswith(f"{spec}:2:5: error: ") and "EINVAL" in first


def test_a_missing_output_folder_is_an_output_error(tmp_path):
    result = run_kvmpmu("import", "--kvmtool", "A:1-2", "-o", str(tmp_path / "no" / "x.yaml"))
    assert result.returncode == 74 and b"cannot write" in result.stderr
    assert not Path(tmp_path / "no").exists()
