"""Debian's arm64 CPython 3.11, unpacked with Debian's layout and byte-compiled on the host."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from realkvm.cache import read_record, write_record
from realkvm.commands import run_tool
from realkvm.debian import AptState, deb_version
from realkvm.errors import RealKvmError
from realkvm.pyc import byte_compile

# The interpreter, its stdlib and the shared libraries its modules load (ctypes: libffi,
# zlib, pyexpat). The stdlib's other libraries (ssl, sqlite, readline, ...) are left out:
# those modules then fail to import, which nothing inside needs.
PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "zlib1g",
    "libexpat1",
    "libffi8",
)
LOADER = "/lib/ld-linux-aarch64.so.1"
LAYOUT = 2  # bump when staging changes: a cached runtime of another layout is staged again
# Never used by a boot, and each file costs boot time (the kernel copies the whole archive).
PRUNED = (
    "usr/share",
    "usr/lib/aarch64-linux-gnu/gconv",
    "usr/lib/aarch64-linux-gnu/audit",
    "usr/lib/python3.11/lib2to3",
    "usr/lib/python3.11/pydoc_data",
    "usr/lib/python3.11/ensurepip",
    "usr/lib/python3.11/idlelib",
    "usr/lib/python3.11/turtledemo",
    "usr/lib/python3.11/tkinter",
)


def cached_runtime(folder: Path) -> dict[str, Any] | None:
    record = read_record(folder / "runtime.json")
    if record is None or record.get("layout") != LAYOUT:
        return None
    return record if (folder / "tree" / "usr/bin/python3.11").is_file() else None


def stage_runtime(state: AptState, folder: Path) -> dict[str, Any]:
    """Download, unpack, prune and compile the runtime into `folder/tree` unless cached."""
    cached = cached_runtime(folder)
    if cached is not None:
        return cached
    partial = folder / "tree.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="realkvm-python-") as scratch:
        debs = state.download(list(PACKAGES), Path(scratch))
        for deb in debs.values():
            run_tool(["dpkg-deb", "-x", str(deb), str(partial)])
        versions = {name: deb_version(deb) for name, deb in debs.items()}
    for pruned in PRUNED:
        target = partial / pruned
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
    relative_symlinks(partial)
    byte_compile(partial / "usr/lib/python3.11", "/usr/lib/python3.11")
    _check_layout(partial)
    shutil.rmtree(folder / "tree", ignore_errors=True)
    partial.replace(folder / "tree")
    record = {"distribution": state.distribution.name, "packages": versions, "layout": LAYOUT}
    write_record(folder / "runtime.json", record)
    return record


def _check_layout(tree: Path) -> None:
    """python3.11 asks for the AArch64 ABI's loader path; Debian keeps it under /lib."""
    if not os.path.lexists(tree / LOADER.lstrip("/")):
        raise RealKvmError(f"the runtime has no {LOADER} (python3.11's program interpreter)")


def relative_symlinks(tree: Path) -> None:
    """Absolute links point into the tree, as in the guest (never at the host's own files:
    sitecustomize.py -> /etc/python3.11/... would compile the host's copy)."""
    for folder, dirs, files in os.walk(tree):
        for name in dirs + files:
            link = Path(folder, name)
            target = os.readlink(link) if link.is_symlink() else ""
            if target.startswith("/"):
                link.unlink()
                link.symlink_to(os.path.relpath(tree / target.lstrip("/"), link.parent))
