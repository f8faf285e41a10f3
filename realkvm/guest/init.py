#!/usr/bin/python3.11 -SBu
"""PID 1 of the guest: mount, run the payload, send its result to the host, power off.

The kernel gives init no PATH and mounts nothing; PID 1 must never exit (the kernel would
panic), so power-off happens in a `finally`, and a failed power-off waits for the host's timeout.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import termios
import time
import traceback
from typing import Any

sys.path.insert(0, "/opt/realkvm/lib")

from realkvm.guest import channel

JOB = "/opt/realkvm/job.json"
MOUNTS = (("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"), ("devtmpfs", "/dev", "devtmpfs"))
RB_POWER_OFF = 0x4321FEDC
CONSOLE = 1

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def mount(source: str, target: str, fstype: str) -> None:
    os.makedirs(target, exist_ok=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def silence_kernel() -> None:
    """Console log level 1 from here: only emergencies interleave with the result."""
    with open("/proc/sys/kernel/printk", "w") as printk:
        printk.write("1")


def run_payload(job: dict[str, Any]) -> dict[str, Any]:
    """The payload learns which boot it is in from REALKVM_KERNEL and REALKVM_CONFIG."""
    boot = {k: v for k, v in os.environ.items() if k.startswith("REALKVM_")}
    boot.pop(channel.NONCE_ENV, None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, *job["argv"]],
        cwd=job["cwd"],
        env={**job["env"], **boot},
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return {
        "exit_status": done.returncode,
        "stdout": done.stdout.decode("utf-8", "replace"),
        "stderr": done.stderr.decode("utf-8", "replace"),
        "payload_seconds": round(time.monotonic() - started, 3),
    }


def send(result: dict[str, Any]) -> None:
    data = channel.encode(result, os.environ.get(channel.NONCE_ENV, "")).encode()
    while data:
        data = data[os.write(CONSOLE, data) :]
    termios.tcdrain(CONSOLE)  # the UART must have sent it all before the power goes


def main() -> None:
    result: dict[str, Any] = {"uname_r": os.uname().release}
    try:
        for source, target, fstype in MOUNTS:
            mount(source, target, fstype)
        silence_kernel()
        with open("/proc/uptime") as uptime:
            result["kernel_seconds"] = float(uptime.read().split()[0])
        with open(JOB, encoding="utf-8") as handle:
            job = json.load(handle)
        result.update(run_payload(job))
    except BaseException:
        result["init_error"] = traceback.format_exc()
    finally:
        try:
            send(result)
        finally:
            libc.reboot(RB_POWER_OFF)
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
