"""`-o PATH`: where command output goes, without ever harming what is there.

`-` is stdout. A new path or a regular file is replaced atomically (a temporary file beside
it, then a rename) and keeps the old file's mode (new files: 0666 & ~umask). A symlink is
followed and its target replaced the same way. Anything else (a character device, a FIFO, a
socket) is opened and written directly, never replaced.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile

from kvmpmu.cli import output
from kvmpmu.errors import OutputError

STDOUT = "-"


def _fail(path: str, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}", path="--output")


def write_output(path: str, data: bytes) -> None:
    if path == STDOUT:
        output.emit_bytes(data)
        return
    target = os.path.realpath(path)  # through symlinks, to the file they name
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _fail(path, exc) from None
    if mode is not None and stat.S_ISSOCK(mode):
        _write_socket(path, target, data)
    elif mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        _write_in_place(path, target, data)  # a device or a FIFO: its reader wants the bytes
    else:
        _replace(path, target, data, None if mode is None else stat.S_IMODE(mode))


def _write_in_place(path: str, target: str, data: bytes) -> None:
    try:
        with open(target, "wb") as out:
            out.write(data)
            out.flush()
    except OSError as exc:
        raise _fail(path, exc) from None


def _write_socket(path: str, target: str, data: bytes) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(target)
            sock.sendall(data)
    except OSError as exc:
        raise _fail(path, exc) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace(path: str, target: str, data: bytes, mode: int | None) -> None:
    """A temporary file beside the target, then a rename: on any failure the old file (or
    none) stays and the temporary file is removed."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kvmpmu-", dir=os.path.dirname(target))
    except OSError as exc:
        raise _fail(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), 0o666 & ~_umask() if mode is None else mode)
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _fail(path, exc) from None
        raise
