"""Start-up: the commands people run on the example spec against the bare imports of kvmpmu's
libraries, with stdout a pipe and with stdout a pseudo-terminal (where rich draws tables), and
`python -X importtime`'s top 10 per command so that a regression is easy to locate."""

from __future__ import annotations

import fcntl
import os
import pty
import statistics
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

EXAMPLE = "configs/deny-shared-cache.yaml"
COMMANDS = {
    "show-pmceid": ["show-pmceid", "--filter", EXAMPLE],
    "run": ["run", "--filter", EXAMPLE],  # the default workload
    "validate": ["validate", EXAMPLE],
    "lint": ["lint", EXAMPLE],
}
BARE_IMPORTS = "import click, yaml, rich"
TERMINAL_SIZE = (40, 120)  # rows, columns
PIPE_TARGET, TERMINAL_TARGET = 1.3, 1.6
K = TypeVar("K")


def run_piped(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def run_in_terminal(cmd: list[str], cwd: Path) -> float:
    """Wall time with stdout a pseudo-terminal, its output read as a terminal would."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *TERMINAL_SIZE, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.DEVNULL)
    os.close(slave)
    try:
        while os.read(master, 65536):
            pass
    except OSError:  # EIO: every writer of the terminal is gone
        pass
    proc.wait()
    elapsed = time.perf_counter() - start
    os.close(master)
    return elapsed


def interleaved(runs: dict[K, Callable[[], float]], repeat: int,
                statistic: Callable[[list[float]], float] = statistics.median) -> dict[K, float]:
    """The median (or `statistic`) of each, the runs taking turns so that load from other jobs
    on the machine falls on all of them alike."""
    times: dict[K, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistic(values) for name, values in times.items()}


def import_top(cmd: list[str], cwd: Path, bare: set[str], runs: int = 3,
               top: int = 10) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) of the modules a command imports beyond the bare
    imports, the most expensive first: each the lowest of `runs` runs."""
    best: dict[str, tuple[int, int]] = {}
    for _ in range(runs):
        for name, own, total in _import_times(cmd, cwd):
            if name not in bare and (name not in best or own < best[name][0]):
                best[name] = (own, total)
    ranked = sorted(((own, total, name) for name, (own, total) in best.items()), reverse=True)
    return ranked[:top] + [(sum(r[0] for r in ranked), len(ranked), "")]


def imported_by(cmd: list[str], cwd: Path) -> set[str]:
    return {name for name, _, _ in _import_times(cmd, cwd)}


def _import_times(cmd: list[str], cwd: Path) -> list[tuple[str, int, int]]:
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    err = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         check=False).stderr
    out = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, total, name = line.removeprefix("import time:").split("|")
        out.append((name.strip(), int(own), int(total)))
    return out


def print_import_top(command: str, ranked: list[tuple[int, int, str]]) -> None:
    *rows, (total, count, _) = ranked
    print(f"    python -X importtime, `kvmpmu {command}`: {count} modules beyond the bare "
          f"imports, {total / 1000:.1f} ms self in all; the top {len(rows)}:", flush=True)
    for own, cumulative, name in rows:
        print(f"      {own:7,d} us self {cumulative:8,d} us cumulative  {name}", flush=True)
