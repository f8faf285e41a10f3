"""How the kvm backend fills guest RAM (no /dev/kvm needed: the RAM is a plain mapping here)."""

import mmap

import pytest

from kvmpmu.errors import GuestError
from kvmpmu.vmm.kvm_backend import KvmBackend
from kvmpmu.vmm.memmap import RAM_BASE, RAM_SIZE

PAGE = mmap.PAGESIZE


def backend_with_dirty_ram() -> tuple[KvmBackend, mmap.mmap]:
    backend = object.__new__(KvmBackend)  # only its RAM is used: no VM is made
    ram = mmap.mmap(-1, RAM_SIZE)
    ram[: 4 * PAGE] = b"\xa5" * (4 * PAGE)  # what another guest's program left there
    backend._ram = ram
    return backend, ram


def test_a_short_segment_leaves_nothing_else_on_its_page():
    """A 24-byte program at +0x80 of the second page: the rest of that page reads 0 (the
    guest cannot run into stale bytes), the pages around it are not touched."""
    backend, ram = backend_with_dirty_ram()
    program = bytes(range(1, 25))
    backend._write_segments([(RAM_BASE + PAGE + 0x80, program)])
    assert ram[PAGE:2 * PAGE] == bytes(0x80) + program + bytes(PAGE - 0x80 - 24)
    assert ram[:PAGE] == b"\xa5" * PAGE and ram[2 * PAGE:3 * PAGE] == b"\xa5" * PAGE


def test_segments_sharing_a_page_are_all_kept():
    backend, ram = backend_with_dirty_ram()
    backend._write_segments([(RAM_BASE, b"\x11" * 8), (RAM_BASE + 0x100, b"\x22" * 8),
                             (RAM_BASE + PAGE - 4, b"\x33" * 8)])
    assert ram[:8] == b"\x11" * 8 and ram[0x100:0x108] == b"\x22" * 8
    assert ram[PAGE - 4:PAGE + 4] == b"\x33" * 8
    assert ram[8:0x100] == bytes(0xF8) and ram[PAGE + 4:2 * PAGE] == bytes(PAGE - 4)
    assert ram[2 * PAGE:3 * PAGE] == b"\xa5" * PAGE


def test_a_segment_outside_ram_is_named_by_its_own_address():
    backend, _ = backend_with_dirty_ram()
    with pytest.raises(GuestError, match=f"0x{RAM_BASE - 8:x} is outside guest RAM"):
        backend._write_segments([(RAM_BASE - 8, b"\0" * 16)])
