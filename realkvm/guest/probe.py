"""What this kernel's KVM says about the vPMU, as one JSON document on stdout.

Standard library only, and independent of kvmpmu on purpose: it is the reference the emulated
kernel is compared with. The numbers are the kernel's UAPI (include/uapi/linux/kvm.h and
arch/arm64/include/uapi/asm/kvm.h); ioctl numbers use the generic _IOC encoding of arm64.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import struct
from typing import Any

KVMIO = 0xAE
IOC_WRITE, IOC_READ = 1, 2


def ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


KVM_VCPU_INIT_SIZE = 32  # struct kvm_vcpu_init: __u32 target, __u32 features[7]
KVM_DEVICE_ATTR_SIZE = 24  # struct kvm_device_attr: __u32 flags, group; __u64 attr, addr

KVM_GET_API_VERSION = ioc(0, 0x00, 0)
KVM_CREATE_VM = ioc(0, 0x01, 0)
KVM_CHECK_EXTENSION = ioc(0, 0x03, 0)
KVM_CREATE_VCPU = ioc(0, 0x41, 0)
KVM_ARM_VCPU_INIT = ioc(IOC_WRITE, 0xAE, KVM_VCPU_INIT_SIZE)
KVM_ARM_PREFERRED_TARGET = ioc(IOC_READ, 0xAF, KVM_VCPU_INIT_SIZE)
KVM_HAS_DEVICE_ATTR = ioc(IOC_WRITE, 0xE3, KVM_DEVICE_ATTR_SIZE)

CAPABILITIES = {"KVM_CAP_ARM_PMU_V3": 126, "KVM_CAP_VCPU_ATTRIBUTES": 127}
KVM_ARM_VCPU_PMU_V3 = 3  # feature bit
KVM_ARM_VCPU_PMU_V3_CTRL = 0  # device-attribute group
PMU_ATTRIBUTES = {
    "KVM_ARM_VCPU_PMU_V3_IRQ": 0,
    "KVM_ARM_VCPU_PMU_V3_INIT": 1,
    "KVM_ARM_VCPU_PMU_V3_FILTER": 2,
    "KVM_ARM_VCPU_PMU_V3_SET_PMU": 3,
    "KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS": 4,
}
EVENT_SOURCES = "/sys/bus/event_source/devices"


def outcome(error: OSError | None) -> dict[str, Any]:
    """0, or the errno and its name."""
    if error is None:
        return {"errno": 0, "name": "OK"}
    return {"errno": error.errno, "name": errno.errorcode.get(error.errno or 0, "?")}


def vcpu_init(vm: int, vcpu: int) -> dict[str, Any]:
    init = bytearray(KVM_VCPU_INIT_SIZE)
    fcntl.ioctl(vm, KVM_ARM_PREFERRED_TARGET, init, True)
    struct.pack_into("<I", init, 4, 1 << KVM_ARM_VCPU_PMU_V3)
    try:
        fcntl.ioctl(vcpu, KVM_ARM_VCPU_INIT, init, True)
    except OSError as error:
        return {"target": struct.unpack_from("<I", init)[0], **outcome(error)}
    return {"target": struct.unpack_from("<I", init)[0], **outcome(None)}


def has_device_attr(vcpu: int, attr: int) -> dict[str, Any]:
    request = bytearray(struct.pack("<IIQQ", 0, KVM_ARM_VCPU_PMU_V3_CTRL, attr, 0))
    try:
        fcntl.ioctl(vcpu, KVM_HAS_DEVICE_ATTR, request, True)
    except OSError as error:
        return {"attr": attr, **outcome(error)}
    return {"attr": attr, **outcome(None)}


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def event_sources() -> dict[str, Any]:
    """perf's PMUs: type (what SET_PMU takes), CPUs and the named events."""
    sources: dict[str, Any] = {}
    for name in sorted(os.listdir(EVENT_SOURCES)):
        base = f"{EVENT_SOURCES}/{name}"
        events_dir = f"{base}/events"
        events = sorted(os.listdir(events_dir)) if os.path.isdir(events_dir) else []
        sources[name] = {
            "type": int(read_text(f"{base}/type") or -1),
            "cpus": read_text(f"{base}/cpus"),
            "events": {event: read_text(f"{events_dir}/{event}") for event in events},
        }
    return sources


def kvm_log() -> list[str]:
    """The kernel's KVM messages (which of VHE/nVHE came up) from /dev/kmsg."""
    lines = []
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                record = os.read(fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EPIPE:  # a record was overwritten: go on
                    continue
                raise
            message = record.split(";", 1)[-1].rstrip("\n")
            if message.startswith("kvm ["):
                lines.append(message)
    finally:
        os.close(fd)
    return lines


def main() -> None:
    doc: dict[str, Any] = {"uname_r": os.uname().release, "kvm_log": kvm_log()}
    doc["boot"] = {k: v for k, v in os.environ.items() if k.startswith("REALKVM_")}
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    doc["api_version"] = fcntl.ioctl(kvm, KVM_GET_API_VERSION, 0)
    doc["capabilities"] = {
        name: fcntl.ioctl(kvm, KVM_CHECK_EXTENSION, number) for name, number in CAPABILITIES.items()
    }
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    doc["vcpu_init"] = vcpu_init(vm, vcpu)
    doc["pmu_attributes"] = {
        name: has_device_attr(vcpu, attr) for name, attr in PMU_ATTRIBUTES.items()
    }
    doc["event_sources"] = event_sources()
    print(json.dumps(doc, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
