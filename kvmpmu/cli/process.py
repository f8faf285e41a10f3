"""The cyclic collector, tuned for a short-lived `kvmpmu` process.

Start-up makes objects that live until exit (modules, classes, functions, click's commands):
the collector, run every 700 allocations, would walk them again and again (about a tenth of
a short command's run), and the interpreter's last collections at exit walk them all once
more. So the collector is off while the process starts, runs blind to what start-up made
(`gc.freeze`) once the command's module is in, and is not run at exit: atexit handlers, the
flushing of files and the modules' own teardown still happen.
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

_starting = False


def start() -> None:
    """Before click loads (kvmpmu/__main__.py)."""
    global _starting
    if gc.isenabled():
        gc.disable()
        _starting = True


def command_loaded() -> None:
    """The command's module is in: the collector runs from here, blind to start-up's objects."""
    global _starting
    if _starting:
        _starting = False
        gc.freeze()
        gc.enable()


def end(status: int) -> NoReturn:
    gc.freeze()
    sys.exit(status)
