"""Atomic output files under injected failures, and byte-identical output from run to run."""

import os
import subprocess
import sys

import pytest

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import ROOT, run_cli


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "filters.c"
    out.write_text("old contents")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    result = run_cli("compile", "configs/multi-tenant.yaml", "--format", "c", "-o", str(out))
    assert result.exit_code == ExitCode.OUTPUT_FAILED
    assert "cannot write" in result.stderr and "No space left on device" in result.stderr
    assert out.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["filters.c"]


def test_an_interrupted_write_leaves_no_file_at_all(tmp_path, monkeypatch):
    out = tmp_path / "spec.yaml"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    result = run_cli("import", "--kvmtool", "A:0x11-0x11", "-o", str(out))
    assert result.exit_code == ExitCode.INTERRUPTED
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_a_clear_error(tmp_path):
    result = run_cli("import", "--kvmtool", "A:0x11-0x11", "-o",
                     str(tmp_path / "no" / "such" / "dir" / "x.yaml"))
    assert result.exit_code == ExitCode.OUTPUT_FAILED and "cannot write" in result.stderr


COMMANDS = [
    ["run", "--filter", "configs/big-little.yaml", "--json"],
    ["run", "--filter", "configs/deny-shared-cache.yaml", "--workload",
     "configs/workload-basic.yaml"],
    ["show-pmceid", "--filter", "configs/multi-tenant.yaml"],
    ["lint", "configs/cancel.yaml", "configs/multi-tenant.yaml", "--json"],
    ["compile", "configs/deny-shared-cache.yaml", "--format", "c"],
    ["events", "--cpu", "cortex-a53", "--json"],
]


def _run(args, seed):
    env = dict(os.environ, PYTHONHASHSEED=str(seed), COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "kvmpmu", *args], cwd=ROOT, env=env,
                          capture_output=True, check=False).stdout


@pytest.mark.parametrize("args", COMMANDS, ids=[a[0] + "-" + a[2].split("/")[-1] for a in COMMANDS])
def test_output_is_byte_identical_across_processes(args):
    first, second = _run(args, 1), _run(args, 2)
    assert first and first == second
