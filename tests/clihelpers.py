"""Run the CLI in-process with a fixed terminal, and compare against golden files; run the
installed `kvmpmu` as a user does, for pipes, FIFOs and devices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from kvmpmu.cli.boundary import run_main
from kvmpmu.cli.main import cli
from kvmpmu.spec import yamlio

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
KVMPMU = str(Path(sys.executable).with_name("kvmpmu"))


class _Entry:
    """What CliRunner invokes: the real entry point, exit code and all."""

    name = "kvmpmu"

    def main(self, args: list[str], prog_name: str, **_: Any) -> None:
        raise SystemExit(run_main(cli, list(args)))


def run_cli(*args: str, input: str | None = None) -> Result:
    yamlio.forget_stdin()
    runner = CliRunner()
    return runner.invoke(_Entry(), list(args), input=input,  # type: ignore[arg-type]
                         env={"COLUMNS": "120", "NO_COLOR": "1"}, catch_exceptions=False)


def run_kvmpmu(*args: str, env_columns: str = "120",
               **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """The installed command in a child process, from the repository's folder."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS=env_columns)
    env.pop("KVMPMU_DEBUG", None)
    kwargs.setdefault("capture_output", "stdout" not in kwargs)
    return subprocess.run([KVMPMU, *args], cwd=kwargs.pop("cwd", ROOT), env=env, check=False,
                          **kwargs)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path} (UPDATE_GOLDEN=1 writes it; review it)"
    assert text == path.read_text(), f"output differs from {path} (UPDATE_GOLDEN=1 to accept)"
