"""The real kernel: /dev/kvm, a VM, its vCPUs and devices as file descriptors, each method one
ioctl through `fcntl.ioctl` (standard library only). A failing ioctl raises KvmError(errno),
as the emulated kernel's methods do.

Structs that hold pointers point at ctypes buffers kept alive by their owner; guest RAM is an
anonymous mmap; `struct kvm_run` is the vCPU fd's mmap (semantics doc, real-kvm-testing.md).
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import struct
from collections.abc import Callable
from typing import TypeVar

from kvmpmu.errors import KvmError
from kvmpmu.uapi import kvm as uapi

T = TypeVar("T")
_S = TypeVar("_S", bound=uapi.KernelStruct)


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except OSError as err:
        raise KvmError(err.errno or 0, err.strerror or "") from None


def ioctl_int(fd: int, request: int, arg: int = 0) -> int:
    """An ioctl whose argument is an integer (an id, a capability), returning its result."""
    return _call(lambda: fcntl.ioctl(fd, request, arg))


def ioctl_struct(fd: int, request: int, data: _S) -> _S:
    """An ioctl on a struct the kernel reads (and may write back): passed by address."""
    buf = bytearray(data.pack())
    _call(lambda: fcntl.ioctl(fd, request, buf, True))
    return type(data).unpack(bytes(buf))


class Buffer:
    """A fixed C buffer for an ioctl's payload: `addr` stays valid while the object lives."""

    def __init__(self, size: int) -> None:
        self._buf = ctypes.create_string_buffer(max(size, 8))
        self.addr = ctypes.addressof(self._buf)

    def write(self, data: bytes) -> None:
        ctypes.memmove(self._buf, data, len(data))

    def read(self, size: int) -> bytes:
        return self._buf.raw[:size]


class KvmFd:
    """/dev/kvm."""

    def __init__(self, path: str = "/dev/kvm") -> None:
        self.fd = _call(lambda: os.open(path, os.O_RDWR | os.O_CLOEXEC))

    def api_version(self) -> int:
        return ioctl_int(self.fd, uapi.KVM_GET_API_VERSION)

    def check_extension(self, cap: int) -> int:
        return ioctl_int(self.fd, uapi.KVM_CHECK_EXTENSION, cap)

    def vcpu_mmap_size(self) -> int:
        return ioctl_int(self.fd, uapi.KVM_GET_VCPU_MMAP_SIZE)

    def create_vm(self) -> VmFd:
        return VmFd(self, ioctl_int(self.fd, uapi.KVM_CREATE_VM, 0))

    def close(self) -> None:
        os.close(self.fd)


class VmFd:
    def __init__(self, kvm: KvmFd, fd: int) -> None:
        self.kvm = kvm
        self.fd = fd
        self._memory: list[mmap.mmap] = []

    def add_memory(self, slot: int, guest_phys_addr: int, size: int) -> mmap.mmap:
        """Anonymous memory mapped into the guest at `guest_phys_addr`."""
        memory = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        view = ctypes.c_char.from_buffer(memory)
        host_addr = ctypes.addressof(view)
        del view  # an exported buffer would keep the mmap from closing
        region = uapi.kvm_userspace_memory_region(slot, 0, guest_phys_addr, size, host_addr)
        ioctl_struct(self.fd, uapi.KVM_SET_USER_MEMORY_REGION, region)
        self._memory.append(memory)
        return memory

    def close(self) -> None:
        """The VM's fd and its memory (its vCPUs and devices are closed by their owner)."""
        os.close(self.fd)
        for memory in self._memory:
            memory.close()
        self._memory.clear()

    def create_vcpu(self, index: int) -> VcpuFd:
        return VcpuFd(self, ioctl_int(self.fd, uapi.KVM_CREATE_VCPU, index), index)

    def preferred_target(self) -> uapi.kvm_vcpu_init:
        return ioctl_struct(self.fd, uapi.KVM_ARM_PREFERRED_TARGET, uapi.kvm_vcpu_init())

    def create_device(self, device_type: int) -> DeviceFd:
        created = ioctl_struct(self.fd, uapi.KVM_CREATE_DEVICE,
                               uapi.kvm_create_device(device_type, 0, 0))
        return DeviceFd(created.fd)


class DeviceFd:
    """A device's fd (the vGIC): KVM_SET_DEVICE_ATTR with an address payload."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)

    def set_attr(self, group: int, attr: int, value: int | None = None) -> None:
        buf = Buffer(8)
        if value is not None:
            buf.write(struct.pack("<Q", value))
        ioctl_struct(self.fd, uapi.KVM_SET_DEVICE_ATTR,
                     uapi.kvm_device_attr(0, group, attr, buf.addr if value is not None else 0))


class VcpuFd:
    def __init__(self, vm: VmFd, fd: int, index: int) -> None:
        self.vm = vm
        self.fd = fd
        self.index = index
        size = vm.kvm.vcpu_mmap_size()
        self.run_area = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._payload = Buffer(64)

    def vcpu_init(self, init: uapi.kvm_vcpu_init) -> None:
        ioctl_struct(self.fd, uapi.KVM_ARM_VCPU_INIT, init)

    def device_attr(self, request: int, group: int, attr: int, payload: bytes) -> bytes:
        """KVM_{SET,GET,HAS}_DEVICE_ATTR with `payload` at `addr`; the payload after it."""
        self._payload.write(payload.ljust(8, b"\0"))
        ioctl_struct(self.fd, request, uapi.kvm_device_attr(0, group, attr, self._payload.addr))
        return self._payload.read(len(payload))

    def one_reg(self, request: int, reg_id: int, value: int = 0) -> int:
        self._payload.write(struct.pack("<Q", value))
        ioctl_struct(self.fd, request, uapi.kvm_one_reg(reg_id, self._payload.addr))
        return int(struct.unpack("<Q", self._payload.read(8))[0])

    def run(self) -> None:
        """KVM_RUN: returns at the next exit (read `run_area`); EINTR is a KvmError too."""
        ioctl_int(self.fd, uapi.KVM_RUN, 0)

    def close(self) -> None:
        self.run_area.close()
        os.close(self.fd)
