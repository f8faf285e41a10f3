"""The real-kernel harness's parts that need no QEMU: command lines, apt state, the console
channel, kernel package resolution, input files and exit codes."""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvmpmu.uapi import kvm as uapi
from realkvm import __main__ as cli
from realkvm.debian import (
    BOOKWORM,
    SID,
    AptState,
    Mirrors,
    depends_names,
    mirrors_from,
    newest_first,
    parse_sources,
    parse_stanza,
)
from realkvm.errors import RealKvmError
from realkvm.guest import channel, probe
from realkvm.initramfs import GuestFile
from realkvm.kernels import BOOT_VMLINUZ, MODULES_VMLINUZ, KernelImage, extract_member
from realkvm.machine import CONFIGS, boot, qemu_command
from realkvm.runner import BootResult, boot_once, run
from realkvm.runtime import relative_symlinks
from realkvm.wheels import pip_download_command, runtime_requirements

BASE = ["-M", "virt,virtualization=on,gic-version=3"]
FIXED = ["-smp", "1", "-m", "1024", "-nographic", "-no-reboot", "-nic", "none",
         "-kernel", "/k/vmlinuz", "-initrd", "/k/initrd"]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "cpu", "extra"),
    [
        ("max-vhe", "max,pauth-impdef=on", ""),
        ("max-nvhe", "max,pauth-impdef=on", " kvm-arm.mode=nvhe"),
        ("a57-nvhe", "cortex-a57", ""),
    ],
    ids=["max-vhe", "max-nvhe", "a57-nvhe"],
)
def test_qemu_command_per_config(config, cpu, extra):
    env = {"REALKVM_NONCE": "n0nce", "REALKVM_KERNEL": "6.1"}
    command = qemu_command(CONFIGS[config], Path("/k/vmlinuz"), Path("/k/initrd"), env)
    append = (f"console=ttyAMA0 rdinit=/init panic=-1 quiet{extra} "
              "REALKVM_NONCE=n0nce REALKVM_KERNEL=6.1")  # fmt: skip
    assert command == ["qemu-system-aarch64", *BASE, "-cpu", cpu, *FIXED, "-append", append]


MIRRORS = Mirrors("http://archive.example/debian", "http://archive.example/debian-security",
                  "/usr/share/keyrings/debian-archive-keyring.gpg")  # fmt: skip


def test_apt_options_keep_apt_off_the_machines_state(tmp_path):
    options = AptState(tmp_path, BOOKWORM, MIRRORS).options()
    pairs = options[1::2]
    assert options[0::2] == ["-o"] * len(pairs)
    assert pairs[:8] == [
        f"Dir::State={tmp_path}/state",
        f"Dir::State::Lists={tmp_path}/lists",
        f"Dir::State::status={tmp_path}/status",
        f"Dir::Cache={tmp_path}/cache",
        f"Dir::Etc::SourceList={tmp_path}/sources.list",
        f"Dir::Etc::SourceParts={tmp_path}/sources.list.d",
        f"Dir::Etc::Preferences={tmp_path}/preferences",
        f"Dir::Etc::PreferencesParts={tmp_path}/preferences.d",
    ]
    assert "APT::Architecture=arm64" in pairs and "APT::Architectures::=arm64" in pairs
    directories = [p.split("=", 1)[1] for p in pairs if p.startswith("Dir")]
    assert all(path.startswith(str(tmp_path)) for path in directories)


def test_sources_list_names_every_suite_of_the_release(tmp_path):
    keyring = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    assert AptState(tmp_path, BOOKWORM, MIRRORS).sources_list().splitlines() == [
        f"deb {keyring} http://archive.example/debian bookworm main",
        f"deb {keyring} http://archive.example/debian bookworm-updates main",
        f"deb {keyring} http://archive.example/debian-security bookworm-security main",
    ]
    assert AptState(tmp_path, SID, MIRRORS).sources_list() == (
        f"deb {keyring} http://archive.example/debian sid main\n"
    )


DEB822 = """\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://other.example/debian
Suites: bookworm-security

Types: deb
URIs: http://mirror.example/debian-security/
Suites: bookworm-security
Components: main
"""


