"""Byte-compiling trees for the guest's Python 3.11, as it will see them.

Debian ships no .pyc; without them every boot recompiles what it imports (~2 s under TCG).
Unchecked-hash .pyc are used whatever the source's timestamp (cpio does not keep it for us).
"""

from __future__ import annotations

import compileall
import py_compile
import sys
from pathlib import Path

from realkvm.errors import RealKvmError

GUEST_PYTHON = (3, 11)


def require_guest_python() -> None:
    """The .pyc magic number must be the guest's: the host interpreter has to be 3.11 too."""
    if sys.version_info[:2] != GUEST_PYTHON:
        have = ".".join(map(str, sys.version_info[:2]))
        raise RealKvmError(f"the harness needs Python 3.11 (the guest's) for .pyc; this is {have}")


def byte_compile(tree: Path, guest_path: str) -> None:
    """Compile every .py under `tree`, recording `guest_path` + relative path as its file name."""
    require_guest_python()
    ok = compileall.compile_dir(
        str(tree),
        quiet=2,
        stripdir=str(tree),
        prependdir=guest_path,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise RealKvmError(f"byte-compiling {tree} failed (a file does not compile under 3.11)")
