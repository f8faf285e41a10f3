"""A writer of the kernel's initramfs format: "newc" cpio, uncompressed (it unpacks fastest).

Entries are a 110-byte ASCII header (magic 070701, then 13 fields of 8 hex digits), the name
with its NUL, padding to 4 bytes, the data, padding to 4 bytes; a "TRAILER!!!" entry ends the
archive. Archives may be concatenated: the kernel unpacks one after the other.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
BLOCK = 512  # archives end on a block boundary, as GNU cpio writes them


def header(
    ino: int, mode: int, nlink: int, size: int, namesize: int, rdev: tuple[int, int]
) -> bytes:
    """ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
    namesize (with the NUL), check. Owner root, mtime 0: archives are reproducible."""
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], namesize, 0)
    return MAGIC + b"".join(b"%08X" % value for value in fields)


class NewcWriter:
    """Append entries to a binary stream; `close` writes the trailer (the stream stays open)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._offset = 0
        self._ino = 0

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._offset += len(data)

    def _pad(self, boundary: int = 4) -> None:
        self._write(b"\0" * (-self._offset % boundary))

    def _entry(self, name: str, mode: int, size: int, rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.lstrip("/").encode() + b"\0"
        self._ino += 1
        nlink = 2 if stat.S_ISDIR(mode) else 1
        self._write(header(self._ino, mode, nlink, size, len(encoded), rdev) + encoded)
        self._pad()

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode, 0)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, len(data))
        self._write(data)
        self._pad()

    def copy(self, name: str, source: Path, mode: int) -> None:
        """A regular file's content streamed from the host."""
        size = source.stat().st_size
        self._entry(name, stat.S_IFREG | mode, size)
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 20):
                self._write(chunk)
        self._pad()

    def symlink(self, name: str, target: str) -> None:
        data = target.encode()
        self._entry(name, stat.S_IFLNK | 0o777, len(data))
        self._write(data)
        self._pad()

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, 0, (major, minor))

    def tree(self, source: Path, dest: str) -> None:
        """`source`'s contents under `dest`, parents first (the kernel creates nothing itself)."""
        for folder, dirs, files in os.walk(source):
            dirs.sort()
            relative = os.path.relpath(folder, source)
            base = dest if relative == "." else f"{dest.rstrip('/')}/{relative}"
            for name in sorted(dirs + files):
                path = Path(folder, name)
                info = path.lstat()
                mode = stat.S_IMODE(info.st_mode)
                guest = f"{base.rstrip('/')}/{name}"
                if stat.S_ISLNK(info.st_mode):
                    self.symlink(guest, os.readlink(path))
                elif stat.S_ISDIR(info.st_mode):
                    self.directory(guest, mode)
                elif stat.S_ISREG(info.st_mode):
                    self.copy(guest, path, mode)
            dirs[:] = [d for d in dirs if not Path(folder, d).is_symlink()]

    def close(self) -> None:
        self._entry(TRAILER, 0, 0)
        self._pad(BLOCK)
