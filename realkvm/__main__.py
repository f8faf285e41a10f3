"""`python -m realkvm fetch|probe|run`: the command line of the harness.

Exit codes: 0 every boot completed with payload exit 0; 1 a payload exited non-zero; 2 usage;
3 fetching or building failed (or QEMU is missing); 4 a boot failed (timeout, no result, init
error); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from realkvm.cache import cache_root
from realkvm.errors import RealKvmError
from realkvm.fetch import fetch
from realkvm.initramfs import GuestFile
from realkvm.kernels import PROFILES
from realkvm.machine import CONFIGS
from realkvm.runner import DEFAULT_OUT, DEFAULT_TIMEOUT, BootResult, probe, run

EXIT_PAYLOAD, EXIT_USAGE, EXIT_FETCH, EXIT_BOOT, EXIT_INTERRUPTED = 1, 2, 3, 4, 130


def choices(known: Mapping[str, object]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"{','.join(unknown) or text!r}: choose from {','.join(known)}"
            )
        return names

    return parse


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number above 0")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m realkvm", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("fetch", "download what the boots need into the cache"),
        ("probe", "run the built-in /dev/kvm probe in every boot"),
        ("run", "run `python3.11 -m kvmpmu ARGS...` (after --) in every boot"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--kernel", type=choices(PROFILES), default=list(PROFILES),
                             help=f"comma-separated, of {','.join(PROFILES)} (default: all)")
        command.add_argument("--refresh", action="store_true",
                             help="re-read Debian's package lists and follow the meta packages")
        if name == "fetch":
            continue
        command.add_argument("--config", type=choices(CONFIGS), default=list(CONFIGS),
                             help=f"comma-separated, of {','.join(CONFIGS)} (default: all)")
        command.add_argument("--timeout", type=positive(float), default=DEFAULT_TIMEOUT,
                             help=f"seconds per boot (default {DEFAULT_TIMEOUT:g})")
        command.add_argument("--out", type=Path, default=DEFAULT_OUT,
                             help="folder for summary.json, consoles and the initramfs")
        command.add_argument("--file", action="append", default=[], metavar="SRC:DEST",
                             help="copy a host file or folder into the guest at DEST")
        command.add_argument("--jobs", type=positive(int), default=None,
                             help="boots at once (default: number of CPUs)")
        command.add_argument("--json", action="store_true",
                             help="print the summary as one JSON document")
    return top  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    payload: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, payload = argv[:split], argv[split + 1 :]
    top = parser()
    options = top.parse_args(argv)
    if options.command == "run" and not payload:
        top.error("run needs the kvmpmu arguments after --")
    if options.command != "run" and payload:
        top.error(f"{options.command} takes no arguments after --")
    try:
        files = [GuestFile.parse(spec) for spec in getattr(options, "file", [])]
    except RealKvmError as error:
        top.error(str(error))
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if options.command == "fetch":
            assets = fetch(options.kernel, cache_root(), options.refresh, progress)
            for image in assets.kernels.values():
                print(f"{image.profile:<6} {image.package} {image.package_version}")
            return 0
        common = dict(kernels=options.kernel, configs=options.config, timeout=options.timeout,
                      out=options.out, files=files, jobs=options.jobs, refresh=options.refresh,
                      progress=progress)  # fmt: skip
        if options.command == "probe":
            results = probe(**common)
        else:
            results = run(["-m", "kvmpmu", *payload], **common)
    except RealKvmError as error:
        print(f"realkvm: error: {error}", file=sys.stderr)
        return EXIT_FETCH
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    report(results, options.json)
    return exit_status(results)


def report(results: list[BootResult], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(result) for result in results], indent=2))
        return
    for result in results:
        print(f"== {result.kernel} {result.config}: {result.package} {result.package_version}, "
              f"uname -r {result.uname_r}, {result.outcome}, exit {result.exit_status}, "
              f"{result.boot_seconds:.1f} s")  # fmt: skip
        if result.stdout:
            print(result.stdout.rstrip("\n"))
        if result.stderr:
            print("-- stderr:\n" + result.stderr.rstrip("\n"))
        if result.error:
            print("-- error:\n" + result.error.rstrip("\n"))


def exit_status(results: list[BootResult]) -> int:
    if any(result.outcome != "completed" for result in results):
        return EXIT_BOOT
    return EXIT_PAYLOAD if any(result.exit_status != 0 for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
