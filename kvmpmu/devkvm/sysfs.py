"""The host's CPU PMUs as the perf subsystem lists them in sysfs: name, perf type, CPUs, the
common events it knows the host implements (from PMCEID), and the CPUs' MIDR_EL1."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PMU_DEVICES = Path("/sys/bus/event_source/devices")
CPU_DEVICES = Path("/sys/devices/system/cpu")
_EVENT = re.compile(r"(?:^|,)event=(0x[0-9a-fA-F]+|\d+)(?:,|$)")


@dataclass(frozen=True)
class SysfsPmu:
    name: str
    pmu_type: int
    cpus: frozenset[int]
    events: dict[str, int]  # perf's name -> event number


def cpu_list(text: str) -> frozenset[int]:
    """'0-3,5' -> {0, 1, 2, 3, 5}, as the kernel prints CPU lists."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    return frozenset(cpus)


def read_pmus(root: Path = PMU_DEVICES) -> list[SysfsPmu]:
    """Every CPU PMU: the devices with a `cpus` list (software, tracepoint and breakpoint
    PMUs have none), by perf type."""
    pmus = []
    for device in sorted(root.iterdir()) if root.is_dir() else []:
        cpus_file = device / "cpus"
        if not cpus_file.is_file():
            continue
        events = {}
        for event in sorted((device / "events").glob("*")):
            match = _EVENT.search(event.read_text().strip())
            if match:
                events[event.name] = int(match.group(1), 0)
        pmus.append(SysfsPmu(device.name, int((device / "type").read_text()),
                             cpu_list(cpus_file.read_text()), events))
    return sorted(pmus, key=lambda p: p.pmu_type)


def midr(cpu: int, root: Path = CPU_DEVICES) -> int | None:
    path = root / f"cpu{cpu}" / "regs" / "identification" / "midr_el1"
    return int(path.read_text(), 16) if path.is_file() else None
