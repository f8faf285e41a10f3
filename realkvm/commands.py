"""Running host tools (apt-get, dpkg-deb, pip): a failure becomes RealKvmError with its output."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from realkvm.errors import RealKvmError

TIMEOUT = 1200.0  # seconds: a download that stalls this long fails the fetch


def run_tool(argv: Sequence[str], cwd: Path | None = None) -> str:
    """Run a command to completion and return its stdout; a failure names the command."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except OSError as error:
        raise RealKvmError(f"cannot run {argv[0]}: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise RealKvmError(f"{' '.join(argv[:3])} ... took over {TIMEOUT:g} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise RealKvmError(f"{' '.join(argv[:3])} ... failed (exit {done.returncode}):\n{tail}")
    return done.stdout
