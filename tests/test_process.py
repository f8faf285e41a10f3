"""The `kvmpmu` process: the cyclic collector is off while it starts, on (blind to start-up's
objects) while a command runs, and not run again at exit."""

import subprocess
import sys

from tests.clihelpers import ROOT

REPORT = ("import atexit, gc, sys\n"
          "from kvmpmu.__main__ import main\n"
          "atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count(), file=sys.stderr))\n"
          "sys.argv = ['kvmpmu', *sys.argv[1:]]\n"
          "main()\n")


def collector_at_exit(*args: str) -> tuple[bool, int]:
    result = subprocess.run([sys.executable, "-c", REPORT, *args], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    enabled, frozen = result.stderr.split()[-2:]
    return enabled == "True", int(frozen)


def test_a_command_runs_with_the_collector_on_and_start_up_frozen():
    enabled, frozen = collector_at_exit("validate", "configs/deny-shared-cache.yaml")
    assert enabled and frozen > 10_000  # the modules' functions, classes and dicts


def test_without_a_command_the_collector_stays_off_until_exit():
    enabled, frozen = collector_at_exit("--version")
    assert not enabled and frozen > 0
