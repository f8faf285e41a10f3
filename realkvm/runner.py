"""Boot every (kernel, CPU config) with one initramfs and collect what the payload printed."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from realkvm.cache import cache_root, write_record
from realkvm.errors import RealKvmError
from realkvm.fetch import CHECKOUT, fetch
from realkvm.guest.channel import NONCE_ENV, ChannelError, Garbled, decode
from realkvm.initramfs import GUEST_PROBE, GUEST_SERIES, GuestFile, build_initramfs, job_document
from realkvm.kernels import PROFILES, KernelImage
from realkvm.machine import CONFIGS, QEMU, boot, qemu_command

DEFAULT_TIMEOUT = 300.0  # seconds per boot; a boot takes 3-15 s, machine load swings 2-3x
DEFAULT_OUT = CHECKOUT / "build" / "realkvm"
CONSOLE_TAIL = 40


@dataclass(frozen=True)
class BootResult:
    """One boot: which kernel and CPU, and the payload's exit status and output.

    outcome: "completed" (the payload ran; see exit_status), "init-error" (/init could not run
    it; see error), "timeout", "no-result" (QEMU ended without a result) or "garbled".
    """

    kernel: str
    config: str
    package: str
    package_version: str
    uname_r: str | None
    outcome: str
    exit_status: int | None
    stdout: str
    stderr: str
    boot_seconds: float
    kernel_seconds: float | None
    payload_seconds: float | None
    error: str | None
    console_log: str

    @property
    def ok(self) -> bool:
        return self.outcome == "completed" and self.exit_status == 0

    def stdout_json(self) -> Any:
        """The payload's stdout as a JSON document (what `--json` commands print)."""
        return json.loads(self.stdout)

    def series(self) -> list[PayloadResult]:
        """The payloads of a `run_series` boot, in order."""
        return [PayloadResult(**entry) for entry in self.stdout_json()]


@dataclass(frozen=True)
class PayloadResult:
    """One payload of a series: `python3.11 ARGV...` and what it returned."""

    argv: list[str]
    exit_status: int
    stdout: str
    stderr: str
    seconds: float
    retried: str | None = None  # the first attempt's stderr, if QEMU's first-fetch abort ended it

    def stdout_json(self) -> Any:
        return json.loads(self.stdout)


def run(
    argv: list[str],
    kernels: list[str] | None = None,
    configs: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    out: Path = DEFAULT_OUT,
    files: list[GuestFile] | None = None,
    jobs: int | None = None,
    refresh: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BootResult]:
    """Run `python3.11 ARGV...` inside every selected (kernel, config); write out/summary.json."""
    kernels = list(kernels or PROFILES)
    configs = list(configs or CONFIGS)
    unknown = [k for k in kernels if k not in PROFILES] + [c for c in configs if c not in CONFIGS]
    if unknown:
        raise RealKvmError(f"unknown kernel or config: {', '.join(unknown)}")
    if shutil.which(QEMU) is None:
        raise RealKvmError(f"{QEMU} is not installed (Debian: apt-get install qemu-system-arm)")
    assets = fetch(kernels, cache_root(), refresh, progress)
    started = time.monotonic()
    initramfs = build_initramfs(
        out / "initramfs.cpio", assets.base, CHECKOUT, job_document(argv), files or []
    )
    size = initramfs.stat().st_size >> 20
    progress(f"initramfs {size} MiB in {time.monotonic() - started:.1f} s")
    (out / "console").mkdir(parents=True, exist_ok=True)
    pairs = [(assets.kernels[k], c) for k in kernels for c in configs]

    def one(pair: tuple[KernelImage, str]) -> BootResult:
        result = boot_once(pair[0], pair[1], initramfs, timeout, out / "console")
        progress(summary_line(result))
        return result

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        results = list(pool.map(one, pairs))
    write_record(
        out / "summary.json",
        {
            "argv": argv,
            "timeout": timeout,
            "kernels": {name: image.record() for name, image in assets.kernels.items()},
            "runtime": assets.runtime,
            "wheels": assets.site,
            "boots": [asdict(result) for result in results],
        },
    )
    return results


def run_kvmpmu(args: list[str], **options: Any) -> list[BootResult]:
    """`python3.11 -m kvmpmu ARGS...` inside every selected (kernel, config)."""
    return run(["-m", "kvmpmu", *args], **options)


def run_series(payloads: list[list[str] | dict[str, list[str]]],
               **options: Any) -> list[BootResult]:
    """Several `python3.11 ARGV...` one after the other in every boot (`BootResult.series()`):
    an argv, or `{"argv": [...], "only": ["6.12-max-vhe", ...]}` for some boots only.
    `[realkvm.PROBE]` runs the built-in probe, `["-m", "kvmpmu", ...]` kvmpmu."""
    return run([GUEST_SERIES, json.dumps(payloads)], **options)


def probe(**options: Any) -> list[BootResult]:
    """The built-in probe of /dev/kvm (stdout: one JSON document) inside every boot."""
    return run([GUEST_PROBE], **options)


def boot_once(
    image: KernelImage, config: str, initramfs: Path, timeout: float, logs: Path, qemu: str = QEMU
) -> BootResult:
    """One QEMU run, its console kept in `logs`, classified by what reached the host."""
    nonce = secrets.token_hex(8)
    guest_env = {NONCE_ENV: nonce, "REALKVM_KERNEL": image.profile, "REALKVM_CONFIG": config}
    command = qemu_command(CONFIGS[config], image.vmlinuz, initramfs, guest_env, qemu)
    done = boot(command, timeout)
    log = logs / f"{image.profile}-{config}.log"
    log.write_text(done.console, encoding="utf-8")
    result: dict[str, Any] = {}
    if done.timed_out:
        outcome, error = "timeout", f"killed after {timeout:g} s"
    else:
        try:
            result = decode(done.console, nonce)
            outcome, error = "completed", None
            if "init_error" in result:
                outcome, error = "init-error", result["init_error"]
        except ChannelError as failure:
            outcome = "garbled" if isinstance(failure, Garbled) else "no-result"
            error = f"{failure}; QEMU exit status {done.returncode}"
    if error and outcome != "init-error":
        error += "\n" + "\n".join(done.console.splitlines()[-CONSOLE_TAIL:])
    return BootResult(
        kernel=image.profile,
        config=config,
        package=image.package,
        package_version=image.package_version,
        uname_r=result.get("uname_r"),
        outcome=outcome,
        exit_status=result.get("exit_status"),
        stdout=result.get("stdout", ""),
        stderr=result.get("stderr", ""),
        boot_seconds=done.seconds,
        kernel_seconds=result.get("kernel_seconds"),
        payload_seconds=result.get("payload_seconds"),
        error=error,
        console_log=str(log),
    )


def summary_line(result: BootResult) -> str:
    status = f"exit {result.exit_status}" if result.outcome == "completed" else result.outcome
    return (
        f"{result.kernel:<6} {result.config:<8} {result.package} {result.package_version} "
        f"uname -r {result.uname_r or '?'}: {status}, {result.boot_seconds:.1f} s"
    )
