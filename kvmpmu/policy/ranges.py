"""Event sets as Python ints (bit n = event n) and the ranges they break into."""

from __future__ import annotations

from kvmpmu.arch.catalog import Catalog


def span(base: int, n: int) -> int:
    """Bits [base, base+n)."""
    return ((1 << n) - 1) << base


def bits_to_ranges(bits: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) runs of set bits, in order; O(runs) big-int operations."""
    out = []
    pos = 0
    while bits:
        low = (bits & -bits).bit_length() - 1  # first set bit
        bits >>= low
        pos += low
        run = (~bits & (bits + 1)).bit_length() - 1  # length of the run of ones
        out.append((pos, pos + run - 1))
        bits >>= run
        pos += run
    return out


def describe_ranges(ranges: list[tuple[int, int]], catalog: Catalog, limit: int = 0) -> str:
    """'0x0011 CPU_CYCLES, 0x0029..0x002b (L3D_CACHE_ALLOCATE..L3D_CACHE)', shortened to `limit`."""
    parts = []
    for first, last in ranges:
        if first == last:
            parts.append(catalog.label(first))
        else:
            a, b = catalog.name_of(first), catalog.name_of(last)
            names = f" ({a or '?'}..{b or '?'})" if a or b else ""
            parts.append(f"0x{first:04x}..0x{last:04x}{names}")
    if limit and len(parts) > limit:
        parts = parts[:limit] + [f"and {len(parts) - limit} more"]
    return ", ".join(parts)
