"""Named event sets for policies: what a multi-tenant host denies, what profiling needs.

Tiers follow arm-events.md §3: tier 1 counts activity beyond the core (L3 and last-level
cache, bus, remote sockets, memory latency); tier 2 adds the L2 and coherency events that a
cluster shares (Cortex-A53/A57/A72) or that leak when tenants time-share a physical CPU.
"""

from __future__ import annotations

from kvmpmu.arch.catalog import Catalog
from kvmpmu.arch.cpus import parse_ranges
from kvmpmu.records import Record

_TIER1 = ("0x19, 0x29-0x2C, 0x31-0x33, 0x36-0x38, 0x45, 0x60-0x65, 0xA0-0xA3, 0xA6-0xA8, "
          "0x4005, 0x4009-0x400B, 0x8121-0x8123, 0x8150-0x8153, 0x8156, 0x815B")
_TIER2 = ("0x16-0x18, 0x20, 0x27-0x28, 0x44, 0x47-0x48, 0x50-0x53, 0x56-0x58, 0x8148-0x814F, "
          "0x8155, 0x8158, 0x815A, 0x8164, 0x8166")
# Cortex-A53 IMPLEMENTATION DEFINED events, by name (they exist only in that CPU's catalog)
_TIER1_IMPDEF = ("EXT_MEM_REQ", "EXT_MEM_REQ_NC", "EXT_SNOOP")
_TIER2_IMPDEF = ("PREFETCH_LINEFILL",)
_BASIC = "0x01-0x05, 0x08, 0x10-0x12, 0x14, 0x1B, 0x21-0x22, 0x25-0x26"


class Preset(Record):
    __slots__ = ("name", "summary", "events", "impdef_names")

    def __init__(self, name: str, summary: str, events: frozenset[int],
                 impdef_names: tuple[str, ...] = ()) -> None:
        self.name, self.summary, self.events = name, summary, events
        self.impdef_names = impdef_names


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("shared-resources",
           "events beyond the core: L3 and last-level cache, bus, remote socket, memory latency",
           parse_ranges(_TIER1), _TIER1_IMPDEF),
    Preset("shared-resources-cluster",
           "shared-resources plus the cluster-shared L2 and coherency events",
           parse_ranges(_TIER1) | parse_ranges(_TIER2), _TIER1_IMPDEF + _TIER2_IMPDEF),
    Preset("basic-profiling",
           "cycles, instructions, branches, L1 caches and TLBs",
           parse_ranges(_BASIC)),
)}


def resolve_preset(preset: Preset, catalog: Catalog, max_event: int = 0xFFFF) -> frozenset[int]:
    """The preset's events for a host: its IMPDEF names where the catalog has them, and only
    events the host's event space can encode (a PMUv3 8.0 host filters 0x000-0x3FF only)."""
    events = set(preset.events)
    events.update(c for c in map(catalog.lookup, preset.impdef_names) if c is not None)
    return frozenset(e for e in events if e <= max_event)
