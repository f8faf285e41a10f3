"""The guest's root filesystem: a cached base archive plus a small one per run, concatenated.

Base (cached): the mount points, /dev/console, Debian's Python runtime and the wheels' site
folder. Per run: /init, the guest modules, the checkout's kvmpmu (byte-compiled), the job
(what to run) and the caller's input files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from realkvm.cache import read_record, write_record
from realkvm.cpio import NewcWriter
from realkvm.errors import RealKvmError
from realkvm.pyc import byte_compile
from realkvm.wheels import GUEST_SITE

GUEST_ROOT = "/opt/realkvm"
GUEST_LIB = f"{GUEST_ROOT}/lib"  # the guest modules, as package realkvm.guest
GUEST_SRC = f"{GUEST_ROOT}/src"  # the project's kvmpmu
GUEST_JOB = f"{GUEST_ROOT}/job.json"
GUEST_PROBE = f"{GUEST_LIB}/realkvm/guest/probe.py"
GUEST_SERIES = f"{GUEST_LIB}/realkvm/guest/series.py"
GUEST_MODULES = ("__init__.py", "channel.py", "probe.py", "series.py")
PAYLOAD_ENV = {
    "PYTHONPATH": f"{GUEST_SRC}:{GUEST_SITE}",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUTF8": "1",  # no locale data inside
    "HOME": "/root",
    "PATH": "/usr/bin:/bin",
    "TERM": "dumb",
}
RESERVED = ("/init", GUEST_ROOT, "/proc", "/sys", "/dev")  # /init mounts the last three
BASE_FORMAT = 1  # bump when the base archive's layout changes
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GuestFile:
    """An input file or folder of the host, placed at an absolute path inside the guest."""

    source: Path
    dest: str

    @classmethod
    def parse(cls, spec: str) -> GuestFile:
        """`SRC:DEST` as given to `--file`."""
        source, sep, dest = spec.rpartition(":")
        path = PurePosixPath(dest)
        if not sep or not source or not path.is_absolute() or ".." in path.parts:
            raise RealKvmError(f"--file {spec}: expected SRC:DEST with an absolute DEST")
        taken = [PurePosixPath(p) for p in RESERVED]
        if path == PurePosixPath("/") or any(p == path or p in path.parents for p in taken):
            raise RealKvmError(f"--file {spec}: {path} is the harness's own or mounted over")
        if not Path(source).exists():
            raise RealKvmError(f"--file {spec}: {source} does not exist")
        return cls(Path(source), str(path))


def build_base(folder: Path, runtime: Path, site: Path, manifest: dict[str, Any]) -> Path:
    """`folder/base.cpio`, rebuilt only when the runtime or the wheels changed."""
    archive = folder / "base.cpio"
    expected = {**manifest, "format": BASE_FORMAT}
    if archive.is_file() and read_record(folder / "base.json") == expected:
        return archive
    partial = folder / "base.cpio.partial"
    with open(partial, "wb") as out:
        writer = NewcWriter(out)
        for name in ("dev", "proc", "sys", "root", "run", "opt", GUEST_ROOT):
            writer.directory(name)
        writer.directory("tmp", 0o1777)
        writer.char_device("dev/console", 5, 1)  # the kernel opens it for init's stdio
        writer.tree(runtime, "/")
        writer.directory(GUEST_SITE)
        writer.tree(site, GUEST_SITE)
        writer.close()
    partial.replace(archive)
    write_record(folder / "base.json", expected)
    return archive


def job_document(argv: list[str], cwd: str = "/") -> dict[str, Any]:
    """What /init runs: `python3.11 ARGV...` in `cwd` with the payload's environment."""
    return {"argv": argv, "cwd": cwd, "env": PAYLOAD_ENV}


def build_initramfs(
    dest: Path, base: Path, checkout: Path, job: dict[str, Any], files: list[GuestFile]
) -> Path:
    """`dest`: the base archive followed by this run's archive."""
    for item in files:  # the archive would copy itself until the disk is full
        if item.source.is_dir() and dest.parent.resolve().is_relative_to(item.source.resolve()):
            raise RealKvmError(f"--file {item.source}: the output folder {dest.parent} is inside "
                               "it; choose another --out")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(prefix="realkvm-run-") as scratch:
            _stage_python(Path(scratch), checkout)
            with open(partial, "wb") as out:
                _write_run_archive(out, base, Path(scratch), job, files)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise RealKvmError(f"cannot build {dest}: {error.strerror or error}") from None
    partial.replace(dest)
    return dest


def _write_run_archive(out: BinaryIO, base: Path, stage: Path, job: dict[str, Any],
                       files: list[GuestFile]) -> None:
    with open(base, "rb") as head:
        shutil.copyfileobj(head, out, 1 << 20)
    writer = NewcWriter(out)
    writer.copy("init", HERE / "guest" / "init.py", 0o755)
    writer.file(GUEST_JOB, json.dumps(job).encode())
    writer.tree(stage, "/")
    for item in files:
        _add_input(writer, item)
    writer.close()


def _stage_python(stage: Path, checkout: Path) -> None:
    lib = stage / GUEST_LIB.lstrip("/")
    (lib / "realkvm" / "guest").mkdir(parents=True)
    (lib / "realkvm" / "__init__.py").write_text("")  # not the host package: guest modules only
    for name in GUEST_MODULES:
        shutil.copy(HERE / "guest" / name, lib / "realkvm" / "guest" / name)
    src = stage / GUEST_SRC.lstrip("/")
    shutil.copytree(
        checkout / "kvmpmu", src / "kvmpmu", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    byte_compile(lib, GUEST_LIB)
    byte_compile(src, GUEST_SRC)


def _add_input(writer: NewcWriter, item: GuestFile) -> None:
    parents = PurePosixPath(item.dest).parents
    for parent in reversed([p for p in parents if str(p) != "/"]):
        writer.directory(str(parent))
    if item.source.is_dir():
        writer.directory(item.dest)
        writer.tree(item.source, item.dest)
    else:
        writer.copy(item.dest, item.source, 0o644)
