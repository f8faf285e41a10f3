"""Run the CLI in-process with a fixed terminal, and compare against golden files."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result

from kvmpmu.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def run_cli(*args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, list(args), env={"COLUMNS": "120", "NO_COLOR": "1"},
                         catch_exceptions=False)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path} (UPDATE_GOLDEN=1 to accept)"
