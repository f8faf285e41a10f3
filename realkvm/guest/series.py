#!/usr/bin/python3.11
"""Several payloads in one boot, one after the other (a boot costs more than most payloads).

argv[1] is a JSON list of argvs for this Python; stdout is one JSON list with, for each, its
argv, exit status, stdout, stderr and seconds. Exit status 0 once every payload ran (their own
statuses are in the list). Standard library only, like the probe.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def run_one(argv: list[str]) -> dict[str, object]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, *argv], stdin=subprocess.DEVNULL, capture_output=True)
    return {
        "argv": argv,
        "exit_status": done.returncode,
        "stdout": done.stdout.decode("utf-8", "replace"),
        "stderr": done.stderr.decode("utf-8", "replace"),
        "seconds": round(time.monotonic() - started, 3),
    }


def main() -> int:
    payloads = json.loads(sys.argv[1])
    json.dump([run_one(argv) for argv in payloads], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
