"""A policy repository's CI: `lint` and `validate` of a folder of typical specs (20-50
entries each) in one process, against one process per file, and how the one process grows with
the number of files."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

# Architected common events (Arm ARM D17.12): every CPU model's catalog has them.
EVENT_NAMES = (
    "L1I_CACHE_REFILL", "L1I_TLB_REFILL", "L1D_CACHE_REFILL", "L1D_CACHE", "L1D_TLB_REFILL",
    "LD_RETIRED", "ST_RETIRED", "INST_RETIRED", "EXC_TAKEN", "EXC_RETURN", "BR_IMMED_RETIRED",
    "BR_RETURN_RETIRED", "BR_MIS_PRED", "CPU_CYCLES", "BR_PRED", "MEM_ACCESS", "L1I_CACHE",
    "L1D_CACHE_WB", "L2D_CACHE", "L2D_CACHE_REFILL", "L2D_CACHE_WB", "BUS_ACCESS", "INST_SPEC",
    "BUS_CYCLES", "STALL_FRONTEND", "STALL_BACKEND",
)


def _entry(rng: random.Random) -> str:
    """An entry as policies write them: names, ranges of the common event spaces (0x00-0x3F,
    0x4000-0x403F), or the kernel's own form."""
    action = rng.choice(("allow", "deny"))
    form = rng.randrange(5)
    if form == 0:
        names = rng.sample(EVENT_NAMES, rng.randrange(1, 4))
        return f"  - {action}: [{', '.join(names)}]\n"
    if form == 1:
        return f"  - {action}: {rng.choice(EVENT_NAMES)}\n"
    first = rng.randrange(0, 0x38)
    if form == 2:
        return f"  - {action}: 0x{first:x}-0x{first + rng.randrange(0, 8):x}\n"
    if form == 3:
        return f"  - {action}: {first}..{first + rng.randrange(0, 8)}\n"
    return (f"  - {{action: {action}, base_event: 0x{0x4000 + first:04x}, "
            f"nevents: {rng.randrange(1, 9)}}}\n")


def spec_text(rng: random.Random) -> str:
    head = rng.choice(("", "kernel: latest\n", "kernel: 6.6\n",
                       "vm: {vcpus: 2}\n", "host: {cpu: neoverse-n1}\nvm: {vcpus: 4}\n"))
    body = "".join(_entry(rng) for _ in range(rng.randrange(20, 51)))
    return f"# generated policy\n{head}filters:\n{body}"


def write_specs(folder: Path, count: int, seed: int = 9) -> list[Path]:
    """`count` specs in `folder`, in parts of a quarter, a quarter and a half (the growth
    measurement takes one, two or all three)."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        part = folder / ("a" if i < count // 4 else "b" if i < count // 2 else "c")
        part.mkdir(parents=True, exist_ok=True)
        path = part / f"policy{i:04d}.yaml"
        path.write_text(spec_text(rng))
        paths.append(path)
    return paths


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
