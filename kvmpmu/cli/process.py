"""The `kvmpmu` process: its entry point, and the cyclic collector tuned for a short life.

Start-up makes objects that live until exit (modules, classes, functions, click's commands):
the collector, run every 700 allocations, would walk them again and again (about a tenth of
a short command's run), and the interpreter's last collections at exit walk them all once
more. So the collector waits until the command's module is in, then runs blind to what
start-up made (`gc.freeze`), and nothing is collected at exit: atexit handlers, the flushing
of files and the modules' own teardown still happen. Nothing here imports click, so that the
collector is off before click loads.
"""

from __future__ import annotations

import gc
import sys

_starting = False


def main() -> None:
    global _starting
    if gc.isenabled():
        gc.disable()
        _starting = True
    from kvmpmu.cli.boundary import run_main
    from kvmpmu.cli.main import cli

    status = run_main(cli, sys.argv[1:])
    gc.freeze()
    sys.exit(status)


def command_loaded() -> None:
    """The command's module is in: the collector runs from here, blind to start-up's objects."""
    global _starting
    if _starting:
        _starting = False
        gc.freeze()
        gc.enable()
