#!/usr/bin/python3.11
"""Several payloads in one boot, one after the other (a boot costs more than most payloads).

argv[1] is a JSON list of payloads for this Python: an argv, or {"argv": [...], "only":
["KERNEL-CONFIG", ...]} for one that runs in those boots only (REALKVM_KERNEL, REALKVM_CONFIG
name this one). stdout is one JSON list with, for each payload that ran, its argv, exit status,
stdout, stderr and seconds. Exit status 0 once they ran (their own statuses are in the list).
Standard library only, like the probe.

Under QEMU's TCG a new L2 VM now and then takes an external abort at its first instruction
fetch and spins in its vector table (README, "What the real kernels showed"); a payload whose
kvmpmu run ends that way runs once more, and the first attempt's stderr stays in the result
(`retried`), so a retry is seen, never hidden.
"""

from __future__ import annotations

import json
import os
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


# kvmpmu's watchdog message for a vCPU stuck at VBAR_EL1 0 + 0x200 after an instruction abort
TCG_FIRST_FETCH_ABORT = ("pc 0x200,", "ESR_EL1 0x86000010,", "VBAR_EL1 0x0)")


def run_with_retry(argv: list[str]) -> dict[str, object]:
    result = run_one(argv)
    stderr = str(result["stderr"])
    if result["exit_status"] != 0 and all(mark in stderr for mark in TCG_FIRST_FETCH_ABORT):
        return {**run_one(argv), "retried": stderr}
    return result


def here(payload: list[str] | dict[str, list[str]]) -> list[str] | None:
    """The payload's argv, if it runs in this boot."""
    if isinstance(payload, list):
        return payload
    boot = f"{os.environ.get('REALKVM_KERNEL')}-{os.environ.get('REALKVM_CONFIG')}"
    return payload["argv"] if boot in payload["only"] else None


def main() -> int:
    payloads = [here(p) for p in json.loads(sys.argv[1])]
    json.dump([run_with_retry(argv) for argv in payloads if argv is not None], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