def test_mirrors_come_from_the_machines_deb822_sources(monkeypatch):
    monkeypatch.delenv("KVMPMU_REALKVM_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("KVMPMU_REALKVM_SECURITY_MIRROR", raising=False)
    assert mirrors_from(parse_sources(DEB822), "bookworm") == Mirrors(
        "http://mirror.example/debian", "http://mirror.example/debian-security",
        "/usr/share/keyrings/debian-archive-keyring.gpg",
    )  # fmt: skip


def test_mirrors_from_one_line_sources_and_overrides(monkeypatch):
    text = ("deb [arch=amd64 signed-by=/k.gpg] http://a.example/debian bookworm main\n"
            "deb http://s.example/debian-security bookworm-security main  # sec\n")  # fmt: skip
    monkeypatch.setenv("KVMPMU_REALKVM_SECURITY_MIRROR", "http://override.example/sec/")
    monkeypatch.delenv("KVMPMU_REALKVM_DEBIAN_MIRROR", raising=False)
    assert mirrors_from(parse_sources(text), "bookworm") == Mirrors(
        "http://a.example/debian", "http://override.example/sec", "/k.gpg"
    )


def test_an_inline_key_block_leaves_the_keyring_to_apt(monkeypatch):
    monkeypatch.delenv("KVMPMU_REALKVM_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("KVMPMU_REALKVM_SECURITY_MIRROR", raising=False)
    text = ("Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-security\n"
            "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGPL\n")  # fmt: skip
    assert mirrors_from(parse_sources(text), "bookworm").signed_by is None


def test_no_debian_archive_in_the_sources_is_an_error(monkeypatch):
    monkeypatch.delenv("KVMPMU_REALKVM_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("KVMPMU_REALKVM_SECURITY_MIRROR", raising=False)
    with pytest.raises(RealKvmError, match="KVMPMU_REALKVM_DEBIAN_MIRROR"):
        mirrors_from(parse_sources("deb http://x.example/ubuntu jammy main\n"), "bookworm")


SPLIT_IMAGE = """\
Package: linux-image-7.3.4+deb13-arm64
Version: 7.3.4-1~bpo13+1
Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool,
 linux-base-7.3.4+deb13-arm64 (= 7.3.4-1~bpo13+1),
 linux-binary-7.3.4+deb13-arm64 (= 7.3.4-1~bpo13+1)
Size: 1892

Package: linux-image-7.3.4+deb13-arm64
Version: 7.3.3-1
"""


def test_control_stanza_and_depends_of_a_split_kernel():
    fields = parse_stanza(SPLIT_IMAGE)
    assert fields["Version"] == "7.3.4-1~bpo13+1" and fields["Size"] == "1892"
    assert depends_names(fields["Depends"]) == [
        "dracut", "linux-base-7.3.4+deb13-arm64", "linux-binary-7.3.4+deb13-arm64",
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg (Debian)")
def test_versions_in_debian_order():
    assert newest_first(["6.1.176-1", "7.2.13-1", "6.1.192-3", "7.3.4-1~bpo13+1", "7.3.4-1"]) == [
        "7.3.4-1", "7.3.4-1~bpo13+1", "7.2.13-1", "6.1.192-3", "6.1.176-1",
    ]  # fmt: skip


def build_deb(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    root = tmp_path / name
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: k\nVersion: 1\nArchitecture: arm64\nMaintainer: m <m@example.org>\n"
        "Description: d\n"
    )
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    deb = tmp_path / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(root), str(deb)],
                   check=True, capture_output=True)  # fmt: skip
    return deb


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def test_vmlinuz_is_taken_from_boot_or_from_the_modules_folder(tmp_path):
    image = build_deb(tmp_path, "image", {"boot/config-9.9": b"c", "boot/vmlinuz-9.9": b"IMAGE"})
    assert extract_member(image, BOOT_VMLINUZ, tmp_path / "a")
    assert (tmp_path / "a").read_bytes() == b"IMAGE"
    assert not extract_member(image, MODULES_VMLINUZ, tmp_path / "b")
    binary = build_deb(tmp_path, "binary", {"usr/lib/modules/9.9/vmlinuz": b"SPLIT"})
    assert extract_member(binary, MODULES_VMLINUZ, tmp_path / "c")
    assert (tmp_path / "c").read_bytes() == b"SPLIT"


def test_channel_round_trip_through_kernel_noise():
    result = {"exit_status": 3, "stdout": "x" * 5000 + "é", "stderr": ""}
    frame = channel.encode(result, "abc123")
    lines = frame.splitlines()
    noisy = "[    1.0] booting\r\n" + "\r\n".join(
        line + ("\r\n[    2.5] kvm [1]: noise" if i == 1 else "") for i, line in enumerate(lines)
    )
    assert channel.decode(noisy + "\r\n", "abc123") == result


def test_channel_detects_a_torn_line_and_a_foreign_nonce():
    frame = channel.encode({"stdout": secrets.token_hex(3000)}, "n1")  # incompressible
    lines = frame.splitlines()
    assert len(lines) > 4
    data = lines[2]
    torn = frame.replace(data, data[:30] + "[ 3.1] oops" + data[30:])
    with pytest.raises(channel.Garbled, match="intact lines"):
        channel.decode(torn, "n1")
    swapped = frame.replace(data, data[:-8] + data[-4:] + data[-8:-4])
    with pytest.raises(channel.Garbled, match="CRC"):
        channel.decode(swapped, "n1")
    with pytest.raises(channel.NoResult, match="no result"):
        channel.decode(frame, "n2")
    with pytest.raises(channel.Garbled, match="no end line"):
        channel.decode("\n".join(lines[:-1]), "n1")


def test_probe_ioctl_numbers_agree_with_the_uapi_layer():
    assert (probe.KVM_GET_API_VERSION, probe.KVM_CREATE_VM, probe.KVM_CHECK_EXTENSION) == (
        0xAE00, uapi.KVM_CREATE_VM, uapi.KVM_CHECK_EXTENSION,
    )  # fmt: skip
    assert probe.KVM_CREATE_VCPU == uapi.KVM_CREATE_VCPU
    assert probe.KVM_ARM_VCPU_INIT == uapi.KVM_ARM_VCPU_INIT == 0x4020AEAE
    assert probe.KVM_ARM_PREFERRED_TARGET == uapi.KVM_ARM_PREFERRED_TARGET == 0x8020AEAF
    assert probe.KVM_HAS_DEVICE_ATTR == uapi.KVM_HAS_DEVICE_ATTR == 0x4018AEE3
    assert probe.CAPABILITIES == {
        "KVM_CAP_ARM_PMU_V3": uapi.KVM_CAP_ARM_PMU_V3,
        "KVM_CAP_VCPU_ATTRIBUTES": uapi.KVM_CAP_VCPU_ATTRIBUTES,
    }
    assert probe.PMU_ATTRIBUTES == {name: getattr(uapi, name) for name in probe.PMU_ATTRIBUTES}


def test_guest_file_specs(tmp_path):
    (tmp_path / "in.yaml").write_text("x")
    assert GuestFile.parse(f"{tmp_path}/in.yaml:/input/in.yaml") == GuestFile(
        tmp_path / "in.yaml", "/input/in.yaml"
    )
    for bad, reason in [
        (f"{tmp_path}/in.yaml:input/in.yaml", "absolute DEST"),
        (f"{tmp_path}/in.yaml:/a/../init", "absolute DEST"),
        (f"{tmp_path}/in.yaml:/opt/realkvm/job.json", "harness's own"),
        (f"{tmp_path}/in.yaml:/proc/x", "mounted over"),
        (f"{tmp_path}/missing:/x", "does not exist"),
        ("/x", "SRC:DEST"),
    ]:
        with pytest.raises(RealKvmError, match=reason):
            GuestFile.parse(bad)


def test_runtime_requirements_are_the_projects_dependencies(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["click>=8.1", "pyyaml>=6"]\n'
        '[project.optional-dependencies]\nguest = ["unicorn"]\n'
    )
    assert runtime_requirements(tmp_path / "pyproject.toml") == ["click>=8.1", "pyyaml>=6"]
    command = pip_download_command(["click>=8.1"], tmp_path)
    assert command[1:4] == ["-m", "pip", "download"]
    flags = " ".join(command)
    assert ("--only-binary=:all: --platform manylinux2014_aarch64 --python-version 3.11 "
            "--implementation cp --abi cp311") in flags  # fmt: skip
    assert command[-3:] == ["--dest", str(tmp_path), "click>=8.1"]


def test_a_hung_process_is_killed_at_its_timeout():
    done = boot(["sleep", "30"], timeout=0.5)
    assert done.timed_out and done.returncode is None and done.seconds < 10


def result(outcome: str, exit_status: int | None) -> BootResult:
    return BootResult("6.1", "max-vhe", "p", "1", "6.1.0-1-arm64", outcome, exit_status, "", "",
                      1.0, None, None, None, "log")  # fmt: skip


def test_cli_exit_status_table():
    assert cli.exit_status([result("completed", 0)]) == 0
    assert cli.exit_status([result("completed", 0), result("completed", 4)]) == 1
    assert cli.exit_status([result("completed", 4), result("timeout", None)]) == 4


@pytest.mark.parametrize(
    "argv",
    [["run"], ["run", "--kernel", "4.19", "--", "cpus"], ["probe", "--", "x"],
     ["probe", "--file", "relative:dest"], ["probe", "--config", ""], ["probe", "--jobs", "0"],
     ["probe", "--timeout", "soon"]],
    ids=["run-without-args", "unknown-kernel", "probe-with-args", "bad-file", "empty-config",
         "no-jobs", "bad-timeout"],
)  # fmt: skip
def test_cli_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


FAKE_QEMU = """#!{python}
import sys, time
sys.path.insert(0, {checkout!r})
from realkvm.guest import channel
append = sys.argv[sys.argv.index("-append") + 1]
nonce = append.split("REALKVM_NONCE=")[1].split()[0]
assert "REALKVM_KERNEL=6.1 REALKVM_CONFIG=a57-nvhe" in append
print("[    0.000000] Booting Linux on physical CPU 0x0")
{action}
"""
SENT = {"uname_r": "6.1.0-9-arm64", "exit_status": 7, "stdout": "out", "stderr": "err",
        "payload_seconds": 0.5, "kernel_seconds": 2.0}  # fmt: skip


@pytest.mark.parametrize(
    ("action", "outcome", "exit_status", "error"),
    [
        (f"print(channel.encode({SENT!r}, nonce))", "completed", 7, None),
        ("print(channel.encode({'uname_r': 'r', 'init_error': 'Traceback: boom'}, nonce))",
         "init-error", None, "Traceback: boom"),
        ("print('Kernel panic - not syncing: Attempted to kill init!'); sys.exit(0)",
         "no-result", None, "no result on the console; QEMU exit status 0"),
        ("print(channel.encode({}, nonce)[:-30]); sys.exit(1)",
         "garbled", None, "result frame has no end line (output cut short); QEMU exit status 1"),
        ("sys.stdout.flush(); time.sleep(30)", "timeout", None, "killed after 1 s"),
    ],
    ids=["completed", "init-error", "no-result", "garbled", "timeout"],
)  # fmt: skip
def test_boot_outcome_from_what_reached_the_console(tmp_path, action, outcome, exit_status, error):
    qemu = tmp_path / "qemu"
    checkout = str(Path(__file__).resolve().parent.parent)
    qemu.write_text(FAKE_QEMU.format(python=sys.executable, checkout=checkout, action=action))
    qemu.chmod(0o755)
    image = KernelImage("6.1", "linux-image-6.1.0-9-arm64", "6.1.99-1", "bookworm",
                        tmp_path / "vmlinuz", "2026-01-01T00:00:00Z")  # fmt: skip
    done = boot_once(image, "a57-nvhe", tmp_path / "initrd", 1.0, tmp_path, str(qemu))
    assert (done.outcome, done.exit_status) == (outcome, exit_status)
    assert (done.kernel, done.config, done.package_version) == ("6.1", "a57-nvhe", "6.1.99-1")
    assert (done.error or "").startswith(error or "")
    assert Path(done.console_log).read_text().startswith("[    0.000000] Booting Linux")
    if outcome == "completed":
        assert (done.uname_r, done.stdout, done.stderr) == ("6.1.0-9-arm64", "out", "err")
        assert (done.kernel_seconds, done.payload_seconds) == (2.0, 0.5)


def test_absolute_links_of_the_runtime_stay_inside_it(tmp_path):
    (tmp_path / "etc/python3.11").mkdir(parents=True)
    (tmp_path / "etc/python3.11/sitecustomize.py").write_text("GUEST = 1\n")
    (tmp_path / "usr/lib/python3.11").mkdir(parents=True)
    link = tmp_path / "usr/lib/python3.11/sitecustomize.py"
    link.symlink_to("/etc/python3.11/sitecustomize.py")
    (tmp_path / "usr/bin").mkdir()
    (tmp_path / "usr/bin/python3").symlink_to("python3.11")
    relative_symlinks(tmp_path)
    assert os.readlink(link) == "../../../etc/python3.11/sitecustomize.py"
    assert link.read_text() == "GUEST = 1\n"
    assert os.readlink(tmp_path / "usr/bin/python3") == "python3.11"


def test_unknown_kernel_or_config_through_the_api_is_an_error():
    with pytest.raises(RealKvmError, match="unknown kernel or config: 4.19, max"):
        run(["-c", "pass"], kernels=["6.1", "4.19"], configs=["max"])


def test_a_series_runs_every_payload_in_order_and_keeps_each_result():
    """The guest's series runner, run here by this Python as /init runs it inside."""
    import json

    from realkvm.guest import series
    from realkvm.runner import BootResult

    payloads = [["-c", "print('one')"], ["-c", "import sys; sys.stderr.write('two'); "
                                          "sys.exit(3)"], ["-c", "print(42)"]]
    done = subprocess.run([sys.executable, series.__file__, json.dumps(payloads)],
                          capture_output=True, text=True, check=True)
    boot = BootResult("6.1", "max-vhe", "pkg", "1", "6.1.0", "completed", 0, done.stdout, "",
                      1.0, None, None, None, "")
    results = boot.series()
    assert [r.argv for r in results] == payloads
    assert [(r.exit_status, r.stdout, r.stderr) for r in results] == [
        (0, "one\n", ""), (3, "", "two"), (0, "42\n", "")]
    assert results[2].stdout_json() == 42 and all(r.seconds >= 0 for r in results)


FIRST_FETCH_ABORT = ("error: vcpu0: the guest did not exit to the VMM within 10 s (pc 0x200, "
                     "ELR_EL1 0x200, ESR_EL1 0x86000010, FAR_EL1 0x200, VBAR_EL1 0x0)\n")


def test_a_payload_that_took_the_first_fetch_abort_runs_once_more_and_says_so(tmp_path):
    """QEMU's first-fetch abort (and only it) costs one more attempt; the first one's stderr is
    kept in `retried`, and a second failure is the result."""
    import json

    from realkvm.guest import series
    from realkvm.runner import BootResult

    marker = tmp_path / "attempts"
    flaky = ("import pathlib, sys; m = pathlib.Path(sys.argv[1]); n = len(m.read_text()) "
             "if m.exists() else 0; m.write_text('x' * (n + 1)); "
             f"sys.exit(0 if n else (sys.stderr.write({FIRST_FETCH_ABORT!r}), 5)[1])")
    always = f"import sys; sys.stderr.write({FIRST_FETCH_ABORT!r}); sys.exit(5)"
    other = "import sys; sys.stderr.write('error: vcpu0: something else\\n'); sys.exit(5)"
    payloads = [["-c", flaky, str(marker)], ["-c", always], ["-c", other]]
    done = subprocess.run([sys.executable, series.__file__, json.dumps(payloads)],
                          capture_output=True, text=True, check=True)
    boot = BootResult("6.12", "max-vhe", "pkg", "1", "6.12.0", "completed", 0, done.stdout, "",
                      1.0, None, None, None, "")
    recovered, failed_twice, not_retried = boot.series()
    assert (recovered.exit_status, recovered.retried) == (0, FIRST_FETCH_ABORT)
    assert marker.read_text() == "xx"
    assert (failed_twice.exit_status, failed_twice.stderr) == (5, FIRST_FETCH_ABORT)
    assert failed_twice.retried == FIRST_FETCH_ABORT
    assert (not_retried.exit_status, not_retried.retried) == (5, None)


def test_an_output_folder_inside_a_copied_folder_is_refused_before_anything_is_written(tmp_path):
    """`--file DIR:/x --out DIR/out` would copy the growing archive into itself until the disk
    is full: refused, naming both, and nothing is written."""
    from realkvm.errors import RealKvmError
    from realkvm.initramfs import GuestFile, build_initramfs

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "spec.yaml").write_text("filters: []\n")
    dest = shared / "out" / "initramfs.cpio"
    with pytest.raises(RealKvmError, match=r"--file .*shared: the output folder .*shared/out is"):
        build_initramfs(dest, tmp_path / "base.cpio", tmp_path, {}, [GuestFile(shared, "/x")])
    assert sorted(p.name for p in shared.iterdir()) == ["spec.yaml"]


def test_an_archive_that_cannot_be_written_is_an_error_and_leaves_no_partial_file(tmp_path):
    from realkvm import initramfs
    from realkvm.errors import RealKvmError

    checkout = tmp_path / "checkout"
    (checkout / "kvmpmu").mkdir(parents=True)
    (checkout / "kvmpmu" / "__init__.py").write_text("")
    dest = tmp_path / "out" / "initramfs.cpio"
    with pytest.raises(RealKvmError, match="cannot build .*initramfs.cpio: No such file"):
        initramfs.build_initramfs(dest, tmp_path / "no-base.cpio", checkout, {}, [])
    assert list(dest.parent.iterdir()) == []
