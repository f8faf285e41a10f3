"""Emulated userspace memory: the VMM's address space, so a bad `addr` gives a real EFAULT."""

from __future__ import annotations

import bisect
import errno

from kvmpmu.errors import KvmError

_PAGE = 0x1000


class UserMemory:
    """A sparse set of mapped ranges; reads and writes outside them fail with EFAULT."""

    def __init__(self, base: int = 0x7F0000000000) -> None:
        self._next = base
        self._maps: dict[int, bytearray] = {}
        self._starts: list[int] = []  # ascending: addresses only grow

    def alloc(self, size: int) -> int:
        """Map `size` zeroed bytes and return their address (like an anonymous mmap)."""
        addr = self._next
        self._maps[addr] = bytearray(size)
        self._starts.append(addr)
        self._next += (size + 2 * _PAGE - 1) // _PAGE * _PAGE  # leave an unmapped guard page
        return addr

    def _find(self, addr: int, size: int) -> tuple[bytearray, int]:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            start = self._starts[i]
            buf = self._maps[start]
            if addr + size <= start + len(buf):
                return buf, addr - start
        raise KvmError(errno.EFAULT, f"bad address 0x{addr:x}")

    def read(self, addr: int, size: int) -> bytes:
        buf, off = self._find(addr, size)
        return bytes(buf[off : off + size])

    def write(self, addr: int, data: bytes) -> None:
        buf, off = self._find(addr, len(data))
        buf[off : off + len(data)] = data

    def put(self, data: bytes) -> int:
        """Map a fresh buffer holding `data` and return its address."""
        addr = self.alloc(len(data))
        self.write(addr, data)
        return addr
